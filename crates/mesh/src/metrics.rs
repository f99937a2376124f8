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
    pub(crate) fold_bad_signature: AtomicU64,
    pub(crate) fold_wrong_owner: AtomicU64,
    pub(crate) fold_not_member: AtomicU64,
    pub(crate) fold_implausible_stamp: AtomicU64,
    pub(crate) fold_full: AtomicU64,
    pub(crate) admin_unsigned: AtomicU64,
    pub(crate) admin_rate_limited: AtomicU64,
    pub(crate) handshake_replayed: AtomicU64,
    pub(crate) handshake_stale: AtomicU64,
    pub(crate) handshake_over_budget: AtomicU64,
    pub(crate) handshake_undersized: AtomicU64,
    pub(crate) member_bad_signature: AtomicU64,
    pub(crate) member_wrong_owner: AtomicU64,
    pub(crate) member_implausible: AtomicU64,
    pub(crate) member_full: AtomicU64,
    pub(crate) dial_over_budget: AtomicU64,
    pub(crate) sent_membership: AtomicU64,
    pub(crate) sent_fold: AtomicU64,
    pub(crate) sent_handshake: AtomicU64,
    pub(crate) sent_application: AtomicU64,
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
            refused: Refusals {
                fold_bad_signature: get(&self.fold_bad_signature),
                fold_wrong_owner: get(&self.fold_wrong_owner),
                fold_not_member: get(&self.fold_not_member),
                fold_implausible_stamp: get(&self.fold_implausible_stamp),
                fold_full: get(&self.fold_full),
                admin_unsigned: get(&self.admin_unsigned),
                admin_rate_limited: get(&self.admin_rate_limited),
                handshake_replayed: get(&self.handshake_replayed),
                handshake_stale: get(&self.handshake_stale),
                handshake_over_budget: get(&self.handshake_over_budget),
                handshake_undersized: get(&self.handshake_undersized),
                member_bad_signature: get(&self.member_bad_signature),
                member_wrong_owner: get(&self.member_wrong_owner),
                member_implausible: get(&self.member_implausible),
                member_full: get(&self.member_full),
                dial_over_budget: get(&self.dial_over_budget),
            },
            membership: MembershipStats::default(),
            sent: TrafficSplit {
                membership: get(&self.sent_membership),
                fold: get(&self.sent_fold),
                handshake: get(&self.sent_handshake),
                application: get(&self.sent_application),
            },
        }
    }
}

/// Membership figures of one node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MembershipStats {
    /// Members alive, suspect, dead and left in this node's table (itself
    /// not counted).
    pub alive: u64,
    /// See `alive`.
    pub suspect: u64,
    /// See `alive`.
    pub dead: u64,
    /// See `alive`.
    pub left: u64,
    /// Members this node suspected itself (a probe round without an ack).
    pub suspected: u64,
    /// Members this node declared dead itself (its suspicion timed out).
    pub declared_dead: u64,
    /// Times this node refuted a suspicion of itself.
    pub refuted: u64,
    /// A push-pull has shown this node a peer's whole member list and it
    /// holds a record of every member on it: its member list is complete as
    /// of then (what an attaching deck waits for).
    pub synced: bool,
    /// Membership updates waiting to be passed on (each is sent a bounded
    /// number of times): a backlog that stays high means news outruns gossip.
    pub backlog: u64,
    /// Lifeguard's local health multiplier now (0: healthy; up to 8 when this
    /// node misses acks and nacks: its probe timeouts stretch by 1 + this).
    pub local_health: u32,
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
    /// Statements and requests refused at the trust boundary, by reason.
    pub refused: Refusals,
    /// Membership (SWIM) figures.
    pub membership: MembershipStats,
    /// Bytes sent (UDP payload), by what they carried.
    pub sent: TrafficSplit,
}

/// Bytes sent by one node, split by what they carried: what an operator needs to
/// tell the cost of membership from the cost of the fold and of the workload.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrafficSplit {
    /// Probes, acks, gossip, push-pull and goodbyes.
    pub membership: u64,
    /// The snapshot fold: summaries, digests and roots.
    pub fold: u64,
    /// Noise handshakes (before a session exists).
    pub handshake: u64,
    /// Everything else: RPC, blobs, admin, migration, user messages.
    pub application: u64,
}

/// What the trust boundary refused: statements about other nodes without their
/// signature, commands without operator signatures, and pre-authentication work
/// over its budget. Each is dropped and counted, never applied.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Refusals {
    /// Fold summaries whose owner signature did not verify.
    pub fold_bad_signature: u64,
    /// Fold summaries signed by a key that is not their node's.
    pub fold_wrong_owner: u64,
    /// Fold summaries of a node that is not a member here.
    pub fold_not_member: u64,
    /// Fold summaries with an incarnation further ahead than clock skew explains.
    pub fold_implausible_stamp: u64,
    /// Fold summaries of a new node refused because the fold holds its cap of nodes.
    pub fold_full: u64,
    /// Admin envelopes with no valid signature of a registered operator (not written to the ledger).
    pub admin_unsigned: u64,
    /// Admin envelopes refused because their sender was over its budget.
    pub admin_rate_limited: u64,
    /// Handshake openers seen before (replays), refused before any Diffie-Hellman work.
    pub handshake_replayed: u64,
    /// Handshake openers whose timestamp is outside the freshness window.
    pub handshake_stale: u64,
    /// Handshake openers refused by the per-source or global budget, or the pending cap.
    pub handshake_over_budget: u64,
    /// Handshake openers smaller than the answer would be (no amplification).
    pub handshake_undersized: u64,
    /// Member records whose signature did not verify (also signed leaves).
    pub member_bad_signature: u64,
    /// Member records signed by a key that is not their node's.
    pub member_wrong_owner: u64,
    /// Member records with an address nobody can be reached at, an
    /// incarnation too far ahead, or an oversized version string.
    pub member_implausible: u64,
    /// New members refused because the member table is full.
    pub member_full: u64,
    /// Dials refused: too many handshakes or queued frames in flight.
    pub dial_over_budget: u64,
}

impl Refusals {
    /// Sum of all reasons.
    pub fn total(&self) -> u64 {
        self.fold_bad_signature
            + self.fold_wrong_owner
            + self.fold_not_member
            + self.fold_implausible_stamp
            + self.fold_full
            + self.admin_unsigned
            + self.admin_rate_limited
            + self.handshake_replayed
            + self.handshake_stale
            + self.handshake_over_budget
            + self.handshake_undersized
            + self.member_bad_signature
            + self.member_wrong_owner
            + self.member_implausible
            + self.member_full
            + self.dial_over_budget
    }
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
