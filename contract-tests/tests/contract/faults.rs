//! Faults: rules at `/__admin/faults` and the `X-Wxcc-Mock-Fault` header make WxCC requests fail
//! the way the gateway in front of the real API does, marked as the mock's doing in the answer,
//! the journal and the console.

use serde_json::{Value, json};
use wxcc_contract_tests::TestApp;

use crate::{log_in, login_body, subscription_body};

async fn add(app: &TestApp, rule: Value) -> Value {
    app.post("/__admin/faults").json(&rule).send().await.expect(201, None).body
}

/// Puts agent2 (logged in) in `state`: Available, or Idle with the world's first idle code that a
/// user may pick.
async fn change_agent2(app: &TestApp, state: &str) {
    let code = if state == "Available" {
        "0".to_owned()
    } else {
        let codes = &app.world().orgs[0].aux_codes;
        codes.iter().find(|a| a.work_type == "IDLE_CODE" && !a.is_system_code).expect("an idle code").id.clone()
    };
    let body = json!({"state": state, "auxCodeId": code});
    app.put("/v1/agents/session/state").bearer(&app.world_token("agent2")).json(&body).send().await.expect(202, None);
}

async fn http_entries(app: &TestApp) -> Vec<Value> {
    let journal = app.get("/__admin/journal?kind=http").send().await.expect(200, None);
    journal.body["entries"].as_array().expect("entries").clone()
}

#[tokio::test]
async fn a_whole_number_written_with_a_decimal_point_counts_as_an_integer_as_json_schema_says() {
    let app = TestApp::new();
    let rule = add(&app, json!({"on": "websocket", "action": {"kind": "delay", "ms": 112.0}, "times": 2.0})).await;
    assert_eq!((rule["action"]["ms"].as_u64(), rule["times"].as_u64()), (Some(112), Some(2)));
    let refused = app
        .post("/__admin/faults")
        .json(&json!({"action": {"kind": "latency", "ms": 1.5}}))
        .send()
        .await
        .expect(400, None);
    assert!(refused.diagnostic().contains("/action/ms"), "{}", refused.diagnostic());
}

#[tokio::test]
async fn the_mock_holds_a_bounded_number_of_rules_and_refuses_one_more_with_a_409() {
    let app = TestApp::new();
    for i in 0..wxcc_mock::faults::MAX_RULES {
        add(&app, json!({"name": format!("rule {i}"), "action": {"kind": "reset"}, "match": {"path": "/nowhere"}}))
            .await;
    }
    let refused =
        app.post("/__admin/faults").json(&json!({"action": {"kind": "empty"}})).send().await.expect(409, None);
    assert!(refused.diagnostic().contains("at most 256"), "{}", refused.diagnostic());
    app.delete("/__admin/faults").send().await.expect(204, None);
    add(&app, json!({"action": {"kind": "empty"}})).await;
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
        .json(&json!({"on": "webhook", "action": {"kind": "latency", "ms": 5}}))
        .send()
        .await
        .expect(400, None);
    assert!(
        refused.diagnostic().contains(
            r#"/action/kind: must be one of "status", "drop", "duplicate", "reorder", "delay", "badSignature""#
        ),
        "the schema says which actions a webhook rule takes: {}",
        refused.diagnostic()
    );
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

mod webhooks {
    //! Faults on webhook deliveries: drop, duplicate, reorder, delay, wrong signature.

    use std::sync::Arc;

    use serde_json::{Value, json};
    use wxcc_contract_tests::TestApp;
    use wxcc_contract_tests::webhooks::{RecordingTransport, WebhookReceiver};
    use wxcc_mock::World;
    use wxcc_mock::delivery::Outcome;
    use wxcc_mock::state::StateOptions;

    use super::{add, change_agent2};

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn recorded() -> (Arc<RecordingTransport>, TestApp) {
        let transport = RecordingTransport::new();
        let options = StateOptions { transport: transport.clone(), ..StateOptions::default() };
        (transport.clone(), TestApp::with_options(World::default_world(), options))
    }

    async fn subscribe(app: &TestApp, url: &str) -> String {
        let body = json!({"name": "receiver", "eventTypes": ["agent:login", "agent:state_change"], "destinationUrl": url, "secret": SECRET});
        let reply = app.post("/v1/subscriptions").bearer(&app.world_token("admin-full")).json(&body).send().await;
        reply.expect(201, None).body["data"]["id"].as_str().expect("id").to_owned()
    }

    /// agent:login, then agent:state_change.
    async fn login_then_available(app: &TestApp) {
        crate::log_in(app, &app.world_token("agent2"), "agent2@wxcc.example", "1002").await;
        change_agent2(app, "Available").await;
        app.settled().await;
    }

    fn types(calls: &[wxcc_contract_tests::webhooks::Call]) -> Vec<String> {
        calls.iter().map(|c| c.body["type"].as_str().unwrap_or_default().to_owned()).collect()
    }

    #[tokio::test]
    async fn a_dropped_event_never_leaves_and_its_record_names_the_rule() {
        let (transport, app) = recorded();
        let id = subscribe(&app, "https://hooks.example.com/a").await;
        add(
            &app,
            json!({"on": "webhook", "match": {"eventType": "agent:login"}, "action": {"kind": "drop"}, "times": 1}),
        )
        .await;
        login_then_available(&app).await;
        assert_eq!(types(&transport.calls()), ["agent:state_change"]);
        let attempts = app.state().dispatcher().attempts(Some(&id));
        let dropped = attempts.iter().find(|a| a.outcome == Outcome::Dropped).expect("recorded");
        assert_eq!(dropped.fault.as_deref(), Some("fault-1: dropped"));
        assert_eq!(dropped.event_type, "agent:login");
        let journal = app.get("/__admin/journal?kind=webhook").send().await.expect(200, None);
        let marked: Vec<&Value> =
            journal.body["entries"].as_array().expect("entries").iter().filter(|e| e.get("fault").is_some()).collect();
        assert_eq!(marked.len(), 1, "only the dropped one is marked");
    }

    #[tokio::test]
    async fn a_status_rule_answers_for_the_receiver_attempt_by_attempt_and_the_retry_after_it_is_sent() {
        let (transport, app) = recorded();
        let id = subscribe(&app, "https://hooks.example.com/a").await;
        add(&app, json!({"on": "webhook", "action": {"kind": "status", "status": 500}, "times": 2})).await;
        crate::log_in(&app, &app.world_token("agent2"), "agent2@wxcc.example", "1002").await;
        app.settled().await;
        assert!(transport.calls().is_empty(), "the first attempt is answered by the rule, not sent");
        // Back-off: 1 s, then 2 s on the mock's clock; the third attempt is not the rule's.
        app.advance(1_000).await;
        assert!(transport.calls().is_empty(), "the second attempt too");
        app.advance(2_000).await;
        assert_eq!(types(&transport.calls()), ["agent:login"]);
        let mut attempts = app.state().dispatcher().attempts(Some(&id));
        attempts.reverse();
        let seen: Vec<(Option<u16>, Option<&str>)> = attempts.iter().map(|a| (a.status, a.fault.as_deref())).collect();
        assert_eq!(
            seen,
            [
                (Some(500), Some("fault-1: status 500 (not sent)")),
                (Some(500), Some("fault-1: status 500 (not sent)")),
                (Some(200), None)
            ]
        );
    }

    #[tokio::test]
    async fn a_duplicated_event_arrives_twice_with_the_same_id_and_signature() {
        let (transport, app) = recorded();
        subscribe(&app, "https://hooks.example.com/a").await;
        add(&app, json!({"on": "webhook", "match": {"eventType": "agent:login"}, "action": {"kind": "duplicate"}}))
            .await;
        login_then_available(&app).await;
        let calls = transport.calls();
        assert_eq!(types(&calls), ["agent:login", "agent:login", "agent:state_change"]);
        assert_eq!(calls[0].body["id"], calls[1].body["id"], "a redelivery, not a new event");
        assert_eq!(calls[0].headers, calls[1].headers);
    }

    #[tokio::test]
    async fn a_reordered_event_goes_out_after_the_later_ones_or_when_its_hold_runs_out() {
        let (transport, app) = recorded();
        subscribe(&app, "https://hooks.example.com/a").await;
        add(&app, json!({"on": "webhook", "match": {"eventType": "agent:login"}, "action": {"kind": "reorder", "window": 1}, "times": 1})).await;
        login_then_available(&app).await;
        assert_eq!(types(&transport.calls()), ["agent:state_change", "agent:login"]);

        // A window the later events never fill: held for 10 s on the mock's clock, then sent.
        add(&app, json!({"on": "webhook", "action": {"kind": "reorder", "window": 5}, "times": 1})).await;
        change_agent2(&app, "Idle").await;
        app.settled().await;
        assert_eq!(transport.calls().len(), 2, "held");
        app.advance(9_999).await;
        assert_eq!(transport.calls().len(), 2, "still held");
        app.advance(1).await;
        assert_eq!(types(&transport.calls()), ["agent:state_change", "agent:login", "agent:state_change"]);
    }

    #[tokio::test]
    async fn a_delayed_event_waits_on_the_mock_clock_and_holds_back_its_subscription() {
        let (transport, app) = recorded();
        subscribe(&app, "https://hooks.example.com/a").await;
        add(
            &app,
            json!({"on": "webhook", "match": {"eventType": "agent:login"}, "action": {"kind": "delay", "ms": 3000}}),
        )
        .await;
        login_then_available(&app).await;
        assert!(transport.calls().is_empty(), "the later event waits behind it, in order");
        app.advance(3_000).await;
        assert_eq!(types(&transport.calls()), ["agent:login", "agent:state_change"]);
    }

    #[tokio::test]
    async fn a_wrong_signature_fails_the_receivers_check() {
        let app = TestApp::spawn().await;
        let mut receiver = WebhookReceiver::start(Some(SECRET)).await;
        subscribe(&app, &receiver.url).await;
        add(&app, json!({"on": "webhook", "match": {"eventType": "agent:login"}, "action": {"kind": "badSignature"}}))
            .await;
        login_then_available(&app).await;
        let login = receiver.next().await;
        assert_eq!(login.body["type"], "agent:login");
        assert_eq!(login.signature_ok, Some(false));
        let change = receiver.next().await;
        assert_eq!(change.signature_ok, Some(true), "only the matching event");
    }
}

mod websocket {
    //! Faults on the notification websocket: drop a message, delay it, drop the connection.

    use serde_json::{Value, json};
    use wxcc_contract_tests::TestApp;
    use wxcc_contract_tests::ws::Ws;

    use super::{add, change_agent2};

    const ME: &str = "agent2@wxcc.example";

    async fn connected(app: &TestApp) -> Ws {
        let token = app.world_token("agent2");
        let mut ws = Ws::open(app, &token, &json!({"clientType": "Desktop", "isKeepAliveEnabled": false})).await;
        crate::log_in(app, &token, ME, "1002").await;
        assert_eq!(ws.next().await["data"]["type"], "AgentStationLoginSuccess");
        ws
    }

    async fn ws_faults(app: &TestApp) -> Vec<Value> {
        let journal = app.get("/__admin/journal?kind=ws").send().await.expect(200, None);
        journal.body["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .filter(|e| e.get("fault").is_some())
            .cloned()
            .collect()
    }

    #[tokio::test]
    async fn a_dropped_message_never_reaches_the_desktop_and_the_next_one_does() {
        let app = TestApp::spawn().await;
        let mut ws = connected(&app).await;
        add(&app, json!({"on": "websocket", "match": {"user": ME, "eventType": "AgentStateChange"}, "action": {"kind": "drop"}, "times": 1})).await;
        change_agent2(&app, "Available").await;
        change_agent2(&app, "Idle").await;
        let next = ws.next().await;
        assert_eq!(
            (next["type"].as_str(), next["data"]["subStatus"].as_str()),
            (Some("AgentStateChange"), Some("Idle"))
        );
        let marked = ws_faults(&app).await;
        assert_eq!(marked.len(), 1);
        assert_eq!(
            (marked[0]["fault"].as_str(), marked[0]["delivered"].as_bool()),
            (Some("fault-1: dropped"), Some(false))
        );
    }

    #[tokio::test]
    async fn a_dropped_keepalive_is_missing_and_the_next_one_comes_on_time() {
        let app = TestApp::spawn().await;
        let mut ws = connected(&app).await;
        add(
            &app,
            json!({"on": "websocket", "match": {"eventType": "keepalive"}, "action": {"kind": "drop"}, "times": 1}),
        )
        .await;
        app.advance(8_000).await;
        let keepalive = wxcc_contract_tests::ws::Frame::Json(json!({"keepalive": "true"}));
        assert_eq!(ws.frame().await, keepalive, "the one at 8 s; the one at 4 s was dropped");
        change_agent2(&app, "Available").await;
        let wxcc_contract_tests::ws::Frame::Json(next) = ws.frame().await else { panic!("closed") };
        assert_eq!(next["type"], "AgentStateChange", "no second keepalive was waiting: {next}");
        let marked = ws_faults(&app).await;
        assert_eq!((marked.len(), marked[0]["label"].as_str()), (1, Some("keepalive")), "{marked:?}");
    }

    #[tokio::test]
    async fn a_disconnect_drops_the_connection_without_a_close_frame() {
        let app = TestApp::spawn().await;
        let mut ws = connected(&app).await;
        add(
            &app,
            json!({"on": "websocket", "match": {"eventType": "AgentStateChange"}, "action": {"kind": "disconnect"}}),
        )
        .await;
        change_agent2(&app, "Available").await;
        assert_eq!(ws.closed().await, 1006, "abnormal closure: the network dropped");
        assert_eq!(ws_faults(&app).await[0]["fault"], "fault-1: connection dropped");
    }

    #[tokio::test]
    async fn a_delayed_message_waits_on_the_mock_clock() {
        let app = TestApp::spawn().await;
        let mut ws = connected(&app).await;
        add(&app, json!({"on": "websocket", "match": {"eventType": "AgentStateChange"}, "action": {"kind": "delay", "ms": 1500}})).await;
        let due = app.clock().now_ms() + 1500;
        change_agent2(&app, "Available").await;
        // The message now waits on a timer of the virtual clock, 1.5 s ahead.
        let timer_set = async {
            while app.clock().next_deadline() != Some(due) {
                tokio::task::yield_now().await;
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(10), timer_set)
            .await
            .expect("the delay waits on the mock's clock");
        app.advance(1500).await;
        assert_eq!(ws.next().await["data"]["subStatus"], "Available");
    }
}
