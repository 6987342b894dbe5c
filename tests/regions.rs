//! One controller, two regions: ModelImports whose credentials Secrets name two regions and
//! workspaces are served at once, each by its own region's host (two simulators that each refuse
//! the other's key), with the workspace header; a Secret edited in place to another region never
//! lets a deletion read a NotFound there as "gone". The real control plane, the controller binary
//! and kubectl, as in `e2e.rs`; every wait is bounded.

use modelstudio_controller::modelstudio::{ApiError, ApiKey, HttpClientConfig, ImportJobs};
use modelstudio_simulator::{RunningSimulator, SimulatorConfig};
use modelstudio_testbed::{require_kubectl, Kubectl, Proc, TempDir};
use std::process::Command;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_modelstudio-controller");
const CRDS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/crds/");

fn region_sim(key: &str) -> SimulatorConfig {
    SimulatorConfig {
        pending_duration: Duration::from_millis(500),
        running_duration: Duration::from_secs(1),
        api_keys: vec![key.to_string()],
        ..SimulatorConfig::default()
    }
}

fn secret(name: &str, key: &str, region: &str, workspace: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\nstringData:\n  api-key: {key}\n  region: {region}\n  workspace: {workspace}\n---\n"
    )
}

fn import(name: &str, secret: &str) -> String {
    format!(
        "apiVersion: modelstudio.io/v1alpha1\nkind: ModelImport\nmetadata:\n  name: {name}\nspec:\n  baseModel: qwen3-32b\n  weightType: lora\n  storage:\n    bucketName: models-bucket\n    objectKey: models/{name}/\n  apiKeySecretRef:\n    name: {secret}\n---\n"
    )
}

#[test]
fn one_controller_serves_two_regions_and_a_moved_secret_never_releases_a_job() {
    require_kubectl();
    let dir = TempDir::new("regions");
    let rt = modelstudio_testbed::test_runtime();
    let cluster = rt
        .block_on(modelstudio_testbed::Cluster::start())
        .expect("the API server");
    let kubeconfig = dir.0.join("kubeconfig");
    cluster
        .write_kubeconfig(&kubeconfig, "default")
        .expect("kubeconfig");
    let beijing = rt
        .block_on(RunningSimulator::start(region_sim("sk-bj=llm-beijing")))
        .expect("Beijing's simulator");
    let singapore = rt
        .block_on(RunningSimulator::start(region_sim("sk-sg=llm-singapore")))
        .expect("Singapore's simulator");
    // A third region where Beijing's key and workspace work: there, its job is simply not found.
    let virginia = rt
        .block_on(RunningSimulator::start(region_sim("sk-bj=llm-beijing")))
        .expect("Virginia's simulator");

    // Each region refuses the other's key, as the real service does (reference §1.2).
    let client = modelstudio_controller::modelstudio::HttpClient::new(HttpClientConfig {
        endpoint: beijing.base_url(),
        timeout: Duration::from_secs(5),
        user_agent: "regions-test".into(),
    })
    .unwrap();
    let sg_key = ApiKey::new("sk-sg").unwrap();
    let e = rt
        .block_on(ImportJobs::get(&client, &sg_key, "any"))
        .unwrap_err();
    assert!(matches!(e, ApiError::InvalidApiKey(_)), "{e}");

    let k = Kubectl::new(kubeconfig.clone(), &dir.0);
    k.run(&["apply", "-f", CRDS]);
    k.run(&[
        "wait",
        "--for=condition=Established",
        "crd/modelimports.modelstudio.io",
        "--timeout=30s",
    ]);
    // The default endpoint answers nothing: every call must go to a region's host.
    let mut cmd = Command::new(BIN);
    cmd.args([
        "run",
        "--endpoint",
        "http://127.0.0.1:9",
        "--region-endpoint",
        &format!("cn-beijing={}", beijing.base_url()),
        "--region-endpoint",
        &format!("ap-southeast-1={}", singapore.base_url()),
        "--region-endpoint",
        &format!("us-east-1={}", virginia.base_url()),
        "--poll-interval",
        "1s",
        "--backoff-base",
        "500ms",
        "--metrics-addr",
        "127.0.0.1:0",
    ])
    .env("KUBECONFIG", &kubeconfig)
    .env("RUST_LOG", "info")
    .env_remove("DASHSCOPE_API_KEY")
    .env_remove("MODELSTUDIO_NAMESPACE")
    .env_remove("MODELSTUDIO_ENDPOINT")
    .env_remove("MODELSTUDIO_REGION_ENDPOINTS");
    let controller = Proc::spawn("controller", cmd, &dir.0).expect("the controller");

    let manifests = dir.0.join("two-regions.yaml");
    std::fs::write(
        &manifests,
        [
            secret("bj", "sk-bj", "cn-beijing", "llm-beijing"),
            secret("sg", "sk-sg", "ap-southeast-1", "llm-singapore"),
            import("in-beijing", "bj"),
            import("in-singapore", "sg"),
        ]
        .concat(),
    )
    .unwrap();
    k.run(&["apply", "-f", manifests.to_str().unwrap()]);
    for name in ["in-beijing", "in-singapore"] {
        k.run(&[
            "wait",
            &format!("mimport/{name}"),
            "--for=condition=Ready",
            "--timeout=60s",
        ]);
    }

    // Each job was made in its own region and workspace, with the workspace header, and no call
    // was refused anywhere.
    for (sim, workspace) in [(&beijing, "llm-beijing"), (&singapore, "llm-singapore")] {
        let jobs = sim.simulator.jobs();
        assert_eq!(jobs.len(), 1, "{jobs:?}");
        assert_eq!(jobs[0].workspace_id, workspace);
        // The controller's calls (this test's own probe of Beijing aside).
        let requests: Vec<_> = sim
            .simulator
            .requests()
            .into_iter()
            .filter(|r| r.user_agent.as_deref() != Some("regions-test"))
            .collect();
        assert!(!requests.is_empty());
        for r in &requests {
            assert_eq!(r.status, 200, "{r:?}");
            assert_eq!(r.workspace_header.as_deref(), Some(workspace), "{r:?}");
        }
    }
    let bj_job = beijing.simulator.jobs()[0].job_id.clone();
    let job_of = |name: &str| {
        k.jsonpath(&format!("mimport/{name}"), "{.status.jobId}")
            .stdout
    };
    assert_eq!(job_of("in-beijing"), bj_job);

    // Secret bj is moved to Virginia in place, where the key works but Beijing's job does not
    // exist: the deletion of its import must not take a NotFound there as the job being gone.
    k.run(&[
        "patch",
        "secret",
        "bj",
        "--type=merge",
        "-p",
        r#"{"stringData":{"region":"us-east-1"}}"#,
    ]);
    k.run(&["delete", "mimport/in-beijing", "--wait=false"]);
    let mut last = String::new();
    let shown = Instant::now();
    while last != "WorkspaceChanged" {
        assert!(
            shown.elapsed() < Duration::from_secs(30),
            "the import shows {last:?}, not why it cannot delete; Virginia saw {:?}",
            virginia.simulator.requests()
        );
        std::thread::sleep(Duration::from_millis(200));
        last = k
            .jsonpath(
                "mimport/in-beijing",
                r#"{.status.conditions[?(@.type=="Ready")].reason}"#,
            )
            .stdout;
    }
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(beijing.simulator.stats().delete.total, 0);
    assert!(!beijing.simulator.jobs()[0].deleted);
    assert_eq!(
        k.jsonpath("mimport/in-beijing", "{.metadata.name}").stdout,
        "in-beijing",
        "released without deleting its job"
    );

    // Back to Beijing: the deletion completes there, and only there.
    k.run(&[
        "patch",
        "secret",
        "bj",
        "--type=merge",
        "-p",
        r#"{"stringData":{"region":"cn-beijing"}}"#,
    ]);
    k.run(&[
        "wait",
        "mimport/in-beijing",
        "--for=delete",
        "--timeout=60s",
    ]);
    assert!(beijing.simulator.jobs()[0].deleted);
    // Nothing was deleted, nor made, anywhere else: Virginia only answered NotFound to the
    // deletes tried while the Secret named it.
    for sim in [&singapore, &virginia] {
        let stats = sim.simulator.stats();
        assert_eq!(stats.delete.status(200), 0, "{stats:?}");
    }
    assert_eq!(singapore.simulator.stats().create.total, 1);
    assert!(virginia.simulator.stats().delete.code("NotFound") >= 1);
    assert_eq!(virginia.simulator.stats().create.total, 0);
    let log = controller.log();
    for secret in ["sk-bj", "sk-sg"] {
        assert!(!log.contains(secret), "the key leaked into the log");
    }
    drop(controller);
}
