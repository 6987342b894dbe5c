//! A ModelDeployment of each condition reason, with the conditions the core's builder writes for
//! it: tests/argocd_health.rs runs the Argo CD check over them.

use super::{time, CREATED, DELETED, DISPLAY_NAME, FINGERPRINT, MODEL_NAME};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use modelstudio_controller::crd::{ModelDeployment, FINALIZER};
use modelstudio_controller::deployment::resource::model_deployment_status;
use modelstudio_core::api::RemoteFailure;
use modelstudio_core::conditions::{conditions_of, merge_conditions};
use modelstudio_core::credentials::CredentialProblem;
use modelstudio_core::deployment::reason::{DeploymentCode, DeploymentReason as R, ImportWait};
use modelstudio_core::deployment::resource::{DeploymentPhase, DeploymentStatus};
use serde_json::json;

const DEPLOYED: &str = "qwen3-32b-offline-20260101-ab12";

/// A deployment reason as the controller reaches it, and whether the resource is being deleted.
pub struct DeploymentSample {
    pub reason: R,
    pub deleting: bool,
}

fn of(reason: R) -> DeploymentSample {
    DeploymentSample {
        reason,
        deleting: false,
    }
}

/// A sample of each reason code. The match is exhaustive: a new code does not compile until it
/// has a sample here.
pub fn deployment_sample(code: DeploymentCode) -> DeploymentSample {
    use DeploymentCode as C;
    let dm = || DEPLOYED.to_string();
    match code {
        C::WaitingForImport => of(R::WaitingForImport {
            import: "qwen3-lora".into(),
            wait: ImportWait::NotReady {
                phase: Some("Running".into()),
            },
        }),
        C::ImportFailed => of(R::ImportFailed {
            import: "qwen3-lora".into(),
            message: "Import job ft-1 failed: config.json is missing.".into(),
        }),
        C::Creating => of(R::Creating {
            model: MODEL_NAME.into(),
        }),
        C::CreateUnconfirmed => of(R::CreateUnconfirmed {
            detail: modelstudio_core::deployment::reason::unconfirmed_no_answer(
                "no answer within 30s",
            ),
        }),
        C::DeploymentPending => of(R::DeploymentPending {
            deployed_model: dm(),
        }),
        C::DeploymentUpdating => of(R::DeploymentUpdating {
            deployed_model: dm(),
            detail: "scaling from 1 to 2 units".into(),
        }),
        C::DeploymentRunning => of(R::DeploymentRunning {
            deployed_model: dm(),
            capacity: Some(2),
        }),
        C::UnknownDeploymentStatus => of(R::UnknownDeploymentStatus {
            deployed_model: dm(),
            status: "MIGRATING".into(),
        }),
        C::DeploymentStopped => of(R::DeploymentStopped {
            deployed_model: dm(),
        }),
        C::DeploymentFailed => of(R::DeploymentFailed {
            deployed_model: dm(),
        }),
        C::DeploymentDeleting => DeploymentSample {
            reason: R::DeploymentDeleting {
                deployed_model: dm(),
                ours: true,
            },
            deleting: true,
        },
        C::DeploymentNotFound => of(R::DeploymentNotFound {
            deployed_model: dm(),
        }),
        C::InvalidSpec => of(R::InvalidSpec {
            problems: vec!["deploy_spec is required for plan mu (e.g. MU1)".into()],
        }),
        C::ModelNotFound => of(R::ModelNotFound {
            model: "qwen-nope".into(),
            error: "Model: qwen-nope not found!".into(),
        }),
        C::DeployedModelConflict => of(R::DeployedModelConflict {
            deployed_model: dm(),
            error: "Deployed model already exists, please specify a suffix.".into(),
        }),
        C::CreateAmbiguous => of(R::CreateAmbiguous {
            display_name: DISPLAY_NAME.into(),
            deployed_models: vec![dm(), format!("{DEPLOYED}-b")],
        }),
        C::ObservedWithoutDeployedModel => of(R::ObservedWithoutDeployedModel),
        C::ScaleUnsupported => of(R::ScaleUnsupported {
            plan: "lora".into(),
            deployed: 1,
            asked: 2,
        }),
        C::CapacityRefused => of(R::CapacityRefused {
            asked: 3,
            error: "capacity must be a multiple of the model's base capacity 2".into(),
        }),
        C::LimitsUnsupported => of(R::LimitsUnsupported {
            detail: "Model Studio changes the request limits of plan mu deployments only".into(),
        }),
        C::CredentialsMissing => of(R::CredentialsMissing {
            problem: CredentialProblem::SecretNotFound {
                name: "dashscope".into(),
            },
            deleting: false,
        }),
        C::InvalidApiKey => of(R::Remote {
            failure: RemoteFailure::InvalidApiKey,
            error: "Invalid API-key provided.".into(),
        }),
        C::AccessDenied => of(R::Remote {
            failure: RemoteFailure::AccessDenied,
            error: "Access denied.".into(),
        }),
        C::Throttled => of(R::Remote {
            failure: RemoteFailure::Throttled,
            error: "Requests throttling triggered.".into(),
        }),
        C::RemoteUnavailable => of(R::Remote {
            failure: RemoteFailure::RemoteUnavailable,
            error: "An internal error occurred.".into(),
        }),
        C::RemoteError => of(R::Remote {
            failure: RemoteFailure::RemoteError,
            error: "A new kind of refusal.".into(),
        }),
        C::DeletionBlocked => DeploymentSample {
            reason: R::DeletionBlocked {
                deployed_model: dm(),
                error: "Deployment can only be deleted when stopped or failed.".into(),
            },
            deleting: true,
        },
        C::WorkspaceChanged => of(R::WorkspaceChanged {
            deployed_model: dm(),
            recorded: FINGERPRINT.into(),
            current: "sha256:fedcba9876543210".into(),
        }),
    }
}

/// A ModelDeployment as the API server serves it, before any status.
pub fn deployment_object(name: &str, generation: i64) -> ModelDeployment {
    serde_json::from_value(json!({
        "apiVersion": "modelstudio.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {
            "name": name,
            "namespace": "ml-team",
            "uid": "7a2e3d4c-5b6f-4a71-9b8c-0d1e2f3a4b5c",
            "generation": generation,
            "creationTimestamp": CREATED,
            "finalizers": [FINALIZER],
        },
        "spec": {
            "modelImportRef": {"name": "qwen3-lora"},
            "capacity": 2,
            "apiKeySecretRef": {"name": "dashscope", "key": "api-key"},
        }
    }))
    .expect("a valid ModelDeployment")
}

/// The object of a sample: the status the core writes for its reason at `generation`.
pub fn deployment_case(name: &str, sample: &DeploymentSample) -> ModelDeployment {
    let mut obj = deployment_object(name, 1);
    if sample.deleting {
        obj.metadata.deletion_timestamp = Some(Time(time(DELETED)));
        obj.metadata.deletion_grace_period_seconds = Some(0);
        obj.metadata.generation = Some(2);
    }
    let generation = obj.metadata.generation;
    let reason = &sample.reason;
    let conditions = merge_conditions(
        &[],
        conditions_of(
            reason.meaning(),
            reason.code().as_str(),
            &reason.message(),
            generation,
        ),
        time(super::WRITTEN),
    );
    let status = DeploymentStatus {
        deployed_model: Some(DEPLOYED.into()),
        model_name: Some(MODEL_NAME.into()),
        display_name: Some(DISPLAY_NAME.into()),
        phase: Some(if sample.deleting {
            DeploymentPhase::Deleting
        } else {
            DeploymentPhase::Running
        }),
        key_fingerprint: Some(FINGERPRINT.into()),
        observed_generation: generation,
        conditions,
        ..Default::default()
    };
    obj.status = Some(model_deployment_status(&status));
    obj
}
