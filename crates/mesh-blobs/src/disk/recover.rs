//! Rebuilding the index at open by scanning every segment, reporting what was
//! found wrong in a [`RecoveryReport`].
//!
//! Records are replayed in log order: a manifest makes a blob live, a tombstone
//! removes it, a pin record sets its flag; the newest record of a chunk gives its
//! location. A blob is indexed only if every chunk it names was found.
//!
//! Damage handling, per segment:
//! - a header that does not check out starts a damaged region; the scan resumes at
//!   the next valid header (found by searching for the record magic and checking
//!   each candidate against the store key). With no valid header after it, the rest
//!   of the file is cut off: that is the torn tail a crash leaves.
//! - a record whose payload does not match its hash is skipped and reported, except
//!   at the very end of the newest segment, where it is a torn write and cut off.
//! - a missing or damaged segment header is reported; the records are still read.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::path::Path;
use std::sync::Arc;

use super::record::{HEADER_LEN, Header, Kind, RECORD_MAGIC, SEGMENT_MAGIC};
use super::segments::{DiskLoc, parse_segment_name, read_at, segment_name};
use crate::engine::{Manifest, RemoveReason};
use crate::index::{BlobEntry, Index};
use crate::store::chunk_count;
use crate::tree;
use crate::{BlobError, Hash, OpenVerify};

use super::report::{CorruptRegion, RecoveryReport, Truncation};

/// The result of a scan.
#[derive(Debug)]
pub(crate) struct Scan {
    pub(crate) index: Index<DiskLoc>,
    pub(crate) report: RecoveryReport,
    /// Read handles of every segment.
    pub(crate) readers: BTreeMap<u32, Arc<File>>,
    /// The newest segment and its length after recovery.
    pub(crate) last: Option<(u32, u64)>,
    /// Total size of the segment files.
    pub(crate) disk_bytes: u64,
}

/// Replay state across segments.
#[derive(Default)]
struct Replay {
    chunks: HashMap<Hash, (DiskLoc, u32)>,
    /// Live blobs: (sequence of the manifest, manifest, pinned).
    live: HashMap<Hash, (u64, Manifest, bool)>,
    seq: u64,
}

/// Scans the segments of the store in `dir`.
pub(crate) fn scan(dir: &Path, key: &[u8; 32], verify: OpenVerify) -> Result<Scan, BlobError> {
    let mut numbers = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| BlobError::io("list directory", dir, e))? {
        let entry = entry.map_err(|e| BlobError::io("list directory", dir, e))?;
        if let Some(n) = entry.file_name().to_str().and_then(parse_segment_name) {
            numbers.push(n);
        }
    }
    numbers.sort_unstable();

    let mut report = RecoveryReport { segments: numbers.len(), ..RecoveryReport::default() };
    let mut replay = Replay::default();
    let mut readers = BTreeMap::new();
    let mut last = None;
    let mut disk_bytes = 0;
    for (i, &n) in numbers.iter().enumerate() {
        let is_last = i + 1 == numbers.len();
        let path = dir.join(segment_name(n));
        let verify_payloads = is_last || verify == OpenVerify::Full;
        let len = SegmentScan { path: &path, segment: n, key, verify_payloads, is_last }
            .run(&mut replay, &mut report)?;
        let reader = File::open(&path).map_err(|e| BlobError::io("open segment", &path, e))?;
        readers.insert(n, Arc::new(reader));
        disk_bytes += len;
        last = Some((n, len));
    }
    report.truncated_bytes = report.truncations.iter().map(|t| t.bytes).sum();

    // Index the live blobs in the order they were stored (oldest least recent).
    let mut live: Vec<_> = replay.live.into_iter().collect();
    live.sort_unstable_by_key(|(_, (seq, _, _))| *seq);
    let mut index = Index::default();
    for (hash, (_, manifest, pinned)) in live {
        // Each chunk's bytes: its own record if it has one (written last when a
        // damaged alias was repaired), else its primary's record.
        let shared: HashMap<u32, Hash> = manifest.shared.iter().copied().collect();
        let found: Option<Vec<_>> = manifest
            .chunks
            .iter()
            .zip(&manifest.keys)
            .enumerate()
            .map(|(i, (c, key))| match replay.chunks.get(c) {
                Some(l) => Some((*c, None, *l, *key)),
                None => {
                    let primary = shared.get(&(i as u32))?;
                    replay.chunks.get(primary).map(|l| (*c, Some(*primary), *l, *key))
                }
            })
            .collect();
        let Some(found) = found else {
            report.lost_blobs.push(hash);
            continue;
        };
        for (chunk, primary, (loc, len), key) in found {
            match primary {
                None => index.add_chunk(chunk, loc, len, key),
                Some(primary) => {
                    index.add_chunk(primary, loc, len, key);
                    index.add_alias(chunk, primary);
                }
            }
        }
        let entry =
            BlobEntry::new(manifest.size, manifest.chunks.into(), manifest.stored_at_ms, pinned);
        index.add_blob(hash, entry);
    }
    report.blobs = index.blobs.len();
    report.unreferenced_chunks = replay.chunks.len().saturating_sub(index.primaries()) as u64;
    Ok(Scan { index, report, readers, last, disk_bytes })
}

/// Scanning one segment file.
struct SegmentScan<'a> {
    path: &'a Path,
    segment: u32,
    key: &'a [u8; 32],
    verify_payloads: bool,
    /// The newest segment: the only one a crash can leave with a torn record.
    is_last: bool,
}

impl SegmentScan<'_> {
    /// Replays the segment's records; returns its length after any truncation.
    fn run(&self, replay: &mut Replay, report: &mut RecoveryReport) -> Result<u64, BlobError> {
        let path = self.path;
        let io = |op, e| BlobError::io(op, path, e);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| io("open segment", e))?;
        let len = file.metadata().map_err(|e| io("inspect segment", e))?.len();

        let magic_len = SEGMENT_MAGIC.len() as u64;
        let mut magic = [0u8; 16];
        if len < magic_len || read_at(&file, &mut magic, 0).is_err() || &magic != SEGMENT_MAGIC {
            if len < magic_len {
                // A segment torn while it was being started: rewrite its header.
                return self.reset_short_segment(&file, len, report);
            }
            report.corrupt_regions.push(self.region(0, magic_len, "segment header"));
            // The records carry their own checks: restore the header and keep them.
            self.write_magic(&file)?;
        }

        let mut pos = magic_len;
        let mut payload = Vec::new();
        while pos < len {
            let header = if len - pos >= HEADER_LEN as u64 {
                let mut bytes = [0u8; HEADER_LEN];
                read_at(&file, &mut bytes, pos).map_err(|e| io("read segment", e))?;
                Header::decode(&bytes, self.key)
            } else {
                None
            };
            let Some(header) = header.filter(|h| pos + h.record_len() <= len) else {
                match self.find_next_header(&file, pos + 1, len)? {
                    Some(next) => {
                        report.corrupt_regions.push(self.region(pos, next - pos, "record header"));
                        pos = next;
                        continue;
                    }
                    None => return self.truncate(&file, pos, len, report),
                }
            };
            let end = pos + header.record_len();
            let needs_payload = header.kind != Kind::Chunk || self.verify_payloads;
            if needs_payload {
                payload.resize(header.payload_len as usize, 0);
                read_at(&file, &mut payload, pos + HEADER_LEN as u64)
                    .map_err(|e| io("read segment", e))?;
                if !payload_matches(&header, &payload)
                    || !apply(replay, &header, &payload, self.segment, pos)
                {
                    if end == len && self.is_last {
                        return self.truncate(&file, pos, len, report);
                    }
                    report.corrupt_regions.push(self.region(pos, end - pos, "record payload"));
                    pos = end;
                    continue;
                }
            } else {
                apply(replay, &header, &[], self.segment, pos);
            }
            report.records += 1;
            pos = end;
        }
        Ok(len)
    }

    fn region(&self, offset: u64, len: u64, what: &'static str) -> CorruptRegion {
        tracing::warn!(path = %self.path.display(), offset, len, what, "damaged region in blob store segment");
        CorruptRegion { path: self.path.to_owned(), offset, len, what }
    }

    /// Cuts the file at `pos`; returns the new length.
    fn truncate(
        &self,
        file: &File,
        pos: u64,
        len: u64,
        report: &mut RecoveryReport,
    ) -> Result<u64, BlobError> {
        file.set_len(pos)
            .and_then(|()| file.sync_all())
            .map_err(|e| BlobError::io("truncate segment", self.path, e))?;
        tracing::warn!(path = %self.path.display(), offset = pos, bytes = len - pos, "cut off torn tail of blob store segment");
        report.truncations.push(Truncation {
            path: self.path.to_owned(),
            offset: pos,
            bytes: len - pos,
        });
        Ok(pos)
    }

    fn write_magic(&self, file: &File) -> Result<(), BlobError> {
        use std::io::{Seek, SeekFrom, Write};
        let mut handle = file;
        handle
            .seek(SeekFrom::Start(0))
            .and_then(|_| handle.write_all(SEGMENT_MAGIC))
            .and_then(|()| file.sync_all())
            .map_err(|e| BlobError::io("repair segment", self.path, e))
    }

    fn reset_short_segment(
        &self,
        file: &File,
        len: u64,
        report: &mut RecoveryReport,
    ) -> Result<u64, BlobError> {
        file.set_len(0).map_err(|e| BlobError::io("repair segment", self.path, e))?;
        self.write_magic(file)?;
        if len > 0 {
            report.truncations.push(Truncation {
                path: self.path.to_owned(),
                offset: 0,
                bytes: len,
            });
        }
        Ok(SEGMENT_MAGIC.len() as u64)
    }

    /// The offset of the first valid record header at or after `from` whose record
    /// fits in the file.
    fn find_next_header(&self, file: &File, from: u64, len: u64) -> Result<Option<u64>, BlobError> {
        const BLOCK: u64 = 1 << 20;
        let mut block = Vec::new();
        let mut start = from;
        while start + HEADER_LEN as u64 <= len {
            // Overlap blocks by a header so a header across a boundary is seen.
            let block_len = (len - start).min(BLOCK + HEADER_LEN as u64);
            block.resize(block_len as usize, 0);
            read_at(file, &mut block, start)
                .map_err(|e| BlobError::io("read segment", self.path, e))?;
            for i in 0..block.len().saturating_sub(HEADER_LEN - 1) {
                if block[i..].starts_with(RECORD_MAGIC) {
                    let Ok(bytes) = <&[u8; HEADER_LEN]>::try_from(&block[i..i + HEADER_LEN]) else {
                        continue;
                    };
                    if let Some(h) = Header::decode(bytes, self.key) {
                        let at = start + i as u64;
                        if at + h.record_len() <= len {
                            return Ok(Some(at));
                        }
                    }
                }
            }
            start += BLOCK;
        }
        Ok(None)
    }
}

/// Replays one checked record. Returns false if its payload does not decode
/// (for chunks the payload is not needed and may be empty).
fn apply(replay: &mut Replay, header: &Header, payload: &[u8], segment: u32, pos: u64) -> bool {
    let seq = replay.seq;
    replay.seq += 1;
    match header.kind {
        Kind::Chunk => {
            let loc = DiskLoc { segment, offset: pos + HEADER_LEN as u64 };
            replay.chunks.insert(header.digest, (loc, header.payload_len));
        }
        Kind::Manifest => {
            let Ok(manifest) = postcard::from_bytes::<Manifest>(payload) else { return false };
            if !manifest_is_sane(&manifest) {
                return false;
            }
            let pinned = replay.live.get(&manifest.hash).is_some_and(|(_, _, p)| *p);
            replay.live.insert(manifest.hash, (seq, manifest, pinned));
        }
        Kind::Tombstone => {
            let Ok((hash, _reason)) = postcard::from_bytes::<(Hash, RemoveReason)>(payload) else {
                return false;
            };
            replay.live.remove(&hash);
        }
        Kind::Pin => {
            let Ok((hash, pinned)) = postcard::from_bytes::<(Hash, bool)>(payload) else {
                return false;
            };
            if let Some(entry) = replay.live.get_mut(&hash) {
                entry.2 = pinned;
            }
        }
    }
    true
}

/// Whether a payload matches the hash in its header.
fn payload_matches(header: &Header, payload: &[u8]) -> bool {
    match header.kind {
        Kind::Chunk => tree::chunk_cv(u64::from(header.chunk_index), payload) == header.digest,
        _ => Hash::of(payload) == header.digest,
    }
}

/// Structural checks a manifest must pass (its content is checked on every read).
fn manifest_is_sane(m: &Manifest) -> bool {
    m.size <= crate::MAX_BLOB_SIZE_LIMIT
        && m.chunks.len() as u64 == chunk_count(m.size)
        && (m.size != 0 || m.hash == Hash::EMPTY)
        && m.keys.len() == m.chunks.len()
        && m.shared.iter().all(|(i, _)| (*i as usize) < m.chunks.len())
        && (m.chunks.len() < 2 || tree::root_from_chunks(&m.chunks, m.size) == Some(m.hash))
}
