//! The API over real HTTP with reqwest: discovery, CRUD, errors, validation, patches,
//! list/watch semantics, tables, OpenAPI and the robustness knobs.

mod common;

use std::time::Duration;

use common::{fixture, http, install_crd, start};
use serde_json::{json, Value};

const MI: &str = "/apis/modelstudio.io/v1alpha1/namespaces/default/modelimports";

async fn send(req: reqwest::RequestBuilder) -> (u16, Value) {
    let r = req.send().await.unwrap();
    let code = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        code,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test]
async fn discovery_legacy_and_aggregated() {
    let s = start().await;
    let b = s.base_url();
    install_crd(&b).await;
    let c = http();
    let (code, v) = send(c.get(format!("{b}/version"))).await;
    assert_eq!((code, v["major"].as_str()), (200, Some("1")));
    let (_, v) = send(c.get(format!("{b}/apis"))).await;
    assert!(v["groups"]
        .as_array()
        .unwrap()
        .iter()
        .any(|g| g["name"] == "modelstudio.io"));
    let (_, v) = send(c.get(format!("{b}/apis/modelstudio.io/v1alpha1"))).await;
    let r = &v["resources"][0];
    assert_eq!(
        (
            r["name"].as_str(),
            r["shortNames"][0].as_str(),
            r["categories"][0].as_str()
        ),
        (Some("modelimports"), Some("mimport"), Some("modelstudio"))
    );
    assert_eq!(v["resources"][1]["name"], "modelimports/status");
    let r = c
        .get(format!("{b}/apis"))
        .header(
            "accept",
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json",
        )
        .send()
        .await
        .unwrap();
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .contains("as=APIGroupDiscoveryList"));
    let v: Value = r.json().await.unwrap();
    let g = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["metadata"]["name"] == "modelstudio.io")
        .unwrap();
    assert_eq!(g["versions"][0]["resources"][0]["scope"], "Namespaced");
    assert_eq!(
        g["versions"][0]["resources"][0]["subresources"][0]["subresource"],
        "status"
    );
    let (code, v) = send(c.get(format!("{b}/apis/nope.io/v1/things"))).await;
    assert_eq!((code, v["kind"].as_str()), (404, Some("Status")));
    s.shutdown().await;
}

#[tokio::test]
async fn crud_conflicts_and_errors() {
    let s = start().await;
    let b = s.base_url();
    let c = http();
    let sec = "/api/v1/namespaces/default/secrets";
    let (code, v) = send(c.post(format!("{b}{sec}")).json(
        &json!({"metadata": {"name": "s1", "labels": {"app": "a"}}, "stringData": {"k": "v"}}),
    ))
    .await;
    assert_eq!(code, 201, "{v}");
    assert_eq!(v["data"]["k"], "dg==");
    let (code, v) = send(
        c.post(format!("{b}{sec}"))
            .json(&json!({"metadata": {"name": "s1"}})),
    )
    .await;
    assert_eq!((code, v["reason"].as_str()), (409, Some("AlreadyExists")));
    assert_eq!(v["message"], "secrets \"s1\" already exists");
    let (code, v) = send(c.get(format!("{b}{sec}/nope"))).await;
    assert_eq!(
        (code, v["reason"].as_str(), v["status"].as_str()),
        (404, Some("NotFound"), Some("Failure"))
    );
    let (code, v) = send(c.post(format!("{b}{sec}")).body("{not json")).await;
    assert_eq!((code, v["reason"].as_str()), (400, Some("BadRequest")));
    let (code, _) = send(
        c.post(format!("{b}/api/v1/namespaces/missing/secrets"))
            .json(&json!({"metadata": {"name": "x"}})),
    )
    .await;
    assert_eq!(code, 404);
    // Stale resourceVersion on update.
    let (_, cur) = send(c.get(format!("{b}{sec}/s1"))).await;
    let mut stale = cur.clone();
    stale["metadata"]["resourceVersion"] = json!("1");
    let (code, v) = send(c.put(format!("{b}{sec}/s1")).json(&stale)).await;
    assert_eq!((code, v["reason"].as_str()), (409, Some("Conflict")));
    let (code, v) = send(c.put(format!("{b}{sec}/s1")).json(&cur)).await;
    assert_eq!(code, 200, "{v}");
    // Built-in kinds take strategic merge patches (kubectl patch's default).
    let (code, v) = send(
        c.patch(format!("{b}{sec}/s1"))
            .header("content-type", "application/strategic-merge-patch+json")
            .body(r#"{"metadata":{"labels":{"smp":"yes"}}}"#),
    )
    .await;
    assert_eq!(
        (code, v["metadata"]["labels"]["smp"].as_str()),
        (200, Some("yes")),
        "{v}"
    );
    let (code, _) = send(c.request(reqwest::Method::OPTIONS, format!("{b}{sec}/s1"))).await;
    assert_eq!(code, 405);
    // Leases and events.k8s.io events.
    let (code, _) = send(
        c.post(format!(
            "{b}/apis/coordination.k8s.io/v1/namespaces/default/leases"
        ))
        .json(&json!({"metadata": {"name": "l"}, "spec": {"holderIdentity": "me"}})),
    )
    .await;
    assert_eq!(code, 201);
    // events.k8s.io/v1 validates strictly: eventTime is required, type is Normal or Warning.
    let events = format!("{b}/apis/events.k8s.io/v1/namespaces/default/events");
    let (code, v) = send(
        c.post(&events)
            .json(&json!({"metadata": {"name": "e"}, "reason": "R", "note": "n"})),
    )
    .await;
    assert_eq!((code, v["reason"].as_str()), (422, Some("Invalid")), "{v}");
    assert_eq!(
        v["message"],
        "Event \"e\" is invalid: [eventTime: Required value, type: Invalid value: \"\": has invalid value: ]"
    );
    assert!(v["details"].get("group").is_none(), "{v}");
    let (code, v) = send(c.post(&events).json(&json!({
        "metadata": {"name": "e"}, "reason": "R", "note": "n", "type": "Normal",
        "eventTime": "2026-01-01T00:00:00.000000Z", "action": "A",
        "reportingController": "ctl", "reportingInstance": "i",
        "regarding": {"kind": "Secret", "name": "s1", "namespace": "default"},
    })))
    .await;
    assert_eq!(code, 201, "{v}");
    assert_eq!(v["deprecatedSource"], json!({}));
    let (code, v) = send(c.delete(format!("{b}{sec}/s1")).json(
        &json!({"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}),
    ))
    .await;
    assert_eq!((code, v["metadata"]["name"].as_str()), (200, Some("s1")));
    s.shutdown().await;
}

#[tokio::test]
async fn custom_resources_validation_status_and_patches() {
    let s = start().await;
    let b = s.base_url();
    install_crd(&b).await;
    let c = http();
    let mut bad = fixture("modelimport.yaml");
    bad["spec"]["weightType"] = json!("x");
    bad["spec"]["displayName"] = json!("x".repeat(51));
    bad["spec"]["storage"]
        .as_object_mut()
        .unwrap()
        .remove("objectKey");
    let (code, v) = send(c.post(format!("{b}{MI}")).json(&bad)).await;
    assert_eq!((code, v["reason"].as_str()), (422, Some("Invalid")), "{v}");
    let causes = v["details"]["causes"].as_array().unwrap();
    let has = |reason: &str, field: &str| {
        causes
            .iter()
            .any(|c| c["reason"] == reason && c["field"] == field)
    };
    assert!(has("FieldValueNotSupported", "spec.weightType"), "{v}");
    assert!(has("FieldValueTooLong", "spec.displayName"));
    assert!(has("FieldValueRequired", "spec.storage.objectKey"));
    assert!(v["message"]
        .as_str()
        .unwrap()
        .starts_with("ModelImport.modelstudio.io \"qwen-lora\" is invalid: ["));

    let mut with_unknown = fixture("modelimport.yaml");
    with_unknown["spec"]["foo"] = json!(1);
    let (code, v) = send(
        c.post(format!("{b}{MI}?fieldValidation=Strict"))
            .json(&with_unknown),
    )
    .await;
    assert_eq!(code, 400);
    assert!(v["message"]
        .as_str()
        .unwrap()
        .contains("strict decoding error: unknown field \"spec.foo\""));
    let r = c
        .post(format!("{b}{MI}?fieldValidation=Warn"))
        .json(&with_unknown)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(
        r.headers()["warning"],
        "299 - \"unknown field \\\"spec.foo\\\"\""
    );
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["spec"]["source"], "oss", "defaults applied");
    assert!(v["spec"].get("foo").is_none(), "unknown field pruned");
    assert_eq!(v["metadata"]["generation"], 1);

    // Status subresource: main writes ignore status, status writes change only status.
    let (code, v) = send(
        c.patch(format!("{b}{MI}/qwen-lora/status"))
            .header("content-type", "application/merge-patch+json")
            .body(r#"{"status":{"phase":"Ready","jobId":"j1"},"spec":{"replicas":2}}"#),
    )
    .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(
        (
            v["status"]["phase"].as_str(),
            v["metadata"]["generation"].as_i64()
        ),
        (Some("Ready"), Some(1))
    );
    assert!(v["spec"].get("replicas").is_none());
    let (_, v) = send(
        c.patch(format!("{b}{MI}/qwen-lora"))
            .header("content-type", "application/merge-patch+json")
            .body(r#"{"status":{"phase":"Nope"},"spec":{"replicas":2}}"#),
    )
    .await;
    assert_eq!(
        (
            v["status"]["phase"].as_str(),
            v["metadata"]["generation"].as_i64()
        ),
        (Some("Ready"), Some(2))
    );
    // CEL transition rules.
    let (code, v) = send(
        c.patch(format!("{b}{MI}/qwen-lora/status"))
            .header("content-type", "application/merge-patch+json")
            .body(r#"{"status":{"jobId":"j2"}}"#),
    )
    .await;
    assert_eq!(code, 422);
    assert_eq!(v["details"]["causes"][0]["field"], "status.jobId");
    assert_eq!(v["message"], "ModelImport.modelstudio.io \"qwen-lora\" is invalid: status.jobId: Invalid value: jobId cannot change once set");
    let (code, _) = send(
        c.patch(format!("{b}{MI}/qwen-lora"))
            .header("content-type", "application/merge-patch+json")
            .body(r#"{"spec":{"modelName":"other"}}"#),
    )
    .await;
    assert_eq!(code, 422);
    // JSON patch with test, strategic merge, apply.
    let (code, _) = send(
        c.patch(format!("{b}{MI}/qwen-lora"))
            .header("content-type", "application/json-patch+json")
            .body(r#"[{"op":"test","path":"/spec/replicas","value":3}]"#),
    )
    .await;
    assert_eq!(code, 422);
    let (code, v) = send(c.patch(format!("{b}{MI}/qwen-lora")).header("content-type", "application/json-patch+json").body(r#"[{"op":"test","path":"/spec/replicas","value":2},{"op":"replace","path":"/spec/replicas","value":3}]"#)).await;
    assert_eq!((code, v["spec"]["replicas"].as_i64()), (200, Some(3)));
    let (code, v) = send(
        c.patch(format!("{b}{MI}/qwen-lora"))
            .header("content-type", "application/strategic-merge-patch+json")
            .body(r#"{"spec":{"displayName":"smp"}}"#),
    )
    .await;
    assert_eq!(
        (code, v["reason"].as_str()),
        (415, Some("UnsupportedMediaType")),
        "{v}"
    );
    assert_eq!(v["message"], "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml");
    let (code, v) = send(
        c.patch(format!("{b}{MI}/new-one"))
            .header("content-type", "application/apply-patch+yaml")
            .body("spec: {}"),
    )
    .await;
    assert_eq!(
        (code, v["reason"].as_str(), v["details"]["kind"].as_str()),
        (422, Some("Invalid"), Some("PatchOptions")),
        "fieldManager is required: {v}"
    );
    assert_eq!(v["message"], "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch");
    assert_eq!(v["details"]["causes"][0]["field"], "fieldManager");
    assert!(v["details"].get("name").is_none(), "{v}");
    let applied = "apiVersion: modelstudio.io/v1alpha1\nkind: ModelImport\nmetadata:\n  name: new-one\nspec:\n  modelName: m\n  weightType: full\n  storage: {bucket: b, objectKey: k/}\n";
    let (code, v) = send(
        c.patch(format!("{b}{MI}/new-one?fieldManager=test&force=true"))
            .header("content-type", "application/apply-patch+yaml")
            .body(applied),
    )
    .await;
    assert_eq!(code, 201, "{v}");
    let (code, _) = send(
        c.patch(format!("{b}{MI}/new-one"))
            .header("content-type", "text/plain")
            .body("x"),
    )
    .await;
    assert_eq!(code, 415);
    s.shutdown().await;
}

#[tokio::test]
async fn finalizers_and_namespace_deletion() {
    let s = start().await;
    let b = s.base_url();
    install_crd(&b).await;
    let c = http();
    let (code, _) = send(
        c.post(format!("{b}/api/v1/namespaces"))
            .json(&json!({"metadata": {"name": "team"}})),
    )
    .await;
    assert_eq!(code, 201);
    let path = "/apis/modelstudio.io/v1alpha1/namespaces/team/modelimports";
    let mut mi = fixture("modelimport.yaml");
    mi["metadata"]["finalizers"] = json!(["modelstudio.io/cleanup"]);
    let (code, _) = send(c.post(format!("{b}{path}")).json(&mi)).await;
    assert_eq!(code, 201);
    let (code, v) = send(c.delete(format!("{b}/api/v1/namespaces/team"))).await;
    assert_eq!(
        (code, v["status"]["phase"].as_str()),
        (200, Some("Terminating"))
    );
    let (_, v) = send(c.get(format!("{b}{path}/qwen-lora"))).await;
    assert!(v["metadata"]["deletionTimestamp"].is_string());
    let (code, _) = send(
        c.patch(format!("{b}{path}/qwen-lora"))
            .header("content-type", "application/merge-patch+json")
            .body(r#"{"metadata":{"finalizers":null}}"#),
    )
    .await;
    assert_eq!(code, 200);
    let (code, _) = send(c.get(format!("{b}/api/v1/namespaces/team"))).await;
    assert_eq!(code, 404, "namespace goes when empty");
    s.shutdown().await;
}

/// kube-rs's finalizer helper (and the controller) add the first finalizer with a JSON patch
/// whose `test` of a missing path against `null` must succeed, as in kube-apiserver.
#[tokio::test]
async fn json_patch_test_null_on_missing_finalizers() {
    let s = start().await;
    let b = s.base_url();
    install_crd(&b).await;
    let c = http();
    let (code, _) = send(
        c.post(format!("{b}{MI}"))
            .json(&fixture("modelimport.yaml")),
    )
    .await;
    assert_eq!(code, 201);
    let patch = r#"[{"op":"test","path":"/metadata/finalizers","value":null},{"op":"add","path":"/metadata/finalizers","value":["x"]}]"#;
    let (code, v) = send(
        c.patch(format!("{b}{MI}/qwen-lora"))
            .header("content-type", "application/json-patch+json")
            .body(patch),
    )
    .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["metadata"]["finalizers"], json!(["x"]));
    // The same patch again: the path now exists, so the test fails with 422.
    let (code, v) = send(
        c.patch(format!("{b}{MI}/qwen-lora"))
            .header("content-type", "application/json-patch+json")
            .body(patch),
    )
    .await;
    assert_eq!(code, 422, "{v}");
    let (_, v) = send(c.get(format!("{b}{MI}/qwen-lora"))).await;
    assert_eq!(v["metadata"]["finalizers"], json!(["x"]));
    s.shutdown().await;
}

#[tokio::test]
async fn list_selectors_resource_versions_and_tables() {
    let s = start().await;
    let b = s.base_url();
    install_crd(&b).await;
    let c = http();
    for (name, app) in [("a", "web"), ("b", "db"), ("c", "web")] {
        let mut mi = fixture("modelimport.yaml");
        mi["metadata"] = json!({"name": name, "labels": {"app": app}});
        send(c.post(format!("{b}{MI}")).json(&mi)).await;
    }
    let names = |v: &Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
            .collect()
    };
    let (_, v) = send(c.get(format!("{b}{MI}?labelSelector=app%3Dweb"))).await;
    assert_eq!(names(&v), ["a", "c"]);
    assert_eq!(v["kind"], "ModelImportList");
    let (_, v) = send(c.get(format!("{b}{MI}?labelSelector=app%20notin%20(web)"))).await;
    assert_eq!(names(&v), ["b"]);
    let (_, v) = send(c.get(format!("{b}{MI}?fieldSelector=metadata.name%3Db"))).await;
    assert_eq!(names(&v), ["b"]);
    let (code, _) = send(c.get(format!("{b}{MI}?labelSelector=app%20in%20web"))).await;
    assert_eq!(code, 400);
    let (_, v) = send(c.get(format!("{b}/apis/modelstudio.io/v1alpha1/modelimports"))).await;
    let rv: u64 = v["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    send(c.delete(format!("{b}{MI}/a"))).await;
    let (_, v) = send(c.get(format!(
        "{b}{MI}?resourceVersion={rv}&resourceVersionMatch=Exact"
    )))
    .await;
    assert_eq!(names(&v), ["a", "b", "c"]);
    let (code, _) = send(c.get(format!(
        "{b}{MI}?resourceVersion=999999&resourceVersionMatch=NotOlderThan"
    )))
    .await;
    assert_eq!(code, 504);
    s.compact();
    let (code, v) = send(c.get(format!(
        "{b}{MI}?resourceVersion={rv}&resourceVersionMatch=Exact"
    )))
    .await;
    assert_eq!((code, v["code"].as_i64()), (410, Some(410)));
    // Table.
    send(
        c.patch(format!("{b}{MI}/b/status"))
            .header("content-type", "application/merge-patch+json")
            .body(
                r#"{"status":{"phase":"Ready","conditions":[{"type":"Ready","status":"True"}]}}"#,
            ),
    )
    .await;
    let (_, t) = send(c.get(format!("{b}{MI}")).header(
        "accept",
        "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
    ))
    .await;
    assert_eq!(t["kind"], "Table");
    let cols: Vec<&str> = t["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(cols, ["Name", "Phase", "Model", "Job", "Ready", "Age"]);
    assert_eq!(t["rows"][0]["cells"][0], "b");
    assert_eq!(t["rows"][0]["cells"][1], "Ready");
    assert_eq!(t["rows"][0]["cells"][4], "True");
    let (_, t) = send(
        c.get(format!("{b}/api/v1/namespaces"))
            .header("accept", "application/json;as=Table;v=v1;g=meta.k8s.io"),
    )
    .await;
    assert_eq!(t["columnDefinitions"][1]["name"], "Age");
    s.shutdown().await;
}

async fn read_lines(mut resp: reqwest::Response, n: usize) -> Vec<Value> {
    let mut out = Vec::new();
    let mut buf = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while out.len() < n {
        let chunk = tokio::time::timeout_at(deadline, resp.chunk()).await;
        let Ok(Ok(Some(bytes))) = chunk else { break };
        buf.push_str(&String::from_utf8_lossy(&bytes));
        while let Some(i) = buf.find('\n') {
            let line: String = buf.drain(..=i).collect();
            out.push(serde_json::from_str(line.trim()).unwrap());
        }
    }
    out
}

#[tokio::test]
async fn watch_events_bookmarks_timeouts_and_gone() {
    let s = start().await;
    let b = s.base_url();
    let c = http();
    let sec = "/api/v1/namespaces/default/secrets";
    let (_, v) = send(
        c.post(format!("{b}{sec}"))
            .json(&json!({"metadata": {"name": "first"}})),
    )
    .await;
    let rv0 = v["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    // Streaming list: initial ADDED events, then the initial-events-end bookmark.
    let r = c.get(format!("{b}{sec}?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true")).send().await.unwrap();
    let w = r;
    send(
        c.post(format!("{b}{sec}"))
            .json(&json!({"metadata": {"name": "second"}})),
    )
    .await;
    let ev = read_lines(w, 3).await;
    assert_eq!(ev[0]["type"], "ADDED");
    assert_eq!(ev[1]["type"], "BOOKMARK");
    assert_eq!(
        ev[1]["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );
    assert_eq!(
        (
            ev[2]["type"].as_str(),
            ev[2]["object"]["metadata"]["name"].as_str()
        ),
        (Some("ADDED"), Some("second"))
    );
    // Resume from a resourceVersion; modify + delete.
    let r = c
        .get(format!(
            "{b}{sec}?watch=1&resourceVersion={rv0}&timeoutSeconds=5"
        ))
        .send()
        .await
        .unwrap();
    send(
        c.patch(format!("{b}{sec}/first"))
            .header("content-type", "application/merge-patch+json")
            .body(r#"{"metadata":{"labels":{"x":"y"}}}"#),
    )
    .await;
    send(c.delete(format!("{b}{sec}/first"))).await;
    let ev = read_lines(r, 3).await;
    let types: Vec<&str> = ev.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["ADDED", "MODIFIED", "DELETED"]);
    // timeoutSeconds ends the stream.
    let started = std::time::Instant::now();
    let r = c
        .get(format!(
            "{b}{sec}?watch=true&resourceVersion={}&timeoutSeconds=1",
            s.server.current_resource_version()
        ))
        .send()
        .await
        .unwrap();
    assert!(r.text().await.unwrap().is_empty());
    assert!(started.elapsed() < Duration::from_secs(5));
    // Too old: ERROR event with 410.
    s.compact();
    let r = c
        .get(format!("{b}{sec}?watch=true&resourceVersion={rv0}"))
        .send()
        .await
        .unwrap();
    let ev = read_lines(r, 1).await;
    assert_eq!(
        (ev[0]["type"].as_str(), ev[0]["object"]["code"].as_i64()),
        (Some("ERROR"), Some(410))
    );
    // drop_watches ends open streams.
    let r = c.get(format!("{b}{sec}?watch=true")).send().await.unwrap();
    for _ in 0..50 {
        if s.server.watch_count() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    s.drop_watches();
    let body = tokio::time::timeout(Duration::from_secs(5), r.text())
        .await
        .expect("stream ends")
        .unwrap();
    assert!(body.contains("second"));
    s.shutdown().await;
}

#[tokio::test]
async fn openapi_documents() {
    let s = start().await;
    let b = s.base_url();
    install_crd(&b).await;
    let c = http();
    let (_, idx) = send(c.get(format!("{b}/openapi/v3"))).await;
    let url = idx["paths"]["apis/modelstudio.io/v1alpha1"]["serverRelativeURL"]
        .as_str()
        .unwrap()
        .to_string();
    let (code, doc) = send(c.get(format!("{b}{url}"))).await;
    assert_eq!(code, 200);
    let schema = &doc["components"]["schemas"]["io.modelstudio.v1alpha1.ModelImport"];
    assert_eq!(
        schema["x-kubernetes-group-version-kind"][0]["kind"],
        "ModelImport"
    );
    assert_eq!(
        schema["properties"]["spec"]["properties"]["weightType"]["enum"][1],
        "full"
    );
    let (code, v2) = send(c.get(format!("{b}/openapi/v2"))).await;
    assert_eq!(code, 200);
    assert!(v2["definitions"]["io.modelstudio.v1alpha1.ModelImport"].is_object());
    // client-go's discovery asks for protobuf alone (kubectl's validation of a List).
    let r = c
        .get(format!("{b}/openapi/v2"))
        .header(
            "accept",
            "application/com.github.proto-openapi.spec.v2@v1.0+protobuf",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        r.headers()["content-type"],
        sandbox_apiserver::openapi_proto::CONTENT_TYPE
    );
    let bytes = r.bytes().await.unwrap();
    let doc = <sandbox_apiserver::openapi_proto::Document as prost::Message>::decode(bytes)
        .expect("gnostic's protobuf");
    assert_eq!(doc.swagger, "2.0");
    assert!(doc
        .definitions
        .unwrap_or_default()
        .additional_properties
        .iter()
        .any(|d| d.name == "io.modelstudio.v1alpha1.ModelImport"));
    let (code, _) = send(
        c.get(format!("{b}/openapi/v2"))
            .header("accept", "text/html"),
    )
    .await;
    assert_eq!(code, 406);
    let (code, _) = send(c.get(format!("{b}/openapi/v3/apis/nope.io/v1"))).await;
    assert_eq!(code, 404);
    s.shutdown().await;
}

#[tokio::test]
async fn restart_keeps_state_and_port() {
    let mut s = start().await;
    let b = s.base_url();
    let c = http();
    send(
        c.post(format!("{b}/api/v1/namespaces"))
            .json(&json!({"metadata": {"name": "kept"}})),
    )
    .await;
    s.restart().await.unwrap();
    assert_eq!(s.base_url(), b);
    let (code, _) = send(c.get(format!("{b}/api/v1/namespaces/kept"))).await;
    assert_eq!(code, 200);
    s.pause().await;
    assert!(http().get(format!("{b}/version")).send().await.is_err());
    s.resume().await.unwrap();
    let (code, _) = send(http().get(format!("{b}/version"))).await;
    assert_eq!(code, 200);
    s.shutdown().await;
}

/// core/v1 and events.k8s.io/v1 events are one store: a watch on one view sees writes made
/// through the other, converted; both serve the event printer's Table.
#[tokio::test]
async fn events_are_one_store_in_two_shapes() {
    let s = start().await;
    let b = s.base_url();
    let c = http();
    let core = format!("{b}/api/v1/namespaces/default/events");
    let new = format!("{b}/apis/events.k8s.io/v1/namespaces/default/events");
    let watch = c
        .get(format!(
            "{new}?watch=true&fieldSelector=regarding.name%3Dmi"
        ))
        .send()
        .await
        .unwrap();
    let (code, v) = send(c.post(&core).json(&json!({
        "metadata": {"name": "mi.1"}, "type": "Warning", "reason": "Failed", "message": "boom",
        "involvedObject": {"kind": "ModelImport", "name": "mi", "namespace": "default"},
        "source": {"component": "ctl"}, "count": 4,
        "firstTimestamp": "2026-01-01T00:00:00Z", "lastTimestamp": "2026-01-01T00:00:00Z"
    })))
    .await;
    assert_eq!(code, 201, "{v}");
    assert_eq!(v["apiVersion"], "v1");
    let (code, _) = send(c.post(&core).json(&json!({
        "metadata": {"name": "unrelated.1"}, "involvedObject": {"kind": "Pod", "name": "p"}
    })))
    .await;
    assert_eq!(code, 201);
    let lines = read_lines(watch, 1).await;
    let e = &lines[0]["object"];
    assert_eq!(lines[0]["type"], "ADDED");
    assert_eq!(e["apiVersion"], "events.k8s.io/v1");
    assert_eq!(e["note"], "boom");
    assert_eq!(e["regarding"]["name"], "mi");
    assert_eq!(e["deprecatedCount"], 4);
    assert_eq!(e["deprecatedSource"]["component"], "ctl");
    // A merge patch through the new view (what kube-rs's Recorder sends for a repeat).
    let (code, v) = send(
        c.patch(format!("{new}/mi.1"))
            .header("content-type", "application/merge-patch+json")
            .body(r#"{"series":{"count":5,"lastObservedTime":"2026-01-01T00:05:00.000000Z"}}"#),
    )
    .await;
    assert_eq!(code, 200, "{v}");
    let (_, v) = send(c.get(format!("{core}/mi.1"))).await;
    assert_eq!(
        (v["count"].as_i64(), v["message"].as_str()),
        (Some(5), Some("boom"))
    );
    let (code, v) = send(c.get(format!(
        "{core}?fieldSelector=involvedObject.kind%3DModelImport%2Ctype%3DWarning"
    )))
    .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["items"].as_array().unwrap().len(), 1);
    let (code, _) = send(c.get(format!("{core}?fieldSelector=spec.x%3D1"))).await;
    assert_eq!(code, 400);
    let (_, t) = send(
        c.get(&new)
            .header("accept", "application/json;as=Table;v=v1;g=meta.k8s.io"),
    )
    .await;
    let cols: Vec<&str> = t["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(&cols[..4], ["Last Seen", "Type", "Reason", "Object"]);
    let row = t["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["cells"][9] == "mi.1")
        .unwrap();
    assert_eq!(row["cells"][3], "modelimport/mi");
    assert_eq!(row["cells"][8], 5);
    s.shutdown().await;
}
