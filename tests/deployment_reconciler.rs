//! The ModelDeployment reconciler, pass by pass, against the real control plane (both CRDs
//! installed) and the in-memory `FakeDeployments` and `FakeJobs`, which move only when a test
//! says so: a lost create answer, a name taken by someone else, a plan that cannot scale, and an
//! import whose deletion waits for the deployment that serves its model.

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::reflector::{self, store::Writer};
use kube::runtime::{watcher, WatchStreamExt};
use kube::Client;
use modelstudio_controller::backoff::BackoffPolicy;
use modelstudio_controller::config::Config;
use modelstudio_controller::crd::{Kind, ModelDeployment, ModelImport};
use modelstudio_controller::deployment::{reconcile, DeploymentContext};
use modelstudio_controller::import::{self, ImportContext};
use modelstudio_controller::metrics::Metrics;
use modelstudio_controller::modelstudio::layered;
use modelstudio_controller::pass::Context;
use modelstudio_core::api::{ApiError, Operation};
use modelstudio_core::deployment::deployments::NewDeployment;
use modelstudio_core::import::jobs::JobState;
use modelstudio_testbed::{
    api_key_secret, apply_crd, Cluster, FakeDeployments, FakeJobs, ImportBuilder,
};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

const NS: &str = "default";
const KEY: &str = "sk-deployment-reconciler";

struct Bed {
    _cluster: Cluster,
    client: Client,
    ctx: Arc<DeploymentContext>,
    import_ctx: Arc<ImportContext>,
    fake: Arc<FakeDeployments>,
    jobs: Arc<FakeJobs>,
}

impl Bed {
    async fn new() -> Bed {
        let cluster = Cluster::start().await.expect("the API server starts");
        let client = cluster.client(NS).await.expect("a client");
        for kind in Kind::ALL {
            apply_crd(&client, &kind.definition())
                .await
                .expect("the CRD");
        }
        let secrets: Api<Secret> = Api::namespaced(client.clone(), NS);
        let secret: Secret = serde_json::from_value(api_key_secret("dashscope", KEY)).unwrap();
        secrets
            .create(&PostParams::default(), &secret)
            .await
            .unwrap();
        let config = Config {
            poll_interval: Duration::from_millis(100),
            backoff: BackoffPolicy {
                base: Duration::from_millis(50),
                cap: Duration::from_secs(1),
            },
            create_grace: Duration::ZERO,
            poll_jitter: 0.0,
            qps: 1000.0,
            burst: 100,
            ..Config::new("http://127.0.0.1:1")
        };
        let metrics = Arc::new(Metrics::default());
        let jobs = Arc::new(FakeJobs::new());
        let layered_jobs = layered(jobs.clone(), &config, metrics.clone());
        let pass = Arc::new(Context::new(client.clone(), metrics, config));
        let import_ctx = Arc::new(ImportContext::new(pass.clone(), layered_jobs));
        let fake = Arc::new(FakeDeployments::new());
        let ctx = Arc::new(DeploymentContext {
            pass,
            deployments: fake.clone(),
            // Empty: the reconciler reads the ModelImport from the API server.
            imports: Writer::<ModelImport>::default().as_reader(),
        });
        Bed {
            _cluster: cluster,
            client,
            ctx,
            import_ctx,
            fake,
            jobs,
        }
    }

    fn deployments(&self) -> Api<ModelDeployment> {
        Api::namespaced(self.client.clone(), NS)
    }

    fn imports(&self) -> Api<ModelImport> {
        Api::namespaced(self.client.clone(), NS)
    }

    async fn apply(&self, name: &str, spec: Value) {
        let obj: ModelDeployment = serde_json::from_value(json!({
            "apiVersion": "modelstudio.io/v1alpha1", "kind": "ModelDeployment",
            "metadata": {"name": name, "namespace": NS},
            "spec": spec,
        }))
        .unwrap();
        self.deployments()
            .create(&PostParams::default(), &obj)
            .await
            .expect("the ModelDeployment is admitted");
    }

    async fn get(&self, name: &str) -> ModelDeployment {
        self.deployments().get(name).await.expect("it exists")
    }

    /// One pass of the deployment reconciler over the stored object.
    async fn step(&self, name: &str) {
        let obj = self.get(name).await;
        reconcile(Arc::new(obj), self.ctx.clone())
            .await
            .expect("the reconcile succeeds");
    }

    async fn steps(&self, name: &str, n: usize) {
        for _ in 0..n {
            self.step(name).await;
        }
    }

    /// One pass of the import reconciler.
    async fn step_import(&self, name: &str) {
        let obj = self.imports().get(name).await.expect("the import exists");
        import::reconcile(Arc::new(obj), self.import_ctx.clone())
            .await
            .expect("the import reconcile succeeds");
    }

    async fn reason(&self, name: &str) -> String {
        ready_reason(&self.get(name).await)
    }
}

fn ready_reason(d: &ModelDeployment) -> String {
    d.status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"))
        .map(|c| c.reason.clone())
        .unwrap_or_default()
}

fn stalled_message(d: &ModelDeployment) -> String {
    d.status
        .as_ref()
        .and_then(|s| {
            s.conditions
                .iter()
                .find(|c| c.type_ == "Stalled" && c.status == "True")
        })
        .map(|c| c.message.clone())
        .unwrap_or_default()
}

/// A bed whose ModelDeployment `d` of qwen-turbo is Running.
async fn running_deployment() -> Bed {
    let bed = Bed::new().await;
    bed.apply("d", by_model("qwen-turbo")).await;
    bed.steps("d", 2).await;
    bed.fake.finish("qwen-turbo");
    bed.step("d").await;
    assert_eq!(bed.reason("d").await, "DeploymentRunning");
    bed
}

fn by_model(model: &str) -> Value {
    json!({"modelName": model, "capacity": 2, "apiKeySecretRef": {"name": "dashscope"}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_create_answer_is_adopted_never_created_again() {
    let bed = Bed::new().await;
    bed.apply("d", by_model("qwen-turbo")).await;
    bed.step("d").await; // the finalizer
                         // The create reaches Model Studio but its answer is lost.
    bed.fake.fail_next(Operation::DeploymentCreate, || {
        ApiError::Timeout(Duration::from_secs(30))
    });
    bed.step("d").await;
    let d = bed.get("d").await;
    let status = d.status.clone().unwrap();
    assert_eq!(ready_reason(&d), "CreateUnconfirmed");
    assert!(status.create_attempted_at.is_some(), "the intent is kept");
    let display = status
        .display_name
        .clone()
        .expect("the display name was recorded");
    assert!(bed.fake.deployments().is_empty());
    // What the lost create made, with the display name it carried.
    bed.fake.insert(&NewDeployment {
        model_name: "qwen-turbo".into(),
        capacity: Some(2),
        name: Some(display),
        ..Default::default()
    });
    bed.step("d").await;
    let d = bed.get("d").await;
    let status = d.status.clone().unwrap();
    assert_eq!(status.deployed_model.as_deref(), Some("qwen-turbo"));
    assert_eq!(status.create_attempted_at, None);
    assert_eq!(bed.fake.deployments().len(), 1, "no second deployment");
    assert_eq!(
        bed.fake.count(Operation::DeploymentCreate),
        1,
        "one create was sent"
    );
    assert_eq!(
        bed.fake.count(Operation::DeploymentList),
        1,
        "found by one listing"
    );
    // It comes up; Ready once RUNNING at the asked capacity.
    bed.fake.finish("qwen-turbo");
    bed.step("d").await;
    assert_eq!(bed.reason("d").await, "DeploymentRunning");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_taken_by_another_deployment_stalls_without_retrying() {
    let bed = Bed::new().await;
    // Someone else deployed the model without a suffix.
    bed.fake.insert(&NewDeployment {
        model_name: "qwen-turbo".into(),
        capacity: Some(2),
        name: Some("theirs".into()),
        ..Default::default()
    });
    bed.apply("d", by_model("qwen-turbo")).await;
    bed.steps("d", 2).await;
    let d = bed.get("d").await;
    assert_eq!(ready_reason(&d), "DeployedModelConflict");
    assert!(
        stalled_message(&d).contains("spec.suffix"),
        "{}",
        stalled_message(&d)
    );
    assert_eq!(d.status.as_ref().unwrap().create_attempted_at, None);
    // Stalled on this spec: the next passes send nothing.
    bed.steps("d", 2).await;
    assert_eq!(bed.fake.count(Operation::DeploymentCreate), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lora_deployment_is_not_scaled_and_says_why() {
    let bed = Bed::new().await;
    bed.apply(
        "d",
        json!({"modelName": "qwen-turbo", "plan": "lora", "capacity": 2,
               "apiKeySecretRef": {"name": "dashscope"}}),
    )
    .await;
    bed.steps("d", 2).await;
    bed.fake.finish("qwen-turbo");
    bed.step("d").await;
    assert_eq!(bed.reason("d").await, "DeploymentRunning");
    bed.deployments()
        .patch(
            "d",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"capacity": 4}})),
        )
        .await
        .unwrap();
    bed.step("d").await;
    let d = bed.get("d").await;
    assert_eq!(ready_reason(&d), "ScaleUnsupported");
    assert!(
        stalled_message(&d).contains("set spec.capacity back to 2"),
        "{}",
        stalled_message(&d)
    );
    assert_eq!(
        bed.fake.count(Operation::DeploymentScale),
        0,
        "no call was made"
    );
    // Back to the deployed capacity: Ready again.
    bed.deployments()
        .patch(
            "d",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"capacity": 2}})),
        )
        .await
        .unwrap();
    bed.step("d").await;
    assert_eq!(bed.reason("d").await, "DeploymentRunning");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconcile_asked_by_annotation_reads_the_deployment_and_is_recorded() {
    let bed = running_deployment().await;
    let reads = bed.fake.count(Operation::DeploymentGet);
    bed.deployments()
        .patch(
            "d",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {
                "modelstudio.io/reconcile-requested-at": "1"
            }}})),
        )
        .await
        .unwrap();
    bed.step("d").await;
    assert_eq!(bed.fake.count(Operation::DeploymentGet), reads + 1);
    let d = bed.get("d").await;
    assert_eq!(ready_reason(&d), "DeploymentRunning");
    let status = d.status.expect("a status");
    assert_eq!(status.last_handled_reconcile_at.as_deref(), Some("1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_deployment_makes_no_call_and_its_deletion_lets_the_deployment_go() {
    let bed = running_deployment().await;
    let calls = bed.fake.calls().len();
    bed.deployments()
        .patch(
            "d",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"modelstudio.io/paused": "true"}}})),
        )
        .await
        .unwrap();
    bed.steps("d", 2).await;
    assert_eq!(bed.fake.calls().len(), calls, "no call while paused");
    let d = bed.get("d").await;
    assert_eq!(ready_reason(&d), "DeploymentRunning", "Ready as it was");
    let reconciling = d
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Reconciling"))
        .map(|c| (c.status.clone(), c.reason.clone()));
    assert_eq!(reconciling, Some(("False".into(), "Paused".into())));
    // Deleted while paused: released without a DELETE.
    bed.deployments()
        .delete("d", &Default::default())
        .await
        .unwrap();
    bed.step("d").await;
    assert!(
        bed.deployments().get_opt("d").await.unwrap().is_none(),
        "released"
    );
    assert_eq!(bed.fake.calls().len(), calls, "no DELETE");
    assert_eq!(bed.fake.count(Operation::DeploymentDelete), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_keeps_its_job_while_a_deployment_serves_its_model() {
    let bed = Bed::new().await;
    // The deployments' cache, as the controller fills it.
    let writer = bed
        .import_ctx
        .take_deployments_writer()
        .expect("the writer");
    let store = writer.as_reader();
    let watch = reflector::reflector(writer, watcher(bed.deployments(), Default::default()))
        .applied_objects();
    let watching = tokio::spawn(async move {
        use futures::StreamExt;
        watch.for_each(|_| async {}).await
    });
    let import: ModelImport = ImportBuilder::new("imp").secret("dashscope").build();
    bed.imports()
        .create(&PostParams::default(), &import)
        .await
        .unwrap();
    bed.apply(
        "d",
        json!({"modelImportRef": {"name": "imp"}, "capacity": 1,
               "apiKeySecretRef": {"name": "dashscope"}}),
    )
    .await;
    // The deployment waits for the import.
    bed.steps("d", 2).await;
    assert_eq!(bed.reason("d").await, "WaitingForImport");
    // The import succeeds; the deployment deploys its model.
    for _ in 0..3 {
        bed.step_import("imp").await;
    }
    let job = bed.jobs.jobs()[0].id.clone();
    bed.jobs.set_state(&job, JobState::Succeeded);
    // The workspace's poller sees the change within its poll interval.
    let mut model = None;
    for _ in 0..50 {
        bed.step_import("imp").await;
        let status = bed.imports().get("imp").await.unwrap().status.unwrap();
        if status.phase == Some(modelstudio_controller::crd::Phase::Succeeded) {
            model = status.model_name;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let model = model.expect("the import succeeded");
    bed.steps("d", 2).await;
    let d = bed.get("d").await;
    assert_eq!(
        d.status.as_ref().unwrap().deployed_model.as_deref(),
        Some(model.as_str()),
        "{:?}",
        d.status
    );
    tokio::time::timeout(Duration::from_secs(5), async {
        while store
            .get(&kube::runtime::reflector::ObjectRef::new("d").within(NS))
            .and_then(|d| d.status.clone())
            .and_then(|s| s.deployed_model)
            .is_none()
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the cache shows the deployment");

    // Both deleted at once: the import keeps its job, naming the deployment.
    bed.imports()
        .delete("imp", &DeleteParams::default())
        .await
        .unwrap();
    bed.deployments()
        .delete("d", &DeleteParams::default())
        .await
        .unwrap();
    bed.step_import("imp").await;
    let imp = bed.imports().get("imp").await.unwrap();
    let ready = imp
        .status
        .as_ref()
        .unwrap()
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap()
        .clone();
    assert_eq!(ready.reason, "ServedByDeployment");
    assert!(
        ready.message.contains("ModelDeployment d"),
        "{}",
        ready.message
    );
    assert_eq!(bed.jobs.count(Operation::Delete), 0);
    // The deployment goes: DELETE, then NotFound lets it go.
    bed.step("d").await;
    assert_eq!(bed.fake.count(Operation::DeploymentDelete), 1);
    bed.fake.finish(&model);
    bed.step("d").await;
    tokio::time::timeout(Duration::from_secs(5), async {
        while bed.deployments().get_opt("d").await.unwrap().is_some() || !store.state().is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the deployment is gone");
    // Then the import deletes its job.
    bed.step_import("imp").await;
    assert_eq!(bed.jobs.count(Operation::Delete), 1);
    watching.abort();
    assert!(
        bed.fake.deployments().is_empty(),
        "{:?}",
        bed.fake.deployments()
    );
}
