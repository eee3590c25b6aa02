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
    /// Connections per user across every clientType (`--max-connections-per-user`).
    pub max_connections_per_user: usize,
    /// Registrations one user may have waiting for their connection; a newer one replaces the
    /// oldest (counted in `/__admin/state`).
    pub max_pending_per_user: usize,
    /// Messages buffered per connection; a client that falls further behind is dropped.
    pub buffer: usize,
    /// The socket's read buffer, in bytes (clients send keep-alives of a few bytes; a longer
    /// message is read in several chunks). Writes are not buffered.
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
            max_connections_per_user: 20,
            max_pending_per_user: 16,
            buffer: 256,
            socket_buffer_bytes: 2 * 1024,
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
    /// Waiting registrations per agent, oldest first.
    pending: HashMap<String, std::collections::VecDeque<String>>,
    connections: HashMap<String, Vec<Connection>>,
    next_id: u64,
    /// Clock time (ms) of the next sweep of expired registrations.
    next_sweep: i64,
    /// Registrations swept after their TTL, or replaced past the per-user bound.
    expired: u64,
    replaced: u64,
}

impl HubInner {
    fn forget_registration(&mut self, subscription_id: &str) -> Option<Registration> {
        let registration = self.registrations.remove(subscription_id)?;
        if let Some(queue) = self.pending.get_mut(&registration.agent_id) {
            queue.retain(|id| id != subscription_id);
            if queue.is_empty() {
                self.pending.remove(&registration.agent_id);
            }
        }
        Some(registration)
    }

    /// Forgets registrations past their TTL, at most once per TTL of clock time.
    fn sweep_if_due(&mut self, now: i64, ttl_ms: i64) {
        if now < self.next_sweep {
            return;
        }
        self.next_sweep = now.saturating_add(ttl_ms.clamp(1_000, 60_000));
        let stale: Vec<String> = self
            .registrations
            .values()
            .filter(|r| now - r.created_at >= ttl_ms)
            .map(|r| r.subscription_id.clone())
            .collect();
        for id in &stale {
            self.forget_registration(id);
        }
        self.expired += stale.len() as u64;
    }
}

/// Counts of what the hub holds and what it let go, for `/__admin/state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HubCounts {
    /// Registrations waiting for their connection.
    pub pending_registrations: usize,
    /// Registrations forgotten after their TTL.
    pub expired_registrations: u64,
    /// Registrations replaced by a newer one of the same user past the per-user bound.
    pub replaced_registrations: u64,
    /// Open connections.
    pub connections: usize,
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

    /// Checks the multi-login rules and the per-user bound against open connections and stores
    /// the registration (a user's oldest waiting one goes past `max_pending_per_user`). The error
    /// is the diagnostic of a 409.
    pub fn register(&self, registration: Registration, config: &NotificationConfig) -> Result<(), String> {
        let mut inner = self.lock();
        let now = registration.created_at;
        inner.sweep_if_due(now, config.registration_ttl_ms);
        let connections = inner.connections.get(&registration.agent_id);
        let open = connections.map_or(0, |c| c.iter().filter(|c| c.client_type == registration.client_type).count());
        let limit = if registration.allow_multi_login { config.max_multi_login } else { 1 };
        if open >= limit && !registration.force {
            return Err(format!(
                "The agent already has {open} open connection(s) for clientType {} and allowMultiLogin {} allows {limit}; send force: true to replace {}.",
                registration.client_type,
                registration.allow_multi_login,
                if registration.allow_multi_login { "the oldest" } else { "them" }
            ));
        }
        let all = connections.map_or(0, Vec::len);
        if all >= config.max_connections_per_user && !registration.force {
            return Err(format!(
                "The agent already has {all} open connections across all clientTypes, the most one user may have (--max-connections-per-user {}); close one, or send force: true to replace the oldest.",
                config.max_connections_per_user
            ));
        }
        let agent_id = registration.agent_id.clone();
        let id = registration.subscription_id.clone();
        inner.registrations.insert(id.clone(), registration);
        let queue = inner.pending.entry(agent_id.clone()).or_default();
        queue.push_back(id);
        let excess: Vec<String> = if queue.len() > config.max_pending_per_user.max(1) {
            queue.drain(..queue.len() - config.max_pending_per_user.max(1)).collect()
        } else {
            Vec::new()
        };
        for old in &excess {
            inner.registrations.remove(old);
            tracing::info!(
                "notification registration {old} of agent {agent_id} forgotten: a newer one replaced it past the {} a user may have waiting",
                config.max_pending_per_user
            );
        }
        inner.replaced += excess.len() as u64;
        Ok(())
    }

    /// Takes a registration for connecting (each URL connects once); `None` if unknown or expired.
    pub fn take(&self, subscription_id: &str, now: i64, config: &NotificationConfig) -> Option<Registration> {
        let mut inner = self.lock();
        let registration = inner.forget_registration(subscription_id)?;
        (now - registration.created_at < config.registration_ttl_ms).then_some(registration)
    }

    /// What the hub holds and let go.
    pub fn counts(&self) -> HubCounts {
        let inner = self.lock();
        HubCounts {
            pending_registrations: inner.registrations.len(),
            expired_registrations: inner.expired,
            replaced_registrations: inner.replaced,
            connections: inner.connections.values().map(Vec::len).sum(),
        }
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
        let message = multi_login_message(&registration.org_id, &registration.agent_id);
        let kick = |old: Connection| {
            let _ = old.tx.try_send(Outgoing::Text(message.clone().into()));
            let _ = old.tx.try_send(Outgoing::Close(CLOSE_MULTI_LOGIN, "AGENT_MULTI_LOGIN".into()));
        };
        if same_type.len() >= limit {
            if !registration.force {
                return Err(format!("too many connections for clientType {}", registration.client_type));
            }
            // Replace the oldest ones (all of them without multi-login) to make room.
            let excess = same_type.len() + 1 - limit;
            let kicked: Vec<usize> = same_type.into_iter().take(excess).collect();
            for index in kicked.into_iter().rev() {
                kick(list.remove(index));
            }
        }
        let most = config.max_connections_per_user.max(1);
        if list.len() >= most {
            if !registration.force {
                return Err(format!(
                    "too many connections for the user across clientTypes (--max-connections-per-user {most})"
                ));
            }
            // Facts §6.1: force drops a connection to make room; the oldest goes.
            let excess = list.len() + 1 - most;
            for old in list.drain(..excess).collect::<Vec<_>>() {
                kick(old);
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
        inner.pending.clear();
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
