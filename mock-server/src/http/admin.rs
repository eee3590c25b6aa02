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
use crate::faults::AddError;
use crate::outputs::journal::{Entry, Journal, Kind};
use crate::state::MintError;
use crate::state::tasks::{DeviceAction, Injection, TaskControlError};
use crate::world::Channel;

/// Default lifetime of a minted token: 12 hours.
pub const DEFAULT_TTL_SECONDS: i64 = 12 * 60 * 60;

fn ok(body: &serde_json::Value) -> Result<Response, ApiError> {
    Ok(json_response(StatusCode::OK, body))
}

/// `GET /__admin/health`
pub async fn health(_call: Call<'_>) -> Result<Response, ApiError> {
    ok(&json!({ "status": "ok" }))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TokenBody {
    email: String,
    scopes: Vec<String>,
    // JSON Schema's integer admits 60.0; serde's i64 would not.
    ttl_seconds: Option<f64>,
    client_id: Option<String>,
}

/// `POST /__admin/tokens` → 201
pub async fn mint_token(call: Call<'_>) -> Result<Response, ApiError> {
    let body: TokenBody = call.body()?;
    let state = &call.state;
    let ttl = body.ttl_seconds.map_or(DEFAULT_TTL_SECONDS, |t| t as i64);
    let minted = state.mint_token(&body.email, body.scopes, ttl, body.client_id.as_deref()).map_err(|e| match e {
        MintError::NoSuchUser => {
            let known: Vec<&str> =
                state.world().orgs.iter().flat_map(|o| o.users.iter().map(|u| u.email.as_str())).collect();
            ApiError::not_found(
                format!("No user {} in the world", body.email),
                format!("No user has the email {}; the world's users are {}.", body.email, known.join(", ")),
            )
        }
        MintError::Full(full) => ApiError::conflict(
            "The mock holds as many minted tokens as it may",
            format!(
                "The mock holds {} minted tokens, its bound (--max-minted-tokens); a token is forgotten an hour after it expires. Mint with a shorter ttlSeconds, or reset.",
                full.limit
            ),
        ),
    })?;
    Ok(json_response(StatusCode::CREATED, &minted))
}

#[derive(Debug, Deserialize)]
struct ExpireBody {
    token: String,
}

/// `POST /__admin/tokens/expire`: the token (a world token's name, or a token) expires now;
/// its next use is a 401 that says so. `/__admin/reset` gives world tokens back their expiry.
pub async fn expire_token(call: Call<'_>) -> Result<Response, ApiError> {
    let body: ExpireBody = call.body()?;
    let owner = call.state.expire_token(&body.token).ok_or_else(|| {
        let names: Vec<&str> = call.state.world().tokens.iter().map(|t| t.name()).collect();
        ApiError::not_found(
            "No such token",
            format!("The mock knows no such token; name a world token ({}) or give a minted one.", names.join(", ")),
        )
    })?;
    ok(&json!({ "owner": owner, "expiredAt": call.state.now_ms() }))
}

/// `GET /__admin/state`
pub async fn state(call: Call<'_>) -> Result<Response, ApiError> {
    ok(&call.state.snapshot())
}

/// `GET /__admin/ui`: the dashboard, one page with its script and style inline. Its policy lets
/// it reach the mock's own origin only (it works offline and loads nothing from elsewhere), and
/// no other page may frame it (its buttons change the mock).
pub async fn dashboard(_call: Call<'_>) -> Result<Response, ApiError> {
    use axum::http::header;
    const PAGE: &str = include_str!("../ui/dashboard.html");
    Ok((
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
            ),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        PAGE,
    )
        .into_response())
}

/// `POST /__admin/reset`
pub async fn reset(call: Call<'_>) -> Result<Response, ApiError> {
    call.state.reset();
    ok(&json!({ "status": "reset" }))
}

/// `GET /__admin/deliveries[?subscriptionId=ID]`: every webhook attempt, newest first.
pub async fn deliveries(call: Call<'_>) -> Result<Response, ApiError> {
    let filter = call.query("subscriptionId");
    let attempts = call.state.dispatcher().attempts(filter.as_deref());
    ok(&json!({ "deliveries": attempts }))
}

/// `GET /__admin/violations`: every request that broke its schema, oldest first.
pub async fn violations(call: Call<'_>) -> Result<Response, ApiError> {
    let all = call.state.violations();
    ok(&json!({ "count": all.len(), "violations": all }))
}

/// `DELETE /__admin/violations` → 204.
pub async fn clear_violations(call: Call<'_>) -> Result<Response, ApiError> {
    call.state.clear_violations();
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /__admin/faults`: adds a rule (400 names what makes no sense in it; 409 when the mock
/// already holds [`crate::faults::MAX_RULES`]).
pub async fn add_fault(call: Call<'_>) -> Result<Response, ApiError> {
    let spec: crate::faults::RuleSpec = call.body()?;
    let view = call.state.faults().add(spec).map_err(|why| match why {
        AddError::Invalid(why) => ApiError::bad_request(format!("The fault rule was not added: {why}.")),
        AddError::Full => ApiError::conflict("The fault rule was not added", why.to_string()),
    })?;
    tracing::info!("fault rule {} added: {} on {:?}", view.id, view.spec.action.kind, view.spec.on);
    Ok(json_response(StatusCode::CREATED, &view))
}

/// `GET /__admin/faults`
pub async fn faults(call: Call<'_>) -> Result<Response, ApiError> {
    let faults = call.state.faults();
    Ok(json_response(StatusCode::OK, &serde_json::json!({ "faults": faults.list(), "fired": faults.fired() })))
}

/// `DELETE /__admin/faults`
pub async fn clear_faults(call: Call<'_>) -> Result<Response, ApiError> {
    call.state.faults().clear();
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `DELETE /__admin/faults/{id}`
pub async fn delete_fault(mut call: Call<'_>) -> Result<Response, ApiError> {
    let id = call.param("id").await?;
    if !call.state.faults().remove(&id) {
        let ids: Vec<String> = call.state.faults().list().into_iter().map(|r| r.id).collect();
        return Err(ApiError::not_found(
            format!("No fault rule {id}"),
            format!(
                "There is no fault rule {id}; the rules are: {}.",
                if ids.is_empty() { "none".to_owned() } else { ids.join(", ") }
            ),
        ));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn number(call: &Call<'_>, name: &str) -> Result<Option<u64>, ApiError> {
    match call.query(name) {
        None => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| ApiError::bad_request(format!("?{name}: must be a whole number, not {v:?}"))),
    }
}

fn kind(call: &Call<'_>) -> Result<Option<Kind>, ApiError> {
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
pub async fn journal(call: Call<'_>) -> Result<Response, ApiError> {
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
pub async fn journal_stream(call: Call<'_>) -> Result<Response, ApiError> {
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

fn clock_view(call: &Call<'_>) -> serde_json::Value {
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
pub async fn clock(call: Call<'_>) -> Result<Response, ApiError> {
    ok(&clock_view(&call))
}

#[derive(Debug, Deserialize)]
struct AdvanceBody {
    ms: f64,
}

/// `POST /__admin/clock/advance {"ms": N}`: fires everything that falls due, then answers.
pub async fn clock_advance(call: Call<'_>) -> Result<Response, ApiError> {
    let body: AdvanceBody = call.body()?;
    call.state.clock().advance(body.ms as i64).await.map_err(|e| clock_error(&e))?;
    ok(&clock_view(&call))
}

#[derive(Debug, Deserialize)]
struct SetBody {
    now: f64,
}

/// `POST /__admin/clock/set {"now": ms}`
pub async fn clock_set(call: Call<'_>) -> Result<Response, ApiError> {
    let body: SetBody = call.body()?;
    call.state.clock().set(body.now as i64).await.map_err(|e| clock_error(&e))?;
    ok(&clock_view(&call))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct InjectBody {
    org_id: Option<String>,
    media_type: String,
    queue_id: Option<String>,
    agent_id: Option<String>,
    origin: Option<String>,
    destination: Option<String>,
    customer_name: Option<String>,
    cad: Option<serde_json::Map<String, serde_json::Value>>,
    rona_timeout_seconds: Option<f64>,
    outbound_type: Option<String>,
}

fn task_error(e: TaskControlError) -> ApiError {
    match e {
        TaskControlError::NotFound(id) => ApiError::not_found(
            format!("No task {id}"),
            format!("No task has the id {id}; GET /__admin/tasks lists them."),
        ),
        TaskControlError::Refused(failure) => {
            ApiError::conflict(format!("{}: {}", failure.reason.as_str(), failure.detail), failure.detail)
        }
        TaskControlError::BadInjection(why) => ApiError::not_found(why.clone(), why),
    }
}

/// `POST /__admin/tasks`: a contact arrives (queued, then offered when an agent can take it).
pub async fn inject_task(call: Call<'_>) -> Result<Response, ApiError> {
    let body: InjectBody = call.body()?;
    let world = call.state.world();
    let org_idx = match &body.org_id {
        None => 0,
        Some(id) => world.orgs.iter().position(|o| &o.id == id).ok_or_else(|| {
            ApiError::not_found(format!("No organisation {id}"), format!("The world has no organisation {id}."))
        })?,
    };
    let channel = Channel::parse(&body.media_type)
        .ok_or_else(|| ApiError::bad_request("/mediaType: must be one of telephony, chat, email, social"))?;
    let injection = Injection {
        org_idx,
        channel,
        queue_id: body.queue_id,
        agent_id: body.agent_id,
        origin: body.origin,
        destination: body.destination,
        customer_name: body.customer_name,
        cad: body.cad.unwrap_or_default(),
        rona_timeout_seconds: body.rona_timeout_seconds.map(|s| s as u32),
        courtesy_callback: body.outbound_type.as_deref() == Some("COURTESY_CALLBACK"),
    };
    let view = call.state.inject_task(injection).map_err(task_error)?;
    Ok(json_response(StatusCode::CREATED, &view))
}

/// `GET /__admin/tasks[?orgId=]`: every task, oldest first.
pub async fn tasks(call: Call<'_>) -> Result<Response, ApiError> {
    let org = call.query("orgId");
    ok(&json!({ "tasks": call.state.task_views(org.as_deref()) }))
}

/// `GET /__admin/tasks/{id}`
pub async fn task(mut call: Call<'_>) -> Result<Response, ApiError> {
    let id = call.param("id").await?;
    let view = call.state.task_view(&id).ok_or_else(|| task_error(TaskControlError::NotFound(id)))?;
    Ok(json_response(StatusCode::OK, &view))
}

async fn device_action(mut call: Call<'_>, action: DeviceAction) -> Result<Response, ApiError> {
    let id = call.param("id").await?;
    let view = call.state.device_action(&id, action).map_err(task_error)?;
    Ok(json_response(StatusCode::OK, &view))
}

/// `POST /__admin/tasks/{id}/answer`: the agent's phone answers the offer.
pub async fn answer_task(call: Call<'_>) -> Result<Response, ApiError> {
    device_action(call, DeviceAction::Answer).await
}

/// `POST /__admin/tasks/{id}/decline`: the agent's phone declines the offer.
pub async fn decline_task(call: Call<'_>) -> Result<Response, ApiError> {
    device_action(call, DeviceAction::Decline).await
}

/// `POST /__admin/tasks/{id}/customer-hangup`: the customer hangs up (or leaves), in any state.
pub async fn customer_hangup(call: Call<'_>) -> Result<Response, ApiError> {
    device_action(call, DeviceAction::CustomerHangup).await
}

/// `POST /__admin/tasks/{id}/expire-rona`: RONA fires now.
pub async fn expire_rona(call: Call<'_>) -> Result<Response, ApiError> {
    device_action(call, DeviceAction::ExpireRona).await
}

#[derive(Debug, Deserialize)]
struct DeviceBody {
    reachable: bool,
}

/// `POST /__admin/agents/{id}/device {"reachable": bool}`: whether the agent's phone takes
/// invites (unreachable: offers of calls fail with `AgentInviteFailed`).
pub async fn device(mut call: Call<'_>) -> Result<Response, ApiError> {
    let id = call.param("id").await?;
    let body: DeviceBody = call.body()?;
    call.state.set_device(&id, body.reachable).ok_or_else(|| {
        ApiError::not_found(format!("No agent {id}"), format!("No user of the world has the id {id}."))
    })?;
    ok(&json!({ "agentId": id, "reachable": body.reachable }))
}

/// `POST /__admin/scenario`: resets the mock and loads the scenario in the body (see
/// [`crate::scenario::load`]).
pub async fn load_scenario(call: Call<'_>) -> Result<Response, ApiError> {
    use crate::scenario::{LoadError, Scenario, ScenarioError};
    let scenario = Scenario::shaped(call.body.clone()).map_err(|e| match e {
        ScenarioError::Invalid(problems) => {
            ApiError::bad_request(format!("The scenario is not valid: {}", problems.join("; ")))
        }
        other => ApiError::bad_request(other.to_string()),
    })?;
    let view = crate::scenario::load(call.state, &scenario).await.map_err(|e| match e {
        LoadError::Conflict(why) => ApiError::conflict("The scenario does not fit this mock", why),
        LoadError::Invalid(why) => ApiError::bad_request(format!("The scenario is not valid: {why}")),
        LoadError::Setup(why) => ApiError::bad_request(format!("The scenario's setup failed: {why}")),
    })?;
    ok(&view)
}

/// `GET /__admin/scenario`: the scenario loaded last and how far its script got.
pub async fn scenario(call: Call<'_>) -> Result<Response, ApiError> {
    ok(&call.state.scenario_view())
}

/// `GET /__admin/journal/export`: the WxCC exchanges still in the journal as a replay bundle
/// (`schemas/json/bundle.json`), oldest first, timed from the first. A token is named by its
/// world name (`agent2`); a minted one by its owner only.
pub async fn journal_export(call: Call<'_>) -> Result<Response, ApiError> {
    let page = call.state.journal().query(None, None, usize::MAX);
    Ok(json_response(StatusCode::OK, &crate::bundle::from_journal(&page.entries, call.state.world())))
}
