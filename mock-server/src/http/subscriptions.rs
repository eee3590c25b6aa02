//! `/v1|v2/subscriptions` and `/v1|v2/event-types`: the NOTIFS service, errors in `ErrorResult`.
//! v1 and v2 are separate namespaces; `meta.subscriptionCount` counts both.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use wxcc_schemas::{event_types_of, resource_versions};

use super::{ApiError, Call, check_same_org, json_response};
use crate::auth::Identity;
use crate::engine::subscriptions::{ApiVersion, NewSubscription, Status, Subscription, SubscriptionPatch};

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
    status: Option<Status>,
    secret: Option<String>,
    org_id: Option<String>,
    resource_version: Option<String>,
}

#[derive(Serialize)]
struct Meta<'a> {
    #[serde(rename = "orgId")]
    org_id: &'a str,
    #[serde(rename = "subscriptionCount", skip_serializing_if = "Option::is_none")]
    subscription_count: Option<usize>,
}

/// `{meta, data}` with one subscription.
#[derive(Serialize)]
struct One<'a> {
    meta: Meta<'a>,
    data: &'a Subscription,
}

/// `{data, meta}` with a list (the order the real API sends).
#[derive(Serialize)]
struct List<'a> {
    data: &'a [Subscription],
    meta: Meta<'a>,
}

fn one<'a>(identity: &'a Identity, sub: &'a Subscription) -> One<'a> {
    One { meta: Meta { org_id: &identity.org().id, subscription_count: None }, data: sub }
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

/// A destination the mock will not call (itself, a low loopback port, an internal name): 400,
/// named like a schema violation.
fn check_destination(call: &Call<'_>, url: &str) -> Result<(), ApiError> {
    match call.state.refused_destination(url) {
        None => Ok(()),
        Some(why) => Err(ApiError::bad_request(format!("/destinationUrl: {url} {why}"))),
    }
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
        Some(kept) => Err(ApiError::conflict(
            "resourceVersion does not offer the subscription's event types",
            format!(
                "The subscription keeps event type {kept}, which resourceVersion {rv} does not offer (it offers {}). Send eventTypes with the new resourceVersion.",
                offered.join(", ")
            ),
        )),
    }
}

/// `POST /v1/subscriptions` → 201
pub async fn create_v1(call: Call<'_>) -> Result<Response, ApiError> {
    create(call, ApiVersion::V1)
}

/// `POST /v2/subscriptions` → 201
pub async fn create_v2(call: Call<'_>) -> Result<Response, ApiError> {
    create(call, ApiVersion::V2)
}

fn create(call: Call<'_>, version: ApiVersion) -> Result<Response, ApiError> {
    let identity = call.identity()?;
    let body: CreateBody = call.body()?;
    if let Some(org) = &body.org_id {
        check_same_org(identity, org, "the body's orgId")?;
    }
    check_destination(&call, &body.destination_url)?;
    let new = NewSubscription {
        name: body.name,
        description: body.description,
        event_types: body.event_types,
        destination_url: body.destination_url,
        secret: body.secret,
        resource_version: body.resource_version,
    };
    let sub = call
        .state
        .create_subscription(&identity.org().id, version, &identity.user().email, new)
        .map_err(|full| {
            ApiError::bad_request(format!(
                "Organisation {} already has {} subscriptions (v1 and v2 together), its limit (--max-subscriptions {}); creating one more would exceed the org-level limit. Delete one first.",
                identity.org().id,
                full.count,
                full.limit
            ))
        })?;
    Ok(json_response(StatusCode::CREATED, &one(identity, &sub)))
}

/// `GET /v1/subscriptions` → 200
pub async fn list_v1(call: Call<'_>) -> Result<Response, ApiError> {
    list(call, ApiVersion::V1)
}

/// `GET /v2/subscriptions` → 200
pub async fn list_v2(call: Call<'_>) -> Result<Response, ApiError> {
    list(call, ApiVersion::V2)
}

fn list(call: Call<'_>, version: ApiVersion) -> Result<Response, ApiError> {
    let identity = call.identity()?;
    let org_id = &identity.org().id;
    let (subs, total) = call.state.subscriptions_of(org_id, version);
    let body = List { data: &subs, meta: Meta { org_id, subscription_count: Some(total) } };
    Ok(json_response(StatusCode::OK, &body))
}

/// `GET /v1/subscriptions/{id}` → 200
pub async fn read_v1(call: Call<'_>) -> Result<Response, ApiError> {
    read(call, ApiVersion::V1).await
}

/// `GET /v2/subscriptions/{id}` → 200
pub async fn read_v2(call: Call<'_>) -> Result<Response, ApiError> {
    read(call, ApiVersion::V2).await
}

async fn read(mut call: Call<'_>, version: ApiVersion) -> Result<Response, ApiError> {
    let id = call.param("id").await?;
    let identity = call.identity()?;
    let sub =
        call.state.subscription(&identity.org().id, version, &id).ok_or_else(|| not_found(identity, version, &id))?;
    Ok(json_response(StatusCode::OK, &one(identity, &sub)))
}

/// `PATCH /v1/subscriptions/{id}` → 200
pub async fn update_v1(call: Call<'_>) -> Result<Response, ApiError> {
    update(call, ApiVersion::V1).await
}

/// `PATCH /v2/subscriptions/{id}` → 200
pub async fn update_v2(call: Call<'_>) -> Result<Response, ApiError> {
    update(call, ApiVersion::V2).await
}

async fn update(mut call: Call<'_>, version: ApiVersion) -> Result<Response, ApiError> {
    let id = call.param("id").await?;
    let identity = call.identity()?;
    let body: UpdateBody = call.body()?;
    if let Some(org) = &body.org_id {
        check_same_org(identity, org, "the body's orgId")?;
    }
    if let Some(url) = &body.destination_url {
        check_destination(&call, url)?;
    }
    let keeps_event_types = body.event_types.is_none();
    let new_resource_version = body.resource_version.clone();
    let patch = SubscriptionPatch {
        description: body.description,
        event_types: body.event_types,
        destination_url: body.destination_url,
        status: body.status,
        secret: body.secret,
        resource_version: body.resource_version,
    };
    // Checked and applied under one lock, so the event types checked are the ones kept.
    let updated =
        call.state.update_subscription(&identity.org().id, version, &identity.user().email, &id, patch, |current| {
            if keeps_event_types {
                check_stored_event_types(new_resource_version.as_deref(), &current.event_types)?;
            }
            Ok::<(), ApiError>(())
        })?;
    let sub = updated.ok_or_else(|| not_found(identity, version, &id))?;
    Ok(json_response(StatusCode::OK, &one(identity, &sub)))
}

/// `DELETE /v1/subscriptions/{id}` → 204, no body
pub async fn delete_v1(call: Call<'_>) -> Result<Response, ApiError> {
    delete(call, ApiVersion::V1).await
}

/// `DELETE /v2/subscriptions/{id}` → 204, no body
pub async fn delete_v2(call: Call<'_>) -> Result<Response, ApiError> {
    delete(call, ApiVersion::V2).await
}

async fn delete(mut call: Call<'_>, version: ApiVersion) -> Result<Response, ApiError> {
    let id = call.param("id").await?;
    let identity = call.identity()?;
    if call.state.delete_subscription(&identity.org().id, version, &identity.user().email, &id) {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(not_found(identity, version, &id))
    }
}

fn event_type_entry(name: &str) -> Value {
    let (resource, action) = name.split_once(':').unwrap_or((name, ""));
    json!({ "name": name, "resource": resource, "action": action })
}

/// `GET /v1/event-types` → 200
pub async fn event_types_v1(call: Call<'_>) -> Result<Response, ApiError> {
    let identity = call.identity()?;
    let data: Vec<Value> = wxcc_schemas::event_types_v1().iter().map(|n| event_type_entry(n)).collect();
    Ok(json_response(StatusCode::OK, &json!({ "data": data, "meta": { "orgId": identity.org().id } })))
}

/// `GET /v2/event-types` → 200, with `meta.resourceVersionList`
pub async fn event_types_v2(call: Call<'_>) -> Result<Response, ApiError> {
    let identity = call.identity()?;
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
    let body = json!({ "data": data, "meta": { "orgId": identity.org().id, "resourceVersionList": versions } });
    Ok(json_response(StatusCode::OK, &body))
}
