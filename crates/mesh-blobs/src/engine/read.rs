//! Reading: whole blobs and ranges, every byte returned verified against the
//! blob's hash; what fails the check is marked damaged and counted.

use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;

use super::{Backend, Engine, unix_now_ms};
use crate::index::chunk_len;
use crate::store::{CHUNK_SIZE, chunk_count};
use crate::tree;
use crate::{BlobError, Hash};

#[cfg(doc)]
use crate::store::BlobStore;

impl<B: Backend> Engine<B> {
    /// [`BlobStore::get`]: the whole blob, every chunk re-hashed.
    pub(super) fn read(&self, hash: &Hash) -> Result<Option<Bytes>, BlobError> {
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

    /// [`BlobStore::get_range`]: reads and checks only the chunks covering
    /// `offset..offset + len` (see the engine's docs).
    pub(super) fn read_range(
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
}
