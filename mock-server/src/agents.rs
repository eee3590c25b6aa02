//! The per-agent state machine, as a pure function: `(session, command) -> (session, outcome,
//! events)`. No HTTP, no sockets: the HTTP layer answers 202 and records what this decides; the
//! websocket layer (a later issue) pushes the outcome.
//!
//! ```text
//! logged out --login--> logged in, Idle(default idle code) <--state--> Available
//!      ^                                  |
//!      +--------------logout--------------+
//! ```
//! Failures (facts §7) leave the session as it was and produce no event.

use serde::Serialize;
use serde_json::{Value, json};

use crate::world::{Org, User, roles};

/// `subStatus` of a logged-in agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SubStatus {
    /// Ready for work (`auxCodeId` `"0"`).
    Available,
    /// Not ready, with an idle code.
    Idle,
}

/// The auxCodeId that means Available.
pub const AVAILABLE_AUX_CODE: &str = "0";

/// A logged-in agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    /// The agent (CI user id).
    pub agent_id: String,
    /// The agent's organisation.
    pub org_id: String,
    /// The agent's email.
    pub email: String,
    /// A new uuid per login.
    pub agent_session_id: String,
    /// The team logged in to (absent for a supervisor-only login).
    pub team_id: Option<String>,
    /// The agent's site.
    pub site_id: Option<String>,
    /// The dial number (DN) in use.
    pub dial_number: String,
    /// `AGENT_DN`, `EXTENSION` or `BROWSER`.
    pub device_type: String,
    /// The device id.
    pub device_id: String,
    /// Whether the dial number is an extension.
    pub is_extension: bool,
    /// The roles logged in with, lower case.
    pub roles: Vec<String>,
    /// Always `LoggedIn` while a session exists.
    pub status: &'static str,
    /// Available or Idle.
    pub sub_status: SubStatus,
    /// `"0"` when Available, else the idle code.
    pub aux_code_id: String,
    /// When the state last changed (epoch ms).
    pub last_state_change_timestamp: i64,
    /// When the idle code last changed (epoch ms).
    pub last_idle_code_change_timestamp: i64,
    /// The reason given with the last state change.
    pub last_state_change_reason: String,
    /// When the agent logged in (epoch ms).
    pub login_timestamp: i64,
}

/// A station login request, after validation.
#[derive(Debug, Clone)]
pub struct Login {
    /// The dial number.
    pub dial_number: String,
    /// The team, if any.
    pub team_id: Option<String>,
    /// `AGENT_DN`, `EXTENSION` or `BROWSER`; `None` derives it from `is_extension`.
    pub device_type: Option<String>,
    /// The device id, if sent.
    pub device_id: Option<String>,
    /// Whether the dial number is an extension.
    pub is_extension: bool,
    /// Lower-cased roles (`agent`, `supervisor`).
    pub roles: Vec<String>,
}

/// What an agent endpoint asks for.
#[derive(Debug, Clone)]
pub enum Command {
    /// `POST /v1/agents/login`
    Login(Login),
    /// `PUT|POST /v1/agents/logout`
    Logout {
        /// `logoutReason`.
        reason: String,
        /// Who asked (the agent itself, or a supervisor).
        by: String,
    },
    /// `PUT /v1/agents/session/state`
    ChangeState {
        /// Available or Idle.
        state: SubStatus,
        /// `"0"` or an idle code id.
        aux_code_id: String,
        /// `lastStateChangeReason`.
        reason: String,
        /// Who asked.
        by: String,
    },
    /// `POST /v1/agents/reload`
    Reload,
}

impl Command {
    fn operation(&self) -> Operation {
        match self {
            Command::Login(_) => Operation::StationLogin,
            Command::Logout { .. } => Operation::Logout,
            Command::ChangeState { .. } => Operation::AgentStateChange,
            Command::Reload => Operation::Reload,
        }
    }
}

/// The websocket operation an outcome answers (the outer `type` of the message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Login.
    StationLogin,
    /// Logout.
    Logout,
    /// State change.
    AgentStateChange,
    /// Reload.
    Reload,
}

impl Operation {
    /// The message's outer `type` and inner `data.type`.
    pub fn message_types(self, success: bool) -> (&'static str, &'static str) {
        match (self, success) {
            (Operation::StationLogin, true) => ("StationLogin", "AgentStationLoginSuccess"),
            (Operation::StationLogin, false) => ("StationLogin", "AgentStationLoginFailed"),
            (Operation::Logout, true) => ("Logout", "AgentLogoutSuccess"),
            (Operation::Logout, false) => ("Logout", "AgentLogoutFailed"),
            (Operation::AgentStateChange, true) => ("AgentStateChange", "AgentStateChangeSuccess"),
            (Operation::AgentStateChange, false) => ("AgentStateChange", "AgentStateChangeFailed"),
            (Operation::Reload, true) => ("AgentReloginSuccess", "AgentReloginSuccess"),
            (Operation::Reload, false) => ("AgentReloginFailed", "AgentReloginFailed"),
        }
    }
}

/// Failure reasons. `DUPLICATE_LOCATION`, `INVALID_DIAL_NUMBER` and `AGENT_NOT_FOUND` are the
/// real ones (facts §6.4); the others are the mock's own, since Cisco documents none.
pub mod reasons {
    /// The dial number is in use by another agent.
    pub const DUPLICATE_LOCATION: &str = "DUPLICATE_LOCATION";
    /// The dial number is not one the organisation has.
    pub const INVALID_DIAL_NUMBER: &str = "INVALID_DIAL_NUMBER";
    /// Reload while not logged in.
    pub const AGENT_NOT_FOUND: &str = "AGENT_NOT_FOUND";
    /// Login while already logged in.
    pub const AGENT_ALREADY_LOGGED_IN: &str = "AGENT_ALREADY_LOGGED_IN";
    /// State change or logout while logged out.
    pub const AGENT_NOT_LOGGED_IN: &str = "AGENT_NOT_LOGGED_IN";
    /// The team does not exist or the user is not in it.
    pub const INVALID_TEAM: &str = "INVALID_TEAM";
    /// The idle code does not exist (or Available without `"0"`).
    pub const INVALID_IDLE_CODE: &str = "INVALID_IDLE_CODE";
    /// The user lacks the licence or role for the roles requested.
    pub const INVALID_ROLE: &str = "INVALID_ROLE";
}

/// What was decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The operation answered.
    pub operation: Operation,
    /// `None` on success; the reason on failure.
    pub failure: Option<&'static str>,
    /// A plain sentence saying what happened.
    pub detail: String,
}

impl Outcome {
    /// Whether the command succeeded.
    pub fn is_success(&self) -> bool {
        self.failure.is_none()
    }

    fn ok(operation: Operation, detail: String) -> Outcome {
        Outcome { operation, failure: None, detail }
    }

    /// A failure.
    pub fn failed(operation: Operation, reason: &'static str, detail: String) -> Outcome {
        Outcome { operation, failure: Some(reason), detail }
    }
}

/// A domain event: one per actual transition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentEvent {
    /// The v1 event type: `agent:login`, `agent:logout` or `agent:state_change`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The organisation.
    pub org_id: String,
    /// The event's `data`, as webhook deliveries carry it.
    pub data: Value,
}

/// The result of [`decide`].
#[derive(Debug, Clone)]
pub struct Transition {
    /// The agent's session afterwards (`None` = logged out).
    pub session: Option<Session>,
    /// What happened.
    pub outcome: Outcome,
    /// Zero or one event.
    pub events: Vec<AgentEvent>,
}

/// Facts about the rest of the world that a decision needs.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The agent's organisation.
    pub org: &'a Org,
    /// The agent.
    pub user: &'a User,
    /// The email of another logged-in agent of the org using the requested dial number, if any.
    pub dial_number_used_by: Option<&'a str>,
    /// Now, epoch ms.
    pub now: i64,
    /// The session id a successful login gets.
    pub new_session_id: &'a str,
}

/// Decides a command against the agent's current session.
pub fn decide(ctx: Context<'_>, current: Option<&Session>, command: Command) -> Transition {
    let op = command.operation();
    let who = &ctx.user.email;
    let unchanged = |outcome| Transition { session: current.cloned(), outcome, events: vec![] };
    match (current, command) {
        (Some(s), Command::Login(_)) => unchanged(Outcome::failed(
            op,
            reasons::AGENT_ALREADY_LOGGED_IN,
            format!("{who} is already logged in (dial number {}); log out first.", s.dial_number),
        )),
        (None, Command::Login(login)) => match login_session(ctx, &login) {
            Ok(session) => {
                let event = AgentEvent {
                    kind: "agent:login",
                    org_id: ctx.org.id.clone(),
                    data: json!({
                        "agentId": session.agent_id,
                        "agentSessionId": session.agent_session_id,
                        "teamId": session.team_id,
                        "siteId": session.site_id,
                        "destination": session.dial_number,
                        "channelType": "telephony",
                        "currentState": "idle",
                        "idleCodeId": session.aux_code_id,
                        "createdTime": ctx.now,
                    }),
                };
                Transition {
                    outcome: Outcome::ok(op, format!("{who} logged in on {} and is Idle.", session.dial_number)),
                    session: Some(session),
                    events: vec![event],
                }
            }
            Err((reason, detail)) => unchanged(Outcome::failed(op, reason, detail)),
        },
        (None, Command::Logout { .. }) => unchanged(Outcome::failed(
            op,
            reasons::AGENT_NOT_LOGGED_IN,
            format!("{who} cannot be logged out: they are not logged in."),
        )),
        (Some(s), Command::Logout { reason, by }) => {
            let event = AgentEvent {
                kind: "agent:logout",
                org_id: ctx.org.id.clone(),
                data: json!({
                    "agentId": s.agent_id,
                    "agentSessionId": s.agent_session_id,
                    "teamId": s.team_id,
                    "currentState": "logged-out",
                    "logoutReason": reason,
                    "loggedOutBy": by,
                    "createdTime": ctx.now,
                }),
            };
            Transition {
                session: None,
                outcome: Outcome::ok(op, format!("{who} logged out ({reason}).")),
                events: vec![event],
            }
        }
        (None, Command::ChangeState { .. }) => unchanged(Outcome::failed(
            op,
            reasons::AGENT_NOT_LOGGED_IN,
            format!("{who} cannot change state: they are not logged in."),
        )),
        (Some(s), Command::ChangeState { state, aux_code_id, reason, by }) => {
            if let Err(detail) = check_aux_code(ctx.org, state, &aux_code_id) {
                return unchanged(Outcome::failed(op, reasons::INVALID_IDLE_CODE, detail));
            }
            if s.sub_status == state && s.aux_code_id == aux_code_id {
                let mut same = s.clone();
                same.last_state_change_reason = reason;
                return Transition {
                    session: Some(same),
                    outcome: Outcome::ok(op, format!("{who} is already {state:?}; nothing changed.")),
                    events: vec![],
                };
            }
            let mut next = s.clone();
            next.sub_status = state;
            next.aux_code_id = aux_code_id;
            next.last_state_change_timestamp = ctx.now;
            if state == SubStatus::Idle {
                next.last_idle_code_change_timestamp = ctx.now;
            }
            next.last_state_change_reason = reason;
            let event = AgentEvent {
                kind: "agent:state_change",
                org_id: ctx.org.id.clone(),
                data: json!({
                    "agentId": next.agent_id,
                    "agentSessionId": next.agent_session_id,
                    "teamId": next.team_id,
                    "destination": next.dial_number,
                    "channelType": "telephony",
                    "currentState": match state { SubStatus::Available => "available", SubStatus::Idle => "idle" },
                    "idleCodeId": next.aux_code_id,
                    "changedBy": by,
                    "createdTime": ctx.now,
                }),
            };
            Transition {
                outcome: Outcome::ok(op, format!("{who} is now {state:?}.")),
                session: Some(next),
                events: vec![event],
            }
        }
        (None, Command::Reload) => unchanged(Outcome::failed(
            op,
            reasons::AGENT_NOT_FOUND,
            format!("{who} has no session to reload: they are not logged in."),
        )),
        (Some(_), Command::Reload) => unchanged(Outcome::ok(op, format!("{who}'s session was reloaded."))),
    }
}

fn login_session(ctx: Context<'_>, login: &Login) -> Result<Session, (&'static str, String)> {
    let (org, user) = (ctx.org, ctx.user);
    let who = &user.email;
    let wants_agent = login.roles.iter().any(|r| r == "agent");
    let wants_supervisor = login.roles.iter().any(|r| r == "supervisor");
    if wants_agent && !user.has_role(roles::AGENT) {
        return Err((reasons::INVALID_ROLE, format!("{who} has no agent licence ({}).", roles::AGENT)));
    }
    if wants_supervisor && !user.has_role(roles::SUPERVISOR) {
        return Err((reasons::INVALID_ROLE, format!("{who} is not a supervisor ({}).", roles::SUPERVISOR)));
    }
    let team_id = login.team_id.clone().filter(|t| !t.is_empty());
    if let Some(team) = &team_id {
        if !org.teams.iter().any(|t| &t.id == team) {
            return Err((reasons::INVALID_TEAM, format!("Team {team} does not exist in {}.", org.name)));
        }
        if !user.team_ids.contains(team) {
            return Err((reasons::INVALID_TEAM, format!("{who} is not a member of team {team}.")));
        }
    }
    let device_type = login
        .device_type
        .clone()
        .unwrap_or_else(|| if login.is_extension { "EXTENSION".into() } else { "AGENT_DN".into() });
    match device_type.as_str() {
        "EXTENSION" if !org.dial_numbers.contains(&login.dial_number) => {
            return Err((
                reasons::INVALID_DIAL_NUMBER,
                format!(
                    "Extension {} is not one of {}'s dial numbers ({}).",
                    login.dial_number,
                    org.name,
                    org.dial_numbers.join(", ")
                ),
            ));
        }
        "AGENT_DN" if !is_phone_number(&login.dial_number) => {
            return Err((
                reasons::INVALID_DIAL_NUMBER,
                format!("{} is not a phone number (digits, optionally after a +).", login.dial_number),
            ));
        }
        _ => {}
    }
    if let Some(other) = ctx.dial_number_used_by {
        return Err((
            reasons::DUPLICATE_LOCATION,
            format!("Dial number {} is already in use by {other}.", login.dial_number),
        ));
    }
    let default_code = org.default_code("IDLE_CODE").map_or_else(|| AVAILABLE_AUX_CODE.to_owned(), |a| a.id.clone());
    let device_id = login.device_id.clone().filter(|d| !d.is_empty()).unwrap_or_else(|| {
        if device_type == "BROWSER" { format!("webrtc-{}", user.id) } else { login.dial_number.clone() }
    });
    Ok(Session {
        agent_id: user.id.clone(),
        org_id: org.id.clone(),
        email: user.email.clone(),
        agent_session_id: ctx.new_session_id.to_owned(),
        site_id: team_id
            .as_ref()
            .and_then(|t| org.teams.iter().find(|x| &x.id == t))
            .map(|t| t.site_id.clone())
            .or_else(|| user.site_id.clone()),
        team_id,
        dial_number: login.dial_number.clone(),
        is_extension: device_type == "EXTENSION",
        device_type,
        device_id,
        roles: login.roles.clone(),
        status: "LoggedIn",
        sub_status: SubStatus::Idle,
        aux_code_id: default_code,
        last_state_change_timestamp: ctx.now,
        last_idle_code_change_timestamp: ctx.now,
        last_state_change_reason: String::new(),
        login_timestamp: ctx.now,
    })
}

fn check_aux_code(org: &Org, state: SubStatus, aux_code_id: &str) -> Result<(), String> {
    match state {
        SubStatus::Available if aux_code_id == AVAILABLE_AUX_CODE => Ok(()),
        SubStatus::Available => Err(format!("Available takes auxCodeId \"0\", not \"{aux_code_id}\".")),
        SubStatus::Idle if idle_codes(org).any(|a| a.id == aux_code_id && a.active) => Ok(()),
        SubStatus::Idle => Err(format!(
            "{aux_code_id} is not an active idle code of {}; its idle codes are {}.",
            org.name,
            idle_codes(org).map(|a| format!("{} ({})", a.id, a.name)).collect::<Vec<_>>().join(", ")
        )),
    }
}

fn idle_codes(org: &Org) -> impl Iterator<Item = &crate::world::AuxCode> {
    org.aux_codes.iter().filter(|a| a.work_type == "IDLE_CODE")
}

fn is_phone_number(s: &str) -> bool {
    let digits = s.strip_prefix('+').unwrap_or(s);
    !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::World;

    fn login(dial: &str, team: Option<&str>) -> Command {
        Command::Login(Login {
            dial_number: dial.into(),
            team_id: team.map(Into::into),
            device_type: Some("EXTENSION".into()),
            device_id: None,
            is_extension: true,
            roles: vec!["agent".into()],
        })
    }

    fn ctx<'a>(world: &'a World, email: &str, used_by: Option<&'a str>) -> Context<'a> {
        let (org, user) = world.user_by_email(email).expect("user");
        Context { org, user, dial_number_used_by: used_by, now: 1_000, new_session_id: "s-1" }
    }

    #[test]
    fn login_puts_the_agent_in_idle_with_the_default_idle_code_and_emits_one_event() {
        let world = World::default_world();
        let c = ctx(&world, "agent1@wxcc.example", None);
        let team = c.user.team_ids[0].clone();
        let t = decide(c, None, login("1001", Some(&team)));
        assert!(t.outcome.is_success(), "{:?}", t.outcome);
        let s = t.session.expect("session");
        assert_eq!(s.sub_status, SubStatus::Idle);
        let default = c.org.aux_codes.iter().find(|a| a.is_default).expect("default");
        assert_eq!(s.aux_code_id, default.id);
        assert_eq!(t.events.len(), 1);
        assert_eq!(t.events[0].kind, "agent:login");
    }

    #[test]
    fn a_second_login_fails_and_leaves_the_session_alone() {
        let world = World::default_world();
        let c = ctx(&world, "agent1@wxcc.example", None);
        let team = c.user.team_ids[0].clone();
        let first = decide(c, None, login("1001", Some(&team))).session.expect("session");
        let t = decide(c, Some(&first), login("1002", Some(&team)));
        assert_eq!(t.outcome.failure, Some(reasons::AGENT_ALREADY_LOGGED_IN));
        assert_eq!(t.session.as_ref(), Some(&first));
        assert!(t.events.is_empty());
    }

    #[test]
    fn a_dial_number_in_use_elsewhere_is_a_duplicate_location() {
        let world = World::default_world();
        let c = ctx(&world, "agent1@wxcc.example", Some("agent2@wxcc.example"));
        let team = c.user.team_ids[0].clone();
        let t = decide(c, None, login("1001", Some(&team)));
        assert_eq!(t.outcome.failure, Some(reasons::DUPLICATE_LOCATION));
        assert!(t.session.is_none());
    }

    #[test]
    fn state_changes_need_a_session_and_a_known_idle_code() {
        let world = World::default_world();
        let c = ctx(&world, "agent1@wxcc.example", None);
        let change = |state, code: &str| Command::ChangeState {
            state,
            aux_code_id: code.into(),
            reason: String::new(),
            by: "me".into(),
        };
        let t = decide(c, None, change(SubStatus::Available, "0"));
        assert_eq!(t.outcome.failure, Some(reasons::AGENT_NOT_LOGGED_IN));
        let team = c.user.team_ids[0].clone();
        let s = decide(c, None, login("1001", Some(&team))).session.expect("session");
        let t = decide(c, Some(&s), change(SubStatus::Idle, "no-such-code"));
        assert_eq!(t.outcome.failure, Some(reasons::INVALID_IDLE_CODE));
        let t = decide(c, Some(&s), change(SubStatus::Available, "0"));
        assert!(t.outcome.is_success());
        assert_eq!(t.events[0].data["currentState"], "available");
        let available = t.session.expect("session");
        let again = decide(c, Some(&available), change(SubStatus::Available, "0"));
        assert!(again.outcome.is_success());
        assert!(again.events.is_empty(), "no transition, no event");
    }

    #[test]
    fn reload_while_logged_out_is_agent_not_found() {
        let world = World::default_world();
        let c = ctx(&world, "agent2@wxcc.example", None);
        let t = decide(c, None, Command::Reload);
        assert_eq!(t.outcome.failure, Some(reasons::AGENT_NOT_FOUND));
        assert_eq!(t.outcome.operation.message_types(false).0, "AgentReloginFailed");
    }
}
