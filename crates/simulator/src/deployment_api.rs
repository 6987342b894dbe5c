//! The simulated deployment API (reference §11) under `/api/v1/deployments`: handlers and request
//! validation. Auth, envelopes, faults, counting and recording are the import API's (`api.rs`).

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, put};
use axum::Router;
use jiff::Timestamp;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::api::{clip, parse_bounded, ApiError, Success};
use crate::control::{Endpoint, PtuCapacityInfo};
use crate::deployments::{format_time, Deployment, NewDeployment, Refusal, Timers};
use crate::{Inner, Simulator};
use std::time::Instant;

pub const DEPLOYMENTS_PATH: &str = "/api/v1/deployments";
const MODELS_PATH: &str = "/api/v1/deployments/models";
const ITEM_PATH: &str = "/api/v1/deployments/{deployed_model}";
const SCALE_PATH: &str = "/api/v1/deployments/{deployed_model}/scale";
const UPDATE_PATH: &str = "/api/v1/deployments/{deployed_model}/update";

pub const MAX_SUFFIX_CHARS: usize = 8;
pub const CAPACITY_LIMIT: u64 = 1000;
const DEFAULT_PAGE_SIZE: u64 = 10;
const MAX_PAGE_SIZE: u64 = 100;
/// The deployable-models listing's paging (reference §11: default 50, at most 200).
const DEFAULT_MODELS_PAGE_SIZE: u64 = 50;
const MAX_MODELS_PAGE_SIZE: u64 = 200;

const PLANS: [&str; 4] = ["ptu", "mu", "lora", "cu"];

pub(crate) fn routes() -> Router<Simulator> {
    Router::new()
        .route(DEPLOYMENTS_PATH, get(list).post(create))
        // A static segment wins over the parameter: `models` is never a deployment's name here.
        .route(MODELS_PATH, get(models))
        .route(ITEM_PATH, get(get_one).delete(delete))
        .route(SCALE_PATH, put(scale))
        .route(UPDATE_PATH, put(update))
}

/// A deployment as the API shows it (the object fields of reference §11).
#[derive(Serialize)]
struct DeploymentView {
    deployed_model: String,
    name: String,
    model_name: String,
    base_model: String,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    plan: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    model_unit_spec: Option<String>,
    charge_type: &'static str,
    capacity: u32,
    base_capacity: u32,
    ready_capacity: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    ptu_capacity: Option<PtuCapacityInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rpm_limit: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tpm_limit: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    enable_thinking: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_context_length: Option<u64>,
    workspace_id: String,
    gmt_create: String,
    gmt_modified: String,
}

fn view(d: &Deployment, t: &Timers, now: Instant) -> DeploymentView {
    DeploymentView {
        deployed_model: d.deployed_model.clone(),
        name: d.name.clone(),
        model_name: d.model_name.clone(),
        base_model: d.base_model.clone(),
        status: d.status(t, now),
        plan: d.plan.clone(),
        model_unit_spec: d.deploy_spec.clone(),
        charge_type: "post_paid",
        capacity: d.capacity,
        base_capacity: d.base_capacity,
        ready_capacity: d.ready_capacity(t, now),
        ptu_capacity: d.ptu_capacity,
        rpm_limit: d.rpm_limit,
        tpm_limit: d.tpm_limit,
        enable_thinking: d.enable_thinking,
        max_context_length: d.max_context_length,
        workspace_id: d.workspace_id.clone(),
        gmt_create: format_time(d.gmt_create),
        gmt_modified: format_time(d.gmt_modified),
    }
}

/// A delete's answer: the status only, as the official SDK types it (`JobStatus`,
/// `DeploymentDelete`).
#[derive(Serialize)]
struct DeleteOutput {
    status: &'static str,
}

#[derive(Serialize)]
struct ListOutput {
    total: u64,
    page_no: u64,
    page_size: u64,
    deployments: Vec<DeploymentView>,
}

#[derive(Serialize)]
struct ModelView {
    model_name: String,
    base_capacity: u32,
    model_source: &'static str,
}

#[derive(Serialize)]
struct ModelsOutput {
    models: Vec<ModelView>,
    page_no: u64,
    page_size: u64,
    total: u64,
}

fn not_found(deployed_model: &str) -> ApiError {
    ApiError::not_found(&format!(
        "Deployed model: {} not found!",
        clip(deployed_model, 200)
    ))
}

fn refused(denied_status: StatusCode, deployed_model: &str, refusal: Refusal) -> ApiError {
    match refusal {
        Refusal::NotFound => not_found(deployed_model),
        Refusal::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "Conflict", &m),
        Refusal::Invalid(m) => ApiError::invalid(m),
        Refusal::Denied(m) => ApiError::new(denied_status, "OperationDenied", &m),
        Refusal::Unsupported(m) => {
            ApiError::new(StatusCode::BAD_REQUEST, "UnsupportedOperation", &m)
        }
    }
}

fn success(d: &Deployment, ctx_inner: &Inner, now: Instant) -> Result<Success, ApiError> {
    Success::new(
        &view(d, &ctx_inner.timers, now),
        Some(d.deployed_model.clone()),
    )
}

fn body_of(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|_| ApiError::invalid("The request body could not be read."))
}

async fn create(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    sim.call(Endpoint::DeploymentCreate, &headers, None, move |ctx| {
        let request = parse_create(&body_of(body)?).map_err(ApiError::invalid)?;
        let model = ctx
            .inner
            .deployable(ctx.state, &ctx.workspace_id, ctx.now)
            .into_iter()
            .find(|m| m.model_name == request.model_name)
            .ok_or_else(|| {
                ApiError::not_found(&format!(
                    "Model: {} not found!",
                    clip(&request.model_name, 200)
                ))
            })?;
        let name = request.model_name.clone();
        let t = &ctx.inner.timers;
        let d = ctx
            .state
            .deployments
            .create(
                &ctx.workspace_id,
                request,
                &model,
                ctx.client.clone(),
                t,
                &mut ctx.state.id_rng,
                ctx.now,
                Timestamp::now(),
            )
            .map_err(|r| refused(ctx.inner.denied_status, &name, r))?;
        let id = d.id.clone();
        let mut answer = success(d, ctx.inner, ctx.now)?;
        answer.deployment_id = Some(id);
        Ok(answer)
    })
    .await
}

async fn list(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Response {
    sim.call(Endpoint::DeploymentList, &headers, None, move |ctx| {
        let Query(pairs) =
            query.map_err(|_| ApiError::invalid("The query string could not be parsed."))?;
        let (page_no, page_size) = paging(&pairs, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)?;
        let t = &ctx.inner.timers;
        let (total, page) =
            ctx.state
                .deployments
                .list(&ctx.workspace_id, page_no, page_size, t, ctx.now);
        let output = ListOutput {
            total,
            page_no,
            page_size,
            deployments: page.iter().map(|d| view(d, t, ctx.now)).collect(),
        };
        Success::new(&output, None)
    })
    .await
}

async fn models(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Response {
    sim.call(Endpoint::DeployableModels, &headers, None, move |ctx| {
        let Query(pairs) =
            query.map_err(|_| ApiError::invalid("The query string could not be parsed."))?;
        let (page_no, page_size) = paging(&pairs, DEFAULT_MODELS_PAGE_SIZE, MAX_MODELS_PAGE_SIZE)?;
        let source = match param(&pairs, "model_source").filter(|s| !s.is_empty()) {
            None => None,
            Some(s @ ("base" | "custom")) => Some(s),
            Some(_) => {
                return Err(ApiError::invalid(
                    "Invalid parameter model_source: must be 'base' or 'custom'.",
                ))
            }
        };
        let presets = ctx.inner.deployable.len();
        let all: Vec<ModelView> = ctx
            .inner
            .deployable(ctx.state, &ctx.workspace_id, ctx.now)
            .into_iter()
            .enumerate()
            .map(|(i, m)| ModelView {
                model_name: m.model_name,
                base_capacity: m.base_capacity,
                model_source: if i < presets { "base" } else { "custom" },
            })
            .filter(|m| source.is_none_or(|s| s == m.model_source))
            .collect();
        let total = all.len() as u64;
        let skip = page_no.saturating_sub(1).saturating_mul(page_size);
        let models = all
            .into_iter()
            .skip(usize::try_from(skip).unwrap_or(usize::MAX))
            .take(usize::try_from(page_size).unwrap_or(usize::MAX))
            .collect();
        Success::new(
            &ModelsOutput {
                models,
                page_no,
                page_size,
                total,
            },
            None,
        )
    })
    .await
}

fn path_name(name: Result<Path<String>, PathRejection>) -> Option<String> {
    name.ok().map(|Path(n)| n)
}

async fn get_one(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    name: Result<Path<String>, PathRejection>,
) -> Response {
    let name = path_name(name);
    sim.call(
        Endpoint::DeploymentGet,
        &headers,
        name.clone(),
        move |ctx| {
            let name = name.unwrap_or_default();
            let t = &ctx.inner.timers;
            let d = ctx
                .state
                .deployments
                .get(&ctx.workspace_id, &name, t, ctx.now)
                .ok_or_else(|| not_found(&name))?;
            success(d, ctx.inner, ctx.now)
        },
    )
    .await
}

async fn scale(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    name: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let name = path_name(name);
    sim.call(
        Endpoint::DeploymentScale,
        &headers,
        name.clone(),
        move |ctx| {
            let name = name.unwrap_or_default();
            let obj = json_object(&body_of(body)?).map_err(ApiError::invalid)?;
            let capacity = capacity_field(&obj)
                .map_err(ApiError::invalid)?
                .ok_or_else(|| ApiError::invalid("Missing required parameter: capacity."))?;
            let t = &ctx.inner.timers;
            let result = ctx.state.deployments.scale(
                &ctx.workspace_id,
                &name,
                capacity,
                t,
                ctx.now,
                Timestamp::now(),
            );
            match result {
                Ok(d) => success(d, ctx.inner, ctx.now),
                Err(r) => Err(refused(ctx.inner.denied_status, &name, r)),
            }
        },
    )
    .await
}

async fn update(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    name: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let name = path_name(name);
    sim.call(
        Endpoint::DeploymentUpdate,
        &headers,
        name.clone(),
        move |ctx| {
            let name = name.unwrap_or_default();
            let obj = json_object(&body_of(body)?).map_err(ApiError::invalid)?;
            let rpm = positive(&obj, "rpm_limit").map_err(ApiError::invalid)?;
            let tpm = positive(&obj, "tpm_limit").map_err(ApiError::invalid)?;
            if rpm.is_none() && tpm.is_none() {
                return Err(ApiError::invalid(
                    "Missing required parameter: at least one of rpm_limit and tpm_limit.",
                ));
            }
            let t = &ctx.inner.timers;
            let result = ctx.state.deployments.update_limits(
                &ctx.workspace_id,
                &name,
                rpm,
                tpm,
                t,
                ctx.now,
                Timestamp::now(),
            );
            match result {
                Ok(d) => success(d, ctx.inner, ctx.now),
                Err(r) => Err(refused(ctx.inner.denied_status, &name, r)),
            }
        },
    )
    .await
}

async fn delete(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    name: Result<Path<String>, PathRejection>,
) -> Response {
    let name = path_name(name);
    sim.call(
        Endpoint::DeploymentDelete,
        &headers,
        name.clone(),
        move |ctx| {
            let name = name.unwrap_or_default();
            let t = &ctx.inner.timers;
            let result = ctx.state.deployments.delete(
                &ctx.workspace_id,
                &name,
                t,
                ctx.now,
                Timestamp::now(),
            );
            match result {
                Ok(d) => Success::new(
                    &DeleteOutput {
                        status: d.status(t, ctx.now),
                    },
                    Some(d.deployed_model.clone()),
                ),
                Err(r) => Err(refused(ctx.inner.denied_status, &name, r)),
            }
        },
    )
    .await
}

fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn paging(pairs: &[(String, String)], default: u64, max: u64) -> Result<(u64, u64), ApiError> {
    let page_no = match param(pairs, "page_no") {
        Some(v) => parse_bounded("page_no", v, None).map_err(ApiError::invalid)?,
        None => 1,
    };
    let page_size = match param(pairs, "page_size") {
        Some(v) => parse_bounded("page_size", v, Some(max)).map_err(ApiError::invalid)?,
        None => default,
    };
    Ok((page_no, page_size))
}

fn json_object(body: &[u8]) -> Result<Map<String, Value>, String> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(obj)) => Ok(obj),
        _ => Err("The request body must be a JSON object.".to_owned()),
    }
}

/// An optional non-negative integer field.
fn integer(obj: &Map<String, Value>, field: &str) -> Result<Option<u64>, String> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match (n.as_u64(), n.as_i64()) {
            (Some(v), _) => Ok(Some(v)),
            (None, Some(_)) => Err(format!(
                "Invalid parameter {field}: must be greater than or equal to 0."
            )),
            (None, None) => Err(format!("Invalid parameter {field}: must be an integer.")),
        },
        Some(_) => Err(format!("Invalid parameter {field}: must be an integer.")),
    }
}

/// An optional integer field that must be at least 1.
fn positive(obj: &Map<String, Value>, field: &str) -> Result<Option<u64>, String> {
    match integer(obj, field)? {
        Some(0) => Err(format!(
            "Invalid parameter {field}: must be greater than 0."
        )),
        other => Ok(other),
    }
}

/// `capacity`: ≥0 and below the limit (the multiple of the base is the store's to check).
fn capacity_field(obj: &Map<String, Value>) -> Result<Option<u32>, String> {
    match integer(obj, "capacity")? {
        None => Ok(None),
        Some(c) if c >= CAPACITY_LIMIT => Err(format!(
            "Invalid parameter capacity: must be greater than or equal to 0 and less than {CAPACITY_LIMIT}, not {c}."
        )),
        Some(c) => Ok(u32::try_from(c).ok()),
    }
}

fn optional_str<'a>(obj: &'a Map<String, Value>, field: &str) -> Result<Option<&'a str>, String> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("Invalid parameter {field}: must be a string.")),
    }
}

/// Validates a create body; every message names the field and says what to fix.
pub(crate) fn parse_create(body: &[u8]) -> Result<NewDeployment, String> {
    let obj = json_object(body)?;
    let model_name = optional_str(&obj, "model_name")?
        .filter(|s| !s.is_empty())
        .ok_or("Missing required parameter: model_name.")?;
    // Any case: the official SDK writes `Lora`, the documentation `lora`; answers use the latter.
    let plan = match optional_str(&obj, "plan")?.filter(|s| !s.is_empty()) {
        None => None,
        Some(p) if PLANS.iter().any(|known| known.eq_ignore_ascii_case(p)) => {
            Some(p.to_ascii_lowercase())
        }
        Some(p) => {
            return Err(format!(
                "Invalid parameter plan: must be one of ptu, mu, lora, cu (or left out), not {:?}.",
                clip(p, 40)
            ))
        }
    };
    let capacity = capacity_field(&obj)?;
    let capacity = match (plan.as_deref(), capacity) {
        (Some("ptu"), c) => c.unwrap_or(0),
        (_, Some(c)) => c,
        (_, None) => {
            return Err(
                "Missing required parameter: capacity (an integer multiple of the model's base_capacity; required even for plan lora)."
                    .to_owned(),
            )
        }
    };
    // The documentation's string (the new SDK types it as an object, which is refused).
    let deploy_spec = match obj.get("deploy_spec") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()).filter(|s| !s.is_empty()),
        Some(_) => return Err(
            "Invalid parameter deploy_spec: must be a string naming the model unit spec, such as \"MU1\", not an object or other JSON value."
                .to_owned(),
        ),
    };
    // Accepted and ignored: undocumented, sent by the official SDK.
    optional_str(&obj, "billing_method")?;
    if plan.as_deref() == Some("mu") && deploy_spec.is_none() {
        return Err(
            "Missing required parameter: deploy_spec (required when plan is mu, e.g. MU1)."
                .to_owned(),
        );
    }
    let ptu_capacity = match obj.get("ptu_capacity") {
        None | Some(Value::Null) => None,
        Some(Value::Object(p)) => {
            let input =
                positive(p, "input_tpm").map_err(|e| e.replace(" input", " ptu_capacity.input"))?;
            let output = positive(p, "output_tpm")
                .map_err(|e| e.replace(" output", " ptu_capacity.output"))?;
            match (input, output) {
                (Some(input_tpm), Some(output_tpm)) => Some(PtuCapacityInfo {
                    input_tpm,
                    output_tpm,
                }),
                _ => {
                    return Err(
                        "Missing required parameter: ptu_capacity.input_tpm and ptu_capacity.output_tpm."
                            .to_owned(),
                    )
                }
            }
        }
        Some(_) => return Err("Invalid parameter ptu_capacity: must be an object.".to_owned()),
    };
    if plan.as_deref() == Some("ptu") && ptu_capacity.is_none() {
        return Err(
            "Missing required parameter: ptu_capacity (input_tpm and output_tpm, required when plan is ptu)."
                .to_owned(),
        );
    }
    let suffix = optional_str(&obj, "suffix")?.filter(|s| !s.is_empty());
    if let Some(suffix) = suffix {
        let chars = suffix.chars().count();
        if chars > MAX_SUFFIX_CHARS {
            return Err(format!(
                "Invalid parameter suffix: must be at most {MAX_SUFFIX_CHARS} characters, not {chars}."
            ));
        }
        if suffix
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '/' | '?' | '#' | '%'))
        {
            return Err(
                "Invalid parameter suffix: must not contain whitespace, '/', '?', '#' or '%'."
                    .to_owned(),
            );
        }
    }
    let enable_thinking = match obj.get("enable_thinking") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => return Err("Invalid parameter enable_thinking: must be a boolean.".to_owned()),
    };
    Ok(NewDeployment {
        model_name: model_name.to_owned(),
        capacity,
        plan,
        deploy_spec,
        ptu_capacity,
        name: optional_str(&obj, "name")?.map(str::to_owned),
        suffix: suffix.map(str::to_owned),
        enable_thinking,
        max_context_length: positive(&obj, "max_context_length")?,
        rpm_limit: positive(&obj, "rpm_limit")?,
        tpm_limit: positive(&obj, "tpm_limit")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(v: Value) -> String {
        parse_create(&serde_json::to_vec(&v).unwrap()).unwrap_err()
    }

    #[test]
    fn a_valid_create_reads_every_field() {
        let d = parse_create(
            &serde_json::to_vec(&json!({
                "model_name": "m", "capacity": 2, "plan": "mu", "deploy_spec": "MU1",
                "name": "n", "suffix": "v2", "enable_thinking": true,
                "max_context_length": 8192, "rpm_limit": 60, "tpm_limit": 1000
            }))
            .unwrap(),
        )
        .unwrap();
        assert_eq!((d.model_name.as_str(), d.capacity), ("m", 2));
        assert_eq!(d.plan.as_deref(), Some("mu"));
        assert_eq!(d.suffix.as_deref(), Some("v2"));
        assert_eq!((d.rpm_limit, d.tpm_limit), (Some(60), Some(1000)));
        let ptu = parse_create(
            &serde_json::to_vec(&json!({
                "model_name": "m", "plan": "ptu",
                "ptu_capacity": {"input_tpm": 10000, "output_tpm": 1000}
            }))
            .unwrap(),
        )
        .unwrap();
        assert_eq!(
            ptu.ptu_capacity,
            Some(PtuCapacityInfo {
                input_tpm: 10000,
                output_tpm: 1000
            })
        );
    }

    #[test]
    fn plans_are_read_in_any_case_and_kept_lowercase() {
        for (sent, kept) in [
            ("Lora", "lora"),
            ("LORA", "lora"),
            ("lora", "lora"),
            ("Mu", "mu"),
            ("PTU", "ptu"),
            ("cU", "cu"),
        ] {
            let d = parse_create(
                &serde_json::to_vec(&json!({
                    "model_name": "m", "capacity": 1, "plan": sent, "deploy_spec": "MU1",
                    "ptu_capacity": {"input_tpm": 1, "output_tpm": 1},
                    "billing_method": "post_paid"
                }))
                .unwrap(),
            )
            .unwrap();
            assert_eq!(d.plan.as_deref(), Some(kept), "{sent}");
            assert_eq!(d.deploy_spec.as_deref(), Some("MU1"));
        }
    }

    #[test]
    fn every_bad_create_says_what_to_fix() {
        for (body, words) in [
            (json!([1]), "JSON object"),
            (json!({"capacity": 1}), "model_name"),
            (json!({"model_name": 3, "capacity": 1}), "model_name"),
            (json!({"model_name": "m"}), "capacity"),
            (
                json!({"model_name": "m", "plan": "lora"}),
                "required even for plan lora",
            ),
            (
                json!({"model_name": "m", "capacity": -1}),
                "greater than or equal to 0",
            ),
            (json!({"model_name": "m", "capacity": 1.5}), "integer"),
            (
                json!({"model_name": "m", "capacity": 1000}),
                "less than 1000",
            ),
            (
                json!({"model_name": "m", "capacity": 1, "plan": "gold"}),
                "plan",
            ),
            (
                json!({"model_name": "m", "capacity": 1, "plan": "mu"}),
                "deploy_spec",
            ),
            (json!({"model_name": "m", "plan": "ptu"}), "ptu_capacity"),
            (
                json!({"model_name": "m", "plan": "ptu", "ptu_capacity": {"input_tpm": 0, "output_tpm": 1}}),
                "ptu_capacity.input_tpm",
            ),
            (
                json!({"model_name": "m", "capacity": 1, "suffix": "123456789"}),
                "at most 8",
            ),
            (
                json!({"model_name": "m", "capacity": 1, "suffix": "a/b"}),
                "suffix",
            ),
            (
                json!({"model_name": "m", "capacity": 1, "rpm_limit": 0}),
                "rpm_limit",
            ),
            (
                json!({"model_name": "m", "capacity": 1, "enable_thinking": "yes"}),
                "enable_thinking",
            ),
            (
                json!({"model_name": "m", "capacity": 1, "plan": "mu", "deploy_spec": {"spec": "MU1"}}),
                "deploy_spec: must be a string naming the model unit spec, such as \"MU1\"",
            ),
            (
                json!({"model_name": "m", "capacity": 1, "deploy_spec": 1}),
                "deploy_spec",
            ),
            (
                json!({"model_name": "m", "capacity": 1, "billing_method": {}}),
                "billing_method: must be a string",
            ),
        ] {
            let message = err(body.clone());
            assert!(message.contains(words), "{body}: {message} lacks {words}");
        }
        // Eight characters, not bytes.
        let d = parse_create(
            &serde_json::to_vec(
                &json!({"model_name": "m", "capacity": 1, "suffix": "模型模型模型模型"}),
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(d.suffix.as_deref(), Some("模型模型模型模型"));
    }
}
