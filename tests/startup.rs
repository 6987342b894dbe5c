//! The controller binary at start-up and against objects it cannot read, on the real control
//! plane: a missing CRD stops
//! it at once with what to do; an object stored under a loosened schema is reported and skipped
//! while the others are reconciled.

use k8s_openapi::api::core::v1::{Event, Secret};
use kube::api::{Api, DynamicObject, ListParams, PostParams};
use modelstudio_controller::crd::{definition, Kind, ModelDeployment, ModelImport};
use modelstudio_testbed::{
    api_key_secret, apply_crd, run_bounded, ControllerCommand, ImportBuilder, ProcessBed,
};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_modelstudio-controller");
const NS: &str = "default";

#[test]
fn without_the_crd_the_controller_stops_at_once_and_says_how_to_install_it() {
    let bed = ProcessBed::start("startup-no-crd", NS);
    let (kubeconfig, cluster) = (&bed.kubeconfig, &bed.cluster);
    let started = Instant::now();
    let out = run_bounded(
        ControllerCommand::new(BIN, kubeconfig, "http://127.0.0.1:1").command(),
        Duration::from_secs(60),
    );
    let took = started.elapsed();
    assert_eq!(out.status.and_then(|s| s.code()), Some(1), "{out:?}");
    assert!(
        out.stderr
            .contains("modelimports.modelstudio.io) is not installed")
            && out.stderr.contains("kubectl apply -f crds/"),
        "{}",
        out.stderr
    );
    assert!(took < Duration::from_secs(30), "took {took:?}");
    println!("{:?}: refused in {took:?}", cluster.flavor());
}

#[test]
fn an_object_that_does_not_read_as_a_model_import_is_reported_and_skipped() {
    let bed = ProcessBed::start("startup-unreadable", NS);
    let (rt, client, sim, dir) = (&bed.rt, &bed.client, &bed.sim, &bed.dir);
    let kubeconfig = &bed.kubeconfig;

    // A schema loosened by hand (or left by another version): any weightType is stored.
    let mut crd = serde_json::to_value(definition()).unwrap();
    let weight_type = crd
        .pointer_mut(
            "/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties/weightType",
        )
        .and_then(|v| v.as_object_mut())
        .expect("the weightType schema");
    assert!(weight_type.remove("enum").is_some());
    rt.block_on(apply_crd(client, &serde_json::from_value(crd).unwrap()))
        .expect("the loosened CRD");
    // The same for ModelDeployment: any plan is stored.
    let mut crd = serde_json::to_value(Kind::ModelDeployment.definition()).unwrap();
    let plan = crd
        .pointer_mut("/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties/plan")
        .and_then(|v| v.as_object_mut())
        .expect("the plan schema");
    assert!(plan.remove("enum").is_some());
    rt.block_on(apply_crd(client, &serde_json::from_value(crd).unwrap()))
        .expect("the loosened ModelDeployment CRD");
    let deployments: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        NS,
        &kube::api::ApiResource::erase::<ModelDeployment>(&()),
    );

    let objects: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        NS,
        &kube::api::ApiResource::erase::<ModelImport>(&()),
    );
    let secrets: Api<Secret> = Api::namespaced(client.clone(), NS);
    rt.block_on(async {
        let post = PostParams::default();
        secrets
            .create(
                &post,
                &serde_json::from_value(api_key_secret("dashscope", "sk-startup")).unwrap(),
            )
            .await
            .expect("the Secret");
        let bad = ImportBuilder::new("quantized")
            .secret("dashscope")
            .spec("weightType", "int4".into())
            .json();
        objects
            .create(&post, &serde_json::from_value(bad).unwrap())
            .await
            .expect("the API server stores the loosened object");
        let good = ImportBuilder::new("good").secret("dashscope").json();
        objects
            .create(&post, &serde_json::from_value(good).unwrap())
            .await
            .expect("the good object");
        for (name, plan) in [("bad-plan", "xl"), ("good-plan", "cu")] {
            let deployment = serde_json::json!({
                "apiVersion": "modelstudio.io/v1alpha1", "kind": "ModelDeployment",
                "metadata": {"name": name},
                "spec": {"modelName": "qwen-turbo", "capacity": 2, "plan": plan,
                         "suffix": name.split('-').next(), "apiKeySecretRef": {"name": "dashscope"}},
            });
            deployments
                .create(&post, &serde_json::from_value(deployment).unwrap())
                .await
                .expect("the API server stores the ModelDeployment");
        }
    });

    let mut controller = ControllerCommand::new(BIN, kubeconfig, &sim.base_url())
        .spawn("controller", &dir.0)
        .expect("the controller starts");
    let typed: Api<ModelImport> = Api::namespaced(client.clone(), NS);
    let events: Api<Event> = Api::namespaced(client.clone(), NS);
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut ready, mut reported, mut deployment_reported, mut deployed) =
        (false, false, false, false);
    while Instant::now() < deadline && !(ready && reported && deployment_reported && deployed) {
        std::thread::sleep(Duration::from_millis(300));
        ready = rt
            .block_on(typed.get_status("good"))
            .ok()
            .and_then(|m| m.status)
            .is_some_and(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True")
            });
        reported = rt
            .block_on(events.list(&ListParams::default()))
            .map(|list| {
                list.items.iter().any(|e| {
                    e.reason.as_deref() == Some("Unreadable")
                        && e.involved_object.name.as_deref() == Some("quantized")
                        && e.type_.as_deref() == Some("Warning")
                        && e.message.as_deref().is_some_and(|m| m.contains("int4"))
                })
            })
            .unwrap_or(false);
        deployment_reported = rt
            .block_on(events.list(&ListParams::default()))
            .map(|list| {
                list.items.iter().any(|e| {
                    e.reason.as_deref() == Some("Unreadable")
                        && e.involved_object.name.as_deref() == Some("bad-plan")
                        && e.message
                            .as_deref()
                            .is_some_and(|m| m.contains("xl") && m.contains("this ModelDeployment"))
                })
            })
            .unwrap_or(false);
        deployed = rt
            .block_on(deployments.get("good-plan"))
            .ok()
            .and_then(|d| d.data["status"]["deployedModel"].as_str().map(String::from))
            .is_some();
    }
    let log = controller.log();
    assert!(
        deployment_reported && deployed,
        "the unreadable ModelDeployment was not reported ({deployment_reported}) or the readable one not deployed ({deployed}):\n{log}"
    );
    let bad = rt.block_on(deployments.get("bad-plan")).unwrap();
    assert!(bad.metadata.finalizers.unwrap_or_default().is_empty());
    assert_eq!(sim.simulator.deployments().len(), 1);
    assert!(controller.running(), "the controller exited:\n{log}");
    assert!(ready, "the readable import never became Ready:\n{log}");
    assert!(
        reported,
        "no Unreadable event for the unreadable one:\n{log}"
    );
    assert!(
        log.contains("skipping a ModelImport that cannot be read"),
        "{log}"
    );
    // The unreadable object is left alone: no finalizer, no job.
    let bad = rt.block_on(objects.get("quantized")).unwrap();
    assert!(bad.metadata.finalizers.unwrap_or_default().is_empty());
    assert_eq!(sim.simulator.stats().create.total, 1);
    controller.stop(Duration::from_secs(10));
}

/// kstatus (and so Flux) reads a resource as Current when its status has no observedGeneration
/// and no conditions: a new ModelImport must read as InProgress until the controller has looked
/// at it. The CRD defaults `status.observedGeneration` to -1, as Flux's own CRDs do.
#[test]
fn a_new_model_import_reads_as_in_progress_before_the_controller_has_seen_it() {
    let bed = ProcessBed::start("startup-kstatus", NS);
    let (rt, client, cluster) = (&bed.rt, &bed.client, &bed.cluster);
    rt.block_on(apply_crd(client, &definition()))
        .expect("the CRD");
    let imports: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        NS,
        &kube::api::ApiResource::erase::<ModelImport>(&()),
    );
    let new = ImportBuilder::new("fresh").secret("dashscope").json();
    let created = rt
        .block_on(imports.create(
            &PostParams::default(),
            &serde_json::from_value(new).unwrap(),
        ))
        .expect("created");
    let read = rt.block_on(imports.get("fresh")).expect("read back");
    for (what, obj) in [("create answer", &created), ("read", &read)] {
        let generation = obj.metadata.generation;
        let observed = obj.data["status"]["observedGeneration"].as_i64();
        assert_eq!(generation, Some(1), "{what}");
        assert_eq!(observed, Some(-1), "{what}: {:?}", obj.data);
        // kstatus's first rule: an observedGeneration behind the generation is InProgress.
        assert!(observed < generation, "{what}");
    }
    println!(
        "{:?}: observedGeneration -1 from creation",
        cluster.flavor()
    );
}
