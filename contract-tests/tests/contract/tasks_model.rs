//! Model-based: for any sequence of contacts arriving, agents' task commands, phones answering
//! or declining, customers hanging up, agents going Available and the clock moving, the mock
//! keeps the contract:
//!
//! - each command's result is what the task's state before it allows (the command's message, or
//!   its `…Failed`), and the only other messages are what routing and RONA add;
//! - every agent's messages about every task follow the task lifecycle, and end where the admin
//!   view says the task is;
//! - no agent holds more tasks of a channel than their profile allows; no task waits while an
//!   agent could take it; nothing rings past its RONA deadline;
//! - every task's webhooks follow the lifecycle, each exactly once, and end where the task is.

use std::collections::HashMap;

use proptest::prelude::*;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use wxcc_contract_tests::TestApp;
use wxcc_contract_tests::webhooks::RecordingTransport;
use wxcc_mock::World;
use wxcc_mock::delivery::DeliveryConfig;
use wxcc_mock::notifications::Outgoing;
use wxcc_mock::state::StateOptions;

use crate::tasks::{aux_code, queue, team};

const AGENTS: [&str; 2] = ["agent2@wxcc.example", "supervisor@wxcc.example"];
const HOOK: &str = "https://tasks.example.com/hook";

#[derive(Debug, Clone)]
enum Op {
    Inject { chat: bool },
    Accept { agent: usize, task: usize },
    Decline { agent: usize, task: usize },
    Hold { agent: usize, task: usize },
    Unhold { agent: usize, task: usize },
    End { agent: usize, task: usize },
    Wrapup { agent: usize, task: usize },
    Answer { task: usize },
    Hangup { task: usize },
    Available { agent: usize },
    Device { agent: usize, reachable: bool },
    Advance { ms: i64 },
}

fn op() -> impl Strategy<Value = Op> {
    let agent = 0..AGENTS.len();
    let task = 0usize..8;
    prop_oneof![
        4 => any::<bool>().prop_map(|chat| Op::Inject { chat }),
        3 => (agent.clone(), task.clone()).prop_map(|(agent, task)| Op::Accept { agent, task }),
        1 => (agent.clone(), task.clone()).prop_map(|(agent, task)| Op::Decline { agent, task }),
        1 => (agent.clone(), task.clone()).prop_map(|(agent, task)| Op::Hold { agent, task }),
        1 => (agent.clone(), task.clone()).prop_map(|(agent, task)| Op::Unhold { agent, task }),
        2 => (agent.clone(), task.clone()).prop_map(|(agent, task)| Op::End { agent, task }),
        2 => (agent.clone(), task.clone()).prop_map(|(agent, task)| Op::Wrapup { agent, task }),
        2 => task.clone().prop_map(|task| Op::Answer { task }),
        1 => task.prop_map(|task| Op::Hangup { task }),
        2 => agent.clone().prop_map(|agent| Op::Available { agent }),
        1 => (agent, any::<bool>()).prop_map(|(agent, reachable)| Op::Device { agent, reachable }),
        2 => prop_oneof![Just(1_000i64), Just(17_999), Just(18_000), Just(30_000), Just(45_000)].prop_map(|ms| Op::Advance { ms }),
    ]
}

/// Where one agent is with one task, by the messages they were sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    Reserved,
    Offered,
    Connected,
    Held,
    Ended,
    WrapUp,
    Done,
}

/// Where a task is, by its webhooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hooked {
    New,
    Queued,
    Ringing,
    Connected,
    Held,
    Ended,
}

/// A task as the admin API showed it before a command.
#[derive(Debug, Clone)]
struct Before {
    state: String,
    agent: Option<String>,
    telephony: bool,
    pending: Vec<String>,
}

impl Before {
    fn of(view: &Value) -> Before {
        Before {
            state: view["state"].as_str().unwrap_or_default().to_owned(),
            agent: view["agentId"].as_str().map(str::to_owned),
            telephony: view["task"]["channel"] == "telephony",
            pending: view["task"]["pendingWrapup"]
                .as_array()
                .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
                .unwrap_or_default(),
        }
    }

    fn with(&self, agent: &str) -> bool {
        self.agent.as_deref() == Some(agent)
    }
}

struct Run {
    app: TestApp,
    ids: Vec<String>,
    tokens: Vec<String>,
    sockets: Vec<mpsc::Receiver<Outgoing>>,
    seen: Vec<HashMap<String, Seen>>,
    reachable: Vec<bool>,
    available: Vec<bool>,
    telephony: HashMap<String, bool>,
}

fn kind(m: &Value) -> &str {
    m["data"]["type"].as_str().unwrap_or_default()
}

impl Run {
    async fn start() -> (Run, std::sync::Arc<RecordingTransport>) {
        let transport = RecordingTransport::new();
        let options = StateOptions {
            delivery: DeliveryConfig { retries: 0, ..DeliveryConfig::default() },
            transport: transport.clone(),
            ..StateOptions::default()
        };
        let app = TestApp::with_options(World::default_world(), options);
        let types = [
            "task:new",
            "task:parked",
            "task:connect",
            "task:connected",
            "task:on-hold",
            "task:hold-done",
            "task:ended",
            "task:failed",
        ];
        let sub =
            json!({"name": "model", "eventTypes": types, "destinationUrl": HOOK, "resourceVersion": "task:1.0.0"});
        app.post("/v2/subscriptions").bearer(&app.world_token("admin-full")).json(&sub).send().await.expect(201, None);
        let mut sockets = Vec::new();
        let mut tokens = Vec::new();
        let mut ids = Vec::new();
        for email in AGENTS {
            sockets.push(app.hub_connection(email, 4096));
            tokens.push(app.token(email, &["cjp:user"]));
            ids.push(app.user_id(email));
        }
        let mut run = Run {
            app,
            ids,
            tokens,
            sockets,
            seen: vec![HashMap::new(); AGENTS.len()],
            reachable: vec![true; AGENTS.len()],
            available: vec![false; AGENTS.len()],
            telephony: HashMap::new(),
        };
        for (agent, dial) in ["1002", "1003"].iter().enumerate() {
            let body = json!({"dialNumber": dial, "teamId": team(&run.app, "Support"), "roles": ["agent"], "deviceType": "EXTENSION"});
            run.app.post("/v1/agents/login").bearer(&run.tokens[agent]).json(&body).send().await.expect(202, None);
            let got = run.drain(agent);
            assert_eq!(got.iter().map(kind).collect::<Vec<_>>(), vec!["AgentStationLoginSuccess"]);
        }
        (run, transport)
    }

    /// Every message sent to `agent` since the last drain (keepalives aside).
    fn drain(&mut self, agent: usize) -> Vec<Value> {
        let mut got = Vec::new();
        while let Ok(Outgoing::Text(text)) = self.sockets[agent].try_recv() {
            let v: Value = serde_json::from_str(text.as_str()).expect("json");
            if v.get("keepalive").is_none() {
                got.push(v);
            }
        }
        got
    }

    fn views(&self) -> Vec<Value> {
        let snapshot = self.app.state().snapshot();
        snapshot["tasks"].as_array().cloned().unwrap_or_default()
    }

    fn before(&self, task: usize) -> Option<(String, Before)> {
        let views = self.views();
        let view = views.get(task % views.len().max(1))?;
        Some((view["taskId"].as_str().unwrap_or_default().to_owned(), Before::of(view)))
    }

    /// Follows `agent`'s messages through the lifecycle of each task they name.
    fn follow(&mut self, agent: usize, messages: &[Value]) -> Result<(), TestCaseError> {
        for m in messages {
            let k = kind(m);
            if m["type"] != "RoutingMessage" {
                prop_assert!(k == "AgentStateChangeSuccess", "agent {agent}: unexpected {m}");
                self.available[agent] = m["data"]["subStatus"] == "Available";
                continue;
            }
            let task = m["data"]["interactionId"].as_str().unwrap_or_default().to_owned();
            let now = self.seen[agent].get(&task).copied();
            if k == "AgentContactReserved" {
                // Offered only to an agent who can take it, by the messages they had.
                let telephony = m["data"]["interaction"]["mediaType"] == "telephony";
                let wrapping = self.seen[agent].values().any(|s| matches!(s, Seen::Ended | Seen::WrapUp));
                let holding = self.seen[agent]
                    .iter()
                    .filter(|(_, s)| matches!(s, Seen::Reserved | Seen::Offered | Seen::Connected | Seen::Held))
                    .filter(|(t, _)| self.telephony.get(*t) == Some(&telephony))
                    .count();
                prop_assert!(self.available[agent], "agent {agent} offered {task} while Idle");
                prop_assert!(!wrapping, "agent {agent} offered {task} while wrapping up");
                prop_assert!(holding < if telephony { 1 } else { 2 }, "agent {agent} offered {task} with no free slot");
                self.telephony.insert(task.clone(), telephony);
            }
            let declined = k == "AgentContactAssignFailed" && m["data"]["reason"] == "USER_DECLINED";
            let next = match (now, k) {
                (None | Some(Seen::Done), "AgentContactReserved") => Some(Seen::Reserved),
                (Some(Seen::Reserved), "AgentOfferContact") => Some(Seen::Offered),
                (Some(Seen::Offered), "AgentContactAssigned") => Some(Seen::Connected),
                (Some(Seen::Offered), "AgentOfferContactRona" | "AgentInviteFailed") => None,
                (Some(Seen::Offered), "AgentContactAssignFailed") if declined => None,
                (Some(Seen::Offered), "ContactEnded") if m["data"]["wrapUpRequired"] == false => Some(Seen::Done),
                (Some(Seen::Connected), "AgentContactHeld") => Some(Seen::Held),
                (Some(Seen::Held), "AgentContactUnheld") => Some(Seen::Connected),
                (Some(Seen::Connected | Seen::Held), "ContactEnded") if m["data"]["wrapUpRequired"] == true => {
                    Some(Seen::Ended)
                }
                (Some(Seen::Ended), "AgentWrapup") => Some(Seen::WrapUp),
                (Some(Seen::WrapUp), "AgentWrappedUp") => Some(Seen::Done),
                (state, failed) if failed.ends_with("Failed") && !declined => state,
                (state, other) => {
                    return Err(TestCaseError::fail(format!(
                        "agent {agent}: {other} for task {task} in {state:?}: {m}"
                    )));
                }
            };
            match next {
                Some(s) => self.seen[agent].insert(task, s),
                None => self.seen[agent].remove(&task),
            };
        }
        Ok(())
    }

    async fn command(&self, agent: usize, id: &str, action: &str, body: Value) {
        let path = format!("/v1/tasks/{id}/{action}");
        let reply = self.app.post(&path).bearer(&self.tokens[agent]).json(&body).send().await;
        reply.expect(202, None);
    }

    async fn admin(&self, id: &str, action: &str) -> u16 {
        self.app.post(&format!("/__admin/tasks/{id}/{action}")).json(&json!({})).send().await.status
    }

    /// Runs one op; returns, per agent, the messages the op itself must start with.
    async fn apply(&mut self, op: &Op) -> Result<Vec<Vec<&'static str>>, TestCaseError> {
        let mut want: Vec<Vec<&'static str>> = vec![Vec::new(); AGENTS.len()];
        let ids = self.ids.clone();
        let me = |agent: usize| ids[agent].clone();
        match *op {
            Op::Inject { chat } => {
                let (media, q) = if chat { ("chat", "Support Chat") } else { ("telephony", "Support Voice") };
                let body = json!({"mediaType": media, "queueId": queue(&self.app, q)});
                self.app.post("/__admin/tasks").json(&body).send().await.expect(201, None);
            }
            Op::Accept { agent, task } => {
                let Some((id, b)) = self.before(task) else { return Ok(want) };
                self.command(agent, &id, "accept", json!({})).await;
                want[agent] = if b.state == "offered" && b.with(&me(agent)) {
                    vec!["AgentContactAssigned"]
                } else {
                    vec!["AgentContactAssignFailed"]
                };
            }
            Op::Decline { agent, task } => {
                let Some((id, b)) = self.before(task) else { return Ok(want) };
                self.command(agent, &id, "reject", json!({"mediaResourceId": id})).await;
                want[agent] = if b.state == "offered" && b.with(&me(agent)) {
                    vec!["AgentContactAssignFailed", "AgentStateChangeSuccess"]
                } else {
                    vec!["AgentContactAssignFailed"]
                };
            }
            Op::Hold { agent, task } | Op::Unhold { agent, task } => {
                let Some((id, b)) = self.before(task) else { return Ok(want) };
                let hold = matches!(op, Op::Hold { .. });
                self.command(agent, &id, if hold { "hold" } else { "unhold" }, json!({"mediaResourceId": id})).await;
                let from = if hold { "connected" } else { "held" };
                want[agent] = match (b.telephony && b.state == from && b.with(&me(agent)), hold) {
                    (true, true) => vec!["AgentContactHeld"],
                    (true, false) => vec!["AgentContactUnheld"],
                    (false, true) => vec!["AgentContactHoldFailed"],
                    (false, false) => vec!["AgentContactUnHoldFailed"],
                };
            }
            Op::End { agent, task } => {
                let Some((id, b)) = self.before(task) else { return Ok(want) };
                self.command(agent, &id, "end", json!({})).await;
                want[agent] = match b.state.as_str() {
                    "offered" if b.with(&me(agent)) => vec!["ContactEnded"],
                    "connected" | "held" if b.with(&me(agent)) => vec!["ContactEnded", "AgentWrapup"],
                    _ => vec!["AgentContactEndFailed"],
                };
            }
            Op::Wrapup { agent, task } => {
                let Some((id, b)) = self.before(task) else { return Ok(want) };
                let body = json!({"wrapUpReason": "Resolved", "auxCodeId": aux_code(&self.app, "Resolved")});
                self.command(agent, &id, "wrapup", body).await;
                want[agent] =
                    if b.pending.contains(&me(agent)) { vec!["AgentWrappedUp"] } else { vec!["AgentWrapupFailed"] };
            }
            Op::Answer { task } => {
                let Some((id, b)) = self.before(task) else { return Ok(want) };
                let status = self.admin(&id, "answer").await;
                if b.state == "offered" {
                    prop_assert_eq!(status, 200);
                    let agent = self.ids.iter().position(|i| b.with(i)).expect("offered to one of the agents");
                    want[agent] = vec!["AgentContactAssigned"];
                } else {
                    prop_assert_eq!(status, 409, "answering a task that is {}", b.state);
                }
            }
            Op::Hangup { task } => {
                let Some((id, b)) = self.before(task) else { return Ok(want) };
                let status = self.admin(&id, "customer-hangup").await;
                let over = matches!(b.state.as_str(), "wrapup" | "completed" | "abandoned");
                prop_assert_eq!(status, if over { 409 } else { 200 }, "hanging up a task that is {}", b.state);
                if let Some(agent) = self.ids.iter().position(|i| b.with(i)) {
                    want[agent] =
                        if b.state == "offered" { vec!["ContactEnded"] } else { vec!["ContactEnded", "AgentWrapup"] };
                }
            }
            Op::Available { agent } => {
                let body = json!({"state": "Available", "auxCodeId": "0"});
                self.app
                    .put("/v1/agents/session/state")
                    .bearer(&self.tokens[agent])
                    .json(&body)
                    .send()
                    .await
                    .expect(202, None);
                want[agent] = vec!["AgentStateChangeSuccess"];
            }
            Op::Device { agent, reachable } => {
                let path = format!("/__admin/agents/{}/device", self.ids[agent]);
                self.app.post(&path).json(&json!({"reachable": reachable})).send().await.expect(200, None);
                self.reachable[agent] = reachable;
            }
            Op::Advance { ms } => self.app.advance(ms).await,
        }
        Ok(want)
    }

    /// What must hold after every op.
    fn check(&self) -> Result<(), TestCaseError> {
        let snapshot = self.app.state().snapshot();
        let now = snapshot["clock"]["now"].as_i64().unwrap_or_default();
        let views = snapshot["tasks"].as_array().cloned().unwrap_or_default();
        let sessions = snapshot["agentSessions"].as_array().cloned().unwrap_or_default();
        let capacity = |telephony: bool| if telephony { 1 } else { 2 };
        for (agent, id) in self.ids.iter().enumerate() {
            let holding = |telephony: bool| {
                views
                    .iter()
                    .filter(|v| v["agentId"] == id.as_str() && (v["task"]["channel"] == "telephony") == telephony)
                    .count()
            };
            for telephony in [true, false] {
                prop_assert!(holding(telephony) <= capacity(telephony), "agent {agent} over capacity");
            }
            for view in &views {
                let task = view["taskId"].as_str().unwrap_or_default();
                let b = Before::of(view);
                let expected = match b.state.as_str() {
                    "offered" if b.with(id) => Some(Seen::Offered),
                    "connected" if b.with(id) => Some(Seen::Connected),
                    "held" if b.with(id) => Some(Seen::Held),
                    _ if b.pending.contains(id) => Some(Seen::WrapUp),
                    _ => None,
                };
                let seen = self.seen[agent].get(task).copied().filter(|s| *s != Seen::Done);
                prop_assert_eq!(seen, expected, "agent {}'s messages about task {} vs {}", agent, task, view);
            }
            let available = sessions.iter().any(|s| s["agentId"] == id.as_str() && s["subStatus"] == "Available");
            let wrapping = views.iter().any(|v| Before::of(v).pending.contains(id));
            for view in views.iter().filter(|v| v["state"] == "queued") {
                let telephony = view["task"]["channel"] == "telephony";
                let could = available && !wrapping && holding(telephony) < capacity(telephony);
                prop_assert!(!could, "task {} waits while agent {} could take it", view["taskId"], agent);
            }
        }
        for view in views.iter().filter(|v| v["state"] == "offered") {
            prop_assert!(
                view["ronaAt"].as_i64().unwrap_or_default() > now,
                "{} rings past its deadline",
                view["taskId"]
            );
        }
        Ok(())
    }
}

fn follow_hooks(calls: &[wxcc_contract_tests::webhooks::Call]) -> Result<HashMap<String, Hooked>, TestCaseError> {
    let mut tasks: HashMap<String, Hooked> = HashMap::new();
    for call in calls {
        let name = call.body["type"].as_str().unwrap_or_default();
        let task = call.body["data"]["taskId"].as_str().unwrap_or_default().to_owned();
        let now = tasks.get(&task).copied();
        let next = match (now, name) {
            (None, "task:new") => Hooked::New,
            (Some(Hooked::New), "task:parked") => Hooked::Queued,
            (Some(Hooked::Queued), "task:connect") => Hooked::Ringing,
            (Some(Hooked::Ringing), "task:parked") => Hooked::Queued,
            (Some(Hooked::Ringing), "task:connected") => Hooked::Connected,
            (Some(Hooked::Connected), "task:on-hold") => Hooked::Held,
            (Some(Hooked::Held), "task:hold-done") => Hooked::Connected,
            (Some(Hooked::Queued | Hooked::Ringing | Hooked::Connected | Hooked::Held), "task:ended") => Hooked::Ended,
            (state, other) => return Err(TestCaseError::fail(format!("webhook {other} for task {task} in {state:?}"))),
        };
        tasks.insert(task, next);
    }
    Ok(tasks)
}

async fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let (mut run, transport) = Run::start().await;
    for op in &ops {
        let want = run.apply(op).await?;
        for (agent, prefix) in want.iter().enumerate() {
            let got = run.drain(agent);
            let kinds: Vec<&str> = got.iter().map(kind).collect();
            prop_assert!(
                kinds.starts_with(prefix),
                "{:?}: agent {} got {:?}, expected it to start {:?}",
                op,
                agent,
                kinds,
                prefix
            );
            // What may follow: offers (routing), a failed invite and its Idle, and, when the
            // clock moves, RONA and its Idle.
            for extra in &kinds[prefix.len()..] {
                let rona = matches!(op, Op::Advance { .. }) && *extra == "AgentOfferContactRona";
                let allowed = rona
                    || ["AgentContactReserved", "AgentOfferContact", "AgentInviteFailed", "AgentStateChangeSuccess"]
                        .contains(extra);
                prop_assert!(allowed, "{:?}: agent {} also got {:?}", op, agent, kinds);
                if *extra == "AgentInviteFailed" {
                    prop_assert!(!run.reachable[agent], "an invite failed at a reachable phone");
                }
            }
            run.follow(agent, &got)?;
        }
        run.check()?;
    }
    run.app.settled().await;
    let hooked = follow_hooks(&transport.calls())?;
    for view in run.views() {
        let task = view["taskId"].as_str().unwrap_or_default();
        let want = match view["state"].as_str().unwrap_or_default() {
            "queued" => Hooked::Queued,
            "offered" => Hooked::Ringing,
            "connected" => Hooked::Connected,
            "held" => Hooked::Held,
            _ => Hooked::Ended,
        };
        prop_assert_eq!(hooked.get(task).copied(), Some(want), "webhooks of task {}", task);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn tasks_follow_their_lifecycle_on_every_output_whatever_happens(ops in prop::collection::vec(op(), 1..40)) {
        crate::block_on(run(ops))?;
    }
}
