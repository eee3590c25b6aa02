//! Organisations are isolated: no token of one sees or touches another's subscriptions.

use serde_json::json;
use wxcc_contract_tests::TestApp;
use wxcc_schemas::SchemaId;

use crate::subscription_body;

#[tokio::test]
async fn another_organisations_subscription_is_invisible_and_untouchable() {
    let app = TestApp::new();
    let ours = app.world_token("admin-full");
    let theirs = app.world_token("globex-admin");
    let created =
        app.post("/v1/subscriptions").bearer(&ours).json(&subscription_body("ours")).send().await.expect(201, None);
    let path = format!("/v1/subscriptions/{}", created.body["data"]["id"].as_str().expect("id"));

    let list =
        app.get("/v1/subscriptions").bearer(&theirs).send().await.expect(200, Some(SchemaId::SubscriptionListResponse));
    assert_eq!(list.body["data"], json!([]));
    assert_eq!(list.body["meta"]["subscriptionCount"], 0);
    assert_eq!(list.body["meta"]["orgId"], app.org_of("admin@globex.example"));
    app.get(&path).bearer(&theirs).send().await.expect(404, None);
    app.patch(&path).bearer(&theirs).json(&json!({"status": "inactive"})).send().await.expect(404, None);
    app.delete(&path).bearer(&theirs).send().await.expect(404, None);

    let still = app.get(&path).bearer(&ours).send().await.expect(200, None);
    assert_eq!(still.body["data"]["status"], "active");
}

#[tokio::test]
async fn a_body_naming_another_organisation_is_403_and_creates_nothing() {
    let app = TestApp::new();
    let ours = app.world_token("admin-full");
    let mut body = subscription_body("cross-org");
    body["orgId"] = json!(app.org_of("admin@globex.example"));
    let reply = app.post("/v1/subscriptions").bearer(&ours).json(&body).send().await.expect(403, None);
    assert!(reply.diagnostic().contains("organisation"), "{}", reply.diagnostic());
    body["orgId"] = json!(app.org_of("admin@wxcc.example"));
    app.post("/v1/subscriptions").bearer(&ours).json(&body).send().await.expect(201, None);
    let list = app.get("/v1/subscriptions").bearer(&app.world_token("globex-admin")).send().await.expect(200, None);
    assert_eq!(list.body["meta"]["subscriptionCount"], 0);
}

#[tokio::test]
async fn agent_sessions_of_two_organisations_do_not_share_dial_numbers() {
    let app = TestApp::new();
    // Extension 2001 belongs to Globex; a Wxcc Example agent cannot use it.
    let team = crate::team_of(&app, "agent2@wxcc.example");
    let body = json!({"dialNumber": "2001", "teamId": team, "roles": ["agent"], "deviceType": "EXTENSION"});
    app.post("/v1/agents/login").bearer(&app.world_token("agent2")).json(&body).send().await.expect(202, None);
    let state = app.admin_state().await;
    assert_eq!(state["agentOutcomes"][0]["reason"], "INVALID_DIAL_NUMBER");
}
