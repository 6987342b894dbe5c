//! Command-line interface of `modelstudio-sandbox`. Every flag can also be set from an
//! environment variable.

use clap::{Args, Parser, Subcommand};
use modelstudio_controller::cli::parse_duration;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(
    name = "modelstudio-sandbox",
    version,
    about = "The local demo and test beds of modelstudio-controller: an in-memory Kubernetes API \
             server and the Model Studio simulator, alone or with the controller"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Start a local sandbox in one process: an in-memory Kubernetes API server with the CRD, the
    /// Model Studio simulator and the controller; write a kubeconfig for kubectl and show the
    /// ModelImports until Ctrl-C.
    Sandbox(SandboxArgs),
    /// Serve only the in-memory Kubernetes API server and write a kubeconfig for it.
    Apiserver(ApiserverArgs),
    /// Serve the Model Studio simulator.
    Simulator(SimulatorArgs),
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

    /// Run on the real control plane (kube-apiserver 1.37, etcd, kube-controller-manager) that
    /// `scripts/build-testbed.sh` built, found through MODELSTUDIO_TESTBED_BIN, instead of the
    /// in-memory API server; it listens on free ports and --apiserver-addr is ignored.
    #[arg(long, env = "SANDBOX_REAL_CONTROL_PLANE", default_value_t = false)]
    pub real_control_plane: bool,
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

    /// Also install the CRDs (ModelImport, ModelDeployment).
    #[arg(long, env = "APISERVER_INSTALL_CRD", default_value_t = false)]
    pub install_crd: bool,
}
