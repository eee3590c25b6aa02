//! The notification websocket: registrations made by `POST /v1/notification/subscribe`, the hub
//! of open connections per agent (with the multi-login rules of facts §6.1), and the messages
//! pushed on them (facts §6.3–6.4).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

pub use axum::extract::ws::Utf8Bytes;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::engine::agents::{FailureReason, Operation, Outcome, Session};
use crate::world::User;

/// Timing and limits of the websocket (facts §6.1–6.2).
#[derive(Debug, Clone)]
pub struct NotificationConfig {
    /// How often the server sends `{"keepalive":"true"}` (the SDK expects one within 8 s).
    pub keepalive_interval: Duration,
    /// Silence after which a client with `isKeepAliveEnabled` is dropped.
    pub idle_timeout: Duration,
    /// How long a subscription URL may wait for its connection, in ms.
    pub registration_ttl_ms: i64,
    /// Connections per user and clientType with `allowMultiLogin`.
    pub max_multi_login: usize,
    /// Messages buffered per connection; a client that falls further behind is dropped.
    pub buffer: usize,
    /// The socket's read and write buffers, in bytes (messages are a few KB).
    pub socket_buffer_bytes: usize,
    /// The largest message a client may send, in bytes.
    pub max_message_bytes: usize,
}

impl Default for NotificationConfig {
    fn default() -> Self {
        NotificationConfig {
            keepalive_interval: Duration::from_secs(4),
            idle_timeout: Duration::from_secs(16),
            registration_ttl_ms: 5 * 60 * 1000,
            max_multi_login: 10,
            buffer: 256,
            socket_buffer_bytes: 8 * 1024,
            max_message_bytes: 64 * 1024,
        }
    }
}

/// What `POST /v1/notification/subscribe` registered.
#[derive(Debug, Clone)]
pub struct Registration {
    /// `<clientType>-<uuid>`.
    pub subscription_id: String,
    /// The agent.
    pub agent_id: String,
    /// The agent's email (for the journal).
    pub email: String,
    /// The agent's organisation.
    pub org_id: String,
    /// `clientType`.
    pub client_type: String,
    /// `isKeepAliveEnabled`.
    pub keepalive: bool,
    /// `allowMultiLogin`.
    pub allow_multi_login: bool,
    /// `force`.
    pub force: bool,
    /// Epoch ms.
    pub created_at: i64,
}

/// What a connection's writer is told to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outgoing {
    /// Send this text frame (shared by every connection it goes to).
    Text(Utf8Bytes),
    /// Send a close frame with this code and reason, then stop.
    Close(u16, String),
}

#[derive(Debug)]
struct Connection {
    id: u64,
    client_type: String,
    tx: mpsc::Sender<Outgoing>,
}

/// A connection a message was handed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// The connection's id.
    pub connection: u64,
    /// Its `clientType`.
    pub client_type: String,
}

#[derive(Debug, Default)]
struct HubInner {
    registrations: HashMap<String, Registration>,
    connections: HashMap<String, Vec<Connection>>,
    next_id: u64,
}

/// Registrations and open connections. Every method is synchronous and short.
#[derive(Debug, Default)]
pub struct Hub {
    inner: Mutex<HubInner>,
}

/// Close code sent to a connection refused or replaced by the multi-login rules.
pub const CLOSE_MULTI_LOGIN: u16 = 4001;
/// Close code sent to a client that stayed silent past the idle timeout.
pub const CLOSE_IDLE: u16 = 4000;

impl Hub {
    fn lock(&self) -> std::sync::MutexGuard<'_, HubInner> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Checks the multi-login rules against open connections and stores the registration.
    /// The error is the diagnostic of a 409.
    pub fn register(&self, registration: Registration, config: &NotificationConfig) -> Result<(), String> {
        let mut inner = self.lock();
        let open = inner
            .connections
            .get(&registration.agent_id)
            .map_or(0, |c| c.iter().filter(|c| c.client_type == registration.client_type).count());
        let limit = if registration.allow_multi_login { config.max_multi_login } else { 1 };
        if open >= limit && !registration.force {
            return Err(format!(
                "The agent already has {open} open connection(s) for clientType {} and allowMultiLogin {} allows {limit}; send force: true to replace {}.",
                registration.client_type,
                registration.allow_multi_login,
                if registration.allow_multi_login { "the oldest" } else { "them" }
            ));
        }
        let now = registration.created_at;
        inner.registrations.retain(|_, r| now - r.created_at < config.registration_ttl_ms);
        inner.registrations.insert(registration.subscription_id.clone(), registration);
        Ok(())
    }

    /// Takes a registration for connecting (each URL connects once); `None` if unknown or expired.
    pub fn take(&self, subscription_id: &str, now: i64, config: &NotificationConfig) -> Option<Registration> {
        let mut inner = self.lock();
        let registration = inner.registrations.remove(subscription_id)?;
        (now - registration.created_at < config.registration_ttl_ms).then_some(registration)
    }

    /// Whether a registration is waiting (for refusing unknown URLs before upgrading).
    pub fn is_registered(&self, subscription_id: &str, now: i64, config: &NotificationConfig) -> bool {
        self.lock().registrations.get(subscription_id).is_some_and(|r| now - r.created_at < config.registration_ttl_ms)
    }

    /// Adds a connection, replacing older ones as the registration's multi-login flags say (they
    /// get `AGENT_MULTI_LOGIN` and are closed). Returns the connection id, or why it is refused.
    pub fn connect(
        &self,
        registration: &Registration,
        tx: mpsc::Sender<Outgoing>,
        config: &NotificationConfig,
    ) -> Result<u64, String> {
        let mut inner = self.lock();
        inner.next_id += 1;
        let id = inner.next_id;
        let list = inner.connections.entry(registration.agent_id.clone()).or_default();
        let same_type: Vec<usize> = list
            .iter()
            .enumerate()
            .filter(|(_, c)| c.client_type == registration.client_type)
            .map(|(i, _)| i)
            .collect();
        let limit = if registration.allow_multi_login { config.max_multi_login } else { 1 };
        if same_type.len() >= limit {
            if !registration.force {
                return Err(format!("too many connections for clientType {}", registration.client_type));
            }
            // Replace the oldest ones (all of them without multi-login) to make room.
            let excess = same_type.len() + 1 - limit;
            let kicked: Vec<usize> = same_type.into_iter().take(excess).collect();
            let message = multi_login_message(&registration.org_id, &registration.agent_id);
            for index in kicked.into_iter().rev() {
                let old = list.remove(index);
                let _ = old.tx.try_send(Outgoing::Text(message.clone().into()));
                let _ = old.tx.try_send(Outgoing::Close(CLOSE_MULTI_LOGIN, "AGENT_MULTI_LOGIN".into()));
            }
        }
        list.push(Connection { id, client_type: registration.client_type.clone(), tx });
        Ok(id)
    }

    /// Removes a connection.
    pub fn disconnect(&self, agent_id: &str, connection_id: u64) {
        let mut inner = self.lock();
        if let Some(list) = inner.connections.get_mut(agent_id) {
            list.retain(|c| c.id != connection_id);
            if list.is_empty() {
                inner.connections.remove(agent_id);
            }
        }
    }

    /// Pushes a message to every connection of `agent_id`; returns the connections it was handed
    /// to. A connection whose buffer is full is dropped (it will see its socket close, and the
    /// reason is logged) rather than slowing anyone down.
    pub fn push(&self, agent_id: &str, text: &Utf8Bytes) -> Vec<Delivered> {
        let mut inner = self.lock();
        let mut delivered = Vec::new();
        if let Some(list) = inner.connections.get_mut(agent_id) {
            list.retain(|c| match c.tx.try_send(Outgoing::Text(text.clone())) {
                Ok(()) => {
                    delivered.push(Delivered { connection: c.id, client_type: c.client_type.clone() });
                    true
                }
                Err(mpsc::error::TrySendError::Full(_)) => {
                    tracing::warn!(
                        "websocket #{} of agent {agent_id} fell {} messages behind and is closed (1008)",
                        c.id,
                        c.tx.max_capacity()
                    );
                    let _ = c.tx.try_send(Outgoing::Close(1008, "too slow".into()));
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            });
        }
        delivered
    }

    /// Whether `agent_id` has an open connection.
    pub fn is_connected(&self, agent_id: &str) -> bool {
        self.lock().connections.get(agent_id).is_some_and(|list| !list.is_empty())
    }

    /// Open connections per agent id (for `/__admin/state`).
    pub fn connection_counts(&self) -> Vec<(String, usize)> {
        let inner = self.lock();
        let mut counts: Vec<(String, usize)> =
            inner.connections.iter().map(|(agent, list)| (agent.clone(), list.len())).collect();
        counts.sort();
        counts
    }

    /// Closes everything and forgets every registration (for reset).
    pub fn clear(&self) {
        let mut inner = self.lock();
        for list in inner.connections.values() {
            for c in list {
                let _ = c.tx.try_send(Outgoing::Close(1012, "reset".into()));
            }
        }
        inner.connections.clear();
        inner.registrations.clear();
    }
}

/// `{"type":"Welcome","data":{"agentId":...}}`
pub fn welcome_message(agent_id: &str) -> String {
    json!({ "type": "Welcome", "data": { "agentId": agent_id } }).to_string()
}

/// `{"keepalive":"true"}`
pub fn keepalive_message() -> String {
    json!({ "keepalive": "true" }).to_string()
}

/// `AGENT_MULTI_LOGIN`, sent to a connection replaced by a newer one.
pub fn multi_login_message(org_id: &str, agent_id: &str) -> String {
    json!({
        "type": "AGENT_MULTI_LOGIN",
        "orgId": org_id,
        "trackingId": format!("notifs_{}", crate::ids::uuid()),
        "data": {
            "type": "AGENT_MULTI_LOGIN",
            "agentId": agent_id,
            "reason": "The agent connected again with the same clientType; this connection is replaced.",
        },
    })
    .to_string()
}

/// Everything needed to render an outcome as the real websocket message.
#[derive(Debug, Clone, Copy)]
pub struct OutcomeContext<'a> {
    /// The organisation.
    pub org_id: &'a str,
    /// The request's tracking id.
    pub tracking_id: &'a str,
    /// The agent acted on.
    pub agent: &'a User,
    /// Who asked (differs from `agent` for a supervisor's change).
    pub by: &'a User,
    /// The session before the command.
    pub before: Option<&'a Session>,
    /// The session after it.
    pub after: Option<&'a Session>,
}

fn envelope(outer: &str, ctx: &OutcomeContext<'_>, data: Value) -> Value {
    json!({ "type": outer, "orgId": ctx.org_id, "trackingId": ctx.tracking_id, "data": data })
}

fn base(inner: &str, ctx: &OutcomeContext<'_>) -> serde_json::Map<String, Value> {
    let mut data = serde_json::Map::new();
    data.insert("eventType".into(), json!("AgentDesktopMessage"));
    data.insert("type".into(), json!(inner));
    data.insert("agentId".into(), json!(ctx.agent.id));
    data.insert("trackingId".into(), json!(ctx.tracking_id));
    data.insert("orgId".into(), json!(ctx.org_id));
    data
}

/// One channel id per slot of the agent's capacity (Cisco's SDK counts them for `mmProfile`).
fn channels_map(s: &Session) -> Value {
    let slots = |channel: &str, n: u32| -> Vec<String> {
        (1..=n)
            .map(|i| {
                if channel == "telephony" && i == 1 {
                    s.agent_session_id.clone()
                } else {
                    format!("{}-{channel}-{i}", s.agent_session_id)
                }
            })
            .collect()
    };
    json!({
        "telephony": slots("telephony", s.capacity.telephony),
        "chat": slots("chat", s.capacity.chat),
        "email": slots("email", s.capacity.email),
        "social": slots("social", s.capacity.social),
    })
}

fn session_fields(data: &mut serde_json::Map<String, Value>, s: &Session) {
    let fields = json!({
        "agentSessionId": s.agent_session_id,
        "teamId": s.team_id,
        "siteId": s.site_id,
        "auxCodeId": s.aux_code_id,
        "status": s.status,
        "subStatus": s.sub_status,
        "lastIdleCodeChangeTimestamp": s.last_idle_code_change_timestamp,
        "lastStateChangeTimestamp": s.last_state_change_timestamp,
        "profileType": "BLENDED",
        "channelsMap": channels_map(s),
        "interactionIds": [],
        "dialNumber": s.dial_number,
        "dn": s.dial_number,
        "deviceType": s.device_type,
        "deviceId": s.device_id,
        "roles": s.roles,
    });
    if let Value::Object(fields) = fields {
        data.extend(fields);
    }
}

/// The websocket message for an outcome (facts §6.4), as a JSON value.
pub fn outcome_message(outcome: &Outcome, ctx: &OutcomeContext<'_>) -> Value {
    let (outer, inner) = outcome.operation.message_types(outcome.is_success());
    let mut data = base(inner, ctx);
    if let Some(reason) = outcome.failure {
        data.insert("reasonCode".into(), json!(reason.code()));
        data.insert("reason".into(), json!(reason));
        return envelope(outer, ctx, Value::Object(data));
    }
    match (outcome.operation, ctx.after, ctx.before) {
        (Operation::StationLogin, Some(s), _) => session_fields(&mut data, s),
        (Operation::Reload, Some(s), _) => {
            session_fields(&mut data, s);
            data.insert("isExtension".into(), json!(s.is_extension));
            data.insert("lastStateChangeReason".into(), json!(s.last_state_change_reason));
            data.insert("isEmergencyModalAlreadyDisplayed".into(), json!(false));
        }
        (Operation::AgentStateChange, Some(s), _) => {
            let by_other = ctx.by.id != ctx.agent.id;
            let fields = json!({
                "agentSessionId": s.agent_session_id,
                "auxCodeId": s.aux_code_id,
                "status": s.status,
                "subStatus": s.sub_status,
                "lastIdleCodeChangeTimestamp": s.last_idle_code_change_timestamp,
                "lastStateChangeTimestamp": s.last_state_change_timestamp,
                "lastStateChangeReason": s.last_state_change_reason,
                "changedBy": by_other.then(|| ctx.by.email.clone()),
                "changedById": by_other.then(|| ctx.by.id.clone()),
                "changedByName": by_other.then(|| format!("{} {}", ctx.by.first_name, ctx.by.last_name)),
            });
            if let Value::Object(fields) = fields {
                data.extend(fields);
            }
        }
        (Operation::Logout, _, Some(s)) => {
            data.insert("agentSessionId".into(), json!(s.agent_session_id));
            data.insert("status".into(), json!("LoggedOut"));
            data.insert("subStatus".into(), json!("LoggedOut"));
            data.insert("loggedOutBy".into(), json!(if ctx.by.id == ctx.agent.id { "SELF" } else { "SUPERVISOR" }));
            data.insert("roles".into(), json!(s.roles));
        }
        _ => {}
    }
    envelope(outer, ctx, Value::Object(data))
}

/// The `BuddyAgents` message (or `BuddyAgentsRetrieveFailed` when the caller has no session).
pub fn buddy_message(ctx: &OutcomeContext<'_>, buddies: &[(Session, String)]) -> Value {
    let Some(me) = ctx.after else {
        let mut data = base("BuddyAgentsRetrieveFailed", ctx);
        data.insert("reasonCode".into(), json!(FailureReason::AgentNotFound.code()));
        data.insert("reason".into(), json!(FailureReason::AgentNotFound));
        return envelope("BuddyAgents", ctx, Value::Object(data));
    };
    let list: Vec<Value> = buddies
        .iter()
        .map(|(s, name)| {
            json!({
                "agentId": s.agent_id, "state": s.sub_status, "teamId": s.team_id,
                "dn": s.dial_number, "agentName": name, "siteId": s.site_id,
            })
        })
        .collect();
    let mut data = base("BuddyAgents", ctx);
    data.insert("agentSessionId".into(), json!(me.agent_session_id));
    data.insert("agentList".into(), json!(list));
    envelope("BuddyAgents", ctx, Value::Object(data))
}
