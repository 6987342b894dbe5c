//! What every reconcile shares: the clients, the event recorder, the metrics, the settings, and
//! the bookkeeping between reconciles (failure counts for backoff, when each job was last read).

use crate::backoff::FailureCounts;
use crate::config::{Config, MANAGER};
use crate::crd::{ModelDeployment, ModelImport};
use crate::event_queue::EventQueue;
use crate::event_recorder::EventRecorder;
use crate::job_cache::JobCache;
use crate::keeper::{KeeperHandle, SecretId};
use crate::metrics::Metrics;
use crate::modelstudio::{Metered, RateLimited};
use k8s_openapi::api::core::v1::Secret;
use kube::api::ApiResource;
use kube::runtime::events::Reporter;
use kube::runtime::reflector::store::Writer;
use kube::runtime::reflector::Store;
use kube::Client;
use modelstudio_core::api::{ApiKey, Operation};
use modelstudio_core::deployment::deployments::Deployments;
use modelstudio_core::import::jobs::ImportJobs;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// A turn counts as come this early: the reconcile then waits in the quota's queue briefly.
const TURN_LEAD: Duration = Duration::from_millis(100);

pub struct Context {
    pub client: Client,
    /// The import API, with its layers.
    pub jobs: Arc<dyn ImportJobs>,
    /// The events to publish, sent in the background.
    pub events: EventQueue,
    pub metrics: Arc<Metrics>,
    pub config: Config,
    /// The ModelImport's API resource, for objects watched untyped.
    pub api_resource: ApiResource,
    /// Where released imports ask for their credentials Secret to be checked.
    pub keeper: KeeperHandle,
    keeper_inbox: Mutex<Option<mpsc::UnboundedReceiver<SecretId>>>,
    pub failures: FailureCounts,
    /// Each workspace's active jobs, listed once per poll cycle.
    pub job_cache: Arc<JobCache>,
    /// When each resource's job was last read successfully (or created).
    last_read: Mutex<HashMap<String, Instant>>,
    /// The Secrets watch cache; until a watch fills it, every Secret is read from the server.
    pub secrets: Store<Secret>,
    secrets_writer: Mutex<Option<Writer<Secret>>>,
    /// By UID, the resourceVersion of the controller's last status write that needs no
    /// reconcile of its own (the pass that wrote it scheduled the next look).
    own_writes: Mutex<HashMap<String, String>>,
    /// By UID, when a resource's turn for a create comes ([`ImportJobs::pace`]).
    turns: Mutex<HashMap<String, Instant>>,
    /// Held while a credentials Secret is being protected.
    pub(super) protecting: tokio::sync::Mutex<()>,
    /// The ModelDeployments' watch cache, once the deployment controller runs: an import's job
    /// is not deleted while a deployment serves its model.
    pub model_deployments: Store<ModelDeployment>,
    deployments_writer: Mutex<Option<Writer<ModelDeployment>>>,
}

/// `jobs` behind the layers every controller call goes through: the account's rate limit (one
/// token bucket for the whole controller), then the metrics of each call.
pub fn layered(
    jobs: impl ImportJobs + 'static,
    config: &Config,
    metrics: Arc<Metrics>,
) -> Arc<dyn ImportJobs> {
    Arc::new(RateLimited::new(
        Metered::new(jobs, metrics.clone()),
        config.qps,
        config.burst,
        metrics,
    ))
}

/// One client behind the layers, for both the import and the deployment API: one token bucket
/// for the whole controller, whichever API a call goes to.
pub fn layered_both<A>(
    api: A,
    config: &Config,
    metrics: Arc<Metrics>,
) -> Arc<RateLimited<Metered<A>>>
where
    A: ImportJobs + Deployments + 'static,
{
    Arc::new(RateLimited::new(
        Metered::new(api, metrics.clone()),
        config.qps,
        config.burst,
        metrics,
    ))
}

impl Context {
    pub fn new(
        client: Client,
        jobs: Arc<dyn ImportJobs>,
        metrics: Arc<Metrics>,
        config: Config,
    ) -> Self {
        let (keeper, keeper_inbox) = KeeperHandle::new();
        let poll_interval = config.poll_interval;
        let resync_interval = config.resync_interval;
        let reporter = Reporter {
            controller: MANAGER.into(),
            instance: config.instance.clone(),
        };
        let secrets_writer = Writer::default();
        let deployments_writer = Writer::default();
        let job_cache = JobCache::new(
            jobs.clone(),
            poll_interval,
            resync_interval,
            metrics.poll_cycle.clone(),
        );
        Context {
            events: EventQueue::start(
                EventRecorder::new(client.clone(), reporter),
                metrics.clone(),
            ),
            client,
            jobs,
            metrics,
            config,
            api_resource: ApiResource::erase::<ModelImport>(&()),
            keeper,
            keeper_inbox: Mutex::new(Some(keeper_inbox)),
            failures: FailureCounts::default(),
            job_cache,
            last_read: Mutex::default(),
            secrets: secrets_writer.as_reader(),
            secrets_writer: Mutex::new(Some(secrets_writer)),
            own_writes: Mutex::default(),
            turns: Mutex::default(),
            protecting: tokio::sync::Mutex::default(),
            model_deployments: deployments_writer.as_reader(),
            deployments_writer: Mutex::new(Some(deployments_writer)),
        }
    }

    /// The writer of the Secrets cache, for the one watch that fills it.
    pub fn take_secrets_writer(&self) -> Option<Writer<Secret>> {
        self.secrets_writer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// The writer of the ModelDeployments cache, for the one watch that fills it.
    pub fn take_deployments_writer(&self) -> Option<Writer<ModelDeployment>> {
        self.deployments_writer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// Whether a watch fills the ModelDeployments cache (the deployment controller runs).
    pub fn deployments_watched(&self) -> bool {
        self.deployments_writer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_none()
    }

    /// How long the resource `key` must wait before a call of `operation`: its turn, taken now
    /// if the quota is short, or the rest of the wait for a turn it holds; `None` to go now.
    /// `api_key` says which endpoint's quota the call would take.
    pub(super) fn turn(
        &self,
        key: &str,
        api_key: &ApiKey,
        operation: Operation,
    ) -> Option<Duration> {
        let mut turns = self.turns.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if let Some(due) = turns.get(key).copied() {
            if due <= now + TURN_LEAD {
                turns.remove(key);
                return None;
            }
            return Some(due - now);
        }
        let wait = self.jobs.pace(api_key, operation)?;
        turns.insert(key.to_string(), now + wait);
        Some(wait)
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

    /// Notes that the job of `key` was just read (or created).
    pub(super) fn mark_read(&self, key: &str) {
        let mut last = self.last_read.lock().unwrap_or_else(|p| p.into_inner());
        last.insert(key.to_string(), Instant::now());
    }

    /// How long ago the job of `key` was last read.
    pub(super) fn since_read(&self, key: &str) -> Option<Duration> {
        let last = self.last_read.lock().unwrap_or_else(|p| p.into_inner());
        last.get(key).map(Instant::elapsed)
    }

    /// Forgets a released resource.
    pub(crate) fn forget(&self, key: &str) {
        self.failures.succeeded(key);
        let mut last = self.last_read.lock().unwrap_or_else(|p| p.into_inner());
        last.remove(key);
        let mut own = self.own_writes.lock().unwrap_or_else(|p| p.into_inner());
        own.remove(key);
        let mut turns = self.turns.lock().unwrap_or_else(|p| p.into_inner());
        turns.remove(key);
    }
}
