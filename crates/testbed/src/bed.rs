//! What the tests of the controller as a process start from.

use crate::cluster::Cluster;
use crate::kubectl::TempDir;
use kube::Client;
use modelstudio_simulator::{RunningSimulator, SimulatorConfig};
use std::path::PathBuf;
use std::time::Duration;
use tokio::runtime::Runtime;

/// A runtime of two worker threads for a test's servers and clients.
pub fn test_runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// A folder, an API server (the real control plane when built) with a kubeconfig and a client
/// for `namespace`, and the simulator with jobs pending 200 ms then running 400 ms.
pub struct ProcessBed {
    pub dir: TempDir,
    pub kubeconfig: PathBuf,
    pub client: Client,
    pub sim: RunningSimulator,
    pub cluster: Cluster,
    /// Last: the servers stop before their runtime.
    pub rt: Runtime,
}

impl ProcessBed {
    pub fn start(name: &str, namespace: &str) -> Self {
        let rt = test_runtime();
        let dir = TempDir::new(name);
        let cluster = rt.block_on(Cluster::start()).expect("an API server");
        let kubeconfig = dir.0.join("kubeconfig");
        cluster
            .write_kubeconfig(&kubeconfig, namespace)
            .expect("the kubeconfig");
        let client = rt.block_on(cluster.client(namespace)).expect("a client");
        let sim = rt
            .block_on(RunningSimulator::start(SimulatorConfig {
                pending_duration: Duration::from_millis(200),
                running_duration: Duration::from_millis(400),
                ..SimulatorConfig::default()
            }))
            .expect("the simulator");
        ProcessBed {
            dir,
            kubeconfig,
            client,
            sim,
            cluster,
            rt,
        }
    }
}
