//! `/v1/tasks` and `/__admin/tasks`: contacts offered, accepted, held, ended, wrapped up,
//! RONA'd, declined, transferred and dialled out, with real websockets over a real socket.

use serde_json::{Value, json};
use wxcc_contract_tests::TestApp;
use wxcc_contract_tests::webhooks::WebhookReceiver;
use wxcc_contract_tests::ws::Ws;
use wxcc_schemas::SchemaId;

const AGENT2: &str = "agent2@wxcc.example";
const SUPERVISOR: &str = "supervisor@wxcc.example";
const AGENT1: &str = "agent1@wxcc.example";
const SECRET: &str = "0123456789abcdef0123456789abcdef";

/// The id of the first organisation's queue called `name`.
pub fn queue(app: &TestApp, name: &str) -> String {
    let org = &app.world().orgs[0];
    org.queues.iter().find(|q| q.name == name).map(|q| q.id.clone()).unwrap_or_else(|| panic!("no queue {name}"))
}

/// The id of the first organisation's team called `name`.
pub fn team(app: &TestApp, name: &str) -> String {
    let org = &app.world().orgs[0];
    org.teams.iter().find(|t| t.name == name).map(|t| t.id.clone()).unwrap_or_else(|| panic!("no team {name}"))
}

/// The id of the first organisation's auxiliary code called `name`.
pub fn aux_code(app: &TestApp, name: &str) -> String {
    let org = &app.world().orgs[0];
    org.aux_codes.iter().find(|a| a.name == name).map(|a| a.id.clone()).unwrap_or_else(|| panic!("no code {name}"))
}

/// An agent at their desk: a notification websocket, logged in to a team.
pub struct Desk {
    /// Their bearer token.
    pub token: String,
    /// Their websocket.
    pub ws: Ws,
    /// Their user id.
    pub id: String,
}

impl Desk {
    /// Connects the websocket and logs in to `team_name` on `dial` (still Idle).
    pub async fn logged_in(app: &TestApp, email: &str, dial: &str, team_name: &str) -> Desk {
        let token = app.token(email, &["cjp:user"]);
        let body = json!({"clientType": "AgentDesktop", "isKeepAliveEnabled": false, "allowMultiLogin": false});
        let ws = Ws::open(app, &token, &body).await;
        let mut desk = Desk { token, ws, id: app.user_id(email) };
        let login = json!({
            "dialNumber": dial, "teamId": team(app, team_name), "roles": ["agent"],
            "deviceType": "EXTENSION", "isExtension": true,
        });
        app.post("/v1/agents/login").bearer(&desk.token).json(&login).send().await.expect(202, None);
        desk.expect("AgentStationLoginSuccess").await;
        desk
    }

    /// Logged in and Available.
    pub async fn available(app: &TestApp, email: &str, dial: &str, team_name: &str) -> Desk {
        let mut desk = Desk::logged_in(app, email, dial, team_name).await;
        desk.go_available(app).await;
        desk
    }

    /// `PUT /v1/agents/session/state` Available, and its success message.
    pub async fn go_available(&mut self, app: &TestApp) {
        let body = json!({"state": "Available", "auxCodeId": "0"});
        app.put("/v1/agents/session/state").bearer(&self.token).json(&body).send().await.expect(202, None);
        let m = self.expect("AgentStateChangeSuccess").await;
        assert_eq!(m["data"]["subStatus"], "Available");
    }

    /// The next message, which must be of `data.type` `kind`.
    pub async fn expect(&mut self, kind: &str) -> Value {
        let m = self.ws.next().await;
        assert_eq!(m["data"]["type"], kind, "expected {kind}, got {m}");
        m
    }

    /// `POST /v1/tasks/{id}/{action}` with `body`: must answer 202; returns its TrackingID.
    pub async fn command(&self, app: &TestApp, id: &str, action: &str, body: Option<Value>) -> String {
        let mut request = app.post(&format!("/v1/tasks/{id}/{action}")).bearer(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let reply = request.send().await.expect(202, None);
        reply.tracking_id().to_owned()
    }

    /// Expects the offer of a task: `AgentContactReserved` then `AgentOfferContact`; returns the
    /// offer.
    pub async fn offered(&mut self) -> Value {
        let reserved = self.expect("AgentContactReserved").await;
        let offer = self.expect("AgentOfferContact").await;
        assert_eq!(reserved["data"]["interactionId"], offer["data"]["interactionId"]);
        assert_eq!(offer["data"]["agentId"], self.id.as_str());
        offer
    }
}

/// `POST /__admin/tasks` with `body`: must answer 201; returns the task view.
pub async fn inject(app: &TestApp, body: Value) -> Value {
    app.post("/__admin/tasks").json(&body).send().await.expect(201, Some(SchemaId::AdminTaskResponse)).body
}

/// `GET /__admin/tasks/{id}`.
pub async fn view(app: &TestApp, id: &str) -> Value {
    app.get(&format!("/__admin/tasks/{id}")).send().await.expect(200, Some(SchemaId::AdminTaskResponse)).body
}

/// `POST /__admin/tasks/{id}/{action}`: must answer 200; returns the task view.
pub async fn control(app: &TestApp, id: &str, action: &str) -> Value {
    let path = format!("/__admin/tasks/{id}/{action}");
    app.post(&path).json(&json!({})).send().await.expect(200, Some(SchemaId::AdminTaskResponse)).body
}

fn id_of(view: &Value) -> String {
    view["taskId"].as_str().expect("taskId").to_owned()
}

fn wrapup_body(app: &TestApp, code: &str) -> Value {
    json!({"wrapUpReason": code, "auxCodeId": aux_code(app, code)})
}

#[tokio::test]
async fn a_chat_is_offered_accepted_ended_and_wrapped_up_with_the_real_messages() {
    let app = TestApp::spawn().await;
    let mut me = Desk::available(&app, AGENT2, "1002", "Support").await;
    let chat = queue(&app, "Support Chat");
    let task = inject(&app, json!({"mediaType": "chat", "queueId": chat, "customerName": "Ada"})).await;
    assert_eq!((task["state"].as_str(), task["agentId"].as_str()), (Some("offered"), Some(me.id.as_str())));
    let id = id_of(&task);

    let offer = me.offered().await;
    assert_eq!(offer["data"]["interactionId"], id);
    assert_eq!(offer["data"]["mediaResourceId"], id);
    assert_eq!(offer["data"]["queueId"], chat);
    assert_eq!(offer["data"]["ronaTimeout"], 30, "Support Chat's RONA timeout");
    let interaction = &offer["data"]["interaction"];
    assert_eq!(interaction["mediaType"], "chat");
    assert_eq!(interaction["state"], "new");
    assert_eq!(interaction["callAssociatedDetails"]["customerName"], "Ada");

    let tracking = me.command(&app, &id, "accept", None).await;
    let assigned = me.expect("AgentContactAssigned").await;
    assert_eq!(assigned["data"]["trackingId"], tracking, "the result carries the request's TrackingID");
    assert_eq!(assigned["data"]["interaction"]["state"], "connected");
    assert_eq!(view(&app, &id).await["state"], "connected");

    me.command(&app, &id, "end", None).await;
    let ended = me.expect("ContactEnded").await;
    assert_eq!(ended["data"]["wrapUpRequired"], true);
    assert_eq!(ended["data"]["agentsPendingWrapUp"], json!([me.id]));
    assert_eq!(ended["data"]["terminatingParty"], "Agent");
    me.expect("AgentWrapup").await;
    assert_eq!(view(&app, &id).await["state"], "wrapup");

    me.command(&app, &id, "wrapup", Some(wrapup_body(&app, "Resolved"))).await;
    let wrapped = me.expect("AgentWrappedUp").await;
    assert_eq!(wrapped["data"]["wrapUpAuxCodeId"], aux_code(&app, "Resolved"));
    let done = view(&app, &id).await;
    assert_eq!((done["state"].as_str(), done["status"].as_str()), (Some("completed"), Some("completed")));

    let search = format!("/v1/tasks?from={}", wxcc_contract_tests::TEST_EPOCH_MS);
    let reply = app.get(&search).bearer(&app.world_token("admin-full")).send().await;
    let found = reply.expect(200, Some(SchemaId::TaskListResponse)).body;
    let attributes = &found["data"][0]["attributes"];
    assert_eq!(found["data"][0]["id"], id);
    assert_eq!(attributes["status"], "completed");
    assert_eq!(attributes["reasonCode"], "Resolved");
    assert_eq!(attributes["owner"]["id"], me.id);
    assert_eq!(attributes["queue"]["name"], "Support Chat");
}

#[tokio::test]
async fn a_call_answered_on_the_phone_is_held_resumed_ended_and_wrapped_up() {
    let app = TestApp::spawn().await;
    let mut me = Desk::available(&app, AGENT2, "1002", "Support").await;
    let task = inject(&app, json!({"mediaType": "telephony", "queueId": queue(&app, "Support Voice")})).await;
    let id = id_of(&task);
    let offer = me.offered().await;
    assert_eq!(offer["data"]["ronaTimeout"], 18);
    assert_eq!(offer["data"]["interaction"]["mediaType"], "telephony");

    let answered = control(&app, &id, "answer").await;
    assert_eq!(answered["state"], "connected");
    me.expect("AgentContactAssigned").await;

    me.command(&app, &id, "hold", Some(json!({"mediaResourceId": id}))).await;
    let held = me.expect("AgentContactHeld").await;
    assert_eq!(held["data"]["interaction"]["media"][&id]["isHold"], true);
    assert_eq!(view(&app, &id).await["state"], "held");
    me.command(&app, &id, "hold", Some(json!({"mediaResourceId": id}))).await;
    let twice = me.expect("AgentContactHoldFailed").await;
    assert_eq!(twice["data"]["reason"], "INVALID_TASK_STATE");

    me.command(&app, &id, "unhold", Some(json!({"mediaResourceId": id}))).await;
    let resumed = me.expect("AgentContactUnheld").await;
    assert_eq!(resumed["data"]["interaction"]["media"][&id]["isHold"], false);

    me.command(&app, &id, "end", None).await;
    me.expect("ContactEnded").await;
    me.expect("AgentWrapup").await;
    me.command(&app, &id, "wrapup", Some(wrapup_body(&app, "Escalated"))).await;
    me.expect("AgentWrappedUp").await;
    assert_eq!(view(&app, &id).await["state"], "completed");
}

#[tokio::test]
async fn an_unanswered_offer_is_ronad_on_the_clock_and_offered_to_the_next_agent() {
    let app = TestApp::spawn().await;
    let mut first = Desk::available(&app, AGENT2, "1002", "Support").await;
    app.advance(1_000).await;
    let mut second = Desk::available(&app, SUPERVISOR, "1003", "Support").await;
    let task = inject(&app, json!({"mediaType": "telephony", "queueId": queue(&app, "Support Voice")})).await;
    let id = id_of(&task);
    assert_eq!(task["agentId"], first.id, "the agent Available longest gets it");
    assert_eq!(task["ronaAt"], app.clock().now_ms() + 18_000);
    first.offered().await;

    app.advance(17_999).await;
    assert_eq!(view(&app, &id).await["agentId"], first.id, "still ringing a millisecond before the timeout");
    app.advance(1).await;

    let rona = first.expect("AgentOfferContactRona").await;
    assert_eq!(
        (rona["data"]["reason"].as_str(), rona["data"]["reasonCode"].as_i64()),
        (Some("RONA_TIMER_EXPIRED"), Some(3002))
    );
    let idle = first.expect("AgentStateChangeSuccess").await;
    assert_eq!(idle["data"]["subStatus"], "Idle");
    assert_eq!(idle["data"]["auxCodeId"], aux_code(&app, "RONA"));
    let offer = second.offered().await;
    assert_eq!(offer["data"]["interactionId"], id);
    let now = view(&app, &id).await;
    assert_eq!((now["agentId"].as_str(), now["task"]["offers"].as_u64()), (Some(second.id.as_str()), Some(2)));

    // RONA via the admin control, at once: nobody is left, so the task waits.
    let waiting = control(&app, &id, "expire-rona").await;
    assert_eq!(waiting["state"], "queued");
    second.expect("AgentOfferContactRona").await;
    second.expect("AgentStateChangeSuccess").await;
}

#[tokio::test]
async fn a_task_waits_in_its_queue_until_an_agent_of_its_teams_is_available() {
    let app = TestApp::spawn().await;
    let mut me = Desk::logged_in(&app, AGENT2, "1002", "Support").await;
    let mut sales = Desk::available(&app, AGENT1, "1001", "Sales").await;
    let task = inject(&app, json!({"mediaType": "chat", "queueId": queue(&app, "Support Chat")})).await;
    assert_eq!(
        (task["state"].as_str(), task["agentId"].as_str()),
        (Some("queued"), None),
        "Sales is not a team of Support Chat"
    );
    me.go_available(&app).await;
    let offer = me.offered().await;
    assert_eq!(offer["data"]["interactionId"], task["taskId"]);
    // The Sales agent heard nothing: their next message is their own state change.
    let body = json!({"state": "Idle", "auxCodeId": aux_code(&app, "Meeting")});
    app.put("/v1/agents/session/state").bearer(&sales.token).json(&body).send().await.expect(202, None);
    sales.expect("AgentStateChangeSuccess").await;
}

#[tokio::test]
async fn a_declined_offer_makes_the_agent_idle_with_agent_declined_and_requeues_the_task() {
    let app = TestApp::spawn().await;
    let mut me = Desk::available(&app, AGENT2, "1002", "Support").await;
    let task = inject(&app, json!({"mediaType": "chat"})).await;
    let id = id_of(&task);
    me.offered().await;
    me.command(&app, &id, "reject", Some(json!({"mediaResourceId": id}))).await;
    let failed = me.expect("AgentContactAssignFailed").await;
    assert_eq!(
        (failed["data"]["reason"].as_str(), failed["data"]["reasonCode"].as_i64()),
        (Some("USER_DECLINED"), Some(3003))
    );
    let idle = me.expect("AgentStateChangeSuccess").await;
    assert_eq!(idle["data"]["auxCodeId"], aux_code(&app, "Agent_Declined"));
    assert_eq!(view(&app, &id).await["state"], "queued");

    // Available again, it comes back; the phone's decline (admin) does the same for a call.
    me.go_available(&app).await;
    me.offered().await;
    let call = inject(&app, json!({"mediaType": "telephony", "queueId": queue(&app, "Support Voice")})).await;
    me.offered().await;
    let declined = control(&app, &id_of(&call), "decline").await;
    assert_eq!(declined["state"], "queued");
    me.expect("AgentContactAssignFailed").await;
    me.expect("AgentStateChangeSuccess").await;
}

#[tokio::test]
async fn a_call_to_an_unreachable_phone_fails_the_invite_and_makes_the_agent_unavailable() {
    let app = TestApp::spawn().await;
    let mut me = Desk::available(&app, AGENT2, "1002", "Support").await;
    let path = format!("/__admin/agents/{}/device", me.id);
    app.post(&path).json(&json!({"reachable": false})).send().await.expect(200, None);
    let task = inject(&app, json!({"mediaType": "telephony", "queueId": queue(&app, "Support Voice")})).await;
    assert_eq!(task["state"], "queued");
    me.offered().await;
    let failed = me.expect("AgentInviteFailed").await;
    assert_eq!(failed["data"]["reason"], "AGENT_DEVICE_UNREACHABLE");
    let idle = me.expect("AgentStateChangeSuccess").await;
    assert_eq!(idle["data"]["auxCodeId"], aux_code(&app, "Agent_Unavailable"));

    app.post(&path).json(&json!({"reachable": true})).send().await.expect(200, None);
    me.go_available(&app).await;
    me.offered().await;
    app.post("/__admin/agents/no-such-agent/device").json(&json!({"reachable": true})).send().await.expect(404, None);
}

#[tokio::test]
async fn a_customer_who_hangs_up_ends_the_task_with_or_without_wrap_up() {
    let app = TestApp::spawn().await;
    let mut me = Desk::logged_in(&app, AGENT2, "1002", "Support").await;
    // Queued: abandoned, nobody hears a thing.
    let queued = inject(&app, json!({"mediaType": "email"})).await;
    let gone = control(&app, &id_of(&queued), "customer-hangup").await;
    assert_eq!((gone["state"].as_str(), gone["status"].as_str()), (Some("abandoned"), Some("abandoned")));
    assert_eq!(gone["task"]["leg"]["terminatingParty"], "Customer");
    me.go_available(&app).await;

    // Ringing: the offer ends, no wrap-up.
    let ringing = inject(&app, json!({"mediaType": "email"})).await;
    me.offered().await;
    control(&app, &id_of(&ringing), "customer-hangup").await;
    let ended = me.expect("ContactEnded").await;
    assert_eq!(ended["data"]["wrapUpRequired"], false);
    assert_eq!(ended["data"]["terminatingParty"], "Customer");

    // Connected: wrap-up follows.
    let connected = inject(&app, json!({"mediaType": "email"})).await;
    let id = id_of(&connected);
    me.offered().await;
    me.command(&app, &id, "accept", None).await;
    me.expect("AgentContactAssigned").await;
    control(&app, &id, "customer-hangup").await;
    assert_eq!(me.expect("ContactEnded").await["data"]["wrapUpRequired"], true);
    me.expect("AgentWrapup").await;
    let again =
        app.post(&format!("/__admin/tasks/{id}/customer-hangup")).json(&json!({})).send().await.expect(409, None);
    assert!(again.body["error"]["message"].as_str().unwrap_or_default().contains("already ended"), "{}", again.body);
}

#[tokio::test]
async fn an_agent_gets_as_many_chats_as_the_profile_allows_and_no_new_contact_while_wrapping_up() {
    let app = TestApp::spawn().await;
    let mut me = Desk::available(&app, AGENT2, "1002", "Support").await;
    let first = id_of(&inject(&app, json!({"mediaType": "chat"})).await);
    me.offered().await;
    let second = inject(&app, json!({"mediaType": "chat"})).await;
    assert_eq!(second["state"], "offered", "chat capacity is 2");
    me.offered().await;
    let third = inject(&app, json!({"mediaType": "chat"})).await;
    assert_eq!(third["state"], "queued", "a third chat waits");
    let third = id_of(&third);

    me.command(&app, &first, "accept", None).await;
    me.expect("AgentContactAssigned").await;
    me.command(&app, &first, "end", None).await;
    me.expect("ContactEnded").await;
    me.expect("AgentWrapup").await;
    assert_eq!(view(&app, &third).await["state"], "queued", "nothing new while wrapping up");
    me.command(&app, &first, "wrapup", Some(wrapup_body(&app, "Resolved"))).await;
    me.expect("AgentWrappedUp").await;
    let offer = me.offered().await;
    assert_eq!(offer["data"]["interactionId"], third);
}

#[tokio::test]
async fn logout_is_refused_while_a_task_is_active_and_a_reload_sends_the_task_back() {
    let app = TestApp::spawn().await;
    let mut me = Desk::available(&app, AGENT2, "1002", "Support").await;
    let id = id_of(&inject(&app, json!({"mediaType": "chat"})).await);
    me.offered().await;
    me.command(&app, &id, "accept", None).await;
    me.expect("AgentContactAssigned").await;

    let logout = json!({"logoutReason": "end of shift"});
    app.put("/v1/agents/logout").bearer(&me.token).json(&logout).send().await.expect(202, None);
    let refused = me.expect("AgentLogoutFailed").await;
    assert_eq!(refused["data"]["reason"], "AGENT_HAS_ACTIVE_TASKS");

    app.post("/v1/agents/reload").bearer(&me.token).json(&json!({})).send().await.expect(202, None);
    me.expect("AgentReloginSuccess").await;
    let contact = me.expect("AgentContact").await;
    assert_eq!(contact["data"]["interactionId"], id);
    assert_eq!(contact["data"]["interaction"]["state"], "connected");

    me.command(&app, &id, "end", None).await;
    me.expect("ContactEnded").await;
    me.expect("AgentWrapup").await;
    app.put("/v1/agents/logout").bearer(&me.token).json(&logout).send().await.expect(202, None);
    me.expect("AgentLogoutFailed").await;
    me.command(&app, &id, "wrapup", Some(wrapup_body(&app, "Resolved"))).await;
    me.expect("AgentWrappedUp").await;
    app.put("/v1/agents/logout").bearer(&me.token).json(&logout).send().await.expect(202, None);
    me.expect("AgentLogoutSuccess").await;
}

#[tokio::test]
async fn an_outdial_answers_201_with_the_task_id_and_rings_the_agent() {
    let app = TestApp::spawn().await;
    let mut me = Desk::logged_in(&app, AGENT2, "1002", "Support").await;
    let entry_point = app.world().orgs[0]
        .entry_points
        .iter()
        .find(|e| e.entry_point_type == "OUTBOUND")
        .expect("outbound")
        .id
        .clone();
    let body = json!({"entryPointId": entry_point, "destination": "+14155550199", "direction": "OUTBOUND",
        "mediaType": "telephony", "outboundType": "OUTDIAL", "origin": "+14155550101"});
    let created = app.post("/v1/tasks").bearer(&me.token).json(&body).send().await;
    let created = created.expect(201, Some(SchemaId::TaskCreateResponse));
    let id = created.body["data"]["id"].as_str().expect("id").to_owned();
    assert_eq!(created.body["meta"]["orgId"], app.org_of(AGENT2));

    let offer = me.offered().await;
    assert_eq!(offer["data"]["interactionId"], id);
    let interaction = &offer["data"]["interaction"];
    assert_eq!(interaction["outboundType"], "OUTDIAL");
    assert_eq!(interaction["contactDirection"]["type"], "OUTBOUND");
    assert_eq!(interaction["callAssociatedDetails"]["dn"], "+14155550199");
    assert_eq!(interaction["callAssociatedDetails"]["ani"], "+14155550101");
    control(&app, &id, "answer").await;
    me.expect("AgentContactAssigned").await;
    let search = format!("/v1/tasks?from={}&channelTypes=telephony", wxcc_contract_tests::TEST_EPOCH_MS);
    let found = app.get(&search).bearer(&app.world_token("admin-full")).send().await.expect(200, None).body;
    assert_eq!(found["data"][0]["attributes"]["direction"], "outdial");
}

#[tokio::test]
async fn an_outdial_that_cannot_be_placed_answers_201_then_agent_outbound_failed() {
    let app = TestApp::spawn().await;
    let token = app.token(AGENT2, &["cjp:user"]);
    let body = json!({"clientType": "AgentDesktop", "isKeepAliveEnabled": false, "allowMultiLogin": false});
    let mut ws = Ws::open(&app, &token, &body).await;
    let inbound_ep = app.world().orgs[0].entry_points[0].id.clone();
    let outbound_ep =
        app.world().orgs[0].entry_points.iter().find(|e| e.entry_point_type == "OUTBOUND").expect("ep").id.clone();
    let dial = |entry_point: &str, destination: &str, origin: Option<&str>| {
        let mut body = json!({"entryPointId": entry_point, "destination": destination, "mediaType": "telephony"});
        if let Some(origin) = origin {
            body["origin"] = json!(origin);
        }
        body
    };
    let cases = [
        (dial(&outbound_ep, "+14155550199", None), "AGENT_NOT_LOGGED_IN"),
        (dial(&inbound_ep, "+14155550199", None), "INVALID_ENTRY_POINT"),
        (dial(&outbound_ep, "+14155550199", Some("+19995550000")), "INVALID_OUTDIAL_ANI"),
        (dial(&outbound_ep, "not a number", None), "INVALID_DESTINATION"),
    ];
    for (i, (body, reason)) in cases.iter().enumerate() {
        if i == 1 {
            let login = crate::login_body(&app, AGENT2, "1002");
            app.post("/v1/agents/login").bearer(&token).json(&login).send().await.expect(202, None);
            assert_eq!(ws.next().await["data"]["type"], "AgentStationLoginSuccess");
        }
        let created = app.post("/v1/tasks").bearer(&token).json(body).send().await.expect(201, None);
        let failed = ws.next().await;
        assert_eq!(failed["data"]["type"], "AgentOutboundFailed", "{body}");
        assert_eq!(failed["data"]["interactionId"], created.body["data"]["id"]);
        assert!(failed["data"]["reason"].as_str().unwrap_or_default().starts_with(reason), "{failed}");
    }
    let missing = app
        .post("/v1/tasks")
        .bearer(&token)
        .json(&json!({"entryPointId": outbound_ep, "mediaType": "telephony"}))
        .send()
        .await;
    assert_eq!(missing.expect(400, None).messages(), vec!["/destination: is required"]);
    // Cisco's SDK posts outdials to `/v1/tasks/`: a trailing slash names the same route.
    let sdk_path = app.post("/v1/tasks/").bearer(&token).json(&dial(&outbound_ep, "+14155550199", None)).send().await;
    sdk_path.expect(201, Some(SchemaId::TaskCreateResponse));
    assert_eq!(ws.next().await["data"]["type"], "AgentContactReserved");
}

#[tokio::test]
async fn a_blind_transfer_to_a_queue_routes_the_task_to_that_queues_team_while_the_agent_wraps_up() {
    let app = TestApp::spawn().await;
    let mut me = Desk::available(&app, AGENT2, "1002", "Support").await;
    let mut sales = Desk::available(&app, AGENT1, "1001", "Sales").await;
    let id = id_of(&inject(&app, json!({"mediaType": "telephony", "queueId": queue(&app, "Support Voice")})).await);
    me.offered().await;
    control(&app, &id, "answer").await;
    me.expect("AgentContactAssigned").await;

    let to_chat = json!({"to": queue(&app, "Support Chat"), "destinationType": "queue"});
    me.command(&app, &id, "transfer", Some(to_chat)).await;
    let wrong = me.expect("AgentVteamTransferFailed").await;
    assert_eq!(wrong["data"]["reason"], "INVALID_DESTINATION");

    let to_sales = json!({"to": queue(&app, "Sales Voice"), "destinationType": "queue"});
    me.command(&app, &id, "transfer", Some(to_sales)).await;
    me.expect("AgentVteamTransferred").await;
    me.expect("AgentWrapup").await;
    let offer = sales.offered().await;
    assert_eq!(offer["data"]["queueId"], queue(&app, "Sales Voice"));
    me.command(&app, &id, "wrapup", Some(wrapup_body(&app, "Escalated"))).await;
    me.expect("AgentWrappedUp").await;

    // To an agent: only that agent is offered it.
    control(&app, &id, "answer").await;
    sales.expect("AgentContactAssigned").await;
    let to_agent = json!({"to": me.id, "destinationType": "agent"});
    sales.command(&app, &id, "transfer", Some(to_agent)).await;
    sales.expect("AgentBlindTransferred").await;
    sales.expect("AgentWrapup").await;
    let back = me.offered().await;
    assert_eq!(back["data"]["interactionId"], id);
}

#[tokio::test]
async fn refused_commands_arrive_as_their_failed_message_with_a_reason() {
    let app = TestApp::spawn().await;
    let mut me = Desk::available(&app, AGENT2, "1002", "Support").await;
    let id = id_of(&inject(&app, json!({"mediaType": "chat"})).await);
    me.offered().await;

    me.command(&app, &id, "hold", Some(json!({"mediaResourceId": id}))).await;
    let m = me.expect("AgentContactHoldFailed").await;
    assert_eq!(m["data"]["reason"], "NOT_SUPPORTED_FOR_CHANNEL", "only calls are held");
    me.command(&app, &id, "reject", Some(json!({"mediaResourceId": "another-leg"}))).await;
    assert_eq!(me.expect("AgentContactAssignFailed").await["data"]["reason"], "INVALID_MEDIA_RESOURCE");
    me.command(&app, &id, "accept", None).await;
    me.expect("AgentContactAssigned").await;
    me.command(&app, &id, "wrapup", Some(wrapup_body(&app, "Resolved"))).await;
    assert_eq!(me.expect("AgentWrapupFailed").await["data"]["reason"], "INVALID_TASK_STATE");
    me.command(&app, &id, "end", None).await;
    me.expect("ContactEnded").await;
    me.expect("AgentWrapup").await;
    let meeting = json!({"wrapUpReason": "x", "auxCodeId": aux_code(&app, "Meeting")});
    me.command(&app, &id, "wrapup", Some(meeting)).await;
    let bad = me.expect("AgentWrapupFailed").await;
    assert_eq!(bad["data"]["reason"], "INVALID_WRAP_UP_CODE", "an idle code is not a wrap-up code");
    assert!(bad["data"]["interaction"].is_object(), "the task is the agent's: the interaction comes along");

    let ghost = "00000000-0000-4000-8000-000000000000";
    me.command(&app, ghost, "end", None).await;
    let missing = me.expect("AgentContactEndFailed").await;
    assert_eq!(
        (missing["data"]["reason"].as_str(), missing["data"]["interactionId"].as_str()),
        (Some("TASK_NOT_FOUND"), Some(ghost))
    );
    assert!(missing["data"].get("interaction").is_none());
}

#[tokio::test]
async fn consults_conferences_and_recording_answer_202_then_fail_as_not_simulated() {
    let app = TestApp::spawn().await;
    let mut me = Desk::available(&app, AGENT2, "1002", "Support").await;
    let id = id_of(&inject(&app, json!({"mediaType": "telephony", "queueId": queue(&app, "Support Voice")})).await);
    me.offered().await;
    control(&app, &id, "answer").await;
    me.expect("AgentContactAssigned").await;
    let calls = [
        ("consult", json!({"to": "1001", "destinationType": "dialNumber"}), "AgentConsultFailed"),
        ("consult/accept", json!({}), "AgentContactAssignFailed"),
        ("consultAccept", json!({}), "AgentContactAssignFailed"),
        ("consult/end", json!({"isConsult": true}), "AgentConsultEndFailed"),
        ("consult/transfer", json!({"to": me.id, "destinationType": "agent"}), "AgentConsultTransferFailed"),
        ("consult/conference", json!({"to": me.id, "destinationType": "agent"}), "AgentConsultConferenceFailed"),
        ("conference/exit", json!({}), "ParticipantLeftConferenceFailed"),
        ("conference/transfer", json!({}), "AgentConferenceTransferFailed"),
        ("cancelCtq", json!({}), "AgentCtqCancelFailed"),
        ("record/pause", json!({}), "ContactRecordingPauseFailed"),
        ("record/resume", json!({"autoResumed": false}), "ContactRecordingResumeFailed"),
    ];
    for (action, body, failed) in calls {
        me.command(&app, &id, action, Some(body)).await;
        let m = me.expect(failed).await;
        assert_eq!(m["data"]["reason"], "NOT_SUPPORTED_BY_WXCC_MOCK", "{action}");
    }
    assert_eq!(view(&app, &id).await["state"], "connected", "nothing changed");
}

#[tokio::test]
async fn task_calls_check_the_token_then_the_scope_then_the_body() {
    let app = TestApp::new();
    let id = "00000000-0000-4000-8000-000000000000";
    let path = format!("/v1/tasks/{id}/wrapup");
    app.post(&path).json(&json!({})).send().await.expect(400, None);
    app.post(&path).bearer("not-a-token").json(&json!({})).send().await.expect(401, None);
    let read_only = app.token(AGENT2, &["cjp:config_read"]);
    let reply = app.post(&path).bearer(&read_only).raw(b"{not json".to_vec(), "application/json").send().await;
    assert!(reply.expect(403, None).diagnostic().contains("cjp:user"), "the 403 names the missing scope");
    let pod = app.token(AGENT2, &["cloud-contact-center:pod_conv"]);
    let reply = app.post(&path).bearer(&pod).json(&json!({"auxCodeId": ""})).send().await.expect(400, None);
    assert_eq!(reply.messages(), vec!["/auxCodeId: must be at least 1 character", "/wrapUpReason: is required"]);
    let outdial = app.post("/v1/tasks").bearer(&pod).json(&json!({})).send().await.expect(403, None);
    assert!(outdial.diagnostic().contains("cjp:user"), "{}", outdial.diagnostic());
}

#[tokio::test]
async fn the_task_search_needs_a_config_read_scope_and_a_from_time() {
    let app = TestApp::new();
    inject(&app, json!({"mediaType": "chat"})).await;
    inject(&app, json!({"mediaType": "email"})).await;
    app.get("/v1/tasks?from=0").bearer(&app.world_token("agent2")).send().await.expect(403, None);
    let admin = app.world_token("admin-read-only");
    let reply = app.get("/v1/tasks").bearer(&admin).send().await.expect(400, None);
    assert!(
        reply.body["error"]["message"][0]["description"].as_str().unwrap_or_default().contains("?from"),
        "{}",
        reply.body
    );
    app.get("/v1/tasks?from=yesterday").bearer(&admin).send().await.expect(400, None);
    app.get("/v1/tasks?from=9007199254740992").bearer(&admin).send().await.expect(400, None);
    app.get("/v1/tasks?from=0&to=-1").bearer(&admin).send().await.expect(400, None);
    app.get("/v1/tasks?from=0&pageSize=1001").bearer(&admin).send().await.expect(400, None);
    app.get("/v1/tasks?from=0&channelTypes=fax").bearer(&admin).send().await.expect(400, None);
    let both = app.get("/v1/tasks?from=0").bearer(&admin).send().await.expect(200, Some(SchemaId::TaskListResponse));
    assert_eq!(both.body["data"].as_array().map(Vec::len), Some(2));
    let email = app.get("/v1/tasks?from=0&channelTypes=email").bearer(&admin).send().await.expect(200, None);
    assert_eq!(email.body["data"][0]["attributes"]["channelType"], "email");
    assert_eq!(email.body["data"].as_array().map(Vec::len), Some(1));
    let other_org = app.get("/v1/tasks?from=0").bearer(&app.world_token("globex-admin")).send().await.expect(200, None);
    assert_eq!(other_org.body["data"], json!([]), "an organisation sees its own tasks only");
}

#[tokio::test]
async fn a_command_on_another_organisations_task_fails_as_not_found() {
    let app = TestApp::spawn().await;
    let mut me = Desk::logged_in(&app, AGENT2, "1002", "Support").await;
    let globex = app.world().orgs[1].id.clone();
    let theirs = id_of(&inject(&app, json!({"mediaType": "telephony", "orgId": globex})).await);
    me.command(&app, &theirs, "accept", None).await;
    let m = me.expect("AgentContactAssignFailed").await;
    assert_eq!(m["data"]["reason"], "TASK_NOT_FOUND");
    assert!(m["data"].get("interaction").is_none(), "nothing of the other organisation's task is shown");
}

#[tokio::test]
async fn the_admin_injection_explains_what_it_cannot_route() {
    let app = TestApp::new();
    let reply = app
        .post("/__admin/tasks")
        .json(&json!({"mediaType": "chat", "queueId": "nope"}))
        .send()
        .await
        .expect(404, None);
    assert!(
        reply.body["error"]["message"].as_str().unwrap_or_default().contains("Support Chat"),
        "lists the queues: {}",
        reply.body
    );
    let voice = queue(&app, "Support Voice");
    let reply =
        app.post("/__admin/tasks").json(&json!({"mediaType": "chat", "queueId": voice})).send().await.expect(404, None);
    assert!(reply.body["error"]["message"].as_str().unwrap_or_default().contains("serves telephony"), "{}", reply.body);
    let globex = app.world().orgs[1].id.clone();
    app.post("/__admin/tasks").json(&json!({"mediaType": "chat", "orgId": globex})).send().await.expect(404, None);
    app.post("/__admin/tasks").json(&json!({"mediaType": "fax"})).send().await.expect(400, None);
    app.get("/__admin/tasks/nope").send().await.expect(404, None);
    app.post("/__admin/tasks/nope/answer").json(&json!({})).send().await.expect(404, None);
    let queued = inject(&app, json!({"mediaType": "chat"})).await;
    let reply =
        app.post(&format!("/__admin/tasks/{}/answer", id_of(&queued))).json(&json!({})).send().await.expect(409, None);
    assert!(reply.body["error"]["message"].as_str().unwrap_or_default().contains("not ringing"), "{}", reply.body);
    let list = app.get("/__admin/tasks").send().await.expect(200, None).body;
    assert_eq!(list["tasks"][0]["taskId"], queued["taskId"]);
}

#[tokio::test]
async fn a_task_1_0_0_subscription_receives_the_task_events_signed_and_in_order() {
    let app = TestApp::spawn().await;
    let mut receiver = WebhookReceiver::start(Some(SECRET)).await;
    let types =
        ["task:new", "task:parked", "task:connect", "task:connected", "task:on-hold", "task:hold-done", "task:ended"];
    let body = json!({"name": "tasks", "eventTypes": types, "destinationUrl": receiver.url,
        "secret": SECRET, "resourceVersion": "task:1.0.0"});
    app.post("/v2/subscriptions").bearer(&app.world_token("admin-full")).json(&body).send().await.expect(201, None);
    let mut me = Desk::available(&app, AGENT2, "1002", "Support").await;
    let id = id_of(
        &inject(
            &app,
            json!({"mediaType": "telephony", "queueId": queue(&app, "Support Voice"), "origin": "+14085550001"}),
        )
        .await,
    );
    me.offered().await;
    control(&app, &id, "answer").await;
    me.expect("AgentContactAssigned").await;
    me.command(&app, &id, "hold", Some(json!({"mediaResourceId": id}))).await;
    me.expect("AgentContactHeld").await;
    me.command(&app, &id, "unhold", Some(json!({"mediaResourceId": id}))).await;
    me.expect("AgentContactUnheld").await;
    control(&app, &id, "customer-hangup").await;

    let mut got = Vec::new();
    for _ in 0..types.len() {
        let hook = receiver.next().await;
        assert_eq!(hook.signature_ok, Some(true));
        assert_eq!(hook.header("x-webexcc-webhook-version"), Some("task:1.0.0"));
        if let Err(v) = wxcc_schemas::validate(SchemaId::WebhookEvent, &hook.body) {
            panic!("breaks webhook-event: {v:?}\n{}", hook.body);
        }
        assert_eq!(hook.body["data"]["taskId"], id);
        assert_eq!(hook.body["data"]["origin"], "+14085550001");
        got.push((hook.body["type"].as_str().unwrap_or_default().to_owned(), hook.body["data"]["agentId"].clone()));
    }
    let me_id = json!(me.id);
    let want: Vec<(String, Value)> = [
        ("task:new", Value::Null),
        ("task:parked", Value::Null),
        ("task:connect", me_id.clone()),
        ("task:connected", me_id.clone()),
        ("task:on-hold", me_id.clone()),
        ("task:hold-done", me_id.clone()),
        ("task:ended", me_id),
    ]
    .into_iter()
    .map(|(t, a)| (t.to_owned(), a))
    .collect();
    assert_eq!(got, want);
}

#[tokio::test]
async fn an_agent_2_0_0_subscription_hears_the_channel_states_of_a_task() {
    let app = TestApp::spawn().await;
    let mut receiver = WebhookReceiver::start(Some(SECRET)).await;
    let body = json!({"name": "channels", "eventTypes": ["agent:channelType_state_change"], "destinationUrl": receiver.url,
        "secret": SECRET, "resourceVersion": "agent:2.0.0"});
    app.post("/v2/subscriptions").bearer(&app.world_token("admin-full")).json(&body).send().await.expect(201, None);
    let mut me = Desk::logged_in(&app, AGENT2, "1002", "Support").await;
    me.go_available(&app).await;
    let id = id_of(&inject(&app, json!({"mediaType": "chat"})).await);
    me.offered().await;
    me.command(&app, &id, "accept", None).await;
    me.expect("AgentContactAssigned").await;
    me.command(&app, &id, "end", None).await;
    me.expect("ContactEnded").await;
    me.expect("AgentWrapup").await;
    me.command(&app, &id, "wrapup", Some(wrapup_body(&app, "Resolved"))).await;
    me.expect("AgentWrappedUp").await;

    let mut states = Vec::new();
    for _ in 0..5 {
        let hook = receiver.next().await;
        assert_eq!(hook.signature_ok, Some(true));
        let data = &hook.body["data"];
        states.push((
            data["channelType"].as_str().unwrap_or_default().to_owned(),
            data["currentState"].as_str().unwrap_or_default().to_owned(),
        ));
    }
    let chat = |s: &str| ("chat".to_owned(), s.to_owned());
    assert_eq!(states[0], ("telephony".to_owned(), "Available".to_owned()), "{states:?}");
    assert_eq!(&states[1..], &[chat("Reserved"), chat("Engaged"), chat("WrapUp"), chat("Available")][..], "{states:?}");
}

#[tokio::test]
async fn finished_tasks_beyond_the_history_bound_are_forgotten_oldest_first_and_counted() {
    let options = wxcc_mock::state::StateOptions { task_history: 2, ..Default::default() };
    let app = TestApp::with_options(wxcc_mock::World::default_world(), options);
    let mut ids = Vec::new();
    for _ in 0..3 {
        let id = id_of(&inject(&app, json!({"mediaType": "email"})).await);
        control(&app, &id, "customer-hangup").await;
        ids.push(id);
    }
    let waiting = id_of(&inject(&app, json!({"mediaType": "email"})).await);
    let list = app.get("/__admin/tasks").send().await.expect(200, None).body;
    let kept: Vec<&str> =
        list["tasks"].as_array().expect("tasks").iter().filter_map(|t| t["taskId"].as_str()).collect();
    assert_eq!(kept, [ids[1].as_str(), ids[2].as_str(), waiting.as_str()], "the oldest finished task went first");
    let history = &app.admin_state().await["taskHistory"];
    assert_eq!(*history, json!({"kept": 3, "finishedLimit": 2, "forgotten": 1}));
    app.get(&format!("/__admin/tasks/{}", ids[0])).send().await.expect(404, None);
}

#[tokio::test]
async fn a_v1_subscription_that_names_task_events_receives_them_too() {
    let app = TestApp::spawn().await;
    let mut receiver = WebhookReceiver::start(Some(SECRET)).await;
    let body = json!({"name": "v1 tasks", "eventTypes": ["task:new", "task:ended"], "destinationUrl": receiver.url, "secret": SECRET});
    app.post("/v1/subscriptions").bearer(&app.world_token("admin-full")).json(&body).send().await.expect(201, None);
    let id = id_of(&inject(&app, json!({"mediaType": "social"})).await);
    control(&app, &id, "customer-hangup").await;
    let mut got = Vec::new();
    for _ in 0..2 {
        let hook = receiver.next().await;
        assert_eq!(hook.signature_ok, Some(true));
        assert!(hook.body.get("comciscotimestamp").is_none(), "v1 has no timestamp");
        assert_eq!(hook.body["data"]["taskId"], id);
        got.push(hook.body["type"].as_str().unwrap_or_default().to_owned());
    }
    assert_eq!(got, ["task:new", "task:ended"]);
}

#[tokio::test]
async fn a_ringing_task_saved_to_a_state_file_and_restored_rings_on_and_is_ronad_at_its_deadline() {
    let app = TestApp::spawn().await;
    let mut agent = Desk::available(&app, AGENT2, "1002", "Support").await;
    let task = inject(&app, json!({"mediaType": "telephony", "queueId": queue(&app, "Support Voice")})).await;
    let id = id_of(&task);
    agent.offered().await;
    app.advance(10_000).await;
    // What a state file would hold, through its JSON.
    let saved: wxcc_mock::state::persist::Saved =
        serde_json::from_str(&serde_json::to_string(&app.state().saved()).expect("json")).expect("reads back");

    let clock = wxcc_mock::Clock::virtual_at(saved.clock_now);
    let state = wxcc_mock::AppState::with_clock(
        wxcc_mock::World::default_world(),
        clock,
        wxcc_mock::state::StateOptions::default(),
    );
    let restored = state.restore(saved);
    assert_eq!((restored.sessions, restored.tasks, restored.skipped.len()), (1, 1, 0));
    let again = TestApp::with_state(state);
    let before = view(&again, &id).await;
    assert_eq!((before["state"].as_str(), before["agentId"].as_str()), (Some("offered"), Some(agent.id.as_str())));
    assert_eq!(before["ronaAt"], task["ronaAt"], "the same deadline");
    again.advance(7_999).await;
    assert_eq!(view(&again, &id).await["state"], "offered");
    again.advance(1).await;
    let after = view(&again, &id).await;
    assert_eq!(after["state"], "queued", "RONA fired on the restored clock: {after}");
    let sessions = again.admin_state().await["agentSessions"].clone();
    assert_eq!(sessions[0]["auxCodeId"], aux_code(&again, "RONA"));
}
