//! `/organization/{orgId}/...`: the configuration the agent desktop (and Cisco's SDK, in
//! `register()`) reads, served from the world. Errors use the config services' envelope
//! (`ApiErrorResponse`, string `key`); lists use their pagination envelope (facts §4).

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::{ApiError, Call, check_same_org, json_response};
use crate::auth::Identity;
use crate::world::Org;

/// The largest page the config services hand out; bigger `pageSize`s are lowered to it.
pub const MAX_PAGE_SIZE: usize = 100;

/// The caller, once the path's organisation is theirs (the table checked the scope), and the
/// path's `{id}`, if it has one.
async fn authorize<'a>(call: &mut Call<'a>) -> Result<(Identity<'a>, Option<String>), ApiError> {
    let org_id = call.param("orgId").await?;
    let id = call.param("id").await.ok();
    let identity = call.identity()?.clone();
    check_same_org(&identity, &org_id, "the path")?;
    Ok((identity, id))
}

fn ok(body: Value) -> Result<Response, ApiError> {
    Ok(json_response(StatusCode::OK, &body))
}

fn not_found(what: &str, id: &str, org: &Org) -> ApiError {
    ApiError::not_found(format!("{what} {id} not found"), format!("Organisation {} has no {what} {id}.", org.name))
}

fn number(call: &Call<'_>, name: &str, default: usize) -> Result<usize, ApiError> {
    match call.query(name) {
        None => Ok(default),
        Some(v) => {
            v.parse().map_err(|_| ApiError::bad_request(format!("?{name}: must be a non-negative integer, not {v:?}")))
        }
    }
}

/// The ids an RSQL `filter` of the form `id=in=(a,b)` or `id==a` names; `None` without a filter.
fn id_filter(call: &Call<'_>) -> Result<Option<Vec<String>>, ApiError> {
    let Some(filter) = call.query("filter").filter(|f| !f.is_empty()) else { return Ok(None) };
    if let Some(list) = filter.strip_prefix("id=in=(").and_then(|r| r.strip_suffix(')')) {
        return Ok(Some(list.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect()));
    }
    if let Some(one) = filter.strip_prefix("id==") {
        return Ok(Some(vec![one.to_owned()]));
    }
    Err(ApiError::bad_request(format!(
        "?filter: the mock understands the RSQL forms id=in=(a,b) and id==a, not {filter:?}"
    )))
}

/// The pagination envelope around `items`.
fn page(call: &Call<'_>, org: &Org, path: &str, items: Vec<Value>) -> Result<Response, ApiError> {
    let page = number(call, "page", 0)?;
    let page_size = number(call, "pageSize", MAX_PAGE_SIZE)?.clamp(1, MAX_PAGE_SIZE);
    let total = items.len();
    let total_pages = total.div_ceil(page_size);
    let data: Vec<Value> = items.into_iter().skip(page * page_size).take(page_size).collect();
    let link = |p: usize| format!("/organization/{}/{path}?page={p}&pageSize={page_size}", org.id);
    let mut links = Map::new();
    links.insert("self".into(), json!(link(page)));
    links.insert("first".into(), json!(link(0)));
    links.insert("last".into(), json!(link(total_pages.saturating_sub(1))));
    if page + 1 < total_pages {
        links.insert("next".into(), json!(link(page + 1)));
    }
    if page > 0 {
        links.insert("prev".into(), json!(link(page - 1)));
    }
    ok(json!({
        "meta": {
            "orgid": org.id, "page": page, "pageSize": page_size,
            "totalPages": total_pages, "totalRecords": total, "links": links,
        },
        "data": data,
    }))
}

fn list(org: &Org, data: Vec<Value>) -> Result<Response, ApiError> {
    ok(json!({ "meta": { "orgid": org.id }, "data": data }))
}

/// `GET /organization/{orgId}`
pub async fn organization(mut call: Call<'_>) -> Result<Response, ApiError> {
    let (identity, _) = authorize(&mut call).await?;
    let org = identity.org();
    ok(json!({
        "id": org.id, "name": org.name, "tenantId": org.tenant_id,
        "timezone": org.timezone, "environment": org.environment,
    }))
}

/// `GET /organization/{orgId}/user/by-ci-user-id/{userId}`
pub async fn user_by_ci_id(mut call: Call<'_>) -> Result<Response, ApiError> {
    let (identity, user_id) = authorize(&mut call).await?;
    let user_id = user_id.unwrap_or_default();
    let me = identity.user();
    if user_id != me.id && !identity.has_scope("cjp:config_read") {
        return Err(ApiError::forbidden(format!(
            "{} may read only their own user with cjp:user; reading another user needs cjp:config_read.",
            me.email
        )));
    }
    let org = identity.org();
    let user = org.users.iter().find(|u| u.id == user_id).ok_or_else(|| not_found("user", &user_id, org))?;
    ok(json!({
        "id": user.id,
        "ciUserId": user.id,
        "dbId": user.id,
        "organizationId": org.id,
        "firstName": user.first_name,
        "lastName": user.last_name,
        "email": user.email,
        "agentProfileId": user.agent_profile_id,
        "siteId": user.site_id,
        "teamIds": user.team_ids,
        "defaultDialledNumber": user.default_dialled_number,
        "skillProfileId": null,
        "multimediaProfileId": null,
        "active": true,
        "contactCenterEnabled": true,
    }))
}

/// `GET /organization/{orgId}/v2/organization-setting?agentView=true` (the SDK reads `data[0]`)
pub async fn organization_setting(mut call: Call<'_>) -> Result<Response, ApiError> {
    let (identity, _) = authorize(&mut call).await?;
    let org = identity.org();
    list(org, vec![org.organization_settings.clone()])
}

/// `GET /organization/{orgId}/v2/tenant-configuration?agentView=true` (the SDK reads `data[0]`)
pub async fn tenant_configuration(mut call: Call<'_>) -> Result<Response, ApiError> {
    let (identity, _) = authorize(&mut call).await?;
    let org = identity.org();
    list(org, vec![org.tenant_configuration.clone()])
}

/// `GET /organization/{orgId}/v2/org-url-mapping?sort=name,ASC` (always `data`, never a bare array)
pub async fn url_mapping(mut call: Call<'_>) -> Result<Response, ApiError> {
    let (identity, _) = authorize(&mut call).await?;
    let org = identity.org();
    let mut mappings = org.url_mappings.clone();
    let key = |v: &Value| v["name"].as_str().unwrap_or_default().to_owned();
    mappings.sort_by_key(key);
    if call.query("sort").is_some_and(|s| s.eq_ignore_ascii_case("name,DESC")) {
        mappings.reverse();
    }
    list(org, mappings)
}

/// `GET /organization/{orgId}/v2/ai-feature?page=0&pageSize=100`
pub async fn ai_feature(mut call: Call<'_>) -> Result<Response, ApiError> {
    let (identity, _) = authorize(&mut call).await?;
    let org = identity.org();
    page(&call, org, "v2/ai-feature", org.ai_features.clone())
}

/// `GET /organization/{orgId}/v2/auxiliary-code?page&pageSize&filter=id=in=(..)&attributes=..`
pub async fn auxiliary_code(mut call: Call<'_>) -> Result<Response, ApiError> {
    let (identity, _) = authorize(&mut call).await?;
    let org = identity.org();
    let ids = id_filter(&call)?;
    let attributes: Option<Vec<String>> =
        call.query("attributes").filter(|a| !a.is_empty()).map(|a| a.split(',').map(|s| s.trim().to_owned()).collect());
    let work_type = call.query("workType");
    let items = org
        .aux_codes
        .iter()
        .filter(|a| ids.as_ref().is_none_or(|ids| ids.contains(&a.id)))
        .filter(|a| work_type.as_ref().is_none_or(|w| *w == a.work_type))
        .map(|a| {
            let full = json!({
                "id": a.id, "name": a.name, "workTypeCode": a.work_type, "defaultCode": a.is_default,
                "isSystemCode": a.is_system_code, "active": a.active, "description": a.name,
            });
            match &attributes {
                Some(wanted) => Value::Object(
                    full.as_object()
                        .map(|m| {
                            m.iter().filter(|(k, _)| wanted.contains(k)).map(|(k, v)| (k.clone(), v.clone())).collect()
                        })
                        .unwrap_or_default(),
                ),
                None => full,
            }
        })
        .collect();
    page(&call, org, "v2/auxiliary-code", items)
}

/// `GET /organization/{orgId}/agent-profile/{id}`
pub async fn agent_profile(mut call: Call<'_>) -> Result<Response, ApiError> {
    let (identity, id) = authorize(&mut call).await?;
    let id = id.unwrap_or_default();
    let org = identity.org();
    org.agent_profile(&id).cloned().ok_or_else(|| not_found("agent profile", &id, org)).and_then(ok)
}

/// `GET /organization/{orgId}/site/{id}`
pub async fn site(mut call: Call<'_>) -> Result<Response, ApiError> {
    let (identity, id) = authorize(&mut call).await?;
    let id = id.unwrap_or_default();
    let org = identity.org();
    let site = org.sites.iter().find(|s| s.id == id).ok_or_else(|| not_found("site", &id, org))?;
    ok(json!({
        "id": site.id, "name": site.name, "multimediaProfileId": site.multimedia_profile_id, "active": true,
    }))
}

/// `GET /organization/{orgId}/v2/team?page&pageSize&filter=id=in=(..)`
pub async fn team(mut call: Call<'_>) -> Result<Response, ApiError> {
    let (identity, _) = authorize(&mut call).await?;
    let org = identity.org();
    let ids = id_filter(&call)?;
    let items = org
        .teams
        .iter()
        .filter(|t| ids.as_ref().is_none_or(|ids| ids.contains(&t.id)))
        .map(|t| {
            json!({
                "id": t.id, "name": t.name, "teamType": t.team_type, "active": t.active,
                "teamStatus": if t.active { "IN_SERVICE" } else { "NOT_IN_SERVICE" },
                "siteId": t.site_id, "multiMediaProfileId": t.multi_media_profile_id,
            })
        })
        .collect();
    page(&call, org, "v2/team", items)
}

/// `GET /organization/{orgId}/dial-plan?agentView=true` (a bare array, as the SDK reads it)
pub async fn dial_plan(mut call: Call<'_>) -> Result<Response, ApiError> {
    let (identity, _) = authorize(&mut call).await?;
    ok(Value::Array(identity.org().dial_plans.clone()))
}

fn upper(channel: crate::world::Channel) -> &'static str {
    match channel {
        crate::world::Channel::Telephony => "TELEPHONY",
        crate::world::Channel::Chat => "CHAT",
        crate::world::Channel::Email => "EMAIL",
        crate::world::Channel::Social => "SOCIAL_CHANNEL",
    }
}

/// `GET /organization/{orgId}/v2/contact-service-queue?page&pageSize&filter=id=in=(..)`
pub async fn queues(mut call: Call<'_>) -> Result<Response, ApiError> {
    let (identity, _) = authorize(&mut call).await?;
    let org = identity.org();
    let ids = id_filter(&call)?;
    let items = org
        .queues
        .iter()
        .filter(|q| ids.as_ref().is_none_or(|ids| ids.contains(&q.id)))
        .map(|q| {
            json!({
                "id": q.id, "name": q.name, "description": q.name, "queueType": "INBOUND",
                "channelType": upper(q.channel_type), "active": true,
                "routingType": "LONGEST_AVAILABLE_AGENT", "queueRoutingType": "TEAM_BASED",
                "callDistributionGroups": [{
                    "agentGroups": q.team_ids.iter().map(|t| json!({ "teamId": t })).collect::<Vec<_>>(),
                    "order": 1, "duration": 0,
                }],
                "maxTimeInQueue": 3600, "maxActiveContacts": 1000, "serviceLevelThreshold": 30,
                "checkAgentAvailability": false,
                "ronaTimeoutSeconds": q.rona_timeout_seconds.unwrap_or_else(|| q.channel_type.default_rona_seconds()),
            })
        })
        .collect();
    page(&call, org, "v2/contact-service-queue", items)
}

/// `GET /organization/{orgId}/v2/entry-point?page&pageSize&filter=id=in=(..)`
pub async fn entry_points(mut call: Call<'_>) -> Result<Response, ApiError> {
    let (identity, _) = authorize(&mut call).await?;
    let org = identity.org();
    let ids = id_filter(&call)?;
    let items = org
        .entry_points
        .iter()
        .filter(|e| ids.as_ref().is_none_or(|ids| ids.contains(&e.id)))
        .map(|e| {
            json!({
                "id": e.id, "name": e.name, "description": e.name, "entryPointType": e.entry_point_type,
                "channelType": upper(e.channel_type), "active": true, "address": e.address,
                "serviceLevelThreshold": 30, "maximumActiveContacts": 1000,
            })
        })
        .collect();
    page(&call, org, "v2/entry-point", items)
}

/// `GET /organization/{orgId}/v2/outdial-ani/{id}/entry?page&pageSize`
pub async fn outdial_ani_entries(mut call: Call<'_>) -> Result<Response, ApiError> {
    let (identity, id) = authorize(&mut call).await?;
    let id = id.unwrap_or_default();
    let org = identity.org();
    let list = org.outdial_anis.iter().find(|a| a.id == id).ok_or_else(|| not_found("outdial ANI", &id, org))?;
    let items = list.entries.iter().map(|e| json!({ "id": e.id, "name": e.name, "number": e.number })).collect();
    page(&call, org, &format!("v2/outdial-ani/{id}/entry"), items)
}
