//! The in-memory deployment store and the deployment lifecycle (reference §11). Pure logic:
//! time and randomness come from the caller, so every rule is tested without HTTP or real clocks.
//!
//! Status is computed from the time since the last change (no background task): a create is
//! `PENDING` for `pending`, then `DEPLOYING` for `deploying` (0 by default: never), a scale `UPDATING` for `updating` (serving its former capacity
//! meanwhile), then `RUNNING`; a delete is `DELETING` for `deleting`, after which the
//! deployment is gone (get answers NotFound). `STOPPED` and `FAILED` come only from the control
//! API (stop and start are console operations, not REST ones), which can also hold `DEPLOYING`.

use std::fmt;
use std::time::{Duration, Instant};

use jiff::tz::TimeZone;
use jiff::Timestamp;
use rand::Rng;

use crate::control::{DeploymentRecord, PtuCapacityInfo};

pub const PENDING: &str = "PENDING";
/// Between PENDING and RUNNING, as the official SDK lists it; nothing serves yet.
pub const DEPLOYING: &str = "DEPLOYING";
pub const UPDATING: &str = "UPDATING";
pub const RUNNING: &str = "RUNNING";
pub const STOPPED: &str = "STOPPED";
pub const DELETING: &str = "DELETING";
pub const FAILED: &str = "FAILED";

/// Which deployments DELETE accepts: the reference's example deletes a live one, the official CLI
/// insists on STOPPED or FAILED first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeleteRule {
    /// Any deployment, as the documentation's example does.
    Any,
    /// Only STOPPED or FAILED ones, as the CLI checks; others answer OperationDenied.
    StoppedOrFailed,
}

/// Timers and rules shared by every deployment.
#[derive(Clone, Debug)]
pub struct Timers {
    pub pending: Duration,
    /// DEPLOYING after PENDING, before RUNNING.
    pub deploying: Duration,
    pub updating: Duration,
    pub deleting: Duration,
    pub delete_rule: DeleteRule,
}

/// Where a deployment is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Pending,
    Deploying,
    Updating,
    Running,
    Stopped,
    Failed,
    Deleting,
    /// Deleted and past DELETING: invisible to the API.
    Gone,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Pending => PENDING,
            Phase::Deploying => DEPLOYING,
            Phase::Updating => UPDATING,
            Phase::Running => RUNNING,
            Phase::Stopped => STOPPED,
            Phase::Failed => FAILED,
            Phase::Deleting => DELETING,
            Phase::Gone => DELETING,
        }
    }
}

/// A state set from outside the API (the console's stop, a failure, a slow deployment).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Held {
    Stopped,
    Failed,
    Deploying,
}

/// A change in progress: a create (PENDING, then DEPLOYING) or a scale (UPDATING).
#[derive(Clone, Debug)]
pub struct Transition {
    pub phase: Phase,
    pub since: Instant,
    /// The units serving while it lasts.
    pub serving: u32,
}

/// A validated create request.
#[derive(Clone, Debug, Default)]
pub struct NewDeployment {
    pub model_name: String,
    pub capacity: u32,
    pub plan: Option<String>,
    pub deploy_spec: Option<String>,
    pub ptu_capacity: Option<PtuCapacityInfo>,
    pub name: Option<String>,
    pub suffix: Option<String>,
    pub enable_thinking: Option<bool>,
    pub max_context_length: Option<u64>,
    pub rpm_limit: Option<u64>,
    pub tpm_limit: Option<u64>,
}

/// A model the workspace may deploy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deployable {
    pub model_name: String,
    pub base_model: String,
    pub base_capacity: u32,
}

#[derive(Clone, Debug)]
pub struct Deployment {
    /// The control API's handle (names repeat across workspaces and after deletion).
    pub id: String,
    pub workspace_id: String,
    pub deployed_model: String,
    pub name: String,
    pub model_name: String,
    pub base_model: String,
    pub plan: Option<String>,
    pub deploy_spec: Option<String>,
    pub ptu_capacity: Option<PtuCapacityInfo>,
    pub capacity: u32,
    pub base_capacity: u32,
    pub rpm_limit: Option<u64>,
    pub tpm_limit: Option<u64>,
    pub enable_thinking: Option<bool>,
    pub max_context_length: Option<u64>,
    pub gmt_create: Timestamp,
    pub gmt_modified: Timestamp,
    pub transition: Option<Transition>,
    pub held: Option<Held>,
    pub deleting_since: Option<Instant>,
    /// DELETING was ended early by the control API.
    pub gone: bool,
    pub lost_answer: bool,
    pub created_by: Option<String>,
}

/// Still within a phase of `length` that began at `since`: at its first instant even when the
/// length is zero, as a job is PENDING at its creation instant.
fn within(since: Instant, length: Duration, now: Instant) -> bool {
    let elapsed = now.saturating_duration_since(since);
    elapsed.is_zero() || elapsed < length
}

impl Deployment {
    pub fn phase(&self, t: &Timers, now: Instant) -> Phase {
        if let Some(since) = self.deleting_since {
            return if !self.gone && within(since, t.deleting, now) {
                Phase::Deleting
            } else {
                Phase::Gone
            };
        }
        match self.held {
            Some(Held::Stopped) => return Phase::Stopped,
            Some(Held::Failed) => return Phase::Failed,
            Some(Held::Deploying) => return Phase::Deploying,
            None => {}
        }
        match &self.transition {
            Some(tr) if tr.phase == Phase::Pending => {
                if within(tr.since, t.pending, now) {
                    Phase::Pending
                } else if now.saturating_duration_since(tr.since)
                    < t.pending.saturating_add(t.deploying)
                {
                    Phase::Deploying
                } else {
                    Phase::Running
                }
            }
            Some(tr) if within(tr.since, t.updating, now) => tr.phase,
            _ => Phase::Running,
        }
    }

    pub fn status(&self, t: &Timers, now: Instant) -> &'static str {
        self.phase(t, now).as_str()
    }

    /// The units serving now.
    pub fn ready_capacity(&self, t: &Timers, now: Instant) -> u32 {
        match self.phase(t, now) {
            Phase::Running => self.capacity,
            Phase::Pending | Phase::Updating => self.transition.as_ref().map_or(0, |tr| tr.serving),
            Phase::Deploying | Phase::Stopped | Phase::Failed | Phase::Deleting | Phase::Gone => 0,
        }
    }

    fn is_plan(&self, plan: &str) -> bool {
        self.plan.as_deref() == Some(plan)
    }

    pub fn record(&self, t: &Timers, now: Instant) -> DeploymentRecord {
        DeploymentRecord {
            id: self.id.clone(),
            workspace_id: self.workspace_id.clone(),
            deployed_model: self.deployed_model.clone(),
            name: self.name.clone(),
            model_name: self.model_name.clone(),
            base_model: self.base_model.clone(),
            plan: self.plan.clone(),
            deploy_spec: self.deploy_spec.clone(),
            ptu_capacity: self.ptu_capacity,
            capacity: self.capacity,
            base_capacity: self.base_capacity,
            ready_capacity: self.ready_capacity(t, now),
            rpm_limit: self.rpm_limit,
            tpm_limit: self.tpm_limit,
            enable_thinking: self.enable_thinking,
            max_context_length: self.max_context_length,
            status: self.status(t, now).to_owned(),
            gmt_create: format_time(self.gmt_create),
            gmt_modified: format_time(self.gmt_modified),
            deleted: self.phase(t, now) == Phase::Gone,
            lost_answer: self.lost_answer,
            created_by: self.created_by.clone(),
        }
    }
}

/// The deployment API's time format: no zone, e.g. `2025-06-17T11:00:38.680` (UTC here).
pub fn format_time(ts: Timestamp) -> String {
    ts.to_zoned(TimeZone::UTC)
        .strftime("%Y-%m-%dT%H:%M:%S%.3f")
        .to_string()
}

/// Why a call on a deployment was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No live deployment of this name in the workspace.
    NotFound,
    /// A live deployment has the name already.
    Conflict(String),
    /// Bad input; says what to fix.
    Invalid(String),
    /// Not in the current state; says which state and what is needed.
    Denied(String),
    /// Never for this deployment (its plan).
    Unsupported(String),
}

/// Why the control API could not set a deployment's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StateError {
    NotFound,
    Deleted,
    InvalidStatus(String),
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFound => f.write_str("no deployment has this id"),
            Self::Deleted => f.write_str("the deployment is being deleted or gone"),
            Self::InvalidStatus(s) => write!(
                f,
                "status must be RUNNING, STOPPED, FAILED or DEPLOYING, not {:?}",
                s.chars().take(40).collect::<String>()
            ),
        }
    }
}

impl std::error::Error for StateError {}

/// Every deployment of every workspace, deleted ones included (for the control API).
#[derive(Debug, Default)]
pub struct DeploymentStore {
    deployments: Vec<Deployment>,
}

impl DeploymentStore {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn all(&self) -> &[Deployment] {
        &self.deployments
    }

    fn live_position(
        &self,
        workspace_id: &str,
        deployed_model: &str,
        t: &Timers,
        now: Instant,
    ) -> Option<usize> {
        self.deployments.iter().position(|d| {
            d.workspace_id == workspace_id
                && d.deployed_model == deployed_model
                && d.phase(t, now) != Phase::Gone
        })
    }

    /// A deployment the API can see.
    pub fn get(
        &self,
        workspace_id: &str,
        deployed_model: &str,
        t: &Timers,
        now: Instant,
    ) -> Option<&Deployment> {
        self.live_position(workspace_id, deployed_model, t, now)
            .map(|i| &self.deployments[i])
    }

    #[allow(clippy::too_many_arguments)]
    pub fn create(
        &mut self,
        workspace_id: &str,
        request: NewDeployment,
        model: &Deployable,
        created_by: Option<String>,
        t: &Timers,
        rng: &mut impl Rng,
        now: Instant,
        wall: Timestamp,
    ) -> Result<&Deployment, Refusal> {
        let deployed_model = match request.suffix.as_deref().filter(|s| !s.is_empty()) {
            Some(suffix) => format!("{}-{suffix}", request.model_name),
            None => request.model_name.clone(),
        };
        if self
            .live_position(workspace_id, &deployed_model, t, now)
            .is_some()
        {
            return Err(Refusal::Conflict(format!(
                "Deployed model {deployed_model} already exists, please specify a suffix."
            )));
        }
        let plan_is_ptu = request.plan.as_deref() == Some("ptu");
        if !plan_is_ptu && request.plan.as_deref() != Some("lora") {
            if let Err(e) = check_capacity(request.capacity, model.base_capacity) {
                return Err(Refusal::Invalid(e));
            }
        }
        let wall = Timestamp::from_millisecond(wall.as_millisecond()).unwrap_or(wall);
        let deployment = Deployment {
            id: crate::jobs::new_uuid(rng),
            workspace_id: workspace_id.to_owned(),
            name: request
                .name
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| deployed_model.clone()),
            deployed_model,
            model_name: request.model_name,
            base_model: model.base_model.clone(),
            plan: request.plan,
            deploy_spec: request.deploy_spec,
            ptu_capacity: request.ptu_capacity,
            capacity: request.capacity,
            base_capacity: model.base_capacity,
            rpm_limit: request.rpm_limit,
            tpm_limit: request.tpm_limit,
            enable_thinking: request.enable_thinking,
            max_context_length: request.max_context_length,
            gmt_create: wall,
            gmt_modified: wall,
            transition: Some(Transition {
                phase: Phase::Pending,
                since: now,
                serving: 0,
            }),
            held: None,
            deleting_since: None,
            gone: false,
            lost_answer: false,
            created_by,
        };
        self.deployments.push(deployment);
        Ok(&self.deployments[self.deployments.len() - 1])
    }

    /// Every live deployment of the workspace, newest first, one page of them, and the total.
    pub fn list(
        &self,
        workspace_id: &str,
        page_no: u64,
        page_size: u64,
        t: &Timers,
        now: Instant,
    ) -> (u64, Vec<&Deployment>) {
        let mut live: Vec<&Deployment> = self
            .deployments
            .iter()
            .filter(|d| d.workspace_id == workspace_id && d.phase(t, now) != Phase::Gone)
            .collect();
        // Newest first: pushed in creation order.
        live.reverse();
        let total = live.len() as u64;
        let skip = page_no.saturating_sub(1).saturating_mul(page_size);
        let page = live
            .into_iter()
            .skip(usize::try_from(skip).unwrap_or(usize::MAX))
            .take(usize::try_from(page_size).unwrap_or(usize::MAX))
            .collect();
        (total, page)
    }

    /// Changes the capacity: UPDATING at the former capacity, then RUNNING at the new one.
    pub fn scale(
        &mut self,
        workspace_id: &str,
        deployed_model: &str,
        capacity: u32,
        t: &Timers,
        now: Instant,
        wall: Timestamp,
    ) -> Result<&Deployment, Refusal> {
        let i = self
            .live_position(workspace_id, deployed_model, t, now)
            .ok_or(Refusal::NotFound)?;
        let d = &mut self.deployments[i];
        if d.is_plan("lora") {
            return Err(Refusal::Unsupported(format!(
                "Deployment {deployed_model} uses plan lora, whose capacity cannot be changed through the API; submit a ticket in the console to scale it."
            )));
        }
        if d.is_plan("ptu") {
            return Err(Refusal::Invalid(
                "Invalid parameter capacity: a ptu deployment is sized by ptu_capacity, not capacity.".into(),
            ));
        }
        let phase = d.phase(t, now);
        if phase != Phase::Running {
            return Err(Refusal::Denied(format!(
                "Deployment {deployed_model} is {} and cannot be scaled now; wait until it is RUNNING.",
                phase.as_str()
            )));
        }
        check_capacity(capacity, d.base_capacity).map_err(Refusal::Invalid)?;
        if capacity != d.capacity {
            d.transition = Some(Transition {
                phase: Phase::Updating,
                since: now,
                serving: d.capacity,
            });
            d.capacity = capacity;
            d.gmt_modified = wall;
        }
        Ok(d)
    }

    /// Sets the request limits at once (no UPDATING): only plan `mu`, only when RUNNING.
    #[allow(clippy::too_many_arguments)]
    pub fn update_limits(
        &mut self,
        workspace_id: &str,
        deployed_model: &str,
        rpm_limit: Option<u64>,
        tpm_limit: Option<u64>,
        t: &Timers,
        now: Instant,
        wall: Timestamp,
    ) -> Result<&Deployment, Refusal> {
        let i = self
            .live_position(workspace_id, deployed_model, t, now)
            .ok_or(Refusal::NotFound)?;
        let d = &mut self.deployments[i];
        if !d.is_plan("mu") {
            return Err(Refusal::Unsupported(format!(
                "Deployment {deployed_model} uses plan {}; rpm_limit and tpm_limit can only be updated on plan mu deployments.",
                d.plan.as_deref().unwrap_or("(none)")
            )));
        }
        let phase = d.phase(t, now);
        if phase != Phase::Running {
            return Err(Refusal::Denied(format!(
                "Deployment {deployed_model} is {} and cannot be updated now; wait until it is RUNNING.",
                phase.as_str()
            )));
        }
        if rpm_limit.is_some() {
            d.rpm_limit = rpm_limit;
        }
        if tpm_limit.is_some() {
            d.tpm_limit = tpm_limit;
        }
        d.gmt_modified = wall;
        Ok(d)
    }

    /// Starts the deletion (DELETING, then gone); a deployment already DELETING is answered as
    /// it is, so a repeated DELETE is harmless.
    pub fn delete(
        &mut self,
        workspace_id: &str,
        deployed_model: &str,
        t: &Timers,
        now: Instant,
        wall: Timestamp,
    ) -> Result<&Deployment, Refusal> {
        let i = self
            .live_position(workspace_id, deployed_model, t, now)
            .ok_or(Refusal::NotFound)?;
        let d = &mut self.deployments[i];
        let phase = d.phase(t, now);
        if phase == Phase::Deleting {
            return Ok(d);
        }
        if t.delete_rule == DeleteRule::StoppedOrFailed
            && !matches!(phase, Phase::Stopped | Phase::Failed)
        {
            return Err(Refusal::Denied(format!(
                "Deployment {deployed_model} is {} and cannot be deleted; only STOPPED or FAILED deployments can be deleted (stop it in the console first).",
                phase.as_str()
            )));
        }
        d.deleting_since = Some(now);
        d.gmt_modified = wall;
        Ok(d)
    }

    pub fn mark_lost(&mut self, id: &str) {
        if let Some(d) = self.deployments.iter_mut().find(|d| d.id == id) {
            d.lost_answer = true;
        }
    }

    /// Control API: holds a deployment STOPPED, FAILED or DEPLOYING, starts it again (RUNNING),
    /// and can end the change in progress (PENDING, DEPLOYING, UPDATING, DELETING) now.
    pub fn set_state(
        &mut self,
        id: &str,
        status: Option<&str>,
        finish_now: bool,
    ) -> Result<&Deployment, StateError> {
        let d = self
            .deployments
            .iter_mut()
            .find(|d| d.id == id)
            .ok_or(StateError::NotFound)?;
        if finish_now {
            d.transition = None;
            if d.deleting_since.is_some() {
                d.gone = true;
            }
        }
        if d.deleting_since.is_some() {
            return if status.is_none() {
                Ok(d)
            } else {
                Err(StateError::Deleted)
            };
        }
        match status {
            None => {}
            Some(RUNNING) => d.held = None,
            Some(STOPPED) => d.held = Some(Held::Stopped),
            Some(FAILED) => d.held = Some(Held::Failed),
            Some(DEPLOYING) => d.held = Some(Held::Deploying),
            Some(other) => return Err(StateError::InvalidStatus(other.to_owned())),
        }
        Ok(d)
    }
}

/// The reference's capacity rule: at most 999, a multiple of the model's base capacity.
pub fn check_capacity(capacity: u32, base_capacity: u32) -> Result<(), String> {
    if capacity >= 1000 {
        return Err(format!(
            "Invalid parameter capacity: must be greater than or equal to 0 and less than 1000, not {capacity}."
        ));
    }
    // A base of 0 only fits 0.
    if !capacity.is_multiple_of(base_capacity) {
        return Err(format!(
            "Invalid parameter capacity: must be a multiple of the model's base_capacity {base_capacity}, not {capacity}."
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn timers() -> Timers {
        Timers {
            pending: Duration::from_secs(10),
            deploying: Duration::ZERO,
            updating: Duration::from_secs(5),
            deleting: Duration::from_secs(3),
            delete_rule: DeleteRule::Any,
        }
    }

    fn model(base: u32) -> Deployable {
        Deployable {
            model_name: "m".into(),
            base_model: "qwen3-8b".into(),
            base_capacity: base,
        }
    }

    fn request(plan: &str, capacity: u32, suffix: Option<&str>) -> NewDeployment {
        NewDeployment {
            model_name: "m".into(),
            capacity,
            plan: Some(plan.into()),
            deploy_spec: (plan == "mu").then(|| "MU1".into()),
            suffix: suffix.map(str::to_owned),
            ..Default::default()
        }
    }

    struct Fixture {
        store: DeploymentStore,
        t: Timers,
        t0: Instant,
        rng: StdRng,
    }

    fn wall() -> Timestamp {
        "2025-06-17T11:00:38.68Z".parse().unwrap()
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    impl Fixture {
        fn new() -> Self {
            Self {
                store: DeploymentStore::new(),
                t: timers(),
                t0: Instant::now(),
                rng: StdRng::seed_from_u64(3),
            }
        }

        fn create(&mut self, req: NewDeployment, base: u32) -> Result<String, Refusal> {
            let t = self.t.clone();
            self.store
                .create(
                    "ws",
                    req,
                    &model(base),
                    None,
                    &t,
                    &mut self.rng,
                    self.t0,
                    wall(),
                )
                .map(|d| d.deployed_model.clone())
        }

        fn status(&self, name: &str, at: Duration) -> &'static str {
            self.store
                .get("ws", name, &self.t, self.t0 + at)
                .map_or("GONE", |d| d.status(&self.t, self.t0 + at))
        }
    }

    #[test]
    fn a_create_is_pending_then_running_at_its_capacity() {
        let mut f = Fixture::new();
        let name = f.create(request("mu", 4, None), 2).unwrap();
        assert_eq!(name, "m");
        let d = f.store.get("ws", "m", &f.t, f.t0).unwrap();
        assert_eq!(
            d.name, "m",
            "the display name defaults to the deployed name"
        );
        assert_eq!(d.ready_capacity(&f.t, f.t0), 0);
        assert_eq!(format_time(d.gmt_create), "2025-06-17T11:00:38.680");
        assert_eq!(f.status("m", secs(9)), PENDING);
        assert_eq!(f.status("m", secs(10)), RUNNING);
        let d = f.store.get("ws", "m", &f.t, f.t0 + secs(10)).unwrap();
        assert_eq!(d.ready_capacity(&f.t, f.t0 + secs(10)), 4);
        assert!(f.store.get("other", "m", &f.t, f.t0).is_none());
    }

    #[test]
    fn deploying_follows_pending_when_configured() {
        let mut f = Fixture::new();
        f.t.deploying = secs(4);
        f.create(request("mu", 4, None), 2).unwrap();
        let t = f.t.clone();
        assert_eq!(f.status("m", secs(9)), PENDING);
        assert_eq!(f.status("m", secs(10)), DEPLOYING);
        assert_eq!(f.status("m", secs(13)), DEPLOYING);
        let at = f.t0 + secs(13);
        let d = f.store.get("ws", "m", &t, at).unwrap();
        assert_eq!(
            d.ready_capacity(&t, at),
            0,
            "nothing serves while DEPLOYING"
        );
        let e = f.store.scale("ws", "m", 6, &t, at, wall()).unwrap_err();
        assert!(
            matches!(e, Refusal::Denied(ref m) if m.contains("DEPLOYING")),
            "{e:?}"
        );
        assert_eq!(f.status("m", secs(14)), RUNNING);
        // With no pending time either, DEPLOYING still shows PENDING's first instant.
        f.t.pending = Duration::ZERO;
        assert_eq!(f.status("m", Duration::ZERO), PENDING);
        assert_eq!(f.status("m", Duration::from_millis(1)), DEPLOYING);
    }

    #[test]
    fn the_control_api_holds_deploying_until_running() {
        let mut f = Fixture::new();
        f.create(request("mu", 2, None), 2).unwrap();
        let id = f.store.all()[0].id.clone();
        f.store.set_state(&id, Some(DEPLOYING), true).unwrap();
        assert_eq!(f.status("m", secs(600)), DEPLOYING);
        let (t, at) = (f.t.clone(), f.t0 + secs(600));
        assert_eq!(
            f.store
                .get("ws", "m", &t, at)
                .unwrap()
                .ready_capacity(&t, at),
            0
        );
        f.store.set_state(&id, Some(RUNNING), false).unwrap();
        assert_eq!(f.status("m", secs(600)), RUNNING);
    }

    #[test]
    fn the_same_model_again_needs_a_new_suffix() {
        let mut f = Fixture::new();
        f.create(request("lora", 1, None), 1).unwrap();
        let e = f.create(request("lora", 1, None), 1).unwrap_err();
        assert_eq!(
            e,
            Refusal::Conflict("Deployed model m already exists, please specify a suffix.".into())
        );
        assert_eq!(f.create(request("lora", 1, Some("v2")), 1).unwrap(), "m-v2");
        assert!(matches!(
            f.create(request("lora", 1, Some("v2")), 1),
            Err(Refusal::Conflict(_))
        ));
    }

    #[test]
    fn capacity_must_fit_the_base_except_for_lora_and_ptu() {
        let mut f = Fixture::new();
        let e = f.create(request("mu", 3, None), 2).unwrap_err();
        assert!(
            matches!(e, Refusal::Invalid(ref m) if m.contains("multiple of the model's base_capacity 2")),
            "{e:?}"
        );
        let e = f.create(request("mu", 1000, None), 1).unwrap_err();
        assert!(
            matches!(e, Refusal::Invalid(ref m) if m.contains("less than 1000")),
            "{e:?}"
        );
        // lora ignores the capacity, ptu is sized by ptu_capacity.
        f.create(request("lora", 3, None), 2).unwrap();
        f.create(request("ptu", 0, Some("p")), 8).unwrap();
        assert!(check_capacity(0, 8).is_ok());
        assert!(check_capacity(1, 0).is_err());
    }

    #[test]
    fn scale_updates_then_runs_at_the_new_capacity() {
        let mut f = Fixture::new();
        f.create(request("mu", 2, None), 2).unwrap();
        let (t, t0) = (f.t.clone(), f.t0);
        let e = f
            .store
            .scale("ws", "m", 4, &t, t0 + secs(1), wall())
            .unwrap_err();
        assert!(
            matches!(e, Refusal::Denied(ref m) if m.contains("PENDING")),
            "{e:?}"
        );
        let at = t0 + secs(10);
        let e = f.store.scale("ws", "m", 3, &t, at, wall()).unwrap_err();
        assert!(matches!(e, Refusal::Invalid(_)), "{e:?}");
        let d = f.store.scale("ws", "m", 6, &t, at, wall()).unwrap();
        assert_eq!(d.status(&t, at), UPDATING);
        assert_eq!((d.capacity, d.ready_capacity(&t, at)), (6, 2));
        assert_eq!(f.status("m", secs(14)), UPDATING);
        assert_eq!(f.status("m", secs(15)), RUNNING);
        let later = t0 + secs(15);
        assert_eq!(
            f.store
                .get("ws", "m", &t, later)
                .unwrap()
                .ready_capacity(&t, later),
            6
        );
        // The same capacity again changes nothing.
        let d = f.store.scale("ws", "m", 6, &t, later, wall()).unwrap();
        assert_eq!(d.status(&t, later), RUNNING);
        assert_eq!(
            f.store
                .scale("ws", "nope", 2, &t, later, wall())
                .unwrap_err(),
            Refusal::NotFound
        );
    }

    #[test]
    fn lora_cannot_scale_and_only_mu_updates_limits() {
        let mut f = Fixture::new();
        f.create(request("lora", 1, None), 1).unwrap();
        f.create(request("mu", 1, Some("mu")), 1).unwrap();
        let (t, at) = (f.t.clone(), f.t0 + secs(10));
        let e = f.store.scale("ws", "m", 2, &t, at, wall()).unwrap_err();
        assert!(
            matches!(e, Refusal::Unsupported(ref m) if m.contains("plan lora")),
            "{e:?}"
        );
        let e = f
            .store
            .update_limits("ws", "m", Some(1), None, &t, at, wall())
            .unwrap_err();
        assert!(
            matches!(e, Refusal::Unsupported(ref m) if m.contains("plan mu")),
            "{e:?}"
        );
        let d = f
            .store
            .update_limits("ws", "m-mu", None, Some(500), &t, at, wall())
            .unwrap();
        assert_eq!((d.rpm_limit, d.tpm_limit), (None, Some(500)));
        let d = f
            .store
            .update_limits("ws", "m-mu", Some(60), None, &t, at, wall())
            .unwrap();
        assert_eq!((d.rpm_limit, d.tpm_limit), (Some(60), Some(500)));
        assert_eq!(d.status(&t, at), RUNNING, "limits change without UPDATING");
    }

    #[test]
    fn delete_is_deleting_then_gone_and_the_name_is_free_again() {
        let mut f = Fixture::new();
        f.create(request("mu", 1, None), 1).unwrap();
        let (t, t0) = (f.t.clone(), f.t0);
        let d = f.store.delete("ws", "m", &t, t0 + secs(1), wall()).unwrap();
        assert_eq!(d.status(&t, t0 + secs(1)), DELETING);
        // Again while DELETING: the same answer.
        let d = f.store.delete("ws", "m", &t, t0 + secs(2), wall()).unwrap();
        assert_eq!(d.status(&t, t0 + secs(2)), DELETING);
        assert_eq!(f.status("m", secs(3)), DELETING);
        assert_eq!(f.status("m", secs(4)), "GONE");
        assert_eq!(
            f.store
                .delete("ws", "m", &t, t0 + secs(4), wall())
                .unwrap_err(),
            Refusal::NotFound
        );
        assert!(f.store.all()[0].record(&t, t0 + secs(4)).deleted);
        let (total, _) = f.store.list("ws", 1, 10, &t, t0 + secs(4));
        assert_eq!(total, 0);
    }

    #[test]
    fn the_strict_rule_deletes_only_stopped_or_failed() {
        let mut f = Fixture::new();
        f.t.delete_rule = DeleteRule::StoppedOrFailed;
        f.create(request("mu", 1, None), 1).unwrap();
        let (t, at) = (f.t.clone(), f.t0 + secs(10));
        let e = f.store.delete("ws", "m", &t, at, wall()).unwrap_err();
        assert!(
            matches!(e, Refusal::Denied(ref m) if m.contains("RUNNING") && m.contains("STOPPED or FAILED")),
            "{e:?}"
        );
        let id = f.store.all()[0].id.clone();
        f.store.set_state(&id, Some(STOPPED), false).unwrap();
        assert_eq!(f.status("m", secs(10)), STOPPED);
        f.store.delete("ws", "m", &t, at, wall()).unwrap();
        assert_eq!(
            f.store.set_state(&id, Some(RUNNING), false).unwrap_err(),
            StateError::Deleted
        );
    }

    #[test]
    fn the_control_api_ends_changes_now_and_holds_states() {
        let mut f = Fixture::new();
        f.create(request("mu", 1, None), 1).unwrap();
        let (t, t0) = (f.t.clone(), f.t0);
        let id = f.store.all()[0].id.clone();
        let d = f.store.set_state(&id, None, true).unwrap();
        assert_eq!(d.status(&t, t0 + secs(1)), RUNNING);
        f.store.set_state(&id, Some(FAILED), false).unwrap();
        assert_eq!(f.status("m", secs(1)), FAILED);
        assert_eq!(
            f.store.set_state(&id, Some("DONE"), false).unwrap_err(),
            StateError::InvalidStatus("DONE".into())
        );
        assert_eq!(
            f.store.set_state("nope", None, true).unwrap_err(),
            StateError::NotFound
        );
        f.store.set_state(&id, Some(RUNNING), false).unwrap();
        f.store.delete("ws", "m", &t, t0 + secs(2), wall()).unwrap();
        f.store.set_state(&id, None, true).unwrap();
        assert_eq!(f.status("m", secs(60)), "GONE");
    }

    #[test]
    fn list_is_newest_first_and_paged() {
        let mut f = Fixture::new();
        for i in 0..5 {
            f.create(request("lora", 1, Some(&format!("s{i}"))), 1)
                .unwrap();
        }
        let (t, t0) = (f.t.clone(), f.t0);
        let (total, page) = f.store.list("ws", 1, 2, &t, t0);
        assert_eq!(total, 5);
        let names: Vec<_> = page.iter().map(|d| d.deployed_model.as_str()).collect();
        assert_eq!(names, ["m-s4", "m-s3"]);
        let (_, last) = f.store.list("ws", 3, 2, &t, t0);
        assert_eq!(last.len(), 1);
        assert!(f.store.list("ws", u64::MAX, u64::MAX, &t, t0).1.is_empty());
        assert_eq!(f.store.list("other", 1, 10, &t, t0).0, 0);
    }
}
