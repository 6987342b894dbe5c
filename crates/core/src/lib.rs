#![forbid(unsafe_code)]
//! The core of modelstudio-controller: pure decisions over plain domain data. It cannot name a
//! Kubernetes, HTTP or wire type (its dependencies hold none), so every case is tested without a
//! server, and the IO crate around it only observes, acts and records.
//!
//! A reconcile is: [`import::step::next_need`] says what to observe; the IO side observes it
//! into an [`import::step::Observation`]; [`import::step::decide`] returns the whole
//! [`import::step::Step`] (the status to write, the event, the finalizer or remote call to make,
//! when to look again). The answer to a create or delete is observed in turn and decided on the
//! same way. A ModelDeployment's pass is the same over [`deployment::step`].
//!
//! One folder per kind, and beside them what both share. The modules import each other in one
//! direction only (`tests/dependencies.rs` fails on a circle, a folder counting as one module):
//! the shared modules import no kind, and neither kind imports the other.
//! - [`import`]: the ModelImport (resource view, import jobs API, reasons, decisions, status,
//!   step).
//! - [`deployment`]: the ModelDeployment (resource view, deployments API, reasons, step).
//! - Shared: [`conditions`] (Ready, Reconciling, Stalled and what a reason means for them),
//!   [`events`], [`control`] (what a person asks through annotations), [`requeue`] (and the timing), [`step`] (what a decision asks of the IO side), [`credentials`], [`api`] (the API key, the ways a
//!   call fails, which call it is), [`deletion`] (the deletion policy), [`management`] (manage or only observe), [`outputs`] (the ConfigMap an app reads) and [`correlation`] (the
//!   token that finds the result of a lost create).

pub mod api;
pub mod conditions;
pub mod control;
pub mod correlation;
pub mod credentials;
pub mod deletion;
pub mod deployment;
pub mod events;
pub mod import;
pub mod management;
pub mod outputs;
pub mod requeue;
pub mod step;
