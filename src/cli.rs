//! Command-line interface. Every flag can also be set from an environment variable.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(
    name = "modelstudio-controller",
    version,
    about = "Manage Alibaba Cloud Model Studio model imports from Kubernetes"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the controller against the cluster of the kubeconfig (or in-cluster config).
    Run(RunArgs),
    /// Print the ModelImport CustomResourceDefinition as YAML.
    Crd,
    /// Serve the Model Studio simulator.
    Simulator(SimulatorArgs),
    /// Start a local sandbox in one process: an in-memory Kubernetes API server with the CRD, the
    /// Model Studio simulator and the controller; write a kubeconfig for kubectl and show the
    /// ModelImports until Ctrl-C.
    Sandbox(SandboxArgs),
    /// Serve only the in-memory Kubernetes API server and write a kubeconfig for it.
    Apiserver(ApiserverArgs),
}

/// Log output format.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e}: write a duration like 10s, 2m or 500ms"))
}

#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Model Studio base URL: https://dashscope-intl.aliyuncs.com (Singapore),
    /// https://dashscope.aliyuncs.com (Beijing), or a simulator such as http://127.0.0.1:8089.
    #[arg(
        long,
        env = "MODELSTUDIO_ENDPOINT",
        default_value = "https://dashscope-intl.aliyuncs.com"
    )]
    pub endpoint: String,

    /// Watch only this namespace (default: all namespaces).
    #[arg(long, env = "MODELSTUDIO_NAMESPACE")]
    pub namespace: Option<String>,

    /// How many ModelImports are reconciled at once.
    #[arg(long, env = "MODELSTUDIO_CONCURRENCY", default_value_t = 8)]
    pub concurrency: u16,

    /// How often a job in progress, or a blocked deletion, is checked.
    #[arg(long, env = "MODELSTUDIO_POLL_INTERVAL", default_value = "30s", value_parser = parse_duration)]
    pub poll_interval: Duration,

    /// How often a finished job is checked again (0s: never).
    #[arg(long, env = "MODELSTUDIO_RESYNC_INTERVAL", default_value = "30m", value_parser = parse_duration)]
    pub resync_interval: Duration,

    /// Time allowed for one request to Model Studio.
    #[arg(long, env = "MODELSTUDIO_REQUEST_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub request_timeout: Duration,

    /// First retry delay after a failure; it doubles up to --backoff-max.
    #[arg(long, env = "MODELSTUDIO_BACKOFF_BASE", default_value = "2s", value_parser = parse_duration)]
    pub backoff_base: Duration,

    /// Longest retry delay after failures.
    #[arg(long, env = "MODELSTUDIO_BACKOFF_MAX", default_value = "5m", value_parser = parse_duration)]
    pub backoff_max: Duration,

    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, env = "MODELSTUDIO_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,

    /// Log format.
    #[arg(long, env = "MODELSTUDIO_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Elect a leader through a Lease so that only one replica reconciles at a time.
    #[arg(long, env = "MODELSTUDIO_LEADER_ELECTION", default_value_t = false)]
    pub leader_election: bool,

    /// Name of the leader-election Lease.
    #[arg(
        long,
        env = "MODELSTUDIO_LEASE_NAME",
        default_value = "modelstudio-controller"
    )]
    pub lease_name: String,

    /// Namespace of the leader-election Lease (default: the pod's namespace from POD_NAMESPACE,
    /// else `default`).
    #[arg(long, env = "POD_NAMESPACE")]
    pub lease_namespace: Option<String>,

    /// After SIGTERM, how long reconciles under way may take to finish before the process exits.
    #[arg(long, env = "MODELSTUDIO_SHUTDOWN_TIMEOUT", default_value = "20s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,

    /// Steady rate of requests to Model Studio per second, for the whole controller.
    #[arg(long, env = "MODELSTUDIO_QPS", default_value_t = 5.0)]
    pub qps: f64,

    /// Requests to Model Studio that may be sent at once above the steady rate.
    #[arg(long, env = "MODELSTUDIO_BURST", default_value_t = 10)]
    pub burst: u32,

    /// File holding the default API key, used by ModelImports without spec.apiKeySecretRef.
    /// The environment variable DASHSCOPE_API_KEY can hold it instead.
    #[arg(long, env = "MODELSTUDIO_API_KEY_FILE")]
    pub api_key_file: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct SimulatorArgs {
    /// Address to serve on.
    #[arg(long, env = "SIMULATOR_ADDR", default_value = "127.0.0.1:8089")]
    pub addr: SocketAddr,

    #[command(flatten)]
    pub config: modelstudio_simulator::SimulatorConfig,
}

#[derive(Args, Debug, Clone)]
pub struct SandboxArgs {
    /// Address of the in-memory Kubernetes API server (port 0 picks a free port).
    #[arg(
        long,
        env = "SANDBOX_APISERVER_ADDR",
        default_value = "127.0.0.1:18443"
    )]
    pub apiserver_addr: SocketAddr,

    /// Address of the Model Studio simulator (port 0 picks a free port).
    #[arg(long, env = "SANDBOX_SIMULATOR_ADDR", default_value = "127.0.0.1:8089")]
    pub simulator_addr: SocketAddr,

    /// Address of the controller's /metrics, /healthz and /readyz (port 0 picks a free port).
    #[arg(long, env = "SANDBOX_METRICS_ADDR", default_value = "127.0.0.1:8080")]
    pub metrics_addr: SocketAddr,

    /// Where to write the kubeconfig of the sandbox. An existing file is replaced only if the
    /// sandbox wrote it; it is removed on exit.
    #[arg(long, env = "SANDBOX_KUBECONFIG", default_value = "sandbox.kubeconfig")]
    pub kubeconfig: PathBuf,

    /// Default namespace of the kubeconfig's context.
    #[arg(long, env = "SANDBOX_NAMESPACE", default_value = "default")]
    pub namespace: String,

    /// Apply the manifests of --examples-dir (server-side apply) once the controller runs.
    #[arg(long, env = "SANDBOX_APPLY_EXAMPLES", default_value_t = false)]
    pub apply_examples: bool,

    /// Directory of the example manifests (*.yaml, *.yml) for --apply-examples.
    #[arg(long, env = "SANDBOX_EXAMPLES_DIR", default_value = "examples")]
    pub examples_dir: PathBuf,

    /// How often the controller checks a job in progress.
    #[arg(long, env = "SANDBOX_POLL_INTERVAL", default_value = "2s", value_parser = parse_duration)]
    pub poll_interval: Duration,

    /// How long a simulated job stays PENDING.
    #[arg(long, env = "SANDBOX_PENDING_DURATION", default_value = "5s", value_parser = parse_duration)]
    pub pending_duration: Duration,

    /// How long a simulated job stays RUNNING before it succeeds or fails.
    #[arg(long, env = "SANDBOX_RUNNING_DURATION", default_value = "20s", value_parser = parse_duration)]
    pub running_duration: Duration,

    /// How often the table of ModelImports is refreshed.
    #[arg(long, env = "SANDBOX_REFRESH_INTERVAL", default_value = "1s", value_parser = parse_duration)]
    pub refresh_interval: Duration,
}

#[derive(Args, Debug, Clone)]
pub struct ApiserverArgs {
    /// Address to serve on (port 0 picks a free port).
    #[arg(long, env = "APISERVER_ADDR", default_value = "127.0.0.1:18443")]
    pub addr: SocketAddr,

    /// Where to write the kubeconfig. An existing file is replaced only if the sandbox wrote it;
    /// it is removed on exit.
    #[arg(
        long,
        env = "APISERVER_KUBECONFIG",
        default_value = "sandbox.kubeconfig"
    )]
    pub kubeconfig: PathBuf,

    /// Default namespace of the kubeconfig's context.
    #[arg(long, env = "APISERVER_NAMESPACE", default_value = "default")]
    pub namespace: String,

    /// Also install the ModelImport CRD.
    #[arg(long, env = "APISERVER_INSTALL_CRD", default_value_t = false)]
    pub install_crd: bool,
}
