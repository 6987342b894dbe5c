//! Custom resource handling against a CRD's structural `openAPIV3Schema`, in the order
//! kube-apiserver applies it: prune unknown fields, apply defaults, validate (types, enums,
//! required, lengths, patterns, bounds, list-map keys), then CEL `x-kubernetes-validations`
//! (transition rules with `oldSelf` only run on update when the old value exists).

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::status::Cause;

/// What processing an object against its schema found.
#[derive(Debug, Default)]
pub struct Outcome {
    pub errors: Vec<Cause>,
    /// Paths of fields the schema does not know (they have been pruned).
    pub unknown_fields: Vec<String>,
}

/// Prune, default and validate `obj` (a whole custom resource) in place. `old` is the
/// stored object on update, used as `oldSelf` by CEL transition rules.
pub fn process(schema: &Value, obj: &mut Value, old: Option<&Value>) -> Outcome {
    let mut out = Outcome::default();
    prune(schema, obj, "", true, &mut out.unknown_fields);
    default(schema, obj);
    validate(schema, obj, old, "", true, &mut out.errors);
    out
}

fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn preserves(schema: &Value) -> bool {
    schema["x-kubernetes-preserve-unknown-fields"].as_bool() == Some(true)
}

fn prune(schema: &Value, v: &mut Value, path: &str, root: bool, unknown: &mut Vec<String>) {
    let embedded = schema["x-kubernetes-embedded-resource"].as_bool() == Some(true);
    match v {
        Value::Object(m) => {
            let props = schema["properties"].as_object();
            let additional = schema.get("additionalProperties");
            let keys: Vec<String> = m.keys().cloned().collect();
            for k in keys {
                // apiVersion/kind/metadata are always kept at the root and on embedded resources.
                if (root || embedded) && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                if let Some(ps) = props.and_then(|p| p.get(&k)) {
                    if let Some(x) = m.get_mut(&k) {
                        prune(ps, x, &child(path, &k), false, unknown);
                    }
                } else if let Some(a) = additional.filter(|a| a.is_object()) {
                    if let Some(x) = m.get_mut(&k) {
                        prune(a, x, &child(path, &k), false, unknown);
                    }
                } else if additional.and_then(|a| a.as_bool()) == Some(true) || preserves(schema) {
                    // kept as is
                } else {
                    unknown.push(child(path, &k));
                    m.remove(&k);
                }
            }
        }
        Value::Array(items) => {
            if let Some(is) = schema.get("items") {
                for (i, x) in items.iter_mut().enumerate() {
                    prune(is, x, &format!("{path}[{i}]"), false, unknown);
                }
            }
        }
        _ => {}
    }
}

fn default(schema: &Value, v: &mut Value) {
    match v {
        Value::Object(m) => {
            if let Some(props) = schema["properties"].as_object() {
                for (k, ps) in props {
                    if let Some(d) = ps.get("default") {
                        if !m.contains_key(k)
                            || (m[k].is_null() && ps["nullable"].as_bool() != Some(true))
                        {
                            m.insert(k.clone(), d.clone());
                        }
                    }
                    if let Some(x) = m.get_mut(k) {
                        default(ps, x);
                    }
                }
            }
            if let Some(a) = schema.get("additionalProperties").filter(|a| a.is_object()) {
                let props = schema["properties"].as_object();
                for (k, x) in m.iter_mut() {
                    if props.is_none_or(|p| !p.contains_key(k)) {
                        default(a, x);
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(is) = schema.get("items") {
                for x in items {
                    default(is, x);
                }
            }
        }
        _ => {}
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_ok(t: &str, v: &Value) -> bool {
    match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "number" => v.is_number(),
        "integer" => v.is_i64() || v.is_u64() || v.as_f64().is_some_and(|f| f.fract() == 0.0),
        _ => true,
    }
}

fn cause(reason: &str, field: &str, message: String) -> Cause {
    Cause {
        reason: reason.into(),
        field: field.into(),
        message,
    }
}

fn invalid(field: &str, v: &Value, detail: String) -> Cause {
    cause(
        "FieldValueInvalid",
        field,
        format!("Invalid value: {}: {}", short_json(v), detail),
    )
}

fn short_json(v: &Value) -> String {
    match v {
        Value::Object(_) => "\"object\"".into(),
        Value::Array(_) => "\"array\"".into(),
        other => other.to_string(),
    }
}

fn num(v: &Value) -> Option<f64> {
    v.as_f64()
}

fn validate(
    schema: &Value,
    v: &Value,
    old: Option<&Value>,
    path: &str,
    root: bool,
    errs: &mut Vec<Cause>,
) {
    if v.is_null() && schema["nullable"].as_bool() == Some(true) {
        return;
    }
    let int_or_string = schema["x-kubernetes-int-or-string"].as_bool() == Some(true);
    if int_or_string {
        if !(v.is_string() || type_ok("integer", v)) {
            errs.push(cause(
                "FieldValueTypeInvalid",
                path,
                format!("Invalid value: \"{}\": {path} in body must be of type integer-or-string: \"{}\"", json_type(v), json_type(v)),
            ));
            return;
        }
    } else if let Some(t) = schema["type"].as_str() {
        if !type_ok(t, v) {
            errs.push(cause(
                "FieldValueTypeInvalid",
                path,
                format!(
                    "Invalid value: \"{}\": {path} in body must be of type {t}: \"{}\"",
                    json_type(v),
                    json_type(v)
                ),
            ));
            return;
        }
    }
    if let Some(allowed) = schema["enum"].as_array() {
        if !allowed.contains(v) {
            let list: Vec<String> = allowed.iter().map(|a| a.to_string()).collect();
            errs.push(cause(
                "FieldValueNotSupported",
                path,
                format!(
                    "Unsupported value: {}: supported values: {}",
                    v,
                    list.join(", ")
                ),
            ));
        }
    }
    match v {
        Value::String(s) => {
            if let Some(max) = schema["maxLength"].as_u64() {
                if s.chars().count() as u64 > max {
                    errs.push(cause(
                        "FieldValueTooLong",
                        path,
                        format!("Too long: may not be more than {max} bytes"),
                    ));
                }
            }
            if let Some(min) = schema["minLength"].as_u64() {
                if (s.chars().count() as u64) < min {
                    errs.push(invalid(
                        path,
                        v,
                        format!("{path} in body should be at least {min} chars long"),
                    ));
                }
            }
            if let Some(p) = schema["pattern"].as_str() {
                if let Ok(re) = regex::Regex::new(p) {
                    if !re.is_match(s) {
                        errs.push(invalid(
                            path,
                            v,
                            format!("{path} in body should match '{p}'"),
                        ));
                    }
                }
            }
        }
        Value::Number(_) => {
            let x = num(v).unwrap_or(0.0);
            let excl_min = schema["exclusiveMinimum"].as_bool() == Some(true);
            let excl_max = schema["exclusiveMaximum"].as_bool() == Some(true);
            if let Some(min) = num(&schema["minimum"]) {
                if (excl_min && x <= min) || (!excl_min && x < min) {
                    let rel = if excl_min {
                        "greater than"
                    } else {
                        "greater than or equal to"
                    };
                    errs.push(invalid(
                        path,
                        v,
                        format!("{path} in body should be {rel} {}", schema["minimum"]),
                    ));
                }
            }
            if let Some(max) = num(&schema["maximum"]) {
                if (excl_max && x >= max) || (!excl_max && x > max) {
                    let rel = if excl_max {
                        "less than"
                    } else {
                        "less than or equal to"
                    };
                    errs.push(invalid(
                        path,
                        v,
                        format!("{path} in body should be {rel} {}", schema["maximum"]),
                    ));
                }
            }
        }
        Value::Array(items) => {
            if let Some(max) = schema["maxItems"].as_u64() {
                if items.len() as u64 > max {
                    errs.push(cause(
                        "FieldValueTooMany",
                        path,
                        format!("Too many: {}: must have at most {max} items", items.len()),
                    ));
                }
            }
            if let Some(min) = schema["minItems"].as_u64() {
                if (items.len() as u64) < min {
                    errs.push(invalid(
                        path,
                        v,
                        format!("{path} in body should have at least {min} items"),
                    ));
                }
            }
            let keys: Vec<String> = schema["x-kubernetes-list-map-keys"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|k| k.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            let list_type = schema["x-kubernetes-list-type"]
                .as_str()
                .unwrap_or("atomic");
            let key_of = |item: &Value| -> Value {
                let mut m = Map::new();
                for k in &keys {
                    m.insert(k.clone(), item.get(k).cloned().unwrap_or(Value::Null));
                }
                Value::Object(m)
            };
            let mut seen: Vec<Value> = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let id = match list_type {
                    "map" => Some(key_of(item)),
                    "set" => Some(item.clone()),
                    _ => None,
                };
                if let Some(id) = id {
                    if seen.contains(&id) {
                        errs.push(cause(
                            "FieldValueDuplicate",
                            &format!("{path}[{i}]"),
                            format!("Duplicate value: {id}"),
                        ));
                    } else {
                        seen.push(id);
                    }
                }
            }
            if let Some(is) = schema.get("items") {
                let old_items: Option<&Vec<Value>> = old.and_then(|o| o.as_array());
                for (i, item) in items.iter().enumerate() {
                    // Only list-map entries correlate with an old entry (by key), as in kube-apiserver.
                    let old_item = if list_type == "map" {
                        old_items.and_then(|os| os.iter().find(|o| key_of(o) == key_of(item)))
                    } else {
                        None
                    };
                    validate(is, item, old_item, &format!("{path}[{i}]"), false, errs);
                }
            }
        }
        Value::Object(m) => {
            if let Some(req) = schema["required"].as_array() {
                for r in req.iter().filter_map(|r| r.as_str()) {
                    if !m.contains_key(r) {
                        errs.push(cause(
                            "FieldValueRequired",
                            &child(path, r),
                            "Required value".into(),
                        ));
                    }
                }
            }
            let props = schema["properties"].as_object();
            for (k, x) in m {
                if root && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                let old_x = old.and_then(|o| o.get(k));
                if let Some(ps) = props.and_then(|p| p.get(k)) {
                    validate(ps, x, old_x, &child(path, k), false, errs);
                } else if let Some(a) = schema.get("additionalProperties").filter(|a| a.is_object())
                {
                    validate(a, x, old_x, &child(path, k), false, errs);
                }
            }
        }
        _ => {}
    }
    // CEL rules run on values of the right type (a type error returned early above).
    if let Some(rules) = schema["x-kubernetes-validations"].as_array() {
        for rule in rules {
            if let Some(c) = eval_rule(rule, schema, v, old, path) {
                errs.push(c);
            }
        }
    }
}

/// serde_json → CEL value (integers stay signed ints so `self.x > 0` works).
pub fn to_cel(v: &Value) -> cel::Value {
    match v {
        Value::Null => cel::Value::Null,
        Value::Bool(b) => cel::Value::Bool(*b),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                cel::Value::Int(i)
            } else if let Some(u) = n.as_u64() {
                cel::Value::UInt(u)
            } else {
                cel::Value::Float(n.as_f64().unwrap_or(0.0))
            }
        }
        Value::String(s) => cel::Value::String(s.clone().into()),
        Value::Array(a) => cel::Value::List(a.iter().map(to_cel).collect::<Vec<_>>().into()),
        Value::Object(m) => {
            let map: HashMap<String, cel::Value> =
                m.iter().map(|(k, v)| (k.clone(), to_cel(v))).collect();
            cel::Value::from(map)
        }
    }
}

fn run_cel(expr: &str, v: &Value, old: Option<&Value>) -> Result<cel::Value, String> {
    let program = cel::Program::compile(expr).map_err(|e| format!("compilation failed: {e}"))?;
    let mut ctx = cel::Context::default();
    ctx.add_variable_from_value("self", to_cel(v));
    if let Some(o) = old {
        ctx.add_variable_from_value("oldSelf", to_cel(o));
    }
    program.execute(&ctx).map_err(|e| e.to_string())
}

/// Evaluate one `x-kubernetes-validations` entry; Some(cause) when it fails.
fn eval_rule(
    rule: &Value,
    schema: &Value,
    v: &Value,
    old: Option<&Value>,
    path: &str,
) -> Option<Cause> {
    let expr = rule["rule"].as_str()?;
    // Transition rules are skipped when there is no old value (create, or a new field).
    if expr.contains("oldSelf") && old.is_none() {
        return None;
    }
    let field = match rule["fieldPath"].as_str() {
        Some(fp) if fp.starts_with('.') || fp.starts_with('[') => {
            if path.is_empty() {
                fp.trim_start_matches('.').to_string()
            } else {
                format!("{path}{fp}")
            }
        }
        Some(fp) if !fp.is_empty() => child(path, fp),
        _ => path.to_string(),
    };
    let failure_message = match run_cel(expr, v, old) {
        Ok(cel::Value::Bool(true)) => return None,
        Ok(cel::Value::Bool(false)) => {
            let from_expr =
                rule["messageExpression"]
                    .as_str()
                    .and_then(|me| match run_cel(me, v, old) {
                        Ok(cel::Value::String(s)) if !s.trim().is_empty() => Some(s.to_string()),
                        _ => None,
                    });
            from_expr
                .or_else(|| rule["message"].as_str().map(str::to_string))
                .unwrap_or_else(|| format!("failed rule: {expr}"))
        }
        Ok(other) => format!("rule {expr:?} did not evaluate to a bool: {other:?}"),
        Err(e) => format!("rule {expr:?} evaluation error: {e}"),
    };
    let ty = schema["type"].as_str().unwrap_or("object");
    let reason = rule["reason"].as_str().unwrap_or("FieldValueInvalid");
    let message = match reason {
        "FieldValueForbidden" => format!("Forbidden: {failure_message}"),
        "FieldValueRequired" => format!("Required value: {failure_message}"),
        "FieldValueDuplicate" => format!("Duplicate value: {failure_message}"),
        _ => format!("Invalid value: \"{ty}\": {failure_message}"),
    };
    Some(Cause {
        reason: reason.to_string(),
        field,
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "required": ["modelName", "weightType"],
                    "x-kubernetes-validations": [
                        {"rule": "!has(oldSelf.jobId) || self.jobId == oldSelf.jobId", "message": "jobId is immutable", "fieldPath": ".jobId"}
                    ],
                    "properties": {
                        "modelName": {"type": "string", "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "modelName is immutable"}]},
                        "jobId": {"type": "string"},
                        "weightType": {"type": "string", "enum": ["lora", "full"]},
                        "source": {"type": "string", "default": "oss"},
                        "displayName": {"type": "string", "maxLength": 5, "minLength": 1},
                        "replicas": {"type": "integer", "minimum": 1, "maximum": 3},
                        "storage": {"type": "object", "properties": {"objectKey": {"type": "string", "pattern": "^.+/$"}}},
                        "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                        "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"}
                    }
                },
                "status": {
                    "type": "object",
                    "properties": {
                        "conditions": {
                            "type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"],
                            "items": {"type": "object", "required": ["type"], "properties": {"type": {"type": "string"}, "status": {"type": "string"}}}
                        }
                    }
                }
            }
        })
    }

    fn obj(spec: Value) -> Value {
        json!({"apiVersion": "x.io/v1", "kind": "X", "metadata": {"name": "a"}, "spec": spec})
    }

    #[test]
    fn prunes_and_defaults() {
        let mut o = obj(
            json!({"modelName": "m", "weightType": "lora", "foo": 1, "extra": {"any": {"thing": 1}}, "storage": {"bar": 2}}),
        );
        let out = process(&schema(), &mut o, None);
        assert!(out.errors.is_empty(), "{:?}", out.errors);
        assert_eq!(
            out.unknown_fields,
            vec!["spec.foo".to_string(), "spec.storage.bar".to_string()]
        );
        assert_eq!(o["spec"]["source"], "oss");
        assert_eq!(o["spec"]["extra"]["any"]["thing"], 1);
        assert!(o["spec"].get("foo").is_none());
        assert_eq!(o["metadata"]["name"], "a");
    }

    #[test]
    fn reports_structural_errors_like_kube() {
        let mut o = obj(json!({
            "weightType": "x", "displayName": "too long!", "replicas": 9,
            "storage": {"objectKey": "nope"}, "tags": ["a", "a"]
        }));
        let out = process(&schema(), &mut o, None);
        let got: Vec<(String, String, String)> = out
            .errors
            .iter()
            .map(|c| (c.reason.clone(), c.field.clone(), c.message.clone()))
            .collect();
        let want = |r: &str, f: &str, m: &str| (r.to_string(), f.to_string(), m.to_string());
        assert!(
            got.contains(&want(
                "FieldValueRequired",
                "spec.modelName",
                "Required value"
            )),
            "{got:?}"
        );
        assert!(got.contains(&want(
            "FieldValueNotSupported",
            "spec.weightType",
            "Unsupported value: \"x\": supported values: \"lora\", \"full\""
        )));
        assert!(got.contains(&want(
            "FieldValueTooLong",
            "spec.displayName",
            "Too long: may not be more than 5 bytes"
        )));
        assert!(got.contains(&want(
            "FieldValueInvalid",
            "spec.replicas",
            "Invalid value: 9: spec.replicas in body should be less than or equal to 3"
        )));
        assert!(got.contains(&want(
            "FieldValueInvalid",
            "spec.storage.objectKey",
            "Invalid value: \"nope\": spec.storage.objectKey in body should match '^.+/$'"
        )));
        assert!(got.contains(&want(
            "FieldValueDuplicate",
            "spec.tags[1]",
            "Duplicate value: \"a\""
        )));
    }

    #[test]
    fn type_errors_and_list_map_keys() {
        let mut o = obj(json!({"modelName": 3, "weightType": "lora"}));
        let out = process(&schema(), &mut o, None);
        assert_eq!(out.errors[0].reason, "FieldValueTypeInvalid");
        assert_eq!(out.errors[0].message, "Invalid value: \"integer\": spec.modelName in body must be of type string: \"integer\"");
        let mut o = obj(json!({"modelName": "m", "weightType": "lora"}));
        o["status"] = json!({"conditions": [{"type": "Ready"}, {"type": "Ready"}]});
        let out = process(&schema(), &mut o, None);
        assert_eq!(out.errors[0].field, "status.conditions[1]");
        assert_eq!(
            out.errors[0].message,
            "Duplicate value: {\"type\":\"Ready\"}"
        );
    }

    #[test]
    fn cel_transition_rules() {
        let s = schema();
        let old = obj(json!({"modelName": "m", "weightType": "lora", "jobId": "j1"}));
        // Create: transition rules do not run.
        let mut o = old.clone();
        assert!(process(&s, &mut o, None).errors.is_empty());
        // Unchanged update passes.
        let mut o = old.clone();
        assert!(process(&s, &mut o, Some(&old)).errors.is_empty());
        // Changing immutable fields fails with kube-style messages.
        let mut o = obj(json!({"modelName": "other", "weightType": "lora", "jobId": "j2"}));
        let errs = process(&s, &mut o, Some(&old)).errors;
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs.iter().any(|c| c.field == "spec.modelName"
            && c.message == "Invalid value: \"string\": modelName is immutable"));
        assert!(errs.iter().any(|c| c.field == "spec.jobId"
            && c.message == "Invalid value: \"object\": jobId is immutable"));
        // Setting jobId for the first time is allowed.
        let old2 = obj(json!({"modelName": "m", "weightType": "lora"}));
        let mut o = obj(json!({"modelName": "m", "weightType": "lora", "jobId": "j"}));
        assert!(process(&s, &mut o, Some(&old2)).errors.is_empty());
    }

    #[test]
    fn cel_message_expression_and_reason() {
        let s = json!({"type": "object", "properties": {"spec": {"type": "object",
            "x-kubernetes-validations": [{"rule": "self.n < 3", "messageExpression": "'n is ' + string(self.n)", "reason": "FieldValueForbidden"}],
            "properties": {"n": {"type": "integer"}}}}});
        let mut o = json!({"spec": {"n": 5}});
        let errs = process(&s, &mut o, None).errors;
        assert_eq!(errs[0].message, "Forbidden: n is 5");
        assert_eq!(errs[0].reason, "FieldValueForbidden");
        // A broken rule is an error, not a panic.
        let s = json!({"type": "object", "x-kubernetes-validations": [{"rule": "self.+++"}]});
        let mut o = json!({});
        assert_eq!(process(&s, &mut o, None).errors.len(), 1);
    }
}
