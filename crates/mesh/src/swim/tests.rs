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

#[test]
fn a_push_pull_that_brings_the_whole_member_list_marks_the_node_synced() {
    let (a, body_a) = node(1);
    let (b, body_b) = node(2);
    let (c, body_c) = node(3);
    let (a_id, b_id) = (a.node_id(), b.node_id());
    let now = Instant::now();
    let mut joiner = Swim::new(a, body_a.clone(), timing(), 1, None);
    let mut member = Swim::new(b, body_b.clone(), timing(), 2, None);
    // The member knows a third node and the joiner.
    assert!(member.apply(NodeId(9), Update::Alive(SignedAlive::sign(body_c, &c)), now, 2_000));
    let joiner_record = joiner.own().clone();
    member.apply(NodeId(9), Update::Alive(joiner_record), now, 2_000);
    assert!(!joiner.stats().synced);
    let mut to_member = Vec::new();
    joiner.sync_with(b_id, &mut to_member);
    for _ in 0..4 {
        let mut to_joiner = Vec::new();
        for (_, msg) in to_member.drain(..) {
            member.on_message(a_id, msg, now, 2_000, &mut to_joiner);
        }
        for (_, msg) in to_joiner {
            joiner.on_message(b_id, msg, now, 2_000, &mut to_member);
        }
    }
    // The member's own record came with its answer; c's too.
    assert!(joiner.member(c.node_id()).is_some());
    assert!(joiner.stats().synced);
}
