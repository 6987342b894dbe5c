//! The deployment API over real HTTP, on what the official Python SDK (dashscope 2.0.2) needs:
//! the status-only delete, plans in any case, `deploy_spec` as a string, `x-request-id` on every
//! answer, fixed workspaces and the workspace header, and DEPLOYING. Every wait is bounded.

use std::time::{Duration, Instant};

use modelstudio_simulator::{DeploymentRecord, RequestRecord, RunningSimulator, SimulatorConfig};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const KEY: &str = "sk-dep-alpha";

struct Env {
    sim: RunningSimulator,
    http: reqwest::Client,
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
    text: String,
}

impl Answer {
    /// The body's request_id, checked against the `x-request-id` header.
    fn request_id(&self) -> &str {
        let id = self.body["request_id"].as_str().unwrap_or_default();
        assert_eq!(id.len(), 36, "{}", self.text);
        let header = self
            .headers
            .get("x-request-id")
            .map(|h| h.to_str().unwrap());
        assert_eq!(
            header,
            Some(id),
            "x-request-id must repeat the body's request_id"
        );
        id
    }

    fn output(&self) -> &Value {
        assert_eq!(self.status, StatusCode::OK, "{}", self.text);
        self.request_id();
        assert!(self.body.get("code").is_none(), "{}", self.text);
        &self.body["output"]
    }

    fn assert_error(&self, status: StatusCode, code: &str) -> &str {
        assert_eq!(self.status, status, "{}", self.text);
        assert_eq!(self.body["code"], code, "{}", self.text);
        self.request_id();
        self.body["message"].as_str().unwrap()
    }
}

/// Timers long enough that nothing moves by itself during a test.
fn still() -> SimulatorConfig {
    SimulatorConfig {
        deployment_pending_duration: Duration::from_secs(600),
        deployment_updating_duration: Duration::from_secs(600),
        deployment_deleting_duration: Duration::from_secs(600),
        ..SimulatorConfig::default()
    }
}

impl Env {
    async fn start(config: SimulatorConfig) -> Self {
        let sim = RunningSimulator::start(config).await.unwrap();
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        Self { sim, http }
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
        workspace: Option<&str>,
    ) -> Answer {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.sim.base_url()));
        if let Some(key) = key {
            request = request.header("authorization", format!("Bearer {key}"));
        }
        if let Some(workspace) = workspace {
            request = request.header("X-DashScope-WorkSpace", workspace);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            body,
            text,
        }
    }

    async fn api(&self, method: Method, path: &str, key: &str, body: Option<Value>) -> Answer {
        self.send(
            method,
            &format!("/api/v1/deployments{path}"),
            Some(key),
            body,
            None,
        )
        .await
    }

    async fn create(&self, key: &str, body: Value) -> Answer {
        self.api(Method::POST, "", key, Some(body)).await
    }

    async fn get(&self, key: &str, name: &str) -> Answer {
        self.api(Method::GET, &format!("/{name}"), key, None).await
    }

    async fn delete(&self, key: &str, name: &str) -> Answer {
        self.api(Method::DELETE, &format!("/{name}"), key, None)
            .await
    }

    async fn records(&self) -> Vec<DeploymentRecord> {
        let answer = self
            .send(Method::GET, "/_simulator/deployments", None, None, None)
            .await;
        serde_json::from_value(answer.body).unwrap()
    }

    async fn requests(&self) -> Vec<RequestRecord> {
        let answer = self
            .send(Method::GET, "/_simulator/requests", None, None, None)
            .await;
        serde_json::from_value(answer.body).unwrap()
    }

    /// `POST /_simulator/deployments/{id}/state` for the live deployment named `name`.
    async fn set_state(&self, name: &str, body: Value) -> Answer {
        let records = self.records().await;
        let record = records
            .iter()
            .rev()
            .find(|r| r.deployed_model == name && !r.deleted)
            .unwrap_or_else(|| panic!("no live deployment {name}"));
        self.send(
            Method::POST,
            &format!("/_simulator/deployments/{}/state", record.id),
            None,
            Some(body),
            None,
        )
        .await
    }
}

#[tokio::test]
async fn delete_answers_the_status_only_then_the_deployment_is_gone() {
    let env = Env::start(still()).await;
    env.create(KEY, json!({"model_name": "qwen-turbo", "capacity": 2}))
        .await
        .output();
    for _ in 0..2 {
        // The first DELETE and a repeated one while DELETING answer alike.
        let answer = env.delete(KEY, "qwen-turbo").await;
        assert_eq!(answer.output(), &json!({"status": "DELETING"}));
        let keys: Vec<&String> = answer.body.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["output", "request_id"], "{}", answer.text);
    }
    assert_eq!(
        env.get(KEY, "qwen-turbo").await.output()["status"],
        "DELETING"
    );
    env.set_state("qwen-turbo", json!({"finish_now": true}))
        .await;
    env.get(KEY, "qwen-turbo")
        .await
        .assert_error(StatusCode::NOT_FOUND, "NotFound");
    env.delete(KEY, "qwen-turbo")
        .await
        .assert_error(StatusCode::NOT_FOUND, "NotFound");
}

#[tokio::test]
async fn plans_are_read_in_any_case_and_answered_lowercase() {
    let env = Env::start(still()).await;
    for (i, plan) in ["Lora", "LORA", "lora", "LoRa"].iter().enumerate() {
        let answer = env
            .create(
                KEY,
                json!({"model_name": "emo", "capacity": 1, "plan": plan, "suffix": format!("l{i}")}),
            )
            .await;
        assert_eq!(answer.output()["plan"], "lora", "{plan}");
    }
    let mu = env
        .create(
            KEY,
            json!({"model_name": "qwen-plus", "capacity": 8, "plan": "MU", "deploy_spec": "MU1"}),
        )
        .await;
    assert_eq!(mu.output()["plan"], "mu");
    assert_eq!(mu.output()["model_unit_spec"], "MU1");
    let ptu = env
        .create(
            KEY,
            json!({"model_name": "qwen-plus", "plan": "Ptu", "suffix": "p",
                   "ptu_capacity": {"input_tpm": 10, "output_tpm": 1}}),
        )
        .await;
    assert_eq!(ptu.output()["plan"], "ptu");
    let cu = env
        .create(
            KEY,
            json!({"model_name": "qwen-turbo", "capacity": 2, "plan": "CU"}),
        )
        .await;
    assert_eq!(cu.output()["plan"], "cu");
    // Kept lowercase, so the lora rules hold whatever the spelling sent.
    env.set_state("emo-l0", json!({"finish_now": true})).await;
    env.api(
        Method::PUT,
        "/emo-l0/scale",
        KEY,
        Some(json!({"capacity": 2})),
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, "UnsupportedOperation");
    let message = env
        .create(
            KEY,
            json!({"model_name": "emo", "capacity": 1, "plan": "Gold", "suffix": "g"}),
        )
        .await
        .assert_error(StatusCode::BAD_REQUEST, "InvalidParameter")
        .to_owned();
    assert!(message.contains("ptu, mu, lora, cu"), "{message}");
}

#[tokio::test]
async fn deploy_spec_must_be_a_string_and_billing_method_is_ignored() {
    let env = Env::start(still()).await;
    for spec in [
        json!({"spec": "MU1"}),
        json!(["MU1"]),
        json!(1),
        json!(true),
    ] {
        let answer = env
            .create(
                KEY,
                json!({"model_name": "qwen-plus", "capacity": 8, "plan": "mu", "deploy_spec": spec}),
            )
            .await;
        let message = answer.assert_error(StatusCode::BAD_REQUEST, "InvalidParameter");
        assert!(
            message.contains(
                r#"deploy_spec: must be a string naming the model unit spec, such as "MU1""#
            ),
            "{message}"
        );
    }
    let message = env
        .create(
            KEY,
            json!({"model_name": "qwen-plus", "capacity": 8, "billing_method": 3}),
        )
        .await
        .assert_error(StatusCode::BAD_REQUEST, "InvalidParameter")
        .to_owned();
    assert!(
        message.contains("billing_method: must be a string"),
        "{message}"
    );
    let answer = env
        .create(
            KEY,
            json!({"model_name": "qwen-plus", "capacity": 8, "plan": "mu",
                   "deploy_spec": "MU2", "billing_method": "post_paid"}),
        )
        .await;
    let output = answer.output();
    assert_eq!(output["model_unit_spec"], "MU2");
    assert!(output.get("billing_method").is_none(), "{output}");
    assert_eq!(env.records().await.len(), 1, "refused creates make nothing");
}

#[tokio::test]
async fn every_api_answer_carries_its_request_id_as_a_header() {
    let env = Env::start(still()).await;
    // Successes of both APIs.
    env.create(KEY, json!({"model_name": "emo", "capacity": 1}))
        .await
        .output();
    env.api(Method::GET, "?page_size=5", KEY, None)
        .await
        .output();
    env.api(Method::GET, "/models", KEY, None).await.output();
    env.send(
        Method::GET,
        "/api/v1/custom_models/import",
        Some(KEY),
        None,
        None,
    )
    .await
    .output();
    // Errors: auth, validation, missing, conflict, unknown route, wrong method, workspace.
    env.get("not-a-key", "emo")
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "InvalidApiKey");
    env.create(KEY, json!({"capacity": 1}))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "InvalidParameter");
    env.get(KEY, "nope")
        .await
        .assert_error(StatusCode::NOT_FOUND, "NotFound");
    env.create(KEY, json!({"model_name": "emo", "capacity": 1}))
        .await
        .assert_error(StatusCode::CONFLICT, "Conflict");
    env.send(Method::GET, "/api/v1/nowhere", Some(KEY), None, None)
        .await
        .assert_error(StatusCode::NOT_FOUND, "NotFound");
    env.send(Method::PATCH, "/api/v1/deployments", Some(KEY), None, None)
        .await
        .assert_error(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed");
    env.send(
        Method::GET,
        "/api/v1/deployments",
        Some(KEY),
        None,
        Some("llm-elsewhere"),
    )
    .await
    .assert_error(StatusCode::FORBIDDEN, "Workspace.AccessDenied");
    // Injected faults too.
    let faults = env
        .send(
            Method::PUT,
            "/_simulator/faults",
            None,
            Some(json!({"throttle_rate": 1.0})),
            None,
        )
        .await;
    assert_eq!(faults.status, StatusCode::OK, "{}", faults.text);
    let throttled = env.get(KEY, "emo").await;
    throttled.assert_error(StatusCode::TOO_MANY_REQUESTS, "Throttling.RateQuota");
    assert_eq!(throttled.headers["retry-after"], "1");
}

#[tokio::test]
async fn a_key_may_have_a_fixed_workspace_that_the_header_must_match() {
    let env = Env::start(SimulatorConfig {
        api_keys: vec![
            "sk-plain".into(),
            "sk-bj=llm-beijing".into(),
            "sk-bj2=llm-beijing".into(),
            "sk-taken=llm-sim0001".into(),
        ],
        ..still()
    })
    .await;
    // A plain key still gets llm-simNNNN in first-use order, avoiding fixed ids.
    let plain = env
        .create("sk-plain", json!({"model_name": "emo", "capacity": 1}))
        .await;
    assert_eq!(plain.output()["workspace_id"], "llm-sim0002");
    let bj = env
        .create("sk-bj", json!({"model_name": "emo", "capacity": 1}))
        .await;
    assert_eq!(bj.output()["workspace_id"], "llm-beijing");
    // Two keys with the same fixed id share the workspace.
    assert_eq!(
        env.get("sk-bj2", "emo").await.output()["workspace_id"],
        "llm-beijing"
    );
    assert_eq!(
        env.get("sk-taken", "emo").await.status,
        StatusCode::NOT_FOUND
    );

    // The header may name the key's own workspace, or be left out (or empty).
    for workspace in [Some("llm-beijing"), None, Some("")] {
        let answer = env
            .send(
                Method::GET,
                "/api/v1/deployments/emo",
                Some("sk-bj"),
                None,
                workspace,
            )
            .await;
        assert_eq!(
            answer.output()["workspace_id"],
            "llm-beijing",
            "{workspace:?}"
        );
    }
    let plain_own = env
        .send(
            Method::GET,
            "/api/v1/deployments",
            Some("sk-plain"),
            None,
            Some("llm-sim0002"),
        )
        .await;
    assert_eq!(plain_own.output()["total"], 1);
    // Any other workspace: 403, on the import API too, and nothing is made.
    let message = env
        .send(
            Method::POST,
            "/api/v1/deployments",
            Some("sk-bj"),
            Some(json!({"model_name": "qwen-turbo", "capacity": 2})),
            Some("llm-sim0002"),
        )
        .await
        .assert_error(StatusCode::FORBIDDEN, "Workspace.AccessDenied")
        .to_owned();
    assert!(
        message.starts_with("The API key does not belong to workspace llm-sim0002."),
        "{message}"
    );
    let long = "w".repeat(300);
    let message = env
        .send(
            Method::GET,
            "/api/v1/custom_models/import",
            Some("sk-plain"),
            None,
            Some(&long),
        )
        .await
        .assert_error(StatusCode::FORBIDDEN, "Workspace.AccessDenied")
        .to_owned();
    assert!(message.len() < 250, "the id is clipped: {message}");
    // A bad key is refused as such, whatever workspace it names.
    env.send(
        Method::GET,
        "/api/v1/deployments",
        Some("sk-other"),
        None,
        Some("llm-beijing"),
    )
    .await
    .assert_error(StatusCode::UNAUTHORIZED, "InvalidApiKey");
    assert_eq!(env.records().await.len(), 2);

    // Records say which header each call sent, and never the key.
    let requests = env.requests().await;
    let denied: Vec<&RequestRecord> = requests
        .iter()
        .filter(|r| r.code.as_deref() == Some("Workspace.AccessDenied"))
        .collect();
    assert_eq!(denied.len(), 2);
    assert_eq!(denied[0].workspace_header.as_deref(), Some("llm-sim0002"));
    assert_eq!(denied[0].workspace_id.as_deref(), Some("llm-beijing"));
    assert_eq!(requests[0].workspace_header, None);
    assert!(requests
        .iter()
        .any(|r| r.workspace_header.as_deref() == Some("llm-beijing") && r.status == 200));
    let raw = env
        .send(Method::GET, "/_simulator/requests", None, None, None)
        .await
        .text;
    assert!(raw.contains(r#""workspace_header":"llm-sim0002""#), "{raw}");
    assert!(!raw.contains("sk-"), "a key leaked: {raw}");
}

#[tokio::test]
async fn deploying_follows_pending_when_configured() {
    let env = Env::start(SimulatorConfig {
        deployment_pending_duration: Duration::ZERO,
        deployment_deploying_duration: Duration::from_secs(600),
        ..still()
    })
    .await;
    let created = env
        .create(KEY, json!({"model_name": "qwen-turbo", "capacity": 2}))
        .await;
    assert_eq!(created.output()["status"], "PENDING");
    let got = env.get(KEY, "qwen-turbo").await;
    assert_eq!(got.output()["status"], "DEPLOYING");
    assert_eq!(got.output()["ready_capacity"], 0);
    let message = env
        .api(
            Method::PUT,
            "/qwen-turbo/scale",
            KEY,
            Some(json!({"capacity": 4})),
        )
        .await
        .assert_error(StatusCode::BAD_REQUEST, "OperationDenied")
        .to_owned();
    assert!(message.contains("DEPLOYING"), "{message}");
    let record = env
        .set_state("qwen-turbo", json!({"finish_now": true}))
        .await;
    assert_eq!(record.body["status"], "RUNNING", "{}", record.text);
    assert_eq!(
        env.get(KEY, "qwen-turbo").await.output()["ready_capacity"],
        2
    );
}

#[tokio::test]
async fn deploying_never_shows_by_default() {
    let env = Env::start(SimulatorConfig {
        deployment_pending_duration: Duration::from_millis(50),
        ..still()
    })
    .await;
    env.create(KEY, json!({"model_name": "emo", "capacity": 1}))
        .await
        .output();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        let status = env.get(KEY, "emo").await.output()["status"]
            .as_str()
            .unwrap()
            .to_owned();
        if seen.last() != Some(&status) {
            seen.push(status.clone());
        }
        if status == "RUNNING" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(seen.last().map(String::as_str), Some("RUNNING"), "{seen:?}");
    assert!(!seen.iter().any(|s| s == "DEPLOYING"), "{seen:?}");
}

#[tokio::test]
async fn the_control_api_holds_deploying_until_running() {
    let env = Env::start(still()).await;
    env.create(KEY, json!({"model_name": "qwen-plus", "capacity": 8}))
        .await
        .output();
    let held = env
        .set_state(
            "qwen-plus",
            json!({"status": "DEPLOYING", "finish_now": true}),
        )
        .await;
    assert_eq!(held.status, StatusCode::OK, "{}", held.text);
    assert_eq!(held.body["status"], "DEPLOYING");
    let got = env.get(KEY, "qwen-plus").await;
    assert_eq!(got.output()["status"], "DEPLOYING");
    assert_eq!(got.output()["ready_capacity"], 0);
    let running = env
        .set_state("qwen-plus", json!({"status": "RUNNING"}))
        .await;
    assert_eq!(running.body["status"], "RUNNING");
    assert_eq!(
        env.get(KEY, "qwen-plus").await.output()["ready_capacity"],
        8
    );
    let refused = env.set_state("qwen-plus", json!({"status": "DONE"})).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    let message = refused.body["message"].as_str().unwrap();
    assert!(message.contains("DEPLOYING"), "{message}");
}

#[tokio::test]
async fn a_running_deployment_answers_on_the_openai_compatible_chat_endpoint() {
    let env = Env::start(still()).await;
    let chat = |key: Option<&'static str>, body: Value| {
        env.send(
            Method::POST,
            "/compatible-mode/v1/chat/completions",
            key,
            Some(body),
            None,
        )
    };
    let hello =
        |model: &str| json!({"model": model, "messages": [{"role": "user", "content": "hi"}]});
    env.create(KEY, json!({"model_name": "qwen-turbo", "capacity": 2}))
        .await
        .output();
    // Not running yet: the model is not there to call.
    let pending = chat(Some(KEY), hello("qwen-turbo")).await;
    assert_eq!(pending.status, StatusCode::NOT_FOUND, "{}", pending.text);
    assert_eq!(pending.body["error"]["code"], "model_not_found");
    env.set_state("qwen-turbo", json!({"finish_now": true}))
        .await;
    let answer = chat(Some(KEY), hello("qwen-turbo")).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_eq!(answer.body["object"], "chat.completion");
    assert_eq!(answer.body["model"], "qwen-turbo");
    assert_eq!(answer.body["choices"][0]["message"]["role"], "assistant");
    // Another workspace's key does not see it; a bad request and a missing key say so.
    let other = chat(Some("sk-dep-other"), hello("qwen-turbo")).await;
    assert_eq!(other.status, StatusCode::NOT_FOUND, "{}", other.text);
    let bad = chat(Some(KEY), json!({"model": "qwen-turbo", "messages": []})).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.text);
    let anonymous = chat(None, hello("qwen-turbo")).await;
    assert_eq!(
        anonymous.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        anonymous.text
    );
    assert_eq!(anonymous.body["error"]["code"], "invalid_api_key");
}
