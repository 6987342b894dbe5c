//! Observe: the resource as cached, then each input the core names ([`Need`]), read once.

use super::context::ImportContext;
use super::job_cache::ListedStates;
use super::resource;
use crate::crd::ModelImport;
use crate::pass::{Error, Object};
use kube::ResourceExt;
use modelstudio_core::import::resource::Phase;
use modelstudio_core::import::step::{Need, Observation, Seen};
use modelstudio_core::requeue::Timing;
use std::sync::atomic::AtomicBool;

/// One reconcile's IO: the object's side of the pass, and what only an import reads.
pub(super) struct Io<'a> {
    pub(super) ctx: &'a ImportContext,
    pub(super) object: Object<'a, ModelImport>,
    /// Whether the workspace's poller follows the resource's job (and wakes it on a change).
    pub(super) followed: AtomicBool,
}

impl<'a> Io<'a> {
    pub(super) fn new(ctx: &'a ImportContext, obj: &ModelImport) -> Self {
        Io {
            ctx,
            object: Object::new(&ctx.pass, obj),
            followed: AtomicBool::new(false),
        }
    }

    /// The observation of the cached copy, before any input is read.
    pub(super) fn observation(&mut self) -> Observation {
        let config = &self.ctx.pass.config;
        let timing = Timing {
            poll_interval: config.poll_interval,
            create_grace: config.create_grace,
        };
        let obs = Observation::new(
            jiff::Timestamp::now(),
            timing,
            resource::resource(&self.object.current),
            self.ctx.since_read(&self.object.key),
        );
        self.object.progress.plan = obs.plan().name();
        obs
    }

    /// Reads one input into the observation.
    pub(super) async fn observe(&mut self, obs: &mut Observation, need: Need) -> Result<(), Error> {
        match need {
            Need::FreshCopy => {
                // Never act on a copy older than our own last write: read past the cache.
                let fresh = self.object.read_fresh().await?;
                obs.fresh = Some(resource::resource(fresh));
            }
            Need::Credentials => {
                let r = obs.resource();
                // The calls of this pass go out with it.
                let key = self
                    .object
                    .take_key(r.spec.api_key_secret.as_ref(), r.deleting)
                    .await?;
                obs.key_fingerprint = key.fingerprint;
                obs.credentials = Some(key.choice);
                if key.secret_protected.is_some() {
                    obs.secret_protected = key.secret_protected;
                }
            }
            Need::Job(job_id) => {
                // A tracked job is looked up in its workspace's listing: the poll cycle's while it
                // is in progress, the resync's once it finished.
                let status = &obs.resource().status;
                let tracked = status.job_id.as_deref() == Some(job_id.as_str());
                let listed = match status.phase {
                    Some(Phase::Pending | Phase::Running) if tracked => Some(ListedStates::Active),
                    Some(Phase::Succeeded | Phase::Failed) if tracked => {
                        Some(ListedStates::Finished)
                    }
                    _ => None,
                };
                let fingerprint = obs.key_fingerprint.clone();
                obs.seen = Some(self.poll(&job_id, listed, fingerprint).await);
            }
            Need::JobNow(job_id) => obs.seen = Some(self.read_now(&job_id).await),
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
            .find(|d| crate::deployment::resource::serves(d, &self.object.current))
            .map(|d| d.name_any());
        Some(serving)
    }
}
