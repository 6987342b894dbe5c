//! Layers around an [`ImportJobs`]: each wraps another implementation and is one itself, so rate
//! limiting and metrics are stacked once where the client is built, not written at each call site.

use crate::metrics::{ApiLabels, Metrics};
use async_trait::async_trait;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use modelstudio_core::remote::{
    ApiError, ApiKey, ImportJobs, Job, JobPage, ListQuery, NewJob, Operation,
};
use std::future::Future;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Holds every call until the account's quota allows it: a token bucket of `qps` per second
/// holding `burst` tokens, shared by every resource of the controller.
pub struct RateLimited<J> {
    inner: J,
    limiter: DefaultDirectRateLimiter,
    metrics: Arc<Metrics>,
}

impl<J: ImportJobs> RateLimited<J> {
    pub fn new(inner: J, qps: f64, burst: u32, metrics: Arc<Metrics>) -> Self {
        RateLimited {
            inner,
            limiter: rate_limiter(qps, burst),
            metrics,
        }
    }

    async fn wait(&self) {
        let waited = Instant::now();
        self.limiter.until_ready().await;
        self.metrics
            .api_rate_limit_wait
            .observe(waited.elapsed().as_secs_f64());
    }
}

#[async_trait]
impl<J: ImportJobs> ImportJobs for RateLimited<J> {
    async fn create(&self, key: &ApiKey, job: &NewJob) -> Result<Job, ApiError> {
        self.wait().await;
        self.inner.create(key, job).await
    }

    async fn get(&self, key: &ApiKey, job_id: &str) -> Result<Job, ApiError> {
        self.wait().await;
        self.inner.get(key, job_id).await
    }

    async fn list(&self, key: &ApiKey, query: &ListQuery) -> Result<JobPage, ApiError> {
        self.wait().await;
        self.inner.list(key, query).await
    }

    async fn delete(&self, key: &ApiKey, job_id: &str) -> Result<Job, ApiError> {
        self.wait().await;
        self.inner.delete(key, job_id).await
    }
}

/// A token bucket of `qps` per second holding `burst` tokens (both at least a minimal value).
pub fn rate_limiter(qps: f64, burst: u32) -> DefaultDirectRateLimiter {
    let qps = if qps.is_finite() && qps > 0.0 {
        qps
    } else {
        1.0
    };
    // A rate so small that its period overflows becomes one request a day.
    let period = Duration::try_from_secs_f64(1.0 / qps)
        .unwrap_or(Duration::from_secs(86_400))
        .clamp(Duration::from_nanos(1), Duration::from_secs(86_400));
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    let quota = Quota::with_period(period)
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(burst);
    RateLimiter::direct(quota)
}

/// Counts every call by operation and result (the error's static kind, never its text), and
/// times it.
pub struct Metered<J> {
    inner: J,
    metrics: Arc<Metrics>,
}

impl<J: ImportJobs> Metered<J> {
    pub fn new(inner: J, metrics: Arc<Metrics>) -> Self {
        Metered { inner, metrics }
    }

    async fn count<T>(
        &self,
        operation: Operation,
        call: impl Future<Output = Result<T, ApiError>>,
    ) -> Result<T, ApiError> {
        let start = Instant::now();
        let result = call.await;
        let labels = ApiLabels {
            operation: operation.name(),
            result: match &result {
                Ok(_) => "ok",
                Err(e) => e.kind(),
            },
        };
        self.metrics.api_requests.get_or_create(&labels).inc();
        self.metrics
            .api_request_duration
            .get_or_create(&labels)
            .observe(start.elapsed().as_secs_f64());
        result
    }
}

#[async_trait]
impl<J: ImportJobs> ImportJobs for Metered<J> {
    async fn create(&self, key: &ApiKey, job: &NewJob) -> Result<Job, ApiError> {
        self.count(Operation::Create, self.inner.create(key, job))
            .await
    }

    async fn get(&self, key: &ApiKey, job_id: &str) -> Result<Job, ApiError> {
        self.count(Operation::Get, self.inner.get(key, job_id))
            .await
    }

    async fn list(&self, key: &ApiKey, query: &ListQuery) -> Result<JobPage, ApiError> {
        self.count(Operation::List, self.inner.list(key, query))
            .await
    }

    async fn delete(&self, key: &ApiKey, job_id: &str) -> Result<Job, ApiError> {
        self.count(Operation::Delete, self.inner.delete(key, job_id))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limiter_allows_the_burst_then_holds_back() {
        let limiter = rate_limiter(1.0, 3);
        assert!((0..3).all(|_| limiter.check().is_ok()));
        assert!(limiter.check().is_err());
        // Nonsense settings still give a working limiter.
        let limiter = rate_limiter(f64::NAN, 0);
        assert!(limiter.check().is_ok());
        assert!(limiter.check().is_err());
        let limiter = rate_limiter(1e-20, 1);
        assert!(limiter.check().is_ok());
        assert!(limiter.check().is_err());
    }
}
