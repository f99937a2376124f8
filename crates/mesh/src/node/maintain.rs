//! Lock order: `routes` before `swim` before `state`; never the other way.
//!
//! The maintenance tick and the membership glue: SWIM timers, sending SWIM
//! messages (opening sessions on demand), member state changes, handshake
//! timeouts, idle sessions, seeds, and the `peers()` view.

use super::*;
use crate::swim::{Event, Member, MemberState, Refusal};

/// Sessions kept open at most: past this the least recently heard ones close.
const MAX_OPEN_SESSIONS: usize = 1024;
/// A session nothing arrived on for this many probe rounds is closed.
const SESSION_IDLE_ROUNDS: u32 = 600;
/// How often the O(n) sweep over sessions and peers runs.
const SWEEP_EVERY: Duration = Duration::from_secs(1);
/// Bytes of frames queued for one member while its session is being opened.
const DIAL_QUEUE_BYTES: usize = 256 * 1024;
/// Members being dialled at once, at most.
const MAX_DIALING: usize = 256;

/// What waits for a session being opened.
enum Waiting {
    /// An encoded frame, sent once the session is up.
    Frame(Vec<u8>),
    /// A sender to tell (true: the session is up).
    Sender(tokio::sync::oneshot::Sender<bool>),
}

/// Logs a member's change of state (an operator reading the journal sees what
/// the deck shows): suspect and unreachable at warn, the rest at info.
fn log_event(e: &Event) {
    let (node, addr) = (e.node, e.addr);
    match (e.from, e.to) {
        (None, MemberState::Alive) => tracing::info!(%node, %addr, "member joined"),
        (None, _) => {}
        (Some(MemberState::Dead | MemberState::Left), MemberState::Alive) => {
            tracing::info!(%node, %addr, "member rejoined");
        }
        (Some(_), MemberState::Alive) => {
            tracing::info!(%node, %addr, was = "suspect", "member healthy again");
        }
        (Some(_), MemberState::Suspect) => {
            tracing::warn!(%node, %addr, "member suspect (missed a probe round)");
        }
        (Some(_), MemberState::Dead) => {
            tracing::warn!(%node, %addr, reason = "no answer to direct or indirect probes", "member unreachable");
        }
        (Some(_), MemberState::Left) => tracing::info!(%node, %addr, "member left the cluster"),
    }
}

impl Inner {
    // ----- reading state -----

    /// A member's health: its SWIM state, and Degraded on a high RTT.
    fn health_of(&self, member: &Member, peer: Option<&Peer>) -> Health {
        let timing = &self.config.timing;
        match member.state {
            MemberState::Left => Health::Unreachable { reason: "left the cluster".into() },
            MemberState::Dead => {
                Health::Unreachable { reason: "no answer to direct or indirect probes".into() }
            }
            MemberState::Suspect => {
                Health::Degraded { reason: "suspect: missed a probe round".into() }
            }
            MemberState::Alive => {
                let rtt = peer.map(|p| &p.rtt);
                if let Some(rtt) = rtt
                    && rtt.ewma().is_some_and(|r| r > timing.degraded_rtt)
                    && rtt.last().is_some_and(|r| r > timing.degraded_rtt)
                    && rtt.age().is_some_and(|age| age < timing.degraded_after)
                {
                    // Slow on average and still slow now: a passing spike does
                    // not degrade a peer for long. A member is probed only
                    // every n rounds, so the evidence counts only while fresh
                    // (a spike during a busy boot once kept a peer Degraded
                    // for its whole probe cycle, 13 s at 32 nodes).
                    let ms = rtt.ewma().unwrap_or_default().as_secs_f64() * 1e3;
                    Health::Degraded { reason: format!("high RTT: {ms:.1} ms") }
                } else {
                    Health::Healthy
                }
            }
        }
    }

    pub(super) fn peers(&self) -> Vec<PeerInfo> {
        let now_us = self.now_us();
        let now = Instant::now();
        let swim = self.swim.lock();
        let state = self.state.lock();
        let mut out: Vec<PeerInfo> = swim
            .members()
            .map(|m| {
                let id = m.alive.body.node;
                let peer = state.peers.get(&id);
                let last_us = peer.and_then(|p| {
                    p.sessions.iter().map(|s| s.last_recv_us.load(Ordering::Relaxed)).max()
                });
                let last_heard = match last_us {
                    Some(l) => Duration::from_micros(now_us.saturating_sub(l)),
                    None => now.saturating_duration_since(m.since),
                };
                PeerInfo {
                    node_id: id,
                    public_key: m.alive.key,
                    addr: self.member_addr(m, peer),
                    version: m.alive.body.version.clone(),
                    flags: m.alive.body.flags,
                    health: self.health_of(m, peer),
                    rtt: peer.and_then(|p| p.rtt.ewma()),
                    rtt_max_recent: peer.and_then(|p| p.rtt.recent_max()),
                    last_heard,
                    sessions: peer.map_or(0, |p| p.sessions.len()),
                    connected_for: peer
                        .map_or(Duration::ZERO, |p| now.saturating_duration_since(p.first_seen)),
                }
            })
            .collect();
        out.sort_by_key(|p| p.node_id);
        out
    }

    /// Where a member is reached: its signed address, or, for a node bound to
    /// a wildcard address, where its session came from.
    fn member_addr(&self, m: &Member, peer: Option<&Peer>) -> SocketAddr {
        let addr = m.alive.body.addr;
        if addr.ip().is_unspecified()
            && let Some(p) = peer
        {
            return SocketAddr::new(p.addr.ip(), addr.port());
        }
        addr
    }

    /// Members that are alive or suspect (sends to them are attempted).
    pub(crate) fn live_peers(&self) -> Vec<NodeId> {
        self.swim.lock().members().filter(|m| m.is_live()).map(|m| m.alive.body.node).collect()
    }

    /// Whether `node` is in the member table (in any state).
    pub(crate) fn is_member(&self, node: NodeId) -> bool {
        self.swim.lock().member(node).is_some()
    }

    /// Up to `count` live members, those with an open session first.
    pub(crate) fn some_live_peers(&self, count: usize, except: NodeId) -> Vec<NodeId> {
        let routes = self.routes.read();
        let mut near = Vec::new();
        let mut far = Vec::new();
        for id in self.live_peers() {
            if id == except {
                continue;
            }
            if routes.contains_key(&id) { near.push(id) } else { far.push(id) }
        }
        drop(routes);
        let mut rng = crate::swim::Rng::new(self.now_us() ^ self.node_id.0);
        let mut out = Vec::new();
        for pool in [&mut near, &mut far] {
            while out.len() < count && !pool.is_empty() {
                let i = rng.below(pool.len());
                out.push(pool.swap_remove(i));
            }
        }
        out
    }

    // ----- membership glue -----

    pub(super) fn drain_refusals(&self, swim: &mut Swim) {
        for r in swim.refused.drain(..) {
            let counter = match r {
                Refusal::BadSignature => &self.counters.member_bad_signature,
                Refusal::WrongOwner => &self.counters.member_wrong_owner,
                Refusal::Implausible => &self.counters.member_implausible,
                Refusal::Full => &self.counters.member_full,
                Refusal::NotAllowed => &self.counters.member_wrong_owner,
            };
            Counters::bump(counter);
        }
    }

    /// Acts on member state changes: logs, failure records, routes.
    pub(super) fn on_member_events(&self, events: Vec<Event>) {
        if events.is_empty() {
            return;
        }
        for e in &events {
            log_event(e);
            match e.to {
                MemberState::Dead => {
                    let reason = "no answer to direct or indirect probes";
                    self.record_failure("peer_unreachable", &e.node.to_string(), reason);
                    self.drop_sessions(e.node);
                }
                MemberState::Left => {
                    self.record_failure("peer_left", &e.node.to_string(), "left the cluster");
                    self.drop_sessions(e.node);
                }
                MemberState::Alive | MemberState::Suspect => {}
            }
        }
        self.dirty.store(true, Ordering::Release);
        self.bump_changes();
    }

    /// Sends SWIM messages, opening sessions where there are none.
    pub(super) fn send_swim_now(&self, out: Vec<(NodeId, SwimMsg)>) {
        for (to, msg) in out {
            let Ok(bytes) = postcard::to_stdvec(&msg) else { continue };
            let mut plain = Vec::with_capacity(bytes.len() + 8);
            Frame::Swim(&bytes).encode_into(&mut plain);
            self.send_or_queue(to, plain);
        }
    }

    /// Sends an encoded frame to `to` on its session, or queues it and opens
    /// one. False when `to` cannot be reached (not a member, departed, queue
    /// full).
    pub(super) fn send_or_queue(&self, to: NodeId, plain: Vec<u8>) -> bool {
        let route = self.routes.read().get(&to).cloned();
        if let Some(route) = route {
            self.send_encoded(&route.session, &plain);
            return true;
        }
        self.wait_for_dial(to, Waiting::Frame(plain))
    }

    /// Waits (at most four handshake timeouts) for a session to `to`, opening
    /// one. True once there is one.
    pub(super) async fn wait_session(&self, to: NodeId) -> bool {
        if self.routes.read().contains_key(&to) {
            return true;
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        if !self.wait_for_dial(to, Waiting::Sender(tx)) {
            return false;
        }
        // The tick gives up on a dial after three handshake timeouts; this
        // bound holds even if the node stops ticking meanwhile.
        let bound = self.config.timing.handshake_timeout * 4;
        matches!(tokio::time::timeout(bound, rx).await, Ok(Ok(true)))
    }

    /// Adds `what` to the dial towards member `to`, starting the dial if
    /// there is none. Dead members may be dialled (membership offers them a
    /// push-pull now and then, in case they were only cut off); departed ones
    /// not. False when refused (and counted when over a bound).
    fn wait_for_dial(&self, to: NodeId, what: Waiting) -> bool {
        let start = {
            let swim = self.swim.lock();
            let Some(m) = swim.member(to).filter(|m| m.state != MemberState::Left) else {
                return false;
            };
            let mut state = self.state.lock();
            let addr = self.member_addr(m, state.peers.get(&to));
            let dialing = state.dialing.len();
            let entry = match state.dialing.entry(to) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(_) if dialing >= MAX_DIALING => {
                    Counters::bump(&self.counters.dial_over_budget);
                    return false;
                }
                std::collections::hash_map::Entry::Vacant(e) => e.insert(Dialing {
                    addr,
                    started: Instant::now(),
                    queued: Vec::new(),
                    queued_bytes: 0,
                    waiters: Vec::new(),
                }),
            };
            let fresh = entry.queued.is_empty() && entry.waiters.is_empty();
            match what {
                Waiting::Frame(plain) => {
                    if entry.queued_bytes + plain.len() > DIAL_QUEUE_BYTES {
                        Counters::bump(&self.counters.dial_over_budget);
                        return false;
                    }
                    entry.queued_bytes += plain.len();
                    entry.queued.push(plain);
                }
                Waiting::Sender(tx) => entry.waiters.push(tx),
            }
            fresh.then_some(addr)
        };
        if let Some(addr) = start {
            self.initiate(addr);
        }
        true
    }

    /// A session with `node` is up: send what waited for it.
    pub(super) fn flush_dialing(&self, node: NodeId, session: &Arc<Session>) {
        let Some(d) = self.state.lock().dialing.remove(&node) else { return };
        for plain in &d.queued {
            self.send_encoded(session, plain);
        }
        for w in d.waiters {
            let _ = w.send(true);
        }
    }

    /// Sends an encoded frame, as fragments when it outgrows a datagram.
    pub(super) fn send_encoded(&self, session: &Session, plain: &[u8]) {
        if plain.len() + TRANSPORT_HEADER + TAG_LEN > self.config.limits.datagram_budget {
            self.send_large_control(session, plain);
        } else {
            let _ = self.send_plain(session, plain, Carried::of_encoded(plain));
        }
    }

    // ----- maintenance -----

    pub(super) fn tick(&self) {
        let now = Instant::now();
        let now_us = self.now_us();
        let timing = self.config.timing.clone();
        let mut resend_final = Vec::new();
        let mut expired_sessions = Vec::new();
        let mut redial = Vec::new();
        let mut goodbyes = Vec::new();
        let dial_seeds;
        let sweep = {
            let mut state = self.state.lock();
            let due = state.next_sweep.is_none_or(|t| now >= t);
            if due {
                state.next_sweep = Some(now + SWEEP_EVERY);
            }
            due
        };
        // Lock order is swim before state, so the member set is read first.
        let members: Option<std::collections::HashSet<NodeId>> =
            sweep.then(|| self.swim.lock().members().map(|m| m.alive.body.node).collect());
        {
            let mut state = self.state.lock();
            dial_seeds = !state.seeds.is_empty() && state.next_seed_dial.is_none_or(|t| now >= t);

            // Handshakes that got no answer in time.
            let before = state.initiating.len() + state.responding.len();
            state
                .initiating
                .retain(|_, i| now.saturating_duration_since(i.started) < timing.handshake_timeout);
            state.responding.retain(|_, r| {
                now.saturating_duration_since(r.started) < timing.handshake_timeout * 2
            });
            let timed_out = before - state.initiating.len() - state.responding.len();
            if timed_out > 0 {
                self.counters.handshakes_failed.fetch_add(timed_out as u64, Ordering::Relaxed);
            }
            // Dials on demand: a second opener when the first went unanswered
            // for a quarter of the handshake timeout (it was likely lost), give
            // up after three handshake timeouts.
            let retry_after = timing.handshake_timeout / 4;
            let State { dialing, initiating, .. } = &mut *state;
            dialing.retain(|_, d| {
                if now.saturating_duration_since(d.started) > timing.handshake_timeout * 3 {
                    for w in d.waiters.drain(..) {
                        let _ = w.send(false);
                    }
                    return false;
                }
                let fresh = initiating.values().any(|i| {
                    i.addr == d.addr && now.saturating_duration_since(i.started) < retry_after
                });
                if !fresh {
                    redial.push(d.addr);
                }
                true
            });

            // Sessions: older duplicates that went quiet, idle ones, and the
            // least recently heard past the cap.
            if let Some(members) = &members {
                let idle_us = (timing.probe_interval * SESSION_IDLE_ROUNDS).as_micros() as u64;
                let mut open: Vec<(u64, NodeId)> = Vec::new();
                let mut empty = Vec::new();
                for (id, peer) in state.peers.iter_mut() {
                    let newest = peer.sessions.last().map(|s| s.local_idx);
                    let quiet = timing.unreachable_after.as_micros() as u64;
                    peer.sessions.retain(|s| {
                        let silent = now_us.saturating_sub(s.last_recv_us.load(Ordering::Relaxed));
                        let keep = if Some(s.local_idx) == newest {
                            silent < idle_us
                        } else {
                            silent < quiet
                        };
                        if !keep {
                            expired_sessions.push(s.local_idx);
                            if Some(s.local_idx) == newest {
                                goodbyes.push(s.clone());
                            }
                        }
                        keep
                    });
                    match peer.sessions.last() {
                        Some(s) => open.push((s.last_recv_us.load(Ordering::Relaxed), *id)),
                        None => empty.push(*id),
                    }
                }
                if open.len() > MAX_OPEN_SESSIONS {
                    open.sort_unstable();
                    for (_, id) in &open[..open.len() - MAX_OPEN_SESSIONS] {
                        if let Some(peer) = state.peers.get_mut(id) {
                            for s in peer.sessions.drain(..) {
                                expired_sessions.push(s.local_idx);
                                goodbyes.push(s);
                            }
                            empty.push(*id);
                        }
                    }
                }
                // A peer without sessions keeps its RTT history while it is a
                // member; the entry goes when the member is forgotten. (Lock
                // order is swim before state, so the member set was read first.)
                state.peers.retain(|id, p| !p.sessions.is_empty() || members.contains(id));
                if !empty.is_empty() {
                    let mut routes = self.routes.write();
                    for id in &empty {
                        routes.remove(id);
                    }
                }
            }

            // Message 3 lost? Resend it until the responder speaks, then give up.
            let resend_after = timing.handshake_timeout.as_micros() as u64 / 2;
            let give_up = timing.handshake_timeout * 4;
            state.unconfirmed.retain(|idx, u| {
                if now.saturating_duration_since(u.started) > give_up {
                    expired_sessions.push(*idx);
                    Counters::bump(&self.counters.handshakes_failed);
                    return false;
                }
                if now_us.saturating_sub(u.session.final_sent_us.load(Ordering::Relaxed))
                    > resend_after
                {
                    resend_final.push(u.session.clone());
                }
                true
            });
        }
        for s in &goodbyes {
            // The other side closes its copy too, instead of sending into a
            // session that is gone here.
            self.send_frame(s, &Frame::Leave);
        }
        if !expired_sessions.is_empty() {
            let mut index = self.sessions.write();
            for idx in expired_sessions {
                index.remove(&idx);
            }
        }
        for s in resend_final {
            if let Some(d) = &s.final_datagram {
                s.final_sent_us.store(now_us, Ordering::Relaxed);
                let _ = self.send_datagram(d, s.addr, Carried::Handshake);
            }
        }
        for addr in redial {
            self.initiate_again(addr);
        }
        // Membership timers.
        let mut out = Vec::new();
        let (events, failed, alone) = {
            let routes = self.routes.read();
            let connected = |n: NodeId| routes.contains_key(&n);
            let mut swim = self.swim.lock();
            swim.tick(now, now_us, &connected, &mut out);
            self.drain_refusals(&mut swim);
            (swim.take_events(), swim.take_direct_failures(), swim.live_count() == 0)
        };
        for node in failed {
            // A direct probe went unanswered on a session nothing has arrived
            // on for rounds: the other side may have closed it (its goodbye
            // lost); say so and let the next send open a fresh one. A busy
            // session (an ack lost in traffic) is left alone.
            let session = self.routes.read().get(&node).map(|r| r.session.clone());
            if let Some(s) = session {
                let silent = now_us.saturating_sub(s.last_recv_us.load(Ordering::Relaxed));
                if silent > (timing.probe_interval * 2).as_micros() as u64 {
                    self.send_frame(&s, &Frame::Leave);
                    self.drop_sessions(node);
                }
            }
        }
        self.on_member_events(events);
        self.send_swim_now(out);
        if dial_seeds && alone {
            self.dial_seeds(now);
            // Sessions up but no member learned (the push-pull was lost):
            // offer it again on each of them.
            let connected: Vec<NodeId> = self.routes.read().keys().copied().collect();
            let mut out = Vec::new();
            {
                let mut swim = self.swim.lock();
                for peer in connected {
                    swim.sync_with(peer, &mut out);
                }
            }
            self.send_swim_now(out);
        }
        if !sweep {
            return;
        }
        // Incomplete fragmented messages past their timeout.
        let sessions: Vec<Arc<Session>> = self.sessions.read().values().cloned().collect();
        for s in sessions {
            let expired = s.reassembly.lock().expire(now.into_std());
            if expired > 0 {
                self.counters.reassembly_drops.fetch_add(expired as u64, Ordering::Relaxed);
            }
        }
    }
}
