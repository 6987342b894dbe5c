//! The Model Studio deployment API in domain terms (reference §11): what a create asks for, a
//! deployment as the service reports it, its states, and the [`Deployments`] trait that the HTTP
//! client, the rate-limit and metrics layers and the in-memory fake implement. Errors and the key
//! are shared with the import API (`crate::api`: [`ApiError`], [`ApiKey`]): both APIs share their
//! conventions (§2, §6).
//! The wire format is the HTTP client's business, not this module's.

use crate::api::{ApiError, ApiKey, Operation, Page};
use async_trait::async_trait;
use std::fmt;
use std::time::Duration;

/// The largest capacity the service accepts (it must be below this).
pub const CAPACITY_LIMIT: u32 = 1000;
/// The longest suffix, in characters.
pub const MAX_SUFFIX_CHARS: usize = 8;

/// How a deployment is billed and provisioned. Leaving the plan out means compute-unit billing.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Plan {
    /// Provisioned throughput: sized by `ptu_capacity`, not by `capacity`.
    Ptu,
    /// Model units: needs a `deploy_spec` such as `MU1`.
    Mu,
    /// LoRA adapters: `capacity` is required but ignored, and it cannot be scaled by the API.
    Lora,
    /// Compute units.
    Cu,
    /// A plan the reference does not document; kept as sent.
    Unknown(String),
}

impl Plan {
    /// Reads a plan as the service spells it (any case).
    pub fn parse(s: &str) -> Self {
        match s.trim().to_ascii_lowercase().as_str() {
            "ptu" => Plan::Ptu,
            "mu" => Plan::Mu,
            "lora" => Plan::Lora,
            "cu" => Plan::Cu,
            _ => Plan::Unknown(s.to_string()),
        }
    }

    /// The plan as the service spells it.
    pub fn spelling(&self) -> &str {
        match self {
            Plan::Ptu => "ptu",
            Plan::Mu => "mu",
            Plan::Lora => "lora",
            Plan::Cu => "cu",
            Plan::Unknown(s) => s,
        }
    }

    /// Whether `PUT .../scale` may change the capacity: not for `lora` (the reference sends that
    /// to a console ticket).
    pub fn can_scale(&self) -> bool {
        !matches!(self, Plan::Lora)
    }
}

/// The throughput of a `ptu` deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PtuCapacity {
    /// Input tokens per minute.
    pub input_tpm: u64,
    /// Output tokens per minute.
    pub output_tpm: u64,
}

/// What a create asks for (`POST /api/v1/deployments`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewDeployment {
    /// The model to deploy; for an imported model, the name the import generated.
    pub model_name: String,
    /// Units, a multiple of the model's base capacity and below [`CAPACITY_LIMIT`]; required
    /// except for `ptu`, where `ptu_capacity` sizes the deployment.
    pub capacity: Option<u32>,
    /// `None`: compute-unit billing, the service's default.
    pub plan: Option<Plan>,
    /// Required for `mu`, e.g. `MU1`.
    pub deploy_spec: Option<String>,
    /// Required for `ptu`.
    pub ptu_capacity: Option<PtuCapacity>,
    /// Display name.
    pub name: Option<String>,
    /// At most [`MAX_SUFFIX_CHARS`]; needed to deploy a model a second time.
    pub suffix: Option<String>,
    pub enable_thinking: Option<bool>,
    pub max_context_length: Option<u64>,
    pub rpm_limit: Option<u64>,
    pub tpm_limit: Option<u64>,
}

impl NewDeployment {
    /// Every rule of the reference this request breaks that can be checked without the service
    /// (the base capacity is the service's to check), each saying what to fix. Empty: send it.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.model_name.trim().is_empty() {
            problems.push("model_name is required: the model to deploy".to_string());
        }
        match (&self.plan, self.capacity) {
            (Some(Plan::Ptu), _) => {}
            (_, None) => problems.push(
                "capacity is required (a multiple of the model's base capacity; also for plan lora, which ignores it)"
                    .to_string(),
            ),
            (_, Some(c)) if c >= CAPACITY_LIMIT => problems.push(format!(
                "capacity must be below {CAPACITY_LIMIT}, not {c}"
            )),
            _ => {}
        }
        if self.plan == Some(Plan::Mu)
            && self
                .deploy_spec
                .as_deref()
                .is_none_or(|s| s.trim().is_empty())
        {
            problems.push("deploy_spec is required for plan mu (e.g. MU1)".to_string());
        }
        if self.plan == Some(Plan::Ptu) {
            match self.ptu_capacity {
                None => problems.push(
                    "ptu_capacity (input_tpm and output_tpm) is required for plan ptu".to_string(),
                ),
                Some(p) if p.input_tpm == 0 || p.output_tpm == 0 => problems.push(
                    "ptu_capacity.input_tpm and ptu_capacity.output_tpm must be positive"
                        .to_string(),
                ),
                Some(_) => {}
            }
        }
        if let Some(Plan::Unknown(p)) = &self.plan {
            problems.push(format!("plan must be ptu, mu, lora or cu, not {p:?}"));
        }
        if let Some(suffix) = &self.suffix {
            if let Err(e) = check_suffix(suffix) {
                problems.push(e);
            }
        }
        for (field, value) in [
            ("max_context_length", self.max_context_length),
            ("rpm_limit", self.rpm_limit),
            ("tpm_limit", self.tpm_limit),
        ] {
            if value == Some(0) {
                problems.push(format!("{field} must be positive when set"));
            }
        }
        problems
    }

    /// The name the deployment will have: the model name, plus `-suffix` when there is one.
    pub fn deployed_model(&self) -> String {
        deployed_model_name(&self.model_name, self.suffix.as_deref())
    }
}

/// The name of a deployment of `model_name` with `suffix`.
pub fn deployed_model_name(model_name: &str, suffix: Option<&str>) -> String {
    match suffix.filter(|s| !s.is_empty()) {
        Some(suffix) => format!("{model_name}-{suffix}"),
        None => model_name.to_string(),
    }
}

/// A suffix the reference allows: 1 to [`MAX_SUFFIX_CHARS`] characters, none that would change
/// a URL path.
pub fn check_suffix(suffix: &str) -> Result<(), String> {
    let chars = suffix.chars().count();
    if chars == 0 || chars > MAX_SUFFIX_CHARS {
        return Err(format!(
            "suffix must be 1 to {MAX_SUFFIX_CHARS} characters, not {chars}"
        ));
    }
    if suffix
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '/' | '?' | '#' | '%'))
    {
        return Err("suffix must not contain whitespace, '/', '?', '#' or '%'".to_string());
    }
    Ok(())
}

/// Whether `capacity` fits a model of `base_capacity`: below [`CAPACITY_LIMIT`] and a multiple
/// of the base (a base of 0, which no model documents, only allows 0).
pub fn check_capacity(capacity: u32, base_capacity: u32) -> Result<(), String> {
    if capacity >= CAPACITY_LIMIT {
        return Err(format!(
            "capacity must be below {CAPACITY_LIMIT}, not {capacity}"
        ));
    }
    // A base of 0 (which no model documents) only fits 0.
    if !capacity.is_multiple_of(base_capacity) {
        return Err(format!(
            "capacity must be a multiple of the model's base capacity {base_capacity}, not {capacity}"
        ));
    }
    Ok(())
}

/// New request limits: at least one of the two, so an empty update cannot be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    rpm_limit: Option<u64>,
    tpm_limit: Option<u64>,
}

impl Limits {
    /// `None` when both are `None`: the service needs at least one.
    pub fn new(rpm_limit: Option<u64>, tpm_limit: Option<u64>) -> Option<Self> {
        (rpm_limit.is_some() || tpm_limit.is_some()).then_some(Limits {
            rpm_limit,
            tpm_limit,
        })
    }

    /// Requests per minute.
    pub fn rpm_limit(&self) -> Option<u64> {
        self.rpm_limit
    }

    /// Tokens per minute.
    pub fn tpm_limit(&self) -> Option<u64> {
        self.tpm_limit
    }
}

/// A deployment's state. Spelling, any case, as in the reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DeploymentState {
    /// Being created.
    Pending,
    /// Being created, past the queue: the official SDK's state between PENDING and RUNNING (its
    /// CLI waits while a deployment is PENDING or DEPLOYING); the reference does not list it.
    Deploying,
    /// Being scaled or changed; it keeps serving at its former capacity.
    Updating,
    /// Serving.
    Running,
    /// Stopped from the console; not billed.
    Stopped,
    /// Being deleted; afterwards the service no longer finds it.
    Deleting,
    Failed,
    /// A status the reference does not document; kept as sent.
    Unknown(String),
}

impl DeploymentState {
    pub fn parse(s: &str) -> Self {
        match s.trim().to_ascii_uppercase().as_str() {
            "PENDING" => DeploymentState::Pending,
            "DEPLOYING" => DeploymentState::Deploying,
            "UPDATING" => DeploymentState::Updating,
            "RUNNING" => DeploymentState::Running,
            "STOPPED" => DeploymentState::Stopped,
            "DELETING" => DeploymentState::Deleting,
            "FAILED" => DeploymentState::Failed,
            _ => DeploymentState::Unknown(s.to_string()),
        }
    }

    pub fn spelling(&self) -> &str {
        match self {
            DeploymentState::Pending => "PENDING",
            DeploymentState::Deploying => "DEPLOYING",
            DeploymentState::Updating => "UPDATING",
            DeploymentState::Running => "RUNNING",
            DeploymentState::Stopped => "STOPPED",
            DeploymentState::Deleting => "DELETING",
            DeploymentState::Failed => "FAILED",
            DeploymentState::Unknown(s) => s,
        }
    }

    /// PENDING, DEPLOYING, UPDATING and DELETING move on by themselves: keep polling.
    pub fn is_transitional(&self) -> bool {
        matches!(
            self,
            DeploymentState::Pending
                | DeploymentState::Deploying
                | DeploymentState::Updating
                | DeploymentState::Deleting
        )
    }
}

impl fmt::Display for DeploymentState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.spelling())
    }
}

/// A deployment as the service reported it. Only the name and the status are certain; the rest
/// is what the answer carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    /// The deployment's unique name: the path parameter of every later call.
    pub deployed_model: String,
    /// Display name.
    pub name: Option<String>,
    /// The deployed model.
    pub model_name: Option<String>,
    pub base_model: Option<String>,
    pub status: DeploymentState,
    /// The status exactly as the service spelt it.
    pub status_text: String,
    pub plan: Option<Plan>,
    pub capacity: Option<u32>,
    pub base_capacity: Option<u32>,
    /// The units serving now; equal to `capacity` once a create or scale is done.
    pub ready_capacity: Option<u32>,
    pub rpm_limit: Option<u64>,
    pub tpm_limit: Option<u64>,
    pub enable_thinking: Option<bool>,
    pub max_context_length: Option<u64>,
    /// As the service wrote it (the deployment API writes no zone, e.g. `2025-06-17T11:00:38.68`).
    pub gmt_create: Option<String>,
    pub gmt_modified: Option<String>,
}

impl Deployment {
    /// RUNNING with every asked unit serving: what "ready" means for a deployment.
    pub fn is_ready_at(&self, capacity: u32) -> bool {
        self.status == DeploymentState::Running
            && self.capacity == Some(capacity)
            && self.ready_capacity.is_none_or(|ready| ready >= capacity)
    }
}

/// Paging of a listing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PageRequest {
    /// 1-based page number.
    pub page_no: Option<u32>,
    pub page_size: Option<u32>,
}

/// One page of a listing of deployments.
pub type DeploymentPage = Page<Deployment>;

/// The operations of the deployment API. Implemented by the HTTP client, by the layers that wrap
/// it (rate limiting, metrics, sharing the import API's quota), and by the in-memory fake.
#[async_trait]
pub trait Deployments: Send + Sync {
    /// `POST /api/v1/deployments`. Not idempotent: a repeat answers `Conflict` (same name) or
    /// makes a second deployment (new suffix); never retry blindly.
    async fn create(
        &self,
        key: &ApiKey,
        deployment: &NewDeployment,
    ) -> Result<Deployment, ApiError>;
    /// `GET /api/v1/deployments/{deployed_model}`.
    async fn get(&self, key: &ApiKey, deployed_model: &str) -> Result<Deployment, ApiError>;
    /// `GET /api/v1/deployments`: one page.
    async fn list(&self, key: &ApiKey, page: &PageRequest) -> Result<DeploymentPage, ApiError>;
    /// `PUT /api/v1/deployments/{deployed_model}/scale`. `Unsupported` for plan `lora`.
    async fn scale(
        &self,
        key: &ApiKey,
        deployed_model: &str,
        capacity: u32,
    ) -> Result<Deployment, ApiError>;
    /// `PUT /api/v1/deployments/{deployed_model}/update`.
    async fn update_limits(
        &self,
        key: &ApiKey,
        deployed_model: &str,
        limits: &Limits,
    ) -> Result<Deployment, ApiError>;
    /// `DELETE /api/v1/deployments/{deployed_model}`: answers only the state the deployment is
    /// in now (DELETING), as the official SDK types the answer; a later get answers `NotFound`.
    async fn delete(&self, key: &ApiKey, deployed_model: &str)
        -> Result<DeploymentState, ApiError>;
    /// As `ImportJobs::pace` (the import API): when the quota is short, how long a call of
    /// `operation` should be held back; `None` to send it now.
    fn pace(&self, _key: &ApiKey, _operation: Operation) -> Option<Duration> {
        None
    }
}

/// A shared implementation is one too, so layers and the controller can hold it behind an `Arc`.
#[async_trait]
impl<T: Deployments + ?Sized> Deployments for std::sync::Arc<T> {
    async fn create(
        &self,
        key: &ApiKey,
        deployment: &NewDeployment,
    ) -> Result<Deployment, ApiError> {
        (**self).create(key, deployment).await
    }
    async fn get(&self, key: &ApiKey, deployed_model: &str) -> Result<Deployment, ApiError> {
        (**self).get(key, deployed_model).await
    }
    async fn list(&self, key: &ApiKey, page: &PageRequest) -> Result<DeploymentPage, ApiError> {
        (**self).list(key, page).await
    }
    async fn scale(
        &self,
        key: &ApiKey,
        deployed_model: &str,
        capacity: u32,
    ) -> Result<Deployment, ApiError> {
        (**self).scale(key, deployed_model, capacity).await
    }
    async fn update_limits(
        &self,
        key: &ApiKey,
        deployed_model: &str,
        limits: &Limits,
    ) -> Result<Deployment, ApiError> {
        (**self).update_limits(key, deployed_model, limits).await
    }
    async fn delete(
        &self,
        key: &ApiKey,
        deployed_model: &str,
    ) -> Result<DeploymentState, ApiError> {
        (**self).delete(key, deployed_model).await
    }
    fn pace(&self, key: &ApiKey, operation: Operation) -> Option<Duration> {
        (**self).pace(key, operation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> NewDeployment {
        NewDeployment {
            model_name: "qwen3-32b-offline-20260101-ab12".into(),
            capacity: Some(2),
            plan: Some(Plan::Lora),
            ..Default::default()
        }
    }

    fn problems_of(change: impl FnOnce(&mut NewDeployment)) -> Vec<String> {
        let mut d = valid();
        change(&mut d);
        d.problems()
    }

    #[test]
    fn a_valid_request_has_no_problems_and_each_broken_rule_says_what_to_fix() {
        assert!(valid().problems().is_empty());
        type Change = fn(&mut NewDeployment);
        let cases: [(Change, &str); 9] = [
            (|d| d.model_name = " ".into(), "model_name"),
            (|d| d.capacity = None, "capacity is required"),
            (|d| d.capacity = Some(1000), "below 1000"),
            (
                |d| {
                    d.plan = Some(Plan::Mu);
                    d.deploy_spec = Some("".into())
                },
                "deploy_spec",
            ),
            (|d| d.plan = Some(Plan::Ptu), "ptu_capacity"),
            (
                |d| {
                    d.plan = Some(Plan::Ptu);
                    d.ptu_capacity = Some(PtuCapacity {
                        input_tpm: 0,
                        output_tpm: 1,
                    })
                },
                "positive",
            ),
            (|d| d.plan = Some(Plan::parse("gold")), "plan must be"),
            (|d| d.suffix = Some("123456789".into()), "1 to 8"),
            (|d| d.rpm_limit = Some(0), "rpm_limit"),
        ];
        for (change, words) in cases {
            let problems = problems_of(change);
            assert_eq!(problems.len(), 1, "{problems:?}");
            assert!(problems[0].contains(words), "{problems:?} lacks {words}");
        }
        // ptu is sized by ptu_capacity: no capacity needed.
        assert!(problems_of(|d| {
            d.plan = Some(Plan::Ptu);
            d.capacity = None;
            d.ptu_capacity = Some(PtuCapacity {
                input_tpm: 10_000,
                output_tpm: 1_000,
            });
        })
        .is_empty());
    }

    #[test]
    fn capacity_is_a_multiple_of_the_base_below_the_limit() {
        assert!(check_capacity(0, 8).is_ok());
        assert!(check_capacity(16, 8).is_ok());
        assert!(check_capacity(999, 1).is_ok());
        assert!(check_capacity(12, 8).unwrap_err().contains("multiple"));
        assert!(check_capacity(1000, 1).unwrap_err().contains("below 1000"));
        assert!(check_capacity(1, 0).is_err());
        assert!(check_capacity(0, 0).is_ok());
    }

    #[test]
    fn suffixes_and_names() {
        assert!(check_suffix("v2").is_ok());
        assert!(check_suffix("12345678").is_ok());
        assert!(
            check_suffix("模型模型模型模型").is_ok(),
            "characters, not bytes"
        );
        assert!(check_suffix("").is_err());
        assert!(check_suffix("a/b").is_err());
        assert!(check_suffix("a b").is_err());
        assert_eq!(deployed_model_name("m", Some("v2")), "m-v2");
        assert_eq!(deployed_model_name("m", Some("")), "m");
        assert_eq!(deployed_model_name("m", None), "m");
        let d = NewDeployment {
            suffix: Some("x".into()),
            ..valid()
        };
        assert_eq!(d.deployed_model(), "qwen3-32b-offline-20260101-ab12-x");
    }

    #[test]
    fn limits_need_at_least_one() {
        assert_eq!(Limits::new(None, None), None);
        let l = Limits::new(Some(10), None).unwrap();
        assert_eq!((l.rpm_limit(), l.tpm_limit()), (Some(10), None));
        assert!(Limits::new(None, Some(5)).is_some());
    }

    #[test]
    fn states_and_plans_read_as_spelt() {
        for s in [
            "PENDING",
            "DEPLOYING",
            "UPDATING",
            "RUNNING",
            "STOPPED",
            "DELETING",
            "FAILED",
        ] {
            let state = DeploymentState::parse(s);
            assert!(!matches!(state, DeploymentState::Unknown(_)), "{s}");
            assert_eq!(state.spelling(), s);
            assert_eq!(DeploymentState::parse(&s.to_lowercase()), state);
        }
        assert_eq!(
            DeploymentState::parse("PAUSED"),
            DeploymentState::Unknown("PAUSED".into())
        );
        assert!(DeploymentState::Updating.is_transitional());
        assert!(DeploymentState::Deploying.is_transitional());
        assert!(!DeploymentState::Stopped.is_transitional());
        for p in ["ptu", "mu", "lora", "cu"] {
            assert_eq!(Plan::parse(p).spelling(), p);
        }
        assert_eq!(Plan::parse("LoRA"), Plan::Lora);
        assert!(!Plan::Lora.can_scale());
        assert!(Plan::Mu.can_scale());
    }

    #[test]
    fn ready_means_running_at_the_asked_capacity() {
        let d = Deployment {
            deployed_model: "m".into(),
            name: None,
            model_name: None,
            base_model: None,
            status: DeploymentState::Running,
            status_text: "RUNNING".into(),
            plan: None,
            capacity: Some(4),
            base_capacity: Some(2),
            ready_capacity: Some(4),
            rpm_limit: None,
            tpm_limit: None,
            enable_thinking: None,
            max_context_length: None,
            gmt_create: None,
            gmt_modified: None,
        };
        assert!(d.is_ready_at(4));
        assert!(!d.is_ready_at(6));
        let scaling = Deployment {
            status: DeploymentState::Updating,
            ..d.clone()
        };
        assert!(!scaling.is_ready_at(4));
        let partly = Deployment {
            ready_capacity: Some(2),
            ..d
        };
        assert!(!partly.is_ready_at(4));
    }

    #[test]
    fn paging_stops_at_total() {
        let page = |page_no, total| DeploymentPage {
            total,
            page_no,
            page_size: 10,
            items: vec![],
        };
        assert!(page(1, 11).has_more());
        assert!(!page(2, 11).has_more());
    }
}
