//! One object's side of a pass, the same for either kind: the object as last read or written, its
//! API, its bookkeeping key, the key the pass calls with and the Secret it came from, and where
//! the pass is. A kind's IO holds one beside what only that kind reads.

use super::context::Context;
use super::credentials::KeySeen;
use super::events::publish_to;
use super::finalizer::remove_finalizer_from;
use super::outputs::{outputs_ready, Conditions};
use super::status_apply::write_status;
use super::{key, Error, Progress};
use kube::api::Api;
use kube::core::NamespaceResourceScope;
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use modelstudio_core::api::ApiKey;
use modelstudio_core::conditions::Condition;
use modelstudio_core::credentials::SecretRef;
use modelstudio_core::events::Event;
use modelstudio_core::requeue::Requeue;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt::Debug;

/// What a custom resource of ours is to the pass (either kind).
pub trait ObjectKind:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + DeserializeOwned
    + Serialize
    + Debug
    + Send
    + Sync
    + Conditions
{
}

impl<K> ObjectKind for K where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Serialize
        + Debug
        + Send
        + Sync
        + Conditions
{
}

pub struct Object<'a, K> {
    pub ctx: &'a Context,
    pub api: Api<K>,
    /// The object as last read (the cache's copy, or a fresh one) with the status last written.
    pub current: K,
    /// The resource's identity for the bookkeeping (its UID).
    pub key: String,
    /// The key the credentials step chose.
    pub api_key: Option<ApiKey>,
    /// The Secret that key came from, if it came from one.
    pub secret: Option<String>,
    /// The plan carried out and whether its status writes need a reconcile.
    pub progress: Progress,
    /// The `OutputsReady` condition as read (the status apply does not carry it).
    pub outputs_ready: Option<Condition>,
}

impl<'a, K: ObjectKind> Object<'a, K> {
    pub fn new(ctx: &'a Context, obj: &K) -> Self {
        Object {
            ctx,
            api: Api::namespaced(ctx.client.clone(), &obj.namespace().unwrap_or_default()),
            current: obj.clone(),
            key: key(obj),
            api_key: None,
            secret: None,
            progress: Progress::default(),
            outputs_ready: outputs_ready(obj),
        }
    }

    pub fn name(&self) -> String {
        self.current.name_any()
    }

    pub fn namespace(&self) -> String {
        self.current.namespace().unwrap_or_default()
    }

    /// Reads the object past the cache (never act on a copy older than the controller's own last
    /// write) and keeps it.
    pub async fn read_fresh(&mut self) -> Result<&K, Error> {
        self.current = self
            .api
            .get_status(&self.name())
            .await
            .map_err(Error::ReadResource)?;
        Ok(&self.current)
    }

    /// Chooses the key this object calls with, its spec naming `named` (see
    /// `Context::chosen_key`), and keeps it and the Secret it came from for the pass's calls;
    /// returns what the core reads of the choice.
    pub async fn take_key(
        &mut self,
        named: Option<&SecretRef>,
        deleting: bool,
    ) -> Result<KeySeen, Error> {
        let chosen = self
            .ctx
            .chosen_key(&self.namespace(), named, deleting)
            .await?;
        let seen = KeySeen {
            fingerprint: chosen.fingerprint(),
            choice: chosen.chosen,
            secret_protected: chosen.secret.as_ref().map(|(_, protected)| *protected),
        };
        if let Some((name, _)) = chosen.secret {
            self.secret = Some(name);
        }
        self.api_key = chosen.key;
        Ok(seen)
    }

    /// Puts the controller's finalizer on the Secret the key came from, if it came from one.
    pub async fn protect_secret(&self) -> Result<(), Error> {
        self.ctx
            .protect_key_secret(&self.namespace(), self.secret.as_deref())
            .await
    }

    /// Writes `status` (the status apply of `pass::status_apply`); the object as written.
    pub async fn write_status(&self, status: &impl Serialize) -> Result<K, Error> {
        write_status(
            self.ctx,
            &self.api,
            &self.name(),
            &self.key,
            status,
            self.progress.quiet_writes,
        )
        .await
    }

    /// Removes the controller's finalizer: `false` when it was not there or the object is gone.
    pub async fn remove_finalizer(&self) -> Result<bool, Error> {
        remove_finalizer_from(&self.api, &self.name(), self.current.finalizers())
            .await
            .map_err(Error::RemoveFinalizer)
    }

    /// Publishes the step's events on the object.
    pub fn publish(&self, events: &[Event]) {
        publish_to(self.ctx, &self.current.object_ref(&()), events);
    }

    /// The action for a requeue decision about the object.
    pub fn requeue(&self, requeue: Requeue) -> Action {
        self.ctx.requeue(&self.key, requeue)
    }
}
