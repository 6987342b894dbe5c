//! Builders of the objects tests create: ModelImports and API key Secrets, as JSON that
//! deserializes into the controller's types.

use serde_json::{json, Value};

/// The key of the API key in a credentials Secret.
pub const API_KEY_FIELD: &str = "api-key";

/// A ModelImport of a LoRA adapter of `qwen3-32b`, its storage path named after it.
#[derive(Debug, Clone)]
pub struct ImportBuilder {
    value: Value,
}

impl ImportBuilder {
    pub fn new(name: &str) -> Self {
        ImportBuilder {
            value: json!({
                "apiVersion": "modelstudio.io/v1alpha1", "kind": "ModelImport",
                "metadata": {"name": name},
                "spec": {
                    "baseModel": "qwen3-32b", "weightType": "lora",
                    "storage": {"bucketName": "bucket", "objectKey": format!("models/{name}/")}
                }
            }),
        }
    }

    /// Credentials from the Secret `secret` (its `api-key`).
    pub fn secret(mut self, secret: &str) -> Self {
        self.value["spec"]["apiKeySecretRef"] = json!({"name": secret});
        self
    }

    pub fn namespace(mut self, namespace: &str) -> Self {
        self.value["metadata"]["namespace"] = json!(namespace);
        self
    }

    /// Sets one field of the spec.
    pub fn spec(mut self, field: &str, value: Value) -> Self {
        self.value["spec"][field] = value;
        self
    }

    pub fn json(&self) -> Value {
        self.value.clone()
    }

    /// The object as a typed resource (the controller's `ModelImport`).
    pub fn build<T: serde::de::DeserializeOwned>(&self) -> T {
        serde_json::from_value(self.value.clone())
            .expect("a ModelImport built by the test bed deserializes")
    }
}

/// A Secret holding an API key under `api-key`.
pub fn api_key_secret(name: &str, key: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name},
        "stringData": {API_KEY_FIELD: key}
    })
}
