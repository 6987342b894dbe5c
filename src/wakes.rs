//! What wakes a resource besides its own watch: an edit of its key's Secret (the region or
//! workspace its outputs ConfigMap names may have changed) and a change of its outputs ConfigMap
//! by someone else (edited or deleted: the controller writes it again). The watches of the
//! Secrets and of the ConfigMaps send a [`Wake`]; each kind's controller maps it to its resources.

use crate::crd::SecretKeyRef;
use crate::watches::Watched;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher::Event;
use kube::ResourceExt;
use modelstudio_core::credentials::secret_choice;
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use tokio::sync::broadcast;

/// How many wakes wait for a slow controller before the oldest are dropped (the next poll covers
/// what a dropped wake would have done).
const CAPACITY: usize = 1024;

/// Something that changed, for the resources it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wake {
    /// A Secret's data changed.
    Secret { namespace: String, name: String },
    /// The outputs ConfigMap of the resource of `kind` named `name` changed or went.
    Owner {
        kind: String,
        namespace: String,
        name: String,
    },
}

/// The sender both watches share; each controller subscribes.
#[derive(Clone)]
pub struct Wakes(broadcast::Sender<Wake>);

impl Default for Wakes {
    fn default() -> Self {
        Wakes(broadcast::channel(CAPACITY).0)
    }
}

impl Wakes {
    fn send(&self, wake: Wake) {
        // No subscriber (no controller runs yet): nothing to wake.
        let _ = self.0.send(wake);
    }

    /// A tap on the credentials Secrets' watch: a Secret whose data changed since it was last
    /// seen wakes the resources that use it (a Secret first seen, or only relabelled by the
    /// controller, wakes none).
    pub fn on_secret_events(&self) -> impl FnMut(&Event<Secret>) + Send + 'static {
        let wakes = self.clone();
        let mut seen: HashMap<(String, String), u64> = HashMap::new();
        move |event| {
            let (Event::Apply(secret) | Event::InitApply(secret)) = event else {
                return;
            };
            let key = (secret.namespace().unwrap_or_default(), secret.name_any());
            let mut hasher = DefaultHasher::new();
            for (k, v) in secret.data.iter().flatten() {
                (k, &v.0).hash(&mut hasher);
            }
            let hash = hasher.finish();
            let before = seen.insert(key.clone(), hash);
            if matches!(event, Event::Apply(_)) && before.is_some_and(|b| b != hash) {
                wakes.send(Wake::Secret {
                    namespace: key.0,
                    name: key.1,
                });
            }
        }
    }

    /// Wakes the resource that owns a ConfigMap someone else changed or deleted.
    pub fn owner_of(&self, cm: &ConfigMap) {
        let owner = cm
            .owner_references()
            .iter()
            .find(|o| o.controller == Some(true));
        if let Some(owner) = owner {
            self.send(Wake::Owner {
                kind: owner.kind.clone(),
                namespace: cm.namespace().unwrap_or_default(),
                name: owner.name.clone(),
            });
        }
    }

    /// The resources of `K` each wake concerns: the owner named, or those in the Secret's
    /// namespace whose key comes from it (`named` gives the Secret a resource's spec names).
    pub fn of_kind<K: Watched>(
        &self,
        store: Store<K>,
        named: fn(&K) -> Option<&SecretKeyRef>,
    ) -> impl futures::Stream<Item = ObjectRef<K>> + Send + 'static {
        let inbox = self.0.subscribe();
        let stream = futures::stream::unfold(inbox, |mut inbox| async move {
            loop {
                match inbox.recv().await {
                    Ok(wake) => return Some((wake, inbox)),
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        });
        futures::StreamExt::flat_map(stream, move |wake| {
            futures::stream::iter(concerned(&store, named, &wake))
        })
    }
}

/// The resources of `K` in `store` that `wake` concerns.
fn concerned<K: Watched>(
    store: &Store<K>,
    named: fn(&K) -> Option<&SecretKeyRef>,
    wake: &Wake,
) -> Vec<ObjectRef<K>> {
    match wake {
        Wake::Owner {
            kind,
            namespace,
            name,
        } if *kind == K::kind(&()) => vec![ObjectRef::new(name).within(namespace)],
        Wake::Owner { .. } => vec![],
        Wake::Secret { namespace, name } => store
            .state()
            .into_iter()
            .filter(|obj| obj.namespace().as_deref() == Some(namespace.as_str()))
            .filter(|obj| {
                secret_choice(named(obj).map(SecretKeyRef::core).as_ref())
                    .secret
                    .name
                    == *name
            })
            .map(|obj| ObjectRef::from_obj(&*obj))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::ModelDeployment;
    use kube::runtime::reflector::store::Writer;

    fn secret(name: &str, key: &str) -> Secret {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": "team"},
            "data": {"api-key": key},
        }))
        .unwrap()
    }

    fn deployment(name: &str, secret: Option<&str>) -> ModelDeployment {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "modelstudio.io/v1alpha1", "kind": "ModelDeployment",
            "metadata": {"name": name, "namespace": "team"},
            "spec": {"modelName": "qwen-plus", "capacity": 1,
                     "apiKeySecretRef": secret.map(|s| serde_json::json!({"name": s}))},
        }))
        .unwrap()
    }

    #[test]
    fn only_a_changed_secret_wakes_and_only_its_users() {
        let wakes = Wakes::default();
        let mut inbox = wakes.0.subscribe();
        let mut tap = wakes.on_secret_events();
        tap(&Event::InitApply(secret("k", "c2stMQ==")));
        tap(&Event::Apply(secret("k", "c2stMQ==")));
        assert!(inbox.try_recv().is_err(), "seen and unchanged: no wake");
        tap(&Event::Apply(secret("k", "c2stMg==")));
        let wake = inbox.try_recv().unwrap();
        assert_eq!(
            wake,
            Wake::Secret {
                namespace: "team".into(),
                name: "k".into()
            }
        );
        let mut writer = Writer::default();
        for d in [
            deployment("uses-k", Some("k")),
            deployment("uses-other", Some("other")),
            deployment("uses-default", None),
        ] {
            writer.apply_watcher_event(&Event::Apply(d));
        }
        fn named(d: &ModelDeployment) -> Option<&SecretKeyRef> {
            d.spec.api_key_secret_ref.as_ref()
        }
        let store = writer.as_reader();
        let woken = concerned(&store, named, &wake);
        assert_eq!(woken, vec![ObjectRef::new("uses-k").within("team")]);
        let owner = Wake::Owner {
            kind: "ModelDeployment".into(),
            namespace: "team".into(),
            name: "uses-other".into(),
        };
        assert_eq!(
            concerned(&store, named, &owner),
            vec![ObjectRef::new("uses-other").within("team")]
        );
        let import_owner = Wake::Owner {
            kind: "ModelImport".into(),
            namespace: "team".into(),
            name: "uses-other".into(),
        };
        assert!(concerned(&store, named, &import_owner).is_empty());
    }
}
