//! The controller binary as a process, with defaults for a fast test.

use crate::process::Proc;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The command line of one controller run: `run` with defaults for a fast test, a flag given
/// again replacing its default.
#[derive(Debug, Clone)]
pub struct ControllerCommand {
    bin: PathBuf,
    kubeconfig: PathBuf,
    flags: Vec<(String, Option<String>)>,
    env: Vec<(String, String)>,
}

impl ControllerCommand {
    /// `bin run` against the API server of `kubeconfig` and the Model Studio at `endpoint`.
    pub fn new(bin: impl Into<PathBuf>, kubeconfig: impl Into<PathBuf>, endpoint: &str) -> Self {
        let flags = [
            ("--endpoint", Some(endpoint.to_string())),
            ("--metrics-addr", Some("127.0.0.1:0".to_string())),
            ("--poll-interval", Some("200ms".into())),
            ("--backoff-base", Some("100ms".into())),
            ("--backoff-max", Some("2s".into())),
            ("--qps", Some("100".into())),
            ("--burst", Some("50".into())),
            ("--request-timeout", Some("5s".into())),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        ControllerCommand {
            bin: bin.into(),
            kubeconfig: kubeconfig.into(),
            flags,
            env: vec![("RUST_LOG".into(), "info".into())],
        }
    }

    /// Adds flags, as on a command line (`["--qps", "5", "--leader-elect"]`); a flag already set
    /// takes the new value.
    pub fn flags(mut self, extra: &[&str]) -> Self {
        let mut rest = extra.iter().peekable();
        while let Some(flag) = rest.next() {
            let value = rest
                .next_if(|v| !v.starts_with("--"))
                .map(|v| v.to_string());
            match self.flags.iter_mut().find(|(k, _)| k == flag) {
                Some(slot) => slot.1 = value,
                None => self.flags.push((flag.to_string(), value)),
            }
        }
        self
    }

    /// Sets an environment variable of the process.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// The command, with a clean environment for the API key.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("run");
        for (flag, value) in &self.flags {
            cmd.arg(flag);
            if let Some(v) = value {
                cmd.arg(v);
            }
        }
        cmd.env("KUBECONFIG", &self.kubeconfig)
            .env_remove("DASHSCOPE_API_KEY")
            .env_remove("POD_NAME");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Starts the controller; its output is appended to `<dir>/<name>.log`.
    pub fn spawn(&self, name: &str, dir: &Path) -> std::io::Result<Proc> {
        Proc::spawn(name, self.command(), dir)
    }
}
