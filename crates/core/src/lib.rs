#![forbid(unsafe_code)]
//! The core of modelstudio-controller: pure decisions over plain domain data. It cannot name a
//! Kubernetes, HTTP or wire type (its dependencies hold none), so every case is tested without a
//! server, and the IO crate around it only observes, acts and records.
//!
//! A reconcile is: [`step::needs`] says what to observe; the IO side observes it once into an
//! [`step::Observation`]; [`step::decide`] returns the whole [`step::Step`] (the status to
//! write, the event, the finalizer or remote call to make, when to look again). The answer to a
//! create or delete is observed in turn and decided on the same way.

pub mod correlation;
pub mod credentials;
pub mod decision;
pub mod deployment_reason;
pub mod deployment_step;
pub mod deployments;
pub mod domain;
pub mod reason;
pub mod remote;
pub mod status;
pub mod step;
