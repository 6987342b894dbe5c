//! Past one replica: controllers with disjoint `--selector`s split the ModelImports between them
//! and never touch each other's objects or jobs; a selector the API server cannot parse stops
//! the controller at start with what is wrong. On the real control plane.

use k8s_openapi::api::core::v1::{Event, Secret};
use kube::api::{Api, DynamicObject, ListParams, PostParams};
use modelstudio_controller::crd::{definition, ModelImport};
use modelstudio_testbed::{
    api_key_secret, apply_crd, run_bounded, ControllerCommand, ImportBuilder, ProcessBed,
};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_modelstudio-controller");
const NS: &str = "default";

#[test]
fn two_controllers_with_disjoint_selectors_never_touch_each_others_imports() {
    let bed = ProcessBed::start("sharding", NS);
    let (rt, client, sim, dir) = (&bed.rt, &bed.client, &bed.sim, &bed.dir);
    let (kubeconfig, cluster) = (&bed.kubeconfig, &bed.cluster);
    rt.block_on(apply_crd(client, &definition()))
        .expect("the CRD");

    // A selector the API server refuses stops the controller at once.
    let bad = ControllerCommand::new(BIN, kubeconfig, &sim.base_url())
        .flags(&["--selector", "shard in (a"]);
    let out = run_bounded(bad.command(), Duration::from_secs(60));
    assert_eq!(out.status.and_then(|s| s.code()), Some(1), "{out:?}");
    assert!(
        out.stderr.contains("--selector is not a label selector"),
        "{}",
        out.stderr
    );

    rt.block_on(async {
        let secrets: Api<Secret> = Api::namespaced(client.clone(), NS);
        let secret = serde_json::from_value(api_key_secret("dashscope", "sk-sharding")).unwrap();
        secrets
            .create(&PostParams::default(), &secret)
            .await
            .unwrap();
        let imports: Api<DynamicObject> = Api::namespaced_with(
            client.clone(),
            NS,
            &kube::api::ApiResource::erase::<ModelImport>(&()),
        );
        for (name, shard) in [
            ("a-1", Some("a")),
            ("a-2", Some("a")),
            ("b-1", Some("b")),
            ("none", None),
        ] {
            let mut import = ImportBuilder::new(name).secret("dashscope").json();
            if let Some(shard) = shard {
                import["metadata"]["labels"] = serde_json::json!({ "shard": shard });
            }
            imports
                .create(
                    &PostParams::default(),
                    &serde_json::from_value(import).unwrap(),
                )
                .await
                .unwrap();
        }
    });
    let mut shards: Vec<_> = ["a", "b"]
        .into_iter()
        .map(|shard| {
            ControllerCommand::new(BIN, kubeconfig, &sim.base_url())
                .flags(&["--selector", &format!("shard={shard}")])
                .env("POD_NAME", &format!("controller-{shard}"))
                .spawn(&format!("controller-{shard}"), &dir.0)
                .expect("a controller starts")
        })
        .collect();

    let typed: Api<ModelImport> = Api::namespaced(client.clone(), NS);
    let ready = |name: &str| {
        rt.block_on(typed.get(name))
            .ok()
            .and_then(|m| m.status)
            .is_some_and(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True")
            })
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !["a-1", "a-2", "b-1"].iter().all(|n| ready(n)) {
        assert!(
            Instant::now() < deadline,
            "not all Ready:\n{}\n{}",
            shards[0].log(),
            shards[1].log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // The unlabelled one is nobody's: no finalizer, no job, no status written.
    let none = rt.block_on(typed.get("none")).unwrap();
    assert!(none.metadata.finalizers.unwrap_or_default().is_empty());
    assert_eq!(none.status.and_then(|s| s.job_id), None);
    assert_eq!(sim.simulator.jobs().len(), 3, "one job per selected import");
    // Every event of an import comes from its own shard's controller.
    let events: Api<Event> = Api::namespaced(client.clone(), NS);
    let events = rt.block_on(events.list(&ListParams::default())).unwrap();
    let mut seen = 0;
    for e in &events.items {
        if e.involved_object.kind.as_deref() != Some("ModelImport") {
            continue;
        }
        let name = e.involved_object.name.as_deref().unwrap_or_default();
        let want = match name.split('-').next() {
            Some("a") => "controller-a",
            Some("b") => "controller-b",
            _ => panic!("an event on {name}: {e:?}"),
        };
        assert_eq!(e.reporting_instance.as_deref(), Some(want), "{e:?}");
        seen += 1;
    }
    assert!(seen >= 3, "{seen} events");
    for shard in &mut shards {
        assert!(shard.running(), "{}", shard.log());
        shard.stop(Duration::from_secs(10));
    }
    println!(
        "{:?}: two shards, {seen} events, each from its own controller",
        cluster.flavor()
    );
}
