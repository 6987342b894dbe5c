//! What every pass of either kind shares: the client, the event queue, the metrics, the settings,
//! the credentials Secrets' cache and keeper, and the bookkeeping between passes (failure counts
//! for backoff, the controller's own status writes). A kind's own context holds this beside what
//! only that kind needs.

use crate::backoff::FailureCounts;
use crate::config::{Config, MANAGER};
use crate::event_queue::EventQueue;
use crate::event_recorder::EventRecorder;
use crate::keeper::{KeeperHandle, SecretId};
use crate::metrics::Metrics;
use crate::wakes::Wakes;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::core::PartialObjectMeta;
use kube::runtime::events::Reporter;
use kube::runtime::reflector::store::Writer;
use kube::runtime::reflector::Store;
use kube::Client;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

pub struct Context {
    pub client: Client,
    /// The events to publish, sent in the background.
    pub events: EventQueue,
    pub metrics: Arc<Metrics>,
    pub config: Config,
    /// Where released resources ask for their credentials Secret to be checked.
    pub keeper: KeeperHandle,
    keeper_inbox: Mutex<Option<mpsc::UnboundedReceiver<SecretId>>>,
    pub failures: FailureCounts,
    /// The Secrets watch cache; until a watch fills it, every Secret is read from the server.
    pub secrets: Store<Secret>,
    secrets_writer: Mutex<Option<Writer<Secret>>>,
    /// The Namespaces granted the default key by a label selector (their metadata only).
    pub granted_namespaces: Store<PartialObjectMeta<Namespace>>,
    granted_writer: Mutex<Option<Writer<PartialObjectMeta<Namespace>>>>,
    /// The outputs ConfigMaps the controller wrote (by their label), never any other.
    pub outputs: Store<ConfigMap>,
    outputs_writer: Mutex<Option<Writer<ConfigMap>>>,
    /// By UID, the resourceVersion of the controller's last status write that needs no
    /// reconcile of its own (the pass that wrote it scheduled the next look).
    own_writes: Mutex<HashMap<String, String>>,
    /// What wakes resources besides their own watch (their key's Secret, their outputs
    /// ConfigMap).
    pub wakes: Wakes,
    /// Held while a credentials Secret is being marked or protected.
    pub(super) protecting: tokio::sync::Mutex<()>,
}

impl Context {
    pub fn new(client: Client, metrics: Arc<Metrics>, config: Config) -> Self {
        let (keeper, keeper_inbox) = KeeperHandle::new();
        let reporter = Reporter {
            controller: MANAGER.into(),
            instance: config.instance.clone(),
        };
        let secrets_writer = Writer::default();
        let granted_writer = Writer::default();
        let outputs_writer = Writer::default();
        Context {
            events: EventQueue::start(
                EventRecorder::new(client.clone(), reporter),
                metrics.clone(),
            ),
            client,
            metrics,
            config,
            keeper,
            keeper_inbox: Mutex::new(Some(keeper_inbox)),
            failures: FailureCounts::default(),
            secrets: secrets_writer.as_reader(),
            secrets_writer: Mutex::new(Some(secrets_writer)),
            granted_namespaces: granted_writer.as_reader(),
            granted_writer: Mutex::new(Some(granted_writer)),
            outputs: outputs_writer.as_reader(),
            outputs_writer: Mutex::new(Some(outputs_writer)),
            own_writes: Mutex::default(),
            wakes: Wakes::default(),
            protecting: tokio::sync::Mutex::default(),
        }
    }

    /// The writer of the Secrets cache, for the one watch that fills it.
    pub fn take_secrets_writer(&self) -> Option<Writer<Secret>> {
        self.secrets_writer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// The writer of the granted Namespaces' cache, for the one watch that fills it.
    pub fn take_granted_writer(&self) -> Option<Writer<PartialObjectMeta<Namespace>>> {
        self.granted_writer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// The writer of the outputs ConfigMaps' cache, for the one watch that fills it.
    pub fn take_outputs_writer(&self) -> Option<Writer<ConfigMap>> {
        self.outputs_writer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// Notes a write of the controller's whose watch event needs no reconcile.
    pub(crate) fn note_own_write(&self, uid: &str, resource_version: &str) {
        let mut own = self.own_writes.lock().unwrap_or_else(|p| p.into_inner());
        own.insert(uid.to_string(), resource_version.to_string());
    }

    /// Whether a watched object (of either kind) is exactly the controller's own last write
    /// (once).
    pub fn is_own_write(&self, meta: &kube::api::ObjectMeta) -> bool {
        let (Some(uid), Some(version)) = (&meta.uid, &meta.resource_version) else {
            return false;
        };
        let mut own = self.own_writes.lock().unwrap_or_else(|p| p.into_inner());
        if own.get(uid) == Some(version) {
            own.remove(uid);
            return true;
        }
        false
    }

    /// The keeper's inbox, for the one keeper that runs.
    pub fn take_keeper_inbox(&self) -> Option<mpsc::UnboundedReceiver<SecretId>> {
        self.keeper_inbox
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// Forgets a released resource's shared bookkeeping.
    pub(crate) fn forget(&self, key: &str) {
        self.failures.succeeded(key);
        let mut own = self.own_writes.lock().unwrap_or_else(|p| p.into_inner());
        own.remove(key);
    }
}
