//! The Model Studio import API in domain terms: a trait with create, get, list and delete, the
//! wire types, the typed errors, and the reqwest implementation.

mod error;
mod http;
mod types;

pub use error::{ApiError, RemoteError};
pub use http::{decode_response, HttpClient, HttpClientConfig};
pub use types::{CreateJob, ImportJob, JobPage, ListQuery, RemoteStatus, StorageInfo};

use async_trait::async_trait;
use std::fmt;

/// A DashScope API key. Its `Debug` and `Display` never show the key, so it cannot leak through
/// logs or error text by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key, trimming the whitespace and newline a Secret or file usually carries.
    pub fn new(key: impl AsRef<str>) -> Option<Self> {
        let key = key.as_ref().trim();
        (!key.is_empty()).then(|| ApiKey(key.to_string()))
    }

    /// The key itself, for the Authorization header only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The operations of the import API, in domain terms.
#[async_trait]
pub trait ImportJobs: Send + Sync {
    /// `POST /api/v1/custom_models/import`. Not idempotent: never retry blindly.
    async fn create(&self, key: &ApiKey, job: &CreateJob) -> Result<ImportJob, ApiError>;
    /// `GET /api/v1/custom_models/import/{job_id}`.
    async fn get(&self, key: &ApiKey, job_id: &str) -> Result<ImportJob, ApiError>;
    /// `GET /api/v1/custom_models/import`: one page.
    async fn list(&self, key: &ApiKey, query: &ListQuery) -> Result<JobPage, ApiError>;
    /// `DELETE /api/v1/custom_models/import/{job_id}`.
    async fn delete(&self, key: &ApiKey, job_id: &str) -> Result<ImportJob, ApiError>;
}
