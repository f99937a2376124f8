//! The in-memory index both backends share: blobs, refcounted chunks and the
//! recency order eviction follows. Pure data, no I/O, no locking.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;

use crate::Hash;
use crate::store::{CHUNK_SIZE, InventoryEntry};

/// One stored blob.
#[derive(Debug)]
pub(crate) struct BlobEntry {
    /// Length in bytes.
    pub(crate) size: u64,
    /// Chunk hashes in order (empty for the empty blob).
    pub(crate) chunks: Arc<[Hash]>,
    /// The whole blob as one buffer, when the backend keeps one (memory log, blobs
    /// put in one piece): makes a multi-chunk get copy-free.
    pub(crate) whole: Option<Bytes>,
    pub(crate) stored_at_ms: u64,
    pub(crate) last_read_ms: Option<u64>,
    pub(crate) read_count: u64,
    pub(crate) pinned: bool,
    /// Recency key: larger is more recent. Unique per blob.
    tick: u64,
}

/// One stored chunk.
#[derive(Debug)]
pub(crate) struct ChunkEntry<L> {
    /// Where the backend keeps its bytes.
    pub(crate) loc: L,
    /// Its length (at most [`CHUNK_SIZE`]).
    pub(crate) len: u32,
    /// How many chunk slots of stored blobs name this chunk.
    refs: u64,
    /// A read found the content does not match the hash: a put of any blob
    /// containing this chunk writes a fresh copy.
    pub(crate) damaged: bool,
}

/// Blobs and chunks of one store.
#[derive(Debug)]
pub(crate) struct Index<L> {
    pub(crate) blobs: HashMap<Hash, BlobEntry>,
    pub(crate) chunks: HashMap<Hash, ChunkEntry<L>>,
    /// Unpinned blobs by recency tick: the first is the eviction candidate.
    lru: BTreeMap<u64, Hash>,
    next_tick: u64,
    /// Sum of chunk lengths (distinct chunks).
    pub(crate) used: u64,
    /// Sum of blob sizes.
    pub(crate) bytes: u64,
}

impl<L> Default for Index<L> {
    fn default() -> Self {
        Index {
            blobs: HashMap::new(),
            chunks: HashMap::new(),
            lru: BTreeMap::new(),
            next_tick: 0,
            used: 0,
            bytes: 0,
        }
    }
}

/// Length of chunk `i` of a blob of `size` bytes under fixed-size chunking.
pub(crate) fn chunk_len(size: u64, i: usize) -> u32 {
    let start = i as u64 * CHUNK_SIZE as u64;
    size.saturating_sub(start).min(CHUNK_SIZE as u64) as u32
}

impl<L: Clone> Index<L> {
    /// Adds a chunk with no references yet. An existing entry is repaired (its
    /// location replaced) if it was damaged and left alone otherwise.
    pub(crate) fn add_chunk(&mut self, hash: Hash, loc: L, len: u32) {
        match self.chunks.get_mut(&hash) {
            Some(existing) => {
                if existing.damaged {
                    existing.loc = loc;
                    existing.damaged = false;
                }
            }
            None => {
                self.used += u64::from(len);
                self.chunks.insert(hash, ChunkEntry { loc, len, refs: 0, damaged: false });
            }
        }
    }

    /// Adds a blob whose chunks are all present (added with [`Index::add_chunk`]).
    /// Returns false, changing nothing, if a chunk is missing.
    pub(crate) fn add_blob(&mut self, hash: Hash, mut entry: BlobEntry) -> bool {
        if self.blobs.contains_key(&hash)
            || !entry.chunks.iter().all(|c| self.chunks.contains_key(c))
        {
            return false;
        }
        for c in entry.chunks.iter() {
            if let Some(chunk) = self.chunks.get_mut(c) {
                chunk.refs += 1;
            }
        }
        entry.tick = self.bump();
        if !entry.pinned {
            self.lru.insert(entry.tick, hash);
        }
        self.bytes += entry.size;
        self.blobs.insert(hash, entry);
        true
    }

    /// Removes a blob and every chunk no other blob uses. `detach` is called for
    /// each surviving chunk of the blob with the blob's whole buffer, so a backend
    /// can stop a shared chunk from keeping that buffer alive.
    pub(crate) fn remove_blob(
        &mut self,
        hash: &Hash,
        detach: impl Fn(&L, &Bytes) -> Option<L>,
    ) -> Option<BlobEntry> {
        let entry = self.blobs.remove(hash)?;
        self.lru.remove(&entry.tick);
        self.bytes -= entry.size;
        for c in entry.chunks.iter() {
            if let Some(chunk) = self.chunks.get_mut(c) {
                chunk.refs = chunk.refs.saturating_sub(1);
                if chunk.refs == 0 {
                    self.used -= u64::from(chunk.len);
                    self.chunks.remove(c);
                } else if let Some(whole) = &entry.whole {
                    if let Some(loc) = detach(&chunk.loc, whole) {
                        chunk.loc = loc;
                    }
                }
            }
        }
        Some(entry)
    }

    /// Marks a blob as just used (eviction takes the least recently used first).
    pub(crate) fn touch(&mut self, hash: &Hash) {
        let tick = self.bump();
        if let Some(entry) = self.blobs.get_mut(hash) {
            if !entry.pinned {
                self.lru.remove(&entry.tick);
                self.lru.insert(tick, *hash);
            }
            entry.tick = tick;
        }
    }

    /// Records a successful read.
    pub(crate) fn record_read(&mut self, hash: &Hash, now_ms: u64) {
        if let Some(entry) = self.blobs.get_mut(hash) {
            entry.last_read_ms = Some(now_ms);
            entry.read_count += 1;
        }
        self.touch(hash);
    }

    /// Sets the pinned flag. Returns `None` if the blob is absent, else whether the
    /// flag changed.
    pub(crate) fn set_pinned(&mut self, hash: &Hash, pinned: bool) -> Option<bool> {
        let entry = self.blobs.get_mut(hash)?;
        if entry.pinned == pinned {
            return Some(false);
        }
        entry.pinned = pinned;
        if pinned {
            self.lru.remove(&entry.tick);
        } else {
            self.lru.insert(entry.tick, *hash);
        }
        Some(true)
    }

    /// The least recently used unpinned blob.
    pub(crate) fn eviction_candidate(&self) -> Option<Hash> {
        self.lru.values().next().copied()
    }

    /// Bytes that storing a blob with these chunks would add: its distinct chunks
    /// that are not stored yet.
    pub(crate) fn missing_bytes(&self, size: u64, chunks: &[Hash]) -> u64 {
        let mut seen = HashSet::new();
        let mut missing = 0;
        for (i, c) in chunks.iter().enumerate() {
            if !self.chunks.contains_key(c) && seen.insert(*c) {
                missing += u64::from(chunk_len(size, i));
            }
        }
        missing
    }

    /// Bytes in use if every unpinned blob were evicted and then a blob with these
    /// chunks stored: the pinned blobs' distinct chunks plus the blob's own.
    pub(crate) fn pinned_floor(&self, size: u64, chunks: &[Hash]) -> u64 {
        let mut seen = HashSet::new();
        let mut total = 0u64;
        let pinned = self.blobs.values().filter(|b| b.pinned).flat_map(|b| b.chunks.iter());
        for c in pinned {
            if seen.insert(*c) {
                total += self.chunks.get(c).map_or(0, |e| u64::from(e.len));
            }
        }
        for (i, c) in chunks.iter().enumerate() {
            if seen.insert(*c) {
                total += u64::from(chunk_len(size, i));
            }
        }
        total
    }

    /// Whether the blob is stored and none of its chunks is known to be damaged.
    pub(crate) fn is_intact(&self, hash: &Hash) -> bool {
        self.blobs.get(hash).is_some_and(|b| {
            b.chunks.iter().all(|c| self.chunks.get(c).is_some_and(|e| !e.damaged))
        })
    }

    /// Marks a chunk damaged.
    pub(crate) fn mark_damaged(&mut self, chunk: &Hash) {
        if let Some(entry) = self.chunks.get_mut(chunk) {
            entry.damaged = true;
        }
    }

    /// The inventory entry of a blob.
    pub(crate) fn inventory(&self, hash: &Hash) -> Option<InventoryEntry> {
        self.blobs.get(hash).map(|b| InventoryEntry {
            hash: *hash,
            size: b.size,
            chunks: b.chunks.len() as u32,
            stored_at_ms: b.stored_at_ms,
            last_read_ms: b.last_read_ms,
            read_count: b.read_count,
            pinned: b.pinned,
        })
    }

    fn bump(&mut self) -> u64 {
        self.next_tick += 1;
        self.next_tick
    }
}

impl BlobEntry {
    /// A new entry (recency is assigned by [`Index::add_blob`]).
    pub(crate) fn new(size: u64, chunks: Arc<[Hash]>, stored_at_ms: u64, pinned: bool) -> Self {
        BlobEntry {
            size,
            chunks,
            whole: None,
            stored_at_ms,
            last_read_ms: None,
            read_count: 0,
            pinned,
            tick: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(n: u8) -> Hash {
        Hash::from_bytes([n; 32])
    }

    #[test]
    fn chunk_lengths() {
        let c = CHUNK_SIZE as u64;
        assert_eq!(chunk_len(0, 0), 0);
        assert_eq!(chunk_len(5, 0), 5);
        assert_eq!(chunk_len(c + 1, 0), CHUNK_SIZE as u32);
        assert_eq!(chunk_len(c + 1, 1), 1);
        assert_eq!(chunk_len(c, 1), 0);
    }

    #[test]
    fn refcounts_and_lru() {
        let mut idx = Index::<u8>::default();
        idx.add_chunk(h(1), 1, 10);
        idx.add_chunk(h(2), 2, 10);
        assert!(idx.add_blob(h(10), BlobEntry::new(20, vec![h(1), h(2)].into(), 0, false)));
        assert!(idx.add_blob(h(11), BlobEntry::new(10, vec![h(1)].into(), 0, false)));
        assert!(!idx.add_blob(h(12), BlobEntry::new(10, vec![h(3)].into(), 0, false)));
        assert_eq!(idx.used, 20);
        assert_eq!(idx.eviction_candidate(), Some(h(10)));
        idx.touch(&h(10));
        assert_eq!(idx.eviction_candidate(), Some(h(11)));
        assert_eq!(idx.set_pinned(&h(11), true), Some(true));
        assert_eq!(idx.eviction_candidate(), Some(h(10)));
        idx.remove_blob(&h(10), |_, _| None).unwrap();
        assert_eq!(idx.used, 10, "chunk 1 is still used by blob 11");
        assert_eq!(idx.eviction_candidate(), None);
        idx.remove_blob(&h(11), |_, _| None).unwrap();
        assert_eq!((idx.used, idx.bytes, idx.chunks.len()), (0, 0, 0));
    }
}
