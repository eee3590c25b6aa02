//! `/v1/tasks`: the agent's task calls answer 202 and the result (or the operation's `…Failed`
//! message) arrives on the websocket; `POST /v1/tasks` (an outdial) answers 201 with the new id;
//! `GET /v1/tasks` searches (reporting: errors in `ApiErrorResponse`).

use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{ApiError, Call, accepted, json_response};
use crate::state::tasks::{Outdial, TaskCommand};
use crate::world::Channel;

async fn command(mut call: Call<'_>, command: TaskCommand) -> Result<Response, ApiError> {
    let id = call.param("id").await?;
    let identity = call.identity()?;
    call.state.task_command(identity.org_index(), &identity.user().id, &id, command, call.tracking_id);
    Ok(accepted())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MediaBody {
    media_resource_id: Option<String>,
}

fn media(call: &Call<'_>) -> Result<Option<String>, ApiError> {
    Ok(call.body::<MediaBody>()?.media_resource_id)
}

/// `POST /v1/tasks/{id}/accept` (digital channels; a call is answered on the phone)
pub async fn accept(call: Call<'_>) -> Result<Response, ApiError> {
    command(call, TaskCommand::Accept).await
}

/// `POST /v1/tasks/{id}/reject {mediaResourceId}`
pub async fn reject(call: Call<'_>) -> Result<Response, ApiError> {
    let media_resource_id = media(&call)?;
    command(call, TaskCommand::Reject { media_resource_id }).await
}

/// `POST /v1/tasks/{id}/hold {mediaResourceId}`
pub async fn hold(call: Call<'_>) -> Result<Response, ApiError> {
    let media_resource_id = media(&call)?;
    command(call, TaskCommand::Hold { media_resource_id }).await
}

/// `POST /v1/tasks/{id}/unhold {mediaResourceId}`
pub async fn unhold(call: Call<'_>) -> Result<Response, ApiError> {
    let media_resource_id = media(&call)?;
    command(call, TaskCommand::Unhold { media_resource_id }).await
}

/// `POST /v1/tasks/{id}/end` (and `/done`, as Cisco's Postman collection spells it)
pub async fn end(call: Call<'_>) -> Result<Response, ApiError> {
    command(call, TaskCommand::End).await
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WrapupBody {
    wrap_up_reason: String,
    aux_code_id: String,
}

/// `POST /v1/tasks/{id}/wrapup {wrapUpReason, auxCodeId}`
pub async fn wrapup(call: Call<'_>) -> Result<Response, ApiError> {
    let body: WrapupBody = call.body()?;
    command(call, TaskCommand::Wrapup { aux_code_id: body.aux_code_id, reason: body.wrap_up_reason }).await
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TransferBody {
    to: String,
    destination_type: String,
}

/// `POST /v1/tasks/{id}/transfer {to, destinationType}` (blind: to an agent or a queue)
pub async fn transfer(call: Call<'_>) -> Result<Response, ApiError> {
    let body: TransferBody = call.body()?;
    command(call, TaskCommand::Transfer { to: body.to, destination_type: body.destination_type }).await
}

macro_rules! unsupported {
    ($($(#[$doc:meta])* $name:ident => $failed:literal, $what:literal;)+) => {
        $(
            $(#[$doc])*
            pub async fn $name(call: Call<'_>) -> Result<Response, ApiError> {
                command(call, TaskCommand::Unsupported { failed: $failed, what: $what }).await
            }
        )+
    };
}

unsupported! {
    /// `POST /v1/tasks/{id}/consult`: 202, then `AgentConsultFailed`.
    consult => "AgentConsultFailed", "consults";
    /// `POST /v1/tasks/{id}/consult/accept` (and `/consultAccept`): 202, then `AgentContactAssignFailed`.
    consult_accept => "AgentContactAssignFailed", "consults";
    /// `POST /v1/tasks/{id}/consult/end`: 202, then `AgentConsultEndFailed`.
    consult_end => "AgentConsultEndFailed", "consults";
    /// `POST /v1/tasks/{id}/consult/transfer`: 202, then `AgentConsultTransferFailed`.
    consult_transfer => "AgentConsultTransferFailed", "consult transfers";
    /// `POST /v1/tasks/{id}/consult/conference`: 202, then `AgentConsultConferenceFailed`.
    consult_conference => "AgentConsultConferenceFailed", "conferences";
    /// `POST /v1/tasks/{id}/conference/exit`: 202, then `ParticipantLeftConferenceFailed`.
    conference_exit => "ParticipantLeftConferenceFailed", "conferences";
    /// `POST /v1/tasks/{id}/conference/transfer`: 202, then `AgentConferenceTransferFailed`.
    conference_transfer => "AgentConferenceTransferFailed", "conference transfers";
    /// `POST /v1/tasks/{id}/cancelCtq`: 202, then `AgentCtqCancelFailed`.
    cancel_ctq => "AgentCtqCancelFailed", "consults to a queue";
    /// `POST /v1/tasks/{id}/record/pause`: 202, then `ContactRecordingPauseFailed`.
    record_pause => "ContactRecordingPauseFailed", "recording control";
    /// `POST /v1/tasks/{id}/record/resume`: 202, then `ContactRecordingResumeFailed`.
    record_resume => "ContactRecordingResumeFailed", "recording control";
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateBody {
    destination: String,
    entry_point_id: String,
    origin: Option<String>,
    attributes: Option<Map<String, Value>>,
}

/// `POST /v1/tasks` (an outdial) → 201 `{meta:{orgId}, data:{id}}`; then `AgentOfferContact` or
/// `AgentOutboundFailed` on the websocket.
pub async fn create(call: Call<'_>) -> Result<Response, ApiError> {
    let identity = call.identity()?;
    let body: CreateBody = call.body()?;
    let outdial = Outdial {
        destination: body.destination,
        entry_point_id: body.entry_point_id,
        origin: body.origin,
        attributes: body.attributes.unwrap_or_default(),
    };
    let id = call.state.outdial(identity.org_index(), &identity.user().id, outdial, call.tracking_id);
    Ok(json_response(StatusCode::CREATED, &json!({ "meta": { "orgId": identity.org().id }, "data": { "id": id } })))
}

/// The largest time `?from` and `?to` take (2^53 - 1, as the OpenAPI document says).
const MAX_EPOCH_MS: i64 = 9_007_199_254_740_991;

fn epoch_ms(call: &Call<'_>, name: &str) -> Result<Option<i64>, ApiError> {
    match call.query(name) {
        None => Ok(None),
        Some(v) => match v.parse::<i64>() {
            Ok(ms) if (0..=MAX_EPOCH_MS).contains(&ms) => Ok(Some(ms)),
            _ => Err(ApiError::bad_request(format!(
                "?{name}: must be a time in epoch milliseconds from 0 to {MAX_EPOCH_MS}, not {v:?}"
            ))),
        },
    }
}

/// `GET /v1/tasks?from=&to=&channelTypes=&pageSize=` (facts §1.3): tasks created in the window,
/// oldest first.
pub async fn search(call: Call<'_>) -> Result<Response, ApiError> {
    let identity = call.identity()?;
    let from = epoch_ms(&call, "from")?
        .ok_or_else(|| ApiError::bad_request("?from: is required (epoch milliseconds: tasks created after it)"))?;
    let to = epoch_ms(&call, "to")?.unwrap_or_else(|| call.state.now_ms());
    let channels = match call.query("channelTypes") {
        None => Vec::new(),
        Some(list) => list
            .split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(|c| {
                Channel::parse(c).ok_or_else(|| {
                    ApiError::bad_request(format!("?channelTypes: {c:?} is not one of telephony, chat, email, social"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?,
    };
    let page_size = match call.query("pageSize") {
        None => 100,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=1000).contains(&n) => n,
            _ => {
                return Err(ApiError::bad_request(format!(
                    "?pageSize: must be a whole number from 1 to 1000, not {v:?}"
                )));
            }
        },
    };
    let data = call.state.search_tasks(identity.org_index(), from, to, &channels, page_size);
    Ok(json_response(StatusCode::OK, &json!({ "meta": { "orgId": identity.org().id }, "data": data })))
}
