//! Capped, jittered exponential backoff, and the count of consecutive failures per resource that
//! drives it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// Backoff settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BackoffPolicy {
    /// Delay after the first failure.
    pub base: Duration,
    /// Longest delay.
    pub cap: Duration,
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        BackoffPolicy {
            base: Duration::from_secs(2),
            cap: Duration::from_secs(300),
        }
    }
}

impl BackoffPolicy {
    /// The delay before retry number `attempt` (1-based), scaled by `jitter` in [0, 1): the delay
    /// is drawn from [d/2, d) so that many resources failing together spread out ("equal jitter").
    /// A server's Retry-After is a floor.
    pub fn delay(&self, attempt: u32, jitter: f64, floor: Option<Duration>) -> Duration {
        let exp = attempt.saturating_sub(1).min(30);
        let full = self
            .base
            .checked_mul(1u32 << exp)
            .unwrap_or(self.cap)
            .min(self.cap);
        let jitter = jitter.clamp(0.0, 1.0);
        let d = full.mul_f64(0.5 + 0.5 * jitter);
        // A server's Retry-After is a floor, but no larger than the cap.
        match floor {
            Some(f) => d.max(f.min(self.cap)),
            None => d,
        }
    }
}

/// Consecutive failures per resource, reset by a success.
#[derive(Debug, Default)]
pub struct FailureCounts {
    counts: Mutex<HashMap<String, u32>>,
}

impl FailureCounts {
    /// Records a failure and returns how many happened in a row.
    pub fn failed(&self, key: &str) -> u32 {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let n = counts.entry(key.to_string()).or_insert(0);
        *n = n.saturating_add(1);
        *n
    }

    /// Forgets the failures of a resource.
    pub fn succeeded(&self, key: &str) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        counts.remove(key);
    }

    /// Failures in a row so far.
    pub fn current(&self, key: &str) -> u32 {
        let counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        counts.get(key).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_then_caps() {
        let p = BackoffPolicy {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(60),
        };
        let max = |n| p.delay(n, 0.999_999, None);
        assert!(max(1) <= Duration::from_secs(1));
        assert!(max(2) <= Duration::from_secs(2) && max(2) > Duration::from_secs(1));
        assert!(max(5) <= Duration::from_secs(16));
        assert!(max(10) <= Duration::from_secs(60));
        assert!(max(1000) <= Duration::from_secs(60));
        assert_eq!(p.delay(1000, 0.0, None), Duration::from_secs(30));
    }

    #[test]
    fn jitter_spreads_between_half_and_full() {
        let p = BackoffPolicy::default();
        let lo = p.delay(3, 0.0, None);
        let hi = p.delay(3, 0.99, None);
        assert_eq!(lo, Duration::from_secs(4));
        assert!(hi > lo && hi < Duration::from_secs(8));
    }

    #[test]
    fn retry_after_is_a_floor() {
        let p = BackoffPolicy::default();
        assert_eq!(
            p.delay(1, 0.0, Some(Duration::from_secs(30))),
            Duration::from_secs(30)
        );
        assert_eq!(
            p.delay(1, 0.0, Some(Duration::from_millis(10))),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn counts_reset_on_success() {
        let c = FailureCounts::default();
        assert_eq!(c.failed("a"), 1);
        assert_eq!(c.failed("a"), 2);
        assert_eq!(c.failed("b"), 1);
        c.succeeded("a");
        assert_eq!(c.current("a"), 0);
        assert_eq!(c.failed("a"), 1);
    }
}
