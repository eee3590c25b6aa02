//! The WxCC contract as data.
//!
//! Every wire message the mock speaks has one JSON Schema 2020-12 file under `schemas/json/`.
//! This crate embeds those files, puts them in one registry (so `common.json#/$defs/...`
//! references resolve offline), compiles each validator once, and reports violations with the
//! JSON pointer, the rule and a plain message:
//!
//! ```
//! use wxcc_schemas::{SchemaId, validate};
//! let body = serde_json::json!({"name": "crm", "eventTypes": [], "destinationUrl": "https://x.example/h"});
//! let violations = validate(SchemaId::SubscriptionCreateRequest, &body).unwrap_err();
//! let text: Vec<String> = violations.iter().map(ToString::to_string).collect();
//! assert!(text.contains(&"/name: must be at least 4 characters".to_string()));
//! assert!(text.contains(&"/eventTypes: must have at least 1 item".to_string()));
//! ```

use std::fmt;
use std::sync::{LazyLock, OnceLock};

use jsonschema::error::{TypeKind, ValidationErrorKind};
use serde_json::Value;

#[cfg(feature = "testing")]
pub mod testing;

/// Where every schema's `$id` lives. `.invalid` is reserved, so nothing is ever fetched.
pub const BASE_URI: &str = "https://wxcc-mock.invalid/schemas/";

macro_rules! schemas {
    ($( $(#[$doc:meta])* $variant:ident => $file:literal ),+ $(,)?) => {
        /// One schema file under `schemas/json/`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum SchemaId {
            $( $(#[$doc])* $variant, )+
        }

        impl SchemaId {
            /// Every schema, in declaration order.
            pub const ALL: &'static [SchemaId] = &[$(SchemaId::$variant),+];

            /// The file's name without `.json`; what `wxcc-mock validate --schema` takes.
            pub fn name(self) -> &'static str {
                match self { $(SchemaId::$variant => $file,)+ }
            }

            /// The schema file's text, as committed.
            pub fn source(self) -> &'static str {
                match self { $(SchemaId::$variant => include_str!(concat!("../json/", $file, ".json")),)+ }
            }
        }
    };
}

schemas! {
    /// Shared `$defs`; not a message of its own.
    Common => "common",
    /// `POST /v1/agents/login` body.
    AgentLoginRequest => "agent-login-request",
    /// `PUT|POST /v1/agents/logout` body.
    AgentLogoutRequest => "agent-logout-request",
    /// `PUT /v1/agents/session/state` body.
    AgentStateChangeRequest => "agent-state-change-request",
    /// `POST /v1/agents/reload` body.
    AgentReloadRequest => "agent-reload-request",
    /// Error body of the agent endpoints.
    AgentErrorResponse => "agent-error-response",
    /// `POST /v1/subscriptions` body.
    SubscriptionCreateRequest => "subscription-create-request",
    /// `PATCH /v1/subscriptions/{id}` body.
    SubscriptionUpdateRequest => "subscription-update-request",
    /// One subscription (201 on create, 200 on get and patch).
    SubscriptionResponse => "subscription-response",
    /// `GET /v1/subscriptions` body.
    SubscriptionListResponse => "subscription-list-response",
    /// `GET /v1/event-types` body.
    EventTypesResponse => "event-types-response",
    /// `ErrorResult`: the subscriptions service's error body (integer `key`).
    ErrorResult => "error-result",
    /// `ApiErrorResponse`: the config and reporting services' error body (string `key`).
    ApiErrorResponse => "api-error-response",
    /// `POST /__admin/tokens` body.
    AdminTokenRequest => "admin-token-request",
    /// `POST /__admin/tokens` 201 body.
    AdminTokenResponse => "admin-token-response",
    /// `POST /__admin/clock/advance` body.
    AdminClockAdvanceRequest => "admin-clock-advance-request",
    /// `POST /__admin/clock/set` body.
    AdminClockSetRequest => "admin-clock-set-request",
    /// `GET /__admin/clock` body (and the answer to advance and set).
    AdminClockResponse => "admin-clock-response",
    /// `POST /v2/subscriptions` body.
    SubscriptionV2CreateRequest => "subscription-v2-create-request",
    /// `PATCH /v2/subscriptions/{id}` body.
    SubscriptionV2UpdateRequest => "subscription-v2-update-request",
    /// One v2 subscription.
    SubscriptionV2Response => "subscription-v2-response",
    /// `GET /v2/subscriptions` body.
    SubscriptionV2ListResponse => "subscription-v2-list-response",
    /// `GET /v2/event-types` body.
    EventTypesV2Response => "event-types-v2-response",
    /// `POST /v1/agents/buddyList` body.
    BuddyListRequest => "buddy-list-request",
    /// `POST /v1/notification/subscribe` body.
    NotificationSubscribeRequest => "notification-subscribe-request",
    /// `POST /v1/notification/subscribe` 200 body.
    NotificationSubscribeResponse => "notification-subscribe-response",
    /// Websocket `Welcome`.
    WsWelcome => "ws-welcome",
    /// Websocket keep-alive.
    WsKeepalive => "ws-keepalive",
    /// Websocket `AGENT_MULTI_LOGIN`.
    WsAgentMultiLogin => "ws-agent-multi-login",
    /// Websocket `StationLogin` / `AgentStationLoginSuccess`.
    WsStationLoginSuccess => "ws-station-login-success",
    /// Websocket `AgentReloginSuccess`.
    WsReloginSuccess => "ws-relogin-success",
    /// Websocket `AgentStateChange` / `AgentStateChangeSuccess`.
    WsStateChangeSuccess => "ws-state-change-success",
    /// Websocket `Logout` / `AgentLogoutSuccess`.
    WsLogoutSuccess => "ws-logout-success",
    /// Websocket `BuddyAgents`.
    WsBuddyAgents => "ws-buddy-agents",
    /// Websocket `...Failed` outcomes.
    WsAgentFailure => "ws-agent-failure",
    /// A webhook delivery body.
    WebhookEvent => "webhook-event",
    /// `GET /organization/{orgId}/user/by-ci-user-id/{userId}`.
    ConfigUser => "config-user",
    /// `GET /organization/{orgId}`.
    ConfigOrganization => "config-organization",
    /// `GET /organization/{orgId}/v2/organization-setting`.
    ConfigOrganizationSettingList => "config-organization-setting-list",
    /// `GET /organization/{orgId}/v2/tenant-configuration`.
    ConfigTenantConfigurationList => "config-tenant-configuration-list",
    /// `GET /organization/{orgId}/v2/org-url-mapping`.
    ConfigUrlMappingList => "config-url-mapping-list",
    /// `GET /organization/{orgId}/v2/ai-feature`.
    ConfigAiFeaturePage => "config-ai-feature-page",
    /// `GET /organization/{orgId}/v2/auxiliary-code`.
    ConfigAuxiliaryCodePage => "config-auxiliary-code-page",
    /// `GET /organization/{orgId}/agent-profile/{id}`.
    ConfigAgentProfile => "config-agent-profile",
    /// `GET /organization/{orgId}/site/{id}`.
    ConfigSite => "config-site",
    /// `GET /organization/{orgId}/v2/team`.
    ConfigTeamPage => "config-team-page",
    /// `GET /organization/{orgId}/dial-plan`.
    ConfigDialPlanList => "config-dial-plan-list",
    /// `POST /v1/tasks` body (an outdial).
    TaskCreateRequest => "task-create-request",
    /// `POST /v1/tasks` 201 body.
    TaskCreateResponse => "task-create-response",
    /// `GET /v1/tasks` body.
    TaskListResponse => "task-list-response",
    /// `POST /v1/tasks/{id}/hold`, `/unhold`, `/reject` body.
    TaskMediaResourceRequest => "task-media-resource-request",
    /// `POST /v1/tasks/{id}/wrapup` body.
    TaskWrapupRequest => "task-wrapup-request",
    /// `POST /v1/tasks/{id}/transfer` body.
    TaskTransferRequest => "task-transfer-request",
    /// `POST /v1/tasks/{id}/consult` body.
    TaskConsultRequest => "task-consult-request",
    /// `POST /v1/tasks/{id}/consult/end` body.
    TaskConsultEndRequest => "task-consult-end-request",
    /// `POST /v1/tasks/{id}/consult/conference` and `/consult/transfer` body.
    TaskConferenceRequest => "task-conference-request",
    /// `POST /v1/tasks/{id}/record/resume` body.
    TaskResumeRecordingRequest => "task-resume-recording-request",
    /// The body of a task call that takes none.
    TaskEmptyRequest => "task-empty-request",
    /// `GET /organization/{orgId}/v2/contact-service-queue`.
    ConfigQueuePage => "config-queue-page",
    /// `GET /organization/{orgId}/v2/entry-point`.
    ConfigEntryPointPage => "config-entry-point-page",
    /// `GET /organization/{orgId}/v2/outdial-ani/{id}/entry`.
    ConfigOutdialAniEntryPage => "config-outdial-ani-entry-page",
    /// `POST /__admin/tasks` body.
    AdminTaskRequest => "admin-task-request",
    /// A task as the admin API shows it.
    AdminTaskResponse => "admin-task-response",
    /// `POST /__admin/agents/{id}/device` body.
    AdminDeviceRequest => "admin-device-request",
    /// `POST /__admin/tokens/expire` body.
    AdminTokenExpireRequest => "admin-token-expire-request",
    /// `POST /__admin/faults` body.
    AdminFaultRequest => "admin-fault-request",
    /// A scenario file, and `POST /__admin/scenario` body.
    Scenario => "scenario",
    /// A replay bundle (`GET /__admin/journal/export`, `wxcc-mock replay`).
    Bundle => "bundle",
    /// Websocket `AgentContactReserved`.
    WsAgentContactReserved => "ws-agent-contact-reserved",
    /// Websocket `AgentOfferContact`.
    WsAgentOfferContact => "ws-agent-offer-contact",
    /// Websocket `AgentContactAssigned`.
    WsAgentContactAssigned => "ws-agent-contact-assigned",
    /// Websocket `AgentContactHeld`.
    WsAgentContactHeld => "ws-agent-contact-held",
    /// Websocket `AgentContactUnheld`.
    WsAgentContactUnheld => "ws-agent-contact-unheld",
    /// Websocket `ContactEnded`.
    WsContactEnded => "ws-contact-ended",
    /// Websocket `AgentWrapup`.
    WsAgentWrapup => "ws-agent-wrapup",
    /// Websocket `AgentWrappedUp`.
    WsAgentWrappedUp => "ws-agent-wrapped-up",
    /// Websocket `AgentOfferContactRona`.
    WsAgentOfferContactRona => "ws-agent-offer-contact-rona",
    /// Websocket `AgentInviteFailed`.
    WsAgentInviteFailed => "ws-agent-invite-failed",
    /// Websocket `AgentVteamTransferred`.
    WsAgentVteamTransferred => "ws-agent-vteam-transferred",
    /// Websocket `AgentBlindTransferred`.
    WsAgentBlindTransferred => "ws-agent-blind-transferred",
    /// Websocket `AgentContact` (after a reload).
    WsAgentContact => "ws-agent-contact",
    /// Websocket `AgentContactAssignFailed`.
    WsAgentContactAssignFailed => "ws-agent-contact-assign-failed",
    /// Websocket `AgentOutboundFailed`.
    WsAgentOutboundFailed => "ws-agent-outbound-failed",
    /// Websocket `…Failed` answers to task commands.
    WsTaskFailure => "ws-task-failure",
    /// A world file (`serve --world`): organisations, users, tokens.
    World => "world",
}

/// The v2 resource versions and the event types each offers, in order, read from
/// `common.json#/$defs/eventTypesOfResourceVersion` (the same table the v2 schemas enforce).
pub fn resource_versions() -> &'static [(String, Vec<String>)] {
    static TABLE: LazyLock<Vec<(String, Vec<String>)>> = LazyLock::new(|| {
        let rules = &SchemaId::Common.document()["$defs"]["eventTypesOfResourceVersion"]["allOf"];
        rules
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|rule| {
                let version = rule["if"]["properties"]["resourceVersion"]["const"].as_str()?.to_owned();
                let names = rule["then"]["properties"]["eventTypes"]["items"]["enum"]
                    .as_array()?
                    .iter()
                    .filter_map(|n| n.as_str().map(str::to_owned))
                    .collect();
                Some((version, names))
            })
            .collect()
    });
    &TABLE
}

/// The event types a v2 `resourceVersion` offers; `None` for an unknown version.
pub fn event_types_of(resource_version: &str) -> Option<&'static [String]> {
    resource_versions().iter().find(|(v, _)| v == resource_version).map(|(_, names)| names.as_slice())
}

impl SchemaId {
    /// Looks a schema up by [`SchemaId::name`] (a trailing `.json` is allowed).
    pub fn from_name(name: &str) -> Option<SchemaId> {
        let name = name.strip_suffix(".json").unwrap_or(name);
        SchemaId::ALL.iter().copied().find(|id| id.name() == name)
    }

    /// The schema's `$id`.
    pub fn uri(self) -> String {
        format!("{BASE_URI}{}.json", self.name())
    }

    /// The parsed schema document.
    pub fn document(self) -> &'static Value {
        &DOCUMENTS[self as usize]
    }
}

impl fmt::Display for SchemaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One way an instance breaks a schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// JSON pointer to the offending value (for a missing property: where it should be).
    pub pointer: String,
    /// The JSON Schema keyword that failed (`minLength`, `required`, `type`, ...).
    pub rule: String,
    /// A plain sentence fragment, e.g. `must be at least 32 characters`.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pointer = if self.pointer.is_empty() { "/" } else { &self.pointer };
        write!(f, "{pointer}: {}", self.message)
    }
}

/// Every schema file, parsed once.
static DOCUMENTS: LazyLock<Vec<Value>> = LazyLock::new(|| {
    // The files are part of this crate; a broken one is a bug caught by every test run.
    SchemaId::ALL
        .iter()
        .map(|id| {
            serde_json::from_str(id.source()).unwrap_or_else(|e| panic!("schemas/json/{id}.json is not JSON: {e}"))
        })
        .collect()
});

/// Every schema by its `$id`, so that each can `$ref` the others.
static REGISTRY: LazyLock<jsonschema::Registry<'static>> = LazyLock::new(|| {
    jsonschema::Registry::new()
        .extend(SchemaId::ALL.iter().map(|id| (id.uri(), &DOCUMENTS[*id as usize])))
        .and_then(|builder| builder.prepare())
        .unwrap_or_else(|e| panic!("the schema registry does not build: {e}"))
});

/// Each schema's validator, compiled on first use (or by [`init`]): a caller that needs one
/// that another thread is compiling waits for that one only.
static VALIDATORS: LazyLock<Vec<OnceLock<jsonschema::Validator>>> =
    LazyLock::new(|| SchemaId::ALL.iter().map(|_| OnceLock::new()).collect());

fn validator(id: SchemaId) -> &'static jsonschema::Validator {
    VALIDATORS[id as usize].get_or_init(|| {
        jsonschema::draft202012::options()
            .with_registry(&REGISTRY)
            .should_validate_formats(true)
            .build(&DOCUMENTS[id as usize])
            .unwrap_or_else(|e| panic!("schemas/json/{id}.json does not compile: {e}"))
    })
}

/// Compiles every schema now rather than on first use.
pub fn init() {
    for id in SchemaId::ALL {
        validator(*id);
    }
}

/// Starts compiling every schema on a thread of its own (the first call only), so that a server
/// can listen while they compile (about 25 ms of CPU in all): a request that needs one before
/// then compiles it or waits for it, not for the rest. Should the thread not start, each
/// compiles on first use.
pub fn init_in_background() {
    static STARTED: std::sync::Once = std::sync::Once::new();
    STARTED.call_once(|| {
        let _ = std::thread::Builder::new().name("wxcc-schemas".to_owned()).spawn(init);
    });
}

/// How many errors [`validate`] reads at most: a document wrong in thousands of places costs
/// no more than this to refuse.
pub const MAX_VIOLATIONS: usize = 100;

/// Validates `instance` against one schema, returning its violations (the first
/// [`MAX_VIOLATIONS`] errors the validator finds, described).
pub fn validate(id: SchemaId, instance: &Value) -> Result<(), Vec<Violation>> {
    let validator = validator(id);
    if validator.is_valid(instance) {
        return Ok(());
    }
    let mut violations: Vec<Violation> =
        validator.iter_errors(instance).take(MAX_VIOLATIONS).flat_map(describe).collect();
    violations.sort_by(|a, b| a.pointer.cmp(&b.pointer).then(a.message.cmp(&b.message)));
    violations.dedup();
    Err(violations)
}

/// The v1 event type names (`agent:login`, ...), read from `common.json` so the schema and the
/// `GET /v1/event-types` answer cannot drift apart.
pub fn event_types_v1() -> &'static [String] {
    static NAMES: LazyLock<Vec<String>> = LazyLock::new(|| {
        SchemaId::Common.document()["$defs"]["eventTypeV1"]["enum"]
            .as_array()
            .map(|values| values.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    });
    &NAMES
}

fn describe(error: jsonschema::ValidationError<'_>) -> Vec<Violation> {
    let pointer = error.instance_path().as_str().to_owned();
    let one =
        |rule: &str, message: String| vec![Violation { pointer: pointer.clone(), rule: rule.to_owned(), message }];
    match error.kind() {
        ValidationErrorKind::Required { property } => {
            let name = property.as_str().map(str::to_owned).unwrap_or_else(|| property.to_string());
            vec![Violation {
                pointer: format!("{pointer}/{}", escape_pointer(&name)),
                rule: "required".into(),
                message: "is required".into(),
            }]
        }
        ValidationErrorKind::AdditionalProperties { unexpected }
        | ValidationErrorKind::UnevaluatedProperties { unexpected } => unexpected
            .iter()
            .map(|name| Violation {
                pointer: format!("{pointer}/{}", escape_pointer(name)),
                rule: "additionalProperties".into(),
                message: "is not an allowed property".into(),
            })
            .collect(),
        ValidationErrorKind::MinLength { limit } => {
            one("minLength", format!("must be at least {limit} character{}", plural(*limit)))
        }
        ValidationErrorKind::MaxLength { limit } => {
            one("maxLength", format!("must be at most {limit} character{}", plural(*limit)))
        }
        ValidationErrorKind::MinItems { limit } => {
            one("minItems", format!("must have at least {limit} item{}", plural(*limit)))
        }
        ValidationErrorKind::MaxItems { limit } => {
            one("maxItems", format!("must have at most {limit} item{}", plural(*limit)))
        }
        ValidationErrorKind::Type { kind } => {
            let expected = match kind {
                TypeKind::Single(t) => t.to_string(),
                TypeKind::Multiple(set) => set.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(" or "),
            };
            one("type", format!("must be of type {expected}"))
        }
        ValidationErrorKind::Enum { options } => {
            let all: Vec<String> =
                options.as_array().map(|o| o.iter().map(Value::to_string).collect()).unwrap_or_default();
            let message = if all.len() <= 6 {
                format!("must be one of {}", all.join(", "))
            } else {
                format!(
                    "{} is not one of the {} allowed values (such as {}, ...)",
                    error.instance(),
                    all.len(),
                    all[..3].join(", ")
                )
            };
            one("enum", message)
        }
        ValidationErrorKind::Constant { expected_value } => one("const", format!("must be {expected_value}")),
        ValidationErrorKind::Format { format } => one("format", format!("must be a valid {format}")),
        ValidationErrorKind::Pattern { pattern } => {
            let message = custom_message(&error).unwrap_or_else(|| format!("must match the pattern {pattern}"));
            one("pattern", message)
        }
        ValidationErrorKind::FalseSchema => one("false", "is not allowed here".into()),
        ValidationErrorKind::Minimum { limit } => one("minimum", format!("must be at least {limit}")),
        ValidationErrorKind::Maximum { limit } => one("maximum", format!("must be at most {limit}")),
        ValidationErrorKind::UniqueItems => one("uniqueItems", "must not contain duplicates".into()),
        _ => one("schema", error.to_string()),
    }
}

/// The `x-message` of the subschema whose keyword failed, if it has one.
fn custom_message(error: &jsonschema::ValidationError<'_>) -> Option<String> {
    let location = error.absolute_keyword_location()?.as_str().to_owned();
    let (file, fragment) = location.strip_prefix(BASE_URI)?.split_once('#')?;
    let parent = fragment.rsplit_once('/').map_or("", |(parent, _)| parent);
    let schema = SchemaId::from_name(file)?.document().pointer(parent)?;
    schema.get("x-message")?.as_str().map(str::to_owned)
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn escape_pointer(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_schema_compiles_and_has_an_id_matching_its_file() {
        for id in SchemaId::ALL {
            assert_eq!(id.document()["$id"], json!(id.uri()), "{id}");
            assert_eq!(id.document()["$schema"], json!("https://json-schema.org/draft/2020-12/schema"), "{id}");
        }
        init();
    }

    #[test]
    fn validating_while_the_schemas_compile_in_the_background_waits_for_them() {
        // Under nextest (each test a process of its own) nothing has compiled them yet; under
        // `cargo test` another test may have, which this allows as well.
        init_in_background();
        init_in_background();
        assert_eq!(validate(SchemaId::AdminClockAdvanceRequest, &json!({"ms": 1000})), Ok(()));
        let refused = validate(SchemaId::AdminClockAdvanceRequest, &json!({"ms": "soon"})).expect_err("a string");
        assert_eq!(refused[0].pointer, "/ms", "{refused:?}");
    }

    #[test]
    fn a_short_secret_is_reported_with_its_pointer_and_rule() {
        let body = json!({
            "name": "aaaa", "eventTypes": ["agent:login"],
            "destinationUrl": "https://hooks.example.com/wxcc", "secret": "12345"
        });
        let v = validate(SchemaId::SubscriptionCreateRequest, &body).unwrap_err();
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].to_string(), "/secret: must be at least 32 characters");
        assert_eq!(v[0].rule, "minLength");
    }

    #[test]
    fn a_missing_property_points_at_where_it_belongs() {
        let v = validate(SchemaId::AgentLogoutRequest, &json!({})).unwrap_err();
        assert_eq!(v[0].pointer, "/logoutReason");
        assert_eq!(v[0].rule, "required");
    }

    #[test]
    fn the_camel_case_state_change_name_is_not_an_event_type() {
        let body = json!({
            "name": "aaaa", "eventTypes": ["agent:login", "agent:stateChange"],
            "destinationUrl": "https://hooks.example.com/wxcc"
        });
        let v = validate(SchemaId::SubscriptionCreateRequest, &body).unwrap_err();
        assert_eq!(v[0].pointer, "/eventTypes/1");
        assert_eq!(v[0].rule, "enum");
    }

    #[test]
    fn the_contract_wants_lower_case_roles_and_a_boolean_is_extension_and_agents_need_a_team() {
        let ok = json!({"dialNumber": "1001", "teamId": "t", "roles": ["agent"], "isExtension": true});
        assert_eq!(validate(SchemaId::AgentLoginRequest, &ok), Ok(()));
        let supervisor = json!({"dialNumber": "1001", "roles": ["supervisor"]});
        assert_eq!(validate(SchemaId::AgentLoginRequest, &supervisor), Ok(()));
        let sample = json!({"dialNumber": "1001", "teamId": "t", "roles": ["Agent"], "isExtension": "true"});
        let v = validate(SchemaId::AgentLoginRequest, &sample).unwrap_err();
        let found: Vec<(&str, &str)> = v.iter().map(|v| (v.pointer.as_str(), v.rule.as_str())).collect();
        assert_eq!(found, vec![("/isExtension", "type"), ("/roles/0", "enum")]);
        let no_team = json!({"dialNumber": "1001", "roles": ["Agent"]});
        let v = validate(SchemaId::AgentLoginRequest, &no_team).unwrap_err();
        assert!(v.iter().any(|v| v.pointer == "/teamId"), "{v:?}");
    }

    #[test]
    fn a_pattern_with_an_x_message_is_explained_in_words() {
        for url in [
            "http://hooks.example.com/x",
            "https://hooks.example.com",
            "https://h.example.com:8443/x",
            "https://10.0.0.1/x",
            "https://[::1]/x",
            "http://127.0.0.1:1023/x",
            "http://localhost/x",
        ] {
            let body = json!({"name": "aaaa", "eventTypes": ["agent:login"], "destinationUrl": url});
            let v = validate(SchemaId::SubscriptionCreateRequest, &body).unwrap_err();
            let pattern = v.iter().find(|v| v.rule == "pattern").unwrap_or_else(|| panic!("{url}: {v:?}"));
            assert!(pattern.message.starts_with("must be https on port 443"), "{url}: {}", pattern.message);
        }
        for url in [
            "https://hooks.example.com/",
            "http://127.0.0.1:9000/hook",
            "https://[::1]:1024/x",
            "http://localhost:65535/",
        ] {
            let body = json!({"name": "aaaa", "eventTypes": ["agent:login"], "destinationUrl": url});
            assert_eq!(validate(SchemaId::SubscriptionCreateRequest, &body), Ok(()), "{url}");
        }
    }

    #[test]
    fn formats_are_checked() {
        let body = json!({"name": "aaaa", "eventTypes": ["agent:login"], "destinationUrl": "not a uri"});
        let v = validate(SchemaId::SubscriptionCreateRequest, &body).unwrap_err();
        assert!(v.iter().any(|v| v.pointer == "/destinationUrl" && v.rule == "format"), "{v:?}");
    }

    #[test]
    fn the_event_type_list_comes_from_the_schema() {
        let names = event_types_v1();
        assert!(names.iter().any(|n| n == "agent:state_change"));
        assert!(!names.iter().any(|n| n == "agent:stateChange"));
    }

    #[test]
    fn the_resource_version_table_matches_the_schema_enums() {
        let defs = &SchemaId::Common.document()["$defs"];
        let versions: Vec<&str> = resource_versions().iter().map(|(v, _)| v.as_str()).collect();
        assert_eq!(versions.len(), 5);
        assert_eq!(defs["resourceVersion"]["enum"], json!(versions));
        let mut names: Vec<&str> = resource_versions().iter().flat_map(|(_, n)| n.iter().map(String::as_str)).collect();
        names.sort_unstable();
        names.dedup();
        let mut schema_names: Vec<&str> =
            defs["eventTypeV2"]["enum"].as_array().expect("enum").iter().filter_map(|v| v.as_str()).collect();
        schema_names.sort_unstable();
        assert_eq!(names, schema_names);
        for name in event_types_v1() {
            assert!(schema_names.contains(&name.as_str()), "{name} is missing from the v2 list");
        }
        let body = json!({"name": "aaaa", "eventTypes": ["agent:login", "agent:state_change"],
            "destinationUrl": "https://x.example/h", "resourceVersion": "agent:2.0.0"});
        let v = validate(SchemaId::SubscriptionV2CreateRequest, &body).unwrap_err();
        assert_eq!(v[0].pointer, "/eventTypes/1", "{v:?}");
    }

    #[test]
    fn names_round_trip() {
        for id in SchemaId::ALL {
            assert_eq!(SchemaId::from_name(id.name()), Some(*id));
            assert_eq!(SchemaId::from_name(&format!("{}.json", id.name())), Some(*id));
        }
        assert_eq!(SchemaId::from_name("nope"), None);
    }
}
