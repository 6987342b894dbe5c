//! Poll: read the job the resource tracks (or names in spec.jobId): from its workspace's poll
//! listing while it is in progress, from its resync listing once it finished
//! ([`crate::job_cache`]), else on its own.

use super::observe::Io;
use crate::cli::PollMode;
use crate::job_cache::Kind;
use modelstudio_core::remote::ApiError;
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
        if result.is_ok() {
            self.ctx.mark_read(&self.key);
        }
        Seen::Job(result)
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
