//! What to do next, and what a remote answer means for the resource: pure functions over plain
//! data, no Kubernetes or HTTP types, so every case is tested without a server.

use crate::crd::{DeletionPolicy, Phase};
use crate::modelstudio::{ApiError, ImportJob, RemoteStatus};

/// What the reconciler knows about a resource before it calls anything.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Snapshot {
    pub generation: Option<i64>,
    pub deleting: bool,
    pub has_finalizer: bool,
    pub deletion_policy: DeletionPolicy,
    pub spec_job_id: Option<String>,
    pub status_job_id: Option<String>,
    /// The generation at which the resource stalled waiting for a spec change, if it did.
    pub stalled_generation: Option<i64>,
    /// A create was attempted and its job is not recorded: it may exist.
    pub create_attempted: bool,
}

/// The next step for a resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Put the finalizer on before anything remote exists.
    AddFinalizer,
    /// Create the remote job.
    Create,
    /// A create may have taken effect without its job being recorded: look for the job first.
    Recover,
    /// Check that `spec.jobId` exists and take it over.
    Adopt { job_id: String },
    /// Read the job and mirror it.
    Poll { job_id: String },
    /// The spec names another job than the one this resource already tracks.
    JobIdConflict { spec: String, status: String },
    /// Stalled on this generation: nothing happens until the spec changes.
    WaitForSpecChange,
    /// Delete the remote job, then release the resource.
    Delete { job_id: String },
    /// Release the resource without a remote call.
    Release { reason: ReleaseReason },
    /// Being deleted without our finalizer: not ours to act on.
    Nothing,
}

/// Why the finalizer goes without a DELETE call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseReason {
    /// `deletionPolicy: Orphan`.
    Orphan,
    /// No remote job was ever created or adopted.
    NeverCreated,
}

/// Decides the next step.
pub fn plan(s: &Snapshot) -> Plan {
    let job_id = s.status_job_id.clone().or_else(|| s.spec_job_id.clone());
    if s.deleting {
        if !s.has_finalizer {
            return Plan::Nothing;
        }
        // A create may have made a job that is not recorded: find it before deleting or letting go.
        if s.deletion_policy == DeletionPolicy::Delete
            && s.create_attempted
            && s.status_job_id.is_none()
        {
            return Plan::Recover;
        }
        return match (s.deletion_policy, job_id) {
            (DeletionPolicy::Orphan, _) => Plan::Release {
                reason: ReleaseReason::Orphan,
            },
            (DeletionPolicy::Delete, None) => Plan::Release {
                reason: ReleaseReason::NeverCreated,
            },
            (DeletionPolicy::Delete, Some(job_id)) => Plan::Delete { job_id },
        };
    }
    if !s.has_finalizer {
        return Plan::AddFinalizer;
    }
    if s.stalled_generation.is_some() && s.stalled_generation == s.generation {
        return Plan::WaitForSpecChange;
    }
    match (&s.spec_job_id, &s.status_job_id) {
        (Some(spec), Some(status)) if spec != status => Plan::JobIdConflict {
            spec: spec.clone(),
            status: status.clone(),
        },
        (_, Some(status)) => Plan::Poll {
            job_id: status.clone(),
        },
        // A create may have made a job: find it before taking another one over.
        (Some(_), None) if s.create_attempted => Plan::Recover,
        (Some(spec), None) => Plan::Adopt {
            job_id: spec.clone(),
        },
        (None, None) if s.create_attempted => Plan::Recover,
        (None, None) => Plan::Create,
    }
}

/// The health of a resource, from which the kstatus conditions are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Work is under way (Reconciling=True, Ready=False).
    Progressing {
        reason: &'static str,
        message: String,
    },
    /// Done and usable (Ready=True).
    Ready {
        reason: &'static str,
        message: String,
    },
    /// Cannot progress without a person (Stalled=True, Ready=False).
    Stalled {
        reason: &'static str,
        message: String,
    },
    /// Not ready for a reason that retrying may cure (Ready=False, Reconciling=True).
    Degraded {
        reason: &'static str,
        message: String,
    },
}

impl Health {
    pub fn reason(&self) -> &'static str {
        match self {
            Health::Progressing { reason, .. }
            | Health::Ready { reason, .. }
            | Health::Stalled { reason, .. }
            | Health::Degraded { reason, .. } => reason,
        }
    }

    pub fn message(&self) -> &str {
        match self {
            Health::Progressing { message, .. }
            | Health::Ready { message, .. }
            | Health::Stalled { message, .. }
            | Health::Degraded { message, .. } => message,
        }
    }

    /// Stalls that only a spec change can cure (as opposed to a failed job, which is final).
    pub fn waits_for_spec_change(&self) -> bool {
        matches!(self, Health::Stalled { reason, .. } if SPEC_STALL_REASONS.contains(reason))
    }
}

/// Condition reasons of stalls that are retried only after the spec changes.
pub const SPEC_STALL_REASONS: &[&str] = &[
    "InvalidParameter",
    "BaseModelNotFound",
    "JobNotFound",
    "JobIdConflict",
    "CreateAmbiguous",
];

/// When to look at the resource again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requeue {
    /// At the poll interval (a job in progress, or a deletion that is blocked).
    Poll,
    /// At the slow resync interval (a finished job).
    Resync,
    /// After a backoff that grows with each consecutive failure, at least `min`.
    Backoff { min: Option<std::time::Duration> },
    /// Only when the resource changes.
    Never,
}

/// The mirrored view of a remote job.
#[derive(Debug, Clone, PartialEq)]
pub struct JobView {
    pub job_id: String,
    pub model_name: Option<String>,
    pub remote_status: String,
    pub phase: Phase,
    pub error_code: Option<String>,
    pub created_at: Option<String>,
    pub health: Health,
    pub requeue: Requeue,
}

/// What a job read from the API means for the resource.
pub fn observe_job(job: &ImportJob) -> JobView {
    let status = job.remote_status();
    let (phase, health, requeue) = match &status {
        RemoteStatus::Pending => (
            Phase::Pending,
            Health::Progressing {
                reason: "JobPending",
                message: format!("Import job {} is queued in Model Studio", job.job_id),
            },
            Requeue::Poll,
        ),
        RemoteStatus::Running => (
            Phase::Running,
            Health::Progressing {
                reason: "JobRunning",
                message: format!("Import job {} is importing the model files", job.job_id),
            },
            Requeue::Poll,
        ),
        RemoteStatus::Succeeded => (
            Phase::Succeeded,
            Health::Ready {
                reason: "JobSucceeded",
                message: match &job.model_name {
                    Some(name) => format!("Model {name} was imported and can be deployed"),
                    None => format!("Import job {} succeeded", job.job_id),
                },
            },
            Requeue::Resync,
        ),
        RemoteStatus::Failed => (
            Phase::Failed,
            Health::Stalled {
                reason: "JobFailed",
                message: format!(
                    "Import job {} failed: {}. Fix the files in OSS, then create a new ModelImport",
                    job.job_id,
                    job.error_code
                        .as_deref()
                        .map(|e| e.trim().trim_end_matches('.'))
                        .unwrap_or("Model Studio gave no reason")
                ),
            },
            Requeue::Resync,
        ),
        RemoteStatus::Unknown(s) => (
            Phase::Running,
            Health::Progressing {
                reason: "UnknownJobStatus",
                message: format!(
                    "Import job {} reports status {s:?}, which this controller does not know; still watching it",
                    job.job_id
                ),
            },
            Requeue::Poll,
        ),
    };
    JobView {
        job_id: job.job_id.clone(),
        model_name: job.model_name.clone(),
        remote_status: job.status.clone(),
        phase,
        error_code: job
            .error_code
            .clone()
            .filter(|_| status == RemoteStatus::Failed),
        created_at: job.gmt_create.clone(),
        health,
        requeue,
    }
}

/// Which remote call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Create,
    /// Listing jobs to find the job of a lost create.
    Recover,
    Adopt,
    Poll,
    Delete,
}

/// What a failed remote call means for the resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorOutcome {
    pub health: Health,
    pub requeue: Requeue,
}

/// Decides on a failed call by its error class.
pub fn on_api_error(op: Operation, err: &ApiError) -> ErrorOutcome {
    let text = err.to_string();
    let stalled = |reason, message| ErrorOutcome {
        health: Health::Stalled { reason, message },
        requeue: Requeue::Never,
    };
    let retry = |reason, message| ErrorOutcome {
        health: Health::Degraded { reason, message },
        requeue: Requeue::Backoff {
            min: err.retry_after(),
        },
    };
    match (op, err) {
        (Operation::Create, ApiError::InvalidParameter(r)) => stalled(
            "InvalidParameter",
            format!(
                "Model Studio refused the import: {r}. The import fields are immutable: \
                 delete this ModelImport and create one with a corrected spec"
            ),
        ),
        (Operation::Create, ApiError::NotFound(r)) => stalled(
            "BaseModelNotFound",
            format!(
                "Model Studio cannot import onto this base model: {r}. Delete this ModelImport and \
                 create one with a base model that supports import"
            ),
        ),
        (Operation::Adopt | Operation::Poll, ApiError::NotFound(r)) => stalled(
            "JobNotFound",
            format!("The import job does not exist in Model Studio, or this API key cannot see it: {r}"),
        ),
        (Operation::Delete, ApiError::OperationDenied(r)) => ErrorOutcome {
            health: Health::Progressing {
                reason: "DeletionBlocked",
                message: format!(
                    "The import job cannot be deleted while it is still pending or running ({}); retrying until it finishes",
                    r.message
                ),
            },
            requeue: Requeue::Poll,
        },
        (_, ApiError::InvalidApiKey(_)) => retry("InvalidApiKey", text),
        (_, ApiError::AccessDenied(_)) => retry("AccessDenied", text),
        // The job may exist: the next attempt looks for it before creating again.
        (Operation::Create, e) if !e.create_certainly_not_applied() => retry(
            "CreateUnconfirmed",
            format!(
                "The create request may have reached Model Studio but no answer came back ({text}); \
                 looking for the job before trying again"
            ),
        ),
        (_, e) if e.is_transient() => retry(
            match e {
                ApiError::Throttled { .. } => "Throttled",
                _ => "RemoteUnavailable",
            },
            text,
        ),
        // Anything else is not expected to cure itself, but a person may fix the account or the
        // service may change: retry slowly rather than give up.
        (_, _) => retry("RemoteError", text),
    }
}

/// What a DELETE answer means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeletionOutcome {
    /// The job is gone: remove the finalizer.
    Released { already_gone: bool },
    /// Keep the finalizer and try again.
    Retry(ErrorOutcome),
}

pub fn on_delete(result: &Result<ImportJob, ApiError>) -> DeletionOutcome {
    match result {
        Ok(_) => DeletionOutcome::Released {
            already_gone: false,
        },
        Err(ApiError::NotFound(_)) => DeletionOutcome::Released { already_gone: true },
        Err(e) => DeletionOutcome::Retry(on_api_error(Operation::Delete, e)),
    }
}

/// What an `OperationDenied` DELETE means, given the job's status read right after it.
pub fn on_delete_denied(denied: ErrorOutcome, job: Option<&ImportJob>) -> ErrorOutcome {
    match job.map(|j| (j, j.remote_status())) {
        // The documented refusal is for unfinished jobs; a finished one refused is something else
        // (in use by a deployment, perhaps): say so, and retry slowly.
        Some((j, status)) if status.is_terminal() => ErrorOutcome {
            health: Health::Degraded {
                reason: "DeletionRefused",
                message: format!(
                    "Model Studio refuses to delete import job {} although it has finished ({}): {}. \
                     Remove what uses the model (a deployment, perhaps), or set spec.deletionPolicy \
                     to Orphan to keep the job",
                    j.job_id,
                    j.status,
                    denied.health.message()
                ),
            },
            requeue: Requeue::Backoff { min: None },
        },
        _ => denied,
    }
}

/// Why no API key could be had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialProblem {
    NoSecretRefAndNoDefault,
    SecretNotFound { name: String },
    KeyMissing { name: String, key: String },
    KeyEmpty { name: String, key: String },
}

pub fn on_credentials(problem: &CredentialProblem, deleting: bool) -> ErrorOutcome {
    let mut message = match problem {
        CredentialProblem::NoSecretRefAndNoDefault => {
            "spec.apiKeySecretRef is not set and the controller has no default API key: \
             set spec.apiKeySecretRef to a Secret holding the DashScope API key"
                .to_string()
        }
        CredentialProblem::SecretNotFound { name } => {
            format!("Secret {name:?} (spec.apiKeySecretRef) does not exist in this namespace")
        }
        CredentialProblem::KeyMissing { name, key } => {
            format!("Secret {name:?} has no key {key:?} (spec.apiKeySecretRef.key)")
        }
        CredentialProblem::KeyEmpty { name, key } => {
            format!("Secret {name:?} key {key:?} is empty or not UTF-8 text")
        }
    };
    if deleting {
        message.push_str(
            ". The job is deleted once the key is back; to let the resource go without deleting \
             the job, set spec.deletionPolicy to Orphan",
        );
    }
    ErrorOutcome {
        health: Health::Degraded {
            reason: "CredentialsMissing",
            message,
        },
        requeue: Requeue::Backoff { min: None },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modelstudio::RemoteError;
    use std::time::Duration;

    fn snap() -> Snapshot {
        Snapshot {
            generation: Some(1),
            has_finalizer: true,
            ..Default::default()
        }
    }

    fn remote(code: &str, status: u16) -> RemoteError {
        RemoteError {
            code: code.into(),
            message: "msg".into(),
            request_id: Some("rid".into()),
            http_status: status,
        }
    }

    fn job(status: &str) -> ImportJob {
        ImportJob {
            job_id: "job-1".into(),
            model_name: Some("qwen3-32b-offline-20240101-abc1".into()),
            display_name: None,
            source: Some("OSS".into()),
            weight_type: None,
            storage_info: None,
            status: status.into(),
            gmt_create: Some("2024-01-01T12:00:00.000+00:00".into()),
            error_code: (status == "FAILED").then(|| "Failed to get files from OSS.".into()),
        }
    }

    #[test]
    fn finalizer_comes_before_anything_remote() {
        let s = Snapshot {
            has_finalizer: false,
            ..snap()
        };
        assert_eq!(plan(&s), Plan::AddFinalizer);
        let s = Snapshot {
            has_finalizer: false,
            spec_job_id: Some("j".into()),
            ..snap()
        };
        assert_eq!(plan(&s), Plan::AddFinalizer);
    }

    #[test]
    fn create_adopt_poll() {
        assert_eq!(plan(&snap()), Plan::Create);
        let s = Snapshot {
            spec_job_id: Some("j".into()),
            ..snap()
        };
        assert_eq!(plan(&s), Plan::Adopt { job_id: "j".into() });
        let s = Snapshot {
            status_job_id: Some("j".into()),
            ..snap()
        };
        assert_eq!(plan(&s), Plan::Poll { job_id: "j".into() });
        let s = Snapshot {
            create_attempted: true,
            ..snap()
        };
        assert_eq!(plan(&s), Plan::Recover);
        let s = Snapshot {
            create_attempted: true,
            status_job_id: Some("j".into()),
            ..snap()
        };
        assert_eq!(plan(&s), Plan::Poll { job_id: "j".into() });
        let s = Snapshot {
            spec_job_id: Some("j".into()),
            status_job_id: Some("j".into()),
            ..snap()
        };
        assert_eq!(plan(&s), Plan::Poll { job_id: "j".into() });
        let s = Snapshot {
            spec_job_id: Some("a".into()),
            status_job_id: Some("b".into()),
            ..snap()
        };
        assert_eq!(
            plan(&s),
            Plan::JobIdConflict {
                spec: "a".into(),
                status: "b".into()
            }
        );
    }

    #[test]
    fn stalled_generation_waits_for_a_new_spec() {
        let s = Snapshot {
            stalled_generation: Some(1),
            ..snap()
        };
        assert_eq!(plan(&s), Plan::WaitForSpecChange);
        let s = Snapshot {
            stalled_generation: Some(1),
            generation: Some(2),
            ..snap()
        };
        assert_eq!(plan(&s), Plan::Create);
    }

    #[test]
    fn deletion_with_both_policies_with_and_without_a_job() {
        let deleting = |policy, status_job: Option<&str>, spec_job: Option<&str>| Snapshot {
            deleting: true,
            deletion_policy: policy,
            status_job_id: status_job.map(Into::into),
            spec_job_id: spec_job.map(Into::into),
            ..snap()
        };
        use DeletionPolicy::*;
        assert_eq!(
            plan(&deleting(Delete, Some("j"), None)),
            Plan::Delete { job_id: "j".into() }
        );
        assert_eq!(
            plan(&deleting(Delete, None, Some("s"))),
            Plan::Delete { job_id: "s".into() }
        );
        assert_eq!(
            plan(&deleting(Delete, None, None)),
            Plan::Release {
                reason: ReleaseReason::NeverCreated
            }
        );
        assert_eq!(
            plan(&deleting(Orphan, Some("j"), None)),
            Plan::Release {
                reason: ReleaseReason::Orphan
            }
        );
        assert_eq!(
            plan(&deleting(Orphan, None, None)),
            Plan::Release {
                reason: ReleaseReason::Orphan
            }
        );
        let mut s = deleting(Delete, None, None);
        s.create_attempted = true;
        assert_eq!(plan(&s), Plan::Recover);
        // Also with spec.jobId: the unrecorded create's job is found first, not leaked.
        let mut with_spec = deleting(Delete, None, Some("s"));
        with_spec.create_attempted = true;
        assert_eq!(plan(&with_spec), Plan::Recover);
        s.deletion_policy = Orphan;
        assert_eq!(
            plan(&s),
            Plan::Release {
                reason: ReleaseReason::Orphan
            }
        );
        let mut s = deleting(Delete, Some("j"), None);
        s.has_finalizer = false;
        assert_eq!(plan(&s), Plan::Nothing);
        // A stall never blocks deletion.
        let mut s = deleting(Delete, Some("j"), None);
        s.stalled_generation = s.generation;
        assert_eq!(plan(&s), Plan::Delete { job_id: "j".into() });
    }

    #[test]
    fn every_remote_status() {
        let v = observe_job(&job("PENDING"));
        assert_eq!((v.phase, v.requeue), (Phase::Pending, Requeue::Poll));
        assert!(matches!(
            v.health,
            Health::Progressing {
                reason: "JobPending",
                ..
            }
        ));
        let v = observe_job(&job("RUNNING"));
        assert_eq!((v.phase, v.requeue), (Phase::Running, Requeue::Poll));
        for spelling in ["SUCCESSED", "SUCCEEDED"] {
            let v = observe_job(&job(spelling));
            assert_eq!((v.phase, v.requeue), (Phase::Succeeded, Requeue::Resync));
            assert!(matches!(v.health, Health::Ready { .. }));
            assert_eq!(v.remote_status, spelling);
        }
        let v = observe_job(&job("FAILED"));
        assert_eq!(v.phase, Phase::Failed);
        assert!(matches!(
            v.health,
            Health::Stalled {
                reason: "JobFailed",
                ..
            }
        ));
        assert!(v.health.message().contains("Failed to get files from OSS."));
        assert_eq!(
            v.error_code.as_deref(),
            Some("Failed to get files from OSS.")
        );
        assert!(!v.health.waits_for_spec_change());
        let v = observe_job(&job("PAUSED"));
        assert_eq!((v.phase, v.requeue), (Phase::Running, Requeue::Poll));
        assert!(v.health.message().contains("PAUSED"));
    }

    #[test]
    fn every_error_code_on_create() {
        let o = on_api_error(
            Operation::Create,
            &ApiError::InvalidParameter(remote("InvalidParameter", 400)),
        );
        assert_eq!(o.requeue, Requeue::Never);
        assert!(o.health.waits_for_spec_change());
        assert!(o.health.message().contains("msg"));
        let o = on_api_error(
            Operation::Create,
            &ApiError::NotFound(remote("NotFound", 404)),
        );
        assert_eq!(o.health.reason(), "BaseModelNotFound");
        assert!(o.health.waits_for_spec_change());
        let o = on_api_error(
            Operation::Create,
            &ApiError::InvalidApiKey(remote("InvalidApiKey", 401)),
        );
        assert_eq!(o.health.reason(), "InvalidApiKey");
        assert_eq!(o.requeue, Requeue::Backoff { min: None });
        let o = on_api_error(
            Operation::Create,
            &ApiError::AccessDenied(remote("AccessDenied", 403)),
        );
        assert_eq!(o.health.reason(), "AccessDenied");
        let o = on_api_error(
            Operation::Create,
            &ApiError::Throttled {
                remote: remote("Throttling.RateQuota", 429),
                retry_after: Some(Duration::from_secs(7)),
            },
        );
        assert_eq!(o.health.reason(), "Throttled");
        assert_eq!(
            o.requeue,
            Requeue::Backoff {
                min: Some(Duration::from_secs(7))
            }
        );
        // A 5xx or a lost answer may have made the job: the retry looks for it first.
        for e in [
            ApiError::Server(remote("InternalError", 500)),
            ApiError::Timeout(Duration::from_secs(30)),
            ApiError::UnexpectedBody {
                status: 502,
                excerpt: "<html>".into(),
                retry_after: None,
            },
        ] {
            let o = on_api_error(Operation::Create, &e);
            assert_eq!(o.health.reason(), "CreateUnconfirmed", "{e}");
            assert_eq!(o.requeue, Requeue::Backoff { min: None });
        }
        // An unknown code may be a gateway's timeout: the job may exist.
        let o = on_api_error(Operation::Create, &ApiError::Unknown(remote("Weird", 400)));
        assert_eq!(o.health.reason(), "CreateUnconfirmed");
        let o = on_api_error(Operation::Poll, &ApiError::Unknown(remote("Weird", 400)));
        assert_eq!(o.health.reason(), "RemoteError");
    }

    #[test]
    fn every_error_code_on_poll_and_delete() {
        let o = on_api_error(
            Operation::Poll,
            &ApiError::NotFound(remote("NotFound", 404)),
        );
        assert_eq!(o.health.reason(), "JobNotFound");
        assert_eq!(o.requeue, Requeue::Never);
        let o = on_api_error(
            Operation::Adopt,
            &ApiError::NotFound(remote("NotFound", 404)),
        );
        assert_eq!(o.health.reason(), "JobNotFound");
        let o = on_api_error(
            Operation::Poll,
            &ApiError::Server(remote("InternalError", 500)),
        );
        assert_eq!(o.health.reason(), "RemoteUnavailable");
        assert_eq!(o.requeue, Requeue::Backoff { min: None });
        let o = on_api_error(Operation::Poll, &ApiError::Timeout(Duration::from_secs(1)));
        assert_eq!(o.health.reason(), "RemoteUnavailable");
        for status in [400, 403, 409] {
            match on_delete(&Err(ApiError::OperationDenied(remote(
                "OperationDenied",
                status,
            )))) {
                DeletionOutcome::Retry(o) => {
                    assert_eq!(o.health.reason(), "DeletionBlocked");
                    assert_eq!(o.requeue, Requeue::Poll);
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(
            on_delete(&Ok(job("SUCCESSED"))),
            DeletionOutcome::Released {
                already_gone: false
            }
        );
        assert_eq!(
            on_delete(&Err(ApiError::NotFound(remote("NotFound", 404)))),
            DeletionOutcome::Released { already_gone: true }
        );
        match on_delete(&Err(ApiError::Server(remote("InternalError", 500)))) {
            DeletionOutcome::Retry(o) => assert_eq!(o.requeue, Requeue::Backoff { min: None }),
            other => panic!("{other:?}"),
        }
        match on_delete(&Err(ApiError::InvalidApiKey(remote("InvalidApiKey", 401)))) {
            DeletionOutcome::Retry(o) => assert_eq!(o.health.reason(), "InvalidApiKey"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_finished_job_refused_deletion_is_not_called_running() {
        let denied = match on_delete(&Err(ApiError::OperationDenied(remote(
            "OperationDenied",
            400,
        )))) {
            DeletionOutcome::Retry(o) => o,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            on_delete_denied(denied.clone(), Some(&job("RUNNING"))),
            denied
        );
        assert_eq!(on_delete_denied(denied.clone(), None), denied);
        let o = on_delete_denied(denied, Some(&job("SUCCESSED")));
        assert_eq!(o.health.reason(), "DeletionRefused");
        assert!(o.health.message().contains("Orphan"));
        assert_eq!(o.requeue, Requeue::Backoff { min: None });
    }

    #[test]
    fn credential_problems_say_what_to_fix() {
        let o = on_credentials(
            &CredentialProblem::KeyMissing {
                name: "s".into(),
                key: "api-key".into(),
            },
            false,
        );
        assert_eq!(o.health.reason(), "CredentialsMissing");
        assert!(o.health.message().contains("api-key"));
        assert_eq!(o.requeue, Requeue::Backoff { min: None });
        let o = on_credentials(&CredentialProblem::NoSecretRefAndNoDefault, false);
        assert!(o.health.message().contains("spec.apiKeySecretRef"));
        let o = on_credentials(
            &CredentialProblem::SecretNotFound { name: "s".into() },
            true,
        );
        assert!(
            o.health.message().contains("Orphan"),
            "a deletion names its way out"
        );
    }
}
