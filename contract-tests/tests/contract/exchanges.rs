//! Canonical exchanges as files: each `fixtures/exchanges/*.json` holds a request (after optional
//! setup requests) and the expected status; the body is its named snapshot. Adding a file adds
//! a test.

use serde_json::Value;
use wxcc_contract_tests::TestApp;

async fn send(app: &TestApp, step: &Value, setup_id: &str) -> wxcc_contract_tests::Reply {
    let method = step["method"].as_str().expect("method");
    let path = step["path"].as_str().expect("path").replace("$SETUP_ID", setup_id);
    let mut request = app.request(method, &path);
    if let Some(token) = step["token"].as_str() {
        request = request.bearer(&app.world_token(token));
    }
    if let Some(headers) = step["headers"].as_object() {
        for (k, v) in headers {
            request = request.header(k, v.as_str().unwrap_or_default());
        }
    }
    if let Some(body) = step.get("body") {
        request = request.json(body);
    }
    request.send().await
}

#[test]
fn every_exchange_answers_its_status_and_snapshotted_body() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let mut seen = 0;
    insta::glob!("../../../fixtures/exchanges", "*.json", |path| {
        seen += 1;
        let exchange: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("read")).expect("json");
        let reply = runtime.block_on(async {
            let app = TestApp::new();
            let mut setup_id = String::new();
            for step in exchange["setup"].as_array().into_iter().flatten() {
                let reply = send(&app, step, &setup_id).await;
                assert!(reply.status < 300, "{}: setup failed: {} {}", path.display(), reply.status, reply.body);
                setup_id = reply.body["data"]["id"].as_str().unwrap_or_default().to_owned();
            }
            send(&app, &exchange["request"], &setup_id).await
        });
        let expected = exchange["expect"]["status"].as_u64().expect("expect.status");
        assert_eq!(u64::from(reply.status), expected, "{}: {}", path.display(), reply.body);
        let snapshot = serde_json::json!({ "status": reply.status, "body": reply.body });
        insta::assert_json_snapshot!(snapshot, {
            ".body.trackingId" => "[trackingId]",
            ".body.meta.orgId" => "[orgId]",
            ".body.data.id" => "[id]",
            ".body.data.createdTime" => "[time]",
            ".body.data.lastUpdatedTime" => "[time]",
            ".body.subscriptionId" => "[subscriptionId]",
            ".body.webSocketUrl" => "[webSocketUrl]",
        });
    });
    assert!(seen >= 10, "fixtures/exchanges has {seen} files");
}
