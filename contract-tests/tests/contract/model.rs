//! A state-machine test (proptest-state-machine): random sequences of agent calls and
//! subscription calls, by several users of both organisations, run against the mock and against
//! a reference model; after every step the statuses, the agent sessions and the subscription
//! lists must agree. Failures shrink to a minimal sequence, and proptest keeps them in
//! `proptest-regressions/` next to this file (commit those).

use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest, prop_state_machine};
use serde_json::{Value, json};
use wxcc_contract_tests::TestApp;

/// The users driven: (email, org index). Every one holds an agent licence.
const USERS: &[(&str, usize)] = &[
    ("agent1@wxcc.example", 0),
    ("agent2@wxcc.example", 0),
    ("supervisor@wxcc.example", 0),
    ("admin@wxcc.example", 0),
    ("agent1@globex.example", 1),
    ("admin@globex.example", 1),
];
/// Extensions tried: two of the first org's, one of Globex's.
const DIALS: &[&str] = &["1001", "1002", "2001"];
const ORG_DIALS: &[&[&str]] = &[&["1001", "1002", "1003", "1004", "1005"], &["2001", "2002"]];
/// The administrators' world tokens, per org.
const ADMINS: &[&str] = &["admin-full", "globex-admin"];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Sub {
    Available,
    Idle(usize),
}

#[derive(Debug, Clone)]
enum Step {
    Login { user: usize, dial: usize },
    Logout { user: usize },
    Available { user: usize },
    Idle { user: usize, code: usize },
    CreateSubscription { org: usize, v2: bool },
    ReadSubscription { org: usize, v2: bool, index: usize },
    DeactivateSubscription { org: usize, v2: bool, index: usize },
    DeleteSubscription { org: usize, v2: bool, index: usize },
}

#[derive(Debug, Clone)]
struct ModelSubscription {
    org: usize,
    v2: bool,
    active: bool,
    deleted: bool,
}

#[derive(Debug, Clone, Default)]
struct Model {
    /// user → (dial index, state)
    sessions: BTreeMap<usize, (usize, Sub)>,
    subscriptions: Vec<ModelSubscription>,
    /// The status the last step must answer.
    expected_status: u16,
}

impl Model {
    fn visible(&self, org: usize, v2: bool, index: usize) -> bool {
        self.subscriptions.get(index).is_some_and(|s| s.org == org && s.v2 == v2 && !s.deleted)
    }
}

#[derive(Debug)]
struct Reference;

impl ReferenceStateMachine for Reference {
    type State = Model;
    type Transition = Step;

    fn init_state() -> BoxedStrategy<Model> {
        Just(Model::default()).boxed()
    }

    fn transitions(state: &Model) -> BoxedStrategy<Step> {
        let user = 0..USERS.len();
        let org = 0..ADMINS.len();
        // Indices up to one past the end, so unknown ids are tried too.
        let index = 0..state.subscriptions.len() + 1;
        prop_oneof![
            3 => (user.clone(), 0..DIALS.len()).prop_map(|(user, dial)| Step::Login { user, dial }),
            2 => user.clone().prop_map(|user| Step::Logout { user }),
            2 => user.clone().prop_map(|user| Step::Available { user }),
            2 => (user, 0..3usize).prop_map(|(user, code)| Step::Idle { user, code }),
            2 => (org.clone(), any::<bool>()).prop_map(|(org, v2)| Step::CreateSubscription { org, v2 }),
            1 => (org.clone(), any::<bool>(), index.clone()).prop_map(|(org, v2, index)| Step::ReadSubscription { org, v2, index }),
            1 => (org.clone(), any::<bool>(), index.clone()).prop_map(|(org, v2, index)| Step::DeactivateSubscription { org, v2, index }),
            1 => (org, any::<bool>(), index).prop_map(|(org, v2, index)| Step::DeleteSubscription { org, v2, index }),
        ]
        .boxed()
    }

    fn apply(mut state: Model, step: &Step) -> Model {
        state.expected_status = 202;
        match step {
            Step::Login { user, dial } => {
                let org = USERS[*user].1;
                let in_org = ORG_DIALS[org].contains(&DIALS[*dial]);
                let taken = state.sessions.iter().any(|(u, (d, _))| USERS[*u].1 == org && d == dial);
                if !state.sessions.contains_key(user) && in_org && !taken {
                    // Idle with the default idle code, which is the org's first.
                    state.sessions.insert(*user, (*dial, Sub::Idle(0)));
                }
            }
            Step::Logout { user } => {
                state.sessions.remove(user);
            }
            Step::Available { user } => {
                if let Some((_, sub)) = state.sessions.get_mut(user) {
                    *sub = Sub::Available;
                }
            }
            Step::Idle { user, code } => {
                // Globex has two idle codes; index 2 does not exist there and fails.
                let org = USERS[*user].1;
                let exists = org == 0 || *code < 2;
                if let (Some((_, sub)), true) = (state.sessions.get_mut(user), exists) {
                    *sub = Sub::Idle(*code);
                }
            }
            Step::CreateSubscription { org, v2 } => {
                state.subscriptions.push(ModelSubscription { org: *org, v2: *v2, active: true, deleted: false });
                state.expected_status = 201;
            }
            Step::ReadSubscription { org, v2, index } => {
                state.expected_status = if state.visible(*org, *v2, *index) { 200 } else { 404 };
            }
            Step::DeactivateSubscription { org, v2, index } => {
                state.expected_status = if state.visible(*org, *v2, *index) { 200 } else { 404 };
                if state.expected_status == 200 {
                    state.subscriptions[*index].active = false;
                }
            }
            Step::DeleteSubscription { org, v2, index } => {
                state.expected_status = if state.visible(*org, *v2, *index) { 204 } else { 404 };
                if state.expected_status == 204 {
                    state.subscriptions[*index].deleted = true;
                }
            }
        }
        state
    }
}

#[derive(Debug)]
struct Mock {
    runtime: tokio::runtime::Runtime,
    app: TestApp,
    tokens: Vec<String>,
    /// Subscription ids in creation order (as the model indexes them).
    ids: Vec<String>,
}

impl Mock {
    fn call(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> wxcc_contract_tests::Reply {
        self.runtime.block_on(async {
            let mut request = self.app.request(method, path).bearer(token);
            if let Some(body) = &body {
                request = request.json(body);
            }
            request.send().await
        })
    }

    fn subscription_path(&self, v2: bool, index: usize) -> String {
        let id = self.ids.get(index).map_or("00000000-0000-4000-8000-000000000000", String::as_str);
        format!("/{}/subscriptions/{id}", if v2 { "v2" } else { "v1" })
    }
}

#[derive(Debug)]
struct MockTest;

impl StateMachineTest for MockTest {
    type SystemUnderTest = Mock;
    type Reference = Reference;

    fn init_test(_: &Model) -> Mock {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let app = TestApp::new();
        let tokens = USERS.iter().map(|(email, _)| app.token(email, &["cjp:user"])).collect();
        Mock { runtime, app, tokens, ids: Vec::new() }
    }

    fn apply(mut mock: Mock, model: &Model, step: Step) -> Mock {
        let codes: Vec<Vec<String>> =
            mock.app.world().orgs.iter().map(|o| o.aux_codes.iter().map(|a| a.id.clone()).collect()).collect();
        let reply = match &step {
            Step::Login { user, dial } => {
                let (email, _) = USERS[*user];
                let team =
                    mock.app.world().user_by_email(email).map(|(_, u)| u.team_ids[0].clone()).unwrap_or_default();
                let body =
                    json!({"dialNumber": DIALS[*dial], "teamId": team, "roles": ["agent"], "deviceType": "EXTENSION"});
                mock.call("POST", "/v1/agents/login", &mock.tokens[*user], Some(body))
            }
            Step::Logout { user } => {
                mock.call("PUT", "/v1/agents/logout", &mock.tokens[*user], Some(json!({"logoutReason": "model"})))
            }
            Step::Available { user } => mock.call(
                "PUT",
                "/v1/agents/session/state",
                &mock.tokens[*user],
                Some(json!({"state": "Available", "auxCodeId": "0"})),
            ),
            Step::Idle { user, code } => {
                let org = USERS[*user].1;
                let id = codes[org].get(*code).cloned().unwrap_or_else(|| "no-such-code".into());
                mock.call(
                    "PUT",
                    "/v1/agents/session/state",
                    &mock.tokens[*user],
                    Some(json!({"state": "Idle", "auxCodeId": id})),
                )
            }
            Step::CreateSubscription { org, v2 } => {
                let mut body = json!({"name": "model hook", "eventTypes": ["agent:login"], "destinationUrl": "https://hooks.example.com/model"});
                if *v2 {
                    body["resourceVersion"] = json!("agent:1.0.0");
                }
                let path = if *v2 { "/v2/subscriptions" } else { "/v1/subscriptions" };
                let reply = mock.call("POST", path, &mock.app.world_token(ADMINS[*org]), Some(body));
                mock.ids.push(reply.body["data"]["id"].as_str().unwrap_or_default().to_owned());
                reply
            }
            Step::ReadSubscription { org, v2, index } => {
                mock.call("GET", &mock.subscription_path(*v2, *index), &mock.app.world_token(ADMINS[*org]), None)
            }
            Step::DeactivateSubscription { org, v2, index } => {
                let mut body = json!({"status": "inactive"});
                if *v2 {
                    body["resourceVersion"] = json!("agent:1.0.0");
                }
                mock.call(
                    "PATCH",
                    &mock.subscription_path(*v2, *index),
                    &mock.app.world_token(ADMINS[*org]),
                    Some(body),
                )
            }
            Step::DeleteSubscription { org, v2, index } => {
                mock.call("DELETE", &mock.subscription_path(*v2, *index), &mock.app.world_token(ADMINS[*org]), None)
            }
        };
        assert_eq!(reply.status, model.expected_status, "{step:?}: {}", reply.body);
        mock
    }

    fn check_invariants(mock: &Mock, model: &Model) {
        let state = mock.runtime.block_on(mock.app.admin_state());
        let codes: Vec<Vec<String>> =
            mock.app.world().orgs.iter().map(|o| o.aux_codes.iter().map(|a| a.id.clone()).collect()).collect();
        let mut actual: Vec<(String, String, String, String)> = state["agentSessions"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| {
                let text = |k: &str| s[k].as_str().unwrap_or_default().to_owned();
                (text("email"), text("dialNumber"), text("subStatus"), text("auxCodeId"))
            })
            .collect();
        actual.sort();
        let mut expected: Vec<(String, String, String, String)> = model
            .sessions
            .iter()
            .map(|(user, (dial, sub))| {
                let (email, org) = USERS[*user];
                let (status, code) = match sub {
                    Sub::Available => ("Available", "0".to_owned()),
                    Sub::Idle(i) => ("Idle", codes[org][*i].clone()),
                };
                (email.to_owned(), DIALS[*dial].to_owned(), status.to_owned(), code)
            })
            .collect();
        expected.sort();
        assert_eq!(actual, expected, "agent sessions");

        for (org, admin) in ADMINS.iter().enumerate() {
            for v2 in [false, true] {
                let path = if v2 { "/v2/subscriptions" } else { "/v1/subscriptions" };
                let list = mock.call("GET", path, &mock.app.world_token(admin), None);
                let listed: Vec<(String, String)> = list.body["data"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|s| {
                        (
                            s["id"].as_str().unwrap_or_default().to_owned(),
                            s["status"].as_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect();
                let wanted: Vec<(String, String)> = model
                    .subscriptions
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| s.org == org && s.v2 == v2 && !s.deleted)
                    .map(|(i, s)| (mock.ids[i].clone(), if s.active { "active" } else { "inactive" }.to_owned()))
                    .collect();
                assert_eq!(listed, wanted, "org {org} {path}");
                let total = model.subscriptions.iter().filter(|s| s.org == org && !s.deleted).count();
                assert_eq!(list.body["meta"]["subscriptionCount"], json!(total), "org {org} count");
            }
        }
    }
}

prop_state_machine! {
    #![proptest_config(ProptestConfig { cases: 48, max_shrink_iters: 2000, ..ProptestConfig::default() })]

    #[test]
    fn the_mock_follows_the_reference_model(sequential 1..40 => MockTest);
}
