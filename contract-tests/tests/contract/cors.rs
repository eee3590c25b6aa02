//! CORS on the WxCC routes: a widget on a localhost origin (or one named with --cors-origin) can
//! call the mock from a browser; other origins and the admin API get no Access-Control headers.

use serde_json::json;
use wxcc_contract_tests::TestApp;
use wxcc_mock::access::AccessConfig;
use wxcc_mock::state::StateOptions;

fn preflight<'a>(app: &'a TestApp, path: &str, origin: &str) -> wxcc_contract_tests::RequestBuilder<'a> {
    app.request("OPTIONS", path)
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization,content-type,trackingid")
}

#[tokio::test]
async fn a_page_on_localhost_gets_its_preflight_answered_and_can_read_answers_and_errors() {
    let app = TestApp::new();
    let origin = "http://localhost:3000";
    let reply = preflight(&app, "/v1/agents/login", origin).send().await;
    assert!((200..300).contains(&reply.status), "{}", reply.status);
    assert_eq!(reply.headers["access-control-allow-origin"], origin);
    let methods = reply.headers["access-control-allow-methods"].to_ascii_uppercase();
    assert!(methods.contains("POST") && methods.contains("PUT"), "{methods}");
    let headers = reply.headers["access-control-allow-headers"].to_ascii_lowercase();
    assert!(headers.contains("authorization") && headers.contains("trackingid"), "{headers}");
    assert_eq!(reply.headers["access-control-max-age"], "600");
    assert!(
        reply.headers["trackingid"].starts_with("AQM_"),
        "a preflight has its service's TrackingID as every answer"
    );

    // A refusal carries them too, and exposes the TrackingID and the diagnostic.
    let agent = app.world_token("forum-case-agent1");
    let body =
        json!({"name": "widget", "eventTypes": ["agent:login"], "destinationUrl": "https://hooks.example.com/x"});
    let refused = app.post("/v1/subscriptions").bearer(&agent).header("origin", origin).json(&body).send().await;
    let refused = refused.expect(403, None);
    assert_eq!(refused.headers["access-control-allow-origin"], origin);
    let exposed = refused.headers["access-control-expose-headers"].to_ascii_lowercase();
    assert!(exposed.contains("trackingid") && exposed.contains("x-wxcc-mock-diagnostic"), "{exposed}");
    for local in ["http://127.0.0.1:8081", "http://[::1]:5173"] {
        let reply = app.get("/v1/event-types").bearer(&agent).header("origin", local).send().await;
        assert_eq!(reply.headers.get("access-control-allow-origin").map(String::as_str), Some(local));
    }
}

#[tokio::test]
async fn the_served_mock_answers_preflights_and_adds_cors_headers_as_the_in_process_one_does() {
    // `serve` puts the browser layer around the router once; in process it is the router's
    // fallback. Both must behave alike.
    let app = TestApp::spawn().await;
    let origin = "http://localhost:3000";
    let reply = preflight(&app, "/v1/subscriptions", origin).send().await;
    assert!((200..300).contains(&reply.status), "{}", reply.status);
    assert_eq!(reply.headers["access-control-allow-origin"], origin);
    assert!(reply.headers["trackingid"].starts_with("NOTIFS_"), "{:?}", reply.headers);
    let admin = app.world_token("admin-full");
    let reply = app.get("/v1/event-types").bearer(&admin).header("origin", origin).send().await.expect(200, None);
    assert_eq!(reply.headers["access-control-allow-origin"], origin);
    let reply = app.get("/v1/nowhere").bearer(&admin).header("origin", origin).send().await.expect(404, None);
    assert_eq!(reply.headers["access-control-allow-origin"], origin, "the fallbacks too");
    let plain = app.get("/v1/event-types").bearer(&admin).send().await.expect(200, None);
    assert!(!plain.headers.contains_key("access-control-allow-origin") && !plain.headers.contains_key("vary"));
}

#[tokio::test]
async fn a_caller_that_is_not_a_browser_gets_no_cors_headers_at_all() {
    let app = TestApp::new();
    let admin = app.world_token("admin-full");
    let reply = app.get("/v1/event-types").bearer(&admin).send().await.expect(200, None);
    let cors: Vec<&String> =
        reply.headers.keys().filter(|name| name.starts_with("access-control-") || *name == "vary").collect();
    assert!(cors.is_empty(), "no Origin, no CORS: {cors:?}");
}

#[tokio::test]
async fn other_origins_and_the_admin_api_get_no_cors_headers() {
    let app = TestApp::new();
    let agent = app.world_token("agent2");
    let reply = app.get("/v1/event-types").bearer(&agent).header("origin", "https://evil.example.com").send().await;
    assert!(!reply.headers.contains_key("access-control-allow-origin"));
    let admin = preflight(&app, "/__admin/reset", "http://localhost:3000").send().await;
    assert!(!admin.headers.contains_key("access-control-allow-origin"), "the admin API is the developer's");
    let state = app.get("/__admin/state").header("origin", "http://localhost:3000").send().await.expect(200, None);
    assert!(!state.headers.contains_key("access-control-allow-origin"));
}

#[tokio::test]
async fn cors_origin_names_the_origins_allowed_instead_of_localhost() {
    let options = StateOptions {
        access: AccessConfig { cors_origins: vec!["https://widget.example.com".into()], ..Default::default() },
        ..StateOptions::default()
    };
    let app = TestApp::with_options(wxcc_mock::World::default_world(), options);
    let agent = app.world_token("agent2");
    let named = app.get("/v1/event-types").bearer(&agent).header("origin", "https://widget.example.com").send().await;
    assert_eq!(named.headers["access-control-allow-origin"], "https://widget.example.com");
    let local = app.get("/v1/event-types").bearer(&agent).header("origin", "http://localhost:3000").send().await;
    assert!(!local.headers.contains_key("access-control-allow-origin"));
}
