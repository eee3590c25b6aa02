//! Tasks: contacts (calls, chats, emails, social messages) from arrival to wrap-up, as a pure
//! model (facts: `wxcc-tasks-facts.md`). No HTTP, no sockets, no clock: every function takes
//! `now` and returns what happened as typed [`Step`]s, in order, each with the task as it was
//! right after that step (so a message renders the task as the agent would have seen it then).
//!
//! ```text
//!             ┌──────── RONA / decline / invite failed: requeued ─────────┐
//!             ▼                                                           │
//! inject ─▶ Queued ──route──▶ Offered(agent) ──accept/answer──▶ Connected(agent) ⇄ held
//!             │                 │                                 │
//!             │ customer hangs up (abandoned)                     │ end / customer hangs up
//!             ▼                 ▼                                 ▼
//!                      Ended ◀──────────────────────────── Ended + the agent's wrap-up
//! ```
//! A task's leg is what the customer side is doing; wrap-ups are per agent (`pending_wrapup`),
//! so an agent who blind-transferred a call wraps up while the call rings elsewhere.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::world::Channel;

/// Who started the contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// The customer.
    Inbound,
    /// An agent (`POST /v1/tasks`).
    Outdial,
    /// The contact center calls the customer back (a courtesy callback): queued and offered as
    /// an inbound call, announced as `OUTBOUND` / `COURTESY_CALLBACK`. A RONA on it also sends
    /// a `task:ended` from the system while the task goes back to its queue (facts addendum).
    CourtesyCallback,
}

/// Who ended the contact (`task:ended`'s `terminatingParty`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub enum Party {
    /// The agent.
    Agent,
    /// The customer.
    Customer,
    /// The system.
    System,
}

/// What the customer side of a task is doing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(tag = "state", rename_all = "camelCase")]
pub enum Leg {
    /// Waiting in its queue (or for its target agent).
    Queued {
        /// Since when (epoch ms).
        since: i64,
    },
    /// Ringing at an agent.
    #[serde(rename_all = "camelCase")]
    Offered {
        /// The agent.
        agent_id: String,
        /// Since when.
        since: i64,
        /// When RONA fires.
        deadline: i64,
        /// Which offer this is (1 for the first): a stale RONA timer names an old one.
        offer: u64,
    },
    /// Connected to an agent.
    #[serde(rename_all = "camelCase")]
    Connected {
        /// The agent.
        agent_id: String,
        /// Since when.
        since: i64,
        /// Since when it is on hold, if it is.
        held_since: Option<i64>,
    },
    /// Over for the customer.
    #[serde(rename_all = "camelCase")]
    Ended {
        /// When.
        at: i64,
        /// `Agent Left`, `Customer Left`, `RONA Timer Expired`, ...
        reason: String,
        /// Who ended it.
        terminating_party: Party,
    },
}

/// A wrap-up an agent submitted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WrapUp {
    /// The agent.
    pub agent_id: String,
    /// The wrap-up code.
    pub aux_code_id: String,
    /// The reason text.
    pub reason: String,
    /// When.
    pub at: i64,
}

/// One contact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    /// The task id, which is also the `interactionId` and the main `mediaResourceId`.
    pub id: String,
    /// Its organisation.
    pub org_id: String,
    /// Its channel.
    pub channel: Channel,
    /// Inbound or outdial.
    pub direction: Direction,
    /// The queue it waits in or was routed through.
    pub queue_id: Option<String>,
    /// Queues it was in before (after a transfer).
    pub previous_queues: Vec<String>,
    /// The entry point it came through (or an outdial's).
    pub entry_point_id: Option<String>,
    /// The customer: ANI or address (the ANI shown, for an outdial).
    pub origin: String,
    /// The number or address dialled (the customer's number, for an outdial).
    pub destination: String,
    /// The customer's name.
    pub customer_name: Option<String>,
    /// Call-associated data.
    pub cad: Map<String, Value>,
    /// When it arrived.
    pub created_at: i64,
    /// When it last changed.
    pub updated_at: i64,
    /// Its own RONA timeout, overriding its queue's.
    pub rona_timeout_seconds: Option<u32>,
    /// Offered only to this agent (an admin injection with `agentId`, a transfer to an agent).
    pub target_agent: Option<String>,
    /// The customer side.
    pub leg: Leg,
    /// The agent it was last connected to (or offered to, for an outdial).
    pub owner: Option<String>,
    /// Whether an agent ever answered it.
    pub was_connected: bool,
    /// Agents who still have to wrap it up.
    pub pending_wrapup: Vec<String>,
    /// Wrap-ups submitted.
    pub wrapups: Vec<WrapUp>,
    /// How many offers were made.
    pub offers: u64,
    /// The agent who asked for it (outdial).
    pub outdial_agent: Option<String>,
}

/// What happened, as websocket messages and webhooks will tell it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepKind {
    /// It arrived (`task:new`).
    New,
    /// It waits in its queue (`task:parked`).
    Parked,
    /// Reserved for and offered to an agent (`AgentContactReserved`, `AgentOfferContact`,
    /// `task:connect`, the agent's channel `ringing`).
    Offered {
        /// The agent.
        agent_id: String,
    },
    /// The agent's phone did not take the invite (`AgentInviteFailed`; the agent goes
    /// `Agent_Unavailable`).
    InviteFailed {
        /// The agent.
        agent_id: String,
    },
    /// Answered (`AgentContactAssigned`, `task:connected`, channel `connected`).
    Connected {
        /// The agent.
        agent_id: String,
    },
    /// Put on hold (`AgentContactHeld`, `task:on-hold`).
    Held {
        /// The agent.
        agent_id: String,
    },
    /// Taken off hold (`AgentContactUnheld`, `task:hold-done`).
    Unheld {
        /// The agent.
        agent_id: String,
    },
    /// The customer side ended (`ContactEnded` to `agent_id` if one was on it, `task:ended`).
    Ended {
        /// The agent who was ringing or connected, if any.
        agent_id: Option<String>,
    },
    /// An agent must wrap up (`AgentWrapup`, channel `wrapup`).
    WrapUp {
        /// The agent.
        agent_id: String,
    },
    /// An agent wrapped up (`AgentWrappedUp`, channel `wrapup-done`).
    WrappedUp {
        /// The agent.
        agent_id: String,
        /// The wrap-up code.
        aux_code_id: String,
    },
    /// Not answered in time (`AgentOfferContactRona`; the agent goes `RONA`).
    Rona {
        /// The agent.
        agent_id: String,
    },
    /// The agent declined the offer (`AgentContactAssignFailed`, reason `USER_DECLINED`; the agent
    /// goes `Agent_Declined`).
    Declined {
        /// The agent.
        agent_id: String,
    },
    /// The agent blind-transferred it (`AgentBlindTransferred` to an agent,
    /// `AgentVteamTransferred` to a queue).
    Transferred {
        /// The agent.
        agent_id: String,
        /// To a queue (else to an agent).
        to_queue: bool,
    },
    /// A courtesy callback's attempt ended unanswered while the task goes back to its queue: a
    /// `task:ended` from the system (`RONA Timer Expired`), and the task lives on.
    AttemptEnded,
    /// An outdial could not be placed (`AgentOutboundFailed`, `task:failed`).
    OutboundFailed {
        /// The agent.
        agent_id: String,
        /// Why.
        reason: String,
    },
}

/// A step and the task right after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// What happened.
    pub kind: StepKind,
    /// The task then.
    pub task: Task,
}

/// Why a task command was refused (sent as the operation's `…Failed` message). All reasons
/// are the mock's own: Cisco documents none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaskFailureReason {
    /// No such task in the caller's organisation.
    TaskNotFound,
    /// The task is not in a state the command applies to.
    InvalidTaskState,
    /// The task is not the caller's.
    NotTaskOwner,
    /// Not possible on this channel (hold on a chat, say).
    NotSupportedForChannel,
    /// The mock does not simulate this (consult, conference, recording control).
    NotSupportedByWxccMock,
    /// The wrap-up code is not one of the organisation's.
    InvalidWrapUpCode,
    /// A transfer or outdial target that does not exist or is not valid.
    InvalidDestination,
    /// The outdial's entry point is not an outbound one of the organisation.
    InvalidEntryPoint,
    /// The outdial's origin is not in the agent profile's outdial ANI list.
    InvalidOutdialAni,
    /// The agent is not logged in.
    AgentNotLoggedIn,
    /// The agent has no free slot on the channel.
    NoCapacity,
    /// The `mediaResourceId` is not one of the task's.
    InvalidMediaResource,
}

impl TaskFailureReason {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskFailureReason::TaskNotFound => "TASK_NOT_FOUND",
            TaskFailureReason::InvalidTaskState => "INVALID_TASK_STATE",
            TaskFailureReason::NotTaskOwner => "NOT_TASK_OWNER",
            TaskFailureReason::NotSupportedForChannel => "NOT_SUPPORTED_FOR_CHANNEL",
            TaskFailureReason::NotSupportedByWxccMock => "NOT_SUPPORTED_BY_WXCC_MOCK",
            TaskFailureReason::InvalidWrapUpCode => "INVALID_WRAP_UP_CODE",
            TaskFailureReason::InvalidDestination => "INVALID_DESTINATION",
            TaskFailureReason::InvalidEntryPoint => "INVALID_ENTRY_POINT",
            TaskFailureReason::InvalidOutdialAni => "INVALID_OUTDIAL_ANI",
            TaskFailureReason::AgentNotLoggedIn => "AGENT_NOT_LOGGED_IN",
            TaskFailureReason::NoCapacity => "NO_CAPACITY",
            TaskFailureReason::InvalidMediaResource => "INVALID_MEDIA_RESOURCE",
        }
    }

    /// The `reasonCode` sent with it (the mock's own numbers).
    pub fn code(self) -> i64 {
        match self {
            TaskFailureReason::TaskNotFound => 2001,
            TaskFailureReason::InvalidTaskState => 2002,
            TaskFailureReason::NotTaskOwner => 2003,
            TaskFailureReason::NotSupportedForChannel => 2004,
            TaskFailureReason::NotSupportedByWxccMock => 2005,
            TaskFailureReason::InvalidWrapUpCode => 2006,
            TaskFailureReason::InvalidDestination => 2007,
            TaskFailureReason::InvalidEntryPoint => 2008,
            TaskFailureReason::InvalidOutdialAni => 2009,
            TaskFailureReason::AgentNotLoggedIn => 2010,
            TaskFailureReason::NoCapacity => 2011,
            TaskFailureReason::InvalidMediaResource => 2012,
        }
    }
}

/// A refused task command: the reason and a sentence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason:?}: {detail}")]
pub struct TaskFailure {
    /// The reason.
    pub reason: TaskFailureReason,
    /// What went wrong, in a sentence.
    pub detail: String,
}

fn refuse<T>(reason: TaskFailureReason, detail: String) -> Result<T, TaskFailure> {
    Err(TaskFailure { reason, detail })
}

/// Where a task stands, as `GET /v1/tasks` reports it (facts §1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Waiting in a queue.
    Queued,
    /// Ringing at an agent.
    Offered,
    /// With an agent.
    Assigned,
    /// Over, after an agent had it.
    Completed,
    /// Over before any agent had it.
    Abandoned,
}

/// What the task was created with.
#[derive(Debug, Clone)]
pub struct NewTask {
    /// Id (a UUID).
    pub id: String,
    /// Organisation.
    pub org_id: String,
    /// Channel.
    pub channel: Channel,
    /// Inbound or outdial.
    pub direction: Direction,
    /// Queue.
    pub queue_id: Option<String>,
    /// Entry point.
    pub entry_point_id: Option<String>,
    /// Customer (ANI shown, for an outdial).
    pub origin: String,
    /// Dialled.
    pub destination: String,
    /// Customer name.
    pub customer_name: Option<String>,
    /// CAD.
    pub cad: Map<String, Value>,
    /// RONA override.
    pub rona_timeout_seconds: Option<u32>,
    /// Only for this agent.
    pub target_agent: Option<String>,
    /// The outdialling agent.
    pub outdial_agent: Option<String>,
}

impl Task {
    /// A task that just arrived: queued, with `task:new` and `task:parked`.
    pub fn arrive(new: NewTask, now: i64) -> (Task, Vec<Step>) {
        let task = Task {
            id: new.id,
            org_id: new.org_id,
            channel: new.channel,
            direction: new.direction,
            queue_id: new.queue_id,
            previous_queues: Vec::new(),
            entry_point_id: new.entry_point_id,
            origin: new.origin,
            destination: new.destination,
            customer_name: new.customer_name,
            cad: new.cad,
            created_at: now,
            updated_at: now,
            rona_timeout_seconds: new.rona_timeout_seconds,
            target_agent: new.target_agent,
            leg: Leg::Queued { since: now },
            owner: None,
            was_connected: false,
            pending_wrapup: Vec::new(),
            wrapups: Vec::new(),
            offers: 0,
            outdial_agent: new.outdial_agent,
        };
        let mut steps = vec![Step { kind: StepKind::New, task: task.clone() }];
        if task.direction != Direction::Outdial {
            steps.push(Step { kind: StepKind::Parked, task: task.clone() });
        }
        (task, steps)
    }

    fn step(&self, kind: StepKind) -> Step {
        Step { kind, task: self.clone() }
    }

    /// Where it stands, for `GET /v1/tasks`.
    pub fn status(&self) -> Status {
        match &self.leg {
            Leg::Queued { .. } => Status::Queued,
            Leg::Offered { .. } => Status::Offered,
            Leg::Connected { .. } => Status::Assigned,
            Leg::Ended { .. } if self.was_connected => Status::Completed,
            Leg::Ended { .. } => Status::Abandoned,
        }
    }

    /// Where it stands, in more detail (the admin API): `queued`, `offered`, `connected`,
    /// `held`, `wrapup` (ended, wrap-ups pending), `completed`, `abandoned`.
    pub fn state(&self) -> &'static str {
        match &self.leg {
            Leg::Queued { .. } => "queued",
            Leg::Offered { .. } => "offered",
            Leg::Connected { held_since: Some(_), .. } => "held",
            Leg::Connected { .. } => "connected",
            Leg::Ended { .. } if !self.pending_wrapup.is_empty() => "wrapup",
            Leg::Ended { .. } if self.was_connected => "completed",
            Leg::Ended { .. } => "abandoned",
        }
    }

    /// Whether it is over for good: ended, and nobody left to wrap it up.
    pub fn is_finished(&self) -> bool {
        matches!(self.leg, Leg::Ended { .. }) && self.pending_wrapup.is_empty()
    }

    /// The agent it rings at or is connected to.
    pub fn agent(&self) -> Option<&str> {
        match &self.leg {
            Leg::Offered { agent_id, .. } | Leg::Connected { agent_id, .. } => Some(agent_id),
            _ => None,
        }
    }

    /// Whether it takes one of `agent_id`'s slots on its channel (ringing or connected there).
    pub fn occupies(&self, agent_id: &str) -> bool {
        self.agent() == Some(agent_id)
    }

    /// The current offer's number, if it is ringing.
    pub fn current_offer(&self) -> Option<u64> {
        match &self.leg {
            Leg::Offered { offer, .. } => Some(*offer),
            _ => None,
        }
    }

    /// Offers it to `agent_id`, ringing until `deadline`.
    pub fn offer(&mut self, agent_id: &str, now: i64, deadline: i64) -> Vec<Step> {
        self.offers += 1;
        self.leg = Leg::Offered { agent_id: agent_id.to_owned(), since: now, deadline, offer: self.offers };
        self.updated_at = now;
        if self.direction == Direction::Outdial {
            self.owner = Some(agent_id.to_owned());
        }
        vec![self.step(StepKind::Offered { agent_id: agent_id.to_owned() })]
    }

    fn requeue(&mut self, now: i64) -> Step {
        self.leg = Leg::Queued { since: now };
        self.updated_at = now;
        self.step(StepKind::Parked)
    }

    fn ringing_at(&self, agent_id: &str, what: &str) -> Result<(), TaskFailure> {
        match &self.leg {
            Leg::Offered { agent_id: a, .. } if a == agent_id => Ok(()),
            Leg::Offered { .. } => refuse(
                TaskFailureReason::NotTaskOwner,
                format!("Task {} rings at another agent; it cannot be {what} here.", self.id),
            ),
            _ => refuse(
                TaskFailureReason::InvalidTaskState,
                format!("Task {} is {}, not ringing: it cannot be {what}.", self.id, self.state()),
            ),
        }
    }

    fn connected_to(&self, agent_id: &str, what: &str) -> Result<Option<i64>, TaskFailure> {
        match &self.leg {
            Leg::Connected { agent_id: a, held_since, .. } if a == agent_id => Ok(*held_since),
            Leg::Connected { .. } => refuse(
                TaskFailureReason::NotTaskOwner,
                format!("Task {} is connected to another agent; it cannot be {what} here.", self.id),
            ),
            _ => refuse(
                TaskFailureReason::InvalidTaskState,
                format!("Task {} is {}, not connected: it cannot be {what}.", self.id, self.state()),
            ),
        }
    }

    /// The agent (or their phone) answers the offer.
    pub fn answer(&mut self, agent_id: &str, now: i64) -> Result<Vec<Step>, TaskFailure> {
        self.ringing_at(agent_id, "answered")?;
        self.leg = Leg::Connected { agent_id: agent_id.to_owned(), since: now, held_since: None };
        self.owner = Some(agent_id.to_owned());
        self.was_connected = true;
        self.updated_at = now;
        Ok(vec![self.step(StepKind::Connected { agent_id: agent_id.to_owned() })])
    }

    /// The offer was not answered in time: requeued (an outdial fails instead).
    pub fn rona(&mut self, agent_id: &str, now: i64) -> Result<Vec<Step>, TaskFailure> {
        self.ringing_at(agent_id, "RONA'd")?;
        self.updated_at = now;
        if self.direction == Direction::Outdial {
            return Ok(self.fail_outdial(agent_id, "The outdial was not answered in time.", now));
        }
        let rona = self.step(StepKind::Rona { agent_id: agent_id.to_owned() });
        let requeued = self.requeue(now);
        if self.direction == Direction::CourtesyCallback {
            // Not over: the task is back in its queue, yet a task:ended says it ended.
            let ended = self.step(StepKind::AttemptEnded);
            return Ok(vec![rona, requeued, ended]);
        }
        Ok(vec![rona, requeued])
    }

    /// The agent declined the offer: requeued (an outdial ends instead).
    pub fn decline(&mut self, agent_id: &str, now: i64) -> Result<Vec<Step>, TaskFailure> {
        self.ringing_at(agent_id, "declined")?;
        self.updated_at = now;
        if self.direction == Direction::Outdial {
            return Ok(self.fail_outdial(agent_id, "The agent cancelled the outdial.", now));
        }
        let declined = self.step(StepKind::Declined { agent_id: agent_id.to_owned() });
        Ok(vec![declined, self.requeue(now)])
    }

    /// The agent's phone did not take the invite: requeued.
    pub fn invite_failed(&mut self, agent_id: &str, now: i64) -> Result<Vec<Step>, TaskFailure> {
        self.ringing_at(agent_id, "invited")?;
        self.updated_at = now;
        let failed = self.step(StepKind::InviteFailed { agent_id: agent_id.to_owned() });
        Ok(vec![failed, self.requeue(now)])
    }

    fn fail_outdial(&mut self, agent_id: &str, why: &str, now: i64) -> Vec<Step> {
        let failed = self.step(StepKind::OutboundFailed { agent_id: agent_id.to_owned(), reason: why.to_owned() });
        // A failed outdial still ends and is wrapped up (facts addendum #7).
        self.leg = Leg::Ended { at: now, reason: "Outdial Failed".to_owned(), terminating_party: Party::System };
        self.pending_wrapup.push(agent_id.to_owned());
        vec![
            failed,
            self.step(StepKind::Ended { agent_id: Some(agent_id.to_owned()) }),
            self.step(StepKind::WrapUp { agent_id: agent_id.to_owned() }),
        ]
    }

    /// Puts the call on hold (telephony only).
    pub fn hold(&mut self, agent_id: &str, now: i64) -> Result<Vec<Step>, TaskFailure> {
        if self.channel != Channel::Telephony {
            return refuse(
                TaskFailureReason::NotSupportedForChannel,
                format!("Task {} is a {}; only calls can be held.", self.id, self.channel.as_str()),
            );
        }
        if self.connected_to(agent_id, "held")?.is_some() {
            return refuse(TaskFailureReason::InvalidTaskState, format!("Task {} is already on hold.", self.id));
        }
        self.leg = Leg::Connected { agent_id: agent_id.to_owned(), since: self.since(), held_since: Some(now) };
        self.updated_at = now;
        Ok(vec![self.step(StepKind::Held { agent_id: agent_id.to_owned() })])
    }

    /// Takes the call off hold.
    pub fn unhold(&mut self, agent_id: &str, now: i64) -> Result<Vec<Step>, TaskFailure> {
        if self.channel != Channel::Telephony {
            return refuse(
                TaskFailureReason::NotSupportedForChannel,
                format!("Task {} is a {}; only calls can be held and resumed.", self.id, self.channel.as_str()),
            );
        }
        if self.connected_to(agent_id, "resumed")?.is_none() {
            return refuse(TaskFailureReason::InvalidTaskState, format!("Task {} is not on hold.", self.id));
        }
        self.leg = Leg::Connected { agent_id: agent_id.to_owned(), since: self.since(), held_since: None };
        self.updated_at = now;
        Ok(vec![self.step(StepKind::Unheld { agent_id: agent_id.to_owned() })])
    }

    fn since(&self) -> i64 {
        match &self.leg {
            Leg::Connected { since, .. } | Leg::Offered { since, .. } | Leg::Queued { since } => *since,
            Leg::Ended { at, .. } => *at,
        }
    }

    fn end_leg(&mut self, reason: &str, party: Party, wrap_up: bool, now: i64) -> Vec<Step> {
        let agent = self.agent().map(str::to_owned);
        let connected = matches!(self.leg, Leg::Connected { .. });
        self.leg = Leg::Ended { at: now, reason: reason.to_owned(), terminating_party: party };
        self.updated_at = now;
        let needs_wrap_up = connected && wrap_up;
        if let (Some(agent), true) = (&agent, needs_wrap_up)
            && !self.pending_wrapup.contains(agent)
        {
            self.pending_wrapup.push(agent.clone());
        }
        let mut steps = vec![self.step(StepKind::Ended { agent_id: agent.clone() })];
        if let (Some(agent), true) = (agent, needs_wrap_up) {
            steps.push(self.step(StepKind::WrapUp { agent_id: agent }));
        }
        steps
    }

    /// The agent ends the contact (`POST …/end`): connected, it goes to wrap-up (when the
    /// agent's profile requires it); ringing, the offer is cancelled and the contact ends.
    pub fn end(&mut self, agent_id: &str, wrap_up: bool, now: i64) -> Result<Vec<Step>, TaskFailure> {
        match &self.leg {
            Leg::Connected { agent_id: a, .. } | Leg::Offered { agent_id: a, .. } if a == agent_id => {
                Ok(self.end_leg("Agent Left", Party::Agent, wrap_up, now))
            }
            Leg::Connected { .. } | Leg::Offered { .. } => refuse(
                TaskFailureReason::NotTaskOwner,
                format!("Task {} is with another agent; only they can end it.", self.id),
            ),
            _ => refuse(
                TaskFailureReason::InvalidTaskState,
                format!("Task {} is {}; only a ringing or connected task can be ended.", self.id, self.state()),
            ),
        }
    }

    /// The customer hangs up (or leaves the chat), in any state but over.
    pub fn customer_left(&mut self, wrap_up: bool, now: i64) -> Result<Vec<Step>, TaskFailure> {
        if matches!(self.leg, Leg::Ended { .. }) {
            return refuse(TaskFailureReason::InvalidTaskState, format!("Task {} has already ended.", self.id));
        }
        Ok(self.end_leg("Customer Left", Party::Customer, wrap_up, now))
    }

    /// The agent wraps up with a wrap-up code (checked by the caller against the organisation).
    pub fn wrap_up(
        &mut self,
        agent_id: &str,
        aux_code_id: &str,
        reason: &str,
        now: i64,
    ) -> Result<Vec<Step>, TaskFailure> {
        if !self.pending_wrapup.iter().any(|a| a == agent_id) {
            let detail = if self.pending_wrapup.is_empty() {
                format!("Task {} is {}: there is nothing to wrap up.", self.id, self.state())
            } else {
                format!("Task {} is waiting for another agent's wrap-up, not this agent's.", self.id)
            };
            return refuse(TaskFailureReason::InvalidTaskState, detail);
        }
        self.pending_wrapup.retain(|a| a != agent_id);
        self.wrapups.push(WrapUp {
            agent_id: agent_id.to_owned(),
            aux_code_id: aux_code_id.to_owned(),
            reason: reason.to_owned(),
            at: now,
        });
        self.updated_at = now;
        Ok(vec![self.step(StepKind::WrappedUp { agent_id: agent_id.to_owned(), aux_code_id: aux_code_id.to_owned() })])
    }

    /// A blind transfer by the connected agent: to a queue (`queue`) or to an agent
    /// (`agent`). The agent then wraps up their part while the task is routed on.
    pub fn transfer(
        &mut self,
        agent_id: &str,
        queue: Option<&str>,
        agent: Option<&str>,
        wrap_up: bool,
        now: i64,
    ) -> Result<Vec<Step>, TaskFailure> {
        self.connected_to(agent_id, "transferred")?;
        let to_queue = queue.is_some();
        if let Some(queue) = queue {
            if let Some(old) = self.queue_id.replace(queue.to_owned()) {
                self.previous_queues.push(old);
            }
            self.target_agent = None;
        } else {
            self.target_agent = agent.map(str::to_owned);
        }
        if wrap_up && !self.pending_wrapup.iter().any(|a| a == agent_id) {
            self.pending_wrapup.push(agent_id.to_owned());
        }
        let transferred = self.step(StepKind::Transferred { agent_id: agent_id.to_owned(), to_queue });
        let mut steps = vec![transferred];
        if wrap_up {
            steps.push(self.step(StepKind::WrapUp { agent_id: agent_id.to_owned() }));
        }
        steps.push(self.requeue(now));
        Ok(steps)
    }

    /// The RONA timeout of this task: its own, else its queue's, else the channel's default.
    pub fn rona_seconds(&self, queue_default: Option<u32>) -> u32 {
        self.rona_timeout_seconds.or(queue_default).unwrap_or_else(|| self.channel.default_rona_seconds())
    }
}

/// An agent as routing sees them.
#[derive(Debug, Clone)]
pub struct Candidate<'a> {
    /// The agent.
    pub agent_id: &'a str,
    /// The team logged in to.
    pub team_id: Option<&'a str>,
    /// Available (not Idle).
    pub available: bool,
    /// Since when their state is what it is (the longest-available agent goes first).
    pub since: i64,
    /// Free slots on the task's channel.
    pub free_slots: u32,
    /// Wrapping up a task (no new contacts meanwhile).
    pub wrapping_up: bool,
}

/// The agent a queued task goes to: Available, not wrapping up, with a free slot on its channel,
/// in one of the queue's teams (or the task's target agent), the one Available longest first
/// (ties by id, so routing is deterministic).
pub fn pick<'a>(task: &Task, queue_teams: &[String], candidates: &[Candidate<'a>]) -> Option<&'a str> {
    candidates
        .iter()
        .filter(|c| c.available && !c.wrapping_up && c.free_slots > 0)
        .filter(|c| match &task.target_agent {
            Some(target) => target == c.agent_id,
            None => c.team_id.is_some_and(|t| queue_teams.iter().any(|q| q == t)),
        })
        .min_by(|a, b| a.since.cmp(&b.since).then(a.agent_id.cmp(b.agent_id)))
        .map(|c| c.agent_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_task(channel: Channel) -> Task {
        let new = NewTask {
            id: "t1".into(),
            org_id: "o".into(),
            channel,
            direction: Direction::Inbound,
            queue_id: Some("q".into()),
            entry_point_id: None,
            origin: "+1555".into(),
            destination: "+1800".into(),
            customer_name: None,
            cad: Map::new(),
            rona_timeout_seconds: None,
            target_agent: None,
            outdial_agent: None,
        };
        Task::arrive(new, 0).0
    }

    fn kinds(steps: &[Step]) -> Vec<StepKind> {
        steps.iter().map(|s| s.kind.clone()).collect()
    }

    #[test]
    fn a_call_is_offered_answered_held_resumed_ended_and_wrapped_up() {
        let mut task = new_task(Channel::Telephony);
        assert_eq!(task.status(), Status::Queued);
        task.offer("a", 1, 18_001);
        assert_eq!(task.status(), Status::Offered);
        task.answer("a", 2).expect("answer");
        assert_eq!((task.status(), task.state()), (Status::Assigned, "connected"));
        task.hold("a", 3).expect("hold");
        assert_eq!(task.state(), "held");
        assert_eq!(task.hold("a", 4).expect_err("twice").reason, TaskFailureReason::InvalidTaskState);
        task.unhold("a", 5).expect("unhold");
        let ended = task.end("a", true, 6).expect("end");
        assert_eq!(
            kinds(&ended),
            vec![StepKind::Ended { agent_id: Some("a".into()) }, StepKind::WrapUp { agent_id: "a".into() }]
        );
        assert_eq!(task.state(), "wrapup");
        assert!(!task.is_finished());
        task.wrap_up("a", "code", "done", 7).expect("wrap up");
        assert_eq!((task.status(), task.state()), (Status::Completed, "completed"));
        assert!(task.is_finished());
    }

    #[test]
    fn a_courtesy_callbacks_rona_requeues_it_and_still_says_it_ended() {
        let mut task = new_task(Channel::Telephony);
        task.direction = Direction::CourtesyCallback;
        task.offer("a", 1, 18_001);
        let steps = task.rona("a", 18_001).expect("rona");
        assert_eq!(
            kinds(&steps),
            vec![StepKind::Rona { agent_id: "a".into() }, StepKind::Parked, StepKind::AttemptEnded]
        );
        assert_eq!(task.status(), Status::Queued, "not over: back in its queue");
        task.offer("a", 20_000, 38_000);
        assert_eq!(
            kinds(&task.answer("a", 20_001).expect("answered")),
            vec![StepKind::Connected { agent_id: "a".into() }]
        );
    }

    #[test]
    fn rona_and_decline_requeue_the_task_and_only_the_ringing_agent_can_answer() {
        let mut task = new_task(Channel::Chat);
        task.offer("a", 1, 30_001);
        assert_eq!(task.answer("b", 2).expect_err("not b's").reason, TaskFailureReason::NotTaskOwner);
        let steps = task.rona("a", 30_001).expect("rona");
        assert_eq!(kinds(&steps), vec![StepKind::Rona { agent_id: "a".into() }, StepKind::Parked]);
        assert_eq!(task.status(), Status::Queued);
        task.offer("b", 30_002, 60_002);
        assert_eq!(task.current_offer(), Some(2));
        let steps = task.decline("b", 30_003).expect("decline");
        assert_eq!(kinds(&steps)[0], StepKind::Declined { agent_id: "b".into() });
        assert_eq!(task.hold("b", 1).expect_err("chat").reason, TaskFailureReason::NotSupportedForChannel);
    }

    #[test]
    fn a_customer_who_hangs_up_while_ringing_abandons_the_task_without_wrap_up() {
        let mut task = new_task(Channel::Telephony);
        task.offer("a", 1, 10);
        let steps = task.customer_left(true, 2).expect("hang up");
        assert_eq!(kinds(&steps), vec![StepKind::Ended { agent_id: Some("a".into()) }]);
        assert_eq!(task.status(), Status::Abandoned);
        assert!(task.is_finished());
        assert_eq!(task.customer_left(true, 3).expect_err("twice").reason, TaskFailureReason::InvalidTaskState);
    }

    #[test]
    fn without_required_wrap_up_an_ended_call_is_finished_at_once() {
        let mut task = new_task(Channel::Telephony);
        task.offer("a", 1, 10);
        task.answer("a", 2).expect("answer");
        let steps = task.end("a", false, 3).expect("end");
        assert_eq!(kinds(&steps), vec![StepKind::Ended { agent_id: Some("a".into()) }]);
        assert!(task.is_finished());
        assert_eq!(task.wrap_up("a", "c", "r", 4).expect_err("nothing").reason, TaskFailureReason::InvalidTaskState);
    }

    #[test]
    fn a_blind_transfer_to_a_queue_requeues_the_task_while_the_agent_wraps_up() {
        let mut task = new_task(Channel::Telephony);
        task.offer("a", 1, 10);
        task.answer("a", 2).expect("answer");
        let steps = task.transfer("a", Some("q2"), None, true, 3).expect("transfer");
        assert_eq!(
            kinds(&steps),
            vec![
                StepKind::Transferred { agent_id: "a".into(), to_queue: true },
                StepKind::WrapUp { agent_id: "a".into() },
                StepKind::Parked
            ]
        );
        assert_eq!((task.queue_id.as_deref(), task.previous_queues.clone()), (Some("q2"), vec!["q".to_owned()]));
        assert_eq!(task.pending_wrapup, vec!["a".to_owned()]);
        assert_eq!(task.status(), Status::Queued);
    }

    #[test]
    fn routing_picks_the_agent_available_longest_with_a_free_slot_in_the_queues_teams() {
        let task = new_task(Channel::Chat);
        let candidate = |agent_id, team_id, since, free_slots, available, wrapping_up| Candidate {
            agent_id,
            team_id: Some(team_id),
            available,
            since,
            free_slots,
            wrapping_up,
        };
        let teams = vec!["t1".to_owned()];
        let all = [
            candidate("busy", "t1", 1, 0, true, false),
            candidate("idle", "t1", 2, 2, false, false),
            candidate("wrapping", "t1", 3, 2, true, true),
            candidate("other-team", "t2", 4, 2, true, false),
            candidate("later", "t1", 9, 1, true, false),
            candidate("sooner", "t1", 5, 1, true, false),
        ];
        assert_eq!(pick(&task, &teams, &all), Some("sooner"));
        let mut targeted = task.clone();
        targeted.target_agent = Some("later".into());
        assert_eq!(pick(&targeted, &[], &all), Some("later"));
        assert_eq!(pick(&task, &teams, &all[..4]), None);
    }
}
