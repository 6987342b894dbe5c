//! A [`ModelDeployment`] as the core reads it ([`DeploymentResource`]), a ModelImport as the
//! [`ImportView`] a deployment waits on, and the core's status written back as the CRD's.
//! Nothing is decided here.

use crate::crd::{
    self, DeletionPolicy as CrdPolicy, DeploymentPhase as CrdPhase, DeploymentPlan,
    ModelDeployment, ModelDeploymentStatus, ModelImport, SecretKeyRef, FINALIZER,
};
use crate::pass::{control, core_conditions, crd_conditions, key};
use kube::ResourceExt;
use modelstudio_core::conditions::{READY, TRUE};
use modelstudio_core::deletion::DeletionPolicy;
use modelstudio_core::deployment::deployments::{Plan, PtuCapacity};
use modelstudio_core::deployment::resource::{
    DeploymentPhase, DeploymentResource, DeploymentSpec, DeploymentStatus, ImportView, ModelSource,
};

/// A count the schema keeps in range, as the core's unsigned type (a negative one, which the
/// schema refuses, reads as 0 and is refused by the core's checks).
fn count(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn units(v: Option<i64>) -> Option<u32> {
    v.map(|v| u32::try_from(v).unwrap_or(0))
}

/// The resource as the core's decisions read it.
pub fn resource(obj: &ModelDeployment) -> DeploymentResource {
    let spec = &obj.spec;
    DeploymentResource {
        name: obj.name_any(),
        uid: key(obj),
        generation: obj.metadata.generation,
        deleting: obj.metadata.deletion_timestamp.is_some(),
        has_finalizer: obj.finalizers().iter().any(|f| f == FINALIZER),
        control: control(obj),
        spec: DeploymentSpec {
            source: match (&spec.model_import_ref, &spec.model_name) {
                (Some(r), _) => ModelSource::Import(r.name.clone()),
                (None, name) => ModelSource::Model(name.clone().unwrap_or_default()),
            },
            plan: spec.plan.map(|p| match p {
                DeploymentPlan::Ptu => Plan::Ptu,
                DeploymentPlan::Mu => Plan::Mu,
                DeploymentPlan::Lora => Plan::Lora,
                DeploymentPlan::Cu => Plan::Cu,
            }),
            // Absent only from an observed deployment (the API server requires it otherwise),
            // whose capacity is never asked for.
            capacity: spec
                .capacity
                .and_then(|c| u32::try_from(c).ok())
                .unwrap_or(0),
            deploy_spec: spec.deploy_spec.clone(),
            ptu_capacity: spec.ptu_capacity.as_ref().map(|p| PtuCapacity {
                input_tpm: count(p.input_tpm),
                output_tpm: count(p.output_tpm),
            }),
            name: spec.name.clone(),
            suffix: spec.suffix.clone(),
            enable_thinking: spec.enable_thinking,
            max_context_length: spec.max_context_length.map(count),
            rpm_limit: spec.rpm_limit.map(count),
            tpm_limit: spec.tpm_limit.map(count),
            api_key_secret: spec.api_key_secret_ref.as_ref().map(SecretKeyRef::core),
            deletion_policy: match spec.deletion_policy {
                CrdPolicy::Delete => DeletionPolicy::Delete,
                CrdPolicy::Orphan => DeletionPolicy::Orphan,
            },
            management: spec.management_policy.core(),
            deployed_model: spec.deployed_model.clone(),
        },
        status: deployment_status(obj.status.as_ref()),
    }
}

/// The CRD's status in the core's terms.
pub fn deployment_status(status: Option<&ModelDeploymentStatus>) -> DeploymentStatus {
    let Some(s) = status else {
        return DeploymentStatus::default();
    };
    DeploymentStatus {
        deployed_model: s.deployed_model.clone(),
        model_name: s.model_name.clone(),
        display_name: s.display_name.clone(),
        create_attempted_at: s.create_attempted_at.clone(),
        remote_status: s.remote_status.clone(),
        phase: s.phase.map(|p| match p {
            CrdPhase::Pending => DeploymentPhase::Pending,
            CrdPhase::Updating => DeploymentPhase::Updating,
            CrdPhase::Running => DeploymentPhase::Running,
            CrdPhase::Stopped => DeploymentPhase::Stopped,
            CrdPhase::Failed => DeploymentPhase::Failed,
            CrdPhase::Deleting => DeploymentPhase::Deleting,
        }),
        capacity: units(s.capacity),
        ready_capacity: units(s.ready_capacity),
        base_capacity: units(s.base_capacity),
        created_at: s.created_at.clone(),
        key_fingerprint: s.api_key_fingerprint.clone(),
        last_handled_reconcile_at: s.last_handled_reconcile_at.clone(),
        observed_generation: s.observed_generation,
        conditions: core_conditions(&s.conditions),
    }
}

/// The core's status as the CRD writes it.
pub fn model_deployment_status(s: &DeploymentStatus) -> ModelDeploymentStatus {
    ModelDeploymentStatus {
        deployed_model: s.deployed_model.clone(),
        model_name: s.model_name.clone(),
        display_name: s.display_name.clone(),
        create_attempted_at: s.create_attempted_at.clone(),
        remote_status: s.remote_status.clone(),
        phase: s.phase.map(|p| match p {
            DeploymentPhase::Pending => CrdPhase::Pending,
            DeploymentPhase::Updating => CrdPhase::Updating,
            DeploymentPhase::Running => CrdPhase::Running,
            DeploymentPhase::Stopped => CrdPhase::Stopped,
            DeploymentPhase::Failed => CrdPhase::Failed,
            DeploymentPhase::Deleting => CrdPhase::Deleting,
        }),
        capacity: s.capacity.map(i64::from),
        ready_capacity: s.ready_capacity.map(i64::from),
        base_capacity: s.base_capacity.map(i64::from),
        created_at: s.created_at.clone(),
        api_key_fingerprint: s.key_fingerprint.clone(),
        last_handled_reconcile_at: s.last_handled_reconcile_at.clone(),
        observed_generation: s.observed_generation,
        conditions: crd_conditions(&s.conditions),
    }
}

/// What a deployment that waits on `import` sees of it (`None`: it does not exist).
pub fn import_view(import: Option<&ModelImport>) -> ImportView {
    let Some(import) = import else {
        return ImportView::Missing;
    };
    if import.metadata.deletion_timestamp.is_some() {
        return ImportView::Deleting;
    }
    let status = import.status.as_ref();
    let ready = status
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == READY))
        .filter(|c| c.status == TRUE);
    if ready.is_some() {
        return ImportView::Ready {
            model_name: status.and_then(|s| s.model_name.clone()),
        };
    }
    let phase = status.and_then(|s| s.phase);
    if phase == Some(crd::Phase::Failed) {
        let message = status
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == READY))
            .map(|c| c.message.clone())
            .unwrap_or_else(|| "the import job failed".into());
        return ImportView::Failed { message };
    }
    ImportView::NotReady {
        phase: phase.map(|p| crate::import::resource::phase(p).as_str().to_string()),
    }
}

/// Whether the deployment `d` serves (or may be about to serve) the model of `import`: it names
/// the import, or the import's model, and has a remote deployment or a create under way.
pub fn serves(d: &ModelDeployment, import: &ModelImport) -> bool {
    if d.namespace() != import.namespace() {
        return false;
    }
    let status = d.status.as_ref();
    let live =
        status.is_some_and(|s| s.deployed_model.is_some() || s.create_attempted_at.is_some());
    let by_ref = d
        .spec
        .model_import_ref
        .as_ref()
        .is_some_and(|r| r.name == import.name_any());
    let model = import.status.as_ref().and_then(|s| s.model_name.as_deref());
    let by_model = model.is_some()
        && (d.spec.model_name.as_deref() == model
            || status.and_then(|s| s.model_name.as_deref()) == model);
    live && (by_ref || by_model)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(status: serde_json::Value) -> ModelDeployment {
        serde_json::from_value(json!({
            "apiVersion": "modelstudio.io/v1alpha1", "kind": "ModelDeployment",
            "metadata": {"name": "d", "namespace": "ns", "uid": "u-1", "generation": 2,
                         "finalizers": [FINALIZER]},
            "spec": {"modelImportRef": {"name": "imp"}, "capacity": 2, "plan": "mu",
                     "deploySpec": "MU1", "rpmLimit": 100},
            "status": status
        }))
        .unwrap()
    }

    fn import(status: serde_json::Value) -> ModelImport {
        serde_json::from_value(json!({
            "apiVersion": "modelstudio.io/v1alpha1", "kind": "ModelImport",
            "metadata": {"name": "imp", "namespace": "ns", "uid": "u-2"},
            "spec": {"baseModel": "qwen3-32b", "weightType": "lora",
                     "storage": {"bucketName": "b", "objectKey": "k/"}},
            "status": status
        }))
        .unwrap()
    }

    #[test]
    fn a_status_survives_the_round_trip() {
        let d = deployment(json!({
            "deployedModel": "m-x", "modelName": "m", "displayName": "d-abcdefgh",
            "remoteStatus": "RUNNING", "phase": "Running", "capacity": 2, "readyCapacity": 2,
            "baseCapacity": 1, "createdAt": "2026-01-01T00:00:00.000",
            "apiKeyFingerprint": "sha256:0123456789abcdef", "observedGeneration": 2,
            "conditions": [{"type": "Ready", "status": "True", "reason": "DeploymentRunning",
                            "message": "m", "observedGeneration": 2,
                            "lastTransitionTime": "2026-01-01T00:00:02Z"}]
        }));
        let core = resource(&d);
        assert_eq!(core.spec.source, ModelSource::Import("imp".into()));
        assert_eq!(core.spec.plan, Some(Plan::Mu));
        assert_eq!(core.spec.rpm_limit, Some(100));
        assert!(core.has_finalizer && !core.deleting);
        assert_eq!(core.status.phase, Some(DeploymentPhase::Running));
        assert_eq!(
            &model_deployment_status(&core.status),
            d.status.as_ref().unwrap()
        );
    }

    #[test]
    fn an_import_is_seen_as_a_deployment_waits_on_it() {
        assert_eq!(import_view(None), ImportView::Missing);
        let ready = import(json!({"phase": "Succeeded", "modelName": "m-1",
            "conditions": [{"type": "Ready", "status": "True", "reason": "JobSucceeded",
                            "message": "ok", "lastTransitionTime": "2026-01-01T00:00:02Z"}]}));
        assert_eq!(
            import_view(Some(&ready)),
            ImportView::Ready {
                model_name: Some("m-1".into())
            }
        );
        let failed = import(json!({"phase": "Failed",
            "conditions": [{"type": "Ready", "status": "False", "reason": "JobFailed",
                            "message": "bad files", "lastTransitionTime": "2026-01-01T00:00:02Z"}]}));
        assert_eq!(
            import_view(Some(&failed)),
            ImportView::Failed {
                message: "bad files".into()
            }
        );
        let running = import(json!({"phase": "Running"}));
        assert_eq!(
            import_view(Some(&running)),
            ImportView::NotReady {
                phase: Some("Running".into())
            }
        );
    }

    #[test]
    fn a_deployment_serves_an_import_once_it_has_or_may_have_a_remote_deployment() {
        let imp = import(json!({"phase": "Succeeded", "modelName": "m-1"}));
        assert!(!serves(&deployment(json!({})), &imp));
        assert!(serves(&deployment(json!({"deployedModel": "m-1"})), &imp));
        assert!(serves(
            &deployment(json!({"createAttemptedAt": "2026-01-01T00:00:00Z"})),
            &imp
        ));
        let mut by_name = deployment(json!({"deployedModel": "m-1-x"}));
        by_name.spec.model_import_ref = None;
        by_name.spec.model_name = Some("m-1".into());
        assert!(serves(&by_name, &imp));
        by_name.spec.model_name = Some("other".into());
        by_name.status.as_mut().unwrap().model_name = Some("other".into());
        assert!(!serves(&by_name, &imp));
        let mut elsewhere = deployment(json!({"deployedModel": "m-1"}));
        elsewhere.metadata.namespace = Some("other".into());
        assert!(!serves(&elsewhere, &imp));
    }
}
