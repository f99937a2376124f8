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
//!
//! Summaries come from the network, so [`FoldMessage::decode`] refuses (and the
//! node counts as malformed) any message that is too large, does not parse, or
//! holds a summary failing [`NodeSummary::validate`]; nothing of such a message
//! reaches the fold. When a dead node's summary is forgotten ([`Fold::remove`]),
//! its stamp is remembered so that copies peers still hold are not merged back.

use std::collections::VecDeque;

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
/// Longest daemon health reason accepted from a peer, in bytes. Nodes send
/// reasons sanitized by [`crate::logs::sanitize`] (at most 256 characters, or a
/// panic message of up to [`crate::logs::MAX_LOG_LINE`] bytes plus a prefix and
/// the truncation marker); anything longer is refused as malformed.
pub const MAX_HEALTH_REASON: usize = crate::logs::MAX_LOG_LINE + 128;
/// Longest software version string accepted from a peer, in bytes.
pub const MAX_SOFTWARE_VERSION: usize = 64;
/// Forgotten nodes whose stamps are remembered (the oldest is dropped first).
pub const MAX_FORGOTTEN: usize = 4096;

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
    /// Bytes an unprivileged process may still write on the host's root
    /// filesystem (`statvfs("/")`), where measured.
    pub disk_free: Option<u64>,
    /// Size of the host's root filesystem (bytes), where measured.
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

impl DaemonSummary {
    /// A running daemon with nothing else to report: no saturation, restarts,
    /// dropped lines or start time, not migratable. For building summaries by
    /// hand (tests, tools); set the other fields after.
    pub fn running(id: OriginHash, name: impl Into<String>, health: DaemonHealth) -> Self {
        Self {
            id,
            name: name.into(),
            lifecycle: Lifecycle::Running,
            health,
            saturation_milli: 0,
            restarts: 0,
            crash_looping: false,
            started_at_ms: 0,
            log_dropped: 0,
            migratable: false,
        }
    }
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
    ///
    /// Peer text is refused rather than repaired, as daemon names are: a health
    /// reason longer than [`MAX_HEALTH_REASON`] bytes or holding a control
    /// character (honest nodes escape them with [`crate::logs::sanitize`]) makes
    /// the whole summary malformed.
    pub fn validate(&self) -> Result<(), &'static str> {
        if self.daemons.len() > MAX_DAEMONS_PER_NODE {
            return Err("too many daemons");
        }
        if self.software.len() > MAX_SOFTWARE_VERSION {
            return Err("software version too long");
        }
        if self.software.chars().any(char::is_control) {
            return Err("control characters in software version");
        }
        if self.daemons.iter().any(|d| crate::daemon::validate_name(&d.name).is_err()) {
            return Err("invalid daemon name");
        }
        for reason in self.daemons.iter().filter_map(|d| d.health.reason()) {
            if reason.len() > MAX_HEALTH_REASON {
                return Err("health reason too long");
            }
            if reason.chars().any(char::is_control) {
                return Err("control characters in health reason");
            }
        }
        if self.daemons.iter().any(|d| d.saturation_milli > 1000) {
            return Err("saturation out of range");
        }
        if self.migrations.len() > 1024 || self.admin.avoid.len() > 1024 {
            return Err("too many migrations or avoid entries");
        }
        for m in &self.migrations {
            if crate::daemon::validate_name(&m.name).is_err() {
                return Err("invalid daemon name in a migration");
            }
            if let crate::migrate::MigrationPhase::Failed { reason } = &m.phase {
                if reason.len() > MAX_HEALTH_REASON || reason.chars().any(char::is_control) {
                    return Err("invalid migration failure reason");
                }
            }
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
    /// Stamps of forgotten summaries: no summary at or below them is applied.
    forgotten: BTreeMap<NodeId, (u64, u64)>,
    /// `forgotten`'s keys, oldest first (bounds it at [`MAX_FORGOTTEN`]).
    forgotten_order: VecDeque<NodeId>,
}

impl Fold {
    /// An empty fold.
    pub fn new() -> Self {
        Self::default()
    }

    /// Merges one summary; returns true if it changed the fold.
    ///
    /// A summary no newer than what was forgotten of its node ([`Fold::remove`])
    /// is ignored; a newer one (the node came back) is applied.
    pub fn apply(&mut self, summary: NodeSummary) -> bool {
        if let Some(gone) = self.forgotten.get(&summary.node) {
            if summary.stamp() <= *gone {
                return false;
            }
            self.forgotten.remove(&summary.node);
            self.forgotten_order.retain(|n| *n != summary.node);
        }
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
    ///
    /// Its stamp is remembered (for the last [`MAX_FORGOTTEN`] nodes forgotten),
    /// so the same summary offered back by a peer that has not forgotten it yet
    /// does not bring the dead node's daemons back; a newer summary does.
    pub fn remove(&mut self, node: NodeId) -> Option<NodeSummary> {
        let removed = self.summaries.remove(&node)?;
        if self.forgotten.insert(node, removed.stamp()).is_none() {
            self.forgotten_order.push_back(node);
        }
        while self.forgotten_order.len() > MAX_FORGOTTEN {
            if let Some(oldest) = self.forgotten_order.pop_front() {
                self.forgotten.remove(&oldest);
            }
        }
        Some(removed)
    }

    /// The stamp a forgotten node had when it was removed, if it is remembered.
    pub fn forgotten(&self, node: NodeId) -> Option<(u64, u64)> {
        self.forgotten.get(&node).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::sanitize;

    fn daemon(id: u64, health: DaemonHealth) -> DaemonSummary {
        DaemonSummary::running(OriginHash(id), format!("d{id}"), health)
    }

    fn summary(node: u64, version: u64, daemons: Vec<DaemonSummary>) -> NodeSummary {
        NodeSummary {
            node: NodeId(node),
            incarnation: 1,
            version,
            produced_at_ms: 0,
            software: "0.1.0".into(),
            resources: Resources::default(),
            daemons,
            admin: AdminState::default(),
            migrations: Vec::new(),
        }
    }

    fn with_reason(reason: &str) -> NodeSummary {
        let degraded = DaemonHealth::Degraded { reason: reason.to_owned() };
        let unhealthy = DaemonHealth::Unhealthy { reason: reason.to_owned() };
        summary(
            1,
            1,
            vec![daemon(1, DaemonHealth::Healthy), daemon(2, degraded), daemon(3, unhealthy)],
        )
    }

    #[test]
    fn health_reasons_from_peers_are_checked() {
        assert_eq!(with_reason("disk slow").validate(), Ok(()));
        for evil in ["\x1b[2Jwiped", "two\nlines", "bell\x07", "nul\0", "c1\u{9b}31m"] {
            assert_eq!(
                with_reason(evil).validate(),
                Err("control characters in health reason"),
                "{evil:?}"
            );
        }
        let long = "x".repeat(MAX_HEALTH_REASON + 1);
        assert_eq!(with_reason(&long).validate(), Err("health reason too long"));
        assert_eq!(with_reason(&"x".repeat(MAX_HEALTH_REASON)).validate(), Ok(()));
        let mut s = summary(1, 1, Vec::new());
        s.software = "0.1.0\x1b[1m".into();
        assert!(s.validate().is_err());
    }

    #[test]
    fn migration_text_from_peers_is_checked() {
        let migration = |name: &str, reason: &str| crate::migrate::MigrationSummary {
            id: crate::migrate::MigrationId(7),
            daemon: OriginHash(1),
            name: name.into(),
            source: NodeId(1),
            target: NodeId(2),
            phase: crate::migrate::MigrationPhase::Failed { reason: reason.into() },
            bytes_moved: 0,
            started_at_ms: 0,
            last_progress_ms: 0,
        };
        let with = |m| {
            let mut s = summary(1, 1, Vec::new());
            s.migrations = vec![m];
            s
        };
        assert_eq!(with(migration("worker", "restore failed: no disk")).validate(), Ok(()));
        assert!(with(migration("worker", "restore failed:\x1b[2J")).validate().is_err());
        assert!(with(migration("worker", "two\nlines")).validate().is_err());
        assert!(with(migration("wor\nker", "fine")).validate().is_err());
        let long = "x".repeat(MAX_HEALTH_REASON + 1);
        assert!(with(migration("worker", &long)).validate().is_err());
        // What a node sends is escaped first.
        assert!(with(migration("worker", &sanitize("two\nlines"))).validate().is_ok());
    }

    #[test]
    fn reasons_an_honest_node_sends_are_accepted() {
        // The two ways a node fills a reason (daemon.rs): a daemon's own report,
        // sanitized and cut at 256 characters, and a panic message.
        let nasty: String = "é\x1b\n\u{85}x".repeat(2000);
        let reported: String = sanitize(&nasty).chars().take(256).collect();
        let panicked = format!("panicked: {}", sanitize(&nasty));
        for reason in [reported, panicked, sanitize(&"\u{7f}".repeat(5000))] {
            assert_eq!(with_reason(&reason).validate(), Ok(()), "{} bytes", reason.len());
        }
    }

    #[test]
    fn bad_fold_messages_are_refused_whole_and_leave_the_fold_alone() {
        let mut fold = Fold::new();
        let good = summary(1, 1, vec![daemon(1, DaemonHealth::Healthy)]);
        assert!(fold.apply(good.clone()));
        let before = fold.clone();

        // A valid newer summary next to a bad one: the message is refused whole.
        let newer_good = summary(1, 2, Vec::new());
        let bad =
            summary(2, 9, vec![daemon(7, DaemonHealth::Unhealthy { reason: "\x1b[2J".into() })]);
        let mut malformed = vec![FoldMessage::Summaries(vec![newer_good, bad]).encode()];
        // Invalid saturation, name, too many daemons.
        let mut sat = summary(1, 3, vec![daemon(1, DaemonHealth::Healthy)]);
        sat.daemons[0].saturation_milli = 1001;
        let mut name = summary(1, 3, vec![daemon(1, DaemonHealth::Healthy)]);
        name.daemons[0].name = "bad\nname".into();
        let many = summary(
            1,
            3,
            (0..=MAX_DAEMONS_PER_NODE as u64).map(|i| daemon(i, DaemonHealth::Healthy)).collect(),
        );
        for s in [sat, name, many] {
            malformed.push(FoldMessage::Summaries(vec![s]).encode());
        }
        // Truncated, garbage, and oversized bytes.
        let full = FoldMessage::Summaries(vec![good.clone()]).encode();
        malformed.push(full[..full.len() / 2].to_vec());
        malformed.push(vec![0xff; 64]);
        malformed.push(vec![0; MAX_FOLD_MESSAGE + 1]);
        for bytes in &malformed {
            let decoded = FoldMessage::decode(bytes);
            assert!(decoded.is_err(), "{} bytes accepted", bytes.len());
            if let Ok(FoldMessage::Summaries(list)) = decoded {
                for s in list {
                    fold.apply(s);
                }
            }
        }
        assert_eq!(fold, before);
        // The fold still takes good news.
        let next = summary(1, 2, Vec::new());
        let Ok(FoldMessage::Summaries(list)) =
            FoldMessage::decode(&FoldMessage::Summaries(vec![next.clone()]).encode())
        else {
            panic!("a valid message must decode");
        };
        assert!(list.into_iter().all(|s| fold.apply(s)));
        assert_eq!(fold.get(NodeId(1)), Some(&next));
    }

    #[test]
    fn forgotten_summaries_stay_forgotten_until_the_node_is_back() {
        let mut fold = Fold::new();
        let old = summary(5, 3, vec![daemon(1, DaemonHealth::Healthy)]);
        fold.apply(old.clone());
        assert_eq!(fold.remove(NodeId(5)), Some(old.clone()));
        assert_eq!(fold.forgotten(NodeId(5)), Some((1, 3)));
        // A peer that still holds it offers it back (or an older one): ignored.
        assert!(!fold.apply(old.clone()));
        assert!(!fold.apply(summary(5, 1, Vec::new())));
        assert!(fold.get(NodeId(5)).is_none());
        assert!(fold.digest().is_empty());
        // The node itself lives on (newer version) or restarted (new incarnation).
        let mut back = summary(5, 1, Vec::new());
        back.incarnation = 2;
        assert!(fold.apply(back.clone()));
        assert_eq!(fold.forgotten(NodeId(5)), None);
        assert_eq!(fold.get(NodeId(5)), Some(&back));
        // Removing a node never heard of records nothing.
        assert_eq!(fold.remove(NodeId(77)), None);
        assert_eq!(fold.forgotten(NodeId(77)), None);
    }

    #[test]
    fn forgotten_stamps_are_bounded() {
        let mut fold = Fold::new();
        for n in 0..(MAX_FORGOTTEN as u64 + 10) {
            fold.apply(summary(n, 1, Vec::new()));
            fold.remove(NodeId(n));
        }
        assert_eq!(fold.forgotten.len(), MAX_FORGOTTEN);
        assert_eq!(fold.forgotten_order.len(), MAX_FORGOTTEN);
        assert_eq!(fold.forgotten(NodeId(0)), None);
        assert_eq!(fold.forgotten(NodeId(MAX_FORGOTTEN as u64 + 9)), Some((1, 1)));
        assert!(fold.is_empty());
    }
}
