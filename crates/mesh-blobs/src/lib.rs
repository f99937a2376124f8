#![doc = include_str!("../README.md")]
//!
//! ## How it works
//!
//! Blobs are named by the blake3 [`struct@Hash`] of their whole content, so anyone holding
//! a hash can check bytes they were given. Inside a store, blobs are cut into
//! fixed [`CHUNK_SIZE`] chunks (1 MiB). Each chunk is named by its BLAKE3 chaining
//! value: the interior node of the blob's own BLAKE3 tree that covers it, which
//! depends on the chunk's content and position. Hashing a blob once therefore
//! yields both its hash and its chunk names, and a chunk can be verified on its
//! own. Identical blobs and identical chunks are stored once and refcounted,
//! wherever the chunks sit: at the same position of different blobs (shared
//! prefixes, new versions of a file) they have the same name; at other positions
//! a fast content key finds them and a byte comparison confirms them. Every read
//! re-hashes the content and returns [`BlobError::Integrity`], never the bytes,
//! on a mismatch; a range read ([`BlobStore::get_range`]) reads and re-hashes
//! only the chunks covering the range.
//!
//! Two backends implement the [`BlobStore`] trait:
//!
//! - [`MemLog`]: in memory, copy-free puts and gets of `bytes::Bytes`.
//! - [`DiskLog`]: append-only segment files with per-record checksums, an
//!   [`FsyncPolicy`], durable deletes, and recovery at open that cuts off a torn
//!   tail and reports damage in a [`RecoveryReport`].
//!
//! Both enforce a maximum blob size and an optional capacity, evicting the
//! least-recently-read unpinned blobs to make room, and keep [`Metrics`] and an
//! inventory ([`InventoryEntry`]).
//!
//! A [`MeshBlobAdapter`] puts a store on a mesh node: it serves the store's blobs
//! to other nodes over `mesh-rpc` (`blobs.get`, `blobs.has`, `blobs.list`, see
//! [`wire`]) and fetches theirs by hash, verifying every fetched blob against its
//! hash before storing it. The services treat callers as untrusted: a range
//! request reads only the chunks it covers, and each caller node may have only a
//! few calls in flight ([`wire::MAX_IN_FLIGHT_PER_CALLER`]).

mod adapter;
mod config;
mod disk;
mod engine;
mod error;
mod hash;
mod index;
mod mem;
mod store;
mod tree;

#[cfg(test)]
mod suite;

pub use adapter::{
    AdapterConfig, AdapterInventory, AdapterMetrics, Fetched, MAX_ADAPTER_NAME,
    MAX_REMOTE_LIST_ENTRIES, MeshBlobAdapter, list_remote, wire,
};
pub use config::{
    DEFAULT_MAX_BLOB_SIZE, DEFAULT_SEGMENT_SIZE, DiskConfig, FsyncPolicy, MAX_BLOB_SIZE_LIMIT,
    OpenVerify, StoreConfig,
};
pub use disk::{
    CorruptRegion, DiskLog, RecoveryReport, STORE_FORMAT_VERSION, STORE_MARKER_FILE, Truncation,
};
pub use error::BlobError;
pub use hash::{Hash, SHORT_HASH_DIGITS};
pub use mem::MemLog;
pub use store::{BlobStore, CHUNK_SIZE, InventoryEntry, Metrics};
