//! Model-based: for any sequence of agent calls, the websocket messages and the webhook
//! deliveries equal what a reference model of the state machine predicts, in order, each
//! exactly once.

use std::collections::HashMap;

use proptest::prelude::*;
use serde_json::{Value, json};
use wxcc_contract_tests::TestApp;
use wxcc_contract_tests::webhooks::RecordingTransport;
use wxcc_mock::World;
use wxcc_mock::delivery::DeliveryConfig;
use wxcc_mock::notifications::Outgoing;
use wxcc_mock::state::StateOptions;

const AGENTS: [&str; 2] = ["agent1@wxcc.example", "agent2@wxcc.example"];
const V1_URL: &str = "https://v1.example.com/hook";
const V2_URL: &str = "https://v2.example.com/hook";

#[derive(Debug, Clone)]
enum Call {
    Login { agent: usize, dial: &'static str },
    Logout { agent: usize },
    Available { agent: usize },
    Idle { agent: usize, code: usize },
    Reload { agent: usize },
}

fn call() -> impl Strategy<Value = Call> {
    let agent = 0..AGENTS.len();
    prop_oneof![
        3 => (agent.clone(), prop::sample::select(vec!["1001", "1003"])).prop_map(|(agent, dial)| Call::Login { agent, dial }),
        2 => agent.clone().prop_map(|agent| Call::Logout { agent }),
        3 => agent.clone().prop_map(|agent| Call::Available { agent }),
        3 => (agent.clone(), 0usize..3).prop_map(|(agent, code)| Call::Idle { agent, code }),
        1 => agent.prop_map(|agent| Call::Reload { agent }),
    ]
}

#[derive(Debug, Clone, PartialEq)]
enum Sub {
    Available,
    Idle(String),
}

/// The reference model: who is logged in, on which dial number, in which state.
#[derive(Debug, Default)]
struct Model {
    sessions: HashMap<usize, (String, Sub)>,
}

/// What one call should produce: the websocket (outer, inner) types, and the webhook event.
type Expectation = ((&'static str, &'static str), Option<(&'static str, &'static str)>);

impl Model {
    fn apply(&mut self, call: &Call, codes: &[String], default_code: &str) -> Expectation {
        match call {
            Call::Login { agent, dial } => {
                let taken = self.sessions.iter().any(|(a, (d, _))| a != agent && d == dial);
                if self.sessions.contains_key(agent) || taken {
                    return (("StationLogin", "AgentStationLoginFailed"), None);
                }
                self.sessions.insert(*agent, ((*dial).to_owned(), Sub::Idle(default_code.to_owned())));
                (("StationLogin", "AgentStationLoginSuccess"), Some(("agent:login", "agent:login")))
            }
            Call::Logout { agent } => match self.sessions.remove(agent) {
                Some(_) => (("Logout", "AgentLogoutSuccess"), Some(("agent:logout", "agent:logout"))),
                None => (("Logout", "AgentLogoutFailed"), None),
            },
            Call::Available { agent } => self.change(*agent, Sub::Available),
            Call::Idle { agent, code } => {
                // An unknown idle code fails whether or not the agent is logged in.
                let Some(code) = codes.get(*code) else {
                    return (("AgentStateChange", "AgentStateChangeFailed"), None);
                };
                self.change(*agent, Sub::Idle(code.clone()))
            }
            Call::Reload { agent } => {
                if self.sessions.contains_key(agent) {
                    (("AgentReloginSuccess", "AgentReloginSuccess"), None)
                } else {
                    (("AgentReloginFailed", "AgentReloginFailed"), None)
                }
            }
        }
    }

    fn change(&mut self, agent: usize, to: Sub) -> Expectation {
        let Some((_, current)) = self.sessions.get_mut(&agent) else {
            return (("AgentStateChange", "AgentStateChangeFailed"), None);
        };
        let ok = ("AgentStateChange", "AgentStateChangeSuccess");
        if *current == to {
            return (ok, None);
        }
        *current = to;
        (ok, Some(("agent:state_change", "agent:channel_state_change")))
    }
}

async fn run(calls: Vec<Call>) -> Result<(), TestCaseError> {
    let transport = RecordingTransport::new();
    let options = StateOptions {
        delivery: DeliveryConfig { retries: 0, ..DeliveryConfig::default() },
        transport: transport.clone(),
        ..StateOptions::default()
    };
    let app = TestApp::with_options(World::default_world(), options);
    let admin = app.world_token("admin-full");
    let v1 = json!({"name": "v1 sink", "eventTypes": ["agent:login", "agent:logout", "agent:state_change"], "destinationUrl": V1_URL});
    app.post("/v1/subscriptions").bearer(&admin).json(&v1).send().await.expect(201, None);
    let v2 = json!({"name": "v2 sink", "eventTypes": ["agent:login", "agent:logout", "agent:channel_state_change"], "destinationUrl": V2_URL, "resourceVersion": "agent:2.0.0"});
    app.post("/v2/subscriptions").bearer(&admin).json(&v2).send().await.expect(201, None);

    // One in-process websocket connection per agent, straight on the hub.
    let mut sockets = Vec::new();
    for email in AGENTS {
        sockets.push(app.hub_connection(email, 1024));
    }

    let org = &app.world().orgs[0];
    let default_code = org.aux_codes.iter().find(|a| a.is_default).map(|a| a.id.clone()).unwrap_or_default();
    let codes: Vec<String> = org.aux_codes.iter().take(2).map(|a| a.id.clone()).collect();
    let tokens: Vec<String> = AGENTS.iter().map(|e| app.token(e, &["cjp:user"])).collect();
    let mut model = Model::default();
    let mut expected_ws: Vec<Vec<(&str, &str)>> = vec![vec![]; AGENTS.len()];
    let mut expected_v1 = Vec::new();
    let mut expected_v2 = Vec::new();
    for call in &calls {
        let agent = match call {
            Call::Login { agent, .. }
            | Call::Logout { agent }
            | Call::Available { agent }
            | Call::Idle { agent, .. }
            | Call::Reload { agent } => *agent,
        };
        let team = app.world().user_by_email(AGENTS[agent]).map(|(_, u)| u.team_ids[0].clone()).unwrap_or_default();
        let (method, path, body) = match call {
            Call::Login { dial, .. } => (
                "POST",
                "/v1/agents/login",
                json!({"dialNumber": dial, "teamId": team, "roles": ["agent"], "deviceType": "EXTENSION"}),
            ),
            Call::Logout { .. } => ("PUT", "/v1/agents/logout", json!({"logoutReason": "model"})),
            Call::Available { .. } => {
                ("PUT", "/v1/agents/session/state", json!({"state": "Available", "auxCodeId": "0"}))
            }
            Call::Idle { code, .. } => {
                let id = codes.get(*code).cloned().unwrap_or_else(|| "no-such-code".into());
                ("PUT", "/v1/agents/session/state", json!({"state": "Idle", "auxCodeId": id}))
            }
            Call::Reload { .. } => ("POST", "/v1/agents/reload", json!({})),
        };
        let status = app.request(method, path).bearer(&tokens[agent]).json(&body).send().await.status;
        prop_assert_eq!(status, 202);
        let (ws, event) = model.apply(call, &codes, &default_code);
        expected_ws[agent].push(ws);
        if let Some((v1_name, v2_name)) = event {
            expected_v1.push(v1_name);
            expected_v2.push(v2_name);
        }
    }

    for (agent, rx) in sockets.iter_mut().enumerate() {
        let mut got = Vec::new();
        while let Ok(Outgoing::Text(text)) = rx.try_recv() {
            let v: Value = serde_json::from_str(text.as_str()).expect("json");
            got.push((
                v["type"].as_str().unwrap_or_default().to_owned(),
                v["data"]["type"].as_str().unwrap_or_default().to_owned(),
            ));
        }
        let want: Vec<(String, String)> =
            expected_ws[agent].iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect();
        prop_assert_eq!(got, want, "websocket of {}", AGENTS[agent]);
    }

    let total = expected_v1.len() + expected_v2.len();
    // Every queued event has had its (only) attempt once the clock has nothing in flight.
    app.settled().await;
    let calls = transport.calls();
    prop_assert_eq!(calls.len(), total, "each event exactly once");
    let names = |url: &str| -> Vec<String> {
        calls.iter().filter(|c| c.url == url).map(|c| c.body["type"].as_str().unwrap_or_default().to_owned()).collect()
    };
    prop_assert_eq!(names(V1_URL), expected_v1.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>());
    prop_assert_eq!(names(V2_URL), expected_v2.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn delivered_events_equal_the_models_transitions_in_order_each_exactly_once(calls in prop::collection::vec(call(), 1..25)) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        runtime.block_on(run(calls))?;
    }
}
