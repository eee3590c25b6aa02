//! The tokens the mock knows: the world's (kept for as long as the world is loaded) and minted
//! ones (bounded by count, and swept on the mock's clock once they have been expired a while, so
//! that a client still holding one gets "expired" rather than "unknown" for an hour).

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use crate::auth::TokenRecord;
use crate::world::World;

/// How often (in clock time) the first token lookup sweeps expired minted tokens.
pub const SWEEP_EVERY_MS: i64 = 60_000;
/// How long a minted token is remembered after it expires (its 401 says "expired").
pub const EXPIRED_KEPT_MS: i64 = 3_600_000;

/// A mint refused because the mock holds as many minted tokens as it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenLimit {
    /// The bound (`--max-minted-tokens`).
    pub limit: usize,
}

/// Every token the mock knows. Every request looks its token up here, and most carry one of the
/// world's: those are read without a lock or a count shared by every core (their records never
/// change; when they expire does, kept beside each). Minted tokens sit behind a lock. The maps
/// hash with foldhash (fast, and seeded per process, so a client cannot choose keys that
/// collide).
#[derive(Debug)]
pub(crate) struct Tokens {
    world: foldhash::HashMap<String, WorldToken>,
    minted: Mutex<TokenStore>,
    /// Whether any minted token is held, so that a look-up of a world token knows without the
    /// lock whether there is anything to sweep. Written under the lock.
    any_minted: AtomicBool,
}

/// A world token: its record, and when it expires (epoch ms, [`NEVER`] for never), which
/// `/__admin/tokens/expire` may bring forward and a reset puts back. The record's own
/// `expires_at` stays as the world file says (what a reset puts back); [`Found::expires_at`] is
/// the one in force.
#[derive(Debug)]
struct WorldToken {
    record: TokenRecord,
    expires_at: AtomicI64,
}

/// A world token's `expires_at` when it does not expire.
const NEVER: i64 = i64::MAX;

/// A token found: its record and when it expires (epoch ms; `None` never).
#[derive(Debug, Clone)]
pub(crate) struct Found<'t> {
    pub(crate) record: Held<'t>,
    pub(crate) expires_at: Option<i64>,
}

/// A token's record as an identity holds it.
#[derive(Debug, Clone)]
pub enum Held<'t> {
    /// A world token's, borrowed for as long as the state is.
    World(&'t TokenRecord),
    /// A minted token's, shared with the store (which may sweep it meanwhile).
    Minted(Arc<TokenRecord>),
}

impl std::ops::Deref for Held<'_> {
    type Target = TokenRecord;

    fn deref(&self) -> &TokenRecord {
        match self {
            Held::World(record) => record,
            Held::Minted(record) => record,
        }
    }
}

impl Tokens {
    /// The world's tokens, nothing minted.
    pub(crate) fn from_world(world: &World) -> Tokens {
        let mut tokens = foldhash::HashMap::default();
        for spec in &world.tokens {
            if let Some((org, user)) = world.user_position(&spec.email) {
                let record = TokenRecord {
                    org,
                    user,
                    scopes: spec.scopes.clone().into(),
                    expires_at: spec.expires_at,
                    client_id: crate::auth::client_id(spec.client_id.as_deref()),
                };
                let expires_at = AtomicI64::new(spec.expires_at.unwrap_or(NEVER));
                tokens.insert(spec.access_token.clone(), WorldToken { record, expires_at });
            }
        }
        let minted = TokenStore { minted: foldhash::HashMap::default(), next_sweep: i64::MIN, swept: 0 };
        Tokens { world: tokens, minted: Mutex::new(minted), any_minted: AtomicBool::new(false) }
    }

    /// A token, expired or not. Every look-up sweeps expired minted tokens once a minute of
    /// clock time; `now` is asked for only when there are minted tokens to sweep.
    pub(crate) fn find(&self, token: &str, now: impl Fn() -> i64) -> Option<Found<'_>> {
        if let Some(world) = self.world.get(token) {
            if self.any_minted.load(Ordering::Acquire) {
                self.sweep(&mut self.store(), now());
            }
            let expires_at = world.expires_at.load(Ordering::Acquire);
            let expires_at = (expires_at != NEVER).then_some(expires_at);
            return Some(Found { record: Held::World(&world.record), expires_at });
        }
        let mut store = self.store();
        if !store.minted.is_empty() {
            self.sweep(&mut store, now());
        }
        let record = store.minted.get(token)?.clone();
        Some(Found { expires_at: record.expires_at, record: Held::Minted(record) })
    }

    /// A known token's owner, expired or not: organisation and user (indices). Sweeps nothing.
    pub(crate) fn owner(&self, token: &str) -> Option<(usize, usize)> {
        if let Some(world) = self.world.get(token) {
            return Some((world.record.org, world.record.user));
        }
        self.store().minted.get(token).map(|record| (record.org, record.user))
    }

    /// Makes a token (world or minted) expire at `now`, or keeps an earlier expiry; its owner's
    /// organisation and user (indices), if the token is known.
    pub(crate) fn expire(&self, token: &str, now: i64) -> Option<(usize, usize)> {
        if let Some(world) = self.world.get(token) {
            world.expires_at.fetch_min(now, Ordering::AcqRel);
            return Some((world.record.org, world.record.user));
        }
        let mut store = self.store();
        let record = Arc::make_mut(store.minted.get_mut(token)?);
        record.expires_at = Some(record.expires_at.map_or(now, |at| at.min(now)));
        Some((record.org, record.user))
    }

    /// Back to the world's tokens as loaded: minted ones go, expired world ones come back.
    pub(crate) fn reset(&self) {
        let mut store = self.store();
        store.minted.clear();
        self.any_minted.store(false, Ordering::Release);
        for world in self.world.values() {
            world.expires_at.store(world.record.expires_at.unwrap_or(NEVER), Ordering::Release);
        }
    }

    /// Keeps a minted token, unless `limit` are held already (after sweeping what may go).
    pub(crate) fn mint(&self, token: String, record: TokenRecord, limit: usize, now: i64) -> Result<(), TokenLimit> {
        let mut store = self.store();
        let kept = store.mint(token, record, limit, now);
        self.any_minted.store(!store.minted.is_empty(), Ordering::Release);
        kept
    }

    /// Puts back a minted token from a state file.
    pub(crate) fn restore(&self, token: String, record: TokenRecord) {
        let mut store = self.store();
        store.minted.insert(token, Arc::new(record));
        self.any_minted.store(true, Ordering::Release);
    }

    /// Every minted token with its record (for a state file).
    pub(crate) fn minted(&self) -> Vec<(String, TokenRecord)> {
        self.store().minted.iter().map(|(token, record)| (token.clone(), (**record).clone())).collect()
    }

    /// Minted tokens held, and how many were swept so far.
    pub(crate) fn minted_counts(&self) -> (usize, u64) {
        let store = self.store();
        (store.minted.len(), store.swept)
    }

    fn sweep(&self, store: &mut TokenStore, now: i64) {
        if store.sweep_if_due(now) > 0 {
            self.any_minted.store(!store.minted.is_empty(), Ordering::Release);
        }
    }

    fn store(&self) -> std::sync::MutexGuard<'_, TokenStore> {
        self.minted.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The minted tokens, and when they were last swept.
#[derive(Debug)]
struct TokenStore {
    minted: foldhash::HashMap<String, Arc<TokenRecord>>,
    next_sweep: i64,
    swept: u64,
}

impl TokenStore {
    /// Forgets minted tokens expired more than [`EXPIRED_KEPT_MS`] ago, at most once per
    /// [`SWEEP_EVERY_MS`] of clock time; how many went.
    fn sweep_if_due(&mut self, now: i64) -> usize {
        if now < self.next_sweep {
            return 0;
        }
        self.next_sweep = now.saturating_add(SWEEP_EVERY_MS);
        let before = self.minted.len();
        self.minted.retain(|_, r| r.expires_at.is_none_or(|at| at.saturating_add(EXPIRED_KEPT_MS) > now));
        let gone = before - self.minted.len();
        self.swept += gone as u64;
        gone
    }

    /// Keeps a minted token, unless `limit` are held already (after sweeping what may go).
    fn mint(&mut self, token: String, record: TokenRecord, limit: usize, now: i64) -> Result<(), TokenLimit> {
        if self.minted.len() >= limit {
            self.next_sweep = i64::MIN;
            self.sweep_if_due(now);
            if self.minted.len() >= limit {
                return Err(TokenLimit { limit });
            }
        }
        self.minted.insert(token, Arc::new(record));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world_token(world: &World) -> String {
        world.tokens[0].access_token.clone()
    }

    /// A minted token's record, expiring at 1,000 ms.
    fn record() -> TokenRecord {
        TokenRecord { org: 0, user: 0, scopes: Vec::new().into(), expires_at: Some(1_000), client_id: "c".into() }
    }

    #[test]
    fn a_world_token_is_found_without_the_clock_or_the_lock_while_nothing_is_minted() {
        let world = World::default_world();
        let tokens = Tokens::from_world(&world);
        let found = tokens.find(&world_token(&world), || panic!("the clock was read")).expect("known");
        assert!(matches!(found.record, Held::World(_)));
        assert_eq!(found.expires_at, None);
        // With the lock held elsewhere, a world token is still found (a minted one would wait).
        let tokens = Arc::new(tokens);
        let _held = tokens.store();
        let (found, told) = std::sync::mpsc::channel();
        let (looking, token) = (tokens.clone(), world_token(&world));
        std::thread::spawn(move || found.send(looking.find(&token, || 0).is_some()));
        assert_eq!(told.recv_timeout(std::time::Duration::from_secs(10)), Ok(true), "it waited for the lock");
    }

    #[test]
    fn a_world_token_expires_early_only_and_a_reset_brings_it_back() {
        let world = World::default_world();
        let tokens = Tokens::from_world(&world);
        let token = world_token(&world);
        assert!(tokens.expire(&token, 5_000).is_some());
        assert!(tokens.expire(&token, 9_000).is_some(), "a later expiry keeps the earlier one");
        assert_eq!(tokens.find(&token, || 0).expect("known").expires_at, Some(5_000));
        tokens.reset();
        assert_eq!(tokens.find(&token, || 0).expect("known").expires_at, None);
        assert_eq!(tokens.owner(&token), tokens.expire(&token, 1));
    }

    #[test]
    fn a_world_token_look_up_sweeps_minted_tokens_once_there_are_any() {
        let world = World::default_world();
        let tokens = Tokens::from_world(&world);
        tokens.mint("m1".into(), record(), 10, 0).expect("room");
        let asked = std::cell::Cell::new(0);
        let now = || {
            asked.set(asked.get() + 1);
            1_000 + EXPIRED_KEPT_MS
        };
        assert!(tokens.find(&world_token(&world), now).is_some());
        assert_eq!(asked.get(), 1, "something minted: the clock is read to sweep");
        assert_eq!(tokens.minted_counts(), (0, 1), "expired an hour ago: swept");
        assert_eq!(tokens.owner("m1"), None);
        assert!(tokens.find(&world_token(&world), now).is_some());
        assert_eq!(asked.get(), 1, "nothing minted any more: the clock is not read");
    }
}
