//! Where what happens goes: the [`journal`] (the one sequenced record), the notification
//! websockets ([`notifications`]) and the webhook deliveries ([`delivery`]).

pub mod delivery;
pub mod journal;
pub mod notifications;
pub mod routing;
