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
            "bounds": self.bounds(),
        });
        drop(core);
        snapshot
    }

    /// What each bounded store holds, its bound, and what it let go.
    pub fn bounds(&self) -> Value {
        let options = self.options();
        let (minted, swept) = self.inner.tokens.minted_counts();
        let (violations, violation_bytes, violations_evicted) = super::lock(&self.inner.violations).usage();
        let hub = self.notifications().counts();
        let config = self.notification_config();
        json!({
            "mintedTokens": { "held": minted, "max": options.max_minted_tokens, "swept": swept },
            "subscriptionsPerOrg": { "max": options.max_subscriptions_per_org },
            "webhookWorkers": self.dispatcher().workers(),
            "pendingDeliveries": self.dispatcher().pending_count(),
            "stateFileWriteFailures": self.persist_failures(),
            "rateLimit": self.rate_limiter().limit().map(|limit| {
                let (refused, clients) = self.rate_limiter().counts();
                json!({ "perMinute": limit.per_minute, "clients": clients, "refused": refused })
            }),
            "rateLimitRules": self.rate_limiter().rules(),
            "notifications": {
                "pendingRegistrations": hub.pending_registrations,
                "expiredRegistrations": hub.expired_registrations,
                "replacedRegistrations": hub.replaced_registrations,
                "maxPendingPerUser": config.max_pending_per_user,
                "connections": hub.connections,
                "maxConnectionsPerUser": config.max_connections_per_user,
            },
            "violations": {
                "held": violations,
                "bytes": violation_bytes,
                "maxBytes": super::VIOLATIONS_BYTES,
                "evicted": violations_evicted,
            },
        })
    }
}
