//! Membership: SWIM with Lifeguard's refinements, as a state machine without
//! I/O. The node feeds it messages and clock ticks; it answers with messages to
//! send and member state changes. Everything travels inside Noise sessions, so
//! the sender of a message is authenticated; what a message says about *other*
//! nodes is bounded by signatures:
//!
//! - A member exists, at an address and incarnation, only through an
//!   [`SignedAlive`] record signed by its own identity key. Nobody else can
//!   invent a member, move one to another address, or raise its incarnation.
//! - A member has left only through its own [`SignedLeft`].
//! - Suspect and Dead claims name an incarnation. A claim is believed only for
//!   the incarnation this node holds the member's signature for; the member
//!   refutes it by signing a higher incarnation. A key holder can therefore
//!   suspect a live member (which refutes within a round or two), never invent,
//!   move or silence one for good.
//!
//! The protocol: each round a node probes one member (randomised round robin).
//! No direct ack within the probe timeout: it asks `k` other members to probe it
//! (`ProbeReq`); they answer with the ack or a nack. No ack by the end of the
//! round: the member is Suspect. Suspicion ends in Dead after a timeout that
//! grows with log n and shrinks with independent confirmations (Lifeguard);
//! the suspect refutes with a higher incarnation. A node's own health (missed
//! acks and nacks, refutations) stretches its probe timeouts (Lifeguard's local
//! health multiplier), so a slow node does not accuse healthy ones.
//!
//! Changes travel as updates piggybacked on probes and acks and in small gossip
//! messages to a few members, each retransmitted about λ·log n times; a
//! periodic push-pull with one random member (digest first, then only the
//! records that differ) repairs what gossip missed.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use mesh_auth::{EntityKeypair, NodeId, PublicKey, Signature};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

const ALIVE_DOMAIN: &[u8] = b"mesh/swim/alive/v1\0";
const LEFT_DOMAIN: &[u8] = b"mesh/swim/left/v1\0";
/// Longest software version string a record carries.
pub(crate) const MAX_VERSION_LEN: usize = 32;
/// Members kept at most (dead and left ones included).
pub(crate) const MAX_MEMBERS: usize = 4096;
/// An incarnation is the member's start time (ms since the Unix epoch) plus its
/// refutations: one further ahead of this node's clock than this is refused.
pub(crate) const MAX_INCARNATION_SKEW_MS: u64 = 60_000;
/// Updates piggybacked on one message take at most this many bytes.
const PIGGYBACK_BYTES: usize = 900;
/// Records per push-pull message, so each fits one datagram (the rest follow
/// in further messages; a lost one costs only its own records).
const SYNC_CHUNK: usize = 5;
/// Retransmissions of an update: λ · ceil(log2(n + 1)).
const RETRANSMIT_MULT: u32 = 4;
/// Members asked to probe for us when a direct probe goes unanswered.
const INDIRECT_PROBES: usize = 5;
/// Members a gossip round sends pending updates to.
const GOSSIP_FANOUT: usize = 3;
/// Local health multiplier ceiling (timeouts stretch up to 1 + this times).
const MAX_LHM: u32 = 8;
/// Independent suspicions that bring the suspicion timeout to its minimum.
const EXPECTED_CONFIRMATIONS: usize = 3;
/// How often a suspector re-tells the suspect, one probe interval apart (at
/// 20 % loss the suspect misses all four with probability 0.2⁴ = 0.16 %).
const RETELL: u8 = 3;
/// How often a node that only heard of a suspicion asks the suspect before it
/// declares it dead itself (a round trip at 20 % loss fails with p = 0.36).
const CHECKS: u32 = 2;

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

fn left_bytes(node: NodeId, incarnation: u64) -> Vec<u8> {
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
    fn node(&self) -> NodeId {
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

/// A member's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MemberState {
    /// Answering probes (directly or through others).
    Alive,
    /// Missed a probe round; Dead unless it refutes in time.
    Suspect,
    /// Suspected for longer than the suspicion timeout.
    Dead,
    /// Left on purpose (its own signed statement).
    Left,
}

impl MemberState {
    fn rank(self) -> u8 {
        match self {
            MemberState::Alive => 0,
            MemberState::Suspect => 1,
            MemberState::Dead => 2,
            MemberState::Left => 3,
        }
    }

    /// `alive`, `suspect`, `dead` or `left`.
    pub fn label(self) -> &'static str {
        match self {
            MemberState::Alive => "alive",
            MemberState::Suspect => "suspect",
            MemberState::Dead => "dead",
            MemberState::Left => "left",
        }
    }
}

/// What this node knows of one member.
#[derive(Clone, Debug)]
pub(crate) struct Member {
    pub(crate) alive: SignedAlive,
    pub(crate) state: MemberState,
    /// When the state last changed here.
    pub(crate) since: Instant,
    left: Option<SignedLeft>,
    suspicion: Option<Suspicion>,
}

impl Member {
    pub(crate) fn incarnation(&self) -> u64 {
        self.alive.body.incarnation
    }

    pub(crate) fn is_live(&self) -> bool {
        matches!(self.state, MemberState::Alive | MemberState::Suspect)
    }
}

#[derive(Clone, Debug)]
struct Suspicion {
    start: Instant,
    confirmations: Vec<NodeId>,
    /// This node suspects itself: it re-tells the suspect (a lost message
    /// must not cost a live node its membership) until [`RETELL`] times.
    retold: u8,
    next_retell: Option<Instant>,
    /// Heard from others only: times the suspect was asked (up to
    /// [`CHECKS`], one grace period each) before this node declares it dead
    /// on its own.
    checked: u32,
}

impl Suspicion {
    fn new(start: Instant, by: NodeId) -> Self {
        Self { start, confirmations: vec![by], retold: 0, next_retell: None, checked: 0 }
    }
}

/// A change of a member's state, for logs and for the node to act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Event {
    pub(crate) node: NodeId,
    pub(crate) addr: SocketAddr,
    pub(crate) from: Option<MemberState>,
    pub(crate) to: MemberState,
}

/// Timing, derived from the node's profile and the cluster size.
#[derive(Clone, Debug)]
pub(crate) struct SwimTiming {
    pub(crate) probe_interval: Duration,
    pub(crate) probe_timeout: Duration,
    /// Suspicion timeout at n <= 10 with enough confirmations.
    pub(crate) suspicion_base: Duration,
    pub(crate) gossip_interval: Duration,
    pub(crate) push_pull_interval: Duration,
    pub(crate) forget_after: Duration,
}

impl SwimTiming {
    pub(crate) fn from_profile(t: &crate::config::TimingProfile) -> Self {
        Self {
            probe_interval: t.probe_interval,
            probe_timeout: t.probe_interval / 2,
            suspicion_base: t
                .unreachable_after
                .saturating_sub(t.probe_interval)
                .max(t.probe_interval),
            gossip_interval: (t.probe_interval / 4).max(Duration::from_millis(20)),
            push_pull_interval: t.gossip_interval * 10,
            forget_after: t.forget_after,
        }
    }
}

struct Probe {
    target: NodeId,
    seq: u32,
    indirect_at: Instant,
    round_end: Instant,
    acked: bool,
    indirect_sent: usize,
    /// Members asked to probe the target for us.
    helpers: Vec<NodeId>,
    /// Helpers that could not reach the target either (their nacks): each is
    /// independent evidence, counted as a confirmation of our suspicion.
    nackers: Vec<NodeId>,
}

struct Relay {
    requester: NodeId,
    requester_seq: u32,
    nack_at: Instant,
}

struct Pending {
    update: Update,
    size: usize,
    sent: u32,
    /// Suspicions, deaths, refutations and goodbyes: sent before joins of
    /// the same count, since a node that misses one may declare a live member
    /// dead (or keep a dead one).
    urgent: bool,
}

/// A small, fast PRNG (splitmix64); seeded from the OS.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub(crate) fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next() % n as u64) as usize }
    }

    /// `n` jittered by up to ±`pct` %.
    pub(crate) fn jitter(&mut self, d: Duration, pct: u64) -> Duration {
        let span = d.as_micros() as u64 * pct / 100;
        if span == 0 {
            return d;
        }
        let off = self.next() % (2 * span + 1);
        Duration::from_micros((d.as_micros() as u64 + off).saturating_sub(span))
    }
}

/// The membership state machine of one node.
pub(crate) struct Swim {
    me: NodeId,
    identity: EntityKeypair,
    own: SignedAlive,
    timing: SwimTiming,
    members: HashMap<NodeId, Member>,
    order: Vec<NodeId>,
    order_pos: usize,
    probe: Option<Probe>,
    next_probe: Option<Instant>,
    next_gossip: Option<Instant>,
    next_push_pull: Option<Instant>,
    next_reconnect: Option<Instant>,
    relays: HashMap<u32, Relay>,
    queue: Vec<Pending>,
    seq: u32,
    lhm: u32,
    rng: Rng,
    events: Vec<Event>,
    /// Members whose direct probe went unanswered (the node reopens sessions).
    direct_failures: Vec<NodeId>,
    /// Records refused, by reason (drained by the node into its counters).
    pub(crate) refused: Vec<Refusal>,
    left: bool,
    stats: crate::metrics::MembershipStats,
    /// Updates were news since the last eager gossip.
    news: bool,
    last_eager: Option<Instant>,
    /// When set, only these keys can be members.
    allow: Option<std::collections::HashSet<PublicKey>>,
    /// Messages produced while applying updates (refutations told directly).
    outbox: Out,
    /// Suspectors already told of the current incarnation.
    told: std::collections::HashSet<NodeId>,
}

/// Lifeguard's suspicion timeout: from `max` down to `min` as independent
/// confirmations arrive; `min` grows with log10 n (half as fast as
/// memberlist's, so a 1,000-node LAN cluster still detects within 10 s).
fn suspicion_timeout(base: Duration, n: usize, confirmations: usize) -> Duration {
    // 1x up to 10 members, 1.5x at 100, 2x at 1,000.
    let scale = (1.0 + (n as f64 / 10.0).log10() / 2.0).max(1.0);
    let min = base.mul_f64(scale);
    let max = min * 3;
    let frac =
        ((confirmations as f64 + 1.0).ln() / (EXPECTED_CONFIRMATIONS as f64 + 1.0).ln()).min(1.0);
    max.saturating_sub((max - min).mul_f64(frac)).max(min)
}

/// Messages to send: (to, message).
pub(crate) type Out = Vec<(NodeId, SwimMsg)>;

impl Swim {
    pub(crate) fn new(
        identity: EntityKeypair,
        own: AliveBody,
        timing: SwimTiming,
        seed: u64,
        allow: Option<std::collections::HashSet<PublicKey>>,
    ) -> Self {
        let own = SignedAlive::sign(own, &identity);
        Self {
            me: own.body.node,
            identity,
            own,
            timing,
            members: HashMap::new(),
            order: Vec::new(),
            order_pos: 0,
            probe: None,
            next_probe: None,
            next_gossip: None,
            next_push_pull: None,
            next_reconnect: None,
            relays: HashMap::new(),
            queue: Vec::new(),
            seq: 0,
            lhm: 0,
            rng: Rng::new(seed),
            events: Vec::new(),
            direct_failures: Vec::new(),
            refused: Vec::new(),
            left: false,
            stats: Default::default(),
            news: false,
            last_eager: None,
            allow,
            outbox: Vec::new(),
            told: std::collections::HashSet::new(),
        }
    }

    #[cfg(test)]
    fn own(&self) -> &SignedAlive {
        &self.own
    }

    pub(crate) fn member(&self, node: NodeId) -> Option<&Member> {
        self.members.get(&node)
    }

    pub(crate) fn members(&self) -> impl Iterator<Item = &Member> {
        self.members.values()
    }

    /// Members not dead or left, excluding this node.
    pub(crate) fn live_count(&self) -> usize {
        self.members.values().filter(|m| m.is_live()).count()
    }

    /// Lifeguard's local health multiplier (0 = healthy).
    #[cfg(test)]
    fn local_health(&self) -> u32 {
        self.lhm
    }

    /// Counts by state, and what this node did itself.
    pub(crate) fn stats(&self) -> crate::metrics::MembershipStats {
        let mut out = self.stats.clone();
        for m in self.members.values() {
            match m.state {
                MemberState::Alive => out.alive += 1,
                MemberState::Suspect => out.suspect += 1,
                MemberState::Dead => out.dead += 1,
                MemberState::Left => out.left += 1,
            }
        }
        out.local_health = self.lhm;
        out.backlog = self.queue.len() as u64;
        out
    }

    pub(crate) fn take_direct_failures(&mut self) -> Vec<NodeId> {
        std::mem::take(&mut self.direct_failures)
    }

    pub(crate) fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    fn n(&self) -> usize {
        self.live_count() + 1
    }

    /// Retransmissions of each update at the current size: λ·⌈log2(n + 1)⌉
    /// (24 at 32 members, 40 at 1,000). Every node that learns an update
    /// passes it on this often to random members, so a given node misses it
    /// with probability about e^(-k) (e^(-0.8 k) at 20 % loss); k must stay
    /// well above ln(n · updates) for no node to miss any (λ·log10 n did
    /// not: 1 boot of 32 nodes in 10 left a node without a record until the
    /// next push-pull). A boot storm of n joins costs O(n log n) per node,
    /// once.
    fn retransmit_limit(&self) -> u32 {
        let n = self.n() as f64;
        RETRANSMIT_MULT * ((n + 1.0).log2().ceil() as u32).max(1)
    }

    /// [`suspicion_timeout`] at this node's cluster size.
    #[cfg(test)]
    fn suspicion_timeout(&self, confirmations: usize) -> Duration {
        suspicion_timeout(self.timing.suspicion_base, self.n(), confirmations)
    }

    fn stretched(&self, d: Duration) -> Duration {
        d * (self.lhm + 1)
    }

    fn lhm_up(&mut self) {
        self.lhm = (self.lhm + 1).min(MAX_LHM);
    }

    fn lhm_down(&mut self) {
        self.lhm = self.lhm.saturating_sub(1);
    }

    fn set_state(&mut self, node: NodeId, to: MemberState, now: Instant) {
        let Some(m) = self.members.get_mut(&node) else { return };
        if m.state == to {
            return;
        }
        let from = m.state;
        m.state = to;
        m.since = now;
        if to != MemberState::Suspect {
            m.suspicion = None;
        }
        self.events.push(Event { node, addr: m.alive.body.addr, from: Some(from), to });
    }

    /// Queues an update for gossip; `urgent` marks an Alive record that
    /// refutes (other kinds are always urgent).
    fn enqueue(&mut self, update: Update, urgent: bool) {
        let node = update.node();
        // One update per member in flight, except that suspicions by distinct
        // nodes travel side by side (each is a confirmation), and that a
        // suspicion or death never displaces the signed record of the same
        // incarnation: a node that holds an older record can apply neither
        // without it (that once cost a refuted node its membership).
        self.queue.retain(|p| {
            if p.update.node() != node {
                return true;
            }
            match (&update, &p.update) {
                (
                    Update::Suspect { incarnation, .. } | Update::Dead { incarnation, .. },
                    Update::Alive(old),
                ) => old.body.incarnation >= *incarnation,
                (
                    Update::Suspect { incarnation: i, by: a, .. },
                    Update::Suspect { incarnation: j, by: b, .. },
                ) => a != b && i == j,
                _ => false,
            }
        });
        let size = postcard::to_stdvec(&update).map_or(PIGGYBACK_BYTES, |b| b.len());
        let urgent = !matches!(update, Update::Alive(_)) || urgent;
        self.queue.push(Pending { update, size, sent: 0, urgent });
    }

    /// Updates to piggyback, fewest-sent first, within the byte budget.
    fn piggyback(&mut self, budget: usize) -> Vec<Update> {
        if self.queue.is_empty() {
            return Vec::new();
        }
        let limit = self.retransmit_limit();
        self.queue.sort_by_key(|p| (p.sent, !p.urgent));
        let mut used = 0;
        let mut out = Vec::new();
        for p in &mut self.queue {
            if used + p.size > budget {
                continue;
            }
            used += p.size;
            p.sent += 1;
            out.push(p.update.clone());
        }
        self.queue.retain(|p| p.sent < limit);
        out
    }

    /// Records a member this node met directly (a session whose peer proved its
    /// key): its record, if it is new here, must still come signed.
    pub(crate) fn has_current(&self, node: NodeId) -> bool {
        self.members.get(&node).is_some_and(|m| m.is_live())
    }

    /// Applies one update; true when it was news (and is passed on).
    pub(crate) fn apply(
        &mut self,
        from: NodeId,
        update: Update,
        now: Instant,
        now_ms: u64,
    ) -> bool {
        match update {
            Update::Alive(record) => self.apply_alive(record, now, now_ms),
            // Who suspects counts, not who passed it on (`from`).
            Update::Suspect { node, incarnation, by } => {
                if node == self.me {
                    self.refute(incarnation, &[by, from]);
                    return false;
                }
                self.apply_suspect(by, node, incarnation, now)
            }
            Update::Dead { node, incarnation } => {
                if node == self.me {
                    self.refute(incarnation, &[from]);
                    return false;
                }
                let Some(m) = self.members.get(&node) else { return false };
                if incarnation != m.incarnation() || !m.is_live() {
                    return false;
                }
                self.set_state(node, MemberState::Dead, now);
                self.enqueue(Update::Dead { node, incarnation }, true);
                true
            }
            Update::Left(left) => {
                if left.node == self.me {
                    return false;
                }
                let Some(m) = self.members.get(&left.node) else { return false };
                if left.incarnation < m.incarnation() || m.state == MemberState::Left {
                    return false;
                }
                if !m.alive.key.verify(&left_bytes(left.node, left.incarnation), &left.signature) {
                    self.refused.push(Refusal::BadSignature);
                    return false;
                }
                let node = left.node;
                if let Some(m) = self.members.get_mut(&node) {
                    m.left = Some(left.clone());
                }
                self.set_state(node, MemberState::Left, now);
                self.enqueue(Update::Left(left), true);
                true
            }
        }
    }

    fn apply_alive(&mut self, record: SignedAlive, now: Instant, now_ms: u64) -> bool {
        let node = record.body.node;
        if node == self.me {
            // Someone holds an older record of ours: nothing to do, ours spreads.
            return false;
        }
        let newer = match self.members.get(&node) {
            None => true,
            Some(m) => record.body.incarnation > m.incarnation(),
        };
        if !newer {
            return false;
        }
        if !self.members.contains_key(&node) && self.members.len() >= MAX_MEMBERS {
            self.refused.push(Refusal::Full);
            return false;
        }
        if self.allow.as_ref().is_some_and(|a| !a.contains(&record.key)) {
            self.refused.push(Refusal::NotAllowed);
            return false;
        }
        if let Err(why) = record.check(now_ms) {
            self.refused.push(why);
            return false;
        }
        let joined = !self.members.contains_key(&node);
        match self.members.get_mut(&node) {
            None => {
                let addr = record.body.addr;
                self.members.insert(
                    node,
                    Member {
                        alive: record.clone(),
                        state: MemberState::Alive,
                        since: now,
                        left: None,
                        suspicion: None,
                    },
                );
                // A new member goes into the probe order at a random place.
                let at = self.rng.below(self.order.len() + 1);
                self.order.insert(at, node);
                self.events.push(Event { node, addr, from: None, to: MemberState::Alive });
            }
            Some(m) => {
                m.alive = record.clone();
                m.left = None;
                self.set_state(node, MemberState::Alive, now);
            }
        }
        self.enqueue(Update::Alive(record), !joined);
        true
    }

    fn apply_suspect(
        &mut self,
        from: NodeId,
        node: NodeId,
        incarnation: u64,
        now: Instant,
    ) -> bool {
        if node == self.me {
            self.refute(incarnation, &[from]);
            return false;
        }
        let Some(m) = self.members.get_mut(&node) else { return false };
        if incarnation != m.incarnation() {
            return false;
        }
        match m.state {
            MemberState::Alive => {
                m.suspicion = Some(Suspicion::new(now, from));
                self.set_state(node, MemberState::Suspect, now);
                self.enqueue(Update::Suspect { node, incarnation, by: from }, true);
                true
            }
            MemberState::Suspect => {
                let s = m.suspicion.get_or_insert(Suspicion::new(now, from));
                // The first suspector plus EXPECTED_CONFIRMATIONS others.
                if s.confirmations.contains(&from) || s.confirmations.len() > EXPECTED_CONFIRMATIONS
                {
                    return false;
                }
                s.confirmations.push(from);
                // A confirmation is news: it shortens everyone's timeout.
                self.enqueue(Update::Suspect { node, incarnation, by: from }, true);
                true
            }
            MemberState::Dead | MemberState::Left => false,
        }
    }

    /// Someone suspects this node (or says it is dead) at `incarnation`: sign a
    /// higher one, and tell `tell` (the suspector, which holds the earliest
    /// timer, and whoever passed it on) at once; the rest hear it by gossip. A
    /// suspicion of an incarnation already refuted is answered once per node.
    fn refute(&mut self, incarnation: u64, tell: &[NodeId]) {
        if self.left {
            return;
        }
        if incarnation >= self.own.body.incarnation {
            let mut body = self.own.body.clone();
            body.incarnation = incarnation + 1;
            self.own = SignedAlive::sign(body, &self.identity);
            self.stats.refuted += 1;
            self.lhm_up();
            self.enqueue(Update::Alive(self.own.clone()), true);
            self.news = true;
            self.told.clear();
        }
        for &to in tell {
            if to != self.me && self.told.len() < 64 && self.told.insert(to) {
                let updates = vec![Update::Alive(self.own.clone())];
                self.outbox.push((to, SwimMsg::Gossip { updates }));
            }
        }
    }

    fn apply_all(&mut self, from: NodeId, mut updates: Vec<Update>, now: Instant, now_ms: u64) {
        // Records first: a suspicion of an incarnation is applied after the
        // record of that incarnation that travels with it.
        updates.sort_by_key(|u| !matches!(u, Update::Alive(_)));
        for u in updates {
            if self.apply(from, u, now, now_ms) {
                self.news = true;
            }
        }
    }

    /// News just arrived: pass it on at once rather than at the next gossip
    /// round (at most every quarter gossip interval, so a burst of news is
    /// paced, not echoed per message).
    pub(crate) fn eager_gossip(
        &mut self,
        now: Instant,
        connected: &dyn Fn(NodeId) -> bool,
        out: &mut Out,
    ) {
        if !std::mem::take(&mut self.news) || self.left {
            return;
        }
        if self
            .last_eager
            .is_some_and(|t| now.saturating_duration_since(t) < self.timing.gossip_interval / 4)
        {
            self.news = true;
            return;
        }
        self.last_eager = Some(now);
        for t in self.random_live(GOSSIP_FANOUT, &[], connected) {
            let updates = self.piggyback(PIGGYBACK_BYTES);
            if updates.is_empty() {
                break;
            }
            out.push((t, SwimMsg::Gossip { updates }));
        }
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// Handles one message from `from` (authenticated by its session).
    pub(crate) fn on_message(
        &mut self,
        from: NodeId,
        msg: SwimMsg,
        now: Instant,
        now_ms: u64,
        out: &mut Out,
    ) {
        self.handle(from, msg, now, now_ms, out);
        out.append(&mut self.outbox);
    }

    fn handle(&mut self, from: NodeId, msg: SwimMsg, now: Instant, now_ms: u64, out: &mut Out) {
        match msg {
            SwimMsg::Probe { seq, sent_us, updates } => {
                self.apply_all(from, updates, now, now_ms);
                let updates = self.piggyback(PIGGYBACK_BYTES);
                out.push((from, SwimMsg::Ack { seq, sent_us, relayed: false, updates }));
            }
            SwimMsg::Ack { seq, updates, .. } => {
                self.apply_all(from, updates, now, now_ms);
                if let Some(relay) = self.relays.remove(&seq) {
                    out.push((
                        relay.requester,
                        SwimMsg::Ack {
                            seq: relay.requester_seq,
                            sent_us: 0,
                            relayed: true,
                            updates: Vec::new(),
                        },
                    ));
                    return;
                }
                if let Some(p) = &mut self.probe
                    && p.seq == seq
                {
                    p.acked = true;
                }
            }
            SwimMsg::ProbeReq { seq, target, updates } => {
                self.apply_all(from, updates, now, now_ms);
                if target == self.me || !self.members.get(&target).is_some_and(Member::is_live) {
                    return;
                }
                if self.relays.len() >= 256 {
                    return;
                }
                let my_seq = self.next_seq();
                let nack_at = now + self.stretched(self.timing.probe_timeout);
                self.relays.insert(my_seq, Relay { requester: from, requester_seq: seq, nack_at });
                out.push((target, SwimMsg::Probe { seq: my_seq, sent_us: 0, updates: Vec::new() }));
            }
            SwimMsg::Nack { seq } => {
                if let Some(p) = &mut self.probe
                    && p.seq == seq
                    && p.helpers.contains(&from)
                    && !p.nackers.contains(&from)
                {
                    p.nackers.push(from);
                }
            }
            SwimMsg::Gossip { updates } => self.apply_all(from, updates, now, now_ms),
            SwimMsg::Sync { stage, digest, updates } => {
                self.apply_all(from, updates, now, now_ms);
                if stage < 2 {
                    self.answer_digest(from, &digest, stage == 0, out);
                }
            }
        }
    }

    /// The records `theirs` lacks or holds older, then (when `with_digest`)
    /// this node's digest.
    fn answer_digest(
        &mut self,
        to: NodeId,
        theirs: &[DigestEntry],
        with_digest: bool,
        out: &mut Out,
    ) {
        let known: HashMap<NodeId, (u64, u8)> =
            theirs.iter().map(|d| (d.node, (d.incarnation, d.rank))).collect();
        // They hold this node suspect or dead (a partition that healed): refute.
        if let Some(&(inc, rank)) = known.get(&self.me)
            && rank > 0
            && rank < MemberState::Left.rank()
        {
            self.refute(inc, &[]);
        }
        let mut records = Vec::new();
        let mine = std::iter::once((self.me, self.own.body.incarnation, 0u8));
        let others =
            self.members.values().map(|m| (m.alive.body.node, m.incarnation(), m.state.rank()));
        for (node, inc, rank) in mine.chain(others) {
            let stale = known.get(&node).is_none_or(|&(i, r)| (i, r) < (inc, rank));
            if stale {
                records.extend(self.full_record(node));
            }
        }
        let digest = if with_digest { self.digest() } else { Vec::new() };
        let mut chunks: Vec<Vec<Update>> =
            records.chunks(SYNC_CHUNK).map(<[Update]>::to_vec).collect();
        let last = chunks.pop().unwrap_or_default();
        for chunk in chunks {
            out.push((to, SwimMsg::Sync { stage: 2, digest: Vec::new(), updates: chunk }));
        }
        if with_digest || !last.is_empty() {
            let stage = if with_digest { 1 } else { 2 };
            out.push((to, SwimMsg::Sync { stage, digest, updates: last }));
        }
    }

    /// A member's record and, when not alive, the update that says so.
    fn full_record(&self, node: NodeId) -> Vec<Update> {
        if node == self.me {
            return vec![Update::Alive(self.own.clone())];
        }
        let Some(m) = self.members.get(&node) else { return Vec::new() };
        let inc = m.incarnation();
        let mut out = vec![Update::Alive(m.alive.clone())];
        match m.state {
            MemberState::Alive => {}
            MemberState::Suspect => {
                let by = m.suspicion.as_ref().and_then(|s| s.confirmations.first().copied());
                out.push(Update::Suspect { node, incarnation: inc, by: by.unwrap_or(self.me) });
            }
            MemberState::Dead => out.push(Update::Dead { node, incarnation: inc }),
            MemberState::Left => out.extend(m.left.clone().map(Update::Left)),
        }
        out
    }

    pub(crate) fn digest(&self) -> Vec<DigestEntry> {
        std::iter::once(DigestEntry {
            node: self.me,
            incarnation: self.own.body.incarnation,
            rank: 0,
        })
        .chain(self.members.values().map(|m| DigestEntry {
            node: m.alive.body.node,
            incarnation: m.incarnation(),
            rank: m.state.rank(),
        }))
        .collect()
    }

    /// Starts a push-pull with `to` (a seed, or a member just met).
    pub(crate) fn sync_with(&mut self, to: NodeId, out: &mut Out) {
        out.push((
            to,
            SwimMsg::Sync {
                stage: 0,
                digest: self.digest(),
                updates: vec![Update::Alive(self.own.clone())],
            },
        ));
    }

    fn random_live(
        &mut self,
        count: usize,
        except: &[NodeId],
        prefer: &dyn Fn(NodeId) -> bool,
    ) -> Vec<NodeId> {
        let mut live: Vec<NodeId> = self
            .members
            .values()
            .filter(|m| m.is_live() && !except.contains(&m.alive.body.node))
            .map(|m| m.alive.body.node)
            .collect();
        live.sort_unstable();
        // Members we already have a session with first: no handshake needed.
        let (mut near, mut far): (Vec<NodeId>, Vec<NodeId>) =
            live.into_iter().partition(|n| prefer(*n));
        let mut out = Vec::new();
        for pool in [&mut near, &mut far] {
            while out.len() < count && !pool.is_empty() {
                let i = self.rng.below(pool.len());
                out.push(pool.swap_remove(i));
            }
        }
        out
    }

    fn next_target(&mut self) -> Option<NodeId> {
        for _ in 0..=self.order.len() {
            if self.order_pos >= self.order.len() {
                self.order.retain(|n| self.members.contains_key(n));
                // Fisher-Yates: a fresh random order each pass.
                for i in (1..self.order.len()).rev() {
                    let j = self.rng.below(i + 1);
                    self.order.swap(i, j);
                }
                self.order_pos = 0;
                if self.order.is_empty() {
                    return None;
                }
            }
            let node = self.order[self.order_pos];
            self.order_pos += 1;
            if self.members.get(&node).is_some_and(Member::is_live) {
                return Some(node);
            }
        }
        None
    }

    /// Runs timers: probe rounds, indirect probes, suspicion timeouts, gossip,
    /// push-pull, forgetting. `connected` says which members have a session.
    pub(crate) fn tick(
        &mut self,
        now: Instant,
        now_us: u64,
        connected: &dyn Fn(NodeId) -> bool,
        out: &mut Out,
    ) {
        if self.left {
            return;
        }
        self.retell_suspects(now, out);
        // The probe in flight.
        if let Some(p) = &self.probe {
            let target = p.target;
            if !p.acked && p.indirect_sent == 0 && now >= p.indirect_at {
                let seq = p.seq;
                self.direct_failures.push(target);
                let helpers = self.random_live(INDIRECT_PROBES, &[target], connected);
                let updates = self.piggyback(PIGGYBACK_BYTES / 2);
                for h in &helpers {
                    out.push((*h, SwimMsg::ProbeReq { seq, target, updates: updates.clone() }));
                }
                // And the target once more directly: at 20 % loss a lone
                // ping-ack round trip fails 36 % of the time, two 13 %.
                out.push((target, SwimMsg::Probe { seq, sent_us: now_us, updates: Vec::new() }));
                if let Some(p) = &mut self.probe {
                    p.indirect_sent = helpers.len().max(1);
                    p.helpers = helpers;
                }
            }
        }
        if self.probe.as_ref().is_some_and(|p| now >= p.round_end)
            && let Some(Probe { target, acked, indirect_sent, nackers, .. }) = self.probe.take()
        {
            let nacks = nackers.len();
            if acked {
                self.lhm_down();
            } else {
                // Missing nacks mean our own links are the problem (Lifeguard).
                self.lhm_up();
                if nacks + 1 < indirect_sent {
                    self.lhm_up();
                }
                if let Some(m) = self.members.get(&target)
                    && m.is_live()
                {
                    let incarnation = m.incarnation();
                    let me = self.me;
                    self.stats.suspected += 1;
                    self.apply_suspect(me, target, incarnation, now);
                    // Helpers that could not reach it either confirm (locally:
                    // their word is not passed on as their suspicion).
                    if let Some(s) =
                        self.members.get_mut(&target).and_then(|m| m.suspicion.as_mut())
                    {
                        for h in nackers {
                            if s.confirmations.len() > EXPECTED_CONFIRMATIONS {
                                break;
                            }
                            if !s.confirmations.contains(&h) {
                                s.confirmations.push(h);
                            }
                        }
                    }
                    // Tell the suspect itself (Lifeguard), so it can refute
                    // before the timeout instead of hearing it by chance.
                    let update = Update::Suspect { node: target, incarnation, by: me };
                    out.push((target, SwimMsg::Gossip { updates: vec![update] }));
                }
            }
        }
        if self.probe.is_none() && self.next_probe.is_none_or(|t| now >= t) {
            let round = self.stretched(self.timing.probe_interval);
            self.next_probe = Some(now + self.rng.jitter(round, 10));
            if let Some(target) = self.next_target() {
                let seq = self.next_seq();
                let updates = self.piggyback(PIGGYBACK_BYTES);
                out.push((target, SwimMsg::Probe { seq, sent_us: now_us, updates }));
                self.probe = Some(Probe {
                    target,
                    seq,
                    indirect_at: now + self.stretched(self.timing.probe_timeout),
                    round_end: now + round,
                    acked: false,
                    indirect_sent: 0,
                    helpers: Vec::new(),
                    nackers: Vec::new(),
                });
            }
        }
        // Relayed probes that got no answer: nack the requester.
        let mut nacks = Vec::new();
        self.relays.retain(|_, r| {
            if now >= r.nack_at {
                nacks.push((r.requester, SwimMsg::Nack { seq: r.requester_seq }));
                false
            } else {
                true
            }
        });
        out.extend(nacks);
        // Suspicions that ran out. A node that only heard of the suspicion
        // (it is not a suspector itself) first asks the suspect: it may
        // have missed the refutation (each gossip reaches a given node with
        // high probability, not certainty), and the suspect answers it
        // directly. A crashed node's death is still declared by its
        // suspectors, and their Dead spreads without waiting for this.
        let me = self.me;
        let grace = self.timing.probe_interval;
        let mut expired: Vec<(NodeId, u64)> = Vec::new();
        let mut checks: Vec<(NodeId, Update)> = Vec::new();
        let n = self.n();
        for m in self.members.values_mut() {
            if m.state != MemberState::Suspect {
                continue;
            }
            let node = m.alive.body.node;
            let incarnation = m.alive.body.incarnation;
            let Some(s) = m.suspicion.as_mut() else { continue };
            let timeout = suspicion_timeout(
                self.timing.suspicion_base,
                n,
                s.confirmations.len().saturating_sub(1),
            ) + grace * s.checked;
            if now.saturating_duration_since(s.start) < timeout {
                continue;
            }
            if s.checked < CHECKS && !s.confirmations.contains(&me) {
                s.checked += 1;
                let by = s.confirmations.first().copied().unwrap_or(me);
                checks.push((node, Update::Suspect { node, incarnation, by }));
                continue;
            }
            expired.push((node, incarnation));
        }
        for (node, update) in checks {
            out.push((node, SwimMsg::Gossip { updates: vec![update] }));
        }
        for (node, incarnation) in expired {
            self.stats.declared_dead += 1;
            self.set_state(node, MemberState::Dead, now);
            self.enqueue(Update::Dead { node, incarnation }, true);
            // If it lives after all, it refutes.
            out.push((node, SwimMsg::Gossip { updates: vec![Update::Dead { node, incarnation }] }));
        }
        // Gossip pending updates to a few members.
        if self.next_gossip.is_none_or(|t| now >= t) {
            self.next_gossip = Some(now + self.rng.jitter(self.timing.gossip_interval, 20));
            if !self.queue.is_empty() {
                let targets = self.random_live(GOSSIP_FANOUT, &[], connected);
                for t in targets {
                    let updates = self.piggyback(PIGGYBACK_BYTES);
                    if updates.is_empty() {
                        break;
                    }
                    out.push((t, SwimMsg::Gossip { updates }));
                }
            }
        }
        // Push-pull with one random member, less often in big clusters.
        if self.next_push_pull.is_none_or(|t| now >= t) {
            let scale = ((self.n() as f64).log2() - 4.0).max(1.0);
            let every = self.timing.push_pull_interval.mul_f64(scale);
            let first = self.next_push_pull.is_none();
            self.next_push_pull = Some(now + self.rng.jitter(every, 20));
            if !first && let Some(t) = self.random_live(1, &[], &|_| false).pop() {
                self.sync_with(t, out);
            }
        }
        // A dead member may only have been cut off (a partition): now and then
        // one is offered a push-pull. If it answers, it learns it was thought
        // dead and refutes; a really dead one costs a handshake opener.
        if self.next_reconnect.is_none_or(|t| now >= t) {
            self.next_reconnect = Some(now + self.rng.jitter(self.timing.probe_interval * 5, 20));
            let dead: Vec<NodeId> = self
                .members
                .values()
                .filter(|m| m.state == MemberState::Dead)
                .map(|m| m.alive.body.node)
                .collect();
            if !dead.is_empty() {
                let t = dead[self.rng.below(dead.len())];
                self.sync_with(t, out);
            }
        }
        // Dead and left members are listed until forgotten.
        let forget = self.timing.forget_after;
        let before = self.members.len();
        self.members.retain(|_, m| m.is_live() || now.saturating_duration_since(m.since) < forget);
        if self.members.len() != before {
            let members = &self.members;
            self.order.retain(|n| members.contains_key(n));
        }
    }

    /// Suspicions this node raised itself, still open: the suspect is told
    /// again each probe interval (up to [`RETELL`] times) so that one lost
    /// message does not keep a live node from refuting.
    fn retell_suspects(&mut self, now: Instant, out: &mut Out) {
        let me = self.me;
        let every = self.timing.probe_interval;
        for m in self.members.values_mut() {
            if m.state != MemberState::Suspect {
                continue;
            }
            let incarnation = m.alive.body.incarnation;
            let node = m.alive.body.node;
            let Some(s) = m.suspicion.as_mut() else { continue };
            if s.retold >= RETELL || !s.confirmations.contains(&me) {
                continue;
            }
            match s.next_retell {
                None => s.next_retell = Some(now + every),
                Some(t) if now >= t => {
                    s.retold += 1;
                    s.next_retell = Some(now + every);
                    let update = Update::Suspect { node, incarnation, by: me };
                    out.push((node, SwimMsg::Gossip { updates: vec![update] }));
                }
                Some(_) => {}
            }
        }
    }

    /// Leaves: the signed statement, to send to a few members.
    pub(crate) fn leave(&mut self, out: &mut Out) {
        if self.left {
            return;
        }
        let incarnation = self.own.body.incarnation;
        let signature = self.identity.sign(&left_bytes(self.me, incarnation));
        let update = Update::Left(SignedLeft { node: self.me, incarnation, signature });
        let targets = self.random_live(8, &[], &|_| true);
        for t in targets {
            out.push((t, SwimMsg::Gossip { updates: vec![update.clone()] }));
        }
        self.left = true;
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn node(seed: u8) -> (EntityKeypair, AliveBody) {
        let kp = EntityKeypair::from_seed(&[seed; 32]);
        let body = AliveBody {
            node: kp.node_id(),
            addr: format!("127.0.0.1:{}", 4000 + seed as u16).parse().unwrap(),
            incarnation: 1_000,
            flags: 0,
            version: "test".into(),
        };
        (kp, body)
    }

    fn timing() -> SwimTiming {
        SwimTiming::from_profile(&crate::config::TimingProfile::loopback())
    }

    #[test]
    fn forged_and_moved_records_are_refused() {
        let (a, body_a) = node(1);
        let (b, body_b) = node(2);
        let mut swim = Swim::new(a, body_a, timing(), 1, None);
        let now = Instant::now();
        let good = SignedAlive::sign(body_b.clone(), &b);
        // Moved to another address without b's signature.
        let mut moved = good.clone();
        moved.body.addr = "10.0.0.9:1".parse().unwrap();
        assert!(!swim.apply(NodeId(9), Update::Alive(moved), now, 2_000));
        assert_eq!(swim.refused, vec![Refusal::BadSignature]);
        assert!(swim.apply(NodeId(9), Update::Alive(good), now, 2_000));
        // A suspicion for an incarnation b never signed is ignored.
        assert!(!swim.apply(
            NodeId(9),
            Update::Suspect { node: b.node_id(), incarnation: 5_000, by: NodeId(9) },
            now,
            2_000
        ));
        assert_eq!(swim.member(b.node_id()).unwrap().state, MemberState::Alive);
        assert!(swim.apply(
            NodeId(9),
            Update::Suspect { node: b.node_id(), incarnation: 1_000, by: NodeId(9) },
            now,
            2_000
        ));
        assert_eq!(swim.member(b.node_id()).unwrap().state, MemberState::Suspect);
    }

    #[test]
    fn a_suspected_node_refutes_with_a_higher_incarnation() {
        let (a, body_a) = node(1);
        let me = a.node_id();
        let mut swim = Swim::new(a, body_a, timing(), 1, None);
        let now = Instant::now();
        swim.apply(
            NodeId(9),
            Update::Suspect { node: me, incarnation: 1_000, by: NodeId(9) },
            now,
            2_000,
        );
        assert_eq!(swim.own().body.incarnation, 1_001);
        assert_eq!(swim.local_health(), 1);
        assert!(swim.queue.iter().any(|p| p.update == Update::Alive(swim.own().clone())));
    }

    #[test]
    fn a_refutation_is_told_to_the_suspector_and_the_relay_at_once() {
        let (a, body_a) = node(1);
        let me = a.node_id();
        let mut swim = Swim::new(a, body_a, timing(), 1, None);
        let mut out = Vec::new();
        let suspicion = Update::Suspect { node: me, incarnation: 1_000, by: NodeId(9) };
        let gossip = SwimMsg::Gossip { updates: vec![suspicion] };
        swim.on_message(NodeId(7), gossip.clone(), Instant::now(), 2_000, &mut out);
        let refutation = Update::Alive(swim.own().clone());
        for to in [NodeId(9), NodeId(7)] {
            assert!(
                out.iter().any(|(t, m)| *t == to
                    && matches!(m, SwimMsg::Gossip { updates } if updates == std::slice::from_ref(&refutation))),
                "{to:?} is told: {out:?}"
            );
        }
        // The same stale suspicion again is not answered again.
        out.clear();
        swim.on_message(NodeId(7), gossip, Instant::now(), 2_000, &mut out);
        assert!(out.is_empty(), "{out:?}");
    }

    #[test]
    fn a_suspicion_never_displaces_the_record_it_is_about() {
        let (a, body_a) = node(1);
        let (b, body_b) = node(2);
        let mut swim = Swim::new(a, body_a, timing(), 1, None);
        let now = Instant::now();
        let record = Update::Alive(SignedAlive::sign(body_b, &b));
        assert!(swim.apply(NodeId(9), record.clone(), now, 2_000));
        let suspicion = Update::Suspect { node: b.node_id(), incarnation: 1_000, by: NodeId(9) };
        assert!(swim.apply(NodeId(9), suspicion.clone(), now, 2_000));
        // Both travel: a node holding an older record of b needs the record
        // to apply the suspicion (and, later, its refutation).
        assert!(swim.queue.iter().any(|p| p.update == record));
        assert!(swim.queue.iter().any(|p| p.update == suspicion && p.urgent));
    }

    #[test]
    fn a_node_that_only_heard_a_suspicion_asks_the_suspect_before_declaring_it_dead() {
        let (a, body_a) = node(1);
        let (b, body_b) = node(2);
        let suspect = b.node_id();
        let mut swim = Swim::new(a, body_a, timing(), 1, None);
        let t0 = Instant::now();
        swim.apply(NodeId(9), Update::Alive(SignedAlive::sign(body_b, &b)), t0, 2_000);
        swim.apply(
            NodeId(9),
            Update::Suspect { node: suspect, incarnation: 1_000, by: NodeId(9) },
            t0,
            2_000,
        );
        let timeout = swim.suspicion_timeout(0);
        let grace = swim.timing.probe_interval;
        let checked = |swim: &Swim| {
            swim.member(suspect).and_then(|m| m.suspicion.as_ref()).map_or(0, |s| s.checked)
        };
        // This node's own probes of the suspect are answered (it must not
        // become a suspector itself): tick in small steps, acking each probe.
        let step = swim.timing.probe_interval / 10;
        let tick_to = |swim: &mut Swim, until: Instant, mut at: Instant| -> (Instant, Out) {
            let mut all = Vec::new();
            while at < until {
                at += step;
                let mut out = Vec::new();
                swim.tick(at, 0, &|_| true, &mut out);
                for (_, m) in &out {
                    if let SwimMsg::Probe { seq, .. } = m {
                        let ack =
                            SwimMsg::Ack { seq: *seq, sent_us: 0, relayed: false, updates: vec![] };
                        swim.on_message(suspect, ack, at, 2_000, &mut Vec::new());
                    }
                }
                all.extend(out);
            }
            (at, all)
        };
        let (mut at, _) = tick_to(&mut swim, t0 + timeout - step, t0);
        assert_eq!(checked(&swim), 0, "not asked before the timeout");
        for round in 1..=CHECKS {
            let (next, out) = tick_to(&mut swim, at + grace, at);
            at = next;
            assert_eq!(checked(&swim), round);
            assert!(out.iter().any(|(t, _)| *t == suspect));
            assert_eq!(swim.member(suspect).unwrap().state, MemberState::Suspect);
        }
        tick_to(&mut swim, at + grace * 2, at);
        assert_eq!(swim.member(suspect).unwrap().state, MemberState::Dead);
        assert_eq!(swim.stats().declared_dead, 1);
    }

    #[test]
    fn suspicion_timeout_shrinks_with_confirmations() {
        let (a, body_a) = node(1);
        let swim = Swim::new(a, body_a, timing(), 1, None);
        let t0 = swim.suspicion_timeout(0);
        let t3 = swim.suspicion_timeout(3);
        assert!(t3 < t0, "{t3:?} < {t0:?}");
        assert_eq!(t0, t3 * 3);
    }
}
