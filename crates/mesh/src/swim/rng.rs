//! The small PRNG membership draws its random choices from.

use std::time::Duration;

/// A small, fast PRNG (splitmix64); seeded from the OS.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub(crate) fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next() % n as u64) as usize }
    }

    /// `n` jittered by up to ±`pct` %.
    pub(crate) fn jitter(&mut self, d: Duration, pct: u64) -> Duration {
        let span = d.as_micros() as u64 * pct / 100;
        if span == 0 {
            return d;
        }
        let off = self.next() % (2 * span + 1);
        Duration::from_micros((d.as_micros() as u64 + off).saturating_sub(span))
    }
}
