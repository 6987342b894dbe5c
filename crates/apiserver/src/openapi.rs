//! `/openapi/v2` and `/openapi/v3` documents built from the served resources: CRD
//! schemas as given (in v2 converted as kube-apiserver does, see `crd_schema_v2`), and
//! small hand-written schemas for the built-in kinds. [`crate::openapi_proto`] serves v2 as
//! protobuf, the form kubectl's client-side validation reads.
//! Operations carry `x-kubernetes-group-version-kind` and the `fieldValidation` parameter
//! so kubectl knows the server validates fields itself.

use serde_json::{json, Map, Value};

use crate::discovery::{ResourceInfo, SERVER_VERSION};

/// Definition name as Kubernetes spells it: `io.k8s.api.core.v1.Secret`, `io.example.v1.Widget`.
pub fn definition_name(res: &ResourceInfo, version: &str, kind: &str) -> String {
    let prefix = match res.group.as_str() {
        "" => "io.k8s.api.core".to_string(),
        "events.k8s.io" => "io.k8s.api.events".to_string(),
        "coordination.k8s.io" => "io.k8s.api.coordination".to_string(),
        "apiextensions.k8s.io" => {
            "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions".to_string()
        }
        g => g.split('.').rev().collect::<Vec<_>>().join("."),
    };
    format!("{prefix}.{version}.{kind}")
}

const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";

fn d(t: &str, desc: &str) -> Value {
    json!({"type": t, "description": desc})
}

fn string_map(desc: &str) -> Value {
    json!({"type": "object", "description": desc, "additionalProperties": {"type": "string", "default": ""}})
}

fn object_meta(prefix: &str) -> Value {
    json!({
        "type": "object",
        "description": "ObjectMeta is metadata that all persisted resources must have, which includes all objects users must create.",
        "properties": {
            "name": d("string", "Name must be unique within a namespace."),
            "generateName": d("string", "GenerateName is an optional prefix, used by the server, to generate a unique name ONLY IF the Name field has not been provided."),
            "namespace": d("string", "Namespace defines the space within which each name must be unique."),
            "uid": d("string", "UID is the unique in time and space value for this object."),
            "resourceVersion": d("string", "An opaque value that represents the internal version of this object."),
            "generation": {"type": "integer", "format": "int64", "description": "A sequence number representing a specific generation of the desired state."},
            "creationTimestamp": {"type": "string", "format": "date-time", "description": "CreationTimestamp is a timestamp representing the server time when this object was created."},
            "deletionTimestamp": {"type": "string", "format": "date-time", "description": "DeletionTimestamp is RFC 3339 date and time at which this resource will be deleted."},
            "deletionGracePeriodSeconds": {"type": "integer", "format": "int64", "description": "Number of seconds allowed for this object to gracefully terminate."},
            "labels": string_map("Map of string keys and values that can be used to organize and categorize (scope and select) objects."),
            "annotations": string_map("Annotations is an unstructured key value map stored with a resource."),
            "finalizers": {"type": "array", "items": {"type": "string", "default": ""}, "description": "Must be empty before the object is deleted from the registry.", "x-kubernetes-list-type": "set"},
            "ownerReferences": {"type": "array", "description": "List of objects depended by this object.", "items": {"$ref": format!("{prefix}{OWNER_REFERENCE}")}},
            "managedFields": {"type": "array", "description": "ManagedFields maps workflow-id and version to the set of fields that are managed by that workflow.", "items": {"$ref": format!("{prefix}{MANAGED_FIELDS_ENTRY}")}},
            "selfLink": d("string", "Deprecated: selfLink is a legacy read-only field that is no longer populated by the system.")
        }
    })
}

const OWNER_REFERENCE: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.OwnerReference";
const MANAGED_FIELDS_ENTRY: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ManagedFieldsEntry";
const FIELDS_V1: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1";

/// ObjectMeta and the named schemas it refers to, with refs under `prefix`
/// (`#/components/schemas/` or `#/definitions/`), as kubectl explain walks them.
fn meta_schemas(prefix: &str) -> Vec<(&'static str, Value)> {
    vec![
        (OBJECT_META, object_meta(prefix)),
        (
            OWNER_REFERENCE,
            json!({
                "type": "object",
                "description": "OwnerReference contains enough information to let you identify an owning object.",
                "required": ["apiVersion", "kind", "name", "uid"],
                "properties": {
                    "apiVersion": d("string", "API version of the referent."),
                    "blockOwnerDeletion": d("boolean", "If true, AND if the owner has the \"foregroundDeletion\" finalizer, then the owner cannot be deleted from the key-value store until this reference is removed."),
                    "controller": d("boolean", "If true, this reference points to the managing controller."),
                    "kind": d("string", "Kind of the referent."),
                    "name": d("string", "Name of the referent."),
                    "uid": d("string", "UID of the referent."),
                },
                "x-kubernetes-map-type": "atomic"
            }),
        ),
        (
            MANAGED_FIELDS_ENTRY,
            json!({
                "type": "object",
                "description": "ManagedFieldsEntry is a workflow-id, a FieldSet and the group version of the resource that the fieldset applies to.",
                "properties": {
                    "apiVersion": d("string", "APIVersion defines the version of this resource that this field set applies to."),
                    "fieldsType": d("string", "FieldsType is the discriminator for the different fields format and version. There is currently only one possible value: \"FieldsV1\""),
                    "fieldsV1": {"$ref": format!("{prefix}{FIELDS_V1}"), "description": "FieldsV1 holds the first JSON version format as described in the \"FieldsV1\" type."},
                    "manager": d("string", "Manager is an identifier of the workflow managing these fields."),
                    "operation": d("string", "Operation is the type of operation which lead to this ManagedFieldsEntry being created. The only valid values for this field are 'Apply' and 'Update'."),
                    "subresource": d("string", "Subresource is the name of the subresource used to update that object, or empty string if the object was updated through the main resource."),
                    "time": {"type": "string", "format": "date-time", "description": "Time is the timestamp of when the ManagedFields entry was added."},
                }
            }),
        ),
        (
            FIELDS_V1,
            json!({
                "type": "object",
                "description": "FieldsV1 stores a set of fields in a data structure like a Trie, in JSON format."
            }),
        ),
    ]
}

const METADATA_DESC: &str = "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

/// The `metadata` property: Swagger 2.0 puts the description beside the `$ref` (as
/// kube-apiserver does); OpenAPI 3 wraps the reference in `allOf`.
fn metadata_property(meta_ref: &str, v2: bool) -> Value {
    if v2 {
        json!({"$ref": meta_ref, "description": METADATA_DESC})
    } else {
        json!({"allOf": [{"$ref": meta_ref}], "default": {}, "description": METADATA_DESC})
    }
}

fn with_common(mut schema: Value, kind_desc: &str, meta_ref: &str, v2: bool) -> Value {
    let props = schema
        .as_object_mut()
        .map(|o| o.entry("properties").or_insert_with(|| json!({})))
        .and_then(|p| p.as_object_mut());
    if let Some(p) = props {
        p.entry("apiVersion").or_insert_with(|| {
            d(
                "string",
                "APIVersion defines the versioned schema of this representation of an object.",
            )
        });
        p.entry("kind").or_insert_with(|| {
            d(
                "string",
                "Kind is a string value representing the REST resource this object represents.",
            )
        });
        p.insert("metadata".into(), metadata_property(meta_ref, v2));
    }
    if let Some(o) = schema.as_object_mut() {
        o.entry("type").or_insert_with(|| json!("object"));
        if !kind_desc.is_empty() {
            o.entry("description").or_insert_with(|| json!(kind_desc));
        }
    }
    schema
}

fn builtin_schema(res: &ResourceInfo) -> Value {
    match (res.group.as_str(), res.kind.as_str()) {
        ("", "Namespace") => {
            json!({"description": "Namespace provides a scope for Names.", "properties": {
            "spec": {"type": "object", "description": "Spec defines the behavior of the Namespace.", "properties": {"finalizers": {"type": "array", "items": {"type": "string"}, "description": "Finalizers is an opaque list of values that must be empty to permanently remove object from storage."}}},
            "status": {"type": "object", "description": "Status describes the current status of a Namespace.", "properties": {"phase": d("string", "Phase is the current lifecycle phase of the namespace."), "conditions": {"type": "array", "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}}})
        }
        ("", "Secret") => {
            json!({"description": "Secret holds secret data of a certain type.", "properties": {
            "data": {"type": "object", "additionalProperties": {"type": "string", "format": "byte"}, "description": "Data contains the secret data. Each value must be base64 encoded."},
            "stringData": string_map("stringData allows specifying non-binary secret data in string form. It is merged into the data field on write."),
            "type": d("string", "Used to facilitate programmatic handling of secret data."),
            "immutable": d("boolean", "Immutable, if set to true, ensures that data stored in the Secret cannot be updated.")}})
        }
        ("", "ConfigMap") => {
            json!({"description": "ConfigMap holds configuration data for pods to consume.", "properties": {
            "data": string_map("Data contains the configuration data."),
            "binaryData": {"type": "object", "additionalProperties": {"type": "string", "format": "byte"}, "description": "BinaryData contains the binary data."},
            "immutable": d("boolean", "Immutable, if set to true, ensures that data stored in the ConfigMap cannot be updated.")}})
        }
        ("coordination.k8s.io", "Lease") => {
            json!({"description": "Lease defines a lease concept.", "properties": {
            "spec": {"type": "object", "description": "spec contains the specification of the Lease.", "properties": {
                "holderIdentity": d("string", "holderIdentity contains the identity of the holder of a current lease."),
                "leaseDurationSeconds": {"type": "integer", "format": "int32", "description": "leaseDurationSeconds is a duration that candidates for a lease need to wait to force acquire it."},
                "acquireTime": {"type": "string", "format": "date-time", "description": "acquireTime is a time when the current lease was acquired."},
                "renewTime": {"type": "string", "format": "date-time", "description": "renewTime is a time when the current holder of a lease has last updated the lease."},
                "leaseTransitions": {"type": "integer", "format": "int32", "description": "leaseTransitions is the number of transitions of a lease between holders."},
                "strategy": d("string", "Strategy indicates the strategy for picking the leader for coordinated leader election."),
                "preferredHolder": d("string", "PreferredHolder signals to a lease holder that the lease has a more optimal holder.")}}}})
        }
        (_, "Event") => {
            let mut props = Map::new();
            for (k, t, desc) in [
                ("reason", "string", "This should be a short, machine understandable string that gives the reason for the transition into the object's current status."),
                ("message", "string", "A human-readable description of the status of this operation."),
                ("note", "string", "note is a human-readable description of the status of this operation."),
                ("type", "string", "Type of this event (Normal, Warning)."),
                ("action", "string", "What action was taken/failed regarding to the Regarding object."),
                ("reportingController", "string", "Name of the controller that emitted this Event."),
                ("reportingComponent", "string", "reportingComponent is the name of the controller that emitted this Event."),
                ("reportingInstance", "string", "ID of the controller instance."),
                ("firstTimestamp", "string", "The time at which the event was first recorded."),
                ("lastTimestamp", "string", "The time at which the most recent occurrence of this event was recorded."),
                ("eventTime", "string", "Time when this Event was first observed."),
                ("deprecatedFirstTimestamp", "string", "deprecatedFirstTimestamp is the deprecated field assuring backward compatibility with core.v1 Event type."),
                ("deprecatedLastTimestamp", "string", "deprecatedLastTimestamp is the deprecated field assuring backward compatibility with core.v1 Event type."),
                ("count", "integer", "The number of times this event has occurred."),
                ("deprecatedCount", "integer", "deprecatedCount is the deprecated field assuring backward compatibility with core.v1 Event type."),
            ] {
                props.insert(k.into(), d(t, desc));
            }
            for (k, desc) in [
                ("involvedObject", "The object that this event is about."),
                ("regarding", "regarding contains the object this Event is about."),
                ("related", "Optional secondary object for more complex actions."),
                ("source", "The component reporting this event."),
                ("deprecatedSource", "deprecatedSource is the deprecated field assuring backward compatibility with core.v1 Event type."),
                ("series", "Data about the Event series this event represents."),
            ] {
                props.insert(k.into(), json!({"type": "object", "description": desc, "x-kubernetes-preserve-unknown-fields": true}));
            }
            json!({"description": "Event is a report of an event somewhere in the cluster.", "properties": props})
        }
        ("apiextensions.k8s.io", _) => {
            json!({"description": "CustomResourceDefinition represents a resource that should be exposed on the API server.", "properties": {
            "spec": {"type": "object", "description": "spec describes how the user wants the resources to appear", "x-kubernetes-preserve-unknown-fields": true},
            "status": {"type": "object", "description": "status indicates the actual state of the CustomResourceDefinition", "x-kubernetes-preserve-unknown-fields": true}}})
        }
        _ => json!({"x-kubernetes-preserve-unknown-fields": true}),
    }
}

/// The schema of one kind at one version (with apiVersion/kind/metadata filled in).
fn kind_schema(res: &ResourceInfo, version: &str, meta_ref: &str, v2: bool) -> Value {
    let gvk = json!([{"group": res.group, "kind": res.kind, "version": version}]);
    let crd_schema = res.version(version).and_then(|v| v.schema.clone());
    if res.custom && v2 {
        match crd_schema {
            // As kube-apiserver publishes it: a bare object when there is no schema or it keeps
            // unknown fields at its root, or kubectl's validation would refuse every field
            // the schema does not list.
            None => return json!({"type": "object", "x-kubernetes-group-version-kind": gvk}),
            Some(s) if s[PRESERVE] == true => {
                return json!({"type": "object", "x-kubernetes-group-version-kind": gvk})
            }
            Some(_) => {}
        }
    }
    let base = if res.custom {
        let mut base = crd_schema.unwrap_or_else(
            || json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
        );
        if v2 {
            crd_schema_v2(&mut base);
        }
        base
    } else {
        builtin_schema(res)
    };
    let mut s = with_common(base, "", meta_ref, v2);
    // Built-in kinds carry Go's `default: {}` on metadata; a CRD's published schema does not.
    if res.custom {
        if let Some(m) = s
            .pointer_mut("/properties/metadata")
            .and_then(Value::as_object_mut)
        {
            m.remove("default");
        }
    }
    s["x-kubernetes-group-version-kind"] = gvk;
    s
}

const PRESERVE: &str = "x-kubernetes-preserve-unknown-fields";

/// The keywords a CRD's structural schema keeps (apiextensions' `Structural`); anything
/// else a CRD may carry (`example`, `externalDocs`, ...) is not published.
const STRUCTURAL_KEYWORDS: [&str; 30] = [
    "description",
    "type",
    "title",
    "default",
    "format",
    "maximum",
    "exclusiveMaximum",
    "minimum",
    "exclusiveMinimum",
    "maxLength",
    "minLength",
    "pattern",
    "maxItems",
    "minItems",
    "uniqueItems",
    "multipleOf",
    "enum",
    "maxProperties",
    "minProperties",
    "required",
    "items",
    "properties",
    "additionalProperties",
    PRESERVE,
    "x-kubernetes-embedded-resource",
    "x-kubernetes-int-or-string",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-list-type",
    "x-kubernetes-map-type",
    "x-kubernetes-validations",
];

/// A CRD schema as kube-apiserver publishes it in OpenAPI v2 (apiextensions'
/// `ToStructuralOpenAPIV2`), node by node from the root: Swagger 2.0 has no `nullable` and
/// no `oneOf`/`anyOf`/`not`, and kubectl's validation (kube-openapi's `proto` package)
/// refuses an array without items and checks the fields of any typed object, so a nullable
/// node and one keeping unknown fields lose their type and their children, and a nullable
/// property is no longer required.
fn crd_schema_v2(s: &mut Value) {
    let Some(o) = s.as_object_mut() else { return };
    o.retain(|k, _| STRUCTURAL_KEYWORDS.contains(&k.as_str()) || k == "nullable");
    if o.remove("nullable") == Some(json!(true)) {
        for k in ["type", "items", "properties"] {
            o.remove(k);
        }
    }
    let preserve = o.get(PRESERVE) == Some(&json!(true));
    if preserve {
        o.remove("items");
        o.remove("properties");
    }
    if o.get("type") == Some(&json!("array")) && !o.contains_key("items") {
        o.remove("type");
    }
    if preserve && o.get("type") == Some(&json!("object")) {
        o.remove("type");
    }
    let nullable = |v: &Value| v.get("nullable") == Some(&json!(true));
    let nullable_props: Vec<String> = o
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| {
            p.iter()
                .filter(|(_, v)| nullable(v))
                .map(|(k, _)| k.clone())
                .collect()
        })
        .unwrap_or_default();
    if let Some(req) = o.get_mut("required").and_then(Value::as_array_mut) {
        req.retain(|r| {
            !r.as_str()
                .is_some_and(|r| nullable_props.iter().any(|p| p == r))
        });
    }
    if o.get("additionalProperties").is_some_and(nullable) {
        o.remove("required");
    }
    if o.get("required")
        .and_then(Value::as_array)
        .is_some_and(Vec::is_empty)
    {
        o.remove("required");
    }
    match o.get_mut("items") {
        Some(Value::Array(items)) => items.iter_mut().for_each(crd_schema_v2),
        Some(item) => crd_schema_v2(item),
        None => {}
    }
    if let Some(props) = o.get_mut("properties").and_then(Value::as_object_mut) {
        props.values_mut().for_each(crd_schema_v2);
    }
    if let Some(extra) = o.get_mut("additionalProperties") {
        crd_schema_v2(extra);
    }
}

fn list_schema(res: &ResourceInfo, version: &str, item_ref: &str) -> Value {
    json!({
        "type": "object", "required": ["items"],
        "description": format!("{} is a list of {}", res.list_kind, res.kind),
        "properties": {
            "apiVersion": d("string", "APIVersion defines the versioned schema of this representation of an object."),
            "kind": d("string", "Kind is a string value representing the REST resource this object represents."),
            "items": {"type": "array", "items": {"$ref": item_ref}, "description": format!("List of {}.", res.plural)},
            "metadata": {"type": "object", "description": "Standard list metadata."}
        },
        "x-kubernetes-group-version-kind": [{"group": res.group, "kind": res.list_kind, "version": version}]
    })
}

fn prefix(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    }
}

/// A query parameter: OpenAPI 3 types it in a `schema`, Swagger 2.0 on the parameter itself.
fn param(name: &str, desc: &str, v3: bool) -> Value {
    if v3 {
        json!({"name": name, "in": "query", "description": desc, "schema": {"type": "string", "uniqueItems": true}})
    } else {
        json!({"name": name, "in": "query", "description": desc, "type": "string", "uniqueItems": true})
    }
}

/// Path items for one resource, with operations tagged by GVK and action.
fn paths_for(
    res: &ResourceInfo,
    version: &str,
    v3: bool,
    item_ref: &str,
    list_ref: &str,
) -> Vec<(String, Value)> {
    let gvk = json!({"group": res.group, "version": version, "kind": res.kind});
    let resp = |r: &str| {
        if v3 {
            json!({"200": {"description": "OK", "content": {"application/json": {"schema": {"$ref": r}}}}})
        } else {
            json!({"200": {"description": "OK", "schema": {"$ref": r}}})
        }
    };
    let write_params = vec![
        param("dryRun", "When present, indicates that modifications should not be persisted.", v3),
        param("fieldManager", "fieldManager is a name associated with the actor or entity that is making these changes.", v3),
        param("fieldValidation", "fieldValidation instructs the server on how to handle objects in the request containing unknown or duplicate fields. Valid values are: Ignore, Warn, Strict.", v3),
    ];
    let op = |action: &str, id: &str, r: &str, params: &[Value]| {
        json!({
            "operationId": id, "description": format!("{action} {}", res.kind),
            "parameters": params, "responses": resp(r),
            "x-kubernetes-action": action, "x-kubernetes-group-version-kind": gvk,
        })
    };
    let p = prefix(&res.group, version);
    let base = if res.namespaced {
        format!("{p}/namespaces/{{namespace}}/{}", res.plural)
    } else {
        format!("{p}/{}", res.plural)
    };
    let mut patch_params = write_params.clone();
    patch_params.push(param(
        "force",
        "Force is going to \"force\" Apply requests.",
        v3,
    ));
    let mut out = vec![
        (
            base.clone(),
            json!({
                "get": op("list", &format!("list{}", res.kind), list_ref, &[]),
                "post": op("post", &format!("create{}", res.kind), item_ref, &write_params),
                "delete": op("deletecollection", &format!("deletecollection{}", res.kind), list_ref, &[]),
            }),
        ),
        (
            format!("{base}/{{name}}"),
            json!({
                "get": op("get", &format!("read{}", res.kind), item_ref, &[]),
                "put": op("put", &format!("replace{}", res.kind), item_ref, &write_params),
                "patch": op("patch", &format!("patch{}", res.kind), item_ref, &patch_params),
                "delete": op("delete", &format!("delete{}", res.kind), item_ref, &[]),
            }),
        ),
    ];
    if res.version(version).is_some_and(|v| v.status_subresource) {
        out.push((
            format!("{base}/{{name}}/status"),
            json!({
                "get": op("get", &format!("read{}Status", res.kind), item_ref, &[]),
                "put": op("put", &format!("replace{}Status", res.kind), item_ref, &write_params),
                "patch": op("patch", &format!("patch{}Status", res.kind), item_ref, &patch_params),
            }),
        ));
    }
    out
}

/// `/openapi/v3`: the index of group-version documents.
pub fn v3_index(resources: &[ResourceInfo]) -> Value {
    let mut paths = Map::new();
    for r in resources {
        for v in &r.versions {
            let key = prefix(&r.group, &v.name)
                .trim_start_matches('/')
                .to_string();
            let hash = format!(
                "{:016X}",
                fnv(&v3_group_version(resources, &r.group, &v.name).to_string())
            );
            paths.insert(
                key.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{key}?hash={hash}")}),
            );
        }
    }
    json!({"paths": paths})
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    })
}

/// The OpenAPI 3 document of one group version.
pub fn v3_group_version(resources: &[ResourceInfo], group: &str, version: &str) -> Value {
    let mut schemas = Map::new();
    let mut paths = Map::new();
    let meta_ref = format!("#/components/schemas/{OBJECT_META}");
    for (name, schema) in meta_schemas("#/components/schemas/") {
        schemas.insert(name.into(), schema);
    }
    for r in resources
        .iter()
        .filter(|r| r.group == group && r.version(version).is_some())
    {
        let name = definition_name(r, version, &r.kind);
        let list = definition_name(r, version, &r.list_kind);
        let item_ref = format!("#/components/schemas/{name}");
        let list_ref = format!("#/components/schemas/{list}");
        schemas.insert(name, kind_schema(r, version, &meta_ref, false));
        schemas.insert(list, list_schema(r, version, &item_ref));
        for (p, item) in paths_for(r, version, true, &item_ref, &list_ref) {
            paths.insert(p, item);
        }
    }
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": SERVER_VERSION},
        "paths": paths,
        "components": {"schemas": schemas},
    })
}

/// Swagger 2.0 document of everything served.
pub fn v2(resources: &[ResourceInfo]) -> Value {
    let mut defs = Map::new();
    let mut paths = Map::new();
    let meta_ref = format!("#/definitions/{OBJECT_META}");
    for (name, schema) in meta_schemas("#/definitions/") {
        defs.insert(name.into(), schema);
    }
    for r in resources {
        for v in &r.versions {
            let name = definition_name(r, &v.name, &r.kind);
            let list = definition_name(r, &v.name, &r.list_kind);
            let item_ref = format!("#/definitions/{name}");
            let list_ref = format!("#/definitions/{list}");
            defs.insert(name, kind_schema(r, &v.name, &meta_ref, true));
            defs.insert(list, list_schema(r, &v.name, &item_ref));
            for (p, item) in paths_for(r, &v.name, false, &item_ref, &list_ref) {
                paths.insert(p, item);
            }
        }
    }
    // kube-apiserver publishes no defaults in v2 (kube-openapi's PruneDefaults).
    defs.values_mut().for_each(prune_defaults);
    json!({"swagger": "2.0", "info": {"title": "Kubernetes", "version": SERVER_VERSION}, "paths": paths, "definitions": defs})
}

/// Removes `default` from a schema and the schemas inside it (not from a property that
/// happens to be named `default`).
fn prune_defaults(s: &mut Value) {
    let Some(o) = s.as_object_mut() else { return };
    o.remove("default");
    if let Some(props) = o.get_mut("properties").and_then(Value::as_object_mut) {
        props.values_mut().for_each(prune_defaults);
    }
    for k in ["items", "additionalProperties", "not"] {
        match o.get_mut(k) {
            Some(Value::Array(a)) => a.iter_mut().for_each(prune_defaults),
            Some(v) => prune_defaults(v),
            None => {}
        }
    }
    for k in ["allOf", "anyOf", "oneOf"] {
        if let Some(a) = o.get_mut(k).and_then(Value::as_array_mut) {
            a.iter_mut().for_each(prune_defaults);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::builtins;

    #[test]
    fn index_and_documents() {
        let rs = builtins();
        let idx = v3_index(&rs);
        assert!(idx["paths"]["api/v1"]["serverRelativeURL"]
            .as_str()
            .unwrap()
            .starts_with("/openapi/v3/api/v1?hash="));
        let core = v3_group_version(&rs, "", "v1");
        let secret = &core["components"]["schemas"]["io.k8s.api.core.v1.Secret"];
        assert_eq!(
            secret["x-kubernetes-group-version-kind"][0]["kind"],
            "Secret"
        );
        let patch = &core["paths"]["/api/v1/namespaces/{namespace}/secrets/{name}"]["patch"];
        assert!(patch["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "fieldValidation"));
        let v2doc = v2(&rs);
        assert!(v2doc["definitions"]["io.k8s.api.coordination.v1.Lease"].is_object());
    }

    fn widget(schema: Option<Value>) -> ResourceInfo {
        ResourceInfo {
            group: "example.io".into(),
            plural: "widgets".into(),
            singular: "widget".into(),
            kind: "Widget".into(),
            list_kind: "WidgetList".into(),
            namespaced: true,
            short_names: vec![],
            categories: vec![],
            versions: vec![crate::discovery::VersionInfo {
                name: "v1".into(),
                schema,
                printer_columns: vec![],
                status_subresource: true,
            }],
            custom: true,
            has_generation: true,
        }
    }

    #[test]
    fn v2_publishes_a_crd_schema_as_kube_apiserver_does() {
        let schema = json!({
            "type": "object", "required": ["spec"],
            "properties": {
                "spec": {"type": "object", "required": ["size", "note"], "example": {"size": 1},
                    "properties": {
                        "size": {"type": "integer", "default": 1},
                        "note": {"type": "string", "nullable": true},
                        "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true,
                                  "properties": {"a": {"type": "string"}}},
                        "port": {"x-kubernetes-int-or-string": true,
                                 "anyOf": [{"type": "integer"}, {"type": "string"}]},
                        "tags": {"type": "array", "items": {"type": "string", "nullable": true}}}},
                "status": {"type": "object", "nullable": true, "default": {},
                           "properties": {"phase": {"type": "string"}}}}
        });
        let doc = v2(&[widget(Some(schema.clone()))]);
        let w = &doc["definitions"]["io.example.v1.Widget"];
        assert_eq!(
            w["properties"]["metadata"],
            json!({"$ref": format!("#/definitions/{OBJECT_META}"), "description": METADATA_DESC})
        );
        let spec = &w["properties"]["spec"];
        assert_eq!(spec["required"], json!(["size"]));
        assert!(spec.get("example").is_none());
        assert!(spec["properties"]["size"].get("default").is_none());
        assert_eq!(
            spec["properties"]["note"],
            json!({}),
            "a nullable node is untyped"
        );
        assert_eq!(
            spec["properties"]["extra"],
            json!({"x-kubernetes-preserve-unknown-fields": true})
        );
        assert_eq!(
            spec["properties"]["port"],
            json!({"x-kubernetes-int-or-string": true})
        );
        assert_eq!(spec["properties"]["tags"]["items"], json!({}));
        assert_eq!(w["properties"]["status"], json!({}));
        assert_eq!(w["x-kubernetes-group-version-kind"][0]["kind"], "Widget");
        // OpenAPI 3 keeps the schema as given.
        let v3 = v3_group_version(&[widget(Some(schema))], "example.io", "v1");
        let w3 = &v3["components"]["schemas"]["io.example.v1.Widget"];
        assert_eq!(w3["properties"]["status"]["nullable"], true);
        assert_eq!(w3["properties"]["spec"]["properties"]["size"]["default"], 1);

        for bare in [
            None,
            Some(json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true})),
        ] {
            let doc = v2(&[widget(bare)]);
            assert_eq!(
                doc["definitions"]["io.example.v1.Widget"],
                json!({"type": "object", "x-kubernetes-group-version-kind":
                       [{"group": "example.io", "kind": "Widget", "version": "v1"}]})
            );
        }
    }

    #[test]
    fn v2_parameters_are_typed_on_themselves() {
        let doc = v2(&builtins());
        let patch = &doc["paths"]["/api/v1/namespaces/{namespace}/secrets/{name}"]["patch"];
        let fv = patch["parameters"]
            .as_array()
            .and_then(|p| p.iter().find(|p| p["name"] == "fieldValidation"))
            .cloned()
            .unwrap_or_default();
        assert_eq!(fv["type"], "string");
        assert!(fv.get("schema").is_none());
    }
}
