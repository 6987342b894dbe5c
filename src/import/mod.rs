//! The ModelImport's pass: observe once, decide once (in the core), act, record. Every decision
//! is the core's ([`modelstudio_core::import::step`]); the files of this module only read the
//! inputs the core names, carry out the step it returns and report the answer back to it, through
//! the driver and the kit both kinds share ([`crate::pass`]).

mod context;
mod create;
mod delete;
pub mod job_cache;
mod observe;
mod poll;
mod record;
mod recover;
mod release;
pub mod resource;

pub use context::ImportContext;

use crate::crd::{ModelImport, SecretKeyRef};
use crate::pass::{self, add_finalizer_to, Error, KindPass, Object, Progress, Wanted};
use async_trait::async_trait;
use kube::runtime::controller::Action;
use modelstudio_core::api::Operation;
use modelstudio_core::import::status::Update;
use modelstudio_core::import::step::{self, Act, Answer, Need, Observation, Step};
use modelstudio_core::requeue::Requeue;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tracing::warn;

/// How long a deletion waits while the ModelDeployments' cache is not filled yet.
const SERVED_BY_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// Reconciles one ModelImport through the driver both kinds share.
pub async fn reconcile(obj: Arc<ModelImport>, ctx: Arc<ImportContext>) -> Result<Action, Error> {
    let mut io = observe::Io::new(&ctx, &obj);
    pass::reconcile(&mut io, &ctx.pass.metrics).await
}

#[async_trait]
impl KindPass for observe::Io<'_> {
    const KIND: &'static str = "ModelImport";
    type Resource = ModelImport;
    type Observation = Observation;
    type Need = Need;
    type Status = Update;
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

    /// A paused import has its workspace's poller let its job go (no listing is made on its
    /// behalf; the poll after the unpause follows it again). A deletion needs to know whether a
    /// ModelDeployment still serves the model.
    async fn before_deciding(&mut self, obs: &mut Observation) -> Option<Action> {
        let r = obs.resource();
        if r.control.paused {
            if let Some(job_id) = &r.status.job_id {
                self.ctx.job_cache.forget(job_id);
            }
        }
        if !r.deleting {
            return None;
        }
        match self.served_by().await {
            Some(served_by) => {
                obs.served_by = served_by;
                None
            }
            // The ModelDeployments are not listed yet: nothing is deleted on a guess.
            None => Some(Action::requeue(SERVED_BY_RETRY)),
        }
    }

    fn decide(obs: &Observation) -> Step {
        step::decide(obs)
    }

    fn turn(&self, step: &Step) -> Option<std::time::Duration> {
        match (&step.act, &self.object.api_key) {
            (Act::Create(_), Some(api_key)) => {
                self.ctx.turn(&self.object.key, api_key, Operation::Create)
            }
            _ => None,
        }
    }

    async fn record(&mut self, obs: &mut Observation, update: &Update) -> Result<(), Error> {
        observe::Io::record(self, obs, update).await
    }

    async fn act(&mut self, step: &Step) -> Result<Option<Answer>, Error> {
        self.act_on(&step.act).await
    }

    fn answered(obs: &mut Observation, answer: Answer) {
        obs.answer = Some(answer);
    }

    fn object(&self) -> &Object<'_, ModelImport> {
        &self.object
    }

    /// The generated model's name, when `spec.outputs.configMapName` asks for it.
    fn outputs(&self) -> Option<Wanted> {
        let obj = &self.object.current;
        Some(Wanted {
            config_map: obj.spec.outputs.as_ref()?.config_map_name.clone()?,
            model: obj.status.as_ref().and_then(|s| s.model_name.clone()),
            secret: obj.spec.api_key_secret_ref.as_ref().map(SecretKeyRef::core),
        })
    }

    fn progress(&mut self) -> &mut Progress {
        &mut self.object.progress
    }

    fn requeue(&self, requeue: Requeue) -> Action {
        // A job the workspace's poller follows wakes its resource when it changes: the resource
        // needs no poll of its own, only the resync's look as a safety net.
        let requeue = match requeue {
            Requeue::Poll if self.followed.load(Ordering::Relaxed) => Requeue::Resync,
            other => other,
        };
        self.object.requeue(requeue)
    }
}

impl observe::Io<'_> {
    /// Carries out the step's finalizer change or remote call; a remote answer goes back to the
    /// core.
    async fn act_on(&mut self, act: &Act) -> Result<Option<Answer>, Error> {
        match act {
            Act::Nothing => Ok(None),
            Act::AddFinalizer => {
                add_finalizer_to(
                    &self.object.api,
                    &self.object.name(),
                    self.object.current.metadata.finalizers.as_ref(),
                )
                .await
                .map_err(Error::AddFinalizer)?;
                Ok(None)
            }
            Act::RemoveFinalizer => self.release().await.map(|()| None),
            Act::Create(job) => Ok(Some(self.create(job).await)),
            Act::Delete { job_id } => Ok(Some(self.delete(job_id).await)),
            Act::ReadAfterDenial { job_id, message } => {
                Ok(Some(self.read_after_denial(job_id, message).await))
            }
        }
    }
}

/// After a Kubernetes-side failure of [`reconcile`], requeue with the same backoff as remote
/// failures.
pub fn error_policy(obj: Arc<ModelImport>, error: &Error, ctx: Arc<ImportContext>) -> Action {
    warn!(name = ?obj.metadata.name, namespace = ?obj.metadata.namespace, error = %error, "reconcile failed");
    ctx.pass
        .requeue(&pass::key(&*obj), Requeue::Backoff { min: None })
}
