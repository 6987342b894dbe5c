//! Go-built test tools (helm, kstatus, Argo CD's Lua VM, ...): one Go module each under
//! `testbed/`, built once per go.sum by `scripts/build-testbed.sh MODULE` and cached outside the
//! checkout, so `cargo test` alone builds what it runs.

use crate::process::run_bounded;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A cold build of a tool module (downloads and compiles) on a 2-core machine stays well inside.
const BUILD_LIMIT: Duration = Duration::from_secs(1500);

/// Why a Go tool is not there.
#[derive(Debug, thiserror::Error)]
pub enum GoToolError {
    #[error("scripts/build-testbed.sh {module} failed: {detail}")]
    Build { module: String, detail: String },
    #[error("testbed/{module} built no {name} (is it in testbed/{module}/binaries?)")]
    Missing { module: String, name: String },
}

/// The project's root (the workspace holding crates/testbed).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The path of binary `name` of Go module `testbed/<module>`, built first if the cache lacks it.
pub fn go_tool(module: &str, name: &str) -> Result<PathBuf, GoToolError> {
    let script = workspace_root().join("scripts/build-testbed.sh");
    let mut command = Command::new("bash");
    command.arg(script).arg(module);
    let out = run_bounded(command, BUILD_LIMIT);
    if !out.ok() {
        return Err(GoToolError::Build {
            module: module.into(),
            detail: format!("{:?}\n{}", out.status, out.stderr),
        });
    }
    let dir = out.stdout.lines().last().unwrap_or_default().trim();
    let path = Path::new(dir).join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(GoToolError::Missing {
            module: module.into(),
            name: name.into(),
        })
    }
}
