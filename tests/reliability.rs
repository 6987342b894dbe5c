//! Fault injection: the real controller binary, killed with SIGKILL at random points, against a
//! faulty Model Studio simulator, an API server whose watches are cut and which restarts, and two
//! replicas with leader election. Each test asserts the outcome (no duplicate, no leak, every
//! resource converged, the request rate under the limit, one writer at a time) and records its
//! figures; `scripts/reliability.sh` runs them and writes `docs/reliability.md`.
//!
//! Each test starts its own Kubernetes API with `modelstudio_testbed::Cluster::start()`: the real
//! control plane (kube-apiserver 1.37, etcd, kube-controller-manager) that the test command
//! built (`MODELSTUDIO_TESTBED_BIN`).
//! Every server listens on 127.0.0.1 on a free port; every loop is bounded in count and time.

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::NamespaceResourceScope;
use kube::api::{Api, DeleteParams, PostParams, WatchEvent, WatchParams};
use kube::{Client, Resource, ResourceExt};
use modelstudio_controller::crd::{ModelDeployment, ModelImport};
use modelstudio_core::correlation;
use modelstudio_simulator::{
    DeploymentRecord, Endpoint, Faults, JobRecord, RunningSimulator, SimulatorConfig,
};
use modelstudio_testbed::{
    api_key_secret, install_crd, Cluster, ControllerCommand, ImportBuilder, Proc,
};
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The tests of this suite run one at a time even under `--test-threads 4`: each starts a control
/// plane and controllers whose timing (lease failover, kill points) 2 shared cores must serve.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const BIN: &str = env!("CARGO_BIN_EXE_modelstudio-controller");
const CRDS: [&str; 2] = [
    concat!(env!("CARGO_MANIFEST_DIR"), "/crds/modelimport.yaml"),
    concat!(env!("CARGO_MANIFEST_DIR"), "/crds/modeldeployment.yaml"),
];
const KEY: &str = "sk-reliability-0000";
const NS: &str = "default";

/// A test bed: the Kubernetes API, the simulator, a kube client, and a directory for logs.
struct Bed {
    cluster: Cluster,
    sim: RunningSimulator,
    client: Client,
    kubeconfig: PathBuf,
    dir: PathBuf,
    /// Which API server, as the report names it.
    server: String,
}

impl Bed {
    async fn new(name: &str, sim: SimulatorConfig) -> Bed {
        let dir =
            std::env::temp_dir().join(format!("msc-reliability-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let t0 = Instant::now();
        let cluster = Cluster::start().await.expect("the Kubernetes API starts");
        let kubeconfig = dir.join("kubeconfig");
        cluster.write_kubeconfig(&kubeconfig, NS).unwrap();
        let client = cluster
            .client(NS)
            .await
            .expect("a client for the API server");
        for crd in CRDS {
            install_crd(&client, Path::new(crd))
                .await
                .expect("the CRD is installed and Established");
        }
        let version = client
            .apiserver_version()
            .await
            .map(|v| v.git_version)
            .unwrap_or_else(|e| format!("version unknown: {e}"));
        let server = format!("real kube-apiserver {version} (etcd, kube-controller-manager)");
        println!(
            "reliability {name}: on the {server}, up with the CRDs in {:.1} s",
            t0.elapsed().as_secs_f64()
        );
        let secrets: Api<Secret> = Api::namespaced(client.clone(), NS);
        let secret: Secret = serde_json::from_value(api_key_secret("dashscope", KEY)).unwrap();
        secrets
            .create(&PostParams::default(), &secret)
            .await
            .unwrap();
        let sim = RunningSimulator::start(sim).await.unwrap();
        Bed {
            cluster,
            sim,
            client,
            kubeconfig,
            dir,
            server,
        }
    }

    fn api<K: Kind>(&self) -> Api<K> {
        Api::namespaced(self.client.clone(), NS)
    }

    fn imports(&self) -> Api<ModelImport> {
        self.api()
    }

    /// Starts the controller binary with the test bed's fast defaults, `extra` flags replacing
    /// them; its output is appended to `<dir>/<log>.log`.
    fn controller(&self, log: &str, extra: &[&str], env: &[(&str, &str)]) -> Proc {
        let mut cmd =
            ControllerCommand::new(BIN, &self.kubeconfig, &self.sim.base_url()).flags(extra);
        for (k, v) in env {
            cmd = cmd.env(k, v);
        }
        cmd.spawn(log, &self.dir)
            .expect("the controller binary starts")
    }

    async fn create<K: Kind>(&self, objects: impl IntoIterator<Item = K>) {
        for object in objects {
            self.api::<K>()
                .create(&PostParams::default(), &object)
                .await
                .unwrap();
        }
    }

    async fn create_imports(&self, names: &[String]) {
        self.create(names.iter().map(|n| {
            ImportBuilder::new(n)
                .secret("dashscope")
                .build::<ModelImport>()
        }))
        .await;
    }

    async fn delete<K: Kind>(&self, names: &[String]) {
        for name in names {
            self.api::<K>()
                .delete(name, &DeleteParams::default())
                .await
                .unwrap();
        }
    }

    async fn delete_imports(&self, names: &[String]) {
        self.delete::<ModelImport>(names).await;
    }

    /// Starts the controller, lets it run 100 to 800 ms (drawn from `rng`), and SIGKILLs it.
    async fn run_and_kill(&self, log: &str, rng: &mut rand::rngs::StdRng) {
        let mut child = self.controller(log, &[], &[]);
        tokio::time::sleep(Duration::from_millis(rng.random_range(100..800))).await;
        child.kill(); // SIGKILL
    }

    /// Waits until every ModelImport in `live` is Ready and every one in `gone` no longer exists.
    async fn converge(&self, live: &[String], gone: &[String], limit: Duration) -> Duration {
        self.converge_kind::<ModelImport>(live, gone, limit).await
    }

    /// Waits until every resource of kind `K` in `live` is Ready and every one in `gone` no
    /// longer exists.
    async fn converge_kind<K: Kind>(
        &self,
        live: &[String],
        gone: &[String],
        limit: Duration,
    ) -> Duration {
        let start = Instant::now();
        for _ in 0..(limit.as_millis() / 200 + 1) {
            let list = self.api::<K>().list(&Default::default()).await.unwrap();
            let by_name: HashMap<String, &K> =
                list.items.iter().map(|m| (m.name_any(), m)).collect();
            let ready = live
                .iter()
                .all(|n| by_name.get(n).is_some_and(|m| m.ready()));
            let deleted = gone.iter().all(|n| !by_name.contains_key(n));
            if ready && deleted {
                return start.elapsed();
            }
            if start.elapsed() > limit {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let list = self.api::<K>().list(&Default::default()).await.unwrap();
        let states: Vec<String> = list
            .items
            .iter()
            .map(|m| format!("{} {}", m.name_any(), m.state()))
            .collect();
        panic!(
            "not converged within {limit:?} on the {}; logs in {}:\n{}",
            self.server,
            self.dir.display(),
            states.join("\n")
        );
    }

    /// The UID of each resource, for telling which jobs are whose.
    async fn uids(&self) -> HashMap<String, String> {
        self.uids_of::<ModelImport>().await
    }

    /// The UID of each resource of kind `K`, for telling which remote objects are whose.
    async fn uids_of<K: Kind>(&self) -> HashMap<String, String> {
        let list = self.api::<K>().list(&Default::default()).await.unwrap();
        list.items
            .iter()
            .map(|m| (m.name_any(), m.uid().unwrap()))
            .collect()
    }

    /// What the API server answers to a watch of ModelImports resuming from `rv`: the error's
    /// code and reason (as the HTTP status or as the stream's first ERROR event), or None when
    /// it accepted the watch.
    async fn watch_from(&self, rv: &str) -> Option<(u16, String)> {
        let params = WatchParams::default().timeout(2);
        let attempt = async {
            match self.imports().watch(&params, rv).await {
                Err(kube::Error::Api(s)) => Some((s.code, s.reason.clone())),
                Err(e) => panic!("watch from {rv}: {e}"),
                Ok(stream) => {
                    let mut stream = std::pin::pin!(stream);
                    match stream.next().await {
                        Some(Ok(WatchEvent::Error(s))) => Some((s.code, s.reason.clone())),
                        Some(Err(kube::Error::Api(s))) => Some((s.code, s.reason.clone())),
                        _ => None,
                    }
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(10), attempt)
            .await
            .expect("the watch answered within 10 s")
    }
}

/// What the tests read of a resource, ModelImport or ModelDeployment.
trait Kind:
    Resource<Scope = NamespaceResourceScope, DynamicType = ()>
    + Clone
    + std::fmt::Debug
    + serde::de::DeserializeOwned
    + serde::Serialize
    + Send
    + Sync
    + 'static
{
    /// Converged: Ready, and a deployment running at its capacity.
    fn ready(&self) -> bool;
    /// The remote object its status records (job ID, deployed model).
    fn recorded(&self) -> Option<String>;
    /// Its phase and conditions, for a failure's message.
    fn state(&self) -> String;
}

fn ready_condition(conditions: &[Condition]) -> bool {
    conditions
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == "True")
}

fn state_line(phase: &dyn std::fmt::Debug, conditions: &[Condition]) -> String {
    let conditions: Vec<_> = conditions
        .iter()
        .map(|c| (&c.type_, &c.status, &c.reason))
        .collect();
    format!("phase={phase:?} conditions={conditions:?}")
}

impl Kind for ModelImport {
    fn ready(&self) -> bool {
        self.status
            .as_ref()
            .is_some_and(|s| ready_condition(&s.conditions))
    }

    fn recorded(&self) -> Option<String> {
        self.status.as_ref().and_then(|s| s.job_id.clone())
    }

    fn state(&self) -> String {
        let s = self.status.clone().unwrap_or_default();
        state_line(&s.phase, &s.conditions)
    }
}

impl Kind for ModelDeployment {
    fn ready(&self) -> bool {
        let asked = i64::from(self.spec.capacity.unwrap_or_default());
        self.status.as_ref().is_some_and(|s| {
            ready_condition(&s.conditions)
                && s.remote_status.as_deref() == Some("RUNNING")
                && s.capacity == Some(asked)
                && s.ready_capacity == Some(asked)
        })
    }

    fn recorded(&self) -> Option<String> {
        self.status.as_ref().and_then(|s| s.deployed_model.clone())
    }

    fn state(&self) -> String {
        let s = self.status.clone().unwrap_or_default();
        let phase = (s.phase, s.deployed_model, s.ready_capacity);
        state_line(&phase, &s.conditions)
    }
}

fn names(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i:02}")).collect()
}

/// A remote object the simulator made (a job or a deployment), as an audit reads it.
#[derive(Clone, Copy)]
struct Remote<'a> {
    /// The display name the create carried: the resource's name and its UID's token.
    display_name: &'a str,
    /// What a resource records of it (job ID, deployed model).
    id: &'a str,
    deleted: bool,
}

impl<'a> From<&'a JobRecord> for Remote<'a> {
    fn from(j: &'a JobRecord) -> Self {
        Remote {
            display_name: &j.display_name,
            id: &j.job_id,
            deleted: j.deleted,
        }
    }
}

impl<'a> From<&'a DeploymentRecord> for Remote<'a> {
    fn from(d: &'a DeploymentRecord) -> Self {
        Remote {
            display_name: &d.name,
            id: &d.deployed_model,
            deleted: d.deleted,
        }
    }
}

/// Duplicates and leaks among the simulator's jobs (or deployments), given every resource's UID
/// and which are live.
struct Audit {
    jobs: usize,
    /// Remote objects not deleted, whoever owns them.
    undeleted: usize,
    duplicates: usize,
    leaks: usize,
    unreleased: usize,
    /// Live resources whose recorded remote object is not among their undeleted ones.
    unrecorded: usize,
}

fn audit<'a, J>(
    records: &'a [J],
    uids: &HashMap<String, String>,
    live: &HashMap<String, Option<String>>,
) -> Audit
where
    Remote<'a>: From<&'a J>,
{
    let jobs: Vec<Remote<'a>> = records.iter().map(Remote::from).collect();
    let mut per_resource: BTreeMap<&str, Vec<Remote<'a>>> = BTreeMap::new();
    for (name, uid) in uids {
        let display = correlation::display_name(name, uid);
        per_resource.insert(
            name,
            jobs.iter()
                .filter(|j| j.display_name == display)
                .copied()
                .collect(),
        );
    }
    let duplicates = per_resource
        .values()
        .map(|js| js.len().saturating_sub(1))
        .sum();
    let mut leaks = 0;
    let mut unreleased = 0;
    let mut unrecorded = 0;
    for (name, js) in &per_resource {
        match live.get(*name) {
            // A live resource's only job is the one it records; any other undeleted job leaks.
            Some(recorded) => {
                let is_recorded = |j: &Remote<'_>| Some(j.id) == recorded.as_deref();
                leaks += js.iter().filter(|j| !j.deleted && !is_recorded(j)).count();
                if !js.iter().any(|j| !j.deleted && is_recorded(j)) {
                    unrecorded += 1;
                }
            }
            // A deleted resource's jobs must all be deleted.
            None => unreleased += js.iter().filter(|j| !j.deleted).count(),
        }
    }
    // A job that belongs to no resource at all is a leak too.
    let owned: usize = per_resource.values().map(Vec::len).sum();
    leaks += jobs.len() - owned;
    Audit {
        jobs: jobs.len(),
        undeleted: jobs.iter().filter(|j| !j.deleted).count(),
        duplicates,
        leaks,
        unreleased,
        unrecorded,
    }
}

async fn live_jobs(bed: &Bed) -> HashMap<String, Option<String>> {
    live::<ModelImport>(bed).await
}

/// Each resource of kind `K` that exists, with the remote object its status records.
async fn live<K: Kind>(bed: &Bed) -> HashMap<String, Option<String>> {
    let list = bed.api::<K>().list(&Default::default()).await.unwrap();
    list.items
        .iter()
        .map(|m| (m.name_any(), m.recorded()))
        .collect()
}

/// The seed of a test's random kill points: RELIABILITY_SEED, or a fixed one.
fn seeded_rng() -> (u64, rand::rngs::StdRng) {
    let seed: u64 = std::env::var("RELIABILITY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20261130);
    (seed, rand::rngs::StdRng::seed_from_u64(seed))
}

/// Writes a section of the reliability report when RELIABILITY_REPORT_DIR is set.
fn report(name: &str, text: &str) {
    println!("{text}");
    if let Ok(dir) = std::env::var("RELIABILITY_REPORT_DIR") {
        let _ = std::fs::create_dir_all(&dir);
        let _ = std::fs::write(PathBuf::from(dir).join(format!("{name}.md")), text);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_creates_and_deletes_leaves_no_duplicate_and_no_leak() {
    let _serial = SERIAL.lock().await;
    let (seed, mut rng) = seeded_rng();
    let bed = Bed::new(
        "sigkill",
        SimulatorConfig {
            pending_duration: Duration::from_millis(300),
            running_duration: Duration::from_millis(1500),
            api_keys: vec![KEY.into()],
            // Latency widens the window between sending a create and recording its answer.
            latency: Duration::from_millis(250),
            seed: Some(seed),
            ..Default::default()
        },
    )
    .await;
    // Resources arrive and leave while the controller is being killed, so that kills land
    // between deciding to create and recording the job, and during deletes.
    let all = names("kill", 30);
    let (to_delete, to_keep) = all.split_at(15);
    let mut uids = HashMap::new();
    let start = Instant::now();
    let kills = 60;
    for k in 0..kills {
        if k < 30 {
            bed.create_imports(&all[k..=k]).await;
            uids.extend(bed.uids().await);
        } else if k < 45 {
            bed.delete_imports(&to_delete[k - 30..=k - 30]).await;
        }
        bed.run_and_kill("sigkill", &mut rng).await;
    }
    let kill_phase = start.elapsed();
    let creates_while_killing = bed.sim.simulator.stats().create.total;
    let mut child = bed.controller("sigkill", &[], &[]);
    let converge = bed
        .converge(to_keep, to_delete, Duration::from_secs(120))
        .await;
    child.kill();

    let a = audit(&bed.sim.simulator.jobs(), &uids, &live_jobs(&bed).await);
    let stats = bed.sim.simulator.stats();
    let mut text = String::new();
    writeln!(text, "## SIGKILL during creates and deletes\n").unwrap();
    writeln!(text, "| figure | value |\n|---|---|").unwrap();
    writeln!(text, "| API server | {} |", bed.server).unwrap();
    writeln!(
        text,
        "| ModelImports | {} (one created before each of the first 30 kills, 15 deleted before kills 31–45) |",
        all.len()
    )
    .unwrap();
    writeln!(
        text,
        "| SIGKILLs survived | {kills} (random points, 100–800 ms after start; seed {seed}; every call to Model Studio takes 250 ms) |"
    )
    .unwrap();
    writeln!(
        text,
        "| kill phase | {:.1} s ({creates_while_killing} create calls sent in it) |",
        kill_phase.as_secs_f64()
    )
    .unwrap();
    writeln!(
        text,
        "| converged after the last (61st) start | {:.1} s (a create that may be in flight is trusted absent only after 2 × --request-timeout = 10 s) |",
        converge.as_secs_f64()
    )
    .unwrap();
    writeln!(
        text,
        "| remote jobs made | {} (resources deleted before their create went out have none) |",
        a.jobs
    )
    .unwrap();
    writeln!(
        text,
        "| create calls (incl. refused) | {} |",
        stats.create.total
    )
    .unwrap();
    writeln!(text, "| list calls (recovery) | {} |", stats.list.total).unwrap();
    writeln!(text, "| duplicate jobs | {} |", a.duplicates).unwrap();
    writeln!(text, "| leaked jobs | {} |", a.leaks).unwrap();
    writeln!(
        text,
        "| jobs of deleted resources not deleted | {} |",
        a.unreleased
    )
    .unwrap();
    report("1-sigkill", &text);
    assert!(kills >= 50);
    assert_eq!(a.duplicates, 0, "duplicate jobs");
    assert_eq!(a.leaks, 0, "leaked jobs");
    assert_eq!(
        a.unreleased, 0,
        "deleted resources whose job was not deleted"
    );
    // Every kept resource has its job; a resource deleted before its create went out has none.
    assert!(
        a.jobs <= all.len() && a.jobs >= to_keep.len(),
        "{} jobs",
        a.jobs
    );
}

/// A ModelDeployment of `qwen-turbo` (base capacity 2 in the simulator) at capacity 2. Each needs
/// its own suffix: the same model deployed twice without one is refused with Conflict.
fn turbo_deployment(name: &str, suffix: &str) -> ModelDeployment {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "modelstudio.io/v1alpha1", "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": {"modelName": "qwen-turbo", "capacity": 2, "suffix": suffix,
                 "apiKeySecretRef": {"name": "dashscope"}}
    }))
    .expect("a ModelDeployment deserializes")
}

/// A report section: a title and a table of figures.
fn table(title: &str, rows: &[(&str, String)]) -> String {
    let mut text = format!("## {title}\n\n| figure | value |\n|---|---|\n");
    for (figure, value) in rows {
        writeln!(text, "| {figure} | {value} |").unwrap();
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_deployment_creates_and_deletes_leaves_no_duplicate_and_no_leak() {
    let _serial = SERIAL.lock().await;
    let (seed, mut rng) = seeded_rng();
    const LOG: &str = "sigkill-deploy";
    let bed = Bed::new(
        LOG,
        SimulatorConfig {
            api_keys: vec![KEY.into()],
            deployment_pending_duration: Duration::from_millis(500),
            deployment_deleting_duration: Duration::from_millis(500),
            // A lost answer leaves a deployment that only a listing gives back; latency widens
            // the window between recording the intent and recording the answer, where kills land.
            latency: Duration::from_millis(400),
            error_rate: 0.10,
            lost_create_rate: 0.30,
            seed: Some(seed),
            ..Default::default()
        },
    )
    .await;
    let all = names("deploy", 20);
    let start = Instant::now();
    // One resource arrives before each kill of the create phase.
    for (i, name) in all.iter().enumerate() {
        bed.create([turbo_deployment(name, &format!("s{i}"))]).await;
        bed.run_and_kill(LOG, &mut rng).await;
    }
    let create_phase = start.elapsed();
    let uids = bed.uids_of::<ModelDeployment>().await;
    let mut child = bed.controller(LOG, &[], &[]);
    let ready = bed
        .converge_kind::<ModelDeployment>(&all, &[], Duration::from_secs(150))
        .await;
    child.kill();
    let after_creates = live::<ModelDeployment>(&bed).await;
    let made = bed.sim.simulator.deployments();
    let created = audit(&made, &uids, &after_creates);
    let lost: Vec<&DeploymentRecord> = made.iter().filter(|d| d.lost_answer).collect();
    let adopted = lost
        .iter()
        .filter(|d| {
            after_creates
                .values()
                .any(|r| r.as_deref() == Some(d.deployed_model.as_str()))
        })
        .count();
    // A deployment found in a listing (lost answer, or a kill after the create went out) is
    // announced by a Recovered event.
    let events = Api::<Event>::namespaced(bed.client.clone(), NS)
        .list(&Default::default())
        .await
        .unwrap();
    let recovered = events
        .items
        .iter()
        .filter(|e| {
            let kind = e.regarding.as_ref().and_then(|r| r.kind.as_deref());
            e.reason.as_deref() == Some("Recovered") && kind == Some("ModelDeployment")
        })
        .count();

    // One resource leaves before each kill of the delete phase.
    let start = Instant::now();
    for name in &all {
        bed.delete::<ModelDeployment>(std::slice::from_ref(name))
            .await;
        bed.run_and_kill(LOG, &mut rng).await;
    }
    let delete_phase = start.elapsed();
    let mut child = bed.controller(LOG, &[], &[]);
    let released = bed
        .converge_kind::<ModelDeployment>(&[], &all, Duration::from_secs(120))
        .await;
    child.kill();
    let deleted = audit(
        &bed.sim.simulator.deployments(),
        &uids,
        &live::<ModelDeployment>(&bed).await,
    );
    let stats = bed.sim.simulator.stats();
    let creates = &stats.deployment_create;
    let conflicts = creates.by_status.get(&409).copied().unwrap_or(0);
    let server_errors: u64 = [
        creates,
        &stats.deployment_get,
        &stats.deployment_list,
        &stats.deployment_delete,
    ]
    .iter()
    .map(|e| e.by_status.get(&500).copied().unwrap_or(0))
    .sum();
    let kills = 2 * all.len();
    let text = table(
        "SIGKILL during deployment creates and deletes",
        &[
            ("API server", bed.server.clone()),
            (
                "ModelDeployments",
                format!(
                    "{} of qwen-turbo at capacity 2, one created before each of the first 20 kills, one deleted before each of the last 20",
                    all.len()
                ),
            ),
            (
                "SIGKILLs survived",
                format!("{kills} (random points, 100–800 ms after start; seed {seed})"),
            ),
            (
                "faults",
                "400 ms latency, 10% 500s, 30% of successful creates answered 500".into(),
            ),
            (
                "create phase / all Ready (RUNNING 2 of 2) after the last start",
                format!(
                    "{:.1} s / {:.1} s",
                    create_phase.as_secs_f64(),
                    ready.as_secs_f64()
                ),
            ),
            (
                "delete phase / all gone after the last start",
                format!(
                    "{:.1} s / {:.1} s",
                    delete_phase.as_secs_f64(),
                    released.as_secs_f64()
                ),
            ),
            (
                "create calls / answered 409 Conflict (a second create of the same deployed model)",
                format!("{} / {conflicts}", creates.total),
            ),
            (
                "lost create answers / their deployments adopted",
                format!("{} / {adopted}", lost.len()),
            ),
            (
                "deployments found again by a listing (Recovered events)",
                recovered.to_string(),
            ),
            ("listings (recovery)", stats.deployment_list.total.to_string()),
            (
                "delete calls (incl. refused)",
                stats.deployment_delete.total.to_string(),
            ),
            ("answered 500 (injected or lost)", server_errors.to_string()),
            (
                "remote deployments made / live after the create phase",
                format!("{} / {}", created.jobs, created.undeleted),
            ),
            ("duplicate deployments", created.duplicates.to_string()),
            (
                "leaked deployments (create phase / after deleting all)",
                format!("{} / {}", created.leaks, deleted.leaks),
            ),
            (
                "deployments live after deleting all",
                deleted.undeleted.to_string(),
            ),
        ],
    );
    report("6-sigkill-deployments", &text);
    assert_eq!(created.duplicates, 0, "duplicate deployments");
    assert_eq!(
        conflicts, 0,
        "a create was sent again for a live deployment"
    );
    assert_eq!(created.leaks, 0, "leaked deployments after the creates");
    assert_eq!(
        (created.jobs, created.undeleted, created.unrecorded),
        (all.len(), all.len(), 0),
        "exactly one live deployment per resource, the one it records"
    );
    assert!(
        !lost.is_empty(),
        "no create answer was lost: nothing tested"
    );
    assert_eq!(
        adopted,
        lost.len(),
        "a lost answer's deployment not adopted"
    );
    assert_eq!((deleted.leaks, deleted.unreleased), (0, 0), "leaks");
    assert_eq!(deleted.undeleted, 0, "live deployments after deleting all");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faulty_remote_converges_under_the_rate_limit() {
    let _serial = SERIAL.lock().await;
    let bed = Bed::new(
        "faults",
        SimulatorConfig {
            pending_duration: Duration::from_millis(300),
            running_duration: Duration::from_millis(800),
            api_keys: vec![KEY.into()],
            seed: Some(7),
            ..Default::default()
        },
    )
    .await;
    bed.sim.simulator.set_faults(Faults {
        latency_ms: 30,
        throttle_rate: 0.10,
        retry_after_seconds: 1,
        error_rate: 0.20,
        lost_create_rate: 0.10,
        seed: Some(7),
    });
    let (qps, burst) = (10u32, 5u32);
    let all = names("fault", 20);
    let uids = {
        bed.create_imports(&all).await;
        bed.uids().await
    };
    let mut child = bed.controller(
        "faults",
        &[
            "--qps",
            &qps.to_string(),
            "--burst",
            &burst.to_string(),
            "--poll-interval",
            "300ms",
        ],
        &[],
    );
    let converge = bed.converge(&all, &[], Duration::from_secs(150)).await;
    let (to_delete, to_keep) = all.split_at(10);
    bed.delete_imports(to_delete).await;
    let release = bed
        .converge(to_keep, to_delete, Duration::from_secs(120))
        .await;
    child.kill();

    let requests = bed.sim.simulator.requests();
    let api: Vec<_> = requests
        .iter()
        .filter(|r| r.endpoint != Endpoint::Other)
        .collect();
    let times: Vec<u64> = api.iter().map(|r| r.at_ms).collect();
    // The busiest 1-second window; answers are stamped after the injected latency, so allow it.
    let mut peak = 0;
    for (i, t) in times.iter().enumerate() {
        let n = times[i..].iter().take_while(|u| **u < t + 1000).count();
        peak = peak.max(n);
    }
    let span_s =
        (times.last().copied().unwrap_or(0) - times.first().copied().unwrap_or(0)) as f64 / 1000.0;
    let throttled = api.iter().filter(|r| r.status == 429).count();
    let server_errors = api.iter().filter(|r| r.status >= 500).count();
    let a = audit(&bed.sim.simulator.jobs(), &uids, &live_jobs(&bed).await);
    let mut text = String::new();
    writeln!(
        text,
        "## Faulty Model Studio: 20% 5xx, 10% 429, 10% lost create answers, 30 ms latency\n"
    )
    .unwrap();
    writeln!(text, "| figure | value |\n|---|---|").unwrap();
    writeln!(text, "| API server | {} |", bed.server).unwrap();
    writeln!(
        text,
        "| ModelImports | {} (10 deleted once Ready) |",
        all.len()
    )
    .unwrap();
    writeln!(
        text,
        "| all Ready after | {:.1} s (a create answered 5xx may have made its job: it is sent again only when a listing 2 × --request-timeout = 10 s later finds none) |",
        converge.as_secs_f64()
    )
    .unwrap();
    writeln!(
        text,
        "| deletions released after | {:.1} s |",
        release.as_secs_f64()
    )
    .unwrap();
    writeln!(
        text,
        "| requests to Model Studio | {} over {:.1} s ({:.1}/s on average) |",
        api.len(),
        span_s,
        api.len() as f64 / span_s.max(0.001)
    )
    .unwrap();
    writeln!(
        text,
        "| peak requests in any 1 s | {peak} (limit: --qps {qps} --burst {burst} = {} a second, +100 ms of timing skew allowed) |",
        qps + burst
    )
    .unwrap();
    writeln!(
        text,
        "| answered 429 / 5xx | {throttled} / {server_errors} |"
    )
    .unwrap();
    writeln!(
        text,
        "| duplicate jobs / leaked jobs | {} / {} |",
        a.duplicates, a.leaks
    )
    .unwrap();
    report("2-faults", &text);
    // Requests are stamped when the simulator answers them, after its latency and the machine's
    // scheduling: allow 100 ms of skew on top of what the token bucket lets through in 1 s.
    let allowed = f64::from(burst) + f64::from(qps) * 1.1;
    assert!(
        peak as f64 <= allowed,
        "peak {peak} requests in 1 s is above the limit ({allowed})"
    );
    assert!(
        api.len() as f64 / span_s.max(0.001) <= f64::from(qps) + 1.0,
        "the average rate is above --qps"
    );
    assert_eq!((a.duplicates, a.leaks, a.unreleased), (0, 0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_cuts_and_apiserver_restart_lose_no_event() {
    let _serial = SERIAL.lock().await;
    let mut bed = Bed::new(
        "watch",
        SimulatorConfig {
            pending_duration: Duration::from_millis(200),
            running_duration: Duration::from_millis(500),
            api_keys: vec![KEY.into()],
            ..Default::default()
        },
    )
    .await;
    let mut child = bed.controller("watch", &[], &[]);
    let first = names("watch-a", 5);
    bed.create_imports(&first).await;
    bed.converge(&first, &[], Duration::from_secs(60)).await;

    // On the real server a watch cut is a kube-apiserver restart (etcd keeps the data).
    let mut outages = Vec::new();
    let t = Instant::now();
    bed.cluster.cut_watches().await.expect("watches cut");
    outages.push(t.elapsed());
    let second = names("watch-b", 3);
    bed.create_imports(&second).await;
    let t = Instant::now();
    bed.cluster
        .restart()
        .await
        .expect("the API server restarts");
    outages.push(t.elapsed());
    let before_deletes = bed
        .imports()
        .list(&Default::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .expect("a list has a resourceVersion");
    let gone = first[..2].to_vec();
    bed.delete_imports(&gone).await;
    // Old resourceVersions expire: the watcher must relist (410 Gone) and still see everything.
    // A restarted kube-apiserver's watch cache starts at etcd's current revision, so resuming
    // from before the restart is "too old" (etcd itself is compacted by kube-apiserver only
    // every --etcd-compaction-interval, 5 min).
    let t = Instant::now();
    bed.cluster.cut_watches().await.expect("watches cut");
    outages.push(t.elapsed());
    let expired = bed.watch_from(&before_deletes).await;
    let third = names("watch-c", 2);
    bed.create_imports(&third).await;
    let mut live: Vec<String> = first[2..].to_vec();
    live.extend(second.clone());
    live.extend(third.clone());
    let converge = bed.converge(&live, &gone, Duration::from_secs(90)).await;
    child.kill();
    let log = child.log();
    let relists = log
        .lines()
        .filter(|l| l.contains("too old resource version"))
        .count();
    let jobs = bed.sim.simulator.jobs();
    let deleted = jobs.iter().filter(|j| j.deleted).count();
    let mut text = String::new();
    writeln!(
        text,
        "## Watch cut, API server restart, resume point expired (410 Gone)\n"
    )
    .unwrap();
    writeln!(text, "| figure | value |\n|---|---|").unwrap();
    writeln!(text, "| API server | {} |", bed.server).unwrap();
    let faults =
        "3 kube-apiserver restarts on the same port, etcd's data kept (a watch cut is a restart)";
    writeln!(text, "| faults | {faults} |").unwrap();
    writeln!(
        text,
        "| time each fault took | {} |",
        outages
            .iter()
            .map(|d| format!("{:.1} s", d.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(", ")
    )
    .unwrap();
    writeln!(
        text,
        "| a watch resuming from before the deletes | {} |",
        match &expired {
            Some((code, reason)) => format!("{code} {reason}"),
            None => "accepted".into(),
        }
    )
    .unwrap();
    writeln!(
        text,
        "| controller log lines \"too old resource version\" (its watcher relisted) | {relists} |"
    )
    .unwrap();
    writeln!(
        text,
        "| changes made around the faults | {} creates, {} deletes |",
        second.len() + third.len(),
        gone.len()
    )
    .unwrap();
    writeln!(
        text,
        "| all handled, counted from the last creates | {:.1} s |",
        converge.as_secs_f64()
    )
    .unwrap();
    writeln!(
        text,
        "| jobs made / deleted | {} / {} |",
        jobs.len(),
        deleted
    )
    .unwrap();
    report("3-watch", &text);
    assert_eq!(
        expired.as_ref().map(|e| e.0),
        Some(410),
        "a watch from a resourceVersion before the fault answers 410 Gone: {expired:?}"
    );
    // A restarted kube-apiserver writes (its identity Lease among others) before its watch cache
    // starts, so the controller's resume point is always too old there.
    assert!(
        relists >= 1,
        "the controller's watcher met the 410 and relisted (its log has no trace of it)"
    );
    assert_eq!(jobs.len(), 10);
    assert_eq!(deleted, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_write_one_at_a_time_and_fail_over() {
    let _serial = SERIAL.lock().await;
    let bed = Bed::new(
        "leader",
        SimulatorConfig {
            pending_duration: Duration::from_millis(200),
            running_duration: Duration::from_millis(600),
            api_keys: vec![KEY.into()],
            ..Default::default()
        },
    )
    .await;
    let args = ["--leader-election", "--lease-namespace", NS];
    let mut replicas: HashMap<&str, Proc> = HashMap::new();
    replicas.insert(
        "replica-a",
        bed.controller("replica-a", &args, &[("POD_NAME", "replica-a")]),
    );
    replicas.insert(
        "replica-b",
        bed.controller("replica-b", &args, &[("POD_NAME", "replica-b")]),
    );
    let first = names("lead-a", 6);
    bed.create_imports(&first).await;
    bed.converge(&first, &[], Duration::from_secs(60)).await;

    let leases: Api<Lease> = Api::namespaced(bed.client.clone(), NS);
    let holder = || async {
        leases
            .get_opt("modelstudio-controller")
            .await
            .ok()
            .flatten()
            .and_then(|l| l.spec.and_then(|s| s.holder_identity))
    };
    let leader = holder().await.expect("a leader holds the lease");
    let standby = if leader == "replica-a" {
        "replica-b"
    } else {
        "replica-a"
    };
    let callers_before: Vec<String> = bed
        .sim
        .simulator
        .requests()
        .iter()
        .filter_map(|r| r.user_agent.clone())
        .collect();
    assert!(
        callers_before.iter().all(|ua| ua.contains(&leader)),
        "only the leader calls Model Studio"
    );

    // Kill the leader without a chance to release the lease.
    let killed_at_ms = bed.sim.simulator.stats().uptime_ms;
    let t0 = Instant::now();
    replicas.remove(leader.as_str()).unwrap().kill();
    let mut failover = None;
    for _ in 0..300 {
        if holder().await.as_deref() == Some(standby) {
            failover = Some(t0.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let failover = failover.expect("the standby took over within 30 s");
    let second = names("lead-b", 4);
    bed.create_imports(&second).await;
    bed.converge(&second, &[], Duration::from_secs(60)).await;

    // A graceful stop releases the lease: the restarted replica takes over at once.
    let mut survivor = replicas.remove(standby).unwrap();
    let mut restarted = bed.controller(&leader, &args, &[("POD_NAME", leader.as_str())]);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let t1 = Instant::now();
    survivor.terminate().expect("SIGTERM sent");
    let exit = survivor.wait_for_exit(Duration::from_secs(25));
    let mut handover = None;
    for _ in 0..300 {
        if holder().await.as_deref() == Some(leader.as_str()) {
            handover = Some(t1.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let handover = handover.expect("the restarted replica took over");
    restarted.kill();

    // Writes (creates and deletes) by caller, in time order: never two writers at once.
    let writes: Vec<(u64, String)> = bed
        .sim
        .simulator
        .requests()
        .iter()
        .filter(|r| matches!(r.endpoint, Endpoint::Create | Endpoint::Delete))
        .map(|r| (r.at_ms, r.user_agent.clone().unwrap_or_default()))
        .collect();
    let switches = writes.windows(2).filter(|w| w[0].1 != w[1].1).count();
    let standby_writes_before_kill = writes
        .iter()
        .filter(|(at, ua)| *at < killed_at_ms && ua.contains(standby))
        .count();
    let mut text = String::new();
    writeln!(text, "## Two replicas with leader election\n").unwrap();
    writeln!(text, "| figure | value |\n|---|---|").unwrap();
    writeln!(text, "| API server | {} |", bed.server).unwrap();
    writeln!(
        text,
        "| writes by the standby while the leader lived | {standby_writes_before_kill} |"
    )
    .unwrap();
    writeln!(
        text,
        "| changes of writer over the run | {switches} (one per leadership change) |"
    )
    .unwrap();
    writeln!(
        text,
        "| failover after SIGKILL of the leader | {:.1} s (lease 15 s) |",
        failover.as_secs_f64()
    )
    .unwrap();
    writeln!(
        text,
        "| handover after SIGTERM (lease released) | {:.1} s |",
        handover.as_secs_f64()
    )
    .unwrap();
    writeln!(text, "| exit after SIGTERM | {exit:?} |").unwrap();
    report("4-leader", &text);
    assert_eq!(standby_writes_before_kill, 0);
    assert!(switches <= 2, "writers alternated {switches} times");
    // Lease 15 s, plus up to one retry period (2 s) before the standby sees the last renewal and
    // one more before it polls again: 19 s, and 1 s for the requests.
    assert!(
        failover <= Duration::from_secs(20),
        "failover took {failover:?}"
    );
    assert!(exit.is_some_and(|s| s.success()), "graceful exit: {exit:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_within_the_deadline_and_the_key_never_shows() {
    let _serial = SERIAL.lock().await;
    const CANARY: &str = "sk-canary-7f3a9c2e5b1d";
    let bed = Bed::new(
        "sigterm",
        SimulatorConfig {
            pending_duration: Duration::from_millis(200),
            running_duration: Duration::from_millis(400),
            // The canary is not accepted: every call fails with InvalidApiKey and is retried.
            api_keys: vec![KEY.into()],
            latency: Duration::from_millis(300),
            ..Default::default()
        },
    )
    .await;
    let secrets: Api<Secret> = Api::namespaced(bed.client.clone(), NS);
    let canary: Secret = serde_json::from_value(api_key_secret("canary", CANARY)).unwrap();
    secrets
        .create(&PostParams::default(), &canary)
        .await
        .unwrap();
    let metrics_port = modelstudio_testbed::free_port().unwrap();
    let metrics_addr = format!("127.0.0.1:{metrics_port}");
    let mut child = bed.controller(
        "sigterm",
        &[
            "--metrics-addr",
            &metrics_addr,
            "--shutdown-timeout",
            "5s",
            "--default-key-all-namespaces",
        ],
        &[("RUST_LOG", "trace"), ("DASHSCOPE_API_KEY", CANARY)],
    );
    let names_ok = names("term", 4);
    bed.create_imports(&names_ok).await;
    let mut bad: ModelImport = ImportBuilder::new("canary-import").secret("canary").build();
    bad = bed
        .imports()
        .create(&PostParams::default(), &bad)
        .await
        .unwrap();
    bed.converge(&names_ok, &[], Duration::from_secs(60)).await;
    // Let the canary import fail a few times with the key in every request.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let metrics = reqwest::get(format!("http://{metrics_addr}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();

    let t0 = Instant::now();
    child.terminate().expect("SIGTERM sent");
    let exit = child.wait_for_exit(Duration::from_secs(15));
    let stopped_after = t0.elapsed();
    let term_at = bed.sim.simulator.stats().uptime_ms - stopped_after.as_millis() as u64;

    let logs = child.log();
    let status = serde_json::to_string(&bed.imports().get(&bad.name_any()).await.unwrap()).unwrap();
    let events = bed
        .client
        .request_text(
            http::Request::get("/apis/events.k8s.io/v1/namespaces/default/events")
                .body(vec![])
                .unwrap(),
        )
        .await
        .unwrap();
    // The key as the API serves the Secret (base64) counts as shown too.
    let stored = serde_json::to_value(secrets.get("canary").await.unwrap()).unwrap();
    let canary_b64 = stored["data"][modelstudio_testbed::API_KEY_FIELD]
        .as_str()
        .expect("the Secret holds the key")
        .to_string();
    let shows = |t: &str| t.contains(CANARY) || t.contains(&canary_b64);
    let stats = bed.sim.simulator.stats();
    let failures: u64 = [&stats.create, &stats.get, &stats.list, &stats.delete]
        .iter()
        .map(|e| e.code("InvalidApiKey"))
        .sum();
    // Under a persistent error the resource is retried with a growing backoff, not in a loop.
    let canary_calls: Vec<u64> = bed
        .sim
        .simulator
        .requests()
        .iter()
        .filter(|r| r.code.as_deref() == Some("InvalidApiKey"))
        .map(|r| r.at_ms)
        .collect();
    let canary_span_s = match (canary_calls.first(), canary_calls.last()) {
        (Some(a), Some(b)) if b > a => (b - a) as f64 / 1000.0,
        _ => 0.0,
    };
    let late_writes = bed
        .sim
        .simulator
        .requests()
        .iter()
        .filter(|r| {
            r.at_ms > term_at + 1000 && matches!(r.endpoint, Endpoint::Create | Endpoint::Delete)
        })
        .count();
    let mut text = String::new();
    writeln!(text, "## SIGTERM and the API key\n").unwrap();
    writeln!(text, "| figure | value |\n|---|---|").unwrap();
    writeln!(text, "| API server | {} |", bed.server).unwrap();
    writeln!(
        text,
        "| exit after SIGTERM | {exit:?} in {:.2} s (deadline 5 s) |",
        stopped_after.as_secs_f64()
    )
    .unwrap();
    writeln!(
        text,
        "| writes starting more than 1 s after SIGTERM | {late_writes} |"
    )
    .unwrap();
    writeln!(
        text,
        "| calls made with a canary key (refused) | {failures} over {canary_span_s:.1} s (backoff from 100 ms doubling to 2 s) |"
    )
    .unwrap();
    writeln!(
        text,
        "| counted in /metrics as result=\"InvalidApiKey\" | {} |",
        metrics.contains(r#"result="InvalidApiKey""#)
    )
    .unwrap();
    writeln!(
        text,
        "| canary (plain or base64) found in trace logs ({} bytes), events, status, metrics | {} |",
        logs.len(),
        [&logs, &status, &events, &metrics]
            .iter()
            .filter(|t| shows(t))
            .count()
    )
    .unwrap();
    report("5-sigterm", &text);
    assert!(exit.is_some_and(|s| s.success()), "exit {exit:?}");
    assert!(stopped_after < Duration::from_secs(8));
    assert_eq!(late_writes, 0);
    assert!(failures > 0, "the canary key was used");
    assert!(
        metrics.contains(r#"result="InvalidApiKey""#),
        "the failures are counted in /metrics"
    );
    // A growing backoff, capped at 2 s: far fewer calls than a hot loop would make.
    assert!(
        failures as f64 <= 8.0 + canary_span_s,
        "{failures} refused calls in {canary_span_s:.1} s: a hot loop"
    );
    assert!(!logs.is_empty());
    for (what, text) in [
        ("logs", &logs),
        ("status", &status),
        ("events", &events),
        ("metrics", &metrics),
    ] {
        assert!(!shows(text), "the API key appears in the {what}");
    }
}
