//! Gauges of the ModelDeployments in the controller's watch cache, counted at each scrape as the
//! import gauges are ([`super::imports`]): by phase, and by the reason of their Ready condition.

use super::CacheGauges;
use crate::crd::{DeploymentPhase, ModelDeployment};
use modelstudio_core::conditions::READY;
use modelstudio_core::deployment::reason::DeploymentCode;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use std::collections::BTreeMap;
use std::fmt;

use super::imports::{encode_phases_and_reasons, NO_PHASE, NO_REASON, OTHER_REASON};

const PHASES: [DeploymentPhase; 6] = [
    DeploymentPhase::Pending,
    DeploymentPhase::Updating,
    DeploymentPhase::Running,
    DeploymentPhase::Stopped,
    DeploymentPhase::Failed,
    DeploymentPhase::Deleting,
];

fn phase_name(p: DeploymentPhase) -> &'static str {
    match p {
        DeploymentPhase::Pending => "Pending",
        DeploymentPhase::Updating => "Updating",
        DeploymentPhase::Running => "Running",
        DeploymentPhase::Stopped => "Stopped",
        DeploymentPhase::Failed => "Failed",
        DeploymentPhase::Deleting => "Deleting",
    }
}

/// The counts of one look at the cache; every phase and reason present, zero or not.
#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentTally {
    pub by_phase: BTreeMap<&'static str, u64>,
    pub by_reason: BTreeMap<(&'static str, &'static str), u64>,
}

impl DeploymentTally {
    pub fn of<'a>(deployments: impl IntoIterator<Item = &'a ModelDeployment>) -> Self {
        let mut by_phase: BTreeMap<&'static str, u64> = PHASES
            .iter()
            .map(|p| (phase_name(*p), 0))
            .chain([(NO_PHASE, 0)])
            .collect();
        let mut by_reason: BTreeMap<(&'static str, &'static str), u64> = DeploymentCode::ALL
            .iter()
            .map(|c| ((c.as_str(), c.meaning().condition()), 0))
            .chain([((NO_REASON, "Unknown"), 0), ((OTHER_REASON, "Unknown"), 0)])
            .collect();
        for d in deployments {
            let status = d.status.as_ref();
            let phase = status.and_then(|s| s.phase).map_or(NO_PHASE, phase_name);
            *by_phase.entry(phase).or_default() += 1;
            let ready = status.and_then(|s| s.conditions.iter().find(|c| c.type_ == READY));
            let reason = match ready.map(|c| DeploymentCode::parse(&c.reason)) {
                None => (NO_REASON, "Unknown"),
                Some(None) => (OTHER_REASON, "Unknown"),
                Some(Some(code)) => (code.as_str(), code.meaning().condition()),
            };
            *by_reason.entry(reason).or_default() += 1;
        }
        DeploymentTally {
            by_phase,
            by_reason,
        }
    }

    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> fmt::Result {
        encode_phases_and_reasons(
            &mut encoder,
            "deployments",
            "ModelDeployments",
            &self.by_phase,
            &self.by_reason,
        )
    }
}

/// The collector: counts the ModelDeployments' cache at each scrape.
pub type DeploymentGauges = CacheGauges<ModelDeployment>;

impl Collector for DeploymentGauges {
    fn encode(&self, encoder: DescriptorEncoder<'_>) -> fmt::Result {
        match self.store() {
            Some(store) => {
                let state = store.state();
                DeploymentTally::of(state.iter().map(|d| d.as_ref())).encode(encoder)
            }
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(phase: Option<&str>, reason: Option<&str>) -> ModelDeployment {
        let mut status = json!({});
        if let Some(phase) = phase {
            status["phase"] = json!(phase);
        }
        if let Some(reason) = reason {
            status["conditions"] = json!([{"type": "Ready", "status": "False", "reason": reason,
                "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}]);
        }
        serde_json::from_value(json!({
            "apiVersion": "modelstudio.io/v1alpha1", "kind": "ModelDeployment",
            "metadata": {"name": "d", "namespace": "ns"},
            "spec": {"modelName": "qwen-plus", "capacity": 8},
            "status": status,
        }))
        .unwrap()
    }

    #[test]
    fn every_phase_and_reason_is_counted_zero_or_not() {
        let all = [
            deployment(Some("Running"), Some("DeploymentRunning")),
            deployment(Some("Pending"), Some("WaitingForImport")),
            deployment(Some("Pending"), Some("SomeoneElses")),
            deployment(None, None),
        ];
        let t = DeploymentTally::of(all.iter());
        assert_eq!(t.by_phase["Running"], 1);
        assert_eq!(t.by_phase["Pending"], 2);
        assert_eq!(t.by_phase[NO_PHASE], 1);
        assert_eq!(t.by_phase["Stopped"], 0);
        assert_eq!(t.by_reason[&("DeploymentRunning", "Ready")], 1);
        assert_eq!(t.by_reason[&("WaitingForImport", "Reconciling")], 1);
        assert_eq!(t.by_reason[&(OTHER_REASON, "Unknown")], 1);
        assert_eq!(t.by_reason[&(NO_REASON, "Unknown")], 1);
        assert_eq!(t.by_reason.len(), DeploymentCode::ALL.len() + 2);
    }
}
