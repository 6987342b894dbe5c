//! The `ModelImport` custom resource. Doc comments here become the CRD's field descriptions
//! (`kubectl explain modelimport.spec`), and `crds/modelimport.yaml` is generated from these types.
//! `ModelDeployment` lives in [`model_deployment`] and shares the helpers below.

// kube-derive repeats `printcolumn(type_ = ...)`, which this lint mistakes for a duplicate.
#![allow(clippy::duplicated_attributes)]

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, CustomResourceExt, KubeSchema};
use serde::{Deserialize, Serialize};

pub mod model_deployment;

pub use model_deployment::{
    DeploymentPhase, DeploymentPlan, ModelDeployment, ModelDeploymentSpec, ModelDeploymentStatus,
    ModelImportRef, PtuCapacity,
};

/// The finalizer that keeps a ModelImport until its remote job was deleted (or orphaned).
pub const FINALIZER: &str = "modelstudio.io/cleanup";

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
    validation = Rule::new("self.baseModel == oldSelf.baseModel")
        .message("baseModel is immutable: create a new ModelImport to import again")
        .field_path(".baseModel"),
    validation = Rule::new("has(self.displayName) == has(oldSelf.displayName) && (!has(self.displayName) || self.displayName == oldSelf.displayName)")
        .message("displayName is immutable: create a new ModelImport to import again")
        .field_path(".displayName"),
    validation = Rule::new("self.weightType == oldSelf.weightType")
        .message("weightType is immutable: create a new ModelImport to import again")
        .field_path(".weightType"),
    validation = Rule::new("self.source == oldSelf.source")
        .message("source is immutable: create a new ModelImport to import again")
        .field_path(".source"),
    validation = Rule::new("self.storage == oldSelf.storage")
        .message("storage is immutable: create a new ModelImport to import again")
        .field_path(".storage"),
    validation = Rule::new("!has(oldSelf.jobId) || (has(self.jobId) && self.jobId == oldSelf.jobId)")
        .message("jobId cannot be changed or removed once set")
        .field_path(".jobId")
)]
#[serde(rename_all = "camelCase")]
pub struct ModelImportSpec {
    /// ID of the base model the weights were trained from, for example `qwen3-32b`. Sent to Model
    /// Studio as `model_name`; it must be a base model that supports import.
    #[schemars(length(min = 1, max = 128), regex(pattern = r"^[a-z0-9][a-z0-9._-]*$"))]
    pub base_model: String,

    /// Name shown in the Model Studio console, at most 50 characters; defaults to the resource's
    /// name. The controller appends `-` and 8 characters derived from the resource's UID (cutting
    /// the name to 41 characters first), so that it can find its job again if it was stopped
    /// between creating the job and recording it; `status.displayName` shows the result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 50))]
    pub display_name: Option<String>,

    /// Kind of weights: `lora` for a LoRA adapter, `full` for full-parameter weights.
    pub weight_type: WeightType,

    /// Where the weights are read from. Only `oss` exists today.
    #[serde(default)]
    pub source: Source,

    /// The OSS location of the model directory.
    pub storage: Storage,

    /// Secret in this namespace holding the DashScope API key. Optional only when the controller
    /// was started with a default key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_secret_ref: Option<SecretKeyRef>,

    /// What happens to the remote job when this resource is deleted: `Delete` (the default) deletes
    /// the import job and its imported model files; `Orphan` leaves them in Model Studio.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,

    /// Adopt an existing import job with this ID instead of creating one. Cannot be changed once set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64), regex(pattern = r"^[A-Za-z0-9-]+$"))]
    pub job_id: Option<String>,
}

/// The kind of imported weights.
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

/// A key of a Secret in the resource's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,

    /// Key inside the Secret that holds the API key.
    #[serde(default = "default_secret_key")]
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

fn default_secret_key() -> String {
    "api-key".to_string()
}

/// What to do with the remote job when the resource is deleted.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, schemars::JsonSchema,
)]
pub enum DeletionPolicy {
    /// Delete the import job (and the imported model) in Model Studio.
    #[default]
    Delete,
    /// Keep the import job in Model Studio.
    Orphan,
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

/// The custom resources this controller defines, each with its CRD file under `crds/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    ModelImport,
    ModelDeployment,
}

impl Kind {
    pub const ALL: [Kind; 2] = [Kind::ModelImport, Kind::ModelDeployment];

    /// The CustomResourceDefinition, with each description's doc-comment line breaks joined into
    /// flowing text (blank lines still separate paragraphs), so `kubectl explain` wraps it
    /// cleanly.
    pub fn definition(self) -> CustomResourceDefinition {
        let crd = match self {
            Kind::ModelImport => ModelImport::crd(),
            Kind::ModelDeployment => ModelDeployment::crd(),
        };
        let mut value = match serde_json::to_value(&crd) {
            Ok(v) => v,
            Err(_) => return crd,
        };
        unwrap_descriptions(&mut value);
        default_status(&mut value);
        serde_json::from_value(value).unwrap_or(crd)
    }

    /// The file under `crds/` (and the chart's `crds/`) that holds the CRD.
    pub fn file_name(self) -> &'static str {
        match self {
            Kind::ModelImport => "modelimport.yaml",
            Kind::ModelDeployment => "modeldeployment.yaml",
        }
    }

    /// The command that prints the CRD (ModelImport's is the command's default).
    pub fn command(self) -> &'static str {
        match self {
            Kind::ModelImport => "modelstudio-controller crd",
            Kind::ModelDeployment => "modelstudio-controller crd modeldeployment",
        }
    }

    /// The CRD as YAML, as [`Kind::command`] prints it and `crds/` holds it.
    pub fn yaml(self) -> String {
        let body = serde_saphyr::to_string(&self.definition()).unwrap_or_else(|e| {
            // The CRD is built from static types: failing here is a programming error, not input.
            format!("# could not render the CRD: {e}\n")
        });
        format!(
            "# Generated by `{}`; do not edit.\n---\n{body}",
            self.command()
        )
    }
}

/// The ModelImport CustomResourceDefinition (see [`Kind::definition`]).
pub fn definition() -> CustomResourceDefinition {
    Kind::ModelImport.definition()
}

/// A new object reads `status.observedGeneration: -1` until the controller writes its status
/// (defaults apply when an object is read), so kstatus and Flux see it InProgress from its
/// creation instead of Current before the controller has looked at it (Flux's own CRDs do the
/// same).
fn default_status(crd: &mut serde_json::Value) {
    let versions = crd
        .pointer_mut("/spec/versions")
        .and_then(|v| v.as_array_mut());
    for version in versions.into_iter().flatten() {
        if let Some(status) = version
            .pointer_mut("/schema/openAPIV3Schema/properties/status")
            .and_then(|s| s.as_object_mut())
        {
            status.insert(
                "default".into(),
                serde_json::json!({ "observedGeneration": -1 }),
            );
        }
    }
}

fn unwrap_descriptions(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                match v {
                    serde_json::Value::String(text) if key == "description" => {
                        *text = text
                            .split("\n\n")
                            .map(|p| p.split('\n').map(str::trim).collect::<Vec<_>>().join(" "))
                            .collect::<Vec<_>>()
                            .join("\n\n");
                    }
                    other => unwrap_descriptions(other),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(unwrap_descriptions),
        _ => {}
    }
}

/// The ModelImport CRD as YAML, as `modelstudio-controller crd` prints it and
/// `crds/modelimport.yaml` holds it.
pub fn crd_yaml() -> String {
    Kind::ModelImport.yaml()
}
