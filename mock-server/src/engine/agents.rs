//! The per-agent state machine, as a pure function: `(session, command) -> (session, outcome,
//! events)`. No HTTP, no sockets: the HTTP layer answers 202, the state publishes what this
//! decides (the events on the one stream, the outcome on the agent's websockets).
//!
//! ```text
//! logged out --login--> logged in, Idle(default idle code) <--state--> Available
//!      ^                                  |
//!      +--------------logout--------------+
//! ```
//! Failures (facts §7) leave the session as it was and produce no event.

use serde::Serialize;

use crate::engine::events::{AgentChange, Event};
use crate::world::{Channel, Org, User, roles};

/// `subStatus` of a logged-in agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub enum SubStatus {
    /// Ready for work (`auxCodeId` `"0"`).
    Available,
    /// Not ready, with an idle code.
    Idle,
}

/// The auxCodeId that means Available.
pub const AVAILABLE_AUX_CODE: &str = "0";

/// How many tasks of each channel an agent may hold at once (from their agent profile).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
pub struct Capacity {
    /// Calls (0 or 1).
    pub telephony: u32,
    /// Chats.
    pub chat: u32,
    /// Emails.
    pub email: u32,
    /// Social messages.
    pub social: u32,
}

impl Capacity {
    /// The slots of `channel`.
    pub fn of(&self, channel: Channel) -> u32 {
        match channel {
            Channel::Telephony => self.telephony,
            Channel::Chat => self.chat,
            Channel::Email => self.email,
            Channel::Social => self.social,
        }
    }

    /// An organisation's capacities for `user`.
    pub fn for_user(org: &Org, user: &User) -> Capacity {
        Capacity {
            telephony: org.capacity(user, Channel::Telephony),
            chat: org.capacity(user, Channel::Chat),
            email: org.capacity(user, Channel::Email),
            social: org.capacity(user, Channel::Social),
        }
    }
}

/// A logged-in agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
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
    #[serde(skip_deserializing, default = "logged_in")]
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
    /// Tasks of each channel the agent may hold at once.
    pub capacity: Capacity,
}

fn logged_in() -> &'static str {
    "LoggedIn"
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
    },
    /// `PUT /v1/agents/session/state`
    ChangeState {
        /// Available or Idle.
        state: SubStatus,
        /// `"0"` or an idle code id.
        aux_code_id: String,
        /// `lastStateChangeReason`.
        reason: String,
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

/// Why an agent command failed. `DUPLICATE_LOCATION`, `INVALID_DIAL_NUMBER` and
/// `AGENT_NOT_FOUND` are the real ones (facts §6.4); the others are the mock's own, since Cisco
/// documents none. Each has a `reasonCode` (the mock's own numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FailureReason {
    /// The dial number is in use by another agent.
    DuplicateLocation,
    /// The dial number is not one the organisation has.
    InvalidDialNumber,
    /// Reload while not logged in, or an `agentId` that is not in the organisation.
    AgentNotFound,
    /// Login while already logged in.
    AgentAlreadyLoggedIn,
    /// State change or logout while logged out.
    AgentNotLoggedIn,
    /// The team does not exist or the user is not in it.
    InvalidTeam,
    /// The idle code does not exist (or Available without `"0"`).
    InvalidIdleCode,
    /// The user lacks the licence or role for the roles requested.
    InvalidRole,
    /// Logout while a task rings, is connected or waits for wrap-up.
    AgentHasActiveTasks,
}

impl FailureReason {
    /// The wire spelling (`DUPLICATE_LOCATION`).
    pub fn as_str(self) -> &'static str {
        match self {
            FailureReason::DuplicateLocation => "DUPLICATE_LOCATION",
            FailureReason::InvalidDialNumber => "INVALID_DIAL_NUMBER",
            FailureReason::AgentNotFound => "AGENT_NOT_FOUND",
            FailureReason::AgentAlreadyLoggedIn => "AGENT_ALREADY_LOGGED_IN",
            FailureReason::AgentNotLoggedIn => "AGENT_NOT_LOGGED_IN",
            FailureReason::InvalidTeam => "INVALID_TEAM",
            FailureReason::InvalidIdleCode => "INVALID_IDLE_CODE",
            FailureReason::InvalidRole => "INVALID_ROLE",
            FailureReason::AgentHasActiveTasks => "AGENT_HAS_ACTIVE_TASKS",
        }
    }

    /// The numeric `reasonCode` sent with it (the mock's own numbers).
    pub fn code(self) -> i64 {
        match self {
            FailureReason::DuplicateLocation => 1001,
            FailureReason::InvalidDialNumber => 1002,
            FailureReason::AgentNotFound => 1003,
            FailureReason::AgentAlreadyLoggedIn => 1004,
            FailureReason::AgentNotLoggedIn => 1005,
            FailureReason::InvalidTeam => 1006,
            FailureReason::InvalidIdleCode => 1007,
            FailureReason::InvalidRole => 1008,
            FailureReason::AgentHasActiveTasks => 1009,
        }
    }
}

impl std::fmt::Display for FailureReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused command: the reason and a sentence that explains it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The reason.
    pub reason: FailureReason,
    /// What happened, in a sentence.
    pub detail: String,
}

/// What was decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The operation answered.
    pub operation: Operation,
    /// `None` on success; the reason on failure.
    pub failure: Option<FailureReason>,
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
    pub fn failed(operation: Operation, failure: Failure) -> Outcome {
        Outcome { operation, failure: Some(failure.reason), detail: failure.detail }
    }
}

/// The result of [`decide`].
#[derive(Debug, Clone)]
pub struct Transition {
    /// The agent's session afterwards (`None` = logged out).
    pub session: Option<Session>,
    /// What happened.
    pub outcome: Outcome,
    /// Zero or one event.
    pub events: Vec<Event>,
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
    /// The user id of whoever asked (the agent, or a supervisor).
    pub by: &'a str,
    /// Whether the agent has a task ringing, connected or waiting for their wrap-up.
    pub has_active_tasks: bool,
}

fn fail(reason: FailureReason, detail: String) -> Failure {
    Failure { reason, detail }
}

fn change(ctx: Context<'_>, session: &Session) -> AgentChange {
    AgentChange {
        org_id: ctx.org.id.clone(),
        agent_id: ctx.user.id.clone(),
        email: ctx.user.email.clone(),
        session: session.clone(),
        by: ctx.by.to_owned(),
        reason: None,
    }
}

/// Decides a command against the agent's current session.
pub fn decide(ctx: Context<'_>, current: Option<&Session>, command: Command) -> Transition {
    let op = command.operation();
    let who = &ctx.user.email;
    let unchanged =
        |failure| Transition { session: current.cloned(), outcome: Outcome::failed(op, failure), events: vec![] };
    match (current, command) {
        (Some(s), Command::Login(_)) => unchanged(fail(
            FailureReason::AgentAlreadyLoggedIn,
            format!("{who} is already logged in (dial number {}); log out first.", s.dial_number),
        )),
        (None, Command::Login(login)) => match login_session(ctx, &login) {
            Ok(session) => Transition {
                outcome: Outcome::ok(op, format!("{who} logged in on {} and is Idle.", session.dial_number)),
                events: vec![Event::AgentLogin(change(ctx, &session))],
                session: Some(session),
            },
            Err(failure) => unchanged(failure),
        },
        (None, Command::Logout { .. }) => unchanged(fail(
            FailureReason::AgentNotLoggedIn,
            format!("{who} cannot be logged out: they are not logged in."),
        )),
        (Some(_), Command::Logout { .. }) if ctx.has_active_tasks => unchanged(fail(
            FailureReason::AgentHasActiveTasks,
            format!("{who} cannot log out while a task rings, is connected or waits for their wrap-up."),
        )),
        (Some(s), Command::Logout { reason }) => {
            let mut logout = change(ctx, s);
            logout.reason = Some(reason.clone());
            Transition {
                session: None,
                outcome: Outcome::ok(op, format!("{who} logged out ({reason}).")),
                events: vec![Event::AgentLogout(logout)],
            }
        }
        (None, Command::ChangeState { .. }) => unchanged(fail(
            FailureReason::AgentNotLoggedIn,
            format!("{who} cannot change state: they are not logged in."),
        )),
        (Some(s), Command::ChangeState { state, aux_code_id, reason }) => {
            if let Err(detail) = check_aux_code(ctx.org, state, &aux_code_id) {
                return unchanged(fail(FailureReason::InvalidIdleCode, detail));
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
            Transition {
                outcome: Outcome::ok(op, format!("{who} is now {state:?}.")),
                events: vec![Event::AgentStateChange(change(ctx, &next))],
                session: Some(next),
            }
        }
        (None, Command::Reload) => unchanged(fail(
            FailureReason::AgentNotFound,
            format!("{who} has no session to reload: they are not logged in."),
        )),
        (Some(s), Command::Reload) => Transition {
            session: Some(s.clone()),
            outcome: Outcome::ok(op, format!("{who}'s session was reloaded.")),
            events: vec![],
        },
    }
}

fn login_session(ctx: Context<'_>, login: &Login) -> Result<Session, Failure> {
    let (org, user) = (ctx.org, ctx.user);
    let who = &user.email;
    let wants_agent = login.roles.iter().any(|r| r == "agent");
    let wants_supervisor = login.roles.iter().any(|r| r == "supervisor");
    if wants_agent && !user.has_role(roles::AGENT) {
        return Err(fail(FailureReason::InvalidRole, format!("{who} has no agent licence ({}).", roles::AGENT)));
    }
    if wants_supervisor && !user.has_role(roles::SUPERVISOR) {
        return Err(fail(FailureReason::InvalidRole, format!("{who} is not a supervisor ({}).", roles::SUPERVISOR)));
    }
    let team_id = login.team_id.clone().filter(|t| !t.is_empty());
    if let Some(team) = &team_id {
        if !org.teams.iter().any(|t| &t.id == team) {
            return Err(fail(FailureReason::InvalidTeam, format!("Team {team} does not exist in {}.", org.name)));
        }
        if !user.team_ids.contains(team) {
            return Err(fail(FailureReason::InvalidTeam, format!("{who} is not a member of team {team}.")));
        }
    }
    let device_type = login
        .device_type
        .clone()
        .unwrap_or_else(|| if login.is_extension { "EXTENSION".into() } else { "AGENT_DN".into() });
    match device_type.as_str() {
        "EXTENSION" if !org.dial_numbers.contains(&login.dial_number) => {
            return Err(fail(
                FailureReason::InvalidDialNumber,
                format!(
                    "Extension {} is not one of {}'s dial numbers ({}).",
                    login.dial_number,
                    org.name,
                    org.dial_numbers.join(", ")
                ),
            ));
        }
        "AGENT_DN" if !is_phone_number(&login.dial_number) => {
            return Err(fail(
                FailureReason::InvalidDialNumber,
                format!("{} is not a phone number (digits, optionally after a +).", login.dial_number),
            ));
        }
        _ => {}
    }
    if let Some(other) = ctx.dial_number_used_by {
        return Err(fail(
            FailureReason::DuplicateLocation,
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
        capacity: Capacity::for_user(org, user),
    })
}

fn check_aux_code(org: &Org, state: SubStatus, aux_code_id: &str) -> Result<(), String> {
    match state {
        SubStatus::Available if aux_code_id == AVAILABLE_AUX_CODE => Ok(()),
        SubStatus::Available => Err(format!("Available takes auxCodeId \"0\", not \"{aux_code_id}\".")),
        SubStatus::Idle if idle_codes(org).any(|a| a.id == aux_code_id && a.active) => Ok(()),
        SubStatus::Idle if org.aux_codes.iter().any(|a| a.id == aux_code_id && a.is_system_code) => Err(format!(
            "{aux_code_id} is a system idle code (RONA and the like): only the system puts an agent in it."
        )),
        SubStatus::Idle => Err(format!(
            "{aux_code_id} is not an active idle code of {}; its idle codes are {}.",
            org.name,
            idle_codes(org).map(|a| format!("{} ({})", a.id, a.name)).collect::<Vec<_>>().join(", ")
        )),
    }
}

fn idle_codes(org: &Org) -> impl Iterator<Item = &crate::world::AuxCode> {
    org.aux_codes.iter().filter(|a| a.work_type == "IDLE_CODE" && !a.is_system_code)
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
        Context {
            org,
            user,
            dial_number_used_by: used_by,
            now: 1_000,
            new_session_id: "s-1",
            by: &user.id,
            has_active_tasks: false,
        }
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
        assert_eq!(t.events[0].name(), "agent:login");
    }

    #[test]
    fn a_second_login_fails_and_leaves_the_session_alone() {
        let world = World::default_world();
        let c = ctx(&world, "agent1@wxcc.example", None);
        let team = c.user.team_ids[0].clone();
        let first = decide(c, None, login("1001", Some(&team))).session.expect("session");
        let t = decide(c, Some(&first), login("1002", Some(&team)));
        assert_eq!(t.outcome.failure, Some(FailureReason::AgentAlreadyLoggedIn));
        assert_eq!(t.session.as_ref(), Some(&first));
        assert!(t.events.is_empty());
    }

    #[test]
    fn a_dial_number_in_use_elsewhere_is_a_duplicate_location() {
        let world = World::default_world();
        let c = ctx(&world, "agent1@wxcc.example", Some("agent2@wxcc.example"));
        let team = c.user.team_ids[0].clone();
        let t = decide(c, None, login("1001", Some(&team)));
        assert_eq!(t.outcome.failure, Some(FailureReason::DuplicateLocation));
        assert!(t.session.is_none());
    }

    #[test]
    fn state_changes_need_a_session_and_a_known_idle_code() {
        let world = World::default_world();
        let c = ctx(&world, "agent1@wxcc.example", None);
        let change =
            |state, code: &str| Command::ChangeState { state, aux_code_id: code.into(), reason: String::new() };
        let t = decide(c, None, change(SubStatus::Available, "0"));
        assert_eq!(t.outcome.failure, Some(FailureReason::AgentNotLoggedIn));
        let team = c.user.team_ids[0].clone();
        let s = decide(c, None, login("1001", Some(&team))).session.expect("session");
        let t = decide(c, Some(&s), change(SubStatus::Idle, "no-such-code"));
        assert_eq!(t.outcome.failure, Some(FailureReason::InvalidIdleCode));
        let t = decide(c, Some(&s), change(SubStatus::Available, "0"));
        assert!(t.outcome.is_success());
        let Event::AgentStateChange(changed) = &t.events[0] else { panic!("a state change: {:?}", t.events) };
        assert_eq!(changed.session.sub_status, SubStatus::Available);
        let available = t.session.expect("session");
        let again = decide(c, Some(&available), change(SubStatus::Available, "0"));
        assert!(again.outcome.is_success());
        assert!(again.events.is_empty(), "no transition, no event");
    }

    #[test]
    fn an_agent_with_an_active_task_cannot_log_out() {
        let world = World::default_world();
        let c = ctx(&world, "agent1@wxcc.example", None);
        let team = c.user.team_ids[0].clone();
        let s = decide(c, None, login("1001", Some(&team))).session.expect("session");
        let busy = Context { has_active_tasks: true, ..c };
        let t = decide(busy, Some(&s), Command::Logout { reason: "done".into() });
        assert_eq!(t.outcome.failure, Some(FailureReason::AgentHasActiveTasks));
        assert_eq!(t.session.as_ref(), Some(&s));
    }

    #[test]
    fn reload_while_logged_out_is_agent_not_found() {
        let world = World::default_world();
        let c = ctx(&world, "agent2@wxcc.example", None);
        let t = decide(c, None, Command::Reload);
        assert_eq!(t.outcome.failure, Some(FailureReason::AgentNotFound));
        assert_eq!(t.outcome.operation.message_types(false).0, "AgentReloginFailed");
    }
}
