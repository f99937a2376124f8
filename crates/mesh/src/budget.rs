//! Token buckets for work done on behalf of senders not yet trusted.
//!
//! A [`Bucket`] refills at a steady rate up to a burst; a [`HashedBudget`] is a
//! fixed array of buckets indexed by a keyed hash of the sender (a socket
//! address, a node id), so its memory never grows with the number of senders
//! and a sender cannot pick which bucket it lands in. Two senders that share a
//! bucket share its budget, which errs on the side of refusing.

use std::hash::{BuildHasher, Hash};
use std::time::Duration;

use tokio::time::Instant;

/// One token bucket.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Bucket {
    tokens: f64,
    last: Option<Instant>,
}

impl Bucket {
    pub(crate) const fn new() -> Self {
        Self { tokens: 0.0, last: None }
    }

    /// Takes one token if there is one (a bucket never used starts full).
    pub(crate) fn take(&mut self, now: Instant, per_second: f64, burst: f64) -> bool {
        self.tokens = match self.last {
            None => burst,
            Some(last) => {
                let elapsed = now.saturating_duration_since(last).as_secs_f64();
                (self.tokens + elapsed * per_second).min(burst)
            }
        };
        self.last = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// A fixed set of buckets shared out by a keyed hash.
pub(crate) struct HashedBudget {
    buckets: Vec<Bucket>,
    hasher: foldhash::quality::RandomState,
    per_second: f64,
    burst: f64,
}

impl HashedBudget {
    /// `slots` buckets, each refilling `per_second` up to `burst`.
    pub(crate) fn new(slots: usize, per_second: f64, burst: f64) -> Self {
        Self {
            buckets: vec![Bucket::new(); slots.max(1)],
            hasher: foldhash::quality::RandomState::default(),
            per_second,
            burst,
        }
    }

    /// Takes one token from `key`'s bucket.
    pub(crate) fn take(&mut self, key: impl Hash, now: Instant) -> bool {
        let slot = (self.hasher.hash_one(key) % self.buckets.len() as u64) as usize;
        self.buckets[slot].take(now, self.per_second, self.burst)
    }

    /// Whether `key`'s bucket has a token, without taking it.
    pub(crate) fn has(&mut self, key: impl Hash, now: Instant) -> bool {
        let slot = (self.hasher.hash_one(key) % self.buckets.len() as u64) as usize;
        let mut probe = self.buckets[slot];
        probe.take(now, self.per_second, self.burst)
    }
}

/// A bounded set of recently seen keys, each remembered for `ttl`: the
/// handshake openers already answered. Full means refuse: a key that cannot be
/// remembered cannot be checked for replays later.
pub(crate) struct SeenSet<K> {
    expiry: std::collections::HashMap<K, Instant, foldhash::quality::RandomState>,
    order: std::collections::VecDeque<(Instant, K)>,
    ttl: Duration,
    cap: usize,
}

impl<K: Hash + Eq + Copy> SeenSet<K> {
    pub(crate) fn new(ttl: Duration, cap: usize) -> Self {
        Self { expiry: Default::default(), order: Default::default(), ttl, cap: cap.max(1) }
    }

    fn expire(&mut self, now: Instant) {
        while let Some((until, key)) = self.order.front().copied() {
            if until > now {
                break;
            }
            self.order.pop_front();
            if self.expiry.get(&key).is_some_and(|t| *t <= now) {
                self.expiry.remove(&key);
            }
        }
    }

    /// Whether `key` was inserted within the last `ttl`.
    pub(crate) fn contains(&mut self, key: &K, now: Instant) -> bool {
        self.expire(now);
        self.expiry.get(key).is_some_and(|t| *t > now)
    }

    /// Remembers `key`; false when the set is full (or `key` is already there).
    pub(crate) fn insert(&mut self, key: K, now: Instant) -> bool {
        self.expire(now);
        if self.expiry.len() >= self.cap || self.expiry.contains_key(&key) {
            return false;
        }
        let until = now + self.ttl;
        self.expiry.insert(key, until);
        self.order.push_back((until, key));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_refills_up_to_its_burst() {
        let t0 = Instant::now();
        let mut b = Bucket::new();
        for _ in 0..3 {
            assert!(b.take(t0, 1.0, 3.0));
        }
        assert!(!b.take(t0, 1.0, 3.0));
        assert!(b.take(t0 + Duration::from_secs(1), 1.0, 3.0));
        assert!(!b.take(t0 + Duration::from_secs(1), 1.0, 3.0));
        // A long pause refills to the burst, not beyond.
        let later = t0 + Duration::from_secs(100);
        assert_eq!((0..10).filter(|_| b.take(later, 1.0, 3.0)).count(), 3);
    }

    #[test]
    fn hashed_budget_keeps_senders_apart_and_memory_fixed() {
        let t0 = Instant::now();
        let mut budget = HashedBudget::new(1024, 0.0, 2.0);
        assert!(budget.take("a", t0) && budget.take("a", t0));
        assert!(!budget.take("a", t0));
        assert!(!budget.has("a", t0));
        assert!(budget.has("b", t0) || budget.has("c", t0));
        assert_eq!(budget.buckets.len(), 1024);
    }

    #[test]
    fn seen_set_forgets_after_ttl_and_refuses_when_full() {
        let t0 = Instant::now();
        let mut seen = SeenSet::new(Duration::from_secs(10), 2);
        assert!(seen.insert(1u32, t0));
        assert!(!seen.insert(1, t0));
        assert!(seen.contains(&1, t0));
        assert!(seen.insert(2, t0));
        assert!(!seen.insert(3, t0), "full");
        let later = t0 + Duration::from_secs(11);
        assert!(!seen.contains(&1, later));
        assert!(seen.insert(3, later));
    }
}
