//! Two small companions for trying the mock by hand (and for the README tour):
//! `wxcc-mock receive` is a webhook receiver that checks signatures from the raw bytes, and
//! `wxcc-mock listen` subscribes to an agent's notification websocket and prints what arrives.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::outputs::delivery::sign;

/// Counts the deliveries of each event id a receiver has seen, to number retries (WxCC sends no
/// attempt header: a retry is the same event id again). Bounded: past 100,000 ids it starts over.
#[derive(Debug, Default)]
pub struct Attempts {
    seen: std::sync::Mutex<std::collections::HashMap<String, u32>>,
}

impl Attempts {
    /// The delivery number of this one (1 for the first time the id is seen).
    pub fn count(&self, event_id: &str) -> u32 {
        let mut seen = self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if seen.len() >= 100_000 {
            seen.clear();
        }
        let n = seen.entry(event_id.to_owned()).or_default();
        *n += 1;
        *n
    }
}

/// What a receiver says about one delivery, as one line.
pub fn describe_delivery(headers: &HeaderMap, raw: &[u8], secret: Option<&str>) -> String {
    describe_attempt(headers, raw, secret, None)
}

/// Like [`describe_delivery`], with the delivery's number for its event id.
pub fn describe_attempt(headers: &HeaderMap, raw: &[u8], secret: Option<&str>, attempt: Option<u32>) -> String {
    let body: Value = serde_json::from_slice(raw).unwrap_or(Value::Null);
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let signature = match (secret, header("x-webexcc-signature")) {
        (Some(secret), Some(sent)) if sign(secret, raw) == sent => "valid",
        (Some(_), Some(_)) => "INVALID",
        (Some(_), None) => "MISSING",
        (None, Some(_)) => "not checked (no --secret)",
        (None, None) => "none",
    };
    let attempt = attempt.map(|n| format!(" attempt={n}")).unwrap_or_default();
    let mut line = format!(
        "{} id={}{attempt} source={} signature={signature}",
        body["type"].as_str().unwrap_or("?"),
        body["id"].as_str().unwrap_or("?"),
        body["source"].as_str().unwrap_or("?"),
    );
    if let Some(stamp) = header("x-webexcc-timestamp") {
        let matches = stamp.parse::<i64>().ok() == body["comciscotimestamp"].as_i64();
        line.push_str(&format!(" timestamp={stamp}{}", if matches { "" } else { " (DIFFERS FROM BODY)" }));
    }
    if let Some(version) = header("x-webexcc-webhook-version") {
        line.push_str(&format!(" version={version}"));
    }
    line.push_str(&format!(" data={}", body["data"]));
    line
}

/// Serves a receiver on `listener` until `shutdown`: prints one line per delivery and answers
/// 500 to the first `fail_first` of them (to watch retries), 200 afterwards.
pub async fn receive(
    listener: tokio::net::TcpListener,
    secret: Option<String>,
    fail_first: u32,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let secret = Arc::new(secret);
    let failures = Arc::new(AtomicU32::new(fail_first));
    let attempts = Arc::new(Attempts::default());
    let handler = move |headers: HeaderMap, raw: Bytes| {
        let secret = secret.clone();
        let failures = failures.clone();
        let attempts = attempts.clone();
        async move {
            let failing = failures.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
            let status = if failing { StatusCode::INTERNAL_SERVER_ERROR } else { StatusCode::OK };
            let id = serde_json::from_slice::<Value>(&raw).ok().and_then(|b| b["id"].as_str().map(str::to_owned));
            let attempt = id.map(|id| attempts.count(&id));
            println!("{} -> {}", describe_attempt(&headers, &raw, secret.as_deref(), attempt), status.as_u16());
            status
        }
    };
    let app = axum::Router::new().fallback(axum::routing::post(handler));
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}

/// How `wxcc-mock listen` connects.
#[derive(Debug, Clone)]
pub struct ListenOptions {
    /// The mock's (or any WxCC's) base URL.
    pub base_url: String,
    /// The agent's bearer token.
    pub token: String,
    /// `clientType` for the subscription.
    pub client_type: String,
    /// Send `{"keepalive":"true"}` every 4 s (with `isKeepAliveEnabled`); without it the
    /// listener stays silent and the mock closes it (4000) after 16 s on its clock.
    pub keepalive: bool,
    /// Subscribe with `isKeepAliveEnabled` (the mock closes a socket silent for 16 s); without
    /// it, as Cisco's SDK subscribes by default, silence is fine and nothing is sent.
    pub idle_close: bool,
    /// A certificate (PEM) to trust for `https://` and `wss://`, besides the usual roots (the
    /// one `serve --tls` made).
    pub ca_cert: Option<String>,
}

/// Subscribes the token's agent to notifications and prints every message (keep-alives too)
/// until the socket closes; then prints `closed: CODE REASON` on standard error.
pub async fn listen(options: &ListenOptions) -> anyhow::Result<()> {
    let (client, connector) = crate::tls::clients_trusting(options.ca_cert.as_deref())?;
    let body =
        json!({"clientType": options.client_type, "isKeepAliveEnabled": options.idle_close, "allowMultiLogin": true});
    let response = client
        .post(format!("{}/v1/notification/subscribe", options.base_url.trim_end_matches('/')))
        .bearer_auth(&options.token)
        .json(&body)
        .send()
        .await?;
    let status = response.status();
    let diagnostic = response.headers().get("x-wxcc-mock-diagnostic").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let answer: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        anyhow::bail!("subscribe answered {status}: {}", diagnostic.unwrap_or_else(|| answer.to_string()));
    }
    let url = answer["webSocketUrl"].as_str().unwrap_or_default();
    let (socket, _) = tokio_tungstenite::connect_async_tls_with_config(url, None, false, connector).await?;
    eprintln!("connected to {url}");
    let (mut sink, mut stream) = socket.split();
    let mut keepalive = tokio::time::interval(Duration::from_secs(4));
    loop {
        tokio::select! {
            message = stream.next() => match message {
                Some(Ok(Message::Text(text))) => println!("{text}"),
                Some(Ok(Message::Close(frame))) => {
                    match frame {
                        Some(frame) => eprintln!("closed: {} {}", u16::from(frame.code), frame.reason),
                        None => eprintln!("closed"),
                    }
                    return Ok(());
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
                None => {
                    eprintln!("closed: the connection dropped");
                    return Ok(());
                }
            },
            _ = keepalive.tick(), if options.keepalive => {
                sink.send(Message::Text(json!({"keepalive": "true"}).to_string().into())).await?;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_receiver_reports_valid_invalid_and_missing_signatures() {
        let raw = br#"{"type":"agent:login","id":"e1","source":"/com/cisco/wxcc/s1","data":{}}"#;
        let mut headers = HeaderMap::new();
        assert!(describe_delivery(&headers, raw, Some("k")).contains("signature=MISSING"));
        headers.insert("x-webexcc-signature", sign("k", raw).parse().expect("header"));
        let line = describe_delivery(&headers, raw, Some("k"));
        assert!(line.starts_with("agent:login id=e1 source=/com/cisco/wxcc/s1 signature=valid"), "{line}");
        assert!(describe_delivery(&headers, raw, Some("other")).contains("signature=INVALID"));
        headers.insert("x-webexcc-timestamp", "5".parse().expect("header"));
        assert!(describe_delivery(&headers, raw, Some("k")).contains("(DIFFERS FROM BODY)"));
    }

    #[test]
    fn a_retry_is_numbered_by_how_often_its_event_id_was_seen() {
        let attempts = Attempts::default();
        assert_eq!((attempts.count("e1"), attempts.count("e2"), attempts.count("e1")), (1, 1, 2));
        let raw = br#"{"type":"agent:login","id":"e1","source":"/com/cisco/wxcc/s1","data":{}}"#;
        let line = describe_attempt(&HeaderMap::new(), raw, None, Some(3));
        assert!(line.starts_with("agent:login id=e1 attempt=3 source="), "{line}");
    }
}
