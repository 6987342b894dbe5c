//! The ModelImport reconciler, pass by pass, against the real control plane (the CRDs
//! installed; one control plane per test binary, a fresh namespace per harness) and the Model
//! Studio simulator (or, where a test needs what the simulator cannot do, the in-memory
//! `FakeJobs`).
//!
//! Each test drives `reconcile` over the object as the API server stores it, as the controller
//! loop would, and asserts on the stored object (status, conditions, finalizers,
//! resourceVersion), the Secrets, the Events the server holds, the metrics and the simulator's
//! (or fake's) call counters. A state a controller leaves behind (a recorded intent, a recorded
//! job) is written as the controller writes it: server-side apply of the status as its manager.

use futures::TryStreamExt;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::ByteString;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent};
use kube::api::{ObjectMeta, WatchParams};
use kube::runtime::controller::Action;
use kube::{Client, ResourceExt};
use modelstudio_controller::backoff::BackoffPolicy;
use modelstudio_controller::config::{Config, DefaultKeyConfig, NamespaceGrant, MANAGER};
use modelstudio_controller::crd::{DeletionPolicy, Kind, ModelImport, Phase, FINALIZER};
use modelstudio_controller::import::{reconcile, ImportContext};
use modelstudio_controller::metrics::Metrics;
use modelstudio_controller::modelstudio::layered;
use modelstudio_controller::modelstudio::{
    ApiError, ApiKey, HttpClient, HttpClientConfig, ImportJobs, Job, JobState, NewJob, Operation,
    Source, Storage, WeightType,
};
use modelstudio_controller::pass::Context;
use modelstudio_core::credentials::{CREDENTIALS_LABEL, READ_VALUE};
use modelstudio_simulator::{OutcomeRequest, RunningSimulator, SimulatorConfig};
use modelstudio_testbed::{apply_crd, remote_error, Cluster, FakeJobs, ImportBuilder};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

const KEY: &str = "sk-reconciler-test";
const NAME: &str = "lora-1";
/// The field manager of what a test writes as a person would (Secrets, spec and status edits).
const TEST_MANAGER: &str = "reconciler-test";
/// Longest one reconcile may take, and one request of the test itself.
const PASS_LIMIT: Duration = Duration::from_secs(30);
/// Longest a test waits for the reconciler to reach a state.
const UNTIL_LIMIT: Duration = Duration::from_secs(20);

/// The control plane the tests of this binary share, with the CRDs installed: started by the
/// first test that needs it, stopped (by its processes' PIDs) when the last test holding it
/// ends (a test that starts after that, as with `--test-threads 1`, starts another). Each
/// harness works in a namespace of its own.
async fn shared_cluster() -> Arc<Cluster> {
    static SLOT: tokio::sync::Mutex<Weak<Cluster>> = tokio::sync::Mutex::const_new(Weak::new());
    let mut slot = SLOT.lock().await;
    if let Some(cluster) = slot.upgrade() {
        return cluster;
    }
    let cluster = Arc::new(Cluster::start().await.expect("the control plane starts"));
    let client = cluster.client("default").await.expect("a client");
    for kind in Kind::ALL {
        apply_crd(&client, &kind.definition())
            .await
            .expect("the CRD is installed");
    }
    *slot = Arc::downgrade(&cluster);
    cluster
}

/// A new namespace of the shared control plane, and an admin client whose default it is.
async fn fresh_namespace(cluster: &Cluster) -> (Client, String) {
    static N: AtomicUsize = AtomicUsize::new(0);
    let ns = format!("reconciler-{}", N.fetch_add(1, Ordering::Relaxed));
    let client = cluster.client(&ns).await.expect("a client");
    let namespace = Namespace {
        metadata: ObjectMeta {
            name: Some(ns.clone()),
            ..Default::default()
        },
        ..Default::default()
    };
    bounded(Api::<Namespace>::all(client.clone()).create(&PostParams::default(), &namespace))
        .await
        .expect("the namespace is created");
    (client, ns)
}

/// Patch parameters of what the test writes as a person would.
fn as_test() -> PatchParams {
    PatchParams {
        field_manager: Some(TEST_MANAGER.into()),
        ..Default::default()
    }
}

/// A request of the test, bounded in time.
async fn bounded<T>(request: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(PASS_LIMIT, request)
        .await
        .expect("the API server answers in time")
}

/// The reconciler against the real control plane and a Model Studio: the simulator over HTTP
/// (`R = RunningSimulator`, with `jobs` its client), or the in-memory fake (`R = Arc<FakeJobs>`).
struct Harness<R = RunningSimulator> {
    sim: R,
    ctx: Arc<ImportContext>,
    client: Client,
    jobs: Arc<dyn ImportJobs>,
    _cluster: Arc<Cluster>,
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
        Harness::with_remote(sim, Arc::new(jobs), config).await
    }
}

impl Harness<Arc<FakeJobs>> {
    async fn with_fake(config: Config) -> Self {
        let fake = Arc::new(FakeJobs::new());
        Harness::with_remote(fake.clone(), fake, config).await
    }
}

impl<R> Harness<R> {
    async fn with_remote(sim: R, jobs: Arc<dyn ImportJobs>, config: Config) -> Self {
        let cluster = shared_cluster().await;
        let (client, _) = fresh_namespace(&cluster).await;
        let metrics = Arc::new(Metrics::default());
        let layered_jobs = layered(jobs.clone(), &config, metrics.clone());
        let ctx = Arc::new(ImportContext::new(
            Arc::new(Context::new(client.clone(), metrics, config)),
            layered_jobs,
        ));
        Harness {
            sim,
            ctx,
            client,
            jobs,
            _cluster: cluster,
        }
    }

    fn imports(&self) -> Api<ModelImport> {
        Api::default_namespaced(self.client.clone())
    }

    fn secrets(&self) -> Api<Secret> {
        Api::default_namespaced(self.client.clone())
    }

    /// Creates the ModelImport `manifest` (its status, if any, is not part of a create).
    async fn put(&self, manifest: Value) -> ModelImport {
        let object: ModelImport = serde_json::from_value(manifest).unwrap();
        bounded(self.imports().create(&PostParams::default(), &object))
            .await
            .expect("the ModelImport is admitted")
    }

    /// Writes `status` as the controller does (server-side apply as its manager): what a
    /// controller stopped after that write leaves behind.
    async fn put_status_as_controller(&self, status: Value) {
        let apply = json!({
            "apiVersion": "modelstudio.io/v1alpha1", "kind": "ModelImport", "status": status,
        });
        bounded(self.imports().patch_status(
            NAME,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&apply),
        ))
        .await
        .expect("the status is written");
    }

    /// The resource as a controller killed after recording its create intent leaves it: its
    /// finalizer, and the display name its create carries with when it was sent: `attempted_at`,
    /// or (`None`) the moment of the write. When the intent was written.
    async fn put_after_intent(&self, attempted_at: Option<&str>) -> Instant {
        let mut m = manifest("models/a/", "Delete");
        m["metadata"]["finalizers"] = json!([FINALIZER]);
        self.put(m).await;
        let display_name = self.expected_display_name().await;
        let written = Instant::now();
        let attempted_at =
            attempted_at.map_or_else(|| jiff::Timestamp::now().to_string(), String::from);
        self.put_status_as_controller(
            json!({"displayName": display_name, "createAttemptedAt": attempted_at}),
        )
        .await;
        written
    }

    /// The display name this resource's create carries (from its UID).
    async fn expected_display_name(&self) -> String {
        let object = self.object().await.expect("object exists");
        modelstudio_core::correlation::display_name(NAME, &object.uid().expect("a UID"))
    }

    /// Makes a job as this resource's create would have (its display name).
    async fn job_with_our_token(&self) -> Job {
        let display_name = self.expected_display_name().await;
        self.jobs
            .create(&ApiKey::new(KEY).unwrap(), &create_request(&display_name))
            .await
            .unwrap()
    }

    /// Creates or updates the Secret `name` to hold only `key` = `value` (server-side apply as
    /// the test: what the controller added, its finalizer and label, stays).
    async fn put_secret(&self, name: &str, key: &str, value: &str) {
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            data: Some(BTreeMap::from([(
                key.to_string(),
                ByteString(value.as_bytes().to_vec()),
            )])),
            ..Default::default()
        };
        bounded(self.secrets().patch(
            name,
            &PatchParams::apply(TEST_MANAGER).force(),
            &Patch::Apply(&secret),
        ))
        .await
        .expect("the Secret is written");
    }

    async fn secret(&self, name: &str) -> Secret {
        bounded(self.secrets().get(name))
            .await
            .expect("the Secret exists")
    }

    /// Every Secret of the namespace gone for good: its finalizers taken off, then deleted.
    async fn remove_secrets(&self) {
        let secrets = self.secrets();
        let list = bounded(secrets.list(&ListParams::default())).await.unwrap();
        for secret in list {
            let name = secret.name_any();
            let unprotect = json!({"metadata": {"finalizers": null}});
            bounded(secrets.patch(&name, &as_test(), &Patch::Merge(&unprotect)))
                .await
                .unwrap();
            bounded(secrets.delete(&name, &DeleteParams::default()))
                .await
                .unwrap();
            let gone = bounded(secrets.get_opt(&name)).await.unwrap();
            assert!(gone.is_none(), "the Secret {name} is gone");
        }
    }

    /// The object as the API server stores it; `None` once it is gone.
    async fn object(&self) -> Option<ModelImport> {
        bounded(self.imports().get_opt(NAME))
            .await
            .expect("the API server answers")
    }

    /// Changes the spec as a person would (a merge patch): a new generation.
    async fn edit_spec(&self, spec: Value) {
        bounded(
            self.imports()
                .patch(NAME, &as_test(), &Patch::Merge(&json!({ "spec": spec }))),
        )
        .await
        .expect("the spec change is admitted");
    }

    /// Changes the status by a merge patch.
    async fn edit_status(&self, status: Value) {
        bounded(self.imports().patch_status(
            NAME,
            &as_test(),
            &Patch::Merge(&json!({ "status": status })),
        ))
        .await
        .expect("the status change is admitted");
    }

    /// Deletes the resource: the API server sets its deletionTimestamp and keeps it while the
    /// finalizer holds it.
    async fn mark_deleted(&self) {
        assert_eq!(
            self.object().await.expect("object exists").finalizers(),
            [FINALIZER],
            "held by the finalizer"
        );
        bounded(self.imports().delete(NAME, &DeleteParams::default()))
            .await
            .expect("the delete is accepted");
    }

    /// The Events the API server holds about the resource, oldest first.
    async fn events(&self) -> Vec<Event> {
        let events: Api<Event> = Api::default_namespaced(self.client.clone());
        let mut events: Vec<Event> = bounded(events.list(&ListParams::default()))
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|e| {
                e.regarding.as_ref().is_some_and(|r| {
                    r.kind.as_deref() == Some("ModelImport") && r.name.as_deref() == Some(NAME)
                })
            })
            .collect();
        events.sort_by(|a, b| {
            let at = |e: &Event| e.event_time.as_ref().map(|t| t.0);
            (at(a), a.metadata.name.clone()).cmp(&(at(b), b.metadata.name.clone()))
        });
        events
    }

    async fn event_reasons(&self) -> Vec<String> {
        self.events()
            .await
            .into_iter()
            .map(|e| e.reason.unwrap_or_default())
            .collect()
    }

    /// One reconcile of the object as the API server stores it now.
    async fn step(&self) -> Action {
        let object = self.object().await.expect("object exists");
        let action =
            tokio::time::timeout(PASS_LIMIT, reconcile(Arc::new(object), self.ctx.clone()))
                .await
                .expect("the reconcile ends in time")
                .expect("reconcile succeeds");
        // Events go out in the background; the assertions read them after the pass.
        bounded(self.ctx.pass.events.flush()).await;
        action
    }

    /// Reconciles until `done` holds of the stored object (`None` once it is gone), as the
    /// controller loop would; bounded in count and time.
    async fn until(&self, what: &str, done: impl Fn(Option<&ModelImport>) -> bool) {
        let deadline = Instant::now() + UNTIL_LIMIT;
        for _ in 0..200 {
            let object = self.object().await;
            if done(object.as_ref()) {
                return;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            if object.is_some() {
                self.step().await;
            }
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
        panic!("{what} did not happen within 200 steps");
    }

    /// The stored object's condition `type_`: its status, reason and message.
    async fn condition(&self, type_: &str) -> Option<(String, String, String)> {
        condition(self.object().await.as_ref(), type_)
    }

    /// Every version of the resource the API server stored after the resourceVersion `since`,
    /// oldest first, up to the first that satisfies `last` (a watch from `since`; bounded).
    async fn versions_after(
        &self,
        since: &str,
        last: impl Fn(&ModelImport) -> bool,
    ) -> Vec<ModelImport> {
        let params = WatchParams::default()
            .fields(&format!("metadata.name={NAME}"))
            .timeout(20);
        let stream = bounded(self.imports().watch(&params, since)).await.unwrap();
        let mut stream = std::pin::pin!(stream);
        let mut versions = vec![];
        loop {
            let event = bounded(stream.try_next())
                .await
                .expect("the watch goes on")
                .expect("a version satisfies the watch's end before it closes");
            match event {
                WatchEvent::Added(o) | WatchEvent::Modified(o) => {
                    let end = last(&o);
                    versions.push(o);
                    if end {
                        return versions;
                    }
                }
                WatchEvent::Error(e) => panic!("the watch failed: {e:?}"),
                _ => {}
            }
        }
    }
}

/// The condition `type_` of `object`: its status, reason and message.
fn condition(object: Option<&ModelImport>, type_: &str) -> Option<(String, String, String)> {
    let c = object?
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)?
        .clone();
    Some((c.status, c.reason, c.message))
}

fn is_ready(object: Option<&ModelImport>) -> bool {
    condition(object, "Ready").is_some_and(|c| c.0 == "True")
}

fn is_stalled(object: Option<&ModelImport>) -> bool {
    condition(object, "Stalled").is_some_and(|c| c.0 == "True")
}

fn has_job(object: Option<&ModelImport>) -> bool {
    object
        .and_then(|o| o.status.as_ref())
        .is_some_and(|s| s.job_id.is_some())
}

/// A resourceVersion as a number: kube-apiserver's are etcd's revisions, one order over every
/// object of the cluster.
fn revision(object: &impl ResourceExt) -> u64 {
    object
        .resource_version()
        .expect("a resourceVersion")
        .parse()
        .expect("a numeric resourceVersion")
}

fn fast_settings() -> Config {
    Config {
        poll_interval: Duration::from_millis(100),
        resync_interval: Duration::from_secs(600),
        backoff: BackoffPolicy {
            base: Duration::from_millis(50),
            cap: Duration::from_secs(1),
        },
        default_key: None,
        create_grace: Duration::ZERO,
        poll_jitter: 0.0,
        qps: 1000.0,
        burst: 100,
        // The harness points it at its simulator.
        ..Config::new("http://127.0.0.1:1")
    }
}

/// The controller's default key `key`, granted to every namespace.
fn granted_everywhere(key: &str) -> Option<DefaultKeyConfig> {
    Some(DefaultKeyConfig {
        key: ApiKey::new(key).expect("a key"),
        namespaces: NamespaceGrant::All,
    })
}

fn manifest(object_key: &str, policy: &str) -> Value {
    ImportBuilder::new(NAME)
        .spec("source", json!("oss"))
        .spec(
            "storage",
            json!({"bucketName": "bucket", "objectKey": object_key}),
        )
        .spec(
            "apiKeySecretRef",
            json!({"name": "dashscope", "key": "api-key"}),
        )
        .spec("deletionPolicy", json!(policy))
        .json()
}

async fn ready_import(h: &Harness) {
    h.put_secret("dashscope", "api-key", KEY).await;
    h.put(manifest("models/a/", "Delete")).await;
    h.until("Ready", is_ready).await;
}

/// The value of one metric of the harness's controller, summed over the samples with `labels`.
fn metric<R>(h: &Harness<R>, name: &str, labels: &[(&str, &str)]) -> f64 {
    modelstudio_testbed::metrics::sum(
        &modelstudio_testbed::metrics::samples(&h.ctx.pass.metrics.encode()),
        name,
        labels,
    )
}

/// Seconds from `at` (a stored timestamp) to now.
fn seconds_since(at: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time) -> f64 {
    (jiff::Timestamp::now().as_millisecond() - at.0.as_millisecond()) as f64 / 1000.0
}

#[tokio::test]
async fn creates_once_and_becomes_ready() {
    let h = Harness::new(fast_settings()).await;
    h.put_secret("dashscope", "api-key", KEY).await;
    let created = h.put(manifest("models/a/", "Delete")).await;
    // The API server sets the creationTimestamp; the first pass comes well after it, so the
    // time to Ready shows it is timed from the creation, not from the first pass.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // The finalizer comes first, before anything remote.
    assert_eq!(h.step().await, Action::await_change());
    assert_eq!(h.object().await.unwrap().finalizers(), [FINALIZER]);
    assert_eq!(h.sim.simulator.stats().create.total, 0);

    // Then one create, whose job ID is recorded at once. The workspace's poller follows the job
    // and wakes the resource when it changes: its own look is only the resync's.
    assert_eq!(h.step().await, Action::requeue(Duration::from_secs(600)));
    let status = h.object().await.unwrap().status.unwrap();
    let job_id = status.job_id.clone().expect("jobId recorded");
    assert_eq!(status.phase, Some(Phase::Pending));
    assert_eq!(h.condition("Reconciling").await.unwrap().0, "True");
    // The reconcile that our own status write triggers does not read the job again.
    let action = h.step().await;
    assert_ne!(action, Action::await_change());
    assert_eq!(
        h.sim.simulator.stats().get.total,
        0,
        "no read right after the create"
    );

    h.until("Ready", is_ready).await;
    let o = h.object().await.unwrap();
    let status = o.status.clone().unwrap();
    assert_eq!(status.job_id.as_deref(), Some(job_id.as_str()));
    assert!(status.model_name.unwrap().starts_with("qwen3-32b-offline-"));
    assert_eq!(status.remote_status.as_deref(), Some("SUCCESSED"));
    assert_eq!(status.phase, Some(Phase::Succeeded));
    assert_eq!(status.observed_generation, Some(1));
    assert!(status.created_at.is_some());
    assert_eq!(h.condition("Stalled").await.unwrap().0, "False");
    assert_eq!(
        h.sim.simulator.stats().create.total,
        1,
        "exactly one create"
    );
    assert_eq!(h.event_reasons().await, ["Created", "Succeeded"]);
    // The controller owns the status by server-side apply, and the finalizer by its patch.
    let owned = |operation: &str, subresource: Option<&str>, field: &str| {
        o.managed_fields().iter().any(|f| {
            f.manager.as_deref() == Some(MANAGER)
                && f.operation.as_deref() == Some(operation)
                && f.subresource.as_deref() == subresource
                && f.fields_v1
                    .as_ref()
                    .is_some_and(|v| v.0.pointer(field).is_some())
        })
    };
    assert!(
        owned("Apply", Some("status"), "/f:status/f:jobId"),
        "{:?}",
        o.managed_fields()
    );
    assert!(
        owned("Update", None, "/f:metadata/f:finalizers"),
        "{:?}",
        o.managed_fields()
    );
    // Ready=True was written once, timed from the server's creationTimestamp (whole seconds,
    // so never less than the 1.5 s waited before the first pass).
    let ready_count = "modelstudio_time_to_ready_seconds_count";
    assert_eq!(metric(&h, ready_count, &[]), 1.0);
    let ready_after = metric(&h, "modelstudio_time_to_ready_seconds_sum", &[]);
    let since_creation = seconds_since(created.metadata.creation_timestamp.as_ref().unwrap());
    assert!(
        (1.5..=since_creation).contains(&ready_after),
        "{ready_after} (created {since_creation} s ago)"
    );

    // A finished job is only resynced slowly, and an unchanged status is not written again:
    // the stored object does not change.
    let version = o.resource_version();
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert_eq!(h.step().await, Action::requeue(Duration::from_secs(600)));
    assert_eq!(h.object().await.unwrap().resource_version(), version);
    assert_eq!(h.sim.simulator.stats().create.total, 1);
    assert_eq!(metric(&h, ready_count, &[]), 1.0, "Ready counted once");
}

#[tokio::test]
async fn a_reconcile_asked_by_annotation_reads_the_job_at_once_and_is_recorded() {
    let h = Harness::new(fast_settings()).await;
    ready_import(&h).await;
    // Finished: a pass now reads nothing until the resync.
    let reads = h.sim.simulator.stats().get.total;
    h.step().await;
    assert_eq!(
        h.sim.simulator.stats().get.total,
        reads,
        "no read before the resync"
    );

    let ask = |value: &str| json!({"metadata": {"annotations": {"modelstudio.io/reconcile-requested-at": value}}});
    h.imports()
        .patch(
            NAME,
            &PatchParams::default(),
            &Patch::Merge(ask("2026-12-07T10:00:00Z")),
        )
        .await
        .unwrap();
    h.step().await;
    assert_eq!(
        h.sim.simulator.stats().get.total,
        reads + 1,
        "the job is read at once"
    );
    let status = h.object().await.unwrap().status.unwrap();
    assert_eq!(
        status.last_handled_reconcile_at.as_deref(),
        Some("2026-12-07T10:00:00Z")
    );
    assert_eq!(status.phase, Some(Phase::Succeeded));
    // Handled once: the next passes read nothing more, until a new value.
    h.step().await;
    assert_eq!(h.sim.simulator.stats().get.total, reads + 1);
    h.imports()
        .patch(NAME, &PatchParams::default(), &Patch::Merge(ask("2")))
        .await
        .unwrap();
    h.step().await;
    assert_eq!(h.sim.simulator.stats().get.total, reads + 2);
    let status = h.object().await.unwrap().status.unwrap();
    assert_eq!(status.last_handled_reconcile_at.as_deref(), Some("2"));
}

#[tokio::test]
async fn a_paused_import_makes_no_call_and_its_deletion_lets_the_job_go() {
    let h = Harness::new(fast_settings()).await;
    ready_import(&h).await;
    let calls = h.sim.simulator.requests().len();
    let pause = json!({"metadata": {"annotations": {
        "modelstudio.io/paused": "true",
        "modelstudio.io/reconcile-requested-at": "1",
    }}});
    h.imports()
        .patch(NAME, &PatchParams::default(), &Patch::Merge(pause))
        .await
        .unwrap();
    h.step().await;
    assert_eq!(
        h.condition("Reconciling").await.map(|c| (c.0, c.1)),
        Some(("False".into(), "Paused".into()))
    );
    assert_eq!(
        h.condition("Ready").await.map(|c| c.0),
        Some("True".into()),
        "Ready as it was"
    );
    let status = h.object().await.unwrap().status.unwrap();
    assert_eq!(
        status.last_handled_reconcile_at, None,
        "not handled while paused"
    );
    h.step().await;
    assert_eq!(
        h.sim.simulator.requests().len(),
        calls,
        "no call while paused"
    );

    // Deleted while paused: released at once, the job left in Model Studio, a Warning says so.
    h.mark_deleted().await;
    h.step().await;
    assert!(h.object().await.is_none(), "released");
    assert_eq!(h.sim.simulator.requests().len(), calls, "no DELETE");
    assert_eq!(h.sim.simulator.stats().delete.total, 0);
    let events = h.events().await;
    let orphaned = events
        .iter()
        .find(|e| e.reason.as_deref() == Some("Orphaned"))
        .expect("an Orphaned event");
    assert_eq!(orphaned.type_.as_deref(), Some("Warning"));
    assert!(
        orphaned.note.as_deref().unwrap_or("").contains("paused"),
        "{:?}",
        orphaned.note
    );
}

#[tokio::test]
async fn failed_job_stalls_with_its_reason() {
    let h = Harness::new(fast_settings()).await;
    h.put_secret("dashscope", "api-key", KEY).await;
    h.put(manifest("models/simulate-failure/", "Delete")).await;
    h.until("Stalled", is_stalled).await;
    let (_, reason, message) = h.condition("Stalled").await.unwrap();
    assert_eq!(reason, "JobFailed");
    assert!(
        message.contains("Failed to get files from OSS"),
        "{message}"
    );
    let status = h.object().await.unwrap().status.unwrap();
    assert_eq!(status.phase, Some(Phase::Failed));
    assert!(status.error_code.unwrap().contains("OSS"));
    assert_eq!(h.condition("Ready").await.unwrap().0, "False");
    assert!(h.event_reasons().await.contains(&"Failed".to_string()));
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
    h.put_secret("dashscope", "api-key", KEY).await;
    h.put(manifest("models/a/", "Delete")).await;
    h.step().await;
    h.step().await;
    let job_id = h.object().await.unwrap().status.unwrap().job_id.unwrap();

    h.mark_deleted().await;
    let deleted_at = h.object().await.unwrap().metadata.deletion_timestamp;
    let deleted_at = deleted_at.expect("the API server set the deletionTimestamp");
    // The deletion passes come well after it, so its duration shows it is timed from it.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(h.step().await, Action::requeue(Duration::from_millis(100)));
    let o = h.object().await.expect("kept while the job runs");
    assert_eq!(o.finalizers(), [FINALIZER]);
    assert_eq!(o.status.as_ref().unwrap().phase, Some(Phase::Deleting));
    let (_, reason, _) = h.condition("Reconciling").await.unwrap();
    assert_eq!(reason, "DeletionBlocked");
    assert!(h
        .event_reasons()
        .await
        .contains(&"DeletionBlocked".to_string()));
    h.step().await;
    assert!(h.object().await.is_some());

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
    assert!(h.object().await.is_none(), "released");
    // Timed from the deletionTimestamp (whole seconds: at least the second waited) to the
    // release.
    let deletion = [("policy", "Delete")];
    let count = "modelstudio_deletion_duration_seconds_count";
    assert_eq!(metric(&h, count, &deletion), 1.0);
    let since = seconds_since(&deleted_at);
    let took = metric(&h, "modelstudio_deletion_duration_seconds_sum", &deletion);
    assert!((1.0..=since).contains(&took), "{took} vs {since}");
    let stats = h.sim.simulator.stats();
    assert_eq!(stats.delete.status(200), 1, "exactly one successful DELETE");
    assert!(stats.delete.code("OperationDenied") >= 2);
    assert_eq!(
        h.event_reasons().await.last().map(String::as_str),
        Some("Deleted")
    );
    assert!(h.sim.simulator.jobs().iter().all(|j| j.deleted));
}

#[tokio::test]
async fn delete_after_success_and_when_already_gone() {
    let h = Harness::new(fast_settings()).await;
    ready_import(&h).await;
    h.mark_deleted().await;
    assert_eq!(h.step().await, Action::await_change());
    assert!(h.object().await.is_none());
    assert_eq!(h.sim.simulator.stats().delete.status(200), 1);

    // A job deleted out of band answers NotFound, which also releases the resource.
    let h = Harness::new(fast_settings()).await;
    ready_import(&h).await;
    let job_id = h.object().await.unwrap().status.unwrap().job_id.unwrap();
    h.jobs
        .delete(&ApiKey::new(KEY).unwrap(), &job_id)
        .await
        .unwrap();
    h.mark_deleted().await;
    h.step().await;
    assert!(h.object().await.is_none());
    assert_eq!(h.sim.simulator.stats().delete.code("NotFound"), 1);
}

#[tokio::test]
async fn orphan_releases_without_a_call() {
    let h = Harness::new(fast_settings()).await;
    ready_import(&h).await;
    h.edit_spec(json!({"deletionPolicy": "Orphan"})).await;
    assert_eq!(
        h.object().await.unwrap().spec.deletion_policy,
        DeletionPolicy::Orphan
    );
    h.mark_deleted().await;
    h.step().await;
    assert!(h.object().await.is_none());
    assert_eq!(h.sim.simulator.stats().delete.total, 0);
    assert!(h.sim.simulator.jobs().iter().all(|j| !j.deleted));
    assert!(h.event_reasons().await.contains(&"Orphaned".to_string()));
    let count = "modelstudio_deletion_duration_seconds_count";
    assert_eq!(metric(&h, count, &[("policy", "Orphan")]), 1.0);
    assert_eq!(metric(&h, count, &[("policy", "Delete")]), 0.0);
}

#[tokio::test]
async fn never_created_releases_without_a_call() {
    let h = Harness::new(fast_settings()).await;
    h.put(manifest("models/a/", "Delete")).await;
    h.step().await; // finalizer
    h.mark_deleted().await;
    h.step().await;
    assert!(h.object().await.is_none());
    assert_eq!(h.sim.simulator.stats().delete.total, 0);
    assert_eq!(h.sim.simulator.stats().create.total, 0);
}

#[tokio::test]
async fn adopts_an_existing_job_and_stalls_on_a_missing_one() {
    let h = Harness::new(fast_settings()).await;
    h.put_secret("dashscope", "api-key", KEY).await;
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
    h.put(m).await;
    h.until("Ready", is_ready).await;
    assert_eq!(
        h.object().await.unwrap().status.unwrap().job_id.as_deref(),
        Some(existing.id.as_str())
    );
    assert_eq!(
        h.sim.simulator.stats().create.total,
        1,
        "adoption creates nothing"
    );
    assert!(h.event_reasons().await.contains(&"Adopted".to_string()));

    let h = Harness::new(fast_settings()).await;
    h.put_secret("dashscope", "api-key", KEY).await;
    let mut m = manifest("models/existing/", "Delete");
    m["spec"]["jobId"] = json!("00000000-0000-4000-8000-000000000000");
    h.put(m).await;
    h.until("Stalled", is_stalled).await;
    assert_eq!(h.condition("Stalled").await.unwrap().1, "JobNotFound");
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
    h.put_secret("dashscope", "api-key", KEY).await;
    let mut m = manifest("models/a/", "Delete");
    m["spec"]["baseModel"] = json!("not-importable");
    h.put(m).await;
    h.step().await;
    assert_eq!(h.step().await, Action::await_change());
    let (status, reason, message) = h.condition("Stalled").await.unwrap();
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
    h.put_secret("dashscope-rotated", "api-key", KEY).await;
    h.edit_spec(json!({"apiKeySecretRef": {"name": "dashscope-rotated"}}))
        .await;
    assert_eq!(h.object().await.unwrap().metadata.generation, Some(2));
    h.step().await;
    assert_eq!(h.sim.simulator.stats().create.total, 2);
}

#[tokio::test]
async fn missing_credentials_make_no_remote_call() {
    let h = Harness::new(fast_settings()).await;
    h.put(manifest("models/a/", "Delete")).await;
    h.step().await;
    let action = h.step().await;
    assert_ne!(action, Action::await_change(), "retried with backoff");
    let (status, reason, message) = h.condition("Ready").await.unwrap();
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "CredentialsMissing")
    );
    assert!(message.contains("dashscope"), "{message}");
    h.put_secret("dashscope", "other-key", KEY).await;
    h.step().await;
    assert!(h.condition("Ready").await.unwrap().2.contains("api-key"));
    let stats = h.sim.simulator.stats();
    assert_eq!(
        stats.create.total + stats.get.total + stats.list.total + stats.delete.total,
        0
    );

    // Once the key is there the import proceeds.
    h.put_secret("dashscope", "api-key", KEY).await;
    h.until("Ready", is_ready).await;
}

#[tokio::test]
async fn wrong_api_key_is_retried_with_growing_backoff_and_never_shown() {
    let h = Harness::new(fast_settings()).await;
    h.put_secret("dashscope", "api-key", "sk-canary-0123456789")
        .await;
    h.put(manifest("models/a/", "Delete")).await;
    h.step().await;
    let mut delays = vec![];
    for _ in 0..4 {
        let action = h.step().await;
        delays.push(format!("{action:?}"));
    }
    let (status, reason, message) = h.condition("Ready").await.unwrap();
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "InvalidApiKey")
    );
    assert!(!message.contains("sk-canary"));
    let all = serde_json::to_string(&h.object().await).unwrap()
        + &serde_json::to_string(&h.events().await).unwrap();
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
    settings.default_key = granted_everywhere(KEY);
    let h = Harness::new(settings).await;
    // A Secret of the usual name, whose key Model Studio refuses: the import must not use it.
    h.put_secret("dashscope", "api-key", "sk-not-this-one")
        .await;
    let mut m = manifest("models/a/", "Delete");
    m["spec"].as_object_mut().unwrap().remove("apiKeySecretRef");
    h.put(m).await;
    h.until("Ready", is_ready).await;
    assert_eq!(h.sim.simulator.stats().create.code("InvalidApiKey"), 0);
    let secret = h.secret("dashscope").await;
    assert!(secret.finalizers().is_empty(), "not protected: not used");
    assert!(secret
        .managed_fields()
        .iter()
        .all(|f| f.manager.as_deref() != Some(MANAGER)));
}

/// What a create of this resource sends, with the display name `display_name`.
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

/// When a killed controller sent its create, long ago.
const LONG_AGO: &str = "2026-01-01T00:00:00Z";

#[tokio::test]
async fn lost_create_answer_is_recovered_without_a_second_job() {
    let h = Harness::new(fast_settings()).await;
    h.put_secret("dashscope", "api-key", KEY).await;
    h.put(manifest("models/a/", "Delete")).await;
    h.step().await;
    h.sim.simulator.set_faults(modelstudio_simulator::Faults {
        lost_create_rate: 1.0,
        ..Default::default()
    });
    let action = h.step().await;
    assert_ne!(action, Action::await_change());
    let status = h.object().await.unwrap().status.unwrap();
    assert!(status.job_id.is_none());
    assert!(
        status.create_attempted_at.is_some(),
        "the intent stays until the job is found"
    );
    assert_eq!(
        status.display_name.as_deref(),
        Some(h.expected_display_name().await.as_str())
    );
    assert_eq!(h.condition("Ready").await.unwrap().1, "CreateUnconfirmed");
    assert_eq!(
        h.sim.simulator.jobs().len(),
        1,
        "the job was made although the answer was lost"
    );

    h.sim
        .simulator
        .set_faults(modelstudio_simulator::Faults::default());
    h.until("Ready", is_ready).await;
    let jobs = h.sim.simulator.jobs();
    assert_eq!(jobs.len(), 1, "no duplicate");
    let status = h.object().await.unwrap().status.unwrap();
    assert_eq!(status.job_id.as_deref(), Some(jobs[0].job_id.as_str()));
    assert!(status.create_attempted_at.is_none());
    assert_eq!(h.sim.simulator.stats().create.total, 1);
    assert!(h.sim.simulator.stats().list.total >= 1);
    assert!(h.event_reasons().await.contains(&"Recovered".to_string()));
}

#[tokio::test]
async fn restart_between_create_and_record_adopts_the_job() {
    let h = Harness::new(fast_settings()).await;
    h.put_secret("dashscope", "api-key", KEY).await;
    // The state a controller killed right after its POST leaves behind.
    h.put_after_intent(Some(LONG_AGO)).await;
    let job = h.job_with_our_token().await;
    h.step().await;
    let status = h.object().await.unwrap().status.unwrap();
    assert_eq!(status.job_id.as_deref(), Some(job.id.as_str()));
    assert_eq!(h.sim.simulator.stats().create.total, 1, "no second create");
}

#[tokio::test]
async fn restart_between_intent_and_create_creates_once() {
    let h = Harness::new(fast_settings()).await;
    h.put_secret("dashscope", "api-key", KEY).await;
    h.put_after_intent(Some(LONG_AGO)).await;
    h.step().await;
    assert!(h.object().await.unwrap().status.unwrap().job_id.is_some());
    assert_eq!(h.sim.simulator.stats().create.total, 1);
    assert_eq!(h.sim.simulator.jobs().len(), 1);
}

#[tokio::test]
async fn two_jobs_with_our_token_stall_as_ambiguous() {
    let h = Harness::new(fast_settings()).await;
    h.put_secret("dashscope", "api-key", KEY).await;
    h.put_after_intent(Some(LONG_AGO)).await;
    let a = h.job_with_our_token().await;
    let b = h.job_with_our_token().await;
    assert_eq!(h.step().await, Action::await_change());
    let (status, reason, message) = h.condition("Stalled").await.unwrap();
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
    h.edit_spec(json!({"jobId": a.id})).await;
    assert_eq!(h.object().await.unwrap().metadata.generation, Some(2));
    h.step().await;
    assert_eq!(
        h.object().await.unwrap().status.unwrap().job_id.as_deref(),
        Some(a.id.as_str())
    );
}

#[tokio::test]
async fn deleting_with_an_unrecorded_job_deletes_it_instead_of_leaking_it() {
    let h = Harness::new(fast_settings()).await;
    h.put_secret("dashscope", "api-key", KEY).await;
    h.put_after_intent(Some(LONG_AGO)).await;
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
    h.mark_deleted().await;
    h.until("released", |o| o.is_none()).await;
    assert!(
        h.sim.simulator.jobs().iter().all(|j| j.deleted),
        "no leaked job"
    );
    assert_eq!(h.sim.simulator.stats().delete.status(200), 1);

    // Without a job to find, deletion lets go after looking.
    let h = Harness::new(fast_settings()).await;
    h.put_secret("dashscope", "api-key", KEY).await;
    h.put_after_intent(Some(LONG_AGO)).await;
    h.mark_deleted().await;
    h.step().await;
    assert!(h.object().await.is_none());
    assert_eq!(h.sim.simulator.stats().create.total, 0);
}

#[tokio::test]
async fn a_stale_cached_object_never_creates_twice() {
    let h = Harness::new(fast_settings()).await;
    h.put_secret("dashscope", "api-key", KEY).await;
    h.put(manifest("models/a/", "Delete")).await;
    h.step().await;
    let stale = h.object().await.unwrap();
    h.step().await;
    assert!(h.object().await.unwrap().status.unwrap().job_id.is_some());
    // The cache still shows the object before the job was recorded.
    bounded(reconcile(Arc::new(stale), h.ctx.clone()))
        .await
        .unwrap();
    assert_eq!(h.sim.simulator.stats().create.total, 1);
}

#[tokio::test]
async fn a_slow_create_is_waited_for_before_creating_again() {
    // A grace period that the first pass surely falls within, even on a loaded machine.
    let mut settings = fast_settings();
    settings.create_grace = Duration::from_secs(5);
    let h = Harness::new(settings).await;
    h.put_secret("dashscope", "api-key", KEY).await;
    // A create was sent a moment ago and its answer was lost; the job is not listed (yet).
    h.put_after_intent(None).await;
    h.step().await;
    assert_eq!(
        h.sim.simulator.stats().create.total,
        0,
        "not created again within the grace period"
    );
    assert_eq!(
        h.condition("Reconciling").await.unwrap().1,
        "CreateUnconfirmed"
    );
    // The slow create shows up: it is adopted, nothing more is created.
    let job = h.job_with_our_token().await;
    h.step().await;
    assert_eq!(
        h.object().await.unwrap().status.unwrap().job_id.as_deref(),
        Some(job.id.as_str())
    );
    assert_eq!(h.sim.simulator.stats().create.total, 1);

    // Without a job even after the grace period, the create is sent once more.
    let grace = Duration::from_secs(2);
    let h = Harness::new(Config {
        create_grace: grace,
        ..fast_settings()
    })
    .await;
    h.put_secret("dashscope", "api-key", KEY).await;
    let sent = h.put_after_intent(None).await;
    h.step().await;
    assert_eq!(h.sim.simulator.stats().create.total, 0);
    let after_grace = sent + grace + Duration::from_millis(100);
    tokio::time::sleep_until(after_grace.into()).await;
    h.step().await;
    assert_eq!(h.sim.simulator.stats().create.total, 1);
    assert!(h.object().await.unwrap().status.unwrap().job_id.is_some());
}

#[tokio::test]
async fn a_deletion_whose_secret_is_gone_uses_the_default_key_or_says_how_to_let_go() {
    let mut settings = fast_settings();
    settings.default_key = granted_everywhere(KEY);
    let h = Harness::new(settings).await;
    ready_import(&h).await;
    h.remove_secrets().await;
    h.mark_deleted().await;
    h.step().await;
    assert!(h.object().await.is_none(), "deleted with the default key");
    assert_eq!(h.sim.simulator.stats().delete.status(200), 1);

    let h = Harness::new(fast_settings()).await;
    ready_import(&h).await;
    h.remove_secrets().await;
    h.mark_deleted().await;
    h.step().await;
    let (_, reason, message) = h.condition("Ready").await.unwrap();
    assert_eq!(reason, "CredentialsMissing");
    assert!(message.contains("deletionPolicy to Orphan"), "{message}");
    assert_eq!(
        h.object().await.unwrap().finalizers(),
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
        h.condition("Ready").await.unwrap().0,
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
    h.put_secret("dashscope", "api-key", KEY).await;
    let mut m = manifest("models/a/", "Delete");
    m["metadata"]["finalizers"] = json!([FINALIZER]);
    h.put(m).await;
    let now = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.3f+00:00")
        .to_string();
    // What a controller that has just created the job records.
    h.put_status_as_controller(json!({
        "jobId": "00000000-0000-4000-8000-00000000abcd", "createdAt": now, "phase": "Pending",
    }))
    .await;
    let action = h.step().await;
    assert_ne!(action, Action::await_change(), "looked at again");
    // The workspace's poller lists, misses the job and reads it on its own: not found yet.
    h.until("JobNotVisibleYet", |o| {
        condition(o, "Reconciling").is_some_and(|c| c.1 == "JobNotVisibleYet")
    })
    .await;
    // An old job that is gone is a real stall.
    h.edit_status(json!({"createdAt": "2024-01-01T12:00:00.000+00:00"}))
        .await;
    h.until("JobNotFound", |o| {
        condition(o, "Stalled").is_some_and(|c| c.1 == "JobNotFound")
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
    h.put_secret("dashscope", "api-key", KEY).await;
    h.put(manifest("models/a/", "Delete")).await;
    h.step().await;
    h.step().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    h.mark_deleted().await;
    h.step().await;
    let status = h.object().await.unwrap().status.unwrap();
    assert_eq!(status.phase, Some(Phase::Deleting));
    assert_eq!(
        status.remote_status.as_deref(),
        Some("RUNNING"),
        "the job's progress shows while deleting"
    );
    assert_eq!(
        h.condition("Reconciling").await.unwrap().1,
        "DeletionBlocked"
    );
}

/// The reconciler's job in the fake, recorded in status (still pending).
async fn job_in_fake(h: &Harness<Arc<FakeJobs>>) -> String {
    h.put_secret("dashscope", "api-key", KEY).await;
    h.put(manifest("models/a/", "Delete")).await;
    h.until("a job", has_job).await;
    h.object().await.unwrap().status.unwrap().job_id.unwrap()
}

/// A fake's job taken to Ready: created by the reconciler, then finished by the test.
async fn ready_with_fake(h: &Harness<Arc<FakeJobs>>) -> String {
    let job_id = job_in_fake(h).await;
    h.sim.set_state(&job_id, JobState::Succeeded);
    h.until("Ready", is_ready).await;
    job_id
}

#[tokio::test]
async fn a_finished_job_whose_deletion_is_refused_says_so_and_lets_go_once_orphaned() {
    let h = Harness::with_fake(fast_settings()).await;
    let job_id = ready_with_fake(&h).await;
    // Refused although finished (a deployment may use the model): not "still running".
    h.sim.refuse_delete(&job_id);
    h.mark_deleted().await;
    h.step().await;
    let (status, reason, message) = h.condition("Reconciling").await.unwrap();
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("True", "DeletionRefused")
    );
    assert!(message.contains("has finished (SUCCESSED)"), "{message}");
    assert!(message.contains("deletionPolicy to Orphan"), "{message}");
    assert!(h
        .event_reasons()
        .await
        .contains(&"DeletionRefused".to_string()));
    let o = h.object().await.expect("still held by the finalizer");
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
    h.edit_spec(json!({"deletionPolicy": "Orphan"})).await;
    h.step().await;
    assert!(h.object().await.is_none());
    assert_eq!(h.sim.jobs().len(), 1);
    assert_eq!(h.sim.count(Operation::Delete), 1);
    assert!(h.event_reasons().await.contains(&"Orphaned".to_string()));
}

#[tokio::test]
async fn an_outage_on_a_poll_shows_as_remote_unavailable_and_the_layers_count_each_call() {
    let h = Harness::with_fake(fast_settings()).await;
    job_in_fake(&h).await;
    h.sim.fail_next(Operation::List, || {
        ApiError::Server(remote_error("InternalError", 500))
    });
    // The workspace's next listing meets the outage: every job of the workspace shows it.
    h.until("RemoteUnavailable", |o| {
        condition(o, "Reconciling").is_some_and(|c| c.1 == "RemoteUnavailable")
    })
    .await;
    let (status, reason, message) = h.condition("Reconciling").await.unwrap();
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

#[tokio::test]
async fn the_credentials_secret_is_protected_before_the_create_and_the_key_is_fingerprinted() {
    let h = Harness::new(fast_settings()).await;
    h.put_secret("dashscope", "api-key", KEY).await;
    let created = h.put(manifest("models/a/", "Delete")).await;
    h.step().await; // the finalizer
    h.step().await; // the create
    let protected = h.secret("dashscope").await;
    h.until("Ready", is_ready).await;
    let secret = h.secret("dashscope").await;
    assert_eq!(secret.finalizers(), ["modelstudio.io/credentials"]);
    assert_eq!(
        secret
            .labels()
            .get("modelstudio.io/credentials")
            .map(String::as_str),
        Some("in-use")
    );
    // The Secret was protected before the intent (and so before the create) was written: the
    // Secret's version is older than the first version of the import that records the intent.
    let versions = h
        .versions_after(&created.resource_version().unwrap(), |o| {
            o.status
                .as_ref()
                .is_some_and(|s| s.create_attempted_at.is_some() || s.job_id.is_some())
        })
        .await;
    let intent = versions.last().unwrap();
    assert!(
        revision(&secret) < revision(intent),
        "protect {}, intent {}",
        revision(&secret),
        revision(intent)
    );
    let fingerprint = h
        .object()
        .await
        .unwrap()
        .status
        .unwrap()
        .api_key_fingerprint;
    let fingerprint = fingerprint.expect("the key's fingerprint is recorded");
    assert!(
        fingerprint.starts_with("sha256:") && fingerprint.len() == 23,
        "{fingerprint}"
    );
    assert!(!fingerprint.contains(KEY));
    // Protected once: later reconciles do not change the Secret again.
    assert_eq!(secret.resource_version(), protected.resource_version());

    // An import that keeps its job (Orphan) needs no protection.
    let h = Harness::new(fast_settings()).await;
    h.put_secret("dashscope", "api-key", KEY).await;
    let put = h.secret("dashscope").await;
    h.put(manifest("models/a/", "Orphan")).await;
    h.until("a job", has_job).await;
    let secret = h.secret("dashscope").await;
    // Only marked with the controller's label, for its Secrets watch: no finalizer.
    assert!(secret.finalizers().is_empty());
    assert_eq!(
        secret.labels().get(CREDENTIALS_LABEL).map(String::as_str),
        Some(READ_VALUE),
        "{:?}",
        secret.labels()
    );
    assert_ne!(secret.resource_version(), put.resource_version());
}

#[tokio::test]
async fn a_key_of_another_workspace_never_releases_the_job_and_says_what_to_do() {
    let h = Harness::with_simulator(two_workspaces(), fast_settings()).await;
    ready_import(&h).await;
    let job_id = h.object().await.unwrap().status.unwrap().job_id.unwrap();
    // The Secret now holds a key of another workspace, which cannot see the job.
    h.put_secret("dashscope", "api-key", OTHER_KEY).await;
    tokio::time::sleep(Duration::from_millis(60)).await;
    h.step().await;
    let (status, reason, message) = h.condition("Stalled").await.unwrap();
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
    h.mark_deleted().await;
    h.step().await;
    let o = h.object().await.expect("not released");
    assert_eq!(o.status.unwrap().phase, Some(Phase::Deleting));
    assert_eq!(h.condition("Stalled").await.unwrap().1, "WorkspaceChanged");
    assert_eq!(h.sim.simulator.jobs().len(), 1);
    assert_eq!(h.sim.simulator.stats().delete.code("NotFound"), 1);

    // The original key back: the job is deleted and the resource released.
    h.put_secret("dashscope", "api-key", KEY).await;
    h.until("released", |o| o.is_none()).await;
    assert_eq!(h.sim.simulator.stats().delete.status(200), 1);
}

#[tokio::test]
async fn the_namespace_default_secret_comes_before_the_controller_default_key() {
    let config = Config {
        default_key: granted_everywhere(OTHER_KEY),
        ..fast_settings()
    };
    let h = Harness::with_simulator(two_workspaces(), config).await;
    h.put_secret("modelstudio-credentials", "api-key", KEY)
        .await;
    let mut m = manifest("models/a/", "Delete");
    m["spec"].as_object_mut().unwrap().remove("apiKeySecretRef");
    h.put(m).await;
    h.until("a job", has_job).await;
    // Made in the namespace Secret's workspace, not the default key's, and that Secret is kept.
    let jobs = h.sim.simulator.jobs();
    assert_eq!(jobs.len(), 1);
    assert_eq!(
        h.secret("modelstudio-credentials").await.finalizers(),
        ["modelstudio.io/credentials"]
    );
    let client = HttpClient::new(HttpClientConfig {
        endpoint: h.sim.base_url(),
        timeout: Duration::from_secs(5),
        user_agent: "reconciler-test".into(),
    })
    .unwrap();
    let job_id = h.object().await.unwrap().status.unwrap().job_id.unwrap();
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
            default_key: granted_everywhere(OTHER_KEY),
            ..fast_settings()
        },
    )
    .await;
    h.put_secret("modelstudio-credentials", "wrong-key", KEY)
        .await;
    let mut m = manifest("models/a/", "Delete");
    m["spec"].as_object_mut().unwrap().remove("apiKeySecretRef");
    h.put(m).await;
    h.step().await;
    h.step().await;
    let (_, reason, message) = h.condition("Reconciling").await.unwrap();
    assert_eq!(reason, "CredentialsMissing");
    assert!(message.contains("modelstudio-credentials"), "{message}");
    assert_eq!(h.sim.simulator.stats().create.total, 0);
}
