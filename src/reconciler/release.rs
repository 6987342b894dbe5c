//! Release: remove the finalizer once the job is deleted, orphaned or was never made, and forget
//! the resource's bookkeeping.

use super::finalizer::remove_finalizer_from;
use super::observe::Io;
use super::Error;
use crate::crd::DeletionPolicy;
use crate::domain;
use crate::metrics::{seconds_between, DeletionLabels};
use kube::ResourceExt;
use modelstudio_core::import::step::credentials_secret;
use tracing::info;

impl Io<'_> {
    pub(super) async fn release(&self) -> Result<(), Error> {
        match remove_finalizer_from(&self.api, &self.name(), self.obj.finalizers()).await {
            Ok(false) => Ok(()),
            Ok(true) => {
                if let Some(deleted) = &self.obj.metadata.deletion_timestamp {
                    let labels = DeletionLabels {
                        policy: match self.obj.spec.deletion_policy {
                            DeletionPolicy::Delete => "Delete",
                            DeletionPolicy::Orphan => "Orphan",
                        },
                    };
                    self.ctx
                        .metrics
                        .deletion_duration
                        .get_or_create(&labels)
                        .observe(seconds_between(deleted.0, jiff::Timestamp::now()));
                }
                self.ctx.forget(&self.key);
                if let Some(job_id) = self.obj.status.as_ref().and_then(|s| s.job_id.as_deref()) {
                    self.ctx.job_cache.forget(job_id);
                }
                info!(name = %self.name(), "released");
                // Its credentials Secret may be needed by no one now.
                let secret = credentials_secret(&domain::resource(&self.obj).spec).secret;
                self.ctx
                    .keeper
                    .check(&self.obj.namespace().unwrap_or_default(), &secret.name);
                Ok(())
            }
            Err(e) => Err(Error::RemoveFinalizer(e)),
        }
    }
}
