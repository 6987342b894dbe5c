//! [`Deployments`] over HTTP: the same client, base URL, headers, timeout, body limit, key
//! redaction and error mapping as the import API, on `/api/v1/deployments`.

use super::client::HttpClient;
use super::deployment_wire::{CreateDeploymentBody, ScaleBody, UpdateLimitsBody};
use async_trait::async_trait;
use modelstudio_core::api::{ApiError, ApiKey};
use modelstudio_core::deployment::deployments::{
    Deployment, DeploymentPage, DeploymentState, Deployments, Limits, NewDeployment, PageRequest,
};
use reqwest::{Method, Url};

const DEPLOYMENTS_PATH: [&str; 3] = ["api", "v1", "deployments"];

impl HttpClient {
    /// `/api/v1/deployments` at the key's region, then the deployment's name and an action, each
    /// percent-encoded.
    fn deployment_url(
        &self,
        key: &ApiKey,
        deployed_model: Option<&str>,
        action: Option<&str>,
    ) -> Result<Url, ApiError> {
        self.url_of(
            key,
            &DEPLOYMENTS_PATH,
            deployed_model.into_iter().chain(action),
        )
    }
}

#[async_trait]
impl Deployments for HttpClient {
    async fn create(
        &self,
        key: &ApiKey,
        deployment: &NewDeployment,
    ) -> Result<Deployment, ApiError> {
        let body = CreateDeploymentBody::from(deployment);
        let url = self.deployment_url(key, None, None)?;
        self.send::<Deployment, _>(key, Method::POST, url, Some(&body))
            .await
    }

    async fn get(&self, key: &ApiKey, deployed_model: &str) -> Result<Deployment, ApiError> {
        let url = self.deployment_url(key, Some(deployed_model), None)?;
        self.send::<Deployment, ()>(key, Method::GET, url, None)
            .await
    }

    async fn list(&self, key: &ApiKey, page: &PageRequest) -> Result<DeploymentPage, ApiError> {
        let mut url = self.deployment_url(key, None, None)?;
        if page.page_no.is_some() || page.page_size.is_some() {
            let mut pairs = url.query_pairs_mut();
            if let Some(n) = page.page_no {
                pairs.append_pair("page_no", &n.to_string());
            }
            if let Some(n) = page.page_size {
                pairs.append_pair("page_size", &n.to_string());
            }
        }
        self.send::<DeploymentPage, ()>(key, Method::GET, url, None)
            .await
    }

    async fn scale(
        &self,
        key: &ApiKey,
        deployed_model: &str,
        capacity: u32,
    ) -> Result<Deployment, ApiError> {
        let url = self.deployment_url(key, Some(deployed_model), Some("scale"))?;
        self.send::<Deployment, _>(key, Method::PUT, url, Some(&ScaleBody { capacity }))
            .await
    }

    async fn update_limits(
        &self,
        key: &ApiKey,
        deployed_model: &str,
        limits: &Limits,
    ) -> Result<Deployment, ApiError> {
        let url = self.deployment_url(key, Some(deployed_model), Some("update"))?;
        let body = UpdateLimitsBody::from(limits);
        self.send::<Deployment, _>(key, Method::PUT, url, Some(&body))
            .await
    }

    async fn delete(
        &self,
        key: &ApiKey,
        deployed_model: &str,
    ) -> Result<DeploymentState, ApiError> {
        let url = self.deployment_url(key, Some(deployed_model), None)?;
        self.send::<DeploymentState, ()>(key, Method::DELETE, url, None)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modelstudio::{decode, HttpClientConfig};
    use std::time::Duration;

    #[test]
    fn urls_encode_the_name_and_keep_the_action() {
        let key = ApiKey::new("sk-x").unwrap();
        let c = HttpClient::new(HttpClientConfig {
            endpoint: "https://dashscope.aliyuncs.com/".into(),
            timeout: Duration::from_secs(1),
            user_agent: "t".into(),
        })
        .unwrap();
        assert_eq!(
            c.deployment_url(&key, None, None).unwrap().as_str(),
            "https://dashscope.aliyuncs.com/api/v1/deployments"
        );
        assert_eq!(
            c.deployment_url(&key, Some("m-v2"), Some("scale"))
                .unwrap()
                .as_str(),
            "https://dashscope.aliyuncs.com/api/v1/deployments/m-v2/scale"
        );
        assert_eq!(
            c.deployment_url(&key, Some("a/b?c"), None)
                .unwrap()
                .as_str(),
            "https://dashscope.aliyuncs.com/api/v1/deployments/a%2Fb%3Fc"
        );
    }

    #[test]
    fn answers_decode_to_deployments_or_typed_errors() {
        let d = decode::<Deployment>(
            200,
            None,
            br#"{"request_id":"r","output":{"deployed_model":"m","status":"DEPLOYING"}}"#,
        )
        .unwrap();
        assert_eq!(d.status, DeploymentState::Deploying);
        // A DELETE answers the status alone (the SDK's type), or the whole deployment (the
        // documentation's example): both are a delete accepted.
        for body in [
            &br#"{"request_id":"r","output":{"status":"DELETING"}}"#[..],
            br#"{"request_id":"r","output":{"deployed_model":"m","status":"DELETING","extra":{"x":1}}}"#,
        ] {
            assert_eq!(
                decode::<DeploymentState>(200, None, body).unwrap(),
                DeploymentState::Deleting
            );
        }
        assert!(decode::<DeploymentState>(200, None, br#"{"output":{}}"#).is_err());
        let e = decode::<Deployment>(
            409,
            None,
            br#"{"request_id":"r","code":"Conflict","message":"Deployed model m already exists, please specify a suffix."}"#,
        )
        .unwrap_err();
        assert!(matches!(e, ApiError::Conflict(_)), "{e}");
        assert!(!e.is_transient() && e.create_certainly_not_applied());
        let e = decode::<Deployment>(200, None, br#"{"request_id":"r"}"#).unwrap_err();
        assert!(matches!(e, ApiError::MalformedResponse { .. }), "{e}");
        let page = decode::<DeploymentPage>(
            200,
            None,
            br#"{"output":{"total":3,"page_no":1,"page_size":2,"deployments":[{"deployed_model":"a","status":"RUNNING"},{"deployed_model":"b","status":"PENDING"}]}}"#,
        )
        .unwrap();
        assert_eq!(page.items.len(), 2);
        assert!(page.has_more());
        for junk in [&b""[..], b"\xff\xfe", b"[]", b"{\"output\":7}", b"null"] {
            assert!(decode::<Deployment>(200, None, junk).is_err());
            assert!(decode::<DeploymentPage>(500, None, junk).is_err());
        }
    }
}
