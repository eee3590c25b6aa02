//! The contract suite: one binary, modules mirroring the route tree.

mod admin;
mod agents;
mod auth;
mod clock;
mod config;
mod cors;
mod errors;
mod events_model;
mod exchanges;
mod faults;
mod forum_case;
mod garbage;
mod journal;
mod model;
mod notifications;
mod openapi;
mod orgs;
mod rate_limit;
mod readme;
mod scenarios;
mod secrets;
mod snapshots;
mod subscriptions;
mod subscriptions_v2;
mod tasks;
mod tasks_model;
mod verify;
mod violations;
mod webhooks;

use serde_json::{Value, json};
use wxcc_contract_tests::TestApp;

/// The first team of `email`.
pub fn team_of(app: &TestApp, email: &str) -> String {
    let (_, user) = app.world().user_by_email(email).expect("user");
    user.team_ids[0].clone()
}

/// A login body that succeeds for `email` on extension `dial`.
pub fn login_body(app: &TestApp, email: &str, dial: &str) -> Value {
    json!({
        "dialNumber": dial, "teamId": team_of(app, email), "roles": ["agent"],
        "deviceType": "EXTENSION", "isExtension": true,
    })
}

/// Logs `email` in on extension `dial` with `token`; the HTTP answer must be 202.
pub async fn log_in(app: &TestApp, token: &str, email: &str, dial: &str) {
    app.post("/v1/agents/login").bearer(token).json(&login_body(app, email, dial)).send().await.expect(202, None);
}

/// A subscription body that the mock accepts.
pub fn subscription_body(name: &str) -> Value {
    json!({
        "name": name,
        "description": "agent presence sync",
        "eventTypes": ["agent:login", "agent:logout", "agent:state_change"],
        "destinationUrl": "https://hooks.example.com/wxcc",
        "secret": "0123456789abcdef0123456789abcdef",
    })
}

/// Runs an async block on a fresh current-thread runtime (for proptest bodies).
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime").block_on(future)
}
