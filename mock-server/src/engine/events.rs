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
//! Subscription events (created, updated, deleted, disabled) go to the journal and the console,
//! never to webhooks.

use serde::Serialize;
use serde_json::{Value, json};

use crate::engine::agents::{Session, SubStatus};
use crate::engine::subscriptions::{ApiVersion, Subscription};

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
        }
    }

    /// Whether webhooks may carry it.
    pub fn is_deliverable(&self) -> bool {
        self.agent().is_some()
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
    if !event.is_deliverable() {
        return Vec::new();
    }
    let v2_agent = sub.version == ApiVersion::V2 && sub.resource_version.as_deref() == Some("agent:2.0.0");
    let channel_names = ["agent:channel_state_change", "agent:channelType_state_change"];
    let renamed = v2_agent && matches!(event, Event::AgentStateChange(_));
    sub.event_types
        .iter()
        .map(String::as_str)
        .filter(|t| if renamed { channel_names.contains(t) } else { *t == event.name() })
        .collect()
}

/// The webhook `data` of `stamped` as the type `name` carries it.
pub fn data_for(stamped: &Stamped, name: &str) -> Value {
    let at = stamped.at;
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
