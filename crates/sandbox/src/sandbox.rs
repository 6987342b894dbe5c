//! `modelstudio-sandbox sandbox`, `apiserver` and `simulator`: a local playground.
//!
//! The sandbox starts, in one process on 127.0.0.1, the in-memory Kubernetes API server
//! (`sandbox-apiserver`), the Model Studio simulator and the controller; installs the CRDs; writes
//! a kubeconfig so that kubectl works against it from another terminal; optionally applies
//! `examples/`; and shows a table of the ModelImports and ModelDeployments until Ctrl-C or
//! SIGTERM, then stops the
//! pieces in order: the table, the controller (gracefully), the simulator, the API server.

use crate::cli::{ApiserverArgs, SandboxArgs, SimulatorArgs};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::discovery::Scope;
use kube::{Client, ResourceExt};
use modelstudio_controller::app;
use modelstudio_controller::config::Config;
use modelstudio_controller::crd::{ModelDeployment, ModelImport};
use modelstudio_simulator::{Simulator, SimulatorConfig};
use sandbox_apiserver::RunningApiServer;
use serde_json::Value;
use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::{oneshot, watch};
use tracing::{info, warn};

/// The field manager of what the sandbox applies (the CRD and the examples).
pub const FIELD_MANAGER: &str = "modelstudio-sandbox";

/// First line of every kubeconfig the sandbox writes; only such files are ever replaced.
pub const KUBECONFIG_MARKER: &str =
    "# Written by `modelstudio-sandbox`; removed when the sandbox stops.";
/// The marker of the kubeconfigs that `modelstudio-controller sandbox` wrote before the sandbox
/// left the controller: a file left by a killed old sandbox is still the sandbox's own.
const OLD_KUBECONFIG_MARKER: &str =
    "# Written by `modelstudio-controller sandbox`; removed when the sandbox stops.";

/// How long the controller may take to stop gracefully.
const CONTROLLER_STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the simulator may take to stop.
const SIMULATOR_STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// Time allowed for one request of the sandbox itself to the API server.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// At most this many manifests are applied from the examples directory.
const MAX_MANIFESTS: usize = 100;

/// Why the sandbox (or the API server alone) could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("could not serve the Kubernetes API on {addr}: {source} (choose another address with --addr/--apiserver-addr, or port 0 for a free one)")]
    ApiServer {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("could not serve the Model Studio simulator on {addr}: {source} (choose another address with --addr/--simulator-addr, or port 0 for a free one)")]
    Simulator {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("could not find a free port for {addr}: {source}")]
    FreePort {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("could not start the real control plane: {0}")]
    ControlPlane(#[source] modelstudio_testbed::StartError),
    #[error("refusing to overwrite {0}: it was not written by the sandbox; choose another path with --kubeconfig")]
    ForeignKubeconfig(PathBuf),
    #[error("could not write the kubeconfig {path}: {source}")]
    WriteKubeconfig {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("could not build a client for the sandbox API server: {0}")]
    Client(String),
    #[error("could not install the CRDs: {0}")]
    InstallCrd(String),
    #[error("could not apply the examples: {0}")]
    Examples(String),
    #[error("the controller failed: {0}")]
    Controller(#[from] app::StartError),
    #[error("the controller stopped on its own")]
    ControllerStopped,
}

/// Installs the log subscriber of the sandbox: RUST_LOG filters; by default only warnings when
/// stdout is a terminal (the table is redrawn there), else `info`.
pub fn init_logging() {
    let default = if std::io::stdout().is_terminal() {
        "warn"
    } else {
        "info"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// Resolves once `stop` turns true (or its sender is gone).
async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// A channel that turns true on Ctrl-C or SIGTERM. The handlers are installed right away.
fn stop_on_signal() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        app::shutdown_signal().await;
        let _ = tx.send(true);
    });
    rx
}

/// The kubeconfig text of `server`, with the sandbox marker.
pub fn kubeconfig_text(server: &RunningApiServer, namespace: &str) -> String {
    format!("{KUBECONFIG_MARKER}\n{}", server.kubeconfig_yaml(namespace))
}

fn written_by_sandbox(text: &str) -> bool {
    text.starts_with(KUBECONFIG_MARKER) || text.starts_with(OLD_KUBECONFIG_MARKER)
}

/// Writes `text` to `path` atomically (a reader never sees half a file) and returns the absolute
/// path. An existing file is replaced only if the sandbox wrote it.
pub fn write_kubeconfig(path: &Path, text: &str) -> Result<PathBuf, SandboxError> {
    let write_err = |source| SandboxError::WriteKubeconfig {
        path: path.to_path_buf(),
        source,
    };
    match std::fs::read_to_string(path) {
        Ok(existing) if !written_by_sandbox(&existing) => {
            return Err(SandboxError::ForeignKubeconfig(path.to_path_buf()))
        }
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(write_err(e)),
    }
    let absolute = std::path::absolute(path).map_err(write_err)?;
    let file_name = absolute
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "kubeconfig".into());
    let tmp = absolute.with_file_name(format!(".{file_name}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, text).map_err(write_err)?;
    if let Err(e) = std::fs::rename(&tmp, &absolute) {
        let _ = std::fs::remove_file(&tmp);
        return Err(write_err(e));
    }
    Ok(absolute)
}

/// Removes a kubeconfig the sandbox wrote (and nothing else).
fn remove_kubeconfig(path: &Path) {
    if let Ok(text) = std::fs::read_to_string(path) {
        if written_by_sandbox(&text) {
            if let Err(e) = std::fs::remove_file(path) {
                warn!(path = %path.display(), error = %e, "could not remove the kubeconfig");
            }
        }
    }
}

/// A kube client for the kubeconfig text.
async fn client_for(kubeconfig: &str) -> Result<Client, SandboxError> {
    modelstudio_testbed::client_for(kubeconfig)
        .await
        .map_err(|e| SandboxError::Client(e.to_string()))
}

/// Installs the CRDs of this build (ModelImport, ModelDeployment) and waits until they are
/// Established.
async fn install_crd(client: &Client) -> Result<(), SandboxError> {
    for kind in modelstudio_controller::crd::Kind::ALL {
        modelstudio_testbed::apply_crd(client, &kind.definition())
            .await
            .map_err(|e| SandboxError::InstallCrd(e.to_string()))?;
    }
    Ok(())
}

/// One manifest read from a file.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub file: PathBuf,
    pub object: Value,
}

impl Manifest {
    fn field(&self, pointer: &str) -> Option<&str> {
        self.object.pointer(pointer).and_then(Value::as_str)
    }

    /// `kind/name` for messages.
    pub fn describe(&self) -> String {
        format!(
            "{}/{}",
            self.field("/kind").unwrap_or("?").to_lowercase(),
            self.field("/metadata/name").unwrap_or("?")
        )
    }
}

/// Order of application: namespaces, then CRDs and what others refer to, then the rest.
fn apply_rank(kind: &str) -> u8 {
    match kind {
        "Namespace" => 0,
        "CustomResourceDefinition" => 1,
        "Secret" | "ConfigMap" | "ServiceAccount" => 2,
        _ => 3,
    }
}

/// Reads the `*.yaml` and `*.yml` files of `dir` (multi-document files included), in the order
/// they can be applied in.
pub fn read_manifests(dir: &Path) -> Result<Vec<Manifest>, SandboxError> {
    let err = |m: String| SandboxError::Examples(m);
    let entries = std::fs::read_dir(dir).map_err(|e| {
        err(format!(
            "cannot read the directory {}: {e} (run from the repository root or pass --examples-dir)",
            dir.display()
        ))
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.extension().is_some_and(|x| {
                    x.eq_ignore_ascii_case("yaml") || x.eq_ignore_ascii_case("yml")
                })
        })
        .collect();
    files.sort();
    let mut manifests = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file)
            .map_err(|e| err(format!("cannot read {}: {e}", file.display())))?;
        let docs: Vec<Value> = serde_saphyr::from_multiple(&text)
            .map_err(|e| err(format!("{} is not valid YAML: {e}", file.display())))?;
        for object in docs.into_iter().filter(|d| !d.is_null()) {
            let m = Manifest {
                file: file.clone(),
                object,
            };
            for field in ["/apiVersion", "/kind", "/metadata/name"] {
                if m.field(field).is_none_or(str::is_empty) {
                    return Err(err(format!(
                        "a manifest in {} has no {}",
                        file.display(),
                        field.trim_start_matches('/').replace('/', ".")
                    )));
                }
            }
            manifests.push(m);
            if manifests.len() > MAX_MANIFESTS {
                return Err(err(format!(
                    "more than {MAX_MANIFESTS} manifests in {}",
                    dir.display()
                )));
            }
        }
    }
    manifests.sort_by_key(|m| apply_rank(m.field("/kind").unwrap_or_default()));
    Ok(manifests)
}

/// Applies one manifest by server-side apply; answers `kind/name (namespace)`.
pub async fn apply_manifest(
    client: &Client,
    manifest: &Manifest,
    default_namespace: &str,
) -> Result<String, SandboxError> {
    let fail = |e: String| {
        SandboxError::Examples(format!(
            "{} from {}: {e}",
            manifest.describe(),
            manifest.file.display()
        ))
    };
    let api_version = manifest.field("/apiVersion").unwrap_or_default();
    let kind = manifest.field("/kind").unwrap_or_default();
    let name = manifest.field("/metadata/name").unwrap_or_default();
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let gvk = GroupVersionKind::gvk(group, version, kind);
    let (resource, caps) =
        tokio::time::timeout(REQUEST_TIMEOUT, kube::discovery::pinned_kind(client, &gvk))
            .await
            .map_err(|_| fail("the API server did not answer in time".into()))?
            .map_err(|e| fail(format!("unknown kind {kind} in {api_version}: {e}")))?;
    let mut object = manifest.object.clone();
    let (api, where_): (Api<DynamicObject>, String) = if caps.scope == Scope::Namespaced {
        let ns = manifest
            .field("/metadata/namespace")
            .filter(|n| !n.is_empty())
            .unwrap_or(default_namespace)
            .to_string();
        if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("namespace".into(), Value::String(ns.clone()));
        }
        (
            Api::namespaced_with(client.clone(), &ns, &resource),
            format!(" in namespace {ns}"),
        )
    } else {
        (Api::all_with(client.clone(), &resource), String::new())
    };
    tokio::time::timeout(
        REQUEST_TIMEOUT,
        api.patch(
            name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&object),
        ),
    )
    .await
    .map_err(|_| fail("the API server did not answer in time".into()))?
    .map_err(|e| fail(e.to_string()))?;
    Ok(format!("{}{where_}", manifest.describe()))
}

/// Applies every manifest of `dir`; answers one line per applied object.
pub async fn apply_dir(
    client: &Client,
    dir: &Path,
    default_namespace: &str,
) -> Result<Vec<String>, SandboxError> {
    let mut applied = Vec::new();
    for manifest in read_manifests(dir)? {
        applied.push(apply_manifest(client, &manifest, default_namespace).await?);
    }
    Ok(applied)
}

/// An age as kubectl prints it: `45s`, `3m12s`, `25m`, `4h5m`, `30h`, `3d4h`, `12d`.
pub fn format_age(seconds: i64) -> String {
    let s = seconds.max(0);
    let (m, h, d) = (s / 60, s / 3600, s / 86400);
    match s {
        _ if s < 120 => format!("{s}s"),
        _ if m < 10 && s % 60 != 0 => format!("{m}m{}s", s % 60),
        _ if h < 3 => format!("{m}m"),
        _ if h < 8 && m % 60 != 0 => format!("{h}h{}m", m % 60),
        _ if h < 48 => format!("{h}h"),
        _ if h < 192 && h % 24 != 0 => format!("{d}d{}h", h % 24),
        _ => format!("{d}d"),
    }
}

/// One line of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// `mimport` or `mdeploy`, as kubectl's short names.
    pub kind: &'static str,
    pub name: String,
    pub namespace: String,
    pub phase: String,
    /// The import job's ID, or the deployed model.
    pub remote: String,
    pub ready: String,
    pub reason: String,
    /// Seconds since the Unix epoch of creation, if known.
    pub created: Option<i64>,
}

/// The conditions' summary of a row: Ready's status, and the reason of Stalled (when True) or
/// of Ready.
fn ready_and_reason(conditions: &[Condition]) -> (String, String) {
    let dash = || "-".to_string();
    let ready = conditions.iter().find(|c| c.type_ == "Ready");
    let stalled = conditions
        .iter()
        .find(|c| c.type_ == "Stalled" && c.status == "True");
    (
        ready.map(|c| c.status.clone()).unwrap_or_else(dash),
        stalled
            .or(ready)
            .map(|c| c.reason.clone())
            .filter(|r| !r.is_empty())
            .unwrap_or_else(dash),
    )
}

/// The table rows of `imports` and `deployments`, sorted by namespace, kind and name.
pub fn rows(imports: &[ModelImport], deployments: &[ModelDeployment]) -> Vec<Row> {
    let dash = || "-".to_string();
    let phase = |phase: Option<String>, deleting: bool| match phase {
        Some(p) => p,
        None if deleting => "Deleting".into(),
        None => dash(),
    };
    let created =
        |m: &kube::api::ObjectMeta| m.creation_timestamp.as_ref().map(|t| t.0.as_second());
    let mut rows: Vec<Row> = imports
        .iter()
        .map(|mi| {
            let status = mi.status.clone().unwrap_or_default();
            let (ready, reason) = ready_and_reason(&status.conditions);
            Row {
                kind: "mimport",
                name: mi.name_any(),
                namespace: mi.namespace().unwrap_or_default(),
                phase: phase(
                    status.phase.map(|p| format!("{p:?}")),
                    mi.metadata.deletion_timestamp.is_some(),
                ),
                remote: status.job_id.clone().unwrap_or_else(dash),
                ready,
                reason,
                created: created(&mi.metadata),
            }
        })
        .chain(deployments.iter().map(|md| {
            let status = md.status.clone().unwrap_or_default();
            let (ready, reason) = ready_and_reason(&status.conditions);
            Row {
                kind: "mdeploy",
                name: md.name_any(),
                namespace: md.namespace().unwrap_or_default(),
                phase: phase(
                    status.phase.map(|p| format!("{p:?}")),
                    md.metadata.deletion_timestamp.is_some(),
                ),
                remote: status.deployed_model.clone().unwrap_or_else(dash),
                ready,
                reason,
                created: created(&md.metadata),
            }
        }))
        .collect();
    rows.sort_by(|a, b| (&a.namespace, a.kind, &a.name).cmp(&(&b.namespace, b.kind, &b.name)));
    rows
}

/// Renders rows as aligned columns, with ages relative to `now` (seconds since the epoch).
pub fn render_table(rows: &[Row], now: i64) -> String {
    let header = [
        "KIND",
        "NAME",
        "NAMESPACE",
        "PHASE",
        "JOB / DEPLOYED MODEL",
        "READY",
        "REASON",
        "AGE",
    ];
    let mut lines: Vec<[String; 8]> = vec![header.map(str::to_string)];
    for r in rows {
        lines.push([
            r.kind.to_string(),
            r.name.clone(),
            r.namespace.clone(),
            r.phase.clone(),
            r.remote.clone(),
            r.ready.clone(),
            r.reason.clone(),
            r.created
                .map(|c| format_age(now - c))
                .unwrap_or_else(|| "-".into()),
        ]);
    }
    let mut widths = [0usize; 8];
    for line in &lines {
        for (w, cell) in widths.iter_mut().zip(line.iter()) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for line in &lines {
        let mut text = String::new();
        for (i, (cell, w)) in line.iter().zip(widths.iter()).enumerate() {
            if i + 1 == line.len() {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<w$}   "));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    }
    if rows.is_empty() {
        out.push_str("(no ModelImports or ModelDeployments yet)\n");
    }
    out
}

/// The rows with their ages left out: only real changes count.
fn without_ages(listed: &Result<Vec<Row>, String>) -> Result<Vec<Row>, &str> {
    match listed {
        Ok(rows) => Ok(rows
            .iter()
            .map(|row| Row {
                created: None,
                ..row.clone()
            })
            .collect()),
        Err(e) => Err(e.as_str()),
    }
}

/// Shows the ModelImports every `every` until the future is dropped. On a terminal the screen is
/// redrawn under `banner`; otherwise the table is printed again only when a row changed (ages
/// aside), so that logs stay readable.
async fn show_table(client: Client, every: Duration, tty: bool, banner: String) {
    let imports: Api<ModelImport> = Api::all(client.clone());
    let deployments: Api<ModelDeployment> = Api::all(client);
    let mut ticker = tokio::time::interval(every.max(Duration::from_millis(100)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last: Option<Result<Vec<Row>, String>> = None;
    loop {
        ticker.tick().await;
        let both = async {
            let params = Default::default();
            let i = imports.list(&params).await?;
            let d = deployments.list(&params).await?;
            Ok::<_, kube::Error>(rows(&i.items, &d.items))
        };
        let listed = match tokio::time::timeout(REQUEST_TIMEOUT, both).await {
            Ok(Ok(rows)) => Ok(rows),
            Ok(Err(e)) => Err(format!("could not list the resources: {e}")),
            Err(_) => Err("could not list the resources: the API server did not answer".into()),
        };
        let now = Timestamp::now().as_second();
        let body = match &listed {
            Ok(rows) => render_table(rows, now),
            Err(e) => format!("{e}\n"),
        };
        let mut out = std::io::stdout().lock();
        if tty {
            let _ = write!(out, "\x1b[2J\x1b[H{banner}\n{body}");
        } else {
            let changed = last
                .as_ref()
                .is_none_or(|l| without_ages(l) != without_ages(&listed));
            if changed {
                let _ = write!(out, "\n{body}");
            }
        }
        let _ = out.flush();
        last = Some(listed);
    }
}

/// A simulator served until [`SimulatorHandle::stop`].
struct SimulatorHandle {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl SimulatorHandle {
    async fn start(addr: SocketAddr, config: SimulatorConfig) -> Result<Self, SandboxError> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| SandboxError::Simulator { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| SandboxError::Simulator { addr, source })?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(modelstudio_simulator::serve(
            listener,
            Simulator::new(config),
            async move {
                let _ = stopped.await;
            },
        ));
        Ok(SimulatorHandle { addr, stop, task })
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        let mut task = self.task;
        match tokio::time::timeout(SIMULATOR_STOP_TIMEOUT, &mut task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => warn!(error = %e, "the simulator stopped with an error"),
            Ok(Err(e)) => warn!(error = %e, "the simulator task failed"),
            Err(_) => {
                warn!("the simulator did not stop in time");
                task.abort();
            }
        }
    }
}

/// The Kubernetes API of the sandbox: the in-memory API server, or the real control plane.
enum SandboxApi {
    Embedded(RunningApiServer),
    Real(Box<modelstudio_testbed::ControlPlane>),
}

impl SandboxApi {
    async fn start(args: &SandboxArgs) -> Result<Self, SandboxError> {
        if !args.real_control_plane {
            return start_apiserver(args.apiserver_addr)
                .await
                .map(SandboxApi::Embedded);
        }
        info!("starting the real control plane (kube-apiserver, etcd, kube-controller-manager)");
        tokio::task::spawn_blocking(modelstudio_testbed::ControlPlane::start)
            .await
            .map_err(|e| {
                SandboxError::ControlPlane(modelstudio_testbed::StartError::Io(
                    std::io::Error::other(e),
                ))
            })?
            .map(|plane| SandboxApi::Real(Box::new(plane)))
            .map_err(SandboxError::ControlPlane)
    }

    fn base_url(&self) -> String {
        match self {
            SandboxApi::Embedded(s) => s.base_url(),
            SandboxApi::Real(p) => p.base_url(),
        }
    }

    fn kubeconfig_text(&self, namespace: &str) -> String {
        match self {
            SandboxApi::Embedded(s) => kubeconfig_text(s, namespace),
            SandboxApi::Real(p) => {
                format!("{KUBECONFIG_MARKER}\n{}", p.admin_kubeconfig(namespace))
            }
        }
    }

    async fn shutdown(self) {
        match self {
            SandboxApi::Embedded(s) => s.shutdown().await,
            // Its processes are stopped by their PIDs when it is dropped.
            SandboxApi::Real(p) => drop(tokio::task::spawn_blocking(move || drop(p)).await),
        }
    }
}

/// Starts the API server on `addr`.
async fn start_apiserver(addr: SocketAddr) -> Result<RunningApiServer, SandboxError> {
    RunningApiServer::start(addr)
        .await
        .map_err(|source| SandboxError::ApiServer { addr, source })
}

/// `addr`, or when its port is 0, the same IP with a port that is free right now.
fn concrete_addr(addr: SocketAddr) -> Result<SocketAddr, SandboxError> {
    if addr.port() != 0 {
        return Ok(addr);
    }
    std::net::TcpListener::bind(addr)
        .and_then(|l| l.local_addr())
        .map_err(|source| SandboxError::FreePort { addr, source })
}

/// The controller's settings: its defaults with the sandbox's endpoint, poll interval and
/// metrics address.
fn controller_config(endpoint: &str, poll_interval: Duration, metrics_addr: SocketAddr) -> Config {
    Config {
        poll_interval,
        metrics_addr,
        ..Config::new(endpoint)
    }
}

/// Runs the sandbox until Ctrl-C or SIGTERM.
pub async fn sandbox(args: SandboxArgs) -> Result<(), SandboxError> {
    let stop = stop_on_signal();
    let tty = std::io::stdout().is_terminal();
    let metrics_addr = concrete_addr(args.metrics_addr)?;
    let apiserver = SandboxApi::start(&args).await?;
    let text = apiserver.kubeconfig_text(&args.namespace);
    let kubeconfig = match write_kubeconfig(&args.kubeconfig, &text) {
        Ok(path) => path,
        Err(e) => {
            apiserver.shutdown().await;
            return Err(e);
        }
    };
    let result = match SimulatorHandle::start(
        args.simulator_addr,
        SimulatorConfig {
            pending_duration: args.pending_duration,
            running_duration: args.running_duration,
            ..SimulatorConfig::default()
        },
    )
    .await
    {
        Ok(simulator) => {
            let ends = Endpoints {
                apiserver: apiserver.base_url(),
                simulator: format!("http://{}", simulator.addr),
                metrics: metrics_addr,
                kubeconfig: kubeconfig.clone(),
            };
            let result = run_sandbox(&args, &text, &ends, stop, tty).await;
            simulator.stop().await;
            result
        }
        Err(e) => Err(e),
    };
    apiserver.shutdown().await;
    remove_kubeconfig(&kubeconfig);
    if result.is_ok() {
        println!("sandbox stopped");
    }
    result
}

/// Where the pieces of the sandbox listen.
struct Endpoints {
    apiserver: String,
    simulator: String,
    metrics: SocketAddr,
    kubeconfig: PathBuf,
}

impl Endpoints {
    fn banner(&self, examples_applied: bool) -> String {
        let kc = self.kubeconfig.display();
        let next = if examples_applied {
            "kubectl describe modelimport qwen3-lora"
        } else {
            "kubectl apply -f examples/"
        };
        format!(
            "modelstudio-sandbox (Ctrl-C to stop)\n\
             \x20 Kubernetes API  {}\n\
             \x20 Model Studio    {} (simulator; control API under /_simulator/)\n\
             \x20 metrics         http://{}/metrics\n\
             \x20 kubeconfig      {kc}\n\
             In another terminal:\n\
             \x20 export KUBECONFIG={kc}\n\
             \x20 {next}\n\
             \x20 kubectl get modelstudio --watch    # ModelImports and ModelDeployments\n",
            self.apiserver, self.simulator, self.metrics
        )
    }
}

async fn run_sandbox(
    args: &SandboxArgs,
    kubeconfig: &str,
    ends: &Endpoints,
    stop: watch::Receiver<bool>,
    tty: bool,
) -> Result<(), SandboxError> {
    // Installing the CRD can be interrupted.
    let client = tokio::select! {
        r = async {
            let client = client_for(kubeconfig).await?;
            install_crd(&client).await?;
            Ok::<_, SandboxError>(client)
        } => r?,
        _ = stopped(stop.clone()) => return Ok(()),
    };
    info!("CRD installed");
    let config = controller_config(&ends.simulator, args.poll_interval, ends.metrics);
    let (stop_controller, controller_stop) = oneshot::channel::<()>();
    let mut controller = tokio::spawn(app::run_with_client(client.clone(), config, async move {
        let _ = controller_stop.await;
    }));
    let banner = ends.banner(args.apply_examples);
    let outcome: Result<(), SandboxError> = async {
        if args.apply_examples {
            let applied = tokio::select! {
                r = apply_dir(&client, &args.examples_dir, &args.namespace) => r?,
                _ = stopped(stop.clone()) => return Ok(()),
            };
            for line in applied {
                println!("applied {line}");
            }
        }
        print!("{banner}");
        let _ = std::io::stdout().flush();
        let table = show_table(client.clone(), args.refresh_interval, tty, banner.clone());
        tokio::select! {
            _ = table => Ok(()),
            _ = stopped(stop.clone()) => Ok(()),
            r = &mut controller => match r {
                Ok(Err(e)) => Err(SandboxError::Controller(e)),
                _ => Err(SandboxError::ControllerStopped),
            },
        }
    }
    .await;
    if controller.is_finished() && outcome.is_err() {
        return outcome;
    }
    println!("\nstopping the controller...");
    let _ = stop_controller.send(());
    match tokio::time::timeout(CONTROLLER_STOP_TIMEOUT, &mut controller).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => return Err(SandboxError::Controller(e)),
        Ok(Err(e)) => warn!(error = %e, "the controller task failed"),
        Err(_) => {
            warn!("the controller did not stop in time");
            controller.abort();
        }
    }
    outcome
}

/// Serves the Model Studio simulator until Ctrl-C or SIGTERM.
pub async fn simulator(args: SimulatorArgs) -> Result<(), SandboxError> {
    let addr = args.addr;
    let fail = |source| SandboxError::Simulator { addr, source };
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(fail)?;
    info!(addr = %listener.local_addr().map_err(fail)?, "Model Studio simulator listening");
    let simulator = Simulator::new(args.config);
    modelstudio_simulator::serve(listener, simulator, app::shutdown_signal())
        .await
        .map_err(fail)
}

/// Serves only the in-memory API server (and writes its kubeconfig) until Ctrl-C or SIGTERM.
pub async fn apiserver(args: ApiserverArgs) -> Result<(), SandboxError> {
    let stop = stop_on_signal();
    let server = start_apiserver(args.addr).await?;
    let text = kubeconfig_text(&server, &args.namespace);
    let result = async {
        let path = write_kubeconfig(&args.kubeconfig, &text)?;
        let run = async {
            if args.install_crd {
                let client = client_for(&text).await?;
                install_crd(&client).await?;
                println!("installed the ModelImport and ModelDeployment CRDs");
            }
            println!(
                "Kubernetes API server (in memory) on {}\nkubeconfig {}\n  export KUBECONFIG={}\nCtrl-C to stop",
                server.base_url(),
                path.display(),
                path.display()
            );
            let _ = std::io::stdout().flush();
            stopped(stop.clone()).await;
            Ok(())
        };
        let result = tokio::select! {
            r = run => r,
            _ = stopped(stop.clone()) => Ok(()),
        };
        remove_kubeconfig(&path);
        result
    }
    .await;
    server.shutdown().await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_like_kubectl() {
        for (s, want) in [
            (-5, "0s"),
            (45, "45s"),
            (119, "119s"),
            (192, "3m12s"),
            (300, "5m"),
            (1500, "25m"),
            (4 * 3600 + 300, "4h5m"),
            (30 * 3600, "30h"),
            (3 * 86400 + 4 * 3600, "3d4h"),
            (12 * 86400, "12d"),
        ] {
            assert_eq!(format_age(s), want, "{s}");
        }
    }

    #[test]
    fn table_aligns_and_says_when_empty() {
        let row = Row {
            kind: "mimport",
            name: "qwen3-lora".into(),
            namespace: "default".into(),
            phase: "Running".into(),
            remote: "job-1".into(),
            ready: "False".into(),
            reason: "JobRunning".into(),
            created: Some(100),
        };
        let t = render_table(std::slice::from_ref(&row), 145);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("KIND"), "{t}");
        assert!(
            lines[1].contains("Running") && lines[1].ends_with("45s"),
            "{t}"
        );
        assert_eq!(lines[0].find("PHASE"), lines[1].find("Running"), "{t}");
        assert!(render_table(&[], 0).contains("no ModelImports or ModelDeployments"));
    }

    #[test]
    fn kubeconfig_is_written_atomically_and_foreign_files_are_kept() {
        let dir = std::env::temp_dir().join(format!("msc-sandbox-kc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("kc");
        let text = format!("{KUBECONFIG_MARKER}\napiVersion: v1\n");
        let abs = write_kubeconfig(&path, &text).unwrap();
        assert!(abs.is_absolute());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
        // Ours: replaced.
        write_kubeconfig(&path, &text).unwrap();
        remove_kubeconfig(&path);
        assert!(!path.exists());
        // Someone else's: refused and kept.
        std::fs::write(&path, "apiVersion: v1\nkind: Config\n").unwrap();
        assert!(matches!(
            write_kubeconfig(&path, &text),
            Err(SandboxError::ForeignKubeconfig(_))
        ));
        remove_kubeconfig(&path);
        assert!(path.exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn manifests_are_read_in_apply_order_and_checked() {
        let dir = std::env::temp_dir().join(format!("msc-sandbox-mf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("a.yaml"),
            "# comment\napiVersion: modelstudio.io/v1alpha1\nkind: ModelImport\nmetadata:\n  name: x\n---\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n",
        )
        .unwrap();
        std::fs::write(dir.join("notes.txt"), "not a manifest").unwrap();
        let m = read_manifests(&dir).unwrap();
        let kinds: Vec<String> = m.iter().map(Manifest::describe).collect();
        assert_eq!(kinds, ["secret/s", "modelimport/x"]);
        std::fs::write(dir.join("b.yml"), "apiVersion: v1\nkind: Secret\n").unwrap();
        let e = read_manifests(&dir).unwrap_err().to_string();
        assert!(e.contains("metadata.name"), "{e}");
        std::fs::write(dir.join("b.yml"), "a: [").unwrap();
        let e = read_manifests(&dir).unwrap_err().to_string();
        assert!(e.contains("not valid YAML"), "{e}");
        let e = read_manifests(&dir.join("missing"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("--examples-dir"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn controller_config_uses_the_sandbox_settings() {
        let a = controller_config(
            "http://127.0.0.1:1",
            Duration::from_secs(2),
            "127.0.0.1:9".parse().unwrap(),
        );
        a.check().unwrap();
        assert_eq!(a.endpoint, "http://127.0.0.1:1");
        assert_eq!(a.poll_interval, Duration::from_secs(2));
        assert_eq!(a.metrics_addr.port(), 9);
    }
}
