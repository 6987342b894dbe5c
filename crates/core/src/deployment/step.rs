//! One ModelDeployment reconcile as a pure machine, as `import::step` is for imports.
//! [`next_need`] names the next input to observe (a fresh copy, the ModelImport, the
//! credentials, the deployment or the workspace's listing), each once; [`decide`] turns the
//! observation into the whole [`DeploymentStep`]: the status to record, the events, the finalizer
//! change or remote call, and when to look again. A call's answer goes back into the observation
//! and is decided on in turn.

use super::deployments::{Deployment, DeploymentState, Limits, NewDeployment, Plan};
use super::reason::{
    unconfirmed_no_answer, unconfirmed_not_listed, DeploymentCode, DeploymentReason as R,
    ImportWait,
};
use super::resource::{
    DeploymentPhase, DeploymentResource, DeploymentSpec, DeploymentStatus, ImportView, ModelSource,
};
use crate::api::{ApiError, RemoteFailure};
use crate::conditions::{
    conditions_of, merge_conditions, observed_conditions, paused_conditions, Meaning, READY,
    STALLED, TRUE,
};
use crate::correlation;
use crate::credentials::{secret_choice, CredentialProblem, KeySource};
use crate::deletion::DeletionPolicy;
use crate::events::{Action, Event, EventType, Happening};
use crate::management::ManagementPolicy;
use crate::requeue::{Requeue, Timing};
use jiff::Timestamp;
use std::time::Duration;

/// An input to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Need {
    /// A copy of the resource from the API server: a create is decided on nothing older.
    FreshCopy,
    Import(String),
    Credentials,
    Deployment(String),
    /// Every deployment of the key's workspace (all pages), to find a create's deployment.
    Listing,
}

/// A read of Model Studio, made while observing.
#[derive(Debug)]
pub enum Seen {
    Deployment(Result<Deployment, ApiError>),
    Listing(Result<Vec<Deployment>, ApiError>),
}

/// The answer to a mutation the step asked for.
#[derive(Debug)]
pub enum Answer {
    Created(Result<Deployment, ApiError>),
    Scaled(Result<Deployment, ApiError>),
    LimitsUpdated(Result<Deployment, ApiError>),
    /// A DELETE answers only the state the deployment is in now (reference §11, and the
    /// official SDK's status-only type): the name is the one the delete was sent for.
    Deleted {
        deployed_model: String,
        result: Result<DeploymentState, ApiError>,
    },
}

/// Everything a decision reads.
#[derive(Debug)]
pub struct Observation {
    pub now: Timestamp,
    pub timing: Timing,
    pub cached: DeploymentResource,
    pub fresh: Option<DeploymentResource>,
    pub import: Option<ImportView>,
    pub credentials: Option<Result<KeySource, CredentialProblem>>,
    /// The fingerprint of the key chosen, once the credentials were read.
    pub key_fingerprint: Option<String>,
    pub seen: Option<Seen>,
    pub answer: Option<Answer>,
}

impl Observation {
    pub fn new(now: Timestamp, timing: Timing, cached: DeploymentResource) -> Self {
        Observation {
            now,
            timing,
            cached,
            fresh: None,
            import: None,
            credentials: None,
            key_fingerprint: None,
            seen: None,
            answer: None,
        }
    }

    /// The copy to act on: the fresh one when it was read.
    pub fn resource(&self) -> &DeploymentResource {
        self.fresh.as_ref().unwrap_or(&self.cached)
    }

    /// The `modelstudio.io/reconcile-requested-at` value not handled yet, if a person asked.
    /// Every pass reads the recorded deployment, so the pass it wakes is the reconcile asked.
    pub fn reconcile_asked(&self) -> Option<&str> {
        let r = self.resource();
        r.control
            .reconcile_asked(r.status.last_handled_reconcile_at.as_deref())
    }
}

/// The finalizer change or remote call to make.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Act {
    #[default]
    Nothing,
    AddFinalizer,
    RemoveFinalizer,
    Create(NewDeployment),
    Scale {
        deployed_model: String,
        capacity: u32,
    },
    UpdateLimits {
        deployed_model: String,
        limits: Limits,
    },
    Delete {
        deployed_model: String,
    },
}

/// What one decision asks of the IO side (see [`crate::step::Step`]).
pub type DeploymentStep = crate::step::Step<DeploymentStatus, Act>;

/// The Secret whose key `r` still needs to delete its deployment, if any: one is recorded or may
/// have been made, or, not being deleted, one may be created at any moment (as for imports).
pub fn secret_relied_on(r: &DeploymentResource) -> Option<String> {
    let status = &r.status;
    let remote = status.deployed_model.is_some() || status.create_attempted_at.is_some();
    (r.has_finalizer
        && r.spec.deletion_policy == DeletionPolicy::Delete
        && r.spec.management == ManagementPolicy::Manage
        && (remote || !r.deleting))
        .then(|| secret_choice(r.spec.api_key_secret.as_ref()).secret.name)
}

/// The display name a resource's create carries: the spec's name (or the resource's) and a token
/// of its UID, by which a create whose answer was lost is found again.
pub fn display_name(r: &DeploymentResource) -> String {
    correlation::display_name(r.spec.name.as_deref().unwrap_or(&r.name), &r.uid)
}

/// The next input to read, or `None` when [`decide`] can decide.
pub fn next_need(obs: &Observation) -> Option<Need> {
    if obs.answer.is_some() {
        return None;
    }
    let r = obs.resource();
    // Paused: no call to Model Studio, and no key to choose for one.
    if r.control.paused {
        return None;
    }
    let status = &r.status;
    let credentials = || match &obs.credentials {
        None => Some(Need::Credentials),
        Some(Err(_)) => None,
        Some(Ok(_)) => Some(Need::Listing),
    };
    if r.deleting {
        if !r.has_finalizer
            || r.spec.deletion_policy == DeletionPolicy::Orphan
            || r.spec.management == ManagementPolicy::Observe
        {
            return None;
        }
        return match (&status.deployed_model, &status.create_attempted_at) {
            (None, None) => None,
            _ if obs.seen.is_some() => None,
            (Some(dm), _) => credentials().map(|n| match n {
                Need::Listing => Need::Deployment(dm.clone()),
                n => n,
            }),
            (None, Some(_)) => credentials(),
        };
    }
    if !r.has_finalizer {
        return None;
    }
    // Observed: the deployment recorded, else the one the spec names, is read; nothing else.
    if r.spec.management == ManagementPolicy::Observe {
        let dm = status
            .deployed_model
            .as_ref()
            .or(r.spec.deployed_model.as_ref())?;
        if obs.seen.is_some() {
            return None;
        }
        return credentials().map(|n| match n {
            Need::Listing => Need::Deployment(dm.clone()),
            n => n,
        });
    }
    if let Some(dm) = &status.deployed_model {
        if obs.seen.is_some() {
            return None;
        }
        return credentials().map(|n| match n {
            Need::Listing => Need::Deployment(dm.clone()),
            n => n,
        });
    }
    // Nothing recorded yet: the resource is read past the cache before a create, so that a
    // deployment recorded a moment ago is never made twice.
    if obs.fresh.is_none() {
        return Some(Need::FreshCopy);
    }
    // A create that may have made a deployment is looked for first, whatever the import does.
    if status.create_attempted_at.is_some() {
        match &obs.credentials {
            None => return Some(Need::Credentials),
            Some(Err(_)) => return None,
            Some(Ok(_)) if obs.seen.is_none() => return Some(Need::Listing),
            Some(Ok(_)) => {}
        }
    }
    if let ModelSource::Import(name) = &r.spec.source {
        match &obs.import {
            None => return Some(Need::Import(name.clone())),
            Some(ImportView::Ready {
                model_name: Some(_),
            }) => {}
            Some(_) => return None,
        }
    }
    if spec_stall(r).is_some() {
        return None;
    }
    obs.credentials.is_none().then_some(Need::Credentials)
}

/// The spec stall recorded for this generation, if any: the step that stalled is not tried
/// again until the spec changes.
pub fn spec_stall(r: &DeploymentResource) -> Option<DeploymentCode> {
    r.status
        .conditions
        .iter()
        .find(|c| c.type_ == STALLED && c.status == TRUE)
        .filter(|c| c.observed_generation == r.generation)
        .and_then(|c| DeploymentCode::parse(&c.reason))
        .filter(|c| c.waits_for_spec_change())
}

/// The whole step for a complete observation.
pub fn decide(obs: &Observation) -> DeploymentStep {
    let r = obs.resource();
    let mut s = Builder::new(obs);
    if let Some(answer) = &obs.answer {
        on_answer(&mut s, answer);
    } else if r.deleting {
        on_deleting(&mut s);
    } else if !r.has_finalizer {
        s.plan = "add_finalizer";
        s.act = Act::AddFinalizer;
        s.requeue = Requeue::Never;
    } else if r.control.paused {
        s.plan = "paused";
        s.next.conditions = paused_conditions(&r.status.conditions, r.generation, obs.now);
    } else if r.spec.management == ManagementPolicy::Observe {
        on_observe(&mut s);
    } else if r.status.deployed_model.is_some() {
        on_mirror(&mut s);
    } else {
        on_create(&mut s);
    }
    s.finish()
}

/// The step under construction: the next status is built on the current one.
struct Builder<'a> {
    obs: &'a Observation,
    plan: &'static str,
    next: DeploymentStatus,
    reason: Option<R>,
    act: Act,
    events: Vec<Event>,
    requeue: Requeue,
}

impl<'a> Builder<'a> {
    fn new(obs: &'a Observation) -> Self {
        Builder {
            obs,
            plan: "observe",
            next: obs.resource().status.clone(),
            reason: None,
            act: Act::Nothing,
            events: Vec::new(),
            requeue: Requeue::Never,
        }
    }

    fn r(&self) -> &'a DeploymentResource {
        self.obs.resource()
    }

    fn spec(&self) -> &'a DeploymentSpec {
        &self.obs.resource().spec
    }

    /// Mirrors a deployment as read: its name, model, status and capacity.
    fn mirror(&mut self, d: &Deployment) {
        let n = &mut self.next;
        n.deployed_model = Some(d.deployed_model.clone());
        n.create_attempted_at = None;
        if d.model_name.is_some() {
            n.model_name = d.model_name.clone();
        }
        n.remote_status = Some(d.status_text.clone());
        n.phase = Some(phase_of(&d.status).unwrap_or(n.phase.unwrap_or(DeploymentPhase::Pending)));
        n.capacity = d.capacity.or(n.capacity);
        n.ready_capacity = d.ready_capacity.or(n.ready_capacity);
        n.base_capacity = d.base_capacity.or(n.base_capacity);
        if d.gmt_create.is_some() {
            n.created_at = d.gmt_create.clone();
        }
        if let Some(fp) = &self.obs.key_fingerprint {
            n.key_fingerprint = Some(fp.clone());
        }
    }

    /// What a status-only answer (a DELETE's) says of the recorded deployment.
    fn mirror_state(&mut self, state: &DeploymentState) {
        let n = &mut self.next;
        n.remote_status = Some(state.spelling().to_string());
        if let Some(phase) = phase_of(state) {
            n.phase = Some(phase);
        }
    }

    fn reason(&mut self, reason: R, requeue: Requeue) {
        self.reason = Some(reason);
        self.requeue = requeue;
    }

    fn event(&mut self, type_: EventType, happening: Happening, action: Action, note: String) {
        self.events.push(Event::of(type_, happening, action, note));
    }

    /// A remote error that is not the step's business: retried, with its reason.
    fn api_error(&mut self, err: &ApiError) {
        let (reason, requeue) = generic_error(err);
        self.reason(reason, requeue);
    }

    fn finish(self) -> DeploymentStep {
        let obs = self.obs;
        let r = obs.resource();
        let current = &r.status;
        let mut next = self.next;
        if next.phase.is_none() {
            next.phase = Some(DeploymentPhase::Pending);
        }
        let mut events = self.events;
        if let Some(reason) = &self.reason {
            let desired = conditions_of(
                reason.meaning(),
                reason.code().as_str(),
                &reason.message(),
                r.generation,
            );
            next.conditions = merge_conditions(&current.conditions, desired, obs.now);
            // A new stall is announced once, as a Warning named by its reason.
            let was = stalled_code(current);
            if reason.meaning() == Meaning::Stalled && was != Some(reason.code()) {
                events.push(Event {
                    type_: EventType::Warning,
                    reason: reason.code().as_str(),
                    action: action_of(&self.act, r),
                    note: reason.message(),
                });
            }
            if reason.meaning() == Meaning::Ready && !is_ready(current) {
                events.push(Event::normal(
                    Happening::Running,
                    Action::PollDeployment,
                    reason.message(),
                ));
            }
            next.observed_generation = r.generation.or(current.observed_generation);
        }
        // An observed deployment's conditions say so, where they would say Idle.
        if r.spec.management == ManagementPolicy::Observe && !r.control.paused {
            next.conditions = observed_conditions(&next.conditions);
        }
        if let Some(asked) = obs.reconcile_asked().filter(|_| !r.control.paused) {
            next.last_handled_reconcile_at = Some(asked.to_string());
        }
        let status = (next != *current).then_some(next);
        let protect_secret = matches!(self.act, Act::Create(_))
            && matches!(obs.credentials, Some(Ok(KeySource::Secret)))
            && r.spec.deletion_policy == DeletionPolicy::Delete;
        DeploymentStep {
            plan: self.plan,
            status,
            act: self.act,
            events,
            requeue: self.requeue,
            protect_secret,
        }
    }
}

fn action_of(act: &Act, r: &DeploymentResource) -> Action {
    match act {
        Act::Create(_) => Action::CreateDeployment,
        Act::Scale { .. } => Action::ScaleDeployment,
        Act::UpdateLimits { .. } => Action::UpdateDeployment,
        Act::Delete { .. } => Action::DeleteDeployment,
        _ if r.deleting => Action::DeleteDeployment,
        _ if r.status.deployed_model.is_none() => Action::CreateDeployment,
        _ => Action::PollDeployment,
    }
}

fn stalled_code(status: &DeploymentStatus) -> Option<DeploymentCode> {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == STALLED && c.status == TRUE)
        .and_then(|c| DeploymentCode::parse(&c.reason))
}

fn is_ready(status: &DeploymentStatus) -> bool {
    status
        .conditions
        .iter()
        .any(|c| c.type_ == READY && c.status == TRUE)
}

/// The phase a remote state shows; `None` for a state this controller does not know.
pub fn phase_of(state: &DeploymentState) -> Option<DeploymentPhase> {
    match state {
        DeploymentState::Pending | DeploymentState::Deploying => Some(DeploymentPhase::Pending),
        DeploymentState::Updating => Some(DeploymentPhase::Updating),
        DeploymentState::Running => Some(DeploymentPhase::Running),
        DeploymentState::Stopped => Some(DeploymentPhase::Stopped),
        DeploymentState::Deleting => Some(DeploymentPhase::Deleting),
        DeploymentState::Failed => Some(DeploymentPhase::Failed),
        DeploymentState::Unknown(_) => None,
    }
}

/// A remote error on any call: its reason and when to try again.
fn generic_error(err: &ApiError) -> (R, Requeue) {
    let error = err.to_string();
    let backoff = Requeue::Backoff {
        min: err.retry_after(),
    };
    let reason = R::Remote {
        failure: RemoteFailure::of(err),
        error,
    };
    (reason, backoff)
}

/// The credentials problem, if the key could not be had.
fn credentials_problem(s: &mut Builder<'_>) -> bool {
    match &s.obs.credentials {
        Some(Err(problem)) => {
            let deleting = s.r().deleting;
            s.reason(
                R::CredentialsMissing {
                    problem: problem.clone(),
                    deleting,
                },
                Requeue::Backoff { min: None },
            );
            true
        }
        _ => false,
    }
}

/// The model to deploy, or the wait for the ModelImport.
fn model_to_deploy(s: &mut Builder<'_>) -> Option<String> {
    let import = match &s.spec().source {
        ModelSource::Model(name) => return Some(name.clone()),
        ModelSource::Import(import) => import.clone(),
    };
    let wait = match s.obs.import.clone().unwrap_or(ImportView::Missing) {
        ImportView::Ready {
            model_name: Some(model),
        } => return Some(model),
        ImportView::Ready { model_name: None } => ImportWait::Unnamed,
        ImportView::Missing => ImportWait::Missing,
        ImportView::Deleting => ImportWait::Deleting,
        ImportView::NotReady { phase } => ImportWait::NotReady { phase },
        ImportView::Failed { message } => {
            s.plan = "wait_for_import";
            s.reason(R::ImportFailed { import, message }, Requeue::Never);
            return None;
        }
    };
    s.plan = "wait_for_import";
    // The ModelImport's watch wakes the resource, but that wake can come before the imports'
    // cache shows the change (two watches): a look at the poll interval bounds the wait.
    s.reason(R::WaitingForImport { import, wait }, Requeue::Poll);
    None
}

/// The create request for the resource.
pub fn new_deployment(r: &DeploymentResource, model_name: &str) -> NewDeployment {
    let spec = &r.spec;
    NewDeployment {
        model_name: model_name.to_string(),
        // A ptu deployment is sized by its throughput alone.
        capacity: (spec.plan != Some(Plan::Ptu)).then_some(spec.capacity),
        plan: spec.plan.clone(),
        deploy_spec: spec.deploy_spec.clone(),
        ptu_capacity: spec.ptu_capacity,
        name: Some(display_name(r)),
        suffix: spec.suffix.clone(),
        enable_thinking: spec.enable_thinking,
        max_context_length: spec.max_context_length,
        rpm_limit: spec.rpm_limit,
        tpm_limit: spec.tpm_limit,
    }
}

fn on_create(s: &mut Builder<'_>) {
    let r = s.r();
    if r.status.create_attempted_at.is_some() {
        if credentials_problem(s) || !recover(s) {
            return;
        }
        // The earlier attempt certainly made nothing.
        s.next.create_attempted_at = None;
    }
    let Some(model) = model_to_deploy(s) else {
        return;
    };
    s.next.model_name = Some(model.clone());
    if spec_stall(r).is_some() {
        // Stalled on this spec: nothing is tried again until it changes.
        s.plan = "stalled";
        s.requeue = Requeue::Never;
        return;
    }
    if credentials_problem(s) {
        return;
    }
    create(s, &model);
}

/// Looks for the deployment of an earlier create in the listing. `true`: it certainly made none,
/// so create.
fn recover(s: &mut Builder<'_>) -> bool {
    s.plan = "recover";
    let r = s.r();
    let display = r
        .status
        .display_name
        .clone()
        .unwrap_or_else(|| display_name(r));
    match &s.obs.seen {
        Some(Seen::Listing(Ok(list))) => {
            let mut holders: Vec<&Deployment> = list
                .iter()
                .filter(|d| d.name.as_deref().map(str::trim) == Some(display.trim()))
                .collect();
            holders.sort_by(|a, b| a.deployed_model.cmp(&b.deployed_model));
            holders.dedup_by(|a, b| a.deployed_model == b.deployed_model);
            match holders.as_slice() {
                [d] => {
                    s.mirror(d);
                    s.event(
                        EventType::Normal,
                        Happening::Recovered,
                        Action::RecoverDeployment,
                        format!(
                            "Found deployment {} made by an earlier create whose answer was lost",
                            d.deployed_model
                        ),
                    );
                    let d = (*d).clone();
                    state_reason(s, &d);
                    false
                }
                [] => nothing_made(s, &display),
                many => {
                    s.reason(
                        R::CreateAmbiguous {
                            display_name: display.clone(),
                            deployed_models: many
                                .iter()
                                .map(|d| d.deployed_model.clone())
                                .collect(),
                        },
                        // A person resolves it in Model Studio, which changes nothing here: look
                        // again at the resync to adopt the one left.
                        Requeue::Resync,
                    );
                    false
                }
            }
        }
        Some(Seen::Listing(Err(e))) => {
            s.api_error(e);
            false
        }
        _ => false,
    }
}

fn create(s: &mut Builder<'_>, model: &str) {
    let r = s.r();
    let request = new_deployment(r, model);
    let problems = request.problems();
    if !problems.is_empty() {
        s.plan = "stalled";
        s.reason(R::InvalidSpec { problems }, Requeue::Never);
        return;
    }
    s.plan = "create";
    s.next.display_name = request.name.clone();
    s.next.create_attempted_at = Some(s.obs.now.to_string());
    // The deployment of this create will live in this key's workspace.
    if let Some(fp) = &s.obs.key_fingerprint {
        s.next.key_fingerprint = Some(fp.clone());
    }
    s.next.phase = Some(DeploymentPhase::Pending);
    s.reason(
        R::Creating {
            model: model.to_string(),
        },
        Requeue::Poll,
    );
    s.act = Act::Create(request);
}

fn on_mirror(s: &mut Builder<'_>) {
    s.plan = "mirror";
    if credentials_problem(s) {
        return;
    }
    let r = s.r();
    let dm = r.status.deployed_model.clone().unwrap_or_default();
    on_read(s, dm, converge);
}

/// The deployment `dm` as read: mirrored, then `then` decides on it; a NotFound (under this
/// key's workspace) or another failure says so.
fn on_read(s: &mut Builder<'_>, dm: String, then: impl FnOnce(&mut Builder<'_>, &Deployment)) {
    match &s.obs.seen {
        Some(Seen::Deployment(Ok(d))) => {
            s.mirror(d);
            let d = d.clone();
            then(s, &d);
        }
        Some(Seen::Deployment(Err(ApiError::NotFound(_)))) => {
            if let Some(changed) = workspace_changed(s, &dm) {
                s.reason(changed, Requeue::Resync);
                return;
            }
            s.reason(
                R::DeploymentNotFound { deployed_model: dm },
                Requeue::Resync,
            );
        }
        Some(Seen::Deployment(Err(e))) => s.api_error(e),
        _ => {}
    }
}

/// An observed deployment: adopted by the name the spec gives, then mirrored as it is; never
/// created, scaled or changed.
fn on_observe(s: &mut Builder<'_>) {
    s.plan = "observe";
    let r = s.r();
    let recorded = r.status.deployed_model.clone();
    let Some(dm) = recorded.clone().or_else(|| r.spec.deployed_model.clone()) else {
        s.plan = "stalled";
        s.reason(R::ObservedWithoutDeployedModel, Requeue::Never);
        return;
    };
    if credentials_problem(s) {
        return;
    }
    on_read(s, dm.clone(), |s, d| {
        if recorded.is_none() {
            s.event(
                EventType::Normal,
                Happening::Adopted,
                Action::PollDeployment,
                format!("Observing deployment {dm} (managementPolicy Observe)"),
            );
        }
        state_reason(s, d);
    });
}

/// A NotFound with another workspace's key than the one the deployment was seen with.
fn workspace_changed(s: &Builder<'_>, dm: &str) -> Option<R> {
    let recorded = s.r().status.key_fingerprint.clone()?;
    let current = s.obs.key_fingerprint.clone()?;
    (recorded != current).then(|| R::WorkspaceChanged {
        deployed_model: dm.to_string(),
        recorded,
        current,
    })
}

/// A listing shows no deployment with the create's `display` name: `true` when that proves the
/// create made none (the grace after it has passed, and the key is of the create's workspace);
/// otherwise the reason to wait is set.
fn nothing_made(s: &mut Builder<'_>, display: &str) -> bool {
    let attempted = s
        .r()
        .status
        .create_attempted_at
        .as_deref()
        .and_then(|t| t.parse::<Timestamp>().ok());
    let grace = s.obs.timing.create_grace;
    let elapsed = attempted
        .map(|t| s.obs.now.duration_since(t).unsigned_abs())
        .unwrap_or(Duration::MAX);
    if elapsed < grace {
        s.reason(
            R::CreateUnconfirmed {
                detail: unconfirmed_not_listed(display, grace),
            },
            Requeue::After((grace - elapsed).min(s.obs.timing.poll_interval)),
        );
        return false;
    }
    if let Some(changed) = intent_workspace_changed(s, display) {
        s.reason(changed, Requeue::Resync);
        return false;
    }
    true
}

/// A listing without the create's deployment, made with another workspace's key than the
/// create's: no proof that the create made nothing.
fn intent_workspace_changed(s: &Builder<'_>, display: &str) -> Option<R> {
    workspace_changed(s, &format!("with display name {display:?}"))
}

/// The reason a deployment's state shows, with nothing to change.
fn state_reason(s: &mut Builder<'_>, d: &Deployment) {
    let dm = d.deployed_model.clone();
    match &d.status {
        DeploymentState::Pending | DeploymentState::Deploying => {
            s.reason(R::DeploymentPending { deployed_model: dm }, Requeue::Poll)
        }
        DeploymentState::Updating => s.reason(
            R::DeploymentUpdating {
                deployed_model: dm,
                detail: format!(
                    "changing in Model Studio ({} of {} units serving)",
                    d.ready_capacity.map_or("?".into(), |c| c.to_string()),
                    d.capacity.map_or("?".into(), |c| c.to_string())
                ),
            },
            Requeue::Poll,
        ),
        DeploymentState::Running => {
            if d.ready_capacity.zip(d.capacity).is_some_and(|(r, c)| r < c) {
                s.reason(
                    R::DeploymentUpdating {
                        deployed_model: dm,
                        detail: format!(
                            "{} of {} units serving",
                            d.ready_capacity.unwrap_or(0),
                            d.capacity.unwrap_or(0)
                        ),
                    },
                    Requeue::Poll,
                );
            } else {
                s.reason(
                    R::DeploymentRunning {
                        deployed_model: dm,
                        capacity: d.capacity,
                    },
                    Requeue::Resync,
                );
            }
        }
        DeploymentState::Stopped => {
            s.reason(R::DeploymentStopped { deployed_model: dm }, Requeue::Resync)
        }
        DeploymentState::Failed => {
            s.reason(R::DeploymentFailed { deployed_model: dm }, Requeue::Resync)
        }
        DeploymentState::Deleting => s.reason(
            R::DeploymentDeleting {
                deployed_model: dm,
                ours: false,
            },
            Requeue::Poll,
        ),
        DeploymentState::Unknown(status) => s.reason(
            R::UnknownDeploymentStatus {
                deployed_model: dm,
                status: status.clone(),
            },
            Requeue::Poll,
        ),
    }
}

/// What the spec asks of a RUNNING deployment that it does not have yet: a scale, then limits.
fn converge(s: &mut Builder<'_>, d: &Deployment) {
    state_reason(s, d);
    if d.status != DeploymentState::Running {
        return;
    }
    let spec = s.spec();
    let stall = spec_stall(s.r());
    let dm = d.deployed_model.clone();
    let plan = spec.plan.clone();
    // A ptu deployment is sized by its throughput: its capacity is not the spec's business.
    let capacity_differs =
        plan != Some(Plan::Ptu) && d.capacity.is_some_and(|c| c != spec.capacity);
    if capacity_differs {
        let deployed = d.capacity.unwrap_or_default();
        if let Some(plan) = plan.as_ref().filter(|p| !p.can_scale()) {
            s.reason(
                R::ScaleUnsupported {
                    plan: plan.spelling().to_string(),
                    deployed,
                    asked: spec.capacity,
                },
                Requeue::Resync,
            );
            return;
        }
        // A scale refused at this generation (its capacity, or scaling at all) waits for a new
        // spec.
        if matches!(
            stall,
            Some(DeploymentCode::CapacityRefused | DeploymentCode::ScaleUnsupported)
        ) {
            s.plan = "stalled";
            keep_stall(s);
            return;
        }
        s.plan = "scale";
        s.reason(
            R::DeploymentUpdating {
                deployed_model: dm.clone(),
                detail: format!("scaling from {deployed} to {} units", spec.capacity),
            },
            Requeue::Poll,
        );
        s.act = Act::Scale {
            deployed_model: dm,
            capacity: spec.capacity,
        };
        return;
    }
    let rpm = spec.rpm_limit.filter(|l| d.rpm_limit != Some(*l));
    let tpm = spec.tpm_limit.filter(|l| d.tpm_limit != Some(*l));
    let Some(limits) = Limits::new(rpm, tpm) else {
        return;
    };
    if plan != Some(Plan::Mu) {
        s.reason(
            R::LimitsUnsupported {
                detail: format!(
                    "Model Studio changes the request limits of plan mu deployments only, and this one's plan is {}",
                    plan.as_ref().map_or("cu (the default)", Plan::spelling)
                ),
            },
            Requeue::Resync,
        );
        return;
    }
    if matches!(
        stall,
        Some(DeploymentCode::LimitsUnsupported | DeploymentCode::InvalidSpec)
    ) {
        s.plan = "stalled";
        s.requeue = Requeue::Never;
        keep_stall(s);
        return;
    }
    s.plan = "update_limits";
    s.reason(
        R::DeploymentUpdating {
            deployed_model: dm.clone(),
            detail: "changing its request limits".into(),
        },
        Requeue::Poll,
    );
    s.act = Act::UpdateLimits {
        deployed_model: dm,
        limits,
    };
}

/// Keeps the conditions as recorded (a spec stall of this generation), mirroring on.
fn keep_stall(s: &mut Builder<'_>) {
    s.reason = None;
    s.requeue = Requeue::Resync;
}

/// What an answer means: each mutation's answer has its own reading.
fn on_answer(s: &mut Builder<'_>, answer: &Answer) {
    match answer {
        Answer::Created(result) => on_created(s, result),
        Answer::Scaled(result) => on_scaled(s, result),
        Answer::LimitsUpdated(result) => on_limits_updated(s, result),
        Answer::Deleted {
            deployed_model,
            result,
        } => on_deleted(s, deployed_model, result),
    }
}

/// A create's answer: the deployment to record, or why none was made.
fn on_created(s: &mut Builder<'_>, result: &Result<Deployment, ApiError>) {
    let r = s.r();
    match result {
        Ok(d) => {
            s.plan = "create";
            s.mirror(d);
            s.event(
                EventType::Normal,
                Happening::Created,
                Action::CreateDeployment,
                format!(
                    "Created deployment {} of model {}{}",
                    d.deployed_model,
                    d.model_name
                        .as_deref()
                        .or(s.next.model_name.as_deref())
                        .unwrap_or("?"),
                    d.capacity
                        .map(|c| format!(" at capacity {c}"))
                        .unwrap_or_default()
                ),
            );
            let d = d.clone();
            state_reason(s, &d);
            s.requeue = Requeue::Poll;
        }
        Err(e) => {
            s.plan = "create";
            let model = s.next.model_name.clone().unwrap_or_default();
            let not_made = |s: &mut Builder<'_>| s.next.create_attempted_at = None;
            match e {
                ApiError::Conflict(_) => {
                    not_made(s);
                    let deployed_model =
                        super::deployments::deployed_model_name(&model, r.spec.suffix.as_deref());
                    s.reason(
                        R::DeployedModelConflict {
                            deployed_model,
                            error: e.to_string(),
                        },
                        Requeue::Never,
                    );
                }
                ApiError::InvalidParameter(_) => {
                    not_made(s);
                    s.reason(
                        R::InvalidSpec {
                            problems: vec![e.to_string()],
                        },
                        Requeue::Never,
                    );
                }
                ApiError::NotFound(_) => {
                    not_made(s);
                    s.reason(
                        R::ModelNotFound {
                            model,
                            error: e.to_string(),
                        },
                        Requeue::Never,
                    );
                }
                // The deployment may exist: the next pass looks for it before creating again.
                e if !e.create_certainly_not_applied() => s.reason(
                    R::CreateUnconfirmed {
                        detail: unconfirmed_no_answer(&e.to_string()),
                    },
                    Requeue::Backoff {
                        min: e.retry_after(),
                    },
                ),
                e => {
                    not_made(s);
                    s.api_error(e);
                }
            }
        }
    }
}

/// A scale's answer.
fn on_scaled(s: &mut Builder<'_>, result: &Result<Deployment, ApiError>) {
    let r = s.r();
    let dm = r.status.deployed_model.clone().unwrap_or_default();
    match result {
        Ok(d) => {
            s.plan = "scale";
            s.mirror(d);
            s.event(
                EventType::Normal,
                Happening::Scaled,
                Action::ScaleDeployment,
                format!(
                    "Scaling deployment {} to capacity {}",
                    d.deployed_model, r.spec.capacity
                ),
            );
            let d = d.clone();
            state_reason(s, &d);
            s.requeue = Requeue::Poll;
        }
        Err(e) => {
            s.plan = "scale";
            match e {
                ApiError::Unsupported(_) => s.reason(
                    R::ScaleUnsupported {
                        plan: r
                            .spec
                            .plan
                            .as_ref()
                            .map_or("cu", Plan::spelling)
                            .to_string(),
                        deployed: r.status.capacity.unwrap_or_default(),
                        asked: r.spec.capacity,
                    },
                    Requeue::Never,
                ),
                ApiError::InvalidParameter(_) => s.reason(
                    R::CapacityRefused {
                        asked: r.spec.capacity,
                        error: e.to_string(),
                    },
                    Requeue::Never,
                ),
                ApiError::OperationDenied(_) => s.reason(
                    R::DeploymentUpdating {
                        deployed_model: dm,
                        detail: "waiting until it runs again to scale it".into(),
                    },
                    Requeue::Poll,
                ),
                e => s.api_error(e),
            }
        }
    }
}

/// An update of the limits' answer.
fn on_limits_updated(s: &mut Builder<'_>, result: &Result<Deployment, ApiError>) {
    let r = s.r();
    let dm = r.status.deployed_model.clone().unwrap_or_default();
    match result {
        Ok(d) => {
            s.plan = "update_limits";
            s.mirror(d);
            s.event(
                EventType::Normal,
                Happening::LimitsUpdated,
                Action::UpdateDeployment,
                format!(
                    "Changed the limits of deployment {}: rpm {}, tpm {}",
                    d.deployed_model,
                    d.rpm_limit.map_or("-".into(), |l| l.to_string()),
                    d.tpm_limit.map_or("-".into(), |l| l.to_string())
                ),
            );
            let d = d.clone();
            state_reason(s, &d);
        }
        Err(e) => {
            s.plan = "update_limits";
            match e {
                ApiError::Unsupported(_) => s.reason(
                    R::LimitsUnsupported {
                        detail: format!(
                            "Model Studio cannot change this deployment's limits ({e})"
                        ),
                    },
                    Requeue::Never,
                ),
                ApiError::InvalidParameter(_) => s.reason(
                    R::InvalidSpec {
                        problems: vec![e.to_string()],
                    },
                    Requeue::Never,
                ),
                ApiError::OperationDenied(_) => s.reason(
                    R::DeploymentUpdating {
                        deployed_model: dm,
                        detail: "waiting until it runs again to change its limits".into(),
                    },
                    Requeue::Poll,
                ),
                e => s.api_error(e),
            }
        }
    }
}

/// A delete's answer: only the state the deployment is in now, for `deployed_model`.
fn on_deleted(
    s: &mut Builder<'_>,
    deployed_model: &str,
    result: &Result<DeploymentState, ApiError>,
) {
    let r = s.r();
    let dm = r.status.deployed_model.clone().unwrap_or_default();
    match result {
        Ok(state) => {
            s.plan = "delete";
            // A deployment found by its token (a create whose answer was lost) is not recorded:
            // the intent stays, so the next pass lists again for any other that carries it.
            if r.status.deployed_model.is_some() {
                s.mirror_state(state);
            }
            s.next.phase = Some(DeploymentPhase::Deleting);
            s.event(
                EventType::Normal,
                Happening::Deleted,
                Action::DeleteDeployment,
                format!("Deleting deployment {deployed_model}"),
            );
            s.reason(
                R::DeploymentDeleting {
                    deployed_model: deployed_model.to_string(),
                    ours: true,
                },
                Requeue::Poll,
            );
        }
        Err(ApiError::NotFound(_)) if r.status.deployed_model.is_some() => release(s, &dm),
        // Gone already; the next pass lists again for another that carries the token.
        Err(ApiError::NotFound(_)) => s.requeue = Requeue::Poll,
        Err(e @ ApiError::OperationDenied(_)) => {
            s.plan = "delete";
            s.reason(
                R::DeletionBlocked {
                    deployed_model: dm,
                    error: e.to_string(),
                },
                Requeue::Poll,
            )
        }
        Err(e) => {
            s.plan = "delete";
            s.api_error(e);
        }
    }
}

/// The remote deployment is gone: let the resource go.
fn release(s: &mut Builder<'_>, dm: &str) {
    s.plan = "release";
    s.act = Act::RemoveFinalizer;
    s.requeue = Requeue::Never;
    if !dm.is_empty() {
        s.event(
            EventType::Normal,
            Happening::Deleted,
            Action::DeleteDeployment,
            format!("Deployment {dm} is gone from Model Studio"),
        );
    }
}

fn on_deleting(s: &mut Builder<'_>) {
    let r = s.r();
    if !r.has_finalizer {
        return;
    }
    s.next.phase = Some(DeploymentPhase::Deleting);
    let dm = r.status.deployed_model.clone();
    // Paused (it never blocks its deletion), observed or orphaned: the deployment is let go,
    // uncalled, and an event says what stays.
    let let_go = if r.control.paused {
        Some((
            EventType::Warning,
            " undeleted: the resource is paused (modelstudio.io/paused), so its deletion makes \
             no call; it is still billed",
        ))
    } else if r.spec.management == ManagementPolicy::Observe {
        Some((
            EventType::Normal,
            ": managementPolicy Observe never deletes it",
        ))
    } else if r.spec.deletion_policy == DeletionPolicy::Orphan {
        Some((
            EventType::Normal,
            " (deletionPolicy Orphan): it is still billed",
        ))
    } else {
        None
    };
    if let Some((type_, why)) = let_go {
        s.plan = "release";
        s.act = Act::RemoveFinalizer;
        if let Some(dm) = dm {
            s.event(
                type_,
                Happening::Orphaned,
                Action::DeleteDeployment,
                format!("Left deployment {dm} in Model Studio{why}"),
            );
        }
        return;
    }
    if dm.is_none() && r.status.create_attempted_at.is_none() {
        release(s, "");
        return;
    }
    if credentials_problem(s) {
        return;
    }
    s.plan = "delete";
    match (&s.obs.seen, dm) {
        (Some(Seen::Deployment(Ok(d))), Some(dm)) => {
            s.mirror(d);
            s.next.phase = Some(DeploymentPhase::Deleting);
            s.reason(
                R::DeploymentDeleting {
                    deployed_model: dm.clone(),
                    ours: true,
                },
                Requeue::Poll,
            );
            if d.status != DeploymentState::Deleting {
                s.act = Act::Delete { deployed_model: dm };
            }
        }
        (Some(Seen::Deployment(Err(ApiError::NotFound(_)))), Some(dm)) => {
            match workspace_changed(s, &dm) {
                Some(changed) => s.reason(changed, Requeue::Resync),
                None => release(s, &dm),
            }
        }
        (Some(Seen::Deployment(Err(e))), _) => s.api_error(e),
        (Some(Seen::Listing(Ok(list))), None) => {
            // A create whose answer was lost: every deployment that carries the token is ours.
            let display = r
                .status
                .display_name
                .clone()
                .unwrap_or_else(|| display_name(r));
            let ours: Vec<&Deployment> = list
                .iter()
                .filter(|d| d.name.as_deref().map(str::trim) == Some(display.trim()))
                .collect();
            if let Some(d) = ours.iter().find(|d| d.status != DeploymentState::Deleting) {
                s.reason(
                    R::DeploymentDeleting {
                        deployed_model: d.deployed_model.clone(),
                        ours: true,
                    },
                    Requeue::Poll,
                );
                s.act = Act::Delete {
                    deployed_model: d.deployed_model.clone(),
                };
            } else if let Some(d) = ours.first() {
                s.reason(
                    R::DeploymentDeleting {
                        deployed_model: d.deployed_model.clone(),
                        ours: true,
                    },
                    Requeue::Poll,
                );
            } else if nothing_made(s, &display) {
                release(s, "");
            }
        }
        (Some(Seen::Listing(Err(e))), _) => s.api_error(e),
        _ => {}
    }
}
