//! What members say about themselves, signed, and the wire messages that carry
//! it: `SignedAlive` / `SignedLeft` records and their checks, the updates that
//! disseminate membership changes, `SwimMsg`, push-pull digests.

use std::net::SocketAddr;

use mesh_auth::{EntityKeypair, NodeId, PublicKey, Signature};
use serde::{Deserialize, Serialize};

const ALIVE_DOMAIN: &[u8] = b"mesh/swim/alive/v1\0";
const LEFT_DOMAIN: &[u8] = b"mesh/swim/left/v1\0";
/// Longest software version string a record carries.
pub(crate) const MAX_VERSION_LEN: usize = 32;
/// An incarnation is the member's start time (ms since the Unix epoch) plus its
/// refutations: one further ahead of this node's clock than this is refused.
pub(crate) const MAX_INCARNATION_SKEW_MS: u64 = 60_000;

/// What a member's signed record says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AliveBody {
    pub(crate) node: NodeId,
    pub(crate) addr: SocketAddr,
    pub(crate) incarnation: u64,
    pub(crate) flags: u32,
    pub(crate) version: String,
}

/// A member's own statement that it is alive at `addr` with `incarnation`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SignedAlive {
    pub(crate) key: PublicKey,
    pub(crate) body: AliveBody,
    pub(crate) signature: Signature,
}

fn alive_bytes(body: &AliveBody) -> Vec<u8> {
    let mut out = ALIVE_DOMAIN.to_vec();
    out.extend_from_slice(&postcard::to_stdvec(body).unwrap_or_default());
    out
}

pub(super) fn left_bytes(node: NodeId, incarnation: u64) -> Vec<u8> {
    let mut out = LEFT_DOMAIN.to_vec();
    out.extend_from_slice(&node.0.to_le_bytes());
    out.extend_from_slice(&incarnation.to_le_bytes());
    out
}

impl SignedAlive {
    pub(crate) fn sign(body: AliveBody, identity: &EntityKeypair) -> Self {
        let signature = identity.sign(&alive_bytes(&body));
        Self { key: identity.public(), body, signature }
    }

    /// Why the record cannot be believed, if it cannot.
    pub(crate) fn check(&self, now_ms: u64) -> Result<(), Refusal> {
        if self.key.node_id() != self.body.node {
            return Err(Refusal::WrongOwner);
        }
        if self.body.version.len() > MAX_VERSION_LEN
            || !(crate::node::dialable(&self.body.addr)
                || (self.body.addr.ip().is_unspecified() && self.body.addr.port() != 0))
            || self.body.incarnation > now_ms + MAX_INCARNATION_SKEW_MS
        {
            return Err(Refusal::Implausible);
        }
        if !self.key.verify(&alive_bytes(&self.body), &self.signature) {
            return Err(Refusal::BadSignature);
        }
        Ok(())
    }
}

/// A member's own statement that it left at `incarnation`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SignedLeft {
    pub(crate) node: NodeId,
    pub(crate) incarnation: u64,
    pub(crate) signature: Signature,
}

/// One membership change as it is disseminated.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Update {
    Alive(SignedAlive),
    /// `by` is the node whose probe failed: independent suspicions (by
    /// distinct nodes, not the relays of one) shorten the timeout.
    Suspect {
        node: NodeId,
        incarnation: u64,
        by: NodeId,
    },
    Dead {
        node: NodeId,
        incarnation: u64,
    },
    Left(SignedLeft),
}

impl Update {
    pub(super) fn node(&self) -> NodeId {
        match self {
            Update::Alive(a) => a.body.node,
            Update::Suspect { node, .. } | Update::Dead { node, .. } => *node,
            Update::Left(l) => l.node,
        }
    }
}

/// Messages between members (inside a Noise session).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum SwimMsg {
    /// "Are you there?" Answered with `Ack` carrying the same `seq`.
    Probe { seq: u32, sent_us: u64, updates: Vec<Update> },
    /// The answer to a probe; `relayed` when it answers a `ProbeReq`.
    Ack { seq: u32, sent_us: u64, relayed: bool, updates: Vec<Update> },
    /// "Probe `target` for me and tell me."
    ProbeReq { seq: u32, target: NodeId, updates: Vec<Update> },
    /// "I asked `target` for you and heard nothing" (Lifeguard).
    Nack { seq: u32 },
    /// Pending updates, to a few members per gossip round.
    Gossip { updates: Vec<Update> },
    /// Push-pull. `stage` 0: my digest, send me what I lack and yours;
    /// 1: records and my digest, send me what I lack; 2: records only.
    Sync { stage: u8, digest: Vec<DigestEntry>, updates: Vec<Update> },
}

/// One member in a push-pull digest: its incarnation and state rank.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DigestEntry {
    pub(crate) node: NodeId,
    pub(crate) incarnation: u64,
    pub(crate) rank: u8,
}

/// Why a record was refused (counted by the node).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    WrongOwner,
    BadSignature,
    Implausible,
    Full,
    NotAllowed,
}

/// Made-up gossip for tests of what membership refuses (see
/// `MeshHandle::testing_send_forged_members`).
#[cfg(feature = "testing")]
pub(crate) fn testing_forgeries(
    slander: NodeId,
    keys: &[EntityKeypair],
    now_ms: u64,
) -> Vec<Update> {
    let mut out = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let body = AliveBody {
            node: key.node_id(),
            addr: SocketAddr::from(([127, 0, 0, 1], 20_000 + i as u16)),
            incarnation: now_ms,
            flags: 0,
            version: "forged".into(),
        };
        let mut wrong_owner = body.clone();
        wrong_owner.node = NodeId(body.node.0 ^ 1);
        out.push(Update::Alive(SignedAlive::sign(wrong_owner, key)));
        let mut altered = SignedAlive::sign(body.clone(), key);
        altered.body.addr = SocketAddr::from(([10, 9, 9, 9], 9));
        out.push(Update::Alive(altered));
        let mut multicast = body.clone();
        multicast.addr = SocketAddr::from(([224, 0, 0, 1], 9));
        out.push(Update::Alive(SignedAlive::sign(multicast, key)));
        let mut future = body;
        future.incarnation = now_ms + 86_400_000;
        out.push(Update::Alive(SignedAlive::sign(future, key)));
    }
    out.push(Update::Suspect { node: slander, incarnation: u64::MAX - 1, by: slander });
    out.push(Update::Dead { node: slander, incarnation: u64::MAX - 1 });
    out
}
