//! Observe: the resource as cached, then each input the core names ([`Need`]), read once.

use super::{resource, DeploymentContext};
use crate::crd::{ModelDeployment, ModelImport};
use crate::pass::{Error, Object};
use kube::api::Api;
use kube::runtime::reflector::ObjectRef;
use modelstudio_core::api::{ApiError, ApiKey};
use modelstudio_core::deployment::deployments::{Deployment, PageRequest};
use modelstudio_core::deployment::step::{Need, Observation, Seen};
use modelstudio_core::requeue::Timing;

/// The page size of a listing, and the most pages read: 10,000 deployments per workspace.
const LIST_PAGE_SIZE: u32 = 100;
const MAX_LIST_PAGES: u32 = 100;

/// One reconcile's IO: the object's side of the pass, and what only a deployment reads.
pub(super) struct Io<'a> {
    pub(super) ctx: &'a DeploymentContext,
    pub(super) object: Object<'a, ModelDeployment>,
}

impl<'a> Io<'a> {
    pub(super) fn new(ctx: &'a DeploymentContext, obj: &ModelDeployment) -> Self {
        Io {
            ctx,
            object: Object::new(&ctx.pass, obj),
        }
    }

    pub(super) fn observation(&self) -> Observation {
        let config = &self.ctx.pass.config;
        Observation::new(
            jiff::Timestamp::now(),
            Timing {
                poll_interval: config.poll_interval,
                create_grace: config.create_grace,
            },
            resource::resource(&self.object.current),
        )
    }

    /// Reads one input into the observation.
    pub(super) async fn observe(&mut self, obs: &mut Observation, need: Need) -> Result<(), Error> {
        match need {
            Need::FreshCopy => {
                // Never create on a copy older than our own last write: read past the cache.
                let fresh = self.object.read_fresh().await?;
                obs.fresh = Some(resource::resource(fresh));
            }
            Need::Import(name) => {
                let import = self.import(&name).await?;
                obs.import = Some(resource::import_view(import.as_ref()));
            }
            Need::Credentials => {
                let r = obs.resource();
                // The calls of this pass go out with it.
                let key = self
                    .object
                    .take_key(r.spec.api_key_secret.as_ref(), r.deleting)
                    .await?;
                obs.key_fingerprint = key.fingerprint;
                obs.credentials = Some(key.choice);
            }
            Need::Deployment(deployed_model) => {
                let Some(key) = &self.object.api_key else {
                    return Ok(());
                };
                obs.seen = Some(Seen::Deployment(
                    self.ctx.deployments.get(key, &deployed_model).await,
                ));
            }
            Need::Listing => {
                let Some(key) = self.object.api_key.clone() else {
                    return Ok(());
                };
                obs.seen = Some(Seen::Listing(self.list_all(&key).await));
            }
        }
        Ok(())
    }

    /// The ModelImport from the import controller's cache; read from the server when the cache
    /// lacks it (not filled yet, or outside the controller's label selector).
    async fn import(&self, name: &str) -> Result<Option<ModelImport>, Error> {
        let namespace = self.object.namespace();
        if let Some(cached) = self
            .ctx
            .imports
            .get(&ObjectRef::new(name).within(&namespace))
        {
            return Ok(Some((*cached).clone()));
        }
        let api: Api<ModelImport> = Api::namespaced(self.ctx.pass.client.clone(), &namespace);
        api.get_opt(name).await.map_err(Error::ReadImport)
    }

    /// Every deployment of the key's workspace, page by page (a bounded number of pages).
    async fn list_all(&self, key: &ApiKey) -> Result<Vec<Deployment>, ApiError> {
        let mut all = Vec::new();
        for page_no in 1..=MAX_LIST_PAGES {
            let page = self
                .ctx
                .deployments
                .list(
                    key,
                    &PageRequest {
                        page_no: Some(page_no),
                        page_size: Some(LIST_PAGE_SIZE),
                    },
                )
                .await?;
            let more = page.has_more() && !page.items.is_empty();
            all.extend(page.items);
            if !more {
                break;
            }
        }
        Ok(all)
    }
}
