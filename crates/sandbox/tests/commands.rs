//! The commands of `modelstudio-sandbox` as a user runs them: the binary as its own process,
//! driven with real kubectl 1.37 (`scripts/test.sh` installs it). Every wait is bounded.

use modelstudio_testbed::{require_kubectl, table, Kubectl, Proc, TempDir};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_modelstudio-sandbox");
/// The placeholder key of examples/secret.yaml: it must never show up in any output.
const EXAMPLE_KEY: &str = "sk-sandbox-demo";

/// The repository root, where `examples/` and `crds/` are.
fn repo_root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

#[test]
fn apiserver_command_serves_kubectl_and_stops_on_sigterm() {
    require_kubectl();
    let dir = TempDir::new("apiserver");
    let kubeconfig = dir.0.join("api.kubeconfig");
    let mut cmd = Command::new(BIN);
    cmd.args([
        "apiserver",
        "--addr",
        "127.0.0.1:0",
        "--kubeconfig",
        &kubeconfig.display().to_string(),
    ]);
    let mut proc = Proc::spawn("apiserver", cmd, &dir.0).expect("start the apiserver subcommand");
    // The real control plane takes some seconds to start.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !kubeconfig.exists() {
        assert!(Instant::now() < deadline, "no kubeconfig:\n{}", proc.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    let k = Kubectl::new(kubeconfig.clone(), &dir.0);
    k.run(&[
        "apply",
        "-f",
        &repo_root().join("crds").display().to_string(),
    ]);
    let out = k.run(&["get", "crd", "-o", "name"]);
    assert!(out.contains("modelimports.modelstudio.io"), "{out}");
    stop_cleanly(&mut proc);
    assert!(!kubeconfig.exists(), "the kubeconfig is removed on exit");
}

#[test]
fn sandbox_command_runs_the_examples_and_stops_on_sigterm() {
    sandbox_runs_the_examples("sandbox", &[]);
}

#[test]
fn sandbox_command_runs_on_the_real_control_plane_when_built() {
    if !modelstudio_testbed::available() {
        println!("SKIPPED: the real control plane is not built (scripts/build-testbed.sh)");
        return;
    }
    sandbox_runs_the_examples("sandbox-real", &["--real-control-plane"]);
}

fn sandbox_runs_the_examples(name: &str, extra: &[&str]) {
    require_kubectl();
    let dir = TempDir::new(name);
    let kubeconfig = dir.0.join("sandbox.kubeconfig");
    let mut cmd = Command::new(BIN);
    cmd.current_dir(repo_root())
        .args([
            "sandbox",
            "--apply-examples",
            "--apiserver-addr",
            "127.0.0.1:0",
            "--simulator-addr",
            "127.0.0.1:0",
            "--metrics-addr",
            "127.0.0.1:0",
            "--pending-duration",
            "500ms",
            "--running-duration",
            "1s",
            "--poll-interval",
            "500ms",
            "--refresh-interval",
            "200ms",
            "--kubeconfig",
            &kubeconfig.display().to_string(),
        ])
        .args(extra)
        .env("RUST_LOG", "info")
        .env_remove("DASHSCOPE_API_KEY");
    let mut proc = Proc::spawn("sandbox", cmd, &dir.0).expect("start the sandbox subcommand");
    // The real control plane takes some seconds to start.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !kubeconfig.exists() {
        assert!(Instant::now() < deadline, "no kubeconfig:\n{}", proc.log());
        assert!(proc.running(), "the sandbox exited:\n{}", proc.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    let k = Kubectl::new(kubeconfig.clone(), &dir.0);
    k.poll_jsonpath(
        "mimport/qwen3-lora",
        "{.metadata.name}",
        Duration::from_secs(20),
        |s| s == "qwen3-lora",
    );
    k.run(&[
        "wait",
        "mimport/qwen3-lora",
        "--for=condition=Ready",
        "--timeout=30s",
    ]);
    k.run(&[
        "wait",
        "mimport/qwen3-lora-broken",
        "--for=condition=Stalled",
        "--timeout=30s",
    ]);
    let rows = table(&k.run(&["get", "mimport"]));
    assert_eq!(rows.len(), 3, "{rows:?}");
    // examples/modeldeployment.yaml deploys the imported model.
    k.run(&[
        "wait",
        "mdeploy/qwen3-lora",
        "--for=condition=Ready",
        "--timeout=60s",
    ]);
    // The table shows the outcome, as a person would see it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !["JobSucceeded", "JobFailed", "DeploymentRunning"]
        .iter()
        .all(|reason| proc.log().contains(reason))
    {
        assert!(Instant::now() < deadline, "no final table:\n{}", proc.log());
        std::thread::sleep(Duration::from_millis(100));
    }

    stop_cleanly(&mut proc);
    let log = proc.log();
    assert!(log.contains("export KUBECONFIG="), "{log}");
    assert!(log.contains("applied modelimport/qwen3-lora"), "{log}");
    assert!(log.contains("applied modeldeployment/qwen3-lora"), "{log}");
    assert!(log.contains("NAME") && log.contains("PHASE"), "{log}");
    assert!(log.contains("mdeploy") && log.contains("mimport"), "{log}");
    assert!(log.contains("sandbox stopped"), "{log}");
    assert!(
        !log.contains(EXAMPLE_KEY),
        "the API key was printed:\n{log}"
    );
    assert!(!kubeconfig.exists(), "the kubeconfig is removed on exit");
}

/// SIGTERM, then a successful exit within 15 s.
fn stop_cleanly(proc: &mut Proc) {
    proc.terminate().expect("kill -TERM");
    let status = proc.wait_for_exit(Duration::from_secs(15));
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}\n{}",
        proc.log()
    );
}

/// One HTTP/1.0 GET to 127.0.0.1:`port`; the whole answer, or None while nothing listens.
fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(conn, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut answer = String::new();
    conn.read_to_string(&mut answer).ok()?;
    Some(answer)
}

#[test]
fn simulator_command_serves_the_control_api_and_stops_on_sigterm() {
    let dir = TempDir::new("simulator");
    let port = modelstudio_testbed::free_port().expect("a free port");
    let mut cmd = Command::new(BIN);
    cmd.args(["simulator", "--addr", &format!("127.0.0.1:{port}")]);
    let mut proc = Proc::spawn("simulator", cmd, &dir.0).expect("start the simulator command");
    let deadline = Instant::now() + Duration::from_secs(20);
    let answer = loop {
        if let Some(answer) = http_get(port, "/_simulator/stats") {
            break answer;
        }
        assert!(Instant::now() < deadline, "not serving:\n{}", proc.log());
        assert!(proc.running(), "the simulator exited:\n{}", proc.log());
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(answer.starts_with("HTTP/1.0 200"), "{answer}");
    assert!(answer.contains("uptime_ms"), "{answer}");
    stop_cleanly(&mut proc);
}
