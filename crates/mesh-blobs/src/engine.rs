//! The store logic both backends share: hashing, deduplication, refcounts,
//! eviction, integrity checks and metrics, over a [`Backend`] that only moves bytes.
//!
//! # Verification on read
//!
//! A whole-blob read re-hashes every chunk against its name (its chaining value)
//! and merges the names into the blob's hash. A range read re-hashes only the
//! chunks that cover the range, and checks that the blob's chunk names merge into
//! its hash: so every byte returned still chains up to the hash. That merge is
//! done once per blob (blobs hashed by this process pass it by construction) and
//! remembered in the index.
//!
//! # Locking
//!
//! - `commit` (a mutex) serializes every mutation (put commit, delete, pin,
//!   eviction), so deciding what to write and applying it to the index cannot race.
//! - `index` (a read-write lock) is held only for short in-memory steps, never
//!   across hashing or file I/O, so reads proceed while a large put is written.
//! - Hashing happens before any lock is taken.
//!
//! Every change is written to the backend (and synced per policy) before the index
//! is updated: a failed write leaves the index as it was.
//!
//! # Layout
//!
//! This file: the [`Engine`] and the [`Backend`] trait, and `impl BlobStore for
//! Engine` (so [`crate::MemLog`] and [`crate::DiskLog`], an engine over each
//! backend, are stores without code of their own for it). `write` puts, deletes
//! and pins; `read` reads and verifies.

mod read;
mod write;

use std::collections::HashMap;
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

use crate::index::Index;
use crate::store::{BlobStore, InventoryEntry, Metrics};
use crate::{BlobError, Hash, StoreConfig};

/// Why a blob was removed (kept in disk tombstones).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RemoveReason {
    /// `delete` was called.
    Deleted,
    /// Evicted to make room.
    Evicted,
}

/// A blob's manifest: what the disk log writes to commit a blob.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub(crate) hash: Hash,
    pub(crate) size: u64,
    pub(crate) stored_at_ms: u64,
    /// Chunk CVs in order.
    pub(crate) chunks: Vec<Hash>,
    /// Content key of each chunk, in order.
    pub(crate) keys: Vec<u64>,
    /// Positions whose chunk is stored as another chunk (an alias): (position,
    /// the primary chunk whose record holds the bytes).
    pub(crate) shared: Vec<(u32, Hash)>,
}

/// How a chunk that needs bytes gets them.
#[derive(Clone, Debug)]
pub(crate) enum Placement<L> {
    /// Written now, under its own name, at this location.
    Written(L),
    /// Equal to the stored chunk `primary` (at `loc`): shared, nothing written.
    Shared { primary: Hash, loc: L, len: u32 },
}

/// Places chunk `i` of a blob being committed: its placement and content key.
type Place<'a, L> = dyn FnMut(usize) -> Result<(Placement<L>, u64), BlobError> + 'a;

/// Chunks placed during one put, by content key, to share within the blob.
type Local<L> = HashMap<u64, Vec<(Hash, L, u32)>>;

/// Where bytes live. The engine decides what to write and when; a backend writes,
/// reads and syncs.
pub trait Backend: Send + Sync + std::fmt::Debug {
    /// Where one chunk's bytes are.
    type Loc: Clone + Send + Sync + std::fmt::Debug;

    /// Whether the index should keep a put blob's whole buffer (copy-free reads).
    const KEEPS_WHOLE: bool;

    /// Stores chunk number `index` of a blob, named `cv` (its chaining value).
    fn write_chunk(&self, cv: &Hash, index: u64, data: Bytes) -> Result<Self::Loc, BlobError>;

    /// Commits a blob whose chunks were written before.
    fn write_manifest(&self, manifest: &Manifest) -> Result<(), BlobError>;

    /// Records a removal durably.
    fn write_tombstone(&self, hash: &Hash, reason: RemoveReason) -> Result<(), BlobError>;

    /// Records a pin or unpin durably.
    fn write_pin(&self, hash: &Hash, pinned: bool) -> Result<(), BlobError>;

    /// End of one logical operation: sync if the policy says so.
    fn end_op(&self) -> Result<(), BlobError>;

    /// Makes everything written so far durable.
    fn sync(&self) -> Result<(), BlobError>;

    /// Reads one chunk into a new buffer (unverified).
    fn read_chunk(&self, chunk: &Hash, loc: &Self::Loc, len: u32) -> Result<Bytes, BlobError>;

    /// Reads one chunk into `out`, whose length is the chunk's (unverified).
    fn read_chunk_into(
        &self,
        chunk: &Hash,
        loc: &Self::Loc,
        out: &mut [u8],
    ) -> Result<(), BlobError>;

    /// A chunk outlives the blob whose whole buffer is `whole`: returns a new
    /// location if the old one would keep that buffer alive.
    fn detach(&self, _loc: &Self::Loc, _whole: &Bytes) -> Option<Self::Loc> {
        None
    }

    /// Adds backend gauges (segments, disk bytes, syncs).
    fn fill_metrics(&self, _metrics: &mut Metrics) {}
}

/// Counters kept outside the index lock.
#[derive(Debug, Default)]
struct Counters {
    puts: AtomicU64,
    dedup_puts: AtomicU64,
    bytes_written: AtomicU64,
    gets: AtomicU64,
    range_gets: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
    bytes_read: AtomicU64,
    chunks_verified: AtomicU64,
    deletes: AtomicU64,
    evictions: AtomicU64,
    integrity_failures: AtomicU64,
}

/// A store: configuration, a backend and the index over it. Public only as
/// [`crate::MemLog`] and [`crate::DiskLog`] (it cannot be named otherwise).
#[derive(Debug)]
pub struct Engine<B: Backend> {
    config: StoreConfig,
    pub(crate) backend: B,
    pub(crate) index: RwLock<Index<B::Loc>>,
    commit: Mutex<()>,
    counters: Counters,
}

/// Milliseconds since the Unix epoch (0 if the clock is before 1970).
pub(crate) fn unix_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl<B: Backend> Engine<B> {
    /// An engine over `backend` with an already built index.
    pub(crate) fn from_parts(config: StoreConfig, backend: B, index: Index<B::Loc>) -> Self {
        Engine {
            config,
            backend,
            index: RwLock::new(index),
            commit: Mutex::new(()),
            counters: Counters::default(),
        }
    }
}

impl<B: Backend> BlobStore for Engine<B> {
    fn put(&self, data: Bytes) -> Result<Hash, BlobError> {
        self.store(data)
    }

    fn put_stream(&self, reader: &mut dyn Read) -> Result<Hash, BlobError> {
        self.store_stream(reader)
    }

    fn get(&self, hash: &Hash) -> Result<Option<Bytes>, BlobError> {
        self.read(hash)
    }

    fn get_range(&self, hash: &Hash, offset: u64, len: u64) -> Result<Option<Bytes>, BlobError> {
        self.read_range(hash, offset, len)
    }

    fn has(&self, hash: &Hash) -> bool {
        self.index.read().blobs.contains_key(hash)
    }

    fn delete(&self, hash: &Hash) -> Result<bool, BlobError> {
        self.remove(hash)
    }

    fn pin(&self, hash: &Hash) -> Result<bool, BlobError> {
        self.set_pinned(hash, true)
    }

    fn unpin(&self, hash: &Hash) -> Result<bool, BlobError> {
        self.set_pinned(hash, false)
    }

    fn list(&self) -> Vec<InventoryEntry> {
        let index = self.index.read();
        index.blobs.keys().filter_map(|h| index.inventory(h)).collect()
    }

    fn entry(&self, hash: &Hash) -> Option<InventoryEntry> {
        self.index.read().inventory(hash)
    }

    fn metrics(&self) -> Metrics {
        let c = &self.counters;
        let mut m = {
            let index = self.index.read();
            Metrics {
                blobs: index.blobs.len() as u64,
                bytes: index.bytes,
                chunks: index.primaries() as u64,
                used: index.used,
                ..Metrics::default()
            }
        };
        m.capacity = self.config.capacity;
        m.puts = c.puts.load(Relaxed);
        m.dedup_puts = c.dedup_puts.load(Relaxed);
        m.bytes_written = c.bytes_written.load(Relaxed);
        m.gets = c.gets.load(Relaxed);
        m.range_gets = c.range_gets.load(Relaxed);
        m.hits = c.hits.load(Relaxed);
        m.misses = c.misses.load(Relaxed);
        m.bytes_read = c.bytes_read.load(Relaxed);
        m.chunks_verified = c.chunks_verified.load(Relaxed);
        m.deletes = c.deletes.load(Relaxed);
        m.evictions = c.evictions.load(Relaxed);
        m.integrity_failures = c.integrity_failures.load(Relaxed);
        self.backend.fill_metrics(&mut m);
        m
    }

    fn sync(&self) -> Result<(), BlobError> {
        let _commit = self.commit.lock();
        self.backend.sync()
    }
}

#[cfg(test)]
impl<B: Backend> Engine<B> {
    /// The engine's chunk locations, for tests that corrupt stored bytes.
    pub(crate) fn chunk_locs(&self, hash: &Hash) -> Vec<(Hash, B::Loc, u32)> {
        let index = self.index.read();
        index
            .blobs
            .get(hash)
            .map(|b| {
                b.chunks
                    .iter()
                    .filter_map(|c| index.stored(c).map(|(name, loc, len, _)| (name, loc, len)))
                    .collect()
            })
            .unwrap_or_default()
    }
}
