//! The node's addresses and the configuration files of its programs (kubelet, kube-proxy,
//! containerd and its registry hosts, the CNI network), as text.

use std::path::Path;

/// The node's name (its kubelet's client certificate is `system:node:<NODE_NAME>`).
pub const NODE_NAME: &str = "testbed-node";
/// The node's address, on a link inside its network namespace.
pub const NODE_IP: &str = "100.64.0.2";
/// The pods' addresses: the CNI bridge's range (its gateway is the first address).
pub const POD_CIDR: &str = "100.64.16.0/24";
/// The range kube-proxy takes for the cluster's pods.
pub const CLUSTER_CIDR: &str = "100.64.16.0/20";
/// The Services' range, the same for kube-apiserver, kube-controller-manager and kube-proxy.
pub const SERVICE_CIDR: &str = "100.64.64.0/20";
/// The `kubernetes` Service's ClusterIP: the first address of [`SERVICE_CIDR`].
pub const KUBERNETES_SERVICE_IP: &str = "100.64.64.1";

/// Ports inside the namespace, where nothing else listens: fixed, so no race for a free port.
pub const ETCD_PORT: u16 = 2379;
pub const ETCD_PEER_PORT: u16 = 2380;
pub const APISERVER_PORT: u16 = 6443;
pub const CONTROLLER_MANAGER_PORT: u16 = 10257;
pub const SCHEDULER_PORT: u16 = 10259;
pub const REGISTRY_PORT: u16 = 5000;

/// containerd's socket inside the namespace (on its own /run).
pub const CONTAINERD_SOCKET: &str = "/run/containerd/containerd.sock";
/// The sandbox ("pause") image, pushed to the node's registry at start and pinned in containerd.
pub fn pause_image() -> String {
    format!("127.0.0.1:{REGISTRY_PORT}/testbed/pause:1")
}

/// The values kubelet wants in these global (not per-namespace) /proc/sys entries: a file
/// holding each value is bind-mounted over the entry inside the node's mount namespace, so
/// kubelet finds them set and the host's stay untouched.
pub const KERNEL_TUNABLES: [(&str, &str); 6] = [
    ("kernel/panic", "10"),
    ("kernel/panic_on_oops", "1"),
    ("vm/overcommit_memory", "1"),
    ("vm/panic_on_oom", "0"),
    ("kernel/keys/root_maxkeys", "1000000"),
    ("kernel/keys/root_maxbytes", "25000000"),
];

/// kubelet: cgroup v1 accepted, cgroupfs under the test's own `cgroup_root`, x509 clients of
/// the test CA allowed everything, no read-only port, no disk-pressure eviction on a busy
/// machine, no cluster DNS (there is none).
pub fn kubelet(dir: &Path, cgroup_root: &str) -> String {
    let ca = dir.join("ca.crt");
    format!(
        "apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: /{cgroup_root}
authentication:
  anonymous: {{enabled: false}}
  webhook: {{enabled: false}}
  x509: {{clientCAFile: {ca}}}
authorization: {{mode: AlwaysAllow}}
readOnlyPort: 0
address: {NODE_IP}
healthzBindAddress: 127.0.0.1
containerRuntimeEndpoint: unix://{CONTAINERD_SOCKET}
failSwapOn: false
podCIDR: {POD_CIDR}
maxPods: 50
evictionHard: {{memory.available: 10Mi, nodefs.available: 1%, imagefs.available: 1%}}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
",
        ca = ca.display()
    )
}

/// kube-proxy in iptables mode (in the namespace's own tables); conntrack's global settings
/// (max entries, hash size, timeouts) left alone.
pub fn kube_proxy(kubeconfig: &Path) -> String {
    format!(
        "apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {{kubeconfig: {}}}
mode: iptables
clusterCIDR: {CLUSTER_CIDR}
hostnameOverride: {NODE_NAME}
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
iptables: {{localhostNodePorts: false}}
conntrack: {{maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}}
",
        kubeconfig.display()
    )
}

/// containerd 2 (config version 3): its data in the test's folder, its state on the namespace's
/// /run; CRI with `restrict_oom_score_adj` (this machine cannot lower an oom_score_adj), runc
/// from Debian, the CNI plugins from Debian with the test's network, the sandbox image pinned,
/// and registry hosts from `<dir>/certs.d`.
pub fn containerd(dir: &Path) -> String {
    let d = |f: &str| dir.join(f).display().to_string();
    format!(
        r#"version = 3
root = "{root}"
state = "/run/containerd"

[grpc]
  address = "{CONTAINERD_SOCKET}"

[plugins."io.containerd.internal.v1.opt"]
  path = "{opt}"

[plugins."io.containerd.nri.v1.nri"]
  disable = true

[plugins."io.containerd.cri.v1.runtime"]
  restrict_oom_score_adj = true
  [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
      BinaryName = "/usr/sbin/runc"
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = ["/usr/lib/cni"]
    conf_dir = "{cni}"

[plugins."io.containerd.cri.v1.images".pinned_images]
  sandbox = "{pause}"

[plugins."io.containerd.cri.v1.images".registry]
  config_path = "{certs}"
"#,
        root = d("containerd"),
        opt = d("containerd-opt"),
        cni = d("cni"),
        pause = pause_image(),
        certs = d("certs.d"),
    )
}

/// The registry's hosts.toml (in `certs.d/127.0.0.1:<port>/`): plain HTTP.
pub fn registry_hosts() -> String {
    format!(
        "server = \"http://127.0.0.1:{REGISTRY_PORT}\"\n\n[host.\"http://127.0.0.1:{REGISTRY_PORT}\"]\n  capabilities = [\"pull\", \"resolve\", \"push\"]\n"
    )
}

/// The pods' network: a bridge with host-local addresses from [`POD_CIDR`], the bridge being
/// the pods' gateway (to Services and the node); the namespace itself has no way out.
pub fn cni_network() -> String {
    format!(
        r#"{{"cniVersion": "1.0.0", "name": "testbed", "plugins": [
  {{"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
    "ipam": {{"type": "host-local", "ranges": [[{{"subnet": "{POD_CIDR}"}}]], "routes": [{{"dst": "0.0.0.0/0"}}]}}}},
  {{"type": "portmap", "capabilities": {{"portMappings": true}}}}
]}}
"#
    )
}
