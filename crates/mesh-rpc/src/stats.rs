//! Introspection: per-service counters with a fixed-size latency histogram, and
//! counters of dropped messages. Everything is atomics: updating costs a few
//! relaxed increments and never takes a lock.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use crate::observer::{CallStatus, Side};

/// Values below this many microseconds get a bucket each.
const LINEAR: usize = 16;
/// Sub-buckets per power of two above that (3 bits: at most 12.5% wide).
const SUB_BITS: u32 = 3;
/// Highest power of two tracked (2^40 us is about 12 days); above it, clamped.
const MAX_POWER: u32 = 40;
/// Number of buckets.
const BUCKETS: usize = LINEAR + ((MAX_POWER - 4) as usize) * (1 << SUB_BITS);

/// A log-linear latency histogram in microseconds: exact below 16 us, then eight
/// buckets per power of two, so a quantile is off by at most 1/16 of its value.
/// Fixed size (2.4 KiB), lock-free.
pub(crate) struct LatencyHistogram {
    buckets: Box<[AtomicU64]>,
}

impl LatencyHistogram {
    pub(crate) fn new() -> Self {
        Self { buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect() }
    }

    pub(crate) fn record(&self, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.buckets[bucket_of(us)].fetch_add(1, Relaxed);
    }

    /// The latency at quantile `q` (0..=1), as the middle of its bucket; `None`
    /// when nothing was recorded.
    pub(crate) fn quantile(&self, q: f64) -> Option<Duration> {
        let counts: Vec<u64> = self.buckets.iter().map(|b| b.load(Relaxed)).collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        // The rank of the wanted sample, 1-based.
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, count) in counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Some(Duration::from_micros(bucket_middle(i)));
            }
        }
        Some(Duration::from_micros(bucket_middle(BUCKETS - 1)))
    }
}

fn bucket_of(us: u64) -> usize {
    if us < LINEAR as u64 {
        return us as usize;
    }
    let power = 63 - us.leading_zeros(); // >= 4
    if power >= MAX_POWER {
        return BUCKETS - 1;
    }
    let sub = ((us >> (power - SUB_BITS)) & ((1 << SUB_BITS) - 1)) as usize;
    LINEAR + (power as usize - 4) * (1 << SUB_BITS) + sub
}

fn bucket_middle(index: usize) -> u64 {
    if index < LINEAR {
        return index as u64;
    }
    let power = (index - LINEAR) as u32 / (1 << SUB_BITS) + 4;
    let sub = ((index - LINEAR) % (1 << SUB_BITS)) as u64;
    let width = 1u64 << (power - SUB_BITS);
    let low = (1u64 << power) + sub * width;
    low + width / 2
}

/// Live counters of one service on one side.
pub(crate) struct ServiceCounters {
    pub(crate) name: Arc<str>,
    calls: AtomicU64,
    errors: AtomicU64,
    timeouts: AtomicU64,
    latency: LatencyHistogram,
}

impl ServiceCounters {
    pub(crate) fn new(name: Arc<str>) -> Self {
        Self {
            name,
            calls: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            timeouts: AtomicU64::new(0),
            latency: LatencyHistogram::new(),
        }
    }

    /// Counts one finished call. Latency is kept for calls that got an answer
    /// from the handler (ok or a handler failure), so timeouts do not pose as
    /// slow calls.
    pub(crate) fn record(&self, status: CallStatus, latency: Duration) {
        self.calls.fetch_add(1, Relaxed);
        match status {
            CallStatus::Ok => self.latency.record(latency),
            CallStatus::Remote(_) => {
                self.errors.fetch_add(1, Relaxed);
                self.latency.record(latency);
            }
            CallStatus::Timeout => {
                self.errors.fetch_add(1, Relaxed);
                self.timeouts.fetch_add(1, Relaxed);
            }
            _ => {
                self.errors.fetch_add(1, Relaxed);
            }
        }
    }

    pub(crate) fn snapshot(&self, side: Side) -> ServiceStats {
        ServiceStats {
            service: self.name.to_string(),
            side,
            calls: self.calls.load(Relaxed),
            errors: self.errors.load(Relaxed),
            timeouts: self.timeouts.load(Relaxed),
            p50: self.latency.quantile(0.50),
            p99: self.latency.quantile(0.99),
        }
    }
}

/// Counters of one service on one side, at one instant.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServiceStats {
    /// The service name.
    pub service: String,
    /// Client: calls this node made; server: calls it served.
    pub side: Side,
    /// Finished calls (every attempt counts).
    pub calls: u64,
    /// Calls that did not end [`CallStatus::Ok`] (timeouts included).
    pub errors: u64,
    /// Calls that ran out of time.
    pub timeouts: u64,
    /// Median latency of answered calls (within 1/16), `None` before the first.
    pub p50: Option<Duration>,
    /// 99th percentile latency of answered calls.
    pub p99: Option<Duration>,
}

/// Live drop counters.
#[derive(Default)]
pub(crate) struct DropCounters {
    pub(crate) unknown_request_id: AtomicU64,
    pub(crate) late_responses: AtomicU64,
    pub(crate) duplicate_request_id: AtomicU64,
    pub(crate) decode_failures: AtomicU64,
    pub(crate) too_large: AtomicU64,
    pub(crate) unmatched_cancels: AtomicU64,
    pub(crate) send_failures: AtomicU64,
    pub(crate) observer_panics: AtomicU64,
}

impl DropCounters {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }

    pub(crate) fn snapshot(&self) -> DropCounts {
        let get = |c: &AtomicU64| c.load(Relaxed);
        DropCounts {
            unknown_request_id: get(&self.unknown_request_id),
            late_responses: get(&self.late_responses),
            duplicate_request_id: get(&self.duplicate_request_id),
            decode_failures: get(&self.decode_failures),
            too_large: get(&self.too_large),
            unmatched_cancels: get(&self.unmatched_cancels),
            send_failures: get(&self.send_failures),
            observer_panics: get(&self.observer_panics),
        }
    }
}

/// Messages dropped (or events absorbed) by an endpoint, by reason.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DropCounts {
    /// Responses matching no call of ours (never issued, or from the wrong node).
    pub unknown_request_id: u64,
    /// Responses to calls that had already timed out or been dropped.
    pub late_responses: u64,
    /// Requests whose id is already being served for the same caller.
    pub duplicate_request_id: u64,
    /// Messages whose RPC header did not decode, and request bodies that did not
    /// decode (the caller got `invalid_argument`).
    pub decode_failures: u64,
    /// Messages over the size limit (refused, never truncated).
    pub too_large: u64,
    /// Cancels for requests not running here (already finished: normal).
    pub unmatched_cancels: u64,
    /// Best-effort responses or cancels the mesh refused to send.
    pub send_failures: u64,
    /// Observer calls that panicked (caught).
    pub observer_panics: u64,
}

/// An endpoint's counters at one instant.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RpcStats {
    /// Services this node serves (server side) and calls (client side), sorted by
    /// side then name.
    pub services: Vec<ServiceStats>,
    /// Drops by reason.
    pub drops: DropCounts,
    /// Calls of ours waiting for a response.
    pub pending_calls: usize,
    /// Handlers running on their own task.
    pub running_handlers: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_tight() {
        let mut last = 0;
        for us in [0u64, 1, 15, 16, 17, 31, 32, 100, 1_000, 65_535, 1 << 30, 1 << 39] {
            let b = bucket_of(us);
            assert!(b >= last, "{us}");
            last = b;
            let mid = bucket_middle(b);
            let err = mid.abs_diff(us) as f64 / us.max(1) as f64;
            assert!(err <= 1.0 / 16.0 + 1e-9, "{us} -> {mid}");
        }
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn quantiles() {
        let h = LatencyHistogram::new();
        assert_eq!(h.quantile(0.5), None);
        for us in 1..=100u64 {
            h.record(Duration::from_micros(us * 10));
        }
        let p50 = h.quantile(0.5).unwrap().as_micros() as f64;
        let p99 = h.quantile(0.99).unwrap().as_micros() as f64;
        assert!((p50 - 500.0).abs() <= 500.0 / 16.0 + 1.0, "{p50}");
        assert!((p99 - 990.0).abs() <= 990.0 / 16.0 + 1.0, "{p99}");
    }
}
