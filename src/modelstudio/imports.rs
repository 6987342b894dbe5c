//! [`ImportJobs`] over HTTP: the shared client (base URL, headers, timeout, body limit, key
//! redaction and error mapping) on `/api/v1/custom_models/import`.

use super::client::HttpClient;
use super::import_wire::CreateBody;
use async_trait::async_trait;
use modelstudio_core::api::{ApiError, ApiKey};
use modelstudio_core::import::jobs::{ImportJobs, Job, JobPage, JobState, ListQuery, NewJob};
use reqwest::{Method, Url};

const IMPORT_PATH: [&str; 4] = ["api", "v1", "custom_models", "import"];

impl HttpClient {
    /// `/api/v1/custom_models/import` at the key's region, then the job's ID, percent-encoded.
    fn job_url(&self, key: &ApiKey, job_id: Option<&str>) -> Result<Url, ApiError> {
        self.url_of(key, &IMPORT_PATH, job_id.into_iter())
    }
}

#[async_trait]
impl ImportJobs for HttpClient {
    async fn create(&self, key: &ApiKey, job: &NewJob) -> Result<Job, ApiError> {
        let body = CreateBody::from(job);
        self.send::<Job, _>(key, Method::POST, self.job_url(key, None)?, Some(&body))
            .await
    }

    async fn get(&self, key: &ApiKey, job_id: &str) -> Result<Job, ApiError> {
        self.send::<Job, ()>(key, Method::GET, self.job_url(key, Some(job_id))?, None)
            .await
    }

    async fn list(&self, key: &ApiKey, query: &ListQuery) -> Result<JobPage, ApiError> {
        let mut url = self.job_url(key, None)?;
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
        self.send::<JobPage, ()>(key, Method::GET, url, None).await
    }

    async fn delete(&self, key: &ApiKey, job_id: &str) -> Result<Job, ApiError> {
        self.send::<Job, ()>(key, Method::DELETE, self.job_url(key, Some(job_id))?, None)
            .await
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::modelstudio::HttpClientConfig;
    use std::time::Duration;

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
            c.job_url(&key, None).unwrap().as_str(),
            "https://dashscope-intl.aliyuncs.com/api/v1/custom_models/import"
        );
        let c = client("http://127.0.0.1:8089/");
        assert_eq!(
            c.job_url(&key, Some("a/b?c")).unwrap().as_str(),
            "http://127.0.0.1:8089/api/v1/custom_models/import/a%2Fb%3Fc"
        );
        // A key of another region goes to that region's host.
        let beijing = key.scoped(Some("https://dashscope.aliyuncs.com".into()), None);
        assert_eq!(
            c.job_url(&beijing, None).unwrap().as_str(),
            "https://dashscope.aliyuncs.com/api/v1/custom_models/import"
        );
    }
}
