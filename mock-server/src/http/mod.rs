//! The HTTP face: the one error type, the envelope layer, and what a handler gets ([`Call`]).
//!
//! Every response passes through [`enveloped`]: it gives the response a `TrackingID` (the
//! request's `TrackingId`, or `<SERVICE>_<uuid>`), renders any [`ApiError`] in the envelope of
//! the service the path belongs to, adds `X-Wxcc-Mock-Diagnostic` to every 4xx, and records the
//! whole exchange in the journal (bodies and headers, secrets redacted).
//!
//! The checks before a handler runs (auth, then the body against its schema) are the
//! endpoint table's ([`crate::routes`]): a handler receives a [`Call`] that has passed them.

pub mod admin;
pub mod agents;
pub mod config;
pub mod notifications;
pub mod subscriptions;
pub mod tasks;

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequestParts, RawPathParams, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use wxcc_schemas::{SchemaId, Violation};

use crate::auth::{self, AuthFailure, Identity, Operation};
use crate::outputs::journal::{Codec, Draft, Fields, Kind, Level, MAX_BODY_BYTES, members, push_body, push_cut_body};
use crate::redact::{is_secret_header, redact_body, redact_uri, token_hint};
use crate::state::{AppState, ViolationRecord};

/// The first value of header `name` in `headers`. A request usually carries a handful of
/// headers, and comparing their names is cheaper than hashing the one looked for (as
/// [`HeaderMap::get`] does); past a handful the map's own look-up is the cheaper.
pub fn find_header<'h>(headers: &'h HeaderMap, name: &HeaderName) -> Option<&'h HeaderValue> {
    const SCANNED: usize = 8;
    if headers.len() <= SCANNED {
        headers.iter().find_map(|(n, value)| (n == name).then_some(value))
    } else {
        headers.get(name)
    }
}

/// The header that carries the tracking id (a client may send it to choose one).
pub const TRACKING_ID: HeaderName = HeaderName::from_static("trackingid");
/// Marks a request as a contract verifier's probe (`wxcc-contract verify` sends it): off-contract
/// on purpose, so not recorded as a violation (it is journaled as usual).
pub const PROBE_HEADER: &str = "x-wxcc-contract-probe";
/// The mock's own explanation of every 4xx.
pub const DIAGNOSTIC: HeaderName = HeaderName::from_static("x-wxcc-mock-diagnostic");
/// The largest request body accepted (bigger ones get 413 in the envelope).
pub const BODY_LIMIT: usize = 256 * 1024;

/// The largest scenario `POST /__admin/scenario` reads (one may carry its world inline).
pub const SCENARIO_BODY_LIMIT: usize = 1 << 20;

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
        } else if under("/v1/agents") || under("/v2/agents") || under("/v1/tasks") {
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

    /// How its TrackingIDs begin.
    pub fn tracking_prefix(self) -> &'static str {
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

/// The one error type. Handlers return it; [`enveloped`] renders it for the path's service.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// What the body says (one entry per problem), as the real API would say it.
    pub messages: Vec<String>,
    /// The mock's own plain sentence, sent as `X-Wxcc-Mock-Diagnostic`.
    pub diagnostic: String,
    /// `Retry-After` in seconds: a 429 says it, and has no body (facts §2.4, §4).
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// Any status.
    pub fn new(status: StatusCode, message: impl Into<String>, diagnostic: impl Into<String>) -> ApiError {
        ApiError { status, messages: vec![message.into()], diagnostic: diagnostic.into(), retry_after: None }
    }

    /// 400 with one message that is also the diagnostic.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        let message = message.into();
        ApiError::new(StatusCode::BAD_REQUEST, message.clone(), message)
    }

    /// 429 for a client past `--rate-limit`: no body, `Retry-After`, and the mock's explanation.
    pub fn rate_limited(limited: crate::rate::Limited, client_id: &str) -> ApiError {
        let which = match limited.rule {
            Some(i) => format!("the world's rateLimits[{i}]"),
            None => "--rate-limit".to_owned(),
        };
        let diagnostic = format!(
            "The client {client_id} sent more than {} requests in a minute ({which}); it may send again in {} s (Retry-After). The request was not processed.",
            limited.limit.per_minute, limited.retry_after_secs
        );
        ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            messages: vec!["Too Many Requests".to_owned()],
            diagnostic,
            retry_after: Some(limited.retry_after_secs),
        }
    }

    /// An answer a fault injected: `status` in the path's envelope (or, with `retry_after`, no
    /// body and `Retry-After`), explained as the mock's doing.
    pub fn injected(status: u16, retry_after: Option<u64>, description: &str) -> ApiError {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        let reason = status.canonical_reason().unwrap_or("Error");
        let diagnostic = format!(
            "Injected by {description}: the mock's fault, not your request's (GET /__admin/faults lists the rules)."
        );
        ApiError { status, messages: vec![reason.to_owned()], diagnostic, retry_after }
    }

    /// 403 with the real body text and the mock's explanation.
    pub fn forbidden(diagnostic: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "Forbidden Operation", diagnostic)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>, diagnostic: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message, diagnostic)
    }

    /// 409.
    pub fn conflict(message: impl Into<String>, diagnostic: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, message, diagnostic)
    }

    /// 400 listing schema violations, one message each (`/secret: must be at least 32 characters`).
    pub fn violations(schema: SchemaId, violations: &[Violation]) -> ApiError {
        let messages: Vec<String> = violations.iter().map(ToString::to_string).collect();
        let diagnostic = format!("The request body breaks the {schema} schema: {}.", messages.join("; "));
        ApiError { status: StatusCode::BAD_REQUEST, messages, diagnostic, retry_after: None }
    }

    /// 500: the endpoint table and its handler disagree (a bug, caught by the table's tests).
    pub fn misconfigured(what: &str) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error", format!("wxcc-mock bug: {what}"))
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

/// The request body, read once by [`enveloped`].
#[derive(Debug, Clone, Default)]
pub enum RequestBody {
    /// No body.
    #[default]
    Empty,
    /// The bytes.
    Bytes(Bytes),
    /// Over [`BODY_LIMIT`].
    TooLarge,
    /// The connection failed while it was read.
    Unreadable(String),
}

/// Who called, once the token was known (for the journal): their email, copied, so that an
/// exchange the journal keeps holds no share of the world or of the token's record (counting
/// those shares is work both cores contend on, request after request).
#[derive(Debug, Clone)]
pub struct Caller(Box<str>);

impl Caller {
    /// The caller `identity` names.
    pub fn of(identity: &Identity) -> Caller {
        Caller(identity.user().email.as_str().into())
    }

    /// Their email.
    pub fn email(&self) -> &str {
        &self.0
    }
}

/// What a handler gets: the state, the caller (authorised for the endpoint's operation, when it
/// has one), the body (validated against the endpoint's schema, when it has one) and the rest
/// of the request.
#[derive(Debug)]
pub struct Call<'a> {
    /// The state.
    pub state: &'a AppState,
    /// The response's tracking id.
    pub tracking_id: &'a str,
    /// The caller, when the endpoint needs a token.
    pub identity: Option<Identity<'a>>,
    /// The body, validated (`Null` when the endpoint takes none).
    pub body: Value,
    /// The body's bytes, as sent (empty when there were none).
    pub raw_body: Bytes,
    /// Method, URI, headers and extensions.
    pub parts: Parts,
}

impl<'a> Call<'a> {
    /// The caller (the endpoint table gives every endpoint that needs one an operation).
    pub fn identity(&self) -> Result<&Identity<'a>, ApiError> {
        self.identity
            .as_ref()
            .ok_or_else(|| ApiError::misconfigured("the endpoint has no operation but needs a caller"))
    }

    /// The body as `T` (read from the bytes sent: the schema has passed them).
    pub fn body<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        // From the bytes when they parse straight into T; otherwise (an empty body taken as `{}`,
        // a key sent twice) from the validated value, as it was checked; and last with whole
        // numbers written as `112.0`, which JSON Schema counts as integers and serde does not.
        serde_json::from_slice(&self.raw_body)
            .or_else(|_| serde_json::from_value(self.body.clone()))
            .or_else(|e| serde_json::from_value(whole_numbers_as_integers(self.body.clone())).map_err(|_| e))
            .map_err(|e| ApiError::bad_request(format!("The request body does not fit its schema: {e}")))
    }

    /// One query parameter.
    pub fn query(&self, name: &str) -> Option<String> {
        let query = self.parts.uri.query()?;
        url::form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
    }

    /// One request header, as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
    }

    /// One path parameter (`{id}`, `{org_id}`).
    pub async fn param(&mut self, name: &str) -> Result<String, ApiError> {
        let params = RawPathParams::from_request_parts(&mut self.parts, self.state)
            .await
            .map_err(|e| ApiError::bad_request(format!("The path could not be read: {e}")))?;
        params
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_owned())
            .ok_or_else(|| ApiError::misconfigured("a handler asked for a path parameter its route lacks"))
    }

    /// The tracking id, owned.
    pub fn tracking(&self) -> String {
        self.tracking_id.to_string()
    }
}

/// 202 with an empty body (the agent and task endpoints' answer).
pub fn accepted() -> Response {
    StatusCode::ACCEPTED.into_response()
}

/// A JSON response with a status.
pub fn json_response(status: StatusCode, body: &impl Serialize) -> Response {
    // Written into one buffer sized for the usual answer (axum's `Json` writes through a
    // `BytesMut` writer, a check per write).
    let mut bytes = JsonBuffer(Vec::with_capacity(256));
    match serde_json::to_writer(&mut bytes, body) {
        Ok(()) => {
            let mut response = Response::new(Body::from(bytes.0));
            *response.status_mut() = status;
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            response
        }
        Err(e) => {
            tracing::error!("an answer could not be serialised: {e}");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// A `Vec` to serialise into that takes the many one-byte writes of JSON (`{`, `"`, `:`, `,`)
/// with a push rather than a call to `memcpy` each.
struct JsonBuffer(Vec<u8>);

impl std::io::Write for JsonBuffer {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    #[inline]
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        match buf {
            [byte] => self.0.push(*byte),
            _ => self.0.extend_from_slice(buf),
        }
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Resolves the bearer token (400 for the header, 401 for the token).
pub fn identify<'s>(state: &'s AppState, parts: &Parts) -> Result<Identity<'s>, ApiError> {
    let header = find_header(&parts.headers, &header::AUTHORIZATION).map(HeaderValue::as_bytes);
    let token = auth::bearer_token(header)?;
    Ok(state.identify(token)?)
}

/// 403 unless `identity` may do `op` (scope and role) on the organisation its `orgId` query
/// parameter names, if any.
pub fn authorize(identity: &Identity, op: Operation, parts: &Parts) -> Result<(), ApiError> {
    identity.authorize(op).map_err(|f| ApiError::forbidden(f.to_string()))?;
    let org = parts.uri.query().and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "orgId").map(|(_, v)| v.into_owned())
    });
    if let Some(org) = org {
        check_same_org(identity, &org, "the orgId query parameter")?;
    }
    Ok(())
}

/// Checks the body: 413 past [`BODY_LIMIT`], 415 for a non-JSON content type, 400 for bad JSON
/// or a schema violation (naming each pointer and rule; recorded at `/__admin/violations`, and
/// tolerated where the real API is lenient, outside `--strict`). `optional`: an empty body
/// counts as `{}`.
pub fn read_json(
    state: &AppState,
    parts: &Parts,
    tracking_id: &str,
    body: &RequestBody,
    schema: SchemaId,
    optional: bool,
) -> Result<Value, ApiError> {
    let bytes = match body {
        RequestBody::Empty => Bytes::new(),
        RequestBody::Bytes(b) => b.clone(),
        RequestBody::TooLarge => {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Request body is too large",
                format!(
                    "The request body exceeds the mock's limit: {BODY_LIMIT} bytes ({SCENARIO_BODY_LIMIT} for POST /__admin/scenario)."
                ),
            ));
        }
        RequestBody::Unreadable(e) => {
            return Err(ApiError::bad_request(format!("The request body could not be read: {e}")));
        }
    };
    if let Some(kind) = parts.headers.get(header::CONTENT_TYPE) {
        let kind = kind.to_str().unwrap_or_default().to_ascii_lowercase();
        if !kind.contains("json") {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Content-Type must be application/json",
                format!("The body was sent as '{kind}'; WxCC only takes application/json."),
            ));
        }
    }
    let probe = parts.headers.contains_key(PROBE_HEADER);
    let record_violations = |records: Vec<ViolationRecord>| {
        if !probe {
            state.record_violations(records);
        }
    };
    let record = |pointer: &str, rule: &str, message: String, accepted: bool| ViolationRecord {
        at: state.now_ms(),
        method: parts.method.to_string(),
        path: cut(&redact_uri(&parts.uri.to_string()), VIOLATION_TEXT_BYTES),
        tracking_id: tracking_id.to_owned(),
        schema: schema.name().to_owned(),
        pointer: pointer.to_owned(),
        rule: rule.to_owned(),
        message: cut(&message, VIOLATION_TEXT_BYTES),
        accepted,
        body: cut(&String::from_utf8_lossy(&redact_body(&bytes)), VIOLATION_TEXT_BYTES),
    };
    let value: Value = if bytes.iter().all(u8::is_ascii_whitespace) {
        if optional {
            json!({})
        } else {
            let message = format!("the request has no body, but needs a JSON object ({schema} schema)");
            record_violations(vec![record("", "json", message, false)]);
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
                record_violations(vec![record("", "json", format!("not valid JSON: {e}"), false)]);
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "Body is invalid JSON.",
                    format!("The request body is not valid JSON: {e}."),
                ));
            }
        }
    };
    if let Err(violations) = wxcc_schemas::validate(schema, &value) {
        let strict = state.strict();
        let tolerated: Vec<bool> = violations.iter().map(|v| crate::leniency::tolerated(schema, v, &value)).collect();
        let accepted = !strict && tolerated.iter().all(|t| *t);
        record_violations(
            violations.iter().map(|v| record(&v.pointer, &v.rule, v.message.clone(), accepted)).collect(),
        );
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
    Ok(value)
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

/// 404 for a path the mock does not serve.
pub async fn unknown_route(State(state): State<AppState>, request: Request) -> Response {
    let (method, path) = (request.method().clone(), request.uri().path().to_owned());
    let error = ApiError::not_found(
        format!("No resource found at {path}"),
        format!("{method} {path} is not a route of the WxCC API that wxcc-mock serves."),
    );
    enveloped(state, None, BODY_LIMIT, request, Unhandled(error)).await
}

/// 405 for a path the mock serves, with another method.
pub async fn wrong_method(State(state): State<AppState>, request: Request) -> Response {
    let (method, path) = (request.method().clone(), request.uri().path().to_owned());
    let error = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("Method {method} is not allowed on {path}"),
        format!("{path} exists, but not for {method}; see the OpenAPI description for its methods."),
    );
    enveloped(state, None, BODY_LIMIT, request, Unhandled(error)).await
}

async fn read_request_body(body: Body, limit: usize) -> RequestBody {
    // Most requests (GETs) have none: nothing to collect.
    if axum::body::HttpBody::is_end_stream(&body) {
        return RequestBody::Empty;
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => {
            let bytes = collected.to_bytes();
            if bytes.is_empty() { RequestBody::Empty } else { RequestBody::Bytes(bytes) }
        }
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => RequestBody::TooLarge,
        Err(e) => RequestBody::Unreadable(e.to_string()),
    }
}

/// What a request brings to its handling inside [`enveloped`]: its parts, its tracking id and
/// its body (read once, so the journal and the handler share it).
#[derive(Debug)]
pub struct Incoming<'a> {
    /// Method, URI, headers and extensions.
    pub parts: Parts,
    /// The response's tracking id.
    pub tracking_id: &'a str,
    /// The body.
    pub body: RequestBody,
}

/// What the handling inside [`enveloped`] answers: the response or the error, and the caller
/// once the token was known (for the journal).
#[derive(Debug)]
pub struct Handled {
    /// The answer.
    pub result: Result<Response, ApiError>,
    /// Who called.
    pub caller: Option<Caller>,
    /// The fault injected into it, if any.
    pub fault: Option<InjectedFault>,
}

/// A fault injected into an exchange, as the journal, the console and the response show it.
#[derive(Debug, Clone)]
pub struct InjectedFault {
    /// `fault-2 (gateway): status 503`.
    pub description: Arc<str>,
    /// No answer went out (a reset or an empty reply).
    pub unanswered: bool,
    /// The answer's JSON is cut short.
    pub malformed: bool,
}

/// The response header that marks an answer a fault shaped (the rule and what it did).
pub const FAULT_MARK: HeaderName = HeaderName::from_static("x-wxcc-mock-fault");

/// How [`enveloped`] handles an exchange once its tracking id and body are known: an endpoint
/// of the table, or a fallback's ready answer.
pub trait Handle: Send + 'static {
    /// Handles `incoming` with `state`.
    fn handle<'a>(
        self,
        state: &'a AppState,
        incoming: Incoming<'a>,
    ) -> impl std::future::Future<Output = Handled> + Send;
}

/// A fallback's answer: the error, whatever came.
#[derive(Debug)]
struct Unhandled(ApiError);

impl Handle for Unhandled {
    async fn handle(self, _: &AppState, _: Incoming<'_>) -> Handled {
        Handled { result: Err(self.0), caller: None, fault: None }
    }
}

/// Handles `request` inside the envelope: a tracking id for the response (the request's
/// `TrackingId`, or `<SERVICE>_<uuid>`), the body read once (bounded), errors rendered in the
/// envelope of the path's service with `X-Wxcc-Mock-Diagnostic` on every 4xx, and the whole
/// exchange journaled (WxCC paths only). Every route and both fallbacks answer through it.
///
/// What needs no waiting is done before the future is made, so the future holds the request's
/// parts once (an `async fn` would hold the request it was given as well, for as long as it
/// runs): it is moved, and boxed, on every request.
pub fn enveloped(
    state: AppState,
    service: Option<Service>,
    body_limit: usize,
    request: Request,
    handle: impl Handle,
) -> impl std::future::Future<Output = Response> + Send {
    let started = std::time::Instant::now();
    let service = service.unwrap_or_else(|| Service::for_path(request.uri().path()));
    let journaled = service != Service::Admin && request.uri().path() != "/openapi.json";
    let chosen = find_header(request.headers(), &TRACKING_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.len() <= 256);
    let (tracking, tracking_header): (String, HeaderValue) = match chosen {
        Some(chosen) => (chosen.into(), header_text(chosen)),
        None => {
            let made = crate::ids::prefixed(service.tracking_prefix());
            // A prefix and a UUID: a valid header value as it is.
            let header = HeaderValue::from_str(&made).unwrap_or_else(|_| header_text(&made));
            (made, header)
        }
    };
    let (parts, body) = request.into_parts();
    async move {
        let state = &state;
        let body = read_request_body(body, body_limit).await;
        let record = journaled.then(|| RequestRecord::capture(&parts, &body));
        let Handled { result, caller, fault } =
            handle.handle(state, Incoming { parts, tracking_id: &tracking, body }).await;
        let (mut response, error) = match result {
            // Boxed: rare, and its state would otherwise make every exchange's future larger.
            Ok(response) if refused(&response) => Box::pin(refused_by_axum(response)).await,
            Ok(response) => (response, None),
            Err(error) => (error.status.into_response(), Some(Arc::new(error))),
        };
        if let Some(error) = &error {
            let mut rendered = match error.retry_after {
                // A 429 "will not have a body" (facts §2.4).
                Some(seconds) => (error.status, [(header::RETRY_AFTER, HeaderValue::from(seconds))]).into_response(),
                None => json_response(error.status, &service.error_body(error.status, &error.messages, &tracking)),
            };
            if error.status.is_client_error() {
                rendered.headers_mut().insert(DIAGNOSTIC, header_text(&error.diagnostic));
            }
            // Keep headers such as Allow or Retry-After that the inner response had.
            for (name, value) in response.headers() {
                if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
                    rendered.headers_mut().entry(name.clone()).or_insert_with(|| value.clone());
                }
            }
            response = rendered;
        }
        response.headers_mut().insert(TRACKING_ID, tracking_header);
        if let Some(fault) = &fault {
            if fault.malformed {
                response = Box::pin(malformed(response)).await;
            }
            // The console shows it with the exchange's journal line.
            response.headers_mut().insert(FAULT_MARK, header_text(&fault.description));
        }
        let Some(record) = record else { return response };
        let (parts, body) = response.into_parts();
        // A switch of protocols keeps its body as it is; any other answer is read whole, recorded,
        // and handed on (not copied) as the body that goes out.
        let (kept, bytes) = if parts.status == StatusCode::SWITCHING_PROTOCOLS {
            (Some(body), Bytes::new())
        } else {
            (None, whole_body(body).await)
        };
        let latency_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        let entry = record.finish(state, &tracking, caller, &parts, &bytes, error, fault, latency_us);
        state.journal().append(entry);
        Response::from_parts(parts, kept.unwrap_or_else(|| Body::from(bytes)))
    }
}

/// The bytes of a body the mock made (read whole: the client gets them all; the journal keeps
/// the first [`MAX_BODY_BYTES`]). Its answers are one frame; more are joined.
async fn whole_body(mut body: Body) -> Bytes {
    use http_body_util::BodyExt;
    let mut whole = Vec::new();
    while let Some(frame) = body.frame().await {
        let Ok(Ok(data)) = frame.map(|frame| frame.into_data()) else { break };
        if whole.is_empty() && axum::body::HttpBody::is_end_stream(&body) {
            return data;
        }
        whole.extend_from_slice(&data);
    }
    Bytes::from(whole)
}

/// The answer with its JSON cut short (the first half, or `{"trackingId":"` for an empty body).
async fn malformed(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    let bytes = whole_body(body).await;
    let cut = if bytes.len() < 2 { Bytes::from_static(b"{\"trackingId\":\"") } else { bytes.slice(..bytes.len() / 2) };
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Response::from_parts(parts, Body::from(cut))
}

/// Whether a handler's response is an error without a JSON body (see [`refused_by_axum`]).
fn refused(response: &Response) -> bool {
    let status = response.status();
    (status.is_client_error() || status.is_server_error()) && !is_json(response.headers())
}

/// A response a handler made without an [`ApiError`] that is still an error without a JSON body
/// (one [`refused`] picks out: a rejection by axum itself): answered in the envelope all the
/// same, explained with its text.
async fn refused_by_axum(response: Response) -> (Response, Option<Arc<ApiError>>) {
    let status = response.status();
    let reason = status.canonical_reason().unwrap_or("Error");
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 2048).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let diagnostic = if text.trim().is_empty() {
        format!("The request was refused: {reason}.")
    } else {
        format!("The request was refused: {}.", text.trim())
    };
    (Response::from_parts(parts, Body::empty()), Some(Arc::new(ApiError::new(status, reason, diagnostic))))
}

/// What the journal keeps of an exchange, as one compact record (read back by [`HTTP_RECORD`]):
/// the request's part is written before the handler has the request (its method, path and
/// query, its `name: value` header lines without `Authorization`, the raw `Authorization`), the
/// rest once it is answered. The journal copies the record into its ring as it is: recording an
/// exchange costs one buffer and no JSON; it is rendered only when someone reads it.
///
/// Each text is a little-endian `u32` length and its bytes (`u32::MAX`: none); the request body
/// is a tag byte first (see [`BODY_BYTES`]); the status (`u16`) and latency (`u64`) end it.
#[derive(Debug)]
struct RequestRecord {
    method: axum::http::Method,
    record: Vec<u8>,
    /// Where the path and the raw `Authorization` value are in `record`.
    path: std::ops::Range<usize>,
    authorization: Option<std::ops::Range<usize>>,
    /// The body, shared with the handler until the exchange is answered.
    body: RequestBody,
}

/// The most of a path, message or body a violation record keeps, in bytes.
const VIOLATION_TEXT_BYTES: usize = 2048;

/// `text` cut to at most `max` bytes (on a character boundary), marked when cut.
fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… [{} bytes]", &text[..end], text.len())
}

/// Room kept in a record for its answer (header lines, a small body, the tracking id, caller
/// and the rest): a larger answer grows the buffer once.
const RESPONSE_PART_GUESS: usize = 512;

/// The request body's tags in a record: none, bytes, over the limit, unreadable (with the error).
const BODY_EMPTY: u8 = 0;
const BODY_BYTES: u8 = 1;
const BODY_TOO_LARGE: u8 = 2;
const BODY_UNREADABLE: u8 = 3;

/// Appends a length-prefixed text to a record.
fn put(record: &mut Vec<u8>, bytes: &[u8]) {
    record.extend_from_slice(&u32::try_from(bytes.len()).unwrap_or(u32::MAX - 1).to_le_bytes());
    record.extend_from_slice(&bytes[..bytes.len().min(u32::MAX as usize - 1)]);
}

/// Appends a text that may be absent.
fn put_some(record: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        Some(bytes) => put(record, bytes),
        None => record.extend_from_slice(&u32::MAX.to_le_bytes()),
    }
}

/// Appends header lines as one length-prefixed text (its length written once they are); the
/// `Authorization` header it left out, if there was one.
fn put_header_lines<'h>(record: &mut Vec<u8>, headers: &'h HeaderMap) -> Option<&'h HeaderValue> {
    let at = record.len();
    record.extend_from_slice(&[0; 4]);
    let authorization = push_header_lines(record, headers);
    let len = u32::try_from(record.len() - at - 4).unwrap_or(u32::MAX - 1);
    record[at..at + 4].copy_from_slice(&len.to_le_bytes());
    authorization
}

impl RequestRecord {
    fn capture(parts: &Parts, body: &RequestBody) -> RequestRecord {
        // The URI knows where its query is: most have none, and then nothing to look through.
        let path = match parts.uri.path_and_query() {
            Some(path) if path.query().is_some() => redact_uri(path.as_str()),
            Some(path) => std::borrow::Cow::Borrowed(path.as_str()),
            None => std::borrow::Cow::Borrowed(parts.uri.path()),
        };
        let body_len = match body {
            RequestBody::Bytes(bytes) => bytes.len(),
            _ => 0,
        };
        let mut record = Vec::with_capacity(
            16 + parts.method.as_str().len() + path.len() + lines_len(&parts.headers) + body_len + RESPONSE_PART_GUESS,
        );
        put(&mut record, parts.method.as_str().as_bytes());
        put(&mut record, path.as_bytes());
        let path = record.len() - path.len()..record.len();
        let authorization = put_header_lines(&mut record, &parts.headers).map(HeaderValue::as_bytes);
        // As it came, like the header lines: bytes that are not UTF-8 become U+FFFD when read.
        put_some(&mut record, authorization);
        let authorization = authorization.map(|raw| record.len() - raw.len()..record.len());
        RequestRecord { method: parts.method.clone(), record, path, authorization, body: body.clone() }
    }

    fn path(&self) -> &str {
        std::str::from_utf8(&self.record[self.path.clone()]).unwrap_or_default()
    }

    fn authorization(&self) -> Option<std::borrow::Cow<'_, str>> {
        self.authorization.clone().map(|range| String::from_utf8_lossy(&self.record[range]))
    }

    /// The record, complete, with the console's line.
    #[allow(clippy::too_many_arguments)]
    fn finish(
        mut self,
        state: &AppState,
        tracking_id: &str,
        caller: Option<Caller>,
        response: &axum::http::response::Parts,
        response_body: &[u8],
        error: Option<Arc<ApiError>>,
        fault: Option<InjectedFault>,
        latency_us: u64,
    ) -> Draft {
        // Status 0: nothing was answered (a reset or an empty reply).
        let status = if fault.as_ref().is_some_and(|f| f.unanswered) { 0 } else { response.status.as_u16() };
        let level = if status >= 500 || fault.is_some() { Level::Warn } else { Level::Info };
        let diagnostic = error.filter(|e| e.status.is_client_error());
        let line = if crate::outputs::journal::wants_line(level) {
            format!(
                "{} {} {} {tracking_id} {}{}{}",
                self.method,
                self.path(),
                status,
                caller.as_ref().map_or("-", Caller::email),
                fault.as_ref().map(|f| format!(" [fault {}]", f.description)).unwrap_or_default(),
                diagnostic.as_ref().map(|d| format!(": {}", d.diagnostic)).unwrap_or_default()
            )
        } else {
            String::new()
        };
        // Who a token belonged to is settled now (the caller, or for a refused token a look-up);
        // the rest is rendered when the entry is read.
        let token_owner = match caller {
            None => self
                .authorization()
                .and_then(|raw| state.token_owner(raw.split_whitespace().nth(1).unwrap_or_default())),
            Some(_) => None,
        };
        let record = &mut self.record;
        match &self.body {
            RequestBody::Empty => record.push(BODY_EMPTY),
            RequestBody::Bytes(bytes) => {
                record.push(BODY_BYTES);
                put(record, bytes);
            }
            RequestBody::TooLarge => record.push(BODY_TOO_LARGE),
            RequestBody::Unreadable(e) => {
                record.push(BODY_UNREADABLE);
                put(record, e.as_bytes());
            }
        }
        put_header_lines(record, &response.headers);
        // The journal shows no more of a body than this (and says how long it was).
        put(record, &response_body[..response_body.len().min(MAX_BODY_BYTES)]);
        record.extend_from_slice(&(response_body.len() as u64).to_le_bytes());
        put(record, tracking_id.as_bytes());
        put_some(record, caller.as_ref().map(|c| c.email().as_bytes()));
        put_some(record, token_owner.as_ref().map(String::as_bytes));
        put_some(record, diagnostic.as_ref().map(|d| d.diagnostic.as_bytes()));
        put_some(record, fault.as_ref().map(|f| f.description.as_bytes()));
        record.extend_from_slice(&status.to_le_bytes());
        record.extend_from_slice(&latency_us.to_le_bytes());
        let fields = Fields::Encoded { bytes: self.record, codec: &HTTP_RECORD };
        Draft { at: state.now_ms(), kind: Kind::Http, line, level, fields }
    }
}

/// Reads a record's texts in order (see [`RequestRecord`]); `None` past its end or for an
/// absent text.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            self.0 = &[];
            return None;
        }
        let (taken, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(taken)
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let len = u32::from_le_bytes(self.take(4)?.try_into().ok()?);
        if len == u32::MAX {
            return None;
        }
        self.take(len as usize)
    }

    fn text(&mut self) -> Option<&'a str> {
        std::str::from_utf8(self.bytes()?).ok()
    }

    fn byte(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
}

/// A request body as a record holds it.
enum BodyRef<'a> {
    Empty,
    Bytes(&'a [u8]),
    TooLarge,
    Unreadable(&'a str),
}

/// One WxCC exchange as a record holds it (see [`RequestRecord`]).
struct HttpView<'a> {
    method: &'a str,
    path: &'a str,
    header_lines: std::borrow::Cow<'a, str>,
    /// As it came (shown lossily, and only as its owner and a prefix).
    authorization: Option<&'a [u8]>,
    body: BodyRef<'a>,
    response_header_lines: std::borrow::Cow<'a, str>,
    /// The first [`MAX_BODY_BYTES`] of the response body, and its whole length.
    response_body: &'a [u8],
    response_body_len: u64,
    tracking_id: &'a str,
    caller: Option<&'a str>,
    /// The owner of a token that was refused (the caller's own otherwise).
    token_owner: Option<&'a str>,
    diagnostic: Option<&'a str>,
    fault: Option<&'a str>,
    status: u16,
    latency_us: u64,
}

impl<'a> HttpView<'a> {
    fn read(record: &'a [u8]) -> HttpView<'a> {
        let mut r = Reader(record);
        let method = r.text().unwrap_or_default();
        let path = r.text().unwrap_or_default();
        let header_lines = String::from_utf8_lossy(r.bytes().unwrap_or_default());
        let authorization = r.bytes();
        let body = match r.byte() {
            Some(BODY_BYTES) => BodyRef::Bytes(r.bytes().unwrap_or_default()),
            Some(BODY_TOO_LARGE) => BodyRef::TooLarge,
            Some(BODY_UNREADABLE) => BodyRef::Unreadable(r.text().unwrap_or_default()),
            Some(BODY_EMPTY) | None | Some(_) => BodyRef::Empty,
        };
        let response_header_lines = String::from_utf8_lossy(r.bytes().unwrap_or_default());
        let response_body = r.bytes().unwrap_or_default();
        let response_body_len = r.take(8).and_then(|b| b.try_into().ok()).map_or(0, u64::from_le_bytes);
        let tracking_id = r.text().unwrap_or_default();
        let caller = r.text();
        let token_owner = r.text();
        let diagnostic = r.text();
        let fault = r.text();
        let status = r.take(2).and_then(|b| b.try_into().ok()).map_or(0, u16::from_le_bytes);
        let latency_us = r.take(8).and_then(|b| b.try_into().ok()).map_or(0, u64::from_le_bytes);
        HttpView {
            method,
            path,
            header_lines,
            authorization,
            body,
            response_header_lines,
            response_body,
            response_body_len,
            tracking_id,
            caller,
            token_owner,
            diagnostic,
            fault,
            status,
            latency_us,
        }
    }

    fn write_fields(&self, out: &mut String) {
        let head = Exchange {
            method: self.method,
            path: self.path,
            status: self.status,
            tracking_id: self.tracking_id,
            caller: self.caller,
            diagnostic: self.diagnostic,
            fault: self.fault,
            latency_us: self.latency_us,
        };
        out.push_str(&members(&head));
        out.push_str(",\"requestHeaders\":{");
        let headers = members(&HeaderLines(&self.header_lines));
        out.push_str(&headers);
        if let Some(raw) = self.authorization.map(String::from_utf8_lossy) {
            // Reduced to the token's owner and a prefix: the token itself is never shown.
            let token = raw.split_whitespace().nth(1).unwrap_or_default();
            let owner = self.caller.or(self.token_owner);
            if !headers.is_empty() {
                out.push(',');
            }
            out.push_str("\"authorization\":");
            out.push_str(&serde_json::to_string(&token_hint(token, owner)).unwrap_or_default());
        }
        out.push('}');
        match self.body {
            BodyRef::Bytes(bytes) => push_body(out, "requestBody", &redact_body(bytes), false),
            BodyRef::TooLarge => {
                let text = format!("[over {BODY_LIMIT} bytes: not read]");
                push_body(out, "requestBody", serde_json::to_string(&text).unwrap_or_default().as_bytes(), true);
            }
            BodyRef::Unreadable(e) => {
                let text = format!("[unreadable: {e}]");
                push_body(out, "requestBody", serde_json::to_string(&text).unwrap_or_default().as_bytes(), true);
            }
            BodyRef::Empty => {}
        }
        out.push_str(",\"responseHeaders\":{");
        out.push_str(&members(&HeaderLines(&self.response_header_lines)));
        out.push('}');
        // The mock made its JSON bodies itself: they go in without being parsed again.
        let json = self.response_header_lines.lines().any(|l| l.starts_with("content-type: ") && l.contains("json"));
        let whole = usize::try_from(self.response_body_len).unwrap_or(usize::MAX).max(self.response_body.len());
        push_cut_body(out, "responseBody", self.response_body, whole, json);
    }
}

/// How the journal reads an exchange's record back.
static HTTP_RECORD: Codec = Codec {
    render: |record, out| HttpView::read(record).write_fields(out),
    bearer: |record| std::str::from_utf8(HttpView::read(record).authorization?).ok()?.split_whitespace().nth(1),
};

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Exchange<'a> {
    method: &'a str,
    path: &'a str,
    status: u16,
    tracking_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    caller: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    diagnostic: Option<&'a str>,
    /// The fault injected into the exchange (`fault-2: status 503`).
    #[serde(skip_serializing_if = "Option::is_none")]
    fault: Option<&'a str>,
    latency_us: u64,
}

/// Appends headers as `name: value` lines, `Authorization` left out (rendered when read) and
/// answered (the first, if there were several). A header value holds no line break
/// (`HeaderValue` refuses them); bytes that are not UTF-8 become U+FFFD when the lines are read.
fn push_header_lines<'h>(out: &mut Vec<u8>, headers: &'h HeaderMap) -> Option<&'h HeaderValue> {
    let mut authorization = None;
    for (name, value) in headers {
        if name == header::AUTHORIZATION {
            // The first, as `HeaderMap::get` would answer.
            authorization = authorization.or(Some(value));
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        if is_secret_header(name) {
            out.extend_from_slice(crate::redact::REDACTED.as_bytes());
            out.push(b'\n');
            continue;
        }
        // As it came (no line break: `HeaderValue` refuses them); read back lossily.
        out.extend_from_slice(value.as_bytes());
        out.push(b'\n');
    }
    authorization
}

/// The length of `headers` as lines, to size the buffer once.
fn lines_len(headers: &HeaderMap) -> usize {
    headers.iter().map(|(name, value)| name.as_str().len() + value.len() + 3).sum()
}

/// `name: value` lines as JSON object members (repeated names joined with `, `).
struct HeaderLines<'a>(&'a str);

impl Serialize for HeaderLines<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut joined: Vec<(&str, String)> = Vec::new();
        for line in self.0.lines() {
            let (name, value) = line.split_once(": ").unwrap_or((line, ""));
            match joined.iter_mut().find(|(n, _)| *n == name) {
                Some((_, existing)) => {
                    existing.push_str(", ");
                    existing.push_str(value);
                }
                None => joined.push((name, value.to_owned())),
            }
        }
        let mut map = serializer.serialize_map(Some(joined.len()))?;
        for (name, value) in &joined {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("json"))
}

/// A header value from arbitrary text: anything but visible ASCII becomes `?`, and it is capped.
pub fn header_text(text: &str) -> HeaderValue {
    if text.len() <= 2000
        && text.bytes().all(|b| b == b' ' || b.is_ascii_graphic())
        && let Ok(value) = HeaderValue::from_str(text)
    {
        return value;
    }
    let clean: String =
        text.chars().take(2000).map(|c| if c == ' ' || c.is_ascii_graphic() { c } else { '?' }).collect();
    HeaderValue::from_str(&clean).unwrap_or_else(|_| HeaderValue::from_static("?"))
}

/// `value` with every number that is whole (`112.0`) written as an integer (`112`).
fn whole_numbers_as_integers(value: Value) -> Value {
    match value {
        Value::Number(n) => match n.as_f64() {
            // Up to 2^53 every whole float is an exact integer; beyond, leave it a float.
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_992.0 => {
                #[allow(clippy::cast_possible_truncation)]
                let i = f as i64;
                Value::from(i)
            }
            _ => Value::Number(n),
        },
        Value::Array(items) => Value::Array(items.into_iter().map(whole_numbers_as_integers).collect()),
        Value::Object(map) => Value::Object(map.into_iter().map(|(k, v)| (k, whole_numbers_as_integers(v))).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exchange(request: Request<Body>, response: Response, response_body: &[u8]) -> crate::outputs::journal::Entry {
        let state = AppState::new(crate::world::World::default_world());
        let (parts, _) = request.into_parts();
        let body = RequestBody::Bytes(Bytes::from_static(br#"{"name":"n","secret":"do-not-show-0123456789"}"#));
        let record = RequestRecord::capture(&parts, &body);
        let tracking = "NOTIFS_test";
        let (response, _) = response.into_parts();
        let draft = record.finish(&state, tracking, None, &response, response_body, None, None, 42);
        let seq = state.journal().append(draft);
        state.journal().query(Some(seq - 1), None, 1).entries[0].as_ref().clone()
    }

    #[test]
    fn an_exchange_reads_back_whole_from_its_record_with_the_token_reduced_and_the_secret_redacted() {
        let request = Request::builder()
            .method("POST")
            .uri("/v1/subscriptions?orgId=o1")
            .header("authorization", "Bearer abcdefghijk_secret_token")
            .header("x-api-key", "also-secret")
            .header("accept", "application/json")
            .body(Body::empty())
            .expect("request");
        let response = (StatusCode::CREATED, [(header::CONTENT_TYPE, "application/json")]).into_response();
        let entry = exchange(request, response, br#"{"id":"s1"}"#);
        assert_eq!(entry.bearer(), Some("abcdefghijk_secret_token"));
        let json = entry.json();
        assert!(
            !json.contains("secret_token") && !json.contains("do-not-show") && !json.contains("also-secret"),
            "{json}"
        );
        let read: Value = serde_json::from_str(&json).expect("json");
        assert_eq!(read["method"], "POST");
        assert_eq!(read["path"], "/v1/subscriptions?orgId=o1");
        assert_eq!(read["status"], 201);
        assert_eq!(read["trackingId"], "NOTIFS_test");
        assert_eq!(read["latencyUs"], 42);
        assert_eq!(read["requestHeaders"]["accept"], "application/json");
        assert_eq!(read["requestHeaders"]["authorization"], "Bearer abcdef… (unknown token)");
        assert_eq!(read["requestBody"]["secret"], "[redacted]");
        assert_eq!(read["responseHeaders"]["content-type"], "application/json");
        assert_eq!(read["responseBody"], serde_json::json!({"id": "s1"}));
    }

    #[test]
    fn header_bytes_that_are_not_utf8_read_back_as_replacement_characters() {
        let mut request = Request::builder().uri("/v1/tasks").body(Body::empty()).expect("request");
        let odd = HeaderValue::from_bytes(b"caf\xe9").expect("obs-text is a valid header value");
        request.headers_mut().insert("x-odd", odd.clone());
        request.headers_mut().insert(header::AUTHORIZATION, HeaderValue::from_bytes(b"Bearer t\xe9st").expect("value"));
        let mut response = StatusCode::OK.into_response();
        response.headers_mut().insert("x-odd-too", odd);
        let read: Value = serde_json::from_str(&exchange(request, response, b"").json()).expect("json");
        assert_eq!(read["requestHeaders"]["x-odd"], "caf\u{fffd}");
        assert_eq!(read["responseHeaders"]["x-odd-too"], "caf\u{fffd}");
        assert_eq!(read["requestHeaders"]["authorization"], "Bearer t\u{fffd}st… (unknown token)");
    }

    #[tokio::test]
    async fn a_body_is_read_whole_its_one_frame_as_it_is_and_several_frames_joined() {
        let one = Bytes::from_static(b"{\"data\":[]}");
        let read = whole_body(Body::from(one.clone())).await;
        assert_eq!(read.as_ptr(), one.as_ptr(), "one frame: the same bytes, not a copy");
        let frames = futures_util::stream::iter(
            ["ab", "", "cd", "ef"].map(|part| Ok::<_, std::io::Error>(Bytes::from_static(part.as_bytes()))),
        );
        assert_eq!(whole_body(Body::from_stream(frames)).await, Bytes::from_static(b"abcdef"));
        assert!(whole_body(Body::empty()).await.is_empty());
    }

    #[test]
    fn a_header_is_found_by_a_scan_in_a_small_map_and_by_the_look_up_in_a_large_one_alike() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("localhost"));
        headers.append(TRACKING_ID, HeaderValue::from_static("first"));
        headers.append(TRACKING_ID, HeaderValue::from_static("second"));
        let mut large = headers.clone();
        for i in 0..10 {
            large.insert(
                HeaderName::from_bytes(format!("x-filler-{i}").as_bytes()).expect("name"),
                HeaderValue::from(i),
            );
        }
        assert!(headers.len() <= 8 && large.len() > 8);
        for map in [&headers, &large] {
            assert_eq!(find_header(map, &TRACKING_ID), map.get(&TRACKING_ID), "the first of two values");
            assert_eq!(find_header(map, &TRACKING_ID).map(HeaderValue::as_bytes), Some(&b"first"[..]));
            assert_eq!(find_header(map, &header::HOST).map(HeaderValue::as_bytes), Some(&b"localhost"[..]));
            assert_eq!(find_header(map, &header::AUTHORIZATION), None);
            assert_eq!(find_header(map, &DIAGNOSTIC), None);
        }
    }

    #[test]
    fn a_long_response_body_is_kept_cut_with_its_whole_length() {
        let request = Request::builder().uri("/v1/tasks").body(Body::empty()).expect("request");
        let long = vec![b'x'; MAX_BODY_BYTES * 3];
        let response = (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")]).into_response();
        let entry = exchange(request, response, &long);
        let read: Value = serde_json::from_str(&entry.json()).expect("json");
        let shown = read["responseBody"].as_str().expect("text");
        assert!(
            shown.ends_with(&format!("… [cut: {} bytes in all]", MAX_BODY_BYTES * 3)),
            "{}",
            &shown[shown.len() - 60..]
        );
        assert_eq!(shown.bytes().filter(|b| *b == b'x').count(), MAX_BODY_BYTES);
    }
}
