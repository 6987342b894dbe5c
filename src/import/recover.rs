//! Recover: list every job of the workspace to find the job of a create whose answer was never
//! recorded. When the listing may stop and whether it proves anything is the core's
//! ([`ListingGather`]).

use super::observe::Io;
use super::poll::missing_key;
use modelstudio_core::api::ApiError;
use modelstudio_core::import::decision::{Listing, ListingGather};

impl Io<'_> {
    pub(super) async fn list_every_job(&self) -> Result<Listing, ApiError> {
        let Some(key) = &self.object.api_key else {
            return Err(missing_key());
        };
        let mut gather = ListingGather::default();
        while let Some(query) = gather.next_query() {
            gather.add(self.ctx.jobs.list(key, &query).await?);
        }
        Ok(gather.finish())
    }
}
