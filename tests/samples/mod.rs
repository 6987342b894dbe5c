//! A ModelImport of each condition reason, as the controller reaches it and as its own status
//! builder (`next_status`) records it: shared by tests/argocd_health.rs and tests/kstatus.rs.
// Each test binary uses a part of it.
#![allow(dead_code)]

pub mod deployments;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use modelstudio_controller::crd::{ModelImport, FINALIZER};
use modelstudio_core::api::{ApiError, RemoteError};
use modelstudio_core::credentials::CredentialProblem;
use modelstudio_core::import::decision::{
    observe_job, on_api_error, on_delete_denied, on_read_failure, Call,
};
use modelstudio_core::import::jobs::{Job, JobState};
use modelstudio_core::import::reason::{Code, Reason};
use modelstudio_core::import::resource::{ImportStatus, Phase};
use modelstudio_core::import::status::{next_status, Update};
use serde_json::json;
use std::time::Duration;

pub const JOB_ID: &str = "ft-202601010000-abcd";
pub const DISPLAY_NAME: &str = "qwen3-lora-4k2j9x0a";
pub const MODEL_NAME: &str = "qwen3-32b-offline-20260101-ab12";
pub const CREATED: &str = "2026-01-01T00:00:00Z";
pub const WRITTEN: &str = "2026-01-01T00:05:00Z";
pub const DELETED: &str = "2026-01-01T01:00:00Z";
pub const FINGERPRINT: &str = "sha256:0123456789abcdef";

/// A reason as the controller reaches it, with the job it read and whether the resource is being
/// deleted.
pub struct Sample {
    pub reason: Reason,
    /// The job as this reconcile read it.
    pub job: Option<Job>,
    /// A job was recorded (seen running) by an earlier reconcile.
    pub tracked: bool,
    pub deleting: bool,
    pub intent: bool,
}

impl Sample {
    pub fn of(reason: Reason) -> Self {
        Sample {
            reason,
            job: None,
            tracked: false,
            deleting: false,
            intent: false,
        }
    }

    pub fn seen(job: Job) -> Self {
        Sample {
            reason: observe_job(&job).reason,
            job: Some(job),
            tracked: true,
            deleting: false,
            intent: false,
        }
    }
}

pub fn job(state: &str) -> Job {
    let parsed = JobState::parse(state);
    Job {
        id: JOB_ID.into(),
        model_name: Some(MODEL_NAME.into()),
        display_name: Some(DISPLAY_NAME.into()),
        storage: None,
        error_code: matches!(parsed, JobState::Failed)
            .then(|| "The model files in OSS are incomplete: config.json is missing.".into()),
        state: parsed,
        status_text: state.into(),
        created_at: Some("2026-01-01 08:00:10".into()),
    }
}

pub fn remote(code: &str, message: &str, http_status: u16) -> RemoteError {
    RemoteError {
        code: code.into(),
        message: message.into(),
        request_id: Some("0d9f3c1e-6b1a-4c2e-9a57-5d2b8f1e7a40".into()),
        http_status,
    }
}

/// A sample of each reason code. The match is exhaustive: a new code does not compile until it
/// has a sample here, and so a case in the test data.
pub fn sample(code: Code) -> Sample {
    let api = |op: Call, err: ApiError| on_api_error(op, &err).reason;
    // A failed look at a job recorded earlier.
    let polled = |err: ApiError| Sample {
        tracked: true,
        ..Sample::of(on_api_error(Call::Poll, &err).reason)
    };
    let denied = "Job is running, can not delete.";
    match code {
        Code::Creating => Sample {
            intent: true,
            ..Sample::of(Reason::Creating)
        },
        Code::CreateUnconfirmed => Sample {
            intent: true,
            ..Sample::of(api(
                Call::Create,
                ApiError::Timeout(Duration::from_secs(30)),
            ))
        },
        Code::JobPending => Sample::seen(job("PENDING")),
        Code::JobRunning => Sample::seen(job("RUNNING")),
        Code::UnknownJobStatus => Sample::seen(job("VALIDATING")),
        Code::JobNotVisibleYet => {
            let err = ApiError::NotFound(remote("NotFound", "Job not found.", 404));
            let (reason, _) = on_read_failure(Call::Poll, JOB_ID, &err, true, false);
            Sample::of(reason.expect("a job created moments ago is not visible yet"))
        }
        Code::JobSucceeded => Sample::seen(job("SUCCESSED")),
        Code::JobFailed => Sample::seen(job("FAILED")),
        Code::InvalidParameter => Sample::of(api(
            Call::Create,
            ApiError::InvalidParameter(remote(
                "InvalidParameter",
                "The weight type does not match the files.",
                400,
            )),
        )),
        Code::BaseModelNotFound => Sample::of(api(
            Call::Create,
            ApiError::NotFound(remote(
                "ModelNotFound",
                "Model qwen-nope does not support import.",
                404,
            )),
        )),
        Code::JobNotFound => Sample::of(api(
            Call::Adopt,
            ApiError::NotFound(remote("NotFound", "Job not found.", 404)),
        )),
        Code::ObservedWithoutJobId => Sample::of(Reason::ObservedWithoutJobId),
        Code::JobIdConflict => Sample {
            tracked: true,
            ..Sample::of(Reason::JobIdConflict {
                spec: "ft-202601020000-ffff".into(),
                status: JOB_ID.into(),
            })
        },
        Code::CreateAmbiguous => Sample::of(Reason::CreateAmbiguous {
            display_name: DISPLAY_NAME.into(),
            job_ids: vec![JOB_ID.into(), "ft-202601010001-beef".into()],
        }),
        Code::CredentialsMissing => Sample::of(Reason::CredentialsMissing {
            problem: CredentialProblem::SecretNotFound {
                name: "dashscope".into(),
            },
            deleting: false,
        }),
        Code::InvalidApiKey => polled(ApiError::InvalidApiKey(remote(
            "InvalidApiKey",
            "Invalid API-key provided.",
            401,
        ))),
        Code::AccessDenied => polled(ApiError::AccessDenied(remote(
            "AccessDenied",
            "Access denied.",
            403,
        ))),
        Code::Throttled => polled(ApiError::Throttled {
            remote: remote("Throttling", "Requests throttling triggered.", 429),
            retry_after: Some(Duration::from_secs(5)),
        }),
        Code::RemoteUnavailable => polled(ApiError::Server(remote(
            "InternalError",
            "An internal error occurred.",
            500,
        ))),
        Code::RemoteError => polled(ApiError::Unknown(remote(
            "SomethingNew",
            "A new kind of refusal.",
            400,
        ))),
        Code::DeletionBlocked => {
            let running = job("RUNNING");
            Sample {
                reason: on_delete_denied(denied, Some(&running)).reason,
                job: Some(running),
                tracked: true,
                deleting: true,
                intent: false,
            }
        }
        Code::DeletionRefused => {
            let done = job("SUCCESSED");
            Sample {
                reason: on_delete_denied(denied, Some(&done)).reason,
                job: Some(done),
                tracked: true,
                deleting: true,
                intent: false,
            }
        }
        Code::WorkspaceChanged => Sample {
            tracked: true,
            ..Sample::of(Reason::WorkspaceChanged {
                job_id: JOB_ID.into(),
                recorded: FINGERPRINT.into(),
                current: "sha256:fedcba9876543210".into(),
            })
        },
        Code::ServedByDeployment => Sample {
            job: Some(job("SUCCESSED")),
            tracked: true,
            deleting: true,
            ..Sample::of(Reason::ServedByDeployment {
                deployment: "qwen3-lora".into(),
            })
        },
    }
}

pub fn time(text: &str) -> jiff::Timestamp {
    text.parse().expect("a valid timestamp")
}

/// A ModelImport as the API server serves it, before any status.
pub fn object(name: &str, generation: i64) -> ModelImport {
    serde_json::from_value(json!({
        "apiVersion": "modelstudio.io/v1alpha1",
        "kind": "ModelImport",
        "metadata": {
            "name": name,
            "namespace": "ml-team",
            "uid": "6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b",
            "generation": generation,
            "creationTimestamp": CREATED,
            "finalizers": [FINALIZER],
        },
        "spec": {
            "baseModel": "qwen3-32b",
            "weightType": "lora",
            "source": "oss",
            "storage": {"bucketName": "my-bucket", "objectKey": "models/qwen3-lora/"},
            "apiKeySecretRef": {"name": "dashscope", "key": "api-key"},
            "deletionPolicy": "Delete",
        },
    }))
    .expect("the test object reads as a ModelImport")
}

pub fn delete(obj: &mut ModelImport) {
    obj.metadata.deletion_timestamp = Some(Time(time(DELETED)));
    obj.metadata.deletion_grace_period_seconds = Some(0);
    // The API server bumps the generation of a custom resource when it marks it deleted.
    obj.metadata.generation = obj.metadata.generation.map(|g| g + 1);
}

/// The status a sample leads to: the job as first seen running (an earlier reconcile) if it was
/// tracked, then the sample at the object's current generation.
pub fn status_of(sample: &Sample, generation: i64) -> ImportStatus {
    let mut status = ImportStatus::default();
    if sample.tracked {
        let first = observe_job(&job("RUNNING"));
        status = next_status(
            &status,
            &Update {
                reason: Some(first.reason.clone()),
                job: Some(first),
                fingerprint: Some(FINGERPRINT.into()),
                ..Default::default()
            },
            Some(1),
            time(CREATED),
        );
    }
    let update = Update {
        job: sample.job.as_ref().map(observe_job),
        phase: sample.deleting.then_some(Phase::Deleting),
        reason: Some(sample.reason.clone()),
        intent: sample.intent.then(|| DISPLAY_NAME.to_string()),
        ..Default::default()
    };
    next_status(&status, &update, Some(generation), time(WRITTEN))
}
