//! The case that started the project, over a real socket: an agent's integration token with
//! every config scope gets 202 on the agent APIs and 403 on POST /v1/subscriptions.

use serde_json::json;
use wxcc_contract_tests::TestApp;
use wxcc_schemas::SchemaId;

#[tokio::test]
async fn agent_calls_are_accepted_but_registering_a_webhook_is_forbidden_for_lack_of_an_admin_role() {
    let app = TestApp::spawn().await;
    let token = app.world_token("forum-case-agent1");
    let me = "agent1@wxcc.example";

    crate::log_in(&app, &token, me, "1001").await;
    app.put("/v1/agents/session/state")
        .bearer(&token)
        .json(&json!({"state": "Available", "auxCodeId": "0"}))
        .send()
        .await
        .expect(202, None);
    app.put("/v1/agents/logout")
        .bearer(&token)
        .json(&json!({"logoutReason": "Logout initiated by user"}))
        .send()
        .await
        .expect(202, None);

    // The forum's exact body: a 5-character secret and a made-up event name would both be 400s,
    // but authorization comes first, so the answer is 403.
    let forum_body = json!({
        "name": "aaaa", "eventTypes": ["agent:stateChange", "task:created"],
        "destinationUrl": "https://example.ngrok-free.app/api/webhook", "secret": "12345"
    });
    let reply = app
        .post("/v1/subscriptions")
        .bearer(&token)
        .header("TrackingId", "NOTIFS_forum-case-1")
        .json(&forum_body)
        .send()
        .await
        .expect(403, Some(SchemaId::ErrorResult));
    assert_eq!(reply.body["error"]["key"], 403);
    assert_eq!(reply.tracking_id(), "NOTIFS_forum-case-1");
    assert_eq!(reply.body["trackingId"], "NOTIFS_forum-case-1");
    let why = reply.diagnostic();
    assert!(why.contains("agent1@wxcc.example"), "{why}");
    assert!(why.contains("administrator role"), "{why}");
    assert!(why.contains("scopes are fine"), "{why}");
    assert!(why.contains("cjp:config_write"), "{why}");

    // The three agent calls were all decided: login and state change succeeded, then logout.
    let state = app.admin_state().await;
    let kinds: Vec<&str> =
        state["agentOutcomes"].as_array().expect("outcomes").iter().filter_map(|o| o["type"].as_str()).collect();
    assert_eq!(kinds, vec!["AgentLogoutSuccess", "AgentStateChangeSuccess", "AgentStationLoginSuccess"]);

    // The same request from the administrator is judged on its body: now it is 400, naming both faults.
    let admin = app.world_token("admin-full");
    let reply = app.post("/v1/subscriptions").bearer(&admin).json(&forum_body).send().await.expect(400, None);
    let messages = reply.messages();
    assert!(messages.iter().any(|m| m.starts_with("/eventTypes/0:")), "{messages:?}");
    assert!(messages.contains(&"/secret: must be at least 32 characters".to_owned()), "{messages:?}");
}
