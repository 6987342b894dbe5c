//! The `ModelDeployment` custom resource: a Model Studio deployment of a model, imported by a
//! ModelImport of the same namespace or already deployable. Doc comments here become the CRD's
//! field descriptions (`kubectl explain modeldeployment.spec`), and `crds/modeldeployment.yaml`
//! is generated from these types.

// kube-derive repeats `printcolumn(type_ = ...)`, which this lint mistakes for a duplicate.
#![allow(clippy::duplicated_attributes)]

use super::{DeletionPolicy, ManagementPolicy, Outputs, SecretKeyRef};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

/// Desired state of one Model Studio deployment. What Model Studio cannot change on a running
/// deployment (the model, plan, deploySpec, ptuCapacity, name, suffix, enableThinking and
/// maxContextLength) is immutable: a new ModelDeployment deploys again. `capacity` scales the
/// deployment and `rpmLimit`/`tpmLimit` update it in place.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "modelstudio.io",
    version = "v1alpha1",
    kind = "ModelDeployment",
    plural = "modeldeployments",
    namespaced,
    status = "ModelDeploymentStatus",
    shortname = "mdeploy",
    category = "modelstudio",
    derive = "PartialEq",
    doc = "A ModelDeployment deploys a model in Alibaba Cloud Model Studio (an imported one, through a ModelImport of the same namespace, or one that can already be deployed) and mirrors the remote deployment.",
    printcolumn(name = "Model", type_ = "string", json_path = ".status.modelName"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Capacity", type_ = "integer", json_path = ".spec.capacity"),
    printcolumn(
        name = "Ready Capacity",
        type_ = "integer",
        json_path = ".status.readyCapacity"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Deployed Model",
        type_ = "string",
        priority = 1,
        json_path = ".status.deployedModel"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
// Rules about two fields, or about a field that may be absent, sit on the spec: a rule on an
// optional field itself only runs when the field is set (and a transition rule only when it was
// set before too), so adding or removing the field would slip past it.
#[x_kube(
    cel,
    validation = Rule::new("(has(self.managementPolicy) && self.managementPolicy == 'Observe') ? !(has(self.modelImportRef) && has(self.modelName)) : has(self.modelImportRef) != has(self.modelName)")
        .message("set exactly one of modelImportRef (a ModelImport in this namespace) and modelName (a model that can already be deployed)"),
    // What a deploy needs is required unless the deployment is only observed.
    validation = Rule::new("(has(self.managementPolicy) && self.managementPolicy == 'Observe') || has(self.capacity)")
        .message("capacity is required to deploy (to mirror an existing deployment instead, set managementPolicy: Observe and deployedModel)")
        .reason(Reason::FieldValueRequired)
        .field_path(".capacity"),
    validation = Rule::new("!has(self.managementPolicy) || self.managementPolicy != 'Observe' || has(self.deployedModel)")
        .message("managementPolicy Observe mirrors an existing deployment and never deploys: set deployedModel to its name")
        .reason(Reason::FieldValueRequired)
        .field_path(".deployedModel"),
    validation = Rule::new("!has(self.deployedModel) || (has(self.managementPolicy) && self.managementPolicy == 'Observe')")
        .message("deployedModel names a deployment to observe: set managementPolicy: Observe, or remove deployedModel to deploy")
        .field_path(".deployedModel"),
    validation = Rule::new("!has(oldSelf.deployedModel) || (has(self.deployedModel) && self.deployedModel == oldSelf.deployedModel)")
        .message("deployedModel cannot be changed or removed once set")
        .field_path(".deployedModel"),
    validation = Rule::new("!has(self.plan) || self.plan != 'mu' || has(self.deploySpec)")
        .message("deploySpec is required when plan is mu: set the model unit spec, for example MU1")
        .field_path(".deploySpec"),
    validation = Rule::new("!has(self.deploySpec) || (has(self.plan) && self.plan == 'mu')")
        .message("deploySpec applies only to plan mu: remove it, or set plan to mu")
        .field_path(".deploySpec"),
    validation = Rule::new("!has(self.plan) || self.plan != 'ptu' || has(self.ptuCapacity)")
        .message("ptuCapacity is required when plan is ptu: set inputTpm and outputTpm")
        .field_path(".ptuCapacity"),
    validation = Rule::new("!has(self.ptuCapacity) || (has(self.plan) && self.plan == 'ptu')")
        .message("ptuCapacity applies only to plan ptu: remove it, or set plan to ptu")
        .field_path(".ptuCapacity"),
    validation = Rule::new("has(self.modelImportRef) == has(oldSelf.modelImportRef) && (!has(self.modelImportRef) || self.modelImportRef.name == oldSelf.modelImportRef.name)")
        .message("modelImportRef is immutable: to deploy another model, create a new ModelDeployment and delete this one")
        .field_path(".modelImportRef"),
    validation = Rule::new("has(self.modelName) == has(oldSelf.modelName) && (!has(self.modelName) || self.modelName == oldSelf.modelName)")
        .message("modelName is immutable: to deploy another model, create a new ModelDeployment and delete this one")
        .field_path(".modelName"),
    validation = Rule::new("has(self.plan) == has(oldSelf.plan) && (!has(self.plan) || self.plan == oldSelf.plan)")
        .message("plan is immutable: Model Studio cannot change a deployment's plan; create a new ModelDeployment with the new plan and delete this one")
        .field_path(".plan"),
    validation = Rule::new("has(self.deploySpec) == has(oldSelf.deploySpec) && (!has(self.deploySpec) || self.deploySpec == oldSelf.deploySpec)")
        .message("deploySpec is immutable: create a new ModelDeployment with the new spec and delete this one")
        .field_path(".deploySpec"),
    validation = Rule::new("has(self.ptuCapacity) == has(oldSelf.ptuCapacity) && (!has(self.ptuCapacity) || self.ptuCapacity == oldSelf.ptuCapacity)")
        .message("ptuCapacity is immutable: create a new ModelDeployment with the new throughput and delete this one")
        .field_path(".ptuCapacity"),
    validation = Rule::new("has(self.name) == has(oldSelf.name) && (!has(self.name) || self.name == oldSelf.name)")
        .message("name is immutable: Model Studio cannot rename a deployment; create a new ModelDeployment and delete this one")
        .field_path(".name"),
    validation = Rule::new("has(self.suffix) == has(oldSelf.suffix) && (!has(self.suffix) || self.suffix == oldSelf.suffix)")
        .message("suffix is immutable: it is part of the deployed model's name; create a new ModelDeployment with the new suffix and delete this one")
        .field_path(".suffix"),
    validation = Rule::new("has(self.enableThinking) == has(oldSelf.enableThinking) && (!has(self.enableThinking) || self.enableThinking == oldSelf.enableThinking)")
        .message("enableThinking is immutable: Model Studio sets it only when it deploys; create a new ModelDeployment and delete this one")
        .field_path(".enableThinking"),
    validation = Rule::new("has(self.maxContextLength) == has(oldSelf.maxContextLength) && (!has(self.maxContextLength) || self.maxContextLength == oldSelf.maxContextLength)")
        .message("maxContextLength is immutable: Model Studio sets it only when it deploys; create a new ModelDeployment and delete this one")
        .field_path(".maxContextLength"),
)]
#[serde(rename_all = "camelCase")]
pub struct ModelDeploymentSpec {
    /// The ModelImport in this namespace whose model to deploy: the controller waits until it is
    /// Ready and deploys its `status.modelName`. Set this or modelName, not both. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_import_ref: Option<ModelImportRef>,

    /// A model that can already be deployed (a base model, or a custom model's generated name
    /// such as `qwen3-32b-offline-20240101-abc1`), sent to Model Studio as `model_name`. Set this
    /// or modelImportRef, not both. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128), regex(pattern = r"^[a-z0-9][a-z0-9._-]*$"))]
    pub model_name: Option<String>,

    // Its description is DeploymentPlan's: an optional enum's schema is the enum's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<DeploymentPlan>,

    /// Capacity units to deploy, from 1 to 999: a multiple of the model's base capacity
    /// (`status.baseCapacity`), which Model Studio checks. Changing it scales the deployment (not
    /// for plan lora, which Model Studio ignores the capacity of). Billing follows the capacity
    /// deployed, whether or not the model is called. Required unless managementPolicy is Observe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 999))]
    pub capacity: Option<i32>,

    /// Model unit spec for plan mu, for example `MU1`. Required when plan is mu, refused
    /// otherwise. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64), regex(pattern = r"^[A-Za-z0-9._-]+$"))]
    pub deploy_spec: Option<String>,

    /// Throughput reserved by plan ptu. Required when plan is ptu, refused otherwise. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ptu_capacity: Option<PtuCapacity>,

    /// Name shown in the Model Studio console, at most 50 characters; defaults to the resource's
    /// name. The controller appends `-` and 8 characters derived from the resource's UID (cutting
    /// the name to 41 characters first), so that it can find its deployment again if it was
    /// stopped between creating the deployment and recording it; `status.displayName` shows the
    /// result. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 50))]
    pub name: Option<String>,

    /// Up to 8 lowercase letters, digits or `-` that Model Studio adds to the deployed model's
    /// name. Unique across Model Studio; needed when the same model is deployed again (without
    /// it, the second deployment is refused with Conflict). Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 8), regex(pattern = r"^[a-z0-9-]+$"))]
    pub suffix: Option<String>,

    /// Whether a model that can think (reason before answering) does so by default. Omit it for
    /// the model's default. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_thinking: Option<bool>,

    /// Longest context, in tokens, the deployment accepts; at most the model's own limit. Omit it
    /// for the model's limit. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_context_length: Option<i64>,

    /// Requests per minute the deployment accepts. A change is sent to Model Studio as an
    /// update, which only some mu models support; removing the field keeps the deployment's
    /// current limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub rpm_limit: Option<i64>,

    /// Tokens per minute the deployment accepts. A change is sent to Model Studio as an update,
    /// which only some mu models support; removing the field keeps the deployment's current
    /// limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub tpm_limit: Option<i64>,

    /// Secret in this namespace holding the DashScope API key. Optional only when the controller
    /// was started with a default key. The deployment lives in that key's workspace, and only
    /// keys of that workspace can call it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_secret_ref: Option<SecretKeyRef>,

    /// What happens to the remote deployment when this resource is deleted: `Delete` (the
    /// default) deletes the deployment, which stops its billing; `Orphan` leaves it running (and
    /// billed) in Model Studio.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,

    /// Whether the controller manages the deployment or only mirrors it: `Manage` (the default)
    /// deploys, scales, updates and deletes it; `Observe` mirrors the deployment `deployedModel`
    /// names, never deploying, scaling, changing or deleting it (deleting this resource only lets
    /// go of it), and needs neither capacity nor a model.
    #[serde(default)]
    pub management_policy: ManagementPolicy,

    /// The deployment to observe (its `deployed_model`, the name the model is called by), with
    /// managementPolicy Observe only. Cannot be changed once set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 256),
        regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    )]
    pub deployed_model: Option<String>,

    /// The ConfigMap for the apps that call the deployed model (its name, the base URL of the
    /// key's workspace and region); written for every ModelDeployment, named after it unless
    /// `configMapName` says otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outputs: Option<Outputs>,
}

/// A ModelImport in the ModelDeployment's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelImportRef {
    /// Name of the ModelImport.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// Billing plan: `ptu` (provisioned throughput, needs ptuCapacity), `mu` (model units, needs
/// deploySpec), `lora` (a LoRA adapter; capacity is ignored and cannot be scaled here: Model
/// Studio scales it through a console ticket) or `cu` (compute units). Omit it for Model Studio's
/// default, compute-unit billing. Immutable.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeploymentPlan {
    /// Provisioned throughput.
    Ptu,
    /// Model units.
    Mu,
    /// A LoRA adapter.
    Lora,
    /// Compute units.
    Cu,
}

impl DeploymentPlan {
    /// The value the API expects.
    pub fn as_api_str(self) -> &'static str {
        match self {
            DeploymentPlan::Ptu => "ptu",
            DeploymentPlan::Mu => "mu",
            DeploymentPlan::Lora => "lora",
            DeploymentPlan::Cu => "cu",
        }
    }
}

/// Throughput reserved by a ptu deployment.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PtuCapacity {
    /// Input tokens per minute reserved.
    #[schemars(range(min = 1))]
    pub input_tpm: i64,

    /// Output tokens per minute reserved.
    #[schemars(range(min = 1))]
    pub output_tpm: i64,
}

/// Observed state of the deployment.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelDeploymentStatus {
    /// ID of the remote deployment (Model Studio's `deployed_model`): the name to call the
    /// deployed model by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployed_model: Option<String>,

    /// The model deployed: spec.modelName, or the referenced ModelImport's model name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_name: Option<String>,

    /// The display name sent to Model Studio: the spec's (or the resource's) name with a suffix
    /// derived from the resource's UID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,

    /// Set when a create request was about to be sent and no deployment ID is recorded yet: after
    /// a restart the controller then looks for the deployment by its display name before
    /// creating again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_attempted_at: Option<String>,

    /// The deployment's status as the API spells it (PENDING, UPDATING, RUNNING, STOPPED,
    /// DELETING, FAILED).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_status: Option<String>,

    // Its description is DeploymentPhase's: an optional enum's schema is the enum's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<DeploymentPhase>,

    /// Capacity units Model Studio deploys (asked for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<i64>,

    /// Capacity units that are up and serving.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_capacity: Option<i64>,

    /// The model's base capacity: spec.capacity must be a multiple of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_capacity: Option<i64>,

    /// When Model Studio created the deployment (its `gmt_create`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,

    /// Fingerprint (`sha256:` and 16 hex digits, not reversible) of the API key the deployment
    /// was last seen with: its workspace. A deployment that a key with another fingerprint cannot
    /// find is not taken as gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_fingerprint: Option<String>,

    /// The last value of the annotation `modelstudio.io/reconcile-requested-at` the controller
    /// handled (it read the deployment at once): a script sets a new value, then waits for it
    /// here.
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

/// Lifecycle summary of a ModelDeployment: Pending (being created, or waiting for its
/// ModelImport), Updating (scaling or changing limits), Running (serving), Stopped (stopped in the
/// console, not billed), Failed, or Deleting (waiting for the remote deployment to be gone).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum DeploymentPhase {
    /// The deployment is being created, or not created yet (also while the ModelImport it
    /// names is not Ready).
    Pending,
    /// The deployment is scaling or changing its limits.
    Updating,
    /// The deployment serves the model.
    Running,
    /// The deployment was stopped in the console and is not billed.
    Stopped,
    /// The deployment failed.
    Failed,
    /// The resource is being deleted and waits for the remote deployment to be gone.
    Deleting,
}
