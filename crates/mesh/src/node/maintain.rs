//! The maintenance tick and health: probes, handshake timeouts, redials,
//! gossip, garbage collection, and the `peers()` view.

use super::*;

/// Logs a member's change of state (an operator reading the journal sees what
/// the deck shows): degraded and unreachable at warn, the rest at info. The
/// first label a new peer gets is logged when its session is established.
fn log_transition(node: NodeId, addr: SocketAddr, left: bool, from: &str, to: &Health) {
    let reason = to.reason().unwrap_or_default();
    match (from, to) {
        ("", _) => {}
        (_, Health::Unreachable { .. }) if left => {
            tracing::info!(%node, %addr, "member left the cluster");
        }
        (_, Health::Unreachable { .. }) => {
            tracing::warn!(%node, %addr, %reason, "member unreachable");
        }
        (_, Health::Degraded { .. }) => {
            tracing::warn!(%node, %addr, %reason, was = from, "member suspect (degraded)");
        }
        (_, Health::Healthy) => {
            tracing::info!(%node, %addr, was = from, "member healthy again");
        }
    }
}

/// Handshakes started per maintenance tick towards members learned by gossip.
const DIALS_PER_TICK: usize = 32;

impl Inner {
    // ----- reading state -----

    pub(super) fn health_of(&self, peer: &Peer, now_us: u64) -> (Health, u64) {
        let timing = &self.config.timing;
        let last_us = peer.sessions.iter().map(|s| s.last_recv_us.load(Ordering::Relaxed)).max();
        let silent_us = last_us.map_or(u64::MAX, |l| now_us.saturating_sub(l));
        let silent_ms = silent_us / 1000;
        let health = if peer.left {
            Health::Unreachable { reason: "left the cluster".into() }
        } else if last_us.is_none() {
            Health::Unreachable { reason: "no session".into() }
        } else if silent_us > timing.unreachable_after.as_micros() as u64 {
            Health::Unreachable { reason: format!("no reply for {silent_ms} ms") }
        } else if silent_us > timing.degraded_after.as_micros() as u64 {
            Health::Degraded { reason: format!("missed probes: silent for {silent_ms} ms") }
        } else if peer.rtt.ewma().is_some_and(|rtt| rtt > timing.degraded_rtt)
            && peer.rtt.last().is_some_and(|rtt| rtt > timing.degraded_rtt)
        {
            // Slow on average and still slow now: a passing spike (a burst of
            // handshakes, a GC pause elsewhere) does not degrade a peer for long.
            let rtt = peer.rtt.ewma().unwrap_or_default();
            Health::Degraded { reason: format!("high RTT: {:.1} ms", rtt.as_secs_f64() * 1e3) }
        } else {
            Health::Healthy
        };
        (health, silent_us)
    }

    pub(super) fn peers(&self) -> Vec<PeerInfo> {
        let now_us = self.now_us();
        let now = Instant::now();
        let state = self.state.lock();
        let mut out: Vec<PeerInfo> = state
            .peers
            .iter()
            .map(|(id, peer)| {
                let (health, silent_us) = self.health_of(peer, now_us);
                PeerInfo {
                    node_id: *id,
                    public_key: peer.public,
                    addr: peer.addr,
                    version: peer.version.clone(),
                    flags: peer.flags,
                    health,
                    rtt: peer.rtt.ewma(),
                    rtt_max_recent: peer.rtt.recent_max(),
                    last_heard: Duration::from_micros(silent_us.min(u64::MAX / 2)),
                    sessions: peer.sessions.len(),
                    connected_for: now.saturating_duration_since(peer.first_seen),
                }
            })
            .collect();
        out.sort_by_key(|p| p.node_id);
        out
    }

    // ----- maintenance -----

    pub(super) fn tick(&self) {
        let now = Instant::now();
        let now_us = self.now_us();
        let timing = self.config.timing.clone();
        let mut to_ping = Vec::new();
        let mut to_gossip = Vec::new();
        let mut to_dial = Vec::new();
        let mut resend_final = Vec::new();
        let mut expired_sessions = Vec::new();
        let mut route_updates = Vec::new();
        let mut changed = false;
        let mut gossip_members = Vec::new();
        let mut failures = Vec::new();
        let dial_seeds;
        {
            let mut state = self.state.lock();
            let probe_due = state.next_probe.is_none_or(|t| now >= t);
            if probe_due {
                state.next_probe = Some(now + timing.probe_interval);
                state.probe_round += 1;
            }
            let round = state.probe_round;
            let gossip_due = state.next_gossip.is_none_or(|t| now >= t);
            if gossip_due {
                state.next_gossip = Some(now + timing.gossip_interval);
            }
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

            let mut members = Vec::new();
            let mut forget = Vec::new();
            for (id, peer) in state.peers.iter_mut() {
                let (health, _) = self.health_of(peer, now_us);
                if health.label() != peer.last_label {
                    log_transition(*id, peer.addr, peer.left, peer.last_label, &health);
                    if health.is_unreachable() && !peer.last_label.is_empty() {
                        let kind = if peer.left { "peer_left" } else { "peer_unreachable" };
                        let reason = health.reason().unwrap_or_default().to_owned();
                        failures.push((kind, id.to_string(), reason));
                    }
                    peer.last_label = health.label();
                    changed = true;
                    route_updates.push((*id, health.is_unreachable()));
                }
                if health.is_unreachable() {
                    let down_since = *peer.down_since.get_or_insert(now);
                    if now.saturating_duration_since(down_since) > timing.forget_after {
                        forget.push(*id);
                    } else if !peer.left && now >= peer.next_redial {
                        let factor = 1u32 << peer.redial_backoff.min(3);
                        peer.next_redial = now + timing.redial_interval * factor;
                        peer.redial_backoff += 1;
                        to_dial.push(peer.addr);
                    }
                    continue;
                }
                peer.down_since = None;
                if let Some(s) = peer.sessions.last() {
                    // Each side pings every other round, the two sides in
                    // opposite rounds: a peer still hears from us every probe
                    // interval (our ping or our pong to its ping), with half the
                    // datagrams, and both sides keep measuring RTT.
                    // New peers are pinged every round for their first seconds,
                    // so a joining cluster measures RTT and settles quickly.
                    let settling =
                        now.saturating_duration_since(peer.first_seen) < Duration::from_secs(3);
                    let my_turn = settling || (round + u64::from(self.node_id < *id)) % 2 == 0;
                    if probe_due && my_turn {
                        to_ping.push(s.clone());
                    }
                    members.push(MemberEntry { node_id: *id, addr: peer.addr });
                    if gossip_due {
                        to_gossip.push(s.clone());
                    }
                }
                // Sessions other than the newest that went quiet are done.
                let newest = peer.sessions.last().map(|s| s.local_idx);
                let idle = timing.unreachable_after.as_micros() as u64;
                peer.sessions.retain(|s| {
                    let keep = Some(s.local_idx) == newest
                        || now_us.saturating_sub(s.last_recv_us.load(Ordering::Relaxed)) < idle;
                    if !keep {
                        expired_sessions.push(s.local_idx);
                    }
                    keep
                });
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
            for id in forget {
                if let Some(peer) = state.peers.remove(&id) {
                    expired_sessions.extend(peer.sessions.iter().map(|s| s.local_idx));
                    route_updates.push((id, true));
                    changed = true;
                }
                self.routes.write().remove(&id);
            }
            // Members learned by gossip whose turn to dial has come (a bounded
            // number per tick: the rest wait for the next one).
            for known in state.known.values_mut() {
                if to_dial.len() >= DIALS_PER_TICK {
                    break;
                }
                if now >= known.next_attempt {
                    known.next_attempt = now + timing.handshake_timeout * 2;
                    to_dial.push(known.addr);
                }
            }
            let forget_after = timing.forget_after;
            state.known.retain(|_, k| now.saturating_duration_since(k.learned) < forget_after);
            if gossip_due {
                gossip_members = members;
            }
        }
        if !gossip_members.is_empty() {
            let frame = Frame::Members(gossip_members);
            for s in &to_gossip {
                self.send_frame(s, &frame);
            }
        }
        if !expired_sessions.is_empty() {
            let mut index = self.sessions.write();
            for idx in expired_sessions {
                index.remove(&idx);
            }
        }
        if !route_updates.is_empty() {
            let mut routes = self.routes.write();
            for (id, unreachable) in route_updates {
                if let Some(route) = routes.get_mut(&id) {
                    route.unreachable = unreachable;
                }
            }
        }
        for s in &to_ping {
            self.send_ping(s);
        }
        for s in resend_final {
            if let Some(d) = &s.final_datagram {
                s.final_sent_us.store(now_us, Ordering::Relaxed);
                let _ = self.send_datagram(d, s.addr);
            }
        }
        for addr in to_dial {
            self.initiate(addr);
        }
        if dial_seeds {
            self.dial_seeds(now);
        }
        // Incomplete fragmented messages past their timeout.
        let sessions: Vec<Arc<Session>> = self.sessions.read().values().cloned().collect();
        for s in sessions {
            let expired = s.reassembly.lock().expire(now.into_std());
            if expired > 0 {
                self.counters.reassembly_drops.fetch_add(expired as u64, Ordering::Relaxed);
            }
        }
        for (kind, subject, reason) in failures {
            self.record_failure(kind, &subject, &reason);
        }
        if changed {
            self.bump_changes();
        }
    }
}
