//! The reqwest (rustls) implementation of [`ImportJobs`]: the one real implementation.

use super::error::{classify, error_code_in_success, excerpt};
use super::wire::{CreateBody, JobBody, PageBody};
use async_trait::async_trait;
use modelstudio_core::api::{ApiError, ApiKey, RemoteError};
use modelstudio_core::import::jobs::{ImportJobs, Job, JobPage, JobState, ListQuery, NewJob};
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Method, Url};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::time::Duration;

const IMPORT_PATH: [&str; 4] = ["api", "v1", "custom_models", "import"];
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

    fn url(&self, key: &ApiKey, job_id: Option<&str>) -> Result<Url, ApiError> {
        self.url_of(key, &IMPORT_PATH, job_id.into_iter())
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

    pub(super) async fn send<T: DeserializeOwned, B: Serialize + Sync>(
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
        decode_response(status, retry_after, &bytes)
            .map_err(|e| e.with_request_id(request_id.as_deref()))
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

/// Turns an answer to a create, get or delete into the job it carries or the error it reports.
/// Pure, so that any bytes a server may send are tested (and fuzzed) without a server; it never
/// panics.
pub fn decode_job(
    status: u16,
    retry_after: Option<Duration>,
    bytes: &[u8],
) -> Result<Job, ApiError> {
    decode_response::<JobBody>(status, retry_after, bytes).map(Job::from)
}

/// Turns an answer to a listing into the page it carries or the error it reports; never panics.
pub fn decode_page(
    status: u16,
    retry_after: Option<Duration>,
    bytes: &[u8],
) -> Result<JobPage, ApiError> {
    decode_response::<PageBody>(status, retry_after, bytes).map(JobPage::from)
}

/// Turns an answer into the `output` it carries or the error it reports.
pub(super) fn decode_response<T: DeserializeOwned>(
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

#[async_trait]
impl ImportJobs for HttpClient {
    async fn create(&self, key: &ApiKey, job: &NewJob) -> Result<Job, ApiError> {
        let body = CreateBody::from(job);
        self.send::<JobBody, _>(key, Method::POST, self.url(key, None)?, Some(&body))
            .await
            .map(Job::from)
    }

    async fn get(&self, key: &ApiKey, job_id: &str) -> Result<Job, ApiError> {
        self.send::<JobBody, ()>(key, Method::GET, self.url(key, Some(job_id))?, None)
            .await
            .map(Job::from)
    }

    async fn list(&self, key: &ApiKey, query: &ListQuery) -> Result<JobPage, ApiError> {
        let mut url = self.url(key, None)?;
        {
            let mut pairs = url.query_pairs_mut();
            if let Some(n) = query.page_no {
                pairs.append_pair("page_no", &n.to_string());
            }
            if let Some(n) = query.page_size {
                pairs.append_pair("page_size", &n.to_string());
            }
            if let Some(s) = query
                .state
                .as_ref()
                .map(JobState::spelling)
                .filter(|s| !s.is_empty())
            {
                pairs.append_pair("status", s);
            }
            if let Some(m) = query.model_name.as_deref().filter(|s| !s.is_empty()) {
                pairs.append_pair("model_name", m);
            }
        }
        if url.query() == Some("") {
            url.set_query(None);
        }
        self.send::<PageBody, ()>(key, Method::GET, url, None)
            .await
            .map(JobPage::from)
    }

    async fn delete(&self, key: &ApiKey, job_id: &str) -> Result<Job, ApiError> {
        self.send::<JobBody, ()>(key, Method::DELETE, self.url(key, Some(job_id))?, None)
            .await
            .map(Job::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(endpoint: &str) -> HttpClient {
        HttpClient::new(HttpClientConfig {
            endpoint: endpoint.into(),
            timeout: Duration::from_secs(5),
            user_agent: "test".into(),
        })
        .unwrap()
    }

    #[test]
    fn urls_are_built_from_the_endpoint() {
        let key = ApiKey::new("sk-x").unwrap();
        let c = client("https://dashscope-intl.aliyuncs.com");
        assert_eq!(
            c.url(&key, None).unwrap().as_str(),
            "https://dashscope-intl.aliyuncs.com/api/v1/custom_models/import"
        );
        let c = client("http://127.0.0.1:8089/");
        assert_eq!(
            c.url(&key, Some("a/b?c")).unwrap().as_str(),
            "http://127.0.0.1:8089/api/v1/custom_models/import/a%2Fb%3Fc"
        );
        // A key of another region goes to that region's host.
        let beijing = key.scoped(Some("https://dashscope.aliyuncs.com".into()), None);
        assert_eq!(
            c.url(&beijing, None).unwrap().as_str(),
            "https://dashscope.aliyuncs.com/api/v1/custom_models/import"
        );
    }

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
        let e = decode_job(401, None, &clean).unwrap_err();
        assert!(!format!("{e} {e:?}").contains("sk-canary-1"));
        assert!(e.to_string().contains("<redacted>"));
        // Even past the 200-character excerpt of a gateway page.
        let page = format!(
            "<html>{}Authorization: Bearer sk-canary-1</html>",
            "x".repeat(165)
        );
        let e = decode_job(502, None, &redact(page.as_bytes(), "sk-canary-1")).unwrap_err();
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
