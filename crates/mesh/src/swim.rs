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

use mesh_auth::{EntityKeypair, NodeId, PublicKey};
use tokio::time::Instant;

mod apply;
mod gossip;
mod pick;
mod record;
mod rng;
mod sync;
mod timing;

use record::left_bytes;
#[cfg(feature = "testing")]
pub(crate) use record::testing_forgeries;
pub(crate) use record::{
    AliveBody, DigestEntry, Refusal, SignedAlive, SignedLeft, SwimMsg, Update,
};
pub(crate) use rng::Rng;
pub(crate) use timing::SwimTiming;
use timing::suspicion_timeout;

/// Members kept at most (dead and left ones included).
pub(crate) const MAX_MEMBERS: usize = 4096;
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

/// The membership state machine of one node.
pub(crate) struct Swim {
    me: NodeId,
    identity: EntityKeypair,
    own: SignedAlive,
    timing: SwimTiming,
    members: HashMap<NodeId, Member>,
    /// How many of `members` are live (alive or suspect), kept as states
    /// change so the cluster size costs nothing to read.
    live: usize,
    /// The members in the Suspect state, so timers need not scan the table.
    suspects: std::collections::BTreeSet<NodeId>,
    /// False while a joiner applies the member list a push-pull handed it:
    /// those updates are not queued for gossip (see `SwimMsg::Sync`).
    spreading: bool,
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
    /// The members a peer listed in its answer to our push-pull offer, until
    /// this node holds a record of each; then `synced` is set.
    sync_pending: Option<Vec<NodeId>>,
    synced: bool,
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
            live: 0,
            suspects: std::collections::BTreeSet::new(),
            spreading: true,
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
            sync_pending: None,
            synced: false,
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
        debug_assert_eq!(self.live, self.members.values().filter(|m| m.is_live()).count());
        self.live
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
        out.synced = self.synced;
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
        let was_live = m.is_live();
        m.state = to;
        m.since = now;
        if to != MemberState::Suspect {
            m.suspicion = None;
        }
        let (is_live, addr) = (m.is_live(), m.alive.body.addr);
        if to == MemberState::Suspect {
            self.suspects.insert(node);
        } else {
            self.suspects.remove(&node);
        }
        match (was_live, is_live) {
            (true, false) => self.live -= 1,
            (false, true) => self.live += 1,
            _ => {}
        }
        self.events.push(Event { node, addr, from: Some(from), to });
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
                // A joiner takes in the member list it is handed without
                // passing each record on: the members already have them, and
                // n joiners re-gossiping n records each was a boot storm
                // (minutes of backlog at 512). Once synced, what a push-pull
                // teaches (a healed partition) is spread as news.
                self.spreading = self.synced;
                self.apply_all(from, updates, now, now_ms);
                self.spreading = true;
                if stage == 1 && !self.synced {
                    self.sync_pending = Some(digest.iter().map(|d| d.node).collect());
                }
                if stage < 2 {
                    self.answer_digest(from, &digest, stage == 0, out);
                }
                self.check_synced();
            }
        }
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
        self.check_synced();
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
        for node in &self.suspects {
            let Some(m) = self.members.get_mut(node) else { continue };
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
        for node in &self.suspects {
            let Some(m) = self.members.get_mut(node) else { continue };
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

#[cfg(test)]
mod tests;
