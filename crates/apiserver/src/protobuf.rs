//! Request bodies in the Kubernetes protobuf encoding (`application/vnd.kubernetes.protobuf`).
//!
//! Why this exists: client-go's generated typed clients for built-in kinds are built with
//! `gentype.PrefersProtobuf`, and `Request.UseProtobufAsDefault` switches every request of
//! such a client to `Content-Type: application/vnd.kubernetes.protobuf` (Accept
//! `application/vnd.kubernetes.protobuf,application/json`) unless the user configured a
//! content type. Discovery and OpenAPI play no part, and client-go only falls back from a
//! 415 for CBOR, never for protobuf. kubectl's imperative generators (`kubectl create secret
//! generic`, `create namespace`, `create configmap`) use those typed clients, so their POST
//! bodies are protobuf whatever this server advertises. Manifest-driven commands (`apply`,
//! `create -f`, `label`, `annotate`, `delete`) go through the unstructured client (JSON).
//!
//! The wire format is the 4-byte magic `k8s\0` followed by a `runtime.Unknown` message whose
//! `raw` field holds the object's own protobuf message. Only the kinds kubectl creates
//! imperatively are decoded (Secret, ConfigMap, Namespace, plus DeleteOptions), and only the
//! fields a client can meaningfully send; the result is the equivalent JSON object, which the
//! rest of the server handles as usual. Responses stay JSON (clients always accept it); the
//! protobuf form of `/openapi/v2` is gnostic's, another schema (see [`crate::openapi_proto`]).

use std::collections::BTreeMap;

use prost::Message;
use serde_json::{json, Map, Value};

use crate::status::ApiError;

pub const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";
const MAGIC: &[u8] = b"k8s\0";

/// `k8s.io.apimachinery.pkg.runtime.Unknown`.
#[derive(Clone, PartialEq, Message)]
pub struct Unknown {
    #[prost(message, optional, tag = "1")]
    pub type_meta: Option<TypeMeta>,
    #[prost(bytes = "vec", optional, tag = "2")]
    pub raw: Option<Vec<u8>>,
    #[prost(string, optional, tag = "3")]
    pub content_encoding: Option<String>,
    #[prost(string, optional, tag = "4")]
    pub content_type: Option<String>,
}

/// `k8s.io.apimachinery.pkg.runtime.TypeMeta`.
#[derive(Clone, PartialEq, Message)]
pub struct TypeMeta {
    #[prost(string, optional, tag = "1")]
    pub api_version: Option<String>,
    #[prost(string, optional, tag = "2")]
    pub kind: Option<String>,
}

/// `k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta` (the fields a client sets).
#[derive(Clone, PartialEq, Message)]
pub struct ObjectMeta {
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    #[prost(string, optional, tag = "2")]
    pub generate_name: Option<String>,
    #[prost(string, optional, tag = "3")]
    pub namespace: Option<String>,
    #[prost(string, optional, tag = "5")]
    pub uid: Option<String>,
    #[prost(string, optional, tag = "6")]
    pub resource_version: Option<String>,
    #[prost(btree_map = "string, string", tag = "11")]
    pub labels: BTreeMap<String, String>,
    #[prost(btree_map = "string, string", tag = "12")]
    pub annotations: BTreeMap<String, String>,
    #[prost(message, repeated, tag = "13")]
    pub owner_references: Vec<OwnerReference>,
    #[prost(string, repeated, tag = "14")]
    pub finalizers: Vec<String>,
}

/// `k8s.io.apimachinery.pkg.apis.meta.v1.OwnerReference`.
#[derive(Clone, PartialEq, Message)]
pub struct OwnerReference {
    #[prost(string, optional, tag = "1")]
    pub kind: Option<String>,
    #[prost(string, optional, tag = "3")]
    pub name: Option<String>,
    #[prost(string, optional, tag = "4")]
    pub uid: Option<String>,
    #[prost(string, optional, tag = "5")]
    pub api_version: Option<String>,
    #[prost(bool, optional, tag = "6")]
    pub controller: Option<bool>,
    #[prost(bool, optional, tag = "7")]
    pub block_owner_deletion: Option<bool>,
}

/// `k8s.io.api.core.v1.Secret`.
#[derive(Clone, PartialEq, Message)]
pub struct Secret {
    #[prost(message, optional, tag = "1")]
    pub metadata: Option<ObjectMeta>,
    #[prost(btree_map = "string, bytes", tag = "2")]
    pub data: BTreeMap<String, Vec<u8>>,
    #[prost(string, optional, tag = "3")]
    pub r#type: Option<String>,
    #[prost(btree_map = "string, string", tag = "4")]
    pub string_data: BTreeMap<String, String>,
    #[prost(bool, optional, tag = "5")]
    pub immutable: Option<bool>,
}

/// `k8s.io.api.core.v1.ConfigMap`.
#[derive(Clone, PartialEq, Message)]
pub struct ConfigMap {
    #[prost(message, optional, tag = "1")]
    pub metadata: Option<ObjectMeta>,
    #[prost(btree_map = "string, string", tag = "2")]
    pub data: BTreeMap<String, String>,
    #[prost(btree_map = "string, bytes", tag = "3")]
    pub binary_data: BTreeMap<String, Vec<u8>>,
    #[prost(bool, optional, tag = "4")]
    pub immutable: Option<bool>,
}

/// `k8s.io.api.core.v1.Namespace`.
#[derive(Clone, PartialEq, Message)]
pub struct Namespace {
    #[prost(message, optional, tag = "1")]
    pub metadata: Option<ObjectMeta>,
    #[prost(message, optional, tag = "2")]
    pub spec: Option<NamespaceSpec>,
}

/// `k8s.io.api.core.v1.NamespaceSpec`.
#[derive(Clone, PartialEq, Message)]
pub struct NamespaceSpec {
    #[prost(string, repeated, tag = "1")]
    pub finalizers: Vec<String>,
}

/// `k8s.io.apimachinery.pkg.apis.meta.v1.DeleteOptions`.
#[derive(Clone, PartialEq, Message)]
pub struct DeleteOptions {
    #[prost(int64, optional, tag = "1")]
    pub grace_period_seconds: Option<i64>,
    #[prost(message, optional, tag = "2")]
    pub preconditions: Option<Preconditions>,
    #[prost(bool, optional, tag = "3")]
    pub orphan_dependents: Option<bool>,
    #[prost(string, optional, tag = "4")]
    pub propagation_policy: Option<String>,
    #[prost(string, repeated, tag = "5")]
    pub dry_run: Vec<String>,
}

/// `k8s.io.apimachinery.pkg.apis.meta.v1.Preconditions`.
#[derive(Clone, PartialEq, Message)]
pub struct Preconditions {
    #[prost(string, optional, tag = "1")]
    pub uid: Option<String>,
    #[prost(string, optional, tag = "2")]
    pub resource_version: Option<String>,
}

/// Whether a Content-Type header names the Kubernetes protobuf encoding.
pub fn is_protobuf(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|b| b.trim().eq_ignore_ascii_case(CONTENT_TYPE))
}

fn unsupported(msg: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        415,
        "UnsupportedMediaType",
        format!("the body of the request was in an unknown format - {msg}; accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf (Secret, ConfigMap, Namespace, DeleteOptions)"),
    )
}

fn bad(e: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!("error decoding protobuf: {e}"))
}

fn opt_str(m: &mut Map<String, Value>, k: &str, v: &Option<String>) {
    if let Some(v) = v.as_ref().filter(|v| !v.is_empty()) {
        m.insert(k.into(), json!(v));
    }
}

fn string_map(m: &BTreeMap<String, String>) -> Value {
    Value::Object(m.iter().map(|(k, v)| (k.clone(), json!(v))).collect())
}

fn bytes_map(m: &BTreeMap<String, Vec<u8>>) -> Value {
    Value::Object(
        m.iter()
            .map(|(k, v)| (k.clone(), json!(crate::ops::base64(v))))
            .collect(),
    )
}

fn meta_json(meta: &Option<ObjectMeta>) -> Value {
    let mut m = Map::new();
    if let Some(meta) = meta {
        opt_str(&mut m, "name", &meta.name);
        opt_str(&mut m, "generateName", &meta.generate_name);
        opt_str(&mut m, "namespace", &meta.namespace);
        opt_str(&mut m, "uid", &meta.uid);
        opt_str(&mut m, "resourceVersion", &meta.resource_version);
        if !meta.labels.is_empty() {
            m.insert("labels".into(), string_map(&meta.labels));
        }
        if !meta.annotations.is_empty() {
            m.insert("annotations".into(), string_map(&meta.annotations));
        }
        if !meta.owner_references.is_empty() {
            let refs: Vec<Value> = meta
                .owner_references
                .iter()
                .map(|r| {
                    let mut o = Map::new();
                    opt_str(&mut o, "apiVersion", &r.api_version);
                    opt_str(&mut o, "kind", &r.kind);
                    opt_str(&mut o, "name", &r.name);
                    opt_str(&mut o, "uid", &r.uid);
                    if let Some(c) = r.controller {
                        o.insert("controller".into(), json!(c));
                    }
                    if let Some(b) = r.block_owner_deletion {
                        o.insert("blockOwnerDeletion".into(), json!(b));
                    }
                    Value::Object(o)
                })
                .collect();
            m.insert("ownerReferences".into(), Value::Array(refs));
        }
        if !meta.finalizers.is_empty() {
            m.insert("finalizers".into(), json!(meta.finalizers));
        }
    }
    Value::Object(m)
}

/// Split the envelope: (apiVersion, kind, raw message bytes).
fn envelope(body: &[u8]) -> Result<(String, String, Vec<u8>), ApiError> {
    let rest = body
        .strip_prefix(MAGIC)
        .ok_or_else(|| bad("the body does not start with the k8s protobuf magic number"))?;
    let u = Unknown::decode(rest).map_err(bad)?;
    if u.content_encoding.as_deref().is_some_and(|e| !e.is_empty()) {
        return Err(unsupported(format!(
            "content encoding {:?} is not supported",
            u.content_encoding.unwrap_or_default()
        )));
    }
    let tm = u.type_meta.unwrap_or_default();
    Ok((
        tm.api_version.unwrap_or_default(),
        tm.kind.unwrap_or_default(),
        u.raw.unwrap_or_default(),
    ))
}

/// Decode a protobuf request body into the JSON object it stands for.
pub fn decode(body: &[u8]) -> Result<Value, ApiError> {
    let (api_version, kind, raw) = envelope(body)?;
    let raw = raw.as_slice();
    let mut obj = match (api_version.as_str(), kind.as_str()) {
        ("v1", "Secret") => {
            let s = Secret::decode(raw).map_err(bad)?;
            let mut o = json!({"metadata": meta_json(&s.metadata)});
            if !s.data.is_empty() {
                o["data"] = bytes_map(&s.data);
            }
            if !s.string_data.is_empty() {
                o["stringData"] = string_map(&s.string_data);
            }
            if let Some(t) = s.r#type.filter(|t| !t.is_empty()) {
                o["type"] = json!(t);
            }
            if let Some(i) = s.immutable {
                o["immutable"] = json!(i);
            }
            o
        }
        ("v1", "ConfigMap") => {
            let c = ConfigMap::decode(raw).map_err(bad)?;
            let mut o = json!({"metadata": meta_json(&c.metadata)});
            if !c.data.is_empty() {
                o["data"] = string_map(&c.data);
            }
            if !c.binary_data.is_empty() {
                o["binaryData"] = bytes_map(&c.binary_data);
            }
            if let Some(i) = c.immutable {
                o["immutable"] = json!(i);
            }
            o
        }
        ("v1", "Namespace") => {
            let n = Namespace::decode(raw).map_err(bad)?;
            let mut o = json!({"metadata": meta_json(&n.metadata)});
            if let Some(spec) = n.spec.filter(|s| !s.finalizers.is_empty()) {
                o["spec"] = json!({"finalizers": spec.finalizers});
            }
            o
        }
        ("v1" | "meta.k8s.io/v1", "DeleteOptions") => {
            let d = DeleteOptions::decode(raw).map_err(bad)?;
            let mut o = json!({});
            if let Some(g) = d.grace_period_seconds {
                o["gracePeriodSeconds"] = json!(g);
            }
            if let Some(p) = d.preconditions {
                let mut pm = Map::new();
                opt_str(&mut pm, "uid", &p.uid);
                opt_str(&mut pm, "resourceVersion", &p.resource_version);
                o["preconditions"] = Value::Object(pm);
            }
            if let Some(od) = d.orphan_dependents {
                o["orphanDependents"] = json!(od);
            }
            if let Some(p) = d.propagation_policy {
                o["propagationPolicy"] = json!(p);
            }
            if !d.dry_run.is_empty() {
                o["dryRun"] = json!(d.dry_run);
            }
            o
        }
        (v, k) => {
            return Err(unsupported(format!(
                "protobuf bodies of kind {k:?} in {v:?} are not supported"
            )))
        }
    };
    obj["apiVersion"] = json!(api_version);
    obj["kind"] = json!(kind);
    Ok(obj)
}

/// Wrap a message in the envelope (what client-go sends); used by tests.
pub fn encode(api_version: &str, kind: &str, msg: &impl Message) -> Vec<u8> {
    let u = Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some(api_version.into()),
            kind: Some(kind.into()),
        }),
        raw: Some(msg.encode_to_vec()),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    let mut out = MAGIC.to_vec();
    out.extend(u.encode_to_vec());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_round_trip_to_json() {
        let s = Secret {
            metadata: Some(ObjectMeta {
                name: Some("creds".into()),
                namespace: Some("default".into()),
                labels: [("app".to_string(), "x".to_string())].into(),
                ..Default::default()
            }),
            data: [("api-key".to_string(), b"x".to_vec())].into(),
            r#type: Some("Opaque".into()),
            ..Default::default()
        };
        let v = decode(&encode("v1", "Secret", &s)).unwrap();
        assert_eq!(
            v,
            json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                   "metadata": {"name": "creds", "namespace": "default", "labels": {"app": "x"}},
                   "data": {"api-key": "eA=="}})
        );
    }

    #[test]
    fn namespace_configmap_and_delete_options() {
        let n = Namespace {
            metadata: Some(ObjectMeta {
                name: Some("team".into()),
                ..Default::default()
            }),
            spec: None,
        };
        assert_eq!(
            decode(&encode("v1", "Namespace", &n)).unwrap()["metadata"]["name"],
            "team"
        );
        let c = ConfigMap {
            metadata: None,
            data: [("a".to_string(), "b".to_string())].into(),
            ..Default::default()
        };
        assert_eq!(
            decode(&encode("v1", "ConfigMap", &c)).unwrap()["data"],
            json!({"a": "b"})
        );
        let d = DeleteOptions {
            preconditions: Some(Preconditions {
                uid: Some("u".into()),
                resource_version: None,
            }),
            dry_run: vec!["All".into()],
            ..Default::default()
        };
        let v = decode(&encode("meta.k8s.io/v1", "DeleteOptions", &d)).unwrap();
        assert_eq!(v["preconditions"]["uid"], "u");
        assert_eq!(v["dryRun"], json!(["All"]));
    }

    #[test]
    fn errors() {
        assert_eq!(decode(b"{}").unwrap_err().code, 400);
        let other = encode("apps/v1", "Deployment", &TypeMeta::default());
        assert_eq!(decode(&other).unwrap_err().code, 415);
        assert!(is_protobuf(
            "application/vnd.kubernetes.protobuf; charset=x"
        ));
        assert!(!is_protobuf("application/json"));
    }
}
