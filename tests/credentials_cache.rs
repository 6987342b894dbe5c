//! The controller holds only the Secrets it reads keys from, on the real control plane: the
//! controller binary converges an import whose Secret it marks with its label, then 150
//! unrelated Secrets of 128 KiB (19 MiB) appear in another namespace. Its `/metrics` still counts
//! one cached Secret, and its resident memory grows by less than 2 MiB (before the label
//! selector it grew by about 20 MiB: every Secret of the cluster was cached).
//!
//! Real kube-apiserver only; CI always builds the control plane (without it the test fails,
//! saying how to build it).

use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::ByteString;
use kube::api::{Api, PostParams};
use kube::ResourceExt;
use modelstudio_controller::crd::ModelImport;
use modelstudio_core::credentials::{CREDENTIALS_LABEL, PROTECTED_VALUE};
use modelstudio_simulator::{RunningSimulator, SimulatorConfig};
use modelstudio_testbed::metrics::samples;
use modelstudio_testbed::{
    api_key_secret, free_port, install_crd, Cluster, ControllerCommand, ImportBuilder, TempDir,
};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_modelstudio-controller");
const CRD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/crds/modelimport.yaml");
const NS: &str = "ml-team";
const NOISE_NS: &str = "web-team";
const KEY: &str = "sk-cache-test";
const NOISE_SECRETS: usize = 150;
const NOISE_SIZE: usize = 128 * 1024;
/// What the unrelated Secrets may add to the controller's resident memory.
const GROWTH_LIMIT_KIB: u64 = 2 * 1024;
const CONVERGE: Duration = Duration::from_secs(60);

/// The process's resident memory in KiB (`VmRSS` of /proc/PID/status).
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// The highest resident memory over a few samples, a quarter second apart.
async fn settled_rss_kib(pid: u32) -> u64 {
    let mut most = 0;
    for _ in 0..8 {
        most = most.max(rss_kib(pid));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    most
}

/// `modelstudio_secrets_cached` from the controller's /metrics.
async fn secrets_cached(metrics_addr: &str) -> Option<f64> {
    let text = reqwest::get(format!("http://{metrics_addr}/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    samples(&text)
        .into_iter()
        .find(|s| s.name == "modelstudio_secrets_cached")
        .map(|s| s.value)
}

async fn until<T, F, Fut>(what: &str, check: F) -> T
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + CONVERGE;
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn namespace(name: &str) -> Namespace {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name},
    }))
    .expect("a namespace")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unrelated_secrets_never_reach_the_controllers_memory() {
    let dir = TempDir::new("credentials-cache");
    let cluster = Cluster::start().await.expect("the control plane starts");
    let admin = cluster.client(NS).await.expect("an admin client");
    install_crd(&admin, Path::new(CRD))
        .await
        .expect("the CRD is installed");
    let namespaces: Api<Namespace> = Api::all(admin.clone());
    for ns in [NS, NOISE_NS] {
        namespaces
            .create(&PostParams::default(), &namespace(ns))
            .await
            .expect("the namespace");
    }
    let secrets: Api<Secret> = Api::namespaced(admin.clone(), NS);
    let key: Secret = serde_json::from_value(api_key_secret("dashscope", KEY)).unwrap();
    secrets.create(&PostParams::default(), &key).await.unwrap();

    let sim = RunningSimulator::start(SimulatorConfig {
        pending_duration: Duration::from_millis(100),
        running_duration: Duration::from_millis(300),
        api_keys: vec![KEY.into()],
        ..Default::default()
    })
    .await
    .expect("the simulator");
    let metrics_addr = format!("127.0.0.1:{}", free_port().unwrap());
    let kubeconfig = dir.0.join("kubeconfig");
    cluster
        .write_kubeconfig(&kubeconfig, "default")
        .expect("the kubeconfig is written");
    let controller = ControllerCommand::new(BIN, &kubeconfig, &sim.base_url())
        .flags(&["--metrics-addr", &metrics_addr])
        .spawn("controller", &dir.0)
        .expect("the controller starts");
    let pid = controller.pid();

    let imports: Api<ModelImport> = Api::namespaced(admin.clone(), NS);
    let import: ModelImport = ImportBuilder::new("a").secret("dashscope").build();
    imports
        .create(&PostParams::default(), &import)
        .await
        .unwrap();
    until("a is Ready", || async {
        let a = imports.get("a").await.ok()?;
        a.status?
            .conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
            .then_some(())
    })
    .await;
    let marked = secrets.get("dashscope").await.unwrap();
    assert!(
        marked.labels().contains_key(CREDENTIALS_LABEL),
        "the key's Secret carries the controller's label: {:?}",
        marked.labels()
    );
    until("one Secret cached", || async {
        (secrets_cached(&metrics_addr).await? == 1.0).then_some(())
    })
    .await;
    let before = settled_rss_kib(pid).await;

    // 19 MiB of Secrets the controller has no business with.
    let noise: Api<Secret> = Api::namespaced(admin.clone(), NOISE_NS);
    let filler = ByteString(vec![b'x'; NOISE_SIZE]);
    let written = Instant::now();
    for i in 0..NOISE_SECRETS {
        let secret = Secret {
            metadata: kube::api::ObjectMeta {
                name: Some(format!("tls-{i}")),
                ..Default::default()
            },
            data: Some(BTreeMap::from([("blob".to_string(), filler.clone())])),
            ..Default::default()
        };
        noise
            .create(&PostParams::default(), &secret)
            .await
            .expect("an unrelated Secret");
    }
    let written = written.elapsed();
    // Long enough for any watch that selected them to have delivered them all.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = settled_rss_kib(pid).await;
    let cached = secrets_cached(&metrics_addr).await;
    let growth = after.saturating_sub(before);
    println!(
        "credentials cache: {NOISE_SECRETS} unrelated Secrets of {} KiB ({:.1} MiB) written in {:.1} s; \
         controller resident memory {:.1} MiB before, {:.1} MiB after (+{growth} KiB); \
         Secrets cached: {cached:?}",
        NOISE_SIZE / 1024,
        (NOISE_SECRETS * NOISE_SIZE) as f64 / (1024.0 * 1024.0),
        written.as_secs_f64(),
        before as f64 / 1024.0,
        after as f64 / 1024.0,
    );
    assert_eq!(cached, Some(1.0), "only the key's Secret is held");
    assert!(
        growth < GROWTH_LIMIT_KIB,
        "the controller's memory grew by {growth} KiB when unrelated Secrets appeared"
    );
    assert_eq!(
        secrets
            .get("dashscope")
            .await
            .unwrap()
            .labels()
            .get(CREDENTIALS_LABEL)
            .map(String::as_str),
        Some(PROTECTED_VALUE),
        "a job needs the key: the Secret is protected"
    );
    drop(controller);
}
