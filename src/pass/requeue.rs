//! When to look again: the core's [`Requeue`] as a kube-runtime [`Action`], with jitter on polls
//! and a backoff that grows with each consecutive failure of the resource.

use super::context::Context;
use kube::runtime::controller::Action;
use modelstudio_core::requeue::Requeue;

impl Context {
    /// The action for a requeue decision about the resource `key`.
    pub fn requeue(&self, key: &str, requeue: Requeue) -> Action {
        // A wait for the cache or for the poll interval says nothing of success.
        if !matches!(requeue, Requeue::Backoff { .. } | Requeue::After(_)) {
            self.failures.succeeded(key);
        }
        let config = &self.config;
        let jitter = config.poll_jitter.clamp(0.0, 0.5);
        let spread =
            |d: std::time::Duration| d.mul_f64(1.0 - jitter + 2.0 * jitter * rand::random::<f64>());
        match requeue {
            Requeue::Poll => Action::requeue(spread(config.poll_interval)),
            Requeue::Resync if config.resync_interval.is_zero() => Action::await_change(),
            Requeue::Resync => Action::requeue(spread(config.resync_interval)),
            Requeue::Never => Action::await_change(),
            Requeue::After(delay) => Action::requeue(delay),
            Requeue::Backoff { min } => {
                let attempt = self.failures.failed(key);
                Action::requeue(config.backoff.delay(attempt, rand::random(), min))
            }
        }
    }
}
