//! The controller's watch caches: the ModelImports and ModelDeployments it reconciles, the
//! Secrets their keys come from (only those, by the label the controller puts on them) and the
//! ConfigMaps it writes for the apps (by their label too). Both kinds are watched untyped and
//! cached typed: one that does not parse is reported and left out, never failing the others. What is cached is trimmed to
//! what the controller reads (no managedFields, annotations or labels): 10,000 imports fit in a
//! small memory.

use crate::crd::{ModelDeployment, ModelDeploymentSpec, ModelImport, ModelImportSpec};
use kube::api::DynamicObject;
use kube::runtime::watcher::{self, Event};
use tokio::sync::mpsc;

/// Drops what the controller never reads of a cached ModelImport or ModelDeployment:
/// managedFields (a third of its size or more), every annotation but its own `modelstudio.io/`
/// ones (the last-applied copy of the whole object, GitOps tools' tracking go) and labels
/// (selection happens in the API server).
pub fn trim_cached(obj: &mut DynamicObject) {
    obj.metadata.managed_fields = None;
    if let Some(annotations) = obj.metadata.annotations.as_mut() {
        annotations.retain(|k, _| k.starts_with(OWN_ANNOTATIONS));
    }
    if obj
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.is_empty())
    {
        obj.metadata.annotations = None;
    }
    obj.metadata.labels = None;
}

/// The prefix of the annotations a person steers the controller with.
const OWN_ANNOTATIONS: &str = "modelstudio.io/";

/// A kind the controller watches untyped and caches typed.
pub trait Watched:
    kube::Resource<DynamicType = ()> + serde::de::DeserializeOwned + Clone + Send + Sync + 'static
{
    /// An object that only names `obj`, for taking it out of the cache.
    fn tombstone(obj: &DynamicObject) -> Self;
}

/// A watch event of an untyped object as the typed cache takes it. An object that does not read
/// as a `K` goes to `unreadable` and out of the cache (a delete, should an older readable version
/// be cached).
pub fn typed_event<K: Watched>(
    event: Event<DynamicObject>,
    unreadable: &mpsc::UnboundedSender<DynamicObject>,
) -> Option<Event<K>> {
    let parse = |obj: DynamicObject| {
        obj.clone().try_parse::<K>().map_err(|_| {
            let gone = Box::new(K::tombstone(&obj));
            let _ = unreadable.send(obj);
            gone
        })
    };
    Some(match event {
        Event::Init => Event::Init,
        Event::InitDone => Event::InitDone,
        Event::InitApply(obj) => Event::InitApply(parse(obj).ok()?),
        Event::Apply(obj) => match parse(obj) {
            Ok(typed) => Event::Apply(typed),
            Err(gone) => Event::Delete(*gone),
        },
        Event::Delete(obj) => Event::Delete(
            obj.clone()
                .try_parse::<K>()
                .unwrap_or_else(|_| K::tombstone(&obj)),
        ),
    })
}

impl Watched for ModelImport {
    fn tombstone(obj: &DynamicObject) -> Self {
        let spec = ModelImportSpec {
            base_model: None,
            display_name: None,
            weight_type: None,
            source: Default::default(),
            storage: None,
            api_key_secret_ref: None,
            deletion_policy: Default::default(),
            job_id: None,
            management_policy: Default::default(),
            outputs: None,
        };
        ModelImport {
            metadata: obj.metadata.clone(),
            spec,
            status: None,
        }
    }
}

impl Watched for ModelDeployment {
    fn tombstone(obj: &DynamicObject) -> Self {
        let spec = ModelDeploymentSpec {
            model_import_ref: None,
            model_name: None,
            plan: None,
            capacity: None,
            deploy_spec: None,
            ptu_capacity: None,
            name: None,
            suffix: None,
            enable_thinking: None,
            max_context_length: None,
            rpm_limit: None,
            tpm_limit: None,
            api_key_secret_ref: None,
            deletion_policy: Default::default(),
            management_policy: Default::default(),
            deployed_model: None,
            outputs: None,
        };
        ModelDeployment {
            metadata: obj.metadata.clone(),
            spec,
            status: None,
        }
    }
}

/// Drops what the controller never reads of a Secret or an outputs ConfigMap it watches:
/// managedFields and annotations (kubectl's last-applied copy of a Secret holds the key itself).
/// It reads their data, labels, owners and finalizers.
pub fn trim_metadata(obj: &mut impl kube::Resource) {
    let meta = obj.meta_mut();
    meta.managed_fields = None;
    meta.annotations = None;
}

/// The watch of the objects that carry the controller's `label`: the Secrets it marked (on first
/// use, see `Context::key_secret`, [`CREDENTIALS_LABEL`](modelstudio_core::credentials::CREDENTIALS_LABEL)) and the ConfigMaps it wrote for the
/// apps ([`OUTPUTS_LABEL`](modelstudio_core::outputs::OUTPUTS_LABEL)), never another of the cluster.
pub fn labelled_watch_config(label: &str) -> watcher::Config {
    watcher::Config::default().any_semantic().labels(label)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Secret;

    /// kubectl's copy of the whole applied object; for a Secret it holds the key itself.
    const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

    fn import(spec: serde_json::Value) -> DynamicObject {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "modelstudio.io/v1alpha1", "kind": "ModelImport",
            "metadata": {"name": "a", "namespace": "n", "annotations": {LAST_APPLIED: "{}", "team": "x"},
                         "managedFields": [{"manager": "kubectl", "operation": "Update"}]},
            "spec": spec,
        }))
        .unwrap()
    }

    fn good_spec() -> serde_json::Value {
        serde_json::json!({"baseModel": "qwen3-32b", "weightType": "lora",
                           "storage": {"bucketName": "bucket", "objectKey": "m/"}})
    }

    #[test]
    fn an_import_is_cached_without_managed_fields_annotations_or_labels() {
        let mut obj = import(good_spec());
        obj.metadata.labels = Some([("shard".to_string(), "a".to_string())].into());
        trim_cached(&mut obj);
        assert_eq!(obj.metadata.managed_fields, None);
        assert_eq!(obj.metadata.annotations, None);
        assert_eq!(obj.metadata.labels, None);
        assert_eq!(obj.metadata.name.as_deref(), Some("a"));
    }

    #[test]
    fn an_unreadable_import_is_reported_and_kept_out_of_the_cache() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let good = typed_event::<ModelImport>(Event::Apply(import(good_spec())), &tx);
        assert!(
            matches!(good, Some(Event::Apply(ref m)) if m.spec.base_model.as_deref() == Some("qwen3-32b"))
        );
        assert!(rx.try_recv().is_err());
        let bad = import(serde_json::json!({"baseModel": 7}));
        // A readable version may be cached: it goes.
        match typed_event::<ModelImport>(Event::Apply(bad.clone()), &tx) {
            Some(Event::Delete(gone)) => assert_eq!(gone.metadata.name.as_deref(), Some("a")),
            other => panic!("{other:?}"),
        }
        assert_eq!(rx.try_recv().unwrap().metadata.name.as_deref(), Some("a"));
        // In a (re)list it is left out of the new cache.
        assert!(typed_event::<ModelImport>(Event::InitApply(bad.clone()), &tx).is_none());
        assert!(rx.try_recv().is_ok());
        assert!(matches!(
            typed_event::<ModelImport>(Event::Delete(bad), &tx),
            Some(Event::Delete(_))
        ));
        assert!(matches!(
            typed_event::<ModelImport>(Event::InitDone, &tx),
            Some(Event::InitDone)
        ));
    }

    #[test]
    fn an_unreadable_deployment_is_reported_and_kept_out_of_the_cache() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let deployment = |spec: serde_json::Value| -> DynamicObject {
            serde_json::from_value(serde_json::json!({
                "apiVersion": "modelstudio.io/v1alpha1", "kind": "ModelDeployment",
                "metadata": {"name": "d", "namespace": "n"},
                "spec": spec,
            }))
            .unwrap()
        };
        let good = deployment(serde_json::json!({"modelName": "qwen-plus", "capacity": 8}));
        assert!(matches!(
            typed_event::<ModelDeployment>(Event::Apply(good), &tx),
            Some(Event::Apply(ref d)) if d.spec.capacity == Some(8)
        ));
        let bad = deployment(serde_json::json!({"modelName": "qwen-plus", "capacity": "eight"}));
        match typed_event::<ModelDeployment>(Event::Apply(bad), &tx) {
            Some(Event::Delete(gone)) => assert_eq!(gone.metadata.name.as_deref(), Some("d")),
            other => panic!("{other:?}"),
        }
        assert_eq!(rx.try_recv().unwrap().metadata.name.as_deref(), Some("d"));
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
        trim_metadata(&mut secret);
        assert_eq!(secret.metadata.annotations, None);
        assert_eq!(secret.metadata.managed_fields, None);
        assert_eq!(secret.metadata.finalizers, Some(vec!["f".to_string()]));
        assert!(secret.data.unwrap().contains_key("api-key"));
    }
}
