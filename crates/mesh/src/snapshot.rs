//! `MeshSnapshot`: the cluster's state as one immutable value.
//!
//! A node rebuilds its snapshot from the transport's peer table, the fold and its
//! rings at most once per short tick (50 ms) and publishes it through a
//! `tokio::sync::watch` channel. [`build`] is a pure function of its inputs, so the
//! same inputs always give the same snapshot (and it can be benchmarked alone).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use mesh_auth::{NodeId, OriginHash};

use mesh_auth::AuditEntry;

use crate::admin::AdminState;
use crate::daemon::{DaemonHealth, Lifecycle};
use crate::fold::{Fold, Resources};
use crate::lineage::{Lineage, ParsedName};
use crate::logs::{FailureRecord, LogEntry};
use crate::metrics::MeshMetrics;
use crate::migrate::MigrationSummary;
use crate::peer::{Health, PeerInfo};

/// This node, as it sees itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThisNode {
    /// Its id.
    pub node_id: NodeId,
    /// Its socket address.
    pub addr: SocketAddr,
    /// Software version.
    pub version: String,
    /// Role flags (bit 0: operator node).
    pub flags: u32,
    /// Host resources.
    pub resources: Resources,
    /// Cordon, drain, maintenance, freeze, avoid list.
    pub admin: AdminState,
}

impl ThisNode {
    /// Whether this node is an operator's node.
    pub fn is_operator(&self) -> bool {
        self.flags & crate::config::NODE_FLAG_OPERATOR != 0
    }
}

/// A peer with what the fold knows about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerView {
    /// Transport view: address, health, RTT, version.
    pub info: PeerInfo,
    /// Its resources, from its summary.
    pub resources: Option<Resources>,
    /// How many daemons it runs.
    pub daemons: usize,
    /// Its admin state, from its summary.
    pub admin: AdminState,
}

/// One daemon anywhere in the cluster.
#[derive(Clone, Debug, PartialEq)]
pub struct DaemonView {
    /// Daemon id.
    pub id: OriginHash,
    /// Full name.
    pub name: String,
    /// Lineage group (the name without its suffix).
    pub group: String,
    /// Lineage within the group.
    pub lineage: Lineage,
    /// The node it runs on.
    pub node: NodeId,
    /// True when it runs on this node.
    pub local: bool,
    /// Health of the node it runs on (Healthy for this node).
    pub node_health: Health,
    /// Lifecycle.
    pub lifecycle: Lifecycle,
    /// Its own health report.
    pub health: DaemonHealth,
    /// Saturation 0.0..=1.0.
    pub saturation: f32,
    /// Crash-and-resume count.
    pub restarts: u32,
    /// Crashing repeatedly.
    pub crash_looping: bool,
    /// Registration time (ms since the Unix epoch).
    pub started_at_ms: u64,
    /// Age at snapshot time (ms).
    pub age_ms: u64,
    /// Log lines dropped because the queue was full.
    pub log_dropped: u64,
    /// Can be migrated.
    pub migratable: bool,
}

/// Log ring bookkeeping shown with the snapshot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RingStats {
    /// Oldest sequence number still held.
    pub first_seq: u64,
    /// Next sequence number to be assigned.
    pub next_seq: u64,
    /// Items dropped before reaching the ring (queue full).
    pub dropped: u64,
}

/// The cluster's state as one immutable value.
#[derive(Clone, Debug, PartialEq)]
pub struct MeshSnapshot {
    /// Increases with every rebuild on this node.
    pub seq: u64,
    /// This node's incarnation (start time, ms since the Unix epoch).
    pub epoch_ms: u64,
    /// When this snapshot was built (ms since the Unix epoch).
    pub taken_at_ms: u64,
    /// This node.
    pub this_node: ThisNode,
    /// Peers, by node id.
    pub peers: Vec<PeerView>,
    /// Every daemon in the cluster, by (node, name, id).
    pub daemons: Vec<DaemonView>,
    /// The newest local log lines (up to 256; page the rest with `logs_since`).
    pub recent_logs: Arc<Vec<LogEntry>>,
    /// Local log ring bookkeeping.
    pub logs: RingStats,
    /// The newest local failures (up to 256).
    pub recent_failures: Arc<Vec<FailureRecord>>,
    /// Local failure ring bookkeeping.
    pub failures: RingStats,
    /// Transport counters.
    pub counters: MeshMetrics,
    /// Migrations in flight (and recently ended) anywhere in the cluster.
    pub migrations: Vec<MigrationSummary>,
    /// The newest entries of this node's audit ledger (up to 64).
    pub audit_tail: Arc<Vec<AuditEntry>>,
    /// Entries in this node's audit ledger.
    pub audit_len: u64,
    /// The cluster is frozen until this instant: the latest freeze or thaw any
    /// node reports decides.
    pub frozen_until_ms: Option<u64>,
}

impl MeshSnapshot {
    /// The cluster's nodes as this node knows them: itself unless it is an
    /// operator's node, then every peer that is not (attached decks are not part
    /// of the cluster being commanded).
    pub fn cluster_nodes(&self) -> impl Iterator<Item = NodeId> + '_ {
        std::iter::once(&self.this_node)
            .filter(|n| !n.is_operator())
            .map(|n| n.node_id)
            .chain(self.peers.iter().filter(|p| !p.info.is_operator()).map(|p| p.info.node_id))
    }

    /// True when the cluster is frozen at the snapshot's time.
    pub fn frozen(&self) -> bool {
        self.frozen_until_ms.is_some_and(|t| t > self.taken_at_ms)
    }

    /// An empty snapshot for a node that has just started.
    pub fn empty(this_node: ThisNode, epoch_ms: u64) -> Self {
        Self {
            seq: 0,
            epoch_ms,
            taken_at_ms: epoch_ms,
            this_node,
            peers: Vec::new(),
            daemons: Vec::new(),
            recent_logs: Arc::new(Vec::new()),
            logs: RingStats::default(),
            recent_failures: Arc::new(Vec::new()),
            failures: RingStats::default(),
            counters: MeshMetrics::default(),
            migrations: Vec::new(),
            audit_tail: Arc::new(Vec::new()),
            audit_len: 0,
            frozen_until_ms: None,
        }
    }

    /// The daemon with this id.
    pub fn daemon(&self, id: OriginHash) -> Option<&DaemonView> {
        self.daemons.iter().find(|d| d.id == id)
    }

    /// The peer with this id.
    pub fn peer(&self, id: NodeId) -> Option<&PeerView> {
        self.peers.iter().find(|p| p.info.node_id == id)
    }
}

/// Everything a rebuild reads.
#[derive(Debug)]
pub struct SnapshotInput<'a> {
    /// Sequence number to give the new snapshot.
    pub seq: u64,
    /// This node's incarnation.
    pub epoch_ms: u64,
    /// Now (ms since the Unix epoch).
    pub now_ms: u64,
    /// This node.
    pub this_node: ThisNode,
    /// The transport's peers.
    pub peers: Vec<PeerInfo>,
    /// The fold (including this node's own summary).
    pub fold: &'a Fold,
    /// Recent logs and ring stats.
    pub recent_logs: Arc<Vec<LogEntry>>,
    /// Log ring stats.
    pub logs: RingStats,
    /// Recent failures.
    pub recent_failures: Arc<Vec<FailureRecord>>,
    /// Failure ring stats.
    pub failures: RingStats,
    /// Counters.
    pub counters: MeshMetrics,
    /// Audit ledger tail.
    pub audit_tail: Arc<Vec<AuditEntry>>,
    /// Audit ledger length.
    pub audit_len: u64,
}

/// Builds a snapshot. Pure: no I/O, no clocks.
pub fn build(input: SnapshotInput<'_>) -> MeshSnapshot {
    let me = input.this_node.node_id;
    let health_by_node: HashMap<NodeId, &Health> =
        input.peers.iter().map(|p| (p.node_id, &p.health)).collect();
    let mut daemons = Vec::new();
    for summary in input.fold.iter() {
        let local = summary.node == me;
        let node_health = if local {
            Health::Healthy
        } else {
            health_by_node
                .get(&summary.node)
                .map(|h| (*h).clone())
                .unwrap_or(Health::Unreachable { reason: "no session with its node".into() })
        };
        for d in &summary.daemons {
            let parsed = ParsedName::parse(&d.name);
            daemons.push(DaemonView {
                id: d.id,
                name: d.name.clone(),
                group: parsed.group,
                lineage: parsed.lineage,
                node: summary.node,
                local,
                node_health: node_health.clone(),
                lifecycle: d.lifecycle,
                health: d.health.clone(),
                saturation: f32::from(d.saturation_milli) / 1000.0,
                restarts: d.restarts,
                crash_looping: d.crash_looping,
                started_at_ms: d.started_at_ms,
                age_ms: input.now_ms.saturating_sub(d.started_at_ms),
                log_dropped: d.log_dropped,
                migratable: d.migratable,
            });
        }
    }
    daemons.sort_by(|a, b| (a.node, &a.name, a.id).cmp(&(b.node, &b.name, b.id)));
    let peers: Vec<PeerView> = input
        .peers
        .into_iter()
        .map(|info| {
            let summary = input.fold.get(info.node_id);
            PeerView {
                resources: summary.map(|s| s.resources.clone()),
                daemons: summary.map_or(0, |s| s.daemons.len()),
                admin: summary.map(|s| s.admin.clone()).unwrap_or_default(),
                info,
            }
        })
        .collect();
    let mut this_node = input.this_node;
    if let Some(own) = input.fold.get(me) {
        this_node.resources = own.resources.clone();
        this_node.admin = own.admin.clone();
    }
    let mut migrations: Vec<MigrationSummary> =
        input.fold.iter().flat_map(|s| s.migrations.iter().cloned()).collect();
    migrations.sort_by_key(|m| (m.started_at_ms, m.id));
    // What most cluster nodes follow (each one only a freeze whose operator
    // signatures it checked): one node's claim alone shows nothing.
    let operators: Vec<NodeId> = peers
        .iter()
        .filter(|p| p.info.is_operator())
        .map(|p| p.info.node_id)
        .chain(this_node.is_operator().then_some(this_node.node_id))
        .collect();
    let frozen_until_ms = crate::admin::cluster_frozen_until(
        input.fold.iter().filter(|s| !operators.contains(&s.node)).map(|s| &s.admin),
        input.now_ms,
    );
    MeshSnapshot {
        seq: input.seq,
        epoch_ms: input.epoch_ms,
        taken_at_ms: input.now_ms,
        this_node,
        peers,
        daemons,
        recent_logs: input.recent_logs,
        logs: input.logs,
        recent_failures: input.recent_failures,
        failures: input.failures,
        counters: input.counters,
        migrations,
        audit_tail: input.audit_tail,
        audit_len: input.audit_len,
        frozen_until_ms,
    }
}
