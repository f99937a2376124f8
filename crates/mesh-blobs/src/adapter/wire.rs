//! The blob services' names and messages.
//!
//! Messages are serde types that mesh-rpc encodes with postcard. Every request
//! names an adapter on the serving node, or none: "any adapter here that holds
//! the blob" (for `blobs.get` and `blobs.has`) or "every adapter here" (for
//! `blobs.list`). Nothing in a response is trusted by the caller: ranges are
//! checked against each other and the whole blob against its hash, and listings
//! must move forward and stay bounded.
//!
//! Nothing in a request is trusted by the server either: each caller node may
//! have at most [`MAX_IN_FLIGHT_PER_CALLER`] calls to the three services in
//! flight on a node (more are refused with status `resource_exhausted`, not
//! queued), a `blobs.get` reads only the chunks covering its range, and pages
//! and ranges are capped.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::AdapterInventory;
use crate::Hash;

/// `blobs.get`: [`GetRequest`] -> [`GetResponse`], one byte range of a blob.
///
/// The server reads (and verifies against the blob's hash) only the chunks
/// covering the range. Fails with status `not_found` when no adapter (or not
/// the named one) holds the blob, `out_of_range` for an offset past its end,
/// `data_loss` when the serving store finds a covering chunk of its copy
/// damaged, and `resource_exhausted` when the caller already has
/// [`MAX_IN_FLIGHT_PER_CALLER`] calls in flight there.
pub const GET: &str = "blobs.get";

/// `blobs.has`: [`HasRequest`] -> `Vec<`[`Holding`]`>`, which adapters hold a blob.
///
/// Fails with `resource_exhausted` as [`GET`] does.
pub const HAS: &str = "blobs.has";

/// `blobs.list`: [`ListRequest`] -> [`ListPage`], inventories page by page.
///
/// Fails with `resource_exhausted` as [`GET`] does.
pub const LIST: &str = "blobs.list";

/// Most calls to [`GET`], [`HAS`] and [`LIST`] (together) one caller node may
/// have in flight on a node; a further call is refused at once with status
/// `resource_exhausted` (not queued). A call's slot is held until the server's
/// work for it is done, even if the caller cancels it or its deadline passes.
/// A fetch has one call in flight to its peer at a time.
pub const MAX_IN_FLIGHT_PER_CALLER: usize = 4;

/// Bytes of an RPC message reserved for everything in a [`GetResponse`] but its
/// data: a range is at most the RPC message limit minus this.
pub const RESPONSE_OVERHEAD: usize = 4096;

/// Most inventory entries a server puts in one [`ListPage`] (about 80 bytes
/// each encoded, so a page stays well under the RPC message limit).
pub const MAX_LIST_PAGE: u32 = 8192;

/// Asks for `len` bytes of blob `hash` from `offset`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetRequest {
    /// The adapter to read from; `None`: the first adapter (by name) holding it.
    pub adapter: Option<String>,
    /// The blob.
    pub hash: Hash,
    /// First byte wanted.
    pub offset: u64,
    /// Bytes wanted; the server may send fewer (never more), but at least one
    /// unless the blob ends at `offset`.
    pub len: u32,
}

/// A range of a blob.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetResponse {
    /// The adapter that served it (name it in the following requests so every
    /// range comes from the same store).
    pub adapter: String,
    /// The blob's whole size.
    pub total: u64,
    /// The bytes from the requested offset.
    #[serde(with = "payload")]
    pub data: Bytes,
}

/// Asks which adapters hold blob `hash`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HasRequest {
    /// Ask only this adapter; `None`: every adapter on the node.
    pub adapter: Option<String>,
    /// The blob.
    pub hash: Hash,
}

/// An adapter that holds a blob.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holding {
    /// The adapter's name.
    pub adapter: String,
    /// The blob's size.
    pub size: u64,
}

/// Asks for a page of inventories.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListRequest {
    /// List only this adapter; `None`: every adapter on the node, by name.
    pub adapter: Option<String>,
    /// Where the previous page ended (`None`: from the start).
    pub after: Option<ListCursor>,
    /// Most entries wanted (servers cap it at [`MAX_LIST_PAGE`]).
    pub limit: u32,
}

/// A position in a node's listing: adapters in name order, each one's blobs in
/// hash order. Cursors compare in listing order.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ListCursor {
    /// Continue at this adapter (or the next one by name, if it is gone).
    pub adapter: String,
    /// Within it, after this blob (`None`: from its first blob).
    pub after: Option<Hash>,
}

/// A page of inventories.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListPage {
    /// The adapters this page covers, by name, each with the entries of the page
    /// (an adapter split across pages appears in each, with that page's part).
    pub adapters: Vec<AdapterInventory>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<ListCursor>,
}

/// Serde for a range's bytes as one byte string (postcard: a length and the
/// bytes, not one value per byte).
mod payload {
    use std::fmt;

    use bytes::Bytes;
    use serde::de::{self, SeqAccess, Visitor};
    use serde::{Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(data: &Bytes, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(data)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Bytes, D::Error> {
        deserializer.deserialize_byte_buf(BytesVisitor)
    }

    struct BytesVisitor;

    impl<'de> Visitor<'de> for BytesVisitor {
        type Value = Bytes;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a byte string")
        }

        fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Bytes, E> {
            Ok(Bytes::copy_from_slice(v))
        }

        fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Bytes, E> {
            Ok(Bytes::from(v))
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Bytes, A::Error> {
            // Human-readable formats write bytes as a list of numbers. The size
            // hint comes from the input, so it only bounds the first allocation.
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 16));
            while let Some(b) = seq.next_element::<u8>()? {
                out.push(b);
            }
            Ok(Bytes::from(out))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_compact_and_round_trip() {
        let response =
            GetResponse { adapter: "a".into(), total: 5000, data: Bytes::from(vec![7u8; 1000]) };
        let bin = postcard::to_stdvec(&response).unwrap();
        assert!(bin.len() < 1000 + 16, "{}", bin.len());
        assert_eq!(postcard::from_bytes::<GetResponse>(&bin).unwrap(), response);
        let json = serde_json::to_string(&response).unwrap();
        assert_eq!(serde_json::from_str::<GetResponse>(&json).unwrap(), response);
        // Truncated input is an error, never a panic.
        for cut in 0..bin.len().min(64) {
            assert!(postcard::from_bytes::<GetResponse>(&bin[..cut]).is_err());
        }
    }

    #[test]
    fn cursors_order_like_the_listing() {
        let at = |adapter: &str, after: Option<Hash>| ListCursor { adapter: adapter.into(), after };
        let (low, high) = (Hash::from_bytes([1; 32]), Hash::from_bytes([2; 32]));
        assert!(at("a", None) < at("a", Some(low)));
        assert!(at("a", Some(low)) < at("a", Some(high)));
        assert!(at("a", Some(high)) < at("b", None));
    }
}
