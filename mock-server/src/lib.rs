//! wxcc-mock: a local, stateful stand-in for the Webex Contact Center cloud API.
//!
//! In your own tests, [`MockServer::start`] serves it in-process on a free port (see [`embed`]).
//!
//! # Layout
//! - [`clock`]: one clock for "now" and every timer (system, or virtual and advanced by hand).
//! - [`world`]: the organisations, users, roles and tokens the mock starts with.
//! - [`auth`]: the requirement table and the 400 → 401 → 403 checks, with diagnostics.
//! - [`engine`]: the domain, pure: the agent state machine, the subscription store, the typed
//!   domain events.
//! - [`outputs`]: where events go: the journal (the one sequenced record of everything), the
//!   notification websockets, the webhook dispatcher.
//! - [`state`]: the live state behind one cloneable handle; every transition is decided and
//!   published (numbered, fanned out) under one lock.
//! - [`routes`]: the endpoint table that builds the router, the checks and the OpenAPI document;
//!   [`endpoint`]: what an entry says.
//! - [`http`]: the envelope layer, the error type, what a handler gets, and the handlers.
//! - [`openapi`]: the OpenAPI 3.1 document from the table and the schemas.
//! - [`console`]: one log line per journal entry.
//! - [`leniency`]: what the mock accepts off-contract (as the real API does), recorded as violations.
//! - [`redact`]: secrets and tokens never leave.
//! - [`embed`]: the mock inside your own tests ([`MockServer`]).
//! - [`server`]: the accept loop (header-read timeout, connection cap).
//! - [`report`]: checks as a report (printed, summarised, JUnit).
//! - [`tools`]: `wxcc-mock receive` (a signature-checking webhook receiver) and `listen`.

pub mod access;
pub mod auth;
pub mod bundle;
pub mod clock;
pub mod console;
pub mod embed;
pub mod endpoint;
pub mod engine;
pub mod faults;
pub mod http;
pub mod ids;
pub mod leniency;
pub mod openapi;
pub mod outputs;
pub mod proxy;
pub mod rate;
pub mod redact;
pub mod report;
pub mod ring;
pub mod routes;
pub mod scenario;
pub mod server;
pub mod state;
pub mod tls;
pub mod tools;
pub mod world;

use std::future::Future;
use std::net::SocketAddr;

pub use clock::{Clock, ClockMode};
pub use embed::{MockServer, MockServerBuilder, TaskRequest};
pub use outputs::{delivery, journal, notifications};
pub use routes::{App, build_app, build_router};
pub use state::AppState;
pub use world::World;

/// What `wxcc-mock serve` runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// Interface to bind.
    pub host: String,
    /// Port to bind (0 picks a free one).
    pub port: u16,
    /// The world to load.
    pub world: World,
    /// Webhook retry policy.
    pub delivery: delivery::DeliveryConfig,
    /// Refuse off-contract requests even where the real API is lenient.
    pub strict: bool,
    /// System or virtual time.
    pub clock: ClockMode,
    /// Where a virtual clock starts (epoch ms; default: now).
    pub clock_start: Option<i64>,
    /// The journal's bound in bytes.
    pub journal_bytes: usize,
    /// Finished tasks kept (the oldest finished go first).
    pub task_history: usize,
    /// Who may use `/__admin`, where webhooks may go, the public URL.
    pub access: access::AccessConfig,
    /// Subscriptions per org (v1 and v2 together).
    pub max_subscriptions_per_org: usize,
    /// Minted tokens held at once.
    pub max_minted_tokens: usize,
    /// Notification websockets per user across client types.
    pub max_connections_per_user: usize,
    /// The listener's connection cap and header-read timeout.
    pub server: server::ServerLimits,
    /// Where state survives a restart.
    pub state_file: Option<std::path::PathBuf>,
    /// How long SIGTERM waits for pending deliveries.
    pub shutdown_grace: std::time::Duration,
    /// Requests per minute per client id; `None`: no limit.
    pub rate_limit: Option<rate::RateLimit>,
    /// The scenario to load once listening (`--scenario`; its world and clock are already in
    /// `world` and `clock`).
    pub scenario: Option<scenario::Scenario>,
}

/// Serves `state` on an already-bound listener until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_within(listener, state, server::ServerLimits::default(), shutdown).await
}

/// Like [`serve`], within `limits` (connection cap, header-read timeout).
pub async fn serve_within(
    listener: tokio::net::TcpListener,
    state: AppState,
    limits: server::ServerLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    state.bind_to(listener.local_addr()?);
    let counts = std::sync::Arc::new(server::ListenerCounts::default());
    let tls = match &state.options().access.tls {
        Some(identity) => Some(identity.acceptor().map_err(std::io::Error::other)?),
        None => None,
    };
    server::run(listener, routes::build_app(state), limits, counts, tls, shutdown).await
}

/// Binds `config.host:config.port`, returning the listener and the address it got.
pub async fn bind(config: &Config) -> std::io::Result<(tokio::net::TcpListener, SocketAddr)> {
    let listener = tokio::net::TcpListener::bind((config.host.as_str(), config.port)).await?;
    let addr = listener.local_addr()?;
    Ok((listener, addr))
}
