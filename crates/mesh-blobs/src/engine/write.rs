//! Writing: putting blobs (from memory or a stream) with deduplication and
//! eviction, deleting, pinning. Every mutation holds the commit lock; the backend
//! writes (and syncs per policy) before the index changes.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::io::{ErrorKind, Read};
use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;

use super::{Backend, Engine, Local, Manifest, Place, Placement, RemoveReason, unix_now_ms};
use crate::index::{BlobEntry, chunk_len};
use crate::store::{BlobStore, CHUNK_SIZE};
use crate::tree;
use crate::{BlobError, Hash};

impl<B: Backend> Engine<B> {
    fn check_size(&self, size: u64) -> Result<(), BlobError> {
        if size > self.config.max_blob_size {
            return Err(BlobError::TooLarge { size, max: self.config.max_blob_size });
        }
        Ok(())
    }

    /// [`BlobStore::put`]: hashes `data` once (blob hash, chunk names and
    /// content keys), then commits it.
    pub(super) fn store(&self, data: Bytes) -> Result<Hash, BlobError> {
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

    /// [`BlobStore::put_stream`]. Chunks are written as they are read (not
    /// under the commit lock, a slow reader must not stall other writers); the blob
    /// is committed at the end. Chunks of a stream that fails are left unreferenced.
    pub(super) fn store_stream(&self, reader: &mut dyn Read) -> Result<Hash, BlobError> {
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

    /// [`BlobStore::delete`]: a tombstone, then the index.
    pub(super) fn remove(&self, hash: &Hash) -> Result<bool, BlobError> {
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

    /// [`BlobStore::pin`] and [`BlobStore::unpin`].
    pub(super) fn set_pinned(&self, hash: &Hash, pinned: bool) -> Result<bool, BlobError> {
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
