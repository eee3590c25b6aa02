//! Faults: rules at `/__admin/faults` and the `X-Wxcc-Mock-Fault` header make WxCC requests fail
//! the way the gateway in front of the real API does, marked as the mock's doing in the answer,
//! the journal and the console.

use serde_json::{Value, json};
use wxcc_contract_tests::TestApp;

use crate::{log_in, login_body, subscription_body};

async fn add(app: &TestApp, rule: Value) -> Value {
    app.post("/__admin/faults").json(&rule).send().await.expect(201, None).body
}

async fn http_entries(app: &TestApp) -> Vec<Value> {
    let journal = app.get("/__admin/journal?kind=http").send().await.expect(200, None);
    journal.body["entries"].as_array().expect("entries").clone()
}

#[tokio::test]
async fn a_rule_answers_its_status_in_the_route_envelope_without_running_the_request_then_is_spent() {
    let app = TestApp::new();
    let admin = app.world_token("admin-full");
    let rule = add(
        &app,
        json!({"name": "gateway", "match": {"method": "POST", "path": "/v1/subscriptions"}, "action": {"kind": "status", "status": 503}, "times": 1}),
    )
    .await;
    assert_eq!((rule["id"].as_str(), rule["remaining"].as_u64()), (Some("fault-1"), Some(1)));

    // Another route is untouched; the matching one gets 503 in the notifs envelope (the
    // harness checks it against ErrorResult and the TrackingID).
    app.get("/v1/subscriptions").bearer(&admin).send().await.expect(200, None);
    let failed = app
        .post("/v1/subscriptions")
        .bearer(&admin)
        .json(&subscription_body("crm-sync"))
        .send()
        .await
        .expect(503, None);
    assert_eq!(failed.body["error"]["key"], 503);
    assert_eq!(failed.headers["x-wxcc-mock-fault"], "fault-1 (gateway): status 503");
    let list = app.get("/v1/subscriptions").bearer(&admin).send().await.expect(200, None);
    assert_eq!(list.body["meta"]["subscriptionCount"], 0, "the request never reached the service");

    // Spent: the next one goes through, and the rule says how often it fired.
    app.post("/v1/subscriptions").bearer(&admin).json(&subscription_body("crm-sync")).send().await.expect(201, None);
    let rules = app.get("/__admin/faults").send().await.expect(200, None);
    assert_eq!(rules.body["faults"][0]["fired"], 1);
    assert_eq!(rules.body["faults"][0]["remaining"], 0);

    // The journal marks the faulted exchange, and only it.
    let entries = http_entries(&app).await;
    let marked: Vec<&Value> = entries.iter().filter(|e| e.get("fault").is_some()).collect();
    assert_eq!(marked.len(), 1);
    assert_eq!(marked[0]["status"], 503);
    assert_eq!(marked[0]["fault"], "fault-1 (gateway): status 503");
}

#[tokio::test]
async fn a_429_or_503_with_retry_after_has_no_body_and_a_4xx_explains_itself_as_injected() {
    let app = TestApp::new();
    let admin = app.world_token("admin-full");
    add(&app, json!({"match": {"path": "/v1/event-types"}, "action": {"kind": "status", "status": 429, "retryAfter": 7}, "times": 1})).await;
    let limited = app.get("/v1/event-types").bearer(&admin).send().await.expect(429, None);
    assert_eq!(limited.headers["retry-after"], "7");
    assert!(limited.raw.is_empty());

    let unavailable =
        app.get("/v1/event-types").bearer(&admin).header("x-wxcc-mock-fault", "status=503; retryAfter=2").send().await;
    let unavailable = unavailable.expect(503, None);
    assert_eq!((unavailable.headers["retry-after"].as_str(), unavailable.raw.len()), ("2", 0));

    let missing =
        app.get("/organization/x/site/y").bearer(&admin).header("x-wxcc-mock-fault", "status=404").send().await;
    let missing = missing.expect(404, None);
    assert_eq!(missing.body["error"]["key"], "404", "the config envelope");
    assert!(
        missing.diagnostic().contains("Injected by X-Wxcc-Mock-Fault header: status 404"),
        "{}",
        missing.diagnostic()
    );
}

#[tokio::test]
async fn rules_match_on_the_token_user_so_one_agent_fails_while_another_does_not() {
    let app = TestApp::new();
    add(&app, json!({"match": {"user": "agent1@wxcc.example"}, "action": {"kind": "status", "status": 502}})).await;
    let agent1 = app.world_token("forum-case-agent1");
    let agent2 = app.world_token("agent2");
    let body = login_body(&app, "agent1@wxcc.example", "1001");
    app.post("/v1/agents/login").bearer(&agent1).json(&body).send().await.expect(502, None);
    log_in(&app, &agent2, "agent2@wxcc.example", "1002").await;
    // A bad token matches no user rule, and gets its 401 as usual.
    app.get("/v1/event-types")
        .bearer("nobody_P0A1_14091636-52e9-4d11-bd49-53df3b39f246")
        .send()
        .await
        .expect(401, None);
}

#[tokio::test]
async fn a_bad_rule_or_fault_header_is_a_400_that_says_why_and_rules_can_be_listed_deleted_and_cleared() {
    let app = TestApp::new();
    let refused = app
        .post("/__admin/faults")
        .json(&json!({"on": "webhook", "action": {"kind": "status", "status": 503}}))
        .send()
        .await
        .expect(400, None);
    assert!(refused.diagnostic().contains("does not apply to webhook rules"), "{}", refused.diagnostic());
    let refused =
        app.post("/__admin/faults").json(&json!({"action": {"kind": "teapot"}})).send().await.expect(400, None);
    assert!(refused.diagnostic().contains("kind"), "the schema names the field: {}", refused.diagnostic());

    let reply = app.get("/v1/event-types").header("x-wxcc-mock-fault", "slow").send().await.expect(400, None);
    assert!(reply.diagnostic().contains("latency=200"), "the grammar: {}", reply.diagnostic());

    add(&app, json!({"action": {"kind": "reset"}})).await;
    add(&app, json!({"on": "webhook", "action": {"kind": "drop"}})).await;
    app.delete("/__admin/faults/fault-1").send().await.expect(204, None);
    let gone = app.delete("/__admin/faults/fault-1").send().await.expect(404, None);
    assert!(gone.diagnostic().contains("fault-2"), "names the rules there are: {}", gone.diagnostic());
    app.delete("/__admin/faults").send().await.expect(204, None);
    let rules = app.get("/__admin/faults").send().await.expect(200, None);
    assert_eq!(rules.body["faults"], json!([]));
    add(&app, json!({"action": {"kind": "empty"}})).await;
    app.post("/__admin/reset").send().await.expect(200, None);
    assert_eq!(
        app.get("/__admin/faults").send().await.expect(200, None).body["faults"],
        json!([]),
        "reset clears them"
    );
}

#[tokio::test]
async fn a_reset_or_an_empty_reply_reaches_the_client_as_a_broken_connection_and_the_mock_keeps_answering() {
    let app = TestApp::spawn().await;
    let base = app.base_url().expect("a socket").to_owned();
    let admin = app.world_token("admin-full");
    let client = reqwest::Client::new();
    for (fault, unanswered) in [("reset", "connection reset"), ("empty", "empty reply")] {
        let sent = client
            .get(format!("{base}/v1/event-types"))
            .bearer_auth(&admin)
            .header("x-wxcc-mock-fault", fault)
            .send()
            .await;
        let error = sent.expect_err("no answer");
        assert!(!error.is_status() && !error.is_timeout(), "{fault}: {error:?}");
        let entries = http_entries(&app).await;
        let last = entries.last().expect("journaled");
        assert_eq!(last["status"], 0, "{fault}: nothing was answered");
        assert_eq!(last["fault"], format!("X-Wxcc-Mock-Fault header: {unanswered}"));
    }
    app.get("/v1/event-types").bearer(&admin).send().await.expect(200, None);
}

#[tokio::test]
async fn in_process_a_connection_fault_is_a_502_that_says_it_needs_a_socket() {
    let app = TestApp::new();
    let reply = app.get("/v1/event-types").header("x-wxcc-mock-fault", "reset").send().await.expect(502, None);
    assert!(reply.headers["x-wxcc-mock-fault"].contains("connection reset"));
}

#[tokio::test]
async fn a_malformed_answer_runs_the_request_and_cuts_its_json_short() {
    let app = TestApp::spawn().await;
    let base = app.base_url().expect("a socket").to_owned();
    let agent = app.world_token("agent2");
    add(&app, json!({"match": {"path": "/v1/agents/*"}, "action": {"kind": "malformed"}, "times": 1})).await;
    let sent = reqwest::Client::new()
        .post(format!("{base}/v1/agents/login"))
        .bearer_auth(&agent)
        .json(&login_body(&app, "agent2@wxcc.example", "1002"))
        .send()
        .await
        .expect("an answer");
    assert_eq!(sent.status(), 202);
    let text = sent.text().await.expect("a body");
    assert!(serde_json::from_str::<Value>(&text).is_err(), "not JSON: {text}");
    let state = app.admin_state().await;
    let logged_in =
        state["agentSessions"].as_array().is_some_and(|all| all.iter().any(|s| s["email"] == "agent2@wxcc.example"));
    assert!(logged_in, "the login happened; only its answer was spoiled");
    // An error answer is cut short too.
    let sent = reqwest::Client::new()
        .get(format!("{base}/v1/event-types"))
        .header("x-wxcc-mock-fault", "malformed")
        .send()
        .await
        .expect("an answer");
    assert_eq!(sent.status(), 400);
    assert!(serde_json::from_slice::<Value>(&sent.bytes().await.expect("a body")).is_err());
}

#[tokio::test]
async fn latency_holds_the_answer_on_the_mock_clock_until_it_is_advanced() {
    let app = std::sync::Arc::new(TestApp::new());
    let admin = app.world_token("admin-full");
    add(&app, json!({"action": {"kind": "latency", "ms": 1500}, "times": 1})).await;
    let before = app.clock().now_ms();
    let waiting = {
        let app = app.clone();
        tokio::spawn(async move { app.get("/v1/event-types").bearer(&admin).send().await.status })
    };
    // The request is now waiting on a timer of the virtual clock, 1.5 s ahead.
    while app.clock().next_deadline() != Some(before + 1500) {
        tokio::task::yield_now().await;
    }
    assert!(!waiting.is_finished());
    app.advance(1500).await;
    assert_eq!(waiting.await.expect("answered"), 200);
    let entries = http_entries(&app).await;
    assert_eq!(entries.last().expect("journaled")["fault"], "fault-1: latency 1500 ms");
}
