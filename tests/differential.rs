//! Differential conformance: one scenario of API requests and kubectl workflows runs against the
//! real kube-apiserver 1.37 and against the embedded API server (crates/apiserver); every named
//! check's normalized answer must agree, or be listed as a known difference in
//! crates/apiserver/README.md (and a listed difference must still differ, so the list stays true).
//!
//! Run: `export MODELSTUDIO_TESTBED_BIN=$(scripts/build-testbed.sh | tail -n 1)`, then
//! `cargo test --locked --test differential -- --nocapture --test-threads 1`.

use http::{Method, Request};
use kube::Client;
use modelstudio_testbed::{self as testbed, install_crd, run_bounded, Cluster, ImportBuilder};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const CRD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/crds/modelimport.yaml");
const README: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/crates/apiserver/README.md");
const GROUP_VERSION: &str = "/apis/modelstudio.io/v1alpha1";
const NS: &str = "diff";
const FINALIZER: &str = "modelstudio.io/cleanup";
const MERGE: &str = "application/merge-patch+json";
const JSON_PATCH: &str = "application/json-patch+json";
const STRATEGIC: &str = "application/strategic-merge-patch+json";
const APPLY: &str = "application/apply-patch+yaml";
const TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io";
/// Bound of one HTTP request or streamed watch of the scenario.
const REQUEST_LIMIT: Duration = Duration::from_secs(20);
/// Bound of one kubectl run.
const KUBECTL_LIMIT: Duration = Duration::from_secs(40);

/// One API server under test, with its client and kubectl set-up.
struct Bed {
    name: &'static str,
    cluster: Cluster,
    client: Client,
    dir: PathBuf,
    kubeconfig: PathBuf,
    kubectl: PathBuf,
}

/// A raw HTTP answer.
struct Resp {
    code: u16,
    body: Value,
    warnings: Vec<String>,
}

/// A kubectl run.
struct Kubectl {
    exit: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Bed {
    async fn new(name: &'static str, cluster: Cluster) -> Bed {
        let dir =
            std::env::temp_dir().join(format!("msc-differential-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch folder");
        let kubeconfig = dir.join("kubeconfig");
        cluster
            .write_kubeconfig(&kubeconfig, NS)
            .expect("kubeconfig written");
        let client = cluster.client(NS).await.expect("admin client");
        let kubectl = testbed::bin_dir()
            .expect("the testbed binaries")
            .join("kubectl");
        Bed {
            name,
            cluster,
            client,
            dir,
            kubeconfig,
            kubectl,
        }
    }

    async fn req(&self, method: Method, path: &str, ctype: &str, body: Option<&Value>) -> Resp {
        self.req_accept(method, path, ctype, "application/json", body)
            .await
    }

    async fn req_accept(
        &self,
        method: Method,
        path: &str,
        ctype: &str,
        accept: &str,
        body: Option<&Value>,
    ) -> Resp {
        let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", ctype)
            .header("accept", accept)
            .body(kube::client::Body::from(bytes))
            .expect("a well-formed request");
        let answer = tokio::time::timeout(REQUEST_LIMIT, async {
            let resp = self.client.send(request).await?;
            let code = resp.status().as_u16();
            let warnings = resp
                .headers()
                .get_all("warning")
                .iter()
                .filter_map(|w| w.to_str().ok())
                .map(|w| w.to_string())
                .collect();
            let bytes = resp.into_body().collect_bytes().await?;
            Ok::<_, kube::Error>((code, warnings, bytes))
        })
        .await;
        match answer {
            Ok(Ok((code, warnings, bytes))) => {
                let text = String::from_utf8_lossy(&bytes).to_string();
                let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
                Resp {
                    code,
                    body,
                    warnings,
                }
            }
            Ok(Err(e)) => Resp {
                code: 0,
                body: json!(format!("<transport error: {e}>")),
                warnings: vec![],
            },
            Err(_) => Resp {
                code: 0,
                body: json!("<transport error: no answer in time>"),
                warnings: vec![],
            },
        }
    }

    async fn get(&self, path: &str) -> Resp {
        self.req(Method::GET, path, "application/json", None).await
    }

    async fn post(&self, path: &str, body: &Value) -> Resp {
        self.req(Method::POST, path, "application/json", Some(body))
            .await
    }

    async fn put(&self, path: &str, body: &Value) -> Resp {
        self.req(Method::PUT, path, "application/json", Some(body))
            .await
    }

    async fn patch(&self, path: &str, ctype: &str, body: &Value) -> Resp {
        self.req(Method::PATCH, path, ctype, Some(body)).await
    }

    async fn delete(&self, path: &str, body: Option<&Value>) -> Resp {
        self.req(Method::DELETE, path, "application/json", body)
            .await
    }

    /// The watch events a `watch=1` request streams until its `timeoutSeconds` ends it.
    async fn watch(&self, path_and_query: &str) -> (u16, Vec<Value>) {
        let r = self.get(path_and_query).await;
        let events = match &r.body {
            Value::String(text) => text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| serde_json::from_str(l).unwrap_or(json!(l)))
                .collect(),
            one => vec![one.clone()],
        };
        (r.code, events)
    }

    async fn kubectl(&self, args: &[&str]) -> Kubectl {
        self.kubectl_env(args, &[]).await
    }

    async fn kubectl_env(&self, args: &[&str], env: &[(&str, &str)]) -> Kubectl {
        let mut cmd = Command::new(&self.kubectl);
        cmd.arg(format!("--kubeconfig={}", self.kubeconfig.display()))
            .arg("--request-timeout=20s")
            .args(args)
            .env("KUBECACHEDIR", self.dir.join("kube-cache"))
            .env_remove("KUBECONFIG");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = tokio::task::spawn_blocking(move || run_bounded(cmd, KUBECTL_LIMIT))
            .await
            .expect("kubectl ran");
        Kubectl {
            exit: out.status.and_then(|s| s.code()),
            stdout: out.stdout,
            stderr: out.stderr,
        }
    }

    fn file(&self, name: &str, text: &str) -> String {
        let path = self.dir.join(name);
        std::fs::write(&path, text).expect("scratch file");
        path.display().to_string()
    }

    /// A kubectl run as a check's answer: exit code and normalized output.
    fn k(&self, o: &Kubectl) -> Value {
        json!({"exit": o.exit, "stdout": self.text(&o.stdout), "stderr": self.text(&o.stderr)})
    }

    /// Output text without what legitimately differs: the server address, ages, column padding,
    /// and client-go's own log lines (a watch cut by kubectl's `--timeout` logs one or not,
    /// depending on timing).
    fn text(&self, s: &str) -> String {
        let base = self.cluster.base_url();
        s.replace(&base, "<server>")
            .replace(&self.dir.display().to_string(), "<dir>")
            .lines()
            .filter(|l| !is_klog_line(l))
            .map(|l| {
                l.split_whitespace()
                    .map(|w| if is_age(w) { "<age>" } else { w })
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// A klog line of client-go's (`E1206 05:02:05.655957 21257 reflector.go:227] ...`).
fn is_klog_line(l: &str) -> bool {
    let b = l.as_bytes();
    b.len() > 6
        && matches!(b[0], b'I' | b'W' | b'E' | b'F')
        && b[1..5].iter().all(u8::is_ascii_digit)
        && b[5] == b' '
        && b[6].is_ascii_digit()
}

#[test]
fn klog_lines_are_told_from_kubectl_output() {
    assert!(is_klog_line(
        "E1206 05:02:05.655957 21257 reflector.go:227] \"Failed to watch\""
    ));
    assert!(!is_klog_line("error: timed out waiting for the condition"));
    assert!(!is_klog_line(
        "Error from server (NotFound): modelimports \"x\" not found"
    ));
}

/// `5s`, `2m3s`, `10m`: a kubectl age column.
fn is_age(w: &str) -> bool {
    let mut seen_unit = false;
    let mut digits = 0;
    for c in w.chars() {
        if c.is_ascii_digit() {
            digits += 1;
        } else if "smhdy".contains(c) && digits > 0 {
            digits = 0;
            seen_unit = true;
        } else {
            return false;
        }
    }
    seen_unit && digits == 0
}

/// Runs of digits become `N` (revision numbers inside messages).
fn mask_digits(s: &str) -> String {
    let mut out = String::new();
    let mut last_digit = false;
    for c in s.chars() {
        if c.is_ascii_digit() {
            if !last_digit {
                out.push('N');
            }
            last_digit = true;
        } else {
            out.push(c);
            last_digit = false;
        }
    }
    out
}

/// A value without what legitimately differs between two servers: uids, timestamps,
/// resourceVersions' values, continue tokens.
fn norm(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    let keep_shape = |tag: &str| {
                        if v.as_str().is_some_and(|s| !s.is_empty()) {
                            json!(tag)
                        } else {
                            v.clone()
                        }
                    };
                    let v = match k.as_str() {
                        "uid" => keep_shape("<uid>"),
                        "resourceVersion" => keep_shape("<rv>"),
                        "continue" => keep_shape("<continue>"),
                        "creationTimestamp" | "deletionTimestamp" | "time"
                        | "lastTransitionTime" | "eventTime" | "renewTime" | "acquireTime"
                        | "firstTimestamp" | "lastTimestamp" => keep_shape("<time>"),
                        _ => norm(v),
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(norm).collect()),
        _ => v.clone(),
    }
}

/// What a refusal says: HTTP code, reason, details and causes (type and field path).
fn refusal(r: &Resp) -> Value {
    let b = &r.body;
    let mut causes: Vec<Value> = b["details"]["causes"]
        .as_array()
        .map(|c| {
            c.iter()
                .map(|c| json!({"reason": c["reason"], "field": c["field"]}))
                .collect()
        })
        .unwrap_or_default();
    causes.sort_by_key(|c| c.to_string());
    json!({
        "code": r.code, "kind": b["kind"], "status": b["status"], "reason": b["reason"],
        "details": {"name": b["details"]["name"], "group": b["details"]["group"],
                    "kind": b["details"]["kind"]},
        "causes": causes,
    })
}

/// The message of a refusal, and its causes' messages.
fn messages(r: &Resp) -> Value {
    let mut causes: Vec<String> = r.body["details"]["causes"]
        .as_array()
        .map(|c| {
            c.iter()
                .map(|c| c["message"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default();
    causes.sort();
    let message = r.body["message"].as_str().map(error_list_in_order);
    json!({"message": message, "causes": causes})
}

/// A message listing several errors (`... is invalid: [a, b]`) with its errors sorted: the real
/// kube-apiserver's order between fields' schema errors varies from run to run.
fn error_list_in_order(message: &str) -> String {
    let Some((head, list)) = message.split_once(" is invalid: [") else {
        return message.to_string();
    };
    let Some(list) = list.strip_suffix(']') else {
        return message.to_string();
    };
    // An error starts with its field path; ", " inside an error (a list of values) does not.
    let mut errors: Vec<String> = vec![];
    for part in list.split(", ") {
        let starts_error = ["spec", "metadata", "status", "<nil>"]
            .iter()
            .any(|p| part.starts_with(p) && part.contains(": "));
        match errors.last_mut() {
            Some(last) if !starts_error => {
                last.push_str(", ");
                last.push_str(part);
            }
            _ => errors.push(part.to_string()),
        }
    }
    errors.sort();
    format!("{head} is invalid: [{}]", errors.join(", "))
}

fn mi_path(ns: &str) -> String {
    format!("{GROUP_VERSION}/namespaces/{ns}/modelimports")
}

fn mi(ns: &str, name: &str) -> String {
    format!("{}/{name}", mi_path(ns))
}

fn names(list: &Value) -> Vec<String> {
    let mut n: Vec<String> = list["items"]
        .as_array()
        .map(|i| {
            i.iter()
                .filter_map(|o| o["metadata"]["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    n.sort();
    n
}

/// Manager, operation and subresource of each managedFields entry, sorted.
fn managers(obj: &Value) -> Value {
    let mut m: Vec<String> = obj["metadata"]["managedFields"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| {
                    format!(
                        "{}/{}/{}",
                        e["manager"].as_str().unwrap_or("?"),
                        e["operation"].as_str().unwrap_or("?"),
                        e["subresource"].as_str().unwrap_or("")
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    m.sort();
    json!(m)
}

fn without_managed_fields(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(m) = o["metadata"].as_object_mut() {
        m.remove("managedFields");
    }
    norm(&o)
}

fn event_view(events: &[Value]) -> Value {
    events
        .iter()
        .map(|e| {
            let o = &e["object"];
            match e["type"].as_str() {
                Some("ERROR") => json!({"type": "ERROR", "code": o["code"], "reason": o["reason"],
                    "message": mask_digits(o["message"].as_str().unwrap_or(""))}),
                Some("BOOKMARK") => json!({"type": "BOOKMARK", "kind": o["kind"],
                    "apiVersion": o["apiVersion"],
                    "annotations": o["metadata"]["annotations"],
                    "hasResourceVersion": o["metadata"]["resourceVersion"].as_str().is_some_and(|s| !s.is_empty())}),
                t => json!({"type": t, "name": o["metadata"]["name"],
                    "labels": o["metadata"]["labels"]}),
            }
        })
        .collect()
}

/// The scenario's answers, in order, by check name.
#[derive(Default)]
struct Answers(Vec<(String, Value)>);

impl Answers {
    fn put(&mut self, name: &str, v: Value) {
        assert!(
            !self.0.iter().any(|(n, _)| n == name),
            "check {name} answered twice"
        );
        self.0.push((name.to_string(), v));
    }
}

fn import(ns: &str, name: &str) -> Value {
    ImportBuilder::new(name).namespace(ns).json()
}

/// Polls `probe` every 200 ms until it is true or `limit` passes; says whether it held.
async fn eventually<F, Fut>(limit: Duration, mut probe: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    loop {
        if probe().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn scenario(bed: &Bed) -> Answers {
    let mut a = Answers::default();
    crd_and_discovery(bed, &mut a).await;
    create_and_validate(bed, &mut a).await;
    status_generation_conflicts(bed, &mut a).await;
    finalizers_and_delete(bed, &mut a).await;
    patches_and_apply(bed, &mut a).await;
    selectors_and_lists(bed, &mut a).await;
    watches(bed, &mut a).await;
    events_and_leases(bed, &mut a).await;
    namespaces(bed, &mut a).await;
    tables_and_openapi(bed, &mut a).await;
    kubectl_workflows(bed, &mut a).await;
    kubectl_backup_list(bed, &mut a).await;
    a
}

async fn crd_and_discovery(bed: &Bed, a: &mut Answers) {
    let installed = install_crd(&bed.client, Path::new(CRD)).await;
    a.put(
        "crd.install_established",
        json!(installed.map_err(|e| e.to_string())),
    );
    let crd = bed
        .get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/modelimports.modelstudio.io")
        .await;
    let mut conditions: Vec<String> = crd.body["status"]["conditions"]
        .as_array()
        .map(|c| {
            c.iter()
                .map(|c| format!("{}={} {}", c["type"], c["status"], c["reason"]))
                .collect()
        })
        .unwrap_or_default();
    conditions.sort();
    a.put(
        "crd.status",
        json!({"code": crd.code, "conditions": conditions,
               "acceptedNames": crd.body["status"]["acceptedNames"],
               "storedVersions": crd.body["status"]["storedVersions"]}),
    );
    for ns in [
        NS,
        "diff-sel",
        "diff-watch",
        "diff-term",
        "diff-kc",
        "diff-backup",
    ] {
        let r = bed
            .post("/api/v1/namespaces", &json!({"metadata": {"name": ns}}))
            .await;
        if ns == NS {
            a.put(
                "namespace.create",
                json!({"code": r.code, "phase": r.body["status"]["phase"],
                       "spec": r.body["spec"], "labels": r.body["metadata"]["labels"]}),
            );
        }
    }
    let groups = bed.get("/apis").await;
    let group = groups.body["groups"]
        .as_array()
        .and_then(|g| g.iter().find(|g| g["name"] == "modelstudio.io"))
        .cloned()
        .unwrap_or(Value::Null);
    a.put(
        "discovery.group",
        json!({"code": groups.code, "group": group}),
    );
    let res = bed.get(GROUP_VERSION).await;
    let resources: Vec<Value> = res.body["resources"]
        .as_array()
        .map(|r| {
            r.iter()
                .map(|r| {
                    let mut verbs: Vec<String> = r["verbs"]
                        .as_array()
                        .map(|v| {
                            v.iter()
                                .filter_map(|v| v.as_str().map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_default();
                    verbs.sort();
                    json!({"name": r["name"], "singularName": r["singularName"],
                           "namespaced": r["namespaced"], "kind": r["kind"], "verbs": verbs,
                           "shortNames": r["shortNames"], "categories": r["categories"]})
                })
                .collect()
        })
        .unwrap_or_default();
    a.put(
        "discovery.resources",
        json!({"code": res.code, "kind": res.body["kind"], "groupVersion": res.body["groupVersion"],
               "resources": resources}),
    );
    // Aggregated discovery, what kubectl 1.37 asks for first.
    let agg = bed
        .req_accept(
            Method::GET,
            "/apis",
            "application/json",
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json",
            None,
        )
        .await;
    let group = agg.body["items"]
        .as_array()
        .and_then(|g| g.iter().find(|g| g["metadata"]["name"] == "modelstudio.io"))
        .cloned()
        .unwrap_or(Value::Null);
    let version = &group["versions"][0];
    let resources: Vec<Value> = version["resources"]
        .as_array()
        .map(|r| {
            r.iter()
                .map(|r| {
                    let mut verbs: Vec<String> = r["verbs"]
                        .as_array()
                        .map(|v| {
                            v.iter()
                                .filter_map(|v| v.as_str().map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_default();
                    verbs.sort();
                    json!({"resource": r["resource"], "responseKind": r["responseKind"],
                           "scope": r["scope"], "singularResource": r["singularResource"],
                           "verbs": verbs, "shortNames": r["shortNames"],
                           "categories": r["categories"], "subresources": r["subresources"]})
                })
                .collect()
        })
        .unwrap_or_default();
    a.put(
        "discovery.aggregated",
        json!({"code": agg.code, "kind": agg.body["kind"], "apiVersion": agg.body["apiVersion"],
               "version": version["version"], "freshness": version["freshness"],
               "resources": resources}),
    );
}

async fn create_and_validate(bed: &Bed, a: &mut Answers) {
    let mut alpha = import(NS, "alpha");
    alpha["metadata"]["labels"] = json!({"tier": "a"});
    alpha["spec"]["apiKeySecretRef"] = json!({"name": "creds"});
    let r = bed
        .post(&format!("{}?fieldManager=diff", mi_path(NS)), &alpha)
        .await;
    let mut keys: Vec<String> = r.body["metadata"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    keys.sort();
    a.put(
        "create.response",
        json!({"code": r.code, "kind": r.body["kind"], "apiVersion": r.body["apiVersion"],
               "metadataKeys": keys, "generation": r.body["metadata"]["generation"],
               "status": r.body["status"]}),
    );
    a.put("create.defaults", r.body["spec"].clone());
    a.put("create.managed_fields", managers(&r.body));
    let got = bed.get(&mi(NS, "alpha")).await;
    a.put(
        "get.object",
        json!({"code": got.code, "object": without_managed_fields(&got.body)}),
    );
    let mut entry = got.body["metadata"]["managedFields"][0].clone();
    if entry.is_object() {
        entry["time"] = json!("<time>");
    }
    a.put("get.managed_fields_entry", entry);

    // Unknown fields: pruned with a warning by default, refused when Strict.
    let mut extra = import(NS, "extra");
    extra["spec"]["colour"] = json!("blue");
    extra["spec"]["storage"]["region"] = json!("eu");
    extra["topLevel"] = json!(1);
    let r = bed.post(&mi_path(NS), &extra).await;
    let mut warnings = r.warnings.clone();
    warnings.sort();
    a.put(
        "create.prune_unknown",
        json!({"code": r.code, "spec": r.body["spec"], "topLevel": r.body["topLevel"],
               "warnings": warnings}),
    );
    let mut strict = import(NS, "strict");
    strict["spec"]["colour"] = json!("blue");
    let r = bed
        .post(&format!("{}?fieldValidation=Strict", mi_path(NS)), &strict)
        .await;
    a.put(
        "create.strict_unknown",
        json!({"refusal": refusal(&r), "message": r.body["message"]}),
    );
    let r = bed.post(&mi_path(NS), &alpha).await;
    a.put(
        "create.already_exists",
        json!({"refusal": refusal(&r), "message": r.body["message"]}),
    );
    let r = bed
        .post(&format!("{}?dryRun=All", mi_path(NS)), &import(NS, "dry"))
        .await;
    let after = bed.get(&mi(NS, "dry")).await;
    a.put(
        "create.dry_run",
        json!({"code": r.code, "name": r.body["metadata"]["name"], "spec": r.body["spec"],
               "afterwards": after.code}),
    );
    let mut gen = import(NS, "");
    gen["metadata"] = json!({"generateName": "gen-"});
    let r = bed.post(&mi_path(NS), &gen).await;
    let name = r.body["metadata"]["name"].as_str().unwrap_or("");
    a.put(
        "create.generate_name",
        json!({"code": r.code, "prefix": name.starts_with("gen-"), "length": name.len()}),
    );
    let r = bed.get(&mi(NS, "missing")).await;
    a.put(
        "get.not_found",
        json!({"refusal": refusal(&r), "message": r.body["message"]}),
    );
    let r = bed.post(&mi_path("nowhere"), &import("nowhere", "x")).await;
    a.put(
        "create.namespace_missing",
        json!({"refusal": refusal(&r), "message": r.body["message"]}),
    );
    let r = bed.post(&mi_path(NS), &import("elsewhere", "y")).await;
    a.put(
        "create.namespace_mismatch",
        json!({"refusal": refusal(&r), "message": r.body["message"]}),
    );

    // Validation refusals.
    let mut cases: Vec<(&str, Value)> = Vec::new();
    let mut v = import(NS, "bad-required");
    v["spec"] = json!({"baseModel": "qwen3-32b"});
    cases.push(("validate.required", v));
    let mut v = import(NS, "bad-nospec");
    v.as_object_mut().unwrap().remove("spec");
    cases.push(("validate.no_spec", v));
    cases.push((
        "validate.pattern",
        ImportBuilder::new("bad-pattern")
            .namespace(NS)
            .spec("baseModel", json!("Qwen 3!"))
            .json(),
    ));
    cases.push((
        "validate.enum",
        ImportBuilder::new("bad-enum")
            .namespace(NS)
            .spec("weightType", json!("half"))
            .json(),
    ));
    cases.push((
        "validate.max_length",
        ImportBuilder::new("bad-length")
            .namespace(NS)
            .spec("displayName", json!("d".repeat(51)))
            .json(),
    ));
    cases.push((
        "validate.wrong_type",
        ImportBuilder::new("bad-type")
            .namespace(NS)
            .spec("weightType", json!(5))
            .json(),
    ));
    cases.push((
        "validate.several",
        ImportBuilder::new("bad-several")
            .namespace(NS)
            .spec("weightType", json!("half"))
            .spec("storage", json!({"bucketName": "B", "objectKey": "/root"}))
            .json(),
    ));
    cases.push(("validate.bad_name", import(NS, "Bad_Name")));
    let mut all_messages = BTreeMap::new();
    for (name, body) in cases {
        let r = bed.post(&mi_path(NS), &body).await;
        a.put(name, refusal(&r));
        all_messages.insert(name.to_string(), messages(&r));
    }
    // CEL transition rule: the immutable baseModel.
    let mut cur = bed.get(&mi(NS, "alpha")).await.body;
    cur["spec"]["baseModel"] = json!("qwen3-8b");
    let r = bed.put(&mi(NS, "alpha"), &cur).await;
    a.put("validate.cel_immutable", refusal(&r));
    all_messages.insert("validate.cel_immutable".into(), messages(&r));
    let r = bed
        .patch(
            &mi(NS, "alpha"),
            MERGE,
            &json!({"spec": {"jobId": "job-1"}}),
        )
        .await;
    let r2 = bed
        .patch(&mi(NS, "alpha"), MERGE, &json!({"spec": {"jobId": null}}))
        .await;
    a.put(
        "validate.cel_set_once",
        json!({"set": r.code, "remove": refusal(&r2)}),
    );
    all_messages.insert("validate.cel_set_once".into(), messages(&r2));
    a.put("validate.messages", json!(all_messages));
}

async fn status_generation_conflicts(bed: &Bed, a: &mut Answers) {
    let path = mi(NS, "gamma");
    let created = bed.post(&mi_path(NS), &import(NS, "gamma")).await;
    let rv0 = created.body["metadata"]["resourceVersion"].clone();
    // The main resource ignores status; labels still apply.
    let r = bed
        .patch(
            &path,
            MERGE,
            &json!({"metadata": {"labels": {"seen": "yes"}}, "status": {"phase": "Running"}}),
        )
        .await;
    a.put(
        "status.ignored_on_main",
        json!({"code": r.code, "status": r.body["status"], "labels": r.body["metadata"]["labels"],
               "generation": r.body["metadata"]["generation"]}),
    );
    // /status ignores spec and metadata.labels, keeps status.
    let r = bed
        .patch(
            &format!("{path}/status"),
            MERGE,
            &json!({"metadata": {"labels": {"via": "status"}},
                    "spec": {"deletionPolicy": "Orphan"},
                    "status": {"phase": "Running", "observedGeneration": 1}}),
        )
        .await;
    a.put(
        "status.subresource_write",
        json!({"code": r.code, "deletionPolicy": r.body["spec"]["deletionPolicy"],
               "labels": r.body["metadata"]["labels"], "status": r.body["status"],
               "generation": r.body["metadata"]["generation"]}),
    );
    let r = bed
        .patch(
            &format!("{path}/status"),
            MERGE,
            &json!({"status": {"phase": "Bogus"}}),
        )
        .await;
    a.put(
        "status.validation",
        json!({"refusal": refusal(&r), "messages": messages(&r)}),
    );
    let r = bed.get(&format!("{path}/status")).await;
    a.put(
        "status.get",
        json!({"code": r.code, "kind": r.body["kind"], "status": r.body["status"],
               "hasSpec": r.body["spec"].is_object()}),
    );
    // A PUT of the main resource without status keeps the status.
    let mut cur = bed.get(&path).await.body;
    cur.as_object_mut().unwrap().remove("status");
    cur["metadata"]["labels"]["put"] = json!("yes");
    let r = bed.put(&path, &cur).await;
    a.put(
        "status.put_main_keeps_status",
        json!({"code": r.code, "status": r.body["status"]}),
    );

    // Generation: spec changes only.
    let before = bed.get(&path).await.body;
    let r = bed
        .patch(&path, MERGE, &json!({"spec": {"deletionPolicy": "Orphan"}}))
        .await;
    let rv1 = r.body["metadata"]["resourceVersion"].clone();
    a.put(
        "generation.spec_change",
        json!({"code": r.code, "before": before["metadata"]["generation"],
               "after": r.body["metadata"]["generation"]}),
    );
    let r = bed
        .patch(&path, MERGE, &json!({"spec": {"deletionPolicy": "Orphan"}}))
        .await;
    a.put(
        "generation.noop_patch",
        json!({"code": r.code, "generation": r.body["metadata"]["generation"],
               "resourceVersionChanged": r.body["metadata"]["resourceVersion"] != rv1}),
    );
    let r = bed
        .patch(
            &path,
            MERGE,
            &json!({"metadata": {"annotations": {"note": "x"}, "labels": {"more": "y"}}}),
        )
        .await;
    a.put(
        "generation.metadata_change",
        json!({"code": r.code, "generation": r.body["metadata"]["generation"],
               "resourceVersionChanged": r.body["metadata"]["resourceVersion"] != rv1}),
    );
    let r = bed
        .patch(
            &format!("{path}/status"),
            MERGE,
            &json!({"status": {"phase": "Succeeded", "observedGeneration": 2}}),
        )
        .await;
    a.put(
        "generation.status_change",
        json!({"code": r.code, "generation": r.body["metadata"]["generation"],
               "observedGeneration": r.body["status"]["observedGeneration"]}),
    );

    // resourceVersion conflicts.
    let mut stale = created.body.clone();
    stale["metadata"]["labels"] = json!({"stale": "yes"});
    let r = bed.put(&path, &stale).await;
    a.put(
        "conflict.stale_update",
        json!({"refusal": refusal(&r), "message": r.body["message"]}),
    );
    let r = bed
        .patch(
            &path,
            MERGE,
            &json!({"metadata": {"resourceVersion": rv0, "labels": {"stale": "yes"}}}),
        )
        .await;
    a.put(
        "conflict.stale_patch",
        json!({"refusal": refusal(&r), "message": r.body["message"]}),
    );
    let mut no_rv = bed.get(&path).await.body;
    no_rv["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("resourceVersion");
    no_rv["metadata"]["labels"]["norv"] = json!("yes");
    let r = bed.put(&path, &no_rv).await;
    a.put(
        "update.without_resource_version",
        json!({"refusal": refusal(&r), "messages": messages(&r)}),
    );
    let mut renamed = bed.get(&path).await.body;
    renamed["metadata"]["name"] = json!("other");
    let r = bed.put(&path, &renamed).await;
    a.put(
        "update.name_mismatch",
        json!({"refusal": refusal(&r), "message": r.body["message"]}),
    );
    let r = bed.put(&mi(NS, "absent"), &import(NS, "absent")).await;
    a.put("update.missing_object", refusal(&r));
}

async fn finalizers_and_delete(bed: &Bed, a: &mut Answers) {
    let path = mi(NS, "fin");
    let mut obj = import(NS, "fin");
    obj["metadata"]["finalizers"] = json!([FINALIZER]);
    bed.post(&mi_path(NS), &obj).await;
    let r = bed.delete(&path, None).await;
    a.put(
        "finalizer.delete_keeps_object",
        json!({"code": r.code, "kind": r.body["kind"],
               "deleting": r.body["metadata"]["deletionTimestamp"].is_string(),
               "deletionGracePeriodSeconds": r.body["metadata"]["deletionGracePeriodSeconds"],
               "finalizers": r.body["metadata"]["finalizers"],
               "generation": r.body["metadata"]["generation"]}),
    );
    let got = bed.get(&path).await;
    let ts = got.body["metadata"]["deletionTimestamp"].clone();
    a.put(
        "finalizer.get_while_deleting",
        json!({"code": got.code, "deleting": ts.is_string()}),
    );
    let r = bed.delete(&path, None).await;
    a.put(
        "finalizer.delete_again",
        json!({"code": r.code, "sameTimestamp": r.body["metadata"]["deletionTimestamp"] == ts}),
    );
    let r = bed
        .patch(
            &path,
            MERGE,
            &json!({"metadata": {"finalizers": [FINALIZER, "modelstudio.io/other"]}}),
        )
        .await;
    a.put(
        "finalizer.add_while_deleting",
        json!({"refusal": refusal(&r), "messages": messages(&r)}),
    );
    let r = bed
        .patch(
            &path,
            MERGE,
            &json!({"metadata": {"labels": {"late": "yes"}}}),
        )
        .await;
    a.put(
        "finalizer.update_while_deleting",
        json!({"code": r.code, "labels": r.body["metadata"]["labels"]}),
    );
    let r = bed
        .patch(
            &path,
            JSON_PATCH,
            &json!([{"op": "test", "path": "/metadata/finalizers/0", "value": FINALIZER},
                    {"op": "remove", "path": "/metadata/finalizers"}]),
        )
        .await;
    let after = bed.get(&path).await;
    a.put(
        "finalizer.remove_deletes",
        json!({"code": r.code, "finalizers": r.body["metadata"]["finalizers"],
               "afterwards": after.code}),
    );

    let plain = mi(NS, "plain");
    bed.post(&mi_path(NS), &import(NS, "plain")).await;
    let r = bed.delete(&plain, None).await;
    let after = bed.get(&plain).await;
    a.put(
        "delete.without_finalizer",
        json!({"code": r.code, "body": norm(&r.body), "afterwards": after.code}),
    );
    let r = bed.delete(&plain, None).await;
    a.put("delete.missing", refusal(&r));
    bed.post(&mi_path(NS), &import(NS, "guarded")).await;
    let r = bed
        .delete(
            &mi(NS, "guarded"),
            Some(&json!({"kind": "DeleteOptions", "apiVersion": "v1",
                         "preconditions": {"uid": "00000000-0000-0000-0000-000000000000"}})),
        )
        .await;
    a.put(
        "delete.precondition_uid",
        json!({"refusal": refusal(&r), "message": mask_uids(r.body["message"].as_str().unwrap_or(""))}),
    );
    let r = bed
        .delete(
            &mi(NS, "guarded"),
            Some(&json!({"kind": "DeleteOptions", "apiVersion": "v1",
                         "preconditions": {"resourceVersion": "1"}})),
        )
        .await;
    a.put(
        "delete.precondition_rv",
        json!({"refusal": refusal(&r), "message": mask_digits(r.body["message"].as_str().unwrap_or(""))}),
    );
    for n in ["coll-1", "coll-2"] {
        let mut o = import(NS, n);
        o["metadata"]["labels"] = json!({"batch": "coll"});
        bed.post(&mi_path(NS), &o).await;
    }
    let r = bed
        .delete(&format!("{}?labelSelector=batch%3Dcoll", mi_path(NS)), None)
        .await;
    let left = bed
        .get(&format!("{}?labelSelector=batch%3Dcoll", mi_path(NS)))
        .await;
    a.put(
        "delete.collection",
        json!({"code": r.code, "kind": r.body["kind"], "deleted": names(&r.body),
               "left": names(&left.body)}),
    );
}

/// A uid inside a message becomes `<uid>`.
fn mask_uids(s: &str) -> String {
    s.split(' ')
        .map(|w| {
            let core = w.trim_matches(['(', ')', ',', '.']);
            if core.len() == 36 && core.chars().filter(|c| *c == '-').count() == 4 {
                w.replace(core, "<uid>")
            } else {
                w.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

async fn patches_and_apply(bed: &Bed, a: &mut Answers) {
    let path = mi(NS, "delta");
    let mut obj = import(NS, "delta");
    obj["metadata"]["labels"] = json!({"a": "1", "b": "2"});
    bed.post(&mi_path(NS), &obj).await;
    let r = bed
        .patch(
            &path,
            MERGE,
            &json!({"metadata": {"labels": {"a": null, "c": "3"}}}),
        )
        .await;
    a.put(
        "patch.merge",
        json!({"code": r.code, "labels": r.body["metadata"]["labels"]}),
    );
    let r = bed
        .patch(
            &path,
            JSON_PATCH,
            &json!([{"op": "add", "path": "/metadata/labels/d", "value": "4"},
                    {"op": "replace", "path": "/spec/deletionPolicy", "value": "Orphan"},
                    {"op": "remove", "path": "/metadata/labels/b"}]),
        )
        .await;
    a.put(
        "patch.json",
        json!({"code": r.code, "labels": r.body["metadata"]["labels"],
               "deletionPolicy": r.body["spec"]["deletionPolicy"],
               "generation": r.body["metadata"]["generation"]}),
    );
    let r = bed
        .patch(
            &path,
            JSON_PATCH,
            &json!([{"op": "test", "path": "/spec/weightType", "value": "full"}]),
        )
        .await;
    a.put(
        "patch.json_test_fails",
        json!({"refusal": refusal(&r), "message": r.body["message"]}),
    );
    let r = bed
        .patch(
            &path,
            JSON_PATCH,
            &json!([{"op": "remove", "path": "/metadata/labels/zzz"}]),
        )
        .await;
    a.put(
        "patch.json_missing_path",
        json!({"refusal": refusal(&r), "message": r.body["message"]}),
    );
    let r = bed
        .patch(
            &path,
            STRATEGIC,
            &json!({"metadata": {"labels": {"e": "5"}}}),
        )
        .await;
    a.put(
        "patch.strategic_on_custom_resource",
        json!({"refusal": refusal(&r), "message": r.body["message"]}),
    );
    let r = bed
        .patch(
            &mi(NS, "nobody"),
            MERGE,
            &json!({"metadata": {"labels": {"e": "5"}}}),
        )
        .await;
    a.put("patch.not_found", refusal(&r));
    let r = bed
        .patch(&path, MERGE, &json!({"spec": {"weightType": "half"}}))
        .await;
    a.put("patch.invalid_result", refusal(&r));

    // Server-side apply: ownership, conflicts, force, removal of owned fields.
    let ssa = mi(NS, "ssa");
    let mut applied = ImportBuilder::new("ssa")
        .namespace(NS)
        .spec("deletionPolicy", json!("Delete"))
        .spec("displayName", json!("first"))
        .json();
    applied["metadata"]["labels"] = json!({"owner": "mgr-a"});
    let r = bed
        .patch(&format!("{ssa}?fieldManager=mgr-a"), APPLY, &applied)
        .await;
    a.put(
        "apply.create",
        json!({"code": r.code, "spec": r.body["spec"], "managers": managers(&r.body)}),
    );
    let fields = r.body["metadata"]["managedFields"]
        .as_array()
        .and_then(|m| m.iter().find(|e| e["manager"] == "mgr-a"))
        .map(|e| e["fieldsV1"].clone())
        .unwrap_or(Value::Null);
    a.put("apply.fields_owned", fields);
    let r = bed.patch(&ssa, APPLY, &applied).await;
    a.put(
        "apply.without_field_manager",
        json!({"refusal": refusal(&r), "message": r.body["message"]}),
    );
    let other = json!({"apiVersion": "modelstudio.io/v1alpha1", "kind": "ModelImport",
                       "metadata": {"name": "ssa", "namespace": NS},
                       "spec": {"deletionPolicy": "Orphan"}});
    let r = bed
        .patch(&format!("{ssa}?fieldManager=mgr-b"), APPLY, &other)
        .await;
    a.put(
        "apply.conflict",
        json!({"refusal": refusal(&r), "messages": messages(&r)}),
    );
    let r = bed
        .patch(
            &format!("{ssa}?fieldManager=mgr-b&force=true"),
            APPLY,
            &other,
        )
        .await;
    a.put(
        "apply.force",
        json!({"code": r.code, "deletionPolicy": r.body["spec"]["deletionPolicy"],
               "managers": managers(&r.body)}),
    );
    // A manager that applies again without a field it owned alone removes that field.
    let drop_path = mi(NS, "ssa-drop");
    let mut first = import(NS, "ssa-drop");
    first["metadata"]["labels"] = json!({"owned": "yes", "kept": "yes"});
    bed.patch(&format!("{drop_path}?fieldManager=mgr-a"), APPLY, &first)
        .await;
    let mut second = import(NS, "ssa-drop");
    second["metadata"]["labels"] = json!({"kept": "yes"});
    let r = bed
        .patch(&format!("{drop_path}?fieldManager=mgr-a"), APPLY, &second)
        .await;
    a.put(
        "apply.drops_released_field",
        json!({"code": r.code, "labels": r.body["metadata"]["labels"]}),
    );
    let r = bed
        .patch(
            &format!("{ssa}/status?fieldManager=mgr-status"),
            APPLY,
            &json!({"apiVersion": "modelstudio.io/v1alpha1", "kind": "ModelImport",
                    "metadata": {"name": "ssa", "namespace": NS},
                    "status": {"phase": "Running"}}),
        )
        .await;
    a.put(
        "apply.status",
        json!({"code": r.code, "status": r.body["status"], "managers": managers(&r.body)}),
    );
    let r = bed
        .patch(
            &format!("{ssa}?fieldManager=mgr-update"),
            MERGE,
            &json!({"metadata": {"labels": {"patched": "yes"}}}),
        )
        .await;
    a.put("apply.update_manager_recorded", managers(&r.body));
    let r = bed
        .patch(
            &format!("{}?fieldManager=mgr-a", mi(NS, "ssa-invalid")),
            APPLY,
            &ImportBuilder::new("ssa-invalid")
                .namespace(NS)
                .spec("weightType", json!("half"))
                .json(),
        )
        .await;
    a.put("apply.invalid", refusal(&r));
}

async fn selectors_and_lists(bed: &Bed, a: &mut Answers) {
    let ns = "diff-sel";
    for (name, labels) in [
        ("sel-1", json!({"tier": "a", "env": "prod"})),
        ("sel-2", json!({"tier": "b"})),
        ("sel-3", json!({"env": "dev"})),
    ] {
        let mut o = import(ns, name);
        o["metadata"]["labels"] = labels;
        bed.post(&mi_path(ns), &o).await;
    }
    let mut by_label = BTreeMap::new();
    for sel in [
        "tier=a",
        "tier!=a",
        "tier in (a,b)",
        "tier notin (a)",
        "!tier",
        "tier",
        "tier=a,env=prod",
        "env in (prod,dev),tier!=b",
    ] {
        let q = sel
            .replace('%', "%25")
            .replace(' ', "%20")
            .replace('=', "%3D")
            .replace('!', "%21")
            .replace(',', "%2C")
            .replace('(', "%28")
            .replace(')', "%29");
        let r = bed.get(&format!("{}?labelSelector={q}", mi_path(ns))).await;
        by_label.insert(sel, json!({"code": r.code, "names": names(&r.body)}));
    }
    a.put("list.label_selectors", json!(by_label));
    let mut by_field = BTreeMap::new();
    for (sel, path) in [
        ("metadata.name=sel-1", mi_path(ns)),
        ("metadata.name!=sel-1", mi_path(ns)),
        (
            "metadata.namespace=diff-sel",
            format!("{GROUP_VERSION}/modelimports"),
        ),
        ("metadata.namespace!=diff-sel", mi_path(ns)),
        (
            "metadata.name=sel-2,metadata.namespace=diff-sel",
            format!("{GROUP_VERSION}/modelimports"),
        ),
    ] {
        let q = sel
            .replace('=', "%3D")
            .replace('!', "%21")
            .replace(',', "%2C");
        let r = bed.get(&format!("{path}?fieldSelector={q}")).await;
        let names: Vec<String> = names(&r.body)
            .into_iter()
            .filter(|n| n.starts_with("sel-"))
            .collect();
        by_field.insert(sel, json!({"code": r.code, "names": names}));
    }
    a.put("list.field_selectors", json!(by_field));
    let r = bed
        .get(&format!(
            "{}?fieldSelector=spec.baseModel%3Dqwen3-32b",
            mi_path(ns)
        ))
        .await;
    a.put(
        "list.field_selector_unsupported",
        json!({"refusal": refusal(&r), "message": r.body["message"]}),
    );
    let r = bed
        .get(&format!("{}?labelSelector=tier%20in%20a", mi_path(ns)))
        .await;
    a.put("list.label_selector_malformed", refusal(&r));
    let r = bed.get(&mi_path(ns)).await;
    let mut meta_keys: Vec<String> = r.body["metadata"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    meta_keys.sort();
    a.put(
        "list.shape",
        json!({"code": r.code, "kind": r.body["kind"], "apiVersion": r.body["apiVersion"],
               "metadataKeys": meta_keys,
               "itemKind": r.body["items"][0]["kind"],
               "itemApiVersion": r.body["items"][0]["apiVersion"]}),
    );
    let page1 = bed.get(&format!("{}?limit=2", mi_path(ns))).await;
    let token = page1.body["metadata"]["continue"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let page2 = if token.is_empty() {
        Value::Null
    } else {
        json!(names(
            &bed.get(&format!("{}?limit=2&continue={token}", mi_path(ns)))
                .await
                .body
        ))
    };
    a.put(
        "list.pagination",
        json!({"code": page1.code, "page1": names(&page1.body),
               "hasContinue": !token.is_empty(),
               "remainingItemCount": page1.body["metadata"]["remainingItemCount"],
               "page2": page2}),
    );
}

async fn watches(bed: &Bed, a: &mut Answers) {
    let ns = "diff-watch";
    let list = bed.get(&mi_path(ns)).await;
    let rv = list.body["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or("0")
        .to_string();
    let mut w1 = import(ns, "w1");
    w1["metadata"]["labels"] = json!({"watch": "yes"});
    bed.post(&mi_path(ns), &w1).await;
    bed.post(&mi_path(ns), &import(ns, "w2")).await;
    bed.patch(
        &mi(ns, "w1"),
        MERGE,
        &json!({"metadata": {"labels": {"step": "2"}}}),
    )
    .await;
    bed.patch(
        &format!("{}/status", mi(ns, "w1")),
        MERGE,
        &json!({"status": {"phase": "Running"}}),
    )
    .await;
    bed.delete(&mi(ns, "w1"), None).await;
    let watches = [
        (
            "watch.from_resource_version",
            format!("resourceVersion={rv}"),
        ),
        (
            "watch.label_selector",
            format!("resourceVersion={rv}&labelSelector=watch%3Dyes"),
        ),
        (
            "watch.field_selector",
            format!("resourceVersion={rv}&fieldSelector=metadata.name%3Dw2"),
        ),
        (
            "watch.initial_events_bookmark",
            "sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan"
                .to_string(),
        ),
        (
            "watch.initial_events_without_bookmarks",
            "sendInitialEvents=true&resourceVersionMatch=NotOlderThan".to_string(),
        ),
    ];
    for (check, query) in watches {
        let (code, events) = bed
            .watch(&format!("{}?watch=1&{query}&timeoutSeconds=2", mi_path(ns)))
            .await;
        a.put(check, json!({"code": code, "events": event_view(&events)}));
    }
    let list = bed.get(&mi_path(ns)).await;
    let now_rv = list.body["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or("0")
        .to_string();
    let (code, events) = bed
        .watch(&format!(
            "{}?watch=1&resourceVersion={now_rv}&allowWatchBookmarks=true&timeoutSeconds=4",
            mi_path(ns)
        ))
        .await;
    a.put(
        "watch.bookmarks_before_timeout",
        json!({"code": code, "events": event_view(&events)}),
    );
    let (code, events) = bed
        .watch(&format!("{}?watch=1&timeoutSeconds=2", mi_path(ns)))
        .await;
    a.put(
        "watch.without_resource_version",
        json!({"code": code, "events": event_view(&events)}),
    );
    let (code, events) = bed
        .watch(&format!(
            "{}?watch=1&resourceVersion=1&timeoutSeconds=2",
            mi_path(ns)
        ))
        .await;
    a.put(
        "watch.too_old_resource_version",
        json!({"code": code, "events": event_view(&events)}),
    );
}

async fn events_and_leases(bed: &Bed, a: &mut Answers) {
    let ev = json!({
        "apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": "ev1", "namespace": NS},
        "eventTime": "2026-01-02T03:04:05.000000Z",
        "reportingController": "modelstudio.io/controller", "reportingInstance": "pod-1",
        "action": "Reconcile", "reason": "Created", "type": "Normal", "note": "job created",
        "regarding": {"apiVersion": "modelstudio.io/v1alpha1", "kind": "ModelImport",
                      "name": "alpha", "namespace": NS},
    });
    let r = bed
        .post(
            &format!("/apis/events.k8s.io/v1/namespaces/{NS}/events"),
            &ev,
        )
        .await;
    a.put(
        "events.v1_create",
        json!({"code": r.code, "body": without_managed_fields(&r.body)}),
    );
    let core = bed
        .get(&format!("/api/v1/namespaces/{NS}/events/ev1"))
        .await;
    a.put(
        "events.core_view",
        json!({"code": core.code, "body": without_managed_fields(&core.body)}),
    );
    let mut bad = ev.clone();
    bad["metadata"]["name"] = json!("ev-bad");
    bad.as_object_mut().unwrap().remove("eventTime");
    bad.as_object_mut().unwrap().remove("reportingController");
    let r = bed
        .post(
            &format!("/apis/events.k8s.io/v1/namespaces/{NS}/events"),
            &bad,
        )
        .await;
    a.put(
        "events.v1_invalid",
        json!({"refusal": refusal(&r), "messages": messages(&r)}),
    );
    let core_ev = json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": "ev2", "namespace": NS},
        "involvedObject": {"apiVersion": "modelstudio.io/v1alpha1", "kind": "ModelImport",
                           "name": "alpha", "namespace": NS},
        "reason": "Polled", "message": "still running", "type": "Warning",
        "source": {"component": "modelstudio-controller"}, "count": 2,
        "firstTimestamp": "2026-01-02T03:04:05Z", "lastTimestamp": "2026-01-02T03:05:05Z",
    });
    let r = bed
        .post(&format!("/api/v1/namespaces/{NS}/events"), &core_ev)
        .await;
    let v1 = bed
        .get(&format!(
            "/apis/events.k8s.io/v1/namespaces/{NS}/events/ev2"
        ))
        .await;
    a.put(
        "events.core_create_v1_view",
        json!({"code": r.code, "v1": without_managed_fields(&v1.body)}),
    );
    let r = bed
        .get(&format!(
            "/api/v1/namespaces/{NS}/events?fieldSelector=involvedObject.name%3Dalpha,reason%3DPolled"
        ))
        .await;
    a.put(
        "events.field_selector",
        json!({"code": r.code, "names": names(&r.body)}),
    );

    let leases = format!("/apis/coordination.k8s.io/v1/namespaces/{NS}/leases");
    let lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                       "metadata": {"name": "leader"},
                       "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15,
                                "renewTime": "2026-01-02T03:04:05.000000Z"}});
    let r = bed.post(&leases, &lease).await;
    a.put(
        "lease.create",
        json!({"code": r.code, "body": without_managed_fields(&r.body)}),
    );
    let mut next = r.body.clone();
    next["spec"]["holderIdentity"] = json!("b");
    next["spec"]["leaseTransitions"] = json!(1);
    let r2 = bed.put(&format!("{leases}/leader"), &next).await;
    a.put(
        "lease.update",
        json!({"code": r2.code, "spec": norm(&r2.body["spec"])}),
    );
    let mut stale = r.body.clone();
    stale["spec"]["holderIdentity"] = json!("c");
    let r3 = bed.put(&format!("{leases}/leader"), &stale).await;
    a.put(
        "lease.stale_update",
        json!({"refusal": refusal(&r3), "message": r3.body["message"]}),
    );
    let mut bad = lease.clone();
    bad["metadata"]["name"] = json!("bad-lease");
    bad["spec"]["leaseDurationSeconds"] = json!(0);
    let r = bed.post(&leases, &bad).await;
    a.put(
        "lease.invalid",
        json!({"refusal": refusal(&r), "messages": messages(&r)}),
    );
}

async fn namespaces(bed: &Bed, a: &mut Answers) {
    let ns = "diff-term";
    let mut held = import(ns, "held");
    held["metadata"]["finalizers"] = json!([FINALIZER]);
    bed.post(&mi_path(ns), &held).await;
    bed.post(&mi_path(ns), &import(ns, "free")).await;
    let r = bed.delete(&format!("/api/v1/namespaces/{ns}"), None).await;
    a.put(
        "namespace.delete",
        json!({"code": r.code, "kind": r.body["kind"], "phase": r.body["status"]["phase"],
               "deleting": r.body["metadata"]["deletionTimestamp"].is_string(),
               "finalizers": r.body["spec"]["finalizers"]}),
    );
    // The namespace controller removes what it can; the finalizer holds the rest.
    let free_gone = eventually(Duration::from_secs(30), || async {
        bed.get(&mi(ns, "free")).await.code == 404
    })
    .await;
    let held_now = bed.get(&mi(ns, "held")).await;
    let nsobj = bed.get(&format!("/api/v1/namespaces/{ns}")).await;
    a.put(
        "namespace.terminating_with_finalizer",
        json!({"freeDeleted": free_gone, "held": held_now.code,
               "heldDeleting": held_now.body["metadata"]["deletionTimestamp"].is_string(),
               "namespace": nsobj.code, "phase": nsobj.body["status"]["phase"]}),
    );
    // The controller's conditions take a moment to show.
    eventually(Duration::from_secs(10), || async {
        bed.get(&format!("/api/v1/namespaces/{ns}")).await.body["status"]["conditions"]
            .as_array()
            .is_some_and(|c| {
                c.iter()
                    .any(|c| c["type"] == "NamespaceFinalizersRemaining" && c["status"] == "True")
            })
    })
    .await;
    let nsobj = bed.get(&format!("/api/v1/namespaces/{ns}")).await;
    let mut conditions: Vec<String> = nsobj.body["status"]["conditions"]
        .as_array()
        .map(|c| {
            c.iter()
                .map(|c| format!("{}={} {}", c["type"], c["status"], c["reason"]))
                .collect()
        })
        .unwrap_or_default();
    conditions.sort();
    a.put("namespace.terminating_conditions", json!(conditions));
    let r = bed.post(&mi_path(ns), &import(ns, "late")).await;
    a.put(
        "namespace.create_while_terminating",
        json!({"refusal": refusal(&r), "message": r.body["message"]}),
    );
    bed.patch(
        &mi(ns, "held"),
        MERGE,
        &json!({"metadata": {"finalizers": null}}),
    )
    .await;
    let gone = eventually(Duration::from_secs(30), || async {
        bed.get(&format!("/api/v1/namespaces/{ns}")).await.code == 404
    })
    .await;
    a.put("namespace.gone_after_finalizer", json!(gone));
}

async fn tables_and_openapi(bed: &Bed, a: &mut Answers) {
    let ns = "diff-sel";
    bed.patch(
        &format!("{}/status", mi(ns, "sel-1")),
        MERGE,
        &json!({"status": {"phase": "Running", "modelName": "m-1", "jobId": "job-1",
                           "conditions": [{"type": "Ready", "status": "False", "reason": "Importing",
                                           "message": "", "lastTransitionTime": "2026-01-02T03:04:05Z"}]}}),
    )
    .await;
    let r = bed
        .req_accept(Method::GET, &mi_path(ns), "application/json", TABLE, None)
        .await;
    let columns: Vec<Value> = r.body["columnDefinitions"]
        .as_array()
        .map(|c| {
            c.iter()
                .map(|c| json!([c["name"], c["type"], c["format"], c["priority"]]))
                .collect()
        })
        .unwrap_or_default();
    let rows: Vec<Value> = r.body["rows"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|row| {
                    let cells: Vec<Value> = row["cells"]
                        .as_array()
                        .map(|c| {
                            c.iter()
                                .map(|c| match c.as_str() {
                                    Some(s) if is_age(s) => json!("<age>"),
                                    _ => c.clone(),
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    json!({"cells": cells, "objectKind": row["object"]["kind"]})
                })
                .collect()
        })
        .unwrap_or_default();
    a.put(
        "table.list",
        json!({"code": r.code, "kind": r.body["kind"], "apiVersion": r.body["apiVersion"],
               "columns": columns, "rows": rows}),
    );
    let r = bed
        .req_accept(
            Method::GET,
            &mi(ns, "sel-1"),
            "application/json",
            TABLE,
            None,
        )
        .await;
    a.put(
        "table.single",
        json!({"code": r.code, "kind": r.body["kind"], "rows": r.body["rows"].as_array().map(|r| r.len())}),
    );
    let r = bed.get("/openapi/v3").await;
    let has = r.body["paths"]
        .as_object()
        .is_some_and(|p| p.contains_key("apis/modelstudio.io/v1alpha1"));
    a.put(
        "openapi.v3_index",
        json!({"code": r.code, "hasGroupVersion": has}),
    );
    let r = bed.get("/openapi/v3/apis/modelstudio.io/v1alpha1").await;
    let schema = &r.body["components"]["schemas"]["io.modelstudio.v1alpha1.ModelImport"];
    let spec = &schema["properties"]["spec"];
    let mut props: Vec<String> = spec["properties"]
        .as_object()
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default();
    props.sort();
    a.put(
        "openapi.v3_schema",
        json!({"code": r.code, "gvk": schema["x-kubernetes-group-version-kind"],
               "specProperties": props, "specRequired": spec["required"],
               "metadataRef": schema["properties"]["metadata"]}),
    );
    let r = bed.get("/openapi/v2").await;
    let def = &r.body["definitions"]["io.modelstudio.v1alpha1.ModelImport"];
    a.put(
        "openapi.v2_definition",
        json!({"code": r.code, "gvk": def["x-kubernetes-group-version-kind"],
               "hasSpec": def["properties"]["spec"].is_object()}),
    );
}

async fn kubectl_workflows(bed: &Bed, a: &mut Answers) {
    let ns = "diff-kc";
    let manifest = |policy: &str| {
        format!(
            "apiVersion: modelstudio.io/v1alpha1\nkind: ModelImport\nmetadata:\n  name: kc-1\n  namespace: {ns}\nspec:\n  baseModel: qwen3-32b\n  weightType: lora\n  deletionPolicy: {policy}\n  storage:\n    bucketName: bucket\n    objectKey: models/kc-1/\n"
        )
    };
    let f = bed.file("kc-1.yaml", &manifest("Delete"));
    let o = bed.kubectl(&["apply", "-f", &f]).await;
    a.put("kubectl.apply_create", bed.k(&o));
    let o = bed.kubectl(&["apply", "-f", &f]).await;
    a.put("kubectl.apply_unchanged", bed.k(&o));
    let f = bed.file("kc-1.yaml", &manifest("Orphan"));
    let o = bed.kubectl(&["apply", "-f", &f]).await;
    a.put("kubectl.apply_configured", bed.k(&o));
    let got = bed.get(&mi(ns, "kc-1")).await;
    let last = got.body["metadata"]["annotations"]
        ["kubectl.kubernetes.io/last-applied-configuration"]
        .as_str()
        .map(|s| serde_json::from_str::<Value>(s).unwrap_or(json!(s)));
    a.put("kubectl.apply_last_applied", json!(last));
    let o = bed.kubectl(&["apply", "--server-side", "-f", &f]).await;
    a.put("kubectl.apply_server_side", bed.k(&o));
    let f2 = bed.file("kc-1-other.yaml", &manifest("Delete"));
    let o = bed
        .kubectl(&[
            "apply",
            "--server-side",
            "--field-manager=someone-else",
            "-f",
            &f2,
        ])
        .await;
    a.put("kubectl.apply_server_side_conflict", bed.k(&o));
    let o = bed
        .kubectl(&[
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=someone-else",
            "-f",
            &f2,
        ])
        .await;
    a.put("kubectl.apply_server_side_force", bed.k(&o));
    // A folder of manifests.
    let folder = bed.dir.join("folder");
    std::fs::create_dir_all(&folder).expect("folder");
    for n in ["kc-2", "kc-3"] {
        std::fs::write(
            folder.join(format!("{n}.yaml")),
            manifest("Delete").replace("kc-1", n),
        )
        .expect("manifest");
    }
    let o = bed
        .kubectl(&["apply", "-f", &folder.display().to_string()])
        .await;
    a.put("kubectl.apply_folder", bed.k(&o));
    // get -o yaml, applied back (no last-applied annotation on a POSTed object).
    bed.post(&mi_path(ns), &import(ns, "kc-posted")).await;
    let o = bed
        .kubectl(&["get", "modelimport", "kc-posted", "-n", ns, "-o", "yaml"])
        .await;
    let yaml = bed.file("kc-posted.yaml", &o.stdout);
    let o = bed.kubectl(&["apply", "-f", &yaml]).await;
    a.put("kubectl.get_yaml_apply_back", bed.k(&o));
    let o = bed.kubectl(&["replace", "-f", &yaml]).await;
    a.put("kubectl.replace_stale", bed.k(&o));

    let o = bed
        .kubectl(&["get", "modelimport", "kc-2", "-n", ns, "-o", "yaml"])
        .await;
    let shown = serde_saphyr::from_str::<Value>(&o.stdout)
        .map(|v| norm(&v))
        .unwrap_or_else(|e| json!(format!("not YAML: {e}")));
    a.put("kubectl.get_yaml", json!({"exit": o.exit, "object": shown}));
    let o = bed.kubectl(&["get", "modelimports", "-n", ns]).await;
    a.put("kubectl.get_table", bed.k(&o));
    let o = bed
        .kubectl(&["get", "mimport", "-n", ns, "-o", "name"])
        .await;
    a.put("kubectl.get_short_name", bed.k(&o));
    let o = bed
        .kubectl(&["get", "modelstudio", "-n", ns, "-o", "name"])
        .await;
    a.put("kubectl.get_category", bed.k(&o));
    let o = bed
        .kubectl(&["get", "modelimports", "-A", "-l", "tier=a"])
        .await;
    a.put("kubectl.get_all_namespaces_selector", bed.k(&o));
    let o = bed
        .kubectl(&[
            "get",
            "modelimport",
            "kc-1",
            "-n",
            ns,
            "-o",
            "jsonpath={.spec.source} {.spec.deletionPolicy} {.metadata.generation}",
        ])
        .await;
    a.put("kubectl.get_jsonpath", bed.k(&o));
    let o = bed
        .kubectl(&["get", "modelimport", "missing", "-n", ns])
        .await;
    a.put("kubectl.get_not_found", bed.k(&o));
    let o = bed
        .kubectl(&["api-resources", "--api-group=modelstudio.io"])
        .await;
    a.put("kubectl.api_resources", bed.k(&o));
    let o = bed.kubectl(&["explain", "modelimport.spec"]).await;
    a.put("kubectl.explain_spec", bed.k(&o));
    let o = bed
        .kubectl(&["explain", "modelimport.spec.storage.bucketName"])
        .await;
    a.put("kubectl.explain_field", bed.k(&o));
    let o = bed
        .kubectl(&["explain", "modelimport", "--recursive"])
        .await;
    a.put("kubectl.explain_recursive", bed.k(&o));

    let o = bed
        .kubectl(&["label", "modelimport", "kc-1", "-n", ns, "team=ml"])
        .await;
    a.put("kubectl.label", bed.k(&o));
    let o = bed
        .kubectl(&["label", "modelimport", "kc-1", "-n", ns, "team=ops"])
        .await;
    a.put("kubectl.label_no_overwrite", bed.k(&o));
    let o = bed
        .kubectl(&["annotate", "modelimport", "kc-1", "-n", ns, "note=hi"])
        .await;
    a.put("kubectl.annotate", bed.k(&o));
    let o = bed
        .kubectl(&[
            "patch",
            "modelimport",
            "kc-1",
            "-n",
            ns,
            "--type=merge",
            "-p",
            r#"{"spec":{"deletionPolicy":"Delete"}}"#,
        ])
        .await;
    a.put("kubectl.patch_merge", bed.k(&o));
    let o = bed
        .kubectl(&[
            "patch",
            "modelimport",
            "kc-1",
            "-n",
            ns,
            "--type=merge",
            "-p",
            r#"{"spec":{"deletionPolicy":"Delete"}}"#,
        ])
        .await;
    a.put("kubectl.patch_no_change", bed.k(&o));
    let o = bed
        .kubectl(&[
            "patch",
            "modelimport",
            "kc-1",
            "-n",
            ns,
            "--type=json",
            "-p",
            r#"[{"op":"replace","path":"/spec/baseModel","value":"qwen3-8b"}]"#,
        ])
        .await;
    a.put("kubectl.patch_refused", bed.k(&o));
    let o = bed
        .kubectl(&[
            "patch",
            "modelimport",
            "kc-1",
            "-n",
            ns,
            "-p",
            r#"{"metadata":{"labels":{"x":"y"}}}"#,
        ])
        .await;
    a.put("kubectl.patch_strategic_default", bed.k(&o));
    let o = bed
        .kubectl(&[
            "patch",
            "modelimport",
            "kc-1",
            "-n",
            ns,
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"phase":"Running"}}"#,
        ])
        .await;
    a.put("kubectl.patch_status", bed.k(&o));
    let o = bed
        .kubectl_env(
            &["edit", "modelimport", "kc-1", "-n", ns],
            &[(
                "KUBE_EDITOR",
                "sed -i s/deletionPolicy:.Delete/deletionPolicy:\\ Orphan/",
            )],
        )
        .await;
    a.put("kubectl.edit", bed.k(&o));

    // wait: a Ready condition set through /status.
    bed.patch(
        &format!("{}/status", mi(ns, "kc-2")),
        MERGE,
        &json!({"status": {"conditions": [{"type": "Ready", "status": "True", "reason": "Succeeded",
                                           "message": "done", "lastTransitionTime": "2026-01-02T03:04:05Z"}]}}),
    )
    .await;
    let o = bed
        .kubectl(&[
            "wait",
            "--for=condition=Ready",
            "modelimport/kc-2",
            "-n",
            ns,
            "--timeout=15s",
        ])
        .await;
    a.put("kubectl.wait_ready", bed.k(&o));
    let o = bed
        .kubectl(&[
            "wait",
            "--for=condition=Ready",
            "modelimport/kc-3",
            "-n",
            ns,
            "--timeout=2s",
        ])
        .await;
    a.put("kubectl.wait_timeout", bed.k(&o));
    let o = bed
        .kubectl(&[
            "wait",
            "--for=jsonpath={.status.phase}=Running",
            "modelimport/kc-1",
            "-n",
            ns,
            "--timeout=15s",
        ])
        .await;
    a.put("kubectl.wait_jsonpath", bed.k(&o));

    // delete with and without --wait.
    bed.patch(
        &mi(ns, "kc-3"),
        MERGE,
        &json!({"metadata": {"finalizers": [FINALIZER]}}),
    )
    .await;
    let o = bed
        .kubectl(&["delete", "modelimport", "kc-3", "-n", ns, "--wait=false"])
        .await;
    let after = bed.get(&mi(ns, "kc-3")).await;
    a.put(
        "kubectl.delete_no_wait",
        json!({"kubectl": bed.k(&o), "afterwards": after.code,
               "deleting": after.body["metadata"]["deletionTimestamp"].is_string()}),
    );
    let o = bed
        .kubectl(&["delete", "modelimport", "kc-2", "-n", ns, "--timeout=20s"])
        .await;
    let after = bed.get(&mi(ns, "kc-2")).await;
    a.put(
        "kubectl.delete_wait",
        json!({"kubectl": bed.k(&o), "afterwards": after.code}),
    );
    let o = bed
        .kubectl(&["delete", "modelimport", "kc-3", "-n", ns, "--timeout=3s"])
        .await;
    a.put("kubectl.delete_wait_times_out", bed.k(&o));
    let o = bed
        .kubectl(&[
            "delete",
            "-f",
            &folder.display().to_string(),
            "--wait=false",
            "--ignore-not-found",
        ])
        .await;
    a.put("kubectl.delete_folder", bed.k(&o));
}

/// What a restored object shows: its name, spec, status and generation, whether it is a new
/// object (another uid than the one backed up), and its last-applied configuration (kubectl
/// writes the backed-up object there, uid and timestamps included), normalized.
fn restored_view(list: &Value, old_uids: &BTreeMap<String, String>) -> Value {
    let items = list["items"].as_array().cloned().unwrap_or_default();
    items
        .iter()
        .map(|o| {
            let name = o["metadata"]["name"].as_str().unwrap_or("");
            let uid = o["metadata"]["uid"].as_str().unwrap_or("");
            let last = o["metadata"]["annotations"]
                ["kubectl.kubernetes.io/last-applied-configuration"]
                .as_str()
                .map(|s| norm(&serde_json::from_str::<Value>(s).unwrap_or(json!(s))));
            json!({"name": name, "spec": o["spec"], "status": o["status"],
                   "generation": o["metadata"]["generation"],
                   "newUid": old_uids.get(name).is_some_and(|old| old != uid),
                   "lastApplied": last})
        })
        .collect()
}

/// The backup workflow a new user tries: `kubectl get -o yaml` of two or more objects writes a
/// `kind: List`, and `kubectl apply -f` of that file validates every item on the client
/// against the OpenAPI v2 document, in protobuf (cli-runtime cannot ask the server to
/// validate a List).
async fn kubectl_backup_list(bed: &Bed, a: &mut Answers) {
    let ns = "diff-backup";
    let manifest = |name: &str| {
        format!(
            "apiVersion: modelstudio.io/v1alpha1\nkind: ModelImport\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n  baseModel: qwen3-32b\n  weightType: lora\n  storage:\n    bucketName: bucket\n    objectKey: models/{name}/\n"
        )
    };
    let f = bed.file(
        "backup-originals.yaml",
        &format!("{}---\n{}", manifest("bk-1"), manifest("bk-2")),
    );
    let o = bed.kubectl(&["apply", "-f", &f]).await;
    a.put("kubectl.backup_apply_originals", bed.k(&o));

    let o = bed
        .kubectl(&["get", "mimport", "-n", ns, "-o", "yaml"])
        .await;
    let backup = bed.file("backup.yaml", &o.stdout);
    let list = serde_saphyr::from_str::<Value>(&o.stdout)
        .unwrap_or_else(|e| json!(format!("not YAML: {e}")));
    a.put(
        "kubectl.backup_get_list",
        json!({"exit": o.exit, "stderr": bed.text(&o.stderr), "list": norm(&list)}),
    );
    let old_uids: BTreeMap<String, String> = list["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|o| {
                    let m = &o["metadata"];
                    Some((m["name"].as_str()?.into(), m["uid"].as_str()?.into()))
                })
                .collect()
        })
        .unwrap_or_default();

    let o = bed
        .kubectl(&["delete", "mimport", "--all", "-n", ns, "--timeout=20s"])
        .await;
    a.put("kubectl.backup_delete", bed.k(&o));

    let o = bed.kubectl(&["apply", "-f", &backup]).await;
    a.put("kubectl.backup_apply_list", bed.k(&o));
    let restored = bed.get(&mi_path(ns)).await;
    a.put(
        "kubectl.backup_restored",
        json!({"code": restored.code, "items": restored_view(&restored.body, &old_uids)}),
    );

    // Client-side validation reads the schemas: an unknown field in an item's spec and in
    // its metadata are refused before anything is sent.
    let bad = with_unknown_fields(&std::fs::read_to_string(&backup).unwrap_or_default());
    let f = bed.file("backup-unknown-fields.yaml", &bad);
    let o = bed.kubectl(&["apply", "-f", &f]).await;
    a.put(
        "kubectl.backup_list_unknown_fields",
        json!({"edited": bad.contains("colour: blue") && bad.contains("nickname: first"),
               "kubectl": bed.k(&o)}),
    );
}

/// The backup with an unknown field in the first item's spec and another in its metadata.
fn with_unknown_fields(backup: &str) -> String {
    backup
        .replacen(
            "    weightType: lora\n",
            "    weightType: lora\n    colour: blue\n",
            1,
        )
        .replacen(
            "    name: bk-1\n",
            "    name: bk-1\n    nickname: first\n",
            1,
        )
}

/// The known differences from the README's table: check name → (real, embedded, why).
fn known_differences() -> BTreeMap<String, [String; 3]> {
    let text = std::fs::read_to_string(README).expect("crates/apiserver/README.md is readable");
    let section = text
        .split("\n## Known differences")
        .nth(1)
        .expect("the README has a '## Known differences' section");
    let section = section.split("\n## ").next().unwrap_or("");
    let mut known = BTreeMap::new();
    for line in section.lines().filter(|l| l.trim_start().starts_with('|')) {
        let cells: Vec<String> = line
            .trim()
            .trim_matches('|')
            .split(" | ")
            .map(|c| c.trim().to_string())
            .collect();
        let Some(first) = cells.first() else { continue };
        if !first.starts_with('`') {
            continue; // the header and the separator
        }
        assert_eq!(
            cells.len(),
            4,
            "a known-differences row has 4 cells: {line}"
        );
        let name = first.trim_matches('`').to_string();
        let prior = known.insert(
            name.clone(),
            [cells[1].clone(), cells[2].clone(), cells[3].clone()],
        );
        assert!(prior.is_none(), "{name} is listed twice in the README");
    }
    known
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_and_embedded_api_servers_agree() {
    if !testbed::available() {
        eprintln!(
            "SKIPPED: the real control plane is not built; run scripts/build-testbed.sh and \
             export {}=<the folder it prints>",
            testbed::BIN_DIR_ENV
        );
        return;
    }
    let known = known_differences();
    let started = Instant::now();
    let real = Bed::new(
        "real",
        Cluster::start_real().await.expect("real control plane"),
    )
    .await;
    let real_answers = scenario(&real).await;
    println!("real kube-apiserver: scenario in {:?}", started.elapsed());
    drop(real);
    let started = Instant::now();
    let embedded = Bed::new(
        "embedded",
        Cluster::start_embedded()
            .await
            .expect("embedded API server"),
    )
    .await;
    let embedded_answers = scenario(&embedded).await;
    println!("embedded API server: scenario in {:?}", started.elapsed());
    assert_eq!(embedded.name, "embedded");

    // The real server's answers are the truth: a transport failure there is a broken test.
    for (name, v) in &real_answers.0 {
        assert!(
            !v.to_string().contains("<transport error"),
            "{name}: the real kube-apiserver did not answer: {v}"
        );
    }
    // Anchors: the real server does what the checks assume.
    let real_map: BTreeMap<_, _> = real_answers.0.iter().cloned().collect();
    assert_eq!(real_map["conflict.stale_update"]["refusal"]["code"], 409);
    assert_eq!(real_map["apply.conflict"]["refusal"]["code"], 409);
    assert_eq!(real_map["finalizer.delete_keeps_object"]["code"], 200);
    assert_eq!(real_map["finalizer.remove_deletes"]["afterwards"], 404);
    assert_eq!(real_map["generation.spec_change"]["after"], 2);
    assert_eq!(real_map["namespace.gone_after_finalizer"], true);

    let embedded_map: BTreeMap<_, _> = embedded_answers.0.iter().cloned().collect();
    assert_eq!(
        real_map.keys().collect::<Vec<_>>(),
        embedded_map.keys().collect::<Vec<_>>(),
        "both scenarios answer the same checks"
    );
    let total = real_answers.0.len();
    let mut agree = 0;
    let mut unexpected = Vec::new();
    let mut documented = Vec::new();
    for (name, real_v) in &real_answers.0 {
        let emb_v = &embedded_map[name];
        if real_v == emb_v {
            agree += 1;
            if known.contains_key(name) {
                unexpected.push(format!(
                    "{name}: listed in the README as a known difference, but both now answer {real_v}"
                ));
            }
            continue;
        }
        let shown = format!(
            "{name}\n    real:     {}\n    embedded: {}",
            serde_json::to_string(real_v).unwrap_or_default(),
            serde_json::to_string(emb_v).unwrap_or_default()
        );
        if known.contains_key(name) {
            documented.push(shown);
        } else {
            unexpected.push(format!(
                "{shown}\n    (not in the README's known differences)"
            ));
        }
    }
    for name in known.keys() {
        if !real_map.contains_key(name) {
            unexpected.push(format!(
                "{name}: listed in the README, but no such check runs"
            ));
        }
    }
    println!("{agree} of {total} checks agree");
    if !documented.is_empty() {
        println!("documented differences ({}):", documented.len());
        for d in &documented {
            println!("  {d}");
        }
    }
    if !unexpected.is_empty() {
        println!("UNEXPECTED ({}):", unexpected.len());
        for d in &unexpected {
            println!("  {d}");
        }
    }
    assert!(
        unexpected.is_empty(),
        "{} checks disagree without a documented reason, or a documented difference is gone (see above)",
        unexpected.len()
    );
}
