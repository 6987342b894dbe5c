//! Delete: call DELETE on the job; when Model Studio refuses, read the job so the core can tell a
//! running job (blocked, retried at the poll interval) from a finished one that is refused.

use super::observe::Io;
use super::poll::missing_key;
use modelstudio_core::import::step::Answer;

impl Io<'_> {
    pub(super) async fn delete(&self, job_id: &str) -> Answer {
        let Some(key) = &self.object.api_key else {
            return Answer::Deleted(Err(missing_key()));
        };
        Answer::Deleted(self.ctx.jobs.delete(key, job_id).await)
    }

    pub(super) async fn read_after_denial(&self, job_id: &str, message: &str) -> Answer {
        let job = match &self.object.api_key {
            Some(key) => self.ctx.jobs.get(key, job_id).await.ok(),
            None => None,
        };
        Answer::ReadAfterDenial {
            message: message.to_string(),
            job,
        }
    }
}
