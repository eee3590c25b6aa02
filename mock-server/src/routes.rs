//! The endpoint table: one entry per operation the mock serves. The router, the auth check, the
//! body check, the error envelope (by path, [`crate::http::Service`]) and the OpenAPI document
//! are all built from it.

use std::sync::LazyLock;

use axum::Router;
use axum::extract::Request;
use axum::http::{Method, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter};
use serde_json::Value;
use wxcc_schemas::SchemaId as S;

use crate::auth::Operation as Op;
use crate::endpoint::{Endpoint, QueryParam};
use crate::faults::{Action, FAULT_HEADER, Fired, HttpFacts};
use crate::handler;
use crate::http::{
    self, ApiError, Call, Caller, Handled, Incoming, Service, admin, agents, config, notifications, subscriptions,
    tasks,
};
use crate::state::AppState;

/// Every operation the mock serves, in the order the OpenAPI document lists them.
pub fn endpoints() -> &'static [Endpoint] {
    static TABLE: LazyLock<Vec<Endpoint>> = LazyLock::new(table);
    &TABLE
}

/// The endpoint for `method` and `path` (as written in the table), if any.
pub fn endpoint(method: &Method, path: &str) -> Option<&'static Endpoint> {
    endpoints().iter().find(|e| e.method == method && e.path == path)
}

/// The endpoint that serves `method` on a concrete `path` (`/__admin/tasks/abc/answer`), if any.
pub fn endpoint_for(method: &Method, path: &str) -> Option<&'static Endpoint> {
    let path = path.split('?').next().unwrap_or_default();
    let path = path.strip_suffix('/').filter(|p| !p.is_empty()).unwrap_or(path);
    let given: Vec<&str> = path.split('/').collect();
    endpoints().iter().find(|e| {
        let pattern: Vec<&str> = e.path.split('/').collect();
        e.method == method
            && pattern.len() == given.len()
            && pattern.iter().zip(&given).all(|(p, g)| (p.starts_with('{') && !g.is_empty()) || p == g)
    })
}

const CONFIG_ERRORS: &[u16] = &[404];

/// `GET /v1/tasks`'s query (facts §1.3), as `http::tasks::search` reads it.
const TASK_SEARCH: &[QueryParam] = &[
    QueryParam {
        name: "from",
        required: true,
        schema: r#"{"type":"integer","minimum":0,"maximum":9007199254740991}"#,
        description: "Tasks created at or after this time (epoch ms).",
    },
    QueryParam {
        name: "to",
        required: false,
        schema: r#"{"type":"integer","minimum":0,"maximum":9007199254740991}"#,
        description: "Tasks created at or before this time (epoch ms; default now).",
    },
    QueryParam {
        name: "channelTypes",
        required: false,
        schema: r#"{"type":"string","pattern":"^(telephony|chat|email|social)(,(telephony|chat|email|social))*$"}"#,
        description: "A comma-separated list of channels (default all).",
    },
    QueryParam {
        name: "pageSize",
        required: false,
        schema: r#"{"type":"integer","minimum":1,"maximum":1000}"#,
        description: "At most this many tasks, oldest first (default 100).",
    },
];

#[rustfmt::skip]
fn table() -> Vec<Endpoint> {
    let (get, post, put, patch, delete) = (Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE);
    vec![
        // Agents: 202, the outcome on the websocket.
        Endpoint::new(post.clone(), "/v1/agents/login", "agentLogin", handler!(agents::login))
            .summary("Station login; the result arrives on the websocket (StationLogin)")
            .auth(Op::AgentLogin).body(S::AgentLoginRequest).success(202),
        Endpoint::new(put.clone(), "/v1/agents/logout", "agentLogout", handler!(agents::logout))
            .summary("Logout (the spec's method); the result arrives on the websocket (Logout)")
            .auth(Op::AgentLogout).body(S::AgentLogoutRequest).success(202),
        Endpoint::new(post.clone(), "/v1/agents/logout", "agentLogoutPost", handler!(agents::logout))
            .summary("Logout (what Cisco's SDK and samples send); the result arrives on the websocket")
            .auth(Op::AgentLogout).body(S::AgentLogoutRequest).success(202),
        Endpoint::new(put.clone(), "/v1/agents/session/state", "agentStateChange", handler!(agents::change_state))
            .summary("State change; the result arrives on the websocket (AgentStateChange)")
            .auth(Op::AgentStateChange).body(S::AgentStateChangeRequest).success(202),
        Endpoint::new(post.clone(), "/v1/agents/reload", "agentReload", handler!(agents::reload))
            .summary("Reload; the result arrives on the websocket (AgentReloginSuccess/Failed)")
            .auth(Op::AgentReload).optional_body(S::AgentReloadRequest).success(202),
        Endpoint::new(post.clone(), "/v1/agents/buddyList", "agentBuddyList", handler!(agents::buddy_list))
            .summary("Buddy agents; the list arrives on the websocket (BuddyAgents)")
            .auth(Op::AgentBuddyList).body(S::BuddyListRequest).success(202),
        // The notification websocket.
        Endpoint::new(post.clone(), "/v1/notification/subscribe", "notificationSubscribe", handler!(notifications::subscribe))
            .summary("Register for the agent's notification websocket")
            .auth(Op::NotificationSubscribe).optional_body(S::NotificationSubscribeRequest)
            .returns(S::NotificationSubscribeResponse).errors(&[409]),
        Endpoint::new(get.clone(), "/v1/notification/subscription/{id}", "notificationConnect", handler!(notifications::connect))
            .summary("The websocket (upgrade); each subscription URL connects once")
            .success(101).errors(&[400, 426]),
        // Subscriptions (webhooks), v1 and v2.
        Endpoint::new(post.clone(), "/v1/subscriptions", "createSubscription", handler!(subscriptions::create_v1))
            .summary("Register a webhook subscription")
            .auth(Op::SubscriptionCreate).body(S::SubscriptionCreateRequest).success(201).returns(S::SubscriptionResponse),
        Endpoint::new(get.clone(), "/v1/subscriptions", "listSubscriptions", handler!(subscriptions::list_v1))
            .summary("List the organisation's v1 subscriptions")
            .auth(Op::SubscriptionList).returns(S::SubscriptionListResponse),
        Endpoint::new(get.clone(), "/v1/subscriptions/{id}", "getSubscription", handler!(subscriptions::read_v1))
            .summary("Read a v1 subscription")
            .auth(Op::SubscriptionGet).returns(S::SubscriptionResponse),
        Endpoint::new(patch.clone(), "/v1/subscriptions/{id}", "updateSubscription", handler!(subscriptions::update_v1))
            .summary("Update a v1 subscription (name cannot change)")
            .auth(Op::SubscriptionUpdate).body(S::SubscriptionUpdateRequest).returns(S::SubscriptionResponse),
        Endpoint::new(delete.clone(), "/v1/subscriptions/{id}", "deleteSubscription", handler!(subscriptions::delete_v1))
            .summary("Delete a v1 subscription")
            .auth(Op::SubscriptionDelete).success(204),
        Endpoint::new(get.clone(), "/v1/event-types", "listEventTypes", handler!(subscriptions::event_types_v1))
            .summary("The v1 event types")
            .auth(Op::EventTypesList).returns(S::EventTypesResponse),
        Endpoint::new(post.clone(), "/v2/subscriptions", "createSubscriptionV2", handler!(subscriptions::create_v2))
            .summary("Register a v2 webhook subscription (with resourceVersion)")
            .auth(Op::SubscriptionCreate).body(S::SubscriptionV2CreateRequest).success(201).returns(S::SubscriptionV2Response),
        Endpoint::new(get.clone(), "/v2/subscriptions", "listSubscriptionsV2", handler!(subscriptions::list_v2))
            .summary("List the organisation's v2 subscriptions")
            .auth(Op::SubscriptionList).returns(S::SubscriptionV2ListResponse),
        Endpoint::new(get.clone(), "/v2/subscriptions/{id}", "getSubscriptionV2", handler!(subscriptions::read_v2))
            .summary("Read a v2 subscription")
            .auth(Op::SubscriptionGet).returns(S::SubscriptionV2Response),
        Endpoint::new(patch.clone(), "/v2/subscriptions/{id}", "updateSubscriptionV2", handler!(subscriptions::update_v2))
            .summary("Update a v2 subscription (resourceVersion required)")
            .auth(Op::SubscriptionUpdate).body(S::SubscriptionV2UpdateRequest).returns(S::SubscriptionV2Response).errors(&[409]),
        Endpoint::new(delete.clone(), "/v2/subscriptions/{id}", "deleteSubscriptionV2", handler!(subscriptions::delete_v2))
            .summary("Delete a v2 subscription")
            .auth(Op::SubscriptionDelete).success(204),
        Endpoint::new(get.clone(), "/v2/event-types", "listEventTypesV2", handler!(subscriptions::event_types_v2))
            .summary("The v2 event types and resource versions")
            .auth(Op::EventTypesList).returns(S::EventTypesV2Response),
        // The configuration the desktop (and Cisco's SDK, in register()) reads.
        Endpoint::new(get.clone(), "/organization/{orgId}", "getOrganization", handler!(config::organization))
            .summary("The organisation (tenantId, timezone, environment)")
            .auth(Op::ConfigRead).returns(S::ConfigOrganization).errors(CONFIG_ERRORS),
        Endpoint::new(get.clone(), "/organization/{orgId}/user/by-ci-user-id/{id}", "getUserByCiUserId", handler!(config::user_by_ci_id))
            .summary("A user by CI user id (with cjp:user, only one's own)")
            .auth(Op::ConfigRead).returns(S::ConfigUser).errors(CONFIG_ERRORS),
        Endpoint::new(get.clone(), "/organization/{orgId}/v2/organization-setting", "getOrganizationSetting", handler!(config::organization_setting))
            .summary("Organisation settings (data[0])")
            .auth(Op::ConfigRead).returns(S::ConfigOrganizationSettingList).errors(CONFIG_ERRORS),
        Endpoint::new(get.clone(), "/organization/{orgId}/v2/tenant-configuration", "getTenantConfiguration", handler!(config::tenant_configuration))
            .summary("Tenant configuration (data[0])")
            .auth(Op::ConfigRead).returns(S::ConfigTenantConfigurationList).errors(CONFIG_ERRORS),
        Endpoint::new(get.clone(), "/organization/{orgId}/v2/org-url-mapping", "getOrgUrlMapping", handler!(config::url_mapping))
            .summary("URL mappings (a data array)")
            .auth(Op::ConfigRead).returns(S::ConfigUrlMappingList).errors(CONFIG_ERRORS),
        Endpoint::new(get.clone(), "/organization/{orgId}/v2/ai-feature", "getAiFeature", handler!(config::ai_feature))
            .summary("AI feature flags (paginated)")
            .auth(Op::ConfigRead).returns(S::ConfigAiFeaturePage).errors(CONFIG_ERRORS),
        Endpoint::new(get.clone(), "/organization/{orgId}/v2/auxiliary-code", "listAuxiliaryCodes", handler!(config::auxiliary_code))
            .summary("Idle and wrap-up codes (paginated; filter=id=in=(..), attributes=)")
            .auth(Op::ConfigRead).returns(S::ConfigAuxiliaryCodePage).errors(CONFIG_ERRORS),
        Endpoint::new(get.clone(), "/organization/{orgId}/agent-profile/{id}", "getAgentProfile", handler!(config::agent_profile))
            .summary("An agent (desktop) profile")
            .auth(Op::ConfigRead).returns(S::ConfigAgentProfile).errors(CONFIG_ERRORS),
        Endpoint::new(get.clone(), "/organization/{orgId}/site/{id}", "getSite", handler!(config::site))
            .summary("A site")
            .auth(Op::ConfigRead).returns(S::ConfigSite).errors(CONFIG_ERRORS),
        Endpoint::new(get.clone(), "/organization/{orgId}/v2/team", "listTeams", handler!(config::team))
            .summary("Teams (paginated; filter=id=in=(..))")
            .auth(Op::ConfigRead).returns(S::ConfigTeamPage).errors(CONFIG_ERRORS),
        Endpoint::new(get.clone(), "/organization/{orgId}/dial-plan", "getDialPlans", handler!(config::dial_plan))
            .summary("Dial plans (a bare array)")
            .auth(Op::ConfigRead).returns(S::ConfigDialPlanList).errors(CONFIG_ERRORS),
        Endpoint::new(get.clone(), "/organization/{orgId}/v2/contact-service-queue", "listQueues", handler!(config::queues))
            .summary("Queues (paginated; filter=id=in=(..))")
            .auth(Op::ConfigRead).returns(S::ConfigQueuePage).errors(CONFIG_ERRORS),
        Endpoint::new(get.clone(), "/organization/{orgId}/v2/entry-point", "listEntryPoints", handler!(config::entry_points))
            .summary("Entry points (paginated; filter=id=in=(..))")
            .auth(Op::ConfigRead).returns(S::ConfigEntryPointPage).errors(CONFIG_ERRORS),
        Endpoint::new(get.clone(), "/organization/{orgId}/v2/outdial-ani/{id}/entry", "listOutdialAniEntries", handler!(config::outdial_ani_entries))
            .summary("The numbers of an outdial ANI list (paginated)")
            .auth(Op::ConfigRead).returns(S::ConfigOutdialAniEntryPage).errors(CONFIG_ERRORS),
        // Tasks: 202, the result on the websocket (an outdial: 201 with the id).
        Endpoint::new(post.clone(), "/v1/tasks", "createTask", handler!(tasks::create))
            .summary("Outdial: 201 with the task id; then AgentContactReserved and AgentOfferContact, or AgentOutboundFailed, on the websocket")
            .auth(Op::TaskCreate).body(S::TaskCreateRequest).success(201).returns(S::TaskCreateResponse),
        Endpoint::new(get.clone(), "/v1/tasks", "searchTasks", handler!(tasks::search))
            .summary("Tasks created between from and to (epoch ms), oldest first (?from=&to=&channelTypes=&pageSize=)")
            .auth(Op::TaskSearch).query(TASK_SEARCH).returns(S::TaskListResponse).in_service(Service::Config),
        Endpoint::new(post.clone(), "/v1/tasks/{id}/accept", "acceptTask", handler!(tasks::accept))
            .summary("Accept an offered task (digital channels; a call is answered on the phone); AgentContactAssigned or AgentContactAssignFailed")
            .auth(Op::TaskControl).optional_body(S::TaskEmptyRequest).success(202),
        Endpoint::new(post.clone(), "/v1/tasks/{id}/reject", "rejectTask", handler!(tasks::reject))
            .summary("Decline an offered task; AgentContactAssignFailed (USER_DECLINED), the agent goes Agent_Declined")
            .auth(Op::TaskControl).body(S::TaskMediaResourceRequest).success(202),
        Endpoint::new(post.clone(), "/v1/tasks/{id}/hold", "holdTask", handler!(tasks::hold))
            .summary("Hold a call; AgentContactHeld or AgentContactHoldFailed")
            .auth(Op::TaskControl).body(S::TaskMediaResourceRequest).success(202),
        Endpoint::new(post.clone(), "/v1/tasks/{id}/unhold", "unholdTask", handler!(tasks::unhold))
            .summary("Resume a held call; AgentContactUnheld or AgentContactUnHoldFailed")
            .auth(Op::TaskControl).body(S::TaskMediaResourceRequest).success(202),
        Endpoint::new(post.clone(), "/v1/tasks/{id}/end", "endTask", handler!(tasks::end))
            .summary("End a task; ContactEnded and AgentWrapup, or AgentContactEndFailed")
            .auth(Op::TaskControl).optional_body(S::TaskEmptyRequest).success(202),
        Endpoint::new(post.clone(), "/v1/tasks/{id}/done", "endTaskDone", handler!(tasks::end))
            .summary("End a task (the spelling of Cisco's Postman collection)")
            .auth(Op::TaskControl).optional_body(S::TaskEmptyRequest).success(202),
        Endpoint::new(post.clone(), "/v1/tasks/{id}/wrapup", "wrapupTask", handler!(tasks::wrapup))
            .summary("Wrap up with one of the organisation's wrap-up codes; AgentWrappedUp or AgentWrapupFailed")
            .auth(Op::TaskControl).body(S::TaskWrapupRequest).success(202),
        Endpoint::new(post.clone(), "/v1/tasks/{id}/transfer", "transferTask", handler!(tasks::transfer))
            .summary("Blind transfer to an agent (AgentBlindTransferred) or a queue (AgentVteamTransferred); the agent then wraps up")
            .auth(Op::TaskControl).body(S::TaskTransferRequest).success(202),
        Endpoint::new(post.clone(), "/v1/tasks/{id}/consult", "consultTask", handler!(tasks::consult))
            .summary("Consult: not simulated; 202, then AgentConsultFailed")
            .auth(Op::TaskControl).body(S::TaskConsultRequest).success(202),
        Endpoint::new(post.clone(), "/v1/tasks/{id}/consult/accept", "acceptConsult", handler!(tasks::consult_accept))
            .summary("Accept a consult: not simulated; 202, then AgentContactAssignFailed")
            .auth(Op::TaskControl).optional_body(S::TaskEmptyRequest).success(202),
        Endpoint::new(post.clone(), "/v1/tasks/{id}/consultAccept", "acceptConsultPostman", handler!(tasks::consult_accept))
            .summary("Accept a consult (the spelling of Cisco's Postman collection): not simulated")
            .auth(Op::TaskControl).optional_body(S::TaskEmptyRequest).success(202),
        Endpoint::new(post.clone(), "/v1/tasks/{id}/consult/end", "endConsult", handler!(tasks::consult_end))
            .summary("End a consult: not simulated; 202, then AgentConsultEndFailed")
            .auth(Op::TaskControl).optional_body(S::TaskConsultEndRequest).success(202),
        Endpoint::new(post.clone(), "/v1/tasks/{id}/consult/transfer", "consultTransfer", handler!(tasks::consult_transfer))
            .summary("Consult transfer: not simulated; 202, then AgentConsultTransferFailed")
            .auth(Op::TaskControl).body(S::TaskConferenceRequest).success(202),
        Endpoint::new(post.clone(), "/v1/tasks/{id}/consult/conference", "consultConference", handler!(tasks::consult_conference))
            .summary("Conference: not simulated; 202, then AgentConsultConferenceFailed")
            .auth(Op::TaskControl).body(S::TaskConferenceRequest).success(202),
        Endpoint::new(post.clone(), "/v1/tasks/{id}/conference/exit", "exitConference", handler!(tasks::conference_exit))
            .summary("Leave a conference: not simulated; 202, then ParticipantLeftConferenceFailed")
            .auth(Op::TaskControl).optional_body(S::TaskEmptyRequest).success(202),
        Endpoint::new(post.clone(), "/v1/tasks/{id}/conference/transfer", "transferConference", handler!(tasks::conference_transfer))
            .summary("Conference transfer: not simulated; 202, then AgentConferenceTransferFailed")
            .auth(Op::TaskControl).optional_body(S::TaskEmptyRequest).success(202),
        Endpoint::new(post.clone(), "/v1/tasks/{id}/cancelCtq", "cancelConsultToQueue", handler!(tasks::cancel_ctq))
            .summary("Cancel a consult to a queue: not simulated; 202, then AgentCtqCancelFailed")
            .auth(Op::TaskControl).optional_body(S::TaskEmptyRequest).success(202),
        Endpoint::new(post.clone(), "/v1/tasks/{id}/record/pause", "pauseRecording", handler!(tasks::record_pause))
            .summary("Pause recording: not simulated; 202, then ContactRecordingPauseFailed")
            .auth(Op::TaskControl).optional_body(S::TaskEmptyRequest).success(202),
        Endpoint::new(post.clone(), "/v1/tasks/{id}/record/resume", "resumeRecording", handler!(tasks::record_resume))
            .summary("Resume recording: not simulated; 202, then ContactRecordingResumeFailed")
            .auth(Op::TaskControl).optional_body(S::TaskResumeRecordingRequest).success(202),
        Endpoint::new(get.clone(), "/openapi.json", "openapi", handler!(serve_openapi))
            .summary("This document"),
        // The mock's own API.
        Endpoint::new(get.clone(), "/__admin/health", "adminHealth", handler!(admin::health))
            .summary("The mock's health (the mock's own API)"),
        Endpoint::new(get.clone(), "/__admin/ui", "adminDashboard", handler!(admin::dashboard))
            .summary("The dashboard: agents, tasks, subscriptions and the journal, live, with buttons for the mock's own controls (one page, works offline)")
            .html().without_admin_token(),
        Endpoint::new(post.clone(), "/__admin/tokens", "adminMintToken", handler!(admin::mint_token))
            .summary("Mint a token for a world user (the mock's own API)")
            .body(S::AdminTokenRequest).success(201).returns(S::AdminTokenResponse).errors(&[404]),
        Endpoint::new(post.clone(), "/__admin/tokens/expire", "adminExpireToken", handler!(admin::expire_token))
            .summary("A token expires now (a world token by its name, or any token): its next use is a 401 that says it expired; a reset restores world tokens (the mock's own API)")
            .body(S::AdminTokenExpireRequest).errors(&[404]),
        Endpoint::new(get.clone(), "/__admin/state", "adminState", handler!(admin::state))
            .summary("The world and the live state (the mock's own API)"),
        Endpoint::new(post.clone(), "/__admin/reset", "adminReset", handler!(admin::reset))
            .summary("Back to the loaded world: world tokens only, no sessions, subscriptions, websockets or fault rules, empty logs (the mock's own API)"),
        Endpoint::new(get.clone(), "/__admin/deliveries", "adminDeliveries", handler!(admin::deliveries))
            .summary("Every webhook delivery attempt, newest first (the mock's own API)"),
        Endpoint::new(get.clone(), "/__admin/journal", "adminJournal", handler!(admin::journal))
            .summary("The journal: every WxCC exchange, websocket frame, webhook attempt and domain event, in one sequence (?since=SEQ&kind=http|ws|webhook|event&limit=N)")
            .errors(&[400]),
        Endpoint::new(get.clone(), "/__admin/journal/export", "adminJournalExport", handler!(admin::journal_export))
            .summary("The WxCC exchanges and websocket messages in the journal as a replay bundle (schemas/json/bundle.json) for wxcc-mock replay, tokens named, never shown (the mock's own API)")
            .returns(S::Bundle),
        Endpoint::new(get.clone(), "/__admin/journal/stream", "adminJournalStream", handler!(admin::journal_stream))
            .summary("New journal entries as Server-Sent Events (?since=SEQ&kind=..., or Last-Event-ID)")
            .event_stream().errors(&[400]),
        Endpoint::new(get.clone(), "/__admin/violations", "adminViolations", handler!(admin::violations))
            .summary("Every request that broke its schema (the mock's own API)"),
        Endpoint::new(delete.clone(), "/__admin/violations", "adminClearViolations", handler!(admin::clear_violations))
            .summary("Forget the recorded violations (the mock's own API)")
            .success(204),
        Endpoint::new(post.clone(), "/__admin/tasks", "adminInjectTask", handler!(admin::inject_task))
            .summary("A contact arrives: queued, then offered to the longest-Available agent of the queue's teams (or to agentId) (the mock's own API)")
            .body(S::AdminTaskRequest).success(201).returns(S::AdminTaskResponse).errors(&[404]),
        Endpoint::new(get.clone(), "/__admin/tasks", "adminTasks", handler!(admin::tasks))
            .summary("Every task, oldest first (?orgId=) (the mock's own API)"),
        Endpoint::new(get.clone(), "/__admin/tasks/{id}", "adminTask", handler!(admin::task))
            .summary("One task (the mock's own API)")
            .returns(S::AdminTaskResponse),
        Endpoint::new(post.clone(), "/__admin/tasks/{id}/answer", "adminAnswerTask", handler!(admin::answer_task))
            .summary("The agent's phone answers the offer (the mock's own API)")
            .returns(S::AdminTaskResponse).errors(&[409]),
        Endpoint::new(post.clone(), "/__admin/tasks/{id}/decline", "adminDeclineTask", handler!(admin::decline_task))
            .summary("The agent's phone declines the offer (the mock's own API)")
            .returns(S::AdminTaskResponse).errors(&[409]),
        Endpoint::new(post.clone(), "/__admin/tasks/{id}/customer-hangup", "adminCustomerHangup", handler!(admin::customer_hangup))
            .summary("The customer hangs up or leaves, in any state (the mock's own API)")
            .returns(S::AdminTaskResponse).errors(&[409]),
        Endpoint::new(post.clone(), "/__admin/tasks/{id}/expire-rona", "adminExpireRona", handler!(admin::expire_rona))
            .summary("RONA fires now (the mock's own API)")
            .returns(S::AdminTaskResponse).errors(&[409]),
        Endpoint::new(post.clone(), "/__admin/agents/{id}/device", "adminAgentDevice", handler!(admin::device))
            .summary("Whether the agent's phone takes invites (unreachable: offers of calls fail with AgentInviteFailed) (the mock's own API)")
            .body(S::AdminDeviceRequest),
        Endpoint::new(post.clone(), "/__admin/faults", "adminAddFault", handler!(admin::add_fault))
            .summary("Add a fault rule: what it matches (HTTP requests, webhook deliveries or websocket messages), what it does, how often (times, probability, seed) (the mock's own API)")
            .body(S::AdminFaultRequest).success(201).errors(&[409]),
        Endpoint::new(post.clone(), "/__admin/scenario", "adminLoadScenario", handler!(admin::load_scenario))
            .summary("Reset the mock and load a scenario: its clock start, rate limit and fault rules, its setup requests, then its script on the clock; a body past 1 MiB is a 413 (serve --scenario reads a file of any size) (the mock's own API)")
            .body(S::Scenario).errors(&[409, 413]).body_limit(http::SCENARIO_BODY_LIMIT),
        Endpoint::new(get.clone(), "/__admin/scenario", "adminScenario", handler!(admin::scenario))
            .summary("The scenario loaded last and how far its script got (the mock's own API)"),
        Endpoint::new(get.clone(), "/__admin/faults", "adminFaults", handler!(admin::faults))
            .summary("The fault rules in the order they are tried, each with how often it fired (the mock's own API)"),
        Endpoint::new(delete.clone(), "/__admin/faults", "adminClearFaults", handler!(admin::clear_faults))
            .summary("Remove every fault rule (the mock's own API)")
            .success(204),
        Endpoint::new(delete.clone(), "/__admin/faults/{id}", "adminDeleteFault", handler!(admin::delete_fault))
            .summary("Remove one fault rule (the mock's own API)")
            .success(204).errors(&[404]),
        Endpoint::new(get.clone(), "/__admin/clock", "adminClock", handler!(admin::clock))
            .summary("The clock: mode (system or virtual) and now (epoch ms)")
            .returns(S::AdminClockResponse),
        Endpoint::new(post.clone(), "/__admin/clock/advance", "adminClockAdvance", handler!(admin::clock_advance))
            .summary("Move a virtual clock forward by ms, firing every timer that falls due, in order, before answering")
            .body(S::AdminClockAdvanceRequest).returns(S::AdminClockResponse).errors(&[409]),
        Endpoint::new(post.clone(), "/__admin/clock/set", "adminClockSet", handler!(admin::clock_set))
            .summary("Set a virtual clock to now (epoch ms): forward fires due timers as advance does; back relabels time")
            .body(S::AdminClockSetRequest).returns(S::AdminClockResponse).errors(&[409]),
    ]
}

async fn serve_openapi(call: Call<'_>) -> Result<Response, ApiError> {
    // The committed document names the default address; the served one names this mock's.
    let text = call.state.served_openapi(|base| {
        openapi_text().replacen(
            "\"url\": \"http://127.0.0.1:8080\"",
            &format!("\"url\": {}", serde_json::Value::String(base.to_owned())),
            1,
        )
    });
    Ok(([(header::CONTENT_TYPE, "application/json")], text).into_response())
}

/// The OpenAPI document, built once from the table.
pub fn openapi_document() -> &'static Value {
    static DOCUMENT: LazyLock<Value> = LazyLock::new(|| crate::openapi::build(endpoints()));
    &DOCUMENT
}

/// The document as committed and served: pretty JSON with a trailing newline, built once.
pub fn openapi_text() -> &'static str {
    static TEXT: LazyLock<String> = LazyLock::new(|| {
        let mut text = serde_json::to_string_pretty(openapi_document()).unwrap_or_default();
        text.push('\n');
        text
    });
    &TEXT
}

/// The app as the mock serves it: the routes behind [`BrowserAccess`](crate::access::BrowserAccess),
/// put once around the router (a layer on a router wraps each route, which costs every request a
/// box and a clone more).
pub type App = crate::access::BrowserAccess<Router>;

/// The app the server serves (see [`App`]).
pub fn build_app(state: AppState) -> App {
    use tower::Layer;
    crate::access::BrowserAccessLayer::new(&state.options().access).layer(routes(state))
}

/// The same app as a [`Router`], for serving in process or composing with other layers.
pub fn build_router(state: AppState) -> Router {
    Router::new().fallback_service(build_app(state))
}

/// Every endpoint of the table behind its checks and the envelope, and the fallbacks (404, 405)
/// in the envelope too.
fn routes(state: AppState) -> Router {
    let mut by_path: Vec<(&'static str, MethodRouter<AppState>)> = Vec::new();
    for endpoint in endpoints() {
        let Ok(filter) = MethodFilter::try_from(endpoint.method.clone()) else { continue };
        let route = EndpointService { route: Route { endpoint, service: endpoint.service() }, state: state.clone() };
        match by_path.iter_mut().find(|(path, _)| *path == endpoint.path) {
            Some((_, methods)) => *methods = std::mem::take(methods).on_service(filter, route),
            None => by_path.push((endpoint.path, MethodRouter::new().on_service(filter, route))),
        }
    }
    let mut router = Router::new();
    for (path, methods) in by_path {
        // A trailing slash names the same route: Cisco's SDK posts outdials to `/v1/tasks/`.
        if path != "/" {
            router = router.route(&format!("{path}/"), methods.clone());
        }
        router = router.route(path, methods);
    }
    router.fallback(http::unknown_route).method_not_allowed_fallback(http::wrong_method).with_state(state)
}

/// One endpoint as the router calls it: a service holding the state, rather than a handler with
/// a `State` extractor (axum clones the route for every request, and a handler's state twice
/// more: each clone a count shared by every core, raised and lowered).
#[derive(Clone)]
struct EndpointService {
    route: Route,
    state: AppState,
}

/// An endpoint with its service (whose envelope its errors use), found once, when the router is
/// built.
#[derive(Debug, Clone, Copy)]
struct Route {
    endpoint: &'static Endpoint,
    service: Service,
}

impl std::fmt::Debug for EndpointService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EndpointService").field("endpoint", &self.route.endpoint.path).finish_non_exhaustive()
    }
}

impl tower::Service<Request> for EndpointService {
    type Response = Response;
    type Error = std::convert::Infallible;
    /// Boxed, then mapped (mapping first would move the exchange's future once more).
    type Future = futures_util::future::Map<
        futures_util::future::BoxFuture<'static, Response>,
        fn(Response) -> Result<Response, std::convert::Infallible>,
    >;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        use futures_util::FutureExt;
        let route = self.route;
        let exchange =
            http::enveloped(self.state.clone(), Some(route.service), route.endpoint.body_limit, request, route);
        let boxed: futures_util::future::BoxFuture<'static, Response> = Box::pin(exchange);
        boxed.map(Ok)
    }
}

impl http::Handle for Route {
    fn handle<'a>(self, state: &'a AppState, incoming: Incoming<'a>) -> impl Future<Output = Handled> + Send {
        dispatch(self, state, incoming)
    }
}

/// The checks of `endpoint`, in the real API's order (400 → 401 → 403 → body), then its handler;
/// on a WxCC route, a fault that fires first (a rule of `/__admin/faults` or the
/// `X-Wxcc-Mock-Fault` header) shapes the answer as the gateway in front of the real API would.
async fn dispatch(Route { endpoint, service }: Route, state: &AppState, incoming: Incoming<'_>) -> Handled {
    let Incoming { parts, tracking_id, body: body_bytes } = incoming;
    let changes_state = !matches!(parts.method, axum::http::Method::GET | axum::http::Method::HEAD);
    let mut caller = None;
    let mut injected: Option<Fired> = None;
    let result = async {
        if service == Service::Admin {
            state.admin_gate(&parts, endpoint.admin_token)?;
        } else if endpoint.path != "/openapi.json"
            && let Some(fired) = fault_for(state, endpoint, &parts)?
        {
            let action = fired.action;
            let wait_ms = fired.wait_ms;
            let description = fired.describe();
            injected = Some(fired);
            match action {
                // On the mock's clock: a virtual clock holds the answer until it is advanced.
                Action::Latency(_) => {
                    state.clock().sleep(std::time::Duration::from_millis(wait_ms.unwrap_or_default())).await;
                }
                Action::Status { status, retry_after } => return Err(ApiError::injected(status, retry_after, &description)),
                Action::Reset | Action::Empty => {
                    let Some(control) = crate::server::ConnectionControl::current() else {
                        return Err(ApiError::new(
                            axum::http::StatusCode::BAD_GATEWAY,
                            "Bad Gateway",
                            format!("Injected by {description}, which needs a socket; served in process, the mock answers 502 instead."),
                        ));
                    };
                    if action == Action::Reset { control.reset() } else { control.close_silently() }
                    return Ok(axum::http::StatusCode::BAD_GATEWAY.into_response());
                }
                _ => {}
            }
        }
        let identity = match endpoint.operation {
            Some(op) => {
                let identity = http::identify(state, &parts)?;
                caller = Some(Caller::of(&identity));
                // A valid token, not processed: before the scope and role checks (facts §2.4).
                state.admit(&identity, endpoint.method.as_str(), endpoint.path).map_err(|limited| ApiError::rate_limited(limited, identity.client_id()))?;
                http::authorize(&identity, op, &parts)?;
                Some(identity)
            }
            None => None,
        };
        let body = match endpoint.request {
            Some(spec) => http::read_json(state, &parts, tracking_id, &body_bytes, spec.schema, !spec.required)?,
            None => Value::Null,
        };
        let raw_body = match &body_bytes {
            http::RequestBody::Bytes(bytes) => bytes.clone(),
            _ => axum::body::Bytes::new(),
        };
        let call = Call { state, tracking_id, identity, body, raw_body, parts };
        (endpoint.handler)(call).await
    }
    .await;
    // With --state-file, what a 2xx acknowledges is on disk before the 2xx goes out.
    if changes_state && result.as_ref().is_ok_and(|r| r.status().is_success()) {
        state.persist().await;
    }
    let fault = injected.map(|fired| http::InjectedFault {
        description: fired.describe().into(),
        unanswered: matches!(fired.action, Action::Reset | Action::Empty),
        malformed: fired.action == Action::Malformed,
    });
    Handled { result, caller, fault }
}

/// The fault for a request: the `X-Wxcc-Mock-Fault` header's (a bad one is a 400), or the first
/// rule that matches and fires.
fn fault_for(
    state: &AppState,
    endpoint: &Endpoint,
    parts: &axum::http::request::Parts,
) -> Result<Option<Fired>, ApiError> {
    if let Some(value) = http::find_header(&parts.headers, &FAULT_HEADER) {
        let text = value.to_str().unwrap_or_default();
        let fired = Fired::from_header(text).map_err(|why| {
            ApiError::bad_request(format!("The X-Wxcc-Mock-Fault header asks for no fault the mock knows: {why}."))
        })?;
        state.faults().count_header();
        return Ok(Some(fired));
    }
    if !state.faults().watches_http() {
        return Ok(None);
    }
    let identity = endpoint.operation.and_then(|_| http::identify(state, parts).ok());
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let facts = HttpFacts {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        org_id: identity.as_ref().map(|i| i.org().id.as_str()),
        user: identity.as_ref().map(|i| (i.user().email.as_str(), i.user().id.as_str())),
        client_id: identity.as_ref().map(|i| i.client_id().as_ref()),
        header: &header,
    };
    Ok(state.faults().http(&facts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_of_the_requirement_table_has_an_endpoint_and_ids_are_unique() {
        for op in Op::ALL {
            assert!(endpoints().iter().any(|e| e.operation == Some(*op)), "{op:?} has no endpoint");
        }
        let mut ids: Vec<&str> = endpoints().iter().map(|e| e.id).collect();
        ids.sort_unstable();
        let before = ids.len();
        ids.dedup();
        assert_eq!(ids.len(), before, "operationIds are unique");
        let mut routes: Vec<(String, &str)> = endpoints().iter().map(|e| (e.method.to_string(), e.path)).collect();
        routes.sort_unstable();
        routes.dedup();
        assert_eq!(routes.len(), before, "each method and path appears once");
    }

    #[test]
    fn wxcc_endpoints_need_a_token_and_the_mocks_own_do_not() {
        for e in endpoints() {
            let own = e.path.starts_with("/__admin") || e.path == "/openapi.json" || e.id == "notificationConnect";
            assert_eq!(e.operation.is_none(), own, "{} {}", e.method, e.path);
        }
    }
}

#[cfg(test)]
mod openapi_tests {
    use serde_json::Value;

    use super::{endpoints, openapi_document, openapi_text};

    const COMMITTED: &str = "../schemas/openapi.json";

    /// `UPDATE_OPENAPI=1 cargo test -p wxcc-mock openapi` rewrites the committed file.
    #[test]
    fn the_committed_openapi_json_is_up_to_date() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(COMMITTED);
        if std::env::var_os("UPDATE_OPENAPI").is_some() {
            std::fs::write(&path, openapi_text()).expect("write schemas/openapi.json");
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == openapi_text(),
            "schemas/openapi.json is out of date: run UPDATE_OPENAPI=1 cargo test -p wxcc-mock openapi and review the diff"
        );
    }

    #[test]
    fn every_query_parameter_schema_is_json_and_a_required_one_is_documented_as_such() {
        for endpoint in endpoints() {
            for param in endpoint.query {
                let schema: Result<Value, _> = serde_json::from_str(param.schema);
                assert!(schema.is_ok_and(|s| s.is_object()), "{} ?{}: not a JSON object", endpoint.id, param.name);
            }
        }
        let doc = openapi_document();
        let params = doc["paths"]["/v1/tasks"]["get"]["parameters"].as_array().cloned().unwrap_or_default();
        let from = params.iter().find(|p| p["name"] == "from").expect("?from documented");
        assert_eq!((from["in"].as_str(), from["required"].as_bool()), (Some("query"), Some(true)));
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
        let doc = openapi_document();
        let mut all = Vec::new();
        refs(doc, &mut all);
        assert!(all.len() > 50);
        for r in all {
            let pointer = r.strip_prefix('#').expect("local reference");
            assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
        }
    }

    #[test]
    fn every_endpoint_is_an_operation_of_the_document_with_its_method() {
        let doc = openapi_document();
        let mut operations = 0;
        for item in doc["paths"].as_object().expect("paths").values() {
            operations += item.as_object().map_or(0, |m| m.len());
        }
        assert_eq!(operations, endpoints().len());
        let logout = &doc["paths"]["/v1/agents/logout"];
        assert!(logout.get("put").is_some() && logout.get("post").is_some());
        assert_eq!(doc["openapi"], "3.1.0");
    }
}
