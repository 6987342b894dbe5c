//! The API key: the Secret spec.apiKeySecretRef names, else the namespace's well-known Secret,
//! else the controller's default key. Which one is used, and whether its Secret must be
//! protected, is the core's choice ([`choose_key`], [`secret_choice`]); this file reads the
//! Secret, fingerprints the key and puts the controller's finalizer on the Secret when told.

use super::context::Context;
use super::finalizer::{json_patch, params};
use super::Error;
use crate::config::NamespaceGrant;
use crate::regions::is_workspace_id;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch};
use kube::runtime::reflector::ObjectRef;
use kube::ResourceExt;
use modelstudio_core::api::ApiKey;
use modelstudio_core::credentials::{
    choose_key, secret_choice, secret_read, CredentialProblem, DefaultKey, KeySource, SecretRef,
    CREDENTIALS_LABEL, PROTECTED_VALUE, READ_VALUE, REGION_FIELD, SECRET_FINALIZER,
    WORKSPACE_FIELD,
};
use serde_json::json;
use std::sync::Arc;

/// How long a pass waits for the first listing of the namespaces granted the default key.
const GRANTS_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// How long a protection waits for the watch cache to show it: 1 s at most.
const CACHE_WAIT_STEPS: usize = 50;
const CACHE_WAIT_STEP: std::time::Duration = std::time::Duration::from_millis(20);

/// A non-reversible fingerprint of a key and where it is sent: `sha256:` and the first 16 hex
/// digits of the SHA-256 of the key, then (when the Secret names them) of its region's endpoint
/// and its workspace. A job is known only where it was made: the same key sent to another region
/// or workspace is another identity, so a NotFound there never reads as "gone". A key that names
/// neither keeps the fingerprint of the key alone, as recorded before regions existed.
pub fn fingerprint(key: &ApiKey) -> String {
    let identity = match (key.endpoint(), key.workspace()) {
        (None, None) => key.expose().to_string(),
        (endpoint, workspace) => format!(
            "{}\n{}\n{}",
            key.expose(),
            endpoint.unwrap_or_default(),
            workspace.unwrap_or_default()
        ),
    };
    let digest = ring::digest::digest(&ring::digest::SHA256, identity.as_bytes());
    let hex: String = digest.as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

impl Context {
    /// The key in the Secret `reference` names in `namespace`, and whether the Secret carries
    /// the controller's finalizer.
    pub(crate) async fn read_key(
        &self,
        namespace: &str,
        reference: &SecretRef,
    ) -> Result<Result<(ApiKey, bool), CredentialProblem>, kube::Error> {
        let secret = self.key_secret(namespace, &reference.name).await?;
        let Some(secret) = secret else {
            return Ok(Err(CredentialProblem::SecretNotFound {
                name: reference.name.clone(),
            }));
        };
        let protected = secret.finalizers().iter().any(|f| f == SECRET_FINALIZER);
        let Some(bytes) = secret.data.as_ref().and_then(|d| d.get(&reference.key)) else {
            return Ok(Err(CredentialProblem::KeyMissing {
                name: reference.name.clone(),
                key: reference.key.clone(),
            }));
        };
        let Some(key) = std::str::from_utf8(&bytes.0).ok().and_then(ApiKey::new) else {
            return Ok(Err(CredentialProblem::KeyEmpty {
                name: reference.name.clone(),
                key: reference.key.clone(),
            }));
        };
        Ok(self
            .key_scope(&reference.name, &secret)
            .map(|(endpoint, workspace)| (key.scoped(endpoint, workspace), protected)))
    }

    /// Where the key of Secret `name` is sent: its region's endpoint (`None`: the default
    /// endpoint) and its workspace, from the Secret's optional fields.
    fn key_scope(
        &self,
        name: &str,
        secret: &Secret,
    ) -> Result<(Option<String>, Option<String>), CredentialProblem> {
        let field = |f: &str| {
            secret
                .data
                .as_ref()
                .and_then(|d| d.get(f))
                .map(|v| String::from_utf8_lossy(&v.0).trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let workspace = field(WORKSPACE_FIELD);
        if workspace.as_deref().is_some_and(|w| !is_workspace_id(w)) {
            return Err(CredentialProblem::InvalidWorkspace { name: name.into() });
        }
        let endpoint = match field(REGION_FIELD) {
            None => None,
            Some(region) => {
                let url = self
                    .config
                    .regions
                    .endpoint(name, &region, workspace.as_deref())?;
                // The default endpoint by another name is still the default endpoint.
                (url.trim_end_matches('/') != self.config.endpoint.trim_end_matches('/'))
                    .then_some(url)
            }
        };
        Ok((endpoint, workspace))
    }

    /// The Secret a key is read from: from the watch cache, else read from the server and marked
    /// with the controller's label, so that the watch holds it (and keeps it current) from then
    /// on. Only a Secret a resource names, or the namespace's default Secret, comes here.
    async fn key_secret(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Arc<Secret>>, kube::Error> {
        let reference = ObjectRef::new(name).within(namespace);
        if let Some(secret) = self.secrets.get(&reference) {
            return Ok(Some(secret));
        }
        // One first read at a time: the passes of a wave of new resources naming one Secret
        // wait for the first to mark it, then find it in the cache.
        let _turn = self.protecting.lock().await;
        let secret = self.cached_secret(namespace, name).await?;
        // The watch holds marked Secrets only: one without the label was read from the server.
        let unmarked = secret.as_ref().is_some_and(|s| {
            !s.labels().contains_key(CREDENTIALS_LABEL) && s.metadata.deletion_timestamp.is_none()
        });
        if unmarked {
            let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
            let mark = json!({"metadata": {"labels": {CREDENTIALS_LABEL: READ_VALUE}}});
            match api.patch(name, &params(), &Patch::Merge(&mark)).await {
                Ok(_) => {
                    self.await_cached(namespace, name, |_| true).await;
                }
                // Deleted since: the key read stands for this pass.
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        Ok(secret)
    }

    /// The Secret from the watch cache; read from the server when the cache lacks it (not filled
    /// yet, or a Secret not marked yet).
    pub(crate) async fn cached_secret(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Arc<Secret>>, kube::Error> {
        if let Some(secret) = self.secrets.get(&ObjectRef::new(name).within(namespace)) {
            return Ok(Some(secret));
        }
        let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        Ok(api.get_opt(name).await?.map(Arc::new))
    }

    /// Waits, briefly, until the watch cache shows the Secret as `shown`; not at all without a
    /// filled cache.
    async fn await_cached(&self, namespace: &str, name: &str, shown: impl Fn(&Secret) -> bool) {
        use futures::FutureExt;
        if !matches!(self.secrets.wait_until_ready().now_or_never(), Some(Ok(()))) {
            return;
        }
        let reference = ObjectRef::new(name).within(namespace);
        for _ in 0..CACHE_WAIT_STEPS {
            if self.secrets.get(&reference).is_some_and(|s| shown(&s)) {
                return;
            }
            tokio::time::sleep(CACHE_WAIT_STEP).await;
        }
    }

    /// Puts the controller's finalizer (and the label that finds it again) on the Secret the key
    /// came from, so that deleting the namespace or the Secret waits until no job needs it.
    pub(crate) async fn protect_secret(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<(), kube::Error> {
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        // One protection at a time: the reconciles of a wave of new imports all find the Secret
        // unprotected; the first protects it, the others then find it so in the cache.
        let _turn = self.protecting.lock().await;
        // Already protected, or already going (no finalizer can be added then).
        let done = |secret: &Secret| {
            secret.finalizers().iter().any(|f| f == SECRET_FINALIZER)
                || secret.metadata.deletion_timestamp.is_some()
        };
        if self
            .cached_secret(namespace, name)
            .await?
            .is_some_and(|s| done(&s))
        {
            return Ok(());
        }
        // The patch's test needs the finalizers as they are now, not as cached.
        let Some(secret) = secrets.get_opt(name).await? else {
            return Ok(());
        };
        if done(&secret) {
            return Ok(());
        }
        let label = format!("/metadata/labels/{}", CREDENTIALS_LABEL.replace('/', "~1"));
        let mut ops = match &secret.metadata.finalizers {
            None => vec![
                json!({"op": "test", "path": "/metadata/finalizers", "value": null}),
                json!({"op": "add", "path": "/metadata/finalizers", "value": [SECRET_FINALIZER]}),
            ],
            Some(list) => vec![
                json!({"op": "test", "path": "/metadata/finalizers", "value": list}),
                json!({"op": "add", "path": "/metadata/finalizers/-", "value": SECRET_FINALIZER}),
            ],
        };
        ops.push(match &secret.metadata.labels {
            None => json!({"op": "add", "path": "/metadata/labels", "value": {CREDENTIALS_LABEL: PROTECTED_VALUE}}),
            Some(_) => json!({"op": "add", "path": label, "value": PROTECTED_VALUE}),
        });
        let patch = json_patch(serde_json::Value::Array(ops)).map_err(kube::Error::SerdeError)?;
        match secrets.patch(name, &params(), &patch).await {
            Ok(_) => {
                self.await_cached(namespace, name, |s| {
                    s.finalizers().iter().any(|f| f == SECRET_FINALIZER)
                })
                .await;
                Ok(())
            }
            // The finalizers changed since they were read (another reconcile protecting the same
            // Secret): fine if ours is on now, else the next reconcile tries again.
            Err(kube::Error::Api(s)) if s.code == 422 => {
                let now = secrets.get_opt(name).await?;
                match now {
                    Some(s) if s.finalizers().iter().any(|f| f == SECRET_FINALIZER) => Ok(()),
                    _ => Err(kube::Error::Api(s)),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// The key a resource of `namespace` whose spec names `named` calls with: the credentials as
    /// the core reads them, and the key when one was chosen.
    pub(crate) async fn chosen_key(
        &self,
        namespace: &str,
        named: Option<&SecretRef>,
        deleting: bool,
    ) -> Result<ChosenKey, Error> {
        let choice = secret_choice(named);
        let secret = self
            .read_key(namespace, &choice.secret)
            .await
            .map_err(Error::ReadSecret)?;
        let read = secret_read(&choice, secret.as_ref().map(|_| ()).map_err(Clone::clone));
        // The grant matters only where the resource's own Secret does not serve.
        let default = match read {
            Some(Ok(())) => DefaultKey::Absent,
            _ => self.default_key_for(namespace).await?,
        };
        let chosen = choose_key(read, default, deleting);
        let (key, secret) = match (&chosen, secret) {
            (Ok(KeySource::Secret), Ok((key, protected))) => {
                (Some(key), Some((choice.secret.name, protected)))
            }
            (Ok(KeySource::Default), _) => (
                self.config.default_key.as_ref().map(|d| d.key.clone()),
                None,
            ),
            _ => (None, None),
        };
        Ok(ChosenKey {
            chosen,
            key,
            secret,
        })
    }
}

impl Context {
    /// Whether the controller's default key may serve the resources of `namespace`: the
    /// platform team grants it to every namespace or to those a label selector matches (the
    /// API server evaluates it: the namespaces watch selects them).
    async fn default_key_for(&self, namespace: &str) -> Result<DefaultKey, Error> {
        let Some(default) = &self.config.default_key else {
            return Ok(DefaultKey::Absent);
        };
        let selector = match &default.namespaces {
            NamespaceGrant::All => return Ok(DefaultKey::Granted),
            NamespaceGrant::Selector(selector) => selector,
        };
        tokio::time::timeout(GRANTS_WAIT, self.granted_namespaces.wait_until_ready())
            .await
            .map_err(|_| Error::NamespacesNotListed)?
            .map_err(|_| Error::NamespacesNotListed)?;
        Ok(
            if self
                .granted_namespaces
                .get(&ObjectRef::new(namespace))
                .is_some()
            {
                DefaultKey::Granted
            } else {
                DefaultKey::NotGranted {
                    namespace: namespace.to_string(),
                    selector: selector.clone(),
                }
            },
        )
    }
}

/// The key a resource calls with, as [`Context::chosen_key`] chose it.
pub struct ChosenKey {
    /// The choice as the core reads it.
    pub chosen: Result<KeySource, CredentialProblem>,
    pub key: Option<ApiKey>,
    /// The Secret the key came from and whether it carries the controller's finalizer.
    pub secret: Option<(String, bool)>,
}

/// What the core reads of a key choice.
pub struct KeySeen {
    /// The fingerprint of the chosen key, as a status records it.
    pub fingerprint: Option<String>,
    pub choice: Result<KeySource, CredentialProblem>,
    /// Whether the Secret the key came from carries the controller's finalizer.
    pub secret_protected: Option<bool>,
}

impl ChosenKey {
    /// The fingerprint of the chosen key, as a status records it.
    pub fn fingerprint(&self) -> Option<String> {
        self.key.as_ref().map(fingerprint)
    }
}

impl Context {
    /// Puts the controller's finalizer on `secret`, the Secret of `namespace` a pass's key came
    /// from (nothing when the key came from none; see [`Context::protect_secret`]).
    pub(crate) async fn protect_key_secret(
        &self,
        namespace: &str,
        secret: Option<&str>,
    ) -> Result<(), Error> {
        match secret {
            Some(name) => self
                .protect_secret(namespace, name)
                .await
                .map_err(Error::ProtectSecret),
            None => Ok(()),
        }
    }
}
