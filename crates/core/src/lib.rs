#![forbid(unsafe_code)]
//! The core of modelstudio-controller: pure decisions over plain domain data. It cannot name a
//! Kubernetes, HTTP or wire type (its dependencies hold none), so every case is tested without a
//! server, and the IO crate around it only observes, acts and records.
//!
//! A reconcile is: [`step::needs`] says what to observe; the IO side observes it once into an
//! [`step::Observation`]; [`step::decide`] returns the whole [`step::Step`] (the status to
//! write, the event, the finalizer or remote call to make, when to look again). The answer to a
//! create or delete is observed in turn and decided on the same way.
//!
//! The modules import each other in one direction only (`tests/dependencies.rs` fails on a
//! circle). At the bottom, what both kinds share, importing none of the kinds' modules:
//! `conditions` (Ready, Reconciling, Stalled and what a reason means for them), `events`,
//! `requeue` (and the timing), `credentials`, `remote` (the import API and the ways a call fails)
//! and `correlation` (the token that finds the result of a lost create). Above them, each kind:
//! for ModelImport `domain`, `reason`, `decision`, `status` and `step`; for ModelDeployment
//! `deployments`, `deployment_reason` and `deployment_step`.

pub mod conditions;
pub mod correlation;
pub mod credentials;
pub mod decision;
pub mod deployment_reason;
pub mod deployment_step;
pub mod deployments;
pub mod domain;
pub mod events;
pub mod reason;
pub mod remote;
pub mod requeue;
pub mod status;
pub mod step;
