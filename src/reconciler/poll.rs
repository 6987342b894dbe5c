//! Poll: read the job the resource tracks (or names in spec.jobId): from its workspace's poll
//! listing while it is in progress, from its resync listing once it finished
//! ([`crate::job_cache`]), else on its own.

use super::credentials::fingerprint;
use super::observe::Io;
use crate::cli::PollMode;
use crate::job_cache::Kind;
use kube::runtime::reflector::ObjectRef;
use kube::ResourceExt;
use modelstudio_core::remote::{ApiError, Job};
use modelstudio_core::step::Seen;

impl Io<'_> {
    pub(super) async fn poll(
        &self,
        job_id: &str,
        kind: Option<Kind>,
        workspace: Option<String>,
    ) -> Seen {
        let Some(key) = &self.api_key else {
            return Seen::Job(Err(missing_key()));
        };
        let jobs = self.ctx.jobs.as_ref();
        let result = match workspace {
            Some(ws) if kind.is_some() && self.ctx.config.poll_mode == PollMode::Listing => {
                let kind = kind.unwrap_or(Kind::Active);
                let seen_at = self.ctx.read_at(&self.key);
                match self
                    .ctx
                    .job_cache
                    .job(jobs, key, &ws, kind, job_id, seen_at)
                    .await
                {
                    Ok(Some(job)) => Ok(job),
                    Ok(None) => return Seen::NoNews,
                    Err(e) => Err(e),
                }
            }
            _ => jobs.get(key, job_id).await,
        };
        if let Ok(job) = &result {
            self.ctx.mark_read(&self.key);
            self.follow(job);
        }
        Seen::Job(result)
    }

    /// Asks the job cache to wake this resource when a poll listing shows its job changed.
    pub(super) fn follow(&self, job: &Job) {
        let (Some(key), false) = (&self.api_key, job.state.is_terminal()) else {
            return;
        };
        if self.ctx.config.poll_mode != PollMode::Listing {
            return;
        }
        let resource = ObjectRef::new_with(&self.name(), self.ctx.api_resource.clone())
            .within(&self.obj.namespace().unwrap_or_default());
        let workspace = fingerprint(key);
        self.ctx
            .job_cache
            .follow(&workspace, &job.id, resource, job.state.clone());
    }
}

/// The core asks for a remote read only once a key was chosen; should that ever not hold, the
/// call fails as a refused key would, rather than going out without one.
pub(super) fn missing_key() -> ApiError {
    ApiError::InvalidApiKey(modelstudio_core::remote::RemoteError {
        code: "InvalidApiKey".into(),
        message: "no API key was chosen for this call".into(),
        request_id: None,
        http_status: 0,
    })
}
