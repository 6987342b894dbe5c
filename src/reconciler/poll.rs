//! Poll: read the job the resource tracks (or names in spec.jobId).

use super::observe::Io;
use modelstudio_core::remote::{ApiError, Job};

impl Io<'_> {
    pub(super) async fn poll(&self, job_id: &str) -> Result<Job, ApiError> {
        let Some(key) = &self.api_key else {
            return Err(missing_key());
        };
        let result = self.ctx.jobs.get(key, job_id).await;
        if result.is_ok() {
            self.ctx.mark_read(&self.key);
        }
        result
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
