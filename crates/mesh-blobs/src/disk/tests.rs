//! Disk-log specific tests: reopen, recovery, refusals, write failures, fsync
//! policies and segment rolling.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use bytes::Bytes;

use super::marker::MARKER_FILE;
use super::record::{HEADER_LEN, SEGMENT_MAGIC};
use crate::suite::content;
use crate::{
    BlobError, BlobStore, CHUNK_SIZE, DiskConfig, DiskLog, FsyncPolicy, Hash, OpenVerify,
    StoreConfig,
};

fn open(dir: &Path) -> DiskLog {
    DiskLog::open(dir, DiskConfig::default()).unwrap()
}

fn flip(path: &Path, at: u64) {
    let file = OpenOptions::new().read(true).write(true).open(path).unwrap();
    let mut byte = [0u8];
    file.read_exact_at(&mut byte, at).unwrap();
    byte[0] ^= 0x10;
    file.write_all_at(&byte, at).unwrap();
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().len()
}

#[test]
fn reopen_rebuilds_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let blobs: Vec<Vec<u8>> =
        vec![vec![], content(10, 1), content(CHUNK_SIZE, 2), content(2 * CHUNK_SIZE + 9, 3)];
    let (hashes, deleted, pinned) = {
        let store = open(dir.path());
        let hashes: Vec<Hash> =
            blobs.iter().map(|b| store.put(Bytes::from(b.clone())).unwrap()).collect();
        assert!(store.delete(&hashes[1]).unwrap());
        assert!(store.pin(&hashes[3]).unwrap());
        (hashes.clone(), hashes[1], hashes[3])
    };
    let store = open(dir.path());
    let report = store.recovery_report();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.blobs, 3);
    assert!(!store.has(&deleted), "deletes are durable");
    assert!(store.entry(&pinned).unwrap().pinned, "pins are durable");
    for (hash, data) in hashes.iter().zip(&blobs) {
        if *hash != deleted {
            assert!(store.get(hash).unwrap().unwrap() == data[..]);
        }
    }
    let m = store.metrics();
    assert_eq!(m.blobs, 3);
    assert_eq!(m.used, (CHUNK_SIZE + 2 * CHUNK_SIZE + 9) as u64);
    // The deleted blob's chunk is still in the log, unreferenced.
    assert_eq!(report.unreferenced_chunks, 1);
    // Deleted content can be stored again and survives another reopen.
    assert_eq!(store.put_slice(&blobs[1]).unwrap(), deleted);
    drop(store);
    let store = open(dir.path());
    assert!(store.get(&deleted).unwrap().unwrap() == blobs[1][..]);
}

#[test]
fn torn_tail_is_truncated_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, segment) = {
        let store = open(dir.path());
        let a = store.put_slice(&content(5000, 1)).unwrap();
        let b = store.put_slice(&content(CHUNK_SIZE + 100, 2)).unwrap();
        (a, b, store.segment_paths().pop().unwrap())
    };
    // A crash in the middle of b's manifest: cut the file inside the last record.
    let len = file_len(&segment);
    let file = OpenOptions::new().write(true).open(&segment).unwrap();
    file.set_len(len - 10).unwrap();
    drop(file);
    let store = open(dir.path());
    let report = store.recovery_report().clone();
    assert!(!report.is_clean());
    assert_eq!(report.truncations.len(), 1);
    assert_eq!(report.truncations[0].path, segment);
    assert!(report.truncated_bytes > HEADER_LEN as u64);
    assert_eq!(file_len(&segment), len - 10 - report.truncated_bytes);
    assert!(store.has(&a) && !store.has(&b), "b was never committed");
    assert!(store.get(&a).unwrap().is_some());
    // Garbage after the last record (a torn header) is cut off too.
    let c = store.put_slice(b"after recovery").unwrap();
    drop(store);
    let before = file_len(&segment);
    OpenOptions::new().append(true).open(&segment).unwrap().write_all(&[0xab; 40]).unwrap();
    let store = open(dir.path());
    assert_eq!(store.recovery_report().truncated_bytes, 40);
    assert_eq!(file_len(&segment), before);
    assert!(store.get(&c).unwrap().is_some());
    drop(store);
    assert!(open(dir.path()).recovery_report().is_clean());
}

#[test]
fn bit_flips_are_detected_on_read_or_reopen() {
    let dir = tempfile::tempdir().unwrap();
    // Small segments: every chunk record starts a new segment.
    let config = DiskConfig { segment_size: CHUNK_SIZE as u64, ..DiskConfig::default() };
    let old = content(CHUNK_SIZE, 1);
    let newer = content(300, 2);
    let (h_old, h_new, files) = {
        let store = DiskLog::open(dir.path(), config.clone()).unwrap();
        let h_old = store.put_slice(&old).unwrap();
        let h_new = store.put_slice(&newer).unwrap();
        (h_old, h_new, store.chunk_files(&h_old))
    };
    let (path, offset, _) = &files[0];
    flip(path, offset + 1000);

    // The old segment's payloads are not re-hashed at open: the read catches it.
    let store = DiskLog::open(dir.path(), config.clone()).unwrap();
    assert!(store.recovery_report().segments >= 2);
    assert!(store.get(&h_old).unwrap_err().is_integrity());
    assert!(store.get(&h_new).unwrap().is_some());
    assert_eq!(store.metrics().integrity_failures, 1);
    drop(store);

    // A full verification at open finds it and drops the blob.
    let full = DiskConfig { verify_on_open: OpenVerify::Full, ..config.clone() };
    let store = DiskLog::open(dir.path(), full).unwrap();
    let report = store.recovery_report();
    assert_eq!(report.corrupt_regions.len(), 1);
    assert_eq!(report.corrupt_regions[0].what, "record payload");
    assert_eq!(report.lost_blobs, vec![h_old]);
    assert_eq!(store.get(&h_old).unwrap(), None);
    assert!(store.get(&h_new).unwrap().is_some());
    drop(store);

    // A flipped record header in the middle of a segment: the region is skipped
    // and the records after it are kept.
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = {
        let store = open(dir.path());
        (store.put_slice(b"first").unwrap(), store.put_slice(b"second").unwrap())
    };
    let segment = open(dir.path()).segment_paths().pop().unwrap();
    flip(&segment, SEGMENT_MAGIC.len() as u64 + 20);
    let store = open(dir.path());
    let report = store.recovery_report();
    assert_eq!(report.corrupt_regions.len(), 1, "{report:?}");
    assert_eq!(report.corrupt_regions[0].what, "record header");
    assert_eq!(report.lost_blobs, vec![first]);
    assert!(report.truncations.is_empty());
    assert!(store.get(&second).unwrap().unwrap() == b"second"[..]);
}

#[test]
fn incompatible_version_is_refused_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path()));
    let marker = dir.path().join(MARKER_FILE);
    let text = std::fs::read_to_string(&marker).unwrap().replace("format 2", "format 3");
    std::fs::write(&marker, text).unwrap();
    match DiskLog::open(dir.path(), DiskConfig::default()) {
        Err(e @ BlobError::IncompatibleVersion { found: 3, supported: 2, .. }) => {
            assert!(e.to_string().contains(&marker.display().to_string()), "{e}");
        }
        other => panic!("expected IncompatibleVersion, got {other:?}"),
    }
}

#[test]
fn not_a_store_is_refused_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "hello").unwrap();
    let expect_refusal = |path: &Path, config: DiskConfig| match DiskLog::open(path, config) {
        Err(e @ BlobError::NotAStore { .. }) => {
            assert!(e.to_string().contains(&path.display().to_string()), "{e}");
        }
        other => panic!("expected NotAStore for {}, got {other:?}", path.display()),
    };
    expect_refusal(dir.path(), DiskConfig::default());
    expect_refusal(&dir.path().join("notes.txt"), DiskConfig::default());
    let missing = dir.path().join("missing");
    expect_refusal(&missing, DiskConfig { create: false, ..DiskConfig::default() });
    // A garbled marker.
    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join(MARKER_FILE), "something else\n").unwrap();
    assert!(matches!(
        DiskLog::open(&other, DiskConfig::default()),
        Err(BlobError::NotAStore { .. })
    ));
    // Nothing was created in the refused directories.
    assert!(!missing.exists());
    assert!(!dir.path().join(MARKER_FILE).exists());
}

#[test]
fn failed_writes_leave_the_store_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let data = content(2 * CHUNK_SIZE + 1, 9);
    let (a, c) = {
        let store = open(dir.path());
        let a = store.put_slice(b"before the disk filled up").unwrap();
        let before = store.metrics();

        // The disk fills up in the middle of the second chunk record.
        store.faults().write_budget.store(CHUNK_SIZE as u64 + 5000, Relaxed);
        let err = store.put_slice(&data).unwrap_err();
        assert!(matches!(err, BlobError::Io { .. }), "{err}");
        assert!(!store.has(&Hash::of(&data)));
        let after = store.metrics();
        assert_eq!((after.blobs, after.used, after.puts), (before.blobs, before.used, before.puts));

        // Deletes and pins fail cleanly too.
        assert!(store.delete(&a).is_err());
        assert!(store.pin(&a).is_err());
        assert!(store.has(&a) && !store.entry(&a).unwrap().pinned);

        // A failing fsync: the put reports an error and is not indexed.
        store.faults().write_budget.store(u64::MAX, Relaxed);
        store.faults().fail_sync.store(true, Relaxed);
        let config_sync = store.put_slice(b"unsynced").map(|_| ());
        // The default policy is batched, so a small put may not sync at all.
        if config_sync.is_err() {
            assert!(!store.has(&Hash::of(b"unsynced")));
        }
        store.faults().fail_sync.store(false, Relaxed);

        let c = store.put_slice(b"after space was freed").unwrap();
        assert!(store.get(&a).unwrap().is_some());
        (a, c)
    };
    let store = open(dir.path());
    let report = store.recovery_report();
    assert!(report.is_clean(), "{report:?}");
    assert!(store.get(&a).unwrap().is_some());
    assert!(store.get(&c).unwrap().is_some());
    assert!(!store.has(&Hash::of(&data)));
}

#[test]
fn failed_sync_under_every_put_is_not_indexed() {
    let dir = tempfile::tempdir().unwrap();
    let config = DiskConfig { fsync: FsyncPolicy::EveryPut, ..DiskConfig::default() };
    let store = DiskLog::open(dir.path(), config).unwrap();
    store.faults().fail_sync.store(true, Relaxed);
    assert!(matches!(store.put_slice(b"x"), Err(BlobError::Io { op: "fsync segment", .. })));
    assert!(!store.has(&Hash::of(b"x")));
    store.faults().fail_sync.store(false, Relaxed);
    assert!(store.put_slice(b"x").is_ok());
    assert!(store.has(&Hash::of(b"x")));
}

#[test]
fn fsync_policies() {
    let run = |fsync: FsyncPolicy| {
        let dir = tempfile::tempdir().unwrap();
        let store =
            DiskLog::open(dir.path(), DiskConfig { fsync, ..DiskConfig::default() }).unwrap();
        for i in 0..5u8 {
            store.put_slice(&[i; 100]).unwrap();
        }
        let syncs = store.metrics().syncs;
        store.sync().unwrap();
        (syncs, store.metrics().syncs)
    };
    assert_eq!(run(FsyncPolicy::EveryPut), (5, 5));
    assert_eq!(run(FsyncPolicy::Never), (0, 1));
    let by_bytes = FsyncPolicy::Batched { max_bytes: 400, max_delay: Duration::from_secs(3600) };
    // Each put writes a 100-byte chunk and a manifest, both with 64-byte headers.
    let (batched, _) = run(by_bytes);
    assert!((1..5).contains(&batched), "{batched}");
    let by_time = FsyncPolicy::Batched { max_bytes: u64::MAX, max_delay: Duration::ZERO };
    assert_eq!(run(by_time).0, 5);
}

#[test]
fn segments_roll_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let config = DiskConfig { segment_size: CHUNK_SIZE as u64, ..DiskConfig::default() };
    let data = content(3 * CHUNK_SIZE, 4);
    let hash = {
        let store = DiskLog::open(dir.path(), config.clone()).unwrap();
        let hash = store.put_slice(&data).unwrap();
        assert!(store.metrics().segments >= 3);
        hash
    };
    let store = DiskLog::open(dir.path(), config).unwrap();
    assert!(store.recovery_report().is_clean());
    assert!(store.get(&hash).unwrap().unwrap() == data[..]);
    let m = store.metrics();
    assert_eq!(m.segments as usize, store.segment_paths().len());
    assert_eq!(m.disk_bytes, store.segment_paths().iter().map(|p| file_len(p)).sum::<u64>());
}

#[test]
fn failed_streams_and_evictions_survive_reopen() {
    struct Failing(usize);
    impl std::io::Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.0 == 0 {
                return Err(std::io::Error::other("network went away"));
            }
            let n = buf.len().min(self.0);
            buf[..n].fill(3);
            self.0 -= n;
            Ok(n)
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let config =
        DiskConfig { store: StoreConfig::default().with_capacity(3000), ..DiskConfig::default() };
    let (kept, evicted) = {
        let store = DiskLog::open(dir.path(), config.clone()).unwrap();
        assert!(matches!(store.put_stream(&mut Failing(CHUNK_SIZE + 10)), Err(BlobError::Read(_))));
        let a = store.put_slice(&[1; 1000]).unwrap();
        let b = store.put_slice(&[2; 1000]).unwrap();
        let c = store.put_slice(&[3; 1000]).unwrap();
        let d = store.put_slice(&[4; 1000]).unwrap();
        assert_eq!(store.metrics().evictions, 1);
        (vec![b, c, d], a)
    };
    let store = DiskLog::open(dir.path(), config).unwrap();
    let report = store.recovery_report();
    assert!(report.is_clean(), "{report:?}");
    assert!(!store.has(&evicted), "evictions are durable");
    for hash in &kept {
        assert!(store.get(hash).unwrap().is_some());
    }
    // The failed stream's first chunk and the evicted blob's chunk are unreferenced.
    assert_eq!(report.unreferenced_chunks, 2);
}

#[test]
fn a_segment_cut_short_under_a_running_store_is_an_integrity_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let data = content(3 * CHUNK_SIZE, 5);
    let hash = store.put_slice(&data).unwrap();
    let (path, offset, _) = store.chunk_files(&hash).pop().unwrap();
    OpenOptions::new().write(true).open(&path).unwrap().set_len(offset + 10).unwrap();
    let err = store.get(&hash).unwrap_err();
    assert!(matches!(&err, BlobError::Integrity { hash: h, .. } if *h == hash), "{err}");
    assert!(store.has(&hash));
    // Storing the content again writes the lost chunk anew.
    assert_eq!(store.put_slice(&data).unwrap(), hash);
    assert!(store.get(&hash).unwrap().unwrap() == data[..]);
}
