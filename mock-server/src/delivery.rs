//! Webhook delivery (facts §9): the CloudEvents-style envelope, the HMAC-SHA256 signature over
//! the exact bytes sent, one ordered queue per subscription, retries with exponential back-off
//! (a receiver's 429 `Retry-After` wins), and `inactive` after repeated failures.
//!
//! A slow or failing subscription holds back only its own later events: each subscription has
//! its own worker task. Every attempt is logged in a bounded ring (`GET /__admin/deliveries`).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::sync::{mpsc, watch};

use crate::state::{Clock, Ring};
use crate::subscriptions::{ApiVersion, Status, SubscriptionStore};

/// Retry and timing policy. Flags: `--webhook-retries`, `--webhook-backoff-ms`,
/// `--webhook-disable-after`.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// Attempts after the first.
    pub retries: u32,
    /// The first retry's delay; each later one doubles.
    pub backoff: Duration,
    /// Consecutive events that fail every attempt before the subscription turns `inactive`.
    pub disable_after: u32,
    /// How long a receiver has to answer.
    pub timeout: Duration,
    /// Events queued per subscription before new ones are dropped (and logged).
    pub queue_capacity: usize,
    /// Attempts kept in the log.
    pub log_capacity: usize,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            retries: 5,
            backoff: Duration::from_millis(1000),
            disable_after: 3,
            timeout: Duration::from_secs(5),
            queue_capacity: 1000,
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

/// The real transport: reqwest, no redirects followed.
#[derive(Debug, Clone)]
pub struct HttpTransport {
    client: reqwest::Client,
}

impl HttpTransport {
    /// A client that never follows redirects (facts §9.3).
    pub fn new() -> HttpTransport {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("wxcc-mock/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        HttpTransport { client }
    }
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
        let mut request = self.client.post(url).body(body);
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

/// One event on its way to one subscription.
#[derive(Debug, Clone)]
pub struct Job {
    /// The envelope's `id`.
    pub event_id: String,
    /// The subscription.
    pub subscription_id: String,
    /// The event type as this subscription names it.
    pub event_type: String,
    /// Where it goes.
    pub url: String,
    /// The exact bytes sent (and signed).
    pub body: Bytes,
    /// Headers (content type, signature, v2 timestamp and version).
    pub headers: Vec<(&'static str, String)>,
}

/// Builds the envelope, serialises it once, and signs those bytes.
#[derive(Debug, Clone, Copy)]
pub struct Envelope<'a> {
    /// The subscription.
    pub subscription_id: &'a str,
    /// Its organisation.
    pub org_id: &'a str,
    /// v1 or v2.
    pub version: ApiVersion,
    /// v2: the subscription's `resourceVersion`.
    pub resource_version: Option<&'a str>,
    /// Its secret.
    pub secret: Option<&'a str>,
}

impl Envelope<'_> {
    /// The job for one event (`data`) of type `event_type`, built at `now` (epoch ms).
    pub fn job(&self, url: &str, event_id: &str, event_type: &str, data: &Value, now: i64) -> Job {
        let mut body = json!({
            "id": event_id,
            "specversion": "1.0",
            "type": event_type,
            "source": format!("/com/cisco/wxcc/{}", self.subscription_id),
            "comciscoorgid": self.org_id,
            "datacontenttype": "application/json",
            "data": data,
        });
        let mut headers = vec![("content-type", "application/json".to_owned())];
        if self.version == ApiVersion::V2 {
            if let Some(obj) = body.as_object_mut() {
                obj.insert("comciscotimestamp".into(), json!(now));
            }
            headers.push(("x-webexcc-timestamp", now.to_string()));
            headers.push(("x-webexcc-webhook-version", self.resource_version.unwrap_or_default().to_owned()));
        }
        let bytes = Bytes::from(serde_json::to_vec(&body).unwrap_or_default());
        if let Some(secret) = self.secret {
            headers.push(("x-webexcc-signature", sign(secret, &bytes)));
        }
        Job {
            event_id: event_id.to_owned(),
            subscription_id: self.subscription_id.to_owned(),
            event_type: event_type.to_owned(),
            url: url.to_owned(),
            body: bytes,
            headers,
        }
    }
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

/// One delivery attempt, as `/__admin/deliveries` lists it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    /// Epoch ms (the state's clock).
    pub at: i64,
    /// The envelope's `id`.
    pub event_id: String,
    /// The event type.
    pub event_type: String,
    /// The subscription.
    pub subscription_id: String,
    /// The destination.
    pub url: String,
    /// 1 for the first try.
    pub attempt: u32,
    /// The receiver's status, if it answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Why there is no status (connection refused, timeout, ...), or why nothing was sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// How long the attempt took.
    pub latency_ms: u64,
    /// `delivered`, `retrying`, `failed` (every attempt failed), `dropped` (queue full), or
    /// `disabled` (the subscription turned inactive after this attempt).
    pub outcome: &'static str,
}

#[derive(Debug)]
struct Inner {
    config: DeliveryConfig,
    transport: Arc<dyn Transport>,
    subscriptions: Arc<Mutex<SubscriptionStore>>,
    clock: Clock,
    queues: Mutex<HashMap<String, mpsc::Sender<Job>>>,
    log: Mutex<Ring<Attempt>>,
    attempts: watch::Sender<u64>,
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
    /// A dispatcher over the state's subscription store.
    pub fn new(
        config: DeliveryConfig,
        transport: Arc<dyn Transport>,
        subscriptions: Arc<Mutex<SubscriptionStore>>,
        clock: Clock,
    ) -> Dispatcher {
        let log = Ring::new(config.log_capacity);
        let (attempts, _) = watch::channel(0);
        let inner = Inner {
            config,
            transport,
            subscriptions,
            clock,
            queues: Mutex::new(HashMap::new()),
            log: Mutex::new(log),
            attempts,
        };
        Dispatcher { inner: Arc::new(inner) }
    }

    /// Queues a job on its subscription's worker (started on first use). Never blocks: a full
    /// queue drops the job and logs it. Must be called inside a tokio runtime.
    pub fn enqueue(&self, job: Job) {
        let mut queues = lock(&self.inner.queues);
        let sender = queues.entry(job.subscription_id.clone()).or_insert_with(|| {
            let (tx, rx) = mpsc::channel(self.inner.config.queue_capacity);
            tokio::spawn(worker(self.inner.clone(), rx));
            tx
        });
        if let Err(e) = sender.try_send(job) {
            let (job, why) = match e {
                mpsc::error::TrySendError::Full(job) => (job, "the subscription's queue is full"),
                mpsc::error::TrySendError::Closed(job) => (job, "the subscription's worker stopped"),
            };
            if matches!(why, "the subscription's worker stopped") {
                queues.remove(&job.subscription_id);
            }
            drop(queues);
            record(&self.inner, &job, 0, None, Some(why.to_owned()), 0, "dropped");
        }
    }

    /// Every attempt, newest first, optionally for one subscription.
    pub fn attempts(&self, subscription_id: Option<&str>) -> Vec<Attempt> {
        lock(&self.inner.log)
            .newest_first()
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
    }
}

fn record(
    inner: &Inner,
    job: &Job,
    attempt: u32,
    status: Option<u16>,
    error: Option<String>,
    latency_ms: u64,
    outcome: &'static str,
) {
    lock(&inner.log).push(Attempt {
        at: inner.clock.now_ms(),
        event_id: job.event_id.clone(),
        event_type: job.event_type.clone(),
        subscription_id: job.subscription_id.clone(),
        url: job.url.clone(),
        attempt,
        status,
        error,
        latency_ms,
        outcome,
    });
    inner.attempts.send_modify(|n| *n += 1);
}

/// Whether a subscription still exists and is active; `None` if it was deleted.
fn is_active(inner: &Inner, id: &str) -> Option<bool> {
    lock(&inner.subscriptions).by_id(id).map(|s| s.status == Status::Active)
}

async fn worker(inner: Arc<Inner>, mut jobs: mpsc::Receiver<Job>) {
    let mut consecutive_failures = 0u32;
    while let Some(job) = jobs.recv().await {
        match is_active(&inner, &job.subscription_id) {
            // Deleted: nothing more will come for it, so the worker ends (and forgets its queue).
            None => {
                lock(&inner.queues).remove(&job.subscription_id);
                return;
            }
            // Inactive since the event was queued: nothing is sent.
            Some(false) => continue,
            Some(true) => {}
        }
        let total = inner.config.retries + 1;
        let mut delivered = false;
        let mut retry_after = None;
        for attempt in 1..=total {
            if attempt > 1 {
                let delay = retry_after.take().unwrap_or_else(|| inner.config.delay_before_retry(attempt - 1));
                tokio::time::sleep(delay).await;
                // Deleted, deactivated or reset while waiting: stop retrying.
                if is_active(&inner, &job.subscription_id) != Some(true) {
                    break;
                }
            }
            let started = tokio::time::Instant::now();
            let sent = inner.transport.post(job.url.clone(), job.headers.clone(), job.body.clone());
            let result = tokio::time::timeout(inner.config.timeout, sent).await;
            let latency = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            let last = attempt == total;
            let (status, error) = match result {
                Ok(Ok(answer)) => {
                    if (200..300).contains(&answer.status) {
                        delivered = true;
                    } else if answer.status == 429 {
                        retry_after = answer.retry_after;
                    }
                    (Some(answer.status), None)
                }
                Ok(Err(e)) => (None, Some(e)),
                Err(_) => (None, Some(format!("no answer within {} ms", inner.config.timeout.as_millis()))),
            };
            let outcome = if delivered {
                "delivered"
            } else if last {
                "failed"
            } else {
                "retrying"
            };
            let disabling = !delivered && last && consecutive_failures + 1 >= inner.config.disable_after;
            record(&inner, &job, attempt, status, error, latency, if disabling { "disabled" } else { outcome });
            if delivered {
                break;
            }
        }
        if delivered {
            consecutive_failures = 0;
        } else {
            consecutive_failures += 1;
            if consecutive_failures >= inner.config.disable_after {
                lock(&inner.subscriptions).set_status(&job.subscription_id, Status::Inactive);
                consecutive_failures = 0;
            }
        }
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

    #[tokio::test]
    async fn a_full_queue_drops_new_events_and_logs_them() {
        let config = DeliveryConfig { queue_capacity: 1, ..DeliveryConfig::default() };
        let store = Arc::new(Mutex::new(SubscriptionStore::default()));
        let dispatcher = Dispatcher::new(config, Arc::new(HttpTransport::new()), store, Clock::manual(0));
        let envelope = Envelope {
            subscription_id: "s",
            org_id: "o",
            version: ApiVersion::V1,
            resource_version: None,
            secret: None,
        };
        // No await in between: the worker has not run, so the queue (capacity 1) fills at once.
        for id in ["e1", "e2", "e3"] {
            dispatcher.enqueue(envelope.job("http://127.0.0.1:9/", id, "agent:login", &json!({}), 0));
        }
        let log = dispatcher.attempts(Some("s"));
        let dropped: Vec<(&str, &str)> = log.iter().map(|a| (a.event_id.as_str(), a.outcome)).collect();
        assert_eq!(dropped, vec![("e3", "dropped"), ("e2", "dropped")]);
        assert_eq!(log[0].error.as_deref(), Some("the subscription's queue is full"));
    }

    #[test]
    fn back_off_doubles_from_the_first_delay() {
        let config = DeliveryConfig { backoff: Duration::from_millis(100), ..DeliveryConfig::default() };
        let delays: Vec<u128> = (1..=4).map(|n| config.delay_before_retry(n).as_millis()).collect();
        assert_eq!(delays, vec![100, 200, 400, 800]);
    }

    #[test]
    fn v2_envelopes_carry_the_timestamp_in_body_and_header_and_v1_do_not() {
        let v1 = Envelope {
            subscription_id: "s",
            org_id: "o",
            version: ApiVersion::V1,
            resource_version: None,
            secret: None,
        };
        let job = v1.job("http://127.0.0.1:1/", "e", "agent:login", &json!({}), 42);
        let body: Value = serde_json::from_slice(&job.body).expect("json");
        assert!(body.get("comciscotimestamp").is_none());
        assert!(job.headers.iter().all(|(k, _)| !k.starts_with("x-webexcc")));
        let v2 = Envelope { version: ApiVersion::V2, resource_version: Some("agent:2.0.0"), secret: Some("k"), ..v1 };
        let job = v2.job("http://127.0.0.1:1/", "e", "agent:login", &json!({}), 42);
        let body: Value = serde_json::from_slice(&job.body).expect("json");
        assert_eq!(body["comciscotimestamp"], 42);
        let header = |name: &str| job.headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone());
        assert_eq!(header("x-webexcc-timestamp").as_deref(), Some("42"));
        assert_eq!(header("x-webexcc-webhook-version").as_deref(), Some("agent:2.0.0"));
        assert_eq!(header("x-webexcc-signature"), Some(sign("k", &job.body)));
    }
}
