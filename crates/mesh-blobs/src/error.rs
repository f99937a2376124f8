//! The crate's error type.

use std::path::PathBuf;

use mesh::NodeId;
use mesh_rpc::RpcError;

use crate::Hash;

/// Everything that can go wrong storing, reading or opening blobs, and moving them
/// between nodes with a [`crate::MeshBlobAdapter`].
///
/// A missing blob is not an error for a store: [`crate::BlobStore::get`] returns
/// `Ok(None)`. A blob that [`crate::MeshBlobAdapter::fetch`] cannot find anywhere
/// is [`BlobError::NotFound`].
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
    /// Stored bytes, or bytes a peer sent for a fetch, do not match their hash; the
    /// bytes are never returned or stored.
    #[error("integrity check failed for blob {hash}: {detail}")]
    Integrity {
        /// The blob that was read or fetched.
        hash: Hash,
        /// What did not match (actual hash, damaged chunk, missing chunk, which
        /// peer sent what ...).
        detail: String,
    },
    /// A range read ([`crate::BlobStore::get_range`]) asked for bytes past the end
    /// of the blob (nothing was read).
    #[error(
        "range of {len} bytes at offset {offset} is past the end of blob {hash} ({size} bytes)"
    )]
    OutOfRange {
        /// The blob.
        hash: Hash,
        /// First byte asked for.
        offset: u64,
        /// Bytes asked for.
        len: u64,
        /// The blob's size.
        size: u64,
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
    /// No peer asked holds the blob (`node` = `None`: no reachable peer does).
    #[error("blob {hash} is not held by {}", holder(node))]
    NotFound {
        /// The blob asked for.
        hash: Hash,
        /// The one node asked, if the fetch named one.
        node: Option<NodeId>,
    },
    /// A call to another node's blob service failed (unreachable node, timeout,
    /// no blob adapter there, a failed read on its side ...).
    #[error("{service} on node {node}: {source}")]
    Rpc {
        /// The node called.
        node: NodeId,
        /// The service called (`blobs.get`, `blobs.has`, `blobs.list`), or `rpc`
        /// when opening the node's RPC endpoint failed.
        service: &'static str,
        /// What the RPC layer reported.
        #[source]
        source: RpcError,
    },
    /// A peer answered with something the blob protocol does not allow (an
    /// endless or out-of-order inventory listing).
    #[error("node {node} broke the blob protocol: {detail}")]
    PeerProtocol {
        /// The peer.
        node: NodeId,
        /// What it did.
        detail: String,
    },
    /// An adapter name is empty, too long, or holds control characters.
    #[error("invalid blob adapter name {name:?}: {reason}")]
    InvalidAdapterName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Another live adapter on the node already has this name.
    #[error("node {node} already has a blob adapter named {name:?}")]
    AdapterExists {
        /// The name given.
        name: String,
        /// The node.
        node: NodeId,
    },
    /// A store call handed to the runtime's blocking pool did not complete (it
    /// panicked, or the runtime is shutting down).
    #[error("blocking store call failed: {0}")]
    Task(String),
}

/// Who [`BlobError::NotFound`] says was asked.
fn holder(node: &Option<NodeId>) -> String {
    match node {
        Some(node) => format!("node {node}"),
        None => "any reachable peer".to_owned(),
    }
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
