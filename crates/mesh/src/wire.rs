//! The wire format: datagram headers (outer) and frames (inside the encryption).
//!
//! Every datagram starts with the wire version and a packet type:
//!
//! ```text
//! HandshakeInit   [ver][1][sender u32 LE][timestamp_ms u64 LE][noise message 1]
//! HandshakeResp   [ver][2][sender u32][receiver u32][noise message 2]
//! HandshakeFinal  [ver][3][receiver u32][noise message 3]
//! Transport       [ver][4][receiver u32][counter u64 LE][ciphertext + 16-byte tag]
//! ```
//!
//! The opener's timestamp is the initiator's clock (ms since the Unix epoch); it
//! is also the Noise prologue, so it cannot be changed without failing
//! message 1's AEAD check. A responder refuses openers outside its freshness
//! window, and openers it has seen, before any Diffie-Hellman work.
//!
//! `sender` / `receiver` are session indices each side picks at random, so a
//! datagram finds its session without trusting the source address. The counter is
//! the explicit Noise nonce; a sliding window refuses replays.
//!
//! The decrypted payload of a transport packet is one [`Frame`], encoded with
//! postcard. Decoding is bounded and never panics.

use serde::{Deserialize, Serialize};

/// The wire-format version in every datagram's first byte.
pub const WIRE_VERSION: u8 = 3;
/// Bytes of header before an opener's Noise message.
pub const INIT_HEADER: usize = 1 + 1 + 4 + 8;
/// Bytes of header before a transport packet's ciphertext.
pub const TRANSPORT_HEADER: usize = 1 + 1 + 4 + 8;
/// Bytes of AEAD tag after the ciphertext.
pub const TAG_LEN: usize = 16;

const TYPE_INIT: u8 = 1;
const TYPE_RESP: u8 = 2;
const TYPE_FINAL: u8 = 3;
const TYPE_TRANSPORT: u8 = 4;

/// Why bytes could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// Shorter than its header.
    #[error("truncated datagram")]
    Truncated,
    /// A wire version this build does not speak.
    #[error("unsupported wire version {0}")]
    Version(u8),
    /// An unknown packet type.
    #[error("unknown packet type {0}")]
    Type(u8),
    /// A frame that does not decode.
    #[error("malformed frame: {0}")]
    Frame(String),
}

/// A parsed datagram; the payload slices borrow from the input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Packet<'a> {
    /// First handshake message, initiator -> responder.
    HandshakeInit {
        /// The initiator's session index.
        sender: u32,
        /// The initiator's clock when it sent this (ms since the Unix epoch).
        timestamp_ms: u64,
        /// Noise message 1.
        noise: &'a [u8],
    },
    /// Second handshake message, responder -> initiator.
    HandshakeResp {
        /// The responder's session index.
        sender: u32,
        /// The initiator's session index.
        receiver: u32,
        /// Noise message 2.
        noise: &'a [u8],
    },
    /// Third handshake message, initiator -> responder.
    HandshakeFinal {
        /// The responder's session index.
        receiver: u32,
        /// Noise message 3.
        noise: &'a [u8],
    },
    /// An encrypted frame on an established session.
    Transport {
        /// The receiving side's session index.
        receiver: u32,
        /// Explicit nonce.
        counter: u64,
        /// Ciphertext and tag.
        ciphertext: &'a [u8],
    },
}

fn u32_at(bytes: &[u8], at: usize) -> Result<u32, WireError> {
    let raw = bytes.get(at..at + 4).ok_or(WireError::Truncated)?;
    Ok(u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]))
}

impl<'a> Packet<'a> {
    /// Parses a datagram. Never panics.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, WireError> {
        let (&version, rest) = bytes.split_first().ok_or(WireError::Truncated)?;
        if version != WIRE_VERSION {
            return Err(WireError::Version(version));
        }
        let (&kind, _) = rest.split_first().ok_or(WireError::Truncated)?;
        match kind {
            TYPE_INIT => {
                let raw = bytes.get(6..14).ok_or(WireError::Truncated)?;
                let mut ts = [0u8; 8];
                ts.copy_from_slice(raw);
                Ok(Packet::HandshakeInit {
                    sender: u32_at(bytes, 2)?,
                    timestamp_ms: u64::from_le_bytes(ts),
                    noise: &bytes[INIT_HEADER..],
                })
            }
            TYPE_RESP => Ok(Packet::HandshakeResp {
                sender: u32_at(bytes, 2)?,
                receiver: u32_at(bytes, 6)?,
                noise: bytes.get(10..).ok_or(WireError::Truncated)?,
            }),
            TYPE_FINAL => Ok(Packet::HandshakeFinal {
                receiver: u32_at(bytes, 2)?,
                noise: bytes.get(6..).ok_or(WireError::Truncated)?,
            }),
            TYPE_TRANSPORT => {
                let receiver = u32_at(bytes, 2)?;
                let raw = bytes.get(6..14).ok_or(WireError::Truncated)?;
                let mut counter = [0u8; 8];
                counter.copy_from_slice(raw);
                let ciphertext = &bytes[TRANSPORT_HEADER..];
                if ciphertext.len() < TAG_LEN {
                    return Err(WireError::Truncated);
                }
                Ok(Packet::Transport { receiver, counter: u64::from_le_bytes(counter), ciphertext })
            }
            other => Err(WireError::Type(other)),
        }
    }

    /// Appends the encoded datagram to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.push(WIRE_VERSION);
        match self {
            Packet::HandshakeInit { sender, timestamp_ms, noise } => {
                out.push(TYPE_INIT);
                out.extend_from_slice(&sender.to_le_bytes());
                out.extend_from_slice(&timestamp_ms.to_le_bytes());
                out.extend_from_slice(noise);
            }
            Packet::HandshakeResp { sender, receiver, noise } => {
                out.push(TYPE_RESP);
                out.extend_from_slice(&sender.to_le_bytes());
                out.extend_from_slice(&receiver.to_le_bytes());
                out.extend_from_slice(noise);
            }
            Packet::HandshakeFinal { receiver, noise } => {
                out.push(TYPE_FINAL);
                out.extend_from_slice(&receiver.to_le_bytes());
                out.extend_from_slice(noise);
            }
            Packet::Transport { receiver, counter, ciphertext } => {
                out.push(TYPE_TRANSPORT);
                out.extend_from_slice(&receiver.to_le_bytes());
                out.extend_from_slice(&counter.to_le_bytes());
                out.extend_from_slice(ciphertext);
            }
        }
    }

    /// The encoded datagram.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }
}

/// Writes a transport header for `receiver` / `counter` into the first
/// [`TRANSPORT_HEADER`] bytes of `out`.
pub(crate) fn write_transport_header(out: &mut [u8], receiver: u32, counter: u64) {
    out[0] = WIRE_VERSION;
    out[1] = TYPE_TRANSPORT;
    out[2..6].copy_from_slice(&receiver.to_le_bytes());
    out[6..14].copy_from_slice(&counter.to_le_bytes());
}

/// What travels inside an encrypted transport packet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Frame<'a> {
    /// A probe; answered by a `Pong` echoing `sent_us`.
    Ping {
        /// Probe sequence number.
        seq: u64,
        /// Sender's clock (µs) when sent.
        sent_us: u64,
    },
    /// Answer to a `Ping`.
    Pong {
        /// The probe's sequence number.
        seq: u64,
        /// Echo of the ping's `sent_us`.
        sent_us: u64,
    },
    /// A membership (SWIM) message, postcard-encoded: probes, acks, gossip,
    /// push-pull. Decoded by the membership code.
    Swim(#[serde(borrow, serialize_with = "bytes_field::serialize")] &'a [u8]),
    /// The sender is leaving the cluster on purpose.
    Leave,
    /// A whole application message.
    Message {
        /// Message kind (see [`crate::MessageKind`]).
        kind: u32,
        /// The payload.
        #[serde(borrow, serialize_with = "bytes_field::serialize")]
        payload: &'a [u8],
    },
    /// One piece of a fragmented application message.
    Fragment {
        /// Sender-chosen message id, unique per session.
        msg_id: u32,
        /// Index of this piece.
        index: u32,
        /// Total number of pieces.
        count: u32,
        /// Message kind.
        kind: u32,
        /// The piece.
        #[serde(borrow, serialize_with = "bytes_field::serialize")]
        payload: &'a [u8],
    },
}

/// A postcard output that appends to a `Vec` (whole slices at once; postcard's
/// `io` output writes byte by byte through `io::Write`).
struct AppendTo<'v>(&'v mut Vec<u8>);

impl postcard::ser_flavors::Flavor for AppendTo<'_> {
    type Output = ();

    fn try_push(&mut self, byte: u8) -> postcard::Result<()> {
        self.0.push(byte);
        Ok(())
    }

    fn try_extend(&mut self, bytes: &[u8]) -> postcard::Result<()> {
        self.0.extend_from_slice(bytes);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

/// Byte strings as one length-prefixed block. serde's own impls for `[u8]` and
/// `Vec<u8>` go element by element (one call per byte); postcard writes the
/// same bytes either way (a varint length, then the bytes), so this changes
/// the speed, not the wire format.
pub(crate) mod bytes_field {
    use serde::{Deserializer, Serializer};

    /// `serialize_with` for `&[u8]` and `Vec<u8>` fields.
    pub(crate) fn serialize<S: Serializer>(bytes: &[u8], out: S) -> Result<S::Ok, S::Error> {
        out.serialize_bytes(bytes)
    }

    /// `deserialize_with` for `Vec<u8>` fields (borrowed `&[u8]` fields are
    /// read as one block already).
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(input: D) -> Result<Vec<u8>, D::Error> {
        struct Bytes;
        impl<'de> serde::de::Visitor<'de> for Bytes {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a byte string")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Vec<u8>, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
                while let Some(byte) = seq.next_element()? {
                    out.push(byte);
                }
                Ok(out)
            }
        }
        input.deserialize_byte_buf(Bytes)
    }
}

impl<'a> Frame<'a> {
    /// Decodes a frame. Bounded and never panics; trailing bytes are an error.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, WireError> {
        let (frame, rest) = postcard::take_from_bytes::<Frame<'a>>(bytes)
            .map_err(|e| WireError::Frame(e.to_string()))?;
        if !rest.is_empty() {
            return Err(WireError::Frame(format!("{} trailing bytes", rest.len())));
        }
        Ok(frame)
    }

    /// Appends the encoded frame to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        // Encoding plain data into a growable buffer cannot fail.
        let _ = postcard::serialize_with_flavor(self, AppendTo(out));
    }

    /// Worst-case bytes a `Fragment` frame adds around its payload.
    pub const FRAGMENT_OVERHEAD: usize = 1 + 5 + 5 + 5 + 5 + 5;
    /// Worst-case bytes a `Message` frame adds around its payload.
    pub const MESSAGE_OVERHEAD: usize = 1 + 5 + 5;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_payloads_keep_the_wire_format() {
        // serde's default for a slice is a sequence of u8; postcard writes the
        // same bytes for it as for the byte string the frame now writes.
        #[derive(Serialize)]
        struct AsSequence<'a> {
            kind: u32,
            payload: &'a [u8],
        }
        let payload: Vec<u8> = (0..300).map(|i| i as u8).collect();
        let mut framed = Vec::new();
        Frame::Message { kind: 7, payload: &payload }.encode_into(&mut framed);
        let old = postcard::to_stdvec(&AsSequence { kind: 7, payload: &payload }).unwrap();
        assert_eq!(framed[0], 4, "variant index of Message");
        assert_eq!(framed[1..], old[..]);
        assert_eq!(Frame::decode(&framed).unwrap(), Frame::Message { kind: 7, payload: &payload });
    }

    #[test]
    fn header_round_trips() {
        let packets = [
            Packet::HandshakeInit { sender: 7, timestamp_ms: 1_700_000_000_000, noise: b"abc" },
            Packet::HandshakeResp { sender: 1, receiver: u32::MAX, noise: b"" },
            Packet::HandshakeFinal { receiver: 9, noise: b"xyz" },
            Packet::Transport { receiver: 3, counter: u64::MAX - 1, ciphertext: &[0u8; 16] },
        ];
        for p in packets {
            assert_eq!(Packet::decode(&p.encode()).unwrap(), p);
        }
        assert_eq!(Packet::decode(&[]), Err(WireError::Truncated));
        assert_eq!(Packet::decode(&[1, 1]), Err(WireError::Version(1)));
        assert_eq!(Packet::decode(&[WIRE_VERSION, 9, 0, 0, 0, 0]), Err(WireError::Type(9)));
        assert_eq!(Packet::decode(&[WIRE_VERSION, 4, 0, 0, 0, 0, 1]), Err(WireError::Truncated));
        // An opener without its whole timestamp.
        assert_eq!(Packet::decode(&[WIRE_VERSION, 1, 0, 0, 0, 0, 1, 2]), Err(WireError::Truncated));
    }

    #[test]
    fn frame_overheads_are_upper_bounds() {
        let payload = vec![0u8; 1000];
        let mut out = Vec::new();
        Frame::Fragment {
            msg_id: u32::MAX,
            index: u32::MAX,
            count: u32::MAX,
            kind: u32::MAX,
            payload: &payload,
        }
        .encode_into(&mut out);
        assert!(out.len() <= payload.len() + Frame::FRAGMENT_OVERHEAD);
        out.clear();
        Frame::Message { kind: u32::MAX, payload: &payload }.encode_into(&mut out);
        assert!(out.len() <= payload.len() + Frame::MESSAGE_OVERHEAD);
    }
}
