//! CustomResourceDefinition registration: turns a CRD object into a served resource
//! and fills in the status kube-apiserver would (NamesAccepted, Established, acceptedNames).

use serde_json::{json, Value};

use crate::discovery::{ResourceInfo, VersionInfo};
use crate::status::Cause;

fn s<'a>(v: &'a Value, p: &str) -> Option<&'a str> {
    v.pointer(p)
        .and_then(|x| x.as_str())
        .filter(|x| !x.is_empty())
}

fn strings(v: &Value, p: &str) -> Vec<String> {
    v.pointer(p)
        .and_then(|x| x.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn required(field: &str) -> Cause {
    Cause {
        reason: "FieldValueRequired".into(),
        message: "Required value".into(),
        field: field.into(),
    }
}

/// Check the parts of a CRD this server relies on; field errors as kube-apiserver names them.
pub fn validate(crd: &Value) -> Vec<Cause> {
    let mut errs = Vec::new();
    let group = s(crd, "/spec/group");
    let plural = s(crd, "/spec/names/plural");
    if group.is_none() {
        errs.push(required("spec.group"));
    }
    if plural.is_none() {
        errs.push(required("spec.names.plural"));
    }
    if s(crd, "/spec/names/kind").is_none() {
        errs.push(required("spec.names.kind"));
    }
    match s(crd, "/spec/scope") {
        Some("Namespaced") | Some("Cluster") => {}
        Some(other) => errs.push(Cause {
            reason: "FieldValueNotSupported".into(),
            message: format!(
                "Unsupported value: \"{other}\": supported values: \"Cluster\", \"Namespaced\""
            ),
            field: "spec.scope".into(),
        }),
        None => errs.push(required("spec.scope")),
    }
    let versions = crd
        .pointer("/spec/versions")
        .and_then(|v| v.as_array())
        .cloned()
        .unwrap_or_default();
    if versions.is_empty() {
        errs.push(Cause {
            reason: "FieldValueInvalid".into(),
            message:
                "Invalid value: \"null\": must have exactly one version marked as storage version"
                    .into(),
            field: "spec.versions".into(),
        });
    } else if versions
        .iter()
        .filter(|v| v["storage"].as_bool() == Some(true))
        .count()
        != 1
    {
        errs.push(Cause {
            reason: "FieldValueInvalid".into(),
            message: "Invalid value: \"versions\": must have exactly one version marked as storage version".into(),
            field: "spec.versions".into(),
        });
    }
    if let (Some(g), Some(p), Some(name)) = (group, plural, s(crd, "/metadata/name")) {
        let want = format!("{p}.{g}");
        if name != want {
            errs.push(Cause {
                reason: "FieldValueInvalid".into(),
                message: format!(
                    "Invalid value: \"{name}\": must be spec.names.plural+\".\"+spec.group"
                ),
                field: "metadata.name".into(),
            });
        }
    }
    errs
}

/// The resource a (valid) CRD serves.
pub fn resource_info(crd: &Value) -> Option<ResourceInfo> {
    let group = s(crd, "/spec/group")?.to_string();
    let plural = s(crd, "/spec/names/plural")?.to_string();
    let kind = s(crd, "/spec/names/kind")?.to_string();
    let mut versions: Vec<VersionInfo> = Vec::new();
    for v in crd.pointer("/spec/versions")?.as_array()? {
        if v["served"].as_bool() == Some(false) {
            continue;
        }
        let info = VersionInfo {
            name: v["name"].as_str()?.to_string(),
            schema: v.pointer("/schema/openAPIV3Schema").cloned(),
            printer_columns: v["additionalPrinterColumns"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
            status_subresource: v.pointer("/subresources/status").is_some(),
        };
        // Storage version first: it is the preferred version in discovery.
        if v["storage"].as_bool() == Some(true) {
            versions.insert(0, info);
        } else {
            versions.push(info);
        }
    }
    Some(ResourceInfo {
        singular: s(crd, "/spec/names/singular")
            .map(str::to_string)
            .unwrap_or_else(|| kind.to_lowercase()),
        list_kind: s(crd, "/spec/names/listKind")
            .map(str::to_string)
            .unwrap_or_else(|| format!("{kind}List")),
        namespaced: s(crd, "/spec/scope") == Some("Namespaced"),
        short_names: strings(crd, "/spec/names/shortNames"),
        categories: strings(crd, "/spec/names/categories"),
        versions,
        custom: true,
        has_generation: true,
        group,
        plural,
        kind,
    })
}

/// Fill in defaults kube-apiserver sets on a CRD (singular, listKind, conversion).
pub fn apply_defaults(crd: &mut Value) {
    let kind = s(crd, "/spec/names/kind").map(str::to_string);
    if let (Some(kind), Some(names)) = (
        kind,
        crd.pointer_mut("/spec/names")
            .and_then(|n| n.as_object_mut()),
    ) {
        names
            .entry("singular")
            .or_insert_with(|| json!(kind.to_lowercase()));
        names
            .entry("listKind")
            .or_insert_with(|| json!(format!("{kind}List")));
    }
    if let Some(spec) = crd.get_mut("spec").and_then(|s| s.as_object_mut()) {
        spec.entry("conversion")
            .or_insert_with(|| json!({"strategy": "None"}));
    }
}

/// The status of an accepted, established CRD.
pub fn established_status(crd: &Value, now: &str) -> Value {
    let cond = |t: &str, reason: &str, msg: &str| json!({"type": t, "status": "True", "lastTransitionTime": now, "reason": reason, "message": msg});
    let stored: Vec<Value> = crd
        .pointer("/spec/versions")
        .and_then(|v| v.as_array())
        .map(|vs| {
            vs.iter()
                .filter(|v| v["storage"].as_bool() == Some(true))
                .map(|v| v["name"].clone())
                .collect()
        })
        .unwrap_or_default();
    json!({
        "acceptedNames": crd.pointer("/spec/names").cloned().unwrap_or(json!({})),
        "conditions": [
            cond("NamesAccepted", "NoConflicts", "no conflicts found"),
            cond("Established", "InitialNamesAccepted", "the initial names have been accepted"),
        ],
        "storedVersions": stored,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crd() -> Value {
        json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.io"},
            "spec": {"group": "example.io", "scope": "Namespaced",
                "names": {"plural": "widgets", "kind": "Widget", "shortNames": ["wd"]},
                "versions": [
                    {"name": "v1beta1", "served": true, "storage": false},
                    {"name": "v1", "served": true, "storage": true, "subresources": {"status": {}},
                     "schema": {"openAPIV3Schema": {"type": "object"}}}
                ]}
        })
    }

    #[test]
    fn registers_resource_with_storage_version_first() {
        let c = crd();
        assert!(validate(&c).is_empty());
        let r = resource_info(&c).unwrap();
        assert_eq!(r.versions[0].name, "v1");
        assert!(r.versions[0].status_subresource);
        assert_eq!(r.singular, "widget");
        assert_eq!(r.list_kind, "WidgetList");
        assert!(r.namespaced);
    }

    #[test]
    fn rejects_bad_crds() {
        let mut c = crd();
        c["metadata"]["name"] = json!("wrong");
        c["spec"]["scope"] = json!("Galaxy");
        let errs = validate(&c);
        assert_eq!(errs.len(), 2);
        let status = established_status(&crd(), "2026-01-01T00:00:00Z");
        assert_eq!(status["conditions"][1]["type"], "Established");
        assert_eq!(status["storedVersions"][0], "v1");
    }
}
