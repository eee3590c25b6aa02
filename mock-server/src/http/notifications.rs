//! `POST /v1/notification/subscribe` and the websocket it hands out. Keep-alives and the idle
//! close run on the mock's clock; every frame in and out is journaled.

use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;

use super::{ApiError, Call, json_response};
use crate::clock::Busy;
use crate::faults::{Action, WebsocketFacts};
use crate::outputs::notifications::{
    CLOSE_IDLE, CLOSE_MULTI_LOGIN, Outgoing, Registration, keepalive_message, welcome_message,
};
use crate::state::{AppState, Frame};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SubscribeBody {
    is_keep_alive_enabled: Option<bool>,
    client_type: Option<String>,
    allow_multi_login: Option<bool>,
    force: Option<bool>,
}

/// `POST /v1/notification/subscribe` → 200 `{webSocketUrl, subscriptionId}`
pub async fn subscribe(call: Call<'_>) -> Result<Response, ApiError> {
    let identity = call.identity()?;
    let state = &call.state;
    // Cisco's sample also sends ?force=true.
    let force_query = call.query("force").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let body: SubscribeBody = call.body()?;
    let allow_multi_login = body.allow_multi_login.unwrap_or(false);
    let client_type = body.client_type.unwrap_or_else(|| "DefaultClient".to_owned());
    let subscription_id = format!("{client_type}-{}", crate::ids::uuid());
    let registration = Registration {
        subscription_id: subscription_id.clone(),
        agent_id: identity.user().id.clone(),
        email: identity.user().email.clone(),
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
        .map_err(|why| ApiError::conflict("Maximum connections reached for this user", why))?;
    let url = format!("{}/v1/notification/subscription/{subscription_id}", state.websocket_base());
    Ok(json_response(StatusCode::OK, &json!({ "webSocketUrl": url, "subscriptionId": subscription_id })))
}

/// `GET /v1/notification/subscription/{id}`: the websocket. Unknown or expired ids are 404.
pub async fn connect(mut call: Call<'_>) -> Result<Response, ApiError> {
    let id = call.param("id").await?;
    let state = call.state.clone();
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
    let upgrade = WebSocketUpgrade::from_request_parts(&mut call.parts, &state).await.map_err(|rejection| {
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
    let upgrade = upgrade
        .read_buffer_size(config.socket_buffer_bytes)
        // Each message is written (and flushed) as it is sent: no buffer waits to fill.
        .write_buffer_size(0)
        .max_message_size(config.max_message_bytes);
    Ok(upgrade.on_upgrade(move |socket| run(socket, state, registration)).into_response())
}

/// What a websocket fault makes of a message the mock is about to send.
enum Fate {
    Send,
    /// Not sent.
    Skip,
    /// The connection is dropped instead (no close frame: the client sees 1006).
    Disconnect,
}

/// The fault for one outgoing message, journaled when one fires; a delay waits here, on the
/// mock's clock, and hands back the guard that keeps a virtual clock waiting until it is sent.
async fn fault_for(state: &AppState, registration: &Registration, connection: u64, text: &str) -> (Fate, Option<Busy>) {
    let faults = state.faults();
    if !faults.watches_websocket() {
        return (Fate::Send, None);
    }
    let (outer, inner) = crate::state::message_types(text);
    let facts = WebsocketFacts {
        org_id: &registration.org_id,
        user: (&registration.email, &registration.agent_id),
        message_types: (&outer, &inner),
    };
    let Some(fired) = faults.websocket(&facts) else { return (Fate::Send, None) };
    state.journal_ws_fault(registration, connection, crate::state::label_from(outer, inner), fired.describe());
    match fired.action {
        Action::Drop => (Fate::Skip, None),
        Action::Disconnect => (Fate::Disconnect, None),
        Action::Delay(ms) => (Fate::Send, Some(state.clock().sleep(Duration::from_millis(ms)).await)),
        _ => (Fate::Send, None),
    }
}

async fn run(socket: WebSocket, state: AppState, registration: Registration) {
    let config = state.notification_config().clone();
    let clock = state.clock().clone();
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = mpsc::channel(config.buffer);
    // Welcome goes first: it is queued before the connection can receive anything else.
    let welcome = welcome_message(&registration.agent_id);
    let _ = tx.try_send(Outgoing::Text(welcome.clone().into()));
    let connection = match state.notifications().connect(&registration, tx, &config) {
        Ok(id) => id,
        Err(why) => {
            let frame = CloseFrame { code: CLOSE_MULTI_LOGIN, reason: why.clone().into() };
            let _ = sink.send(Message::Close(Some(frame))).await;
            state.journal_frame(&registration, 0, Frame::CloseOut(CLOSE_MULTI_LOGIN, &why));
            return;
        }
    };
    state.journal_frame(&registration, connection, Frame::Out(&welcome));
    let interval = i64::try_from(config.keepalive_interval.as_millis()).unwrap_or(i64::MAX);
    let idle_timeout = i64::try_from(config.idle_timeout.as_millis()).unwrap_or(i64::MAX);
    let mut next_keepalive = clock.now_ms().saturating_add(interval);
    let mut last_heard = clock.now_ms();
    let mut busy: Option<Busy> = None;
    loop {
        // Timers are registered before the guard of the last one goes (see crate::clock).
        let keepalive = clock.sleep_until(next_keepalive);
        let idle = registration.keepalive.then(|| clock.sleep_until(last_heard.saturating_add(idle_timeout)));
        drop(busy.take());
        let idle = async move {
            match idle {
                Some(sleep) => sleep.await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            outgoing = rx.recv() => match outgoing {
                Some(Outgoing::Text(text)) => {
                    let (fate, guard) = fault_for(&state, &registration, connection, text.as_str()).await;
                    busy = guard;
                    match fate {
                        Fate::Send => {}
                        Fate::Skip => continue,
                        Fate::Disconnect => break,
                    }
                    if sink.send(Message::Text(text)).await.is_err() {
                        break;
                    }
                }
                Some(Outgoing::Close(code, reason)) => {
                    let _ = sink.send(Message::Close(Some(CloseFrame { code, reason: reason.clone().into() }))).await;
                    state.journal_frame(&registration, connection, Frame::CloseOut(code, &reason));
                    break;
                }
                None => break,
            },
            incoming = stream.next() => match incoming {
                Some(Ok(Message::Close(frame))) => {
                    let (code, reason) = frame.map_or((1005, String::new()), |f| (f.code, f.reason.to_string()));
                    state.journal_frame(&registration, connection, Frame::CloseIn(code, &reason));
                    break;
                }
                None | Some(Err(_)) => {
                    state.journal_frame(&registration, connection, Frame::CloseIn(1006, "the connection dropped"));
                    break;
                }
                // {"keepalive":"true"} or anything else: the client is alive.
                Some(Ok(Message::Text(text))) => {
                    last_heard = clock.now_ms();
                    state.journal_frame(&registration, connection, Frame::In(text.as_str()));
                }
                Some(Ok(Message::Binary(bytes))) => {
                    last_heard = clock.now_ms();
                    state.journal_frame(&registration, connection, Frame::In(&format!("[binary, {} bytes]", bytes.len())));
                }
                Some(Ok(_)) => last_heard = clock.now_ms(),
            },
            fired = keepalive => {
                busy = Some(fired);
                let text = keepalive_message();
                next_keepalive = next_keepalive.saturating_add(interval).max(clock.now_ms());
                let (fate, guard) = fault_for(&state, &registration, connection, &text).await;
                if guard.is_some() {
                    busy = guard;
                }
                match fate {
                    Fate::Send => {}
                    Fate::Skip => continue,
                    Fate::Disconnect => break,
                }
                if sink.send(Message::Text(text.clone().into())).await.is_err() {
                    break;
                }
                state.journal_frame(&registration, connection, Frame::Out(&text));
            }
            fired = idle => {
                busy = Some(fired);
                let reason = format!("no keepalive for {} s", Duration::from_millis(u64::try_from(idle_timeout).unwrap_or(0)).as_secs());
                let _ = sink.send(Message::Close(Some(CloseFrame { code: CLOSE_IDLE, reason: reason.clone().into() }))).await;
                state.journal_frame(&registration, connection, Frame::CloseOut(CLOSE_IDLE, &reason));
                break;
            }
        }
    }
    state.notifications().disconnect(&registration.agent_id, connection);
    drop(busy);
}
