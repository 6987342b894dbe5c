//! A real Kubernetes node for tests: its own etcd, kube-apiserver, kube-controller-manager and
//! kube-scheduler, containerd 2 with runc, kubelet and kube-proxy (all v1.37.2), and a local OCI
//! registry, inside private PID, mount and network namespaces that the node creates and removes.
//!
//! Nothing is written on the host outside the node's folder: kubelet's global sysctls are files
//! bind-mounted inside the mount namespace, /run, /var/lib, /var/log and /opt are the
//! namespace's own, and the addresses (node, pods, Services, all from 100.64.0.0/10) live in a
//! network namespace with no route out. Tests reach the API server and the registry through
//! relays on the host's 127.0.0.1. Every process is stopped by its PID at teardown (also when a
//! test fails); the kernel kills whatever is left in the PID namespace with its PID 1; the
//! node's cgroup folders are removed.

mod cgroups;
mod config;
mod image;
mod namespace;
mod relay;
mod tools;

pub use image::ImageError;
pub use namespace::NamespaceError;
pub use tools::{NodeTools, ToolsError};

use crate::control_plane::{apiserver_args, apiserver_sans, controller_manager_args, etcd_args};
use crate::kubectl::Kubectl;
use crate::pki::{self, make_pki, Cert, PkiError, Usage};
use crate::process::{log_tail, run_bounded, Output};
use cgroups::CgroupRoot;
use config::*;
use namespace::{Namespace, NsProc};
use relay::Relay;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// How long each part of the node may take to be ready (seconds when built; the bound is for a
/// loaded machine).
const READY_LIMIT: Duration = Duration::from_secs(90);
/// How long a process may take to stop after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// Longest one kubectl command of the node may run.
const KUBECTL_LIMIT: Duration = Duration::from_secs(30);

/// Why the node did not start (or a request to it failed).
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("the node's tools are not there: {0}")]
    Tools(#[from] ToolsError),
    #[error(transparent)]
    Pki(#[from] PkiError),
    #[error("the node's namespaces: {0}")]
    Namespace(#[from] NamespaceError),
    #[error("could not make the node's cgroup root {name}: {source}")]
    Cgroup {
        name: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{name} was not ready within {limit:?}; its log:\n{log}")]
    NotReady {
        name: &'static str,
        limit: Duration,
        log: String,
    },
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error("kubectl {args} failed: {detail}")]
    Kubectl { args: String, detail: String },
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

impl NodeError {
    /// True when the node could not start because a tool or package is not installed or built
    /// (a local run may skip then; CI never does).
    pub fn tools_missing(&self) -> bool {
        matches!(self, NodeError::Tools(_))
    }
}

/// The node's registry, as the host and as the node see it.
#[derive(Debug, Clone)]
pub struct Registry {
    /// `127.0.0.1:<port>` on the host: push here (plain HTTP).
    pub host: String,
    /// `127.0.0.1:5000`: the registry in image references of pods.
    pub in_cluster: String,
}

/// What a teardown took and left.
#[derive(Debug)]
pub struct Teardown {
    pub elapsed: Duration,
    /// Processes still in the node's network namespace (none expected).
    pub processes_left: Vec<u32>,
    /// Cgroup folders of the node that could not be removed (none expected).
    pub cgroups_left: Vec<PathBuf>,
}

/// A running node; [`Node::stop`] or drop tears it down.
pub struct Node {
    dir: PathBuf,
    tools: NodeTools,
    started_in: Duration,
    apiserver_relay: Option<Relay>,
    registry_relay: Option<Relay>,
    /// In start order; stopped together, waited for in reverse.
    procs: Vec<(&'static str, NsProc)>,
    namespace: Option<Namespace>,
    cgroup: Option<CgroupRoot>,
    net_id: String,
    torn_down: bool,
}

impl Node {
    /// Starts a node (on a blocking thread) and returns once it is Ready, the default
    /// ServiceAccount exists and the pause image is in its registry.
    pub async fn start() -> Result<Node, NodeError> {
        tokio::task::spawn_blocking(Node::start_blocking)
            .await
            .map_err(|e| NodeError::Io(std::io::Error::other(e)))?
    }

    /// [`Node::start`] on the calling thread.
    pub fn start_blocking() -> Result<Node, NodeError> {
        let started = Instant::now();
        let tools = NodeTools::find()?;
        let dir = fresh_dir()?;
        let mut node = Node {
            cgroup: None,
            namespace: None,
            procs: Vec::new(),
            apiserver_relay: None,
            registry_relay: None,
            started_in: Duration::ZERO,
            net_id: String::new(),
            torn_down: false,
            tools,
            dir,
        };
        node.write_files()?;
        node.make_cgroup_root()?;
        node.make_namespace()?;
        node.start_control_plane()?;
        node.start_node_agents()?;
        node.push_pause_image()?;
        node.wait_node_ready()?;
        node.started_in = started.elapsed();
        Ok(node)
    }

    /// The node's folder (PKI, configuration, logs, etcd's and containerd's data).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// How long the start took.
    pub fn started_in(&self) -> Duration {
        self.started_in
    }

    pub fn name(&self) -> &'static str {
        NODE_NAME
    }

    pub fn node_ip(&self) -> &'static str {
        NODE_IP
    }

    /// The `kubernetes` Service's ClusterIP.
    pub fn kubernetes_service_ip(&self) -> &'static str {
        KUBERNETES_SERVICE_IP
    }

    /// The API server as the host reaches it (through the relay).
    pub fn base_url(&self) -> String {
        let port = self.apiserver_relay.as_ref().map_or(0, Relay::port);
        format!("https://127.0.0.1:{port}")
    }

    /// An admin (system:masters) kubeconfig for the host, its context on `namespace`.
    pub fn kubeconfig(&self, namespace: &str) -> String {
        pki::kubeconfig(&self.dir, &self.base_url(), "admin", namespace)
    }

    /// A kubeconfig for the host that authenticates with a bearer `token` only.
    pub fn token_kubeconfig(&self, token: &str, namespace: &str) -> String {
        pki::token_kubeconfig(&self.dir, &self.base_url(), token, namespace)
    }

    /// The host's admin kubeconfig file (context on `default`).
    pub fn kubeconfig_path(&self) -> PathBuf {
        self.dir.join("host.kubeconfig")
    }

    /// kubectl 1.37 (the control plane's) with the host's admin kubeconfig.
    pub fn kubectl(&self) -> Kubectl {
        Kubectl::with_program(self.tools.kubectl(), self.kubeconfig_path(), &self.dir)
    }

    /// An admin kube client, its default namespace `namespace`.
    pub async fn client(&self, namespace: &str) -> Result<kube::Client, crate::BedError> {
        crate::client_for(&self.kubeconfig(namespace)).await
    }

    pub fn registry(&self) -> Registry {
        let port = self.registry_relay.as_ref().map_or(0, Relay::port);
        Registry {
            host: format!("127.0.0.1:{port}"),
            in_cluster: format!("127.0.0.1:{REGISTRY_PORT}"),
        }
    }

    /// Pushes an image (OCI archive, OCI layout folder or docker tarball) to the registry as
    /// `repository:tag` and returns the reference pods use (`127.0.0.1:5000/repository:tag`).
    pub fn push_oci_archive(&self, path: &Path, reference: &str) -> Result<String, NodeError> {
        let registry = self.registry();
        image::push_archive(
            &self.tools.crane(),
            path,
            &self.dir,
            &format!("{}/{reference}", registry.host),
        )?;
        Ok(format!("{}/{reference}", registry.in_cluster))
    }

    /// Runs `args` inside the node's namespaces (as kubelet sees the machine), killed after
    /// `limit`.
    pub fn run_in_namespace(&self, args: &[&str], limit: Duration) -> Output {
        match &self.namespace {
            Some(ns) => ns.run(args, limit),
            None => Output {
                status: None,
                stdout: String::new(),
                stderr: "the node is torn down".into(),
            },
        }
    }

    /// The PIDs (on the host) of pod `namespace/pod`'s processes, its sandbox's among them, from
    /// the node's cgroups.
    pub fn pod_processes(&self, namespace: &str, pod: &str) -> Result<Vec<u32>, NodeError> {
        let uid = self.kubectl_ok(&[
            "get",
            "pod",
            pod,
            "-n",
            namespace,
            "-o",
            "jsonpath={.metadata.uid}",
        ])?;
        let marker = format!("pod{}", uid.trim());
        let mut pids: Vec<u32> = self
            .cgroup_folders()
            .iter()
            .flat_map(|root| pids_below(root, &marker, false))
            .collect();
        pids.sort_unstable();
        pids.dedup();
        Ok(pids)
    }

    /// Runs `args` on the host inside the network namespace of pod `namespace/pod`: what the
    /// pod reaches, the command reaches.
    pub fn run_in_pod_network(
        &self,
        namespace: &str,
        pod: &str,
        args: &[&str],
        limit: Duration,
    ) -> Result<Output, NodeError> {
        let pid = self
            .pod_processes(namespace, pod)?
            .into_iter()
            .next()
            .ok_or_else(|| NodeError::Kubectl {
                args: format!("pod {namespace}/{pod}"),
                detail: "no process of the pod in the node's cgroups".into(),
            })?;
        let mut cmd = Command::new("nsenter");
        cmd.args(["-t", &pid.to_string(), "-n", "--"]).args(args);
        Ok(run_bounded(cmd, limit))
    }

    /// kubelet's stats summary (`/api/v1/nodes/<node>/proxy/stats/summary`), as JSON.
    pub fn stats_summary(&self) -> Result<serde_json::Value, NodeError> {
        let path = format!("/api/v1/nodes/{NODE_NAME}/proxy/stats/summary");
        let text = self.kubectl_ok(&["get", "--raw", &path])?;
        serde_json::from_str(&text).map_err(|e| NodeError::Kubectl {
            args: format!("get --raw {path}"),
            detail: format!("not JSON: {e}"),
        })
    }

    /// The memory working set of pod `namespace/pod` in kubelet's stats summary, if listed.
    pub fn pod_working_set_bytes(
        &self,
        namespace: &str,
        pod: &str,
    ) -> Result<Option<u64>, NodeError> {
        let summary = self.stats_summary()?;
        Ok(summary["pods"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["podRef"]["name"] == pod && p["podRef"]["namespace"] == namespace)
            .and_then(|p| p["memory"]["workingSetBytes"].as_u64()))
    }

    /// The identity of the node's network namespace (`net:[inode]`).
    pub fn net_namespace(&self) -> &str {
        &self.net_id
    }

    /// The node's cgroup folders (one per hierarchy).
    pub fn cgroup_folders(&self) -> Vec<PathBuf> {
        self.cgroup
            .as_ref()
            .map(CgroupRoot::folders)
            .unwrap_or_default()
    }

    /// Stops every process by its PID (SIGTERM, SIGKILL after a bounded wait), then the
    /// namespaces' PID 1, removes the cgroup folders and the node's folder; says what is left.
    pub fn stop(mut self) -> Teardown {
        self.tear_down()
    }

    fn write_files(&self) -> Result<(), NodeError> {
        let d = &self.dir;
        for sub in [
            "home",
            "tmp",
            "sock",
            "cni",
            "registry",
            "kube-cache",
            "kubelet-pki",
        ] {
            std::fs::create_dir_all(d.join(sub))?;
        }
        make_pki(d, &node_certs())?;
        let inside = format!("https://127.0.0.1:{APISERVER_PORT}");
        std::fs::write(
            d.join("admin.kubeconfig"),
            pki::kubeconfig(d, &inside, "admin", "default"),
        )?;
        std::fs::write(
            d.join("kubelet.kubeconfig"),
            pki::kubeconfig(d, &inside, "kubelet", "default"),
        )?;
        std::fs::write(
            d.join("kubelet.yaml"),
            config::kubelet(d, &self.cgroup_name()),
        )?;
        std::fs::write(
            d.join("kube-proxy.yaml"),
            config::kube_proxy(&d.join("admin.kubeconfig")),
        )?;
        std::fs::write(d.join("containerd.toml"), config::containerd(d))?;
        std::fs::write(d.join("cni/10-testbed.conflist"), config::cni_network())?;
        let hosts = d.join(format!("certs.d/127.0.0.1:{REGISTRY_PORT}"));
        std::fs::create_dir_all(&hosts)?;
        std::fs::write(hosts.join("hosts.toml"), config::registry_hosts())?;
        Ok(())
    }

    /// The node's cgroup root: named after its folder, so parallel nodes never share one.
    fn cgroup_name(&self) -> String {
        self.dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "msc-node".into())
    }

    fn make_cgroup_root(&mut self) -> Result<(), NodeError> {
        let name = self.cgroup_name();
        let root =
            CgroupRoot::create(&name).map_err(|source| NodeError::Cgroup { name, source })?;
        self.cgroup = Some(root);
        Ok(())
    }

    fn make_namespace(&mut self) -> Result<(), NodeError> {
        let d = &self.dir;
        let path = format!(
            "{}:{}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            self.tools.containerd.display(),
            self.tools.node.display()
        );
        let env = [
            ("PATH", path),
            ("HOME", d.join("home").display().to_string()),
            ("TMPDIR", d.join("tmp").display().to_string()),
            ("KUBECACHEDIR", d.join("kube-cache").display().to_string()),
        ]
        .map(|(k, v)| (k.to_string(), v))
        .to_vec();
        let ns = Namespace::create(d, &self.tools.node.join("pause"), env)?;
        self.net_id = ns.net_id().to_string();
        self.namespace = Some(ns);
        Ok(())
    }

    /// Starts `program` with `args` inside the namespaces, as process `name`.
    fn spawn(
        &mut self,
        name: &'static str,
        program: PathBuf,
        args: impl FnOnce(&mut Command),
    ) -> Result<(), NodeError> {
        let ns = self
            .namespace
            .as_ref()
            .ok_or_else(|| NodeError::Io(std::io::Error::other("the node's namespace is gone")))?;
        let mut cmd = ns.command(program);
        args(&mut cmd);
        let proc = NsProc::spawn(name, cmd, &self.dir)?;
        self.procs.push((name, proc));
        Ok(())
    }

    /// etcd, the relay and the registry, containerd and kube-apiserver; then the host's relays,
    /// and a wait for kube-apiserver's /readyz.
    fn start_control_plane(&mut self) -> Result<(), NodeError> {
        let d = self.dir.clone();
        let (kube, node, containerd, registry) = (
            self.tools.kube.clone(),
            self.tools.node.clone(),
            self.tools.containerd.clone(),
            self.tools.registry.clone(),
        );
        self.spawn("etcd", kube.join("etcd"), |cmd| {
            etcd_args(cmd, &d, ETCD_PORT, ETCD_PEER_PORT)
        })?;
        let apiserver_socket = d.join("sock/apiserver.sock");
        let registry_socket = d.join("sock/registry.sock");
        self.spawn("relay", node.join("relay"), |cmd| {
            cmd.arg(format!(
                "{}=127.0.0.1:{APISERVER_PORT}",
                apiserver_socket.display()
            ))
            .arg(format!(
                "{}=127.0.0.1:{REGISTRY_PORT}",
                registry_socket.display()
            ));
        })?;
        self.spawn("registry", registry.join("crane"), |cmd| {
            cmd.args(["registry", "serve", "--address"])
                .arg(format!("127.0.0.1:{REGISTRY_PORT}"))
                .arg("--disk")
                .arg(d.join("registry"));
        })?;
        self.spawn("containerd", containerd.join("containerd"), |cmd| {
            cmd.arg("--config").arg(d.join("containerd.toml"));
        })?;
        self.spawn("kube-apiserver", kube.join("kube-apiserver"), |cmd| {
            apiserver_args(
                cmd,
                &d,
                ETCD_PORT,
                APISERVER_PORT,
                "https://kubernetes.default.svc",
            );
            cmd.arg("--bind-address=0.0.0.0")
                .arg(format!("--advertise-address={NODE_IP}"))
                .arg(format!("--service-cluster-ip-range={SERVICE_CIDR}"))
                .args([
                    "--authorization-mode=Node,RBAC",
                    "--enable-admission-plugins=NodeRestriction",
                    "--kubelet-preferred-address-types=InternalIP",
                ])
                .arg(format!(
                    "--kubelet-client-certificate={}",
                    d.join("admin.crt").display()
                ))
                .arg(format!(
                    "--kubelet-client-key={}",
                    d.join("admin.key").display()
                ));
        })?;
        self.apiserver_relay = Some(Relay::start(apiserver_socket)?);
        self.registry_relay = Some(Relay::start(registry_socket)?);
        std::fs::write(self.kubeconfig_path(), self.kubeconfig("default"))?;
        self.wait_ready("kube-apiserver", |node| {
            node.kubectl_ok(&["get", "--raw", "/readyz"]).is_ok()
        })
    }

    /// kube-controller-manager (all its default controllers), kube-scheduler, kubelet and
    /// kube-proxy.
    fn start_node_agents(&mut self) -> Result<(), NodeError> {
        let d = self.dir.clone();
        let (kube, node) = (self.tools.kube.clone(), self.tools.node.clone());
        let admin = d.join("admin.kubeconfig");
        self.spawn(
            "kube-controller-manager",
            kube.join("kube-controller-manager"),
            |cmd| {
                controller_manager_args(cmd, &d, &admin, CONTROLLER_MANAGER_PORT);
                cmd.arg(format!("--service-cluster-ip-range={SERVICE_CIDR}"));
            },
        )?;
        self.spawn("kube-scheduler", node.join("kube-scheduler"), |cmd| {
            let kubeconfig = admin.display();
            cmd.arg(format!("--kubeconfig={kubeconfig}"))
                .arg(format!("--authentication-kubeconfig={kubeconfig}"))
                .arg(format!("--authorization-kubeconfig={kubeconfig}"))
                .args(["--leader-elect=false", "--bind-address=127.0.0.1"])
                .arg(format!("--secure-port={SCHEDULER_PORT}"));
        })?;
        self.spawn("kubelet", node.join("kubelet"), |cmd| {
            cmd.arg(format!("--config={}", d.join("kubelet.yaml").display()))
                .arg(format!(
                    "--kubeconfig={}",
                    d.join("kubelet.kubeconfig").display()
                ))
                .arg(format!("--cert-dir={}", d.join("kubelet-pki").display()))
                .arg(format!("--node-ip={NODE_IP}"))
                .arg(format!("--hostname-override={NODE_NAME}"));
        })?;
        self.spawn("kube-proxy", node.join("kube-proxy"), |cmd| {
            cmd.arg(format!("--config={}", d.join("kube-proxy.yaml").display()));
        })
    }

    /// The sandbox image, made here and pushed through the host's relay.
    fn push_pause_image(&mut self) -> Result<(), NodeError> {
        let crane = self.tools.crane();
        let host = self.registry().host;
        self.wait_ready("registry", |_| {
            let mut cmd = Command::new(&crane);
            cmd.args(["catalog", "--insecure", &host]);
            run_bounded(cmd, Duration::from_secs(5)).ok()
        })?;
        let reference = pause_image().replacen(&format!("127.0.0.1:{REGISTRY_PORT}"), &host, 1);
        image::push_pause(
            &crane,
            &self.tools.node.join("pause"),
            &self.dir,
            &reference,
        )?;
        Ok(())
    }

    /// The node Ready, and the default ServiceAccount made (kube-controller-manager works).
    fn wait_node_ready(&mut self) -> Result<(), NodeError> {
        self.wait_ready("kubelet", |node| {
            node.kubectl_ok(&[
                "get",
                "node",
                NODE_NAME,
                "-o",
                "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
            ])
            .is_ok_and(|s| s.trim() == "True")
        })?;
        self.wait_ready("kube-controller-manager", |node| {
            node.kubectl_ok(&["get", "serviceaccount", "default", "-n", "default"])
                .is_ok()
        })
    }

    /// Polls `ready` until it holds, process `name` exits, or READY_LIMIT passes.
    fn wait_ready(
        &mut self,
        name: &'static str,
        ready: impl Fn(&Node) -> bool,
    ) -> Result<(), NodeError> {
        let deadline = Instant::now() + READY_LIMIT;
        loop {
            if ready(self) {
                return Ok(());
            }
            let (exited, log) = match self.procs.iter_mut().find(|(n, _)| *n == name) {
                Some((_, p)) => (!p.running(), p.log()),
                None => (false, String::new()),
            };
            if exited || Instant::now() >= deadline {
                return Err(NodeError::NotReady {
                    name,
                    limit: READY_LIMIT,
                    log: log_tail(&log, 40),
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// kubectl with the host's admin kubeconfig; its stdout, or an error with its stderr.
    fn kubectl_ok(&self, args: &[&str]) -> Result<String, NodeError> {
        let mut cmd = Command::new(self.tools.kubectl());
        cmd.env("KUBECONFIG", self.kubeconfig_path())
            .env("KUBECACHEDIR", self.dir.join("kube-cache"))
            .arg("--request-timeout=10s")
            .args(args);
        let out = run_bounded(cmd, KUBECTL_LIMIT);
        if out.ok() {
            Ok(out.stdout)
        } else {
            Err(NodeError::Kubectl {
                args: args.join(" "),
                detail: out.stderr,
            })
        }
    }

    fn tear_down(&mut self) -> Teardown {
        let started = Instant::now();
        self.torn_down = true;
        self.apiserver_relay = None;
        self.registry_relay = None;
        // Clients of the store first (kube-apiserver shuts down in well under a second while
        // etcd answers, and waits for it otherwise), then the store.
        let (store, clients): (Vec<_>, Vec<_>) =
            self.procs.drain(..).partition(|(name, _)| *name == "etcd");
        for mut round in [clients, store] {
            for (_, p) in &mut round {
                p.terminate();
            }
            let deadline = Instant::now() + STOP_GRACE;
            for (_, p) in round.iter_mut().rev() {
                p.finish(deadline.saturating_duration_since(Instant::now()));
            }
        }
        if let Some(mut ns) = self.namespace.take() {
            ns.stop(STOP_GRACE);
        }
        let processes_left = if self.net_id.is_empty() {
            Vec::new()
        } else {
            namespace::processes_in(&self.net_id)
        };
        let cgroups_left = self.cgroup.take().map(|c| c.remove()).unwrap_or_default();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
        Teardown {
            elapsed: started.elapsed(),
            processes_left,
            cgroups_left,
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if !self.torn_down {
            let teardown = self.tear_down();
            if !teardown.processes_left.is_empty() || !teardown.cgroups_left.is_empty() {
                eprintln!("node teardown left {teardown:?}");
            }
        }
    }
}

/// kube-apiserver's serving certificate (127.0.0.1, the node's address, the `kubernetes`
/// Service's ClusterIP), the admin in system:masters (also kube-apiserver's client of kubelet),
/// and kubelet's client certificate as the Node authorizer wants it.
fn node_certs() -> [Cert<'static>; 3] {
    [
        Cert {
            name: "apiserver",
            subject: "/CN=kube-apiserver",
            usage: Usage::Server(apiserver_sans(&[
                "127.0.0.1",
                NODE_IP,
                KUBERNETES_SERVICE_IP,
            ])),
        },
        Cert {
            name: "admin",
            subject: "/O=system:masters/CN=testbed-admin",
            usage: Usage::Client,
        },
        Cert {
            name: "kubelet",
            subject: "/O=system:nodes/CN=system:node:testbed-node",
            usage: Usage::Client,
        },
    ]
}

/// A fresh folder for a node under the system's temp folder.
fn fresh_dir() -> std::io::Result<PathBuf> {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "msc-node-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// The PIDs in the cgroup folders at or below `dir` whose path holds `marker`.
fn pids_below(dir: &Path, marker: &str, inside: bool) -> Vec<u32> {
    let inside = inside
        || dir
            .file_name()
            .is_some_and(|n| n.to_string_lossy().contains(marker));
    let mut pids = Vec::new();
    if inside {
        let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        pids.extend(
            procs
                .split_whitespace()
                .filter_map(|p| p.parse::<u32>().ok()),
        );
    }
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                pids.extend(pids_below(&entry.path(), marker, inside));
            }
        }
    }
    pids
}
