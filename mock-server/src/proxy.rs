//! `wxcc-mock proxy --upstream URL --record FILE`: a recording reverse proxy in front of any WxCC
//! server (a real org, or another mock). Every HTTP exchange is forwarded and recorded into a
//! replay bundle; a `webSocketUrl` in an answer is rewritten to come through the proxy, and the
//! notification websocket's frames are forwarded both ways and recorded too. Tokens are named
//! (`token-1`, … in the order first seen, or a world token's name), never written; secrets in
//! bodies are redacted. The bundle is rewritten after each exchange, so it is whole whenever the
//! proxy stops.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ws::{Message as AxumMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Map, Value, json};
use tokio_tungstenite::tungstenite::Message as TMessage;

use crate::bundle::{Bundle, COMPARED_HEADERS, Exchange, Frame};
use crate::world::World;

/// Exchanges (and frames) a recording holds at most; past it, more are forwarded, counted and
/// not recorded.
pub const MAX_RECORDED: usize = 10_000;

/// The largest body the proxy forwards, bytes.
const BODY_LIMIT: usize = 16 << 20;

/// Request headers not forwarded (hop-by-hop, or the proxy's own).
const NOT_FORWARDED: &[&str] =
    &["host", "connection", "content-length", "transfer-encoding", "upgrade", "keep-alive", "te", "trailer"];

/// What a proxy needs.
#[derive(Debug, Clone)]
pub struct ProxyOptions {
    /// The server in front of which it stands, `http(s)://host:port`.
    pub upstream: String,
    /// Where the bundle is written.
    pub record: PathBuf,
    /// Tokens of this world are recorded by their names.
    pub world: World,
}

#[derive(Debug)]
struct Recording {
    bundle: Bundle,
    names: HashMap<String, String>,
    started: Instant,
    refused: u64,
}

#[derive(Debug, Clone)]
struct Proxy {
    options: Arc<ProxyOptions>,
    client: reqwest::Client,
    recording: Arc<Mutex<Recording>>,
    /// `http://127.0.0.1:PORT` of the proxy itself.
    own: Arc<str>,
}

impl Proxy {
    fn lock(&self) -> std::sync::MutexGuard<'_, Recording> {
        self.recording.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The name a token is recorded by.
    fn name_of(&self, token: &str) -> String {
        if let Some(world) = self.options.world.tokens.iter().find(|t| t.access_token == token) {
            return world.name().to_owned();
        }
        let mut recording = self.lock();
        let next = recording.names.len() + 1;
        recording.names.entry(token.to_owned()).or_insert_with(|| format!("token-{next}")).clone()
    }

    fn since_start(&self) -> u64 {
        u64::try_from(self.lock().started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Adds what `add` makes to the bundle and writes it (or counts a refusal past the bound).
    fn record(&self, add: impl FnOnce(&mut Bundle)) {
        let text = {
            let mut recording = self.lock();
            if recording.bundle.exchanges.len() + recording.bundle.frames.len() >= MAX_RECORDED {
                recording.refused += 1;
                if recording.refused == 1 {
                    tracing::warn!(
                        "the recording holds {MAX_RECORDED} exchanges and frames: later ones are forwarded, not recorded"
                    );
                }
                return;
            }
            add(&mut recording.bundle);
            serde_json::to_string_pretty(&recording.bundle).unwrap_or_default()
        };
        let path = &self.options.record;
        let temporary = path.with_extension("json.partial");
        if let Err(e) = std::fs::write(&temporary, text).and_then(|()| std::fs::rename(&temporary, path)) {
            tracing::warn!("writing the recording {}: {e}", path.display());
        }
    }
}

/// Serves the proxy on `listener` until `shutdown`; the bundle is at `options.record` all along.
pub async fn run(
    listener: tokio::net::TcpListener,
    options: ProxyOptions,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let own: Arc<str> = format!("http://{}", listener.local_addr()?).into();
    let bundle = Bundle {
        format: crate::bundle::FORMAT.to_owned(),
        version: 1,
        recorded_from: options.upstream.clone(),
        recorded_at: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or_default()),
        exchanges: Vec::new(),
        frames: Vec::new(),
    };
    let recording = Recording { bundle, names: HashMap::new(), started: Instant::now(), refused: 0 };
    let proxy = Proxy {
        options: Arc::new(options),
        client: reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap_or_default(),
        recording: Arc::new(Mutex::new(recording)),
        own,
    };
    proxy.record(|_| {});
    let app = Router::new().fallback(forward).with_state(proxy);
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    headers.get(header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ").map(|t| t.trim().to_owned())
}

fn json_or_text(bytes: &[u8]) -> Option<Value> {
    if bytes.is_empty() {
        return None;
    }
    Some(serde_json::from_slice(bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned())))
}

async fn forward(State(proxy): State<Proxy>, request: Request) -> Response {
    let (mut parts, body) = request.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    if let Ok(upgrade) = WebSocketUpgrade::from_request_parts(&mut parts, &proxy).await {
        let target = format!("{}{path}", proxy.options.upstream.replacen("http", "ws", 1));
        let name = bearer(&parts.headers).map(|t| proxy.name_of(&t));
        return upgrade.on_upgrade(move |socket| relay(proxy, socket, target, path, name)).into_response();
    }
    let Ok(bytes) = axum::body::to_bytes(body, BODY_LIMIT).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "the proxy forwards bodies up to 16 MiB").into_response();
    };
    let at = proxy.since_start();
    let method = reqwest::Method::from_bytes(parts.method.as_str().as_bytes()).unwrap_or(reqwest::Method::GET);
    let mut upstream = proxy.client.request(method, format!("{}{path}", proxy.options.upstream.trim_end_matches('/')));
    for (name, value) in &parts.headers {
        if !NOT_FORWARDED.contains(&name.as_str()) {
            upstream = upstream.header(name.as_str(), value.as_bytes());
        }
    }
    let answer = match upstream.body(bytes.clone()).send().await {
        Ok(answer) => answer,
        Err(e) => {
            tracing::warn!("{} {path}: the upstream did not answer: {e}", parts.method);
            return (StatusCode::BAD_GATEWAY, format!("the upstream did not answer: {e}")).into_response();
        }
    };
    let status = answer.status().as_u16();
    let headers = answer.headers().clone();
    let mut body = answer.bytes().await.unwrap_or_default();
    // The notification websocket comes through the proxy too.
    let mut parsed = json_or_text(&body);
    if let Some(Value::Object(map)) = parsed.as_mut()
        && let Some(Value::String(url)) = map.get_mut("webSocketUrl")
    {
        let rest = url.splitn(4, '/').nth(3).unwrap_or_default().to_owned();
        *url = format!("{}/{rest}", proxy.own.replacen("http", "ws", 1));
        body = Bytes::from(serde_json::to_vec(&map).unwrap_or_default());
    }
    let name = bearer(&parts.headers).map(|t| proxy.name_of(&t));
    let request_headers: Map<String, Value> = ["content-type", "accept"]
        .iter()
        .filter_map(|n| parts.headers.get(*n).map(|v| ((*n).to_owned(), json!(v.to_str().unwrap_or_default()))))
        .collect();
    let response_headers: Map<String, Value> = COMPARED_HEADERS
        .iter()
        .filter_map(|n| headers.get(*n).map(|v| ((*n).to_owned(), json!(v.to_str().unwrap_or_default()))))
        .collect();
    let mut request_body = json_or_text(&bytes);
    if let Some(value) = request_body.as_mut() {
        crate::redact::redact_value(value);
    }
    let exchange = Exchange {
        at,
        method: parts.method.to_string(),
        path: crate::redact::redact_uri(&path).into_owned(),
        token: name,
        token_owner: None,
        request_headers,
        request_body,
        status,
        response_headers,
        response_body: parsed,
    };
    tracing::info!("{} {} {status} (recorded)", exchange.method, exchange.path);
    proxy.record(|bundle| bundle.exchanges.push(exchange));
    let mut response = Response::builder().status(status);
    for (name, value) in &headers {
        if !NOT_FORWARDED.contains(&name.as_str()) {
            response = response.header(name, value);
        }
    }
    response.body(Body::from(body)).unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response())
}

/// Forwards one notification websocket both ways, recording each text frame.
async fn relay(proxy: Proxy, client: WebSocket, target: String, path: String, token: Option<String>) {
    let upstream = match tokio_tungstenite::connect_async(&target).await {
        Ok((upstream, _)) => upstream,
        Err(e) => {
            tracing::warn!("websocket {target}: the upstream refused: {e}");
            return;
        }
    };
    let connection = crate::redact::redact_uri(&path).into_owned();
    let (mut to_upstream, mut from_upstream) = upstream.split();
    let (mut to_client, mut from_client) = client.split();
    let record = |direction: &'static str, text: &str| {
        let frame = Frame {
            at: proxy.since_start(),
            connection: connection.clone(),
            token: token.clone(),
            direction: direction.to_owned(),
            message: serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned())),
        };
        proxy.record(|bundle| bundle.frames.push(frame));
    };
    loop {
        tokio::select! {
            message = from_upstream.next() => match message {
                Some(Ok(TMessage::Text(text))) => {
                    record("out", &text);
                    if to_client.send(AxumMessage::Text(text.as_str().into())).await.is_err() { break; }
                }
                Some(Ok(TMessage::Close(frame))) => {
                    let close = frame.map(|f| axum::extract::ws::CloseFrame { code: f.code.into(), reason: f.reason.as_str().into() });
                    let _ = to_client.send(AxumMessage::Close(close)).await;
                    break;
                }
                Some(Ok(_)) => {}
                _ => break,
            },
            message = from_client.next() => match message {
                Some(Ok(AxumMessage::Text(text))) => {
                    record("in", &text);
                    if to_upstream.send(TMessage::Text(text.as_str().into())).await.is_err() { break; }
                }
                Some(Ok(AxumMessage::Close(_))) | None | Some(Err(_)) => {
                    let _ = to_upstream.send(TMessage::Close(None)).await;
                    break;
                }
                Some(Ok(_)) => {}
            },
        }
    }
}
