//! The ModelDeployment's pass: observe once, decide once (in the core,
//! [`modelstudio_core::deployment::step`]), act, record. Like the ModelImport's, the files of this
//! module only read what the core names, carry out the step and hand the answer back, through the
//! driver and the kit both kinds share ([`crate::pass`]).

mod observe;
mod record;
pub mod resource;

use crate::crd::{ModelDeployment, ModelImport, SecretKeyRef};
use crate::pass::{self, Context, Error, KindPass, Object, Progress, Wanted};
use async_trait::async_trait;
use kube::runtime::controller::Action;
use kube::runtime::reflector::Store;
use modelstudio_core::deployment::deployments::Deployments;
use modelstudio_core::deployment::resource::DeploymentStatus;
use modelstudio_core::deployment::step::{self, Act, Answer, DeploymentStep, Need, Observation};
use modelstudio_core::requeue::Requeue;
use std::sync::Arc;
use tracing::warn;

/// What the ModelDeployment passes need beyond the shared [`Context`].
pub struct DeploymentContext {
    /// What both kinds share: the client, events, metrics, settings, Secrets and backoff.
    pub pass: Arc<Context>,
    /// The deployment API, behind the same quota and metrics layers as the import API.
    pub deployments: Arc<dyn Deployments>,
    /// The ModelImports' watch cache (the import controller's), for modelImportRef.
    pub imports: Store<ModelImport>,
}

/// Reconciles one ModelDeployment through the driver both kinds share.
pub async fn reconcile(
    obj: Arc<ModelDeployment>,
    ctx: Arc<DeploymentContext>,
) -> Result<Action, Error> {
    let mut io = observe::Io::new(&ctx, &obj);
    pass::reconcile(&mut io, &ctx.pass.metrics).await
}

#[async_trait]
impl KindPass for observe::Io<'_> {
    const KIND: &'static str = "ModelDeployment";
    type Resource = ModelDeployment;
    type Observation = Observation;
    type Need = Need;
    type Status = DeploymentStatus;
    type Act = Act;
    type Answer = Answer;

    fn observation(&mut self) -> Observation {
        observe::Io::observation(self)
    }

    fn next_need(obs: &Observation) -> Option<Need> {
        step::next_need(obs)
    }

    async fn observe(&mut self, obs: &mut Observation, need: Need) -> Result<(), Error> {
        observe::Io::observe(self, obs, need).await
    }

    fn decide(obs: &Observation) -> DeploymentStep {
        step::decide(obs)
    }

    async fn record(
        &mut self,
        obs: &mut Observation,
        next: &DeploymentStatus,
    ) -> Result<(), Error> {
        observe::Io::record(self, obs, next).await
    }

    async fn act(&mut self, step: &DeploymentStep) -> Result<Option<Answer>, Error> {
        self.act_on(&step.act).await
    }

    fn answered(obs: &mut Observation, answer: Answer) {
        obs.answer = Some(answer);
    }

    fn object(&self) -> &Object<'_, ModelDeployment> {
        &self.object
    }

    /// The deployed model's name, in the ConfigMap `spec.outputs.configMapName` names (the
    /// resource's name by default).
    fn outputs(&self) -> Option<Wanted> {
        let obj = &self.object.current;
        let named = obj
            .spec
            .outputs
            .as_ref()
            .and_then(|o| o.config_map_name.clone());
        Some(Wanted {
            config_map: named.unwrap_or_else(|| self.object.name()),
            model: obj.status.as_ref().and_then(|s| s.deployed_model.clone()),
            secret: obj.spec.api_key_secret_ref.as_ref().map(SecretKeyRef::core),
        })
    }

    fn progress(&mut self) -> &mut Progress {
        &mut self.object.progress
    }
}

impl observe::Io<'_> {
    /// Carries out the step's finalizer change or remote call; a remote answer goes back to the
    /// core.
    async fn act_on(&mut self, act: &Act) -> Result<Option<Answer>, Error> {
        match act {
            Act::AddFinalizer => return self.add_finalizer().await.map(|()| None),
            Act::RemoveFinalizer => return self.release().await.map(|()| None),
            _ => {}
        }
        // The core asks for no remote call without a key.
        let Some(key) = self.object.api_key.clone() else {
            return Ok(None);
        };
        let api = &self.ctx.deployments;
        Ok(match act {
            Act::Nothing | Act::AddFinalizer | Act::RemoveFinalizer => None,
            Act::Create(new) => Some(Answer::Created(api.create(&key, new).await)),
            Act::Scale {
                deployed_model,
                capacity,
            } => Some(Answer::Scaled(
                api.scale(&key, deployed_model, *capacity).await,
            )),
            Act::UpdateLimits {
                deployed_model,
                limits,
            } => Some(Answer::LimitsUpdated(
                api.update_limits(&key, deployed_model, limits).await,
            )),
            Act::Delete { deployed_model } => Some(Answer::Deleted {
                deployed_model: deployed_model.clone(),
                result: api.delete(&key, deployed_model).await,
            }),
        })
    }
}

/// After a Kubernetes-side failure of [`reconcile`], requeue with the same backoff as remote
/// failures.
pub fn error_policy(
    obj: Arc<ModelDeployment>,
    error: &Error,
    ctx: Arc<DeploymentContext>,
) -> Action {
    warn!(name = ?obj.metadata.name, namespace = ?obj.metadata.namespace, error = %error, "deployment reconcile failed");
    ctx.pass
        .requeue(&pass::key(&*obj), Requeue::Backoff { min: None })
}
