//! Layers around an [`ImportJobs`] and a [`Deployments`]: each wraps another implementation and
//! is one itself, so rate limiting and metrics are stacked once where the client is built, not
//! written at each call site. One layer wrapping a client of both APIs gives both one quota (the
//! account's), so deployment calls and import calls are paced together.

use crate::config::Config;
use crate::metrics::{ApiLabels, Metrics, QuotaLabels};
use async_trait::async_trait;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use modelstudio_core::api::{ApiError, ApiKey, Operation};
use modelstudio_core::deployment::deployments::{
    Deployment, DeploymentPage, DeploymentState, Deployments, Limits, NewDeployment, PageRequest,
};
use modelstudio_core::import::jobs::{ImportJobs, Job, JobPage, JobState, ListQuery, NewJob};
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Which calls go first when the quota is short: creates and deletes, then the listings that
/// look for a lost create, then polls, then the slow resync of finished jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Priority {
    Mutation = 0,
    Recovery = 1,
    Poll = 2,
    Resync = 3,
}

impl Priority {
    /// Every class, most urgent first.
    pub const ALL: [Priority; 4] = [
        Priority::Mutation,
        Priority::Recovery,
        Priority::Poll,
        Priority::Resync,
    ];

    /// The class of a call, from what it is.
    pub fn of(operation: Operation, query: Option<&ListQuery>) -> Priority {
        if operation.is_mutation() {
            return Priority::Mutation;
        }
        if query.is_some_and(|q| q.poll) {
            return Priority::Poll;
        }
        match (operation, query.and_then(|q| q.state.as_ref())) {
            (Operation::List, None) => Priority::Recovery,
            (Operation::List, Some(JobState::Pending | JobState::Running)) => Priority::Poll,
            // Finished states, in either spelling.
            (Operation::List, Some(_)) => Priority::Resync,
            // A deployment listing looks for a create whose answer was lost, as a bare job
            // listing does; reads of one deployment are polls.
            (Operation::DeploymentList, _) => Priority::Recovery,
            _ => Priority::Poll,
        }
    }

    /// The class's name, for metric labels.
    pub fn name(self) -> &'static str {
        match self {
            Priority::Mutation => "mutation",
            Priority::Recovery => "recovery",
            Priority::Poll => "poll",
            Priority::Resync => "resync",
        }
    }
}

/// Every tenth token goes to the call that has waited longest, whatever its class, so a stream
/// of creates never holds a poll back without bound, and creates keep nine tenths of a quota
/// they fill.
const OLDEST_EVERY: u64 = 10;

#[derive(Default)]
struct Queues {
    classes: [VecDeque<(u64, oneshot::Sender<()>)>; 4],
    arrivals: u64,
    granted: u64,
    dispatching: bool,
}

impl Queues {
    fn is_empty(&self) -> bool {
        self.classes.iter().all(VecDeque::is_empty)
    }

    /// The next waiter: the first of the most urgent class, or now and then the oldest.
    fn next(&mut self) -> Option<oneshot::Sender<()>> {
        self.granted += 1;
        let class = if self.granted.is_multiple_of(OLDEST_EVERY) {
            (0..self.classes.len())
                .filter(|&c| !self.classes[c].is_empty())
                .min_by_key(|&c| self.classes[c].front().map(|(seq, _)| *seq))
        } else {
            (0..self.classes.len()).find(|&c| !self.classes[c].is_empty())
        }?;
        self.classes[class].pop_front().map(|(_, tx)| tx)
    }
}

/// How long a call may wait in the queue before callers are given later turns instead: waiting
/// holds a reconcile slot, which other resources need.
const MAX_QUEUED_WAIT: Duration = Duration::from_secs(1);

struct SharedQuota {
    limiter: DefaultDirectRateLimiter,
    queues: Mutex<Queues>,
    /// The time one token takes.
    period: Duration,
    /// The end of the turns handed out by [`SharedQuota::pace`].
    turns_until: Mutex<Option<Instant>>,
}

impl SharedQuota {
    fn new(qps: f64, burst: u32) -> Self {
        SharedQuota {
            limiter: rate_limiter(qps, burst),
            queues: Mutex::default(),
            period: token_period(qps),
            turns_until: Mutex::default(),
        }
    }

    /// A turn for a call of `priority` when the queue ahead of it is longer than
    /// [`MAX_QUEUED_WAIT`] or earlier turns are still to come: the delay until that turn.
    fn pace(&self, priority: Priority) -> Option<Duration> {
        let ahead: usize = {
            let queues = self.queues.lock().unwrap_or_else(|p| p.into_inner());
            queues.classes[..=priority as usize]
                .iter()
                .map(VecDeque::len)
                .sum()
        };
        let now = Instant::now();
        let queued = self.period.saturating_mul(ahead as u32);
        let mut turns = self.turns_until.lock().unwrap_or_else(|p| p.into_inner());
        let pending_turns = turns.is_some_and(|t| t > now);
        if queued < MAX_QUEUED_WAIT && !pending_turns {
            return None;
        }
        let turn = turns
            .filter(|t| *t > now)
            .unwrap_or(now + queued)
            .max(now + queued);
        *turns = Some(turn + self.period);
        Some(turn - now)
    }

    /// Waits for a token: at once when nobody waits and the bucket has one, else in turn.
    async fn acquire(self: &Arc<Self>, priority: Priority) {
        let rx = {
            let mut queues = self.queues.lock().unwrap_or_else(|p| p.into_inner());
            if queues.is_empty() && self.limiter.check().is_ok() {
                return;
            }
            let (tx, rx) = oneshot::channel();
            queues.arrivals += 1;
            let seq = queues.arrivals;
            queues.classes[priority as usize].push_back((seq, tx));
            if !queues.dispatching {
                queues.dispatching = true;
                tokio::spawn(self.clone().dispatch());
            }
            rx
        };
        // The dispatcher never drops a waiter without sending; a closed channel only means the
        // runtime is going away.
        let _ = rx.await;
    }

    /// Hands out tokens at the quota's rate, most urgent class first, while anyone waits.
    async fn dispatch(self: Arc<Self>) {
        loop {
            {
                let mut queues = self.queues.lock().unwrap_or_else(|p| p.into_inner());
                if queues.is_empty() {
                    queues.dispatching = false;
                    return;
                }
            }
            self.limiter.until_ready().await;
            let mut queues = self.queues.lock().unwrap_or_else(|p| p.into_inner());
            // A waiter that gave up (its reconcile was cancelled) just loses its turn.
            while let Some(tx) = queues.next() {
                if tx.send(()).is_ok() {
                    break;
                }
            }
        }
    }
}

/// Holds every call until the account's quota allows it: one token bucket of `qps` per second
/// holding `burst` tokens per endpoint (a region's host; each region is its own service with its
/// own quota), handed out by [`Priority`] (and, within a class, in order of arrival) when calls
/// have to wait. `qps` is never exceeded at any endpoint.
pub struct RateLimited<J> {
    inner: J,
    qps: f64,
    burst: u32,
    /// By the key's endpoint (`None`: the default one).
    quotas: Mutex<HashMap<Option<String>, Arc<SharedQuota>>>,
    metrics: Arc<Metrics>,
}

impl<J> RateLimited<J> {
    pub fn new(inner: J, qps: f64, burst: u32, metrics: Arc<Metrics>) -> Self {
        RateLimited {
            inner,
            qps,
            burst,
            quotas: Mutex::default(),
            metrics,
        }
    }

    /// The quota of the endpoint `key` is sent to.
    fn quota(&self, key: &ApiKey) -> Arc<SharedQuota> {
        let mut quotas = self.quotas.lock().unwrap_or_else(|p| p.into_inner());
        quotas
            .entry(key.endpoint().map(str::to_string))
            .or_insert_with(|| Arc::new(SharedQuota::new(self.qps, self.burst)))
            .clone()
    }

    async fn wait(&self, key: &ApiKey, priority: Priority) {
        let waited = Instant::now();
        self.quota(key).acquire(priority).await;
        let labels = QuotaLabels {
            priority: priority.name(),
        };
        self.metrics
            .api_rate_limit_wait
            .get_or_create(&labels)
            .observe(waited.elapsed().as_secs_f64());
    }
}

#[async_trait]
impl<J: ImportJobs> ImportJobs for RateLimited<J> {
    async fn create(&self, key: &ApiKey, job: &NewJob) -> Result<Job, ApiError> {
        self.wait(key, Priority::Mutation).await;
        self.inner.create(key, job).await
    }

    async fn get(&self, key: &ApiKey, job_id: &str) -> Result<Job, ApiError> {
        self.wait(key, Priority::Poll).await;
        self.inner.get(key, job_id).await
    }

    async fn list(&self, key: &ApiKey, query: &ListQuery) -> Result<JobPage, ApiError> {
        self.wait(key, Priority::of(Operation::List, Some(query)))
            .await;
        self.inner.list(key, query).await
    }

    async fn delete(&self, key: &ApiKey, job_id: &str) -> Result<Job, ApiError> {
        self.wait(key, Priority::Mutation).await;
        self.inner.delete(key, job_id).await
    }

    fn pace(&self, key: &ApiKey, operation: Operation) -> Option<Duration> {
        self.quota(key).pace(Priority::of(operation, None))
    }
}

#[async_trait]
impl<J: Deployments> Deployments for RateLimited<J> {
    async fn create(
        &self,
        key: &ApiKey,
        deployment: &NewDeployment,
    ) -> Result<Deployment, ApiError> {
        self.wait(key, Priority::Mutation).await;
        self.inner.create(key, deployment).await
    }

    async fn get(&self, key: &ApiKey, deployed_model: &str) -> Result<Deployment, ApiError> {
        self.wait(key, Priority::Poll).await;
        self.inner.get(key, deployed_model).await
    }

    async fn list(&self, key: &ApiKey, page: &PageRequest) -> Result<DeploymentPage, ApiError> {
        self.wait(key, Priority::of(Operation::DeploymentList, None))
            .await;
        self.inner.list(key, page).await
    }

    async fn scale(
        &self,
        key: &ApiKey,
        deployed_model: &str,
        capacity: u32,
    ) -> Result<Deployment, ApiError> {
        self.wait(key, Priority::Mutation).await;
        self.inner.scale(key, deployed_model, capacity).await
    }

    async fn update_limits(
        &self,
        key: &ApiKey,
        deployed_model: &str,
        limits: &Limits,
    ) -> Result<Deployment, ApiError> {
        self.wait(key, Priority::Mutation).await;
        self.inner.update_limits(key, deployed_model, limits).await
    }

    async fn delete(
        &self,
        key: &ApiKey,
        deployed_model: &str,
    ) -> Result<DeploymentState, ApiError> {
        self.wait(key, Priority::Mutation).await;
        self.inner.delete(key, deployed_model).await
    }

    fn pace(&self, key: &ApiKey, operation: Operation) -> Option<Duration> {
        self.quota(key).pace(Priority::of(operation, None))
    }
}

/// The time one token of `qps` takes.
fn token_period(qps: f64) -> Duration {
    let qps = if qps.is_finite() && qps > 0.0 {
        qps
    } else {
        1.0
    };
    // A rate so small that its period overflows becomes one request a day.
    Duration::try_from_secs_f64(1.0 / qps)
        .unwrap_or(Duration::from_secs(86_400))
        .clamp(Duration::from_nanos(1), Duration::from_secs(86_400))
}

/// `api` behind the layers every controller call goes through: the account's rate limit (one
/// token bucket for the whole controller, whichever API a call goes to), then the metrics of each
/// call. A client of both APIs layered once gives both one quota.
pub fn layered<A>(api: A, config: &Config, metrics: Arc<Metrics>) -> Arc<RateLimited<Metered<A>>> {
    Arc::new(RateLimited::new(
        Metered::new(api, metrics.clone()),
        config.qps,
        config.burst,
        metrics,
    ))
}

/// A token bucket of `qps` per second holding `burst` tokens (both at least a minimal value).
pub fn rate_limiter(qps: f64, burst: u32) -> DefaultDirectRateLimiter {
    let period = token_period(qps);
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

impl<J> Metered<J> {
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

    fn pace(&self, key: &ApiKey, operation: Operation) -> Option<Duration> {
        self.inner.pace(key, operation)
    }
}

#[async_trait]
impl<J: Deployments> Deployments for Metered<J> {
    async fn create(
        &self,
        key: &ApiKey,
        deployment: &NewDeployment,
    ) -> Result<Deployment, ApiError> {
        self.count(
            Operation::DeploymentCreate,
            self.inner.create(key, deployment),
        )
        .await
    }

    async fn get(&self, key: &ApiKey, deployed_model: &str) -> Result<Deployment, ApiError> {
        self.count(
            Operation::DeploymentGet,
            self.inner.get(key, deployed_model),
        )
        .await
    }

    async fn list(&self, key: &ApiKey, page: &PageRequest) -> Result<DeploymentPage, ApiError> {
        self.count(Operation::DeploymentList, self.inner.list(key, page))
            .await
    }

    async fn scale(
        &self,
        key: &ApiKey,
        deployed_model: &str,
        capacity: u32,
    ) -> Result<Deployment, ApiError> {
        self.count(
            Operation::DeploymentScale,
            self.inner.scale(key, deployed_model, capacity),
        )
        .await
    }

    async fn update_limits(
        &self,
        key: &ApiKey,
        deployed_model: &str,
        limits: &Limits,
    ) -> Result<Deployment, ApiError> {
        self.count(
            Operation::DeploymentUpdate,
            self.inner.update_limits(key, deployed_model, limits),
        )
        .await
    }

    async fn delete(
        &self,
        key: &ApiKey,
        deployed_model: &str,
    ) -> Result<DeploymentState, ApiError> {
        self.count(
            Operation::DeploymentDelete,
            self.inner.delete(key, deployed_model),
        )
        .await
    }

    fn pace(&self, key: &ApiKey, operation: Operation) -> Option<Duration> {
        self.inner.pace(key, operation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_classed_by_what_they_are() {
        let list = |state| ListQuery {
            state,
            ..Default::default()
        };
        assert_eq!(Priority::of(Operation::Create, None), Priority::Mutation);
        assert_eq!(Priority::of(Operation::Delete, None), Priority::Mutation);
        assert_eq!(
            Priority::of(Operation::List, Some(&list(None))),
            Priority::Recovery
        );
        let running = list(Some(JobState::Running));
        assert_eq!(
            Priority::of(Operation::List, Some(&running)),
            Priority::Poll
        );
        for finished in modelstudio_core::import::decision::finished_states() {
            let done = list(Some(finished));
            assert_eq!(Priority::of(Operation::List, Some(&done)), Priority::Resync);
            // The poll cycle's look for jobs that just finished is a poll.
            let just_finished = ListQuery { poll: true, ..done };
            assert_eq!(
                Priority::of(Operation::List, Some(&just_finished)),
                Priority::Poll
            );
        }
        assert_eq!(Priority::of(Operation::Get, None), Priority::Poll);
        for mutation in [
            Operation::DeploymentCreate,
            Operation::DeploymentScale,
            Operation::DeploymentUpdate,
            Operation::DeploymentDelete,
        ] {
            assert_eq!(Priority::of(mutation, None), Priority::Mutation);
        }
        assert_eq!(Priority::of(Operation::DeploymentGet, None), Priority::Poll);
        assert_eq!(
            Priority::of(Operation::DeploymentList, None),
            Priority::Recovery
        );
    }

    /// Past a second of queue, callers get turns one token apart instead of waiting in it; a
    /// turn handed out makes later callers line up behind it.
    #[tokio::test]
    async fn a_long_queue_hands_out_turns_one_token_apart() {
        let quota = Arc::new(SharedQuota::new(10.0, 1));
        assert_eq!(quota.pace(Priority::Mutation), None);
        quota.acquire(Priority::Mutation).await;
        // Twelve creates wait: more than a second at 10 a second.
        let waiting: Vec<_> = (0..12)
            .map(|_| {
                let quota = quota.clone();
                tokio::spawn(async move { quota.acquire(Priority::Mutation).await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(20)).await;
        let first = quota.pace(Priority::Mutation).expect("a turn");
        let second = quota.pace(Priority::Mutation).expect("a turn");
        assert!(first >= Duration::from_millis(1000), "{first:?}");
        let gap = second - first;
        assert!(
            gap >= Duration::from_millis(99) && gap <= Duration::from_millis(101),
            "{gap:?}"
        );
        // Polls queued behind creates are not counted for a create's turn, but a create's are
        // for a poll's.
        assert!(quota.pace(Priority::Poll).is_some());
        for w in waiting {
            w.abort();
        }
    }

    /// With the quota short, waiting creates go before waiting polls, and a poll still gets a
    /// turn among a stream of creates; the rate is never exceeded.
    #[tokio::test]
    async fn creates_go_first_polls_are_never_starved_and_the_rate_holds() {
        let quota = Arc::new(SharedQuota::new(100.0, 1));
        quota.acquire(Priority::Mutation).await; // the one token of the burst
        let order = Arc::new(Mutex::new(Vec::new()));
        let started = Instant::now();
        let mut tasks = Vec::new();
        for (i, priority) in [Priority::Poll, Priority::Poll]
            .into_iter()
            .chain(std::iter::repeat_n(Priority::Mutation, 18))
            .enumerate()
        {
            let (quota, order) = (quota.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                quota.acquire(priority).await;
                order.lock().unwrap().push((i, priority));
            }));
            // Arrive in this order.
            tokio::task::yield_now().await;
        }
        for t in tasks {
            t.await.unwrap();
        }
        let order = order.lock().unwrap().clone();
        let elapsed = started.elapsed();
        assert_eq!(order.len(), 20);
        // 20 tokens at 100/s after the burst: at least 190 ms.
        assert!(elapsed >= Duration::from_millis(190), "{elapsed:?}");
        // Creates first; every tenth grant goes to the oldest waiter, a poll here.
        let polls: Vec<usize> = order
            .iter()
            .enumerate()
            .filter(|(_, (_, p))| *p == Priority::Poll)
            .map(|(at, _)| at)
            .collect();
        assert_eq!(polls, [9, 19], "{order:?}");
        let creates: Vec<usize> = order
            .iter()
            .filter(|(_, p)| *p == Priority::Mutation)
            .map(|(i, _)| *i)
            .collect();
        assert_eq!(creates, (2..20).collect::<Vec<_>>(), "in order of arrival");
    }

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
