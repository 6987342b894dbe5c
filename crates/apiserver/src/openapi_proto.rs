//! `/openapi/v2` in protobuf: gnostic's `openapi.v2.Document`, built from the JSON document.
//!
//! Why this exists: kubectl validates a manifest on the client when the server cannot do it
//! for that kind. It cannot for a `kind: List` (what `kubectl get -o yaml` writes for two or
//! more objects): cli-runtime's field-validation verifier answers "unsupported" for v1 List,
//! and kubectl then checks every item against the OpenAPI v2 document, which client-go's
//! discovery fetches with `Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf`
//! only, and decodes as protobuf. Without this, `kubectl apply -f` of such a file fails with
//! "the server was unable to respond with a content type that the client supports".
//!
//! kube-apiserver (kube-openapi's handler) converts its JSON document with gnostic; this does
//! the same for the parts of Swagger 2.0 the document here uses. Vendor extensions (`x-…`),
//! `default`, `enum` and `example` values travel as YAML text, as gnostic stores them (JSON is
//! YAML). What Swagger 2.0 has no field for is left out, as kubectl would not read it.

use prost::Message;
use serde_json::{Map, Value};

/// What kube-apiserver answers for either protobuf media type it accepts.
pub const CONTENT_TYPE: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";
/// The media types a client asks for: client-go sends the first (with `@`), the second is
/// the name kube-openapi answers with.
pub const ACCEPTED: [&str; 2] = [
    "application/com.github.proto-openapi.spec.v2@v1.0+protobuf",
    CONTENT_TYPE,
];

/// `openapi.v2.Document`.
#[derive(Clone, PartialEq, Message)]
pub struct Document {
    #[prost(string, tag = "1")]
    pub swagger: String,
    #[prost(message, optional, tag = "2")]
    pub info: Option<Info>,
    #[prost(message, optional, tag = "8")]
    pub paths: Option<Paths>,
    #[prost(message, optional, tag = "9")]
    pub definitions: Option<Definitions>,
    #[prost(message, repeated, tag = "16")]
    pub vendor_extension: Vec<NamedAny>,
}

/// `openapi.v2.Info`.
#[derive(Clone, PartialEq, Message)]
pub struct Info {
    #[prost(string, tag = "1")]
    pub title: String,
    #[prost(string, tag = "2")]
    pub version: String,
    #[prost(string, tag = "3")]
    pub description: String,
}

/// `openapi.v2.Any`: a value as YAML text.
#[derive(Clone, PartialEq, Message)]
pub struct Any {
    #[prost(string, tag = "2")]
    pub yaml: String,
}

/// `openapi.v2.NamedAny`.
#[derive(Clone, PartialEq, Message)]
pub struct NamedAny {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, optional, tag = "2")]
    pub value: Option<Any>,
}

/// `openapi.v2.Paths`.
#[derive(Clone, PartialEq, Message)]
pub struct Paths {
    #[prost(message, repeated, tag = "1")]
    pub vendor_extension: Vec<NamedAny>,
    #[prost(message, repeated, tag = "2")]
    pub path: Vec<NamedPathItem>,
}

/// `openapi.v2.NamedPathItem`.
#[derive(Clone, PartialEq, Message)]
pub struct NamedPathItem {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, optional, tag = "2")]
    pub value: Option<PathItem>,
}

/// `openapi.v2.PathItem`.
#[derive(Clone, PartialEq, Message)]
pub struct PathItem {
    #[prost(message, optional, tag = "2")]
    pub get: Option<Operation>,
    #[prost(message, optional, tag = "3")]
    pub put: Option<Operation>,
    #[prost(message, optional, tag = "4")]
    pub post: Option<Operation>,
    #[prost(message, optional, tag = "5")]
    pub delete: Option<Operation>,
    #[prost(message, optional, tag = "6")]
    pub options: Option<Operation>,
    #[prost(message, optional, tag = "7")]
    pub head: Option<Operation>,
    #[prost(message, optional, tag = "8")]
    pub patch: Option<Operation>,
    #[prost(message, repeated, tag = "9")]
    pub parameters: Vec<ParametersItem>,
    #[prost(message, repeated, tag = "10")]
    pub vendor_extension: Vec<NamedAny>,
}

/// `openapi.v2.Operation`.
#[derive(Clone, PartialEq, Message)]
pub struct Operation {
    #[prost(string, repeated, tag = "1")]
    pub tags: Vec<String>,
    #[prost(string, tag = "2")]
    pub summary: String,
    #[prost(string, tag = "3")]
    pub description: String,
    #[prost(string, tag = "5")]
    pub operation_id: String,
    #[prost(string, repeated, tag = "6")]
    pub produces: Vec<String>,
    #[prost(string, repeated, tag = "7")]
    pub consumes: Vec<String>,
    #[prost(message, repeated, tag = "8")]
    pub parameters: Vec<ParametersItem>,
    #[prost(message, optional, tag = "9")]
    pub responses: Option<Responses>,
    #[prost(string, repeated, tag = "10")]
    pub schemes: Vec<String>,
    #[prost(bool, tag = "11")]
    pub deprecated: bool,
    #[prost(message, repeated, tag = "13")]
    pub vendor_extension: Vec<NamedAny>,
}

/// `openapi.v2.ParametersItem`: a parameter or a reference to one.
#[derive(Clone, PartialEq, Message)]
pub struct ParametersItem {
    #[prost(oneof = "ParametersItemOneof", tags = "1, 2")]
    pub oneof: Option<ParametersItemOneof>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum ParametersItemOneof {
    #[prost(message, tag = "1")]
    Parameter(Parameter),
    #[prost(message, tag = "2")]
    JsonReference(JsonReference),
}

/// `openapi.v2.JsonReference`.
#[derive(Clone, PartialEq, Message)]
pub struct JsonReference {
    #[prost(string, tag = "1")]
    pub r#ref: String,
    #[prost(string, tag = "2")]
    pub description: String,
}

/// `openapi.v2.Parameter`.
#[derive(Clone, PartialEq, Message)]
pub struct Parameter {
    #[prost(oneof = "ParameterOneof", tags = "1, 2")]
    pub oneof: Option<ParameterOneof>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum ParameterOneof {
    #[prost(message, tag = "1")]
    BodyParameter(BodyParameter),
    #[prost(message, tag = "2")]
    NonBodyParameter(NonBodyParameter),
}

/// `openapi.v2.BodyParameter`.
#[derive(Clone, PartialEq, Message)]
pub struct BodyParameter {
    #[prost(string, tag = "1")]
    pub description: String,
    #[prost(string, tag = "2")]
    pub name: String,
    #[prost(string, tag = "3")]
    pub r#in: String,
    #[prost(bool, tag = "4")]
    pub required: bool,
    #[prost(message, optional, boxed, tag = "5")]
    pub schema: Option<Box<Schema>>,
}

/// `openapi.v2.NonBodyParameter`: the query and path forms (the only ones served).
#[derive(Clone, PartialEq, Message)]
pub struct NonBodyParameter {
    #[prost(oneof = "NonBodyOneof", tags = "3, 4")]
    pub oneof: Option<NonBodyOneof>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum NonBodyOneof {
    #[prost(message, tag = "3")]
    QueryParameterSubSchema(QueryParameterSubSchema),
    #[prost(message, tag = "4")]
    PathParameterSubSchema(PathParameterSubSchema),
}

/// `openapi.v2.QueryParameterSubSchema` (the fields a Kubernetes query parameter has).
#[derive(Clone, PartialEq, Message)]
pub struct QueryParameterSubSchema {
    #[prost(bool, tag = "1")]
    pub required: bool,
    #[prost(string, tag = "2")]
    pub r#in: String,
    #[prost(string, tag = "3")]
    pub description: String,
    #[prost(string, tag = "4")]
    pub name: String,
    #[prost(string, tag = "6")]
    pub r#type: String,
    #[prost(string, tag = "7")]
    pub format: String,
    #[prost(bool, tag = "20")]
    pub unique_items: bool,
}

/// `openapi.v2.PathParameterSubSchema` (the fields a Kubernetes path parameter has).
#[derive(Clone, PartialEq, Message)]
pub struct PathParameterSubSchema {
    #[prost(bool, tag = "1")]
    pub required: bool,
    #[prost(string, tag = "2")]
    pub r#in: String,
    #[prost(string, tag = "3")]
    pub description: String,
    #[prost(string, tag = "4")]
    pub name: String,
    #[prost(string, tag = "5")]
    pub r#type: String,
    #[prost(string, tag = "6")]
    pub format: String,
    #[prost(bool, tag = "19")]
    pub unique_items: bool,
}

/// `openapi.v2.Responses`.
#[derive(Clone, PartialEq, Message)]
pub struct Responses {
    #[prost(message, repeated, tag = "1")]
    pub response_code: Vec<NamedResponseValue>,
}

/// `openapi.v2.NamedResponseValue`.
#[derive(Clone, PartialEq, Message)]
pub struct NamedResponseValue {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, optional, tag = "2")]
    pub value: Option<ResponseValue>,
}

/// `openapi.v2.ResponseValue` (a response, never a reference, here).
#[derive(Clone, PartialEq, Message)]
pub struct ResponseValue {
    #[prost(message, optional, tag = "1")]
    pub response: Option<Response>,
}

/// `openapi.v2.Response`.
#[derive(Clone, PartialEq, Message)]
pub struct Response {
    #[prost(string, tag = "1")]
    pub description: String,
    #[prost(message, optional, tag = "2")]
    pub schema: Option<SchemaItem>,
}

/// `openapi.v2.SchemaItem` (a schema, never a file, here).
#[derive(Clone, PartialEq, Message)]
pub struct SchemaItem {
    #[prost(message, optional, tag = "1")]
    pub schema: Option<Schema>,
}

/// `openapi.v2.Definitions`.
#[derive(Clone, PartialEq, Message)]
pub struct Definitions {
    #[prost(message, repeated, tag = "1")]
    pub additional_properties: Vec<NamedSchema>,
}

/// `openapi.v2.NamedSchema`.
#[derive(Clone, PartialEq, Message)]
pub struct NamedSchema {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, optional, tag = "2")]
    pub value: Option<Schema>,
}

/// `openapi.v2.Properties`.
#[derive(Clone, PartialEq, Message)]
pub struct Properties {
    #[prost(message, repeated, tag = "1")]
    pub additional_properties: Vec<NamedSchema>,
}

/// `openapi.v2.TypeItem`.
#[derive(Clone, PartialEq, Message)]
pub struct TypeItem {
    #[prost(string, repeated, tag = "1")]
    pub value: Vec<String>,
}

/// `openapi.v2.ItemsItem`.
#[derive(Clone, PartialEq, Message)]
pub struct ItemsItem {
    #[prost(message, repeated, tag = "1")]
    pub schema: Vec<Schema>,
}

/// `openapi.v2.AdditionalPropertiesItem`: a schema or a boolean.
#[derive(Clone, PartialEq, Message)]
pub struct AdditionalPropertiesItem {
    #[prost(oneof = "AdditionalPropertiesOneof", tags = "1, 2")]
    pub oneof: Option<AdditionalPropertiesOneof>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum AdditionalPropertiesOneof {
    #[prost(message, boxed, tag = "1")]
    Schema(Box<Schema>),
    #[prost(bool, tag = "2")]
    Boolean(bool),
}

/// `openapi.v2.Schema`.
#[derive(Clone, PartialEq, Message)]
pub struct Schema {
    #[prost(string, tag = "1")]
    pub r#ref: String,
    #[prost(string, tag = "2")]
    pub format: String,
    #[prost(string, tag = "3")]
    pub title: String,
    #[prost(string, tag = "4")]
    pub description: String,
    #[prost(message, optional, tag = "5")]
    pub default: Option<Any>,
    #[prost(double, tag = "6")]
    pub multiple_of: f64,
    #[prost(double, tag = "7")]
    pub maximum: f64,
    #[prost(bool, tag = "8")]
    pub exclusive_maximum: bool,
    #[prost(double, tag = "9")]
    pub minimum: f64,
    #[prost(bool, tag = "10")]
    pub exclusive_minimum: bool,
    #[prost(int64, tag = "11")]
    pub max_length: i64,
    #[prost(int64, tag = "12")]
    pub min_length: i64,
    #[prost(string, tag = "13")]
    pub pattern: String,
    #[prost(int64, tag = "14")]
    pub max_items: i64,
    #[prost(int64, tag = "15")]
    pub min_items: i64,
    #[prost(bool, tag = "16")]
    pub unique_items: bool,
    #[prost(int64, tag = "17")]
    pub max_properties: i64,
    #[prost(int64, tag = "18")]
    pub min_properties: i64,
    #[prost(string, repeated, tag = "19")]
    pub required: Vec<String>,
    #[prost(message, repeated, tag = "20")]
    pub r#enum: Vec<Any>,
    #[prost(message, optional, tag = "21")]
    pub additional_properties: Option<AdditionalPropertiesItem>,
    #[prost(message, optional, tag = "22")]
    pub r#type: Option<TypeItem>,
    #[prost(message, optional, tag = "23")]
    pub items: Option<ItemsItem>,
    #[prost(message, repeated, tag = "24")]
    pub all_of: Vec<Schema>,
    #[prost(message, optional, tag = "25")]
    pub properties: Option<Properties>,
    #[prost(string, tag = "26")]
    pub discriminator: String,
    #[prost(bool, tag = "27")]
    pub read_only: bool,
    #[prost(message, optional, tag = "30")]
    pub example: Option<Any>,
    #[prost(message, repeated, tag = "31")]
    pub vendor_extension: Vec<NamedAny>,
}

/// The protobuf form of a Swagger 2.0 document in JSON (what [`crate::openapi::v2`] builds).
pub fn encode(doc: &Value) -> Vec<u8> {
    document(doc).encode_to_vec()
}

pub fn document(doc: &Value) -> Document {
    Document {
        swagger: text(doc, "swagger"),
        info: doc.get("info").map(|i| Info {
            title: text(i, "title"),
            version: text(i, "version"),
            description: text(i, "description"),
        }),
        paths: doc.get("paths").and_then(Value::as_object).map(|p| Paths {
            vendor_extension: extensions(p),
            path: p
                .iter()
                .filter(|(k, _)| k.starts_with('/'))
                .map(|(k, v)| NamedPathItem {
                    name: k.clone(),
                    value: Some(path_item(v)),
                })
                .collect(),
        }),
        definitions: doc
            .get("definitions")
            .and_then(Value::as_object)
            .map(|d| Definitions {
                additional_properties: named_schemas(d),
            }),
        vendor_extension: doc.as_object().map(extensions).unwrap_or_default(),
    }
}

fn text(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn strings(v: &Value, key: &str) -> Vec<String> {
    match v.get(key) {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

fn flag(v: &Value, key: &str) -> bool {
    v.get(key).and_then(Value::as_bool).unwrap_or(false)
}

fn int(v: &Value, key: &str) -> i64 {
    v.get(key).and_then(Value::as_i64).unwrap_or(0)
}

fn float(v: &Value, key: &str) -> f64 {
    v.get(key).and_then(Value::as_f64).unwrap_or(0.0)
}

/// A value as gnostic keeps it: YAML text (JSON is a subset of YAML).
fn any(v: &Value) -> Any {
    Any {
        yaml: v.to_string(),
    }
}

fn extensions(m: &Map<String, Value>) -> Vec<NamedAny> {
    m.iter()
        .filter(|(k, _)| k.starts_with("x-"))
        .map(|(k, v)| NamedAny {
            name: k.clone(),
            value: Some(any(v)),
        })
        .collect()
}

fn path_item(v: &Value) -> PathItem {
    let op = |verb: &str| v.get(verb).map(operation);
    PathItem {
        get: op("get"),
        put: op("put"),
        post: op("post"),
        delete: op("delete"),
        options: op("options"),
        head: op("head"),
        patch: op("patch"),
        parameters: parameters(v),
        vendor_extension: v.as_object().map(extensions).unwrap_or_default(),
    }
}

fn operation(v: &Value) -> Operation {
    Operation {
        tags: strings(v, "tags"),
        summary: text(v, "summary"),
        description: text(v, "description"),
        operation_id: text(v, "operationId"),
        produces: strings(v, "produces"),
        consumes: strings(v, "consumes"),
        parameters: parameters(v),
        responses: v
            .get("responses")
            .and_then(Value::as_object)
            .map(|r| Responses {
                response_code: r
                    .iter()
                    .filter(|(k, _)| !k.starts_with("x-"))
                    .map(|(k, r)| NamedResponseValue {
                        name: k.clone(),
                        value: Some(ResponseValue {
                            response: Some(Response {
                                description: text(r, "description"),
                                schema: r.get("schema").map(|s| SchemaItem {
                                    schema: Some(schema(s)),
                                }),
                            }),
                        }),
                    })
                    .collect(),
            }),
        schemes: strings(v, "schemes"),
        deprecated: flag(v, "deprecated"),
        vendor_extension: v.as_object().map(extensions).unwrap_or_default(),
    }
}

/// An operation's or a path's parameters; one of a kind Swagger 2.0 has no place for (a
/// header or form parameter, which this server never lists) is left out.
fn parameters(v: &Value) -> Vec<ParametersItem> {
    let Some(list) = v.get("parameters").and_then(Value::as_array) else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|p| {
            let oneof = if let Some(r) = p.get("$ref").and_then(Value::as_str) {
                ParametersItemOneof::JsonReference(JsonReference {
                    r#ref: r.to_string(),
                    description: text(p, "description"),
                })
            } else {
                let parameter = match p.get("in").and_then(Value::as_str)? {
                    "body" => ParameterOneof::BodyParameter(BodyParameter {
                        description: text(p, "description"),
                        name: text(p, "name"),
                        r#in: "body".into(),
                        required: flag(p, "required"),
                        schema: p.get("schema").map(|s| Box::new(schema(s))),
                    }),
                    "query" => ParameterOneof::NonBodyParameter(NonBodyParameter {
                        oneof: Some(NonBodyOneof::QueryParameterSubSchema(
                            QueryParameterSubSchema {
                                required: flag(p, "required"),
                                r#in: "query".into(),
                                description: text(p, "description"),
                                name: text(p, "name"),
                                r#type: text(p, "type"),
                                format: text(p, "format"),
                                unique_items: flag(p, "uniqueItems"),
                            },
                        )),
                    }),
                    "path" => ParameterOneof::NonBodyParameter(NonBodyParameter {
                        oneof: Some(NonBodyOneof::PathParameterSubSchema(
                            PathParameterSubSchema {
                                required: flag(p, "required"),
                                r#in: "path".into(),
                                description: text(p, "description"),
                                name: text(p, "name"),
                                r#type: text(p, "type"),
                                format: text(p, "format"),
                                unique_items: flag(p, "uniqueItems"),
                            },
                        )),
                    }),
                    _ => return None,
                };
                ParametersItemOneof::Parameter(Parameter {
                    oneof: Some(parameter),
                })
            };
            Some(ParametersItem { oneof: Some(oneof) })
        })
        .collect()
}

fn named_schemas(m: &Map<String, Value>) -> Vec<NamedSchema> {
    m.iter()
        .map(|(k, v)| NamedSchema {
            name: k.clone(),
            value: Some(schema(v)),
        })
        .collect()
}

/// One schema. A value of the wrong JSON type for its keyword is left out, as if absent.
pub fn schema(v: &Value) -> Schema {
    let Some(m) = v.as_object() else {
        return Schema::default();
    };
    Schema {
        r#ref: text(v, "$ref"),
        format: text(v, "format"),
        title: text(v, "title"),
        description: text(v, "description"),
        default: m.get("default").map(any),
        multiple_of: float(v, "multipleOf"),
        maximum: float(v, "maximum"),
        exclusive_maximum: flag(v, "exclusiveMaximum"),
        minimum: float(v, "minimum"),
        exclusive_minimum: flag(v, "exclusiveMinimum"),
        max_length: int(v, "maxLength"),
        min_length: int(v, "minLength"),
        pattern: text(v, "pattern"),
        max_items: int(v, "maxItems"),
        min_items: int(v, "minItems"),
        unique_items: flag(v, "uniqueItems"),
        max_properties: int(v, "maxProperties"),
        min_properties: int(v, "minProperties"),
        required: strings(v, "required"),
        r#enum: m
            .get("enum")
            .and_then(Value::as_array)
            .map(|e| e.iter().map(any).collect())
            .unwrap_or_default(),
        additional_properties: match m.get("additionalProperties") {
            Some(Value::Bool(b)) => Some(AdditionalPropertiesItem {
                oneof: Some(AdditionalPropertiesOneof::Boolean(*b)),
            }),
            Some(s @ Value::Object(_)) => Some(AdditionalPropertiesItem {
                oneof: Some(AdditionalPropertiesOneof::Schema(Box::new(schema(s)))),
            }),
            _ => None,
        },
        r#type: Some(strings(v, "type"))
            .filter(|t| !t.is_empty())
            .map(|value| TypeItem { value }),
        items: match m.get("items") {
            Some(Value::Array(a)) => Some(ItemsItem {
                schema: a.iter().map(schema).collect(),
            }),
            Some(s @ Value::Object(_)) => Some(ItemsItem {
                schema: vec![schema(s)],
            }),
            _ => None,
        },
        all_of: m
            .get("allOf")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(schema).collect())
            .unwrap_or_default(),
        properties: m
            .get("properties")
            .and_then(Value::as_object)
            .map(|p| Properties {
                additional_properties: named_schemas(p),
            }),
        discriminator: text(v, "discriminator"),
        read_only: flag(v, "readOnly"),
        example: m.get("example").map(any),
        vendor_extension: extensions(m),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_document_round_trips_through_protobuf() {
        let doc = json!({
            "swagger": "2.0",
            "info": {"title": "Kubernetes", "version": "v1.37.0"},
            "paths": {"/apis/g/v1/namespaces/{namespace}/things/{name}": {"patch": {
                "operationId": "patchThing",
                "parameters": [{"name": "fieldValidation", "in": "query", "type": "string", "uniqueItems": true}],
                "responses": {"200": {"description": "OK", "schema": {"$ref": "#/definitions/g.v1.Thing"}}},
                "x-kubernetes-group-version-kind": {"group": "g", "version": "v1", "kind": "Thing"}}}},
            "definitions": {"g.v1.Thing": {
                "type": "object", "required": ["spec"],
                "properties": {
                    "spec": {"type": "object", "properties": {
                        "size": {"type": "integer", "format": "int64", "minimum": 1, "default": 2},
                        "mode": {"type": "string", "enum": ["a", "b"]},
                        "tags": {"type": "array", "items": {"type": "string"}},
                        "labels": {"type": "object", "additionalProperties": {"type": "string"}}}},
                    "status": {"description": "untyped"}},
                "x-kubernetes-group-version-kind": [{"group": "g", "kind": "Thing", "version": "v1"}]}}
        });
        let bytes = encode(&doc);
        let back = Document::decode(bytes.as_slice()).expect("decodes");
        assert_eq!(back.swagger, "2.0");
        let def = &back.definitions.as_ref().unwrap().additional_properties[0];
        assert_eq!(def.name, "g.v1.Thing");
        let thing = def.value.as_ref().unwrap();
        assert_eq!(thing.required, ["spec"]);
        assert_eq!(
            thing.vendor_extension[0].value.as_ref().unwrap().yaml,
            r#"[{"group":"g","kind":"Thing","version":"v1"}]"#
        );
        let props = &thing.properties.as_ref().unwrap().additional_properties;
        let spec = props.iter().find(|p| p.name == "spec").unwrap();
        let spec_props = &spec.value.as_ref().unwrap().properties.as_ref().unwrap();
        let size = spec_props
            .additional_properties
            .iter()
            .find(|p| p.name == "size")
            .unwrap()
            .value
            .as_ref()
            .unwrap();
        assert_eq!(size.r#type.as_ref().unwrap().value, ["integer"]);
        assert_eq!(size.minimum, 1.0);
        assert_eq!(size.default.as_ref().unwrap().yaml, "2");
        let labels = spec_props
            .additional_properties
            .iter()
            .find(|p| p.name == "labels")
            .and_then(|p| p.value.as_ref())
            .and_then(|v| v.additional_properties.as_ref());
        match labels.and_then(|l| l.oneof.as_ref()) {
            Some(AdditionalPropertiesOneof::Schema(s)) => {
                assert_eq!(s.r#type.as_ref().unwrap().value, ["string"])
            }
            other => panic!("not a schema: {other:?}"),
        }
        let status = props.iter().find(|p| p.name == "status").unwrap();
        assert!(status.value.as_ref().unwrap().r#type.is_none());
        let path = &back.paths.as_ref().unwrap().path[0];
        let patch = path.value.as_ref().unwrap().patch.as_ref().unwrap();
        match &patch.parameters[0].oneof {
            Some(ParametersItemOneof::Parameter(Parameter {
                oneof:
                    Some(ParameterOneof::NonBodyParameter(NonBodyParameter {
                        oneof: Some(NonBodyOneof::QueryParameterSubSchema(q)),
                    })),
            })) => assert_eq!(q.name, "fieldValidation"),
            other => panic!("not a query parameter: {other:?}"),
        }
    }

    #[test]
    fn values_of_the_wrong_type_are_left_out() {
        let s = schema(&json!({"type": 3, "maxLength": "x", "items": true, "properties": []}));
        assert!(s.r#type.is_none() && s.items.is_none() && s.properties.is_none());
        assert_eq!(s.max_length, 0);
        assert_eq!(schema(&json!("no schema")), Schema::default());
    }
}
