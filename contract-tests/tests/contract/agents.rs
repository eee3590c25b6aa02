//! `/v1/agents/*`: 202 with an empty body, and the state machine behind it (visible in
//! `/__admin/state` until the websocket delivers outcomes).

use serde_json::{Value, json};
use wxcc_contract_tests::TestApp;

use crate::{login_body, team_of};

/// The newest outcome recorded for `email`.
async fn last_outcome(app: &TestApp, email: &str) -> Value {
    let state = app.admin_state().await;
    state["agentOutcomes"]
        .as_array()
        .and_then(|all| all.iter().find(|o| o["email"] == email).cloned())
        .unwrap_or_else(|| panic!("no outcome for {email}"))
}

async fn session(app: &TestApp, email: &str) -> Option<Value> {
    let state = app.admin_state().await;
    state["agentSessions"].as_array().and_then(|all| all.iter().find(|s| s["email"] == email).cloned())
}

fn idle_codes(app: &TestApp) -> Vec<(String, bool)> {
    app.world().orgs[0].aux_codes.iter().map(|a| (a.id.clone(), a.is_default)).collect()
}

#[tokio::test]
async fn login_answers_202_with_an_empty_body_and_leaves_the_agent_idle_with_the_default_code() {
    let app = TestApp::new();
    let token = app.world_token("agent2");
    let reply =
        app.post("/v1/agents/login").bearer(&token).json(&login_body(&app, "agent2@wxcc.example", "1002")).send().await;
    let reply = reply.expect(202, None);
    assert!(reply.raw.is_empty());
    let outcome = last_outcome(&app, "agent2@wxcc.example").await;
    assert_eq!(outcome["messageType"], "StationLogin");
    assert_eq!(outcome["type"], "AgentStationLoginSuccess");
    assert_eq!(outcome["trackingId"], reply.tracking_id());
    let s = session(&app, "agent2@wxcc.example").await.expect("logged in");
    assert_eq!(s["subStatus"], "Idle");
    let default = idle_codes(&app).into_iter().find(|(_, d)| *d).expect("default code").0;
    assert_eq!(s["auxCodeId"], default);
    assert_eq!(s["dialNumber"], "1002");
    assert_eq!(s["teamId"], team_of(&app, "agent2@wxcc.example"));
}

#[tokio::test]
async fn an_agent_goes_available_then_idle_with_a_code_then_logs_out() {
    let app = TestApp::new();
    let token = app.world_token("agent2");
    let me = "agent2@wxcc.example";
    crate::log_in(&app, &token, me, "1002").await;
    app.put("/v1/agents/session/state")
        .bearer(&token)
        .json(&json!({"state": "Available", "auxCodeId": "0"}))
        .send()
        .await
        .expect(202, None);
    assert_eq!(session(&app, me).await.expect("session")["subStatus"], "Available");
    let lunch = idle_codes(&app)[2].0.clone();
    let body = json!({"state": "Idle", "auxCodeId": lunch, "lastStateChangeReason": "Lunch"});
    app.put("/v1/agents/session/state").bearer(&token).json(&body).send().await.expect(202, None);
    let s = session(&app, me).await.expect("session");
    assert_eq!((s["subStatus"].as_str(), s["auxCodeId"].as_str()), (Some("Idle"), Some(lunch.as_str())));
    assert_eq!(s["lastStateChangeReason"], "Lunch");
    app.put("/v1/agents/logout").bearer(&token).json(&json!({"logoutReason": "done"})).send().await.expect(202, None);
    assert!(session(&app, me).await.is_none());
    assert_eq!(last_outcome(&app, me).await["type"], "AgentLogoutSuccess");
    // One event per transition (login, available, idle, logout), in the journal, in order.
    let journal = app.get("/__admin/journal?kind=event").send().await.expect(200, None).body;
    let events: Vec<&str> =
        journal["entries"].as_array().expect("entries").iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(events, vec!["agent:login", "agent:state_change", "agent:state_change", "agent:logout"]);
}

#[tokio::test]
async fn logout_is_accepted_with_post_as_cisco_clients_send_it() {
    let app = TestApp::new();
    let token = app.world_token("agent2");
    let me = "agent2@wxcc.example";
    crate::log_in(&app, &token, me, "1002").await;
    app.post("/v1/agents/logout")
        .bearer(&token)
        .json(&json!({"logoutReason": "User requested logout"}))
        .send()
        .await
        .expect(202, None);
    assert!(session(&app, me).await.is_none());
}

#[tokio::test]
async fn a_second_login_is_accepted_over_http_but_fails_in_the_outcome() {
    let app = TestApp::new();
    let token = app.world_token("agent2");
    let me = "agent2@wxcc.example";
    crate::log_in(&app, &token, me, "1002").await;
    crate::log_in(&app, &token, me, "1003").await;
    let outcome = last_outcome(&app, me).await;
    assert_eq!(outcome["type"], "AgentStationLoginFailed");
    assert_eq!(outcome["reason"], "AGENT_ALREADY_LOGGED_IN");
    assert_eq!(session(&app, me).await.expect("still logged in")["dialNumber"], "1002");
}

#[tokio::test]
async fn a_dial_number_in_use_by_another_agent_is_a_duplicate_location() {
    let app = TestApp::new();
    let first = app.world_token("agent2");
    let second = app.world_token("forum-case-agent1");
    crate::log_in(&app, &first, "agent2@wxcc.example", "1004").await;
    crate::log_in(&app, &second, "agent1@wxcc.example", "1004").await;
    let outcome = last_outcome(&app, "agent1@wxcc.example").await;
    assert_eq!(outcome["reason"], "DUPLICATE_LOCATION");
    assert!(outcome["detail"].as_str().unwrap_or_default().contains("agent2@wxcc.example"));
    assert!(session(&app, "agent1@wxcc.example").await.is_none());
}

#[tokio::test]
async fn failures_are_recorded_with_their_reasons() {
    let app = TestApp::new();
    let token = app.world_token("agent2");
    let me = "agent2@wxcc.example";
    let cases: Vec<(&str, &str, Value, &str, &str)> = vec![
        (
            "PUT",
            "/v1/agents/session/state",
            json!({"state": "Available", "auxCodeId": "0"}),
            "AgentStateChangeFailed",
            "AGENT_NOT_LOGGED_IN",
        ),
        ("PUT", "/v1/agents/logout", json!({"logoutReason": "x"}), "AgentLogoutFailed", "AGENT_NOT_LOGGED_IN"),
        ("POST", "/v1/agents/reload", json!({}), "AgentReloginFailed", "AGENT_NOT_FOUND"),
        (
            "POST",
            "/v1/agents/login",
            json!({"dialNumber": "1002", "teamId": "no-such-team", "roles": ["agent"], "deviceType": "EXTENSION"}),
            "AgentStationLoginFailed",
            "INVALID_TEAM",
        ),
        (
            "POST",
            "/v1/agents/login",
            json!({"dialNumber": "9999", "teamId": team_of(&app, me), "roles": ["agent"], "deviceType": "EXTENSION"}),
            "AgentStationLoginFailed",
            "INVALID_DIAL_NUMBER",
        ),
        (
            "POST",
            "/v1/agents/login",
            json!({"dialNumber": "1002", "teamId": team_of(&app, "agent1@wxcc.example"), "roles": ["agent"], "deviceType": "EXTENSION"}),
            "AgentStationLoginFailed",
            "INVALID_TEAM",
        ),
        (
            "POST",
            "/v1/agents/login",
            json!({"dialNumber": "1002", "roles": ["supervisor"]}),
            "AgentStationLoginFailed",
            "INVALID_ROLE",
        ),
    ];
    for (method, path, body, kind, reason) in cases {
        app.request(method, path).bearer(&token).json(&body).send().await.expect(202, None);
        let outcome = last_outcome(&app, me).await;
        assert_eq!(
            (outcome["type"].as_str(), outcome["reason"].as_str()),
            (Some(kind), Some(reason)),
            "{method} {path} {body}"
        );
        assert!(session(&app, me).await.is_none(), "{method} {path} {body}");
    }
    // Logged in, an unknown idle code (or Available with a code) fails and changes nothing.
    crate::log_in(&app, &token, me, "1002").await;
    let before = session(&app, me).await;
    for body in
        [json!({"state": "Idle", "auxCodeId": "no-such-code"}), json!({"state": "Available", "auxCodeId": "42"})]
    {
        app.put("/v1/agents/session/state").bearer(&token).json(&body).send().await.expect(202, None);
        assert_eq!(last_outcome(&app, me).await["reason"], "INVALID_IDLE_CODE");
        assert_eq!(session(&app, me).await, before);
    }
}

#[tokio::test]
async fn reload_of_a_logged_in_agent_succeeds() {
    let app = TestApp::new();
    let token = app.world_token("agent2");
    let me = "agent2@wxcc.example";
    crate::log_in(&app, &token, me, "1002").await;
    app.post("/v1/agents/reload").bearer(&token).send().await.expect(202, None);
    assert_eq!(last_outcome(&app, me).await["type"], "AgentReloginSuccess");
}

#[tokio::test]
async fn the_api_is_lenient_where_the_real_one_is() {
    let app = TestApp::new();
    let token = app.world_token("agent2");
    let me = "agent2@wxcc.example";
    // Cisco's samples: capitalised role, isExtension as a string, extra SDK fields.
    let body = json!({
        "dialNumber": "1002", "teamId": team_of(&app, me), "isExtension": "true", "roles": ["Agent"],
        "teamName": "", "siteId": "", "usesOtherDN": false, "auxCodeId": ""
    });
    app.post("/v1/agents/login").bearer(&token).json(&body).send().await.expect(202, None);
    let s = session(&app, me).await.expect("logged in");
    assert_eq!(s["deviceType"], "EXTENSION");
    assert_eq!(s["roles"], json!(["agent"]));
}

#[tokio::test]
async fn a_schema_violation_is_400_naming_the_pointer_and_nothing_is_decided() {
    let app = TestApp::new();
    let token = app.world_token("agent2");
    let cases = [
        ("POST", "/v1/agents/login", json!({"teamId": "t", "roles": ["agent"]}), "/dialNumber: is required"),
        ("POST", "/v1/agents/login", json!({"dialNumber": "1002", "roles": ["agent"]}), "/teamId: is required"),
        (
            "POST",
            "/v1/agents/login",
            json!({"dialNumber": 1002, "teamId": "t", "roles": ["agent"]}),
            "/dialNumber: must be of type string",
        ),
        (
            "PUT",
            "/v1/agents/session/state",
            json!({"state": "Busy", "auxCodeId": "0"}),
            "/state: must be one of \"Available\", \"Idle\"",
        ),
        ("PUT", "/v1/agents/session/state", json!({"state": "Idle"}), "/auxCodeId: is required"),
        ("PUT", "/v1/agents/logout", json!({}), "/logoutReason: is required"),
        (
            "POST",
            "/v1/agents/logout",
            json!({"logoutReason": "x".repeat(129)}),
            "/logoutReason: must be at most 128 characters",
        ),
    ];
    for (method, path, body, message) in cases {
        let reply = app.request(method, path).bearer(&token).json(&body).send().await.expect(400, None);
        assert_eq!(reply.body["errorType"], "Bad Request");
        assert!(reply.messages().contains(&message.to_owned()), "{method} {path}: {:?}", reply.messages());
    }
    assert_eq!(app.admin_state().await["agentOutcomes"], json!([]));
}

#[tokio::test]
async fn a_supervisor_changes_another_agents_state_but_an_agent_may_not() {
    let app = TestApp::new();
    let agent = app.world_token("agent2");
    let me = "agent2@wxcc.example";
    crate::log_in(&app, &agent, me, "1002").await;
    let target = app.user_id(me);
    let body = json!({"state": "Available", "auxCodeId": "0", "agentId": target});
    app.put("/v1/agents/session/state")
        .bearer(&app.world_token("supervisor"))
        .json(&body)
        .send()
        .await
        .expect(202, None);
    assert_eq!(session(&app, me).await.expect("session")["subStatus"], "Available");
    let other = app.world_token("forum-case-agent1");
    let reply = app.put("/v1/agents/session/state").bearer(&other).json(&body).send().await.expect(403, None);
    assert!(reply.diagnostic().contains("only a supervisor or an administrator"), "{}", reply.diagnostic());
    let unknown = json!({"state": "Available", "auxCodeId": "0", "agentId": "00000000-0000-4000-8000-000000000000"});
    // Like every agent call, an unknown target is answered 202 and fails asynchronously.
    app.put("/v1/agents/session/state")
        .bearer(&app.world_token("supervisor"))
        .json(&unknown)
        .send()
        .await
        .expect(202, None);
    let state = app.admin_state().await;
    let outcome = &state["agentOutcomes"][0];
    assert_eq!(
        (outcome["type"].as_str(), outcome["reason"].as_str()),
        (Some("AgentStateChangeFailed"), Some("AGENT_NOT_FOUND"))
    );
    assert_eq!(outcome["agentId"], "00000000-0000-4000-8000-000000000000");
}
