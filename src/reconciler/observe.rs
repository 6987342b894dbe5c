//! Observe: the resource as cached, then each input the core names ([`Need`]), read once.

use super::context::Context;
use super::Error;
use crate::crd::ModelImport;
use crate::domain;
use crate::job_cache::Kind;
use kube::api::Api;
use kube::ResourceExt;
use modelstudio_core::api::ApiKey;
use modelstudio_core::import::resource::Phase;
use modelstudio_core::import::step::{Need, Observation, Seen};
use modelstudio_core::requeue::Timing;

/// One reconcile's IO: the object as last read or written, and what was learnt on the way.
pub(super) struct Io<'a> {
    pub(super) ctx: &'a Context,
    pub(super) api: Api<ModelImport>,
    /// The object as last read (the cache's copy, or a fresh one) with the status last written.
    pub(super) obj: ModelImport,
    /// The resource's identity for the bookkeeping (its UID).
    pub(super) key: String,
    /// The key the credentials step chose.
    pub(super) api_key: Option<ApiKey>,
    /// The Secret that key came from, if it came from one.
    pub(super) secret: Option<String>,
    /// The plan carried out and whether its status writes need a reconcile.
    pub(super) progress: crate::pass::Progress,
    /// Whether the workspace's poller follows the resource's job (and wakes it on a change).
    pub(super) followed: std::sync::atomic::AtomicBool,
}

impl<'a> Io<'a> {
    pub(super) fn new(ctx: &'a Context, obj: &ModelImport) -> Self {
        let namespace = obj.namespace().unwrap_or_default();
        Io {
            ctx,
            api: Api::namespaced(ctx.client.clone(), &namespace),
            obj: obj.clone(),
            key: domain::key(obj),
            api_key: None,
            secret: None,
            progress: crate::pass::Progress::default(),
            followed: std::sync::atomic::AtomicBool::new(false),
        }
    }

    pub(super) fn name(&self) -> String {
        self.obj.name_any()
    }

    /// The observation of the cached copy, before any input is read.
    pub(super) fn observation(&mut self) -> Observation {
        let config = &self.ctx.config;
        let timing = Timing {
            poll_interval: config.poll_interval,
            create_grace: config.create_grace,
        };
        let obs = Observation::new(
            jiff::Timestamp::now(),
            timing,
            domain::resource(&self.obj),
            self.ctx.since_read(&self.key),
        );
        self.progress.plan = obs.plan().name();
        obs
    }

    /// Reads one input into the observation.
    pub(super) async fn observe(&mut self, obs: &mut Observation, need: Need) -> Result<(), Error> {
        match need {
            Need::FreshCopy => {
                // Never act on a copy older than our own last write: read past the cache.
                let fresh = self
                    .api
                    .get_status(&self.name())
                    .await
                    .map_err(Error::ReadResource)?;
                obs.fresh = Some(domain::resource(&fresh));
                self.obj = fresh;
            }
            Need::Credentials => self.credentials(obs).await?,
            Need::Job(job_id) => {
                // A tracked job is looked up in its workspace's listing: the poll cycle's while it
                // is in progress, the resync's once it finished.
                let status = &obs.resource().status;
                let tracked = status.job_id.as_deref() == Some(job_id.as_str());
                let kind = match status.phase {
                    Some(Phase::Pending | Phase::Running) if tracked => Some(Kind::Active),
                    Some(Phase::Succeeded | Phase::Failed) if tracked => Some(Kind::Finished),
                    _ => None,
                };
                let fingerprint = obs.key_fingerprint.clone();
                obs.seen = Some(self.poll(&job_id, kind, fingerprint).await);
            }
            Need::Listing => obs.seen = Some(Seen::Listing(self.list_every_job().await)),
        }
        Ok(())
    }
}

impl Io<'_> {
    /// The ModelDeployment of the namespace that serves this import's model, if any (`Some(None)`:
    /// none); `None` while the deployments' cache is not filled yet. Without a deployment
    /// controller (its CRD not installed), nothing serves.
    pub(super) async fn served_by(&self) -> Option<Option<String>> {
        use futures::FutureExt;
        if !self.ctx.deployments_watched() {
            return Some(None);
        }
        let store = &self.ctx.model_deployments;
        if !matches!(store.wait_until_ready().now_or_never(), Some(Ok(()))) {
            return None;
        }
        let serving = store
            .state()
            .iter()
            .find(|d| crate::deployment_reconciler::domain::serves(d, &self.obj))
            .map(|d| d.name_any());
        Some(serving)
    }
}
