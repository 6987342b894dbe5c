//! What to do next, and what a remote answer means for the resource: pure functions over plain
//! data. [`crate::step`] puts them together into one step.

use crate::correlation::{self, Expected, Recovery};
use crate::domain::{DeletionPolicy, Phase};
use crate::reason::{CredentialProblem, Reason, Unconfirmed};
use crate::remote::{ApiError, Job, JobState};
use std::time::Duration;

/// What the decision of the next step reads of a resource.
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

impl Plan {
    /// A static name, for metric labels.
    pub fn name(&self) -> &'static str {
        match self {
            Plan::AddFinalizer => "add_finalizer",
            Plan::Create => "create",
            Plan::Recover => "recover",
            Plan::Adopt { .. } => "adopt",
            Plan::Poll { .. } => "poll",
            Plan::JobIdConflict { .. } => "job_id_conflict",
            Plan::WaitForSpecChange => "wait_for_spec_change",
            Plan::Delete { .. } => "delete",
            Plan::Release { .. } => "release",
            Plan::Nothing => "nothing",
        }
    }

    /// Steps that must never act on a cached copy older than our own last write: a job recorded
    /// a moment ago may not be in the cache yet, and creating, listing everything or letting go
    /// on that copy would duplicate or leak it.
    pub fn wants_fresh_copy(&self) -> bool {
        matches!(self, Plan::Create | Plan::Recover | Plan::Release { .. })
    }

    /// Steps that call Model Studio, and so need an API key.
    pub fn calls_remote(&self) -> bool {
        matches!(
            self,
            Plan::Create
                | Plan::Recover
                | Plan::Adopt { .. }
                | Plan::Poll { .. }
                | Plan::Delete { .. }
        )
    }
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

/// When to look at the resource again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requeue {
    /// At the poll interval (a job in progress, or a deletion that is blocked).
    Poll,
    /// At the slow resync interval (a finished job).
    Resync,
    /// After a backoff that grows with each consecutive failure, at least `min`.
    Backoff { min: Option<Duration> },
    /// After exactly this long (the cache lagged behind, or the job was read a moment ago).
    After(Duration),
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
    pub reason: Reason,
    pub requeue: Requeue,
}

/// What a job read from the API means for the resource.
pub fn observe_job(job: &Job) -> JobView {
    let job_id = job.id.clone();
    let (phase, reason, requeue) = match &job.state {
        JobState::Pending => (Phase::Pending, Reason::JobPending { job_id }, Requeue::Poll),
        JobState::Running => (Phase::Running, Reason::JobRunning { job_id }, Requeue::Poll),
        JobState::Succeeded => (
            Phase::Succeeded,
            Reason::JobSucceeded {
                job_id,
                model_name: job.model_name.clone(),
            },
            Requeue::Resync,
        ),
        JobState::Failed => (
            Phase::Failed,
            Reason::JobFailed {
                job_id,
                error_code: job.error_code.clone(),
            },
            Requeue::Resync,
        ),
        JobState::Unknown(s) => (
            Phase::Running,
            Reason::UnknownJobStatus {
                job_id,
                status: s.clone(),
            },
            Requeue::Poll,
        ),
    };
    JobView {
        job_id: job.id.clone(),
        model_name: job.model_name.clone(),
        remote_status: job.status_text.clone(),
        phase,
        error_code: job
            .error_code
            .clone()
            .filter(|_| job.state == JobState::Failed),
        created_at: job.created_at.clone(),
        reason,
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

/// What a failed call (or a missing input) means for the resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub reason: Reason,
    pub requeue: Requeue,
}

/// Decides on a failed call by its error class.
pub fn on_api_error(op: Operation, err: &ApiError) -> Outcome {
    let error = err.to_string();
    let stalled = |reason| Outcome {
        reason,
        requeue: Requeue::Never,
    };
    let retry = |reason| Outcome {
        reason,
        requeue: Requeue::Backoff {
            min: err.retry_after(),
        },
    };
    match (op, err) {
        (Operation::Create, ApiError::InvalidParameter(r)) => stalled(Reason::InvalidParameter {
            error: r.to_string(),
        }),
        (Operation::Create, ApiError::NotFound(r)) => stalled(Reason::BaseModelNotFound {
            error: r.to_string(),
        }),
        (Operation::Adopt | Operation::Poll, ApiError::NotFound(r)) => {
            stalled(Reason::JobNotFound {
                error: r.to_string(),
            })
        }
        (Operation::Delete, ApiError::OperationDenied(r)) => Outcome {
            reason: Reason::DeletionBlocked {
                error: r.message.clone(),
            },
            requeue: Requeue::Poll,
        },
        (_, ApiError::InvalidApiKey(_)) => retry(Reason::InvalidApiKey { error }),
        (_, ApiError::AccessDenied(_)) => retry(Reason::AccessDenied { error }),
        // The job may exist: the next attempt looks for it before creating again.
        (Operation::Create, e) if !e.create_certainly_not_applied() => {
            retry(Reason::CreateUnconfirmed(Unconfirmed::NoAnswer { error }))
        }
        (_, ApiError::Throttled { .. }) => retry(Reason::Throttled { error }),
        (_, e) if e.is_transient() => retry(Reason::RemoteUnavailable { error }),
        // Anything else is not expected to cure itself, but a person may fix the account or the
        // service may change: retry slowly rather than give up.
        (_, _) => retry(Reason::RemoteError { error }),
    }
}

/// What a failed read of the recorded job means, given what the resource knows of it.
/// `None`: nothing to record (a finished job cannot change, so a failed look at it is no news
/// for Ready); only look again.
pub fn on_read_failure(
    op: Operation,
    job_id: &str,
    err: &ApiError,
    created_recently: bool,
    finished: bool,
) -> (Option<Reason>, Requeue) {
    let mut outcome = on_api_error(op, err);
    // A job made moments ago may not be readable yet where reads lag behind writes.
    if matches!(err, ApiError::NotFound(_)) && created_recently {
        outcome = Outcome {
            reason: Reason::JobNotVisibleYet {
                job_id: job_id.to_string(),
                error: err.to_string(),
            },
            requeue: Requeue::Backoff { min: None },
        };
    }
    if finished && outcome.reason.meaning() != crate::reason::Meaning::Stalled {
        return (None, outcome.requeue);
    }
    (Some(outcome.reason), outcome.requeue)
}

/// What a DELETE answer means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeletionOutcome {
    /// The job is gone: remove the finalizer.
    Released { already_gone: bool },
    /// Refused while the job runs: read the job to show its progress (and to tell a refused
    /// finished job from a running one), then retry.
    Denied { message: String },
    /// Keep the finalizer and try again.
    Retry(Outcome),
}

pub fn on_delete(result: &Result<Job, ApiError>) -> DeletionOutcome {
    match result {
        Ok(_) => DeletionOutcome::Released {
            already_gone: false,
        },
        Err(ApiError::NotFound(_)) => DeletionOutcome::Released { already_gone: true },
        Err(ApiError::OperationDenied(r)) => DeletionOutcome::Denied {
            message: r.message.clone(),
        },
        Err(e) => DeletionOutcome::Retry(on_api_error(Operation::Delete, e)),
    }
}

/// What an `OperationDenied` DELETE means, given the job's status read right after it.
pub fn on_delete_denied(message: &str, job: Option<&Job>) -> Outcome {
    match job {
        // The documented refusal is for unfinished jobs; a finished one refused is something else
        // (in use by a deployment, perhaps): say so, and retry slowly.
        Some(j) if j.state.is_terminal() => Outcome {
            reason: Reason::DeletionRefused {
                job_id: j.id.clone(),
                status: j.status_text.clone(),
                error: Reason::DeletionBlocked {
                    error: message.to_string(),
                }
                .message(),
            },
            requeue: Requeue::Backoff { min: None },
        },
        _ => Outcome {
            reason: Reason::DeletionBlocked {
                error: message.to_string(),
            },
            requeue: Requeue::Poll,
        },
    }
}

pub fn on_credentials(problem: &CredentialProblem, deleting: bool) -> Outcome {
    Outcome {
        reason: Reason::CredentialsMissing {
            problem: problem.clone(),
            deleting,
        },
        requeue: Requeue::Backoff { min: None },
    }
}

/// What a listing of the workspace's jobs says about a create whose answer was lost.
#[derive(Debug, Clone, PartialEq)]
pub enum RecoveryStep {
    /// Mirror this job (found by its token, or chosen by a person with spec.jobId).
    Mirror { job: Box<Job>, adopted: bool },
    /// Not listed yet, and the listing cannot prove it never will be: look again.
    Wait(Outcome),
    /// The create made nothing, and spec.jobId names a job to take over (or delete) next.
    ForgetCreate,
    /// The create made nothing and the resource is going: let it go.
    Release,
    /// The create made nothing: create now.
    Create,
    /// Several jobs carry the token: a person chooses.
    Ambiguous(Outcome),
}

/// The listing as seen: its jobs, and whether it reached its end with a total that held still.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Listing {
    pub jobs: Vec<Job>,
    pub complete: bool,
}

/// Decides from a listing of every job. `chosen` is spec.jobId; `grace_passed` whether the last
/// create attempt is old enough for a listing without its job to be final.
pub fn on_listing(
    listing: &Listing,
    expected: &Expected,
    chosen: Option<&str>,
    deleting: bool,
    grace_passed: bool,
    grace: Duration,
) -> RecoveryStep {
    match correlation::recover(&listing.jobs, expected) {
        // A person picked one of several with spec.jobId: take it over.
        Recovery::Ambiguous(ids) if chosen.is_some_and(|c| ids.iter().any(|i| i == c)) => {
            match listing.jobs.iter().find(|j| Some(j.id.as_str()) == chosen) {
                Some(job) => RecoveryStep::Mirror {
                    job: Box::new(job.clone()),
                    adopted: true,
                },
                None => RecoveryStep::Wait(Outcome {
                    reason: Reason::CreateUnconfirmed(Unconfirmed::NotListedYet {
                        display_name: expected.display_name.clone(),
                        grace,
                    }),
                    requeue: Requeue::Backoff { min: None },
                }),
            }
        }
        Recovery::Found(job) => RecoveryStep::Mirror {
            job,
            adopted: false,
        },
        // A slow create may not be listed yet: only a whole listing after the grace period counts.
        Recovery::NotCreated if !listing.complete || !grace_passed => RecoveryStep::Wait(Outcome {
            reason: Reason::CreateUnconfirmed(Unconfirmed::NotListedYet {
                display_name: expected.display_name.clone(),
                grace,
            }),
            requeue: Requeue::Backoff { min: None },
        }),
        Recovery::NotCreated if chosen.is_some() => RecoveryStep::ForgetCreate,
        Recovery::NotCreated if deleting => RecoveryStep::Release,
        Recovery::NotCreated => RecoveryStep::Create,
        Recovery::Ambiguous(job_ids) => RecoveryStep::Ambiguous(Outcome {
            reason: Reason::CreateAmbiguous {
                display_name: expected.display_name.clone(),
                job_ids,
            },
            // A deletion waits for the person: look again at the poll interval.
            requeue: if deleting {
                Requeue::Poll
            } else {
                Requeue::Never
            },
        }),
    }
}
