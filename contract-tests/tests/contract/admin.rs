//! `/__admin`: the mock's own API.

use serde_json::json;
use wxcc_contract_tests::TestApp;
use wxcc_schemas::SchemaId;

use crate::subscription_body;

#[tokio::test]
async fn health_is_200() {
    let app = TestApp::new();
    let reply = app.get("/__admin/health").send().await.expect(200, None);
    assert_eq!(reply.body["status"], "ok");
}

#[tokio::test]
async fn minting_a_token_answers_201_with_the_users_roles_and_the_token_works() {
    let app = TestApp::new();
    let body =
        json!({"email": "admin@wxcc.example", "scopes": ["cjp:config_write", "cjp:config_read"], "ttlSeconds": 60});
    let reply = app.post("/__admin/tokens").json(&body).send().await.expect(201, Some(SchemaId::AdminTokenResponse));
    let minted = reply.body;
    let org = app.org_of("admin@wxcc.example");
    assert_eq!(minted["orgId"], org);
    assert_eq!(minted["userId"], app.user_id("admin@wxcc.example"));
    assert_eq!(minted["roles"], json!(["cjp.admin", "cjp.agent"]));
    assert_eq!(minted["expiresAt"], wxcc_contract_tests::TEST_EPOCH_MS + 60_000);
    let token = minted["accessToken"].as_str().expect("token");
    assert!(token.ends_with(&format!("_P0A1_{org}")), "{token}");
    app.post("/v1/subscriptions").bearer(token).json(&subscription_body("minted")).send().await.expect(201, None);
}

#[tokio::test]
async fn minting_for_an_unknown_email_is_404_and_a_bad_body_is_400() {
    let app = TestApp::new();
    let reply = app
        .post("/__admin/tokens")
        .json(&json!({"email": "nobody@wxcc.example", "scopes": []}))
        .send()
        .await
        .expect(404, None);
    assert!(reply.diagnostic().contains("agent1@wxcc.example"), "lists the known users: {}", reply.diagnostic());
    let reply =
        app.post("/__admin/tokens").json(&json!({"email": "admin@wxcc.example"})).send().await.expect(400, None);
    assert!(reply.body["error"]["message"].as_str().unwrap_or_default().contains("/scopes: is required"));
}

#[tokio::test]
async fn a_negative_ttl_mints_an_already_expired_token() {
    let app = TestApp::new();
    let body = json!({"email": "agent2@wxcc.example", "scopes": ["cjp:user"], "ttlSeconds": -1});
    let reply = app.post("/__admin/tokens").json(&body).send().await.expect(201, None);
    let token = reply.body["accessToken"].as_str().expect("token").to_owned();
    app.post("/v1/agents/reload").bearer(&token).send().await.expect(401, None);
}

#[tokio::test]
async fn state_shows_the_world_and_the_live_state() {
    let app = TestApp::new();
    let state = app.admin_state().await;
    let orgs = state["orgs"].as_array().expect("orgs");
    assert_eq!(orgs.len(), 2);
    for org in orgs {
        assert!(org["id"].is_string());
        assert!(!org["teams"].as_array().expect("teams").is_empty());
        assert!(org["teams"][0]["id"].is_string());
        assert!(!org["users"].as_array().expect("users").is_empty());
        assert!(!org["auxCodes"].as_array().expect("aux codes").is_empty());
    }
    assert_eq!(state["agentSessions"], json!([]));
    assert_eq!(state["subscriptions"], json!([]));
    assert!(
        state["tokens"]
            .as_array()
            .expect("tokens")
            .iter()
            .any(|t| { t["accessToken"].as_str().unwrap_or_default().starts_with("forum-case-agent1_") })
    );
}

#[tokio::test]
async fn reset_returns_to_the_loaded_world() {
    let app = TestApp::new();
    let admin = app.world_token("admin-full");
    let agent = app.world_token("agent2");
    let minted = app.token("agent2@wxcc.example", &["cjp:user"]);
    app.post("/v1/subscriptions").bearer(&admin).json(&subscription_body("gone soon")).send().await.expect(201, None);
    crate::log_in(&app, &agent, "agent2@wxcc.example", "1002").await;
    let before = app.admin_state().await;
    assert_eq!(before["subscriptions"].as_array().map(Vec::len), Some(1));
    assert_eq!(before["agentSessions"].as_array().map(Vec::len), Some(1));

    app.post("/__admin/reset").json(&json!({})).send().await.expect(200, None);
    let after = app.admin_state().await;
    assert_eq!(after["subscriptions"], json!([]));
    assert_eq!(after["agentSessions"], json!([]));
    assert_eq!(after["agentOutcomes"], json!([]));
    assert_eq!(after["orgs"], before["orgs"]);
    app.post("/v1/agents/reload").bearer(&minted).send().await.expect(401, None);
    app.post("/v1/agents/reload").bearer(&agent).send().await.expect(202, None);
}

#[tokio::test]
async fn admin_errors_are_plain_json_with_a_tracking_id() {
    let app = TestApp::new();
    let reply = app.get("/__admin/nope").send().await.expect(404, None);
    assert_eq!(reply.body["error"]["status"], 404);
    assert_eq!(reply.body["trackingId"], reply.tracking_id());
    assert!(reply.tracking_id().starts_with("WXCCMOCK_"));
}

#[tokio::test]
async fn the_admin_api_answers_only_requests_addressed_to_the_mock() {
    let options = wxcc_mock::state::StateOptions {
        access: wxcc_mock::access::AccessConfig {
            allow_hosts: vec!["wxcc-mock.lan".into()],
            public_url: Some("https://mock.dev.example.com:8443".parse().expect("url")),
            ..Default::default()
        },
        ..Default::default()
    };
    let app = TestApp::with_options(wxcc_mock::World::default_world(), options);
    app.state().bind_to("192.168.1.20:8080".parse().expect("addr"));
    for host in [
        "localhost:8080",
        "127.0.0.1:8080",
        "[::1]:8080",
        "192.168.1.20:8080",
        "wxcc-mock.lan",
        "mock.dev.example.com:8443",
    ] {
        app.get("/__admin/health").header("host", host).send().await.expect(200, None);
    }
    for host in ["evil.example.com", "127.0.0.1.nip.io:8080", "localhost.evil.example.com"] {
        let reply = app.get("/__admin/state").header("host", host).send().await.expect(403, None);
        assert!(reply.diagnostic().contains("DNS rebinding"), "{}", reply.diagnostic());
    }
    // The WxCC API itself does not care about Host.
    let token = app.world_token("admin-full");
    app.get("/v1/subscriptions").bearer(&token).header("host", "evil.example.com").send().await.expect(200, None);
}

#[tokio::test]
async fn a_state_changing_admin_request_with_a_body_must_be_json_and_a_web_page_on_another_origin_cannot_send_one() {
    let app = TestApp::new();
    let token = app.world_token("admin-full");
    app.post("/v1/subscriptions").bearer(&token).json(&subscription_body("kept")).send().await.expect(201, None);
    let form = app.post("/__admin/reset").raw(b"x=1".to_vec(), "application/x-www-form-urlencoded").send().await;
    assert!(form.expect(415, None).diagnostic().contains("Content-Type: application/json"));
    app.post("/__admin/reset").raw(Vec::new(), "text/plain").send().await.expect(415, None);
    // What a page on another origin can send without asking first: no body, and its Origin.
    let page = app.post("/__admin/reset").header("origin", "https://evil.example.com").send().await;
    assert!(page.expect(403, None).diagnostic().contains("https://evil.example.com"));
    let page = app.delete("/__admin/violations").header("sec-fetch-site", "cross-site").send().await;
    page.expect(403, None);
    let listed = app.get("/v1/subscriptions").bearer(&token).send().await.expect(200, None);
    assert_eq!(listed.body["meta"]["subscriptionCount"], 1, "nothing was reset");
    app.post("/__admin/reset").header("content-type", "application/json; charset=utf-8").send().await.expect(200, None);
    let listed = app.get("/v1/subscriptions").bearer(&token).send().await.expect(200, None);
    assert_eq!(listed.body["meta"]["subscriptionCount"], 0);
    // A body-less command from curl (no Origin) or from the mock's own origin is fine.
    app.post("/v1/subscriptions").bearer(&token).json(&subscription_body("again")).send().await.expect(201, None);
    app.post("/__admin/reset").header("origin", "http://localhost:8080").send().await.expect(200, None);
    let listed = app.get("/v1/subscriptions").bearer(&token).send().await.expect(200, None);
    assert_eq!(listed.body["meta"]["subscriptionCount"], 0);
    app.post("/__admin/reset").send().await.expect(200, None);
}

fn with_admin_token(token: &str) -> TestApp {
    let options = wxcc_mock::state::StateOptions {
        access: wxcc_mock::access::AccessConfig { admin_token: Some(token.into()), ..Default::default() },
        ..Default::default()
    };
    TestApp::with_options(wxcc_mock::World::default_world(), options)
}

#[tokio::test]
async fn with_an_admin_token_the_admin_api_needs_it() {
    let app = with_admin_token("s3cret-admin");
    let reply = app.get("/__admin/state").send().await.expect(401, None);
    assert!(reply.diagnostic().contains("--admin-token"));
    app.get("/__admin/state").bearer("wrong").send().await.expect(401, None);
    app.get("/__admin/state").bearer("s3cret-admin").send().await.expect(200, None);
    let minted = app
        .post("/__admin/tokens")
        .bearer("s3cret-admin")
        .json(&json!({"email": "agent2@wxcc.example", "scopes": ["cjp:user"]}))
        .send()
        .await;
    minted.expect(201, None);
}

#[tokio::test]
async fn the_dashboard_is_one_page_that_loads_nothing_from_elsewhere_and_cannot_be_framed() {
    let app = with_admin_token("s3cret-admin");
    // The page itself holds nothing secret, so it loads without the admin token (it asks for it);
    // what it reads does not.
    let page = app.get("/__admin/ui").send().await.expect(200, None);
    assert!(page.headers["content-type"].starts_with("text/html"));
    let policy = &page.headers["content-security-policy"];
    assert!(policy.contains("default-src 'none'") && policy.contains("connect-src 'self'"), "{policy}");
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    assert_eq!(page.headers["x-frame-options"], "DENY");
    let html = String::from_utf8(page.raw).expect("UTF-8");
    assert!(html.contains("/__admin/journal/stream"), "it follows the journal stream");
    for external in ["http://", "https://", "//cdn"] {
        assert!(!html.contains(external), "the page names nothing outside the mock ({external})");
    }
    app.get("/__admin/state").send().await.expect(401, None);
    // Like the rest of /__admin, it answers only requests addressed to the mock.
    app.get("/__admin/ui").header("host", "evil.example.com").send().await.expect(403, None);
}

#[tokio::test]
async fn minting_past_the_bound_answers_409_and_says_which_bound() {
    let options = wxcc_mock::state::StateOptions { max_minted_tokens: 1, ..Default::default() };
    let app = TestApp::with_options(wxcc_mock::World::default_world(), options);
    let mint = json!({"email": "agent2@wxcc.example", "scopes": ["cjp:user"]});
    app.post("/__admin/tokens").json(&mint).send().await.expect(201, None);
    let full = app.post("/__admin/tokens").json(&mint).send().await.expect(409, None);
    assert!(full.diagnostic().contains("--max-minted-tokens"), "{}", full.diagnostic());
    assert_eq!(app.admin_state().await["bounds"]["mintedTokens"]["held"], 1);
}

#[tokio::test]
async fn a_state_file_that_cannot_be_written_is_counted_and_the_request_still_answers() {
    let options = wxcc_mock::state::StateOptions {
        state_file: Some(std::path::PathBuf::from("/nonexistent-wxcc-mock-dir/state.json")),
        ..Default::default()
    };
    let app = TestApp::with_options(wxcc_mock::World::default_world(), options);
    let token = app.world_token("admin-full");
    app.post("/v1/subscriptions").bearer(&token).json(&subscription_body("kept")).send().await.expect(201, None);
    let bounds = app.admin_state().await["bounds"].clone();
    assert_eq!(bounds["stateFileWriteFailures"], 1, "{bounds}");
}

#[tokio::test]
async fn a_token_expired_through_the_admin_api_is_a_401_that_says_so_until_a_reset_gives_it_back() {
    let app = TestApp::new();
    let agent = app.world_token("agent2");
    let expired = app.post("/__admin/tokens/expire").json(&serde_json::json!({"token": "agent2"})).send().await;
    let expired = expired.expect(200, None);
    assert_eq!(expired.body["owner"], "agent2@wxcc.example");
    let refused = app.post("/v1/notification/subscribe").bearer(&agent).json(&serde_json::json!({})).send().await;
    assert!(
        refused.status == 401 && refused.diagnostic().contains("expired"),
        "{} {}",
        refused.status,
        refused.diagnostic()
    );
    let unknown = app.post("/__admin/tokens/expire").json(&serde_json::json!({"token": "nobody"})).send().await;
    assert!(unknown.expect(404, None).diagnostic().contains("agent2"), "the world's token names are listed");
    app.post("/__admin/reset").send().await.expect(200, None);
    let back = app.post("/v1/notification/subscribe").bearer(&agent).json(&serde_json::json!({})).send().await;
    assert_ne!(back.status, 401, "the reset gave the world token its expiry back: {}", back.diagnostic());
}
