//! A ModelDeployment as plain data: what the decisions read of the resource (its spec and
//! status), and of the ModelImport it may name.

use super::deployments::{Plan, PtuCapacity};
use crate::conditions::Condition;
use crate::control::Control;
use crate::credentials::SecretRef;
use crate::deletion::DeletionPolicy;
use crate::management::ManagementPolicy;

/// Where the model to deploy comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSource {
    /// A ModelImport of the namespace, by name: its `status.modelName` once Ready.
    Import(String),
    /// A model that can already be deployed.
    Model(String),
}

/// The desired deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentSpec {
    pub source: ModelSource,
    pub plan: Option<Plan>,
    pub capacity: u32,
    pub deploy_spec: Option<String>,
    pub ptu_capacity: Option<PtuCapacity>,
    /// The display name asked for (the resource's name when `None`).
    pub name: Option<String>,
    pub suffix: Option<String>,
    pub enable_thinking: Option<bool>,
    pub max_context_length: Option<u64>,
    pub rpm_limit: Option<u64>,
    pub tpm_limit: Option<u64>,
    pub api_key_secret: Option<SecretRef>,
    pub deletion_policy: DeletionPolicy,
    /// Manage the deployment, or only observe the one `deployed_model` names.
    pub management: ManagementPolicy,
    /// The deployment to observe (its `deployed_model`).
    pub deployed_model: Option<String>,
}

/// A ModelDeployment's lifecycle summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeploymentPhase {
    Pending,
    Updating,
    Running,
    Stopped,
    Failed,
    Deleting,
}

/// The observed state of a ModelDeployment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeploymentStatus {
    pub deployed_model: Option<String>,
    pub model_name: Option<String>,
    pub display_name: Option<String>,
    /// When a create was about to be sent with no deployment recorded yet (RFC 3339).
    pub create_attempted_at: Option<String>,
    pub remote_status: Option<String>,
    pub phase: Option<DeploymentPhase>,
    pub capacity: Option<u32>,
    pub ready_capacity: Option<u32>,
    pub base_capacity: Option<u32>,
    pub created_at: Option<String>,
    pub key_fingerprint: Option<String>,
    /// The last `modelstudio.io/reconcile-requested-at` value handled.
    pub last_handled_reconcile_at: Option<String>,
    pub observed_generation: Option<i64>,
    pub conditions: Vec<Condition>,
}

/// One ModelDeployment as the reconcile sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentResource {
    pub name: String,
    pub uid: String,
    pub generation: Option<i64>,
    pub deleting: bool,
    pub has_finalizer: bool,
    /// What a person asks through its annotations.
    pub control: Control,
    pub spec: DeploymentSpec,
    pub status: DeploymentStatus,
}

/// The ModelImport that spec.modelImportRef names, as read from the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportView {
    Missing,
    Deleting,
    /// Ready: its model can be deployed (`None`: Ready without a model name, which should not
    /// happen).
    Ready {
        model_name: Option<String>,
    },
    /// Stalled on a final failure: its Ready condition's message.
    Failed {
        message: String,
    },
    /// Anything else: still importing, or retrying.
    NotReady {
        phase: Option<String>,
    },
}
