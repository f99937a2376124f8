//! What a node knows about each peer: health, round-trip times, identity.

use std::collections::VecDeque;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use mesh_auth::{NodeId, PublicKey};

/// A peer's health as this node sees it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Health {
    /// Answering probes with a normal round-trip time.
    Healthy,
    /// Still reachable, but missing probes or slow.
    Degraded {
        /// Why (missed probes, high RTT).
        reason: String,
    },
    /// Not heard from for longer than the profile allows, or left.
    Unreachable {
        /// Why.
        reason: String,
    },
}

impl Health {
    /// True for [`Health::Healthy`].
    pub fn is_healthy(&self) -> bool {
        matches!(self, Health::Healthy)
    }

    /// True for [`Health::Unreachable`].
    pub fn is_unreachable(&self) -> bool {
        matches!(self, Health::Unreachable { .. })
    }

    /// `healthy`, `degraded` or `unreachable`.
    pub fn label(&self) -> &'static str {
        match self {
            Health::Healthy => "healthy",
            Health::Degraded { .. } => "degraded",
            Health::Unreachable { .. } => "unreachable",
        }
    }

    /// The reason, when not healthy.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Health::Healthy => None,
            Health::Degraded { reason } | Health::Unreachable { reason } => Some(reason),
        }
    }
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.reason() {
            None => f.write_str(self.label()),
            Some(reason) => write!(f, "{} ({reason})", self.label()),
        }
    }
}

/// Round-trip time statistics: EWMA (alpha 1/8) and the max of recent samples.
#[derive(Clone, Debug, Default)]
pub struct RttStats {
    ewma_us: Option<f64>,
    last_us: Option<u64>,
    recent: VecDeque<u64>,
    /// When the last sample came (tokio's clock, so simulations see it move).
    last_at: Option<tokio::time::Instant>,
}

/// Samples kept for the recent maximum.
const RECENT_SAMPLES: usize = 32;

impl RttStats {
    /// Adds a sample (µs).
    pub fn record(&mut self, sample_us: u64) {
        let sample = sample_us as f64;
        self.ewma_us = Some(match self.ewma_us {
            None => sample,
            Some(prev) => prev + (sample - prev) / 8.0,
        });
        self.last_us = Some(sample_us);
        self.last_at = Some(tokio::time::Instant::now());
        if self.recent.len() == RECENT_SAMPLES {
            self.recent.pop_front();
        }
        self.recent.push_back(sample_us);
    }

    /// Smoothed RTT.
    pub fn ewma(&self) -> Option<Duration> {
        self.ewma_us.map(|us| Duration::from_micros(us as u64))
    }

    /// Most recent sample.
    pub fn last(&self) -> Option<Duration> {
        self.last_us.map(Duration::from_micros)
    }

    /// How long ago the last sample came.
    pub fn age(&self) -> Option<Duration> {
        self.last_at.map(|t| t.elapsed())
    }

    /// Largest of the last 32 samples.
    pub fn recent_max(&self) -> Option<Duration> {
        self.recent.iter().max().copied().map(Duration::from_micros)
    }

    /// Number of samples in the recent window.
    pub fn samples(&self) -> usize {
        self.recent.len()
    }
}

/// A peer as reported by [`crate::MeshNode::peers`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerInfo {
    /// Authenticated node id.
    pub node_id: NodeId,
    /// Its ed25519 identity key.
    pub public_key: PublicKey,
    /// Where it is reached.
    pub addr: SocketAddr,
    /// Its software version (from the handshake).
    pub version: String,
    /// Its role flags (bit 0: operator node).
    pub flags: u32,
    /// Health now.
    pub health: Health,
    /// Smoothed RTT, once measured.
    pub rtt: Option<Duration>,
    /// Largest recent RTT sample.
    pub rtt_max_recent: Option<Duration>,
    /// How long since anything authenticated arrived from it.
    pub last_heard: Duration,
    /// Live sessions with it (normally 1; 2 briefly after a simultaneous join).
    pub sessions: usize,
    /// How long since the first session was established.
    pub connected_for: Duration,
}

impl PeerInfo {
    /// Whether the peer announced itself as an operator's node.
    pub fn is_operator(&self) -> bool {
        self.flags & crate::config::NODE_FLAG_OPERATOR != 0
    }
}
