//! Webhook subscriptions: the store. The request rules (names, event types, destination URLs
//! with the loopback relaxation) are the schemas' (`schemas/json/common.json`).
//!
//! Each subscription belongs to one organisation and one API version; v1 and v2 are separate
//! namespaces: a v2 id is invisible under `/v1` and the reverse. No lookup crosses organisations.

use std::collections::HashMap;

/// The API version a subscription was created under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApiVersion {
    /// `/v1/subscriptions`
    #[default]
    V1,
    /// `/v2/subscriptions` (with a `resourceVersion`)
    V2,
}

/// `active` or `inactive`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Receives events.
    Active,
    /// Receives nothing.
    Inactive,
}

impl Status {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Inactive => "inactive",
        }
    }
}

/// One subscription, serialised as the wire's `SubscriptionResponse`: the secret is kept but
/// never rendered.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    /// uuid.
    pub id: String,
    /// Owning organisation.
    #[serde(skip)]
    pub org_id: String,
    /// Namespace.
    #[serde(skip)]
    pub version: ApiVersion,
    /// 4–64 characters; fixed after creation.
    pub name: String,
    /// Optional description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Event type names.
    pub event_types: Vec<String>,
    /// Where deliveries go.
    pub destination_url: String,
    /// HMAC key for deliveries.
    #[serde(skip)]
    pub secret: Option<String>,
    /// Epoch ms.
    pub created_time: i64,
    /// Creator's email.
    pub created_by: String,
    /// active / inactive.
    pub status: Status,
    /// Epoch ms.
    pub last_updated_time: i64,
    /// Last editor's email.
    pub last_updated_by: String,
    /// v2 only: `resource:version`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
    #[serde(skip)]
    seq: u64,
}

/// The admin view of a subscription: the wire form plus its organisation, namespace and
/// whether a secret is set (never the secret).
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdminView<'a> {
    #[serde(flatten)]
    subscription: &'a Subscription,
    org_id: &'a str,
    api_version: ApiVersion,
    has_secret: bool,
}

impl Subscription {
    /// The admin view.
    pub fn admin_view(&self) -> AdminView<'_> {
        AdminView {
            subscription: self,
            org_id: &self.org_id,
            api_version: self.version,
            has_secret: self.secret.is_some(),
        }
    }
}

/// A validated create request.
#[derive(Debug, Clone)]
pub struct NewSubscription {
    /// Name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Event types.
    pub event_types: Vec<String>,
    /// Destination URL (checked by the schema's `destinationUrl` rule).
    pub destination_url: String,
    /// Secret.
    pub secret: Option<String>,
    /// v2 only.
    pub resource_version: Option<String>,
}

/// A validated PATCH: `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct SubscriptionPatch {
    /// New description.
    pub description: Option<String>,
    /// New event types.
    pub event_types: Option<Vec<String>>,
    /// New destination.
    pub destination_url: Option<String>,
    /// New status.
    pub status: Option<Status>,
    /// New secret.
    pub secret: Option<String>,
    /// New resource version (v2).
    pub resource_version: Option<String>,
}

/// Who is writing, and when.
#[derive(Debug, Clone, Copy)]
pub struct Write<'a> {
    /// The organisation written to.
    pub org_id: &'a str,
    /// The namespace.
    pub version: ApiVersion,
    /// The caller's email.
    pub by: &'a str,
    /// Epoch ms.
    pub now: i64,
}

/// All subscriptions of all organisations.
#[derive(Debug, Default)]
pub struct SubscriptionStore {
    by_id: HashMap<String, Subscription>,
    next_seq: u64,
}

/// A subscription as a state file keeps it: the wire form plus what the wire never shows (its
/// organisation, namespace, secret and creation order).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SavedSubscription {
    /// As the API returns it.
    #[serde(flatten)]
    pub wire: Subscription,
    /// Owning organisation.
    pub org_id: String,
    /// v1 or v2.
    pub version: ApiVersion,
    /// HMAC key.
    pub secret: Option<String>,
    /// Creation order.
    pub seq: u64,
}

impl SubscriptionStore {
    /// Every subscription as a state file keeps it, oldest first.
    pub fn saved(&self) -> Vec<SavedSubscription> {
        let mut all: Vec<&Subscription> = self.by_id.values().collect();
        all.sort_by_key(|s| s.seq);
        all.into_iter()
            .map(|s| SavedSubscription {
                wire: s.clone(),
                org_id: s.org_id.clone(),
                version: s.version,
                secret: s.secret.clone(),
                seq: s.seq,
            })
            .collect()
    }

    /// A store holding what a state file kept.
    pub fn restored(saved: Vec<SavedSubscription>) -> SubscriptionStore {
        let mut store = SubscriptionStore::default();
        for s in saved {
            store.next_seq = store.next_seq.max(s.seq);
            let sub = Subscription { org_id: s.org_id, version: s.version, secret: s.secret, seq: s.seq, ..s.wire };
            store.by_id.insert(sub.id.clone(), sub);
        }
        store
    }
}

/// A create refused because the org holds as many subscriptions as it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrgLimit {
    /// Subscriptions the org holds.
    pub count: usize,
    /// The most it may hold.
    pub limit: usize,
}

impl SubscriptionStore {
    /// Creates one, unless the org already holds `limit` subscriptions (across v1 and v2).
    pub fn create(&mut self, w: Write<'_>, new: NewSubscription, limit: usize) -> Result<Subscription, OrgLimit> {
        let count = self.by_id.values().filter(|s| s.org_id == w.org_id).count();
        if count >= limit {
            return Err(OrgLimit { count, limit });
        }
        self.next_seq += 1;
        let sub = Subscription {
            id: uuid::Uuid::new_v4().to_string(),
            org_id: w.org_id.to_owned(),
            version: w.version,
            name: new.name,
            description: new.description,
            event_types: new.event_types,
            destination_url: new.destination_url,
            secret: new.secret,
            status: Status::Active,
            created_time: w.now,
            created_by: w.by.to_owned(),
            last_updated_time: w.now,
            last_updated_by: w.by.to_owned(),
            resource_version: new.resource_version,
            seq: self.next_seq,
        };
        self.by_id.insert(sub.id.clone(), sub.clone());
        Ok(sub)
    }

    /// One subscription of `org_id` in `version`'s namespace.
    pub fn get(&self, org_id: &str, version: ApiVersion, id: &str) -> Option<&Subscription> {
        self.by_id.get(id).filter(|s| s.org_id == org_id && s.version == version)
    }

    /// The org's subscriptions in one namespace (oldest first) and the org's total across all.
    pub fn list(&self, org_id: &str, version: ApiVersion) -> (Vec<Subscription>, usize) {
        let mut all: Vec<&Subscription> = self.by_id.values().filter(|s| s.org_id == org_id).collect();
        all.sort_by_key(|s| s.seq);
        let total = all.len();
        (all.into_iter().filter(|s| s.version == version).cloned().collect(), total)
    }

    /// Applies a patch; `None` if there is no such subscription.
    pub fn update(&mut self, w: Write<'_>, id: &str, patch: SubscriptionPatch) -> Option<Subscription> {
        let sub = self.by_id.get_mut(id).filter(|s| s.org_id == w.org_id && s.version == w.version)?;
        if let Some(d) = patch.description {
            sub.description = Some(d);
        }
        if let Some(e) = patch.event_types {
            sub.event_types = e;
        }
        if let Some(u) = patch.destination_url {
            sub.destination_url = u;
        }
        if let Some(s) = patch.status {
            sub.status = s;
        }
        if let Some(s) = patch.secret {
            sub.secret = Some(s);
        }
        if let Some(rv) = patch.resource_version {
            sub.resource_version = Some(rv);
        }
        sub.last_updated_time = w.now;
        sub.last_updated_by = w.by.to_owned();
        Some(sub.clone())
    }

    /// Deletes one; the deleted subscription, if it existed.
    pub fn delete(&mut self, org_id: &str, version: ApiVersion, id: &str) -> Option<Subscription> {
        self.get(org_id, version, id)?;
        self.by_id.remove(id)
    }

    /// Sets the status of a subscription by id (the dispatcher disables failing ones); the
    /// subscription afterwards.
    pub fn set_status(&mut self, id: &str, status: Status, now: i64) -> Option<&Subscription> {
        let sub = self.by_id.get_mut(id)?;
        sub.status = status;
        sub.last_updated_time = now;
        sub.last_updated_by = "wxcc-mock".to_owned();
        Some(sub)
    }

    /// A subscription by id alone, for the dispatcher (which already knows its organisation).
    pub fn by_id(&self, id: &str) -> Option<&Subscription> {
        self.by_id.get(id)
    }

    /// Active subscriptions of `org_id`, oldest first.
    pub fn active_in(&self, org_id: &str) -> Vec<&Subscription> {
        let mut subs: Vec<&Subscription> =
            self.by_id.values().filter(|s| s.org_id == org_id && s.status == Status::Active).collect();
        subs.sort_by_key(|s| s.seq);
        subs
    }

    /// Every subscription, oldest first (for `/__admin/state`).
    pub fn all(&self) -> Vec<&Subscription> {
        let mut all: Vec<&Subscription> = self.by_id.values().collect();
        all.sort_by_key(|s| s.seq);
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_never_cross_organisations() {
        let mut store = SubscriptionStore::default();
        let w = Write { org_id: "org-a", version: ApiVersion::V1, by: "a@x.example", now: 1 };
        let sub = store
            .create(
                w,
                NewSubscription {
                    name: "name".into(),
                    description: None,
                    event_types: vec!["agent:login".into()],
                    destination_url: "https://x.example/".into(),
                    secret: None,
                    resource_version: None,
                },
                10,
            )
            .expect("room");
        assert!(store.get("org-b", ApiVersion::V1, &sub.id).is_none());
        assert!(store.delete("org-b", ApiVersion::V1, &sub.id).is_none());
        let other = Write { org_id: "org-b", ..w };
        assert!(store.update(other, &sub.id, SubscriptionPatch::default()).is_none());
        assert_eq!(store.list("org-b", ApiVersion::V1).1, 0);
        assert_eq!(store.list("org-a", ApiVersion::V1).1, 1);
    }

    #[test]
    fn an_org_holds_at_most_its_limit_across_both_versions_and_other_orgs_are_not_counted() {
        let mut store = SubscriptionStore::default();
        let new = || NewSubscription {
            name: "n".into(),
            description: None,
            event_types: vec!["agent:login".into()],
            destination_url: "https://x.example/".into(),
            secret: None,
            resource_version: None,
        };
        let v1 = Write { org_id: "org-a", version: ApiVersion::V1, by: "a@x.example", now: 1 };
        let v2 = Write { version: ApiVersion::V2, ..v1 };
        store.create(v1, new(), 2).expect("first");
        store.create(v2, new(), 2).expect("second");
        assert_eq!(store.create(v1, new(), 2).err(), Some(OrgLimit { count: 2, limit: 2 }));
        store.create(Write { org_id: "org-b", ..v1 }, new(), 2).expect("another org has its own room");
    }
}

#[cfg(test)]
mod wire_tests {
    use super::*;

    #[test]
    fn the_wire_form_never_shows_the_secret_and_keeps_the_documented_field_order() {
        let mut store = SubscriptionStore::default();
        let w = Write { org_id: "org-a", version: ApiVersion::V2, by: "a@x.example", now: 5 };
        let new = NewSubscription {
            name: "name".into(),
            description: None,
            event_types: vec!["agent:login".into()],
            destination_url: "https://x.example/".into(),
            secret: Some("0123456789abcdef0123456789abcdef".into()),
            resource_version: Some("agent:1.0.0".into()),
        };
        let sub = store.create(w, new, 10).expect("room");
        let wire = serde_json::to_value(&sub).expect("json");
        let keys: Vec<&str> = wire.as_object().expect("object").keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            vec![
                "id",
                "name",
                "eventTypes",
                "destinationUrl",
                "createdTime",
                "createdBy",
                "status",
                "lastUpdatedTime",
                "lastUpdatedBy",
                "resourceVersion"
            ]
        );
        let admin = serde_json::to_string(&sub.admin_view()).expect("json");
        assert!(!admin.contains("0123456789abcdef"), "{admin}");
        assert!(admin.contains("\"hasSecret\":true") && admin.contains("\"apiVersion\":\"v2\""), "{admin}");
    }
}
