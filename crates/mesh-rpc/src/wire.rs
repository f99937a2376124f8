//! The RPC wire format: what travels inside one mesh message of kind [`RPC_KIND`].
//!
//! A message is a postcard-encoded [`Header`], followed directly by the body for
//! a [`Header::Request`] and for a [`Header::Response`] whose outcome is
//! [`Outcome::Ok`]; the body is the postcard encoding of the request or response
//! value and runs to the end of the message (the mesh message already carries the
//! length, so there is no second length prefix and no copy of the body into an
//! intermediate buffer). Every other header must end the message.
//!
//! A [`Header::Batch`] carries several complete messages for the same node, each
//! prefixed by its length; endpoints coalesce small messages this way under load
//! so that one datagram (one encryption, one system call) serves many calls.
//!
//! The version lives in the message kind's name (`mesh-rpc/v1`): an incompatible
//! change takes a new kind, so old and new nodes ignore each other's calls instead
//! of misreading them.

use serde::{Deserialize, Serialize};

use crate::error::RpcError;
use mesh::MessageKind;

/// The mesh message kind of every RPC message (requests, responses, cancels).
pub const RPC_KIND: MessageKind = MessageKind::named("mesh-rpc/v1");

/// Longest service name, in bytes.
pub const MAX_SERVICE_NAME: usize = 256;

/// Longest failure message sent, in bytes; longer ones are cut on a character
/// boundary.
pub const MAX_STATUS_MESSAGE: usize = 4096;

/// The part of an RPC message before the body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Header<'a> {
    /// A call. The body is the encoded request.
    Request {
        /// Chosen by the caller, unique among its calls.
        id: u64,
        /// Time the caller will still wait, in microseconds, measured when sent.
        /// The server stops the handler once this much time has passed since it
        /// received the request.
        deadline_us: u64,
        /// The service called.
        service: &'a str,
    },
    /// The answer to the request with the same id. The body (outcome `Ok` only)
    /// is the encoded response.
    Response {
        /// The request's id.
        id: u64,
        /// What happened.
        #[serde(borrow)]
        outcome: Outcome<'a>,
    },
    /// The caller gave up on request `id` (its future was dropped or timed out):
    /// stop the handler. Best effort.
    Cancel {
        /// The request's id.
        id: u64,
    },
    /// Several messages in one: the body is a sequence of complete messages
    /// (never batches themselves), each prefixed by its length as a LEB128 varint.
    /// Read it with [`batch_items`].
    Batch,
}

/// How a call ended, as the server reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome<'a> {
    /// The handler succeeded; the body follows.
    Ok,
    /// The handler failed, panicked, or the request did not decode.
    Failed {
        /// A [`crate::StatusCode`] wire number.
        code: u16,
        /// Detail for people.
        message: &'a str,
    },
    /// The server serves no service of the requested name.
    NoSuchService,
    /// The request, or the handler's response, exceeded the server's limit.
    TooLarge {
        /// The size in bytes.
        size: u64,
        /// The server's limit in bytes.
        max: u64,
    },
}

impl Header<'_> {
    /// Whether a body follows this header.
    pub fn has_body(&self) -> bool {
        matches!(
            self,
            Header::Request { .. } | Header::Response { outcome: Outcome::Ok, .. } | Header::Batch
        )
    }
}

/// Appends `header` and the postcard encoding of `body` to `buf`.
pub fn encode_into<T: Serialize + ?Sized>(
    header: &Header<'_>,
    body: Option<&T>,
    buf: Vec<u8>,
) -> Result<Vec<u8>, RpcError> {
    let buf = postcard::to_extend(header, buf).map_err(|e| encode_error("header", e))?;
    match body {
        Some(body) => postcard::to_extend(body, buf).map_err(|e| encode_error("body", e)),
        None => Ok(buf),
    }
}

/// A message with an already encoded body (used for retries and in tests).
pub fn encode_raw(header: &Header<'_>, body: &[u8]) -> Result<Vec<u8>, RpcError> {
    let mut buf = Vec::with_capacity(24 + body.len());
    buf = postcard::to_extend(header, buf).map_err(|e| encode_error("header", e))?;
    buf.extend_from_slice(body);
    Ok(buf)
}

/// Splits a message into its header and body. Bounded and never panics: the
/// header is a few varints and one borrowed string.
///
/// Fails on a malformed header, a service name that is empty or longer than
/// [`MAX_SERVICE_NAME`], and trailing bytes after a header that has no body.
pub fn decode(bytes: &[u8]) -> Result<(Header<'_>, &[u8]), RpcError> {
    let (header, rest) = postcard::take_from_bytes::<Header<'_>>(bytes)
        .map_err(|e| RpcError::Decode { what: "rpc header", reason: e.to_string() })?;
    if let Header::Request { service, .. } = &header {
        if let Err(reason) = check_service_name(service) {
            return Err(RpcError::Decode { what: "rpc header", reason: reason.into() });
        }
    }
    if !header.has_body() && !rest.is_empty() {
        return Err(RpcError::Decode {
            what: "rpc header",
            reason: format!("{} unexpected bytes after the header", rest.len()),
        });
    }
    Ok((header, rest))
}

/// The messages inside a batch's body (see [`Header::Batch`]). Yields an error,
/// and then nothing more, at the first malformed length.
pub fn batch_items(body: &[u8]) -> BatchItems<'_> {
    BatchItems { rest: body }
}

/// Iterator over a batch's messages; see [`batch_items`].
#[derive(Clone, Debug)]
pub struct BatchItems<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for BatchItems<'a> {
    type Item = Result<&'a [u8], RpcError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let item = read_varint(self.rest).and_then(|(len, used)| {
            let end = used.checked_add(len).filter(|end| *end <= self.rest.len())?;
            Some((&self.rest[used..end], end))
        });
        match item {
            Some((item, end)) => {
                self.rest = &self.rest[end..];
                Some(Ok(item))
            }
            None => {
                let reason = format!("bad item length with {} bytes left", self.rest.len());
                self.rest = &[];
                Some(Err(RpcError::Decode { what: "rpc batch", reason }))
            }
        }
    }
}

/// Appends `message` to a batch body under construction.
pub fn push_batch_item(batch: &mut Vec<u8>, message: &[u8]) {
    write_varint(batch, message.len());
    batch.extend_from_slice(message);
}

/// The start of a batch message: its header.
pub fn batch_header() -> Vec<u8> {
    encode_raw(&Header::Batch, &[]).unwrap_or_default()
}

fn write_varint(out: &mut Vec<u8>, mut n: usize) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// A LEB128 length of at most 5 bytes (lengths below 2^35); the value and the
/// number of bytes read.
fn read_varint(bytes: &[u8]) -> Option<(usize, usize)> {
    let mut value: u64 = 0;
    for (i, byte) in bytes.iter().take(5).enumerate() {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((usize::try_from(value).ok()?, i + 1));
        }
    }
    None
}

/// Whether a message of `len` bytes may join a batch of at most `limit` bytes.
pub(crate) fn batchable(len: usize, limit: usize) -> bool {
    len + 8 <= limit
}

/// Gathers small messages for one node into batches of at most `limit` bytes.
///
/// A lone message is kept as it is (no batch framing), so coalescing costs
/// nothing when there is nothing to coalesce.
#[derive(Debug, Default)]
pub(crate) struct Coalescer {
    state: Gathered,
    limit: usize,
}

#[derive(Debug, Default)]
enum Gathered {
    #[default]
    Empty,
    One(Vec<u8>),
    Many(Vec<u8>),
}

impl Coalescer {
    pub(crate) fn new(limit: usize) -> Self {
        Self { state: Gathered::Empty, limit }
    }

    /// Adds a message. Returns what must be sent right away: the message itself
    /// if it is too big to batch, or the gathered batch it did not fit into.
    pub(crate) fn push(&mut self, message: Vec<u8>) -> Option<Vec<u8>> {
        if !batchable(message.len(), self.limit) {
            return Some(message);
        }
        let room = |len: usize| len + message.len() + 5 <= self.limit;
        match std::mem::take(&mut self.state) {
            Gathered::Empty => {
                self.state = Gathered::One(message);
                None
            }
            Gathered::One(first) if room(first.len() + 8) => {
                let mut batch = batch_header();
                batch.reserve(first.len() + message.len() + 10);
                push_batch_item(&mut batch, &first);
                push_batch_item(&mut batch, &message);
                self.state = Gathered::Many(batch);
                None
            }
            Gathered::Many(mut batch) if room(batch.len()) => {
                push_batch_item(&mut batch, &message);
                self.state = Gathered::Many(batch);
                None
            }
            Gathered::One(full) | Gathered::Many(full) => {
                self.state = Gathered::One(message);
                Some(full)
            }
        }
    }

    /// Takes what is gathered: a lone message, or a batch.
    pub(crate) fn take(&mut self) -> Option<Vec<u8>> {
        match std::mem::take(&mut self.state) {
            Gathered::Empty => None,
            Gathered::One(message) | Gathered::Many(message) => Some(message),
        }
    }
}

/// Checks a service name: 1 to [`MAX_SERVICE_NAME`] bytes.
pub(crate) fn check_service_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        Err("empty")
    } else if name.len() > MAX_SERVICE_NAME {
        Err("longer than 256 bytes")
    } else {
        Ok(())
    }
}

/// `message` cut to at most [`MAX_STATUS_MESSAGE`] bytes on a character boundary.
pub(crate) fn clip_message(message: &str) -> &str {
    if message.len() <= MAX_STATUS_MESSAGE {
        return message;
    }
    let mut end = MAX_STATUS_MESSAGE;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    &message[..end]
}

fn encode_error(what: &'static str, e: postcard::Error) -> RpcError {
    RpcError::Encode { what, reason: e.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_round_trips_with_body() {
        let header = Header::Request { id: 7, deadline_us: 2_000_000, service: "echo" };
        let msg = encode_into(&header, Some(&(1u32, "hi")), Vec::new()).unwrap();
        let (back, body) = decode(&msg).unwrap();
        assert_eq!(back, header);
        assert_eq!(postcard::from_bytes::<(u32, String)>(body).unwrap(), (1, "hi".into()));
    }

    #[test]
    fn trailing_bytes_after_a_cancel_are_refused() {
        let mut msg = encode_raw(&Header::Cancel { id: 1 }, &[]).unwrap();
        assert!(decode(&msg).is_ok());
        msg.push(0);
        assert!(decode(&msg).is_err());
    }

    #[test]
    fn service_names_are_bounded() {
        let long = "x".repeat(MAX_SERVICE_NAME + 1);
        for name in ["", long.as_str()] {
            let msg =
                encode_raw(&Header::Request { id: 1, deadline_us: 1, service: name }, &[]).unwrap();
            assert!(decode(&msg).is_err());
        }
    }

    #[test]
    fn coalescer_keeps_lone_messages_and_batches_the_rest() {
        let msg = |id| encode_raw(&Header::Cancel { id }, &[]).unwrap();
        let mut c = Coalescer::new(64);
        assert!(c.take().is_none());
        assert!(c.push(msg(1)).is_none());
        assert_eq!(c.take().unwrap(), msg(1));
        for id in 0..40 {
            if let Some(full) = c.push(msg(id)) {
                assert!(full.len() <= 64);
                let (header, body) = decode(&full).unwrap();
                assert_eq!(header, Header::Batch);
                assert!(batch_items(body).all(|i| decode(i.unwrap()).is_ok()));
            }
        }
        assert!(c.take().is_some());
        // Too big to batch: sent on its own at once.
        let big = vec![0u8; 100];
        assert_eq!(c.push(big.clone()), Some(big));
    }

    #[test]
    fn batch_lengths_are_bounded() {
        let mut items = batch_items(&[0x85]);
        assert!(items.next().unwrap().is_err());
        assert!(items.next().is_none());
        let mut items = batch_items(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
        assert!(items.next().unwrap().is_err());
        let mut ok = Vec::new();
        push_batch_item(&mut ok, &[1; 300]);
        assert_eq!(batch_items(&ok).next().unwrap().unwrap(), &[1; 300][..]);
    }

    #[test]
    fn clip_respects_char_boundaries() {
        let s = "é".repeat(MAX_STATUS_MESSAGE);
        let clipped = clip_message(&s);
        assert!(clipped.len() <= MAX_STATUS_MESSAGE);
        assert!(clipped.chars().all(|c| c == 'é'));
    }
}
