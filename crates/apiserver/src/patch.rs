//! PATCH bodies: JSON patch (RFC 6902), JSON merge patch (RFC 7386), strategic merge
//! patch and server-side apply.
//!
//! Simplifications (documented where used):
//! * Strategic merge patch is applied as a JSON merge patch for the built-in kinds (custom
//!   resources refuse it with 415, as in kube-apiserver). `$patch`,
//!   `$retainKeys`, `$setElementOrder/..` and `$deleteFromPrimitiveList/..` directives are
//!   dropped, so lists are replaced wholesale.
//! * Server-side apply merges the applied configuration over the live object (maps merge
//!   recursively, lists and scalars are replaced); field ownership is not tracked, so there
//!   are no apply conflicts and fields removed from an applied configuration stay set.

use serde_json::Value;

use crate::status::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    Json,
    Merge,
    StrategicMerge,
    Apply,
}

impl PatchKind {
    pub fn from_content_type(ct: &str) -> Option<PatchKind> {
        let base = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match base.as_str() {
            "application/json-patch+json" => Some(PatchKind::Json),
            "application/merge-patch+json" => Some(PatchKind::Merge),
            "application/strategic-merge-patch+json" => Some(PatchKind::StrategicMerge),
            "application/apply-patch+yaml"
            | "application/apply-patch+json"
            | "application/apply-patch+cbor" => Some(PatchKind::Apply),
            _ => None,
        }
    }
}

/// RFC 7386: objects merge, `null` deletes, everything else replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    json_patch::merge(target, patch);
}

/// Remove strategic-merge-patch directives (keys starting with `$`).
pub fn strip_directives(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|k, _| !k.starts_with('$'));
            for x in m.values_mut() {
                strip_directives(x);
            }
        }
        Value::Array(a) => {
            // A list entry that is only a `$patch: delete` directive would otherwise become `{}`.
            a.retain(|x| {
                !(x.as_object()
                    .is_some_and(|o| !o.is_empty() && o.keys().all(|k| k.starts_with('$'))))
            });
            for x in a {
                strip_directives(x);
            }
        }
        _ => {}
    }
}

/// Server-side apply, simplified: the applied config is merged over the live object.
pub fn apply_over(live: &mut Value, applied: &Value) {
    match (live, applied) {
        (Value::Object(l), Value::Object(a)) => {
            for (k, v) in a {
                match l.get_mut(k) {
                    Some(existing) if existing.is_object() && v.is_object() => {
                        apply_over(existing, v)
                    }
                    _ => {
                        l.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (l, a) => *l = a.clone(),
    }
}

/// Parse a request body as JSON, or YAML (JSON is YAML) when the content type says so.
pub fn parse_body(body: &[u8], yaml: bool) -> Result<Value, ApiError> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(ApiError::bad_request("the body of the request was empty"));
    }
    if yaml {
        serde_saphyr::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding JSON: {e}")))
    }
}

/// RFC 6902 as kube-apiserver applies it (evanphx/json-patch): a `test` op whose value is
/// `null` also succeeds when the path does not exist (kube-rs's finalizer helper relies on
/// it: `test /metadata/finalizers == null` then `add`). Ops apply in order, so a `test`
/// sees the document as earlier ops left it.
fn json_patch_evanphx(
    doc: &mut Value,
    p: &json_patch::Patch,
) -> Result<(), json_patch::PatchError> {
    for op in p.iter() {
        if let json_patch::PatchOperation::Test(t) = op {
            let path = t.path.as_str();
            let parent = path.rsplit_once('/').map_or("", |(p, _)| p);
            // As in evanphx, the parent must exist; only the last segment may be missing.
            if t.value.is_null() && doc.pointer(path).is_none() && doc.pointer(parent).is_some() {
                continue;
            }
        }
        json_patch::patch(doc, std::slice::from_ref(op))?;
    }
    Ok(())
}

/// Apply a non-apply patch to `current`, returning the patched object.
pub fn apply_patch(kind: PatchKind, current: &Value, body: &[u8]) -> Result<Value, ApiError> {
    let mut doc = current.clone();
    match kind {
        PatchKind::Json => {
            let p: json_patch::Patch = serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("error decoding JSON patch: {e}")))?;
            // kube-apiserver 1.37 says no more than this about a failed operation.
            json_patch_evanphx(&mut doc, &p).map_err(|_| {
                ApiError::new(
                    422,
                    "Invalid",
                    "the server rejected our request due to an error in our request",
                )
            })?;
        }
        PatchKind::Merge | PatchKind::StrategicMerge => {
            let mut p = parse_body(body, false)?;
            if !p.is_object() {
                return Err(ApiError::bad_request("a merge patch must be a JSON object"));
            }
            if kind == PatchKind::StrategicMerge {
                strip_directives(&mut p);
            }
            merge_patch(&mut doc, &p);
        }
        PatchKind::Apply => {
            let p = parse_body(body, true)?;
            if !p.is_object() {
                return Err(ApiError::bad_request(
                    "an apply configuration must be an object",
                ));
            }
            apply_over(&mut doc, &p);
        }
    }
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn content_types() {
        assert_eq!(
            PatchKind::from_content_type("application/merge-patch+json; charset=utf-8"),
            Some(PatchKind::Merge)
        );
        assert_eq!(
            PatchKind::from_content_type("application/apply-patch+yaml"),
            Some(PatchKind::Apply)
        );
        assert_eq!(PatchKind::from_content_type("text/plain"), None);
    }

    #[test]
    fn json_patch_with_test_op() {
        let cur = json!({"spec": {"a": 1}});
        let ok = apply_patch(PatchKind::Json, &cur, br#"[{"op":"test","path":"/spec/a","value":1},{"op":"replace","path":"/spec/a","value":2}]"#).unwrap();
        assert_eq!(ok["spec"]["a"], 2);
        let err = apply_patch(
            PatchKind::Json,
            &cur,
            br#"[{"op":"test","path":"/spec/a","value":5}]"#,
        )
        .unwrap_err();
        assert_eq!(err.code, 422);
        // evanphx/json-patch: testing for null succeeds on a missing path (not on a present one).
        let with_meta = json!({"metadata": {"name": "a"}});
        let ok = apply_patch(
            PatchKind::Json,
            &with_meta,
            br#"[{"op":"test","path":"/metadata/finalizers","value":null},{"op":"add","path":"/metadata/finalizers","value":["x"]}]"#,
        )
        .unwrap();
        assert_eq!(ok["metadata"]["finalizers"], json!(["x"]));
        let err = apply_patch(
            PatchKind::Json,
            &ok,
            br#"[{"op":"test","path":"/metadata/finalizers","value":null}]"#,
        )
        .unwrap_err();
        assert_eq!(err.code, 422);
        // A missing parent still fails.
        let err = apply_patch(
            PatchKind::Json,
            &cur,
            br#"[{"op":"test","path":"/metadata/finalizers","value":null}]"#,
        )
        .unwrap_err();
        assert_eq!(err.code, 422);
        let err = apply_patch(PatchKind::Json, &cur, b"not json").unwrap_err();
        assert_eq!(err.code, 400);
    }

    #[test]
    fn merge_and_strategic() {
        let cur = json!({"spec": {"a": 1, "b": 2}, "metadata": {"finalizers": ["x"]}});
        let out = apply_patch(PatchKind::Merge, &cur, br#"{"spec":{"a":null,"c":3}}"#).unwrap();
        assert_eq!(out["spec"], json!({"b": 2, "c": 3}));
        let out = apply_patch(
            PatchKind::StrategicMerge,
            &cur,
            br#"{"$setElementOrder/finalizers":["y"],"metadata":{"finalizers":["y"]},"spec":{"b":null}}"#,
        )
        .unwrap();
        assert_eq!(out["metadata"]["finalizers"], json!(["y"]));
        assert_eq!(out["spec"], json!({"a": 1}));
        assert!(apply_patch(PatchKind::Merge, &cur, b"[1]").is_err());
    }

    #[test]
    fn apply_merges_yaml_over_live() {
        let cur = json!({"spec": {"a": 1, "list": [1, 2]}, "status": {"phase": "x"}});
        let out = apply_patch(PatchKind::Apply, &cur, b"spec:\n  b: two\n  list: [3]\n").unwrap();
        assert_eq!(out["spec"], json!({"a": 1, "b": "two", "list": [3]}));
        assert_eq!(out["status"]["phase"], "x");
        assert!(apply_patch(PatchKind::Apply, &cur, b"{{{{").is_err());
        // kubectl sends its apply configuration as JSON under the YAML content type.
        let json_body =
            br#"{"apiVersion":"v1","spec":{"b":"\u00e9","n":1.5,"on":"yes","t":true,"z":null}}"#;
        let out = apply_patch(PatchKind::Apply, &cur, json_body).unwrap();
        assert_eq!(
            out["spec"],
            json!({"a": 1, "b": "é", "list": [1, 2], "n": 1.5, "on": "yes", "t": true, "z": null})
        );
        // As sigs.k8s.io/yaml (YAML 1.1) reads them: bare `yes` is a bool, `~` is null.
        let out = apply_patch(
            PatchKind::Apply,
            &cur,
            b"spec:\n  v: yes\n  q: 'yes'\n  z: ~\n",
        )
        .unwrap();
        assert_eq!(
            (&out["spec"]["v"], &out["spec"]["q"]),
            (&json!(true), &json!("yes"))
        );
        assert!(out["spec"]["z"].is_null());
        let big = format!(
            "{{\"spec\":{{\"items\":[{}]}}}}",
            vec![r#"{"name":"x","value":"y"}"#; 20_000].join(",")
        );
        let out = apply_patch(PatchKind::Apply, &cur, big.as_bytes()).unwrap();
        assert_eq!(out["spec"]["items"].as_array().map(Vec::len), Some(20_000));
    }
}
