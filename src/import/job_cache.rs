//! Each workspace's view of its jobs, shared by every reconcile of that workspace.
//!
//! Jobs in progress: one poller task per workspace lists the active jobs (PENDING, RUNNING) with
//! the status filter, in pages of 100, once per poll interval, and reads on its own (once) each
//! followed job that a whole listing lacks (gone from the active states, or passed over by pages
//! that moved while creates landed); when a wave of jobs left at once, the first pages of the
//! finished states' listings read them for fewer calls than a GET each. It wakes the resources
//! whose job changed; a reconcile only reads what the poller holds and never waits for the quota
//! on a poll, so polls never hold the reconcile slots that creates need. The poller stops when no
//! job is followed: nothing active, no call.
//!
//! Finished jobs: listed by state (both spellings of success, and FAILED) once per resync
//! interval by the first reconcile that needs it.
//!
//! Which answer counts is the core's ([`ActiveJobs`]); this file holds the listings and makes the
//! calls.

use crate::crd::ModelImport;
use futures::StreamExt;
use kube::runtime::reflector::ObjectRef;
use modelstudio_core::api::{ApiError, ApiKey};
use modelstudio_core::import::decision::{finished_states, ActiveJobs, FinishedSearch, Lookup};
use modelstudio_core::import::jobs::{ImportJobs, Job, JobState};
use prometheus_client::metrics::histogram::Histogram;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tracing::warn;

/// How many jobs that left the active states a poller reads at once.
const READS_IN_FLIGHT: usize = 16;

/// Which jobs a listing holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListedStates {
    /// PENDING and RUNNING, listed once per poll interval by the workspace's poller.
    Active,
    /// SUCCESSED, SUCCEEDED and FAILED, listed once per resync interval.
    Finished,
}

/// A resource that follows a job in progress.
struct Follower {
    resource: ObjectRef<ModelImport>,
    /// The state the resource was last given.
    seen: JobState,
    /// When it started following: a listing begun before cannot show the job gone.
    since: Instant,
}

/// One workspace's jobs in progress, as its poller last saw them.
#[derive(Default)]
struct Workspace {
    key: Option<ApiKey>,
    listing: ActiveJobs,
    listed_at: Option<Instant>,
    followers: HashMap<String, Follower>,
    /// Jobs that left the active states, as read on their own, until their resource takes them.
    left: HashMap<String, Result<Job, ApiError>>,
    /// Why the last listing failed: the answer for every job of the workspace until one works.
    failure: Option<ApiError>,
    polling: bool,
}

#[derive(Default)]
struct FinishedCycle {
    listed_at: Option<Instant>,
    jobs: ActiveJobs,
}

pub struct JobCache {
    jobs: Arc<dyn ImportJobs>,
    poll_interval: Duration,
    /// Observes each poll cycle's length, start to start: the poll interval in effect.
    poll_cycle: Histogram,
    resync_interval: Duration,
    workspaces: Mutex<HashMap<String, Workspace>>,
    finished: Mutex<HashMap<String, Arc<tokio::sync::Mutex<FinishedCycle>>>>,
    changes: mpsc::UnboundedSender<ObjectRef<ModelImport>>,
    changes_inbox: Mutex<Option<mpsc::UnboundedReceiver<ObjectRef<ModelImport>>>>,
}

impl JobCache {
    pub fn new(
        jobs: Arc<dyn ImportJobs>,
        poll_interval: Duration,
        resync_interval: Duration,
        poll_cycle: Histogram,
    ) -> Arc<Self> {
        let (changes, inbox) = mpsc::unbounded_channel();
        Arc::new(JobCache {
            jobs,
            poll_interval,
            poll_cycle,
            resync_interval,
            workspaces: Mutex::default(),
            finished: Mutex::default(),
            changes,
            changes_inbox: Mutex::new(Some(inbox)),
        })
    }

    /// The resources to reconcile because their job changed: the status then follows the job
    /// within one poll cycle.
    pub fn take_changes(&self) -> Option<mpsc::UnboundedReceiver<ObjectRef<ModelImport>>> {
        self.changes_inbox
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    fn workspaces(&self) -> std::sync::MutexGuard<'_, HashMap<String, Workspace>> {
        self.workspaces.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A job in progress as its workspace's poller holds it; `None` when there is no news (not
    /// listed yet, or gone from the active states and not read yet: the poller wakes the
    /// resource once it is). The resource follows the job from now on.
    /// `shown` is the state the resource's status shows: the poller wakes it when the job is
    /// listed in another.
    pub fn active_job(
        self: &Arc<Self>,
        key: &ApiKey,
        workspace: &str,
        job_id: &str,
        resource: ObjectRef<ModelImport>,
        shown: JobState,
    ) -> Option<Result<Job, ApiError>> {
        {
            let mut all = self.workspaces();
            let ws = all.entry(workspace.to_string()).or_default();
            ws.key = Some(key.clone());
            let found = match ws.left.remove(job_id) {
                Some(read) => Some(read),
                None if ws.failure.is_some() => ws.failure.clone().map(Err),
                None => match ws.listing.lookup(job_id) {
                    Lookup::Listed(job) if ws.listed_at.is_some() => Some(Ok(*job)),
                    _ => None,
                },
            };
            match &found {
                Some(Ok(job)) if !job.state.is_terminal() => {
                    follow(ws, job_id, resource, job.state.clone());
                }
                Some(Ok(_)) => {
                    ws.followers.remove(job_id);
                }
                // A failed read or listing: the resource retries with its backoff.
                Some(Err(_)) => {}
                None => {
                    ws.followers
                        .entry(job_id.to_string())
                        .or_insert_with(|| Follower {
                            resource,
                            seen: shown,
                            since: Instant::now(),
                        });
                }
            }
            self.start_poller(workspace, ws);
            found
        }
    }

    /// Notes that `resource` has just created `job` in `workspace` with `key`: the poller
    /// follows it from its first listing on.
    pub fn created(
        self: &Arc<Self>,
        key: &ApiKey,
        workspace: &str,
        job: &Job,
        resource: ObjectRef<ModelImport>,
    ) {
        let mut all = self.workspaces();
        let ws = all.entry(workspace.to_string()).or_default();
        ws.key = Some(key.clone());
        follow(ws, &job.id, resource, job.state.clone());
        self.start_poller(workspace, ws);
    }

    /// Forgets a job whose resource is released.
    pub fn forget(&self, job_id: &str) {
        for ws in self.workspaces().values_mut() {
            ws.followers.remove(job_id);
            ws.left.remove(job_id);
        }
    }

    fn start_poller(self: &Arc<Self>, workspace: &str, ws: &mut Workspace) {
        if ws.polling || ws.followers.is_empty() {
            return;
        }
        ws.polling = true;
        let cache = Arc::downgrade(self);
        tokio::spawn(poll_workspace(cache, workspace.to_string()));
    }

    /// One poll cycle of a workspace: the listing, then the reads of the jobs that left; `false`
    /// when nothing is followed (the poller stops).
    async fn poll_once(&self, workspace: &str) -> bool {
        let key = {
            let mut all = self.workspaces();
            let Some(ws) = all.get_mut(workspace) else {
                return false;
            };
            if ws.followers.is_empty() {
                ws.polling = false;
                return false;
            }
            ws.key.clone()
        };
        let Some(key) = key else {
            return false;
        };
        let started = Instant::now();
        let (mut listing, pages) = match self.list_active(&key).await {
            Ok(listed) => listed,
            Err(e) => {
                self.failed(workspace, e);
                return true;
            }
        };
        let lacking = {
            let all = self.workspaces();
            all.get(workspace).map_or(0, |ws| {
                ws.followers
                    .iter()
                    .filter(|(id, f)| f.since < started && listing.lacks(id))
                    .count()
            })
        };
        if listing.moved() && lacking > pages {
            // Jobs came and went while paging and moved the pages: a second pass finds what the
            // first passed over, for fewer calls than a read of each job it lacks.
            match self.list_active(&key).await {
                Ok((second, _)) => listing.merge(second),
                Err(e) => {
                    self.failed(workspace, e);
                    return true;
                }
            }
        }
        let left: Vec<(String, ObjectRef<ModelImport>)> = {
            let mut all = self.workspaces();
            let Some(ws) = all.get_mut(workspace) else {
                return false;
            };
            let mut left = Vec::new();
            for (job_id, follower) in ws.followers.iter_mut() {
                match listing.listed_state(job_id) {
                    Some(state) if *state != follower.seen => {
                        follower.seen = state.clone();
                        let _ = self.changes.send(follower.resource.clone());
                    }
                    Some(_) => {}
                    // Gone from the lists (or the pages moved past it): its own read tells.
                    None if listing.lacks(job_id) && follower.since < started => {
                        left.push((job_id.clone(), follower.resource.clone()));
                    }
                    None => {}
                }
            }
            ws.listing = listing;
            ws.listed_at = Some(started);
            ws.failure = None;
            left
        };
        let left = self.take_from_finished_pages(&key, workspace, left).await;
        // Each job that left is read once, for its final state and error_code; several at a
        // time, so that their share of the quota is used.
        let key = &key;
        let mut reads = futures::stream::iter(left)
            .map(|(job_id, resource)| async move {
                let read = self.jobs.get(key, &job_id).await;
                (job_id, resource, read)
            })
            .buffer_unordered(READS_IN_FLIGHT);
        while let Some((job_id, resource, read)) = reads.next().await {
            let mut all = self.workspaces();
            let Some(ws) = all.get_mut(workspace) else {
                return false;
            };
            if ws.followers.remove(&job_id).is_some() {
                ws.left.insert(job_id, read);
                let _ = self.changes.send(resource);
            }
        }
        true
    }

    /// Every page of the jobs in progress, and how many pages that took.
    async fn list_active(&self, key: &ApiKey) -> Result<(ActiveJobs, usize), ApiError> {
        self.list_all(key, ActiveJobs::default()).await
    }

    /// Every page of `listing`'s states, and how many calls that took.
    async fn list_all(
        &self,
        key: &ApiKey,
        mut listing: ActiveJobs,
    ) -> Result<(ActiveJobs, usize), ApiError> {
        let mut pages = 0;
        while let Some(query) = listing.next_query() {
            listing.add(self.jobs.list(key, &query).await?);
            pages += 1;
        }
        Ok((listing, pages))
    }

    fn finished_cycle(&self, workspace: &str) -> Arc<tokio::sync::Mutex<FinishedCycle>> {
        let mut all = self.finished.lock().unwrap_or_else(|p| p.into_inner());
        all.entry(workspace.to_string()).or_default().clone()
    }

    /// When a wave of jobs left the active states at once, the first pages of the finished
    /// states' listings give their final states for fewer calls than a GET each
    /// ([`FinishedSearch`]). The jobs found are handed to their resources; the rest (deleted, or
    /// not on the pages read) are returned, to be read on their own.
    async fn take_from_finished_pages(
        &self,
        key: &ApiKey,
        workspace: &str,
        left: Vec<(String, ObjectRef<ModelImport>)>,
    ) -> Vec<(String, ObjectRef<ModelImport>)> {
        let mut search = FinishedSearch::new(left.iter().map(|(id, _)| id.clone()));
        if !search.worth_it() {
            return left;
        }
        while let Some(query) = search.next_query() {
            match self.jobs.list(key, &query).await {
                Ok(page) => search.add(&query, page),
                Err(e) => {
                    warn!(error = %e, "could not list the finished jobs; reading each on its own");
                    break;
                }
            }
        }
        let (found, missing) = search.finish();
        let mut all = self.workspaces();
        let Some(ws) = all.get_mut(workspace) else {
            return Vec::new();
        };
        for job in found {
            if let Some(follower) = ws.followers.remove(&job.id) {
                ws.left.insert(job.id.clone(), Ok(job));
                let _ = self.changes.send(follower.resource);
            }
        }
        left.into_iter()
            .filter(|(id, _)| missing.contains(id))
            .collect()
    }

    /// Keeps a failed listing as the workspace's answer; its followers are woken when the
    /// failure begins, so their status tells of it.
    fn failed(&self, workspace: &str, error: ApiError) {
        warn!(error = %error, "could not list the jobs in progress; trying again at the next poll");
        let mut all = self.workspaces();
        let Some(ws) = all.get_mut(workspace) else {
            return;
        };
        if ws.failure.is_none() {
            for follower in ws.followers.values() {
                let _ = self.changes.send(follower.resource.clone());
            }
        }
        ws.failure = Some(error);
    }

    /// A finished job as the workspace's resync listing shows it (made now if the last one is a
    /// resync interval old), or read on its own when a whole listing lacks it (deleted out of
    /// band). `None` when another reconcile is making the listing: no news this time.
    pub async fn finished_job(
        &self,
        key: &ApiKey,
        workspace: &str,
        job_id: &str,
    ) -> Option<Result<Job, ApiError>> {
        let cycle = self.finished_cycle(workspace);
        let listed = {
            // A reconcile never waits here for another's listing: it would hold its slot.
            let mut cycle = cycle.try_lock().ok()?;
            let stale = cycle
                .listed_at
                .is_none_or(|t| t.elapsed() >= self.resync_interval);
            if stale {
                let started = Instant::now();
                forget_listing(&mut cycle);
                match self.list_all(key, ActiveJobs::of(finished_states())).await {
                    Ok((jobs, _)) => {
                        cycle.jobs = jobs;
                        cycle.listed_at = Some(started);
                    }
                    Err(e) => return Some(Err(e)),
                }
            }
            match cycle.jobs.lookup(job_id) {
                Lookup::Listed(job) => Some(*job),
                Lookup::LeftActive => None,
                Lookup::Unknown => return None,
            }
        };
        match listed {
            Some(job) => Some(Ok(job)),
            None => Some(self.jobs.get(key, job_id).await),
        }
    }
}

/// Drops a workspace's listing of finished jobs (before it is made again).
fn forget_listing(cycle: &mut FinishedCycle) {
    cycle.jobs = ActiveJobs::of(finished_states());
    cycle.listed_at = None;
}

fn follow(ws: &mut Workspace, job_id: &str, resource: ObjectRef<ModelImport>, seen: JobState) {
    let since = Instant::now();
    ws.followers
        .entry(job_id.to_string())
        .and_modify(|f| {
            f.seen = seen.clone();
            f.resource = resource.clone();
        })
        .or_insert(Follower {
            resource,
            seen,
            since,
        });
}

/// The poller of one workspace: a cycle per poll interval while any job is followed. It holds
/// the cache weakly, so it ends with the controller.
async fn poll_workspace(cache: Weak<JobCache>, workspace: String) {
    let mut last: Option<Instant> = None;
    loop {
        let started = Instant::now();
        let interval = {
            let Some(cache) = cache.upgrade() else { return };
            if let Some(last) = last.replace(started) {
                cache
                    .poll_cycle
                    .observe(started.duration_since(last).as_secs_f64());
            }
            if !cache.poll_once(&workspace).await {
                return;
            }
            cache.poll_interval
        };
        tokio::time::sleep(interval.saturating_sub(started.elapsed())).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use modelstudio_core::api::Operation;
    use modelstudio_core::import::jobs::{NewJob, Source, Storage, WeightType};
    use modelstudio_testbed::FakeJobs;

    fn new_job(i: usize) -> NewJob {
        NewJob {
            base_model: "qwen3-32b".into(),
            display_name: Some(format!("job-{i}")),
            source: Source::Oss,
            weight_type: WeightType::Lora,
            storage: Storage {
                bucket_name: "b".into(),
                object_key: format!("k{i}/"),
            },
        }
    }

    fn resource(i: usize) -> ObjectRef<ModelImport> {
        ObjectRef::new(&format!("import-{i}")).within("ns")
    }

    fn cache(fake: &Arc<FakeJobs>, poll: Duration) -> Arc<JobCache> {
        JobCache::new(
            fake.clone(),
            poll,
            Duration::from_secs(3600),
            Histogram::new([1.0]),
        )
    }

    /// Lets the poller run its cycles until `done` holds (bounded).
    async fn until(done: impl Fn() -> bool) {
        for _ in 0..200 {
            if done() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the poller did not get there in time");
    }

    #[tokio::test]
    async fn a_cycle_lists_each_active_page_once_and_reads_only_jobs_that_left() {
        let fake = Arc::new(FakeJobs::new());
        let key = ApiKey::new("sk-x").unwrap();
        let ids: Vec<String> = (0..250).map(|i| fake.insert(&new_job(i)).id).collect();
        for id in &ids[..120] {
            fake.set_state(id, JobState::Running);
        }
        let cache = cache(&fake, Duration::from_secs(3600));
        let mut changes = cache.take_changes().unwrap();
        // Nothing is known before the first listing: no news, and the job is followed.
        assert!(cache
            .active_job(&key, "ws", &ids[0], resource(0), JobState::Pending)
            .is_none());
        until(|| fake.count(Operation::List) == 4).await;
        // PENDING: 130 in 2 pages; RUNNING: 120 in 2 pages.
        for (i, id) in ids.iter().enumerate() {
            let job = cache
                .active_job(&key, "ws", id, resource(i), JobState::Pending)
                .unwrap()
                .unwrap();
            assert_eq!(&job.id, id);
        }
        assert_eq!(fake.count(Operation::List), 4);
        assert_eq!(fake.count(Operation::Get), 0);
        // The first resource was woken: its job is RUNNING, not the PENDING it was given.
        assert_eq!(changes.try_recv().unwrap(), resource(0));
        assert!(changes.try_recv().is_err());
        drop(cache);
    }

    #[tokio::test]
    async fn a_job_that_leaves_the_active_states_is_read_once_and_its_resource_woken() {
        let fake = Arc::new(FakeJobs::new());
        let key = ApiKey::new("sk-x").unwrap();
        let done = fake.insert(&new_job(1)).id;
        let going = fake.insert(&new_job(2)).id;
        let cache = cache(&fake, Duration::from_millis(50));
        let mut changes = cache.take_changes().unwrap();
        assert!(cache
            .active_job(&key, "ws", &done, resource(1), JobState::Pending)
            .is_none());
        assert!(cache
            .active_job(&key, "ws", &going, resource(2), JobState::Pending)
            .is_none());
        until(|| fake.count(Operation::List) >= 2).await;
        assert!(cache
            .active_job(&key, "ws", &done, resource(1), JobState::Pending)
            .unwrap()
            .is_ok());
        fake.set_state(&done, JobState::Succeeded);
        until(|| fake.count(Operation::Get) == 1).await;
        assert_eq!(changes.recv().await.unwrap(), resource(1));
        let read = cache
            .active_job(&key, "ws", &done, resource(1), JobState::Pending)
            .unwrap()
            .unwrap();
        assert_eq!(read.state, JobState::Succeeded);
        // Read once: later cycles neither read nor follow it again.
        until(|| fake.count(Operation::List) >= 6).await;
        assert_eq!(fake.count(Operation::Get), 1);
        // With nothing followed, the poller stops: no call at all.
        cache.forget(&going);
        let lists = fake.count(Operation::List);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(fake.count(Operation::List) <= lists + 2);
        let settled = fake.count(Operation::List);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(fake.count(Operation::List), settled);
    }

    #[tokio::test]
    async fn a_wave_of_finished_jobs_is_read_from_the_finished_pages_and_only_a_deleted_one_on_its_own(
    ) {
        let fake = Arc::new(FakeJobs::new());
        let key = ApiKey::new("sk-x").unwrap();
        let ids: Vec<String> = (0..60).map(|i| fake.insert(&new_job(i)).id).collect();
        // The spawned poller makes the first cycle; the test makes the next one itself.
        let cache = cache(&fake, Duration::from_secs(3600));
        let mut changes = cache.take_changes().unwrap();
        for (i, id) in ids.iter().enumerate() {
            assert!(cache
                .active_job(&key, "ws", id, resource(i), JobState::Pending)
                .is_none());
        }
        until(|| fake.count(Operation::List) == 2).await;
        for (i, id) in ids.iter().enumerate() {
            assert!(cache
                .active_job(&key, "ws", id, resource(i), JobState::Pending)
                .is_some());
        }
        // 40 finish at once (one in four fails); one more is deleted out of band.
        for (i, id) in ids[..40].iter().enumerate() {
            let state = if i % 4 == 0 {
                JobState::Failed
            } else {
                JobState::Succeeded
            };
            fake.set_state(id, state);
        }
        fake.set_state(&ids[40], JobState::Succeeded);
        fake.delete(&key, &ids[40]).await.unwrap();
        assert!(cache.poll_once("ws").await);
        // The active states (a page each), then SUCCESSED, SUCCEEDED (empty) and FAILED, a page
        // each, instead of 41 GETs; only the deleted job, which no listing shows, is read alone.
        assert_eq!(fake.count(Operation::List), 2 + 2 + 3);
        assert_eq!(fake.count(Operation::Get), 1);
        let mut woken = std::collections::HashSet::new();
        while let Ok(resource) = changes.try_recv() {
            woken.insert(resource);
        }
        assert_eq!(woken, (0..41).map(resource).collect());
        for (i, id) in ids[..40].iter().enumerate() {
            let job = cache
                .active_job(&key, "ws", id, resource(i), JobState::Running)
                .unwrap()
                .unwrap();
            assert!(job.state.is_terminal(), "{job:?}");
        }
        let gone = cache
            .active_job(&key, "ws", &ids[40], resource(40), JobState::Running)
            .unwrap();
        assert!(matches!(gone, Err(ApiError::NotFound(_))), "{gone:?}");
        // The pages read for the wave are no resync (they need not hold every finished job):
        // a finished job's reconcile makes the whole listing of the finished states once.
        let job = cache
            .finished_job(&key, "ws", &ids[0])
            .await
            .unwrap()
            .unwrap();
        assert_eq!(job.state, JobState::Failed);
        assert_eq!(fake.count(Operation::List), 7 + 3);
        // A single job that leaves is cheaper to read on its own than to list for.
        fake.set_state(&ids[41], JobState::Succeeded);
        assert!(cache.poll_once("ws").await);
        assert_eq!(fake.count(Operation::List), 10 + 2);
        assert_eq!(fake.count(Operation::Get), 2);
    }

    #[tokio::test]
    async fn a_job_created_after_a_listing_began_is_not_taken_for_gone() {
        let fake = Arc::new(FakeJobs::new());
        let key = ApiKey::new("sk-x").unwrap();
        let old = fake.insert(&new_job(1)).id;
        let cache = cache(&fake, Duration::from_secs(3600));
        assert!(cache
            .active_job(&key, "ws", &old, resource(1), JobState::Pending)
            .is_none());
        until(|| fake.count(Operation::List) == 2).await;
        let new = fake.insert(&new_job(2));
        cache.created(&key, "ws", &new, resource(2));
        assert!(cache
            .active_job(&key, "ws", &new.id, resource(2), JobState::Pending)
            .is_none());
        assert_eq!(fake.count(Operation::Get), 0);
    }

    #[tokio::test]
    async fn finished_jobs_are_resynced_by_listing_both_spellings_and_a_deleted_one_is_read() {
        let fake = Arc::new(FakeJobs::new());
        let key = ApiKey::new("sk-x").unwrap();
        let done: Vec<String> = (0..150).map(|i| fake.insert(&new_job(i)).id).collect();
        for (i, id) in done.iter().enumerate() {
            let state = if i % 3 == 0 {
                JobState::Failed
            } else {
                JobState::Succeeded
            };
            fake.set_state(id, state);
        }
        let cache = cache(&fake, Duration::from_secs(3600));
        for id in &done {
            let job = cache.finished_job(&key, "ws", id).await.unwrap().unwrap();
            assert!(job.state.is_terminal());
        }
        // SUCCESSED: 100 in 1 page; SUCCEEDED (the other spelling): 1 empty page; FAILED: 50.
        assert_eq!(fake.count(Operation::List), 3);
        assert_eq!(fake.count(Operation::Get), 0);
        // A finished job the resync listing lacks was deleted out of band: read on its own.
        let gone = cache.finished_job(&key, "ws", "deleted-elsewhere").await;
        assert!(matches!(gone, Some(Err(ApiError::NotFound(_)))), "{gone:?}");
        assert_eq!(fake.count(Operation::Get), 1);
    }

    #[tokio::test]
    async fn a_failed_listing_is_retried_at_the_next_poll() {
        let fake = Arc::new(FakeJobs::new());
        let key = ApiKey::new("sk-x").unwrap();
        let id = fake.insert(&new_job(1)).id;
        fake.fail_next(Operation::List, || {
            ApiError::Server(modelstudio_testbed::remote_error("InternalError", 500))
        });
        let cache = cache(&fake, Duration::from_millis(50));
        assert!(cache
            .active_job(&key, "ws", &id, resource(1), JobState::Pending)
            .is_none());
        until(|| fake.count(Operation::List) >= 3).await;
        let job = cache
            .active_job(&key, "ws", &id, resource(1), JobState::Pending)
            .unwrap()
            .unwrap();
        assert_eq!(job.id, id);
        assert_eq!(fake.count(Operation::Get), 0);
        cache.forget(&id);
    }

    #[tokio::test]
    async fn each_cycle_after_the_first_observes_the_poll_interval_in_effect() {
        let fake = Arc::new(FakeJobs::new());
        let key = ApiKey::new("sk-x").unwrap();
        let id = fake.insert(&new_job(1)).id;
        let cycles = Histogram::new([0.04, 10.0]);
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register("poll_cycle_seconds", "", cycles.clone());
        let cache = JobCache::new(
            fake.clone(),
            Duration::from_millis(50),
            Duration::from_secs(3600),
            cycles,
        );
        let _ = cache.active_job(&key, "ws", &id, resource(1), JobState::Pending);
        // Three cycles (PENDING and RUNNING, a page each): two lengths, start to start.
        until(|| fake.count(Operation::List) >= 6).await;
        cache.forget(&id);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        let count = |line: &str| line.rsplit(' ').next().unwrap().parse::<f64>().unwrap();
        let observed = text
            .lines()
            .find(|l| l.starts_with("poll_cycle_seconds_count"))
            .map(count)
            .unwrap();
        assert!(observed >= 2.0, "{text}");
        // No cycle is shorter than the poll interval.
        let quick = text
            .lines()
            .find(|l| l.starts_with("poll_cycle_seconds_bucket{le=\"0.04\"}"))
            .map(count)
            .unwrap();
        assert_eq!(quick, 0.0, "{text}");
    }
}
