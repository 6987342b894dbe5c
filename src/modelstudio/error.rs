//! Errors of the import API, keyed on the response's `code` (never on the HTTP status alone, since
//! the documentation gives no status for `OperationDenied`).

use serde::Deserialize;
use std::fmt;
use std::time::Duration;

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

/// A failed call to the import API, one variant per way it can fail.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("Model Studio refused the request as invalid: {0}")]
    InvalidParameter(RemoteError),
    #[error("Model Studio found no such job or base model: {0}")]
    NotFound(RemoteError),
    #[error("Model Studio refused the operation in the job's current state: {0}")]
    OperationDenied(RemoteError),
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
    Connect(#[source] reqwest::Error),
    #[error("the connection to Model Studio failed: {0}")]
    Transport(#[source] reqwest::Error),
}

fn request_suffix(id: &Option<String>) -> String {
    id.as_ref()
        .map(|id| format!(", request {id}"))
        .unwrap_or_default()
}

impl ApiError {
    /// A static name of the variant, for metric labels and condition reasons.
    pub fn kind(&self) -> &'static str {
        match self {
            ApiError::InvalidParameter(_) => "InvalidParameter",
            ApiError::NotFound(_) => "NotFound",
            ApiError::OperationDenied(_) => "OperationDenied",
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

    /// The service's own message, when there is one.
    pub fn remote_message(&self) -> Option<&str> {
        self.remote().map(|r| r.message.as_str())
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    request_id: Option<String>,
    #[serde(default)]
    code: Option<serde_json::Value>,
    #[serde(default)]
    message: Option<String>,
    /// Some gateways nest the error, as the official CLI also reads.
    #[serde(default)]
    error: Option<NestedError>,
}

#[derive(Deserialize)]
struct NestedError {
    #[serde(default, rename = "type")]
    type_: Option<String>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

/// The error code of a body, when the body is a JSON error envelope. A 2xx body whose `code` is
/// present and neither "200" nor "Success" is an error too (as the official CLI treats it).
pub(crate) fn error_code_in_success(body: &[u8]) -> bool {
    match serde_json::from_slice::<ErrorBody>(body) {
        // A nested error object is an error whatever the status.
        Ok(b)
            if b.error
                .as_ref()
                .is_some_and(|e| e.code.is_some() || e.type_.is_some()) =>
        {
            true
        }
        Ok(b) => match b.code {
            None | Some(serde_json::Value::Null) => false,
            Some(serde_json::Value::String(c)) => c != "200" && c != "Success" && !c.is_empty(),
            Some(serde_json::Value::Number(n)) => n.as_u64() != Some(200),
            Some(_) => true,
        },
        Err(_) => false,
    }
}

/// Classifies a non-success answer by its error code.
pub(crate) fn classify(status: u16, body: &[u8], retry_after: Option<Duration>) -> ApiError {
    let parsed = serde_json::from_slice::<ErrorBody>(body).ok();
    let Some(parsed) = parsed else {
        return ApiError::UnexpectedBody {
            status,
            excerpt: excerpt(body),
            retry_after,
        };
    };
    let nested = parsed.error.as_ref();
    let code = match &parsed.code {
        Some(serde_json::Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        _ => nested.and_then(|e| e.code.clone().or_else(|| e.type_.clone())),
    };
    let Some(code) = code else {
        return ApiError::UnexpectedBody {
            status,
            excerpt: excerpt(body),
            retry_after,
        };
    };
    let message = parsed
        .message
        .or_else(|| nested.and_then(|e| e.message.clone()))
        .unwrap_or_else(|| format!("HTTP {status}"));
    let remote = RemoteError {
        code: code.clone(),
        message,
        request_id: parsed.request_id,
        http_status: status,
    };
    match code.as_str() {
        "InvalidParameter" => ApiError::InvalidParameter(remote),
        "NotFound" => ApiError::NotFound(remote),
        "OperationDenied" => ApiError::OperationDenied(remote),
        "InvalidApiKey" | "invalid_api_key" | "NOT AUTHORIZED" => ApiError::InvalidApiKey(remote),
        c if c.starts_with("AccessDenied") || c == "Workspace.AccessDenied" => {
            ApiError::AccessDenied(remote)
        }
        c if c.starts_with("Throttling") => ApiError::Throttled {
            remote,
            retry_after,
        },
        "InternalError" | "SystemError" | "RequestTimeOut" | "ModelUnavailable"
        | "ServiceUnavailable" => ApiError::Server(remote),
        // An unknown code: a 5xx is still a server fault worth retrying.
        _ if status >= 500 => ApiError::Server(remote),
        _ => ApiError::Unknown(remote),
    }
}

/// A short, printable start of a body, for error text.
pub(crate) fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let flat = flat.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out: String = flat.chars().take(200).collect();
    if flat.chars().count() > 200 {
        out.push('…');
    }
    if out.is_empty() {
        out.push_str("(empty body)");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(code: &str) -> Vec<u8> {
        format!(r#"{{"request_id":"r-1","code":"{code}","message":"m"}}"#).into_bytes()
    }

    #[test]
    fn classified_by_code_not_status() {
        type Check = fn(&ApiError) -> bool;
        let cases: [(u16, &str, Check); 11] = [
            (400, "OperationDenied", |e| {
                matches!(e, ApiError::OperationDenied(_))
            }),
            (403, "OperationDenied", |e| {
                matches!(e, ApiError::OperationDenied(_))
            }),
            (409, "OperationDenied", |e| {
                matches!(e, ApiError::OperationDenied(_))
            }),
            (400, "InvalidParameter", |e| {
                matches!(e, ApiError::InvalidParameter(_))
            }),
            (404, "NotFound", |e| matches!(e, ApiError::NotFound(_))),
            (401, "InvalidApiKey", |e| {
                matches!(e, ApiError::InvalidApiKey(_))
            }),
            (403, "AccessDenied.Unpurchased", |e| {
                matches!(e, ApiError::AccessDenied(_))
            }),
            (500, "InternalError", |e| matches!(e, ApiError::Server(_))),
            (502, "Whatever", |e| matches!(e, ApiError::Server(_))),
            (400, "Whatever", |e| matches!(e, ApiError::Unknown(_))),
            (200, "InternalError", |e| matches!(e, ApiError::Server(_))),
        ];
        for (status, code, check) in cases {
            let e = classify(status, &body(code), None);
            assert!(check(&e), "HTTP {status} {code}: {e:?}");
        }
        for code in [
            "Throttling",
            "Throttling.RateQuota",
            "Throttling.BurstRate",
            "Throttling.AllocationQuota",
        ] {
            let e = classify(429, &body(code), Some(Duration::from_secs(3)));
            assert_eq!(e.retry_after(), Some(Duration::from_secs(3)));
            assert!(e.is_transient());
            assert!(e.create_certainly_not_applied());
        }
    }

    #[test]
    fn request_id_and_message_are_kept() {
        let e = classify(400, &body("InvalidParameter"), None);
        assert_eq!(e.request_id(), Some("r-1"));
        assert_eq!(e.remote_message(), Some("m"));
        assert!(e.to_string().contains("request r-1"));
    }

    #[test]
    fn gateway_html_is_an_unexpected_body() {
        let e = classify(502, b"<html><body>Bad Gateway</body></html>", None);
        assert!(matches!(e, ApiError::UnexpectedBody { status: 502, .. }));
        assert!(e.is_transient());
        assert!(!e.create_certainly_not_applied());
        assert!(e.to_string().contains("Bad Gateway"));
        let e = classify(404, b"not json", None);
        assert!(!e.is_transient());
    }

    #[test]
    fn nested_error_is_read() {
        let e = classify(
            400,
            br#"{"error":{"type":"InvalidParameter","message":"bad"}}"#,
            None,
        );
        assert!(matches!(e, ApiError::InvalidParameter(ref r) if r.message == "bad"));
    }

    #[test]
    fn success_with_error_code_is_an_error() {
        assert!(error_code_in_success(
            br#"{"code":"InternalError","message":"x"}"#
        ));
        assert!(!error_code_in_success(br#"{"code":"200","output":{}}"#));
        assert!(!error_code_in_success(br#"{"request_id":"r","output":{}}"#));
    }

    #[test]
    fn nested_error_in_a_success_status_is_an_error() {
        assert!(error_code_in_success(
            br#"{"error":{"code":"InvalidParameter","message":"bad"}}"#
        ));
        let e = classify(
            200,
            br#"{"error":{"code":"InvalidParameter","message":"bad"}}"#,
            None,
        );
        assert!(matches!(e, ApiError::InvalidParameter(_)));
    }

    #[test]
    fn excerpt_is_short_and_flat() {
        let long = "x\n".repeat(500);
        let e = excerpt(long.as_bytes());
        assert!(e.chars().count() <= 201);
        assert!(!e.contains('\n'));
        assert_eq!(excerpt(b""), "(empty body)");
    }
}
