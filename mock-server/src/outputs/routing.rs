//! The websocket messages about tasks (facts §2): every one has the outer `type`
//! `RoutingMessage`, `data.eventType` `RoutingMessage`, the event name in `data.type`, the task's
//! id in `data.interactionId` (Cisco's SDK matches on it), and the `interaction` object the SDK
//! builds its task from: state, participants, media (keyed by `mainInteractionId`, which the SDK
//! reads to resume a call), the three places the RONA timeout lives, and the CAD.

use serde_json::{Map, Value, json};

use crate::engine::agents::Session;
use crate::engine::tasks::{Direction, Leg, Task};
use crate::world::{Channel, Org, User};

/// Who a message is for, and what it is about.
#[derive(Debug, Clone, Copy)]
pub struct MessageContext<'a> {
    /// The organisation.
    pub org: &'a Org,
    /// The agent it is for.
    pub agent: &'a User,
    /// Their session, if logged in.
    pub session: Option<&'a Session>,
    /// The request's (or the mock's own) tracking id.
    pub tracking_id: &'a str,
    /// Now, epoch ms.
    pub now: i64,
    /// The task's RONA timeout, in seconds.
    pub rona_seconds: u32,
}

/// What a message adds beyond the task.
#[derive(Debug, Clone, Default)]
pub struct Extra {
    /// A failure or RONA reason.
    pub reason: Option<(String, i64)>,
    /// The agent's wrap-up code (`AgentWrappedUp`).
    pub wrap_up_aux_code_id: Option<String>,
    /// Include `ronaTimeout` (the offer).
    pub with_rona: bool,
}

fn interaction_state(task: &Task, agent_id: &str) -> &'static str {
    match &task.leg {
        Leg::Queued { .. } | Leg::Offered { .. } => "new",
        Leg::Connected { held_since: Some(_), .. } => "hold",
        Leg::Connected { .. } => "connected",
        Leg::Ended { .. } if task.pending_wrapup.iter().any(|a| a == agent_id) => "wrapUp",
        Leg::Ended { .. } => "new",
    }
}

fn media_type(channel: Channel) -> &'static str {
    channel.as_str()
}

fn customer_key(task: &Task) -> String {
    match task.direction {
        Direction::Inbound | Direction::CourtesyCallback => task.origin.clone(),
        Direction::Outdial => task.destination.clone(),
    }
}

/// The interaction object, as `agent` sees `task`.
pub fn interaction(task: &Task, ctx: &MessageContext<'_>) -> Value {
    let agent = ctx.agent;
    let queue = task.queue_id.as_deref().and_then(|q| ctx.org.queue(q));
    let queue_name = queue.map_or("", |q| q.name.as_str());
    let rona = ctx.rona_seconds.to_string();
    let (direction, outbound_type, ani, dn) = match task.direction {
        Direction::Inbound => ("INBOUND", Value::Null, task.origin.as_str(), task.destination.as_str()),
        Direction::Outdial => ("OUTBOUND", json!("OUTDIAL"), task.origin.as_str(), task.destination.as_str()),
        Direction::CourtesyCallback => {
            ("OUTBOUND", json!("COURTESY_CALLBACK"), task.origin.as_str(), task.destination.as_str())
        }
    };
    let held_since = match &task.leg {
        Leg::Connected { held_since, .. } => *held_since,
        _ => None,
    };
    let ended = matches!(task.leg, Leg::Ended { .. });
    let joined = matches!(&task.leg, Leg::Connected { agent_id, .. } if agent_id == &agent.id)
        || (ended && task.pending_wrapup.contains(&agent.id));
    let offered = matches!(&task.leg, Leg::Offered { agent_id, .. } if agent_id == &agent.id);
    let team_id = ctx.session.and_then(|s| s.team_id.clone());
    let team_name = team_id.as_deref().and_then(|t| ctx.org.teams.iter().find(|x| x.id == t)).map(|t| t.name.clone());
    let customer = customer_key(task);
    let mut participants = Map::new();
    participants.insert(
        agent.id.clone(),
        json!({
            "id": agent.id, "pType": "Agent", "type": "Agent",
            "name": format!("{} {}", agent.first_name, agent.last_name),
            "teamId": team_id, "teamName": team_name,
            "siteId": ctx.session.and_then(|s| s.site_id.clone()),
            "queueId": task.queue_id, "queueMgrId": "aqm",
            "channelId": ctx.session.map(|s| s.agent_session_id.clone()),
            "sessionId": ctx.session.map(|s| s.agent_session_id.clone()),
            "dn": ctx.session.map(|s| s.dial_number.clone()),
            "hasJoined": joined, "hasLeft": ended && !task.pending_wrapup.contains(&agent.id),
            "isConsulted": false,
            "isWrapUp": task.pending_wrapup.contains(&agent.id),
            "isWrappedUp": task.wrapups.iter().any(|w| w.agent_id == agent.id),
            "isOffered": offered || joined,
            "autoAnswerEnabled": false,
            "lastUpdated": task.updated_at,
            "consultState": null, "currentState": null,
        }),
    );
    participants.insert(
        customer.clone(),
        json!({
            "id": customer, "pType": "Customer", "type": "Customer", "name": task.customer_name,
            "hasJoined": true, "hasLeft": ended, "isInPredial": false,
        }),
    );
    let media_participants = if joined && !ended { json!([customer, agent.id]) } else { json!([customer]) };
    let mut media = Map::new();
    media.insert(
        task.id.clone(),
        json!({
            "mediaResourceId": task.id,
            "mediaType": media_type(task.channel),
            "mediaMgr": if task.channel == Channel::Telephony { "callmm" } else { "digitalmm" },
            "participants": media_participants,
            "mType": "mainCall",
            "isHold": held_since.is_some(),
            "holdTimestamp": held_since,
        }),
    );
    let cad: Map<String, Value> = task
        .cad
        .iter()
        .map(|(name, value)| {
            let text = value.as_str().map_or_else(|| value.to_string(), str::to_owned);
            (
                name.clone(),
                json!({
                    "name": name, "displayName": name, "value": text, "type": "STRING",
                    "agentEditable": false, "agentViewable": true, "global": false,
                    "isSecure": false, "reportable": false, "secureKeyId": "", "secureKeyVersion": 0,
                }),
            )
        })
        .collect();
    let mut processing = json!({
        "QMgrName": "aqm", "QueueId": task.queue_id, "vteamId": task.queue_id,
        "ani": ani, "dnis": dn, "customerName": task.customer_name,
        "virtualTeamName": queue_name, "ronaTimeout": rona,
        "taskToBeSelfServiced": "false", "tenantId": ctx.org.tenant_id,
        "pauseResumeEnabled": "true", "recordingStarted": "false", "recordInProgress": "false",
    });
    if let (Some(agent_id), Some(fields)) = (&task.outdial_agent, processing.as_object_mut()) {
        fields.insert("outdialAgentId".into(), json!(agent_id));
    }
    json!({
        "interactionId": task.id,
        "orgId": task.org_id,
        "mediaType": media_type(task.channel),
        "mediaChannel": media_type(task.channel),
        "state": interaction_state(task, &agent.id),
        "isTerminated": ended,
        "isFcManaged": false,
        "isMediaForked": false,
        "contactDirection": { "type": direction },
        "outboundType": outbound_type,
        "owner": task.owner,
        "currentVTeam": task.queue_id,
        "previousVTeams": task.previous_queues,
        "createdTimestamp": task.created_at,
        "queuedTimestamp": task.created_at,
        "mainInteractionId": task.id,
        "parentInteractionId": task.id,
        "workflowManager": null,
        "callAssociatedData": cad,
        "callAssociatedDetails": {
            "ani": ani, "dn": dn, "customerName": task.customer_name,
            "virtualTeamName": queue_name, "ronaTimeout": rona,
        },
        "callProcessingDetails": processing,
        "callFlowParams": {},
        "participants": participants,
        "media": media,
    })
}

/// The message `data.type` = `kind` about `task`, for `ctx.agent`.
pub fn message(kind: &str, task: &Task, ctx: &MessageContext<'_>, extra: &Extra) -> Value {
    let mut data = Map::new();
    data.insert("type".into(), json!(kind));
    data.insert("eventType".into(), json!("RoutingMessage"));
    data.insert("interactionId".into(), json!(task.id));
    data.insert("agentId".into(), json!(ctx.agent.id));
    data.insert("orgId".into(), json!(task.org_id));
    data.insert("trackingId".into(), json!(ctx.tracking_id));
    data.insert("eventTime".into(), json!(ctx.now));
    data.insert("mediaResourceId".into(), json!(task.id));
    data.insert("consultMediaResourceId".into(), json!(""));
    data.insert("destAgentId".into(), json!(""));
    data.insert("owner".into(), json!(task.owner));
    data.insert("queueMgr".into(), json!("aqm"));
    data.insert("queueId".into(), json!(task.queue_id));
    if let Some(queue) = task.queue_id.as_deref().and_then(|q| ctx.org.queue(q)) {
        data.insert("queueName".into(), json!(queue.name));
    }
    data.insert("isConferencing".into(), json!(false));
    data.insert("isConsulted".into(), json!(false));
    data.insert("contactAssignmentType".into(), json!("ACD"));
    if extra.with_rona {
        data.insert("ronaTimeout".into(), json!(ctx.rona_seconds));
    }
    if kind == "ContactEnded" {
        data.insert("agentsPendingWrapUp".into(), json!(task.pending_wrapup));
        if let Leg::Ended { reason, terminating_party, .. } = &task.leg {
            data.insert("reason".into(), json!(reason));
            data.insert("terminatingParty".into(), json!(terminating_party));
        }
    }
    if matches!(kind, "AgentWrapup" | "ContactEnded" | "AgentContact") {
        data.insert("wrapUpRequired".into(), json!(task.pending_wrapup.contains(&ctx.agent.id)));
    }
    if let Some(code) = &extra.wrap_up_aux_code_id {
        data.insert("wrapUpAuxCodeId".into(), json!(code));
    }
    if let Some((reason, code)) = &extra.reason {
        data.insert("reason".into(), json!(reason));
        data.insert("reasonCode".into(), json!(code));
    }
    data.insert("interaction".into(), interaction(task, ctx));
    json!({
        "type": "RoutingMessage",
        "orgId": task.org_id,
        "trackingId": format!("notifs_{}", crate::ids::uuid()),
        "data": data,
    })
}

/// A `…Failed` answer to a task command that could not be matched to a task, or whose task the
/// agent may not see: the task's id, the reason and its code, no interaction.
pub fn failure(
    kind: &str,
    task_id: &str,
    org_id: &str,
    agent: &User,
    tracking_id: &str,
    now: i64,
    reason: (&str, i64),
) -> Value {
    json!({
        "type": "RoutingMessage",
        "orgId": org_id,
        "trackingId": format!("notifs_{}", crate::ids::uuid()),
        "data": {
            "type": kind,
            "eventType": "RoutingMessage",
            "interactionId": task_id,
            "agentId": agent.id,
            "orgId": org_id,
            "trackingId": tracking_id,
            "eventTime": now,
            "reason": reason.0,
            "reasonCode": reason.1,
        },
    })
}
