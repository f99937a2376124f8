//! [`DiskLog`]: the append-only disk backend.
//!
//! A store is a directory holding a marker file (format version and store key, see
//! [`marker`]) and numbered segment files of checksummed records (see [`record`]):
//! chunks, manifests (a blob is committed when its manifest is written), tombstones
//! (deletes and evictions) and pin changes. Nothing is ever rewritten in place.
//!
//! Opening scans every segment and rebuilds the in-memory index ([`recover`]): a
//! torn tail is cut off, damaged records are skipped, and everything is reported in
//! a [`RecoveryReport`]. Every read re-hashes the content, so bytes that rotted
//! after the scan are never served either.
//!
//! Compaction is not implemented: deleted and evicted content stays in the
//! segments (the capacity limit bounds live content, not the directory size) until
//! a later version copies live records forward and removes old segments. Only one
//! process may open a store at a time; this is not enforced.

mod flusher;
mod marker;
mod record;
mod recover;
mod report;
mod segments;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

pub use report::{CorruptRegion, RecoveryReport, Truncation};
use segments::DiskBackend;

use crate::engine::Engine;
use crate::{BlobError, DiskConfig};

/// Name of the marker file that makes a directory a store.
pub const STORE_MARKER_FILE: &str = marker::MARKER_FILE;
/// On-disk format version written into the marker file.
pub const STORE_FORMAT_VERSION: u32 = marker::FORMAT_VERSION;

/// A blob store in a directory of append-only segment files.
///
/// ```
/// use mesh_blobs::{BlobStore, DiskConfig, DiskLog};
///
/// let dir = tempfile::tempdir().unwrap();
/// let hash = {
///     let store = DiskLog::open(dir.path(), DiskConfig::default()).unwrap();
///     store.put_slice(b"kept across reopen").unwrap()
/// };
/// let store = DiskLog::open(dir.path(), DiskConfig::default()).unwrap();
/// assert!(store.recovery_report().is_clean());
/// assert_eq!(store.get(&hash).unwrap().unwrap(), &b"kept across reopen"[..]);
/// ```
///
/// The store logic is the engine's, shared with [`crate::MemLog`]; this is the
/// engine over segment files.
pub type DiskLog = Engine<DiskBackend>;

impl DiskLog {
    /// Opens the store in `dir`, creating it when `config.create` allows and the
    /// directory is missing or empty.
    ///
    /// Refuses, naming the path, a directory that is not a store
    /// ([`BlobError::NotAStore`]) and a store in another format
    /// ([`BlobError::IncompatibleVersion`]). Damage found while rebuilding the index
    /// is repaired and reported in its recovery report, not an error.
    pub fn open(dir: impl AsRef<Path>, config: DiskConfig) -> Result<DiskLog, BlobError> {
        config.validate()?;
        let dir = dir.as_ref().to_owned();
        let key = marker::open_or_create(&dir, config.create)?;
        let scan = recover::scan(&dir, &key, config.verify_on_open)?;
        if !scan.report.is_clean() {
            tracing::warn!(
                dir = %dir.display(),
                truncated_bytes = scan.report.truncated_bytes,
                corrupt_regions = scan.report.corrupt_regions.len(),
                lost_blobs = scan.report.lost_blobs.len(),
                "blob store recovered from damage"
            );
        }
        let recover::Scan { index, report, readers, last, disk_bytes } = scan;
        let backend = DiskBackend::new(dir, key, &config, readers, last, disk_bytes, report);
        Ok(Engine::from_parts(config.store, backend, index))
    }

    /// What opening found and repaired.
    pub fn recovery_report(&self) -> &RecoveryReport {
        self.backend.recovery_report()
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        self.backend.dir()
    }

    /// The segment files, oldest first.
    pub fn segment_paths(&self) -> Vec<PathBuf> {
        self.backend.segment_paths()
    }
}

#[cfg(test)]
impl DiskLog {
    /// Segment file, payload offset and length of each chunk of a blob.
    pub(crate) fn chunk_files(&self, hash: &crate::Hash) -> Vec<(PathBuf, u64, u32)> {
        self.chunk_locs(hash)
            .into_iter()
            .map(|(_, loc, len)| {
                (self.dir().join(segments::segment_name(loc.segment)), loc.offset, len)
            })
            .collect()
    }

    /// The backend's fault injection switches.
    pub(crate) fn faults(&self) -> &segments::Faults {
        &self.backend.faults
    }
}
