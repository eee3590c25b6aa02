//! The `wxcc-mock` binary: `serve` starts, answers, and stops cleanly on SIGTERM; `validate`
//! reports pointer-precise violations with exit codes.

use std::io::{BufRead, BufReader, Write};

use serde_json::json;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_wxcc-mock"))
}

/// A running `wxcc-mock` subcommand, with its output lines on channels.
struct Running {
    child: Child,
    stderr: mpsc::Receiver<String>,
    stdout: mpsc::Receiver<String>,
}

fn lines(reader: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(reader).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits for a line containing `marker` and returns what follows it.
fn wait_for(lines: &mpsc::Receiver<String>, marker: &str) -> String {
    let (line, _) = wait_for_line(lines, marker);
    line.split(marker).nth(1).unwrap_or_default().to_owned()
}

/// Waits for a line containing `marker`; returns it and the lines before it.
fn wait_for_line(lines: &mpsc::Receiver<String>, marker: &str) -> (String, Vec<String>) {
    let mut before = Vec::new();
    loop {
        let line = lines
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("no line with {marker:?} in time; saw {before:#?}"));
        if line.contains(marker) {
            return (line, before);
        }
        before.push(line);
    }
}

fn spawn(args: &[&str], env: &[(&str, &str)]) -> Running {
    let mut command = binary();
    command.args(args).stderr(Stdio::piped()).stdout(Stdio::piped()).env_remove("RUST_LOG");
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("spawn wxcc-mock");
    let stderr = lines(child.stderr.take().expect("stderr"));
    let stdout = lines(child.stdout.take().expect("stdout"));
    Running { child, stderr, stdout }
}

/// Starts `serve` on port 0 and returns it with the address it logged.
fn start(extra: &[&str], env: &[(&str, &str)]) -> (Child, String, mpsc::Receiver<String>) {
    let mut args = vec!["serve", "--port", "0"];
    args.extend_from_slice(extra);
    let running = spawn(&args, env);
    let rest = wait_for(&running.stderr, "listening on http://");
    let addr = rest.split_whitespace().next().expect("address").to_owned();
    (running.child, addr, running.stderr)
}

fn stop(mut child: Child) -> std::process::ExitStatus {
    let pid = child.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().expect("kill");
    assert!(killed.success());
    child.wait().expect("wait")
}

#[tokio::test]
async fn serve_logs_its_address_answers_and_stops_cleanly_on_sigterm() {
    let (child, addr, lines) = start(&[], &[]);
    let health = reqwest::get(format!("http://{addr}/__admin/health")).await.expect("health");
    assert_eq!(health.status().as_u16(), 200);
    let status = stop(child);
    assert!(status.success(), "exit status {status:?}");
    // The line may still be on its way through the pipe: wait for it, not for a fixed time.
    wait_for(&lines, "shut down");
}

#[tokio::test]
async fn serve_keeps_answering_when_its_console_goes_away() {
    let (child, addr, lines) = start(&[], &[]);
    drop(lines);
    let (org, _) = world();
    for _ in 0..3 {
        let reply = reqwest::Client::new()
            .get(format!("http://{addr}/v1/subscriptions"))
            .bearer_auth(format!("admin-full_P0A1_{org}"))
            .send()
            .await
            .expect("the mock answers");
        assert_eq!(reply.status().as_u16(), 200);
    }
    let _ = stop(child);
}

#[tokio::test]
async fn serve_loads_another_world_from_a_file_named_by_an_env_var() {
    let mut world: serde_json::Value =
        serde_json::from_str(include_str!("../../fixtures/world.json")).expect("world json");
    world["orgs"][0]["name"] = serde_json::json!("Renamed Org");
    let path = std::env::temp_dir().join(format!("wxcc-world-{}.json", std::process::id()));
    std::fs::write(&path, world.to_string()).expect("write world");
    let (child, addr, _) = start(&[], &[("WXCC_MOCK_WORLD", path.to_str().expect("utf-8 path"))]);
    let state: serde_json::Value =
        reqwest::get(format!("http://{addr}/__admin/state")).await.expect("state").json().await.expect("json");
    assert_eq!(state["orgs"][0]["name"], "Renamed Org");
    assert!(stop(child).success());
    let _ = std::fs::remove_file(path);
}

#[test]
fn serve_refuses_an_inconsistent_world_with_a_clear_message() {
    let path = std::env::temp_dir().join(format!("wxcc-bad-world-{}.json", std::process::id()));
    std::fs::write(&path, r#"{"orgs": [{"id": "not-a-uuid", "name": "x", "cluster": "P0A1", "users": []}]}"#)
        .expect("write");
    let out = binary().args(["serve", "--port", "0", "--world"]).arg(&path).output().expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not a uuid"), "{stderr}");
    // A document of the wrong shape names the place at fault, once.
    let (org, _) = world();
    let shaped =
        format!(r#"{{"orgs": [{{"id": "{org}", "name": "x", "cluster": "P0A1", "users": [{{"id": "u1"}}]}}]}}"#);
    std::fs::write(&path, shaped).expect("write");
    let out = binary().args(["serve", "--port", "0", "--world"]).arg(&path).output().expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("at orgs[0].users[0]: missing field"), "{stderr}");
    assert_eq!(stderr.matches("missing field").count(), 1, "the cause is said once: {stderr}");
    // A rate limit for a route the mock does not serve.
    let mut limited: serde_json::Value =
        serde_json::from_str(include_str!("../../fixtures/world.json")).expect("world json");
    limited["rateLimits"] = json!([{"route": "GET /v1/tasks/{id}", "perMinute": 5}]);
    std::fs::write(&path, limited.to_string()).expect("write");
    let out = binary().args(["serve", "--port", "0", "--world"]).arg(&path).output().expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("rateLimits[0]: the mock serves no route \"GET /v1/tasks/{id}\""), "{stderr}");
    let _ = std::fs::remove_file(path);
}

fn validate(schema: &str, document: &str) -> (i32, String) {
    let mut child = binary()
        .args(["validate", "--schema", schema, "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // The binary may exit before reading (unknown schema): a broken pipe is fine then.
    let _ = child.stdin.take().expect("stdin").write_all(document.as_bytes());
    let out = child.wait_with_output().expect("wait");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn validate_exits_0_for_a_valid_document() {
    let body = r#"{"name":"crm1","eventTypes":["agent:login"],"destinationUrl":"https://x.example/h"}"#;
    let (code, text) = validate("subscription-create-request", body);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("valid against subscription-create-request"), "{text}");
}

#[test]
fn validate_exits_1_and_names_each_pointer_for_an_invalid_document() {
    let body = r#"{"name":"crm","eventTypes":[],"destinationUrl":"https://x.example/h","secret":"12345"}"#;
    let (code, text) = validate("subscription-create-request", body);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("-: /secret: must be at least 32 characters [minLength]"), "{text}");
    assert!(text.contains("-: /name: must be at least 4 characters"), "{text}");
    assert!(text.contains("-: /eventTypes: must have at least 1 item"), "{text}");
}

#[test]
fn validate_exits_2_for_an_unknown_schema_or_a_non_json_file() {
    let (code, text) = validate("no-such-schema", "{}");
    assert_eq!(code, 2);
    assert!(text.contains("agent-login-request"), "lists the schemas: {text}");
    let (code, text) = validate("agent-login-request", "{oops");
    assert_eq!(code, 2);
    assert!(text.contains("not JSON"), "{text}");
}

#[tokio::test]
async fn the_readme_tour_shows_results_on_a_listener_and_signed_webhooks_at_a_receiver() {
    let (server, addr, _) = start(&[], &[]);
    let secret = "0123456789abcdef0123456789abcdef";
    let receiver = spawn(&["receive", "--port", "0", "--secret", secret], &[]);
    let hook = wait_for(&receiver.stderr, "receiving webhooks on ");
    let world: serde_json::Value = serde_json::from_str(include_str!("../../fixtures/world.json")).expect("world");
    let org = world["orgs"][0]["id"].as_str().expect("org id").to_owned();
    let team = world["orgs"][0]["teams"][1]["id"].as_str().expect("team").to_owned();
    let agent = format!("agent2_P0A1_{org}");
    let admin = format!("admin-full_P0A1_{org}");
    let base = format!("http://{addr}");
    let listener = spawn(&["listen", "--base-url", &base, "--token", &agent], &[]);
    wait_for(&listener.stderr, "connected to ");

    let client = reqwest::Client::new();
    let subscription = json!({
        "name": "tour", "eventTypes": ["agent:login"], "destinationUrl": format!("{}hook", hook.trim()), "secret": secret,
    });
    subscribe(&client, &base, &admin, &subscription).await;
    log_in_agent2(&client, &base, &agent, &team).await;

    let message = wait_for(&listener.stdout, "\"type\":\"StationLogin\"");
    assert!(message.contains("AgentStationLoginSuccess"), "{message}");
    let delivery = wait_for(&receiver.stdout, "agent:login ");
    assert!(delivery.contains("signature=valid"), "{delivery}");
    assert!(delivery.ends_with("-> 200"), "{delivery}");

    for child in [listener.child, receiver.child, server] {
        let _ = stop(child);
    }
}

/// Logs agent2 in on extension 1002 in `team`, through `base`, with `token`: must answer 202.
async fn log_in_agent2(client: &reqwest::Client, base: &str, token: &str, team: &str) {
    let login = json!({"dialNumber": "1002", "teamId": team, "roles": ["agent"], "deviceType": "EXTENSION"});
    let accepted =
        client.post(format!("{base}/v1/agents/login")).bearer_auth(token).json(&login).send().await.expect("login");
    assert_eq!(accepted.status().as_u16(), 202);
}

/// `POST /v1/subscriptions` with the admin token: must answer 201; returns the subscription's id.
async fn subscribe(client: &reqwest::Client, base: &str, admin: &str, body: &serde_json::Value) -> String {
    let created =
        client.post(format!("{base}/v1/subscriptions")).bearer_auth(admin).json(body).send().await.expect("create");
    assert_eq!(created.status().as_u16(), 201);
    let created: serde_json::Value = created.json().await.expect("json");
    created["data"]["id"].as_str().expect("id").to_owned()
}

/// `POST /__admin/tokens`: must answer 201; returns the token.
async fn mint(client: &reqwest::Client, base: &str, body: &serde_json::Value) -> String {
    let minted = client.post(format!("{base}/__admin/tokens")).json(body).send().await.expect("mint");
    assert_eq!(minted.status().as_u16(), 201);
    let minted: serde_json::Value = minted.json().await.expect("json");
    minted["accessToken"].as_str().expect("token").to_owned()
}

fn world() -> (String, String) {
    let world: serde_json::Value = serde_json::from_str(include_str!("../../fixtures/world.json")).expect("world");
    let org = world["orgs"][0]["id"].as_str().expect("org id").to_owned();
    let team = world["orgs"][0]["teams"][1]["id"].as_str().expect("team").to_owned();
    (org, team)
}

#[tokio::test]
async fn serve_prints_one_line_per_exchange_frame_webhook_and_event() {
    let (server, addr, lines) = start(&[], &[]);
    let (org, team) = world();
    let base = format!("http://{addr}");
    let client = reqwest::Client::new();
    let receiver = spawn(&["receive", "--port", "0"], &[]);
    let hook = wait_for(&receiver.stderr, "receiving webhooks on ");
    let forum = json!({"name": "aaaa", "eventTypes": ["agent:login"], "destinationUrl": "https://example.ngrok-free.app/webhook", "secret": "12345"});
    let refused = client
        .post(format!("{base}/v1/subscriptions"))
        .bearer_auth(format!("forum-case-agent1_P0A1_{org}"))
        .json(&forum)
        .send()
        .await
        .expect("create");
    assert_eq!(refused.status().as_u16(), 403);
    let (line, _) = wait_for_line(&lines, "POST /v1/subscriptions 403 NOTIFS_");
    assert!(line.contains("agent1@wxcc.example: agent1@wxcc.example may not create a subscription: it needs the scope cjp:config_write and an administrator role"), "{line}");

    let hooked =
        json!({"name": "console", "eventTypes": ["agent:login"], "destinationUrl": format!("{}hook", hook.trim())});
    let admin = format!("admin-full_P0A1_{org}");
    client.post(format!("{base}/v1/subscriptions")).bearer_auth(&admin).json(&hooked).send().await.expect("create");
    let agent = format!("agent2_P0A1_{org}");
    let login = json!({"dialNumber": "1002", "teamId": team, "roles": ["agent"], "deviceType": "EXTENSION"});
    client.post(format!("{base}/v1/agents/login")).bearer_auth(&agent).json(&login).send().await.expect("login");
    let (line, _) = wait_for_line(
        &lines,
        "ws → agent2@wxcc.example (no websocket connected) StationLogin/AgentStationLoginSuccess",
    );
    assert!(line.contains("INFO"), "{line}");
    let (line, _) = wait_for_line(&lines, "webhook agent:login → http://");
    assert!(line.ends_with("200 (attempt 1/6)"), "{line}");
    for child in [receiver.child, server] {
        let _ = stop(child);
    }
}

#[tokio::test]
async fn serve_logs_json_lines_with_log_format_json_and_only_warnings_with_quiet() {
    let (server, addr, lines) = start(&["--log-format", "json", "--quiet"], &[]);
    let (org, _) = world();
    let base = format!("http://{addr}");
    let client = reqwest::Client::new();
    let admin = format!("admin-full_P0A1_{org}");
    let listed = client.get(format!("{base}/v1/subscriptions")).bearer_auth(&admin).send().await.expect("list");
    assert_eq!(listed.status().as_u16(), 200);
    // A receiver that is not there: the failed delivery is a warning, which --quiet keeps.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/hook", closed.local_addr().expect("addr"));
    drop(closed);
    let hooked = json!({"name": "nowhere", "eventTypes": ["agent:login"], "destinationUrl": url});
    client.post(format!("{base}/v1/subscriptions")).bearer_auth(&admin).json(&hooked).send().await.expect("create");
    let login = json!({"dialNumber": "1002", "teamId": world().1, "roles": ["agent"], "deviceType": "EXTENSION"});
    client
        .post(format!("{base}/v1/agents/login"))
        .bearer_auth(format!("agent2_P0A1_{org}"))
        .json(&login)
        .send()
        .await
        .expect("login");
    let (line, before) = wait_for_line(&lines, "webhook agent:login");
    let parsed: serde_json::Value = serde_json::from_str(&line).expect("a JSON line");
    assert_eq!(parsed["level"], "WARN");
    assert_eq!(parsed["target"], "wxcc_mock::journal");
    assert_eq!(parsed["fields"]["kind"], "webhook");
    assert!(parsed["fields"]["seq"].is_u64());
    // (`start` found the start-up line, which --quiet keeps.)
    assert!(before.iter().all(|l| !l.contains("GET /v1/subscriptions 200")), "--quiet drops info lines: {before:#?}");
    let _ = stop(server);
}

#[tokio::test]
async fn serve_with_a_virtual_clock_moves_time_only_when_told() {
    let (server, addr, _lines) = start(&["--clock", "virtual", "--clock-start", "1800000000000"], &[]);
    let base = format!("http://{addr}");
    let client = reqwest::Client::new();
    let clock: serde_json::Value =
        client.get(format!("{base}/__admin/clock")).send().await.expect("clock").json().await.expect("json");
    assert_eq!(clock["mode"], "virtual");
    assert_eq!(clock["now"], 1_800_000_000_000_i64);
    let advanced: serde_json::Value = client
        .post(format!("{base}/__admin/clock/advance"))
        .json(&json!({"ms": 61000}))
        .send()
        .await
        .expect("advance")
        .json()
        .await
        .expect("json");
    assert_eq!(advanced["now"], 1_800_000_061_000_i64);
    let _ = stop(server);
}

/// README, "A tour: time on your terms": the same steps, with the binary.
#[tokio::test]
async fn the_readme_clock_tour_expires_a_token_drops_a_silent_socket_and_disables_a_failing_subscription() {
    let (server, addr, _lines) = start(&["--clock", "virtual", "--webhook-disable-after", "1"], &[]);
    let (org, team) = world();
    let base = format!("http://{addr}");
    let receiver = spawn(&["receive", "--port", "0", "--fail-first", "6"], &[]);
    let hook = wait_for(&receiver.stderr, "receiving webhooks on ");
    let agent = format!("agent2_P0A1_{org}");
    let listener = spawn(&["listen", "--base-url", &base, "--token", &agent, "--no-keepalive"], &[]);
    wait_for(&listener.stderr, "connected to ");
    let client = reqwest::Client::new();
    let token =
        mint(&client, &base, &json!({"email": "agent2@wxcc.example", "scopes": ["cjp:user"], "ttlSeconds": 60})).await;
    let admin = format!("admin-full_P0A1_{org}");
    let flaky =
        json!({"name": "flaky", "eventTypes": ["agent:login"], "destinationUrl": format!("{}hook", hook.trim())});
    let created: serde_json::Value = client
        .post(format!("{base}/v1/subscriptions"))
        .bearer_auth(&admin)
        .json(&flaky)
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("json");
    let id = created["data"]["id"].as_str().expect("id").to_owned();
    log_in_agent2(&client, &base, &token, &team).await;
    assert!(wait_for(&receiver.stdout, " attempt=1 ").ends_with("-> 500"), "the first attempt is real and fails");
    wait_for(&listener.stdout, "AgentStationLoginSuccess");

    let advanced =
        client.post(format!("{base}/__admin/clock/advance")).json(&json!({"ms": 61000})).send().await.expect("advance");
    assert_eq!(advanced.status().as_u16(), 200);
    for n in 2..=6 {
        let line = wait_for(&receiver.stdout, &format!(" attempt={n} "));
        assert!(line.ends_with("-> 500"), "{line}");
    }
    assert_eq!(wait_for(&listener.stderr, "closed: "), "4000 no keepalive for 16 s");
    let refused = client.post(format!("{base}/v1/agents/reload")).bearer_auth(&token).send().await.expect("reload");
    assert_eq!(refused.status().as_u16(), 401, "the 60 s token expired on the clock");
    let sub: serde_json::Value = client
        .get(format!("{base}/v1/subscriptions/{id}"))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("read")
        .json()
        .await
        .expect("json");
    assert_eq!(sub["data"]["status"], "inactive");
    let journal: serde_json::Value = client
        .get(format!("{base}/__admin/journal?kind=webhook"))
        .send()
        .await
        .expect("journal")
        .json()
        .await
        .expect("json");
    assert_eq!(journal["entries"].as_array().map(Vec::len), Some(6));
    for child in [listener.child, receiver.child, server] {
        let _ = stop(child);
    }
}

/// README, "Rate limit": a client hitting the limit and recovering, with the binary.
#[tokio::test]
async fn the_readme_rate_limit_example_gets_429_with_retry_after_then_200_once_the_clock_moves() {
    let (server, addr, _lines) = start(&["--clock", "virtual", "--rate-limit", "2/min"], &[]);
    let base = format!("http://{addr}");
    let client = reqwest::Client::new();
    let crm =
        mint(&client, &base, &json!({"email": "admin@wxcc.example", "scopes": ["cjp:config_read"], "clientId": "crm"}))
            .await;
    let mut seen = Vec::new();
    for _ in 0..3 {
        let reply = client.get(format!("{base}/v1/event-types")).bearer_auth(&crm).send().await.expect("list");
        let retry = reply.headers().get("retry-after").map(|v| v.to_str().unwrap_or_default().to_owned());
        seen.push((reply.status().as_u16(), retry, reply.bytes().await.expect("body").len()));
    }
    assert_eq!(seen[..2], [(200, None, seen[0].2), (200, None, seen[1].2)]);
    assert_eq!(seen[2], (429, Some("30".to_owned()), 0), "429, Retry-After: 30, no body");
    let advanced =
        client.post(format!("{base}/__admin/clock/advance")).json(&json!({"ms": 30000})).send().await.expect("advance");
    assert_eq!(advanced.status().as_u16(), 200);
    let again = client.get(format!("{base}/v1/event-types")).bearer_auth(&crm).send().await.expect("list");
    assert_eq!(again.status().as_u16(), 200);
    let _ = stop(server);
}

/// README, "Faults": a gateway that answers 503 twice, then lets requests through, marked as the
/// mock's doing in the answers and on the console.
#[tokio::test]
async fn the_readme_fault_example_answers_503_twice_marked_as_injected_then_200() {
    let (server, addr, lines) = start(&[], &[]);
    let base = format!("http://{addr}");
    let (org, _) = world();
    let client = reqwest::Client::new();
    let rule =
        json!({"name": "gateway", "match": {"path": "/v1/*"}, "action": {"kind": "status", "status": 503}, "times": 2});
    let added = client.post(format!("{base}/__admin/faults")).json(&rule).send().await.expect("add");
    assert_eq!(added.status().as_u16(), 201);
    let mut seen = Vec::new();
    for _ in 0..3 {
        let reply = client
            .get(format!("{base}/v1/event-types"))
            .bearer_auth(format!("admin-full_P0A1_{org}"))
            .send()
            .await
            .expect("an answer");
        let mark = reply.headers().get("x-wxcc-mock-fault").map(|v| v.to_str().unwrap_or_default().to_owned());
        seen.push((reply.status().as_u16(), mark));
    }
    let marked = Some("fault-1 (gateway): status 503".to_owned());
    assert_eq!(seen, [(503, marked.clone()), (503, marked), (200, None)]);
    let (line, _) = wait_for_line(&lines, "GET /v1/event-types 503 NOTIFS_");
    assert!(line.contains("WARN") && line.contains("[fault fault-1 (gateway): status 503]"), "{line}");
    let rules: serde_json::Value =
        client.get(format!("{base}/__admin/faults")).send().await.expect("list").json().await.expect("json");
    assert_eq!((rules["faults"][0]["fired"].as_u64(), rules["faults"][0]["remaining"].as_u64()), (Some(2), Some(0)));
    let _ = stop(server);
}

/// README, "A tour: a contact, from the queue to wrap-up": the same steps, with the binary.
#[tokio::test]
async fn the_readme_task_tour_plays_a_call_to_wrap_up_with_signed_webhooks_and_ronas_on_the_clock() {
    let (server, addr, _lines) = start(&["--clock", "virtual"], &[]);
    let world: serde_json::Value = serde_json::from_str(include_str!("../../fixtures/world.json")).expect("world");
    let org = world["orgs"][0]["id"].as_str().expect("org id").to_owned();
    let team = world["orgs"][0]["teams"][1]["id"].as_str().expect("team").to_owned();
    let named = |list: &str, name: &str| -> String {
        let items = world["orgs"][0][list].as_array().expect("list");
        items.iter().find(|i| i["name"] == name).and_then(|i| i["id"].as_str()).expect("named").to_owned()
    };
    let (voice, resolved, rona) =
        (named("queues", "Support Voice"), named("auxCodes", "Resolved"), named("auxCodes", "RONA"));
    let base = format!("http://{addr}");
    let secret = "0123456789abcdef0123456789abcdef";
    let receiver = spawn(&["receive", "--port", "0", "--secret", secret], &[]);
    let hook = wait_for(&receiver.stderr, "receiving webhooks on ");
    let agent = format!("agent2_P0A1_{org}");
    let admin = format!("admin-full_P0A1_{org}");
    let listener = spawn(&["listen", "--base-url", &base, "--token", &agent, "--no-idle-close"], &[]);
    wait_for(&listener.stderr, "connected to ");
    let client = reqwest::Client::new();
    let post = |path: &str, token: Option<&str>, body: serde_json::Value| {
        let mut request = client.post(format!("{base}{path}")).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };

    let types =
        ["task:new", "task:parked", "task:connect", "task:connected", "task:on-hold", "task:hold-done", "task:ended"];
    let subscription = json!({"name": "tasks", "resourceVersion": "task:1.0.0", "eventTypes": types,
        "destinationUrl": format!("{}hook", hook.trim()), "secret": secret});
    assert_eq!(post("/v2/subscriptions", Some(&admin), subscription).await.expect("subscribe").status().as_u16(), 201);
    let login = json!({"dialNumber": "1002", "teamId": team, "roles": ["agent"], "deviceType": "EXTENSION"});
    assert_eq!(post("/v1/agents/login", Some(&agent), login).await.expect("login").status().as_u16(), 202);
    let available = client
        .put(format!("{base}/v1/agents/session/state"))
        .bearer_auth(&agent)
        .json(&json!({"state": "Available", "auxCodeId": "0"}))
        .send()
        .await
        .expect("available");
    assert_eq!(available.status().as_u16(), 202);
    wait_for(&listener.stdout, "AgentStateChangeSuccess");

    let injected: serde_json::Value =
        post("/__admin/tasks", None, json!({"mediaType": "telephony", "queueId": voice, "customerName": "Ada"}))
            .await
            .expect("inject")
            .json()
            .await
            .expect("json");
    let task = injected["taskId"].as_str().expect("taskId").to_owned();
    wait_for(&listener.stdout, "\"type\":\"AgentContactReserved\"");
    assert!(wait_for(&listener.stdout, "\"type\":\"AgentOfferContact\"").contains("\"ronaTimeout\":18"));
    assert_eq!(
        post(&format!("/__admin/tasks/{task}/answer"), None, json!({})).await.expect("answer").status().as_u16(),
        200
    );
    wait_for(&listener.stdout, "\"type\":\"AgentContactAssigned\"");
    let media = json!({"mediaResourceId": task});
    let calls = [
        ("hold", media.clone(), "AgentContactHeld"),
        ("unhold", media, "AgentContactUnheld"),
        ("end", json!({}), "AgentWrapup"),
        ("wrapup", json!({"wrapUpReason": "Resolved", "auxCodeId": resolved}), "AgentWrappedUp"),
    ];
    for (action, body, message) in calls {
        let reply = post(&format!("/v1/tasks/{task}/{action}"), Some(&agent), body).await.expect("command");
        assert_eq!(reply.status().as_u16(), 202, "{action}");
        if action == "end" {
            assert!(wait_for(&listener.stdout, "\"type\":\"ContactEnded\"").contains("\"agentsPendingWrapUp\":["));
        }
        wait_for(&listener.stdout, &format!("\"type\":\"{message}\""));
    }
    for name in types {
        let line = wait_for(&receiver.stdout, &format!("{name} "));
        assert!(line.contains("signature=valid") && line.ends_with("-> 200"), "{name}: {line}");
    }

    assert_eq!(
        post("/__admin/tasks", None, json!({"mediaType": "telephony", "queueId": voice}))
            .await
            .expect("inject")
            .status()
            .as_u16(),
        201
    );
    wait_for(&listener.stdout, "\"type\":\"AgentOfferContact\"");
    assert_eq!(
        post("/__admin/clock/advance", None, json!({"ms": 18000})).await.expect("advance").status().as_u16(),
        200
    );
    assert!(wait_for(&listener.stdout, "\"type\":\"AgentOfferContactRona\"").contains("RONA_TIMER_EXPIRED"));
    assert!(wait_for(&listener.stdout, "AgentStateChangeSuccess").contains(&rona));
    wait_for(&receiver.stdout, "task:parked ");
    let tasks: serde_json::Value =
        client.get(format!("{base}/__admin/tasks")).send().await.expect("tasks").json().await.expect("json");
    let states: Vec<&str> =
        tasks["tasks"].as_array().expect("tasks").iter().filter_map(|t| t["state"].as_str()).collect();
    assert_eq!(states, ["completed", "queued"]);
    for child in [listener.child, receiver.child, server] {
        let _ = stop(child);
    }
}

#[tokio::test]
async fn serve_warns_when_it_binds_a_non_loopback_address_and_the_admin_token_guards_the_admin_api() {
    let running = spawn(&["serve", "--host", "0.0.0.0", "--port", "0", "--admin-token", "t0k3n"], &[]);
    let rest = wait_for(&running.stderr, "listening on http://");
    let port = rest.split_whitespace().next().and_then(|a| a.rsplit(':').next()).expect("port").to_owned();
    let (line, _) = wait_for_line(&running.stderr, "not loopback");
    assert!(line.contains("it needs the --admin-token"), "{line}");
    let health = format!("http://127.0.0.1:{port}/__admin/health");
    let client = reqwest::Client::new();
    assert_eq!(client.get(&health).send().await.expect("health").status().as_u16(), 401);
    assert_eq!(client.get(&health).bearer_auth("t0k3n").send().await.expect("health").status().as_u16(), 200);
    let _ = stop(running.child);
    let unguarded = spawn(&["serve", "--host", "0.0.0.0", "--port", "0"], &[]);
    let (line, _) = wait_for_line(&unguarded.stderr, "not loopback");
    assert!(line.contains("add --admin-token"), "{line}");
    let _ = stop(unguarded.child);
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_cut_off_and_past_the_connection_cap_new_clients_get_503_not_silence()
 {
    use std::io::Read;
    let (child, addr, lines) = start(&["--max-connections", "2", "--header-read-timeout-ms", "300"], &[]);
    let mut dribbling = std::net::TcpStream::connect(&addr).expect("connect");
    dribbling.write_all(b"GET /__admin/health HTTP/1.1\r\nHost: 127.0.0.1\r\n").expect("write");
    let mut silent = std::net::TcpStream::connect(&addr).expect("connect");
    // Both hold their slots: a third client is answered at once, in the envelope.
    let client = reqwest::Client::builder().pool_max_idle_per_host(0).build().expect("client");
    let full = client.get(format!("http://{addr}/v1/subscriptions")).send().await.expect("an answer, not silence");
    assert_eq!(full.status().as_u16(), 503);
    assert_eq!(full.headers()["retry-after"], "1");
    assert!(full.headers()["x-wxcc-mock-diagnostic"].to_str().expect("ascii").contains("--max-connections"));
    let tracking = full.headers()["trackingid"].to_str().expect("ascii").to_owned();
    assert!(tracking.starts_with("NOTIFS_"), "{tracking}");
    let body: serde_json::Value = full.json().await.expect("json");
    assert_eq!(body["trackingId"], tracking.as_str());
    assert_eq!(body["error"]["key"], 503, "the subscriptions service's envelope: {body}");
    wait_for(&lines, "the cap (--max-connections)");
    // The header-read timeout closes both, and says so.
    for stream in [&mut dribbling, &mut silent] {
        stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest);
    }
    wait_for(&lines, "no complete request headers within 300ms");
    wait_for(&lines, "no complete request headers within 300ms");
    let health = client.get(format!("http://{addr}/__admin/health")).send().await.expect("answer");
    assert_eq!(health.status().as_u16(), 200, "room again once the stalled clients are gone");
    wait_for(&lines, "below the connection cap again (1 refused so far)");
    assert!(stop(child).success());
}

#[test]
fn a_keep_alive_client_that_asks_again_within_the_header_read_timeout_keeps_its_connection_until_it_goes_quiet() {
    use std::io::Read;
    let (child, addr, lines) = start(&["--header-read-timeout-ms", "300"], &[]);
    let mut conn = std::net::TcpStream::connect(&addr).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    let request = format!("GET /__admin/health HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    // Four requests 200 ms apart: 800 ms on one connection, each within 300 ms of the last answer.
    for i in 0..4 {
        if i > 0 {
            std::thread::sleep(Duration::from_millis(200));
        }
        conn.write_all(request.as_bytes()).expect("the connection is still open");
        let mut answer = [0u8; 4096];
        let n = conn.read(&mut answer).expect("an answer");
        let head = String::from_utf8_lossy(&answer[..n]).into_owned();
        assert!(head.starts_with("HTTP/1.1 200 "), "request {i}: {head}");
    }
    // Then quiet: closed once the timeout passes, and the console says why.
    let mut rest = Vec::new();
    assert_eq!(conn.read_to_end(&mut rest).expect("closed, not reset"), 0);
    wait_for(&lines, "no complete request headers within 300ms");
    assert!(stop(child).success());
}

#[test]
fn a_request_whose_handling_outlasts_the_header_read_timeout_is_still_answered_on_its_connection() {
    use std::io::Read;
    let (child, addr, _lines) = start(&["--header-read-timeout-ms", "300"], &[]);
    let (org, _) = world();
    let mut conn = std::net::TcpStream::connect(&addr).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    // Held 700 ms by a latency fault: in flight, so not a stalled connection.
    let request = format!(
        "GET /v1/subscriptions HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer admin-full_P0A1_{org}\r\nX-Wxcc-Mock-Fault: latency=700\r\n\r\n"
    );
    let started = std::time::Instant::now();
    conn.write_all(request.as_bytes()).expect("write");
    let mut answer = [0u8; 4096];
    let n = conn.read(&mut answer).expect("an answer, not a closed connection");
    let head = String::from_utf8_lossy(&answer[..n]).into_owned();
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    assert!(started.elapsed() >= Duration::from_millis(700), "the fault held it");
    assert!(stop(child).success());
}

#[test]
fn a_client_still_sending_its_headers_when_the_mock_shuts_down_holds_the_shutdown_no_longer_than_the_header_read_timeout()
 {
    let (mut child, addr, _lines) = start(&["--header-read-timeout-ms", "1000"], &[]);
    let mut dribbling = std::net::TcpStream::connect(&addr).expect("connect");
    dribbling.write_all(b"GET /__admin/health HTTP/1.1\r\n").expect("write");
    // The stimulus, not a wait for a result: the half-sent headers reach the mock before the
    // shutdown does (an idle connection is closed by shutdown at once).
    std::thread::sleep(Duration::from_millis(200));
    let pid = child.id().to_string();
    let asked = std::time::Instant::now();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().expect("kill").success());
    assert!(child.wait().expect("exit").success());
    // Shutdown waits up to 5 s for exchanges in flight; a stalled one is closed after 1 s.
    let took = asked.elapsed();
    assert!(took < Duration::from_millis(4000), "shutdown took {took:?}");
    drop(dribbling);
}

fn kill_9(mut child: Child) {
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-KILL", &pid]).status().expect("kill").success());
    let _ = child.wait();
}

/// Starts `serve` on port 0; returns it, its address, its stderr and the lines it logged before
/// it listened.
fn start_seeing(extra: &[&str]) -> (Child, String, mpsc::Receiver<String>, String) {
    let mut args = vec!["serve", "--port", "0"];
    args.extend_from_slice(extra);
    let running = spawn(&args, &[]);
    let (line, before) = wait_for_line(&running.stderr, "listening on http://");
    let addr = line.split("listening on http://").nth(1).and_then(|r| r.split_whitespace().next()).expect("addr");
    (running.child, addr.to_owned(), running.stderr, before.join("\n"))
}

/// A loopback port nobody listens on (for now).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

#[tokio::test]
async fn with_a_state_file_kill_9_after_a_2xx_loses_nothing_it_acknowledged_and_pending_webhooks_go_out_after_restart()
{
    let dir = std::env::temp_dir().join(format!("wxcc-mock-state-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("state.json");
    let _ = std::fs::remove_file(&file);
    let state_file = file.to_str().expect("utf-8");
    let flags = ["--state-file", state_file, "--webhook-backoff-ms", "600000", "--shutdown-grace", "300ms"];
    let (server, addr, lines, before) = start_seeing(&flags);
    assert!(before.contains("does not exist yet: starting afresh"), "{before}");
    let (org, team) = world();
    let (admin, agent) = (format!("admin-full_P0A1_{org}"), format!("agent2_P0A1_{org}"));
    let base = format!("http://{addr}");
    let client = reqwest::Client::new();
    let secret = "0123456789abcdef0123456789abcdef";
    let port = free_port();
    let subscription = json!({
        "name": "survivor", "eventTypes": ["agent:login"], "destinationUrl": format!("http://127.0.0.1:{port}/hook"),
        "secret": secret,
    });
    let id = subscribe(&client, &base, &admin, &subscription).await;
    let minted = mint(&client, &base, &json!({"email": "agent1@wxcc.example", "scopes": ["cjp:user"]})).await;
    log_in_agent2(&client, &base, &agent, &team).await;
    // The login's webhook fails (nobody listens) and waits ten minutes for its retry.
    wait_for(&lines, "(attempt 1/6)");
    kill_9(server);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).expect("the state file").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "it holds secrets: its owner's only");
    }

    let receiver = spawn(&["receive", "--port", &port.to_string(), "--secret", secret], &[]);
    wait_for(&receiver.stderr, "receiving webhooks on ");
    let (server, addr, lines, restored) = start_seeing(&flags);
    assert!(
        restored.contains("1 subscriptions, 1 minted tokens, 1 agent sessions, 0 tasks, 1 pending deliveries"),
        "{restored}"
    );
    let delivery = wait_for(&receiver.stdout, "agent:login ");
    assert!(delivery.contains("signature=valid") && delivery.ends_with("-> 200"), "{delivery}");
    let base = format!("http://{addr}");
    let again = client.get(format!("{base}/v1/subscriptions/{id}")).bearer_auth(&admin).send().await.expect("get");
    assert_eq!(again.status().as_u16(), 200, "the subscription kept its id");
    let state: serde_json::Value =
        client.get(format!("{base}/__admin/state")).send().await.expect("state").json().await.expect("json");
    assert_eq!(state["agentSessions"][0]["email"], "agent2@wxcc.example");
    let with_minted = client
        .post(format!("{base}/v1/notification/subscribe"))
        .bearer_auth(&minted)
        .json(&json!({}))
        .send()
        .await
        .expect("call");
    assert_eq!(with_minted.status().as_u16(), 200, "the minted token still works");

    // SIGTERM keeps what could not be delivered within the grace, and says so.
    let down = free_port();
    let subscription = json!({
        "name": "later", "eventTypes": ["agent:logout"], "destinationUrl": format!("http://127.0.0.1:{down}/hook"),
    });
    subscribe(&client, &base, &admin, &subscription).await;
    let logout = client
        .put(format!("{base}/v1/agents/logout"))
        .bearer_auth(&agent)
        .json(&json!({"logoutReason": "done"}))
        .send()
        .await
        .expect("logout");
    assert_eq!(logout.status().as_u16(), 202);
    wait_for(&lines, "(attempt 1/6)");
    assert!(stop(server).success());
    let said = wait_for(&lines, "state saved to ");
    assert!(said.contains("0 delivered during the grace, 1 pending deliveries kept for the next start"), "{said}");
    let _ = stop(receiver.child);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn without_a_state_file_sigterm_says_how_many_pending_webhooks_it_discards() {
    let (server, addr, lines) = start(&["--webhook-backoff-ms", "600000", "--shutdown-grace", "200ms"], &[]);
    let (org, team) = world();
    let (admin, agent) = (format!("admin-full_P0A1_{org}"), format!("agent2_P0A1_{org}"));
    let base = format!("http://{addr}");
    let client = reqwest::Client::new();
    let subscription = json!({
        "name": "nobody", "eventTypes": ["agent:login"], "destinationUrl": format!("http://127.0.0.1:{}/hook", free_port()),
    });
    subscribe(&client, &base, &admin, &subscription).await;
    let login = json!({"dialNumber": "1002", "teamId": team, "roles": ["agent"], "deviceType": "EXTENSION"});
    client.post(format!("{base}/v1/agents/login")).bearer_auth(&agent).json(&login).send().await.expect("login");
    wait_for(&lines, "(attempt 1/6)");
    assert!(stop(server).success());
    wait_for(&lines, "delivering 1 pending webhooks for up to 200ms (--shutdown-grace)");
    wait_for(&lines, "1 pending webhook deliveries discarded (0 delivered during the grace)");
}

// README: in-process (begin)
#[tokio::test]
async fn my_client_sees_an_agent_log_in() {
    let mock = wxcc_mock::MockServer::start().await;
    let agent = mock.token("agent2");
    let client = reqwest::Client::new();
    let login = serde_json::json!({
        "dialNumber": "1004", "teamId": "edfab50b-7da0-489e-9376-9b7bf54d5f92",
        "roles": ["agent"], "deviceType": "EXTENSION", "isExtension": true,
    });
    let reply = client
        .post(format!("{}/v1/agents/login", mock.url()))
        .bearer_auth(&agent)
        .json(&login)
        .send()
        .await
        .expect("the mock answers");
    assert_eq!(reply.status(), 202);
    let state = mock.state().snapshot();
    assert_eq!(state["agentSessions"][0]["email"], "agent2@wxcc.example");
}
// README: in-process (end)

#[test]
fn the_readme_shows_the_in_process_example_exactly_as_it_is_tested() {
    let source = include_str!("cli.rs");
    let begin =
        source.find("// README: in-process (begin)\n").expect("begin") + "// README: in-process (begin)\n".len();
    let end = source.find("// README: in-process (end)").expect("end");
    let example = &source[begin..end];
    let readme = include_str!("../../README.md");
    assert!(readme.contains(example), "the README's in-process example differs from the test:\n{example}");
}

/// A client that logs agent2 in with `roles` as given, through the variables `test` hands it.
fn login_client(role: &str) -> String {
    format!(
        r#"import json, os, urllib.request
body = {{"dialNumber": "1004", "teamId": "edfab50b-7da0-489e-9376-9b7bf54d5f92", "roles": ["{role}"], "deviceType": "EXTENSION", "isExtension": True}}
request = urllib.request.Request(os.environ["WXCC_BASE_URL"] + "/v1/agents/login", data=json.dumps(body).encode(),
    headers={{"Authorization": "Bearer " + os.environ["WXCC_TOKEN_AGENT2"], "Content-Type": "application/json"}})
print("login", urllib.request.urlopen(request).status, "in org", os.environ["WXCC_ORG_ID"])
"#
    )
}

#[test]
fn wxcc_mock_test_runs_a_client_against_a_fresh_mock_and_fails_it_for_what_it_sent_off_contract() {
    let dir = std::env::temp_dir().join(format!("wxcc-mock-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let junit = dir.join("client.xml");
    let run = |script: &str| {
        let out = binary()
            .args(["test", "--junit", junit.to_str().expect("utf-8"), "--", "python3", "-c", script])
            .env_remove("RUST_LOG")
            .output()
            .expect("run wxcc-mock test");
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let (code, stdout) = run(&login_client("agent"));
    assert_eq!(code, Some(0), "{stdout}");
    assert!(stdout.contains("login 202 in org 14091636-52e9-4d11-bd49-53df3b39f246"), "{stdout}");
    assert!(stdout.contains("1 passed, 0 failed"), "{stdout}");

    // "Agent" is accepted (as the real API does) but it is off-contract: the gate fails.
    let (code, stdout) = run(&login_client("Agent"));
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.contains("login 202") && stdout.contains("FAIL  POST /v1/agents/login"), "{stdout}");
    let xml = std::fs::read_to_string(&junit).expect("the JUnit report");
    assert!(xml.contains("<failure") && xml.contains("/roles/0"), "{xml}");

    let (code, _) = run("import sys; sys.exit(3)");
    assert_eq!(code, Some(3), "the command's own failure is passed on");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn with_tls_the_mock_serves_https_and_wss_with_a_certificate_clients_can_trust() {
    let dir = std::env::temp_dir().join(format!("wxcc-mock-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let cert = dir.join("cert.pem");
    let running = spawn(&["serve", "--port", "0", "--tls", "--tls-cert-out", cert.to_str().expect("utf-8")], &[]);
    let (line, before) = wait_for_line(&running.stderr, "listening on https://");
    let addr = line.split("listening on https://").nth(1).and_then(|r| r.split_whitespace().next()).expect("addr");
    assert!(before.join("\n").contains("trust"), "{before:?}");
    let pem = std::fs::read(&cert).expect("the certificate was written");
    let client = reqwest::Client::builder()
        .tls_certs_merge(reqwest::Certificate::from_pem_bundle(&pem).expect("pem"))
        .build()
        .expect("client");
    let health = client.get(format!("https://{addr}/__admin/health")).send().await.expect("https answers");
    assert_eq!(health.status().as_u16(), 200);
    let untrusted = reqwest::Client::new().get(format!("https://{addr}/__admin/health")).send().await;
    assert!(untrusted.is_err(), "a client that does not trust the certificate is refused");

    let (org, team) = world();
    let agent = format!("agent2_P0A1_{org}");
    let listener = spawn(
        &[
            "listen",
            "--base-url",
            &format!("https://{addr}"),
            "--token",
            &agent,
            "--ca-cert",
            cert.to_str().expect("utf-8"),
        ],
        &[],
    );
    let connected = wait_for(&listener.stderr, "connected to ");
    assert!(connected.starts_with("wss://127.0.0.1:"), "{connected}");
    let login = json!({"dialNumber": "1004", "teamId": team, "roles": ["agent"], "deviceType": "EXTENSION"});
    let accepted = client
        .post(format!("https://{addr}/v1/agents/login"))
        .bearer_auth(&agent)
        .json(&login)
        .send()
        .await
        .expect("login");
    assert_eq!(accepted.status().as_u16(), 202);
    let message = wait_for(&listener.stdout, "\"type\":\"StationLogin\"");
    assert!(message.contains("AgentStationLoginSuccess"), "{message}");
    for child in [listener.child, running.child] {
        let _ = stop(child);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn validate_checks_a_world_file_against_the_world_schema() {
    let (code, text) = validate("world", include_str!("../../fixtures/world.json"));
    assert_eq!(code, 0, "the default world is valid: {text}");
    let (org, _) = world();
    let bad = format!(
        r#"{{"orgs": [{{"id": "{org}", "name": "x", "cluster": "P0-A1", "users": [{{"id": "u1", "email": "a@b.example", "firstName": "A", "lastName": "B", "roles": [], "teamIds": [], "colour": "red"}}]}}],
            "tokens": [{{"accessToken": "nounderscores", "email": "a@b.example", "scopes": []}}]}}"#
    );
    let (code, text) = validate("world", &bad);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("/orgs/0/cluster: must be letters and digits"), "{text}");
    assert!(text.contains("/orgs/0/users/0"), "the unknown field is placed: {text}");
    assert!(text.contains("/tokens/0/accessToken: must be <name>_<cluster>_<orgId>"), "{text}");
}

fn scenario_files() -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/scenarios");
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .expect("fixtures/scenarios")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| p.display().to_string())
        .collect();
    files.sort();
    files
}

#[test]
fn scenario_check_passes_every_shipped_file_and_fails_a_wrong_one_naming_each_problem() {
    let files = scenario_files();
    let checked = binary().args(["scenario", "check"]).args(&files).output().expect("run");
    let stdout = String::from_utf8_lossy(&checked.stdout);
    assert!(checked.status.success(), "{stdout}");
    assert_eq!(stdout.lines().filter(|l| l.starts_with("ok ")).count(), files.len(), "{stdout}");

    let wrong = std::env::temp_dir().join(format!("wxcc-wrong-scenario-{}.json", std::process::id()));
    let scenario = json!({"name": "wrong", "rateLimit": "3/min",
        "script": [{"at": "5s", "method": "GET", "path": "/v1/nowhere"},
                   {"at": "6s", "method": "POST", "path": "/__admin/tasks/{{call.taskId}}/answer"}]});
    std::fs::write(&wrong, scenario.to_string()).expect("write");
    let checked = binary().args(["scenario", "check"]).arg(&wrong).output().expect("run");
    let _ = std::fs::remove_file(&wrong);
    let stdout = String::from_utf8_lossy(&checked.stdout);
    assert_eq!(checked.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("FAIL "), "{stdout}");
    assert!(stdout.contains("/script/0: the mock serves no GET /v1/nowhere"), "{stdout}");
    assert!(stdout.contains("/script/1/path: {{call.taskId}} names \"call\""), "{stdout}");
}

#[tokio::test]
async fn serve_starts_with_each_shipped_scenario_loaded_on_its_clock() {
    let client = reqwest::Client::new();
    for file in scenario_files() {
        let (server, addr, _lines) = start(&["--scenario", &file], &[]);
        let loaded: serde_json::Value = client
            .get(format!("http://{addr}/__admin/scenario"))
            .send()
            .await
            .expect("scenario")
            .json()
            .await
            .expect("json");
        let written: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&file).expect("read")).expect("json");
        assert_eq!(loaded["name"], written["name"], "{file}: {loaded}");
        let clock: serde_json::Value =
            client.get(format!("http://{addr}/__admin/clock")).send().await.expect("clock").json().await.expect("json");
        assert_eq!(clock["mode"], written["clock"]["mode"], "{file}");
        let _ = stop(server);
    }
}

#[test]
fn serve_refuses_a_var_the_scenario_lacks_and_a_world_the_scenario_replaces() {
    let flaky = format!("{}/../fixtures/scenarios/flaky-receiver.json", env!("CARGO_MANIFEST_DIR"));
    let out =
        binary().args(["serve", "--port", "0", "--scenario", &flaky, "--var", "reciever=x"]).output().expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("--var reciever: the scenario has no var \"reciever\" (it has receiver)"), "{stderr}");
}

/// README, "Scenarios": the flaky receiver, with a real receiver: nothing arrives while the
/// fault answers 500 for it; the sixth attempt, at 31 s of the virtual clock, does.
#[tokio::test]
async fn the_readme_flaky_receiver_tour_delivers_the_sixth_attempt_once_the_clock_passes_31_s() {
    let receiver = spawn(&["receive", "--port", "0"], &[]);
    let hook = format!("{}hook", wait_for(&receiver.stderr, "receiving webhooks on ").trim());
    let flaky = format!("{}/../fixtures/scenarios/flaky-receiver.json", env!("CARGO_MANIFEST_DIR"));
    let (server, addr, _lines) = start(&["--scenario", &flaky, "--var", &format!("receiver={hook}")], &[]);
    let base = format!("http://{addr}");
    let client = reqwest::Client::new();
    let advance = |ms: u64| client.post(format!("{base}/__admin/clock/advance")).json(&json!({"ms": ms})).send();
    assert_eq!(advance(30_000).await.expect("advance").status().as_u16(), 200);
    let deliveries: serde_json::Value =
        client.get(format!("{base}/__admin/deliveries")).send().await.expect("list").json().await.expect("json");
    let statuses: Vec<u64> =
        deliveries["deliveries"].as_array().expect("list").iter().filter_map(|d| d["status"].as_u64()).collect();
    assert_eq!(statuses, [500, 500, 500, 500, 500], "five attempts answered by the fault");
    assert!(receiver.stdout.try_recv().is_err(), "nothing reached the receiver");
    assert_eq!(advance(1_000).await.expect("advance").status().as_u16(), 200);
    let delivery = wait_for(&receiver.stdout, "agent:login ");
    assert!(delivery.ends_with("-> 200"), "{delivery}");
    for child in [receiver.child, server] {
        let _ = stop(child);
    }
}

/// README, "Scenarios": a duplicated webhook reaches a real receiver twice, with the same id and a
/// valid signature both times.
#[tokio::test]
async fn the_readme_duplicated_webhook_tour_delivers_the_same_event_twice() {
    let secret = "0123456789abcdef0123456789abcdef";
    let receiver = spawn(&["receive", "--port", "0", "--secret", secret], &[]);
    let hook = format!("{}hook", wait_for(&receiver.stderr, "receiving webhooks on ").trim());
    let (server, addr, _lines) = start(&[], &[]);
    let base = format!("http://{addr}");
    let (org, team) = world();
    let client = reqwest::Client::new();
    let fault = json!({"on": "webhook", "action": {"kind": "duplicate"}, "times": 1});
    let added = client.post(format!("{base}/__admin/faults")).json(&fault).send().await.expect("fault");
    assert_eq!(added.status().as_u16(), 201);
    let subscription =
        json!({"name": "twice", "eventTypes": ["agent:login"], "destinationUrl": hook, "secret": secret});
    subscribe(&client, &base, &format!("admin-full_P0A1_{org}"), &subscription).await;
    let login = json!({"dialNumber": "1002", "teamId": team, "roles": ["agent"], "deviceType": "EXTENSION"});
    let agent = format!("agent2_P0A1_{org}");
    let accepted =
        client.post(format!("{base}/v1/agents/login")).bearer_auth(&agent).json(&login).send().await.expect("login");
    assert_eq!(accepted.status().as_u16(), 202);
    let first = wait_for(&receiver.stdout, "agent:login ");
    let second = wait_for(&receiver.stdout, "agent:login ");
    let id = |line: &str| line.split_whitespace().find(|w| w.starts_with("id=")).map(str::to_owned);
    assert!(id(&first).is_some(), "{first}");
    assert_eq!(id(&first), id(&second), "the same event: {first} / {second}");
    for line in [&first, &second] {
        assert!(line.contains("signature=valid") && line.ends_with("-> 200"), "{line}");
    }
    for child in [receiver.child, server] {
        let _ = stop(child);
    }
}

/// README, "Record and replay": a session against the mock, exported as a bundle, replays
/// cleanly against a fresh mock, and against a changed one reports the one difference (with
/// JUnit).
#[tokio::test]
async fn the_readme_replay_tour_reports_nothing_against_the_same_mock_and_the_one_difference_of_a_changed_one() {
    let (server, addr, _lines) = start(&[], &[]);
    let base = format!("http://{addr}");
    let (org, team) = world();
    let (admin, agent) = (format!("admin-full_P0A1_{org}"), format!("agent2_P0A1_{org}"));
    let client = reqwest::Client::new();
    log_in_agent2(&client, &base, &agent, &team).await;
    let hook = json!({"name": "replayed", "eventTypes": ["agent:login"], "destinationUrl": "https://hooks.example.com/x",
        "secret": "0123456789abcdef0123456789abcdef"});
    subscribe(&client, &base, &admin, &hook).await;
    let got = client.get(format!("{base}/organization/{org}")).bearer_auth(&admin).send().await.expect("org");
    assert_eq!(got.status().as_u16(), 200);
    let forbidden = client.post(format!("{base}/v1/subscriptions")).bearer_auth(&agent).json(&hook).send().await;
    assert_eq!(forbidden.expect("403").status().as_u16(), 403);
    let exported = client.get(format!("{base}/__admin/journal/export")).send().await.expect("export");
    let bundle = exported.text().await.expect("bundle");
    assert!(!bundle.contains(&admin) && !bundle.contains(&agent), "tokens are named, never shown");
    assert!(!bundle.contains("0123456789abcdef0123456789abcdef"), "secrets stay redacted");
    let _ = stop(server);
    let file = std::env::temp_dir().join(format!("wxcc-bundle-{}.json", std::process::id()));
    std::fs::write(&file, &bundle).expect("write bundle");

    // Against a fresh mock, started by replay itself.
    let same = binary().args(["replay", "--no-timing"]).arg(&file).output().expect("replay");
    let stdout = String::from_utf8_lossy(&same.stdout);
    assert!(same.status.success(), "{stdout}{}", String::from_utf8_lossy(&same.stderr));
    assert!(stdout.contains("4 passed, 0 failed, 0 skipped"), "{stdout}");

    // Against a mock whose organisation has another name.
    let mut renamed: serde_json::Value =
        serde_json::from_str(include_str!("../../fixtures/world.json")).expect("world json");
    renamed["orgs"][0]["name"] = json!("Renamed Org");
    let world_file = std::env::temp_dir().join(format!("wxcc-renamed-world-{}.json", std::process::id()));
    std::fs::write(&world_file, renamed.to_string()).expect("write world");
    let (changed, changed_addr, _lines) = start(&["--world", world_file.to_str().expect("utf-8")], &[]);
    let junit = std::env::temp_dir().join(format!("wxcc-replay-{}.xml", std::process::id()));
    let other = binary()
        .args(["replay", "--no-timing", "--base-url", &format!("http://{changed_addr}")])
        .args(["--token", &format!("admin-full={admin}"), "--token", &format!("agent2={agent}")])
        .arg("--junit")
        .arg(&junit)
        .arg(&file)
        .output()
        .expect("replay");
    let stdout = String::from_utf8_lossy(&other.stdout);
    assert_eq!(other.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("3 passed, 1 failed, 0 skipped"), "{stdout}");
    assert!(stdout.contains("body /name: recorded \"Wxcc Example\", now \"Renamed Org\""), "{stdout}");
    let xml = std::fs::read_to_string(&junit).expect("junit");
    assert!(xml.contains("Renamed Org") && xml.contains("failures=\"1\""), "{xml}");
    let _ = stop(changed);
    for path in [file, world_file, junit] {
        let _ = std::fs::remove_file(path);
    }
}

/// `proxy` in front of another mock: the exchanges and the websocket's frames come through and
/// are recorded (tokens named, the secret redacted); the recording replays against a fresh mock.
#[tokio::test]
async fn proxy_records_exchanges_and_websocket_frames_from_an_upstream_mock_and_the_recording_replays() {
    use futures_util::StreamExt;
    let (upstream, upstream_addr, _lines) = start(&[], &[]);
    let file = std::env::temp_dir().join(format!("wxcc-proxied-{}.json", std::process::id()));
    let proxy = spawn(
        &[
            "proxy",
            "--port",
            "0",
            "--upstream",
            &format!("http://{upstream_addr}"),
            "--record",
            file.to_str().expect("utf-8"),
        ],
        &[],
    );
    let rest = wait_for(&proxy.stderr, "proxying http://");
    let base = format!("http://{}", rest.split_whitespace().next().expect("address"));
    let (org, team) = world();
    let (admin, agent) = (format!("admin-full_P0A1_{org}"), format!("agent2_P0A1_{org}"));
    let client = reqwest::Client::new();
    log_in_agent2(&client, &base, &agent, &team).await;
    let hook = json!({"name": "proxied", "eventTypes": ["agent:login"], "destinationUrl": "https://hooks.example.com/x",
        "secret": "0123456789abcdef0123456789abcdef"});
    subscribe(&client, &base, &admin, &hook).await;
    let registered: serde_json::Value = client
        .post(format!("{base}/v1/notification/subscribe"))
        .bearer_auth(&agent)
        .json(&json!({"isKeepAliveEnabled": false, "clientType": "Proxied"}))
        .send()
        .await
        .expect("subscribe")
        .json()
        .await
        .expect("json");
    let url = registered["webSocketUrl"].as_str().expect("webSocketUrl");
    assert!(url.starts_with(&base.replacen("http", "ws", 1)), "the websocket comes through the proxy: {url}");
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.expect("connect through the proxy");
    let welcome = tokio::time::timeout(Duration::from_secs(10), socket.next()).await.expect("in time");
    let welcome = welcome.expect("a message").expect("ok").into_text().expect("text").to_string();
    assert!(welcome.contains("\"Welcome\""), "{welcome}");
    drop(socket);
    let _ = stop(proxy.child);
    let _ = stop(upstream);

    let recorded = std::fs::read_to_string(&file).expect("the recording");
    assert!(!recorded.contains(&admin) && !recorded.contains(&agent), "tokens are named, never written");
    assert!(!recorded.contains("0123456789abcdef0123456789abcdef"), "the secret is redacted");
    let bundle: serde_json::Value = serde_json::from_str(&recorded).expect("json");
    let exchanges = bundle["exchanges"].as_array().expect("exchanges");
    let tokens: Vec<&str> = exchanges.iter().filter_map(|e| e["token"].as_str()).collect();
    assert_eq!(tokens, ["agent2", "admin-full", "agent2"], "world tokens by their names");
    assert_eq!(bundle["frames"][0]["direction"], "out");
    assert_eq!(bundle["frames"][0]["message"]["type"], "Welcome");

    let replayed = binary().args(["replay", "--no-timing"]).arg(&file).output().expect("replay");
    let stdout = String::from_utf8_lossy(&replayed.stdout);
    assert!(replayed.status.success(), "{stdout}");
    assert!(stdout.contains("3 passed, 0 failed"), "{stdout}");
    let _ = std::fs::remove_file(file);
}
