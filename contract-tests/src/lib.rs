//! The contract-test harness: a [`TestApp`] that talks to the mock in-process (through
//! `tower::ServiceExt::oneshot`) or over a real socket on `127.0.0.1:0`, and a request helper
//! whose every reply is checked against the contract before a test sees it:
//!
//! - every response carries a non-empty `TrackingID` header;
//! - every error body has the envelope of its service (checked with our schemas, by a path map
//!   written here, independently of the server's own), and its `trackingId` equals the header;
//! - every 4xx carries `X-Wxcc-Mock-Diagnostic`.
//!
//! Success bodies are checked with [`Reply::expect`], which takes the schema they must match.

pub mod verify;
pub mod webhooks;
pub mod ws;

use std::collections::HashMap;

use axum::Router;
use axum::body::Body;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;
use wxcc_mock::state::StateOptions;
use wxcc_mock::{AppState, Clock, World};
use wxcc_schemas::SchemaId;

/// The instant the test clock starts at: 2026-11-19T00:00:00Z.
pub const TEST_EPOCH_MS: i64 = 1_795_046_400_000;

/// The mock, ready to be called.
#[derive(Debug)]
pub struct TestApp {
    state: AppState,
    transport: Transport,
}

#[derive(Debug)]
enum Transport {
    InProcess(Router),
    Socket { base: String, client: reqwest::Client, _stop: tokio::sync::oneshot::Sender<()> },
}

impl Default for TestApp {
    fn default() -> Self {
        TestApp::new()
    }
}

impl TestApp {
    /// The default world, in-process, on a virtual clock at [`TEST_EPOCH_MS`].
    pub fn new() -> TestApp {
        TestApp::with_world(World::default_world())
    }

    /// Another world, in-process.
    pub fn with_world(world: World) -> TestApp {
        TestApp::with_options(world, StateOptions::default())
    }

    /// Another world and other options (webhook transport, timings), in-process.
    pub fn with_options(world: World, options: StateOptions) -> TestApp {
        let state = AppState::with_clock(world, Clock::virtual_at(TEST_EPOCH_MS), options);
        let router = wxcc_mock::build_router(state.clone());
        TestApp { state, transport: Transport::InProcess(router) }
    }

    /// An app over a state made elsewhere (another clock, say), in-process.
    pub fn with_state(state: AppState) -> TestApp {
        let router = wxcc_mock::build_router(state.clone());
        TestApp { state, transport: Transport::InProcess(router) }
    }

    /// The default world served on `127.0.0.1:0` (stopped when the app is dropped).
    pub async fn spawn() -> TestApp {
        TestApp::spawn_with(StateOptions::default()).await
    }

    /// Like [`TestApp::spawn`], with other options.
    pub async fn spawn_with(options: StateOptions) -> TestApp {
        let state = AppState::with_clock(World::default_world(), Clock::virtual_at(TEST_EPOCH_MS), options);
        // The binary's own accept loop (timeouts, connection cap, lingering close), not axum's.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        state.bind_to(addr);
        let base = format!("http://{addr}");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = state.clone();
        tokio::spawn(async move {
            let _ = wxcc_mock::serve(listener, served, async move {
                let _ = stopped.await;
            })
            .await;
        });
        let transport = Transport::Socket { base, client: reqwest::Client::new(), _stop: stop };
        TestApp { state, transport }
    }

    /// `http://127.0.0.1:PORT` when served on a socket.
    pub fn base_url(&self) -> Option<&str> {
        match &self.transport {
            Transport::Socket { base, .. } => Some(base),
            Transport::InProcess(_) => None,
        }
    }

    /// The state behind the app.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The loaded world.
    pub fn world(&self) -> &World {
        self.state.world()
    }

    /// The virtual clock.
    pub fn clock(&self) -> &Clock {
        self.state.clock()
    }

    /// Moves the virtual clock forward by `ms`, firing every timer that falls due (and waiting
    /// for the work each starts) before it returns.
    pub async fn advance(&self, ms: i64) {
        self.state.clock().advance(ms).await.expect("the test clock is virtual");
        assert_eq!(self.state.clock().stalls(), 0, "an advance waited out the clock's patience: something is stuck");
    }

    /// Waits until every webhook queued so far has had its attempt (or waits for the clock).
    pub async fn settled(&self) {
        assert!(self.state.settled().await, "the clock did not settle: something is stuck");
    }

    /// The world token whose opaque part is `opaque` (e.g. `forum-case-agent1`).
    pub fn world_token(&self, opaque: &str) -> String {
        self.world().token_named(opaque).unwrap_or_else(|| panic!("no world token {opaque}")).access_token.clone()
    }

    /// Mints a token for a world user with exactly these scopes.
    pub fn token(&self, email: &str, scopes: &[&str]) -> String {
        let scopes = scopes.iter().map(|s| (*s).to_owned()).collect();
        self.state
            .mint_token(email, scopes, 3600, None)
            .unwrap_or_else(|e| panic!("no token for {email}: {e:?}"))
            .access_token
    }

    /// The id of the org that `email` belongs to.
    pub fn org_of(&self, email: &str) -> String {
        self.world().user_by_email(email).map(|(o, _)| o.id.clone()).unwrap_or_else(|| panic!("no user {email}"))
    }

    /// The user id of `email`.
    pub fn user_id(&self, email: &str) -> String {
        self.world().user_by_email(email).map(|(_, u)| u.id.clone()).unwrap_or_else(|| panic!("no user {email}"))
    }

    /// Starts a request.
    pub fn request(&self, method: &str, path: &str) -> RequestBuilder<'_> {
        RequestBuilder { app: self, method: method.to_owned(), path: path.to_owned(), headers: vec![], body: None }
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> RequestBuilder<'_> {
        self.request("GET", path)
    }

    /// `POST path`.
    pub fn post(&self, path: &str) -> RequestBuilder<'_> {
        self.request("POST", path)
    }

    /// `PUT path`.
    pub fn put(&self, path: &str) -> RequestBuilder<'_> {
        self.request("PUT", path)
    }

    /// `PATCH path`.
    pub fn patch(&self, path: &str) -> RequestBuilder<'_> {
        self.request("PATCH", path)
    }

    /// `DELETE path`.
    pub fn delete(&self, path: &str) -> RequestBuilder<'_> {
        self.request("DELETE", path)
    }

    /// An in-process notification connection of `email`, straight on the hub (no socket): the
    /// messages the mock sends them, up to `buffer` unread.
    pub fn hub_connection(
        &self,
        email: &str,
        buffer: usize,
    ) -> tokio::sync::mpsc::Receiver<wxcc_mock::notifications::Outgoing> {
        let (tx, rx) = tokio::sync::mpsc::channel(buffer);
        let registration = wxcc_mock::notifications::Registration {
            subscription_id: format!("Harness-{email}"),
            agent_id: self.user_id(email),
            email: email.to_owned(),
            org_id: self.org_of(email),
            client_type: "Harness".into(),
            keepalive: false,
            allow_multi_login: false,
            force: false,
            created_at: 0,
        };
        self.state.notifications().connect(&registration, tx, self.state.notification_config()).expect("connect");
        rx
    }

    /// `GET /__admin/state`.
    pub async fn admin_state(&self) -> Value {
        self.get("/__admin/state").send().await.expect(200, None).body
    }
}

/// Serves `app` on `127.0.0.1:0`; returns `http://127.0.0.1:PORT` and the sender whose drop
/// (or send) stops the server.
pub async fn serve_on_loopback(app: Router) -> (String, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
    let base = format!("http://{}", listener.local_addr().expect("local addr"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await;
    });
    (base, stop)
}

/// A request being built.
#[derive(Debug)]
pub struct RequestBuilder<'a> {
    app: &'a TestApp,
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
}

impl RequestBuilder<'_> {
    /// `Authorization: Bearer <token>`.
    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }

    /// Any header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// A JSON body (with `Content-Type: application/json`).
    pub fn json(self, body: &Value) -> Self {
        self.raw(serde_json::to_vec(body).expect("serialise"), "application/json")
    }

    /// Raw body bytes with a content type.
    pub fn raw(mut self, body: Vec<u8>, content_type: &str) -> Self {
        self.body = Some(body);
        self.header("content-type", content_type)
    }

    /// Sends it and checks the contract's invariants on the reply.
    pub async fn send(self) -> Reply {
        let (status, headers, raw) = match &self.app.transport {
            Transport::InProcess(router) => {
                let mut builder = axum::http::Request::builder().method(self.method.as_str()).uri(&self.path);
                for (k, v) in &self.headers {
                    builder = builder.header(k, v);
                }
                let request = builder.body(Body::from(self.body.clone().unwrap_or_default())).expect("request");
                let response = router.clone().oneshot(request).await.expect("infallible");
                let status = response.status().as_u16();
                let headers = header_map(response.headers());
                let raw = response.into_body().collect().await.expect("body").to_bytes().to_vec();
                (status, headers, raw)
            }
            Transport::Socket { base, client, .. } => {
                let method = reqwest::Method::from_bytes(self.method.as_bytes()).expect("method");
                let mut builder = client.request(method, format!("{base}{}", self.path));
                for (k, v) in &self.headers {
                    builder = builder.header(k, v);
                }
                if let Some(body) = self.body.clone() {
                    builder = builder.body(body);
                }
                let response = builder.send().await.expect("the mock answers");
                let status = response.status().as_u16();
                let headers = header_map(response.headers());
                let raw = response.bytes().await.expect("body").to_vec();
                (status, headers, raw)
            }
        };
        // Every answer is JSON but a page (`text/html`), which tests read from `raw`.
        let page = headers.get("content-type").is_some_and(|t| t.starts_with("text/html"));
        let body = if raw.is_empty() || page {
            Value::Null
        } else {
            serde_json::from_slice(&raw).unwrap_or_else(|e| {
                panic!("{} {}: body is not JSON ({e}): {}", self.method, self.path, String::from_utf8_lossy(&raw))
            })
        };
        let reply = Reply { method: self.method, path: self.path, status, headers, body, raw };
        reply.check_invariants();
        reply
    }
}

fn header_map(headers: &axum::http::HeaderMap) -> HashMap<String, String> {
    headers.iter().map(|(k, v)| (k.as_str().to_ascii_lowercase(), v.to_str().unwrap_or_default().to_owned())).collect()
}

/// The error schema the service of `method path` uses: the harness's own map, written from the
/// facts (agent and task call control: the shape Cisco's SDK reads; the task search is
/// reporting: `ApiErrorResponse`).
pub fn error_schema_for(method: &str, path: &str) -> Option<SchemaId> {
    let path = path.split('?').next().unwrap_or(path);
    if path.starts_with("/__admin") {
        None
    } else if ["/v1/subscriptions", "/v2/subscriptions", "/v1/event-types", "/v2/event-types"]
        .iter()
        .any(|p| path.starts_with(p))
    {
        Some(SchemaId::ErrorResult)
    } else if path == "/v1/tasks" && method.eq_ignore_ascii_case("GET") {
        Some(SchemaId::ApiErrorResponse)
    } else if path.starts_with("/v1/agents") || path.starts_with("/v1/tasks") {
        Some(SchemaId::AgentErrorResponse)
    } else {
        Some(SchemaId::ApiErrorResponse)
    }
}

/// A checked reply.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The request's method.
    pub method: String,
    /// The request's path.
    pub path: String,
    /// HTTP status.
    pub status: u16,
    /// Headers, names lower-cased.
    pub headers: HashMap<String, String>,
    /// The body as JSON (`Null` when empty).
    pub body: Value,
    /// The raw body.
    pub raw: Vec<u8>,
}

impl Reply {
    fn check_invariants(&self) {
        let what = format!("{} {} -> {}", self.method, self.path, self.status);
        let tracking = self.tracking_id();
        assert!(!tracking.is_empty(), "{what}: no TrackingID header");
        // A HEAD answer has no body, by HTTP's rules; a 429 has none, by WxCC's (facts §2.4).
        // An injected 503 with Retry-After has none either (as a 429 from the gateway).
        let injected_bare = self.headers.contains_key("x-wxcc-mock-fault")
            && self.headers.contains_key("retry-after")
            && self.raw.is_empty();
        let has_body = self.method != "HEAD" && self.status != 429 && !injected_bare;
        if self.status == 429 {
            assert!(self.raw.is_empty(), "{what}: a 429 has no body");
            let retry: u64 = self.headers.get("retry-after").and_then(|s| s.parse().ok()).unwrap_or_default();
            assert!(retry >= 1, "{what}: a 429 says Retry-After in whole seconds");
        }
        if let Some(schema) = error_schema_for(&self.method, &self.path).filter(|_| self.status >= 400 && has_body) {
            if let Err(v) = wxcc_schemas::validate(schema, &self.body) {
                panic!("{what}: error body breaks {schema}: {v:?}\n{}", self.body);
            }
            assert_eq!(self.body["trackingId"], tracking, "{what}: trackingId differs from the header");
        }
        if (400..500).contains(&self.status) {
            assert!(!self.diagnostic().is_empty(), "{what}: no X-Wxcc-Mock-Diagnostic");
        }
    }

    /// Asserts the status, and that the body matches `schema` (if given).
    #[track_caller]
    pub fn expect(self, status: u16, schema: Option<SchemaId>) -> Reply {
        assert_eq!(
            self.status,
            status,
            "{} {}: expected {status}, got {}; diagnostic: {}; body: {}",
            self.method,
            self.path,
            self.status,
            self.diagnostic(),
            self.body
        );
        if let Some(Err(v)) = schema.map(|s| wxcc_schemas::validate(s, &self.body)) {
            panic!("{} {}: body breaks {:?}: {v:?}\n{}", self.method, self.path, schema, self.body);
        }
        self
    }

    /// The `TrackingID` header.
    pub fn tracking_id(&self) -> &str {
        self.headers.get("trackingid").map_or("", String::as_str)
    }

    /// The `X-Wxcc-Mock-Diagnostic` header.
    pub fn diagnostic(&self) -> &str {
        self.headers.get("x-wxcc-mock-diagnostic").map_or("", String::as_str)
    }

    /// The error descriptions, whatever the envelope.
    pub fn messages(&self) -> Vec<String> {
        if let Some(list) = self.body["error"]["message"].as_array() {
            return list.iter().filter_map(|m| m["description"].as_str().map(str::to_owned)).collect();
        }
        if let Some(m) = self.body["errorMessage"].as_str() {
            return m.split("; ").map(str::to_owned).collect();
        }
        self.body["error"]["message"].as_str().map(|m| vec![m.to_owned()]).unwrap_or_default()
    }
}
