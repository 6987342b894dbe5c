//! The node's private namespaces: one holder process (`unshare`, our pause program as PID 1 of a
//! new PID namespace) owns a mount and a network namespace; every other process of the node runs
//! inside through `nsenter`, and dies with the holder at the latest.

use super::config::{KERNEL_TUNABLES, NODE_IP};
use crate::process::{run_bounded, Output, Proc};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// How long the holder and a process started through nsenter take to show their child.
const CHILD_LIMIT: Duration = Duration::from_secs(5);
/// Longest the namespace's setup script may run.
const SETUP_LIMIT: Duration = Duration::from_secs(30);

/// Why the namespaces could not be made.
#[derive(Debug, thiserror::Error)]
pub enum NamespaceError {
    #[error("could not start {name}: {source}")]
    Spawn {
        name: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{name} showed no child process within {CHILD_LIMIT:?}; its log:\n{log}")]
    NoChild { name: String, log: String },
    #[error("setting up the namespace failed ({step}): {detail}")]
    Setup { step: &'static str, detail: String },
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

/// The holder of the node's namespaces.
pub struct Namespace {
    holder: Proc,
    /// PID (on the host) of the holder's child, PID 1 of the node's PID namespace.
    init: u32,
    /// The network namespace's identity (`net:[inode]`), to find its processes on the host.
    net: String,
    /// The environment every process inside gets.
    env: Vec<(String, String)>,
}

impl Namespace {
    /// Starts the holder (`init` is our pause program, which reaps orphans) in a new PID, mount
    /// (private propagation) and network namespace, then sets the namespace up.
    pub fn create(
        dir: &Path,
        init: &Path,
        env: Vec<(String, String)>,
    ) -> Result<Self, NamespaceError> {
        let mut cmd = Command::new("unshare");
        cmd.args([
            "--fork",
            "--pid",
            "--mount-proc",
            "--mount",
            "--net",
            "--propagation",
            "private",
            "--",
        ])
        .arg(init);
        let mut holder =
            Proc::spawn("holder", cmd, dir).map_err(|source| NamespaceError::Spawn {
                name: "holder".into(),
                source,
            })?;
        let init = match first_child(&mut holder) {
            Some(pid) => pid,
            None => {
                return Err(NamespaceError::NoChild {
                    name: "holder".into(),
                    log: holder.log(),
                })
            }
        };
        let net = std::fs::read_link(format!("/proc/{init}/ns/net"))?
            .display()
            .to_string();
        let ns = Namespace {
            holder,
            init,
            net,
            env,
        };
        ns.set_up(dir)?;
        Ok(ns)
    }

    /// The identity of the network namespace (`net:[inode]`).
    pub fn net_id(&self) -> &str {
        &self.net
    }

    /// `program` inside the namespaces, with the node's environment.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.args(["-t", &self.init.to_string(), "-m", "-n", "-p", "--"])
            .arg(program)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    /// Runs `args` inside the namespaces, killed after `limit`.
    pub fn run(&self, args: &[&str], limit: Duration) -> Output {
        let Some((program, rest)) = args.split_first() else {
            return Output {
                status: None,
                stdout: String::new(),
                stderr: "no command given".into(),
            };
        };
        let mut cmd = self.command(program);
        cmd.args(rest);
        run_bounded(cmd, limit)
    }

    /// Mounts the node's own /run, /var/lib, /var/log and /opt (kubelet, containerd and the CNI
    /// plugins write there whatever their configuration says), covers kubelet's global sysctls,
    /// brings up lo and a veth pair holding the node's address, and forwards IP (a per-namespace
    /// setting). No route leaves the namespace.
    fn set_up(&self, dir: &Path) -> Result<(), NamespaceError> {
        let sysctl = dir.join("sysctl");
        std::fs::create_dir_all(&sysctl)?;
        let mut script = String::from("set -e\n");
        for path in ["/run", "/var/lib", "/var/log", "/opt"] {
            script.push_str(&format!("mkdir -p {path}\nmount -t tmpfs tmpfs {path}\n"));
        }
        for (entry, value) in KERNEL_TUNABLES {
            let file = sysctl.join(entry.replace('/', "."));
            std::fs::write(&file, format!("{value}\n"))?;
            script.push_str(&format!(
                "mount --bind {} /proc/sys/{entry}\n",
                file.display()
            ));
        }
        script.push_str(&format!(
            "ip link set lo up
ip link add node0 type veth peer name node1
ip addr add {NODE_IP}/32 dev node0
ip link set node0 up
ip link set node1 up
echo 1 > /proc/sys/net/ipv4/ip_forward
"
        ));
        let out = self.run(&["sh", "-c", &script], SETUP_LIMIT);
        if out.ok() {
            Ok(())
        } else {
            Err(NamespaceError::Setup {
                step: "mounts, sysctls and links",
                detail: format!("{:?}: {}", out.status, out.stderr),
            })
        }
    }

    /// Stops PID 1 of the namespace: the kernel then kills every process left in it, and the
    /// namespaces (their mounts, links and iptables rules) go with the last one.
    pub fn stop(&mut self, grace: Duration) {
        if !self.holder.running() {
            return;
        }
        signal(self.init, "TERM");
        if self.holder.wait_for_exit(grace).is_none() {
            signal(self.init, "KILL");
            self.holder.stop(grace);
        }
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        // While unshare runs, its child (PID 1 inside) has not been reaped: the PID is still
        // that process's, never another's.
        if self.holder.running() {
            signal(self.init, "KILL");
        }
        self.holder.kill();
    }
}

/// A process of the node: `nsenter` on the host, and its child inside the namespace, which is
/// the one signalled (nsenter passes no signal on).
pub struct NsProc {
    proc: Proc,
    inner: Option<u32>,
}

impl NsProc {
    /// Starts `cmd` (made by [`Namespace::command`]), its output in `<dir>/<name>.log`.
    pub fn spawn(name: &str, cmd: Command, dir: &Path) -> Result<Self, NamespaceError> {
        let mut proc = Proc::spawn(name, cmd, dir).map_err(|source| NamespaceError::Spawn {
            name: name.into(),
            source,
        })?;
        match first_child(&mut proc) {
            Some(inner) => Ok(NsProc {
                proc,
                inner: Some(inner),
            }),
            None if !proc.running() => Ok(NsProc { proc, inner: None }),
            None => Err(NamespaceError::NoChild {
                name: name.into(),
                log: proc.log(),
            }),
        }
    }

    pub fn log(&self) -> String {
        self.proc.log()
    }

    pub fn running(&mut self) -> bool {
        self.proc.running()
    }

    /// Sends SIGTERM to the process inside.
    pub fn terminate(&mut self) {
        if let Some(pid) = self.inner.filter(|_| self.proc.running()) {
            signal(pid, "TERM");
        }
    }

    /// Waits at most `limit` for the exit; then SIGKILL.
    pub fn finish(&mut self, limit: Duration) {
        if self.proc.wait_for_exit(limit).is_none() {
            self.kill();
        }
    }

    fn kill(&mut self) {
        if let Some(pid) = self.inner.filter(|_| self.proc.running()) {
            signal(pid, "KILL");
        }
        self.proc.kill();
    }
}

impl Drop for NsProc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The first child of `proc`, once it has one (a bounded wait); None if it exited first.
fn first_child(proc: &mut Proc) -> Option<u32> {
    let pid = proc.pid();
    let deadline = Instant::now() + CHILD_LIMIT;
    while Instant::now() < deadline && proc.running() {
        let children =
            std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        if let Some(child) = children.split_whitespace().find_map(|c| c.parse().ok()) {
            return Some(child);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    None
}

/// Sends `sig` to `pid` (the kill command: this crate has no unsafe code).
fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .stderr(std::process::Stdio::null())
        .status();
}

/// PIDs of the processes whose network namespace is `net` (`net:[inode]`).
pub fn processes_in(net: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/ns/net"))
                .is_ok_and(|link| link.display().to_string() == net)
        })
        .collect()
}
