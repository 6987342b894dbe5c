//! What the ModelImport passes need beyond the shared [`Context`]: the import API, each
//! workspace's job listings, when each job was last read, the turns of creates in the quota, and
//! the ModelDeployments' cache (an import's job is not deleted while a deployment serves its
//! model).

use super::job_cache::JobCache;
use crate::crd::ModelDeployment;
use crate::pass::Context;
use kube::runtime::reflector::store::Writer;
use kube::runtime::reflector::Store;
use modelstudio_core::api::{ApiKey, Operation};
use modelstudio_core::import::jobs::ImportJobs;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A turn counts as come this early: the reconcile then waits in the quota's queue briefly.
const TURN_LEAD: Duration = Duration::from_millis(100);

pub struct ImportContext {
    /// What both kinds share: the client, events, metrics, settings, Secrets and backoff.
    pub pass: Arc<Context>,
    /// The import API, with its layers.
    pub jobs: Arc<dyn ImportJobs>,
    /// Each workspace's active jobs, listed once per poll cycle.
    pub job_cache: Arc<JobCache>,
    /// When each resource's job was last read successfully (or created).
    last_read: Mutex<HashMap<String, Instant>>,
    /// By UID, when a resource's turn for a create comes ([`ImportJobs::pace`]).
    turns: Mutex<HashMap<String, Instant>>,
    /// The ModelDeployments' watch cache, once the deployment controller runs.
    pub model_deployments: Store<ModelDeployment>,
    deployments_writer: Mutex<Option<Writer<ModelDeployment>>>,
}

impl ImportContext {
    pub fn new(pass: Arc<Context>, jobs: Arc<dyn ImportJobs>) -> Self {
        let config = &pass.config;
        let job_cache = JobCache::new(
            jobs.clone(),
            config.poll_interval,
            config.resync_interval,
            pass.metrics.poll_cycle.clone(),
        );
        let deployments_writer = Writer::default();
        ImportContext {
            pass,
            jobs,
            job_cache,
            last_read: Mutex::default(),
            turns: Mutex::default(),
            model_deployments: deployments_writer.as_reader(),
            deployments_writer: Mutex::new(Some(deployments_writer)),
        }
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
    pub(super) fn forget(&self, key: &str) {
        self.pass.forget(key);
        let mut last = self.last_read.lock().unwrap_or_else(|p| p.into_inner());
        last.remove(key);
        let mut turns = self.turns.lock().unwrap_or_else(|p| p.into_inner());
        turns.remove(key);
    }
}
