//! `wxcc-contract verify` passes against the mock and fails, naming the break, against servers
//! broken on purpose; `report` lists a client's off-contract requests.

use axum::body::Body;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use wxcc_contract_tests::TestApp;
use wxcc_contract_tests::verify::{self, Verdict, VerifyConfig, generated_cases};
use wxcc_mock::{AppState, World};

/// One way to break the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Break {
    None,
    OkInsteadOfCreated,
    LeakSecret,
    UnauthorizedInsteadOfForbidden,
    KeyAsString,
    DropMeta,
    NoTrackingId,
}

async fn mutate(brk: Break, request: Request, next: Next) -> Response {
    let is_create = request.method() == "POST" && request.uri().path() == "/v1/subscriptions";
    let response = next.run(request).await;
    let (mut parts, body) = response.into_parts();
    let bytes = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let mut json: Option<Value> = serde_json::from_slice(&bytes).ok();
    match brk {
        Break::OkInsteadOfCreated if is_create && parts.status == 201 => parts.status = axum::http::StatusCode::OK,
        Break::LeakSecret => {
            if let Some(data) = json.as_mut().and_then(|j| j.get_mut("data")).and_then(Value::as_object_mut)
                && data.contains_key("destinationUrl")
            {
                data.insert("secret".into(), json!("leaked-secret"));
            }
        }
        Break::UnauthorizedInsteadOfForbidden if parts.status == 403 => {
            parts.status = axum::http::StatusCode::UNAUTHORIZED;
            if let Some(key) = json.as_mut().and_then(|j| j.pointer_mut("/error/key")) {
                *key = json!(401);
            }
        }
        Break::KeyAsString => {
            if let Some(key) = json.as_mut().and_then(|j| j.pointer_mut("/error/key"))
                && let Some(n) = key.as_u64()
            {
                *key = json!(n.to_string());
            }
        }
        Break::DropMeta => {
            if let Some(obj) = json.as_mut().and_then(Value::as_object_mut) {
                obj.remove("meta");
            }
        }
        Break::NoTrackingId => {
            parts.headers.remove("trackingid");
        }
        _ => {}
    }
    let bytes = match json {
        Some(v) if !bytes.is_empty() => serde_json::to_vec(&v).unwrap_or_default(),
        _ => bytes.to_vec(),
    };
    parts.headers.remove("content-length");
    Response::from_parts(parts, Body::from(bytes))
}

/// Serves the mock, broken by `brk`, on 127.0.0.1:0.
async fn serve(brk: Break) -> (String, tokio::sync::oneshot::Sender<()>) {
    let state = AppState::new(World::default_world());
    let app = wxcc_mock::build_router(state.clone())
        .layer(axum::middleware::from_fn(move |req, next| mutate(brk, req, next)));
    let (base, stop) = wxcc_contract_tests::serve_on_loopback(app).await;
    state.bind_to(base.trim_start_matches("http://").parse().expect("a socket address"));
    (base, stop)
}

fn config(base: &str, read_only: bool) -> VerifyConfig {
    let app = TestApp::new();
    VerifyConfig {
        base_url: base.to_owned(),
        admin_token: app.world_token("admin-full"),
        agent_token: app.world_token("agent2"),
        seed: 7,
        cases: 8,
        read_only,
        ca_cert: None,
    }
}

#[tokio::test]
async fn verify_passes_against_the_mock_and_cleans_up_after_itself() {
    let (base, _stop) = serve(Break::None).await;
    let report = verify::verify(&config(&base, false), |_| {}).await;
    assert!(report.failures().is_empty(), "{:#?}", report.failures());
    assert_eq!(report.summary(), "14 passed, 0 failed, 0 skipped");
    let state: Value = reqwest::get(format!("{base}/__admin/state")).await.expect("state").json().await.expect("json");
    assert_eq!(state["subscriptions"], json!([]), "everything created was deleted");
    // Its deliberately broken probes are not a client's violations: a later report is clean.
    let violations = verify::violations(&base, None).await.expect("the violations");
    assert_eq!(violations, Vec::<Value>::new(), "verify leaves no violations behind");
    let junit = report.junit("verify");
    assert!(junit.contains(r#"tests="14""#) && junit.contains(r#"failures="0""#), "{junit}");
}

#[tokio::test]
async fn read_only_mode_changes_nothing() {
    let (base, _stop) = serve(Break::None).await;
    let report = verify::verify(&config(&base, true), |_| {}).await;
    assert!(report.failures().is_empty(), "{:#?}", report.failures());
    assert_eq!(report.summary(), "9 passed, 0 failed, 5 skipped");
    let state: Value = reqwest::get(format!("{base}/__admin/state")).await.expect("state").json().await.expect("json");
    assert_eq!(state["subscriptions"], json!([]));
    assert_eq!(state["agentOutcomes"], json!([]), "not even a reload");
}

#[tokio::test]
async fn verify_fails_against_each_broken_server_and_names_the_break() {
    let cases = [
        (Break::OkInsteadOfCreated, "expected 201, got 200"),
        (Break::LeakSecret, "/data/secret: is not an allowed property"),
        (Break::UnauthorizedInsteadOfForbidden, "expected 403, got 401"),
        (Break::KeyAsString, "/error/key: must be of type integer"),
        (Break::DropMeta, "/meta: is required"),
        (Break::NoTrackingId, "has no TrackingID header"),
    ];
    for (brk, named) in cases {
        let (base, _stop) = serve(brk).await;
        let report = verify::verify(&config(&base, false), |_| {}).await;
        let failures: Vec<String> = report
            .failures()
            .iter()
            .map(|o| match &o.verdict {
                Verdict::Failed(why) => format!("{}: {why}", o.name),
                _ => String::new(),
            })
            .collect();
        assert!(
            failures.iter().any(|f| f.contains(named)),
            "{brk:?} should fail with {named:?}; failures: {failures:#?}"
        );
    }
}

#[test]
fn generated_cases_are_the_same_for_the_same_seed_and_differ_for_another() {
    let a = generated_cases(42, 12);
    let b = generated_cases(42, 12);
    let c = generated_cases(43, 12);
    assert_eq!(a.len(), 12);
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert_eq!(a.iter().filter(|(valid, _, _)| *valid).count(), 6);
    for (valid, body, _) in &a {
        assert_eq!(
            wxcc_schemas::validate(wxcc_schemas::SchemaId::SubscriptionCreateRequest, body).is_ok(),
            *valid,
            "{body}"
        );
    }
}

#[tokio::test]
async fn report_lists_a_clients_off_contract_requests_with_pointers() {
    let (base, _stop) = serve(Break::None).await;
    assert!(verify::violations(&base, None).await.expect("violations").is_empty());
    assert!(verify::violations_report(&[]).failures().is_empty());
    let app = TestApp::new();
    let client = reqwest::Client::new();
    let body = json!({"dialNumber": "1002", "teamId": crate::team_of(&app, "agent2@wxcc.example"), "roles": ["Agent"]});
    let answer = client
        .post(format!("{base}/v1/agents/login"))
        .bearer_auth(app.world_token("agent2"))
        .json(&body)
        .send()
        .await
        .expect("login");
    assert_eq!(answer.status().as_u16(), 202, "the mock is lenient, as the real API is");
    let violations = verify::violations(&base, None).await.expect("violations");
    let report = verify::violations_report(&violations);
    let failures = report.failures();
    assert_eq!(failures.len(), 1);
    let Verdict::Failed(why) = &failures[0].verdict else { panic!("a failure") };
    assert!(why.starts_with("/roles/0: must be one of"), "{why}");
    assert!(failures[0].name.starts_with("POST /v1/agents/login"), "{}", failures[0].name);
}

fn run_cli(args: Vec<String>) -> (i32, String) {
    let out =
        std::process::Command::new(env!("CARGO_BIN_EXE_wxcc-contract")).args(args).output().expect("run wxcc-contract");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

#[tokio::test]
async fn the_cli_exits_0_when_verify_passes_and_1_when_report_finds_violations() {
    let (base, _stop) = serve(Break::None).await;
    let c = config(&base, false);
    let junit = std::env::temp_dir().join(format!("wxcc-contract-{}.xml", std::process::id()));
    let args: Vec<String> = [
        "verify",
        "--base-url",
        &base,
        "--admin-token",
        &c.admin_token,
        "--agent-token",
        &c.agent_token,
        "--cases",
        "4",
        "--junit",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .chain([junit.display().to_string()])
    .collect();
    let (code, text) = tokio::task::spawn_blocking(move || run_cli(args)).await.expect("join");
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("14 passed, 0 failed, 0 skipped"), "{text}");
    assert!(std::fs::read_to_string(&junit).expect("junit written").contains("<testsuite name=\"verify\""));
    let _ = std::fs::remove_file(junit);

    // verify's own broken probes are not the client's violations: report is clean after it.
    let args = vec!["report".to_owned(), "--base-url".to_owned(), base.clone()];
    let (code, text) = tokio::task::spawn_blocking(move || run_cli(args)).await.expect("join");
    assert_eq!(code, 0, "{text}");
    // A client's off-contract request is.
    let refused = reqwest::Client::new()
        .post(format!("{base}/v1/subscriptions"))
        .bearer_auth(&c.admin_token)
        .json(&json!({"name": "x", "eventTypes": ["agent:login"], "destinationUrl": "https://hooks.example.com/x"}))
        .send()
        .await
        .expect("an answer");
    assert_eq!(refused.status().as_u16(), 400);
    let args = vec!["report".to_owned(), "--base-url".to_owned(), base.clone()];
    let (code, text) = tokio::task::spawn_blocking(move || run_cli(args)).await.expect("join");
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("FAIL  POST /v1/subscriptions"), "{text}");
}

#[tokio::test]
async fn verify_speaks_tls_and_checks_the_websocket_over_wss() {
    let identity =
        wxcc_mock::tls::Identity::generate(&["127.0.0.1".into(), "localhost".into()]).expect("a certificate");
    let options = wxcc_mock::state::StateOptions {
        access: wxcc_mock::access::AccessConfig { tls: Some(identity.clone()), ..Default::default() },
        ..Default::default()
    };
    let state = wxcc_mock::AppState::with_clock(wxcc_mock::World::default_world(), wxcc_mock::Clock::system(), options);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("https://{}", listener.local_addr().expect("addr"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(wxcc_mock::serve(listener, state, async move {
        let _ = stopped.await;
    }));
    let mut config = config(&base, false);
    config.ca_cert = Some(identity.cert_pem.clone());
    let report = verify::verify(&config, |_| {}).await;
    assert!(report.failures().is_empty(), "{:#?}", report.failures());
    assert_eq!(report.summary(), "14 passed, 0 failed, 0 skipped", "the websocket check ran over wss://");
    let _ = stop.send(());
}

#[tokio::test]
async fn a_certificate_to_trust_that_is_not_one_fails_one_check_that_says_so_instead_of_every_tls_check() {
    let mut config = config("https://127.0.0.1:9", false);
    config.ca_cert = Some("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n".into());
    let report = verify::verify(&config, |_| {}).await;
    assert_eq!(report.summary(), "0 passed, 1 failed, 0 skipped");
    let failures = report.failures();
    let verify::Verdict::Failed(why) = &failures[0].verdict else { unreachable!("a failure") };
    assert!(why.starts_with("--ca-cert: "), "{why}");
}
