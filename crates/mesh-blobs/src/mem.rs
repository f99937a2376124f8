//! [`MemLog`]: the in-memory backend.
//!
//! Chunks are `Bytes` slices of the buffers blobs were put with, so a put copies
//! nothing. A multi-chunk blob put in one piece also keeps its whole buffer, so a
//! get returns it without assembling (and still re-hashes it). When a blob is
//! removed, a chunk it shares with a surviving blob is copied out of the removed
//! blob's buffer, so that buffer is freed. Everything is lost when the store is
//! dropped.

use bytes::Bytes;

use crate::engine::{Backend, Engine, Manifest, RemoveReason};
use crate::index::Index;
use crate::{BlobError, Hash, StoreConfig};

/// The memory backend: chunk locations are the bytes themselves.
#[derive(Debug, Default)]
pub struct MemBackend;

impl Backend for MemBackend {
    type Loc = Bytes;
    const KEEPS_WHOLE: bool = true;

    fn write_chunk(&self, _cv: &Hash, _index: u64, data: Bytes) -> Result<Bytes, BlobError> {
        Ok(data)
    }

    fn write_manifest(&self, _manifest: &Manifest) -> Result<(), BlobError> {
        Ok(())
    }

    fn write_tombstone(&self, _hash: &Hash, _reason: RemoveReason) -> Result<(), BlobError> {
        Ok(())
    }

    fn write_pin(&self, _hash: &Hash, _pinned: bool) -> Result<(), BlobError> {
        Ok(())
    }

    fn end_op(&self) -> Result<(), BlobError> {
        Ok(())
    }

    fn sync(&self) -> Result<(), BlobError> {
        Ok(())
    }

    fn read_chunk(&self, _chunk: &Hash, loc: &Bytes, _len: u32) -> Result<Bytes, BlobError> {
        Ok(loc.clone())
    }

    fn read_chunk_into(&self, chunk: &Hash, loc: &Bytes, out: &mut [u8]) -> Result<(), BlobError> {
        if loc.len() != out.len() {
            return Err(BlobError::Integrity {
                hash: *chunk,
                detail: format!("chunk holds {} bytes, expected {}", loc.len(), out.len()),
            });
        }
        out.copy_from_slice(loc);
        Ok(())
    }

    fn detach(&self, loc: &Bytes, whole: &Bytes) -> Option<Bytes> {
        let start = whole.as_ptr() as usize;
        let at = loc.as_ptr() as usize;
        (at >= start && at < start + whole.len()).then(|| Bytes::copy_from_slice(loc))
    }
}

/// An in-memory blob store.
///
/// ```
/// use mesh_blobs::{BlobStore, MemLog};
///
/// let store = MemLog::default();
/// let hash = store.put_slice(b"hello").unwrap();
/// assert_eq!(store.get(&hash).unwrap().unwrap(), &b"hello"[..]);
/// assert_eq!(hash, mesh_blobs::Hash::of(b"hello"));
/// ```
///
/// The store logic is the engine's, shared with [`crate::DiskLog`]; this is
/// the engine over memory.
pub type MemLog = Engine<MemBackend>;

impl Default for MemLog {
    fn default() -> Self {
        MemLog::new(StoreConfig::default())
    }
}

impl MemLog {
    /// An empty store with these limits.
    ///
    /// A `max_blob_size` above [`crate::MAX_BLOB_SIZE_LIMIT`] is clamped to it.
    pub fn new(mut config: StoreConfig) -> Self {
        config.max_blob_size = config.max_blob_size.min(crate::MAX_BLOB_SIZE_LIMIT);
        Engine::from_parts(config, MemBackend, Index::default())
    }

    /// Replaces the stored bytes of every chunk of a blob (and its whole buffer)
    /// with `f` applied to them, to simulate memory corruption in tests.
    #[cfg(test)]
    pub(crate) fn tamper(&self, hash: &Hash, f: impl Fn(&[u8]) -> Vec<u8>) {
        let mut index = self.index.write();
        let chunks: Vec<Hash> =
            index.blobs.get(hash).map(|b| b.chunks.to_vec()).unwrap_or_default();
        if let Some(entry) = index.blobs.get_mut(hash) {
            entry.whole = entry.whole.as_ref().map(|w| Bytes::from(f(w)));
        }
        for c in chunks {
            let name = index.primary_of(&c).unwrap_or(c);
            if let Some(crate::index::Stored::At(loc)) =
                index.chunks.get_mut(&name).map(|e| &mut e.stored)
            {
                *loc = Bytes::from(f(loc));
            }
        }
    }

    /// Replaces the stored bytes of chunk `i` of a blob (in its chunk and in the
    /// blob's whole buffer) with `f` applied to them, to damage one chunk in tests.
    #[cfg(test)]
    pub(crate) fn tamper_chunk(&self, hash: &Hash, i: usize, f: impl Fn(&[u8]) -> Vec<u8>) {
        let mut index = self.index.write();
        let Some(chunk) = index.blobs.get(hash).and_then(|b| b.chunks.get(i).copied()) else {
            return;
        };
        let name = index.primary_of(&chunk).unwrap_or(chunk);
        let mut damaged = None;
        if let Some(crate::index::Stored::At(loc)) =
            index.chunks.get_mut(&name).map(|e| &mut e.stored)
        {
            let bytes = Bytes::from(f(loc));
            *loc = bytes.clone();
            damaged = Some(bytes);
        }
        if let (Some(entry), Some(bytes)) = (index.blobs.get_mut(hash), damaged) {
            if let Some(whole) = &entry.whole {
                let start = i * crate::CHUNK_SIZE;
                let mut copy = whole.to_vec();
                let end = (start + bytes.len()).min(copy.len());
                copy[start..end].copy_from_slice(&bytes[..end - start]);
                entry.whole = Some(Bytes::from(copy));
            }
        }
    }
}
