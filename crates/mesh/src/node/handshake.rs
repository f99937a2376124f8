//! Handshakes: the three Noise messages, identity checks, establishing a
//! session, and dialling (seeds, gossiped members, redials).

use super::*;

/// Handshakes this node runs as initiator at once, at most.
pub(super) const MAX_INITIATING: usize = 1024;
/// How old an opener may be (by its timestamp, on this node's clock).
pub(super) const OPENER_MAX_AGE_MS: u64 = 30_000;
/// How far ahead of this node's clock an opener may be (clock skew).
pub(super) const OPENER_MAX_AHEAD_MS: u64 = 30_000;
/// Zero padding in message 1's payload, so that an opener is never smaller than
/// the answer it asks for: nobody can use a node to amplify traffic towards a
/// forged source address.
pub(super) const OPENER_PADDING: usize = 240;
/// Smallest opener datagram accepted: header, ephemeral key, padding, tag.
pub(super) const MIN_OPENER: usize = crate::wire::INIT_HEADER + 32 + OPENER_PADDING + 16;
/// Openers remembered (for replay refusal), at most.
const MAX_SEEN_OPENERS: usize = 65_536;
/// Openers answered per source address: per second, and in a burst.
const OPENERS_PER_SOURCE_PER_S: f64 = 8.0;
const OPENERS_PER_SOURCE_BURST: f64 = 16.0;
const SOURCE_BUDGET_SLOTS: usize = 4096;
/// Openers answered by this node in all, per second and in a burst: each costs
/// two Diffie-Hellman operations and a key generation.
const OPENERS_PER_S: f64 = 2_000.0;
const OPENERS_BURST: f64 = 512.0;

/// What the responder checks before it spends anything on an opener.
pub(crate) struct OpenerGuard {
    seen: crate::budget::SeenSet<[u8; 32]>,
    per_source: crate::budget::HashedBudget,
    global: crate::budget::Bucket,
}

impl OpenerGuard {
    pub(crate) fn new() -> Self {
        Self {
            seen: crate::budget::SeenSet::new(
                Duration::from_millis(OPENER_MAX_AGE_MS + OPENER_MAX_AHEAD_MS),
                MAX_SEEN_OPENERS,
            ),
            per_source: crate::budget::HashedBudget::new(
                SOURCE_BUDGET_SLOTS,
                OPENERS_PER_SOURCE_PER_S,
                OPENERS_PER_SOURCE_BURST,
            ),
            global: crate::budget::Bucket::new(),
        }
    }
}

impl Inner {
    /// Message 1. Everything that can refuse it cheaply runs first, in this
    /// order: size (an opener smaller than our answer is refused), timestamp
    /// freshness, replay (an opener seen before), the per-source and global
    /// budgets and the pending cap; then the AEAD check under the cluster key
    /// (no Diffie-Hellman in message 1 of XXpsk0); only then the two DH
    /// operations of message 2.
    pub(super) fn on_init(
        &self,
        sender: u32,
        timestamp_ms: u64,
        noise: &[u8],
        from: SocketAddr,
        received: usize,
    ) {
        if noise.len() > MAX_HANDSHAKE_MSG {
            Counters::bump(&self.counters.too_large);
            return;
        }
        if received < MIN_OPENER || noise.len() < 32 {
            Counters::bump(&self.counters.handshake_undersized);
            return;
        }
        let now_ms = mesh_auth::unix_now_ms();
        if timestamp_ms.saturating_add(OPENER_MAX_AGE_MS) < now_ms
            || timestamp_ms > now_ms.saturating_add(OPENER_MAX_AHEAD_MS)
        {
            Counters::bump(&self.counters.handshake_stale);
            return;
        }
        let mut ephemeral = [0u8; 32];
        ephemeral.copy_from_slice(&noise[..32]);
        let now = Instant::now();
        {
            let mut guard = self.opener_guard.lock();
            if guard.seen.contains(&ephemeral, now) {
                Counters::bump(&self.counters.handshake_replayed);
                return;
            }
            if !guard.per_source.take(from, now)
                || !guard.global.take(now, OPENERS_PER_S, OPENERS_BURST)
            {
                Counters::bump(&self.counters.handshake_over_budget);
                return;
            }
        }
        if self.state.lock().responding.len() >= self.config.limits.max_pending_handshakes {
            Counters::bump(&self.counters.handshake_over_budget);
            return;
        }
        let Ok(mut hs) =
            self.static_key.responder(self.config.cluster_key.as_bytes(), timestamp_ms)
        else {
            return;
        };
        let mut payload = [0u8; MAX_HANDSHAKE_MSG];
        if hs.read_message(noise, &mut payload).is_err() {
            // Wrong cluster key, a changed timestamp, or garbage.
            Counters::bump(&self.counters.not_authenticated);
            return;
        }
        // Authenticated under the cluster key: remember it, so a replay of this
        // very opener is refused before any work.
        if !self.opener_guard.lock().seen.insert(ephemeral, now) {
            Counters::bump(&self.counters.handshake_over_budget);
            return;
        }
        let mut msg = [0u8; MAX_HANDSHAKE_MSG];
        let Ok(n) = hs.write_message(&self.proof, &mut msg) else {
            Counters::bump(&self.counters.handshakes_failed);
            return;
        };
        let local = self.new_index();
        let datagram =
            Packet::HandshakeResp { sender: local, receiver: sender, noise: &msg[..n] }.encode();
        if datagram.len() > received {
            // Never answer an unverified source with more than it sent.
            Counters::bump(&self.counters.handshake_undersized);
            return;
        }
        {
            let mut state = self.state.lock();
            if state.responding.len() >= self.config.limits.max_pending_handshakes {
                Counters::bump(&self.counters.handshake_over_budget);
                return;
            }
            state.responding.insert(
                local,
                Responding { hs, addr: from, remote_idx: sender, started: Instant::now() },
            );
        }
        let _ = self.send_datagram(&datagram, from, Carried::Handshake);
    }

    pub(super) fn on_resp(&self, sender: u32, receiver: u32, noise: &[u8], from: SocketAddr) {
        let Some(pending) = self.state.lock().initiating.remove(&receiver) else {
            Counters::bump(&self.counters.unknown_session);
            return;
        };
        let Initiating { mut hs, addr, started } = pending;
        let mut payload = [0u8; MAX_HANDSHAKE_MSG];
        let Ok(len) = hs.read_message(noise, &mut payload) else {
            // Not from the node we dialled: the handshake waits for the real
            // answer (snow leaves its state as it was on a failed read).
            Counters::bump(&self.counters.not_authenticated);
            self.state.lock().initiating.insert(receiver, Initiating { hs, addr, started });
            return;
        };
        let proof = match self.accept_proof(&payload[..len], hs.get_remote_static()) {
            Ok(proof) => proof,
            Err(reason) => {
                tracing::debug!(%from, reason, "handshake refused");
                Counters::bump(&self.counters.handshakes_failed);
                return;
            }
        };
        let mut msg = [0u8; MAX_HANDSHAKE_MSG];
        let Ok(n) = hs.write_message(&self.proof, &mut msg) else {
            Counters::bump(&self.counters.handshakes_failed);
            return;
        };
        let Ok(transport) = hs.into_stateless_transport_mode() else {
            Counters::bump(&self.counters.handshakes_failed);
            return;
        };
        let datagram = Packet::HandshakeFinal { receiver: sender, noise: &msg[..n] }.encode();
        let _ = self.send_datagram(&datagram, from, Carried::Handshake);
        let session = Arc::new(Session::new(SessionParams {
            local_idx: receiver,
            remote_idx: sender,
            peer: proof.public.node_id(),
            addr: from,
            transport,
            reassembler: Reassembler::new(self.reassembly_limits()),
            now_us: self.now_us(),
            initiator: true,
            final_datagram: Some(datagram),
        }));
        self.sessions.write().insert(receiver, session.clone());
        self.state
            .lock()
            .unconfirmed
            .insert(receiver, Unconfirmed { session, proof, started: Instant::now() });
    }

    pub(super) fn on_final(&self, receiver: u32, noise: &[u8], from: SocketAddr) {
        let pending = self.state.lock().responding.remove(&receiver);
        let Some(pending) = pending else {
            // A resent message 3 for a session we already have is expected.
            if !self.sessions.read().contains_key(&receiver) {
                Counters::bump(&self.counters.unknown_session);
            }
            return;
        };
        let Responding { mut hs, addr, remote_idx, started } = pending;
        let mut payload = [0u8; MAX_HANDSHAKE_MSG];
        let Ok(len) = hs.read_message(noise, &mut payload) else {
            // Not from the initiator: keep waiting for its message 3.
            Counters::bump(&self.counters.not_authenticated);
            self.state
                .lock()
                .responding
                .insert(receiver, Responding { hs, addr, remote_idx, started });
            return;
        };
        let proof = match self.accept_proof(&payload[..len], hs.get_remote_static()) {
            Ok(proof) => proof,
            Err(reason) => {
                tracing::debug!(%from, reason, "handshake refused");
                Counters::bump(&self.counters.handshakes_failed);
                return;
            }
        };
        let Ok(transport) = hs.into_stateless_transport_mode() else {
            Counters::bump(&self.counters.handshakes_failed);
            return;
        };
        let session = Arc::new(Session::new(SessionParams {
            local_idx: receiver,
            remote_idx,
            peer: proof.public.node_id(),
            addr,
            transport,
            reassembler: Reassembler::new(self.reassembly_limits()),
            now_us: self.now_us(),
            initiator: false,
            final_datagram: None,
        }));
        self.established(session.clone(), proof);
        // Confirms the session to the initiator right away (and measures RTT).
        self.send_ping(&session);
    }

    pub(super) fn accept_proof(
        &self,
        bytes: &[u8],
        remote_static: Option<&[u8]>,
    ) -> Result<IdentityProof, &'static str> {
        let proof = IdentityProof::check(bytes, remote_static)?;
        if proof.public == self.identity.public() {
            return Err("connected to itself");
        }
        if let Some(allow) = &self.config.allow_list
            && !allow.contains(&proof.public)
        {
            return Err("node key not in the allow-list");
        }
        Ok(proof)
    }

    pub(super) fn established(&self, session: Arc<Session>, proof: IdentityProof) {
        if self.closed.load(Ordering::Acquire) {
            return;
        }
        Counters::bump(&self.counters.handshakes_ok);
        let node_id = session.peer;
        let now = Instant::now();
        self.sessions.write().insert(session.local_idx, session.clone());
        let mut dropped = Vec::new();
        {
            let mut state = self.state.lock();
            let peer = state.peers.entry(node_id).or_insert_with(|| Peer {
                public: proof.public,
                addr: session.addr,
                version: String::new(),
                flags: 0,
                sessions: Vec::new(),
                rtt: RttStats::default(),
                first_seen: now,
            });
            if peer.sessions.is_empty() {
                peer.first_seen = now;
            }
            peer.public = proof.public;
            peer.addr = session.addr;
            peer.version = proof.version;
            peer.flags = proof.flags;
            peer.sessions.push(session.clone());
            while peer.sessions.len() > MAX_SESSIONS_PER_PEER {
                dropped.push(peer.sessions.remove(0));
            }
        }
        {
            let mut sessions = self.sessions.write();
            for old in &dropped {
                sessions.remove(&old.local_idx);
            }
        }
        self.routes.write().insert(node_id, Route { session: session.clone(), unreachable: false });
        tracing::debug!(node = %self.node_id, peer = %node_id, initiator = session.initiator, "session established");
        self.flush_dialing(node_id, &session);
        // A node we have no current record of (a newcomer, a seed, one that
        // came back): push-pull with it, so each side learns the other's signed
        // record and whatever members it lacks.
        let mut out = Vec::new();
        {
            let mut swim = self.swim.lock();
            if !swim.has_current(node_id) {
                swim.sync_with(node_id, &mut out);
            }
        }
        self.send_swim_now(out);
        self.bump_changes();
    }

    // ----- initiating -----

    pub(super) fn initiate(&self, addr: SocketAddr) {
        let busy = self.state.lock().initiating.values().any(|i| i.addr == addr);
        if !busy {
            self.initiate_again(addr);
        }
    }

    /// Starts a handshake with `addr` even if one is in flight (its opener
    /// may have been lost); at most [`MAX_OPENERS_PER_ADDR`] run per address.
    pub(super) fn initiate_again(&self, addr: SocketAddr) {
        if self.closed.load(Ordering::Acquire) {
            return;
        }
        {
            let state = self.state.lock();
            if state.initiating.values().filter(|i| i.addr == addr).count() >= MAX_OPENERS_PER_ADDR
            {
                return;
            }
        }
        let timestamp_ms = mesh_auth::unix_now_ms();
        let Ok(mut hs) =
            self.static_key.initiator(self.config.cluster_key.as_bytes(), timestamp_ms)
        else {
            return;
        };
        let mut msg = [0u8; MAX_HANDSHAKE_MSG];
        let Ok(n) = hs.write_message(&[0u8; OPENER_PADDING], &mut msg) else { return };
        let local = self.new_index();
        {
            let mut state = self.state.lock();
            if state.initiating.len() >= MAX_INITIATING {
                Counters::bump(&self.counters.dial_over_budget);
                return;
            }
            state.initiating.insert(local, Initiating { hs, addr, started: Instant::now() });
        }
        let datagram =
            Packet::HandshakeInit { sender: local, timestamp_ms, noise: &msg[..n] }.encode();
        let _ = self.send_datagram(&datagram, addr, Carried::Handshake);
    }

    /// Dials the seeds this node has no session with (see `State::seed_dials`
    /// for how often).
    pub(super) fn dial_seeds(&self, now: Instant) {
        let seeds: Vec<SocketAddr> = {
            let mut state = self.state.lock();
            let live: Vec<SocketAddr> =
                state.peers.values().filter(|p| !p.sessions.is_empty()).map(|p| p.addr).collect();
            state.seed_dials = if live.is_empty() { state.seed_dials.saturating_add(1) } else { 0 };
            let timing = &self.config.timing;
            let every = if state.seed_dials <= QUICK_SEED_DIALS {
                (timing.handshake_timeout / 4).min(timing.redial_interval)
            } else {
                timing.redial_interval
            };
            state.next_seed_dial = Some(now + every);
            state
                .seeds
                .iter()
                .copied()
                .filter(|s| *s != self.local_addr && !live.contains(s))
                .collect()
        };
        // An opener older than a quarter handshake timeout was likely lost:
        // another goes beside it (at most three per address).
        let fresh_for = self.config.timing.handshake_timeout / 4;
        for seed in seeds {
            let fresh =
                self.state.lock().initiating.values().any(|i| {
                    i.addr == seed && now.saturating_duration_since(i.started) < fresh_for
                });
            if !fresh {
                self.initiate_again(seed);
            }
        }
    }

    pub(super) fn send_ping(&self, session: &Session) {
        let seq = {
            let mut state = self.state.lock();
            state.probe_seq += 1;
            state.probe_seq
        };
        self.send_frame(session, &Frame::Ping { seq, sent_us: self.now_us() });
    }
}

/// Seed dials a quarter handshake timeout apart before falling back to the
/// redial interval.
const QUICK_SEED_DIALS: u32 = 4;

/// Handshakes in flight to one address (the later ones stand in for lost
/// openers; the first answer wins).
const MAX_OPENERS_PER_ADDR: usize = 3;
