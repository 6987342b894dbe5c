//! Record: write the status the core built ([`crate::pass::Object::write_status`], only when it
//! changed), and change the finalizer.

use super::observe::Io;
use super::resource;
use crate::pass::{add_finalizer_to, Error};
use kube::ResourceExt;
use modelstudio_core::credentials::secret_choice;
use modelstudio_core::deployment::resource::DeploymentStatus;
use modelstudio_core::deployment::step::Observation;
use tracing::info;

impl Io<'_> {
    /// Writes `next` (the core sends one only when it differs) and keeps the observation in
    /// step with what was written.
    pub(super) async fn record(
        &mut self,
        obs: &mut Observation,
        next: &DeploymentStatus,
    ) -> Result<(), Error> {
        let status = resource::model_deployment_status(next);
        let written = self.object.write_status(&status).await?;
        self.object.current.metadata.resource_version = written.metadata.resource_version;
        self.object.current.status = Some(status);
        let mut current = obs.resource().clone();
        current.status = next.clone();
        obs.fresh = Some(current);
        Ok(())
    }

    pub(super) async fn add_finalizer(&self) -> Result<(), Error> {
        match add_finalizer_to(
            &self.object.api,
            &self.object.name(),
            self.object.current.metadata.finalizers.as_ref(),
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
        let removed = self.object.remove_finalizer().await?;
        if removed {
            self.ctx.pass.forget(&self.object.key);
            info!(name = %self.object.name(), namespace = ?self.object.current.namespace(), "released the ModelDeployment");
            // Its credentials Secret may be needed by no one now.
            let secret = secret_choice(
                resource::resource(&self.object.current)
                    .spec
                    .api_key_secret
                    .as_ref(),
            );
            self.ctx.pass.keeper.check(
                &self.object.current.namespace().unwrap_or_default(),
                &secret.secret.name,
            );
        }
        Ok(())
    }
}
