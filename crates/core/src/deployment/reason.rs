//! Every condition reason of a ModelDeployment, with what it means for Ready, Reconciling and
//! Stalled and the message a person reads. No deployment reason is written as a string anywhere
//! else.

use crate::api::RemoteFailure;
use crate::conditions::{codes, Meaning};
use crate::credentials::CredentialProblem;
use std::time::Duration;

codes! {
    /// The name of a ModelDeployment condition reason, as written in
    /// `status.conditions[].reason`.
    DeploymentCode {
        WaitingForImport => Reconciling, false, "The ModelImport named by spec.modelImportRef does not exist yet or is not Ready; the deployment is created once it is.";
        ImportFailed => Stalled, false, "The ModelImport named by spec.modelImportRef failed; nothing can be deployed from it.";
        Creating => Reconciling, false, "The create request is about to be sent (its intent is recorded first).";
        CreateUnconfirmed => Reconciling, false, "A create may have made a deployment whose answer was lost; it is looked for before creating again.";
        DeploymentPending => Reconciling, false, "Model Studio is bringing the deployment up (5 to 10 minutes).";
        DeploymentUpdating => Reconciling, false, "The deployment is scaling or changing its limits, or not every unit serves yet.";
        DeploymentRunning => Ready, false, "The deployment serves the model at the capacity and limits asked for.";
        UnknownDeploymentStatus => Reconciling, false, "The deployment reports a status this controller does not know; it keeps watching.";
        DeploymentStopped => Stalled, false, "The deployment was stopped in the console; a person starts it again there.";
        DeploymentFailed => Stalled, false, "The deployment failed in Model Studio.";
        DeploymentDeleting => Reconciling, false, "The deployment is being deleted in Model Studio.";
        DeploymentNotFound => Stalled, false, "The recorded deployment no longer exists (deleted outside the controller).";
        InvalidSpec => Stalled, true, "The spec breaks a rule of the deployment API (checked before sending, or refused by Model Studio); waits for a new spec.";
        ModelNotFound => Stalled, true, "Model Studio has no model of that name to deploy for this API key; waits for a new spec.";
        DeployedModelConflict => Stalled, true, "A deployment of the same model and suffix already exists; a new spec with another suffix is needed.";
        CreateAmbiguous => Stalled, true, "Several deployments carry this resource's display name; a person deletes the extra ones.";
        ObservedWithoutDeployedModel => Stalled, true, "managementPolicy Observe mirrors a deployment by spec.deployedModel, which is not set; waits for a new spec.";
        ScaleUnsupported => Stalled, true, "The plan cannot be scaled through the API; waits for spec.capacity to return to the deployed capacity.";
        CapacityRefused => Stalled, true, "Model Studio refused the new capacity; waits for a new spec.";
        LimitsUnsupported => Stalled, true, "The deployment's plan or model cannot change its limits through the API; waits for a new spec.";
        DeletionBlocked => Reconciling, false, "Model Studio refuses to delete the deployment in its present state; retried.";
        WorkspaceChanged => Stalled, false, "The deployment was made with a key of another workspace than the current one, which cannot see it.";
    }
}

/// Why a ModelImport cannot be deployed from yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportWait {
    Missing,
    NotReady { phase: Option<String> },
    Deleting,
    Unnamed,
}

/// A ModelDeployment condition reason with what its message needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeploymentReason {
    WaitingForImport {
        import: String,
        wait: ImportWait,
    },
    ImportFailed {
        import: String,
        message: String,
    },
    Creating {
        model: String,
    },
    CreateUnconfirmed {
        detail: String,
    },
    DeploymentPending {
        deployed_model: String,
    },
    DeploymentUpdating {
        deployed_model: String,
        detail: String,
    },
    DeploymentRunning {
        deployed_model: String,
        capacity: Option<u32>,
    },
    UnknownDeploymentStatus {
        deployed_model: String,
        status: String,
    },
    DeploymentStopped {
        deployed_model: String,
    },
    DeploymentFailed {
        deployed_model: String,
    },
    DeploymentDeleting {
        deployed_model: String,
        ours: bool,
    },
    DeploymentNotFound {
        deployed_model: String,
    },
    InvalidSpec {
        problems: Vec<String>,
    },
    ModelNotFound {
        model: String,
        error: String,
    },
    DeployedModelConflict {
        deployed_model: String,
        error: String,
    },
    CreateAmbiguous {
        display_name: String,
        deployed_models: Vec<String>,
    },
    /// Observed, with no deployment to observe.
    ObservedWithoutDeployedModel,
    ScaleUnsupported {
        plan: String,
        deployed: u32,
        asked: u32,
    },
    CapacityRefused {
        asked: u32,
        error: String,
    },
    LimitsUnsupported {
        detail: String,
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
        deployed_model: String,
        error: String,
    },
    WorkspaceChanged {
        deployed_model: String,
        recorded: String,
        current: String,
    },
}

impl DeploymentReason {
    pub fn code(&self) -> DeploymentCode {
        use DeploymentCode as C;
        use DeploymentReason as R;
        match self {
            R::WaitingForImport { .. } => C::WaitingForImport,
            R::ImportFailed { .. } => C::ImportFailed,
            R::Creating { .. } => C::Creating,
            R::CreateUnconfirmed { .. } => C::CreateUnconfirmed,
            R::DeploymentPending { .. } => C::DeploymentPending,
            R::DeploymentUpdating { .. } => C::DeploymentUpdating,
            R::DeploymentRunning { .. } => C::DeploymentRunning,
            R::UnknownDeploymentStatus { .. } => C::UnknownDeploymentStatus,
            R::DeploymentStopped { .. } => C::DeploymentStopped,
            R::DeploymentFailed { .. } => C::DeploymentFailed,
            R::DeploymentDeleting { .. } => C::DeploymentDeleting,
            R::DeploymentNotFound { .. } => C::DeploymentNotFound,
            R::InvalidSpec { .. } => C::InvalidSpec,
            R::ModelNotFound { .. } => C::ModelNotFound,
            R::DeployedModelConflict { .. } => C::DeployedModelConflict,
            R::CreateAmbiguous { .. } => C::CreateAmbiguous,
            R::ObservedWithoutDeployedModel => C::ObservedWithoutDeployedModel,
            R::ScaleUnsupported { .. } => C::ScaleUnsupported,
            R::CapacityRefused { .. } => C::CapacityRefused,
            R::LimitsUnsupported { .. } => C::LimitsUnsupported,
            R::CredentialsMissing { .. } => C::CredentialsMissing,
            R::Remote { failure, .. } => (*failure).into(),
            R::DeletionBlocked { .. } => C::DeletionBlocked,
            R::WorkspaceChanged { .. } => C::WorkspaceChanged,
        }
    }

    pub fn meaning(&self) -> Meaning {
        self.code().meaning()
    }

    /// The message of the conditions: what is going on and, for a stall, what to do.
    pub fn message(&self) -> String {
        use DeploymentReason as R;
        match self {
            R::WaitingForImport { import, wait } => match wait {
                ImportWait::Missing => format!(
                    "Waiting for ModelImport {import}: it does not exist in this namespace (yet)"
                ),
                ImportWait::NotReady { phase } => format!(
                    "Waiting for ModelImport {import} to be Ready (it is {})",
                    phase.as_deref().unwrap_or("not started")
                ),
                ImportWait::Deleting => format!(
                    "ModelImport {import} is being deleted: nothing is deployed from it"
                ),
                ImportWait::Unnamed => format!(
                    "ModelImport {import} is Ready but names no model yet; waiting for its status.modelName"
                ),
            },
            R::ImportFailed { import, message } => format!(
                "ModelImport {import} failed ({}); nothing can be deployed from it. Fix the import, \
                 then point spec.modelImportRef at a ModelImport that succeeded (in a new ModelDeployment)",
                message.trim_end_matches('.')
            ),
            R::Creating { model } => format!("Deploying model {model} in Model Studio"),
            R::CreateUnconfirmed { detail } => detail.clone(),
            R::DeploymentPending { deployed_model } => format!(
                "Deployment {deployed_model} is starting in Model Studio (this takes 5 to 10 minutes)"
            ),
            R::DeploymentUpdating {
                deployed_model,
                detail,
            } => format!("Deployment {deployed_model}: {detail}"),
            R::DeploymentRunning {
                deployed_model,
                capacity,
            } => match capacity {
                Some(c) => format!("Deployment {deployed_model} serves the model at capacity {c}"),
                None => format!("Deployment {deployed_model} serves the model"),
            },
            R::UnknownDeploymentStatus {
                deployed_model,
                status,
            } => format!(
                "Deployment {deployed_model} reports status {status:?}, which this controller does not know; still watching it"
            ),
            R::DeploymentStopped { deployed_model } => format!(
                "Deployment {deployed_model} was stopped in the Model Studio console and serves nothing; \
                 start it there again, or delete this ModelDeployment"
            ),
            R::DeploymentFailed { deployed_model } => format!(
                "Deployment {deployed_model} failed in Model Studio; delete this ModelDeployment and \
                 apply it again to deploy anew"
            ),
            R::DeploymentDeleting {
                deployed_model,
                ours,
            } => {
                if *ours {
                    format!("Deleting deployment {deployed_model}; waiting until Model Studio no longer finds it")
                } else {
                    format!(
                        "Deployment {deployed_model} is being deleted in Model Studio, though this resource \
                         was not deleted (someone deleted it outside the controller)"
                    )
                }
            }
            R::DeploymentNotFound { deployed_model } => format!(
                "Deployment {deployed_model} no longer exists in Model Studio (it was deleted outside this \
                 controller); delete this ModelDeployment and apply it again to deploy anew"
            ),
            R::InvalidSpec { problems } => format!(
                "The deployment cannot be made as specified: {}. Correct the spec (fields that Model \
                 Studio cannot change need a new ModelDeployment)",
                problems.join("; ")
            ),
            R::ModelNotFound { model, error } => format!(
                "Model Studio has no model {model} to deploy for this API key ({}). Check the name, \
                 or that the import succeeded in the same workspace",
                error.trim_end_matches('.')
            ),
            R::DeployedModelConflict {
                deployed_model,
                error,
            } => format!(
                "A deployment named {deployed_model} already exists in this workspace ({}). Create a new \
                 ModelDeployment with a spec.suffix that no other deployment uses, and delete this one",
                error.trim_end_matches('.')
            ),
            R::ObservedWithoutDeployedModel => "managementPolicy is Observe, which mirrors an \
                existing deployment and never creates one, and spec.deployedModel is not set: set it \
                to the deployment's name, or set managementPolicy to Manage to deploy"
                .into(),
            R::CreateAmbiguous {
                display_name,
                deployed_models,
            } => format!(
                "{} deployments carry this resource's display name {display_name:?}: {}. Delete all but one \
                 in Model Studio; the controller adopts the one left",
                deployed_models.len(),
                deployed_models.join(", ")
            ),
            R::ScaleUnsupported {
                plan,
                deployed,
                asked,
            } => format!(
                "Plan {plan} cannot be scaled through the API (Model Studio scales it through a console \
                 ticket): set spec.capacity back to {deployed}, not {asked}"
            ),
            R::CapacityRefused { asked, error } => format!(
                "Model Studio refused capacity {asked}: {}. Set spec.capacity to a multiple of \
                 status.baseCapacity below 1000",
                error.trim_end_matches('.')
            ),
            R::LimitsUnsupported { detail } => format!(
                "{detail}. Remove spec.rpmLimit and spec.tpmLimit, or set them to the deployment's \
                 current limits"
            ),
            R::CredentialsMissing { problem, deleting } => {
                let mut message = problem.message();
                if *deleting {
                    message.push_str(
                        ". The deployment is deleted once the key is back; to let the resource go and \
                         keep the deployment (billed), set spec.deletionPolicy to Orphan",
                    );
                }
                message
            }
            R::Remote { error, .. } => error.clone(),
            R::DeletionBlocked {
                deployed_model,
                error,
            } => format!(
                "Model Studio refuses to delete deployment {deployed_model} now ({}); retrying. If it \
                 only deletes stopped deployments, stop it in the console, or set spec.deletionPolicy \
                 to Orphan to keep it",
                error.trim_end_matches('.')
            ),
            R::WorkspaceChanged {
                deployed_model,
                recorded,
                current,
            } => format!(
                "Deployment {deployed_model} was made with the API key {recorded}, and the key now in use \
                 ({current}) cannot see it: the credentials point at another workspace, so the \
                 deployment is not taken as gone. Put the original key back, or set \
                 spec.deletionPolicy to Orphan to let this resource go"
            ),
        }
    }
}

/// How a create that may have made a deployment is described.
pub fn unconfirmed_no_answer(error: &str) -> String {
    format!(
        "The create request may have reached Model Studio but no answer came back ({error}); \
         looking for the deployment before trying again"
    )
}

/// How a create not listed yet is described.
pub fn unconfirmed_not_listed(display_name: &str, grace: Duration) -> String {
    format!(
        "No deployment carries this resource's display name {display_name:?} yet; looking again until \
         {grace:?} after the create before concluding that it made none"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_reads_back_and_stalls_on_spec_only_when_stalled() {
        for code in DeploymentCode::ALL {
            assert_eq!(DeploymentCode::parse(code.as_str()), Some(*code));
            if code.waits_for_spec_change() {
                assert_eq!(code.meaning(), Meaning::Stalled, "{code:?}");
            }
        }
    }

    #[test]
    fn stall_messages_say_what_to_do() {
        let m = DeploymentReason::ScaleUnsupported {
            plan: "lora".into(),
            deployed: 1,
            asked: 2,
        }
        .message();
        assert!(m.contains("set spec.capacity back to 1"), "{m}");
        let m = DeploymentReason::DeployedModelConflict {
            deployed_model: "m".into(),
            error: "Deployed model m already exists.".into(),
        }
        .message();
        assert!(m.contains("spec.suffix"), "{m}");
        assert!(!m.contains(".."), "{m}");
    }
}
