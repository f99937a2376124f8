//! Configuration of the stores: limits shared by both backends and the disk log's
//! durability and layout settings.

use std::time::Duration;

use crate::BlobError;
use crate::store::CHUNK_SIZE;

/// Default [`StoreConfig::max_blob_size`]: 1 GiB.
pub const DEFAULT_MAX_BLOB_SIZE: u64 = 1 << 30;

/// Largest value [`StoreConfig::max_blob_size`] may take: 1 TiB.
///
/// A blob's manifest lists one 32-byte hash per chunk and is stored as one record,
/// which must stay far below the 4 GiB record limit (1 TiB is a 32 MiB manifest).
pub const MAX_BLOB_SIZE_LIMIT: u64 = 1 << 40;

/// Default [`DiskConfig::segment_size`]: 256 MiB.
pub const DEFAULT_SEGMENT_SIZE: u64 = 256 << 20;

/// Limits shared by every backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreConfig {
    /// Blobs larger than this are refused with [`BlobError::TooLarge`].
    pub max_blob_size: u64,
    /// Bytes of unique chunk content the store may hold (`None`: unbounded).
    ///
    /// When a put would exceed it, least-recently-read unpinned blobs are evicted
    /// first; if that is not enough the put fails with [`BlobError::StoreFull`].
    pub capacity: Option<u64>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig { max_blob_size: DEFAULT_MAX_BLOB_SIZE, capacity: None }
    }
}

impl StoreConfig {
    /// The same limits with a capacity.
    pub fn with_capacity(mut self, bytes: u64) -> Self {
        self.capacity = Some(bytes);
        self
    }

    /// The same limits with another maximum blob size.
    pub fn with_max_blob_size(mut self, bytes: u64) -> Self {
        self.max_blob_size = bytes;
        self
    }

    /// Checks the values are in range.
    pub(crate) fn validate(&self) -> Result<(), BlobError> {
        if self.max_blob_size > MAX_BLOB_SIZE_LIMIT {
            return Err(BlobError::InvalidConfig {
                reason: format!(
                    "max_blob_size {} is above the limit of {MAX_BLOB_SIZE_LIMIT} bytes",
                    self.max_blob_size
                ),
            });
        }
        Ok(())
    }
}

/// When the disk log asks the operating system to make writes durable (`fdatasync`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FsyncPolicy {
    /// Every put, delete, pin and eviction is on disk before the call returns.
    EveryPut,
    /// Sync at the end of an operation once `max_bytes` were written since the last
    /// sync or `max_delay` has passed since it. Checked when operations complete
    /// (there is no background thread): call [`crate::BlobStore::sync`] to force it;
    /// dropping the store syncs too.
    Batched {
        /// Unsynced bytes that trigger a sync.
        max_bytes: u64,
        /// Age of the oldest unsynced write that triggers a sync.
        max_delay: Duration,
    },
    /// Never sync on its own (only on [`crate::BlobStore::sync`] and drop). A crash
    /// of the machine may lose recent writes; a crash of the process does not.
    Never,
}

impl Default for FsyncPolicy {
    fn default() -> Self {
        FsyncPolicy::Batched { max_bytes: 16 << 20, max_delay: Duration::from_millis(200) }
    }
}

/// How much of the log opening a [`crate::DiskLog`] re-hashes while rebuilding the index.
///
/// Record headers are always checked. Payload hashes are checked where this says;
/// everything else is still verified on every read, so corrupt bytes are never
/// served either way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum OpenVerify {
    /// Re-hash payloads of the newest segment only: the one a crash can leave torn.
    #[default]
    LastSegment,
    /// Re-hash every payload (reads the whole store once).
    Full,
}

/// Settings of a [`crate::DiskLog`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskConfig {
    /// Size and capacity limits.
    pub store: StoreConfig,
    /// Durability policy.
    pub fsync: FsyncPolicy,
    /// A new segment file is started when the next record would take the current
    /// one past this size (a single record larger than this gets a segment alone).
    pub segment_size: u64,
    /// Payload verification at open.
    pub verify_on_open: OpenVerify,
    /// Create the directory (and the store in it) when it does not exist.
    pub create: bool,
}

impl Default for DiskConfig {
    fn default() -> Self {
        DiskConfig {
            store: StoreConfig::default(),
            fsync: FsyncPolicy::default(),
            segment_size: DEFAULT_SEGMENT_SIZE,
            verify_on_open: OpenVerify::default(),
            create: true,
        }
    }
}

impl DiskConfig {
    /// Checks the values are in range.
    pub(crate) fn validate(&self) -> Result<(), BlobError> {
        self.store.validate()?;
        if self.segment_size < CHUNK_SIZE as u64 {
            return Err(BlobError::InvalidConfig {
                reason: format!(
                    "segment_size {} is below the chunk size of {CHUNK_SIZE} bytes",
                    self.segment_size
                ),
            });
        }
        Ok(())
    }
}
