//! Who may reach what: the mock's own API belongs to the developer who runs it, and webhooks do
//! not become a way into their machine.
//!
//! - `/__admin` answers only requests whose `Host` names the mock (its bound address,
//!   `localhost`, `127.0.0.1`, `[::1]`, the `--public-url` host or an `--allow-host` name), so a
//!   web page cannot reach it through DNS rebinding; with `--admin-token` it also needs
//!   `Authorization: Bearer <token>`; a request that changes state must say
//!   `Content-Type: application/json`, which a page cannot send across origins without asking.
//! - A webhook destination may not be the mock itself, a loopback port below 1024 that was not
//!   above 1023, or a special-use or internal name (`.internal`, `.local`,
//!   `.localhost`, `.home.arpa`, …, and wildcard-DNS services such as `nip.io` that resolve to
//!   any address); and when a delivery resolves a name, a private, link-local or loopback address
//!   is refused (only `localhost` may be loopback).
//! - The `webSocketUrl` the mock hands out is built from `--public-url` or the bound address,
//!   never from the request's `Host`.

use std::net::{IpAddr, SocketAddr};

use axum::http::request::Parts;
use axum::http::{Method, StatusCode, header};
use url::Url;

use crate::http::ApiError;
use crate::state::AppState;

/// How the mock is exposed (`serve`'s flags).
#[derive(Debug, Clone, Default)]
pub struct AccessConfig {
    /// Serve TLS (`https://`, `wss://`) with this certificate.
    pub tls: Option<crate::tls::Identity>,
    /// Origins whose web pages may call the WxCC routes (`--cors-origin`; `*` for any). Empty:
    /// any `localhost`, `127.0.0.1` or `[::1]` origin, on any port.
    pub cors_origins: Vec<String>,
    /// The URL clients reach the mock at, when it is not the bound address (a proxy, a
    /// container's published port): it names the mock for `/__admin` and builds `webSocketUrl`.
    pub public_url: Option<Url>,
    /// More host names `/__admin` answers to.
    pub allow_hosts: Vec<String>,
    /// When set, `/__admin` needs `Authorization: Bearer <token>`.
    pub admin_token: Option<String>,
}

/// CORS for the WxCC routes (never `/__admin`, which stays the developer's), engaged only for a
/// request that says its `Origin` (a browser's): its preflight is answered, with a TrackingID as
/// every answer has, and every answer (429s and other errors too, as the real API does) carries
/// the `Access-Control-*` headers for an allowed origin. A request without `Origin` (an SDK on a
/// server, curl, a test) goes straight to the routes: it gets no `Vary` headers and pays nothing.
#[derive(Debug, Clone)]
pub struct BrowserAccessLayer(std::sync::Arc<tower_http::cors::CorsLayer>);

impl BrowserAccessLayer {
    /// The layer for `access`'s `--cors-origin` list.
    pub fn new(access: &AccessConfig) -> Self {
        BrowserAccessLayer(std::sync::Arc::new(cors(access)))
    }
}

impl<S> tower::Layer<S> for BrowserAccessLayer {
    type Service = BrowserAccess<S>;
    fn layer(&self, inner: S) -> Self::Service {
        BrowserAccess { direct: inner, cors: self.0.clone() }
    }
}

/// See [`BrowserAccessLayer`]. The server clones its service for every request, so the CORS
/// rules are shared, not copied.
#[derive(Debug, Clone)]
pub struct BrowserAccess<S> {
    direct: S,
    cors: std::sync::Arc<tower_http::cors::CorsLayer>,
}

type Response = axum::response::Response;

impl<S> tower::Service<axum::extract::Request> for BrowserAccess<S>
where
    S: tower::Service<axum::extract::Request, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future =
        futures_util::future::Either<S::Future, futures_util::future::BoxFuture<'static, Result<Response, S::Error>>>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        self.direct.poll_ready(cx)
    }

    fn call(&mut self, request: axum::extract::Request) -> Self::Future {
        use futures_util::future::Either;
        use tower::{Layer, ServiceExt};
        if crate::http::find_header(request.headers(), &header::ORIGIN).is_none() {
            return Either::Left(self.direct.call(request));
        }
        let cors = self.cors.layer(self.direct.clone());
        // A preflight is answered here, before any route: its TrackingID is the path's service's.
        let prefix = crate::http::Service::for_path(request.uri().path()).tracking_prefix();
        Either::Right(Box::pin(async move {
            let mut response = cors.oneshot(request).await?;
            if !response.headers().contains_key(crate::http::TRACKING_ID) {
                let id = crate::ids::prefixed(prefix);
                if let Ok(value) = axum::http::HeaderValue::from_str(&id) {
                    response.headers_mut().insert(crate::http::TRACKING_ID, value);
                }
            }
            Ok(response)
        }))
    }
}

fn cors(access: &AccessConfig) -> tower_http::cors::CorsLayer {
    use axum::http::{HeaderName, HeaderValue};
    use tower_http::cors::{AllowOrigin, CorsLayer};
    let listed: Vec<String> =
        access.cors_origins.iter().map(|o| o.trim_end_matches('/').to_ascii_lowercase()).collect();
    let any = listed.iter().any(|o| o == "*");
    let allow = AllowOrigin::predicate(move |origin: &HeaderValue, parts: &axum::http::request::Parts| {
        if parts.uri.path().starts_with("/__admin") {
            return false;
        }
        let Ok(origin) = origin.to_str() else { return false };
        if any {
            return true;
        }
        if listed.is_empty() {
            return Url::parse(origin).ok().and_then(|u| u.host_str().map(str::to_owned)).is_some_and(|h| {
                let h = h.trim_start_matches('[').trim_end_matches(']');
                h.eq_ignore_ascii_case("localhost") || h == "127.0.0.1" || h == "::1"
            });
        }
        listed.iter().any(|o| o.eq_ignore_ascii_case(origin))
    });
    CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            HeaderName::from_static("trackingid"),
            HeaderName::from_static("x-requested-with"),
        ])
        .expose_headers([
            HeaderName::from_static("trackingid"),
            HeaderName::from_static("x-wxcc-mock-diagnostic"),
            header::RETRY_AFTER,
        ])
        .max_age(std::time::Duration::from_secs(600))
}

/// Top-level and second-level names no webhook goes to: special-use names (RFC 6761, 6762,
/// 8375, 9476) and names used only inside networks and clusters.
const INTERNAL_SUFFIXES: &[&str] = &[
    "localhost",
    "local",
    "internal",
    "home.arpa",
    "test",
    "invalid",
    "onion",
    "alt",
    "lan",
    "intranet",
    "corp",
    "private",
    "localdomain",
    "cluster.local",
];

/// Public DNS services whose names resolve to any address written into them (`127.0.0.1.nip.io`)
/// or always to loopback.
const WILDCARD_DNS: &[&str] = &[
    "nip.io",
    "sslip.io",
    "xip.io",
    "nip.direct",
    "localtest.me",
    "lvh.me",
    "vcap.me",
    "lacolhost.com",
    "traefik.me",
    "local.gd",
    "localho.st",
    "fuf.me",
];

fn host_only(host: &str) -> &str {
    // `[::1]:8080` → `[::1]`, `localhost:8080` → `localhost`.
    if let Some(end) = host.find(']') {
        return &host[..=end];
    }
    host.rsplit_once(':')
        .map_or(host, |(name, port)| if port.chars().all(|c| c.is_ascii_digit()) { name } else { host })
}

fn is_loopback_name(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    matches!(host.as_str(), "localhost" | "127.0.0.1" | "[::1]" | "::1")
}

impl AppState {
    /// The names `/__admin` answers to: loopback names, the bound address, the public URL's
    /// host, and `--allow-host` names.
    fn names_the_mock(&self, host: &str) -> bool {
        let name = host_only(host).trim_end_matches('.').to_ascii_lowercase();
        if is_loopback_name(&name) {
            return true;
        }
        let access = &self.options().access;
        if let Some(bound) = self.bound() {
            let ip = match bound.ip() {
                IpAddr::V6(v6) => format!("[{v6}]"),
                IpAddr::V4(v4) => v4.to_string(),
            };
            if name == ip {
                return true;
            }
        }
        if access.public_url.as_ref().and_then(Url::host_str).is_some_and(|h| h.eq_ignore_ascii_case(&name)) {
            return true;
        }
        access.allow_hosts.iter().any(|h| h.trim_end_matches('.').eq_ignore_ascii_case(&name))
    }

    /// The checks every `/__admin` request passes before its handler: the `Host` names the mock
    /// (403), the admin token when one is set and the endpoint is `token_guarded` (401), a
    /// state-changing request with a body is JSON (415), and one without a body does not come
    /// from a web page on another origin (403).
    pub fn admin_gate(&self, parts: &Parts, token_guarded: bool) -> Result<(), ApiError> {
        if let Some(host) = parts.headers.get(header::HOST) {
            let host = host.to_str().unwrap_or_default();
            if !self.names_the_mock(host) {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "Forbidden: /__admin answers only requests addressed to the mock",
                    format!(
                        "/__admin answers only requests addressed to the mock itself (localhost, 127.0.0.1, [::1], its bound address, --public-url or --allow-host); this one was addressed to {host:?}, which is how a web page would reach it through DNS rebinding."
                    ),
                ));
            }
        }
        if let Some(expected) = self.options().access.admin_token.as_ref().filter(|_| token_guarded) {
            let given = parts
                .headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .unwrap_or_default();
            if !constant_time_eq(given.as_bytes(), expected.as_bytes()) {
                return Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "Unauthorized: /__admin needs the admin token",
                    "The mock runs with --admin-token: /__admin needs 'Authorization: Bearer <that token>'.",
                ));
            }
        }
        let changes_state = !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        if !changes_state {
            return Ok(());
        }
        let content_type = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
        let json = content_type
            .is_some_and(|v| v.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json")));
        let has_body = parts.headers.contains_key(header::TRANSFER_ENCODING)
            || parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).is_some_and(|v| v.trim() != "0");
        if !json && (content_type.is_some() || has_body) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Unsupported Media Type: send Content-Type: application/json",
                format!(
                    "{} {} changes the mock's state, so a body must be sent as 'Content-Type: application/json' (this one was {}): a web page cannot send that to another origin without asking first.",
                    parts.method,
                    parts.uri.path(),
                    content_type.map_or_else(|| "sent without a Content-Type".to_owned(), |t| format!("{t:?}"))
                ),
            ));
        }
        if !json && let Some(origin) = self.foreign_origin(parts) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "Forbidden: /__admin does not take commands from web pages on other origins",
                format!(
                    "{} {} came from a web page at {origin} without 'Content-Type: application/json'; send that header (a page on another origin cannot) or call the mock from its own origin.",
                    parts.method,
                    parts.uri.path()
                ),
            ));
        }
        Ok(())
    }

    /// The origin of a browser request sent from a page that is not the mock's own, if it is one.
    fn foreign_origin(&self, parts: &Parts) -> Option<String> {
        if let Some(origin) = parts.headers.get(header::ORIGIN) {
            let origin = origin.to_str().unwrap_or("an unreadable origin");
            let host = Url::parse(origin).ok().and_then(|u| {
                u.host_str().map(|h| match u.port() {
                    Some(p) => format!("{h}:{p}"),
                    None => h.to_owned(),
                })
            });
            return match host {
                Some(host) if self.names_the_mock(&host) => None,
                _ => Some(origin.to_owned()),
            };
        }
        let site = parts.headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())?;
        matches!(site, "cross-site" | "same-site").then(|| format!("a {site} page"))
    }

    /// Why the mock will not send webhooks to `url` (already of the schema's shape), if it
    /// will not.
    pub fn refused_destination(&self, url: &str) -> Option<String> {
        let parsed = Url::parse(url).ok()?;
        let host = parsed.host_str()?.trim_end_matches('.').to_ascii_lowercase();
        let port = parsed.port_or_known_default().unwrap_or(0);
        if is_loopback_name(&host) {
            if let Some(bound) = self.bound()
                && bound.port() == port
                && (bound.ip().is_loopback() || bound.ip().is_unspecified())
            {
                return Some(format!("is the mock itself ({host}:{port}): a webhook must not call the mock's own API"));
            }
            if port < 1024 {
                return Some(format!(
                    "is loopback port {port}: a local receiver must listen on a port above 1023 (the ports below are system services')"
                ));
            }
            return None;
        }
        if let Some(public) = self.options().access.public_url.as_ref().and_then(Url::host_str)
            && public.eq_ignore_ascii_case(&host)
        {
            return Some(format!("is the mock itself ({host}, its --public-url)"));
        }
        if let Some(suffix) = INTERNAL_SUFFIXES.iter().find(|s| host == **s || host.ends_with(&format!(".{s}"))) {
            return Some(format!(
                "is an internal or special-use name (.{suffix}): webhooks go to public hosts or to loopback"
            ));
        }
        if let Some(service) = WILDCARD_DNS.iter().find(|s| host == **s || host.ends_with(&format!(".{s}"))) {
            return Some(format!(
                "is under {service}, a wildcard DNS service whose names resolve to any address (private ones included)"
            ));
        }
        None
    }
}

/// Whether a delivery may connect to `addr`, resolved from `name`: never to a private,
/// link-local, shared or unspecified address, and to loopback only for `localhost`.
pub fn may_connect(name: &str, addr: &SocketAddr) -> bool {
    let ip = match addr.ip() {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    if ip.is_loopback() {
        return is_loopback_name(name);
    }
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || (a == 100 && (64..128).contains(&b))
                || a == 0
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            !(v6.is_unspecified() || (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80 || v6.is_multicast())
        }
    }
}

/// The resolver webhook deliveries use: the system's, with every address a delivery may not
/// connect to ([`may_connect`]) left out; a name left with none fails, naming why.
#[derive(Debug, Clone, Copy, Default)]
pub struct GuardedResolver;

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found.iter().copied().filter(|a| may_connect(&host, a)).collect();
            if allowed.is_empty() && !found.is_empty() {
                let shown: Vec<String> = found.iter().map(|a| a.ip().to_string()).collect();
                return Err(format!(
                    "{host} resolves to {}: webhooks are not sent to private, link-local or loopback addresses (except localhost)",
                    shown.join(", ")
                )
                .into());
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_header_is_compared_without_its_port() {
        assert_eq!(host_only("localhost:8080"), "localhost");
        assert_eq!(host_only("[::1]:8080"), "[::1]");
        assert_eq!(host_only("example.com"), "example.com");
    }

    #[test]
    fn deliveries_connect_to_public_addresses_and_to_loopback_only_for_localhost() {
        let at = |ip: &str| SocketAddr::new(ip.parse().expect("ip"), 443);
        assert!(may_connect("hooks.example.com", &at("93.184.216.34")));
        assert!(may_connect("localhost", &at("127.0.0.1")));
        assert!(!may_connect("127.0.0.1.nip.io", &at("127.0.0.1")), "a name that resolves to loopback");
        for private in [
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!may_connect("evil.example.com", &at(private)), "{private}");
        }
    }

    #[test]
    fn tokens_compare_in_constant_time_and_exactly() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret!"));
    }
}
