//! An in-memory [`ImportJobs`] for reconciler tests: jobs change state only when the test says
//! so, any call can be made to fail once with a chosen error, and every call is logged. It speaks
//! the core's domain types, so no HTTP and no wire format is involved.

use crate::fake_calls::CallScript;
use async_trait::async_trait;
use modelstudio_core::api::{ApiError, ApiKey, Operation, RemoteError};
use modelstudio_core::import::jobs::{ImportJobs, Job, JobPage, JobState, ListQuery, NewJob};
use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;

#[derive(Default)]
struct State {
    /// By ID, in creation order (IDs are zero-padded counters).
    jobs: BTreeMap<String, Job>,
    next: u64,
    script: CallScript,
    /// Finished jobs whose DELETE is refused (as if a deployment used the model).
    refuse_delete: HashSet<String>,
}

/// The fake. Every method is synchronous under one lock, so a test reads a consistent state.
#[derive(Default)]
pub struct FakeJobs {
    state: Mutex<State>,
}

/// A remote error as the service words it.
pub fn remote_error(code: &str, http_status: u16) -> RemoteError {
    RemoteError {
        code: code.into(),
        message: format!("the fake answers {code}"),
        request_id: Some("fake-request".into()),
        http_status,
    }
}

impl FakeJobs {
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The next call of `op` fails with the error `make` builds.
    pub fn fail_next(&self, op: Operation, make: impl FnOnce() -> ApiError + Send + 'static) {
        self.state().script.fail_next(op, make);
    }

    /// Moves a job to `state` (FAILED jobs get an error code).
    pub fn set_state(&self, job_id: &str, state: JobState) {
        if let Some(job) = self.state().jobs.get_mut(job_id) {
            job.status_text = state.spelling().to_string();
            job.error_code =
                (state == JobState::Failed).then(|| "Failed to get files from OSS.".into());
            job.state = state;
        }
    }

    /// DELETE of this (finished) job answers OperationDenied.
    pub fn refuse_delete(&self, job_id: &str) {
        self.state().refuse_delete.insert(job_id.to_string());
    }

    /// Adds a job as if someone (or an earlier create) had made it.
    pub fn insert(&self, new: &NewJob) -> Job {
        let mut s = self.state();
        make(&mut s, new)
    }

    pub fn jobs(&self) -> Vec<Job> {
        self.state().jobs.values().cloned().collect()
    }

    /// Every call so far: the operation and the job it named.
    pub fn calls(&self) -> Vec<(Operation, Option<String>)> {
        self.state().script.calls().to_vec()
    }

    pub fn count(&self, op: Operation) -> usize {
        self.state().script.count(op)
    }

    /// Logs the call and takes its scripted failure, if one is due.
    fn enter(&self, op: Operation, job_id: Option<&str>) -> Result<(), ApiError> {
        let due = self.state().script.enter(op, job_id);
        due.map_or(Ok(()), |make| Err(make()))
    }
}

fn make(s: &mut State, new: &NewJob) -> Job {
    s.next += 1;
    let id = format!("fake-job-{:06}", s.next);
    let job = Job {
        id: id.clone(),
        model_name: Some(format!(
            "{}-offline-20260101-{:04}",
            new.base_model,
            s.next % 10_000
        )),
        display_name: Some(
            new.display_name
                .clone()
                .unwrap_or_else(|| new.base_model.clone()),
        ),
        storage: Some(new.storage.clone()),
        state: JobState::Pending,
        status_text: "PENDING".into(),
        created_at: Some("2026-01-01T00:00:00.000+00:00".into()),
        error_code: None,
    };
    s.jobs.insert(id, job.clone());
    job
}

fn not_found() -> ApiError {
    ApiError::NotFound(remote_error("NotFound", 404))
}

#[async_trait]
impl ImportJobs for FakeJobs {
    async fn create(&self, _key: &ApiKey, job: &NewJob) -> Result<Job, ApiError> {
        self.enter(Operation::Create, None)?;
        Ok(make(&mut self.state(), job))
    }

    async fn get(&self, _key: &ApiKey, job_id: &str) -> Result<Job, ApiError> {
        self.enter(Operation::Get, Some(job_id))?;
        self.state().jobs.get(job_id).cloned().ok_or_else(not_found)
    }

    async fn list(&self, _key: &ApiKey, query: &ListQuery) -> Result<JobPage, ApiError> {
        self.enter(Operation::List, None)?;
        let s = self.state();
        let matching: Vec<&Job> = s
            .jobs
            .values()
            .filter(|j| query.state.as_ref().is_none_or(|st| &j.state == st))
            .filter(|j| {
                query
                    .model_name
                    .as_ref()
                    .is_none_or(|m| j.model_name.as_ref() == Some(m))
            })
            .collect();
        let page_no = query.page_no.unwrap_or(1).max(1);
        let page_size = query.page_size.unwrap_or(10).clamp(1, 100);
        let skip = (page_no as usize - 1).saturating_mul(page_size as usize);
        Ok(JobPage {
            total: matching.len() as u64,
            page_no,
            page_size,
            items: matching
                .into_iter()
                .skip(skip)
                .take(page_size as usize)
                .cloned()
                .collect(),
        })
    }

    async fn delete(&self, _key: &ApiKey, job_id: &str) -> Result<Job, ApiError> {
        self.enter(Operation::Delete, Some(job_id))?;
        let mut s = self.state();
        let Some(job) = s.jobs.get(job_id) else {
            return Err(not_found());
        };
        if !job.state.is_terminal() || s.refuse_delete.contains(job_id) {
            return Err(ApiError::OperationDenied(RemoteError {
                message: "The import job is currently running and cannot be deleted.".into(),
                ..remote_error("OperationDenied", 400)
            }));
        }
        Ok(s.jobs.remove(job_id).expect("the job was just found"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use modelstudio_core::import::jobs::{Source, Storage, WeightType};

    fn new_job(name: &str) -> NewJob {
        NewJob {
            base_model: "qwen3-32b".into(),
            display_name: Some(name.into()),
            source: Source::Oss,
            weight_type: WeightType::Lora,
            storage: Storage {
                bucket_name: "b".into(),
                object_key: "k/".into(),
            },
        }
    }

    #[tokio::test]
    async fn jobs_move_only_when_told_and_deletion_follows_the_documented_rule() {
        let fake = FakeJobs::new();
        let key = ApiKey::new("sk-x").unwrap();
        let job = fake.create(&key, &new_job("a")).await.unwrap();
        assert_eq!(job.state, JobState::Pending);
        let denied = fake.delete(&key, &job.id).await.unwrap_err();
        assert!(matches!(denied, ApiError::OperationDenied(_)), "{denied}");
        fake.set_state(&job.id, JobState::Succeeded);
        fake.refuse_delete(&job.id);
        assert!(fake.delete(&key, &job.id).await.is_err());
        fake.state().refuse_delete.clear();
        assert_eq!(fake.delete(&key, &job.id).await.unwrap().id, job.id);
        assert!(matches!(
            fake.get(&key, &job.id).await,
            Err(ApiError::NotFound(_))
        ));
        assert_eq!(fake.count(Operation::Delete), 3);
    }

    #[tokio::test]
    async fn a_scripted_failure_hits_the_next_call_of_its_operation_only() {
        let fake = FakeJobs::new();
        let key = ApiKey::new("sk-x").unwrap();
        fake.fail_next(Operation::Create, || {
            ApiError::Server(remote_error("InternalError", 500))
        });
        let job = fake.insert(&new_job("a"));
        assert!(fake.get(&key, &job.id).await.is_ok());
        assert!(fake.create(&key, &new_job("b")).await.is_err());
        assert!(fake.create(&key, &new_job("b")).await.is_ok());
        for i in 0..150 {
            fake.insert(&new_job(&format!("n{i}")));
        }
        let query = ListQuery {
            page_no: Some(2),
            page_size: Some(100),
            ..Default::default()
        };
        let page = fake.list(&key, &query).await.unwrap();
        assert_eq!((page.total, page.items.len()), (152, 52));
        assert!(!page.has_more());
    }
}
