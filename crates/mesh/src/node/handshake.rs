//! Handshakes: the three Noise messages, identity checks, establishing a
//! session, and dialling (seeds, gossiped members, redials).

use super::*;

impl Inner {
    pub(super) fn on_init(&self, sender: u32, noise: &[u8], from: SocketAddr) {
        if noise.len() > MAX_HANDSHAKE_MSG {
            Counters::bump(&self.counters.too_large);
            return;
        }
        let Ok(mut hs) = self.static_key.responder(self.config.cluster_key.as_bytes()) else {
            return;
        };
        let mut payload = [0u8; MAX_HANDSHAKE_MSG];
        if hs.read_message(noise, &mut payload).is_err() {
            // Wrong cluster key, or garbage.
            Counters::bump(&self.counters.not_authenticated);
            return;
        }
        let mut msg = [0u8; MAX_HANDSHAKE_MSG];
        let Ok(n) = hs.write_message(&self.proof, &mut msg) else {
            Counters::bump(&self.counters.handshakes_failed);
            return;
        };
        let local = self.new_index();
        {
            let mut state = self.state.lock();
            if state.responding.len() >= self.config.limits.max_pending_handshakes {
                Counters::bump(&self.counters.handshakes_failed);
                return;
            }
            state.responding.insert(
                local,
                Responding { hs, addr: from, remote_idx: sender, started: Instant::now() },
            );
        }
        let datagram =
            Packet::HandshakeResp { sender: local, receiver: sender, noise: &msg[..n] }.encode();
        let _ = self.send_datagram(&datagram, from);
    }

    pub(super) fn on_resp(&self, sender: u32, receiver: u32, noise: &[u8], from: SocketAddr) {
        let Some(pending) = self.state.lock().initiating.remove(&receiver) else {
            Counters::bump(&self.counters.unknown_session);
            return;
        };
        let mut hs = pending.hs;
        let mut payload = [0u8; MAX_HANDSHAKE_MSG];
        let Ok(len) = hs.read_message(noise, &mut payload) else {
            Counters::bump(&self.counters.not_authenticated);
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
        let _ = self.send_datagram(&datagram, from);
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
        let mut hs = pending.hs;
        let mut payload = [0u8; MAX_HANDSHAKE_MSG];
        let Ok(len) = hs.read_message(noise, &mut payload) else {
            Counters::bump(&self.counters.not_authenticated);
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
            remote_idx: pending.remote_idx,
            peer: proof.public.node_id(),
            addr: pending.addr,
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
        let (others, members) = {
            let mut state = self.state.lock();
            // Only news travels: a peer we already heard of through gossip, or had
            // a live session with, is no news to the others either.
            let was_known = state.known.remove(&node_id).is_some();
            let now_us = self.now_us();
            let was_live = state
                .peers
                .get(&node_id)
                .is_some_and(|p| !self.health_of(p, now_us).0.is_unreachable());
            let is_news = !was_known && !was_live;
            let peer = state.peers.entry(node_id).or_insert_with(|| Peer {
                public: proof.public,
                addr: session.addr,
                version: String::new(),
                flags: 0,
                sessions: Vec::new(),
                rtt: RttStats::default(),
                left: false,
                first_seen: now,
                last_label: "",
                next_redial: now,
                redial_backoff: 0,
                down_since: None,
            });
            peer.public = proof.public;
            peer.addr = session.addr;
            peer.version = proof.version;
            peer.flags = proof.flags;
            if peer.left {
                // It came back: a fresh start.
                peer.left = false;
                peer.first_seen = now;
                peer.rtt = RttStats::default();
            }
            peer.redial_backoff = 0;
            peer.down_since = None;
            peer.sessions.push(session.clone());
            while peer.sessions.len() > MAX_SESSIONS_PER_PEER {
                dropped.push(peer.sessions.remove(0));
            }
            // Tell the newcomer about everyone, and everyone about the newcomer.
            let mut members = Vec::new();
            let mut others = Vec::new();
            for (id, p) in &state.peers {
                if !is_news || *id == node_id || p.left {
                    continue;
                }
                if let Some(s) = p.sessions.last() {
                    members.push(MemberEntry { node_id: *id, addr: p.addr });
                    others.push(s.clone());
                }
            }
            (others, members)
        };
        {
            let mut sessions = self.sessions.write();
            for old in &dropped {
                sessions.remove(&old.local_idx);
            }
        }
        self.routes.write().insert(node_id, Route { session: session.clone(), unreachable: false });
        tracing::debug!(node = %self.node_id, peer = %node_id, initiator = session.initiator, "session established");
        if !members.is_empty() {
            self.send_frame(&session, &Frame::Members(members));
        }
        let news = Frame::Members(vec![MemberEntry { node_id, addr: session.addr }]);
        for other in others {
            self.send_frame(&other, &news);
        }
        self.bump_changes();
    }

    // ----- initiating -----

    pub(super) fn initiate(&self, addr: SocketAddr) {
        if self.closed.load(Ordering::Acquire) {
            return;
        }
        {
            let state = self.state.lock();
            let busy = state.initiating.values().any(|i| i.addr == addr);
            if busy {
                return;
            }
        }
        let Ok(mut hs) = self.static_key.initiator(self.config.cluster_key.as_bytes()) else {
            return;
        };
        let mut msg = [0u8; MAX_HANDSHAKE_MSG];
        let Ok(n) = hs.write_message(&[], &mut msg) else { return };
        let local = self.new_index();
        self.state
            .lock()
            .initiating
            .insert(local, Initiating { hs, addr, started: Instant::now() });
        let datagram = Packet::HandshakeInit { sender: local, noise: &msg[..n] }.encode();
        let _ = self.send_datagram(&datagram, addr);
    }

    pub(super) fn dial_seeds(&self, now: Instant) {
        let seeds: Vec<SocketAddr> = {
            let mut state = self.state.lock();
            state.next_seed_dial = Some(now + self.config.timing.redial_interval);
            let live: Vec<SocketAddr> = state
                .peers
                .values()
                .filter(|p| !p.left && !p.sessions.is_empty())
                .map(|p| p.addr)
                .collect();
            state
                .seeds
                .iter()
                .copied()
                .filter(|s| *s != self.local_addr && !live.contains(s))
                .collect()
        };
        for seed in seeds {
            self.initiate(seed);
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
