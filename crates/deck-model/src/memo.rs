//! What views remember between builds, kept inside [`crate::DeckData`] so that
//! a view build, which only reads the data, can reuse the work of the last one.
//!
//! Only the types live here (the data holds them, the views fill them); the
//! logic is with the view that uses them.

use mesh::{LogLevel, NodeId, OriginHash};

use crate::table::SortSpec;

/// What the LOGS order was computed for: while it stays the same, a build only
/// merges the lines that arrived since.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CacheKey {
    pub(crate) needle: String,
    pub(crate) level: Option<LogLevel>,
    pub(crate) node: Option<NodeId>,
    pub(crate) daemon: Option<OriginHash>,
    pub(crate) sort: Option<SortSpec>,
}

/// The memo of the LOGS order (see `views::logs`).
#[derive(Debug, Default)]
pub(crate) struct LogCache {
    pub(crate) key: Option<CacheKey>,
    /// Deck sequence number of the next line to examine.
    pub(crate) upto: u64,
    /// Deck sequence numbers of the displayed lines, in display order.
    pub(crate) order: Vec<u64>,
}
