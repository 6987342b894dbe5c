//! The simulated import API: `/api/v1/custom_models/import` handlers, auth, envelopes,
//! request validation, and the wrapper that applies faults and counts calls.

use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER, USER_AGENT};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use jiff::Timestamp;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::calls::{header_text, Call};
use crate::control::{Endpoint, StorageInfo};
use crate::faults::{self, Injected};
use crate::jobs::{self, DeleteError, Job, ListQuery, NewJob, WeightType};
use crate::{Inner, Simulator, State as SimState};

pub const COLLECTION_PATH: &str = "/api/v1/custom_models/import";
const ITEM_PATH: &str = "/api/v1/custom_models/import/{job_id}";

pub const MAX_DISPLAY_NAME_CHARS: usize = 50;
pub const DEFAULT_PAGE_SIZE: u64 = 10;
pub const MAX_PAGE_SIZE: u64 = 100;

/// Header naming the calling client in request records.
pub const CLIENT_HEADER: &str = "x-simulator-client";
/// The workspace a call is meant for (header names are case-insensitive).
pub const WORKSPACE_HEADER: &str = "x-dashscope-workspace";
/// Carries the body's `request_id`, which the official SDK reads when a body lacks one.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

const DENIED_MESSAGE: &str = "The import job is currently running and cannot be deleted.";
const JOB_NOT_FOUND_MESSAGE: &str =
    "The import job does not exist, or you do not have access to it.";

/// An error answer: `{"request_id", "code", "message"}`.
#[derive(Clone, Debug)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    pub request_id: String,
    pub retry_after_seconds: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: &str) -> Self {
        Self {
            status,
            code: code.to_owned(),
            message: message.to_owned(),
            request_id: String::new(),
            retry_after_seconds: None,
        }
    }

    pub fn with_request_id(mut self, request_id: String) -> Self {
        self.request_id = request_id;
        self
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "InvalidParameter", &message.into())
    }

    pub(crate) fn not_found(message: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NotFound", message)
    }

    fn invalid_api_key(message: &str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "InvalidApiKey", message)
    }

    fn workspace_denied(workspace: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "Workspace.AccessDenied",
            &format!(
                "The API key does not belong to workspace {}. Send the key's own workspace id in X-DashScope-WorkSpace, or leave the header out.",
                clip(workspace, 100)
            ),
        )
    }

    pub(crate) fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "An internal error has occurred, please try again later.",
        )
    }
}

/// Adds `x-request-id`, equal to the body's `request_id`, to an answer.
fn with_request_id_header(mut response: Response, request_id: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            request_id: &self.request_id,
            code: &self.code,
            message: &self.message,
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after_seconds {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(seconds));
        }
        // Every error body has a request_id (the control API's too): the header repeats it.
        if self.request_id.is_empty() {
            response
        } else {
            with_request_id_header(response, &self.request_id)
        }
    }
}

/// Field order as documented: `request_id`, `code`, `message`.
#[derive(Serialize)]
struct ErrorBody<'a> {
    request_id: &'a str,
    code: &'a str,
    message: &'a str,
}

/// A successful answer's `output` (serialized already, to keep the documented field order),
/// and the job it concerns (for the request record).
pub(crate) struct Success {
    output: String,
    /// The job (or, for deployment calls, the `deployed_model`) the call concerned.
    job_id: Option<String>,
    /// The store's handle of a deployment just made, so a lost answer can be marked on it.
    pub(crate) deployment_id: Option<String>,
}

impl Success {
    pub(crate) fn new(output: &impl Serialize, job_id: Option<String>) -> Result<Self, ApiError> {
        let output = serde_json::to_string(output).map_err(|_| ApiError::internal())?;
        Ok(Self {
            output,
            job_id,
            deployment_id: None,
        })
    }
}

#[derive(Serialize)]
struct ListOutput {
    total: u64,
    page_no: u64,
    page_size: u64,
    list: Vec<JobView>,
}

/// What a handler may touch while the state lock is held.
pub(crate) struct Ctx<'a> {
    pub(crate) inner: &'a Inner,
    pub(crate) state: &'a mut SimState,
    pub(crate) workspace_id: String,
    pub(crate) now: Instant,
    pub(crate) client: Option<String>,
}

/// A job as the API shows it. `weight_type` only in the create answer, `error_code` only when FAILED.
#[derive(Serialize)]
struct JobView {
    job_id: String,
    model_name: String,
    display_name: String,
    source: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    weight_type: Option<&'static str>,
    storage_info: StorageInfo,
    status: String,
    gmt_create: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_code: Option<String>,
}

fn job_view(job: &Job, lc: &jobs::Lifecycle, now: Instant, with_weight_type: bool) -> JobView {
    JobView {
        job_id: job.job_id.clone(),
        model_name: job.model_name.clone(),
        display_name: job.display_name.clone(),
        source: "OSS",
        weight_type: with_weight_type.then(|| job.weight_type.as_str()),
        storage_info: StorageInfo {
            bucket_name: job.bucket_name.clone(),
            object_key: job.object_key.clone(),
        },
        status: job.status(lc, now),
        gmt_create: job.gmt_create_string(),
        error_code: job.error_code(lc, now),
    }
}

pub(crate) fn routes() -> Router<Simulator> {
    Router::new()
        .route(COLLECTION_PATH, post(create).get(list))
        .route(ITEM_PATH, get(get_job).delete(delete_job))
        .merge(crate::deployment_api::routes())
}

async fn create(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    sim.call(Endpoint::Create, &headers, None, move |ctx| {
        let body = body.map_err(|_| ApiError::invalid("The request body could not be read."))?;
        let request = parse_create(&body).map_err(ApiError::invalid)?;
        if !ctx.inner.base_models.contains(&request.base_model) {
            return Err(ApiError::not_found(&format!(
                "The base model {} does not exist or cannot be imported.",
                clip(&request.base_model, 100)
            )));
        }
        let lc = &ctx.inner.lifecycle;
        let job = ctx
            .state
            .store
            .create(
                &ctx.workspace_id,
                request,
                ctx.client.clone(),
                lc,
                &mut ctx.state.id_rng,
                ctx.now,
                Timestamp::now(),
            )
            .map_err(|_| ApiError::internal())?;
        Success::new(&job_view(job, lc, ctx.now, true), Some(job.job_id.clone()))
    })
    .await
}

async fn list(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Response {
    sim.call(Endpoint::List, &headers, None, move |ctx| {
        let Query(pairs) =
            query.map_err(|_| ApiError::invalid("The query string could not be parsed."))?;
        let query = parse_list_query(&pairs).map_err(ApiError::invalid)?;
        let lc = &ctx.inner.lifecycle;
        let page = ctx.state.store.list(&ctx.workspace_id, &query, lc, ctx.now);
        let output = ListOutput {
            total: page.total,
            page_no: query.page_no,
            page_size: query.page_size,
            list: page
                .jobs
                .iter()
                .map(|job| job_view(job, lc, ctx.now, false))
                .collect(),
        };
        Success::new(&output, None)
    })
    .await
}

async fn get_job(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    job_id: Result<Path<String>, PathRejection>,
) -> Response {
    let job_id = job_id.ok().map(|Path(id)| id);
    sim.call(Endpoint::Get, &headers, job_id.clone(), move |ctx| {
        let job_id = job_id.ok_or_else(|| ApiError::not_found(JOB_NOT_FOUND_MESSAGE))?;
        let job = ctx
            .state
            .store
            .get(&ctx.workspace_id, &job_id)
            .ok_or_else(|| ApiError::not_found(JOB_NOT_FOUND_MESSAGE))?;
        Success::new(
            &job_view(job, &ctx.inner.lifecycle, ctx.now, false),
            Some(job_id),
        )
    })
    .await
}

async fn delete_job(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    job_id: Result<Path<String>, PathRejection>,
) -> Response {
    let job_id = job_id.ok().map(|Path(id)| id);
    sim.call(Endpoint::Delete, &headers, job_id.clone(), move |ctx| {
        let job_id = job_id.ok_or_else(|| ApiError::not_found(JOB_NOT_FOUND_MESSAGE))?;
        let lc = &ctx.inner.lifecycle;
        match ctx
            .state
            .store
            .delete(&ctx.workspace_id, &job_id, lc, ctx.now)
        {
            Ok(job) => Success::new(&job_view(job, lc, ctx.now, false), Some(job_id)),
            Err(DeleteError::NotFound) => Err(ApiError::not_found(JOB_NOT_FOUND_MESSAGE)),
            Err(DeleteError::NotFinished) => Err(ApiError::new(
                ctx.inner.denied_status,
                "OperationDenied",
                DENIED_MESSAGE,
            )),
        }
    })
    .await
}

/// Unknown routes: a JSON 404, counted under `other` (control paths are not counted).
pub(crate) async fn unknown_route(
    State(sim): State<Simulator>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let error = ApiError::new(
        StatusCode::NOT_FOUND,
        "NotFound",
        "The requested resource does not exist.",
    );
    sim.answer_other(&uri, &headers, error)
}

/// Known routes called with the wrong method: a JSON 405.
pub(crate) async fn wrong_method(
    State(sim): State<Simulator>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let error = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
        "The HTTP method is not allowed on this resource.",
    );
    sim.answer_other(&uri, &headers, error)
}

impl Simulator {
    /// Runs one API call: latency, auth, injected faults, the handler, a lost create answer,
    /// then counting and recording.
    pub(crate) async fn call<F>(
        &self,
        endpoint: Endpoint,
        headers: &HeaderMap,
        path_job_id: Option<String>,
        handler: F,
    ) -> Response
    where
        F: FnOnce(&mut Ctx<'_>) -> Result<Success, ApiError>,
    {
        let latency = Duration::from_millis(self.lock().faults.latency_ms);
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        let inner = &*self.inner;
        let mut guard = self.lock();
        let state = &mut *guard;
        let now = Instant::now();
        let request_id = jobs::new_uuid(&mut state.id_rng);
        let client = header_text(headers.get(CLIENT_HEADER));
        let workspace_header = header_text(headers.get(WORKSPACE_HEADER));
        let mut workspace_id = None;
        let mut job_id = path_job_id;

        let authorized = authenticate(inner, state, headers).and_then(|ws| {
            match workspace_header.as_deref().map(str::trim) {
                // An empty header names no workspace.
                Some(wanted) if !wanted.is_empty() && wanted != ws => {
                    workspace_id = Some(ws);
                    Err(ApiError::workspace_denied(wanted))
                }
                _ => Ok(ws),
            }
        });
        let result = match authorized {
            Err(e) => Err(e),
            Ok(ws) => {
                workspace_id = Some(ws.clone());
                match faults::inject(&state.faults, &mut state.fault_rng) {
                    Some(Injected::Throttle {
                        retry_after_seconds,
                    }) => Err(ApiError {
                        retry_after_seconds: Some(retry_after_seconds),
                        ..ApiError::new(
                            StatusCode::TOO_MANY_REQUESTS,
                            "Throttling.RateQuota",
                            "Requests rate limit exceeded, please try again later.",
                        )
                    }),
                    Some(Injected::Error) => Err(ApiError::internal()),
                    None => {
                        let mut ctx = Ctx {
                            inner,
                            state: &mut *state,
                            workspace_id: ws,
                            now,
                            client: client.clone(),
                        };
                        let result = handler(&mut ctx);
                        if let Ok(success) = &result {
                            job_id = success.job_id.clone().or(job_id);
                        }
                        let is_create =
                            matches!(endpoint, Endpoint::Create | Endpoint::DeploymentCreate);
                        match result {
                            Ok(success)
                                if is_create
                                    && faults::lose_create_answer(
                                        &state.faults,
                                        &mut state.fault_rng,
                                    ) =>
                            {
                                // The job or deployment stays; only its answer is lost.
                                if let Some(id) = &success.deployment_id {
                                    state.deployments.mark_lost(id);
                                } else if let Some(id) = &success.job_id {
                                    state.store.mark_lost(id);
                                }
                                state.calls.count_lost_create();
                                Err(ApiError::internal())
                            }
                            other => other,
                        }
                    }
                }
            }
        };

        let (status, code) = match &result {
            Ok(_) => (StatusCode::OK, None),
            Err(e) => (e.status, Some(e.code.clone())),
        };
        tracing::debug!(
            endpoint = ?endpoint,
            status = status.as_u16(),
            code = code.as_deref().unwrap_or(""),
            "simulated API call"
        );
        let (job_id, deployed_model) = if endpoint.is_deployment() {
            (None, job_id)
        } else {
            (job_id, None)
        };
        state.calls.record(
            Call {
                endpoint,
                status: status.as_u16(),
                code,
                user_agent: header_text(headers.get(USER_AGENT)),
                client,
                workspace_id,
                workspace_header,
                job_id,
                deployed_model,
            },
            now,
        );
        drop(guard);

        match result {
            Ok(success) => {
                // request_id is a UUID string: no escaping needed beyond serde's quoting.
                let quoted = serde_json::to_string(&request_id).unwrap_or_default();
                let body = format!("{{\"request_id\":{quoted},\"output\":{}}}", success.output);
                let response = (
                    StatusCode::OK,
                    [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
                    body,
                )
                    .into_response();
                with_request_id_header(response, &request_id)
            }
            Err(error) => error.with_request_id(request_id).into_response(),
        }
    }

    fn answer_other(&self, uri: &Uri, headers: &HeaderMap, error: ApiError) -> Response {
        let mut guard = self.lock();
        let state = &mut *guard;
        let request_id = jobs::new_uuid(&mut state.id_rng);
        if !uri.path().starts_with("/_simulator/") {
            state.calls.record(
                Call {
                    endpoint: Endpoint::Other,
                    status: error.status.as_u16(),
                    code: Some(error.code.clone()),
                    user_agent: header_text(headers.get(USER_AGENT)),
                    client: header_text(headers.get(CLIENT_HEADER)),
                    workspace_id: None,
                    workspace_header: header_text(headers.get(WORKSPACE_HEADER)),
                    job_id: None,
                    deployed_model: None,
                },
                Instant::now(),
            );
        }
        drop(guard);
        error.with_request_id(request_id).into_response()
    }
}

/// Checks `Authorization: Bearer <key>` and returns the key's workspace id.
/// The key itself never leaves this function except as a map key in memory.
pub(crate) fn authenticate(
    inner: &Inner,
    state: &mut SimState,
    headers: &HeaderMap,
) -> Result<String, ApiError> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Err(ApiError::invalid_api_key("No API-key provided."));
    };
    let invalid = || ApiError::invalid_api_key("Invalid API-key provided.");
    let value = value.to_str().map_err(|_| invalid())?;
    let key = match value.get(..7) {
        Some(scheme) if scheme.eq_ignore_ascii_case("bearer ") => value[7..].trim(),
        _ => return Err(invalid()),
    };
    let fixed = if inner.config.api_keys.is_empty() {
        if !(key.len() > 3 && key.starts_with("sk-")) {
            return Err(invalid());
        }
        None
    } else {
        match inner.keys.get(key) {
            None => return Err(invalid()),
            Some(fixed) => fixed.as_ref(),
        }
    };
    if let Some(workspace) = fixed {
        return Ok(workspace.clone());
    }
    if let Some(workspace) = state.workspaces.get(key) {
        return Ok(workspace.clone());
    }
    // First-use order, skipping ids the configuration fixed for other keys.
    let mut next = state.workspaces.len() + 1;
    let workspace = loop {
        let candidate = format!("llm-sim{next:04}");
        if !inner.fixed_workspaces.contains(&candidate)
            && !state.workspaces.values().any(|w| *w == candidate)
        {
            break candidate;
        }
        next += 1;
    };
    state.workspaces.insert(key.to_owned(), workspace.clone());
    Ok(workspace)
}

pub(crate) fn clip(s: &str, max_chars: usize) -> String {
    s.chars().take(max_chars).collect()
}

/// A required string field; absent, null or empty counts as missing.
fn required_str<'a>(
    obj: &'a Map<String, Value>,
    field: &str,
    path: &str,
) -> Result<&'a str, String> {
    match obj.get(field) {
        None | Some(Value::Null) => Err(format!("Missing required parameter: {path}.")),
        Some(Value::String(s)) if s.is_empty() => {
            Err(format!("Missing required parameter: {path}."))
        }
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(format!("Invalid parameter {path}: must be a string.")),
    }
}

/// Validates a create body; the error message names the offending field.
pub(crate) fn parse_create(body: &[u8]) -> Result<NewJob, String> {
    let not_object = || "The request body must be a JSON object.".to_owned();
    let value: Value = serde_json::from_slice(body).map_err(|_| not_object())?;
    let Value::Object(obj) = value else {
        return Err(not_object());
    };
    let base_model = required_str(&obj, "model_name", "model_name")?;
    let source = required_str(&obj, "source", "source")?;
    let weight_type = required_str(&obj, "weight_type", "weight_type")?;
    let storage = match obj.get("storage_info") {
        None | Some(Value::Null) => {
            return Err("Missing required parameter: storage_info.".to_owned())
        }
        Some(Value::Object(storage)) => storage,
        Some(_) => return Err("Invalid parameter storage_info: must be an object.".to_owned()),
    };
    let bucket_name = required_str(storage, "bucket_name", "storage_info.bucket_name")?;
    let object_key = match storage.get("object_key") {
        // An empty key is the bucket root, refused below with a clearer message.
        Some(Value::String(s)) => s.as_str(),
        _ => required_str(storage, "object_key", "storage_info.object_key")?,
    };
    if source != "oss" {
        return Err("Invalid parameter source: only 'oss' is supported.".to_owned());
    }
    let weight_type = WeightType::parse(weight_type)
        .ok_or_else(|| "Invalid parameter weight_type: must be 'lora' or 'full'.".to_owned())?;
    if object_key.is_empty() || object_key.chars().all(|c| c == '/') {
        return Err(
            "Invalid parameter storage_info.object_key: the bucket root cannot be imported; use a directory path ending with '/'."
                .to_owned(),
        );
    }
    if !object_key.ends_with('/') {
        return Err(
            "Invalid parameter storage_info.object_key: must be a directory path ending with '/'."
                .to_owned(),
        );
    }
    let display_name = match obj.get("display_name") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => {
            if s.chars().count() > MAX_DISPLAY_NAME_CHARS {
                return Err(format!(
                    "Invalid parameter display_name: must be at most {MAX_DISPLAY_NAME_CHARS} characters."
                ));
            }
            Some(s.clone())
        }
        Some(_) => return Err("Invalid parameter display_name: must be a string.".to_owned()),
    };
    Ok(NewJob {
        base_model: base_model.to_owned(),
        display_name,
        weight_type,
        bucket_name: bucket_name.to_owned(),
        object_key: object_key.to_owned(),
    })
}

pub(crate) fn parse_bounded(name: &str, value: &str, max: Option<u64>) -> Result<u64, String> {
    let message = || match max {
        Some(max) => format!("Invalid parameter {name}: must be an integer between 1 and {max}."),
        None => format!("Invalid parameter {name}: must be an integer greater than or equal to 1."),
    };
    let n: u64 = value.parse().map_err(|_| message())?;
    if n < 1 || max.is_some_and(|max| n > max) {
        return Err(message());
    }
    Ok(n)
}

/// Validates list parameters. Unknown parameters are ignored; empty filters mean no filter.
pub(crate) fn parse_list_query(pairs: &[(String, String)]) -> Result<ListQuery, String> {
    let param = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let page_no = match param("page_no") {
        Some(v) => parse_bounded("page_no", v, None)?,
        None => 1,
    };
    let page_size = match param("page_size") {
        Some(v) => parse_bounded("page_size", v, Some(MAX_PAGE_SIZE))?,
        None => DEFAULT_PAGE_SIZE,
    };
    let filter = |name| param(name).filter(|v| !v.is_empty()).map(str::to_owned);
    Ok(ListQuery {
        page_no,
        page_size,
        status: filter("status"),
        model_name: filter("model_name"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(v: Value) -> Vec<u8> {
        serde_json::to_vec(&v).unwrap()
    }

    fn valid() -> Value {
        json!({
            "model_name": "qwen3-32b",
            "source": "oss",
            "weight_type": "lora",
            "storage_info": {"bucket_name": "b", "object_key": "models/x/"},
        })
    }

    fn with(path: &[&str], value: Value) -> Vec<u8> {
        let mut v = valid();
        let mut target = &mut v;
        for p in &path[..path.len() - 1] {
            target = target.get_mut(*p).unwrap();
        }
        let obj = target.as_object_mut().unwrap();
        if value.is_null() {
            obj.remove(path[path.len() - 1]);
        } else {
            obj.insert(path[path.len() - 1].to_owned(), value);
        }
        body(v)
    }

    fn err(b: &[u8]) -> String {
        parse_create(b).unwrap_err()
    }

    #[test]
    fn valid_create() {
        let job = parse_create(&body(valid())).unwrap();
        assert_eq!(job.base_model, "qwen3-32b");
        assert_eq!(job.weight_type, WeightType::Lora);
        assert_eq!(job.display_name, None);
        let job = parse_create(&with(&["weight_type"], json!("full"))).unwrap();
        assert_eq!(job.weight_type, WeightType::Full);
        let fifty = "é".repeat(50);
        let job = parse_create(&with(&["display_name"], json!(fifty))).unwrap();
        assert_eq!(job.display_name.as_deref(), Some(fifty.as_str()));
    }

    #[test]
    fn create_errors_name_the_field() {
        for (b, field) in [
            (b"not json".to_vec(), "JSON object"),
            (b"[1]".to_vec(), "JSON object"),
            (b"".to_vec(), "JSON object"),
            (with(&["model_name"], Value::Null), "model_name"),
            (with(&["model_name"], json!(3)), "model_name"),
            (with(&["source"], Value::Null), "source"),
            (with(&["source"], json!("OSS")), "source"),
            (with(&["source"], json!("s3")), "source"),
            (with(&["weight_type"], Value::Null), "weight_type"),
            (with(&["weight_type"], json!("LoRA")), "weight_type"),
            (with(&["storage_info"], Value::Null), "storage_info"),
            (with(&["storage_info"], json!("b/x/")), "storage_info"),
            (
                with(&["storage_info", "bucket_name"], Value::Null),
                "storage_info.bucket_name",
            ),
            (
                with(&["storage_info", "object_key"], Value::Null),
                "storage_info.object_key",
            ),
            (
                with(&["storage_info", "object_key"], json!("")),
                "storage_info.object_key",
            ),
            (
                with(&["storage_info", "object_key"], json!("/")),
                "storage_info.object_key",
            ),
            (
                with(&["storage_info", "object_key"], json!("a/b")),
                "storage_info.object_key",
            ),
            (
                with(&["display_name"], json!("x".repeat(51))),
                "display_name",
            ),
            (
                with(&["display_name"], json!("模".repeat(51))),
                "display_name",
            ),
            (with(&["display_name"], json!(1)), "display_name"),
        ] {
            let message = err(&b);
            assert!(message.contains(field), "{message} should name {field}");
        }
    }

    fn pairs(q: &[(&str, &str)]) -> Vec<(String, String)> {
        q.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect()
    }

    #[test]
    fn list_query() {
        let q = parse_list_query(&[]).unwrap();
        assert_eq!((q.page_no, q.page_size), (1, 10));
        assert_eq!((q.status, q.model_name), (None, None));
        let q = parse_list_query(&pairs(&[
            ("page_no", "3"),
            ("page_size", "100"),
            ("status", "FAILED"),
            ("model_name", ""),
        ]))
        .unwrap();
        assert_eq!((q.page_no, q.page_size), (3, 100));
        assert_eq!(q.status.as_deref(), Some("FAILED"));
        assert_eq!(q.model_name, None);
        for (k, v) in [
            ("page_size", "101"),
            ("page_size", "0"),
            ("page_size", "-1"),
            ("page_size", "1.5"),
            ("page_size", "ten"),
            ("page_size", ""),
            ("page_no", "0"),
            ("page_no", "-3"),
            ("page_no", "99999999999999999999999999"),
        ] {
            let message = parse_list_query(&pairs(&[(k, v)])).unwrap_err();
            assert!(message.contains(k), "{message}");
        }
        assert_eq!(
            parse_list_query(&pairs(&[("page_no", "18446744073709551615")]))
                .unwrap()
                .page_no,
            u64::MAX
        );
    }
}
