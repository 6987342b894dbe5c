//! Server-side printing: `meta.k8s.io/v1` `Table` responses built from a CRD's
//! `additionalPrinterColumns` (a JSONPath subset), or Name + Age for built-ins.

use serde_json::{json, Value};

use crate::discovery::ResourceInfo;

/// Whether the Accept header asks for a Table.
pub fn wants_table(accept: &str) -> bool {
    accept.split(',').any(|part| {
        let p: Vec<&str> = part.split(';').map(str::trim).collect();
        p.contains(&"as=Table") && p.contains(&"g=meta.k8s.io")
    })
}

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Field(String),
    Index(usize),
    Wildcard,
    Filter(String, String),
}

/// Parse `.a.b[0]`, `.a[*].b`, `.a[?(@.type=="Ready")].status`, optionally wrapped in `{}`.
fn parse_path(path: &str) -> Option<Vec<Step>> {
    let p = path.trim();
    let p = p
        .strip_prefix('{')
        .and_then(|x| x.strip_suffix('}'))
        .unwrap_or(p)
        .trim();
    let p = p.strip_prefix('$').unwrap_or(p);
    let chars: Vec<char> = p.chars().collect();
    let mut i = 0;
    let mut steps = Vec::new();
    while i < chars.len() {
        match chars[i] {
            '.' => {
                i += 1;
                let start = i;
                while i < chars.len() && chars[i] != '.' && chars[i] != '[' {
                    i += 1;
                }
                let name: String = chars[start..i].iter().collect();
                if !name.is_empty() {
                    steps.push(Step::Field(name));
                }
            }
            '[' => {
                // The closing bracket outside any quoted string.
                let end = (i..chars.len()).find(|&j| {
                    chars[j] == ']'
                        && chars[i..j]
                            .iter()
                            .filter(|c| **c == '"')
                            .count()
                            .is_multiple_of(2)
                })?;
                let inner: String = chars[i + 1..end].iter().collect();
                i = end + 1;
                let inner = inner.trim();
                if inner == "*" {
                    steps.push(Step::Wildcard);
                } else if let Ok(n) = inner.parse::<usize>() {
                    steps.push(Step::Index(n));
                } else if let Some(f) = inner.strip_prefix("?(").and_then(|x| x.strip_suffix(')')) {
                    let (l, r) = f.split_once("==")?;
                    let key = l.trim().strip_prefix("@.")?.to_string();
                    let val = r.trim().trim_matches(|c| c == '"' || c == '\'').to_string();
                    steps.push(Step::Filter(key, val));
                } else {
                    steps.push(Step::Field(
                        inner.trim_matches(|c| c == '"' || c == '\'').to_string(),
                    ));
                }
            }
            _ => return None,
        }
    }
    Some(steps)
}

/// Evaluate a JSONPath subset; returns all matches.
pub fn eval_path(obj: &Value, path: &str) -> Vec<Value> {
    let Some(steps) = parse_path(path) else {
        return Vec::new();
    };
    let mut cur = vec![obj.clone()];
    for s in steps {
        let mut next = Vec::new();
        for v in cur {
            match &s {
                Step::Field(f) => next.extend(v.get(f).cloned()),
                Step::Index(n) => next.extend(v.get(*n).cloned()),
                Step::Wildcard => match v {
                    Value::Array(a) => next.extend(a),
                    Value::Object(m) => next.extend(m.into_iter().map(|(_, x)| x)),
                    _ => {}
                },
                Step::Filter(k, want) => {
                    if let Value::Array(a) = v {
                        next.extend(a.into_iter().filter(|x| match x.get(k) {
                            Some(Value::String(s)) => s == want,
                            Some(other) => {
                                other.as_str().is_none()
                                    && serde_json::from_str::<Value>(want).ok().as_ref()
                                        == Some(other)
                            }
                            None => false,
                        }));
                    }
                }
            }
        }
        cur = next;
    }
    cur
}

/// kube's `duration.HumanDuration`.
pub fn human_duration(secs: i64) -> String {
    if secs < -1 {
        return "<invalid>".into();
    }
    let s = secs.max(0);
    let (m, h, d) = (s / 60, s / 3600, s / 86400);
    if s < 120 {
        format!("{s}s")
    } else if m < 10 {
        if s % 60 == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{}s", s % 60)
        }
    } else if m < 180 {
        format!("{m}m")
    } else if h < 8 {
        if m % 60 == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{}m", m % 60)
        }
    } else if h < 48 {
        format!("{h}h")
    } else if h < 24 * 8 {
        if h % 24 == 0 {
            format!("{d}d")
        } else {
            format!("{d}d{}h", h % 24)
        }
    } else if h < 24 * 365 * 2 {
        format!("{d}d")
    } else if h < 24 * 365 * 8 {
        let y = d / 365;
        if d % 365 == 0 {
            format!("{y}y")
        } else {
            format!("{y}y{}d", d % 365)
        }
    } else {
        format!("{}y", d / 365)
    }
}

fn age(ts: &str) -> Value {
    match ts.parse::<jiff::Timestamp>() {
        Ok(t) => Value::String(human_duration(
            jiff::Timestamp::now().as_second() - t.as_second(),
        )),
        Err(_) => Value::String("<invalid>".into()),
    }
}

fn cell(col_type: &str, v: Option<Value>) -> Value {
    match v {
        None | Some(Value::Null) => Value::Null,
        Some(Value::String(s)) if col_type == "date" => age(&s),
        Some(Value::Object(_)) | Some(Value::Array(_)) => {
            Value::String(v.map(|x| x.to_string()).unwrap_or_default())
        }
        Some(x) => x,
    }
}

/// Column definitions for a resource at a version.
pub fn columns(res: &ResourceInfo, version: &str) -> Vec<Value> {
    if crate::events::is_events(res) {
        return crate::events::columns();
    }
    let mut cols = vec![
        json!({"name": "Name", "type": "string", "format": "name", "description": "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically.", "priority": 0}),
    ];
    let printer = res
        .version(version)
        .map(|v| v.printer_columns.clone())
        .unwrap_or_default();
    if printer.is_empty() {
        cols.push(json!({"name": "Age", "type": "date", "format": "", "description": "CreationTimestamp is a timestamp representing the server time when this object was created.", "priority": 0}));
    }
    for c in printer {
        cols.push(json!({
            "name": c["name"], "type": c["type"].as_str().unwrap_or("string"), "format": c["format"].as_str().unwrap_or(""),
            "description": c["description"].as_str().unwrap_or(""), "priority": c["priority"].as_i64().unwrap_or(0),
        }));
    }
    cols
}

/// One row per object; `include` is the `includeObject` policy (None, Metadata, Object).
pub fn row(res: &ResourceInfo, version: &str, obj: &Value, include: &str) -> Value {
    let name = obj
        .pointer("/metadata/name")
        .cloned()
        .unwrap_or(Value::Null);
    let mut cells = vec![name];
    if crate::events::is_events(res) {
        cells = crate::events::cells(obj);
    }
    let printer = res
        .version(version)
        .map(|v| v.printer_columns.clone())
        .unwrap_or_default();
    if printer.is_empty() && !crate::events::is_events(res) {
        cells.push(cell(
            "date",
            obj.pointer("/metadata/creationTimestamp").cloned(),
        ));
    }
    for c in &printer {
        let path = c["jsonPath"].as_str().unwrap_or("");
        cells.push(cell(
            c["type"].as_str().unwrap_or("string"),
            eval_path(obj, path).into_iter().next(),
        ));
    }
    let mut r = json!({"cells": cells});
    match include {
        "None" => {}
        "Object" => r["object"] = obj.clone(),
        _ => {
            r["object"] = json!({
                "kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                "metadata": obj.get("metadata").cloned().unwrap_or(json!({})),
            })
        }
    }
    r
}

pub fn table(res: &ResourceInfo, version: &str, objs: &[Value], rv: &str, include: &str) -> Value {
    let rows: Vec<Value> = objs.iter().map(|o| row(res, version, o, include)).collect();
    json!({
        "kind": "Table", "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": rv},
        "columnDefinitions": columns(res, version),
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::VersionInfo;

    fn obj() -> Value {
        json!({"metadata": {"name": "m1", "creationTimestamp": "2020-01-01T00:00:00Z"},
               "spec": {"model": "qwen"},
               "status": {"phase": "Ready", "conditions": [{"type": "Synced", "status": "False"}, {"type": "Ready", "status": "True"}]}})
    }

    #[test]
    fn jsonpath_subset() {
        let o = obj();
        assert_eq!(eval_path(&o, ".status.phase"), vec![json!("Ready")]);
        assert_eq!(
            eval_path(&o, r#".status.conditions[?(@.type=="Ready")].status"#),
            vec![json!("True")]
        );
        assert_eq!(
            eval_path(&o, "{.status.conditions[0].type}"),
            vec![json!("Synced")]
        );
        assert_eq!(eval_path(&o, ".status.conditions[*].type").len(), 2);
        assert!(eval_path(&o, ".missing.x").is_empty());
        assert!(eval_path(&o, "garbage[").is_empty());
    }

    #[test]
    fn durations() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(150), "2m30s");
        assert_eq!(human_duration(3600 * 5 + 60), "5h1m");
        assert_eq!(human_duration(86400 * 3), "3d");
        assert_eq!(human_duration(86400 * 400), "400d");
    }

    #[test]
    fn printer_columns_table() {
        let res = ResourceInfo {
            group: "x.io".into(),
            plural: "ms".into(),
            singular: "m".into(),
            kind: "M".into(),
            list_kind: "MList".into(),
            namespaced: true,
            short_names: vec![],
            categories: vec![],
            custom: true,
            has_generation: true,
            versions: vec![VersionInfo {
                name: "v1".into(),
                schema: None,
                status_subresource: true,
                printer_columns: vec![
                    json!({"name": "Phase", "type": "string", "jsonPath": ".status.phase"}),
                    json!({"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"}),
                    json!({"name": "Job", "type": "string", "jsonPath": ".status.jobId"}),
                    json!({"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}),
                ],
            }],
        };
        let t = table(&res, "v1", &[obj()], "7", "Metadata");
        assert_eq!(t["columnDefinitions"][0]["name"], "Name");
        let cells = &t["rows"][0]["cells"];
        assert_eq!(cells[0], "m1");
        assert_eq!(cells[1], "Ready");
        assert_eq!(cells[2], "True");
        assert_eq!(cells[3], Value::Null);
        assert!(
            cells[4].as_str().unwrap().ends_with('d') || cells[4].as_str().unwrap().contains('y')
        );
        assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
        assert!(wants_table(
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
        ));
    }
}
