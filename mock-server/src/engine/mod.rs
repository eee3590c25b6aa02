//! The domain: pure state machines and stores, free of HTTP and sockets, returning typed
//! outcomes and events.
//!
//! - [`agents`]: the agent state machine, a pure function, and its failure reasons.
//! - [`subscriptions`]: the webhook subscription store (v1 and v2 namespaces).
//! - [`tasks`]: contacts from arrival to wrap-up, and how they are routed.
//! - [`events`]: the typed domain [`events::Event`], and how webhooks name and carry it.

pub mod agents;
pub mod events;
pub mod subscriptions;
pub mod tasks;
