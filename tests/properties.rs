//! Property tests over the wire side: the response decoder (`decode` of a job or a page: any
//! status, any bytes, any JSON, every truncation, HTML pages) and the HTTP client (no answer of
//! any kind puts the API key into an error). The decisions made on what the decoder returns
//! (`plan`, `observe_job`, `on_api_error`, `on_delete`) and the status builder belong to
//! modelstudio-core, whose properties are in crates/core/tests/properties.rs.
//!
//! Nothing here may panic on any input: a malformed answer from Model Studio becomes an error
//! (which the core turns into a condition).

use std::time::Duration;

use modelstudio_controller::modelstudio::{
    decode, ApiError, ApiKey, HttpClient, HttpClientConfig, ImportJobs, Job, JobPage, JobState,
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
    let job = decode::<Job>(status, retry_after, body);
    let page = decode::<JobPage>(status, retry_after, body);
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
// The response decoder
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
        let job = decode::<Job>(status, None, &bytes)
            .unwrap_or_else(|e| panic!("{e} for {body}"));
        let out = &body["output"];
        prop_assert_eq!(&job.id, out["job_id"].as_str().unwrap());
        prop_assert_eq!(&job.status_text, out["status"].as_str().unwrap());
        // The status is kept as sent, and read as both spellings of success are.
        prop_assert_eq!(&job.state, &JobState::parse(&job.status_text));
        prop_assert_eq!(job.model_name.as_deref(), out["model_name"].as_str());
        prop_assert_eq!(job.display_name.as_deref(), out["display_name"].as_str());
        prop_assert_eq!(job.error_code.as_deref(), out["error_code"].as_str());
        prop_assert_eq!(job.created_at.as_deref(), out["gmt_create"].as_str());
        prop_assert_eq!(job.storage.is_some(), out.get("storage_info").is_some());
        if let Some(storage) = &job.storage {
            let sent = &out["storage_info"];
            prop_assert_eq!(&storage.bucket_name, sent["bucket_name"].as_str().unwrap());
            prop_assert_eq!(&storage.object_key, sent["object_key"].as_str().unwrap());
        }
        // And the page form.
        let page_body = json!({"request_id": "r", "output": {
            "total": 1, "page_no": 1, "page_size": 10, "list": [out]
        }});
        let page = decode::<JobPage>(status, None, &serde_json::to_vec(&page_body).unwrap())
            .unwrap_or_else(|e| panic!("{e} for {page_body}"));
        prop_assert_eq!(page.items.len(), 1);
        prop_assert_eq!(&page.items[0], &job);
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
        let decoded = decode::<Job>(status, None, &body);
        let required = matches!(field, "job_id" | "status");
        let fits = match (&value, field) {
            (None, _) => !required,
            // The API sends them, but a job carries neither: ignored like any undocumented field.
            (Some(_), "source" | "weight_type") => true,
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
        match decode::<JobPage>(200, None, &body) {
            Ok(p) => prop_assert!(p.items.len() <= 6),
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
    // A refused connection becomes a Connect error: transient, and a create that never connected
    // made nothing (that the core retries it with backoff, never as a stall, is tested in
    // crates/core/tests/properties.rs: `a_refused_connection_is_retried_never_stalled`).
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
    }
}
