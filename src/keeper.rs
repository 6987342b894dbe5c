//! The credentials keeper: takes the controller's finalizer off a credentials Secret as soon as
//! no ModelImport that still has a job to delete, and no ModelDeployment that still has a
//! deployment to delete, reads its key from it, and the controller's label off a Secret that no
//! resource names any more (so the Secrets watch lets it go). Checked when an import is
//! released, and for every labelled Secret at the poll interval, which also catches a changed
//! `apiKeySecretRef` or `deletionPolicy`. Which Secret is still in use is the core's decision
//! ([`secret_relied_on`]); this loop only lists and patches.

use crate::crd::{ModelDeployment, ModelImport, FINALIZER};
use crate::deployment::resource as deployment_resource;
use crate::import::resource;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams};
use kube::runtime::reflector::Store;
use kube::{Client, ResourceExt};
use modelstudio_core::credentials::{
    secret_choice, SecretRef, CREDENTIALS_LABEL, PROTECTED_VALUE, READ_VALUE, SECRET_FINALIZER,
};
use modelstudio_core::deployment::resource::DeploymentResource;
use modelstudio_core::deployment::step::secret_relied_on as deployment_secret_relied_on;
use modelstudio_core::import::step::secret_relied_on;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::{info, warn};

/// A Secret by namespace and name.
pub type SecretId = (String, String);

/// Where reconciles ask for a Secret to be checked.
#[derive(Clone)]
pub struct KeeperHandle(mpsc::UnboundedSender<SecretId>);

impl KeeperHandle {
    /// A handle and the inbox the keeper reads.
    pub fn new() -> (Self, mpsc::UnboundedReceiver<SecretId>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (KeeperHandle(tx), rx)
    }

    /// Asks for `secret` in `namespace` to be checked soon. Without a running keeper (a test of
    /// the reconciler alone) the request is dropped with the channel.
    pub fn check(&self, namespace: &str, secret: &str) {
        let _ = self.0.send((namespace.to_string(), secret.to_string()));
    }
}

/// Why a check failed; the next sweep tries again.
#[derive(Debug, thiserror::Error)]
pub enum KeeperError {
    #[error("could not list the protected Secrets: {0}")]
    ListSecrets(#[source] kube::Error),
    #[error("could not list the ModelImports of namespace {namespace}: {source}")]
    ListImports {
        namespace: String,
        #[source]
        source: kube::Error,
    },
    #[error("could not list the ModelDeployments of namespace {namespace}: {source}")]
    ListDeployments {
        namespace: String,
        #[source]
        source: kube::Error,
    },
    #[error("could not release Secret {namespace}/{name}: {source}")]
    Release {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
}

pub struct CredentialsKeeper {
    client: Client,
    /// The controller's `--namespace`, when it watches one.
    namespace: Option<String>,
    interval: Duration,
    inbox: mpsc::UnboundedReceiver<SecretId>,
    /// The controller's caches, when it runs one: a sweep reads them and asks the API server
    /// only about a Secret the cache shows unneeded.
    caches: Option<Caches>,
}

/// The controller's watch caches of ModelImports, ModelDeployments (when it reconciles them) and
/// Secrets.
#[derive(Clone)]
pub struct Caches {
    pub imports: Store<ModelImport>,
    pub deployments: Option<Store<ModelDeployment>>,
    pub secrets: Store<Secret>,
}

impl CredentialsKeeper {
    pub fn new(
        client: Client,
        namespace: Option<String>,
        interval: Duration,
        inbox: mpsc::UnboundedReceiver<SecretId>,
    ) -> Self {
        CredentialsKeeper {
            client,
            namespace,
            interval,
            inbox,
            caches: None,
        }
    }

    /// Sweeps from the controller's caches (once they are filled).
    pub fn with_caches(mut self, caches: Caches) -> Self {
        self.caches = Some(caches);
        self
    }

    /// Checks on request and sweeps at the interval, until `stop` resolves.
    pub async fn run(mut self, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        let mut sweep = tokio::time::interval(self.interval);
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let result = tokio::select! {
                _ = &mut stop => return,
                _ = sweep.tick() => self.sweep().await.map(|_| ()),
                Some(first) = self.inbox.recv() => {
                    // Releases come in bursts (a namespace going): check each Secret once.
                    let mut due = BTreeSet::from([first]);
                    while let Ok(more) = self.inbox.try_recv() {
                        due.insert(more);
                    }
                    self.check_all(due).await.map(|_| ())
                }
            };
            if let Err(e) = result {
                warn!(error = %e, "credentials keeper");
            }
        }
    }

    /// Releases, once, every protected Secret that no import needs any more; the number released.
    pub async fn release_unneeded(
        client: &Client,
        namespace: Option<String>,
    ) -> Result<usize, KeeperError> {
        let (_, inbox) = KeeperHandle::new();
        let keeper = CredentialsKeeper::new(client.clone(), namespace, Duration::MAX, inbox);
        keeper.sweep().await
    }

    /// Checks every Secret that carries the controller's label; the number released.
    async fn sweep(&self) -> Result<usize, KeeperError> {
        if let Some(caches) = self.caches.as_ref().filter(|c| c.ready()) {
            // From the caches: only a Secret they show unneeded is checked against the server.
            // Each labelled Secret, and whether it is protected.
            let labelled: BTreeMap<SecretId, bool> = caches
                .secrets
                .state()
                .iter()
                .filter_map(|s| {
                    let label = s.labels().get(CREDENTIALS_LABEL)?;
                    Some(((s.namespace()?, s.name_any()), label == PROTECTED_VALUE))
                })
                .collect();
            let objects = caches.imports.state();
            let mut due = BTreeSet::new();
            let namespaces: BTreeSet<&String> = labelled.keys().map(|(ns, _)| ns).collect();
            for namespace in namespaces {
                let mut imports = Imports::default();
                for import in objects
                    .iter()
                    .filter(|o| o.metadata.namespace.as_deref() == Some(namespace.as_str()))
                {
                    imports.add(&resource::resource(import));
                }
                for deployment in caches.deployments.iter().flat_map(Store::state) {
                    if deployment.metadata.namespace.as_deref() == Some(namespace.as_str()) {
                        imports.add_deployment(&deployment_resource::resource(&deployment));
                    }
                }
                due.extend(
                    labelled
                        .iter()
                        .filter(|((ns, name), protected)| {
                            ns == namespace
                                && ((**protected && !imports.in_use(name)) || !imports.named(name))
                        })
                        .map(|(id, _)| id.clone()),
                );
            }
            return self.check_all(due).await;
        }
        let secrets: Api<Secret> = match &self.namespace {
            Some(ns) => Api::namespaced(self.client.clone(), ns),
            None => Api::all(self.client.clone()),
        };
        let labelled = secrets
            .list_metadata(&ListParams::default().labels(CREDENTIALS_LABEL))
            .await
            .map_err(KeeperError::ListSecrets)?;
        let due = labelled
            .items
            .iter()
            .filter_map(|s| Some((s.namespace()?, s.name_any())))
            .collect();
        self.check_all(due).await
    }

    async fn check_all(&self, due: BTreeSet<SecretId>) -> Result<usize, KeeperError> {
        let namespaces: BTreeSet<&String> = due.iter().map(|(ns, _)| ns).collect();
        let mut released = 0;
        for namespace in namespaces {
            let imports = self.imports(namespace).await?;
            for (_, name) in due.iter().filter(|(ns, _)| ns == namespace) {
                if !imports.in_use(name)
                    && self.release(namespace, name, imports.named(name)).await?
                {
                    released += 1;
                }
            }
        }
        Ok(released)
    }

    /// A namespace's ModelImports and ModelDeployments, read fresh from the API server (not a
    /// cache that may lag behind a release).
    async fn imports(&self, namespace: &str) -> Result<Imports, KeeperError> {
        let resource = ApiResource::erase::<ModelImport>(&());
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), namespace, &resource);
        let list =
            api.list(&ListParams::default())
                .await
                .map_err(|source| KeeperError::ListImports {
                    namespace: namespace.to_string(),
                    source,
                })?;
        let mut imports = Imports::of(list.items.iter());
        let resource = ApiResource::erase::<ModelDeployment>(&());
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), namespace, &resource);
        match api.list(&ListParams::default()).await {
            Ok(list) => imports.add_deployments(list.items.iter()),
            // Its CRD is not installed: no deployment relies on anything.
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(source) => {
                return Err(KeeperError::ListDeployments {
                    namespace: namespace.to_string(),
                    source,
                })
            }
        }
        Ok(imports)
    }

    /// Takes the finalizer off the Secret, and its label too unless a resource still names it
    /// (`named`: then the label says it is only read); whether there was anything to change.
    async fn release(&self, namespace: &str, name: &str, named: bool) -> Result<bool, KeeperError> {
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        let error = |source| KeeperError::Release {
            namespace: namespace.to_string(),
            name: name.to_string(),
            source,
        };
        let Some(secret) = secrets.get_opt(name).await.map_err(error)? else {
            return Ok(false);
        };
        let mut ops = Vec::new();
        if let Some(i) = secret
            .finalizers()
            .iter()
            .position(|f| f == SECRET_FINALIZER)
        {
            let path = format!("/metadata/finalizers/{i}");
            ops.push(json!({"op": "test", "path": path, "value": SECRET_FINALIZER}));
            ops.push(json!({"op": "remove", "path": path}));
        }
        let path = format!("/metadata/labels/{}", CREDENTIALS_LABEL.replace('/', "~1"));
        match secret.labels().get(CREDENTIALS_LABEL).map(String::as_str) {
            None => {}
            Some(READ_VALUE) if named => {}
            Some(_) if named => {
                ops.push(json!({"op": "replace", "path": path, "value": READ_VALUE}))
            }
            Some(_) => ops.push(json!({"op": "remove", "path": path})),
        }
        if ops.is_empty() {
            return Ok(false);
        }
        let patch: json_patch::Patch = serde_json::from_value(serde_json::Value::Array(ops))
            .map_err(|e| error(kube::Error::SerdeError(e)))?;
        let params = PatchParams {
            field_manager: Some(crate::config::MANAGER.into()),
            ..Default::default()
        };
        match secrets
            .patch(name, &params, &Patch::Json::<()>(patch))
            .await
        {
            Ok(_) => {
                if named {
                    info!(
                        namespace,
                        secret = name,
                        "no job needs this Secret's key any more: released it"
                    );
                } else {
                    info!(namespace, secret = name, "no resource names this Secret any more: released it and let it out of the cache");
                }
                Ok(true)
            }
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
            Err(e) => Err(error(e)),
        }
    }
}

impl Caches {
    fn ready(&self) -> bool {
        use futures::FutureExt;
        // An empty store before its first list would show every Secret unneeded.
        let ready = |w: Option<Result<(), _>>| matches!(w, Some(Ok(())));
        ready(self.imports.wait_until_ready().now_or_never())
            && ready(self.secrets.wait_until_ready().now_or_never())
            && self
                .deployments
                .as_ref()
                .is_none_or(|d| ready(d.wait_until_ready().now_or_never()))
    }
}

/// What a namespace's imports need of its Secrets: the names they rely on, and the names they
/// read a key from, gathered one import at a time (a sweep of 10,000 cached imports never holds
/// a copy of them all).
#[derive(Default)]
struct Imports {
    relied_on: BTreeSet<String>,
    named: BTreeSet<String>,
    unreadable_held: bool,
}

impl Imports {
    fn of<'a>(objects: impl Iterator<Item = &'a DynamicObject>) -> Self {
        let mut imports = Imports::default();
        imports.add_parsed(objects, |i, typed: ModelImport| {
            i.add(&resource::resource(&typed))
        });
        imports
    }

    /// Adds each object that reads as `K`; one the controller cannot read may still need its
    /// key if it holds the finalizer: then every Secret is kept.
    fn add_parsed<'a, K: kube::Resource + serde::de::DeserializeOwned>(
        &mut self,
        objects: impl Iterator<Item = &'a DynamicObject>,
        add: impl Fn(&mut Self, K),
    ) {
        for obj in objects {
            let held = obj.finalizers().iter().any(|f| f == FINALIZER);
            match obj.clone().try_parse::<K>() {
                Ok(typed) => add(self, typed),
                Err(_) if held => self.unreadable_held = true,
                Err(_) => {}
            }
        }
    }

    /// ModelDeployments read untyped, as [`Imports::of`] reads imports.
    fn add_deployments<'a>(&mut self, objects: impl Iterator<Item = &'a DynamicObject>) {
        self.add_parsed(objects, |i, typed: ModelDeployment| {
            i.add_deployment(&deployment_resource::resource(&typed))
        });
    }

    fn add_deployment(&mut self, deployment: &DeploymentResource) {
        self.add_secrets(
            deployment.spec.api_key_secret.as_ref(),
            deployment_secret_relied_on(deployment),
        );
    }

    fn add(&mut self, import: &modelstudio_core::import::resource::Resource) {
        self.add_secrets(
            import.spec.api_key_secret.as_ref(),
            secret_relied_on(import),
        );
    }

    /// A resource naming `named` (the namespace's default Secret when `None`) and relying on
    /// `relied_on` to delete its remote object.
    fn add_secrets(&mut self, named: Option<&SecretRef>, relied_on: Option<String>) {
        self.named.insert(secret_choice(named).secret.name);
        if let Some(secret) = relied_on {
            self.relied_on.insert(secret);
        }
    }

    /// Whether a remote object still needs the Secret's key to be deleted.
    fn in_use(&self, secret: &str) -> bool {
        self.unreadable_held || self.relied_on.contains(secret)
    }

    /// Whether a resource the controller manages reads its key from the Secret.
    fn named(&self, secret: &str) -> bool {
        self.unreadable_held || self.named.contains(secret) || self.relied_on.contains(secret)
    }
}
