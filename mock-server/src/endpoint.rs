//! What one entry of the endpoint table says: method, path, the operation (and so the scope and
//! role it needs), the request schema, the success status and body, the errors it can answer,
//! and the handler. The router, the auth check, the body check and the OpenAPI document all read
//! it, so adding an endpoint is one entry in [`crate::routes`].

use axum::http::Method;
use axum::response::Response;
use futures_util::future::BoxFuture;
use wxcc_schemas::SchemaId;

use crate::auth::Operation;
use crate::http::{ApiError, Call, Service};

/// A handler: gets a checked [`Call`], answers a response or an error.
pub type Handler = for<'a> fn(Call<'a>) -> BoxFuture<'a, Result<Response, ApiError>>;

/// Turns an `async fn(Call) -> Result<Response, ApiError>` into a [`Handler`].
#[macro_export]
macro_rules! handler {
    ($f:path) => {{
        fn boxed(
            call: $crate::http::Call<'_>,
        ) -> futures_util::future::BoxFuture<'_, Result<axum::response::Response, $crate::http::ApiError>> {
            Box::pin($f(call))
        }
        boxed as $crate::endpoint::Handler
    }};
}

/// The request body an endpoint takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestSpec {
    /// Its schema.
    pub schema: SchemaId,
    /// Whether a body must be sent (otherwise an empty one counts as `{}`).
    pub required: bool,
}

/// A query parameter an endpoint reads (for the OpenAPI document; the handler parses it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryParam {
    /// Its name.
    pub name: &'static str,
    /// Whether the endpoint answers 400 without it.
    pub required: bool,
    /// Its JSON Schema, as JSON text.
    pub schema: &'static str,
    /// One line.
    pub description: &'static str,
}

/// One operation the mock serves.
#[derive(Clone)]
pub struct Endpoint {
    /// HTTP method.
    pub method: Method,
    /// Path, with `{param}`s as axum writes them.
    pub path: &'static str,
    /// `operationId`.
    pub id: &'static str,
    /// One line.
    pub summary: &'static str,
    /// What it needs (`None`: no token, the mock's own API or the websocket).
    pub operation: Option<Operation>,
    /// The request body, if it takes one.
    pub request: Option<RequestSpec>,
    /// Success status.
    pub success: u16,
    /// Success body schema (`None`: no body, or a free-form object).
    pub response: Option<SchemaId>,
    /// The success body's media type.
    pub media_type: &'static str,
    /// Error statuses beyond the ones its checks imply.
    pub extra_errors: &'static [u16],
    /// The service whose envelope its errors use, when it is not the one its path says.
    pub service_override: Option<Service>,
    /// The query parameters it reads.
    pub query: &'static [QueryParam],
    /// The largest request body it reads (bytes); past it, 413.
    pub body_limit: usize,
    /// Under `/__admin`: whether `--admin-token` guards it (all but the dashboard's page).
    pub admin_token: bool,
    /// The handler.
    pub handler: Handler,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("id", &self.id)
            .finish()
    }
}

impl Endpoint {
    /// An endpoint answering `success` with no body, no token and no request body (yet).
    pub fn new(method: Method, path: &'static str, id: &'static str, handler: Handler) -> Endpoint {
        Endpoint {
            method,
            path,
            id,
            summary: "",
            operation: None,
            request: None,
            success: 200,
            response: None,
            media_type: "application/json",
            extra_errors: &[],
            service_override: None,
            query: &[],
            admin_token: true,
            body_limit: crate::http::BODY_LIMIT,
            handler,
        }
    }

    /// Its summary line.
    pub fn summary(mut self, summary: &'static str) -> Endpoint {
        self.summary = summary;
        self
    }

    /// It needs a token that may do `op`.
    pub fn auth(mut self, op: Operation) -> Endpoint {
        self.operation = Some(op);
        self
    }

    /// It takes a body that must match `schema`.
    pub fn body(mut self, schema: SchemaId) -> Endpoint {
        self.request = Some(RequestSpec { schema, required: true });
        self
    }

    /// It takes a body that must match `schema`, or none (`{}`).
    pub fn optional_body(mut self, schema: SchemaId) -> Endpoint {
        self.request = Some(RequestSpec { schema, required: false });
        self
    }

    /// It answers `status` on success.
    pub fn success(mut self, status: u16) -> Endpoint {
        self.success = status;
        self
    }

    /// Its success body matches `schema`.
    pub fn returns(mut self, schema: SchemaId) -> Endpoint {
        self.response = Some(schema);
        self
    }

    /// Its success is a Server-Sent Events stream (`text/event-stream`), not JSON.
    pub fn event_stream(mut self) -> Endpoint {
        self.media_type = "text/event-stream";
        self
    }

    /// Its success is a web page (`text/html`), not JSON.
    pub fn html(mut self) -> Endpoint {
        self.media_type = "text/html";
        self
    }

    /// `--admin-token` does not guard it: a page that holds nothing secret and asks for the token
    /// to read the rest (the Host gate still applies).
    pub fn without_admin_token(mut self) -> Endpoint {
        self.admin_token = false;
        self
    }

    /// It can also answer these statuses.
    pub fn errors(mut self, statuses: &'static [u16]) -> Endpoint {
        self.extra_errors = statuses;
        self
    }

    /// It reads bodies up to `bytes` (instead of [`crate::http::BODY_LIMIT`]).
    pub fn body_limit(mut self, bytes: usize) -> Endpoint {
        self.body_limit = bytes;
        self
    }

    /// It reads these query parameters.
    pub fn query(mut self, params: &'static [QueryParam]) -> Endpoint {
        self.query = params;
        self
    }

    /// Its errors use `service`'s envelope (`GET /v1/tasks` is reporting, `/v1/tasks/*` call control).
    pub fn in_service(mut self, service: Service) -> Endpoint {
        self.service_override = Some(service);
        self
    }

    /// The service whose envelope its errors use.
    pub fn service(&self) -> Service {
        self.service_override.unwrap_or_else(|| Service::for_path(self.path))
    }

    /// Every error status it can answer: what its checks imply (400/401/403 for a token,
    /// 400/413/415 for a body, 404 for an id in the path, 405 for another method), and its extras.
    pub fn error_statuses(&self) -> Vec<u16> {
        let mut all = vec![405];
        if self.operation.is_some() {
            // 429 with --rate-limit.
            all.extend([400, 401, 403, 429]);
        }
        if self.request.is_some() {
            all.extend([400, 413, 415]);
        }
        if self.path.contains("{id}") {
            all.push(404);
        }
        if self.service() == Service::Admin {
            // The admin gate: a Host that does not name the mock (403), a missing --admin-token
            // (401), a state-changing request that is not JSON (415).
            all.push(403);
            if self.admin_token {
                all.push(401);
            }
            if self.method != Method::GET {
                all.push(415);
            }
        }
        all.extend(self.extra_errors);
        all.sort_unstable();
        all.dedup();
        all
    }
}
