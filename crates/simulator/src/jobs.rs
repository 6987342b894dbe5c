//! The in-memory job store and the job lifecycle. Pure logic: time and randomness come from
//! the caller, so everything here is tested without HTTP or real clocks.
//!
//! Status is computed from the time elapsed since creation (no background task):
//! `PENDING` for `pending`, then `RUNNING` for `running`, then the planned outcome.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::time::{Duration, Instant};

use jiff::tz::TimeZone;
use jiff::Timestamp;
use rand::Rng;

use crate::control::{JobRecord, StorageInfo};

pub const PENDING: &str = "PENDING";
pub const RUNNING: &str = "RUNNING";
pub const FAILED: &str = "FAILED";

/// Timers and outcome rules shared by every job.
#[derive(Clone, Debug)]
pub struct Lifecycle {
    pub pending: Duration,
    pub running: Duration,
    /// `SUCCESSED` or `SUCCEEDED`.
    pub success_status: String,
    /// An object_key containing this ends FAILED; empty disables the rule.
    pub fail_marker: String,
    pub failure_message: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeightType {
    Lora,
    Full,
}

impl WeightType {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "lora" => Some(Self::Lora),
            "full" => Some(Self::Full),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lora => "lora",
            Self::Full => "full",
        }
    }
}

/// How a job ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// Carries the `error_code` text.
    Failed(String),
}

/// Where a job is in its lifecycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Pending,
    Running,
    Succeeded,
    Failed,
}

impl Phase {
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed)
    }
}

/// A validated create request.
#[derive(Clone, Debug)]
pub struct NewJob {
    pub base_model: String,
    pub display_name: Option<String>,
    pub weight_type: WeightType,
    pub bucket_name: String,
    pub object_key: String,
}

#[derive(Clone, Debug)]
pub struct Job {
    pub job_id: String,
    pub workspace_id: String,
    pub base_model: String,
    pub model_name: String,
    pub display_name: String,
    pub weight_type: WeightType,
    pub bucket_name: String,
    pub object_key: String,
    /// Wall-clock creation time, truncated to milliseconds (what `gmt_create` shows).
    pub gmt_create: Timestamp,
    /// Monotonic creation time, which drives the lifecycle.
    pub created_at: Instant,
    pub outcome: Outcome,
    /// Set when the job was told to finish early.
    pub finished_at: Option<Instant>,
    /// Phase when it was deleted (a deleted job no longer moves).
    pub deleted: Option<Phase>,
    pub lost_answer: bool,
    pub created_by: Option<String>,
}

impl Job {
    pub fn phase(&self, lc: &Lifecycle, now: Instant) -> Phase {
        if let Some(phase) = self.deleted {
            return phase;
        }
        let finished_early = self.finished_at.is_some_and(|t| now >= t);
        let elapsed = now.saturating_duration_since(self.created_at);
        if !finished_early {
            // A job is PENDING at its creation instant even with a zero pending timer.
            if elapsed.is_zero() || elapsed < lc.pending {
                return Phase::Pending;
            }
            if elapsed < lc.pending.saturating_add(lc.running) {
                return Phase::Running;
            }
        }
        match self.outcome {
            Outcome::Success => Phase::Succeeded,
            Outcome::Failed(_) => Phase::Failed,
        }
    }

    pub fn status(&self, lc: &Lifecycle, now: Instant) -> String {
        match self.phase(lc, now) {
            Phase::Pending => PENDING.to_owned(),
            Phase::Running => RUNNING.to_owned(),
            Phase::Succeeded => lc.success_status.clone(),
            Phase::Failed => FAILED.to_owned(),
        }
    }

    /// The `error_code` field: present only on FAILED jobs.
    pub fn error_code(&self, lc: &Lifecycle, now: Instant) -> Option<String> {
        match (&self.outcome, self.phase(lc, now)) {
            (Outcome::Failed(message), Phase::Failed) => Some(message.clone()),
            _ => None,
        }
    }

    pub fn gmt_create_string(&self) -> String {
        format_gmt_create(self.gmt_create)
    }

    pub fn record(&self, lc: &Lifecycle, now: Instant) -> JobRecord {
        JobRecord {
            job_id: self.job_id.clone(),
            workspace_id: self.workspace_id.clone(),
            base_model: self.base_model.clone(),
            model_name: self.model_name.clone(),
            display_name: self.display_name.clone(),
            source: "OSS".to_owned(),
            weight_type: self.weight_type.as_str().to_owned(),
            storage_info: StorageInfo {
                bucket_name: self.bucket_name.clone(),
                object_key: self.object_key.clone(),
            },
            status: self.status(lc, now),
            gmt_create: self.gmt_create_string(),
            error_code: self.error_code(lc, now),
            deleted: self.deleted.is_some(),
            lost_answer: self.lost_answer,
            created_by: self.created_by.clone(),
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SS.mmm+00:00`, the documented `gmt_create` shape.
pub fn format_gmt_create(ts: Timestamp) -> String {
    ts.to_zoned(TimeZone::UTC)
        .strftime("%Y-%m-%dT%H:%M:%S%.3f+00:00")
        .to_string()
}

/// List parameters, already validated.
#[derive(Clone, Debug, Default)]
pub struct ListQuery {
    /// 1-based.
    pub page_no: u64,
    pub page_size: u64,
    pub status: Option<String>,
    pub model_name: Option<String>,
}

#[derive(Debug)]
pub struct Page<'a> {
    pub total: u64,
    pub jobs: Vec<&'a Job>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CreateError {
    /// No free generated name or job id could be found (practically unreachable).
    NoFreeName,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeleteError {
    NotFound,
    /// The job is PENDING or RUNNING.
    NotFinished,
}

/// Why the control API could not set a job's outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OutcomeError {
    NotFound,
    Deleted,
    AlreadyFinished,
    InvalidStatus(String),
}

impl fmt::Display for OutcomeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFound => f.write_str("no job has this job_id"),
            Self::Deleted => f.write_str("the job was deleted"),
            Self::AlreadyFinished => {
                f.write_str("the job has already finished; its status is final")
            }
            Self::InvalidStatus(s) => write!(
                f,
                "status must be FAILED, SUCCESSED or SUCCEEDED, not {:?}",
                truncate(s, 40)
            ),
        }
    }
}

impl std::error::Error for OutcomeError {}

fn truncate(s: &str, max_chars: usize) -> String {
    s.chars().take(max_chars).collect()
}

const NAME_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
/// Bounded retries for unique ids and names.
const MAX_ATTEMPTS: usize = 1000;

#[derive(Debug, Default)]
pub struct JobStore {
    jobs: Vec<Job>,
    index: HashMap<String, usize>,
    model_names: HashSet<String>,
}

impl JobStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every job, deleted ones included, oldest first.
    pub fn all(&self) -> &[Job] {
        &self.jobs
    }

    #[allow(clippy::too_many_arguments)]
    pub fn create(
        &mut self,
        workspace_id: &str,
        request: NewJob,
        created_by: Option<String>,
        lc: &Lifecycle,
        rng: &mut impl Rng,
        now: Instant,
        wall: Timestamp,
    ) -> Result<&Job, CreateError> {
        let gmt_create = Timestamp::from_millisecond(wall.as_millisecond()).unwrap_or(wall);
        let job_id = (0..MAX_ATTEMPTS)
            .map(|_| new_uuid(rng))
            .find(|id| !self.index.contains_key(id))
            .ok_or(CreateError::NoFreeName)?;
        let date = gmt_create
            .to_zoned(TimeZone::UTC)
            .strftime("%Y%m%d")
            .to_string();
        let model_name = (0..MAX_ATTEMPTS)
            .map(|_| {
                let suffix: String = (0..4)
                    .map(|_| char::from(NAME_ALPHABET[rng.random_range(0..NAME_ALPHABET.len())]))
                    .collect();
                format!("{}-offline-{date}-{suffix}", request.base_model)
            })
            .find(|name| !self.model_names.contains(name))
            .ok_or(CreateError::NoFreeName)?;
        let fails = !lc.fail_marker.is_empty() && request.object_key.contains(&lc.fail_marker);
        let outcome = if fails {
            Outcome::Failed(lc.failure_message.clone())
        } else {
            Outcome::Success
        };
        let display_name = request
            .display_name
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| request.base_model.clone());
        let job = Job {
            job_id: job_id.clone(),
            workspace_id: workspace_id.to_owned(),
            base_model: request.base_model,
            model_name: model_name.clone(),
            display_name,
            weight_type: request.weight_type,
            bucket_name: request.bucket_name,
            object_key: request.object_key,
            gmt_create,
            created_at: now,
            outcome,
            finished_at: None,
            deleted: None,
            lost_answer: false,
            created_by,
        };
        self.model_names.insert(model_name);
        self.index.insert(job_id, self.jobs.len());
        self.jobs.push(job);
        Ok(&self.jobs[self.jobs.len() - 1])
    }

    fn position(&self, job_id: &str) -> Option<usize> {
        self.index.get(job_id).copied()
    }

    /// A live job of this workspace. Other workspaces' and deleted jobs are invisible.
    pub fn get(&self, workspace_id: &str, job_id: &str) -> Option<&Job> {
        let job = &self.jobs[self.position(job_id)?];
        (job.workspace_id == workspace_id && job.deleted.is_none()).then_some(job)
    }

    pub fn list(
        &self,
        workspace_id: &str,
        query: &ListQuery,
        lc: &Lifecycle,
        now: Instant,
    ) -> Page<'_> {
        let mut matching: Vec<&Job> = self
            .jobs
            .iter()
            .filter(|j| j.workspace_id == workspace_id && j.deleted.is_none())
            .filter(|j| query.model_name.as_ref().is_none_or(|m| &j.model_name == m))
            .filter(|j| {
                query
                    .status
                    .as_ref()
                    .is_none_or(|s| &j.status(lc, now) == s)
            })
            .collect();
        // Newest first; the job_id breaks ties between jobs of the same millisecond.
        matching.sort_by(|a, b| {
            b.gmt_create
                .cmp(&a.gmt_create)
                .then_with(|| a.job_id.cmp(&b.job_id))
        });
        let total = matching.len() as u64;
        let skip = query
            .page_no
            .saturating_sub(1)
            .saturating_mul(query.page_size);
        let jobs = matching
            .into_iter()
            .skip(usize::try_from(skip).unwrap_or(usize::MAX))
            .take(usize::try_from(query.page_size).unwrap_or(usize::MAX))
            .collect();
        Page { total, jobs }
    }

    /// Deletes a finished job; returns it as it was at deletion.
    pub fn delete(
        &mut self,
        workspace_id: &str,
        job_id: &str,
        lc: &Lifecycle,
        now: Instant,
    ) -> Result<&Job, DeleteError> {
        self.get(workspace_id, job_id)
            .ok_or(DeleteError::NotFound)?;
        let pos = self.position(job_id).ok_or(DeleteError::NotFound)?;
        let job = &mut self.jobs[pos];
        let phase = job.phase(lc, now);
        if !phase.is_terminal() {
            return Err(DeleteError::NotFinished);
        }
        job.deleted = Some(phase);
        Ok(job)
    }

    /// Marks a job whose create answer was replaced by an error.
    pub fn mark_lost(&mut self, job_id: &str) {
        if let Some(pos) = self.position(job_id) {
            self.jobs[pos].lost_answer = true;
        }
    }

    /// Control API: forces the outcome of a job that has not finished yet, and can end it now.
    pub fn set_outcome(
        &mut self,
        job_id: &str,
        outcome: Option<Outcome>,
        finish_now: bool,
        lc: &Lifecycle,
        now: Instant,
    ) -> Result<&Job, OutcomeError> {
        let pos = self.position(job_id).ok_or(OutcomeError::NotFound)?;
        let job = &mut self.jobs[pos];
        if job.deleted.is_some() {
            return Err(OutcomeError::Deleted);
        }
        // Statuses clients have seen as final must stay final, as on the real service.
        if job.phase(lc, now).is_terminal() {
            return Err(OutcomeError::AlreadyFinished);
        }
        if let Some(outcome) = outcome {
            job.outcome = outcome;
        }
        if finish_now {
            job.finished_at = Some(now);
        }
        Ok(job)
    }
}

/// A v4 UUID drawn from `rng` (seedable, unlike `Uuid::new_v4`).
pub fn new_uuid(rng: &mut impl Rng) -> String {
    uuid::Builder::from_random_bytes(rng.random())
        .into_uuid()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn lc() -> Lifecycle {
        Lifecycle {
            pending: Duration::from_secs(10),
            running: Duration::from_secs(20),
            success_status: "SUCCESSED".into(),
            fail_marker: "simulate-failure".into(),
            failure_message: "boom".into(),
        }
    }

    fn new_job(object_key: &str) -> NewJob {
        NewJob {
            base_model: "qwen3-8b".into(),
            display_name: None,
            weight_type: WeightType::Lora,
            bucket_name: "b".into(),
            object_key: object_key.into(),
        }
    }

    fn wall() -> Timestamp {
        "2024-01-02T03:04:05.678901Z".parse().unwrap()
    }

    struct Fixture {
        store: JobStore,
        rng: StdRng,
        t0: Instant,
        lc: Lifecycle,
    }

    impl Fixture {
        fn new() -> Self {
            Self {
                store: JobStore::new(),
                rng: StdRng::seed_from_u64(1),
                t0: Instant::now(),
                lc: lc(),
            }
        }

        fn create(&mut self, ws: &str, key: &str, at: Duration) -> String {
            self.create_at(ws, key, at, wall())
        }

        fn create_at(&mut self, ws: &str, key: &str, at: Duration, wall: Timestamp) -> String {
            self.store
                .create(
                    ws,
                    new_job(key),
                    None,
                    &self.lc,
                    &mut self.rng,
                    self.t0 + at,
                    wall,
                )
                .unwrap()
                .job_id
                .clone()
        }

        fn status(&self, ws: &str, id: &str, at: Duration) -> String {
            self.store
                .get(ws, id)
                .unwrap()
                .status(&self.lc, self.t0 + at)
        }
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn create_fills_generated_fields() {
        let mut f = Fixture::new();
        let id = f.create("ws1", "models/a/", secs(0));
        let job = f.store.get("ws1", &id).unwrap();
        assert_eq!(uuid::Uuid::parse_str(&id).unwrap().get_version_num(), 4);
        assert_eq!(job.display_name, "qwen3-8b");
        assert_eq!(job.gmt_create_string(), "2024-01-02T03:04:05.678+00:00");
        let suffix = job
            .model_name
            .strip_prefix("qwen3-8b-offline-20240102-")
            .unwrap();
        assert_eq!(suffix.len(), 4);
        assert!(suffix
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
        assert_eq!(job.error_code(&f.lc, f.t0), None);
    }

    #[test]
    fn generated_names_are_unique() {
        let mut f = Fixture::new();
        let names: HashSet<String> = (0..2000)
            .map(|_| {
                let id = f.create("ws", "k/", secs(0));
                f.store.get("ws", &id).unwrap().model_name.clone()
            })
            .collect();
        assert_eq!(names.len(), 2000);
    }

    #[test]
    fn display_name_is_kept() {
        let mut f = Fixture::new();
        let mut req = new_job("k/");
        req.display_name = Some("我的模型".into());
        let job = f
            .store
            .create(
                "ws",
                req,
                Some("c1".into()),
                &f.lc,
                &mut f.rng,
                f.t0,
                wall(),
            )
            .unwrap();
        assert_eq!(job.display_name, "我的模型");
        assert_eq!(job.created_by.as_deref(), Some("c1"));
    }

    #[test]
    fn lifecycle_success() {
        let mut f = Fixture::new();
        let id = f.create("ws", "k/", secs(0));
        assert_eq!(f.status("ws", &id, secs(0)), "PENDING");
        assert_eq!(f.status("ws", &id, secs(9)), "PENDING");
        assert_eq!(f.status("ws", &id, secs(10)), "RUNNING");
        assert_eq!(f.status("ws", &id, secs(29)), "RUNNING");
        assert_eq!(f.status("ws", &id, secs(30)), "SUCCESSED");
        assert_eq!(
            f.store
                .get("ws", &id)
                .unwrap()
                .error_code(&f.lc, f.t0 + secs(30)),
            None
        );
    }

    #[test]
    fn lifecycle_with_zero_timers() {
        let mut f = Fixture::new();
        f.lc.pending = Duration::ZERO;
        f.lc.running = Duration::ZERO;
        let id = f.create("ws", "k/", secs(0));
        assert_eq!(f.status("ws", &id, secs(0)), "PENDING");
        assert_eq!(f.status("ws", &id, Duration::from_nanos(1)), "SUCCESSED");
    }

    #[test]
    fn success_spelling_is_configurable() {
        let mut f = Fixture::new();
        f.lc.success_status = "SUCCEEDED".into();
        let id = f.create("ws", "k/", secs(0));
        assert_eq!(f.status("ws", &id, secs(100)), "SUCCEEDED");
    }

    #[test]
    fn fail_marker_fails_job() {
        let mut f = Fixture::new();
        let id = f.create("ws", "x/simulate-failure/", secs(0));
        assert_eq!(f.status("ws", &id, secs(15)), "RUNNING");
        let job = f.store.get("ws", &id).unwrap();
        assert_eq!(job.error_code(&f.lc, f.t0 + secs(15)), None);
        assert_eq!(f.status("ws", &id, secs(30)), "FAILED");
        let job = f.store.get("ws", &id).unwrap();
        assert_eq!(
            job.error_code(&f.lc, f.t0 + secs(30)).as_deref(),
            Some("boom")
        );
    }

    #[test]
    fn empty_fail_marker_never_fails() {
        let mut f = Fixture::new();
        f.lc.fail_marker.clear();
        let id = f.create("ws", "x/simulate-failure/", secs(0));
        assert_eq!(f.status("ws", &id, secs(30)), "SUCCESSED");
    }

    #[test]
    fn jobs_are_scoped_by_workspace() {
        let mut f = Fixture::new();
        let id = f.create("ws1", "k/", secs(0));
        assert!(f.store.get("ws2", &id).is_none());
        let q = ListQuery {
            page_no: 1,
            page_size: 10,
            ..Default::default()
        };
        assert_eq!(f.store.list("ws2", &q, &f.lc, f.t0).total, 0);
        assert_eq!(
            f.store
                .delete("ws2", &id, &f.lc, f.t0 + secs(100))
                .unwrap_err(),
            DeleteError::NotFound
        );
        assert_eq!(f.store.list("ws1", &q, &f.lc, f.t0).total, 1);
    }

    #[test]
    fn delete_rules() {
        let mut f = Fixture::new();
        let id = f.create("ws", "k/", secs(0));
        let lc = f.lc.clone();
        for at in [secs(0), secs(15)] {
            assert_eq!(
                f.store.delete("ws", &id, &lc, f.t0 + at).unwrap_err(),
                DeleteError::NotFinished
            );
        }
        let job = f.store.delete("ws", &id, &lc, f.t0 + secs(30)).unwrap();
        assert_eq!(job.status(&lc, f.t0 + secs(30)), "SUCCESSED");
        assert!(f.store.get("ws", &id).is_none());
        assert_eq!(
            f.store.delete("ws", &id, &lc, f.t0 + secs(31)).unwrap_err(),
            DeleteError::NotFound
        );
        assert_eq!(
            f.store.delete("ws", "nope", &lc, f.t0).unwrap_err(),
            DeleteError::NotFound
        );
        // The record survives for the control API.
        assert!(f.store.all()[0].deleted.is_some());
    }

    #[test]
    fn failed_job_can_be_deleted_and_keeps_error_code() {
        let mut f = Fixture::new();
        let id = f.create("ws", "simulate-failure/", secs(0));
        let lc = f.lc.clone();
        let job = f.store.delete("ws", &id, &lc, f.t0 + secs(31)).unwrap();
        assert_eq!(
            job.error_code(&lc, f.t0 + secs(99)).as_deref(),
            Some("boom")
        );
    }

    #[test]
    fn list_sorts_filters_and_pages() {
        let mut f = Fixture::new();
        let base = wall();
        let mut ids = Vec::new();
        for i in 0..25 {
            let ts = base + jiff::SignedDuration::from_secs(i);
            let key = if i % 5 == 0 {
                "simulate-failure/"
            } else {
                "k/"
            };
            ids.push(f.create_at("ws", key, secs(0), ts));
        }
        // Same millisecond as the newest: tie broken by job_id.
        let twin = f.create_at(
            "ws",
            "k/",
            secs(0),
            base + jiff::SignedDuration::from_secs(24),
        );
        let lc = f.lc.clone();
        let at = f.t0 + secs(100);
        let q = |page_no, page_size| ListQuery {
            page_no,
            page_size,
            ..Default::default()
        };
        let page = f.store.list("ws", &q(1, 10), &lc, at);
        assert_eq!(page.total, 26);
        assert_eq!(page.jobs.len(), 10);
        let mut newest = [ids[24].clone(), twin.clone()];
        newest.sort();
        assert_eq!(page.jobs[0].job_id, newest[0]);
        assert_eq!(page.jobs[1].job_id, newest[1]);
        assert_eq!(page.jobs[2].job_id, ids[23]);
        let page3 = f.store.list("ws", &q(3, 10), &lc, at);
        assert_eq!(page3.jobs.len(), 6);
        assert_eq!(page3.jobs[5].job_id, ids[0]);
        assert!(f.store.list("ws", &q(4, 10), &lc, at).jobs.is_empty());
        assert!(f
            .store
            .list("ws", &q(u64::MAX, u64::MAX), &lc, at)
            .jobs
            .is_empty());

        let failed = ListQuery {
            status: Some("FAILED".into()),
            ..q(1, 100)
        };
        let page = f.store.list("ws", &failed, &lc, at);
        assert_eq!(page.total, 5);
        let pending = ListQuery {
            status: Some("PENDING".into()),
            ..q(1, 100)
        };
        assert_eq!(f.store.list("ws", &pending, &lc, at).total, 0);
        assert_eq!(f.store.list("ws", &pending, &lc, f.t0).total, 26);
        // Exact match on the spelling in use.
        let other_spelling = ListQuery {
            status: Some("SUCCEEDED".into()),
            ..q(1, 100)
        };
        assert_eq!(f.store.list("ws", &other_spelling, &lc, at).total, 0);

        let name = f.store.get("ws", &ids[3]).unwrap().model_name.clone();
        let by_name = ListQuery {
            model_name: Some(name),
            ..q(1, 100)
        };
        let page = f.store.list("ws", &by_name, &lc, at);
        assert_eq!(page.total, 1);
        assert_eq!(page.jobs[0].job_id, ids[3]);
        let by_base = ListQuery {
            model_name: Some("qwen3-8b".into()),
            ..q(1, 100)
        };
        assert_eq!(f.store.list("ws", &by_base, &lc, at).total, 0);
    }

    #[test]
    fn forced_outcome() {
        let mut f = Fixture::new();
        let lc = f.lc.clone();
        let a = f.create("ws", "k/", secs(0));
        f.store
            .set_outcome(&a, Some(Outcome::Failed("nope".into())), false, &lc, f.t0)
            .unwrap();
        assert_eq!(f.status("ws", &a, secs(15)), "RUNNING");
        assert_eq!(f.status("ws", &a, secs(30)), "FAILED");

        let b = f.create("ws", "k/", secs(0));
        let job = f
            .store
            .set_outcome(&b, None, true, &lc, f.t0 + secs(1))
            .unwrap();
        assert_eq!(job.status(&lc, f.t0 + secs(1)), "SUCCESSED");

        assert_eq!(
            f.store
                .set_outcome(
                    &b,
                    Some(Outcome::Failed("x".into())),
                    false,
                    &lc,
                    f.t0 + secs(2)
                )
                .unwrap_err(),
            OutcomeError::AlreadyFinished
        );
        f.store.delete("ws", &b, &lc, f.t0 + secs(2)).unwrap();
        assert_eq!(
            f.store.set_outcome(&b, None, true, &lc, f.t0).unwrap_err(),
            OutcomeError::Deleted
        );
        assert_eq!(
            f.store.set_outcome("x", None, true, &lc, f.t0).unwrap_err(),
            OutcomeError::NotFound
        );
    }

    #[test]
    fn seeded_ids_repeat() {
        let ids = |seed| {
            let mut f = Fixture::new();
            f.rng = StdRng::seed_from_u64(seed);
            (0..3)
                .map(|_| f.create("ws", "k/", secs(0)))
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(5), ids(5));
        assert_ne!(ids(5), ids(6));
    }
}
