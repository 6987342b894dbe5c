#![forbid(unsafe_code)]
//! Test beds for modelstudio-controller, for tests only (never linked into the shipped binary).
//!
//! [`ControlPlane`] starts a real Kubernetes control plane (etcd, kube-apiserver 1.37 and
//! kube-controller-manager, built by `scripts/build-testbed.sh`) on free ports of 127.0.0.1 with
//! its own PKI, as controller-runtime's envtest does, and stops every process by its PID.
//! [`Node`] adds a real node (kubelet, kube-proxy, kube-scheduler, containerd with runc, a local
//! OCI registry) with its own control plane, inside private namespaces that it removes.

mod bed;
mod cluster;
mod control_plane;
mod controller;
mod fake_calls;
mod fake_deployments;
mod fake_jobs;
mod go_tools;
mod kubectl;
pub mod metrics;
mod node;
mod objects;
mod pki;
mod process;

pub use bed::{test_runtime, ProcessBed};
pub use cluster::{apply_crd, client_for, install_crd, BedError, Cluster, Flavor, FIELD_MANAGER};
pub use control_plane::{available, bin_dir, ControlPlane, StartError, BIN_DIR_ENV};
pub use controller::ControllerCommand;
pub use fake_deployments::FakeDeployments;
pub use fake_jobs::{remote_error, FakeJobs};
pub use go_tools::{go_tool, workspace_root, GoToolError};
pub use kubectl::{kustomize, require_kubectl, table, yaml_documents, Kubectl, TempDir};
pub use modelstudio_simulator;
pub use node::{
    ImageError, NamespaceError, Node, NodeError, NodeTools, Registry, Teardown, ToolsError,
};
pub use objects::{api_key_secret, ImportBuilder, API_KEY_FIELD};
pub use pki::PkiError;
pub use process::{free_port, run_bounded, Output, Proc};
pub use sandbox_apiserver::RunningApiServer;
