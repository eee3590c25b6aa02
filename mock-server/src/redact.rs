//! Secrets never leave the mock: subscription secrets and tokens are replaced by `[redacted]`
//! wherever a body or a header is shown (journal, violations, logs, admin views).

use std::borrow::Cow;

use serde_json::Value;

/// What a redacted value is replaced with.
pub const REDACTED: &str = "[redacted]";

/// JSON keys whose values are secrets, compared case-insensitively.
const SECRET_KEYS: &[&str] =
    &["secret", "accesstoken", "access_token", "refreshtoken", "refresh_token", "token", "password", "authorization"];

fn is_secret_key(key: &str) -> bool {
    SECRET_KEYS.iter().any(|k| key.eq_ignore_ascii_case(k))
}

/// Replaces the value of every secret key, at any depth.
pub fn redact_value(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if is_secret_key(key) && !v.is_null() {
                    *v = Value::String(REDACTED.to_owned());
                } else {
                    redact_value(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_value),
        _ => {}
    }
}

fn mentions_a_secret_key(bytes: &[u8]) -> bool {
    let lower = |b: &u8| b.to_ascii_lowercase();
    let text: Vec<u8> = bytes.iter().map(lower).collect();
    ["secret", "token", "password", "authorization"].iter().any(|k| text.windows(k.len()).any(|w| w == k.as_bytes()))
}

/// A body with every secret value replaced. JSON bodies are redacted field by field (only when
/// they mention a secret key at all, so most bodies are not parsed); a body that mentions one but
/// is not JSON is withheld entirely.
pub fn redact_body(bytes: &[u8]) -> Cow<'_, [u8]> {
    if !mentions_a_secret_key(bytes) {
        return Cow::Borrowed(bytes);
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(mut value) => {
            redact_value(&mut value);
            Cow::Owned(serde_json::to_vec(&value).unwrap_or_default())
        }
        Err(_) => {
            Cow::Owned(format!("[withheld: {} bytes that mention a secret and are not JSON]", bytes.len()).into_bytes())
        }
    }
}

/// Whether a header carries a credential: its value is never shown. `Authorization` is shown
/// separately, as its token's owner and a prefix. Every exchange's headers come this way: the
/// standard names most of them have are known without reading them.
pub fn is_secret_header(name: &axum::http::HeaderName) -> bool {
    !PLAIN_HEADERS.contains(name) && secret_name(name.as_str())
}

/// Headers most exchanges have, none of them a credential: standard ones, and the TrackingID
/// on every answer.
const PLAIN_HEADERS: [axum::http::HeaderName; 8] = [
    axum::http::HeaderName::from_static("trackingid"),
    axum::http::header::HOST,
    axum::http::header::CONTENT_TYPE,
    axum::http::header::CONTENT_LENGTH,
    axum::http::header::ACCEPT,
    axum::http::header::USER_AGENT,
    axum::http::header::ACCEPT_ENCODING,
    axum::http::header::CONNECTION,
];

/// Whether a header name (lower-cased, as `http` keeps it) names a credential.
fn secret_name(name: &str) -> bool {
    // Every request and response has several headers: one pass over the name, each place tried
    // only against the words that start with its byte (`str::contains` sets up a searcher for
    // each word, several times the cost on names this short).
    let name = name.as_bytes();
    matches!(name, b"authorization" | b"proxy-authorization" | b"cookie" | b"set-cookie")
        || (0..name.len()).any(|i| {
            let rest = &name[i..];
            match rest[0] {
                b't' => rest.starts_with(b"token"),
                b's' => rest.starts_with(b"secret") || rest.starts_with(b"session"),
                b'p' => rest.starts_with(b"password"),
                b'a' => rest.starts_with(b"api-key") || rest.starts_with(b"apikey"),
                b'c' => rest.starts_with(b"credential"),
                _ => false,
            }
        })
}

/// A path and query with the value of every secret-named query parameter (`?access_token=…`,
/// `?secret=…`) replaced; most paths have none and are borrowed.
pub fn redact_uri(uri: &str) -> Cow<'_, str> {
    // Every journaled request comes this way, most without a query: found with a byte scan
    // (`split_once('?')` sets up a searcher, several times the cost on a path this short).
    let Some(at) = uri.bytes().position(|b| b == b'?') else {
        return Cow::Borrowed(uri);
    };
    let (path, query) = (&uri[..at], &uri[at + 1..]);
    let secret = |pair: &str| {
        let name = pair.split('=').next().unwrap_or_default();
        let name = percent_decode(name);
        is_secret_key(&name) || mentions_a_secret_key(name.as_bytes())
    };
    if !query.split('&').any(secret) {
        return Cow::Borrowed(uri);
    }
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if secret(pair) => format!("{name}={REDACTED}"),
            _ => pair.to_owned(),
        })
        .collect();
    Cow::Owned(format!("{path}?{}", query.join("&")))
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// How a bearer token is shown: its owner and a short prefix, never the token.
pub fn token_hint(token: &str, owner: Option<&str>) -> String {
    let prefix: String = token.chars().take(6).collect();
    match owner {
        Some(owner) => format!("Bearer {prefix}… ({owner})"),
        None => format!("Bearer {prefix}… (unknown token)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_are_replaced_at_any_depth_and_other_bodies_pass_untouched() {
        let body = serde_json::to_vec(&json!({"name": "n", "secret": "s3cr3t-value", "x": [{"accessToken": "tok"}]}))
            .expect("json");
        let redacted = String::from_utf8(redact_body(&body).into_owned()).expect("utf-8");
        assert!(!redacted.contains("s3cr3t-value") && !redacted.contains("tok\""), "{redacted}");
        assert_eq!(redacted.matches(REDACTED).count(), 2);
        let plain = br#"{"state":"Available"}"#;
        assert!(matches!(redact_body(plain), Cow::Borrowed(_)));
        let broken = b"secret=abc";
        assert!(!String::from_utf8_lossy(&redact_body(broken)).contains("abc"));
    }

    #[test]
    fn secret_query_parameters_are_redacted_and_other_paths_are_borrowed() {
        let redacted = redact_uri("/v1/tasks?from=1&access%5Ftoken=abc123&SECRET=xyz&page=0");
        assert_eq!(redacted, format!("/v1/tasks?from=1&access%5Ftoken={REDACTED}&SECRET={REDACTED}&page=0"));
        assert!(matches!(redact_uri("/v1/tasks?from=1&page=0"), Cow::Borrowed(_)));
        assert!(matches!(redact_uri("/v1/agents/session/state"), Cow::Borrowed(_)));
        let valueless = redact_uri("/x?token");
        assert_eq!(valueless, "/x?token");
    }

    #[test]
    fn credential_headers_are_recognised_by_name() {
        for name in [
            "cookie",
            "x-api-key",
            "x-auth-token",
            "x-webhook-secret",
            "proxy-authorization",
            "apikey",
            "x-session-id",
            "x-db-password",
            "x-credentials",
            "token",
        ] {
            assert!(is_secret_header(&axum::http::HeaderName::from_static(name)), "{name}");
        }
        for name in [
            "content-type",
            "trackingid",
            "x-webex-signature",
            "user-agent",
            "accept",
            "x-tok",
            "sec-fetch-mode",
            "api",
        ] {
            assert!(!is_secret_header(&axum::http::HeaderName::from_static(name)), "{name}");
        }
        for plain in &PLAIN_HEADERS {
            assert!(!secret_name(plain.as_str()), "{plain} is read without the scan, which must agree");
        }
    }

    #[test]
    fn a_token_is_shown_as_its_owner_and_a_prefix() {
        let hint = token_hint("agent2_P0A1_14091636-52e9-4d11-bd49-53df3b39f246", Some("agent2@wxcc.example"));
        assert_eq!(hint, "Bearer agent2… (agent2@wxcc.example)");
    }
}
