//! The disk log's on-disk format: segment headers and record headers.
//!
//! A segment file starts with the 16 bytes [`SEGMENT_MAGIC`] and holds records back
//! to back. Every record is a 64-byte header followed by its payload:
//!
//! | bytes  | field                                                        |
//! |--------|--------------------------------------------------------------|
//! | 0..4   | magic `MBr1`                                                 |
//! | 4      | kind: 1 chunk, 2 manifest, 3 tombstone, 4 pin                |
//! | 5..8   | zero                                                         |
//! | 8..12  | payload length, u32 little-endian                            |
//! | 12..16 | chunk records: the chunk's index in its blob (u32 LE); else 0 |
//! | 16..48 | chunk records: the chunk's CV; else blake3 of the payload     |
//! | 48..64 | first 16 bytes of `blake3::keyed_hash(store key, bytes 0..48)` |
//!
//! The header checksum covers the payload through its hash (for a chunk, its BLAKE3
//! chaining value at its index, see [`crate::tree`]), so checking a record means
//! checking the header (cheap, always done) and re-hashing the payload (done on
//! every read, and at open where [`crate::OpenVerify`] says). The key is random
//! per store (kept in the marker file), so blob content can never pass for a record
//! header when recovery searches for the next record after damage.
//!
//! Payloads of chunks are the raw bytes; the other kinds are postcard encodings of
//! a manifest, `(hash, reason)` and `(hash, pinned)`.

use crate::Hash;
use crate::config::MAX_BLOB_SIZE_LIMIT;
use crate::store::CHUNK_SIZE;

/// First bytes of every segment file (the last byte is the format version).
pub(crate) const SEGMENT_MAGIC: &[u8; 16] = b"mesh-blobs seg\n\x02";
/// Length of a record header.
pub(crate) const HEADER_LEN: usize = 64;
/// First bytes of every record header.
pub(crate) const RECORD_MAGIC: &[u8; 4] = b"MBr1";
/// Largest manifest payload: per chunk of the largest allowed blob, its hash (32),
/// its content key (a varint, at most 10) and a possible share entry (a varint
/// position and a hash, at most 37), plus room for the other fields.
const MAX_MANIFEST_LEN: u64 = (MAX_BLOB_SIZE_LIMIT / CHUNK_SIZE as u64) * 79 + 64;
/// Largest payload of the small record kinds.
const MAX_SMALL_LEN: u64 = 64;

/// What a record holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// One chunk's bytes.
    Chunk = 1,
    /// A blob's manifest: commits the blob.
    Manifest = 2,
    /// A blob was deleted or evicted.
    Tombstone = 3,
    /// A blob was pinned or unpinned.
    Pin = 4,
}

impl Kind {
    fn from_byte(b: u8) -> Option<Kind> {
        match b {
            1 => Some(Kind::Chunk),
            2 => Some(Kind::Manifest),
            3 => Some(Kind::Tombstone),
            4 => Some(Kind::Pin),
            _ => None,
        }
    }

    fn max_payload(self) -> u64 {
        match self {
            Kind::Chunk => CHUNK_SIZE as u64,
            Kind::Manifest => MAX_MANIFEST_LEN,
            Kind::Tombstone | Kind::Pin => MAX_SMALL_LEN,
        }
    }
}

/// A decoded, checked record header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) kind: Kind,
    /// Chunk records: the chunk's index in its blob (0 for other kinds).
    pub(crate) chunk_index: u32,
    pub(crate) payload_len: u32,
    /// Chunk records: the chunk's CV; other kinds: blake3 of the payload.
    pub(crate) digest: Hash,
}

impl Header {
    /// Header bytes for a record, checksummed under `key`.
    pub(crate) fn encode(&self, key: &[u8; 32]) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0..4].copy_from_slice(RECORD_MAGIC);
        out[4] = self.kind as u8;
        out[8..12].copy_from_slice(&self.payload_len.to_le_bytes());
        out[12..16].copy_from_slice(&self.chunk_index.to_le_bytes());
        out[16..48].copy_from_slice(self.digest.as_bytes());
        let check = blake3::keyed_hash(key, &out[0..48]);
        out[48..64].copy_from_slice(&check.as_bytes()[0..16]);
        out
    }

    /// Decodes header bytes; `None` unless every field and the checksum check out.
    pub(crate) fn decode(bytes: &[u8; HEADER_LEN], key: &[u8; 32]) -> Option<Header> {
        if &bytes[0..4] != RECORD_MAGIC
            || bytes[5..8] != [0; 3]
            || blake3::keyed_hash(key, &bytes[0..48]).as_bytes()[0..16] != bytes[48..64]
        {
            return None;
        }
        let kind = Kind::from_byte(bytes[4])?;
        let payload_len = u32::from_le_bytes(bytes[8..12].try_into().ok()?);
        let chunk_index = u32::from_le_bytes(bytes[12..16].try_into().ok()?);
        let is_chunk = kind == Kind::Chunk;
        if u64::from(payload_len) > kind.max_payload()
            || (is_chunk && payload_len == 0)
            || (!is_chunk && chunk_index != 0)
        {
            return None;
        }
        let digest = Hash::from_bytes(bytes[16..48].try_into().ok()?);
        Some(Header { kind, chunk_index, payload_len, digest })
    }

    /// Header plus payload length.
    pub(crate) fn record_len(&self) -> u64 {
        HEADER_LEN as u64 + u64::from(self.payload_len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_every_bit_matters() {
        let key = [7u8; 32];
        let h =
            Header { kind: Kind::Chunk, chunk_index: 3, payload_len: 1234, digest: Hash::of(b"x") };
        let bytes = h.encode(&key);
        assert_eq!(Header::decode(&bytes, &key), Some(h));
        assert_eq!(Header::decode(&bytes, &[8u8; 32]), None, "another store's key");
        for bit in 0..HEADER_LEN * 8 {
            let mut flipped = bytes;
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(Header::decode(&flipped, &key), None, "bit {bit}");
        }
    }

    #[test]
    fn out_of_range_fields_are_refused() {
        let key = [1u8; 32];
        let h = Header {
            kind: Kind::Chunk,
            chunk_index: 0,
            payload_len: CHUNK_SIZE as u32 + 1,
            digest: Hash::of(b""),
        };
        assert_eq!(Header::decode(&h.encode(&key), &key), None);
        let empty_chunk = Header { payload_len: 0, ..h };
        assert_eq!(Header::decode(&empty_chunk.encode(&key), &key), None);
        let indexed_pin = Header { kind: Kind::Pin, chunk_index: 1, payload_len: 40, ..h };
        assert_eq!(Header::decode(&indexed_pin.encode(&key), &key), None);
    }
}
