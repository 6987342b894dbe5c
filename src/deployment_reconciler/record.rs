//! Record: write the status the core built (server-side apply as [`MANAGER`], only when it
//! changed), change the finalizer, and publish the core's events.

use super::observe::Io;
use super::{domain, Error};
use crate::reconciler::finalizer::{add_finalizer_to, remove_finalizer_from};
use crate::reconciler::status_write::{apply_status, clear_stray_status};
use kube::{Resource, ResourceExt};
use modelstudio_core::credentials::secret_choice;
use modelstudio_core::deployment::resource::DeploymentStatus;
use modelstudio_core::deployment::step::Observation;
use modelstudio_core::events;
use tracing::info;

impl Io<'_> {
    /// Writes `next` (the core sends one only when it differs) and keeps the observation in
    /// step with what was written.
    pub(super) async fn record(
        &mut self,
        obs: &mut Observation,
        next: Option<&DeploymentStatus>,
    ) -> Result<(), Error> {
        let Some(next) = next else {
            return Ok(());
        };
        let status = domain::model_deployment_status(next);
        let applied = serde_json::to_value(&status)
            .map_err(|e| Error::WriteStatus(kube::Error::SerdeError(e)))?;
        let written = apply_status(&self.api, &self.name(), &applied)
            .await
            .map_err(Error::WriteStatus)?;
        self.ctx.core.metrics.status_writes.inc();
        // A field the apply left out but did not own (the embedded API server keeps some the
        // real one drops) is cleared by name.
        let written = clear_stray_status(&self.api, &self.name(), &applied, &written)
            .await
            .map_err(Error::WriteStatus)?
            .unwrap_or(written);
        if let (true, Some(version)) = (
            self.progress.quiet_writes,
            &written.metadata.resource_version,
        ) {
            self.ctx.core.note_own_write(&self.key, version);
        }
        self.obj.metadata.resource_version = written.metadata.resource_version;
        self.obj.status = Some(status);
        let mut resource = obs.resource().clone();
        resource.status = next.clone();
        obs.fresh = Some(resource);
        Ok(())
    }

    pub(super) async fn add_finalizer(&self) -> Result<(), Error> {
        match add_finalizer_to(
            &self.api,
            &self.name(),
            self.obj.metadata.finalizers.as_ref(),
        )
        .await
        {
            // The cached list was older than the stored one (the finalizer was added a moment
            // ago): the watch brings the newer copy, which wakes the next reconcile.
            Err(kube::Error::Api(s)) if s.code == 422 => Ok(()),
            other => other.map_err(Error::AddFinalizer),
        }
    }

    /// Removes the finalizer: the remote deployment is gone, orphaned or was never made.
    pub(super) async fn release(&self) -> Result<(), Error> {
        let removed = remove_finalizer_from(&self.api, &self.name(), self.obj.finalizers())
            .await
            .map_err(Error::RemoveFinalizer)?;
        if removed {
            self.ctx.core.forget(&self.key);
            info!(name = %self.name(), namespace = ?self.obj.namespace(), "released the ModelDeployment");
            // Its credentials Secret may be needed by no one now.
            let secret = secret_choice(domain::resource(&self.obj).spec.api_key_secret.as_ref());
            self.ctx.core.keeper.check(
                &self.obj.namespace().unwrap_or_default(),
                &secret.secret.name,
            );
        }
        Ok(())
    }

    pub(super) async fn protect_secret(&self) -> Result<(), Error> {
        match &self.secret {
            Some(name) => self
                .ctx
                .core
                .protect_secret(&self.obj.namespace().unwrap_or_default(), name)
                .await
                .map_err(Error::ProtectSecret),
            None => Ok(()),
        }
    }

    pub(super) fn publish(&self, events: &[events::Event]) {
        crate::reconciler::publish_to(&self.ctx.core, &self.obj.object_ref(&()), events);
    }
}
