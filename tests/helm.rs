//! The Helm chart (charts/modelstudio-controller) with the real helm v4 (testbed/helm, built by
//! `go_tool`): strict lint, the schema refusing bad values with their path, the same RBAC,
//! hardening and CRD as deploy/, every rendering admitted by the real kube-apiserver's server-side
//! dry run without a warning (Pod Security `restricted` enforced), and an install and uninstall
//! on the real control plane (built by scripts/test.sh, named by MODELSTUDIO_TESTBED_BIN).

use modelstudio_testbed::{
    go_tool, install_crd, run_bounded, yaml_documents, Cluster, Kubectl, Output, TempDir,
};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const CHART: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/charts/modelstudio-controller");
const DEPLOY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy");
const CRD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/crds/modelimport.yaml");
/// Every CRD the chart's crds/ installs.
const CRD_NAMES: [&str; 2] = [
    "modelimports.modelstudio.io",
    "modeldeployments.modelstudio.io",
];
const FULL_VALUES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/helm/full-values.yaml"
);
const SERVICE_MONITOR_CRD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/helm/servicemonitor-crd.yaml"
);
/// deploy/'s namespace and names: the release "modelstudio-controller" gives the same.
const NS: &str = "modelstudio-system";
const RELEASE: &str = "modelstudio-controller";
const SERVICE_MONITOR_API: &str = "monitoring.coreos.com/v1/ServiceMonitor";
/// Longest one helm command may take (an install against a loaded 2-core machine included).
const HELM_LIMIT: Duration = Duration::from_secs(120);

/// The helm binary of testbed/helm, built once per test process (and cached across runs).
fn helm_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        go_tool("helm", "helm").unwrap_or_else(|e| panic!("the real helm is needed: {e}"))
    })
}

/// helm with its own config, cache and data folders (never the user's), bounded in time.
struct Helm {
    home: TempDir,
    kubeconfig: Option<PathBuf>,
}

impl Helm {
    fn new(name: &str) -> Self {
        Helm {
            home: TempDir::new(name),
            kubeconfig: None,
        }
    }

    fn on_cluster(name: &str, kubeconfig: &Path) -> Self {
        Helm {
            home: TempDir::new(name),
            kubeconfig: Some(kubeconfig.to_path_buf()),
        }
    }

    fn try_run(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(helm_bin());
        cmd.args(args)
            .env("HELM_CONFIG_HOME", self.home.0.join("config"))
            .env("HELM_CACHE_HOME", self.home.0.join("cache"))
            .env("HELM_DATA_HOME", self.home.0.join("data"))
            .env_remove("HELM_NAMESPACE")
            .env_remove("HELM_KUBECONTEXT")
            .env_remove("HTTPS_PROXY")
            .env_remove("HTTP_PROXY")
            .env_remove("https_proxy")
            .env_remove("http_proxy");
        match &self.kubeconfig {
            Some(path) => cmd.env("KUBECONFIG", path),
            // No cluster: a command that would reach one fails instead of finding a stray one.
            None => cmd.env("KUBECONFIG", self.home.0.join("no-cluster")),
        };
        run_bounded(cmd, HELM_LIMIT)
    }

    /// Runs helm, which must succeed; returns stdout.
    fn run(&self, args: &[&str]) -> String {
        let out = self.try_run(args);
        assert!(
            out.ok(),
            "helm {} failed:\n{}\n{}",
            args.join(" "),
            out.stdout,
            out.stderr
        );
        out.stdout
    }

    /// `helm template` of the chart as release "modelstudio-controller" in deploy/'s namespace,
    /// with `extra` (values files, --set, --api-versions); the rendered text.
    fn template_text(&self, extra: &[&str]) -> String {
        let mut args = vec!["template", RELEASE, CHART, "--namespace", NS];
        args.extend_from_slice(extra);
        self.run(&args)
    }

    fn template(&self, extra: &[&str]) -> Vec<Value> {
        yaml_documents(&self.template_text(extra))
    }
}

fn kustomize_rendering() -> Vec<Value> {
    modelstudio_testbed::kustomize(Path::new(DEPLOY))
}

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

fn one<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    let found = of_kind(docs, kind);
    assert_eq!(found.len(), 1, "one {kind} expected, found {}", found.len());
    found[0]
}

fn kinds(docs: &[Value]) -> BTreeSet<String> {
    docs.iter()
        .map(|d| d["kind"].as_str().unwrap_or("?").to_string())
        .collect()
}

/// The container's environment as (name, value); a valueFrom shows as its JSON.
fn env_of(deployment: &Value) -> Vec<(String, String)> {
    deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .expect("the container has an env")
        .iter()
        .map(|e| {
            let value = match e.get("value") {
                Some(Value::String(s)) => s.clone(),
                _ => e["valueFrom"].to_string(),
            };
            (e["name"].as_str().unwrap().to_string(), value)
        })
        .collect()
}

fn env_value(deployment: &Value, name: &str) -> Option<String> {
    env_of(deployment)
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
}

/// (Role kind, apiGroup, resource, verb): what the Roles and ClusterRoles of a rendering grant.
fn grants(docs: &[Value]) -> BTreeSet<(String, String, String, String)> {
    let mut set = BTreeSet::new();
    for role in docs
        .iter()
        .filter(|d| d["kind"] == "ClusterRole" || d["kind"] == "Role")
    {
        let kind = role["kind"].as_str().unwrap().to_string();
        for rule in role["rules"].as_array().expect("a role has rules") {
            assert!(
                rule.get("resourceNames").is_none() && rule.get("nonResourceURLs").is_none(),
                "this comparison is of whole resources; extend it for {rule}"
            );
            let list = |field: &str| -> Vec<String> {
                rule[field]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|v| v.as_str().unwrap().to_string())
                    .collect()
            };
            for group in list("apiGroups") {
                for resource in list("resources") {
                    for verb in list("verbs") {
                        set.insert((kind.clone(), group.clone(), resource.clone(), verb));
                    }
                }
            }
        }
    }
    set
}

#[test]
fn chart_crds_are_the_repository_crds() {
    // The same files, byte for byte: each generated from the Rust types (tests/crd.rs).
    let names = |dir: &str| -> BTreeSet<String> {
        std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{dir}: {e}"))
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    };
    let repository_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/crds");
    let expected: BTreeSet<String> = modelstudio_controller::crd::Kind::ALL
        .iter()
        .map(|k| k.file_name().to_string())
        .collect();
    assert_eq!(
        names(repository_dir),
        expected,
        "crds/ holds one file per CRD"
    );
    assert_eq!(
        names(&format!("{CHART}/crds")),
        expected,
        "the chart's crds/ holds the same files as crds/: run `cp crds/*.yaml \
         charts/modelstudio-controller/crds/`"
    );
    for name in &expected {
        let chart = std::fs::read_to_string(format!("{CHART}/crds/{name}"))
            .expect("the chart carries the CRD in crds/");
        let repository = std::fs::read_to_string(format!("{repository_dir}/{name}")).unwrap();
        assert!(
            chart == repository,
            "charts/modelstudio-controller/crds/{name} differs from crds/{name} (generated from \
             the Rust types): run `cp crds/{name} charts/modelstudio-controller/crds/`"
        );
    }
}

#[test]
fn chart_app_version_is_the_crate_version() {
    let chart: Value = serde_saphyr::from_str(
        &std::fs::read_to_string(format!("{CHART}/Chart.yaml")).expect("Chart.yaml"),
    )
    .expect("Chart.yaml is YAML");
    assert_eq!(chart["apiVersion"], "v2");
    assert_eq!(
        chart["appVersion"],
        env!("CARGO_PKG_VERSION"),
        "Chart.yaml's appVersion must be the crate's version (the default image tag)"
    );
    // The default image is the controller of this version.
    let docs = Helm::new("helm-version").template(&[]);
    let image = one(&docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        image.ends_with(&format!(":{}", env!("CARGO_PKG_VERSION"))),
        "{image}"
    );
}

#[test]
fn lint_is_clean_with_the_default_and_a_full_set_of_values() {
    let helm = Helm::new("helm-lint");
    let out = helm.run(&["lint", "--strict", CHART]);
    assert!(
        out.contains("1 chart(s) linted, 0 chart(s) failed"),
        "{out}"
    );
    // Lint renders without a cluster: the ServiceMonitor's CRD is not known to be served.
    let out = helm.run(&[
        "lint",
        "--strict",
        CHART,
        "--values",
        FULL_VALUES,
        "--set",
        "serviceMonitor.enabled=false",
    ]);
    assert!(
        out.contains("1 chart(s) linted, 0 chart(s) failed"),
        "{out}"
    );
    // Strict lint can fail: a value of the wrong type is an error.
    let out = helm.try_run(&["lint", "--strict", CHART, "--set", "replicas=two"]);
    assert!(!out.ok(), "lint must fail on a bad value:\n{}", out.stdout);
}

#[test]
fn bad_values_are_refused_with_a_clear_message() {
    let helm = Helm::new("helm-bad-values");
    // (what is set, words the error must hold)
    let cases: &[(&[&str], &[&str])] = &[
        (&["--set", "replicas=-1"], &["/replicas", "minimum"]),
        (&["--set", "replicas=two"], &["/replicas", "integer"]),
        (
            &["--set", "controller.pollInterval=soon"],
            &["/controller/pollInterval", "soon"],
        ),
        (
            &["--set", "controller.pollInterval=0s"],
            &["/controller/pollInterval"],
        ),
        (
            &["--set", "controller.logFormat=xml"],
            &["/controller/logFormat", "json", "text"],
        ),
        (
            &["--set", "controller.pollMode=sometimes"],
            &["/controller/pollMode", "listing", "per-job"],
        ),
        (&["--set", "controller.qps=0"], &["/controller/qps"]),
        (&["--set", "controller.burst=0"], &["/controller/burst"]),
        (
            &["--set", "modelStudio.endpoint=dashscope.aliyuncs.com"],
            &["/modelStudio/endpoint"],
        ),
        (
            &["--set", "image.pullPolicy=Sometimes"],
            &["/image/pullPolicy"],
        ),
        // A misspelt key is not silently ignored.
        (&["--set", "replica=3"], &["replica", "additional"]),
        (
            &["--set", "networkPolicy.enabled=true"],
            &["/networkPolicy/apiServer/cidrs", "minItems"],
        ),
        (
            &[
                "--set",
                "networkPolicy.enabled=true",
                "--set",
                "networkPolicy.apiServer.cidrs={10.0.0.1}",
            ],
            &["/networkPolicy/apiServer/cidrs/0"],
        ),
        // Checked by the templates: what the schema cannot say.
        (
            &["--set", "leaderElection.enabled=false"],
            &["leaderElection.enabled=true"],
        ),
        (
            &["--set", "replicas=1"],
            &["podDisruptionBudget.minAvailable", "replicas"],
        ),
        (
            &["--set", "podDisruptionBudget.maxUnavailable=1"],
            &["minAvailable or maxUnavailable, not both"],
        ),
        (
            &["--set", "serviceMonitor.enabled=true"],
            &["ServiceMonitor", "--api-versions"],
        ),
        (
            &[
                "--set",
                "serviceAccount.create=false",
                "--set",
                "rbac.create=false",
            ],
            &["serviceAccount.name"],
        ),
        // A default key says who may spend it, in one way only, and a grant needs a key.
        (
            &[
                "--set",
                "modelStudio.defaultCredentials.existingSecret=dashscope",
            ],
            &[
                "say which namespaces may use the default API key",
                "modelStudio.defaultCredentials.namespaceSelector",
                "modelStudio.defaultCredentials.allNamespaces=true",
            ],
        ),
        (
            &[
                "--set",
                "modelStudio.defaultCredentials.existingSecret=dashscope",
                "--set",
                "modelStudio.defaultCredentials.allNamespaces=true",
                "--set",
                "modelStudio.defaultCredentials.namespaceSelector=team=ml",
            ],
            &["namespaceSelector or allNamespaces, not both"],
        ),
        (
            &["--set", "modelStudio.defaultCredentials.allNamespaces=true"],
            &["existingSecret is empty", "no default key to grant"],
        ),
    ];
    for (set, words) in cases {
        let mut args = vec!["template", RELEASE, CHART, "--namespace", NS];
        args.extend_from_slice(set);
        let out = helm.try_run(&args);
        assert!(
            !out.ok(),
            "helm template {set:?} must be refused; it rendered:\n{}",
            out.stdout
        );
        for word in *words {
            assert!(
                out.stderr.contains(word),
                "helm template {set:?}: the error should say {word:?}:\n{}",
                out.stderr
            );
        }
    }
}

#[test]
fn kustomize_and_helm_grant_exactly_the_same_rbac() {
    let kustomize = grants(&kustomize_rendering());
    let helm = Helm::new("helm-rbac");
    let default = grants(&helm.template(&[]));
    assert!(!kustomize.is_empty());
    assert_eq!(
        default, kustomize,
        "the chart's Roles and ClusterRoles must grant what deploy/rbac.yaml grants"
    );
    // With every value changed too: nothing widens the grants.
    let full = grants(&helm.template(&[
        "--values",
        FULL_VALUES,
        "--api-versions",
        SERVICE_MONITOR_API,
    ]));
    assert_eq!(full, kustomize);
    // Without leader election the Lease role is left out, and nothing else changes.
    let single = grants(&helm.template(&[
        "--set",
        "leaderElection.enabled=false",
        "--set",
        "replicas=1",
        "--set",
        "podDisruptionBudget.enabled=false",
    ]));
    let without_lease: BTreeSet<_> = kustomize
        .iter()
        .filter(|(kind, ..)| kind != "Role")
        .cloned()
        .collect();
    assert_eq!(single, without_lease);
    // The bindings bind the chart's ServiceAccount in the release namespace.
    let docs = helm.template(&[]);
    for kind in ["ClusterRoleBinding", "RoleBinding"] {
        let binding = one(&docs, kind);
        assert_eq!(binding["subjects"][0]["kind"], "ServiceAccount");
        assert_eq!(binding["subjects"][0]["name"], RELEASE);
        assert_eq!(binding["subjects"][0]["namespace"], NS);
    }
}

#[test]
fn default_rendering_is_deploy_hardened_the_same() {
    let kustomize = kustomize_rendering();
    let helm = Helm::new("helm-hardening");
    let docs = helm.template(&["--set", "namespace.create=true"]);
    let (theirs, ours) = (one(&kustomize, "Deployment"), one(&docs, "Deployment"));
    let pod = |d: &Value| d["spec"]["template"]["spec"].clone();
    let container = |d: &Value| d["spec"]["template"]["spec"]["containers"][0].clone();
    assert_eq!(ours["metadata"]["name"], theirs["metadata"]["name"]);
    assert_eq!(
        ours["metadata"]["namespace"],
        theirs["metadata"]["namespace"]
    );
    assert_eq!(ours["spec"]["replicas"], theirs["spec"]["replicas"]);
    for field in ["securityContext", "terminationGracePeriodSeconds"] {
        assert_eq!(pod(ours)[field], pod(theirs)[field], "pod {field}");
    }
    for field in [
        "securityContext",
        "livenessProbe",
        "readinessProbe",
        "resources",
        "ports",
        "args",
    ] {
        assert_eq!(
            container(ours)[field],
            container(theirs)[field],
            "container {field}"
        );
    }
    assert_eq!(
        pod(ours)["serviceAccountName"],
        pod(theirs)["serviceAccountName"]
    );
    // deploy/'s settings, each with the same value.
    for (name, value) in env_of(theirs) {
        assert_eq!(
            env_value(ours, &name).as_deref(),
            Some(value.as_str()),
            "env {name}"
        );
    }
    assert_eq!(
        ours["spec"]["template"]["metadata"]["annotations"],
        theirs["spec"]["template"]["metadata"]["annotations"]
    );
    // The namespace's Pod Security labels.
    let (theirs, ours) = (one(&kustomize, "Namespace"), one(&docs, "Namespace"));
    assert_eq!(ours["metadata"]["name"], NS);
    for (key, value) in theirs["metadata"]["labels"].as_object().unwrap() {
        if key.starts_with("pod-security.kubernetes.io/") {
            assert_eq!(&ours["metadata"]["labels"][key], value, "{key}");
        }
    }
    // Not asked for: no Namespace, Service, ServiceMonitor or NetworkPolicy by default.
    assert_eq!(
        kinds(&helm.template(&[])),
        [
            "ClusterRole",
            "ClusterRoleBinding",
            "Deployment",
            "PodDisruptionBudget",
            "Role",
            "RoleBinding",
            "ServiceAccount"
        ]
        .map(String::from)
        .into()
    );
}

#[test]
fn full_values_reach_the_controller_and_the_policies() {
    let helm = Helm::new("helm-full");
    let docs = helm.template(&[
        "--values",
        FULL_VALUES,
        "--api-versions",
        SERVICE_MONITOR_API,
    ]);
    let deployment = one(&docs, "Deployment");
    assert_eq!(deployment["metadata"]["name"], "msc");
    assert_eq!(deployment["spec"]["replicas"], 3);
    // Every flag of `modelstudio-controller run` (src/cli.rs) the values set.
    for (name, value) in [
        ("MODELSTUDIO_ENDPOINT", "https://dashscope.aliyuncs.com"),
        (
            "MODELSTUDIO_REGION_ENDPOINTS",
            "ap-southeast-1=https://dashscope-intl.aliyuncs.com,eu-central-1=https://{workspace}.eu-central-1.maas.aliyuncs.com",
        ),
        ("MODELSTUDIO_NAMESPACE", "ml-team"),
        ("MODELSTUDIO_SELECTOR", "shard in (a,b)"),
        ("MODELSTUDIO_CONCURRENCY", "16"),
        ("MODELSTUDIO_POLL_INTERVAL", "1m"),
        ("MODELSTUDIO_POLL_MODE", "per-job"),
        ("MODELSTUDIO_RESYNC_INTERVAL", "0s"),
        ("MODELSTUDIO_REQUEST_TIMEOUT", "10s"),
        ("MODELSTUDIO_BACKOFF_BASE", "500ms"),
        ("MODELSTUDIO_BACKOFF_MAX", "2m"),
        ("MODELSTUDIO_QPS", "2.5"),
        ("MODELSTUDIO_BURST", "4"),
        ("MODELSTUDIO_SHUTDOWN_TIMEOUT", "15s"),
        ("MODELSTUDIO_LEADER_ELECTION", "true"),
        ("MODELSTUDIO_LEASE_NAME", "msc-leader"),
        ("MODELSTUDIO_LOG_FORMAT", "text"),
        ("RUST_LOG", "modelstudio_controller=debug,info"),
        ("MODELSTUDIO_METRICS_ADDR", "0.0.0.0:9090"),
        (
            "MODELSTUDIO_API_KEY_FILE",
            "/etc/modelstudio/credentials/api-key",
        ),
        (
            "MODELSTUDIO_DEFAULT_KEY_NAMESPACE_SELECTOR",
            "modelstudio.io/default-key=granted",
        ),
    ] {
        assert_eq!(
            env_value(deployment, name).as_deref(),
            Some(value),
            "env {name}"
        );
    }
    // The default key is a file from the Secret, never a value in the pod spec.
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(
        pod["volumes"][0]["secret"]["secretName"],
        "dashscope-default"
    );
    assert_eq!(pod["volumes"][0]["secret"]["items"][0]["key"], "key");
    assert!(env_value(deployment, "DASHSCOPE_API_KEY").is_none());
    assert_eq!(pod["serviceAccountName"], "msc-runner");
    assert_eq!(pod["containers"][0]["ports"][0]["containerPort"], 9090);

    let pdb = one(&docs, "PodDisruptionBudget");
    assert_eq!(pdb["spec"]["maxUnavailable"], 1);
    assert!(pdb["spec"].get("minAvailable").is_none());

    let monitor = one(&docs, "ServiceMonitor");
    let service = one(&docs, "Service");
    for (key, value) in monitor["spec"]["selector"]["matchLabels"]
        .as_object()
        .unwrap()
    {
        assert_eq!(
            &service["metadata"]["labels"][key], value,
            "the ServiceMonitor selects the metrics Service ({key})"
        );
    }
    assert_eq!(monitor["spec"]["endpoints"][0]["port"], "metrics");
    assert_eq!(monitor["metadata"]["labels"]["release"], "prometheus");

    // Egress: the API server's addresses and ports, DNS, Model Studio's CIDRs on 443; ingress:
    // the metrics port only.
    let policy = one(&docs, "NetworkPolicy");
    let spec = &policy["spec"];
    assert_eq!(
        spec["policyTypes"],
        serde_json::json!(["Ingress", "Egress"])
    );
    let ingress = spec["ingress"].as_array().unwrap();
    assert_eq!(ingress.len(), 1);
    assert_eq!(
        ingress[0]["ports"],
        serde_json::json!([{"protocol": "TCP", "port": 9090}])
    );
    let egress = spec["egress"].as_array().unwrap();
    let cidrs = |rule: &Value| -> Vec<String> {
        rule["to"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["ipBlock"]["cidr"].as_str().map(String::from))
            .collect()
    };
    let ports = |rule: &Value| -> Vec<(String, u64)> {
        rule["ports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["protocol"].as_str().unwrap().to_string(),
                    p["port"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(egress.len(), 3, "API server, DNS, Model Studio: {egress:?}");
    assert_eq!(cidrs(&egress[0]), ["10.0.0.1/32", "192.0.2.10/32"]);
    assert_eq!(
        ports(&egress[0]),
        [("TCP".into(), 443), ("TCP".into(), 6443)]
    );
    assert_eq!(
        egress[1]["to"][0]["podSelector"]["matchLabels"]["k8s-app"],
        "kube-dns"
    );
    assert_eq!(ports(&egress[1]), [("UDP".into(), 53), ("TCP".into(), 53)]);
    assert_eq!(cidrs(&egress[2]), ["203.0.113.0/24"]);
    assert_eq!(ports(&egress[2]), [("TCP".into(), 443)]);
}

/// The controller's environment as the chart renders it for a pod (the downward API's fields
/// filled in), on loopback only: the metrics address on a free port of 127.0.0.1, the endpoint a
/// closed local port, and the default key's file (mounted from a Secret in a pod) a local file.
fn pod_environment(deployment: &Value, key_file: &Path) -> Vec<(String, String)> {
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    let free = modelstudio_testbed::free_port().expect("a free port");
    container["env"]
        .as_array()
        .expect("an env")
        .iter()
        .map(|e| {
            let name = e["name"].as_str().unwrap().to_string();
            let value = match (name.as_str(), e["value"].as_str()) {
                ("MODELSTUDIO_METRICS_ADDR", _) => format!("127.0.0.1:{free}"),
                ("MODELSTUDIO_ENDPOINT", _) => format!("http://127.0.0.1:{free}"),
                ("MODELSTUDIO_API_KEY_FILE", _) => key_file.display().to_string(),
                (_, Some(v)) => v.to_string(),
                (_, None) => match e["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
                    Some("metadata.name") => "modelstudio-controller-helm-test".to_string(),
                    Some("metadata.namespace") => NS.to_string(),
                    other => panic!("{name}: a value from {other:?} this test cannot give"),
                },
            };
            (name, value)
        })
        .collect()
}

/// Runs `modelstudio-controller run` with only `env` (and the kubeconfig); returns its output.
fn run_controller(env: &[(String, String)], kubeconfig: &Path) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_modelstudio-controller"));
    cmd.arg("run")
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("KUBECONFIG", kubeconfig);
    run_bounded(cmd, Duration::from_secs(60))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_accepts_every_setting_the_chart_renders() {
    let dir = TempDir::new("helm-settings");
    let cluster = Cluster::start().await.expect("an API server starts");
    let kubeconfig = dir.0.join("kubeconfig");
    cluster.write_kubeconfig(&kubeconfig, "default").unwrap();
    let key_file = dir.0.join("api-key");
    std::fs::write(&key_file, "sk-helm-settings-test\n").unwrap();
    let helm = Helm::new("helm-settings-render");
    // No CRD in this cluster: a controller whose settings all parse and pass their checks goes
    // on to its first call and stops there, naming the CRD; a refused setting stops it before.
    let crd_missing = "CustomResourceDefinition (modelimports.modelstudio.io) is not installed";
    for (what, extra) in [
        ("default values", vec![]),
        (
            "every value set",
            vec![
                "--values",
                FULL_VALUES,
                "--api-versions",
                SERVICE_MONITOR_API,
            ],
        ),
        (
            "one replica without leader election",
            vec![
                "--set",
                "replicas=1",
                "--set",
                "leaderElection.enabled=false",
                "--set",
                "podDisruptionBudget.enabled=false",
            ],
        ),
    ] {
        let docs = helm.template(&extra);
        let env = pod_environment(one(&docs, "Deployment"), &key_file);
        let out = run_controller(&env, &kubeconfig);
        assert!(
            !out.ok() && out.stderr.contains(crd_missing),
            "{what}: the controller should accept every setting and stop only at the missing \
             CRD; it said:\n{}\n{}",
            out.stdout,
            out.stderr
        );
    }
    // A control: a setting the controller refuses stops it before, with the flag's name.
    let docs = helm.template(&[]);
    let mut env = pod_environment(one(&docs, "Deployment"), &key_file);
    env.push(("MODELSTUDIO_POLL_MODE".into(), "sometimes".into()));
    env.retain(|(k, v)| k != "MODELSTUDIO_POLL_MODE" || v == "sometimes");
    let out = run_controller(&env, &kubeconfig);
    assert!(
        !out.ok() && !out.stderr.contains(crd_missing) && out.stderr.contains("--poll-mode"),
        "a refused setting must stop the controller before it calls the API server:\n{}",
        out.stderr
    );
}

/// Writes the cluster's admin kubeconfig readable by its owner only (helm warns otherwise).
fn write_private_kubeconfig(cluster: &Cluster, path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    cluster.write_kubeconfig(path, "default").unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// The real control plane with an admin kubeconfig (owner-only) and kubectl on it, and the
/// namespace [`NS`] made as docs/helm.md makes it.
async fn restricted_cluster(name: &str) -> (TempDir, Cluster, PathBuf, Kubectl) {
    let dir = TempDir::new(name);
    let cluster = Cluster::start_real()
        .await
        .expect("the control plane starts");
    let kubeconfig = dir.0.join("kubeconfig");
    write_private_kubeconfig(&cluster, &kubeconfig);
    let kubectl = Kubectl::new(kubeconfig.clone(), &dir.0);
    create_restricted_namespace(&kubectl, NS);
    (dir, cluster, kubeconfig, kubectl)
}

/// Creates `namespace` with deploy/namespace.yaml's Pod Security labels, as docs/helm.md does.
fn create_restricted_namespace(kubectl: &Kubectl, namespace: &str) {
    // --save-config, as `kubectl apply` expects of an object it did not create.
    kubectl.run(&["create", "namespace", namespace, "--save-config"]);
    let mut args = vec!["label", "namespace", namespace, "--overwrite"];
    let labels: Vec<String> = ["enforce", "warn", "audit"]
        .iter()
        .flat_map(|mode| {
            [
                format!("pod-security.kubernetes.io/{mode}=restricted"),
                format!("pod-security.kubernetes.io/{mode}-version=latest"),
            ]
        })
        .collect();
    args.extend(labels.iter().map(String::as_str));
    kubectl.run(&args);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rendering_passes_a_server_dry_run_without_a_warning() {
    let t0 = Instant::now();
    let (dir, cluster, _, kubectl) = restricted_cluster("helm-dry-run").await;
    let client = cluster.client("default").await.unwrap();
    install_crd(&client, Path::new(SERVICE_MONITOR_CRD))
        .await
        .expect("the ServiceMonitor CRD fixture installs");

    let helm = Helm::new("helm-dry-run-renders");
    let sets: &[(&str, &[&str])] = &[
        ("default values", &[]),
        (
            "every value set",
            &[
                "--values",
                FULL_VALUES,
                "--api-versions",
                SERVICE_MONITOR_API,
            ],
        ),
        (
            "the namespace, a default key and a NetworkPolicy",
            &[
                "--set",
                "namespace.create=true",
                "--set",
                "modelStudio.defaultCredentials.existingSecret=dashscope",
                "--set",
                "modelStudio.defaultCredentials.allNamespaces=true",
                "--set",
                "networkPolicy.enabled=true",
                "--set",
                "networkPolicy.apiServer.cidrs={10.0.0.1/32}",
                "--set",
                "metrics.service.enabled=true",
            ],
        ),
        (
            "one replica without leader election",
            &[
                "--set",
                "replicas=1",
                "--set",
                "leaderElection.enabled=false",
                "--set",
                "podDisruptionBudget.enabled=false",
                "--set",
                "controller.logFormat=text",
            ],
        ),
        (
            "a ServiceMonitor with the defaults",
            &[
                "--set",
                "serviceMonitor.enabled=true",
                "--api-versions",
                SERVICE_MONITOR_API,
            ],
        ),
    ];
    for (what, extra) in sets {
        let text = helm.template_text(extra);
        let file = dir.0.join("rendered.yaml");
        std::fs::write(&file, &text).unwrap();
        let file = file.display().to_string();
        // kubectl's default --validate=strict: the server refuses an unknown or misplaced field.
        let out = kubectl.try_run(&["apply", "--dry-run=server", "-f", &file]);
        assert!(
            out.ok(),
            "{what}: the API server refused the rendering:\n{}\n{}",
            out.stdout,
            out.stderr
        );
        assert!(
            !out.stderr.to_lowercase().contains("warning"),
            "{what}: the API server warned:\n{}",
            out.stderr
        );
        let objects = yaml_documents(&text).len();
        let applied = out
            .stdout
            .lines()
            .filter(|l| l.contains("(server dry run)"));
        assert_eq!(
            applied.count(),
            objects,
            "{what}: every object went through the dry run:\n{}",
            out.stdout
        );
    }

    // A control, so that the check above can fail: Pod Security `restricted` warns about a
    // rendering that runs as root.
    let text = helm.template_text(&["--set", "podSecurityContext.runAsNonRoot=false"]);
    let file = dir.0.join("root.yaml");
    std::fs::write(&file, text).unwrap();
    let out = kubectl.try_run(&[
        "apply",
        "--dry-run=server",
        "-f",
        &file.display().to_string(),
    ]);
    assert!(
        out.stderr
            .contains("would violate PodSecurity \"restricted:latest\""),
        "a pod that may run as root must be warned about:\n{}\n{}",
        out.stdout,
        out.stderr
    );
    println!("dry runs took {:?}", t0.elapsed());
}

/// `kubectl get` of one object as JSON; None when it is not found.
fn get_object(kubectl: &Kubectl, kind: &str, name: &str, namespace: Option<&str>) -> Option<Value> {
    let mut args = vec!["get", kind, name, "-o", "json"];
    if let Some(ns) = namespace {
        args.extend(["-n", ns]);
    }
    let out = kubectl.try_run(&args);
    if out.ok() {
        return Some(serde_json::from_str(&out.stdout).expect("kubectl prints JSON"));
    }
    assert!(
        out.stderr.contains("NotFound") || out.stderr.contains("not found"),
        "kubectl get {kind} {name}: {}",
        out.stderr
    );
    None
}

/// True when `stored` holds everything `want` says: the API server adds defaults (a probe's
/// timeoutSeconds, a fieldRef's apiVersion), never takes a field away.
fn holds(stored: &Value, want: &Value) -> bool {
    match (stored, want) {
        (Value::Object(s), Value::Object(w)) => w
            .iter()
            .all(|(k, v)| s.get(k).is_some_and(|sv| holds(sv, v))),
        (Value::Array(s), Value::Array(w)) => {
            s.len() == w.len() && s.iter().zip(w).all(|(sv, wv)| holds(sv, wv))
        }
        _ => stored == want,
    }
}

/// (kind, name, namespace) of every object of a rendering; cluster-scoped ones have none.
fn identities(docs: &[Value]) -> Vec<(String, String, Option<String>)> {
    docs.iter()
        .map(|d| {
            (
                d["kind"].as_str().unwrap().to_string(),
                d["metadata"]["name"].as_str().unwrap().to_string(),
                d["metadata"]["namespace"].as_str().map(String::from),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_and_uninstall_on_the_real_control_plane() {
    let t0 = Instant::now();
    // As docs/helm.md says: the namespace first, labelled, then the release.
    // The cluster lives to the end of the test (dropping it stops the control plane).
    let (dir, _cluster, kubeconfig, kubectl) = restricted_cluster("helm-install").await;
    let helm = Helm::on_cluster("helm-install-home", &kubeconfig);
    let values = [
        "--set",
        "modelStudio.defaultCredentials.existingSecret=dashscope",
        "--set",
        "modelStudio.defaultCredentials.allNamespaces=true",
    ];
    let mut args = vec!["install", RELEASE, CHART, "--namespace", NS];
    args.extend_from_slice(&values);
    let out = helm.try_run(&args);
    assert!(
        out.ok(),
        "helm install failed:\n{}\n{}",
        out.stdout,
        out.stderr
    );
    assert!(
        !out.stderr.to_lowercase().contains("warning"),
        "helm install warned:\n{}",
        out.stderr
    );

    // The CRDs came from the chart's crds/ and are served.
    for name in CRD_NAMES {
        let crd = get_object(&kubectl, "crd", name, None)
            .unwrap_or_else(|| panic!("helm install created {name} from crds/"));
        let established = crd["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Established" && c["status"] == "True");
        assert!(established, "{name}: {}", crd["status"]);
    }

    // Every object the release rendered exists, is Helm's, and reads back as rendered.
    let manifest = yaml_documents(&helm.run(&["get", "manifest", RELEASE, "--namespace", NS]));
    let rendered = helm.template(&values);
    let set = |docs: &[Value]| identities(docs).into_iter().collect::<BTreeSet<_>>();
    assert_eq!(set(&manifest), set(&rendered));
    assert_eq!(
        kinds(&manifest),
        [
            "ClusterRole",
            "ClusterRoleBinding",
            "Deployment",
            "PodDisruptionBudget",
            "Role",
            "RoleBinding",
            "ServiceAccount"
        ]
        .map(String::from)
        .into()
    );
    for (kind, name, namespace) in identities(&manifest) {
        let stored = get_object(&kubectl, &kind, &name, namespace.as_deref())
            .unwrap_or_else(|| panic!("{kind} {name} was not created"));
        assert_eq!(
            stored["metadata"]["annotations"]["meta.helm.sh/release-name"], RELEASE,
            "{kind} {name}"
        );
        assert_eq!(
            stored["metadata"]["labels"]["app.kubernetes.io/managed-by"], "Helm",
            "{kind} {name}"
        );
    }
    let stored = get_object(&kubectl, "deployment", RELEASE, Some(NS)).unwrap();
    let want = one(&rendered, "Deployment");
    let container = |d: &Value| d["spec"]["template"]["spec"]["containers"][0].clone();
    for field in [
        "image",
        "env",
        "securityContext",
        "livenessProbe",
        "readinessProbe",
        "resources",
    ] {
        assert!(
            holds(&container(&stored)[field], &container(want)[field]),
            "the stored Deployment's {field}: {} is not what was rendered: {}",
            container(&stored)[field],
            container(want)[field]
        );
    }
    assert_eq!(
        stored["spec"]["template"]["spec"]["volumes"][0]["secret"]["secretName"],
        "dashscope"
    );
    let stored_rbac: Vec<Value> = [("clusterrole", None), ("role", Some(NS))]
        .iter()
        .map(|(kind, ns)| {
            let name = if *kind == "role" {
                format!("{RELEASE}-leader-election")
            } else {
                RELEASE.to_string()
            };
            get_object(&kubectl, kind, &name, *ns).unwrap()
        })
        .collect();
    assert_eq!(grants(&stored_rbac), grants(&kustomize_rendering()));
    let status: Value =
        serde_json::from_str(&helm.run(&["status", RELEASE, "--namespace", NS, "-o", "json"]))
            .unwrap();
    assert_eq!(status["info"]["status"], "deployed");

    // The upgrade path of docs/helm.md: the new CRD by server-side apply, then helm upgrade.
    // helm created the CRD by server-side apply too, so a changed field conflicts with "helm"
    // unless --force-conflicts takes it over (helm never writes the CRD again).
    let crds = format!("{CHART}/crds/");
    let changed = std::fs::read_to_string(CRD)
        .unwrap()
        .replace("not the bucket root", "never the bucket root");
    assert!(changed.contains("never the bucket root"));
    let changed_file = dir.0.join("modelimport-next.yaml");
    std::fs::write(&changed_file, changed).unwrap();
    let changed_file = changed_file.display().to_string();
    let refused = kubectl.fail(&["apply", "--server-side", "-f", &changed_file]);
    assert!(refused.contains("conflict with \"helm\""), "{refused}");
    kubectl.run(&[
        "apply",
        "--server-side",
        "--force-conflicts",
        "-f",
        &changed_file,
    ]);
    kubectl.run(&["apply", "--server-side", "--force-conflicts", "-f", &crds]);
    // `helm upgrade --reuse-values` of the release with `sets`.
    let upgrade = |sets: &[&str]| {
        let mut args = vec![
            "upgrade",
            RELEASE,
            CHART,
            "--namespace",
            NS,
            "--reuse-values",
        ];
        args.extend_from_slice(sets);
        helm.try_run(&args)
    };
    let out = upgrade(&["--set", "controller.pollInterval=1m"]);
    assert!(out.ok(), "helm upgrade failed:\n{}", out.stderr);
    let stored = get_object(&kubectl, "deployment", RELEASE, Some(NS)).unwrap();
    assert_eq!(
        env_value(&stored, "MODELSTUDIO_POLL_INTERVAL").as_deref(),
        Some("1m")
    );
    assert_eq!(
        env_value(&stored, "MODELSTUDIO_API_KEY_FILE").as_deref(),
        Some("/etc/modelstudio/credentials/api-key"),
        "--reuse-values kept the default key"
    );

    // The upgrade path of docs/helm.md for an installation with a default key: an upgrade that
    // does not say who may use it (as an installation from before the grant has none) is
    // refused, saying what to set, and leaves the release as it was; saying it upgrades.
    let revision = |helm: &Helm| -> Value {
        serde_json::from_str::<Value>(&helm.run(&[
            "status",
            RELEASE,
            "--namespace",
            NS,
            "-o",
            "json",
        ]))
        .unwrap()["version"]
            .clone()
    };
    let before = revision(&helm);
    let refused = upgrade(&[
        "--set",
        "modelStudio.defaultCredentials.allNamespaces=false",
    ]);
    assert!(!refused.ok(), "an upgrade without a grant was accepted");
    assert!(
        refused
            .stderr
            .contains("say which namespaces may use the default API key")
            && refused
                .stderr
                .contains("modelStudio.defaultCredentials.namespaceSelector"),
        "{}",
        refused.stderr
    );
    assert_eq!(
        revision(&helm),
        before,
        "the refused upgrade changed the release"
    );
    let stored = get_object(&kubectl, "deployment", RELEASE, Some(NS)).unwrap();
    assert_eq!(
        env_value(&stored, "MODELSTUDIO_DEFAULT_KEY_ALL_NAMESPACES").as_deref(),
        Some("true")
    );
    let out = upgrade(&[
        "--set",
        "modelStudio.defaultCredentials.allNamespaces=false",
        "--set",
        "modelStudio.defaultCredentials.namespaceSelector=modelstudio.io/default-key=granted",
    ]);
    assert!(out.ok(), "helm upgrade failed:\n{}", out.stderr);
    let stored = get_object(&kubectl, "deployment", RELEASE, Some(NS)).unwrap();
    assert_eq!(
        env_value(&stored, "MODELSTUDIO_DEFAULT_KEY_NAMESPACE_SELECTOR").as_deref(),
        Some("modelstudio.io/default-key=granted")
    );
    assert_eq!(
        env_value(&stored, "MODELSTUDIO_DEFAULT_KEY_ALL_NAMESPACES"),
        None
    );

    // Uninstall: every object goes; the CRD stays (Helm never deletes CRDs).
    helm.run(&["uninstall", RELEASE, "--namespace", NS, "--wait"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    for (kind, name, namespace) in identities(&manifest) {
        while get_object(&kubectl, &kind, &name, namespace.as_deref()).is_some() {
            assert!(
                Instant::now() < deadline,
                "{kind} {name} is still there after helm uninstall"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
    for name in CRD_NAMES {
        assert!(get_object(&kubectl, "crd", name, None).is_some(), "{name}");
    }
    let releases = kubectl.run(&["get", "secrets", "-n", NS, "-l", "owner=helm", "-o", "name"]);
    assert!(
        releases.trim().is_empty(),
        "release records left: {releases}"
    );

    // The other way of docs/helm.md: helm makes the namespace and the chart labels it.
    let other_ns = "ml-controllers";
    helm.run(&[
        "install",
        "other",
        CHART,
        "--namespace",
        other_ns,
        "--create-namespace",
        "--set",
        "namespace.create=true",
    ]);
    let namespace = get_object(&kubectl, "namespace", other_ns, None).unwrap();
    for mode in ["enforce", "warn", "audit"] {
        let key = format!("pod-security.kubernetes.io/{mode}");
        assert_eq!(namespace["metadata"]["labels"][&key], "restricted", "{key}");
    }
    assert!(get_object(
        &kubectl,
        "deployment",
        "other-modelstudio-controller",
        Some(other_ns)
    )
    .is_some());
    // Its uninstall deletes the namespace too (the release's record goes with it).
    helm.run(&["uninstall", "other", "--namespace", other_ns]);
    let namespace = get_object(&kubectl, "namespace", other_ns, None);
    assert!(
        namespace.is_none_or(|ns| ns["metadata"]["deletionTimestamp"].is_string()),
        "the chart's namespace is being deleted"
    );
    println!("install, upgrade and uninstall took {:?}", t0.elapsed());
}
