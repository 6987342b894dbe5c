//! deploy/monitoring/ holds what an operator installs beside the controller: the alerts
//! (a PrometheusRule) and a Grafana dashboard. Every expression must be PromQL that Prometheus
//! parses, and name only metrics the controller exports (read from its registry's encoding, not
//! from a list kept by hand) with label values it writes; every alert says what happened and
//! where its runbook is.

use k8s_openapi::api::core::v1::Secret;
use kube::runtime::reflector::store::Writer;
use modelstudio_controller::crd::ModelImport;
use modelstudio_controller::metrics::{
    ApiLabels, DeletionLabels, KindLabels, KubeLabels, Metrics, QuotaLabels, ReconcileLabels,
};
use modelstudio_controller::modelstudio::Priority;
use modelstudio_core::import::reason::Code;
use modelstudio_core::import::resource::Phase;
use promql_parser::label::MatchOp;
use promql_parser::parser::{self, Expr, VectorSelector};
use promql_parser::util::{walk_expr, ExprVisitor};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The anchors of docs/troubleshooting.md that runbooks may point at.
const RUNBOOKS: [&str; 5] = [
    "why-is-my-deletion-blocked",
    "why-stalled",
    "why-throttled",
    "credentials-missing",
    "no-leader",
];

fn read(rel: &str) -> String {
    std::fs::read_to_string(Path::new(ROOT).join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The controller's metrics, each family with at least one sample, and the ModelImport gauges
/// of a (here empty) watch cache.
fn controller_metrics() -> Metrics {
    let metrics = Metrics::default();
    metrics
        .imports
        .watch(Writer::<ModelImport>::default().as_reader());
    metrics
        .secrets
        .watch(Writer::<Secret>::default().as_reader());
    let api = ApiLabels {
        operation: "create",
        result: "ok",
    };
    metrics.api_requests.get_or_create(&api).inc();
    metrics
        .api_request_duration
        .get_or_create(&api)
        .observe(0.1);
    metrics
        .reconciliations
        .get_or_create(&ReconcileLabels {
            kind: "ModelImport",
            step: "observe",
            result: "ok",
        })
        .inc();
    metrics
        .reconcile_duration
        .get_or_create(&KindLabels {
            kind: "ModelImport",
        })
        .observe(0.01);
    metrics.status_writes.inc();
    metrics.events_published.inc();
    metrics.unreadable_objects.inc();
    metrics
        .kube_requests
        .get_or_create(&KubeLabels {
            verb: "get",
            resource: "secrets",
            subresource: "",
        })
        .inc();
    metrics
        .api_rate_limit_wait
        .get_or_create(&QuotaLabels { priority: "poll" })
        .observe(0.0);
    metrics.time_to_ready.observe(60.0);
    metrics
        .deletion_duration
        .get_or_create(&DeletionLabels { policy: "Delete" })
        .observe(1.0);
    metrics.set_leader(true);
    metrics
}

/// The series names a query can name, from the `# TYPE` lines of the encoding: a counter's
/// samples end in `_total`, a histogram's in `_bucket`, `_sum` and `_count`.
fn exported_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let (family, kind) = rest.split_once(' ').expect("# TYPE name type");
        let suffixes: &[&str] = match kind {
            "counter" => &["_total"],
            "histogram" => &["_bucket", "_sum", "_count"],
            "info" => &["_info"],
            "gauge" | "unknown" => &[""],
            other => panic!("a metric type the test does not know: {other}"),
        };
        names.extend(suffixes.iter().map(|s| format!("{family}{s}")));
    }
    names
}

fn sample_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let end = l.find(['{', ' ']).unwrap_or(l.len());
            l[..end].to_string()
        })
        .collect()
}

/// The label values the controller writes, for the labels whose values queries spell out.
fn written_values() -> BTreeMap<&'static str, BTreeSet<String>> {
    let reasons = Code::ALL
        .iter()
        .map(|c| c.as_str().to_string())
        .chain(["None".into(), "Other".into()])
        .collect();
    let conditions = ["Ready", "Reconciling", "Stalled", "Unknown"]
        .map(String::from)
        .into();
    let phases = Phase::ALL
        .iter()
        .map(|p| p.as_str().to_string())
        .chain(["None".into()])
        .collect();
    let priorities = Priority::ALL.iter().map(|p| p.name().to_string()).collect();
    let policies = ["Delete", "Orphan"].map(String::from).into();
    BTreeMap::from([
        ("reason", reasons),
        ("condition", conditions),
        ("phase", phases),
        ("priority", priorities),
        ("policy", policies),
    ])
}

/// The metric names and the (label, value) pairs of the matchers of one expression.
#[derive(Default)]
struct Selectors {
    names: BTreeSet<String>,
    values: Vec<(String, String)>,
}

impl Selectors {
    fn add(&mut self, vs: &VectorSelector) {
        let by_label = vs
            .matchers
            .matchers
            .iter()
            .chain(vs.matchers.or_matchers.iter().flatten());
        let mut named = vs.name.clone();
        for m in by_label {
            if m.name == "__name__" {
                named = Some(m.value.clone());
                continue;
            }
            // The alternatives of a regex are plain names here.
            let values: Vec<&str> = match &m.op {
                MatchOp::Equal | MatchOp::NotEqual => vec![m.value.as_str()],
                MatchOp::Re(_) | MatchOp::NotRe(_) => m.value.split('|').collect(),
            };
            self.values
                .extend(values.into_iter().map(|v| (m.name.clone(), v.to_string())));
        }
        self.names
            .insert(named.expect("every selector names its metric"));
    }
}

impl ExprVisitor for Selectors {
    type Error = ();

    fn pre_visit(&mut self, expr: &Expr) -> Result<bool, ()> {
        match expr {
            Expr::VectorSelector(vs) => self.add(vs),
            Expr::MatrixSelector(ms) => self.add(&ms.vs),
            _ => {}
        }
        Ok(true)
    }
}

/// Parses `expr` as Prometheus would and checks the metrics and label values it names.
fn check_query(what: &str, expr: &str, exported: &BTreeSet<String>) {
    let parsed = parser::parse(expr).unwrap_or_else(|e| panic!("{what}: not PromQL: {e}\n{expr}"));
    let mut selectors = Selectors::default();
    walk_expr(&mut selectors, &parsed).expect("the walk");
    assert!(!selectors.names.is_empty(), "{what}: names no metric");
    for name in &selectors.names {
        assert!(
            exported.contains(name),
            "{what}: {name} is not a metric the controller exports"
        );
    }
    let written = written_values();
    for (label, value) in &selectors.values {
        if let Some(known) = written.get(label.as_str()) {
            assert!(
                known.contains(value),
                "{what}: the controller never writes {label}=\"{value}\""
            );
        }
    }
}

#[test]
fn the_exported_names_are_what_prometheus_scrapes() {
    let text = controller_metrics().encode();
    let exported = exported_names(&text);
    let samples = sample_names(&text);
    // Each sample's name is one the TYPE lines lead to, so the rules are checked against names
    // that really appear.
    for name in &samples {
        assert!(exported.contains(name), "{name} not derived from {text}");
    }
    for name in [
        "modelstudio_imports",
        "modelstudio_imports_by_reason",
        "modelstudio_deletions_blocked",
        "modelstudio_deletion_blocked_oldest_seconds",
        "modelstudio_time_to_ready_seconds_bucket",
        "modelstudio_deletion_duration_seconds_count",
        "modelstudio_api_rate_limit_wait_seconds_bucket",
        "modelstudio_leader",
        "modelstudio_build_info",
        "modelstudio_api_requests_total",
        "modelstudio_kubernetes_requests_total",
    ] {
        assert!(samples.contains(name), "{name} missing from\n{text}");
    }
}

#[test]
fn every_alert_is_valid_promql_on_exported_metrics_and_says_what_to_do() {
    let exported = exported_names(&controller_metrics().encode());
    let rule: Value = serde_saphyr::from_str(&read("deploy/monitoring/prometheusrule.yaml"))
        .expect("the PrometheusRule is YAML");
    assert_eq!(rule["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(rule["kind"], "PrometheusRule");
    assert_eq!(rule["metadata"]["namespace"], "modelstudio-system");
    let groups = rule["spec"]["groups"].as_array().expect("spec.groups");
    let mut alerts = BTreeSet::new();
    let mut runbooks = BTreeSet::new();
    for group in groups {
        assert!(group["name"].as_str().is_some_and(|n| !n.is_empty()));
        for rule in group["rules"].as_array().expect("rules") {
            let alert = rule["alert"].as_str().expect("every rule is an alert");
            assert!(alerts.insert(alert.to_string()), "{alert} twice");
            check_query(alert, rule["expr"].as_str().expect("expr"), &exported);
            let wait = rule["for"].as_str().expect("a for: duration");
            promql_parser::util::parse_duration(wait)
                .unwrap_or_else(|e| panic!("{alert}: for: {wait}: {e}"));
            let severity = rule["labels"]["severity"].as_str().unwrap_or_default();
            assert!(
                ["critical", "warning", "info"].contains(&severity),
                "{alert}: severity {severity:?}"
            );
            let annotations = &rule["annotations"];
            for key in ["summary", "description", "runbook_url"] {
                assert!(
                    annotations[key]
                        .as_str()
                        .is_some_and(|t| t.trim().len() > 10),
                    "{alert}: no {key}"
                );
            }
            let runbook = annotations["runbook_url"].as_str().unwrap_or_default();
            let anchor = runbook
                .strip_prefix("docs/troubleshooting.md#")
                .unwrap_or_else(|| panic!("{alert}: runbook {runbook}"));
            assert!(
                RUNBOOKS.contains(&anchor),
                "{alert}: no such runbook {anchor}"
            );
            runbooks.insert(anchor);
        }
    }
    // What the field expects to be told about.
    for alert in [
        "ModelImportDeletionBlocked",
        "ModelImportCredentialsMissing",
        "ModelImportStalled",
        "ModelStudioRemoteErrors",
        "ModelStudioQuotaSaturated",
        "ModelStudioControllerNoLeader",
    ] {
        assert!(alerts.contains(alert), "no {alert} in {alerts:?}");
    }
    assert_eq!(runbooks, RUNBOOKS.into(), "every runbook is used");
}

/// Every panel, rows' collapsed panels included.
fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut all = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        all.push(panel);
        all.extend(panel["panels"].as_array().into_iter().flatten());
    }
    all
}

#[test]
fn the_dashboard_parses_and_every_panel_queries_exported_metrics() {
    let exported = exported_names(&controller_metrics().encode());
    let dashboard: Value = serde_json::from_str(&read("deploy/monitoring/grafana-dashboard.json"))
        .expect("the dashboard is JSON");
    assert_eq!(dashboard["uid"], "modelstudio-controller");
    assert!(dashboard["title"].as_str().is_some());
    let variables = dashboard["templating"]["list"]
        .as_array()
        .expect("templating");
    assert!(variables
        .iter()
        .any(|v| v["name"] == "datasource" && v["query"] == "prometheus"));
    let mut ids = BTreeSet::new();
    let mut queried = BTreeSet::new();
    let mut cells = BTreeSet::new();
    for panel in panels(&dashboard) {
        let title = panel["title"].as_str().expect("a title");
        assert!(
            ids.insert(panel["id"].as_u64().expect("an id")),
            "{title}: id"
        );
        let grid = &panel["gridPos"];
        let [x, y, w, h] = ["x", "y", "w", "h"].map(|k| grid[k].as_u64().expect("gridPos"));
        assert!(x + w <= 24, "{title}: wider than the dashboard");
        for cell in (x..x + w).flat_map(|i| (y..y + h).map(move |j| (i, j))) {
            assert!(cells.insert(cell), "{title} overlaps another panel");
        }
        if panel["type"] == "row" {
            continue;
        }
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "{title}");
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title}: no query");
        let mut refs = BTreeSet::new();
        for target in targets {
            assert!(refs.insert(target["refId"].as_str().expect("refId")));
            // Grafana's interval variable, as Grafana substitutes it.
            let expr = target["expr"]
                .as_str()
                .expect("expr")
                .replace("$__rate_interval", "5m");
            assert!(!expr.contains('$'), "{title}: a variable Grafana lacks");
            check_query(title, &expr, &exported);
            let parsed = parser::parse(&expr).expect("parsed above");
            let mut selectors = Selectors::default();
            walk_expr(&mut selectors, &parsed).expect("the walk");
            queried.extend(selectors.names);
        }
    }
    // The dashboard shows every family of the controller.
    // A histogram's series are one family.
    let family = |n: &String| {
        ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| n.strip_suffix(s))
            .unwrap_or(n)
            .to_string()
    };
    let families: BTreeSet<String> = exported.iter().map(family).collect();
    let shown: BTreeSet<String> = queried.iter().map(family).collect();
    let missing: Vec<_> = families.difference(&shown).collect();
    assert!(missing.is_empty(), "not on the dashboard: {missing:?}");
}

#[test]
fn a_query_naming_an_unknown_metric_or_value_is_caught() {
    let exported = exported_names(&controller_metrics().encode());
    let fails =
        |expr: &str| std::panic::catch_unwind(|| check_query("probe", expr, &exported)).is_err();
    assert!(!fails("sum(modelstudio_imports{phase=\"Running\"})"));
    assert!(fails("sum(modelstudio_import{phase=\"Running\"})"));
    assert!(fails("sum(modelstudio_imports{phase=\"Runing\"})"));
    assert!(fails(
        "modelstudio_imports_by_reason{reason=~\"CredentialsMissing|NoSuchReason\"}"
    ));
    assert!(
        fails("rate(modelstudio_status_writes[5m])"),
        "a counter without _total"
    );
    assert!(fails("sum(modelstudio_imports"), "not PromQL");
}

/// `kubectl kustomize` of a folder of this repository, one value per document.
fn kustomize(rel: &str) -> Vec<Value> {
    modelstudio_testbed::kustomize(&Path::new(ROOT).join(rel))
}

#[test]
fn deploy_monitoring_scrapes_the_controller_pods_and_ships_the_dashboard() {
    let docs = kustomize("deploy/monitoring");
    let kinds: BTreeSet<&str> = docs.iter().filter_map(|d| d["kind"].as_str()).collect();
    assert_eq!(kinds, ["ConfigMap", "PodMonitor", "PrometheusRule"].into());
    assert!(docs
        .iter()
        .all(|d| d["metadata"]["namespace"] == "modelstudio-system"));
    let of = |kind: &str| docs.iter().find(|d| d["kind"] == kind).unwrap();
    // The PodMonitor selects the Deployment's pods, by their port's name.
    let deployment = kustomize("deploy")
        .into_iter()
        .find(|d| d["kind"] == "Deployment")
        .expect("deploy/ has the Deployment");
    let pod = &deployment["spec"]["template"];
    let monitor = &of("PodMonitor")["spec"];
    let selector = monitor["selector"]["matchLabels"]
        .as_object()
        .expect("matchLabels");
    for (label, value) in selector {
        assert_eq!(&pod["metadata"]["labels"][label], value, "{label}");
    }
    let port = monitor["podMetricsEndpoints"][0]["port"].as_str().unwrap();
    let ports = pod["spec"]["containers"][0]["ports"].as_array().unwrap();
    assert!(ports.iter().any(|p| p["name"] == port), "no port {port}");
    assert_eq!(monitor["podMetricsEndpoints"][0]["path"], "/metrics");
    // Grafana's sidecar finds the dashboard by its label; the JSON is the file's.
    let dashboard = of("ConfigMap");
    assert_eq!(dashboard["metadata"]["labels"]["grafana_dashboard"], "1");
    assert_eq!(
        dashboard["data"]["grafana-dashboard.json"],
        read("deploy/monitoring/grafana-dashboard.json")
    );
}

/// A Markdown heading's anchor as GitHub makes it: lower case, spaces to dashes, punctuation gone.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

#[test]
fn the_docs_name_only_exported_metrics_and_real_alerts_and_have_every_runbook() {
    let exported = exported_names(&controller_metrics().encode());
    let rule = read("deploy/monitoring/prometheusrule.yaml");
    let troubleshooting = read("docs/troubleshooting.md");
    let anchors: BTreeSet<String> = troubleshooting
        .lines()
        .filter_map(|l| l.strip_prefix("## "))
        .map(anchor)
        .collect();
    for runbook in RUNBOOKS {
        assert!(
            anchors.contains(runbook),
            "docs/troubleshooting.md has no section #{runbook}: {anchors:?}"
        );
    }
    for doc in ["docs/troubleshooting.md", "README.md"] {
        let text = read(doc);
        let words = text.split(|c: char| !(c.is_alphanumeric() || c == '_'));
        // modelstudio_controller is the crate, as RUST_LOG names it.
        let metric = |w: &&str| w.starts_with("modelstudio_") && *w != "modelstudio_controller";
        for word in words.filter(metric).filter(|w| w.len() > 12) {
            // A family named bare (a counter without _total) is fine too.
            let known = exported.contains(word)
                || exported.contains(&format!("{word}_total"))
                || exported.contains(&format!("{word}_count"));
            assert!(
                known,
                "{doc} names {word}, which the controller does not export"
            );
        }
        for word in text.split(|c: char| !c.is_alphanumeric()) {
            if (word.starts_with("ModelImport") || word.starts_with("ModelStudio"))
                && [
                    "Blocked",
                    "Missing",
                    "Stalled",
                    "Errors",
                    "Saturated",
                    "Leader",
                ]
                .iter()
                .any(|end| word.ends_with(end))
            {
                assert!(
                    rule.contains(&format!("alert: {word}")),
                    "{doc} names the alert {word}, which deploy/monitoring does not have"
                );
            }
        }
    }
    assert_eq!(
        anchor("Why is my deletion blocked?"),
        "why-is-my-deletion-blocked"
    );
}
