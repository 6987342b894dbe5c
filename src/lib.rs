#![forbid(unsafe_code)]
//! modelstudio-controller: manages Alibaba Cloud Model Studio model imports from Kubernetes.

pub mod app;
pub mod backoff;
pub mod cli;
pub mod controller;
pub mod correlation;
pub mod crd;
pub mod decision;
pub mod leader;
pub mod metrics;
pub mod modelstudio;
pub mod status;
