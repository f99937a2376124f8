//! The crate's error type.

use std::path::PathBuf;

use crate::Hash;

/// Everything that can go wrong storing, reading or opening blobs.
///
/// A missing blob is not an error: [`crate::BlobStore::get`] returns `Ok(None)`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BlobError {
    /// The blob is larger than the store's configured maximum blob size.
    #[error("blob of {size} bytes is above the maximum blob size of {max} bytes")]
    TooLarge {
        /// Size of the refused blob (for a stream: bytes read when it was refused).
        size: u64,
        /// The configured maximum.
        max: u64,
    },
    /// The blob does not fit even if every unpinned blob were evicted (nothing was
    /// evicted for it).
    #[error(
        "store is full: {needed} new bytes needed, {used} of {capacity} bytes in use, and \
         evicting every unpinned blob would not make room"
    )]
    StoreFull {
        /// Bytes the blob would add (chunks not already stored).
        needed: u64,
        /// Bytes in use when the put was refused.
        used: u64,
        /// The configured capacity.
        capacity: u64,
    },
    /// Stored bytes do not match their hash; the bytes are never returned.
    #[error("integrity check failed for blob {hash}: {detail}")]
    Integrity {
        /// The blob that was read.
        hash: Hash,
        /// What did not match (actual hash, damaged chunk, missing chunk ...).
        detail: String,
    },
    /// A file or directory operation of the disk log failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done (`write segment`, `fsync`, ...).
        op: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The reader given to [`crate::BlobStore::put_stream`] failed.
    #[error("reading blob stream: {0}")]
    Read(#[source] std::io::Error),
    /// The directory exists but is not a blob store (no or unreadable marker file).
    #[error("{path} is not a mesh-blobs store: {reason}")]
    NotAStore {
        /// The directory (or marker file) involved.
        path: PathBuf,
        /// Why it was refused.
        reason: String,
    },
    /// The store was written by a version of this crate with another on-disk format.
    #[error(
        "{path} holds a mesh-blobs store in format {found}; this version reads format {supported}"
    )]
    IncompatibleVersion {
        /// The store's marker file.
        path: PathBuf,
        /// The format version found there.
        found: u32,
        /// The format version this crate reads and writes.
        supported: u32,
    },
    /// Text that is not a 64-digit hex blake3 hash.
    #[error("invalid blob hash: {reason}")]
    InvalidHash {
        /// Why the text was refused.
        reason: &'static str,
    },
    /// A configuration value is out of range.
    #[error("invalid blob store configuration: {reason}")]
    InvalidConfig {
        /// Which value and why.
        reason: String,
    },
}

impl BlobError {
    /// Shorthand for an [`BlobError::Io`] about `path`.
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        BlobError::Io { op, path: path.into(), source }
    }

    /// True for [`BlobError::Integrity`].
    pub fn is_integrity(&self) -> bool {
        matches!(self, BlobError::Integrity { .. })
    }
}
