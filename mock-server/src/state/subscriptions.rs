//! Webhook subscriptions on the core: every write is stamped with the clock under the lock and
//! published as a subscription event (journal and console only).

use crate::engine::events::{Event, SubscriptionChange};
use crate::engine::subscriptions::{
    ApiVersion, NewSubscription, OrgLimit, Status, Subscription, SubscriptionPatch, Write,
};

use super::{AppState, Out};

fn change(sub: &Subscription, by: &str) -> SubscriptionChange {
    SubscriptionChange {
        org_id: sub.org_id.clone(),
        subscription_id: sub.id.clone(),
        name: sub.name.clone(),
        by: by.to_owned(),
        status: sub.status.as_str().to_owned(),
        failed_events: None,
    }
}

impl AppState {
    /// Creates a subscription of `org_id` in `version`'s namespace, unless the org holds
    /// `--max-subscriptions` already.
    pub fn create_subscription(
        &self,
        org_id: &str,
        version: ApiVersion,
        by: &str,
        new: NewSubscription,
    ) -> Result<Subscription, OrgLimit> {
        let mut core = self.core();
        let now = self.now_ms();
        let limit = self.options().max_subscriptions_per_org;
        let sub = core.subscriptions.create(Write { org_id, version, by, now }, new, limit)?;
        self.publish(&core, now, vec![Out::event(Event::SubscriptionCreated(change(&sub, by)))]);
        Ok(sub)
    }

    /// The org's subscriptions in one namespace (oldest first) and the org's total across both.
    pub fn subscriptions_of(&self, org_id: &str, version: ApiVersion) -> (Vec<Subscription>, usize) {
        self.core().subscriptions.list(org_id, version)
    }

    /// One subscription of `org_id` in `version`'s namespace.
    pub fn subscription(&self, org_id: &str, version: ApiVersion, id: &str) -> Option<Subscription> {
        self.core().subscriptions.get(org_id, version, id).cloned()
    }

    /// Applies `patch` after `check` passes on the current subscription, under one lock (so what
    /// was checked is what is kept); `Ok(None)` if there is no such subscription.
    pub fn update_subscription<E>(
        &self,
        org_id: &str,
        version: ApiVersion,
        by: &str,
        id: &str,
        patch: SubscriptionPatch,
        check: impl FnOnce(&Subscription) -> Result<(), E>,
    ) -> Result<Option<Subscription>, E> {
        let mut core = self.core();
        let now = self.now_ms();
        let Some(current) = core.subscriptions.get(org_id, version, id) else { return Ok(None) };
        check(current)?;
        let Some(sub) = core.subscriptions.update(Write { org_id, version, by, now }, id, patch) else {
            return Ok(None);
        };
        self.publish(&core, now, vec![Out::event(Event::SubscriptionUpdated(change(&sub, by)))]);
        Ok(Some(sub))
    }

    /// Deletes a subscription (and frees its delivery queue); whether it existed.
    pub fn delete_subscription(&self, org_id: &str, version: ApiVersion, by: &str, id: &str) -> bool {
        let mut core = self.core();
        let now = self.now_ms();
        let Some(sub) = core.subscriptions.delete(org_id, version, id) else { return false };
        self.dispatcher().forget(id);
        self.publish(&core, now, vec![Out::event(Event::SubscriptionDeleted(change(&sub, by)))]);
        true
    }

    /// Turns a subscription inactive after `failed_events` consecutive events failed every
    /// attempt (the dispatcher's call).
    pub fn disable_subscription(&self, id: &str, failed_events: u32) {
        let mut core = self.core();
        let now = self.now_ms();
        let Some(sub) = core.subscriptions.set_status(id, Status::Inactive, now).cloned() else { return };
        let mut disabled = change(&sub, "wxcc-mock");
        disabled.failed_events = Some(failed_events);
        self.publish(&core, now, vec![Out::event(Event::SubscriptionDisabled(disabled))]);
    }
}
