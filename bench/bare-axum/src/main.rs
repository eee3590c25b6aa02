//! The baseline for `bench/load.sh`: axum answering `GET /v1/subscriptions` with the fixed JSON
//! body the mock sends for an organisation without subscriptions, and nothing else (no auth, no
//! tracking id, no journal). `bare-axum PORT` (0 picks one); prints `listening on http://ADDR`.

use axum::Router;
use axum::http::header;
use axum::routing::get;

const BODY: &str = r#"{"data":[],"meta":{"orgId":"14091636-52e9-4d11-bd49-53df3b39f246","subscriptionCount":0}}"#;

fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let app = Router::new()
            .route("/v1/subscriptions", get(|| async { ([(header::CONTENT_TYPE, "application/json")], BODY) }));
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        eprintln!("listening on http://{}", listener.local_addr()?);
        axum::serve(listener, app).await
    })
}
