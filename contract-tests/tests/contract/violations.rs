//! Consumer verification: every request that breaks its schema is recorded, even where the mock
//! answers as leniently as the real API; `--strict` refuses those too.

use serde_json::json;
use wxcc_contract_tests::TestApp;
use wxcc_mock::World;
use wxcc_mock::state::StateOptions;

use crate::{subscription_body, team_of};

fn samples_login(app: &TestApp) -> serde_json::Value {
    // What Cisco's form-based sample and Postman collection send.
    json!({"dialNumber": "1002", "teamId": team_of(app, "agent2@wxcc.example"), "roles": ["Agent"], "isExtension": "true"})
}

#[tokio::test]
async fn a_tolerated_deviation_is_answered_but_recorded_with_its_pointer() {
    let app = TestApp::new();
    let reply = app.post("/v1/agents/login").bearer(&app.world_token("agent2")).json(&samples_login(&app)).send().await;
    let reply = reply.expect(202, None);
    let log = app.get("/__admin/violations").send().await.expect(200, None).body;
    assert_eq!(log["count"], 2);
    let found: Vec<(String, String, bool)> = log["violations"]
        .as_array()
        .expect("list")
        .iter()
        .map(|v| {
            assert_eq!(v["trackingId"], reply.tracking_id());
            assert_eq!(v["method"], "POST");
            assert_eq!(v["path"], "/v1/agents/login");
            assert!(v["body"].as_str().unwrap_or_default().contains("\"Agent\""));
            (
                v["pointer"].as_str().unwrap_or_default().to_owned(),
                v["rule"].as_str().unwrap_or_default().to_owned(),
                v["accepted"] == true,
            )
        })
        .collect();
    assert_eq!(found, vec![("/isExtension".into(), "type".into(), true), ("/roles/0".into(), "enum".into(), true)]);
}

#[tokio::test]
async fn refused_requests_are_recorded_too_and_delete_clears_the_log() {
    let app = TestApp::new();
    let admin = app.world_token("admin-full");
    let mut body = subscription_body("x");
    body["secret"] = json!("short");
    app.post("/v1/subscriptions").bearer(&admin).json(&body).send().await.expect(400, None);
    app.post("/v1/subscriptions")
        .bearer(&admin)
        .raw(b"{oops".to_vec(), "application/json")
        .send()
        .await
        .expect(400, None);
    let log = app.get("/__admin/violations").send().await.expect(200, None).body;
    let found: Vec<(&str, &str, bool)> = log["violations"]
        .as_array()
        .expect("list")
        .iter()
        .map(|v| (v["pointer"].as_str().unwrap_or("?"), v["rule"].as_str().unwrap_or("?"), v["accepted"] == true))
        .collect();
    assert_eq!(found, vec![("/name", "minLength", false), ("/secret", "minLength", false), ("", "json", false)]);
    app.delete("/__admin/violations").header("content-type", "application/json").send().await.expect(204, None);
    assert_eq!(app.get("/__admin/violations").send().await.expect(200, None).body["count"], 0);
}

#[tokio::test]
async fn a_valid_request_records_nothing() {
    let app = TestApp::new();
    let admin = app.world_token("admin-full");
    app.post("/v1/subscriptions").bearer(&admin).json(&subscription_body("clean")).send().await.expect(201, None);
    assert_eq!(app.get("/__admin/violations").send().await.expect(200, None).body["count"], 0);
}

#[tokio::test]
async fn strict_mode_refuses_tolerated_deviations_with_the_pointer_and_a_diagnostic() {
    let app = TestApp::with_options(World::default_world(), StateOptions { strict: true, ..StateOptions::default() });
    let token = app.world_token("agent2");
    let reply = app.post("/v1/agents/login").bearer(&token).json(&samples_login(&app)).send().await.expect(400, None);
    assert_eq!(
        reply.messages(),
        vec!["/isExtension: must be of type boolean", "/roles/0: must be one of \"agent\", \"supervisor\""]
    );
    assert!(reply.diagnostic().contains("--strict"), "{}", reply.diagnostic());
    let log = app.get("/__admin/violations").send().await.expect(200, None).body;
    assert!(log["violations"].as_array().expect("list").iter().all(|v| v["accepted"] == false));
    let mut body = samples_login(&app);
    body["roles"] = json!(["agent"]);
    body["isExtension"] = json!(true);
    app.post("/v1/agents/login").bearer(&token).json(&body).send().await.expect(202, None);
}

#[tokio::test]
async fn the_violations_log_is_bounded_by_bytes_and_cuts_long_paths_and_bodies() {
    let app = TestApp::new();
    let token = app.world_token("admin-full");
    let long = "u".repeat(60 * 1024);
    for _ in 0..30 {
        let body = serde_json::json!({"name": "x", "eventTypes": ["nope"], "destinationUrl": long.clone()});
        let path = format!("/v1/subscriptions?pad={long}");
        app.post(&path).bearer(&token).json(&body).send().await.expect(400, None);
    }
    let listed = app.get("/__admin/violations").send().await.expect(200, None);
    let records = listed.body["violations"].as_array().expect("a list").clone();
    assert!(!records.is_empty());
    for record in &records {
        for field in ["path", "body", "message"] {
            let text = record[field].as_str().unwrap_or_default();
            assert!(text.len() <= 2 * 1024 + 32, "{field} kept {} bytes", text.len());
        }
    }
    let bounds = app.admin_state().await["bounds"]["violations"].clone();
    assert!(bounds["bytes"].as_u64().expect("bytes") <= bounds["maxBytes"].as_u64().expect("max"));
    assert_eq!(bounds["held"].as_u64(), Some(records.len() as u64));
}
