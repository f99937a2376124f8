//! Counters a user can read: traffic, handshakes and drops by reason.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Live counters (atomics, updated on the hot path).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) datagrams_in: AtomicU64,
    pub(crate) datagrams_out: AtomicU64,
    pub(crate) bytes_in: AtomicU64,
    pub(crate) bytes_out: AtomicU64,
    pub(crate) handshakes_ok: AtomicU64,
    pub(crate) handshakes_failed: AtomicU64,
    pub(crate) not_authenticated: AtomicU64,
    pub(crate) replay: AtomicU64,
    pub(crate) malformed: AtomicU64,
    pub(crate) too_large: AtomicU64,
    pub(crate) unknown_session: AtomicU64,
    pub(crate) send_failed: AtomicU64,
    pub(crate) subscriber_full: AtomicU64,
    pub(crate) no_subscriber: AtomicU64,
    pub(crate) reassembly_drops: AtomicU64,
    pub(crate) messages_in: AtomicU64,
    pub(crate) messages_out: AtomicU64,
}

impl Counters {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }

    pub(crate) fn snapshot(&self) -> MeshMetrics {
        let get = |c: &AtomicU64| c.load(Relaxed);
        MeshMetrics {
            datagrams_in: get(&self.datagrams_in),
            datagrams_out: get(&self.datagrams_out),
            bytes_in: get(&self.bytes_in),
            bytes_out: get(&self.bytes_out),
            handshakes_ok: get(&self.handshakes_ok),
            handshakes_failed: get(&self.handshakes_failed),
            dropped: DropCounts {
                not_authenticated: get(&self.not_authenticated),
                replay: get(&self.replay),
                malformed: get(&self.malformed),
                too_large: get(&self.too_large),
                unknown_session: get(&self.unknown_session),
                send_failed: get(&self.send_failed),
                subscriber_full: get(&self.subscriber_full),
                no_subscriber: get(&self.no_subscriber),
            },
            reassembly_drops: get(&self.reassembly_drops),
            messages_in: get(&self.messages_in),
            messages_out: get(&self.messages_out),
        }
    }
}

/// A copy of a node's counters at one instant.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MeshMetrics {
    /// Datagrams received.
    pub datagrams_in: u64,
    /// Datagrams sent.
    pub datagrams_out: u64,
    /// Bytes received (UDP payload).
    pub bytes_in: u64,
    /// Bytes sent (UDP payload).
    pub bytes_out: u64,
    /// Handshakes completed.
    pub handshakes_ok: u64,
    /// Handshakes that failed (bad identity proof, not allowed, timed out).
    pub handshakes_failed: u64,
    /// Datagrams and messages dropped, by reason.
    pub dropped: DropCounts,
    /// Fragments dropped by the reassembler (caps, inconsistency, timeout).
    pub reassembly_drops: u64,
    /// Application messages delivered to subscribers.
    pub messages_in: u64,
    /// Application messages sent.
    pub messages_out: u64,
}

/// Drop counters by reason.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DropCounts {
    /// Failed authentication: wrong cluster key, forged or corrupted packets.
    pub not_authenticated: u64,
    /// A nonce seen before or too old for the replay window.
    pub replay: u64,
    /// Bytes that do not parse.
    pub malformed: u64,
    /// Datagrams or messages above the limits.
    pub too_large: u64,
    /// Packets for a session this node does not have.
    pub unknown_session: u64,
    /// Datagrams the socket refused to send.
    pub send_failed: u64,
    /// Messages dropped because a subscriber's queue was full.
    pub subscriber_full: u64,
    /// Messages of a kind nobody subscribed to.
    pub no_subscriber: u64,
}

impl DropCounts {
    /// Sum of all reasons.
    pub fn total(&self) -> u64 {
        self.not_authenticated
            + self.replay
            + self.malformed
            + self.too_large
            + self.unknown_session
            + self.send_failed
            + self.subscriber_full
            + self.no_subscriber
    }
}
