//! Scenario files as tests: each `fixtures/scenarios/*.json` loads into a mock on a socket with
//! `POST /__admin/scenario`, and its `expect` list is played as a client would: the virtual clock
//! is advanced to each check's `at`, requests go over HTTP, desktops connect the real
//! notification websocket. Webhooks go to a recording transport that answers 200. Adding a file
//! adds a test; the checker here is the test's own, not the mock's.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use wxcc_contract_tests::TestApp;
use wxcc_contract_tests::webhooks::RecordingTransport;
use wxcc_contract_tests::ws::{Frame, Ws};
use wxcc_mock::state::StateOptions;

/// Whether `actual` holds `expected`: every field of an object given must match; an array's
/// expected items must appear in that order (others may come between); anything else is equal.
/// On a mismatch, where and what.
fn holds(expected: &Value, actual: &Value, at: &str) -> Result<(), String> {
    match (expected, actual) {
        (Value::Object(want), Value::Object(have)) => {
            for (key, value) in want {
                let here = format!("{at}/{key}");
                match have.get(key) {
                    Some(found) => holds(value, found, &here)?,
                    None if value.is_null() => {}
                    None => return Err(format!("{here}: missing (want {value})")),
                }
            }
            Ok(())
        }
        (Value::Array(want), Value::Array(have)) => {
            let mut from = 0;
            for (i, item) in want.iter().enumerate() {
                let found = have[from..].iter().position(|h| holds(item, h, "").is_ok());
                match found {
                    Some(offset) => from += offset + 1,
                    None => return Err(format!("{at}: no item after the ones matched before holds {item} (item {i})")),
                }
            }
            Ok(())
        }
        _ if expected == actual => Ok(()),
        _ => Err(format!("{at}: want {expected}, have {actual}")),
    }
}

#[test]
fn holds_matches_fields_given_and_array_items_in_order() {
    let have = json!({"a": 1, "b": [{"x": 1, "y": 2}, {"x": 2}, {"x": 3}], "c": "z"});
    assert!(holds(&json!({"a": 1, "b": [{"x": 1}, {"x": 3}]}), &have, "").is_ok());
    assert!(holds(&json!({"b": [{"x": 3}, {"x": 1}]}), &have, "").is_err(), "order matters");
    assert!(holds(&json!({"a": 2}), &have, "").is_err());
    assert!(holds(&json!({"d": 1}), &have, "").is_err(), "a missing field");
    assert!(holds(&json!({"d": null}), &have, "").is_ok(), "null: absent");
    assert!(holds(&json!({"b": [{"x": 9}]}), &have, "").unwrap_err().contains("/b"));
}

fn offset_ms(check: &Value) -> i64 {
    let at = &check["at"];
    let ms = match at {
        Value::Number(n) => n.as_u64().expect("whole ms"),
        Value::String(text) => wxcc_mock::scenario::parse_offset(text).expect("an offset"),
        _ => 0,
    };
    i64::try_from(ms).expect("ms")
}

/// A client's view: the vars, what its requests saved, its desktops.
struct Client<'a> {
    app: &'a TestApp,
    vars: HashMap<String, String>,
    saved: HashMap<String, Value>,
    desks: HashMap<String, Ws>,
}

impl Client<'_> {
    fn expand(&self, text: &str) -> String {
        let mut out = text.to_owned();
        while let Some(start) = out.find("{{") {
            let end = out[start..].find("}}").expect("a closed {{") + start;
            let inner = out[start + 2..end].trim().to_owned();
            let (name, path) = inner.split_once('.').unwrap_or((&inner, ""));
            let value = match self.vars.get(name) {
                Some(var) => var.clone(),
                None => {
                    let saved = self.saved.get(name).unwrap_or_else(|| panic!("nothing saved as {name}"));
                    let pointer = if path.is_empty() { String::new() } else { format!("/{}", path.replace('.', "/")) };
                    match saved.pointer(&pointer).unwrap_or_else(|| panic!("{name} has nothing at {path}")) {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    }
                }
            };
            out.replace_range(start..end + 2, &value);
        }
        out
    }

    fn expand_value(&self, value: &Value) -> Value {
        match value {
            Value::String(s) => Value::String(self.expand(s)),
            Value::Array(items) => Value::Array(items.iter().map(|v| self.expand_value(v)).collect()),
            Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), self.expand_value(v))).collect()),
            other => other.clone(),
        }
    }

    fn token(&self, given: &str) -> String {
        if given.contains("{{") { self.expand(given) } else { self.app.world_token(given) }
    }

    async fn check(&mut self, i: usize, check: &Value) -> Result<(), String> {
        let what = format!("expect[{i}] {}", check.get("note").and_then(Value::as_str).unwrap_or_default());
        if let Some(request) = check.get("request") {
            let method = request["method"].as_str().expect("method");
            let path = self.expand(request["path"].as_str().expect("path"));
            let mut built = self.app.request(method, &path);
            if let Some(token) = request["token"].as_str() {
                built = built.bearer(&self.token(token));
            }
            for (name, value) in request["headers"].as_object().into_iter().flatten() {
                built = built.header(name, &self.expand(value.as_str().unwrap_or_default()));
            }
            if let Some(body) = request.get("body") {
                built = built.json(&self.expand_value(body));
            }
            let reply = built.send().await;
            let want = check["status"].as_u64().expect("status");
            if u64::from(reply.status) != want {
                return Err(format!(
                    "{what}: {method} {path} answered {}, not {want}: {} {}",
                    reply.status,
                    reply.diagnostic(),
                    reply.body
                ));
            }
            for (name, value) in check["headers"].as_object().into_iter().flatten() {
                let have = reply.headers.get(&name.to_ascii_lowercase());
                match (value.as_str(), have) {
                    (None, None) => {}
                    (Some(want), Some(have)) if have.contains(want) => {}
                    (want, have) => return Err(format!("{what}: header {name}: want {want:?} in it, have {have:?}")),
                }
            }
            if let Some(body) = check.get("body") {
                holds(&self.expand_value(body), &reply.body, "").map_err(|e| {
                    let mut have = reply.body.to_string();
                    have.truncate(4000);
                    format!("{what}: body{e}\n  the body: {have}")
                })?;
            }
            if let Some(name) = request["as"].as_str() {
                self.saved.insert(name.to_owned(), reply.body);
            }
        } else if let Some(token) = check["connect"].as_str() {
            let body = check
                .get("body")
                .cloned()
                .unwrap_or_else(|| json!({"isKeepAliveEnabled": false, "clientType": "WxccMockScenario"}));
            let desk = Ws::open(self.app, &self.token(token), &body).await;
            self.desks.insert(check["as"].as_str().expect("as").to_owned(), desk);
        } else if let Some(name) = check["receive"].as_str() {
            let desk = self.desks.get_mut(name).expect("a connected desk");
            let message = desk.next().await;
            let want = check["type"].as_str().expect("type");
            if message["type"] != want && message["data"]["type"] != want {
                return Err(format!("{what}: {name} received {}, not {want}: {message}", message["type"]));
            }
            if let Some(data) = check.get("data") {
                holds(&self.expand_value(data), &message["data"], "").map_err(|e| format!("{what}: data{e}"))?;
            }
        } else if let Some(name) = check["closed"].as_str() {
            let desk = self.desks.get_mut(name).expect("a connected desk");
            let code = loop {
                match desk.frame().await {
                    Frame::Json(v) if v.get("keepalive").is_some() => {}
                    Frame::Json(v) => return Err(format!("{what}: {name} received {v}, not a close")),
                    Frame::Closed(code, _) => break code,
                }
            };
            let want = check["code"].as_u64().expect("code");
            if u64::from(code) != want {
                return Err(format!("{what}: {name} closed with {code}, not {want}"));
            }
        }
        Ok(())
    }
}

/// Loads the scenario into a fresh mock and plays its checks; what failed, if anything.
async fn play(path: &Path) -> Result<usize, String> {
    let scenario: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("read")).expect("JSON");
    let transport = RecordingTransport::new();
    let app = TestApp::spawn_with(StateOptions { transport, ..StateOptions::default() }).await;
    let loaded = app.post("/__admin/scenario").json(&scenario).send().await;
    if loaded.status != 200 {
        return Err(format!("POST /__admin/scenario answered {}: {}", loaded.status, loaded.diagnostic()));
    }
    assert_eq!(loaded.body["name"], scenario["name"]);
    let start = loaded.body["loadedAt"].as_i64().expect("loadedAt");
    let mut client = Client {
        app: &app,
        vars: scenario["vars"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
            .collect(),
        saved: HashMap::new(),
        desks: HashMap::new(),
    };
    let checks = scenario["expect"].as_array().cloned().unwrap_or_default();
    for (i, check) in checks.iter().enumerate() {
        let due = start + offset_ms(check);
        let now = app.clock().now_ms();
        if due > now {
            app.advance(due - now).await;
        }
        app.settled().await;
        client.check(i, check).await?;
    }
    let status = app.get("/__admin/scenario").send().await.expect(200, None).body;
    if status["script"]["failed"] != 0 {
        return Err(format!("script steps failed: {}", status["script"]["failures"]));
    }
    Ok(checks.len())
}

fn scenario_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("fixtures/scenarios")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_shipped_scenario_loads_and_a_client_sees_what_it_claims() {
    let files = scenario_files();
    assert!(files.len() >= 9, "fixtures/scenarios has {} files", files.len());
    let mut failed = Vec::new();
    for file in &files {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("rt");
        match runtime.block_on(play(file)) {
            Ok(checks) => assert!(checks >= 2, "{}: a scenario claims something ({checks} checks)", file.display()),
            Err(why) => failed.push(format!("{}: {why}", file.display())),
        }
    }
    assert!(failed.is_empty(), "\n{}", failed.join("\n"));
}

#[test]
fn every_shipped_scenario_passes_its_check_against_the_embedded_world() {
    for file in scenario_files() {
        wxcc_mock::scenario::Scenario::from_file(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    }
}

mod admin_scenario {
    use serde_json::{Value, json};
    use wxcc_contract_tests::TestApp;

    fn inject_at(at: &str) -> Value {
        json!({"at": at, "method": "POST", "path": "/__admin/tasks", "body": {"mediaType": "chat"}, "status": 201})
    }

    #[tokio::test]
    async fn a_scenario_for_another_clock_is_a_409_and_a_wrong_one_a_400_that_names_each_problem() {
        let app = TestApp::new();
        let system = json!({"name": "wall", "clock": {"mode": "system"}});
        let refused = app.post("/__admin/scenario").json(&system).send().await.expect(409, None);
        assert!(refused.diagnostic().contains("--clock system"), "{}", refused.diagnostic());

        let wrong = json!({"name": "wrong", "setup": [
            {"method": "GET", "path": "/v1/nowhere"},
            {"method": "GET", "path": "/v1/subscriptions", "token": "nobody"}
        ]});
        let refused = app.post("/__admin/scenario").json(&wrong).send().await.expect(400, None);
        let said = refused.messages().join(" ");
        assert!(said.contains("/setup/0: the mock serves no GET /v1/nowhere"), "{said}");
        assert!(said.contains("/setup/1/token: \"nobody\" is not one of the world's tokens"), "{said}");
        let by_path = json!({"name": "by-path", "world": "../world.json"});
        let refused = app.post("/__admin/scenario").json(&by_path).send().await.expect(400, None);
        assert!(refused.messages().join(" ").contains("by path"), "{:?}", refused.messages());
        assert_eq!(app.get("/__admin/scenario").send().await.expect(200, None).body, json!({"loaded": false}));
    }

    #[tokio::test]
    async fn a_setup_request_that_does_not_answer_its_status_stops_the_load_with_its_answer() {
        let app = TestApp::new();
        let scenario = json!({"name": "forbidden", "setup": [{"method": "POST", "path": "/v1/subscriptions", "token": "forum-case-agent1",
            "body": {"name": "nnnn", "eventTypes": ["agent:login"], "destinationUrl": "https://hooks.example.com/a", "secret": "0123456789abcdef0123456789abcdef"}}]});
        let refused = app.post("/__admin/scenario").json(&scenario).send().await.expect(400, None);
        let said = refused.messages().join(" ");
        assert!(said.contains("setup step 0: POST /v1/subscriptions answered 403, not below 400"), "{said}");
    }

    #[tokio::test]
    async fn the_script_runs_on_the_clock_and_says_how_far_it_got_and_which_steps_failed() {
        let app = TestApp::new();
        let scenario = json!({"name": "two-chats", "seed": 40, "rateLimit": "100/min",
            "faults": [{"action": {"kind": "status", "status": 503}, "match": {"path": "/v1/nothing"}}],
            "script": [inject_at("10s"), inject_at("5s"),
                {"at": "10s", "method": "GET", "path": "/__admin/tasks/no-such-task", "status": 200}]});
        let loaded = app.post("/__admin/scenario").json(&scenario).send().await.expect(200, None).body;
        let start = app.clock().now_ms();
        assert_eq!(
            loaded["script"],
            json!({"steps": 3, "done": 0, "nextAt": start + 5_000, "failed": 0, "failures": []})
        );
        assert_eq!(loaded["rateLimit"], "100/min");
        let rules = app.get("/__admin/faults").send().await.expect(200, None).body;
        assert_eq!(rules["faults"][0]["seed"], 40, "the scenario's seed, for a rule without one: {rules}");

        app.advance(4_999).await;
        assert_eq!(app.state().task_count(), 0);
        app.advance(1).await;
        assert_eq!(app.state().task_count(), 1, "the 5 s step, though written second");
        app.advance(5_000).await;
        assert_eq!(app.state().task_count(), 2);
        let status = app.get("/__admin/scenario").send().await.expect(200, None).body;
        assert_eq!(status["script"]["done"], 3);
        assert_eq!(status["script"]["failed"], 1);
        let failure = status["script"]["failures"][0].as_str().unwrap_or_default();
        assert!(failure.contains("GET /__admin/tasks/no-such-task answered 404, not 200"), "{failure}");
    }

    #[tokio::test]
    async fn a_scenario_sets_the_virtual_clock_where_it_says_and_takes_an_inline_world_only_if_it_is_the_mocks() {
        let app = TestApp::new();
        let start = 1_800_000_000_000_i64;
        let world = serde_json::to_value(app.world()).expect("world");
        let scenario = json!({"name": "at-start", "world": world, "clock": {"mode": "virtual", "start": start}});
        let loaded = app.post("/__admin/scenario").json(&scenario).send().await.expect(200, None).body;
        assert_eq!(loaded["loadedAt"], start);
        assert_eq!(app.clock().now_ms(), start);
        let mut other = serde_json::to_value(app.world()).expect("world");
        other["orgs"][0]["name"] = json!("Another Org");
        let refused = app.post("/__admin/scenario").json(&json!({"name": "elsewhere", "world": other})).send().await;
        let refused = refused.expect(409, None);
        assert!(refused.diagnostic().contains("serve --scenario"), "{}", refused.diagnostic());
    }

    #[tokio::test]
    async fn a_scenario_may_be_larger_than_other_bodies_up_to_its_own_limit() {
        let app = TestApp::new();
        let step =
            |note: usize| json!({"at": "1h", "method": "GET", "path": "/__admin/health", "note": "n".repeat(note)});
        let big = json!({"name": "big", "script": (0..900).map(|_| step(400)).collect::<Vec<_>>()});
        assert!(big.to_string().len() > 256 * 1024, "past the usual body limit");
        app.post("/__admin/scenario").json(&big).send().await.expect(200, None);
        let huge = json!({"name": "huge", "script": (0..900).map(|_| step(1000)).collect::<Vec<_>>(),
            "setup": (0..300).map(|_| json!({"method": "GET", "path": "/__admin/health", "note": "n".repeat(1000)})).collect::<Vec<_>>()});
        assert!(huge.to_string().len() > 1024 * 1024, "past the scenario's limit");
        app.post("/__admin/scenario").json(&huge).send().await.expect(413, None);
        app.post("/__admin/faults").raw(vec![b' '; 300 * 1024], "application/json").send().await.expect(413, None);
    }

    #[tokio::test]
    async fn a_reset_stops_the_script_and_lifts_the_scenario_rate_limit() {
        let app = TestApp::new();
        let scenario = json!({"name": "later", "rateLimit": "1/min", "script": [inject_at("10s")]});
        app.post("/__admin/scenario").json(&scenario).send().await.expect(200, None);
        let token = app.world_token("admin-read-only");
        app.get("/v1/event-types").bearer(&token).send().await.expect(200, None);
        app.get("/v1/event-types").bearer(&token).send().await.expect(429, None);
        app.post("/__admin/reset").send().await.expect(200, None);
        app.get("/v1/event-types").bearer(&token).send().await.expect(200, None);
        app.get("/v1/event-types").bearer(&token).send().await.expect(200, None);
        app.advance(20_000).await;
        assert_eq!(app.state().task_count(), 0, "the script stopped with the reset");
        assert_eq!(app.get("/__admin/scenario").send().await.expect(200, None).body, json!({"loaded": false}));
    }
}
