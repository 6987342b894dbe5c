//! The controller's watch caches: the ModelImports it reconciles and the Secrets their keys come
//! from. What is cached is trimmed to what the controller reads (managedFields but its own
//! status entry, the last-applied annotation), so 10,000 imports fit in a small memory.

use crate::config::MANAGER;
use k8s_openapi::api::core::v1::Secret;
use kube::api::DynamicObject;
use kube::runtime::watcher;

/// kubectl's copy of the whole applied object; for a Secret it holds the key itself.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Secrets that never hold an API key and that clusters keep many (or large) of.
pub const SECRET_FIELD_SELECTOR: &str =
    "type!=kubernetes.io/service-account-token,type!=helm.sh/release.v1";

/// Keeps of a ModelImport's managedFields only the entry of the controller's status apply (the
/// status write reads it) and drops the last-applied annotation.
pub fn trim_import(obj: &mut DynamicObject) {
    if let Some(fields) = obj.metadata.managed_fields.as_mut() {
        fields.retain(|m| {
            m.manager.as_deref() == Some(MANAGER)
                && m.operation.as_deref() == Some("Apply")
                && m.subresource.as_deref() == Some("status")
        });
    }
    if let Some(annotations) = obj.metadata.annotations.as_mut() {
        annotations.remove(LAST_APPLIED);
    }
}

/// Drops a Secret's managedFields and annotations: the controller reads its data, labels and
/// finalizers only.
pub fn trim_secret(secret: &mut Secret) {
    secret.metadata.managed_fields = None;
    secret.metadata.annotations = None;
}

/// The watch of the Secrets an API key can come from.
pub fn secret_watch_config() -> watcher::Config {
    watcher::Config::default()
        .any_semantic()
        .fields(SECRET_FIELD_SELECTOR)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;

    fn entry(manager: &str, operation: &str, subresource: Option<&str>) -> ManagedFieldsEntry {
        ManagedFieldsEntry {
            manager: Some(manager.into()),
            operation: Some(operation.into()),
            subresource: subresource.map(str::to_string),
            ..Default::default()
        }
    }

    #[test]
    fn an_import_keeps_only_the_controllers_status_apply_entry() {
        let mut obj: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "modelstudio.io/v1alpha1", "kind": "ModelImport",
            "metadata": {"name": "a", "annotations": {LAST_APPLIED: "{}", "team": "x"}},
        }))
        .unwrap();
        obj.metadata.managed_fields = Some(vec![
            entry("kubectl-client-side-apply", "Update", None),
            entry(MANAGER, "Update", None),
            entry(MANAGER, "Apply", Some("status")),
            entry("argocd", "Apply", None),
        ]);
        trim_import(&mut obj);
        assert_eq!(
            obj.metadata.managed_fields,
            Some(vec![entry(MANAGER, "Apply", Some("status"))])
        );
        let annotations = obj.metadata.annotations.unwrap();
        assert_eq!(annotations.len(), 1);
        assert_eq!(annotations["team"], "x");
    }

    #[test]
    fn a_secret_keeps_its_data_labels_and_finalizers() {
        let mut secret: Secret = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "k", "labels": {"a": "b"}, "finalizers": ["f"],
                         "annotations": {LAST_APPLIED: "{\"data\":{\"api-key\":\"c2stMQ==\"}}"},
                         "managedFields": [{"manager": "kubectl", "operation": "Update"}]},
            "data": {"api-key": "c2stMQ=="},
        }))
        .unwrap();
        trim_secret(&mut secret);
        assert_eq!(secret.metadata.annotations, None);
        assert_eq!(secret.metadata.managed_fields, None);
        assert_eq!(secret.metadata.finalizers, Some(vec!["f".to_string()]));
        assert!(secret.data.unwrap().contains_key("api-key"));
    }
}
