//! Every ModelImport condition reason, in one place: what it means for Ready, Reconciling and
//! Stalled, the message a person reads, and the warning it is announced with. No reason is
//! written as a string anywhere else. The meanings and the building of conditions are shared
//! with ModelDeployment (`conditions`), and so are the events (`events`).

use crate::api::RemoteFailure;
use crate::conditions::codes;
use crate::conditions::Meaning;
use crate::credentials::CredentialProblem;
use crate::events::{Action, Event, EventType};
use std::time::Duration;

codes! {
    /// The name of a ModelImport condition reason, as written in `status.conditions[].reason`.
    Code {
    Creating => Reconciling, false, "The create request is about to be sent (its intent is recorded first).";
    CreateUnconfirmed => Reconciling, false, "A create may have made a job whose answer was lost; the job is looked for before creating again.";
    JobPending => Reconciling, false, "The import job is queued in Model Studio.";
    JobRunning => Reconciling, false, "The import job is importing the files.";
    UnknownJobStatus => Reconciling, false, "The job reports a status this controller does not know; it keeps watching.";
    JobNotVisibleYet => Reconciling, false, "A job created moments ago cannot be read yet.";
    JobSucceeded => Ready, false, "The model was imported and can be deployed.";
    JobFailed => Stalled, false, "The import failed; the job is final. Fix the files and create a new ModelImport.";
    InvalidParameter => Stalled, true, "Model Studio refused the import as invalid; waits for a new spec.";
    BaseModelNotFound => Stalled, true, "The base model does not support import; waits for a new spec.";
    JobNotFound => Stalled, true, "The job to adopt or mirror does not exist for this API key; waits for a new spec.";
    JobIdConflict => Stalled, true, "spec.jobId names another job than the one already tracked.";
    ObservedWithoutJobId => Stalled, true, "managementPolicy Observe adopts a job by spec.jobId, which is not set; waits for a new spec.";
    CreateAmbiguous => Stalled, true, "Several jobs carry this resource's display name; a person chooses with spec.jobId.";
    DeletionBlocked => Reconciling, false, "The job cannot be deleted while it is pending or running; retried until it finishes.";
    DeletionRefused => Reconciling, false, "Model Studio refuses to delete a finished job; retried slowly.";
    WorkspaceChanged => Stalled, false, "The job was made with a key of another workspace than the current one, which cannot see it; a person restores the key or orphans the job.";
    ServedByDeployment => Reconciling, false, "The job is kept while a ModelDeployment serves its model; deletion goes on once the deployment is gone.";
}}

/// Why a create may or may not have made a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unconfirmed {
    /// The create was sent and no answer came back.
    NoAnswer { error: String },
    /// No job carries the token yet, but the grace period after the create has not passed (or
    /// the listing was incomplete).
    NotListedYet {
        display_name: String,
        grace: Duration,
    },
}

/// A condition reason with what its message needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    Creating,
    CreateUnconfirmed(Unconfirmed),
    JobPending {
        job_id: String,
    },
    JobRunning {
        job_id: String,
    },
    UnknownJobStatus {
        job_id: String,
        status: String,
    },
    JobNotVisibleYet {
        job_id: String,
        error: String,
    },
    JobSucceeded {
        job_id: String,
        model_name: Option<String>,
    },
    JobFailed {
        job_id: String,
        error_code: Option<String>,
    },
    InvalidParameter {
        error: String,
    },
    BaseModelNotFound {
        error: String,
    },
    JobNotFound {
        error: String,
    },
    JobIdConflict {
        spec: String,
        status: String,
    },
    /// Observed, with no job to observe.
    ObservedWithoutJobId,
    CreateAmbiguous {
        display_name: String,
        job_ids: Vec<String>,
    },
    CredentialsMissing {
        problem: CredentialProblem,
        deleting: bool,
    },
    /// A failure of the key, the quota or the service, named alike for every kind.
    Remote {
        failure: RemoteFailure,
        error: String,
    },
    DeletionBlocked {
        error: String,
    },
    DeletionRefused {
        job_id: String,
        status: String,
        error: String,
    },
    WorkspaceChanged {
        job_id: String,
        recorded: String,
        current: String,
    },
    /// A ModelDeployment of the namespace serves the model: the job is deleted once it is gone.
    ServedByDeployment {
        deployment: String,
    },
}

impl Reason {
    pub fn code(&self) -> Code {
        match self {
            Reason::Creating => Code::Creating,
            Reason::CreateUnconfirmed(_) => Code::CreateUnconfirmed,
            Reason::JobPending { .. } => Code::JobPending,
            Reason::JobRunning { .. } => Code::JobRunning,
            Reason::UnknownJobStatus { .. } => Code::UnknownJobStatus,
            Reason::JobNotVisibleYet { .. } => Code::JobNotVisibleYet,
            Reason::JobSucceeded { .. } => Code::JobSucceeded,
            Reason::JobFailed { .. } => Code::JobFailed,
            Reason::InvalidParameter { .. } => Code::InvalidParameter,
            Reason::BaseModelNotFound { .. } => Code::BaseModelNotFound,
            Reason::JobNotFound { .. } => Code::JobNotFound,
            Reason::JobIdConflict { .. } => Code::JobIdConflict,
            Reason::ObservedWithoutJobId => Code::ObservedWithoutJobId,
            Reason::CreateAmbiguous { .. } => Code::CreateAmbiguous,
            Reason::CredentialsMissing { .. } => Code::CredentialsMissing,
            Reason::Remote { failure, .. } => (*failure).into(),
            Reason::DeletionBlocked { .. } => Code::DeletionBlocked,
            Reason::DeletionRefused { .. } => Code::DeletionRefused,
            Reason::WorkspaceChanged { .. } => Code::WorkspaceChanged,
            Reason::ServedByDeployment { .. } => Code::ServedByDeployment,
        }
    }

    pub fn meaning(&self) -> Meaning {
        self.code().meaning()
    }

    pub fn waits_for_spec_change(&self) -> bool {
        self.code().waits_for_spec_change()
    }

    /// The condition message: what happened and, where a person must act, what to do.
    pub fn message(&self) -> String {
        match self {
            Reason::Creating => "Creating the import job in Model Studio".into(),
            Reason::CreateUnconfirmed(Unconfirmed::NoAnswer { error }) => format!(
                "The create request may have reached Model Studio but no answer came back ({error}); \
                 looking for the job before trying again"
            ),
            Reason::CreateUnconfirmed(Unconfirmed::NotListedYet { display_name, grace }) => format!(
                "No import job carries this resource's display name {display_name:?} yet; looking again until {grace:?} \
                 after the create before concluding that it made none"
            ),
            Reason::JobPending { job_id } => format!("Import job {job_id} is queued in Model Studio"),
            Reason::JobRunning { job_id } => {
                format!("Import job {job_id} is importing the model files")
            }
            Reason::UnknownJobStatus { job_id, status } => format!(
                "Import job {job_id} reports status {status:?}, which this controller does not know; still watching it"
            ),
            Reason::JobNotVisibleYet { job_id, error } => {
                format!("Import job {job_id} was just created and cannot be read yet: {error}")
            }
            Reason::JobSucceeded { job_id, model_name } => match model_name {
                Some(name) => format!("Model {name} was imported and can be deployed"),
                None => format!("Import job {job_id} succeeded"),
            },
            Reason::JobFailed { job_id, error_code } => format!(
                "Import job {job_id} failed: {}. Fix the files in OSS, then create a new ModelImport",
                error_code
                    .as_deref()
                    .map(|e| e.trim().trim_end_matches('.'))
                    .unwrap_or("Model Studio gave no reason")
            ),
            Reason::InvalidParameter { error } => format!(
                "Model Studio refused the import: {error}. The import fields are immutable: \
                 delete this ModelImport and create one with a corrected spec"
            ),
            Reason::BaseModelNotFound { error } => format!(
                "Model Studio cannot import onto this base model: {error}. Delete this ModelImport and \
                 create one with a base model that supports import"
            ),
            Reason::JobNotFound { error } => format!(
                "The import job does not exist in Model Studio, or this API key cannot see it: {error}"
            ),
            Reason::JobIdConflict { spec, status } => format!(
                "spec.jobId {spec} names another job than the one this resource already tracks ({status}); \
                 create a new ModelImport to adopt {spec}"
            ),
            Reason::ObservedWithoutJobId => "managementPolicy is Observe, which mirrors an existing \
                job and never creates one, and spec.jobId is not set: set it to the job's ID, or set \
                managementPolicy to Manage to create a job"
                .into(),
            Reason::CreateAmbiguous { display_name, job_ids } => format!(
                "{} import jobs carry this resource's display name {display_name:?}: {}. Keep one by setting \
                 spec.jobId to it, and delete the others in Model Studio",
                job_ids.len(),
                job_ids.join(", ")
            ),
            Reason::CredentialsMissing { problem, deleting } => {
                let mut message = problem.message();
                if *deleting {
                    message.push_str(
                        ". The job is deleted once the key is back; to let the resource go without deleting \
                         the job, set spec.deletionPolicy to Orphan",
                    );
                }
                message
            }
            Reason::Remote { error, .. } => error.clone(),
            Reason::DeletionBlocked { error } => format!(
                "The import job cannot be deleted while it is still pending or running ({error}); retrying until it finishes"
            ),
            Reason::DeletionRefused { job_id, status, error } => format!(
                "Model Studio refuses to delete import job {job_id} although it has finished ({status}): {}. \
                 Remove what uses the model (a deployment, perhaps), or set spec.deletionPolicy \
                 to Orphan to keep the job",
                error.trim_end_matches('.')
            ),
            Reason::WorkspaceChanged { job_id, recorded, current } => format!(
                "Import job {job_id} was made with the API key {recorded}, and the key now in use ({current}) \
                 cannot see it: the credentials point at another workspace, so the job is not taken as gone. \
                 Put the original key back (spec.apiKeySecretRef or its Secret), or set spec.deletionPolicy \
                 to Orphan to let this resource go and keep the job"
            ),
            Reason::ServedByDeployment { deployment } => format!(
                "ModelDeployment {deployment} serves this model: the import job is deleted once that \
                 deployment is gone (delete the ModelDeployment, or set spec.deletionPolicy to Orphan \
                 to let this resource go and keep the job)"
            ),
        }
    }
}

impl Event {
    /// A Warning that repeats a condition: its reason and message. (Beside the reasons it reads,
    /// so that the events both kinds publish import neither kind.)
    pub fn warning(reason: &Reason, action: Action) -> Event {
        Event {
            type_: EventType::Warning,
            reason: reason.code().as_str(),
            action,
            note: reason.message(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_reads_back_and_has_a_description() {
        for code in Code::ALL {
            assert_eq!(Code::parse(code.as_str()), Some(*code));
            assert!(!code.description().is_empty());
        }
        assert_eq!(Code::parse("Nope"), None);
        let spec_stalls: Vec<_> = Code::ALL
            .iter()
            .filter(|c| c.waits_for_spec_change())
            .collect();
        assert!(spec_stalls.iter().all(|c| c.meaning() == Meaning::Stalled));
        assert_eq!(spec_stalls.len(), 6);
    }
}
