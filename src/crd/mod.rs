//! The custom resources this controller defines, one file per kind ([`model_import`],
//! [`model_deployment`]), and what they share: the finalizer, the Secret reference, the deletion
//! policy, and each CRD as generated from the types (`crds/*.yaml`, `modelstudio-controller crd`).

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use serde::{Deserialize, Serialize};

pub mod model_deployment;
pub mod model_import;

pub use model_deployment::{
    DeploymentPhase, DeploymentPlan, ModelDeployment, ModelDeploymentSpec, ModelDeploymentStatus,
    ModelImportRef, PtuCapacity,
};
pub use model_import::{
    ModelImport, ModelImportSpec, ModelImportStatus, Phase, Source, Storage, WeightType,
};

/// The finalizer that keeps a resource (of either kind) until its remote object was deleted (or
/// orphaned).
pub const FINALIZER: &str = "modelstudio.io/cleanup";

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

impl SecretKeyRef {
    /// The reference in the core's terms.
    pub fn core(&self) -> modelstudio_core::credentials::SecretRef {
        modelstudio_core::credentials::SecretRef {
            name: self.name.clone(),
            key: self.key.clone(),
        }
    }
}

fn default_secret_key() -> String {
    "api-key".to_string()
}

/// Where the controller writes what an application needs to call the model: a ConfigMap in the
/// resource's namespace, owned by the resource (it goes with it), holding `MODEL_NAME`,
/// `OPENAI_BASE_URL`, and `MODELSTUDIO_WORKSPACE_ID`, `MODELSTUDIO_REGION` and
/// `MODELSTUDIO_API_KEY_SECRET` when known; never the key. An app reads it with `envFrom`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Outputs {
    /// Name of the ConfigMap. A ModelDeployment's defaults to the resource's name; a ModelImport
    /// writes one only when this is set. A ConfigMap of that name that the controller did not
    /// write is never overwritten (condition OutputsReady says so).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
    )]
    pub config_map_name: Option<String>,
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

/// Whether the controller manages the remote object or only mirrors it.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, schemars::JsonSchema,
)]
pub enum ManagementPolicy {
    /// Create, change and delete the remote object.
    #[default]
    Manage,
    /// Mirror an existing remote object named by its id; never create, change or delete it.
    Observe,
}

impl ManagementPolicy {
    /// The policy in the core's terms.
    pub fn core(self) -> modelstudio_core::management::ManagementPolicy {
        match self {
            ManagementPolicy::Manage => modelstudio_core::management::ManagementPolicy::Manage,
            ManagementPolicy::Observe => modelstudio_core::management::ManagementPolicy::Observe,
        }
    }
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
