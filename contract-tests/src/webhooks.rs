//! Webhook receivers for tests: a real HTTP one on `127.0.0.1:0` that checks signatures from
//! the raw bytes, and an in-memory transport that records calls and answers from a script.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;
use tokio::sync::{Notify, mpsc};
use wxcc_mock::delivery::{Answer, Transport};

/// Lower-case hex HMAC-SHA256, computed here independently of the server's code.
pub fn expected_signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// One request the real receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The exact bytes.
    pub raw: Bytes,
    /// Parsed.
    pub body: Value,
    /// Whether `X-WebexCC-Signature` matched the receiver's secret (None: no header or no secret).
    pub signature_ok: Option<bool>,
}

impl Received {
    /// One header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// Statuses (and an optional `Location`) the receiver answers with, in order.
type StatusScript = Arc<Mutex<VecDeque<(u16, Option<String>)>>>;

/// A real HTTP receiver on `127.0.0.1:0`.
#[derive(Debug)]
pub struct WebhookReceiver {
    /// Its URL (`http://127.0.0.1:PORT/hook`).
    pub url: String,
    received: mpsc::UnboundedReceiver<Received>,
    statuses: StatusScript,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl WebhookReceiver {
    /// Starts one that answers 200 unless told otherwise, checking signatures with `secret`.
    pub async fn start(secret: Option<&str>) -> WebhookReceiver {
        let (tx, received) = mpsc::unbounded_channel();
        let statuses: StatusScript = Arc::default();
        let secret = secret.map(str::to_owned);
        let script = statuses.clone();
        let handler = move |headers: HeaderMap, raw: Bytes| {
            let tx = tx.clone();
            let secret = secret.clone();
            let script = script.clone();
            async move {
                let signature = headers.get("x-webexcc-signature").and_then(|v| v.to_str().ok());
                let signature_ok = match (&secret, signature) {
                    (Some(secret), Some(sig)) => Some(expected_signature(secret, &raw) == sig),
                    _ => None,
                };
                let body = serde_json::from_slice(&raw).unwrap_or(Value::Null);
                let headers = headers
                    .iter()
                    .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned()))
                    .collect();
                let _ = tx.send(Received { headers, raw, body, signature_ok });
                let (status, location) = script.lock().expect("lock").pop_front().unwrap_or((200, None));
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
                let mut response = status.into_response();
                if let Some(location) = location {
                    response.headers_mut().insert("location", location.parse().expect("header"));
                }
                response
            }
        };
        let app = axum::Router::new().route("/hook", axum::routing::post(handler));
        let (base, stop) = crate::serve_on_loopback(app).await;
        WebhookReceiver { url: format!("{base}/hook"), received, statuses, _stop: stop }
    }

    /// Answers the next requests with these statuses (then 200 again); a `Location` may go with one.
    pub fn answer_with(&self, statuses: &[(u16, Option<&str>)]) {
        let mut script = self.statuses.lock().expect("lock");
        script.extend(statuses.iter().map(|(s, l)| (*s, l.map(str::to_owned))));
    }

    /// The next request (waits on the channel, with a safety timeout).
    pub async fn next(&mut self) -> Received {
        tokio::time::timeout(crate::ws::PATIENCE, self.received.recv())
            .await
            .expect("a webhook in time")
            .expect("the receiver is running")
    }

    /// A request already received, if any (does not wait).
    pub fn try_next(&mut self) -> Option<Received> {
        self.received.try_recv().ok()
    }
}

/// One call the recording transport saw.
#[derive(Debug, Clone)]
pub struct Call {
    /// When (tokio time, so paused-clock tests can measure back-off).
    pub at: tokio::time::Instant,
    /// Destination.
    pub url: String,
    /// Headers.
    pub headers: Vec<(&'static str, String)>,
    /// Parsed body.
    pub body: Value,
}

type Script = VecDeque<Option<Result<Answer, String>>>;

#[derive(Debug, Default)]
struct Recorded {
    script: Script,
    by_url: std::collections::HashMap<String, Script>,
    calls: Vec<Call>,
}

/// An in-memory transport: records every call and answers from a script (`None` in the script
/// means "never answer", for timeouts), then 200.
#[derive(Debug, Default)]
pub struct RecordingTransport {
    recorded: Mutex<Recorded>,
    notify: Notify,
}

impl RecordingTransport {
    /// A new one, shared.
    pub fn new() -> Arc<RecordingTransport> {
        Arc::new(RecordingTransport::default())
    }

    /// Queues answers for the next calls.
    pub fn script(&self, answers: impl IntoIterator<Item = Option<Result<Answer, String>>>) {
        self.recorded.lock().expect("lock").script.extend(answers);
    }

    /// Queues answers for the next calls to one URL (before the general script).
    pub fn script_for(&self, url: &str, answers: impl IntoIterator<Item = Option<Result<Answer, String>>>) {
        self.recorded.lock().expect("lock").by_url.entry(url.to_owned()).or_default().extend(answers);
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.recorded.lock().expect("lock").calls.clone()
    }

    /// Waits until at least `n` calls were made.
    pub async fn wait_calls(&self, n: usize) -> Vec<Call> {
        loop {
            let notified = self.notify.notified();
            {
                let recorded = self.recorded.lock().expect("lock");
                if recorded.calls.len() >= n {
                    return recorded.calls.clone();
                }
            }
            notified.await;
        }
    }
}

impl Transport for RecordingTransport {
    fn post(
        &self,
        url: String,
        headers: Vec<(&'static str, String)>,
        body: Bytes,
    ) -> Pin<Box<dyn Future<Output = Result<Answer, String>> + Send>> {
        let answer = {
            let mut recorded = self.recorded.lock().expect("lock");
            let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let scripted = recorded.by_url.get_mut(&url).and_then(VecDeque::pop_front);
            recorded.calls.push(Call { at: tokio::time::Instant::now(), url, headers, body });
            scripted
                .or_else(|| recorded.script.pop_front())
                .unwrap_or(Some(Ok(Answer { status: 200, retry_after: None })))
        };
        self.notify.notify_waiters();
        Box::pin(async move {
            match answer {
                Some(answer) => answer,
                None => std::future::pending().await,
            }
        })
    }
}
