//! 64-bit ids derived from public keys.
//!
//! Both ids are the first 8 bytes (little-endian) of `blake3::derive_key(context,
//! public_key)`. Two different contexts keep a node id and a daemon's origin hash
//! from ever colliding by construction, even when a key is reused.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::AuthError;

/// Context string for node ids (never change: it would rename every node).
pub(crate) const NODE_ID_CONTEXT: &str = "meshdeck 2026-11 node id v1";
/// Context string for origin hashes (daemon ids).
pub(crate) const ORIGIN_HASH_CONTEXT: &str = "meshdeck 2026-11 origin hash v1";
/// Context string for operator ids.
pub(crate) const OPERATOR_ID_CONTEXT: &str = "meshdeck 2026-11 operator id v1";

/// The first 8 bytes (LE) of `blake3::derive_key(context, public_key)`, for the
/// compressed bytes of an ed25519 public key.
pub(crate) fn derive_u64(context: &str, public_key: &[u8; 32]) -> u64 {
    let full = blake3::derive_key(context, public_key);
    let mut first = [0u8; 8];
    first.copy_from_slice(&full[..8]);
    u64::from_le_bytes(first)
}

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub struct $name(pub u64);

        impl $name {
            /// The full form: `0x` and 16 lower-case hex digits.
            pub fn to_hex(self) -> String {
                format!("{:#018x}", self.0)
            }

            /// A short form for narrow table columns: the first 6 hex digits.
            ///
            /// Collisions are possible in theory; show the full form where it matters.
            pub fn short(self) -> String {
                let full = format!("{:016x}", self.0);
                full[..6].to_owned()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:#018x}", self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:#018x})", stringify!($name), self.0)
            }
        }

        impl FromStr for $name {
            type Err = AuthError;

            /// Parses the full form, with or without the `0x` prefix.
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let digits = s.strip_prefix("0x").unwrap_or(s);
                if digits.is_empty() || digits.len() > 16 {
                    return Err(AuthError::Decode {
                        what: stringify!($name),
                        reason: format!("expected up to 16 hex digits, got {s:?}"),
                    });
                }
                u64::from_str_radix(digits, 16).map($name).map_err(|e| AuthError::Decode {
                    what: stringify!($name),
                    reason: e.to_string(),
                })
            }
        }
    };
}

id_type!(
    /// A node's id: derived from its ed25519 public key, so it is authenticated
    /// whenever the key is.
    NodeId
);

id_type!(
    /// An operator's id: derived from the public key the operator signs with.
    OperatorId
);

id_type!(
    /// An origin hash: the id of a daemon (or other entity) derived from its key.
    OriginHash
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_parse() {
        let id = NodeId(0x00ab_cdef_0123_4567);
        assert_eq!(id.to_string(), "0x00abcdef01234567");
        assert_eq!(id.short(), "00abcd");
        assert_eq!("0x00abcdef01234567".parse::<NodeId>().unwrap(), id);
        assert_eq!("abcdef01234567".parse::<NodeId>().unwrap(), id);
        assert!("0x".parse::<NodeId>().is_err());
        assert!("0x1234567890abcdef0".parse::<NodeId>().is_err());
        assert!("zz".parse::<NodeId>().is_err());
    }
}
