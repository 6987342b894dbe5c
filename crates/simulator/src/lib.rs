//! A local simulator of the Alibaba Cloud Model Studio (DashScope) custom model import API and
//! deployment API, faithful to `model-studio-import-api.md` (sections 2 to 6 and the checklist
//! of section 12 for imports, section 11 for deployments; `docs/deployment-api.md` says what the
//! deployment part decides where the reference is silent).
//!
//! # Simulated API (Bearer auth)
//!
//! | Method + path | Answer |
//! |---|---|
//! | `POST /api/v1/custom_models/import` | create a job (`weight_type` only in this answer) |
//! | `GET /api/v1/custom_models/import` | list: `page_no` (≥1, default 1), `page_size` (1..=100, default 10), `status`, `model_name` |
//! | `GET /api/v1/custom_models/import/{job_id}` | one job |
//! | `DELETE /api/v1/custom_models/import/{job_id}` | delete a SUCCESSED/FAILED job |
//! | `GET /api/v1/deployments/models` | deployable models and their `base_capacity`: the configured ones, then the workspace's SUCCESSED imports |
//! | `POST /api/v1/deployments` | create a deployment (`PENDING`, then `DEPLOYING` when configured, then `RUNNING`); `Conflict` 409 for a live name; `plan` read in any case, answered lowercase; `deploy_spec` a string such as `MU1` |
//! | `GET /api/v1/deployments` | list: `page_no`, `page_size` (1..=100, default 10), newest first |
//! | `GET /api/v1/deployments/{deployed_model}` | one deployment |
//! | `PUT /api/v1/deployments/{deployed_model}/scale` | `{"capacity"}`: `UPDATING`, then `RUNNING` at it; `UnsupportedOperation` for plan lora |
//! | `PUT /api/v1/deployments/{deployed_model}/update` | `{"rpm_limit", "tpm_limit"}` (at least one), plan mu only |
//! | `DELETE /api/v1/deployments/{deployed_model}` | status only, `{"output": {"status": "DELETING"}}` (again while DELETING), then gone (NotFound) |
//!
//! Success: HTTP 200 `{"request_id", "output"}` (no `code`). Error: `{"request_id", "code", "message"}`.
//! Every answer of these routes carries an `x-request-id` header equal to the body's `request_id`.
//! Every API key is its own workspace: `llm-simNNNN` in first-use order, or the id an `--api-key
//! KEY=WORKSPACE_ID` fixes. A request whose `X-DashScope-WorkSpace` names another workspace is
//! answered 403 `Workspace.AccessDenied`. Status is computed from the time since creation:
//! `PENDING` → `RUNNING` → `SUCCESSED` (or `SUCCEEDED`, see config) | `FAILED`.
//! A job fails when its `object_key` contains the fail marker, or when told so (below).
//!
//! # Control API (`/_simulator/`, no auth, never subject to faults, never counted)
//!
//! | Method + path | Body / answer |
//! |---|---|
//! | `GET /_simulator/stats` | [`Stats`]: per endpoint `total`, `by_status`, `by_code`; `lost_creates`, `uptime_ms` |
//! | `GET /_simulator/requests[?since=SEQ]` | `[RequestRecord]`, the last [`REQUEST_LOG_CAPACITY`] API calls |
//! | `GET /_simulator/jobs` | `[JobRecord]`, every job of every workspace, deleted ones included |
//! | `GET /_simulator/faults` | [`Faults`] |
//! | `PUT /_simulator/faults` | [`Faults`] replaces the settings (missing fields = no fault); answers the new settings |
//! | `POST /_simulator/jobs/{job_id}/outcome` | [`OutcomeRequest`], e.g. `{"status":"FAILED","error_code":"..."}`, `{"status":"SUCCESSED"}`, `{"finish_now":true}`; answers the [`JobRecord`]; 409 if the job already finished or was deleted |
//! | `GET /_simulator/deployments` | `[DeploymentRecord]`, every deployment of every workspace, deleted ones included |
//! | `POST /_simulator/deployments/{id}/state` | [`DeploymentStateRequest`], e.g. `{"status":"STOPPED"}`, `{"status":"FAILED"}`, `{"status":"DEPLOYING"}` (held until `RUNNING`), `{"status":"RUNNING"}`, `{"finish_now":true}`; answers the [`DeploymentRecord`] |
//! | `POST /_simulator/reset` | 204; forgets jobs, deployments, workspaces, counters and records, restores the configured faults and seed |
//!
//! Requests may carry `X-Simulator-Client: <name>` so that records say which client called; records
//! also keep the `X-DashScope-WorkSpace` header sent (`workspace_header`).
//! API keys are never logged nor returned: workspaces are shown by their ids.

#![forbid(unsafe_code)]

mod api;
mod calls;
mod compatible_api;
pub mod config;
pub mod control;
mod deployment_api;
pub mod deployments;
mod faults;
pub mod jobs;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use axum::http::StatusCode;
use axum::Router;
use rand::rngs::StdRng;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use calls::REQUEST_LOG_CAPACITY;
pub use config::SimulatorConfig;
pub use control::{
    DeploymentRecord, DeploymentStateRequest, Endpoint, EndpointStats, Faults, JobRecord,
    OutcomeRequest, PtuCapacityInfo, RequestRecord, Stats, StorageInfo,
};
pub use deployments::StateError;
pub use jobs::OutcomeError;

use calls::CallLog;
use deployments::{DeleteRule, Deployable, DeploymentStore, Timers};
use jobs::{JobStore, Lifecycle, Outcome, Phase as JobPhase};

/// The simulator: configuration plus shared in-memory state. Clones share the state.
#[derive(Clone)]
pub struct Simulator {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    config: SimulatorConfig,
    lifecycle: Lifecycle,
    denied_status: StatusCode,
    base_models: HashSet<String>,
    timers: Timers,
    /// Models every workspace can deploy, with their base capacity, in configured order.
    deployable: Vec<(String, u32)>,
    /// Accepted keys (empty: any `sk-` key) → the workspace id the configuration fixes, if any.
    keys: HashMap<String, Option<String>>,
    /// Fixed workspace ids, which generated ones avoid.
    fixed_workspaces: HashSet<String>,
    state: Mutex<State>,
}

pub(crate) struct State {
    store: JobStore,
    deployments: DeploymentStore,
    /// API key → generated workspace id. Keys stay here, in memory only.
    workspaces: HashMap<String, String>,
    faults: Faults,
    fault_rng: StdRng,
    id_rng: StdRng,
    calls: CallLog,
}

impl State {
    fn fresh(config: &SimulatorConfig) -> Self {
        Self {
            store: JobStore::new(),
            deployments: DeploymentStore::new(),
            workspaces: HashMap::new(),
            faults: faults_from_config(config),
            fault_rng: faults::fault_rng(config.seed),
            id_rng: faults::id_rng(config.seed),
            calls: CallLog::new(Instant::now(), REQUEST_LOG_CAPACITY),
        }
    }
}

fn faults_from_config(config: &SimulatorConfig) -> Faults {
    Faults {
        latency_ms: u64::try_from(config.latency.as_millis()).unwrap_or(u64::MAX),
        throttle_rate: config.throttle_rate,
        retry_after_seconds: config.retry_after_seconds,
        error_rate: config.error_rate,
        lost_create_rate: config.lost_create_rate,
        seed: None,
    }
    .sanitized()
}

impl Simulator {
    pub fn new(config: SimulatorConfig) -> Self {
        let success_status = if config
            .success_spelling
            .eq_ignore_ascii_case(config::SUCCEEDED)
        {
            config::SUCCEEDED
        } else {
            if !config
                .success_spelling
                .eq_ignore_ascii_case(config::SUCCESSED)
            {
                tracing::warn!(
                    spelling = %config.success_spelling,
                    "unknown success spelling, using SUCCESSED"
                );
            }
            config::SUCCESSED
        };
        let denied_status = StatusCode::from_u16(config.operation_denied_status)
            .ok()
            .filter(|s| s.is_client_error() || s.is_server_error())
            .unwrap_or_else(|| {
                tracing::warn!(
                    status = config.operation_denied_status,
                    "invalid OperationDenied status, using 400"
                );
                StatusCode::BAD_REQUEST
            });
        let lifecycle = Lifecycle {
            pending: config.pending_duration,
            running: config.running_duration,
            success_status: success_status.to_owned(),
            fail_marker: config.fail_marker.clone(),
            failure_message: config.failure_message.clone(),
        };
        let timers = Timers {
            pending: config.deployment_pending_duration,
            deploying: config.deployment_deploying_duration,
            updating: config.deployment_updating_duration,
            deleting: config.deployment_deleting_duration,
            delete_rule: if config.deployment_delete_rule == config::DELETE_STOPPED_OR_FAILED {
                DeleteRule::StoppedOrFailed
            } else {
                DeleteRule::Any
            },
        };
        let deployable = config
            .deployable_models
            .iter()
            .filter_map(|m| match config::parse_deployable(m) {
                Ok(model) => Some(model),
                Err(e) => {
                    tracing::warn!(error = %e, "deployable model ignored");
                    None
                }
            })
            .collect();
        let mut keys = HashMap::new();
        for value in &config.api_keys {
            match config::parse_api_key(value) {
                Ok((key, workspace)) => {
                    // The first mention of a key wins; the log never names the key.
                    if keys.get(&key).is_some_and(|w| *w != workspace) {
                        tracing::warn!("an API key is given twice with different workspaces; the first one holds");
                    }
                    keys.entry(key).or_insert(workspace);
                }
                Err(e) => tracing::warn!(error = %e, "API key ignored"),
            }
        }
        let fixed_workspaces = keys.values().flatten().cloned().collect();
        let state = Mutex::new(State::fresh(&config));
        Self {
            inner: Arc::new(Inner {
                base_models: config.base_models.iter().cloned().collect(),
                lifecycle,
                denied_status,
                timers,
                deployable,
                keys,
                fixed_workspaces,
                state,
                config,
            }),
        }
    }

    pub fn config(&self) -> &SimulatorConfig {
        &self.inner.config
    }

    /// The HTTP routes: the import API, the control API, the OpenAI-compatible chat endpoint a
    /// deployed model answers on, and JSON 404/405 fallbacks.
    pub fn router(&self) -> Router {
        Router::new()
            .merge(api::routes())
            .merge(control::routes())
            .merge(compatible_api::routes())
            .fallback(api::unknown_route)
            .method_not_allowed_fallback(api::wrong_method)
            .with_state(self.clone())
    }

    // A panic elsewhere must not turn every later call into a panic.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn stats(&self) -> Stats {
        self.lock().calls.stats(Instant::now())
    }

    /// The request ring, oldest first.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.lock().calls.records()
    }

    /// Every job of every workspace, deleted ones included, oldest first.
    pub fn jobs(&self) -> Vec<JobRecord> {
        let state = self.lock();
        let now = Instant::now();
        state
            .store
            .all()
            .iter()
            .map(|job| job.record(&self.inner.lifecycle, now))
            .collect()
    }

    /// Every deployment of every workspace, deleted ones included, oldest first.
    pub fn deployments(&self) -> Vec<DeploymentRecord> {
        let state = self.lock();
        let now = Instant::now();
        state
            .deployments
            .all()
            .iter()
            .map(|d| d.record(&self.inner.timers, now))
            .collect()
    }

    /// Holds a deployment STOPPED, FAILED or DEPLOYING, starts it again, or ends its change now.
    pub fn set_deployment_state(
        &self,
        id: &str,
        request: DeploymentStateRequest,
    ) -> Result<DeploymentRecord, StateError> {
        let now = Instant::now();
        let t = &self.inner.timers;
        let mut state = self.lock();
        let d = state
            .deployments
            .set_state(id, request.status.as_deref(), request.finish_now)?;
        Ok(d.record(t, now))
    }

    pub fn faults(&self) -> Faults {
        self.lock().faults.clone()
    }

    /// Replaces the fault settings (probabilities are clamped into 0..=1).
    /// A `seed` re-seeds the fault generator.
    pub fn set_faults(&self, faults: Faults) {
        let faults = faults.sanitized();
        let mut state = self.lock();
        if let Some(seed) = faults.seed {
            state.fault_rng = faults::fault_rng(Some(seed));
        }
        state.faults = faults;
    }

    /// Forces the final outcome of an unfinished job, and optionally ends it now.
    pub fn set_outcome(
        &self,
        job_id: &str,
        request: OutcomeRequest,
    ) -> Result<JobRecord, OutcomeError> {
        let lc = &self.inner.lifecycle;
        let outcome = match request.status.as_deref() {
            None => None,
            Some(s) if s == config::SUCCESSED || s == config::SUCCEEDED => Some(Outcome::Success),
            Some(jobs::FAILED) => Some(Outcome::Failed(
                request
                    .error_code
                    .clone()
                    .unwrap_or_else(|| lc.failure_message.clone()),
            )),
            Some(other) => return Err(OutcomeError::InvalidStatus(other.to_owned())),
        };
        let now = Instant::now();
        let mut state = self.lock();
        let job = state
            .store
            .set_outcome(job_id, outcome, request.finish_now, lc, now)?;
        Ok(job.record(lc, now))
    }

    /// Back to the initial state: no jobs, workspaces, counters or records; configured faults.
    pub fn reset(&self) {
        *self.lock() = State::fresh(&self.inner.config);
    }
}

impl Inner {
    /// What `workspace_id` can deploy: the configured models, then its SUCCESSED imports (as
    /// custom models of the configured base capacity), newest import first.
    pub(crate) fn deployable(
        &self,
        state: &State,
        workspace_id: &str,
        now: Instant,
    ) -> Vec<Deployable> {
        let presets = self.deployable.iter().map(|(name, base)| Deployable {
            model_name: name.clone(),
            base_model: name.clone(),
            base_capacity: *base,
        });
        let imported = state
            .store
            .all()
            .iter()
            .rev()
            .filter(|job| {
                job.workspace_id == workspace_id
                    && job.deleted.is_none()
                    && job.phase(&self.lifecycle, now) == JobPhase::Succeeded
            })
            .map(|job| Deployable {
                model_name: job.model_name.clone(),
                base_model: job.base_model.clone(),
                base_capacity: self.config.custom_model_base_capacity,
            });
        presets.chain(imported).collect()
    }
}

impl fmt::Debug for Simulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Simulator")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// Serves the simulator on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    sim: Simulator,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, sim.router())
        .with_graceful_shutdown(shutdown)
        .await
}

/// A simulator served on `127.0.0.1` at a free port, for tests. Dropping it also stops the server.
pub struct RunningSimulator {
    pub addr: SocketAddr,
    pub simulator: Simulator,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl RunningSimulator {
    pub async fn start(config: SimulatorConfig) -> std::io::Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let simulator = Simulator::new(config);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, simulator.clone(), async move {
            // Also fires when the sender is dropped.
            let _ = stopped.await;
        }));
        Ok(Self {
            addr,
            simulator,
            stop,
            task,
        })
    }

    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting connections and waits for open ones to finish.
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        match self.task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "simulator server failed"),
            Err(e) => tracing::warn!(error = %e, "simulator server task failed"),
        }
    }
}

impl fmt::Debug for RunningSimulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunningSimulator")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}
