//! Rate limiting as the real API does it (facts §4): per client id (the integration a token was
//! issued to), `N` requests per minute, refused with 429, an empty body and `Retry-After` in whole
//! seconds. Off unless `--rate-limit N/min` or a scenario's `rateLimit` turns it on.
//!
//! The limiter is governor's GCRA keyed by client id: a client may send `N` at once, then one
//! every `60/N` seconds, as a sliding minute would allow. It reads the mock's clock, so on a
//! virtual clock a window passes only when the clock is advanced. Clients are the world's and
//! minted tokens' client ids; past [`SWEEP_ABOVE`] clients, those whose minute is whole again are
//! forgotten (at most once a minute on the clock), so what stays is bounded by the clients active
//! in the last minutes, which are bounded by the tokens alive (`--max-minted-tokens` and the
//! world's).

use std::num::NonZeroU32;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use governor::clock::Reference;
use governor::state::keyed::DashMapStateStore;

use crate::clock::Clock;

/// How many clients the limiter holds before it forgets those with a whole minute.
pub const SWEEP_ABOVE: usize = 4096;

/// The client id of a token that names none: the mock's one integration.
pub const DEFAULT_CLIENT_ID: &str = "wxcc-mock";

/// A limit: this many requests per minute per client id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests per minute.
    pub per_minute: NonZeroU32,
}

impl FromStr for RateLimit {
    type Err = String;

    /// `300/min` (also `300/minute`, `300/m`).
    fn from_str(text: &str) -> Result<RateLimit, String> {
        let why = || format!("{text:?}: a rate limit is written N/min, for example 300/min (N from 1)");
        let (count, unit) = text.trim().split_once('/').ok_or_else(why)?;
        if !matches!(unit.trim(), "min" | "minute" | "m") {
            return Err(why());
        }
        let per_minute = count.trim().parse::<NonZeroU32>().map_err(|_| why())?;
        Ok(RateLimit { per_minute })
    }
}

impl std::fmt::Display for RateLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/min", self.per_minute)
    }
}

/// The mock's clock as governor reads it: time since the epoch.
#[derive(Debug, Clone)]
struct MockClock(Clock);

impl governor::clock::Clock for MockClock {
    type Instant = Duration;

    fn now(&self) -> Duration {
        Duration::from_millis(u64::try_from(self.0.now_ms()).unwrap_or_default())
    }
}

type Keyed = governor::RateLimiter<
    Arc<str>,
    DashMapStateStore<Arc<str>>,
    MockClock,
    governor::middleware::NoOpMiddleware<Duration>,
>;

/// A refusal: when the client may try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    /// `Retry-After`, whole seconds (at least 1).
    pub retry_after_secs: u64,
    /// The limit it ran into.
    pub limit: RateLimit,
    /// The world's rule it ran into (its index in `rateLimits`); `None`: the limit.
    pub rule: Option<usize>,
}

/// The limit in force and the clients it counts.
#[derive(Debug)]
struct Active {
    limit: RateLimit,
    keyed: Arc<Keyed>,
}

/// A rule of the world's `rateLimits`, with its own counts.
#[derive(Debug)]
struct Override {
    rule: crate::world::RateLimitRule,
    /// `rule.route` split once, at start-up: (method, path).
    route: Option<(String, String)>,
    /// `None`: no limit for what it matches.
    limit: Option<RateLimit>,
    keyed: RwLock<Option<Arc<Keyed>>>,
    refused: AtomicU64,
}

impl Override {
    fn matches(&self, request: &Request<'_>) -> bool {
        let same = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        same(&self.rule.org_id, request.org_id)
            && same(&self.rule.client_id, request.client_id)
            && self.route.as_ref().is_none_or(|(m, p)| m == request.method && p == request.route)
    }

    fn fresh(&self, clock: &Clock) {
        *self.keyed.write().unwrap_or_else(std::sync::PoisonError::into_inner) =
            self.limit.map(|limit| RateLimiter::fresh(limit, clock));
    }
}

/// What a request offers the limiter.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The token's client id.
    pub client_id: &'a Arc<str>,
    /// The token's organisation.
    pub org_id: &'a str,
    /// The method.
    pub method: &'a str,
    /// The route as the endpoint table writes it (`/v1/tasks/{id}/accept`).
    pub route: &'a str,
}

/// The world's rules whose route is no route of the mock (`METHOD /path` pairs it serves are
/// given), as messages.
pub fn unknown_routes(world: &crate::world::World, served: &[(String, String)]) -> Vec<String> {
    world
        .rate_limits
        .iter()
        .enumerate()
        .filter_map(|(i, rule)| {
            let route = rule.route.as_deref()?;
            let (method, path) = route.split_once(' ')?;
            let known = served.iter().any(|(m, p)| m == method && p == path);
            (!known).then(|| {
                format!("rateLimits[{i}]: the mock serves no route {route:?} (write it as the OpenAPI document does, e.g. POST /v1/tasks/{{id}}/accept)")
            })
        })
        .collect()
}

/// The limiter of a running mock (see the module). Off until a limit is set; a scenario can set
/// or lift one while the mock runs.
#[derive(Debug)]
pub struct RateLimiter {
    clock: Clock,
    /// The world's `rateLimits`, tried first, in order.
    overrides: Vec<Override>,
    active: RwLock<Option<Active>>,
    /// Whether a limit is set, so a mock without one takes no lock per request.
    on: AtomicBool,
    refused: AtomicU64,
    /// When (epoch ms, the mock's clock) the next sweep may run.
    next_sweep: AtomicI64,
}

impl RateLimiter {
    /// A limiter for `limit` (`None`: off) on `clock`, with the world's `rules` tried first.
    pub fn new(limit: Option<RateLimit>, clock: Clock, rules: &[crate::world::RateLimitRule]) -> RateLimiter {
        let overrides = rules
            .iter()
            .map(|rule| {
                let limit = NonZeroU32::new(rule.per_minute).map(|per_minute| RateLimit { per_minute });
                let route =
                    rule.route.as_deref().and_then(|r| r.split_once(' ')).map(|(m, p)| (m.to_owned(), p.to_owned()));
                let rule =
                    Override { rule: rule.clone(), route, limit, keyed: RwLock::new(None), refused: AtomicU64::new(0) };
                rule.fresh(&clock);
                rule
            })
            .collect();
        let limiter = RateLimiter {
            clock,
            overrides,
            active: RwLock::new(None),
            on: AtomicBool::new(false),
            refused: AtomicU64::new(0),
            next_sweep: AtomicI64::new(i64::MIN),
        };
        limiter.set(limit);
        limiter
    }

    /// Every client with a full minute.
    fn fresh(limit: RateLimit, clock: &Clock) -> Arc<Keyed> {
        let quota = governor::Quota::per_minute(limit.per_minute);
        Arc::new(Keyed::dashmap_with_clock(quota, MockClock(clock.clone())))
    }

    /// Sets the limit (`None`: off); every client starts with a full minute.
    pub fn set(&self, limit: Option<RateLimit>) {
        let mut active = self.active.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        *active = limit.map(|limit| Active { limit, keyed: RateLimiter::fresh(limit, &self.clock) });
        self.on.store(limit.is_some(), Ordering::Relaxed);
    }

    /// Counts one request, or says when its client may try again: under the first of the
    /// world's rules that matches it, else under the limit (if one is set).
    pub fn admit(&self, request: &Request<'_>) -> Result<(), Limited> {
        if let Some((index, rule)) = self.overrides.iter().enumerate().find(|(_, o)| o.matches(request)) {
            let Some(limit) = rule.limit else { return Ok(()) };
            let keyed = rule.keyed.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
            let Some(keyed) = keyed else { return Ok(()) };
            return keyed.check_key(request.client_id).map_err(|not_until| {
                rule.refused.fetch_add(1, Ordering::Relaxed);
                self.refused.fetch_add(1, Ordering::Relaxed);
                Limited { rule: Some(index), ..self.limited(not_until, limit) }
            });
        }
        self.check(request.client_id)
    }

    fn limited(&self, not_until: governor::NotUntil<Duration>, limit: RateLimit) -> Limited {
        let now = governor::clock::Clock::now(&MockClock(self.clock.clone()));
        let wait = not_until.earliest_possible().duration_since(now);
        let retry_after_secs = Duration::from(wait).as_secs_f64().ceil().max(1.0) as u64;
        Limited { retry_after_secs, limit, rule: None }
    }

    /// The world's rules, with how many requests each refused.
    pub fn rules(&self) -> Vec<serde_json::Value> {
        self.overrides
            .iter()
            .map(|o| {
                let mut view = serde_json::to_value(&o.rule).unwrap_or_default();
                view["refused"] = o.refused.load(Ordering::Relaxed).into();
                view
            })
            .collect()
    }

    /// Counts one request of `client` under the limit, or says when it may try again.
    pub fn check(&self, client: &Arc<str>) -> Result<(), Limited> {
        if !self.on.load(Ordering::Relaxed) {
            return Ok(());
        }
        let (limit, keyed) = {
            let active = self.active.read().unwrap_or_else(std::sync::PoisonError::into_inner);
            let Some(active) = active.as_ref() else { return Ok(()) };
            (active.limit, active.keyed.clone())
        };
        if keyed.len() > SWEEP_ABOVE {
            let now = self.clock.now_ms();
            let due = self.next_sweep.load(Ordering::Relaxed);
            let claimed = now >= due
                && self.next_sweep.compare_exchange(due, now + 60_000, Ordering::Relaxed, Ordering::Relaxed).is_ok();
            if claimed {
                keyed.retain_recent();
                keyed.shrink_to_fit();
            }
        }
        keyed.check_key(client).map_err(|not_until| {
            self.refused.fetch_add(1, Ordering::Relaxed);
            self.limited(not_until, limit)
        })
    }

    /// Every client starts with a full minute again (`/__admin/reset`), under every rule.
    pub fn reset(&self) {
        self.reset_to(self.limit());
    }

    /// Like [`RateLimiter::reset`], with `limit` as the limit from now on.
    pub fn reset_to(&self, limit: Option<RateLimit>) {
        self.set(limit);
        for rule in &self.overrides {
            rule.fresh(&self.clock);
        }
    }

    /// The limit, if one is set.
    pub fn limit(&self) -> Option<RateLimit> {
        self.active.read().unwrap_or_else(std::sync::PoisonError::into_inner).as_ref().map(|a| a.limit)
    }

    /// Requests refused so far, and the clients seen under the current limit.
    pub fn counts(&self) -> (u64, usize) {
        let active = self.active.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        (self.refused.load(Ordering::Relaxed), active.as_ref().map_or(0, |a| a.keyed.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(text: &str) -> RateLimit {
        text.parse().expect("a limit")
    }

    #[test]
    fn a_limit_is_written_per_minute() {
        assert_eq!(limit("300/min").per_minute.get(), 300);
        assert_eq!(limit(" 5/minute ").per_minute.get(), 5);
        for bad in ["300", "0/min", "300/s", "x/min", "-1/min"] {
            let error = bad.parse::<RateLimit>().expect_err(bad);
            assert!(error.contains("N/min"), "{error}");
        }
    }

    #[tokio::test]
    async fn a_client_gets_its_minute_then_waits_on_the_mock_clock_and_others_are_not_affected() {
        let clock = Clock::virtual_at(1_800_000_000_000);
        let limiter = RateLimiter::new(Some(limit("3/min")), clock.clone(), &[]);
        let crm: Arc<str> = "crm".into();
        for _ in 0..3 {
            limiter.check(&crm).expect("within the minute");
        }
        let refused = limiter.check(&crm).expect_err("the fourth in a minute");
        // One request comes back every 20 s.
        assert_eq!(refused.retry_after_secs, 20);
        limiter.check(&"desktop".into()).expect("another client has its own minute");
        clock.advance(19_000).await.expect("virtual");
        assert_eq!(limiter.check(&crm).expect_err("not yet").retry_after_secs, 1);
        clock.advance(1_000).await.expect("virtual");
        limiter.check(&crm).expect("20 s later, one more");
        assert_eq!(limiter.counts(), (2, 2));
        limiter.reset();
        for _ in 0..3 {
            limiter.check(&crm).expect("a reset gives a full minute");
        }
        limiter.set(None);
        for _ in 0..10 {
            limiter.check(&crm).expect("no limit once lifted");
        }
        limiter.set(Some(limit("1/min")));
        limiter.check(&crm).expect("a new limit gives a full minute");
        assert_eq!(limiter.check(&crm).expect_err("one a minute").retry_after_secs, 60);
    }

    #[tokio::test]
    async fn clients_whose_minute_is_whole_again_are_forgotten_past_the_sweep_bound() {
        let clock = Clock::virtual_at(1_800_000_000_000);
        let limiter = RateLimiter::new(Some(limit("2/min")), clock.clone(), &[]);
        for n in 0..=SWEEP_ABOVE {
            limiter.check(&format!("client-{n}").into()).expect("a first request");
        }
        let busy: Arc<str> = "busy".into();
        // Past the bound: a sweep runs, but every client is recent.
        limiter.check(&busy).expect("one");
        limiter.check(&busy).expect("two");
        assert_eq!(limiter.counts().1, SWEEP_ABOVE + 2);
        // A minute later, the clients with one request 61 s ago have their whole minute again and
        // are forgotten; "busy", whose two requests fill its minute until 60 s, is still held.
        clock.advance(61_000).await.expect("virtual");
        limiter.check(&busy).expect("room again");
        assert_eq!(limiter.counts().1, 1);
    }
}
