//! The live state behind one cheap-to-clone handle.
//!
//! One lock, the core, guards everything a transition reads and writes (agent sessions, the
//! outcome log, subscriptions). A transition reads the clock, decides, and publishes what it
//! produced in the same critical section through [`AppState::publish`]: each domain event is
//! numbered in the journal (so the sequence is the order of transitions), handed to the webhook
//! dispatcher for every matching subscription, and each websocket message pushed to the hub and
//! journaled. Every send there is non-blocking; nothing is awaited under a lock.
//!
//! - `agents`: agent commands (login, state, logout, reload, buddy list) on the core.
//! - `subscriptions`: webhook subscriptions on the core.
//! - `tasks`: tasks on the core: injection, the agents' commands, routing, RONA on the clock.
//! - `snapshot`: what `GET /__admin/state` shows.

mod agents;
pub mod persist;
mod snapshot;
mod subscriptions;
pub mod tasks;
mod tokens;
pub use tokens::Held;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use serde::Serialize;

use crate::auth::{self, AuthFailure, Identity, TokenRecord};
use crate::clock::Clock;
use crate::engine::agents::{FailureReason, Session};
use crate::engine::events::{Event, Stamped, names_for};
use crate::engine::subscriptions::{Status, SubscriptionStore};
use crate::outputs::delivery::{
    Attempt, DeliveryConfig, Dispatcher, Hooks, HttpTransport, Job, Outcome, Target, Transport,
};
use crate::outputs::journal::{
    DEFAULT_JOURNAL_BYTES, Draft, Fields, Journal, Kind, Level, members, push_body, wants_line,
};
use crate::outputs::notifications::{Hub, NotificationConfig, Registration, Utf8Bytes};
use crate::ring::Ring;
use crate::world::World;

/// Subscriptions per org unless `--max-subscriptions` says otherwise (the real limit is not
/// published).
pub const DEFAULT_MAX_SUBSCRIPTIONS: usize = 200;
/// Minted tokens held at once unless `--max-minted-tokens` says otherwise.
pub const DEFAULT_MAX_MINTED_TOKENS: usize = 10_000;

/// Tunables of the state.
#[derive(Debug, Clone)]
pub struct StateOptions {
    /// How many agent outcomes and violations are kept.
    pub log_capacity: usize,
    /// The journal's bound in bytes (`--journal-bytes`).
    pub journal_bytes: usize,
    /// Webhook retry policy.
    pub delivery: DeliveryConfig,
    /// Websocket timing and limits.
    pub notifications: NotificationConfig,
    /// Where webhooks go (HTTP unless a test says otherwise).
    pub transport: Arc<dyn Transport>,
    /// Refuse every request that breaks its schema, even where the real API is lenient.
    pub strict: bool,
    /// Finished tasks kept for `GET /v1/tasks` and the admin API (the oldest go first).
    pub task_history: usize,
    /// How the mock is exposed: who may use `/__admin`, where webhooks may go, the public URL.
    pub access: crate::access::AccessConfig,
    /// Subscriptions one org may hold, v1 and v2 together (`--max-subscriptions`).
    pub max_subscriptions_per_org: usize,
    /// Minted tokens the mock holds at once (`--max-minted-tokens`); expired ones are swept.
    pub max_minted_tokens: usize,
    /// Where the state survives a restart (`--state-file`); `None`: in memory only.
    pub state_file: Option<std::path::PathBuf>,
    /// Requests per minute per client id (`--rate-limit`); `None`: no limit.
    pub rate_limit: Option<crate::rate::RateLimit>,
}

impl Default for StateOptions {
    fn default() -> Self {
        StateOptions {
            log_capacity: 1000,
            journal_bytes: DEFAULT_JOURNAL_BYTES,
            delivery: DeliveryConfig::default(),
            notifications: NotificationConfig::default(),
            transport: Arc::new(HttpTransport::new()),
            strict: false,
            task_history: 10_000,
            access: crate::access::AccessConfig::default(),
            max_subscriptions_per_org: DEFAULT_MAX_SUBSCRIPTIONS,
            max_minted_tokens: DEFAULT_MAX_MINTED_TOKENS,
            state_file: None,
            rate_limit: None,
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
    /// The request body, cut to 2 KiB, secrets redacted.
    pub body: String,
}

impl ViolationRecord {
    /// Bytes it holds (each text is at most 2 KiB and a few hundred more).
    pub fn size(&self) -> usize {
        std::mem::size_of::<ViolationRecord>()
            + self.method.len()
            + self.path.len()
            + self.tracking_id.len()
            + self.schema.len()
            + self.pointer.len()
            + self.rule.len()
            + self.message.len()
            + self.body.len()
    }
}

/// The violations log's bound in bytes (besides `log_capacity` entries).
pub const VIOLATIONS_BYTES: usize = 4 * 1024 * 1024;

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
    pub reason: Option<FailureReason>,
    /// What happened, in a sentence.
    pub detail: String,
}

/// Why a token was not minted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MintError {
    /// No world user has that email.
    NoSuchUser,
    /// The mock holds `--max-minted-tokens` unexpired ones.
    Full(tokens::TokenLimit),
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
    /// The integration it was issued to (what a rate limit counts by).
    pub client_id: String,
}

/// Everything a transition reads and writes, behind one lock.
#[derive(Debug)]
pub(crate) struct Core {
    pub(crate) sessions: HashMap<String, Session>,
    pub(crate) outcomes: Ring<OutcomeRecord>,
    pub(crate) subscriptions: SubscriptionStore,
    pub(crate) tasks: tasks::TaskStore,
}

#[derive(Debug)]
pub(crate) struct Inner {
    world: Arc<World>,
    clock: Clock,
    options: StateOptions,
    tokens: tokens::Tokens,
    core: Mutex<Core>,
    hub: Hub,
    dispatcher: Dispatcher,
    journal: Arc<Journal>,
    violations: Mutex<Ring<ViolationRecord>>,
    /// The address the mock listens on, once bound.
    bound: std::sync::OnceLock<std::net::SocketAddr>,
    /// `--state-file`'s writer.
    persister: Option<Arc<persist::Persister>>,
    /// `/openapi.json` as this mock serves it (naming its address), made at the first request.
    openapi: std::sync::OnceLock<axum::body::Bytes>,
    /// The rate limiter (`--rate-limit`, or a scenario's `rateLimit`).
    rate: crate::rate::RateLimiter,
    /// The fault rules (`/__admin/faults`).
    faults: crate::faults::Faults,
    /// The scenario loaded last (`serve --scenario`, `POST /__admin/scenario`), until a reset.
    scenario: Mutex<Option<crate::scenario::Running>>,
}

/// The mock's state: the loaded world plus everything that changes.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

/// What a transition publishes, in order.
#[derive(Debug)]
pub(crate) enum Out {
    /// A domain event: journaled, and delivered to the subscriptions that name it.
    Event(Box<Event>),
    /// A websocket message for these agents (`(agent id, email)`), journaled per connection.
    Message {
        /// Who gets it.
        to: Vec<(String, String)>,
        /// The message.
        text: String,
        /// `type/data.type`, for the journal and the console.
        label: String,
    },
}

impl Out {
    /// An event to publish.
    pub(crate) fn event(event: Event) -> Out {
        Out::Event(Box::new(event))
    }
}

/// A websocket frame, as the connection task reports it for the journal.
#[derive(Debug, Clone, Copy)]
pub enum Frame<'a> {
    /// A text frame sent by the mock (Welcome, keep-alive).
    Out(&'a str),
    /// A frame the client sent.
    In(&'a str),
    /// The mock closed the connection.
    CloseOut(u16, &'a str),
    /// The client closed it (or it dropped).
    CloseIn(u16, &'a str),
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks cannot leave a half-applied change (every
    // mutation is a single insert or replace), so a poisoned lock is still consistent.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What a websocket fault rule's `eventType` matches: the message's `type` (`AgentStateChange`)
/// and its `data.type` (`AgentStateChangeSuccess`; the `type` again when there is none), or
/// `keepalive` twice for a keep-alive.
pub fn message_types(text: &str) -> (String, String) {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(text) else {
        return ("text".to_owned(), "text".to_owned());
    };
    if value.get("keepalive").is_some() {
        return ("keepalive".to_owned(), "keepalive".to_owned());
    }
    let outer = value["type"].as_str().unwrap_or("?");
    (outer.to_owned(), value["data"]["type"].as_str().unwrap_or(outer).to_owned())
}

/// `type/data.type` of a websocket message (or `keepalive`).
pub fn label_of(text: &str) -> String {
    let (outer, inner) = message_types(text);
    label_from(outer, inner)
}

/// `type/data.type` from a message's types ([`message_types`]); just `type` when they agree.
pub fn label_from(outer: String, inner: String) -> String {
    if inner == outer { outer } else { format!("{outer}/{inner}") }
}

/// A websocket frame as the journal records it (its fields are JSON from the moment it is
/// recorded, so the record only borrows).
#[derive(Debug)]
struct WsRecord<'a> {
    outgoing: bool,
    agent_id: &'a str,
    email: &'a str,
    connection: Option<u64>,
    client_type: Option<&'a str>,
    label: &'a str,
    message: Option<&'a str>,
    close: Option<(u16, &'a str)>,
    delivered: bool,
    /// The fault injected into it (`fault-1: dropped`), if any.
    fault: Option<&'a str>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct WsHead<'a> {
    direction: &'a str,
    agent_id: &'a str,
    email: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    connection: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_type: Option<&'a str>,
    label: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    close_code: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    close_reason: Option<&'a str>,
    delivered: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    fault: Option<&'a str>,
}

impl WsRecord<'_> {
    fn fields(&self) -> Fields {
        let head = WsHead {
            direction: if self.outgoing { "out" } else { "in" },
            agent_id: self.agent_id,
            email: self.email,
            connection: self.connection,
            client_type: self.client_type,
            label: self.label,
            close_code: self.close.map(|(code, _)| code),
            close_reason: self.close.map(|(_, reason)| reason),
            delivered: self.delivered,
            fault: self.fault,
        };
        let mut out = members(&head);
        if let Some(message) = self.message {
            // Messages the mock sends are its own JSON; a client's are checked.
            push_body(&mut out, "message", message.as_bytes(), self.outgoing);
        }
        Fields::Text(out)
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct WebhookFields<'a> {
    #[serde(flatten)]
    attempt: &'a Attempt,
}

/// A webhook attempt's fields: the attempt and the exact bytes sent.
fn webhook_fields(attempt: &Attempt, body: &[u8]) -> Fields {
    let mut out = members(&WebhookFields { attempt });
    // The mock rendered the body itself: valid, shallow JSON.
    push_body(&mut out, "body", body, true);
    Fields::Text(out)
}

impl AppState {
    /// State over `world` with the system clock.
    pub fn new(world: World) -> AppState {
        AppState::with_clock(world, Clock::system(), StateOptions::default())
    }

    /// State with an explicit clock and options (tests use [`Clock::virtual_at`]).
    pub fn with_clock(world: World, clock: Clock, options: StateOptions) -> AppState {
        wxcc_schemas::init_in_background();
        let world = Arc::new(world);
        let inner = Arc::new_cyclic(|weak: &Weak<Inner>| {
            let hooks = Arc::new(StateHooks(weak.clone()));
            let dispatcher = Dispatcher::new(options.delivery.clone(), options.transport.clone(), hooks, clock.clone());
            let rate = crate::rate::RateLimiter::new(options.rate_limit, clock.clone(), &world.rate_limits);
            Inner {
                tokens: tokens::Tokens::from_world(&world),
                world,
                clock,
                core: Mutex::new(Core {
                    sessions: HashMap::new(),
                    outcomes: Ring::new(options.log_capacity),
                    subscriptions: SubscriptionStore::default(),
                    tasks: tasks::TaskStore::new(options.task_history),
                }),
                hub: Hub::default(),
                dispatcher,
                journal: Arc::new(Journal::new(options.journal_bytes)),
                violations: Mutex::new(Ring::with_bytes(options.log_capacity, VIOLATIONS_BYTES)),
                bound: std::sync::OnceLock::new(),
                persister: options.state_file.clone().map(|path| Arc::new(persist::Persister::new(path))),
                openapi: std::sync::OnceLock::new(),
                rate,
                faults: crate::faults::Faults::default(),
                scenario: Mutex::new(None),
                options,
            }
        });
        AppState { inner }
    }

    /// Records the address the mock listens on (once; later calls are ignored): it names the
    /// mock for `/__admin`, is refused as a webhook destination and builds `webSocketUrl`.
    pub fn bind_to(&self, addr: std::net::SocketAddr) {
        let _ = self.inner.bound.set(addr);
    }

    /// The address the mock listens on, once bound.
    pub fn bound(&self) -> Option<std::net::SocketAddr> {
        self.inner.bound.get().copied()
    }

    /// Where clients reach the mock: whether over TLS, and the host (and port). `--public-url`,
    /// else the bound address (`0.0.0.0` and `::` read as loopback), never the request's `Host`.
    fn reached_at(&self) -> (bool, String) {
        if let Some(public) = &self.options().access.public_url {
            let host = public.host_str().unwrap_or("localhost");
            let host = if host.contains(':') { format!("[{host}]") } else { host.to_owned() };
            let port = public.port().map(|p| format!(":{p}")).unwrap_or_default();
            return (public.scheme() == "https", format!("{host}{port}"));
        }
        match self.bound() {
            Some(addr) => {
                let ip = match addr.ip() {
                    std::net::IpAddr::V4(v4) if v4.is_unspecified() => "127.0.0.1".to_owned(),
                    std::net::IpAddr::V6(v6) if v6.is_unspecified() => "[::1]".to_owned(),
                    std::net::IpAddr::V6(v6) => format!("[{v6}]"),
                    std::net::IpAddr::V4(v4) => v4.to_string(),
                };
                (self.options().access.tls.is_some(), format!("{ip}:{}", addr.port()))
            }
            None => (false, "localhost".to_owned()),
        }
    }

    /// The base URL clients reach the mock at: `--public-url` (with its path), or the bound
    /// address (`http://127.0.0.1:8080` before binding).
    pub fn http_base(&self) -> String {
        if let Some(public) = &self.options().access.public_url {
            return public.as_str().trim_end_matches('/').to_owned();
        }
        if self.bound().is_none() {
            return "http://127.0.0.1:8080".to_owned();
        }
        let (secure, host) = self.reached_at();
        format!("{}://{host}", if secure { "https" } else { "http" })
    }

    /// The OpenAPI document as this mock serves it: `make` runs once (the address is fixed by
    /// then: requests come only once the mock is bound).
    pub fn served_openapi(&self, make: impl FnOnce(&str) -> String) -> axum::body::Bytes {
        self.inner.openapi.get_or_init(|| make(&self.http_base()).into()).clone()
    }

    /// `ws://` or `wss://` and the host (and port) of the notification websockets.
    pub fn websocket_base(&self) -> String {
        let (secure, host) = self.reached_at();
        format!("{}://{host}", if secure { "wss" } else { "ws" })
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

    pub(crate) fn core(&self) -> MutexGuard<'_, Core> {
        lock(&self.inner.core)
    }

    /// The journal.
    pub fn journal(&self) -> &Journal {
        &self.inner.journal
    }

    /// The journal, shared (for streams that outlive a request).
    pub fn journal_handle(&self) -> Arc<Journal> {
        self.inner.journal.clone()
    }

    /// Resolves a bearer token to an identity (401 cases).
    pub fn identify(&self, token: &str) -> Result<Identity<'_>, AuthFailure> {
        // The clock is read only when something may have expired (minted tokens to sweep, or a
        // token that expires: the world's usually do not), and then once.
        let read = std::cell::OnceCell::new();
        let now = || *read.get_or_init(|| self.now_ms());
        let Some(found) = self.inner.tokens.find(token, now) else {
            return Err(auth::unknown_token(token));
        };
        let identity = Identity::new(&self.inner.world, found.record);
        match found.expires_at {
            Some(expires_at) => match now() {
                now if expires_at <= now => Err(auth::expired_token(identity.user(), expires_at, now)),
                _ => Ok(identity),
            },
            None => Ok(identity),
        }
    }

    /// Makes a token expire now (`POST /__admin/tokens/expire`): a world token by its name
    /// (`agent2`), or any token by its value. The email of its user, if the token is known.
    pub fn expire_token(&self, token: &str) -> Option<String> {
        let value = self.inner.world.token_named(token).map_or(token, |t| t.access_token.as_str()).to_owned();
        let (org, user) = self.inner.tokens.expire(&value, self.now_ms())?;
        let user = self.inner.world.orgs.get(org)?.users.get(user)?;
        Some(user.email.clone())
    }

    /// The email of a known token's user (expired or not), for showing who a token was.
    pub fn token_owner(&self, token: &str) -> Option<String> {
        let (org, user) = self.inner.tokens.owner(token)?;
        Some(self.inner.world.orgs[org].users[user].email.clone())
    }

    /// Mints a token for a world user, issued to `client_id` (absent: the default client).
    pub fn mint_token(
        &self,
        email: &str,
        scopes: Vec<String>,
        ttl_seconds: i64,
        client_id: Option<&str>,
    ) -> Result<MintedToken, MintError> {
        let world = &self.inner.world;
        let (org_idx, user_idx) = world.user_position(email).ok_or(MintError::NoSuchUser)?;
        let org = &world.orgs[org_idx];
        let user = &org.users[user_idx];
        let access_token = format!("{}_{}_{}", crate::ids::simple(), org.cluster, org.id);
        let expires_at = self.now_ms().saturating_add(ttl_seconds.saturating_mul(1000));
        let client_id = crate::auth::client_id(client_id);
        let record = TokenRecord {
            org: org_idx,
            user: user_idx,
            scopes: scopes.clone().into(),
            expires_at: Some(expires_at),
            client_id: client_id.clone(),
        };
        let limit = self.inner.options.max_minted_tokens;
        self.inner.tokens.mint(access_token.clone(), record, limit, self.now_ms()).map_err(MintError::Full)?;
        Ok(MintedToken {
            access_token,
            org_id: org.id.clone(),
            user_id: user.id.clone(),
            email: user.email.clone(),
            roles: user.roles.clone(),
            scopes,
            expires_at,
            client_id: client_id.to_string(),
        })
    }

    /// Publishes what a transition produced, in order, while the caller holds the core lock
    /// (`core`): events are numbered in the journal and queued for every matching subscription;
    /// messages are pushed to the agents' websockets, each frame journaled.
    pub(crate) fn publish(&self, core: &Core, at: i64, outs: Vec<Out>) {
        for out in outs {
            match out {
                Out::Event(event) => {
                    let body = members(&event);
                    let bytes = body.len();
                    let level =
                        if matches!(*event, Event::SubscriptionDisabled(_)) { Level::Warn } else { Level::Info };
                    let seq = self.inner.journal.append(Draft {
                        at,
                        kind: Kind::Event,
                        line: if wants_line(level) { event.line() } else { String::new() },
                        level,
                        fields: Fields::Text(body),
                    });
                    if !event.is_deliverable() {
                        continue;
                    }
                    let stamped = Arc::new(Stamped { seq, at, event: *event });
                    for sub in core.subscriptions.active_in(stamped.event.org_id()) {
                        let names = names_for(&stamped.event, sub);
                        if names.is_empty() {
                            continue;
                        }
                        let target = Arc::new(Target::of(sub));
                        for name in names {
                            let job = Job::new(stamped.clone(), name, target.clone(), bytes);
                            self.inner.dispatcher.enqueue(job);
                        }
                    }
                }
                Out::Message { to, text, label } => {
                    let shared = Utf8Bytes::from(text);
                    for (agent_id, email) in &to {
                        let delivered = self.inner.hub.push(agent_id, &shared);
                        let targets: Vec<(Option<u64>, Option<String>)> = if delivered.is_empty() {
                            vec![(None, None)]
                        } else {
                            delivered.into_iter().map(|d| (Some(d.connection), Some(d.client_type))).collect()
                        };
                        for (connection, client_type) in targets {
                            let ws = WsRecord {
                                outgoing: true,
                                agent_id,
                                email,
                                connection,
                                client_type: client_type.as_deref(),
                                label: &label,
                                message: Some(shared.as_str()),
                                close: None,
                                delivered: connection.is_some(),
                                fault: None,
                            };
                            self.journal_ws(at, &ws);
                        }
                    }
                }
            }
        }
    }

    fn journal_ws(&self, at: i64, ws: &WsRecord<'_>) {
        let level = match (ws.fault, ws.label) {
            (Some(_), _) => Level::Warn,
            (None, "keepalive") => Level::Debug,
            (None, _) => Level::Info,
        };
        let line = if wants_line(level) {
            let arrow = if ws.outgoing { "→" } else { "←" };
            let connection = ws.connection.map_or_else(|| "(no websocket connected)".to_owned(), |c| format!("#{c}"));
            let fault = ws.fault.map(|f| format!(" [fault {f}]")).unwrap_or_default();
            format!("ws {arrow} {} {connection} {}{fault}", ws.email, ws.label)
        } else {
            String::new()
        };
        self.inner.journal.append(Draft { at, kind: Kind::Ws, line, level, fields: ws.fields() });
    }

    /// Journals a frame of one connection (the connection task reports Welcome, keep-alives,
    /// frames from the client, and closes; messages from the hub are journaled when pushed).
    pub fn journal_frame(&self, registration: &Registration, connection: u64, frame: Frame<'_>) {
        let (outgoing, text, close) = match frame {
            Frame::Out(text) => (true, Some(text), None),
            Frame::In(text) => (false, Some(text), None),
            Frame::CloseOut(code, reason) => (true, None, Some((code, reason))),
            Frame::CloseIn(code, reason) => (false, None, Some((code, reason))),
        };
        let label = match (text, &close) {
            (Some(text), _) => label_of(text),
            (None, Some((code, reason))) => format!("close {code} ({reason})"),
            (None, None) => String::new(),
        };
        let ws = WsRecord {
            outgoing,
            agent_id: &registration.agent_id,
            email: &registration.email,
            connection: Some(connection),
            client_type: Some(&registration.client_type),
            label: &label,
            message: text,
            close,
            delivered: true,
            fault: None,
        };
        self.journal_ws(self.now_ms(), &ws);
    }

    /// Journals a fault injected into a message the mock was about to send on a connection.
    /// `label` is the message's `type/data.type`, as [`label_of`] makes it.
    pub fn journal_ws_fault(&self, registration: &Registration, connection: u64, label: String, fault: String) {
        let ws = WsRecord {
            outgoing: true,
            agent_id: &registration.agent_id,
            email: &registration.email,
            connection: Some(connection),
            client_type: Some(&registration.client_type),
            label: &label,
            message: None,
            close: None,
            delivered: false,
            fault: Some(&fault),
        };
        self.journal_ws(self.now_ms(), &ws);
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

    /// The options the state was made with.
    pub fn options(&self) -> &StateOptions {
        &self.inner.options
    }

    /// Records contract violations of one request.
    pub fn record_violations(&self, records: impl IntoIterator<Item = ViolationRecord>) {
        let mut log = lock(&self.inner.violations);
        for record in records {
            let size = record.size();
            log.push_sized(record, size);
        }
    }

    /// Every recorded violation, oldest first.
    pub fn violations(&self) -> Vec<ViolationRecord> {
        lock(&self.inner.violations).oldest_first().cloned().collect()
    }

    /// Forgets every recorded violation.
    pub fn clear_violations(&self) {
        lock(&self.inner.violations).clear();
    }

    /// Waits until no work started on the clock's behalf is in flight (virtual clock: every
    /// queued webhook has had its attempt, or waits for the clock).
    pub async fn settled(&self) -> bool {
        self.inner.clock.settle().await
    }

    /// Back to the loaded world: world tokens only, no sessions, no subscriptions, no websockets,
    /// empty logs, no fault rules, the configured rate limit, no scenario (its script stops).
    pub fn reset(&self) {
        if let Some(running) = lock(&self.inner.scenario).take() {
            running.stop();
        }
        // Minted tokens go; world tokens expired by `/__admin/tokens/expire` come back.
        self.inner.tokens.reset();
        {
            let mut core = self.core();
            core.sessions.clear();
            core.outcomes.clear();
            core.subscriptions = SubscriptionStore::default();
            core.tasks.clear();
        }
        self.inner.hub.clear();
        self.inner.dispatcher.clear();
        self.clear_violations();
        self.inner.journal.clear();
        self.inner.rate.reset_to(self.inner.options.rate_limit);
        self.inner.faults.clear();
    }

    /// Records the scenario just loaded (stopping the script of one before, if any).
    pub fn set_scenario(&self, running: crate::scenario::Running) {
        if let Some(before) = lock(&self.inner.scenario).replace(running) {
            before.stop();
        }
    }

    /// The loaded scenario and how far its script got, as `GET /__admin/scenario` shows it.
    pub fn scenario_view(&self) -> serde_json::Value {
        lock(&self.inner.scenario)
            .as_ref()
            .map_or_else(|| serde_json::json!({ "loaded": false }), crate::scenario::Running::view)
    }

    /// The fault rules.
    pub fn faults(&self) -> &crate::faults::Faults {
        &self.inner.faults
    }

    /// Counts a request of `identity`'s client to `method` `route` against the world's rate
    /// limits and `--rate-limit`, or says when it may try again.
    pub fn admit(
        &self,
        identity: &crate::auth::Identity,
        method: &str,
        route: &str,
    ) -> Result<(), crate::rate::Limited> {
        let request =
            crate::rate::Request { client_id: identity.client_id(), org_id: &identity.org().id, method, route };
        self.inner.rate.admit(&request)
    }

    /// The limiter (off unless `--rate-limit` or a scenario set a limit).
    pub fn rate_limiter(&self) -> &crate::rate::RateLimiter {
        &self.inner.rate
    }
}

/// How the dispatcher reaches back into the state (weakly, so the two do not keep each other).
#[derive(Debug)]
struct StateHooks(Weak<Inner>);

impl StateHooks {
    fn state(&self) -> Option<AppState> {
        self.0.upgrade().map(|inner| AppState { inner })
    }
}

impl Hooks for StateHooks {
    fn is_active(&self, subscription_id: &str) -> Option<bool> {
        let state = self.state()?;
        let core = state.core();
        core.subscriptions.by_id(subscription_id).map(|s| s.status == Status::Active)
    }

    fn disable(&self, subscription_id: &str, failed_events: u32) {
        if let Some(state) = self.state() {
            state.disable_subscription(subscription_id, failed_events);
        }
    }

    fn fault(&self, facts: &crate::faults::WebhookFacts<'_>) -> Option<crate::faults::Fired> {
        self.state()?.faults().webhook(facts)
    }

    fn attempt_fault(&self, facts: &crate::faults::WebhookFacts<'_>) -> Option<crate::faults::Fired> {
        self.state()?.faults().webhook_attempt(facts)
    }

    fn attempted(&self, attempt: &Attempt, body: &axum::body::Bytes) {
        let Some(state) = self.state() else { return };
        let result = match (attempt.status, &attempt.error) {
            (Some(status), _) => status.to_string(),
            (None, Some(error)) => error.clone(),
            (None, None) => "?".to_owned(),
        };
        let level =
            if attempt.outcome == Outcome::Delivered && attempt.fault.is_none() { Level::Info } else { Level::Warn };
        let line = if !wants_line(level) {
            String::new()
        } else {
            match attempt.outcome {
                Outcome::Dropped => format!(
                    "webhook {} → {} dropped: {}",
                    attempt.event_type,
                    attempt.url,
                    attempt.error.as_deref().unwrap_or_default()
                ),
                Outcome::Cancelled => {
                    format!("webhook {} → {} retries cancelled: {result}", attempt.event_type, attempt.url)
                }
                Outcome::Disabled => format!(
                    "webhook {} → {} {result} (attempt {}/{}; the subscription turns inactive)",
                    attempt.event_type, attempt.url, attempt.attempt, attempt.of
                ),
                _ => format!(
                    "webhook {} → {} {result} (attempt {}/{})",
                    attempt.event_type, attempt.url, attempt.attempt, attempt.of
                ),
            }
        };
        let line = match &attempt.fault {
            Some(fault) if !line.is_empty() => format!("{line} [fault {fault}]"),
            _ => line,
        };
        let fields = webhook_fields(attempt, body);
        state.inner.journal.append(Draft { at: attempt.at, kind: Kind::Webhook, line, level, fields });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn minted_tokens_expire_on_the_clock() {
        let clock = Clock::virtual_at(1_000_000);
        let state = AppState::with_clock(World::default_world(), clock.clone(), StateOptions::default());
        let minted = state.mint_token("agent2@wxcc.example", vec!["cjp:user".into()], 60, None).expect("user");
        assert!(state.identify(&minted.access_token).is_ok());
        clock.advance(60_000).await.expect("virtual");
        assert!(matches!(state.identify(&minted.access_token), Err(AuthFailure::BadToken(_))));
        assert!(state.token_owner(&minted.access_token).is_some(), "an hour after expiry it is still known");
        clock.advance(tokens::EXPIRED_KEPT_MS).await.expect("virtual");
        assert!(state.identify(&world_token(&state)).is_ok(), "a lookup sweeps");
        assert_eq!(state.token_owner(&minted.access_token), None, "swept");
        assert_eq!(state.inner.tokens.minted_counts(), (0, 1));
    }

    fn world_token(state: &AppState) -> String {
        state.world().tokens[0].access_token.clone()
    }

    #[test]
    fn minted_tokens_are_bounded_and_a_full_store_says_so() {
        let options = StateOptions { max_minted_tokens: 2, ..StateOptions::default() };
        let state = AppState::with_clock(World::default_world(), Clock::virtual_at(0), options);
        for _ in 0..2 {
            state.mint_token("agent2@wxcc.example", vec![], 60, None).expect("room");
        }
        let full = state.mint_token("agent2@wxcc.example", vec![], 60, None);
        assert_eq!(full.err(), Some(MintError::Full(tokens::TokenLimit { limit: 2 })));
        assert!(state.identify(&world_token(&state)).is_ok(), "world tokens are not counted");
        assert_eq!(state.mint_token("nobody@example.com", vec![], 60, None).err(), Some(MintError::NoSuchUser));
    }

    #[test]
    fn reset_forgets_minted_tokens_but_keeps_world_tokens() {
        let state = AppState::new(World::default_world());
        let minted = state.mint_token("agent2@wxcc.example", vec![], 60, None).expect("user");
        state.reset();
        assert!(state.identify(&minted.access_token).is_err());
        let world_token = state.world().tokens[0].access_token.clone();
        assert!(state.identify(&world_token).is_ok());
    }

    #[test]
    fn a_messages_label_names_its_types() {
        assert_eq!(
            label_of(r#"{"type":"StationLogin","data":{"type":"AgentStationLoginSuccess"}}"#),
            "StationLogin/AgentStationLoginSuccess"
        );
        assert_eq!(label_of(r#"{"type":"Welcome","data":{"agentId":"a"}}"#), "Welcome");
        assert_eq!(label_of(r#"{"keepalive":"true"}"#), "keepalive");
    }
}
