//! The message API the higher crates build on: best-effort, typed messages to a
//! peer, and subscriptions by message kind.

use bytes::Bytes;
use mesh_auth::NodeId;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use crate::wire::WireError;

/// Identifies a kind of application message (a 32-bit FNV-1a hash of a name).
///
/// Pick a name with a version, e.g. `MessageKind::named("mesh-rpc/v1")`; both
/// sides derive the same number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageKind(pub u32);

impl MessageKind {
    /// The kind for `name` (usable in `const` items).
    pub const fn named(name: &str) -> Self {
        let bytes = name.as_bytes();
        let mut hash: u32 = 0x811c_9dc5;
        let mut i = 0;
        while i < bytes.len() {
            hash ^= bytes[i] as u32;
            hash = hash.wrapping_mul(0x0100_0193);
            i += 1;
        }
        Self(hash)
    }
}

/// A message received from a peer.
#[derive(Clone, Debug)]
pub struct Incoming {
    /// The authenticated sender.
    pub from: NodeId,
    /// The message kind.
    pub kind: MessageKind,
    /// The payload.
    pub payload: Bytes,
}

impl Incoming {
    /// Decodes the payload as postcard. Bounded, never panics.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, WireError> {
        postcard::from_bytes(&self.payload).map_err(|e| WireError::Frame(e.to_string()))
    }
}

/// Messages of one kind, as they arrive. Dropping it unsubscribes.
///
/// The queue is bounded ([`crate::Limits::subscriber_queue`]); when it is full, new
/// messages are dropped and counted in [`crate::MeshMetrics`].
#[derive(Debug)]
pub struct Subscription {
    pub(crate) kind: MessageKind,
    pub(crate) rx: mpsc::Receiver<Incoming>,
}

impl Subscription {
    /// The kind this subscription receives.
    pub fn kind(&self) -> MessageKind {
        self.kind
    }

    /// The next message; `None` once the node has shut down.
    pub async fn recv(&mut self) -> Option<Incoming> {
        self.rx.recv().await
    }

    /// The next message if one is queued.
    pub fn try_recv(&mut self) -> Option<Incoming> {
        self.rx.try_recv().ok()
    }
}
