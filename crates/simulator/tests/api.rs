//! The simulator over real HTTP: every endpoint, every error, the lifecycle, faults, counters
//! and the control API. Every wait is bounded in iterations and time.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use modelstudio_simulator::{
    Faults, JobRecord, RequestRecord, RunningSimulator, SimulatorConfig, Stats,
};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const KEY: &str = "sk-test-alpha";
const OTHER_KEY: &str = "sk-test-beta";

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
    fn output(&self) -> &Value {
        assert_eq!(self.status, StatusCode::OK, "{}", self.text);
        assert_eq!(
            self.headers["x-request-id"],
            self.body["request_id"].as_str().unwrap(),
            "the x-request-id header repeats the body's"
        );
        &self.body["output"]
    }

    fn assert_error(&self, status: StatusCode, code: &str) {
        assert_eq!(self.status, status, "{}", self.text);
        assert!(self.text.starts_with(r#"{"request_id":""#), "{}", self.text);
        assert_eq!(self.headers["content-type"], "application/json");
        assert_eq!(self.body["code"], code, "{}", self.text);
        assert!(self.body["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert_uuid(&self.body["request_id"]);
        assert_eq!(
            self.headers["x-request-id"],
            self.body["request_id"].as_str().unwrap(),
            "the x-request-id header repeats the body's"
        );
        assert!(self.body.get("output").is_none());
    }
}

fn assert_uuid(v: &Value) {
    let s = v.as_str().unwrap_or_else(|| panic!("not a string: {v}"));
    assert_eq!(s.len(), 36, "{s}");
    assert!(
        s.chars()
            .enumerate()
            .all(|(i, c)| if [8, 13, 18, 23].contains(&i) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }),
        "{s}"
    );
}

fn fast() -> SimulatorConfig {
    SimulatorConfig {
        pending_duration: Duration::from_millis(100),
        running_duration: Duration::from_millis(200),
        ..SimulatorConfig::default()
    }
}

/// Timers long enough that nothing finishes during a test.
fn slow() -> SimulatorConfig {
    SimulatorConfig {
        pending_duration: Duration::from_secs(600),
        running_duration: Duration::from_secs(600),
        ..SimulatorConfig::default()
    }
}

fn create_body(base: &str, object_key: &str) -> Value {
    json!({
        "model_name": base,
        "source": "oss",
        "weight_type": "lora",
        "storage_info": {"bucket_name": "my-bucket", "object_key": object_key},
    })
}

impl Env {
    async fn start(config: SimulatorConfig) -> Self {
        let sim = RunningSimulator::start(config).await.unwrap();
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .user_agent("simulator-tests/1.0")
            .build()
            .unwrap();
        Self { sim, http }
    }

    async fn raw(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Vec<u8>>,
        extra: &[(&str, &str)],
    ) -> Answer {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.sim.base_url()))
            .header("content-type", "application/json");
        if let Some(key) = key {
            request = request.header("authorization", format!("Bearer {key}"));
        }
        for (name, value) in extra {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.body(body);
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

    async fn call(&self, method: Method, path: &str, key: &str, body: Option<Value>) -> Answer {
        let body = body.map(|b| serde_json::to_vec(&b).unwrap());
        self.raw(method, path, Some(key), body, &[]).await
    }

    async fn create(&self, key: &str, body: Value) -> Answer {
        self.call(
            Method::POST,
            "/api/v1/custom_models/import",
            key,
            Some(body),
        )
        .await
    }

    async fn create_ok(&self, key: &str, object_key: &str) -> Value {
        let answer = self.create(key, create_body("qwen3-8b", object_key)).await;
        answer.output().clone()
    }

    async fn get(&self, key: &str, job_id: &str) -> Answer {
        self.call(
            Method::GET,
            &format!("/api/v1/custom_models/import/{job_id}"),
            key,
            None,
        )
        .await
    }

    async fn delete(&self, key: &str, job_id: &str) -> Answer {
        self.call(
            Method::DELETE,
            &format!("/api/v1/custom_models/import/{job_id}"),
            key,
            None,
        )
        .await
    }

    async fn list(&self, key: &str, query: &str) -> Answer {
        self.call(
            Method::GET,
            &format!("/api/v1/custom_models/import{query}"),
            key,
            None,
        )
        .await
    }

    async fn control(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        let body = body.map(|b| serde_json::to_vec(&b).unwrap());
        self.raw(method, &format!("/_simulator/{path}"), None, body, &[])
            .await
    }

    async fn stats(&self) -> Stats {
        let answer = self.control(Method::GET, "stats", None).await;
        assert_eq!(answer.status, StatusCode::OK);
        serde_json::from_value(answer.body).unwrap()
    }

    async fn jobs(&self) -> Vec<JobRecord> {
        let answer = self.control(Method::GET, "jobs", None).await;
        assert_eq!(answer.status, StatusCode::OK);
        serde_json::from_value(answer.body).unwrap()
    }

    async fn put_faults(&self, faults: Value) -> Answer {
        self.control(Method::PUT, "faults", Some(faults)).await
    }

    /// Polls GET until the job shows `want`; panics after 5 s or 250 polls.
    async fn wait_status(&self, key: &str, job_id: &str, want: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut seen = Vec::new();
        for _ in 0..250 {
            let answer = self.get(key, job_id).await;
            let output = answer.output().clone();
            let status = output["status"].as_str().unwrap().to_owned();
            if status == want {
                return output;
            }
            if seen.last() != Some(&status) {
                seen.push(status);
            }
            if Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("job {job_id} never reached {want}; saw {seen:?}");
    }
}

fn id(output: &Value) -> String {
    output["job_id"].as_str().unwrap().to_owned()
}

const JOB_FIELDS: [&str; 7] = [
    "job_id",
    "model_name",
    "display_name",
    "source",
    "storage_info",
    "status",
    "gmt_create",
];

fn assert_gmt_create(s: &str) {
    // YYYY-MM-DDTHH:MM:SS.mmm+00:00
    assert_eq!(s.len(), 29, "{s}");
    let shape: String = s
        .chars()
        .map(|c| if c.is_ascii_digit() { 'd' } else { c })
        .collect();
    assert_eq!(shape, "dddd-dd-ddTdd:dd:dd.ddd+dd:dd", "{s}");
    assert!(s.ends_with("+00:00"));
}

#[tokio::test]
async fn create_answer_shape() {
    let env = Env::start(fast()).await;
    let answer = env.create(KEY, create_body("qwen3-32b", "models/a/")).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(answer.body.get("code").is_none(), "success has no code");
    assert_uuid(&answer.body["request_id"]);
    // Documented field order.
    assert!(
        answer.text.starts_with(r#"{"request_id":""#),
        "{}",
        answer.text
    );
    let order = [
        "job_id",
        "model_name",
        "display_name",
        "source",
        "weight_type",
        "storage_info",
        "status",
        "gmt_create",
    ]
    .map(|f| answer.text.find(&format!("\"{f}\":")).unwrap());
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{}", answer.text);
    let out = answer.output();
    for field in JOB_FIELDS {
        assert!(out.get(field).is_some(), "missing {field}");
    }
    assert_uuid(&out["job_id"]);
    let version = out["job_id"].as_str().unwrap().as_bytes()[14];
    assert_eq!(version, b'4', "UUID v4");
    assert_eq!(out["weight_type"], "lora");
    assert_eq!(out["source"], "OSS");
    assert_eq!(out["status"], "PENDING");
    assert_eq!(out["display_name"], "qwen3-32b");
    assert_eq!(
        out["storage_info"],
        json!({"bucket_name": "my-bucket", "object_key": "models/a/"})
    );
    assert!(out.get("error_code").is_none());
    assert_gmt_create(out["gmt_create"].as_str().unwrap());
    let name = out["model_name"].as_str().unwrap();
    let rest = name.strip_prefix("qwen3-32b-offline-").unwrap();
    let (date, suffix) = rest.split_once('-').unwrap();
    assert_eq!(date.len(), 8);
    assert!(date.chars().all(|c| c.is_ascii_digit()));
    assert_eq!(
        &out["gmt_create"].as_str().unwrap()[..10].replace('-', ""),
        date
    );
    assert_eq!(suffix.len(), 4);
    assert!(suffix
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));

    // display_name as sent (non-ASCII, 50 characters), weight_type full.
    let mut body = create_body("qwen2.5-7b-instruct", "models/b/");
    body["display_name"] = json!("模".repeat(50));
    body["weight_type"] = json!("full");
    let answer = env.create(KEY, body).await;
    assert_eq!(answer.output()["display_name"], "模".repeat(50));
    assert_eq!(answer.output()["weight_type"], "full");

    // Same request twice: two jobs, two names (no idempotency).
    let a = env.create_ok(KEY, "models/c/").await;
    let b = env.create_ok(KEY, "models/c/").await;
    assert_ne!(a["job_id"], b["job_id"]);
    assert_ne!(a["model_name"], b["model_name"]);
    env.sim.shutdown().await;
}

#[tokio::test]
async fn lifecycle_success_and_delete_rules() {
    let env = Env::start(fast()).await;
    let created = env.create_ok(KEY, "models/ok/").await;
    let job_id = id(&created);

    let answer = env.get(KEY, &job_id).await;
    assert!(answer.body.get("code").is_none());
    let out = answer.output();
    assert!(out.get("weight_type").is_none(), "get has no weight_type");
    assert_eq!(out["job_id"], created["job_id"]);
    assert_eq!(out["model_name"], created["model_name"]);
    assert_eq!(out["gmt_create"], created["gmt_create"]);

    // PENDING: refused.
    let answer = env.delete(KEY, &job_id).await;
    if env.get(KEY, &job_id).await.output()["status"] == "PENDING" {
        answer.assert_error(StatusCode::BAD_REQUEST, "OperationDenied");
        assert_eq!(
            answer.body["message"],
            "The import job is currently running and cannot be deleted."
        );
    }
    // RUNNING: refused.
    env.wait_status(KEY, &job_id, "RUNNING").await;
    let answer = env.delete(KEY, &job_id).await;
    answer.assert_error(StatusCode::BAD_REQUEST, "OperationDenied");
    assert!(env
        .get(KEY, &job_id)
        .await
        .output()
        .get("error_code")
        .is_none());

    let done = env.wait_status(KEY, &job_id, "SUCCESSED").await;
    assert!(done.get("error_code").is_none());

    let answer = env.delete(KEY, &job_id).await;
    assert!(answer.body.get("code").is_none());
    let out = answer.output();
    assert_eq!(out["status"], "SUCCESSED");
    assert_eq!(out["job_id"], job_id.as_str());
    assert!(out.get("weight_type").is_none());
    for field in JOB_FIELDS {
        assert!(out.get(field).is_some(), "missing {field}");
    }

    env.get(KEY, &job_id)
        .await
        .assert_error(StatusCode::NOT_FOUND, "NotFound");
    env.delete(KEY, &job_id)
        .await
        .assert_error(StatusCode::NOT_FOUND, "NotFound");
    let list = env.list(KEY, "").await;
    assert_eq!(list.output()["total"], 0);

    let jobs = env.jobs().await;
    assert_eq!(jobs.len(), 1);
    assert!(jobs[0].deleted);
    assert_eq!(jobs[0].status, "SUCCESSED");
    env.sim.shutdown().await;
}

#[tokio::test]
async fn operation_denied_while_pending() {
    let env = Env::start(slow()).await;
    let job_id = id(&env.create_ok(KEY, "models/x/").await);
    let answer = env.delete(KEY, &job_id).await;
    answer.assert_error(StatusCode::BAD_REQUEST, "OperationDenied");
    assert_eq!(
        answer.body["message"],
        "The import job is currently running and cannot be deleted."
    );
    assert_eq!(env.get(KEY, &job_id).await.output()["status"], "PENDING");
}

#[tokio::test]
async fn operation_denied_status_is_configurable() {
    let env = Env::start(SimulatorConfig {
        operation_denied_status: 409,
        ..slow()
    })
    .await;
    let job_id = id(&env.create_ok(KEY, "models/x/").await);
    env.delete(KEY, &job_id)
        .await
        .assert_error(StatusCode::CONFLICT, "OperationDenied");
}

#[tokio::test]
async fn lifecycle_failure() {
    let env = Env::start(fast()).await;
    let job_id = id(&env.create_ok(KEY, "models/simulate-failure/").await);
    let running = env.wait_status(KEY, &job_id, "RUNNING").await;
    assert!(running.get("error_code").is_none());
    let failed = env.wait_status(KEY, &job_id, "FAILED").await;
    assert_eq!(
        failed["error_code"],
        "Failed to get files from OSS. Check the files in OSS."
    );
    let list = env.list(KEY, "?status=FAILED").await;
    assert_eq!(list.output()["total"], 1);
    assert_eq!(list.output()["list"][0]["error_code"], failed["error_code"]);

    let deleted = env.delete(KEY, &job_id).await;
    assert_eq!(deleted.output()["status"], "FAILED");
    assert_eq!(deleted.output()["error_code"], failed["error_code"]);
    assert!(deleted.output().get("weight_type").is_none());
    env.get(KEY, &job_id)
        .await
        .assert_error(StatusCode::NOT_FOUND, "NotFound");
    env.delete(KEY, &job_id)
        .await
        .assert_error(StatusCode::NOT_FOUND, "NotFound");
}

#[tokio::test]
async fn custom_fail_marker_and_message() {
    let env = Env::start(SimulatorConfig {
        fail_marker: "broken".into(),
        failure_message: "OSS获取文件失败，请检查OSS内文件".into(),
        pending_duration: Duration::ZERO,
        running_duration: Duration::ZERO,
        ..SimulatorConfig::default()
    })
    .await;
    let bad = id(&env.create_ok(KEY, "x/broken/").await);
    let good = id(&env.create_ok(KEY, "x/simulate-failure/").await);
    let failed = env.wait_status(KEY, &bad, "FAILED").await;
    assert_eq!(failed["error_code"], "OSS获取文件失败，请检查OSS内文件");
    env.wait_status(KEY, &good, "SUCCESSED").await;
}

#[tokio::test]
async fn success_spelling_succeeded() {
    let env = Env::start(SimulatorConfig {
        success_spelling: "SUCCEEDED".into(),
        ..fast()
    })
    .await;
    let job_id = id(&env.create_ok(KEY, "models/x/").await);
    env.wait_status(KEY, &job_id, "SUCCEEDED").await;
    assert_eq!(
        env.list(KEY, "?status=SUCCEEDED").await.output()["total"],
        1
    );
    assert_eq!(
        env.list(KEY, "?status=SUCCESSED").await.output()["total"],
        0
    );
    assert_eq!(
        env.delete(KEY, &job_id).await.output()["status"],
        "SUCCEEDED"
    );
}

#[tokio::test]
async fn create_validation_errors() {
    let env = Env::start(slow()).await;
    let valid = create_body("qwen3-8b", "models/x/");
    let mut cases: Vec<(Value, &str)> = Vec::new();
    for field in ["model_name", "source", "weight_type", "storage_info"] {
        let mut body = valid.clone();
        body.as_object_mut().unwrap().remove(field);
        cases.push((body, field));
    }
    for field in ["bucket_name", "object_key"] {
        let mut body = valid.clone();
        body["storage_info"].as_object_mut().unwrap().remove(field);
        cases.push((body, field));
    }
    let set = |path: &[&str], v: Value| {
        let mut body = valid.clone();
        let mut target = &mut body;
        for p in path {
            target = &mut target[*p];
        }
        *target = v;
        body
    };
    cases.extend([
        (set(&["source"], json!("OSS")), "source"),
        (set(&["source"], json!("http")), "source"),
        (set(&["weight_type"], json!("qlora")), "weight_type"),
        (set(&["weight_type"], json!(1)), "weight_type"),
        (
            set(&["storage_info", "object_key"], json!("")),
            "object_key",
        ),
        (
            set(&["storage_info", "object_key"], json!("/")),
            "object_key",
        ),
        (
            set(&["storage_info", "object_key"], json!("models/x")),
            "object_key",
        ),
        (
            set(&["storage_info", "bucket_name"], json!("")),
            "bucket_name",
        ),
        (
            set(&["display_name"], json!("a".repeat(51))),
            "display_name",
        ),
        (
            set(&["display_name"], json!("模".repeat(51))),
            "display_name",
        ),
        (set(&["model_name"], json!(1e300)), "model_name"),
        (set(&["storage_info"], json!([])), "storage_info"),
    ]);
    for (body, field) in cases {
        let answer = env.create(KEY, body.clone()).await;
        answer.assert_error(StatusCode::BAD_REQUEST, "InvalidParameter");
        let message = answer.body["message"].as_str().unwrap();
        assert!(
            message.contains(field),
            "{message} should name {field} ({body})"
        );
    }
    for raw in [
        &b"not json"[..],
        b"",
        b"[]",
        b"null",
        b"{\"model_name\": ",
        b"\xff\xfe",
        &[b'['; 10_000][..],
    ] {
        env.raw(
            Method::POST,
            "/api/v1/custom_models/import",
            Some(KEY),
            Some(raw.to_vec()),
            &[],
        )
        .await
        .assert_error(StatusCode::BAD_REQUEST, "InvalidParameter");
    }
    // Unknown base model: 404 NotFound.
    env.create(KEY, create_body("qwen-max", "models/x/"))
        .await
        .assert_error(StatusCode::NOT_FOUND, "NotFound");
    assert!(
        env.jobs().await.is_empty(),
        "no job made by a refused create"
    );
}

#[tokio::test]
async fn every_default_base_model_imports() {
    let env = Env::start(slow()).await;
    for base in modelstudio_simulator::config::DEFAULT_BASE_MODELS {
        let out = env.create(KEY, create_body(base, "m/")).await;
        let name = out.output()["model_name"].as_str().unwrap().to_owned();
        assert!(name.starts_with(&format!("{base}-offline-")), "{name}");
    }
}

#[tokio::test]
async fn auth() {
    let env = Env::start(slow()).await;
    let path = "/api/v1/custom_models/import";
    env.raw(Method::GET, path, None, None, &[])
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "InvalidApiKey");
    for header in [
        "Bearer not-sk",
        "Bearer ",
        "Basic sk-abc",
        "sk-abc",
        "Bearer sk-",
    ] {
        env.raw(Method::GET, path, None, None, &[("authorization", header)])
            .await
            .assert_error(StatusCode::UNAUTHORIZED, "InvalidApiKey");
    }
    // Auth comes before validation.
    env.raw(Method::POST, path, None, Some(b"junk".to_vec()), &[])
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "InvalidApiKey");
    env.raw(Method::DELETE, &format!("{path}/x"), None, None, &[])
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "InvalidApiKey");
    assert_eq!(env.list("sk-anything", "").await.status, StatusCode::OK);

    let env = Env::start(SimulatorConfig {
        api_keys: vec!["sk-allowed-1".into(), "sk-allowed-2".into()],
        ..slow()
    })
    .await;
    env.list("sk-other", "")
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "InvalidApiKey");
    assert_eq!(env.list("sk-allowed-2", "").await.status, StatusCode::OK);
    let job = env.create_ok("sk-allowed-1", "m/").await;
    let answer = env.get("sk-allowed-1", &id(&job)).await;

    // The key never comes back.
    let mut everything = answer.text.clone();
    for path in ["stats", "requests", "jobs", "faults"] {
        everything.push_str(&env.control(Method::GET, path, None).await.text);
    }
    assert!(!everything.contains("sk-allowed"), "a key leaked");
}

#[tokio::test]
async fn jobs_are_scoped_per_key() {
    let env = Env::start(fast()).await;
    let job_id = id(&env.create_ok(KEY, "m/").await);
    env.get(OTHER_KEY, &job_id)
        .await
        .assert_error(StatusCode::NOT_FOUND, "NotFound");
    assert_eq!(env.list(OTHER_KEY, "").await.output()["total"], 0);
    assert_eq!(env.list(KEY, "").await.output()["total"], 1);
    env.wait_status(KEY, &job_id, "SUCCESSED").await;
    env.delete(OTHER_KEY, &job_id)
        .await
        .assert_error(StatusCode::NOT_FOUND, "NotFound");
    let other = id(&env.create_ok(OTHER_KEY, "m/").await);

    let jobs = env.jobs().await;
    assert_eq!(jobs.len(), 2);
    let ws: HashSet<&str> = jobs.iter().map(|j| j.workspace_id.as_str()).collect();
    assert_eq!(ws.len(), 2);
    assert!(jobs.iter().all(|j| !j.workspace_id.contains("sk-")));
    assert!(jobs.iter().any(|j| j.job_id == other));
    env.delete(KEY, &job_id).await.output();
}

#[tokio::test]
async fn paging_and_order() {
    let env = Env::start(slow()).await;
    let mut created = HashSet::new();
    for i in 0..25 {
        created.insert(id(&env.create_ok(KEY, &format!("m/{i}/")).await));
    }
    let first = env.list(KEY, "").await;
    let out = first.output();
    assert!(first.body.get("code").is_none());
    assert_eq!(out["total"], 25);
    assert_eq!(out["page_no"], 1);
    assert_eq!(out["page_size"], 10);
    assert_eq!(out["list"].as_array().unwrap().len(), 10);
    let item = &out["list"][0];
    assert!(item.get("weight_type").is_none());
    for field in JOB_FIELDS {
        assert!(item.get(field).is_some(), "missing {field}");
    }

    let mut seen = Vec::new();
    for page in 1..=4 {
        let answer = env.list(KEY, &format!("?page_no={page}&page_size=7")).await;
        let out = answer.output();
        assert_eq!(out["total"], 25);
        assert_eq!(out["page_no"], page);
        assert_eq!(out["page_size"], 7);
        let list = out["list"].as_array().unwrap();
        assert_eq!(list.len(), if page == 4 { 4 } else { 7 });
        seen.extend(list.iter().cloned());
    }
    let ids: HashSet<String> = seen.iter().map(id).collect();
    assert_eq!(ids, created);
    // Newest first.
    let stamps: Vec<&str> = seen
        .iter()
        .map(|j| j["gmt_create"].as_str().unwrap())
        .collect();
    assert!(stamps.windows(2).all(|w| w[0] >= w[1]), "{stamps:?}");

    let all = env.list(KEY, "?page_size=100").await;
    assert_eq!(all.output()["list"].as_array().unwrap().len(), 25);
    assert_eq!(all.output()["list"], json!(seen));
    let beyond = env.list(KEY, "?page_no=9&page_size=10").await;
    assert_eq!(beyond.output()["total"], 25);
    assert_eq!(beyond.output()["list"], json!([]));
    let huge = env
        .list(KEY, "?page_no=18446744073709551615&page_size=100")
        .await;
    assert_eq!(huge.output()["list"], json!([]));

    for (query, field) in [
        ("?page_size=101", "page_size"),
        ("?page_size=0", "page_size"),
        ("?page_size=-5", "page_size"),
        ("?page_size=abc", "page_size"),
        ("?page_size=2.5", "page_size"),
        ("?page_size=", "page_size"),
        ("?page_no=0", "page_no"),
        ("?page_no=-1", "page_no"),
        ("?page_no=x", "page_no"),
        ("?page_no=99999999999999999999999999999", "page_no"),
    ] {
        let answer = env.list(KEY, query).await;
        answer.assert_error(StatusCode::BAD_REQUEST, "InvalidParameter");
        let message = answer.body["message"].as_str().unwrap();
        assert!(message.contains(field), "{query}: {message}");
    }
}

#[tokio::test]
async fn list_filters() {
    let env = Env::start(slow()).await;
    let a = env.create_ok(KEY, "m/a/").await;
    let b = env.create_ok(KEY, "m/b/").await;
    let c = env.create_ok(KEY, "m/c/").await;
    // End b successfully and c with a failure, now.
    let forced = env
        .control(
            Method::POST,
            &format!("jobs/{}/outcome", id(&b)),
            Some(json!({"finish_now": true})),
        )
        .await;
    assert_eq!(forced.status, StatusCode::OK, "{}", forced.text);
    let forced = env
        .control(
            Method::POST,
            &format!("jobs/{}/outcome", id(&c)),
            Some(json!({"status": "FAILED", "error_code": "bad rank", "finish_now": true})),
        )
        .await;
    let record: JobRecord = serde_json::from_value(forced.body).unwrap();
    assert_eq!(record.status, "FAILED");
    assert_eq!(record.error_code.as_deref(), Some("bad rank"));

    let ids = |answer: Answer| -> Vec<String> {
        answer.output()["list"]
            .as_array()
            .unwrap()
            .iter()
            .map(id)
            .collect()
    };
    assert_eq!(ids(env.list(KEY, "?status=SUCCESSED").await), [id(&b)]);
    assert_eq!(ids(env.list(KEY, "?status=FAILED").await), [id(&c)]);
    assert_eq!(ids(env.list(KEY, "?status=PENDING").await), [id(&a)]);
    assert!(ids(env.list(KEY, "?status=pending").await).is_empty());
    assert!(ids(env.list(KEY, "?status=SUCCEEDED").await).is_empty());
    let name = a["model_name"].as_str().unwrap();
    assert_eq!(
        ids(env.list(KEY, &format!("?model_name={name}")).await),
        [id(&a)]
    );
    assert!(ids(env.list(KEY, "?model_name=qwen3-8b").await).is_empty());
    let both = format!("?model_name={name}&status=FAILED");
    assert!(ids(env.list(KEY, &both).await).is_empty());
    assert_eq!(
        env.list(KEY, "?status=&model_name=").await.output()["total"],
        3
    );
    let failed = env.get(KEY, &id(&c)).await;
    assert_eq!(failed.output()["error_code"], "bad rank");
}

#[tokio::test]
async fn paths_and_routing() {
    let env = Env::start(SimulatorConfig {
        pending_duration: Duration::ZERO,
        running_duration: Duration::ZERO,
        ..SimulatorConfig::default()
    })
    .await;
    let job_id = id(&env.create_ok(KEY, "m/").await);
    // Percent-encoded path segment is decoded.
    let encoded = job_id.replace('-', "%2D");
    assert_eq!(
        env.get(KEY, &encoded).await.output()["job_id"],
        job_id.as_str()
    );

    for bad in [
        "not-a-uuid",
        "%E6%A8%A1%E5%9E%8B",
        "%FF%FE",
        "00000000-0000-0000-0000-000000000000",
        "..%2F..%2Fetc",
        &"9".repeat(5000),
    ] {
        env.get(KEY, bad)
            .await
            .assert_error(StatusCode::NOT_FOUND, "NotFound");
        env.delete(KEY, bad)
            .await
            .assert_error(StatusCode::NOT_FOUND, "NotFound");
    }
    env.call(Method::GET, "/api/v1/nothing", KEY, None)
        .await
        .assert_error(StatusCode::NOT_FOUND, "NotFound");
    env.call(
        Method::GET,
        &format!("/api/v1/custom_models/import/{job_id}/x"),
        KEY,
        None,
    )
    .await
    .assert_error(StatusCode::NOT_FOUND, "NotFound");
    env.call(Method::PUT, "/api/v1/custom_models/import", KEY, None)
        .await
        .assert_error(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed");
    env.call(
        Method::POST,
        &format!("/api/v1/custom_models/import/{job_id}"),
        KEY,
        None,
    )
    .await
    .assert_error(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed");
    env.control(Method::DELETE, "stats", None)
        .await
        .assert_error(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed");

    let stats = env.stats().await;
    assert_eq!(stats.other.status(404), 2);
    assert_eq!(stats.other.status(405), 2, "control 405 is not counted");
}

#[tokio::test]
async fn fault_throttle_and_errors() {
    let env = Env::start(slow()).await;
    let job_id = id(&env.create_ok(KEY, "m/").await);

    let set = env
        .put_faults(json!({"throttle_rate": 1.0, "retry_after_seconds": 7}))
        .await;
    assert_eq!(set.status, StatusCode::OK);
    let faults: Faults = serde_json::from_value(set.body).unwrap();
    assert_eq!(faults.throttle_rate, 1.0);
    assert_eq!(faults.error_rate, 0.0);
    let answer = env.get(KEY, &job_id).await;
    answer.assert_error(StatusCode::TOO_MANY_REQUESTS, "Throttling.RateQuota");
    assert_eq!(answer.headers["retry-after"], "7");
    env.list(KEY, "")
        .await
        .assert_error(StatusCode::TOO_MANY_REQUESTS, "Throttling.RateQuota");
    // Control routes are never faulted.
    let got: Faults =
        serde_json::from_value(env.control(Method::GET, "faults", None).await.body).unwrap();
    assert_eq!(got, faults);

    env.put_faults(json!({"error_rate": 1.0})).await;
    let answer = env.delete(KEY, &job_id).await;
    answer.assert_error(StatusCode::INTERNAL_SERVER_ERROR, "InternalError");
    assert!(answer.headers.get("retry-after").is_none());
    let answer = env.create(KEY, create_body("qwen3-8b", "m/")).await;
    answer.assert_error(StatusCode::INTERNAL_SERVER_ERROR, "InternalError");
    assert_eq!(env.jobs().await.len(), 1, "a failed create makes no job");

    env.put_faults(json!({})).await;
    assert_eq!(env.get(KEY, &job_id).await.status, StatusCode::OK);

    // Invalid settings are refused and change nothing.
    for bad in [
        json!({"throttle_rate": 1.5}),
        json!({"error_rate": -0.1}),
        json!({"latency": 5}),
        json!({"latency_ms": -1}),
        json!("fast"),
    ] {
        env.put_faults(bad)
            .await
            .assert_error(StatusCode::BAD_REQUEST, "InvalidParameter");
    }
    assert_eq!(env.sim.simulator.faults(), Faults::default());

    let stats = env.stats().await;
    assert_eq!(stats.get.code("Throttling.RateQuota"), 1);
    assert_eq!(stats.list.status(429), 1);
    assert_eq!(stats.delete.code("InternalError"), 1);
    assert_eq!(stats.create.status(500), 1);
    assert_eq!(stats.lost_creates, 0);
}

#[tokio::test]
async fn faults_from_config() {
    let env = Env::start(SimulatorConfig {
        throttle_rate: 1.0,
        retry_after_seconds: 3,
        ..slow()
    })
    .await;
    let answer = env.list(KEY, "").await;
    answer.assert_error(StatusCode::TOO_MANY_REQUESTS, "Throttling.RateQuota");
    assert_eq!(answer.headers["retry-after"], "3");
    // Unauthenticated calls are refused before any fault.
    env.list("bad", "")
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "InvalidApiKey");
    env.sim.simulator.set_faults(Faults::default());
    assert_eq!(env.list(KEY, "").await.status, StatusCode::OK);
    // Reset restores the configured faults.
    assert_eq!(
        env.control(Method::POST, "reset", None).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        env.list(KEY, "").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn fault_latency() {
    let env = Env::start(SimulatorConfig {
        latency: Duration::from_millis(500),
        ..slow()
    })
    .await;
    let start = Instant::now();
    assert_eq!(env.list(KEY, "").await.status, StatusCode::OK);
    assert!(start.elapsed() >= Duration::from_millis(500));
    // Control routes are not slowed.
    let start = Instant::now();
    env.stats().await;
    assert!(start.elapsed() < Duration::from_millis(500));
    env.put_faults(json!({"latency_ms": 0})).await;
    let start = Instant::now();
    env.list(KEY, "").await;
    assert!(start.elapsed() < Duration::from_millis(500));
}

#[tokio::test]
async fn fault_lost_create_still_creates() {
    let env = Env::start(fast()).await;
    env.put_faults(json!({"lost_create_rate": 1.0})).await;
    let mut body = create_body("qwen3-8b", "models/lost/");
    body["display_name"] = json!("token-1234");
    env.create(KEY, body)
        .await
        .assert_error(StatusCode::INTERNAL_SERVER_ERROR, "InternalError");
    env.put_faults(json!({})).await;

    // The job exists and runs: a list finds it by display_name.
    let list = env.list(KEY, "").await;
    assert_eq!(list.output()["total"], 1);
    let job = list.output()["list"][0].clone();
    assert_eq!(job["display_name"], "token-1234");
    env.wait_status(KEY, &id(&job), "SUCCESSED").await;

    let jobs = env.jobs().await;
    assert_eq!(jobs.len(), 1);
    assert!(jobs[0].lost_answer);
    assert_eq!(jobs[0].weight_type, "lora");
    assert_eq!(jobs[0].base_model, "qwen3-8b");
    let stats = env.stats().await;
    assert_eq!(stats.lost_creates, 1);
    assert_eq!(stats.create.code("InternalError"), 1);
    let records: Vec<RequestRecord> =
        serde_json::from_value(env.control(Method::GET, "requests", None).await.body).unwrap();
    assert_eq!(records[0].job_id.as_deref(), Some(id(&job).as_str()));
    assert_eq!(records[0].status, 500);
}

#[tokio::test]
async fn seeded_faults_repeat() {
    async fn statuses(seed: u64) -> Vec<u16> {
        let env = Env::start(SimulatorConfig {
            error_rate: 0.5,
            seed: Some(seed),
            ..slow()
        })
        .await;
        let mut out = Vec::new();
        for _ in 0..40 {
            out.push(env.list(KEY, "").await.status.as_u16());
        }
        // Re-seeding over HTTP restarts the same sequence.
        env.put_faults(json!({"error_rate": 0.5, "seed": seed}))
            .await;
        let mut again = Vec::new();
        for _ in 0..40 {
            again.push(env.list(KEY, "").await.status.as_u16());
        }
        let fresh = Env::start(SimulatorConfig {
            error_rate: 0.5,
            seed: Some(seed),
            ..slow()
        })
        .await;
        let mut third = Vec::new();
        for _ in 0..40 {
            third.push(fresh.list(KEY, "").await.status.as_u16());
        }
        assert_eq!(out, third);
        assert_eq!(out, again);
        out
    }
    let a = statuses(11).await;
    assert!(a.contains(&200) && a.contains(&500), "{a:?}");
    assert_ne!(a, statuses(12).await);
}

#[tokio::test]
async fn counters_and_request_records() {
    let env = Env::start(slow()).await;
    let path = "/api/v1/custom_models/import";
    let body = serde_json::to_vec(&create_body("qwen3-8b", "m/")).unwrap();
    let created = env
        .raw(
            Method::POST,
            path,
            Some(KEY),
            Some(body),
            &[("x-simulator-client", "controller-1")],
        )
        .await;
    let job_id = id(created.output());
    env.delete(KEY, &job_id).await; // OperationDenied
    env.delete(KEY, "missing").await; // NotFound
    env.control(
        Method::POST,
        &format!("jobs/{job_id}/outcome"),
        Some(json!({"finish_now": true})),
    )
    .await;
    env.delete(KEY, &job_id).await.output(); // 200
    env.get(KEY, &job_id).await; // NotFound
    env.list(KEY, "?page_size=500").await; // InvalidParameter
    env.list(KEY, "").await;
    env.list("nope", "").await; // InvalidApiKey

    let stats = env.stats().await;
    assert_eq!(stats.create.total, 1);
    assert_eq!(stats.create.status(200), 1);
    assert_eq!(stats.delete.total, 3);
    assert_eq!(stats.delete.status(200), 1);
    assert_eq!(stats.delete.code("OperationDenied"), 1);
    assert_eq!(stats.delete.code("NotFound"), 1);
    assert_eq!(stats.delete.status(400), 1);
    assert_eq!(stats.delete.status(404), 1);
    assert_eq!(stats.get.total, 1);
    assert_eq!(stats.get.code("NotFound"), 1);
    assert_eq!(stats.list.total, 3);
    assert_eq!(stats.list.code("InvalidParameter"), 1);
    assert_eq!(stats.list.code("InvalidApiKey"), 1);
    assert_eq!(stats.list.status(200), 1);
    assert_eq!(stats.other.total, 0);
    assert!(!stats.delete.by_code.contains_key("200"));
    // The in-process view matches the HTTP one (apart from uptime).
    let local = env.sim.simulator.stats();
    assert_eq!(local.delete, stats.delete);

    let records: Vec<RequestRecord> =
        serde_json::from_value(env.control(Method::GET, "requests", None).await.body).unwrap();
    assert_eq!(records.len(), 8);
    assert!(records
        .windows(2)
        .all(|w| w[0].seq < w[1].seq && w[0].at_ms <= w[1].at_ms));
    let first = &records[0];
    assert_eq!(first.endpoint, modelstudio_simulator::Endpoint::Create);
    assert_eq!(first.status, 200);
    assert_eq!(first.code, None);
    assert_eq!(first.client.as_deref(), Some("controller-1"));
    assert_eq!(first.user_agent.as_deref(), Some("simulator-tests/1.0"));
    assert_eq!(first.job_id.as_deref(), Some(job_id.as_str()));
    assert!(first.workspace_id.is_some());
    assert_eq!(records[1].code.as_deref(), Some("OperationDenied"));
    assert_eq!(records[1].client, None);
    assert_eq!(records[7].workspace_id, None);
    assert_eq!(records[7].code.as_deref(), Some("InvalidApiKey"));

    let since: Vec<RequestRecord> = serde_json::from_value(
        env.control(Method::GET, "requests?since=6", None)
            .await
            .body,
    )
    .unwrap();
    assert_eq!(since.len(), 2);
    assert_eq!(since[0].seq, 6);
    env.control(Method::GET, "requests?since=-1", None)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "InvalidParameter");
    assert_eq!(env.sim.simulator.requests(), records);
}

#[tokio::test]
async fn control_outcome() {
    let env = Env::start(fast()).await;
    let job_id = id(&env.create_ok(KEY, "m/").await);
    let path = format!("jobs/{job_id}/outcome");
    // Force a failure but let the timers run.
    let answer = env
        .control(Method::POST, &path, Some(json!({"status": "FAILED"})))
        .await;
    let record: JobRecord = serde_json::from_value(answer.body).unwrap();
    assert_ne!(record.status, "FAILED", "not finished yet");
    let failed = env.wait_status(KEY, &job_id, "FAILED").await;
    assert_eq!(
        failed["error_code"],
        "Failed to get files from OSS. Check the files in OSS."
    );
    // A final status stays final.
    env.control(Method::POST, &path, Some(json!({"status": "SUCCESSED"})))
        .await
        .assert_error(StatusCode::CONFLICT, "Conflict");

    // A marked-to-fail job can be forced to succeed.
    let marked = id(&env.create_ok(KEY, "simulate-failure/").await);
    let answer = env
        .control(
            Method::POST,
            &format!("jobs/{marked}/outcome"),
            Some(json!({"status": "SUCCEEDED", "finish_now": true})),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_eq!(env.get(KEY, &marked).await.output()["status"], "SUCCESSED");

    let fresh = id(&env.create_ok(KEY, "m/").await);
    for (body, status, code) in [
        (
            json!({"status": "DONE"}),
            StatusCode::BAD_REQUEST,
            "InvalidParameter",
        ),
        (
            json!({"bogus": 1}),
            StatusCode::BAD_REQUEST,
            "InvalidParameter",
        ),
        (json!([1]), StatusCode::BAD_REQUEST, "InvalidParameter"),
    ] {
        env.control(Method::POST, &format!("jobs/{fresh}/outcome"), Some(body))
            .await
            .assert_error(status, code);
    }
    env.control(
        Method::POST,
        "jobs/no-such-job/outcome",
        Some(json!({"finish_now": true})),
    )
    .await
    .assert_error(StatusCode::NOT_FOUND, "NotFound");
    env.delete(KEY, &job_id).await.output();
    env.control(Method::POST, &path, Some(json!({"finish_now": true})))
        .await
        .assert_error(StatusCode::CONFLICT, "Conflict");
    // Control calls are not counted.
    assert_eq!(env.stats().await.other.total, 0);
}

#[tokio::test]
async fn control_reset() {
    let env = Env::start(slow()).await;
    let job_id = id(&env.create_ok(KEY, "m/").await);
    env.put_faults(json!({"latency_ms": 1})).await;
    let answer = env.control(Method::POST, "reset", None).await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT);
    assert!(env.jobs().await.is_empty());
    assert_eq!(env.sim.simulator.faults(), Faults::default());
    let stats = env.stats().await;
    assert_eq!(stats.create.total, 0);
    env.get(KEY, &job_id)
        .await
        .assert_error(StatusCode::NOT_FOUND, "NotFound");
}

#[tokio::test]
async fn serve_stops_on_shutdown_signal() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let sim = modelstudio_simulator::Simulator::new(slow());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(modelstudio_simulator::serve(listener, sim.clone(), async {
        let _ = rx.await;
    }));
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let answer = http
        .get(format!("http://{addr}/api/v1/custom_models/import"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(sim.stats().list.total, 1);
    drop(http);
    tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("server stops")
        .unwrap()
        .unwrap();

    let running = RunningSimulator::start(slow()).await.unwrap();
    let base = running.base_url();
    assert!(base.starts_with("http://127.0.0.1:"));
    tokio::time::timeout(Duration::from_secs(5), running.shutdown())
        .await
        .expect("shutdown completes");
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    assert!(http
        .get(format!("{base}/_simulator/stats"))
        .send()
        .await
        .is_err());
}
