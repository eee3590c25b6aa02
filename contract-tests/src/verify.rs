//! Provider verification: the contract suite run over HTTP against any server, the mock or a
//! real WxCC org (`wxcc-contract verify`).
//!
//! Every reply is checked for a `TrackingID` header, error bodies for their service's envelope
//! (and a `trackingId` equal to the header), success bodies for their schema. The checks cover
//! the auth table, subscription rules, v1/v2 isolation, generated valid and invalid bodies
//! (deterministic by seed), and the websocket result of a reload. Everything created is deleted
//! at the end. `read_only` runs only what cannot change the org.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config as RunnerConfig, RngAlgorithm, TestRng, TestRunner};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use wxcc_schemas::SchemaId;
use wxcc_schemas::testing::{self, mutations};

use crate::error_schema_for;

/// What to verify, and how.
#[derive(Debug, Clone)]
pub struct VerifyConfig {
    /// `https://api.wxcc-us1.cisco.com`, or the mock's `http://127.0.0.1:8080`.
    pub base_url: String,
    /// A token of a Contact Center administrator with `cjp:config_read` and `cjp:config_write`.
    pub admin_token: String,
    /// A token of a plain agent (no administrator role) with `cjp:user`.
    pub agent_token: String,
    /// Seed of the generated bodies.
    pub seed: u64,
    /// How many generated bodies to send.
    pub cases: u32,
    /// Only run what cannot change the org.
    pub read_only: bool,
    /// A certificate (PEM) to trust for `https://` and `wss://` besides the usual roots (the one
    /// `wxcc-mock serve --tls` made).
    pub ca_cert: Option<String>,
}

pub use wxcc_mock::report::{Outcome, Report, Verdict, violations_report};

/// A reply, after the invariants every reply must keep were checked.
#[derive(Debug, Clone)]
struct Reply {
    status: u16,
    raw: String,
    body: Value,
}

#[derive(Debug)]
struct Client {
    http: reqwest::Client,
    base: String,
}

type Check = Result<(), String>;

impl Client {
    async fn call(&self, method: &str, path: &str, auth: Option<&str>, body: Option<&Value>) -> Result<Reply, String> {
        let what = format!("{method} {path}");
        let verb = method;
        let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
        // Marked as the verifier's own probes: a mock does not count its deliberately
        // off-contract requests as a client's violations (a later `report` stays clean).
        let mut request =
            self.http.request(method, format!("{}{path}", self.base)).header(wxcc_mock::http::PROBE_HEADER, "verify");
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| format!("{what}: no answer: {e}"))?;
        let status = response.status().as_u16();
        let tracking = response.headers().get("trackingid").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let raw = response.text().await.map_err(|e| format!("{what}: unreadable body: {e}"))?;
        let body: Value =
            if raw.trim().is_empty() { Value::Null } else { serde_json::from_str(&raw).unwrap_or(Value::Null) };
        let Some(tracking) = tracking.filter(|t| !t.is_empty()) else {
            return Err(format!("{what} -> {status}: the response has no TrackingID header"));
        };
        if status >= 400
            && let Some(schema) = error_schema_for(verb, path)
        {
            if let Err(v) = wxcc_schemas::validate(schema, &body) {
                let list: Vec<String> = v.iter().map(ToString::to_string).collect();
                return Err(format!("{what} -> {status}: the error body breaks {schema}: {}", list.join("; ")));
            }
            if body["trackingId"] != tracking.as_str() {
                return Err(format!(
                    "{what} -> {status}: error trackingId {} differs from TrackingID {tracking}",
                    body["trackingId"]
                ));
            }
        }
        Ok(Reply { status, raw, body })
    }

    /// Calls and checks the status (and the body's schema).
    async fn expect(
        &self,
        method: &str,
        path: &str,
        auth: Option<&str>,
        body: Option<&Value>,
        status: u16,
        schema: Option<SchemaId>,
    ) -> Result<Reply, String> {
        let reply = self.call(method, path, auth, body).await?;
        if reply.status != status {
            let detail: String = reply.raw.chars().take(300).collect();
            return Err(format!("{method} {path}: expected {status}, got {}: {detail}", reply.status));
        }
        if let Some(schema) = schema
            && let Err(v) = wxcc_schemas::validate(schema, &reply.body)
        {
            let list: Vec<String> = v.iter().map(ToString::to_string).collect();
            return Err(format!("{method} {path} -> {status}: the body breaks {schema}: {}", list.join("; ")));
        }
        Ok(reply)
    }
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// A subscription body for this run; `name` is made unique by the caller.
fn subscription(name: &str) -> Value {
    json!({
        "name": name,
        "description": "created by wxcc-contract verify; deleted at the end of the run",
        "eventTypes": ["agent:login", "agent:logout"],
        "destinationUrl": "https://wxcc-contract.example.com/hook",
        "secret": "wxcc-contract-verify-secret-0123456789",
    })
}

/// The generated bodies of a run: `(valid, body, pointer broken)`; the same for the same seed.
pub fn generated_cases(seed: u64, cases: u32) -> Vec<(bool, Value, String)> {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &bytes);
    let mut runner = TestRunner::new_with_rng(RunnerConfig::default(), rng);
    let strategy = testing::subscription_create();
    (0..cases)
        .filter_map(|i| {
            let valid = strategy.new_tree(&mut runner).ok()?.current();
            if i % 2 == 0 {
                return Some((true, valid, String::new()));
            }
            let all = mutations(SchemaId::SubscriptionCreateRequest, &valid);
            let pick = usize::try_from(seed.wrapping_add(u64::from(i))).unwrap_or(0) % all.len().max(1);
            all.into_iter().nth(pick).map(|m| (false, m.value, m.pointer))
        })
        .collect()
}

/// Runs every check and reports each as it finishes.
pub async fn verify(config: &VerifyConfig, mut progress: impl FnMut(&Outcome)) -> Report {
    let (http, connector) = match wxcc_mock::tls::clients_trusting(config.ca_cert.as_deref()) {
        Ok(made) => made,
        Err(why) => {
            // Nothing over TLS could be checked: say why, rather than fail every check.
            let verdict = Verdict::Failed(format!("--ca-cert: {why:#}"));
            let outcome =
                Outcome { name: "the certificate to trust is usable".into(), verdict, duration: Duration::ZERO };
            progress(&outcome);
            return Report { outcomes: vec![outcome] };
        }
    };
    let client = Client { http, base: config.base_url.trim_end_matches('/').to_owned() };
    let admin = bearer(&config.admin_token);
    let agent = bearer(&config.agent_token);
    let run_tag = format!("wxcc-contract {}", config.seed);
    let mut report = Report::default();
    let mut created: Vec<(String, String)> = Vec::new();

    macro_rules! check {
        ($name:expr, $body:expr) => {{
            let started = Instant::now();
            let result: Check = $body;
            let verdict = match result {
                Ok(()) => Verdict::Passed,
                Err(why) => Verdict::Failed(why),
            };
            let outcome = Outcome { name: $name.to_string(), verdict, duration: started.elapsed() };
            progress(&outcome);
            report.outcomes.push(outcome);
        }};
    }
    macro_rules! skip {
        ($name:expr, $why:expr) => {{
            let outcome = Outcome {
                name: $name.to_string(),
                verdict: Verdict::Skipped($why.to_string()),
                duration: Duration::ZERO,
            };
            progress(&outcome);
            report.outcomes.push(outcome);
        }};
    }

    check!(
        "auth: a request without Authorization is 400",
        async {
            for path in ["/v1/subscriptions", "/v1/event-types", "/v2/subscriptions"] {
                client.expect("GET", path, None, None, 400, None).await?;
            }
            Ok(())
        }
        .await
    );
    check!(
        "auth: an Authorization header that is not Bearer is 400",
        async {
            client
                .expect("GET", "/v1/subscriptions", Some(&format!("Basic {}", config.admin_token)), None, 400, None)
                .await?;
            Ok(())
        }
        .await
    );
    check!(
        "auth: an unknown token is 401",
        async {
            client
                .expect("GET", "/v1/subscriptions", Some("Bearer wxcc-contract-not-a-token"), None, 401, None)
                .await?;
            client.expect("GET", "/v1/event-types", Some("Bearer wxcc-contract-not-a-token"), None, 401, None).await?;
            Ok(())
        }
        .await
    );
    check!(
        "auth: an agent token without an administrator role is 403 on subscriptions",
        async {
            client.expect("GET", "/v1/subscriptions", Some(&agent), None, 403, Some(SchemaId::ErrorResult)).await?;
            client.expect("GET", "/v1/event-types", Some(&agent), None, 403, None).await?;
            Ok(())
        }
        .await
    );
    check!(
        "subscriptions: the administrator lists v1 subscriptions with meta",
        async {
            client
                .expect("GET", "/v1/subscriptions", Some(&admin), None, 200, Some(SchemaId::SubscriptionListResponse))
                .await
                .map(|_| ())
        }
        .await
    );
    check!(
        "subscriptions: the administrator lists v2 subscriptions with meta",
        async {
            client
                .expect("GET", "/v2/subscriptions", Some(&admin), None, 200, Some(SchemaId::SubscriptionV2ListResponse))
                .await
                .map(|_| ())
        }
        .await
    );
    check!(
        "event types: v1 and v2 list the known names",
        async {
            let v1 = client
                .expect("GET", "/v1/event-types", Some(&admin), None, 200, Some(SchemaId::EventTypesResponse))
                .await?;
            let names: Vec<&str> =
                v1.body["data"].as_array().into_iter().flatten().filter_map(|e| e["name"].as_str()).collect();
            if !names.contains(&"agent:login") {
                return Err(format!("GET /v1/event-types does not list agent:login: {names:?}"));
            }
            client
                .expect("GET", "/v2/event-types", Some(&admin), None, 200, Some(SchemaId::EventTypesV2Response))
                .await?;
            Ok(())
        }
        .await
    );
    check!(
        "subscriptions: an unknown id is 404 in ErrorResult",
        async {
            let path = "/v1/subscriptions/00000000-0000-4000-8000-000000000000";
            client.expect("GET", path, Some(&admin), None, 404, Some(SchemaId::ErrorResult)).await.map(|_| ())
        }
        .await
    );
    check!(
        "config: an agent reads its organisation's desktop configuration",
        async {
            // WxCC tokens end in _<orgId>.
            let org = config.agent_token.rsplit('_').next().unwrap_or_default();
            let reads = [
                (format!("/organization/{org}"), SchemaId::ConfigOrganization),
                (
                    format!("/organization/{org}/v2/organization-setting?agentView=true"),
                    SchemaId::ConfigOrganizationSettingList,
                ),
                (
                    format!("/organization/{org}/v2/tenant-configuration?agentView=true"),
                    SchemaId::ConfigTenantConfigurationList,
                ),
                (format!("/organization/{org}/v2/org-url-mapping?sort=name,ASC"), SchemaId::ConfigUrlMappingList),
                (
                    format!("/organization/{org}/v2/auxiliary-code?page=0&pageSize=100"),
                    SchemaId::ConfigAuxiliaryCodePage,
                ),
                (format!("/organization/{org}/v2/team?page=0&pageSize=100"), SchemaId::ConfigTeamPage),
            ];
            for (path, schema) in reads {
                client.expect("GET", &path, Some(&agent), None, 200, Some(schema)).await?;
            }
            Ok(())
        }
        .await
    );

    if config.read_only {
        for name in [
            "auth: the agent token's POST /v1/subscriptions is 403 before the body is looked at",
            "subscriptions: create, read, update, delete",
            "subscriptions: v1 and v2 are separate namespaces",
            "subscriptions: generated bodies answer 201 exactly when valid",
            "websocket: subscribe, connect, and the reload result arrives",
        ] {
            skip!(name, "--read-only");
        }
        return report;
    }

    check!(
        "auth: the agent token's POST /v1/subscriptions is 403 before the body is looked at",
        async {
            let mut body = subscription("x");
            body["secret"] = json!("short");
            let reply = client.call("POST", "/v1/subscriptions", Some(&agent), Some(&body)).await?;
            if reply.status == 201
                && let Some(id) = reply.body["data"]["id"].as_str()
            {
                created.push(("v1".into(), id.to_owned()));
            }
            if reply.status != 403 {
                return Err(format!("POST /v1/subscriptions with the agent token: expected 403, got {}", reply.status));
            }
            Ok(())
        }
        .await
    );

    check!(
        "subscriptions: create, read, update, delete",
        async {
            let name = format!("{run_tag} crud");
            let body = subscription(&name);
            let reply = client
                .expect(
                    "POST",
                    "/v1/subscriptions",
                    Some(&admin),
                    Some(&body),
                    201,
                    Some(SchemaId::SubscriptionResponse),
                )
                .await?;
            let id = reply.body["data"]["id"].as_str().unwrap_or_default().to_owned();
            created.push(("v1".into(), id.clone()));
            if reply.raw.contains("\"secret\"") {
                return Err("POST /v1/subscriptions returned the secret".into());
            }
            let path = format!("/v1/subscriptions/{id}");
            let read =
                client.expect("GET", &path, Some(&admin), None, 200, Some(SchemaId::SubscriptionResponse)).await?;
            if read.raw.contains("\"secret\"") {
                return Err(format!("GET {path} returned the secret"));
            }
            if read.body["data"]["name"] != name.as_str() {
                return Err(format!("GET {path}: name is {}, not {name}", read.body["data"]["name"]));
            }
            let patched = client
                .expect(
                    "PATCH",
                    &path,
                    Some(&admin),
                    Some(&json!({"description": "patched"})),
                    200,
                    Some(SchemaId::SubscriptionResponse),
                )
                .await?;
            if patched.body["data"]["description"] != "patched" {
                return Err(format!("PATCH {path} did not change the description"));
            }
            client.expect("PATCH", &path, Some(&admin), Some(&json!({"name": "renamed"})), 400, None).await?;
            let listed = client.expect("GET", "/v1/subscriptions", Some(&admin), None, 200, None).await?;
            let ids: Vec<&str> =
                listed.body["data"].as_array().into_iter().flatten().filter_map(|s| s["id"].as_str()).collect();
            if !ids.contains(&id.as_str()) {
                return Err(format!("GET /v1/subscriptions does not list {id}"));
            }
            let deleted = client.expect("DELETE", &path, Some(&admin), None, 204, None).await?;
            if !deleted.raw.is_empty() {
                return Err(format!("DELETE {path} answered a body: {}", deleted.raw));
            }
            created.retain(|(_, c)| *c != id);
            client.expect("GET", &path, Some(&admin), None, 404, None).await?;
            Ok(())
        }
        .await
    );

    check!(
        "subscriptions: v1 and v2 are separate namespaces",
        async {
            let v1 = client
                .expect(
                    "POST",
                    "/v1/subscriptions",
                    Some(&admin),
                    Some(&subscription(&format!("{run_tag} v1"))),
                    201,
                    None,
                )
                .await?;
            let v1_id = v1.body["data"]["id"].as_str().unwrap_or_default().to_owned();
            created.push(("v1".into(), v1_id.clone()));
            let mut body = subscription(&format!("{run_tag} v2"));
            body["resourceVersion"] = json!("agent:1.0.0");
            let v2 = client
                .expect(
                    "POST",
                    "/v2/subscriptions",
                    Some(&admin),
                    Some(&body),
                    201,
                    Some(SchemaId::SubscriptionV2Response),
                )
                .await?;
            let v2_id = v2.body["data"]["id"].as_str().unwrap_or_default().to_owned();
            created.push(("v2".into(), v2_id.clone()));
            client.expect("GET", &format!("/v1/subscriptions/{v2_id}"), Some(&admin), None, 404, None).await?;
            client.expect("GET", &format!("/v2/subscriptions/{v1_id}"), Some(&admin), None, 404, None).await?;
            let list = client.expect("GET", "/v1/subscriptions", Some(&admin), None, 200, None).await?;
            let in_v1: Vec<&str> =
                list.body["data"].as_array().into_iter().flatten().filter_map(|s| s["id"].as_str()).collect();
            if in_v1.contains(&v2_id.as_str()) {
                return Err("GET /v1/subscriptions lists a v2 subscription".into());
            }
            let count = list.body["meta"]["subscriptionCount"].as_u64().unwrap_or(0);
            if count < 2 {
                return Err(format!("meta.subscriptionCount is {count}, but it must count v1 and v2 (at least 2 now)"));
            }
            Ok(())
        }
        .await
    );

    let cases = generated_cases(config.seed, config.cases);
    check!(
        "subscriptions: generated bodies answer 201 exactly when valid",
        async {
            for (i, (valid, body, pointer)) in cases.iter().enumerate() {
                let mut body = body.clone();
                if *valid {
                    // A real org refuses loopback destinations: use a public one for valid bodies.
                    body["name"] = json!(format!("{run_tag} g{i}"));
                    body["destinationUrl"] = json!("https://wxcc-contract.example.com/generated");
                }
                let reply = client.call("POST", "/v1/subscriptions", Some(&admin), Some(&body)).await?;
                if reply.status == 201
                    && let Some(id) = reply.body["data"]["id"].as_str()
                {
                    created.push(("v1".into(), id.to_owned()));
                }
                let expected = if *valid { 201 } else { 400 };
                if reply.status != expected {
                    let what = if *valid { "a valid body".to_owned() } else { format!("a body broken at {pointer}") };
                    return Err(format!(
                        "case {i} (seed {}): {what} answered {}, not {expected}: {body}",
                        config.seed, reply.status
                    ));
                }
            }
            Ok(())
        }
        .await
    );

    let websocket_check = "websocket: subscribe, connect, and the reload result arrives";
    check!(
        websocket_check,
        async {
            let body = json!({"clientType": "WxccContract", "isKeepAliveEnabled": false, "allowMultiLogin": true});
            let reply = client
                .expect(
                    "POST",
                    "/v1/notification/subscribe",
                    Some(&agent),
                    Some(&body),
                    200,
                    Some(SchemaId::NotificationSubscribeResponse),
                )
                .await?;
            let url = reply.body["webSocketUrl"].as_str().unwrap_or_default().to_owned();
            let (mut socket, _) =
                tokio_tungstenite::connect_async_tls_with_config(url.as_str(), None, false, connector.clone())
                    .await
                    .map_err(|e| format!("connecting to {url}: {e}"))?;
            let first = next_message(&mut socket).await?;
            if first["type"] != "Welcome" {
                return Err(format!("the first websocket message is not Welcome: {first}"));
            }
            client.expect("POST", "/v1/agents/reload", Some(&agent), Some(&json!({})), 202, None).await?;
            let result = next_message(&mut socket).await?;
            let schema = match result["data"]["type"].as_str() {
                Some("AgentReloginSuccess") => SchemaId::WsReloginSuccess,
                Some("AgentReloginFailed") => SchemaId::WsAgentFailure,
                _ => return Err(format!("the reload result is not AgentReloginSuccess/Failed: {result}")),
            };
            wxcc_schemas::validate(schema, &result).map_err(|v| format!("the reload result breaks {schema}: {v:?}"))
        }
        .await
    );

    // Clean up everything this run created, whatever failed.
    for (version, id) in created {
        let _ = client.call("DELETE", &format!("/{version}/subscriptions/{id}"), Some(&admin), None).await;
    }
    report
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next_message(socket: &mut Socket) -> Result<Value, String> {
    loop {
        let next = tokio::time::timeout(Duration::from_secs(20), socket.next())
            .await
            .map_err(|_| "no websocket message within 20 s".to_owned())?;
        match next {
            Some(Ok(Message::Text(text))) => {
                let value: Value =
                    serde_json::from_str(&text).map_err(|e| format!("a websocket message is not JSON: {e}"))?;
                if value.get("keepalive").is_none() {
                    return Ok(value);
                }
            }
            Some(Ok(Message::Close(frame))) => return Err(format!("the websocket closed: {frame:?}")),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(format!("websocket error: {e}")),
            None => return Err("the websocket ended".into()),
        }
    }
}

/// `wxcc-contract report`: the consumer's violations recorded by the mock at `base_url`.
pub async fn violations(base_url: &str, admin_token: Option<&str>) -> Result<Vec<Value>, String> {
    let url = format!("{}/__admin/violations", base_url.trim_end_matches('/'));
    let mut request = reqwest::Client::new().get(&url);
    if let Some(token) = admin_token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.map_err(|e| format!("GET {url}: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("GET {url}: {}", response.status()));
    }
    let body: Value = response.json().await.map_err(|e| format!("GET {url}: {e}"))?;
    Ok(body["violations"].as_array().cloned().unwrap_or_default())
}
