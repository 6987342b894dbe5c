//! Observe: the resource as cached, then each input the core names ([`Need`]), read once.

use super::{domain, DeploymentContext, Error};
use crate::crd::{ModelDeployment, ModelImport};
use crate::reconciler::fingerprint;
use kube::api::Api;
use kube::runtime::reflector::ObjectRef;
use kube::ResourceExt;
use modelstudio_core::api::{ApiError, ApiKey};
use modelstudio_core::deployment::deployments::{Deployment, PageRequest};
use modelstudio_core::deployment::step::{Need, Observation, Seen};
use modelstudio_core::requeue::Timing;

/// The page size of a listing, and the most pages read: 10,000 deployments per workspace.
const LIST_PAGE_SIZE: u32 = 100;
const MAX_LIST_PAGES: u32 = 100;

/// One reconcile's IO: the object as last read or written, and what was learnt on the way.
pub(super) struct Io<'a> {
    pub(super) ctx: &'a DeploymentContext,
    pub(super) api: Api<ModelDeployment>,
    pub(super) obj: ModelDeployment,
    /// The resource's identity for the bookkeeping (its UID).
    pub(super) key: String,
    /// The key the credentials step chose.
    pub(super) api_key: Option<ApiKey>,
    /// The Secret that key came from, if it came from one.
    pub(super) secret: Option<String>,
    /// The plan carried out and whether its status writes need a reconcile.
    pub(super) progress: crate::pass::Progress,
}

impl<'a> Io<'a> {
    pub(super) fn new(ctx: &'a DeploymentContext, obj: &ModelDeployment) -> Self {
        Io {
            ctx,
            api: Api::namespaced(
                ctx.core.client.clone(),
                &obj.namespace().unwrap_or_default(),
            ),
            obj: obj.clone(),
            key: domain::key(obj),
            api_key: None,
            secret: None,
            progress: crate::pass::Progress::default(),
        }
    }

    pub(super) fn name(&self) -> String {
        self.obj.name_any()
    }

    fn namespace(&self) -> String {
        self.obj.namespace().unwrap_or_default()
    }

    pub(super) fn observation(&self) -> Observation {
        let config = &self.ctx.core.config;
        Observation::new(
            jiff::Timestamp::now(),
            Timing {
                poll_interval: config.poll_interval,
                create_grace: config.create_grace,
            },
            domain::resource(&self.obj),
        )
    }

    /// Reads one input into the observation.
    pub(super) async fn observe(&mut self, obs: &mut Observation, need: Need) -> Result<(), Error> {
        match need {
            Need::FreshCopy => {
                // Never create on a copy older than our own last write: read past the cache.
                let fresh = self
                    .api
                    .get_status(&self.name())
                    .await
                    .map_err(Error::ReadResource)?;
                obs.fresh = Some(domain::resource(&fresh));
                self.obj = fresh;
            }
            Need::Import(name) => {
                let import = self.import(&name).await?;
                obs.import = Some(domain::import_view(import.as_ref()));
            }
            Need::Credentials => {
                let r = obs.resource();
                let chosen = self
                    .ctx
                    .core
                    .api_key(
                        &self.namespace(),
                        r.spec.api_key_secret.as_ref(),
                        r.deleting,
                    )
                    .await
                    .map_err(Error::ReadSecret)?;
                self.secret = chosen.secret.map(|(name, _)| name);
                obs.key_fingerprint = chosen.key.as_ref().map(fingerprint);
                obs.credentials = Some(chosen.chosen);
                self.api_key = chosen.key;
            }
            Need::Deployment(deployed_model) => {
                let Some(key) = &self.api_key else {
                    return Ok(());
                };
                obs.seen = Some(Seen::Deployment(
                    self.ctx.deployments.get(key, &deployed_model).await,
                ));
            }
            Need::Listing => {
                let Some(key) = self.api_key.clone() else {
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
        let namespace = self.namespace();
        if let Some(cached) = self
            .ctx
            .imports
            .get(&ObjectRef::new(name).within(&namespace))
        {
            return Ok(Some((*cached).clone()));
        }
        let api: Api<ModelImport> = Api::namespaced(self.ctx.core.client.clone(), &namespace);
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
            let more = page.has_more() && !page.deployments.is_empty();
            all.extend(page.deployments);
            if !more {
                break;
            }
        }
        Ok(all)
    }
}
