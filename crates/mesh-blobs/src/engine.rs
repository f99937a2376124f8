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

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::io::{ErrorKind, Read};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

use crate::index::{BlobEntry, Index, chunk_len};
use crate::store::{CHUNK_SIZE, InventoryEntry, Metrics, chunk_count};
use crate::tree;
use crate::{BlobError, Hash, StoreConfig};

/// Why a blob was removed (kept in disk tombstones).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum RemoveReason {
    /// `delete` was called.
    Deleted,
    /// Evicted to make room.
    Evicted,
}

/// A blob's manifest: what the disk log writes to commit a blob.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Manifest {
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
pub(crate) trait Backend: Send + Sync + std::fmt::Debug {
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

/// A store: configuration, a backend and the index over it.
#[derive(Debug)]
pub(crate) struct Engine<B: Backend> {
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
    pub(crate) fn new(config: StoreConfig, backend: B, index: Index<B::Loc>) -> Self {
        Engine {
            config,
            backend,
            index: RwLock::new(index),
            commit: Mutex::new(()),
            counters: Counters::default(),
        }
    }

    fn check_size(&self, size: u64) -> Result<(), BlobError> {
        if size > self.config.max_blob_size {
            return Err(BlobError::TooLarge { size, max: self.config.max_blob_size });
        }
        Ok(())
    }

    /// [`crate::BlobStore::put`].
    pub(crate) fn put(&self, data: Bytes) -> Result<Hash, BlobError> {
        let size = data.len() as u64;
        self.check_size(size)?;
        let tree::Hashed { root: hash, cvs: chunks, keys } = tree::hash_blob(&data);
        let whole = (B::KEEPS_WHOLE && chunks.len() > 1).then(|| data.clone());
        let mut written = 0u64;
        let mut local = Local::new();
        let result = self.commit(hash, size, &chunks, whole, &mut |i| {
            let start = i * CHUNK_SIZE;
            let end = (start + CHUNK_SIZE).min(data.len());
            let bytes = data.slice(start..end);
            let key = keys[i];
            // A damaged primary gets its own bytes again (others may share them).
            if !self.index.read().is_primary(&chunks[i]) {
                if let Some(shared) = self.find_equal(key, &bytes, &local) {
                    return Ok((shared, key));
                }
            }
            let loc = self.backend.write_chunk(&chunks[i], i as u64, bytes)?;
            written += (end - start) as u64;
            local.entry(key).or_default().push((chunks[i], loc.clone(), (end - start) as u32));
            Ok((Placement::Written(loc), key))
        });
        self.counters.bytes_written.fetch_add(written, Relaxed);
        result
    }

    /// A stored chunk with exactly these bytes (content key `key`): one placed
    /// earlier in this put (`local`) or one in the index. Candidates are compared
    /// byte for byte; at most a few are tried, so crafted key collisions cost
    /// little. A candidate that cannot be read is skipped.
    fn find_equal(
        &self,
        key: u64,
        bytes: &[u8],
        local: &Local<B::Loc>,
    ) -> Option<Placement<B::Loc>> {
        const MAX_TRIES: usize = 4;
        let mut candidates: Vec<(Hash, B::Loc, u32)> =
            local.get(&key).map(|l| l.to_vec()).unwrap_or_default();
        candidates.extend(self.index.read().candidates(key));
        candidates
            .into_iter()
            .filter(|(_, _, len)| *len as usize == bytes.len())
            .take(MAX_TRIES)
            .find(|(name, loc, len)| {
                self.backend.read_chunk(name, loc, *len).is_ok_and(|stored| stored == bytes)
            })
            .map(|(primary, loc, len)| Placement::Shared { primary, loc, len })
    }

    /// [`crate::BlobStore::put_stream`]. Chunks are written as they are read (not
    /// under the commit lock, a slow reader must not stall other writers); the blob
    /// is committed at the end. Chunks of a stream that fails are left unreferenced.
    pub(crate) fn put_stream(&self, reader: &mut dyn Read) -> Result<Hash, BlobError> {
        let mut size = 0u64;
        let mut chunks: Vec<Hash> = Vec::new();
        let mut placed: HashMap<Hash, (Placement<B::Loc>, u64)> = HashMap::new();
        let mut local = Local::new();
        // The blob hash if the first chunk turns out to be the only one.
        let mut single_root = Hash::EMPTY;
        loop {
            let mut buf = vec![0u8; CHUNK_SIZE];
            let n = read_full(reader, &mut buf).map_err(BlobError::Read)?;
            if n == 0 {
                break;
            }
            size += n as u64;
            self.check_size(size)?;
            buf.truncate(n);
            let index = chunks.len() as u64;
            let chunk = if index == 0 {
                let (root, cv) = tree::single_chunk(&buf);
                single_root = root;
                cv
            } else {
                tree::chunk_cv(index, &buf)
            };
            if let Entry::Vacant(slot) = placed.entry(chunk) {
                let existing = {
                    let index = self.index.read();
                    index
                        .stored(&chunk)
                        .filter(|(_, _, _, damaged)| !damaged)
                        .map(|(name, loc, len, _)| (name, loc, len, index.key_of(&chunk)))
                };
                let placement = match existing {
                    Some((name, loc, _, Some(key))) if name == chunk => {
                        (Placement::Written(loc), key)
                    }
                    Some((primary, loc, len, Some(key))) => {
                        (Placement::Shared { primary, loc, len }, key)
                    }
                    _ => {
                        let key = tree::content_key(&buf);
                        let shareable = !self.index.read().is_primary(&chunk);
                        match shareable.then(|| self.find_equal(key, &buf, &local)).flatten() {
                            Some(shared) => (shared, key),
                            None => {
                                let loc =
                                    self.backend.write_chunk(&chunk, index, Bytes::from(buf))?;
                                self.counters.bytes_written.fetch_add(n as u64, Relaxed);
                                local.entry(key).or_default().push((chunk, loc.clone(), n as u32));
                                (Placement::Written(loc), key)
                            }
                        }
                    }
                };
                slot.insert(placement);
            }
            chunks.push(chunk);
            if n < CHUNK_SIZE {
                break;
            }
        }
        let hash = match chunks.len() {
            0 => Hash::EMPTY,
            1 => single_root,
            _ => tree::root_from_chunks(&chunks, size).ok_or_else(|| BlobError::InvalidConfig {
                reason: "stream chunk count does not match its size".into(),
            })?,
        };
        self.commit(hash, size, &chunks, None, &mut |i| {
            placed.get(&chunks[i]).cloned().ok_or_else(|| BlobError::Integrity {
                hash,
                detail: "stream chunk location lost".into(),
            })
        })
    }

    /// Stores a hashed blob: deduplicates, makes room, places the chunks that need
    /// bytes (`place(i)` for chunk `i`: its placement and content key), writes the
    /// manifest and then updates the index.
    fn commit(
        &self,
        hash: Hash,
        size: u64,
        chunks: &[Hash],
        whole: Option<Bytes>,
        place: &mut Place<'_, B::Loc>,
    ) -> Result<Hash, BlobError> {
        let _commit = self.commit.lock();
        {
            let mut index = self.index.write();
            if index.is_intact(&hash) {
                index.touch(&hash);
                drop(index);
                self.counters.puts.fetch_add(1, Relaxed);
                self.counters.dedup_puts.fetch_add(1, Relaxed);
                return Ok(hash);
            }
        }
        self.make_room(size, chunks)?;

        // Chunks that need bytes: absent or damaged, each distinct chunk once.
        let needs: Vec<usize> = {
            let index = self.index.read();
            let mut seen = std::collections::HashSet::new();
            (0..chunks.len())
                .filter(|&i| index.needs_bytes(&chunks[i]) && seen.insert(chunks[i]))
                .collect()
        };
        let mut placed = HashMap::with_capacity(needs.len());
        for i in needs {
            let (placement, key) = place(i)?;
            placed.insert(chunks[i], (placement, key, chunk_len(size, i)));
        }
        let live = self.index.read().blobs.contains_key(&hash);
        let stored_at_ms = unix_now_ms();
        // A live blob being repaired is committed again too: its manifest must
        // say where the new bytes are.
        if !live || !placed.is_empty() {
            let (keys, shared) = {
                let index = self.index.read();
                let mut keys = Vec::with_capacity(chunks.len());
                let mut shared = Vec::new();
                for (i, c) in chunks.iter().enumerate() {
                    let (key, primary) = match placed.get(c) {
                        Some((Placement::Shared { primary, .. }, key, _)) => (*key, Some(*primary)),
                        Some((Placement::Written(_), key, _)) => (*key, None),
                        None => (index.key_of(c).unwrap_or(0), index.primary_of(c)),
                    };
                    keys.push(key);
                    if let Some(primary) = primary {
                        shared.push((i as u32, primary));
                    }
                }
                (keys, shared)
            };
            self.backend.write_manifest(&Manifest {
                hash,
                size,
                stored_at_ms,
                chunks: chunks.to_vec(),
                keys,
                shared,
            })?;
        }
        self.backend.end_op()?;

        let mut index = self.index.write();
        // Written chunks first: a chunk shared within this blob names one of them.
        let mut aliases = Vec::new();
        for (chunk, (placement, key, len)) in placed {
            match placement {
                Placement::Written(loc) => index.add_chunk(chunk, loc, len, key),
                Placement::Shared { primary, loc, len } => {
                    aliases.push((chunk, primary, loc, len, key))
                }
            }
        }
        for (chunk, primary, loc, len, key) in aliases {
            // The primary may have been removed since it was found (a stream is
            // placed before the commit lock is taken); its bytes are still where
            // they were.
            if index.stored(&primary).is_none() {
                index.add_chunk(primary, loc, len, key);
            }
            if !index.add_alias(chunk, primary) {
                tracing::warn!(chunk = %chunk.short(), "chunk could not share stored bytes; left as it was");
            }
        }
        if live {
            if let Some(entry) = index.blobs.get_mut(&hash) {
                entry.whole = whole;
            }
            index.touch(&hash);
        } else {
            let mut entry = BlobEntry::new(size, chunks.into(), stored_at_ms, false);
            entry.whole = whole;
            // The chunk names were just computed from the content, and the hash
            // from them.
            entry.names_checked = true;
            if !index.add_blob(hash, entry) {
                // Unreachable while the commit lock is held (chunks were just added).
                return Err(BlobError::Integrity {
                    hash,
                    detail: "chunk missing at commit".into(),
                });
            }
        }
        drop(index);
        self.counters.puts.fetch_add(1, Relaxed);
        Ok(hash)
    }

    /// Evicts least-recently-used unpinned blobs until a blob with these chunks fits.
    fn make_room(&self, size: u64, chunks: &[Hash]) -> Result<(), BlobError> {
        let Some(capacity) = self.config.capacity else {
            return Ok(());
        };
        {
            // Refuse up front, evicting nothing, what would not fit even in a store
            // holding only the pinned blobs.
            let index = self.index.read();
            let floor = index.pinned_floor(size, chunks);
            if floor > capacity {
                return Err(BlobError::StoreFull {
                    needed: index.missing_bytes(size, chunks),
                    used: index.used,
                    capacity,
                });
            }
        }
        loop {
            let (needed, used, victim) = {
                let index = self.index.read();
                let needed = index.missing_bytes(size, chunks);
                (needed, index.used, index.eviction_candidate())
            };
            if used.saturating_add(needed) <= capacity {
                return Ok(());
            }
            let Some(victim) = victim else {
                return Err(BlobError::StoreFull { needed, used, capacity });
            };
            self.backend.write_tombstone(&victim, RemoveReason::Evicted)?;
            self.remove_from_index(&victim);
            self.counters.evictions.fetch_add(1, Relaxed);
            tracing::debug!(blob = %victim.short(), "evicted blob to make room");
        }
    }

    fn remove_from_index(&self, hash: &Hash) -> bool {
        let backend = &self.backend;
        self.index.write().remove_blob(hash, |loc, whole| backend.detach(loc, whole)).is_some()
    }

    /// [`crate::BlobStore::get`].
    pub(crate) fn get(&self, hash: &Hash) -> Result<Option<Bytes>, BlobError> {
        self.counters.gets.fetch_add(1, Relaxed);
        let collected = {
            let index = self.index.read();
            index.blobs.get(hash).map(|blob| {
                let chunks: Vec<_> = blob.chunks.iter().map(|c| (*c, index.stored(c))).collect();
                (blob.size, blob.whole.clone(), chunks)
            })
        };
        let Some((size, whole, chunks)) = collected else {
            self.counters.misses.fetch_add(1, Relaxed);
            return Ok(None);
        };
        let bytes = self.read_verified(hash, size, whole, &chunks)?;
        {
            let mut index = self.index.write();
            index.record_read(hash, unix_now_ms());
            // The names just matched the content, which hashed to `hash`.
            if let Some(entry) = index.blobs.get_mut(hash) {
                entry.names_checked = true;
            }
        }
        self.counters.hits.fetch_add(1, Relaxed);
        self.counters.bytes_read.fetch_add(size, Relaxed);
        Ok(Some(bytes))
    }

    /// [`crate::BlobStore::get_range`]: reads and checks only the chunks covering
    /// `offset..offset + len` (see the module docs).
    pub(crate) fn get_range(
        &self,
        hash: &Hash,
        offset: u64,
        len: u64,
    ) -> Result<Option<Bytes>, BlobError> {
        self.counters.gets.fetch_add(1, Relaxed);
        self.counters.range_gets.fetch_add(1, Relaxed);
        let collected = {
            let index = self.index.read();
            index.blobs.get(hash).map(|blob| (blob.size, blob.chunks.clone(), blob.names_checked))
        };
        let Some((size, chunks, names_checked)) = collected else {
            self.counters.misses.fetch_add(1, Relaxed);
            return Ok(None);
        };
        let end = match offset.checked_add(len) {
            Some(end) if end <= size => end,
            _ => return Err(BlobError::OutOfRange { hash: *hash, offset, len, size }),
        };
        if len == 0 {
            self.counters.hits.fetch_add(1, Relaxed);
            return Ok(Some(Bytes::new()));
        }
        if chunks.len() as u64 != chunk_count(size) {
            return Err(self.integrity(hash, "its chunk list does not match its size".into()));
        }
        // A single chunk is checked against the hash itself, below.
        if !names_checked && chunks.len() > 1 {
            let root = tree::root_from_chunks(&chunks, size);
            if root != Some(*hash) {
                return Err(self.integrity(hash, "its chunk names do not hash to it".into()));
            }
            if let Some(entry) = self.index.write().blobs.get_mut(hash) {
                entry.names_checked = true;
            }
        }
        let c = CHUNK_SIZE as u64;
        // Both fit in usize: they index `chunks`.
        let (first, last) = ((offset / c) as usize, ((end - 1) / c) as usize);
        let covering: Vec<_> = {
            let index = self.index.read();
            (first..=last).map(|i| (i, chunks[i], index.stored(&chunks[i]))).collect()
        };
        let mut parts = Vec::with_capacity(covering.len());
        for (i, chunk, stored) in covering {
            let (name, loc) = match stored {
                Some((_, _, _, true)) => {
                    return Err(self.integrity(hash, format!("chunk {} is damaged", chunk.short())));
                }
                Some((name, loc, _, false)) => (name, loc),
                None => {
                    return Err(self.integrity(hash, format!("chunk {} is missing", chunk.short())));
                }
            };
            let want = chunk_len(size, i);
            let bytes = self
                .backend
                .read_chunk(&name, &loc, want)
                .map_err(|e| self.read_failed(hash, &[chunk, name], e))?;
            let matches = bytes.len() == want as usize && {
                self.counters.chunks_verified.fetch_add(1, Relaxed);
                if chunks.len() == 1 {
                    tree::single_chunk(&bytes) == (*hash, chunk)
                } else {
                    tree::chunk_cv(i as u64, &bytes) == chunk
                }
            };
            if !matches {
                // The bytes are the stored name's: an alias's primary is damaged too.
                self.damaged(hash, &[chunk, name]);
                let detail = format!("chunk {} does not match its hash", chunk.short());
                return Err(self.integrity(hash, detail));
            }
            parts.push((i as u64 * c, bytes));
        }
        let bytes = match parts.as_slice() {
            // Offsets within a chunk fit in usize.
            [(start, only)] => only.slice((offset - start) as usize..(end - start) as usize),
            many => {
                let mut out = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
                for (start, part) in many {
                    let from = offset.saturating_sub(*start) as usize;
                    let to = (end - start).min(part.len() as u64) as usize;
                    out.extend_from_slice(&part[from..to]);
                }
                Bytes::from(out)
            }
        };
        self.index.write().record_read(hash, unix_now_ms());
        self.counters.hits.fetch_add(1, Relaxed);
        self.counters.bytes_read.fetch_add(len, Relaxed);
        Ok(Some(bytes))
    }

    /// Reads a blob and checks every chunk against its name and the blob against
    /// its hash; marks damaged chunks and returns an integrity error on a mismatch.
    #[allow(clippy::type_complexity)] // reason: a private helper's plain tuple list.
    fn read_verified(
        &self,
        hash: &Hash,
        size: u64,
        whole: Option<Bytes>,
        chunks: &[(Hash, Option<(Hash, B::Loc, u32, bool)>)],
    ) -> Result<Bytes, BlobError> {
        // (CV at its position, name the bytes are stored under, location, length)
        let mut present = Vec::with_capacity(chunks.len());
        for (chunk, entry) in chunks {
            match entry {
                Some((_, _, _, true)) => {
                    return Err(self.integrity(hash, format!("chunk {} is damaged", chunk.short())));
                }
                Some((name, loc, len, false)) => present.push((chunk, name, loc, *len)),
                None => {
                    return Err(self.integrity(hash, format!("chunk {} is missing", chunk.short())));
                }
            }
        }
        let (bytes, actual_root) = match present.as_slice() {
            [] => (Bytes::new(), Hash::EMPTY),
            [(chunk, name, loc, len)] => {
                let bytes = match whole {
                    Some(whole) => whole,
                    None => self
                        .backend
                        .read_chunk(name, loc, *len)
                        .map_err(|e| self.read_failed(hash, &[**chunk, **name], e))?,
                };
                if bytes.is_empty() {
                    return Err(self.integrity(hash, "stored chunk is empty".into()));
                }
                self.counters.chunks_verified.fetch_add(1, Relaxed);
                let (root, cv) = tree::single_chunk(&bytes);
                if cv != **chunk {
                    // The bytes are the stored name's: an alias's primary is damaged too.
                    self.damaged(hash, &[**chunk, **name]);
                }
                (bytes, root)
            }
            many => {
                let bytes = match whole {
                    Some(whole) => whole,
                    None => self.assemble(hash, size, many)?,
                };
                let cvs = tree::chunk_cvs(&bytes);
                self.counters.chunks_verified.fetch_add(cvs.len() as u64, Relaxed);
                let bad: Vec<Hash> = many
                    .iter()
                    .zip(&cvs)
                    .filter(|((c, _, _, _), cv)| *c != *cv)
                    .flat_map(|((c, name, _, _), _)| [**c, **name])
                    .collect();
                if !bad.is_empty() || cvs.len() != many.len() {
                    self.damaged(hash, &bad);
                }
                (bytes, tree::root_from_chunks(&cvs, size).unwrap_or(Hash::EMPTY))
            }
        };
        if actual_root != *hash {
            return Err(self.integrity(hash, format!("content hashes to {}", actual_root.short())));
        }
        Ok(bytes)
    }

    /// Reads the chunks of a multi-chunk blob into one buffer.
    fn assemble(
        &self,
        hash: &Hash,
        size: u64,
        chunks: &[(&Hash, &Hash, &B::Loc, u32)],
    ) -> Result<Bytes, BlobError> {
        let size = usize::try_from(size)
            .map_err(|_| self.integrity(hash, "blob too large for this platform".into()))?;
        let mut buf = vec![0u8; size];
        let mut offset = 0usize;
        for (chunk, name, loc, len) in chunks {
            let end = offset + *len as usize;
            let Some(slot) = buf.get_mut(offset..end) else {
                return Err(self.integrity(hash, "chunk lengths exceed the blob size".into()));
            };
            self.backend
                .read_chunk_into(name, loc, slot)
                .map_err(|e| self.read_failed(hash, &[**chunk, **name], e))?;
            offset = end;
        }
        if offset != size {
            return Err(self.integrity(hash, "chunk lengths fall short of the blob size".into()));
        }
        Ok(Bytes::from(buf))
    }

    /// Marks chunks damaged (a put of content containing them writes fresh
    /// copies) and stops serving the blob's whole buffer.
    fn damaged(&self, hash: &Hash, chunks: &[Hash]) {
        let mut index = self.index.write();
        for chunk in chunks {
            index.mark_damaged(chunk);
        }
        if let Some(entry) = index.blobs.get_mut(hash) {
            entry.whole = None;
        }
    }

    /// A backend read of one chunk failed: a chunk the backend cannot produce (a
    /// segment cut short) is damaged, and the error names the blob.
    fn read_failed(&self, hash: &Hash, chunks: &[Hash], error: BlobError) -> BlobError {
        match error {
            BlobError::Integrity { detail, .. } => {
                self.damaged(hash, chunks);
                self.integrity(hash, detail)
            }
            other => other,
        }
    }

    fn integrity(&self, hash: &Hash, detail: String) -> BlobError {
        self.counters.integrity_failures.fetch_add(1, Relaxed);
        tracing::warn!(blob = %hash, %detail, "blob failed its integrity check");
        BlobError::Integrity { hash: *hash, detail }
    }

    /// [`crate::BlobStore::has`].
    pub(crate) fn has(&self, hash: &Hash) -> bool {
        self.index.read().blobs.contains_key(hash)
    }

    /// [`crate::BlobStore::delete`].
    pub(crate) fn delete(&self, hash: &Hash) -> Result<bool, BlobError> {
        let _commit = self.commit.lock();
        if !self.has(hash) {
            return Ok(false);
        }
        self.backend.write_tombstone(hash, RemoveReason::Deleted)?;
        self.backend.end_op()?;
        self.remove_from_index(hash);
        self.counters.deletes.fetch_add(1, Relaxed);
        Ok(true)
    }

    /// [`crate::BlobStore::pin`] and [`crate::BlobStore::unpin`].
    pub(crate) fn set_pinned(&self, hash: &Hash, pinned: bool) -> Result<bool, BlobError> {
        let _commit = self.commit.lock();
        match self.index.read().blobs.get(hash) {
            None => return Ok(false),
            Some(entry) if entry.pinned == pinned => return Ok(true),
            Some(_) => {}
        }
        self.backend.write_pin(hash, pinned)?;
        self.backend.end_op()?;
        self.index.write().set_pinned(hash, pinned);
        Ok(true)
    }

    /// [`crate::BlobStore::list`].
    pub(crate) fn list(&self) -> Vec<InventoryEntry> {
        let index = self.index.read();
        index.blobs.keys().filter_map(|h| index.inventory(h)).collect()
    }

    /// [`crate::BlobStore::entry`].
    pub(crate) fn entry(&self, hash: &Hash) -> Option<InventoryEntry> {
        self.index.read().inventory(hash)
    }

    /// [`crate::BlobStore::metrics`].
    pub(crate) fn metrics(&self) -> Metrics {
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

    /// [`crate::BlobStore::sync`].
    pub(crate) fn sync(&self) -> Result<(), BlobError> {
        let _commit = self.commit.lock();
        self.backend.sync()
    }

    /// The engine's chunk locations, for tests that corrupt stored bytes.
    #[cfg(test)]
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

/// Fills `buf` from `reader` unless end of file comes first; returns bytes read.
fn read_full(reader: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}
