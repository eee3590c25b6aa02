//! Webhook delivery (facts §9): the CloudEvents-style envelope, the HMAC-SHA256 signature over
//! the exact bytes sent, one ordered queue per subscription, retries with exponential back-off
//! on the mock's clock (a receiver's 429 `Retry-After` wins), and `inactive` after repeated
//! failures.
//!
//! Each subscription has its own worker: a slow or failing subscription holds back only its own
//! later events, and subscriptions are delivered concurrently. Queues are bounded by bytes; an
//! event that does not fit is recorded as dropped, with its reason, and counted. The worker
//! renders and signs a body once (outside every lock) and sends the same bytes on every retry.
//! What happens is reported through [`Hooks`] (the state journals it and disables subscriptions).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::body::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::sync::{mpsc, watch};

use crate::clock::{Busy, Clock, Sleep};
use crate::engine::events::{Stamped, data_for};
use crate::engine::subscriptions::{ApiVersion, Subscription};
use crate::faults::{Action, Fired, WebhookFacts};

/// Retry, timing and size policy. Flags: `--webhook-retries`, `--webhook-backoff-ms`,
/// `--webhook-disable-after`.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// Attempts after the first.
    pub retries: u32,
    /// The first retry's delay; each later one doubles.
    pub backoff: Duration,
    /// Consecutive events that fail every attempt before the subscription turns `inactive`.
    pub disable_after: u32,
    /// How long a receiver has to answer (real time, even on a virtual clock).
    pub timeout: Duration,
    /// Bytes of events one subscription's queue may hold before new ones are dropped.
    pub queue_bytes: usize,
    /// Attempts kept in the delivery log.
    pub log_capacity: usize,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            retries: 5,
            backoff: Duration::from_millis(1000),
            disable_after: 3,
            timeout: Duration::from_secs(5),
            queue_bytes: 64 * 1024 * 1024,
            log_capacity: 1000,
        }
    }
}

impl DeliveryConfig {
    /// The delay before attempt `n` (1-based retries): backoff × 2^(n-1), capped at an hour.
    pub fn delay_before_retry(&self, n: u32) -> Duration {
        let factor = 2u32.saturating_pow(n.saturating_sub(1));
        self.backoff.saturating_mul(factor).min(Duration::from_secs(3600))
    }
}

/// A receiver's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// `Retry-After`, in seconds, if the receiver sent one.
    pub retry_after: Option<Duration>,
}

/// Where deliveries go: HTTP in the server, anything in tests.
pub trait Transport: Send + Sync + std::fmt::Debug + 'static {
    /// POSTs `body` with `headers` to `url`.
    fn post(
        &self,
        url: String,
        headers: Vec<(&'static str, String)>,
        body: Bytes,
    ) -> Pin<Box<dyn Future<Output = Result<Answer, String>> + Send>>;
}

/// The real transport: reqwest (connections kept alive per destination), no redirects followed.
/// The client for `https://` destinations, which reads the system's trusted certificates (some
/// 10 ms and 5 MB), is made on the first such delivery, not at start-up.
#[derive(Debug, Clone)]
pub struct HttpTransport {
    plain: reqwest::Client,
    secure: Arc<OnceLock<reqwest::Client>>,
}

impl HttpTransport {
    /// A client that never follows redirects (facts §9.3).
    pub fn new() -> HttpTransport {
        let plain = client(|builder| builder.tls_certs_only([]));
        HttpTransport { plain, secure: Arc::default() }
    }

    fn client_for(&self, url: &str) -> &reqwest::Client {
        if url.get(..6).is_some_and(|scheme| scheme.eq_ignore_ascii_case("https:")) {
            self.secure.get_or_init(|| client(|builder| builder))
        } else {
            &self.plain
        }
    }
}

/// The delivery client, with `tls` deciding which certificates it trusts.
fn client(tls: impl FnOnce(reqwest::ClientBuilder) -> reqwest::ClientBuilder) -> reqwest::Client {
    tls(reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("wxcc-mock/", env!("CARGO_PKG_VERSION")))
        .pool_max_idle_per_host(64)
        .dns_resolver(crate::access::GuardedResolver))
    .build()
    .unwrap_or_else(|_| reqwest::Client::new())
}

impl Default for HttpTransport {
    fn default() -> Self {
        HttpTransport::new()
    }
}

impl Transport for HttpTransport {
    fn post(
        &self,
        url: String,
        headers: Vec<(&'static str, String)>,
        body: Bytes,
    ) -> Pin<Box<dyn Future<Output = Result<Answer, String>> + Send>> {
        let mut request = self.client_for(&url).post(url).body(body);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        Box::pin(async move {
            let response = request.send().await.map_err(|e| describe_error(&e))?;
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            Ok(Answer { status: response.status().as_u16(), retry_after })
        })
    }
}

fn describe_error(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Where and how one subscription's deliveries go, as it was when the event was queued.
#[derive(Debug, Clone)]
pub struct Target {
    /// The subscription.
    pub subscription_id: String,
    /// Its name (for logs).
    pub name: String,
    /// Its organisation.
    pub org_id: String,
    /// v1 or v2.
    pub version: ApiVersion,
    /// v2: the subscription's `resourceVersion`.
    pub resource_version: Option<String>,
    /// Its secret.
    pub secret: Option<String>,
    /// Where deliveries go.
    pub url: String,
}

impl Target {
    /// The target of `sub` as it is now.
    pub fn of(sub: &Subscription) -> Target {
        Target {
            subscription_id: sub.id.clone(),
            name: sub.name.clone(),
            org_id: sub.org_id.clone(),
            version: sub.version,
            resource_version: sub.resource_version.clone(),
            secret: sub.secret.clone(),
            url: sub.destination_url.clone(),
        }
    }
}

/// What a job delivers: a live event (rendered when its turn comes), or the `data` of one
/// saved in a state file.
#[derive(Debug, Clone)]
pub enum Payload {
    /// An event of this run.
    Event(Arc<Stamped>),
    /// An event restored from a state file: its journal seq then, and its `data`.
    Saved {
        /// The seq it had.
        seq: u64,
        /// The webhook's `data`.
        data: Arc<Value>,
    },
}

impl Payload {
    /// The journal seq of the event.
    pub fn seq(&self) -> u64 {
        match self {
            Payload::Event(stamped) => stamped.seq,
            Payload::Saved { seq, .. } => *seq,
        }
    }

    /// The webhook's `data` for `event_type`.
    pub fn data(&self, event_type: &str) -> Value {
        match self {
            Payload::Event(stamped) => data_for(stamped, event_type),
            Payload::Saved { data, .. } => Value::clone(data),
        }
    }
}

/// One event on its way to one subscription.
#[derive(Debug)]
pub struct Job {
    /// The envelope's `id`.
    pub event_id: String,
    /// The event type as this subscription names it.
    pub event_type: String,
    /// The event.
    pub payload: Payload,
    /// Where it goes.
    pub target: Arc<Target>,
    /// Its estimated size, for the queue's byte bound.
    pub bytes: usize,
    /// Its place among the pending jobs (set when queued).
    ticket: u64,
}

impl Job {
    /// A job for one event to one subscription, under the name it knows the event by.
    pub fn new(stamped: Arc<Stamped>, event_type: &str, target: Arc<Target>, bytes: usize) -> Job {
        Job {
            event_id: crate::ids::uuid(),
            event_type: event_type.to_owned(),
            payload: Payload::Event(stamped),
            target,
            bytes: bytes.max(256),
            ticket: 0,
        }
    }

    /// A job restored from a state file.
    pub fn saved(saved: &SavedDelivery, target: Arc<Target>) -> Job {
        let data = Arc::new(saved.data.clone());
        let bytes = saved.data.to_string().len();
        Job {
            event_id: saved.event_id.clone(),
            event_type: saved.event_type.clone(),
            payload: Payload::Saved { seq: saved.seq, data },
            target,
            bytes: bytes.max(256),
            ticket: 0,
        }
    }
}

/// A delivery not yet made (or still being retried), as a state file keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SavedDelivery {
    /// The subscription.
    pub subscription_id: String,
    /// The envelope's `id` (kept, so a receiver can tell a redelivery).
    pub event_id: String,
    /// The event type as the subscription names it.
    pub event_type: String,
    /// The journal seq of the event.
    pub seq: u64,
    /// The webhook's `data`.
    pub data: Value,
}

/// A pending job as the dispatcher remembers it (for saving and for draining at shutdown).
#[derive(Debug)]
struct Pending {
    subscription_id: String,
    event_id: String,
    event_type: String,
    payload: Payload,
}

/// A body ready to send: the exact bytes, signed.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// The bytes sent (and signed).
    pub body: Bytes,
    /// Headers (content type, signature, v2 timestamp and version).
    pub headers: Vec<(&'static str, String)>,
}

/// Builds the envelope for `data` of type `event_type`, serialises it once and signs the bytes.
pub fn render(target: &Target, event_id: &str, event_type: &str, data: &Value, now: i64) -> Rendered {
    let mut body = json!({
        "id": event_id,
        "specversion": "1.0",
        "type": event_type,
        "source": format!("/com/cisco/wxcc/{}", target.subscription_id),
        "comciscoorgid": target.org_id,
        "datacontenttype": "application/json",
        "data": data,
    });
    let mut headers = vec![("content-type", "application/json".to_owned())];
    if target.version == ApiVersion::V2 {
        if let Some(obj) = body.as_object_mut() {
            obj.insert("comciscotimestamp".into(), json!(now));
        }
        headers.push(("x-webexcc-timestamp", now.to_string()));
        headers.push(("x-webexcc-webhook-version", target.resource_version.clone().unwrap_or_default()));
    }
    let bytes = Bytes::from(serde_json::to_vec(&body).unwrap_or_default());
    if let Some(secret) = &target.secret {
        headers.push((SIGNATURE, sign(secret, &bytes)));
    }
    Rendered { body: bytes, headers }
}

/// Lower-case hex HMAC-SHA256 of `body` keyed by `secret`.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return String::new(), // HMAC takes keys of any length; this cannot happen.
    };
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// What became of one attempt (or of an event that was never sent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// A 2xx.
    Delivered,
    /// Failed; another attempt follows.
    Retrying,
    /// Every attempt failed.
    Failed,
    /// Every attempt failed, and the subscription turned inactive.
    Disabled,
    /// Never sent (queue full, or the subscription inactive or gone by its turn).
    Dropped,
    /// Retries stopped because the subscription was deleted or deactivated meanwhile.
    Cancelled,
}

/// One delivery attempt, as `/__admin/deliveries` lists it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    /// Epoch ms (the mock's clock).
    pub at: i64,
    /// The envelope's `id`.
    pub event_id: String,
    /// The event type.
    pub event_type: String,
    /// The journal seq of the domain event delivered.
    pub event_seq: u64,
    /// The subscription.
    pub subscription_id: String,
    /// The destination.
    pub url: String,
    /// 1 for the first try (0 for an event never sent).
    pub attempt: u32,
    /// How many attempts the policy allows.
    pub of: u32,
    /// The receiver's status, if it answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Why there is no status (connection refused, timeout, ...), or why nothing was sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// How long the attempt took (real time).
    pub latency_ms: u64,
    /// What became of it.
    pub outcome: Outcome,
    /// The fault injected into it (`fault-2: duplicated`), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
}

/// The header that carries a delivery's HMAC-SHA256 signature.
const SIGNATURE: &str = "x-webexcc-signature";

/// How long a reorder fault holds an event back at most, on the mock's clock, when fewer than
/// its window of later events come.
pub const REORDER_HOLD_MS: i64 = 10_000;

/// What the dispatcher needs from the rest of the mock.
pub trait Hooks: Send + Sync + std::fmt::Debug + 'static {
    /// Whether a subscription exists (`None`: deleted) and is active.
    fn is_active(&self, subscription_id: &str) -> Option<bool>;
    /// A subscription's events failed every attempt `failed_events` times in a row: turn it
    /// inactive (and say so).
    fn disable(&self, subscription_id: &str, failed_events: u32);
    /// An attempt was made (or an event dropped); `body` is what was (or would have been) sent.
    fn attempted(&self, attempt: &Attempt, body: &Bytes);
    /// The fault to inject into a delivery, if a rule fires.
    fn fault(&self, _facts: &WebhookFacts<'_>) -> Option<Fired> {
        None
    }
    /// The status a fault makes the receiver answer to one attempt (which is then not sent).
    fn attempt_fault(&self, _facts: &WebhookFacts<'_>) -> Option<Fired> {
        None
    }
}

/// Whether a queue's worker can make progress without the clock: while it can (jobs queued and
/// no retry waiting on the clock) it holds a [`Busy`] guard, so a virtual clock's advance waits
/// for it; while it waits for the clock, or has nothing to do, it holds none. Changed only under
/// this lock, and jobs are sent under it, so a job can never slip in unseen.
#[derive(Debug, Default)]
struct Gate {
    busy: Option<Busy>,
    waiting_for_clock: bool,
}

#[derive(Debug)]
struct Queue {
    tx: mpsc::UnboundedSender<Job>,
    bytes: Arc<AtomicUsize>,
    gate: Arc<Mutex<Gate>>,
}

#[derive(Debug)]
struct Inner {
    config: DeliveryConfig,
    transport: Arc<dyn Transport>,
    hooks: Arc<dyn Hooks>,
    clock: Clock,
    queues: Mutex<HashMap<String, Queue>>,
    log: Mutex<std::collections::VecDeque<Attempt>>,
    dropped: Mutex<HashMap<String, u64>>,
    attempts: watch::Sender<u64>,
    /// Jobs queued and not yet finished, by ticket (queue order across subscriptions).
    pending: Mutex<std::collections::BTreeMap<u64, Pending>>,
    next_ticket: AtomicU64,
    /// How many jobs are pending, sent whenever it changes.
    pending_count: watch::Sender<usize>,
}

/// The webhook dispatcher: cheap to clone.
#[derive(Debug, Clone)]
pub struct Dispatcher {
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Dispatcher {
    /// A dispatcher reporting through `hooks`, timing retries on `clock`.
    pub fn new(
        config: DeliveryConfig,
        transport: Arc<dyn Transport>,
        hooks: Arc<dyn Hooks>,
        clock: Clock,
    ) -> Dispatcher {
        let (attempts, _) = watch::channel(0);
        let (pending_count, _) = watch::channel(0);
        let inner = Inner {
            pending: Mutex::new(std::collections::BTreeMap::new()),
            next_ticket: AtomicU64::new(1),
            pending_count,
            log: Mutex::new(std::collections::VecDeque::new()),
            config,
            transport,
            hooks,
            clock,
            queues: Mutex::new(HashMap::new()),
            dropped: Mutex::new(HashMap::new()),
            attempts,
        };
        Dispatcher { inner: Arc::new(inner) }
    }

    /// The policy.
    pub fn config(&self) -> &DeliveryConfig {
        &self.inner.config
    }

    /// Queues a job on its subscription's worker (started on first use). Never blocks: a job
    /// that would take the queue past its byte bound is dropped, recorded and counted. Must be
    /// called inside a tokio runtime.
    pub fn enqueue(&self, mut job: Job) {
        job.ticket = self.inner.next_ticket.fetch_add(1, Ordering::Relaxed);
        {
            let mut pending = lock(&self.inner.pending);
            pending.insert(
                job.ticket,
                Pending {
                    subscription_id: job.target.subscription_id.clone(),
                    event_id: job.event_id.clone(),
                    event_type: job.event_type.clone(),
                    payload: job.payload.clone(),
                },
            );
            self.inner.pending_count.send_replace(pending.len());
        }
        let mut queues = lock(&self.inner.queues);
        let queue = queues.entry(job.target.subscription_id.clone()).or_insert_with(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            let bytes = Arc::new(AtomicUsize::new(0));
            let gate = Arc::new(Mutex::new(Gate::default()));
            tokio::spawn(worker(self.inner.clone(), rx, bytes.clone(), gate.clone()));
            Queue { tx, bytes, gate }
        });
        let queued = queue.bytes.load(Ordering::SeqCst);
        if queued + job.bytes > self.inner.config.queue_bytes {
            drop(queues);
            let why = format!(
                "the subscription's queue holds {queued} bytes of undelivered events and its bound is {} bytes",
                self.inner.config.queue_bytes
            );
            drop_job(&self.inner, &job, why);
            return;
        }
        queue.bytes.fetch_add(job.bytes, Ordering::SeqCst);
        let mut gate = lock(&queue.gate);
        if gate.busy.is_none() && !gate.waiting_for_clock {
            gate.busy = Some(self.inner.clock.busy());
        }
        let sent = queue.tx.send(job);
        drop(gate);
        if let Err(mpsc::error::SendError(job)) = sent {
            queue.bytes.fetch_sub(job.bytes, Ordering::SeqCst);
            queues.remove(&job.target.subscription_id);
            drop(queues);
            drop_job(&self.inner, &job, "the subscription's worker stopped".to_owned());
        }
    }

    /// Forgets a subscription's queue: its worker ends once the events already queued are seen.
    pub fn forget(&self, subscription_id: &str) {
        lock(&self.inner.queues).remove(subscription_id);
        lock(&self.inner.dropped).remove(subscription_id);
    }

    /// Subscriptions with a running worker.
    pub fn workers(&self) -> usize {
        lock(&self.inner.queues).len()
    }

    /// Events dropped so far for one subscription.
    pub fn dropped(&self, subscription_id: &str) -> u64 {
        lock(&self.inner.dropped).get(subscription_id).copied().unwrap_or(0)
    }

    /// Every attempt, newest first, optionally for one subscription.
    pub fn attempts(&self, subscription_id: Option<&str>) -> Vec<Attempt> {
        lock(&self.inner.log)
            .iter()
            .rev()
            .filter(|a| subscription_id.is_none_or(|id| a.subscription_id == id))
            .cloned()
            .collect()
    }

    /// A receiver that changes whenever an attempt is logged (tests wait on it instead of sleeping).
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.inner.attempts.subscribe()
    }

    /// Stops every worker and forgets the log (for reset).
    pub fn clear(&self) {
        lock(&self.inner.queues).clear();
        lock(&self.inner.log).clear();
        lock(&self.inner.dropped).clear();
        lock(&self.inner.pending).clear();
        self.inner.pending_count.send_replace(0);
    }

    /// Deliveries queued or being retried, oldest first, with their `data` (for a state file).
    pub fn pending(&self) -> Vec<SavedDelivery> {
        lock(&self.inner.pending)
            .values()
            .map(|p| SavedDelivery {
                subscription_id: p.subscription_id.clone(),
                event_id: p.event_id.clone(),
                event_type: p.event_type.clone(),
                seq: p.payload.seq(),
                data: p.payload.data(&p.event_type),
            })
            .collect()
    }

    /// How many deliveries are queued or being retried.
    pub fn pending_count(&self) -> usize {
        *self.inner.pending_count.borrow()
    }

    /// Waits until no delivery is pending, at most `within` (real time); how many are left.
    pub async fn drain(&self, within: Duration) -> usize {
        let mut count = self.inner.pending_count.subscribe();
        let _ = tokio::time::timeout(within, count.wait_for(|n| *n == 0)).await;
        self.pending_count()
    }
}

/// A job is finished (delivered, failed, cancelled or dropped): it is no longer pending.
fn finished(inner: &Inner, job: &Job) {
    let mut pending = lock(&inner.pending);
    if pending.remove(&job.ticket).is_some() {
        inner.pending_count.send_replace(pending.len());
    }
}

fn drop_job(inner: &Inner, job: &Job, why: String) {
    drop_job_marked(inner, job, why, None);
}

fn drop_job_marked(inner: &Inner, job: &Job, why: String, fault: Option<String>) {
    finished(inner, job);
    *lock(&inner.dropped).entry(job.target.subscription_id.clone()).or_default() += 1;
    let attempt = Attempt {
        at: inner.clock.now_ms(),
        event_id: job.event_id.clone(),
        event_type: job.event_type.clone(),
        event_seq: job.payload.seq(),
        subscription_id: job.target.subscription_id.clone(),
        url: job.target.url.clone(),
        attempt: 0,
        of: inner.config.retries + 1,
        status: None,
        error: Some(why),
        latency_ms: 0,
        outcome: Outcome::Dropped,
        fault,
    };
    record(inner, attempt, &Bytes::new());
}

fn record(inner: &Inner, attempt: Attempt, body: &Bytes) {
    inner.hooks.attempted(&attempt, body);
    {
        let mut log = lock(&inner.log);
        if log.len() >= inner.config.log_capacity.max(1) {
            log.pop_front();
        }
        log.push_back(attempt);
    }
    inner.attempts.send_modify(|n| *n += 1);
}

/// A fault applied to one job: how the journal names it, and what it does.
#[derive(Debug, Clone)]
struct Injected {
    description: String,
    action: Action,
}

/// An event a reorder fault holds back.
#[derive(Debug)]
struct Held {
    job: Job,
    /// Later events still to go out before it.
    left: u32,
    /// When it goes regardless (the mock's clock).
    until_ms: i64,
    fault: Injected,
}

/// What the worker does next.
enum Next {
    Job(Job),
    /// The oldest held event's time is up (the guard keeps a virtual clock waiting for it).
    Release(Busy),
    Closed,
}

async fn worker(
    inner: Arc<Inner>,
    mut jobs: mpsc::UnboundedReceiver<Job>,
    queued: Arc<AtomicUsize>,
    gate: Arc<Mutex<Gate>>,
) {
    let mut consecutive_failures = 0u32;
    let mut held: std::collections::VecDeque<Held> = std::collections::VecDeque::new();
    loop {
        {
            // Nothing left to do without new events: stop holding the clock.
            let mut gate = lock(&gate);
            if jobs.is_empty() {
                gate.busy = None;
            }
        }
        let next = match held.front().map(|h| h.until_ms) {
            None => jobs.recv().await.map_or(Next::Closed, Next::Job),
            Some(until) => {
                let time_up = inner.clock.sleep_until(until);
                tokio::select! {
                    job = jobs.recv() => job.map_or(Next::Closed, Next::Job),
                    fired = time_up => Next::Release(fired),
                }
            }
        };
        let (job, injected) = match next {
            Next::Closed => break,
            Next::Release(fired) => {
                lock(&gate).busy = Some(fired);
                let Some(Held { job, fault, .. }) = held.pop_front() else { continue };
                (job, Some(fault))
            }
            Next::Job(job) => {
                queued.fetch_sub(job.bytes, Ordering::SeqCst);
                let facts = WebhookFacts {
                    org_id: &job.target.org_id,
                    subscription_id: &job.target.subscription_id,
                    event_type: &job.event_type,
                };
                let injected =
                    inner.hooks.fault(&facts).map(|f| Injected { description: f.describe(), action: f.action });
                if let Some(fault @ Injected { action: Action::Reorder(window), .. }) = injected {
                    let until_ms = inner.clock.now_ms().saturating_add(REORDER_HOLD_MS);
                    held.push_back(Held { job, left: window, until_ms, fault });
                    continue;
                }
                (job, injected)
            }
        };
        let subscription_id = job.target.subscription_id.clone();
        if !process(&inner, &gate, &job, injected, &mut consecutive_failures).await {
            // Deleted: nothing more will come for it, so the worker ends.
            let why = || "the subscription was deleted before its turn came".to_owned();
            while let Ok(rest) = jobs.try_recv() {
                drop_job(&inner, &rest, why());
            }
            for rest in held.drain(..) {
                drop_job_marked(&inner, &rest.job, why(), Some(rest.fault.description));
            }
            lock(&inner.queues).remove(&subscription_id);
            break;
        }
        // One more event went out: a held event whose window is through goes next.
        for h in &mut held {
            h.left = h.left.saturating_sub(1);
        }
        while let Some(at) = held.iter().position(|h| h.left == 0) {
            let Some(Held { job, fault, .. }) = held.remove(at) else { break };
            if !process(&inner, &gate, &job, Some(fault), &mut consecutive_failures).await {
                break;
            }
        }
    }
    for rest in held.drain(..) {
        let why = "the subscription's queue was cleared while a reorder fault held the event back".to_owned();
        drop_job_marked(&inner, &rest.job, why, Some(rest.fault.description));
    }
    lock(&gate).busy = None;
}

/// Waits on the clock without holding it: while it waits, the worker cannot make progress alone.
/// `next` is registered before the guard goes, so a virtual clock sees it coming.
async fn wait_for_clock(gate: &Mutex<Gate>, next: Sleep) {
    {
        let mut gate = lock(gate);
        gate.waiting_for_clock = true;
        gate.busy = None;
    }
    let fired = next.await;
    let mut gate = lock(gate);
    gate.waiting_for_clock = false;
    gate.busy = Some(fired);
}

/// Delivers one event with its retries (and the fault injected into it); `false` when its
/// subscription is gone.
async fn process(
    inner: &Arc<Inner>,
    gate: &Mutex<Gate>,
    job: &Job,
    injected: Option<Injected>,
    consecutive_failures: &mut u32,
) -> bool {
    match inner.hooks.is_active(&job.target.subscription_id) {
        None => {
            drop_job(inner, job, "the subscription was deleted before its turn came".to_owned());
            return false;
        }
        Some(false) => {
            drop_job(inner, job, "the subscription was inactive when its turn came".to_owned());
            return true;
        }
        Some(true) => {}
    }
    let action = injected.as_ref().map(|i| i.action);
    let fault = injected.map(|i| i.description);
    if action == Some(Action::Drop) {
        let why = format!("dropped by {}", fault.as_deref().unwrap_or_default());
        drop_job_marked(inner, job, why, fault);
        return true;
    }
    if let Some(Action::Delay(ms)) = action {
        wait_for_clock(gate, inner.clock.sleep(Duration::from_millis(ms))).await;
        if inner.hooks.is_active(&job.target.subscription_id) != Some(true) {
            let why = "the subscription was deleted or deactivated while a delay fault held the event".to_owned();
            drop_job_marked(inner, job, why, fault);
            return true;
        }
    }
    let data = job.payload.data(&job.event_type);
    let mut rendered = render(&job.target, &job.event_id, &job.event_type, &data, inner.clock.now_ms());
    if action == Some(Action::BadSignature) {
        rendered.headers.retain(|(name, _)| *name != SIGNATURE);
        rendered.headers.push((SIGNATURE, sign("not the subscription's secret", &rendered.body)));
    }
    let marked = |mut attempt: Attempt| {
        attempt.fault.clone_from(&fault);
        attempt
    };
    let total = inner.config.retries + 1;
    let mut delivered = false;
    let mut retry_after = None;
    for attempt in 1..=total {
        if attempt > 1 {
            let delay = retry_after.take().unwrap_or_else(|| inner.config.delay_before_retry(attempt - 1));
            wait_for_clock(gate, inner.clock.sleep(delay)).await;
            // Deleted, deactivated or reset while waiting: stop retrying.
            if inner.hooks.is_active(&job.target.subscription_id) != Some(true) {
                let why = "the subscription was deleted or deactivated while waiting to retry".to_owned();
                record(
                    inner,
                    marked(attempt_of(inner, job, attempt, None, Some(why), 0, Outcome::Cancelled)),
                    &rendered.body,
                );
                break;
            }
        }
        let facts = WebhookFacts {
            org_id: &job.target.org_id,
            subscription_id: &job.target.subscription_id,
            event_type: &job.event_type,
        };
        let answered = inner.hooks.attempt_fault(&facts).and_then(|fired| match fired.action {
            Action::Status { status, retry_after } => {
                Some((status, retry_after.map(Duration::from_secs), fired.describe()))
            }
            _ => None,
        });
        let (status, error, latency, attempt_fault) = match answered {
            Some((status, retry_after, described)) => (Some((status, retry_after)), None, 0, Some(described)),
            None => {
                let (status, error, latency) = post(inner, job, &rendered).await;
                (status, error, latency, None)
            }
        };
        if let Some(status) = status {
            if (200..300).contains(&status.0) {
                delivered = true;
            } else if status.0 == 429 {
                retry_after = status.1;
            }
        }
        let last = attempt == total;
        let disabling = !delivered && last && *consecutive_failures + 1 >= inner.config.disable_after;
        let outcome = if delivered {
            Outcome::Delivered
        } else if disabling {
            Outcome::Disabled
        } else if last {
            Outcome::Failed
        } else {
            Outcome::Retrying
        };
        let status = status.map(|s| s.0);
        let mut made = marked(attempt_of(inner, job, attempt, status, error, latency, outcome));
        if let Some(described) = attempt_fault {
            made.fault = Some(match made.fault.take() {
                Some(event_fault) => format!("{event_fault}; {described} (not sent)"),
                None => format!("{described} (not sent)"),
            });
        }
        record(inner, made, &rendered.body);
        if delivered {
            if action == Some(Action::Duplicate) {
                // The same bytes again, the same event id: what a receiver must take as a redelivery.
                let (status, error, latency) = post(inner, job, &rendered).await;
                let again = if status.is_some_and(|s| (200..300).contains(&s.0)) {
                    Outcome::Delivered
                } else {
                    Outcome::Failed
                };
                let status = status.map(|s| s.0);
                record(inner, marked(attempt_of(inner, job, attempt, status, error, latency, again)), &rendered.body);
            }
            break;
        }
    }
    finished(inner, job);
    if delivered {
        *consecutive_failures = 0;
    } else {
        *consecutive_failures += 1;
        if *consecutive_failures >= inner.config.disable_after {
            inner.hooks.disable(&job.target.subscription_id, *consecutive_failures);
            *consecutive_failures = 0;
        }
    }
    true
}

/// One POST: the receiver's (status, Retry-After), or why there is none, and the latency (ms).
async fn post(inner: &Inner, job: &Job, rendered: &Rendered) -> (Option<(u16, Option<Duration>)>, Option<String>, u64) {
    let started = std::time::Instant::now();
    let sent = inner.transport.post(job.target.url.clone(), rendered.headers.clone(), rendered.body.clone());
    let result = tokio::time::timeout(inner.config.timeout, sent).await;
    let latency = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    match result {
        Ok(Ok(answer)) => (Some((answer.status, answer.retry_after)), None, latency),
        Ok(Err(e)) => (None, Some(e), latency),
        Err(_) => (None, Some(format!("no answer within {} ms", inner.config.timeout.as_millis())), latency),
    }
}

fn attempt_of(
    inner: &Inner,
    job: &Job,
    attempt: u32,
    status: Option<u16>,
    error: Option<String>,
    latency_ms: u64,
    outcome: Outcome,
) -> Attempt {
    Attempt {
        at: inner.clock.now_ms(),
        event_id: job.event_id.clone(),
        event_type: job.event_type.clone(),
        event_seq: job.payload.seq(),
        subscription_id: job.target.subscription_id.clone(),
        url: job.target.url.clone(),
        attempt,
        of: inner.config.retries + 1,
        status,
        error,
        latency_ms,
        outcome,
        fault: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_lower_case_hex_hmac_sha256_of_the_exact_bytes() {
        // RFC 4231 test case 2.
        let sig = sign("Jefe", b"what do ya want for nothing?");
        assert_eq!(sig, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    }

    #[test]
    fn back_off_doubles_from_the_first_delay() {
        let config = DeliveryConfig { backoff: Duration::from_millis(100), ..DeliveryConfig::default() };
        let delays: Vec<u128> = (1..=4).map(|n| config.delay_before_retry(n).as_millis()).collect();
        assert_eq!(delays, vec![100, 200, 400, 800]);
    }

    fn target(version: ApiVersion, secret: Option<&str>) -> Target {
        Target {
            subscription_id: "s".into(),
            name: "n".into(),
            org_id: "o".into(),
            version,
            resource_version: (version == ApiVersion::V2).then(|| "agent:2.0.0".to_owned()),
            secret: secret.map(str::to_owned),
            url: "http://127.0.0.1:1/".into(),
        }
    }

    #[test]
    fn v2_envelopes_carry_the_timestamp_in_body_and_header_and_v1_do_not() {
        let job = render(&target(ApiVersion::V1, None), "e", "agent:login", &json!({}), 42);
        let body: Value = serde_json::from_slice(&job.body).expect("json");
        assert!(body.get("comciscotimestamp").is_none());
        assert!(job.headers.iter().all(|(k, _)| !k.starts_with("x-webexcc")));
        let job = render(&target(ApiVersion::V2, Some("k")), "e", "agent:login", &json!({}), 42);
        let body: Value = serde_json::from_slice(&job.body).expect("json");
        assert_eq!(body["comciscotimestamp"], 42);
        let header = |name: &str| job.headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone());
        assert_eq!(header("x-webexcc-timestamp").as_deref(), Some("42"));
        assert_eq!(header("x-webexcc-webhook-version").as_deref(), Some("agent:2.0.0"));
        assert_eq!(header("x-webexcc-signature"), Some(sign("k", &job.body)));
    }
}
