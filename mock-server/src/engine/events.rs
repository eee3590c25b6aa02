//! Domain events: one typed [`Event`] per thing that changed, stamped on the one stream
//! ([`Stamped`]: a sequence number and the clock's time at the transition, taken under the lock
//! that made it). This module also says which webhook event type names each subscription knows
//! an event by, and what `data` each name carries.
//!
//! | event | v1 and `agent:1.0.0` | `agent:2.0.0` |
//! |---|---|---|
//! | login | `agent:login` | `agent:login` |
//! | logout | `agent:logout` | `agent:logout` |
//! | state change | `agent:state_change` | `agent:channel_state_change` and `agent:channelType_state_change` |
//!
//! | task event | v1 and `task:1.0.0` |
//! |---|---|
//! | arrived, parked, offered, answered, held, resumed, ended, failed | `task:new`, `task:parked`, `task:connect`, `task:connected`, `task:on-hold`, `task:hold-done`, `task:ended`, `task:failed` |
//!
//! An agent's channel state during a task (ringing, connected, on-hold, hold-done, wrapup,
//! wrapup-done, not-responding) goes to v1 and `agent:1.0.0` subscriptions as
//! `agent:state_change` and to `agent:2.0.0` ones as the two channel types.
//!
//! Subscription events (created, updated, deleted, disabled) go to the journal and the console,
//! never to webhooks.

use serde::Serialize;
use serde_json::{Value, json};

use crate::engine::agents::{Session, SubStatus};
use crate::engine::subscriptions::{ApiVersion, Subscription};
use crate::engine::tasks::{Direction, Party};
use crate::world::Channel;

/// An agent transition: who, and their session as it is afterwards (before, for a logout).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentChange {
    /// The organisation.
    pub org_id: String,
    /// The agent.
    pub agent_id: String,
    /// Their email.
    pub email: String,
    /// The session after the transition (before it, for a logout).
    pub session: Session,
    /// The user id of whoever caused it.
    pub by: String,
    /// The logout reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A subscription change (never delivered as a webhook).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionChange {
    /// The organisation.
    pub org_id: String,
    /// The subscription.
    pub subscription_id: String,
    /// Its name.
    pub name: String,
    /// Who changed it (an email, or `wxcc-mock` for the dispatcher).
    pub by: String,
    /// Its status afterwards.
    pub status: String,
    /// For a disabled one: how many consecutive events failed every attempt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_events: Option<u32>,
}

/// A task event's facts, as its webhooks carry them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskChange {
    /// The organisation.
    pub org_id: String,
    /// The task (the interactionId).
    pub task_id: String,
    /// Its channel.
    pub channel: Channel,
    /// Inbound or outdial.
    pub direction: Direction,
    /// The customer (the ANI shown, for an outdial).
    pub origin: String,
    /// What was dialled.
    pub destination: String,
    /// Its queue.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_id: Option<String>,
    /// The agent concerned, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// Why it ended or failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Who ended it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub terminating_party: Option<Party>,
}

/// An agent's state on one channel during a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChannelState {
    /// Offered, ringing.
    Ringing,
    /// Connected.
    Connected,
    /// On hold.
    OnHold,
    /// Off hold.
    HoldDone,
    /// Wrapping up.
    Wrapup,
    /// Wrapped up.
    WrapupDone,
    /// Did not answer (RONA, decline, invite failed).
    NotResponding,
}

impl ChannelState {
    /// The v2 `agent:channel_state_change` spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelState::Ringing => "ringing",
            ChannelState::Connected => "connected",
            ChannelState::OnHold => "on-hold",
            ChannelState::HoldDone => "hold-done",
            ChannelState::Wrapup => "wrapup",
            ChannelState::WrapupDone => "wrapup-done",
            ChannelState::NotResponding => "not-responding",
        }
    }

    /// The `agent:channelType_state_change` spelling (the desktop's).
    pub fn channel_type_state(self) -> &'static str {
        match self {
            ChannelState::Ringing => "Reserved",
            ChannelState::Connected | ChannelState::OnHold | ChannelState::HoldDone => "Engaged",
            ChannelState::Wrapup => "WrapUp",
            ChannelState::WrapupDone => "Available",
            ChannelState::NotResponding => "Idle",
        }
    }
}

/// An agent's channel state change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelChange {
    /// The organisation.
    pub org_id: String,
    /// The agent.
    pub agent_id: String,
    /// Their email.
    pub email: String,
    /// Their team.
    pub team_id: Option<String>,
    /// The task.
    pub task_id: String,
    /// Its channel.
    pub channel: Channel,
    /// The new state.
    pub state: ChannelState,
    /// The task's queue.
    pub queue_id: Option<String>,
    /// The customer.
    pub origin: String,
    /// What was dialled.
    pub destination: String,
    /// The wrap-up code (wrapup-done).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wrap_up_aux_code_id: Option<String>,
}

/// Something that changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", content = "data")]
pub enum Event {
    /// An agent logged in.
    #[serde(rename = "agent:login")]
    AgentLogin(AgentChange),
    /// An agent logged out.
    #[serde(rename = "agent:logout")]
    AgentLogout(AgentChange),
    /// An agent's state (Available, Idle and its code) changed.
    #[serde(rename = "agent:state_change")]
    AgentStateChange(AgentChange),
    /// A webhook subscription was created.
    #[serde(rename = "subscription:created")]
    SubscriptionCreated(SubscriptionChange),
    /// A webhook subscription was changed.
    #[serde(rename = "subscription:updated")]
    SubscriptionUpdated(SubscriptionChange),
    /// A webhook subscription was deleted.
    #[serde(rename = "subscription:deleted")]
    SubscriptionDeleted(SubscriptionChange),
    /// The dispatcher turned a subscription inactive after repeated failures.
    #[serde(rename = "subscription:disabled")]
    SubscriptionDisabled(SubscriptionChange),
    /// A task arrived.
    #[serde(rename = "task:new")]
    TaskNew(TaskChange),
    /// A task waits in its queue.
    #[serde(rename = "task:parked")]
    TaskParked(TaskChange),
    /// A task was offered to an agent.
    #[serde(rename = "task:connect")]
    TaskConnect(TaskChange),
    /// An agent answered a task.
    #[serde(rename = "task:connected")]
    TaskConnected(TaskChange),
    /// A call was put on hold.
    #[serde(rename = "task:on-hold")]
    TaskOnHold(TaskChange),
    /// A call was taken off hold.
    #[serde(rename = "task:hold-done")]
    TaskHoldDone(TaskChange),
    /// A task ended.
    #[serde(rename = "task:ended")]
    TaskEnded(TaskChange),
    /// A task failed (an outdial that could not be placed).
    #[serde(rename = "task:failed")]
    TaskFailed(TaskChange),
    /// An agent's state on a task's channel changed.
    #[serde(rename = "agent:channel_state")]
    AgentChannel(ChannelChange),
}

impl Event {
    /// The event's name (the v1 webhook type, for agent events).
    pub fn name(&self) -> &'static str {
        match self {
            Event::AgentLogin(_) => "agent:login",
            Event::AgentLogout(_) => "agent:logout",
            Event::AgentStateChange(_) => "agent:state_change",
            Event::SubscriptionCreated(_) => "subscription:created",
            Event::SubscriptionUpdated(_) => "subscription:updated",
            Event::SubscriptionDeleted(_) => "subscription:deleted",
            Event::SubscriptionDisabled(_) => "subscription:disabled",
            Event::TaskNew(_) => "task:new",
            Event::TaskParked(_) => "task:parked",
            Event::TaskConnect(_) => "task:connect",
            Event::TaskConnected(_) => "task:connected",
            Event::TaskOnHold(_) => "task:on-hold",
            Event::TaskHoldDone(_) => "task:hold-done",
            Event::TaskEnded(_) => "task:ended",
            Event::TaskFailed(_) => "task:failed",
            Event::AgentChannel(_) => "agent:channel_state",
        }
    }

    /// The task event's facts, if it is one.
    pub fn task(&self) -> Option<&TaskChange> {
        match self {
            Event::TaskNew(t)
            | Event::TaskParked(t)
            | Event::TaskConnect(t)
            | Event::TaskConnected(t)
            | Event::TaskOnHold(t)
            | Event::TaskHoldDone(t)
            | Event::TaskEnded(t)
            | Event::TaskFailed(t) => Some(t),
            _ => None,
        }
    }

    /// The organisation it belongs to.
    pub fn org_id(&self) -> &str {
        match self {
            Event::AgentLogin(c) | Event::AgentLogout(c) | Event::AgentStateChange(c) => &c.org_id,
            Event::SubscriptionCreated(c)
            | Event::SubscriptionUpdated(c)
            | Event::SubscriptionDeleted(c)
            | Event::SubscriptionDisabled(c) => &c.org_id,
            Event::AgentChannel(c) => &c.org_id,
            other => other.task().map_or("", |t| t.org_id.as_str()),
        }
    }

    /// The agent it concerns, if any.
    pub fn agent(&self) -> Option<&AgentChange> {
        match self {
            Event::AgentLogin(c) | Event::AgentLogout(c) | Event::AgentStateChange(c) => Some(c),
            _ => None,
        }
    }

    /// One line for the console.
    pub fn line(&self) -> String {
        match self {
            Event::AgentLogin(c) => format!("event agent:login {} on {}", c.email, c.session.dial_number),
            Event::AgentLogout(c) => {
                format!("event agent:logout {} ({})", c.email, c.reason.as_deref().unwrap_or_default())
            }
            Event::AgentStateChange(c) => {
                format!("event agent:state_change {} is {}", c.email, state_label(&c.session))
            }
            Event::SubscriptionCreated(s) => {
                format!("subscription {} ({}) created by {}", s.subscription_id, s.name, s.by)
            }
            Event::SubscriptionUpdated(s) => {
                format!("subscription {} ({}) updated by {}: {}", s.subscription_id, s.name, s.by, s.status)
            }
            Event::SubscriptionDeleted(s) => {
                format!("subscription {} ({}) deleted by {}", s.subscription_id, s.name, s.by)
            }
            Event::SubscriptionDisabled(s) => format!(
                "subscription {} ({}) inactive after {} failed events",
                s.subscription_id,
                s.name,
                s.failed_events.unwrap_or_default()
            ),
            Event::AgentChannel(c) => {
                format!("event agent {} {} on {} task {}", c.email, c.state.as_str(), c.channel.as_str(), c.task_id)
            }
            other => {
                let t = other.task().map_or_else(String::new, |t| {
                    let mut line = format!("{} task {}", t.channel.as_str(), t.task_id);
                    if let Some(reason) = &t.reason {
                        line.push_str(&format!(" ({reason})"));
                    }
                    line
                });
                format!("event {} {t}", other.name())
            }
        }
    }

    /// Whether webhooks may carry it.
    pub fn is_deliverable(&self) -> bool {
        self.agent().is_some() || self.task().is_some() || matches!(self, Event::AgentChannel(_))
    }
}

fn state_label(s: &Session) -> String {
    match s.sub_status {
        SubStatus::Available => "Available".to_owned(),
        SubStatus::Idle => format!("Idle ({})", s.aux_code_id),
    }
}

/// An event on the stream: its place in the one sequence and when it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamped {
    /// The journal sequence number.
    pub seq: u64,
    /// Epoch ms, from the mock's clock, taken under the lock that made the transition.
    pub at: i64,
    /// What happened.
    pub event: Event,
}

/// The event type names under which `sub` receives `event` (those it subscribed to).
pub fn names_for<'a>(event: &Event, sub: &'a Subscription) -> Vec<&'a str> {
    let v2_agent = sub.version == ApiVersion::V2 && sub.resource_version.as_deref() == Some("agent:2.0.0");
    let names: &[&str] = match event {
        Event::AgentStateChange(_) | Event::AgentChannel(_) if v2_agent => {
            &["agent:channel_state_change", "agent:channelType_state_change"]
        }
        Event::AgentStateChange(_) | Event::AgentChannel(_) => &["agent:state_change"],
        e if e.is_deliverable() => &[],
        _ => return Vec::new(),
    };
    sub.event_types
        .iter()
        .map(String::as_str)
        .filter(|t| if names.is_empty() { *t == event.name() } else { names.contains(t) })
        .collect()
}

fn direction(t: &TaskChange) -> (&'static str, Option<&'static str>) {
    match t.direction {
        Direction::Inbound => ("INBOUND", None),
        Direction::Outdial => ("OUTBOUND", Some("OUTDIAL")),
        Direction::CourtesyCallback => ("OUTBOUND", Some("COURTESY_CALLBACK")),
    }
}

fn task_data(event: &Event, t: &TaskChange, at: i64) -> Value {
    let (direction, outbound_type) = direction(t);
    let mut data = json!({
        "taskId": t.task_id,
        "channelType": t.channel,
        "createdTime": at,
        "origin": t.origin,
        "destination": t.destination,
        "direction": direction,
        "outboundType": outbound_type,
    });
    let fields = data.as_object_mut().map(std::mem::take).unwrap_or_default();
    let mut data = fields;
    if !matches!(event, Event::TaskNew(_)) {
        data.insert("queueId".into(), json!(t.queue_id));
    }
    if let Some(agent) = &t.agent_id {
        data.insert("agentId".into(), json!(agent));
    }
    if matches!(event, Event::TaskNew(_) | Event::TaskEnded(_)) {
        data.insert("workflowManager".into(), Value::Null);
    }
    if let Some(reason) = &t.reason {
        data.insert("reason".into(), json!(reason));
    }
    if let Some(party) = t.terminating_party {
        data.insert("terminatingParty".into(), json!(party));
    }
    Value::Object(data)
}

fn channel_data(c: &ChannelChange, name: &str, at: i64) -> Value {
    match name {
        "agent:channelType_state_change" => json!({
            "agentId": c.agent_id,
            "currentState": c.state.channel_type_state(),
            "channelType": c.channel,
            "pendingIdleState": false,
            "teamId": c.team_id,
            "taskId": c.task_id,
            "createdTime": at,
        }),
        _ => json!({
            "agentId": c.agent_id,
            "currentState": c.state.as_str(),
            "channelType": c.channel,
            "taskId": c.task_id,
            "queueId": c.queue_id,
            "teamId": c.team_id,
            "origin": c.origin,
            "destination": c.destination,
            "wrapUpAuxCodeId": c.wrap_up_aux_code_id,
            "createdTime": at,
        }),
    }
}

/// The webhook `data` of `stamped` as the type `name` carries it.
pub fn data_for(stamped: &Stamped, name: &str) -> Value {
    let at = stamped.at;
    if let Some(t) = stamped.event.task() {
        return task_data(&stamped.event, t, at);
    }
    if let Event::AgentChannel(c) = &stamped.event {
        return channel_data(c, name, at);
    }
    let Some(c) = stamped.event.agent() else { return Value::Null };
    let s = &c.session;
    let (lower_state, upper_state) = match s.sub_status {
        SubStatus::Available => ("available", "Available"),
        SubStatus::Idle => ("idle", "Idle"),
    };
    match (&stamped.event, name) {
        (Event::AgentLogin(_), _) => json!({
            "agentId": c.agent_id,
            "agentSessionId": s.agent_session_id,
            "teamId": s.team_id,
            "siteId": s.site_id,
            "destination": s.dial_number,
            "channelType": "telephony",
            "currentState": "idle",
            "idleCodeId": s.aux_code_id,
            "createdTime": at,
        }),
        (Event::AgentLogout(_), _) => json!({
            "agentId": c.agent_id,
            "agentSessionId": s.agent_session_id,
            "teamId": s.team_id,
            "currentState": "logged-out",
            "logoutReason": c.reason,
            "loggedOutBy": c.by,
            "createdTime": at,
        }),
        (Event::AgentStateChange(_), _) => json!({
            "agentId": c.agent_id,
            "agentSessionId": s.agent_session_id,
            "teamId": s.team_id,
            "destination": s.dial_number,
            "channelType": "telephony",
            // agent:channelType_state_change spells states as the desktop does (Available, Idle).
            "currentState": if name == "agent:channelType_state_change" { upper_state } else { lower_state },
            "idleCodeId": s.aux_code_id,
            "changedBy": c.by,
            "createdTime": at,
        }),
        _ => Value::Null,
    }
}
