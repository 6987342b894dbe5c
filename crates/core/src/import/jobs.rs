//! The Model Studio import API in domain terms: the jobs, their states, and the [`ImportJobs`]
//! trait that the HTTP client, the rate-limit and metrics layers and the in-memory fake
//! implement. The ways a call fails are shared with the deployment API ([`crate::api`]). The
//! wire format (JSON field names and spellings) is the HTTP client's business, not this module's.

use crate::api::{ApiError, ApiKey, Operation, Page};
use async_trait::async_trait;

/// Where the weights come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Source {
    /// Alibaba Cloud Object Storage Service.
    #[default]
    Oss,
}

/// The kind of imported weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightType {
    Lora,
    Full,
}

/// An OSS directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Storage {
    pub bucket_name: String,
    pub object_key: String,
}

/// What a create asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    /// The base model ID (sent as `model_name`).
    pub base_model: String,
    pub display_name: Option<String>,
    pub source: Source,
    pub weight_type: WeightType,
    pub storage: Storage,
}

/// A job's state. Both documented spellings of success are success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobState {
    Pending,
    Running,
    Succeeded,
    Failed,
    /// A status the reference does not document; kept as sent.
    Unknown(String),
}

impl JobState {
    /// Reads a status as the service spells it (`SUCCESSED` or `SUCCEEDED`, any case).
    pub fn parse(s: &str) -> Self {
        match s.trim().to_ascii_uppercase().as_str() {
            "PENDING" => JobState::Pending,
            "RUNNING" => JobState::Running,
            "SUCCESSED" | "SUCCEEDED" => JobState::Succeeded,
            "FAILED" => JobState::Failed,
            _ => JobState::Unknown(s.to_string()),
        }
    }

    /// The state as the service spells it in a status filter (the documented `SUCCESSED`).
    pub fn spelling(&self) -> &str {
        match self {
            JobState::Pending => "PENDING",
            JobState::Running => "RUNNING",
            JobState::Succeeded => "SUCCESSED",
            JobState::Failed => "FAILED",
            JobState::Unknown(s) => s,
        }
    }

    /// SUCCESSED/SUCCEEDED and FAILED are final: the job changes no more.
    pub fn is_terminal(&self) -> bool {
        matches!(self, JobState::Succeeded | JobState::Failed)
    }
}

/// An import job as the service reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub id: String,
    /// The generated model name (not the base model), once the service gave it.
    pub model_name: Option<String>,
    pub display_name: Option<String>,
    /// Only some answers carry it.
    pub storage: Option<Storage>,
    pub state: JobState,
    /// The status exactly as the service spelt it, shown in `status.remoteStatus`.
    pub status_text: String,
    /// When the service created the job, as it wrote it.
    pub created_at: Option<String>,
    /// Only FAILED jobs carry it: a readable reason.
    pub error_code: Option<String>,
}

/// Filters and paging of a listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    /// 1-based page number.
    pub page_no: Option<u32>,
    /// At most 100.
    pub page_size: Option<u32>,
    /// Only jobs in this state (the client spells it as the API does).
    pub state: Option<JobState>,
    /// Exact match on the generated model name.
    pub model_name: Option<String>,
    /// Part of a poll cycle (the final states of jobs that just left the active states), not
    /// the slow resync: it takes a poll's turn under the quota. Never sent.
    pub poll: bool,
}

/// One page of a listing of import jobs.
pub type JobPage = Page<Job>;

/// The operations of the import API. Implemented by the HTTP client (the one real
/// implementation), by layers that wrap another implementation (rate limiting, metrics), and by
/// the in-memory fake of the tests.
#[async_trait]
pub trait ImportJobs: Send + Sync {
    /// `POST /api/v1/custom_models/import`. Not idempotent: never retry blindly.
    async fn create(&self, key: &ApiKey, job: &NewJob) -> Result<Job, ApiError>;
    /// `GET /api/v1/custom_models/import/{job_id}`.
    async fn get(&self, key: &ApiKey, job_id: &str) -> Result<Job, ApiError>;
    /// `GET /api/v1/custom_models/import`: one page.
    async fn list(&self, key: &ApiKey, query: &ListQuery) -> Result<JobPage, ApiError>;
    /// `DELETE /api/v1/custom_models/import/{job_id}`.
    async fn delete(&self, key: &ApiKey, job_id: &str) -> Result<Job, ApiError>;
    /// When the quota is short: how long from now a call of `operation` should be held back
    /// before it is sent, each caller given its own turn; `None` to send it now. Without a
    /// quota, always now.
    /// `key` says which endpoint's quota the call would take.
    fn pace(&self, _key: &ApiKey, _operation: Operation) -> Option<std::time::Duration> {
        None
    }
}

/// A shared implementation is one too, so layers and the controller can hold it behind an `Arc`.
#[async_trait]
impl<T: ImportJobs + ?Sized> ImportJobs for std::sync::Arc<T> {
    async fn create(&self, key: &ApiKey, job: &NewJob) -> Result<Job, ApiError> {
        (**self).create(key, job).await
    }
    async fn get(&self, key: &ApiKey, job_id: &str) -> Result<Job, ApiError> {
        (**self).get(key, job_id).await
    }
    async fn list(&self, key: &ApiKey, query: &ListQuery) -> Result<JobPage, ApiError> {
        (**self).list(key, query).await
    }
    async fn delete(&self, key: &ApiKey, job_id: &str) -> Result<Job, ApiError> {
        (**self).delete(key, job_id).await
    }
    fn pace(&self, key: &ApiKey, operation: Operation) -> Option<std::time::Duration> {
        (**self).pace(key, operation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_success_spellings_are_success() {
        assert_eq!(JobState::parse("SUCCESSED"), JobState::Succeeded);
        assert_eq!(JobState::parse("SUCCEEDED"), JobState::Succeeded);
        assert_eq!(JobState::parse("running"), JobState::Running);
        assert_eq!(
            JobState::parse("CANCELLED"),
            JobState::Unknown("CANCELLED".into())
        );
        assert!(JobState::Failed.is_terminal());
        assert!(!JobState::Pending.is_terminal());
    }

    #[test]
    fn paging_stops_at_total() {
        let page = |page_no, total| JobPage {
            total,
            page_no,
            page_size: 10,
            items: vec![],
        };
        assert!(page(1, 11).has_more());
        assert!(!page(2, 11).has_more());
        assert!(!page(1, 10).has_more());
    }
}
