//! One reconcile as a pure machine. [`next_need`] names the next input to observe (a fresh copy
//! of the resource, the credentials, the job or the listing), each once; [`decide`] turns the
//! complete [`Observation`] into the whole [`Step`]: the status to record, the events, the
//! finalizer change or remote mutation to make, and when to look again. A create's or a
//! delete's answer is put into the observation and decided on in turn, so the IO side never
//! interprets an answer itself.

use super::decision::{
    self, observe_job, on_api_error, on_credentials, on_delete, on_delete_denied, on_listing,
    on_read_failure, Call, DeletionOutcome, Listing, PassPlan, RecoveryStep, ReleaseReason,
    Snapshot,
};
use super::jobs::{Job, NewJob};
use super::reason::Reason;
use super::recovery::Expected;
use super::resource::{Phase, Resource, Spec};
use super::status::{stalled_generation, Update};
use crate::api::ApiError;
use crate::correlation;
use crate::credentials::{secret_choice, CredentialProblem, KeySource, SecretChoice};
use crate::deletion::DeletionPolicy;
use crate::events::{Action, Event, EventType, Happening};
use crate::management::ManagementPolicy;
use crate::requeue::{Requeue, Timing};
use jiff::Timestamp;
use std::time::Duration;

/// When the cache lagged behind the API server, look again after this long.
pub const STALE_RETRY: Duration = Duration::from_millis(500);

/// A read of Model Studio, made while observing.
#[derive(Debug)]
pub enum Seen {
    Job(Result<Job, ApiError>),
    Listing(Result<Listing, ApiError>),
    /// This poll cycle's listing was incomplete and did not show the job: no news of it; it is
    /// looked at again next cycle.
    NoNews,
}

/// The answer to a mutation the step asked for.
#[derive(Debug)]
pub enum Answer {
    Created(Result<Job, ApiError>),
    Deleted(Result<Job, ApiError>),
    /// The job as read after a DELETE was refused (`None`: the read failed too).
    ReadAfterDenial {
        message: String,
        job: Option<Job>,
    },
}

/// Everything a decision reads.
#[derive(Debug)]
pub struct Observation {
    pub now: Timestamp,
    pub timing: Timing,
    /// The resource as the cache holds it.
    pub cached: Resource,
    /// A copy read from the API server, when the step wants one.
    pub fresh: Option<Resource>,
    /// How long ago this resource's job was last read (or created).
    pub last_read: Option<Duration>,
    pub credentials: Option<Result<KeySource, CredentialProblem>>,
    pub seen: Option<Seen>,
    pub answer: Option<Answer>,
    /// The fingerprint of the key chosen, once the credentials were read.
    pub key_fingerprint: Option<String>,
    /// Whether the Secret the key came from carries the controller's finalizer (`None`: the key
    /// did not come from a Secret).
    pub secret_protected: Option<bool>,
    /// A ModelDeployment of the namespace that serves this import's model: the job is not
    /// deleted while it lives.
    pub served_by: Option<String>,
}

impl Observation {
    pub fn new(
        now: Timestamp,
        timing: Timing,
        cached: Resource,
        last_read: Option<Duration>,
    ) -> Self {
        Observation {
            now,
            timing,
            cached,
            fresh: None,
            last_read,
            credentials: None,
            seen: None,
            answer: None,
            key_fingerprint: None,
            secret_protected: None,
            served_by: None,
        }
    }

    /// The step the cached copy calls for.
    pub fn plan(&self) -> PassPlan {
        decision::plan(&snapshot(&self.cached))
    }

    /// The copy to act on: the fresh one when it was read.
    pub fn resource(&self) -> &Resource {
        self.fresh.as_ref().unwrap_or(&self.cached)
    }

    /// A fresh copy that calls for another step than the cached one: the cache lagged.
    fn stale(&self) -> bool {
        self.fresh
            .as_ref()
            .is_some_and(|f| decision::plan(&snapshot(f)) != self.plan())
    }

    /// The `modelstudio.io/reconcile-requested-at` value not handled yet, if a person asked.
    pub fn reconcile_asked(&self) -> Option<&str> {
        let r = self.resource();
        r.control
            .reconcile_asked(r.status.last_handled_reconcile_at.as_deref())
    }

    /// How long to wait when the job was read less than half a poll interval ago: our own status
    /// write triggers a reconcile, which must not cost Model Studio another read. Never when a
    /// person asked for a reconcile.
    fn too_soon(&self) -> Option<Duration> {
        if self.reconcile_asked().is_some() {
            return None;
        }
        let elapsed = self.last_read?;
        let poll = self.timing.poll_interval;
        (elapsed < poll / 2).then(|| poll - elapsed)
    }
}

/// What the decision reads of a resource.
pub fn snapshot(r: &Resource) -> Snapshot {
    Snapshot {
        generation: r.generation,
        deleting: r.deleting,
        has_finalizer: r.has_finalizer,
        deletion_policy: r.spec.deletion_policy,
        spec_job_id: r.spec.job_id.clone(),
        status_job_id: r.status.job_id.clone(),
        stalled_generation: stalled_generation(&r.status),
        create_attempted: r.status.create_attempted_at.is_some() && r.status.job_id.is_none(),
        paused: r.control.paused,
        observe: r.spec.management == ManagementPolicy::Observe,
    }
}

/// An input to observe before deciding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Need {
    /// Read the resource from the API server (not the cache).
    FreshCopy,
    /// Read the Secret of spec.apiKeySecretRef and choose the key with
    /// [`choose_key`](crate::credentials::choose_key).
    Credentials,
    /// GET this job (from its workspace's listing while the poller follows it).
    Job(String),
    /// GET this job now, past the workspace's listing: a person asked for a reconcile.
    JobNow(String),
    /// List every job of the workspace.
    Listing,
}

/// The next input to observe, or `None` when the observation is complete.
pub fn next_need(obs: &Observation) -> Option<Need> {
    let plan = obs.plan();
    if plan.wants_fresh_copy() && obs.fresh.is_none() {
        return Some(Need::FreshCopy);
    }
    if obs.stale() || !plan.calls_remote() {
        return None;
    }
    if matches!(plan, PassPlan::Poll { .. }) && obs.too_soon().is_some() {
        return None;
    }
    match &obs.credentials {
        None => return Some(Need::Credentials),
        Some(Err(_)) => return None,
        Some(Ok(_)) => {}
    }
    if obs.seen.is_some() {
        return None;
    }
    match plan {
        PassPlan::Poll { job_id } if obs.reconcile_asked().is_some() => Some(Need::JobNow(job_id)),
        PassPlan::Poll { job_id } | PassPlan::Adopt { job_id } => Some(Need::Job(job_id)),
        PassPlan::Recover => Some(Need::Listing),
        _ => None,
    }
}

/// A change to the finalizer, or a remote mutation whose answer is decided on next.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Act {
    #[default]
    Nothing,
    AddFinalizer,
    RemoveFinalizer,
    /// Send this create (after recording the step's status: the intent).
    Create(NewJob),
    Delete {
        job_id: String,
    },
    /// GET the job whose DELETE was refused with `message`.
    ReadAfterDenial {
        job_id: String,
        message: String,
    },
}

/// The whole step (see [`crate::step::Step`]); its status is the change to the ModelImport's.
pub type Step = crate::step::Step<Update, Act>;

impl Step {
    fn new(plan: &PassPlan) -> Step {
        Step::idle(plan.name())
    }

    fn requeue(mut self, requeue: Requeue) -> Step {
        self.requeue = requeue;
        self
    }

    fn act(mut self, act: Act) -> Step {
        self.act = act;
        self
    }

    fn update(mut self, update: Update) -> Step {
        self.status = Some(update);
        self
    }

    fn reason(self, reason: Reason, phase: Option<Phase>) -> Step {
        self.update(Update {
            reason: Some(reason),
            phase,
            ..Default::default()
        })
    }

    fn event(mut self, event: Event) -> Step {
        self.events.push(event);
        self
    }
}

/// What a create for this resource sends, and how its job is recognised afterwards.
pub fn expected(r: &Resource) -> Expected {
    let display_name = r.status.display_name.clone().unwrap_or_else(|| {
        let name = r
            .spec
            .display_name
            .clone()
            .unwrap_or_else(|| r.name.clone());
        correlation::display_name(&name, &r.uid)
    });
    Expected {
        display_name,
        base_model: r.spec.base_model.clone(),
        storage: r.spec.storage.clone(),
    }
}

/// The create request for this resource.
pub fn new_job(r: &Resource) -> NewJob {
    let expected = expected(r);
    NewJob {
        base_model: r.spec.base_model.clone(),
        display_name: Some(expected.display_name),
        source: r.spec.source,
        weight_type: r.spec.weight_type,
        storage: expected.storage,
    }
}

fn age(stamp: Option<&str>, now: Timestamp) -> Option<Duration> {
    let t = stamp?.parse::<Timestamp>().ok()?;
    Some(now.duration_since(t).unsigned_abs())
}

/// Decides the whole step from a complete observation.
pub fn decide(obs: &Observation) -> Step {
    let mut step = decide_step(obs);
    // A job seen with this key lives in this key's workspace; so will the job of a create.
    if let Some(update) = step
        .status
        .as_mut()
        .filter(|u| u.job.is_some() || u.intent.is_some())
    {
        update.fingerprint = obs.key_fingerprint.clone();
    }
    // A reconcile a person asked for is handled by this pass, unless it only looks again in a
    // moment (the cache lagged, or the key is not read yet).
    if let Some(asked) = obs.reconcile_asked() {
        if step.requeue != Requeue::After(STALE_RETRY) && !obs.resource().control.paused {
            step.status
                .get_or_insert_with(Update::default)
                .handled_reconcile = Some(asked.to_string());
        }
    }
    let r = obs.resource();
    // An observed job's conditions say so, whatever the step wrote.
    if r.spec.management == ManagementPolicy::Observe {
        if let Some(update) = step.status.as_mut() {
            update.observed = true;
        }
    }
    step.protect_secret = obs.answer.is_none()
        && obs.secret_protected == Some(false)
        && matches!(obs.credentials, Some(Ok(KeySource::Secret)))
        && !r.deleting
        && r.spec.deletion_policy == DeletionPolicy::Delete
        && r.spec.management == ManagementPolicy::Manage
        && obs.plan().calls_remote();
    step
}

/// A NotFound under a key of another workspace than the job's is no proof that the job is gone.
fn workspace_changed(obs: &Observation, job_id: &str, err: &ApiError) -> Option<Reason> {
    let recorded = obs.resource().status.key_fingerprint.as_ref()?;
    let current = obs.key_fingerprint.as_ref()?;
    (matches!(err, ApiError::NotFound(_)) && recorded != current).then(|| {
        Reason::WorkspaceChanged {
            job_id: job_id.to_string(),
            recorded: recorded.clone(),
            current: current.clone(),
        }
    })
}

fn decide_step(obs: &Observation) -> Step {
    let plan = obs.plan();
    let step = Step::new(&plan);
    // An answer is decided on first: the status recorded before the call may have moved the
    // plan on (a create's intent), and the answer is what counts now.
    if let Some(answer) = &obs.answer {
        return on_answer(obs, &plan, step, answer);
    }
    if plan.wants_fresh_copy() && (obs.fresh.is_none() || obs.stale()) {
        // Never act on a copy older than our own last write.
        return step.requeue(Requeue::After(STALE_RETRY));
    }
    let r = obs.resource();
    if plan.calls_remote() {
        if let (PassPlan::Poll { .. }, Some(wait)) = (&plan, obs.too_soon()) {
            // Our own status write woke this reconcile: a job in progress is read at its poll,
            // a finished one only at the resync.
            let finished = matches!(r.status.phase, Some(Phase::Succeeded | Phase::Failed));
            return step.requeue(if finished {
                Requeue::Resync
            } else {
                Requeue::After(wait)
            });
        }
        match &obs.credentials {
            Some(Ok(_)) => {}
            Some(Err(problem)) => {
                let outcome = on_credentials(problem, r.deleting);
                let phase = matches!(plan, PassPlan::Delete { .. }).then_some(Phase::Deleting);
                return step.reason(outcome.reason, phase).requeue(outcome.requeue);
            }
            // Nothing remote may happen without a key.
            None => return step.requeue(Requeue::After(STALE_RETRY)),
        }
    }
    match &plan {
        PassPlan::AddFinalizer => step.act(Act::AddFinalizer),
        PassPlan::WaitForSpecChange | PassPlan::Nothing => step,
        PassPlan::JobIdConflict { spec, status } => step.reason(
            Reason::JobIdConflict {
                spec: spec.clone(),
                status: status.clone(),
            },
            None,
        ),
        PassPlan::Create => create(step, r),
        PassPlan::Recover => match &obs.seen {
            Some(Seen::Listing(listing)) => recover(obs, step, listing),
            _ => step.requeue(Requeue::After(STALE_RETRY)),
        },
        PassPlan::Poll { job_id } | PassPlan::Adopt { job_id } => {
            let op = match plan {
                PassPlan::Adopt { .. } => Call::Adopt,
                _ => Call::Poll,
            };
            match &obs.seen {
                Some(Seen::Job(Ok(job))) => mirror(step, r, job, op == Call::Adopt),
                Some(Seen::NoNews) => step.requeue(Requeue::Poll),
                Some(Seen::Job(Err(e))) => {
                    if let Some(reason) = workspace_changed(obs, job_id, e) {
                        return step
                            .reason(reason, None)
                            .requeue(Requeue::Backoff { min: None });
                    }
                    let created_recently = age(r.status.created_at.as_deref(), obs.now)
                        .is_some_and(|a| a < obs.timing.create_grace);
                    let finished = matches!(r.status.phase, Some(Phase::Succeeded | Phase::Failed));
                    match on_read_failure(op, job_id, e, created_recently, finished) {
                        (Some(reason), requeue) => step.reason(reason, None).requeue(requeue),
                        (None, requeue) => step.requeue(requeue),
                    }
                }
                _ => step.requeue(Requeue::After(STALE_RETRY)),
            }
        }
        // A GitOps prune of both never pulls the model from under a serving deployment.
        PassPlan::Delete { .. } if obs.served_by.is_some() => step
            .reason(
                Reason::ServedByDeployment {
                    deployment: obs.served_by.clone().unwrap_or_default(),
                },
                Some(Phase::Deleting),
            )
            .requeue(Requeue::Poll),
        PassPlan::Delete { job_id } => step.act(Act::Delete {
            job_id: job_id.clone(),
        }),
        PassPlan::Release { reason } => release(step, r, *reason),
        PassPlan::Paused => step.update(Update {
            paused: true,
            ..Default::default()
        }),
        PassPlan::ObservedWithoutJobId => step.reason(Reason::ObservedWithoutJobId, None),
    }
}

/// Records the intent (Reconciling=True) and sends the create: a restart looks for the job
/// before creating again.
fn create(step: Step, r: &Resource) -> Step {
    step.update(Update {
        reason: Some(Reason::Creating),
        intent: Some(expected(r).display_name),
        ..Default::default()
    })
    .act(Act::Create(new_job(r)))
}

fn release(step: Step, r: &Resource, reason: ReleaseReason) -> Step {
    let step = step.act(Act::RemoveFinalizer);
    let job = r.status.job_id.clone().or_else(|| r.spec.job_id.clone());
    match (reason, job) {
        (ReleaseReason::Orphan, Some(job)) => step.event(Event::normal(
            Happening::Orphaned,
            Action::DeleteImportJob,
            format!("Left import job {job} in Model Studio (deletionPolicy: Orphan)"),
        )),
        (ReleaseReason::Observed, Some(job)) => step.event(Event::normal(
            Happening::Orphaned,
            Action::DeleteImportJob,
            format!(
                "Left import job {job} in Model Studio: managementPolicy Observe never deletes it"
            ),
        )),
        (ReleaseReason::Paused, Some(job)) => step.event(Event::of(
            EventType::Warning,
            Happening::Orphaned,
            Action::DeleteImportJob,
            format!(
                "Left import job {job} in Model Studio undeleted: the resource is paused \
                 (modelstudio.io/paused), so its deletion makes no call"
            ),
        )),
        _ => step,
    }
}

/// Mirrors a job read from the API, with the events of what changed.
fn mirror(step: Step, r: &Resource, job: &Job, adopted: bool) -> Step {
    let view = observe_job(job);
    let before = r.status.phase;
    let mut step = step.requeue(view.requeue).update(Update {
        reason: Some(view.reason.clone()),
        job: Some(view.clone()),
        ..Default::default()
    });
    if adopted {
        step = step.event(Event::normal(
            Happening::Adopted,
            Action::AdoptImportJob,
            format!("Adopted existing import job {}", job.id),
        ));
    }
    if before != Some(view.phase) {
        let happened = match view.phase {
            Phase::Succeeded => Some((EventType::Normal, Happening::Succeeded)),
            Phase::Failed => Some((EventType::Warning, Happening::Failed)),
            _ => None,
        };
        if let Some((type_, happening)) = happened {
            step = step.event(Event::of(
                type_,
                happening,
                Action::PollImportJob,
                view.reason.message(),
            ));
        }
    }
    step
}

fn recover(obs: &Observation, step: Step, listing: &Result<Listing, ApiError>) -> Step {
    let r = obs.resource();
    let listing = match listing {
        Ok(listing) => listing,
        Err(e) => {
            let outcome = on_api_error(Call::Recover, e);
            return step.reason(outcome.reason, None).requeue(outcome.requeue);
        }
    };
    let expected = expected(r);
    let grace_passed = match age(r.status.create_attempted_at.as_deref(), obs.now) {
        Some(a) => a >= obs.timing.create_grace,
        None => true,
    };
    let found = on_listing(
        listing,
        &expected,
        r.spec.job_id.as_deref(),
        r.deleting,
        grace_passed,
        obs.timing.create_grace,
    );
    // "Not created" means nothing when the listing was made in another workspace than the create.
    let not_created = matches!(
        found,
        RecoveryStep::Create | RecoveryStep::Release | RecoveryStep::ForgetCreate
    );
    if let (true, Some(recorded), Some(current)) =
        (not_created, &r.status.key_fingerprint, &obs.key_fingerprint)
    {
        if recorded != current {
            let reason = Reason::WorkspaceChanged {
                job_id: format!("with display name {:?}", expected.display_name),
                recorded: recorded.clone(),
                current: current.clone(),
            };
            let phase = r.deleting.then_some(Phase::Deleting);
            return step
                .reason(reason, phase)
                .requeue(Requeue::Backoff { min: None });
        }
    }
    match found {
        RecoveryStep::Mirror { job, adopted } => {
            let step = if adopted {
                step
            } else {
                step.event(Event::normal(
                    Happening::Recovered,
                    Action::RecoverImportJob,
                    format!(
                        "Found import job {} made by an earlier create whose answer was not recorded; not creating another",
                        job.id
                    ),
                ))
            };
            mirror(step, r, &job, adopted)
        }
        RecoveryStep::Wait(outcome) => step.reason(outcome.reason, None).requeue(outcome.requeue),
        // spec.jobId is taken over (or deleted) next.
        RecoveryStep::ForgetCreate => step
            .update(Update {
                create_not_applied: true,
                ..Default::default()
            })
            .requeue(Requeue::After(STALE_RETRY)),
        RecoveryStep::Release => step.act(Act::RemoveFinalizer),
        RecoveryStep::Create => create(step, r),
        RecoveryStep::Ambiguous(outcome) => step
            .event(Event::warning(&outcome.reason, Action::RecoverImportJob))
            .reason(outcome.reason, None)
            .requeue(outcome.requeue),
    }
}

fn on_answer(obs: &Observation, plan: &PassPlan, step: Step, answer: &Answer) -> Step {
    let r = obs.resource();
    match answer {
        Answer::Created(Ok(job)) => {
            let view = observe_job(job);
            step.requeue(view.requeue)
                .update(Update {
                    reason: Some(view.reason.clone()),
                    job: Some(view),
                    ..Default::default()
                })
                .event(Event::normal(
                    Happening::Created,
                    Action::CreateImportJob,
                    format!(
                        "Created import job {} for model {}",
                        job.id, r.spec.base_model
                    ),
                ))
        }
        Answer::Created(Err(e)) => {
            let outcome = on_api_error(Call::Create, e);
            let step = if outcome.requeue == Requeue::Never {
                step.event(Event::warning(&outcome.reason, Action::CreateImportJob))
            } else {
                step
            };
            step.update(Update {
                reason: Some(outcome.reason),
                create_not_applied: e.create_certainly_not_applied(),
                ..Default::default()
            })
            .requeue(outcome.requeue)
        }
        Answer::Deleted(result) => {
            let job_id = match plan {
                PassPlan::Delete { job_id } => job_id.clone(),
                _ => r.status.job_id.clone().unwrap_or_default(),
            };
            if let Err(e) = result {
                if let Some(reason) = workspace_changed(obs, &job_id, e) {
                    return step
                        .reason(reason, Some(Phase::Deleting))
                        .requeue(Requeue::Backoff { min: None });
                }
            }
            match on_delete(result) {
                DeletionOutcome::Released { already_gone } => {
                    let note = if already_gone {
                        format!("Import job {job_id} was already gone from Model Studio")
                    } else {
                        format!("Deleted import job {job_id} and its imported model")
                    };
                    step.act(Act::RemoveFinalizer).event(Event::normal(
                        Happening::Deleted,
                        Action::DeleteImportJob,
                        note,
                    ))
                }
                // Read the job: its status shows while it finishes, and a finished job that is
                // still refused is reported as such rather than as "running".
                DeletionOutcome::Denied { message } => {
                    step.act(Act::ReadAfterDenial { job_id, message })
                }
                DeletionOutcome::Retry(outcome) => step
                    .reason(outcome.reason, Some(Phase::Deleting))
                    .requeue(outcome.requeue),
            }
        }
        Answer::ReadAfterDenial { message, job } => {
            let outcome = on_delete_denied(message, job.as_ref());
            step.event(Event::warning(&outcome.reason, Action::DeleteImportJob))
                .update(Update {
                    job: job.as_ref().map(observe_job),
                    reason: Some(outcome.reason),
                    phase: Some(Phase::Deleting),
                    ..Default::default()
                })
                .requeue(outcome.requeue)
        }
    }
}

/// Whether deleting this resource would call DELETE (and so needs a key) rather than let go.
pub fn deletes_remotely(r: &Resource) -> bool {
    r.spec.deletion_policy == DeletionPolicy::Delete
        && r.spec.management == ManagementPolicy::Manage
        && (r.status.job_id.is_some()
            || r.spec.job_id.is_some()
            || r.status.create_attempted_at.is_some())
}

/// The Secret to read for this import's key: spec.apiKeySecretRef when set, else the namespace's
/// [`NAMESPACE_CREDENTIALS`](crate::credentials::NAMESPACE_CREDENTIALS).
pub fn credentials_secret(spec: &Spec) -> SecretChoice {
    secret_choice(spec.api_key_secret.as_ref())
}

/// The Secret whose key `r` still needs to delete its job, if any: it holds our finalizer and
/// would call DELETE, or, not being deleted, may create a job at any moment (its pass protects
/// the Secret just before it records the intent, which the keeper's caches may not show yet).
/// What the credentials keeper asks of each import (`deployment::step` answers the same for each
/// deployment).
pub fn secret_relied_on(r: &Resource) -> Option<String> {
    let may_create = !r.deleting
        && r.spec.deletion_policy == DeletionPolicy::Delete
        && r.spec.management == ManagementPolicy::Manage;
    (r.has_finalizer && (deletes_remotely(r) || may_create))
        .then(|| credentials_secret(&r.spec).secret.name)
}

/// Whether `r` still needs the key in Secret `secret` to delete its job.
pub fn relies_on(r: &Resource, secret: &str) -> bool {
    secret_relied_on(r).is_some_and(|s| s == secret)
}

/// Whether any of `imports` (one namespace's) other than `released` (a UID) relies on `secret`.
pub fn secret_in_use(secret: &str, imports: &[Resource], released: Option<&str>) -> bool {
    imports
        .iter()
        .filter(|r| Some(r.uid.as_str()) != released)
        .any(|r| relies_on(r, secret))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::{secret_read, SecretRef, DEFAULT_SECRET_KEY, NAMESPACE_CREDENTIALS};
    use crate::import::jobs::{Source, Storage, WeightType};
    use crate::import::resource::ImportStatus;

    fn import(uid: &str, secret: Option<&str>) -> Resource {
        Resource {
            name: uid.into(),
            uid: uid.into(),
            generation: Some(1),
            deleting: false,
            has_finalizer: true,
            control: Default::default(),
            spec: Spec {
                base_model: "qwen3-32b".into(),
                display_name: None,
                weight_type: WeightType::Lora,
                source: Source::Oss,
                storage: Storage {
                    bucket_name: "b".into(),
                    object_key: "k/".into(),
                },
                deletion_policy: DeletionPolicy::Delete,
                job_id: None,
                management: ManagementPolicy::Manage,
                api_key_secret: secret.map(|name| SecretRef {
                    name: name.into(),
                    key: DEFAULT_SECRET_KEY.into(),
                }),
            },
            status: ImportStatus {
                job_id: Some(format!("job-{uid}")),
                ..Default::default()
            },
        }
    }

    #[test]
    fn the_named_secret_then_the_namespace_default() {
        let named = credentials_secret(&import("a", Some("team-key")).spec);
        assert_eq!(
            (named.secret.name.as_str(), named.named),
            ("team-key", true)
        );
        let default = credentials_secret(&import("a", None).spec);
        assert_eq!(default.secret.name, NAMESPACE_CREDENTIALS);
        assert!(!default.named);
        let gone = || Err(CredentialProblem::SecretNotFound { name: "x".into() });
        assert_eq!(secret_read(&default, gone()), None);
        assert_eq!(secret_read(&named, gone()), Some(gone()));
        let broken = Err(CredentialProblem::KeyMissing {
            name: NAMESPACE_CREDENTIALS.into(),
            key: DEFAULT_SECRET_KEY.into(),
        });
        assert_eq!(secret_read(&default, broken.clone()), Some(broken));
    }

    #[test]
    fn a_secret_is_in_use_while_an_unreleased_job_to_delete_reads_it() {
        let a = import("a", Some("s"));
        assert!(secret_in_use("s", std::slice::from_ref(&a), None));
        assert!(!secret_in_use("s", std::slice::from_ref(&a), Some("a")));
        assert!(!secret_in_use("other", std::slice::from_ref(&a), None));
        let mut orphan = a.clone();
        orphan.spec.deletion_policy = DeletionPolicy::Orphan;
        assert!(!secret_in_use("s", &[orphan], None));
        let mut released = a.clone();
        released.has_finalizer = false;
        assert!(!secret_in_use("s", &[released], None));
        // Nothing remote yet: live, it may create at any moment; being deleted, it never will.
        let mut never_created = a.clone();
        never_created.status = ImportStatus::default();
        assert!(secret_in_use(
            "s",
            std::slice::from_ref(&never_created),
            None
        ));
        never_created.deleting = true;
        assert!(!secret_in_use("s", &[never_created], None));
        // Deleting, with the finalizer still on: it needs the key to call DELETE.
        let mut deleting = a.clone();
        deleting.deleting = true;
        assert!(secret_in_use("s", &[deleting], None));
        let by_default = import("d", None);
        assert!(secret_in_use(NAMESPACE_CREDENTIALS, &[by_default], None));
    }
}
