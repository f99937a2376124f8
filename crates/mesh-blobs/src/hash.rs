//! [`Hash`]: the blake3 digest that names a blob or a chunk.

use std::fmt;
use std::str::FromStr;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::BlobError;

/// Number of hex digits in [`Hash::short`].
pub const SHORT_HASH_DIGITS: usize = 12;

/// A blake3 hash of a blob's (or a chunk's) complete content.
///
/// Displayed as 64 lower-case hex digits; parsed from 64 hex digits of either case.
/// Serialized as that hex string in human-readable formats (JSON) and as 32 raw
/// bytes in binary ones (postcard), so wire messages stay compact.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hash([u8; 32]);

impl Hash {
    /// The hash of the empty blob.
    pub const EMPTY: Hash = Hash([
        0xaf, 0x13, 0x49, 0xb9, 0xf5, 0xf9, 0xa1, 0xa6, 0xa0, 0x40, 0x4d, 0xea, 0x36, 0xdc, 0xc9,
        0x49, 0x9b, 0xcb, 0x25, 0xc9, 0xad, 0xc1, 0x12, 0xb7, 0xcc, 0x9a, 0x93, 0xca, 0xe4, 0x1f,
        0x32, 0x62,
    ]);

    /// Hashes `data` (single-threaded `blake3::hash`).
    pub fn of(data: &[u8]) -> Hash {
        Hash(*blake3::hash(data).as_bytes())
    }

    /// Wraps 32 raw bytes (no check: every 32-byte value is a possible blake3 hash).
    pub const fn from_bytes(bytes: [u8; 32]) -> Hash {
        Hash(bytes)
    }

    /// The 32 raw bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The full 64-digit lower-case hex form (same as `Display`).
    pub fn to_hex(&self) -> String {
        blake3::Hash::from_bytes(self.0).to_hex().to_string()
    }

    /// The first [`SHORT_HASH_DIGITS`] hex digits, for logs and narrow table columns.
    ///
    /// Only for humans: short forms of different hashes can collide.
    pub fn short(&self) -> String {
        let mut hex = self.to_hex();
        hex.truncate(SHORT_HASH_DIGITS);
        hex
    }
}

impl From<blake3::Hash> for Hash {
    fn from(h: blake3::Hash) -> Self {
        Hash(*h.as_bytes())
    }
}

impl From<Hash> for blake3::Hash {
    fn from(h: Hash) -> Self {
        blake3::Hash::from_bytes(h.0)
    }
}

impl From<[u8; 32]> for Hash {
    fn from(bytes: [u8; 32]) -> Self {
        Hash(bytes)
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(blake3::Hash::from(*self).to_hex().as_str())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({self})")
    }
}

impl FromStr for Hash {
    type Err = BlobError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.len() != 64 {
            return Err(BlobError::InvalidHash { reason: "expected exactly 64 hex digits" });
        }
        blake3::Hash::from_hex(text)
            .map(Hash::from)
            .map_err(|_| BlobError::InvalidHash { reason: "not a hex digit" })
    }
}

impl Serialize for Hash {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&self.to_hex())
        } else {
            self.0.serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for Hash {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
            text.parse().map_err(D::Error::custom)
        } else {
            <[u8; 32]>::deserialize(deserializer).map(Hash)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_constant_is_blake3_of_nothing() {
        assert_eq!(Hash::EMPTY, Hash::of(b""));
    }

    #[test]
    fn hex_round_trip_and_short_form() {
        let h = Hash::of(b"hello");
        let text = h.to_string();
        assert_eq!(text.len(), 64);
        assert_eq!(text, blake3::hash(b"hello").to_hex().as_str());
        assert_eq!(text.parse::<Hash>().unwrap(), h);
        assert_eq!(text.to_uppercase().parse::<Hash>().unwrap(), h);
        assert_eq!(h.short(), text[..SHORT_HASH_DIGITS]);
        assert!(format!("{h:?}").contains(&text));
    }

    #[test]
    fn bad_text_is_refused() {
        assert!("".parse::<Hash>().is_err());
        assert!("ab".parse::<Hash>().is_err());
        assert!("g".repeat(64).parse::<Hash>().is_err());
        assert!("é".repeat(32).parse::<Hash>().is_err());
        assert!("0".repeat(65).parse::<Hash>().is_err());
    }

    #[test]
    fn serde_is_hex_in_json_and_raw_in_postcard() {
        let h = Hash::of(b"serde");
        let json = serde_json::to_string(&h).unwrap();
        assert_eq!(json, format!("\"{h}\""));
        assert_eq!(serde_json::from_str::<Hash>(&json).unwrap(), h);
        let bin = postcard::to_stdvec(&h).unwrap();
        assert_eq!(bin.len(), 32);
        assert_eq!(postcard::from_bytes::<Hash>(&bin).unwrap(), h);
        assert!(serde_json::from_str::<Hash>("\"xyz\"").is_err());
    }
}
