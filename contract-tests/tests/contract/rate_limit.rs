//! `--rate-limit N/min`: per client id, 429 with no body and `Retry-After`, on the mock's clock.

use serde_json::json;
use wxcc_contract_tests::TestApp;
use wxcc_mock::state::StateOptions;

fn limited(per_minute: &str) -> TestApp {
    let options = StateOptions { rate_limit: Some(per_minute.parse().expect("a limit")), ..StateOptions::default() };
    TestApp::with_options(wxcc_mock::World::default_world(), options)
}

async fn mint(app: &TestApp, email: &str, client_id: Option<&str>) -> String {
    let mut body = json!({"email": email, "scopes": ["cjp:config_read", "cjp:user"]});
    if let Some(client) = client_id {
        body["clientId"] = json!(client);
    }
    let minted = app.post("/__admin/tokens").json(&body).send().await.expect(201, None);
    assert_eq!(minted.body["clientId"], client_id.unwrap_or("wxcc-mock"));
    minted.body["accessToken"].as_str().expect("a token").to_owned()
}

#[tokio::test]
async fn a_client_past_its_limit_gets_429_without_a_body_and_with_retry_after_until_the_clock_moves() {
    let app = limited("3/min");
    let crm = mint(&app, "admin@wxcc.example", Some("crm-connector")).await;
    for _ in 0..3 {
        app.get("/v1/event-types").bearer(&crm).send().await.expect(200, None);
    }
    // The harness checks every 429: no body, Retry-After in whole seconds, a TrackingID.
    let refused = app.get("/v1/event-types").bearer(&crm).header("origin", "http://localhost:3000").send().await;
    let refused = refused.expect(429, None);
    assert_eq!(refused.headers["retry-after"], "20", "one request comes back every 60/3 s");
    assert!(refused.tracking_id().starts_with("NOTIFS_"));
    assert!(refused.diagnostic().contains("crm-connector") && refused.diagnostic().contains("--rate-limit"));
    assert_eq!(refused.headers["access-control-allow-origin"], "http://localhost:3000", "with CORS headers");

    // Another integration has its own minute, even for the same user.
    let desktop = mint(&app, "admin@wxcc.example", Some("desktop")).await;
    app.get("/v1/event-types").bearer(&desktop).send().await.expect(200, None);

    // On the mock's clock: 19 s later it is still 429, 20 s later one more goes through.
    app.clock().advance(19_000).await.expect("virtual");
    let still = app.get("/v1/event-types").bearer(&crm).send().await.expect(429, None);
    assert_eq!(still.headers["retry-after"], "1");
    app.clock().advance(1_000).await.expect("virtual");
    app.get("/v1/event-types").bearer(&crm).send().await.expect(200, None);

    // Counted and shown, and each refusal is in the journal with its diagnostic.
    let state = app.admin_state().await;
    assert_eq!(state["bounds"]["rateLimit"], json!({"perMinute": 3, "clients": 2, "refused": 2}));
    let journal = app.get("/__admin/journal?kind=http").send().await.expect(200, None);
    let refusals: Vec<_> =
        journal.body["entries"].as_array().expect("entries").iter().filter(|e| e["status"] == 429).collect();
    assert_eq!(refusals.len(), 2);
    assert!(refusals[0]["diagnostic"].as_str().is_some_and(|d| d.contains("Retry-After")));
}

#[tokio::test]
async fn tokens_that_name_no_client_share_one_and_a_reset_gives_every_client_a_full_minute() {
    let app = limited("2/min");
    let agent = app.world_token("agent2");
    let admin = mint(&app, "admin@wxcc.example", None).await;
    app.get("/v1/event-types").bearer(&admin).send().await.expect(200, None);
    app.put("/v1/agents/session/state")
        .bearer(&agent)
        .json(&json!({"state": "Available", "auxCodeId": "0"}))
        .send()
        .await
        .expect(202, None);
    app.get("/v1/event-types").bearer(&admin).send().await.expect(429, None);
    app.post("/__admin/reset").send().await.expect(200, None);
    app.get("/v1/event-types").bearer(&app.world_token("admin-full")).send().await.expect(200, None);
}

#[tokio::test]
async fn a_bad_token_is_401_and_a_missing_scope_past_the_limit_is_429_as_the_request_is_not_processed() {
    let app = limited("1/min");
    let agent = app.world_token("agent2");
    app.get("/v1/event-types")
        .bearer("nobody_P0A1_14091636-52e9-4d11-bd49-53df3b39f246")
        .send()
        .await
        .expect(401, None);
    // agent2 may not list event types (403), and the 403 counts as a request.
    app.get("/v1/event-types").bearer(&agent).send().await.expect(403, None);
    app.get("/v1/event-types").bearer(&agent).send().await.expect(429, None);
    // The mock's own API is never limited.
    for _ in 0..3 {
        app.get("/__admin/state").send().await.expect(200, None);
    }
}

#[tokio::test]
async fn without_rate_limit_nothing_is_limited_and_the_state_says_so() {
    let app = TestApp::new();
    let token = app.world_token("admin-full");
    for _ in 0..400 {
        app.get("/v1/event-types").bearer(&token).send().await.expect(200, None);
    }
    assert_eq!(app.admin_state().await["bounds"]["rateLimit"], serde_json::Value::Null);
}

/// The default world with these `rateLimits` (and `--rate-limit` if given).
fn with_rules(rules: serde_json::Value, global: Option<&str>) -> TestApp {
    let mut world = serde_json::to_value(wxcc_mock::World::default_world()).expect("world");
    world["rateLimits"] = rules;
    let world = wxcc_mock::World::from_json(&world.to_string()).expect("a world with rate limits");
    let options = StateOptions { rate_limit: global.map(|g| g.parse().expect("a limit")), ..StateOptions::default() };
    TestApp::with_options(world, options)
}

#[tokio::test]
async fn the_worlds_rules_limit_a_client_or_a_route_without_the_flag_and_say_which_rule() {
    let app = with_rules(
        json!([
            {"route": "POST /__admin/tokens", "perMinute": 1},
            {"clientId": "crm", "route": "GET /v1/event-types", "perMinute": 2},
        ]),
        None,
    );
    let crm = mint(&app, "admin@wxcc.example", Some("crm")).await;
    let other = mint(&app, "admin@wxcc.example", Some("desktop")).await;
    for _ in 0..2 {
        app.get("/v1/event-types").bearer(&crm).send().await.expect(200, None);
    }
    let refused = app.get("/v1/event-types").bearer(&crm).send().await.expect(429, None);
    assert_eq!(refused.headers["retry-after"], "30");
    assert!(refused.diagnostic().contains("the world's rateLimits[1]"), "{}", refused.diagnostic());
    // Another route of the same client, and the same route of another client: no rule, no flag.
    app.get("/v1/subscriptions").bearer(&crm).send().await.expect(200, None);
    for _ in 0..5 {
        app.get("/v1/event-types").bearer(&other).send().await.expect(200, None);
    }
    let state = app.admin_state().await;
    assert_eq!(state["bounds"]["rateLimitRules"][1]["refused"], 1, "{}", state["bounds"]);
    assert_eq!(state["bounds"]["rateLimit"], serde_json::Value::Null, "no --rate-limit");
    app.advance(30_000).await;
    app.get("/v1/event-types").bearer(&crm).send().await.expect(200, None);
}

#[tokio::test]
async fn a_rule_of_zero_exempts_an_organisation_from_the_flags_limit() {
    let globex = "f8c8b37f-12c0-41f3-9fed-11ae3b18fd04";
    let app = with_rules(json!([{"orgId": globex, "perMinute": 0}]), Some("1/min"));
    let theirs = app.world_token("globex-admin");
    for _ in 0..5 {
        app.get("/v1/event-types").bearer(&theirs).send().await.expect(200, None);
    }
    let ours = app.world_token("admin-full");
    app.get("/v1/event-types").bearer(&ours).send().await.expect(200, None);
    let refused = app.get("/v1/event-types").bearer(&ours).send().await.expect(429, None);
    assert!(refused.diagnostic().contains("(--rate-limit)"), "{}", refused.diagnostic());
}

#[test]
fn a_rule_for_an_unknown_organisation_or_a_badly_written_route_is_refused_with_the_world() {
    let mut world = serde_json::to_value(wxcc_mock::World::default_world()).expect("world");
    world["rateLimits"] = json!([{"route": "/v1/event-types", "perMinute": 1}]);
    let error = wxcc_mock::World::from_json(&world.to_string()).expect_err("no method").to_string();
    assert!(error.contains("rateLimits[0]: route \"/v1/event-types\" is written METHOD /path"), "{error}");
    world["rateLimits"] = json!([{"orgId": "00000000-0000-4000-8000-000000000000", "perMinute": 1}]);
    let error = wxcc_mock::World::from_json(&world.to_string()).expect_err("no such org").to_string();
    assert!(error.contains("rateLimits[0]: no organisation"), "{error}");
}
