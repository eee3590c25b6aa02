//! Replay bundles (`schemas/json/bundle.json`): recorded WxCC exchanges, in order and timed,
//! with tokens named rather than shown. `GET /__admin/journal/export` writes the mock's journal
//! as one; `wxcc-mock replay` plays one against any server and reports what differs.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::outputs::journal::Entry;
use crate::world::World;

/// The `format` every bundle names.
pub const FORMAT: &str = "wxcc-mock-bundle";

/// Request headers a bundle keeps (the rest say nothing about the exchange's meaning).
const REQUEST_HEADERS: &[&str] = &["content-type", "accept", "x-wxcc-mock-fault"];

/// Response headers a replay compares.
pub const COMPARED_HEADERS: &[&str] = &["content-type", "retry-after"];

/// One recorded exchange.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Exchange {
    /// Ms after the bundle's first exchange.
    pub at: u64,
    /// The method.
    pub method: String,
    /// The path, query included.
    pub path: String,
    /// The world token's name it was sent with (`agent2`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Whose token it was, when it is no world token (minted, or another server's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_owner: Option<String>,
    /// The headers that matter.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub request_headers: Map<String, Value>,
    /// The JSON body sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_body: Option<Value>,
    /// The status answered.
    pub status: u16,
    /// The headers a replay compares.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub response_headers: Map<String, Value>,
    /// The JSON body answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_body: Option<Value>,
}

/// A bundle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Bundle {
    /// [`FORMAT`].
    pub format: String,
    /// 1.
    pub version: u32,
    /// Where it was recorded.
    pub recorded_from: String,
    /// When the first exchange was (epoch ms).
    pub recorded_at: i64,
    /// The exchanges, in order.
    pub exchanges: Vec<Exchange>,
    /// Notification websocket frames (recorded by `wxcc-mock proxy`), in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub frames: Vec<Frame>,
}

/// One websocket frame a proxy saw.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Frame {
    /// Ms after the recording started.
    pub at: u64,
    /// The connection: its path (`proxy`), or its agent and number (the journal's export).
    pub connection: String,
    /// The token's name the connection was opened with, if it sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// `out` (server to client) or `in`.
    pub direction: String,
    /// The message (JSON, or text when it was not JSON).
    pub message: Value,
}

fn pick(headers: &Value, names: &[&str]) -> Map<String, Value> {
    names.iter().filter_map(|n| headers.get(*n).map(|v| ((*n).to_owned(), v.clone()))).collect()
}

/// The journal's HTTP exchanges and websocket messages as a bundle.
pub fn from_journal(entries: &[Arc<Entry>], world: &World) -> Bundle {
    use crate::outputs::journal::Kind;
    let first = entries.first().map_or(0, |e| e.at);
    let frames = entries
        .iter()
        .filter(|e| e.kind == Kind::Ws)
        .filter_map(|entry| {
            let recorded: Value = serde_json::from_str(&entry.json()).ok()?;
            // A message for an agent with no socket open went nowhere: not a frame.
            recorded["connection"].as_u64()?;
            Some(Frame {
                at: u64::try_from(entry.at - first).unwrap_or_default(),
                connection: format!(
                    "{} #{}",
                    recorded["email"].as_str().unwrap_or_default(),
                    recorded["connection"].as_u64().unwrap_or_default()
                ),
                token: None,
                direction: recorded["direction"].as_str()?.to_owned(),
                message: recorded.get("message")?.clone(),
            })
        })
        .collect();
    let exchanges = entries
        .iter()
        .filter(|e| e.kind == Kind::Http)
        .filter_map(|entry| {
            let recorded: Value = serde_json::from_str(&entry.json()).ok()?;
            let token = entry
                .bearer()
                .and_then(|bearer| world.tokens.iter().find(|t| t.access_token == bearer))
                .map(|t| t.name().to_owned());
            let token_owner = match (&token, entry.bearer()) {
                (None, Some(_)) => recorded["caller"].as_str().map(str::to_owned),
                _ => None,
            };
            Some(Exchange {
                at: u64::try_from(entry.at - first).unwrap_or_default(),
                method: recorded["method"].as_str()?.to_owned(),
                path: recorded["path"].as_str()?.to_owned(),
                token,
                token_owner,
                request_headers: pick(&recorded["requestHeaders"], REQUEST_HEADERS),
                request_body: recorded.get("requestBody").cloned(),
                status: u16::try_from(recorded["status"].as_u64()?).ok()?,
                response_headers: pick(&recorded["responseHeaders"], COMPARED_HEADERS),
                response_body: recorded.get("responseBody").cloned(),
            })
        })
        .collect();
    Bundle {
        format: FORMAT.to_owned(),
        version: 1,
        recorded_from: "wxcc-mock journal".to_owned(),
        recorded_at: first,
        exchanges,
        frames,
    }
}

/// `value` with what differs from run to run replaced: ids (`id`, `…Id`, and any uuid inside a
/// string), times (`…Time`, `…At`, `timestamp`) and the host of `webSocketUrl`.
pub fn redacted(value: &Value) -> Value {
    /// `text` with every uuid in it replaced by `[id]`.
    fn without_uuids(text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while !rest.is_empty() {
            let candidate = rest.get(..36).filter(|c| c.as_bytes()[8] == b'-' && uuid::Uuid::parse_str(c).is_ok());
            match candidate {
                Some(_) => {
                    out.push_str("[id]");
                    rest = &rest[36..];
                }
                None => {
                    let step = rest.chars().next().map_or(1, char::len_utf8);
                    out.push_str(&rest[..step]);
                    rest = &rest[step..];
                }
            }
        }
        out
    }
    fn walk(key: &str, value: &Value) -> Value {
        let lower = key.to_ascii_lowercase();
        let id = lower == "id" || key.ends_with("Id") || lower == "trackingid";
        let time = key.ends_with("Time") || key.ends_with("At") || lower == "timestamp" || lower == "now";
        match value {
            Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), walk(k, v))).collect()),
            Value::Array(items) => Value::Array(items.iter().map(|v| walk(key, v)).collect()),
            Value::Null => Value::Null,
            _ if id => json!("[id]"),
            _ if time => json!("[time]"),
            Value::String(s) if key == "webSocketUrl" => {
                json!(without_uuids(&s.split('/').skip(3).collect::<Vec<_>>().join("/")))
            }
            Value::String(s) => json!(without_uuids(s)),
            other => other.clone(),
        }
    }
    walk("", value)
}

/// The first place `want` and `have` differ (after [`redacted`]), as `/pointer: want X, have Y`.
pub fn first_difference(want: &Value, have: &Value) -> Option<String> {
    fn walk(at: &str, want: &Value, have: &Value) -> Option<String> {
        match (want, have) {
            (Value::Object(a), Value::Object(b)) => {
                for (key, value) in a {
                    let here = format!("{at}/{key}");
                    match b.get(key) {
                        Some(other) => {
                            if let Some(difference) = walk(&here, value, other) {
                                return Some(difference);
                            }
                        }
                        None => return Some(format!("{here}: recorded {value}, now absent")),
                    }
                }
                b.keys().find(|k| !a.contains_key(*k)).map(|k| format!("{at}/{k}: absent when recorded, now {}", b[k]))
            }
            (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
                a.iter().zip(b).enumerate().find_map(|(i, (x, y))| walk(&format!("{at}/{i}"), x, y))
            }
            _ if want == have => None,
            _ => Some(format!("{}: recorded {want}, now {have}", if at.is_empty() { "/" } else { at })),
        }
    }
    walk("", &redacted(want), &redacted(have))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_times_are_redacted_so_only_what_matters_differs() {
        let recorded = json!({"meta": {"orgId": "a"}, "data": {"id": "1", "name": "crm", "createdTime": 5, "tags": ["x"]}, "trackingId": "NOTIFS_9c5a6a3e-8e3d-4f1e-9d0c-2b3a4c5d6e7f"});
        let now = json!({"meta": {"orgId": "b"}, "data": {"id": "2", "name": "crm", "createdTime": 9, "tags": ["x"]}, "trackingId": "NOTIFS_1c5a6a3e-8e3d-4f1e-9d0c-2b3a4c5d6e7f"});
        assert_eq!(first_difference(&recorded, &now), None);
        let renamed =
            json!({"meta": {"orgId": "b"}, "data": {"id": "2", "name": "erp", "createdTime": 9, "tags": ["x"]}});
        assert_eq!(first_difference(&recorded, &renamed).as_deref(), Some("/data/name: recorded \"crm\", now \"erp\""));
        let grown = json!({"meta": {"orgId": "b"}, "data": {"id": "2", "name": "crm", "createdTime": 9, "tags": ["x"], "new": 1}, "trackingId": "t"});
        assert_eq!(first_difference(&recorded, &grown).as_deref(), Some("/data/new: absent when recorded, now 1"));
        let url =
            |id: &str| json!({"webSocketUrl": format!("ws://127.0.0.1:1/v1/notification/subscription/Desk-{id}")});
        let (one, two) = ("9c5a6a3e-8e3d-4f1e-9d0c-2b3a4c5d6e7f", "1c5a6a3e-8e3d-4f1e-9d0c-2b3a4c5d6e70");
        assert_eq!(first_difference(&url(one), &url(two)), None, "a uuid inside a string is an id");
        assert!(first_difference(&json!({"name": "Desk-1"}), &json!({"name": "Desk-2"})).is_some());
    }
}

/// What a replay sends for a secret the bundle holds redacted (a subscription's `secret`).
pub const REPLAY_SECRET: &str = "wxcc-mock-replay-secret-0123456789abcdef";

/// `body` with every redacted secret replaced by [`REPLAY_SECRET`].
fn with_secrets(body: &Value) -> Value {
    match body {
        Value::String(s) if s == crate::redact::REDACTED => json!(REPLAY_SECRET),
        Value::Array(items) => Value::Array(items.iter().map(with_secrets).collect()),
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), with_secrets(v))).collect()),
        other => other.clone(),
    }
}

/// How to replay a bundle.
#[derive(Debug, Clone, Default)]
pub struct ReplayOptions {
    /// The server, `http://host:port`.
    pub base_url: String,
    /// The token to send for each recorded token name.
    pub tokens: std::collections::HashMap<String, String>,
    /// Keep the recorded gaps between requests (on real time); otherwise back to back.
    pub timing: bool,
}

impl Bundle {
    /// Reads a bundle, checked against `schemas/json/bundle.json`.
    pub fn parse(text: &str) -> Result<Bundle, String> {
        let value: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        wxcc_schemas::validate(wxcc_schemas::SchemaId::Bundle, &value)
            .map_err(|violations| violations.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))?;
        serde_json::from_value(value).map_err(|e| e.to_string())
    }
}

/// Plays `bundle`'s requests against `options.base_url` in order and compares each answer with
/// the recorded one: the status, [`COMPARED_HEADERS`], and the body with ids and times
/// [`redacted`]. One check per exchange; an exchange whose token has no replacement is skipped.
pub async fn replay(bundle: &Bundle, options: &ReplayOptions) -> crate::report::Report {
    use crate::report::{Outcome, Verdict};
    let client = reqwest::Client::new();
    let started = std::time::Instant::now();
    let mut report = crate::report::Report::default();
    for (i, exchange) in bundle.exchanges.iter().enumerate() {
        if options.timing {
            let due = std::time::Duration::from_millis(exchange.at);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                tokio::time::sleep(wait).await;
            }
        }
        let name = format!("#{} {} {} answers {}", i + 1, exchange.method, exchange.path, exchange.status);
        let began = std::time::Instant::now();
        let verdict = match play(&client, exchange, options).await {
            Ok(None) => Verdict::Passed,
            Ok(Some(difference)) => Verdict::Failed(difference),
            Err(skip) => Verdict::Skipped(skip),
        };
        report.outcomes.push(Outcome { name, verdict, duration: began.elapsed() });
    }
    report
}

/// One exchange: `Ok(None)` when it answers as recorded, `Ok(Some(what differs))`, or
/// `Err(why it was not sent)`.
async fn play(
    client: &reqwest::Client,
    exchange: &Exchange,
    options: &ReplayOptions,
) -> Result<Option<String>, String> {
    let method = reqwest::Method::from_bytes(exchange.method.as_bytes()).map_err(|e| e.to_string())?;
    let mut request = client.request(method, format!("{}{}", options.base_url.trim_end_matches('/'), exchange.path));
    match (&exchange.token, &exchange.token_owner) {
        (Some(name), _) => {
            let token =
                options.tokens.get(name).ok_or_else(|| format!("no token for {name:?}: give --token {name}=TOKEN"))?;
            request = request.bearer_auth(token);
        }
        (None, Some(owner)) => return Err(format!("sent with a token of {owner} that is no world token")),
        (None, None) => {}
    }
    for (name, value) in &exchange.request_headers {
        request = request.header(name, value.as_str().unwrap_or_default());
    }
    match &exchange.request_body {
        Some(Value::String(text)) => request = request.body(text.clone()),
        Some(body) => request = request.body(with_secrets(body).to_string()),
        None => {}
    }
    let answer = request.send().await.map_err(|e| format!("no answer: {e}"))?;
    let status = answer.status().as_u16();
    let headers: Map<String, Value> = COMPARED_HEADERS
        .iter()
        .filter_map(|n| answer.headers().get(*n).map(|v| ((*n).to_owned(), json!(v.to_str().unwrap_or_default()))))
        .collect();
    let bytes = answer.bytes().await.map_err(|e| format!("no body: {e}"))?;
    if status != exchange.status {
        return Ok(Some(format!("status: recorded {}, now {status}", exchange.status)));
    }
    for name in COMPARED_HEADERS {
        let (want, have) = (exchange.response_headers.get(*name), headers.get(*name));
        // Content types compare without parameters.
        let bare = |v: Option<&Value>| {
            v.and_then(Value::as_str).map(|s| s.split(';').next().unwrap_or_default().trim().to_owned())
        };
        if bare(want) != bare(have) {
            return Ok(Some(format!("header {name}: recorded {want:?}, now {have:?}")));
        }
    }
    let body = if bytes.is_empty() {
        None
    } else {
        Some(
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned())),
        )
    };
    Ok(match (&exchange.response_body, &body) {
        (None, None) => None,
        (Some(want), Some(have)) => first_difference(want, have).map(|d| format!("body {d}")),
        (want, have) => Some(format!("body: recorded {want:?}, now {have:?}")),
    })
}
