//! The `ModelImport` custom resource. Doc comments here become the CRD's field descriptions
//! (`kubectl explain modelimport.spec`), and `crds/modelimport.yaml` is generated from these types.

// kube-derive repeats `printcolumn(type_ = ...)`, which this lint mistakes for a duplicate.
#![allow(clippy::duplicated_attributes)]

use super::{DeletionPolicy, ManagementPolicy, Outputs, SecretKeyRef};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

/// Desired state of one Model Studio import job. An import job cannot be changed: the fields that
/// define it are immutable, and a new ModelImport re-imports.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "modelstudio.io",
    version = "v1alpha1",
    kind = "ModelImport",
    plural = "modelimports",
    namespaced,
    status = "ModelImportStatus",
    shortname = "mimport",
    category = "modelstudio",
    derive = "PartialEq",
    doc = "A ModelImport imports a fine-tuned model from OSS into Alibaba Cloud Model Studio and mirrors the remote import job.",
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Model", type_ = "string", json_path = ".status.modelName"),
    printcolumn(name = "Job", type_ = "string", json_path = ".status.jobId"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(
    cel,
    validation = Rule::new("has(self.baseModel) == has(oldSelf.baseModel) && (!has(self.baseModel) || self.baseModel == oldSelf.baseModel)")
        .message("baseModel is immutable: create a new ModelImport to import again")
        .field_path(".baseModel"),
    validation = Rule::new("has(self.displayName) == has(oldSelf.displayName) && (!has(self.displayName) || self.displayName == oldSelf.displayName)")
        .message("displayName is immutable: create a new ModelImport to import again")
        .field_path(".displayName"),
    validation = Rule::new("has(self.weightType) == has(oldSelf.weightType) && (!has(self.weightType) || self.weightType == oldSelf.weightType)")
        .message("weightType is immutable: create a new ModelImport to import again")
        .field_path(".weightType"),
    validation = Rule::new("self.source == oldSelf.source")
        .message("source is immutable: create a new ModelImport to import again")
        .field_path(".source"),
    validation = Rule::new("has(self.storage) == has(oldSelf.storage) && (!has(self.storage) || self.storage == oldSelf.storage)")
        .message("storage is immutable: create a new ModelImport to import again")
        .field_path(".storage"),
    validation = Rule::new("!has(oldSelf.jobId) || (has(self.jobId) && self.jobId == oldSelf.jobId)")
        .message("jobId cannot be changed or removed once set")
        .field_path(".jobId"),
    // What a create needs is required unless the job is only observed.
    validation = Rule::new("(has(self.managementPolicy) && self.managementPolicy == 'Observe') || has(self.baseModel)")
        .message("baseModel is required to create an import job (to mirror an existing job instead, set managementPolicy: Observe and jobId)")
        .reason(Reason::FieldValueRequired)
        .field_path(".baseModel"),
    validation = Rule::new("(has(self.managementPolicy) && self.managementPolicy == 'Observe') || has(self.weightType)")
        .message("weightType is required to create an import job (to mirror an existing job instead, set managementPolicy: Observe and jobId)")
        .reason(Reason::FieldValueRequired)
        .field_path(".weightType"),
    validation = Rule::new("(has(self.managementPolicy) && self.managementPolicy == 'Observe') || has(self.storage)")
        .message("storage is required to create an import job (to mirror an existing job instead, set managementPolicy: Observe and jobId)")
        .reason(Reason::FieldValueRequired)
        .field_path(".storage"),
    validation = Rule::new("!has(self.managementPolicy) || self.managementPolicy != 'Observe' || has(self.jobId)")
        .message("managementPolicy Observe mirrors an existing import job and never creates one: set jobId to its ID")
        .reason(Reason::FieldValueRequired)
        .field_path(".jobId"),
)]
#[serde(rename_all = "camelCase")]
pub struct ModelImportSpec {
    /// ID of the base model the weights were trained from, for example `qwen3-32b`. Sent to Model
    /// Studio as `model_name`; it must be a base model that supports import.
    /// Required unless managementPolicy is Observe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128), regex(pattern = r"^[a-z0-9][a-z0-9._-]*$"))]
    pub base_model: Option<String>,

    /// Name shown in the Model Studio console, at most 50 characters; defaults to the resource's
    /// name. The controller appends `-` and 8 characters derived from the resource's UID (cutting
    /// the name to 41 characters first), so that it can find its job again if it was stopped
    /// between creating the job and recording it; `status.displayName` shows the result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 50))]
    pub display_name: Option<String>,

    // Its description is WeightType's: an optional enum's schema is the enum's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_type: Option<WeightType>,

    /// Where the weights are read from. Only `oss` exists today.
    #[serde(default)]
    pub source: Source,

    /// The OSS location of the model directory. Required unless managementPolicy is Observe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<Storage>,

    /// Secret in this namespace holding the DashScope API key. Optional only when the controller
    /// was started with a default key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_secret_ref: Option<SecretKeyRef>,

    /// What happens to the remote job when this resource is deleted: `Delete` (the default) deletes
    /// the import job and its imported model files; `Orphan` leaves them in Model Studio.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,

    /// Whether the controller manages the job or only mirrors it: `Manage` (the default) creates
    /// and deletes it; `Observe` adopts the job `jobId` names and mirrors it, never creating,
    /// changing or deleting it (deleting this resource only lets go of it), and needs neither
    /// baseModel, weightType nor storage.
    #[serde(default)]
    pub management_policy: ManagementPolicy,

    /// Adopt an existing import job with this ID instead of creating one. Cannot be changed once set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64), regex(pattern = r"^[A-Za-z0-9-]+$"))]
    pub job_id: Option<String>,

    /// A ConfigMap for the apps that call the imported model (its generated name, the base URL),
    /// written only when `configMapName` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outputs: Option<Outputs>,
}

/// Kind of weights: `lora` for a LoRA adapter, `full` for full-parameter weights. Required unless
/// managementPolicy is Observe.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum WeightType {
    /// A LoRA adapter.
    Lora,
    /// Full-parameter weights.
    Full,
}

impl WeightType {
    /// The value the API expects.
    pub fn as_api_str(self) -> &'static str {
        match self {
            WeightType::Lora => "lora",
            WeightType::Full => "full",
        }
    }
}

/// Where the weights come from.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Alibaba Cloud Object Storage Service.
    #[default]
    Oss,
}

impl Source {
    /// The value the API expects.
    pub fn as_api_str(self) -> &'static str {
        match self {
            Source::Oss => "oss",
        }
    }
}

/// An OSS directory.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Storage {
    /// OSS bucket name. The bucket must carry the tag `bailian-datahub-access=read`.
    #[schemars(
        length(min = 3, max = 63),
        regex(pattern = r"^[a-z0-9][a-z0-9-]*[a-z0-9]$")
    )]
    pub bucket_name: String,

    /// Path prefix of the model directory inside the bucket. It ends with `/` and is not the bucket
    /// root, for example `models/qwen3-32b-lora/`.
    #[schemars(length(min = 2, max = 1023), regex(pattern = r"^[^/].*/$"))]
    pub object_key: String,
}

/// Observed state of the import job.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelImportStatus {
    /// ID of the remote import job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,

    /// The display name sent to Model Studio: the spec's (or the resource's) name with a suffix
    /// derived from the resource's UID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,

    /// Set when a create request was about to be sent and no job ID is recorded yet: after a
    /// restart the controller then looks for the job by its display name before creating again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_attempted_at: Option<String>,

    /// Name Model Studio generated for the imported model; use it to deploy the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_name: Option<String>,

    /// The job's status as the API spells it (PENDING, RUNNING, SUCCESSED or SUCCEEDED, FAILED).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_status: Option<String>,

    /// Summary of the lifecycle: Pending, Running, Succeeded, Failed or Deleting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,

    /// Why the job failed, as Model Studio reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,

    /// When Model Studio created the job (its `gmt_create`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,

    /// Fingerprint (`sha256:` and 16 hex digits, not reversible) of the API key the job was last
    /// seen with: its workspace. A job that a key with another fingerprint cannot find is not
    /// taken as gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_fingerprint: Option<String>,

    /// The last value of the annotation `modelstudio.io/reconcile-requested-at` the controller
    /// handled (it read the job at once): a script sets a new value, then waits for it here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,

    /// The metadata.generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Ready, Reconciling and Stalled, as kstatus reads them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
}

/// Lifecycle summary of a ModelImport.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum Phase {
    /// The job is queued, or not created yet.
    Pending,
    /// The job is importing the files.
    Running,
    /// The model was imported and can be deployed.
    Succeeded,
    /// The import failed; see errorCode.
    Failed,
    /// The resource is being deleted and waits for the remote job to be deletable.
    Deleting,
}
