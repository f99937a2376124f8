//! [`DeckConfig`]: the deck's bounds and timings.

use std::time::Duration;

/// Default capacity of the merged log tail (lines).
pub const DEFAULT_LOG_TAIL: usize = 50_000;
/// Default capacity of the merged failure tail.
pub const DEFAULT_FAILURE_TAIL: usize = 4096;
/// Default capacity of the merged audit tail.
pub const DEFAULT_AUDIT_TAIL: usize = 4096;
/// Default capacity of the RPC call tail.
pub const DEFAULT_CALL_TAIL: usize = 1024;
/// Admin results kept for the status bar and the audit page.
pub const DEFAULT_ACTION_TAIL: usize = 64;

/// Bounds and timings of a [`crate::DeckClient`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeckConfig {
    /// Merged log tail capacity (lines).
    pub log_tail: usize,
    /// Merged failure tail capacity.
    pub failure_tail: usize,
    /// Merged audit tail capacity.
    pub audit_tail: usize,
    /// RPC call tail capacity.
    pub call_tail: usize,
    /// Admin results kept.
    pub action_tail: usize,
    /// Entries asked for per page (at most `mesh_rpc::node_services::MAX_PAGE`).
    pub page: u32,
    /// Pages read per node and stream in one refresh (bounds one refresh's work;
    /// the rest comes with the next).
    pub pages_per_refresh: usize,
    /// Deadline of one page request to another node.
    pub poll_deadline: Duration,
    /// Deadline of one admin commit to one node.
    pub commit_deadline: Duration,
    /// Leave the deck's own `logs.since` / `failures.since` / `audit.since` calls
    /// out of the call tail (they would otherwise dominate NRPC).
    pub hide_own_polling: bool,
    /// A migration without progress for this long shows as stalled.
    pub stall_after: Duration,
    /// Window over which NRPC computes rates.
    pub rate_window: Duration,
    /// Read every node's blob inventories over the mesh (`blobs.list`) this
    /// often, for a deck that holds no adapters of its own (an attached deck);
    /// `None` shows only the adapters given to the deck.
    pub remote_blobs: Option<Duration>,
}

impl Default for DeckConfig {
    fn default() -> Self {
        DeckConfig {
            log_tail: DEFAULT_LOG_TAIL,
            failure_tail: DEFAULT_FAILURE_TAIL,
            audit_tail: DEFAULT_AUDIT_TAIL,
            call_tail: DEFAULT_CALL_TAIL,
            action_tail: DEFAULT_ACTION_TAIL,
            page: 1024,
            pages_per_refresh: 4,
            poll_deadline: Duration::from_secs(2),
            commit_deadline: Duration::from_secs(5),
            hide_own_polling: true,
            stall_after: Duration::from_secs(5),
            rate_window: Duration::from_secs(10),
            remote_blobs: None,
        }
    }
}
