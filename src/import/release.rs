//! Release: remove the finalizer once the job is deleted, orphaned or was never made, and forget
//! the resource's bookkeeping.

use super::observe::Io;
use super::resource;
use crate::crd::DeletionPolicy;
use crate::metrics::{seconds_between, DeletionLabels};
use crate::pass::Error;
use kube::ResourceExt;
use modelstudio_core::import::step::credentials_secret;
use tracing::info;

impl Io<'_> {
    pub(super) async fn release(&self) -> Result<(), Error> {
        match self.object.remove_finalizer().await {
            Ok(false) => Ok(()),
            Ok(true) => {
                if let Some(deleted) = &self.object.current.metadata.deletion_timestamp {
                    let labels = DeletionLabels {
                        policy: match self.object.current.spec.deletion_policy {
                            DeletionPolicy::Delete => "Delete",
                            DeletionPolicy::Orphan => "Orphan",
                        },
                    };
                    self.ctx
                        .pass
                        .metrics
                        .deletion_duration
                        .get_or_create(&labels)
                        .observe(seconds_between(deleted.0, jiff::Timestamp::now()));
                }
                self.ctx.forget(&self.object.key);
                if let Some(job_id) = self
                    .object
                    .current
                    .status
                    .as_ref()
                    .and_then(|s| s.job_id.as_deref())
                {
                    self.ctx.job_cache.forget(job_id);
                }
                info!(name = %self.object.name(), "released");
                // Its credentials Secret may be needed by no one now.
                let secret =
                    credentials_secret(&resource::resource(&self.object.current).spec).secret;
                self.ctx.pass.keeper.check(
                    &self.object.current.namespace().unwrap_or_default(),
                    &secret.name,
                );
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}
