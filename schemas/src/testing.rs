//! Proptest strategies for the request schemas: valid values, and mutations that break exactly
//! one rule and say where.
//!
//! Valid strategies are hand-written (readable, and they produce realistic values); the
//! `every_generated_value_matches_its_schema` tests keep them honest. Mutations are derived from
//! the schema documents themselves, so a rule added to a schema file is mutated without any
//! change here.

use proptest::prelude::*;
use proptest::sample::subsequence;
use proptest::strategy::BoxedStrategy;
use serde_json::{Map, Value, json};

use crate::{SchemaId, event_types_v1};

/// A request body that breaks its schema at `pointer` by `rule`.
#[derive(Debug, Clone)]
pub struct Mutated {
    /// The broken body.
    pub value: Value,
    /// Where it is broken.
    pub pointer: String,
    /// How: `required`, `type`, `minLength`, `maxLength`, `minItems`, `maxItems`, `enum`, `format`.
    pub rule: &'static str,
}

/// Destination URLs the server accepts: HTTPS on a public-looking domain, or loopback.
pub fn destination_url() -> impl Strategy<Value = String> {
    let https = ("[a-z]{1,12}", prop::sample::select(vec!["com", "example", "io", "net"]), "[a-z0-9/_-]{0,24}")
        .prop_map(|(host, tld, path)| format!("https://{host}.hooks.{tld}/{path}"));
    let loopback = (prop::sample::select(vec!["127.0.0.1", "localhost"]), 1024u16.., "[a-z0-9/_-]{0,16}")
        .prop_map(|(host, port, path)| format!("http://{host}:{port}/{path}"));
    prop_oneof![3 => https, 1 => loopback]
}

fn text(min: usize, max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[A-Za-z0-9 _.-]{{{min},{max}}}"))
        .unwrap_or_else(|e| panic!("bad regex: {e}"))
}

fn event_types() -> impl Strategy<Value = Vec<String>> {
    let names: Vec<String> = event_types_v1().to_vec();
    let len = names.len();
    subsequence(names, 1..=len)
}

/// Bodies of `POST /v1/subscriptions` that the schema and the server accept.
pub fn subscription_create() -> impl Strategy<Value = Value> {
    (
        text(4, 64),
        proptest::option::of(text(0, 80)),
        event_types(),
        destination_url(),
        proptest::option::of(text(32, 256)),
    )
        .prop_map(|(name, description, types, url, secret)| {
            let mut body = json!({ "name": name, "eventTypes": types, "destinationUrl": url });
            insert_some(&mut body, "description", description);
            insert_some(&mut body, "secret", secret);
            body
        })
}

/// Bodies of `PATCH /v1/subscriptions/{id}` (every field optional, never `name`).
pub fn subscription_update() -> impl Strategy<Value = Value> {
    (
        proptest::option::of(text(0, 80)),
        proptest::option::of(event_types()),
        proptest::option::of(destination_url()),
        proptest::option::of(prop::sample::select(vec!["active", "inactive"])),
        proptest::option::of(text(32, 256)),
    )
        .prop_map(|(description, types, url, status, secret)| {
            let mut body = json!({});
            insert_some(&mut body, "description", description);
            insert_some(&mut body, "eventTypes", types);
            insert_some(&mut body, "destinationUrl", url);
            insert_some(&mut body, "status", status);
            insert_some(&mut body, "secret", secret);
            body
        })
}

/// Bodies of `POST /v1/agents/login` for a team (schema-valid; whether the login succeeds is the
/// state machine's business).
pub fn agent_login(team_id: String) -> impl Strategy<Value = Value> {
    (
        "[0-9]{4,10}",
        prop::sample::select(vec![json!(["agent"]), json!(["agent", "supervisor"])]),
        any::<bool>(),
        prop::sample::select(vec!["AGENT_DN", "EXTENSION", "BROWSER"]),
    )
        .prop_map(move |(dial, roles, is_ext, device)| {
            json!({
                "dialNumber": dial, "teamId": team_id, "roles": roles,
                "isExtension": is_ext, "deviceType": device,
            })
        })
}

/// Bodies of `PUT /v1/agents/session/state` with one of the given idle codes.
pub fn agent_state_change(idle_codes: Vec<String>) -> impl Strategy<Value = Value> {
    let idle = prop::sample::select(idle_codes).prop_map(|code| json!({ "state": "Idle", "auxCodeId": code }));
    let available = Just(json!({ "state": "Available", "auxCodeId": "0" }));
    (prop_oneof![idle, available], proptest::option::of(text(0, 40))).prop_map(|(mut body, reason)| {
        insert_some(&mut body, "lastStateChangeReason", reason);
        body
    })
}

/// Bodies of `PUT|POST /v1/agents/logout`.
pub fn agent_logout() -> impl Strategy<Value = Value> {
    text(0, 128).prop_map(|reason| json!({ "logoutReason": reason }))
}

/// Bodies of `POST /v2/subscriptions`: a resource version and only event types it offers.
pub fn subscription_v2_create() -> impl Strategy<Value = Value> {
    let versions: Vec<(String, Vec<String>)> = crate::resource_versions().to_vec();
    (prop::sample::select(versions), subscription_create()).prop_flat_map(|((version, offered), base)| {
        let len = offered.len();
        subsequence(offered, 1..=len).prop_map(move |types| {
            let mut body = base.clone();
            body["eventTypes"] = json!(types);
            body["resourceVersion"] = json!(version);
            body
        })
    })
}

/// Bodies of `PATCH /v2/subscriptions/{id}`: the resource version, and event types it offers.
pub fn subscription_v2_update() -> impl Strategy<Value = Value> {
    (subscription_v2_create(), subscription_update()).prop_map(|(create, mut update)| {
        update["resourceVersion"] = create["resourceVersion"].clone();
        if update.get("eventTypes").is_some() {
            update["eventTypes"] = create["eventTypes"].clone();
        }
        update
    })
}

/// Bodies of `POST /v1/agents/buddyList`.
pub fn buddy_list() -> impl Strategy<Value = Value> {
    (
        "[a-f0-9-]{1,36}",
        prop::sample::select(vec!["telephony", "chat", "social", "email", "workItem"]),
        proptest::option::of(prop::sample::select(vec!["Available", "Idle"])),
    )
        .prop_map(|(profile, media, state)| {
            let mut body = json!({ "agentProfileId": profile, "mediaType": media });
            insert_some(&mut body, "state", state);
            body
        })
}

/// Bodies of `POST /v1/notification/subscribe`.
pub fn notification_subscribe() -> impl Strategy<Value = Value> {
    (
        proptest::option::of("[A-Za-z0-9._~]{1,20}"),
        proptest::option::of(any::<bool>()),
        any::<bool>(),
        proptest::option::of(any::<bool>()),
    )
        .prop_map(|(client_type, keepalive, multi, force)| {
            let mut body = json!({});
            insert_some(&mut body, "isKeepAliveEnabled", keepalive);
            insert_some(&mut body, "force", force);
            if let Some(client_type) = client_type {
                insert_some(&mut body, "clientType", Some(client_type));
                insert_some(&mut body, "allowMultiLogin", Some(multi));
            }
            body
        })
}

/// Bodies of `POST /__admin/tokens` (for any of `emails`).
pub fn admin_token(emails: Vec<String>) -> impl Strategy<Value = Value> {
    let scopes = vec!["cjp:config", "cjp:config_read", "cjp:config_write", "cjp:user", "spark:people_read"];
    (prop::sample::select(emails), subsequence(scopes.clone(), 0..=scopes.len()), proptest::option::of(-60i64..86_400))
        .prop_map(|(email, scopes, ttl)| {
            let mut body = json!({ "email": email, "scopes": scopes });
            insert_some(&mut body, "ttlSeconds", ttl);
            body
        })
}

/// A strategy of valid bodies for every request schema; `None` for schemas that are not requests.
/// Agent bodies use placeholder team and idle-code ids: schema-valid, not world-valid.
pub fn valid(schema: SchemaId) -> Option<BoxedStrategy<Value>> {
    Some(match schema {
        SchemaId::SubscriptionCreateRequest => subscription_create().boxed(),
        SchemaId::SubscriptionUpdateRequest => subscription_update().boxed(),
        SchemaId::SubscriptionV2CreateRequest => subscription_v2_create().boxed(),
        SchemaId::SubscriptionV2UpdateRequest => subscription_v2_update().boxed(),
        SchemaId::AgentLoginRequest => agent_login("team-1".into()).boxed(),
        SchemaId::AgentLogoutRequest => agent_logout().boxed(),
        SchemaId::AgentStateChangeRequest => agent_state_change(vec!["idle-1".into()]).boxed(),
        SchemaId::AgentReloadRequest => Just(json!({})).boxed(),
        SchemaId::BuddyListRequest => buddy_list().boxed(),
        SchemaId::NotificationSubscribeRequest => notification_subscribe().boxed(),
        SchemaId::AdminTokenRequest => admin_token(vec!["agent1@wxcc.example".into()]).boxed(),
        _ => return None,
    })
}

/// Every request schema.
pub const REQUEST_SCHEMAS: &[SchemaId] = &[
    SchemaId::SubscriptionCreateRequest,
    SchemaId::SubscriptionUpdateRequest,
    SchemaId::SubscriptionV2CreateRequest,
    SchemaId::SubscriptionV2UpdateRequest,
    SchemaId::AgentLoginRequest,
    SchemaId::AgentLogoutRequest,
    SchemaId::AgentStateChangeRequest,
    SchemaId::AgentReloadRequest,
    SchemaId::BuddyListRequest,
    SchemaId::NotificationSubscribeRequest,
    SchemaId::AdminTokenRequest,
];

/// One mutation of a valid body of `schema` (valid value and choice drawn by proptest).
pub fn mutated(schema: SchemaId) -> Option<BoxedStrategy<Mutated>> {
    let valid = valid(schema)?;
    Some(
        (valid, any::<prop::sample::Index>())
            .prop_filter_map("no mutation applies", move |(body, pick)| {
                let all = mutations(schema, &body);
                (!all.is_empty()).then(|| all[pick.index(all.len())].clone())
            })
            .boxed(),
    )
}

fn insert_some<T: Into<Value>>(body: &mut Value, key: &str, value: Option<T>) {
    if let (Some(v), Some(obj)) = (value, body.as_object_mut()) {
        obj.insert(key.to_owned(), v.into());
    }
}

/// Every single-rule mutation of `valid` that `schema`'s top-level properties allow.
///
/// Each mutation changes one property (or removes a required one); the caller can pick one with
/// `prop::sample::select`. `valid` must be valid against `schema`.
pub fn mutations(schema: SchemaId, valid: &Value) -> Vec<Mutated> {
    let doc = schema.document();
    let mut out = Vec::new();
    let Some(body) = valid.as_object() else {
        return out;
    };
    let required: Vec<&str> =
        doc["required"].as_array().map(|r| r.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
    for name in &required {
        let mut value = body.clone();
        if value.remove(*name).is_some() {
            out.push(Mutated { value: Value::Object(value), pointer: format!("/{name}"), rule: "required" });
        }
    }
    let Some(properties) = doc["properties"].as_object() else {
        return out;
    };
    for (name, prop_schema) in properties {
        let prop_schema = resolve(prop_schema);
        for (rule, replacement) in breakers(prop_schema) {
            let mut value: Map<String, Value> = body.clone();
            value.insert(name.clone(), replacement);
            out.push(Mutated { value: Value::Object(value), pointer: format!("/{name}"), rule });
        }
    }
    out
}

/// Follows `$ref`s into `common.json` (the only file our schemas refer to).
fn resolve(schema: &Value) -> &Value {
    let mut current = schema;
    for _ in 0..8 {
        let Some(reference) = current.get("$ref").and_then(Value::as_str) else {
            break;
        };
        let Some((_, fragment)) = reference.split_once('#') else {
            break;
        };
        match SchemaId::Common.document().pointer(fragment) {
            Some(target) => current = target,
            None => break,
        }
    }
    current
}

/// Values that break one rule of a property schema.
fn breakers(schema: &Value) -> Vec<(&'static str, Value)> {
    let mut out = Vec::new();
    if schema == &Value::Bool(false) {
        out.push(("false", json!("anything")));
        return out;
    }
    let kind = schema.get("type").and_then(Value::as_str);
    match kind {
        Some("string") | Some("array") | Some("object") | Some("integer") | Some("boolean") => {
            let wrong = if kind == Some("string") { json!(42) } else { json!("not-the-right-type") };
            out.push(("type", wrong));
        }
        _ if schema.get("enum").is_some() => out.push(("enum", json!("not-an-allowed-value"))),
        _ => {}
    }
    let limit = |key: &str| schema.get(key).and_then(Value::as_u64).and_then(|n| usize::try_from(n).ok());
    if let Some(min) = limit("minLength").filter(|m| *m > 0) {
        out.push(("minLength", json!("x".repeat(min - 1))));
    }
    if let Some(max) = limit("maxLength") {
        out.push(("maxLength", json!("x".repeat(max + 1))));
    }
    if schema.get("format").and_then(Value::as_str).is_some() && kind == Some("string") {
        out.push(("format", json!("not a valid value at all")));
    }
    if kind == Some("array") {
        let item = sample_item(resolve(schema.get("items").unwrap_or(&Value::Null)));
        if let Some(min) = limit("minItems").filter(|m| *m > 0) {
            out.push(("minItems", Value::Array(vec![item.clone(); min - 1])));
        }
        if let Some(max) = limit("maxItems") {
            out.push(("maxItems", Value::Array(vec![item.clone(); max + 1])));
        }
        if resolve(schema.get("items").unwrap_or(&Value::Null)).get("enum").is_some() {
            out.push(("enum", json!(["not-an-allowed-value"])));
        }
    }
    out
}

fn sample_item(item_schema: &Value) -> Value {
    item_schema.get("enum").and_then(|e| e.as_array()).and_then(|e| e.first()).cloned().unwrap_or_else(|| json!("item"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

    fn runner(seed: u64) -> TestRunner {
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&seed.to_le_bytes());
        TestRunner::new_with_rng(Config::default(), TestRng::from_seed(RngAlgorithm::ChaCha, &bytes))
    }

    proptest! {
        #[test]
        fn every_generated_value_matches_its_schema(seed in any::<u64>()) {
            let mut runner = runner(seed);
            for schema in REQUEST_SCHEMAS {
                let strategy = valid(*schema).expect("a strategy for every request schema");
                let value = strategy.new_tree(&mut runner).expect("value").current();
                prop_assert_eq!(validate(*schema, &value), Ok(()), "{}: {}", schema, value);
            }
        }

        #[test]
        fn every_mutation_breaks_its_schema_where_it_says(seed in any::<u64>()) {
            let mut runner = runner(seed);
            for schema in REQUEST_SCHEMAS {
                let body = valid(*schema).expect("strategy").new_tree(&mut runner).expect("value").current();
                for m in mutations(*schema, &body) {
                    let violations = validate(*schema, &m.value).expect_err("a mutation must be invalid");
                    prop_assert!(
                        violations.iter().any(|v| v.pointer.starts_with(&m.pointer)),
                        "{}: {} by {}: {:?}", schema, m.pointer, m.rule, violations
                    );
                }
            }
        }
    }

    #[test]
    fn every_kind_of_mutation_is_produced() {
        let body = json!({"name": "aaaa", "eventTypes": ["agent:login"], "destinationUrl": "https://x.example/", "secret": "s".repeat(40)});
        let rules: std::collections::BTreeSet<&str> =
            mutations(SchemaId::SubscriptionCreateRequest, &body).iter().map(|m| m.rule).collect();
        for rule in ["required", "type", "minLength", "maxLength", "minItems", "maxItems", "enum", "format"] {
            assert!(rules.contains(rule), "no {rule} mutation: {rules:?}");
        }
    }

    #[test]
    fn the_update_schema_forbids_renaming() {
        let all = mutations(SchemaId::SubscriptionUpdateRequest, &json!({}));
        assert!(all.iter().any(|m| m.pointer == "/name" && m.rule == "false"));
    }
}
