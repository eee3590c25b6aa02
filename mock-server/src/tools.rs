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

/// What a receiver says about one delivery, as one line.
pub fn describe_delivery(headers: &HeaderMap, raw: &[u8], secret: Option<&str>) -> String {
    let body: Value = serde_json::from_slice(raw).unwrap_or(Value::Null);
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let signature = match (secret, header("x-webexcc-signature")) {
        (Some(secret), Some(sent)) if sign(secret, raw) == sent => "valid",
        (Some(_), Some(_)) => "INVALID",
        (Some(_), None) => "MISSING",
        (None, Some(_)) => "not checked (no --secret)",
        (None, None) => "none",
    };
    let mut line = format!(
        "{} id={} source={} signature={signature}",
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
    let handler = move |headers: HeaderMap, raw: Bytes| {
        let secret = secret.clone();
        let failures = failures.clone();
        async move {
            let failing = failures.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
            let status = if failing { StatusCode::INTERNAL_SERVER_ERROR } else { StatusCode::OK };
            println!("{} -> {}", describe_delivery(&headers, &raw, secret.as_deref()), status.as_u16());
            status
        }
    };
    let app = axum::Router::new().fallback(axum::routing::post(handler));
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}

/// Subscribes `token`'s agent to notifications at `base_url` and prints every message (but
/// keepalives) until the socket closes. Sends a keepalive every 4 s.
pub async fn listen(base_url: &str, token: &str, client_type: &str) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let body = json!({"clientType": client_type, "isKeepAliveEnabled": true, "allowMultiLogin": true});
    let response = client
        .post(format!("{}/v1/notification/subscribe", base_url.trim_end_matches('/')))
        .bearer_auth(token)
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
    let (socket, _) = tokio_tungstenite::connect_async(url).await?;
    eprintln!("connected to {url}");
    let (mut sink, mut stream) = socket.split();
    let mut keepalive = tokio::time::interval(Duration::from_secs(4));
    loop {
        tokio::select! {
            message = stream.next() => match message {
                Some(Ok(Message::Text(text))) => {
                    if !text.contains("\"keepalive\"") {
                        println!("{text}");
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    eprintln!("closed: {frame:?}");
                    return Ok(());
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
                None => return Ok(()),
            },
            _ = keepalive.tick() => {
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
}
