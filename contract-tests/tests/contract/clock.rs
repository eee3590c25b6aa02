//! `/__admin/clock`: one clock for "now" and every timer; a virtual one moves only when told, and
//! fires what falls due before it answers.

use std::time::Duration;

use serde_json::json;
use wxcc_contract_tests::webhooks::WebhookReceiver;
use wxcc_contract_tests::{TEST_EPOCH_MS, TestApp};
use wxcc_mock::delivery::DeliveryConfig;
use wxcc_mock::state::StateOptions;
use wxcc_mock::{AppState, Clock, World};
use wxcc_schemas::SchemaId;

#[tokio::test]
async fn a_virtual_clock_answers_its_mode_and_time_and_moves_only_when_told() {
    let app = TestApp::new();
    let clock = app.get("/__admin/clock").send().await.expect(200, Some(SchemaId::AdminClockResponse)).body;
    assert_eq!(clock["mode"], "virtual");
    assert_eq!(clock["now"], TEST_EPOCH_MS);
    let moved = app
        .post("/__admin/clock/advance")
        .json(&json!({"ms": 61_000}))
        .send()
        .await
        .expect(200, Some(SchemaId::AdminClockResponse))
        .body;
    assert_eq!(moved["now"], TEST_EPOCH_MS + 61_000);
    let set = app.post("/__admin/clock/set").json(&json!({"now": 1_700_000_000_000_i64})).send().await;
    assert_eq!(set.expect(200, Some(SchemaId::AdminClockResponse)).body["now"], 1_700_000_000_000_i64);
    app.post("/__admin/clock/advance").json(&json!({"ms": -5})).send().await.expect(400, None);
    app.post("/__admin/clock/advance").json(&json!({})).send().await.expect(400, None);
}

#[tokio::test]
async fn the_system_clock_refuses_to_move_with_409_and_says_how_to_get_a_virtual_one() {
    let state = AppState::with_clock(World::default_world(), Clock::system(), StateOptions::default());
    let app = TestApp::with_state(state);
    assert_eq!(app.get("/__admin/clock").send().await.expect(200, None).body["mode"], "system");
    for (path, body) in [("/__admin/clock/advance", json!({"ms": 1000})), ("/__admin/clock/set", json!({"now": 1}))] {
        let reply = app.post(path).json(&body).send().await.expect(409, None);
        assert!(reply.diagnostic().contains("--clock virtual"), "{}", reply.diagnostic());
    }
}

#[tokio::test]
async fn a_token_minted_for_60_seconds_answers_401_right_after_the_clock_passes_61() {
    let app = TestApp::new();
    let minted = app
        .post("/__admin/tokens")
        .json(&json!({"email": "agent2@wxcc.example", "scopes": ["cjp:user"], "ttlSeconds": 60}))
        .send()
        .await
        .expect(201, None);
    let token = minted.body["accessToken"].as_str().expect("token").to_owned();
    app.post("/v1/agents/reload").bearer(&token).send().await.expect(202, None);
    app.post("/__admin/clock/advance").json(&json!({"ms": 61_000})).send().await.expect(200, None);
    let reply = app.post("/v1/agents/reload").bearer(&token).send().await.expect(401, None);
    assert!(reply.diagnostic().contains("expired 1 s ago"), "{}", reply.diagnostic());
}

#[tokio::test]
async fn a_failing_receivers_six_attempts_and_the_inactive_subscription_take_one_advance_not_a_minute() {
    let options = StateOptions {
        delivery: DeliveryConfig { disable_after: 1, ..DeliveryConfig::default() },
        ..StateOptions::default()
    };
    let app = TestApp::spawn_with(options).await;
    let mut receiver = WebhookReceiver::start(None).await;
    receiver.answer_with(&[(500, None); 6]);
    let admin = app.world_token("admin-full");
    let body = json!({"name": "failing", "eventTypes": ["agent:login"], "destinationUrl": receiver.url});
    let id = app.post("/v1/subscriptions").bearer(&admin).json(&body).send().await.expect(201, None).body["data"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let started = std::time::Instant::now();
    crate::log_in(&app, &app.world_token("agent2"), "agent2@wxcc.example", "1002").await;
    // Back-off 1 + 2 + 4 + 8 + 16 s: all of it fires inside one call.
    app.post("/__admin/clock/advance").json(&json!({"ms": 31_000})).send().await.expect(200, None);
    assert!(started.elapsed() < Duration::from_secs(1), "took {:?} of wall time", started.elapsed());
    for _ in 0..6 {
        assert_eq!(receiver.next().await.body["type"], "agent:login");
    }
    let log = app.state().dispatcher().attempts(Some(&id));
    let attempts: Vec<u32> = log.iter().rev().map(|a| a.attempt).collect();
    assert_eq!(attempts, vec![1, 2, 3, 4, 5, 6]);
    let times: Vec<i64> = log.iter().rev().map(|a| a.at - TEST_EPOCH_MS).collect();
    assert_eq!(times, vec![0, 1_000, 3_000, 7_000, 15_000, 31_000], "each retry at its back-off, on the clock");
    let reply = app.get(&format!("/v1/subscriptions/{id}")).bearer(&admin).send().await.expect(200, None);
    assert_eq!(reply.body["data"]["status"], "inactive");
    let events = app.get("/__admin/journal?kind=event").send().await.expect(200, None).body;
    let disabled = events["entries"].as_array().expect("entries").iter().find(|e| e["type"] == "subscription:disabled");
    assert_eq!(disabled.expect("a subscription:disabled event")["data"]["failedEvents"], 1);
}

#[tokio::test]
async fn setting_the_clock_back_keeps_waiting_timers_at_their_distance_and_forward_fires_them() {
    let app = TestApp::new();
    let timer = app.clock().sleep(Duration::from_secs(30));
    let back = TEST_EPOCH_MS - 10_000;
    let reply = app.post("/__admin/clock/set").json(&json!({"now": back})).send().await.expect(200, None);
    assert_eq!(reply.body["pendingTimers"], 1);
    assert_eq!(reply.body["nextTimerAt"], back + 30_000, "still 30 s away");
    let fired = tokio::spawn(async move { drop(timer.await) });
    let reply = app.post("/__admin/clock/set").json(&json!({"now": back + 30_000})).send().await.expect(200, None);
    assert_eq!(reply.body["pendingTimers"], 0);
    fired.await.expect("the timer fired");
}
