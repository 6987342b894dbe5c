//! `kubectl delete namespace` with ModelImports in every state, ModelDeployments and their
//! credentials Secrets: the namespace disappears by itself, every job that is not orphaned and
//! every deployment is deleted in Model Studio,
//! and no Secret keeps the controller's finalizer, also when the controller is killed in the
//! middle and started again. On the real control plane (its kube-controller-manager runs the
//! namespace cascade).
//!
//! Figures are printed: time until the namespaces are gone, leaked jobs, protected Secrets left.

use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, DeleteParams, PostParams};
use kube::Client;
use modelstudio_controller::crd::{definition, Kind, ModelDeployment, ModelImport, Phase};
use modelstudio_simulator::{OutcomeRequest, RunningSimulator, SimulatorConfig};
use modelstudio_testbed::{
    api_key_secret, apply_crd, run_bounded, test_runtime, Cluster, ControllerCommand,
    ImportBuilder, Proc, TempDir,
};
use std::future::Future;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_modelstudio-controller");
/// Imports named in a Secret and in the namespace's well-known Secret.
const TEAM: &str = "team-secrets";
/// Imports without credentials of their own: the controller's default key.
const SHARED: &str = "team-default-key";
const LIMIT: Duration = Duration::from_secs(90);

/// Waits, bounded, until `check` gives a value.
async fn eventually<T, F, Fut>(what: &str, log: impl Fn() -> String, check: F) -> T
where
    F: Fn() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + LIMIT;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}\n{}",
            log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn end(sim: &RunningSimulator, job: &str, status: &str) {
    sim.simulator
        .set_outcome(
            job,
            OutcomeRequest {
                status: Some(status.into()),
                error_code: None,
                finish_now: true,
            },
        )
        .expect("the simulator ends the job");
}

struct Bed {
    client: Client,
    sim: RunningSimulator,
    controller: ControllerCommand,
    dir: TempDir,
}

impl Bed {
    fn deployments(&self, ns: &str) -> Api<ModelDeployment> {
        Api::namespaced(self.client.clone(), ns)
    }

    async fn deployment(&self, ns: &str, metadata: serde_json::Value, spec: serde_json::Value) {
        let obj: ModelDeployment = serde_json::from_value(serde_json::json!({
            "apiVersion": "modelstudio.io/v1alpha1", "kind": "ModelDeployment",
            "metadata": metadata, "spec": spec,
        }))
        .expect("a ModelDeployment");
        self.deployments(ns)
            .create(&PostParams::default(), &obj)
            .await
            .expect("the ModelDeployment is created");
    }

    fn imports(&self, ns: &str) -> Api<ModelImport> {
        Api::namespaced(self.client.clone(), ns)
    }

    async fn import(&self, ns: &str, builder: ImportBuilder) {
        let import: ModelImport = builder.namespace(ns).build();
        self.imports(ns)
            .create(&PostParams::default(), &import)
            .await
            .expect("the ModelImport is created");
    }

    async fn status(
        &self,
        ns: &str,
        name: &str,
    ) -> Option<modelstudio_controller::crd::ModelImportStatus> {
        self.imports(ns).get(name).await.ok()?.status
    }

    async fn job(&self, ns: &str, name: &str, log: &Proc) -> String {
        eventually(
            &format!("{ns}/{name} gets a job"),
            || log.log(),
            || async { self.status(ns, name).await?.job_id },
        )
        .await
    }

    async fn phase(&self, ns: &str, name: &str, phase: Phase, log: &Proc) {
        eventually(
            &format!("{ns}/{name} is {phase:?}"),
            || log.log(),
            || async { (self.status(ns, name).await?.phase == Some(phase)).then_some(()) },
        )
        .await
    }

    async fn namespace_gone(&self, ns: &str) -> bool {
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        matches!(namespaces.get_opt(ns).await, Ok(None))
    }
}

struct Figures {
    gone_after: Duration,
    leaked: usize,
    orphaned_kept: usize,
    protected_left: usize,
}

async fn scenario(kill_controller: bool) -> Figures {
    let dir = TempDir::new(if kill_controller {
        "namespace-deletion-kill"
    } else {
        "namespace-deletion"
    });
    let cluster = Cluster::start().await.expect("an API server");
    let kubeconfig = dir.0.join("kubeconfig");
    cluster.write_kubeconfig(&kubeconfig, "default").unwrap();
    let client = cluster.client("default").await.expect("a client");
    for kind in Kind::ALL {
        apply_crd(&client, &kind.definition())
            .await
            .expect("the CRD");
    }
    // Jobs stay PENDING 2 s, then RUNNING until the test ends them.
    let sim = RunningSimulator::start(SimulatorConfig {
        pending_duration: Duration::from_secs(2),
        running_duration: Duration::from_secs(3600),
        ..SimulatorConfig::default()
    })
    .await
    .expect("the simulator");
    let controller = ControllerCommand::new(BIN, &kubeconfig, &sim.base_url())
        .flags(&["--poll-interval", "500ms", "--default-key-all-namespaces"])
        .env("DASHSCOPE_API_KEY", "sk-controller-default");
    let bed = Bed {
        client: client.clone(),
        sim,
        controller,
        dir,
    };

    let namespaces: Api<Namespace> = Api::all(client.clone());
    for ns in [TEAM, SHARED] {
        let namespace = serde_json::from_value(
            serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        )
        .unwrap();
        namespaces
            .create(&PostParams::default(), &namespace)
            .await
            .unwrap();
    }
    let secrets: Api<Secret> = Api::namespaced(client.clone(), TEAM);
    for (name, key) in [
        ("dashscope", "sk-team-secret"),
        ("modelstudio-credentials", "sk-team-namespace-default"),
        ("deploy-key", "sk-team-deploy"),
    ] {
        let secret = serde_json::from_value(api_key_secret(name, key)).unwrap();
        secrets
            .create(&PostParams::default(), &secret)
            .await
            .unwrap();
    }

    let mut proc = bed
        .controller
        .spawn("controller", &bed.dir.0)
        .expect("the controller starts");

    // Every state a namespace can hold when it goes.
    bed.import(TEAM, ImportBuilder::new("succeeded").secret("dashscope"))
        .await;
    bed.import(
        TEAM,
        ImportBuilder::new("failed").secret("dashscope").spec(
            "storage",
            serde_json::json!({"bucketName": "bucket", "objectKey": "models/simulate-failure/"}),
        ),
    )
    .await;
    bed.import(TEAM, ImportBuilder::new("running").secret("dashscope"))
        .await;
    bed.import(
        TEAM,
        ImportBuilder::new("never-created")
            .secret("dashscope")
            .spec("baseModel", "not-importable".into()),
    )
    .await;
    bed.import(
        TEAM,
        ImportBuilder::new("orphan")
            .secret("dashscope")
            .spec("deletionPolicy", "Orphan".into()),
    )
    .await;
    bed.import(TEAM, ImportBuilder::new("namespace-key")).await;
    bed.import(SHARED, ImportBuilder::new("default-key")).await;
    bed.import(SHARED, ImportBuilder::new("default-key-running"))
        .await;

    let succeeded = bed.job(TEAM, "succeeded", &proc).await;
    let failed = bed.job(TEAM, "failed", &proc).await;
    let namespace_key = bed.job(TEAM, "namespace-key", &proc).await;
    let default_key = bed.job(SHARED, "default-key", &proc).await;
    let orphan = bed.job(TEAM, "orphan", &proc).await;
    end(&bed.sim, &succeeded, "SUCCESSED");
    end(&bed.sim, &failed, "FAILED");
    end(&bed.sim, &namespace_key, "SUCCESSED");
    end(&bed.sim, &default_key, "SUCCESSED");
    bed.phase(TEAM, "succeeded", Phase::Succeeded, &proc).await;
    bed.phase(TEAM, "failed", Phase::Failed, &proc).await;
    bed.phase(TEAM, "running", Phase::Running, &proc).await;
    bed.phase(SHARED, "default-key-running", Phase::Running, &proc)
        .await;
    eventually(
        "never-created stalls",
        || proc.log(),
        || async {
            let s = bed.status(TEAM, "never-created").await?;
            s.conditions
                .iter()
                .any(|c| {
                    c.type_ == "Stalled" && c.status == "True" && c.reason == "BaseModelNotFound"
                })
                .then_some(())
        },
    )
    .await;
    // Two deployments: of the succeeded import (its Secret), and of a base model with a Secret
    // no import uses, which only the deployment keeps.
    bed.deployment(
        TEAM,
        serde_json::json!({"name": "serving"}),
        serde_json::json!({"modelImportRef": {"name": "succeeded"}, "capacity": 1,
                           "apiKeySecretRef": {"name": "dashscope"}}),
    )
    .await;
    bed.deployment(
        TEAM,
        serde_json::json!({"name": "base"}),
        serde_json::json!({"modelName": "qwen-turbo", "capacity": 2,
                           "apiKeySecretRef": {"name": "deploy-key"}}),
    )
    .await;
    for name in ["serving", "base"] {
        eventually(
            &format!("deployment {name} is made"),
            || proc.log(),
            || async {
                let d = bed.deployments(TEAM).get(name).await.ok()?;
                d.status?.deployed_model.map(|_| ())
            },
        )
        .await;
    }
    // Every credentials Secret a job or deployment needs is protected; the controller's default
    // key has none.
    for name in ["dashscope", "modelstudio-credentials", "deploy-key"] {
        eventually(
            &format!("{name} is protected"),
            || proc.log(),
            || async {
                let s = secrets.get(name).await.ok()?;
                s.metadata
                    .finalizers
                    .iter()
                    .flatten()
                    .any(|f| f == "modelstudio.io/credentials")
                    .then_some(())
            },
        )
        .await;
    }
    // One more, still PENDING when the namespace goes.
    bed.import(TEAM, ImportBuilder::new("pending").secret("dashscope"))
        .await;
    let pending = bed.job(TEAM, "pending", &proc).await;
    let running = bed.job(TEAM, "running", &proc).await;
    let default_running = bed.job(SHARED, "default-key-running", &proc).await;

    let started = Instant::now();
    for ns in [TEAM, SHARED] {
        namespaces
            .delete(ns, &DeleteParams::default())
            .await
            .unwrap();
    }
    // The unfinished jobs hold their deletion back (OperationDenied), as in Model Studio.
    eventually(
        "running's deletion is blocked",
        || proc.log(),
        || async {
            let s = bed.status(TEAM, "running").await?;
            s.conditions
                .iter()
                .any(|c| c.reason == "DeletionBlocked")
                .then_some(())
        },
    )
    .await;
    if kill_controller {
        proc.kill();
    }
    // The jobs finish in Model Studio while the namespace waits.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for job in [&pending, &running, &default_running] {
        end(&bed.sim, job, "SUCCESSED");
    }
    if kill_controller {
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(
            !bed.namespace_gone(TEAM).await,
            "nothing releases without the controller"
        );
        proc = bed
            .controller
            .spawn("controller", &bed.dir.0)
            .expect("the controller starts again");
    }
    for ns in [TEAM, SHARED] {
        eventually(
            &format!("namespace {ns} is gone"),
            || proc.log(),
            || async { bed.namespace_gone(ns).await.then_some(()) },
        )
        .await;
    }
    let gone_after = started.elapsed();
    let log = proc.log();
    proc.stop(Duration::from_secs(10));

    let jobs = bed.sim.simulator.jobs();
    let deployments = bed.sim.simulator.deployments();
    assert_eq!(deployments.len(), 2, "{deployments:?}");
    let leaked = jobs
        .iter()
        .filter(|j| !j.deleted && j.job_id != orphan)
        .count()
        + deployments.iter().filter(|d| !d.deleted).count();
    let orphaned_kept = jobs
        .iter()
        .filter(|j| !j.deleted && j.job_id == orphan)
        .count();
    let all_secrets: Api<Secret> = Api::all(client.clone());
    let protected_left = all_secrets
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .iter()
        .filter(|s| {
            s.metadata
                .finalizers
                .iter()
                .flatten()
                .any(|f| f == "modelstudio.io/credentials")
        })
        .count();
    assert_eq!(jobs.len(), 8, "every import but never-created made one job");
    assert!(!log.contains("sk-team"), "a key was logged");
    println!(
        "{:?}{}: namespaces gone {:.1} s after kubectl delete; leaked jobs {leaked}; orphaned job kept {orphaned_kept}; protected Secrets left {protected_left}",
        cluster.flavor(),
        if kill_controller { ", controller killed mid-way" } else { "" },
        gone_after.as_secs_f64()
    );
    Figures {
        gone_after,
        leaked,
        orphaned_kept,
        protected_left,
    }
}

fn run(kill_controller: bool) {
    let rt = test_runtime();
    let figures = rt.block_on(scenario(kill_controller));
    assert_eq!(figures.leaked, 0, "jobs leaked");
    assert_eq!(figures.orphaned_kept, 1, "the orphaned job is kept");
    assert_eq!(figures.protected_left, 0, "Secrets left with the finalizer");
    assert!(figures.gone_after < LIMIT);
}

#[test]
fn deleting_namespaces_deletes_every_job_and_leaves_nothing_behind() {
    run(false);
}

#[test]
fn deleting_namespaces_finishes_after_the_controller_was_killed_in_the_middle() {
    run(true);
}

/// Uninstalling in the documented order: stop the controller, `modelstudio-controller orphan`,
/// then a namespace deletion finishes with no controller at all and the job stays.
#[test]
fn after_orphan_a_namespace_goes_without_the_controller_and_its_job_stays() {
    let rt = test_runtime();
    rt.block_on(async {
        let dir = TempDir::new("namespace-orphan");
        let cluster = Cluster::start().await.expect("an API server");
        let kubeconfig = dir.0.join("kubeconfig");
        cluster.write_kubeconfig(&kubeconfig, "default").unwrap();
        let client = cluster.client("default").await.expect("a client");
        apply_crd(&client, &definition()).await.expect("the CRD");
        let sim = RunningSimulator::start(SimulatorConfig::default())
            .await
            .expect("the simulator");
        let namespaces: Api<Namespace> = Api::all(client.clone());
        let namespace = serde_json::from_value(
            serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": TEAM}}),
        )
        .unwrap();
        namespaces.create(&PostParams::default(), &namespace).await.unwrap();
        let secrets: Api<Secret> = Api::namespaced(client.clone(), TEAM);
        let secret = serde_json::from_value(api_key_secret("dashscope", "sk-orphan")).unwrap();
        secrets.create(&PostParams::default(), &secret).await.unwrap();
        let bed = Bed {
            client: client.clone(),
            controller: ControllerCommand::new(BIN, &kubeconfig, &sim.base_url()),
            sim,
            dir,
        };
        let mut proc = bed.controller.spawn("controller", &bed.dir.0).unwrap();
        bed.import(TEAM, ImportBuilder::new("kept").secret("dashscope")).await;
        let job = bed.job(TEAM, "kept", &proc).await;
        eventually("the Secret is protected", || proc.log(), || async {
            let s = secrets.get("dashscope").await.ok()?;
            (!s.metadata.finalizers.unwrap_or_default().is_empty()).then_some(())
        })
        .await;
        proc.stop(Duration::from_secs(10));

        let mut orphan = std::process::Command::new(BIN);
        orphan
            .args(["orphan", "--namespace", TEAM])
            .env("KUBECONFIG", &kubeconfig);
        let out = run_bounded(orphan, Duration::from_secs(60));
        assert!(out.ok(), "{out:?}");
        assert!(
            out.stdout.contains("1 ModelImports keep their jobs")
                && out.stdout.contains("1 credentials Secrets released"),
            "{}",
            out.stdout
        );
        namespaces.delete(TEAM, &DeleteParams::default()).await.unwrap();
        eventually("the namespace is gone without a controller", String::new, || async {
            bed.namespace_gone(TEAM).await.then_some(())
        })
        .await;
        let jobs = bed.sim.simulator.jobs();
        assert!(jobs.iter().any(|j| j.job_id == job && !j.deleted), "the job stays");
    });
}
