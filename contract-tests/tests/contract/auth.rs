//! The auth table: 400 (header) → 401 (token) → 403 (scope or role) → body, on every route.

use proptest::prelude::*;
use serde_json::{Value, json};
use wxcc_contract_tests::TestApp;
use wxcc_mock::World;

use crate::{block_on, login_body, subscription_body};

/// One call per WxCC operation, with a body that is valid for the caller `email`.
fn every_operation(app: &TestApp, email: &str) -> Vec<(&'static str, String, Option<Value>)> {
    let unknown = "/v1/subscriptions/00000000-0000-4000-8000-000000000000";
    let unknown_v2 = "/v2/subscriptions/00000000-0000-4000-8000-000000000000";
    vec![
        ("POST", "/v1/agents/login".into(), Some(login_body(app, email, "1001"))),
        ("PUT", "/v1/agents/logout".into(), Some(json!({"logoutReason": "done"}))),
        ("POST", "/v1/agents/logout".into(), Some(json!({"logoutReason": "done"}))),
        ("PUT", "/v1/agents/session/state".into(), Some(json!({"state": "Available", "auxCodeId": "0"}))),
        ("POST", "/v1/agents/reload".into(), None),
        ("POST", "/v1/subscriptions".into(), Some(subscription_body("auth table"))),
        ("GET", "/v1/subscriptions".into(), None),
        ("GET", unknown.into(), None),
        ("PATCH", unknown.into(), Some(json!({"description": "x"}))),
        ("DELETE", unknown.into(), None),
        ("GET", "/v1/event-types".into(), None),
        ("POST", "/v1/agents/buddyList".into(), Some(json!({"agentProfileId": "p", "mediaType": "telephony"}))),
        ("POST", "/v1/notification/subscribe".into(), Some(json!({"clientType": "Auth", "allowMultiLogin": true}))),
        ("POST", "/v2/subscriptions".into(), Some(v2_body())),
        ("GET", "/v2/subscriptions".into(), None),
        ("GET", unknown_v2.into(), None),
        ("PATCH", unknown_v2.into(), Some(json!({"resourceVersion": "agent:1.0.0"}))),
        ("DELETE", unknown_v2.into(), None),
        ("GET", "/v2/event-types".into(), None),
    ]
}

fn v2_body() -> Value {
    let mut body = subscription_body("auth table v2");
    body["resourceVersion"] = json!("agent:1.0.0");
    body
}

async fn call(app: &TestApp, method: &str, path: &str, body: &Option<Value>, auth: Option<&str>) -> u16 {
    let mut request = app.request(method, path);
    if let Some(auth) = auth {
        request = request.header("authorization", auth);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    request.send().await.status
}

#[tokio::test]
async fn a_missing_or_malformed_authorization_header_is_400_on_every_route() {
    let app = TestApp::new();
    let token = app.world_token("admin-full");
    for (method, path, body) in every_operation(&app, "admin@wxcc.example") {
        assert_eq!(call(&app, method, &path, &body, None).await, 400, "{method} {path} without a header");
        for bad in [token.clone(), format!("Basic {token}"), "Bearer".into(), format!("Bearer {token} extra")] {
            assert_eq!(call(&app, method, &path, &body, Some(&bad)).await, 400, "{method} {path} with '{bad}'");
        }
    }
}

#[tokio::test]
async fn an_unknown_or_expired_token_is_401_on_every_route() {
    let app = TestApp::new();
    let expired = app.world_token("agent2-expired");
    let org = app.org_of("admin@wxcc.example");
    for (method, path, body) in every_operation(&app, "admin@wxcc.example") {
        for token in ["nonsense".to_owned(), format!("forged_P0A1_{org}"), expired.clone()] {
            let status = call(&app, method, &path, &body, Some(&format!("Bearer {token}"))).await;
            assert_eq!(status, 401, "{method} {path} with {token}");
        }
    }
}

#[tokio::test]
async fn an_expired_token_is_explained() {
    let app = TestApp::new();
    let reply = app.post("/v1/agents/reload").bearer(&app.world_token("agent2-expired")).send().await.expect(401, None);
    assert!(reply.diagnostic().contains("agent2@wxcc.example"), "{}", reply.diagnostic());
    assert!(reply.diagnostic().contains("expired"), "{}", reply.diagnostic());
}

#[tokio::test]
async fn a_minted_token_stops_working_when_it_expires() {
    let app = TestApp::new();
    let token = app.token("agent2@wxcc.example", &["cjp:user"]);
    app.post("/v1/agents/reload").bearer(&token).send().await.expect(202, None);
    app.advance(3_600_000).await;
    app.post("/v1/agents/reload").bearer(&token).send().await.expect(401, None);
}

#[tokio::test]
async fn the_administrator_with_every_scope_passes_auth_everywhere() {
    let app = TestApp::new();
    let token = app.world_token("admin-full");
    for (method, path, body) in every_operation(&app, "admin@wxcc.example") {
        let status = call(&app, method, &path, &body, Some(&format!("Bearer {token}"))).await;
        assert!([200, 201, 202, 404].contains(&status), "{method} {path} -> {status}");
    }
}

#[tokio::test]
async fn scopes_without_the_administrator_role_are_403_on_subscriptions_and_202_on_agents() {
    let app = TestApp::new();
    let token = app.world_token("forum-case-agent1");
    for (method, path, body) in every_operation(&app, "agent1@wxcc.example") {
        let status = call(&app, method, &path, &body, Some(&format!("Bearer {token}"))).await;
        let expected = if path.starts_with("/v1/agents") {
            202
        } else if path.starts_with("/v1/notification") {
            200
        } else {
            403
        };
        assert_eq!(status, expected, "{method} {path}");
    }
}

#[tokio::test]
async fn the_administrator_role_without_the_write_scope_is_403_on_writes_only() {
    let app = TestApp::new();
    let token = app.world_token("admin-read-only");
    let reply = app.post("/v1/subscriptions").bearer(&token).json(&subscription_body("nope")).send().await;
    let reply = reply.expect(403, None);
    assert!(reply.diagnostic().contains("lacks the scope cjp:config_write"), "{}", reply.diagnostic());
    app.get("/v1/subscriptions").bearer(&token).send().await.expect(200, None);
    app.get("/v1/event-types").bearer(&token).send().await.expect(200, None);
}

#[tokio::test]
async fn a_token_without_cjp_user_cannot_log_in() {
    let app = TestApp::new();
    let token = app.token("agent1@wxcc.example", &["cjp:config_read"]);
    let body = login_body(&app, "agent1@wxcc.example", "1001");
    let reply = app.post("/v1/agents/login").bearer(&token).json(&body).send().await.expect(403, None);
    assert!(reply.diagnostic().contains("cjp:user"), "{}", reply.diagnostic());
    assert_eq!(reply.body["errorType"], "Forbidden");
}

#[tokio::test]
async fn a_supervisor_may_log_out_without_cjp_user_because_logout_accepts_roles() {
    let app = TestApp::new();
    let token = app.token("supervisor@wxcc.example", &[]);
    app.post("/v1/agents/logout").bearer(&token).json(&json!({"logoutReason": "x"})).send().await.expect(202, None);
    let agent = app.token("agent2@wxcc.example", &[]);
    app.post("/v1/agents/logout").bearer(&agent).json(&json!({"logoutReason": "x"})).send().await.expect(403, None);
}

#[tokio::test]
async fn authorization_is_checked_before_the_body() {
    let app = TestApp::new();
    let agent = app.world_token("forum-case-agent1");
    for (method, path) in [("POST", "/v1/subscriptions"), ("PATCH", "/v1/subscriptions/x")] {
        let status =
            app.request(method, path).bearer(&agent).raw(b"{not json".to_vec(), "application/json").send().await.status;
        assert_eq!(status, 403, "{method} {path}");
        let status =
            app.request(method, path).bearer("junk").raw(b"{not json".to_vec(), "application/json").send().await.status;
        assert_eq!(status, 401, "{method} {path}");
    }
    let no_scope = app.token("agent1@wxcc.example", &[]);
    let status = app.post("/v1/agents/login").bearer(&no_scope).json(&json!({"dialNumber": 5})).send().await.status;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn an_org_id_query_parameter_naming_another_organisation_is_403() {
    let app = TestApp::new();
    let token = app.world_token("admin-full");
    let globex = app.org_of("admin@globex.example");
    let own = app.org_of("admin@wxcc.example");
    let reply = app.get(&format!("/v1/subscriptions?orgId={globex}")).bearer(&token).send().await.expect(403, None);
    assert!(reply.diagnostic().contains(&globex), "{}", reply.diagnostic());
    app.get(&format!("/v1/subscriptions?orgId={own}")).bearer(&token).send().await.expect(200, None);
}

// ---- The auth table as a property: random roles, random scopes, random operation. ----

const SCOPES: &[&str] = &["cjp:config", "cjp:config_read", "cjp:config_write", "cjp:user", "spark:people_read"];
const ROLES: &[&str] = &[
    "cjp.admin",
    "id_full_admin",
    "id_readonly_admin",
    "cjp.supervisor",
    "cjp.agent",
    "atlas-portal.partner.salesadmin",
];

/// The oracle, written from facts §2.3 independently of the server's table.
fn allowed(method: &str, path: &str, scopes: &[&str], roles: &[&str]) -> bool {
    let scope = |s: &str| scopes.contains(&s);
    let role = |any: &[&str]| roles.iter().any(|r| any.contains(r));
    if path.starts_with("/v1/notification") {
        scope("cjp:user")
            || role(&[
                "id_full_admin",
                "id_readonly_admin",
                "atlas-portal.partner.salesadmin",
                "cjp.supervisor",
                "cjp.admin",
                "atlas-portal.partner.provision_admin",
                "cloud-contact-center:pod_conv",
            ])
    } else if path.starts_with("/v1/agents/logout") {
        scope("cjp:user")
            || role(&[
                "id_full_admin",
                "id_readonly_admin",
                "cjp.admin",
                "cjp.supervisor",
                "atlas-portal.partner.salesadmin",
                "atlas-portal.partner.provision_admin",
            ])
    } else if path.starts_with("/v1/agents") {
        scope("cjp:user")
    } else if method == "GET" {
        scope("cjp:config_read") && role(&["cjp.admin", "id_full_admin", "id_readonly_admin"])
    } else {
        scope("cjp:config_write") && role(&["cjp.admin", "id_full_admin"])
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn the_status_always_follows_the_auth_table(
        roles in proptest::sample::subsequence(ROLES.to_vec(), 0..=ROLES.len()),
        scopes in proptest::sample::subsequence(SCOPES.to_vec(), 0..=SCOPES.len()),
        op_index in 0usize..19,
        header_case in 0u8..8,
    ) {
        let mut world = World::default_world();
        let user = &mut world.orgs[0].users[2];
        user.roles = roles.iter().map(|r| (*r).to_owned()).collect();
        let email = user.email.clone();
        let app = TestApp::with_world(world);
        let token = app.token(&email, &scopes);
        let (method, path, body) = every_operation(&app, &email).swap_remove(op_index);
        let (auth, expected): (Option<String>, Option<u16>) = match header_case {
            0 => (None, Some(400)),
            1 => (Some(format!("Token {token}")), Some(400)),
            2 => (Some("Bearer not-a-token".into()), Some(401)),
            _ => (Some(format!("Bearer {token}")), None),
        };
        let status = block_on(call(&app, method, &path, &body, auth.as_deref()));
        match expected {
            Some(code) => prop_assert_eq!(status, code),
            None if allowed(method, &path, &scopes, &roles) => {
                prop_assert!([200, 201, 202, 404].contains(&status), "{} {} -> {}", method, path, status);
            }
            None => prop_assert_eq!(status, 403, "{} {} roles {:?} scopes {:?}", method, path, roles, scopes),
        }
    }
}
