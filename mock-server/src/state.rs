//! The live state behind one cheap-to-clone handle. Each store has its own mutex, held only for
//! short, synchronous sections (never across an `.await`).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;
use serde_json::{Value, json};

use crate::agents::{self, AgentEvent, Command, Outcome, Session, SubStatus};
use crate::auth::{self, AuthFailure, Identity, TokenRecord};
use crate::delivery::{DeliveryConfig, Dispatcher, Envelope, HttpTransport, Transport};
use crate::events;
use crate::notifications::{self, Hub, NotificationConfig, OutcomeContext};
use crate::subscriptions::SubscriptionStore;
use crate::world::{User, World};

/// Where "now" comes from: the system clock, or a manual one that tests move.
#[derive(Debug, Clone)]
pub enum Clock {
    /// Wall-clock time.
    System,
    /// A clock that only moves when told.
    Manual(Arc<AtomicI64>),
}

impl Clock {
    /// A manual clock starting at `epoch_ms`.
    pub fn manual(epoch_ms: i64) -> Clock {
        Clock::Manual(Arc::new(AtomicI64::new(epoch_ms)))
    }

    /// Now, in epoch ms.
    pub fn now_ms(&self) -> i64 {
        match self {
            Clock::System => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
            Clock::Manual(t) => t.load(Ordering::SeqCst),
        }
    }

    /// Moves a manual clock forward (no effect on the system clock).
    pub fn advance_ms(&self, ms: i64) {
        if let Clock::Manual(t) = self {
            t.fetch_add(ms, Ordering::SeqCst);
        }
    }
}

/// A bounded log: the oldest entry goes when a new one would exceed the capacity.
#[derive(Debug)]
pub struct Ring<T> {
    items: VecDeque<T>,
    capacity: usize,
}

impl<T> Ring<T> {
    /// An empty ring.
    pub fn new(capacity: usize) -> Ring<T> {
        Ring { items: VecDeque::with_capacity(capacity.min(1024)), capacity: capacity.max(1) }
    }

    /// Adds an entry, dropping the oldest if full.
    pub fn push(&mut self, item: T) {
        if self.items.len() == self.capacity {
            self.items.pop_front();
        }
        self.items.push_back(item);
    }

    /// Newest first.
    pub fn newest_first(&self) -> impl Iterator<Item = &T> {
        self.items.iter().rev()
    }

    /// Empties it.
    pub fn clear(&mut self) {
        self.items.clear();
    }
}

/// Tunables of the state.
#[derive(Debug, Clone)]
pub struct StateOptions {
    /// How many agent outcomes and events are kept.
    pub log_capacity: usize,
    /// Webhook retry policy.
    pub delivery: DeliveryConfig,
    /// Websocket timing and limits.
    pub notifications: NotificationConfig,
    /// Where webhooks go (HTTP unless a test says otherwise).
    pub transport: Arc<dyn Transport>,
    /// Refuse every request that breaks its schema, even where the real API is lenient.
    pub strict: bool,
}

impl Default for StateOptions {
    fn default() -> Self {
        StateOptions {
            log_capacity: 1000,
            delivery: DeliveryConfig::default(),
            notifications: NotificationConfig::default(),
            transport: Arc::new(HttpTransport::new()),
            strict: false,
        }
    }
}

/// A request that broke its schema, as `/__admin/violations` lists it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ViolationRecord {
    /// Epoch ms.
    pub at: i64,
    /// The request's method.
    pub method: String,
    /// The request's path (and query).
    pub path: String,
    /// The response's TrackingID.
    pub tracking_id: String,
    /// The schema broken.
    pub schema: String,
    /// JSON pointer into the body (empty for a body that is not JSON).
    pub pointer: String,
    /// The rule broken (`minLength`, `enum`, ..., or `json`).
    pub rule: String,
    /// The message, as the 400 would say it.
    pub message: String,
    /// Whether the mock answered anyway (a tolerated deviation, outside --strict).
    pub accepted: bool,
    /// The request body, cut to 2 KiB.
    pub body: String,
}

/// One request and its answer, as `/__admin/journal` lists it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Exchange {
    /// Epoch ms.
    pub at: i64,
    /// The request's method.
    pub method: String,
    /// The request's path and query.
    pub path: String,
    /// The response's status.
    pub status: u16,
    /// The response's TrackingID.
    pub tracking_id: String,
    /// How long the mock took, in microseconds.
    pub latency_us: u64,
}

/// One decided agent command, as `/__admin/state` shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutcomeRecord {
    /// Epoch ms.
    pub at: i64,
    /// The request's TrackingID.
    pub tracking_id: String,
    /// Organisation.
    pub org_id: String,
    /// The agent acted on.
    pub agent_id: String,
    /// Their email.
    pub email: String,
    /// The websocket message's outer `type`.
    pub message_type: &'static str,
    /// The websocket message's `data.type`.
    #[serde(rename = "type")]
    pub data_type: &'static str,
    /// The failure reason, if it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    /// What happened, in a sentence.
    pub detail: String,
}

#[derive(Debug)]
struct AgentStore {
    sessions: HashMap<String, Session>,
    outcomes: Ring<OutcomeRecord>,
    events: Ring<AgentEvent>,
}

#[derive(Debug)]
struct Inner {
    world: Arc<World>,
    clock: Clock,
    options: StateOptions,
    tokens: Mutex<HashMap<String, TokenRecord>>,
    agents: Mutex<AgentStore>,
    subscriptions: Arc<Mutex<SubscriptionStore>>,
    hub: Hub,
    dispatcher: Dispatcher,
    violations: Mutex<Ring<ViolationRecord>>,
    journal: Mutex<Ring<Exchange>>,
}

/// The mock's state: the loaded world plus everything that changes.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

/// A minted token, as `POST /__admin/tokens` returns it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MintedToken {
    /// `<opaque>_<cluster>_<orgId>`.
    pub access_token: String,
    /// The user's organisation.
    pub org_id: String,
    /// The user.
    pub user_id: String,
    /// Their email.
    pub email: String,
    /// Their roles.
    pub roles: Vec<String>,
    /// The token's scopes.
    pub scopes: Vec<String>,
    /// Epoch ms.
    pub expires_at: i64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks cannot leave a half-applied change (every
    // mutation is a single insert or replace), so a poisoned lock is still consistent.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl AppState {
    /// State over `world` with the system clock.
    pub fn new(world: World) -> AppState {
        AppState::with_clock(world, Clock::System, StateOptions::default())
    }

    /// State with an explicit clock and options (tests use [`Clock::manual`]).
    pub fn with_clock(world: World, clock: Clock, options: StateOptions) -> AppState {
        wxcc_schemas::init();
        let world = Arc::new(world);
        let agents = AgentStore {
            sessions: HashMap::new(),
            outcomes: Ring::new(options.log_capacity),
            events: Ring::new(options.log_capacity),
        };
        let subscriptions = Arc::new(Mutex::new(SubscriptionStore::default()));
        let dispatcher =
            Dispatcher::new(options.delivery.clone(), options.transport.clone(), subscriptions.clone(), clock.clone());
        let inner = Inner {
            tokens: Mutex::new(world_tokens(&world)),
            world,
            clock,
            agents: Mutex::new(agents),
            subscriptions,
            hub: Hub::default(),
            dispatcher,
            violations: Mutex::new(Ring::new(options.log_capacity)),
            journal: Mutex::new(Ring::new(options.log_capacity)),
            options,
        };
        AppState { inner: Arc::new(inner) }
    }

    /// The loaded world.
    pub fn world(&self) -> &Arc<World> {
        &self.inner.world
    }

    /// The clock.
    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    /// Now, epoch ms.
    pub fn now_ms(&self) -> i64 {
        self.inner.clock.now_ms()
    }

    /// Resolves a bearer token to an identity (401 cases).
    pub fn identify(&self, token: &str) -> Result<Identity, AuthFailure> {
        let record = lock(&self.inner.tokens).get(token).cloned();
        let Some(record) = record else {
            return Err(auth::unknown_token(token));
        };
        let identity = Identity::new(self.inner.world.clone(), record.clone());
        if let Some(expires_at) = record.expires_at {
            let now = self.now_ms();
            if expires_at <= now {
                return Err(auth::expired_token(identity.user(), expires_at, now));
            }
        }
        Ok(identity)
    }

    /// Mints a token for a world user; `None` if no user has that email.
    pub fn mint_token(&self, email: &str, scopes: Vec<String>, ttl_seconds: i64) -> Option<MintedToken> {
        let world = &self.inner.world;
        let (org_idx, org) =
            world.orgs.iter().enumerate().find(|(_, o)| o.users.iter().any(|u| u.email.eq_ignore_ascii_case(email)))?;
        let (user_idx, user) = org.users.iter().enumerate().find(|(_, u)| u.email.eq_ignore_ascii_case(email))?;
        let access_token = format!("{}_{}_{}", uuid::Uuid::new_v4().simple(), org.cluster, org.id);
        let expires_at = self.now_ms().saturating_add(ttl_seconds.saturating_mul(1000));
        let record =
            TokenRecord { org: org_idx, user: user_idx, scopes: scopes.clone().into(), expires_at: Some(expires_at) };
        lock(&self.inner.tokens).insert(access_token.clone(), record);
        Some(MintedToken {
            access_token,
            org_id: org.id.clone(),
            user_id: user.id.clone(),
            email: user.email.clone(),
            roles: user.roles.clone(),
            scopes,
            expires_at,
        })
    }

    /// Decides an agent command for `target` (a user of org `org_idx`) asked by `by`; records the
    /// outcome, pushes it to the websockets of both, and sends each event to the matching
    /// webhooks. Everything is sent under the agents lock (non-blocking sends only), so the order
    /// of websocket messages and webhook deliveries is the order of the transitions.
    pub fn agent_command(
        &self,
        org_idx: usize,
        target: &User,
        by: &User,
        command: Command,
        tracking_id: &str,
    ) -> Outcome {
        let org = &self.inner.world.orgs[org_idx];
        let now = self.now_ms();
        let session_id = uuid::Uuid::new_v4().to_string();
        let mut store = lock(&self.inner.agents);
        let dial_used_by = match &command {
            Command::Login(login) if login.device_type.as_deref() != Some("BROWSER") => store
                .sessions
                .values()
                .find(|s| s.org_id == org.id && s.agent_id != target.id && s.dial_number == login.dial_number)
                .map(|s| s.email.clone()),
            _ => None,
        };
        let ctx = agents::Context {
            org,
            user: target,
            dial_number_used_by: dial_used_by.as_deref(),
            now,
            new_session_id: &session_id,
        };
        let before = store.sessions.get(&target.id).cloned();
        let transition = agents::decide(ctx, before.as_ref(), command);
        match &transition.session {
            Some(s) => {
                store.sessions.insert(target.id.clone(), s.clone());
            }
            None => {
                store.sessions.remove(&target.id);
            }
        }
        let outcome = transition.outcome;
        let (message_type, data_type) = outcome.operation.message_types(outcome.is_success());
        store.outcomes.push(OutcomeRecord {
            at: now,
            tracking_id: tracking_id.to_owned(),
            org_id: org.id.clone(),
            agent_id: target.id.clone(),
            email: target.email.clone(),
            message_type,
            data_type,
            reason: outcome.failure,
            detail: outcome.detail.clone(),
        });
        let message_ctx = OutcomeContext {
            org_id: &org.id,
            tracking_id,
            agent: target,
            by,
            before: before.as_ref(),
            after: transition.session.as_ref(),
        };
        let message = notifications::outcome_message(&outcome, &message_ctx).to_string();
        self.inner.hub.push(&target.id, &message);
        if by.id != target.id {
            self.inner.hub.push(&by.id, &message);
        }
        for event in transition.events {
            self.deliver(&event, now);
            store.events.push(event);
        }
        outcome
    }

    /// A logout or state change named an `agentId` that is not in the caller's organisation:
    /// recorded, and the failure (`AGENT_NOT_FOUND`) is pushed to the caller's websockets.
    pub fn agent_not_found(
        &self,
        org_idx: usize,
        caller: &User,
        agent_id: &str,
        operation: agents::Operation,
        tracking_id: &str,
    ) {
        let org = &self.inner.world.orgs[org_idx];
        let detail = format!("No agent {agent_id} in {}.", org.name);
        let outcome = Outcome::failed(operation, agents::reasons::AGENT_NOT_FOUND, detail);
        let (message_type, data_type) = operation.message_types(false);
        let mut store = lock(&self.inner.agents);
        store.outcomes.push(OutcomeRecord {
            at: self.now_ms(),
            tracking_id: tracking_id.to_owned(),
            org_id: org.id.clone(),
            agent_id: agent_id.to_owned(),
            email: String::new(),
            message_type,
            data_type,
            reason: outcome.failure,
            detail: outcome.detail.clone(),
        });
        let ctx = OutcomeContext { org_id: &org.id, tracking_id, agent: caller, by: caller, before: None, after: None };
        self.inner.hub.push(&caller.id, &notifications::outcome_message(&outcome, &ctx).to_string());
    }

    /// Queues `event` for every active subscription of its org that names it.
    fn deliver(&self, event: &AgentEvent, now: i64) {
        let subscriptions = lock(&self.inner.subscriptions);
        for sub in subscriptions.active_in(&event.org_id) {
            let envelope = Envelope {
                subscription_id: &sub.id,
                org_id: &sub.org_id,
                version: sub.version,
                resource_version: sub.resource_version.as_deref(),
                secret: sub.secret.as_deref(),
            };
            for name in events::names_for(event, sub) {
                let id = uuid::Uuid::new_v4().to_string();
                let job = envelope.job(&sub.destination_url, &id, name, &events::data_for(event, name), now);
                self.inner.dispatcher.enqueue(job);
            }
        }
    }

    /// Answers `POST /v1/agents/buddyList`: pushes the org's other logged-in agents (optionally
    /// only those in `state`) to the caller's websockets.
    pub fn buddy_list(&self, org_idx: usize, caller: &User, state: Option<SubStatus>, tracking_id: &str) {
        let org = &self.inner.world.orgs[org_idx];
        let store = lock(&self.inner.agents);
        let me = store.sessions.get(&caller.id).cloned();
        let mut buddies: Vec<(Session, String)> = store
            .sessions
            .values()
            .filter(|s| s.org_id == org.id && s.agent_id != caller.id)
            .filter(|s| state.is_none_or(|wanted| s.sub_status == wanted))
            .map(|s| {
                let name = org
                    .users
                    .iter()
                    .find(|u| u.id == s.agent_id)
                    .map_or_else(|| s.email.clone(), |u| format!("{} {}", u.first_name, u.last_name));
                (s.clone(), name)
            })
            .collect();
        buddies.sort_by(|a, b| a.1.cmp(&b.1));
        let ctx = OutcomeContext {
            org_id: &org.id,
            tracking_id,
            agent: caller,
            by: caller,
            before: None,
            after: me.as_ref(),
        };
        let message = notifications::buddy_message(&ctx, &buddies).to_string();
        self.inner.hub.push(&caller.id, &message);
    }

    /// The websocket hub.
    pub fn notifications(&self) -> &Hub {
        &self.inner.hub
    }

    /// Websocket timing and limits.
    pub fn notification_config(&self) -> &NotificationConfig {
        &self.inner.options.notifications
    }

    /// The webhook dispatcher.
    pub fn dispatcher(&self) -> &Dispatcher {
        &self.inner.dispatcher
    }

    /// Whether off-contract requests are refused even where the real API is lenient.
    pub fn strict(&self) -> bool {
        self.inner.options.strict
    }

    /// Records contract violations of one request.
    pub fn record_violations(&self, records: impl IntoIterator<Item = ViolationRecord>) {
        let mut log = lock(&self.inner.violations);
        for record in records {
            log.push(record);
        }
    }

    /// Every recorded violation, oldest first.
    pub fn violations(&self) -> Vec<ViolationRecord> {
        let log = lock(&self.inner.violations);
        let mut all: Vec<ViolationRecord> = log.newest_first().cloned().collect();
        all.reverse();
        all
    }

    /// Records one exchange in the journal.
    pub fn record_exchange(&self, exchange: Exchange) {
        lock(&self.inner.journal).push(exchange);
    }

    /// The journal, newest first, at most `limit` entries.
    pub fn journal(&self, limit: usize) -> Vec<Exchange> {
        lock(&self.inner.journal).newest_first().take(limit).cloned().collect()
    }

    /// Forgets every recorded violation.
    pub fn clear_violations(&self) {
        lock(&self.inner.violations).clear();
    }

    /// Runs `f` on the subscription store under its lock. `f` must not block or await.
    pub fn with_subscriptions<R>(&self, f: impl FnOnce(&mut SubscriptionStore) -> R) -> R {
        f(&mut lock(&self.inner.subscriptions))
    }

    /// Back to the loaded world: world tokens only, no sessions, no subscriptions, empty logs.
    pub fn reset(&self) {
        *lock(&self.inner.tokens) = world_tokens(&self.inner.world);
        let mut agents = lock(&self.inner.agents);
        agents.sessions.clear();
        agents.outcomes.clear();
        agents.events.clear();
        drop(agents);
        *lock(&self.inner.subscriptions) = SubscriptionStore::default();
        self.inner.hub.clear();
        self.inner.dispatcher.clear();
        self.clear_violations();
        lock(&self.inner.journal).clear();
    }

    /// The world and the live state, for `GET /__admin/state`.
    pub fn snapshot(&self) -> Value {
        let world = &self.inner.world;
        let agents = lock(&self.inner.agents);
        let mut sessions: Vec<&Session> = agents.sessions.values().collect();
        sessions.sort_by(|a, b| a.email.cmp(&b.email));
        let agent_sessions = serde_json::to_value(sessions).unwrap_or_default();
        let outcomes: Vec<&OutcomeRecord> = agents.outcomes.newest_first().collect();
        let agent_outcomes = serde_json::to_value(outcomes).unwrap_or_default();
        let events: Vec<&AgentEvent> = agents.events.newest_first().collect();
        let events = serde_json::to_value(events).unwrap_or_default();
        drop(agents);
        let subscriptions: Vec<Value> =
            self.with_subscriptions(|s| s.all().into_iter().map(|s| s.to_admin()).collect());
        json!({
            "orgs": world.orgs,
            "tokens": world.tokens,
            "agentSessions": agent_sessions,
            "agentOutcomes": agent_outcomes,
            "events": events,
            "subscriptions": subscriptions,
            "notificationConnections": self
                .inner
                .hub
                .connection_counts()
                .into_iter()
                .map(|(agent_id, connections)| json!({ "agentId": agent_id, "connections": connections }))
                .collect::<Vec<_>>(),
            "logCapacity": self.inner.options.log_capacity,
        })
    }
}

fn world_tokens(world: &World) -> HashMap<String, TokenRecord> {
    let mut tokens = HashMap::new();
    for spec in &world.tokens {
        let found = world.orgs.iter().enumerate().find_map(|(oi, o)| {
            o.users.iter().position(|u| u.email.eq_ignore_ascii_case(&spec.email)).map(|ui| (oi, ui))
        });
        if let Some((org, user)) = found {
            let record = TokenRecord { org, user, scopes: spec.scopes.clone().into(), expires_at: spec.expires_at };
            tokens.insert(spec.access_token.clone(), record);
        }
    }
    tokens
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ring_keeps_only_the_newest_entries() {
        let mut ring = Ring::new(3);
        for i in 0..5 {
            ring.push(i);
        }
        assert_eq!(ring.newest_first().copied().collect::<Vec<_>>(), vec![4, 3, 2]);
    }

    #[test]
    fn minted_tokens_expire_on_the_clock() {
        let clock = Clock::manual(1_000_000);
        let state = AppState::with_clock(World::default_world(), clock.clone(), StateOptions::default());
        let minted = state.mint_token("agent2@wxcc.example", vec!["cjp:user".into()], 60).expect("user");
        assert!(state.identify(&minted.access_token).is_ok());
        clock.advance_ms(60_000);
        assert!(matches!(state.identify(&minted.access_token), Err(AuthFailure::BadToken(_))));
    }

    #[test]
    fn reset_forgets_minted_tokens_but_keeps_world_tokens() {
        let state = AppState::new(World::default_world());
        let minted = state.mint_token("agent2@wxcc.example", vec![], 60).expect("user");
        state.reset();
        assert!(state.identify(&minted.access_token).is_err());
        let world_token = state.world().tokens[0].access_token.clone();
        assert!(state.identify(&world_token).is_ok());
    }
}
