//! The test bed's real node: it starts (kubelet, kube-proxy, kube-scheduler, containerd and a
//! local registry inside namespaces of its own), runs a pod from an image built here with the
//! restricted security context, serves the `kubernetes` Service to that pod through kube-proxy,
//! reports the pod's stats, and leaves nothing on the host when it stops.

use modelstudio_testbed::{Node, NodeError, NodeTools};
use std::collections::BTreeMap;
use std::time::Duration;

/// CI (`CI=true`) never skips: a node that cannot start fails the test.
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The node, or None (with the reason) when its tools are missing on a developer's machine.
fn start_node() -> Option<Node> {
    match Node::start_blocking() {
        Ok(node) => Some(node),
        Err(e @ NodeError::Tools(_)) if !in_ci() => {
            eprintln!(
                "SKIPPED: the node's tools are missing ({e}); scripts/test.sh installs and builds \
                 them (apt-get install runc containernetworking-plugins iptables conntrack; \
                 scripts/build-testbed.sh node|containerd|registry)"
            );
            None
        }
        Err(e) => panic!("the node did not start: {e}"),
    }
}

/// What the node must leave as it found it on the host: links, global sysctls, the host's
/// iptables rules, mounts.
#[derive(Debug, PartialEq, Eq)]
struct HostState {
    links: Vec<String>,
    sysctls: BTreeMap<String, String>,
    iptables: String,
    mounts: usize,
}

const HOST_SYSCTLS: [&str; 11] = [
    "/proc/sys/kernel/panic",
    "/proc/sys/kernel/panic_on_oops",
    "/proc/sys/vm/overcommit_memory",
    "/proc/sys/vm/panic_on_oom",
    "/proc/sys/kernel/keys/root_maxkeys",
    "/proc/sys/kernel/keys/root_maxbytes",
    "/proc/sys/net/ipv4/ip_forward",
    "/proc/sys/net/ipv4/conf/all/route_localnet",
    "/proc/sys/net/bridge/bridge-nf-call-iptables",
    "/proc/sys/net/netfilter/nf_conntrack_max",
    "/sys/module/nf_conntrack/parameters/hashsize",
];

impl HostState {
    fn read() -> Self {
        let run = |program: &str, args: &[&str]| {
            std::process::Command::new(program)
                .args(args)
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default()
        };
        let links = run("ip", &["-o", "link", "show"])
            .lines()
            .filter_map(|l| l.split(':').nth(1).map(|n| n.trim().to_string()))
            .collect();
        let sysctls = HOST_SYSCTLS
            .iter()
            .map(|p| {
                let value = std::fs::read_to_string(p).unwrap_or_else(|_| "absent".into());
                (p.to_string(), value.trim().to_string())
            })
            .collect();
        let iptables = run("iptables-save", &[])
            .lines()
            .filter(|l| !l.starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n");
        let mounts = std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .count();
        HostState {
            links,
            sysctls,
            iptables,
            mounts,
        }
    }
}

/// A pod that Pod Security's restricted level admits: non-root, read-only root filesystem, no
/// capabilities, RuntimeDefault seccomp, no privilege escalation.
fn restricted_pod(image: &str) -> String {
    format!(
        "apiVersion: v1
kind: Pod
metadata: {{name: probe, namespace: restricted}}
spec:
  securityContext:
    runAsNonRoot: true
    runAsUser: 65532
    runAsGroup: 65532
    seccompProfile: {{type: RuntimeDefault}}
  containers:
  - name: pause
    image: {image}
    securityContext:
      readOnlyRootFilesystem: true
      allowPrivilegeEscalation: false
      capabilities: {{drop: [ALL]}}
"
    )
}

/// An OCI archive (a tar of an OCI image layout, as image builders write them) of the pause
/// image, pushed from the host through [`Node::push_oci_archive`]; the reference pods use.
fn push_an_oci_archive(node: &Node) -> String {
    let crane = NodeTools::find().expect("the node's tools").crane();
    let layout = node.dir().join("probe-layout");
    let pulled = std::process::Command::new(&crane)
        .args(["pull", "--insecure", "--format=oci"])
        .arg(format!("{}/testbed/pause:1", node.registry().host))
        .arg(&layout)
        .output()
        .expect("crane pull");
    assert!(pulled.status.success(), "{pulled:?}");
    let archive = node.dir().join("probe.oci.tar");
    let tar = std::process::Command::new("tar")
        .arg("-cf")
        .arg(&archive)
        .arg("-C")
        .arg(&layout)
        .arg(".")
        .output()
        .expect("tar");
    assert!(tar.status.success(), "{tar:?}");
    let reference = node
        .push_oci_archive(&archive, "testbed/probe:1")
        .expect("push the archive");
    assert_eq!(
        reference,
        format!("{}/testbed/probe:1", node.registry().in_cluster)
    );
    reference
}

/// PIDs of the processes whose network namespace is `net` (`net:[inode]`).
fn processes_in(net: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
                .filter(|pid| {
                    std::fs::read_link(format!("/proc/{pid}/ns/net"))
                        .is_ok_and(|l| l.display().to_string() == net)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `Name:\tvalue` of /proc/PID/status.
fn status_field(pid: u32, field: &str) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix(&format!("{field}:"))
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_default()
}

#[test]
fn runs_a_restricted_pod_and_leaves_nothing_on_the_host() {
    let before = HostState::read();
    let Some(node) = start_node() else { return };
    eprintln!("node started in {:?}", node.started_in());
    let kubectl = node.kubectl();

    // A kube client on the host reaches the node's API server through the relay.
    let version = modelstudio_testbed::test_runtime().block_on(async {
        let client = node.client("default").await.expect("a client");
        client.apiserver_version().await.expect("/version")
    });
    assert_eq!(version.git_version, "v1.37.2");

    kubectl.run(&["create", "namespace", "restricted"]);
    kubectl.run(&[
        "label",
        "namespace",
        "restricted",
        "pod-security.kubernetes.io/enforce=restricted",
    ]);
    let image = push_an_oci_archive(&node);
    let manifest = node.dir().join("probe.yaml");
    std::fs::write(&manifest, restricted_pod(&image)).expect("write the pod");
    let created = std::time::Instant::now();
    kubectl.run(&["apply", "-f", &manifest.display().to_string()]);
    kubectl.run(&[
        "wait",
        "-n",
        "restricted",
        "--for=condition=Ready",
        "pod/probe",
        "--timeout=90s",
    ]);
    eprintln!("pod Ready {:?} after its creation", created.elapsed());

    // Every process of the pod runs as the restricted context says.
    let pids = node
        .pod_processes("restricted", "probe")
        .expect("the pod's processes");
    assert!(
        !pids.is_empty(),
        "no process of the pod in the node's cgroups"
    );
    let container: Vec<u32> = pids
        .iter()
        .copied()
        .filter(|&pid| status_field(pid, "Uid").starts_with("65532"))
        .collect();
    assert!(!container.is_empty(), "no process runs as 65532: {pids:?}");
    for pid in container {
        assert_eq!(status_field(pid, "CapEff"), "0000000000000000", "pid {pid}");
        assert_eq!(status_field(pid, "NoNewPrivs"), "1", "pid {pid}");
        assert_eq!(status_field(pid, "Seccomp"), "2", "pid {pid}");
    }

    // From the pod's network, the `kubernetes` Service (kube-proxy's rules) reaches the API
    // server, whose certificate names the Service's address.
    let url = format!("https://{}:443/version", node.kubernetes_service_ip());
    let ca = node.dir().join("ca.crt").display().to_string();
    let version = node
        .run_in_pod_network(
            "restricted",
            "probe",
            &["curl", "-sS", "--max-time", "10", "--cacert", &ca, &url],
            Duration::from_secs(20),
        )
        .expect("a process of the pod");
    assert!(
        version.ok() && version.stdout.contains("\"gitVersion\": \"v1.37.2\""),
        "{version:?}"
    );

    // kubelet's stats summary lists the pod.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let working_set = loop {
        let found = node
            .pod_working_set_bytes("restricted", "probe")
            .expect("the stats summary");
        if let Some(bytes) = found.filter(|b| *b > 0) {
            break bytes;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no working set for the pod in the stats summary: {:?}",
            node.stats_summary()
        );
        std::thread::sleep(Duration::from_secs(1));
    };
    eprintln!("the pod's working set: {working_set} bytes");

    kubectl.run(&[
        "delete",
        "pod",
        "probe",
        "-n",
        "restricted",
        "--timeout=60s",
    ]);

    let net = node.net_namespace().to_string();
    let cgroups = node.cgroup_folders();
    let dir = node.dir().to_path_buf();
    let teardown = node.stop();
    eprintln!("node torn down in {:?}", teardown.elapsed);
    assert!(teardown.processes_left.is_empty(), "{teardown:?}");
    assert!(teardown.cgroups_left.is_empty(), "{teardown:?}");
    assert!(!cgroups.is_empty());
    for folder in &cgroups {
        assert!(!folder.exists(), "{} is left", folder.display());
    }
    assert!(!dir.exists(), "{} is left", dir.display());
    assert!(!net.is_empty());
    assert_eq!(HostState::read(), before, "the host changed");
}

#[test]
fn a_failing_test_still_stops_its_node() {
    let Some(node) = start_node() else { return };
    let net = node.net_namespace().to_string();
    let cgroups = node.cgroup_folders();
    let dir = node.dir().to_path_buf();
    assert!(!processes_in(&net).is_empty());
    let failed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        let _node = node;
        panic!("a test fails while its node runs");
    }));
    assert!(failed.is_err());
    assert_eq!(processes_in(&net), Vec::<u32>::new(), "processes left");
    for folder in &cgroups {
        assert!(!folder.exists(), "{} is left", folder.display());
    }
    // A failed test's folder stays for its logs; this one is removed here.
    assert!(dir.is_dir());
    std::fs::remove_dir_all(&dir).expect("remove the node's folder");
}
