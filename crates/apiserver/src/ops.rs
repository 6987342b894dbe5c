//! Object operations with kube-apiserver semantics: create, update (main resource and
//! `/status`), patch, delete with finalizers, namespace lifecycle, CRD registration side
//! effects, and admission (defaults, schema + CEL validation, generation).

use serde_json::{json, Map, Value};

use crate::discovery::{builtins, ResourceInfo};
use crate::patch::{self, PatchKind};
use crate::status::{ApiError, Cause};
use crate::store::{gr, rv_of, GroupResource, Store};
use crate::{crd, validation};

/// The whole server state: objects plus the resources currently served.
pub struct State {
    pub store: Store,
    pub resources: Vec<ResourceInfo>,
    /// The resourceVersion from which each custom resource is served: kube-apiserver's watch
    /// cache for it starts there, and a watch from an older one is too old.
    pub served_since: std::collections::HashMap<GroupResource, u64>,
}

pub const CRD_GROUP: &str = "apiextensions.k8s.io";
pub const CRD_RESOURCE: &str = "customresourcedefinitions";

impl State {
    pub fn new(history_limit: usize) -> Self {
        let mut s = State {
            store: Store::new(history_limit),
            resources: builtins(),
            served_since: Default::default(),
        };
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}});
        if let Some(t) = s.target("", "v1", "namespaces", None, None, None) {
            let _ = create(&mut s, &t, ns, &WriteOpts::default());
        }
        s
    }

    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceInfo> {
        self.resources
            .iter()
            .find(|r| r.group == group && r.plural == plural && r.version(version).is_some())
    }

    pub fn target(
        &self,
        group: &str,
        version: &str,
        plural: &str,
        ns: Option<&str>,
        name: Option<&str>,
        sub: Option<&str>,
    ) -> Option<Target> {
        Some(Target {
            res: self.find(group, version, plural)?.clone(),
            version: version.to_string(),
            namespace: ns.map(str::to_string),
            name: name.map(str::to_string),
            subresource: sub.map(str::to_string),
        })
    }
}

/// What a request addresses.
#[derive(Debug, Clone)]
pub struct Target {
    pub res: ResourceInfo,
    pub version: String,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
}

impl Target {
    fn ns(&self) -> &str {
        if self.res.namespaced {
            self.namespace.as_deref().unwrap_or("")
        } else {
            ""
        }
    }
    fn name(&self) -> &str {
        self.name.as_deref().unwrap_or("")
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FieldValidation {
    Ignore,
    /// kube-apiserver's default.
    #[default]
    Warn,
    Strict,
}

impl FieldValidation {
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        match s {
            "" | "Warn" => Ok(FieldValidation::Warn),
            "Ignore" => Ok(FieldValidation::Ignore),
            "Strict" => Ok(FieldValidation::Strict),
            other => Err(ApiError::bad_request(format!(
                "fieldValidation must be one of Ignore, Warn, Strict (got {other:?})"
            ))),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct WriteOpts {
    pub field_validation: FieldValidation,
    pub field_manager: Option<String>,
    pub force: bool,
    pub dry_run: bool,
}

/// A successful write: HTTP code, the object, and `Warning` header texts.
#[derive(Debug, Clone)]
pub struct Written {
    pub code: u16,
    pub object: Value,
    pub warnings: Vec<String>,
}

pub fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.get("metadata").is_some_and(|m| m.is_object()) {
        obj["metadata"] = json!({});
    }
    obj["metadata"]
        .as_object_mut()
        .expect("metadata is an object")
}

fn meta_str<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj.get("metadata")
        .and_then(|m| m.get(key))
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty())
}

fn finalizers(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/finalizers")
        .and_then(|f| f.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Present a stored object at the requested version (only events are converted, see
/// [`crate::events`]; for everything else only apiVersion changes).
pub fn output(res: &ResourceInfo, version: &str, obj: Value) -> Value {
    if crate::events::is_events_v1(res) {
        return crate::events::with_zero_values(crate::events::core_to_v1(obj), true);
    }
    let obj = stamp(res, version, obj);
    if crate::events::is_events(res) {
        return crate::events::with_zero_values(obj, false);
    }
    obj
}

/// A request body (in the requested version's shape) in the stored shape.
pub fn to_storage(res: &ResourceInfo, version: &str, obj: Value) -> Value {
    if crate::events::is_events_v1(res) {
        return crate::events::v1_to_core(obj);
    }
    stamp(res, version, obj)
}

/// The apiVersion and kind of `res` at `version` on `obj`.
fn stamp(res: &ResourceInfo, version: &str, mut obj: Value) -> Value {
    if let Some(o) = obj.as_object_mut() {
        o.insert("apiVersion".into(), json!(res.api_version(version)));
        o.insert("kind".into(), json!(res.kind));
    }
    obj
}

/// Stamp the stored apiVersion/kind on an object already in the stored shape.
fn stored_type(res: &ResourceInfo, version: &str, mut obj: Value) -> Value {
    if crate::events::is_events_v1(res) {
        if let Some(o) = obj.as_object_mut() {
            o.insert("apiVersion".into(), json!("v1"));
            o.insert("kind".into(), json!("Event"));
        }
        return obj;
    }
    stamp(res, version, obj)
}

fn dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(dns_label)
}

fn name_errors(res: &ResourceInfo, name: &str) -> Vec<Cause> {
    if name.is_empty() {
        return vec![Cause {
            reason: "FieldValueRequired".into(),
            field: "metadata.name".into(),
            message: "Required value: name or generateName is required".into(),
        }];
    }
    if res.plural == "namespaces" {
        if !dns_label(name) {
            return vec![Cause {
                reason: "FieldValueInvalid".into(),
                field: "metadata.name".into(),
                message: format!("Invalid value: \"{name}\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"),
            }];
        }
    } else if !dns_subdomain(name) {
        return vec![Cause {
            reason: "FieldValueInvalid".into(),
            field: "metadata.name".into(),
            message: format!("Invalid value: \"{name}\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"),
        }];
    }
    Vec::new()
}

fn random_suffix() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..5)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Standard base64 with padding (Secret `data`).
pub fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Kind-specific defaulting and validation shared by create and update.
fn admit(
    state: &State,
    t: &Target,
    obj: &mut Value,
    old: Option<&Value>,
    opts: &WriteOpts,
) -> Result<Vec<String>, ApiError> {
    let res = &t.res;
    let name = meta_str(obj, "name").unwrap_or("").to_string();
    let mut warnings = Vec::new();
    match (res.group.as_str(), res.plural.as_str()) {
        ("", "namespaces") => {
            if old.is_none() {
                obj["spec"] = json!({"finalizers": ["kubernetes"]});
                obj["status"] = json!({"phase": "Active"});
            }
            let labels = meta_mut(obj).entry("labels").or_insert_with(|| json!({}));
            if let Some(l) = labels.as_object_mut() {
                l.insert("kubernetes.io/metadata.name".into(), json!(name));
            }
        }
        ("coordination.k8s.io", "leases") => {
            let duration = obj.pointer("/spec/leaseDurationSeconds");
            if let Some(d) = duration.and_then(Value::as_i64).filter(|d| *d <= 0) {
                return Err(ApiError::invalid(
                    "Lease",
                    "coordination.k8s.io",
                    &name,
                    vec![Cause {
                        reason: "FieldValueInvalid".into(),
                        field: "spec.leaseDurationSeconds".into(),
                        message: format!("Invalid value: {d}: must be greater than 0"),
                    }],
                ));
            }
        }
        ("", "secrets") => {
            if let Some(Value::Object(sd)) =
                obj.as_object_mut().and_then(|o| o.remove("stringData"))
            {
                let data = obj
                    .as_object_mut()
                    .map(|o| o.entry("data").or_insert_with(|| json!({})));
                if let Some(Value::Object(d)) = data {
                    for (k, v) in sd {
                        d.insert(k, json!(base64(v.as_str().unwrap_or("").as_bytes())));
                    }
                }
            }
            if obj.get("type").is_none_or(|t| t.is_null()) {
                obj["type"] = json!("Opaque");
            }
        }
        (CRD_GROUP, CRD_RESOURCE) => {
            crd::apply_defaults(obj);
            let errs = crd::validate(obj);
            if !errs.is_empty() {
                return Err(ApiError::invalid(
                    "CustomResourceDefinition",
                    CRD_GROUP,
                    &name,
                    errs,
                ));
            }
            if let Some(info) = crd::resource_info(obj) {
                let clash = state
                    .resources
                    .iter()
                    .any(|r| r.group == info.group && r.plural == info.plural && !r.custom);
                if clash {
                    return Err(ApiError::invalid(
                        "CustomResourceDefinition",
                        CRD_GROUP,
                        &name,
                        vec![Cause {
                            reason: "FieldValueInvalid".into(),
                            field: "spec.group".into(),
                            message: format!(
                                "Invalid value: \"{}\": conflicts with a built-in resource",
                                info.group
                            ),
                        }],
                    ));
                }
            }
            let since = old
                .and_then(|o| o.pointer("/status/conditions/0/lastTransitionTime"))
                .and_then(|v| v.as_str())
                .map(str::to_string)
                .unwrap_or_else(now);
            obj["status"] = crd::established_status(obj, &since);
        }
        _ => {}
    }
    let mut errs = name_errors(res, &name);
    if crate::events::is_events(res) && old.is_none() {
        errs.extend(crate::events::validate_create(
            obj,
            crate::events::is_events_v1(res),
        ));
    }
    if res.custom {
        if let Some(schema) = res.version(&t.version).and_then(|v| v.schema.clone()) {
            // The metadata errors come first and count for the CEL "blocking error" check.
            let out = validation::process_with(&schema, obj, old, std::mem::take(&mut errs));
            if !out.unknown_fields.is_empty() {
                match opts.field_validation {
                    FieldValidation::Strict => {
                        let list: Vec<String> = out
                            .unknown_fields
                            .iter()
                            .map(|f| format!("unknown field \"{f}\""))
                            .collect();
                        return Err(ApiError::bad_request(format!(
                            "{} in version \"{}\" cannot be handled as a {}: strict decoding error: {}",
                            res.kind,
                            t.version,
                            res.kind,
                            list.join(", ")
                        )));
                    }
                    FieldValidation::Warn => warnings.extend(
                        out.unknown_fields
                            .iter()
                            .map(|f| format!("unknown field \"{f}\"")),
                    ),
                    FieldValidation::Ignore => {}
                }
            }
            errs.extend(out.errors);
        }
    }
    if !errs.is_empty() {
        // Both event APIs refuse as the core kind `Event`.
        let group = if crate::events::is_events(res) {
            ""
        } else {
            &res.group
        };
        return Err(ApiError::invalid(&res.kind, group, &name, errs));
    }
    Ok(warnings)
}

fn check_namespace(state: &State, t: &Target, name: &str) -> Result<(), ApiError> {
    if !t.res.namespaced {
        return Ok(());
    }
    let ns = t.ns();
    match state.store.get(&gr("", "namespaces"), "", ns) {
        None => Err(ApiError::not_found("", "namespaces", ns)),
        Some(n) if n.pointer("/metadata/deletionTimestamp").is_some() => {
            let mut e = ApiError::forbidden(format!(
                "{} \"{}\" is forbidden: unable to create new content in namespace {} because it is being terminated",
                t.res.qualified(),
                name,
                ns
            ));
            // The NamespaceLifecycle admission plugin's details and cause.
            let mut d = json!({"name": name, "kind": t.res.plural});
            if !t.res.group.is_empty() {
                d["group"] = json!(t.res.group);
            }
            e.details = Some(d);
            e.causes = vec![Cause {
                reason: "NamespaceTerminating".into(),
                field: "metadata.namespace".into(),
                message: format!("namespace {ns} is being terminated"),
            }];
            Err(e)
        }
        Some(_) => Ok(()),
    }
}

/// POST: create a new object.
pub fn create(
    state: &mut State,
    t: &Target,
    body: Value,
    opts: &WriteOpts,
) -> Result<Written, ApiError> {
    let res = t.res.clone();
    let mut obj = body;
    if !obj.is_object() {
        return Err(ApiError::bad_request(
            "the object provided is not a JSON object",
        ));
    }
    if let Some(k) = obj.get("kind").and_then(|k| k.as_str()) {
        if k != res.kind {
            return Err(ApiError::bad_request(format!(
                "the kind in the body ({k}) does not match the kind of the resource ({})",
                res.kind
            )));
        }
    }
    obj = to_storage(&res, &t.version, obj);
    let meta = meta_mut(&mut obj);
    if meta
        .get("name")
        .and_then(|n| n.as_str())
        .is_none_or(|n| n.is_empty())
    {
        // Without generateName either, the name stays empty and is reported with the rest of
        // the object's errors (after strict decoding), as kube-apiserver does:
        // `metadata.name: Required value: name or generateName is required`.
        if let Some(g) = meta
            .get("generateName")
            .and_then(|n| n.as_str())
            .filter(|g| !g.is_empty())
        {
            let name = format!("{g}{}", random_suffix());
            meta.insert("name".into(), json!(name));
        }
    }
    if meta
        .get("resourceVersion")
        .and_then(|v| v.as_str())
        .is_some_and(|v| !v.is_empty())
    {
        return Err(ApiError::bad_request(
            "resourceVersion should not be set on objects to be created",
        ));
    }
    if res.namespaced {
        let path_ns = t.ns().to_string();
        match meta.get("namespace").and_then(|n| n.as_str()) {
            Some(n) if !n.is_empty() && n != path_ns => {
                return Err(ApiError::bad_request("the namespace of the provided object does not match the namespace sent on the request"));
            }
            _ => {
                meta.insert("namespace".into(), json!(path_ns));
            }
        }
    } else {
        meta.remove("namespace");
    }
    for k in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
        "resourceVersion",
    ] {
        meta.remove(k);
    }
    meta.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
    meta.insert("creationTimestamp".into(), json!(now()));
    if res.has_generation {
        meta.insert("generation".into(), json!(1));
    }
    let name = meta_str(&obj, "name").unwrap_or("").to_string();
    if res.custom
        && res
            .version(&t.version)
            .is_some_and(|v| v.status_subresource)
    {
        // With a status subresource, status is not settable on create (kube-apiserver resets it).
        if let Some(o) = obj.as_object_mut() {
            o.remove("status");
        }
    }
    let warnings = admit(state, t, &mut obj, None, opts)?;
    check_namespace(state, t, &name)?;
    if state.store.get(&res.gr(), t.ns(), &name).is_some() {
        return Err(ApiError::already_exists(&res.group, &res.plural, &name));
    }
    if opts.dry_run {
        return Ok(Written {
            code: 201,
            object: output(&res, &t.version, obj),
            warnings,
        });
    }
    let stored = state.store.insert(&res.gr(), obj);
    after_write(state, &res, &stored);
    Ok(Written {
        code: 201,
        object: output(&res, &t.version, stored),
        warnings,
    })
}

/// Side effects of a stored write (CRDs start or change serving).
fn after_write(state: &mut State, res: &ResourceInfo, obj: &Value) {
    if res.group == CRD_GROUP && res.plural == CRD_RESOURCE {
        if let Some(info) = crd::resource_info(obj) {
            state
                .resources
                .retain(|r| !(r.custom && r.group == info.group && r.plural == info.plural));
            let since = state.store.current_rv();
            state.served_since.entry(info.gr()).or_insert(since);
            state.resources.push(info);
        }
    }
}

/// Side effects of a removal: CRD resources stop serving, terminating namespaces may finish.
fn after_remove(state: &mut State, g: &GroupResource, obj: &Value) {
    if g.0 == CRD_GROUP && g.1 == CRD_RESOURCE {
        if let Some(info) = crd::resource_info(obj) {
            // Simplification: the CRD's objects are dropped at once (with DELETED events), finalizers ignored.
            state.store.purge_resource(&info.gr());
            state.served_since.remove(&info.gr());
            state
                .resources
                .retain(|r| !(r.custom && r.group == info.group && r.plural == info.plural));
        }
    }
    if let Some(ns) = meta_str(obj, "namespace").map(str::to_string) {
        maybe_finish_namespace(state, &ns);
    }
}

fn maybe_finish_namespace(state: &mut State, ns: &str) {
    let nsg = gr("", "namespaces");
    let Some(n) = state.store.get(&nsg, "", ns) else {
        return;
    };
    if n.pointer("/metadata/deletionTimestamp").is_none() || !finalizers(n).is_empty() {
        return;
    }
    if state.store.resources_in_namespace(ns).is_empty() {
        state.store.remove(&nsg, "", ns);
    }
}

/// Strip what does not count as a spec change for `metadata.generation`.
fn spec_part(res: &ResourceInfo, obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(m) = o.as_object_mut() {
        m.remove("metadata");
        m.remove("status");
        m.remove("apiVersion");
        m.remove("kind");
    }
    if !res.custom {
        return o.get("spec").cloned().unwrap_or(Value::Null);
    }
    o
}

/// Shared by PUT and PATCH: turn `new` into the stored successor of `old`.
fn update_from(
    state: &mut State,
    t: &Target,
    old: Value,
    new: Value,
    opts: &WriteOpts,
    rv_checked: bool,
) -> Result<Written, ApiError> {
    let res = t.res.clone();
    if !new.is_object() {
        return Err(ApiError::bad_request(
            "the object provided is not a JSON object",
        ));
    }
    let new = to_storage(&res, &t.version, new);
    let name = t.name().to_string();
    if let Some(n) = meta_str(&new, "name") {
        if n != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({n}) does not match the name on the URL ({name})"
            )));
        }
    }
    if res.namespaced {
        if let Some(n) = meta_str(&new, "namespace") {
            if n != t.ns() {
                return Err(ApiError::bad_request("the namespace of the provided object does not match the namespace sent on the request"));
            }
        }
    }
    let old_rv = rv_of(&old);
    if !rv_checked {
        match meta_str(&new, "resourceVersion") {
            Some(rv) if rv.parse::<u64>().ok() != Some(old_rv) => {
                return Err(ApiError::conflict(&res.group, &res.plural, &name))
            }
            Some(_) => {}
            // kube-apiserver names the resource (not the kind) in this one.
            None if res.custom => {
                return Err(ApiError::invalid(
                    &res.plural,
                    &res.group,
                    &name,
                    vec![Cause {
                        reason: "FieldValueInvalid".into(),
                        field: "metadata.resourceVersion".into(),
                        message: "Invalid value: 0: must be specified for an update".into(),
                    }],
                ))
            }
            None => {}
        }
    }
    let status_sub = res
        .version(&t.version)
        .is_some_and(|v| v.status_subresource);
    let mut obj = if t.subresource.as_deref() == Some("status") {
        // Writes to /status change only status.
        let mut o = old.clone();
        match new.get("status") {
            Some(s) => o["status"] = s.clone(),
            None => {
                if let Some(m) = o.as_object_mut() {
                    m.remove("status");
                }
            }
        }
        o
    } else {
        let mut o = new;
        let old_meta = old.get("metadata").cloned().unwrap_or(json!({}));
        let m = meta_mut(&mut o);
        for k in [
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "namespace",
            "name",
        ] {
            match old_meta.get(k) {
                Some(v) => m.insert(k.into(), v.clone()),
                None => m.remove(k),
            };
        }
        if status_sub {
            // Writes to the main resource ignore status changes.
            match old.get("status") {
                Some(s) => o["status"] = s.clone(),
                None => {
                    if let Some(map) = o.as_object_mut() {
                        map.remove("status");
                    }
                }
            }
        }
        o
    };
    if old.pointer("/metadata/deletionTimestamp").is_some() {
        let before = finalizers(&old);
        let added: Vec<String> = finalizers(&obj)
            .into_iter()
            .filter(|f| !before.contains(f))
            .collect();
        if !added.is_empty() {
            let shown: Vec<String> = added.iter().map(|f| format!("{f:?}")).collect();
            let cause = Cause {
                reason: "FieldValueForbidden".into(),
                field: "metadata.finalizers".into(),
                message: format!(
                    "Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{{{}}}",
                    shown.join(", ")
                ),
            };
            // kube-apiserver validates object metadata twice on this path: the cause shows twice.
            return Err(ApiError::invalid(
                &res.kind,
                &res.group,
                &name,
                vec![cause.clone(), cause],
            ));
        }
    }
    obj = stored_type(&res, &t.version, obj);
    meta_mut(&mut obj).insert("resourceVersion".into(), json!(old_rv.to_string()));
    let old_at_version = stored_type(&res, &t.version, old.clone());
    let warnings = admit(state, t, &mut obj, Some(&old_at_version), opts)?;
    if res.has_generation && spec_part(&res, &obj) != spec_part(&res, &old) {
        let g = old
            .pointer("/metadata/generation")
            .and_then(|g| g.as_i64())
            .unwrap_or(0);
        meta_mut(&mut obj).insert("generation".into(), json!(g + 1));
    }
    // A write that changes nothing is not stored and emits no event, as in kube-apiserver.
    if obj == old_at_version || opts.dry_run {
        return Ok(Written {
            code: 200,
            object: output(&res, &t.version, obj),
            warnings,
        });
    }
    if obj.pointer("/metadata/deletionTimestamp").is_some() && finalizers(&obj).is_empty() {
        let g = res.gr();
        state.store.replace(&g, obj);
        let removed = state.store.remove(&g, t.ns(), &name).unwrap_or(Value::Null);
        after_remove(state, &g, &removed);
        return Ok(Written {
            code: 200,
            object: output(&res, &t.version, removed),
            warnings,
        });
    }
    let stored = state.store.replace(&res.gr(), obj);
    after_write(state, &res, &stored);
    Ok(Written {
        code: 200,
        object: output(&res, &t.version, stored),
        warnings,
    })
}

/// PUT on an object or its `/status`.
pub fn update(
    state: &mut State,
    t: &Target,
    body: Value,
    opts: &WriteOpts,
) -> Result<Written, ApiError> {
    let old = state
        .store
        .get(&t.res.gr(), t.ns(), t.name())
        .cloned()
        .ok_or_else(|| ApiError::not_found(&t.res.group, &t.res.plural, t.name()))?;
    update_from(state, t, old, body, opts, false)
}

/// PATCH on an object or its `/status` (server-side apply creates the object when absent).
pub fn patch(
    state: &mut State,
    t: &Target,
    kind: PatchKind,
    body: &[u8],
    opts: &WriteOpts,
) -> Result<Written, ApiError> {
    // Strategic merge needs Go struct tags, which custom resources do not have.
    if kind == PatchKind::StrategicMerge && t.res.custom {
        return Err(ApiError::unsupported_patch_type(&[
            "application/json-patch+json",
            "application/merge-patch+json",
            "application/apply-patch+yaml",
        ]));
    }
    if kind == PatchKind::Apply && opts.field_manager.as_deref().is_none_or(|f| f.is_empty()) {
        // kube-apiserver validates the PatchOptions, so the refusal is about them.
        return Err(ApiError::invalid(
            "PatchOptions",
            "meta.k8s.io",
            "",
            vec![Cause {
                reason: "FieldValueRequired".into(),
                field: "fieldManager".into(),
                message: "Required value: is required for apply patch".into(),
            }],
        ));
    }
    let existing = state.store.get(&t.res.gr(), t.ns(), t.name()).cloned();
    let Some(old) = existing else {
        if kind == PatchKind::Apply && t.subresource.is_none() {
            let mut obj = patch::parse_body(body, true)?;
            if !obj.is_object() {
                return Err(ApiError::bad_request(
                    "an apply configuration must be an object",
                ));
            }
            match meta_str(&obj, "name") {
                Some(n) if n != t.name() => {
                    return Err(ApiError::bad_request(format!(
                        "the name of the object ({n}) does not match the name on the URL ({})",
                        t.name()
                    )))
                }
                _ => {
                    meta_mut(&mut obj).insert("name".into(), json!(t.name()));
                }
            }
            return create(state, t, obj, opts);
        }
        return Err(ApiError::not_found(&t.res.group, &t.res.plural, t.name()));
    };
    let current = output(&t.res, &t.version, old.clone());
    let patched = patch::apply_patch(kind, &current, body)?;
    // A resourceVersion in the patch is a precondition.
    if let Some(rv) = meta_str(&patched, "resourceVersion") {
        if rv.parse::<u64>().ok() != Some(rv_of(&old)) {
            return Err(ApiError::conflict(&t.res.group, &t.res.plural, t.name()));
        }
    }
    update_from(state, t, old, patched, opts, true)
}

/// `DeleteOptions.preconditions`.
#[derive(Debug, Clone, Default)]
pub struct DeleteOpts {
    pub uid: Option<String>,
    pub resource_version: Option<String>,
    pub dry_run: bool,
}

impl DeleteOpts {
    pub fn from_body(body: &Value) -> DeleteOpts {
        DeleteOpts {
            uid: body
                .pointer("/preconditions/uid")
                .and_then(|v| v.as_str())
                .map(str::to_string),
            resource_version: body
                .pointer("/preconditions/resourceVersion")
                .and_then(|v| v.as_str())
                .map(str::to_string),
            dry_run: body
                .get("dryRun")
                .and_then(|d| d.as_array())
                .is_some_and(|a| !a.is_empty()),
        }
    }
}

/// Delete one object: with finalizers it only gets `deletionTimestamp`; namespaces cascade.
pub fn delete(state: &mut State, t: &Target, opts: &DeleteOpts) -> Result<Written, ApiError> {
    let g = t.res.gr();
    let name = t.name().to_string();
    let obj = state
        .store
        .get(&g, t.ns(), &name)
        .cloned()
        .ok_or_else(|| ApiError::not_found(&t.res.group, &t.res.plural, &name))?;
    if let Some(uid) = &opts.uid {
        let actual = meta_str(&obj, "uid").unwrap_or("");
        if uid != actual {
            return Err(precondition_failed(
                &t.res,
                &name,
                format!("the UID in the precondition ({uid}) does not match the UID in record ({actual}). The object might have been deleted and then recreated"),
            ));
        }
    }
    if let Some(rv) = &opts.resource_version {
        let actual = rv_of(&obj).to_string();
        if *rv != actual {
            return Err(precondition_failed(
                &t.res,
                &name,
                format!("the ResourceVersion in the precondition ({rv}) does not match the ResourceVersion in record ({actual}). The object might have been modified"),
            ));
        }
    }
    if opts.dry_run {
        return Ok(Written {
            code: 200,
            object: output(&t.res, &t.version, obj),
            warnings: vec![],
        });
    }
    let out = if g == gr("", "namespaces") {
        delete_namespace(state, &name)
    } else {
        delete_object(state, &g, t.ns(), &name)
    };
    // A custom resource that is gone answers a Status, as kube-apiserver's CR store does; one
    // kept by finalizers answers the object.
    let removed = state.store.get(&g, t.ns(), &name).is_none();
    if t.res.custom && removed {
        return Ok(Written {
            code: 200,
            object: json!({
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                "details": {"name": name, "group": t.res.group, "kind": t.res.plural,
                            "uid": meta_str(&obj, "uid").unwrap_or("")},
            }),
            warnings: vec![],
        });
    }
    Ok(Written {
        code: 200,
        object: output(&t.res, &t.version, out.unwrap_or(obj)),
        warnings: vec![],
    })
}

/// kube-apiserver's 409 for a failed delete precondition.
fn precondition_failed(res: &ResourceInfo, name: &str, detail: String) -> ApiError {
    let qualified = if res.group.is_empty() {
        res.kind.clone()
    } else {
        format!("{}.{}", res.kind, res.group)
    };
    let mut e = ApiError::new(
        409,
        "Conflict",
        format!("Operation cannot be fulfilled on {qualified} \"{name}\": {detail}"),
    );
    let mut d = json!({"name": name, "kind": res.kind});
    if !res.group.is_empty() {
        d["group"] = json!(res.group);
    }
    e.details = Some(d);
    e
}

/// Delete honouring finalizers; returns the object as it is after the call.
fn delete_object(state: &mut State, g: &GroupResource, ns: &str, name: &str) -> Option<Value> {
    let mut obj = state.store.get(g, ns, name)?.clone();
    if !finalizers(&obj).is_empty() {
        if obj.pointer("/metadata/deletionTimestamp").is_some() {
            return Some(obj);
        }
        let m = meta_mut(&mut obj);
        m.insert("deletionTimestamp".into(), json!(now()));
        m.insert("deletionGracePeriodSeconds".into(), json!(0));
        // Setting deletionTimestamp bumps a generation, as kube-apiserver's BeforeDelete does.
        if let Some(generation) = m
            .get("generation")
            .and_then(Value::as_i64)
            .filter(|g| *g > 0)
        {
            m.insert("generation".into(), json!(generation + 1));
        }
        return Some(state.store.replace(g, obj));
    }
    let removed = state.store.remove(g, ns, name)?;
    after_remove(state, g, &removed);
    Some(removed)
}

/// Mark the namespace Terminating, delete everything in it, and remove it once empty.
fn delete_namespace(state: &mut State, name: &str) -> Option<Value> {
    let nsg = gr("", "namespaces");
    let mut ns = state.store.get(&nsg, "", name)?.clone();
    if ns.pointer("/metadata/deletionTimestamp").is_none() {
        let m = meta_mut(&mut ns);
        m.insert("deletionTimestamp".into(), json!(now()));
        m.insert("deletionGracePeriodSeconds".into(), json!(0));
        ns["status"] = json!({"phase": "Terminating"});
        ns = state.store.replace(&nsg, ns);
    }
    for (g, obj_name) in state.store.resources_in_namespace(name) {
        delete_object(state, &g, name, &obj_name);
    }
    maybe_finish_namespace(state, name);
    let answer = state.store.get(&nsg, "", name).cloned().unwrap_or(ns);
    namespace_conditions(state, name);
    Some(answer)
}

/// The conditions kube-controller-manager's namespace controller reports on a namespace that
/// is Terminating with content left (held by finalizers).
fn namespace_conditions(state: &mut State, name: &str) {
    let nsg = gr("", "namespaces");
    let Some(mut ns) = state.store.get(&nsg, "", name).cloned() else {
        return;
    };
    let mut resources: std::collections::BTreeMap<String, usize> = Default::default();
    let mut held: std::collections::BTreeMap<String, usize> = Default::default();
    for ((group, resource), obj_name) in state.store.resources_in_namespace(name) {
        let shown = if group.is_empty() {
            resource.clone()
        } else {
            format!("{resource}.{group}")
        };
        *resources.entry(shown).or_default() += 1;
        if let Some(o) = state.store.get(&(group, resource), name, &obj_name) {
            for f in finalizers(o) {
                *held.entry(f).or_default() += 1;
            }
        }
    }
    if resources.is_empty() {
        return;
    }
    let list = |m: &std::collections::BTreeMap<String, usize>, join: &str| {
        m.iter()
            .map(|(k, n)| format!("{k}{join}{n} resource instances"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let at = now();
    let condition = |t: &str, status: &str, reason: &str, message: String| {
        json!({"type": t, "status": status, "reason": reason, "message": message,
               "lastTransitionTime": at})
    };
    let mut conditions = vec![
        condition(
            "NamespaceDeletionDiscoveryFailure",
            "False",
            "ResourcesDiscovered",
            "All resources successfully discovered".into(),
        ),
        condition(
            "NamespaceDeletionGroupVersionParsingFailure",
            "False",
            "ParsedGroupVersions",
            "All legacy kube types successfully parsed".into(),
        ),
        condition(
            "NamespaceDeletionContentFailure",
            "False",
            "ContentDeleted",
            "All content successfully deleted, may be waiting on finalization".into(),
        ),
        condition(
            "NamespaceContentRemaining",
            "True",
            "SomeResourcesRemain",
            format!(
                "Some resources are remaining: {}",
                list(&resources, " has ")
            ),
        ),
    ];
    if !held.is_empty() {
        conditions.push(condition(
            "NamespaceFinalizersRemaining",
            "True",
            "SomeFinalizersRemain",
            format!(
                "Some content in the namespace has finalizers remaining: {}",
                list(&held, " in ")
            ),
        ));
    }
    ns["status"]["conditions"] = json!(conditions);
    state.store.replace(&nsg, ns);
}

/// Delete every object a list selects (each honouring finalizers).
pub fn delete_collection(
    state: &mut State,
    t: &Target,
    sel: &crate::selector::Selectors,
) -> Vec<Value> {
    let g = t.res.gr();
    let ns = if t.res.namespaced {
        t.namespace.as_deref()
    } else {
        None
    };
    let items = state.store.list(&g, ns, sel);
    let mut out = Vec::new();
    for o in items {
        let (ons, oname) = crate::store::key_of(&o);
        let done = if g == gr("", "namespaces") {
            delete_namespace(state, &oname)
        } else {
            delete_object(state, &g, &ons, &oname)
        };
        if let Some(d) = done {
            out.push(output(&t.res, &t.version, d));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn widget_crd() -> Value {
        json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.io"},
            "spec": {"group": "example.io", "scope": "Namespaced",
                "names": {"plural": "widgets", "kind": "Widget"},
                "versions": [{"name": "v1", "served": true, "storage": true, "subresources": {"status": {}},
                    "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                        "spec": {"type": "object", "properties": {"size": {"type": "integer"}}},
                        "status": {"type": "object", "properties": {"phase": {"type": "string"}}}}}}}]}
        })
    }

    fn setup() -> (State, Target) {
        let mut s = State::new(100);
        let t = s
            .target(CRD_GROUP, "v1", CRD_RESOURCE, None, None, None)
            .unwrap();
        let w = create(&mut s, &t, widget_crd(), &WriteOpts::default()).unwrap();
        assert_eq!(w.object["status"]["conditions"][1]["type"], "Established");
        let t = s
            .target(
                "example.io",
                "v1",
                "widgets",
                Some("default"),
                Some("w1"),
                None,
            )
            .unwrap();
        (s, t)
    }

    fn widget(size: i64) -> Value {
        json!({"apiVersion": "example.io/v1", "kind": "Widget", "metadata": {"name": "w1"}, "spec": {"size": size}, "status": {"phase": "x"}})
    }

    #[test]
    fn crd_create_serves_resource_and_generation_tracks_spec() {
        let (mut s, t) = setup();
        let w = create(&mut s, &t, widget(1), &WriteOpts::default())
            .unwrap()
            .object;
        assert_eq!(w["metadata"]["generation"], 1);
        assert!(w.get("status").is_none(), "status is reset on create");
        assert!(
            matches!(create(&mut s, &t, widget(1), &WriteOpts::default()), Err(e) if e.code == 409)
        );
        // Status write: no generation bump, spec untouched.
        let mut st = t.clone();
        st.subresource = Some("status".into());
        let mut body = w.clone();
        body["status"] = json!({"phase": "Ready"});
        body["spec"]["size"] = json!(99);
        let w2 = update(&mut s, &st, body, &WriteOpts::default())
            .unwrap()
            .object;
        assert_eq!(w2["status"]["phase"], "Ready");
        assert_eq!(w2["spec"]["size"], 1);
        assert_eq!(w2["metadata"]["generation"], 1);
        // Stale resourceVersion conflicts.
        assert!(
            matches!(update(&mut s, &t, w.clone(), &WriteOpts::default()), Err(e) if e.code == 409)
        );
        // Spec change bumps generation and keeps status.
        let mut body = w2.clone();
        body["spec"]["size"] = json!(2);
        body["status"] = json!({"phase": "ignored"});
        let w3 = update(&mut s, &t, body, &WriteOpts::default())
            .unwrap()
            .object;
        assert_eq!(w3["metadata"]["generation"], 2);
        assert_eq!(w3["status"]["phase"], "Ready");
        // No-op update keeps the resourceVersion.
        let w4 = update(&mut s, &t, w3.clone(), &WriteOpts::default())
            .unwrap()
            .object;
        assert_eq!(
            w4["metadata"]["resourceVersion"],
            w3["metadata"]["resourceVersion"]
        );
    }

    #[test]
    fn finalizers_delay_deletion() {
        let (mut s, t) = setup();
        let mut body = widget(1);
        body["metadata"]["finalizers"] = json!(["example.io/cleanup"]);
        create(&mut s, &t, body, &WriteOpts::default()).unwrap();
        let d = delete(&mut s, &t, &DeleteOpts::default()).unwrap().object;
        assert!(d["metadata"]["deletionTimestamp"].is_string());
        let p = patch(
            &mut s,
            &t,
            PatchKind::Merge,
            br#"{"metadata":{"finalizers":null}}"#,
            &WriteOpts::default(),
        )
        .unwrap();
        assert_eq!(p.code, 200);
        assert!(s.store.get(&t.res.gr(), "default", "w1").is_none());
    }

    #[test]
    fn namespace_deletion_cascades() {
        let (mut s, _) = setup();
        let nst = s
            .target("", "v1", "namespaces", None, Some("team"), None)
            .unwrap();
        create(
            &mut s,
            &nst,
            json!({"metadata": {"name": "team"}}),
            &WriteOpts::default(),
        )
        .unwrap();
        let t = s
            .target(
                "example.io",
                "v1",
                "widgets",
                Some("team"),
                Some("w1"),
                None,
            )
            .unwrap();
        let mut body = widget(1);
        body["metadata"]["finalizers"] = json!(["f"]);
        create(&mut s, &t, body, &WriteOpts::default()).unwrap();
        let secret = s
            .target("", "v1", "secrets", Some("team"), Some("s"), None)
            .unwrap();
        let sec = create(
            &mut s,
            &secret,
            json!({"metadata": {"name": "s"}, "stringData": {"k": "hi"}}),
            &WriteOpts::default(),
        )
        .unwrap()
        .object;
        assert_eq!(sec["data"]["k"], "aGk=");
        let d = delete(&mut s, &nst, &DeleteOpts::default()).unwrap().object;
        assert_eq!(d["status"]["phase"], "Terminating");
        assert!(s.store.get(&secret.res.gr(), "team", "s").is_none());
        assert!(
            matches!(create(&mut s, &secret, json!({"metadata": {"name": "s2"}}), &WriteOpts::default()), Err(e) if e.code == 403)
        );
        patch(
            &mut s,
            &t,
            PatchKind::Json,
            br#"[{"op":"remove","path":"/metadata/finalizers"}]"#,
            &WriteOpts::default(),
        )
        .unwrap();
        assert!(s.store.get(&gr("", "namespaces"), "", "team").is_none());
    }

    #[test]
    fn apply_creates_then_merges_and_requires_manager() {
        let (mut s, t) = setup();
        let opts = WriteOpts {
            field_manager: Some("me".into()),
            ..Default::default()
        };
        assert!(patch(
            &mut s,
            &t,
            PatchKind::Apply,
            b"spec: {size: 1}",
            &WriteOpts::default()
        )
        .is_err());
        let w = patch(
            &mut s,
            &t,
            PatchKind::Apply,
            b"apiVersion: example.io/v1\nkind: Widget\nmetadata: {name: w1}\nspec: {size: 1}\n",
            &opts,
        )
        .unwrap();
        assert_eq!(w.code, 201);
        let w = patch(
            &mut s,
            &t,
            PatchKind::Apply,
            b"apiVersion: example.io/v1\nkind: Widget\nmetadata: {name: w1}\nspec: {size: 3}\n",
            &opts,
        )
        .unwrap();
        assert_eq!(w.object["spec"]["size"], 3);
        assert_eq!(w.object["metadata"]["generation"], 2);
    }

    #[test]
    fn strict_field_validation() {
        let (mut s, t) = setup();
        let mut body = widget(1);
        body["spec"]["foo"] = json!(1);
        let strict = WriteOpts {
            field_validation: FieldValidation::Strict,
            ..Default::default()
        };
        let e = create(&mut s, &t, body.clone(), &strict).unwrap_err();
        assert_eq!(e.code, 400);
        assert!(
            e.message
                .ends_with("strict decoding error: unknown field \"spec.foo\""),
            "{}",
            e.message
        );
        let w = create(&mut s, &t, body, &WriteOpts::default()).unwrap();
        assert_eq!(w.warnings, vec!["unknown field \"spec.foo\"".to_string()]);
        assert!(w.object["spec"].get("foo").is_none());
    }
}
