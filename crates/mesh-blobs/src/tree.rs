//! Hashing a blob once: the BLAKE3 chaining value of each 1 MiB chunk, and the
//! blob's hash (the root of the BLAKE3 tree) merged from them.
//!
//! BLAKE3 hashes its input as a binary tree of 1 KiB leaves. A [`CHUNK_SIZE`]
//! chunk at a multiple of `CHUNK_SIZE` is a complete subtree of that tree, so its
//! non-root chaining value ("CV") can be computed on its own
//! (`blake3::hazmat`), and the CVs of all chunks merge into exactly
//! `blake3::hash(whole blob)`. A put therefore reads every byte once and gets both
//! the blob hash and the chunk identities; a read verifies each chunk on its own
//! (finding the damaged one directly) and the blob hash from the chunk CVs. A peer
//! can verify chunks the same way, one at a time, against the blob hash.
//!
//! A chunk's CV depends on its content and its position (the chunk index): the
//! same bytes at another position have another CV. To store such chunks once
//! too, every stored chunk also has a position-independent *content key*
//! ([`content_key`]): XXH3-64 of the chunk's length and of 256 windows of 32
//! bytes spread evenly over it (the whole chunk when it is at most 8 KiB), so it
//! costs a few microseconds, not a second pass over the bytes. A new chunk whose
//! key and length match a stored one is compared byte for byte and shares the
//! stored bytes only if they are equal (see [`crate::index`]). The key is only a
//! lookup aid: chunks that differ only outside the windows, or a crafted
//! collision, cost a comparison, never wrong bytes.
//!
//! The hazmat functions assert their preconditions; every call here satisfies them
//! by construction (chunk offsets are multiples of `CHUNK_SIZE`, which is a power
//! of two multiple of 1 KiB, and no chunk is empty or longer than `CHUNK_SIZE`).

use std::sync::atomic::{AtomicUsize, Ordering};

use blake3::hazmat::{
    ChainingValue, HasherExt, Mode, left_subtree_len, merge_subtrees_non_root, merge_subtrees_root,
};

use crate::Hash;
use crate::store::CHUNK_SIZE;

/// Windows sampled for a content key, and their length.
const KEY_WINDOWS: usize = 256;
const KEY_WINDOW: usize = 32;

/// A chunk's content key (position-independent): XXH3-64 of its length and of
/// [`KEY_WINDOWS`] windows spread evenly over it, or of all of it when short.
pub(crate) fn content_key(data: &[u8]) -> u64 {
    const SAMPLE: usize = KEY_WINDOWS * KEY_WINDOW;
    if data.len() <= SAMPLE {
        return twox_hash::XxHash3_64::oneshot_with_seed(data.len() as u64, data);
    }
    let mut sample = [0u8; SAMPLE];
    let last = data.len() - KEY_WINDOW;
    for (k, window) in sample.chunks_exact_mut(KEY_WINDOW).enumerate() {
        let at = k * last / (KEY_WINDOWS - 1);
        window.copy_from_slice(&data[at..at + KEY_WINDOW]);
    }
    twox_hash::XxHash3_64::oneshot_with_seed(data.len() as u64, &sample)
}

/// Blobs with at least this many chunks are hashed on two threads.
const PARALLEL_MIN_CHUNKS: usize = 4;

/// The CV of chunk `index` of a blob, whose content is `data` (1 to
/// [`CHUNK_SIZE`] bytes). For a blob of one chunk, use [`single_chunk`].
pub(crate) fn chunk_cv(index: u64, data: &[u8]) -> Hash {
    debug_assert!(!data.is_empty() && data.len() <= CHUNK_SIZE);
    let mut hasher = blake3::Hasher::new();
    if index > 0 {
        hasher.set_input_offset(index * CHUNK_SIZE as u64);
    }
    hasher.update(data);
    Hash::from_bytes(hasher.finalize_non_root())
}

/// The blob hash and the chunk CV of a blob of one chunk (1 to [`CHUNK_SIZE`]
/// bytes), in one pass over the data.
pub(crate) fn single_chunk(data: &[u8]) -> (Hash, Hash) {
    debug_assert!(!data.is_empty() && data.len() <= CHUNK_SIZE);
    if data.len() <= blake3::CHUNK_LEN {
        // One BLAKE3 leaf: the root and the CV are two finalizations of it.
        let mut hasher = blake3::Hasher::new();
        hasher.update(data);
        return (Hash::from(hasher.finalize()), Hash::from_bytes(hasher.finalize_non_root()));
    }
    let split = left_subtree_len(data.len() as u64) as usize;
    let left = blake3::Hasher::new().update(&data[..split]).finalize_non_root();
    let right = blake3::Hasher::new()
        .set_input_offset(split as u64)
        .update(&data[split..])
        .finalize_non_root();
    (
        Hash::from(merge_subtrees_root(&left, &right, Mode::Hash)),
        Hash::from_bytes(merge_subtrees_non_root(&left, &right, Mode::Hash)),
    )
}

/// The blob hash from the CVs of its chunks; `None` unless there are at least two
/// and their number matches `size`.
pub(crate) fn root_from_chunks(cvs: &[Hash], size: u64) -> Option<Hash> {
    if cvs.len() < 2 || cvs.len() as u64 != size.div_ceil(CHUNK_SIZE as u64) {
        return None;
    }
    let split = left_subtree_len(size);
    let left_chunks = (split / CHUNK_SIZE as u64) as usize;
    let left = subtree_cv(&cvs[..left_chunks], split);
    let right = subtree_cv(&cvs[left_chunks..], size - split);
    Some(Hash::from(merge_subtrees_root(&left, &right, Mode::Hash)))
}

/// The CV of a subtree made of whole chunks (`len` bytes, aligned in the blob).
fn subtree_cv(cvs: &[Hash], len: u64) -> ChainingValue {
    if let [only] = cvs {
        return *only.as_bytes();
    }
    let split = left_subtree_len(len);
    let left_chunks = (split / CHUNK_SIZE as u64) as usize;
    merge_subtrees_non_root(
        &subtree_cv(&cvs[..left_chunks], split),
        &subtree_cv(&cvs[left_chunks..], len - split),
        Mode::Hash,
    )
}

/// The CVs of every chunk of `data`, computed on two threads for large blobs.
pub(crate) fn chunk_cvs(data: &[u8]) -> Vec<Hash> {
    per_chunk(data, chunk_cv)
}

/// Whether this process may run on more than one CPU (its affinity and cgroup
/// quota, read once): on one, a helper thread would only add switches.
fn may_use_two_threads() -> bool {
    static PARALLEL: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *PARALLEL.get_or_init(|| std::thread::available_parallelism().is_ok_and(|n| n.get() > 1))
}

/// `f(index, chunk)` for every chunk of `data`, in order; on two threads for large
/// blobs (the threads take chunks from a shared counter, so a busy core slows
/// nothing down).
fn per_chunk<T: Send>(data: &[u8], f: impl Fn(u64, &[u8]) -> T + Sync) -> Vec<T> {
    let count = data.len().div_ceil(CHUNK_SIZE);
    let one = |i: usize| {
        let end = ((i + 1) * CHUNK_SIZE).min(data.len());
        f(i as u64, &data[i * CHUNK_SIZE..end])
    };
    if count < PARALLEL_MIN_CHUNKS || !may_use_two_threads() {
        return (0..count).map(one).collect();
    }
    let next = AtomicUsize::new(0);
    let work = || {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= count {
                return done;
            }
            done.push((i, one(i)));
        }
    };
    let mut slots: Vec<Option<T>> = (0..count).map(|_| None).collect();
    std::thread::scope(|scope| {
        let helper =
            std::thread::Builder::new().name("mesh-blobs-hash".into()).spawn_scoped(scope, work);
        for (i, value) in work() {
            slots[i] = Some(value);
        }
        if let Ok(Ok(theirs)) = helper.map(|h| h.join()) {
            for (i, value) in theirs {
                slots[i] = Some(value);
            }
        }
    });
    // Anything a failed helper claimed but did not deliver is computed here.
    slots.into_iter().enumerate().map(|(i, slot)| slot.unwrap_or_else(|| one(i))).collect()
}

/// A hashed blob: its hash, and each chunk's CV and content key.
pub(crate) struct Hashed {
    pub(crate) root: Hash,
    pub(crate) cvs: Vec<Hash>,
    pub(crate) keys: Vec<u64>,
}

/// The blob hash, chunk CVs and chunk content keys of a whole blob (no chunks for
/// the empty blob).
pub(crate) fn hash_blob(data: &[u8]) -> Hashed {
    match data.len() {
        0 => Hashed { root: Hash::EMPTY, cvs: Vec::new(), keys: Vec::new() },
        n if n <= CHUNK_SIZE => {
            let (root, cv) = single_chunk(data);
            Hashed { root, cvs: vec![cv], keys: vec![content_key(data)] }
        }
        n => {
            let (cvs, keys): (Vec<Hash>, Vec<u64>) =
                per_chunk(data, |i, chunk| (chunk_cv(i, chunk), content_key(chunk)))
                    .into_iter()
                    .unzip();
            // The count always matches for data we chunked ourselves.
            let root = root_from_chunks(&cvs, n as u64).unwrap_or_else(|| Hash::of(data));
            Hashed { root, cvs, keys }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content(len: usize) -> Vec<u8> {
        let mut out = vec![0u8; len];
        blake3::Hasher::new().update(b"tree").finalize_xof().fill(&mut out);
        out
    }

    #[test]
    fn root_matches_plain_blake3_at_every_boundary() {
        let c = CHUNK_SIZE;
        let k = blake3::CHUNK_LEN;
        let data = content(9 * c + 3);
        for len in [
            0,
            1,
            k - 1,
            k,
            k + 1,
            3 * k,
            c - 1,
            c,
            c + 1,
            2 * c,
            3 * c - 7,
            4 * c,
            5 * c + 1,
            9 * c + 3,
        ] {
            let blob = &data[..len];
            let Hashed { root, cvs, keys } = hash_blob(blob);
            assert_eq!(root, Hash::of(blob), "len {len}");
            assert_eq!(keys.len(), cvs.len());
            assert_eq!(cvs.len(), len.div_ceil(c), "len {len}");
            if cvs.len() >= 2 {
                assert_eq!(root_from_chunks(&cvs, len as u64), Some(root));
            }
        }
    }

    #[test]
    fn content_keys_ignore_position_and_see_the_sampled_bytes() {
        let a = content(3 * CHUNK_SIZE);
        let (x, y) = (&a[..CHUNK_SIZE], &a[CHUNK_SIZE..2 * CHUNK_SIZE]);
        assert_ne!(content_key(x), content_key(y));
        let copy = x.to_vec();
        assert_eq!(content_key(x), content_key(&copy), "a function of the bytes alone");
        // Length is part of the key, and short chunks are keyed whole.
        assert_ne!(content_key(&x[..100]), content_key(&x[..101]));
        let mut short = x[..5000].to_vec();
        let before = content_key(&short);
        short[2500] ^= 1;
        assert_ne!(content_key(&short), before);
        // The first and last bytes are always in a window.
        let mut edited = x.to_vec();
        edited[0] ^= 1;
        assert_ne!(content_key(&edited), content_key(x));
        let mut edited = x.to_vec();
        edited[CHUNK_SIZE - 1] ^= 1;
        assert_ne!(content_key(&edited), content_key(x));
    }

    #[test]
    fn chunk_cvs_depend_on_content_and_position() {
        let a = content(3 * CHUNK_SIZE);
        let cvs = chunk_cvs(&a);
        assert_eq!(cvs[1], chunk_cv(1, &a[CHUNK_SIZE..2 * CHUNK_SIZE]));
        assert_ne!(chunk_cv(0, &a[..CHUNK_SIZE]), chunk_cv(1, &a[..CHUNK_SIZE]));
        // A single-chunk blob shares its chunk with chunk 0 of a longer blob.
        assert_eq!(single_chunk(&a[..CHUNK_SIZE]).1, cvs[0]);
        assert_eq!(root_from_chunks(&cvs, 3 * CHUNK_SIZE as u64 + 1), None);
        assert_eq!(root_from_chunks(&cvs[..1], CHUNK_SIZE as u64), None);
    }
}
