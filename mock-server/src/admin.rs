//! The mock's own API under `/__admin` (plain JSON, no auth): health, tokens, state, reset.

use axum::Json;
use axum::Router;
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use wxcc_schemas::SchemaId;

use crate::http::{ApiError, WxccRequest};
use crate::state::AppState;

/// Default lifetime of a minted token: 12 hours.
pub const DEFAULT_TTL_SECONDS: i64 = 12 * 60 * 60;

/// The `/__admin` routes (nested by [`crate::http::build_router`]).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/tokens", post(mint_token))
        .route("/state", get(state))
        .route("/reset", post(reset))
        .route("/deliveries", get(deliveries))
        .route("/violations", get(violations).delete(clear_violations))
        .route("/journal", get(journal))
}

/// `GET /__admin/journal[?limit=N]`: the WxCC requests and answers, newest first (bounded).
async fn journal(request: WxccRequest) -> Result<Json<Value>, ApiError> {
    let limit = match request.query("limit") {
        None => usize::MAX,
        Some(l) => {
            l.parse().map_err(|_| ApiError::bad_request(format!("?limit: must be a whole number, not {l:?}")))?
        }
    };
    Ok(Json(json!({ "exchanges": request.state().journal(limit) })))
}

/// `GET /__admin/violations`: every request that broke its schema, oldest first.
async fn violations(request: WxccRequest) -> Json<Value> {
    let all = request.state().violations();
    Json(json!({ "count": all.len(), "violations": all }))
}

/// `DELETE /__admin/violations` → 204.
async fn clear_violations(request: WxccRequest) -> StatusCode {
    request.state().clear_violations();
    StatusCode::NO_CONTENT
}

/// `GET /__admin/deliveries[?subscriptionId=ID]`: every webhook attempt, newest first.
async fn deliveries(request: WxccRequest) -> Json<Value> {
    let filter = request.query("subscriptionId");
    let attempts = request.state().dispatcher().attempts(filter.as_deref());
    Json(json!({ "deliveries": attempts }))
}

async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TokenBody {
    email: String,
    scopes: Vec<String>,
    // JSON Schema's integer admits 60.0; serde's i64 would not.
    ttl_seconds: Option<f64>,
}

async fn mint_token(request: WxccRequest) -> Result<(StatusCode, Json<Value>), ApiError> {
    let state = request.state().clone();
    let body: TokenBody = request.json(SchemaId::AdminTokenRequest).await?;
    let ttl = body.ttl_seconds.map_or(DEFAULT_TTL_SECONDS, |t| t as i64);
    let minted = state.mint_token(&body.email, body.scopes, ttl).ok_or_else(|| {
        let known: Vec<&str> =
            state.world().orgs.iter().flat_map(|o| o.users.iter().map(|u| u.email.as_str())).collect();
        ApiError::not_found(
            format!("No user {} in the world", body.email),
            format!("No user has the email {}; the world's users are {}.", body.email, known.join(", ")),
        )
    })?;
    let body = serde_json::to_value(minted).unwrap_or_default();
    Ok((StatusCode::CREATED, Json(body)))
}

async fn state(request: WxccRequest) -> Json<Value> {
    Json(request.state().snapshot())
}

async fn reset(request: WxccRequest) -> Json<Value> {
    request.state().reset();
    Json(json!({ "status": "reset" }))
}
