//! The real control plane: etcd, kube-apiserver and kube-controller-manager as processes.

use crate::pki::{self, make_pki, Cert, PkiError, Usage};
use crate::process::{free_port, log_tail, run_bounded, Proc};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Where `scripts/build-testbed.sh` put the binaries; `scripts/test.sh` sets it.
pub const BIN_DIR_ENV: &str = "MODELSTUDIO_TESTBED_BIN";

/// Why the control plane did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(
        "{BIN_DIR_ENV} is not set: run scripts/build-testbed.sh and export {BIN_DIR_ENV} to the \
         folder it prints (scripts/test.sh does both)"
    )]
    NoBinaries,
    #[error("{0} is missing: run scripts/build-testbed.sh")]
    MissingBinary(PathBuf),
    #[error("could not make the PKI ({step}): {detail}")]
    Pki { step: &'static str, detail: String },
    #[error("could not start {name}: {source}")]
    Spawn {
        name: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{name} was not ready within {limit:?}; its log:\n{log}")]
    NotReady {
        name: &'static str,
        limit: Duration,
        log: String,
    },
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

impl From<PkiError> for StartError {
    fn from(e: PkiError) -> Self {
        StartError::Pki {
            step: e.step,
            detail: e.detail,
        }
    }
}

/// A running control plane; every process is stopped by its PID on drop, the data removed.
pub struct ControlPlane {
    bin: PathBuf,
    dir: PathBuf,
    etcd_port: u16,
    apiserver_port: u16,
    etcd: Option<Proc>,
    apiserver: Option<Proc>,
    controller_manager: Option<Proc>,
}

/// The binaries' folder, from the environment.
pub fn bin_dir() -> Result<PathBuf, StartError> {
    let dir = std::env::var_os(BIN_DIR_ENV)
        .filter(|v| !v.is_empty())
        .ok_or(StartError::NoBinaries)?;
    Ok(PathBuf::from(dir))
}

/// True when the real control plane's binaries are named in the environment.
pub fn available() -> bool {
    bin_dir().is_ok()
}

const READY_LIMIT: Duration = Duration::from_secs(90);

/// The audit policy: requests of ServiceAccounts at the Metadata level (who, verb, resource,
/// answer code; no bodies), once each when complete (watches also when they start). Requests
/// of the admin and of kube-controller-manager are not logged, which keeps the log small.
const AUDIT_POLICY: &str = "\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
    userGroups: [\"system:serviceaccounts\"]
  - level: None
";

impl ControlPlane {
    /// Starts etcd, kube-apiserver and kube-controller-manager; returns once /readyz answers.
    /// A free port can be taken by a parallel test between its choice and its bind: a start
    /// that fails so is tried again on new ports, three times at most.
    pub fn start() -> Result<Self, StartError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match Self::start_once() {
                Err(StartError::NotReady { log, .. })
                    if attempt < 3 && log.contains("address already in use") => {}
                other => return other,
            }
        }
    }

    fn start_once() -> Result<Self, StartError> {
        let bin = bin_dir()?;
        for name in [
            "etcd",
            "kube-apiserver",
            "kube-controller-manager",
            "kubectl",
        ] {
            let path = bin.join(name);
            if !path.is_file() {
                return Err(StartError::MissingBinary(path));
            }
        }
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "msc-controlplane-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        make_pki(&dir, &plane_certs())?;
        let mut plane = ControlPlane {
            bin,
            dir,
            etcd_port: free_port()?,
            apiserver_port: free_port()?,
            etcd: None,
            apiserver: None,
            controller_manager: None,
        };
        std::fs::write(plane.kubeconfig_path(), plane.admin_kubeconfig("default"))?;
        std::fs::write(plane.dir.join("audit-policy.yaml"), AUDIT_POLICY)?;
        plane.start_etcd()?;
        plane.start_apiserver()?;
        plane.start_controller_manager()?;
        Ok(plane)
    }

    /// The folder of this control plane's files (PKI, logs, etcd's data).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The folder of the binaries (kubectl 1.37 among them).
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    pub fn base_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.apiserver_port)
    }

    /// The admin kubeconfig (system:masters), written at start.
    pub fn kubeconfig_path(&self) -> PathBuf {
        self.dir.join("admin.kubeconfig")
    }

    /// kube-apiserver's audit log (JSON lines): every request made as a ServiceAccount, at the
    /// Metadata level (verb, resource, user, answer code); other users are not logged.
    pub fn audit_log_path(&self) -> PathBuf {
        self.dir.join("audit.log")
    }

    /// The audit events logged so far, oldest first (a line being written is skipped).
    pub fn audit_events(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.audit_log_path())
            .unwrap_or_default()
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }

    /// An admin kubeconfig with the certificates inlined, its context on `namespace`.
    pub fn admin_kubeconfig(&self, namespace: &str) -> String {
        pki::kubeconfig(&self.dir, &self.base_url(), "admin", namespace)
    }

    /// A kubeconfig that authenticates with a bearer `token` only (a ServiceAccount's).
    pub fn token_kubeconfig(&self, token: &str, namespace: &str) -> String {
        pki::token_kubeconfig(&self.dir, &self.base_url(), token, namespace)
    }

    /// Stops kube-apiserver and starts it again on the same port, keeping etcd's data. The
    /// controller-manager is restarted with it (it exits when its API server goes away early).
    pub fn restart_apiserver(&mut self) -> Result<(), StartError> {
        if let Some(mut p) = self.controller_manager.take() {
            p.stop(Duration::from_secs(10));
        }
        if let Some(mut p) = self.apiserver.take() {
            p.stop(Duration::from_secs(10));
        }
        self.start_apiserver()?;
        self.start_controller_manager()
    }

    /// Runs the testbed's kubectl with the admin kubeconfig.
    pub fn kubectl(&self, args: &[&str], limit: Duration) -> crate::Output {
        let mut cmd = Command::new(self.bin.join("kubectl"));
        cmd.env("KUBECONFIG", self.kubeconfig_path())
            .env("KUBECACHEDIR", self.dir.join("kube-cache"))
            .args(args);
        run_bounded(cmd, limit)
    }

    fn start_etcd(&mut self) -> Result<(), StartError> {
        let mut cmd = Command::new(self.bin.join("etcd"));
        etcd_args(&mut cmd, &self.dir, self.etcd_port, free_port()?);
        let proc = Proc::spawn("etcd", cmd, &self.dir).map_err(|source| StartError::Spawn {
            name: "etcd",
            source,
        })?;
        self.etcd = Some(proc);
        let port = self.etcd_port;
        self.wait_ready("etcd", |_| http_get_ok(port, "/health"))
    }

    fn start_apiserver(&mut self) -> Result<(), StartError> {
        let d = |f: &str| self.dir.join(f).display().to_string();
        let port = self.apiserver_port;
        let mut cmd = Command::new(self.bin.join("kube-apiserver"));
        apiserver_args(
            &mut cmd,
            &self.dir,
            self.etcd_port,
            port,
            &format!("https://127.0.0.1:{port}/"),
        );
        cmd.args(["--bind-address=127.0.0.1", "--advertise-address=127.0.0.1"])
            .args([
                "--service-cluster-ip-range=10.0.0.0/24",
                "--authorization-mode=RBAC",
                "--disable-admission-plugins=ServiceAccount",
                // No kubernetes Service endpoint: a loopback advertise address is refused by
                // the endpoint reconciler (envtest does the same).
                "--endpoint-reconciler-type=none",
                "--audit-log-format=json",
            ])
            .arg(format!("--audit-policy-file={}", d("audit-policy.yaml")))
            .arg(format!("--audit-log-path={}", d("audit.log")));
        let proc =
            Proc::spawn("kube-apiserver", cmd, &self.dir).map_err(|source| StartError::Spawn {
                name: "kube-apiserver",
                source,
            })?;
        self.apiserver = Some(proc);
        self.wait_ready("kube-apiserver", |plane| {
            plane
                .kubectl(
                    &["get", "--raw", "/readyz", "--request-timeout=5s"],
                    Duration::from_secs(10),
                )
                .ok()
        })
    }

    fn start_controller_manager(&mut self) -> Result<(), StartError> {
        let mut cmd = Command::new(self.bin.join("kube-controller-manager"));
        controller_manager_args(&mut cmd, &self.dir, &self.kubeconfig_path(), free_port()?);
        cmd.arg("--controllers=namespace-controller,garbage-collector-controller,serviceaccount-controller,serviceaccount-token-controller,root-ca-certificate-publisher-controller");
        let proc = Proc::spawn("kube-controller-manager", cmd, &self.dir).map_err(|source| {
            StartError::Spawn {
                name: "kube-controller-manager",
                source,
            }
        })?;
        self.controller_manager = Some(proc);
        // Working once its serviceaccount controller has made the default ServiceAccount.
        self.wait_ready("kube-controller-manager", |plane| {
            plane
                .kubectl(
                    &[
                        "get",
                        "serviceaccount",
                        "default",
                        "-n",
                        "default",
                        "--request-timeout=5s",
                    ],
                    Duration::from_secs(10),
                )
                .ok()
        })
    }

    /// Polls `ready` until it holds, the process exits, or READY_LIMIT passes.
    fn wait_ready(
        &mut self,
        name: &'static str,
        ready: impl Fn(&Self) -> bool,
    ) -> Result<(), StartError> {
        let deadline = Instant::now() + READY_LIMIT;
        loop {
            if ready(self) {
                return Ok(());
            }
            let mut proc = match name {
                "etcd" => self.etcd.as_mut(),
                "kube-apiserver" => self.apiserver.as_mut(),
                _ => self.controller_manager.as_mut(),
            };
            let exited = proc.as_mut().is_some_and(|p| !p.running());
            if exited || Instant::now() >= deadline {
                let log = proc.map(|p| p.log()).unwrap_or_default();
                return Err(StartError::NotReady {
                    name,
                    limit: READY_LIMIT,
                    log: log_tail(&log, 40),
                });
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        // Clients first, the store last.
        for p in [
            self.controller_manager.take(),
            self.apiserver.take(),
            self.etcd.take(),
        ]
        .into_iter()
        .flatten()
        {
            let mut p = p;
            p.stop(Duration::from_secs(5));
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A plain HTTP GET on 127.0.0.1 that answers 200.
fn http_get_ok(port: u16, path: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
        .is_err()
    {
        return false;
    }
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    buf.starts_with("HTTP/1.0 200") || buf.starts_with("HTTP/1.1 200")
}

/// The control plane's certificates: kube-apiserver's for 127.0.0.1 and localhost (and the
/// first address of its Service range), and an admin client in system:masters.
fn plane_certs() -> [Cert<'static>; 2] {
    [
        Cert {
            name: "apiserver",
            subject: "/CN=kube-apiserver",
            usage: Usage::Server(apiserver_sans(&["127.0.0.1", "10.0.0.1"])),
        },
        Cert {
            name: "admin",
            subject: "/O=system:masters/CN=testbed-admin",
            usage: Usage::Client,
        },
    ]
}

/// kube-apiserver's names: localhost, the `kubernetes` Service's DNS names, and `ips`.
pub(crate) fn apiserver_sans(ips: &[&str]) -> Vec<String> {
    [
        "localhost",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
    ]
    .iter()
    .map(|name| format!("DNS:{name}"))
    .chain(ips.iter().map(|ip| format!("IP:{ip}")))
    .collect()
}

/// etcd of one member named testbed on 127.0.0.1, its data in `<dir>/etcd`, no fsync.
pub(crate) fn etcd_args(cmd: &mut Command, dir: &Path, client_port: u16, peer_port: u16) {
    let client_url = format!("http://127.0.0.1:{client_port}");
    let peer_url = format!("http://127.0.0.1:{peer_port}");
    cmd.arg("--name=testbed")
        .arg(format!("--data-dir={}", dir.join("etcd").display()))
        .arg(format!("--listen-client-urls={client_url}"))
        .arg(format!("--advertise-client-urls={client_url}"))
        .arg(format!("--listen-peer-urls={peer_url}"))
        .arg(format!("--initial-advertise-peer-urls={peer_url}"))
        .arg(format!("--initial-cluster=testbed={peer_url}"))
        .args(["--unsafe-no-fsync", "--log-level=error"]);
}

/// What every kube-apiserver of the test bed is given: etcd on 127.0.0.1, the port, the PKI of
/// `dir` (serving certificate, client CA, ServiceAccount keys) and privileged pods allowed.
/// Addresses, the Service range, authorization and admission are the caller's.
pub(crate) fn apiserver_args(
    cmd: &mut Command,
    dir: &Path,
    etcd_port: u16,
    port: u16,
    issuer: &str,
) {
    let d = |f: &str| dir.join(f).display().to_string();
    cmd.arg(format!("--etcd-servers=http://127.0.0.1:{etcd_port}"))
        .arg(format!("--secure-port={port}"))
        .arg(format!("--cert-dir={}", d("certs")))
        .arg(format!("--tls-cert-file={}", d("apiserver.crt")))
        .arg(format!("--tls-private-key-file={}", d("apiserver.key")))
        .arg(format!("--client-ca-file={}", d("ca.crt")))
        .arg(format!("--service-account-issuer={issuer}"))
        .arg(format!("--service-account-key-file={}", d("sa.pub")))
        .arg(format!(
            "--service-account-signing-key-file={}",
            d("sa.key")
        ))
        .arg("--allow-privileged=true");
}

/// kube-controller-manager with `kubeconfig` for everything, no leader election, the
/// ServiceAccount key and CA of `dir`, serving its health on 127.0.0.1:`port`. Which
/// controllers run is the caller's.
pub(crate) fn controller_manager_args(cmd: &mut Command, dir: &Path, kubeconfig: &Path, port: u16) {
    let kubeconfig = kubeconfig.display();
    cmd.arg(format!("--kubeconfig={kubeconfig}"))
        .arg(format!("--authentication-kubeconfig={kubeconfig}"))
        .arg(format!("--authorization-kubeconfig={kubeconfig}"))
        .arg("--leader-elect=false")
        .arg(format!(
            "--service-account-private-key-file={}",
            dir.join("sa.key").display()
        ))
        .arg(format!("--root-ca-file={}", dir.join("ca.crt").display()))
        .arg("--use-service-account-credentials=false")
        .arg("--bind-address=127.0.0.1")
        .arg(format!("--secure-port={port}"));
}
