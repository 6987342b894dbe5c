//! The poll cycle's view of each workspace: its active jobs (PENDING, RUNNING), listed with the
//! status filter in pages of 100 at most once per poll interval, shared by every reconcile of
//! that workspace. A job the listing shows is not read on its own; one it lacks has left the
//! active states (finished or deleted) and is read once. Which answer counts is the core's
//! ([`ActiveJobs`]); this file only holds the listing and makes the calls.

use kube::api::DynamicObject;
use kube::runtime::reflector::ObjectRef;
use modelstudio_core::decision::{finished_states, ActiveJobs, Lookup};
use modelstudio_core::remote::{ApiError, ApiKey, ImportJobs, Job, JobState};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

enum Listed {
    Job(Box<Job>),
    Left,
    Unknown,
}

#[derive(Default)]
struct Cycle {
    listed_at: Option<Instant>,
    active: ActiveJobs,
}

/// A listing that the reconciles of one cycle wait on, one at a time.
type SharedCycle = Arc<tokio::sync::Mutex<Cycle>>;

/// Which jobs a listing holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// PENDING and RUNNING, listed once per poll interval.
    Active,
    /// SUCCESSED, SUCCEEDED and FAILED, listed once per resync interval.
    Finished,
}

/// A resource that follows a job in progress: woken when a listing shows the job changed.
struct Follower {
    resource: ObjectRef<DynamicObject>,
    seen: JobState,
}

/// One listing per workspace (by key fingerprint), kind and interval.
pub struct JobCache {
    poll_interval: Duration,
    resync_interval: Duration,
    workspaces: Mutex<HashMap<(String, Kind), SharedCycle>>,
    /// By workspace and job id; a job leaves when a listing shows it left the active states.
    followers: Mutex<HashMap<(String, String), Follower>>,
    changes: mpsc::UnboundedSender<ObjectRef<DynamicObject>>,
    changes_inbox: Mutex<Option<mpsc::UnboundedReceiver<ObjectRef<DynamicObject>>>>,
}

impl JobCache {
    pub fn new(poll_interval: Duration, resync_interval: Duration) -> Self {
        let (changes, inbox) = mpsc::unbounded_channel();
        JobCache {
            poll_interval,
            resync_interval,
            workspaces: Mutex::default(),
            followers: Mutex::default(),
            changes,
            changes_inbox: Mutex::new(Some(inbox)),
        }
    }

    /// The resources to reconcile because a listing showed their job changed: the status then
    /// follows the job within one poll cycle, not one cycle plus the resource's own requeue.
    pub fn take_changes(&self) -> Option<mpsc::UnboundedReceiver<ObjectRef<DynamicObject>>> {
        self.changes_inbox
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// Notes that `resource` last saw its job `job_id` of `workspace` in progress, in `seen`.
    pub fn follow(
        &self,
        workspace: &str,
        job_id: &str,
        resource: ObjectRef<DynamicObject>,
        seen: JobState,
    ) {
        let mut followers = self.followers.lock().unwrap_or_else(|p| p.into_inner());
        let key = (workspace.to_string(), job_id.to_string());
        followers.insert(key, Follower { resource, seen });
    }

    /// Wakes the followers of the workspace's jobs that the new listing has news of.
    fn announce(&self, workspace: &str, listing: &ActiveJobs) {
        let mut followers = self.followers.lock().unwrap_or_else(|p| p.into_inner());
        followers.retain(|(ws, job_id), follower| {
            if ws != workspace || !listing.news(job_id, &follower.seen) {
                return true;
            }
            let _ = self.changes.send(follower.resource.clone());
            match listing.lookup(job_id) {
                Lookup::Listed(job) => {
                    follower.seen = job.state.clone();
                    true
                }
                _ => false,
            }
        });
    }

    fn cycle(&self, workspace: &str, kind: Kind) -> SharedCycle {
        let mut all = self.workspaces.lock().unwrap_or_else(|p| p.into_inner());
        all.entry((workspace.to_string(), kind))
            .or_default()
            .clone()
    }

    /// The job as this poll cycle sees it: from the workspace's listing (made now if the last
    /// one is a poll interval old), or read on its own when a whole listing shows it left the
    /// active states; `None` when the listing cannot tell (no news this cycle). `seen_at` is
    /// when the job was last created or read: a listing older than that cannot show it gone.
    #[allow(clippy::too_many_arguments)]
    pub async fn job(
        &self,
        jobs: &dyn ImportJobs,
        key: &ApiKey,
        workspace: &str,
        kind: Kind,
        job_id: &str,
        seen_at: Option<Instant>,
    ) -> Result<Option<Job>, ApiError> {
        let cycle = self.cycle(workspace, kind);
        let interval = match kind {
            Kind::Active => self.poll_interval,
            Kind::Finished => self.resync_interval,
        };
        let listed = {
            // One listing at a time per workspace: the reconciles of a cycle wait for it.
            let mut cycle = cycle.lock().await;
            let stale = cycle.listed_at.is_none_or(|t| t.elapsed() >= interval);
            if stale {
                // A listing counts from its start: a job made while it pages may be missing.
                let started = Instant::now();
                let mut active = match kind {
                    Kind::Active => ActiveJobs::default(),
                    Kind::Finished => ActiveJobs::of(finished_states()),
                };
                while let Some(query) = active.next_query() {
                    match jobs.list(key, &query).await {
                        Ok(page) => active.add(page),
                        // The caller retries with backoff; the next reconcile lists again.
                        Err(e) => return Err(e),
                    }
                }
                if kind == Kind::Active {
                    self.announce(workspace, &active);
                }
                cycle.active = active;
                cycle.listed_at = Some(started);
            }
            let predates = cycle
                .listed_at
                .zip(seen_at)
                .is_some_and(|(listed, seen)| listed < seen);
            match cycle.active.lookup(job_id) {
                Lookup::Listed(job) => Listed::Job(Box::new(job.clone())),
                Lookup::LeftActive if predates => Listed::Unknown,
                Lookup::LeftActive => Listed::Left,
                Lookup::Unknown => Listed::Unknown,
            }
        };
        match listed {
            Listed::Job(job) => Ok(Some(*job)),
            Listed::Left => jobs.get(key, job_id).await.map(Some),
            Listed::Unknown => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use modelstudio_core::remote::{JobState, NewJob, Operation, Source, Storage, WeightType};
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

    #[tokio::test]
    async fn a_cycle_lists_each_active_page_once_and_reads_only_jobs_that_left() {
        let fake = FakeJobs::new();
        let key = ApiKey::new("sk-x").unwrap();
        let ids: Vec<String> = (0..250).map(|i| fake.insert(&new_job(i)).id).collect();
        for id in &ids[..120] {
            fake.set_state(id, JobState::Running);
        }
        fake.set_state(&ids[0], JobState::Succeeded);
        let cache = JobCache::new(Duration::from_secs(3600), Duration::from_secs(3600));
        for id in &ids {
            let job = cache
                .job(&fake, &key, "ws", Kind::Active, id, None)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(&job.id, id);
        }
        // PENDING: 130 in 2 pages; RUNNING: 119 in 2 pages; the finished one read on its own.
        assert_eq!(fake.count(Operation::List), 4);
        assert_eq!(fake.count(Operation::Get), 1);
        let finished = cache
            .job(&fake, &key, "ws", Kind::Active, &ids[0], None)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(finished.state, JobState::Succeeded);
        // Another workspace has its own listing (the fake shows it the same jobs).
        cache
            .job(&fake, &key, "other", Kind::Active, &ids[5], None)
            .await
            .unwrap();
        assert_eq!(fake.count(Operation::List), 8);
        assert_eq!(fake.count(Operation::Get), 2);
    }

    #[tokio::test]
    async fn a_job_made_after_the_listing_is_no_news_until_the_next_cycle() {
        let fake = FakeJobs::new();
        let key = ApiKey::new("sk-x").unwrap();
        let old = fake.insert(&new_job(1)).id;
        let cache = JobCache::new(Duration::from_secs(3600), Duration::from_secs(3600));
        cache
            .job(&fake, &key, "ws", Kind::Active, &old, None)
            .await
            .unwrap()
            .unwrap();
        let new = fake.insert(&new_job(2)).id;
        let got = cache
            .job(&fake, &key, "ws", Kind::Active, &new, Some(Instant::now()))
            .await
            .unwrap();
        assert_eq!(got, None);
        assert_eq!(fake.count(Operation::Get), 0);
    }

    #[tokio::test]
    async fn finished_jobs_are_resynced_by_listing_both_spellings_and_a_deleted_one_is_read() {
        let fake = FakeJobs::new();
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
        let cache = JobCache::new(Duration::from_secs(3600), Duration::from_secs(3600));
        for id in &done {
            let job = cache
                .job(&fake, &key, "ws", Kind::Finished, id, None)
                .await
                .unwrap()
                .unwrap();
            assert!(job.state.is_terminal());
        }
        // SUCCESSED: 100 in 1 page; SUCCEEDED (the other spelling): 1 empty page; FAILED: 50.
        assert_eq!(fake.count(Operation::List), 3);
        assert_eq!(fake.count(Operation::Get), 0);
        let queries: Vec<_> = fake.calls().into_iter().map(|(op, _)| op).collect();
        assert!(queries.iter().all(|op| *op == Operation::List));
        // A finished job the resync listing lacks was deleted out of band: read on its own.
        let gone = cache
            .job(&fake, &key, "ws", Kind::Finished, "deleted-elsewhere", None)
            .await;
        assert!(matches!(gone, Err(ApiError::NotFound(_))), "{gone:?}");
        assert_eq!(fake.count(Operation::Get), 1);
    }

    #[tokio::test]
    async fn a_failed_listing_is_the_caller_error_and_the_next_call_lists_again() {
        let fake = FakeJobs::new();
        let key = ApiKey::new("sk-x").unwrap();
        let id = fake.insert(&new_job(1)).id;
        fake.fail_next(Operation::List, || {
            ApiError::Server(modelstudio_testbed::remote_error("InternalError", 500))
        });
        let cache = JobCache::new(Duration::from_secs(3600), Duration::from_secs(3600));
        assert!(matches!(
            cache.job(&fake, &key, "ws", Kind::Active, &id, None).await,
            Err(ApiError::Server(_))
        ));
        let job = cache
            .job(&fake, &key, "ws", Kind::Active, &id, None)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(job.id, id);
        assert_eq!(fake.count(Operation::Get), 0);
    }
}
