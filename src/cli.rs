//! Command-line interface. Every flag can also be set from an environment variable.

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
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

// Parsed once per process: the size of the `Run` variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the controller against the cluster of the kubeconfig (or in-cluster config).
    Run(RunArgs),
    /// Print a CustomResourceDefinition as YAML: ModelImport's (the default) or
    /// ModelDeployment's.
    Crd(CrdArgs),
    /// Before uninstalling: keep every (or every selected) ModelImport's job and ModelDeployment's
    /// deployment in Model Studio and take the controller's finalizers off them and their
    /// Secrets, so that nothing waits for a controller that is gone. Stop the controller first
    /// (scale it to 0).
    Orphan(OrphanArgs),
}

#[derive(Args, Debug, Clone)]
pub struct CrdArgs {
    /// Which CRD to print.
    #[arg(value_enum, default_value_t = CrdKind::Modelimport)]
    pub kind: CrdKind,
}

/// The CRDs `crd` prints, named as their singular resource names.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrdKind {
    Modelimport,
    Modeldeployment,
}

impl From<CrdKind> for crate::crd::Kind {
    fn from(kind: CrdKind) -> Self {
        match kind {
            CrdKind::Modelimport => crate::crd::Kind::ModelImport,
            CrdKind::Modeldeployment => crate::crd::Kind::ModelDeployment,
        }
    }
}

#[derive(Args, Debug, Clone)]
pub struct OrphanArgs {
    /// Only ModelImports and ModelDeployments of this namespace (default: all namespaces).
    #[arg(long, short = 'n')]
    pub namespace: Option<String>,

    /// Only ModelImports and ModelDeployments with these labels, as kubectl writes them
    /// (`team=a,env!=prod`).
    #[arg(long, short = 'l')]
    pub selector: Option<String>,
}

/// How jobs in progress are observed.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PollMode {
    Listing,
    PerJob,
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

    /// The base URL of a region, as REGION=URL (repeat the flag, or comma-separate in the
    /// variable): a credentials Secret whose field `region` names it sends its key's calls there.
    /// Adds to or replaces the documented hosts (cn-beijing, ap-southeast-1, us-east-1,
    /// cn-hongkong); the URL may hold `{workspace}` for per-workspace hosts. Secrets that name no
    /// region use --endpoint.
    #[arg(
        long = "region-endpoint",
        env = "MODELSTUDIO_REGION_ENDPOINTS",
        value_delimiter = ','
    )]
    pub region_endpoints: Vec<String>,

    /// Watch only this namespace (default: all namespaces).
    #[arg(long, env = "MODELSTUDIO_NAMESPACE")]
    pub namespace: Option<String>,

    /// Reconcile only the ModelImports and ModelDeployments with these labels, as kubectl writes them (`shard=a`,
    /// `team in (x,y)`): several controllers with disjoint selectors split the work, each with
    /// its own quota and Lease.
    #[arg(long, env = "MODELSTUDIO_SELECTOR")]
    pub selector: Option<String>,

    /// How many ModelImports are reconciled at once (and, apart, how many ModelDeployments).
    #[arg(long, env = "MODELSTUDIO_CONCURRENCY", default_value_t = 8)]
    pub concurrency: u16,

    /// How often a job or deployment in progress, or a blocked deletion, is checked.
    #[arg(long, env = "MODELSTUDIO_POLL_INTERVAL", default_value = "30s", value_parser = parse_duration)]
    pub poll_interval: Duration,

    /// How jobs in progress are observed: `listing` lists each workspace's PENDING and RUNNING
    /// jobs once per poll interval (pages of 100) and reads on its own only a job that left them;
    /// `per-job` reads every job on its own at every poll (the naive way, kept for comparison).
    #[arg(long, env = "MODELSTUDIO_POLL_MODE", value_enum, default_value_t = PollMode::Listing)]
    pub poll_mode: PollMode,

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

    /// The namespaces that may use the default API key, as a label selector of Namespaces (e.g.
    /// modelstudio.io/default-key=granted); elsewhere a resource needing it gets a condition
    /// saying so. Required with a default key, unless --default-key-all-namespaces.
    #[arg(
        long,
        env = "MODELSTUDIO_DEFAULT_KEY_NAMESPACE_SELECTOR",
        conflicts_with = "default_key_all_namespaces"
    )]
    pub default_key_namespace_selector: Option<String>,

    /// Every namespace may use the default API key (instead of --default-key-namespace-selector).
    #[arg(
        long,
        env = "MODELSTUDIO_DEFAULT_KEY_ALL_NAMESPACES",
        default_value_t = false
    )]
    pub default_key_all_namespaces: bool,
}

/// The configuration reference in Markdown, generated from the command-line definition (the
/// README carries it; a test fails when it drifts): a table per command with flags.
pub fn configuration_reference() -> String {
    let cli = Cli::command();
    let mut out = String::new();
    for name in ["run", "orphan"] {
        let Some(command) = cli.find_subcommand(name) else {
            continue;
        };
        let about = one_line(
            &command
                .get_about()
                .map(|a| a.to_string())
                .unwrap_or_default(),
        );
        out.push_str(&format!(
            "`modelstudio-controller {name}`: {}.\n\n",
            about.trim_end_matches('.')
        ));
        out.push_str("| Flag | Environment | Default | Meaning |\n|---|---|---|---|\n");
        for arg in command.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if long == "help" || long == "version" {
                continue;
            }
            let env = arg
                .get_env()
                .map(|e| format!("`{}`", e.to_string_lossy()))
                .unwrap_or_else(|| "—".into());
            let defaults: Vec<String> = arg
                .get_default_values()
                .iter()
                .map(|v| v.to_string_lossy().into_owned())
                .collect();
            let default = match defaults.as_slice() {
                [] if arg.get_action().takes_values() => "—".to_string(),
                [] => "off".to_string(),
                [v] if v == "false" => "off".to_string(),
                values => format!("`{}`", values.join(",")),
            };
            let mut meaning = one_line(
                &arg.get_long_help()
                    .or(arg.get_help())
                    .map(|h| h.to_string())
                    .unwrap_or_default(),
            );
            if !meaning.is_empty() && !meaning.ends_with('.') {
                meaning.push('.');
            }
            let values: Vec<String> = arg
                .get_possible_values()
                .iter()
                .filter(|v| !v.is_hide_set())
                .map(|v| format!("`{}`", v.get_name()))
                .collect();
            if !values.is_empty() && arg.get_action().takes_values() {
                meaning.push_str(&format!(" One of {}.", values.join(", ")));
            }
            out.push_str(&format!(
                "| `--{long}` | {env} | {default} | {} |\n",
                meaning.replace('|', "\\|")
            ));
        }
        out.push('\n');
    }
    out.push_str(
        "Read from the environment only (`run`):\n\n| Environment | Meaning |\n|---|---|\n",
    );
    for (name, meaning) in crate::config::ENVIRONMENT_ONLY {
        out.push_str(&format!("| `{name}` | {} |\n", meaning.replace('|', "\\|")));
    }
    out
}

/// A doc comment's text on one line.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
