//! The [`BlobStore`] trait every backend implements, and the plain data it returns.

use std::io::Read;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::{BlobError, Hash};

/// Fixed chunk size: 1 MiB.
///
/// Blobs up to this size are stored as one chunk. Larger blobs are stored as
/// `ceil(size / CHUNK_SIZE)` chunks (all full except the last) plus a manifest
/// listing the chunk hashes and the total length. A chunk is named by its BLAKE3
/// chaining value at its position in the blob (a function of its content and its
/// index); identical chunks are stored once at any position (see the crate
/// docs). The blob itself is always named by `blake3::hash` of its whole content,
/// computed from the same single pass (see the crate docs).
pub const CHUNK_SIZE: usize = 1 << 20;

/// A content-addressed blob store.
///
/// All methods take `&self` and the stores are `Send + Sync`: share one behind an
/// `Arc` between tasks. Calls block (they hash and may do file I/O); from async
/// code, call them inside `spawn_blocking` for large blobs.
pub trait BlobStore: Send + Sync + std::fmt::Debug {
    /// Stores a blob and returns its hash. Storing content that is already present
    /// stores nothing new and returns the same hash.
    ///
    /// The in-memory log keeps `data` itself (no copy), so prefer passing a `Bytes`
    /// that owns just this blob rather than a small slice of a large buffer.
    fn put(&self, data: Bytes) -> Result<Hash, BlobError>;

    /// Stores a blob from a borrowed slice (copies it once, then as [`BlobStore::put`]).
    fn put_slice(&self, data: &[u8]) -> Result<Hash, BlobError> {
        self.put(Bytes::copy_from_slice(data))
    }

    /// Stores a blob read from `reader` until end of file, holding at most about one
    /// chunk of it in memory at a time (apart from what the backend stores).
    fn put_stream(&self, reader: &mut dyn Read) -> Result<Hash, BlobError>;

    /// The blob's bytes, after checking they hash to `hash`.
    ///
    /// `Ok(None)` if the store does not hold the blob; [`BlobError::Integrity`]
    /// (never the bytes) if the stored content does not match.
    fn get(&self, hash: &Hash) -> Result<Option<Bytes>, BlobError>;

    /// Whether the store holds the blob (no read, no integrity check).
    fn has(&self, hash: &Hash) -> bool;

    /// Removes a blob (pinned or not). Chunks other blobs still use are kept.
    /// Returns whether the blob was present.
    fn delete(&self, hash: &Hash) -> Result<bool, BlobError>;

    /// Protects a blob from eviction. Returns whether the blob is present.
    fn pin(&self, hash: &Hash) -> Result<bool, BlobError>;

    /// Makes a pinned blob evictable again. Returns whether the blob is present.
    fn unpin(&self, hash: &Hash) -> Result<bool, BlobError>;

    /// One entry per stored blob, in no particular order.
    fn list(&self) -> Vec<InventoryEntry>;

    /// The inventory entry of one blob.
    fn entry(&self, hash: &Hash) -> Option<InventoryEntry>;

    /// Counters and gauges.
    fn metrics(&self) -> Metrics;

    /// Makes every completed write durable (a no-op for memory stores).
    fn sync(&self) -> Result<(), BlobError> {
        Ok(())
    }
}

/// What the store knows about one blob.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct InventoryEntry {
    /// The blob's hash.
    pub hash: Hash,
    /// Its length in bytes.
    pub size: u64,
    /// Number of chunks it is stored as.
    pub chunks: u32,
    /// When it was first stored (ms since the Unix epoch).
    pub stored_at_ms: u64,
    /// When it was last read successfully (not kept across a disk log reopen).
    pub last_read_ms: Option<u64>,
    /// Successful reads since it was stored (or since the disk log was opened).
    pub read_count: u64,
    /// Whether it is protected from eviction.
    pub pinned: bool,
}

/// Counters (since the store was created or opened) and gauges of a store.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Metrics {
    /// Blobs stored.
    pub blobs: u64,
    /// Sum of the sizes of the stored blobs.
    pub bytes: u64,
    /// Distinct chunks stored.
    pub chunks: u64,
    /// Bytes of distinct chunk content: what counts against the capacity.
    pub used: u64,
    /// The configured capacity (`None`: unbounded).
    pub capacity: Option<u64>,
    /// Successful puts (including ones whose content was already stored).
    pub puts: u64,
    /// Puts whose blob was already stored in full.
    pub dedup_puts: u64,
    /// Bytes of chunk content actually written by puts (after deduplication).
    pub bytes_written: u64,
    /// `get` calls.
    pub gets: u64,
    /// `get` calls that returned bytes.
    pub hits: u64,
    /// `get` calls for blobs the store does not hold.
    pub misses: u64,
    /// Bytes returned by `get`.
    pub bytes_read: u64,
    /// Blobs removed by `delete`.
    pub deletes: u64,
    /// Blobs evicted to make room.
    pub evictions: u64,
    /// Reads that found content not matching its hash.
    pub integrity_failures: u64,
    /// Segment files (disk log only).
    pub segments: u64,
    /// Total size of the segment files, live and dead records (disk log only).
    pub disk_bytes: u64,
    /// fsync calls made (disk log only).
    pub syncs: u64,
}

/// Number of chunks a blob of `size` bytes is stored as (0 for the empty blob).
pub(crate) fn chunk_count(size: u64) -> u64 {
    size.div_ceil(CHUNK_SIZE as u64)
}
