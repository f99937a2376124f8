//! The store test suite, written once against [`BlobStore`] and run against both
//! backends through thin `_mem` and `_disk` wrappers.

use std::io::Read;

use bytes::Bytes;

use crate::{BlobError, BlobStore, CHUNK_SIZE, DiskConfig, DiskLog, Hash, MemLog, StoreConfig};

/// Builds stores of one backend and damages their stored bytes.
trait Harness {
    type Store: BlobStore;

    /// A new, empty store.
    fn store(&self, config: StoreConfig) -> Self::Store;

    /// Flips one bit of every chunk of a stored blob.
    fn corrupt(&self, store: &Self::Store, hash: &Hash);

    /// Flips one bit of chunk `i` of a stored blob.
    fn corrupt_chunk(&self, store: &Self::Store, hash: &Hash, i: usize);
}

struct Mem;

impl Harness for Mem {
    type Store = MemLog;

    fn store(&self, config: StoreConfig) -> MemLog {
        MemLog::new(config)
    }

    fn corrupt(&self, store: &MemLog, hash: &Hash) {
        store.tamper(hash, |bytes| {
            let mut copy = bytes.to_vec();
            if let Some(b) = copy.last_mut() {
                *b ^= 0x01;
            }
            copy
        });
    }

    fn corrupt_chunk(&self, store: &MemLog, hash: &Hash, i: usize) {
        store.tamper_chunk(hash, i, |bytes| {
            let mut copy = bytes.to_vec();
            if let Some(b) = copy.last_mut() {
                *b ^= 0x01;
            }
            copy
        });
    }
}

/// Flips the last bit of a chunk stored at `offset` (`len` bytes) in `path`.
fn flip_last_bit(path: &std::path::Path, offset: u64, len: u32) {
    use std::os::unix::fs::FileExt;
    let file = std::fs::OpenOptions::new().read(true).write(true).open(path).unwrap();
    let at = offset + u64::from(len.saturating_sub(1));
    let mut byte = [0u8];
    file.read_exact_at(&mut byte, at).unwrap();
    byte[0] ^= 0x01;
    file.write_all_at(&byte, at).unwrap();
}

struct Disk {
    root: tempfile::TempDir,
}

impl Disk {
    fn new() -> Self {
        Disk { root: tempfile::tempdir().unwrap() }
    }
}

impl Harness for Disk {
    type Store = DiskLog;

    fn store(&self, config: StoreConfig) -> DiskLog {
        let dir = tempfile::tempdir_in(self.root.path()).unwrap().keep();
        DiskLog::open(dir, DiskConfig { store: config, ..DiskConfig::default() }).unwrap()
    }

    fn corrupt(&self, store: &DiskLog, hash: &Hash) {
        for (path, offset, len) in store.chunk_files(hash) {
            flip_last_bit(&path, offset, len);
        }
    }

    fn corrupt_chunk(&self, store: &DiskLog, hash: &Hash, i: usize) {
        let (path, offset, len) = store.chunk_files(hash).swap_remove(i);
        flip_last_bit(&path, offset, len);
    }
}

/// Deterministic pseudo-random content: no two chunks of it, or of contents with
/// different seeds, are equal.
pub(crate) fn content(len: usize, seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let take = (len - out.len()).min(8);
        out.extend_from_slice(&x.to_le_bytes()[..take]);
    }
    out
}

const C: usize = CHUNK_SIZE;
const BOUNDARY_SIZES: [usize; 7] = [0, 1, 1000, C - 1, C, C + 1, 3 * C + 17];

fn round_trip_boundary_sizes<H: Harness>(h: &H) {
    let store = h.store(StoreConfig::default());
    for (seed, &len) in BOUNDARY_SIZES.iter().enumerate() {
        let data = content(len, seed as u64);
        let hash = store.put(Bytes::from(data.clone())).unwrap();
        assert_eq!(hash, Hash::of(&data), "the blob hash is blake3 of the whole blob");
        assert!(store.has(&hash));
        let back = store.get(&hash).unwrap().expect("stored");
        assert_eq!(back.len(), len);
        assert!(back == data, "content of {len} bytes differs");
        let entry = store.entry(&hash).unwrap();
        assert_eq!(entry.size, len as u64);
        assert_eq!(entry.chunks as usize, len.div_ceil(C));
        assert_eq!(store.put_slice(&data).unwrap(), hash);
    }
    let m = store.metrics();
    assert_eq!(m.blobs, BOUNDARY_SIZES.len() as u64);
    assert_eq!(m.bytes, BOUNDARY_SIZES.iter().sum::<usize>() as u64);
    assert_eq!(m.dedup_puts, BOUNDARY_SIZES.len() as u64);
}

/// A reader that hands out at most `step` bytes per call.
struct Trickle<'a> {
    data: &'a [u8],
    step: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.data.len().min(buf.len()).min(self.step);
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

fn stream_matches_put<H: Harness>(h: &H) {
    let streamed = h.store(StoreConfig::default());
    for (seed, &len) in BOUNDARY_SIZES.iter().enumerate() {
        let data = content(len, seed as u64 + 100);
        let hash = streamed.put_stream(&mut Trickle { data: &data, step: 300_000 }).unwrap();
        assert_eq!(hash, Hash::of(&data), "len {len}");
        assert!(streamed.get(&hash).unwrap().unwrap() == data);
        // Streaming the same content again deduplicates.
        assert_eq!(streamed.put_stream(&mut &data[..]).unwrap(), hash);
    }
    let m = streamed.metrics();
    assert_eq!(m.blobs, BOUNDARY_SIZES.len() as u64);
    assert_eq!(m.used, BOUNDARY_SIZES.iter().sum::<usize>() as u64);
}

fn dedup_blobs_and_chunks<H: Harness>(h: &H) {
    let store = h.store(StoreConfig::default());
    let x = content(C, 1);
    let y = content(C, 2);
    let z = content(C, 3);
    let w = content(C / 2, 4);
    let a = store.put(Bytes::from([x.clone(), y.clone(), z].concat())).unwrap();
    assert_eq!(store.metrics().used, 3 * C as u64);
    // Same content again: nothing new stored.
    assert_eq!(store.put(Bytes::from(store.get(&a).unwrap().unwrap().to_vec())).unwrap(), a);
    assert_eq!(store.metrics().used, 3 * C as u64);
    assert_eq!(store.metrics().dedup_puts, 1);
    // Shares the first two chunks with `a`.
    let b = store.put(Bytes::from([x.clone(), y, w.clone()].concat())).unwrap();
    let m = store.metrics();
    assert_eq!((m.blobs, m.chunks), (2, 4));
    assert_eq!(m.used, 3 * C as u64 + w.len() as u64);
    // A blob that is just `x` is chunk 0 of `a`: no new bytes.
    let single = store.put(Bytes::from(x.clone())).unwrap();
    assert_eq!(single, Hash::of(&x));
    let m = store.metrics();
    assert_eq!((m.blobs, m.chunks), (3, 4));
    assert_eq!(m.used, 3 * C as u64 + w.len() as u64);
    // `x` at positions 1 and 2 has other CVs but the same bytes: stored once.
    let xxx = store.put(Bytes::from([x.clone(), x.clone(), x.clone()].concat())).unwrap();
    let m = store.metrics();
    assert_eq!((m.blobs, m.chunks), (4, 4));
    assert_eq!(m.used, 3 * C as u64 + w.len() as u64);
    for hash in [a, b, xxx, single] {
        assert!(store.get(&hash).unwrap().is_some());
    }
}

/// The same chunk at other positions, in other blobs and within one blob, put in
/// one piece or streamed, is stored once; deleting the blob that first stored it
/// keeps it for the others.
fn chunks_are_shared_across_positions<H: Harness>(h: &H) {
    let store = h.store(StoreConfig::default());
    let x = content(C, 21);
    let y = content(C, 22);
    let tail = content(100, 23);
    let xy_data = [x.clone(), y.clone()].concat();
    let yx_data = [y.clone(), x.clone(), tail.clone()].concat();
    let xy = store.put(Bytes::from(xy_data.clone())).unwrap();
    let yx = store.put(Bytes::from(yx_data.clone())).unwrap();
    let m = store.metrics();
    assert_eq!((m.chunks, m.used), (3, 2 * C as u64 + 100));
    assert_eq!(m.bytes_written, 2 * C as u64 + 100, "the shifted chunks were not written");
    // Streamed, shifted again.
    let streamed_data = [tail.clone(), x.clone(), y.clone()].concat();
    let streamed = store.put_stream(&mut std::io::Cursor::new(streamed_data.clone())).unwrap();
    assert_eq!(streamed, Hash::of(&streamed_data));
    // `tail` is a full chunk's start here, so only its first chunk is new.
    let m = store.metrics();
    assert_eq!(m.blobs, 3);
    assert!(store.delete(&xy).unwrap());
    assert_eq!(store.get(&yx).unwrap().unwrap(), yx_data);
    assert_eq!(store.get(&streamed).unwrap().unwrap(), streamed_data);
    assert!(store.delete(&yx).unwrap());
    assert!(store.delete(&streamed).unwrap());
    let m = store.metrics();
    assert_eq!((m.blobs, m.chunks, m.used), (0, 0, 0));

    // Within one blob, put and streamed.
    let zeros = vec![0u8; 4 * C + 1];
    let z = store.put(Bytes::from(zeros.clone())).unwrap();
    assert_eq!(store.metrics().used, C as u64 + 1);
    let again = store.put_stream(&mut std::io::Cursor::new([zeros.clone(), vec![1]].concat()));
    assert!(again.is_ok());
    assert_eq!(store.metrics().used, C as u64 + 1 + 2, "only the 2-byte tail is new");
    assert_eq!(store.get(&z).unwrap().unwrap(), zeros);
}

/// Chunks whose content keys match (equal in every sampled window) but whose
/// bytes differ are never shared: the comparison tells them apart.
fn equal_keys_with_different_bytes_are_not_shared<H: Harness>(h: &H) {
    let store = h.store(StoreConfig::default());
    let window_start = |k: usize| k * (C - 32) / 255;
    let x = vec![0u8; C];
    let mut y = x.clone();
    // A byte between the first two sampled windows.
    y[window_start(1) + 100] = 1;
    let xy = [x.clone(), y.clone()].concat();
    let hash = store.put(Bytes::from(xy.clone())).unwrap();
    assert_eq!(store.metrics().used, 2 * C as u64, "x and y are both stored");
    assert_eq!(store.get(&hash).unwrap().unwrap(), xy);
    // Shifted, both are found and shared.
    let yx = [y, x].concat();
    let shifted = store.put(Bytes::from(yx.clone())).unwrap();
    assert_eq!(store.metrics().used, 2 * C as u64);
    assert_eq!(store.get(&shifted).unwrap().unwrap(), yx);
}

/// A damaged shared chunk is an integrity error for every blob that uses it,
/// and putting any of them again repairs it.
fn damaged_shared_chunks_are_detected_and_repaired<H: Harness>(h: &H) {
    let store = h.store(StoreConfig::default());
    let x = content(C, 31);
    let a_data = [x.clone(), content(10, 32)].concat();
    let b_data = [content(C, 33), x.clone(), content(10, 34)].concat();
    let a = store.put(Bytes::from(a_data.clone())).unwrap();
    let b = store.put(Bytes::from(b_data.clone())).unwrap();
    h.corrupt(&store, &a);
    assert!(matches!(store.get(&a), Err(BlobError::Integrity { .. })));
    // `b` reads its shared chunk from the damaged bytes (the memory log may
    // still hold `b` whole): an integrity error or the right bytes, never others.
    match store.get(&b) {
        Err(BlobError::Integrity { .. }) => {}
        Ok(Some(bytes)) => assert_eq!(bytes, b_data),
        other => panic!("{other:?}"),
    }
    assert_eq!(store.put(Bytes::from(b_data.clone())).unwrap(), b);
    assert_eq!(store.get(&b).unwrap().unwrap(), b_data);
    assert_eq!(store.put(Bytes::from(a_data.clone())).unwrap(), a);
    assert_eq!(store.get(&a).unwrap().unwrap(), a_data);
}

fn delete_keeps_shared_chunks<H: Harness>(h: &H) {
    let store = h.store(StoreConfig::default());
    let shared = content(C, 10);
    let a_data = [shared.clone(), content(C + 5, 11)].concat();
    let b_data = [shared, content(7, 12)].concat();
    let a = store.put(Bytes::from(a_data)).unwrap();
    let b = store.put(Bytes::from(b_data.clone())).unwrap();
    assert_eq!(store.metrics().used, 2 * C as u64 + 5 + 7);

    assert!(store.delete(&a).unwrap());
    assert!(!store.delete(&a).unwrap(), "already gone");
    assert!(!store.has(&a));
    assert_eq!(store.get(&a).unwrap(), None);
    assert_eq!(store.metrics().used, C as u64 + 7, "the shared chunk stays");
    assert!(store.get(&b).unwrap().unwrap() == b_data);

    assert!(store.delete(&b).unwrap());
    let m = store.metrics();
    assert_eq!((m.blobs, m.chunks, m.used, m.bytes, m.deletes), (0, 0, 0, 0, 2));
    assert!(store.list().is_empty());
}

fn eviction_takes_least_recently_read<H: Harness>(h: &H) {
    let store = h.store(StoreConfig::default().with_capacity(3000));
    let blob = |seed| Bytes::from(content(1000, seed));
    let a = store.put(blob(1)).unwrap();
    let b = store.put(blob(2)).unwrap();
    let c = store.put(blob(3)).unwrap();
    assert!(store.get(&a).unwrap().is_some());
    let d = store.put(blob(4)).unwrap();
    assert!(!store.has(&b), "b was the least recently used");
    assert!(store.has(&a) && store.has(&c) && store.has(&d));
    let e = store.put(blob(5)).unwrap();
    assert!(!store.has(&c));
    assert!(store.has(&a) && store.has(&d) && store.has(&e));
    let m = store.metrics();
    assert_eq!((m.evictions, m.blobs, m.used, m.capacity), (2, 3, 3000, Some(3000)));
    // A blob needing room for two evicts two.
    let big = store.put(Bytes::from(content(2000, 6))).unwrap();
    assert!(!store.has(&a) && !store.has(&d) && store.has(&e) && store.has(&big));
    assert_eq!(store.metrics().evictions, 4);
}

fn pinned_blobs_are_not_evicted<H: Harness>(h: &H) {
    let store = h.store(StoreConfig::default().with_capacity(2000));
    let blob = |seed| Bytes::from(content(1000, seed));
    let a = store.put(blob(1)).unwrap();
    assert!(store.pin(&a).unwrap());
    assert!(store.entry(&a).unwrap().pinned);
    let b = store.put(blob(2)).unwrap();
    let c = store.put(blob(3)).unwrap();
    assert!(store.has(&a) && !store.has(&b) && store.has(&c), "b evicted although a is older");
    assert!(store.pin(&c).unwrap());
    match store.put(blob(4)) {
        Err(BlobError::StoreFull { needed: 1000, used: 2000, capacity: 2000 }) => {}
        other => panic!("expected StoreFull, got {other:?}"),
    }
    assert!(store.has(&a) && store.has(&c), "a refused put evicts nothing pinned");
    assert!(store.unpin(&a).unwrap());
    let d = store.put(blob(4)).unwrap();
    assert!(!store.has(&a) && store.has(&c) && store.has(&d));
    assert!(!store.pin(&Hash::of(b"absent")).unwrap());
    assert!(!store.unpin(&Hash::of(b"absent")).unwrap());
    // Explicit deletes remove pinned blobs.
    assert!(store.delete(&c).unwrap());
}

fn limits_are_enforced<H: Harness>(h: &H) {
    let store = h.store(StoreConfig { max_blob_size: 10, capacity: Some(100) });
    assert!(store.put_slice(&[1; 10]).is_ok());
    match store.put_slice(&[1; 11]) {
        Err(BlobError::TooLarge { size: 11, max: 10 }) => {}
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert!(matches!(
        store.put_stream(&mut &[2u8; 11][..]),
        Err(BlobError::TooLarge { size: 11, max: 10 })
    ));
    assert_eq!(store.metrics().blobs, 1);

    // Too large for the capacity: refused without evicting anything.
    let store = h.store(StoreConfig::default().with_capacity(C as u64));
    let small = store.put_slice(b"small").unwrap();
    assert!(matches!(
        store.put(Bytes::from(content(C + 1, 1))),
        Err(BlobError::StoreFull { needed, used: 5, .. }) if needed == C as u64 + 1
    ));
    assert!(store.has(&small));
    assert_eq!(store.metrics().evictions, 0);
}

fn corruption_is_an_integrity_error<H: Harness>(h: &H) {
    let store = h.store(StoreConfig::default());
    for (seed, len) in [(1, 1000), (2, 2 * C + 3)] {
        let data = content(len, seed);
        let hash = store.put(Bytes::from(data.clone())).unwrap();
        h.corrupt(&store, &hash);
        let err = store.get(&hash).unwrap_err();
        assert!(err.is_integrity(), "{err}");
        assert!(err.to_string().contains(&hash.to_string()));
        // Still refused on a second read.
        assert!(store.get(&hash).unwrap_err().is_integrity());
        // Putting the content again repairs the damaged chunks.
        assert_eq!(store.put(Bytes::from(data.clone())).unwrap(), hash);
        assert!(store.get(&hash).unwrap().unwrap() == data);
    }
    assert!(store.metrics().integrity_failures >= 4);
}

/// Range reads return exactly the bytes asked for, at every chunk boundary;
/// ranges past the end are errors and absent blobs are `None`.
fn range_reads_return_exactly_the_range<H: Harness>(h: &H) {
    let store = h.store(StoreConfig::default());
    for (seed, &len) in BOUNDARY_SIZES.iter().enumerate() {
        let data = content(len, seed as u64 + 200);
        let hash = store.put(Bytes::from(data.clone())).unwrap();
        let n = len as u64;
        let mut ranges = vec![(0, n), (0, 0), (n, 0), (n / 2, n - n / 2), (n / 3, n / 3)];
        if n > C as u64 {
            let c = C as u64;
            ranges.extend([(c - 1, 2), (c, n - c), (1, n - 2), (c, 0), (c - 10, 10)]);
        }
        for (offset, want) in ranges {
            let got = store.get_range(&hash, offset, want).unwrap().unwrap();
            let (from, to) = (offset as usize, (offset + want) as usize);
            assert!(got == data[from..to], "len {len}: range {offset}+{want}");
        }
        for (offset, want) in [(n + 1, 0), (n, 1), (0, n + 1), (1, u64::MAX), (u64::MAX, 2)] {
            match store.get_range(&hash, offset, want) {
                Err(BlobError::OutOfRange { hash: h, offset: o, len: l, size })
                    if h == hash && (o, l, size) == (offset, want, n) => {}
                other => panic!("len {len}: range {offset}+{want}: {other:?}"),
            }
        }
    }
    assert_eq!(store.get_range(&Hash::of(b"absent"), 0, 1).unwrap(), None);
    let m = store.metrics();
    assert_eq!(m.range_gets, m.gets);
    assert_eq!(m.misses, 1);
}

/// A range read reads and verifies only the chunks covering the range: damage
/// to another chunk does not fail it, damage to a covering one does.
fn range_reads_verify_only_covering_chunks<H: Harness>(h: &H) {
    let store = h.store(StoreConfig::default());
    let c = C as u64;
    let data = content(4 * C + 100, 300);
    let hash = store.put(Bytes::from(data.clone())).unwrap();
    let verified = |store: &H::Store| store.metrics().chunks_verified;
    let range = |offset: u64, len: u64| {
        let bytes = store.get_range(&hash, offset, len)?.expect("stored");
        assert!(bytes == data[offset as usize..(offset + len) as usize]);
        Ok::<_, BlobError>(())
    };

    let before = verified(&store);
    range(2 * c + 10, 1000).unwrap();
    assert_eq!(verified(&store) - before, 1, "one covering chunk");
    let before = verified(&store);
    range(c + 5, 2 * c).unwrap();
    assert_eq!(verified(&store) - before, 3, "chunks 1, 2 and 3");
    let before = verified(&store);
    range(4 * c, 100).unwrap();
    assert_eq!(verified(&store) - before, 1, "the tail chunk");
    let before = verified(&store);
    range(3 * c, 0).unwrap();
    assert_eq!(verified(&store) - before, 0, "an empty range reads nothing");
    let before = verified(&store);
    store.get(&hash).unwrap().unwrap();
    assert_eq!(verified(&store) - before, 5, "a whole read checks every chunk");

    h.corrupt_chunk(&store, &hash, 4);
    range(0, 4 * c).unwrap();
    range(c - 1, 2).unwrap();
    let err = range(4 * c - 1, 2).unwrap_err();
    assert!(err.is_integrity(), "{err}");
    assert!(store.get(&hash).unwrap_err().is_integrity());
    // Still refused, while the intact chunks still read.
    assert!(range(4 * c, 1).unwrap_err().is_integrity());
    range(3 * c, c).unwrap();
    // Putting the content again repairs the damaged chunk.
    assert_eq!(store.put(Bytes::from(data.clone())).unwrap(), hash);
    range(4 * c - 1, 101).unwrap();

    // A blob of one chunk is checked against the blob hash itself.
    let small = content(5000, 301);
    let one = store.put_slice(&small).unwrap();
    assert!(store.get_range(&one, 10, 20).unwrap().unwrap() == small[10..30]);
    h.corrupt_chunk(&store, &one, 0);
    assert!(store.get_range(&one, 10, 20).unwrap_err().is_integrity());
}

fn inventory_and_metrics<H: Harness>(h: &H) {
    let store = h.store(StoreConfig::default());
    let a = store.put_slice(b"alpha").unwrap();
    let b = store.put_slice(b"beta").unwrap();
    let before = store.entry(&a).unwrap();
    assert_eq!((before.read_count, before.last_read_ms, before.pinned), (0, None, false));
    assert!(before.stored_at_ms > 0);
    for _ in 0..3 {
        store.get(&a).unwrap().unwrap();
    }
    assert_eq!(store.get(&Hash::of(b"absent")).unwrap(), None);
    let after = store.entry(&a).unwrap();
    assert_eq!(after.read_count, 3);
    assert!(after.last_read_ms.is_some());
    let mut listed: Vec<_> = store.list().into_iter().map(|e| (e.hash, e.size)).collect();
    listed.sort();
    let mut expected = vec![(a, 5), (b, 4)];
    expected.sort();
    assert_eq!(listed, expected);
    let m = store.metrics();
    assert_eq!((m.puts, m.gets, m.hits, m.misses, m.bytes_read), (2, 4, 3, 1, 15));
    assert_eq!((m.blobs, m.bytes, m.used, m.bytes_written), (2, 9, 9, 9));
}

fn concurrent_use<H: Harness>(h: &H) {
    let store = h.store(StoreConfig::default());
    let blobs: Vec<Vec<u8>> =
        (0..8).map(|i| content(1000 + i * 70_000 + (i % 3) * C, i as u64 % 5)).collect();
    std::thread::scope(|scope| {
        for t in 0..4 {
            let store = &store;
            let blobs = &blobs;
            scope.spawn(move || {
                for (i, data) in blobs.iter().enumerate().cycle().skip(t).take(12) {
                    let hash = store.put_slice(data).unwrap();
                    assert_eq!(hash, Hash::of(data), "blob {i}");
                    assert!(store.get(&hash).unwrap().unwrap() == data[..]);
                }
            });
        }
    });
    let m = store.metrics();
    let distinct: std::collections::HashSet<_> = blobs.iter().map(|b| Hash::of(b)).collect();
    assert_eq!(m.blobs, distinct.len() as u64);
    assert_eq!(m.puts, 48);
    for hash in distinct {
        assert!(store.get(&hash).unwrap().is_some());
    }
}

#[test]
fn round_trip_boundary_sizes_mem() {
    round_trip_boundary_sizes(&Mem);
}
#[test]
fn round_trip_boundary_sizes_disk() {
    round_trip_boundary_sizes(&Disk::new());
}
#[test]
fn stream_matches_put_mem() {
    stream_matches_put(&Mem);
}
#[test]
fn stream_matches_put_disk() {
    stream_matches_put(&Disk::new());
}
#[test]
fn dedup_blobs_and_chunks_mem() {
    dedup_blobs_and_chunks(&Mem);
}
#[test]
fn dedup_blobs_and_chunks_disk() {
    dedup_blobs_and_chunks(&Disk::new());
}
#[test]
fn chunks_are_shared_across_positions_mem() {
    chunks_are_shared_across_positions(&Mem);
}
#[test]
fn chunks_are_shared_across_positions_disk() {
    chunks_are_shared_across_positions(&Disk::new());
}
#[test]
fn equal_keys_with_different_bytes_are_not_shared_mem() {
    equal_keys_with_different_bytes_are_not_shared(&Mem);
}
#[test]
fn equal_keys_with_different_bytes_are_not_shared_disk() {
    equal_keys_with_different_bytes_are_not_shared(&Disk::new());
}
#[test]
fn damaged_shared_chunks_are_detected_and_repaired_mem() {
    damaged_shared_chunks_are_detected_and_repaired(&Mem);
}
#[test]
fn damaged_shared_chunks_are_detected_and_repaired_disk() {
    damaged_shared_chunks_are_detected_and_repaired(&Disk::new());
}
#[test]
fn delete_keeps_shared_chunks_mem() {
    delete_keeps_shared_chunks(&Mem);
}
#[test]
fn delete_keeps_shared_chunks_disk() {
    delete_keeps_shared_chunks(&Disk::new());
}
#[test]
fn eviction_takes_least_recently_read_mem() {
    eviction_takes_least_recently_read(&Mem);
}
#[test]
fn eviction_takes_least_recently_read_disk() {
    eviction_takes_least_recently_read(&Disk::new());
}
#[test]
fn pinned_blobs_are_not_evicted_mem() {
    pinned_blobs_are_not_evicted(&Mem);
}
#[test]
fn pinned_blobs_are_not_evicted_disk() {
    pinned_blobs_are_not_evicted(&Disk::new());
}
#[test]
fn limits_are_enforced_mem() {
    limits_are_enforced(&Mem);
}
#[test]
fn limits_are_enforced_disk() {
    limits_are_enforced(&Disk::new());
}
#[test]
fn corruption_is_an_integrity_error_mem() {
    corruption_is_an_integrity_error(&Mem);
}
#[test]
fn corruption_is_an_integrity_error_disk() {
    corruption_is_an_integrity_error(&Disk::new());
}
#[test]
fn range_reads_return_exactly_the_range_mem() {
    range_reads_return_exactly_the_range(&Mem);
}
#[test]
fn range_reads_return_exactly_the_range_disk() {
    range_reads_return_exactly_the_range(&Disk::new());
}
#[test]
fn range_reads_verify_only_covering_chunks_mem() {
    range_reads_verify_only_covering_chunks(&Mem);
}
#[test]
fn range_reads_verify_only_covering_chunks_disk() {
    range_reads_verify_only_covering_chunks(&Disk::new());
}
#[test]
fn inventory_and_metrics_mem() {
    inventory_and_metrics(&Mem);
}
#[test]
fn inventory_and_metrics_disk() {
    inventory_and_metrics(&Disk::new());
}
#[test]
fn concurrent_use_mem() {
    concurrent_use(&Mem);
}
#[test]
fn concurrent_use_disk() {
    concurrent_use(&Disk::new());
}

#[test]
fn stores_work_as_shared_trait_objects() {
    let dir = tempfile::tempdir().unwrap();
    let stores: Vec<std::sync::Arc<dyn BlobStore>> = vec![
        std::sync::Arc::new(MemLog::default()),
        std::sync::Arc::new(DiskLog::open(dir.path(), DiskConfig::default()).unwrap()),
    ];
    for store in stores {
        let worker = std::sync::Arc::clone(&store);
        let hash = std::thread::spawn(move || worker.put_slice(b"shared").unwrap()).join().unwrap();
        assert!(store.get(&hash).unwrap().unwrap() == b"shared"[..]);
        store.sync().unwrap();
    }
}
