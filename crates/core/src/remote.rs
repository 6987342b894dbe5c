//! The Model Studio import API in domain terms: the jobs, their states, the ways a call fails, and
//! the [`ImportJobs`] trait that the HTTP client, the rate-limit and metrics layers and the
//! in-memory fake implement. The wire format (JSON field names and spellings) is the HTTP
//! client's business, not this module's.

use async_trait::async_trait;
use std::fmt;
use std::time::Duration;

/// A DashScope API key, and where it belongs: a key is valid in one workspace of one region
/// (reference §1.2), so it carries the base URL the controller configured for its region and its
/// workspace id when its Secret names them. Its `Debug` and `Display` never show the key, so it
/// cannot leak through logs or error text by accident.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ApiKey {
    key: String,
    endpoint: Option<String>,
    workspace: Option<String>,
}

impl ApiKey {
    /// Wraps a key, trimming the whitespace and newline a Secret or file usually carries. It is
    /// sent to the controller's default endpoint, with no workspace, until [`ApiKey::scoped`].
    pub fn new(key: impl AsRef<str>) -> Option<Self> {
        let key = key.as_ref().trim();
        (!key.is_empty()).then(|| ApiKey {
            key: key.to_string(),
            endpoint: None,
            workspace: None,
        })
    }

    /// The key, sent to `endpoint` (a base URL from the controller's own configuration, never
    /// from a tenant; `None`: the default endpoint) in `workspace`.
    pub fn scoped(self, endpoint: Option<String>, workspace: Option<String>) -> Self {
        ApiKey {
            endpoint,
            workspace,
            ..self
        }
    }

    /// The key itself, for the Authorization header only.
    pub fn expose(&self) -> &str {
        &self.key
    }

    /// The base URL of the key's region; `None`: the controller's default endpoint.
    pub fn endpoint(&self) -> Option<&str> {
        self.endpoint.as_deref()
    }

    /// The workspace the key's calls act in (`X-DashScope-WorkSpace`), when known.
    pub fn workspace(&self) -> Option<&str> {
        self.workspace.as_deref()
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKey")
            .field("key", &"<redacted>")
            .field("endpoint", &self.endpoint)
            .field("workspace", &self.workspace)
            .finish()
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

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

/// One page of a listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobPage {
    pub total: u64,
    pub page_no: u32,
    pub page_size: u32,
    pub jobs: Vec<Job>,
}

impl JobPage {
    /// Whether a later page exists (the API has no cursor: page until page_no*page_size >= total).
    pub fn has_more(&self) -> bool {
        self.page_size > 0 && u64::from(self.page_no) * u64::from(self.page_size) < self.total
    }
}

/// What the service said about a failed call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteError {
    /// The API's error code, such as `InvalidParameter`.
    pub code: String,
    /// The API's readable message.
    pub message: String,
    /// The request ID, for Alibaba Cloud support.
    pub request_id: Option<String>,
    /// The HTTP status the error came with.
    pub http_status: u16,
}

impl fmt::Display for RemoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (code {}, HTTP {}",
            self.message, self.code, self.http_status
        )?;
        if let Some(id) = &self.request_id {
            write!(f, ", request {id}")?;
        }
        f.write_str(")")
    }
}

/// The cause below a transport failure (a reqwest error in the HTTP client); shared, so that one
/// failed listing can be the answer of every resource of the workspace.
pub type Cause = std::sync::Arc<dyn std::error::Error + Send + Sync>;

/// A failed call to the import API, one variant per way it can fail; decided by the error `code`,
/// never by the HTTP status alone.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    #[error("Model Studio refused the request as invalid: {0}")]
    InvalidParameter(RemoteError),
    #[error("Model Studio found no such job or base model: {0}")]
    NotFound(RemoteError),
    #[error("Model Studio refused the operation in the resource's current state: {0}")]
    OperationDenied(RemoteError),
    /// A deployment of this name exists already (the deployment API's `Conflict`, HTTP 409).
    #[error("Model Studio found that the resource already exists: {0}")]
    Conflict(RemoteError),
    /// The operation can never succeed on this resource as it is (e.g. scaling a `lora` plan).
    #[error("Model Studio does not support this operation on this resource: {0}")]
    Unsupported(RemoteError),
    #[error("Model Studio rejected the API key (check the key and that it belongs to the endpoint's region): {0}")]
    InvalidApiKey(RemoteError),
    #[error("the API key has no access to this operation or workspace: {0}")]
    AccessDenied(RemoteError),
    #[error("Model Studio is throttling requests: {remote}")]
    Throttled {
        remote: RemoteError,
        retry_after: Option<Duration>,
    },
    #[error("Model Studio had a server error: {0}")]
    Server(RemoteError),
    #[error("Model Studio answered with an error code this controller does not know: {0}")]
    Unknown(RemoteError),
    #[error("Model Studio answered HTTP {status} with a body that is not an API error: {excerpt}")]
    UnexpectedBody {
        status: u16,
        excerpt: String,
        retry_after: Option<Duration>,
    },
    #[error("Model Studio answered HTTP {status} with a malformed body ({detail}){}", request_suffix(.request_id))]
    MalformedResponse {
        status: u16,
        detail: String,
        request_id: Option<String>,
    },
    #[error("no answer from Model Studio within {0:?}")]
    Timeout(Duration),
    #[error("could not connect to Model Studio: {0}")]
    Connect(#[source] Cause),
    #[error("the connection to Model Studio failed: {0}")]
    Transport(#[source] Cause),
}

fn request_suffix(id: &Option<String>) -> String {
    id.as_ref()
        .map(|id| format!(", request {id}"))
        .unwrap_or_default()
}

impl ApiError {
    /// A static name of the variant, for metric labels.
    pub fn kind(&self) -> &'static str {
        match self {
            ApiError::InvalidParameter(_) => "InvalidParameter",
            ApiError::NotFound(_) => "NotFound",
            ApiError::OperationDenied(_) => "OperationDenied",
            ApiError::Conflict(_) => "Conflict",
            ApiError::Unsupported(_) => "Unsupported",
            ApiError::InvalidApiKey(_) => "InvalidApiKey",
            ApiError::AccessDenied(_) => "AccessDenied",
            ApiError::Throttled { .. } => "Throttled",
            ApiError::Server(_) => "ServerError",
            ApiError::Unknown(_) => "UnknownError",
            ApiError::UnexpectedBody { .. } => "UnexpectedBody",
            ApiError::MalformedResponse { .. } => "MalformedResponse",
            ApiError::Timeout(_) => "Timeout",
            ApiError::Connect(_) => "ConnectError",
            ApiError::Transport(_) => "TransportError",
        }
    }

    /// Whether the same request may succeed later without anyone changing anything.
    pub fn is_transient(&self) -> bool {
        match self {
            ApiError::Throttled { .. }
            | ApiError::Server(_)
            | ApiError::Timeout(_)
            | ApiError::Connect(_)
            | ApiError::Transport(_) => true,
            // Without an error code only the status is left to go by: a gateway's page.
            ApiError::UnexpectedBody { status, .. } => *status == 429 || *status >= 500,
            ApiError::MalformedResponse { status, .. } => *status >= 500,
            _ => false,
        }
    }

    /// Whether a create that failed this way certainly made no job. A refused request (4xx with a
    /// code) or one that never connected did not; a 5xx or a lost answer may have.
    pub fn create_certainly_not_applied(&self) -> bool {
        match self {
            ApiError::InvalidParameter(_)
            | ApiError::NotFound(_)
            | ApiError::OperationDenied(_)
            | ApiError::Conflict(_)
            | ApiError::Unsupported(_)
            | ApiError::InvalidApiKey(_)
            | ApiError::AccessDenied(_)
            | ApiError::Throttled { .. }
            | ApiError::Connect(_) => true,
            ApiError::UnexpectedBody { status, .. } => *status == 429,
            // An unknown code may be a gateway's timeout: the request may have gone through.
            _ => false,
        }
    }

    /// How long the service asked us to wait, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ApiError::Throttled { retry_after, .. }
            | ApiError::UnexpectedBody { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// What the service said, when it answered with an error code.
    pub fn remote(&self) -> Option<&RemoteError> {
        match self {
            ApiError::InvalidParameter(r)
            | ApiError::NotFound(r)
            | ApiError::OperationDenied(r)
            | ApiError::Conflict(r)
            | ApiError::Unsupported(r)
            | ApiError::InvalidApiKey(r)
            | ApiError::AccessDenied(r)
            | ApiError::Server(r)
            | ApiError::Unknown(r)
            | ApiError::Throttled { remote: r, .. } => Some(r),
            _ => None,
        }
    }

    /// The request ID the service gave, if any.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            ApiError::MalformedResponse { request_id, .. } => request_id.as_deref(),
            other => other.remote().and_then(|r| r.request_id.as_deref()),
        }
    }

    /// The error with `id` as its request ID when its body gave none (the service also sends it
    /// as the `x-request-id` header, where the official SDK reads it).
    pub fn with_request_id(mut self, id: Option<&str>) -> Self {
        let Some(id) = id.filter(|id| !id.is_empty()) else {
            return self;
        };
        let slot = match &mut self {
            ApiError::MalformedResponse { request_id, .. } => request_id,
            ApiError::InvalidParameter(r)
            | ApiError::NotFound(r)
            | ApiError::OperationDenied(r)
            | ApiError::Conflict(r)
            | ApiError::Unsupported(r)
            | ApiError::InvalidApiKey(r)
            | ApiError::AccessDenied(r)
            | ApiError::Server(r)
            | ApiError::Unknown(r)
            | ApiError::Throttled { remote: r, .. } => &mut r.request_id,
            _ => return self,
        };
        if slot.is_none() {
            *slot = Some(id.to_string());
        }
        self
    }

    /// The service's own message, when there is one.
    pub fn remote_message(&self) -> Option<&str> {
        self.remote().map(|r| r.message.as_str())
    }
}

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

/// A layer's view of which operation a call is, for its labels and priority. The import API's
/// operations keep their short names; the deployment API's are prefixed, so the two APIs'
/// series never mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Create,
    Get,
    List,
    Delete,
    DeploymentCreate,
    DeploymentGet,
    DeploymentList,
    DeploymentScale,
    DeploymentUpdate,
    DeploymentDelete,
}

impl Operation {
    pub fn name(self) -> &'static str {
        match self {
            Operation::Create => "create",
            Operation::Get => "get",
            Operation::List => "list",
            Operation::Delete => "delete",
            Operation::DeploymentCreate => "deployment_create",
            Operation::DeploymentGet => "deployment_get",
            Operation::DeploymentList => "deployment_list",
            Operation::DeploymentScale => "deployment_scale",
            Operation::DeploymentUpdate => "deployment_update",
            Operation::DeploymentDelete => "deployment_delete",
        }
    }

    /// Whether the call changes something remote (and so goes before reads when the quota is
    /// short).
    pub fn is_mutation(self) -> bool {
        match self {
            Operation::Create
            | Operation::Delete
            | Operation::DeploymentCreate
            | Operation::DeploymentScale
            | Operation::DeploymentUpdate
            | Operation::DeploymentDelete => true,
            Operation::Get
            | Operation::List
            | Operation::DeploymentGet
            | Operation::DeploymentList => false,
        }
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
            jobs: vec![],
        };
        assert!(page(1, 11).has_more());
        assert!(!page(2, 11).has_more());
        assert!(!page(1, 10).has_more());
    }

    #[test]
    fn the_key_never_prints() {
        let k = ApiKey::new(" sk-secret\n").unwrap();
        assert_eq!(k.expose(), "sk-secret");
        assert!(!format!("{k} {k:?}").contains("sk-secret"));
        assert!(ApiKey::new(" \n").is_none());
    }
}
