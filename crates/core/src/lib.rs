#![forbid(unsafe_code)]
//! The core of modelstudio-controller: pure decisions over plain domain data. It cannot name a
//! Kubernetes, HTTP or wire type (its dependencies hold none), so every case is tested without a
//! server, and the IO crate around it only observes, acts and records.

pub mod remote;
