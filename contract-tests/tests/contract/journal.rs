//! `/__admin/journal` and `/__admin/journal/stream`: the record of everything, in one sequence.

use serde_json::{Value, json};
use wxcc_contract_tests::TestApp;
use wxcc_contract_tests::webhooks::WebhookReceiver;
use wxcc_contract_tests::ws::Ws;
use wxcc_mock::state::StateOptions;

use crate::login_body;

const SECRET: &str = "journal-secret-marker-0123456789abcdef";
const ME: &str = "agent2@wxcc.example";

async fn journal(app: &TestApp, query: &str) -> Value {
    app.get(&format!("/__admin/journal{query}")).send().await.expect(200, None).body
}

fn entries(page: &Value) -> Vec<Value> {
    page["entries"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn one_agent_login_journals_the_exchange_the_frame_and_the_webhook_attempt_in_sequence_order_without_the_secret()
{
    let app = TestApp::spawn().await;
    let mut receiver = WebhookReceiver::start(Some(SECRET)).await;
    let admin = app.world_token("admin-full");
    let subscription =
        json!({"name": "journal", "eventTypes": ["agent:login"], "destinationUrl": receiver.url, "secret": SECRET});
    app.post("/v1/subscriptions").bearer(&admin).json(&subscription).send().await.expect(201, None);
    let token = app.world_token("agent2");
    let mut ws = Ws::open(&app, &token, &json!({"clientType": "Journal"})).await;
    let start = journal(&app, "?limit=1").await["lastSeq"].as_u64().expect("lastSeq");

    let login = app.post("/v1/agents/login").bearer(&token).json(&login_body(&app, ME, "1002")).send().await;
    let tracking = login.expect(202, None).tracking_id().to_owned();
    assert_eq!(ws.next().await["trackingId"], tracking.as_str());
    receiver.next().await;
    app.settled().await;

    let after = entries(&journal(&app, &format!("?since={start}")).await);
    let find = |kind: &str| -> Value {
        after.iter().find(|e| e["kind"] == kind).cloned().unwrap_or_else(|| panic!("no {kind} entry in {after:?}"))
    };
    let (event, frame, http, webhook) = (find("event"), find("ws"), find("http"), find("webhook"));
    let seq = |e: &Value| e["seq"].as_u64().expect("seq");
    assert!(seq(&event) < seq(&frame), "the transition, then the message that announces it");
    assert!(seq(&event) < seq(&webhook), "the transition, then its delivery");
    let seqs: Vec<u64> = after.iter().map(seq).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "oldest first, strictly in sequence: {seqs:?}");

    assert_eq!(event["type"], "agent:login");
    assert_eq!(event["data"]["email"], ME);
    assert_eq!(http["method"], "POST");
    assert_eq!(http["path"], "/v1/agents/login");
    assert_eq!(http["status"], 202);
    assert_eq!(http["trackingId"], tracking.as_str());
    assert_eq!(http["caller"], ME);
    assert_eq!(http["requestBody"]["dialNumber"], "1002", "the body, as sent");
    let authorization = http["requestHeaders"]["authorization"].as_str().expect("authorization");
    assert!(
        authorization.starts_with("Bearer agent2…") && authorization.ends_with(&format!("({ME})")),
        "{authorization}"
    );
    assert!(http["latencyUs"].is_u64());
    assert_eq!(frame["direction"], "out");
    assert_eq!(frame["label"], "StationLogin/AgentStationLoginSuccess");
    assert_eq!(frame["message"]["trackingId"], tracking.as_str());
    assert_eq!(frame["email"], ME);
    assert!(frame["connection"].is_u64());
    assert_eq!(webhook["eventType"], "agent:login");
    assert_eq!(webhook["status"], 200);
    assert_eq!(webhook["attempt"], 1);
    assert_eq!(webhook["eventSeq"], seq(&event));
    assert_eq!(webhook["body"]["data"]["agentId"], app.user_id(ME));

    let everything = app.get("/__admin/journal").send().await.expect(200, None);
    let text = String::from_utf8_lossy(&everything.raw);
    assert!(!text.contains(SECRET), "the subscription's secret never appears");
    assert!(!text.contains(&token) && !text.contains(&admin), "no token appears whole");
    assert!(text.contains("[redacted]"), "the secret's place is marked");
}

#[tokio::test]
async fn the_journal_pages_forward_from_a_seq_filters_by_kind_and_refuses_bad_queries() {
    let app = TestApp::new();
    let admin = app.world_token("admin-full");
    for _ in 0..3 {
        app.get("/v1/subscriptions").bearer(&admin).send().await.expect(200, None);
    }
    app.get("/__admin/health").send().await.expect(200, None);
    let all = journal(&app, "?kind=http").await;
    let http = entries(&all);
    assert_eq!(http.len(), 3, "the mock's own calls are not journaled");
    let first = http[0]["seq"].as_u64().expect("seq");
    let page = entries(&journal(&app, &format!("?kind=http&since={first}&limit=1")).await);
    assert_eq!(page.len(), 1);
    assert_eq!(page[0]["seq"], http[1]["seq"], "the next one after `since`");
    let newest = entries(&journal(&app, "?kind=http&limit=1").await);
    assert_eq!(newest[0]["seq"], http[2]["seq"], "without `since`, the newest");
    for bad in ["?kind=email", "?since=x", "?limit=-1"] {
        let reply = app.get(&format!("/__admin/journal{bad}")).send().await.expect(400, None);
        assert!(!reply.diagnostic().is_empty());
    }
}

#[tokio::test]
async fn the_journal_is_bounded_by_bytes_and_counts_what_rolled_out() {
    let options = StateOptions { journal_bytes: 8 * 1024, ..StateOptions::default() };
    let app = TestApp::with_options(wxcc_mock::World::default_world(), options);
    let admin = app.world_token("admin-full");
    for _ in 0..40 {
        app.get("/v1/event-types").bearer(&admin).send().await.expect(200, None);
    }
    let page = journal(&app, "").await;
    assert!(page["usedBytes"].as_u64().expect("used") <= 8 * 1024, "{page}");
    assert!(page["evicted"].as_u64().expect("evicted") > 0);
    let kept = entries(&page).len() as u64;
    assert_eq!(page["evicted"].as_u64().expect("evicted") + kept, page["lastSeq"].as_u64().expect("last"));
}

#[tokio::test]
async fn rejections_are_journaled_with_their_diagnostic_and_a_token_is_shown_only_as_its_owner() {
    let app = TestApp::new();
    let agent = app.world_token("forum-case-agent1");
    let body = json!({"name": "aaaa", "eventTypes": ["agent:login"], "destinationUrl": "https://x.example/h", "secret": "12345"});
    app.post("/v1/subscriptions").bearer(&agent).json(&body).send().await.expect(403, None);
    app.get("/v1/subscriptions").bearer("nope_P0A1_x").send().await.expect(401, None);
    let http = entries(&journal(&app, "?kind=http").await);
    assert!(
        http[0]["diagnostic"]
            .as_str()
            .expect("diagnostic")
            .contains("needs the scope cjp:config_write and an administrator role")
    );
    assert_eq!(http[0]["caller"], "agent1@wxcc.example", "a refused caller is still named");
    assert_eq!(http[0]["requestBody"]["secret"], "[redacted]");
    assert_eq!(http[1]["requestHeaders"]["authorization"], "Bearer nope_P… (unknown token)");
    assert!(http[1].get("caller").is_none());
}

/// Reads Server-Sent Events from a streaming response: `(id, event, data)`.
struct Events {
    response: reqwest::Response,
    buffer: String,
}

impl Events {
    async fn next(&mut self) -> (u64, String, Value) {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let field = |name: &str| {
                    block.lines().find_map(|l| l.strip_prefix(&format!("{name}:")).map(|v| v.trim().to_owned()))
                };
                let (Some(id), Some(event), Some(data)) = (field("id"), field("event"), field("data")) else {
                    continue;
                };
                return (id.parse().expect("id"), event, serde_json::from_str(&data).expect("data"));
            }
            let chunk = tokio::time::timeout(wxcc_contract_tests::ws::PATIENCE, self.response.chunk())
                .await
                .expect("an event in time")
                .expect("the stream reads")
                .expect("the stream stays open");
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

#[tokio::test]
async fn the_stream_sends_new_entries_live_and_replays_from_a_seq() {
    let app = TestApp::spawn().await;
    let base = app.base_url().expect("socket").to_owned();
    let client = reqwest::Client::new();
    let admin = app.world_token("admin-full");
    app.get("/v1/event-types").bearer(&admin).send().await.expect(200, None);
    let before = journal(&app, "?limit=1").await["lastSeq"].as_u64().expect("lastSeq");

    let response = client.get(format!("{base}/__admin/journal/stream?kind=http")).send().await.expect("stream");
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut live = Events { response, buffer: String::new() };
    let reply = app.get("/v1/subscriptions").bearer(&admin).send().await.expect(200, None);
    let (id, event, data) = live.next().await;
    assert_eq!(event, "http");
    assert_eq!(data["seq"], id);
    assert!(id > before, "only new entries without since");
    assert_eq!(data["trackingId"], reply.tracking_id());

    let response =
        client.get(format!("{base}/__admin/journal/stream?since={}", before - 1)).send().await.expect("stream");
    let mut replay = Events { response, buffer: String::new() };
    let (first, _, data) = replay.next().await;
    assert_eq!(first, before, "a replay starts right after since");
    assert_eq!(data["path"], "/v1/event-types");
    client
        .get(format!("{base}/__admin/journal/stream?kind=nope"))
        .send()
        .await
        .map(|r| assert_eq!(r.status(), 400))
        .expect("answer");
}

#[tokio::test]
async fn an_exchange_keeps_its_path_and_query_and_both_sides_headers() {
    let app = TestApp::new();
    let token = app.world_token("admin-full");
    let reply =
        app.get("/v1/subscriptions?page=0").bearer(&token).header("x-client", "crm/1.2").send().await.expect(200, None);
    let all = entries(&journal(&app, "?kind=http").await);
    let http = all.last().expect("the exchange");
    assert_eq!(http["path"], "/v1/subscriptions?page=0");
    assert_eq!(http["requestHeaders"]["x-client"], "crm/1.2");
    let authorization = http["requestHeaders"]["authorization"].as_str().unwrap_or_default();
    assert!(
        authorization.starts_with("Bearer admin-") && authorization.ends_with("(admin@wxcc.example)"),
        "{authorization}"
    );
    assert_eq!(http["responseHeaders"]["trackingid"], reply.tracking_id());
    assert_eq!(http["responseHeaders"]["content-type"], "application/json");
    assert_eq!(http["responseBody"]["meta"]["subscriptionCount"], 0);
}

#[tokio::test]
async fn the_export_is_a_bundle_of_the_wxcc_exchanges_timed_from_the_first_with_tokens_named_never_shown() {
    let app = TestApp::new();
    let admin = app.world_token("admin-full");
    app.get("/v1/event-types").bearer(&admin).send().await.expect(200, None);
    app.advance(1_500).await;
    let minted = app
        .post("/__admin/tokens")
        .json(&json!({"email": "agent2@wxcc.example", "scopes": ["cjp:user"]}))
        .send()
        .await
        .expect(201, None);
    let minted = minted.body["accessToken"].as_str().expect("token").to_owned();
    app.put("/v1/agents/session/state").bearer(&minted).json(&json!({"state": "Available"})).send().await;
    app.get("/v1/nowhere").send().await.expect(404, None);
    let exported = app.get("/__admin/journal/export").send().await.expect(200, Some(wxcc_schemas::SchemaId::Bundle));
    let text = exported.body.to_string();
    assert!(!text.contains(&admin) && !text.contains(&minted), "no token shown: {text}");
    let exchanges = exported.body["exchanges"].as_array().expect("exchanges");
    assert_eq!(exchanges.len(), 3, "WxCC exchanges only, not /__admin: {text}");
    assert_eq!(
        (exchanges[0]["at"].as_u64(), exchanges[0]["token"].as_str(), exchanges[0]["status"].as_u64()),
        (Some(0), Some("admin-full"), Some(200))
    );
    assert_eq!(exchanges[1]["at"], 1_500);
    assert_eq!(exchanges[1]["tokenOwner"], "agent2@wxcc.example", "a minted token is no world token");
    assert_eq!(exchanges[1]["requestBody"], json!({"state": "Available"}));
    assert_eq!((exchanges[2]["path"].as_str(), exchanges[2].get("token")), (Some("/v1/nowhere"), None));
}

#[tokio::test]
async fn the_export_carries_the_websocket_messages_as_frames() {
    let app = TestApp::spawn().await;
    let agent = app.world_token("agent2");
    crate::log_in(&app, &agent, "agent2@wxcc.example", "1002").await;
    let mut desk = Ws::open(&app, &agent, &json!({"isKeepAliveEnabled": false, "clientType": "Exported"})).await;
    app.put("/v1/agents/session/state")
        .bearer(&agent)
        .json(&json!({"state": "Available", "auxCodeId": "0"}))
        .send()
        .await;
    desk.next().await;
    let exported = app.get("/__admin/journal/export").send().await.expect(200, Some(wxcc_schemas::SchemaId::Bundle));
    let frames = exported.body["frames"].as_array().expect("frames");
    let types: Vec<&str> = frames.iter().filter_map(|f| f["message"]["type"].as_str()).collect();
    assert_eq!(types, ["Welcome", "AgentStateChange"], "{frames:?}");
    assert_eq!(frames[0]["direction"], "out");
    assert!(frames[0]["connection"].as_str().is_some_and(|c| c.starts_with("agent2@wxcc.example #")), "{frames:?}");
}
