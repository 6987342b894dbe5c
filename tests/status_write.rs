//! How the controller writes the status, judged on the real kube-apiserver (the embedded API
//! server where the control plane is not built): one server-side apply as `modelstudio-controller`
//! that owns its fields, removes what it no longer sets, and clears fields an earlier version of
//! the controller wrote with a merge patch.

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::ResourceExt;
use modelstudio_controller::crd::ModelImport;
use modelstudio_simulator::{RunningSimulator, SimulatorConfig};
use modelstudio_testbed::{api_key_secret, install_crd, Cluster, ControllerCommand, ImportBuilder};
use serde_json::json;
use std::path::Path;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_modelstudio-controller");
const CRD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/crds/modelimport.yaml");
const NS: &str = "default";
const KEY: &str = "sk-status-write-0000";

fn is_ready(m: &ModelImport) -> bool {
    m.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
    })
}

async fn wait_ready(api: &Api<ModelImport>, name: &str, limit: Duration) -> ModelImport {
    let start = Instant::now();
    loop {
        let m = api.get(name).await.expect("the import can be read");
        if is_ready(&m) {
            return m;
        }
        assert!(
            start.elapsed() < limit,
            "{name} not Ready within {limit:?}: {:?}",
            m.status
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_is_applied_server_side_owned_and_pruned() {
    let cluster = Cluster::start().await.expect("a Kubernetes API server");
    let dir = std::env::temp_dir().join(format!("msc-status-write-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    cluster.write_kubeconfig(&kubeconfig, NS).unwrap();
    let client = cluster.client(NS).await.unwrap();
    install_crd(&client, Path::new(CRD)).await.unwrap();
    let secret: Secret = serde_json::from_value(api_key_secret("dashscope", KEY)).unwrap();
    Api::<Secret>::namespaced(client.clone(), NS)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let sim = RunningSimulator::start(SimulatorConfig {
        pending_duration: Duration::from_millis(200),
        running_duration: Duration::from_millis(300),
        api_keys: vec![KEY.into()],
        ..Default::default()
    })
    .await
    .unwrap();
    let imports: Api<ModelImport> = Api::namespaced(client.clone(), NS);

    // What an earlier version left: a create intent written with a merge patch by another
    // manager, long enough ago that the controller looks for the job, finds none and creates it.
    let upgraded: ModelImport = ImportBuilder::new("upgraded").secret("dashscope").build();
    imports
        .create(&PostParams::default(), &upgraded)
        .await
        .unwrap();
    let old = PatchParams {
        field_manager: Some("modelstudio-controller-v0".into()),
        ..Default::default()
    };
    imports
        .patch_status(
            "upgraded",
            &old,
            &Patch::Merge(json!({"status": {"phase": "Pending", "createAttemptedAt": "2026-01-01T00:00:00Z"}})),
        )
        .await
        .unwrap();
    let fresh: ModelImport = ImportBuilder::new("fresh").secret("dashscope").build();
    imports
        .create(&PostParams::default(), &fresh)
        .await
        .unwrap();

    let mut controller = ControllerCommand::new(BIN, &kubeconfig, &sim.base_url())
        .spawn("controller", &dir)
        .unwrap();
    for name in ["fresh", "upgraded"] {
        let m = wait_ready(&imports, name, Duration::from_secs(60)).await;
        let status = m.status.clone().unwrap();
        assert!(status.job_id.is_some(), "{name}: {status:?}");
        // The intent is gone once the job is recorded: pruned by the apply for "fresh", cleared
        // by name for "upgraded", whose field another manager owned.
        assert_eq!(status.create_attempted_at, None, "{name}: {status:?}");
        let json = serde_json::to_value(&m).unwrap();
        assert!(
            json["status"].get("createAttemptedAt").is_none(),
            "{name}: {json}"
        );
    }
    assert_eq!(sim.simulator.stats().create.total, 2, "one job per import");

    // The fields' owners, as the real kube-apiserver keeps them.
    let m = imports.get("fresh").await.unwrap();
    let entries: Vec<(String, String, String)> = m
        .managed_fields()
        .iter()
        .map(|e| {
            (
                e.manager.clone().unwrap_or_default(),
                e.operation.clone().unwrap_or_default(),
                e.subresource.clone().unwrap_or_default(),
            )
        })
        .collect();
    println!("managedFields of fresh: {entries:?}");
    assert!(
        entries.contains(&(
            "modelstudio-controller".into(),
            "Apply".into(),
            "status".into()
        )),
        "{entries:?}"
    );
    // The finalizer is written under the controller's name too, not as "unknown".
    assert!(
        entries.contains(&(
            "modelstudio-controller".into(),
            "Update".into(),
            String::new()
        )),
        "{entries:?}"
    );
    // Ownership: another writer of the status is told whose field it would take.
    let err = imports
        .patch_status(
            "fresh",
            &PatchParams::apply("someone-else"),
            &Patch::Apply(json!({
                "apiVersion": "modelstudio.io/v1alpha1", "kind": "ModelImport",
                "status": {"phase": "Failed"}
            })),
        )
        .await
        .expect_err("a second manager conflicts on the controller's field");
    let kube::Error::Api(status) = &err else {
        panic!("expected the API server's refusal, got {err}");
    };
    let text = status.message.clone();
    assert_eq!(
        (status.code, status.reason.as_str()),
        (409, "Conflict"),
        "{text}"
    );
    assert!(text.contains("modelstudio-controller"), "{text}");
    assert!(text.contains(".status.phase"), "{text}");
    controller.stop(Duration::from_secs(10));
    assert!(
        !controller.log().contains(KEY),
        "the API key never shows in the log"
    );
}
