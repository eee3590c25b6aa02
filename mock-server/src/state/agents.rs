//! Agent commands on the core: decide (the pure state machine), record the outcome, publish the
//! event and the websocket message, all under the core lock.

use crate::engine::agents::{self, Command, Failure, FailureReason, Operation, Outcome, Session, SubStatus};
use crate::outputs::notifications::{self, OutcomeContext};
use crate::world::User;

use super::{AppState, Out, OutcomeRecord};

impl AppState {
    /// Decides an agent command for `target` (a user of org `org_idx`) asked by `by`; records the
    /// outcome and publishes the event (if any) and the websocket message to both of them.
    pub fn agent_command(
        &self,
        org_idx: usize,
        target: &User,
        by: &User,
        command: Command,
        tracking_id: &str,
    ) -> Outcome {
        let org = &self.world().orgs[org_idx];
        let session_id = if matches!(command, Command::Login(_)) { crate::ids::uuid() } else { String::new() };
        let mut core = self.core();
        let now = self.now_ms();
        let dial_used_by = match &command {
            Command::Login(login) if login.device_type.as_deref() != Some("BROWSER") => core
                .sessions
                .values()
                .find(|s| s.org_id == org.id && s.agent_id != target.id && s.dial_number == login.dial_number)
                .map(|s| s.email.clone()),
            _ => None,
        };
        let ctx = agents::Context {
            org,
            user: target,
            dial_number_used_by: dial_used_by.as_deref(),
            now,
            new_session_id: &session_id,
            by: &by.id,
            has_active_tasks: core.tasks.has_active(&target.id),
        };
        let before = core.sessions.get(&target.id).cloned();
        let transition = agents::decide(ctx, before.as_ref(), command);
        match &transition.session {
            Some(s) => {
                core.sessions.insert(target.id.clone(), s.clone());
            }
            None => {
                core.sessions.remove(&target.id);
            }
        }
        let outcome = transition.outcome;
        let (message_type, data_type) = outcome.operation.message_types(outcome.is_success());
        core.outcomes.push(OutcomeRecord {
            at: now,
            tracking_id: tracking_id.to_owned(),
            org_id: org.id.clone(),
            agent_id: target.id.clone(),
            email: target.email.clone(),
            message_type,
            data_type,
            reason: outcome.failure,
            detail: outcome.detail.clone(),
        });
        let message_ctx = OutcomeContext {
            org_id: &org.id,
            tracking_id,
            agent: target,
            by,
            before: before.as_ref(),
            after: transition.session.as_ref(),
        };
        let text = notifications::outcome_message(&outcome, &message_ctx).to_string();
        let mut to = vec![(target.id.clone(), target.email.clone())];
        if by.id != target.id {
            to.push((by.id.clone(), by.email.clone()));
        }
        let mut outs: Vec<Out> = transition.events.into_iter().map(Out::event).collect();
        outs.push(Out::Message { to, text, label: format!("{message_type}/{data_type}") });
        if outcome.is_success() {
            if outcome.operation == Operation::Reload {
                // A desktop that reloads mid-call gets its tasks back.
                outs.extend(self.agent_contacts(&core, org, &target.id, tracking_id, now));
            }
            // An agent who became Available may take a queued task now.
            self.route(&mut core, org, tracking_id, now, &mut outs);
        }
        self.publish(&core, now, outs);
        outcome
    }

    /// A logout or state change named an `agentId` that is not in the caller's organisation:
    /// recorded, and the failure (`AGENT_NOT_FOUND`) is pushed to the caller's websockets.
    pub fn agent_not_found(
        &self,
        org_idx: usize,
        caller: &User,
        agent_id: &str,
        operation: Operation,
        tracking_id: &str,
    ) {
        let org = &self.world().orgs[org_idx];
        let detail = format!("No agent {agent_id} in {}.", org.name);
        let outcome = Outcome::failed(operation, Failure { reason: FailureReason::AgentNotFound, detail });
        let (message_type, data_type) = operation.message_types(false);
        let mut core = self.core();
        let now = self.now_ms();
        core.outcomes.push(OutcomeRecord {
            at: now,
            tracking_id: tracking_id.to_owned(),
            org_id: org.id.clone(),
            agent_id: agent_id.to_owned(),
            email: String::new(),
            message_type,
            data_type,
            reason: outcome.failure,
            detail: outcome.detail.clone(),
        });
        let ctx = OutcomeContext { org_id: &org.id, tracking_id, agent: caller, by: caller, before: None, after: None };
        let text = notifications::outcome_message(&outcome, &ctx).to_string();
        let to = vec![(caller.id.clone(), caller.email.clone())];
        self.publish(&core, now, vec![Out::Message { to, text, label: format!("{message_type}/{data_type}") }]);
    }

    /// Answers `POST /v1/agents/buddyList`: pushes the org's other logged-in agents (optionally
    /// only those in `state`) to the caller's websockets.
    pub fn buddy_list(&self, org_idx: usize, caller: &User, state: Option<SubStatus>, tracking_id: &str) {
        let org = &self.world().orgs[org_idx];
        let core = self.core();
        let now = self.now_ms();
        let me = core.sessions.get(&caller.id).cloned();
        let mut buddies: Vec<(Session, String)> = core
            .sessions
            .values()
            .filter(|s| s.org_id == org.id && s.agent_id != caller.id)
            .filter(|s| state.is_none_or(|wanted| s.sub_status == wanted))
            .map(|s| {
                let name = org
                    .users
                    .iter()
                    .find(|u| u.id == s.agent_id)
                    .map_or_else(|| s.email.clone(), |u| format!("{} {}", u.first_name, u.last_name));
                (s.clone(), name)
            })
            .collect();
        buddies.sort_by(|a, b| a.1.cmp(&b.1));
        let ctx = OutcomeContext {
            org_id: &org.id,
            tracking_id,
            agent: caller,
            by: caller,
            before: None,
            after: me.as_ref(),
        };
        let message = notifications::buddy_message(&ctx, &buddies);
        let label = format!("BuddyAgents/{}", message["data"]["type"].as_str().unwrap_or_default());
        let to = vec![(caller.id.clone(), caller.email.clone())];
        self.publish(&core, now, vec![Out::Message { to, text: message.to_string(), label }]);
    }
}
