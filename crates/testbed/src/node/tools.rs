//! What the node runs: Go tools built by scripts/build-testbed.sh (the control plane's module,
//! testbed/node, testbed/containerd, testbed/registry) and Debian packages (runc, the CNI
//! plugins, iptables, conntrack) that scripts/test.sh installs when missing.

use crate::control_plane::BIN_DIR_ENV;
use crate::go_tools::{go_tool, GoToolError};
use std::path::{Path, PathBuf};

/// Why a tool of the node is not there.
#[derive(Debug, thiserror::Error)]
pub enum ToolsError {
    #[error(transparent)]
    GoTool(#[from] GoToolError),
    #[error(
        "{path} is missing: apt-get install {package} (scripts/test.sh installs the node's \
         packages: runc containernetworking-plugins iptables conntrack)"
    )]
    Package {
        path: &'static str,
        package: &'static str,
    },
}

/// Files the node needs from Debian packages, and the package of each.
const PACKAGES: [(&str, &str); 9] = [
    ("/usr/sbin/runc", "runc"),
    ("/usr/lib/cni/bridge", "containernetworking-plugins"),
    ("/usr/lib/cni/host-local", "containernetworking-plugins"),
    ("/usr/lib/cni/portmap", "containernetworking-plugins"),
    ("/usr/lib/cni/loopback", "containernetworking-plugins"),
    ("/usr/sbin/iptables", "iptables"),
    ("/usr/sbin/conntrack", "conntrack"),
    ("/usr/bin/unshare", "util-linux"),
    ("/usr/bin/nsenter", "util-linux"),
];

/// The folders of the node's binaries.
#[derive(Debug, Clone)]
pub struct NodeTools {
    /// etcd, kube-apiserver, kube-controller-manager, kubectl (testbed/kube).
    pub kube: PathBuf,
    /// kubelet, kube-proxy, kube-scheduler, pause, relay (testbed/node).
    pub node: PathBuf,
    /// containerd, containerd-shim-runc-v2, ctr (testbed/containerd).
    pub containerd: PathBuf,
    /// crane (testbed/registry).
    pub registry: PathBuf,
}

impl NodeTools {
    /// Checks the packages, then finds (building once if needed) each Go module's binaries.
    pub fn find() -> Result<Self, ToolsError> {
        for (path, package) in PACKAGES {
            if !Path::new(path).exists() {
                return Err(ToolsError::Package { path, package });
            }
        }
        let folder = |module: &str, name: &str| -> Result<PathBuf, ToolsError> {
            let path = go_tool(module, name)?;
            Ok(path.parent().map(Path::to_path_buf).unwrap_or_default())
        };
        let kube = match std::env::var_os(BIN_DIR_ENV).filter(|v| !v.is_empty()) {
            Some(dir) if Path::new(&dir).join("kube-apiserver").is_file() => PathBuf::from(dir),
            _ => folder("kube", "kube-apiserver")?,
        };
        Ok(NodeTools {
            kube,
            node: folder("node", "kubelet")?,
            containerd: folder("containerd", "containerd")?,
            registry: folder("registry", "crane")?,
        })
    }

    pub fn kubectl(&self) -> PathBuf {
        self.kube.join("kubectl")
    }

    pub fn crane(&self) -> PathBuf {
        self.registry.join("crane")
    }
}
