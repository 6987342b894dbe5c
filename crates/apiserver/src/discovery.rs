//! The served resources (built-in and CRD-defined) and the discovery documents:
//! legacy `/api`, `/apis`, `/api/v1`, `/apis/{g}/{v}` and aggregated `apidiscovery.k8s.io/v2`.

use serde_json::{json, Value};

pub const SERVER_VERSION: &str = "v1.37.0";

#[derive(Debug, Clone, PartialEq)]
pub struct VersionInfo {
    pub name: String,
    /// The CRD's `openAPIV3Schema` (None for built-ins and schemaless CRDs).
    pub schema: Option<Value>,
    pub printer_columns: Vec<Value>,
    pub status_subresource: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ResourceInfo {
    pub group: String,
    pub plural: String,
    pub singular: String,
    pub kind: String,
    pub list_kind: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    /// Served versions, the preferred (storage) one first.
    pub versions: Vec<VersionInfo>,
    /// Defined by a CustomResourceDefinition (stored with schema validation, generation on any non-metadata/status change).
    pub custom: bool,
    /// Whether objects carry `metadata.generation`.
    pub has_generation: bool,
}

impl ResourceInfo {
    pub fn version(&self, v: &str) -> Option<&VersionInfo> {
        self.versions.iter().find(|x| x.name == v)
    }

    pub fn api_version(&self, v: &str) -> String {
        if self.group.is_empty() {
            v.to_string()
        } else {
            format!("{}/{}", self.group, v)
        }
    }

    /// Where the objects are stored. events.k8s.io events share the core events store
    /// (see [`crate::events`]).
    pub fn gr(&self) -> crate::store::GroupResource {
        if crate::events::is_events_v1(self) {
            return crate::store::gr("", "events");
        }
        (self.group.clone(), self.plural.clone())
    }

    pub fn verbs(&self) -> Vec<&'static str> {
        vec![
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        ]
    }

    /// The `resource.group` form used in messages.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }
}

fn builtin(
    group: &str,
    version: &str,
    plural: &str,
    kind: &str,
    namespaced: bool,
    short: &[&str],
    status: bool,
) -> ResourceInfo {
    ResourceInfo {
        group: group.into(),
        plural: plural.into(),
        singular: kind.to_lowercase(),
        kind: kind.into(),
        list_kind: format!("{kind}List"),
        namespaced,
        short_names: short.iter().map(|s| s.to_string()).collect(),
        categories: Vec::new(),
        versions: vec![VersionInfo {
            name: version.into(),
            schema: None,
            printer_columns: Vec::new(),
            status_subresource: status,
        }],
        custom: false,
        has_generation: false,
    }
}

/// The built-in kinds this server serves.
pub fn builtins() -> Vec<ResourceInfo> {
    let mut crd = builtin(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        false,
        &["crd", "crds"],
        true,
    );
    crd.categories = vec!["api-extensions".into()];
    crd.has_generation = true;
    vec![
        builtin("", "v1", "namespaces", "Namespace", false, &["ns"], true),
        builtin("", "v1", "secrets", "Secret", true, &[], false),
        builtin("", "v1", "configmaps", "ConfigMap", true, &["cm"], false),
        builtin("", "v1", "events", "Event", true, &["ev"], false),
        builtin(
            "events.k8s.io",
            "v1",
            "events",
            "Event",
            true,
            &["ev"],
            false,
        ),
        builtin(
            "coordination.k8s.io",
            "v1",
            "leases",
            "Lease",
            true,
            &[],
            false,
        ),
        crd,
    ]
}

fn group_order(resources: &[ResourceInfo]) -> Vec<String> {
    let mut groups: Vec<String> = Vec::new();
    for r in resources {
        if !r.group.is_empty() && !groups.contains(&r.group) {
            groups.push(r.group.clone());
        }
    }
    groups
}

fn versions_of(resources: &[ResourceInfo], group: &str) -> Vec<String> {
    let mut vs: Vec<String> = Vec::new();
    for r in resources.iter().filter(|r| r.group == group) {
        for v in &r.versions {
            if !vs.contains(&v.name) {
                vs.push(v.name.clone());
            }
        }
    }
    vs
}

pub fn version_doc() -> Value {
    json!({
        "major": "1", "minor": "37", "gitVersion": SERVER_VERSION,
        "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.25", "compiler": "gc", "platform": "linux/amd64",
        "emulationMajor": "1", "emulationMinor": "37", "minCompatibilityMajor": "1", "minCompatibilityMinor": "36"
    })
}

pub fn api_versions(server_addr: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_addr}]
    })
}

fn api_group(resources: &[ResourceInfo], group: &str) -> Value {
    let vs = versions_of(resources, group);
    let versions: Vec<Value> = vs
        .iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    json!({
        "kind": "APIGroup", "apiVersion": "v1", "name": group,
        "versions": versions.clone(),
        "preferredVersion": versions.first().cloned().unwrap_or(Value::Null),
    })
}

pub fn api_group_doc(resources: &[ResourceInfo], group: &str) -> Option<Value> {
    resources
        .iter()
        .any(|r| r.group == group)
        .then(|| api_group(resources, group))
}

pub fn api_group_list(resources: &[ResourceInfo]) -> Value {
    let groups: Vec<Value> = group_order(resources)
        .iter()
        .map(|g| {
            let mut v = api_group(resources, g);
            if let Some(m) = v.as_object_mut() {
                m.remove("kind");
                m.remove("apiVersion");
            }
            v
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// Legacy `APIResourceList` for one group version; None if nothing is served there.
pub fn api_resource_list(resources: &[ResourceInfo], group: &str, version: &str) -> Option<Value> {
    let mut out = Vec::new();
    for r in resources.iter().filter(|r| r.group == group) {
        let Some(v) = r.version(version) else {
            continue;
        };
        let mut e = json!({
            "name": r.plural, "singularName": r.singular, "namespaced": r.namespaced,
            "kind": r.kind, "verbs": r.verbs(),
        });
        if !r.short_names.is_empty() {
            e["shortNames"] = json!(r.short_names);
        }
        if !r.categories.is_empty() {
            e["categories"] = json!(r.categories);
        }
        out.push(e);
        if v.status_subresource {
            out.push(json!({
                "name": format!("{}/status", r.plural), "singularName": "", "namespaced": r.namespaced,
                "kind": r.kind, "verbs": ["get", "patch", "update"],
            }));
        }
    }
    if out.is_empty() {
        return None;
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": out}),
    )
}

fn aggregated_group(resources: &[ResourceInfo], group: &str) -> Value {
    let versions: Vec<Value> = versions_of(resources, group)
        .iter()
        .map(|ver| {
            let res: Vec<Value> = resources
                .iter()
                .filter(|r| r.group == group)
                .filter_map(|r| {
                    let v = r.version(ver)?;
                    let kind = json!({"group": group, "version": ver, "kind": r.kind});
                    let mut e = json!({
                        "resource": r.plural, "responseKind": kind.clone(),
                        "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
                        "singularResource": r.singular, "verbs": r.verbs(),
                    });
                    if !r.short_names.is_empty() {
                        e["shortNames"] = json!(r.short_names);
                    }
                    if !r.categories.is_empty() {
                        e["categories"] = json!(r.categories);
                    }
                    if v.status_subresource {
                        e["subresources"] = json!([{"subresource": "status", "responseKind": kind, "verbs": ["get", "patch", "update"]}]);
                    }
                    Some(e)
                })
                .collect();
            json!({"version": ver, "resources": res, "freshness": "Current"})
        })
        .collect();
    let meta = if group.is_empty() {
        json!({"creationTimestamp": null})
    } else {
        json!({"name": group, "creationTimestamp": null})
    };
    json!({"metadata": meta, "versions": versions})
}

/// Aggregated discovery (`APIGroupDiscoveryList`, apidiscovery.k8s.io/v2) for `/api` (core) or `/apis`.
pub fn aggregated(resources: &[ResourceInfo], core: bool) -> Value {
    let items: Vec<Value> = if core {
        vec![aggregated_group(resources, "")]
    } else {
        group_order(resources)
            .iter()
            .map(|g| aggregated_group(resources, g))
            .collect()
    };
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items})
}

pub const AGGREGATED_CONTENT_TYPE: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// Whether the Accept header asks for aggregated discovery v2 (kubectl and client-go do).
pub fn wants_aggregated(accept: &str) -> bool {
    accept.split(',').any(|part| {
        let p: Vec<&str> = part.split(';').map(str::trim).collect();
        p.contains(&"g=apidiscovery.k8s.io")
            && p.contains(&"v=v2")
            && p.contains(&"as=APIGroupDiscoveryList")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_lists_have_status_subresource_and_short_names() {
        let rs = builtins();
        let core = api_resource_list(&rs, "", "v1").unwrap();
        let names: Vec<&str> = core["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert!(names.contains(&"namespaces/status"));
        assert!(names.contains(&"secrets"));
        let crd = api_resource_list(&rs, "apiextensions.k8s.io", "v1").unwrap();
        assert_eq!(crd["resources"][0]["shortNames"][0], "crd");
        assert!(api_resource_list(&rs, "nope.io", "v1").is_none());
        let groups = api_group_list(&rs);
        assert!(groups["groups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["name"] == "coordination.k8s.io"));
    }

    #[test]
    fn aggregated_shape() {
        let rs = builtins();
        let core = aggregated(&rs, true);
        assert_eq!(core["items"][0]["versions"][0]["version"], "v1");
        let apis = aggregated(&rs, false);
        assert!(apis["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["metadata"]["name"].is_string()));
        assert!(wants_aggregated(
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
        ));
        assert!(!wants_aggregated("application/json"));
    }
}
