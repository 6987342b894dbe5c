//! The node's cgroup root: a folder of its own name in every cgroup hierarchy of the machine,
//! made before kubelet starts (kubelet requires it) and removed, with what kubelet and runc made
//! under it, at teardown. The machine's cgroups are never remounted.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const CGROUP_FS: &str = "/sys/fs/cgroup";
/// How long removal retries while the killed processes leave their cgroups.
const REMOVE_LIMIT: Duration = Duration::from_secs(10);

/// The node's cgroup root, `/<name>` in each hierarchy.
pub struct CgroupRoot {
    name: String,
}

impl CgroupRoot {
    /// Makes `/<name>` in every hierarchy; a cpuset copies its parent's CPUs and memory nodes
    /// (a new v1 cpuset has none, and no process could join it).
    pub fn create(name: &str) -> std::io::Result<Self> {
        let root = CgroupRoot { name: name.into() };
        for dir in root.folders() {
            std::fs::create_dir_all(&dir)?;
            for file in ["cpuset.cpus", "cpuset.mems"] {
                let parent = dir.parent().unwrap_or(Path::new(CGROUP_FS)).join(file);
                let own = dir.join(file);
                if own.exists() && std::fs::read_to_string(&own)?.trim().is_empty() {
                    std::fs::write(&own, std::fs::read_to_string(parent)?)?;
                }
            }
        }
        Ok(root)
    }

    /// The root's folder in each hierarchy (one on a cgroup v2 machine).
    pub fn folders(&self) -> Vec<PathBuf> {
        hierarchies()
            .into_iter()
            .map(|h| h.join(&self.name))
            .collect()
    }

    /// Removes every folder under the root, deepest first, retrying while processes that were
    /// killed still leave; returns the folders that could not be removed.
    pub fn remove(&self) -> Vec<PathBuf> {
        let deadline = Instant::now() + REMOVE_LIMIT;
        loop {
            let left: Vec<PathBuf> = self
                .folders()
                .into_iter()
                .filter(|dir| dir.exists())
                .flat_map(|dir| remove_tree(&dir))
                .collect();
            if left.is_empty() || Instant::now() >= deadline {
                return left;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The cgroup hierarchies: /sys/fs/cgroup itself on a cgroup v2 machine, else each mounted
/// hierarchy below it (symbolic links such as cpu,cpuacct -> cpu are the same hierarchy).
fn hierarchies() -> Vec<PathBuf> {
    let fs = Path::new(CGROUP_FS);
    if fs.join("cgroup.controllers").exists() {
        return vec![fs.to_path_buf()];
    }
    let Ok(entries) = std::fs::read_dir(fs) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect();
    dirs.sort();
    dirs
}

/// rmdir of `dir` and everything below it, deepest first; the folders left.
fn remove_tree(dir: &Path) -> Vec<PathBuf> {
    let mut left = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                left.extend(remove_tree(&entry.path()));
            }
        }
    }
    if std::fs::remove_dir(dir).is_err() {
        left.push(dir.to_path_buf());
    }
    left
}
