//! The cluster-wide fold: every node's versioned summary, merged by version.
//!
//! Each node owns one [`NodeSummary`] (its daemons and resources) stamped with
//! `(incarnation, version)`: the incarnation changes when the node restarts, the
//! version grows with every change. Merging keeps, per node, the summary with the
//! greatest stamp, so the fold is order-independent and idempotent: any permutation
//! of any multiset of updates gives the same state.
//!
//! Dissemination (in `node/state.rs`): a node pushes its own summary to every peer
//! when it changes, and every few hundred milliseconds sends each peer a digest of
//! the stamps it holds; the peer answers with whatever is newer. A lost datagram is
//! healed by the next digest round.

use std::collections::BTreeMap;

use mesh_auth::{NodeId, OriginHash};
use serde::{Deserialize, Serialize};

use crate::admin::AdminState;
use crate::daemon::{DaemonHealth, Lifecycle};
use crate::migrate::MigrationSummary;

/// Most daemons a summary may list (a larger one is refused as malformed).
pub const MAX_DAEMONS_PER_NODE: usize = 4096;
/// Largest encoded fold message accepted.
pub const MAX_FOLD_MESSAGE: usize = 2 * 1024 * 1024;

/// Host resources as the owning node measured them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    /// One-minute load average per CPU, in thousandths (1000 = fully busy).
    pub cpu_load_milli: Option<u32>,
    /// Number of CPUs.
    pub cpus: u32,
    /// Memory in use on the host (bytes).
    pub mem_used: Option<u64>,
    /// Memory on the host (bytes).
    pub mem_total: Option<u64>,
    /// Resident memory of the node's process (bytes).
    pub process_rss: Option<u64>,
    /// Free bytes on the node's data disk, where measured.
    pub disk_free: Option<u64>,
    /// Size of the node's data disk, where measured.
    pub disk_total: Option<u64>,
}

/// One daemon as its node reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonSummary {
    /// Daemon id (origin hash of its key).
    pub id: OriginHash,
    /// Its name (may carry a lineage suffix).
    pub name: String,
    /// Where it is in its life.
    pub lifecycle: Lifecycle,
    /// What it says about itself.
    pub health: DaemonHealth,
    /// Saturation in thousandths (0..=1000), quantized so equal states compare equal.
    pub saturation_milli: u16,
    /// Times it crashed and was resumed.
    pub restarts: u32,
    /// Crashing repeatedly (3 or more times within a minute).
    pub crash_looping: bool,
    /// When it was registered (ms since the Unix epoch).
    pub started_at_ms: u64,
    /// Log lines it published that were dropped (queue full).
    pub log_dropped: u64,
    /// Whether it can be migrated to another node.
    pub migratable: bool,
}

/// Everything one node says about itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeSummary {
    /// The owner.
    pub node: NodeId,
    /// Changes when the owner restarts (its start time in ms).
    pub incarnation: u64,
    /// Grows with every change within an incarnation.
    pub version: u64,
    /// When the owner produced this version (ms since the Unix epoch).
    pub produced_at_ms: u64,
    /// Its software version.
    pub software: String,
    /// Host resources.
    pub resources: Resources,
    /// Its daemons, sorted by id.
    pub daemons: Vec<DaemonSummary>,
    /// Cordon, drain, maintenance, freeze, avoid list.
    pub admin: AdminState,
    /// Migrations it is the source of (in flight and recently ended).
    pub migrations: Vec<MigrationSummary>,
}

impl NodeSummary {
    /// Whether `newer` differs from `self` only in figures that move all the time
    /// (daemon saturation and dropped-line counters, host resources): such news
    /// waits for the next periodic snapshot rebuild instead of forcing one.
    pub fn quiet_change(&self, newer: &NodeSummary) -> bool {
        let same_daemons = self.daemons.len() == newer.daemons.len()
            && self.daemons.iter().zip(&newer.daemons).all(|(a, b)| {
                a.id == b.id
                    && a.name == b.name
                    && a.lifecycle == b.lifecycle
                    && a.health == b.health
                    && a.restarts == b.restarts
                    && a.crash_looping == b.crash_looping
                    && a.started_at_ms == b.started_at_ms
                    && a.migratable == b.migratable
            });
        same_daemons
            && self.node == newer.node
            && self.incarnation == newer.incarnation
            && self.software == newer.software
            && self.admin == newer.admin
            && self.migrations == newer.migrations
    }
}

impl NodeSummary {
    /// The ordering stamp: later incarnations win, then higher versions.
    pub fn stamp(&self) -> (u64, u64) {
        (self.incarnation, self.version)
    }

    /// Structural checks for summaries from the network.
    pub fn validate(&self) -> Result<(), &'static str> {
        if self.daemons.len() > MAX_DAEMONS_PER_NODE {
            return Err("too many daemons");
        }
        if self.software.len() > 64 {
            return Err("software version too long");
        }
        if self.daemons.iter().any(|d| crate::daemon::validate_name(&d.name).is_err()) {
            return Err("invalid daemon name");
        }
        if self.daemons.iter().any(|d| d.saturation_milli > 1000) {
            return Err("saturation out of range");
        }
        if self.migrations.len() > 1024 || self.admin.avoid.len() > 1024 {
            return Err("too many migrations or avoid entries");
        }
        Ok(())
    }
}

/// What fold peers say to each other (postcard on the wire).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FoldMessage {
    /// Full summaries (the owner's own on change, or answers to a digest).
    Summaries(Vec<NodeSummary>),
    /// The stamps the sender holds, asking for anything newer.
    Digest(Vec<(NodeId, u64, u64)>),
}

impl FoldMessage {
    /// Decodes and validates a message from a peer. Never panics.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        if bytes.len() > MAX_FOLD_MESSAGE {
            return Err(format!("{} bytes is above the limit", bytes.len()));
        }
        let message: FoldMessage = postcard::from_bytes(bytes).map_err(|e| e.to_string())?;
        if let FoldMessage::Summaries(list) = &message {
            for summary in list {
                summary.validate()?;
            }
        }
        Ok(message)
    }

    /// The wire form.
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_stdvec(self).unwrap_or_default()
    }
}

/// The merged view: the newest summary of every node heard of.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fold {
    summaries: BTreeMap<NodeId, NodeSummary>,
}

impl Fold {
    /// An empty fold.
    pub fn new() -> Self {
        Self::default()
    }

    /// Merges one summary; returns true if it changed the fold.
    pub fn apply(&mut self, summary: NodeSummary) -> bool {
        match self.summaries.get(&summary.node) {
            Some(current) if current.stamp() >= summary.stamp() => false,
            _ => {
                self.summaries.insert(summary.node, summary);
                true
            }
        }
    }

    /// The summary of `node`.
    pub fn get(&self, node: NodeId) -> Option<&NodeSummary> {
        self.summaries.get(&node)
    }

    /// Every summary, by node id.
    pub fn iter(&self) -> impl Iterator<Item = &NodeSummary> {
        self.summaries.values()
    }

    /// Number of nodes with a summary.
    pub fn len(&self) -> usize {
        self.summaries.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.summaries.is_empty()
    }

    /// The stamps held, for a digest.
    pub fn digest(&self) -> Vec<(NodeId, u64, u64)> {
        self.summaries.values().map(|s| (s.node, s.incarnation, s.version)).collect()
    }

    /// Summaries newer than what `digest` lists (or missing from it).
    pub fn newer_than(&self, digest: &[(NodeId, u64, u64)]) -> Vec<NodeSummary> {
        let theirs: BTreeMap<NodeId, (u64, u64)> =
            digest.iter().map(|(n, i, v)| (*n, (*i, *v))).collect();
        self.summaries
            .values()
            .filter(|s| theirs.get(&s.node).is_none_or(|stamp| s.stamp() > *stamp))
            .cloned()
            .collect()
    }

    /// Forgets a node's summary (after it has been gone long enough).
    pub fn remove(&mut self, node: NodeId) -> Option<NodeSummary> {
        self.summaries.remove(&node)
    }
}
