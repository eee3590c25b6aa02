//! `/v1/subscriptions` and `/v1/event-types`: the NOTIFS service, errors in `ErrorResult`.

use axum::Json;
use axum::extract::Path;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use wxcc_schemas::SchemaId;

use super::{ApiError, WxccRequest, check_same_org};
use crate::auth::{Identity, Operation};
use crate::subscriptions::{
    ApiVersion, NewSubscription, Status, Subscription, SubscriptionPatch, Write,
    check_destination_url,
};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateBody {
    name: String,
    description: Option<String>,
    event_types: Vec<String>,
    destination_url: String,
    secret: Option<String>,
    org_id: Option<String>,
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
}

fn one(identity: &Identity, sub: &Subscription) -> Value {
    json!({ "meta": { "orgId": identity.org().id }, "data": sub.to_wire() })
}

fn not_found(identity: &Identity, id: &str) -> ApiError {
    ApiError::not_found(
        format!("Subscription {id} not found"),
        format!(
            "Organisation {} has no v1 subscription {id} (subscriptions of other organisations and of /v2 are not visible here).",
            identity.org().id
        ),
    )
}

fn check_url(url: &str) -> Result<(), ApiError> {
    check_destination_url(url)
        .map_err(|why| ApiError::bad_request(format!("/destinationUrl: {why}")))
}

/// `POST /v1/subscriptions` → 201
pub async fn create(request: WxccRequest) -> Result<(StatusCode, Json<Value>), ApiError> {
    let identity = request.authorize(Operation::SubscriptionCreate)?;
    let state = request.state().clone();
    let body: CreateBody = request.json(SchemaId::SubscriptionCreateRequest).await?;
    if let Some(org) = &body.org_id {
        check_same_org(&identity, org, "the body's orgId")?;
    }
    check_url(&body.destination_url)?;
    let write = Write {
        org_id: &identity.org().id,
        version: ApiVersion::V1,
        by: &identity.user().email,
        now: state.now_ms(),
    };
    let new = NewSubscription {
        name: body.name,
        description: body.description,
        event_types: body.event_types,
        destination_url: body.destination_url,
        secret: body.secret,
    };
    let sub = state.with_subscriptions(|store| store.create(write, new));
    Ok((StatusCode::CREATED, Json(one(&identity, &sub))))
}

/// `GET /v1/subscriptions` → 200
pub async fn list(request: WxccRequest) -> Result<Json<Value>, ApiError> {
    let identity = request.authorize(Operation::SubscriptionList)?;
    let org_id = &identity.org().id;
    let (subs, total) = request
        .state()
        .with_subscriptions(|store| store.list(org_id, ApiVersion::V1));
    let data: Vec<Value> = subs.iter().map(Subscription::to_wire).collect();
    Ok(Json(
        json!({ "data": data, "meta": { "orgId": org_id, "subscriptionCount": total } }),
    ))
}

/// `GET /v1/subscriptions/{id}` → 200
pub async fn read(Path(id): Path<String>, request: WxccRequest) -> Result<Json<Value>, ApiError> {
    let identity = request.authorize(Operation::SubscriptionGet)?;
    let org_id = &identity.org().id;
    let found = request
        .state()
        .with_subscriptions(|store| store.get(org_id, ApiVersion::V1, &id).cloned());
    let sub = found.ok_or_else(|| not_found(&identity, &id))?;
    Ok(Json(one(&identity, &sub)))
}

/// `PATCH /v1/subscriptions/{id}` → 200
pub async fn update(Path(id): Path<String>, request: WxccRequest) -> Result<Json<Value>, ApiError> {
    let identity = request.authorize(Operation::SubscriptionUpdate)?;
    let state = request.state().clone();
    let body: UpdateBody = request.json(SchemaId::SubscriptionUpdateRequest).await?;
    if let Some(org) = &body.org_id {
        check_same_org(&identity, org, "the body's orgId")?;
    }
    if let Some(url) = &body.destination_url {
        check_url(url)?;
    }
    let patch = SubscriptionPatch {
        description: body.description,
        event_types: body.event_types,
        destination_url: body.destination_url,
        status: body.status.as_deref().and_then(Status::parse),
        secret: body.secret,
    };
    let write = Write {
        org_id: &identity.org().id,
        version: ApiVersion::V1,
        by: &identity.user().email,
        now: state.now_ms(),
    };
    let updated = state.with_subscriptions(|store| store.update(write, &id, patch));
    let sub = updated.ok_or_else(|| not_found(&identity, &id))?;
    Ok(Json(one(&identity, &sub)))
}

/// `DELETE /v1/subscriptions/{id}` → 204, no body
pub async fn delete(Path(id): Path<String>, request: WxccRequest) -> Result<StatusCode, ApiError> {
    let identity = request.authorize(Operation::SubscriptionDelete)?;
    let org_id = &identity.org().id;
    let deleted = request
        .state()
        .with_subscriptions(|store| store.delete(org_id, ApiVersion::V1, &id));
    if deleted {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found(&identity, &id))
    }
}

/// `GET /v1/event-types` → 200
pub async fn event_types(request: WxccRequest) -> Result<Json<Value>, ApiError> {
    let identity = request.authorize(Operation::EventTypesList)?;
    let data: Vec<Value> = wxcc_schemas::event_types_v1()
        .iter()
        .map(|name| {
            let (resource, action) = name.split_once(':').unwrap_or((name, ""));
            json!({ "name": name, "resource": resource, "action": action })
        })
        .collect();
    Ok(Json(
        json!({ "data": data, "meta": { "orgId": identity.org().id } }),
    ))
}
