//! The OpenAI-compatible chat endpoint (`POST /compatible-mode/v1/chat/completions`, reference
//! §1.2's second base URL), as far as an application calling a deployed model needs it: the key's
//! workspace must hold a running deployment of the model named, and the answer has OpenAI's shape
//! (errors too: `{"error": {"code", "message", "type"}}`), not the native API's envelope. It is
//! not counted in the native API's statistics.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use std::time::Instant;

use crate::api::{authenticate, clip};
use crate::deployments::Phase;
use crate::Simulator;

pub const CHAT_PATH: &str = "/compatible-mode/v1/chat/completions";

pub(crate) fn routes() -> Router<Simulator> {
    Router::new().route(CHAT_PATH, post(chat))
}

fn error(status: StatusCode, code: &str, kind: &str, message: String) -> Response {
    let body = json!({"error": {"code": code, "message": message, "type": kind, "param": null}});
    (status, Json(body)).into_response()
}

async fn chat(State(sim): State<Simulator>, headers: HeaderMap, body: Bytes) -> Response {
    let mut guard = sim.lock();
    let state = &mut *guard;
    let workspace = match authenticate(&sim.inner, state, &headers) {
        Ok(workspace) => workspace,
        Err(_) => {
            return error(
                StatusCode::UNAUTHORIZED,
                "invalid_api_key",
                "invalid_request_error",
                "Incorrect API key provided.".into(),
            )
        }
    };
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let model = request.get("model").and_then(Value::as_str);
    let messages = request.get("messages").and_then(Value::as_array);
    let (Some(model), Some(messages)) = (model, messages.filter(|m| !m.is_empty())) else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_parameter_error",
            "invalid_request_error",
            "The request needs a model (string) and messages (a non-empty list).".into(),
        );
    };
    let now = Instant::now();
    let timers = &sim.inner.timers;
    let running = state
        .deployments
        .get(&workspace, model, timers, now)
        .is_some_and(|d| d.phase(timers, now) == Phase::Running);
    if !running {
        return error(
            StatusCode::NOT_FOUND,
            "model_not_found",
            "invalid_request_error",
            format!(
                "The model `{}` does not exist or you do not have access to it.",
                clip(model, 128)
            ),
        );
    }
    let body = json!({
        "id": format!("chatcmpl-{}", crate::jobs::new_uuid(&mut state.id_rng)),
        "object": "chat.completion",
        "created": jiff::Timestamp::now().as_second(),
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": format!("{model} answers {} message(s)", messages.len())},
            "finish_reason": "stop",
        }],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    });
    (StatusCode::OK, Json(body)).into_response()
}
