//! wxcc-mock: a local, stateful stand-in for the Webex Contact Center cloud API.
//!
//! # Layout
//! - [`world`]: the organisations, users, roles and tokens the mock starts with.
//! - [`auth`]: the requirement table and the 400 → 401 → 403 checks, with diagnostics.
//! - [`agents`]: the agent state machine, a pure function.
//! - [`subscriptions`]: the subscription store (v1 and v2) and destination rules.
//! - [`events`]: which webhook event types an agent transition becomes, per subscription.
//! - [`delivery`]: signed webhook deliveries, per-subscription queues, retries.
//! - [`notifications`]: the agent websocket: registrations, the hub, the messages.
//! - [`state`]: the live state behind one cloneable handle.
//! - [`leniency`]: what the mock accepts off-contract (as the real API does), recorded as violations.
//! - [`http`]: `build_router`, the error envelope, the extractor; [`admin`]: `/__admin`.
//! - [`openapi`]: the endpoint table and the OpenAPI 3.1 document built from it and the schemas.
//! - [`tools`]: `wxcc-mock receive` (a signature-checking webhook receiver) and `listen`.

pub mod admin;
pub mod agents;
pub mod auth;
pub mod delivery;
pub mod events;
pub mod http;
pub mod leniency;
pub mod notifications;
pub mod openapi;
pub mod state;
pub mod subscriptions;
pub mod tools;
pub mod world;

use std::future::Future;
use std::net::SocketAddr;

pub use http::build_router;
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
}

/// Serves `state` on an already-bound listener until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, build_router(state)).with_graceful_shutdown(shutdown).await
}

/// Binds `config.host:config.port`, returning the listener and the address it got.
pub async fn bind(config: &Config) -> std::io::Result<(tokio::net::TcpListener, SocketAddr)> {
    let listener = tokio::net::TcpListener::bind((config.host.as_str(), config.port)).await?;
    let addr = listener.local_addr()?;
    Ok((listener, addr))
}
