//! Bad input gets a clear 4xx in the right envelope, never a 5xx, and loses nothing.

use serde_json::json;
use wxcc_contract_tests::TestApp;
use wxcc_schemas::SchemaId;

use crate::subscription_body;

#[tokio::test]
async fn malformed_json_is_400_in_each_services_envelope() {
    let app = TestApp::new();
    let admin = app.world_token("admin-full");
    let reply =
        app.post("/v1/subscriptions").bearer(&admin).raw(b"{\"name\": ".to_vec(), "application/json").send().await;
    let reply = reply.expect(400, Some(SchemaId::ErrorResult));
    assert_eq!(reply.messages(), vec!["Body is invalid JSON."]);
    assert!(reply.diagnostic().contains("not valid JSON"), "{}", reply.diagnostic());
    let reply = app.post("/v1/agents/login").bearer(&admin).raw(b"[1,".to_vec(), "application/json").send().await;
    reply.expect(400, Some(SchemaId::AgentErrorResponse));
}

#[tokio::test]
async fn wrong_types_and_a_missing_body_are_400() {
    let app = TestApp::new();
    let admin = app.world_token("admin-full");
    let reply = app.post("/v1/subscriptions").bearer(&admin).json(&json!([1, 2])).send().await.expect(400, None);
    assert_eq!(reply.messages(), vec!["/: must be of type object"]);
    let reply = app.post("/v1/subscriptions").bearer(&admin).send().await.expect(400, None);
    assert!(reply.diagnostic().contains("no body"), "{}", reply.diagnostic());
    let body = json!({"name": ["x"], "eventTypes": "agent:login", "destinationUrl": 7});
    let reply = app.post("/v1/subscriptions").bearer(&admin).json(&body).send().await.expect(400, None);
    let messages = reply.messages();
    for pointer in ["/name:", "/eventTypes:", "/destinationUrl:"] {
        assert!(messages.iter().any(|m| m.starts_with(pointer)), "{pointer} in {messages:?}");
    }
}

#[tokio::test]
async fn a_huge_body_is_413_and_nothing_is_stored() {
    let app = TestApp::new();
    let admin = app.world_token("admin-full");
    let mut body = subscription_body("huge");
    body["description"] = json!("x".repeat(300 * 1024));
    app.post("/v1/subscriptions").bearer(&admin).json(&body).send().await.expect(413, Some(SchemaId::ErrorResult));
    assert_eq!(app.admin_state().await["subscriptions"], json!([]));
}

#[tokio::test]
async fn a_non_json_content_type_is_415() {
    let app = TestApp::new();
    let admin = app.world_token("admin-full");
    let body = serde_json::to_vec(&subscription_body("form")).expect("json");
    app.post("/v1/subscriptions")
        .bearer(&admin)
        .raw(body, "application/x-www-form-urlencoded")
        .send()
        .await
        .expect(415, None);
}

#[tokio::test]
async fn unknown_routes_are_404_and_wrong_methods_405_in_the_envelope() {
    let app = TestApp::new();
    let reply = app.get("/v1/no-such-thing").send().await.expect(404, Some(SchemaId::ApiErrorResponse));
    assert_eq!(reply.body["error"]["key"], "404");
    app.get("/v1/subscriptions/a/b").send().await.expect(404, Some(SchemaId::ErrorResult));
    let reply = app.delete("/v1/agents/login").send().await.expect(405, Some(SchemaId::AgentErrorResponse));
    assert_eq!(reply.headers.get("allow").map(String::as_str), Some("POST"));
    app.put("/v1/subscriptions").send().await.expect(405, Some(SchemaId::ErrorResult));
    app.delete("/v1/event-types").send().await.expect(405, Some(SchemaId::ErrorResult));
}

#[tokio::test]
async fn the_tracking_id_is_echoed_or_made_with_the_services_prefix() {
    let app = TestApp::new();
    let admin = app.world_token("admin-full");
    let reply =
        app.get("/v1/subscriptions").bearer(&admin).header("TrackingId", "MY_APP_1234").send().await.expect(200, None);
    assert_eq!(reply.tracking_id(), "MY_APP_1234");
    let reply = app.get("/v1/subscriptions").bearer(&admin).send().await;
    assert!(reply.tracking_id().starts_with("NOTIFS_"), "{}", reply.tracking_id());
    let reply = app.post("/v1/agents/reload").bearer(&admin).send().await;
    assert!(reply.tracking_id().starts_with("AQM_"), "{}", reply.tracking_id());
    let uuid = reply.tracking_id().trim_start_matches("AQM_");
    assert!(uuid::Uuid::parse_str(uuid).is_ok(), "{uuid}");
}

#[tokio::test]
async fn diagnostics_are_plain_ascii_even_for_odd_input() {
    let app = TestApp::new();
    let reply = app.get("/v1/event-types").header("authorization", "Bearer ünïcödé").send().await.expect(401, None);
    assert!(reply.diagnostic().is_ascii());
}

#[tokio::test]
async fn a_burst_of_bad_requests_leaves_the_state_as_it_was() {
    let app = TestApp::new();
    let admin = app.world_token("admin-full");
    app.post("/v1/subscriptions").bearer(&admin).json(&subscription_body("keeper")).send().await.expect(201, None);
    let before = app.admin_state().await;
    let bodies: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"null".to_vec(),
        b"{".to_vec(),
        b"\"x\"".to_vec(),
        vec![0xff, 0xfe],
        b"{\"name\": null}".to_vec(),
    ];
    for body in bodies {
        for (method, path) in [
            ("POST", "/v1/subscriptions"),
            ("POST", "/v1/agents/login"),
            ("PUT", "/v1/agents/session/state"),
            ("PATCH", "/v1/subscriptions/x"),
        ] {
            let status =
                app.request(method, path).bearer(&admin).raw(body.clone(), "application/json").send().await.status;
            assert!((400..500).contains(&status), "{method} {path} -> {status}");
        }
    }
    let mut after = app.admin_state().await;
    // The only thing that grew is the violations log, which is the record of these requests.
    assert_eq!(after["bounds"]["violations"]["held"], 28);
    after["bounds"]["violations"] = before["bounds"]["violations"].clone();
    assert_eq!(after, before);
}

#[tokio::test]
async fn a_path_segment_that_is_not_utf8_is_400_in_the_envelope_with_axums_reason() {
    let app = TestApp::new();
    let admin = app.world_token("admin-full");
    let reply = app.get("/v1/subscriptions/%FF").bearer(&admin).send().await.expect(400, Some(SchemaId::ErrorResult));
    assert!(reply.diagnostic().contains("UTF-8"), "{}", reply.diagnostic());
}
