//! Membership timing: the intervals derived from the node's profile, and
//! Lifeguard's suspicion timeout.

use std::time::Duration;

use super::EXPECTED_CONFIRMATIONS;

/// Timing, derived from the node's profile and the cluster size.
#[derive(Clone, Debug)]
pub(crate) struct SwimTiming {
    pub(crate) probe_interval: Duration,
    pub(crate) probe_timeout: Duration,
    /// Suspicion timeout at n <= 10 with enough confirmations.
    pub(crate) suspicion_base: Duration,
    pub(crate) gossip_interval: Duration,
    pub(crate) push_pull_interval: Duration,
    pub(crate) forget_after: Duration,
}

impl SwimTiming {
    pub(crate) fn from_profile(t: &crate::config::TimingProfile) -> Self {
        Self {
            probe_interval: t.probe_interval,
            probe_timeout: t.probe_interval / 2,
            suspicion_base: t
                .unreachable_after
                .saturating_sub(t.probe_interval)
                .max(t.probe_interval),
            gossip_interval: (t.probe_interval / 4).max(Duration::from_millis(20)),
            push_pull_interval: t.gossip_interval * 10,
            forget_after: t.forget_after,
        }
    }
}

/// Lifeguard's suspicion timeout: from `max` down to `min` as independent
/// confirmations arrive; `min` grows with log10 n (half as fast as
/// memberlist's, so a 1,000-node LAN cluster still detects within 10 s).
pub(super) fn suspicion_timeout(base: Duration, n: usize, confirmations: usize) -> Duration {
    // 1x up to 10 members, 1.5x at 100, 2x at 1,000.
    let scale = (1.0 + (n as f64 / 10.0).log10() / 2.0).max(1.0);
    let min = base.mul_f64(scale);
    let max = min * 3;
    let frac =
        ((confirmations as f64 + 1.0).ln() / (EXPECTED_CONFIRMATIONS as f64 + 1.0).ln()).min(1.0);
    max.saturating_sub((max - min).mul_f64(frac)).max(min)
}
