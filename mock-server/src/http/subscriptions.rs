//! `/v1|v2/subscriptions` and `/v1|v2/event-types`: the NOTIFS service, errors in `ErrorResult`.
//! v1 and v2 are separate namespaces; `meta.subscriptionCount` counts both.

use axum::Json;
use axum::extract::Path;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use wxcc_schemas::{SchemaId, event_types_of, resource_versions};

use super::{ApiError, WxccRequest, check_same_org};
use crate::auth::{Identity, Operation};
use crate::subscriptions::{ApiVersion, NewSubscription, Status, Subscription, SubscriptionPatch, Write};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateBody {
    name: String,
    description: Option<String>,
    event_types: Vec<String>,
    destination_url: String,
    secret: Option<String>,
    org_id: Option<String>,
    resource_version: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateBody {
    description: Option<String>,
    event_types: Option<Vec<String>>,
    destination_url: Option<String>,
    status: Option<String>,
    secret: Option<String>,
    org_id: Option<String>,
    resource_version: Option<String>,
}

fn schemas(version: ApiVersion) -> (SchemaId, SchemaId) {
    match version {
        ApiVersion::V1 => (SchemaId::SubscriptionCreateRequest, SchemaId::SubscriptionUpdateRequest),
        ApiVersion::V2 => (SchemaId::SubscriptionV2CreateRequest, SchemaId::SubscriptionV2UpdateRequest),
    }
}

fn one(identity: &Identity, sub: &Subscription) -> Value {
    json!({ "meta": { "orgId": identity.org().id }, "data": sub.to_wire() })
}

fn not_found(identity: &Identity, version: ApiVersion, id: &str) -> ApiError {
    let (this, other) = match version {
        ApiVersion::V1 => ("v1", "/v2"),
        ApiVersion::V2 => ("v2", "/v1"),
    };
    ApiError::not_found(
        format!("Subscription {id} not found"),
        format!(
            "Organisation {} has no {this} subscription {id} (subscriptions of other organisations and of {other} are not visible here).",
            identity.org().id
        ),
    )
}

/// A PATCH that changes only the resource version must still fit the event types already stored
/// (the schema checks the body on its own; this is the one rule that needs the stored state): 409.
fn check_stored_event_types(resource_version: Option<&str>, stored: &[String]) -> Result<(), ApiError> {
    let Some(rv) = resource_version else {
        return Ok(());
    };
    let offered = event_types_of(rv).unwrap_or_default();
    match stored.iter().find(|t| !offered.contains(t)) {
        None => Ok(()),
        Some(kept) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "resourceVersion does not offer the subscription's event types",
            format!(
                "The subscription keeps event type {kept}, which resourceVersion {rv} does not offer (it offers {}). Send eventTypes with the new resourceVersion.",
                offered.join(", ")
            ),
        )),
    }
}

/// `POST /v1/subscriptions` → 201
pub async fn create_v1(request: WxccRequest) -> Result<(StatusCode, Json<Value>), ApiError> {
    create(request, ApiVersion::V1).await
}

/// `POST /v2/subscriptions` → 201
pub async fn create_v2(request: WxccRequest) -> Result<(StatusCode, Json<Value>), ApiError> {
    create(request, ApiVersion::V2).await
}

async fn create(request: WxccRequest, version: ApiVersion) -> Result<(StatusCode, Json<Value>), ApiError> {
    let identity = request.authorize(Operation::SubscriptionCreate)?;
    let state = request.state().clone();
    let body: CreateBody = request.json(schemas(version).0).await?;
    if let Some(org) = &body.org_id {
        check_same_org(&identity, org, "the body's orgId")?;
    }
    let write = Write { org_id: &identity.org().id, version, by: &identity.user().email, now: state.now_ms() };
    let new = NewSubscription {
        name: body.name,
        description: body.description,
        event_types: body.event_types,
        destination_url: body.destination_url,
        secret: body.secret,
        resource_version: body.resource_version,
    };
    let sub = state.with_subscriptions(|store| store.create(write, new));
    Ok((StatusCode::CREATED, Json(one(&identity, &sub))))
}

/// `GET /v1/subscriptions` → 200
pub async fn list_v1(request: WxccRequest) -> Result<Json<Value>, ApiError> {
    list(request, ApiVersion::V1)
}

/// `GET /v2/subscriptions` → 200
pub async fn list_v2(request: WxccRequest) -> Result<Json<Value>, ApiError> {
    list(request, ApiVersion::V2)
}

fn list(request: WxccRequest, version: ApiVersion) -> Result<Json<Value>, ApiError> {
    let identity = request.authorize(Operation::SubscriptionList)?;
    let org_id = &identity.org().id;
    let (subs, total) = request.state().with_subscriptions(|store| store.list(org_id, version));
    let data: Vec<Value> = subs.iter().map(Subscription::to_wire).collect();
    Ok(Json(json!({ "data": data, "meta": { "orgId": org_id, "subscriptionCount": total } })))
}

/// `GET /v1/subscriptions/{id}` → 200
pub async fn read_v1(Path(id): Path<String>, request: WxccRequest) -> Result<Json<Value>, ApiError> {
    read(&id, request, ApiVersion::V1)
}

/// `GET /v2/subscriptions/{id}` → 200
pub async fn read_v2(Path(id): Path<String>, request: WxccRequest) -> Result<Json<Value>, ApiError> {
    read(&id, request, ApiVersion::V2)
}

fn read(id: &str, request: WxccRequest, version: ApiVersion) -> Result<Json<Value>, ApiError> {
    let identity = request.authorize(Operation::SubscriptionGet)?;
    let org_id = &identity.org().id;
    let found = request.state().with_subscriptions(|store| store.get(org_id, version, id).cloned());
    let sub = found.ok_or_else(|| not_found(&identity, version, id))?;
    Ok(Json(one(&identity, &sub)))
}

/// `PATCH /v1/subscriptions/{id}` → 200
pub async fn update_v1(Path(id): Path<String>, request: WxccRequest) -> Result<Json<Value>, ApiError> {
    update(&id, request, ApiVersion::V1).await
}

/// `PATCH /v2/subscriptions/{id}` → 200
pub async fn update_v2(Path(id): Path<String>, request: WxccRequest) -> Result<Json<Value>, ApiError> {
    update(&id, request, ApiVersion::V2).await
}

async fn update(id: &str, request: WxccRequest, version: ApiVersion) -> Result<Json<Value>, ApiError> {
    let identity = request.authorize(Operation::SubscriptionUpdate)?;
    let state = request.state().clone();
    let body: UpdateBody = request.json(schemas(version).1).await?;
    if let Some(org) = &body.org_id {
        check_same_org(&identity, org, "the body's orgId")?;
    }
    let patch = SubscriptionPatch {
        description: body.description,
        event_types: body.event_types,
        destination_url: body.destination_url,
        status: body.status.as_deref().and_then(Status::parse),
        secret: body.secret,
        resource_version: body.resource_version,
    };
    let write = Write { org_id: &identity.org().id, version, by: &identity.user().email, now: state.now_ms() };
    // Check and apply under one lock, so the event types checked are the ones kept.
    let updated = state.with_subscriptions(|store| {
        let Some(current) = store.get(write.org_id, version, id) else {
            return Ok::<_, ApiError>(None);
        };
        if patch.event_types.is_none() {
            check_stored_event_types(patch.resource_version.as_deref(), &current.event_types)?;
        }
        Ok(store.update(write, id, patch))
    })?;
    let sub = updated.ok_or_else(|| not_found(&identity, version, id))?;
    Ok(Json(one(&identity, &sub)))
}

/// `DELETE /v1/subscriptions/{id}` → 204, no body
pub async fn delete_v1(Path(id): Path<String>, request: WxccRequest) -> Result<StatusCode, ApiError> {
    delete(&id, request, ApiVersion::V1)
}

/// `DELETE /v2/subscriptions/{id}` → 204, no body
pub async fn delete_v2(Path(id): Path<String>, request: WxccRequest) -> Result<StatusCode, ApiError> {
    delete(&id, request, ApiVersion::V2)
}

fn delete(id: &str, request: WxccRequest, version: ApiVersion) -> Result<StatusCode, ApiError> {
    let identity = request.authorize(Operation::SubscriptionDelete)?;
    let org_id = &identity.org().id;
    let deleted = request.state().with_subscriptions(|store| store.delete(org_id, version, id));
    if deleted { Ok(StatusCode::NO_CONTENT) } else { Err(not_found(&identity, version, id)) }
}

fn event_type_entry(name: &str) -> Value {
    let (resource, action) = name.split_once(':').unwrap_or((name, ""));
    json!({ "name": name, "resource": resource, "action": action })
}

/// `GET /v1/event-types` → 200
pub async fn event_types_v1(request: WxccRequest) -> Result<Json<Value>, ApiError> {
    let identity = request.authorize(Operation::EventTypesList)?;
    let data: Vec<Value> = wxcc_schemas::event_types_v1().iter().map(|n| event_type_entry(n)).collect();
    Ok(Json(json!({ "data": data, "meta": { "orgId": identity.org().id } })))
}

/// `GET /v2/event-types` → 200, with `meta.resourceVersionList`
pub async fn event_types_v2(request: WxccRequest) -> Result<Json<Value>, ApiError> {
    let identity = request.authorize(Operation::EventTypesList)?;
    let mut names: Vec<&str> = Vec::new();
    for (_, offered) in resource_versions() {
        for name in offered {
            if !names.contains(&name.as_str()) {
                names.push(name);
            }
        }
    }
    let data: Vec<Value> = names.iter().map(|n| event_type_entry(n)).collect();
    let versions: Vec<Value> = resource_versions()
        .iter()
        .map(|(rv, _)| {
            let (resource, version) = rv.split_once(':').unwrap_or((rv, ""));
            json!({ "resource": resource, "version": version })
        })
        .collect();
    Ok(Json(json!({ "data": data, "meta": { "orgId": identity.org().id, "resourceVersionList": versions } })))
}
