//! Call deadlines without a timer per call.
//!
//! Every pending call carries its deadline. One sweeper task per endpoint sleeps
//! until the earliest deadline it saw at its last scan (`armed`), then fails the
//! calls that are out of time (a `TimedOut` reply, the id remembered as
//! abandoned, a Cancel sent to the server) and sleeps again. A call whose
//! deadline is earlier than `armed` wakes it to rescan; calls with the usual
//! deadline length start after the ones already waiting and end after them, so
//! the common call pays one atomic load instead of a timer registration, a
//! clock read and a timer removal.
//!
//! `arm` runs under the pending-table lock and the sweeper scans under it, so a
//! new call is either seen by the scan or sees the value the scan stored.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::task::AbortHandle;

use super::{Inner, Pending, Reply, ReplyOutcome};

/// `armed` when no call is waiting.
const IDLE: u64 = u64::MAX;
/// A sweeper this late past its wake-up is presumed gone (its runtime shut
/// down); the next call starts another on its own runtime.
const PRESUMED_DEAD_AFTER: Duration = Duration::from_secs(1);

pub(crate) struct Deadlines {
    epoch: Instant,
    /// The deadline the sweeper sleeps towards, in µs since `epoch` (`IDLE`:
    /// none).
    armed_us: AtomicU64,
    /// Shared with the sweeper, which waits on it without holding the endpoint.
    wake: Arc<Notify>,
    sweeper: Mutex<Option<AbortHandle>>,
}

impl Deadlines {
    pub(crate) fn new() -> Self {
        Self {
            epoch: Instant::now(),
            armed_us: AtomicU64::new(IDLE),
            wake: Arc::new(Notify::new()),
            sweeper: Mutex::new(None),
        }
    }

    fn micros(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_micros()).unwrap_or(IDLE - 1)
    }

    /// Makes sure a call started at `started` and due at `deadline` will be
    /// failed on time. Call with the pending table locked, after inserting the
    /// call. Returns false if no sweeper can run (no tokio runtime here): the
    /// caller must then time the call itself.
    pub(crate) fn arm(
        &self,
        endpoint: Weak<Inner>,
        started: Instant,
        deadline: Option<Instant>,
    ) -> bool {
        let Some(deadline) = deadline else {
            // Too far away to represent: never due.
            return true;
        };
        let armed = self.armed_us.load(Relaxed);
        let due = self.micros(deadline);
        let late = armed != IDLE
            && self.micros(started) > armed.saturating_add(PRESUMED_DEAD_AFTER.as_micros() as u64);
        if due >= armed && !late {
            return true;
        }
        let mut sweeper = self.sweeper.lock();
        if sweeper.as_ref().is_none_or(AbortHandle::is_finished) {
            let Ok(runtime) = tokio::runtime::Handle::try_current() else {
                return false;
            };
            *sweeper = Some(runtime.spawn(sweep(endpoint, self.wake.clone())).abort_handle());
        }
        // Until the sweeper rescans, nothing earlier than this is promised.
        self.armed_us.store(due.min(armed), Relaxed);
        self.wake.notify_one();
        true
    }

    pub(crate) fn stop(&self) {
        if let Some(sweeper) = self.sweeper.lock().take() {
            sweeper.abort();
        }
    }
}

/// The sweeper: holds the endpoint only while scanning.
async fn sweep(endpoint: Weak<Inner>, wake: Arc<Notify>) {
    loop {
        let next = {
            let Some(inner) = endpoint.upgrade() else { return };
            // tokio's clock, the one `sleep_until` waits on: under paused test
            // time it runs ahead of the system clock, and reading the system
            // clock here would then find nothing due and spin.
            let now = tokio::time::Instant::now().into_std();
            let (expired, next) = {
                let mut pending = inner.pending.lock();
                let expired: Vec<u64> = pending
                    .iter()
                    .filter(|(_, call)| call.deadline.is_some_and(|d| d <= now))
                    .map(|(id, _)| *id)
                    .collect();
                let expired: Vec<(u64, Pending)> =
                    expired.into_iter().filter_map(|id| Some((id, pending.remove(&id)?))).collect();
                let next = pending.values().filter_map(|call| call.deadline).min();
                let deadlines = &inner.deadlines;
                deadlines.armed_us.store(next.map_or(IDLE, |at| deadlines.micros(at)), Relaxed);
                (expired, next)
            };
            for (id, call) in expired {
                inner.abandon(call.callee, id);
                let _ = call.tx.send(Reply::local(ReplyOutcome::TimedOut));
            }
            next
        };
        // A notification sent since the scan is kept as a permit: not lost.
        match next {
            Some(at) => {
                tokio::select! {
                    () = tokio::time::sleep_until(at.into()) => {}
                    () = wake.notified() => {}
                }
            }
            None => wake.notified().await,
        }
    }
}
