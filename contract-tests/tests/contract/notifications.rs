//! `/v1/notification/subscribe` and the websocket, with a real client over a real socket.

use serde_json::{Value, json};
use wxcc_contract_tests::TestApp;
use wxcc_contract_tests::ws::Ws;
use wxcc_mock::notifications::{CLOSE_IDLE, CLOSE_MULTI_LOGIN};
use wxcc_mock::state::StateOptions;
use wxcc_schemas::SchemaId;

use crate::team_of;

const DESKTOP: &str = "AgentDesktop";

fn desktop() -> Value {
    json!({"clientType": DESKTOP, "isKeepAliveEnabled": false, "allowMultiLogin": false})
}

#[tokio::test]
async fn subscribe_answers_200_with_a_url_on_the_mocks_own_host() {
    let app = TestApp::spawn().await;
    let reply = app
        .post("/v1/notification/subscribe")
        .bearer(&app.world_token("agent2"))
        .json(&desktop())
        .send()
        .await
        .expect(200, Some(SchemaId::NotificationSubscribeResponse));
    let id = reply.body["subscriptionId"].as_str().expect("id");
    assert!(id.starts_with("AgentDesktop-"), "{id}");
    let base = app.base_url().expect("socket").replace("http://", "ws://");
    assert_eq!(reply.body["webSocketUrl"], format!("{base}/v1/notification/subscription/{id}"));
}

#[tokio::test]
async fn subscribe_needs_cjp_user_or_a_supervisor_role_and_multi_login_needs_a_client_type() {
    let app = TestApp::new();
    let no_scope = app.token("agent2@wxcc.example", &["cjp:config_read"]);
    app.post("/v1/notification/subscribe").bearer(&no_scope).send().await.expect(403, Some(SchemaId::ApiErrorResponse));
    let supervisor = app.token("supervisor@wxcc.example", &[]);
    app.post("/v1/notification/subscribe").bearer(&supervisor).send().await.expect(200, None);
    let reply = app
        .post("/v1/notification/subscribe")
        .bearer(&app.world_token("agent2"))
        .json(&json!({"allowMultiLogin": true}))
        .send()
        .await
        .expect(400, None);
    assert_eq!(reply.messages(), vec!["/clientType: is required"]);
    let reply = app.post("/v1/notification/subscribe").bearer(&app.world_token("agent2")).send().await;
    assert!(reply.expect(200, None).body["subscriptionId"].as_str().unwrap_or_default().starts_with("DefaultClient-"));
}

#[tokio::test]
async fn the_agent_flow_arrives_on_the_websocket_as_the_real_messages() {
    let app = TestApp::spawn().await;
    let token = app.world_token("agent2");
    let me = "agent2@wxcc.example";
    let mut ws = Ws::open(&app, &token, &desktop()).await;
    assert_eq!(ws.agent_id, app.user_id(me));

    let login = app
        .post("/v1/agents/login")
        .bearer(&token)
        .json(&crate::login_body(&app, me, "1002"))
        .send()
        .await
        .expect(202, None);
    let m = ws.next().await;
    assert_eq!(
        (m["type"].as_str(), m["data"]["type"].as_str()),
        (Some("StationLogin"), Some("AgentStationLoginSuccess"))
    );
    assert_eq!(m["trackingId"], login.tracking_id());
    assert_eq!(m["data"]["subStatus"], "Idle");
    assert_eq!(m["data"]["teamId"], team_of(&app, me));
    assert!(m["data"]["channelsMap"]["chat"].is_array());

    app.put("/v1/agents/session/state")
        .bearer(&token)
        .json(&json!({"state": "Available", "auxCodeId": "0"}))
        .send()
        .await
        .expect(202, None);
    let m = ws.next().await;
    assert_eq!(
        (m["type"].as_str(), m["data"]["type"].as_str()),
        (Some("AgentStateChange"), Some("AgentStateChangeSuccess"))
    );
    assert_eq!(m["data"]["subStatus"], "Available");
    assert_eq!(m["data"]["changedBy"], Value::Null);

    crate::log_in(&app, &token, me, "1002").await;
    let m = ws.next().await;
    assert_eq!(m["data"]["type"], "AgentStationLoginFailed");
    assert_eq!(m["data"]["reason"], "AGENT_ALREADY_LOGGED_IN");

    app.post("/v1/agents/reload").bearer(&token).send().await.expect(202, None);
    let m = ws.next().await;
    assert_eq!((m["type"].as_str(), m["data"]["subStatus"].as_str()), (Some("AgentReloginSuccess"), Some("Available")));

    app.post("/v1/agents/logout").bearer(&token).json(&json!({"logoutReason": "done"})).send().await.expect(202, None);
    let m = ws.next().await;
    assert_eq!((m["type"].as_str(), m["data"]["type"].as_str()), (Some("Logout"), Some("AgentLogoutSuccess")));

    app.post("/v1/agents/reload").bearer(&token).send().await.expect(202, None);
    let m = ws.next().await;
    assert_eq!(
        (m["type"].as_str(), m["data"]["reason"].as_str()),
        (Some("AgentReloginFailed"), Some("AGENT_NOT_FOUND"))
    );

    app.put("/v1/agents/logout").bearer(&token).json(&json!({"logoutReason": "again"})).send().await.expect(202, None);
    assert_eq!(ws.next().await["data"]["type"], "AgentLogoutFailed");
}

#[tokio::test]
async fn every_socket_of_the_agent_gets_the_result_and_a_supervisors_change_reaches_both_sides() {
    let app = TestApp::spawn().await;
    let token = app.world_token("agent2");
    let multi = json!({"clientType": DESKTOP, "allowMultiLogin": true});
    let mut first = Ws::open(&app, &token, &multi).await;
    let mut second = Ws::open(&app, &token, &multi).await;
    let mut supervisor = Ws::open(&app, &app.world_token("supervisor"), &desktop()).await;
    crate::log_in(&app, &token, "agent2@wxcc.example", "1002").await;
    assert_eq!(first.next().await["data"]["type"], "AgentStationLoginSuccess");
    assert_eq!(second.next().await["data"]["type"], "AgentStationLoginSuccess");

    let body = json!({"state": "Available", "auxCodeId": "0", "agentId": app.user_id("agent2@wxcc.example")});
    app.put("/v1/agents/session/state")
        .bearer(&app.world_token("supervisor"))
        .json(&body)
        .send()
        .await
        .expect(202, None);
    let seen_by_agent = first.next().await;
    assert_eq!(seen_by_agent["data"]["changedByName"], "Sam Supervisor");
    assert_eq!(second.next().await, seen_by_agent);
    assert_eq!(supervisor.next().await, seen_by_agent);
}

#[tokio::test]
async fn buddy_list_arrives_on_the_socket() {
    let app = TestApp::spawn().await;
    let token = app.world_token("agent2");
    let mut ws = Ws::open(&app, &token, &desktop()).await;
    let body = json!({"agentProfileId": "profile-1", "mediaType": "telephony"});
    app.post("/v1/agents/buddyList").bearer(&token).json(&body).send().await.expect(202, None);
    assert_eq!(ws.next().await["data"]["type"], "BuddyAgentsRetrieveFailed");

    let other = app.world_token("forum-case-agent1");
    crate::log_in(&app, &other, "agent1@wxcc.example", "1001").await;
    crate::log_in(&app, &token, "agent2@wxcc.example", "1002").await;
    assert_eq!(ws.next().await["data"]["type"], "AgentStationLoginSuccess");
    app.post("/v1/agents/buddyList").bearer(&token).json(&body).send().await.expect(202, None);
    let m = ws.next().await;
    assert_eq!(m["type"], "BuddyAgents");
    let list = m["data"]["agentList"].as_array().expect("list");
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["agentName"], "Alice Agent");
    assert_eq!(list[0]["dn"], "1001");
    let available_only = json!({"agentProfileId": "profile-1", "mediaType": "telephony", "state": "Available"});
    app.post("/v1/agents/buddyList").bearer(&token).json(&available_only).send().await.expect(202, None);
    assert_eq!(ws.next().await["data"]["agentList"], json!([]));
    app.post("/v1/agents/buddyList").bearer(&token).json(&json!({"mediaType": "fax"})).send().await.expect(400, None);
}

#[tokio::test]
async fn unknown_and_used_subscription_urls_are_refused() {
    let app = TestApp::spawn().await;
    let base = app.base_url().expect("socket").replace("http://", "ws://");
    let unknown = format!("{base}/v1/notification/subscription/AgentDesktop-00000000-0000-4000-8000-000000000000");
    assert!(Ws::connect(&unknown).await.is_err());
    app.get("/v1/notification/subscription/nope").send().await.expect(404, Some(SchemaId::ApiErrorResponse));

    let reply = app.post("/v1/notification/subscribe").bearer(&app.world_token("agent2")).json(&desktop()).send().await;
    let url = reply.expect(200, None).body["webSocketUrl"].as_str().expect("url").to_owned();
    let _first = Ws::connect(&url).await.expect("first connection");
    assert!(Ws::connect(&url).await.is_err(), "a subscription URL connects once");
}

#[tokio::test]
async fn without_multi_login_a_second_connection_needs_force_and_replaces_the_first() {
    let app = TestApp::spawn().await;
    let token = app.world_token("agent2");
    let mut first = Ws::open(&app, &token, &desktop()).await;
    let reply = app.post("/v1/notification/subscribe").bearer(&token).json(&desktop()).send().await.expect(409, None);
    assert!(reply.diagnostic().contains("force"), "{}", reply.diagnostic());
    // Another clientType is a separate group.
    let _other = Ws::open(&app, &token, &json!({"clientType": "Widget"})).await;

    let forced = json!({"clientType": DESKTOP, "force": true});
    let mut second = Ws::open(&app, &token, &forced).await;
    let kicked = first.next().await;
    assert_eq!(kicked["type"], "AGENT_MULTI_LOGIN");
    assert_eq!(first.closed().await, CLOSE_MULTI_LOGIN);
    app.post("/v1/agents/reload").bearer(&token).send().await.expect(202, None);
    assert_eq!(second.next().await["type"], "AgentReloginFailed");
}

#[tokio::test]
async fn multi_login_allows_ten_connections_and_force_replaces_the_oldest() {
    let app = TestApp::spawn().await;
    let token = app.world_token("agent2");
    let multi = json!({"clientType": DESKTOP, "allowMultiLogin": true});
    let mut sockets = Vec::new();
    for _ in 0..10 {
        sockets.push(Ws::open(&app, &token, &multi).await);
    }
    app.post("/v1/notification/subscribe").bearer(&token).json(&multi).send().await.expect(409, None);
    let _eleventh =
        Ws::open(&app, &token, &json!({"clientType": DESKTOP, "allowMultiLogin": true, "force": true})).await;
    assert_eq!(sockets[0].next().await["type"], "AGENT_MULTI_LOGIN");
    let state = app.admin_state().await;
    assert_eq!(state["notificationConnections"][0]["connections"], 10);
}

/// Waits (on the journal's live feed, not on time) until the mock has read a frame from the
/// client on connection `connection`.
pub async fn heard(live: &mut tokio::sync::broadcast::Receiver<std::sync::Arc<wxcc_mock::journal::Entry>>) {
    loop {
        let entry = tokio::time::timeout(wxcc_contract_tests::ws::PATIENCE, live.recv())
            .await
            .expect("a journal entry in time")
            .expect("the journal is live");
        if entry.kind == wxcc_mock::journal::Kind::Ws && entry.json().contains("\"direction\":\"in\"") {
            return;
        }
    }
}

#[tokio::test]
async fn the_server_sends_keepalives_on_the_clock_and_drops_a_silent_client_only_when_keepalive_is_enabled() {
    let app = TestApp::spawn().await;
    let token = app.world_token("agent2");
    let keepalive = wxcc_contract_tests::ws::Frame::Json(json!({"keepalive": "true"}));
    let mut silent = Ws::open(&app, &token, &json!({"clientType": "A", "isKeepAliveEnabled": true})).await;
    let mut quiet = Ws::open(&app, &token, &json!({"clientType": "C", "isKeepAliveEnabled": false})).await;
    app.advance(15_999).await;
    for _ in 0..3 {
        assert_eq!(silent.frame().await, keepalive, "one every 4 s: at 4, 8 and 12 s");
    }
    app.advance(1).await;
    assert_eq!(silent.closed().await, CLOSE_IDLE, "closed after 16 s of silence");
    for _ in 0..4 {
        assert_eq!(quiet.frame().await, keepalive, "a client without keep-alive is never dropped");
    }

    // A client that answers keep-alives stays, however long the clock runs.
    let mut live = app.state().journal().subscribe();
    let mut chatty = Ws::open(&app, &token, &json!({"clientType": "B", "isKeepAliveEnabled": true})).await;
    for _ in 0..15 {
        app.advance(4_000).await;
        assert_eq!(chatty.frame().await, keepalive);
        chatty.keepalive().await;
        heard(&mut live).await;
    }
    app.advance(15_000).await;
    // quiet's keep-alives at 20, 24, ..., 88 s.
    for _ in 0..18 {
        assert_eq!(quiet.frame().await, keepalive);
    }
    app.post("/v1/agents/reload").bearer(&token).send().await.expect(202, None);
    assert_eq!(chatty.next().await["type"], "AgentReloginFailed", "still connected after 75 s");
}

#[tokio::test]
async fn a_subscription_url_expires_when_nobody_connects_in_time() {
    let app = TestApp::new();
    let reply = app.post("/v1/notification/subscribe").bearer(&app.world_token("agent2")).json(&desktop()).send().await;
    let id = reply.expect(200, None).body["subscriptionId"].as_str().expect("id").to_owned();
    let path = format!("/v1/notification/subscription/{id}");
    // Still live: a plain GET is told to upgrade.
    let reply = app.get(&path).send().await;
    assert!(reply.status == 400 || reply.status == 426, "{}", reply.status);
    app.advance(5 * 60 * 1000).await;
    app.get(&path).send().await.expect(404, None);
}

#[tokio::test]
async fn the_websocket_url_comes_from_the_public_url_never_from_the_requests_host() {
    let app = TestApp::spawn().await;
    let token = app.world_token("agent2");
    let reply = app
        .post("/v1/notification/subscribe")
        .bearer(&token)
        .header("host", "evil.example.com")
        .json(&desktop())
        .send()
        .await
        .expect(200, None);
    let base = app.base_url().expect("socket").replace("http://", "ws://");
    assert!(reply.body["webSocketUrl"].as_str().is_some_and(|u| u.starts_with(&format!("{base}/"))), "{}", reply.body);

    let options = wxcc_mock::state::StateOptions {
        access: wxcc_mock::access::AccessConfig {
            public_url: Some("https://wxcc-mock.dev.example.com:8443/".parse().expect("url")),
            ..Default::default()
        },
        ..Default::default()
    };
    let proxied = TestApp::with_options(wxcc_mock::World::default_world(), options);
    let reply =
        proxied.post("/v1/notification/subscribe").bearer(&token).json(&desktop()).send().await.expect(200, None);
    let url = reply.body["webSocketUrl"].as_str().unwrap_or_default();
    assert!(url.starts_with("wss://wxcc-mock.dev.example.com:8443/v1/notification/subscription/"), "{url}");
}

#[tokio::test]
async fn one_user_may_hold_only_so_many_sockets_across_client_types_and_force_replaces_the_oldest() {
    let options = StateOptions {
        notifications: wxcc_mock::notifications::NotificationConfig {
            max_connections_per_user: 3,
            ..Default::default()
        },
        ..StateOptions::default()
    };
    let app = TestApp::spawn_with(options).await;
    let token = app.world_token("agent2");
    let mut sockets = Vec::new();
    for client in ["A", "B", "C"] {
        sockets.push(Ws::open(&app, &token, &json!({"clientType": client})).await);
    }
    let reply = app.post("/v1/notification/subscribe").bearer(&token).json(&json!({"clientType": "D"})).send().await;
    let diagnostic = reply.expect(409, None).diagnostic().to_owned();
    assert!(diagnostic.contains("--max-connections-per-user 3"), "{diagnostic}");
    let _forced = Ws::open(&app, &token, &json!({"clientType": "D", "force": true})).await;
    assert_eq!(sockets[0].next().await["type"], "AGENT_MULTI_LOGIN");
    assert_eq!(sockets[0].closed().await, CLOSE_MULTI_LOGIN);
    let state = app.admin_state().await;
    assert_eq!(state["bounds"]["notifications"]["connections"], 3);
    // Another user is not affected.
    let _theirs = Ws::open(&app, &app.world_token("admin-full"), &json!({"clientType": "A"})).await;
}

#[tokio::test]
async fn waiting_subscription_urls_are_bounded_per_user_and_swept_on_the_clock() {
    let options = StateOptions {
        notifications: wxcc_mock::notifications::NotificationConfig { max_pending_per_user: 2, ..Default::default() },
        ..StateOptions::default()
    };
    let app = TestApp::with_options(wxcc_mock::World::default_world(), options);
    let token = app.world_token("agent2");
    let mut ids = Vec::new();
    for _ in 0..3 {
        let reply = app.post("/v1/notification/subscribe").bearer(&token).json(&desktop()).send().await;
        ids.push(reply.expect(200, None).body["subscriptionId"].as_str().expect("id").to_owned());
    }
    // The oldest was replaced by the third; the other two still wait.
    app.get(&format!("/v1/notification/subscription/{}", ids[0])).send().await.expect(404, None);
    let bounds = app.admin_state().await["bounds"]["notifications"].clone();
    assert_eq!((bounds["pendingRegistrations"].clone(), bounds["replacedRegistrations"].clone()), (json!(2), json!(1)));
    app.post("/v1/notification/subscribe").bearer(&app.world_token("admin-full")).json(&desktop()).send().await;
    app.advance(6 * 60 * 1000).await;
    // The next subscribe sweeps what expired on the clock.
    app.post("/v1/notification/subscribe").bearer(&token).json(&desktop()).send().await.expect(200, None);
    let bounds = app.admin_state().await["bounds"]["notifications"].clone();
    assert_eq!((bounds["pendingRegistrations"].clone(), bounds["expiredRegistrations"].clone()), (json!(1), json!(3)));
}
