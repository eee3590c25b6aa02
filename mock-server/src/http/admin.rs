//! The mock's own API under `/__admin` (plain JSON, no token): health, tokens, state, reset,
//! deliveries, violations, the journal (and its live stream) and the clock.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::broadcast;

use super::{ApiError, Call, json_response};
use crate::clock::ClockError;
use crate::outputs::journal::{Entry, Journal, Kind};

/// Default lifetime of a minted token: 12 hours.
pub const DEFAULT_TTL_SECONDS: i64 = 12 * 60 * 60;

fn ok(body: &serde_json::Value) -> Result<Response, ApiError> {
    Ok(json_response(StatusCode::OK, body))
}

/// `GET /__admin/health`
pub async fn health(_call: Call) -> Result<Response, ApiError> {
    ok(&json!({ "status": "ok" }))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TokenBody {
    email: String,
    scopes: Vec<String>,
    // JSON Schema's integer admits 60.0; serde's i64 would not.
    ttl_seconds: Option<f64>,
}

/// `POST /__admin/tokens` → 201
pub async fn mint_token(call: Call) -> Result<Response, ApiError> {
    let body: TokenBody = call.body()?;
    let state = &call.state;
    let ttl = body.ttl_seconds.map_or(DEFAULT_TTL_SECONDS, |t| t as i64);
    let minted = state.mint_token(&body.email, body.scopes, ttl).ok_or_else(|| {
        let known: Vec<&str> =
            state.world().orgs.iter().flat_map(|o| o.users.iter().map(|u| u.email.as_str())).collect();
        ApiError::not_found(
            format!("No user {} in the world", body.email),
            format!("No user has the email {}; the world's users are {}.", body.email, known.join(", ")),
        )
    })?;
    Ok(json_response(StatusCode::CREATED, &minted))
}

/// `GET /__admin/state`
pub async fn state(call: Call) -> Result<Response, ApiError> {
    ok(&call.state.snapshot())
}

/// `POST /__admin/reset`
pub async fn reset(call: Call) -> Result<Response, ApiError> {
    call.state.reset();
    ok(&json!({ "status": "reset" }))
}

/// `GET /__admin/deliveries[?subscriptionId=ID]`: every webhook attempt, newest first.
pub async fn deliveries(call: Call) -> Result<Response, ApiError> {
    let filter = call.query("subscriptionId");
    let attempts = call.state.dispatcher().attempts(filter.as_deref());
    ok(&json!({ "deliveries": attempts }))
}

/// `GET /__admin/violations`: every request that broke its schema, oldest first.
pub async fn violations(call: Call) -> Result<Response, ApiError> {
    let all = call.state.violations();
    ok(&json!({ "count": all.len(), "violations": all }))
}

/// `DELETE /__admin/violations` → 204.
pub async fn clear_violations(call: Call) -> Result<Response, ApiError> {
    call.state.clear_violations();
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn number(call: &Call, name: &str) -> Result<Option<u64>, ApiError> {
    match call.query(name) {
        None => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| ApiError::bad_request(format!("?{name}: must be a whole number, not {v:?}"))),
    }
}

fn kind(call: &Call) -> Result<Option<Kind>, ApiError> {
    match call.query("kind") {
        None => Ok(None),
        Some(k) => Kind::parse(&k).map(Some).ok_or_else(|| {
            let kinds: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
            ApiError::bad_request(format!("?kind: must be one of {}, not {k:?}", kinds.join(", ")))
        }),
    }
}

/// `GET /__admin/journal[?since=SEQ][&kind=http|ws|webhook|event][&limit=N]`: oldest first;
/// entries after `since`, or the newest `limit`.
pub async fn journal(call: Call) -> Result<Response, ApiError> {
    let since = number(&call, "since")?;
    let kind = kind(&call)?;
    let limit = number(&call, "limit")?.map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX));
    let page = call.state.journal().query(since, kind, limit);
    Ok(([(axum::http::header::CONTENT_TYPE, "application/json")], page.json()).into_response())
}

struct Tail {
    journal: Arc<Journal>,
    live: broadcast::Receiver<Arc<Entry>>,
    backlog: VecDeque<Arc<Entry>>,
    last: u64,
    kind: Option<Kind>,
}

fn sse_event(entry: &Entry) -> SseEvent {
    SseEvent::default().id(entry.seq.to_string()).event(entry.kind.as_str()).data(entry.json())
}

/// `GET /__admin/journal/stream[?since=SEQ][&kind=..]`: entries after `since` (or the
/// `Last-Event-ID` a reconnecting client sends; without either, only new ones), then every new
/// one as it is recorded, as Server-Sent Events (`id` = seq, `event` = kind, `data` = the entry).
pub async fn journal_stream(call: Call) -> Result<Response, ApiError> {
    let kind = kind(&call)?;
    let journal = call.state.journal_handle();
    let since = match number(&call, "since")? {
        Some(since) => since,
        None => match call.header("last-event-id") {
            Some(id) => id.trim().parse().map_err(|_| ApiError::bad_request("Last-Event-ID: must be a journal seq"))?,
            None => journal.last_seq(),
        },
    };
    // Subscribe before reading the backlog, so nothing falls between the two.
    let live = journal.subscribe();
    let backlog = journal.query(Some(since), kind, usize::MAX).entries.into();
    let tail = Tail { journal, live, backlog, last: since, kind };
    let stream = futures_util::stream::unfold(tail, |mut tail| async move {
        loop {
            let next = match tail.backlog.pop_front() {
                Some(entry) => entry,
                None => match tail.live.recv().await {
                    Ok(entry) => entry,
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        // Too slow for the live feed: catch up from what the journal still holds.
                        tail.backlog = tail.journal.query(Some(tail.last), tail.kind, usize::MAX).entries.into();
                        continue;
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
            };
            if next.seq <= tail.last || tail.kind.is_some_and(|k| k != next.kind) {
                continue;
            }
            tail.last = next.seq;
            return Some((Ok::<_, Infallible>(sse_event(&next)), tail));
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()).into_response())
}

fn clock_view(call: &Call) -> serde_json::Value {
    let clock = call.state.clock();
    json!({
        "mode": clock.mode(),
        "now": clock.now_ms(),
        "pendingTimers": clock.pending_timers(),
        "nextTimerAt": clock.next_deadline(),
        "stalls": clock.stalls(),
    })
}

fn clock_error(e: &ClockError) -> ApiError {
    match e {
        ClockError::NotVirtual => ApiError::conflict("The system clock cannot be moved", e.to_string()),
        ClockError::Backwards(_) => ApiError::bad_request(e.to_string()),
    }
}

/// `GET /__admin/clock` → `{mode, now, pendingTimers, nextTimerAt}`
pub async fn clock(call: Call) -> Result<Response, ApiError> {
    ok(&clock_view(&call))
}

#[derive(Debug, Deserialize)]
struct AdvanceBody {
    ms: f64,
}

/// `POST /__admin/clock/advance {"ms": N}`: fires everything that falls due, then answers.
pub async fn clock_advance(call: Call) -> Result<Response, ApiError> {
    let body: AdvanceBody = call.body()?;
    call.state.clock().advance(body.ms as i64).await.map_err(|e| clock_error(&e))?;
    ok(&clock_view(&call))
}

#[derive(Debug, Deserialize)]
struct SetBody {
    now: f64,
}

/// `POST /__admin/clock/set {"now": ms}`
pub async fn clock_set(call: Call) -> Result<Response, ApiError> {
    let body: SetBody = call.body()?;
    call.state.clock().set(body.now as i64).await.map_err(|e| clock_error(&e))?;
    ok(&clock_view(&call))
}
