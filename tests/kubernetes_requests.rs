//! What the controller asks of the Kubernetes API per ModelImport, counted by the controller's
//! own `modelstudio_kubernetes_requests_total`: its own status writes wake no reconcile, and
//! the API key Secrets come from a watch, not a GET per reconcile. On the real control plane.

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};
use modelstudio_controller::crd::{definition, ModelImport};
use modelstudio_testbed::metrics::{samples, scrape, sum, Sample};
use modelstudio_testbed::{
    api_key_secret, apply_crd, free_port, ControllerCommand, ImportBuilder, ProcessBed,
};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_modelstudio-controller");
const NS: &str = "default";
const IMPORTS: usize = 20;

fn requests(all: &[Sample], verb: &str, resource: &str, subresource: &str) -> f64 {
    sum(
        all,
        "modelstudio_kubernetes_requests_total",
        &[
            ("verb", verb),
            ("resource", resource),
            ("subresource", subresource),
        ],
    )
}

#[test]
fn own_status_writes_wake_no_reconcile_and_keys_come_from_a_watch() {
    let bed = ProcessBed::start("kubernetes-requests", NS);
    let (rt, client, sim, dir) = (&bed.rt, &bed.client, &bed.sim, &bed.dir);
    rt.block_on(apply_crd(client, &definition()))
        .expect("the CRD");
    let addr = format!("127.0.0.1:{}", free_port().expect("a free port"));
    // No poll falls in the test: every reconcile counted is one a change asked for.
    let mut controller = ControllerCommand::new(BIN, &bed.kubeconfig, &sim.base_url())
        .flags(&["--metrics-addr", &addr, "--poll-interval", "10m"])
        .spawn("controller", &dir.0)
        .expect("the controller starts");

    let imports: Api<ModelImport> = Api::namespaced(client.clone(), NS);
    rt.block_on(async {
        let secrets: Api<Secret> = Api::namespaced(client.clone(), NS);
        let secret = serde_json::from_value(api_key_secret("dashscope", "sk-requests")).unwrap();
        secrets
            .create(&PostParams::default(), &secret)
            .await
            .unwrap();
        // The Secret watch has filled its cache once the controller serves requests.
        for _ in 0..100 {
            if scrape(&addr).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for i in 0..IMPORTS {
            let import: ModelImport = ImportBuilder::new(&format!("import-{i:02}"))
                .secret("dashscope")
                .build();
            imports
                .create(&PostParams::default(), &import)
                .await
                .unwrap();
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let with_job = || {
        rt.block_on(imports.list(&Default::default()))
            .map(|l| {
                l.items
                    .iter()
                    .filter(|i| i.status.as_ref().is_some_and(|s| s.job_id.is_some()))
                    .count()
            })
            .unwrap_or(0)
    };
    while with_job() < IMPORTS {
        assert!(
            Instant::now() < deadline,
            "not every import got a job:\n{}",
            controller.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Time for any reconcile a write would wake to happen.
    std::thread::sleep(Duration::from_secs(3));
    let all = samples(&rt.block_on(scrape(&addr)).expect("the metrics"));
    controller.stop(Duration::from_secs(5));

    let reconciles = sum(&all, "modelstudio_reconciliations_total", &[]);
    let status_writes = requests(&all, "patch", "modelimports", "status");
    let finalizers = requests(&all, "patch", "modelimports", "");
    eprintln!(
        "{IMPORTS} imports: {reconciles} reconciles, {status_writes} status writes, {finalizers} finalizer patches, Secrets: {} get, {} list, {} watch, {} patch",
        requests(&all, "get", "secrets", ""),
        requests(&all, "list", "secrets", ""),
        requests(&all, "watch", "secrets", ""),
        requests(&all, "patch", "secrets", ""),
    );
    // Each import: the reconcile that adds the finalizer, and the one its event wakes, which
    // records the intent, creates the job and records it. The two status writes of that pass
    // wake nothing (they would add two reconciles each).
    assert_eq!(finalizers, IMPORTS as f64);
    assert!(
        status_writes >= 2.0 * IMPORTS as f64,
        "{status_writes} status writes"
    );
    assert!(
        reconciles <= 2.5 * IMPORTS as f64,
        "{reconciles} reconciles for {IMPORTS} imports: own writes woke reconciles"
    );
    // The key is read from the watch cache: a GET of the Secret on its first use (which marks
    // it with the controller's label, a patch, for the watch to hold it) and to protect it
    // (the finalizer, the second patch), each once.
    assert!(requests(&all, "watch", "secrets", "") >= 1.0);
    assert!(
        requests(&all, "get", "secrets", "") <= 2.0,
        "Secret read per reconcile"
    );
    assert_eq!(requests(&all, "patch", "secrets", ""), 2.0);
}
