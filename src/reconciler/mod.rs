//! The reconciler: observe once, decide once (in the core), act, record. Every decision is the
//! core's ([`modelstudio_core::import::step`]); the files of this module only read the inputs the
//! core names, carry out the step it returns and report the answer back to it.

mod context;
mod create;
mod credentials;
mod delete;
mod events;
pub(crate) mod finalizer;
mod observe;
mod poll;
mod recover;
mod release;
mod requeue;
pub(crate) mod status_write;

pub use context::{layered, layered_both, Context};
pub use credentials::fingerprint;
pub(crate) use events::publish_to;

pub use crate::pass::Error;

use crate::crd::ModelImport;
use crate::pass::{self, KindPass, Progress, StepShape};
use crate::watches::Watched;
use async_trait::async_trait;
use kube::api::DynamicObject;
use kube::runtime::controller::Action;
use kube::Resource;
use modelstudio_core::api::Operation;
use modelstudio_core::events::Event;
use modelstudio_core::import::step::{self, Act, Answer, Need, Observation, Step};
use modelstudio_core::requeue::Requeue;
use std::sync::Arc;
use tracing::warn;

/// How long a deletion waits while the ModelDeployments' cache is not filled yet.
const SERVED_BY_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// Reconciles one ModelImport through the driver both kinds share.
pub async fn reconcile(obj: Arc<ModelImport>, ctx: Arc<Context>) -> Result<Action, Error> {
    let mut io = observe::Io::new(&ctx, &obj);
    pass::reconcile(&mut io, &ctx.metrics).await
}

#[async_trait]
impl KindPass for observe::Io<'_> {
    const KIND: &'static str = "ModelImport";
    type Observation = Observation;
    type Need = Need;
    type Step = Step;
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

    /// A deletion needs to know whether a ModelDeployment still serves the model.
    async fn before_deciding(&mut self, obs: &mut Observation) -> Option<Action> {
        if !obs.resource().deleting {
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

    fn shape(step: &Step) -> StepShape {
        let acts = step.act != Act::Nothing;
        StepShape::new(step.plan, step.protect_secret, acts, step.requeue)
    }

    fn turn(&self, step: &Step) -> Option<std::time::Duration> {
        match (&step.act, &self.api_key) {
            (Act::Create(_), Some(api_key)) => self.ctx.turn(&self.key, api_key, Operation::Create),
            _ => None,
        }
    }

    async fn protect_secret(&self) -> Result<(), Error> {
        observe::Io::protect_secret(self).await
    }

    async fn record(&mut self, obs: &mut Observation, step: &Step) -> Result<(), Error> {
        observe::Io::record(self, obs, step.update.as_ref()).await
    }

    async fn act(&mut self, step: &Step) -> Result<Option<Answer>, Error> {
        self.act_on(&step.act).await
    }

    fn publish(&self, step: &Step) {
        observe::Io::publish(self, &step.events)
    }

    fn answered(obs: &mut Observation, answer: Answer) {
        obs.answer = Some(answer);
    }

    fn progress(&mut self) -> &mut Progress {
        &mut self.progress
    }

    fn requeue(&self, requeue: Requeue) -> Action {
        observe::Io::requeue(self, requeue)
    }

    fn name(&self) -> String {
        observe::Io::name(self)
    }
}

impl observe::Io<'_> {
    /// Carries out the step's finalizer change or remote call; a remote answer goes back to the
    /// core.
    async fn act_on(&mut self, act: &Act) -> Result<Option<Answer>, Error> {
        match act {
            Act::Nothing => Ok(None),
            Act::AddFinalizer => self.add_finalizer().await.map(|()| None),
            Act::RemoveFinalizer => self.release().await.map(|()| None),
            Act::Create(job) => Ok(Some(self.create(job).await)),
            Act::Delete { job_id } => Ok(Some(self.delete(job_id).await)),
            Act::ReadAfterDenial { job_id, message } => {
                Ok(Some(self.read_after_denial(job_id, message).await))
            }
        }
    }
}

/// Reports an object that does not read as a `K` (stored under an older or hand-loosened
/// schema): a Warning event naming the bad value, a log line and a metric, once per version. The
/// watch leaves it out of the cache, so it never fails the others nor loops.
pub async fn report_unreadable<K: Watched>(
    mut unreadable: tokio::sync::mpsc::UnboundedReceiver<DynamicObject>,
    ctx: Arc<Context>,
) {
    let resource = kube::api::ApiResource::erase::<K>(&());
    let kind = K::kind(&()).to_string();
    let mut reported = std::collections::HashSet::new();
    while let Some(obj) = unreadable.recv().await {
        let version = (
            obj.metadata.uid.clone(),
            obj.metadata.resource_version.clone(),
        );
        if !reported.insert(version) {
            continue;
        }
        let Err(e) = obj.clone().try_parse::<K>() else {
            continue;
        };
        let error = e.to_string();
        warn!(name = ?obj.metadata.name, namespace = ?obj.metadata.namespace, %error, "skipping a {kind} that cannot be read");
        ctx.metrics.unreadable_objects.inc();
        events::publish_to(
            &ctx,
            &obj.object_ref(&resource),
            &[Event::unreadable(&kind, &error)],
        );
    }
}

/// After a Kubernetes-side failure of [`reconcile`], requeue with the same backoff as remote
/// failures.
pub fn error_policy(obj: Arc<ModelImport>, error: &Error, ctx: Arc<Context>) -> Action {
    warn!(name = ?obj.metadata.name, namespace = ?obj.metadata.namespace, error = %error, "reconcile failed");
    ctx.requeue(&crate::domain::key(&obj), Requeue::Backoff { min: None })
}
