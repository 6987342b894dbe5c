#![allow(dead_code)]
//! Helpers shared by the integration tests: every server listens on 127.0.0.1 on a free port.

use sandbox_apiserver::RunningApiServer;
use serde_json::Value;

pub async fn start() -> RunningApiServer {
    RunningApiServer::start("127.0.0.1:0".parse().unwrap())
        .await
        .expect("server starts")
}

pub fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("fixture exists");
    serde_saphyr::from_str(&text).expect("fixture parses")
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .unwrap()
}

/// Register the ModelImport CRD fixture over HTTP.
pub async fn install_crd(base: &str) {
    let r = http()
        .post(format!(
            "{base}/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
        ))
        .json(&fixture("modelimport-crd.yaml"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
}
