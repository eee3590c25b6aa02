//! `POST /v1/notification/subscribe` and the websocket it hands out.

use std::time::Duration;

use axum::Json;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, rejection::WebSocketUpgradeRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::Instant;
use wxcc_schemas::SchemaId;

use super::{ApiError, WxccRequest};
use crate::auth::Operation;
use crate::notifications::{CLOSE_IDLE, CLOSE_MULTI_LOGIN, Outgoing, Registration, keepalive_message, welcome_message};
use crate::state::AppState;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SubscribeBody {
    is_keep_alive_enabled: Option<bool>,
    client_type: Option<String>,
    allow_multi_login: Option<bool>,
    force: Option<bool>,
}

/// `POST /v1/notification/subscribe` → 200 `{webSocketUrl, subscriptionId}`
pub async fn subscribe(request: WxccRequest) -> Result<Json<Value>, ApiError> {
    let identity = request.authorize(Operation::NotificationSubscribe)?;
    let state = request.state().clone();
    let host = request.header("host").unwrap_or_else(|| "localhost".to_owned());
    // Cisco's sample also sends ?force=true.
    let force_query = request.query("force").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let body: SubscribeBody = request.json_or_empty(SchemaId::NotificationSubscribeRequest).await?;
    let allow_multi_login = body.allow_multi_login.unwrap_or(false);
    let client_type = body.client_type.unwrap_or_else(|| "DefaultClient".to_owned());
    let subscription_id = format!("{client_type}-{}", uuid::Uuid::new_v4());
    let registration = Registration {
        subscription_id: subscription_id.clone(),
        agent_id: identity.user().id.clone(),
        org_id: identity.org().id.clone(),
        client_type,
        keepalive: body.is_keep_alive_enabled.unwrap_or(false),
        allow_multi_login,
        force: body.force.unwrap_or(false) || force_query,
        created_at: state.now_ms(),
    };
    state
        .notifications()
        .register(registration, state.notification_config())
        .map_err(|why| ApiError::new(StatusCode::CONFLICT, "Maximum connections reached for this user", why))?;
    let url = format!("ws://{host}/v1/notification/subscription/{subscription_id}");
    Ok(Json(json!({ "webSocketUrl": url, "subscriptionId": subscription_id })))
}

/// `GET /v1/notification/subscription/{id}`: the websocket. Unknown or expired ids are 404.
pub async fn connect(
    Path(id): Path<String>,
    State(state): State<AppState>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let config = state.notification_config();
    if !state.notifications().is_registered(&id, state.now_ms(), config) {
        return Err(ApiError::not_found(
            format!("No notification subscription {id}"),
            format!(
                "{id} is not a live notification subscription: call POST /v1/notification/subscribe first; each URL connects once and expires after {} s.",
                config.registration_ttl_ms / 1000
            ),
        ));
    }
    let upgrade = upgrade.map_err(|rejection| {
        ApiError::new(
            rejection.status(),
            "Not a websocket upgrade request",
            format!("{id} is a websocket URL; connect to it with a websocket client ({}).", rejection.body_text()),
        )
    })?;
    let registration = state.notifications().take(&id, state.now_ms(), config).ok_or_else(|| {
        ApiError::not_found(
            format!("No notification subscription {id}"),
            "The subscription URL was used by another connection.",
        )
    })?;
    Ok(upgrade.on_upgrade(move |socket| run(socket, state, registration)).into_response())
}

async fn run(socket: WebSocket, state: AppState, registration: Registration) {
    let config = state.notification_config().clone();
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = mpsc::channel(config.buffer);
    // Welcome goes first: it is queued before the connection can receive anything else.
    let _ = tx.try_send(Outgoing::Text(welcome_message(&registration.agent_id)));
    let connection = match state.notifications().connect(&registration, tx, &config) {
        Ok(id) => id,
        Err(why) => {
            let frame = CloseFrame { code: CLOSE_MULTI_LOGIN, reason: why.into() };
            let _ = sink.send(Message::Close(Some(frame))).await;
            return;
        }
    };
    let mut keepalive = tokio::time::interval_at(Instant::now() + config.keepalive_interval, config.keepalive_interval);
    let mut last_heard = Instant::now();
    loop {
        let idle_deadline =
            last_heard + if registration.keepalive { config.idle_timeout } else { Duration::from_secs(86_400 * 365) };
        tokio::select! {
            outgoing = rx.recv() => match outgoing {
                Some(Outgoing::Text(text)) => {
                    if sink.send(Message::Text(text.into())).await.is_err() {
                        break;
                    }
                }
                Some(Outgoing::Close(code, reason)) => {
                    let _ = sink.send(Message::Close(Some(CloseFrame { code, reason: reason.into() }))).await;
                    break;
                }
                None => break,
            },
            incoming = stream.next() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                // {"keepalive":"true"} or anything else: the client is alive.
                Some(Ok(_)) => last_heard = Instant::now(),
            },
            _ = keepalive.tick() => {
                if sink.send(Message::Text(keepalive_message().into())).await.is_err() {
                    break;
                }
            }
            () = tokio::time::sleep_until(idle_deadline) => {
                let reason = format!("no keepalive for {} s", config.idle_timeout.as_secs());
                let _ = sink.send(Message::Close(Some(CloseFrame { code: CLOSE_IDLE, reason: reason.into() }))).await;
                break;
            }
        }
    }
    state.notifications().disconnect(&registration.agent_id, connection);
}
