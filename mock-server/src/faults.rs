//! Faults, seeded and reproducible: rules that make the mock misbehave on purpose, the way the
//! cloud or the network around it does (a 503 from the gateway, a reset, a slow answer, a webhook
//! that arrives twice, a websocket that drops).
//!
//! A rule names a channel (`http`, `webhook`, `websocket`), what it matches, an action, and how
//! often it fires (`times`, `probability`, `seed`). Rules are tried in the order they were added;
//! the first that matches *and* fires applies, and a match that does not fire (the draw said no)
//! moves on to the next rule. Each rule draws from its own generator, seeded by its `seed`, so
//! the same requests in the same order fire the same way on every run. The domain here knows no
//! HTTP types: callers describe what happens in [`HttpFacts`], [`WebhookFacts`] and
//! [`WebsocketFacts`], and get back a [`Fired`] to apply.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::Distribution;
use serde::{Deserialize, Serialize};

/// The request header that injects one fault into one request (as Prism's `Prefer`).
pub const FAULT_HEADER: axum::http::HeaderName = axum::http::HeaderName::from_static("x-wxcc-mock-fault");

/// How many rules the mock holds at once.
pub const MAX_RULES: usize = 256;

/// The longest latency or delay, ms (one hour).
pub const MAX_DELAY_MS: u64 = 3_600_000;

/// Where a rule applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// WxCC HTTP requests (not `/__admin`).
    #[default]
    Http,
    /// Webhook deliveries.
    Webhook,
    /// Messages the mock sends on the notification websocket.
    Websocket,
}

impl Channel {
    fn as_str(self) -> &'static str {
        match self {
            Channel::Http => "http",
            Channel::Webhook => "webhook",
            Channel::Websocket => "websocket",
        }
    }
}

/// A header a request must carry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderMatch {
    /// Its name (any case).
    pub name: String,
    /// Its value (`None`: present is enough).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// What a rule matches; every field given must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Match {
    /// http: the method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// http: the path (without the query), `*` for any run of characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The organisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_id: Option<String>,
    /// http, websocket: the user (email or id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// http: the token's client id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// http: a request header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<HeaderMatch>,
    /// webhook: the subscription.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_id: Option<String>,
    /// webhook: the event type; websocket: the message type (`*` as in `path`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
}

/// A log-normal latency.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LogNormal {
    /// The median, ms.
    pub median_ms: f64,
    /// The spread (σ of the underlying normal).
    pub sigma: f64,
}

/// An action as the admin API writes it (`{"kind": "status", "status": 503}`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ActionSpec {
    /// What to do.
    pub kind: String,
    /// latency (fixed), delay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ms: Option<u64>,
    /// latency: `[min, max]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uniform: Option<[u64; 2]>,
    /// latency: log-normal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_normal: Option<LogNormal>,
    /// status: the status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// status 429/503: `Retry-After`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// reorder: how many later events overtake it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<u32>,
}

/// A rule as the admin API takes it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuleSpec {
    /// A name for the journal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The channel.
    #[serde(default)]
    pub on: Channel,
    /// What it matches.
    #[serde(default, rename = "match")]
    pub matches: Match,
    /// What it does.
    pub action: ActionSpec,
    /// At most this many times.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u64>,
    /// The chance it fires on a match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probability: Option<f64>,
    /// Its generator's seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

impl RuleSpec {
    /// The action the rule takes, or what is wrong with it.
    pub fn check(&self) -> Result<Action, String> {
        let action = Action::parse(&self.action, self.on)?;
        let misplaced = self.matches.misplaced(self.on);
        if !misplaced.is_empty() {
            return Err(format!("{} rules cannot match on {}", self.on.as_str(), misplaced.join(", ")));
        }
        if let Some(p) = self.probability
            && !(0.0..=1.0).contains(&p)
        {
            return Err(format!("probability {p}: between 0 and 1"));
        }
        Ok(action)
    }
}

/// How long to wait.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Latency {
    /// Always this long.
    Fixed(u64),
    /// Between the two, uniformly.
    Uniform(u64, u64),
    /// Log-normally around a median.
    LogNormal(LogNormal),
}

impl Latency {
    fn draw(self, rng: &mut ChaCha8Rng) -> u64 {
        match self {
            Latency::Fixed(ms) => ms,
            Latency::Uniform(low, high) => rng.random_range(low..=high),
            Latency::LogNormal(spec) => rand_distr::LogNormal::new(spec.median_ms.ln(), spec.sigma)
                .map_or(spec.median_ms, |d| d.sample(rng))
                .clamp(0.0, MAX_DELAY_MS as f64) as u64,
        }
    }
}

/// What a fired rule does.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Action {
    /// http: answer late (then as usual).
    Latency(Latency),
    /// http: answer this status in the path's envelope, without running the request; with
    /// `Retry-After` (and no body) when `retry_after` is set. webhook: the receiver answers
    /// this status (with `Retry-After`) to an attempt, which is not sent.
    Status {
        /// The status.
        status: u16,
        /// `Retry-After` seconds.
        retry_after: Option<u64>,
    },
    /// http: reset the connection instead of answering.
    Reset,
    /// http: close the connection without a byte.
    Empty,
    /// http: run the request, then cut its answer's JSON short.
    Malformed,
    /// webhook: never deliver; websocket: never send the message.
    Drop,
    /// webhook: deliver twice (same event id).
    Duplicate,
    /// webhook: let this many later events go first.
    Reorder(u32),
    /// webhook, websocket: hold it this long on the mock's clock.
    Delay(u64),
    /// webhook: sign with the wrong secret.
    BadSignature,
    /// websocket: drop the connection (no close frame) instead of sending the message.
    Disconnect,
}

impl Action {
    fn kinds(channel: Channel) -> &'static [&'static str] {
        match channel {
            Channel::Http => &["latency", "status", "reset", "empty", "malformed"],
            Channel::Webhook => &["status", "drop", "duplicate", "reorder", "delay", "badSignature"],
            Channel::Websocket => &["drop", "delay", "disconnect"],
        }
    }

    /// The action `spec` describes on `channel`, or why it cannot be.
    pub fn parse(spec: &ActionSpec, channel: Channel) -> Result<Action, String> {
        let kinds = Action::kinds(channel);
        if !kinds.contains(&spec.kind.as_str()) {
            return Err(format!(
                "action kind {:?} does not apply to {} rules; they take {}",
                spec.kind,
                channel.as_str(),
                kinds.join(", ")
            ));
        }
        let ms = |what: &str| -> Result<u64, String> {
            let ms = spec.ms.ok_or_else(|| format!("a {what} action needs ms"))?;
            if ms > MAX_DELAY_MS {
                return Err(format!("ms is at most {MAX_DELAY_MS} (one hour)"));
            }
            Ok(ms)
        };
        Ok(match spec.kind.as_str() {
            "latency" => {
                let given = [spec.ms.is_some(), spec.uniform.is_some(), spec.log_normal.is_some()];
                if given.iter().filter(|g| **g).count() != 1 {
                    return Err(
                        "a latency action takes exactly one of ms, uniform [min, max] or logNormal {medianMs, sigma}"
                            .to_owned(),
                    );
                }
                if let Some([a, b]) = spec.uniform {
                    // Either order: a JSON Schema cannot say "min ≤ max", so the mock does not ask.
                    let (low, high) = (a.min(b), a.max(b));
                    if high > MAX_DELAY_MS {
                        return Err(format!("uniform is [min, max] with both ≤ {MAX_DELAY_MS}"));
                    }
                    Action::Latency(Latency::Uniform(low, high))
                } else if let Some(log_normal) = spec.log_normal {
                    let ok = log_normal.median_ms > 0.0
                        && log_normal.median_ms <= MAX_DELAY_MS as f64
                        && (0.0..=10.0).contains(&log_normal.sigma);
                    if !ok {
                        return Err("logNormal takes medianMs in (0, 3600000] and sigma in [0, 10]".to_owned());
                    }
                    Action::Latency(Latency::LogNormal(log_normal))
                } else {
                    Action::Latency(Latency::Fixed(ms("latency")?))
                }
            }
            "status" => {
                let status = spec.status.ok_or("a status action needs status")?;
                if !(400..=599).contains(&status) {
                    return Err(format!("status {status}: a fault answers 400 to 599"));
                }
                let retry_after = match (status, spec.retry_after) {
                    (429, given) => Some(given.unwrap_or(1)),
                    (503, given) => given,
                    (_, Some(_)) => return Err("retryAfter goes with status 429 or 503".to_owned()),
                    (_, None) => None,
                };
                Action::Status { status, retry_after }
            }
            "reset" => Action::Reset,
            "empty" => Action::Empty,
            "malformed" => Action::Malformed,
            "drop" => Action::Drop,
            "duplicate" => Action::Duplicate,
            "reorder" => Action::Reorder(spec.window.filter(|w| *w >= 1).ok_or("a reorder action needs window ≥ 1")?),
            "delay" => Action::Delay(ms("delay")?),
            "badSignature" => Action::BadSignature,
            "disconnect" => Action::Disconnect,
            other => return Err(format!("unknown action kind {other:?}")),
        })
    }

    /// The `X-Wxcc-Mock-Fault` header's action: `status=503`, `status=429;retryAfter=2`,
    /// `latency=200`, `latency=100..900`, `reset`, `empty` or `malformed`.
    pub fn from_header(text: &str) -> Result<Action, String> {
        let mut parts = text.split(';').map(str::trim);
        let head = parts.next().unwrap_or_default();
        let (kind, value) = head.split_once('=').map_or((head, None), |(k, v)| (k.trim(), Some(v.trim())));
        let mut spec = ActionSpec { kind: kind.to_owned(), ..ActionSpec::default() };
        let number =
            |v: &str, what: &str| v.parse::<u64>().map_err(|_| format!("{what} takes a whole number, not {v:?}"));
        match (kind, value) {
            ("status", Some(v)) => {
                spec.status = Some(u16::try_from(number(v, "status")?).map_err(|_| format!("status {v}: 400 to 599"))?);
            }
            ("latency", Some(v)) => match v.split_once("..") {
                Some((low, high)) => spec.uniform = Some([number(low, "latency")?, number(high, "latency")?]),
                None => spec.ms = Some(number(v, "latency")?),
            },
            ("reset" | "empty" | "malformed", None) => {}
            _ => {
                return Err(format!(
                    "{text:?} is not a fault: write status=503, status=429;retryAfter=2, latency=200, latency=100..900, reset, empty or malformed"
                ));
            }
        }
        for parameter in parts.filter(|p| !p.is_empty()) {
            match parameter.split_once('=') {
                Some(("retryAfter", v)) => spec.retry_after = Some(number(v.trim(), "retryAfter")?),
                _ => return Err(format!("{parameter:?}: the only parameter is retryAfter=N (with status=429 or 503)")),
            }
        }
        Action::parse(&spec, Channel::Http)
    }

    /// A few words for the journal and the console (`status 503`, `latency 212 ms`).
    pub fn describe(self, drawn_ms: Option<u64>) -> String {
        match self {
            Action::Latency(_) => format!("latency {} ms", drawn_ms.unwrap_or_default()),
            Action::Status { status, retry_after: Some(s) } => format!("status {status}, Retry-After {s}"),
            Action::Status { status, retry_after: None } => format!("status {status}"),
            Action::Reset => "connection reset".to_owned(),
            Action::Empty => "empty reply".to_owned(),
            Action::Malformed => "malformed JSON".to_owned(),
            Action::Drop => "dropped".to_owned(),
            Action::Duplicate => "duplicated".to_owned(),
            Action::Reorder(window) => format!("held back behind {window} later events"),
            Action::Delay(ms) => format!("delayed {ms} ms"),
            Action::BadSignature => "wrong signature".to_owned(),
            Action::Disconnect => "connection dropped".to_owned(),
        }
    }
}

/// A fault that fired: which rule, what to do, and how it is described.
#[derive(Debug, Clone, PartialEq)]
pub struct Fired {
    /// `fault-3 (gateway 503)`, or `X-Wxcc-Mock-Fault` for the header.
    pub rule: String,
    /// What to do.
    pub action: Action,
    /// A latency's drawn wait, ms.
    pub wait_ms: Option<u64>,
}

impl Fired {
    /// `fault-3 (gateway 503): status 503`.
    pub fn describe(&self) -> String {
        format!("{}: {}", self.rule, self.action.describe(self.wait_ms))
    }

    /// The fault the `X-Wxcc-Mock-Fault` header asks for.
    pub fn from_header(text: &str) -> Result<Fired, String> {
        let action = Action::from_header(text)?;
        let wait_ms = match action {
            Action::Latency(latency) => Some(latency.draw(&mut ChaCha8Rng::seed_from_u64(0))),
            _ => None,
        };
        Ok(Fired { rule: "X-Wxcc-Mock-Fault header".to_owned(), action, wait_ms })
    }
}

/// What an HTTP request offers to match on.
pub struct HttpFacts<'a> {
    /// The method.
    pub method: &'a str,
    /// The path, without the query.
    pub path: &'a str,
    /// The token's organisation, when the token is valid.
    pub org_id: Option<&'a str>,
    /// The token's user (email, id), when the token is valid.
    pub user: Option<(&'a str, &'a str)>,
    /// The token's client id, when the token is valid.
    pub client_id: Option<&'a str>,
    /// The request's headers, by lower-case name.
    pub header: &'a (dyn Fn(&str) -> Option<String> + 'a),
}

impl std::fmt::Debug for HttpFacts<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpFacts").field("method", &self.method).field("path", &self.path).finish_non_exhaustive()
    }
}

/// What a webhook delivery offers to match on.
#[derive(Debug, Clone, Copy)]
pub struct WebhookFacts<'a> {
    /// The subscription's organisation.
    pub org_id: &'a str,
    /// The subscription.
    pub subscription_id: &'a str,
    /// The event type as the subscription names it.
    pub event_type: &'a str,
}

/// What a websocket message offers to match on.
#[derive(Debug, Clone, Copy)]
pub struct WebsocketFacts<'a> {
    /// The agent's organisation.
    pub org_id: &'a str,
    /// The agent (email, id).
    pub user: (&'a str, &'a str),
    /// The message's types: its `type` and its `data.type` (`AgentStateChange` and
    /// `AgentStateChangeSuccess`; both `keepalive` for a keep-alive). A pattern matches either.
    pub message_types: (&'a str, &'a str),
}

/// Whether `text` matches `pattern`, where `*` stands for any run of characters.
pub fn glob(pattern: &str, text: &str) -> bool {
    let mut pieces = pattern.split('*');
    let first = pieces.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else { return false };
    let pieces: Vec<&str> = pieces.collect();
    let Some((last, middle)) = pieces.split_last() else { return rest.is_empty() };
    for piece in middle {
        match rest.find(piece) {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

fn same(want: Option<&String>, have: Option<&str>) -> bool {
    want.is_none_or(|want| have == Some(want.as_str()))
}

impl Match {
    fn http(&self, facts: &HttpFacts<'_>) -> bool {
        self.method.as_ref().is_none_or(|m| m.eq_ignore_ascii_case(facts.method))
            && self.path.as_ref().is_none_or(|p| glob(p, facts.path))
            && same(self.org_id.as_ref(), facts.org_id)
            && self.user.as_ref().is_none_or(|u| facts.user.is_some_and(|(email, id)| u == email || u == id))
            && same(self.client_id.as_ref(), facts.client_id)
            && self.header.as_ref().is_none_or(|h| {
                (facts.header)(&h.name.to_ascii_lowercase())
                    .is_some_and(|v| h.value.as_ref().is_none_or(|want| *want == v))
            })
    }

    fn webhook(&self, facts: &WebhookFacts<'_>) -> bool {
        same(self.org_id.as_ref(), Some(facts.org_id))
            && same(self.subscription_id.as_ref(), Some(facts.subscription_id))
            && self.event_type.as_ref().is_none_or(|p| glob(p, facts.event_type))
    }

    fn websocket(&self, facts: &WebsocketFacts<'_>) -> bool {
        same(self.org_id.as_ref(), Some(facts.org_id))
            && self.user.as_ref().is_none_or(|u| u == facts.user.0 || u == facts.user.1)
            && self.event_type.as_ref().is_none_or(|p| glob(p, facts.message_types.0) || glob(p, facts.message_types.1))
    }

    /// The fields that make no sense on `channel`.
    fn misplaced(&self, channel: Channel) -> Vec<&'static str> {
        let given = [
            ("method", self.method.is_some(), [true, false, false]),
            ("path", self.path.is_some(), [true, false, false]),
            ("orgId", self.org_id.is_some(), [true, true, true]),
            ("user", self.user.is_some(), [true, false, true]),
            ("clientId", self.client_id.is_some(), [true, false, false]),
            ("header", self.header.is_some(), [true, false, false]),
            ("subscriptionId", self.subscription_id.is_some(), [false, true, false]),
            ("eventType", self.event_type.is_some(), [false, true, true]),
        ];
        let column = channel as usize;
        given.iter().filter(|(_, set, fits)| *set && !fits[column]).map(|(name, ..)| *name).collect()
    }
}

/// A rule as `GET /__admin/faults` lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleView {
    /// `fault-N`.
    pub id: String,
    /// The rule as added.
    #[serde(flatten)]
    pub spec: RuleSpec,
    /// How many times it fired.
    pub fired: u64,
    /// How many more times it may fire (`None`: no limit).
    pub remaining: Option<u64>,
}

#[derive(Debug)]
struct Rule {
    id: String,
    label: String,
    spec: RuleSpec,
    action: Action,
    rng: ChaCha8Rng,
    fired: u64,
}

impl Rule {
    fn spent(&self) -> bool {
        self.spec.times.is_some_and(|t| self.fired >= t)
    }

    /// Draws (when the rule has a probability below 1) and counts a firing.
    fn fire(&mut self) -> Option<Fired> {
        if self.spent() {
            return None;
        }
        let probability = self.spec.probability.unwrap_or(1.0);
        if probability < 1.0 && !self.rng.random_bool(probability.clamp(0.0, 1.0)) {
            return None;
        }
        self.fired += 1;
        let wait_ms = match self.action {
            Action::Latency(latency) => Some(latency.draw(&mut self.rng)),
            _ => None,
        };
        Some(Fired { rule: self.label.clone(), action: self.action, wait_ms })
    }

    fn view(&self) -> RuleView {
        RuleView {
            id: self.id.clone(),
            spec: self.spec.clone(),
            fired: self.fired,
            remaining: self.spec.times.map(|t| t.saturating_sub(self.fired)),
        }
    }
}

/// The rules of a running mock (see the module). Cheap to consult while there are none.
#[derive(Debug, Default)]
pub struct Faults {
    rules: Mutex<Vec<Rule>>,
    /// Whether any rule exists per channel, so the common case takes no lock.
    armed: [AtomicBool; 3],
    next_id: AtomicU64,
    fired: AtomicU64,
}

/// Why a rule was not added.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddError {
    /// The rule makes no sense (the reason).
    #[error("{0}")]
    Invalid(String),
    /// The mock already holds [`MAX_RULES`].
    #[error("the mock holds at most {MAX_RULES} fault rules; delete some first")]
    Full,
}

impl Faults {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Rule>> {
        self.rules.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn rearm(&self, rules: &[Rule]) {
        for channel in [Channel::Http, Channel::Webhook, Channel::Websocket] {
            self.armed[channel as usize].store(rules.iter().any(|r| r.spec.on == channel), Ordering::Relaxed);
        }
    }

    /// Adds a rule, or says what is wrong with it.
    pub fn add(&self, spec: RuleSpec) -> Result<RuleView, AddError> {
        let action = spec.check().map_err(AddError::Invalid)?;
        let mut rules = self.lock();
        if rules.len() >= MAX_RULES {
            tracing::warn!("fault rule refused: the mock already holds {MAX_RULES}");
            return Err(AddError::Full);
        }
        let id = format!("fault-{}", self.next_id.fetch_add(1, Ordering::Relaxed) + 1);
        let label = spec.name.as_ref().map_or_else(|| id.clone(), |name| format!("{id} ({name})"));
        let rng = ChaCha8Rng::seed_from_u64(spec.seed.unwrap_or(0));
        let rule = Rule { id, label, spec, action, rng, fired: 0 };
        let view = rule.view();
        rules.push(rule);
        self.rearm(&rules);
        Ok(view)
    }

    /// Every rule, in the order they are tried.
    pub fn list(&self) -> Vec<RuleView> {
        self.lock().iter().map(Rule::view).collect()
    }

    /// Removes one rule; whether it existed.
    pub fn remove(&self, id: &str) -> bool {
        let mut rules = self.lock();
        let before = rules.len();
        rules.retain(|r| r.id != id);
        self.rearm(&rules);
        rules.len() != before
    }

    /// Removes every rule.
    pub fn clear(&self) {
        let mut rules = self.lock();
        rules.clear();
        self.rearm(&rules);
    }

    /// How many faults fired since start (rules and the header).
    pub fn fired(&self) -> u64 {
        self.fired.load(Ordering::Relaxed)
    }

    /// Counts a fault the header injected.
    pub fn count_header(&self) {
        self.fired.fetch_add(1, Ordering::Relaxed);
    }

    fn first(&self, channel: Channel, applies: impl Fn(&Rule) -> bool) -> Option<Fired> {
        if !self.armed[channel as usize].load(Ordering::Relaxed) {
            return None;
        }
        let fired = self.lock().iter_mut().filter(|r| r.spec.on == channel && applies(r)).find_map(Rule::fire);
        if fired.is_some() {
            self.fired.fetch_add(1, Ordering::Relaxed);
        }
        fired
    }

    /// The fault for an HTTP request, if one fires.
    pub fn http(&self, facts: &HttpFacts<'_>) -> Option<Fired> {
        self.first(Channel::Http, |r| r.spec.matches.http(facts))
    }

    /// The fault for a webhook event (all its attempts), if one fires: every webhook action but
    /// `status`.
    pub fn webhook(&self, facts: &WebhookFacts<'_>) -> Option<Fired> {
        self.first(Channel::Webhook, |r| !matches!(r.action, Action::Status { .. }) && r.spec.matches.webhook(facts))
    }

    /// The answer a webhook receiver gives to one attempt, if a `status` rule fires: each
    /// attempt (retries included) draws anew, so `times: 3` fails three attempts.
    pub fn webhook_attempt(&self, facts: &WebhookFacts<'_>) -> Option<Fired> {
        self.first(Channel::Webhook, |r| matches!(r.action, Action::Status { .. }) && r.spec.matches.webhook(facts))
    }

    /// Whether any HTTP rule exists (so a request's facts are worth gathering).
    pub fn watches_http(&self) -> bool {
        self.armed[Channel::Http as usize].load(Ordering::Relaxed)
    }

    /// Whether any websocket rule exists (so a message's type is worth reading).
    pub fn watches_websocket(&self) -> bool {
        self.armed[Channel::Websocket as usize].load(Ordering::Relaxed)
    }

    /// The fault for a websocket message, if one fires.
    pub fn websocket(&self, facts: &WebsocketFacts<'_>) -> Option<Fired> {
        self.first(Channel::Websocket, |r| r.spec.matches.websocket(facts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: serde_json::Value) -> RuleSpec {
        serde_json::from_value(json).expect("a rule")
    }

    fn no_headers(_: &str) -> Option<String> {
        None
    }

    fn request<'a>(method: &'a str, path: &'a str) -> HttpFacts<'a> {
        HttpFacts { method, path, org_id: None, user: None, client_id: None, header: &no_headers }
    }

    #[test]
    fn a_glob_star_stands_for_any_run_of_characters_slashes_included() {
        assert!(glob("/v1/agents/*", "/v1/agents/login"));
        assert!(glob("/v1/*/login", "/v1/agents/login"));
        assert!(glob("*", ""));
        assert!(glob("/v1/tasks/*/accept", "/v1/tasks/abc/accept"));
        assert!(!glob("/v1/tasks/*/accept", "/v1/tasks/abc/accepted"));
        assert!(!glob("/v1/agents", "/v1/agents/login"));
        assert!(glob("agent:*", "agent:state_change"));
        assert!(!glob("a*a", "a"));
    }

    #[test]
    fn a_rule_with_times_fires_that_often_then_stays_listed_as_spent() {
        let faults = Faults::default();
        let view = faults
            .add(spec(serde_json::json!({"match": {"path": "/v1/agents/*"}, "action": {"kind": "status", "status": 503}, "times": 2})))
            .expect("added");
        assert_eq!((view.id.as_str(), view.remaining), ("fault-1", Some(2)));
        let login = request("POST", "/v1/agents/login");
        assert!(faults.http(&request("GET", "/v1/subscriptions")).is_none(), "another path");
        let fired = faults.http(&login).expect("fires");
        assert_eq!(fired.action, Action::Status { status: 503, retry_after: None });
        assert_eq!(fired.describe(), "fault-1: status 503");
        assert!(faults.http(&login).is_some());
        assert!(faults.http(&login).is_none(), "spent after two");
        assert_eq!(faults.list()[0].remaining, Some(0));
        assert_eq!(faults.list()[0].fired, 2);
        assert_eq!(faults.fired(), 2);
    }

    #[test]
    fn the_same_seed_fires_on_the_same_requests_and_another_seed_on_others() {
        let pattern = |seed: u64| {
            let faults = Faults::default();
            faults
                .add(spec(serde_json::json!({"action": {"kind": "reset"}, "probability": 0.5, "seed": seed})))
                .expect("added");
            (0..64).map(|_| faults.http(&request("GET", "/v1/subscriptions")).is_some()).collect::<Vec<_>>()
        };
        assert_eq!(pattern(7), pattern(7));
        assert_ne!(pattern(7), pattern(8));
        let fired = pattern(7).iter().filter(|f| **f).count();
        assert!((16..=48).contains(&fired), "about half of 64 fire: {fired}");
    }

    #[test]
    fn latency_is_drawn_from_its_distribution_within_bounds() {
        let faults = Faults::default();
        faults
            .add(spec(serde_json::json!({"action": {"kind": "latency", "uniform": [100, 200]}, "seed": 1})))
            .expect("uniform");
        let waits: Vec<u64> =
            (0..50).filter_map(|_| faults.http(&request("GET", "/x")).and_then(|f| f.wait_ms)).collect();
        assert_eq!(waits.len(), 50);
        assert!(waits.iter().all(|w| (100..=200).contains(w)), "{waits:?}");
        faults.clear();
        faults
            .add(spec(serde_json::json!({"action": {"kind": "latency", "uniform": [300, 250]}, "seed": 1})))
            .expect("uniform in either order");
        let waits: Vec<u64> =
            (0..50).filter_map(|_| faults.http(&request("GET", "/x")).and_then(|f| f.wait_ms)).collect();
        assert!(waits.iter().all(|w| (250..=300).contains(w)), "{waits:?}");
        assert!(waits.iter().any(|w| *w != waits[0]), "not all the same");
        faults.clear();
        faults
            .add(spec(serde_json::json!({"action": {"kind": "latency", "logNormal": {"medianMs": 200, "sigma": 0.5}}})))
            .expect("log-normal");
        let mut waits: Vec<u64> =
            (0..401).filter_map(|_| faults.http(&request("GET", "/x")).and_then(|f| f.wait_ms)).collect();
        waits.sort_unstable();
        assert!((150..=260).contains(&waits[200]), "the median is near 200: {}", waits[200]);
    }

    #[test]
    fn rules_match_on_user_org_client_and_header_and_the_first_that_fires_wins() {
        let faults = Faults::default();
        faults
            .add(spec(serde_json::json!({"name": "slow agent1", "match": {"user": "agent1@x", "header": {"name": "X-Test"}}, "action": {"kind": "latency", "ms": 5}})))
            .expect("added");
        faults
            .add(spec(serde_json::json!({"match": {"clientId": "crm", "method": "post"}, "action": {"kind": "empty"}})))
            .expect("added");
        let with_header = |name: &str| (name == "x-test").then(|| "1".to_owned());
        let mut facts = HttpFacts {
            method: "POST",
            path: "/v1/agents/login",
            org_id: Some("org"),
            user: Some(("agent1@x", "u1")),
            client_id: Some("crm"),
            header: &with_header,
        };
        let fired = faults.http(&facts).expect("the first rule");
        assert_eq!(fired.rule, "fault-1 (slow agent1)");
        assert_eq!(fired.wait_ms, Some(5));
        facts.header = &no_headers;
        assert_eq!(faults.http(&facts).expect("the second rule").action, Action::Empty);
        facts.client_id = Some("other");
        assert!(faults.http(&facts).is_none());
    }

    #[test]
    fn a_rule_that_makes_no_sense_is_refused_with_the_reason() {
        let faults = Faults::default();
        let refused = |json: serde_json::Value| faults.add(spec(json)).expect_err("refused").to_string();
        assert!(refused(serde_json::json!({"action": {"kind": "duplicate"}})).contains("does not apply to http rules"));
        assert!(
            refused(serde_json::json!({"on": "webhook", "action": {"kind": "drop"}, "match": {"path": "/x"}}))
                .contains("cannot match on path")
        );
        assert!(
            refused(serde_json::json!({"action": {"kind": "latency", "ms": 1, "uniform": [1, 2]}}))
                .contains("exactly one")
        );
        assert!(
            refused(serde_json::json!({"action": {"kind": "status", "status": 404, "retryAfter": 1}}))
                .contains("429 or 503")
        );
        assert!(refused(serde_json::json!({"on": "webhook", "action": {"kind": "reorder"}})).contains("window"));
        assert!(faults.list().is_empty());
    }

    #[test]
    fn the_header_reads_each_documented_form_and_refuses_others_with_the_grammar() {
        let action = |text: &str| Fired::from_header(text).map(|f| (f.action, f.wait_ms));
        assert_eq!(action("status=503"), Ok((Action::Status { status: 503, retry_after: None }, None)));
        assert_eq!(action("status=429"), Ok((Action::Status { status: 429, retry_after: Some(1) }, None)));
        assert_eq!(
            action("status=503; retryAfter=7"),
            Ok((Action::Status { status: 503, retry_after: Some(7) }, None))
        );
        assert_eq!(action("latency=250"), Ok((Action::Latency(Latency::Fixed(250)), Some(250))));
        assert!(matches!(action("latency=10..20"), Ok((Action::Latency(Latency::Uniform(10, 20)), Some(10..=20)))));
        assert_eq!(action("reset"), Ok((Action::Reset, None)));
        assert_eq!(action("empty"), Ok((Action::Empty, None)));
        assert_eq!(action("malformed"), Ok((Action::Malformed, None)));
        assert!(action("teapot").expect_err("refused").contains("status=503"));
        assert!(action("status=200").expect_err("refused").contains("400 to 599"));
        assert!(action("status=503;foo=1").expect_err("refused").contains("retryAfter"));
    }

    #[test]
    fn no_rule_on_a_channel_means_no_lock_and_no_fault() {
        let faults = Faults::default();
        faults.add(spec(serde_json::json!({"on": "webhook", "action": {"kind": "drop"}}))).expect("added");
        assert!(faults.http(&request("GET", "/x")).is_none());
        assert!(!faults.watches_websocket());
        let hook = WebhookFacts { org_id: "o", subscription_id: "s", event_type: "agent:login" };
        assert_eq!(faults.webhook(&hook).expect("fires").action, Action::Drop);
        assert!(faults.remove("fault-1"));
        assert!(!faults.remove("fault-1"));
        assert!(faults.webhook(&hook).is_none());
    }
}
