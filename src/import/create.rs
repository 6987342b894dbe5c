//! Create: send the create the core built. Its intent is already recorded (the status write comes
//! first), so a restart looks for the job before creating again.

use super::observe::Io;
use super::poll::missing_key;
use modelstudio_core::import::jobs::NewJob;
use modelstudio_core::import::step::Answer;
use tracing::info;

impl Io<'_> {
    pub(super) async fn create(&self, job: &NewJob) -> Answer {
        let Some(key) = &self.object.api_key else {
            return Answer::Created(Err(missing_key()));
        };
        let result = self.ctx.jobs.create(key, job).await;
        if let Ok(created) = &result {
            self.ctx.mark_read(&self.object.key);
            self.follow_created(created);
            info!(name = %self.object.name(), job_id = %created.id, "created import job");
        }
        Answer::Created(result)
    }
}
