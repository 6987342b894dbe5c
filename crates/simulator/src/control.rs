//! The control API under `/_simulator/` (no auth) and the JSON shapes it speaks.
//!
//! The types are `Serialize + Deserialize` so that tests and tools can read them back.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::api::ApiError;
use crate::deployments::StateError;
use crate::jobs::OutcomeError;
use crate::Simulator;

/// The fault settings, as read and written by `GET`/`PUT /_simulator/faults`.
///
/// A `PUT` replaces all of them: a field left out takes its default (no fault).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Delay added to every API call, in milliseconds.
    pub latency_ms: u64,
    /// Probability (0..=1) of a 429 `Throttling.RateQuota`.
    pub throttle_rate: f64,
    /// `Retry-After` header of the 429 answers, in seconds.
    pub retry_after_seconds: u64,
    /// Probability (0..=1) of a 500 `InternalError`.
    pub error_rate: f64,
    /// Probability (0..=1) that a successful create answers 500 although the job exists.
    pub lost_create_rate: f64,
    /// When set, the fault generator is re-seeded with it (repeatable fault sequences).
    pub seed: Option<u64>,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            latency_ms: 0,
            throttle_rate: 0.0,
            retry_after_seconds: 1,
            error_rate: 0.0,
            lost_create_rate: 0.0,
            seed: None,
        }
    }
}

impl Faults {
    /// Refuses probabilities outside 0..=1 (and NaN).
    pub fn validate(&self) -> Result<(), String> {
        for (name, rate) in [
            ("throttle_rate", self.throttle_rate),
            ("error_rate", self.error_rate),
            ("lost_create_rate", self.lost_create_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("{name} must be a number between 0 and 1"));
            }
        }
        Ok(())
    }

    /// Clamps probabilities into 0..=1 (NaN becomes 0), for callers that cannot fail.
    pub(crate) fn sanitized(mut self) -> Self {
        let clamp = |r: f64| if r.is_nan() { 0.0 } else { r.clamp(0.0, 1.0) };
        self.throttle_rate = clamp(self.throttle_rate);
        self.error_rate = clamp(self.error_rate);
        self.lost_create_rate = clamp(self.lost_create_rate);
        self
    }
}

/// The API endpoints that are counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    Create,
    Get,
    List,
    Delete,
    /// `POST /api/v1/deployments`.
    DeploymentCreate,
    /// `GET /api/v1/deployments/{deployed_model}`.
    DeploymentGet,
    /// `GET /api/v1/deployments`.
    DeploymentList,
    /// `PUT /api/v1/deployments/{deployed_model}/scale`.
    DeploymentScale,
    /// `PUT /api/v1/deployments/{deployed_model}/update`.
    DeploymentUpdate,
    /// `DELETE /api/v1/deployments/{deployed_model}`.
    DeploymentDelete,
    /// `GET /api/v1/deployments/models`.
    DeployableModels,
    /// Unknown routes and wrong methods.
    Other,
}

impl Endpoint {
    /// Whether the call is one of the deployment API's (its subject is a `deployed_model`).
    pub fn is_deployment(self) -> bool {
        match self {
            Endpoint::DeploymentCreate
            | Endpoint::DeploymentGet
            | Endpoint::DeploymentList
            | Endpoint::DeploymentScale
            | Endpoint::DeploymentUpdate
            | Endpoint::DeploymentDelete
            | Endpoint::DeployableModels => true,
            Endpoint::Create
            | Endpoint::Get
            | Endpoint::List
            | Endpoint::Delete
            | Endpoint::Other => false,
        }
    }
}

/// Counters of one endpoint.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointStats {
    /// Every call, whatever its answer.
    pub total: u64,
    /// Calls by HTTP status (JSON keys are the status as a string, e.g. `"200"`).
    pub by_status: BTreeMap<u16, u64>,
    /// Failed calls by error `code` (e.g. `"OperationDenied"`); successes are not listed.
    pub by_code: BTreeMap<String, u64>,
}

impl EndpointStats {
    /// Calls answered with `status`.
    pub fn status(&self, status: u16) -> u64 {
        self.by_status.get(&status).copied().unwrap_or(0)
    }

    /// Calls answered with error `code`.
    pub fn code(&self, code: &str) -> u64 {
        self.by_code.get(code).copied().unwrap_or(0)
    }
}

/// `GET /_simulator/stats`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Milliseconds since the simulator started (or was reset).
    pub uptime_ms: u64,
    pub create: EndpointStats,
    pub get: EndpointStats,
    pub list: EndpointStats,
    pub delete: EndpointStats,
    #[serde(default)]
    pub deployment_create: EndpointStats,
    #[serde(default)]
    pub deployment_get: EndpointStats,
    #[serde(default)]
    pub deployment_list: EndpointStats,
    #[serde(default)]
    pub deployment_scale: EndpointStats,
    #[serde(default)]
    pub deployment_update: EndpointStats,
    #[serde(default)]
    pub deployment_delete: EndpointStats,
    #[serde(default)]
    pub deployable_models: EndpointStats,
    pub other: EndpointStats,
    /// Creates (of jobs or deployments) that were made but whose answer was replaced by a 500.
    pub lost_creates: u64,
}

impl Stats {
    pub fn endpoint(&self, endpoint: Endpoint) -> &EndpointStats {
        match endpoint {
            Endpoint::Create => &self.create,
            Endpoint::Get => &self.get,
            Endpoint::List => &self.list,
            Endpoint::Delete => &self.delete,
            Endpoint::DeploymentCreate => &self.deployment_create,
            Endpoint::DeploymentGet => &self.deployment_get,
            Endpoint::DeploymentList => &self.deployment_list,
            Endpoint::DeploymentScale => &self.deployment_scale,
            Endpoint::DeploymentUpdate => &self.deployment_update,
            Endpoint::DeploymentDelete => &self.deployment_delete,
            Endpoint::DeployableModels => &self.deployable_models,
            Endpoint::Other => &self.other,
        }
    }

    pub(crate) fn endpoint_mut(&mut self, endpoint: Endpoint) -> &mut EndpointStats {
        match endpoint {
            Endpoint::Create => &mut self.create,
            Endpoint::Get => &mut self.get,
            Endpoint::List => &mut self.list,
            Endpoint::Delete => &mut self.delete,
            Endpoint::DeploymentCreate => &mut self.deployment_create,
            Endpoint::DeploymentGet => &mut self.deployment_get,
            Endpoint::DeploymentList => &mut self.deployment_list,
            Endpoint::DeploymentScale => &mut self.deployment_scale,
            Endpoint::DeploymentUpdate => &mut self.deployment_update,
            Endpoint::DeploymentDelete => &mut self.deployment_delete,
            Endpoint::DeployableModels => &mut self.deployable_models,
            Endpoint::Other => &mut self.other,
        }
    }
}

/// One API call, as kept in the request ring (`GET /_simulator/requests`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// Position in the log since start or reset, from 0; gaps at the front mean the ring dropped records.
    pub seq: u64,
    pub endpoint: Endpoint,
    /// Milliseconds since the simulator started (or was reset), when the answer was decided.
    pub at_ms: u64,
    pub status: u16,
    /// Error code, absent on success.
    pub code: Option<String>,
    /// The `User-Agent` header.
    pub user_agent: Option<String>,
    /// The `X-Simulator-Client` header.
    pub client: Option<String>,
    /// The caller's workspace, when its key was accepted.
    pub workspace_id: Option<String>,
    /// The `X-DashScope-WorkSpace` header the caller sent (bounded, lossy UTF-8), if any.
    #[serde(default)]
    pub workspace_header: Option<String>,
    /// The job concerned (create, get, delete), when known.
    pub job_id: Option<String>,
    /// The deployment concerned (deployment calls), when known.
    #[serde(default)]
    pub deployed_model: Option<String>,
}

/// `storage_info` of a job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageInfo {
    pub bucket_name: String,
    pub object_key: String,
}

/// A job as seen by the control API (`GET /_simulator/jobs`), deleted ones included.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord {
    pub job_id: String,
    /// The workspace of the key that created it (never the key itself).
    pub workspace_id: String,
    /// `model_name` of the create request.
    pub base_model: String,
    /// The generated model name.
    pub model_name: String,
    pub display_name: String,
    pub source: String,
    pub weight_type: String,
    pub storage_info: StorageInfo,
    /// Current status (frozen at deletion for deleted jobs).
    pub status: String,
    pub gmt_create: String,
    /// Set only when the job is FAILED.
    pub error_code: Option<String>,
    pub deleted: bool,
    /// The create made this job but its answer was replaced by a 500.
    pub lost_answer: bool,
    /// `X-Simulator-Client` of the create call.
    pub created_by: Option<String>,
}

/// Body of `POST /_simulator/jobs/{job_id}/outcome`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutcomeRequest {
    /// `FAILED`, or `SUCCESSED`/`SUCCEEDED` (both mean success); absent keeps the planned outcome.
    pub status: Option<String>,
    /// `error_code` of a FAILED outcome (default: the configured failure message).
    pub error_code: Option<String>,
    /// End the job now instead of waiting for its timers.
    pub finish_now: bool,
}

/// `ptu_capacity` of a deployment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PtuCapacityInfo {
    pub input_tpm: u64,
    pub output_tpm: u64,
}

/// A deployment as seen by the control API (`GET /_simulator/deployments`), deleted ones
/// included.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentRecord {
    /// The control API's handle (`POST /_simulator/deployments/{id}/state`).
    pub id: String,
    /// The workspace of the key that created it (never the key itself).
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
    pub ready_capacity: u32,
    pub rpm_limit: Option<u64>,
    pub tpm_limit: Option<u64>,
    pub enable_thinking: Option<bool>,
    pub max_context_length: Option<u64>,
    /// Current status (`DELETING` for deleted ones).
    pub status: String,
    pub gmt_create: String,
    pub gmt_modified: String,
    /// Past DELETING: the API no longer finds it.
    pub deleted: bool,
    /// The create made this deployment but its answer was replaced by a 500.
    pub lost_answer: bool,
    /// `X-Simulator-Client` of the create call.
    pub created_by: Option<String>,
}

/// Body of `POST /_simulator/deployments/{id}/state`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeploymentStateRequest {
    /// `STOPPED`, `FAILED` or `DEPLOYING` holds it there (as the console's stop, a failure, or a
    /// slow deployment); `RUNNING` starts it again; absent keeps it.
    pub status: Option<String>,
    /// End the change in progress (PENDING, UPDATING, DELETING) now.
    pub finish_now: bool,
}

#[derive(Deserialize)]
struct RequestsQuery {
    since: Option<u64>,
}

pub(crate) fn routes() -> Router<Simulator> {
    Router::new()
        .route("/_simulator/stats", get(stats))
        .route("/_simulator/requests", get(requests))
        .route("/_simulator/jobs", get(jobs))
        .route("/_simulator/jobs/{job_id}/outcome", post(outcome))
        .route("/_simulator/deployments", get(deployments))
        .route("/_simulator/deployments/{id}/state", post(deployment_state))
        .route("/_simulator/faults", get(get_faults).put(put_faults))
        .route("/_simulator/reset", post(reset))
}

async fn stats(State(sim): State<Simulator>) -> Json<Stats> {
    Json(sim.stats())
}

async fn requests(
    State(sim): State<Simulator>,
    query: Result<Query<RequestsQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(query)) = query else {
        return control_error(
            StatusCode::BAD_REQUEST,
            "InvalidParameter",
            "since must be a non-negative integer",
        );
    };
    let since = query.since.unwrap_or(0);
    let records: Vec<RequestRecord> = sim
        .requests()
        .into_iter()
        .filter(|r| r.seq >= since)
        .collect();
    Json(records).into_response()
}

async fn jobs(State(sim): State<Simulator>) -> Json<Vec<JobRecord>> {
    Json(sim.jobs())
}

async fn get_faults(State(sim): State<Simulator>) -> Json<Faults> {
    Json(sim.faults())
}

async fn put_faults(State(sim): State<Simulator>, body: Result<Bytes, BytesRejection>) -> Response {
    let Ok(body) = body else {
        return control_error(
            StatusCode::BAD_REQUEST,
            "InvalidParameter",
            "unreadable body",
        );
    };
    let faults: Faults = match serde_json::from_slice(&body) {
        Ok(f) => f,
        Err(e) => {
            return control_error(
                StatusCode::BAD_REQUEST,
                "InvalidParameter",
                &format!("invalid faults: {e}"),
            )
        }
    };
    if let Err(message) = faults.validate() {
        return control_error(StatusCode::BAD_REQUEST, "InvalidParameter", &message);
    }
    sim.set_faults(faults);
    Json(sim.faults()).into_response()
}

async fn outcome(
    State(sim): State<Simulator>,
    job_id: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Ok(Path(job_id)) = job_id else {
        return control_error(StatusCode::NOT_FOUND, "NotFound", "no such job");
    };
    let Ok(body) = body else {
        return control_error(
            StatusCode::BAD_REQUEST,
            "InvalidParameter",
            "unreadable body",
        );
    };
    let request: OutcomeRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return control_error(
                StatusCode::BAD_REQUEST,
                "InvalidParameter",
                &format!("invalid outcome: {e}"),
            )
        }
    };
    match sim.set_outcome(&job_id, request) {
        Ok(record) => Json(record).into_response(),
        Err(e) => {
            let status = match e {
                OutcomeError::NotFound => StatusCode::NOT_FOUND,
                OutcomeError::InvalidStatus(_) => StatusCode::BAD_REQUEST,
                OutcomeError::Deleted | OutcomeError::AlreadyFinished => StatusCode::CONFLICT,
            };
            let code = match e {
                OutcomeError::NotFound => "NotFound",
                OutcomeError::InvalidStatus(_) => "InvalidParameter",
                OutcomeError::Deleted | OutcomeError::AlreadyFinished => "Conflict",
            };
            control_error(status, code, &e.to_string())
        }
    }
}

async fn deployments(State(sim): State<Simulator>) -> Json<Vec<DeploymentRecord>> {
    Json(sim.deployments())
}

async fn deployment_state(
    State(sim): State<Simulator>,
    id: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Ok(Path(id)) = id else {
        return control_error(StatusCode::NOT_FOUND, "NotFound", "no such deployment");
    };
    let Ok(body) = body else {
        return control_error(
            StatusCode::BAD_REQUEST,
            "InvalidParameter",
            "unreadable body",
        );
    };
    let request: DeploymentStateRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return control_error(
                StatusCode::BAD_REQUEST,
                "InvalidParameter",
                &format!("invalid state request: {e}"),
            )
        }
    };
    match sim.set_deployment_state(&id, request) {
        Ok(record) => Json(record).into_response(),
        Err(e) => {
            let (status, code) = match e {
                StateError::NotFound => (StatusCode::NOT_FOUND, "NotFound"),
                StateError::InvalidStatus(_) => (StatusCode::BAD_REQUEST, "InvalidParameter"),
                StateError::Deleted => (StatusCode::CONFLICT, "Conflict"),
            };
            control_error(status, code, &e.to_string())
        }
    }
}

async fn reset(State(sim): State<Simulator>) -> StatusCode {
    sim.reset();
    StatusCode::NO_CONTENT
}

fn control_error(status: StatusCode, code: &str, message: &str) -> Response {
    ApiError::new(status, code, message)
        .with_request_id(uuid::Uuid::new_v4().to_string())
        .into_response()
}
