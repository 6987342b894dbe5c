//! What a call to either Model Studio API (import jobs, deployments) shares: the API key and
//! where it belongs, the ways a call fails ([`ApiError`]), and which call it is ([`Operation`]),
//! for the layers' labels and priority. The wire format is the HTTP client's business.

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

/// One page of a listing (import jobs or deployments). The APIs have no cursor: a listing pages
/// until `page_no * page_size >= total`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub total: u64,
    pub page_no: u32,
    pub page_size: u32,
    pub items: Vec<T>,
}

impl<T> Default for Page<T> {
    fn default() -> Self {
        Page {
            total: 0,
            page_no: 0,
            page_size: 0,
            items: Vec::new(),
        }
    }
}

impl<T> Page<T> {
    /// Whether a later page exists.
    pub fn has_more(&self) -> bool {
        self.page_size > 0 && u64::from(self.page_no) * u64::from(self.page_size) < self.total
    }
}

/// A remote failure that means the same for every kind: it concerns the key, the quota or the
/// service, never the resource, so each kind names it with the same condition reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteFailure {
    InvalidApiKey,
    AccessDenied,
    Throttled,
    RemoteUnavailable,
    RemoteError,
}

impl RemoteFailure {
    pub const ALL: &'static [RemoteFailure] = &[
        RemoteFailure::InvalidApiKey,
        RemoteFailure::AccessDenied,
        RemoteFailure::Throttled,
        RemoteFailure::RemoteUnavailable,
        RemoteFailure::RemoteError,
    ];

    /// How an error that no kind reads more closely is named: the key first, then throttling,
    /// then whether it may cure itself (RemoteError: not expected to, so retried slowly).
    pub fn of(err: &ApiError) -> RemoteFailure {
        match err {
            ApiError::InvalidApiKey(_) => RemoteFailure::InvalidApiKey,
            ApiError::AccessDenied(_) => RemoteFailure::AccessDenied,
            ApiError::Throttled { .. } => RemoteFailure::Throttled,
            e if e.is_transient() => RemoteFailure::RemoteUnavailable,
            _ => RemoteFailure::RemoteError,
        }
    }
}

/// A failed call to a Model Studio API (import jobs or deployments), one variant per way it can
/// fail; decided by the error `code`, never by the HTTP status alone.
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
    fn the_key_never_prints() {
        let k = ApiKey::new(" sk-secret\n").unwrap();
        assert_eq!(k.expose(), "sk-secret");
        assert!(!format!("{k} {k:?}").contains("sk-secret"));
        assert!(ApiKey::new(" \n").is_none());
    }
}
