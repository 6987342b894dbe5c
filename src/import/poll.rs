//! Poll: read the job the resource tracks (or names in spec.jobId): from its workspace's poll
//! listing while it is in progress, from its resync listing once it finished
//! ([`super::job_cache`]), else on its own.

use super::job_cache::ListedStates;
use super::observe::Io;
use crate::cli::PollMode;
use crate::pass::fingerprint;
use kube::runtime::reflector::ObjectRef;
use kube::ResourceExt;
use modelstudio_core::api::ApiError;
use modelstudio_core::import::jobs::{Job, JobState};
use modelstudio_core::import::step::Seen;

impl Io<'_> {
    pub(super) async fn poll(
        &self,
        job_id: &str,
        listed: Option<ListedStates>,
        workspace: Option<String>,
    ) -> Seen {
        let Some(key) = &self.object.api_key else {
            return Seen::Job(Err(missing_key()));
        };
        let cache = &self.ctx.job_cache;
        let listing = self.ctx.pass.config.poll_mode == PollMode::Listing;
        let found = match (workspace, listed) {
            (Some(ws), Some(ListedStates::Active)) if listing => {
                let shown = self
                    .object
                    .current
                    .status
                    .as_ref()
                    .and_then(|s| s.remote_status.as_deref())
                    .map_or(JobState::Pending, JobState::parse);
                self.followed
                    .store(true, std::sync::atomic::Ordering::Relaxed);
                cache.active_job(
                    key,
                    &ws,
                    job_id,
                    ObjectRef::new(&self.object.name())
                        .within(&self.object.current.namespace().unwrap_or_default()),
                    shown,
                )
            }
            (Some(ws), Some(ListedStates::Finished)) if listing => {
                cache.finished_job(key, &ws, job_id).await
            }
            _ => Some(self.ctx.jobs.get(key, job_id).await),
        };
        let Some(result) = found else {
            return Seen::NoNews;
        };
        if result.is_ok() {
            self.ctx.mark_read(&self.object.key);
        }
        Seen::Job(result)
    }

    /// Reads the job now, past the workspace's listing (a person asked for a reconcile); at the
    /// quota's poll priority, as any read of a job.
    pub(super) async fn read_now(&self, job_id: &str) -> Seen {
        let Some(key) = &self.object.api_key else {
            return Seen::Job(Err(missing_key()));
        };
        let result = self.ctx.jobs.get(key, job_id).await;
        if result.is_ok() {
            self.ctx.mark_read(&self.object.key);
        }
        Seen::Job(result)
    }

    /// Has the workspace's poller follow a job this resource just created.
    pub(super) fn follow_created(&self, job: &Job) {
        let (Some(key), PollMode::Listing) = (&self.object.api_key, self.ctx.pass.config.poll_mode)
        else {
            return;
        };
        self.followed
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.ctx.job_cache.created(
            key,
            &fingerprint(key),
            job,
            ObjectRef::new(&self.object.name())
                .within(&self.object.current.namespace().unwrap_or_default()),
        );
    }
}

/// The core asks for a remote read only once a key was chosen; should that ever not hold, the
/// call fails as a refused key would, rather than going out without one.
pub(super) fn missing_key() -> ApiError {
    ApiError::InvalidApiKey(modelstudio_core::api::RemoteError {
        code: "InvalidApiKey".into(),
        message: "no API key was chosen for this call".into(),
        request_id: None,
        http_status: 0,
    })
}
