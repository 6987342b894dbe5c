//! A ModelImport as plain data: what the decisions read of the resource (its spec and status).

use super::jobs::{Source, Storage, WeightType};
use crate::conditions::Condition;
use crate::control::Control;
use crate::credentials::SecretRef;
use crate::deletion::DeletionPolicy;
use crate::management::ManagementPolicy;

/// Lifecycle summary of a ModelImport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Pending,
    Running,
    Succeeded,
    Failed,
    Deleting,
}

impl Phase {
    /// Every phase, in lifecycle order.
    pub const ALL: [Phase; 5] = [
        Phase::Pending,
        Phase::Running,
        Phase::Succeeded,
        Phase::Failed,
        Phase::Deleting,
    ];

    /// The phase as written in `status.phase`.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Pending => "Pending",
            Phase::Running => "Running",
            Phase::Succeeded => "Succeeded",
            Phase::Failed => "Failed",
            Phase::Deleting => "Deleting",
        }
    }
}

/// The desired import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    pub base_model: String,
    pub display_name: Option<String>,
    pub weight_type: WeightType,
    pub source: Source,
    pub storage: Storage,
    pub deletion_policy: DeletionPolicy,
    /// A job to adopt instead of creating one.
    pub job_id: Option<String>,
    /// Manage the job, or only observe the one `job_id` names.
    pub management: ManagementPolicy,
    /// The Secret spec.apiKeySecretRef names, if any.
    pub api_key_secret: Option<SecretRef>,
}

/// One ModelImport as the reconcile sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    pub name: String,
    /// Stable identity (the UID), from which the create's correlation token is derived.
    pub uid: String,
    pub generation: Option<i64>,
    pub deleting: bool,
    /// Whether this controller's finalizer is on the resource.
    pub has_finalizer: bool,
    /// What a person asks through its annotations.
    pub control: Control,
    pub spec: Spec,
    pub status: ImportStatus,
}

/// The observed state of a ModelImport.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImportStatus {
    pub job_id: Option<String>,
    pub display_name: Option<String>,
    /// When a create was about to be sent with no job recorded yet (RFC 3339).
    pub create_attempted_at: Option<String>,
    pub model_name: Option<String>,
    pub remote_status: Option<String>,
    pub phase: Option<Phase>,
    pub error_code: Option<String>,
    pub created_at: Option<String>,
    /// The fingerprint of the key the job was last seen with: its workspace.
    pub key_fingerprint: Option<String>,
    /// The last `modelstudio.io/reconcile-requested-at` value handled.
    pub last_handled_reconcile_at: Option<String>,
    pub observed_generation: Option<i64>,
    pub conditions: Vec<Condition>,
}
