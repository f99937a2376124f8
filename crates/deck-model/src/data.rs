//! [`DeckData`]: everything views are computed from, as one value.
//!
//! A [`crate::DeckSource`] keeps one `DeckData` up to date (the latest snapshot,
//! the merged tails, the blob inventory) and lends it to view builders. Tests and
//! benchmarks build one directly: every field is public.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use mesh::{FailureRecord, LogEntry, MeshSnapshot, NodeId};
use mesh_auth::{AuditEntry, OperatorId};
use mesh_blobs::Hash;
use mesh_rpc::{CallRecord, Side};
use parking_lot::Mutex;
use serde::Serialize;

use crate::config::DeckConfig;
use crate::memo::LogCache;
use crate::report::CommitReport;
use crate::state::Watermarks;
use crate::tail::Tail;

/// Which end of an RPC call a record comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CallSide {
    /// The caller's record.
    Client,
    /// The server's record.
    Server,
}

/// One finished RPC call, as the deck keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallEntry {
    /// When it started on the recording side (ms since the Unix epoch).
    pub ts_ms: u64,
    /// The calling node.
    pub caller: NodeId,
    /// The serving node.
    pub callee: NodeId,
    /// The service (shared with the RPC layer, not copied).
    pub service: Arc<str>,
    /// Which side recorded it.
    pub side: CallSide,
    /// Latency in microseconds.
    pub latency_us: u64,
    /// `ok` or an error name (`timeout`, `unavailable`, ...).
    pub status: &'static str,
    /// Whether it succeeded.
    pub ok: bool,
    /// Request size in bytes.
    pub request_bytes: u64,
    /// Response size in bytes.
    pub response_bytes: u64,
    /// The request id (the same on both sides).
    pub request_id: u64,
}

impl CallEntry {
    /// The deck's form of an observer record.
    pub fn from_record(record: &CallRecord) -> CallEntry {
        CallEntry {
            ts_ms: record
                .ts
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            caller: record.caller,
            callee: record.callee,
            service: record.service.clone(),
            side: match record.side {
                Side::Client => CallSide::Client,
                Side::Server => CallSide::Server,
            },
            latency_us: u64::try_from(record.latency.as_micros()).unwrap_or(u64::MAX),
            status: record.status.as_str(),
            ok: record.status.is_ok(),
            request_bytes: record.request_bytes,
            response_bytes: record.response_bytes,
            request_id: record.request_id,
        }
    }
}

/// Whether an audit entry's place in its node's hash chain was checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChainMark {
    /// Links to the previous entry and matches its hash
    /// (`mesh_auth::verify_segment`).
    Verified,
    /// Does not check out (or comes after an entry that did not).
    Broken,
    /// Not checked.
    Unverified,
}

/// One audit ledger entry and the node whose ledger holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuditItem {
    /// The node whose ledger holds it.
    pub node: NodeId,
    /// The entry.
    pub entry: AuditEntry,
    /// Chain check result.
    pub chain: ChainMark,
}

/// One blob in one adapter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobEntry {
    /// Adapter name.
    pub adapter: Arc<str>,
    /// The node the adapter runs on.
    pub node: NodeId,
    /// The blob's hash.
    pub hash: Hash,
    /// Size in bytes.
    pub size: u64,
    /// Chunks stored.
    pub chunks: u32,
    /// First stored (ms since the Unix epoch).
    pub stored_at_ms: u64,
    /// Last read, if ever.
    pub last_read_ms: Option<u64>,
    /// Successful reads.
    pub read_count: u64,
    /// Protected from eviction.
    pub pinned: bool,
}

/// One blob adapter's figures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FortStats {
    /// Adapter name.
    pub adapter: Arc<str>,
    /// The node it runs on.
    pub node: NodeId,
    /// Blobs stored.
    pub blobs: u64,
    /// Bytes of the blobs stored.
    pub bytes: u64,
    /// Bytes counting against the capacity (after deduplication).
    pub used: u64,
    /// Capacity (`None`: unbounded).
    pub capacity: Option<u64>,
    /// Puts.
    pub puts: u64,
    /// Gets.
    pub gets: u64,
    /// Gets that found the blob.
    pub hits: u64,
    /// Blobs fetched from peers.
    pub fetches: u64,
    /// Failed fetches.
    pub fetch_failures: u64,
    /// Blobs evicted.
    pub evictions: u64,
    /// Integrity failures (reads and fetches).
    pub integrity_failures: u64,
    /// Ranges served to peers.
    pub serves: u64,
}

impl Default for FortStats {
    fn default() -> Self {
        FortStats {
            adapter: Arc::from(""),
            node: NodeId(0),
            blobs: 0,
            bytes: 0,
            used: 0,
            capacity: None,
            puts: 0,
            gets: 0,
            hits: 0,
            fetches: 0,
            fetch_failures: 0,
            evictions: 0,
            integrity_failures: 0,
            serves: 0,
        }
    }
}

/// The state of a node's audit chain as the deck checked it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum ChainStatus {
    /// Nothing read yet.
    #[default]
    Unread,
    /// Every entry read so far links up, from the genesis entry.
    Verified {
        /// Entries checked.
        entries: u64,
    },
    /// An entry does not check out.
    Broken {
        /// The first bad entry.
        seq: u64,
        /// What is wrong.
        problem: String,
    },
}

/// How the deck's reading of one node's streams goes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct NodeStreams {
    /// Next log sequence number wanted from the node.
    pub logs_next: u64,
    /// Next failure sequence number wanted.
    pub failures_next: u64,
    /// Audit entries read.
    pub audit_next: u64,
    /// Chain check of its ledger.
    pub chain: ChainStatus,
    /// Items the node dropped from its rings before the deck read them.
    pub missed: u64,
    /// Times the node's streams started over (the node restarted).
    pub restarts: u32,
    /// The last error reading from it, if the last attempt failed.
    pub last_error: Option<String>,
    /// When a read last succeeded (ms since the Unix epoch).
    pub last_ok_ms: Option<u64>,
}

/// Everything views are computed from.
#[derive(Debug)]
pub struct DeckData {
    /// The clock when the data was last refreshed (ages are computed against it,
    /// so a view is a pure function of the data).
    pub now_ms: u64,
    /// The operator signing admin commands.
    pub operator: OperatorId,
    /// The node the deck reads through.
    pub deck_node: NodeId,
    /// The latest snapshot.
    pub snapshot: Arc<MeshSnapshot>,
    /// Merged logs of every node.
    pub logs: Tail<LogEntry>,
    /// Merged failures of every node.
    pub failures: Tail<FailureRecord>,
    /// Merged audit entries of every node.
    pub audit: Tail<AuditItem>,
    /// RPC calls seen by the observers.
    pub calls: Tail<CallEntry>,
    /// The merged blob inventory.
    pub blobs: Vec<BlobEntry>,
    /// Per adapter figures.
    pub forts: Vec<FortStats>,
    /// Per node reading state.
    pub streams: BTreeMap<NodeId, NodeStreams>,
    /// Recent admin results, newest last.
    pub actions: VecDeque<CommitReport>,
    /// How long a migration may sit without progress before it shows as stalled.
    pub stall_after_ms: u64,
    /// Window for call rates.
    pub rate_window_ms: u64,
    /// Bumped by every refresh that changed something.
    pub generation: u64,
    pub(crate) log_cache: Mutex<LogCache>,
}

impl DeckData {
    /// Empty tails around a snapshot.
    pub fn new(snapshot: Arc<MeshSnapshot>, operator: OperatorId, config: &DeckConfig) -> DeckData {
        DeckData {
            now_ms: snapshot.taken_at_ms,
            operator,
            deck_node: snapshot.this_node.node_id,
            snapshot,
            logs: Tail::with_marker(config.log_tail, |e| e.level == mesh::LogLevel::Error),
            failures: Tail::new(config.failure_tail),
            audit: Tail::new(config.audit_tail),
            calls: Tail::new(config.call_tail),
            blobs: Vec::new(),
            forts: Vec::new(),
            streams: BTreeMap::new(),
            actions: VecDeque::new(),
            stall_after_ms: u64::try_from(config.stall_after.as_millis()).unwrap_or(u64::MAX),
            rate_window_ms: u64::try_from(config.rate_window.as_millis())
                .unwrap_or(u64::MAX)
                .max(1),
            generation: 0,
            log_cache: Mutex::new(LogCache::default()),
        }
    }

    /// How far every tail has got (what a pause freezes).
    pub fn marks(&self) -> Watermarks {
        Watermarks {
            logs: self.logs.next_seq(),
            failures: self.failures.next_seq(),
            audit: self.audit.next_seq(),
            calls: self.calls.next_seq(),
        }
    }

    /// Every node id known: this node first, then peers.
    pub fn nodes(&self) -> impl Iterator<Item = NodeId> + '_ {
        std::iter::once(self.snapshot.this_node.node_id)
            .chain(self.snapshot.peers.iter().map(|p| p.info.node_id))
    }
}
