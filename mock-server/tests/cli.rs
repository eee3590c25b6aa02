//! The `wxcc-mock` binary: `serve` starts, answers, and stops cleanly on SIGTERM; `validate`
//! reports pointer-precise violations with exit codes.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_wxcc-mock"))
}

/// Starts `serve` on port 0 and returns the child and the address it logged.
fn start(extra: &[&str], env: &[(&str, &str)]) -> (Child, String, mpsc::Receiver<String>) {
    let mut command = binary();
    command
        .args(["serve", "--port", "0"])
        .args(extra)
        .stderr(Stdio::piped())
        .stdout(Stdio::null());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("spawn wxcc-mock");
    let stderr = child.stderr.take().expect("stderr");
    let (lines_tx, lines_rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let addr = loop {
        let line = lines_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("a log line before the timeout");
        if let Some(rest) = line.split("listening on http://").nth(1) {
            break rest.split_whitespace().next().expect("address").to_owned();
        }
    };
    (child, addr, lines_rx)
}

fn stop(mut child: Child) -> std::process::ExitStatus {
    let pid = child.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    child.wait().expect("wait")
}

#[tokio::test]
async fn serve_logs_its_address_answers_and_stops_cleanly_on_sigterm() {
    let (child, addr, lines) = start(&[], &[]);
    let health = reqwest::get(format!("http://{addr}/__admin/health"))
        .await
        .expect("health");
    assert_eq!(health.status().as_u16(), 200);
    let status = stop(child);
    assert!(status.success(), "exit status {status:?}");
    let rest: Vec<String> = lines.try_iter().collect();
    assert!(rest.iter().any(|l| l.contains("shut down")), "{rest:?}");
}

#[tokio::test]
async fn serve_loads_another_world_from_a_file_named_by_an_env_var() {
    let mut world: serde_json::Value =
        serde_json::from_str(include_str!("../../fixtures/world.json")).expect("world json");
    world["orgs"][0]["name"] = serde_json::json!("Renamed Org");
    let path = std::env::temp_dir().join(format!("wxcc-world-{}.json", std::process::id()));
    std::fs::write(&path, world.to_string()).expect("write world");
    let (child, addr, _) = start(
        &[],
        &[("WXCC_MOCK_WORLD", path.to_str().expect("utf-8 path"))],
    );
    let state: serde_json::Value = reqwest::get(format!("http://{addr}/__admin/state"))
        .await
        .expect("state")
        .json()
        .await
        .expect("json");
    assert_eq!(state["orgs"][0]["name"], "Renamed Org");
    assert!(stop(child).success());
    let _ = std::fs::remove_file(path);
}

#[test]
fn serve_refuses_an_inconsistent_world_with_a_clear_message() {
    let path = std::env::temp_dir().join(format!("wxcc-bad-world-{}.json", std::process::id()));
    std::fs::write(
        &path,
        r#"{"orgs": [{"id": "not-a-uuid", "name": "x", "cluster": "P0A1", "users": []}]}"#,
    )
    .expect("write");
    let out = binary()
        .args(["serve", "--port", "0", "--world"])
        .arg(&path)
        .output()
        .expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not a uuid"), "{stderr}");
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
    let _ = child
        .stdin
        .take()
        .expect("stdin")
        .write_all(document.as_bytes());
    let out = child.wait_with_output().expect("wait");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn validate_exits_0_for_a_valid_document() {
    let body =
        r#"{"name":"crm1","eventTypes":["agent:login"],"destinationUrl":"https://x.example/h"}"#;
    let (code, text) = validate("subscription-create-request", body);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("valid against subscription-create-request"),
        "{text}"
    );
}

#[test]
fn validate_exits_1_and_names_each_pointer_for_an_invalid_document() {
    let body =
        r#"{"name":"crm","eventTypes":[],"destinationUrl":"https://x.example/h","secret":"12345"}"#;
    let (code, text) = validate("subscription-create-request", body);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("-: /secret: must be at least 32 characters [minLength]"),
        "{text}"
    );
    assert!(
        text.contains("-: /name: must be at least 4 characters"),
        "{text}"
    );
    assert!(
        text.contains("-: /eventTypes: must have at least 1 item"),
        "{text}"
    );
}

#[test]
fn validate_exits_2_for_an_unknown_schema_or_a_non_json_file() {
    let (code, text) = validate("no-such-schema", "{}");
    assert_eq!(code, 2);
    assert!(
        text.contains("agent-login-request"),
        "lists the schemas: {text}"
    );
    let (code, text) = validate("agent-login-request", "{oops");
    assert_eq!(code, 2);
    assert!(text.contains("not JSON"), "{text}");
}
