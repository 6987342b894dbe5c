//! How polling scales to many jobs without exhausting the Model Studio API.
//!
//! `cargo bench --bench polling` runs, in one process on 127.0.0.1 free ports, the in-memory
//! Kubernetes API server, the Model Studio simulator and the controller (`run_with_client` in a
//! tokio task), applies N ModelImports at once and measures from the simulator's request log:
//! how long until every resource has a job, the request rate while every job runs, the peak
//! requests in any 1-second window, the GETs per job, how long until every resource is Ready once
//! the jobs finish, and the CPU time of the process.
//!
//! It runs twice with fresh servers and the same quota (`--qps 5 --burst 10 --poll-interval
//! 30s`, time-scaled): (1) the controller as shipped, which polls by listing each workspace's
//! active jobs (`--poll-mode listing`), (2) the baseline, the naive way of one GET per job in
//! progress per poll (`--poll-mode per-job`), and prints a table with ratios.
//!
//! Time scale: with `BENCH_TIME_SCALE=K` (default 3) every duration is divided by K and every
//! rate multiplied by K, so that the ratio of demand (N jobs / poll interval) to the limit (qps)
//! stays the one of the defaults: K=3 runs `--poll-interval 10s --qps 15 --burst 10`. K=1 runs
//! the defaults literally, which takes about 8 minutes for 1000 jobs (1000 creates at 5/s, then
//! a sweep of 1000 polls at 5/s once the jobs finish). The bucket size (`--burst`) and
//! `--concurrency` are counts and stay as they are.
//!
//! Environment: `BENCH_JOBS` (default 1000), `BENCH_TIME_SCALE` (default 3), `RUST_LOG` (the
//! controller's log lines on stderr; by default only warnings and errors are counted).
//!
//! Simulated jobs stay PENDING 1 s, then RUNNING until the benchmark ends them all at once
//! through the simulator's control API, after the measurement window: every job is in progress
//! during the measurement whatever the speed of the machine.
//!
//! Every loop is bounded in count and time.

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};
use kube::Client;
use modelstudio_controller::backoff::BackoffPolicy;
use modelstudio_controller::cli::PollMode;
use modelstudio_controller::config::Config;
use modelstudio_controller::crd::ModelImport;
use modelstudio_simulator::{
    Endpoint, OutcomeRequest, RequestRecord, RunningSimulator, SimulatorConfig,
};
use modelstudio_testbed::RunningApiServer;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::runtime::Handle;
use tokio::task::JoinSet;

type BenchError = Box<dyn std::error::Error + Send + Sync>;
type Result<T> = std::result::Result<T, BenchError>;

const NS: &str = "default";
const KEY: &str = "sk-bench-0000";
/// ModelImports created at once.
const CREATE_PARALLELISM: usize = 32;
/// How often the benchmark looks at the resources (in-process, no HTTP).
const SCAN_EVERY: Duration = Duration::from_millis(250);
/// Thread names of the runtimes, for the CPU split.
const CTRL_THREADS: &str = "bench-ctrl";
const SERVER_THREADS: &str = "bench-servers";
/// Linux reports /proc times in USER_HZ, 100 on every mainstream architecture.
const CLOCK_TICKS_PER_SEC: f64 = 100.0;
/// Width of a bucket of the printed timeline.
const TIMELINE_BUCKET_MS: i64 = 5000;

/// What both runs share.
#[derive(Clone, Debug)]
struct Plan {
    jobs: usize,
    /// Time scale K: durations / K, rates * K.
    scale: f64,
    poll: Duration,
    /// Observed before the measurement window, once every resource has its job.
    warmup: Duration,
    /// Length of the steady-state window.
    window: Duration,
    /// How long the benchmark waits for every resource to have its job before it measures anyway.
    create_limit: Duration,
}

impl Plan {
    fn from_env() -> Result<Plan> {
        let jobs = env_number("BENCH_JOBS", 1000.0)?;
        let scale = env_number("BENCH_TIME_SCALE", 3.0)?;
        let create_limit = env_number("BENCH_CREATE_LIMIT", 45.0)?;
        if !(1.0..=86_400.0).contains(&create_limit) {
            return Err("BENCH_CREATE_LIMIT must be from 1 to 86400 seconds".into());
        }
        if !(1.0..=1_000_000.0).contains(&jobs) || jobs.fract() != 0.0 {
            return Err("BENCH_JOBS must be a whole number from 1 to 1000000".into());
        }
        if !(0.1..=100.0).contains(&scale) {
            return Err("BENCH_TIME_SCALE must be between 0.1 and 100".into());
        }
        let poll = Duration::from_secs_f64(30.0 / scale);
        Ok(Plan {
            jobs: jobs as usize,
            scale,
            poll,
            warmup: poll,
            window: poll * 2,
            create_limit: Duration::from_secs_f64(create_limit),
        })
    }

    fn scaled(&self, real: Duration) -> Duration {
        Duration::from_secs_f64(real.as_secs_f64() / self.scale)
    }

    /// A bound for a phase that needs up to `calls` remote calls for each of `jobs` at `qps`.
    fn deadline(&self, jobs: usize, qps: f64, calls: f64) -> Duration {
        let needed = jobs as f64 * calls / qps;
        Duration::from_secs_f64((20.0 + 1.5 * needed + 2.0 * self.poll.as_secs_f64()).min(900.0))
    }
}

fn env_number(name: &str, default: f64) -> Result<f64> {
    match std::env::var(name) {
        Ok(text) => text
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| format!("{name}={text:?} is not a number").into()),
        Err(_) => Ok(default),
    }
}

/// One configuration of the controller: its quota and how it observes jobs in progress.
#[derive(Clone, Debug)]
struct Scenario {
    label: &'static str,
    qps: f64,
    burst: u32,
    poll_mode: PollMode,
}

// ---------------------------------------------------------------------------------------------
// Warnings and errors of the controller (and of everything else in the process), counted.

#[derive(Default)]
struct WarnLog {
    /// (level target: message) -> (count, one example with its fields)
    seen: Mutex<BTreeMap<String, (u64, String)>>,
}

impl WarnLog {
    fn take(&self) -> BTreeMap<String, (u64, String)> {
        std::mem::take(&mut *self.seen.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

struct WarnLayer(Arc<WarnLog>);

#[derive(Default)]
struct Fields {
    message: String,
    rest: String,
}

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        } else {
            let _ = write!(self.rest, " {}={value:?}", field.name());
        }
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for WarnLayer {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let meta = event.metadata();
        let key = format!("{} {}: {}", meta.level(), meta.target(), fields.message);
        let mut seen = self.0.seen.lock().unwrap_or_else(|e| e.into_inner());
        let entry = seen.entry(key).or_insert_with(|| (0, fields.rest.clone()));
        entry.0 += 1;
    }
}

fn init_tracing() -> Arc<WarnLog> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    let log = Arc::new(WarnLog::default());
    let counter = WarnLayer(log.clone()).with_filter(tracing_subscriber::filter::LevelFilter::WARN);
    // Lines on stderr only when asked for: 1000 resources make a lot of them.
    let lines = std::env::var("RUST_LOG").ok().map(|_| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_filter(tracing_subscriber::EnvFilter::from_default_env())
    });
    let _ = tracing_subscriber::registry()
        .with(counter)
        .with(lines)
        .try_init();
    log
}

// ---------------------------------------------------------------------------------------------
// CPU time from /proc.

#[derive(Clone, Copy, Debug, Default)]
struct Cpu {
    /// The whole process (threads that exited included).
    process: f64,
    /// Live threads of the controller's runtime.
    controller: f64,
    /// Live threads of the API server's and simulator's runtime.
    servers: f64,
}

impl std::ops::Sub for Cpu {
    type Output = Cpu;
    fn sub(self, o: Cpu) -> Cpu {
        Cpu {
            process: self.process - o.process,
            controller: self.controller - o.controller,
            servers: self.servers - o.servers,
        }
    }
}

/// (comm, utime + stime in seconds) of a /proc stat line.
fn parse_stat(text: &str) -> Option<(String, f64)> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_string();
    // After "pid (comm) ", field 3 (state) comes first: utime is field 14, stime field 15.
    let fields: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((comm, (utime + stime) / CLOCK_TICKS_PER_SEC))
}

/// None when /proc cannot be read (not Linux).
fn cpu_now() -> Option<Cpu> {
    let (_, process) = parse_stat(&std::fs::read_to_string("/proc/self/stat").ok()?)?;
    let mut cpu = Cpu {
        process,
        ..Cpu::default()
    };
    // Bounded: a process has a finite, small number of threads; a thread may exit meanwhile.
    for entry in std::fs::read_dir("/proc/self/task")
        .ok()?
        .flatten()
        .take(10_000)
    {
        let Ok(text) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        if let Some((comm, secs)) = parse_stat(&text) {
            if comm.starts_with(CTRL_THREADS) {
                cpu.controller += secs;
            } else if comm.starts_with(SERVER_THREADS) {
                cpu.servers += secs;
            }
        }
    }
    Some(cpu)
}

// ---------------------------------------------------------------------------------------------
// Setting up a run.

async fn client_for(kubeconfig_yaml: &str) -> Result<Client> {
    Ok(modelstudio_testbed::client_for(kubeconfig_yaml).await?)
}

async fn install_crd_and_secret(client: &Client) -> Result<()> {
    modelstudio_testbed::apply_crd(client, &modelstudio_controller::crd::definition()).await?;
    let secret: Secret =
        serde_json::from_value(modelstudio_testbed::api_key_secret("dashscope", KEY))?;
    Api::<Secret>::namespaced(client.clone(), NS)
        .create(&PostParams::default(), &secret)
        .await
        .map_err(|e| format!("could not create the Secret: {e}"))?;
    Ok(())
}

fn controller_config(plan: &Plan, sc: &Scenario, endpoint: &str) -> Config {
    let request_timeout = plan.scaled(Duration::from_secs(30));
    Config {
        namespace: Some(NS.into()),
        metrics_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        qps: sc.qps,
        burst: sc.burst,
        poll_mode: sc.poll_mode,
        poll_interval: plan.poll,
        request_timeout,
        create_grace: request_timeout.saturating_mul(2),
        backoff: BackoffPolicy {
            base: plan.scaled(Duration::from_secs(2)),
            cap: plan.scaled(Duration::from_secs(300)),
        },
        resync_interval: plan.scaled(Duration::from_secs(1800)),
        shutdown_timeout: Duration::from_secs(2),
        ..Config::new(endpoint)
    }
}

fn model_import(name: &str) -> Result<ModelImport> {
    let import = modelstudio_testbed::ImportBuilder::new(name).secret("dashscope");
    Ok(serde_json::from_value(import.json())?)
}

/// Creates every ModelImport, `CREATE_PARALLELISM` at a time.
async fn create_imports(client: &Client, names: &[String]) -> Result<()> {
    let api: Api<ModelImport> = Api::namespaced(client.clone(), NS);
    let mut pending = names.iter();
    let mut running = JoinSet::new();
    // Each turn starts or finishes one create: at most 2 * N turns.
    for _ in 0..(2 * names.len() + 1) {
        if running.len() < CREATE_PARALLELISM {
            if let Some(name) = pending.next() {
                let api = api.clone();
                let mi = model_import(name)?;
                let name = name.clone();
                running.spawn(async move {
                    api.create(&PostParams::default(), &mi)
                        .await
                        .map(|_| ())
                        .map_err(|e| format!("could not create ModelImport {name}: {e}"))
                });
                continue;
            }
        }
        match running.join_next().await {
            Some(joined) => joined.map_err(|e| format!("a create task failed: {e}"))??,
            None => return Ok(()),
        }
    }
    Err("the create loop ran longer than its bound".into())
}

/// Whether each resource has a job recorded (status.jobId), and whether it is Ready; read
/// in-process from the API server's store, without HTTP.
fn scan(apiserver: &RunningApiServer, names: &[String]) -> Vec<(bool, bool)> {
    names
        .iter()
        .map(|name| {
            let Some(obj) = apiserver
                .server
                .get_object("modelstudio.io", "modelimports", NS, name)
            else {
                return (false, false);
            };
            let status = &obj["status"];
            let with_job = status["jobId"].as_str().is_some_and(|s| !s.is_empty());
            let ready = status["conditions"].as_array().is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            });
            (with_job, ready)
        })
        .collect()
}

/// Waits until `done` holds for every resource; None when `limit` passes first. Also answers
/// for how many it holds at the end.
async fn wait_for(
    label: &str,
    what: &str,
    apiserver: &RunningApiServer,
    names: &[String],
    limit: Duration,
    done: impl Fn(&(bool, bool)) -> bool,
) -> (Option<Instant>, usize) {
    let start = Instant::now();
    let mut last_report = start;
    let count = || scan(apiserver, names).iter().filter(|s| done(s)).count();
    let turns = limit.as_millis() / SCAN_EVERY.as_millis() + 1;
    for _ in 0..turns {
        let n = count();
        if n >= names.len() {
            return (Some(Instant::now()), n);
        }
        if last_report.elapsed() >= Duration::from_secs(15) {
            last_report = Instant::now();
            eprintln!(
                "  [{label}] {n}/{} {what} after {:.0}s",
                names.len(),
                start.elapsed().as_secs_f64()
            );
        }
        if start.elapsed() > limit {
            break;
        }
        tokio::time::sleep(SCAN_EVERY).await;
    }
    let n = count();
    eprintln!(
        "  [{label}] stopped waiting after {:.0}s: {n}/{} {what}",
        limit.as_secs_f64(),
        names.len()
    );
    (None, n)
}

// ---------------------------------------------------------------------------------------------
// One run.

/// What one run measured; times in seconds on the benchmark's clock.
struct Figures {
    label: &'static str,
    qps: f64,
    burst: u32,
    poll_mode: PollMode,
    /// Applying the N ModelImports to the API server.
    apply: f64,
    /// Until Model Studio had answered N creates.
    all_created_remote: Option<f64>,
    /// Until every ModelImport had status.jobId.
    all_recorded: Option<f64>,
    /// How many had status.jobId at the end of the create phase (all, or the create limit).
    recorded: usize,
    /// How many had a job when the jobs were ended, and how many of those became Ready.
    tracked: usize,
    ready: usize,
    /// Requests to Model Studio per second from the start until every job was recorded.
    create_phase_rate: Option<f64>,
    /// Requests per second per endpoint in the steady window, and in total.
    steady: BTreeMap<&'static str, f64>,
    steady_total: f64,
    steady_max_1s: u64,
    steady_min_1s: u64,
    /// Over the whole run.
    peak_1s: (u64, f64),
    /// Peak in a window of 1/K s (one second at the defaults).
    peak_scaled: u64,
    /// GETs per job per second in the steady window.
    get_per_job: f64,
    /// Jobs that existed when the steady window started (the denominator of `get_per_job`).
    window_jobs: usize,
    /// From the end of the jobs until every ModelImport was Ready.
    ready_after_finish: Option<f64>,
    totals: BTreeMap<&'static str, u64>,
    non_2xx: BTreeMap<String, u64>,
    remote_jobs: usize,
    requests_dropped: bool,
    /// GETs sent less than half a poll interval after the previous request for the same job.
    early_gets: u64,
    /// Gaps between two scheduled polls of one job (at least poll/2 apart), in seconds:
    /// median, 99th percentile, maximum, count.
    poll_gaps: Option<(f64, f64, f64, usize)>,
    /// Requests per second by 5 s bucket from the start: (create, get, other).
    timeline: Vec<(f64, f64, f64)>,
    run: f64,
    cpu: Option<Cpu>,
    warnings: BTreeMap<String, (u64, String)>,
}

fn endpoint_name(e: Endpoint) -> &'static str {
    match e {
        Endpoint::Create => "create",
        Endpoint::Get => "get",
        Endpoint::List => "list",
        Endpoint::Delete => "delete",
        Endpoint::Other => "other",
    }
}

/// The most requests in any window of `width_ms`, and where it starts (ms); `times` sorted.
fn peak(times: &[i64], width_ms: i64) -> (u64, i64) {
    let mut best = (0u64, 0i64);
    let mut lo = 0;
    for (hi, &t) in times.iter().enumerate() {
        while times[lo] <= t - width_ms {
            lo += 1;
        }
        let n = (hi - lo + 1) as u64;
        if n > best.0 {
            best = (n, times[lo]);
        }
    }
    best
}

/// Requests in each whole second of [from, to) (ms).
fn per_second(times: &[i64], from: i64, to: i64) -> Vec<u64> {
    let seconds = ((to - from) / 1000).max(0) as usize;
    let mut counts = vec![0u64; seconds];
    for &t in times {
        if t >= from {
            if let Some(c) = counts.get_mut(((t - from) / 1000) as usize) {
                *c += 1;
            }
        }
    }
    counts
}

struct Bed {
    apiserver: RunningApiServer,
    sim: RunningSimulator,
}

async fn start_bed(servers: &Handle, sim_config: SimulatorConfig) -> Result<Bed> {
    let addr: SocketAddr = ([127, 0, 0, 1], 0).into();
    let apiserver = servers
        .spawn(RunningApiServer::start(addr))
        .await
        .map_err(|e| format!("the API server task failed: {e}"))?
        .map_err(|e| format!("could not start the API server: {e}"))?;
    let sim = servers
        .spawn(RunningSimulator::start(sim_config))
        .await
        .map_err(|e| format!("the simulator task failed: {e}"))?
        .map_err(|e| format!("could not start the simulator: {e}"))?;
    Ok(Bed { apiserver, sim })
}

async fn stop_bed(servers: &Handle, bed: Bed) {
    let stopped = servers.spawn(async move {
        bed.sim.shutdown().await;
        bed.apiserver.shutdown().await;
    });
    if tokio::time::timeout(Duration::from_secs(15), stopped)
        .await
        .is_err()
    {
        eprintln!("  the servers did not stop within 15s");
    }
}

async fn run_scenario(
    ctrl: &Handle,
    servers: &Handle,
    plan: &Plan,
    sc: &Scenario,
    warnings: &WarnLog,
) -> Result<Figures> {
    eprintln!(
        "[{}] {} ModelImports, --qps {} --burst {} --poll-interval {:?}",
        sc.label, plan.jobs, sc.qps, sc.burst, plan.poll
    );
    let sim_config = SimulatorConfig {
        pending_duration: Duration::from_secs(1),
        // Ended by the benchmark after the measurement window (finish_now).
        running_duration: Duration::from_secs(3600),
        seed: Some(7),
        ..SimulatorConfig::default()
    };
    let bed = start_bed(servers, sim_config).await?;
    let outcome = measure(ctrl, plan, sc, warnings, &bed).await;
    stop_bed(servers, bed).await;
    outcome
}

async fn measure(
    ctrl: &Handle,
    plan: &Plan,
    sc: &Scenario,
    warnings: &WarnLog,
    bed: &Bed,
) -> Result<Figures> {
    let kubeconfig = bed.apiserver.kubeconfig_yaml(NS);
    let client = client_for(&kubeconfig).await?;
    install_crd_and_secret(&client).await?;

    // The simulator's clock: at_ms counts from here.
    let calibrated = Instant::now();
    let sim_epoch = calibrated
        .checked_sub(Duration::from_millis(bed.sim.simulator.stats().uptime_ms))
        .ok_or("the simulator's clock is ahead of the process")?;

    let args = controller_config(plan, sc, &bed.sim.base_url());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let controller = ctrl.spawn(async move {
        let client = client_for(&kubeconfig).await?;
        modelstudio_controller::app::run_with_client(client, args, async move {
            let _ = stop_rx.await;
        })
        .await
        .map_err(|e| BenchError::from(format!("the controller stopped: {e}")))
    });

    let names: Vec<String> = (0..plan.jobs).map(|i| format!("bench-{i:05}")).collect();
    warnings.take();
    let cpu_before = cpu_now();
    let t0 = Instant::now();

    let result = async {
        create_imports(&client, &names).await?;
        let applied = t0.elapsed();
        eprintln!(
            "  [{}] {} ModelImports applied in {:.1}s",
            sc.label,
            names.len(),
            applied.as_secs_f64()
        );
        let (all_recorded, recorded) = wait_for(
            sc.label,
            "have a job",
            &bed.apiserver,
            &names,
            plan.create_limit,
            |(with_job, _)| *with_job,
        )
        .await;
        // Every job in progress: let polling settle for one interval, then measure.
        tokio::time::sleep(plan.warmup).await;
        let window_start = Instant::now();
        tokio::time::sleep(plan.window).await;
        let window_end = Instant::now();

        // End every job now; wait for the resources that had a job then.
        let finished_from = Instant::now();
        let tracked: Vec<String> = names
            .iter()
            .zip(scan(&bed.apiserver, &names))
            .filter(|(_, (with_job, _))| *with_job)
            .map(|(name, _)| name.clone())
            .collect();
        let jobs = bed.sim.simulator.jobs();
        for job in jobs.iter().take(plan.jobs * 4) {
            let request = OutcomeRequest {
                status: Some("SUCCESSED".into()),
                error_code: None,
                finish_now: true,
            };
            if let Err(e) = bed.sim.simulator.set_outcome(&job.job_id, request) {
                eprintln!("  [{}] could not end job {}: {e:?}", sc.label, job.job_id);
            }
        }
        let finished = Instant::now();
        eprintln!(
            "  [{}] ended {} jobs in {:.2}s; waiting for Ready",
            sc.label,
            jobs.len(),
            (finished - finished_from).as_secs_f64()
        );
        let (all_ready, ready) = wait_for(
            sc.label,
            "Ready",
            &bed.apiserver,
            &tracked,
            plan.deadline(tracked.len(), sc.qps, 2.0),
            |(_, ready)| *ready,
        )
        .await;
        let end = Instant::now();
        let cpu = match (cpu_before, cpu_now()) {
            (Some(before), Some(after)) => Some(after - before),
            _ => None,
        };
        Ok::<_, BenchError>((
            applied,
            all_recorded,
            recorded,
            tracked.len(),
            ready,
            window_start,
            window_end,
            finished,
            all_ready,
            end,
            cpu,
        ))
    }
    .await;

    let _ = stop_tx.send(());
    match tokio::time::timeout(Duration::from_secs(15), controller).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => eprintln!("  [{}] {e}", sc.label),
        Ok(Err(e)) => eprintln!("  [{}] the controller task failed: {e}", sc.label),
        Err(_) => eprintln!("  [{}] the controller did not stop within 15s", sc.label),
    }
    let (
        applied,
        all_recorded,
        recorded,
        tracked,
        ready,
        window_start,
        window_end,
        finished,
        all_ready,
        end,
        cpu,
    ) = result?;

    // Everything below is on the benchmark clock, in ms since t0.
    let rel = |i: Instant| -> i64 {
        if i >= t0 {
            (i - t0).as_millis() as i64
        } else {
            -((t0 - i).as_millis() as i64)
        }
    };
    let t0_sim = (t0 - sim_epoch).as_millis() as i64;
    let records: Vec<RequestRecord> = bed.sim.simulator.requests();
    let requests_dropped = records.first().is_some_and(|r| r.seq > 0);
    let at = |r: &RequestRecord| r.at_ms as i64 - t0_sim;
    let times: Vec<i64> = records.iter().map(at).collect();

    let mut totals: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut non_2xx: BTreeMap<String, u64> = BTreeMap::new();
    for r in &records {
        *totals.entry(endpoint_name(r.endpoint)).or_default() += 1;
        if !(200..300).contains(&r.status) {
            let code = r.code.clone().unwrap_or_default();
            *non_2xx
                .entry(format!("{} {} {code}", endpoint_name(r.endpoint), r.status))
                .or_default() += 1;
        }
    }
    let all_created_remote = records
        .iter()
        .filter(|r| r.endpoint == Endpoint::Create && r.status == 200)
        .nth(plan.jobs.saturating_sub(1))
        .map(|r| at(r) as f64 / 1000.0);

    let (ws, we) = (rel(window_start), rel(window_end));
    let window_secs = (we - ws) as f64 / 1000.0;
    let mut steady: BTreeMap<&'static str, f64> = BTreeMap::new();
    for e in ["create", "get", "list", "delete", "other"] {
        steady.insert(e, 0.0);
    }
    let mut in_window = Vec::new();
    for (r, &t) in records.iter().zip(&times) {
        if t >= ws && t < we {
            *steady.entry(endpoint_name(r.endpoint)).or_default() += 1.0;
            in_window.push(t);
        }
    }
    for v in steady.values_mut() {
        *v /= window_secs;
    }
    let steady_total = in_window.len() as f64 / window_secs;
    let seconds = per_second(&in_window, ws, we);
    let window_jobs = records
        .iter()
        .zip(&times)
        .filter(|(r, &t)| r.endpoint == Endpoint::Create && r.status == 200 && t < ws)
        .count();
    let get_per_job = steady.get("get").copied().unwrap_or(0.0) / window_jobs.max(1) as f64;

    let recorded_at = all_recorded.map(rel);
    let create_phase_rate = recorded_at.map(|until| {
        let n = times.iter().filter(|&&t| t >= 0 && t <= until).count();
        n as f64 / (until.max(1) as f64 / 1000.0)
    });
    // Re-polls that the poll interval does not explain (e.g. triggered by a status write).
    let mut last_seen: std::collections::HashMap<&str, i64> = std::collections::HashMap::new();
    let mut early_gets = 0u64;
    let early = (plan.poll.as_millis() / 2) as i64;
    for (r, &t) in records.iter().zip(&times) {
        if let Some(job) = r.job_id.as_deref() {
            if let Some(prev) = last_seen.insert(job, t) {
                if r.endpoint == Endpoint::Get && t - prev < early {
                    early_gets += 1;
                }
            }
        }
    }
    let mut gets_by_job: std::collections::HashMap<&str, Vec<i64>> =
        std::collections::HashMap::new();
    for (r, &t) in records.iter().zip(&times) {
        if let (Endpoint::Get, Some(job)) = (r.endpoint, r.job_id.as_deref()) {
            gets_by_job.entry(job).or_default().push(t);
        }
    }
    let mut gaps: Vec<i64> = gets_by_job
        .values()
        .flat_map(|ts| ts.windows(2).map(|w| w[1] - w[0]))
        .filter(|&g| g >= early)
        .collect();
    gaps.sort_unstable();
    let poll_gaps = (!gaps.is_empty()).then(|| {
        let at = |q: f64| gaps[((gaps.len() - 1) as f64 * q).round() as usize] as f64 / 1000.0;
        (at(0.5), at(0.99), at(1.0), gaps.len())
    });
    let run_ms = rel(end);
    let buckets = (run_ms / TIMELINE_BUCKET_MS + 1).clamp(1, 10_000) as usize;
    let mut timeline = vec![(0.0, 0.0, 0.0); buckets];
    for (r, &t) in records.iter().zip(&times) {
        if t < 0 {
            continue;
        }
        if let Some(slot) = timeline.get_mut((t / TIMELINE_BUCKET_MS) as usize) {
            match r.endpoint {
                Endpoint::Create => slot.0 += 1.0,
                Endpoint::Get => slot.1 += 1.0,
                _ => slot.2 += 1.0,
            }
        }
    }
    let per_sec = 1000.0 / TIMELINE_BUCKET_MS as f64;
    for slot in &mut timeline {
        slot.0 *= per_sec;
        slot.1 *= per_sec;
        slot.2 *= per_sec;
    }
    let mut sorted = times.clone();
    sorted.sort_unstable();
    let (peak_n, peak_at) = peak(&sorted, 1000);
    let (peak_scaled, _) = peak(&sorted, (1000.0 / plan.scale).round().max(1.0) as i64);

    Ok(Figures {
        label: sc.label,
        qps: sc.qps,
        burst: sc.burst,
        poll_mode: sc.poll_mode,
        apply: applied.as_secs_f64(),
        all_created_remote,
        all_recorded: recorded_at.map(|ms| ms as f64 / 1000.0),
        recorded,
        tracked,
        ready,
        create_phase_rate,
        steady,
        steady_total,
        steady_max_1s: seconds.iter().copied().max().unwrap_or(0),
        steady_min_1s: seconds.iter().copied().min().unwrap_or(0),
        peak_1s: (peak_n, peak_at as f64 / 1000.0),
        peak_scaled,
        get_per_job,
        window_jobs,
        ready_after_finish: all_ready.map(|r| (r - finished).as_secs_f64()),
        totals,
        non_2xx,
        remote_jobs: bed.sim.simulator.jobs().len(),
        requests_dropped,
        early_gets,
        poll_gaps,
        timeline,
        run: (end - t0).as_secs_f64(),
        cpu,
        warnings: warnings.take(),
    })
}

// ---------------------------------------------------------------------------------------------
// The report.

fn secs(v: Option<f64>) -> String {
    v.map_or_else(|| "not reached".into(), |s| format!("{s:.1} s"))
}

fn ratio(num: Option<f64>, den: Option<f64>) -> String {
    match (num, den) {
        (Some(n), Some(d)) if d > 0.0 => format!("{:.1}x", n / d),
        _ => "-".into(),
    }
}

fn report(plan: &Plan, lim: &Figures, base: &Figures) -> String {
    let mut out = String::new();
    let limit = plan.create_limit.as_secs_f64();
    let recorded = |f: &Figures| match f.all_recorded {
        Some(s) => format!("{s:.1} s"),
        None => format!("no: {}/{} by {limit:.0} s", f.recorded, plan.jobs),
    };
    let ready_after = |f: &Figures| match f.ready_after_finish {
        Some(s) if f.tracked == plan.jobs => format!("{s:.1} s"),
        Some(s) => format!("{s:.1} s (the {})", f.tracked),
        None => format!("no: {}/{} Ready", f.ready, f.tracked),
    };
    let k = plan.scale;
    let _ = writeln!(
        out,
        "\n== polling benchmark: {} ModelImports, poll interval {:?} (time scale K={k}) ==",
        plan.jobs, plan.poll
    );
    let _ = writeln!(
        out,
        "listing: --qps {} --burst {} --poll-mode {:?} (the defaults --qps 5 --burst 10 --poll-interval 30s, time-scaled by K)",
        lim.qps, lim.burst, lim.poll_mode
    );
    let _ = writeln!(
        out,
        "per-job: --qps {} --burst {} --poll-mode {:?} (the naive way: one GET per job in progress per poll), same quota and poll interval",
        base.qps, base.burst, base.poll_mode
    );
    let _ = writeln!(
        out,
        "steady window: {:.1} s, starting one poll interval after every resource had its job (or after {limit:.0} s); every job RUNNING throughout\n",
        plan.window.as_secs_f64()
    );
    let rows: Vec<(&str, String, String, String)> = vec![
        (
            "apply N ModelImports (API server)",
            format!("{:.2} s", lim.apply),
            format!("{:.2} s", base.apply),
            "".into(),
        ),
        (
            "[A] time until Model Studio had N jobs",
            secs(lim.all_created_remote),
            secs(base.all_created_remote),
            format!(
                "listing/per-job {}",
                ratio(lim.all_created_remote, base.all_created_remote)
            ),
        ),
        (
            "[B] time until every resource has a job",
            recorded(lim),
            recorded(base),
            format!(
                "listing/per-job {}",
                ratio(lim.all_recorded, base.all_recorded)
            ),
        ),
        (
            "[C] request rate during [B], req/s",
            lim.create_phase_rate
                .map_or("-".into(), |r| format!("{r:.1}")),
            base.create_phase_rate
                .map_or("-".into(), |r| format!("{r:.1}")),
            format!(
                "base/lim {}",
                ratio(base.create_phase_rate, lim.create_phase_rate)
            ),
        ),
        (
            "[D] steady rate, all endpoints, req/s",
            format!("{:.1}", lim.steady_total),
            format!("{:.1}", base.steady_total),
            format!(
                "base/lim {}",
                ratio(Some(base.steady_total), Some(lim.steady_total))
            ),
        ),
    ];
    let mut rows = rows;
    for e in ["get", "create", "list", "delete", "other"] {
        let l = lim.steady.get(e).copied().unwrap_or(0.0);
        let b = base.steady.get(e).copied().unwrap_or(0.0);
        if l > 0.0 || b > 0.0 {
            rows.push((
                match e {
                    "get" => "    GET job, req/s",
                    "create" => "    POST create, req/s",
                    "list" => "    GET list, req/s",
                    "delete" => "    DELETE, req/s",
                    _ => "    other, req/s",
                },
                format!("{l:.1}"),
                format!("{b:.1}"),
                format!("base/lim {}", ratio(Some(b), Some(l))),
            ));
        }
    }
    rows.push((
        "[E] steady: min..max requests in a 1 s slot",
        format!("{}..{}", lim.steady_min_1s, lim.steady_max_1s),
        format!("{}..{}", base.steady_min_1s, base.steady_max_1s),
        "".into(),
    ));
    rows.push((
        "[F] peak requests in any 1 s window (run)",
        format!("{} (t={:.1}s)", lim.peak_1s.0, lim.peak_1s.1),
        format!("{} (t={:.1}s)", base.peak_1s.0, base.peak_1s.1),
        format!(
            "base/lim {}",
            ratio(Some(base.peak_1s.0 as f64), Some(lim.peak_1s.0 as f64))
        ),
    ));
    if (k - 1.0).abs() > f64::EPSILON {
        rows.push((
            "[G] peak in any 1/K s window (= 1 s at K=1)",
            lim.peak_scaled.to_string(),
            base.peak_scaled.to_string(),
            format!(
                "base/lim {}",
                ratio(Some(base.peak_scaled as f64), Some(lim.peak_scaled as f64))
            ),
        ));
    }
    let gap = |f: &Figures| {
        if f.get_per_job > 0.0 {
            format!(
                "{:.3} ({:.1} s apart, {} jobs)",
                f.get_per_job,
                1.0 / f.get_per_job,
                f.window_jobs
            )
        } else {
            "0".into()
        }
    };
    rows.push((
        "[H] GETs per job per second (steady)",
        gap(lim),
        gap(base),
        format!(
            "base/lim {}",
            ratio(Some(base.get_per_job), Some(lim.get_per_job))
        ),
    ));
    rows.push((
        "[I] time until all Ready after jobs end",
        ready_after(lim),
        ready_after(base),
        format!(
            "listing/per-job {}",
            ratio(lim.ready_after_finish, base.ready_after_finish)
        ),
    ));
    let cpu = |f: &Figures, pick: fn(&Cpu) -> f64| f.cpu.as_ref().map(pick);
    let seconds = |v: Option<f64>| v.map_or("-".into(), |s| format!("{s:.1} s"));
    type CpuRow = (&'static str, fn(&Cpu) -> f64, bool);
    let cpu_rows: [CpuRow; 3] = [
        ("[J] CPU time, whole process", |c| c.process, true),
        ("    of which controller runtime", |c| c.controller, true),
        ("    of which API server + simulator", |c| c.servers, false),
    ];
    for (label, pick, with_ratio) in cpu_rows {
        rows.push((
            label,
            seconds(cpu(lim, pick)),
            seconds(cpu(base, pick)),
            if with_ratio {
                format!("base/lim {}", ratio(cpu(base, pick), cpu(lim, pick)))
            } else {
                String::new()
            },
        ));
    }
    rows.push((
        "[K] run length (apply to all Ready)",
        format!("{:.1} s", lim.run),
        format!("{:.1} s", base.run),
        "".into(),
    ));
    rows.push((
        "[L] jobs in Model Studio (want N)",
        lim.remote_jobs.to_string(),
        base.remote_jobs.to_string(),
        "".into(),
    ));
    rows.push((
        "[N] GETs < poll/2 after the job's last call",
        format!(
            "{} of {}",
            lim.early_gets,
            lim.totals.get("get").copied().unwrap_or(0)
        ),
        format!(
            "{} of {}",
            base.early_gets,
            base.totals.get("get").copied().unwrap_or(0)
        ),
        "".into(),
    ));
    let gaps = |f: &Figures| {
        f.poll_gaps.map_or("-".into(), |(p50, p99, max, _)| {
            format!("{p50:.1} / {p99:.1} / {max:.1} s")
        })
    };
    rows.push((
        "[O] poll gap of one job: median / p99 / max",
        gaps(lim),
        gaps(base),
        "".into(),
    ));
    let total = |f: &Figures| {
        f.totals
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    rows.push((
        "[M] requests over the run",
        total(lim),
        total(base),
        "".into(),
    ));

    let _ = writeln!(
        out,
        "{:<45} {:>26} {:>26}  ratio",
        "figure", lim.label, base.label
    );
    let _ = writeln!(out, "{}", "-".repeat(112));
    for (name, l, b, r) in rows {
        let _ = writeln!(out, "{name:<45} {l:>26} {b:>26}  {r}");
    }

    let _ = writeln!(out, "\nWhat the figures mean (times from the moment the benchmark starts applying the ModelImports):");
    for line in [
        "[A] when the simulator answered its N-th successful create (from its request log).",
        "[B] when every ModelImport carried status.jobId in the API server: the job is recorded. The benchmark waits",
        "    at most BENCH_CREATE_LIMIT seconds for it (\"no: k/N\" = k had a job then), then measures anyway.",
        "[C] requests to Model Studio (all endpoints) per second from the start until [B]: creates plus early polls.",
        "[D] requests per second to Model Studio in the steady window, while every job made so far is RUNNING (if [B]",
        "    was not reached, the remaining creates compete in it); then per endpoint.",
        "[E] the fewest and the most requests in the whole 1 s slots of the steady window: how even the load is.",
        "[F] the most requests Model Studio saw in any sliding 1 s window of the whole run, and when it started.",
        "[G] the same in a window of 1/K s: one second of the defaults, i.e. what a quota per second would see at K=1.",
        "[H] GETs of one job per second in the steady window (GET rate / jobs that existed when it started), the mean gap",
        "    between two polls of a job, and how many jobs existed;",
        "    the poll interval is the gap wanted; a longer gap means the limiter spreads the polls thinner.",
        "[I] from the moment the benchmark ended every job (simulator control API) until every ModelImport that had a",
        "    job at that moment was Ready (\"the k\" when not all N had one).",
        "[J] utime+stime from /proc during the run. Everything is in one process: the whole-process figure includes",
        "    the API server, the simulator and the benchmark; the controller line counts only its runtime's threads.",
        "[K] from the start of apply until every ModelImport was Ready.",
        "[L] jobs the simulator holds at the end: more than N would be duplicate creates.",
        "[M] every request to Model Studio over the run, by endpoint.",
        "[N] GETs of a job sent less than half a poll interval after the previous call (create or GET) for that job:",
        "    polls the poll interval does not explain, e.g. a reconcile triggered by the controller's own status write.",
        "[O] over the run, the time between two GETs of the same job that are at least poll/2 apart (scheduled polls):",
        "    the poll interval is wanted; the maximum shows the job that waited longest for its turn.",
    ] {
        let _ = writeln!(out, "  {line}");
    }
    if (k - 1.0).abs() > f64::EPSILON {
        let _ = writeln!(
            out,
            "\nAt the real defaults (K=1: --qps 5 --burst 10 --poll-interval 30s), multiply the listing run's times by {k} and divide its rates by {k}:"
        );
        let _ = writeln!(
            out,
            "  [B] {}, [D] {:.1} req/s, [H] one GET per job every {}, [I] {}; peak in 1 s = [G] {}",
            lim.all_recorded.map_or_else(
                || format!("{}/{} by {:.0} s", lim.recorded, plan.jobs, limit * k),
                |s| format!("{:.0} s", s * k)
            ),
            lim.steady_total / k,
            if lim.get_per_job > 0.0 {
                format!("{:.0} s", k / lim.get_per_job)
            } else {
                "-".into()
            },
            lim.ready_after_finish
                .map_or("not reached".into(), |s| format!("{:.0} s", s * k)),
            lim.peak_scaled
        );
    }
    let _ = writeln!(
        out,
        "\nTimeline: requests per second to Model Studio, mean over each {} s bucket from the start (create / GET / other):",
        TIMELINE_BUCKET_MS / 1000
    );
    for f in [lim, base] {
        let _ = writeln!(out, "  {}:", f.label);
        for (chunk_no, chunk) in f.timeline.chunks(6).enumerate() {
            let cells: Vec<String> = chunk
                .iter()
                .map(|(c, g, o)| format!("{c:>5.1}/{g:>5.1}/{o:>3.1}"))
                .collect();
            let from = chunk_no as i64 * 6 * TIMELINE_BUCKET_MS / 1000;
            let _ = writeln!(out, "    t={from:>4}s  {}", cells.join("  "));
        }
    }
    for f in [lim, base] {
        if !f.non_2xx.is_empty() {
            let _ = writeln!(out, "\n{}: answers other than 2xx:", f.label);
            for (what, n) in &f.non_2xx {
                let _ = writeln!(out, "  {n:>6}  {what}");
            }
        }
        if f.requests_dropped {
            let _ = writeln!(
                out,
                "\n{}: the simulator's request log overflowed: early requests are missing from the figures",
                f.label
            );
        }
        if !f.warnings.is_empty() {
            let _ = writeln!(
                out,
                "\n{}: warnings and errors logged in the process:",
                f.label
            );
            for (what, (n, example)) in f.warnings.iter().take(15) {
                let example: String = example.chars().take(200).collect();
                let _ = writeln!(out, "  {n:>6}  {what}  (e.g.{example})");
            }
        }
    }
    out
}

fn runtime(name: &'static str) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(name)
        .enable_all()
        .build()
        .expect("a tokio runtime can be built")
}

/// Where the figures are kept, beside the code that made them.
const DOC: &str = "docs/performance.md";

/// Writes the report to [`DOC`], with how to make it again.
fn write_doc(plan: &Plan, report: &str) -> std::io::Result<()> {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let doc = format!(
        "# Polling performance\n\n\
         Written by `cargo bench --bench polling` (BENCH_JOBS={jobs}, BENCH_TIME_SCALE={scale}) on a \
         {cores}-core machine: the controller against the Model Studio simulator and the embedded \
         Kubernetes API server, in one process. The first column is the controller as shipped \
         (`--poll-mode listing`), the second the naive way at the same quota (`--poll-mode per-job`, \
         one GET per job in progress per poll), run one after the other in the same process.\n\n\
         ```text{report}\n```\n",
        jobs = plan.jobs,
        scale = plan.scale,
    );
    std::fs::write(Path::new(env!("CARGO_MANIFEST_DIR")).join(DOC), doc)
}

fn main() {
    // `cargo bench` passes `--bench`; other arguments are ignored.
    let warnings = init_tracing();
    let plan = match Plan::from_env() {
        Ok(plan) => plan,
        Err(e) => {
            eprintln!("polling bench: {e}");
            std::process::exit(2);
        }
    };
    // The controller and the servers get runtimes (and threads) of their own, so that the CPU
    // time of each can be read apart; the benchmark drives from the main thread.
    let ctrl_rt = runtime(CTRL_THREADS);
    let server_rt = runtime(SERVER_THREADS);
    let driver = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime can be built");
    let limited = Scenario {
        label: "listing",
        qps: 5.0 * plan.scale,
        burst: 10,
        poll_mode: PollMode::Listing,
    };
    let baseline = Scenario {
        label: "per-job",
        qps: 5.0 * plan.scale,
        burst: 10,
        poll_mode: PollMode::PerJob,
    };
    let outcome = driver.block_on(async {
        let ctrl = ctrl_rt.handle();
        let servers = server_rt.handle();
        let lim = run_scenario(ctrl, servers, &plan, &limited, &warnings).await?;
        // Let the sockets of the first run close.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let base = run_scenario(ctrl, servers, &plan, &baseline, &warnings).await?;
        Ok::<_, BenchError>(report(&plan, &lim, &base))
    });
    match outcome {
        Ok(text) => {
            println!("{text}");
            if let Err(e) = write_doc(&plan, &text) {
                eprintln!("polling bench: could not write {DOC}: {e}");
                std::process::exit(1);
            }
        }
        Err(e) => {
            eprintln!("polling bench failed: {e}");
            std::process::exit(1);
        }
    }
    ctrl_rt.shutdown_timeout(Duration::from_secs(5));
    server_rt.shutdown_timeout(Duration::from_secs(5));
}
