//! The reqwest (rustls) client both APIs go through: the base URL and each key's region, the
//! headers, the timeout, the body limit, the key's redaction from answers and the decoding of an
//! answer's envelope. The import API is in `imports.rs`, the deployment API in `deployments.rs`.

use super::error::{classify, error_code_in_success, excerpt};
use modelstudio_core::api::{ApiError, ApiKey, RemoteError};
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Method, Url};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The workspace a call acts in (the official SDK's spelling; header names are case-insensitive).
const WORKSPACE_HEADER: &str = "x-dashscope-workspace";
/// The request id, also sent as a header (where the official SDK reads it when the body has none).
const REQUEST_ID_HEADER: &str = "x-request-id";
/// The largest answer read; a page of 100 jobs is about 50 KiB.
const MAX_BODY: usize = 8 * 1024 * 1024;

/// `body` with every occurrence of `secret` replaced.
fn redact(body: &[u8], secret: &str) -> Vec<u8> {
    let secret = secret.as_bytes();
    if secret.is_empty() {
        return body.to_vec();
    }
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        if body[i..].starts_with(secret) {
            out.extend_from_slice(b"<redacted>");
            i += secret.len();
        } else {
            out.push(body[i]);
            i += 1;
        }
    }
    out
}

/// How the client reaches Model Studio.
#[derive(Debug, Clone)]
pub struct HttpClientConfig {
    /// Base URL, such as `https://dashscope-intl.aliyuncs.com` (Singapore) or
    /// `https://dashscope.aliyuncs.com` (Beijing), or a simulator's `http://127.0.0.1:8089`.
    pub endpoint: String,
    /// Time allowed for one whole request.
    pub timeout: Duration,
    /// Sent as `User-Agent`.
    pub user_agent: String,
}

/// Calls the import API over HTTP.
#[derive(Clone, Debug)]
pub struct HttpClient {
    http: reqwest::Client,
    base: Url,
    timeout: Duration,
}

#[derive(Deserialize)]
struct Envelope<T> {
    output: Option<T>,
    request_id: Option<String>,
}

impl HttpClient {
    /// Builds a client; fails on an endpoint that is not an http(s) URL.
    pub fn new(config: HttpClientConfig) -> Result<Self, String> {
        let base = Url::parse(&config.endpoint)
            .map_err(|e| format!("endpoint {:?} is not a URL: {e}", config.endpoint))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(format!(
                "endpoint {:?} must be an http:// or https:// URL",
                config.endpoint
            ));
        }
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .user_agent(config.user_agent)
            .build()
            .map_err(|e| format!("could not build the HTTP client: {e}"))?;
        Ok(HttpClient {
            http,
            base,
            timeout: config.timeout,
        })
    }

    /// The base URL of the key's region (the client's own endpoint when the key names none),
    /// then `path`, then each of `segments` percent-encoded (so an odd ID cannot change the path).
    pub(super) fn url_of<'a>(
        &self,
        key: &ApiKey,
        path: &[&str],
        segments: impl Iterator<Item = &'a str>,
    ) -> Result<Url, ApiError> {
        let mut url = match key.endpoint() {
            None => self.base.clone(),
            // Checked when the controller's configuration was read; never the key's own text.
            Some(endpoint) => Url::parse(endpoint)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && !u.cannot_be_a_base())
                .ok_or_else(|| {
                    ApiError::Connect(std::sync::Arc::new(std::io::Error::other(format!(
                        "the region endpoint {endpoint:?} is not an http(s) URL"
                    ))))
                })?,
        };
        if let Ok(mut parts) = url.path_segments_mut() {
            parts.pop_if_empty().extend(path);
            for segment in segments {
                parts.push(segment);
            }
        }
        Ok(url)
    }

    fn headers(key: &ApiKey) -> Result<HeaderMap, ApiError> {
        let mut headers = HeaderMap::new();
        let mut auth =
            HeaderValue::from_str(&format!("Bearer {}", key.expose())).map_err(|_| {
                ApiError::InvalidApiKey(RemoteError {
                    code: "InvalidApiKey".into(),
                    message: "the API key contains characters that cannot be sent in a header"
                        .into(),
                    request_id: None,
                    http_status: 0,
                })
            })?;
        auth.set_sensitive(true);
        headers.insert(AUTHORIZATION, auth);
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        // As the official SDK sends it when a workspace is known; a workspace id is checked to be
        // letters, digits and '-' when read, so it always fits a header.
        if let Some(value) = key
            .workspace()
            .and_then(|ws| HeaderValue::from_str(ws).ok())
        {
            headers.insert(WORKSPACE_HEADER, value);
        }
        Ok(headers)
    }

    pub(super) async fn send<T: FromAnswer, B: Serialize + Sync>(
        &self,
        key: &ApiKey,
        method: Method,
        url: Url,
        body: Option<&B>,
    ) -> Result<T, ApiError> {
        let mut request = self.http.request(method, url).headers(Self::headers(key)?);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| self.transport_error(e))?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let request_id = response
            .headers()
            .get(REQUEST_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = self.read_body(response).await?;
        // Some gateways repeat the Authorization header in their error page: blank the key out
        // before any of the body can reach an error, a condition or a log.
        let bytes = redact(&bytes, key.expose());
        decode(status, retry_after, &bytes).map_err(|e| e.with_request_id(request_id.as_deref()))
    }

    /// Reads at most `MAX_BODY` bytes: an endless or huge answer is cut, never buffered whole.
    async fn read_body(&self, mut response: reqwest::Response) -> Result<Vec<u8>, ApiError> {
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.transport_error(e))?
        {
            let room = MAX_BODY - body.len();
            body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if body.len() >= MAX_BODY {
                break;
            }
        }
        Ok(body)
    }

    fn transport_error(&self, e: reqwest::Error) -> ApiError {
        if e.is_timeout() {
            ApiError::Timeout(self.timeout)
        } else if e.is_connect() {
            ApiError::Connect(std::sync::Arc::new(e))
        } else {
            ApiError::Transport(std::sync::Arc::new(e))
        }
    }
}

/// A value an answer's `output` carries (a job, a page, a deployment, a deletion's state), read
/// through its wire body.
pub trait FromAnswer: Sized {
    type Body: DeserializeOwned + Into<Self>;
}

/// Turns an answer into the value it carries or the error it reports. Pure, so that any bytes a
/// server may send are tested (and fuzzed) without a server; it never panics.
pub fn decode<T: FromAnswer>(
    status: u16,
    retry_after: Option<Duration>,
    bytes: &[u8],
) -> Result<T, ApiError> {
    decode_response::<T::Body>(status, retry_after, bytes).map(Into::into)
}

/// Turns an answer into the `output` it carries or the error it reports.
fn decode_response<T: DeserializeOwned>(
    status: u16,
    retry_after: Option<Duration>,
    bytes: &[u8],
) -> Result<T, ApiError> {
    if !(200..300).contains(&status) || error_code_in_success(bytes) {
        return Err(classify(status, bytes, retry_after));
    }
    let envelope: Envelope<T> =
        serde_json::from_slice(bytes).map_err(|e| ApiError::MalformedResponse {
            status,
            detail: format!("{e}; body starts {}", excerpt(bytes)),
            request_id: None,
        })?;
    envelope.output.ok_or_else(|| ApiError::MalformedResponse {
        status,
        detail: "the answer has no `output`".into(),
        request_id: envelope.request_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use modelstudio_core::import::jobs::Job;

    #[test]
    fn the_workspace_header_is_sent_when_the_key_has_one() {
        let key = ApiKey::new("sk-x").unwrap();
        assert!(HttpClient::headers(&key)
            .unwrap()
            .get(WORKSPACE_HEADER)
            .is_none());
        let key = key.scoped(None, Some("llm-abc".into()));
        let headers = HttpClient::headers(&key).unwrap();
        assert_eq!(headers.get("X-DashScope-WorkSpace").unwrap(), "llm-abc");
    }

    #[test]
    fn an_echoed_key_is_blanked_out_before_decoding() {
        let body =
            br#"{"code":"InvalidApiKey","message":"Invalid API-key provided: Bearer sk-canary-1"}"#;
        let clean = redact(body, "sk-canary-1");
        let e = decode::<Job>(401, None, &clean).unwrap_err();
        assert!(!format!("{e} {e:?}").contains("sk-canary-1"));
        assert!(e.to_string().contains("<redacted>"));
        // Even past the 200-character excerpt of a gateway page.
        let page = format!(
            "<html>{}Authorization: Bearer sk-canary-1</html>",
            "x".repeat(165)
        );
        let e = decode::<Job>(502, None, &redact(page.as_bytes(), "sk-canary-1")).unwrap_err();
        assert!(!e.to_string().contains("sk-cana"), "{e}");
        assert_eq!(redact(b"abc", ""), b"abc");
    }

    #[test]
    fn bad_endpoints_are_refused_with_a_reason() {
        let e = HttpClient::new(HttpClientConfig {
            endpoint: "dashscope.aliyuncs.com".into(),
            timeout: Duration::from_secs(1),
            user_agent: "t".into(),
        })
        .unwrap_err();
        assert!(e.contains("not a URL"), "{e}");
        let e = HttpClient::new(HttpClientConfig {
            endpoint: "ftp://x".into(),
            timeout: Duration::from_secs(1),
            user_agent: "t".into(),
        })
        .unwrap_err();
        assert!(e.contains("http://"), "{e}");
    }
}
