//! Custom resource handling against a CRD's structural `openAPIV3Schema`, in the order
//! kube-apiserver applies it:
//!
//! 1. decoding: prune unknown fields, then drop every `null` in a field that is neither
//!    `nullable: true` nor defaulted (`structuraldefaulting.PruneNonNullableNullsWithoutDefaults`,
//!    so `baseModel: null` answers `Required value`, not a type error);
//! 2. defaulting: a missing field, or a `null` in a non-nullable field, gets its default;
//! 3. schema validation as kube-openapi's `SchemaValidator` does it: per value, the type, then
//!    the string checks (maxLength, minLength, pattern: only the first failing one is reported),
//!    numbers (minimum, maximum), arrays (items, minItems, maxItems), `enum` (also after a type
//!    error, and on `null`), then objects (properties, then `required`);
//! 4. `x-kubernetes-list-type` set/map uniqueness (`structurallisttype`);
//! 5. CEL `x-kubernetes-validations`, only when steps 3-4 (and the metadata checks) found no
//!    blocking error (Required, Unsupported value, Too long, Too many, or a type error). When
//!    they did, and the schema has any rule, the rules are not run and the cause
//!    `<nil>: Invalid value: null: some validation rules were not checked because the object
//!    was invalid; correct the existing errors to complete validation` is added instead
//!    (`hasBlockingErr` in apiextensions-apiserver's `registry/customresource/strategy.go`).
//!
//! On update, validation ratchets as with kube-apiserver's default `CRDValidationRatcheting`:
//! schema errors inside a value equal to its correlated old value (same property, same
//! list-map key, same set element) are dropped, and so are failures of CEL rules that do not
//! use `oldSelf` on such values; transition rules (`oldSelf`) only run when the old value exists.

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

/// The cause kube-apiserver adds instead of running the CEL rules of an object with blocking
/// schema errors. Its field is a nil `*field.Path`, printed `<nil>`, and its value is nil.
pub const RULES_NOT_CHECKED: &str = "some validation rules were not checked because the object was invalid; correct the existing errors to complete validation";

/// Prune, default and validate `obj` (a whole custom resource) in place. `old` is the
/// stored object on update, used for ratcheting and as `oldSelf` by CEL transition rules.
pub fn process(schema: &Value, obj: &mut Value, old: Option<&Value>) -> Outcome {
    process_with(schema, obj, old, Vec::new())
}

/// [`process`], with the errors the metadata checks already found (they come first, and a
/// blocking one among them also keeps the CEL rules from running, as in kube-apiserver).
pub fn process_with(
    schema: &Value,
    obj: &mut Value,
    old: Option<&Value>,
    mut errors: Vec<Cause>,
) -> Outcome {
    let mut out = Outcome::default();
    prune(schema, obj, "", true, &mut out.unknown_fields);
    prune_nulls(schema, obj);
    default(schema, obj);
    validate(schema, obj, old, "", true, &mut errors);
    // List sets and maps: on update, only when the old object had no such error (ratcheting).
    let old_ok = old.is_none_or(|o| {
        let mut e = Vec::new();
        list_uniqueness(schema, o, "", &mut e);
        e.is_empty()
    });
    if old_ok {
        list_uniqueness(schema, obj, "", &mut errors);
    }
    if has_rules(schema) {
        if errors.iter().any(is_blocking) {
            errors.push(Cause {
                reason: "FieldValueInvalid".into(),
                field: "<nil>".into(),
                message: format!("Invalid value: null: {RULES_NOT_CHECKED}"),
            });
        } else {
            rules(schema, obj, old, "", false, &mut errors);
        }
    }
    out.errors = errors;
    out
}

/// `hasBlockingErr`: errors after which the object may not have the shape CEL rules expect.
fn is_blocking(c: &Cause) -> bool {
    matches!(
        c.reason.as_str(),
        "FieldValueNotSupported"
            | "FieldValueRequired"
            | "FieldValueTooLong"
            | "FieldValueTooMany"
            | "FieldValueTypeInvalid"
    )
}

/// Whether the schema has any `x-kubernetes-validations` (kube-apiserver has no CEL validator,
/// hence no "rules were not checked" cause, otherwise).
fn has_rules(schema: &Value) -> bool {
    if schema["x-kubernetes-validations"]
        .as_array()
        .is_some_and(|r| !r.is_empty())
    {
        return true;
    }
    schema["properties"]
        .as_object()
        .is_some_and(|p| p.values().any(has_rules))
        || schema.get("items").is_some_and(has_rules)
        || schema
            .get("additionalProperties")
            .filter(|a| a.is_object())
            .is_some_and(has_rules)
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

/// The schema of a field: its property, else `additionalProperties` when that is a schema.
fn field_schema<'a>(schema: &'a Value, key: &str) -> Option<&'a Value> {
    schema["properties"]
        .get(key)
        .or_else(|| schema.get("additionalProperties").filter(|a| a.is_object()))
}

/// A `null` that is neither allowed (`nullable`) nor replaced by a default.
fn droppable_null(v: &Value, schema: Option<&Value>) -> bool {
    v.is_null()
        && schema
            .is_some_and(|s| s["nullable"].as_bool() != Some(true) && s.get("default").is_none())
}

/// `structuraldefaulting.PruneNonNullableNullsWithoutDefaults`: removes object fields whose
/// value is a `null` the schema neither allows nor defaults (list items are kept).
fn prune_nulls(schema: &Value, v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|k, x| !droppable_null(x, field_schema(schema, k)));
            for (k, x) in m.iter_mut() {
                if let Some(s) = field_schema(schema, k) {
                    prune_nulls(s, x);
                }
            }
        }
        Value::Array(items) => {
            if let Some(is) = schema.get("items") {
                for x in items {
                    prune_nulls(is, x);
                }
            }
        }
        _ => {}
    }
}

/// A `null` in a non-nullable field that has a default: the default replaces it.
fn defaultable_null(v: &Value, schema: &Value) -> bool {
    v.is_null() && schema["nullable"].as_bool() != Some(true) && schema.get("default").is_some()
}

fn default(schema: &Value, v: &mut Value) {
    match v {
        Value::Object(m) => {
            if let Some(props) = schema["properties"].as_object() {
                for (k, ps) in props {
                    if let Some(d) = ps.get("default") {
                        if m.get(k).is_none_or(|x| defaultable_null(x, ps)) {
                            m.insert(k.clone(), d.clone());
                        }
                    }
                }
            }
            let props = schema["properties"].as_object();
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            for (k, x) in m.iter_mut() {
                if let Some(ps) = props.and_then(|p| p.get(k)) {
                    default(ps, x);
                } else if let Some(a) = additional {
                    if defaultable_null(x, a) {
                        *x = a["default"].clone();
                    }
                    default(a, x);
                }
            }
        }
        Value::Array(items) => {
            if let Some(is) = schema.get("items") {
                for x in items {
                    if defaultable_null(x, is) {
                        *x = is["default"].clone();
                    }
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

/// Schema validation of one value (no CEL), with ratcheting: errors inside a value equal to its
/// correlated old value are dropped (`ratchetingValueValidator`: `CachedDeepEqual`).
fn validate(
    schema: &Value,
    v: &Value,
    old: Option<&Value>,
    path: &str,
    root: bool,
    errs: &mut Vec<Cause>,
) {
    let start = errs.len();
    validate_value(schema, v, old, path, root, errs);
    if old.is_some_and(|o| o == v) {
        errs.truncate(start);
    }
}

fn type_error(path: &str, expected: &str, actual: &str) -> Cause {
    cause(
        "FieldValueTypeInvalid",
        path,
        format!(
            "Invalid value: \"{actual}\": {path} in body must be of type {expected}: \"{actual}\""
        ),
    )
}

/// kube-openapi `SchemaValidator.Validate`: type, string, number, array, enum, object.
fn validate_value(
    schema: &Value,
    v: &Value,
    old: Option<&Value>,
    path: &str,
    root: bool,
    errs: &mut Vec<Cause>,
) {
    let int_or_string = schema["x-kubernetes-int-or-string"].as_bool() == Some(true);
    let expected = if int_or_string {
        Some("integer-or-string")
    } else {
        schema["type"].as_str()
    };
    let type_matches = match v {
        Value::Null => schema["nullable"].as_bool() == Some(true) || expected.is_none(),
        _ if int_or_string => v.is_string() || type_ok("integer", v),
        _ => expected.is_none_or(|t| type_ok(t, v)),
    };
    if !type_matches {
        errs.push(type_error(path, expected.unwrap_or(""), json_type(v)));
    }
    // A null (nullable or not), or a value of the wrong type, gets the type and enum checks
    // only: the others do not apply to it.
    if v.is_null() || !type_matches {
        check_enum(schema, v, path, errs);
        return;
    }
    match v {
        Value::String(s) => {
            // stringValidator: maxLength, minLength, pattern; only the first failure.
            let len = s.chars().count() as u64;
            if let Some(max) = schema["maxLength"].as_u64().filter(|m| len > *m) {
                let unit = if max == 1 { "byte" } else { "bytes" };
                errs.push(cause(
                    "FieldValueTooLong",
                    path,
                    format!("Too long: may not be more than {max} {unit}"),
                ));
            } else if let Some(min) = schema["minLength"].as_u64().filter(|m| len < *m) {
                errs.push(invalid(
                    path,
                    v,
                    format!("{path} in body should be at least {min} chars long"),
                ));
            } else if let Some(p) = schema["pattern"].as_str() {
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
            // schemaSliceValidator: the items, then minItems, then maxItems.
            if let Some(is) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    let old_item = correlated_item(schema, old, item);
                    validate(is, item, old_item, &format!("{path}[{i}]"), false, errs);
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
            if let Some(max) = schema["maxItems"].as_u64() {
                if items.len() as u64 > max {
                    let unit = if max == 1 { "item" } else { "items" };
                    errs.push(cause(
                        "FieldValueTooMany",
                        path,
                        format!("Too many: {}: must have at most {max} {unit}", items.len()),
                    ));
                }
            }
        }
        _ => {}
    }
    check_enum(schema, v, path, errs);
    if let Value::Object(m) = v {
        // objectValidator: the properties, then `required`.
        let props = schema["properties"].as_object();
        for (k, x) in m {
            if root && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                continue;
            }
            let old_x = old.and_then(|o| o.get(k));
            if let Some(ps) = props.and_then(|p| p.get(k)) {
                validate(ps, x, old_x, &child(path, k), false, errs);
            } else if let Some(a) = schema.get("additionalProperties").filter(|a| a.is_object()) {
                validate(a, x, old_x, &child(path, k), false, errs);
            }
        }
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
    }
}

/// `basicCommonValidator`: the value must be one of `enum` (checked whatever its type).
fn check_enum(schema: &Value, v: &Value, path: &str, errs: &mut Vec<Cause>) {
    if let Some(allowed) = schema["enum"].as_array() {
        if !allowed.contains(v) {
            // field.NotSupported quotes every supported value (non-strings as their JSON).
            let list: Vec<String> = allowed
                .iter()
                .map(|a| match a {
                    Value::String(s) => Value::String(s.clone()).to_string(),
                    other => Value::String(other.to_string()).to_string(),
                })
                .collect();
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
}

fn list_keys(schema: &Value) -> Vec<String> {
    schema["x-kubernetes-list-map-keys"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|k| k.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn key_of(keys: &[String], item: &Value) -> Value {
    let mut m = Map::new();
    for k in keys {
        m.insert(k.clone(), item.get(k).cloned().unwrap_or(Value::Null));
    }
    Value::Object(m)
}

/// The old entry a list item correlates with, as kube-apiserver's `CorrelatedObject`: by key
/// in a list-map, by value in a set, none in an atomic list.
fn correlated_item<'a>(schema: &Value, old: Option<&'a Value>, item: &Value) -> Option<&'a Value> {
    let olds = old.and_then(|o| o.as_array())?;
    match schema["x-kubernetes-list-type"].as_str() {
        Some("map") => {
            let keys = list_keys(schema);
            let k = key_of(&keys, item);
            olds.iter().find(|o| key_of(&keys, o) == k)
        }
        Some("set") => olds.iter().find(|o| *o == item),
        _ => None,
    }
}

/// `structurallisttype.ValidateListSetsAndMaps`: no duplicate set element or map key.
fn list_uniqueness(schema: &Value, v: &Value, path: &str, errs: &mut Vec<Cause>) {
    match v {
        Value::Array(items) => {
            let keys = list_keys(schema);
            let list_type = schema["x-kubernetes-list-type"].as_str();
            let mut seen: Vec<Value> = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let id = match list_type {
                    Some("map") => key_of(&keys, item),
                    Some("set") => item.clone(),
                    _ => continue,
                };
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
            if let Some(is) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    list_uniqueness(is, item, &format!("{path}[{i}]"), errs);
                }
            }
        }
        Value::Object(m) => {
            for (k, x) in m {
                if let Some(s) = field_schema(schema, k) {
                    list_uniqueness(s, x, &child(path, k), errs);
                }
            }
        }
        _ => {}
    }
}

/// The CEL pass: a value's own rules, then its children's. `parent_unchanged` is whether the
/// nearest correlated ancestor equals its old value; failures of rules without `oldSelf` on
/// unchanged values are ratcheted away.
fn rules(
    schema: &Value,
    v: &Value,
    old: Option<&Value>,
    path: &str,
    parent_unchanged: bool,
    errs: &mut Vec<Cause>,
) {
    if v.is_null() {
        return;
    }
    let unchanged = match old {
        Some(o) => o == v,
        None => parent_unchanged,
    };
    if let Some(rs) = schema["x-kubernetes-validations"].as_array() {
        for rule in rs {
            let transition = rule["rule"].as_str().is_some_and(|r| r.contains("oldSelf"));
            if let Some(c) = eval_rule(rule, schema, v, old, path) {
                if transition || !unchanged {
                    errs.push(c);
                }
            }
        }
    }
    match v {
        Value::Object(m) => {
            let props = schema["properties"].as_object();
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            for (k, x) in m {
                if path.is_empty() && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                let old_x = old.and_then(|o| o.get(k));
                if let Some(s) = props.and_then(|p| p.get(k)).or(additional) {
                    rules(s, x, old_x, &child(path, k), unchanged, errs);
                }
            }
        }
        Value::Array(items) => {
            if let Some(is) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    let old_item = correlated_item(schema, old, item);
                    rules(is, item, old_item, &format!("{path}[{i}]"), unchanged, errs);
                }
            }
        }
        _ => {}
    }
}

/// serde_json → CEL value (integers stay signed ints so `self.x > 0` works), for a value of
/// `schema`. As kube-apiserver's `unstructuredMap`, a `null` in a property of an object with
/// `properties` is absent: `has(self.x)` is false for `x: null` (a nullable field).
pub fn to_cel(schema: &Value, v: &Value) -> cel::Value {
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
        Value::Array(a) => {
            let items = &schema["items"];
            cel::Value::List(
                a.iter()
                    .map(|x| to_cel(items, x))
                    .collect::<Vec<_>>()
                    .into(),
            )
        }
        Value::Object(m) => {
            let props = schema["properties"].as_object();
            let additional = &schema["additionalProperties"];
            let map: HashMap<String, cel::Value> = m
                .iter()
                .filter(|(_, x)| props.is_none() || !x.is_null())
                .map(|(k, x)| {
                    let s = props.and_then(|p| p.get(k)).unwrap_or(additional);
                    (k.clone(), to_cel(s, x))
                })
                .collect();
            cel::Value::from(map)
        }
    }
}

fn run_cel(
    expr: &str,
    schema: &Value,
    v: &Value,
    old: Option<&Value>,
) -> Result<cel::Value, String> {
    let program = cel::Program::compile(expr).map_err(|e| format!("compilation failed: {e}"))?;
    let mut ctx = cel::Context::default();
    ctx.add_variable_from_value("self", to_cel(schema, v));
    if let Some(o) = old {
        ctx.add_variable_from_value("oldSelf", to_cel(schema, o));
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
    let ty = schema["type"].as_str().unwrap_or("object");
    let detail = match run_cel(expr, schema, v, old) {
        Ok(cel::Value::Bool(true)) => return None,
        Ok(cel::Value::Bool(false)) => {
            let from_expr = rule["messageExpression"].as_str().and_then(|me| {
                match run_cel(me, schema, v, old) {
                    Ok(cel::Value::String(s)) if !s.trim().is_empty() => Some(s.to_string()),
                    _ => None,
                }
            });
            from_expr
                .or_else(|| rule["message"].as_str().map(str::to_string))
                .unwrap_or_else(|| format!("failed rule: {expr}"))
        }
        // A rule that cannot be evaluated is an error on the schema's type, whatever its reason.
        Ok(other) => {
            return Some(cause(
                "FieldValueInvalid",
                path,
                format!(
                    "Invalid value: \"{ty}\": rule {expr:?} did not evaluate to a bool: {other:?}"
                ),
            ))
        }
        Err(e) => {
            return Some(cause(
                "FieldValueInvalid",
                path,
                format!("Invalid value: \"{ty}\": rule {expr:?} evaluation error: {e}"),
            ))
        }
    };
    // As kube-apiserver's CEL validator: the value is shown for scalars only (an object's or a
    // list's is omitted; JSON prints it as Go's `ErrorBody` does), and a duplicate shows the
    // value without the rule's message.
    let value = (ty != "object" && ty != "array").then(|| v.to_string());
    let reason = rule["reason"].as_str().unwrap_or("FieldValueInvalid");
    let message = match (reason, value) {
        ("FieldValueForbidden", _) => format!("Forbidden: {detail}"),
        ("FieldValueRequired", _) => format!("Required value: {detail}"),
        ("FieldValueDuplicate", Some(value)) => format!("Duplicate value: {value}"),
        ("FieldValueDuplicate", None) => "Duplicate value".to_string(),
        (_, Some(value)) => format!("Invalid value: {value}: {detail}"),
        (_, None) => format!("Invalid value: {detail}"),
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
            && c.message == "Invalid value: \"other\": modelName is immutable"));
        assert!(errs
            .iter()
            .any(|c| c.field == "spec.jobId" && c.message == "Invalid value: jobId is immutable"));
        // Setting jobId for the first time is allowed.
        let old2 = obj(json!({"modelName": "m", "weightType": "lora"}));
        let mut o = obj(json!({"modelName": "m", "weightType": "lora", "jobId": "j"}));
        assert!(process(&s, &mut o, Some(&old2)).errors.is_empty());
    }

    #[test]
    fn cel_reads_a_null_property_as_absent() {
        // kube-apiserver's `unstructuredMap.Find`: a null-valued nullable property of an object
        // with properties is absent to CEL; a null under additionalProperties is a value.
        let s = json!({"type": "object", "properties": {"spec": {"type": "object",
            "x-kubernetes-validations": [{"rule": "has(self.a) != has(self.b)", "message": "one"}],
            "properties": {
                "a": {"type": "string", "nullable": true},
                "b": {"type": "string", "nullable": true},
                "m": {"type": "object", "additionalProperties": {"type": "string", "nullable": true},
                      "x-kubernetes-validations": [{"rule": "has(self.k)", "message": "k"}]}}}}});
        let mut o = json!({"spec": {"a": "x", "b": null, "m": {"k": null}}});
        assert!(process(&s, &mut o, None).errors.is_empty());
        let mut o = json!({"spec": {"a": null, "b": null, "m": {"k": null}}});
        let errs = process(&s, &mut o, None).errors;
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].field, "spec");
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
        // A duplicate shows the (scalar) value and not the message, as field.Duplicate does.
        let s = json!({"type": "object", "properties": {"spec": {"type": "object",
            "properties": {"n": {"type": "integer",
                "x-kubernetes-validations": [{"rule": "self < 3", "message": "m", "reason": "FieldValueDuplicate"}]}}}}});
        let errs = process(&s, &mut o, None).errors;
        assert_eq!(
            (errs[0].field.as_str(), errs[0].message.as_str()),
            ("spec.n", "Duplicate value: 5")
        );
        // A broken rule is an error, not a panic.
        let s = json!({"type": "object", "x-kubernetes-validations": [{"rule": "self.+++"}]});
        let mut o = json!({});
        assert_eq!(process(&s, &mut o, None).errors.len(), 1);
    }

    #[test]
    fn nulls_are_pruned_defaulted_or_kept_as_kube_does() {
        let s = json!({"type": "object", "properties": {"spec": {"type": "object",
        "required": ["name"],
        "properties": {
            "name": {"type": "string"},
            "source": {"type": "string", "default": "oss"},
            "note": {"type": "string", "nullable": true},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "tags": {"type": "array", "items": {"type": "string"}}
        }}}});
        let mut o = json!({"spec": {"name": null, "source": null, "note": null,
            "labels": {"a": null}, "tags": [null]}});
        let errs = process(&s, &mut o, None).errors;
        assert!(o["spec"].get("name").is_none());
        assert_eq!(o["spec"]["source"], "oss");
        assert!(o["spec"]["note"].is_null());
        assert_eq!(o["spec"]["labels"], json!({}));
        let got: Vec<String> = errs
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        // A list item is not pruned: its null is a type error.
        assert_eq!(
            got,
            vec![
                "spec.tags[0]: Invalid value: \"null\": spec.tags[0] in body must be of type string: \"null\"",
                "spec.name: Required value",
            ]
        );
    }

    #[test]
    fn blocking_errors_skip_cel_rules_and_say_so() {
        let s = schema();
        let old = obj(json!({"modelName": "m", "weightType": "lora", "jobId": "j1"}));
        // A type error: the (failing) immutability rules are not run.
        let mut o = obj(json!({"modelName": 5, "weightType": "lora", "jobId": "j2"}));
        let errs = process(&s, &mut o, Some(&old)).errors;
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert_eq!(errs[0].reason, "FieldValueTypeInvalid");
        assert_eq!(errs[1].field, "<nil>");
        assert_eq!(errs[1].reason, "FieldValueInvalid");
        assert_eq!(
            errs[1].message,
            format!("Invalid value: null: {RULES_NOT_CHECKED}")
        );
        // A non-blocking error (pattern) leaves the rules running.
        let mut o = obj(
            json!({"modelName": "m", "weightType": "lora", "jobId": "j2",
            "storage": {"objectKey": "nope"}}),
        );
        let errs = process(&s, &mut o, Some(&old)).errors;
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs
            .iter()
            .any(|c| c.message.contains("jobId is immutable")));
        assert!(errs.iter().all(|c| c.field != "<nil>"));
        // Metadata errors given by the caller count too.
        let mut o = obj(json!({"modelName": "m", "weightType": "lora"}));
        let name = Cause {
            reason: "FieldValueRequired".into(),
            field: "metadata.name".into(),
            message: "Required value: name or generateName is required".into(),
        };
        let errs = process_with(&s, &mut o, None, vec![name]).errors;
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert_eq!(errs[1].field, "<nil>");
        // Without any rule in the schema, there is no such cause.
        let plain = json!({"type": "object", "properties": {"spec": {"type": "object",
            "required": ["a"], "properties": {"a": {"type": "string"}}}}});
        let mut o = json!({"spec": {}});
        let errs = process(&plain, &mut o, None).errors;
        assert_eq!(errs.len(), 1, "{errs:?}");
    }

    #[test]
    fn one_string_error_and_enum_after_type() {
        let s = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 3, "pattern": "^[a-z]+$"},
            "kind": {"type": "string", "enum": ["A", "B"]},
            "n": {"type": "integer", "enum": [1, 2]}
        }}}});
        let run = |spec: Value| -> Vec<String> {
            let mut o = json!({"spec": spec});
            process(&s, &mut o, None)
                .errors
                .iter()
                .map(|c| format!("{}: {}", c.field, c.message))
                .collect()
        };
        assert_eq!(
            run(json!({"name": ""})),
            vec![
                "spec.name: Invalid value: \"\": spec.name in body should be at least 1 chars long"
            ]
        );
        assert_eq!(
            run(json!({"name": "ABCD"})),
            vec!["spec.name: Too long: may not be more than 3 bytes"]
        );
        assert_eq!(
            run(json!({"kind": true})),
            vec![
                "spec.kind: Invalid value: \"boolean\": spec.kind in body must be of type string: \"boolean\"",
                "spec.kind: Unsupported value: true: supported values: \"A\", \"B\"",
            ]
        );
        assert_eq!(
            run(json!({"n": 3})),
            vec!["spec.n: Unsupported value: 3: supported values: \"1\", \"2\""]
        );
    }

    #[test]
    fn update_ratchets_unchanged_values() {
        let s = schema();
        // Stored before the schema limited displayName: unchanged, it still passes.
        let old = obj(json!({"modelName": "m", "weightType": "lora", "displayName": "too long!"}));
        let mut o = old.clone();
        o["spec"]["jobId"] = json!("j");
        assert!(process(&s, &mut o, Some(&old)).errors.is_empty());
        // Changed, it is validated.
        let mut o = old.clone();
        o["spec"]["displayName"] = json!("longer still");
        let errs = process(&s, &mut o, Some(&old)).errors;
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert_eq!(errs[0].reason, "FieldValueTooLong");
    }
}
