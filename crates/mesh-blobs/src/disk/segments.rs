//! The disk backend: appends records to segment files, reads chunks back with
//! positional reads, rolls segments and syncs per [`FsyncPolicy`].
//!
//! One writer (behind a mutex) appends to the active segment with positional
//! writes at the offset it tracks. Readers use separate read-only handles and
//! positional reads, so they never wait for the writer. A write that fails is undone by truncating the segment back
//! to where the record started; if even that fails, the next record goes to a new
//! segment, and the garbage left behind is cut off at the next open.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};

use super::flusher::{Flusher, WRITE_BEHIND_BYTES};
use super::marker::sync_dir;
use super::record::{HEADER_LEN, Header, Kind, SEGMENT_MAGIC};
use super::report::RecoveryReport;
use crate::engine::{Backend, Manifest, RemoveReason};
use crate::store::Metrics;
use crate::{BlobError, DiskConfig, FsyncPolicy, Hash};

/// Where a chunk's payload is: segment number and byte offset of the payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiskLoc {
    pub(crate) segment: u32,
    pub(crate) offset: u64,
}

/// File name of segment `n`.
pub(crate) fn segment_name(n: u32) -> String {
    format!("segment-{n:08}.log")
}

/// Segment number of a file name, if it is one.
pub(crate) fn parse_segment_name(name: &str) -> Option<u32> {
    let digits = name.strip_prefix("segment-")?.strip_suffix(".log")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Reads exactly `buf.len()` bytes at `offset`.
pub(crate) fn read_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
    }
    #[cfg(windows)]
    {
        let mut done = 0;
        while done < buf.len() {
            match std::os::windows::fs::FileExt::seek_read(
                file,
                &mut buf[done..],
                offset + done as u64,
            ) {
                Ok(0) => return Err(ErrorKind::UnexpectedEof.into()),
                Ok(n) => done += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
    #[cfg(not(any(unix, windows)))]
    {
        let _ = (file, buf, offset);
        Err(std::io::Error::new(ErrorKind::Unsupported, "positional reads"))
    }
}

/// Writes all of `buf` at `offset`.
fn write_at(file: &File, buf: &[u8], offset: u64) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::write_all_at(file, buf, offset)
    }
    #[cfg(windows)]
    {
        let mut done = 0;
        while done < buf.len() {
            match std::os::windows::fs::FileExt::seek_write(
                file,
                &buf[done..],
                offset + done as u64,
            ) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => done += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
    #[cfg(not(any(unix, windows)))]
    {
        let _ = (file, buf, offset);
        Err(std::io::Error::new(ErrorKind::Unsupported, "positional writes"))
    }
}

/// State of the active segment (behind the writer mutex).
#[derive(Debug)]
struct Writer {
    /// Number of the active segment (0: none yet).
    segment: u32,
    /// Append handle of the active segment (`None` until the first write).
    file: Option<File>,
    /// Length of the active segment.
    len: u64,
    /// Handles of earlier segments with unsynced writes.
    unsynced_old: Vec<(u32, File)>,
    /// Bytes written since the last sync.
    unsynced_bytes: u64,
    /// When the oldest unsynced write happened.
    unsynced_since: Option<Instant>,
    /// A failed write could not be undone: the next record starts a new segment.
    broken: bool,
    /// Bytes appended since the last write-behind request.
    since_write_behind: u64,
}

/// The disk backend: segment files in a store directory.
#[derive(Debug)]
pub struct DiskBackend {
    dir: PathBuf,
    /// What opening the store found and repaired.
    report: RecoveryReport,
    key: [u8; 32],
    policy: FsyncPolicy,
    segment_size: u64,
    writer: Mutex<Writer>,
    readers: RwLock<BTreeMap<u32, Arc<File>>>,
    disk_bytes: AtomicU64,
    syncs: AtomicU64,
    /// Write-behind thread (not with [`FsyncPolicy::Never`]).
    flusher: Option<Flusher>,
    /// Injected failures for tests.
    #[cfg(test)]
    pub(crate) faults: Faults,
}

/// Failures tests can inject into the backend.
#[cfg(test)]
#[derive(Debug)]
pub(crate) struct Faults {
    /// Bytes of records that may still be written before writes fail like a full
    /// disk (a partial record is written first).
    pub(crate) write_budget: AtomicU64,
    /// Make every sync fail.
    pub(crate) fail_sync: std::sync::atomic::AtomicBool,
}

impl DiskBackend {
    /// A backend over existing segments; `last` is the newest one and its length,
    /// `report` what opening them found.
    pub(crate) fn new(
        dir: PathBuf,
        key: [u8; 32],
        config: &DiskConfig,
        readers: BTreeMap<u32, Arc<File>>,
        last: Option<(u32, u64)>,
        disk_bytes: u64,
        report: RecoveryReport,
    ) -> Self {
        let (segment, len) = last.unwrap_or((0, 0));
        let policy = config.fsync;
        DiskBackend {
            dir,
            report,
            key,
            policy,
            segment_size: config.segment_size,
            writer: Mutex::new(Writer {
                segment,
                file: None,
                len,
                unsynced_old: Vec::new(),
                unsynced_bytes: 0,
                unsynced_since: None,
                broken: false,
                since_write_behind: 0,
            }),
            readers: RwLock::new(readers),
            disk_bytes: AtomicU64::new(disk_bytes),
            syncs: AtomicU64::new(0),
            flusher: if policy == FsyncPolicy::Never { None } else { Flusher::start() },
            #[cfg(test)]
            faults: Faults {
                write_budget: AtomicU64::new(u64::MAX),
                fail_sync: std::sync::atomic::AtomicBool::new(false),
            },
        }
    }

    fn path(&self, segment: u32) -> PathBuf {
        self.dir.join(segment_name(segment))
    }

    /// The store directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// What opening the store found and repaired.
    pub(crate) fn recovery_report(&self) -> &RecoveryReport {
        &self.report
    }

    /// Paths of all segment files, oldest first.
    pub(crate) fn segment_paths(&self) -> Vec<PathBuf> {
        self.readers.read().keys().map(|&n| self.path(n)).collect()
    }

    /// Appends one record; returns where its payload starts.
    fn append(
        &self,
        kind: Kind,
        chunk_index: u32,
        digest: Hash,
        payload: &[u8],
    ) -> Result<DiskLoc, BlobError> {
        let payload_len = u32::try_from(payload.len()).map_err(|_| BlobError::InvalidConfig {
            reason: "record payload above 4 GiB".into(),
        })?;
        let header = Header { kind, chunk_index, payload_len, digest };
        let record_len = header.record_len();
        let mut w = self.writer.lock();
        let full = w.len > SEGMENT_MAGIC.len() as u64 && w.len + record_len > self.segment_size;
        if w.segment == 0 || w.broken || full {
            self.roll(&mut w)?;
        } else if w.file.is_none() {
            let path = self.path(w.segment);
            let file = OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(|e| BlobError::io("open segment", &path, e))?;
            w.file = Some(file);
        }
        let start = w.len;
        let segment = w.segment;
        let bytes = header.encode(&self.key);
        let Some(file) = w.file.as_ref() else {
            return Err(BlobError::io(
                "write segment",
                self.path(segment),
                ErrorKind::NotFound.into(),
            ));
        };
        let written = self.write_record(file, start, &bytes, payload);
        if let Err(e) = written {
            // Undo the partial record so the segment ends on a record boundary.
            if file.set_len(start).is_err() {
                w.broken = true;
            }
            tracing::warn!(segment, error = %e, "segment write failed; record discarded");
            return Err(BlobError::io("write segment", self.path(segment), e));
        }
        w.len += record_len;
        w.unsynced_bytes += record_len;
        w.unsynced_since.get_or_insert_with(Instant::now);
        self.disk_bytes.fetch_add(record_len, Relaxed);
        w.since_write_behind += record_len;
        if w.since_write_behind >= WRITE_BEHIND_BYTES {
            w.since_write_behind = 0;
            if let (Some(flusher), Some(file)) = (&self.flusher, self.reader(segment)) {
                flusher.request(file);
            }
        }
        Ok(DiskLoc { segment, offset: start + HEADER_LEN as u64 })
    }

    /// Starts a new segment file.
    fn roll(&self, w: &mut Writer) -> Result<(), BlobError> {
        let next = w.segment.checked_add(1).ok_or_else(|| BlobError::InvalidConfig {
            reason: "segment numbers exhausted".into(),
        })?;
        let path = self.path(next);
        let file = OpenOptions::new()
            .create_new(true)
            .write(true)
            .open(&path)
            .map_err(|e| BlobError::io("create segment", &path, e))?;
        // Anything failing from here removes the new file, so the next attempt can
        // create it again.
        let reader = write_at(&file, SEGMENT_MAGIC, 0)
            .and_then(|()| File::open(&path))
            .map_err(|e| BlobError::io("start segment", &path, e))
            .and_then(|reader| {
                if self.policy != FsyncPolicy::Never {
                    sync_dir(&self.dir)?;
                }
                Ok(reader)
            });
        let reader = match reader {
            Ok(reader) => reader,
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                return Err(e);
            }
        };
        if let Some(old) = w.file.take() {
            if w.unsynced_bytes > 0 {
                w.unsynced_old.push((w.segment, old));
            }
        }
        self.readers.write().insert(next, Arc::new(reader));
        self.disk_bytes.fetch_add(SEGMENT_MAGIC.len() as u64, Relaxed);
        w.segment = next;
        w.file = Some(file);
        w.len = SEGMENT_MAGIC.len() as u64;
        w.unsynced_bytes += SEGMENT_MAGIC.len() as u64;
        w.unsynced_since.get_or_insert_with(Instant::now);
        w.broken = false;
        tracing::debug!(segment = next, "started segment");
        Ok(())
    }

    /// Writes a record's header and payload to the end of the active segment.
    ///
    /// Positional writes at the writer's own idea of the end (not append mode):
    /// every record lands exactly at the offset the index records for it, even if
    /// the file was changed behind the store's back.
    fn write_record(
        &self,
        file: &File,
        start: u64,
        header: &[u8],
        payload: &[u8],
    ) -> std::io::Result<()> {
        let payload_start = start + header.len() as u64;
        #[cfg(test)]
        {
            let total = (header.len() + payload.len()) as u64;
            let budget = self.faults.write_budget.load(Relaxed);
            if budget < total {
                // Write what fits, as a full disk does, then fail.
                let head = (budget as usize).min(header.len());
                write_at(file, &header[..head], start)?;
                let rest = (budget as usize - head).min(payload.len());
                write_at(file, &payload[..rest], payload_start)?;
                self.faults.write_budget.store(0, Relaxed);
                return Err(std::io::Error::new(
                    ErrorKind::StorageFull,
                    "injected: no space left on device",
                ));
            }
            self.faults.write_budget.fetch_sub(total, Relaxed);
        }
        write_at(file, header, start)?;
        write_at(file, payload, payload_start)
    }

    fn sync_locked(&self, w: &mut Writer) -> Result<(), BlobError> {
        if w.unsynced_bytes == 0 && w.unsynced_old.is_empty() {
            return Ok(());
        }
        #[cfg(test)]
        if self.faults.fail_sync.load(Relaxed) {
            return Err(BlobError::io(
                "fsync segment",
                self.path(w.segment),
                std::io::Error::other("injected fsync failure"),
            ));
        }
        while let Some((segment, file)) = w.unsynced_old.first() {
            file.sync_data().map_err(|e| BlobError::io("fsync segment", self.path(*segment), e))?;
            w.unsynced_old.remove(0);
        }
        if let Some(file) = &w.file {
            file.sync_data()
                .map_err(|e| BlobError::io("fsync segment", self.path(w.segment), e))?;
        }
        w.unsynced_bytes = 0;
        w.unsynced_since = None;
        self.syncs.fetch_add(1, Relaxed);
        Ok(())
    }

    fn reader(&self, segment: u32) -> Option<Arc<File>> {
        self.readers.read().get(&segment).cloned()
    }

    fn read_payload(&self, chunk: &Hash, loc: &DiskLoc, out: &mut [u8]) -> Result<(), BlobError> {
        let file = self.reader(loc.segment).ok_or_else(|| BlobError::Integrity {
            hash: *chunk,
            detail: format!("segment {} is gone", loc.segment),
        })?;
        read_at(&file, out, loc.offset).map_err(|e| {
            if e.kind() == ErrorKind::UnexpectedEof {
                BlobError::Integrity {
                    hash: *chunk,
                    detail: format!("segment {} ends inside the chunk", loc.segment),
                }
            } else {
                BlobError::io("read segment", self.path(loc.segment), e)
            }
        })
    }
}

fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, BlobError> {
    postcard::to_stdvec(value)
        .map_err(|e| BlobError::InvalidConfig { reason: format!("encoding a record: {e}") })
}

impl Backend for DiskBackend {
    type Loc = DiskLoc;
    const KEEPS_WHOLE: bool = false;

    fn write_chunk(&self, cv: &Hash, index: u64, data: Bytes) -> Result<DiskLoc, BlobError> {
        let index = u32::try_from(index).map_err(|_| BlobError::InvalidConfig {
            reason: format!("chunk index {index} does not fit the record format"),
        })?;
        self.append(Kind::Chunk, index, *cv, &data)
    }

    fn write_manifest(&self, manifest: &Manifest) -> Result<(), BlobError> {
        let payload = encode(manifest)?;
        self.append(Kind::Manifest, 0, Hash::of(&payload), &payload).map(drop)
    }

    fn write_tombstone(&self, hash: &Hash, reason: RemoveReason) -> Result<(), BlobError> {
        let payload = encode(&(hash, reason))?;
        self.append(Kind::Tombstone, 0, Hash::of(&payload), &payload).map(drop)
    }

    fn write_pin(&self, hash: &Hash, pinned: bool) -> Result<(), BlobError> {
        let payload = encode(&(hash, pinned))?;
        self.append(Kind::Pin, 0, Hash::of(&payload), &payload).map(drop)
    }

    fn end_op(&self) -> Result<(), BlobError> {
        let mut w = self.writer.lock();
        let due = match self.policy {
            FsyncPolicy::EveryPut => true,
            FsyncPolicy::Batched { max_bytes, max_delay } => {
                w.unsynced_bytes >= max_bytes
                    || w.unsynced_since.is_some_and(|t| t.elapsed() >= max_delay)
            }
            FsyncPolicy::Never => false,
        };
        if due { self.sync_locked(&mut w) } else { Ok(()) }
    }

    fn sync(&self) -> Result<(), BlobError> {
        self.sync_locked(&mut self.writer.lock())
    }

    fn read_chunk(&self, chunk: &Hash, loc: &DiskLoc, len: u32) -> Result<Bytes, BlobError> {
        let mut buf = vec![0u8; len as usize];
        self.read_payload(chunk, loc, &mut buf)?;
        Ok(Bytes::from(buf))
    }

    fn read_chunk_into(
        &self,
        chunk: &Hash,
        loc: &DiskLoc,
        out: &mut [u8],
    ) -> Result<(), BlobError> {
        self.read_payload(chunk, loc, out)
    }

    fn fill_metrics(&self, metrics: &mut Metrics) {
        metrics.segments = self.readers.read().len() as u64;
        metrics.disk_bytes = self.disk_bytes.load(Relaxed);
        metrics.syncs = self.syncs.load(Relaxed);
    }
}

impl Drop for DiskBackend {
    fn drop(&mut self) {
        if let Err(e) = self.sync_locked(&mut self.writer.lock()) {
            tracing::warn!(dir = %self.dir.display(), error = %e, "final sync of blob store failed");
        }
    }
}
