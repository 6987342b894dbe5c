//! Admission: every invalid ModelImport is refused by the CRD's schema and CEL rules, through the
//! API, with a message that names the field and says what to fix.
//!
//! The real kube-apiserver 1.37 of `crates/testbed` serves the generated CRD (the embedded API
//! server where the test command has not built it). Each manifest under
//! `tests/fixtures/invalid/` is created as kubectl does (`POST` with `fieldValidation=Strict`) and
//! must be refused with the text of its `# expect:` line: 422 `Invalid` for schema and CEL errors,
//! 400 `BadRequest` for strict decoding errors (unknown fields), as kube-apiserver answers. Each
//! pair under `tests/fixtures/immutable/` is created, then replaced (`PUT`, as `kubectl replace`)
//! with the update, which must be refused with the rule's message, or accepted when it expects
//! `accepted`. The expectations are what kube-apiserver says, asserted in full on the real server;
//! where the embedded server says something else, the fixture is listed in [`KNOWN_SERVER_GAPS`]
//! with the reason, and only there is its message not asserted.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use kube::core::Status;
use kube::Client;
use modelstudio_testbed::{Cluster, Flavor};
use serde_json::{json, Value};

const NS: &str = "default";
const COLLECTION: &str = "/apis/modelstudio.io/v1alpha1/namespaces/default/modelimports";
const MIN_INVALID: usize = 50;
const MIN_IMMUTABLE_REFUSED: usize = 8;

/// Fixtures whose expectation is what kube-apiserver says but not (yet) what the embedded server
/// says. They are still sent and must still be refused, but their message is not asserted.
/// Remove an entry once `crates/apiserver` is fixed: the test prints when a gap closes.
const KNOWN_SERVER_GAPS: &[(&str, &str)] = &[
    (
        "invalid/spec-list.yaml",
        "kube-apiserver decodes strictly first and names the list items' fields as unknown (400); \
         the embedded server checks the type first (422)",
    ),
    (
        "invalid/storage-list.yaml",
        "kube-apiserver decodes strictly first and names the list items' fields as unknown (400); \
         the embedded server checks the type first (422)",
    ),
];

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// A manifest with its header: `# expect: <text>` then `# <what is wrong>`.
struct Fixture {
    /// Path relative to `tests/fixtures`, such as `invalid/basemodel-empty.yaml`.
    id: String,
    expect: String,
    why: String,
    object: Value,
}

fn load(path: &Path) -> Fixture {
    let id = path
        .strip_prefix(fixtures_dir())
        .unwrap()
        .to_string_lossy()
        .replace('\\', "/");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{id}: {e}"));
    let mut lines = text.lines();
    let expect = lines
        .next()
        .and_then(|l| l.strip_prefix("# expect: "))
        .unwrap_or_else(|| panic!("{id}: the first line must be `# expect: <message text>`"))
        .to_string();
    let why = lines
        .next()
        .and_then(|l| l.strip_prefix("# "))
        .filter(|w| !w.trim().is_empty())
        .unwrap_or_else(|| panic!("{id}: the second line must say what is wrong"))
        .to_string();
    assert!(!expect.trim().is_empty(), "{id}: empty expectation");
    let object: Value = serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{id}: {e}"));
    assert_eq!(
        object["kind"], "ModelImport",
        "{id}: not a ModelImport manifest"
    );
    Fixture {
        id,
        expect,
        why,
        object,
    }
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect();
    files.sort();
    files
}

/// The embedded server's known gap for a fixture; the real server has none.
fn gap(t: &Tally, id: &str) -> Option<&'static str> {
    if t.flavor == Flavor::Real {
        return None;
    }
    KNOWN_SERVER_GAPS
        .iter()
        .find(|(g, _)| *g == id)
        .map(|(_, reason)| *reason)
}

/// Server-side applies the CRD and waits (bounded) until it is Established.
async fn install_crd(client: &Client) {
    modelstudio_testbed::install_crd(
        client,
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("crds/modelimport.yaml"),
    )
    .await
    .expect("the CRD is installed and Established");
}

/// One write as kubectl sends it: JSON body, `fieldValidation=Strict`.
async fn write(
    client: &Client,
    method: http::Method,
    uri: &str,
    body: &Value,
) -> Result<Value, Box<Status>> {
    let request = http::Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(body).unwrap())
        .unwrap();
    match client.request::<Value>(request).await {
        Ok(v) => Ok(v),
        Err(kube::Error::Api(status)) => Err(status),
        Err(e) => panic!("{uri}: transport error {e}"),
    }
}

async fn create(client: &Client, object: &Value, query: &str) -> Result<Value, Box<Status>> {
    let uri = format!("{COLLECTION}?fieldManager=kubectl-create&fieldValidation=Strict{query}");
    write(client, http::Method::POST, &uri, object).await
}

async fn replace(client: &Client, name: &str, object: &Value) -> Result<Value, Box<Status>> {
    let uri = format!("{COLLECTION}/{name}?fieldManager=kubectl-replace&fieldValidation=Strict");
    write(client, http::Method::PUT, &uri, object).await
}

async fn get(client: &Client, name: &str) -> Value {
    let request = http::Request::get(format!("{COLLECTION}/{name}"))
        .body(Vec::new())
        .unwrap();
    client.request::<Value>(request).await.unwrap()
}

/// Checks a refusal against kube-apiserver's format; returns a description of what is wrong.
fn check_refusal(
    status: &Status,
    expect: &str,
    name: &str,
    accept_unknown_field: bool,
) -> Result<(), String> {
    let strict = expect.contains("strict decoding error");
    if strict {
        if !accept_unknown_field {
            return Err("a strict decoding error is not expected here".into());
        }
        // kube-apiserver: 400 BadRequest `ModelImport in version "v1alpha1" cannot be handled as
        // a ModelImport: strict decoding error: unknown field "spec.foo"`.
        if status.code != 400 || status.reason != "BadRequest" {
            return Err(format!(
                "expected 400 BadRequest, got {} {}",
                status.code, status.reason
            ));
        }
        let prefix = "ModelImport in version \"v1alpha1\" cannot be handled as a ModelImport: ";
        if !status.message.starts_with(prefix) {
            return Err(format!("message does not start with {prefix:?}"));
        }
    } else {
        if status.code != 422 || status.reason != "Invalid" {
            return Err(format!(
                "expected 422 Invalid, got {} {}: {:?}",
                status.code, status.reason, status.message
            ));
        }
        let prefix = format!("ModelImport.modelstudio.io \"{name}\" is invalid: ");
        if !status.message.starts_with(&prefix) {
            return Err(format!("message does not start with {prefix:?}"));
        }
        // The expectation starts with the field path (`spec.storage.objectKey: ...`), which must
        // also be a cause's field, so clients (kubectl, UIs) can point at it.
        let field = expect
            .split_once(": ")
            .map(|(f, _)| f)
            .filter(|f| !f.contains(' '))
            .unwrap_or("");
        if field.is_empty() && !expect.contains(" in body ") {
            return Err("the expectation names no field".into());
        }
        if !field.is_empty() {
            let causes = status
                .details
                .as_ref()
                .map(|d| d.causes.as_slice())
                .unwrap_or_default();
            if !causes.iter().any(|c| c.field == field) {
                return Err(format!("no cause names the field {field:?}: {causes:?}"));
            }
        }
    }
    if !status.message.contains(expect) {
        return Err(format!(
            "message does not contain {expect:?}; it is {:?}",
            status.message
        ));
    }
    Ok(())
}

fn name_of(object: &Value) -> String {
    object["metadata"]["name"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

struct Tally {
    flavor: Flavor,
    invalid_refused: usize,
    immutable_refused: usize,
    allowed_accepted: usize,
    valid_accepted: usize,
    examples_accepted: usize,
    gaps: Vec<String>,
    failures: Vec<String>,
}

async fn invalid_corpus(client: &Client, t: &mut Tally) {
    let files = yaml_files(&fixtures_dir().join("invalid"));
    let mut names = BTreeSet::new();
    for path in files {
        let f = load(&path);
        let name = name_of(&f.object);
        assert!(
            name.is_empty() || names.insert(name.clone()),
            "{}: metadata.name {name:?} is used twice",
            f.id
        );
        match (create(client, &f.object, "").await, gap(t, &f.id)) {
            (Ok(_), _) => t
                .failures
                .push(format!("{}: was accepted ({})", f.id, f.why)),
            (Err(status), Some(reason)) => {
                let now = check_refusal(&status, &f.expect, &name, true);
                t.gaps.push(format!(
                    "{}: {}\n    embedded server answered {} {}: {}\n    gap: {reason}{}",
                    f.id,
                    f.why,
                    status.code,
                    status.reason,
                    status.message,
                    if now.is_ok() {
                        "\n    NOTE: the expectation now holds: remove it from KNOWN_SERVER_GAPS"
                    } else {
                        ""
                    }
                ));
            }
            (Err(status), None) => match check_refusal(&status, &f.expect, &name, true) {
                Ok(()) => t.invalid_refused += 1,
                Err(e) => t.failures.push(format!(
                    "{}: {e}\n    ({})\n    got {} {}: {}",
                    f.id, f.why, status.code, status.reason, status.message
                )),
            },
        }
    }
    // Nothing invalid was stored.
    let request = http::Request::get(COLLECTION).body(Vec::new()).unwrap();
    let list: Value = client.request(request).await.unwrap();
    let stored: Vec<String> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(name_of)
        .collect();
    if !stored.is_empty() {
        t.failures
            .push(format!("invalid manifests were stored: {stored:?}"));
    }
}

async fn immutable_pairs(client: &Client, t: &mut Tally) {
    let dir = fixtures_dir().join("immutable");
    let updates: Vec<PathBuf> = yaml_files(&dir)
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".update.yaml"))
        .collect();
    for update_path in updates {
        let update = load(&update_path);
        let original_path = PathBuf::from(
            update_path
                .to_string_lossy()
                .replace(".update.yaml", ".original.yaml"),
        );
        let original = load(&original_path);
        let name = name_of(&original.object);
        assert_eq!(
            name,
            name_of(&update.object),
            "{}: the pair names two objects",
            update.id
        );
        let created = match create(client, &original.object, "").await {
            Ok(c) => c,
            Err(s) => {
                t.failures.push(format!(
                    "{}: the original was refused: {}",
                    original.id, s.message
                ));
                continue;
            }
        };
        let mut body = update.object.clone();
        body["metadata"]["resourceVersion"] = created["metadata"]["resourceVersion"].clone();
        let result = replace(client, &name, &body).await;
        let stored = get(client, &name).await;
        match (update.expect.as_str(), result, gap(t, &update.id)) {
            ("accepted", Ok(replaced), _) => {
                // The stored spec is the update's, with the server's defaults.
                let mut want = update.object["spec"].clone();
                for (k, v) in [
                    ("source", json!("oss")),
                    ("deletionPolicy", json!("Delete")),
                ] {
                    want.as_object_mut().unwrap().entry(k).or_insert(v);
                }
                if let Some(r) = want
                    .get_mut("apiKeySecretRef")
                    .and_then(|r| r.as_object_mut())
                {
                    r.entry("key").or_insert(json!("api-key"));
                }
                if replaced["spec"] != want || stored["spec"] != want {
                    t.failures.push(format!(
                        "{}: accepted, but the stored spec is {} instead of {want}",
                        update.id, stored["spec"]
                    ));
                } else {
                    t.allowed_accepted += 1;
                }
            }
            ("accepted", Err(s), _) => t.failures.push(format!(
                "{}: an allowed update was refused ({}): {} {}: {}",
                update.id, update.why, s.code, s.reason, s.message
            )),
            (_, Ok(_), _) => t.failures.push(format!(
                "{}: an immutable change was accepted ({})",
                update.id, update.why
            )),
            (_, Err(s), Some(reason)) => t.gaps.push(format!(
                "{}: {}\n    embedded server answered {} {}: {}\n    gap: {reason}",
                update.id, update.why, s.code, s.reason, s.message
            )),
            (expect, Err(s), None) => match check_refusal(&s, expect, &name, false) {
                Ok(()) if stored["spec"] == created["spec"] => t.immutable_refused += 1,
                Ok(()) => t.failures.push(format!(
                    "{}: refused, but the stored spec changed to {}",
                    update.id, stored["spec"]
                )),
                Err(e) => t.failures.push(format!(
                    "{}: {e}\n    ({})\n    got {} {}: {}",
                    update.id, update.why, s.code, s.reason, s.message
                )),
            },
        }
    }
}

/// Values at the edges of every limit, which must pass (the schema must not over-refuse).
async fn boundary_values_are_accepted(client: &Client, t: &mut Tally) {
    let base = json!({
        "baseModel": "qwen3-32b",
        "weightType": "lora",
        "storage": {"bucketName": "my-models", "objectKey": "models/qwen3-32b-lora/"}
    });
    let cases: Vec<(&str, Value)> = vec![
        (
            "displayname-50-multibyte",
            json!({"displayName": "模".repeat(50)}),
        ),
        ("displayname-1", json!({"displayName": "m"})),
        ("basemodel-128", json!({"baseModel": "q".repeat(128)})),
        ("basemodel-1", json!({"baseModel": "q"})),
        (
            "basemodel-dots-underscores",
            json!({"baseModel": "qwen2.5-7b_instruct"}),
        ),
        (
            "bucket-3",
            json!({"storage": {"bucketName": "abc", "objectKey": "a/"}}),
        ),
        (
            "bucket-63",
            json!({"storage": {"bucketName": "b".repeat(63), "objectKey": format!("{}/", "k".repeat(1022))}}),
        ),
        ("jobid-64", json!({"jobId": "J".repeat(64)})),
        (
            "weighttype-full-orphan",
            json!({"weightType": "full", "deletionPolicy": "Orphan", "source": "oss"}),
        ),
        (
            "secretref-name-only",
            json!({"apiKeySecretRef": {"name": "dashscope"}}),
        ),
        (
            "nullable-nulls",
            json!({"displayName": null, "jobId": null, "apiKeySecretRef": null}),
        ),
    ];
    for (name, overrides) in cases {
        let mut spec = base.clone();
        for (k, v) in overrides.as_object().unwrap() {
            spec[k] = v.clone();
        }
        let object = json!({
            "apiVersion": "modelstudio.io/v1alpha1",
            "kind": "ModelImport",
            "metadata": {"name": format!("edge-{name}")},
            "spec": spec,
        });
        match create(client, &object, "&dryRun=All").await {
            Ok(_) => t.valid_accepted += 1,
            Err(s) => t.failures.push(format!(
                "boundary value {name} was refused: {} {}: {}",
                s.code, s.reason, s.message
            )),
        }
    }
}

/// Every ModelImport in `examples/` (when the directory exists) passes admission.
async fn examples_are_accepted(client: &Client, t: &mut Tally) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    for path in yaml_files(&dir) {
        let text = std::fs::read_to_string(&path).unwrap();
        let docs: Vec<Value> = match serde_saphyr::from_multiple(&text) {
            Ok(d) => d,
            Err(e) => {
                t.failures
                    .push(format!("{}: not YAML: {e}", path.display()));
                continue;
            }
        };
        for doc in docs.into_iter().filter(|d| d["kind"] == "ModelImport") {
            let mut doc = doc;
            // The example's namespace is whatever `kubectl apply -n` says; here it is ours.
            if let Some(m) = doc["metadata"].as_object_mut() {
                m.remove("namespace");
            }
            match create(client, &doc, "&dryRun=All").await {
                Ok(_) => t.examples_accepted += 1,
                Err(s) => t.failures.push(format!(
                    "{} ({}): refused: {} {}: {}",
                    path.display(),
                    name_of(&doc),
                    s.code,
                    s.reason,
                    s.message
                )),
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_manifests_are_refused_with_a_message_that_says_what_to_fix() {
    let started = Instant::now();
    let cluster = Cluster::start().await.expect("a Kubernetes API server");
    println!("admission corpus on {:?}", cluster.flavor());
    let client = cluster
        .client(NS)
        .await
        .expect("a client for the API server");
    install_crd(&client).await;

    let mut t = Tally {
        flavor: cluster.flavor(),
        invalid_refused: 0,
        immutable_refused: 0,
        allowed_accepted: 0,
        valid_accepted: 0,
        examples_accepted: 0,
        gaps: vec![],
        failures: vec![],
    };
    invalid_corpus(&client, &mut t).await;
    immutable_pairs(&client, &mut t).await;
    boundary_values_are_accepted(&client, &mut t).await;
    examples_are_accepted(&client, &mut t).await;
    drop(cluster);

    for g in &t.gaps {
        eprintln!("KNOWN SERVER GAP {g}");
    }
    println!(
        "admission corpus: {} invalid manifests refused, {} immutable updates refused, \
         {} allowed updates accepted, {} boundary values accepted, {} examples accepted, \
         {} known server gaps ({:.1?}, {:?})",
        t.invalid_refused,
        t.immutable_refused,
        t.allowed_accepted,
        t.valid_accepted,
        t.examples_accepted,
        t.gaps.len(),
        started.elapsed(),
        t.flavor
    );
    assert!(
        t.failures.is_empty(),
        "{} admission failures:\n{}",
        t.failures.len(),
        t.failures.join("\n")
    );
    assert!(
        t.invalid_refused >= MIN_INVALID,
        "only {} invalid manifests asserted, want at least {MIN_INVALID}",
        t.invalid_refused
    );
    assert!(
        t.immutable_refused >= MIN_IMMUTABLE_REFUSED,
        "only {} immutable updates asserted, want at least {MIN_IMMUTABLE_REFUSED}",
        t.immutable_refused
    );
    assert!(t.allowed_accepted >= 3, "too few allowed updates");
    // Every listed gap still has its fixture.
    for (id, _) in KNOWN_SERVER_GAPS {
        assert!(
            fixtures_dir().join(id).exists(),
            "KNOWN_SERVER_GAPS names {id}, which does not exist"
        );
    }
}
