//! When to look at a resource again ([`Requeue`]), and the timing the decisions of both kinds
//! depend on ([`Timing`]). Imports no other module of the core.

use std::time::Duration;

/// When to look at the resource again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requeue {
    /// At the poll interval (a job in progress, or a deletion that is blocked).
    Poll,
    /// At the slow resync interval (a finished job).
    Resync,
    /// After a backoff that grows with each consecutive failure, at least `min`.
    Backoff { min: Option<Duration> },
    /// After exactly this long (the cache lagged behind, or the job was read a moment ago).
    After(Duration),
    /// Only when the resource changes.
    Never,
}

/// The timing the decisions depend on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub poll_interval: Duration,
    /// How long after a create a listing without its job is trusted to mean "not created", and
    /// a NotFound on the new job to mean "gone".
    pub create_grace: Duration,
}
