//! The receive path: parse a datagram, open it, and act on the frame inside
//! (probes, member gossip, leaves, application messages and fragments).

use super::*;

/// Members from one member list dialled at once (the others wait their turn).
const DIALS_AT_ONCE: usize = 64;
/// Members heard of through gossip but not yet met, at most.
pub(super) const MAX_KNOWN: usize = 4096;
/// New members one peer may introduce: per second, and in a burst (a joining
/// node's first member list from its seed fits in the burst).
const INTRODUCTIONS_PER_S: f64 = 16.0;
const INTRODUCTIONS_BURST: f64 = 256.0;

pub(super) fn gossip_budget() -> crate::budget::HashedBudget {
    crate::budget::HashedBudget::new(1024, INTRODUCTIONS_PER_S, INTRODUCTIONS_BURST)
}

/// Whether a gossiped address is one a member could be reached at.
pub(crate) fn dialable(addr: &SocketAddr) -> bool {
    if addr.port() == 0 {
        return false;
    }
    match addr.ip() {
        std::net::IpAddr::V4(ip) => {
            !(ip.is_unspecified() || ip.is_multicast() || ip.is_broadcast())
        }
        std::net::IpAddr::V6(ip) => !(ip.is_unspecified() || ip.is_multicast()),
    }
}

impl Inner {
    // ----- receiving -----

    pub(super) fn handle_datagram(&self, bytes: &[u8], from: SocketAddr, scratch: &mut [u8]) {
        Counters::bump(&self.counters.datagrams_in);
        self.counters.bytes_in.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        if bytes.len() > self.config.limits.max_datagram {
            Counters::bump(&self.counters.too_large);
            return;
        }
        let packet = match Packet::decode(bytes) {
            Ok(p) => p,
            Err(_) => {
                Counters::bump(&self.counters.malformed);
                return;
            }
        };
        match packet {
            Packet::HandshakeInit { sender, timestamp_ms, noise } => {
                self.on_init(sender, timestamp_ms, noise, from, bytes.len())
            }
            Packet::HandshakeResp { sender, receiver, noise } => {
                self.on_resp(sender, receiver, noise, from)
            }
            Packet::HandshakeFinal { receiver, noise } => self.on_final(receiver, noise, from),
            Packet::Transport { receiver, counter, ciphertext } => {
                self.on_transport(receiver, counter, ciphertext, scratch)
            }
        }
    }

    pub(super) fn on_transport(
        &self,
        receiver: u32,
        counter: u64,
        ciphertext: &[u8],
        scratch: &mut [u8],
    ) {
        let Some(session) = self.sessions.read().get(&receiver).cloned() else {
            Counters::bump(&self.counters.unknown_session);
            return;
        };
        let n = match session.open(counter, ciphertext, scratch) {
            Ok(n) => n,
            Err(OpenError::Replay) => {
                Counters::bump(&self.counters.replay);
                return;
            }
            Err(OpenError::NotAuthenticated) => {
                Counters::bump(&self.counters.not_authenticated);
                return;
            }
        };
        let now_us = self.now_us();
        session.last_recv_us.store(now_us, Ordering::Relaxed);
        if !session.confirmed.swap(true, Ordering::AcqRel) {
            let pending = self.state.lock().unconfirmed.remove(&session.local_idx);
            if let Some(pending) = pending {
                self.established(pending.session, pending.proof);
            }
        }
        let frame = match Frame::decode(&scratch[..n]) {
            Ok(frame) => frame,
            Err(_) => {
                Counters::bump(&self.counters.malformed);
                return;
            }
        };
        self.on_frame(&session, frame, now_us);
    }

    pub(super) fn on_frame(&self, session: &Arc<Session>, frame: Frame<'_>, now_us: u64) {
        match frame {
            Frame::Ping { seq, sent_us } => self.send_frame(session, &Frame::Pong { seq, sent_us }),
            Frame::Pong { sent_us, .. } => {
                if sent_us <= now_us {
                    let mut state = self.state.lock();
                    if let Some(peer) = state.peers.get_mut(&session.peer) {
                        peer.rtt.record(now_us - sent_us);
                    }
                }
            }
            Frame::Members(list) => self.learn_members(session.peer, list),
            Frame::Leave => self.peer_left(session.peer),
            Frame::Message { kind, payload } => {
                self.dispatch(session.peer, MessageKind(kind), Bytes::copy_from_slice(payload))
            }
            Frame::Fragment { msg_id, index, count, kind, payload } => {
                let result = session.reassembly.lock().push(
                    msg_id,
                    index,
                    count,
                    kind,
                    payload,
                    Instant::now().into_std(),
                );
                match result {
                    Ok(None) => {}
                    Ok(Some(done)) if done.kind == CONTROL_KIND.0 => {
                        match Frame::decode(&done.payload) {
                            Ok(Frame::Members(list)) => self.learn_members(session.peer, list),
                            _ => Counters::bump(&self.counters.malformed),
                        }
                    }
                    Ok(Some(done)) => self.dispatch(
                        session.peer,
                        MessageKind(done.kind),
                        Bytes::from(done.payload),
                    ),
                    Err(drop) => {
                        Counters::bump(&self.counters.reassembly_drops);
                        if drop == ReassemblyDrop::TooLarge {
                            Counters::bump(&self.counters.too_large);
                        }
                    }
                }
            }
        }
    }

    pub(super) fn dispatch(&self, from: NodeId, kind: MessageKind, payload: Bytes) {
        let list = self.subscribers.read().get(&kind).cloned();
        let Some(list) = list else {
            Counters::bump(&self.counters.no_subscriber);
            return;
        };
        for sink in list.iter() {
            let message = Incoming { from, kind, payload: payload.clone() };
            match sink {
                Sink::Inline(_, handler) => {
                    handler(message);
                    Counters::bump(&self.counters.messages_in);
                }
                Sink::Queue(tx) => match tx.try_send(message) {
                    Ok(()) => Counters::bump(&self.counters.messages_in),
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        Counters::bump(&self.counters.subscriber_full)
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => {}
                },
            }
        }
    }

    /// Members a peer told us about. What a key holder can make us do with
    /// this is bounded: addresses nobody can be reached at (port 0, unspecified,
    /// multicast, broadcast) are refused, each gossiping peer may introduce
    /// only so many new members per second, and `known` is capped.
    pub(super) fn learn_members(&self, from: NodeId, list: Vec<MemberEntry>) {
        let now = Instant::now();
        let mut dial_now = Vec::new();
        {
            let mut state = self.state.lock();
            for entry in list {
                if entry.node_id == self.node_id {
                    continue;
                }
                if !dialable(&entry.addr) {
                    Counters::bump(&self.counters.gossip_bad_address);
                    continue;
                }
                if let Some(peer) = state.peers.get_mut(&entry.node_id) {
                    // Known peer: if it is down or gone, this is news that it lives.
                    let down = peer.left || peer.sessions.is_empty();
                    if down && peer.next_redial > now {
                        peer.next_redial = now;
                    }
                    continue;
                }
                if state.known.contains_key(&entry.node_id) {
                    continue;
                }
                if state.known.len() >= MAX_KNOWN || !self.gossip_budget.lock().take(from, now) {
                    Counters::bump(&self.counters.gossip_over_budget);
                    continue;
                }
                // The smaller id initiates at once; the larger waits a moment for
                // it, so a pair normally runs one handshake, not two.
                let timing = &self.config.timing;
                let first = self.node_id < entry.node_id;
                let next_attempt =
                    now + if first { timing.handshake_timeout } else { timing.initiate_fallback };
                state
                    .known
                    .insert(entry.node_id, Known { addr: entry.addr, learned: now, next_attempt });
                if first {
                    dial_now.push(entry.addr);
                }
            }
        }
        // A few at once; the maintenance tick dials the rest in turn.
        for addr in dial_now.into_iter().take(DIALS_AT_ONCE) {
            self.initiate(addr);
        }
    }

    pub(super) fn peer_left(&self, node_id: NodeId) {
        let sessions = {
            let mut state = self.state.lock();
            let Some(peer) = state.peers.get_mut(&node_id) else { return };
            peer.left = true;
            std::mem::take(&mut peer.sessions)
        };
        {
            let mut index = self.sessions.write();
            for s in &sessions {
                index.remove(&s.local_idx);
            }
        }
        self.routes.write().remove(&node_id);
        tracing::debug!(node = %self.node_id, peer = %node_id, "peer left");
        self.bump_changes();
    }
}
