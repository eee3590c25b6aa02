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
    fn a_token_is_shown_as_its_owner_and_a_prefix() {
        let hint = token_hint("agent2_P0A1_14091636-52e9-4d11-bd49-53df3b39f246", Some("agent2@wxcc.example"));
        assert_eq!(hint, "Bearer agent2… (agent2@wxcc.example)");
    }
}
