//! The tokens the mock knows: the world's (kept for as long as the world is loaded) and minted
//! ones (bounded by count, and swept on the mock's clock once they have been expired a while, so
//! that a client still holding one gets "expired" rather than "unknown" for an hour).

use std::sync::Arc;

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

/// Every request looks its token up here: the maps hash with foldhash (fast, and seeded per
/// process, so a client cannot choose keys that collide).
#[derive(Debug)]
pub(crate) struct TokenStore {
    /// Shared with the identities they resolve to: a look-up clones one `Arc`.
    world: foldhash::HashMap<String, Arc<TokenRecord>>,
    minted: foldhash::HashMap<String, Arc<TokenRecord>>,
    next_sweep: i64,
    swept: u64,
}

impl TokenStore {
    /// The world's tokens, nothing minted.
    pub(crate) fn from_world(world: &World) -> TokenStore {
        let mut tokens = foldhash::HashMap::default();
        for spec in &world.tokens {
            let found = world.orgs.iter().enumerate().find_map(|(oi, o)| {
                o.users.iter().position(|u| u.email.eq_ignore_ascii_case(&spec.email)).map(|ui| (oi, ui))
            });
            if let Some((org, user)) = found {
                let record = TokenRecord {
                    org,
                    user,
                    scopes: spec.scopes.clone().into(),
                    expires_at: spec.expires_at,
                    client_id: crate::auth::client_id(spec.client_id.as_deref()),
                };
                tokens.insert(spec.access_token.clone(), Arc::new(record));
            }
        }
        TokenStore { world: tokens, minted: foldhash::HashMap::default(), next_sweep: i64::MIN, swept: 0 }
    }

    /// Whether any token was minted (and not yet swept).
    pub(crate) fn has_minted(&self) -> bool {
        !self.minted.is_empty()
    }

    /// A token's record (expired or not).
    pub(crate) fn get(&self, token: &str) -> Option<&Arc<TokenRecord>> {
        self.minted.get(token).or_else(|| self.world.get(token))
    }

    /// Forgets minted tokens expired more than [`EXPIRED_KEPT_MS`] ago, at most once per
    /// [`SWEEP_EVERY_MS`] of clock time; how many went.
    pub(crate) fn sweep_if_due(&mut self, now: i64) -> usize {
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
    pub(crate) fn mint(
        &mut self,
        token: String,
        record: TokenRecord,
        limit: usize,
        now: i64,
    ) -> Result<(), TokenLimit> {
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

    /// Every minted token with its record (for a state file).
    pub(crate) fn minted(&self) -> impl Iterator<Item = (&String, &TokenRecord)> {
        self.minted.iter().map(|(token, record)| (token, &**record))
    }

    /// Puts back a minted token from a state file.
    pub(crate) fn restore(&mut self, token: String, record: TokenRecord) {
        self.minted.insert(token, Arc::new(record));
    }

    /// Minted tokens held, and how many were swept so far.
    pub(crate) fn minted_counts(&self) -> (usize, u64) {
        (self.minted.len(), self.swept)
    }

    /// Makes a token (world or minted) expire at `now`; its owner's record, if it is known.
    pub(crate) fn expire(&mut self, token: &str, now: i64) -> Option<TokenRecord> {
        let record = Arc::make_mut(self.minted.get_mut(token).or_else(|| self.world.get_mut(token))?);
        record.expires_at = Some(record.expires_at.map_or(now, |at| at.min(now)));
        Some(record.clone())
    }
}
