#![forbid(unsafe_code)]
//! modelstudio-controller: manages Alibaba Cloud Model Studio model imports from Kubernetes.
//! The decisions live in `modelstudio-core`; this crate observes, acts and records.

pub mod app;
pub mod backoff;
pub mod cli;
pub mod config;
pub mod crd;
pub mod deployment;
pub mod event_queue;
pub mod event_recorder;
pub mod import;
pub mod keeper;
pub mod kube_requests;
pub mod leader;
pub mod metrics;
pub mod modelstudio;
pub mod orphan;
pub mod pass;
pub mod regions;
pub mod wakes;
pub mod watches;
