//! Gauges of the ModelImports in the controller's watch cache, counted at each scrape from the
//! status as last written or seen: exact, never drifting with a missed or repeated event. Only
//! the replica that watches (the leader) has a cache, so a standby exports none of them.

use super::CacheGauges;
use crate::crd::ModelImport;
use crate::import::resource;
use modelstudio_core::conditions::READY;
use modelstudio_core::import::reason::Code;
use modelstudio_core::import::resource::Phase;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use std::collections::BTreeMap;
use std::fmt;

/// `phase` of an import whose status has none yet.
pub const NO_PHASE: &str = "None";
/// `reason` of an import without a Ready condition yet.
pub const NO_REASON: &str = "None";
/// `reason` of a Ready condition that is none of the controller's reasons (written by another).
pub const OTHER_REASON: &str = "Other";
/// `condition` of a reason that is not the controller's.
const UNKNOWN_CONDITION: &str = "Unknown";
/// The reasons of a deletion that waits on Model Studio.
const BLOCKED: [Code; 2] = [Code::DeletionBlocked, Code::DeletionRefused];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabels {
    phase: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
    /// The condition the reason sets True: Ready, Reconciling or Stalled.
    condition: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BlockedLabels {
    reason: &'static str,
}

/// The counts of one look at the cache. Every phase and reason is present, zero or not, so a
/// query sees 0 rather than nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct Tally {
    pub by_phase: BTreeMap<&'static str, u64>,
    /// By (reason, condition).
    pub by_reason: BTreeMap<(&'static str, &'static str), u64>,
    /// Deletions waiting on Model Studio, by reason.
    pub blocked: BTreeMap<&'static str, u64>,
    /// The age of the oldest of them (from its deletionTimestamp), 0 when none.
    pub oldest_blocked_seconds: f64,
}

impl Tally {
    /// Counts `imports` as of `now`.
    pub fn of<'a>(
        imports: impl IntoIterator<Item = &'a ModelImport>,
        now: jiff::Timestamp,
    ) -> Self {
        let mut by_phase: BTreeMap<&'static str, u64> = Phase::ALL
            .iter()
            .map(|p| (p.as_str(), 0))
            .chain([(NO_PHASE, 0)])
            .collect();
        let mut by_reason: BTreeMap<(&'static str, &'static str), u64> = Code::ALL
            .iter()
            .map(|c| ((c.as_str(), c.meaning().condition()), 0))
            .chain([
                ((NO_REASON, UNKNOWN_CONDITION), 0),
                ((OTHER_REASON, UNKNOWN_CONDITION), 0),
            ])
            .collect();
        let mut blocked: BTreeMap<&'static str, u64> =
            BLOCKED.iter().map(|c| (c.as_str(), 0)).collect();
        let mut oldest: Option<jiff::Timestamp> = None;
        for import in imports {
            let status = import.status.as_ref();
            let phase = status
                .and_then(|s| s.phase)
                .map_or(NO_PHASE, |p| resource::phase(p).as_str());
            *by_phase.entry(phase).or_default() += 1;
            let ready = status.and_then(|s| s.conditions.iter().find(|c| c.type_ == READY));
            let code = ready.and_then(|c| Code::parse(&c.reason));
            let reason = match (ready, code) {
                (None, _) => (NO_REASON, UNKNOWN_CONDITION),
                (Some(_), None) => (OTHER_REASON, UNKNOWN_CONDITION),
                (Some(_), Some(code)) => (code.as_str(), code.meaning().condition()),
            };
            *by_reason.entry(reason).or_default() += 1;
            let deleted = import.metadata.deletion_timestamp.as_ref();
            if let (Some(deleted), Some(code)) = (deleted, code) {
                if BLOCKED.contains(&code) {
                    *blocked.entry(code.as_str()).or_default() += 1;
                    oldest = Some(oldest.map_or(deleted.0, |o| o.min(deleted.0)));
                }
            }
        }
        Tally {
            by_phase,
            by_reason,
            blocked,
            oldest_blocked_seconds: oldest.map_or(0.0, |t| super::seconds_between(t, now)),
        }
    }

    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> fmt::Result {
        encode_phases_and_reasons(
            &mut encoder,
            "imports",
            "ModelImports",
            &self.by_phase,
            &self.by_reason,
        )?;
        let mut family = encoder.encode_descriptor(
            "deletions_blocked",
            "Deleted ModelImports whose job Model Studio does not let delete yet (DeletionBlocked, DeletionRefused)",
            None,
            MetricType::Gauge,
        )?;
        for (&reason, &n) in &self.blocked {
            ConstGauge::new(n).encode(family.encode_family(&BlockedLabels { reason })?)?;
        }
        let gauge = ConstGauge::new(self.oldest_blocked_seconds);
        let family = encoder.encode_descriptor(
            "deletion_blocked_oldest_seconds",
            "Age, from its deletionTimestamp, of the oldest blocked deletion; 0 when none",
            None,
            gauge.metric_type(),
        )?;
        gauge.encode(family)
    }
}

/// `{name}` by phase and `{name}_by_reason` by (reason, condition): the gauges every kind's
/// cache is counted into.
pub(super) fn encode_phases_and_reasons(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    kind: &str,
    by_phase: &BTreeMap<&'static str, u64>,
    by_reason: &BTreeMap<(&'static str, &'static str), u64>,
) -> fmt::Result {
    let help = format!("{kind} in the controller's cache, by status.phase (None: no status yet)");
    let mut family = encoder.encode_descriptor(name, &help, None, MetricType::Gauge)?;
    for (&phase, &n) in by_phase {
        ConstGauge::new(n).encode(family.encode_family(&PhaseLabels { phase })?)?;
    }
    let help = format!(
        "{kind} in the controller's cache, by the reason of their Ready condition and the condition it sets True"
    );
    let name = format!("{name}_by_reason");
    let mut family = encoder.encode_descriptor(&name, &help, None, MetricType::Gauge)?;
    for (&(reason, condition), &n) in by_reason {
        let labels = ReasonLabels { reason, condition };
        ConstGauge::new(n).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// The collector: counts the ModelImports' watch cache at each scrape.
pub type ImportGauges = CacheGauges<ModelImport>;

impl ImportGauges {
    /// The counts now, if a store is watched.
    pub fn tally(&self) -> Option<Tally> {
        let state = self.store()?.state();
        Some(Tally::of(
            state.iter().map(|i| i.as_ref()),
            jiff::Timestamp::now(),
        ))
    }
}

impl Collector for ImportGauges {
    fn encode(&self, encoder: DescriptorEncoder<'_>) -> fmt::Result {
        match self.tally() {
            Some(tally) => tally.encode(encoder),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;
    use kube::runtime::reflector::store::Writer;
    use kube::runtime::watcher::Event;
    use serde_json::json;

    fn import(name: &str, status: serde_json::Value, deleted: Option<&str>) -> ModelImport {
        let mut metadata = json!({"name": name, "namespace": "ns", "uid": name});
        if let Some(at) = deleted {
            metadata["deletionTimestamp"] = json!(at);
        }
        serde_json::from_value(json!({
            "apiVersion": "modelstudio.io/v1alpha1", "kind": "ModelImport",
            "metadata": metadata,
            "spec": {"baseModel": "qwen3-32b", "weightType": "lora",
                     "storage": {"bucketName": "bucket", "objectKey": "m/"}},
            "status": status,
        }))
        .unwrap()
    }

    fn status(phase: &str, reason: &str) -> serde_json::Value {
        let ready = if reason == "JobSucceeded" {
            "True"
        } else {
            "False"
        };
        json!({"phase": phase, "conditions": [{
            "type": "Ready", "status": ready, "reason": reason, "message": "m",
            "lastTransitionTime": "2026-01-01T00:00:00Z"}]})
    }

    fn at(s: &str) -> jiff::Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn counts_by_phase_and_reason_with_zeros_for_the_rest() {
        let imports = [
            import("a", status("Succeeded", "JobSucceeded"), None),
            import("b", status("Succeeded", "JobSucceeded"), None),
            import("c", status("Pending", "CredentialsMissing"), None),
            import("d", status("Failed", "JobFailed"), None),
            import("e", json!(null), None),
            // Someone else's reason is counted, under one name.
            import("f", status("Running", "SomeonesOwnReason"), None),
        ];
        let t = Tally::of(&imports, at("2026-01-01T00:00:00Z"));
        assert_eq!(t.by_phase["Succeeded"], 2);
        assert_eq!(t.by_phase["Pending"], 1);
        assert_eq!(t.by_phase["Failed"], 1);
        assert_eq!(t.by_phase["Running"], 1);
        assert_eq!(t.by_phase["Deleting"], 0);
        assert_eq!(t.by_phase[NO_PHASE], 1);
        assert_eq!(t.by_phase.values().sum::<u64>(), 6);
        assert_eq!(t.by_reason[&("JobSucceeded", "Ready")], 2);
        assert_eq!(t.by_reason[&("CredentialsMissing", "Reconciling")], 1);
        assert_eq!(t.by_reason[&("JobFailed", "Stalled")], 1);
        assert_eq!(t.by_reason[&(NO_REASON, "Unknown")], 1);
        assert_eq!(t.by_reason[&(OTHER_REASON, "Unknown")], 1);
        assert_eq!(t.by_reason[&("Throttled", "Reconciling")], 0);
        assert_eq!(t.by_reason.len(), Code::ALL.len() + 2);
        assert_eq!(t.by_reason.values().sum::<u64>(), 6);
        assert_eq!(t.blocked.values().sum::<u64>(), 0);
        assert_eq!(t.oldest_blocked_seconds, 0.0);
    }

    #[test]
    fn blocked_deletions_and_the_age_of_the_oldest() {
        let imports = [
            import(
                "a",
                status("Deleting", "DeletionBlocked"),
                Some("2026-01-01T00:00:00Z"),
            ),
            import(
                "b",
                status("Deleting", "DeletionBlocked"),
                Some("2026-01-01T00:50:00Z"),
            ),
            import(
                "c",
                status("Succeeded", "DeletionRefused"),
                Some("2026-01-01T00:30:00Z"),
            ),
            // Deleting for another reason: not blocked by Model Studio.
            import(
                "d",
                status("Deleting", "CredentialsMissing"),
                Some("2025-01-01T00:00:00Z"),
            ),
            // A reason left from before a deletion that has not begun is not a blocked deletion.
            import("e", status("Deleting", "DeletionBlocked"), None),
        ];
        let t = Tally::of(&imports, at("2026-01-01T01:00:00Z"));
        assert_eq!(t.blocked["DeletionBlocked"], 2);
        assert_eq!(t.blocked["DeletionRefused"], 1);
        assert_eq!(t.oldest_blocked_seconds, 3600.0);
        assert_eq!(t.by_phase["Deleting"], 4);
    }

    #[test]
    fn a_scrape_reads_the_cache_as_it_is_then() {
        let metrics = Metrics::default();
        // No cache (a standby): none of these families.
        assert!(!metrics.encode().contains("modelstudio_imports"));
        let mut writer: Writer<ModelImport> = Writer::default();
        metrics.imports.watch(writer.as_reader());
        let text = metrics.encode();
        assert!(
            text.contains("modelstudio_imports{phase=\"Succeeded\"} 0"),
            "{text}"
        );
        assert!(text.contains("modelstudio_deletion_blocked_oldest_seconds 0.0"));
        writer.apply_watcher_event(&Event::Apply(import(
            "a",
            status("Succeeded", "JobSucceeded"),
            None,
        )));
        let deleted = (jiff::Timestamp::now() - jiff::SignedDuration::from_secs(90)).to_string();
        writer.apply_watcher_event(&Event::Apply(import(
            "b",
            status("Deleting", "DeletionBlocked"),
            Some(&deleted),
        )));
        let text = metrics.encode();
        assert!(
            text.contains("modelstudio_imports{phase=\"Succeeded\"} 1"),
            "{text}"
        );
        assert!(text.contains(
            "modelstudio_imports_by_reason{reason=\"JobSucceeded\",condition=\"Ready\"} 1"
        ));
        assert!(text.contains("modelstudio_deletions_blocked{reason=\"DeletionBlocked\"} 1"));
        let oldest: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix("modelstudio_deletion_blocked_oldest_seconds "))
            .unwrap()
            .parse()
            .unwrap();
        assert!((90.0..120.0).contains(&oldest), "{oldest}");
        // Gone from the cache, gone from the counts.
        writer.apply_watcher_event(&Event::Delete(import(
            "b",
            status("Deleting", "DeletionBlocked"),
            Some(&deleted),
        )));
        let text = metrics.encode();
        assert!(text.contains("modelstudio_deletions_blocked{reason=\"DeletionBlocked\"} 0"));
        assert!(text.contains("modelstudio_imports{phase=\"Deleting\"} 0"));
    }
}
