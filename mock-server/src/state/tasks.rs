//! Tasks on the core: admin injections and device controls, the agents' task commands and
//! outdials, routing to the longest-Available agent, and RONA timers on the mock's clock.
//!
//! Every change happens under the core lock: the pure model ([`crate::engine::tasks`]) decides
//! and returns its steps; each step is rendered, in order, as the websocket messages and the
//! events (webhooks, journal) it means, with its side effects on agents (a RONA'd agent goes
//! Idle with the system code); then queued tasks are routed again; then it is all published.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Weak};

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::engine::agents::{Operation, Outcome, SubStatus};
use crate::engine::events::{AgentChange, ChannelChange, ChannelState, Event, TaskChange};
use crate::engine::tasks::{
    self, Candidate, Direction, Leg, NewTask, Status, Step, StepKind, Task, TaskFailure, TaskFailureReason,
};
use crate::outputs::notifications::{self, OutcomeContext};
use crate::outputs::routing::{self, Extra, MessageContext};
use crate::world::{Channel, Org};

use super::{AppState, Core, Inner, Out, OutcomeRecord};

/// Every task, oldest first, with what routing needs beside them.
#[derive(Debug)]
pub struct TaskStore {
    tasks: HashMap<String, Task>,
    order: VecDeque<String>,
    history: usize,
    forgotten: u64,
    rona_timers: HashMap<String, tokio::task::AbortHandle>,
    devices: HashMap<String, bool>,
    busy_until: HashMap<String, i64>,
}

impl TaskStore {
    /// An empty store keeping at most `history` finished tasks.
    pub fn new(history: usize) -> TaskStore {
        TaskStore {
            tasks: HashMap::new(),
            order: VecDeque::new(),
            history,
            forgotten: 0,
            rona_timers: HashMap::new(),
            devices: HashMap::new(),
            busy_until: HashMap::new(),
        }
    }

    /// Forgets everything (and stops every RONA timer).
    pub fn clear(&mut self) {
        for (_, timer) in self.rona_timers.drain() {
            timer.abort();
        }
        self.tasks.clear();
        self.order.clear();
        self.devices.clear();
        self.busy_until.clear();
        self.forgotten = 0;
    }

    fn insert(&mut self, task: Task) {
        self.order.push_back(task.id.clone());
        self.tasks.insert(task.id.clone(), task);
        self.trim();
    }

    /// Keeps at most `history` finished tasks: the oldest finished go first.
    fn trim(&mut self) {
        let finished = self.tasks.values().filter(|t| t.is_finished()).count();
        if finished <= self.history {
            return;
        }
        let mut excess = finished - self.history;
        let tasks = &mut self.tasks;
        let forgotten = &mut self.forgotten;
        self.order.retain(|id| {
            if excess > 0 && tasks.get(id).is_some_and(Task::is_finished) {
                tasks.remove(id);
                excess -= 1;
                *forgotten += 1;
                tracing::debug!("task history full: forgot finished task {id} (--task-history)");
                false
            } else {
                true
            }
        });
    }

    /// A task by id.
    pub fn get(&self, id: &str) -> Option<&Task> {
        self.tasks.get(id)
    }

    /// Every task, oldest first.
    pub fn all(&self) -> impl Iterator<Item = &Task> {
        self.order.iter().filter_map(|id| self.tasks.get(id))
    }

    fn occupying(&self, agent_id: &str, channel: Channel) -> u32 {
        let n = self.tasks.values().filter(|t| t.channel == channel && t.occupies(agent_id)).count();
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    fn wrapping_up(&self, agent_id: &str) -> bool {
        self.tasks.values().any(|t| t.pending_wrapup.iter().any(|a| a == agent_id))
    }

    /// Whether an agent has a task ringing, connected or waiting for their wrap-up.
    pub fn has_active(&self, agent_id: &str) -> bool {
        self.tasks.values().any(|t| t.occupies(agent_id) || t.pending_wrapup.iter().any(|a| a == agent_id))
    }

    fn active_for(&self, agent_id: &str) -> Vec<&Task> {
        self.all().filter(|t| t.occupies(agent_id) || t.pending_wrapup.iter().any(|a| a == agent_id)).collect()
    }

    /// What a state file keeps: every task (oldest first), the device overrides, when each
    /// agent last became free, and how many finished tasks were forgotten.
    pub(crate) fn saved(&self) -> SavedTasks {
        SavedTasks {
            tasks: self.all().cloned().collect(),
            devices: self.devices.clone(),
            busy_until: self.busy_until.clone(),
            forgotten: self.forgotten,
        }
    }

    /// Puts back what a state file kept (RONA timers are scheduled by the caller).
    pub(crate) fn restore(&mut self, saved: SavedTasks) {
        self.clear();
        for task in saved.tasks {
            self.order.push_back(task.id.clone());
            self.tasks.insert(task.id.clone(), task);
        }
        self.devices = saved.devices;
        self.busy_until = saved.busy_until;
        self.forgotten = saved.forgotten;
        self.trim();
    }

    fn cancel_timer(&mut self, task_id: &str) {
        if let Some(timer) = self.rona_timers.remove(task_id) {
            timer.abort();
        }
    }
}

/// The tasks as a state file keeps them.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SavedTasks {
    /// Every task, oldest first.
    pub tasks: Vec<Task>,
    /// Device reachability overrides by agent id.
    pub devices: HashMap<String, bool>,
    /// When each agent last became free for routing (epoch ms).
    pub busy_until: HashMap<String, i64>,
    /// Finished tasks forgotten past `--task-history`.
    pub forgotten: u64,
}

/// What `POST /__admin/tasks` asks for.
#[derive(Debug, Clone)]
pub struct Injection {
    /// The organisation (index into the world).
    pub org_idx: usize,
    /// The channel.
    pub channel: Channel,
    /// The queue to route through.
    pub queue_id: Option<String>,
    /// Or the one agent to offer it to.
    pub agent_id: Option<String>,
    /// The customer (ANI or address).
    pub origin: Option<String>,
    /// What they dialled.
    pub destination: Option<String>,
    /// Their name.
    pub customer_name: Option<String>,
    /// Call-associated data.
    pub cad: Map<String, Value>,
    /// A RONA timeout for this task only.
    pub rona_timeout_seconds: Option<u32>,
    /// A courtesy callback rather than an inbound contact.
    pub courtesy_callback: bool,
}

/// What the mock's own controls do to a task (`POST /__admin/tasks/{id}/…`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceAction {
    /// The agent's phone (or the agent) answers the offer.
    Answer,
    /// The agent's phone (or the agent) declines it.
    Decline,
    /// The customer hangs up or leaves, in any state.
    CustomerHangup,
    /// RONA fires now.
    ExpireRona,
}

/// A task command from an agent (`POST /v1/tasks/{id}/…`).
#[derive(Debug, Clone)]
pub enum TaskCommand {
    /// `accept` (digital channels; a call answers on the phone).
    Accept,
    /// `reject {mediaResourceId}`.
    Reject {
        /// The media resource named.
        media_resource_id: Option<String>,
    },
    /// `hold {mediaResourceId}`.
    Hold {
        /// The media resource named.
        media_resource_id: Option<String>,
    },
    /// `unhold {mediaResourceId}`.
    Unhold {
        /// The media resource named.
        media_resource_id: Option<String>,
    },
    /// `end` (`done` in Cisco's Postman collection).
    End,
    /// `wrapup`.
    Wrapup {
        /// A wrap-up code.
        aux_code_id: String,
        /// The reason text.
        reason: String,
    },
    /// `transfer` (blind).
    Transfer {
        /// Agent or queue id.
        to: String,
        /// `agent`, `queue`, `dialNumber`, `entrypointDialNumber`.
        destination_type: String,
    },
    /// A route the mock serves but does not simulate (consult, conference, recording control):
    /// it answers 202 and then this failure message.
    Unsupported {
        /// The `…Failed` message it answers with.
        failed: &'static str,
        /// What was asked, for the detail.
        what: &'static str,
    },
}

impl TaskCommand {
    /// The message a refusal is sent as.
    pub fn failed_message(&self, to_agent: bool) -> &'static str {
        match self {
            TaskCommand::Accept | TaskCommand::Reject { .. } => "AgentContactAssignFailed",
            TaskCommand::Hold { .. } => "AgentContactHoldFailed",
            TaskCommand::Unhold { .. } => "AgentContactUnHoldFailed",
            TaskCommand::End => "AgentContactEndFailed",
            TaskCommand::Wrapup { .. } => "AgentWrapupFailed",
            TaskCommand::Transfer { .. } if to_agent => "AgentBlindTransferFailed",
            TaskCommand::Transfer { .. } => "AgentVteamTransferFailed",
            TaskCommand::Unsupported { failed, .. } => failed,
        }
    }
}

/// What `POST /v1/tasks` (an outdial) asks for, after its schema.
#[derive(Debug, Clone)]
pub struct Outdial {
    /// The customer's number.
    pub destination: String,
    /// An outbound entry point.
    pub entry_point_id: String,
    /// The number to show (one of the agent profile's outdial ANIs).
    pub origin: Option<String>,
    /// Attributes (CAD).
    pub attributes: Map<String, Value>,
}

/// Why an admin task control was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaskControlError {
    /// No such task.
    #[error("no task {0}")]
    NotFound(String),
    /// Not in a state the control applies to.
    #[error("{0}")]
    Refused(TaskFailure),
    /// The injection names something the organisation does not have.
    #[error("{0}")]
    BadInjection(String),
}

/// A task as the admin API shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskView {
    /// The task id (the interactionId).
    pub task_id: String,
    /// `queued`, `offered`, `connected`, `held`, `wrapup`, `completed`, `abandoned`.
    pub state: &'static str,
    /// As `GET /v1/tasks` reports it.
    pub status: Status,
    /// The agent it rings at or is connected to.
    pub agent_id: Option<String>,
    /// When RONA fires, if it rings.
    pub rona_at: Option<i64>,
    /// Everything.
    pub task: Task,
}

impl TaskView {
    fn of(task: &Task) -> TaskView {
        let rona_at = match &task.leg {
            Leg::Offered { deadline, .. } => Some(*deadline),
            _ => None,
        };
        TaskView {
            task_id: task.id.clone(),
            state: task.state(),
            status: task.status(),
            agent_id: task.agent().map(str::to_owned),
            rona_at,
            task: task.clone(),
        }
    }
}

fn change(task: &Task, agent_id: Option<&str>) -> TaskChange {
    let (reason, terminating_party) = match &task.leg {
        Leg::Ended { reason, terminating_party, .. } => (Some(reason.clone()), Some(*terminating_party)),
        _ => (None, None),
    };
    TaskChange {
        org_id: task.org_id.clone(),
        task_id: task.id.clone(),
        channel: task.channel,
        direction: task.direction,
        origin: task.origin.clone(),
        destination: task.destination.clone(),
        queue_id: task.queue_id.clone(),
        agent_id: agent_id.map(str::to_owned),
        reason,
        terminating_party,
    }
}

impl AppState {
    fn org_of(&self, org_id: &str) -> Option<(usize, &Org)> {
        self.world().orgs.iter().enumerate().find(|(_, o)| o.id == org_id)
    }

    /// `POST /__admin/tasks`: a contact arrives, is queued (`task:new`, `task:parked`) and is
    /// offered at once if an agent can take it.
    pub fn inject_task(&self, injection: Injection) -> Result<TaskView, TaskControlError> {
        let org = &self.world().orgs[injection.org_idx];
        let queue = match (&injection.queue_id, &injection.agent_id) {
            (Some(q), _) => {
                let queue = org.queue(q).ok_or_else(|| {
                    let known: Vec<String> = org.queues.iter().map(|q| format!("{} ({})", q.id, q.name)).collect();
                    TaskControlError::BadInjection(format!(
                        "{} has no queue {q}; its queues are {}.",
                        org.name,
                        known.join(", ")
                    ))
                })?;
                if queue.channel_type != injection.channel {
                    return Err(TaskControlError::BadInjection(format!(
                        "Queue {} serves {}, not {}.",
                        queue.name,
                        queue.channel_type.as_str(),
                        injection.channel.as_str()
                    )));
                }
                Some(queue)
            }
            (None, Some(_)) => None,
            (None, None) => Some(org.queues.iter().find(|q| q.channel_type == injection.channel).ok_or_else(|| {
                TaskControlError::BadInjection(format!(
                    "{} has no {} queue: name a queueId or an agentId.",
                    org.name,
                    injection.channel.as_str()
                ))
            })?),
        };
        if let Some(agent) = &injection.agent_id
            && org.user(agent).is_none()
        {
            return Err(TaskControlError::BadInjection(format!("{} has no user {agent}.", org.name)));
        }
        let entry_point =
            queue.and_then(|q| org.entry_points.iter().find(|e| e.queue_id.as_deref() == Some(q.id.as_str())));
        let (default_origin, default_destination) = match injection.channel {
            Channel::Telephony => ("+14085550123", "+18005550100"),
            Channel::Chat => ("visitor@customer.example", "chat.wxcc.example"),
            Channel::Email => ("customer@customer.example", "support@wxcc.example"),
            Channel::Social => ("@customer", "@wxcc_example"),
        };
        let new = NewTask {
            id: crate::ids::uuid(),
            org_id: org.id.clone(),
            channel: injection.channel,
            direction: if injection.courtesy_callback { Direction::CourtesyCallback } else { Direction::Inbound },
            queue_id: queue.map(|q| q.id.clone()),
            entry_point_id: entry_point.map(|e| e.id.clone()),
            origin: injection.origin.unwrap_or_else(|| default_origin.to_owned()),
            destination: injection
                .destination
                .or_else(|| entry_point.map(|e| e.address.clone()))
                .unwrap_or_else(|| default_destination.to_owned()),
            customer_name: injection.customer_name,
            cad: injection.cad,
            rona_timeout_seconds: injection.rona_timeout_seconds,
            target_agent: injection.agent_id,
            outdial_agent: None,
        };
        let tracking = crate::ids::prefixed("WXCCMOCK");
        let mut core = self.core();
        let now = self.now_ms();
        let (task, steps) = Task::arrive(new, now);
        let id = task.id.clone();
        core.tasks.insert(task);
        let mut outs = Vec::new();
        self.render_all(&mut core, org, &steps, &tracking, now, &mut outs);
        self.route(&mut core, org, &tracking, now, &mut outs);
        let view = core.tasks.get(&id).map(TaskView::of);
        self.publish(&core, now, outs);
        view.ok_or(TaskControlError::NotFound(id))
    }

    /// Every task of the world (or of one organisation), oldest first.
    pub fn task_views(&self, org_id: Option<&str>) -> Vec<TaskView> {
        let core = self.core();
        core.tasks.all().filter(|t| org_id.is_none_or(|o| t.org_id == o)).map(TaskView::of).collect()
    }

    /// One task.
    pub fn task_view(&self, task_id: &str) -> Option<TaskView> {
        self.core().tasks.get(task_id).map(TaskView::of)
    }

    /// Marks an agent's phone reachable or not (`POST /__admin/agents/{id}/device`); `None` if
    /// no user has that id.
    pub fn set_device(&self, agent_id: &str, reachable: bool) -> Option<bool> {
        self.world().orgs.iter().find_map(|o| o.user(agent_id))?;
        self.core().tasks.devices.insert(agent_id.to_owned(), reachable);
        Some(reachable)
    }

    fn reachable(&self, core: &Core, org: &Org, agent_id: &str) -> bool {
        core.tasks
            .devices
            .get(agent_id)
            .copied()
            .unwrap_or_else(|| org.user(agent_id).is_none_or(|u| u.device_reachable))
    }

    /// The mock's own controls of a task: the phone answers or declines, the customer hangs up,
    /// RONA fires now.
    pub fn device_action(&self, task_id: &str, action: DeviceAction) -> Result<TaskView, TaskControlError> {
        let mut core = self.core();
        let now = self.now_ms();
        let (org_id, ringing_at, state, agent) = {
            let task = core.tasks.get(task_id).ok_or_else(|| TaskControlError::NotFound(task_id.to_owned()))?;
            let ringing_at = match &task.leg {
                Leg::Offered { agent_id, .. } => Some(agent_id.clone()),
                _ => None,
            };
            (task.org_id.clone(), ringing_at, task.state(), task.agent().map(str::to_owned))
        };
        let (_, org) = self.org_of(&org_id).ok_or_else(|| TaskControlError::NotFound(task_id.to_owned()))?;
        let not_ringing = || {
            TaskControlError::Refused(TaskFailure {
                reason: TaskFailureReason::InvalidTaskState,
                detail: format!("Task {task_id} is {state}, not ringing at an agent."),
            })
        };
        let wrap_up = agent.as_deref().and_then(|a| org.user(a)).is_none_or(|u| org.wrap_up_required(u));
        let steps = {
            let Some(task) = core.tasks.tasks.get_mut(task_id) else {
                return Err(TaskControlError::NotFound(task_id.to_owned()));
            };
            match action {
                DeviceAction::Answer => task.answer(&ringing_at.ok_or_else(not_ringing)?, now),
                DeviceAction::Decline => task.decline(&ringing_at.ok_or_else(not_ringing)?, now),
                DeviceAction::ExpireRona => task.rona(&ringing_at.ok_or_else(not_ringing)?, now),
                DeviceAction::CustomerHangup => task.customer_left(wrap_up, now),
            }
            .map_err(TaskControlError::Refused)?
        };
        let tracking = crate::ids::prefixed("WXCCMOCK");
        self.settle_steps(&mut core, org, task_id, &steps, &tracking, now);
        core.tasks.get(task_id).map(TaskView::of).ok_or_else(|| TaskControlError::NotFound(task_id.to_owned()))
    }

    /// An agent's task command (`POST /v1/tasks/{id}/…`): the result, or the command's
    /// `…Failed` message, arrives on their websockets.
    pub fn task_command(&self, org_idx: usize, agent_id: &str, task_id: &str, command: TaskCommand, tracking: &str) {
        let org = &self.world().orgs[org_idx];
        let Some(me) = org.user(agent_id) else { return };
        let mut core = self.core();
        let now = self.now_ms();
        let to_agent =
            matches!(&command, TaskCommand::Transfer { destination_type, .. } if destination_type == "agent");
        let failed = command.failed_message(to_agent);
        let wrap_up = org.wrap_up_required(me);
        let strict = self.strict();
        let result = match core.tasks.tasks.get_mut(task_id).filter(|t| t.org_id == org.id) {
            None => Err(TaskFailure {
                reason: TaskFailureReason::TaskNotFound,
                detail: format!("{} has no task {task_id}.", org.name),
            }),
            Some(task) => match &command {
                TaskCommand::Accept if task.channel == Channel::Telephony && strict => Err(TaskFailure {
                    reason: TaskFailureReason::NotSupportedForChannel,
                    detail: "A call is answered on the agent's phone, not with accept (the mock runs with --strict)."
                        .to_owned(),
                }),
                TaskCommand::Reject { media_resource_id: Some(m) }
                | TaskCommand::Hold { media_resource_id: Some(m) }
                | TaskCommand::Unhold { media_resource_id: Some(m) }
                    if m != &task.id =>
                {
                    Err(TaskFailure {
                        reason: TaskFailureReason::InvalidMediaResource,
                        detail: format!(
                            "{m} is not a media resource of task {} (its main one is {}).",
                            task.id, task.id
                        ),
                    })
                }
                TaskCommand::Accept => task.answer(&me.id, now),
                TaskCommand::Reject { .. } => task.decline(&me.id, now),
                TaskCommand::Hold { .. } => task.hold(&me.id, now),
                TaskCommand::Unhold { .. } => task.unhold(&me.id, now),
                TaskCommand::End => task.end(&me.id, wrap_up, now),
                TaskCommand::Wrapup { aux_code_id, reason } => {
                    let known =
                        org.aux_codes.iter().any(|a| a.id == *aux_code_id && a.work_type == "WRAP_UP_CODE" && a.active);
                    if known {
                        task.wrap_up(&me.id, aux_code_id, reason, now)
                    } else {
                        let codes: Vec<String> = org
                            .aux_codes
                            .iter()
                            .filter(|a| a.work_type == "WRAP_UP_CODE")
                            .map(|a| format!("{} ({})", a.id, a.name))
                            .collect();
                        Err(TaskFailure {
                            reason: TaskFailureReason::InvalidWrapUpCode,
                            detail: format!(
                                "{aux_code_id} is not a wrap-up code of {}; they are {}.",
                                org.name,
                                codes.join(", ")
                            ),
                        })
                    }
                }
                TaskCommand::Transfer { to, destination_type } => match destination_type.as_str() {
                    "queue" => match org.queue(to) {
                        Some(q) if q.channel_type == task.channel => {
                            task.transfer(&me.id, Some(to), None, wrap_up, now)
                        }
                        Some(q) => Err(TaskFailure {
                            reason: TaskFailureReason::InvalidDestination,
                            detail: format!(
                                "Queue {} serves {}, and the task is a {}.",
                                q.name,
                                q.channel_type.as_str(),
                                task.channel.as_str()
                            ),
                        }),
                        None => Err(TaskFailure {
                            reason: TaskFailureReason::InvalidDestination,
                            detail: format!("{} has no queue {to}.", org.name),
                        }),
                    },
                    "agent" => match org.user(to) {
                        Some(_) if to == &me.id => Err(TaskFailure {
                            reason: TaskFailureReason::InvalidDestination,
                            detail: "A task cannot be transferred to the agent who has it.".to_owned(),
                        }),
                        Some(_) => task.transfer(&me.id, None, Some(to), wrap_up, now),
                        None => Err(TaskFailure {
                            reason: TaskFailureReason::InvalidDestination,
                            detail: format!("{} has no agent {to}.", org.name),
                        }),
                    },
                    other => Err(TaskFailure {
                        reason: TaskFailureReason::NotSupportedByWxccMock,
                        detail: format!(
                            "Transfers to a {other} are not simulated by wxcc-mock; transfer to an agent or a queue."
                        ),
                    }),
                },
                TaskCommand::Unsupported { what, .. } => Err(TaskFailure {
                    reason: TaskFailureReason::NotSupportedByWxccMock,
                    detail: format!(
                        "wxcc-mock does not simulate {what}; the route answers 202 and this failure, so a client fails fast."
                    ),
                }),
            },
        };
        match result {
            Ok(steps) => self.settle_steps(&mut core, org, task_id, &steps, tracking, now),
            Err(failure) => {
                let text = match core.tasks.get(task_id).filter(|t| t.org_id == org.id) {
                    Some(task) => {
                        let ctx = self.message_context(&core, org, task, me.id.as_str(), tracking, now);
                        let extra = Extra {
                            reason: Some((failure.reason.as_str().to_owned(), failure.reason.code())),
                            ..Extra::default()
                        };
                        ctx.map(|ctx| routing::message(failed, task, &ctx, &extra))
                    }
                    None => None,
                }
                .unwrap_or_else(|| {
                    routing::failure(
                        failed,
                        task_id,
                        &org.id,
                        me,
                        tracking,
                        now,
                        (failure.reason.as_str(), failure.reason.code()),
                    )
                });
                let outs = vec![Out::Message {
                    to: vec![(me.id.clone(), me.email.clone())],
                    text: text.to_string(),
                    label: format!("RoutingMessage/{failed}"),
                }];
                self.publish(&core, now, outs);
            }
        }
    }

    /// `POST /v1/tasks`: an outdial from an outbound entry point. Returns the new task's id
    /// (the 201); the offer (`AgentContactReserved`, `AgentOfferContact`) or
    /// `AgentOutboundFailed` follows on the websocket.
    pub fn outdial(&self, org_idx: usize, agent_id: &str, outdial: Outdial, tracking: &str) -> String {
        let org = &self.world().orgs[org_idx];
        let mut core = self.core();
        let now = self.now_ms();
        let user = org.user(agent_id);
        let profile = user.and_then(|u| org.profile_of(u));
        let ani_list = profile
            .and_then(|p| p["outdialANIId"].as_str())
            .and_then(|id| org.outdial_anis.iter().find(|a| a.id == id));
        let entry_point = org.entry_point(&outdial.entry_point_id);
        let origin = outdial
            .origin
            .clone()
            .filter(|o| !o.is_empty())
            .or_else(|| ani_list.and_then(|l| l.entries.first()).map(|e| e.number.clone()))
            .or_else(|| entry_point.map(|e| e.address.clone()))
            .unwrap_or_default();
        let new = NewTask {
            id: crate::ids::uuid(),
            org_id: org.id.clone(),
            channel: Channel::Telephony,
            direction: Direction::Outdial,
            queue_id: None,
            entry_point_id: Some(outdial.entry_point_id.clone()),
            origin: origin.clone(),
            destination: outdial.destination.clone(),
            customer_name: None,
            cad: outdial.attributes,
            rona_timeout_seconds: None,
            target_agent: Some(agent_id.to_owned()),
            outdial_agent: Some(agent_id.to_owned()),
        };
        let (mut task, mut steps) = Task::arrive(new, now);
        let id = task.id.clone();
        let session = core.sessions.get(agent_id);
        let refusal = if session.is_none() {
            Some((TaskFailureReason::AgentNotLoggedIn, "The agent is not logged in.".to_owned()))
        } else if !entry_point.is_some_and(|e| e.entry_point_type == "OUTBOUND" && e.channel_type == Channel::Telephony)
        {
            Some((
                TaskFailureReason::InvalidEntryPoint,
                format!("{} is not an outbound telephony entry point of {}.", outdial.entry_point_id, org.name),
            ))
        } else if ani_list.is_some_and(|l| !l.entries.iter().any(|e| e.number == origin)) {
            Some((
                TaskFailureReason::InvalidOutdialAni,
                format!("{origin} is not in the agent profile's outdial ANI list."),
            ))
        } else if !outdial.destination.trim_start_matches('+').chars().all(|c| c.is_ascii_digit())
            || outdial.destination.trim_start_matches('+').is_empty()
        {
            Some((TaskFailureReason::InvalidDestination, format!("{} is not a phone number.", outdial.destination)))
        } else if session.is_some_and(|s| s.capacity.telephony <= core.tasks.occupying(agent_id, Channel::Telephony)) {
            Some((TaskFailureReason::NoCapacity, "The agent is already on a call.".to_owned()))
        } else {
            None
        };
        let mut outs = Vec::new();
        if let Some((reason, detail)) = refusal {
            task.leg =
                Leg::Ended { at: now, reason: "Outdial Failed".to_owned(), terminating_party: tasks::Party::System };
            steps.push(Step {
                kind: StepKind::OutboundFailed {
                    agent_id: agent_id.to_owned(),
                    reason: format!("{}: {detail}", reason.as_str()),
                },
                task: task.clone(),
            });
            core.tasks.insert(task);
            self.render_all(&mut core, org, &steps, tracking, now, &mut outs);
            self.publish(&core, now, outs);
            return id;
        }
        core.tasks.insert(task);
        self.render_all(&mut core, org, &steps, tracking, now, &mut outs);
        self.offer(&mut core, org, &id, agent_id, tracking, now, &mut outs);
        self.publish(&core, now, outs);
        id
    }

    /// What happened after steps: rendered, timers settled, queued tasks routed, published.
    fn settle_steps(&self, core: &mut Core, org: &Org, task_id: &str, steps: &[Step], tracking: &str, now: i64) {
        if core.tasks.get(task_id).is_none_or(|t| t.current_offer().is_none()) {
            core.tasks.cancel_timer(task_id);
        }
        let mut outs = Vec::new();
        self.render_all(core, org, steps, tracking, now, &mut outs);
        self.route(core, org, tracking, now, &mut outs);
        core.tasks.trim();
        self.publish(core, now, outs);
    }

    /// Offers every queued task of `org` that an agent can take now, oldest first, until no more
    /// can be (a failed invite makes its agent Idle, so this ends).
    pub(crate) fn route(&self, core: &mut Core, org: &Org, tracking: &str, now: i64, outs: &mut Vec<Out>) {
        loop {
            let queued: Vec<String> = core
                .tasks
                .all()
                .filter(|t| t.org_id == org.id && matches!(t.leg, Leg::Queued { .. }))
                .map(|t| t.id.clone())
                .collect();
            let mut offered = false;
            for id in queued {
                let Some(task) = core.tasks.get(&id) else { continue };
                let teams =
                    task.queue_id.as_deref().and_then(|q| org.queue(q)).map(|q| q.team_ids.clone()).unwrap_or_default();
                let candidates: Vec<Candidate<'_>> = core
                    .sessions
                    .values()
                    .filter(|s| s.org_id == org.id)
                    .map(|s| Candidate {
                        agent_id: &s.agent_id,
                        team_id: s.team_id.as_deref(),
                        available: s.sub_status == SubStatus::Available,
                        since: s
                            .last_state_change_timestamp
                            .max(core.tasks.busy_until.get(&s.agent_id).copied().unwrap_or(0)),
                        free_slots: s
                            .capacity
                            .of(task.channel)
                            .saturating_sub(core.tasks.occupying(&s.agent_id, task.channel)),
                        wrapping_up: core.tasks.wrapping_up(&s.agent_id),
                    })
                    .collect();
                let Some(agent) = tasks::pick(task, &teams, &candidates).map(str::to_owned) else { continue };
                self.offer(core, org, &id, &agent, tracking, now, outs);
                offered = true;
            }
            if !offered {
                break;
            }
        }
    }

    /// Offers a task to an agent: it rings until its RONA timeout on the clock, or, for a call
    /// to a phone that is not reachable, the invite fails at once.
    #[allow(clippy::too_many_arguments)]
    fn offer(
        &self,
        core: &mut Core,
        org: &Org,
        task_id: &str,
        agent_id: &str,
        tracking: &str,
        now: i64,
        outs: &mut Vec<Out>,
    ) {
        let Some(task) = core.tasks.tasks.get_mut(task_id) else { return };
        let queue_rona = task.queue_id.as_deref().and_then(|q| org.queue(q)).and_then(|q| q.rona_timeout_seconds);
        let deadline = now.saturating_add(i64::from(task.rona_seconds(queue_rona)) * 1000);
        let steps = task.offer(agent_id, now, deadline);
        let offer = task.offers;
        let unreachable = task.channel == Channel::Telephony && !self.reachable(core, org, agent_id);
        self.render_all(core, org, &steps, tracking, now, outs);
        if unreachable {
            let failed = core.tasks.tasks.get_mut(task_id).map(|t| {
                if t.direction == Direction::Outdial { t.rona(agent_id, now) } else { t.invite_failed(agent_id, now) }
            });
            if let Some(Ok(steps)) = failed {
                self.render_all(core, org, &steps, tracking, now, outs);
            }
            return;
        }
        self.schedule_rona(core, task_id, offer, deadline);
    }

    pub(super) fn schedule_rona(&self, core: &mut Core, task_id: &str, offer: u64, deadline: i64) {
        // Registered with the clock now; the timer holds the state weakly.
        let sleep = self.clock().sleep_until(deadline);
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        let id = task_id.to_owned();
        let timer = tokio::spawn(async move {
            let _busy = sleep.await;
            if let Some(inner) = weak.upgrade() {
                AppState { inner }.rona_fired(&id, offer);
            }
        });
        if let Some(old) = core.tasks.rona_timers.insert(task_id.to_owned(), timer.abort_handle()) {
            old.abort();
        }
    }

    fn rona_fired(&self, task_id: &str, offer: u64) {
        let mut core = self.core();
        core.tasks.rona_timers.remove(task_id);
        let now = self.now_ms();
        let Some(task) = core.tasks.tasks.get_mut(task_id) else { return };
        let (Some(current), Some(agent)) = (task.current_offer(), task.agent().map(str::to_owned)) else { return };
        if current != offer {
            return;
        }
        let Ok(steps) = task.rona(&agent, now) else { return };
        let org_id = task.org_id.clone();
        let Some((_, org)) = self.org_of(&org_id) else { return };
        let tracking = crate::ids::prefixed("AQM");
        self.settle_steps(&mut core, org, task_id, &steps, &tracking, now);
    }

    fn message_context<'a>(
        &self,
        core: &'a Core,
        org: &'a Org,
        task: &Task,
        agent_id: &str,
        tracking: &'a str,
        now: i64,
    ) -> Option<MessageContext<'a>> {
        let agent = org.user(agent_id)?;
        let queue_rona = task.queue_id.as_deref().and_then(|q| org.queue(q)).and_then(|q| q.rona_timeout_seconds);
        Some(MessageContext {
            org,
            agent,
            session: core.sessions.get(agent_id),
            tracking_id: tracking,
            now,
            rona_seconds: task.rona_seconds(queue_rona),
        })
    }

    fn render_all(&self, core: &mut Core, org: &Org, steps: &[Step], tracking: &str, now: i64, outs: &mut Vec<Out>) {
        for step in steps {
            self.render(core, org, step, tracking, now, outs);
        }
    }

    /// One step as messages and events, with its effect on the agent.
    fn render(&self, core: &mut Core, org: &Org, step: &Step, tracking: &str, now: i64, outs: &mut Vec<Out>) {
        let task = &step.task;
        let message = |core: &Core, kind: &str, agent_id: &str, extra: Extra| -> Option<Out> {
            let ctx = self.message_context(core, org, task, agent_id, tracking, now)?;
            let text = routing::message(kind, task, &ctx, &extra).to_string();
            Some(Out::Message {
                to: vec![(ctx.agent.id.clone(), ctx.agent.email.clone())],
                text,
                label: format!("RoutingMessage/{kind}"),
            })
        };
        let channel = |core: &Core, agent_id: &str, state: ChannelState, code: Option<String>| -> Option<Out> {
            let user = org.user(agent_id)?;
            Some(Out::event(Event::AgentChannel(ChannelChange {
                org_id: org.id.clone(),
                agent_id: agent_id.to_owned(),
                email: user.email.clone(),
                team_id: core.sessions.get(agent_id).and_then(|s| s.team_id.clone()),
                task_id: task.id.clone(),
                channel: task.channel,
                state,
                queue_id: task.queue_id.clone(),
                origin: task.origin.clone(),
                destination: task.destination.clone(),
                wrap_up_aux_code_id: code,
            })))
        };
        let reason = |text: &str, code: i64| Extra { reason: Some((text.to_owned(), code)), ..Extra::default() };
        match &step.kind {
            StepKind::New => outs.extend(Some(Out::event(Event::TaskNew(change(task, None))))),
            StepKind::Parked => outs.extend(Some(Out::event(Event::TaskParked(change(task, None))))),
            StepKind::Offered { agent_id } => {
                let offer = Extra { with_rona: true, ..Extra::default() };
                outs.extend(message(core, "AgentContactReserved", agent_id, offer.clone()));
                outs.extend(message(core, "AgentOfferContact", agent_id, offer));
                outs.extend(Some(Out::event(Event::TaskConnect(change(task, Some(agent_id))))));
                outs.extend(channel(core, agent_id, ChannelState::Ringing, None));
            }
            StepKind::InviteFailed { agent_id } => {
                outs.extend(message(core, "AgentInviteFailed", agent_id, reason("AGENT_DEVICE_UNREACHABLE", 3001)));
                outs.extend(channel(core, agent_id, ChannelState::NotResponding, None));
                core.tasks.busy_until.insert(agent_id.clone(), now);
                self.system_idle(core, org, agent_id, "Agent_Unavailable", tracking, now, outs);
            }
            StepKind::Connected { agent_id } => {
                outs.extend(message(core, "AgentContactAssigned", agent_id, Extra::default()));
                outs.extend(Some(Out::event(Event::TaskConnected(change(task, Some(agent_id))))));
                outs.extend(channel(core, agent_id, ChannelState::Connected, None));
            }
            StepKind::Held { agent_id } => {
                outs.extend(message(core, "AgentContactHeld", agent_id, Extra::default()));
                outs.extend(Some(Out::event(Event::TaskOnHold(change(task, Some(agent_id))))));
                outs.extend(channel(core, agent_id, ChannelState::OnHold, None));
            }
            StepKind::Unheld { agent_id } => {
                outs.extend(message(core, "AgentContactUnheld", agent_id, Extra::default()));
                outs.extend(Some(Out::event(Event::TaskHoldDone(change(task, Some(agent_id))))));
                outs.extend(channel(core, agent_id, ChannelState::HoldDone, None));
            }
            StepKind::Ended { agent_id } => {
                if let Some(agent_id) = agent_id {
                    outs.extend(message(core, "ContactEnded", agent_id, Extra::default()));
                    if !task.pending_wrapup.contains(agent_id) {
                        core.tasks.busy_until.insert(agent_id.clone(), now);
                    }
                }
                outs.extend(Some(Out::event(Event::TaskEnded(change(task, agent_id.as_deref())))));
            }
            StepKind::WrapUp { agent_id } => {
                outs.extend(message(core, "AgentWrapup", agent_id, Extra::default()));
                outs.extend(channel(core, agent_id, ChannelState::Wrapup, None));
            }
            StepKind::WrappedUp { agent_id, aux_code_id } => {
                let extra = Extra { wrap_up_aux_code_id: Some(aux_code_id.clone()), ..Extra::default() };
                outs.extend(message(core, "AgentWrappedUp", agent_id, extra));
                outs.extend(channel(core, agent_id, ChannelState::WrapupDone, Some(aux_code_id.clone())));
                core.tasks.busy_until.insert(agent_id.clone(), now);
            }
            StepKind::Rona { agent_id } => {
                outs.extend(message(core, "AgentOfferContactRona", agent_id, reason("RONA_TIMER_EXPIRED", 3002)));
                outs.extend(channel(core, agent_id, ChannelState::NotResponding, None));
                core.tasks.busy_until.insert(agent_id.clone(), now);
                self.system_idle(core, org, agent_id, "RONA", tracking, now, outs);
            }
            StepKind::Declined { agent_id } => {
                outs.extend(message(core, "AgentContactAssignFailed", agent_id, reason("USER_DECLINED", 3003)));
                outs.extend(channel(core, agent_id, ChannelState::NotResponding, None));
                core.tasks.busy_until.insert(agent_id.clone(), now);
                self.system_idle(core, org, agent_id, "Agent_Declined", tracking, now, outs);
            }
            StepKind::Transferred { agent_id, to_queue } => {
                let kind = if *to_queue { "AgentVteamTransferred" } else { "AgentBlindTransferred" };
                outs.extend(message(core, kind, agent_id, Extra::default()));
            }
            StepKind::AttemptEnded => {
                let mut ended = change(task, None);
                ended.reason = Some("RONA Timer Expired".to_owned());
                ended.terminating_party = Some(crate::engine::tasks::Party::System);
                outs.extend(Some(Out::event(Event::TaskEnded(ended))));
            }
            StepKind::OutboundFailed { agent_id, reason: why } => {
                outs.extend(message(core, "AgentOutboundFailed", agent_id, reason(why, 3004)));
                let mut failed = change(task, Some(agent_id));
                failed.reason = Some(why.clone());
                outs.extend(Some(Out::event(Event::TaskFailed(failed))));
            }
        }
    }

    /// The system puts an agent in Idle with a system code (`RONA`, `Agent_Declined`,
    /// `Agent_Unavailable`), announced as a state change.
    #[allow(clippy::too_many_arguments)]
    fn system_idle(
        &self,
        core: &mut Core,
        org: &Org,
        agent_id: &str,
        code: &str,
        tracking: &str,
        now: i64,
        outs: &mut Vec<Out>,
    ) {
        let (Some(user), Some(aux)) = (org.user(agent_id), org.system_code(code)) else { return };
        let Some(session) = core.sessions.get_mut(agent_id) else { return };
        let before = session.clone();
        session.sub_status = SubStatus::Idle;
        session.aux_code_id = aux.id.clone();
        session.last_state_change_timestamp = now;
        session.last_idle_code_change_timestamp = now;
        session.last_state_change_reason = code.to_owned();
        let after = session.clone();
        let outcome = Outcome {
            operation: Operation::AgentStateChange,
            failure: None,
            detail: format!("The system put {} in Idle ({code}).", user.email),
        };
        let ctx = OutcomeContext {
            org_id: &org.id,
            tracking_id: tracking,
            agent: user,
            by: user,
            before: Some(&before),
            after: Some(&after),
        };
        let text = notifications::outcome_message(&outcome, &ctx).to_string();
        core.outcomes.push(OutcomeRecord {
            at: now,
            tracking_id: tracking.to_owned(),
            org_id: org.id.clone(),
            agent_id: user.id.clone(),
            email: user.email.clone(),
            message_type: "AgentStateChange",
            data_type: "AgentStateChangeSuccess",
            reason: None,
            detail: outcome.detail.clone(),
        });
        outs.push(Out::event(Event::AgentStateChange(AgentChange {
            org_id: org.id.clone(),
            agent_id: user.id.clone(),
            email: user.email.clone(),
            session: after,
            by: "system".to_owned(),
            reason: Some(code.to_owned()),
        })));
        outs.push(Out::Message {
            to: vec![(user.id.clone(), user.email.clone())],
            text,
            label: "AgentStateChange/AgentStateChangeSuccess".to_owned(),
        });
    }

    /// `AgentContact` for each task an agent has (after a reload): a desktop gets its tasks back.
    pub(crate) fn agent_contacts(&self, core: &Core, org: &Org, agent_id: &str, tracking: &str, now: i64) -> Vec<Out> {
        core.tasks
            .active_for(agent_id)
            .into_iter()
            .filter_map(|task| {
                let ctx = self.message_context(core, org, task, agent_id, tracking, now)?;
                let extra = Extra { with_rona: task.current_offer().is_some(), ..Extra::default() };
                let text = routing::message("AgentContact", task, &ctx, &extra).to_string();
                Some(Out::Message {
                    to: vec![(ctx.agent.id.clone(), ctx.agent.email.clone())],
                    text,
                    label: "RoutingMessage/AgentContact".to_owned(),
                })
            })
            .collect()
    }

    /// `GET /v1/tasks`: tasks of `org_id` created in `[from, to]`, oldest first, at most
    /// `page_size`, of the given channels (all when empty).
    pub fn search_tasks(
        &self,
        org_idx: usize,
        from: i64,
        to: i64,
        channels: &[Channel],
        page_size: usize,
    ) -> Vec<Value> {
        let org = &self.world().orgs[org_idx];
        let core = self.core();
        core.tasks
            .all()
            .filter(|t| t.org_id == org.id && t.created_at >= from && t.created_at <= to)
            .filter(|t| channels.is_empty() || channels.contains(&t.channel))
            .take(page_size)
            .map(|t| {
                let owner = t.owner.as_deref().or(t.agent());
                let owner_name = owner.and_then(|o| org.user(o)).map(|u| format!("{} {}", u.first_name, u.last_name));
                let queue_name = t.queue_id.as_deref().and_then(|q| org.queue(q)).map(|q| q.name.clone());
                let reason_code = t
                    .wrapups
                    .last()
                    .and_then(|w| org.aux_codes.iter().find(|a| a.id == w.aux_code_id))
                    .map(|a| a.name.clone());
                json!({
                    "id": t.id,
                    "attributes": {
                        "owner": { "id": owner, "name": owner_name },
                        "queue": { "id": t.queue_id, "name": queue_name },
                        "channelType": t.channel,
                        "status": t.status(),
                        "createdTime": t.created_at,
                        "lastUpdatedTime": t.updated_at,
                        "captureRequested": false,
                        "origin": t.origin,
                        "destination": t.destination,
                        "direction": if t.direction == Direction::CourtesyCallback { json!("outbound") } else { json!(t.direction) },
                        "reasonCode": reason_code,
                    },
                })
            })
            .collect()
    }

    /// Whether an agent has a task ringing, connected or waiting for their wrap-up.
    pub fn has_active_tasks(&self, agent_id: &str) -> bool {
        self.core().tasks.has_active(agent_id)
    }

    /// How many tasks are held (all, finished or not).
    pub fn task_count(&self) -> usize {
        self.core().tasks.tasks.len()
    }

    /// The agents who never answered: for `/__admin/state`.
    pub(crate) fn tasks_snapshot(core: &Core) -> Vec<Value> {
        core.tasks.all().filter_map(|t| serde_json::to_value(TaskView::of(t)).ok()).collect()
    }

    /// The task store's bound, for `/__admin/state`: kept, the limit on finished ones, and how
    /// many finished tasks were forgotten to stay within it.
    pub(crate) fn task_history_snapshot(&self, core: &Core) -> Value {
        json!({ "kept": core.tasks.tasks.len(), "finishedLimit": core.tasks.history, "forgotten": core.tasks.forgotten })
    }

    /// Agents' overridden device reachability, for `/__admin/state`.
    pub(crate) fn devices_snapshot(core: &Core) -> HashMap<String, bool> {
        core.tasks.devices.clone()
    }
}
