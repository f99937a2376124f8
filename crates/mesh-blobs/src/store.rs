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

    /// Bytes `offset..offset + len` of the blob, reading and checking only the
    /// chunks that cover them: each covering chunk is re-hashed against its
    /// chaining value, and the blob's chunk names against `hash` (so every byte
    /// returned is verified against the blob's hash without reading the rest).
    ///
    /// `Ok(None)` if the store does not hold the blob; [`BlobError::OutOfRange`]
    /// if the range does not lie within the blob (an empty range at its end is
    /// fine); [`BlobError::Integrity`] (never the bytes) if a covering chunk does
    /// not match. Damage outside the range is not looked for. Counted in
    /// [`Metrics::gets`] and [`Metrics::range_gets`].
    ///
    /// The default implementation reads the whole blob with [`BlobStore::get`]
    /// and slices it; [`crate::MemLog`] and [`crate::DiskLog`] read only the
    /// covering chunks.
    fn get_range(&self, hash: &Hash, offset: u64, len: u64) -> Result<Option<Bytes>, BlobError> {
        let Some(data) = self.get(hash)? else { return Ok(None) };
        let size = data.len() as u64;
        match offset.checked_add(len) {
            // Both fit in usize: they are at most `data.len()`.
            Some(end) if end <= size => Ok(Some(data.slice(offset as usize..end as usize))),
            _ => Err(BlobError::OutOfRange { hash: *hash, offset, len, size }),
        }
    }

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
    /// `get` and `get_range` calls.
    pub gets: u64,
    /// Of those, `get_range` calls.
    pub range_gets: u64,
    /// `get` and `get_range` calls that returned bytes.
    pub hits: u64,
    /// `get` and `get_range` calls for blobs the store does not hold.
    pub misses: u64,
    /// Bytes returned by `get` and `get_range`.
    pub bytes_read: u64,
    /// Chunks whose bytes reads hashed and checked against their chaining value
    /// (every chunk of the blob for `get`, the covering ones for `get_range`).
    pub chunks_verified: u64,
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
