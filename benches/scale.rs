//! The scale benchmark: the controller binary, as a process, against the Model Studio simulator
//! and a Kubernetes API server (the real control plane where `MODELSTUDIO_TESTBED_BIN` names it,
//! and the embedded one), with N ModelImports applied at once and jobs active for minutes. Each
//! case runs twice in the same process: the controller as shipped (`--poll-mode listing`) and the
//! naive way at the same settings (`--poll-mode per-job`: one GET per job in progress per poll).
//! It prints its figures and writes `docs/performance.md`.
//!
//! `cargo bench --bench scale`. Environment:
//! - `BENCH_CASES`: comma-separated `N@K` (default `1000@3,10000@6`): N ModelImports at time
//!   scale K, where every duration of the defaults is divided by K and the quota multiplied by K
//!   (`--qps 5`, `--poll-interval 30s`, jobs PENDING 60 s then RUNNING 10 min, at K = 1);
//! - `BENCH_SERVERS`: `real`, `embedded` or both (default: both when the real control plane is
//!   built, else `embedded`);
//! - `BENCH_BASELINE_LIMIT`: the longest the naive run may take, in seconds (default 180): it
//!   never finishes at scale, and is measured over the time it had.

use futures::StreamExt;
use kube::api::{Api, DynamicObject, PostParams};
use kube::runtime::watcher::{self, Event};
use kube::Client;
use modelstudio_controller::crd::ModelImport;
use modelstudio_simulator::control::Endpoint;
use modelstudio_simulator::{RunningSimulator, SimulatorConfig};
use modelstudio_testbed::metrics::{samples, scrape, sum, Sample};
use modelstudio_testbed::{
    api_key_secret, free_port, Cluster, ControllerCommand, ImportBuilder, TempDir,
};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

const SECRET: &str = "dashscope";
const CREATE_PARALLELISM: usize = 32;
/// One job in this many fails (its storage path carries the simulator's failure marker).
const FAIL_EVERY: usize = 20;
const FAIL_MARKER: &str = "broken";
const DOC: &str = "docs/performance.md";
const CLOCK_TICKS_PER_SEC: f64 = 100.0;
/// The key under which `kube_requests` returns the count of reconciles.
const RECONCILES: &str = "reconciles";
/// The real defaults, at time scale 1.
const QPS: f64 = 5.0;
const BURST: u32 = 10;
const POLL: Duration = Duration::from_secs(30);
const PENDING: Duration = Duration::from_secs(60);
/// About how long importing a LoRA adapter takes.
const RUNNING: Duration = Duration::from_secs(600);
/// Time a status write takes beyond the poll interval in the issue's lag goal.
const LAG_SLACK: Duration = Duration::from_secs(2);

#[derive(Clone, Copy, Debug)]
struct Case {
    jobs: usize,
    scale: f64,
}

impl Case {
    fn scaled(&self, d: Duration) -> Duration {
        d.div_f64(self.scale)
    }
    fn qps(&self) -> f64 {
        QPS * self.scale
    }
    fn poll(&self) -> Duration {
        self.scaled(POLL)
    }
    fn pending(&self) -> Duration {
        self.scaled(PENDING)
    }
    fn running(&self) -> Duration {
        self.scaled(RUNNING)
    }
    /// The issue's goal for creates: 1.15 × N / qps.
    fn create_goal(&self) -> f64 {
        1.15 * self.jobs as f64 / self.qps()
    }
}

fn parse_cases(text: &str) -> Result<Vec<Case>> {
    text.split(',')
        .map(|case| {
            let (n, k) = case.trim().split_once('@').unwrap_or((case.trim(), "1"));
            let jobs: usize = n
                .parse()
                .map_err(|_| format!("BENCH_CASES: {n:?} is not a count"))?;
            let scale: f64 = k
                .parse()
                .map_err(|_| format!("BENCH_CASES: {k:?} is not a time scale"))?;
            if !(1..=100_000).contains(&jobs) || !(0.1..=50.0).contains(&scale) {
                return Err(format!(
                    "BENCH_CASES: {case:?} wants N in 1..=100000 and K in 0.1..=50"
                )
                .into());
            }
            Ok(Case { jobs, scale })
        })
        .collect()
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Listing,
    PerJob,
}

impl Mode {
    fn flag(self) -> &'static str {
        match self {
            Mode::Listing => "listing",
            Mode::PerJob => "per-job",
        }
    }
}

/// What the bench saw of one resource, in ms since the simulator started.
#[derive(Default, Clone, Debug)]
struct Seen {
    job_id: Option<String>,
    job_at: Option<u64>,
    running_at: Option<u64>,
    finished_at: Option<u64>,
    ready_at: Option<u64>,
}

/// Watches the namespace's ModelImports and notes when each got its job, showed RUNNING, a
/// final phase, and Ready.
fn watch_imports(
    client: Client,
    namespace: &str,
    t0: Instant,
    seen: Arc<Mutex<HashMap<String, Seen>>>,
) -> tokio::task::JoinHandle<()> {
    let api: Api<DynamicObject> = Api::namespaced_with(
        client,
        namespace,
        &kube::api::ApiResource::erase::<ModelImport>(&()),
    );
    tokio::spawn(async move {
        let mut events = watcher::watcher(api, watcher::Config::default()).boxed();
        while let Some(event) = events.next().await {
            let now = t0.elapsed().as_millis() as u64;
            let objects = match event {
                Ok(Event::Apply(o) | Event::InitApply(o)) => vec![o],
                _ => continue,
            };
            let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
            for obj in objects {
                let Some(name) = obj.metadata.name.clone() else {
                    continue;
                };
                let status = &obj.data["status"];
                let entry = seen.entry(name).or_default();
                if let (None, Some(id)) = (&entry.job_id, status["jobId"].as_str()) {
                    entry.job_id = Some(id.to_string());
                    entry.job_at = Some(now);
                }
                match status["phase"].as_str() {
                    Some("Running") => {
                        entry.running_at.get_or_insert(now);
                    }
                    Some("Succeeded" | "Failed") => {
                        entry.finished_at.get_or_insert(now);
                    }
                    _ => {}
                }
                let ready = status["conditions"].as_array().is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                });
                if ready {
                    entry.ready_at.get_or_insert(now);
                }
            }
        }
    })
}

async fn create_imports(client: &Client, namespace: &str, jobs: usize) -> Result<()> {
    let api: Api<ModelImport> = Api::namespaced(client.clone(), namespace);
    let mut next = 0;
    let mut running = JoinSet::new();
    // Each turn starts or finishes one create: at most 2 * N + 1 turns.
    for _ in 0..(2 * jobs + 1) {
        if running.len() < CREATE_PARALLELISM && next < jobs {
            let name = format!("import-{next:05}");
            let mut import = ImportBuilder::new(&name).secret(SECRET);
            if next % FAIL_EVERY == FAIL_EVERY - 1 {
                import = import.spec(
                    "storage",
                    serde_json::json!({"bucketName": "bucket", "objectKey": format!("{FAIL_MARKER}/{name}/")}),
                );
            }
            let object: ModelImport = import.build();
            let api = api.clone();
            running.spawn(async move {
                api.create(&PostParams::default(), &object)
                    .await
                    .map(|_| ())
                    .map_err(|e| format!("could not create ModelImport {name}: {e}"))
            });
            next += 1;
            continue;
        }
        match running.join_next().await {
            Some(joined) => joined.map_err(|e| format!("a create task failed: {e}"))??,
            None => return Ok(()),
        }
    }
    Err("the create loop ran longer than its bound".into())
}

/// utime + stime of a process, in seconds, and its peak resident set, in MiB.
fn process_usage(pid: u32) -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some((ticks / CLOCK_TICKS_PER_SEC, status_mib(pid, "VmHWM:")?))
}

/// A memory figure of /proc/PID/status (`VmHWM:`, `VmRSS:`), in MiB.
fn status_mib(pid: u32, field: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix(field))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse::<f64>()
        .ok()?;
    Some(kib / 1024.0)
}

/// A process's resident set now, in MiB.
fn current_rss_mib(pid: u32) -> Option<f64> {
    status_mib(pid, "VmRSS:")
}

/// `modelstudio_kubernetes_requests_total` by `verb resource[/subresource]`, and the count of
/// reconciles (under [`RECONCILES`]), from the controller's /metrics.
fn kube_requests(all: &[Sample]) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let reconciles = sum(all, "modelstudio_reconciliations_total", &[]);
    out.insert(RECONCILES.to_string(), reconciles as u64);
    for s in all
        .iter()
        .filter(|s| s.name == "modelstudio_reconciliations_total")
    {
        let step = s.labels.get("step").cloned().unwrap_or_default();
        *out.entry(format!("{RECONCILES}: {step}")).or_default() += s.value as u64;
    }
    for s in all
        .iter()
        .filter(|s| s.name == "modelstudio_kubernetes_requests_total")
    {
        let label = |k: &str| s.labels.get(k).cloned().unwrap_or_default();
        let key = match label("subresource").as_str() {
            "" => format!("{} {}", label("verb"), label("resource")),
            sub => format!("{} {}/{sub}", label("verb"), label("resource")),
        };
        *out.entry(key).or_default() += s.value as u64;
    }
    out
}

/// Where a reconcile's time goes, as means in seconds from the controller's histograms: a
/// reconcile, and a remote call's wait for the quota by its class.
fn time_means(all: &[Sample]) -> Vec<(String, f64)> {
    let mean = |name: &str, labels: &[(&str, &str)]| {
        let count = sum(all, &format!("{name}_count"), labels);
        (count > 0.0).then(|| sum(all, &format!("{name}_sum"), labels) / count)
    };
    let mut out = Vec::new();
    if let Some(m) = mean("modelstudio_reconcile_duration_seconds", &[]) {
        out.push(("reconcile, mean time".to_string(), m));
    }
    for class in ["mutation", "recovery", "poll", "resync"] {
        if let Some(m) = mean(
            "modelstudio_api_rate_limit_wait_seconds",
            &[("priority", class)],
        ) {
            out.push((format!("quota wait of a {class} call, mean"), m));
        }
    }
    out
}

/// The poll cycles' total length in seconds, and their count, from the controller's histogram.
fn poll_cycles(all: &[Sample]) -> (f64, f64) {
    (
        sum(all, "modelstudio_poll_cycle_seconds_sum", &[]),
        sum(all, "modelstudio_poll_cycle_seconds_count", &[]),
    )
}

fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied()
}

#[derive(Debug, Default)]
struct Figures {
    /// Seconds from the start of the apply.
    all_created: Option<f64>,
    created: usize,
    all_ready: Option<f64>,
    ready: usize,
    run_length: f64,
    remote: BTreeMap<&'static str, u64>,
    poll_calls: u64,
    active_job_minutes: f64,
    peak_active: usize,
    finished_jobs: usize,
    poll_cycles: f64,
    /// Poll calls per poll cycle while every job existed and none finished.
    steady_calls_per_cycle: Option<f64>,
    /// Median time between two reads of the same job (per-job polling).
    read_gap: Option<f64>,
    lags: Vec<f64>,
    /// The same lags by what changed (to RUNNING, to finished) and by when (while creates still
    /// took the quota, or after the last create).
    lags_running: Vec<f64>,
    lags_finished: Vec<f64>,
    lags_while_creating: Vec<f64>,
    lags_after_creates: Vec<f64>,
    kube: BTreeMap<String, u64>,
    /// Mean times from the controller's histograms, in seconds.
    time_means: Vec<(String, f64)>,
    /// Mean length of a poll cycle, start to start (the poll interval in effect), while creates
    /// went on and after the last, in seconds.
    poll_cycle_while_creating: Option<f64>,
    poll_cycle_after_creates: Option<f64>,
    peak_rss_mib: Option<f64>,
    /// When the sampled resident set was highest, in seconds after the apply.
    rss_peak_at: Option<f64>,
    /// The resident set at the end, everything finished.
    end_rss_mib: Option<f64>,
    cpu_seconds: Option<f64>,
    idle_calls: Option<u64>,
    /// Of those, GETs (the rest are lists: a resync may fall in the window).
    idle_gets: u64,
    idle_window: f64,
    duplicates: usize,
}

impl Figures {
    fn calls_per_active_job_minute(&self) -> Option<f64> {
        (self.active_job_minutes > 0.0).then(|| self.poll_calls as f64 / self.active_job_minutes)
    }
    fn lag(&self, p: f64) -> Option<f64> {
        percentile(&self.lags, p)
    }
    fn kube_total(&self) -> u64 {
        self.kube
            .iter()
            .filter(|(k, _)| !k.starts_with(RECONCILES))
            .map(|(_, v)| v)
            .sum()
    }
    fn reconciles(&self) -> u64 {
        self.kube.get(RECONCILES).copied().unwrap_or(0)
    }
}

fn endpoint_name(endpoint: Endpoint) -> &'static str {
    match endpoint {
        Endpoint::Create => "create",
        Endpoint::Get => "get",
        Endpoint::List => "list",
        Endpoint::Delete => "delete",
        _ => "other",
    }
}

/// One run of the controller in `mode` in its own namespace, with its own simulator.
async fn run_mode(
    cluster: &Cluster,
    client: &Client,
    dir: &TempDir,
    case: Case,
    mode: Mode,
    limit: Duration,
) -> Result<Figures> {
    let namespace = format!("bench-{}-{}", mode.flag(), case.jobs);
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({"metadata": {"name": namespace}}))?,
        )
        .await?;
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(client.clone(), &namespace);
    secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(api_key_secret(SECRET, "sk-bench-0000"))?,
        )
        .await?;
    let t0 = Instant::now();
    let sim = RunningSimulator::start(SimulatorConfig {
        pending_duration: case.pending(),
        running_duration: case.running(),
        fail_marker: FAIL_MARKER.into(),
        ..SimulatorConfig::default()
    })
    .await?;
    let kubeconfig = dir.0.join(format!("{namespace}.kubeconfig"));
    cluster.write_kubeconfig(&kubeconfig, &namespace)?;
    let secs = |d: Duration| format!("{}ms", d.as_millis());
    let command = ControllerCommand::new(
        env!("CARGO_BIN_EXE_modelstudio-controller"),
        &kubeconfig,
        &sim.base_url(),
    )
    .flags(&[
        "--namespace",
        &namespace,
        "--qps",
        &format!("{}", case.qps()),
        "--burst",
        &BURST.to_string(),
        "--poll-interval",
        &secs(case.poll()),
        "--poll-mode",
        mode.flag(),
        "--backoff-base",
        &secs(case.scaled(Duration::from_secs(2))),
        "--backoff-max",
        &secs(case.scaled(Duration::from_secs(300))),
        "--resync-interval",
        &secs(case.scaled(Duration::from_secs(1800))),
        "--request-timeout",
        "30s",
    ])
    .env("RUST_LOG", "warn,modelstudio_controller::app=info");
    let addr = format!("127.0.0.1:{}", free_port()?);
    let command = command.flags(&["--metrics-addr", &addr]);
    let mut controller = command.spawn(&namespace, &dir.0)?;
    let seen: Arc<Mutex<HashMap<String, Seen>>> = Arc::default();
    let watch = watch_imports(client.clone(), &namespace, t0, seen.clone());
    // Ready for the apply once the controller serves its metrics.
    let mut up = false;
    for _ in 0..200 {
        up = scrape(&addr).await.is_ok();
        if up {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if !up {
        return Err(format!("the controller did not start:\n{}", controller.log()).into());
    }
    let applied_at = t0.elapsed();
    create_imports(client, &namespace, case.jobs).await?;
    eprintln!(
        "  {}: applied {} ModelImports in {:.1} s",
        mode.flag(),
        case.jobs,
        (t0.elapsed() - applied_at).as_secs_f64()
    );

    // Until every resource is Ready, or the limit.
    let deadline = Instant::now() + limit;
    let mut last_report = Instant::now();
    let mut idle_from = None;
    // The resident set's highest sample and when it was taken (seconds after the apply).
    let mut rss_high: Option<(f64, f64)> = None;
    // The poll cycles' total length and count when every resource first had its job.
    let mut cycles_at_last_create: Option<(f64, f64)> = None;
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if let Some(rss) = current_rss_mib(controller.pid()) {
            if rss_high.is_none_or(|(high, _)| rss > high) {
                rss_high = Some((rss, (t0.elapsed() - applied_at).as_secs_f64()));
            }
        }
        let (jobs, ready) = {
            let seen = seen.lock().unwrap_or_else(|p| p.into_inner());
            (
                seen.values().filter(|s| s.job_id.is_some()).count(),
                seen.values()
                    .filter(|s| s.ready_at.is_some() || s.finished_at.is_some())
                    .count(),
            )
        };
        if jobs == case.jobs && cycles_at_last_create.is_none() {
            let all = samples(&scrape(&addr).await.unwrap_or_default());
            cycles_at_last_create = Some(poll_cycles(&all));
        }
        if last_report.elapsed() > Duration::from_secs(30) {
            eprintln!(
                "  {}: t={:.0}s {jobs} with a job, {ready} finished, RSS {:.1} MiB",
                mode.flag(),
                t0.elapsed().as_secs_f64(),
                current_rss_mib(controller.pid()).unwrap_or(0.0)
            );
            last_report = Instant::now();
        }
        if ready == case.jobs && jobs == case.jobs {
            idle_from = Some(t0.elapsed());
            break;
        }
    }
    let run_end = t0.elapsed();
    // Nothing active: the remote calls of three poll intervals (no resync falls in them).
    let idle_window = case.poll() * 3;
    if idle_from.is_some() {
        tokio::time::sleep(idle_window).await;
    }
    let usage = process_usage(controller.pid());
    let end_rss = current_rss_mib(controller.pid());
    let metrics = samples(&scrape(&addr).await.unwrap_or_default());
    let kube = kube_requests(&metrics);
    let time_means = time_means(&metrics);
    let cycles_at_end = poll_cycles(&metrics);
    controller.stop(Duration::from_secs(5));
    watch.abort();

    let requests = sim.simulator.requests();
    let sim_jobs = sim.simulator.jobs();
    sim.shutdown().await;
    let seen = seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let applied_ms = applied_at.as_millis() as f64;
    let run_end_ms = run_end.as_millis() as u64;
    let mut f = Figures {
        run_length: (run_end - applied_at).as_secs_f64(),
        idle_window: idle_window.as_secs_f64(),
        kube,
        time_means,
        ..Figures::default()
    };
    let mean = |(sum, count): (f64, f64)| (count > 0.0).then(|| sum / count);
    match cycles_at_last_create {
        Some(wave) => {
            f.poll_cycle_while_creating = mean(wave);
            f.poll_cycle_after_creates = mean((cycles_at_end.0 - wave.0, cycles_at_end.1 - wave.1));
        }
        None => f.poll_cycle_while_creating = mean(cycles_at_end),
    }
    if let Some((cpu, rss)) = usage {
        f.cpu_seconds = Some(cpu);
        f.peak_rss_mib = Some(rss);
    }
    f.rss_peak_at = rss_high.map(|(_, at)| at);
    f.end_rss_mib = end_rss;
    // Creates, in the simulator's clock: the job ids and when each was made.
    let mut created_at: HashMap<String, u64> = HashMap::new();
    for r in &requests {
        if r.at_ms <= run_end_ms {
            *f.remote.entry(endpoint_name(r.endpoint)).or_default() += 1;
            if matches!(r.endpoint, Endpoint::Get | Endpoint::List) {
                f.poll_calls += 1;
            }
        } else if idle_from.is_some() {
            *f.idle_calls.get_or_insert(0) += 1;
            if r.endpoint != Endpoint::List {
                f.idle_gets += 1;
            }
        }
        if r.endpoint == Endpoint::Create && r.status == 200 {
            if let Some(id) = &r.job_id {
                created_at.insert(id.clone(), r.at_ms);
            }
        }
    }
    if idle_from.is_some() && f.idle_calls.is_none() {
        f.idle_calls = Some(0);
    }
    f.created = created_at.len();
    f.duplicates = sim_jobs.len().saturating_sub(case.jobs);
    if f.created >= case.jobs {
        let mut times: Vec<u64> = created_at.values().copied().collect();
        times.sort_unstable();
        f.all_created = times
            .get(case.jobs - 1)
            .map(|t| (*t as f64 - applied_ms) / 1000.0);
    }
    let (pending, running) = (
        case.pending().as_millis() as u64,
        case.running().as_millis() as u64,
    );
    // Active job-minutes within the run, and the most jobs active at once (sampled each second).
    for at in created_at.values() {
        let end = (at + pending + running).min(run_end_ms);
        f.active_job_minutes += end.saturating_sub(*at) as f64 / 60_000.0;
        if at + pending + running <= run_end_ms {
            f.finished_jobs += 1;
        }
    }
    let mut t = 0;
    while t <= run_end_ms {
        let active = created_at
            .values()
            .filter(|at| **at <= t && t < *at + pending + running)
            .count();
        f.peak_active = f.peak_active.max(active);
        t += 1000;
    }
    f.poll_cycles = (run_end_ms as f64 - applied_ms) / case.poll().as_millis() as f64;
    // The steady window: every job made (plus a poll interval), none finished yet.
    let poll_ms = case.poll().as_millis() as u64;
    if f.created >= case.jobs {
        let all_made = created_at.values().copied().max().unwrap_or(0) + poll_ms;
        let first_end = created_at
            .values()
            .map(|at| at + pending + running)
            .min()
            .unwrap_or(0);
        if first_end > all_made + 2 * poll_ms {
            let calls = requests
                .iter()
                .filter(|r| (all_made..first_end).contains(&r.at_ms))
                .filter(|r| matches!(r.endpoint, Endpoint::Get | Endpoint::List))
                .count();
            f.steady_calls_per_cycle =
                Some(calls as f64 * poll_ms as f64 / (first_end - all_made) as f64);
        }
    }
    let mut last_read: HashMap<&str, u64> = HashMap::new();
    let mut gaps = Vec::new();
    for r in requests.iter().filter(|r| r.endpoint == Endpoint::Get) {
        if let Some(id) = r.job_id.as_deref() {
            if let Some(before) = last_read.insert(id, r.at_ms) {
                gaps.push((r.at_ms - before) as f64 / 1000.0);
            }
        }
    }
    gaps.sort_by(|a, b| a.total_cmp(b));
    f.read_gap = percentile(&gaps, 0.5);
    // The last create, when every job was made: changes before it competed with creates.
    let last_create = (f.created >= case.jobs).then(|| created_at.values().copied().max());
    let last_create = last_create.flatten().unwrap_or(u64::MAX);
    for s in seen.values() {
        let Some(at) = s.job_id.as_ref().and_then(|id| created_at.get(id)) else {
            continue;
        };
        let mut measured = Vec::new();
        if let Some(shown) = s.running_at {
            // A status that skipped RUNNING (the job finished first) has no RUNNING lag.
            if shown < at + pending + running {
                let lag = shown.saturating_sub(at + pending) as f64 / 1000.0;
                f.lags_running.push(lag);
                measured.push((at + pending, lag));
            }
        }
        if let Some(shown) = s.finished_at {
            let lag = shown.saturating_sub(at + pending + running) as f64 / 1000.0;
            f.lags_finished.push(lag);
            measured.push((at + pending + running, lag));
        }
        for (changed, lag) in measured {
            f.lags.push(lag);
            if changed < last_create {
                f.lags_while_creating.push(lag);
            } else {
                f.lags_after_creates.push(lag);
            }
        }
    }
    for lags in [
        &mut f.lags,
        &mut f.lags_running,
        &mut f.lags_finished,
        &mut f.lags_while_creating,
        &mut f.lags_after_creates,
    ] {
        lags.sort_by(|a, b| a.total_cmp(b));
    }
    f.ready = seen.values().filter(|s| s.finished_at.is_some()).count();
    if f.ready == case.jobs {
        let last = seen
            .values()
            .filter_map(|s| s.finished_at)
            .max()
            .unwrap_or(0);
        f.all_ready = Some((last as f64 - applied_ms) / 1000.0);
    }
    Ok(f)
}

fn secs(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.1} s"))
}

fn ratio(ours: Option<f64>, base: Option<f64>) -> String {
    match (ours, base) {
        (Some(o), Some(b)) if o > 0.0 => format!("{:.1}x", b / o),
        _ => "-".into(),
    }
}

fn report(server: &str, case: Case, ours: &Figures, base: &Figures) -> String {
    let mut out = String::new();
    let p = case.poll().as_secs_f64();
    let _ = writeln!(
        out,
        "== {server}: {n} ModelImports, time scale K={k} ==",
        n = case.jobs,
        k = case.scale
    );
    let _ = writeln!(
        out,
        "settings: --qps {} --burst {BURST} --poll-interval {p:.1}s (the defaults 5 / 30s, time-scaled); jobs PENDING {:.0} s then RUNNING {:.0} s; 1 in {FAIL_EVERY} fails",
        case.qps(),
        case.pending().as_secs_f64(),
        case.running().as_secs_f64()
    );
    let _ = writeln!(out, "baseline: --poll-mode per-job (one GET per job in progress per poll), same settings, stopped after {:.0} s", base.run_length);
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:<52} {:>22} {:>22} {:>9}",
        "figure", "listing (shipped)", "per-job (baseline)", "base/ours"
    );
    let _ = writeln!(out, "{}", "-".repeat(108));
    let row = |out: &mut String, name: &str, a: String, b: String, r: String| {
        let _ = writeln!(out, "{name:<52} {a:>22} {b:>22} {r:>9}");
    };
    let reached = |t: Option<f64>, count: usize| match t {
        Some(t) => format!("{t:.1} s"),
        None => format!("no: {count}/{}", case.jobs),
    };
    row(
        &mut out,
        "time until every job is created",
        reached(ours.all_created, ours.created),
        reached(base.all_created, base.created),
        ratio(ours.all_created, base.all_created),
    );
    row(
        &mut out,
        "time until every ModelImport is Ready (final)",
        reached(ours.all_ready, ours.ready),
        reached(base.all_ready, base.ready),
        ratio(ours.all_ready, base.all_ready),
    );
    for endpoint in ["create", "get", "list", "delete"] {
        let count = |f: &Figures| f.remote.get(endpoint).copied().unwrap_or(0);
        row(
            &mut out,
            &format!("remote calls: {endpoint}"),
            count(ours).to_string(),
            count(base).to_string(),
            String::new(),
        );
    }
    row(
        &mut out,
        "active job-minutes in the run",
        format!("{:.0}", ours.active_job_minutes),
        format!("{:.0}", base.active_job_minutes),
        String::new(),
    );
    row(
        &mut out,
        "poll calls (get + list) per active job-minute",
        ours.calls_per_active_job_minute()
            .map_or("-".into(), |v| format!("{v:.3}")),
        base.calls_per_active_job_minute()
            .map_or("-".into(), |v| format!("{v:.3}")),
        ratio(
            ours.calls_per_active_job_minute(),
            base.calls_per_active_job_minute(),
        ),
    );
    row(
        &mut out,
        "steady: poll calls per cycle, all jobs in progress",
        ours.steady_calls_per_cycle
            .map_or("-".into(), |v| format!("{v:.1}")),
        format!("needs {}", case.jobs),
        ours.steady_calls_per_cycle.map_or("-".into(), |v| {
            format!("{:.0}x", case.jobs as f64 / v.max(1.0))
        }),
    );
    row(
        &mut out,
        "median time between two reads of one job",
        secs(ours.read_gap),
        secs(base.read_gap),
        String::new(),
    );
    row(
        &mut out,
        "most jobs active at once",
        ours.peak_active.to_string(),
        base.peak_active.to_string(),
        String::new(),
    );
    row(
        &mut out,
        "list calls per poll cycle",
        format!(
            "{:.1}",
            ours.remote.get("list").copied().unwrap_or(0) as f64 / ours.poll_cycles.max(1.0)
        ),
        format!(
            "{:.1}",
            base.remote.get("list").copied().unwrap_or(0) as f64 / base.poll_cycles.max(1.0)
        ),
        String::new(),
    );
    row(
        &mut out,
        "GETs per job that finished in the run",
        format!(
            "{:.2}",
            ours.remote.get("get").copied().unwrap_or(0) as f64 / ours.finished_jobs.max(1) as f64
        ),
        format!(
            "{:.2}",
            base.remote.get("get").copied().unwrap_or(0) as f64 / base.finished_jobs.max(1) as f64
        ),
        String::new(),
    );
    row(
        &mut out,
        "status lag, remote change to status: p50",
        secs(ours.lag(0.5)),
        secs(base.lag(0.5)),
        ratio(ours.lag(0.5), base.lag(0.5)),
    );
    row(
        &mut out,
        "status lag: p95",
        secs(ours.lag(0.95)),
        secs(base.lag(0.95)),
        ratio(ours.lag(0.95), base.lag(0.95)),
    );
    for (name, ours_lags, base_lags) in [
        (
            "  p95 of changes to RUNNING",
            &ours.lags_running,
            &base.lags_running,
        ),
        (
            "  p95 of changes to finished",
            &ours.lags_finished,
            &base.lags_finished,
        ),
        (
            "  p95 of changes while creates go on",
            &ours.lags_while_creating,
            &base.lags_while_creating,
        ),
        (
            "  p95 of changes after the last create",
            &ours.lags_after_creates,
            &base.lags_after_creates,
        ),
    ] {
        let (o, b) = (percentile(ours_lags, 0.95), percentile(base_lags, 0.95));
        row(
            &mut out,
            &format!("{name} ({} / {})", ours_lags.len(), base_lags.len()),
            secs(o),
            secs(b),
            String::new(),
        );
    }
    for (name, cycle) in [
        (
            "poll cycle, start to start, mean: while creates go on",
            (|f: &Figures| f.poll_cycle_while_creating) as fn(&Figures) -> Option<f64>,
        ),
        ("  after the last create", |f: &Figures| {
            f.poll_cycle_after_creates
        }),
    ] {
        row(
            &mut out,
            name,
            secs(cycle(ours)),
            secs(cycle(base)),
            String::new(),
        );
    }
    row(
        &mut out,
        "status lag: max",
        secs(ours.lag(1.0)),
        secs(base.lag(1.0)),
        String::new(),
    );
    row(
        &mut out,
        "status changes measured",
        ours.lags.len().to_string(),
        base.lags.len().to_string(),
        String::new(),
    );
    row(
        &mut out,
        &format!(
            "remote calls in {:.0} s idle after all Ready",
            ours.idle_window
        ),
        ours.idle_calls.map_or("-".into(), |v| v.to_string()),
        base.idle_calls.map_or("-".into(), |v| v.to_string()),
        String::new(),
    );
    row(
        &mut out,
        "Kubernetes requests (all)",
        ours.kube_total().to_string(),
        base.kube_total().to_string(),
        ratio(
            Some(ours.kube_total() as f64),
            Some(base.kube_total() as f64),
        ),
    );
    let mut verbs: Vec<&String> = ours
        .kube
        .keys()
        .chain(base.kube.keys())
        .filter(|k| !k.starts_with(RECONCILES))
        .collect();
    verbs.sort();
    verbs.dedup();
    for verb in verbs {
        let count = |f: &Figures| f.kube.get(verb).copied().unwrap_or(0).to_string();
        row(
            &mut out,
            &format!("  {verb}"),
            count(ours),
            count(base),
            String::new(),
        );
    }
    row(
        &mut out,
        "reconciles",
        ours.reconciles().to_string(),
        base.reconciles().to_string(),
        String::new(),
    );
    let mut steps: Vec<&String> = ours
        .kube
        .keys()
        .chain(base.kube.keys())
        .filter(|k| k.starts_with(&format!("{RECONCILES}: ")))
        .collect();
    steps.sort();
    steps.dedup();
    for step in steps {
        let count = |f: &Figures| f.kube.get(step).copied().unwrap_or(0).to_string();
        let name = format!("  step {}", &step[RECONCILES.len() + 2..]);
        row(&mut out, &name, count(ours), count(base), String::new());
    }
    let mut names: Vec<&String> = ours
        .time_means
        .iter()
        .chain(&base.time_means)
        .map(|(n, _)| n)
        .collect();
    names.sort();
    names.dedup();
    for name in names {
        let mean = |f: &Figures| {
            f.time_means
                .iter()
                .find(|(n, _)| n == name)
                .map_or("-".into(), |(_, v)| format!("{:.1} ms", v * 1000.0))
        };
        row(&mut out, name, mean(ours), mean(base), String::new());
    }
    row(
        &mut out,
        "controller peak RSS",
        ours.peak_rss_mib
            .map_or("-".into(), |v| format!("{v:.1} MiB")),
        base.peak_rss_mib
            .map_or("-".into(), |v| format!("{v:.1} MiB")),
        String::new(),
    );
    row(
        &mut out,
        "  sampled RSS highest at (s after the apply)",
        secs(ours.rss_peak_at),
        secs(base.rss_peak_at),
        String::new(),
    );
    row(
        &mut out,
        "  RSS at the end",
        ours.end_rss_mib
            .map_or("-".into(), |v| format!("{v:.1} MiB")),
        base.end_rss_mib
            .map_or("-".into(), |v| format!("{v:.1} MiB")),
        String::new(),
    );
    row(
        &mut out,
        "controller CPU time",
        secs(ours.cpu_seconds),
        secs(base.cpu_seconds),
        String::new(),
    );
    row(
        &mut out,
        "run length (apply to end)",
        format!("{:.1} s", ours.run_length),
        format!("{:.1} s", base.run_length),
        String::new(),
    );
    row(
        &mut out,
        "duplicate jobs",
        ours.duplicates.to_string(),
        base.duplicates.to_string(),
        String::new(),
    );
    let _ = writeln!(out);
    let _ = writeln!(out, "goals (issue 10), shipped controller:");
    let goal = |out: &mut String, ok: bool, text: String| {
        let _ = writeln!(out, "  [{}] {text}", if ok { "met" } else { "NOT MET" });
    };
    if case.jobs >= 1000 {
        let ok = ours.all_created.is_some_and(|t| t <= case.create_goal());
        let text = format!(
            "every job created within 1.15 x N / qps = {:.0} s: {}",
            case.create_goal(),
            secs(ours.all_created)
        );
        if case.jobs == 1000 {
            goal(&mut out, ok, text);
        } else {
            // The issue sets this goal at N = 1,000; the same pace at a larger N is shown, as a
            // figure beside the goals, not as one of them.
            let pace = if ok { "at that pace" } else { "slower" };
            let _ = writeln!(
                out,
                "  [{pace}; the issue sets this goal at N = 1,000 only] {text}"
            );
        }
    }
    let list_bound =
        |f: &Figures| f.poll_cycles.ceil() * 2.0 * (f.peak_active as f64 / 100.0).ceil().max(1.0);
    let lists = ours.remote.get("list").copied().unwrap_or(0) as f64;
    let gets = ours.remote.get("get").copied().unwrap_or(0) as f64;
    goal(&mut out, lists <= list_bound(ours) && gets <= ours.finished_jobs as f64 * 1.02 + 1.0, format!("polling: {lists:.0} list calls (at most ceil(active/100) per state and cycle: {:.0}) and {gets:.0} GETs for {} finished jobs", list_bound(ours), ours.finished_jobs));
    if let Some(steady) = ours.steady_calls_per_cycle {
        // The naive way needs one GET per job in progress and cycle to keep every status within
        // a poll interval.
        let r = case.jobs as f64 / steady.max(1.0);
        goal(
            &mut out,
            r >= 20.0,
            format!(
                "with all {} jobs in progress, at least 20x fewer remote calls per poll cycle than the naive way's one GET per job: {steady:.1} calls a cycle, {r:.0}x fewer",
                case.jobs
            ),
        );
    }
    let lag_goal = p + LAG_SLACK.as_secs_f64();
    // The two goals share one quota: creates within 1.15 x N / qps take 87% of it, so polling at
    // the set interval fits beside them only while a cycle's listings need at most 13%. Where it
    // does not, the issue has polls wait (creates first) and the interval in effect stretch: the
    // lag goal holds where the quota covers the polling, after the last create.
    let pages = (ours.peak_active as f64 / 100.0).ceil() + 1.0;
    let poll_share = pages / p / case.qps();
    let fits = poll_share <= 1.0 - 1.0 / 1.15;
    if fits {
        goal(
            &mut out,
            ours.lag(0.95).is_some_and(|l| l <= lag_goal),
            format!(
                "status lag p95 at most the poll interval + 2 s = {lag_goal:.1} s: {}",
                secs(ours.lag(0.95))
            ),
        );
    } else {
        let after = percentile(&ours.lags_after_creates, 0.95);
        goal(
            &mut out,
            after.is_some_and(|l| l <= lag_goal),
            format!(
                "status lag p95 at most the poll interval + 2 s = {lag_goal:.1} s where the quota covers the polling (changes after the last create): {}",
                secs(after)
            ),
        );
    }
    let _ = writeln!(
        out,
        "  note: with {} jobs in progress a poll cycle lists {pages:.0} pages every {p:.0} s, {:.0}% of the quota; \
         creates within the goal take 87%, so {}",
        ours.peak_active,
        poll_share * 100.0,
        if fits {
            "both fit in the quota".to_string()
        } else {
            format!(
                "both cannot fit: while creates go on, polls wait (creates first) and the poll interval in effect \
                 stretches to {} on average (lag p95 of those changes {}; {} over the whole run)",
                secs(ours.poll_cycle_while_creating),
                secs(percentile(&ours.lags_while_creating, 0.95)),
                secs(ours.lag(0.95)),
            )
        },
    );
    // Nothing in progress: no poll at all; only the resync of finished jobs may list them.
    let resync_pages = 3 * case.jobs.div_ceil(100) as u64 + 3;
    goal(
        &mut out,
        ours.idle_calls
            .is_some_and(|c| ours.idle_gets == 0 && c <= resync_pages),
        format!(
            "no remote call in an idle interval but a batched resync: {} (GETs {}, at most one resync listing of {resync_pages} pages)",
            ours.idle_calls.map_or("not measured".into(), |v| v.to_string()),
            ours.idle_gets
        ),
    );
    if case.jobs >= 10_000 {
        goal(
            &mut out,
            ours.peak_rss_mib.is_some_and(|m| m <= 64.0),
            format!(
                "10,000 ModelImports in at most 64 MiB peak RSS: {}",
                ours.peak_rss_mib
                    .map_or("-".into(), |v| format!("{v:.1} MiB"))
            ),
        );
    }
    let secret_gets = ours.kube.get("get secrets").copied().unwrap_or(0);
    goal(
        &mut out,
        secret_gets * 100 <= ours.reconciles(),
        format!(
            "no GET of a Secret per reconcile: {secret_gets} Secret GETs in {} reconciles",
            ours.reconciles()
        ),
    );
    out
}

fn write_doc(sections: &[String]) -> std::io::Result<()> {
    let mut doc = String::from(
        "# Performance at scale\n\n\
         Written by `cargo bench --bench scale` on a 2-core machine: the controller binary as a process, against the \
         Model Studio simulator and a Kubernetes API server, with N ModelImports applied at once and jobs active for \
         minutes (PENDING 60 s then RUNNING 10 min at time scale 1). Each case runs the controller as shipped \
         (`--poll-mode listing`) and then the naive way at the same settings (`--poll-mode per-job`, one GET per \
         job in progress per poll, the controller's behaviour before issue 10), in the same process.\n\n\
         Time scale K: every duration of the defaults is divided by K and the quota multiplied by K (K = 3: \
         `--qps 15`, `--poll-interval 10s`), so a run of the defaults takes K times less; the lag goal keeps its \
         2 s of slack unscaled. Status lag is from the moment the simulator's job changed state (its create time \
         plus the pending or running time) to the moment the bench's watch saw the ModelImport's status show it. \
         Peak RSS is the controller process's VmHWM; CPU time its utime + stime. Kubernetes requests are the \
         controller's own count (`modelstudio_kubernetes_requests_total`); a poll cycle's length is the \
         controller's `modelstudio_poll_cycle_seconds`.\n\n\
         Creates at the goal's pace (1.15 x N / qps) take 87% of the quota. Where a poll cycle's listings \
         need more than the other 13% (as with 10,000 imports whose jobs run for minutes), both cannot \
         fit: creates go first, as the issue asks, and the poll interval in effect stretches until the last \
         create. There the lag goal is judged where the quota covers the polling (changes after the last \
         create), and the lag of the changes during the creates, and over the whole run, is printed beside.\n\n",
    );
    for section in sections {
        doc.push_str("```text\n");
        doc.push_str(section);
        doc.push_str("```\n\n");
    }
    std::fs::write(DOC, doc)
}

fn main() -> Result<()> {
    let cases =
        parse_cases(&std::env::var("BENCH_CASES").unwrap_or_else(|_| "1000@3,10000@6".into()))?;
    let real_built = std::env::var_os(modelstudio_testbed::BIN_DIR_ENV).is_some();
    let servers = std::env::var("BENCH_SERVERS").unwrap_or_else(|_| {
        if real_built {
            "real,embedded".into()
        } else {
            "embedded".into()
        }
    });
    let limit = std::env::var("BENCH_BASELINE_LIMIT")
        .ok()
        .map(|v| v.parse::<u64>())
        .transpose()
        .map_err(|_| "BENCH_BASELINE_LIMIT must be whole seconds")?
        .unwrap_or(180);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let dir = TempDir::new("bench-scale");
    let mut sections = Vec::new();
    for server in servers.split(',').map(str::trim) {
        for case in &cases {
            let section = rt.block_on(async {
                let cluster = match server {
                    "real" => Cluster::start_real().await?,
                    "embedded" => Cluster::start_embedded().await?,
                    other => {
                        return Err(format!(
                            "BENCH_SERVERS: unknown server {other:?} (real or embedded)"
                        )
                        .into())
                    }
                };
                let client = cluster.client("default").await?;
                modelstudio_testbed::install_crd(
                    &client,
                    std::path::Path::new("crds/modelimport.yaml"),
                )
                .await?;
                let label = match server {
                    "real" => "kube-apiserver 1.37 + etcd",
                    _ => "embedded API server",
                };
                eprintln!("{label}: {} ModelImports at K={}", case.jobs, case.scale);
                // The shipped controller first; its run length bounds the baseline's.
                let ours = run_mode(
                    &cluster,
                    &client,
                    &dir,
                    *case,
                    Mode::Listing,
                    Duration::from_secs(3 * 3600),
                )
                .await?;
                let base_limit = Duration::from_secs_f64(ours.run_length.max(60.0))
                    .min(Duration::from_secs(limit));
                let base =
                    run_mode(&cluster, &client, &dir, *case, Mode::PerJob, base_limit).await?;
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(report(
                    label, *case, &ours, &base,
                ))
            })?;
            println!("{section}");
            sections.push(section);
            write_doc(&sections)?;
        }
    }
    Ok(())
}
