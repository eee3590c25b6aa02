//! The HTTP face: `build_router`, the one error type, the envelope layer and the request
//! extractor that enforces the real order of checks (auth, then body).
//!
//! Every response passes through [`envelope`]: it gives the response a `TrackingID` (the
//! request's `TrackingId`, or `<SERVICE>_<uuid>`), renders any [`ApiError`] in the envelope of
//! the service the path belongs to, adds `X-Wxcc-Mock-Diagnostic` to every 4xx, and records the
//! exchange in the bounded journal (`GET /__admin/journal`).

mod agents;
mod config;
mod notifications;
mod subscriptions;

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header, request::Parts};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use wxcc_schemas::{SchemaId, Violation};

use crate::auth::{self, AuthFailure, Identity, Operation};
use crate::state::{AppState, Exchange, ViolationRecord};

/// The response header that carries the tracking id.
pub const TRACKING_ID: HeaderName = HeaderName::from_static("trackingid");
/// The request header clients may send to choose the tracking id.
pub const TRACKING_ID_REQUEST: &str = "trackingid";
/// The mock's own explanation of every 4xx.
pub const DIAGNOSTIC: HeaderName = HeaderName::from_static("x-wxcc-mock-diagnostic");
/// The largest request body accepted (bigger ones get 413 in the envelope).
pub const BODY_LIMIT: usize = 256 * 1024;

/// The backend service a path belongs to; it decides the error envelope and the tracking prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// Subscriptions and event types: `ErrorResult` (integer `key`), `NOTIFS_` ids.
    Notifs,
    /// Agent call control: `{errorType, errorMessage, trackingId}`, `AQM_` ids.
    Agents,
    /// Config and reporting (and unknown paths): `ApiErrorResponse` (string `key`).
    Config,
    /// The mock's own `/__admin` API: plain JSON.
    Admin,
}

impl Service {
    /// Which service answers `path`.
    pub fn for_path(path: &str) -> Service {
        let under =
            |prefix: &str| path.strip_prefix(prefix).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
        if under("/__admin") {
            Service::Admin
        } else if under("/v1/agents") || under("/v2/agents") {
            Service::Agents
        } else if ["/v1/subscriptions", "/v2/subscriptions", "/v1/event-types", "/v2/event-types"]
            .iter()
            .any(|p| under(p))
        {
            Service::Notifs
        } else {
            Service::Config
        }
    }

    fn tracking_prefix(self) -> &'static str {
        match self {
            Service::Notifs => "NOTIFS",
            Service::Agents => "AQM",
            Service::Config => "ccconfig",
            Service::Admin => "WXCCMOCK",
        }
    }

    /// The error body this service sends.
    pub fn error_body(self, status: StatusCode, messages: &[String], tracking_id: &str) -> Value {
        let reason = status.canonical_reason().unwrap_or("Error");
        let described: Vec<Value> = messages.iter().map(|m| json!({ "description": m })).collect();
        match self {
            Service::Notifs => json!({
                "error": { "key": status.as_u16(), "message": described },
                "trackingId": tracking_id,
            }),
            Service::Config => json!({
                "trackingId": tracking_id,
                "error": { "key": status.as_u16().to_string(), "message": described },
            }),
            Service::Agents => json!({
                "errorType": reason,
                "errorMessage": messages.join("; "),
                "trackingId": tracking_id,
            }),
            Service::Admin => json!({
                "error": { "status": status.as_u16(), "message": messages.join("; ") },
                "trackingId": tracking_id,
            }),
        }
    }

    /// The schema of [`Service::error_body`], where the contract has one.
    pub fn error_schema(self) -> Option<SchemaId> {
        match self {
            Service::Notifs => Some(SchemaId::ErrorResult),
            Service::Config => Some(SchemaId::ApiErrorResponse),
            Service::Agents => Some(SchemaId::AgentErrorResponse),
            Service::Admin => None,
        }
    }
}

/// The one error type. Handlers return it; [`envelope`] renders it for the path's service.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// What the body says (one entry per problem), as the real API would say it.
    pub messages: Vec<String>,
    /// The mock's own plain sentence, sent as `X-Wxcc-Mock-Diagnostic`.
    pub diagnostic: String,
}

impl ApiError {
    /// Any status.
    pub fn new(status: StatusCode, message: impl Into<String>, diagnostic: impl Into<String>) -> ApiError {
        ApiError { status, messages: vec![message.into()], diagnostic: diagnostic.into() }
    }

    /// 400 with one message that is also the diagnostic.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        let message = message.into();
        ApiError::new(StatusCode::BAD_REQUEST, message.clone(), message)
    }

    /// 403 with the real body text and the mock's explanation.
    pub fn forbidden(diagnostic: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "Forbidden Operation", diagnostic)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>, diagnostic: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message, diagnostic)
    }

    /// 400 listing schema violations, one message each (`/secret: must be at least 32 characters`).
    pub fn violations(schema: SchemaId, violations: &[Violation]) -> ApiError {
        let messages: Vec<String> = violations.iter().map(ToString::to_string).collect();
        let diagnostic = format!("The request body breaks the {schema} schema: {}.", messages.join("; "));
        ApiError { status: StatusCode::BAD_REQUEST, messages, diagnostic }
    }
}

impl From<AuthFailure> for ApiError {
    fn from(failure: AuthFailure) -> ApiError {
        match failure {
            AuthFailure::BadHeader(d) => ApiError::new(StatusCode::BAD_REQUEST, "Invalid Authorization header", d),
            AuthFailure::BadToken(d) => ApiError::new(StatusCode::UNAUTHORIZED, "Invalid Access Token", d),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = self.status.into_response();
        response.extensions_mut().insert(Arc::new(self));
        response
    }
}

/// The request's tracking id, put in the request extensions by [`envelope`].
#[derive(Debug, Clone)]
pub struct TrackingId(pub Arc<str>);

/// Builds the whole app: WxCC routes, `/__admin`, fallbacks, and the envelope layer.
pub fn build_router(state: AppState) -> Router {
    Router::new()
        .route("/v1/agents/login", post(agents::login))
        .route("/v1/agents/logout", put(agents::logout).post(agents::logout))
        .route("/v1/agents/session/state", put(agents::change_state))
        .route("/v1/agents/reload", post(agents::reload))
        .route("/v1/agents/buddyList", post(agents::buddy_list))
        .route("/v1/subscriptions", post(subscriptions::create_v1).get(subscriptions::list_v1))
        .route(
            "/v1/subscriptions/{id}",
            get(subscriptions::read_v1).patch(subscriptions::update_v1).delete(subscriptions::delete_v1),
        )
        .route("/v1/event-types", get(subscriptions::event_types_v1))
        .route("/v2/subscriptions", post(subscriptions::create_v2).get(subscriptions::list_v2))
        .route(
            "/v2/subscriptions/{id}",
            get(subscriptions::read_v2).patch(subscriptions::update_v2).delete(subscriptions::delete_v2),
        )
        .route("/v2/event-types", get(subscriptions::event_types_v2))
        .route("/v1/notification/subscribe", post(notifications::subscribe))
        .route("/v1/notification/subscription/{id}", get(notifications::connect))
        .route("/organization/{org_id}", get(config::organization))
        .route("/organization/{org_id}/user/by-ci-user-id/{user_id}", get(config::user_by_ci_id))
        .route("/organization/{org_id}/v2/organization-setting", get(config::organization_setting))
        .route("/organization/{org_id}/v2/tenant-configuration", get(config::tenant_configuration))
        .route("/organization/{org_id}/v2/org-url-mapping", get(config::url_mapping))
        .route("/organization/{org_id}/v2/ai-feature", get(config::ai_feature))
        .route("/organization/{org_id}/v2/auxiliary-code", get(config::auxiliary_code))
        .route("/organization/{org_id}/agent-profile/{id}", get(config::agent_profile))
        .route("/organization/{org_id}/site/{id}", get(config::site))
        .route("/organization/{org_id}/v2/team", get(config::team))
        .route("/organization/{org_id}/dial-plan", get(config::dial_plan))
        .route("/openapi.json", get(openapi_json))
        .nest("/__admin", crate::admin::router())
        .fallback(unknown_route)
        .method_not_allowed_fallback(wrong_method)
        .layer(middleware::from_fn_with_state(state.clone(), envelope))
        .with_state(state)
}

async fn openapi_json() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], crate::openapi::document_text()).into_response()
}

async fn unknown_route(request: Request) -> ApiError {
    let path = request.uri().path().to_owned();
    ApiError::not_found(
        format!("No resource found at {path}"),
        format!("{} {path} is not a route of the WxCC API that wxcc-mock serves.", request.method()),
    )
}

async fn wrong_method(request: Request) -> ApiError {
    let path = request.uri().path().to_owned();
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("Method {} is not allowed on {path}", request.method()),
        format!("{path} exists, but not for {}; see the OpenAPI description for its methods.", request.method()),
    )
}

/// Tracking ids, error envelopes and diagnostics for every response.
pub async fn envelope(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let service = Service::for_path(request.uri().path());
    let method = request.method().to_string();
    let path = request.uri().to_string();
    let tracking: Arc<str> = request
        .headers()
        .get(TRACKING_ID_REQUEST)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.len() <= 256)
        .map_or_else(|| format!("{}_{}", service.tracking_prefix(), uuid::Uuid::new_v4()).into(), Into::into);
    request.extensions_mut().insert(TrackingId(tracking.clone()));
    let mut response = next.run(request).await;

    let error = response.extensions_mut().remove::<Arc<ApiError>>();
    let status = response.status();
    let error = match error {
        Some(e) => Some(e),
        // A rejection by axum itself (a path segment that is not valid UTF-8, say): still answer in
        // the envelope, and explain with axum's own text.
        None if (status.is_client_error() || status.is_server_error()) && !is_json(response.headers()) => {
            let reason = status.canonical_reason().unwrap_or("Error");
            let (parts, body) = response.into_parts();
            let text = axum::body::to_bytes(body, 2048).await.unwrap_or_default();
            let text = String::from_utf8_lossy(&text);
            let diagnostic = if text.trim().is_empty() {
                format!("The request was refused: {reason}.")
            } else {
                format!("The request was refused: {}.", text.trim())
            };
            response = Response::from_parts(parts, Body::empty());
            Some(Arc::new(ApiError::new(status, reason, diagnostic)))
        }
        None => None,
    };
    if let Some(error) = error {
        let body = service.error_body(error.status, &error.messages, &tracking);
        let mut rendered = (error.status, axum::Json(body)).into_response();
        if error.status.is_client_error() {
            rendered.headers_mut().insert(DIAGNOSTIC, header_text(&error.diagnostic));
        }
        // Keep headers such as Allow or Retry-After that the inner response carried.
        for (name, value) in response.headers() {
            if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
                rendered.headers_mut().entry(name.clone()).or_insert_with(|| value.clone());
            }
        }
        response = rendered;
    }
    response.headers_mut().insert(TRACKING_ID, header_text(&tracking));
    if service != Service::Admin {
        state.record_exchange(Exchange {
            at: state.now_ms(),
            method,
            path,
            status: response.status().as_u16(),
            tracking_id: tracking.to_string(),
            latency_us: u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
        });
    }
    response
}

fn is_json(headers: &HeaderMap) -> bool {
    headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("json"))
}

/// A header value from arbitrary text: anything but visible ASCII becomes `?`, and it is capped.
fn header_text(text: &str) -> HeaderValue {
    let clean: String =
        text.chars().take(2000).map(|c| if c == ' ' || c.is_ascii_graphic() { c } else { '?' }).collect();
    HeaderValue::from_str(&clean).unwrap_or_else(|_| HeaderValue::from_static("?"))
}

/// A WxCC request whose body has not been read yet. Handlers call [`WxccRequest::authorize`]
/// first and only then [`WxccRequest::json`], which is the real API's order.
#[derive(Debug)]
pub struct WxccRequest {
    parts: Parts,
    body: Body,
    state: AppState,
    tracking_id: Arc<str>,
}

impl FromRequest<AppState> for WxccRequest {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (parts, body) = request.into_parts();
        let tracking_id = parts.extensions.get::<TrackingId>().map_or_else(|| Arc::from("untracked"), |t| t.0.clone());
        Ok(WxccRequest { parts, body, state: state.clone(), tracking_id })
    }
}

impl WxccRequest {
    /// The response's tracking id.
    pub fn tracking_id(&self) -> &str {
        &self.tracking_id
    }

    /// The state.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// 400 (header), 401 (token), 403 (scope, role, or another org's `orgId` query parameter).
    pub fn authorize(&self, op: Operation) -> Result<Identity, ApiError> {
        let header = self.parts.headers.get(header::AUTHORIZATION).map(HeaderValue::as_bytes);
        let token = auth::bearer_token(header)?;
        let identity = self.state.identify(token)?;
        identity.authorize(op).map_err(ApiError::forbidden)?;
        if let Some(org) = self.query("orgId") {
            check_same_org(&identity, &org, "the orgId query parameter")?;
        }
        Ok(identity)
    }

    /// One request header, as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
    }

    /// One query parameter.
    pub fn query(&self, name: &str) -> Option<String> {
        let query = self.parts.uri.query()?;
        url::form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
    }

    /// Reads the body (413 past [`BODY_LIMIT`], 415 for a non-JSON content type), parses it (400),
    /// validates it against `schema` (400 naming each pointer and rule) and deserialises it.
    pub async fn json<T: DeserializeOwned>(self, schema: SchemaId) -> Result<T, ApiError> {
        self.json_inner(schema, false).await
    }

    /// Like [`WxccRequest::json`], but an empty body counts as `{}`.
    pub async fn json_or_empty<T: DeserializeOwned>(self, schema: SchemaId) -> Result<T, ApiError> {
        self.json_inner(schema, true).await
    }

    async fn json_inner<T: DeserializeOwned>(self, schema: SchemaId, empty_is_object: bool) -> Result<T, ApiError> {
        if let Some(kind) = self.parts.headers.get(header::CONTENT_TYPE) {
            let kind = kind.to_str().unwrap_or_default().to_ascii_lowercase();
            if !kind.contains("json") {
                return Err(ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "Content-Type must be application/json",
                    format!("The body was sent as '{kind}'; WxCC only takes application/json."),
                ));
            }
        }
        let bytes = read_body(self.body).await?;
        let record = |pointer: &str, rule: &str, message: String, accepted: bool| ViolationRecord {
            at: self.state.now_ms(),
            method: self.parts.method.to_string(),
            path: self.parts.uri.to_string(),
            tracking_id: self.tracking_id.to_string(),
            schema: schema.name().to_owned(),
            pointer: pointer.to_owned(),
            rule: rule.to_owned(),
            message,
            accepted,
            body: String::from_utf8_lossy(&bytes[..bytes.len().min(2048)]).into_owned(),
        };
        let value: Value = if bytes.iter().all(u8::is_ascii_whitespace) {
            if empty_is_object {
                json!({})
            } else {
                let message = format!("the request has no body, but needs a JSON object ({schema} schema)");
                self.state.record_violations([record("", "json", message.clone(), false)]);
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "Body is invalid JSON.",
                    format!("The request has no body, but it needs a JSON object ({schema} schema)."),
                ));
            }
        } else {
            match serde_json::from_slice(&bytes) {
                Ok(value) => value,
                Err(e) => {
                    self.state.record_violations([record("", "json", format!("not valid JSON: {e}"), false)]);
                    return Err(ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "Body is invalid JSON.",
                        format!("The request body is not valid JSON: {e}."),
                    ));
                }
            }
        };
        if let Err(violations) = wxcc_schemas::validate(schema, &value) {
            let strict = self.state.strict();
            let tolerated: Vec<bool> =
                violations.iter().map(|v| crate::leniency::tolerated(schema, v, &value)).collect();
            let accepted = !strict && tolerated.iter().all(|t| *t);
            self.state
                .record_violations(violations.iter().map(|v| record(&v.pointer, &v.rule, v.message.clone(), accepted)));
            if !accepted {
                let mut error = ApiError::violations(schema, &violations);
                if strict && tolerated.iter().all(|t| *t) {
                    error.diagnostic.push_str(
                        " The real API accepts this, but it breaks the published contract, and the mock runs with --strict.",
                    );
                }
                return Err(error);
            }
        }
        serde_json::from_value(value)
            .map_err(|e| ApiError::bad_request(format!("The request body does not fit the {schema} schema: {e}")))
    }
}

async fn read_body(body: Body) -> Result<Bytes, ApiError> {
    match Limited::new(body, BODY_LIMIT).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("Request body is larger than {BODY_LIMIT} bytes"),
            format!("The request body exceeds the mock's limit of {BODY_LIMIT} bytes."),
        )),
        Err(e) => Err(ApiError::bad_request(format!("The request body could not be read: {e}"))),
    }
}

/// 403 unless `org` is the caller's own organisation.
pub fn check_same_org(identity: &Identity, org: &str, named_by: &str) -> Result<(), ApiError> {
    if org == identity.org().id {
        return Ok(());
    }
    Err(ApiError::forbidden(format!(
        "{} belongs to organisation {} but {named_by} names organisation {org}; a token may only act on its own organisation.",
        identity.user().email,
        identity.org().id
    )))
}
