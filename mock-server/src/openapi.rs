//! The OpenAPI 3.1 description of everything the mock serves, assembled from the endpoint table
//! below, the requirement table in [`crate::auth`] and the schema files (JSON Schema 2020-12 is
//! OpenAPI 3.1's dialect, so they go in as they are, with their `$ref`s pointed at
//! `#/components/schemas`). It is committed as `schemas/openapi.json` (a test keeps it up to
//! date) and served at `GET /openapi.json`.

use std::sync::LazyLock;

use serde_json::{Map, Value, json};
use wxcc_schemas::SchemaId;

use crate::auth::{Operation, Rule};
use crate::http::Service;

/// One operation the mock serves.
#[derive(Debug, Clone, Copy)]
pub struct Endpoint {
    /// HTTP method, upper case.
    pub method: &'static str,
    /// Path, with `{id}` parameters.
    pub path: &'static str,
    /// `operationId`.
    pub id: &'static str,
    /// One line.
    pub summary: &'static str,
    /// Its auth requirement (`None`: no token needed).
    pub operation: Option<Operation>,
    /// Request body schema, and whether the body is required.
    pub request: Option<(SchemaId, bool)>,
    /// Success status.
    pub success: u16,
    /// Success body schema (`None`: no body, or a free-form object for admin routes).
    pub response: Option<SchemaId>,
    /// Error statuses it can answer.
    pub errors: &'static [u16],
}

const AUTH: &[u16] = &[400, 401, 403, 405];
const AUTH_BODY: &[u16] = &[400, 401, 403, 405, 413, 415];
const AUTH_BODY_ID: &[u16] = &[400, 401, 403, 404, 405, 413, 415];
const AUTH_ID: &[u16] = &[400, 401, 403, 404, 405];
const CONFIG: &[u16] = &[400, 401, 403, 404, 405];

/// Every operation the mock implements.
pub const ENDPOINTS: &[Endpoint] = &[
    Endpoint {
        method: "POST",
        path: "/v1/agents/login",
        id: "agentLogin",
        summary: "Station login; the result arrives on the websocket (StationLogin)",
        operation: Some(Operation::AgentLogin),
        request: Some((SchemaId::AgentLoginRequest, true)),
        success: 202,
        response: None,
        errors: AUTH_BODY,
    },
    Endpoint {
        method: "PUT",
        path: "/v1/agents/logout",
        id: "agentLogout",
        summary: "Logout (the spec's method); the result arrives on the websocket (Logout)",
        operation: Some(Operation::AgentLogout),
        request: Some((SchemaId::AgentLogoutRequest, true)),
        success: 202,
        response: None,
        errors: AUTH_BODY,
    },
    Endpoint {
        method: "POST",
        path: "/v1/agents/logout",
        id: "agentLogoutPost",
        summary: "Logout (what Cisco's SDK and samples send); the result arrives on the websocket",
        operation: Some(Operation::AgentLogout),
        request: Some((SchemaId::AgentLogoutRequest, true)),
        success: 202,
        response: None,
        errors: AUTH_BODY,
    },
    Endpoint {
        method: "PUT",
        path: "/v1/agents/session/state",
        id: "agentStateChange",
        summary: "State change; the result arrives on the websocket (AgentStateChange)",
        operation: Some(Operation::AgentStateChange),
        request: Some((SchemaId::AgentStateChangeRequest, true)),
        success: 202,
        response: None,
        errors: AUTH_BODY,
    },
    Endpoint {
        method: "POST",
        path: "/v1/agents/reload",
        id: "agentReload",
        summary: "Reload; the result arrives on the websocket (AgentReloginSuccess/Failed)",
        operation: Some(Operation::AgentReload),
        request: Some((SchemaId::AgentReloadRequest, false)),
        success: 202,
        response: None,
        errors: AUTH_BODY,
    },
    Endpoint {
        method: "POST",
        path: "/v1/agents/buddyList",
        id: "agentBuddyList",
        summary: "Buddy agents; the list arrives on the websocket (BuddyAgents)",
        operation: Some(Operation::AgentBuddyList),
        request: Some((SchemaId::BuddyListRequest, true)),
        success: 202,
        response: None,
        errors: AUTH_BODY,
    },
    Endpoint {
        method: "POST",
        path: "/v1/notification/subscribe",
        id: "notificationSubscribe",
        summary: "Register for the agent's notification websocket",
        operation: Some(Operation::NotificationSubscribe),
        request: Some((SchemaId::NotificationSubscribeRequest, false)),
        success: 200,
        response: Some(SchemaId::NotificationSubscribeResponse),
        errors: &[400, 401, 403, 405, 409, 413, 415],
    },
    Endpoint {
        method: "GET",
        path: "/v1/notification/subscription/{id}",
        id: "notificationConnect",
        summary: "The websocket (upgrade); each subscription URL connects once",
        operation: None,
        request: None,
        success: 101,
        response: None,
        errors: &[400, 404, 405, 426],
    },
    Endpoint {
        method: "POST",
        path: "/v1/subscriptions",
        id: "createSubscription",
        summary: "Register a webhook subscription",
        operation: Some(Operation::SubscriptionCreate),
        request: Some((SchemaId::SubscriptionCreateRequest, true)),
        success: 201,
        response: Some(SchemaId::SubscriptionResponse),
        errors: AUTH_BODY,
    },
    Endpoint {
        method: "GET",
        path: "/v1/subscriptions",
        id: "listSubscriptions",
        summary: "List the organisation's v1 subscriptions",
        operation: Some(Operation::SubscriptionList),
        request: None,
        success: 200,
        response: Some(SchemaId::SubscriptionListResponse),
        errors: AUTH,
    },
    Endpoint {
        method: "GET",
        path: "/v1/subscriptions/{id}",
        id: "getSubscription",
        summary: "Read a v1 subscription",
        operation: Some(Operation::SubscriptionGet),
        request: None,
        success: 200,
        response: Some(SchemaId::SubscriptionResponse),
        errors: AUTH_ID,
    },
    Endpoint {
        method: "PATCH",
        path: "/v1/subscriptions/{id}",
        id: "updateSubscription",
        summary: "Update a v1 subscription (name cannot change)",
        operation: Some(Operation::SubscriptionUpdate),
        request: Some((SchemaId::SubscriptionUpdateRequest, true)),
        success: 200,
        response: Some(SchemaId::SubscriptionResponse),
        errors: AUTH_BODY_ID,
    },
    Endpoint {
        method: "DELETE",
        path: "/v1/subscriptions/{id}",
        id: "deleteSubscription",
        summary: "Delete a v1 subscription",
        operation: Some(Operation::SubscriptionDelete),
        request: None,
        success: 204,
        response: None,
        errors: AUTH_ID,
    },
    Endpoint {
        method: "GET",
        path: "/v1/event-types",
        id: "listEventTypes",
        summary: "The v1 event types",
        operation: Some(Operation::EventTypesList),
        request: None,
        success: 200,
        response: Some(SchemaId::EventTypesResponse),
        errors: AUTH,
    },
    Endpoint {
        method: "POST",
        path: "/v2/subscriptions",
        id: "createSubscriptionV2",
        summary: "Register a v2 webhook subscription (with resourceVersion)",
        operation: Some(Operation::SubscriptionCreate),
        request: Some((SchemaId::SubscriptionV2CreateRequest, true)),
        success: 201,
        response: Some(SchemaId::SubscriptionV2Response),
        errors: AUTH_BODY,
    },
    Endpoint {
        method: "GET",
        path: "/v2/subscriptions",
        id: "listSubscriptionsV2",
        summary: "List the organisation's v2 subscriptions",
        operation: Some(Operation::SubscriptionList),
        request: None,
        success: 200,
        response: Some(SchemaId::SubscriptionV2ListResponse),
        errors: AUTH,
    },
    Endpoint {
        method: "GET",
        path: "/v2/subscriptions/{id}",
        id: "getSubscriptionV2",
        summary: "Read a v2 subscription",
        operation: Some(Operation::SubscriptionGet),
        request: None,
        success: 200,
        response: Some(SchemaId::SubscriptionV2Response),
        errors: AUTH_ID,
    },
    Endpoint {
        method: "PATCH",
        path: "/v2/subscriptions/{id}",
        id: "updateSubscriptionV2",
        summary: "Update a v2 subscription (resourceVersion required)",
        operation: Some(Operation::SubscriptionUpdate),
        request: Some((SchemaId::SubscriptionV2UpdateRequest, true)),
        success: 200,
        response: Some(SchemaId::SubscriptionV2Response),
        errors: &[400, 401, 403, 404, 405, 409, 413, 415],
    },
    Endpoint {
        method: "DELETE",
        path: "/v2/subscriptions/{id}",
        id: "deleteSubscriptionV2",
        summary: "Delete a v2 subscription",
        operation: Some(Operation::SubscriptionDelete),
        request: None,
        success: 204,
        response: None,
        errors: AUTH_ID,
    },
    Endpoint {
        method: "GET",
        path: "/v2/event-types",
        id: "listEventTypesV2",
        summary: "The v2 event types and resource versions",
        operation: Some(Operation::EventTypesList),
        request: None,
        success: 200,
        response: Some(SchemaId::EventTypesV2Response),
        errors: AUTH,
    },
    Endpoint {
        method: "GET",
        path: "/organization/{orgId}",
        id: "getOrganization",
        summary: "The organisation (tenantId, timezone, environment)",
        operation: Some(Operation::ConfigRead),
        request: None,
        success: 200,
        response: Some(SchemaId::ConfigOrganization),
        errors: CONFIG,
    },
    Endpoint {
        method: "GET",
        path: "/organization/{orgId}/user/by-ci-user-id/{id}",
        id: "getUserByCiUserId",
        summary: "A user by CI user id (with cjp:user, only one's own)",
        operation: Some(Operation::ConfigRead),
        request: None,
        success: 200,
        response: Some(SchemaId::ConfigUser),
        errors: CONFIG,
    },
    Endpoint {
        method: "GET",
        path: "/organization/{orgId}/v2/organization-setting",
        id: "getOrganizationSetting",
        summary: "Organisation settings (data[0])",
        operation: Some(Operation::ConfigRead),
        request: None,
        success: 200,
        response: Some(SchemaId::ConfigOrganizationSettingList),
        errors: CONFIG,
    },
    Endpoint {
        method: "GET",
        path: "/organization/{orgId}/v2/tenant-configuration",
        id: "getTenantConfiguration",
        summary: "Tenant configuration (data[0])",
        operation: Some(Operation::ConfigRead),
        request: None,
        success: 200,
        response: Some(SchemaId::ConfigTenantConfigurationList),
        errors: CONFIG,
    },
    Endpoint {
        method: "GET",
        path: "/organization/{orgId}/v2/org-url-mapping",
        id: "getOrgUrlMapping",
        summary: "URL mappings (a data array)",
        operation: Some(Operation::ConfigRead),
        request: None,
        success: 200,
        response: Some(SchemaId::ConfigUrlMappingList),
        errors: CONFIG,
    },
    Endpoint {
        method: "GET",
        path: "/organization/{orgId}/v2/ai-feature",
        id: "getAiFeature",
        summary: "AI feature flags (paginated)",
        operation: Some(Operation::ConfigRead),
        request: None,
        success: 200,
        response: Some(SchemaId::ConfigAiFeaturePage),
        errors: CONFIG,
    },
    Endpoint {
        method: "GET",
        path: "/organization/{orgId}/v2/auxiliary-code",
        id: "listAuxiliaryCodes",
        summary: "Idle and wrap-up codes (paginated; filter=id=in=(..), attributes=)",
        operation: Some(Operation::ConfigRead),
        request: None,
        success: 200,
        response: Some(SchemaId::ConfigAuxiliaryCodePage),
        errors: CONFIG,
    },
    Endpoint {
        method: "GET",
        path: "/organization/{orgId}/agent-profile/{id}",
        id: "getAgentProfile",
        summary: "An agent (desktop) profile",
        operation: Some(Operation::ConfigRead),
        request: None,
        success: 200,
        response: Some(SchemaId::ConfigAgentProfile),
        errors: CONFIG,
    },
    Endpoint {
        method: "GET",
        path: "/organization/{orgId}/site/{id}",
        id: "getSite",
        summary: "A site",
        operation: Some(Operation::ConfigRead),
        request: None,
        success: 200,
        response: Some(SchemaId::ConfigSite),
        errors: CONFIG,
    },
    Endpoint {
        method: "GET",
        path: "/organization/{orgId}/v2/team",
        id: "listTeams",
        summary: "Teams (paginated; filter=id=in=(..))",
        operation: Some(Operation::ConfigRead),
        request: None,
        success: 200,
        response: Some(SchemaId::ConfigTeamPage),
        errors: CONFIG,
    },
    Endpoint {
        method: "GET",
        path: "/organization/{orgId}/dial-plan",
        id: "getDialPlans",
        summary: "Dial plans (a bare array)",
        operation: Some(Operation::ConfigRead),
        request: None,
        success: 200,
        response: Some(SchemaId::ConfigDialPlanList),
        errors: CONFIG,
    },
    Endpoint {
        method: "GET",
        path: "/openapi.json",
        id: "openapi",
        summary: "This document",
        operation: None,
        request: None,
        success: 200,
        response: None,
        errors: &[405],
    },
    Endpoint {
        method: "GET",
        path: "/__admin/health",
        id: "adminHealth",
        summary: "The mock's health (the mock's own API)",
        operation: None,
        request: None,
        success: 200,
        response: None,
        errors: &[405],
    },
    Endpoint {
        method: "POST",
        path: "/__admin/tokens",
        id: "adminMintToken",
        summary: "Mint a token for a world user (the mock's own API)",
        operation: None,
        request: Some((SchemaId::AdminTokenRequest, true)),
        success: 201,
        response: Some(SchemaId::AdminTokenResponse),
        errors: &[400, 404, 405, 413, 415],
    },
    Endpoint {
        method: "GET",
        path: "/__admin/state",
        id: "adminState",
        summary: "The world and the live state (the mock's own API)",
        operation: None,
        request: None,
        success: 200,
        response: None,
        errors: &[405],
    },
    Endpoint {
        method: "POST",
        path: "/__admin/reset",
        id: "adminReset",
        summary: "Back to the loaded world (the mock's own API)",
        operation: None,
        request: None,
        success: 200,
        response: None,
        errors: &[405],
    },
    Endpoint {
        method: "GET",
        path: "/__admin/deliveries",
        id: "adminDeliveries",
        summary: "Every webhook delivery attempt, newest first (the mock's own API)",
        operation: None,
        request: None,
        success: 200,
        response: None,
        errors: &[405],
    },
    Endpoint {
        method: "GET",
        path: "/__admin/journal",
        id: "adminJournal",
        summary: "The WxCC requests and answers, newest first (the mock's own API)",
        operation: None,
        request: None,
        success: 200,
        response: None,
        errors: &[400, 405],
    },
    Endpoint {
        method: "GET",
        path: "/__admin/violations",
        id: "adminViolations",
        summary: "Every request that broke its schema (the mock's own API)",
        operation: None,
        request: None,
        success: 200,
        response: None,
        errors: &[405],
    },
    Endpoint {
        method: "DELETE",
        path: "/__admin/violations",
        id: "adminClearViolations",
        summary: "Forget the recorded violations (the mock's own API)",
        operation: None,
        request: None,
        success: 204,
        response: None,
        errors: &[405],
    },
];

/// The document, built once.
pub fn document() -> &'static Value {
    static DOCUMENT: LazyLock<Value> = LazyLock::new(build);
    &DOCUMENT
}

/// The document as committed and served: pretty JSON with a trailing newline, built once.
pub fn document_text() -> &'static str {
    static TEXT: LazyLock<String> = LazyLock::new(|| {
        let mut text = serde_json::to_string_pretty(document()).unwrap_or_default();
        text.push('\n');
        text
    });
    &TEXT
}

/// `agent-login-request` → `AgentLoginRequest`.
fn component_name(id: SchemaId) -> String {
    id.name()
        .split('-')
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map(|c| c.to_ascii_uppercase()).into_iter().chain(chars).collect::<String>()
        })
        .collect()
}

fn reference(id: SchemaId) -> Value {
    json!({ "$ref": format!("#/components/schemas/{}", component_name(id)) })
}

/// Points `$ref`s at components and drops `$id`/`$schema`.
fn rewrite(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("$id" | "$schema", _) => {}
                    ("$ref", Value::String(r)) => {
                        let name = r.rsplit('/').next().unwrap_or_default();
                        out.insert(k.clone(), json!(format!("#/components/schemas/{name}")));
                    }
                    _ => {
                        out.insert(k.clone(), rewrite(v));
                    }
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(rewrite).collect()),
        other => other.clone(),
    }
}

fn requirement_text(op: Operation) -> String {
    let req = op.requirement();
    match req.rule {
        Rule::Scope => format!("Requires the scope `{}`.", req.scope),
        Rule::ScopeAndRole => {
            format!("Requires the scope `{}` **and** one of the roles {}.", req.scope, req.roles.join(", "))
        }
        Rule::ScopeOrRole => {
            format!("Requires the scope `{}` or one of the roles {}.", req.scope, req.roles.join(", "))
        }
        Rule::ScopeOrAgentView => {
            format!("Requires the scope `{}`, or `cjp:user` for an agent's view of its own configuration.", req.scope)
        }
    }
}

fn error_response(service: Service, status: u16) -> Value {
    let reason = axum::http::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("Error");
    let mut response = json!({
        "description": reason,
        "headers": {
            "TrackingID": { "$ref": "#/components/headers/TrackingID" },
            "X-Wxcc-Mock-Diagnostic": { "$ref": "#/components/headers/Diagnostic" },
        },
    });
    let schema = service.error_schema().map_or_else(|| json!({ "$ref": "#/components/schemas/AdminError" }), reference);
    response["content"] = json!({ "application/json": { "schema": schema } });
    response
}

fn operation(endpoint: &Endpoint) -> Value {
    let service = Service::for_path(endpoint.path);
    let mut description = endpoint.summary.to_owned();
    if let Some(op) = endpoint.operation {
        description.push_str(". ");
        description.push_str(&requirement_text(op));
    }
    let mut parameters = vec![json!({ "$ref": "#/components/parameters/TrackingId" })];
    for name in ["orgId", "id"] {
        if endpoint.path.contains(&format!("{{{name}}}")) {
            parameters.push(json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }));
        }
    }
    if endpoint.operation.is_some() && !endpoint.path.contains("{orgId}") {
        parameters.push(json!({ "$ref": "#/components/parameters/OrgId" }));
    }
    let mut responses = Map::new();
    let success_reason =
        axum::http::StatusCode::from_u16(endpoint.success).ok().and_then(|s| s.canonical_reason()).unwrap_or("Success");
    let mut success = json!({
        "description": success_reason,
        "headers": { "TrackingID": { "$ref": "#/components/headers/TrackingID" } },
    });
    let body_schema = match (endpoint.response, endpoint.success) {
        (Some(id), _) => Some(reference(id)),
        (None, 200 | 201) => Some(json!({ "type": "object" })),
        _ => None,
    };
    if let Some(schema) = body_schema {
        success["content"] = json!({ "application/json": { "schema": schema } });
    }
    responses.insert(endpoint.success.to_string(), success);
    for status in endpoint.errors {
        responses.insert(status.to_string(), error_response(service, *status));
    }
    let mut op = json!({
        "operationId": endpoint.id,
        "summary": endpoint.summary,
        "description": description,
        "parameters": parameters,
        "responses": responses,
    });
    if endpoint.operation.is_some() {
        op["security"] = json!([{ "bearer": [] }]);
    } else {
        op["security"] = json!([]);
    }
    if let Some((id, required)) = endpoint.request {
        op["requestBody"] = json!({
            "required": required,
            "content": { "application/json": { "schema": reference(id) } },
        });
    }
    op
}

fn build() -> Value {
    let mut schemas = Map::new();
    for id in SchemaId::ALL {
        if *id == SchemaId::Common {
            if let Some(defs) = id.document()["$defs"].as_object() {
                for (name, def) in defs {
                    schemas.insert(name.clone(), rewrite(def));
                }
            }
        } else {
            schemas.insert(component_name(*id), rewrite(id.document()));
        }
    }
    schemas.insert(
        "AdminError".into(),
        json!({
            "type": "object",
            "required": ["error", "trackingId"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["status", "message"],
                    "properties": { "status": { "type": "integer" }, "message": { "type": "string" } },
                },
                "trackingId": { "type": "string" },
            },
        }),
    );
    let mut paths: Map<String, Value> = Map::new();
    for endpoint in ENDPOINTS {
        let item = paths.entry(endpoint.path.to_owned()).or_insert_with(|| json!({}));
        item[endpoint.method.to_ascii_lowercase()] = operation(endpoint);
    }
    json!({
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {
            "title": "wxcc-mock: the Webex Contact Center API as the mock serves it",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Assembled from wxcc-mock's JSON Schemas and its endpoint and requirement tables. Every response carries a TrackingID header; every 4xx also carries X-Wxcc-Mock-Diagnostic, a sentence that says why. Paths under /__admin are the mock's own API.",
            "license": { "name": "MIT OR Apache-2.0", "identifier": "MIT OR Apache-2.0" },
        },
        "servers": [{ "url": "http://127.0.0.1:8080", "description": "wxcc-mock serve" }],
        "security": [{ "bearer": [] }],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A WxCC access token, <opaque>_<cluster>_<orgId>. A missing or malformed header is 400, an unknown or expired token 401, a missing scope or role 403.",
                },
            },
            "parameters": {
                "TrackingId": {
                    "name": "TrackingId", "in": "header", "required": false,
                    "description": "Echoed as the TrackingID response header; made as <SERVICE>_<uuid> when absent.",
                    "schema": { "type": "string" },
                },
                "OrgId": {
                    "name": "orgId", "in": "query", "required": false,
                    "description": "Must be the token's organisation (else 403).",
                    "schema": { "type": "string", "format": "uuid" },
                },
            },
            "headers": {
                "TrackingID": { "description": "The request's tracking id.", "required": true, "schema": { "type": "string", "minLength": 1 } },
                "Diagnostic": { "description": "Why the mock refused the request, in one sentence.", "schema": { "type": "string" } },
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMMITTED: &str = "../schemas/openapi.json";

    /// `UPDATE_OPENAPI=1 cargo test -p wxcc-mock openapi` rewrites the committed file.
    #[test]
    fn the_committed_openapi_json_is_up_to_date() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(COMMITTED);
        if std::env::var_os("UPDATE_OPENAPI").is_some() {
            std::fs::write(&path, document_text()).expect("write schemas/openapi.json");
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == document_text(),
            "schemas/openapi.json is out of date: run UPDATE_OPENAPI=1 cargo test -p wxcc-mock openapi and review the diff"
        );
    }

    fn refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    match (k.as_str(), v) {
                        ("$ref", Value::String(r)) => out.push(r),
                        _ => refs(v, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn every_reference_resolves_inside_the_document() {
        let doc = document();
        let mut all = Vec::new();
        refs(doc, &mut all);
        assert!(all.len() > 50);
        for r in all {
            let pointer = r.strip_prefix('#').expect("local reference");
            assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
        }
    }

    /// `(METHOD, path)` of every `.route(..)` in `source`, with `{param}` names blanked.
    fn routes_in(source: &str, prefix: &str) -> Vec<(String, String)> {
        let mut found = Vec::new();
        let mut rest = source;
        while let Some(start) = rest.find(".route(") {
            rest = &rest[start + ".route(".len()..];
            let mut depth = 1;
            let end = rest
                .char_indices()
                .find(|(_, c)| {
                    depth += match c {
                        '(' => 1,
                        ')' => -1,
                        _ => 0,
                    };
                    depth == 0
                })
                .map_or(rest.len(), |(i, _)| i);
            let call = &rest[..end];
            let path = call.split('"').nth(1).unwrap_or_default();
            for method in ["get", "post", "put", "patch", "delete"] {
                if call.contains(&format!("{method}(")) {
                    found.push((method.to_ascii_uppercase(), blank(&format!("{prefix}{path}"))));
                }
            }
        }
        found
    }

    fn blank(path: &str) -> String {
        path.split('/')
            .map(|segment| if segment.starts_with('{') { "{}" } else { segment })
            .collect::<Vec<_>>()
            .join("/")
    }

    #[test]
    fn every_route_is_described_and_every_description_is_routed() {
        let mut routed = routes_in(include_str!("http/mod.rs"), "");
        routed.extend(routes_in(include_str!("admin.rs"), "/__admin"));
        routed.sort();
        let mut described: Vec<(String, String)> =
            ENDPOINTS.iter().map(|e| (e.method.to_owned(), blank(e.path))).collect();
        described.sort();
        assert_eq!(routed, described);
    }

    #[test]
    fn every_operation_of_the_requirement_table_is_described() {
        for op in Operation::ALL {
            assert!(ENDPOINTS.iter().any(|e| e.operation == Some(*op)), "{op:?} has no endpoint");
        }
        let logout: Vec<&str> = ENDPOINTS.iter().filter(|e| e.path == "/v1/agents/logout").map(|e| e.method).collect();
        assert_eq!(logout, vec!["PUT", "POST"]);
        assert_eq!(document()["openapi"], "3.1.0");
    }
}
