//! `/v1/agents/*`: 202 with an empty body once authorised and schema-valid (the endpoint table's
//! checks); the outcome is decided by [`crate::engine::agents`] and published by the state.

use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;

use super::{ApiError, Call, accepted};
use crate::auth::{ACT_FOR_OTHERS, Identity};
use crate::engine::agents::{Command, Login, Operation as AgentOperation, SubStatus};
use crate::world::User;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LoginBody {
    dial_number: String,
    team_id: Option<String>,
    is_extension: Option<Value>,
    roles: Vec<String>,
    device_type: Option<String>,
    device_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LogoutBody {
    logout_reason: String,
    agent_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StateBody {
    state: String,
    aux_code_id: String,
    last_state_change_reason: Option<String>,
    agent_id: Option<String>,
}

/// `POST /v1/agents/login`
pub async fn login(call: Call<'_>) -> Result<Response, ApiError> {
    let identity = call.identity()?;
    let body: LoginBody = call.body()?;
    let login = Login {
        dial_number: body.dial_number,
        team_id: body.team_id,
        device_type: body.device_type,
        device_id: body.device_id,
        // The schema admits true/false and "true"/"false" (Cisco's form-based samples).
        is_extension: matches!(body.is_extension, Some(Value::Bool(true)))
            || body.is_extension == Some(Value::from("true")),
        roles: body.roles.iter().map(|r| r.to_ascii_lowercase()).collect(),
    };
    let me = identity.user();
    call.state.agent_command(identity.org_index(), me, me, Command::Login(login), call.tracking_id);
    Ok(accepted())
}

/// `PUT /v1/agents/logout` (the spec) and `POST /v1/agents/logout` (what Cisco's clients send).
pub async fn logout(call: Call<'_>) -> Result<Response, ApiError> {
    let identity = call.identity()?;
    let body: LogoutBody = call.body()?;
    let Some(target) = target(identity, body.agent_id.as_deref(), "log out")? else {
        let unknown = body.agent_id.unwrap_or_default();
        call.state.agent_not_found(
            identity.org_index(),
            identity.user(),
            &unknown,
            AgentOperation::Logout,
            call.tracking_id,
        );
        return Ok(accepted());
    };
    let command = Command::Logout { reason: body.logout_reason };
    call.state.agent_command(identity.org_index(), target, identity.user(), command, call.tracking_id);
    Ok(accepted())
}

/// `PUT /v1/agents/session/state`
pub async fn change_state(call: Call<'_>) -> Result<Response, ApiError> {
    let identity = call.identity()?;
    let body: StateBody = call.body()?;
    let Some(target) = target(identity, body.agent_id.as_deref(), "change the state of")? else {
        let unknown = body.agent_id.unwrap_or_default();
        call.state.agent_not_found(
            identity.org_index(),
            identity.user(),
            &unknown,
            AgentOperation::AgentStateChange,
            call.tracking_id,
        );
        return Ok(accepted());
    };
    let sub_status = if body.state == "Available" { SubStatus::Available } else { SubStatus::Idle };
    let command = Command::ChangeState {
        state: sub_status,
        aux_code_id: body.aux_code_id,
        reason: body.last_state_change_reason.unwrap_or_default(),
    };
    call.state.agent_command(identity.org_index(), target, identity.user(), command, call.tracking_id);
    Ok(accepted())
}

/// `POST /v1/agents/reload`
pub async fn reload(call: Call<'_>) -> Result<Response, ApiError> {
    let identity = call.identity()?;
    let me = identity.user();
    call.state.agent_command(identity.org_index(), me, me, Command::Reload, call.tracking_id);
    Ok(accepted())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BuddyBody {
    state: Option<String>,
}

/// `POST /v1/agents/buddyList`: 202; the list arrives as `BuddyAgents` on the websocket.
pub async fn buddy_list(call: Call<'_>) -> Result<Response, ApiError> {
    let identity = call.identity()?;
    let body: BuddyBody = call.body()?;
    let wanted = body.state.as_deref().map(|s| if s == "Available" { SubStatus::Available } else { SubStatus::Idle });
    call.state.buddy_list(identity.org_index(), identity.user(), wanted, call.tracking_id);
    Ok(accepted())
}

/// The agent a logout or state change acts on: the caller, or (for supervisors and
/// administrators) another agent of the same organisation named by `agentId`.
/// `Ok(None)`: no such agent in the organisation (202, and a failure on the websocket, as the
/// real API answers asynchronously).
fn target<'a>(identity: &'a Identity, agent_id: Option<&str>, verb: &str) -> Result<Option<&'a User>, ApiError> {
    let me = identity.user();
    let Some(agent_id) = agent_id.filter(|id| !id.is_empty() && *id != me.id) else {
        return Ok(Some(me));
    };
    if !me.has_any_role(ACT_FOR_OTHERS) {
        return Err(ApiError::forbidden(format!(
            "{} may not {verb} another agent ({agent_id}): only a supervisor or an administrator ({}) may act for others, and their roles are {}.",
            me.email,
            ACT_FOR_OTHERS.join(", "),
            me.roles.join(", ")
        )));
    }
    Ok(identity.org().users.iter().find(|u| u.id == agent_id))
}
