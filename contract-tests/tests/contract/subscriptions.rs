//! `/v1/subscriptions` and `/v1/event-types`.

use proptest::prelude::*;
use serde_json::{Value, json};
use wxcc_contract_tests::TestApp;
use wxcc_schemas::SchemaId;
use wxcc_schemas::testing::{self, mutations};

use crate::{block_on, subscription_body};

const UNKNOWN: &str = "00000000-0000-4000-8000-000000000000";

async fn create(app: &TestApp, token: &str, body: &Value) -> Value {
    app.post("/v1/subscriptions")
        .bearer(token)
        .json(body)
        .send()
        .await
        .expect(201, Some(SchemaId::SubscriptionResponse))
        .body
}

#[tokio::test]
async fn create_answers_201_with_the_subscription_and_never_the_secret() {
    let app = TestApp::new();
    let token = app.world_token("admin-full");
    let body = create(&app, &token, &subscription_body("CRM connector")).await;
    let data = &body["data"];
    assert_eq!(body["meta"]["orgId"], app.org_of("admin@wxcc.example"));
    assert_eq!(data["name"], "CRM connector");
    assert_eq!(data["status"], "active");
    assert_eq!(data["createdBy"], "admin@wxcc.example");
    assert_eq!(data["lastUpdatedBy"], "admin@wxcc.example");
    assert_eq!(data["createdTime"], wxcc_contract_tests::TEST_EPOCH_MS);
    assert!(data.get("secret").is_none());
    let id = data["id"].as_str().expect("id");
    let read = app.get(&format!("/v1/subscriptions/{id}")).bearer(&token).send().await;
    let read = read.expect(200, Some(SchemaId::SubscriptionResponse));
    assert_eq!(read.body["data"], *data);
    assert!(!String::from_utf8_lossy(&read.raw).contains("0123456789abcdef"), "the secret leaked");
    let state = app.admin_state().await;
    assert_eq!(state["subscriptions"][0]["hasSecret"], true);
    assert!(!state.to_string().contains("0123456789abcdef0123456789abcdef"), "the secret leaked via admin");
}

#[tokio::test]
async fn list_counts_and_returns_the_orgs_subscriptions_oldest_first() {
    let app = TestApp::new();
    let token = app.world_token("admin-full");
    let empty =
        app.get("/v1/subscriptions").bearer(&token).send().await.expect(200, Some(SchemaId::SubscriptionListResponse));
    assert_eq!(empty.body["meta"]["subscriptionCount"], 0);
    assert_eq!(empty.body["data"], json!([]));
    let a = create(&app, &token, &subscription_body("first")).await;
    let b = create(&app, &token, &subscription_body("second")).await;
    let list =
        app.get("/v1/subscriptions").bearer(&token).send().await.expect(200, Some(SchemaId::SubscriptionListResponse));
    assert_eq!(list.body["meta"]["subscriptionCount"], 2);
    assert_eq!(list.body["meta"]["orgId"], app.org_of("admin@wxcc.example"));
    assert_eq!(list.body["data"], json!([a["data"], b["data"]]));
}

#[tokio::test]
async fn patch_changes_what_it_names_and_refuses_a_new_name() {
    let app = TestApp::new();
    let token = app.world_token("admin-full");
    let created = create(&app, &token, &subscription_body("original")).await;
    let id = created["data"]["id"].as_str().expect("id").to_owned();
    app.advance(5_000).await;
    let patch = json!({"status": "inactive", "eventTypes": ["agent:login"], "description": "changed"});
    let reply = app.patch(&format!("/v1/subscriptions/{id}")).bearer(&token).json(&patch).send().await;
    let data = reply.expect(200, Some(SchemaId::SubscriptionResponse)).body["data"].clone();
    assert_eq!(data["status"], "inactive");
    assert_eq!(data["eventTypes"], json!(["agent:login"]));
    assert_eq!(data["description"], "changed");
    assert_eq!(data["name"], "original");
    assert_eq!(data["destinationUrl"], created["data"]["destinationUrl"]);
    assert_eq!(data["createdTime"], created["data"]["createdTime"]);
    assert_eq!(data["lastUpdatedTime"], wxcc_contract_tests::TEST_EPOCH_MS + 5_000);

    let rename =
        app.patch(&format!("/v1/subscriptions/{id}")).bearer(&token).json(&json!({"name": "renamed"})).send().await;
    assert_eq!(rename.expect(400, None).messages(), vec!["/name: is not allowed here"]);
    let read = app.get(&format!("/v1/subscriptions/{id}")).bearer(&token).send().await.expect(200, None);
    assert_eq!(read.body["data"]["name"], "original");
}

#[tokio::test]
async fn delete_answers_204_without_a_body_and_the_subscription_is_gone() {
    let app = TestApp::new();
    let token = app.world_token("admin-full");
    let created = create(&app, &token, &subscription_body("short-lived")).await;
    let path = format!("/v1/subscriptions/{}", created["data"]["id"].as_str().expect("id"));
    let reply = app.delete(&path).bearer(&token).send().await.expect(204, None);
    assert!(reply.raw.is_empty());
    app.get(&path).bearer(&token).send().await.expect(404, None);
    app.delete(&path).bearer(&token).send().await.expect(404, None);
}

#[tokio::test]
async fn an_unknown_id_is_404_in_the_error_result_envelope() {
    let app = TestApp::new();
    let token = app.world_token("admin-full");
    for (method, body) in [("GET", None), ("PATCH", Some(json!({"description": "x"}))), ("DELETE", None)] {
        let mut request = app.request(method, &format!("/v1/subscriptions/{UNKNOWN}")).bearer(&token);
        if let Some(body) = &body {
            request = request.json(body);
        }
        let reply = request.send().await.expect(404, Some(SchemaId::ErrorResult));
        assert_eq!(reply.body["error"]["key"], 404, "{method}");
    }
}

#[tokio::test]
async fn event_types_list_the_real_v1_names() {
    let app = TestApp::new();
    let reply = app.get("/v1/event-types").bearer(&app.world_token("admin-full")).send().await;
    let body = reply.expect(200, Some(SchemaId::EventTypesResponse)).body;
    let names: Vec<&str> = body["data"].as_array().expect("data").iter().filter_map(|e| e["name"].as_str()).collect();
    assert!(names.contains(&"agent:state_change"));
    assert!(!names.contains(&"agent:stateChange"));
    assert!(!names.contains(&"task:created"));
    assert_eq!(body["data"][0], json!({"name": "agent:login", "resource": "agent", "action": "login"}));
}

#[tokio::test]
async fn destination_urls_must_be_https_on_443_with_a_path_except_loopback() {
    let app = TestApp::new();
    let token = app.world_token("admin-full");
    for url in [
        "http://hooks.example.com/x",
        "https://hooks.example.com:8443/x",
        "https://hooks.example.com",
        "https://hooks.example.com/x?k=v",
        "https://u:p@hooks.example.com/x",
        "https://hooks.example.com/x#f",
        "https://192.168.1.10/x",
    ] {
        let mut body = subscription_body("bad url");
        body["destinationUrl"] = json!(url);
        let reply = app.post("/v1/subscriptions").bearer(&token).json(&body).send().await.expect(400, None);
        assert!(reply.messages()[0].starts_with("/destinationUrl: "), "{url}: {:?}", reply.messages());
    }
    for url in ["http://127.0.0.1:9999/hook", "http://localhost:3000/", "https://hooks.example.com/"] {
        let mut body = subscription_body("good url");
        body["destinationUrl"] = json!(url);
        create(&app, &token, &body).await;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// 201 exactly when the body is valid; otherwise 400 naming the broken pointer, and nothing stored.
    #[test]
    fn create_answers_201_exactly_when_the_body_is_valid(
        valid in testing::subscription_create(),
        pick in any::<prop::sample::Index>(),
        mutate in any::<bool>(),
    ) {
        let app = TestApp::new();
        let token = app.world_token("admin-full");
        prop_assert_eq!(wxcc_schemas::validate(SchemaId::SubscriptionCreateRequest, &valid), Ok(()));
        if !mutate {
            let reply = block_on(app.post("/v1/subscriptions").bearer(&token).json(&valid).send());
            prop_assert_eq!(reply.status, 201, "{}", reply.diagnostic());
            prop_assert_eq!(&reply.body["data"]["eventTypes"], &valid["eventTypes"]);
            return Ok(());
        }
        let all = mutations(SchemaId::SubscriptionCreateRequest, &valid);
        let m = &all[pick.index(all.len())];
        prop_assert!(wxcc_schemas::validate(SchemaId::SubscriptionCreateRequest, &m.value).is_err());
        let reply = block_on(app.post("/v1/subscriptions").bearer(&token).json(&m.value).send());
        prop_assert_eq!(reply.status, 400);
        let messages = reply.messages();
        prop_assert!(
            messages.iter().any(|msg| msg.starts_with(m.pointer.as_str())),
            "{} by {}: {:?}", m.pointer, m.rule, messages
        );
        let state = block_on(app.admin_state());
        prop_assert_eq!(&state["subscriptions"], &json!([]));
    }

    /// PATCH with any valid body answers 200 and the result still matches the schema.
    #[test]
    fn any_valid_patch_is_applied(update in testing::subscription_update()) {
        let app = TestApp::new();
        let token = app.world_token("admin-full");
        let created = block_on(create(&app, &token, &subscription_body("patch me")));
        let path = format!("/v1/subscriptions/{}", created["data"]["id"].as_str().unwrap_or_default());
        let reply = block_on(app.patch(&path).bearer(&token).json(&update).send());
        let reply = reply.expect(200, Some(SchemaId::SubscriptionResponse));
        for key in ["description", "eventTypes", "destinationUrl", "status"] {
            if let Some(v) = update.get(key) {
                prop_assert_eq!(&reply.body["data"][key], v);
            }
        }
    }
}

#[tokio::test]
async fn the_mock_will_not_send_webhooks_to_itself_to_low_loopback_ports_or_to_internal_names() {
    let options = wxcc_mock::state::StateOptions {
        access: wxcc_mock::access::AccessConfig {
            public_url: Some("https://wxcc-mock.dev.example.com".parse().expect("url")),
            ..Default::default()
        },
        ..Default::default()
    };
    let app = TestApp::with_options(wxcc_mock::World::default_world(), options);
    app.state().bind_to("127.0.0.1:18080".parse().expect("addr"));
    let token = app.world_token("admin-full");
    let refused = [
        ("http://127.0.0.1:18080/__admin/reset", "is the mock itself"),
        ("http://localhost:18080/hook", "is the mock itself"),
        ("http://127.0.0.1:22/", "on an explicit port above 1023"),
        ("http://localhost/hook", "on an explicit port above 1023"),
        ("https://[::1]:1023/hook", "on an explicit port above 1023"),
        ("https://wxcc-mock.dev.example.com/hook", "its --public-url"),
        ("https://metadata.google.internal/computeMetadata/", ".internal"),
        ("https://printer.local/", ".local"),
        ("https://api.default.svc.cluster.local/", ".local"),
        ("https://router.home.arpa/", ".home.arpa"),
        ("https://app.localhost/", ".localhost"),
        ("https://127.0.0.1.nip.io/hook", "nip.io"),
        ("https://10.0.0.5.sslip.io/hook", "sslip.io"),
        ("https://lvh.me/hook", "lvh.me"),
    ];
    for (url, why) in refused {
        let mut body = subscription_body("refused");
        body["destinationUrl"] = json!(url);
        let reply = app.post("/v1/subscriptions").bearer(&token).json(&body).send().await.expect(400, None);
        let message = &reply.messages()[0];
        assert!(message.starts_with("/destinationUrl: ") && message.contains(why), "{url}: {message}");
    }
    for url in ["http://127.0.0.1:18081/hook", "https://localhost:1024/hook", "https://hooks.example.com/wxcc"] {
        let mut body = subscription_body("allowed");
        body["destinationUrl"] = json!(url);
        create(&app, &token, &body).await;
    }
    let listed = app.get("/v1/subscriptions").bearer(&token).send().await.expect(200, None);
    let id = listed.body["data"][0]["id"].as_str().expect("id").to_owned();
    let patch = json!({"destinationUrl": "http://127.0.0.1:18080/__admin/reset"});
    let reply =
        app.patch(&format!("/v1/subscriptions/{id}")).bearer(&token).json(&patch).send().await.expect(400, None);
    assert!(reply.messages()[0].contains("is the mock itself"), "{:?}", reply.messages());
}

#[tokio::test]
async fn an_org_past_its_subscription_limit_gets_a_400_that_names_it_and_room_comes_back_after_a_delete() {
    let options = wxcc_mock::state::StateOptions { max_subscriptions_per_org: 2, ..Default::default() };
    let app = TestApp::with_options(wxcc_mock::World::default_world(), options);
    let token = app.world_token("admin-full");
    let first = app.post("/v1/subscriptions").bearer(&token).json(&subscription_body("first")).send().await;
    let id = first.expect(201, None).body["data"]["id"].as_str().expect("id").to_owned();
    let v2 = json!({"name": "second", "eventTypes": ["agent:login"], "destinationUrl": "https://hooks.example.com/wxcc", "resourceVersion": "agent:1.0.0"});
    app.post("/v2/subscriptions").bearer(&token).json(&v2).send().await.expect(201, None);
    let full = app.post("/v1/subscriptions").bearer(&token).json(&subscription_body("third")).send().await;
    let message = full.expect(400, None).messages()[0].clone();
    assert!(message.contains("already has 2 subscriptions") && message.contains("--max-subscriptions 2"), "{message}");
    // Another org has its own room.
    let globex = app.world_token("globex-admin");
    app.post("/v1/subscriptions").bearer(&globex).json(&subscription_body("theirs")).send().await.expect(201, None);
    app.delete(&format!("/v1/subscriptions/{id}")).bearer(&token).send().await.expect(204, None);
    app.post("/v1/subscriptions").bearer(&token).json(&subscription_body("third")).send().await.expect(201, None);
}
