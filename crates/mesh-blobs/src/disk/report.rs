//! [`RecoveryReport`]: what opening a disk store found wrong and repaired.

use std::path::PathBuf;

use crate::Hash;

/// A stretch of a segment file cut off at open.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Truncation {
    /// The segment file.
    pub path: PathBuf,
    /// The new length of the file (where the cut-off bytes started).
    pub offset: u64,
    /// How many bytes were cut off.
    pub bytes: u64,
}

/// A damaged stretch of a segment file that was skipped (records after it were kept).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CorruptRegion {
    /// The segment file.
    pub path: PathBuf,
    /// Where the damage starts.
    pub offset: u64,
    /// Its length in bytes.
    pub len: u64,
    /// What was damaged (`segment header`, `record header`, `record payload`).
    pub what: &'static str,
}

/// What opening a [`crate::DiskLog`] found while rebuilding the index.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecoveryReport {
    /// Segment files scanned.
    pub segments: usize,
    /// Valid records replayed.
    pub records: u64,
    /// Blobs in the rebuilt index.
    pub blobs: usize,
    /// Total bytes cut off (sum over `truncations`).
    pub truncated_bytes: u64,
    /// Torn or garbage tails that were cut off.
    pub truncations: Vec<Truncation>,
    /// Damaged stretches skipped in the middle of a segment.
    pub corrupt_regions: Vec<CorruptRegion>,
    /// Committed blobs dropped because a chunk they need was lost.
    pub lost_blobs: Vec<Hash>,
    /// Chunk records no live blob references (left by deletes, evictions and
    /// interrupted puts; their space is reclaimed only by compaction, which this
    /// version does not do).
    pub unreferenced_chunks: u64,
}

impl RecoveryReport {
    /// True when nothing was cut off, skipped or lost.
    pub fn is_clean(&self) -> bool {
        self.truncations.is_empty() && self.corrupt_regions.is_empty() && self.lost_blobs.is_empty()
    }
}
