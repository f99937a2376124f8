//! The receive path: parse a datagram, open it, and act on the frame inside
//! (probes, member gossip, leaves, application messages and fragments).

use super::*;

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
            Frame::Swim(bytes) => self.on_swim(session, bytes),
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
                            Ok(Frame::Swim(bytes)) => self.on_swim(session, bytes),
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

    /// A membership message from a session's peer.
    pub(super) fn on_swim(&self, session: &Arc<Session>, bytes: &[u8]) {
        let msg: SwimMsg = match postcard::from_bytes(bytes) {
            Ok(msg) => msg,
            Err(_) => {
                Counters::bump(&self.counters.malformed);
                return;
            }
        };
        let now_us = self.now_us();
        if let SwimMsg::Ack { sent_us, relayed: false, .. } = &msg
            && *sent_us > 0
            && *sent_us <= now_us
        {
            let mut state = self.state.lock();
            if let Some(peer) = state.peers.get_mut(&session.peer) {
                peer.rtt.record(now_us - sent_us);
            }
        }
        let mut out = Vec::new();
        let events = {
            // Lock order: routes, then swim.
            let routes = self.routes.read();
            let connected = |n: NodeId| routes.contains_key(&n);
            let mut swim = self.swim.lock();
            let now = Instant::now();
            swim.on_message(session.peer, msg, now, mesh_auth::unix_now_ms(), &mut out);
            swim.eager_gossip(now, &connected, &mut out);
            self.drain_refusals(&mut swim);
            swim.take_events()
        };
        self.on_member_events(events);
        self.send_swim_now(out);
    }

    /// The peer said goodbye on its session: its sessions are closed (its
    /// signed leave, through membership, marks it left everywhere).
    pub(super) fn peer_left(&self, node_id: NodeId) {
        self.drop_sessions(node_id);
        tracing::debug!(node = %self.node_id, peer = %node_id, "peer said goodbye");
        self.bump_changes();
    }

    /// Closes every session with `node_id`.
    pub(super) fn drop_sessions(&self, node_id: NodeId) {
        let sessions = {
            let mut state = self.state.lock();
            match state.peers.get_mut(&node_id) {
                Some(peer) => std::mem::take(&mut peer.sessions),
                None => Vec::new(),
            }
        };
        {
            let mut index = self.sessions.write();
            for s in &sessions {
                index.remove(&s.local_idx);
            }
        }
        self.routes.write().remove(&node_id);
    }
}
