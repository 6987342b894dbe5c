//! A [`ModelImport`] as the core reads it ([`Resource`]), and the core's [`ImportStatus`]
//! written back as the CRD's status. Nothing is decided here.

use crate::crd::{self, ModelImport, ModelImportStatus, SecretKeyRef, FINALIZER};
use crate::pass::{control, core_conditions, crd_conditions, key};
use kube::ResourceExt;
use modelstudio_core::deletion::DeletionPolicy;
use modelstudio_core::import::jobs::{Source, Storage, WeightType};
use modelstudio_core::import::resource::ImportStatus;
use modelstudio_core::import::resource::{Phase, Resource, Spec};

/// The resource as the core's decisions read it.
pub fn resource(obj: &ModelImport) -> Resource {
    let spec = &obj.spec;
    Resource {
        name: obj.name_any(),
        uid: key(obj),
        generation: obj.metadata.generation,
        deleting: obj.metadata.deletion_timestamp.is_some(),
        has_finalizer: obj.finalizers().iter().any(|f| f == FINALIZER),
        control: control(obj),
        // What only a create reads is absent from an observed import (the API server requires it
        // otherwise): it reads as empty, and is never sent.
        spec: Spec {
            base_model: spec.base_model.clone().unwrap_or_default(),
            display_name: spec.display_name.clone(),
            weight_type: match spec.weight_type {
                Some(crd::WeightType::Full) => WeightType::Full,
                Some(crd::WeightType::Lora) | None => WeightType::Lora,
            },
            source: match spec.source {
                crd::Source::Oss => Source::Oss,
            },
            storage: Storage {
                bucket_name: spec
                    .storage
                    .as_ref()
                    .map(|s| s.bucket_name.clone())
                    .unwrap_or_default(),
                object_key: spec
                    .storage
                    .as_ref()
                    .map(|s| s.object_key.clone())
                    .unwrap_or_default(),
            },
            deletion_policy: match spec.deletion_policy {
                crd::DeletionPolicy::Delete => DeletionPolicy::Delete,
                crd::DeletionPolicy::Orphan => DeletionPolicy::Orphan,
            },
            job_id: spec.job_id.clone(),
            management: spec.management_policy.core(),
            api_key_secret: spec.api_key_secret_ref.as_ref().map(SecretKeyRef::core),
        },
        status: import_status(obj.status.as_ref()),
    }
}

/// The CRD's status in the core's terms.
pub fn import_status(status: Option<&ModelImportStatus>) -> ImportStatus {
    let Some(s) = status else {
        return ImportStatus::default();
    };
    ImportStatus {
        job_id: s.job_id.clone(),
        display_name: s.display_name.clone(),
        create_attempted_at: s.create_attempted_at.clone(),
        model_name: s.model_name.clone(),
        remote_status: s.remote_status.clone(),
        phase: s.phase.map(phase),
        error_code: s.error_code.clone(),
        created_at: s.created_at.clone(),
        key_fingerprint: s.api_key_fingerprint.clone(),
        last_handled_reconcile_at: s.last_handled_reconcile_at.clone(),
        observed_generation: s.observed_generation,
        conditions: core_conditions(&s.conditions),
    }
}

/// The core's status as the CRD writes it.
pub fn model_import_status(s: &ImportStatus) -> ModelImportStatus {
    ModelImportStatus {
        job_id: s.job_id.clone(),
        display_name: s.display_name.clone(),
        create_attempted_at: s.create_attempted_at.clone(),
        model_name: s.model_name.clone(),
        remote_status: s.remote_status.clone(),
        phase: s.phase.map(crd_phase),
        error_code: s.error_code.clone(),
        created_at: s.created_at.clone(),
        api_key_fingerprint: s.key_fingerprint.clone(),
        last_handled_reconcile_at: s.last_handled_reconcile_at.clone(),
        observed_generation: s.observed_generation,
        conditions: crd_conditions(&s.conditions),
    }
}

/// The CRD's phase in the core's terms.
pub fn phase(p: crd::Phase) -> Phase {
    match p {
        crd::Phase::Pending => Phase::Pending,
        crd::Phase::Running => Phase::Running,
        crd::Phase::Succeeded => Phase::Succeeded,
        crd::Phase::Failed => Phase::Failed,
        crd::Phase::Deleting => Phase::Deleting,
    }
}

fn crd_phase(p: Phase) -> crd::Phase {
    match p {
        Phase::Pending => crd::Phase::Pending,
        Phase::Running => crd::Phase::Running,
        Phase::Succeeded => crd::Phase::Succeeded,
        Phase::Failed => crd::Phase::Failed,
        Phase::Deleting => crd::Phase::Deleting,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_status_survives_the_round_trip() {
        let written: ModelImportStatus = serde_json::from_value(json!({
            "jobId": "j-1",
            "displayName": "m-abcdefgh",
            "createAttemptedAt": "2026-01-01T00:00:00Z",
            "modelName": "qwen3-32b-offline-20260101-ab12",
            "remoteStatus": "SUCCEEDED",
            "phase": "Deleting",
            "errorCode": "x",
            "createdAt": "2026-01-01T00:00:01.000+00:00",
            "apiKeyFingerprint": "sha256:0123456789abcdef",
            "observedGeneration": 3,
            "conditions": [{
                "type": "Ready", "status": "True", "reason": "JobSucceeded", "message": "m",
                "observedGeneration": 3, "lastTransitionTime": "2026-01-01T00:00:02Z"
            }, {
                "type": "example.com/Audited", "status": "Unknown", "reason": "R", "message": "",
                "lastTransitionTime": "2026-01-01T00:00:03Z"
            }]
        }))
        .unwrap();
        let core = import_status(Some(&written));
        assert_eq!(core.phase, Some(Phase::Deleting));
        assert_eq!(core.conditions.len(), 2);
        assert_eq!(model_import_status(&core), written);
        assert_eq!(import_status(None), ImportStatus::default());
    }

    #[test]
    fn a_phase_name_is_the_one_status_phase_holds() {
        for p in Phase::ALL {
            assert_eq!(
                serde_json::to_value(crd_phase(p)).unwrap(),
                json!(p.as_str())
            );
            assert_eq!(phase(crd_phase(p)), p);
        }
    }

    #[test]
    fn the_resource_reads_spec_finalizer_and_deletion() {
        let obj: ModelImport = serde_json::from_value(json!({
            "apiVersion": "modelstudio.io/v1alpha1", "kind": "ModelImport",
            "metadata": {"name": "m", "namespace": "ns", "uid": "u-1", "generation": 2,
                         "finalizers": [FINALIZER], "deletionTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"baseModel": "qwen3-32b", "weightType": "full",
                     "storage": {"bucketName": "bkt", "objectKey": "k/"},
                     "deletionPolicy": "Orphan", "jobId": "j-9"}
        }))
        .unwrap();
        let r = resource(&obj);
        assert_eq!(r.uid, "u-1");
        assert!(r.deleting && r.has_finalizer);
        assert_eq!(r.generation, Some(2));
        assert_eq!(r.spec.weight_type, WeightType::Full);
        assert_eq!(r.spec.deletion_policy, DeletionPolicy::Orphan);
        assert_eq!(r.spec.job_id.as_deref(), Some("j-9"));
        let mut no_uid = obj.clone();
        no_uid.metadata.uid = None;
        assert_eq!(key(&no_uid), "ns/m");
    }
}
