//! `GET /openapi.json`: the committed document, and every operation in it is really routed.

use wxcc_contract_tests::TestApp;
use wxcc_mock::routes::endpoints;

const COMMITTED: &str = include_str!("../../../schemas/openapi.json");

#[tokio::test]
async fn the_served_document_is_the_committed_one() {
    let app = TestApp::new();
    let reply = app.get("/openapi.json").send().await.expect(200, None);
    assert_eq!(String::from_utf8_lossy(&reply.raw), COMMITTED);
    assert_eq!(reply.headers.get("content-type").map(String::as_str), Some("application/json"));
    assert_eq!(reply.body["openapi"], "3.1.0");
}

#[tokio::test]
async fn every_described_operation_is_routed_with_its_method() {
    let app = TestApp::new();
    // The live journal stream never ends; its own test reads it with a real client.
    for endpoint in endpoints().iter().filter(|e| e.id != "adminJournalStream") {
        let path = endpoint
            .path
            .replace("{id}", "00000000-0000-4000-8000-000000000000")
            .replace("{orgId}", "00000000-0000-4000-8000-000000000001");
        let reply = app.request(endpoint.method.as_str(), &path).send().await;
        assert_ne!(
            reply.status, 405,
            "{} {} is described but the method is not routed",
            endpoint.method, endpoint.path
        );
        assert!(
            !reply.diagnostic().contains("is not a route"),
            "{} {} is described but not routed",
            endpoint.method,
            endpoint.path
        );
        let documented = endpoint.success == reply.status || endpoint.error_statuses().contains(&reply.status);
        assert!(documented, "{} {} answered {}, which is not documented", endpoint.method, endpoint.path, reply.status);
    }
}

#[tokio::test]
async fn the_served_document_names_the_address_the_mock_is_reached_at() {
    let app = TestApp::spawn().await;
    let reply = app.get("/openapi.json").send().await.expect(200, None);
    assert_eq!(reply.body["servers"][0]["url"], app.base_url().expect("a socket"));
    let options = wxcc_mock::state::StateOptions {
        access: wxcc_mock::access::AccessConfig {
            public_url: Some("https://wxcc-mock.dev.example.com:8443".parse().expect("url")),
            ..Default::default()
        },
        ..Default::default()
    };
    let app = TestApp::with_options(wxcc_mock::World::default_world(), options);
    let reply = app.get("/openapi.json").send().await.expect(200, None);
    assert_eq!(reply.body["servers"][0]["url"], "https://wxcc-mock.dev.example.com:8443");
}
