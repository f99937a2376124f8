//! The in-memory index both backends share: blobs, refcounted chunks and the
//! recency order eviction follows. Pure data, no I/O, no locking.
//!
//! Chunks are named by their chaining value (CV), which depends on their position
//! in the blob. The same bytes at another position have another name; such a
//! chunk is an *alias*: it owns no bytes and points at the *primary* chunk whose
//! bytes it shares (found through the content key, see [`crate::tree::content_key`],
//! and compared byte for byte). An alias holds one reference on its primary, so the
//! primary outlives it; `used` counts primaries only.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;

use crate::Hash;
use crate::store::{CHUNK_SIZE, InventoryEntry};

/// Primary chunks kept findable per content key.
const MAX_PER_KEY: usize = 8;

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
    /// The chunk names are known to merge into the blob's hash: true for blobs
    /// hashed by this process, set for others by the first read that checks it,
    /// so range reads need not merge every chunk name each time.
    pub(crate) names_checked: bool,
    /// Recency key: larger is more recent. Unique per blob.
    tick: u64,
}

/// Where a chunk's bytes are.
#[derive(Debug)]
pub(crate) enum Stored<L> {
    /// At this backend location, under the chunk's own name.
    At(L),
    /// They are the bytes of this other (primary) chunk.
    SameAs(Hash),
}

/// One stored chunk.
#[derive(Debug)]
pub(crate) struct ChunkEntry<L> {
    /// Where its bytes are.
    pub(crate) stored: Stored<L>,
    /// Its length (at most [`CHUNK_SIZE`]).
    pub(crate) len: u32,
    /// Its content key (position-independent).
    pub(crate) key: u64,
    /// How many chunk slots of stored blobs, and aliases, name this chunk.
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
    /// Primary chunks by content key.
    by_key: HashMap<u64, Vec<Hash>>,
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
            by_key: HashMap::new(),
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
    /// Adds a chunk stored at `loc` under its own name, with no references yet. An
    /// existing entry is repaired (given this location) if it needs bytes (it, or
    /// the primary it shares, is damaged) and left alone otherwise.
    pub(crate) fn add_chunk(&mut self, hash: Hash, loc: L, len: u32, key: u64) {
        let repair = self.chunks.contains_key(&hash);
        if repair && !self.needs_bytes(&hash) {
            return;
        }
        if let Some(existing) = self.chunks.get_mut(&hash) {
            existing.damaged = false;
            let old = std::mem::replace(&mut existing.stored, Stored::At(loc));
            self.forget_placement(&hash, old);
            if let Some(existing) = self.chunks.get_mut(&hash) {
                (existing.len, existing.key) = (len, key);
            }
        } else {
            let entry = ChunkEntry { stored: Stored::At(loc), len, key, refs: 0, damaged: false };
            self.chunks.insert(hash, entry);
        }
        self.used += u64::from(len);
        let list = self.by_key.entry(key).or_default();
        if list.len() >= MAX_PER_KEY {
            // Chunks that share a key but not their bytes: keep the newest few
            // findable (the others stay stored, only not offered for sharing).
            list.remove(0);
        }
        list.push(hash);
    }

    /// Adds chunk `hash` as an alias of the primary chunk `primary` (same bytes),
    /// with no references yet, or repairs a damaged alias that way. Returns false,
    /// changing nothing, if `primary` is not a stored primary chunk or `hash` is a
    /// damaged primary (aliases never chain; it needs its own bytes). An intact
    /// `hash` is left as it is.
    pub(crate) fn add_alias(&mut self, hash: Hash, primary: Hash) -> bool {
        let (len, key) = match self.chunks.get(&primary) {
            Some(p) if hash != primary && matches!(p.stored, Stored::At(_)) => (p.len, p.key),
            _ => return false,
        };
        let intact = !self.needs_bytes(&hash);
        match self.chunks.get_mut(&hash) {
            Some(_) if intact => return true,
            Some(existing) if matches!(existing.stored, Stored::At(_)) => return false,
            Some(existing) => {
                existing.damaged = false;
                (existing.len, existing.key) = (len, key);
                let old = std::mem::replace(&mut existing.stored, Stored::SameAs(primary));
                // Take the new reference before dropping the old one: they may be
                // on the same primary.
                self.retain(&primary);
                self.forget_placement(&hash, old);
            }
            None => {
                let entry = ChunkEntry {
                    stored: Stored::SameAs(primary),
                    len,
                    key,
                    refs: 0,
                    damaged: false,
                };
                self.chunks.insert(hash, entry);
                self.retain(&primary);
            }
        }
        true
    }

    fn retain(&mut self, hash: &Hash) {
        if let Some(entry) = self.chunks.get_mut(hash) {
            entry.refs += 1;
        }
    }

    /// Forgets where chunk `hash` (still in the map, with its old length and key)
    /// used to keep its bytes.
    fn forget_placement(&mut self, hash: &Hash, old: Stored<L>) {
        match old {
            Stored::At(_) => {
                let (len, key) = self.chunks.get(hash).map_or((0, 0), |e| (e.len, e.key));
                self.used -= u64::from(len);
                self.unlist(key, hash);
            }
            Stored::SameAs(primary) => self.release(&primary),
        }
    }

    fn unlist(&mut self, key: u64, hash: &Hash) {
        if let Some(list) = self.by_key.get_mut(&key) {
            list.retain(|h| h != hash);
            if list.is_empty() {
                self.by_key.remove(&key);
            }
        }
    }

    /// Drops one reference to a chunk; removes it (and, for an alias, its
    /// reference on the primary) when none is left.
    fn release(&mut self, hash: &Hash) {
        let Some(entry) = self.chunks.get_mut(hash) else { return };
        entry.refs = entry.refs.saturating_sub(1);
        if entry.refs > 0 {
            return;
        }
        if let Some(entry) = self.chunks.remove(hash) {
            match entry.stored {
                Stored::At(_) => {
                    self.used -= u64::from(entry.len);
                    self.unlist(entry.key, hash);
                }
                Stored::SameAs(primary) => self.release(&primary),
            }
        }
    }

    /// Where chunk `hash`'s bytes are: the name they are stored under (its own, or
    /// its primary's), the location, the length, and whether they are known to be
    /// damaged.
    pub(crate) fn stored(&self, hash: &Hash) -> Option<(Hash, L, u32, bool)> {
        let entry = self.chunks.get(hash)?;
        match &entry.stored {
            Stored::At(loc) => Some((*hash, loc.clone(), entry.len, entry.damaged)),
            Stored::SameAs(primary) => {
                let p = self.chunks.get(primary)?;
                match &p.stored {
                    Stored::At(loc) => {
                        Some((*primary, loc.clone(), entry.len, entry.damaged || p.damaged))
                    }
                    Stored::SameAs(_) => None,
                }
            }
        }
    }

    /// Whether chunk `hash` is absent or known to be damaged (its bytes, or its
    /// primary's).
    pub(crate) fn needs_bytes(&self, hash: &Hash) -> bool {
        self.stored(hash).is_none_or(|(_, _, _, damaged)| damaged)
    }

    /// Undamaged primary chunks with content key `key`: (name, location, length).
    pub(crate) fn candidates(&self, key: u64) -> Vec<(Hash, L, u32)> {
        let Some(list) = self.by_key.get(&key) else { return Vec::new() };
        list.iter()
            .filter_map(|h| {
                let e = self.chunks.get(h)?;
                match &e.stored {
                    Stored::At(loc) if !e.damaged => Some((*h, loc.clone(), e.len)),
                    _ => None,
                }
            })
            .collect()
    }

    /// A chunk's content key.
    pub(crate) fn key_of(&self, hash: &Hash) -> Option<u64> {
        self.chunks.get(hash).map(|e| e.key)
    }

    /// The primary an alias shares its bytes with.
    pub(crate) fn primary_of(&self, hash: &Hash) -> Option<Hash> {
        match self.chunks.get(hash)?.stored {
            Stored::SameAs(primary) => Some(primary),
            Stored::At(_) => None,
        }
    }

    /// Whether chunk `hash` is stored under its own name (damaged or not).
    pub(crate) fn is_primary(&self, hash: &Hash) -> bool {
        self.chunks.get(hash).is_some_and(|e| matches!(e.stored, Stored::At(_)))
    }

    /// Number of chunks that own their bytes (aliases excluded).
    pub(crate) fn primaries(&self) -> usize {
        self.by_key.values().map(Vec::len).sum()
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
            self.release(c);
        }
        // Surviving chunks (and the primaries of surviving aliases) must not keep
        // the blob's whole buffer alive.
        if let Some(whole) = &entry.whole {
            for c in entry.chunks.iter() {
                let name = self.primary_of(c).unwrap_or(*c);
                if let Some(Stored::At(loc)) = self.chunks.get_mut(&name).map(|e| &mut e.stored) {
                    if let Some(new) = detach(loc, whole) {
                        *loc = new;
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
            // Aliases share their primary's bytes: count each stored name once.
            let name = self.primary_of(c).unwrap_or(*c);
            if seen.insert(name) {
                total += self.chunks.get(&name).map_or(0, |e| u64::from(e.len));
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
        self.blobs.get(hash).is_some_and(|b| b.chunks.iter().all(|c| !self.needs_bytes(c)))
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
    /// A new entry (recency is assigned by [`Index::add_blob`]), its chunk names
    /// not yet checked against its hash.
    pub(crate) fn new(size: u64, chunks: Arc<[Hash]>, stored_at_ms: u64, pinned: bool) -> Self {
        BlobEntry {
            size,
            chunks,
            whole: None,
            stored_at_ms,
            last_read_ms: None,
            read_count: 0,
            pinned,
            names_checked: false,
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
        idx.add_chunk(h(1), 1, 10, 100);
        idx.add_chunk(h(2), 2, 10, 200);
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

    #[test]
    fn aliases_share_bytes_and_hold_their_primary() {
        let mut idx = Index::<u8>::default();
        idx.add_chunk(h(1), 1, 10, 100);
        assert!(idx.add_alias(h(2), h(1)));
        assert!(!idx.add_alias(h(3), h(2)), "aliases never chain");
        assert!(!idx.add_alias(h(1), h(1)));
        assert_eq!(idx.used, 10, "an alias adds no bytes");
        assert_eq!(idx.stored(&h(2)), Some((h(1), 1, 10, false)));
        assert_eq!(idx.candidates(100), vec![(h(1), 1, 10)]);
        assert!(idx.add_blob(h(10), BlobEntry::new(10, vec![h(1)].into(), 0, false)));
        assert!(idx.add_blob(h(11), BlobEntry::new(10, vec![h(2)].into(), 0, false)));
        // The primary's only blob goes; the alias keeps its bytes.
        idx.remove_blob(&h(10), |_, _| None).unwrap();
        assert_eq!((idx.used, idx.chunks.len()), (10, 2));
        assert_eq!(idx.stored(&h(2)), Some((h(1), 1, 10, false)));
        // A damaged primary makes its aliases need bytes.
        idx.mark_damaged(&h(1));
        assert!(idx.needs_bytes(&h(2)));
        assert!(idx.candidates(100).is_empty());
        idx.add_chunk(h(1), 5, 10, 100);
        assert!(!idx.needs_bytes(&h(2)));
        idx.remove_blob(&h(11), |_, _| None).unwrap();
        assert_eq!((idx.used, idx.chunks.len(), idx.primaries()), (0, 0, 0));
        assert!(idx.by_key.is_empty());
    }

    #[test]
    fn a_damaged_alias_is_repaired_as_a_primary() {
        let mut idx = Index::<u8>::default();
        idx.add_chunk(h(1), 1, 10, 100);
        assert!(idx.add_alias(h(2), h(1)));
        assert!(idx.add_blob(h(11), BlobEntry::new(10, vec![h(2)].into(), 0, false)));
        idx.mark_damaged(&h(2));
        idx.add_chunk(h(2), 2, 10, 100);
        // The primary lost its last reference (the alias's) and is gone.
        assert_eq!(idx.stored(&h(2)), Some((h(2), 2, 10, false)));
        assert_eq!((idx.used, idx.chunks.len(), idx.primaries()), (10, 1, 1));
    }
}
