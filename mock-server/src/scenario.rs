//! Scenario files: one JSON document describes a situation to reproduce (a world, the clock, a
//! seed, fault rules, a rate limit, requests that set up the initial state, and a script of
//! timed requests run on the mock's clock), and what a client should then see (`expect`, which
//! the scenario's test checks; the mock does not run it). `serve --scenario FILE` starts with
//! one, `POST /__admin/scenario` loads one into a running mock, `wxcc-mock scenario check FILE`
//! says what is wrong with one. The format is `schemas/json/scenario.json`.
//!
//! Setup and script steps are requests to the mock's own router (WxCC routes with a world
//! token, `/__admin` routes), so a scenario can do exactly what a client or an operator can,
//! and every step is journaled like any other request.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, header};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tower::ServiceExt;
use wxcc_schemas::SchemaId;

use crate::clock::ClockMode;
use crate::faults::RuleSpec;
use crate::rate::RateLimit;
use crate::state::AppState;
use crate::world::World;

/// How many script failures a running scenario keeps (later ones are counted).
pub const FAILURES_KEPT: usize = 100;

/// The largest answer a step reads, bytes.
const ANSWER_LIMIT: usize = 16 << 20;

/// Endpoints a setup or script step may not call: moving the clock from the clock's own
/// timer would wait for itself; a reset or a new scenario would cut the script short.
const NOT_IN_STEPS: &[&str] = &["adminClockAdvance", "adminClockSet", "adminReset", "adminLoadScenario"];

/// The clock a scenario needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClockSpec {
    /// System or virtual.
    pub mode: ClockMode,
    /// Virtual: where it stands at load, epoch ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<i64>,
}

/// A time after the load: ms, or `5s`, `2m`, `500ms`, `1h`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Offset {
    /// Milliseconds.
    Ms(u64),
    /// A number and a unit.
    Text(String),
}

impl Offset {
    /// In ms (the schema has checked the text).
    pub fn ms(&self) -> u64 {
        match self {
            Offset::Ms(ms) => *ms,
            Offset::Text(text) => parse_offset(text).unwrap_or_default(),
        }
    }
}

/// `5s` → 5000; `None` if it is not a number and one of ms, s, m, h.
pub fn parse_offset(text: &str) -> Option<u64> {
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().ok()?;
    let factor = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return None,
    };
    n.checked_mul(factor)
}

/// One request of a setup or a script.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepRequest {
    /// The method.
    pub method: String,
    /// The path, query included.
    pub path: String,
    /// A world token's name, or a `{{saved.accessToken}}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Other headers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// The JSON body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    /// Saves the JSON answer under this name.
    #[serde(default, rename = "as", skip_serializing_if = "Option::is_none")]
    pub save_as: Option<String>,
    /// The status it must answer (default: below 400).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// For people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// One timed step of a script.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// When, after the load.
    pub at: Offset,
    /// What.
    #[serde(flatten)]
    pub request: StepRequest,
}

/// A scenario (see the module).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Scenario {
    /// Its name.
    pub name: String,
    /// What it reproduces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// A world file's path (relative to the scenario) or the world inline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub world: Option<Value>,
    /// The clock it needs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock: Option<ClockSpec>,
    /// The default seed of its fault rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// `N/min` per client id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<String>,
    /// Fault rules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<RuleSpec>,
    /// Values for `{{name}}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub vars: BTreeMap<String, String>,
    /// Requests sent at load.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub setup: Vec<StepRequest>,
    /// Requests sent on the clock.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub script: Vec<Step>,
    /// What a client sees (checked by the scenario's test, not by the mock).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expect: Vec<Value>,
    #[serde(default, rename = "$schema", skip_serializing_if = "Option::is_none")]
    schema: Option<String>,
}

/// Why a scenario cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read, or its world could not be loaded.
    #[error("{0}")]
    Read(String),
    /// Not JSON.
    #[error("not JSON: {0}")]
    Json(String),
    /// What is wrong with it, one problem per entry.
    #[error("{}", .0.join("\n"))]
    Invalid(Vec<String>),
}

/// Why a scenario did not load into a running mock.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    /// It does not fit the running mock (its world or clock).
    #[error("{0}")]
    Conflict(String),
    /// It is wrong in itself.
    #[error("{0}")]
    Invalid(String),
    /// A setup request did not answer what it should (the state is as far as setup got).
    #[error("{0}")]
    Setup(String),
}

impl Scenario {
    /// Parses and checks a scenario (all but its world and token names: see
    /// [`Scenario::problems`]).
    pub fn parse(text: &str) -> Result<Scenario, ScenarioError> {
        let value: Value = serde_json::from_str(text).map_err(|e| ScenarioError::Json(e.to_string()))?;
        Scenario::from_value(value)
    }

    /// Like [`Scenario::parse`], from JSON already read.
    pub fn from_value(value: Value) -> Result<Scenario, ScenarioError> {
        let scenario = Scenario::shaped(value)?;
        let problems = scenario.problems(None);
        if problems.is_empty() { Ok(scenario) } else { Err(ScenarioError::Invalid(problems)) }
    }

    /// A scenario that fits the schema, not yet checked further (see [`Scenario::problems`];
    /// [`load`] checks it against the running mock's world).
    pub fn shaped(value: Value) -> Result<Scenario, ScenarioError> {
        wxcc_schemas::validate(SchemaId::Scenario, &value)
            .map_err(|violations| ScenarioError::Invalid(violations.iter().map(ToString::to_string).collect()))?;
        serde_json::from_value(value).map_err(|e| ScenarioError::Invalid(vec![e.to_string()]))
    }

    /// Reads a scenario file and the world it names (a path is relative to the file), checked
    /// against that world (or the embedded one).
    pub fn from_file(path: &Path) -> Result<(Scenario, Option<World>), ScenarioError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ScenarioError::Read(format!("reading the scenario {}: {e}", path.display())))?;
        let scenario = Scenario::parse(&text)?;
        let world = match &scenario.world {
            Some(Value::String(relative)) => {
                let at = path.parent().unwrap_or(Path::new(".")).join(relative);
                let world = World::from_file(&at)
                    .map_err(|e| ScenarioError::Read(format!("loading the scenario's world {}: {e}", at.display())))?;
                Some(world)
            }
            Some(inline) => Some(
                World::from_json(&inline.to_string())
                    .map_err(|e| ScenarioError::Read(format!("the scenario's inline world: {e}")))?,
            ),
            None => None,
        };
        let embedded = World::default_world();
        let problems = scenario.problems(Some(world.as_ref().unwrap_or(&embedded)));
        if problems.is_empty() { Ok((scenario, world)) } else { Err(ScenarioError::Invalid(problems)) }
    }

    /// Its rate limit, parsed.
    pub fn rate_limit(&self) -> Option<RateLimit> {
        self.rate_limit.as_deref().and_then(|text| text.parse().ok())
    }

    /// The script in the order it runs: by time, the same time in file order.
    pub fn ordered_script(&self) -> Vec<&Step> {
        let mut steps: Vec<&Step> = self.script.iter().collect();
        steps.sort_by_key(|s| s.at.ms());
        steps
    }

    /// Everything wrong with it that the schema cannot say: fault rules, requests to routes the
    /// mock does not serve (or a step may not call), setup and script bodies that break their
    /// route's schema (a check's request may, on purpose),
    /// `{{names}}` used before they exist, and, given the world, token names it does not have.
    pub fn problems(&self, world: Option<&World>) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(text) = &self.rate_limit
            && let Err(e) = text.parse::<RateLimit>()
        {
            problems.push(format!("/rateLimit: {e}"));
        }
        for (i, rule) in self.faults.iter().enumerate() {
            if let Err(e) = rule.check() {
                problems.push(format!("/faults/{i}: {e}"));
            }
        }
        let mut known: HashSet<String> = self.vars.keys().cloned().collect();
        for (i, request) in self.setup.iter().enumerate() {
            check_request(request, &format!("/setup/{i}"), &known, world, true, &mut problems);
            known.extend(request.save_as.clone());
        }
        let mut order: Vec<(usize, &Step)> = self.script.iter().enumerate().collect();
        order.sort_by_key(|(_, s)| s.at.ms());
        for (i, step) in order {
            check_request(&step.request, &format!("/script/{i}"), &known, world, true, &mut problems);
            known.extend(step.request.save_as.clone());
        }
        // The checks are a client's: they see the vars and what they saved themselves.
        let mut known: HashSet<String> = self.vars.keys().cloned().collect();
        let mut connections = HashSet::new();
        let mut last_at = 0;
        for (i, check) in self.expect.iter().enumerate() {
            let at =
                check.get("at").and_then(|a| serde_json::from_value::<Offset>(a.clone()).ok()).map_or(0, |a| a.ms());
            if at < last_at {
                problems
                    .push(format!("/expect/{i}/at: checks run in time order; this one is earlier than the one before"));
            }
            last_at = at;
            if let Some(request) = check.get("request") {
                match serde_json::from_value::<StepRequest>(request.clone()) {
                    Ok(request) => {
                        check_request(&request, &format!("/expect/{i}/request"), &known, world, false, &mut problems);
                        known.extend(request.save_as);
                    }
                    Err(e) => problems.push(format!("/expect/{i}/request: {e}")),
                }
            }
            if let Some(token) = check.get("connect").and_then(Value::as_str) {
                check_token(token, &format!("/expect/{i}/connect"), &known, world, &mut problems);
                connections.extend(check.get("as").and_then(Value::as_str).map(str::to_owned));
            }
            for key in ["receive", "closed"] {
                if let Some(name) = check.get(key).and_then(Value::as_str)
                    && !connections.contains(name)
                {
                    problems.push(format!("/expect/{i}/{key}: no connection named {name:?} was opened before"));
                }
            }
        }
        problems
    }
}

/// The `{{...}}` in `text`: `(whole, name, path)`.
fn templates(text: &str) -> Vec<(&str, &str, &str)> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let Some(len) = rest[start..].find("}}") else { break };
        let whole = &rest[start..start + len + 2];
        let inner = whole[2..whole.len() - 2].trim();
        let (name, path) = inner.split_once('.').unwrap_or((inner, ""));
        found.push((whole, name, path));
        rest = &rest[start + len + 2..];
    }
    found
}

fn strings_of(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| strings_of(v, out)),
        Value::Object(map) => map.iter().for_each(|(k, v)| {
            out.push(k.clone());
            strings_of(v, out);
        }),
        _ => {}
    }
}

fn check_names(text: &str, at: &str, known: &HashSet<String>, problems: &mut Vec<String>) {
    for (whole, name, _) in templates(text) {
        if !known.contains(name) {
            problems.push(format!(
                "{at}: {whole} names {name:?}, which is neither a var nor saved (\"as\") by an earlier request"
            ));
        }
    }
}

fn check_token(token: &str, at: &str, known: &HashSet<String>, world: Option<&World>, problems: &mut Vec<String>) {
    if token.contains("{{") {
        check_names(token, at, known, problems);
    } else if let Some(world) = world
        && world.token_named(token).is_none()
    {
        let names: Vec<&str> = world.tokens.iter().map(|t| t.name()).collect();
        problems.push(format!(
            "{at}: {token:?} is not one of the world's tokens ({}); name one, or use {{{{saved.accessToken}}}} from POST /__admin/tokens",
            names.join(", ")
        ));
    }
}

fn check_request(
    request: &StepRequest,
    at: &str,
    known: &HashSet<String>,
    world: Option<&World>,
    a_step: bool,
    problems: &mut Vec<String>,
) {
    check_names(&request.path, &format!("{at}/path"), known, problems);
    if let Some(token) = &request.token {
        check_token(token, &format!("{at}/token"), known, world, problems);
    }
    let mut strings = Vec::new();
    if let Some(body) = &request.body {
        strings_of(body, &mut strings);
    }
    strings.extend(request.headers.values().cloned());
    for text in &strings {
        check_names(text, &format!("{at}/body"), known, problems);
    }
    let Ok(method) = request.method.parse::<Method>() else {
        problems.push(format!("{at}/method: {:?} is not a method", request.method));
        return;
    };
    let mut concrete = request.path.clone();
    for (whole, ..) in templates(&request.path) {
        concrete = concrete.replacen(whole, "x", 1);
    }
    let Some(endpoint) = crate::routes::endpoint_for(&method, &concrete) else {
        problems.push(format!("{at}: the mock serves no {} {}", request.method, request.path));
        return;
    };
    if a_step && NOT_IN_STEPS.contains(&endpoint.id) {
        problems.push(format!(
            "{at}: a setup or script step cannot call {} {} (it would move the clock from the clock's own timer, or cut the script short)",
            endpoint.method, endpoint.path
        ));
    }
    let templated = strings.iter().any(|s| s.contains("{{"));
    // A check's request is a client's, which may be off-contract on purpose (the forum case).
    if let (Some(spec), Some(body)) = (endpoint.request, &request.body)
        && a_step
        && !templated
        && let Err(violations) = wxcc_schemas::validate(spec.schema, body)
    {
        for v in violations {
            problems.push(format!("{at}/body: {} {} takes {}: {v}", endpoint.method, endpoint.path, spec.schema));
        }
    }
}

/// Sends steps to the mock's own router, with the vars and what earlier steps saved.
struct Runner {
    router: Router,
    state: AppState,
    vars: BTreeMap<String, String>,
    saved: HashMap<String, Value>,
}

impl Runner {
    fn new(state: &AppState, vars: BTreeMap<String, String>) -> Runner {
        Runner { router: crate::routes::build_router(state.clone()), state: state.clone(), vars, saved: HashMap::new() }
    }

    fn expand(&self, text: &str) -> Result<String, String> {
        let mut out = text.to_owned();
        for (whole, name, path) in templates(text) {
            let value = match (self.vars.get(name), self.saved.get(name)) {
                (Some(var), _) if path.is_empty() => var.clone(),
                (_, Some(saved)) => {
                    let pointer = if path.is_empty() { String::new() } else { format!("/{}", path.replace('.', "/")) };
                    match saved.pointer(&pointer) {
                        Some(Value::String(s)) => s.clone(),
                        Some(Value::Null) | None => {
                            return Err(format!("{whole}: the answer saved as {name:?} has nothing at {path:?}"));
                        }
                        Some(other) => other.to_string(),
                    }
                }
                _ => return Err(format!("{whole}: no var or saved answer named {name:?}")),
            };
            out = out.replacen(whole, &value, 1);
        }
        Ok(out)
    }

    fn expand_value(&self, value: &Value) -> Result<Value, String> {
        Ok(match value {
            Value::String(s) => Value::String(self.expand(s)?),
            Value::Array(items) => Value::Array(items.iter().map(|v| self.expand_value(v)).collect::<Result<_, _>>()?),
            Value::Object(map) => Value::Object(
                map.iter().map(|(k, v)| Ok((self.expand(k)?, self.expand_value(v)?))).collect::<Result<_, String>>()?,
            ),
            other => other.clone(),
        })
    }

    /// Sends one request; says what went wrong when it did not answer its status.
    async fn send(&mut self, request: &StepRequest) -> Result<u16, String> {
        let path = self.expand(&request.path)?;
        let what = format!("{} {path}", request.method);
        let mut builder = Request::builder().method(request.method.as_str()).uri(&path);
        let token = match &request.token {
            Some(t) if t.contains("{{") => Some(self.expand(t)?),
            Some(name) => Some(
                self.state
                    .world()
                    .token_named(name)
                    .map(|t| t.access_token.clone())
                    .ok_or_else(|| format!("{what}: the world has no token {name:?}"))?,
            ),
            None if path.starts_with("/__admin") => self.state.options().access.admin_token.clone(),
            None => None,
        };
        if let Some(token) = token {
            builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        for (name, value) in &request.headers {
            builder = builder.header(name.as_str(), self.expand(value)?);
        }
        let body = match &request.body {
            Some(body) => {
                builder = builder.header(header::CONTENT_TYPE, "application/json");
                Body::from(serde_json::to_vec(&self.expand_value(body)?).unwrap_or_default())
            }
            None => Body::empty(),
        };
        let built = builder.body(body).map_err(|e| format!("{what}: {e}"))?;
        let answer = self.router.clone().oneshot(built).await.map_err(|e| format!("{what}: {e}"))?;
        let status = answer.status().as_u16();
        let bytes = axum::body::to_bytes(answer.into_body(), ANSWER_LIMIT).await.unwrap_or_default();
        let json: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let fits = request.status.map_or(status < 400, |want| want == status);
        if !fits {
            let wanted = request.status.map_or_else(|| "below 400".to_owned(), |s| s.to_string());
            // An error's body explains it and holds no secret; a success's might (a minted token).
            let said = if status >= 400 { format!(": {}", String::from_utf8_lossy(&bytes)) } else { String::new() };
            return Err(format!("{what} answered {status}, not {wanted}{said}"));
        }
        if let Some(name) = &request.save_as {
            self.saved.insert(name.clone(), json);
        }
        Ok(status)
    }
}

/// How far a loaded scenario's script got.
#[derive(Debug, Default)]
pub struct Progress {
    done: AtomicUsize,
    next_at: AtomicI64,
    failed: AtomicU64,
    failures: Mutex<Vec<String>>,
}

impl Progress {
    fn fail(&self, why: String) {
        let count = self.failed.fetch_add(1, Ordering::Relaxed) + 1;
        let mut kept = self.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if kept.len() < FAILURES_KEPT {
            kept.push(why);
        } else if count == FAILURES_KEPT as u64 + 1 {
            tracing::warn!("scenario: more than {FAILURES_KEPT} failed steps; later ones are counted, not kept");
        }
    }
}

/// A scenario loaded into a running mock.
#[derive(Debug)]
pub struct Running {
    name: String,
    loaded_at: i64,
    setup: usize,
    steps: usize,
    faults: usize,
    rate_limit: Option<RateLimit>,
    progress: Arc<Progress>,
    script: Option<tokio::task::AbortHandle>,
}

impl Running {
    /// Stops its script.
    pub fn stop(&self) {
        if let Some(script) = &self.script {
            script.abort();
        }
    }

    /// As `GET /__admin/scenario` shows it.
    pub fn view(&self) -> Value {
        let done = self.progress.done.load(Ordering::Relaxed);
        let failures = self.progress.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        json!({
            "loaded": true,
            "name": self.name,
            "loadedAt": self.loaded_at,
            "setup": self.setup,
            "faults": self.faults,
            "rateLimit": self.rate_limit.map(|l| l.to_string()),
            "script": {
                "steps": self.steps,
                "done": done,
                "nextAt": (done < self.steps).then(|| self.progress.next_at.load(Ordering::Relaxed)),
                "failed": self.progress.failed.load(Ordering::Relaxed),
                "failures": failures,
            },
        })
    }
}

/// Loads `scenario` into a running mock: checks it fits (its inline world is the mock's, its
/// clock is the mock's), resets the mock, sets its clock start, rate limit and fault rules,
/// sends its setup, and starts its script on the clock. Answers what `GET /__admin/scenario`
/// then shows.
pub async fn load(state: &AppState, scenario: &Scenario) -> Result<Value, LoadError> {
    match &scenario.world {
        Some(Value::String(path)) => {
            return Err(LoadError::Invalid(format!(
                "the scenario names its world by path ({path:?}); a running mock has its world already: give the world inline, leave it out, or start the mock with serve --scenario"
            )));
        }
        Some(inline) => {
            let theirs = World::from_json(&inline.to_string()).map_err(|e| LoadError::Invalid(e.to_string()))?;
            if serde_json::to_value(&theirs).ok() != serde_json::to_value(&**state.world()).ok() {
                return Err(LoadError::Conflict(
                    "the scenario's world is not the one this mock runs: start the mock with serve --scenario to run it on its own world".to_owned(),
                ));
            }
        }
        None => {}
    }
    let problems = scenario.problems(Some(state.world()));
    if !problems.is_empty() {
        return Err(LoadError::Invalid(problems.join("; ")));
    }
    if let Some(clock) = scenario.clock {
        if clock.mode != state.clock().mode() {
            return Err(LoadError::Conflict(format!(
                "the scenario needs the {:?} clock and this mock runs on the {:?} one: restart it with --clock {} (or serve --scenario)",
                clock.mode,
                state.clock().mode(),
                if clock.mode == ClockMode::Virtual { "virtual" } else { "system" }
            )));
        }
        if let Some(start) = clock.start {
            state.clock().set(start).await.map_err(|e| LoadError::Conflict(e.to_string()))?;
        }
    }
    state.reset();
    let rate_limit = scenario.rate_limit().or(state.options().rate_limit);
    state.rate_limiter().set(rate_limit);
    for (i, rule) in scenario.faults.iter().enumerate() {
        let mut rule = rule.clone();
        if rule.seed.is_none() {
            rule.seed = scenario.seed.map(|seed| seed.wrapping_add(i as u64));
        }
        rule.name.get_or_insert_with(|| format!("scenario {}", scenario.name));
        state.faults().add(rule).map_err(|e| LoadError::Invalid(format!("/faults/{i}: {e}")))?;
    }
    let mut runner = Runner::new(state, scenario.vars.clone());
    for (i, request) in scenario.setup.iter().enumerate() {
        runner.send(request).await.map_err(|why| LoadError::Setup(format!("setup step {i}: {why}")))?;
    }
    let loaded_at = state.now_ms();
    let steps: Vec<Step> = scenario.ordered_script().into_iter().cloned().collect();
    let progress = Arc::new(Progress::default());
    let due = move |step: &Step| loaded_at.saturating_add(i64::try_from(step.at.ms()).unwrap_or(i64::MAX));
    let first_due = steps.first().map(due);
    let script = first_due.map(|first| {
        let (clock, progress, name) = (state.clock().clone(), progress.clone(), scenario.name.clone());
        // Registered now, before the load answers: a clock advanced right after it fires it.
        let mut pending = Some(clock.sleep_until(first));
        progress.next_at.store(first, Ordering::Relaxed);
        let task = tokio::spawn(async move {
            for (i, step) in steps.iter().enumerate() {
                let Some(sleep) = pending.take() else { break };
                let busy = sleep.await;
                if let Err(why) = runner.send(&step.request).await {
                    tracing::warn!("scenario {name}: script step {i} (at {} ms): {why}", step.at.ms());
                    progress.fail(format!("step {i} (at {} ms): {why}", step.at.ms()));
                }
                // The next timer is registered before this step's guard is dropped.
                if let Some(next) = steps.get(i + 1) {
                    progress.next_at.store(due(next), Ordering::Relaxed);
                    pending = Some(clock.sleep_until(due(next)));
                }
                progress.done.fetch_add(1, Ordering::Relaxed);
                drop(busy);
            }
            tracing::info!("scenario {name}: script done");
        });
        task.abort_handle()
    });
    let running = Running {
        name: scenario.name.clone(),
        loaded_at,
        setup: scenario.setup.len(),
        steps: scenario.script.len(),
        faults: scenario.faults.len(),
        rate_limit,
        progress,
        script,
    };
    let view = running.view();
    tracing::info!(
        "scenario {} loaded: {} setup requests, {} fault rules, {} script steps{}",
        running.name,
        running.setup,
        running.faults,
        running.steps,
        running.rate_limit.map(|l| format!(", rate limit {l}")).unwrap_or_default()
    );
    state.set_scenario(running);
    Ok(view)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_ms_or_a_number_with_a_unit() {
        assert_eq!(parse_offset("5s"), Some(5_000));
        assert_eq!(parse_offset("250ms"), Some(250));
        assert_eq!(parse_offset("2m"), Some(120_000));
        assert_eq!(parse_offset("1h"), Some(3_600_000));
        assert_eq!(parse_offset("5"), None);
        assert_eq!(parse_offset("5d"), None);
        assert_eq!(Offset::Ms(42).ms(), 42);
    }

    #[test]
    fn templates_are_found_with_their_name_and_path() {
        assert_eq!(
            templates("/__admin/tasks/{{call.id}}/answer?x={{ receiver }}"),
            vec![("{{call.id}}", "call", "id"), ("{{ receiver }}", "receiver", "")]
        );
        assert!(templates("no {{ end").is_empty());
    }

    #[test]
    fn a_scenario_that_calls_an_unknown_route_or_an_unsaved_name_or_a_bad_body_says_each_problem() {
        let text = json!({
            "name": "broken",
            "setup": [
                { "method": "POST", "path": "/v1/nowhere", "token": "agent1" },
                { "method": "POST", "path": "/__admin/tasks/{{call.id}}/answer" },
                { "method": "POST", "path": "/__admin/tasks", "body": { "mediaType": "fax" } },
                { "method": "POST", "path": "/__admin/clock/advance", "body": { "ms": 5 } }
            ],
            "expect": [
                { "at": "5s", "receive": "desk", "type": "AgentOfferContact" }
            ]
        })
        .to_string();
        let Err(ScenarioError::Invalid(problems)) = Scenario::parse(&text) else { panic!("refused") };
        let all = problems.join("\n");
        assert!(all.contains("/setup/0: the mock serves no POST /v1/nowhere"), "{all}");
        assert!(all.contains("/setup/1/path: {{call.id}} names \"call\""), "{all}");
        assert!(all.contains("/setup/2/body: POST /__admin/tasks takes admin-task-request"), "{all}");
        assert!(all.contains("/setup/3: a setup or script step cannot call POST /__admin/clock/advance"), "{all}");
        assert!(all.contains("/expect/0/receive: no connection named \"desk\""), "{all}");
        assert_eq!(problems.len(), 5, "{all}");
    }

    #[test]
    fn the_schema_names_a_misspelt_field() {
        let text = json!({ "name": "x", "scrpit": [] }).to_string();
        let Err(ScenarioError::Invalid(problems)) = Scenario::parse(&text) else { panic!("refused") };
        assert!(problems.iter().any(|p| p.contains("scrpit")), "{problems:?}");
    }

    #[test]
    fn a_token_name_the_world_lacks_is_a_problem_given_the_world() {
        let scenario = Scenario::parse(
            &json!({ "name": "x", "setup": [{ "method": "GET", "path": "/v1/subscriptions", "token": "nobody" }] })
                .to_string(),
        )
        .expect("fine without a world");
        let problems = scenario.problems(Some(&World::default_world()));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("\"nobody\" is not one of the world's tokens"), "{problems:?}");
    }
}
