//! Secrets never leave: a marker sent as a subscription secret, a token, a password or a secret
//! query parameter, through every route of the endpoint table, appears nowhere an admin endpoint
//! or the console can show; neither does a minted token that was used.

use std::io::Write;
use std::sync::{Arc, Mutex};

use proptest::prelude::*;
use serde_json::{Value, json};
use wxcc_contract_tests::TestApp;
use wxcc_contract_tests::webhooks::RecordingTransport;
use wxcc_mock::state::StateOptions;

use crate::{login_body, subscription_body};

/// The console of this test binary: every line the mock prints (at debug level, as with
/// `RUST_LOG=debug`), of which it keeps those that contain one of its needles. It is the
/// process's global subscriber (tests share a process under `cargo test`).
#[derive(Clone, Default)]
struct Console {
    needles: Arc<Mutex<Vec<String>>>,
    kept: Arc<Mutex<String>>,
}

impl Console {
    fn get() -> &'static Console {
        static CONSOLE: std::sync::OnceLock<Console> = std::sync::OnceLock::new();
        CONSOLE.get_or_init(|| {
            let console = Console::default();
            let subscriber = tracing_subscriber::fmt()
                .with_writer(console.clone())
                .with_max_level(tracing::Level::DEBUG)
                .with_ansi(false)
                .finish();
            tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber");
            console
        })
    }

    fn watch(&self, needle: &str) {
        self.needles.lock().expect("lock").push(needle.to_owned());
    }

    fn kept(&self) -> String {
        self.kept.lock().expect("lock").clone()
    }
}

impl Write for Console {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let needles = self.needles.lock().expect("lock").clone();
        if needles.iter().any(|n| text.contains(n.as_str())) {
            self.kept.lock().expect("lock").push_str(&text);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Console {
    type Writer = Console;
    fn make_writer(&'a self) -> Console {
        self.clone()
    }
}

/// A path of the table with its parameters filled in.
fn concrete(path: &str, org: &str) -> String {
    path.split('/')
        .map(|segment| match segment {
            "{orgId}" | "{orgid}" => org.to_owned(),
            s if s.starts_with('{') => "00000000-0000-4000-8000-000000000000".to_owned(),
            s => s.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Sends the marker every way a client could through every route, then reads every view.
async fn everything_shown(marker: &str) -> String {
    let transport = RecordingTransport::new();
    let app = TestApp::with_options(
        wxcc_mock::World::default_world(),
        StateOptions { transport: transport.clone(), ..StateOptions::default() },
    );
    wxcc_mock::console::attach(app.state().journal(), false);
    let admin = app.world_token("admin-full");
    let org = app.org_of("admin@wxcc.example");
    // Stored secrets: a subscription that receives a delivery, and a minted token in use.
    let mut body = subscription_body("secret-keeper");
    body["secret"] = json!(format!("{marker}-subscription-secret"));
    // Its console line must be seen (so the console is really being read).
    let tracking = format!("NOTIFS_{}", uuid::Uuid::new_v4());
    Console::get().watch(&tracking);
    app.post("/v1/subscriptions")
        .bearer(&admin)
        .header("trackingid", &tracking)
        .json(&body)
        .send()
        .await
        .expect(201, None);
    let agent = app.token("agent1@wxcc.example", &["cjp:user"]);
    app.post("/v1/agents/login").bearer(&agent).json(&login_body(&app, "agent1@wxcc.example", "1003")).send().await;
    transport.wait_calls(1).await;

    let carrier = json!({
        "secret": marker, "token": marker, "accessToken": marker, "password": marker,
        "name": "n", "nested": [{"refresh_token": marker, "Authorization": marker}],
    });
    let bodies: Vec<Vec<u8>> = vec![
        serde_json::to_vec(&carrier).expect("json"),
        format!("{{\"secret\": \"{marker}\"").into_bytes(),
        format!("secret={marker}&name=x").into_bytes(),
    ];
    let fake_token = format!("{marker}_P0A1_{org}");
    for endpoint in wxcc_mock::routes::endpoints() {
        // The websocket and the live stream are not request/response; reset would forget what
        // this test looks for.
        if endpoint.path == "/v1/notification/subscription/{id}"
            || endpoint.path == "/__admin/journal/stream"
            || endpoint.path == "/__admin/reset"
        {
            continue;
        }
        let path = format!("{}?orgId={org}&access_token={marker}&secret={marker}", concrete(endpoint.path, &org));
        for (i, raw) in bodies.iter().enumerate() {
            let token = if i == 0 { admin.clone() } else { fake_token.clone() };
            let content_type = if i == 2 { "application/x-www-form-urlencoded" } else { "application/json" };
            let reply = app
                .request(endpoint.method.as_str(), &path)
                .bearer(&token)
                .header("x-api-key", marker)
                .raw(raw.clone(), content_type)
                .send()
                .await;
            assert!(reply.status < 500, "{} {path} -> {}", endpoint.method, reply.status);
            if !path.starts_with("/__admin") {
                assert!(
                    !String::from_utf8_lossy(&reply.raw).contains(marker),
                    "{} {path} answered with the marker",
                    endpoint.method
                );
            }
        }
    }
    let mut shown = String::new();
    for view in [
        "/__admin/journal?limit=100000",
        "/__admin/violations",
        "/__admin/state",
        "/__admin/deliveries",
        "/__admin/tasks",
        "/__admin/clock",
        "/__admin/health",
    ] {
        let reply = app.get(view).send().await.expect(200, None);
        shown.push_str(&String::from_utf8_lossy(&reply.raw));
        shown.push('\n');
    }
    assert!(shown.contains("secret-keeper"), "the views show the subscription");
    assert!(!shown.contains(&agent), "a minted token shows in an admin view");
    shown
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3, ..ProptestConfig::default() })]

    #[test]
    fn a_secret_sent_through_any_route_shows_in_no_admin_view_and_no_console_line(
        marker in "MARK[A-Za-z0-9]{12,20}",
    ) {
        let console = Console::get();
        // Any line with the marker in it is kept, whoever printed it.
        console.watch(&marker);
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let shown = runtime.block_on(everything_shown(&marker));
        let printed = console.kept();
        prop_assert!(printed.contains("POST /v1/subscriptions 201"), "the console printed the exchanges: {printed}");
        for (what, text) in [("an admin view", &shown), ("the console", &printed)] {
            if let Some(at) = text.find(&marker) {
                let from = at.saturating_sub(200);
                prop_assert!(false, "{what} shows the marker: …{}…", &text[from..(at + 60).min(text.len())]);
            }
        }
        let parsed: Vec<Value> = shown.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
        prop_assert!(!parsed.is_empty());
    }
}
