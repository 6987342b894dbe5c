//! The controller as users run it, on a real node (issue 25): its image and the simulator's built
//! by scripts/build-image.sh and pushed to the node's registry, the chart packaged and pushed
//! there as an OCI artifact and installed from it with `helm install --wait` under Pod Security
//! `restricted` (two replicas, leader election), the simulator as a pod behind a Service whose
//! ClusterIP is the chart's endpoint. On that one node, in order:
//!
//! 1. the chart from the registry, time to Ready;
//! 2. a Secret, a ModelImport and a ModelDeployment applied with kubectl reach Ready and deleting
//!    both converges; `kubectl delete namespace` with imports in every state leaves no job;
//! 3. the leader pod deleted and killed while creates are unanswered (slowed simulator): the
//!    other replica takes the Lease and finishes, 0 duplicates, 0 leaks; `helm upgrade` to a new image tag
//!    while imports are created and deleted: no duplicate, no lost deletion, the Lease handed
//!    over on SIGTERM (the gap is measured);
//! 4. the default memory limit holds a few hundred imports (the leader's working set from
//!    kubelet's stats), and a 12Mi limit shows as OOMKilled in the pod's status;
//! 5. uninstall in docs/helm.md's order leaves no CRD, finalizer or Secret label;
//! 6. `kubectl apply -k` of deploy/ with the image set in its kustomization reaches Ready.
//!
//! The images hold the binaries `cargo test` built (debug info stripped), so CI does no release
//! build; MODELSTUDIO_IMAGE_RELEASE=1 builds release images as users do. Outside CI the test
//! skips when the node's tools or buildah are missing; with CI=true it fails instead.

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::{watcher, WatchStreamExt};
use kube::Api;
use modelstudio_core::correlation;
use modelstudio_testbed::modelstudio_simulator::{DeploymentRecord, JobRecord};
use modelstudio_testbed::{go_tool, run_bounded, Kubectl, Node, NodeError, Output, TempDir};
use serde_json::Value;
use std::cell::Cell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The release and its namespace as docs/helm.md installs them (deploy/'s names).
const NS: &str = "modelstudio-system";
const RELEASE: &str = "modelstudio-controller";
/// The Lease: the objects' name, the chart's default.
const LEASE: &str = "modelstudio-controller";
const SIM_NS: &str = "modelstudio-simulator";
const SIM_PORT: u16 = 8089;
/// The simulator's one key and its workspace.
const KEY: &str = "sk-node-e2e";
const WORKSPACE: &str = "llm-node";
/// Jobs stay PENDING, then RUNNING, this long: long enough to catch an import in either state.
const PENDING: Duration = Duration::from_secs(6);
const RUNNING: Duration = Duration::from_secs(8);
/// The imports that load the controller (a few hundred, the issue says).
const LOAD: usize = 300;
/// The limit that must show up as OOMKilled.
const TOO_SMALL: &str = "12Mi";
/// The tag `helm upgrade` moves to.
const NEXT: &str = "-next";
const SOURCE: &str = "https://git.invalid/modelstudio-controller";
const BUILD_LIMIT: Duration = Duration::from_secs(1800);
const TOOL_LIMIT: Duration = Duration::from_secs(180);
const POLL: Duration = Duration::from_millis(500);

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

fn release_images() -> bool {
    std::env::var("MODELSTUDIO_IMAGE_RELEASE").is_ok_and(|v| v == "1")
}

/// Prints one line the report (and the README's figures) are read from.
fn say(line: &str) {
    println!("node-e2e: {line}");
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

/// Polls `check` until it answers Ok, for at most `limit`; fails with `what` and the last
/// thing `check` saw (its Err) otherwise.
fn wait_for<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        let last = match check() {
            Ok(value) => return value,
            Err(last) => last,
        };
        assert!(
            Instant::now() < deadline,
            "{what}: not within {limit:?}; last seen: {last}"
        );
        std::thread::sleep(POLL);
    }
}

/// A step of the scenario, timed.
fn step<T>(name: &str, run: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    say(&format!("step {name} ..."));
    let value = run();
    say(&format!("step {name}: done in {}", secs(started.elapsed())));
    value
}

// ---------------------------------------------------------------------------------------------
// The images.

/// The two image archives, built once.
struct Images {
    controller: PathBuf,
    simulator: PathBuf,
    took: Duration,
}

/// True when the image script can build here (buildah there, or root to install it). Outside CI
/// a machine without either skips; CI fails.
fn can_build() -> bool {
    let run = |program: &str, arg: &str| {
        let mut cmd = Command::new(program);
        cmd.arg(arg);
        run_bounded(cmd, TOOL_LIMIT)
    };
    if run("buildah", "--version").ok() || run("id", "-u").stdout.trim() == "0" {
        return true;
    }
    let why = "buildah is missing and installing it needs root (apt-get install buildah)";
    assert!(!ci(), "{why}; CI=true requires the node e2e test");
    println!("SKIPPED: {why}");
    false
}

/// The simulator's binary of this profile (`cargo test` builds the controller's only), as
/// tests/image.rs builds it.
fn simulator_binary() -> PathBuf {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.current_dir(ROOT).args([
        "build",
        "--locked",
        "-p",
        "modelstudio-simulator",
        "--bin",
        "modelstudio-simulator",
        "--message-format",
        "json-render-diagnostics",
    ]);
    let out = run_bounded(cmd, BUILD_LIMIT);
    assert!(
        out.ok(),
        "cargo build modelstudio-simulator: {}",
        out.stderr
    );
    out.stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .expect("cargo built the simulator")
}

/// A copy of a test build without its debug info (the controller's test build is 281 MB, 56 MB
/// without it): the image the node pulls and unpacks stays small.
fn stripped(binary: &Path, dir: &Path) -> PathBuf {
    let name = binary.file_name().expect("a binary's name");
    let copy = dir.join(name);
    let mut cmd = Command::new("objcopy");
    cmd.arg("--strip-debug").arg(binary).arg(&copy);
    let out = run_bounded(cmd, TOOL_LIMIT);
    assert!(out.ok(), "objcopy --strip-debug {binary:?}: {}", out.stderr);
    copy
}

/// scripts/build-image.sh WHICH, from `binary` (or a release build when None); the archive.
fn build_image(which: &str, binary: Option<&Path>, out: &Path) -> PathBuf {
    let mut cmd = Command::new("bash");
    cmd.current_dir(ROOT)
        .arg(Path::new(ROOT).join("scripts/build-image.sh"))
        .args([which, "--source", SOURCE, "--out"])
        .arg(out);
    if let Some(binary) = binary {
        cmd.arg("--binary").arg(binary);
    }
    let run = run_bounded(cmd, BUILD_LIMIT);
    assert!(
        run.ok(),
        "scripts/build-image.sh {which} failed ({:?}):\n{}\n{}",
        run.status,
        run.stdout,
        run.stderr
    );
    let last = run.stdout.lines().last().unwrap_or_default().trim();
    assert_eq!(
        Path::new(last),
        out,
        "the script's last line is the archive"
    );
    out.to_path_buf()
}

impl Images {
    fn build(dir: &Path) -> Images {
        let started = Instant::now();
        let bins = dir.join("bin");
        std::fs::create_dir_all(&bins).expect("a folder for the binaries");
        let (controller, simulator) = if release_images() {
            (None, None)
        } else {
            let controller = Path::new(env!("CARGO_BIN_EXE_modelstudio-controller"));
            (
                Some(stripped(controller, &bins)),
                Some(stripped(&simulator_binary(), &bins)),
            )
        };
        Images {
            controller: build_image(
                "controller",
                controller.as_deref(),
                &dir.join("controller.oci.tar"),
            ),
            simulator: build_image(
                "simulator",
                simulator.as_deref(),
                &dir.join("simulator.oci.tar"),
            ),
            took: started.elapsed(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// helm, the Lease, the simulator's control API.

/// The real helm v4 (testbed/helm) with its own folders, against the node.
struct Helm {
    bin: PathBuf,
    home: PathBuf,
    kubeconfig: PathBuf,
}

impl Helm {
    fn run(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("HELM_CONFIG_HOME", self.home.join("config"))
            .env("HELM_CACHE_HOME", self.home.join("cache"))
            .env("HELM_DATA_HOME", self.home.join("data"))
            .env_remove("HELM_NAMESPACE")
            .env_remove("HELM_KUBECONTEXT")
            .env_remove("HTTPS_PROXY")
            .env_remove("HTTP_PROXY")
            .env_remove("https_proxy")
            .env_remove("http_proxy");
        run_bounded(cmd, TOOL_LIMIT)
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.ok(),
            "helm {} failed:\n{}\n{}",
            args.join(" "),
            out.stdout,
            out.stderr
        );
        out.stdout + &out.stderr
    }
}

/// One state of the Lease, as a watch saw it.
#[derive(Debug, Clone)]
struct LeaseSeen {
    at: Timestamp,
    holder: Option<String>,
    acquired: Option<Timestamp>,
    renewed: Option<Timestamp>,
}

/// The Lease's states, recorded by a watch from the host while the runtime lives.
#[derive(Clone, Default)]
struct LeaseLog(Arc<Mutex<Vec<LeaseSeen>>>);

impl LeaseLog {
    fn start(rt: &tokio::runtime::Runtime, client: kube::Client) -> LeaseLog {
        let log = LeaseLog::default();
        let seen = log.clone();
        rt.spawn(async move {
            use futures::StreamExt;
            let api: Api<Lease> = Api::namespaced(client, NS);
            let config = watcher::Config::default().fields(&format!("metadata.name={LEASE}"));
            let mut stream = Box::pin(watcher(api, config).default_backoff().touched_objects());
            while let Some(event) = stream.next().await {
                let Ok(lease) = event else { continue };
                let spec = lease.spec.unwrap_or_default();
                let now = LeaseSeen {
                    at: Timestamp::now(),
                    holder: spec.holder_identity.filter(|h| !h.is_empty()),
                    acquired: spec.acquire_time.map(|t| t.0),
                    renewed: spec.renew_time.map(|t| t.0),
                };
                seen.0.lock().expect("the lease log").push(now);
            }
        });
        log
    }

    fn holder(&self) -> Option<String> {
        self.0.lock().expect("the lease log").last()?.holder.clone()
    }

    /// Every change of holder seen after `since`. The time without a leader runs from the
    /// release the watch saw (a handover on SIGTERM) or else from the old holder's last renewal
    /// (an expired Lease) to the new holder's acquireTime.
    fn handovers(&self, since: Timestamp) -> Vec<Handover> {
        let log = self.0.lock().expect("the lease log");
        let mut handovers = Vec::new();
        // The last holder and its last renewal; when the watch saw it let go, if it did.
        let mut last: Option<(String, Option<Timestamp>)> = None;
        let mut released_at: Option<Timestamp> = None;
        for seen in log.iter() {
            let Some(holder) = &seen.holder else {
                if last.is_some() && released_at.is_none() {
                    released_at = Some(seen.at);
                }
                continue;
            };
            if let Some((old, renewed)) = &last {
                if old != holder && seen.at >= since {
                    let acquired = seen.acquired.unwrap_or(seen.at);
                    let leaderless_from = released_at.or(*renewed).unwrap_or(acquired);
                    handovers.push(Handover {
                        from: old.clone(),
                        to: holder.clone(),
                        gap: acquired.duration_since(leaderless_from).unsigned_abs(),
                        released: released_at.is_some(),
                        acquired,
                    });
                }
            }
            released_at = None;
            last = Some((holder.clone(), seen.renewed));
        }
        handovers
    }
}

#[derive(Debug, Clone)]
struct Handover {
    from: String,
    to: String,
    /// From the release (or the old holder's last renewal) to the new holder's acquireTime.
    gap: Duration,
    released: bool,
    acquired: Timestamp,
}

/// A ModelImport as kubectl reads it.
#[derive(Debug, Clone)]
struct Import {
    name: String,
    uid: String,
    job_id: Option<String>,
    create_attempted: bool,
    ready: Option<String>,
    reason: Option<String>,
}

impl Import {
    fn of(item: &Value) -> Import {
        let condition = item["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["type"] == "Ready");
        let text = |v: &Value| v.as_str().map(str::to_string);
        Import {
            name: text(&item["metadata"]["name"]).unwrap_or_default(),
            uid: text(&item["metadata"]["uid"]).unwrap_or_default(),
            job_id: text(&item["status"]["jobId"]),
            create_attempted: item["status"]["createAttemptedAt"].is_string(),
            ready: condition.and_then(|c| text(&c["status"])),
            reason: condition.and_then(|c| text(&c["reason"])),
        }
    }

    fn is_ready(&self) -> bool {
        self.ready.as_deref() == Some("True")
    }
}

/// Duplicates and leaks among the simulator's jobs for a set of resources.
#[derive(Debug, Default, PartialEq, Eq)]
struct Audit {
    /// Jobs beyond the first carrying one resource's token.
    duplicates: usize,
    /// Undeleted jobs of a live resource other than the one it records.
    leaks: usize,
    /// Undeleted jobs of a deleted resource: a lost deletion.
    unreleased: usize,
}

/// `live`: the resources that still exist, with the job they record; `gone`: name and UID of
/// those deleted.
fn audit(jobs: &[JobRecord], live: &[Import], gone: &[(String, String)]) -> Audit {
    let of = |name: &str, uid: &str| -> Vec<&JobRecord> {
        let display = correlation::display_name(name, uid);
        jobs.iter().filter(|j| j.display_name == display).collect()
    };
    let mut audit = Audit::default();
    for import in live {
        let mine = of(&import.name, &import.uid);
        audit.duplicates += mine.len().saturating_sub(1);
        audit.leaks += mine
            .iter()
            .filter(|j| !j.deleted && Some(&j.job_id) != import.job_id.as_ref())
            .count();
    }
    for (name, uid) in gone {
        let mine = of(name, uid);
        audit.duplicates += mine.len().saturating_sub(1);
        audit.unreleased += mine.iter().filter(|j| !j.deleted).count();
    }
    audit
}

fn import_yaml(namespace: &str, name: &str, object_key: &str, secret: &str) -> String {
    format!(
        "---
apiVersion: modelstudio.io/v1alpha1
kind: ModelImport
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  baseModel: qwen3-32b
  weightType: lora
  storage: {{bucketName: my-model-bucket, objectKey: {object_key}}}
  apiKeySecretRef: {{name: {secret}}}
"
    )
}

fn secret_yaml(namespace: &str) -> String {
    format!(
        "---
apiVersion: v1
kind: Secret
metadata: {{name: dashscope, namespace: {namespace}}}
stringData: {{api-key: {KEY}}}
"
    )
}

fn simulator_yaml(image: &str) -> String {
    let (pending, running) = (PENDING.as_secs(), RUNNING.as_secs());
    format!(
        "apiVersion: v1
kind: Namespace
metadata:
  name: {SIM_NS}
  labels: {{pod-security.kubernetes.io/enforce: restricted}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: simulator, namespace: {SIM_NS}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: simulator}}}}
  template:
    metadata: {{labels: {{app: simulator}}}}
    spec:
      securityContext:
        runAsNonRoot: true
        seccompProfile: {{type: RuntimeDefault}}
      containers:
      - name: simulator
        image: {image}
        args: [--addr=0.0.0.0:{SIM_PORT}, --api-key={KEY}={WORKSPACE}, --pending-duration={pending}s,
               --running-duration={running}s, --deployment-pending-duration=3s]
        ports: [{{name: http, containerPort: {SIM_PORT}}}]
        readinessProbe: {{httpGet: {{path: /_simulator/stats, port: http}}, periodSeconds: 1}}
        securityContext:
          readOnlyRootFilesystem: true
          allowPrivilegeEscalation: false
          capabilities: {{drop: [ALL]}}
---
apiVersion: v1
kind: Service
metadata: {{name: simulator, namespace: {SIM_NS}}}
spec:
  selector: {{app: simulator}}
  ports: [{{port: {SIM_PORT}, targetPort: http}}]
"
    )
}

// ---------------------------------------------------------------------------------------------
// The node and what the scenario shares.

struct E2e {
    node: Node,
    kubectl: Kubectl,
    helm: Helm,
    work: PathBuf,
    /// `oci://<registry>/charts/modelstudio-controller` and its version.
    chart: String,
    chart_version: String,
    /// The `--set` flags every install of the chart shares (the simulator's endpoint, ...).
    values: Vec<String>,
    rt: tokio::runtime::Runtime,
    lease: LeaseLog,
    /// Imports of the run that must each have made exactly one job.
    jobs_expected: Cell<usize>,
}

impl E2e {
    /// Counts `n` imports that each made one job.
    fn made(&self, n: usize) {
        self.jobs_expected.set(self.jobs_expected.get() + n);
    }

    fn write(&self, name: &str, text: &str) -> String {
        let path = self.work.join(name);
        std::fs::write(&path, text).expect("write a manifest");
        path.display().to_string()
    }

    /// kubectl with a longer bound than the wrapper's (a few hundred objects at once).
    fn kubectl_long(&self, args: &[&str]) -> Output {
        run_bounded(self.kubectl.command(args), TOOL_LIMIT)
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        let out = self.kubectl_long(&all);
        assert!(out.ok(), "kubectl {}: {}", all.join(" "), out.stderr);
        serde_json::from_str(&out.stdout).expect("kubectl's JSON")
    }

    fn imports(&self, namespace: &str) -> Vec<Import> {
        self.json(&["get", "modelimports", "-n", namespace])["items"]
            .as_array()
            .into_iter()
            .flatten()
            .map(Import::of)
            .collect()
    }

    fn controller_pods(&self, release: &str) -> Vec<Value> {
        let selector = format!("app.kubernetes.io/instance={release}");
        self.json(&["get", "pods", "-n", NS, "-l", &selector])["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Names of the release's pods that are Ready and not being deleted.
    fn ready_pods(&self, release: &str) -> Vec<String> {
        self.ready(&format!("app.kubernetes.io/instance={release}"))
    }

    /// Names of the controller's pods with these labels that are Ready and not being deleted.
    fn ready(&self, selector: &str) -> Vec<String> {
        self.json(&["get", "pods", "-n", NS, "-l", selector])["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
            .filter(|p| {
                p["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            })
            .filter_map(|p| p["metadata"]["name"].as_str().map(str::to_string))
            .collect()
    }

    fn simulator_pod(&self) -> String {
        let out = self.kubectl.run(&[
            "get",
            "pods",
            "-n",
            SIM_NS,
            "-l",
            "app=simulator",
            "-o",
            "jsonpath={.items[0].metadata.name}",
        ]);
        out.trim().to_string()
    }

    /// A call to the simulator's control API, from the simulator pod's own network.
    fn simulator(&self, method: &str, path: &str, body: Option<&str>) -> String {
        let url = format!("http://127.0.0.1:{SIM_PORT}{path}");
        let mut args = vec!["curl", "-sS", "--fail-with-body", "--max-time", "20"];
        args.extend(["-X", method]);
        if let Some(body) = body {
            args.extend(["-H", "content-type: application/json", "--data", body]);
        }
        args.push(&url);
        let pod = self.simulator_pod();
        let out = self
            .node
            .run_in_pod_network(SIM_NS, &pod, &args, Duration::from_secs(30))
            .expect("the simulator pod's network");
        assert!(out.ok(), "{method} {path}: {out:?}");
        out.stdout
    }

    fn jobs(&self) -> Vec<JobRecord> {
        serde_json::from_str(&self.simulator("GET", "/_simulator/jobs", None))
            .expect("the simulator's jobs")
    }

    fn deployments(&self) -> Vec<DeploymentRecord> {
        serde_json::from_str(&self.simulator("GET", "/_simulator/deployments", None))
            .expect("the simulator's deployments")
    }

    fn set_latency(&self, latency: Duration) {
        let body = format!("{{\"latency_ms\": {}}}", latency.as_millis());
        self.simulator("PUT", "/_simulator/faults", Some(&body));
    }

    fn helm_install(&self, release: &str, extra: &[&str], wait: bool) -> Output {
        let mut args = vec![
            "install",
            release,
            &self.chart,
            "--version",
            &self.chart_version,
            "--plain-http",
            "-n",
            NS,
        ];
        args.extend(self.values.iter().map(String::as_str));
        args.extend_from_slice(extra);
        if wait {
            args.extend(["--wait", "--timeout", "3m"]);
        }
        self.helm.run(&args)
    }

    /// Waits until `n` pods of the release are Ready (and no other is left).
    fn wait_ready_pods(&self, release: &str, n: usize, limit: Duration) -> Vec<String> {
        wait_for(&format!("{n} Ready pods of {release}"), limit, || {
            let ready = self.ready_pods(release);
            let all = self.controller_pods(release).len();
            if ready.len() == n && all == n {
                Ok(ready)
            } else {
                Err(format!("{} Ready of {all}", ready.len()))
            }
        })
    }

    fn wait_holder(&self, among: &[String], limit: Duration) -> String {
        wait_for("a holder of the Lease", limit, || {
            match self.lease.holder() {
                Some(h) if among.contains(&h) => Ok(h),
                other => Err(format!("{other:?}, expected one of {among:?}")),
            }
        })
    }

    /// Waits until every import of `namespace` is Ready; returns them.
    fn wait_all_ready(&self, namespace: &str, n: usize, limit: Duration) -> Vec<Import> {
        wait_for(&format!("{n} Ready imports in {namespace}"), limit, || {
            let imports = self.imports(namespace);
            let ready = imports.iter().filter(|i| i.is_ready()).count();
            if imports.len() == n && ready == n {
                Ok(imports)
            } else {
                let reasons: BTreeMap<String, usize> =
                    imports.iter().fold(BTreeMap::new(), |mut m, i| {
                        *m.entry(i.reason.clone().unwrap_or_default()).or_default() += 1;
                        m
                    });
                Err(format!(
                    "{ready} of {} Ready; reasons {reasons:?}",
                    imports.len()
                ))
            }
        })
    }

    fn wait_gone(&self, args: &[&str], limit: Duration) {
        wait_for(
            &format!("kubectl get {} empty", args.join(" ")),
            limit,
            || {
                let mut all = vec!["get"];
                all.extend_from_slice(args);
                all.extend(["-o", "name", "--ignore-not-found"]);
                let out = self.kubectl_long(&all);
                if out.ok() && out.stdout.trim().is_empty() {
                    Ok(())
                } else {
                    Err(format!("{}{}", out.stdout.trim(), out.stderr.trim()))
                }
            },
        )
    }

    /// The working set of a pod's newest sample in kubelet's stats summary taken after `after`.
    fn working_set(&self, pod: &str, after: Timestamp) -> u64 {
        wait_for(
            &format!("a stats sample of {pod}"),
            Duration::from_secs(90),
            || {
                let summary = self.node.stats_summary().map_err(|e| e.to_string())?;
                let found = summary["pods"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|p| p["podRef"]["name"] == pod && p["podRef"]["namespace"] == NS)
                    .ok_or("the pod is not in the summary")?;
                let memory = &found["memory"];
                let time: Timestamp = memory["time"]
                    .as_str()
                    .and_then(|t| t.parse().ok())
                    .ok_or("no sample time")?;
                match memory["workingSetBytes"].as_u64() {
                    Some(bytes) if time > after && bytes > 0 => Ok(bytes),
                    other => Err(format!("{other:?} at {time}")),
                }
            },
        )
    }
}

/// The node, or None (with the reason) when its tools are missing on a developer's machine.
fn start_node() -> Option<Node> {
    match Node::start_blocking() {
        Ok(node) => Some(node),
        Err(e @ NodeError::Tools(_)) if !ci() => {
            println!(
                "SKIPPED: the node's tools are missing ({e}); scripts/test.sh installs and builds \
                 them"
            );
            None
        }
        Err(e) => panic!("the node did not start: {e}"),
    }
}

fn chart_version() -> String {
    let text =
        std::fs::read_to_string(Path::new(ROOT).join("charts/modelstudio-controller/Chart.yaml"))
            .expect("Chart.yaml");
    let chart: Value = serde_saphyr::from_str(&text).expect("Chart.yaml is YAML");
    chart["version"].as_str().expect("version").to_string()
}

#[test]
fn the_controller_runs_on_a_real_node_from_its_image_and_chart() {
    let started = Instant::now();
    if !can_build() {
        return;
    }
    let work = TempDir::new("node-e2e");
    let dir = work.0.clone();
    let images = std::thread::spawn(move || Images::build(&dir));
    let Some(node) = start_node() else { return };
    say(&format!("node started in {}", secs(node.started_in())));
    let images = images.join().expect("the images");
    say(&format!(
        "images built in {} ({})",
        secs(images.took),
        if release_images() {
            "release"
        } else {
            "the test build, debug info stripped"
        }
    ));

    let rt = modelstudio_testbed::test_runtime();
    let client = rt.block_on(node.client(NS)).expect("a client of the node");
    let registry = node.registry();
    let mut e2e = E2e {
        kubectl: node.kubectl(),
        helm: Helm {
            bin: go_tool("helm", "helm").unwrap_or_else(|e| panic!("the real helm: {e}")),
            home: work.0.join("helm"),
            kubeconfig: node.kubeconfig_path(),
        },
        work: work.0.clone(),
        chart: format!("oci://{}/charts/modelstudio-controller", registry.host),
        chart_version: chart_version(),
        values: Vec::new(),
        lease: LeaseLog::start(&rt, client),
        jobs_expected: Cell::new(0),
        rt,
        node,
    };

    step("push the images", || {
        for (archive, reference) in [
            (
                &images.controller,
                format!("modelstudio-controller:{VERSION}"),
            ),
            (
                &images.simulator,
                format!("modelstudio-simulator:{VERSION}"),
            ),
            // The upgrade's image: the same archive under a new tag.
            (
                &images.controller,
                format!("modelstudio-controller:{VERSION}{NEXT}"),
            ),
        ] {
            e2e.node
                .push_oci_archive(archive, &reference)
                .unwrap_or_else(|e| panic!("push {reference}: {e}"));
        }
    });

    let endpoint = step("the simulator as a pod behind a Service", || {
        // The chart's default registry name: localhost:5000 is the node's registry too.
        let image = format!("localhost:5000/modelstudio-simulator:{VERSION}");
        let manifest = e2e.write("simulator.yaml", &simulator_yaml(&image));
        e2e.kubectl.run(&["apply", "-f", &manifest]);
        wait_for("the simulator Ready", Duration::from_secs(90), || {
            let out = e2e.kubectl.try_run(&[
                "get",
                "deployment",
                "simulator",
                "-n",
                SIM_NS,
                "-o",
                "jsonpath={.status.readyReplicas}",
            ]);
            (out.stdout.trim() == "1").then_some(()).ok_or(out.stderr)
        });
        let ip = e2e.kubectl.run(&[
            "get",
            "service",
            "simulator",
            "-n",
            SIM_NS,
            "-o",
            "jsonpath={.spec.clusterIP}",
        ]);
        format!("http://{}:{SIM_PORT}", ip.trim())
    });

    let first_pods = step("1. the chart from the registry", || {
        install_from_the_registry(&mut e2e, &endpoint)
    });
    step("2a. a Secret, a ModelImport and a ModelDeployment", || {
        lifecycle(&e2e)
    });
    step(
        "2b. kubectl delete namespace with imports in every state",
        || namespace_deletion(&e2e),
    );
    step(
        "3a. the leader deleted while creates are unanswered",
        || failover(&e2e, &first_pods),
    );
    step(
        "3b. helm upgrade to a new tag while imports are in progress",
        || upgrade(&e2e),
    );
    step(
        "4. memory: a few hundred imports, and a limit too small",
        || limits(&e2e),
    );
    step("5. uninstall in the documented order", || uninstall(&e2e));
    step(
        "6. kubectl apply -k deploy/ with the image set in the kustomization",
        || kustomize(&e2e),
    );

    let E2e { node, rt, .. } = e2e;
    drop(rt);
    let teardown = node.stop();
    assert!(teardown.processes_left.is_empty(), "{teardown:?}");
    assert!(teardown.cgroups_left.is_empty(), "{teardown:?}");
    say(&format!(
        "the whole test: {} (node torn down in {})",
        secs(started.elapsed()),
        secs(teardown.elapsed)
    ));
}

// ---------------------------------------------------------------------------------------------
// The steps.

/// `helm package` + `helm push` to the node's registry, then `helm install --wait` from it in a
/// namespace labelled restricted (docs/helm.md), with the chart's default image, which the node
/// pulls from the same registry. Returns the two pods.
fn install_from_the_registry(e2e: &mut E2e, endpoint: &str) -> Vec<String> {
    let packaged = e2e.work.join("chart");
    let chart_dir = format!("{ROOT}/charts/modelstudio-controller");
    e2e.helm
        .ok(&["package", &chart_dir, "-d", &packaged.display().to_string()]);
    let archive = packaged.join(format!("modelstudio-controller-{}.tgz", e2e.chart_version));
    let registry = format!("oci://{}/charts", e2e.node.registry().host);
    let pushed = e2e.helm.ok(&[
        "push",
        &archive.display().to_string(),
        &registry,
        "--plain-http",
    ]);
    assert!(pushed.contains("Pushed:"), "{pushed}");

    e2e.kubectl.run(&["create", "namespace", NS]);
    e2e.kubectl.run(&[
        "label",
        "namespace",
        NS,
        "pod-security.kubernetes.io/enforce=restricted",
        "pod-security.kubernetes.io/enforce-version=latest",
        "pod-security.kubernetes.io/warn=restricted",
        "pod-security.kubernetes.io/warn-version=latest",
        "pod-security.kubernetes.io/audit=restricted",
        "pod-security.kubernetes.io/audit-version=latest",
    ]);
    e2e.values = [
        format!("modelStudio.endpoint={endpoint}"),
        // The keeper's sweep and blocked deletions at 2 s, a lost create believed after 20 s,
        // and a quota that creates a few hundred imports in seconds.
        "controller.pollInterval=2s".into(),
        "controller.requestTimeout=10s".into(),
        "controller.qps=50".into(),
        "controller.burst=50".into(),
    ]
    .into_iter()
    .flat_map(|v| ["--set".to_string(), v])
    .collect();

    let installing = Instant::now();
    let since = Timestamp::now();
    let out = e2e.helm_install(RELEASE, &[], true);
    let took = installing.elapsed();
    assert!(out.ok(), "helm install: {}\n{}", out.stdout, out.stderr);
    assert!(
        !out.stderr.contains("PodSecurity"),
        "Pod Security warned: {}",
        out.stderr
    );
    let pods = e2e.wait_ready_pods(RELEASE, 2, Duration::from_secs(60));
    let leader = e2e.wait_holder(&pods, Duration::from_secs(30));
    let acquired = e2e
        .lease
        .0
        .lock()
        .expect("the lease log")
        .iter()
        .find_map(|s| s.acquired)
        .expect("the Lease's acquireTime");
    for pod in e2e.controller_pods(RELEASE) {
        let image = pod["spec"]["containers"][0]["image"].as_str().unwrap_or("");
        assert_eq!(
            image,
            format!("localhost:5000/modelstudio-controller:{VERSION}")
        );
    }
    say(&format!(
        "figure: helm install --wait of the chart pulled from the registry (OCI), image from the \
         same registry, Pod Security restricted enforced: Ready in {} (2 replicas Ready; {leader} \
         took the Lease {} after the install began)",
        secs(took),
        secs(acquired.duration_since(since).unsigned_abs())
    ));
    pods
}

/// kubectl applies a Secret, a ModelImport and a ModelDeployment: both Ready; deleting both
/// converges (the job and the deployment deleted in the simulator).
fn lifecycle(e2e: &E2e) {
    let ns = "team-a";
    e2e.kubectl.run(&["create", "namespace", ns]);
    let manifest = secret_yaml(ns)
        + &import_yaml(ns, "qwen3-lora", "models/qwen3-lora/", "dashscope")
        + &format!(
            "---
apiVersion: modelstudio.io/v1alpha1
kind: ModelDeployment
metadata: {{name: qwen3-lora, namespace: {ns}}}
spec:
  modelImportRef: {{name: qwen3-lora}}
  capacity: 1
  apiKeySecretRef: {{name: dashscope}}
"
        );
    let file = e2e.write("lifecycle.yaml", &manifest);
    let applied = Instant::now();
    e2e.kubectl.run(&["apply", "-f", &file]);
    let limit = PENDING + RUNNING + Duration::from_secs(60);
    let wait = |what: &str| {
        let out = e2e.kubectl.try_run(&[
            "wait",
            "-n",
            ns,
            "--for=condition=Ready",
            what,
            &format!("--timeout={}s", limit.as_secs()),
        ]);
        assert!(out.ok(), "{what} not Ready: {}", out.stderr);
        applied.elapsed()
    };
    let import_ready = wait("modelimport/qwen3-lora");
    let deployment_ready = wait("modeldeployment/qwen3-lora");
    let import = e2e.imports(ns).remove(0);
    let deployment = e2e.json(&["get", "modeldeployment", "qwen3-lora", "-n", ns]);
    let deployment_uid = deployment["metadata"]["uid"].as_str().unwrap().to_string();
    let secret = e2e.json(&["get", "secret", "dashscope", "-n", ns]);
    assert_eq!(
        secret["metadata"]["labels"]["modelstudio.io/credentials"], "in-use",
        "the key's Secret is marked while a job needs it"
    );

    let deleting = Instant::now();
    e2e.kubectl
        .run(&["delete", "-f", &file, "--wait=false", "--ignore-not-found"]);
    e2e.wait_gone(
        &["modelimports,modeldeployments", "-n", ns],
        Duration::from_secs(90),
    );
    let converged = deleting.elapsed();
    let jobs = e2e.jobs();
    let gone = [(import.name.clone(), import.uid.clone())];
    assert_eq!(audit(&jobs, &[], &gone), Audit::default(), "{jobs:?}");
    e2e.made(1);
    let display = correlation::display_name("qwen3-lora", &deployment_uid);
    let remote: Vec<DeploymentRecord> = e2e
        .deployments()
        .into_iter()
        .filter(|d| d.name == display)
        .collect();
    assert!(
        remote.len() == 1 && remote[0].deleted,
        "one deployment, deleted: {remote:?}"
    );
    say(&format!(
        "figure: lifecycle through the pods: ModelImport Ready {} and ModelDeployment Ready {} \
         after kubectl apply (jobs pending {}s, running {}s); both deleted, converged in {} (job \
         and deployment deleted in Model Studio)",
        secs(import_ready),
        secs(deployment_ready),
        PENDING.as_secs(),
        RUNNING.as_secs(),
        secs(converged)
    ));
}

/// A namespace with imports pending, running, succeeded, failed and never created (its Secret
/// missing): `kubectl delete namespace` goes through and leaves no job.
fn namespace_deletion(e2e: &E2e) {
    let ns = "team-b";
    e2e.kubectl.run(&["create", "namespace", ns]);
    let apply = |name: &str, text: &str| {
        let file = e2e.write(name, text);
        e2e.kubectl.run(&["apply", "-f", &file]);
    };
    let job_of = |name: &str| -> String {
        wait_for(&format!("{name}'s job"), Duration::from_secs(60), || {
            e2e.imports(ns)
                .into_iter()
                .find(|i| i.name == name)
                .and_then(|i| i.job_id)
                .ok_or_else(|| format!("{name} has no job yet"))
        })
    };
    apply(
        "ns-running.yaml",
        &(secret_yaml(ns) + &import_yaml(ns, "running", "models/running/", "dashscope")),
    );
    let running = job_of("running");
    apply(
        "ns-finished.yaml",
        &(import_yaml(ns, "succeeded", "models/succeeded/", "dashscope")
            + &import_yaml(ns, "failed", "models/simulate-failure/", "dashscope")
            + &import_yaml(ns, "never-created", "models/never/", "absent")),
    );
    for (name, status) in [("succeeded", "SUCCESSED"), ("failed", "FAILED")] {
        let job = job_of(name);
        let body = format!("{{\"status\": \"{status}\", \"finish_now\": true}}");
        e2e.simulator(
            "POST",
            &format!("/_simulator/jobs/{job}/outcome"),
            Some(&body),
        );
    }
    let status_of = |job: &str| -> String {
        e2e.jobs()
            .into_iter()
            .find(|j| j.job_id == job)
            .map(|j| j.status)
            .unwrap_or_default()
    };
    wait_for("the running job RUNNING", PENDING + RUNNING, || {
        let status = status_of(&running);
        (status == "RUNNING").then_some(()).ok_or(status)
    });
    apply(
        "ns-pending.yaml",
        &import_yaml(ns, "pending", "models/pending/", "dashscope"),
    );
    job_of("pending");

    let imports = e2e.imports(ns);
    let jobs = e2e.jobs();
    let states: BTreeMap<String, String> = imports
        .iter()
        .map(|i| {
            let remote = i
                .job_id
                .as_ref()
                .and_then(|id| jobs.iter().find(|j| &j.job_id == id))
                .map_or_else(|| "no job".to_string(), |j| j.status.clone());
            (i.name.clone(), remote)
        })
        .collect();
    let want: BTreeMap<String, String> = [
        ("failed", "FAILED"),
        ("never-created", "no job"),
        ("pending", "PENDING"),
        ("running", "RUNNING"),
        ("succeeded", "SUCCESSED"),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(
        states, want,
        "the imports' jobs when the namespace is deleted"
    );

    let deleting = Instant::now();
    e2e.kubectl
        .run(&["delete", "namespace", ns, "--wait=false"]);
    e2e.wait_gone(
        &["namespace", ns],
        PENDING + RUNNING + Duration::from_secs(90),
    );
    let took = deleting.elapsed();
    let gone: Vec<(String, String)> = imports
        .iter()
        .map(|i| (i.name.clone(), i.uid.clone()))
        .collect();
    let jobs = e2e.jobs();
    assert_eq!(audit(&jobs, &[], &gone), Audit::default(), "{jobs:?}");
    e2e.made(imports.len() - 1);
    let never = imports.iter().find(|i| i.name == "never-created").unwrap();
    let display = correlation::display_name(&never.name, &never.uid);
    assert!(!jobs.iter().any(|j| j.display_name == display));
    say(&format!(
        "figure: kubectl delete namespace with imports {states:?}: gone in {}, every job deleted, \
         none made for the import without a key",
        secs(took)
    ));
}

/// The leader pod deleted and killed (SIGKILL) while creates wait on a slowed simulator: another
/// replica takes the Lease once it expires (the standby, or the pod the Deployment started in
/// the leader's place: both wait for it, and under load either may win) and finishes every
/// import, with no duplicate and no leak.
fn failover(e2e: &E2e, pods: &[String]) {
    let ns = "failover";
    let n = 8;
    e2e.kubectl.run(&["create", "namespace", ns]);
    let leader = e2e.wait_holder(pods, Duration::from_secs(30));
    assert!(pods.iter().any(|p| *p != leader), "two pods: {pods:?}");
    e2e.set_latency(Duration::from_secs(3));
    let manifest = (0..n).fold(secret_yaml(ns), |text, i| {
        text + &import_yaml(
            ns,
            &format!("f-{i}"),
            &format!("models/f-{i}/"),
            "dashscope",
        )
    });
    let file = e2e.write("failover.yaml", &manifest);
    e2e.kubectl.run(&["apply", "-f", &file]);
    // A create sent (its intent recorded) and not answered yet.
    let unanswered = wait_for("a create under way", Duration::from_secs(30), || {
        let imports = e2e.imports(ns);
        let sent = imports
            .iter()
            .filter(|i| i.create_attempted && i.job_id.is_none())
            .count();
        let answered = imports.iter().filter(|i| i.job_id.is_some()).count();
        if sent > 0 && answered == 0 {
            Ok(sent)
        } else {
            Err(format!("{sent} sent, {answered} answered"))
        }
    });
    // Deleted, and its processes killed at once as a lost node would leave them: no chance to
    // release the Lease (a SIGTERM would hand it over, which the upgrade shows), and no restart
    // of the container under the same identity.
    let processes = e2e
        .node
        .pod_processes(NS, &leader)
        .expect("the leader's processes");
    assert!(!processes.is_empty(), "no process of {leader}");
    let deleted_at = Timestamp::now();
    e2e.kubectl.run(&[
        "delete",
        "pod",
        &leader,
        "-n",
        NS,
        "--grace-period=0",
        "--force",
        "--wait=false",
    ]);
    let mut kill = Command::new("kill");
    kill.arg("-KILL").args(processes.iter().map(u32::to_string));
    let killed = run_bounded(kill, TOOL_LIMIT);
    assert!(killed.ok(), "kill -KILL {processes:?}: {killed:?}");
    let new = wait_for(
        "another replica holds the Lease",
        Duration::from_secs(60),
        || match e2e.lease.holder() {
            Some(h) if h != leader => Ok(h),
            other => Err(format!("{other:?}")),
        },
    );
    let handover = e2e
        .lease
        .handovers(deleted_at)
        .into_iter()
        .find(|h| h.to == new)
        .expect("the handover in the Lease's log");
    e2e.set_latency(Duration::ZERO);
    let imports = e2e.wait_all_ready(ns, n, PENDING + RUNNING + Duration::from_secs(90));
    let jobs = e2e.jobs();
    let result = audit(&jobs, &imports, &[]);
    e2e.made(n);
    assert_eq!(result, Audit::default(), "{jobs:?}");
    say(&format!(
        "figure: failover: leader {leader} deleted and SIGKILLed with {unanswered} create(s) unanswered \
         (simulator answering in 3 s); {new} ({}) took the Lease {} after the deletion ({} \
         without a leader, the Lease {}); {n} imports Ready, {} duplicates, {} leaks",
        if pods.contains(&new) {
            "the standby"
        } else {
            "the leader's replacement"
        },
        secs(handover.acquired.duration_since(deleted_at).unsigned_abs()),
        secs(handover.gap),
        if handover.released {
            "released"
        } else {
            "expired"
        },
        result.duplicates,
        result.leaks
    ));
}

/// `helm upgrade` to the image's new tag while imports are being created and others deleted:
/// the rolling update hands the Lease over on SIGTERM; no duplicate, no lost deletion.
fn upgrade(e2e: &E2e) {
    let ns = "upgrade";
    e2e.kubectl.run(&["create", "namespace", ns]);
    let pods = e2e.wait_ready_pods(RELEASE, 2, Duration::from_secs(90));
    e2e.wait_holder(&pods, Duration::from_secs(30));
    let old = (0..6).fold(secret_yaml(ns), |text, i| {
        text + &import_yaml(
            ns,
            &format!("old-{i}"),
            &format!("models/old-{i}/"),
            "dashscope",
        )
    });
    let file = e2e.write("upgrade-old.yaml", &old);
    e2e.kubectl.run(&["apply", "-f", &file]);
    let old = wait_for("the old imports' jobs", Duration::from_secs(60), || {
        let imports = e2e.imports(ns);
        let with_job = imports.iter().filter(|i| i.job_id.is_some()).count();
        (with_job == 6)
            .then_some(imports)
            .ok_or(format!("{with_job} of 6"))
    });
    // Deleted while their jobs run: each waits (DeletionBlocked) until it can delete its job.
    e2e.kubectl
        .run(&["delete", "modelimports", "--all", "-n", ns, "--wait=false"]);
    let new = (0..12).fold(String::new(), |text, i| {
        text + &import_yaml(
            ns,
            &format!("new-{i}"),
            &format!("models/new-{i}/"),
            "dashscope",
        )
    });
    let file = e2e.write("upgrade-new.yaml", &new);
    e2e.kubectl.run(&["apply", "-f", &file]);

    let since = Timestamp::now();
    let upgrading = Instant::now();
    let tag = format!("{VERSION}{NEXT}");
    let out = e2e.helm.run(&[
        "upgrade",
        RELEASE,
        &e2e.chart,
        "--version",
        &e2e.chart_version,
        "--plain-http",
        "-n",
        NS,
        "--reuse-values",
        "--set",
        &format!("image.tag={tag}"),
        "--wait",
        "--timeout",
        "3m",
    ]);
    assert!(out.ok(), "helm upgrade: {}\n{}", out.stdout, out.stderr);
    let rollout = upgrading.elapsed();
    let pods = e2e.wait_ready_pods(RELEASE, 2, Duration::from_secs(90));
    for pod in e2e.controller_pods(RELEASE) {
        let image = pod["spec"]["containers"][0]["image"].as_str().unwrap_or("");
        assert_eq!(
            image,
            format!("localhost:5000/modelstudio-controller:{tag}")
        );
    }
    let holder = e2e.wait_holder(&pods, Duration::from_secs(60));

    let imports = e2e.wait_all_ready(ns, 12, PENDING + RUNNING + Duration::from_secs(90));
    let gone: Vec<(String, String)> = old
        .iter()
        .map(|i| (i.name.clone(), i.uid.clone()))
        .collect();
    let jobs = e2e.jobs();
    let result = audit(&jobs, &imports, &gone);
    e2e.made(imports.len() + gone.len());
    assert_eq!(result, Audit::default(), "{jobs:?}");
    let handovers = e2e.lease.handovers(since);
    assert!(!handovers.is_empty(), "the Lease moved to a new pod");
    for h in &handovers {
        assert!(
            h.released,
            "the Lease was handed over on SIGTERM, not left to expire: {h:?}"
        );
    }
    let gaps: Vec<String> = handovers
        .iter()
        .map(|h| format!("{} -> {}: {}", h.from, h.to, secs(h.gap)))
        .collect();
    say(&format!(
        "figure: helm upgrade to {tag} with 12 creates and 6 deletions in progress: rollout {}, \
         leader now {holder}; Lease handed over {} time(s) on SIGTERM, without a leader for \
         [{}]; {} duplicates, {} lost deletions, {} leaks",
        secs(rollout),
        handovers.len(),
        gaps.join("; "),
        result.duplicates,
        result.unreleased,
        result.leaks
    ));
}

/// The default limit (256Mi) holds LOAD imports: the leader's working set from kubelet's stats.
/// Then a release with a 12Mi limit on the same imports (the first one scaled to 0 meanwhile)
/// shows OOMKilled in its pod's status.
fn limits(e2e: &E2e) {
    let ns = "load";
    e2e.kubectl.run(&["create", "namespace", ns]);
    let manifest = (0..LOAD).fold(secret_yaml(ns), |text, i| {
        text + &import_yaml(
            ns,
            &format!("load-{i:03}"),
            &format!("models/load-{i:03}/"),
            "dashscope",
        )
    });
    let file = e2e.write("load.yaml", &manifest);
    let applied = Instant::now();
    let out = e2e.kubectl_long(&["create", "-f", &file]);
    assert!(out.ok(), "kubectl create of {LOAD} imports: {}", out.stderr);
    let imports = e2e.wait_all_ready(ns, LOAD, PENDING + RUNNING + Duration::from_secs(150));
    let all_ready = applied.elapsed();
    let ready_at = Timestamp::now();
    let pods = e2e.ready_pods(RELEASE);
    let leader = e2e.wait_holder(&pods, Duration::from_secs(30));
    let limit = e2e.controller_pods(RELEASE)[0]["spec"]["containers"][0]["resources"]["limits"]
        ["memory"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(limit, "256Mi", "the chart's default limit");
    let leader_bytes = e2e.working_set(&leader, ready_at);
    let standby = pods
        .iter()
        .find(|p| **p != leader)
        .cloned()
        .unwrap_or_default();
    let standby_bytes = e2e.working_set(&standby, ready_at);
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    assert!(
        leader_bytes < 128 * 1024 * 1024,
        "the leader's working set {leader_bytes} leaves less than half of 256Mi"
    );
    say(&format!(
        "figure: memory: {LOAD} imports Ready {} after kubectl create; the leader's working set \
         (kubelet stats) {:.1} MiB of the chart's default 256Mi limit ({:.0}%), the standby's \
         {:.1} MiB ({} build)",
        secs(all_ready),
        mib(leader_bytes),
        100.0 * mib(leader_bytes) / 256.0,
        mib(standby_bytes),
        if release_images() { "release" } else { "debug" }
    ));

    // The same imports under a limit too small. One controller at a time: the first one stands
    // down while the probe runs.
    let scale = |n: &str| {
        e2e.kubectl.run(&[
            "scale",
            "deployment",
            RELEASE,
            "-n",
            NS,
            &format!("--replicas={n}"),
        ])
    };
    scale("0");
    e2e.wait_ready_pods(RELEASE, 0, Duration::from_secs(90));
    let probe = "oom-probe";
    let installing = Instant::now();
    let out = e2e.helm_install(
        probe,
        &[
            "--set",
            "replicas=1",
            "--set",
            &format!("controller.watchNamespace={ns}"),
            "--set",
            &format!("resources.limits.memory={TOO_SMALL}"),
            "--set",
            &format!("resources.requests.memory={TOO_SMALL}"),
            "--set",
            "podDisruptionBudget.enabled=false",
        ],
        false,
    );
    assert!(
        out.ok(),
        "helm install {probe}: {}\n{}",
        out.stdout,
        out.stderr
    );
    let (pod, restarts) = wait_for(
        &format!("the {TOO_SMALL} pod OOMKilled"),
        Duration::from_secs(120),
        || {
            let pods = e2e.controller_pods(probe);
            let pod = pods.first().ok_or("no pod")?;
            let status = &pod["status"]["containerStatuses"][0];
            let killed = ["state", "lastState"]
                .iter()
                .any(|s| status[s]["terminated"]["reason"] == "OOMKilled");
            if killed {
                Ok((
                    pod["metadata"]["name"].as_str().unwrap_or("").to_string(),
                    status["restartCount"].as_u64().unwrap_or(0),
                ))
            } else {
                Err(status.to_string())
            }
        },
    );
    let seen = installing.elapsed();
    e2e.helm
        .ok(&["uninstall", probe, "-n", NS, "--wait", "--timeout", "2m"]);
    scale("2");
    e2e.wait_ready_pods(RELEASE, 2, Duration::from_secs(90));
    say(&format!(
        "figure: memory: with resources.limits.memory={TOO_SMALL} and the same {LOAD} imports, \
         pod {pod} shows OOMKilled (exit 137) {} after helm install (restarts {restarts}): the \
         kernel's memory cgroup enforces the limit and kubelet reports it",
        secs(seen)
    ));

    let deleting = Instant::now();
    e2e.kubectl
        .run(&["delete", "modelimports", "--all", "-n", ns, "--wait=false"]);
    e2e.wait_gone(&["modelimports", "-n", ns], Duration::from_secs(150));
    let gone: Vec<(String, String)> = imports
        .iter()
        .map(|i| (i.name.clone(), i.uid.clone()))
        .collect();
    let jobs = e2e.jobs();
    assert_eq!(audit(&jobs, &[], &gone), Audit::default());
    e2e.made(gone.len());
    say(&format!(
        "figure: memory: the {LOAD} imports deleted in {} (every job deleted)",
        secs(deleting.elapsed())
    ));
}

/// docs/helm.md's order: delete the resources and wait for their finalizers, wait for the label
/// to leave the credentials Secrets, helm uninstall, delete the CRDs, delete the namespace.
/// Nothing of the controller stays: no CRD, no finalizer, no label, no job in Model Studio.
fn uninstall(e2e: &E2e) {
    let started = Instant::now();
    for kind in ["modeldeployments", "modelimports"] {
        e2e.kubectl
            .run(&["delete", kind, "--all", "--all-namespaces", "--wait=false"]);
        e2e.wait_gone(&[kind, "--all-namespaces"], Duration::from_secs(120));
    }
    e2e.wait_gone(
        &[
            "secrets",
            "--all-namespaces",
            "-l",
            "modelstudio.io/credentials",
        ],
        Duration::from_secs(60),
    );
    let swept = started.elapsed();
    e2e.helm
        .ok(&["uninstall", RELEASE, "-n", NS, "--wait", "--timeout", "2m"]);
    let crds = format!("{ROOT}/charts/modelstudio-controller/crds/");
    e2e.kubectl.run(&["delete", "-f", &crds]);
    e2e.kubectl
        .run(&["delete", "namespace", NS, "--wait=false"]);
    e2e.wait_gone(&["namespace", NS], Duration::from_secs(120));

    let crds_left: Vec<String> = e2e.json(&["get", "crds"])["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["metadata"]["name"].as_str())
        .filter(|n| n.ends_with(".modelstudio.io"))
        .map(str::to_string)
        .collect();
    assert!(crds_left.is_empty(), "CRDs left: {crds_left:?}");
    let secrets = e2e.json(&["get", "secrets", "--all-namespaces"]);
    for secret in secrets["items"].as_array().into_iter().flatten() {
        let name = &secret["metadata"]["name"];
        assert!(
            secret["metadata"]["labels"]["modelstudio.io/credentials"].is_null(),
            "label left on {name}"
        );
        let finalizers = secret["metadata"]["finalizers"].to_string();
        assert!(
            !finalizers.contains("modelstudio.io"),
            "finalizer left on {name}"
        );
    }
    let selector = format!("app.kubernetes.io/instance={RELEASE}");
    e2e.wait_gone(
        &["clusterroles,clusterrolebindings", "-l", &selector],
        Duration::from_secs(30),
    );
    let jobs = e2e.jobs();
    let undeleted: Vec<&JobRecord> = jobs.iter().filter(|j| !j.deleted).collect();
    assert!(
        undeleted.is_empty(),
        "jobs left in Model Studio: {undeleted:?}"
    );
    let deployments_left = e2e.deployments().into_iter().filter(|d| !d.deleted).count();
    assert_eq!(deployments_left, 0, "deployments left in Model Studio");
    assert!(jobs.iter().all(|j| j.workspace_id == WORKSPACE));
    assert_eq!(
        jobs.len(),
        e2e.jobs_expected.get(),
        "one job for each import of the run that asked for one"
    );
    say(&format!(
        "figure: uninstall in docs/helm.md's order: resources and the Secrets' label gone in {}, \
         all in {}; no CRD, finalizer or credentials label left; all {} jobs of the run deleted \
         in Model Studio",
        secs(swept),
        secs(started.elapsed()),
        jobs.len()
    ));
}

/// deploy/ copied with the image set in its kustomization (what `kustomize edit set image`
/// writes), applied after the CRDs as the README says: Ready; then removed as the README says.
fn kustomize(e2e: &E2e) {
    let copy = e2e.work.join("deploy");
    std::fs::create_dir_all(&copy).expect("a copy of deploy/");
    for entry in std::fs::read_dir(Path::new(ROOT).join("deploy")).expect("deploy/") {
        let path = entry.expect("an entry of deploy/").path();
        if path.extension().is_some_and(|e| e == "yaml") {
            std::fs::copy(&path, copy.join(path.file_name().unwrap())).expect("copy");
        }
    }
    let path = copy.join("kustomization.yaml");
    let text = std::fs::read_to_string(&path).expect("the kustomization");
    let mut kustomization: Value = serde_saphyr::from_str(&text).expect("the kustomization");
    let tag = format!("{VERSION}{NEXT}");
    let images = kustomization["images"]
        .as_array_mut()
        .expect("deploy/'s kustomization sets its image");
    let entry = images
        .iter_mut()
        .find(|i| i["name"] == "modelstudio-controller")
        .expect("the image modelstudio-controller");
    entry["newName"] = "localhost:5000/modelstudio-controller".into();
    entry["newTag"] = tag.clone().into();
    // JSON is YAML: kustomize reads it as it reads the original.
    std::fs::write(&path, kustomization.to_string()).expect("write the kustomization");

    let crds = format!("{ROOT}/crds/");
    let started = Instant::now();
    e2e.kubectl.run(&["apply", "-f", &crds]);
    let copy_arg = copy.display().to_string();
    e2e.kubectl.run(&["apply", "-k", &copy_arg]);
    let selector = "app.kubernetes.io/name=modelstudio-controller";
    let deadline = Instant::now() + Duration::from_secs(120);
    let pods = wait_for("deploy/'s two pods Ready", Duration::from_secs(121), || {
        let ready = e2e.ready(selector);
        if ready.len() == 2 {
            return Ok(ready);
        }
        // Past the deadline, what the pods said is the failure's message.
        let said = if Instant::now() >= deadline {
            let logs = e2e.kubectl.try_run(&[
                "logs",
                "-n",
                NS,
                "-l",
                selector,
                "--previous",
                "--tail=20",
                "--prefix",
            ]);
            format!("; their last logs:\n{}{}", logs.stdout, logs.stderr)
        } else {
            String::new()
        };
        Err(format!("{ready:?}{said}"))
    });
    let took = started.elapsed();
    let holder = e2e.wait_holder(&pods, Duration::from_secs(30));
    let deployment = e2e.json(&["get", "deployment", RELEASE, "-n", NS]);
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["image"],
        format!("localhost:5000/modelstudio-controller:{tag}").as_str()
    );

    // The README's uninstall: scale to 0, orphan (nothing is left to orphan), delete -k, the CRDs.
    e2e.kubectl
        .run(&["scale", "deployment", RELEASE, "-n", NS, "--replicas=0"]);
    let mut orphan = Command::new(env!("CARGO_BIN_EXE_modelstudio-controller"));
    orphan
        .arg("orphan")
        .env("KUBECONFIG", e2e.node.kubeconfig_path());
    let out = run_bounded(orphan, TOOL_LIMIT);
    assert!(out.ok(), "modelstudio-controller orphan: {}", out.stderr);
    e2e.kubectl
        .run(&["delete", "-k", &copy_arg, "--wait=false"]);
    e2e.kubectl.run(&["delete", "-f", &crds]);
    e2e.wait_gone(&["namespace", NS], Duration::from_secs(120));
    e2e.wait_gone(
        &[
            "clusterroles,clusterrolebindings",
            "-l",
            "app.kubernetes.io/name=modelstudio-controller",
        ],
        Duration::from_secs(30),
    );
    say(&format!(
        "figure: kubectl apply -k of deploy/ with the image set in its kustomization ({tag}): two \
         replicas Ready in {} after applying the CRDs, {holder} holds the Lease; removed with \
         nothing left",
        secs(took)
    ));
}
