//! Property tests: round trips, range reads, deduplication, and that damage to a
//! segment file is always detected (at open or on read) and never turns into
//! wrong bytes.

use std::os::unix::fs::FileExt;

use bytes::Bytes;
use mesh_blobs::{
    BlobError, BlobStore, CHUNK_SIZE, DiskConfig, DiskLog, Hash, MemLog, StoreConfig,
};
use proptest::prelude::*;

/// `len` bytes of pseudo-random content from `seed` (fast even in debug builds).
fn content(len: usize, seed: u64) -> Vec<u8> {
    let mut out = vec![0u8; len];
    blake3::Hasher::new().update(&seed.to_le_bytes()).finalize_xof().fill(&mut out);
    out
}

/// Sizes near the chunk boundaries and small ones.
fn size_strategy() -> impl Strategy<Value = usize> {
    prop_oneof![
        0usize..3000,
        (CHUNK_SIZE - 2)..(CHUNK_SIZE + 3),
        (2 * CHUNK_SIZE - 1)..(2 * CHUNK_SIZE + 2),
    ]
}

fn disk_config() -> DiskConfig {
    // Segments the size of a chunk, so larger blobs span several and the older
    // ones are not re-hashed at open (damage there is caught on read).
    DiskConfig { segment_size: CHUNK_SIZE as u64, ..DiskConfig::default() }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn mem_round_trip_arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..5000)) {
        let store = MemLog::default();
        let hash = store.put_slice(&data).unwrap();
        prop_assert_eq!(hash, Hash::of(&data));
        prop_assert_eq!(store.get(&hash).unwrap().unwrap(), Bytes::from(data.clone()));
        let streamed = MemLog::default().put_stream(&mut &data[..]).unwrap();
        prop_assert_eq!(streamed, hash);
    }

    #[test]
    fn hash_text_round_trip(bytes in any::<[u8; 32]>()) {
        let hash = Hash::from_bytes(bytes);
        prop_assert_eq!(hash.to_string().parse::<Hash>().unwrap(), hash);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn disk_round_trip_across_reopen(sizes in proptest::collection::vec(size_strategy(), 1..4), seed in any::<u64>()) {
        let dir = tempfile::tempdir().unwrap();
        let blobs: Vec<Vec<u8>> =
            sizes.iter().enumerate().map(|(i, &len)| content(len, seed ^ i as u64)).collect();
        let hashes: Vec<Hash> = {
            let store = DiskLog::open(dir.path(), disk_config()).unwrap();
            blobs.iter().map(|b| store.put(Bytes::from(b.clone())).unwrap()).collect()
        };
        let store = DiskLog::open(dir.path(), disk_config()).unwrap();
        prop_assert!(store.recovery_report().is_clean());
        for (hash, data) in hashes.iter().zip(&blobs) {
            prop_assert_eq!(*hash, Hash::of(data));
            prop_assert!(store.get(hash).unwrap().unwrap() == data[..]);
        }
    }

    #[test]
    fn identical_content_and_chunks_are_stored_once(
        seed in any::<u64>(),
        tail_a in 1usize..2000,
        tail_b in 1usize..2000,
    ) {
        let store = MemLog::new(StoreConfig::default());
        let shared = content(CHUNK_SIZE, seed);
        let a = [shared.clone(), content(tail_a, seed ^ 1)].concat();
        let b = [shared, content(tail_b, seed ^ 2)].concat();
        let ha = store.put_slice(&a).unwrap();
        prop_assert_eq!(store.put_slice(&a).unwrap(), ha);
        let hb = store.put_slice(&b).unwrap();
        prop_assert_ne!(ha, hb);
        let m = store.metrics();
        prop_assert_eq!(m.blobs, 2);
        prop_assert_eq!(m.dedup_puts, 1);
        prop_assert_eq!(m.used, (CHUNK_SIZE + tail_a + tail_b) as u64);
        // Removing one blob keeps the shared chunk for the other.
        prop_assert!(store.delete(&ha).unwrap());
        prop_assert!(store.get(&hb).unwrap().unwrap() == b[..]);
        prop_assert_eq!(store.metrics().used, (CHUNK_SIZE + tail_b) as u64);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    /// Flip one bit anywhere in any segment file: the damage is reported at open,
    /// or a read fails its integrity check, or a blob is reported missing; a read
    /// that succeeds returns exactly the stored bytes.
    #[test]
    fn bit_flips_in_segments_are_detected(
        sizes in proptest::collection::vec(prop_oneof![0usize..2000, Just(CHUNK_SIZE + 10)], 1..4),
        seed in any::<u64>(),
        which in any::<proptest::sample::Index>(),
        offset in any::<proptest::sample::Index>(),
        bit in 0u8..8,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let blobs: Vec<Vec<u8>> =
            sizes.iter().enumerate().map(|(i, &len)| content(len, seed ^ i as u64)).collect();
        let (hashes, segments) = {
            let store = DiskLog::open(dir.path(), disk_config()).unwrap();
            let hashes: Vec<Hash> =
                blobs.iter().map(|b| store.put(Bytes::from(b.clone())).unwrap()).collect();
            (hashes, store.segment_paths())
        };
        let path = which.get(&segments);
        let file = std::fs::OpenOptions::new().read(true).write(true).open(path).unwrap();
        let len = file.metadata().unwrap().len() as usize;
        let at = offset.index(len) as u64;
        let mut byte = [0u8];
        file.read_exact_at(&mut byte, at).unwrap();
        byte[0] ^= 1 << bit;
        file.write_all_at(&byte, at).unwrap();
        drop(file);

        let store = DiskLog::open(dir.path(), disk_config()).unwrap();
        let mut detected = !store.recovery_report().is_clean();
        for (hash, data) in hashes.iter().zip(&blobs) {
            match store.get(hash) {
                Ok(Some(bytes)) => prop_assert!(bytes == data[..], "wrong bytes served"),
                Ok(None) => detected = true,
                Err(e) => {
                    prop_assert!(e.is_integrity(), "{}", e);
                    detected = true;
                }
            }
        }
        prop_assert!(detected, "flip at {} of {} went unnoticed", at, path.display());
    }

    /// Arbitrary bytes where a segment should be: open never panics, reports the
    /// damage and indexes nothing.
    #[test]
    fn garbage_segments_are_reported(garbage in proptest::collection::vec(any::<u8>(), 1..3000)) {
        let dir = tempfile::tempdir().unwrap();
        drop(DiskLog::open(dir.path(), disk_config()).unwrap());
        std::fs::write(dir.path().join("segment-00000001.log"), &garbage).unwrap();
        let store = DiskLog::open(dir.path(), disk_config()).unwrap();
        prop_assert!(!store.recovery_report().is_clean());
        prop_assert_eq!(store.metrics().blobs, 0);
        // The store is usable afterwards.
        let hash = store.put_slice(b"after garbage").unwrap();
        drop(store);
        let store = DiskLog::open(dir.path(), disk_config()).unwrap();
        prop_assert!(store.get(&hash).unwrap().is_some());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]

    /// Blobs built from a palette of three chunks, in any order and repetition:
    /// each distinct chunk is stored once whatever its positions, blobs read back
    /// after deletes and a reopen, and `used` is exactly the distinct chunks of
    /// the blobs still stored plus their tails.
    #[test]
    fn equal_chunks_are_stored_once_at_any_position(
        seed in any::<u64>(),
        layouts in proptest::collection::vec(
            (proptest::collection::vec(0usize..3, 1..4), 0usize..100), 1..4),
        keep in proptest::collection::vec(any::<bool>(), 4),
    ) {
        let palette: Vec<Vec<u8>> = (0..3).map(|i| content(CHUNK_SIZE, seed ^ (i + 10))).collect();
        let blobs: Vec<(Vec<u8>, Vec<usize>, usize)> = layouts
            .iter()
            .enumerate()
            .map(|(b, (order, tail))| {
                let mut data: Vec<u8> = order.iter().flat_map(|&i| palette[i].clone()).collect();
                data.extend(content(*tail, seed ^ (100 + b as u64)));
                (data, order.clone(), *tail)
            })
            .collect();
        // Distinct tails (seeded per blob) and the distinct palette chunks used.
        let expected_used = |live: &[&(Vec<u8>, Vec<usize>, usize)]| {
            let mut chunks: Vec<usize> = live.iter().flat_map(|(_, o, _)| o.clone()).collect();
            chunks.sort_unstable();
            chunks.dedup();
            let mut tails: Vec<&[u8]> = live
                .iter()
                .filter(|(_, _, t)| *t > 0)
                .map(|(d, _, t)| &d[d.len() - t..])
                .collect();
            tails.sort_unstable();
            tails.dedup();
            (chunks.len() * CHUNK_SIZE + tails.iter().map(|t| t.len()).sum::<usize>()) as u64
        };
        let dir = tempfile::tempdir().unwrap();
        let hashes: Vec<Hash> = {
            let store = DiskLog::open(dir.path(), disk_config()).unwrap();
            let hashes: Vec<Hash> = blobs
                .iter()
                .enumerate()
                .map(|(i, (data, _, _))| {
                    if i % 2 == 0 {
                        store.put(Bytes::from(data.clone())).unwrap()
                    } else {
                        store.put_stream(&mut &data[..]).unwrap()
                    }
                })
                .collect();
            let all: Vec<_> = blobs.iter().collect();
            prop_assert_eq!(store.metrics().used, expected_used(&all));
            // Equal blobs share one hash: the first one's `keep` decides for all.
            for hash in &hashes {
                if !keep[hashes.iter().position(|h| h == hash).unwrap()] {
                    store.delete(hash).unwrap();
                }
            }
            hashes
        };
        let store = DiskLog::open(dir.path(), disk_config()).unwrap();
        prop_assert!(store.recovery_report().lost_blobs.is_empty());
        let live: Vec<_> = hashes
            .iter()
            .zip(&blobs)
            .filter(|(h, _)| keep[hashes.iter().position(|x| x == *h).unwrap()])
            .collect();
        for (hash, (data, _, _)) in &live {
            prop_assert!(store.get(hash).unwrap().unwrap() == data[..]);
        }
        let live_blobs: Vec<_> = live.iter().map(|(_, b)| *b).collect();
        prop_assert_eq!(store.metrics().used, expected_used(&live_blobs));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Any range within a blob reads back exactly those bytes, whether the blob
    /// was put whole (the memory log keeps its buffer), streamed (chunk by
    /// chunk) or stored on disk; a range reaching past the end, by any amount
    /// and even overflowing, is `OutOfRange`, never a panic or bytes.
    #[test]
    fn range_reads_return_exactly_the_range(
        len in prop_oneof![size_strategy(), (3 * CHUNK_SIZE)..(3 * CHUNK_SIZE + 5000)],
        seed in any::<u64>(),
        ranges in proptest::collection::vec(
            (any::<proptest::sample::Index>(), any::<proptest::sample::Index>()), 1..8),
        past in proptest::collection::vec((any::<proptest::sample::Index>(), 1u64..(1 << 40)), 1..4),
    ) {
        let data = content(len, seed);
        let dir = tempfile::tempdir().unwrap();
        let whole = MemLog::default();
        let streamed = MemLog::default();
        let disk = DiskLog::open(dir.path(), disk_config()).unwrap();
        let hash = whole.put(Bytes::from(data.clone())).unwrap();
        prop_assert_eq!(streamed.put_stream(&mut &data[..]).unwrap(), hash);
        prop_assert_eq!(disk.put(Bytes::from(data.clone())).unwrap(), hash);
        let n = len as u64;
        let stores: [&dyn BlobStore; 3] = [&whole, &streamed, &disk];
        for store in stores {
            for (at, size) in &ranges {
                let offset = at.index(len + 1);
                let want = size.index(len - offset + 1);
                let got = store.get_range(&hash, offset as u64, want as u64).unwrap().unwrap();
                prop_assert!(got == data[offset..offset + want], "{}+{} of {}", offset, want, len);
            }
            let mut beyond: Vec<(u64, u64)> = past
                .iter()
                .map(|(at, over)| {
                    let offset = at.index(len + 1) as u64;
                    (offset, n - offset + over)
                })
                .collect();
            beyond.extend(past.iter().map(|(_, over)| (n + over, 0)));
            beyond.push((1, u64::MAX));
            for (offset, want) in beyond {
                match store.get_range(&hash, offset, want) {
                    Err(BlobError::OutOfRange { hash: h, offset: o, len: l, size }) => {
                        prop_assert_eq!((h, o, l, size), (hash, offset, want, n));
                    }
                    other => prop_assert!(false, "{}+{} of {}: {:?}", offset, want, len, other),
                }
            }
            prop_assert_eq!(store.get_range(&Hash::of(b"absent"), 0, 0).unwrap(), None);
        }
    }
}
