//! Reads an error answer of the import API into the core's [`ApiError`], keyed on the response's
//! `code` (never on the HTTP status alone, since the documentation gives no status for
//! `OperationDenied`).

use modelstudio_core::api::{ApiError, RemoteError};
use serde::Deserialize;
use std::time::Duration;

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    request_id: Option<String>,
    #[serde(default)]
    code: Option<serde_json::Value>,
    #[serde(default)]
    message: Option<String>,
    /// The official SDK reads the message from `msg` too, when `message` is absent.
    #[serde(default)]
    msg: Option<String>,
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
        .or(parsed.msg)
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
        // The deployment API's answer to a name in use (HTTP 409).
        "Conflict" => ApiError::Conflict(remote),
        // The sibling fine-tune API's code for what a resource can never do (HTTP 400).
        "UnsupportedOperation" => ApiError::Unsupported(remote),
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
        let cases: [(u16, &str, Check); 14] = [
            (409, "Conflict", |e| matches!(e, ApiError::Conflict(_))),
            (400, "Conflict", |e| matches!(e, ApiError::Conflict(_))),
            (400, "UnsupportedOperation", |e| {
                matches!(e, ApiError::Unsupported(_))
            }),
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
    fn msg_is_read_when_message_is_absent() {
        let e = classify(
            400,
            br#"{"request_id":"r-2","code":"InvalidParameter","msg":"capacity must be positive"}"#,
            None,
        );
        assert_eq!(e.remote_message(), Some("capacity must be positive"));
        let e = classify(
            400,
            br#"{"code":"InvalidParameter","message":"m","msg":"other"}"#,
            None,
        );
        assert_eq!(e.remote_message(), Some("m"));
    }

    #[test]
    fn a_request_id_from_the_header_fills_in_for_the_body() {
        let e = classify(400, br#"{"code":"InvalidParameter","message":"m"}"#, None)
            .with_request_id(Some("hdr-1"));
        assert_eq!(e.request_id(), Some("hdr-1"));
        assert!(e.to_string().contains("request hdr-1"), "{e}");
        // The body's own id wins.
        let e = classify(400, &body("InvalidParameter"), None).with_request_id(Some("hdr-1"));
        assert_eq!(e.request_id(), Some("r-1"));
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
