//! What `GET /__admin/state` shows: the world and the live state (never a secret).

use serde_json::{Value, json};

use crate::engine::agents::Session;

use super::{AppState, OutcomeRecord};

impl AppState {
    /// The world and the live state.
    pub fn snapshot(&self) -> Value {
        let world = self.world();
        let core = self.core();
        let mut sessions: Vec<&Session> = core.sessions.values().collect();
        sessions.sort_by(|a, b| a.email.cmp(&b.email));
        let outcomes: Vec<&OutcomeRecord> = core.outcomes.newest_first().collect();
        let subscriptions: Vec<Value> = core
            .subscriptions
            .all()
            .into_iter()
            .map(|s| {
                let mut view = serde_json::to_value(s.admin_view()).unwrap_or_default();
                view["dropped"] = json!(self.dispatcher().dropped(&s.id));
                view
            })
            .collect();
        let snapshot = json!({
            "orgs": world.orgs,
            "tokens": world.tokens,
            "agentSessions": sessions,
            "agentOutcomes": outcomes,
            "subscriptions": subscriptions,
            "notificationConnections": self
                .notifications()
                .connection_counts()
                .into_iter()
                .map(|(agent_id, connections)| json!({ "agentId": agent_id, "connections": connections }))
                .collect::<Vec<_>>(),
            "tasks": AppState::tasks_snapshot(&core),
            "deviceOverrides": AppState::devices_snapshot(&core),
            "taskHistory": self.task_history_snapshot(&core),
            "clock": { "mode": self.clock().mode(), "now": self.now_ms() },
            "logCapacity": self.options().log_capacity,
        });
        drop(core);
        snapshot
    }
}
