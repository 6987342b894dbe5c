//! The one reconcile driver both kinds run: observe what the core names, decide, protect the
//! credentials Secret, record, act, publish, with the bounded chaining of answers and the
//! reconcile metrics in one place. A kind brings its core decisions and its IO as a [`KindPass`];
//! a third kind implements the trait and adds nothing here. Beside it, the kit both kinds' IO
//! is made of: the shared [`Context`], one object's side of a pass ([`Object`]), the credentials,
//! the finalizer, the status apply, the events, the requeue and the outputs ConfigMap.

mod conditions;
mod context;
mod credentials;
mod events;
mod finalizer;
mod object;
mod outputs;
mod requeue;
mod status_apply;

pub use conditions::{core_conditions, crd_condition, crd_conditions};
pub use context::Context;
pub use credentials::fingerprint;
pub use events::report_unreadable;
pub(crate) use finalizer::add_finalizer_to;
pub use object::{Object, ObjectKind};
pub use outputs::Wanted;

use crate::metrics::{KindLabels, Metrics, ReconcileLabels};
use async_trait::async_trait;
use kube::runtime::controller::Action;
use modelstudio_core::requeue::Requeue;
use modelstudio_core::step::Step;
use std::time::{Duration, Instant};
use tracing::warn;

/// What a person asks of a resource (either kind's) through its annotations.
pub fn control(obj: &impl kube::ResourceExt) -> modelstudio_core::control::Control {
    use modelstudio_core::control::{PAUSED_ANNOTATION, RECONCILE_REQUESTED_ANNOTATION};
    let annotations = obj.annotations();
    modelstudio_core::control::Control {
        paused: annotations.get(PAUSED_ANNOTATION).map(String::as_str) == Some("true"),
        reconcile_requested_at: annotations.get(RECONCILE_REQUESTED_ANNOTATION).cloned(),
    }
}

/// A resource's identity for the bookkeeping between passes (either kind's): its UID, or
/// namespace/name before the API server gave it one.
pub fn key(obj: &impl kube::ResourceExt) -> String {
    obj.uid()
        .unwrap_or_else(|| format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any()))
}

/// An answer may call for one more call (a delete refused: read the job; a recovered deployment
/// to delete); no step chains further than this.
const MAX_ACTS: usize = 3;

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
    #[error("the namespaces granted the default API key are not listed yet (the watch of Namespaces has not answered)")]
    NamespacesNotListed,
    #[error("could not read the outputs ConfigMap: {0}")]
    ReadOutputs(#[source] kube::Error),
    #[error("could not write the outputs ConfigMap: {0}")]
    WriteOutputs(#[source] kube::Error),
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
            Error::NamespacesNotListed => "NamespacesNotListed",
            Error::ReadOutputs(_) => "ReadOutputs",
            Error::WriteOutputs(_) => "WriteOutputs",
        }
    }
}

/// Where a pass is: the plan carried out (for metric labels) and whether the status writes of
/// the current step need no reconcile of their own (the pass goes on or schedules its next look).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub plan: &'static str,
    pub quiet_writes: bool,
}

impl Default for Progress {
    fn default() -> Self {
        Progress {
            plan: "observe",
            quiet_writes: false,
        }
    }
}

/// One kind's part of a reconcile: its core decisions (`next_need`, `decide`) and the IO of one
/// pass over one object, whose shared side ([`Object`]) the driver reads and acts on itself.
#[async_trait]
pub trait KindPass: Send {
    /// The kind's name, for metric labels and logs.
    const KIND: &'static str;
    /// The custom resource.
    type Resource: ObjectKind;
    type Observation: Send;
    type Need: Send;
    /// The status a step writes (see [`Step`]).
    type Status: Send + Sync;
    /// The finalizer change or remote call a step makes; its default is nothing.
    type Act: Default + PartialEq + Send + Sync;
    type Answer: Send;

    /// The observation of the cached object, before any input is read.
    fn observation(&mut self) -> Self::Observation;
    /// The next input the core needs, if any.
    fn next_need(obs: &Self::Observation) -> Option<Self::Need>;
    /// Reads one input into the observation.
    async fn observe(&mut self, obs: &mut Self::Observation, need: Self::Need)
        -> Result<(), Error>;
    /// What the kind reads beyond the core's needs before deciding; `Some` ends the pass there.
    async fn before_deciding(&mut self, _obs: &mut Self::Observation) -> Option<Action> {
        None
    }
    /// The core's decision.
    fn decide(obs: &Self::Observation) -> KindStep<Self>;
    /// When a create must wait for its turn in the quota, off the reconcile slots.
    fn turn(&self, _step: &KindStep<Self>) -> Option<Duration> {
        None
    }
    /// Writes the status (or the change to it) the step built.
    async fn record(
        &mut self,
        obs: &mut Self::Observation,
        status: &Self::Status,
    ) -> Result<(), Error>;
    /// Carries out the step's finalizer change or remote call; a remote answer goes back to
    /// the core.
    async fn act(&mut self, step: &KindStep<Self>) -> Result<Option<Self::Answer>, Error>;
    /// Hands an answer to the observation, for the next decision.
    fn answered(obs: &mut Self::Observation, answer: Self::Answer);
    /// The object's side of the pass.
    fn object(&self) -> &Object<'_, Self::Resource>;

    /// Where the pass is (the object's).
    fn progress(&mut self) -> &mut Progress;
    /// The outputs ConfigMap to write at the end of the pass, if the resource has one.
    fn outputs(&self) -> Option<Wanted> {
        None
    }
    /// The action for a requeue decision.
    fn requeue(&self, requeue: Requeue) -> Action {
        self.object().requeue(requeue)
    }
}

/// A kind's step: the core's [`Step`] over its status and calls.
pub type KindStep<K> = Step<<K as KindPass>::Status, <K as KindPass>::Act>;

/// Runs one pass of `io` and counts it: the reconciles by kind, plan and result, and their time.
pub async fn reconcile<K: KindPass>(io: &mut K, metrics: &Metrics) -> Result<Action, Error> {
    let started = Instant::now();
    let result = one_pass(io).await;
    let labels = ReconcileLabels {
        kind: K::KIND,
        step: io.object().progress.plan,
        result: match &result {
            Ok(_) => "ok",
            Err(e) => e.kind(),
        },
    };
    metrics.reconciliations.get_or_create(&labels).inc();
    metrics
        .reconcile_duration
        .get_or_create(&KindLabels { kind: K::KIND })
        .observe(started.elapsed().as_secs_f64());
    result
}

async fn one_pass<K: KindPass>(io: &mut K) -> Result<Action, Error> {
    // Observe: every input the core names, each once.
    let mut obs = io.observation();
    while let Some(need) = K::next_need(&obs) {
        io.observe(&mut obs, need).await?;
    }
    if let Some(action) = io.before_deciding(&mut obs).await {
        return Ok(action);
    }
    // Decide.
    let mut step = K::decide(&obs);
    io.progress().plan = step.plan;
    // Act: the credentials Secret is protected before a remote object that needs its key can
    // exist.
    if step.protect_secret {
        io.object().protect_secret().await?;
    }
    // A create the quota cannot send within a moment waits for its turn off the reconcile slots,
    // before its intent is recorded.
    if let Some(turn) = io.turn(&step) {
        return Ok(Action::requeue(turn));
    }
    for _ in 0..MAX_ACTS {
        // Record (a create's intent before the create), act, publish. A write that leaves
        // nothing scheduled wakes the next reconcile through its watch event.
        *io.progress() = Progress {
            plan: step.plan,
            quiet_writes: step.acts() || step.requeue != Requeue::Never,
        };
        if let Some(status) = &step.status {
            io.record(&mut obs, status).await?;
        }
        let answer = io.act(&step).await?;
        io.object().publish(&step.events);
        let Some(answer) = answer else {
            // Export: the apps' ConfigMap follows what the pass recorded (never while the
            // resource is being deleted: the ConfigMap goes with it).
            let deleting = kube::Resource::meta(&io.object().current)
                .deletion_timestamp
                .is_some();
            if let Some(wanted) = io.outputs().filter(|_| !deleting) {
                io.object().export(wanted).await?;
            }
            return Ok(io.requeue(step.requeue));
        };
        // The answer is decided on by the core too.
        K::answered(&mut obs, answer);
        step = K::decide(&obs);
    }
    warn!(kind = K::KIND, name = %io.object().name(), "a step chained more calls than any should; looking again later");
    Ok(io.requeue(Requeue::Backoff { min: None }))
}
