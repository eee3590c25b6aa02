//! One clock for "now" and for every timer.
//!
//! Under [`ClockMode::System`] time is the wall clock and timers are tokio sleeps. Under
//! [`ClockMode::Virtual`] time only moves when told: [`Clock::advance`] fires every timer that
//! falls due, in time order (ties in registration order), and waits for the work each one starts
//! before it fires the next, so a webhook's whole retry schedule or a keep-alive drop happens
//! inside one call.
//!
//! "The work a timer starts" is tracked with [`Busy`] guards: a fired [`Sleep`] resolves to one,
//! and whoever does something on the clock's behalf (a webhook worker with a queued event) holds
//! one until the work is done or it waits on the clock again. A task that waits on the clock
//! again must create its next [`Sleep`] (which registers at once) *before* it drops its guard.
//!
//! Network timeouts (a receiver's 5 s to answer) stay on real time.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, oneshot};

/// How long [`Clock::advance`] waits (in real time) for the work a fired timer started before it
/// moves on anyway (and logs that it did).
pub const SETTLE_PATIENCE: Duration = Duration::from_secs(15);

/// Which clock the mock runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ClockMode {
    /// Wall-clock time; timers fire on their own.
    System,
    /// Time moves only with `POST /__admin/clock/advance` (or `clock/set`).
    Virtual,
}

/// Why the clock refused to move.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClockError {
    /// The system clock cannot be moved.
    #[error(
        "the mock runs on the system clock, which cannot be moved; start it with --clock virtual (or WXCC_MOCK_CLOCK=virtual) to advance or set time"
    )]
    NotVirtual,
    /// A negative advance.
    #[error("the clock only moves forward: advance by 0 ms or more, not {0} ms")]
    Backwards(i64),
}

#[derive(Debug)]
struct Counter {
    active: AtomicUsize,
    idle: Notify,
}

/// Work in flight on the clock's behalf; [`Clock::advance`] waits until none is left.
#[derive(Debug)]
pub struct Busy {
    counter: Option<Arc<Counter>>,
}

impl Busy {
    /// A guard that counts for nothing (system clock).
    pub fn none() -> Busy {
        Busy { counter: None }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        if let Some(counter) = &self.counter
            && counter.active.fetch_sub(1, Ordering::SeqCst) == 1
        {
            counter.idle.notify_waiters();
        }
    }
}

type TimerKey = (i64, u64);

#[derive(Debug)]
struct Inner {
    mode: ClockMode,
    now: AtomicI64,
    timers: Mutex<BTreeMap<TimerKey, oneshot::Sender<Busy>>>,
    next_timer: AtomicU64,
    counter: Arc<Counter>,
    moving: tokio::sync::Mutex<()>,
    stalls: AtomicU64,
}

/// The mock's clock. Cheap to clone; every clone is the same clock.
#[derive(Debug, Clone)]
pub struct Clock {
    inner: Arc<Inner>,
}

fn system_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Clock {
    fn with_mode(mode: ClockMode, start_ms: i64) -> Clock {
        Clock {
            inner: Arc::new(Inner {
                mode,
                now: AtomicI64::new(start_ms),
                timers: Mutex::new(BTreeMap::new()),
                next_timer: AtomicU64::new(0),
                counter: Arc::new(Counter { active: AtomicUsize::new(0), idle: Notify::new() }),
                moving: tokio::sync::Mutex::new(()),
                stalls: AtomicU64::new(0),
            }),
        }
    }

    /// The wall clock.
    pub fn system() -> Clock {
        Clock::with_mode(ClockMode::System, 0)
    }

    /// A virtual clock standing at `start_ms` (epoch ms).
    pub fn virtual_at(start_ms: i64) -> Clock {
        Clock::with_mode(ClockMode::Virtual, start_ms)
    }

    /// A clock in `mode`; a virtual one starts at `start_ms`, or now.
    pub fn new(mode: ClockMode, start_ms: Option<i64>) -> Clock {
        match mode {
            ClockMode::System => Clock::system(),
            ClockMode::Virtual => Clock::virtual_at(start_ms.unwrap_or_else(system_now_ms)),
        }
    }

    /// System or virtual.
    pub fn mode(&self) -> ClockMode {
        self.inner.mode
    }

    /// Whether this is a virtual clock.
    pub fn is_virtual(&self) -> bool {
        self.inner.mode == ClockMode::Virtual
    }

    /// Now, in epoch ms.
    pub fn now_ms(&self) -> i64 {
        match self.inner.mode {
            ClockMode::System => system_now_ms(),
            ClockMode::Virtual => self.inner.now.load(Ordering::SeqCst),
        }
    }

    /// Counts work in flight until the guard is dropped (a no-op on the system clock).
    pub fn busy(&self) -> Busy {
        match self.inner.mode {
            ClockMode::System => Busy::none(),
            ClockMode::Virtual => {
                self.inner.counter.active.fetch_add(1, Ordering::SeqCst);
                Busy { counter: Some(self.inner.counter.clone()) }
            }
        }
    }

    /// A timer for `duration` from now.
    pub fn sleep(&self, duration: Duration) -> Sleep {
        let ms = i64::try_from(duration.as_millis()).unwrap_or(i64::MAX);
        self.sleep_until(self.now_ms().saturating_add(ms))
    }

    /// A timer for `deadline_ms` (epoch ms). On a virtual clock it is registered at once.
    pub fn sleep_until(&self, deadline_ms: i64) -> Sleep {
        match self.inner.mode {
            ClockMode::System => {
                let wait = u64::try_from(deadline_ms.saturating_sub(system_now_ms())).unwrap_or(0);
                Sleep { state: SleepState::System(Box::pin(tokio::time::sleep(Duration::from_millis(wait)))) }
            }
            ClockMode::Virtual => {
                if deadline_ms <= self.now_ms() {
                    return Sleep { state: SleepState::Ready(Some(self.busy())) };
                }
                let key = (deadline_ms, self.inner.next_timer.fetch_add(1, Ordering::SeqCst));
                let (tx, rx) = oneshot::channel();
                lock(&self.inner.timers).insert(key, tx);
                Sleep { state: SleepState::Virtual { rx, key, clock: self.clone() } }
            }
        }
    }

    /// Timers waiting to fire (virtual clock).
    pub fn pending_timers(&self) -> usize {
        lock(&self.inner.timers).len()
    }

    /// The deadline of the next timer, if any (virtual clock).
    pub fn next_deadline(&self) -> Option<i64> {
        lock(&self.inner.timers).keys().next().map(|(at, _)| *at)
    }

    /// How many times an advance moved on because work a timer started did not finish within
    /// [`SETTLE_PATIENCE`] (0 unless something is stuck).
    pub fn stalls(&self) -> u64 {
        self.inner.stalls.load(Ordering::SeqCst)
    }

    /// Waits (in real time, at most [`SETTLE_PATIENCE`]) until no work started by the clock is
    /// in flight. Returns whether it settled (a stall is counted otherwise).
    pub async fn settle(&self) -> bool {
        let counter = &self.inner.counter;
        let wait = async {
            loop {
                let idle = counter.idle.notified();
                if counter.active.load(Ordering::SeqCst) == 0 {
                    return;
                }
                idle.await;
            }
        };
        let settled = tokio::time::timeout(SETTLE_PATIENCE, wait).await.is_ok();
        if !settled {
            self.inner.stalls.fetch_add(1, Ordering::SeqCst);
        }
        settled
    }

    /// Moves a virtual clock forward by `ms`, firing every timer that falls due in time order
    /// and waiting for the work each starts, before it returns.
    pub async fn advance(&self, ms: i64) -> Result<i64, ClockError> {
        if !self.is_virtual() {
            return Err(ClockError::NotVirtual);
        }
        if ms < 0 {
            return Err(ClockError::Backwards(ms));
        }
        let _one_at_a_time = self.inner.moving.lock().await;
        let target = self.now_ms().saturating_add(ms);
        self.run_until(target).await;
        Ok(self.now_ms())
    }

    /// Sets a virtual clock to `ms`. Forward, it is [`Clock::advance`]; backward, it relabels
    /// time: waiting timers keep their distance from now, and nothing fires.
    pub async fn set(&self, ms: i64) -> Result<i64, ClockError> {
        if !self.is_virtual() {
            return Err(ClockError::NotVirtual);
        }
        let _one_at_a_time = self.inner.moving.lock().await;
        let now = self.now_ms();
        if ms >= now {
            self.run_until(ms).await;
        } else {
            let shift = now - ms;
            let mut timers = lock(&self.inner.timers);
            let shifted: BTreeMap<TimerKey, oneshot::Sender<Busy>> =
                std::mem::take(&mut *timers).into_iter().map(|((at, id), tx)| ((at - shift, id), tx)).collect();
            *timers = shifted;
            self.inner.now.store(ms, Ordering::SeqCst);
        }
        Ok(self.now_ms())
    }

    async fn run_until(&self, target: i64) {
        loop {
            if !self.settle().await {
                tracing::warn!(
                    "virtual clock: work started by a timer is still running after {} s; moving on",
                    SETTLE_PATIENCE.as_secs()
                );
            }
            let due = {
                let mut timers = lock(&self.inner.timers);
                match timers.first_key_value() {
                    Some((&(at, _), _)) if at <= target => timers.pop_first(),
                    _ => None,
                }
            };
            let Some(((at, _), tx)) = due else { break };
            self.inner.now.fetch_max(at, Ordering::SeqCst);
            // The guard travels to the woken task; if it is gone, dropping the guard undoes it.
            let _ = tx.send(self.busy());
        }
        self.inner.now.fetch_max(target, Ordering::SeqCst);
        self.settle().await;
    }
}

/// A timer on the [`Clock`]; resolves to a [`Busy`] guard for the work it starts.
#[derive(Debug)]
pub struct Sleep {
    state: SleepState,
}

#[derive(Debug)]
enum SleepState {
    System(Pin<Box<tokio::time::Sleep>>),
    Ready(Option<Busy>),
    Virtual { rx: oneshot::Receiver<Busy>, key: TimerKey, clock: Clock },
    Done,
}

impl Future for Sleep {
    type Output = Busy;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Busy> {
        let this = &mut *self;
        let result = match &mut this.state {
            SleepState::System(sleep) => sleep.as_mut().poll(cx).map(|()| Busy::none()),
            SleepState::Ready(busy) => Poll::Ready(busy.take().unwrap_or_else(Busy::none)),
            SleepState::Virtual { rx, .. } => match Pin::new(rx).poll(cx) {
                Poll::Ready(Ok(busy)) => Poll::Ready(busy),
                // The clock is gone: nothing will ever fire.
                Poll::Ready(Err(_)) => Poll::Pending,
                Poll::Pending => Poll::Pending,
            },
            SleepState::Done => Poll::Pending,
        };
        if result.is_ready() {
            this.state = SleepState::Done;
        }
        result
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let SleepState::Virtual { key, clock, .. } = &self.state {
            lock(&clock.inner.timers).remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_virtual_clock_stands_still_until_advanced_and_fires_timers_in_time_order() {
        let clock = Clock::virtual_at(1_000);
        let fired = Arc::new(Mutex::new(Vec::new()));
        for (name, at) in [("late", 5_000), ("early", 2_000), ("same-time-second", 2_000)] {
            let sleep = clock.sleep_until(at);
            let fired = fired.clone();
            let clock2 = clock.clone();
            tokio::spawn(async move {
                let _busy = sleep.await;
                lock(&fired).push((name, clock2.now_ms()));
            });
        }
        assert_eq!(clock.now_ms(), 1_000);
        assert_eq!(clock.advance(1_500).await, Ok(2_500));
        assert_eq!(*lock(&fired), vec![("early", 2_000), ("same-time-second", 2_000)]);
        clock.advance(10_000).await.expect("virtual");
        assert_eq!(lock(&fired).last(), Some(&("late", 5_000)));
        assert_eq!(clock.now_ms(), 12_500);
        assert_eq!(clock.pending_timers(), 0);
    }

    #[tokio::test]
    async fn advancing_fires_the_timers_that_fired_timers_set_within_the_same_call() {
        let clock = Clock::virtual_at(0);
        let times = Arc::new(Mutex::new(Vec::new()));
        let (c, t) = (clock.clone(), times.clone());
        let mut next = clock.sleep(Duration::from_secs(1));
        tokio::spawn(async move {
            // A back-off schedule: 1 s, then 2 s, then 4 s.
            for gap in [2, 4, 0] {
                let busy = next.await;
                lock(&t).push(c.now_ms());
                next = c.sleep(Duration::from_secs(gap));
                drop(busy);
            }
        });
        clock.advance(60_000).await.expect("virtual");
        assert_eq!(*lock(&times), vec![1_000, 3_000, 7_000]);
    }

    #[tokio::test]
    async fn the_system_clock_refuses_to_move_and_a_dropped_timer_is_forgotten() {
        let system = Clock::system();
        assert_eq!(system.advance(1).await, Err(ClockError::NotVirtual));
        assert_eq!(system.set(1).await, Err(ClockError::NotVirtual));
        let clock = Clock::virtual_at(0);
        assert_eq!(clock.advance(-1).await, Err(ClockError::Backwards(-1)));
        let sleep = clock.sleep(Duration::from_secs(5));
        assert_eq!(clock.pending_timers(), 1);
        drop(sleep);
        assert_eq!(clock.pending_timers(), 0);
    }

    #[tokio::test]
    async fn setting_the_clock_back_keeps_waiting_timers_at_the_same_distance() {
        let clock = Clock::virtual_at(10_000);
        let sleep = clock.sleep_until(14_000);
        assert_eq!(clock.set(1_000).await, Ok(1_000));
        assert_eq!(clock.next_deadline(), Some(5_000));
        let waiter = tokio::spawn(async move { drop(sleep.await) });
        clock.set(5_000).await.expect("virtual");
        waiter.await.expect("fired");
    }

    #[tokio::test]
    async fn a_timer_already_due_is_ready_at_once() {
        let clock = Clock::virtual_at(100);
        let _busy = clock.sleep_until(50).await;
        let _busy = clock.sleep(Duration::ZERO).await;
    }
}
