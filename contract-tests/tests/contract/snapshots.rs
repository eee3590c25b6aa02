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

/// Replaces every id the run made up (tasks, sessions, tracking ids, webhook ids) with a label
/// numbered by first appearance, in keys and values; the world's own ids stay (they are fixed),
/// and so do times (the test clock is virtual, so they are fixed too).
struct Redactor {
    world: std::collections::HashSet<String>,
    labels: std::collections::HashMap<String, String>,
}

impl Redactor {
    fn new(app: &TestApp) -> Redactor {
        fn strings(v: &Value, out: &mut std::collections::HashSet<String>) {
            match v {
                Value::String(s) => {
                    out.insert(s.clone());
                }
                Value::Array(items) => items.iter().for_each(|i| strings(i, out)),
                Value::Object(map) => map.values().for_each(|i| strings(i, out)),
                _ => {}
            }
        }
        let mut world = std::collections::HashSet::new();
        strings(&serde_json::to_value(app.world()).expect("world"), &mut world);
        Redactor { world, labels: std::collections::HashMap::new() }
    }

    fn is_uuid(s: &str) -> bool {
        s.len() == 36
            && s.char_indices()
                .all(|(i, c)| if [8, 13, 18, 23].contains(&i) { c == '-' } else { c.is_ascii_hexdigit() })
    }

    fn text(&mut self, s: &str) -> String {
        let mut out = String::new();
        let mut rest = s;
        while rest.len() >= 36 {
            let found = (0..=rest.len() - 36).find(|&i| {
                rest.is_char_boundary(i) && rest.is_char_boundary(i + 36) && Redactor::is_uuid(&rest[i..i + 36])
            });
            let Some(i) = found else { break };
            let id = &rest[i..i + 36];
            out.push_str(&rest[..i]);
            if self.world.contains(id) {
                out.push_str(id);
            } else {
                let n = self.labels.len() + 1;
                out.push_str(self.labels.entry(id.to_owned()).or_insert_with(|| format!("[id{n}]")));
            }
            rest = &rest[i + 36..];
        }
        out.push_str(rest);
        out
    }

    fn value(&mut self, v: &Value) -> Value {
        match v {
            Value::String(s) => Value::String(self.text(s)),
            Value::Array(items) => Value::Array(items.iter().map(|i| self.value(i)).collect()),
            Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (self.text(k), self.value(v))).collect()),
            other => other.clone(),
        }
    }
}

/// One agent's desk, in-process: the messages the hub sends them.
fn desk(app: &TestApp, email: &str) -> tokio::sync::mpsc::Receiver<wxcc_mock::notifications::Outgoing> {
    app.hub_connection(email, 256)
}

fn drained(rx: &mut tokio::sync::mpsc::Receiver<wxcc_mock::notifications::Outgoing>) -> Vec<Value> {
    let mut got = Vec::new();
    while let Ok(wxcc_mock::notifications::Outgoing::Text(text)) = rx.try_recv() {
        got.push(serde_json::from_str(text.as_str()).expect("json"));
    }
    got
}

#[tokio::test]
async fn task_message_sequences() {
    use crate::tasks::{aux_code, queue, team};
    let transport = wxcc_contract_tests::webhooks::RecordingTransport::new();
    let options = wxcc_mock::state::StateOptions {
        delivery: wxcc_mock::delivery::DeliveryConfig { retries: 0, ..Default::default() },
        transport: transport.clone(),
        ..Default::default()
    };
    let app = TestApp::with_options(wxcc_mock::World::default_world(), options);
    let types =
        ["task:new", "task:parked", "task:connect", "task:connected", "task:on-hold", "task:hold-done", "task:ended"];
    let sub = json!({"name": "tasks", "eventTypes": types, "destinationUrl": "https://crm.example.com/hook", "resourceVersion": "task:1.0.0"});
    app.post("/v2/subscriptions").bearer(&app.world_token("admin-full")).json(&sub).send().await.expect(201, None);
    let me = "agent2@wxcc.example";
    let token = app.token(me, &["cjp:user"]);
    let mut rx = desk(&app, me);
    let login =
        json!({"dialNumber": "1002", "teamId": team(&app, "Support"), "roles": ["agent"], "deviceType": "EXTENSION"});
    app.post("/v1/agents/login").bearer(&token).json(&login).send().await.expect(202, None);
    let available = json!({"state": "Available", "auxCodeId": "0"});
    app.put("/v1/agents/session/state").bearer(&token).json(&available).send().await.expect(202, None);
    drained(&mut rx);

    // A call: offered, answered on the phone, held, resumed, ended by the agent, wrapped up.
    let body = json!({"mediaType": "telephony", "queueId": queue(&app, "Support Voice"), "customerName": "Ada", "cad": {"accountId": "A-1"}});
    let task = app.post("/__admin/tasks").json(&body).send().await.expect(201, None).body;
    let id = task["taskId"].as_str().expect("id").to_owned();
    app.post(&format!("/__admin/tasks/{id}/answer")).json(&json!({})).send().await.expect(200, None);
    for action in ["hold", "unhold"] {
        let path = format!("/v1/tasks/{id}/{action}");
        app.post(&path).bearer(&token).json(&json!({"mediaResourceId": id})).send().await.expect(202, None);
    }
    app.post(&format!("/v1/tasks/{id}/end")).bearer(&token).send().await.expect(202, None);
    let wrapup = json!({"wrapUpReason": "Resolved", "auxCodeId": aux_code(&app, "Resolved")});
    app.post(&format!("/v1/tasks/{id}/wrapup")).bearer(&token).json(&wrapup).send().await.expect(202, None);
    let mut redact = Redactor::new(&app);
    let call = redact.value(&Value::Array(drained(&mut rx)));
    insta::assert_json_snapshot!("task_call_flow_messages", call);

    app.settled().await;
    let hooks: Vec<Value> = transport.calls().iter().map(|c| c.body.clone()).collect();
    insta::assert_json_snapshot!("task_call_flow_webhooks", redact.value(&Value::Array(hooks)));

    // A chat that rings out: RONA, the agent goes Idle with the RONA code.
    let chat = app.post("/__admin/tasks").json(&json!({"mediaType": "chat"})).send().await.expect(201, None).body;
    app.advance(30_000).await;
    let rona = redact.value(&Value::Array(drained(&mut rx)));
    insta::assert_json_snapshot!("task_chat_rona_messages", rona);
    assert_eq!(chat["state"], "offered");
}
