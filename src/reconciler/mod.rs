//! The reconciler: observe once, decide once (in the core), act, record. Every decision is the
//! core's ([`modelstudio_core::step`]); the files of this module only read the inputs the core
//! names, carry out the step it returns and report the answer back to it.

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

use crate::crd::ModelImport;
use crate::metrics::ReconcileLabels;
use crate::watches::Watched;
use kube::api::DynamicObject;
use kube::runtime::controller::Action;
use kube::Resource;
use modelstudio_core::decision::Requeue;
use modelstudio_core::reason;
use modelstudio_core::remote::Operation;
use modelstudio_core::step::{self, Act, Answer, Observation, Step};
use std::sync::Arc;
use std::time::Instant;
use tracing::warn;

/// A create's or a delete's answer may call for one more call (a delete refused: read the job);
/// no step chains further than this.
const MAX_ACTS: usize = 3;

/// How long a deletion waits while the ModelDeployments' cache is not filled yet.
const SERVED_BY_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// Errors of the Kubernetes side of a reconcile (of either kind), one variant per operation.
/// Remote API errors are not here: they become conditions, not reconcile failures.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("could not add the finalizer: {0}")]
    AddFinalizer(#[source] kube::Error),
    #[error("could not remove the finalizer: {0}")]
    RemoveFinalizer(#[source] kube::Error),
    #[error("could not write the status: {0}")]
    WriteStatus(#[source] kube::Error),
    #[error("could not read the API key Secret: {0}")]
    ReadSecret(#[source] kube::Error),
    #[error("could not read the resource from the API server: {0}")]
    ReadResource(#[source] kube::Error),
    #[error("could not put the controller's finalizer on the API key Secret: {0}")]
    ProtectSecret(#[source] kube::Error),
    #[error("could not read the ModelImport it names: {0}")]
    ReadImport(#[source] kube::Error),
}

impl Error {
    /// A static name of the variant, for metric labels.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::AddFinalizer(_) => "AddFinalizer",
            Error::RemoveFinalizer(_) => "RemoveFinalizer",
            Error::WriteStatus(_) => "WriteStatus",
            Error::ReadSecret(_) => "ReadSecret",
            Error::ReadResource(_) => "ReadResource",
            Error::ProtectSecret(_) => "ProtectSecret",
            Error::ReadImport(_) => "ReadImport",
        }
    }
}

/// Reconciles one ModelImport.
pub async fn reconcile(obj: Arc<ModelImport>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let mut io = observe::Io::new(&ctx, &obj);
    let result = one_pass(&mut io).await;
    let labels = ReconcileLabels {
        step: io.plan,
        result: match &result {
            Ok(_) => "ok",
            Err(e) => e.kind(),
        },
    };
    ctx.metrics.reconciliations.get_or_create(&labels).inc();
    ctx.metrics
        .reconcile_duration
        .observe(started.elapsed().as_secs_f64());
    result
}

async fn one_pass(io: &mut observe::Io<'_>) -> Result<Action, Error> {
    // Observe: every input the core names, each once.
    let mut obs: Observation = io.observation();
    while let Some(need) = step::next_need(&obs) {
        io.observe(&mut obs, need).await?;
    }
    if obs.resource().deleting {
        match io.served_by().await {
            Some(served_by) => obs.served_by = served_by,
            // The ModelDeployments are not listed yet: nothing is deleted on a guess.
            None => return Ok(Action::requeue(SERVED_BY_RETRY)),
        }
    }
    // Decide.
    let mut step: Step = step::decide(&obs);
    io.plan = step.plan;
    // Act: the credentials Secret is protected before a job that needs its key can exist.
    if step.protect_secret {
        io.protect_secret().await?;
    }
    // A create the quota cannot send within a moment waits for its turn off the reconcile slots,
    // before its intent is recorded.
    if let (Act::Create(_), Some(api_key)) = (&step.act, &io.api_key) {
        if let Some(turn) = io.ctx.turn(&io.key, api_key, Operation::Create) {
            return Ok(Action::requeue(turn));
        }
    }
    for _ in 0..MAX_ACTS {
        // Record (a create's intent before the create), act, publish. A write that leaves
        // nothing scheduled wakes the next reconcile through its watch event.
        io.quiet_writes = !(step.act == Act::Nothing && step.requeue == Requeue::Never);
        io.record(&mut obs, step.update.as_ref()).await?;
        let answer: Option<Answer> = io.act(&step.act).await?;
        io.publish(&step.events);
        let Some(answer) = answer else {
            return Ok(io.requeue(step.requeue));
        };
        // The answer is decided on by the core too.
        obs.answer = Some(answer);
        step = step::decide(&obs);
    }
    warn!(name = %io.name(), act = ?step.act, "a step chained more calls than any should; looking again later");
    Ok(io.requeue(Requeue::Backoff { min: None }))
}

impl observe::Io<'_> {
    /// Carries out the step's finalizer change or remote call; a remote answer goes back to the
    /// core.
    async fn act(&mut self, act: &Act) -> Result<Option<Answer>, Error> {
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
            &[reason::Event::unreadable(&kind, &error)],
        );
    }
}

/// After a Kubernetes-side failure of [`reconcile`], requeue with the same backoff as remote
/// failures.
pub fn error_policy(obj: Arc<ModelImport>, error: &Error, ctx: Arc<Context>) -> Action {
    warn!(name = ?obj.metadata.name, namespace = ?obj.metadata.namespace, error = %error, "reconcile failed");
    ctx.requeue(&crate::domain::key(&obj), Requeue::Backoff { min: None })
}
