//! The reconciler: observe the resource, decide with [`crate::decision`], act on Model Studio and
//! the Kubernetes API, record the status. IO lives here; the decisions do not.

use crate::backoff::{BackoffPolicy, FailureCounts};
use crate::correlation::{self, Expected, Recovery};
use crate::crd::{ModelImport, ModelImportStatus, Phase, FINALIZER};
use crate::decision::{
    self, DeletionOutcome, ErrorOutcome, Health, Operation, Plan, ReleaseReason, Requeue, Snapshot,
};
use crate::metrics::{ApiLabels, Metrics, ReconcileLabels};
use crate::modelstudio::{
    ApiError, ApiKey, CreateJob, ImportJob, ImportJobs, ListQuery, StorageInfo,
};
use crate::status::{self, Update};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Client, Resource, ResourceExt};
use serde_json::json;
use std::collections::HashMap;
use std::future::Future;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// Pages of 100 jobs read at most when looking for a lost job (100,000 jobs).
const MAX_RECOVERY_PAGES: u32 = 1000;

/// When the cache lagged behind the API server, look again after this long.
const STALE_RETRY: Duration = Duration::from_millis(500);

/// The name this controller writes with and reports events as.
pub const MANAGER: &str = "modelstudio-controller";

/// Errors of the Kubernetes side of a reconcile, one variant per operation. Remote API errors are
/// not here: they become conditions, not reconcile failures.
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
    #[error("could not read the ModelImport: {0}")]
    ReadResource(#[source] kube::Error),
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
        }
    }
}

/// Timing and credentials of the reconciler.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How often a job in progress (or a blocked deletion) is looked at.
    pub poll_interval: Duration,
    /// How often a finished job is checked again; zero turns it off.
    pub resync_interval: Duration,
    /// Backoff after failures.
    pub backoff: BackoffPolicy,
    /// The key used when a resource names no Secret.
    pub default_api_key: Option<ApiKey>,
    /// Spread of poll and resync delays, as a fraction (0.1: ±10%), so that jobs created together
    /// are not polled in lockstep.
    pub poll_jitter: f64,
    /// How long after a create whose answer was lost a listing without the job is trusted to
    /// mean "not created" (a slow create may not be listed at once).
    pub create_grace: Duration,
    /// Steady requests per second to Model Studio, for the whole controller.
    pub qps: f64,
    /// Requests that may go at once above the steady rate.
    pub burst: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            poll_interval: Duration::from_secs(30),
            resync_interval: Duration::from_secs(1800),
            backoff: BackoffPolicy::default(),
            default_api_key: None,
            create_grace: Duration::from_secs(60),
            poll_jitter: 0.1,
            qps: 5.0,
            burst: 10,
        }
    }
}

/// What every reconcile shares.
pub struct Context {
    pub client: Client,
    pub jobs: Arc<dyn ImportJobs>,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    pub settings: Settings,
    pub failures: FailureCounts,
    limiter: DefaultDirectRateLimiter,
    /// When each resource's job was last read successfully (or created).
    last_read: Mutex<HashMap<String, Instant>>,
}

impl Context {
    pub fn new(
        client: Client,
        jobs: Arc<dyn ImportJobs>,
        metrics: Arc<Metrics>,
        settings: Settings,
    ) -> Self {
        let reporter = kube::runtime::events::Reporter {
            controller: MANAGER.into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Context {
            limiter: rate_limiter(settings.qps, settings.burst),
            recorder: Recorder::new(client.clone(), reporter),
            client,
            jobs,
            metrics,
            settings,
            failures: FailureCounts::default(),
            last_read: Mutex::default(),
        }
    }

    /// Calls the API and counts the call by operation and result.
    async fn call<T, F>(&self, operation: &'static str, f: F) -> Result<T, ApiError>
    where
        F: Future<Output = Result<T, ApiError>>,
    {
        // The account's quota is shared by every resource: wait for a token before each call.
        let waited = Instant::now();
        self.limiter.until_ready().await;
        self.metrics
            .api_rate_limit_wait
            .observe(waited.elapsed().as_secs_f64());
        let start = Instant::now();
        let result = f.await;
        let labels = ApiLabels {
            operation,
            result: match &result {
                Ok(_) => "ok",
                Err(e) => e.kind(),
            },
        };
        self.metrics.api_requests.get_or_create(&labels).inc();
        self.metrics
            .api_request_duration
            .get_or_create(&labels)
            .observe(start.elapsed().as_secs_f64());
        result
    }

    async fn publish(
        &self,
        obj: &ModelImport,
        type_: EventType,
        reason: &str,
        action: &str,
        note: String,
    ) {
        let event = Event {
            type_,
            reason: reason.into(),
            note: Some(note),
            action: action.into(),
            secondary: None,
        };
        match self.recorder.publish(&event, &obj.object_ref(&())).await {
            Ok(()) => {
                self.metrics.events_published.inc();
            }
            Err(e) => warn!(error = %e, reason, "could not publish an event"),
        }
    }

    /// Notes that the job of `key` was just read (or created).
    fn mark_read(&self, key: &str) {
        let mut last = self.last_read.lock().unwrap_or_else(|p| p.into_inner());
        last.insert(key.to_string(), Instant::now());
    }

    /// Forgets a released resource.
    fn forget(&self, key: &str) {
        self.failures.succeeded(key);
        let mut last = self.last_read.lock().unwrap_or_else(|p| p.into_inner());
        last.remove(key);
    }

    /// How long to wait when the job was read less than half a poll interval ago: our own status
    /// write triggers a reconcile, which must not cost Model Studio another read.
    fn too_soon(&self, key: &str) -> Option<Duration> {
        let last = self.last_read.lock().unwrap_or_else(|p| p.into_inner());
        let elapsed = last.get(key)?.elapsed();
        let poll = self.settings.poll_interval;
        (elapsed < poll / 2).then(|| poll - elapsed)
    }

    /// The action for a requeue decision; backoff grows with consecutive failures of `key`.
    fn action(&self, key: &str, requeue: Requeue) -> Action {
        if !matches!(requeue, Requeue::Backoff { .. }) {
            self.failures.succeeded(key);
        }
        let jitter = self.settings.poll_jitter.clamp(0.0, 0.5);
        let spread = |d: Duration| d.mul_f64(1.0 - jitter + 2.0 * jitter * rand::random::<f64>());
        match requeue {
            Requeue::Poll => Action::requeue(spread(self.settings.poll_interval)),
            Requeue::Resync if self.settings.resync_interval.is_zero() => Action::await_change(),
            Requeue::Resync => Action::requeue(spread(self.settings.resync_interval)),
            Requeue::Never => Action::await_change(),
            Requeue::Backoff { min } => {
                let attempt = self.failures.failed(key);
                let jitter: f64 = rand::random();
                Action::requeue(self.settings.backoff.delay(attempt, jitter, min))
            }
        }
    }
}

/// A token bucket of `qps` per second holding `burst` tokens (both at least a minimal value).
pub fn rate_limiter(qps: f64, burst: u32) -> DefaultDirectRateLimiter {
    let qps = if qps.is_finite() && qps > 0.0 {
        qps
    } else {
        1.0
    };
    // A rate so small that its period overflows becomes one request a day.
    let period = Duration::try_from_secs_f64(1.0 / qps)
        .unwrap_or(Duration::from_secs(86_400))
        .clamp(Duration::from_nanos(1), Duration::from_secs(86_400));
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    let quota = Quota::with_period(period)
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(burst);
    RateLimiter::direct(quota)
}

/// Reads what the decision needs from the resource.
pub fn snapshot(obj: &ModelImport) -> Snapshot {
    let status = obj.status.clone().unwrap_or_default();
    Snapshot {
        generation: obj.metadata.generation,
        deleting: obj.metadata.deletion_timestamp.is_some(),
        has_finalizer: obj.finalizers().iter().any(|f| f == FINALIZER),
        deletion_policy: obj.spec.deletion_policy,
        spec_job_id: obj.spec.job_id.clone(),
        status_job_id: status.job_id.clone(),
        stalled_generation: status::stalled_generation(&status),
        create_attempted: status.create_attempted_at.is_some() && status.job_id.is_none(),
    }
}

fn step_name(plan: &Plan) -> &'static str {
    match plan {
        Plan::AddFinalizer => "add_finalizer",
        Plan::Create => "create",
        Plan::Recover => "recover",
        Plan::Adopt { .. } => "adopt",
        Plan::Poll { .. } => "poll",
        Plan::JobIdConflict { .. } => "job_id_conflict",
        Plan::WaitForSpecChange => "wait_for_spec_change",
        Plan::Delete { .. } => "delete",
        Plan::Release { .. } => "release",
        Plan::Nothing => "nothing",
    }
}

/// Reconciles one ModelImport.
pub async fn reconcile(obj: Arc<ModelImport>, ctx: Arc<Context>) -> Result<Action, Error> {
    let start = Instant::now();
    let namespace = obj.namespace().unwrap_or_default();
    let api: Api<ModelImport> = Api::namespaced(ctx.client.clone(), &namespace);
    let key = obj
        .uid()
        .unwrap_or_else(|| format!("{namespace}/{}", obj.name_any()));
    let plan = decision::plan(&snapshot(&obj));
    let step = step_name(&plan);
    let r = Reconcile {
        obj: &obj,
        ctx: &ctx,
        api: &api,
        key: &key,
    };
    let result = match plan {
        Plan::AddFinalizer => r.add_finalizer().await,
        Plan::Create => r.create().await,
        Plan::Recover => r.recover().await,
        Plan::Adopt { job_id } => r.read_job(&job_id, Operation::Adopt).await,
        Plan::Poll { job_id } => match ctx.too_soon(&key) {
            Some(wait) => Ok(Action::requeue(wait)),
            None => r.read_job(&job_id, Operation::Poll).await,
        },
        Plan::JobIdConflict { spec, status } => {
            let outcome = ErrorOutcome {
                health: Health::Stalled {
                    reason: "JobIdConflict",
                    message: format!(
                        "spec.jobId {spec} names another job than the one this resource already tracks ({status}); \
                         create a new ModelImport to adopt {spec}"
                    ),
                },
                requeue: Requeue::Never,
            };
            r.record_outcome(outcome, None).await
        }
        Plan::WaitForSpecChange | Plan::Nothing => Ok(Action::await_change()),
        Plan::Delete { job_id } => r.delete(&job_id).await,
        Plan::Release { reason } => match r.fresh_if_still(&Plan::Release { reason }).await {
            // A job recorded a moment ago may not be in the cache yet: never let go on a stale copy.
            Ok(Some(_)) => r.release(reason).await,
            Ok(None) => Ok(Action::requeue(STALE_RETRY)),
            Err(e) => Err(e),
        },
    };
    ctx.metrics
        .reconciliations
        .get_or_create(&ReconcileLabels {
            step,
            result: match &result {
                Ok(_) => "ok",
                Err(e) => e.kind(),
            },
        })
        .inc();
    ctx.metrics
        .reconcile_duration
        .observe(start.elapsed().as_secs_f64());
    result
}

/// Requeue after a Kubernetes-side failure, with the same backoff as remote failures.
pub fn error_policy(obj: Arc<ModelImport>, error: &Error, ctx: Arc<Context>) -> Action {
    warn!(name = %obj.name_any(), namespace = ?obj.namespace(), error = %error, "reconcile failed");
    let key = obj.uid().unwrap_or_else(|| obj.name_any());
    ctx.action(&key, Requeue::Backoff { min: None })
}

#[derive(Clone, Copy)]
struct Reconcile<'a> {
    obj: &'a ModelImport,
    ctx: &'a Context,
    api: &'a Api<ModelImport>,
    key: &'a str,
}

impl Reconcile<'_> {
    fn name(&self) -> String {
        self.obj.name_any()
    }

    async fn add_finalizer(&self) -> Result<Action, Error> {
        let patch = match &self.obj.metadata.finalizers {
            None => json!([
                {"op": "test", "path": "/metadata/finalizers", "value": null},
                {"op": "add", "path": "/metadata/finalizers", "value": [FINALIZER]},
            ]),
            Some(list) => json!([
                {"op": "test", "path": "/metadata/finalizers", "value": list},
                {"op": "add", "path": "/metadata/finalizers/-", "value": FINALIZER},
            ]),
        };
        let patch: json_patch::Patch = serde_json::from_value(patch)
            .map_err(|e| Error::AddFinalizer(kube::Error::SerdeError(e)))?;
        self.api
            .patch(
                &self.name(),
                &PatchParams {
                    field_manager: Some(MANAGER.into()),
                    ..Default::default()
                },
                &Patch::Json::<()>(patch),
            )
            .await
            .map_err(Error::AddFinalizer)?;
        // The patch itself triggers the next reconcile.
        Ok(Action::await_change())
    }

    async fn remove_finalizer(&self) -> Result<(), Error> {
        let Some(index) = self.obj.finalizers().iter().position(|f| f == FINALIZER) else {
            return Ok(());
        };
        let path = format!("/metadata/finalizers/{index}");
        let patch: json_patch::Patch = serde_json::from_value(json!([
            {"op": "test", "path": path, "value": FINALIZER},
            {"op": "remove", "path": path},
        ]))
        .map_err(|e| Error::RemoveFinalizer(kube::Error::SerdeError(e)))?;
        match self
            .api
            .patch(
                &self.name(),
                &PatchParams {
                    field_manager: Some(MANAGER.into()),
                    ..Default::default()
                },
                &Patch::Json::<()>(patch),
            )
            .await
        {
            Ok(_) => {
                self.ctx.forget(self.key);
                Ok(())
            }
            // Already gone: nothing left to release.
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(Error::RemoveFinalizer(e)),
        }
    }

    /// Writes the status if it differs from the current one.
    async fn record(&self, update: &Update) -> Result<(), Error> {
        let current = self.obj.status.clone().unwrap_or_default();
        let next = status::next_status(
            &current,
            update,
            self.obj.metadata.generation,
            Timestamp::now(),
        );
        if next == current {
            return Ok(());
        }
        self.write_status(&next).await
    }

    /// Server-side apply of the whole status as [`MANAGER`]: the API server then removes the
    /// fields this manager applied before and leaves out now, and keeps field ownership, so
    /// another writer of the status shows in managedFields instead of being overwritten silently.
    async fn write_status(&self, next: &ModelImportStatus) -> Result<(), Error> {
        let serde = |e| Error::WriteStatus(kube::Error::SerdeError(e));
        let current =
            serde_json::to_value(self.obj.status.clone().unwrap_or_default()).map_err(serde)?;
        let status = serde_json::to_value(next).map_err(serde)?;
        let apply = json!({
            "apiVersion": ModelImport::api_version(&()),
            "kind": ModelImport::kind(&()),
            "status": status,
        });
        self.api
            .patch_status(
                &self.name(),
                &PatchParams::apply(MANAGER).force(),
                &Patch::Apply(&apply),
            )
            .await
            .map_err(Error::WriteStatus)?;
        self.ctx.metrics.status_writes.inc();
        // Apply removes only what this manager owns: a field written by an earlier merge patch
        // (before the controller applied its status) is cleared by name, after the apply, so a
        // crash in between leaves the new status (a recorded job beside a stale intent, which is
        // harmless) and never a status without both.
        let owned = applied_status_fields(self.obj);
        let stray: serde_json::Map<String, serde_json::Value> = current
            .as_object()
            .into_iter()
            .flat_map(|c| c.keys())
            .filter(|f| status.get(f.as_str()).is_none() && !owned.contains(f.as_str()))
            .map(|f| (f.clone(), serde_json::Value::Null))
            .collect();
        if !stray.is_empty() {
            self.api
                .patch_status(
                    &self.name(),
                    &PatchParams {
                        field_manager: Some(MANAGER.into()),
                        ..Default::default()
                    },
                    &Patch::Merge(&json!({ "status": stray })),
                )
                .await
                .map_err(Error::WriteStatus)?;
        }
        Ok(())
    }

    async fn record_outcome(
        &self,
        outcome: ErrorOutcome,
        phase: Option<Phase>,
    ) -> Result<Action, Error> {
        self.record(&Update {
            health: Some(outcome.health),
            phase,
            ..Default::default()
        })
        .await?;
        Ok(self.ctx.action(self.key, outcome.requeue))
    }

    /// The API key from the resource's Secret, or the controller's default.
    async fn api_key(&self) -> Result<Result<ApiKey, decision::CredentialProblem>, Error> {
        use decision::CredentialProblem as P;
        let Some(reference) = &self.obj.spec.api_key_secret_ref else {
            return Ok(self
                .ctx
                .settings
                .default_api_key
                .clone()
                .ok_or(P::NoSecretRefAndNoDefault));
        };
        let secrets: Api<Secret> = Api::namespaced(
            self.ctx.client.clone(),
            &self.obj.namespace().unwrap_or_default(),
        );
        let secret = secrets
            .get_opt(&reference.name)
            .await
            .map_err(Error::ReadSecret)?;
        let Some(secret) = secret else {
            return Ok(Err(P::SecretNotFound {
                name: reference.name.clone(),
            }));
        };
        let Some(bytes) = secret.data.as_ref().and_then(|d| d.get(&reference.key)) else {
            return Ok(Err(P::KeyMissing {
                name: reference.name.clone(),
                key: reference.key.clone(),
            }));
        };
        Ok(std::str::from_utf8(&bytes.0)
            .ok()
            .and_then(ApiKey::new)
            .ok_or(P::KeyEmpty {
                name: reference.name.clone(),
                key: reference.key.clone(),
            }))
    }

    /// The key, or the outcome of not having one (recorded in status).
    async fn key_or_outcome(&self, phase: Option<Phase>) -> Result<Result<ApiKey, Action>, Error> {
        let deleting = self.obj.metadata.deletion_timestamp.is_some();
        match (self.api_key().await?, &self.ctx.settings.default_api_key) {
            (Ok(key), _) => Ok(Ok(key)),
            // The Secret often goes first when a namespace or a folder of manifests is deleted:
            // the controller's default key may still delete the job.
            (Err(_), Some(default)) if deleting => Ok(Ok(default.clone())),
            (Err(problem), _) => {
                let outcome = decision::on_credentials(&problem, deleting);
                Ok(Err(self.record_outcome(outcome, phase).await?))
            }
        }
    }

    /// Re-reads the resource; `None` when the fresh copy calls for another step than `step`.
    async fn fresh_if_still(&self, step: &Plan) -> Result<Option<ModelImport>, Error> {
        let fresh = self
            .api
            .get_status(&self.name())
            .await
            .map_err(Error::ReadResource)?;
        Ok((decision::plan(&snapshot(&fresh)) == *step).then_some(fresh))
    }

    /// What a create for this resource sends, and how its job is recognised afterwards.
    fn expected(&self) -> Expected {
        let spec = &self.obj.spec;
        let display_name = self
            .obj
            .status
            .as_ref()
            .and_then(|s| s.display_name.clone())
            .unwrap_or_else(|| {
                let name = spec.display_name.clone().unwrap_or_else(|| self.name());
                correlation::display_name(&name, self.key)
            });
        Expected {
            display_name,
            base_model: spec.base_model.clone(),
            storage: StorageInfo {
                bucket_name: spec.storage.bucket_name.clone(),
                object_key: spec.storage.object_key.clone(),
            },
        }
    }

    async fn create(&self) -> Result<Action, Error> {
        let key = match self.key_or_outcome(None).await? {
            Ok(key) => key,
            Err(action) => return Ok(action),
        };
        // The cache may lag behind our own last write: decide on a fresh read, so a job recorded
        // a moment ago is never created again.
        let Some(fresh) = self.fresh_if_still(&Plan::Create).await? else {
            return Ok(Action::requeue(STALE_RETRY));
        };
        self.send_with_intent(fresh, &key).await
    }

    /// Records the create intent (and Reconciling=True), then sends the create.
    async fn send_with_intent(&self, fresh: ModelImport, key: &ApiKey) -> Result<Action, Error> {
        let expected = self.expected();
        let creating = Health::Progressing {
            reason: "Creating",
            message: "Creating the import job in Model Studio".into(),
        };
        let now = Timestamp::now();
        // Record the intent before sending, so a restart looks for the job before creating again.
        let mut intent = status::next_status(
            &fresh.status.clone().unwrap_or_default(),
            &Update {
                health: Some(creating),
                ..Default::default()
            },
            fresh.metadata.generation,
            now,
        );
        intent.display_name = Some(expected.display_name.clone());
        intent.create_attempted_at = Some(now.to_string());
        self.write_status(&intent).await?;
        let obj = ModelImport {
            status: Some(intent),
            ..fresh
        };
        let after_intent = Reconcile { obj: &obj, ..*self };
        after_intent.send_create(key, expected).await
    }

    /// Whether Model Studio created the recorded job within the create grace period.
    fn created_recently(&self) -> bool {
        self.obj
            .status
            .as_ref()
            .and_then(|s| s.created_at.as_deref())
            .and_then(|t| t.parse::<Timestamp>().ok())
            .is_some_and(|t| {
                Timestamp::now().duration_since(t).unsigned_abs() < self.ctx.settings.create_grace
            })
    }

    /// Whether the last create attempt is old enough for a listing without its job to be final.
    fn create_grace_passed(&self) -> bool {
        let attempted = self
            .obj
            .status
            .as_ref()
            .and_then(|s| s.create_attempted_at.as_deref())
            .and_then(|t| t.parse::<Timestamp>().ok());
        match attempted {
            Some(t) => Timestamp::now()
                .duration_since(t)
                .unsigned_abs()
                .ge(&self.ctx.settings.create_grace),
            None => true,
        }
    }

    async fn send_create(&self, key: &ApiKey, expected: Expected) -> Result<Action, Error> {
        let spec = &self.obj.spec;
        let request = CreateJob {
            model_name: spec.base_model.clone(),
            display_name: Some(expected.display_name),
            source: spec.source.as_api_str().into(),
            weight_type: spec.weight_type.as_api_str().into(),
            storage_info: expected.storage,
        };
        match self
            .ctx
            .call("create", self.ctx.jobs.create(key, &request))
            .await
        {
            Ok(job) => {
                self.ctx.mark_read(self.key);
                info!(name = %self.name(), job_id = %job.job_id, "created import job");
                let view = decision::observe_job(&job);
                self.record(&Update {
                    health: Some(view.health.clone()),
                    job: Some(view.clone()),
                    ..Default::default()
                })
                .await?;
                self.ctx
                    .publish(
                        self.obj,
                        EventType::Normal,
                        "Created",
                        "CreateImportJob",
                        format!(
                            "Created import job {} for model {}",
                            job.job_id, spec.base_model
                        ),
                    )
                    .await;
                Ok(self.ctx.action(self.key, view.requeue))
            }
            Err(e) => {
                let outcome = decision::on_api_error(Operation::Create, &e);
                if outcome.requeue == Requeue::Never {
                    self.ctx
                        .publish(
                            self.obj,
                            EventType::Warning,
                            outcome.health.reason(),
                            "CreateImportJob",
                            outcome.health.message().to_string(),
                        )
                        .await;
                }
                self.record(&Update {
                    health: Some(outcome.health),
                    create_not_applied: e.create_certainly_not_applied(),
                    ..Default::default()
                })
                .await?;
                Ok(self.ctx.action(self.key, outcome.requeue))
            }
        }
    }

    /// Looks for the job of an earlier create whose answer never got recorded.
    async fn recover(&self) -> Result<Action, Error> {
        let key = match self.key_or_outcome(None).await? {
            Ok(key) => key,
            Err(action) => return Ok(action),
        };
        // Listing every job is costly; a cache that lags behind our own last write is no reason.
        let Some(fresh) = self.fresh_if_still(&Plan::Recover).await? else {
            return Ok(Action::requeue(STALE_RETRY));
        };
        let expected = self.expected();
        let mut jobs = Vec::new();
        // Without a cursor, a listing during which jobs come or go may skip one: only a listing
        // whose total held still, and that reached its end, can prove that no job exists.
        let mut first_total = None;
        let mut complete = false;
        for page_no in 1..=MAX_RECOVERY_PAGES {
            let query = ListQuery {
                page_no: Some(page_no),
                page_size: Some(100),
                ..Default::default()
            };
            match self
                .ctx
                .call("list", self.ctx.jobs.list(&key, &query))
                .await
            {
                Ok(page) => {
                    let steady = *first_total.get_or_insert(page.total) == page.total;
                    let more = page.has_more() && !page.list.is_empty();
                    jobs.extend(page.list);
                    if !steady {
                        break;
                    }
                    if !more {
                        complete = true;
                        break;
                    }
                }
                Err(e) => {
                    let outcome = decision::on_api_error(Operation::Recover, &e);
                    return self.record_outcome(outcome, None).await;
                }
            }
        }
        let deleting = self.obj.metadata.deletion_timestamp.is_some();
        let chosen = self.obj.spec.job_id.as_deref();
        match correlation::recover(&jobs, &expected) {
            // A person picked one of several with spec.jobId: take it over.
            Recovery::Ambiguous(ids) if chosen.is_some_and(|c| ids.iter().any(|i| i == c)) => {
                match jobs.iter().find(|j| Some(j.job_id.as_str()) == chosen) {
                    Some(job) => self.mirror(job, Operation::Adopt).await,
                    None => Ok(Action::requeue(STALE_RETRY)),
                }
            }
            Recovery::Found(job) => {
                info!(name = %self.name(), job_id = %job.job_id, "found the job of an earlier create");
                self.ctx
                    .publish(
                        self.obj,
                        EventType::Normal,
                        "Recovered",
                        "RecoverImportJob",
                        format!(
                            "Found import job {} made by an earlier create whose answer was not recorded; not creating another",
                            job.job_id
                        ),
                    )
                    .await;
                self.mirror(&job, Operation::Recover).await
            }
            // A slow create may not be listed yet: only a whole listing after the grace period
            // counts.
            Recovery::NotCreated if !complete || !self.create_grace_passed() => {
                let outcome = ErrorOutcome {
                    health: Health::Progressing {
                        reason: "CreateUnconfirmed",
                        message: format!(
                            "No import job carries this resource's display name {:?} yet; looking again until {:?} \
                             after the create before concluding that it made none",
                            expected.display_name, self.ctx.settings.create_grace
                        ),
                    },
                    requeue: Requeue::Backoff { min: None },
                };
                self.record_outcome(outcome, None).await
            }
            // The create made nothing: forget it; spec.jobId is taken over (or deleted) next.
            Recovery::NotCreated if chosen.is_some() => {
                self.record(&Update {
                    create_not_applied: true,
                    ..Default::default()
                })
                .await?;
                Ok(Action::requeue(STALE_RETRY))
            }
            Recovery::NotCreated if deleting => self.release(ReleaseReason::NeverCreated).await,
            Recovery::NotCreated => self.send_with_intent(fresh, &key).await,
            Recovery::Ambiguous(ids) => {
                let outcome = ErrorOutcome {
                    health: Health::Stalled {
                        reason: "CreateAmbiguous",
                        message: format!(
                            "{} import jobs carry this resource's display name {:?}: {}. Keep one by setting \
                             spec.jobId to it, and delete the others in Model Studio",
                            ids.len(),
                            expected.display_name,
                            ids.join(", ")
                        ),
                    },
                    // A deletion waits for the person: look again at the poll interval.
                    requeue: if deleting { Requeue::Poll } else { Requeue::Never },
                };
                self.ctx
                    .publish(
                        self.obj,
                        EventType::Warning,
                        "CreateAmbiguous",
                        "RecoverImportJob",
                        outcome.health.message().to_string(),
                    )
                    .await;
                self.record_outcome(outcome, None).await
            }
        }
    }

    async fn read_job(&self, job_id: &str, op: Operation) -> Result<Action, Error> {
        let key = match self.key_or_outcome(None).await? {
            Ok(key) => key,
            Err(action) => return Ok(action),
        };
        match self.ctx.call("get", self.ctx.jobs.get(&key, job_id)).await {
            Ok(job) => {
                self.ctx.mark_read(self.key);
                self.mirror(&job, op).await
            }
            Err(e) => {
                let mut outcome = decision::on_api_error(op, &e);
                // A job made moments ago may not be readable yet where reads lag behind writes.
                if matches!(e, ApiError::NotFound(_)) && self.created_recently() {
                    outcome = ErrorOutcome {
                        health: Health::Degraded {
                            reason: "JobNotVisibleYet",
                            message: format!(
                                "Import job {job_id} was just created and cannot be read yet: {e}"
                            ),
                        },
                        requeue: Requeue::Backoff { min: None },
                    };
                }
                let finished = matches!(
                    self.obj.status.as_ref().and_then(|s| s.phase),
                    Some(Phase::Succeeded | Phase::Failed)
                );
                // A finished job cannot change: a failed look at it is no news for Ready.
                if finished && !matches!(outcome.health, Health::Stalled { .. }) {
                    warn!(name = %self.name(), error = %e, "could not check the finished job");
                    return Ok(self.ctx.action(self.key, outcome.requeue));
                }
                self.record_outcome(outcome, None).await
            }
        }
    }

    async fn mirror(&self, job: &ImportJob, op: Operation) -> Result<Action, Error> {
        let view = decision::observe_job(job);
        let before = self.obj.status.as_ref().and_then(|s| s.phase);
        self.record(&Update {
            health: Some(view.health.clone()),
            job: Some(view.clone()),
            ..Default::default()
        })
        .await?;
        if op == Operation::Adopt {
            self.ctx
                .publish(
                    self.obj,
                    EventType::Normal,
                    "Adopted",
                    "AdoptImportJob",
                    format!("Adopted existing import job {}", job.job_id),
                )
                .await;
        }
        if before != Some(view.phase) {
            match view.phase {
                Phase::Succeeded => {
                    self.ctx
                        .publish(
                            self.obj,
                            EventType::Normal,
                            "Succeeded",
                            "PollImportJob",
                            view.health.message().into(),
                        )
                        .await
                }
                Phase::Failed => {
                    self.ctx
                        .publish(
                            self.obj,
                            EventType::Warning,
                            "Failed",
                            "PollImportJob",
                            view.health.message().into(),
                        )
                        .await
                }
                _ => {}
            }
        }
        Ok(self.ctx.action(self.key, view.requeue))
    }

    async fn delete(&self, job_id: &str) -> Result<Action, Error> {
        let key = match self.key_or_outcome(Some(Phase::Deleting)).await? {
            Ok(key) => key,
            Err(action) => return Ok(action),
        };
        let result = self
            .ctx
            .call("delete", self.ctx.jobs.delete(&key, job_id))
            .await;
        match decision::on_delete(&result) {
            DeletionOutcome::Released { already_gone } => {
                self.remove_finalizer().await?;
                self.ctx.failures.succeeded(self.key);
                let note = if already_gone {
                    format!("Import job {job_id} was already gone from Model Studio")
                } else {
                    format!("Deleted import job {job_id} and its imported model")
                };
                info!(name = %self.name(), job_id, already_gone, "released after remote delete");
                self.ctx
                    .publish(
                        self.obj,
                        EventType::Normal,
                        "Deleted",
                        "DeleteImportJob",
                        note,
                    )
                    .await;
                Ok(Action::await_change())
            }
            DeletionOutcome::Retry(outcome) if outcome.health.reason() == "DeletionBlocked" => {
                // Read the job: its status shows while it finishes, and a finished job that is
                // still refused is reported as such rather than as "running".
                let job = self
                    .ctx
                    .call("get", self.ctx.jobs.get(&key, job_id))
                    .await
                    .ok();
                let outcome = decision::on_delete_denied(outcome, job.as_ref());
                self.ctx
                    .publish(
                        self.obj,
                        EventType::Warning,
                        outcome.health.reason(),
                        "DeleteImportJob",
                        outcome.health.message().to_string(),
                    )
                    .await;
                self.record(&Update {
                    job: job.as_ref().map(decision::observe_job),
                    health: Some(outcome.health),
                    phase: Some(Phase::Deleting),
                    ..Default::default()
                })
                .await?;
                Ok(self.ctx.action(self.key, outcome.requeue))
            }
            DeletionOutcome::Retry(outcome) => {
                self.record_outcome(outcome, Some(Phase::Deleting)).await
            }
        }
    }

    async fn release(&self, reason: ReleaseReason) -> Result<Action, Error> {
        self.remove_finalizer().await?;
        self.ctx.failures.succeeded(self.key);
        if reason == ReleaseReason::Orphan {
            let job = self
                .obj
                .status
                .as_ref()
                .and_then(|s| s.job_id.clone())
                .or_else(|| self.obj.spec.job_id.clone());
            if let Some(job) = job {
                self.ctx
                    .publish(
                        self.obj,
                        EventType::Normal,
                        "Orphaned",
                        "DeleteImportJob",
                        format!("Left import job {job} in Model Studio (deletionPolicy: Orphan)"),
                    )
                    .await;
            }
        }
        Ok(Action::await_change())
    }
}

/// The status fields [`MANAGER`] owns through its server-side apply, from managedFields.
fn applied_status_fields(obj: &ModelImport) -> std::collections::HashSet<String> {
    obj.managed_fields()
        .iter()
        .filter(|m| {
            m.manager.as_deref() == Some(MANAGER)
                && m.operation.as_deref() == Some("Apply")
                && m.subresource.as_deref() == Some("status")
        })
        .filter_map(|m| m.fields_v1.as_ref()?.0.get("f:status")?.as_object())
        .flat_map(|fields| fields.keys())
        .filter_map(|k| k.strip_prefix("f:").map(str::to_string))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limiter_allows_the_burst_then_holds_back() {
        let limiter = rate_limiter(1.0, 3);
        assert!((0..3).all(|_| limiter.check().is_ok()));
        assert!(limiter.check().is_err());
        // Nonsense settings still give a working limiter.
        let limiter = rate_limiter(f64::NAN, 0);
        assert!(limiter.check().is_ok());
        assert!(limiter.check().is_err());
        let limiter = rate_limiter(1e-20, 1);
        assert!(limiter.check().is_ok());
        assert!(limiter.check().is_err());
    }
}
