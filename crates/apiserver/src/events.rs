//! Events: core/v1 `Event` and events.k8s.io/v1 `Event` are two views of one store, as in
//! kube-apiserver. Objects are stored in the core/v1 shape; the events.k8s.io/v1 view is
//! converted on the way in and out:
//!
//! | events.k8s.io/v1 | core/v1 |
//! | --- | --- |
//! | `regarding` | `involvedObject` |
//! | `note` | `message` |
//! | `reportingController` | `reportingComponent` |
//! | `reportingInstance` | `reportingInstance` |
//! | `deprecatedSource` | `source` |
//! | `deprecatedFirstTimestamp` / `deprecatedLastTimestamp` | `firstTimestamp` / `lastTimestamp` |
//! | `deprecatedCount` | `count` (`series.count` when there is a series) |
//! | `eventTime`, `series`, `action`, `reason`, `type`, `related` | same |
//!
//! Also the field selectors kube-apiserver offers on events and the server-side printing
//! columns of `kubectl get events`.

use serde_json::{json, Map, Value};

use crate::discovery::ResourceInfo;
use crate::status::Cause;

pub const GROUP_V1: &str = "events.k8s.io";

/// Whether a resource is one of the two event views.
pub fn is_events(res: &ResourceInfo) -> bool {
    res.plural == "events" && (res.group.is_empty() || res.group == GROUP_V1)
}

/// Whether a resource is the events.k8s.io view (stored converted).
pub fn is_events_v1(res: &ResourceInfo) -> bool {
    res.plural == "events" && res.group == GROUP_V1
}

/// (events.k8s.io/v1 field, core/v1 field) renamed one to one.
const RENAMED: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
];

/// Fields with the same name in both views.
const SAME: &[&str] = &[
    "metadata",
    "eventTime",
    "series",
    "action",
    "reason",
    "type",
    "related",
    "reportingInstance",
];

/// A field that holds a value: null, `""` and `{}` are Go's zero values, as good as absent.
fn take(o: &Map<String, Value>, k: &str) -> Option<Value> {
    o.get(k)
        .filter(|v| {
            !v.is_null()
                && v.as_object().is_none_or(|m| !m.is_empty())
                && v.as_str().is_none_or(|s| !s.is_empty())
        })
        .cloned()
}

/// events.k8s.io/v1 shape → core/v1 shape (apiVersion `v1`).
pub fn v1_to_core(obj: Value) -> Value {
    let Value::Object(o) = obj else {
        return obj;
    };
    let mut c = Map::new();
    c.insert("apiVersion".into(), json!("v1"));
    c.insert("kind".into(), json!("Event"));
    for k in SAME {
        if let Some(v) = take(&o, k) {
            c.insert((*k).into(), v);
        }
    }
    for (v1, core) in RENAMED {
        if let Some(v) = take(&o, v1) {
            c.insert((*core).into(), v);
        }
    }
    let series_count = o
        .get("series")
        .and_then(|s| s.get("count"))
        .filter(|v| !v.is_null())
        .cloned();
    if let Some(n) = series_count.or_else(|| take(&o, "deprecatedCount")) {
        c.insert("count".into(), n);
    }
    Value::Object(c)
}

/// core/v1 shape → events.k8s.io/v1 shape.
pub fn core_to_v1(obj: Value) -> Value {
    let Value::Object(o) = obj else {
        return obj;
    };
    let mut e = Map::new();
    e.insert("apiVersion".into(), json!(format!("{GROUP_V1}/v1")));
    e.insert("kind".into(), json!("Event"));
    for k in SAME {
        if let Some(v) = take(&o, k) {
            e.insert((*k).into(), v);
        }
    }
    for (v1, core) in RENAMED {
        if let Some(v) = take(&o, core) {
            e.insert((*v1).into(), v);
        }
    }
    // With a series the count is the series' count, not a deprecated one.
    if !o.get("series").is_some_and(|s| s.is_object()) {
        if let Some(n) = take(&o, "count") {
            e.insert("deprecatedCount".into(), n);
        }
    }
    Value::Object(e)
}

/// kube-apiserver's `ValidateEventCreate` on the stored (core) shape; `v1` when the request came
/// through events.k8s.io/v1, which adds the strict checks. Not checked here: the qualified-name
/// format of reportingController.
pub fn validate_create(obj: &Value, v1: bool) -> Vec<Cause> {
    let s = |p: &str| obj.pointer(p).and_then(Value::as_str).unwrap_or("");
    let set = |p: &str| obj.pointer(p).is_some_and(|v| !v.is_null() && v != "");
    let required = |f: &str| Cause {
        reason: "FieldValueRequired".into(),
        field: f.into(),
        message: "Required value".into(),
    };
    let invalid = |f: &str, detail: String| Cause {
        reason: "FieldValueInvalid".into(),
        field: f.into(),
        message: format!("Invalid value: \"\": {detail}"),
    };
    let mut errs = Vec::new();
    // Legacy validation, for both APIs.
    let ns = s("/metadata/namespace");
    let involved_ns = s("/involvedObject/namespace");
    let ns_mismatch = |errs: &mut Vec<Cause>| {
        errs.push(Cause {
            reason: "FieldValueInvalid".into(),
            field: "involvedObject.namespace".into(),
            message: format!(
                "Invalid value: {}: does not match event.namespace",
                json!(involved_ns)
            ),
        })
    };
    if !set("/eventTime") {
        if (involved_ns.is_empty() && !ns.is_empty() && ns != "default")
            || (!involved_ns.is_empty() && ns != involved_ns)
        {
            ns_mismatch(&mut errs);
        }
    } else {
        if involved_ns.is_empty() && ns != "default" && ns != "kube-system" {
            ns_mismatch(&mut errs);
        }
        let controller = if v1 {
            "reportingController"
        } else {
            "reportingComponent"
        };
        for (field, pointer, limit) in [
            (controller, "/reportingComponent", None),
            ("reportingInstance", "/reportingInstance", Some(128)),
            ("action", "/action", Some(128)),
            ("reason", "/reason", Some(128)),
        ] {
            let v = s(pointer);
            if v.is_empty() {
                errs.push(required(field));
            }
            if let Some(limit) = limit.filter(|l| v.len() > *l) {
                errs.push(invalid(
                    field,
                    format!("can have at most {limit} characters"),
                ));
            }
        }
        if s("/message").len() > 1024 {
            errs.push(invalid(
                "message",
                "can have at most 1024 characters".into(),
            ));
        }
    }
    if !v1 {
        return errs;
    }
    // Strict validation of the events.k8s.io/v1 API.
    if obj.get("series").is_some_and(Value::is_object) {
        if obj
            .pointer("/series/count")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            < 2
        {
            errs.push(invalid("series.count", "should be at least 2".into()));
        }
        if !set("/series/lastObservedTime") {
            errs.push(required("series.lastObservedTime"));
        }
    }
    if !set("/eventTime") {
        errs.push(required("eventTime"));
    }
    let ty = s("/type");
    if ty != "Normal" && ty != "Warning" {
        errs.push(invalid("type", format!("has invalid value: {ty}")));
    }
    for f in ["firstTimestamp", "lastTimestamp"] {
        if set(&format!("/{f}")) {
            errs.push(invalid(f, "needs to be unset".into()));
        }
    }
    if obj.get("count").and_then(Value::as_i64).unwrap_or(0) != 0
        && !obj.get("series").is_some_and(Value::is_object)
    {
        errs.push(invalid("count", "needs to be unset".into()));
    }
    if set("/source/component") || set("/source/host") {
        errs.push(invalid("source", "needs to be unset".into()));
    }
    errs
}

/// The fields Go's encoding always writes (zero times as null, empty structs as `{}`), as
/// kube-apiserver answers them; `v1` is the events.k8s.io view, else the core view.
pub fn with_zero_values(mut obj: Value, v1: bool) -> Value {
    let Some(o) = obj.as_object_mut() else {
        return obj;
    };
    let zeros: &[(&str, Value)] = if v1 {
        &[
            ("eventTime", Value::Null),
            ("regarding", json!({})),
            ("deprecatedSource", json!({})),
            ("deprecatedFirstTimestamp", Value::Null),
            ("deprecatedLastTimestamp", Value::Null),
        ]
    } else {
        &[
            ("involvedObject", json!({})),
            ("source", json!({})),
            ("firstTimestamp", Value::Null),
            ("lastTimestamp", Value::Null),
            ("eventTime", Value::Null),
            ("reportingComponent", json!("")),
            ("reportingInstance", json!("")),
        ]
    };
    for (k, zero) in zeros {
        o.entry(k.to_string()).or_insert_with(|| zero.clone());
    }
    obj
}

/// Field selector names on events (kube-apiserver's set), besides metadata.name/namespace.
/// The events.k8s.io spellings are accepted as aliases.
pub const FIELDS: &[&str] = &[
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
    "regarding.kind",
    "regarding.namespace",
    "regarding.name",
    "regarding.uid",
    "regarding.apiVersion",
    "regarding.resourceVersion",
    "regarding.fieldPath",
    "reportingController",
];

/// The value a field selector compares, read from the stored (core/v1) object.
pub fn field_value(obj: &Value, field: &str) -> String {
    let field = match field.strip_prefix("regarding.") {
        Some(rest) => format!("involvedObject.{rest}"),
        None if field == "reportingController" => "reportingComponent".to_string(),
        None if field == "source" => "source.component".to_string(),
        None => field.to_string(),
    };
    let mut cur = obj;
    for part in field.split('.') {
        match cur.get(part) {
            Some(v) => cur = v,
            None => return String::new(),
        }
    }
    match cur {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Columns of kube-apiserver's event printer (the wide ones have priority 1).
pub fn columns() -> Vec<Value> {
    let col = |name: &str, priority: i64, format: &str, description: &str| json!({"name": name, "type": "string", "format": format, "description": description, "priority": priority});
    vec![
        col("Last Seen", 0, "", "The time at which the most recent occurrence of this event was recorded."),
        col("Type", 0, "", "Type of this event (Normal, Warning), new types could be added in the future"),
        col("Reason", 0, "", "This should be a short, machine understandable string that gives the reason for the transition into the object's current status."),
        col("Object", 0, "", "The object that this event is about."),
        col("Subobject", 1, "", "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement."),
        col("Source", 1, "", "The component reporting this event. Should be a short machine understandable string."),
        col("Message", 0, "", "A human-readable description of the status of this operation."),
        col("First Seen", 1, "", "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)"),
        json!({"name": "Count", "type": "integer", "format": "", "description": "The number of times this event has occurred.", "priority": 1}),
        col("Name", 1, "name", "Name must be unique within a namespace."),
    ]
}

fn since(ts: Option<&Value>) -> Option<String> {
    let t = ts?.as_str().filter(|s| !s.is_empty())?;
    let t = t.parse::<jiff::Timestamp>().ok()?;
    Some(crate::table::human_duration(
        jiff::Timestamp::now().as_second() - t.as_second(),
    ))
}

/// The cells of one event row (kube's `printEvent` with wide output); `obj` may be either view.
pub fn cells(obj: &Value) -> Vec<Value> {
    let core = if obj.get("apiVersion").and_then(|v| v.as_str()) == Some("events.k8s.io/v1") {
        v1_to_core(obj.clone())
    } else {
        obj.clone()
    };
    let s = |p: &str| {
        core.pointer(p)
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string()
    };
    let first = since(core.get("firstTimestamp"))
        .or_else(|| since(core.get("eventTime")))
        .unwrap_or_else(|| "<unknown>".into());
    let mut last = since(core.get("lastTimestamp")).unwrap_or_else(|| first.clone());
    let mut count = core.get("count").and_then(|c| c.as_i64()).unwrap_or(0);
    if core.get("series").is_some_and(|s| s.is_object()) {
        last =
            since(core.pointer("/series/lastObservedTime")).unwrap_or_else(|| "<unknown>".into());
        count = core
            .pointer("/series/count")
            .and_then(|c| c.as_i64())
            .unwrap_or(count);
    } else if count == 0 {
        count = 1;
    }
    let kind = s("/involvedObject/kind").to_lowercase();
    let name = s("/involvedObject/name");
    let target = if name.is_empty() {
        kind
    } else {
        format!("{kind}/{name}")
    };
    let first_non_empty = |a: String, b: String| if a.is_empty() { b } else { a };
    let component = first_non_empty(s("/source/component"), s("/reportingComponent"));
    let instance = first_non_empty(s("/source/host"), s("/reportingInstance"));
    let source = if instance.is_empty() {
        component
    } else {
        format!("{component}, {instance}")
    };
    vec![
        json!(last),
        json!(s("/type")),
        json!(s("/reason")),
        json!(target),
        json!(s("/involvedObject/fieldPath")),
        json!(source),
        json!(s("/message").trim()),
        json!(first),
        json!(count),
        json!(s("/metadata/name")),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kube_rs_event() -> Value {
        json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "mi.17", "namespace": "default"},
            "eventTime": "2026-01-01T00:00:00.000000Z", "action": "Reconcile", "reason": "Created",
            "note": "job submitted", "type": "Normal",
            "regarding": {"apiVersion": "modelstudio.io/v1alpha1", "kind": "ModelImport", "name": "mi", "namespace": "default", "uid": "u1"},
            "reportingController": "modelstudio-controller", "reportingInstance": "pod-1"
        })
    }

    #[test]
    fn conversion_round_trips() {
        let core = v1_to_core(kube_rs_event());
        assert_eq!(core["apiVersion"], "v1");
        assert_eq!(core["involvedObject"]["uid"], "u1");
        assert_eq!(core["message"], "job submitted");
        assert_eq!(core["reportingComponent"], "modelstudio-controller");
        assert!(core.get("source").is_none(), "no source is derived");
        assert!(core.get("count").is_none());
        assert_eq!(core_to_v1(core), kube_rs_event());
        // A series carries the count.
        let mut e = kube_rs_event();
        e["series"] = json!({"count": 3, "lastObservedTime": "2026-01-01T00:01:00.000000Z"});
        let core = v1_to_core(e.clone());
        assert_eq!(core["count"], 3);
        assert_eq!(core_to_v1(core), e);
        // core-only writers: count and source are deprecated fields in the new view.
        let core = json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "x"}, "count": 2,
            "source": {"component": "kubelet", "host": "n1"}, "message": "m"});
        let v1 = core_to_v1(core.clone());
        assert_eq!(v1["deprecatedCount"], 2);
        assert_eq!(v1["deprecatedSource"]["host"], "n1");
        assert_eq!(v1["note"], "m");
        assert_eq!(v1_to_core(v1), core);
    }

    #[test]
    fn field_values_and_cells() {
        let core = v1_to_core(kube_rs_event());
        assert_eq!(field_value(&core, "involvedObject.uid"), "u1");
        assert_eq!(field_value(&core, "regarding.kind"), "ModelImport");
        assert_eq!(field_value(&core, "source"), "");
        assert_eq!(
            field_value(&core, "reportingController"),
            "modelstudio-controller"
        );
        assert_eq!(field_value(&core, "involvedObject.fieldPath"), "");
        let c = cells(&kube_rs_event());
        assert_eq!(c[1], "Normal");
        assert_eq!(c[3], "modelimport/mi");
        assert_eq!(c[5], "modelstudio-controller, pod-1");
        assert_eq!(c[6], "job submitted");
        assert_eq!(c[8], 1);
        assert_eq!(c.len(), columns().len());
    }
}
