//! Admission: every invalid ModelImport is refused by the CRD's schema and CEL rules, through the
//! API, with a message that names the field and says what to fix.
//!
//! The real kube-apiserver 1.37 of `crates/testbed` serves the generated CRD. Each manifest under
//! `tests/fixtures/invalid/` is created as kubectl does (`POST` with `fieldValidation=Strict`) and
//! must be refused with the text of its `# expect:` line: 422 `Invalid` for schema and CEL errors,
//! 400 `BadRequest` for strict decoding errors (unknown fields), as kube-apiserver answers. Each
//! pair under `tests/fixtures/immutable/` is created, then replaced (`PUT`, as `kubectl replace`)
//! with the update, which must be refused with the rule's message, or accepted when it expects
//! `accepted`. The expectations are what kube-apiserver says, asserted in full.
//!
//! ModelDeployment gets the same treatment from cases written in this file (each plan accepted,
//! each invalid object and immutable change refused with its message, the mutable fields
//! accepted), then kubectl shows its printer columns, short name and category.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use kube::core::Status;
use kube::Client;
use modelstudio_testbed::{table, Cluster, Kubectl};
use serde_json::{json, Value};

const NS: &str = "default";
const COLLECTION: &str = "/apis/modelstudio.io/v1alpha1/namespaces/default/modelimports";
const MIN_INVALID: usize = 50;
const MIN_IMMUTABLE_REFUSED: usize = 8;

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
    kind: &str,
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
        let prefix = format!("{kind} in version \"v1alpha1\" cannot be handled as a {kind}: ");
        if !status.message.starts_with(&prefix) {
            return Err(format!("message does not start with {prefix:?}"));
        }
    } else {
        if status.code != 422 || status.reason != "Invalid" {
            return Err(format!(
                "expected 422 Invalid, got {} {}: {:?}",
                status.code, status.reason, status.message
            ));
        }
        let prefix = format!("{kind}.modelstudio.io \"{name}\" is invalid: ");
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
    invalid_refused: usize,
    immutable_refused: usize,
    allowed_accepted: usize,
    valid_accepted: usize,
    examples_accepted: usize,
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
        match create(client, &f.object, "").await {
            Ok(_) => t
                .failures
                .push(format!("{}: was accepted ({})", f.id, f.why)),
            Err(status) => match check_refusal("ModelImport", &status, &f.expect, &name, true) {
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
        match (update.expect.as_str(), result) {
            ("accepted", Ok(replaced)) => {
                // The stored spec is the update's, with the server's defaults.
                let mut want = update.object["spec"].clone();
                for (k, v) in [
                    ("source", json!("oss")),
                    ("deletionPolicy", json!("Delete")),
                    ("managementPolicy", json!("Manage")),
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
            ("accepted", Err(s)) => t.failures.push(format!(
                "{}: an allowed update was refused ({}): {} {}: {}",
                update.id, update.why, s.code, s.reason, s.message
            )),
            (_, Ok(_)) => t.failures.push(format!(
                "{}: an immutable change was accepted ({})",
                update.id, update.why
            )),
            (expect, Err(s)) => match check_refusal("ModelImport", &s, expect, &name, false) {
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
    // An observed import needs its job's ID only: nothing a create reads.
    let observed = json!({
        "apiVersion": "modelstudio.io/v1alpha1",
        "kind": "ModelImport",
        "metadata": {"name": "edge-observed"},
        "spec": {"managementPolicy": "Observe", "jobId": "ft-202501-obsv"},
    });
    match create(client, &observed, "&dryRun=All").await {
        Ok(_) => t.valid_accepted += 1,
        Err(s) => t.failures.push(format!(
            "an observed import with its jobId only was refused: {} {}: {}",
            s.code, s.reason, s.message
        )),
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
    let client = cluster
        .client(NS)
        .await
        .expect("a client for the API server");
    install_crd(&client).await;

    let mut t = Tally {
        invalid_refused: 0,
        immutable_refused: 0,
        allowed_accepted: 0,
        valid_accepted: 0,
        examples_accepted: 0,
        failures: vec![],
    };
    invalid_corpus(&client, &mut t).await;
    immutable_pairs(&client, &mut t).await;
    boundary_values_are_accepted(&client, &mut t).await;
    examples_are_accepted(&client, &mut t).await;
    drop(cluster);

    println!(
        "admission corpus: {} invalid manifests refused, {} immutable updates refused, \
         {} allowed updates accepted, {} boundary values accepted, {} examples accepted ({:.1?})",
        t.invalid_refused,
        t.immutable_refused,
        t.allowed_accepted,
        t.valid_accepted,
        t.examples_accepted,
        started.elapsed(),
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
}

// ModelDeployment: the same admission, with the cases written here (each names its object),
// then what kubectl shows of the resource.

const DEPLOYMENTS: &str = "/apis/modelstudio.io/v1alpha1/namespaces/default/modeldeployments";
const DEPLOYMENT_CRD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/crds/modeldeployment.yaml");

fn deployment(name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "modelstudio.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": spec,
    })
}

/// A mu deployment of an imported model that sets every immutable field.
fn mu_spec() -> Value {
    json!({
        "modelImportRef": {"name": "qwen3-lora"},
        "plan": "mu",
        "capacity": 2,
        "deploySpec": "MU1",
        "name": "chat",
        "suffix": "v1",
        "enableThinking": false,
        "maxContextLength": 32768,
        "rpmLimit": 60,
        "tpmLimit": 100000,
    })
}

/// A ptu deployment of a model by name, with only what it needs.
fn ptu_spec() -> Value {
    json!({
        "modelName": "qwen3-32b-offline-20240101-abc1",
        "plan": "ptu",
        "capacity": 1,
        "ptuCapacity": {"inputTpm": 100000, "outputTpm": 20000},
    })
}

fn with(mut spec: Value, set: Value, remove: &[&str]) -> Value {
    let map = spec.as_object_mut().unwrap();
    for field in remove {
        map.remove(*field);
    }
    map.extend(set.as_object().unwrap().clone());
    spec
}

async fn create_deployment(client: &Client, object: &Value) -> Result<Value, Box<Status>> {
    let uri = format!("{DEPLOYMENTS}?fieldManager=kubectl-create&fieldValidation=Strict");
    write(client, http::Method::POST, &uri, object).await
}

/// The spec as the server stores it: `deletionPolicy` and the Secret key defaulted.
fn stored_form(spec: &Value) -> Value {
    let mut want = spec.clone();
    let map = want.as_object_mut().unwrap();
    map.entry("deletionPolicy").or_insert(json!("Delete"));
    map.entry("managementPolicy").or_insert(json!("Manage"));
    if let Some(r) = map
        .get_mut("apiKeySecretRef")
        .and_then(|r| r.as_object_mut())
    {
        r.entry("key").or_insert(json!("api-key"));
    }
    want
}

/// The refusal, checked as for ModelImport's fixtures.
fn judge_deployment_refusal(
    t: &mut Tally,
    case: &str,
    status: &Status,
    expect: &str,
    name: &str,
) -> bool {
    match check_refusal("ModelDeployment", status, expect, name, false) {
        Ok(()) => true,
        Err(e) => {
            t.failures.push(format!(
                "{case}: {e}\n    got {} {}: {}",
                status.code, status.reason, status.message
            ));
            false
        }
    }
}

async fn deployment_creates(client: &Client, t: &mut Tally) {
    let accepted: Vec<(&str, Value)> = vec![
        ("plan-mu", mu_spec()),
        ("plan-ptu", ptu_spec()),
        (
            "plan-lora",
            json!({"modelImportRef": {"name": "qwen3-lora"}, "plan": "lora", "capacity": 1}),
        ),
        (
            "plan-cu",
            json!({"modelName": "qwen3-8b", "plan": "cu", "capacity": 8}),
        ),
        (
            "plan-omitted",
            json!({"modelName": "qwen3-8b", "capacity": 999, "deletionPolicy": "Orphan",
                   "apiKeySecretRef": {"name": "dashscope"}}),
        ),
        (
            "edges",
            with(
                mu_spec(),
                json!({"name": "模".repeat(50), "suffix": "a1-b2-c3", "capacity": 1,
                       "modelImportRef": {"name": "m".repeat(253)}}),
                &[],
            ),
        ),
        // Observed: the deployment's name only, nothing a deploy needs.
        (
            "observed",
            json!({"managementPolicy": "Observe", "deployedModel": "qwen-plus-abc1"}),
        ),
        // `null` in an optional field reads as absent to the rules (`has()` is false).
        (
            "nulls",
            with(
                mu_spec(),
                json!({"modelName": null, "ptuCapacity": null, "rpmLimit": null}),
                &[],
            ),
        ),
    ];
    for (name, spec) in accepted {
        match create_deployment(client, &deployment(name, spec.clone())).await {
            Ok(created) if created["spec"] == stored_form(&spec) => t.valid_accepted += 1,
            Ok(created) => t.failures.push(format!(
                "deployment {name}: stored as {} instead of {}",
                created["spec"],
                stored_form(&spec)
            )),
            Err(s) => t.failures.push(format!(
                "deployment {name} was refused: {} {}: {}",
                s.code, s.reason, s.message
            )),
        }
    }

    let one_model = "spec: Invalid value: set exactly one of modelImportRef (a \
                     ModelImport in this namespace) and modelName (a model that can already be \
                     deployed)";
    let refused: Vec<(&str, Value, &str)> = vec![
        (
            "no-model",
            with(mu_spec(), json!({}), &["modelImportRef"]),
            one_model,
        ),
        (
            "two-models",
            with(mu_spec(), json!({"modelName": "qwen3-8b"}), &[]),
            one_model,
        ),
        (
            "capacity-0",
            with(mu_spec(), json!({"capacity": 0}), &[]),
            "spec.capacity: Invalid value: 0: spec.capacity in body should be greater than or \
             equal to 1",
        ),
        (
            "capacity-1000",
            with(mu_spec(), json!({"capacity": 1000}), &[]),
            "spec.capacity: Invalid value: 1000: spec.capacity in body should be less than or \
             equal to 999",
        ),
        (
            "capacity-missing",
            with(mu_spec(), json!({}), &["capacity"]),
            "spec.capacity: Required value",
        ),
        (
            "mu-without-deployspec",
            with(mu_spec(), json!({}), &["deploySpec"]),
            "spec.deploySpec: Invalid value: deploySpec is required when plan is mu: \
             set the model unit spec, for example MU1",
        ),
        (
            "ptu-without-ptucapacity",
            with(ptu_spec(), json!({}), &["ptuCapacity"]),
            "spec.ptuCapacity: Invalid value: ptuCapacity is required when plan is \
             ptu: set inputTpm and outputTpm",
        ),
        (
            "deployspec-on-lora",
            with(mu_spec(), json!({"plan": "lora"}), &[]),
            "spec.deploySpec: Invalid value: deploySpec applies only to plan mu: \
             remove it, or set plan to mu",
        ),
        (
            "ptucapacity-on-cu",
            with(ptu_spec(), json!({"plan": "cu"}), &[]),
            "spec.ptuCapacity: Invalid value: ptuCapacity applies only to plan ptu: \
             remove it, or set plan to ptu",
        ),
        (
            "plan-uppercase",
            with(mu_spec(), json!({"plan": "MU"}), &[]),
            "spec.plan: Unsupported value: \"MU\": supported values: \"ptu\", \"mu\", \"lora\", \
             \"cu\"",
        ),
        (
            "suffix-9",
            with(mu_spec(), json!({"suffix": "abcdefghi"}), &[]),
            "spec.suffix: Too long: may not be more than 8 bytes",
        ),
        (
            "suffix-uppercase",
            with(mu_spec(), json!({"suffix": "V1"}), &[]),
            "spec.suffix: Invalid value: \"V1\": spec.suffix in body should match \
             '^[a-z0-9-]+$'",
        ),
        (
            "name-51",
            with(mu_spec(), json!({"name": "n".repeat(51)}), &[]),
            "spec.name: Too long: may not be more than 50 bytes",
        ),
        (
            "ptucapacity-without-output",
            with(ptu_spec(), json!({"ptuCapacity": {"inputTpm": 1}}), &[]),
            "spec.ptuCapacity.outputTpm: Required value",
        ),
        (
            "rpmlimit-0",
            with(mu_spec(), json!({"rpmLimit": 0}), &[]),
            "spec.rpmLimit: Invalid value: 0: spec.rpmLimit in body should be greater than or \
             equal to 1",
        ),
        (
            "modelimportref-without-name",
            with(mu_spec(), json!({"modelImportRef": {}}), &[]),
            "spec.modelImportRef.name: Required value",
        ),
        (
            "observed-without-deployedmodel",
            json!({"managementPolicy": "Observe"}),
            "spec.deployedModel: Required value: managementPolicy Observe mirrors an existing \
             deployment and never deploys: set deployedModel to its name",
        ),
        (
            "deployedmodel-when-managed",
            with(mu_spec(), json!({"deployedModel": "qwen-plus-abc1"}), &[]),
            "spec.deployedModel: Invalid value: deployedModel names a deployment to observe: \
             set managementPolicy: Observe, or remove deployedModel to deploy",
        ),
    ];
    for (name, spec, expect) in refused {
        let name = format!("refused-{name}");
        match create_deployment(client, &deployment(&name, spec)).await {
            Ok(_) => t.failures.push(format!("deployment {name} was accepted")),
            Err(s) => {
                if judge_deployment_refusal(t, &name, &s, expect, &name) {
                    t.invalid_refused += 1;
                }
            }
        }
    }
}

async fn deployment_updates(client: &Client, t: &mut Tally) {
    let immutable = |field: &str, fix: &str| {
        format!(
            "spec.{field}: Invalid value: {field} is immutable: {fix}create a new \
             ModelDeployment"
        )
    };
    let model = "to deploy another model, ";
    // (case, original, update, expectation: None when the update is allowed)
    let cases: Vec<(&str, Value, Value, Option<String>)> = vec![
        (
            "import-ref-name",
            mu_spec(),
            with(mu_spec(), json!({"modelImportRef": {"name": "other"}}), &[]),
            Some(immutable("modelImportRef", model)),
        ),
        (
            "import-ref-to-model-name",
            mu_spec(),
            with(
                mu_spec(),
                json!({"modelName": "qwen3-8b"}),
                &["modelImportRef"],
            ),
            Some(immutable("modelImportRef", model)),
        ),
        (
            "model-name",
            ptu_spec(),
            with(ptu_spec(), json!({"modelName": "qwen3-8b"}), &[]),
            Some(immutable("modelName", model)),
        ),
        (
            "plan",
            json!({"modelName": "qwen3-8b", "plan": "cu", "capacity": 1}),
            json!({"modelName": "qwen3-8b", "plan": "lora", "capacity": 1}),
            Some(immutable(
                "plan",
                "Model Studio cannot change a deployment's plan; ",
            )),
        ),
        (
            "plan-removed",
            json!({"modelName": "qwen3-8b", "plan": "cu", "capacity": 1}),
            json!({"modelName": "qwen3-8b", "capacity": 1}),
            Some(immutable(
                "plan",
                "Model Studio cannot change a deployment's plan; ",
            )),
        ),
        (
            "deploy-spec",
            mu_spec(),
            with(mu_spec(), json!({"deploySpec": "MU2"}), &[]),
            Some(immutable("deploySpec", "")),
        ),
        (
            "ptu-capacity",
            ptu_spec(),
            with(
                ptu_spec(),
                json!({"ptuCapacity": {"inputTpm": 100000, "outputTpm": 40000}}),
                &[],
            ),
            Some(immutable("ptuCapacity", "")),
        ),
        (
            "name",
            mu_spec(),
            with(mu_spec(), json!({"name": "other"}), &[]),
            Some(immutable(
                "name",
                "Model Studio cannot rename a deployment; ",
            )),
        ),
        (
            "name-added",
            ptu_spec(),
            with(ptu_spec(), json!({"name": "chat"}), &[]),
            Some(immutable(
                "name",
                "Model Studio cannot rename a deployment; ",
            )),
        ),
        (
            "suffix",
            mu_spec(),
            with(mu_spec(), json!({"suffix": "v2"}), &[]),
            Some(immutable(
                "suffix",
                "it is part of the deployed model's name; ",
            )),
        ),
        (
            "suffix-removed",
            mu_spec(),
            with(mu_spec(), json!({}), &["suffix"]),
            Some(immutable(
                "suffix",
                "it is part of the deployed model's name; ",
            )),
        ),
        (
            "enable-thinking",
            mu_spec(),
            with(mu_spec(), json!({"enableThinking": true}), &[]),
            Some(immutable(
                "enableThinking",
                "Model Studio sets it only when it deploys; ",
            )),
        ),
        (
            "enable-thinking-removed",
            mu_spec(),
            with(mu_spec(), json!({}), &["enableThinking"]),
            Some(immutable(
                "enableThinking",
                "Model Studio sets it only when it deploys; ",
            )),
        ),
        (
            "max-context-length",
            mu_spec(),
            with(mu_spec(), json!({"maxContextLength": 8192}), &[]),
            Some(immutable(
                "maxContextLength",
                "Model Studio sets it only when it deploys; ",
            )),
        ),
        (
            "max-context-length-added",
            ptu_spec(),
            with(ptu_spec(), json!({"maxContextLength": 8192}), &[]),
            Some(immutable(
                "maxContextLength",
                "Model Studio sets it only when it deploys; ",
            )),
        ),
        (
            "capacity-scales",
            mu_spec(),
            with(mu_spec(), json!({"capacity": 4}), &[]),
            None,
        ),
        (
            "rpm-limit",
            mu_spec(),
            with(mu_spec(), json!({"rpmLimit": 120}), &[]),
            None,
        ),
        (
            "tpm-limit-added-and-rpm-removed",
            ptu_spec(),
            with(ptu_spec(), json!({"tpmLimit": 5000}), &["rpmLimit"]),
            None,
        ),
        (
            "deletion-policy-and-secret",
            mu_spec(),
            with(
                mu_spec(),
                json!({"deletionPolicy": "Orphan", "apiKeySecretRef": {"name": "other"}}),
                &[],
            ),
            None,
        ),
    ];
    for (case, original, update, expect) in cases {
        let name = format!("update-{case}");
        let created = match create_deployment(client, &deployment(&name, original)).await {
            Ok(c) => c,
            Err(s) => {
                t.failures
                    .push(format!("{name}: the original was refused: {}", s.message));
                continue;
            }
        };
        let mut body = deployment(&name, update.clone());
        body["metadata"]["resourceVersion"] = created["metadata"]["resourceVersion"].clone();
        let uri =
            format!("{DEPLOYMENTS}/{name}?fieldManager=kubectl-replace&fieldValidation=Strict");
        let result = write(client, http::Method::PUT, &uri, &body).await;
        let stored = client
            .request::<Value>(
                http::Request::get(format!("{DEPLOYMENTS}/{name}"))
                    .body(Vec::new())
                    .unwrap(),
            )
            .await
            .unwrap();
        match (expect, result) {
            (None, Ok(_)) if stored["spec"] == stored_form(&update) => t.allowed_accepted += 1,
            (None, Ok(_)) => t.failures.push(format!(
                "{name}: accepted, but stored {} instead of {}",
                stored["spec"],
                stored_form(&update)
            )),
            (None, Err(s)) => t.failures.push(format!(
                "{name}: an allowed update was refused: {} {}: {}",
                s.code, s.reason, s.message
            )),
            (Some(_), Ok(_)) => t
                .failures
                .push(format!("{name}: an immutable change was accepted")),
            (Some(expect), Err(s)) => {
                if stored["spec"] != created["spec"] {
                    t.failures.push(format!(
                        "{name}: refused, but the stored spec changed to {}",
                        stored["spec"]
                    ));
                } else if judge_deployment_refusal(t, &name, &s, &expect, &name) {
                    t.immutable_refused += 1;
                }
            }
        }
    }
}

/// The header cells of a `kubectl get` table: kubectl pads columns with at least 3 spaces, and a
/// column name may hold one ("READY CAPACITY").
fn header_cells(line: &str) -> Vec<String> {
    line.split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect()
}

/// What kubectl 1.37 shows: the printer columns (filled from a status written through the status
/// subresource), the `modelstudio` category with both kinds, the short name, and no other
/// resource of the server with the same short name.
fn deployment_kubectl_view(kubectl: &Kubectl, t: &mut Tally) {
    let mut fail = |what: String| t.failures.push(what);
    let status = json!({"status": {
        "modelName": "qwen3-32b-offline-20240101-abc1",
        "deployedModel": "qwen3-32b-offline-20240101-abc1-v1",
        "phase": "Running",
        "capacity": 2,
        "readyCapacity": 2,
        "observedGeneration": 1,
        "conditions": [{"type": "Ready", "status": "True", "reason": "Running",
                        "message": "serving", "lastTransitionTime": "2026-01-01T00:00:00Z"}],
    }});
    kubectl.run(&[
        "patch",
        "modeldeployment",
        "plan-mu",
        "--subresource=status",
        "--type=merge",
        "-p",
        &status.to_string(),
    ]);

    let out = kubectl.run(&["get", "modeldeployments", "plan-mu"]);
    let lines: Vec<&str> = out.lines().collect();
    let header = header_cells(lines[0]);
    let want = [
        "NAME",
        "MODEL",
        "PHASE",
        "CAPACITY",
        "READY CAPACITY",
        "READY",
        "AGE",
    ];
    if header != want {
        fail(format!(
            "kubectl get modeldeployments: header {header:?}, want {want:?}"
        ));
    }
    let row = table(&out).get(1).cloned().unwrap_or_default();
    let cells: Vec<&str> = row.iter().map(String::as_str).collect();
    if cells.get(..6)
        != Some(
            &[
                "plan-mu",
                "qwen3-32b-offline-20240101-abc1",
                "Running",
                "2",
                "2",
                "True",
            ][..],
        )
    {
        fail(format!("kubectl get modeldeployments: row {cells:?}"));
    }

    let wide = kubectl.run(&["get", "mdeploy", "plan-mu", "-o", "wide"]);
    if !header_cells(wide.lines().next().unwrap_or("")).contains(&"DEPLOYED MODEL".to_string())
        || !wide.contains("qwen3-32b-offline-20240101-abc1-v1")
    {
        fail(format!("kubectl get mdeploy -o wide:\n{wide}"));
    }

    let both = kubectl.run(&["get", "modelstudio"]);
    for text in [
        "modelimport.modelstudio.io/category-import",
        "modeldeployment.modelstudio.io/plan-mu",
        "modeldeployment.modelstudio.io/plan-ptu",
        "READY CAPACITY",
        "JOB",
    ] {
        if !both.contains(text) {
            fail(format!("kubectl get modelstudio lacks {text:?}:\n{both}"));
        }
    }

    let names = kubectl.run(&["get", "mdeploy", "-o", "name"]);
    if !names
        .lines()
        .any(|l| l == "modeldeployment.modelstudio.io/plan-lora")
    {
        fail(format!("kubectl get mdeploy -o name:\n{names}"));
    }

    // `mdeploy` names this resource alone among everything the server serves.
    let resources = kubectl.run(&["api-resources", "--no-headers"]);
    let users: Vec<&str> = resources
        .lines()
        .filter(|l| {
            let cells: Vec<&str> = l.split_whitespace().collect();
            cells.len() >= 5 && cells[1].split(',').any(|s| s == "mdeploy")
        })
        .collect();
    if users.len() != 1 || !users[0].starts_with("modeldeployments ") {
        fail(format!("short name mdeploy is used by {users:?}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_deployments_are_checked_by_their_schema_and_rules_and_shown_by_kubectl() {
    let started = Instant::now();
    let cluster = Cluster::start().await.expect("a Kubernetes API server");
    let client = cluster
        .client(NS)
        .await
        .expect("a client for the API server");
    install_crd(&client).await;
    modelstudio_testbed::install_crd(&client, Path::new(DEPLOYMENT_CRD))
        .await
        .expect("the ModelDeployment CRD is installed and Established");
    let mut t = Tally {
        invalid_refused: 0,
        immutable_refused: 0,
        allowed_accepted: 0,
        valid_accepted: 0,
        examples_accepted: 0,
        failures: vec![],
    };
    deployment_creates(&client, &mut t).await;
    deployment_updates(&client, &mut t).await;
    // A ModelImport too, for `kubectl get modelstudio`.
    let import = json!({
        "apiVersion": "modelstudio.io/v1alpha1",
        "kind": "ModelImport",
        "metadata": {"name": "category-import"},
        "spec": {"baseModel": "qwen3-32b", "weightType": "lora",
                 "storage": {"bucketName": "my-models", "objectKey": "models/a/"}},
    });
    create(&client, &import, "")
        .await
        .expect("a valid ModelImport");

    let dir = modelstudio_testbed::TempDir::new("deployment-admission");
    let kubeconfig = dir.0.join("kubeconfig");
    cluster.write_kubeconfig(&kubeconfig, NS).unwrap();
    // kubectl runs as a process: keep it off the runtime's workers.
    tokio::task::block_in_place(|| {
        let kubectl = Kubectl::new(kubeconfig, &dir.0);
        deployment_kubectl_view(&kubectl, &mut t);
    });
    drop(cluster);

    println!(
        "ModelDeployment admission: {} valid objects accepted, {} invalid refused, {} immutable \
         changes refused, {} allowed updates accepted ({:.1?})",
        t.valid_accepted,
        t.invalid_refused,
        t.immutable_refused,
        t.allowed_accepted,
        started.elapsed(),
    );
    assert!(
        t.failures.is_empty(),
        "{} failures:\n{}",
        t.failures.len(),
        t.failures.join("\n")
    );
    assert_eq!(t.valid_accepted, 8);
    assert_eq!(t.invalid_refused, 18);
    assert_eq!(t.immutable_refused, 15);
    assert_eq!(t.allowed_accepted, 4);
}
