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
//! A chunk's CV depends on its content and its position (the chunk index), so
//! identical chunks at the same position of different blobs (shared prefixes,
//! versions of a file, a grown log) are stored once, while the same bytes at
//! another position are a different chunk.
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

/// The CVs of every chunk of `data`, computed on two threads for large blobs (the
/// threads take chunks from a shared counter, so a busy core slows nothing down).
pub(crate) fn chunk_cvs(data: &[u8]) -> Vec<Hash> {
    let count = data.len().div_ceil(CHUNK_SIZE);
    let cv = |i: usize| {
        let end = ((i + 1) * CHUNK_SIZE).min(data.len());
        chunk_cv(i as u64, &data[i * CHUNK_SIZE..end])
    };
    if count < PARALLEL_MIN_CHUNKS {
        return (0..count).map(cv).collect();
    }
    let next = AtomicUsize::new(0);
    let work = || {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= count {
                return done;
            }
            done.push((i, cv(i)));
        }
    };
    let mut slots: Vec<Option<Hash>> = vec![None; count];
    std::thread::scope(|scope| {
        let helper =
            std::thread::Builder::new().name("mesh-blobs-hash".into()).spawn_scoped(scope, work);
        for (i, h) in work() {
            slots[i] = Some(h);
        }
        if let Ok(Ok(theirs)) = helper.map(|h| h.join()) {
            for (i, h) in theirs {
                slots[i] = Some(h);
            }
        }
    });
    // Anything a failed helper claimed but did not deliver is computed here.
    slots.into_iter().enumerate().map(|(i, slot)| slot.unwrap_or_else(|| cv(i))).collect()
}

/// The blob hash and chunk CVs of a whole blob (no chunks for the empty blob).
pub(crate) fn hash_blob(data: &[u8]) -> (Hash, Vec<Hash>) {
    match data.len() {
        0 => (Hash::EMPTY, Vec::new()),
        n if n <= CHUNK_SIZE => {
            let (root, cv) = single_chunk(data);
            (root, vec![cv])
        }
        n => {
            let cvs = chunk_cvs(data);
            // The count always matches for data we chunked ourselves.
            let root = root_from_chunks(&cvs, n as u64).unwrap_or_else(|| Hash::of(data));
            (root, cvs)
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
            let (root, cvs) = hash_blob(blob);
            assert_eq!(root, Hash::of(blob), "len {len}");
            assert_eq!(cvs.len(), len.div_ceil(c), "len {len}");
            if cvs.len() >= 2 {
                assert_eq!(root_from_chunks(&cvs, len as u64), Some(root));
            }
        }
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
