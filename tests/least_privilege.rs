//! deploy/ on the real control plane: the controller runs as deploy/'s ServiceAccount with only
//! a TokenRequest token and converges (ModelImports, and a ModelDeployment applied before its
//! import), kube-apiserver's audit log shows that it used every permission deploy/ grants and
//! nothing else, and deploy/ passes Pod Security `restricted`.
//!
//! Real kube-apiserver only: the embedded API server has neither RBAC, tokens, audit nor Pod
//! Security. CI always builds the control plane; without it the tests fail, saying how to build it.

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use modelstudio_controller::crd::{ModelDeployment, ModelImport, FINALIZER};
use modelstudio_simulator::{Endpoint, OutcomeRequest, RunningSimulator, SimulatorConfig};
use modelstudio_testbed::{
    api_key_secret, install_crd, Cluster, ControlPlane, ControllerCommand, ImportBuilder, TempDir,
};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::Path;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_modelstudio-controller");
const DEPLOY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy");
const CRD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/crds/modelimport.yaml");
const DEPLOYMENT_CRD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/crds/modeldeployment.yaml");
const SYSTEM_NS: &str = "modelstudio-system";
const SA: &str = "modelstudio-controller";
const SA_USER: &str = "system:serviceaccount:modelstudio-system:modelstudio-controller";
/// Where the ModelImports live: not the controller's namespace, as in a real install.
const NS: &str = "ml-team";
const KEY: &str = "sk-least-privilege-test";
/// The controller's default key, granted to the namespaces labelled [`GRANT`].
const DEFAULT_KEY: &str = "sk-least-privilege-default";
const GRANT: &str = "modelstudio.io/default-key=granted";
/// A namespace without the grant.
const OTHER_NS: &str = "other-team";
/// The controller's identity in the Lease (a pod name in a cluster).
const IDENTITY: &str = "modelstudio-controller-test-0";
const KUBECTL_LIMIT: Duration = Duration::from_secs(60);
const CONVERGE: Duration = Duration::from_secs(60);

/// kubectl as admin; fails the test unless it exits 0. Returns (stdout, stderr).
fn kubectl(plane: &ControlPlane, args: &[&str]) -> (String, String) {
    let mut all = args.to_vec();
    all.push("--request-timeout=20s");
    let out = plane.kubectl(&all, KUBECTL_LIMIT);
    assert!(
        out.ok(),
        "kubectl {} failed:\n{}\n{}",
        args.join(" "),
        out.stdout,
        out.stderr
    );
    (out.stdout, out.stderr)
}

/// The rendered deploy/ (`kubectl kustomize`, kubectl 1.37 of the testbed).
fn rendered(plane: &ControlPlane) -> Vec<Value> {
    let (text, _) = kubectl(plane, &["kustomize", DEPLOY]);
    text.split("\n---\n")
        .map(|doc| serde_saphyr::from_str::<Value>(doc).expect("deploy/ renders valid YAML"))
        .collect()
}

/// Polls `check` every 200 ms until it gives a value, for at most `limit`; fails at once when
/// the audit log shows the ServiceAccount refused, naming what deploy/ lacks.
async fn eventually<T, F, Fut>(plane: &ControlPlane, what: &str, limit: Duration, check: F) -> T
where
    F: Fn() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        let (calls, _) = calls(&plane.audit_events());
        let refused: BTreeSet<String> = calls
            .iter()
            .filter(|c| c.code == 403)
            .map(|c| {
                format!(
                    "{} in {}",
                    show(&c.perm),
                    c.namespace.as_deref().unwrap_or("cluster scope")
                )
            })
            .collect();
        assert!(
            refused.is_empty(),
            "{what}: {SA_USER} was refused (403) requests that deploy/ does not grant:\n{}",
            refused.into_iter().collect::<Vec<_>>().join("\n")
        );
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// One permission: (apiGroup, resource[/subresource], verb).
type Perm = (String, String, String);

/// A permission deploy/ grants to the ServiceAccount, and where.
#[derive(Debug, Clone)]
struct Grant {
    perm: Perm,
    /// None: everywhere (ClusterRole through a ClusterRoleBinding); Some(ns): a Role's namespace.
    namespace: Option<String>,
    by: String,
}

/// Every permission that deploy/'s bindings give to modelstudio-system/modelstudio-controller.
fn granted(docs: &[Value]) -> Vec<Grant> {
    let binds_sa = |b: &Value| {
        b["subjects"].as_array().is_some_and(|s| {
            s.iter().any(|s| {
                s["kind"] == "ServiceAccount" && s["name"] == SA && s["namespace"] == SYSTEM_NS
            })
        })
    };
    let mut grants = Vec::new();
    for binding in docs.iter().filter(|d| {
        (d["kind"] == "ClusterRoleBinding" || d["kind"] == "RoleBinding") && binds_sa(d)
    }) {
        let kind = binding["roleRef"]["kind"].as_str().unwrap_or_default();
        let name = binding["roleRef"]["name"].as_str().unwrap_or_default();
        // A RoleBinding grants only in its namespace, even when it names a ClusterRole.
        let namespace = (binding["kind"] == "RoleBinding")
            .then(|| binding["metadata"]["namespace"].as_str().map(String::from))
            .flatten();
        let role = docs
            .iter()
            .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
            .unwrap_or_else(|| {
                panic!("deploy/ binds {kind} {name}, which deploy/ does not define")
            });
        for rule in role["rules"].as_array().into_iter().flatten() {
            assert!(
                rule.get("resourceNames").is_none() && rule.get("nonResourceURLs").is_none(),
                "this test compares whole resources; extend it for {rule}"
            );
            let list = |field: &str| -> Vec<String> {
                rule[field]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            };
            for group in list("apiGroups") {
                for resource in list("resources") {
                    for verb in list("verbs") {
                        grants.push(Grant {
                            perm: (group.clone(), resource.clone(), verb),
                            namespace: namespace.clone(),
                            by: format!("{kind}/{name}"),
                        });
                    }
                }
            }
        }
    }
    grants
}

/// One request of the ServiceAccount, from the audit log.
#[derive(Debug)]
struct Call {
    perm: Perm,
    namespace: Option<String>,
    code: u64,
}

/// The ServiceAccount's resource requests, one per audit ID, and its non-resource URLs.
fn calls(events: &[Value]) -> (Vec<Call>, Vec<(String, u64)>) {
    let mut seen = BTreeSet::new();
    let mut calls = Vec::new();
    let mut other = Vec::new();
    for e in events {
        if e["user"]["username"] != SA_USER || e["stage"] != "ResponseComplete" {
            continue;
        }
        if !seen.insert(e["auditID"].as_str().unwrap_or_default().to_string()) {
            continue;
        }
        let code = e["responseStatus"]["code"].as_u64().unwrap_or(0);
        let r = &e["objectRef"];
        let Some(resource) = r["resource"].as_str() else {
            other.push((e["requestURI"].as_str().unwrap_or("?").to_string(), code));
            continue;
        };
        let resource = match r["subresource"].as_str() {
            Some(sub) => format!("{resource}/{sub}"),
            None => resource.to_string(),
        };
        calls.push(Call {
            perm: (
                r["apiGroup"].as_str().unwrap_or("").to_string(),
                resource,
                e["verb"].as_str().unwrap_or("?").to_string(),
            ),
            namespace: r["namespace"].as_str().map(String::from),
            code,
        });
    }
    (calls, other)
}

/// The ServiceAccount's lists and watches of Secrets whose label selector is not the controller's
/// own label (`modelstudio.io/credentials`, or a value of it): what could bring it any other Secret.
fn unlabelled_secret_reads(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["user"]["username"] == SA_USER && e["objectRef"]["resource"] == "secrets")
        .filter(|e| matches!(e["verb"].as_str(), Some("list" | "watch")))
        .filter_map(|e| e["requestURI"].as_str())
        .filter(|uri| {
            let selector = uri
                .split(['?', '&'])
                .find_map(|p| p.strip_prefix("labelSelector="))
                .unwrap_or("");
            !(selector == "modelstudio.io%2Fcredentials"
                || selector.starts_with("modelstudio.io%2Fcredentials%3D"))
        })
        .map(String::from)
        .collect()
}

fn matches(grant: &Grant, call: &Call) -> bool {
    let (g, r, v) = &grant.perm;
    let (cg, cr, cv) = &call.perm;
    let part = |granted: &str, used: &str| granted == "*" || granted == used;
    part(g, cg)
        && part(r, cr)
        && part(v, cv)
        && grant
            .namespace
            .as_ref()
            .is_none_or(|ns| call.namespace.as_ref() == Some(ns))
}

fn show(perm: &Perm) -> String {
    let group = if perm.0.is_empty() { "core" } else { &perm.0 };
    format!("{group:<20} {:<24} {:<7}", perm.1, perm.2)
}

/// The ModelImport's status.jobId, once it has one.
async fn job_id(plane: &ControlPlane, imports: &Api<ModelImport>, name: &str) -> String {
    eventually(
        plane,
        &format!("{name} gets a job id"),
        CONVERGE,
        || async { imports.get(name).await.ok()?.status.and_then(|s| s.job_id) },
    )
    .await
}

fn finish(sim: &RunningSimulator, job: &str) {
    sim.simulator
        .set_outcome(
            job,
            OutcomeRequest {
                status: Some("SUCCESSED".into()),
                error_code: None,
                finish_now: true,
            },
        )
        .expect("the simulator ends the job");
}

async fn gone<K>(plane: &ControlPlane, api: &Api<K>, name: &str)
where
    K: Clone + std::fmt::Debug + serde::de::DeserializeOwned,
{
    eventually(plane, &format!("{name} is deleted"), CONVERGE, || async {
        match api.get_opt(name).await {
            Ok(None) => Some(()),
            _ => None,
        }
    })
    .await
}

/// Whether one of the conditions has this status, and this type and reason (None: any).
fn has_condition(
    conditions: Option<&Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>>,
    type_: Option<&str>,
    status: &str,
    reason: Option<&str>,
) -> bool {
    conditions.into_iter().flatten().any(|c| {
        type_.is_none_or(|t| c.type_ == t)
            && c.status == status
            && reason.is_none_or(|r| c.reason == r)
    })
}

/// The model's name in the ConfigMap `name`, if it exists and holds one.
async fn model_in(config_maps: &Api<ConfigMap>, name: &str) -> Option<String> {
    let cm = config_maps.get_opt(name).await.ok()??;
    cm.data?.get("MODEL_NAME").cloned()
}

fn remote_deleted(sim: &RunningSimulator, job: &str) -> bool {
    sim.simulator
        .jobs()
        .iter()
        .any(|j| j.job_id == job && j.deleted)
}

/// Events of the controller about `name`, by reason, with their series count (1 when none).
async fn events_of(events: &Api<Event>, name: &str) -> BTreeMap<String, i32> {
    let list = events
        .list(&ListParams::default())
        .await
        .expect("list events");
    list.items
        .iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .filter(|e| e.reporting_controller.as_deref() == Some("modelstudio-controller"))
        .map(|e| {
            (
                e.reason.clone().unwrap_or_default(),
                e.series.as_ref().map_or(1, |s| s.count),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_runs_as_the_deploy_service_account_and_uses_exactly_its_rbac() {
    let t0 = Instant::now();
    let dir = TempDir::new("lifecycle");
    let cluster = Cluster::start_real()
        .await
        .expect("the control plane starts");
    let plane = cluster.plane().expect("a real control plane");
    let admin = cluster.client(NS).await.expect("an admin client");
    for crd in [CRD, DEPLOYMENT_CRD] {
        install_crd(&admin, Path::new(crd))
            .await
            .unwrap_or_else(|e| panic!("{crd} is installed: {e}"));
    }
    let started = t0.elapsed();

    // All of deploy/, the Deployment too: it must be admitted (into the namespace deploy/
    // makes, with its Pod Security labels), and without a kubelet or deployment controller it
    // never runs, so the controller below is the only one.
    let (_, stderr) = kubectl(plane, &["apply", "-k", DEPLOY]);
    assert!(
        !stderr.to_lowercase().contains("warning"),
        "applying deploy/ warned:\n{stderr}"
    );
    let (token, _) = kubectl(
        plane,
        &["create", "token", SA, "-n", SYSTEM_NS, "--duration=1h"],
    );
    let token = token.trim();
    assert!(token.split('.').count() == 3, "a JWT from TokenRequest");
    let kubeconfig = dir.0.join("controller.kubeconfig");
    std::fs::write(&kubeconfig, plane.token_kubeconfig(token, NS)).unwrap();

    // NS may use the controller's default key; OTHER_NS may not.
    let namespaces: Api<Namespace> = Api::all(admin.clone());
    let (label, value) = GRANT.split_once('=').unwrap();
    for (name, labels) in [
        (NS, serde_json::json!({label: value})),
        (OTHER_NS, serde_json::json!({})),
    ] {
        let ns: Namespace = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": labels},
        }))
        .unwrap();
        namespaces
            .create(&PostParams::default(), &ns)
            .await
            .unwrap();
    }
    let secrets: Api<Secret> = Api::namespaced(admin.clone(), NS);
    let secret: Secret = serde_json::from_value(api_key_secret("dashscope", KEY)).unwrap();
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();

    // Jobs run until the test ends them, so each step happens when the test says. A deployment
    // is DELETING for 2 s, long enough to see its import wait for it.
    let sim = RunningSimulator::start(SimulatorConfig {
        pending_duration: Duration::from_millis(200),
        running_duration: Duration::from_secs(600),
        deployment_pending_duration: Duration::from_millis(500),
        deployment_updating_duration: Duration::from_millis(500),
        deployment_deleting_duration: Duration::from_secs(2),
        api_keys: vec![KEY.into(), DEFAULT_KEY.into()],
        ..Default::default()
    })
    .await
    .unwrap();
    let key_file = dir.0.join("default-key");
    std::fs::write(&key_file, DEFAULT_KEY).unwrap();
    let mut controller = ControllerCommand::new(BIN, &kubeconfig, &sim.base_url())
        .flags(&[
            "--leader-election",
            "--lease-namespace",
            SYSTEM_NS,
            "--api-key-file",
            key_file.to_str().unwrap(),
            "--default-key-namespace-selector",
            GRANT,
        ])
        .env("POD_NAME", IDENTITY)
        .spawn("controller", &dir.0)
        .expect("the controller starts");

    let leases: Api<Lease> = Api::namespaced(admin.clone(), SYSTEM_NS);
    eventually(
        plane,
        "the controller holds the Lease",
        CONVERGE,
        || async {
            let spec = leases.get_opt("modelstudio-controller").await.ok()??.spec?;
            (spec.holder_identity.as_deref() == Some(IDENTITY)).then_some(())
        },
    )
    .await;

    let imports: Api<ModelImport> = Api::namespaced(admin.clone(), NS);
    let events: Api<Event> = Api::namespaced(admin.clone(), NS);
    let lifecycle = Instant::now();

    // a: created, Ready, deleted: the remote job is deleted and the finalizer released.
    let a: ModelImport = ImportBuilder::new("a").secret("dashscope").build();
    imports.create(&PostParams::default(), &a).await.unwrap();
    let job_a = job_id(plane, &imports, "a").await;
    finish(&sim, &job_a);
    let ready = eventually(plane, "a is Ready", CONVERGE, || async {
        let a = imports.get("a").await.ok()?;
        let status = a.status.as_ref()?;
        status
            .conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
            .then_some(a)
    })
    .await;
    // So that "gone" below means the controller released it.
    assert!(
        ready
            .metadata
            .finalizers
            .iter()
            .flatten()
            .any(|f| f == FINALIZER),
        "a carries the finalizer: {:?}",
        ready.metadata.finalizers
    );

    // b: deleted while its job runs, so the refused deletion repeats; the repeated Warning is
    // the Event patch (a series) that deploy/ grants.
    let b: ModelImport = ImportBuilder::new("b").secret("dashscope").build();
    imports.create(&PostParams::default(), &b).await.unwrap();
    let job_b = job_id(plane, &imports, "b").await;
    imports.delete("b", &DeleteParams::default()).await.unwrap();
    eventually(
        plane,
        "b's refused deletion repeats as an Event series",
        CONVERGE,
        || async {
            (events_of(&events, "b")
                .await
                .get("DeletionBlocked")
                .copied()?
                >= 2)
                .then_some(())
        },
    )
    .await;
    finish(&sim, &job_b);
    gone(plane, &imports, "b").await;

    imports.delete("a", &DeleteParams::default()).await.unwrap();
    gone(plane, &imports, "a").await;

    // e names no Secret and NS has none of the usual name: the default key, granted to NS,
    // makes its job. x in OTHER_NS may not use it: a condition says so and no call is made.
    let e: ModelImport = ImportBuilder::new("e").build();
    imports.create(&PostParams::default(), &e).await.unwrap();
    let job_e = job_id(plane, &imports, "e").await;
    let others: Api<ModelImport> = Api::namespaced(admin.clone(), OTHER_NS);
    let x: ModelImport = ImportBuilder::new("x").build();
    others.create(&PostParams::default(), &x).await.unwrap();
    let refusal = eventually(plane, "x is refused the default key", CONVERGE, || async {
        let x = others.get("x").await.ok()?;
        let status = x.status?;
        let c = status
            .conditions
            .iter()
            .find(|c| c.type_ == "Reconciling" && c.reason == "CredentialsMissing")?;
        assert!(status.job_id.is_none(), "x has a job: {status:?}");
        Some(c.message.clone())
    })
    .await;
    assert!(
        refusal.contains("may not use the controller's default API key") && refusal.contains(GRANT),
        "{refusal}"
    );
    assert!(!refusal.contains(DEFAULT_KEY), "{refusal}");
    let workspace_of = |job: &str| {
        sim.simulator
            .jobs()
            .into_iter()
            .find(|j| j.job_id == job)
            .map(|j| j.workspace_id)
    };
    let default_workspace = workspace_of(&job_e).expect("e's job");
    assert_ne!(Some(&default_workspace), workspace_of(&job_a).as_ref());
    let default_jobs: Vec<String> = sim
        .simulator
        .jobs()
        .into_iter()
        .filter(|j| j.workspace_id == default_workspace)
        .map(|j| j.job_id)
        .collect();
    assert_eq!(
        default_jobs,
        vec![job_e.clone()],
        "only e's job is made with the default key"
    );
    finish(&sim, &job_e);
    imports.delete("e", &DeleteParams::default()).await.unwrap();
    gone(plane, &imports, "e").await;
    assert!(remote_deleted(&sim, &job_e), "e's remote job is deleted");
    others.delete("x", &DeleteParams::default()).await.unwrap();
    gone(plane, &others, "x").await;
    assert!(remote_deleted(&sim, &job_a), "a's remote job is deleted");
    assert!(remote_deleted(&sim, &job_b), "b's remote job is deleted");

    // d: a ModelDeployment applied before the ModelImport c it names. The import cache lacks c,
    // so the controller reads it (get modelimports, 404) and waits; then c is created and
    // finished, d creates its remote deployment after a fresh read of itself
    // (get modeldeployments/status) and becomes Ready.
    let deployments: Api<ModelDeployment> = Api::namespaced(admin.clone(), NS);
    let d: ModelDeployment = serde_json::from_value(serde_json::json!({
        "apiVersion": "modelstudio.io/v1alpha1", "kind": "ModelDeployment",
        "metadata": {"name": "d"},
        "spec": {
            "modelImportRef": {"name": "c"},
            "capacity": 1,
            "apiKeySecretRef": {"name": "dashscope"},
        },
    }))
    .unwrap();
    deployments
        .create(&PostParams::default(), &d)
        .await
        .unwrap();
    eventually(plane, "d waits for its import", CONVERGE, || async {
        let d = deployments.get("d").await.ok()?;
        let conditions = d.status.as_ref().map(|s| &s.conditions);
        has_condition(conditions, None, "True", Some("WaitingForImport")).then_some(())
    })
    .await;
    assert!(
        sim.simulator.deployments().is_empty(),
        "no deployment before its import is Ready"
    );
    let c: ModelImport = ImportBuilder::new("c").secret("dashscope").build();
    imports.create(&PostParams::default(), &c).await.unwrap();
    let job_c = job_id(plane, &imports, "c").await;
    finish(&sim, &job_c);
    let deployed = eventually(plane, "d is Ready", CONVERGE, || async {
        let d = deployments.get("d").await.ok()?;
        let status = d.status.as_ref()?;
        has_condition(Some(&status.conditions), Some("Ready"), "True", None)
            .then(|| status.deployed_model.clone())
            .flatten()
    })
    .await;

    // The apps' ConfigMap: d's (named after it) holds the deployed model's name (create). An
    // edit by someone else is undone (patch); a new spec.outputs.configMapName moves it, the
    // old one deleted (delete). c asks for a ConfigMap whose name someone else holds: its
    // create is refused, the one found is read (get) and left alone.
    let config_maps: Api<ConfigMap> = Api::namespaced(admin.clone(), NS);
    let holds_model = |name: &'static str| {
        let (config_maps, deployed) = (&config_maps, &deployed);
        move || async move { (model_in(config_maps, name).await? == *deployed).then_some(()) }
    };
    eventually(
        plane,
        "d's ConfigMap names its model",
        CONVERGE,
        holds_model("d"),
    )
    .await;
    let patch = PatchParams::default();
    let edit = serde_json::json!({"data": {"MODEL_NAME": "edited"}});
    config_maps
        .patch("d", &patch, &Patch::Merge(&edit))
        .await
        .unwrap();
    eventually(
        plane,
        "d's ConfigMap is written again",
        CONVERGE,
        holds_model("d"),
    )
    .await;
    let rename = serde_json::json!({"spec": {"outputs": {"configMapName": "d-outputs"}}});
    deployments
        .patch("d", &patch, &Patch::Merge(&rename))
        .await
        .unwrap();
    eventually(plane, "d's ConfigMap moves", CONVERGE, || async {
        model_in(&config_maps, "d-outputs").await?;
        config_maps.get_opt("d").await.ok()?.is_none().then_some(())
    })
    .await;
    let taken: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "taken"}, "data": {"owner": "another team"},
    }))
    .unwrap();
    config_maps
        .create(&PostParams::default(), &taken)
        .await
        .unwrap();
    let wants_taken = serde_json::json!({"spec": {"outputs": {"configMapName": "taken"}}});
    imports
        .patch("c", &patch, &Patch::Merge(&wants_taken))
        .await
        .unwrap();
    eventually(
        plane,
        "c is refused a ConfigMap it does not own",
        CONVERGE,
        || async {
            let c = imports.get("c").await.ok()?;
            let conditions = c.status.as_ref().map(|s| &s.conditions);
            has_condition(
                conditions,
                Some("OutputsReady"),
                "False",
                Some("ConfigMapNotOwned"),
            )
            .then_some(())
        },
    )
    .await;
    let untouched = config_maps.get("taken").await.unwrap();
    assert_eq!(
        untouched.data, taken.data,
        "a foreign ConfigMap is left alone"
    );

    // Deleting both at once: c's job is kept while d's deployment is DELETING
    // (ServedByDeployment), and deleted only once the deployment is gone.
    deployments
        .delete("d", &DeleteParams::default())
        .await
        .unwrap();
    imports.delete("c", &DeleteParams::default()).await.unwrap();
    eventually(plane, "c waits for d's deployment", CONVERGE, || async {
        let c = imports.get("c").await.ok()?;
        let conditions = c.status.as_ref().map(|s| &s.conditions);
        has_condition(conditions, None, "True", Some("ServedByDeployment")).then_some(())
    })
    .await;
    gone(plane, &deployments, "d").await;
    gone(plane, &imports, "c").await;
    assert!(remote_deleted(&sim, &job_c), "c's remote job is deleted");
    let requests = sim.simulator.requests();
    let first = |what: &dyn Fn(&modelstudio_simulator::RequestRecord) -> bool| {
        requests.iter().find(|r| what(r)).map(|r| r.seq)
    };
    let deployment_gone = first(&|r| {
        r.endpoint == Endpoint::DeploymentGet
            && r.status == 404
            && r.deployed_model.as_ref() == Some(&deployed)
    })
    .expect("d's deployment was seen gone");
    let job_deleted = first(&|r| {
        r.endpoint == Endpoint::Delete && r.status == 200 && r.job_id.as_ref() == Some(&job_c)
    })
    .expect("c's job was deleted");
    assert!(
        deployment_gone < job_deleted,
        "c's job was deleted (request {job_deleted}) before d's deployment was gone (request {deployment_gone})"
    );
    let converged = lifecycle.elapsed();

    let events_a = events_of(&events, "a").await;
    let events_b = events_of(&events, "b").await;
    for (name, got, want) in [
        ("a", &events_a, &["Created", "Succeeded", "Deleted"][..]),
        (
            "b",
            &events_b,
            &["Created", "DeletionBlocked", "Deleted"][..],
        ),
    ] {
        for reason in want {
            assert!(
                got.contains_key(*reason),
                "no {reason} Event for {name}: {got:?}"
            );
        }
    }

    // SIGTERM: the controller stops cleanly and gives the Lease up (an update).
    controller.terminate().unwrap();
    let status = controller
        .wait_for_exit(Duration::from_secs(30))
        .expect("the controller exits after SIGTERM");
    assert!(status.success(), "controller exit: {status:?}");
    let lease = leases.get("modelstudio-controller").await.unwrap();
    assert_eq!(
        lease.spec.and_then(|s| s.holder_identity),
        None,
        "the Lease is released at shutdown"
    );
    let log = controller.log();
    assert!(log.contains("acquired leadership"), "{log}");
    // kube-rs shows a refusal as `reason: "Forbidden", code: 403`.
    assert!(
        !log.to_lowercase().contains("forbidden") && !log.contains("code: 403"),
        "the controller was refused something:\n{log}"
    );
    assert!(!log.contains(KEY), "the API key is in the log");

    // The audit log is written as requests complete; the controller's last ones (the watch,
    // the Lease release) end with its exit. Read until two reads agree.
    let mut audit = plane.audit_events();
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let again = plane.audit_events();
        if again.len() == audit.len() {
            break;
        }
        audit = again;
    }
    let (calls, non_resource) = calls(&audit);
    assert!(!calls.is_empty(), "no audited request of {SA_USER}");
    // No Secret but those the controller marked itself ever reaches it in a list or a watch.
    let secret_reads = unlabelled_secret_reads(&audit);
    assert!(
        secret_reads.is_empty(),
        "lists or watches of Secrets without the controller's label selector: {secret_reads:?}"
    );

    let grants = granted(&rendered(plane));
    let mut table = String::new();
    table.push_str(&format!(
        "{:<20} {:<24} {:<7} {:<62} {:>6} {:>5}\n",
        "apiGroup", "resource", "verb", "granted by", "calls", "403"
    ));
    let mut unused = Vec::new();
    for g in &grants {
        let used: Vec<&Call> = calls.iter().filter(|c| matches(g, c)).collect();
        let refused = used.iter().filter(|c| c.code == 403).count();
        let by = match &g.namespace {
            Some(ns) => format!("{} in {ns}", g.by),
            None => g.by.clone(),
        };
        table.push_str(&format!(
            "{} {by:<62} {:>6} {refused:>5}\n",
            show(&g.perm),
            used.len()
        ));
        if used.len() == refused {
            unused.push(show(&g.perm));
        }
    }
    let mut not_granted: BTreeMap<(Perm, Option<String>), (usize, usize)> = BTreeMap::new();
    for c in &calls {
        if c.code == 403 || !grants.iter().any(|g| matches(g, c)) {
            let entry = not_granted
                .entry((c.perm.clone(), c.namespace.clone()))
                .or_default();
            entry.0 += 1;
            entry.1 += usize::from(c.code == 403);
        }
    }
    for ((perm, ns), (n, refused)) in &not_granted {
        table.push_str(&format!(
            "{} {:<62} {n:>6} {refused:>5}\n",
            show(perm),
            format!(
                "NOT GRANTED (in {})",
                ns.as_deref().unwrap_or("cluster scope")
            )
        ));
    }
    for (uri, code) in &non_resource {
        table.push_str(&format!("non-resource {uri} -> {code}\n"));
    }
    println!(
        "least privilege: control plane up with the CRDs in {:.1} s; lifecycle of 2 imports \
         and of an import with its deployment converged in {:.1} s as {SA_USER} (Lease holder {IDENTITY}); {} audited requests; \
         total {:.1} s\n{table}",
        started.as_secs_f64(),
        converged.as_secs_f64(),
        calls.len(),
        t0.elapsed().as_secs_f64()
    );
    assert!(
        not_granted.is_empty(),
        "the controller made requests that deploy/ does not grant (or were refused):\n{table}"
    );
    assert!(
        non_resource.iter().all(|(_, code)| *code != 403),
        "a non-resource request was refused:\n{table}"
    );
    assert!(
        unused.is_empty(),
        "deploy/ grants permissions the controller never used in a full lifecycle: {unused:?}\n{table}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_passes_pod_security_restricted_on_a_server_dry_run() {
    let t0 = Instant::now();
    let dir = TempDir::new("psa");
    let cluster = Cluster::start_real()
        .await
        .expect("the control plane starts");
    let plane = cluster.plane().expect("a real control plane");

    // --save-config, as `kubectl apply` then expects of an object it did not create.
    kubectl(plane, &["create", "namespace", SYSTEM_NS, "--save-config"]);
    let mut label = vec!["label", "namespace", SYSTEM_NS, "--overwrite"];
    let labels: Vec<String> = ["enforce", "warn", "audit"]
        .iter()
        .flat_map(|mode| {
            [
                format!("pod-security.kubernetes.io/{mode}=restricted"),
                format!("pod-security.kubernetes.io/{mode}-version=latest"),
            ]
        })
        .collect();
    label.extend(labels.iter().map(String::as_str));
    kubectl(plane, &label);

    let (stdout, stderr) = kubectl(plane, &["apply", "-k", DEPLOY, "--dry-run=server"]);
    assert!(
        !stderr.to_lowercase().contains("warning"),
        "deploy/ warns under Pod Security restricted:\n{stderr}"
    );
    assert!(
        stdout.contains("deployment.apps/modelstudio-controller"),
        "the Deployment went through the dry run:\n{stdout}"
    );

    // Controls, so that this test can fail: Pod Security is active in this namespace. The
    // Deployment without its seccomp profile is admitted with a warning (workloads are only
    // warned and audited), a privileged Pod is refused (enforce).
    let mut deployment = rendered(plane)
        .into_iter()
        .find(|d| d["kind"] == "Deployment")
        .expect("deploy/ has a Deployment");
    deployment["spec"]["template"]["spec"]["securityContext"]
        .as_object_mut()
        .expect("a pod securityContext")
        .remove("seccompProfile");
    let weakened = dir.0.join("deployment-without-seccomp.json");
    std::fs::write(&weakened, deployment.to_string()).unwrap();
    let weakened = weakened.display().to_string();
    let (_, stderr) = kubectl(plane, &["apply", "-f", &weakened, "--dry-run=server"]);
    assert!(
        stderr.contains("would violate PodSecurity \"restricted:latest\"")
            && stderr.contains("seccompProfile"),
        "a Deployment without seccompProfile must be warned about:\n{stderr}"
    );

    let pod = serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "privileged", "namespace": SYSTEM_NS},
        "spec": {"containers": [{
            "name": "c", "image": "busybox",
            "securityContext": {"privileged": true}
        }]}
    });
    let pod_file = dir.0.join("privileged-pod.json");
    std::fs::write(&pod_file, pod.to_string()).unwrap();
    let out = plane.kubectl(
        &[
            "apply",
            "-f",
            &pod_file.display().to_string(),
            "--dry-run=server",
            "--request-timeout=20s",
        ],
        KUBECTL_LIMIT,
    );
    assert!(
        !out.ok()
            && out
                .stderr
                .contains("violates PodSecurity \"restricted:latest\""),
        "a privileged Pod must be refused: {out:?}"
    );
    println!(
        "pod security: deploy/ dry-run in a restricted namespace without warnings; controls \
         warned and refused; {:.1} s",
        t0.elapsed().as_secs_f64()
    );
}
