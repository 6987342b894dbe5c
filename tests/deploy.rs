//! The manifests in deploy/ render with kustomize (kubectl's) and keep their hardening and
//! least-privilege RBAC.

use serde_json::Value;

fn rendered() -> Vec<Value> {
    modelstudio_testbed::kustomize(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy"
    )))
}

fn find<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

#[test]
fn deployment_is_hardened_and_probed() {
    let docs = rendered();
    let deployment = find(&docs, "Deployment")[0];
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let c = &pod["containers"][0];
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(c["securityContext"]["capabilities"]["drop"][0], "ALL");
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    let env: Vec<&str> = c["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert!(env.contains(&"MODELSTUDIO_LEADER_ELECTION"));
    assert_eq!(deployment["metadata"]["namespace"], "modelstudio-system");
}

#[test]
fn rbac_is_least_privilege() {
    let docs = rendered();
    let role = find(&docs, "ClusterRole")[0];
    let rules = role["rules"].as_array().unwrap();
    let verbs = |resource: &str| -> Vec<String> {
        rules
            .iter()
            .filter(|r| {
                r["resources"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|x| x == resource)
            })
            .flat_map(|r| {
                r["verbs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap().to_string())
            })
            .collect()
    };
    // Exactly what the controller calls (tests/least_privilege.rs checks it against the audit
    // log of the real kube-apiserver): no update of either kind, no finalizers subresource (it
    // owns no objects that could block a deletion). get of a ModelImport: the one a
    // ModelDeployment names when the cache lacks it; of a ModelDeployment, only its status (the
    // fresh copy before a create).
    assert_eq!(verbs("modelimports"), ["get", "list", "watch", "patch"]);
    assert_eq!(verbs("modelimports/status"), ["get", "patch"]);
    assert!(verbs("modelimports/finalizers").is_empty());
    assert_eq!(verbs("modeldeployments"), ["list", "watch", "patch"]);
    assert_eq!(verbs("modeldeployments/status"), ["get", "patch"]);
    assert!(verbs("modeldeployments/finalizers").is_empty());
    // list and watch: the watch cache the API keys are read from; get: a Secret the cache does
    // not hold yet; patch: the finalizer on a Secret a job still needs.
    assert_eq!(verbs("secrets"), ["get", "list", "watch", "patch"]);
    // The outputs ConfigMaps: its own only (by label), created, applied, and deleted under a
    // former name; get: one of the wanted name it did not write.
    assert_eq!(
        verbs("configmaps"),
        ["get", "list", "watch", "create", "patch", "delete"]
    );
    assert_eq!(verbs("events"), ["create", "patch"]);
    assert!(!rules
        .iter()
        .any(|r| r["verbs"].as_array().unwrap().iter().any(|v| v == "*")));
    assert!(!rules
        .iter()
        .any(|r| r["resources"].as_array().unwrap().iter().any(|v| v == "*")));
    // Leases only in the controller's namespace.
    let lease_role = find(&docs, "Role")[0];
    assert_eq!(lease_role["metadata"]["namespace"], "modelstudio-system");
    assert_eq!(lease_role["rules"][0]["resources"][0], "leases");
    assert_eq!(
        lease_role["rules"][0]["verbs"],
        serde_json::json!(["get", "create", "update"])
    );
}

#[test]
fn namespace_enforces_warns_and_audits_pod_security_restricted() {
    let docs = rendered();
    let labels = &find(&docs, "Namespace")[0]["metadata"]["labels"];
    for mode in ["enforce", "warn", "audit"] {
        let key = format!("pod-security.kubernetes.io/{mode}");
        assert_eq!(labels[&key], "restricted", "{key}");
        assert_eq!(labels[format!("{key}-version")], "latest", "{key}-version");
    }
}
