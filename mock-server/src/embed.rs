//! The mock inside your own tests: [`MockServer::start`] serves the default world on
//! `127.0.0.1:0` in the current tokio runtime, in one line, and stops when dropped.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let mock = wxcc_mock::MockServer::start().await;
//! let admin = mock.token("admin-full");
//! let reply = reqwest::Client::new()
//!     .get(format!("{}/v1/subscriptions", mock.url()))
//!     .bearer_auth(&admin)
//!     .send()
//!     .await
//!     .expect("the mock answers");
//! assert_eq!(reply.status(), 200);
//! # }
//! ```
//!
//! A builder sets the world, a virtual clock, strictness, the webhook policy or any other
//! [`StateOptions`]; typed helpers drive the mock's own controls (mint a token, inject a task,
//! advance the clock, read the journal) without going through HTTP:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use wxcc_mock::MockServer;
//!
//! let mock = MockServer::builder().virtual_clock(1_800_000_000_000).start().await.expect("bound");
//! let minted = mock.mint_token("agent2@wxcc.example", &["cjp:user"], 60).expect("a world user");
//! let call = mock.inject_task(mock.task("telephony").queue("Support Voice")).expect("routed");
//! assert_eq!(call.state, "queued", "nobody is Available yet");
//! mock.advance(61_000).await.expect("a virtual clock");
//! let client = reqwest::Client::new();
//! let expired = client
//!     .post(format!("{}/v1/notification/subscribe", mock.url()))
//!     .bearer_auth(&minted.access_token)
//!     .json(&serde_json::json!({}))
//!     .send()
//!     .await
//!     .expect("an answer");
//! assert_eq!(expired.status(), 401, "the minted token expired on the mock's clock");
//! let journal = mock.journal(None, Some(wxcc_mock::journal::Kind::Http), 10);
//! assert!(journal.iter().any(|entry| entry["status"] == 401));
//! # }
//! ```

use std::net::SocketAddr;

use serde_json::{Map, Value};

use crate::clock::{Clock, ClockError};
use crate::delivery::DeliveryConfig;
use crate::journal::Kind;
use crate::state::tasks::{Injection, TaskControlError, TaskView};
use crate::state::{AppState, MintError, MintedToken, StateOptions};
use crate::world::{Channel, World};

/// A running mock (stopped when dropped).
#[derive(Debug)]
pub struct MockServer {
    state: AppState,
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

/// How to start a [`MockServer`].
#[derive(Debug, Default)]
pub struct MockServerBuilder {
    world: Option<World>,
    virtual_start: Option<i64>,
    options: StateOptions,
}

impl MockServerBuilder {
    /// Another world (default: the embedded one, `fixtures/world.json`).
    pub fn world(mut self, world: World) -> Self {
        self.world = Some(world);
        self
    }

    /// A virtual clock starting at `start_ms` (epoch ms): time moves only with
    /// [`MockServer::advance`] (default: the system clock).
    pub fn virtual_clock(mut self, start_ms: i64) -> Self {
        self.virtual_start = Some(start_ms);
        self
    }

    /// Refuse every request that breaks its schema, even where the real API is lenient.
    pub fn strict(mut self, strict: bool) -> Self {
        self.options.strict = strict;
        self
    }

    /// The webhook retry policy.
    pub fn delivery(mut self, delivery: DeliveryConfig) -> Self {
        self.options.delivery = delivery;
        self
    }

    /// Any other option (bounds, access, transport, ...).
    pub fn options(mut self, change: impl FnOnce(&mut StateOptions)) -> Self {
        change(&mut self.options);
        self
    }

    /// Binds `127.0.0.1:0` and serves in the current tokio runtime.
    pub async fn start(self) -> std::io::Result<MockServer> {
        let clock = match self.virtual_start {
            Some(start) => Clock::virtual_at(start),
            None => Clock::system(),
        };
        let state = AppState::with_clock(self.world.unwrap_or_else(World::default_world), clock, self.options);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = state.clone();
        tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.await;
            };
            if let Err(e) = crate::serve(listener, serving, shutdown).await {
                tracing::error!("the embedded mock stopped: {e}");
            }
        });
        state.bind_to(addr);
        Ok(MockServer { state, addr, stop: Some(stop) })
    }
}

/// What [`MockServer::inject_task`] injects: a channel, and a queue or an agent to route to.
#[derive(Debug, Clone)]
pub struct TaskRequest {
    channel: Channel,
    queue: Option<String>,
    agent_id: Option<String>,
    origin: Option<String>,
    cad: Map<String, Value>,
    rona_timeout_seconds: Option<u32>,
}

impl TaskRequest {
    /// Through the queue with this name or id.
    pub fn queue(mut self, name_or_id: &str) -> Self {
        self.queue = Some(name_or_id.to_owned());
        self
    }

    /// Offered to this agent only (their user id).
    pub fn agent(mut self, agent_id: &str) -> Self {
        self.agent_id = Some(agent_id.to_owned());
        self
    }

    /// The customer's number or address.
    pub fn origin(mut self, origin: &str) -> Self {
        self.origin = Some(origin.to_owned());
        self
    }

    /// A call-associated variable.
    pub fn cad(mut self, name: &str, value: Value) -> Self {
        self.cad.insert(name.to_owned(), value);
        self
    }

    /// A RONA timeout for this task only.
    pub fn rona_timeout_seconds(mut self, seconds: u32) -> Self {
        self.rona_timeout_seconds = Some(seconds);
        self
    }
}

impl MockServer {
    /// The default world on `127.0.0.1:0` with the system clock.
    ///
    /// # Panics
    /// If no loopback port can be bound.
    pub async fn start() -> MockServer {
        MockServer::builder().start().await.expect("binding 127.0.0.1:0 for the mock")
    }

    /// A builder for other worlds, clocks and options.
    pub fn builder() -> MockServerBuilder {
        MockServerBuilder::default()
    }

    /// `http://127.0.0.1:PORT` (`https://` with TLS in the options).
    pub fn url(&self) -> String {
        self.state.http_base()
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The state behind it (everything the admin API can do, and more).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The world's ready-made token whose name (the part before `_<cluster>_<org>`) is `name`:
    /// `admin-full`, `agent2`, `forum-case-agent1`, ... (see [`MockServer::token_names`]).
    ///
    /// # Panics
    /// If the world has no such token (the message lists the names it has).
    pub fn token(&self, name: &str) -> String {
        match self.state.world().token_named(name) {
            Some(token) => token.access_token.clone(),
            None => panic!("the world has no token {name:?}; it has {:?}", self.token_names()),
        }
    }

    /// The names of the world's ready-made tokens.
    pub fn token_names(&self) -> Vec<String> {
        self.state.world().tokens.iter().map(|t| t.name().to_owned()).collect()
    }

    /// Mints a token for a world user (as `POST /__admin/tokens`).
    pub fn mint_token(&self, email: &str, scopes: &[&str], ttl_seconds: i64) -> Result<MintedToken, MintError> {
        self.state.mint_token(email, scopes.iter().map(|s| (*s).to_owned()).collect(), ttl_seconds, None)
    }

    /// A task of `channel` (`telephony`, `chat`, `email`, `social`) to inject.
    ///
    /// # Panics
    /// If `channel` is none of those.
    pub fn task(&self, channel: &str) -> TaskRequest {
        let channel = Channel::parse(channel).unwrap_or_else(|| panic!("no channel {channel:?}"));
        TaskRequest { channel, queue: None, agent_id: None, origin: None, cad: Map::new(), rona_timeout_seconds: None }
    }

    /// A contact arrives in the first organisation (as `POST /__admin/tasks`): offered to an
    /// agent who can take it, or queued.
    pub fn inject_task(&self, request: TaskRequest) -> Result<TaskView, TaskControlError> {
        let org = &self.state.world().orgs[0];
        let queue_id = request
            .queue
            .map(|q| org.queues.iter().find(|x| x.name.eq_ignore_ascii_case(&q)).map_or(q, |x| x.id.clone()));
        self.state.inject_task(Injection {
            org_idx: 0,
            channel: request.channel,
            queue_id,
            agent_id: request.agent_id,
            origin: request.origin,
            destination: None,
            customer_name: None,
            cad: request.cad,
            rona_timeout_seconds: request.rona_timeout_seconds,
            courtesy_callback: false,
        })
    }

    /// Moves a virtual clock by `ms`, firing everything due before it returns; the new time.
    pub async fn advance(&self, ms: i64) -> Result<i64, ClockError> {
        self.state.clock().advance(ms).await
    }

    /// Journal entries as JSON (as `GET /__admin/journal`): after `since`, of `kind`, at most
    /// `limit`.
    pub fn journal(&self, since: Option<u64>, kind: Option<Kind>, limit: usize) -> Vec<Value> {
        let page = self.state.journal().query(since, kind, limit);
        page.entries.iter().filter_map(|e| serde_json::from_str(&e.json()).ok()).collect()
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
