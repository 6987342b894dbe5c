//! kube-rs (the controller's client) against the sandbox server: typed and dynamic APIs,
//! all patch kinds, conflicts, and `kube::runtime::watcher` including re-watch after the
//! server cuts watches or compacts history.

mod common;

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::{watcher, WatchStreamExt};
use kube::Client;
use sandbox_apiserver::RunningApiServer;
use serde_json::json;

async fn client(s: &RunningApiServer) -> Client {
    let kc = Kubeconfig::from_yaml(&s.kubeconfig_yaml("default")).unwrap();
    let cfg = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    Client::try_from(cfg).unwrap()
}

fn mi_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("modelstudio.io", "v1alpha1", "ModelImport"),
        "modelimports",
    )
}

async fn install_crd(c: &Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(c.clone());
    let crd: CustomResourceDefinition =
        serde_json::from_value(common::fixture("modelimport-crd.yaml")).unwrap();
    crds.create(&PostParams::default(), &crd).await.unwrap();
    let established = kube::runtime::wait::await_condition(
        crds,
        "modelimports.modelstudio.io",
        kube::runtime::wait::conditions::is_crd_established(),
    );
    tokio::time::timeout(Duration::from_secs(5), established)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn typed_and_dynamic_clients() {
    let s = common::start().await;
    let c = client(&s).await;
    install_crd(&c).await;
    let secrets: Api<Secret> = Api::default_namespaced(c.clone());
    let mut sec = Secret::default();
    sec.metadata.name = Some("creds".into());
    sec.string_data = Some([("token".to_string(), "abc".to_string())].into());
    let created = secrets.create(&PostParams::default(), &sec).await.unwrap();
    assert_eq!(created.data.unwrap()["token"].0, b"abc");
    let leases: Api<Lease> = Api::default_namespaced(c.clone());
    let lease: Lease = serde_json::from_value(json!({"metadata": {"name": "leader"}, "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15}})).unwrap();
    let l = leases.create(&PostParams::default(), &lease).await.unwrap();
    // Optimistic concurrency on replace.
    let mut l2 = l.clone();
    l2.spec.as_mut().unwrap().holder_identity = Some("b".into());
    leases
        .replace("leader", &PostParams::default(), &l2)
        .await
        .unwrap();
    let err = leases
        .replace("leader", &PostParams::default(), &l2)
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 409),
        "{err:?}"
    );

    let mis: Api<DynamicObject> = Api::namespaced_with(c.clone(), "default", &mi_resource());
    let applied: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "modelstudio.io/v1alpha1", "kind": "ModelImport", "metadata": {"name": "m1"},
        "spec": {"modelName": "m", "weightType": "lora", "storage": {"bucket": "b", "objectKey": "k/"}}
    }))
    .unwrap();
    let pp = PatchParams::apply("kube-test").force();
    let o = mis.patch("m1", &pp, &Patch::Apply(&applied)).await.unwrap();
    assert_eq!(o.data["spec"]["source"], "oss");
    let status = json!({"apiVersion": "modelstudio.io/v1alpha1", "kind": "ModelImport", "status": {"phase": "Importing", "jobId": "j"}});
    let o = mis
        .patch_status("m1", &pp, &Patch::Apply(&status))
        .await
        .unwrap();
    assert_eq!(o.data["status"]["phase"], "Importing");
    let o = mis
        .patch_status(
            "m1",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Ready"}})),
        )
        .await
        .unwrap();
    assert_eq!(
        (
            o.data["status"]["phase"].as_str(),
            o.data["status"]["jobId"].as_str()
        ),
        (Some("Ready"), Some("j"))
    );
    let jp: json_patch::Patch =
        serde_json::from_value(json!([{"op": "add", "path": "/spec/displayName", "value": "x"}]))
            .unwrap();
    let o = mis
        .patch("m1", &PatchParams::default(), &Patch::<()>::Json(jp))
        .await
        .unwrap();
    assert_eq!(o.metadata.generation, Some(2));
    let err = mis
        .patch(
            "m1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"weightType": "x"}})),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 422 && s.reason == "Invalid"),
        "{err:?}"
    );
    mis.delete("m1", &DeleteParams::default()).await.unwrap();
    assert!(mis.get_opt("m1").await.unwrap().is_none());
    s.shutdown().await;
}

/// Watcher events as "apply:NAME" / "delete:NAME" until `until` is seen (bounded by time).
async fn next_names(
    stream: &mut (impl futures::Stream<Item = Result<watcher::Event<DynamicObject>, watcher::Error>>
              + Unpin),
    until: &str,
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !out.iter().any(|e| e == until) {
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(Some(Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)))) => {
                out.push(format!("apply:{}", o.metadata.name.unwrap_or_default()))
            }
            Ok(Some(Ok(watcher::Event::Delete(o)))) => {
                out.push(format!("delete:{}", o.metadata.name.unwrap_or_default()))
            }
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(e))) => out.push(format!("error:{e}")),
            Ok(None) | Err(_) => break,
        }
    }
    out
}

async fn watcher_survives_disruptions(streaming: bool) {
    let s = common::start().await;
    let c = client(&s).await;
    install_crd(&c).await;
    let mis: Api<DynamicObject> = Api::namespaced_with(c.clone(), "default", &mi_resource());
    let mk = |name: &str| -> DynamicObject {
        serde_json::from_value(json!({"apiVersion": "modelstudio.io/v1alpha1", "kind": "ModelImport", "metadata": {"name": name},
            "spec": {"modelName": name, "weightType": "full", "storage": {"bucket": "b", "objectKey": "k/"}}}))
        .unwrap()
    };
    mis.create(&PostParams::default(), &mk("before"))
        .await
        .unwrap();
    let cfg = if streaming {
        watcher::Config::default().streaming_lists()
    } else {
        watcher::Config::default()
    };
    let mut stream = watcher(mis.clone(), cfg).boxed();
    assert_eq!(
        next_names(&mut stream, "apply:before").await,
        ["apply:before"]
    );
    mis.create(&PostParams::default(), &mk("after"))
        .await
        .unwrap();
    assert_eq!(
        next_names(&mut stream, "apply:after").await,
        ["apply:after"]
    );
    // Cut the watch: the watcher re-watches from its last resourceVersion.
    s.drop_watches();
    tokio::time::sleep(Duration::from_millis(100)).await;
    mis.delete("before", &DeleteParams::default())
        .await
        .unwrap();
    let got = next_names(&mut stream, "delete:before").await;
    assert!(got.contains(&"delete:before".to_string()), "{got:?}");
    // Compact history and cut again: re-watch gets 410 and the watcher relists.
    s.compact();
    s.drop_watches();
    mis.create(&PostParams::default(), &mk("third"))
        .await
        .unwrap();
    let got = next_names(&mut stream, "apply:third").await;
    assert!(got.contains(&"apply:third".to_string()), "{got:?}");
    s.shutdown().await;
}

#[tokio::test]
async fn watcher_list_then_watch() {
    watcher_survives_disruptions(false).await;
}

#[tokio::test]
async fn watcher_streaming_lists() {
    watcher_survives_disruptions(true).await;
}

#[tokio::test]
async fn reflector_store_follows_changes() {
    let s = common::start().await;
    let c = client(&s).await;
    let secrets: Api<Secret> = Api::default_namespaced(c.clone());
    let (reader, writer) = kube::runtime::reflector::store();
    let stream =
        kube::runtime::reflector(writer, watcher(secrets.clone(), watcher::Config::default()))
            .applied_objects();
    let task = tokio::spawn(async move {
        let _ = stream.try_for_each(|_| async { Ok(()) }).await;
    });
    for i in 0..3 {
        let mut sec = Secret::default();
        sec.metadata.name = Some(format!("s{i}"));
        secrets.create(&PostParams::default(), &sec).await.unwrap();
    }
    let mut ok = false;
    for _ in 0..100 {
        if reader.state().len() == 3 {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ok, "reflector saw {} objects", reader.state().len());
    task.abort();
    s.shutdown().await;
}

/// kube-rs's `Recorder` writes events.k8s.io/v1 events; they show up converted in the core/v1
/// events API (what `kubectl get events` and `kubectl describe` read), selectable by the
/// involved object, and a repeat becomes a series with a count.
#[tokio::test]
async fn recorder_events_are_core_events() {
    use k8s_openapi::api::core::v1::Event as CoreEvent;
    use k8s_openapi::api::events::v1::Event as NewEvent;
    use kube::api::ListParams;
    use kube::runtime::events::{Event, EventType, Recorder, Reporter};
    use kube::Resource;

    let s = common::start().await;
    let c = client(&s).await;
    install_crd(&c).await;
    let mis: Api<DynamicObject> = Api::default_namespaced_with(c.clone(), &mi_resource());
    let mi: DynamicObject = serde_json::from_value(common::fixture("modelimport.yaml")).unwrap();
    let mi = mis.create(&PostParams::default(), &mi).await.unwrap();
    let reference = mi.object_ref(&mi_resource());
    let recorder = Recorder::new(
        c.clone(),
        Reporter {
            controller: "modelstudio-controller".into(),
            instance: Some("ctl-0".into()),
        },
    );
    let ev = Event {
        type_: EventType::Normal,
        reason: "Submitted".into(),
        note: Some("import job submitted".into()),
        action: "Reconcile".into(),
        secondary: None,
    };
    recorder.publish(&ev, &reference).await.unwrap();
    recorder.publish(&ev, &reference).await.unwrap();

    let core: Api<CoreEvent> = Api::default_namespaced(c.clone());
    let uid = mi.metadata.uid.clone().unwrap();
    let selected = core
        .list(&ListParams::default().fields(&format!(
            "involvedObject.uid={uid},involvedObject.name=qwen-lora,involvedObject.namespace=default,involvedObject.kind=ModelImport"
        )))
        .await
        .unwrap();
    assert_eq!(selected.items.len(), 1);
    let e = &selected.items[0];
    assert_eq!(e.message.as_deref(), Some("import job submitted"));
    assert_eq!(e.reason.as_deref(), Some("Submitted"));
    assert_eq!(e.type_.as_deref(), Some("Normal"));
    assert_eq!(e.action.as_deref(), Some("Reconcile"));
    assert_eq!(e.involved_object.uid.as_deref(), Some(uid.as_str()));
    assert_eq!(
        e.reporting_component.as_deref(),
        Some("modelstudio-controller")
    );
    // kube-apiserver derives no source from reportingController: Go's empty struct.
    assert_eq!(e.source, Some(Default::default()));
    assert_eq!(e.count, Some(2));
    assert_eq!(e.series.as_ref().and_then(|s| s.count), Some(2));
    assert!(e.event_time.is_some());
    let other = core
        .list(&ListParams::default().fields("involvedObject.uid=nope"))
        .await
        .unwrap();
    assert!(other.items.is_empty());
    // The same object through events.k8s.io/v1.
    let new: Api<NewEvent> = Api::default_namespaced(c.clone());
    let listed = new.list(&ListParams::default()).await.unwrap();
    assert_eq!(listed.items.len(), 1);
    let n = &listed.items[0];
    assert_eq!(n.note.as_deref(), Some("import job submitted"));
    assert_eq!(
        n.regarding.as_ref().and_then(|r| r.name.as_deref()),
        Some("qwen-lora")
    );
    assert_eq!(n.deprecated_source, Some(Default::default()));
    assert!(n.deprecated_count.is_none());
    // Deleting through one view deletes from the other.
    core.delete(
        e.metadata.name.as_deref().unwrap(),
        &DeleteParams::default(),
    )
    .await
    .unwrap();
    assert!(new
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .is_empty());
    s.shutdown().await;
}
