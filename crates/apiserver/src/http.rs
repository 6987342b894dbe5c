//! The axum routes: discovery, OpenAPI, and one handler that parses Kubernetes resource
//! paths (`/api/v1/...`, `/apis/{group}/{version}/...`) and dispatches by method.

use std::collections::HashMap;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State as AxState;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use serde_json::{json, Value};

use crate::discovery::ResourceInfo;
use crate::ops::{self, DeleteOpts, FieldValidation, Target, WriteOpts};
use crate::patch::PatchKind;
use crate::selector::{FieldSelector, LabelSelector, Selectors};
use crate::status::ApiError;
use crate::store::{WatchMsg, WatchStart};
use crate::{discovery, events, openapi, openapi_proto, protobuf, table, ApiServer};

pub fn router(server: ApiServer) -> Router {
    Router::new()
        .route("/version", get(version))
        .route("/healthz", get(ok))
        .route("/livez", get(ok))
        .route("/readyz", get(ok))
        .route("/openapi/v2", get(openapi_v2))
        .route("/openapi/v3", get(openapi_v3_index))
        .route("/openapi/v3/{*path}", get(openapi_v3_gv))
        .route("/api", any(handle))
        .route("/api/{*rest}", any(handle))
        .route("/apis", any(handle))
        .route("/apis/{*rest}", any(handle))
        .fallback(not_found)
        .with_state(server)
}

async fn ok() -> &'static str {
    "ok"
}

async fn not_found(uri: Uri) -> Response {
    ApiError::new(
        404,
        "NotFound",
        format!(
            "the server could not find the requested resource ({})",
            uri.path()
        ),
    )
    .into_response()
}

fn json_response(code: u16, v: &Value, warnings: &[String]) -> Response {
    let mut r = Response::new(Body::from(v.to_string()));
    *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
    r.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    for w in warnings {
        let text = format!("299 - {}", serde_json::to_string(w).unwrap_or_default());
        if let Ok(h) = HeaderValue::from_str(&text) {
            r.headers_mut().append("warning", h);
        }
    }
    r
}

async fn version() -> Response {
    json_response(200, &discovery::version_doc(), &[])
}

fn accept(headers: &HeaderMap) -> String {
    headers
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

async fn openapi_v2(AxState(server): AxState<ApiServer>, headers: HeaderMap) -> Response {
    let a = accept(&headers);
    let Some(proto) = openapi_v2_wants_protobuf(&a) else {
        return ApiError::new(
            406,
            "NotAcceptable",
            format!(
                "/openapi/v2 is served as application/json or {}, not {a:?}",
                openapi_proto::CONTENT_TYPE
            ),
        )
        .into_response();
    };
    let doc = openapi::v2(&server.lock().resources);
    let mut r = if proto {
        let mut r = Response::new(Body::from(openapi_proto::encode(&doc)));
        r.headers_mut().insert(
            "content-type",
            HeaderValue::from_static(openapi_proto::CONTENT_TYPE),
        );
        r
    } else {
        json_response(200, &doc, &[])
    };
    r.headers_mut()
        .insert("vary", HeaderValue::from_static("Accept"));
    r
}

/// Content negotiation for `/openapi/v2` as kube-openapi does it: the Accept clauses by
/// quality, exact types before wildcards, and the first that JSON or gnostic's protobuf
/// matches wins; no Accept means JSON. `Some(true)` is protobuf, `None` nothing acceptable.
/// client-go's discovery asks for protobuf alone, and kubectl's client-side validation
/// (every item of a `kind: List`) reads it.
fn openapi_v2_wants_protobuf(accept: &str) -> Option<bool> {
    let accept = if accept.trim().is_empty() {
        "*/*"
    } else {
        accept
    };
    let mut clauses: Vec<(f64, &str, &str)> = accept
        .split(',')
        .filter_map(|clause| {
            let mut parts = clause.split(';');
            let media = parts.next()?.trim();
            // A lone `*` is `*/*`, as goautoneg reads it.
            let (ty, sub) = if media == "*" {
                ("*", "*")
            } else {
                media.split_once('/')?
            };
            let q = parts
                .filter_map(|p| p.split_once('='))
                .find(|(k, _)| k.trim() == "q")
                .and_then(|(_, v)| v.trim().parse::<f64>().ok())
                .unwrap_or(1.0);
            Some((q, ty.trim(), sub.trim()))
        })
        .collect();
    clauses.sort_by(|a, b| {
        b.0.total_cmp(&a.0)
            .then((a.1 == "*").cmp(&(b.1 == "*")))
            .then((a.2 == "*").cmp(&(b.2 == "*")))
    });
    let offered = [
        ("application/json", false),
        (openapi_proto::ACCEPTED[0], true),
        (openapi_proto::ACCEPTED[1], true),
    ];
    clauses.iter().find_map(|(_, ty, sub)| {
        offered.iter().find_map(|(media, proto)| {
            let (oty, osub) = media.split_once('/')?;
            ((*ty == "*" || *ty == oty) && (*sub == "*" || *sub == osub)).then_some(*proto)
        })
    })
}

async fn openapi_v3_index(AxState(server): AxState<ApiServer>) -> Response {
    let doc = openapi::v3_index(&server.lock().resources);
    json_response(200, &doc, &[])
}

async fn openapi_v3_gv(AxState(server): AxState<ApiServer>, uri: Uri) -> Response {
    let path = uri.path().trim_start_matches("/openapi/v3/");
    let segs: Vec<&str> = path.split('/').collect();
    let (group, version) = match segs.as_slice() {
        ["api", v] => ("", *v),
        ["apis", g, v] => (*g, *v),
        _ => return not_found(uri.clone()).await,
    };
    let doc = {
        let state = server.lock();
        state
            .resources
            .iter()
            .any(|r| r.group == group && r.version(version).is_some())
            .then(|| openapi::v3_group_version(&state.resources, group, version))
    };
    match doc {
        Some(d) => json_response(200, &d, &[]),
        None => not_found(uri.clone()).await,
    }
}

/// Percent-decode a query component (`+` is a space).
fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16)
                {
                    Ok(x) => {
                        out.push(x);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn query_map(uri: &Uri) -> HashMap<String, String> {
    uri.query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn truthy(q: &HashMap<String, String>, k: &str) -> bool {
    q.get(k).is_some_and(|v| v == "true" || v == "1")
}

fn selectors(res: &ResourceInfo, q: &HashMap<String, String>) -> Result<Selectors, ApiError> {
    let labels = LabelSelector::parse(q.get("labelSelector").map(String::as_str).unwrap_or(""))
        .map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {e}")))?;
    let extra: &[&str] = if events::is_events(res) {
        events::FIELDS
    } else if res.plural == "secrets" && res.group.is_empty() {
        // The one field a Secret offers besides the metadata ones.
        &["type"]
    } else {
        &[]
    };
    let fields = FieldSelector::parse_with(
        q.get("fieldSelector").map(String::as_str).unwrap_or(""),
        extra,
    )
    .map_err(ApiError::bad_request)?;
    Ok(Selectors { labels, fields })
}

async fn handle(
    AxState(server): AxState<ApiServer>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match route(&server, &method, &uri, &headers, &body) {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

/// Parsed resource path.
struct Parsed {
    group: String,
    version: String,
    namespace: Option<String>,
    resource: String,
    name: Option<String>,
    sub: Option<String>,
}

fn route(
    server: &ApiServer,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Response, ApiError> {
    let path = uri.path().trim_end_matches('/');
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let acc = accept(headers);
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_string();
    // Discovery.
    let (group, version, rest): (&str, &str, &[&str]) = match segs.as_slice() {
        ["api"] => {
            return Ok(discovery_response(
                server,
                &acc,
                true,
                Some(discovery::api_versions(&host)),
            ))
        }
        ["apis"] => return Ok(discovery_response(server, &acc, false, None)),
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g] => {
            let st = server.lock();
            return discovery::api_group_doc(&st.resources, g)
                .map(|d| json_response(200, &d, &[]))
                .ok_or_else(|| {
                    ApiError::new(
                        404,
                        "NotFound",
                        "the server could not find the requested resource",
                    )
                });
        }
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => {
            return Err(ApiError::new(
                404,
                "NotFound",
                "the server could not find the requested resource",
            ))
        }
    };
    if rest.is_empty() {
        let st = server.lock();
        return discovery::api_resource_list(&st.resources, group, version)
            .map(|d| json_response(200, &d, &[]))
            .ok_or_else(|| {
                ApiError::new(
                    404,
                    "NotFound",
                    "the server could not find the requested resource",
                )
            });
    }
    let p = {
        let st = server.lock();
        let namespaced_res = |r: &str| st.find(group, version, r).is_some_and(|i| i.namespaced);
        let s = |x: &&str| x.to_string();
        match rest {
            ["namespaces", ns, r, tail @ ..] if group.is_empty() || namespaced_res(r) => {
                if group.is_empty() && !namespaced_res(r) && tail.is_empty() {
                    // `/api/v1/namespaces/{name}/status` and `/finalize`: subresources of a namespace.
                    Parsed {
                        group: group.into(),
                        version: version.into(),
                        namespace: None,
                        resource: "namespaces".into(),
                        name: Some(ns.to_string()),
                        sub: Some(r.to_string()),
                    }
                } else {
                    Parsed {
                        group: group.into(),
                        version: version.into(),
                        namespace: Some(ns.to_string()),
                        resource: r.to_string(),
                        name: tail.first().map(s),
                        sub: tail.get(1).map(s),
                    }
                }
            }
            [r, tail @ ..] => Parsed {
                group: group.into(),
                version: version.into(),
                namespace: None,
                resource: r.to_string(),
                name: tail.first().map(s),
                sub: tail.get(1).map(s),
            },
            [] => unreachable!("rest is not empty"),
        }
    };
    let q = query_map(uri);
    let target = {
        let st = server.lock();
        let res = st
            .find(&p.group, &p.version, &p.resource)
            .cloned()
            .ok_or_else(|| {
                ApiError::new(
                    404,
                    "NotFound",
                    "the server could not find the requested resource",
                )
            })?;
        if let Some(sub) = &p.sub {
            let ok = sub == "status"
                && res
                    .version(&p.version)
                    .is_some_and(|v| v.status_subresource)
                || (sub == "finalize" && res.plural == "namespaces");
            if !ok {
                return Err(ApiError::new(
                    404,
                    "NotFound",
                    "the server could not find the requested resource",
                ));
            }
        }
        // kube-rs and kubectl read cluster-scoped kinds through namespaced paths only by mistake.
        if !res.namespaced && p.namespace.is_some() {
            return Err(ApiError::new(
                404,
                "NotFound",
                "the server could not find the requested resource",
            ));
        }
        Target {
            res,
            version: p.version.clone(),
            namespace: p.namespace.clone(),
            name: p.name.clone(),
            subresource: p.sub.clone().filter(|s| s != "finalize"),
        }
    };
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_string();
    // JSON and YAML bodies, and protobuf for the built-in kinds kubectl's typed clients send
    // (see `protobuf`). CBOR answers 415, after which client-go switches to JSON.
    if !body.is_empty() && content_type.contains("cbor") {
        return Err(ApiError::unsupported_media_type(&content_type));
    }
    // Responses are JSON only: a client that accepts nothing else gets 406.
    if !accepts_json(&acc) {
        return Err(ApiError::new(
            406,
            "NotAcceptable",
            format!(
                "only the following media types are accepted: application/json (Accept: {acc:?})"
            ),
        ));
    }
    let opts = WriteOpts {
        field_validation: FieldValidation::parse(
            q.get("fieldValidation").map(String::as_str).unwrap_or(""),
        )?,
        field_manager: q.get("fieldManager").cloned(),
        force: truthy(&q, "force"),
        dry_run: q.get("dryRun").is_some_and(|d| d == "All"),
    };
    let as_table = table::wants_table(&acc);
    let include = q
        .get("includeObject")
        .cloned()
        .unwrap_or_else(|| "Metadata".into());
    match (method.clone(), target.name.is_some()) {
        (Method::GET, false) => {
            if truthy(&q, "watch") {
                watch(server, &target, &q, as_table)
            } else {
                list(server, &target, &q, as_table, &include)
            }
        }
        (Method::GET, true) => {
            let st = server.lock();
            let ns = if target.res.namespaced {
                target.namespace.as_deref().unwrap_or("")
            } else {
                ""
            };
            let name = target.name.as_deref().unwrap_or("");
            let obj = st
                .store
                .get(&target.res.gr(), ns, name)
                .cloned()
                .ok_or_else(|| ApiError::not_found(&target.res.group, &target.res.plural, name))?;
            let obj = ops::output(&target.res, &target.version, obj);
            if as_table {
                let rv = st.store.current_rv().to_string();
                return Ok(json_response(
                    200,
                    &table::table(&target.res, &target.version, &[obj], &rv, &include),
                    &[],
                ));
            }
            Ok(json_response(200, &obj, &[]))
        }
        (Method::POST, false) => {
            let body = request_body(body, &content_type)?;
            let w = ops::create(&mut server.lock(), &target, body, &opts)?;
            Ok(json_response(w.code, &w.object, &w.warnings))
        }
        (Method::PUT, true) => {
            let body = request_body(body, &content_type)?;
            let w = ops::update(&mut server.lock(), &target, body, &opts)?;
            Ok(json_response(w.code, &w.object, &w.warnings))
        }
        (Method::PATCH, true) => {
            let kind = PatchKind::from_content_type(&content_type)
                .ok_or_else(|| ApiError::unsupported_media_type(&content_type))?;
            let w = ops::patch(&mut server.lock(), &target, kind, body, &opts)?;
            Ok(json_response(w.code, &w.object, &w.warnings))
        }
        (Method::DELETE, true) => {
            let mut d = delete_opts(body, &content_type)?;
            d.dry_run |= opts.dry_run;
            let w = ops::delete(&mut server.lock(), &target, &d)?;
            Ok(json_response(w.code, &w.object, &w.warnings))
        }
        (Method::DELETE, false) => {
            let sel = selectors(&target.res, &q)?;
            let mut st = server.lock();
            let items = ops::delete_collection(&mut st, &target, &sel);
            let rv = st.store.current_rv().to_string();
            let list = json!({"kind": target.res.list_kind, "apiVersion": target.res.api_version(&target.version), "metadata": {"resourceVersion": rv}, "items": items});
            Ok(json_response(200, &list, &[]))
        }
        (m, _) => Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({m})"
        ))),
    }
}

/// A POST/PUT body as JSON: JSON, YAML, or a Kubernetes protobuf envelope.
fn request_body(body: &Bytes, content_type: &str) -> Result<Value, ApiError> {
    if protobuf::is_protobuf(content_type) {
        return protobuf::decode(body);
    }
    crate::patch::parse_body(body, content_type.contains("yaml"))
}

/// Whether the Accept header allows a JSON answer (absent, `*/*`, `application/*` or JSON).
fn accepts_json(accept: &str) -> bool {
    accept.trim().is_empty()
        || accept.split(',').any(|part| {
            let base = part.split(';').next().unwrap_or("").trim();
            matches!(
                base,
                "*/*" | "application/*" | "application/json" | "application/yaml" | "*"
            )
        })
}

fn delete_opts(body: &Bytes, content_type: &str) -> Result<DeleteOpts, ApiError> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(DeleteOpts::default());
    }
    let v: Value = if protobuf::is_protobuf(content_type) {
        protobuf::decode(body)?
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding DeleteOptions: {e}")))?
    };
    Ok(DeleteOpts::from_body(&v))
}

fn discovery_response(
    server: &ApiServer,
    acc: &str,
    core: bool,
    legacy: Option<Value>,
) -> Response {
    let st = server.lock();
    if discovery::wants_aggregated(acc) {
        let mut r = json_response(200, &discovery::aggregated(&st.resources, core), &[]);
        r.headers_mut().insert(
            "content-type",
            HeaderValue::from_static(discovery::AGGREGATED_CONTENT_TYPE),
        );
        return r;
    }
    let doc = legacy.unwrap_or_else(|| discovery::api_group_list(&st.resources));
    json_response(200, &doc, &[])
}

fn parse_rv(s: &str) -> Result<u64, ApiError> {
    s.parse::<u64>()
        .map_err(|_| ApiError::bad_request(format!("invalid resource version: {s:?}")))
}

fn list(
    server: &ApiServer,
    t: &Target,
    q: &HashMap<String, String>,
    as_table: bool,
    include: &str,
) -> Result<Response, ApiError> {
    let sel = selectors(&t.res, q)?;
    let st = server.lock();
    let g = t.res.gr();
    let ns = if t.res.namespaced {
        t.namespace.as_deref()
    } else {
        None
    };
    let current = st.store.current_rv();
    let rv = q.get("resourceVersion").map(String::as_str).unwrap_or("");
    let rv_match = q
        .get("resourceVersionMatch")
        .map(String::as_str)
        .unwrap_or("");
    let token = q.get("continue").filter(|c| !c.is_empty());
    let (items, list_rv) = match (rv, rv_match) {
        // A continued list is read at the first page's resourceVersion.
        _ if token.is_some() => {
            let (n, _) = parse_continue(token.map(String::as_str).unwrap_or(""))?;
            let items = st
                .store
                .list_at(&g, ns, &sel, n)
                .map_err(|_| ApiError::expired(CONTINUE_TOO_OLD))?;
            (items, n)
        }
        ("", "") | ("0", "") | ("0", "NotOlderThan") | ("", "NotOlderThan") => {
            (st.store.list(&g, ns, &sel), current)
        }
        ("", m) => {
            return Err(ApiError::bad_request(format!(
                "resourceVersionMatch \"{m}\" is forbidden unless resourceVersion is provided"
            )))
        }
        (r, "Exact") => {
            let n = parse_rv(r)?;
            if n > current {
                return Err(ApiError::timeout(format!(
                    "Too large resource version: {n}, current: {current}"
                )));
            }
            let items = st.store.list_at(&g, ns, &sel, n).map_err(|_| {
                ApiError::expired("The resourceVersion for the provided list is too old.")
            })?;
            (items, n)
        }
        (r, "" | "NotOlderThan") => {
            let n = parse_rv(r)?;
            if n > current {
                return Err(ApiError::timeout(format!(
                    "Too large resource version: {n}, current: {current}"
                )));
            }
            (st.store.list(&g, ns, &sel), current)
        }
        (_, m) => {
            return Err(ApiError::bad_request(format!(
                "unsupported resourceVersionMatch: {m:?}"
            )))
        }
    };
    drop(st);
    // etcd's order: by key `namespace/name`.
    let mut items: Vec<(String, Value)> = items.into_iter().map(|o| (storage_key(&o), o)).collect();
    items.sort_by(|a, b| a.0.cmp(&b.0));
    if let Some(c) = token {
        let (_, after) = parse_continue(c)?;
        items.retain(|(k, _)| *k > after);
    }
    // limit/continue pages as kube-apiserver does; remainingItemCount only without selectors.
    let limit = q
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0);
    let mut next = String::new();
    let mut remaining = None;
    if let Some(l) = limit.filter(|l| items.len() > *l) {
        let rest = items.split_off(l);
        if let Some((last, _)) = items.last() {
            next = format!("{list_rv}/{last}");
        }
        if sel.labels.is_empty() && sel.fields.is_empty() {
            remaining = Some(rest.len());
        }
    }
    let items: Vec<Value> = items
        .into_iter()
        .map(|(_, o)| ops::output(&t.res, &t.version, o))
        .collect();
    if as_table {
        return Ok(json_response(
            200,
            &table::table(&t.res, &t.version, &items, &list_rv.to_string(), include),
            &[],
        ));
    }
    let mut metadata = json!({"resourceVersion": list_rv.to_string()});
    // A custom resource's list always carries `continue` (empty on the last page).
    if t.res.custom || !next.is_empty() {
        metadata["continue"] = json!(next);
    }
    if let Some(n) = remaining {
        metadata["remainingItemCount"] = json!(n);
    }
    let list = json!({
        "kind": t.res.list_kind, "apiVersion": t.res.api_version(&t.version),
        "metadata": metadata, "items": items,
    });
    Ok(json_response(200, &list, &[]))
}

const CONTINUE_TOO_OLD: &str = "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.";

/// `namespace/name` (or `name`), the order of etcd's keys.
fn storage_key(obj: &Value) -> String {
    let m = &obj["metadata"];
    let name = m["name"].as_str().unwrap_or("");
    match m["namespace"].as_str().filter(|n| !n.is_empty()) {
        Some(ns) => format!("{ns}/{name}"),
        None => name.to_string(),
    }
}

/// A continue token: `<resourceVersion>/<key of the last item sent>`.
fn parse_continue(token: &str) -> Result<(u64, String), ApiError> {
    let bad = || ApiError::bad_request(format!("continue key is not valid: {token:?}"));
    let (rv, key) = token.split_once('/').ok_or_else(bad)?;
    Ok((rv.parse::<u64>().map_err(|_| bad())?, key.to_string()))
}

/// Removes the watcher from the store when its stream is dropped.
struct WatchGuard {
    server: ApiServer,
    id: u64,
}

impl Drop for WatchGuard {
    fn drop(&mut self) {
        self.server.lock().store.unwatch(self.id);
    }
}

const BOOKMARK_INTERVAL: Duration = Duration::from_secs(5);
const DEFAULT_WATCH_TIMEOUT: u64 = 1800;

fn watch(
    server: &ApiServer,
    t: &Target,
    q: &HashMap<String, String>,
    as_table: bool,
) -> Result<Response, ApiError> {
    let sel = selectors(&t.res, q)?;
    let bookmarks = truthy(q, "allowWatchBookmarks");
    let rv = q.get("resourceVersion").map(String::as_str).unwrap_or("");
    let send_initial = q.get("sendInitialEvents").map(String::as_str);
    let timeout = q
        .get("timeoutSeconds")
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(DEFAULT_WATCH_TIMEOUT);
    let mut st = server.lock();
    let start = match (send_initial, rv) {
        // kube-apiserver 1.37 serves the initial events without their closing bookmark when
        // bookmarks were not asked for.
        (Some("true"), _) if !bookmarks => WatchStart::CurrentState,
        (Some("true"), _) => WatchStart::InitialEventsWithBookmark,
        (Some("false"), "" | "0") => WatchStart::After(st.store.current_rv()),
        (_, "" | "0") => WatchStart::CurrentState,
        (_, r) => WatchStart::After(parse_rv(r)?),
    };
    let ns = if t.res.namespaced {
        t.namespace.as_deref()
    } else {
        None
    };
    let since = st.served_since.get(&t.res.gr()).copied().unwrap_or(0);
    let registered = match start {
        WatchStart::After(n) if n < since => Err(crate::store::TooOld {
            requested: n,
            oldest: since,
        }),
        _ => st.store.watch(&t.res.gr(), ns, sel, start),
    };
    drop(st);
    let res = t.res.clone();
    let version = t.version.clone();
    let encode = move |typ: &str, obj: Value| -> Bytes {
        let obj = if as_table && typ != "BOOKMARK" && typ != "ERROR" {
            table::table(&res, &version, &[obj], "", "Metadata")
        } else {
            obj
        };
        let mut line = json!({"type": typ, "object": obj}).to_string();
        line.push('\n');
        Bytes::from(line)
    };
    let (id, rx) = match registered {
        Ok(x) => x,
        Err(too_old) => {
            let status = ApiError::expired(format!(
                "too old resource version: {} ({})",
                too_old.requested, too_old.oldest
            ))
            .to_json();
            let body = Body::from(encode("ERROR", status));
            return Ok(watch_response(body));
        }
    };
    let res = t.res.clone();
    let version = t.version.clone();
    let guard = WatchGuard {
        server: server.clone(),
        id,
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
    struct S {
        rx: tokio::sync::mpsc::UnboundedReceiver<WatchMsg>,
        guard: WatchGuard,
        tick: tokio::time::Interval,
    }
    let mut tick = tokio::time::interval_at(
        tokio::time::Instant::now() + BOOKMARK_INTERVAL,
        BOOKMARK_INTERVAL,
    );
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let init = S { rx, guard, tick };
    let stream = futures::stream::unfold(init, move |mut s| {
        let encode = encode.clone();
        let res = res.clone();
        let version = version.clone();
        async move {
            loop {
                let msg = tokio::select! {
                    m = s.rx.recv() => m?,
                    _ = tokio::time::sleep_until(deadline) => return None,
                    _ = s.tick.tick(), if bookmarks => {
                        s.guard.server.lock().store.bookmark(s.guard.id);
                        continue;
                    }
                };
                let bytes = match msg {
                    WatchMsg::Event(t, obj) => encode(t.as_str(), ops::output(&res, &version, obj)),
                    WatchMsg::Bookmark { rv, initial_end } => {
                        if !bookmarks {
                            continue;
                        }
                        let mut meta = json!({"resourceVersion": rv.to_string()});
                        if initial_end {
                            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
                        }
                        encode(
                            "BOOKMARK",
                            json!({"kind": res.kind, "apiVersion": res.api_version(&version), "metadata": meta}),
                        )
                    }
                };
                return Some((Ok::<Bytes, std::io::Error>(bytes), s));
            }
        }
    });
    Ok(watch_response(Body::from_stream(stream)))
}

fn watch_response(body: Body) -> Response {
    let mut r = Response::new(body);
    r.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    r.headers_mut().insert(
        "cache-control",
        HeaderValue::from_static("no-cache, private"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decoding() {
        assert_eq!(decode("app%3Dweb%2Ctier+in+%28a%29"), "app=web,tier in (a)");
        assert_eq!(decode("bad%zz%"), "bad%zz%");
        assert_eq!(decode("%"), "%");
    }

    #[test]
    fn openapi_v2_negotiation() {
        let wants = openapi_v2_wants_protobuf;
        // client-go's discovery (kubectl's validation of a List).
        assert_eq!(
            wants("application/com.github.proto-openapi.spec.v2@v1.0+protobuf"),
            Some(true)
        );
        assert_eq!(
            wants("application/com.github.proto-openapi.spec.v2.v1.0+protobuf"),
            Some(true)
        );
        assert_eq!(wants(""), Some(false));
        assert_eq!(wants("*/*"), Some(false));
        assert_eq!(wants("application/json, */*"), Some(false));
        assert_eq!(
            wants("application/json;q=0.5, application/com.github.proto-openapi.spec.v2.v1.0+protobuf"),
            Some(true)
        );
        assert_eq!(
            wants("*/*, application/com.github.proto-openapi.spec.v2@v1.0+protobuf"),
            Some(true)
        );
        assert_eq!(wants("text/html"), None);
        assert_eq!(wants("application/vnd.kubernetes.protobuf"), None);
        assert_eq!(wants("garbage;;,/"), None);
    }
}
