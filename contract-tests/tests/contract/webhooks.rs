//! Webhook delivery: real receivers on 127.0.0.1:0 that check signatures from the raw bytes, and
//! an in-memory transport for back-off timing on the mock's virtual clock.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use wxcc_contract_tests::TestApp;
use wxcc_contract_tests::webhooks::{RecordingTransport, WebhookReceiver};
use wxcc_mock::World;
use wxcc_mock::delivery::{Answer, DeliveryConfig, Outcome};
use wxcc_mock::state::StateOptions;
use wxcc_schemas::SchemaId;

use crate::login_body;

const SECRET: &str = "0123456789abcdef0123456789abcdef";
const ME: &str = "agent2@wxcc.example";

fn fast(retries: u32, disable_after: u32) -> StateOptions {
    StateOptions {
        delivery: DeliveryConfig {
            retries,
            backoff: Duration::from_millis(1),
            disable_after,
            ..DeliveryConfig::default()
        },
        ..StateOptions::default()
    }
}

async fn subscribe(app: &TestApp, version: &str, url: &str, types: &[&str], secret: Option<&str>) -> String {
    let mut body = json!({"name": "receiver", "eventTypes": types, "destinationUrl": url});
    if let Some(secret) = secret {
        body["secret"] = json!(secret);
    }
    if version == "v2" {
        body["resourceVersion"] = json!("agent:2.0.0");
    }
    let reply =
        app.post(&format!("/{version}/subscriptions")).bearer(&app.world_token("admin-full")).json(&body).send().await;
    reply.expect(201, None).body["data"]["id"].as_str().expect("id").to_owned()
}

async fn login(app: &TestApp) {
    let token = app.world_token("agent2");
    app.post("/v1/agents/login").bearer(&token).json(&login_body(app, ME, "1002")).send().await.expect(202, None);
}

async fn available(app: &TestApp) {
    let token = app.world_token("agent2");
    let body = json!({"state": "Available", "auxCodeId": "0"});
    app.put("/v1/agents/session/state").bearer(&token).json(&body).send().await.expect(202, None);
}

/// The subscription's status, as the administrator reads it.
async fn status_of(app: &TestApp, id: &str) -> Value {
    let reply = app.get(&format!("/v1/subscriptions/{id}")).bearer(&app.world_token("admin-full")).send().await;
    reply.expect(200, None).body["data"]["status"].clone()
}

fn check_envelope(body: &Value) {
    if let Err(v) = wxcc_schemas::validate(SchemaId::WebhookEvent, body) {
        panic!("webhook body breaks webhook-event: {v:?}\n{body}");
    }
}

#[tokio::test]
async fn a_v1_subscription_receives_signed_cloud_events_for_agent_transitions() {
    let app = TestApp::spawn().await;
    let mut receiver = WebhookReceiver::start(Some(SECRET)).await;
    let id = subscribe(&app, "v1", &receiver.url, &["agent:login", "agent:state_change"], Some(SECRET)).await;
    login(&app).await;
    available(&app).await;

    let first = receiver.next().await;
    check_envelope(&first.body);
    assert_eq!(first.signature_ok, Some(true), "the signature covers the exact bytes");
    assert_eq!(first.header("x-webexcc-signature").map(str::len), Some(64));
    assert_eq!(first.header("content-type"), Some("application/json"));
    assert_eq!(first.body["type"], "agent:login");
    assert_eq!(first.body["source"], format!("/com/cisco/wxcc/{id}"));
    assert_eq!(first.body["comciscoorgid"], app.org_of(ME));
    assert_eq!(first.body["data"]["agentId"], app.user_id(ME));
    assert_eq!(first.body["data"]["destination"], "1002");
    assert!(first.body.get("comciscotimestamp").is_none(), "v1 has no timestamp");
    assert!(first.header("x-webexcc-timestamp").is_none());

    let second = receiver.next().await;
    assert_eq!(second.signature_ok, Some(true));
    assert_eq!(second.body["type"], "agent:state_change");
    assert_eq!(second.body["data"]["currentState"], "available");
    assert_ne!(first.body["id"], second.body["id"]);
}

#[tokio::test]
async fn a_v2_subscription_gets_the_timestamp_in_body_and_header_and_the_v2_names() {
    let app = TestApp::spawn().await;
    let mut receiver = WebhookReceiver::start(Some(SECRET)).await;
    let types = ["agent:login", "agent:channel_state_change", "agent:channelType_state_change"];
    subscribe(&app, "v2", &receiver.url, &types, Some(SECRET)).await;
    login(&app).await;
    available(&app).await;
    let mut seen = Vec::new();
    for _ in 0..3 {
        let got = receiver.next().await;
        check_envelope(&got.body);
        assert_eq!(got.signature_ok, Some(true));
        let stamp = got.body["comciscotimestamp"].as_i64().expect("v2 timestamp");
        assert_eq!(got.header("x-webexcc-timestamp"), Some(stamp.to_string().as_str()));
        assert_eq!(got.header("x-webexcc-webhook-version"), Some("agent:2.0.0"));
        seen.push((got.body["type"].as_str().unwrap_or_default().to_owned(), got.body["data"]["currentState"].clone()));
    }
    assert_eq!(
        seen,
        vec![
            ("agent:login".to_owned(), json!("idle")),
            ("agent:channel_state_change".to_owned(), json!("available")),
            ("agent:channelType_state_change".to_owned(), json!("Available")),
        ]
    );
}

#[tokio::test]
async fn without_a_secret_there_is_no_signature_and_unsubscribed_types_are_not_sent() {
    let app = TestApp::spawn().await;
    let mut receiver = WebhookReceiver::start(None).await;
    subscribe(&app, "v1", &receiver.url, &["agent:state_change"], None).await;
    login(&app).await;
    available(&app).await;
    let got = receiver.next().await;
    assert_eq!(got.body["type"], "agent:state_change", "the login was not subscribed to");
    assert!(got.header("x-webexcc-signature").is_none());
}

#[tokio::test]
async fn other_organisations_and_inactive_subscriptions_receive_nothing() {
    let app = TestApp::spawn().await;
    let mut ours = WebhookReceiver::start(None).await;
    let mut theirs = WebhookReceiver::start(None).await;
    let mut paused = WebhookReceiver::start(None).await;
    let globex = json!({"name": "globex", "eventTypes": ["agent:login"], "destinationUrl": theirs.url});
    app.post("/v1/subscriptions").bearer(&app.world_token("globex-admin")).json(&globex).send().await.expect(201, None);
    let paused_id = subscribe(&app, "v1", &paused.url, &["agent:login"], None).await;
    let admin = app.world_token("admin-full");
    app.patch(&format!("/v1/subscriptions/{paused_id}"))
        .bearer(&admin)
        .json(&json!({"status": "inactive"}))
        .send()
        .await
        .expect(200, None);
    subscribe(&app, "v1", &ours.url, &["agent:login"], None).await;
    login(&app).await;
    let got = ours.next().await;
    assert_eq!(got.body["type"], "agent:login");
    // Every delivery of the event was queued before the one we waited for was received.
    app.state().dispatcher().attempts(None).iter().for_each(|a| assert_eq!(a.url, ours.url));
    assert!(theirs.try_next().is_none());
    assert!(paused.try_next().is_none());
}

#[tokio::test]
async fn a_failing_receiver_gets_retries_and_then_an_inactive_subscription() {
    let app = TestApp::spawn_with(fast(2, 2)).await;
    let mut receiver = WebhookReceiver::start(None).await;
    receiver.answer_with(&[(500, None); 6]);
    let id = subscribe(&app, "v1", &receiver.url, &["agent:login", "agent:logout", "agent:state_change"], None).await;
    login(&app).await;
    available(&app).await;
    // The retries wait on the virtual clock: one advance fires them all, in order.
    app.advance(1_000).await;
    // 2 events × 3 attempts.
    for _ in 0..6 {
        receiver.next().await;
    }
    let log = app.get(&format!("/__admin/deliveries?subscriptionId={id}")).send().await.expect(200, None).body;
    let entries = log["deliveries"].as_array().expect("deliveries");
    let outline: Vec<(u64, u64, &str)> = entries
        .iter()
        .rev()
        .map(|a| {
            (a["attempt"].as_u64().unwrap_or(0), a["status"].as_u64().unwrap_or(0), a["outcome"].as_str().unwrap_or(""))
        })
        .collect();
    assert_eq!(
        outline,
        vec![
            (1, 500, "retrying"),
            (2, 500, "retrying"),
            (3, 500, "failed"),
            (1, 500, "retrying"),
            (2, 500, "retrying"),
            (3, 500, "disabled")
        ]
    );
    assert_eq!(status_of(&app, &id).await, "inactive");
    // Inactive: the next event is not sent at all.
    let token = app.world_token("agent2");
    app.put("/v1/agents/logout").bearer(&token).json(&json!({"logoutReason": "x"})).send().await.expect(202, None);
    let after = app.get(&format!("/__admin/deliveries?subscriptionId={id}")).send().await.expect(200, None).body;
    assert_eq!(after["deliveries"].as_array().map(Vec::len), Some(6));
}

#[tokio::test]
async fn a_success_resets_the_failure_count() {
    let app = TestApp::spawn_with(fast(0, 2)).await;
    let mut receiver = WebhookReceiver::start(None).await;
    receiver.answer_with(&[(500, None), (200, None), (500, None)]);
    let id = subscribe(&app, "v1", &receiver.url, &["agent:login", "agent:logout", "agent:state_change"], None).await;
    login(&app).await;
    available(&app).await;
    let token = app.world_token("agent2");
    app.put("/v1/agents/logout").bearer(&token).json(&json!({"logoutReason": "x"})).send().await.expect(202, None);
    for _ in 0..3 {
        receiver.next().await;
    }
    let mut attempts = app.state().dispatcher().watch();
    attempts.wait_for(|n| *n >= 3).await.expect("log");
    assert_eq!(status_of(&app, &id).await, "active", "fail, succeed, fail is not two consecutive failures");
}

#[tokio::test]
async fn redirects_are_not_followed_and_count_as_failures() {
    let app = TestApp::spawn_with(fast(1, 5)).await;
    let mut receiver = WebhookReceiver::start(None).await;
    receiver.answer_with(&[(302, Some("http://127.0.0.1:1/elsewhere"))]);
    let id = subscribe(&app, "v1", &receiver.url, &["agent:login"], None).await;
    login(&app).await;
    app.advance(1_000).await;
    receiver.next().await;
    receiver.next().await;
    let log = app.state().dispatcher().attempts(Some(&id));
    assert_eq!((log[1].status, log[1].outcome), (Some(302), Outcome::Retrying));
    assert_eq!((log[0].status, log[0].outcome), (Some(200), Outcome::Delivered));
}

#[tokio::test]
async fn an_unreachable_receiver_is_logged_with_the_error() {
    let app = TestApp::spawn_with(fast(0, 5)).await;
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/hook", closed.local_addr().expect("addr"));
    drop(closed);
    let id = subscribe(&app, "v1", &url, &["agent:login"], None).await;
    let mut attempts = app.state().dispatcher().watch();
    login(&app).await;
    attempts.wait_for(|n| *n >= 1).await.expect("log");
    let log = app.state().dispatcher().attempts(Some(&id));
    assert_eq!(log[0].status, None);
    assert!(log[0].error.as_deref().is_some_and(|e| !e.is_empty()));
    assert_eq!(log[0].outcome, Outcome::Failed);
}

// ---- Timing on the mock's virtual clock, with the in-memory transport. ----

fn recorded(transport: &Arc<RecordingTransport>, retries: u32, disable_after: u32) -> StateOptions {
    StateOptions {
        delivery: DeliveryConfig {
            retries,
            backoff: Duration::from_millis(1000),
            disable_after,
            ..DeliveryConfig::default()
        },
        transport: transport.clone(),
        ..StateOptions::default()
    }
}

fn fail(status: u16) -> Option<Result<Answer, String>> {
    Some(Ok(Answer { status, retry_after: None }))
}

/// The clock times of a subscription's attempts, oldest first.
fn attempt_times(app: &TestApp, id: &str) -> Vec<i64> {
    app.state().dispatcher().attempts(Some(id)).iter().rev().map(|a| a.at).collect()
}

#[tokio::test]
async fn back_off_doubles_from_the_configured_first_delay() {
    let transport = RecordingTransport::new();
    transport.script(vec![fail(500), fail(503), fail(500), fail(500)]);
    let app = TestApp::with_options(World::default_world(), recorded(&transport, 5, 3));
    let id = subscribe(&app, "v1", "https://hooks.example.com/x", &["agent:login"], None).await;
    login(&app).await;
    app.settled().await;
    assert_eq!(transport.calls().len(), 1, "the retries wait for the clock");
    app.advance(60_000).await;
    let times = attempt_times(&app, &id);
    let gaps: Vec<i64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    assert_eq!(gaps, vec![1000, 2000, 4000, 8000]);
    let calls = transport.calls();
    assert_eq!(calls.len(), 5);
    assert_eq!(calls[4].body, calls[0].body, "a retry sends the same event");
}

#[tokio::test]
async fn a_429_retry_after_is_honoured_instead_of_the_back_off() {
    let transport = RecordingTransport::new();
    transport.script(vec![Some(Ok(Answer { status: 429, retry_after: Some(Duration::from_secs(7)) }))]);
    let app = TestApp::with_options(World::default_world(), recorded(&transport, 5, 3));
    let id = subscribe(&app, "v1", "https://hooks.example.com/x", &["agent:login"], None).await;
    login(&app).await;
    app.advance(6_999).await;
    assert_eq!(transport.calls().len(), 1, "not before Retry-After");
    app.advance(1).await;
    assert_eq!(transport.calls().len(), 2);
    let times = attempt_times(&app, &id);
    assert_eq!(times[1] - times[0], 7_000);
}

#[tokio::test]
async fn a_receiver_that_never_answers_times_out_on_real_time_and_is_retried_on_the_clock() {
    let transport = RecordingTransport::new();
    transport.script(vec![None]);
    let mut options = recorded(&transport, 1, 3);
    options.delivery.timeout = Duration::from_millis(50);
    let app = TestApp::with_options(World::default_world(), options);
    let id = subscribe(&app, "v1", "https://hooks.example.com/x", &["agent:login"], None).await;
    login(&app).await;
    app.advance(1_000).await;
    let log = app.state().dispatcher().attempts(Some(&id));
    assert_eq!(log[1].error.as_deref(), Some("no answer within 50 ms"));
    assert_eq!(log[0].outcome, Outcome::Delivered);
    assert_eq!(log[0].at - log[1].at, 1_000, "the retry waits on the virtual clock, the timeout on real time");
}

#[tokio::test]
async fn a_retrying_subscription_holds_back_its_own_events_but_not_anyone_elses() {
    let transport = RecordingTransport::new();
    // The slow subscription's first event fails once; the other subscription is not held up.
    let slow = "https://slow.example.com/x";
    let fast = "https://fast.example.com/x";
    transport.script_for(slow, vec![fail(500)]);
    let app = TestApp::with_options(World::default_world(), recorded(&transport, 5, 3));
    subscribe(&app, "v1", slow, &["agent:login", "agent:state_change"], None).await;
    subscribe(&app, "v1", fast, &["agent:login", "agent:state_change"], None).await;
    login(&app).await;
    available(&app).await;
    app.settled().await;
    let types = |url: &str| -> Vec<String> {
        transport
            .calls()
            .iter()
            .filter(|c| c.url == url)
            .map(|c| c.body["type"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(types(fast), vec!["agent:login", "agent:state_change"], "the fast one got both at once");
    assert_eq!(types(slow), vec!["agent:login"], "the slow one waits for its retry before its next event");
    app.advance(1_000).await;
    assert_eq!(types(slow), vec!["agent:login", "agent:login", "agent:state_change"], "in order, after the retry");
}

#[tokio::test]
async fn deleting_a_subscription_stops_its_retries_and_frees_its_worker() {
    let transport = RecordingTransport::new();
    transport.script(vec![fail(500), fail(500), fail(500)]);
    let app = TestApp::with_options(World::default_world(), recorded(&transport, 5, 3));
    let id = subscribe(&app, "v1", "https://hooks.example.com/x", &["agent:login"], None).await;
    login(&app).await;
    app.settled().await;
    assert_eq!(app.state().dispatcher().workers(), 1);
    let admin = app.world_token("admin-full");
    app.delete(&format!("/v1/subscriptions/{id}")).bearer(&admin).send().await.expect(204, None);
    assert_eq!(app.state().dispatcher().workers(), 0, "the queue is freed at once");
    app.advance(120_000).await;
    assert_eq!(transport.calls().len(), 1, "no retry after the subscription was deleted");
    let log = app.state().dispatcher().attempts(Some(&id));
    assert_eq!(log[0].outcome, Outcome::Cancelled, "the stop is recorded, not silent");
}

#[tokio::test]
async fn a_receiver_named_localhost_is_reached_through_the_guarded_resolver() {
    let app = TestApp::spawn().await;
    let mut receiver = WebhookReceiver::start(Some(SECRET)).await;
    let url = receiver.url.replace("127.0.0.1", "localhost");
    assert!(url.starts_with("http://localhost:"), "{url}");
    subscribe(&app, "v1", &url, &["agent:login"], Some(SECRET)).await;
    login(&app).await;
    let got = receiver.next().await;
    assert_eq!(got.body["type"], "agent:login");
    assert_eq!(got.signature_ok, Some(true));
}
