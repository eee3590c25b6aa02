//! `/v2/subscriptions` and `/v2/event-types`: resourceVersion, and separate namespaces.

use serde_json::{Value, json};
use wxcc_contract_tests::TestApp;
use wxcc_schemas::SchemaId;

use crate::subscription_body;

fn v2_body(name: &str) -> Value {
    let mut body = subscription_body(name);
    body["eventTypes"] = json!(["agent:login", "agent:logout", "agent:channel_state_change"]);
    body["resourceVersion"] = json!("agent:2.0.0");
    body
}

#[tokio::test]
async fn create_needs_a_resource_version_and_answers_with_it() {
    let app = TestApp::new();
    let admin = app.world_token("admin-full");
    let mut body = v2_body("v2 hook");
    body.as_object_mut().map(|o| o.remove("resourceVersion"));
    let reply = app.post("/v2/subscriptions").bearer(&admin).json(&body).send().await.expect(400, None);
    assert_eq!(reply.messages(), vec!["/resourceVersion: is required"]);
    let created = app.post("/v2/subscriptions").bearer(&admin).json(&v2_body("v2 hook")).send().await;
    let created = created.expect(201, Some(SchemaId::SubscriptionV2Response));
    assert_eq!(created.body["data"]["resourceVersion"], "agent:2.0.0");
    assert!(created.body["data"].get("secret").is_none());
}

#[tokio::test]
async fn event_types_must_belong_to_the_resource_version() {
    let app = TestApp::new();
    let admin = app.world_token("admin-full");
    let mut body = v2_body("mismatch");
    body["eventTypes"] = json!(["agent:login", "agent:state_change"]);
    let reply = app.post("/v2/subscriptions").bearer(&admin).json(&body).send().await.expect(400, None);
    assert_eq!(
        reply.messages(),
        vec![
            "/eventTypes/1: must be one of \"agent:login\", \"agent:logout\", \"agent:channel_state_change\", \"agent:channelType_state_change\""
        ]
    );
    body["resourceVersion"] = json!("agent:1.0.0");
    app.post("/v2/subscriptions").bearer(&admin).json(&body).send().await.expect(201, None);
}

#[tokio::test]
async fn patch_needs_the_resource_version_too_and_rechecks_the_kept_event_types() {
    let app = TestApp::new();
    let admin = app.world_token("admin-full");
    let created =
        app.post("/v2/subscriptions").bearer(&admin).json(&v2_body("patchable")).send().await.expect(201, None);
    let path = format!("/v2/subscriptions/{}", created.body["data"]["id"].as_str().expect("id"));
    let reply = app.patch(&path).bearer(&admin).json(&json!({"status": "inactive"})).send().await.expect(400, None);
    assert_eq!(reply.messages(), vec!["/resourceVersion: is required"]);
    // agent:channel_state_change is not offered by agent:1.0.0.
    let reply = app.patch(&path).bearer(&admin).json(&json!({"resourceVersion": "agent:1.0.0"})).send().await;
    let reply = reply.expect(409, Some(SchemaId::ErrorResult));
    assert!(reply.diagnostic().contains("Send eventTypes with the new resourceVersion"), "{}", reply.diagnostic());
    let ok = json!({"resourceVersion": "agent:2.0.0", "status": "inactive"});
    let reply =
        app.patch(&path).bearer(&admin).json(&ok).send().await.expect(200, Some(SchemaId::SubscriptionV2Response));
    assert_eq!(reply.body["data"]["status"], "inactive");
}

#[tokio::test]
async fn v1_and_v2_are_separate_namespaces_but_the_count_covers_both() {
    let app = TestApp::new();
    let admin = app.world_token("admin-full");
    let v1 =
        app.post("/v1/subscriptions").bearer(&admin).json(&subscription_body("first")).send().await.expect(201, None);
    let v2 = app.post("/v2/subscriptions").bearer(&admin).json(&v2_body("second")).send().await.expect(201, None);
    let v1_id = v1.body["data"]["id"].as_str().expect("id");
    let v2_id = v2.body["data"]["id"].as_str().expect("id");
    app.get(&format!("/v1/subscriptions/{v2_id}")).bearer(&admin).send().await.expect(404, None);
    app.get(&format!("/v2/subscriptions/{v1_id}")).bearer(&admin).send().await.expect(404, None);
    app.delete(&format!("/v1/subscriptions/{v2_id}")).bearer(&admin).send().await.expect(404, None);
    app.patch(&format!("/v2/subscriptions/{v1_id}"))
        .bearer(&admin)
        .json(&json!({"resourceVersion": "agent:1.0.0"}))
        .send()
        .await
        .expect(404, None);

    let list1 =
        app.get("/v1/subscriptions").bearer(&admin).send().await.expect(200, Some(SchemaId::SubscriptionListResponse));
    let list2 = app
        .get("/v2/subscriptions")
        .bearer(&admin)
        .send()
        .await
        .expect(200, Some(SchemaId::SubscriptionV2ListResponse));
    assert_eq!(list1.body["data"].as_array().map(Vec::len), Some(1));
    assert_eq!(list2.body["data"].as_array().map(Vec::len), Some(1));
    assert_eq!(list1.body["meta"]["subscriptionCount"], 2);
    assert_eq!(list2.body["meta"]["subscriptionCount"], 2);
    app.delete(&format!("/v2/subscriptions/{v2_id}")).bearer(&admin).send().await.expect(204, None);
    let list1 = app.get("/v1/subscriptions").bearer(&admin).send().await.expect(200, None);
    assert_eq!(list1.body["meta"]["subscriptionCount"], 1);
}

#[tokio::test]
async fn v2_event_types_list_the_resource_versions() {
    let app = TestApp::new();
    let reply = app.get("/v2/event-types").bearer(&app.world_token("admin-full")).send().await;
    let body = reply.expect(200, Some(SchemaId::EventTypesV2Response)).body;
    let versions = body["meta"]["resourceVersionList"].as_array().expect("list");
    assert!(versions.contains(&json!({"resource": "agent", "version": "2.0.0"})));
    let names: Vec<&str> = body["data"].as_array().expect("data").iter().filter_map(|e| e["name"].as_str()).collect();
    assert!(names.contains(&"agent:channel_state_change"));
    assert!(names.contains(&"agent:state_change"));
}

#[tokio::test]
async fn v2_needs_the_same_scopes_and_roles() {
    let app = TestApp::new();
    let agent = app.world_token("forum-case-agent1");
    app.post("/v2/subscriptions")
        .bearer(&agent)
        .json(&v2_body("x"))
        .send()
        .await
        .expect(403, Some(SchemaId::ErrorResult));
    app.get("/v2/event-types").bearer(&agent).send().await.expect(403, None);
}
