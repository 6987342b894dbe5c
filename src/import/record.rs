//! Record: fold the core's update into the status (the core builds it) and write it when it
//! changed ([`crate::pass::Object::write_status`]).

use super::observe::Io;
use super::resource;
use crate::metrics::seconds_between;
use crate::pass::Error;
use modelstudio_core::import::status::{became_ready, next_status, Update};
use modelstudio_core::import::step::Observation;

impl Io<'_> {
    /// Writes the status the update leads to, if it differs from the current one, and keeps the
    /// observation in step with what was written.
    pub(super) async fn record(
        &mut self,
        obs: &mut Observation,
        update: &Update,
    ) -> Result<(), Error> {
        let current = obs.resource();
        let now = jiff::Timestamp::now();
        let next = next_status(&current.status, update, current.generation, now);
        if next == current.status {
            return Ok(());
        }
        let ready = became_ready(&current.status, &next);
        let status = resource::model_import_status(&next);
        self.object.write_status(&status).await?;
        self.object.current.status = Some(status);
        if let (true, Some(created)) = (ready, &self.object.current.metadata.creation_timestamp) {
            self.ctx
                .pass
                .metrics
                .time_to_ready
                .observe(seconds_between(created.0, now));
        }
        let mut written = obs.resource().clone();
        written.status = next;
        obs.fresh = Some(written);
        Ok(())
    }
}
