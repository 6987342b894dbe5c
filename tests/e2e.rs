//! End to end, as a user works: the real control plane (kube-apiserver 1.37) and the Model
//! Studio simulator run on free
//! ports of 127.0.0.1, the real controller binary runs as its own process,
//! and everything is driven with real kubectl 1.37 (`scripts/test.sh` installs it).
//!
//! Every wait is bounded: kubectl commands get `--request-timeout` (or `--timeout`) and are also
//! killed after a deadline; poll loops have deadlines.

use modelstudio_simulator::{OutcomeRequest, RunningSimulator, SimulatorConfig, Stats};
use modelstudio_testbed::metrics::{samples, scrape, sum, Sample};
use modelstudio_testbed::{require_kubectl, table, Kubectl, Proc, TempDir};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_modelstudio-controller");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// The placeholder key of examples/secret.yaml: it must never show up in any output.
const EXAMPLE_KEY: &str = "sk-sandbox-demo";

fn root(rel: &str) -> String {
    Path::new(ROOT).join(rel).display().to_string()
}

/// The API server and the simulator in this process, the controller as a process, kubectl.
struct Cluster {
    kubectl: Kubectl,
    sim: RunningSimulator,
    controller: Option<Proc>,
    dir: TempDir,
    /// Held for its drop, which stops the API server.
    _bed: modelstudio_testbed::Cluster,
    // Last: the servers' tasks stop with it.
    _rt: tokio::runtime::Runtime,
}

impl Cluster {
    /// Servers up and the CRD applied with kubectl; the controller not started yet.
    fn start(name: &str, sim_config: SimulatorConfig) -> Self {
        require_kubectl();
        let dir = TempDir::new(name);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        let kubeconfig = dir.0.join("kubeconfig");
        let bed = rt
            .block_on(modelstudio_testbed::Cluster::start())
            .expect("start the Kubernetes API server");
        bed.write_kubeconfig(&kubeconfig, "default")
            .expect("kubeconfig");
        let sim = rt
            .block_on(RunningSimulator::start(sim_config))
            .expect("start the simulator");
        let kubectl = Kubectl::new(kubeconfig, &dir.0);
        let out = kubectl.run(&["apply", "-f", &root("crds/")]);
        assert!(
            out.contains(
                "customresourcedefinition.apiextensions.k8s.io/modelimports.modelstudio.io created"
            ),
            "{out}"
        );
        kubectl.run(&[
            "wait",
            "--for=condition=Established",
            "crd/modelimports.modelstudio.io",
            "--timeout=30s",
        ]);
        Cluster {
            kubectl,
            sim,
            controller: None,
            dir,
            _bed: bed,
            _rt: rt,
        }
    }

    /// Short timers: a job is pending 1s, then running 3s.
    fn quick(name: &str) -> Self {
        Self::start(
            name,
            SimulatorConfig {
                pending_duration: Duration::from_secs(1),
                running_duration: Duration::from_secs(3),
                ..SimulatorConfig::default()
            },
        )
    }

    /// Starts the controller binary against the servers.
    fn start_controller(&mut self) {
        self.start_controller_with(&[]);
    }

    /// Starts the controller binary against the servers, with `extra` flags (which replace the
    /// test's defaults of the same name).
    fn start_controller_with(&mut self, extra: &[&str]) {
        let url = self.sim.base_url();
        let defaults = [
            ("--endpoint", url.as_str()),
            ("--poll-interval", "1s"),
            ("--backoff-base", "500ms"),
            ("--metrics-addr", "127.0.0.1:0"),
        ];
        let mut cmd = Command::new(BIN);
        cmd.arg("run");
        for (flag, value) in defaults.iter().filter(|(f, _)| !extra.contains(f)) {
            cmd.args([flag, value]);
        }
        cmd.args(extra)
            .env("KUBECONFIG", self.kubectl.kubeconfig())
            .env("RUST_LOG", "info")
            .env_remove("DASHSCOPE_API_KEY")
            .env_remove("MODELSTUDIO_NAMESPACE")
            .env_remove("MODELSTUDIO_ENDPOINT");
        self.controller =
            Some(Proc::spawn("controller", cmd, &self.dir.0).expect("start the controller"));
    }

    fn stats(&self) -> Stats {
        self.sim.simulator.stats()
    }

    /// The controller's /metrics, at the address its log names.
    fn metrics(&self) -> Vec<Sample> {
        let log = self.controller_log();
        let addr = log
            .lines()
            .find(|l| l.contains("serving /metrics"))
            .and_then(|l| l.split("addr=").nth(1))
            .map(|a| a.split_whitespace().next().unwrap_or_default().to_string())
            .expect("the controller logs its metrics address");
        samples(&self._rt.block_on(scrape(&addr)).expect("a scrape"))
    }

    /// Controller output, checked for the API key.
    fn controller_log(&self) -> String {
        self.controller.as_ref().map(Proc::log).unwrap_or_default()
    }

    fn write(&self, file: &str, text: &str) -> String {
        let path = self.dir.0.join(file);
        std::fs::write(&path, text).expect("write a manifest");
        path.display().to_string()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // The controller first, then the servers (with the runtime).
        self.controller = None;
    }
}

fn example(file: &str) -> String {
    root(&format!("examples/{file}"))
}

fn ready_reason(k: &Kubectl, resource: &str) -> String {
    k.jsonpath(
        resource,
        r#"{.status.phase}/{.status.conditions[?(@.type=="Ready")].reason}"#,
    )
    .stdout
}

#[test]
fn import_becomes_ready_shows_its_columns_and_delete_removes_the_job_once() {
    let mut c = Cluster::quick("ready");
    let k = &c.kubectl;

    // The CRD documents itself. kube-apiserver publishes a new CRD's OpenAPI a moment after it
    // is Established, so explain is retried for a bounded while.
    let mut explain = k.try_run(&["explain", "modelimport.spec"]);
    for _ in 0..60 {
        if explain.ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
        explain = k.try_run(&["explain", "modelimport.spec"]);
    }
    assert!(explain.ok(), "kubectl explain failed: {}", explain.stderr);
    let explain = explain.stdout;
    for text in [
        "baseModel",
        "weightType",
        "storage",
        "apiKeySecretRef",
        "immutable",
    ] {
        assert!(explain.contains(text), "explain lacks {text}:\n{explain}");
    }
    let explain = k.run(&["explain", "mimport.spec.storage.objectKey"]);
    assert!(explain.contains("ends with `/`"), "{explain}");

    c.start_controller();
    let k = &c.kubectl;
    let out = k.run(&[
        "apply",
        "-f",
        &example("secret.yaml"),
        "-f",
        &example("modelimport.yaml"),
    ]);
    assert!(out.contains("secret/dashscope created"), "{out}");
    assert!(
        out.contains("modelimport.modelstudio.io/qwen3-lora created"),
        "{out}"
    );
    k.run(&[
        "wait",
        "mimport/qwen3-lora",
        "--for=condition=Ready",
        "--timeout=60s",
    ]);

    // The printer columns, as a user reads them.
    let rows = table(&k.run(&["get", "modelimports"]));
    assert_eq!(
        rows[0],
        ["NAME", "PHASE", "MODEL", "JOB", "READY", "AGE"],
        "{rows:?}"
    );
    let job = k.jsonpath("mimport/qwen3-lora", "{.status.jobId}").stdout;
    let model = k
        .jsonpath("mimport/qwen3-lora", "{.status.modelName}")
        .stdout;
    assert!(
        !job.is_empty() && model.starts_with("qwen3-32b"),
        "{job} {model}"
    );
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(
        rows[1][..5],
        ["qwen3-lora", "Succeeded", &model, &job, "True"]
    );
    let wide = k.run(&["get", "mimport", "-A", "-o", "wide"]);
    assert!(
        wide.contains("NAMESPACE") && wide.contains("default"),
        "{wide}"
    );
    let finalizers = k
        .jsonpath("mimport/qwen3-lora", "{.metadata.finalizers}")
        .stdout;
    assert!(
        finalizers.contains("modelstudio.io/cleanup"),
        "{finalizers}"
    );
    let conditions = k
        .jsonpath(
            "mimport/qwen3-lora",
            r#"{range .status.conditions[*]}{.type}={.status}/{.reason};{end}"#,
        )
        .stdout;
    assert!(
        conditions.contains("Ready=True/JobSucceeded")
            && conditions.contains("Reconciling=False")
            && conditions.contains("Stalled=False"),
        "{conditions}"
    );

    // Applying the same file again changes nothing and creates no second job.
    let out = k.run(&["apply", "-f", &example("modelimport.yaml")]);
    assert!(out.contains("unchanged"), "{out}");
    std::thread::sleep(Duration::from_millis(1500));
    let stats = c.stats();
    assert_eq!(stats.create.total, 1, "{stats:?}");
    assert_eq!(stats.create.status(200), 1, "{stats:?}");
    assert_eq!(stats.delete.total, 0, "{stats:?}");

    // Reconcile now, as the README says: the finished job is read at once (its resync is 30
    // minutes away) and the value handled shows in the status, for `kubectl wait`.
    let reads = c.stats().get.total;
    k.run(&[
        "annotate",
        "mimport",
        "qwen3-lora",
        "modelstudio.io/reconcile-requested-at=first",
        "--overwrite",
    ]);
    k.run(&[
        "wait",
        "mimport/qwen3-lora",
        "--for=jsonpath={.status.lastHandledReconcileAt}=first",
        "--timeout=30s",
    ]);
    assert_eq!(c.stats().get.total, reads + 1, "read once, at once");

    // Delete: kubectl waits until the controller deleted the job and released the resource.
    let out = k.run(&["delete", "mimport", "qwen3-lora", "--timeout=60s"]);
    assert!(out.contains("deleted"), "{out}");
    let gone = k.fail(&["get", "mimport", "qwen3-lora"]);
    assert!(gone.contains("not found"), "{gone}");
    let stats = c.stats();
    assert_eq!(stats.delete.status(200), 1, "{stats:?}");
    assert_eq!(stats.delete.total, 1, "{stats:?}");
    let jobs = c.sim.simulator.jobs();
    assert!(
        jobs.iter().any(|j| j.job_id == job && j.deleted),
        "{jobs:?}"
    );
    assert!(!c.controller_log().contains(EXAMPLE_KEY));
}

/// The example import applied with its Secret, its job running (for `running`) in a cluster
/// whose controller runs; the job's ID.
fn running_example(name: &str, running: Duration) -> (Cluster, String) {
    let c = applied_example(name, running, &[]);
    c.kubectl.run(&[
        "wait",
        "mimport/qwen3-lora",
        "--for=jsonpath={.status.phase}=Running",
        "--timeout=60s",
    ]);
    let job = c
        .kubectl
        .jsonpath("mimport/qwen3-lora", "{.status.jobId}")
        .stdout;
    assert!(!job.is_empty());
    (c, job)
}

/// examples/secret.yaml and examples/modelimport.yaml applied, the controller started with
/// `flags`; jobs pending 0.5 s, then running for `running`.
fn applied_example(name: &str, running: Duration, flags: &[&str]) -> Cluster {
    let mut c = Cluster::start(
        name,
        SimulatorConfig {
            pending_duration: Duration::from_millis(500),
            running_duration: running,
            ..SimulatorConfig::default()
        },
    );
    c.start_controller_with(flags);
    let k = &c.kubectl;
    k.run(&[
        "apply",
        "-f",
        &example("secret.yaml"),
        "-f",
        &example("modelimport.yaml"),
    ]);
    c
}

#[test]
fn delete_of_a_running_import_waits_in_deleting_until_the_job_ends() {
    // The job would run for a minute; the test ends it through the simulator instead.
    let (c, job) = running_example("deleting", Duration::from_secs(60));
    let k = &c.kubectl;

    let out = k.run(&["delete", "mimport", "qwen3-lora", "--wait=false"]);
    assert!(out.contains("deleted"), "{out}");
    k.poll_jsonpath(
        "mimport/qwen3-lora",
        r#"{.status.phase}/{.status.conditions[?(@.type=="Ready")].reason}"#,
        Duration::from_secs(30),
        |s| s == "Deleting/DeletionBlocked",
    );
    // It stays there while the job runs: the controller keeps asking, Model Studio keeps refusing.
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(
        ready_reason(k, "mimport/qwen3-lora"),
        "Deleting/DeletionBlocked"
    );
    let rows = table(&k.run(&["get", "mimport", "qwen3-lora"]));
    assert_eq!(rows[1][1], "Deleting", "{rows:?}");
    let message = k
        .jsonpath(
            "mimport/qwen3-lora",
            r#"{.status.conditions[?(@.type=="Ready")].message}"#,
        )
        .stdout;
    assert!(message.contains("still pending or running"), "{message}");
    let stats = c.stats();
    assert_eq!(stats.delete.status(200), 0, "{stats:?}");
    assert!(stats.delete.code("OperationDenied") >= 2, "{stats:?}");

    // The job ends: the next attempt deletes it and the resource disappears.
    c.sim
        .simulator
        .set_outcome(
            &job,
            OutcomeRequest {
                status: Some("SUCCESSED".into()),
                error_code: None,
                finish_now: true,
            },
        )
        .expect("finish the job");
    k.run(&[
        "wait",
        "mimport/qwen3-lora",
        "--for=delete",
        "--timeout=30s",
    ]);
    let stats = c.stats();
    assert_eq!(stats.delete.status(200), 1, "{stats:?}");
    assert_eq!(stats.create.total, 1, "{stats:?}");
    assert!(c
        .sim
        .simulator
        .jobs()
        .iter()
        .any(|j| j.job_id == job && j.deleted));
}

/// Pauses ModelImport `name` with its annotation and waits until its conditions say so.
fn pause(k: &Kubectl, name: &str) {
    k.run(&["annotate", "mimport", name, "modelstudio.io/paused=true"]);
    k.run(&[
        "wait",
        &format!("mimport/{name}"),
        "--for=jsonpath={.status.conditions[?(@.type==\"Reconciling\")].reason}=Paused",
        "--timeout=30s",
    ]);
}

#[test]
fn a_paused_import_calls_nothing_and_its_deletion_keeps_the_job() {
    let (c, job) = running_example("paused", Duration::from_secs(600));
    let k = &c.kubectl;
    pause(k, "qwen3-lora");
    let calls = c.sim.simulator.requests().len();
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(
        c.sim.simulator.requests().len(),
        calls,
        "no call while paused (the poll interval is 1 s)"
    );
    // Deleting a paused import while its job runs: released at once, the job left running.
    k.run(&["delete", "mimport", "qwen3-lora", "--timeout=30s"]);
    assert_eq!(c.stats().delete.total, 0, "no DELETE");
    let jobs = c.sim.simulator.jobs();
    assert!(
        jobs.iter().any(|j| j.job_id == job && !j.deleted),
        "{jobs:?}"
    );
    let events = k.run(&[
        "get",
        "events",
        "--field-selector",
        "reason=Orphaned",
        "-o",
        "name",
    ]);
    assert!(!events.trim().is_empty(), "an Orphaned event");
}

#[test]
fn failed_job_is_stalled_with_the_remote_error_and_not_retried() {
    let mut c = Cluster::quick("failed");
    c.start_controller();
    let k = &c.kubectl;
    k.run(&[
        "apply",
        "-f",
        &example("secret.yaml"),
        "-f",
        &example("failing-modelimport.yaml"),
    ]);
    k.run(&[
        "wait",
        "mimport/qwen3-lora-broken",
        "--for=condition=Stalled",
        "--timeout=60s",
    ]);
    assert_eq!(
        ready_reason(k, "mimport/qwen3-lora-broken"),
        "Failed/JobFailed"
    );
    let error = k
        .jsonpath("mimport/qwen3-lora-broken", "{.status.errorCode}")
        .stdout;
    assert!(error.contains("Failed to get files from OSS"), "{error}");
    let rows = table(&k.run(&["get", "mimport"]));
    assert_eq!(rows[1][0], "qwen3-lora-broken", "{rows:?}");
    assert_eq!(rows[1][1], "Failed", "{rows:?}");
    assert_eq!(rows[1][4], "False", "{rows:?}");

    // Not created again.
    std::thread::sleep(Duration::from_millis(2000));
    assert_eq!(c.stats().create.total, 1);

    // A failed job can be deleted at once.
    k.run(&[
        "delete",
        "-f",
        &example("failing-modelimport.yaml"),
        "--timeout=60s",
    ]);
    let stats = c.stats();
    assert_eq!(stats.delete.status(200), 1, "{stats:?}");
}

#[test]
fn invalid_manifests_and_immutable_changes_are_refused_with_readable_messages() {
    // Validation is the API server's: no controller needed.
    let c = Cluster::quick("invalid");
    let k = &c.kubectl;
    let bad = c.write(
        "bad.yaml",
        "apiVersion: modelstudio.io/v1alpha1\nkind: ModelImport\nmetadata:\n  name: bad\nspec:\n  \
         baseModel: Qwen3\n  weightType: half\n  storage:\n    bucketName: my-model-bucket\n    \
         objectKey: models/no-slash\n",
    );
    let err = k.fail(&["apply", "-f", &bad]);
    assert!(err.contains(r#"The ModelImport "bad" is invalid"#), "{err}");
    assert!(
        err.contains(
            r#"spec.weightType: Unsupported value: "half": supported values: "lora", "full""#
        ),
        "{err}"
    );
    assert!(
        err.contains(r#"spec.storage.objectKey: Invalid value: "models/no-slash""#),
        "{err}"
    );
    assert!(err.contains("spec.baseModel"), "{err}");

    let missing = c.write(
        "missing.yaml",
        "apiVersion: modelstudio.io/v1alpha1\nkind: ModelImport\nmetadata:\n  name: missing\nspec:\n  \
         weightType: lora\n",
    );
    let err = k.fail(&["apply", "-f", &missing]);
    assert!(err.contains("spec.baseModel: Required value"), "{err}");
    assert!(err.contains("spec.storage: Required value"), "{err}");
    k.fail(&["get", "mimport", "bad"]);

    // Immutable fields: an update is refused, with the CRD's message.
    k.run(&["apply", "-f", &example("modelimport.yaml")]);
    let original = std::fs::read_to_string(example("modelimport.yaml")).unwrap();
    let changed = original.replace("baseModel: qwen3-32b", "baseModel: qwen3-14b");
    assert_ne!(original, changed);
    let changed = c.write("changed.yaml", &changed);
    let err = k.fail(&["apply", "-f", &changed]);
    assert!(
        err.contains("baseModel is immutable: create a new ModelImport to import again"),
        "{err}"
    );
    let err = k.fail(&[
        "patch",
        "mimport",
        "qwen3-lora",
        "--type=merge",
        "-p",
        r#"{"spec":{"storage":{"bucketName":"other-bucket"}}}"#,
    ]);
    assert!(err.contains("storage is immutable"), "{err}");
    let base = k.jsonpath("mimport/qwen3-lora", "{.spec.baseModel}").stdout;
    assert_eq!(base, "qwen3-32b");
    // deletionPolicy is not immutable.
    k.run(&[
        "patch",
        "mimport",
        "qwen3-lora",
        "--type=merge",
        "-p",
        r#"{"spec":{"deletionPolicy":"Orphan"}}"#,
    ]);
}

/// Short timers for a deployment: pending 2 s, updating and deleting 1 s.
fn deployment_timers() -> SimulatorConfig {
    SimulatorConfig {
        pending_duration: Duration::from_secs(1),
        running_duration: Duration::from_secs(3),
        deployment_pending_duration: Duration::from_secs(2),
        deployment_updating_duration: Duration::from_secs(1),
        deployment_deleting_duration: Duration::from_secs(1),
        ..SimulatorConfig::default()
    }
}

#[test]
fn import_and_deployment_applied_together_serve_scale_and_delete_together() {
    use modelstudio_simulator::Endpoint;
    let mut c = Cluster::start("deployment", deployment_timers());
    c.start_controller();
    let k = &c.kubectl;
    // As a GitOps tool applies a folder: everything at once.
    let out = k.run(&[
        "apply",
        "-f",
        &example("secret.yaml"),
        "-f",
        &example("modelimport.yaml"),
        "-f",
        &example("modeldeployment.yaml"),
    ]);
    assert!(
        out.contains("modeldeployment.modelstudio.io/qwen3-lora created"),
        "{out}"
    );
    // While the import runs, the deployment says what it waits for.
    let mut waiting = String::new();
    for _ in 0..40 {
        waiting = ready_reason(k, "mdeploy/qwen3-lora");
        if waiting == "Pending/WaitingForImport" {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(waiting, "Pending/WaitingForImport");
    let message = k
        .jsonpath(
            "mdeploy/qwen3-lora",
            r#"{.status.conditions[?(@.type=="Reconciling")].message}"#,
        )
        .stdout;
    assert!(message.contains("ModelImport qwen3-lora"), "{message}");
    assert_eq!(c.stats().deployment_create.total, 0);

    k.run(&[
        "wait",
        "mdeploy/qwen3-lora",
        "--for=condition=Ready",
        "--timeout=90s",
    ]);
    let model = k
        .jsonpath("mimport/qwen3-lora", "{.status.modelName}")
        .stdout;
    let listed = k.run(&["get", "modeldeployments"]);
    let header: Vec<&str> = listed
        .lines()
        .next()
        .unwrap_or_default()
        .split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(
        header,
        [
            "NAME",
            "MODEL",
            "PHASE",
            "CAPACITY",
            "READY CAPACITY",
            "READY",
            "AGE"
        ],
        "{listed}"
    );
    let rows = table(&listed);
    assert_eq!(
        rows[1][..6],
        ["qwen3-lora", &model, "Running", "1", "1", "True"],
        "{rows:?}"
    );
    let deployed = k
        .jsonpath("mdeploy/qwen3-lora", "{.status.deployedModel}")
        .stdout;
    assert_eq!(
        deployed, model,
        "no suffix: the deployed model is the model"
    );

    // Scale: the capacity changes in place, through UPDATING, and Ready comes back.
    k.run(&[
        "patch",
        "mdeploy",
        "qwen3-lora",
        "--type=merge",
        "-p",
        r#"{"spec":{"capacity":2}}"#,
    ]);
    k.run(&[
        "wait",
        "mdeploy/qwen3-lora",
        "--for=jsonpath={.status.readyCapacity}=2",
        "--timeout=60s",
    ]);
    k.run(&[
        "wait",
        "mdeploy/qwen3-lora",
        "--for=condition=Ready",
        "--timeout=60s",
    ]);
    let stats = c.stats();
    assert_eq!(stats.deployment_scale.status(200), 1, "{stats:?}");
    assert_eq!(stats.deployment_create.total, 1, "{stats:?}");

    // Delete both at once: kubectl waits until both are gone; the job goes after the deployment.
    let out = k.run(&[
        "delete",
        "-f",
        &example("modeldeployment.yaml"),
        "-f",
        &example("modelimport.yaml"),
        "--timeout=90s",
    ]);
    assert!(out.contains("deleted"), "{out}");
    assert!(k
        .fail(&["get", "mdeploy", "qwen3-lora"])
        .contains("not found"));
    assert!(k
        .fail(&["get", "mimport", "qwen3-lora"])
        .contains("not found"));
    let deployments = c.sim.simulator.deployments();
    assert_eq!(deployments.len(), 1, "{deployments:?}");
    assert!(deployments[0].deleted, "{deployments:?}");
    let requests = c.sim.simulator.requests();
    let first = |endpoint: Endpoint, status: u16| {
        requests
            .iter()
            .find(|r| r.endpoint == endpoint && r.status == status)
            .map(|r| r.seq)
    };
    let deployment_gone =
        first(Endpoint::DeploymentGet, 404).expect("the deployment was seen gone");
    let job_deleted = first(Endpoint::Delete, 200).expect("the job was deleted");
    assert!(
        deployment_gone < job_deleted,
        "the job was deleted (request {job_deleted}) before the deployment was gone (request {deployment_gone})"
    );
    let stats = c.stats();
    assert_eq!(stats.delete.status(200), 1, "{stats:?}");
    assert_eq!(stats.deployment_delete.status(200), 1, "{stats:?}");
    // The simulator answers a deployment DELETE with the status alone, as the official SDK types
    // it: a delete accepted, counted as such, never as an error.
    let metrics = c.metrics();
    let deletes = |result: &str| {
        sum(
            &metrics,
            "modelstudio_api_requests_total",
            &[("operation", "deployment_delete"), ("result", result)],
        )
    };
    assert_eq!(deletes("ok"), 1.0, "{metrics:?}");
    let errors: f64 = metrics
        .iter()
        .filter(|s| s.name == "modelstudio_api_requests_total")
        .filter(|s| s.labels.get("result").is_some_and(|r| r != "ok"))
        .filter(|s| {
            s.labels
                .get("operation")
                .is_some_and(|o| o.starts_with("deployment_"))
        })
        .map(|s| s.value)
        .sum();
    // A deployment seen gone (a get's NotFound) ends the wait: the only error a deletion meets.
    assert_eq!(
        errors,
        sum(
            &metrics,
            "modelstudio_api_requests_total",
            &[("operation", "deployment_get"), ("result", "NotFound")],
        ),
        "{metrics:?}"
    );
    assert!(!c.controller_log().contains(EXAMPLE_KEY));
}

/// The data of ConfigMap `name`, as `envFrom` would give it to a container.
fn config_map_env(k: &Kubectl, name: &str) -> serde_json::Map<String, serde_json::Value> {
    let out = k.run(&["get", "configmap", name, "-o", "json"]);
    let cm: serde_json::Value = serde_json::from_str(&out).expect("a ConfigMap as JSON");
    cm["data"].as_object().cloned().unwrap_or_default()
}

/// examples/apps/chat-app.yaml's program, run here (python3) with the ConfigMap's values as `envFrom`
/// gives them and the key as its `secretKeyRef` does: what the app printed, or its error.
fn run_chat_app(k: &Kubectl, config_map: &str) -> Result<String, String> {
    let script = k.run(&[
        "create",
        "--dry-run=client",
        "-f",
        &example("apps/chat-app.yaml"),
        "-o",
        "jsonpath={.spec.template.spec.containers[0].args[0]}",
    ]);
    let mut app = Command::new("python3");
    app.args(["-c", &script])
        .env("CHAT_ONCE", "1")
        .env("OPENAI_API_KEY", EXAMPLE_KEY);
    for (name, value) in config_map_env(k, config_map) {
        app.env(name, value.as_str().unwrap_or_default());
    }
    let out = modelstudio_testbed::run_bounded(app, Duration::from_secs(30));
    if out.ok() {
        Ok(out.stdout)
    } else {
        Err(out.stderr)
    }
}

#[test]
fn an_app_calls_the_deployed_model_with_what_its_configmap_says() {
    let mut c = Cluster::start("outputs", deployment_timers());
    let sim = c.sim.base_url();
    // The same simulator under two regions, by two names: a region edited in place in the key's
    // Secret shows in the ConfigMap's base URL.
    let beijing = sim.replace("127.0.0.1", "localhost");
    c.start_controller_with(&[
        "--region-endpoint",
        &format!("ap-southeast-1={sim}"),
        "--region-endpoint",
        &format!("cn-beijing={beijing}"),
    ]);
    let k = &c.kubectl;
    k.run(&[
        "apply",
        "-f",
        &example("secret.yaml"),
        "-f",
        &example("modelimport.yaml"),
        "-f",
        &example("modeldeployment.yaml"),
    ]);
    k.run(&[
        "wait",
        "mdeploy/qwen3-lora",
        "--for=condition=Ready",
        "--timeout=90s",
    ]);
    let deployed = k
        .jsonpath("mdeploy/qwen3-lora", "{.status.deployedModel}")
        .stdout;
    k.run(&[
        "wait",
        "mdeploy/qwen3-lora",
        "--for=condition=OutputsReady",
        "--timeout=30s",
    ]);
    let env = config_map_env(k, "qwen3-lora");
    assert_eq!(env["MODEL_NAME"], deployed.as_str(), "{env:?}");
    assert_eq!(
        env["OPENAI_BASE_URL"],
        format!("{sim}/compatible-mode/v1").as_str(),
        "{env:?}"
    );
    assert_eq!(env["MODELSTUDIO_API_KEY_SECRET"], "dashscope", "{env:?}");
    let owner = k
        .jsonpath("configmap/qwen3-lora", "{.metadata.ownerReferences[0].uid}")
        .stdout;
    let uid = k.jsonpath("mdeploy/qwen3-lora", "{.metadata.uid}").stdout;
    assert_eq!(owner, uid, "the ConfigMap is owned by its ModelDeployment");
    // The controller holds that one ConfigMap, none of the cluster's others.
    let cached = sum(&c.metrics(), "modelstudio_outputs_config_maps_cached", &[]);
    assert_eq!(cached, 1.0);
    let all = k.run(&["get", "configmap", "qwen3-lora", "-o", "yaml"]);
    assert!(
        !all.contains(EXAMPLE_KEY),
        "the key is in the ConfigMap:\n{all}"
    );
    // The example app is admitted as written, and calls the model with what the ConfigMap says.
    k.run(&[
        "apply",
        "--dry-run=server",
        "-f",
        &example("apps/chat-app.yaml"),
    ]);
    let said = run_chat_app(k, "qwen3-lora").expect("the app calls the deployed model");
    assert!(said.starts_with(&format!("{deployed}: ")), "{said}");

    // The key's Secret names another region and a workspace, edited in place: the ConfigMap
    // follows, and follows back when they are removed.
    const WHERE: &str =
        "{.data.OPENAI_BASE_URL} {.data.MODELSTUDIO_REGION} {.data.MODELSTUDIO_WORKSPACE_ID}";
    let edits = [
        (
            "merge",
            r#"{"stringData":{"region":"cn-beijing","workspace":"llm-elsewhere"}}"#,
            format!("{beijing}/compatible-mode/v1 cn-beijing llm-elsewhere"),
        ),
        (
            "json",
            r#"[{"op":"remove","path":"/data/region"},{"op":"remove","path":"/data/workspace"}]"#,
            format!("{sim}/compatible-mode/v1  "),
        ),
    ];
    for (kind, patch, want) in edits {
        let kind = format!("--type={kind}");
        k.run(&["patch", "secret", "dashscope", &kind, "-p", patch]);
        k.poll_jsonpath(
            "configmap/qwen3-lora",
            WHERE,
            Duration::from_secs(30),
            |v| v == want,
        );
    }

    // Recreated with a new suffix: a new deployed model, and the ConfigMap names it, owned by
    // the new resource.
    k.run(&[
        "delete",
        "-f",
        &example("modeldeployment.yaml"),
        "--timeout=60s",
    ]);
    let manifest = std::fs::read_to_string(example("modeldeployment.yaml"))
        .unwrap()
        .replace("  # suffix: v2", "  suffix: v2");
    let again = c.write("modeldeployment-v2.yaml", &manifest);
    k.run(&["apply", "-f", &again]);
    k.run(&[
        "wait",
        "mdeploy/qwen3-lora",
        "--for=condition=Ready",
        "--timeout=90s",
    ]);
    let redeployed = k
        .jsonpath("mdeploy/qwen3-lora", "{.status.deployedModel}")
        .stdout;
    assert_ne!(redeployed, deployed);
    let uid = k.jsonpath("mdeploy/qwen3-lora", "{.metadata.uid}").stdout;
    k.poll_jsonpath(
        "configmap/qwen3-lora",
        "{.data.MODEL_NAME}/{.metadata.ownerReferences[0].uid}",
        Duration::from_secs(30),
        |v| v == format!("{redeployed}/{uid}"),
    );
    let said = run_chat_app(k, "qwen3-lora").expect("the app calls the new model");
    assert!(said.starts_with(&format!("{redeployed}: ")), "{said}");

    // The ConfigMap goes with its ModelDeployment (the garbage collector deletes it).
    k.run(&["delete", "-f", &again, "--timeout=60s"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while k.try_run(&["get", "configmap", "qwen3-lora"]).ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "the ConfigMap outlived its ModelDeployment"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(!c.controller_log().contains(EXAMPLE_KEY));
}

#[test]
fn an_observed_job_and_deployment_made_outside_kubernetes_are_mirrored_and_outlive_their_resources()
{
    let mut c = Cluster::start("observe", deployment_timers());
    c.start_controller();
    let k = &c.kubectl;
    k.run(&["apply", "-f", &example("secret.yaml")]);
    // A job someone made without Kubernetes: a plain API call with the same key.
    let url = format!("{}/api/v1/custom_models/import", c.sim.base_url());
    let body = serde_json::json!({
        "model_name": "qwen3-32b",
        "source": "oss",
        "weight_type": "lora",
        "storage_info": {"bucket_name": "team-models", "object_key": "models/made-by-hand/"},
    });
    let post = |url: String, body: serde_json::Value| {
        let status = c
            ._rt
            .block_on(async {
                reqwest::Client::new()
                    .post(url)
                    .bearer_auth(EXAMPLE_KEY)
                    .json(&body)
                    .send()
                    .await
                    .map(|r| r.status())
            })
            .expect("the simulator answers");
        assert!(status.is_success(), "{status}");
    };
    post(url, body);
    // And a deployment made the same way.
    let deployments_url = format!("{}/api/v1/deployments", c.sim.base_url());
    post(
        deployments_url,
        serde_json::json!({"model_name": "qwen-turbo", "capacity": 2}),
    );
    let jobs = c.sim.simulator.jobs();
    let job = jobs.first().expect("the job made by hand");
    let manifest = format!(
        "apiVersion: modelstudio.io/v1alpha1\nkind: ModelImport\nmetadata:\n  name: observed\n  \
         namespace: default\nspec:\n  managementPolicy: Observe\n  jobId: {}\n  \
         apiKeySecretRef:\n    name: dashscope\n---\napiVersion: modelstudio.io/v1alpha1\n\
         kind: ModelDeployment\nmetadata:\n  name: observed\n  namespace: default\nspec:\n  \
         managementPolicy: Observe\n  deployedModel: qwen-turbo\n  apiKeySecretRef:\n    \
         name: dashscope\n",
        job.job_id
    );
    let file = c.write("observed.yaml", &manifest);
    k.run(&["apply", "-f", &file]);
    k.run(&[
        "wait",
        "mimport/observed",
        "--for=condition=Ready",
        "--timeout=60s",
    ]);
    let mirrored = k
        .jsonpath(
            "mimport/observed",
            r#"{.status.modelName}/{.status.conditions[?(@.type=="Reconciling")].reason}"#,
        )
        .stdout;
    assert_eq!(mirrored, format!("{}/Observing", job.model_name));
    k.run(&[
        "wait",
        "mdeploy/observed",
        "--for=condition=Ready",
        "--timeout=60s",
    ]);
    let deployment = k
        .jsonpath(
            "mdeploy/observed",
            r#"{.status.deployedModel}/{.status.capacity}/{.status.conditions[?(@.type=="Reconciling")].reason}"#,
        )
        .stdout;
    assert_eq!(deployment, "qwen-turbo/2/Observing");

    // Deleting the resource lets go of the job: no DELETE, and an event says so.
    k.run(&["delete", "-f", &file, "--timeout=30s"]);
    let stats = c.stats();
    assert_eq!(
        stats.create.total, 1,
        "only the one made by hand: {stats:?}"
    );
    assert_eq!(stats.delete.total, 0, "{stats:?}");
    let after = c.sim.simulator.jobs();
    assert!(
        after.iter().any(|j| j.job_id == job.job_id && !j.deleted),
        "{after:?}"
    );
    let note = k
        .run(&[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=observed,reason=Orphaned",
            "-o",
            "jsonpath={.items[*].message}",
        ])
        .to_string();
    assert!(
        note.contains("import job") && note.contains("managementPolicy Observe"),
        "{note}"
    );
    assert!(note.contains("deployment qwen-turbo"), "{note}");
    assert!(!c.controller_log().contains(EXAMPLE_KEY));
}

#[test]
fn with_an_hour_between_polls_a_reconcile_request_shows_a_remote_change_within_seconds() {
    let c = applied_example(
        "reconcile-now",
        Duration::from_secs(600),
        &["--poll-interval", "1h"],
    );
    let k = &c.kubectl;
    let job = k.poll_jsonpath(
        "mimport/qwen3-lora",
        "{.status.jobId}",
        Duration::from_secs(30),
        |v| !v.is_empty(),
    );
    // The job ends in Model Studio; with an hour between polls, the status does not follow.
    std::thread::sleep(Duration::from_secs(2));
    c.sim
        .simulator
        .set_outcome(
            &job,
            OutcomeRequest {
                status: Some("SUCCESSED".into()),
                finish_now: true,
                ..Default::default()
            },
        )
        .expect("the job ends");
    std::thread::sleep(Duration::from_secs(3));
    let before = k.jsonpath("mimport/qwen3-lora", "{.status.phase}").stdout;
    assert_ne!(before, "Succeeded", "no poll for an hour");
    let asked = std::time::Instant::now();
    k.run(&[
        "annotate",
        "mimport",
        "qwen3-lora",
        "modelstudio.io/reconcile-requested-at=now",
    ]);
    k.run(&[
        "wait",
        "mimport/qwen3-lora",
        "--for=jsonpath={.status.phase}=Succeeded",
        "--timeout=10s",
    ]);
    let took = asked.elapsed();
    let handled = k
        .jsonpath("mimport/qwen3-lora", "{.status.lastHandledReconcileAt}")
        .stdout;
    assert_eq!(handled, "now");
    println!(
        "reconcile now: the remote change shown {took:?} after the annotation (poll interval 1h)"
    );
}

#[test]
fn a_paused_import_calls_nothing_for_a_minute_while_its_unpaused_twin_is_read() {
    use modelstudio_simulator::Endpoint;
    let (c, job) = running_example("paused-twin", Duration::from_secs(600));
    let k = &c.kubectl;
    let twin = std::fs::read_to_string(example("modelimport.yaml"))
        .unwrap()
        .replace("name: qwen3-lora", "name: twin");
    let twin = c.write("twin.yaml", &twin);
    k.run(&["apply", "-f", &twin]);
    let twin_job = k.poll_jsonpath(
        "mimport/twin",
        "{.status.jobId}",
        Duration::from_secs(30),
        |v| !v.is_empty(),
    );
    pause(k, "qwen3-lora");
    // A pass in flight when the annotation came may still end: the window starts after it.
    std::thread::sleep(Duration::from_secs(2));
    let from = c.sim.simulator.requests().len();
    std::thread::sleep(Duration::from_secs(60));
    let requests = c.sim.simulator.requests();
    let window = &requests[from..];
    let about = |id: &str| {
        window
            .iter()
            .filter(|r| r.job_id.as_deref() == Some(id))
            .count()
    };
    assert_eq!(about(&job), 0, "a call about the paused import's job");
    // The twin is followed: its workspace's listing (1 s poll) and reads of its job.
    let listings = window
        .iter()
        .filter(|r| r.endpoint == Endpoint::List)
        .count();
    assert!(
        listings + about(&twin_job) >= 30,
        "the twin is read: {listings} listings, {} reads of its job in a minute",
        about(&twin_job)
    );
    let state = k.jsonpath("mimport/twin", "{.status.phase}").stdout;
    assert_eq!(state, "Running");
    // The paused one's deletion completes at once, its job left alone.
    k.run(&["delete", "mimport", "qwen3-lora", "--timeout=30s"]);
    let jobs = c.sim.simulator.jobs();
    assert!(
        jobs.iter().any(|j| j.job_id == job && !j.deleted),
        "{jobs:?}"
    );
    println!(
        "paused for 60 s: 0 calls about its job; the twin: {listings} listings and {} reads",
        about(&twin_job)
    );
}
