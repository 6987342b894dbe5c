//! The reconciler against a mocked Kubernetes API (tower-test) and the Model Studio simulator
//! (or, where a test needs what the simulator cannot do, the in-memory `FakeJobs`).
//!
//! The mock keeps one ModelImport and the Secrets in memory and answers the requests the
//! reconciler makes (finalizer JSON patches, status merge patches, Secret reads, Events), so each
//! test drives `reconcile` step by step as the controller loop would, and asserts on the object,
//! the events and the simulator's call counters.

use http::{Method, Request, Response, StatusCode};
use kube::client::Body;
use kube::runtime::controller::Action;
use kube::{Client, ResourceExt};
use modelstudio_controller::backoff::BackoffPolicy;
use modelstudio_controller::config::Config;
use modelstudio_controller::crd::{DeletionPolicy, ModelImport, Phase, FINALIZER};
use modelstudio_controller::import::{reconcile, ImportContext};
use modelstudio_controller::metrics::Metrics;
use modelstudio_controller::modelstudio::layered;
use modelstudio_controller::modelstudio::{
    ApiError, ApiKey, HttpClient, HttpClientConfig, ImportJobs, Job, JobState, NewJob, Operation,
    Source, Storage, WeightType,
};
use modelstudio_controller::pass::Context;
use modelstudio_simulator::{OutcomeRequest, RunningSimulator, SimulatorConfig};
use modelstudio_testbed::{remote_error, FakeJobs};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const KEY: &str = "sk-reconciler-test";
const NS: &str = "team-a";
const NAME: &str = "lora-1";

#[derive(Default)]
struct KubeState {
    object: Option<Value>,
    secrets: BTreeMap<String, Value>,
    events: Vec<Value>,
    requests: Vec<(Method, String)>,
    resource_version: u64,
}

type Shared = Arc<Mutex<KubeState>>;

fn status_error(code: u16, reason: &str, message: &str) -> (StatusCode, Value) {
    (
        StatusCode::from_u16(code).unwrap(),
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason, "message": message, "code": code}),
    )
}

/// A JSON patch as kube-apiserver applies it, whose `test` of null on a missing path matches.
fn json_patch_object(object: &mut Value, body: Value) -> Result<(), (StatusCode, Value)> {
    let patch: json_patch::Patch = serde_json::from_value(body).unwrap();
    let mut ops = vec![];
    for op in patch.0 {
        match &op {
            json_patch::PatchOperation::Test(t) if t.value.is_null() => {
                if !object.pointer(t.path.as_str()).is_none_or(Value::is_null) {
                    return Err(status_error(422, "Invalid", "test failed"));
                }
            }
            _ => ops.push(op),
        }
    }
    json_patch::patch(object, &ops).map_err(|e| status_error(422, "Invalid", &e.to_string()))
}

fn answer(
    state: &Shared,
    method: &Method,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> (StatusCode, Value) {
    let mut s = state.lock().unwrap();
    s.requests.push((method.clone(), path.to_string()));
    let object_path = format!("/apis/modelstudio.io/v1alpha1/namespaces/{NS}/modelimports/{NAME}");
    let body_json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    if path.starts_with(&format!("/api/v1/namespaces/{NS}/secrets/")) && method == Method::GET {
        let name = path.rsplit('/').next().unwrap();
        return match s.secrets.get(name) {
            Some(secret) => (StatusCode::OK, secret.clone()),
            None => status_error(404, "NotFound", &format!("secrets \"{name}\" not found")),
        };
    }
    if path.starts_with(&format!("/api/v1/namespaces/{NS}/secrets/")) && method == Method::PATCH {
        let name = path.rsplit('/').next().unwrap().to_string();
        let Some(mut secret) = s.secrets.get(&name).cloned() else {
            return status_error(404, "NotFound", &format!("secrets \"{name}\" not found"));
        };
        assert_eq!(content_type, "application/json-patch+json");
        if let Err(e) = json_patch_object(&mut secret, body_json) {
            return e;
        }
        s.secrets.insert(name, secret.clone());
        return (StatusCode::OK, secret);
    }
    if path.starts_with("/apis/events.k8s.io/v1/namespaces/") {
        if method == Method::POST {
            s.events.push(body_json.clone());
        }
        return (StatusCode::OK, body_json);
    }
    if (path == object_path || path == format!("{object_path}/status")) && method == Method::GET {
        return match &s.object {
            Some(object) => (StatusCode::OK, object.clone()),
            None => status_error(404, "NotFound", "not found"),
        };
    }
    if path == object_path && method == Method::PATCH {
        let Some(mut object) = s.object.clone() else {
            return status_error(404, "NotFound", "not found");
        };
        assert_eq!(
            content_type, "application/json-patch+json",
            "finalizers change by JSON patch"
        );
        if let Err(e) = json_patch_object(&mut object, body_json) {
            return e;
        }
        s.resource_version += 1;
        object["metadata"]["resourceVersion"] = json!(s.resource_version.to_string());
        let releasing = object["metadata"]["deletionTimestamp"].is_string()
            && object["metadata"]["finalizers"]
                .as_array()
                .is_none_or(|f| f.is_empty());
        s.object = if releasing {
            None
        } else {
            Some(object.clone())
        };
        return (StatusCode::OK, object);
    }
    if path == format!("{object_path}/status") && method == Method::PATCH {
        let Some(mut object) = s.object.clone() else {
            return status_error(404, "NotFound", "not found");
        };
        match content_type {
            // Server-side apply as kube-apiserver does it for one manager: fields it applied
            // before and leaves out now are removed, others' fields stay; ownership is recorded
            // in managedFields.
            "application/apply-patch+yaml" => {
                let applied = body_json["status"].as_object().cloned().unwrap_or_default();
                let owned: Vec<String> = object["metadata"]["managedFields"][0]["fieldsV1"]
                    ["f:status"]
                    .as_object()
                    .map(|f| {
                        f.keys()
                            .filter_map(|k| k.strip_prefix("f:"))
                            .map(String::from)
                            .collect()
                    })
                    .unwrap_or_default();
                let status = object["status"].as_object_mut();
                let mut status = status.map(std::mem::take).unwrap_or_default();
                status.retain(|k, _| applied.contains_key(k) || !owned.contains(k));
                status.extend(applied.clone());
                object["status"] = Value::Object(status);
                let fields: serde_json::Map<String, Value> = applied
                    .keys()
                    .map(|k| (format!("f:{k}"), json!({})))
                    .collect();
                object["metadata"]["managedFields"] = json!([{
                    "manager": "modelstudio-controller", "operation": "Apply",
                    "subresource": "status", "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:status": fields}
                }]);
            }
            "application/merge-patch+json" => {
                json_patch::merge(&mut object["status"], &body_json["status"])
            }
            other => panic!("status written with an unexpected patch type {other}"),
        }
        s.resource_version += 1;
        object["metadata"]["resourceVersion"] = json!(s.resource_version.to_string());
        s.object = Some(object.clone());
        return (StatusCode::OK, object);
    }
    status_error(
        404,
        "NotFound",
        &format!("the mock does not serve {method} {path}"),
    )
}

/// The reconciler against the mocked Kubernetes API and a Model Studio: the simulator over HTTP
/// (`R = RunningSimulator`, with `jobs` its client), or the in-memory fake (`R = Arc<FakeJobs>`).
struct Harness<R = RunningSimulator> {
    sim: R,
    ctx: Arc<ImportContext>,
    kube: Shared,
    jobs: Arc<dyn ImportJobs>,
}

/// The mocked Kubernetes API, answered by [`answer`] from the shared state.
fn kube_mock() -> (Client, Shared) {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let kube: Shared = Arc::default();
    let state = kube.clone();
    tokio::spawn(async move {
        while let Some((request, send)) = handle.next_request().await {
            let method = request.method().clone();
            let path = request.uri().path().to_string();
            let content_type = request
                .headers()
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            let body = request.into_body().collect_bytes().await.unwrap();
            let (status, value) = answer(&state, &method, &path, &content_type, &body);
            send.send_response(
                Response::builder()
                    .status(status)
                    .body(Body::from(serde_json::to_vec(&value).unwrap()))
                    .unwrap(),
            );
        }
    });
    (Client::new(service, NS), kube)
}

impl Harness {
    async fn new(config: Config) -> Harness {
        Self::with_simulator(
            SimulatorConfig {
                pending_duration: Duration::from_millis(150),
                running_duration: Duration::from_millis(300),
                api_keys: vec![KEY.into()],
                ..Default::default()
            },
            config,
        )
        .await
    }

    async fn with_simulator(sim_config: SimulatorConfig, config: Config) -> Harness {
        let sim = RunningSimulator::start(sim_config).await.unwrap();
        let jobs = HttpClient::new(HttpClientConfig {
            endpoint: sim.base_url(),
            timeout: Duration::from_secs(5),
            user_agent: "reconciler-test".into(),
        })
        .unwrap();
        let config = Config {
            endpoint: sim.base_url(),
            ..config
        };
        Harness::with_remote(sim, Arc::new(jobs), config)
    }
}

impl Harness<Arc<FakeJobs>> {
    fn with_fake(config: Config) -> Self {
        let fake = Arc::new(FakeJobs::new());
        Harness::with_remote(fake.clone(), fake, config)
    }
}

impl<R> Harness<R> {
    fn with_remote(sim: R, jobs: Arc<dyn ImportJobs>, config: Config) -> Self {
        let (client, kube) = kube_mock();
        let metrics = Arc::new(Metrics::default());
        let layered_jobs = layered(jobs.clone(), &config, metrics.clone());
        let ctx = Arc::new(ImportContext::new(
            Arc::new(Context::new(client, metrics, config)),
            layered_jobs,
        ));
        Harness {
            sim,
            ctx,
            kube,
            jobs,
        }
    }

    /// Makes a job as this resource's create would have (its display name).
    async fn job_with_our_token(&self) -> Job {
        self.jobs
            .create(
                &ApiKey::new(KEY).unwrap(),
                &create_request(&expected_display_name()),
            )
            .await
            .unwrap()
    }

    fn put(&self, object: Value) {
        self.kube.lock().unwrap().object = Some(object);
    }

    fn put_secret(&self, name: &str, key: &str, value: &str) {
        use base64_encode as b64;
        self.kube.lock().unwrap().secrets.insert(
            name.into(),
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": NS},
                   "data": {key: b64(value.as_bytes())}}),
        );
    }

    fn object(&self) -> Option<ModelImport> {
        let value = self.kube.lock().unwrap().object.clone()?;
        Some(serde_json::from_value(value).unwrap())
    }

    fn edit(&self, f: impl FnOnce(&mut Value)) {
        let mut s = self.kube.lock().unwrap();
        let object = s.object.as_mut().expect("object exists");
        f(object);
    }

    fn mark_deleted(&self) {
        self.edit(|o| o["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z"));
    }

    fn event_reasons(&self) -> Vec<String> {
        self.kube
            .lock()
            .unwrap()
            .events
            .iter()
            .map(|e| e["reason"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    fn kube_requests(&self, method: Method, suffix: &str) -> usize {
        self.kube
            .lock()
            .unwrap()
            .requests
            .iter()
            .filter(|(m, p)| *m == method && p.ends_with(suffix))
            .count()
    }

    /// One reconcile of the object as it is now.
    async fn step(&self) -> Action {
        let object = self.object().expect("object exists");
        let action = reconcile(Arc::new(object), self.ctx.clone())
            .await
            .expect("reconcile succeeds");
        // Events go out in the background; the assertions read them after the pass.
        self.ctx.pass.events.flush().await;
        action
    }

    /// Reconciles until `done` holds, as the controller loop would; bounded in count and time.
    async fn until(&self, what: &str, done: impl Fn(&Self) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        for _ in 0..200 {
            if done(self) {
                return;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            if self.object().is_some() {
                self.step().await;
            }
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
        panic!("{what} did not happen within 200 steps");
    }

    fn condition(&self, type_: &str) -> Option<(String, String, String)> {
        let o = self.object()?;
        let c = o
            .status?
            .conditions
            .into_iter()
            .find(|c| c.type_ == type_)?;
        Some((c.status, c.reason, c.message))
    }
}

fn base64_encode(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn fast_settings() -> Config {
    Config {
        poll_interval: Duration::from_millis(100),
        resync_interval: Duration::from_secs(600),
        backoff: BackoffPolicy {
            base: Duration::from_millis(50),
            cap: Duration::from_secs(1),
        },
        default_api_key: None,
        create_grace: Duration::ZERO,
        poll_jitter: 0.0,
        qps: 1000.0,
        burst: 100,
        // The harness points it at its simulator.
        ..Config::new("http://127.0.0.1:1")
    }
}

fn manifest(object_key: &str, policy: &str) -> Value {
    json!({
        "apiVersion": "modelstudio.io/v1alpha1",
        "kind": "ModelImport",
        "metadata": {"name": NAME, "namespace": NS, "uid": "uid-1", "generation": 1, "resourceVersion": "1"},
        "spec": {
            "baseModel": "qwen3-32b",
            "weightType": "lora",
            "source": "oss",
            "storage": {"bucketName": "bucket", "objectKey": object_key},
            "apiKeySecretRef": {"name": "dashscope", "key": "api-key"},
            "deletionPolicy": policy,
        }
    })
}

async fn ready_import(h: &Harness) {
    h.put_secret("dashscope", "api-key", KEY);
    h.put(manifest("models/a/", "Delete"));
    h.until("Ready", |h| {
        h.condition("Ready").is_some_and(|c| c.0 == "True")
    })
    .await;
}

/// The value of one metric of the harness's controller, summed over the samples with `labels`.
fn metric<R>(h: &Harness<R>, name: &str, labels: &[(&str, &str)]) -> f64 {
    modelstudio_testbed::metrics::sum(
        &modelstudio_testbed::metrics::samples(&h.ctx.pass.metrics.encode()),
        name,
        labels,
    )
}

#[tokio::test]
async fn creates_once_and_becomes_ready() {
    let h = Harness::new(fast_settings()).await;
    h.put_secret("dashscope", "api-key", KEY);
    let mut created = manifest("models/a/", "Delete");
    let thirty_seconds_ago = jiff::Timestamp::now().as_second() - 30;
    created["metadata"]["creationTimestamp"] =
        json!(jiff::Timestamp::from_second(thirty_seconds_ago)
            .unwrap()
            .to_string());
    h.put(created);

    // The finalizer comes first, before anything remote.
    assert_eq!(h.step().await, Action::await_change());
    assert_eq!(h.object().unwrap().finalizers(), [FINALIZER]);
    assert_eq!(h.sim.simulator.stats().create.total, 0);

    // Then one create, whose job ID is recorded at once. The workspace's poller follows the job
    // and wakes the resource when it changes: its own look is only the resync's.
    assert_eq!(h.step().await, Action::requeue(Duration::from_secs(600)));
    let status = h.object().unwrap().status.unwrap();
    let job_id = status.job_id.clone().expect("jobId recorded");
    assert_eq!(status.phase, Some(Phase::Pending));
    assert_eq!(h.condition("Reconciling").unwrap().0, "True");
    // The reconcile that our own status write triggers does not read the job again.
    let action = h.step().await;
    assert_ne!(action, Action::await_change());
    assert_eq!(
        h.sim.simulator.stats().get.total,
        0,
        "no read right after the create"
    );

    h.until("Ready", |h| {
        h.condition("Ready").is_some_and(|c| c.0 == "True")
    })
    .await;
    let o = h.object().unwrap();
    let status = o.status.unwrap();
    assert_eq!(status.job_id.as_deref(), Some(job_id.as_str()));
    assert!(status.model_name.unwrap().starts_with("qwen3-32b-offline-"));
    assert_eq!(status.remote_status.as_deref(), Some("SUCCESSED"));
    assert_eq!(status.phase, Some(Phase::Succeeded));
    assert_eq!(status.observed_generation, Some(1));
    assert!(status.created_at.is_some());
    assert_eq!(h.condition("Stalled").unwrap().0, "False");
    assert_eq!(
        h.sim.simulator.stats().create.total,
        1,
        "exactly one create"
    );
    assert_eq!(h.event_reasons(), ["Created", "Succeeded"]);
    // Ready=True was written once, about thirty seconds after the creation.
    let ready_count = "modelstudio_time_to_ready_seconds_count";
    assert_eq!(metric(&h, ready_count, &[]), 1.0);
    let ready_after = metric(&h, "modelstudio_time_to_ready_seconds_sum", &[]);
    assert!((30.0..90.0).contains(&ready_after), "{ready_after}");

    // A finished job is only resynced slowly, and an unchanged status is not written again.
    let writes = h.kube_requests(Method::PATCH, "/status");
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert_eq!(h.step().await, Action::requeue(Duration::from_secs(600)));
    assert_eq!(h.kube_requests(Method::PATCH, "/status"), writes);
    assert_eq!(h.sim.simulator.stats().create.total, 1);
    assert_eq!(metric(&h, ready_count, &[]), 1.0, "Ready counted once");
}

#[tokio::test]
async fn failed_job_stalls_with_its_reason() {
    let h = Harness::new(fast_settings()).await;
    h.put_secret("dashscope", "api-key", KEY);
    h.put(manifest("models/simulate-failure/", "Delete"));
    h.until("Stalled", |h| {
        h.condition("Stalled").is_some_and(|c| c.0 == "True")
    })
    .await;
    let (_, reason, message) = h.condition("Stalled").unwrap();
    assert_eq!(reason, "JobFailed");
    assert!(
        message.contains("Failed to get files from OSS"),
        "{message}"
    );
    let status = h.object().unwrap().status.unwrap();
    assert_eq!(status.phase, Some(Phase::Failed));
    assert!(status.error_code.unwrap().contains("OSS"));
    assert_eq!(h.condition("Ready").unwrap().0, "False");
    assert!(h.event_reasons().contains(&"Failed".to_string()));
}

#[tokio::test]
async fn delete_while_running_is_blocked_then_released_after_one_successful_delete() {
    let mut settings = fast_settings();
    settings.poll_interval = Duration::from_millis(100);
    let h = Harness::with_simulator(
        SimulatorConfig {
            pending_duration: Duration::from_millis(100),
            running_duration: Duration::from_secs(60),
            api_keys: vec![KEY.into()],
            ..Default::default()
        },
        settings,
    )
    .await;
    h.put_secret("dashscope", "api-key", KEY);
    h.put(manifest("models/a/", "Delete"));
    h.step().await;
    h.step().await;
    let job_id = h.object().unwrap().status.unwrap().job_id.unwrap();

    h.mark_deleted();
    assert_eq!(h.step().await, Action::requeue(Duration::from_millis(100)));
    let o = h.object().expect("kept while the job runs");
    assert_eq!(o.finalizers(), [FINALIZER]);
    assert_eq!(o.status.as_ref().unwrap().phase, Some(Phase::Deleting));
    let (_, reason, _) = h.condition("Reconciling").unwrap();
    assert_eq!(reason, "DeletionBlocked");
    assert!(h.event_reasons().contains(&"DeletionBlocked".to_string()));
    h.step().await;
    assert!(h.object().is_some());

    // The job finishes; the next attempt deletes it and releases the resource.
    h.sim
        .simulator
        .set_outcome(
            &job_id,
            OutcomeRequest {
                status: Some("SUCCESSED".into()),
                error_code: None,
                finish_now: true,
            },
        )
        .unwrap();
    assert_eq!(h.step().await, Action::await_change());
    assert!(h.object().is_none(), "released");
    // Timed from the deletionTimestamp (2026-01-01) to the release.
    let deletion = [("policy", "Delete")];
    let count = "modelstudio_deletion_duration_seconds_count";
    assert_eq!(metric(&h, count, &deletion), 1.0);
    let since = jiff::Timestamp::now().as_second() - 1_767_225_600;
    let took = metric(&h, "modelstudio_deletion_duration_seconds_sum", &deletion);
    assert!((took - since as f64).abs() < 60.0, "{took} vs {since}");
    let stats = h.sim.simulator.stats();
    assert_eq!(stats.delete.status(200), 1, "exactly one successful DELETE");
    assert!(stats.delete.code("OperationDenied") >= 2);
    assert_eq!(
        h.event_reasons().last().map(String::as_str),
        Some("Deleted")
    );
    assert!(h.sim.simulator.jobs().iter().all(|j| j.deleted));
}

#[tokio::test]
async fn delete_after_success_and_when_already_gone() {
    let h = Harness::new(fast_settings()).await;
    ready_import(&h).await;
    h.mark_deleted();
    assert_eq!(h.step().await, Action::await_change());
    assert!(h.object().is_none());
    assert_eq!(h.sim.simulator.stats().delete.status(200), 1);

    // A job deleted out of band answers NotFound, which also releases the resource.
    let h = Harness::new(fast_settings()).await;
    ready_import(&h).await;
    let job_id = h.object().unwrap().status.unwrap().job_id.unwrap();
    h.jobs
        .delete(&ApiKey::new(KEY).unwrap(), &job_id)
        .await
        .unwrap();
    h.mark_deleted();
    h.step().await;
    assert!(h.object().is_none());
    assert_eq!(h.sim.simulator.stats().delete.code("NotFound"), 1);
}

#[tokio::test]
async fn orphan_releases_without_a_call() {
    let h = Harness::new(fast_settings()).await;
    ready_import(&h).await;
    h.edit(|o| o["spec"]["deletionPolicy"] = json!("Orphan"));
    assert_eq!(
        h.object().unwrap().spec.deletion_policy,
        DeletionPolicy::Orphan
    );
    h.mark_deleted();
    h.step().await;
    assert!(h.object().is_none());
    assert_eq!(h.sim.simulator.stats().delete.total, 0);
    assert!(h.sim.simulator.jobs().iter().all(|j| !j.deleted));
    assert!(h.event_reasons().contains(&"Orphaned".to_string()));
    let count = "modelstudio_deletion_duration_seconds_count";
    assert_eq!(metric(&h, count, &[("policy", "Orphan")]), 1.0);
    assert_eq!(metric(&h, count, &[("policy", "Delete")]), 0.0);
}

#[tokio::test]
async fn never_created_releases_without_a_call() {
    let h = Harness::new(fast_settings()).await;
    h.put(manifest("models/a/", "Delete"));
    h.step().await; // finalizer
    h.mark_deleted();
    h.step().await;
    assert!(h.object().is_none());
    assert_eq!(h.sim.simulator.stats().delete.total, 0);
    assert_eq!(h.sim.simulator.stats().create.total, 0);
}

#[tokio::test]
async fn adopts_an_existing_job_and_stalls_on_a_missing_one() {
    let h = Harness::new(fast_settings()).await;
    h.put_secret("dashscope", "api-key", KEY);
    let existing = h
        .jobs
        .create(
            &ApiKey::new(KEY).unwrap(),
            &NewJob {
                base_model: "qwen3-8b".into(),
                display_name: None,
                source: Source::Oss,
                weight_type: WeightType::Lora,
                storage: Storage {
                    bucket_name: "bucket".into(),
                    object_key: "models/existing/".into(),
                },
            },
        )
        .await
        .unwrap();
    let mut m = manifest("models/existing/", "Delete");
    m["spec"]["jobId"] = json!(existing.id);
    h.put(m);
    h.until("Ready", |h| {
        h.condition("Ready").is_some_and(|c| c.0 == "True")
    })
    .await;
    assert_eq!(
        h.object().unwrap().status.unwrap().job_id.as_deref(),
        Some(existing.id.as_str())
    );
    assert_eq!(
        h.sim.simulator.stats().create.total,
        1,
        "adoption creates nothing"
    );
    assert!(h.event_reasons().contains(&"Adopted".to_string()));

    let h = Harness::new(fast_settings()).await;
    h.put_secret("dashscope", "api-key", KEY);
    let mut m = manifest("models/existing/", "Delete");
    m["spec"]["jobId"] = json!("00000000-0000-4000-8000-000000000000");
    h.put(m);
    h.until("Stalled", |h| {
        h.condition("Stalled").is_some_and(|c| c.0 == "True")
    })
    .await;
    assert_eq!(h.condition("Stalled").unwrap().1, "JobNotFound");
    assert_eq!(
        h.step().await,
        Action::await_change(),
        "no retry until the spec changes"
    );
    assert_eq!(h.sim.simulator.stats().create.total, 0);
}

#[tokio::test]
async fn invalid_create_stalls_until_the_spec_changes() {
    let h = Harness::new(fast_settings()).await;
    h.put_secret("dashscope", "api-key", KEY);
    let mut m = manifest("models/a/", "Delete");
    m["spec"]["baseModel"] = json!("not-importable");
    h.put(m);
    h.step().await;
    assert_eq!(h.step().await, Action::await_change());
    let (status, reason, message) = h.condition("Stalled").unwrap();
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("True", "BaseModelNotFound")
    );
    assert!(
        message.contains("request"),
        "the request ID is kept: {message}"
    );
    h.step().await;
    h.step().await;
    assert_eq!(
        h.sim.simulator.stats().create.total,
        1,
        "not retried on the same generation"
    );

    // A new generation (the Secret reference changed) is tried again.
    h.edit(|o| o["metadata"]["generation"] = json!(2));
    h.step().await;
    assert_eq!(h.sim.simulator.stats().create.total, 2);
}

#[tokio::test]
async fn missing_credentials_make_no_remote_call() {
    let h = Harness::new(fast_settings()).await;
    h.put(manifest("models/a/", "Delete"));
    h.step().await;
    let action = h.step().await;
    assert_ne!(action, Action::await_change(), "retried with backoff");
    let (status, reason, message) = h.condition("Ready").unwrap();
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "CredentialsMissing")
    );
    assert!(message.contains("dashscope"), "{message}");
    h.put_secret("dashscope", "other-key", KEY);
    h.step().await;
    assert!(h.condition("Ready").unwrap().2.contains("api-key"));
    let stats = h.sim.simulator.stats();
    assert_eq!(
        stats.create.total + stats.get.total + stats.list.total + stats.delete.total,
        0
    );

    // Once the key is there the import proceeds.
    h.put_secret("dashscope", "api-key", KEY);
    h.until("Ready", |h| {
        h.condition("Ready").is_some_and(|c| c.0 == "True")
    })
    .await;
}

#[tokio::test]
async fn wrong_api_key_is_retried_with_growing_backoff_and_never_shown() {
    let h = Harness::new(fast_settings()).await;
    h.put_secret("dashscope", "api-key", "sk-canary-0123456789");
    h.put(manifest("models/a/", "Delete"));
    h.step().await;
    let mut delays = vec![];
    for _ in 0..4 {
        let action = h.step().await;
        delays.push(format!("{action:?}"));
    }
    let (status, reason, message) = h.condition("Ready").unwrap();
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "InvalidApiKey")
    );
    assert!(!message.contains("sk-canary"));
    let all = {
        let kube = h.kube.lock().unwrap();
        serde_json::to_string(&kube.object).unwrap() + &serde_json::to_string(&kube.events).unwrap()
    };
    assert!(
        !all.contains("sk-canary"),
        "the key leaked into status or events"
    );
    assert_eq!(h.sim.simulator.stats().create.code("InvalidApiKey"), 4);
    assert!(
        delays.iter().all(|d| d.contains("requeue_after: Some")),
        "{delays:?}"
    );
}

#[tokio::test]
async fn default_key_is_used_without_a_secret_ref() {
    let mut settings = fast_settings();
    settings.default_api_key = ApiKey::new(KEY);
    let h = Harness::new(settings).await;
    let mut m = manifest("models/a/", "Delete");
    m["spec"].as_object_mut().unwrap().remove("apiKeySecretRef");
    h.put(m);
    h.until("Ready", |h| {
        h.condition("Ready").is_some_and(|c| c.0 == "True")
    })
    .await;
    assert_eq!(h.kube_requests(Method::GET, "/secrets/dashscope"), 0);
}

fn expected_display_name() -> String {
    modelstudio_core::correlation::display_name(NAME, "uid-1")
}

/// The resource as a controller killed after recording its create intent leaves it.
fn after_intent() -> Value {
    let mut m = manifest("models/a/", "Delete");
    m["metadata"]["finalizers"] = json!([FINALIZER]);
    m["status"] = json!({"displayName": expected_display_name(), "createAttemptedAt": "2026-01-01T00:00:00Z"});
    m
}

fn create_request(display_name: &str) -> NewJob {
    NewJob {
        base_model: "qwen3-32b".into(),
        display_name: Some(display_name.into()),
        source: Source::Oss,
        weight_type: WeightType::Lora,
        storage: Storage {
            bucket_name: "bucket".into(),
            object_key: "models/a/".into(),
        },
    }
}

#[tokio::test]
async fn lost_create_answer_is_recovered_without_a_second_job() {
    let h = Harness::new(fast_settings()).await;
    h.put_secret("dashscope", "api-key", KEY);
    h.put(manifest("models/a/", "Delete"));
    h.step().await;
    h.sim.simulator.set_faults(modelstudio_simulator::Faults {
        lost_create_rate: 1.0,
        ..Default::default()
    });
    let action = h.step().await;
    assert_ne!(action, Action::await_change());
    let status = h.object().unwrap().status.unwrap();
    assert!(status.job_id.is_none());
    assert!(
        status.create_attempted_at.is_some(),
        "the intent stays until the job is found"
    );
    assert_eq!(
        status.display_name.as_deref(),
        Some(expected_display_name().as_str())
    );
    assert_eq!(h.condition("Ready").unwrap().1, "CreateUnconfirmed");
    assert_eq!(
        h.sim.simulator.jobs().len(),
        1,
        "the job was made although the answer was lost"
    );

    h.sim
        .simulator
        .set_faults(modelstudio_simulator::Faults::default());
    h.until("Ready", |h| {
        h.condition("Ready").is_some_and(|c| c.0 == "True")
    })
    .await;
    let jobs = h.sim.simulator.jobs();
    assert_eq!(jobs.len(), 1, "no duplicate");
    let status = h.object().unwrap().status.unwrap();
    assert_eq!(status.job_id.as_deref(), Some(jobs[0].job_id.as_str()));
    assert!(status.create_attempted_at.is_none());
    assert_eq!(h.sim.simulator.stats().create.total, 1);
    assert!(h.sim.simulator.stats().list.total >= 1);
    assert!(h.event_reasons().contains(&"Recovered".to_string()));
}

#[tokio::test]
async fn restart_between_create_and_record_adopts_the_job() {
    let h = Harness::new(fast_settings()).await;
    h.put_secret("dashscope", "api-key", KEY);
    // The state a controller killed right after its POST leaves behind.
    let job = h.job_with_our_token().await;
    h.put(after_intent());
    h.step().await;
    let status = h.object().unwrap().status.unwrap();
    assert_eq!(status.job_id.as_deref(), Some(job.id.as_str()));
    assert_eq!(h.sim.simulator.stats().create.total, 1, "no second create");
}

#[tokio::test]
async fn restart_between_intent_and_create_creates_once() {
    let h = Harness::new(fast_settings()).await;
    h.put_secret("dashscope", "api-key", KEY);
    h.put(after_intent());
    h.step().await;
    assert!(h.object().unwrap().status.unwrap().job_id.is_some());
    assert_eq!(h.sim.simulator.stats().create.total, 1);
    assert_eq!(h.sim.simulator.jobs().len(), 1);
}

#[tokio::test]
async fn two_jobs_with_our_token_stall_as_ambiguous() {
    let h = Harness::new(fast_settings()).await;
    h.put_secret("dashscope", "api-key", KEY);
    let a = h.job_with_our_token().await;
    let b = h.job_with_our_token().await;
    h.put(after_intent());
    assert_eq!(h.step().await, Action::await_change());
    let (status, reason, message) = h.condition("Stalled").unwrap();
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("True", "CreateAmbiguous")
    );
    assert!(
        message.contains(&a.id) && message.contains(&b.id),
        "{message}"
    );
    assert!(message.contains("spec.jobId"));
    assert_eq!(
        h.sim.simulator.stats().create.total,
        2,
        "nothing more created"
    );

    // A person picks one with spec.jobId: a new generation adopts it.
    h.edit(|o| {
        o["spec"]["jobId"] = json!(a.id);
        o["metadata"]["generation"] = json!(2);
    });
    h.step().await;
    assert_eq!(
        h.object().unwrap().status.unwrap().job_id.as_deref(),
        Some(a.id.as_str())
    );
}

#[tokio::test]
async fn deleting_with_an_unrecorded_job_deletes_it_instead_of_leaking_it() {
    let h = Harness::new(fast_settings()).await;
    h.put_secret("dashscope", "api-key", KEY);
    let job = h.job_with_our_token().await;
    h.sim
        .simulator
        .set_outcome(
            &job.id,
            OutcomeRequest {
                status: None,
                error_code: None,
                finish_now: true,
            },
        )
        .unwrap();
    let mut m = after_intent();
    m["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
    h.put(m);
    h.until("released", |h| h.object().is_none()).await;
    assert!(
        h.sim.simulator.jobs().iter().all(|j| j.deleted),
        "no leaked job"
    );
    assert_eq!(h.sim.simulator.stats().delete.status(200), 1);

    // Without a job to find, deletion lets go after looking.
    let h = Harness::new(fast_settings()).await;
    h.put_secret("dashscope", "api-key", KEY);
    let mut m = after_intent();
    m["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
    h.put(m);
    h.step().await;
    assert!(h.object().is_none());
    assert_eq!(h.sim.simulator.stats().create.total, 0);
}

#[tokio::test]
async fn a_stale_cached_object_never_creates_twice() {
    let h = Harness::new(fast_settings()).await;
    h.put_secret("dashscope", "api-key", KEY);
    h.put(manifest("models/a/", "Delete"));
    h.step().await;
    let stale = h.object().unwrap();
    h.step().await;
    assert!(h.object().unwrap().status.unwrap().job_id.is_some());
    // The cache still shows the object before the job was recorded.
    reconcile(Arc::new(stale), h.ctx.clone()).await.unwrap();
    assert_eq!(h.sim.simulator.stats().create.total, 1);
}

#[tokio::test]
async fn a_slow_create_is_waited_for_before_creating_again() {
    let mut settings = fast_settings();
    settings.create_grace = Duration::from_millis(600);
    let h = Harness::new(settings).await;
    h.put_secret("dashscope", "api-key", KEY);
    // A create was sent a moment ago and its answer was lost; the job is not listed (yet).
    let mut m = after_intent();
    m["status"]["createAttemptedAt"] = json!(k8s_openapi::jiff::Timestamp::now().to_string());
    h.put(m);
    h.step().await;
    assert_eq!(
        h.sim.simulator.stats().create.total,
        0,
        "not created again within the grace period"
    );
    assert_eq!(h.condition("Reconciling").unwrap().1, "CreateUnconfirmed");
    // The slow create shows up: it is adopted, nothing more is created.
    let job = h.job_with_our_token().await;
    h.step().await;
    assert_eq!(
        h.object().unwrap().status.unwrap().job_id.as_deref(),
        Some(job.id.as_str())
    );
    assert_eq!(h.sim.simulator.stats().create.total, 1);

    // Without a job even after the grace period, the create is sent once more.
    let h = Harness::new(Config {
        create_grace: Duration::from_millis(300),
        ..fast_settings()
    })
    .await;
    h.put_secret("dashscope", "api-key", KEY);
    let mut m = after_intent();
    m["status"]["createAttemptedAt"] = json!(k8s_openapi::jiff::Timestamp::now().to_string());
    h.put(m);
    h.step().await;
    assert_eq!(h.sim.simulator.stats().create.total, 0);
    tokio::time::sleep(Duration::from_millis(400)).await;
    h.step().await;
    assert_eq!(h.sim.simulator.stats().create.total, 1);
    assert!(h.object().unwrap().status.unwrap().job_id.is_some());
}

#[tokio::test]
async fn a_deletion_whose_secret_is_gone_uses_the_default_key_or_says_how_to_let_go() {
    let mut settings = fast_settings();
    settings.default_api_key = ApiKey::new(KEY);
    let h = Harness::new(settings).await;
    ready_import(&h).await;
    h.kube.lock().unwrap().secrets.clear();
    h.mark_deleted();
    h.step().await;
    assert!(h.object().is_none(), "deleted with the default key");
    assert_eq!(h.sim.simulator.stats().delete.status(200), 1);

    let h = Harness::new(fast_settings()).await;
    ready_import(&h).await;
    h.kube.lock().unwrap().secrets.clear();
    h.mark_deleted();
    h.step().await;
    let (_, reason, message) = h.condition("Ready").unwrap();
    assert_eq!(reason, "CredentialsMissing");
    assert!(message.contains("deletionPolicy to Orphan"), "{message}");
    assert_eq!(
        h.object().unwrap().finalizers(),
        [FINALIZER],
        "kept until the job is deleted"
    );
}

#[tokio::test]
async fn a_finished_job_stays_ready_when_a_resync_fails() {
    let h = Harness::new(fast_settings()).await;
    ready_import(&h).await;
    h.sim.simulator.set_faults(modelstudio_simulator::Faults {
        error_rate: 1.0,
        ..Default::default()
    });
    tokio::time::sleep(Duration::from_millis(60)).await;
    let action = h.step().await;
    // The resync reads finished jobs by listing them.
    assert_eq!(
        h.sim.simulator.stats().list.code("InternalError"),
        1,
        "the resync listing failed"
    );
    assert_ne!(action, Action::await_change());
    assert_eq!(
        h.condition("Ready").unwrap().0,
        "True",
        "a terminal job cannot change"
    );
}

#[tokio::test]
async fn a_just_created_job_that_cannot_be_read_yet_is_not_stalled() {
    let h = Harness::new(Config {
        create_grace: Duration::from_secs(30),
        ..fast_settings()
    })
    .await;
    h.put_secret("dashscope", "api-key", KEY);
    let mut m = manifest("models/a/", "Delete");
    m["metadata"]["finalizers"] = json!([FINALIZER]);
    let now = k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.3f+00:00")
        .to_string();
    m["status"] = json!({"jobId": "00000000-0000-4000-8000-00000000abcd", "createdAt": now, "phase": "Pending"});
    h.put(m);
    let action = h.step().await;
    assert_ne!(action, Action::await_change(), "looked at again");
    // The workspace's poller lists, misses the job and reads it on its own: not found yet.
    h.until("JobNotVisibleYet", |h| {
        h.condition("Reconciling")
            .is_some_and(|c| c.1 == "JobNotVisibleYet")
    })
    .await;
    // An old job that is gone is a real stall.
    h.edit(|o| o["status"]["createdAt"] = json!("2024-01-01T12:00:00.000+00:00"));
    h.until("JobNotFound", |h| {
        h.condition("Stalled").is_some_and(|c| c.1 == "JobNotFound")
    })
    .await;
    // Stalled for good: not looked at again until the resource changes.
    assert_eq!(h.step().await, Action::await_change());
}

#[tokio::test]
async fn a_blocked_deletion_shows_the_job_progress() {
    let h = Harness::with_simulator(
        SimulatorConfig {
            pending_duration: Duration::from_millis(50),
            running_duration: Duration::from_secs(60),
            api_keys: vec![KEY.into()],
            ..Default::default()
        },
        fast_settings(),
    )
    .await;
    h.put_secret("dashscope", "api-key", KEY);
    h.put(manifest("models/a/", "Delete"));
    h.step().await;
    h.step().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    h.mark_deleted();
    h.step().await;
    let status = h.object().unwrap().status.unwrap();
    assert_eq!(status.phase, Some(Phase::Deleting));
    assert_eq!(
        status.remote_status.as_deref(),
        Some("RUNNING"),
        "the job's progress shows while deleting"
    );
    assert_eq!(h.condition("Reconciling").unwrap().1, "DeletionBlocked");
}

/// The reconciler's job in the fake, recorded in status (still pending).
async fn job_in_fake(h: &Harness<Arc<FakeJobs>>) -> String {
    h.put_secret("dashscope", "api-key", KEY);
    h.put(manifest("models/a/", "Delete"));
    h.until("a job", |h| {
        h.object()
            .and_then(|o| o.status)
            .is_some_and(|s| s.job_id.is_some())
    })
    .await;
    h.object().unwrap().status.unwrap().job_id.unwrap()
}

/// A fake's job taken to Ready: created by the reconciler, then finished by the test.
async fn ready_with_fake(h: &Harness<Arc<FakeJobs>>) -> String {
    let job_id = job_in_fake(h).await;
    h.sim.set_state(&job_id, JobState::Succeeded);
    h.until("Ready", |h| {
        h.condition("Ready").is_some_and(|c| c.0 == "True")
    })
    .await;
    job_id
}

#[tokio::test]
async fn a_finished_job_whose_deletion_is_refused_says_so_and_lets_go_once_orphaned() {
    let h = Harness::with_fake(fast_settings());
    let job_id = ready_with_fake(&h).await;
    // Refused although finished (a deployment may use the model): not "still running".
    h.sim.refuse_delete(&job_id);
    h.mark_deleted();
    h.step().await;
    let (status, reason, message) = h.condition("Reconciling").unwrap();
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("True", "DeletionRefused")
    );
    assert!(message.contains("has finished (SUCCESSED)"), "{message}");
    assert!(message.contains("deletionPolicy to Orphan"), "{message}");
    assert!(h.event_reasons().contains(&"DeletionRefused".to_string()));
    let o = h.object().expect("still held by the finalizer");
    assert_eq!(o.status.unwrap().phase, Some(Phase::Deleting));
    // One DELETE, then one GET to tell a finished job from a running one.
    let calls = h.sim.calls();
    assert_eq!(
        &calls[calls.len() - 2..],
        [
            (Operation::Delete, Some(job_id.clone())),
            (Operation::Get, Some(job_id.clone()))
        ]
    );

    // The person follows the message: Orphan lets the resource go and keeps the job.
    h.edit(|o| o["spec"]["deletionPolicy"] = json!("Orphan"));
    h.step().await;
    assert!(h.object().is_none());
    assert_eq!(h.sim.jobs().len(), 1);
    assert_eq!(h.sim.count(Operation::Delete), 1);
    assert!(h.event_reasons().contains(&"Orphaned".to_string()));
}

#[tokio::test]
async fn an_outage_on_a_poll_shows_as_remote_unavailable_and_the_layers_count_each_call() {
    let h = Harness::with_fake(fast_settings());
    job_in_fake(&h).await;
    h.sim.fail_next(Operation::List, || {
        ApiError::Server(remote_error("InternalError", 500))
    });
    // The workspace's next listing meets the outage: every job of the workspace shows it.
    h.until("RemoteUnavailable", |h| {
        h.condition("Reconciling")
            .is_some_and(|c| c.1 == "RemoteUnavailable")
    })
    .await;
    let (status, reason, message) = h.condition("Reconciling").unwrap();
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("True", "RemoteUnavailable")
    );
    assert!(message.contains("InternalError"), "{message}");
    let metrics = h.ctx.pass.metrics.encode();
    let count = |operation: &str, result: &str| {
        let line = format!(
            "modelstudio_api_requests_total{{operation=\"{operation}\",result=\"{result}\"}} "
        );
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(line.as_str()))
            .map(|n| n.trim().parse::<u64>().unwrap())
            .unwrap_or(0)
    };
    assert_eq!(count("create", "ok"), 1, "{metrics}");
    assert_eq!(count("list", "ServerError"), 1, "{metrics}");
    assert_eq!(
        count("list", "ok") + count("list", "ServerError"),
        h.sim.count(Operation::List) as u64,
        "every call went through the metrics layer: {metrics}"
    );
    // Every call waited its turn in the quota, in its class: the create among mutations, the
    // listings among polls.
    let waits = |priority| {
        metric(
            &h,
            "modelstudio_api_rate_limit_wait_seconds_count",
            &[("priority", priority)],
        )
    };
    assert_eq!(waits("mutation"), 1.0, "{metrics}");
    assert!(waits("poll") >= 1.0, "{metrics}");
}

const OTHER_KEY: &str = "sk-reconciler-other-workspace";

fn two_workspaces() -> SimulatorConfig {
    SimulatorConfig {
        pending_duration: Duration::from_millis(150),
        running_duration: Duration::from_millis(300),
        api_keys: vec![KEY.into(), OTHER_KEY.into()],
        ..Default::default()
    }
}

impl<R> Harness<R> {
    fn secret(&self, name: &str) -> Value {
        self.kube.lock().unwrap().secrets[name].clone()
    }

    /// The position of the first request of `method` on a path ending with `suffix`.
    fn first_request(&self, method: Method, suffix: &str) -> Option<usize> {
        self.kube
            .lock()
            .unwrap()
            .requests
            .iter()
            .position(|(m, p)| *m == method && p.ends_with(suffix))
    }
}

#[tokio::test]
async fn the_credentials_secret_is_protected_before_the_create_and_the_key_is_fingerprinted() {
    let h = Harness::new(fast_settings()).await;
    ready_import(&h).await;
    let secret = h.secret("dashscope");
    assert_eq!(
        secret["metadata"]["finalizers"],
        json!(["modelstudio.io/credentials"])
    );
    assert_eq!(
        secret["metadata"]["labels"]["modelstudio.io/credentials"],
        "in-use"
    );
    // The Secret was protected before the intent (and so before the create) was written.
    let protect = h
        .first_request(Method::PATCH, "/secrets/dashscope")
        .unwrap();
    let intent = h.first_request(Method::PATCH, "/status").unwrap();
    assert!(protect < intent, "protect {protect}, intent {intent}");
    let fingerprint = h.object().unwrap().status.unwrap().api_key_fingerprint;
    let fingerprint = fingerprint.expect("the key's fingerprint is recorded");
    assert!(
        fingerprint.starts_with("sha256:") && fingerprint.len() == 23,
        "{fingerprint}"
    );
    assert!(!fingerprint.contains(KEY));
    // Protected once: later reconciles do not patch the Secret again.
    assert_eq!(h.kube_requests(Method::PATCH, "/secrets/dashscope"), 1);

    // An import that keeps its job (Orphan) needs no protection.
    let h = Harness::new(fast_settings()).await;
    h.put_secret("dashscope", "api-key", KEY);
    h.put(manifest("models/a/", "Orphan"));
    h.until("a job", |h| {
        h.object()
            .and_then(|o| o.status)
            .is_some_and(|s| s.job_id.is_some())
    })
    .await;
    assert_eq!(h.kube_requests(Method::PATCH, "/secrets/dashscope"), 0);
    assert!(h.secret("dashscope")["metadata"]["finalizers"].is_null());
}

#[tokio::test]
async fn a_key_of_another_workspace_never_releases_the_job_and_says_what_to_do() {
    let h = Harness::with_simulator(two_workspaces(), fast_settings()).await;
    ready_import(&h).await;
    let job_id = h.object().unwrap().status.unwrap().job_id.unwrap();
    // The Secret now holds a key of another workspace, which cannot see the job.
    h.put_secret("dashscope", "api-key", OTHER_KEY);
    tokio::time::sleep(Duration::from_millis(60)).await;
    h.step().await;
    let (status, reason, message) = h.condition("Stalled").unwrap();
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("True", "WorkspaceChanged")
    );
    assert!(
        message.contains(&job_id) && message.contains("Orphan"),
        "{message}"
    );
    assert!(
        !message.contains(OTHER_KEY) && !message.contains(KEY),
        "{message}"
    );

    // Deleting: NotFound under the other key is no proof the job is gone.
    h.mark_deleted();
    h.step().await;
    let o = h.object().expect("not released");
    assert_eq!(o.status.unwrap().phase, Some(Phase::Deleting));
    assert_eq!(h.condition("Stalled").unwrap().1, "WorkspaceChanged");
    assert_eq!(h.sim.simulator.jobs().len(), 1);
    assert_eq!(h.sim.simulator.stats().delete.code("NotFound"), 1);

    // The original key back: the job is deleted and the resource released.
    h.put_secret("dashscope", "api-key", KEY);
    h.until("released", |h| h.object().is_none()).await;
    assert_eq!(h.sim.simulator.stats().delete.status(200), 1);
}

#[tokio::test]
async fn the_namespace_default_secret_comes_before_the_controller_default_key() {
    let config = Config {
        default_api_key: ApiKey::new(OTHER_KEY),
        ..fast_settings()
    };
    let h = Harness::with_simulator(two_workspaces(), config).await;
    h.put_secret("modelstudio-credentials", "api-key", KEY);
    let mut m = manifest("models/a/", "Delete");
    m["spec"].as_object_mut().unwrap().remove("apiKeySecretRef");
    h.put(m);
    h.until("a job", |h| {
        h.object()
            .and_then(|o| o.status)
            .is_some_and(|s| s.job_id.is_some())
    })
    .await;
    // Made in the namespace Secret's workspace, not the default key's, and that Secret is kept.
    let jobs = h.sim.simulator.jobs();
    assert_eq!(jobs.len(), 1);
    assert_eq!(
        h.secret("modelstudio-credentials")["metadata"]["finalizers"],
        json!(["modelstudio.io/credentials"])
    );
    let client = HttpClient::new(HttpClientConfig {
        endpoint: h.sim.base_url(),
        timeout: Duration::from_secs(5),
        user_agent: "reconciler-test".into(),
    })
    .unwrap();
    let job_id = h.object().unwrap().status.unwrap().job_id.unwrap();
    assert!(client
        .get(&ApiKey::new(KEY).unwrap(), &job_id)
        .await
        .is_ok());
    assert!(client
        .get(&ApiKey::new(OTHER_KEY).unwrap(), &job_id)
        .await
        .is_err());
    // A broken namespace Secret is reported, not passed over for the default key.
    let h = Harness::with_simulator(
        two_workspaces(),
        Config {
            default_api_key: ApiKey::new(OTHER_KEY),
            ..fast_settings()
        },
    )
    .await;
    h.put_secret("modelstudio-credentials", "wrong-key", KEY);
    let mut m = manifest("models/a/", "Delete");
    m["spec"].as_object_mut().unwrap().remove("apiKeySecretRef");
    h.put(m);
    h.step().await;
    h.step().await;
    let (_, reason, message) = h.condition("Reconciling").unwrap();
    assert_eq!(reason, "CredentialsMissing");
    assert!(message.contains("modelstudio-credentials"), "{message}");
    assert_eq!(h.sim.simulator.stats().create.total, 0);
}
