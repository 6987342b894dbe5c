#![forbid(unsafe_code)]
//! Test beds for modelstudio-controller, for tests only (never linked into the shipped binary).
//!
//! [`ControlPlane`] starts a real Kubernetes control plane (etcd, kube-apiserver 1.37 and
//! kube-controller-manager, built by `scripts/build-testbed.sh`) on free ports of 127.0.0.1 with
//! its own PKI, as controller-runtime's envtest does, and stops every process by its PID.

mod control_plane;
mod process;

pub use control_plane::{available, bin_dir, ControlPlane, StartError, BIN_DIR_ENV};
pub use process::{free_port, run_bounded, Output, Proc};
