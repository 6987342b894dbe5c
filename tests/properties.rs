//! Property tests over the pure parts: the response decoder (any status, any bytes, any JSON,
//! every truncation, HTML pages), the decision logic (`plan`, `observe_job`, `on_api_error`,
//! `on_delete`) and the status builder (`next_status`, `merge_conditions`).
//!
//! Nothing here may panic on any input: a malformed answer from Model Studio becomes an error,
//! and the error a condition.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use modelstudio_controller::controller::snapshot;
use modelstudio_controller::crd::{
    DeletionPolicy, ModelImport, ModelImportSpec, ModelImportStatus, Phase, Source, Storage,
    WeightType, FINALIZER,
};
use modelstudio_controller::decision::{
    observe_job, on_api_error, on_delete, plan, DeletionOutcome, Health, Operation, Plan,
    ReleaseReason, Requeue, Snapshot,
};
use modelstudio_controller::modelstudio::{
    decode_response, ApiError, ApiKey, HttpClient, HttpClientConfig, ImportJob, ImportJobs,
    JobPage, RemoteError, RemoteStatus,
};
use modelstudio_controller::status::{
    conditions_for, merge_conditions, next_status, Update, READY, RECONCILING, STALLED,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Map, Value};

const CASES: u32 = 384;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: CASES,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

const CANARY: &str = "sk-canary-7f3a9c2e51d04b6b";

// ---------------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------------

/// Field names the decoder looks at, so generated objects hit them often.
const KEYS: &[&str] = &[
    "output",
    "request_id",
    "code",
    "message",
    "error",
    "type",
    "job_id",
    "status",
    "model_name",
    "display_name",
    "source",
    "weight_type",
    "storage_info",
    "bucket_name",
    "object_key",
    "gmt_create",
    "error_code",
    "list",
    "total",
    "page_no",
    "page_size",
];

fn arb_key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(KEYS).prop_map(str::to_string),
        1 => "[a-zA-Z_]{0,8}",
    ]
}

fn arb_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{0,24}",
        any::<String>(),
        prop::sample::select(
            &[
                "",
                "PENDING",
                "RUNNING",
                "SUCCESSED",
                "SUCCEEDED",
                "FAILED",
                "InvalidParameter",
                "NotFound",
                "OperationDenied",
                "InvalidApiKey",
                "Throttling.RateQuota",
                "InternalError",
                "200",
                "Success",
            ][..]
        )
        .prop_map(str::to_string),
    ]
}

fn arb_scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        arb_text().prop_map(Value::String),
    ]
}

/// Arbitrary JSON trees, with the decoder's field names as likely keys.
fn arb_json() -> impl Strategy<Value = Value> {
    arb_scalar().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((arb_key(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A well-formed import job as the API documents it; optional fields absent, null or set.
fn arb_job_json() -> impl Strategy<Value = Value> {
    let opt = || {
        prop_oneof![
            Just(None),
            Just(Some(Value::Null)),
            arb_text().prop_map(|s| Some(Value::String(s)))
        ]
    };
    (
        arb_text(),
        arb_text(),
        opt(),
        opt(),
        opt(),
        opt(),
        opt(),
        opt(),
        prop::option::of((arb_text(), arb_text())),
        prop::option::of(arb_json()),
    )
        .prop_map(
            |(job_id, status, model, display, source, weight, created, error, storage, extra)| {
                let mut m = Map::new();
                m.insert("job_id".into(), json!(job_id));
                m.insert("status".into(), json!(status));
                for (k, v) in [
                    ("model_name", model),
                    ("display_name", display),
                    ("source", source),
                    ("weight_type", weight),
                    ("gmt_create", created),
                    ("error_code", error),
                ] {
                    if let Some(v) = v {
                        m.insert(k.into(), v);
                    }
                }
                if let Some((b, o)) = storage {
                    m.insert(
                        "storage_info".into(),
                        json!({"bucket_name": b, "object_key": o}),
                    );
                }
                // Fields the reference does not document are ignored.
                if let Some(x) = extra {
                    m.insert("x_unknown".into(), x);
                }
                Value::Object(m)
            },
        )
}

fn arb_envelope(output: impl Strategy<Value = Value>) -> impl Strategy<Value = Value> {
    (
        output,
        prop::option::of("[a-f0-9-]{0,36}"),
        prop::sample::select(&[None, Some("200"), Some("Success"), Some("")][..]),
    )
        .prop_map(|(output, request_id, code)| {
            let mut m = Map::new();
            m.insert("output".into(), output);
            if let Some(r) = request_id {
                m.insert("request_id".into(), json!(r));
            }
            if let Some(c) = code {
                m.insert("code".into(), json!(c));
            }
            Value::Object(m)
        })
}

fn arb_status() -> impl Strategy<Value = u16> {
    prop_oneof![
        0u16..1000,
        prop::sample::select(
            &[200u16, 201, 204, 301, 400, 401, 403, 404, 409, 429, 500, 502, 503, 504][..]
        ),
    ]
}

fn arb_retry_after() -> impl Strategy<Value = Option<Duration>> {
    prop::option::of((0u64..100_000).prop_map(Duration::from_secs))
}

fn html_page() -> impl Strategy<Value = String> {
    ("[ -~]{0,40}", "[ -~\n]{0,400}").prop_map(|(title, body)| {
        format!(
            "<!DOCTYPE html>\n<html><head><title>{title}</title></head>\n<body><h1>{title}</h1>\n{body}\n<hr><center>nginx</center></body></html>\n"
        )
    })
}

/// Both decodings the client performs, checking what holds for any answer.
fn decode_both(status: u16, retry_after: Option<Duration>, body: &[u8]) -> Vec<ApiError> {
    let mut errors = Vec::new();
    let job = decode_response::<ImportJob>(status, retry_after, body);
    let page = decode_response::<JobPage>(status, retry_after, body);
    if !(200..300).contains(&status) {
        assert!(
            job.is_err() && page.is_err(),
            "HTTP {status} is never a success"
        );
    }
    errors.extend(job.err());
    errors.extend(page.err());
    for e in &errors {
        check_error_text(e);
    }
    errors
}

/// Every error renders, names itself, and never carries the API key.
fn check_error_text(e: &ApiError) {
    let text = e.to_string();
    let debug = format!("{e:?}");
    assert!(!text.trim().is_empty());
    assert!(!e.kind().is_empty());
    assert!(!text.contains(CANARY) && !debug.contains(CANARY), "{text}");
    if let ApiError::UnexpectedBody { excerpt, .. } = e {
        assert!(!excerpt.is_empty());
        assert!(excerpt.chars().count() <= 201, "excerpt too long");
        assert!(!excerpt.contains('\n'));
    }
}

// ---------------------------------------------------------------------------------------------
// (a) The response decoder
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_bytes_with_any_status_never_panic(
        status in arb_status(),
        retry_after in arb_retry_after(),
        body in prop::collection::vec(any::<u8>(), 0..512),
    ) {
        decode_both(status, retry_after, &body);
    }

    #[test]
    fn any_json_with_any_status_never_panics(
        status in arb_status(),
        retry_after in arb_retry_after(),
        body in arb_json(),
    ) {
        let bytes = serde_json::to_vec(&body).unwrap();
        decode_both(status, retry_after, &bytes);
        // The same value inside an envelope, where a job is expected.
        let wrapped = serde_json::to_vec(&json!({"request_id": "r", "output": body})).unwrap();
        decode_both(status, retry_after, &wrapped);
    }

    #[test]
    fn a_well_formed_success_always_decodes(
        status in 200u16..300,
        body in arb_envelope(arb_job_json()),
    ) {
        let bytes = serde_json::to_vec(&body).unwrap();
        let job = decode_response::<ImportJob>(status, None, &bytes)
            .unwrap_or_else(|e| panic!("{e} for {body}"));
        let out = &body["output"];
        prop_assert_eq!(&job.job_id, out["job_id"].as_str().unwrap());
        prop_assert_eq!(&job.status, out["status"].as_str().unwrap());
        prop_assert_eq!(job.model_name.as_deref(), out["model_name"].as_str());
        prop_assert_eq!(job.error_code.as_deref(), out["error_code"].as_str());
        prop_assert_eq!(job.gmt_create.as_deref(), out["gmt_create"].as_str());
        prop_assert_eq!(job.storage_info.is_some(), out.get("storage_info").is_some());
        // And the page form.
        let page_body = json!({"request_id": "r", "output": {
            "total": 1, "page_no": 1, "page_size": 10, "list": [out]
        }});
        let page = decode_response::<JobPage>(status, None, &serde_json::to_vec(&page_body).unwrap())
            .unwrap_or_else(|e| panic!("{e} for {page_body}"));
        prop_assert_eq!(page.list.len(), 1);
        prop_assert!(!page.has_more());
    }

    #[test]
    fn every_field_of_a_job_with_a_wrong_type_or_missing(
        status in 200u16..300,
        job in arb_job_json(),
        field in prop::sample::select(&[
            "job_id", "status", "model_name", "display_name", "source", "weight_type",
            "gmt_create", "error_code", "storage_info",
        ][..]),
        value in prop::option::of(arb_json()),
    ) {
        let mut job = job;
        let obj = job.as_object_mut().unwrap();
        match &value {
            Some(v) => { obj.insert(field.to_string(), v.clone()); }
            None => { obj.remove(field); }
        }
        let body = serde_json::to_vec(&json!({"request_id": "r-1", "output": job})).unwrap();
        let decoded = decode_response::<ImportJob>(status, None, &body);
        let required = matches!(field, "job_id" | "status");
        let fits = match (&value, field) {
            (None, _) => !required,
            (Some(Value::String(_)), "storage_info") => false,
            (Some(Value::String(_)), _) => true,
            (Some(Value::Null), _) => !required,
            (Some(Value::Object(m)), "storage_info") => {
                m.get("bucket_name").is_some_and(Value::is_string)
                    && m.get("object_key").is_some_and(Value::is_string)
            }
            (Some(Value::Array(a)), "storage_info") => {
                // serde reads a struct from a sequence too.
                a.len() == 2 && a[0].is_string() && a[1].is_string()
            }
            (Some(_), _) => false,
        };
        match decoded {
            Ok(_) => prop_assert!(fits, "{field} = {value:?} decoded"),
            Err(ApiError::MalformedResponse { status: s, detail, .. }) => {
                prop_assert!(!fits, "{field} = {value:?} refused: {detail}");
                prop_assert_eq!(s, status);
                prop_assert!(!detail.is_empty());
            }
            Err(e) => prop_assert!(false, "a 2xx without an error code became {e:?}"),
        }
    }

    #[test]
    fn every_field_of_a_page_with_a_wrong_type(
        field in prop::sample::select(&["total", "page_no", "page_size", "list"][..]),
        value in arb_json(),
    ) {
        let mut page = json!({"total": 3, "page_no": 1, "page_size": 2, "list": []});
        page[field] = value;
        let body = serde_json::to_vec(&json!({"output": page})).unwrap();
        match decode_response::<JobPage>(200, None, &body) {
            Ok(p) => prop_assert!(p.list.len() <= 6),
            Err(ApiError::MalformedResponse { status, .. }) => prop_assert_eq!(status, 200),
            Err(e) => prop_assert!(false, "unexpected {e:?}"),
        }
    }

    #[test]
    fn html_pages_are_unexpected_bodies(
        status in arb_status(),
        retry_after in arb_retry_after(),
        page in html_page(),
    ) {
        let errors = decode_both(status, retry_after, page.as_bytes());
        prop_assert_eq!(errors.len(), 2);
        for e in errors {
            if (200..300).contains(&status) {
                let is_malformed = matches!(e, ApiError::MalformedResponse { status: s, .. } if s == status);
                prop_assert!(is_malformed, "{:?}", e);
                prop_assert!(e.to_string().contains("body starts"));
            } else {
                match &e {
                    ApiError::UnexpectedBody { status: s, retry_after: r, excerpt } => {
                        prop_assert_eq!(*s, status);
                        prop_assert_eq!(*r, retry_after);
                        prop_assert!(excerpt.starts_with("<!DOCTYPE html>"));
                    }
                    other => prop_assert!(false, "{:?}", other),
                }
                prop_assert_eq!(e.is_transient(), status == 429 || status >= 500);
                prop_assert_eq!(e.create_certainly_not_applied(), status == 429);
            }
        }
    }

    #[test]
    fn errors_are_classified_by_code_whatever_the_status(
        status in arb_status(),
        retry_after in arb_retry_after(),
        (code, kind) in prop_oneof![
            Just(("InvalidParameter".to_string(), "InvalidParameter")),
            Just(("NotFound".to_string(), "NotFound")),
            Just(("OperationDenied".to_string(), "OperationDenied")),
            Just(("InvalidApiKey".to_string(), "InvalidApiKey")),
            Just(("Throttling".to_string(), "Throttled")),
            "Throttling\\.[A-Za-z]{0,12}".prop_map(|c| (c, "Throttled")),
            "AccessDenied(\\.[A-Za-z]{1,12})?".prop_map(|c| (c, "AccessDenied")),
        ],
        message in prop::option::of(arb_text()),
        request_id in prop::option::of("[a-f0-9-]{1,36}"),
        nested in any::<bool>(),
    ) {
        // A nested error envelope is read only on an error status (see the report).
        let nested = nested && !(200..300).contains(&status);
        let body = if nested {
            json!({"request_id": request_id, "error": {"code": code, "message": message}})
        } else {
            json!({"request_id": request_id, "code": code, "message": message})
        };
        let bytes = serde_json::to_vec(&body).unwrap();
        for e in decode_both(status, retry_after, &bytes) {
            prop_assert_eq!(e.kind(), kind, "HTTP {} code {}: {}", status, code, e);
            prop_assert_eq!(e.request_id(), request_id.as_deref());
            if let Some(m) = &message {
                prop_assert_eq!(e.remote_message(), Some(m.as_str()));
            }
            if kind == "Throttled" {
                prop_assert_eq!(e.retry_after(), retry_after);
                prop_assert!(e.is_transient());
            }
            // A refusal by code never made a job.
            prop_assert!(e.create_certainly_not_applied());
        }
    }

    #[test]
    fn error_text_never_carries_the_api_key(
        status in arb_status(),
        body in prop_oneof![
            arb_json().prop_map(|v| serde_json::to_vec(&v).unwrap()),
            html_page().prop_map(String::into_bytes),
            prop::collection::vec(any::<u8>(), 0..256),
        ],
    ) {
        // The key is no input of the decoder; the body is whatever the server sent (which here
        // never echoes the key), so no error can carry it.
        decode_both(status, None, &body);
    }
}

proptest! {
    // Each case decodes every prefix of its body: fewer cases.
    #![proptest_config(ProptestConfig { cases: 64, ..config() })]

    #[test]
    fn truncated_bodies_are_errors_at_every_cut(
        success in any::<bool>(),
        status_err in prop::sample::select(&[400u16, 404, 429, 500, 502][..]),
        body in arb_envelope(arb_job_json()),
    ) {
        let (status, bytes) = if success {
            (200, serde_json::to_vec(&body).unwrap())
        } else {
            (status_err, serde_json::to_vec(
                &json!({"request_id": "r", "code": "InvalidParameter", "message": body.to_string()}),
            ).unwrap())
        };
        for cut in 0..bytes.len() {
            let errors = decode_both(status, None, &bytes[..cut]);
            prop_assert_eq!(errors.len(), 2, "a body cut at {} decoded", cut);
            for e in errors {
                match (success, &e) {
                    (true, ApiError::MalformedResponse { status: 200, .. }) => {}
                    (false, ApiError::UnexpectedBody { status: s, .. }) if *s == status => {
                        prop_assert_eq!(
                            e.is_transient(),
                            status == 429 || status >= 500,
                            "{}", e
                        );
                    }
                    _ => prop_assert!(false, "cut at {}: {:?}", cut, e),
                }
            }
        }
        // The whole body decodes (or is the error it says).
        let errors = decode_both(status, None, &bytes);
        prop_assert_eq!(errors.len(), if success { 0 } else { 2 });
    }
}

// ---------------------------------------------------------------------------------------------
// The client itself: an answer of any kind never puts the key into the error
// ---------------------------------------------------------------------------------------------

/// A one-connection-at-a-time HTTP server that answers each request with the next canned answer.
async fn canned_server(
    answers: std::sync::Arc<std::sync::Mutex<(u16, Vec<u8>)>>,
) -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let (status, body) = answers.lock().unwrap().clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let head = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = socket.write_all(head.as_bytes()).await;
                let _ = socket.write_all(&body).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    addr
}

#[test]
fn client_errors_never_carry_the_api_key() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let answers = std::sync::Arc::new(std::sync::Mutex::new((200u16, Vec::new())));
    let addr = rt.block_on(canned_server(answers.clone()));
    let client = HttpClient::new(HttpClientConfig {
        endpoint: format!("http://{addr}"),
        timeout: Duration::from_secs(5),
        user_agent: "properties-test".into(),
    })
    .unwrap();
    let key = ApiKey::new(CANARY).unwrap();
    assert!(!format!("{key:?} {key}").contains(CANARY));
    let mut runner = TestRunner::new(Config {
        cases: 64,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (
        prop::sample::select(&[200u16, 400, 401, 403, 404, 429, 500, 502, 503][..]),
        prop_oneof![
            arb_json().prop_map(|v| serde_json::to_vec(&v).unwrap()),
            html_page().prop_map(String::into_bytes),
            prop::collection::vec(any::<u8>(), 0..128),
        ],
    );
    runner
        .run(&strategy, |(status, body)| {
            *answers.lock().unwrap() = (status, body);
            let result = rt.block_on(client.get(&key, "job-1"));
            if let Err(e) = &result {
                check_error_text(e);
                let mut source = std::error::Error::source(e);
                while let Some(s) = source {
                    assert!(!s.to_string().contains(CANARY));
                    source = s.source();
                }
            }
            Ok(())
        })
        .unwrap();
    // A key that cannot be sent in a header is refused without repeating it.
    let bad = ApiKey::new(format!("{CANARY}\u{7f}tail")).unwrap();
    let e = rt.block_on(client.get(&bad, "job-1")).unwrap_err();
    assert_eq!(e.kind(), "InvalidApiKey");
    check_error_text(&e);
    // A refused connection becomes a Connect error: retried with backoff, never a stall, and a
    // create that never connected made nothing.
    let closed = HttpClient::new(HttpClientConfig {
        endpoint: "http://127.0.0.1:1".into(),
        timeout: Duration::from_secs(5),
        user_agent: "properties-test".into(),
    })
    .unwrap();
    let e = rt.block_on(closed.get(&key, "job-1")).unwrap_err();
    check_error_text(&e);
    if e.kind() == "ConnectError" {
        assert!(e.is_transient() && e.create_certainly_not_applied());
        for op in OPERATIONS {
            let o = on_api_error(op, &e);
            assert!(
                matches!(o.requeue, Requeue::Backoff { .. }),
                "{op:?}: {o:?}"
            );
            assert!(matches!(o.health, Health::Degraded { .. }));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// (b) The decision logic
// ---------------------------------------------------------------------------------------------

const OPERATIONS: [Operation; 5] = [
    Operation::Create,
    Operation::Recover,
    Operation::Adopt,
    Operation::Poll,
    Operation::Delete,
];

fn arb_job_id() -> impl Strategy<Value = Option<String>> {
    prop::option::of(prop_oneof![
        prop::sample::select(&["j1", "j2", ""][..]).prop_map(str::to_string),
        "[A-Za-z0-9-]{1,12}",
    ])
}

fn arb_snapshot() -> impl Strategy<Value = Snapshot> {
    (
        prop::option::of(0i64..4),
        any::<bool>(),
        any::<bool>(),
        prop::bool::ANY.prop_map(|o| {
            if o {
                DeletionPolicy::Orphan
            } else {
                DeletionPolicy::Delete
            }
        }),
        arb_job_id(),
        arb_job_id(),
        prop::option::of(0i64..4),
        any::<bool>(),
    )
        .prop_map(
            |(
                generation,
                deleting,
                has_finalizer,
                deletion_policy,
                spec,
                status,
                stalled,
                attempted,
            )| {
                Snapshot {
                    generation,
                    deleting,
                    has_finalizer,
                    deletion_policy,
                    spec_job_id: spec,
                    status_job_id: status,
                    stalled_generation: stalled,
                    create_attempted: attempted,
                }
            },
        )
}

fn arb_remote() -> impl Strategy<Value = RemoteError> {
    (
        arb_text(),
        arb_text(),
        prop::option::of("[a-f0-9-]{0,36}"),
        arb_status(),
    )
        .prop_map(|(code, message, request_id, http_status)| RemoteError {
            code,
            message,
            request_id,
            http_status,
        })
}

/// The errors that can be built without a socket (Connect and Transport are covered above).
#[derive(Debug, Clone)]
enum ErrSpec {
    InvalidParameter(RemoteError),
    NotFound(RemoteError),
    OperationDenied(RemoteError),
    InvalidApiKey(RemoteError),
    AccessDenied(RemoteError),
    Throttled(RemoteError, Option<Duration>),
    Server(RemoteError),
    Unknown(RemoteError),
    UnexpectedBody(u16, String, Option<Duration>),
    Malformed(u16, String, Option<String>),
    Timeout(Duration),
}

impl ErrSpec {
    fn build(&self) -> ApiError {
        match self.clone() {
            ErrSpec::InvalidParameter(r) => ApiError::InvalidParameter(r),
            ErrSpec::NotFound(r) => ApiError::NotFound(r),
            ErrSpec::OperationDenied(r) => ApiError::OperationDenied(r),
            ErrSpec::InvalidApiKey(r) => ApiError::InvalidApiKey(r),
            ErrSpec::AccessDenied(r) => ApiError::AccessDenied(r),
            ErrSpec::Throttled(remote, retry_after) => ApiError::Throttled {
                remote,
                retry_after,
            },
            ErrSpec::Server(r) => ApiError::Server(r),
            ErrSpec::Unknown(r) => ApiError::Unknown(r),
            ErrSpec::UnexpectedBody(status, excerpt, retry_after) => ApiError::UnexpectedBody {
                status,
                excerpt,
                retry_after,
            },
            ErrSpec::Malformed(status, detail, request_id) => ApiError::MalformedResponse {
                status,
                detail,
                request_id,
            },
            ErrSpec::Timeout(d) => ApiError::Timeout(d),
        }
    }
}

fn arb_error() -> impl Strategy<Value = ErrSpec> {
    prop_oneof![
        arb_remote().prop_map(ErrSpec::InvalidParameter),
        arb_remote().prop_map(ErrSpec::NotFound),
        arb_remote().prop_map(ErrSpec::OperationDenied),
        arb_remote().prop_map(ErrSpec::InvalidApiKey),
        arb_remote().prop_map(ErrSpec::AccessDenied),
        (arb_remote(), arb_retry_after()).prop_map(|(r, d)| ErrSpec::Throttled(r, d)),
        arb_remote().prop_map(ErrSpec::Server),
        arb_remote().prop_map(ErrSpec::Unknown),
        (arb_status(), arb_text(), arb_retry_after())
            .prop_map(|(s, e, d)| ErrSpec::UnexpectedBody(s, e, d)),
        (
            arb_status(),
            arb_text(),
            prop::option::of("[a-f0-9-]{1,36}")
        )
            .prop_map(|(s, d, r)| ErrSpec::Malformed(s, d, r)),
        (0u64..600).prop_map(|s| ErrSpec::Timeout(Duration::from_secs(s))),
    ]
}

fn arb_remote_status_text() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(
            &[
                "PENDING",
                "RUNNING",
                "SUCCESSED",
                "SUCCEEDED",
                "FAILED",
                "pending",
                " Failed ",
                "succeeded\n",
                "CANCELLED",
                "",
            ][..]
        )
        .prop_map(str::to_string),
        any::<String>(),
    ]
}

fn arb_import_job() -> impl Strategy<Value = ImportJob> {
    (
        "[A-Za-z0-9-]{0,16}",
        arb_remote_status_text(),
        prop::option::of(arb_text()),
        prop::option::of(arb_text()),
        prop::option::of(arb_text()),
    )
        .prop_map(
            |(job_id, status, model_name, gmt_create, error_code)| ImportJob {
                job_id,
                model_name,
                display_name: None,
                source: None,
                weight_type: None,
                storage_info: None,
                status,
                gmt_create,
                error_code,
            },
        )
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn plan_obeys_its_invariants(s in arb_snapshot()) {
        let p = plan(&s);
        let any_job = s.status_job_id.clone().or_else(|| s.spec_job_id.clone());
        if s.deleting && !s.has_finalizer {
            prop_assert_eq!(&p, &Plan::Nothing);
        }
        if !s.deleting && !s.has_finalizer {
            prop_assert_eq!(&p, &Plan::AddFinalizer);
        }
        if s.deleting && s.has_finalizer && s.deletion_policy == DeletionPolicy::Orphan {
            prop_assert_eq!(&p, &Plan::Release { reason: ReleaseReason::Orphan });
        }
        match &p {
            Plan::Nothing => prop_assert!(s.deleting && !s.has_finalizer),
            Plan::AddFinalizer => prop_assert!(!s.deleting && !s.has_finalizer),
            Plan::Create => {
                prop_assert!(!s.deleting && s.has_finalizer);
                prop_assert!(s.spec_job_id.is_none() && s.status_job_id.is_none());
                prop_assert!(!s.create_attempted, "a create that may have made a job is never repeated blindly");
            }
            Plan::Recover => {
                prop_assert!(s.has_finalizer && s.create_attempted);
                prop_assert!(s.status_job_id.is_none());
                prop_assert!(!s.deleting || s.deletion_policy == DeletionPolicy::Delete);
            }
            Plan::Adopt { job_id } => {
                prop_assert!(!s.deleting && s.status_job_id.is_none());
                prop_assert_eq!(Some(job_id), s.spec_job_id.as_ref());
            }
            Plan::Poll { job_id } => {
                prop_assert!(!s.deleting);
                prop_assert_eq!(Some(job_id), s.status_job_id.as_ref());
                prop_assert!(s.spec_job_id.is_none() || s.spec_job_id == s.status_job_id);
            }
            Plan::JobIdConflict { spec, status } => {
                prop_assert!(!s.deleting);
                prop_assert_eq!(Some(spec), s.spec_job_id.as_ref());
                prop_assert_eq!(Some(status), s.status_job_id.as_ref());
                prop_assert_ne!(spec, status);
            }
            Plan::WaitForSpecChange => {
                prop_assert!(!s.deleting && s.has_finalizer);
                prop_assert!(s.stalled_generation.is_some());
                prop_assert_eq!(s.stalled_generation, s.generation);
            }
            Plan::Delete { job_id } => {
                prop_assert!(s.deleting && s.has_finalizer);
                prop_assert_eq!(s.deletion_policy, DeletionPolicy::Delete);
                prop_assert_eq!(Some(job_id), any_job.as_ref());
            }
            Plan::Release { reason: ReleaseReason::NeverCreated } => {
                prop_assert!(s.deleting && s.has_finalizer);
                prop_assert_eq!(s.deletion_policy, DeletionPolicy::Delete);
                prop_assert!(any_job.is_none());
                prop_assert!(!s.create_attempted, "a job that may exist is looked for before letting go");
            }
            Plan::Release { reason: ReleaseReason::Orphan } => {
                prop_assert!(s.deleting && s.deletion_policy == DeletionPolicy::Orphan);
            }
        }
        // A stall never blocks deletion, and a stall of another generation is no stall.
        if s.has_finalizer && !s.deleting && s.stalled_generation.is_some()
            && s.stalled_generation == s.generation
        {
            prop_assert_eq!(&p, &Plan::WaitForSpecChange);
        }
    }

    #[test]
    fn observe_job_is_total_and_terminal_jobs_do_not_poll(job in arb_import_job()) {
        let v = observe_job(&job);
        let status = RemoteStatus::parse(&job.status);
        prop_assert_eq!(&v.job_id, &job.job_id);
        prop_assert_eq!(&v.remote_status, &job.status);
        prop_assert!(!v.health.reason().is_empty());
        prop_assert!(!v.health.message().is_empty());
        prop_assert!(!v.health.waits_for_spec_change(), "a job's state is not a spec stall");
        if status.is_terminal() {
            prop_assert_ne!(v.requeue, Requeue::Poll);
            prop_assert_eq!(v.requeue, Requeue::Resync);
        } else {
            prop_assert_eq!(v.requeue, Requeue::Poll);
        }
        match status {
            RemoteStatus::Succeeded => {
                prop_assert_eq!(v.phase, Phase::Succeeded);
                prop_assert!(matches!(v.health, Health::Ready { .. }), "{:?}", v.health);
            }
            RemoteStatus::Failed => {
                prop_assert_eq!(v.phase, Phase::Failed);
                prop_assert!(matches!(v.health, Health::Stalled { .. }), "{:?}", v.health);
                prop_assert_eq!(&v.error_code, &job.error_code);
            }
            RemoteStatus::Pending => prop_assert_eq!(v.phase, Phase::Pending),
            RemoteStatus::Running | RemoteStatus::Unknown(_) => {
                prop_assert_eq!(v.phase, Phase::Running)
            }
        }
        if status != RemoteStatus::Failed {
            prop_assert_eq!(v.error_code, None);
            prop_assert!(!matches!(v.health, Health::Stalled { .. }), "{:?}", v.health);
        }
    }

    #[test]
    fn every_failed_call_becomes_a_condition(spec in arb_error()) {
        let err = spec.build();
        for op in OPERATIONS {
            let o = on_api_error(op, &err);
            prop_assert!(!o.health.reason().is_empty(), "{:?} {:?}", op, err);
            prop_assert!(!o.health.message().trim().is_empty(), "{:?} {:?}", op, err);
            prop_assert!(
                o.health.reason().chars().all(|c| c.is_ascii_alphanumeric()),
                "a condition reason is CamelCase: {}", o.health.reason()
            );
            prop_assert!(!matches!(o.health, Health::Ready { .. }), "{:?}", o);
            match &o.health {
                Health::Stalled { .. } => prop_assert_eq!(o.requeue, Requeue::Never),
                Health::Degraded { .. } => {
                    prop_assert_eq!(o.requeue, Requeue::Backoff { min: err.retry_after() })
                }
                Health::Progressing { reason, .. } => {
                    prop_assert_eq!(*reason, "DeletionBlocked");
                    prop_assert_eq!(op, Operation::Delete);
                    prop_assert_eq!(o.requeue, Requeue::Poll);
                }
                Health::Ready { .. } => unreachable!(),
            }
            if op == Operation::Create && !err.create_certainly_not_applied() {
                // The job may exist: retried, and the retry looks for it (see
                // `a_create_that_may_have_made_a_job_is_looked_for_not_repeated`).
                prop_assert_eq!(o.health.reason(), "CreateUnconfirmed", "{:?}", err);
                prop_assert_eq!(o.requeue, Requeue::Backoff { min: err.retry_after() });
            }
            if o.requeue == Requeue::Never {
                prop_assert!(o.health.waits_for_spec_change(), "a Never without a way out: {:?}", o);
            }
        }
        match on_delete(&Err(spec.build())) {
            DeletionOutcome::Released { already_gone } => {
                prop_assert!(already_gone);
                let is_not_found = matches!(err, ApiError::NotFound(_));
                prop_assert!(is_not_found);
            }
            DeletionOutcome::Retry(o) => prop_assert_eq!(o, on_api_error(Operation::Delete, &err)),
        }
    }

    #[test]
    fn a_create_that_may_have_made_a_job_is_looked_for_not_repeated(
        spec in arb_error(),
        generation in 1i64..4,
        deleting in any::<bool>(),
        orphan in any::<bool>(),
        earlier in arb_conditions(),
    ) {
        // The controller records the intent, sends the create, and records the outcome; the
        // next reconcile plans from what was recorded.
        let err = spec.build();
        let intent = ModelImportStatus {
            create_attempted_at: Some("2026-01-01T00:00:00Z".into()),
            phase: Some(Phase::Pending),
            conditions: earlier,
            ..Default::default()
        };
        let outcome = on_api_error(Operation::Create, &err);
        let recorded = next_status(
            &intent,
            &Update {
                health: Some(outcome.health.clone()),
                create_not_applied: err.create_certainly_not_applied(),
                ..Default::default()
            },
            Some(generation),
            t(5_000),
        );
        let mut obj = ModelImport::new("m", ModelImportSpec {
            base_model: "qwen3-32b".into(),
            display_name: None,
            weight_type: WeightType::Lora,
            source: Source::Oss,
            storage: Storage { bucket_name: "b-1".into(), object_key: "m/".into() },
            api_key_secret_ref: None,
            deletion_policy: if orphan { DeletionPolicy::Orphan } else { DeletionPolicy::Delete },
            job_id: None,
        });
        obj.metadata.generation = Some(generation);
        obj.metadata.finalizers = Some(vec![FINALIZER.to_string()]);
        if deleting {
            obj.metadata.deletion_timestamp = Some(Time(t(6_000)));
        }
        obj.status = Some(recorded);
        let next = plan(&snapshot(&obj));
        if err.create_certainly_not_applied() {
            let ok = matches!(
                (&next, deleting),
                (Plan::Create | Plan::WaitForSpecChange, false) | (Plan::Release { .. }, true)
            );
            prop_assert!(ok, "{:?} after {:?}", next, err);
            if outcome.health.waits_for_spec_change() && !deleting {
                prop_assert_eq!(&next, &Plan::WaitForSpecChange);
            }
        } else {
            let want = if deleting && orphan {
                Plan::Release { reason: ReleaseReason::Orphan }
            } else {
                Plan::Recover
            };
            prop_assert_eq!(&next, &want, "after {:?}", err);
        }
    }

    #[test]
    fn a_deleted_job_releases(job in arb_import_job()) {
        prop_assert_eq!(on_delete(&Ok(job)), DeletionOutcome::Released { already_gone: false });
    }
}

// ---------------------------------------------------------------------------------------------
// (c) The status builder
// ---------------------------------------------------------------------------------------------

const CONDITION_TYPES: &[&str] = &[READY, RECONCILING, STALLED, "example.com/Audited", "Other"];

fn t(secs: i64) -> Timestamp {
    Timestamp::from_second(secs).unwrap()
}

fn arb_conditions() -> impl Strategy<Value = Vec<Condition>> {
    prop::collection::vec(
        (
            prop::sample::select(&["True", "False", "Unknown"][..]),
            "[A-Z][a-zA-Z]{0,10}",
            arb_text(),
            prop::option::of(0i64..5),
            0i64..1_000,
        ),
        CONDITION_TYPES.len(),
    )
    .prop_flat_map(|attrs| {
        // A subset of the types, each at most once (the API server keeps a list-map unique).
        prop::sample::subsequence(CONDITION_TYPES, 0..=CONDITION_TYPES.len()).prop_map(
            move |types| {
                types
                    .iter()
                    .zip(attrs.iter())
                    .map(|(ty, (status, reason, message, gen, time))| Condition {
                        type_: ty.to_string(),
                        status: status.to_string(),
                        reason: reason.clone(),
                        message: message.clone(),
                        observed_generation: *gen,
                        last_transition_time: Time(t(*time)),
                    })
                    .collect()
            },
        )
    })
}

fn arb_phase() -> impl Strategy<Value = Phase> {
    prop::sample::select(
        &[
            Phase::Pending,
            Phase::Running,
            Phase::Succeeded,
            Phase::Failed,
            Phase::Deleting,
        ][..],
    )
}

fn arb_current_status() -> impl Strategy<Value = ModelImportStatus> {
    (
        arb_job_id(),
        prop::option::of(arb_text()),
        prop::option::of(arb_remote_status_text()),
        prop::option::of(arb_phase()),
        prop::option::of(arb_text()),
        prop::option::of(0i64..5),
        arb_conditions(),
        any::<bool>(),
    )
        .prop_map(
            |(
                job_id,
                model_name,
                remote_status,
                phase,
                error_code,
                observed,
                conditions,
                attempted,
            )| {
                ModelImportStatus {
                    job_id,
                    model_name,
                    remote_status,
                    phase,
                    error_code,
                    observed_generation: observed,
                    conditions,
                    create_attempted_at: attempted.then(|| "2026-01-01T00:00:00Z".to_string()),
                    ..Default::default()
                }
            },
        )
}

fn arb_health() -> impl Strategy<Value = Health> {
    (
        0..4u8,
        prop::sample::select(
            &[
                "JobRunning",
                "InvalidParameter",
                "Throttled",
                "JobSucceeded",
            ][..],
        ),
        arb_text(),
    )
        .prop_map(|(kind, reason, message)| match kind {
            0 => Health::Progressing { reason, message },
            1 => Health::Ready { reason, message },
            2 => Health::Stalled { reason, message },
            _ => Health::Degraded { reason, message },
        })
}

fn arb_update() -> impl Strategy<Value = Update> {
    (
        prop::option::of(arb_import_job().prop_map(|j| observe_job(&j))),
        prop::option::of(arb_phase()),
        prop::option::of(arb_health()),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(job, phase, health, health_of_job, create_not_applied)| {
            // Usually the health shown is the job's own.
            let health = match (&job, health_of_job) {
                (Some(v), true) => Some(v.health.clone()),
                _ => health,
            };
            Update {
                job,
                phase,
                health,
                create_not_applied,
            }
        })
}

fn types_unique(conditions: &[Condition]) -> bool {
    let mut types: Vec<&str> = conditions.iter().map(|c| c.type_.as_str()).collect();
    let n = types.len();
    types.sort_unstable();
    types.dedup();
    types.len() == n
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn next_status_is_idempotent_and_moves_time_only_on_transitions(
        current in arb_current_status(),
        update in arb_update(),
        generation in prop::option::of(0i64..5),
        now1 in 1_000i64..2_000,
        later in 1i64..1_000,
    ) {
        let s1 = next_status(&current, &update, generation, t(now1));
        let s2 = next_status(&s1, &update, generation, t(now1 + later));
        prop_assert_eq!(&s1, &s2, "the same update twice must change nothing");

        prop_assert!(s1.phase.is_some());
        prop_assert_eq!(s1.observed_generation, generation.or(current.observed_generation));
        prop_assert!(types_unique(&s1.conditions), "{:?}", s1.conditions);
        match &update.health {
            None => prop_assert_eq!(&s1.conditions, &current.conditions),
            Some(h) => {
                for c in &s1.conditions {
                    let old = current.conditions.iter().find(|o| o.type_ == c.type_);
                    let ours = [READY, RECONCILING, STALLED].contains(&c.type_.as_str());
                    if !ours {
                        prop_assert_eq!(Some(c), old, "a foreign condition is kept as is");
                        continue;
                    }
                    prop_assert_eq!(c.observed_generation, generation);
                    match old {
                        Some(o) if o.status == c.status => {
                            prop_assert_eq!(&c.last_transition_time, &o.last_transition_time)
                        }
                        _ => prop_assert_eq!(&c.last_transition_time, &Time(t(now1))),
                    }
                }
                // kstatus: never Ready and Stalled, never Reconciling and Stalled.
                let on = |ty: &str| s1.conditions.iter().any(|c| c.type_ == ty && c.status == "True");
                prop_assert_eq!(on(READY), matches!(h, Health::Ready { .. }));
                prop_assert_eq!(on(STALLED), matches!(h, Health::Stalled { .. }));
                prop_assert!(!(on(RECONCILING) && on(STALLED)));
                prop_assert!(!(on(READY) && on(RECONCILING)));
            }
        }
        if let Some(job) = &update.job {
            prop_assert_eq!(s1.job_id.as_ref(), Some(&job.job_id));
            prop_assert_eq!(s1.remote_status.as_ref(), Some(&job.remote_status));
        } else {
            prop_assert_eq!(&s1.job_id, &current.job_id);
        }
        if let Some(p) = update.phase {
            prop_assert_eq!(s1.phase, Some(p));
        }
        // The create intent is forgotten exactly when a job is recorded or the create certainly
        // made nothing.
        if s1.job_id.is_some() || update.create_not_applied {
            prop_assert_eq!(&s1.create_attempted_at, &None);
        } else {
            prop_assert_eq!(&s1.create_attempted_at, &current.create_attempted_at);
        }
    }

    #[test]
    fn merge_conditions_keeps_types_unique_and_times_honest(
        current in arb_conditions(),
        health in arb_health(),
        generation in prop::option::of(0i64..5),
        now in 1_000i64..2_000,
    ) {
        let desired = conditions_for(&health, generation);
        prop_assert!(types_unique(&desired));
        let merged = merge_conditions(&current, desired.clone(), t(now));
        prop_assert!(types_unique(&merged));
        let mut want_types: Vec<&str> = desired.iter().map(|c| c.type_.as_str())
            .chain(current.iter().map(|c| c.type_.as_str()))
            .collect();
        want_types.sort_unstable();
        want_types.dedup();
        prop_assert_eq!(merged.len(), want_types.len());
        for c in &merged {
            let old = current.iter().find(|o| o.type_ == c.type_);
            let changed = old.is_none_or(|o| o.status != c.status);
            prop_assert_eq!(
                c.last_transition_time == Time(t(now)),
                changed || old.is_some_and(|o| o.last_transition_time == Time(t(now))),
                "{:?} from {:?}", c, old
            );
        }
        // Merging again at a later time changes nothing.
        let again = merge_conditions(&merged, desired, t(now + 60));
        prop_assert_eq!(again, merged);
    }
}
