//! The OpenAPI 3.1 description of everything the mock serves, assembled from the endpoint table
//! ([`crate::routes`]), the requirement table in [`crate::auth`] and the schema files (JSON
//! Schema 2020-12 is OpenAPI 3.1's dialect, so they go in as they are, with their `$ref`s pointed
//! at `#/components/schemas`). It is committed as `schemas/openapi.json` (a test keeps it up to
//! date) and served at `GET /openapi.json`.

use serde_json::{Map, Value, json};
use wxcc_schemas::SchemaId;

use crate::auth::{Operation, Rule};
use crate::endpoint::Endpoint;
use crate::http::Service;

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

/// The component a `$ref` in `owner`'s schema points at: another file's whole schema
/// (`admin-fault-request.json`), one of `owner`'s own `$defs` (`#/$defs/step`, hoisted as
/// `Owner_step`), or a `common.json` definition (hoisted under its own name).
fn component_of(reference: &str, owner: &str) -> String {
    if let Some(def) = reference.strip_prefix("#/$defs/") {
        // common.json's definitions are components of their own name.
        return if owner.is_empty() { def.to_owned() } else { format!("{owner}_{def}") };
    }
    if let Some(file) = reference.strip_suffix(".json")
        && let Some(id) = SchemaId::ALL.iter().find(|id| id.name() == file)
    {
        return component_name(*id);
    }
    reference.rsplit('/').next().unwrap_or_default().to_owned()
}

/// Points `$ref`s at components and drops `$id`/`$schema` (and `$defs`, hoisted apart).
fn rewrite(value: &Value, owner: &str) -> Value {
    match value {
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("$id" | "$schema" | "$defs", _) => {}
                    ("$ref", Value::String(r)) => {
                        out.insert(k.clone(), json!(format!("#/components/schemas/{}", component_of(r, owner))));
                    }
                    _ => {
                        out.insert(k.clone(), rewrite(v, owner));
                    }
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| rewrite(v, owner)).collect()),
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
        Rule::EitherScope => format!("Requires the scope `{}` or `{}`.", req.scope, req.alt_scope),
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
    if status == 429 {
        // No body (facts §2.4), and when to try again.
        response["description"] = json!("Too Many Requests: the client id sent more than --rate-limit allows; no body");
        response["headers"]["Retry-After"] =
            json!({ "description": "Whole seconds to wait.", "schema": { "type": "integer", "minimum": 1 } });
        return response;
    }
    let schema = service.error_schema().map_or_else(|| json!({ "$ref": "#/components/schemas/AdminError" }), reference);
    response["content"] = json!({ "application/json": { "schema": schema } });
    response
}

fn operation(endpoint: &Endpoint) -> Value {
    let service = endpoint.service();
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
    for param in endpoint.query {
        let schema: Value = serde_json::from_str(param.schema).unwrap_or_else(|_| json!({}));
        parameters.push(json!({
            "name": param.name, "in": "query", "required": param.required,
            "description": param.description, "schema": schema,
        }));
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
    let body_schema = match (endpoint.response, endpoint.success, endpoint.media_type) {
        (Some(id), _, _) => Some(reference(id)),
        (None, _, "text/html") => {
            Some(json!({ "type": "string", "description": "The page (HTML, its script and style inline)." }))
        }
        (None, _, "text/event-stream") => Some(json!({
            "description": "One Server-Sent Event: `id` is the entry's seq, `event` its kind, `data` the journal entry as JSON.",
            "type": "object",
            "required": ["id", "event", "data"],
            "properties": {
                "id": { "type": "string", "pattern": "^[0-9]+$" },
                "event": { "enum": ["http", "ws", "webhook", "event"] },
                "data": {
                    "type": "string",
                    "contentMediaType": "application/json",
                    "contentSchema": {
                        "type": "object",
                        "required": ["seq", "at", "kind"],
                        "properties": {
                            "seq": { "type": "integer", "minimum": 1 },
                            "at": { "type": "integer" },
                            "kind": { "enum": ["http", "ws", "webhook", "event"] },
                        },
                    },
                },
            },
        })),
        (None, 200 | 201, _) => Some(json!({ "type": "object" })),
        _ => None,
    };
    if let Some(schema) = body_schema {
        let mut content = Map::new();
        content.insert(endpoint.media_type.to_owned(), json!({ "schema": schema }));
        success["content"] = Value::Object(content);
    }
    responses.insert(endpoint.success.to_string(), success);
    for status in endpoint.error_statuses() {
        responses.insert(status.to_string(), error_response(service, status));
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
    if let Some(spec) = endpoint.request {
        op["requestBody"] = json!({
            "required": spec.required,
            "content": { "application/json": { "schema": reference(spec.schema) } },
        });
    }
    op
}

/// The document for `endpoints`.
pub fn build(endpoints: &[Endpoint]) -> Value {
    let mut schemas = Map::new();
    for id in SchemaId::ALL {
        // A world file is read from disk, not sent over the wire: not part of the API.
        if *id == SchemaId::World {
            continue;
        }
        let owner = component_name(*id);
        let defs = id.document()["$defs"].as_object().into_iter().flatten();
        if *id == SchemaId::Common {
            for (name, def) in defs {
                schemas.insert(name.clone(), rewrite(def, ""));
            }
        } else {
            for (name, def) in defs {
                schemas.insert(format!("{owner}_{name}"), rewrite(def, &owner));
            }
            schemas.insert(owner.clone(), rewrite(id.document(), &owner));
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
    for endpoint in endpoints {
        let item = paths.entry(endpoint.path.to_owned()).or_insert_with(|| json!({}));
        item[endpoint.method.as_str().to_ascii_lowercase()] = operation(endpoint);
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
