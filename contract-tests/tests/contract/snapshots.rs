//! Named snapshots of every success and error body (ids and times redacted). Review any change
//! to a `.snap` file as a change to the contract.

use insta::assert_json_snapshot;
use serde_json::{Value, json};
use wxcc_contract_tests::TestApp;

use crate::{login_body, subscription_body};

/// Snapshot `body`, redacting tracking ids, subscription ids, org ids and times.
macro_rules! snap {
    ($name:expr, $body:expr) => {
        assert_json_snapshot!($name, $body, {
            ".trackingId" => "[trackingId]",
            ".meta.orgId" => "[orgId]",
            ".data.id" => "[id]",
            ".data.createdTime" => "[time]",
            ".data.lastUpdatedTime" => "[time]",
            ".data[].id" => "[id]",
            ".data[].createdTime" => "[time]",
            ".data[].lastUpdatedTime" => "[time]",
            ".accessToken" => "[token]",
            ".orgId" => "[orgId]",
            ".userId" => "[userId]",
            ".expiresAt" => "[time]",
        })
    };
}

#[tokio::test]
async fn subscription_bodies() {
    let app = TestApp::new();
    let admin = app.world_token("admin-full");
    let created = app
        .post("/v1/subscriptions")
        .bearer(&admin)
        .json(&subscription_body("CRM connector"))
        .send()
        .await
        .expect(201, None);
    snap!("subscription_create_201", created.body);
    let id = created.body["data"]["id"].as_str().expect("id").to_owned();
    let path = format!("/v1/subscriptions/{id}");
    snap!("subscription_get_200", app.get(&path).bearer(&admin).send().await.expect(200, None).body);
    snap!("subscription_list_200", app.get("/v1/subscriptions").bearer(&admin).send().await.expect(200, None).body);
    let patched = app.patch(&path).bearer(&admin).json(&json!({"status": "inactive"})).send().await.expect(200, None);
    snap!("subscription_patch_200", patched.body);
    snap!("event_types_200", app.get("/v1/event-types").bearer(&admin).send().await.expect(200, None).body);
    let agent = app.world_token("forum-case-agent1");
    let forbidden =
        app.post("/v1/subscriptions").bearer(&agent).json(&subscription_body("x")).send().await.expect(403, None);
    snap!("subscription_create_403", forbidden.body);
    let mut bad = subscription_body("x");
    bad["secret"] = json!("12345");
    bad["eventTypes"] = json!(["agent:stateChange"]);
    let invalid = app.post("/v1/subscriptions").bearer(&admin).json(&bad).send().await.expect(400, None);
    snap!("subscription_create_400", invalid.body);
    let missing =
        app.get("/v1/subscriptions/00000000-0000-4000-8000-000000000000").bearer(&admin).send().await.expect(404, None);
    snap!("subscription_get_404", missing.body);
    let unauthorised = app.get("/v1/subscriptions").bearer("nope").send().await.expect(401, None);
    snap!("subscription_list_401", unauthorised.body);
    let no_header = app.get("/v1/subscriptions").send().await.expect(400, None);
    snap!("subscription_list_400_no_authorization", no_header.body);
}

#[tokio::test]
async fn agent_bodies() {
    let app = TestApp::new();
    let token = app.world_token("agent2");
    let bad = app
        .post("/v1/agents/login")
        .bearer(&token)
        .json(&json!({"roles": ["agent"], "teamId": "t"}))
        .send()
        .await
        .expect(400, None);
    snap!("agent_login_400", bad.body);
    let forbidden = app
        .post("/v1/agents/login")
        .bearer(&app.token("agent2@wxcc.example", &[]))
        .json(&login_body(&app, "agent2@wxcc.example", "1002"))
        .send()
        .await
        .expect(403, None);
    snap!("agent_login_403", forbidden.body);
    let wrong = app.delete("/v1/agents/logout").send().await.expect(405, None);
    snap!("agent_logout_405", wrong.body);
}

#[tokio::test]
async fn other_bodies() {
    let app = TestApp::new();
    snap!("unknown_route_404", app.get("/v1/dialer/campaign").send().await.expect(404, None).body);
    let minted = app
        .post("/__admin/tokens")
        .json(&json!({"email": "agent1@wxcc.example", "scopes": ["cjp:user"]}))
        .send()
        .await
        .expect(201, None);
    snap!("admin_token_201", minted.body);
    let health: Value = app.get("/__admin/health").send().await.expect(200, None).body;
    snap!("admin_health_200", health);
}
