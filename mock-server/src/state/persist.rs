//! `--state-file`: what the mock has been told survives a restart. Subscriptions (secrets
//! included), minted tokens, agent sessions, tasks and pending webhook deliveries are written to
//! one JSON file, atomically (a temporary file, fsync, rename), before a state-changing request's
//! 2xx goes out: requests that arrive together share one write (group commit), so `kill -9` after
//! a 2xx loses none of what it acknowledged. Changes made by the clock (a RONA, a delivery, a
//! subscription turning inactive) are written with the next request's write and at shutdown.
//! Not kept: websocket connections and their registrations, the journal, violations and the
//! delivery log. The file holds secrets and tokens: it is created readable by its owner only.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};

use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, watch};

use crate::auth::TokenRecord;
use crate::delivery::{Job, SavedDelivery, Target};
use crate::engine::agents::Session;
use crate::engine::subscriptions::{SavedSubscription, SubscriptionStore};
use crate::engine::tasks::Leg;

use super::tasks::SavedTasks;
use super::{AppState, Inner};

/// The state file's format version.
pub const FORMAT: u32 = 1;

/// What a state file holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Saved {
    /// [`FORMAT`].
    pub format: u32,
    /// The mock's clock when it was written (epoch ms).
    pub clock_now: i64,
    /// Minted tokens (world tokens come from the world).
    pub minted_tokens: Vec<SavedToken>,
    /// Logged-in agents.
    pub sessions: Vec<Session>,
    /// Subscriptions, oldest first.
    pub subscriptions: Vec<SavedSubscription>,
    /// Tasks and what routing needs.
    pub tasks: SavedTasks,
    /// Webhook deliveries not yet made, oldest first.
    pub deliveries: Vec<SavedDelivery>,
}

/// A minted token in a state file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SavedToken {
    /// The token.
    pub access_token: String,
    /// Its user.
    pub email: String,
    /// Its scopes.
    pub scopes: Vec<String>,
    /// Epoch ms.
    pub expires_at: Option<i64>,
    /// The integration it was issued to (absent in files written before rate limits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
}

/// What a restore put back (and what it left out because the world no longer has it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Restored {
    /// Minted tokens.
    pub tokens: usize,
    /// Agent sessions.
    pub sessions: usize,
    /// Subscriptions.
    pub subscriptions: usize,
    /// Tasks.
    pub tasks: usize,
    /// Pending deliveries queued again.
    pub deliveries: usize,
    /// What was left out, and why.
    pub skipped: Vec<String>,
}

/// Group commit of the state file.
#[derive(Debug)]
pub(crate) struct Persister {
    path: PathBuf,
    requested: AtomicU64,
    written: watch::Sender<u64>,
    kick: Notify,
    writer: OnceLock<()>,
    failures: AtomicU64,
}

impl Persister {
    pub(crate) fn new(path: PathBuf) -> Persister {
        Persister {
            path,
            requested: AtomicU64::new(0),
            written: watch::channel(0).0,
            kick: Notify::new(),
            writer: OnceLock::new(),
            failures: AtomicU64::new(0),
        }
    }
}

/// Reads a state file; `None` if there is none yet.
pub fn read(path: &Path) -> anyhow::Result<Option<Saved>> {
    use anyhow::Context;
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading --state-file {}", path.display())),
    };
    let saved: Saved = serde_json::from_slice(&bytes)
        .with_context(|| format!("--state-file {} is not a wxcc-mock state file", path.display()))?;
    if saved.format != FORMAT {
        anyhow::bail!(
            "--state-file {} has format {}, this wxcc-mock reads format {FORMAT}; move it away to start afresh",
            path.display(),
            saved.format
        );
    }
    Ok(Some(saved))
}

/// Writes `bytes` to `path` atomically: a sibling temporary file, fsync, rename, fsync of the
/// directory. The file is readable by its owner only.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "state".into());
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)?;
    if let Ok(dir) = std::fs::File::open(dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

impl AppState {
    /// Everything a state file keeps, as it is now.
    pub fn saved(&self) -> Saved {
        let world = self.world();
        let minted_tokens = self
            .inner
            .tokens
            .minted()
            .into_iter()
            .map(|(token, r)| SavedToken {
                access_token: token,
                email: world.orgs[r.org].users[r.user].email.clone(),
                scopes: r.scopes.to_vec(),
                expires_at: r.expires_at,
                client_id: Some(r.client_id.to_string()),
            })
            .collect();
        let (sessions, subscriptions, tasks) = {
            let core = self.core();
            let mut sessions: Vec<Session> = core.sessions.values().cloned().collect();
            sessions.sort_by(|a, b| a.agent_id.cmp(&b.agent_id));
            (sessions, core.subscriptions.saved(), core.tasks.saved())
        };
        Saved {
            format: FORMAT,
            clock_now: self.now_ms(),
            minted_tokens,
            sessions,
            subscriptions,
            tasks,
            deliveries: self.dispatcher().pending(),
        }
    }

    /// Puts back what a state file kept: tokens, sessions, subscriptions and tasks (RONA timers
    /// run again from their deadlines), then queues the pending deliveries. Whatever names a
    /// user, agent or organisation the world no longer has is left out and reported.
    pub fn restore(&self, saved: Saved) -> Restored {
        let world = self.world().clone();
        let mut restored = Restored::default();
        for t in saved.minted_tokens {
            match world.user_position(&t.email) {
                Some((org, user)) => {
                    let scopes = t.scopes.into();
                    let client_id = crate::auth::client_id(t.client_id.as_deref());
                    let record = TokenRecord { org, user, scopes, expires_at: t.expires_at, client_id };
                    self.inner.tokens.restore(t.access_token, record);
                    restored.tokens += 1;
                }
                None => restored.skipped.push(format!("a minted token of {}: no such user", t.email)),
            }
        }
        let org_known = |id: &str| world.orgs.iter().any(|o| o.id == id);
        let user_known = |id: &str| world.orgs.iter().any(|o| o.users.iter().any(|u| u.id == id));
        let mut core = self.core();
        for session in saved.sessions {
            if user_known(&session.agent_id) {
                core.sessions.insert(session.agent_id.clone(), session);
                restored.sessions += 1;
            } else {
                restored.skipped.push(format!("the session of agent {}: no such user", session.agent_id));
            }
        }
        let (subscriptions, gone): (Vec<_>, Vec<_>) =
            saved.subscriptions.into_iter().partition(|s| org_known(&s.org_id));
        for s in gone {
            restored.skipped.push(format!("subscription {}: no organisation {}", s.wire.id, s.org_id));
        }
        restored.subscriptions = subscriptions.len();
        core.subscriptions = SubscriptionStore::restored(subscriptions);
        let (tasks, gone): (Vec<_>, Vec<_>) = saved.tasks.tasks.into_iter().partition(|t| org_known(&t.org_id));
        for t in gone {
            restored.skipped.push(format!("task {}: no organisation {}", t.id, t.org_id));
        }
        restored.tasks = tasks.len();
        let ringing: Vec<(String, u64, i64)> = tasks
            .iter()
            .filter_map(|t| match &t.leg {
                Leg::Offered { offer, deadline, .. } => Some((t.id.clone(), *offer, *deadline)),
                _ => None,
            })
            .collect();
        core.tasks.restore(SavedTasks { tasks, ..saved.tasks });
        for (task_id, offer, deadline) in ringing {
            self.schedule_rona(&mut core, &task_id, offer, deadline);
        }
        let targets: std::collections::HashMap<String, Arc<Target>> =
            core.subscriptions.all().into_iter().map(|s| (s.id.clone(), Arc::new(Target::of(s)))).collect();
        drop(core);
        for delivery in saved.deliveries {
            match targets.get(&delivery.subscription_id) {
                Some(target) => {
                    self.dispatcher().enqueue(Job::saved(&delivery, target.clone()));
                    restored.deliveries += 1;
                }
                None => restored
                    .skipped
                    .push(format!("a delivery to subscription {}: no such subscription", delivery.subscription_id)),
            }
        }
        restored
    }

    /// With `--state-file`: waits until the state as it is now is on disk (one write serves
    /// every request waiting at the time). Without, returns at once.
    pub async fn persist(&self) {
        let Some(persister) = &self.inner.persister else { return };
        persister.writer.get_or_init(|| {
            tokio::spawn(writer(persister.clone(), Arc::downgrade(&self.inner)));
        });
        let ticket = persister.requested.fetch_add(1, Ordering::SeqCst) + 1;
        persister.kick.notify_one();
        let mut written = persister.written.subscribe();
        let _ = written.wait_for(|w| *w >= ticket).await;
    }

    /// Writes that failed so far (each is logged).
    pub fn persist_failures(&self) -> u64 {
        self.inner.persister.as_ref().map_or(0, |p| p.failures.load(Ordering::Relaxed))
    }
}

async fn writer(persister: Arc<Persister>, state: Weak<Inner>) {
    loop {
        persister.kick.notified().await;
        let Some(inner) = state.upgrade() else { return };
        let app = AppState { inner };
        let upto = persister.requested.load(Ordering::SeqCst);
        let saved = app.saved();
        drop(app);
        let path = persister.path.clone();
        let written = tokio::task::spawn_blocking(move || {
            let bytes = serde_json::to_vec(&saved).map_err(std::io::Error::other)?;
            write_atomically(&path, &bytes)
        })
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        if let Err(e) = written {
            persister.failures.fetch_add(1, Ordering::Relaxed);
            tracing::error!("could not write --state-file {}: {e}", persister.path.display());
        }
        persister.written.send_replace(upto);
    }
}
