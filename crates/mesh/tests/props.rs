//! Property tests: wire encode/decode, hostile bytes, reassembly in any order,
//! and the replay window against a simple model.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use mesh::fold::{DaemonSummary, Fold, FoldMessage, NodeSummary, Resources};
use mesh::fragment::{Reassembler, ReassemblyLimits, split};
use mesh::lineage::{Lineage, ParsedName};
use mesh::logs::Ring;
use mesh::replay::{ReplayWindow, WINDOW};
use mesh::wire::{Frame, MemberEntry, Packet};
use mesh::{DaemonHealth, Lifecycle, NodeId, OriginHash};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

fn packet_strategy() -> impl Strategy<Value = (u8, u32, u32, u64, Vec<u8>)> {
    (
        1u8..=4,
        any::<u32>(),
        any::<u32>(),
        any::<u64>(),
        proptest::collection::vec(any::<u8>(), 16..200),
    )
}

fn build(kind: u8, a: u32, b: u32, c: u64, body: &[u8]) -> Packet<'_> {
    match kind {
        1 => Packet::HandshakeInit { sender: a, noise: body },
        2 => Packet::HandshakeResp { sender: a, receiver: b, noise: body },
        3 => Packet::HandshakeFinal { receiver: b, noise: body },
        _ => Packet::Transport { receiver: b, counter: c, ciphertext: body },
    }
}

fn frame_strategy() -> impl Strategy<Value = (u8, u64, u64, u32, u32, Vec<u8>)> {
    (
        0u8..6,
        any::<u64>(),
        any::<u64>(),
        any::<u32>(),
        any::<u32>(),
        proptest::collection::vec(any::<u8>(), 0..300),
    )
}

fn build_frame(kind: u8, x: u64, y: u64, a: u32, b: u32, body: &[u8]) -> Frame<'_> {
    match kind {
        0 => Frame::Ping { seq: x, sent_us: y },
        1 => Frame::Pong { seq: x, sent_us: y },
        2 => Frame::Members(
            (0..(a % 5))
                .map(|i| MemberEntry {
                    node_id: NodeId(x ^ i as u64),
                    addr: ([127, 0, 0, 1], (b % 65535) as u16).into(),
                })
                .collect(),
        ),
        3 => Frame::Leave,
        4 => Frame::Message { kind: a, payload: body },
        _ => Frame::Fragment {
            msg_id: a,
            index: b,
            count: b.saturating_add(1),
            kind: a ^ b,
            payload: body,
        },
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct("proptest-regressions/props.txt"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn packets_round_trip((kind, a, b, c, body) in packet_strategy()) {
        let p = build(kind, a, b, c, &body);
        let bytes = p.encode();
        prop_assert_eq!(Packet::decode(&bytes).unwrap(), p);
    }

    #[test]
    fn frames_round_trip((kind, x, y, a, b, body) in frame_strategy()) {
        let f = build_frame(kind, x, y, a, b, &body);
        let mut bytes = Vec::new();
        f.encode_into(&mut bytes);
        prop_assert_eq!(Frame::decode(&bytes).unwrap(), f);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = Packet::decode(&bytes);
        let _ = Frame::decode(&bytes);
    }

    #[test]
    fn flipped_and_truncated_encodings_never_panic(
        (kind, x, y, a, b, body) in frame_strategy(),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        cut in any::<usize>(),
    ) {
        let mut bytes = Vec::new();
        build_frame(kind, x, y, a, b, &body).encode_into(&mut bytes);
        for (at, v) in flips { let n = bytes.len(); bytes[at % n] ^= v; }
        bytes.truncate(cut % (bytes.len() + 1));
        let _ = Frame::decode(&bytes);
        let mut datagram = vec![1u8, (x % 6) as u8];
        datagram.extend_from_slice(&bytes);
        let _ = Packet::decode(&datagram);
    }

    #[test]
    fn reassembly_any_order_with_duplicates(
        payload in proptest::collection::vec(any::<u8>(), 1..5000),
        piece in 64usize..700,
        order_seed in proptest::collection::vec(any::<u32>(), 0..64),
        dups in proptest::collection::vec(any::<usize>(), 0..20),
    ) {
        let pieces: Vec<&[u8]> = split(&payload, piece).collect();
        let count = pieces.len() as u32;
        let mut order: Vec<usize> = (0..pieces.len()).collect();
        // Shuffle deterministically from the seed, then add duplicates.
        for (i, s) in order_seed.iter().enumerate() {
            let n = order.len();
            order.swap(i % n, *s as usize % n);
        }
        for d in dups { order.push(d % pieces.len()); }
        let mut r = Reassembler::new(ReassemblyLimits {
            max_message: 1 << 20, max_bytes: 1 << 20, max_messages: 4, max_piece: 1024,
            timeout: Duration::from_secs(5),
        });
        let now = Instant::now();
        let mut delivered = Vec::new();
        for i in order {
            if let Some(done) = r.push(7, i as u32, count, 3, pieces[i], now).unwrap() {
                delivered.push(done);
            }
        }
        prop_assert_eq!(delivered.len(), 1, "exactly one delivery");
        prop_assert_eq!(&delivered[0].payload, &payload);
        prop_assert_eq!(delivered[0].kind, 3);
        // Late duplicates start a new partial (the message id is reused only by a
        // misbehaving sender) but never deliver it twice by themselves.
        prop_assert_eq!(r.held_bytes() <= 1 << 20, true);
    }

    #[test]
    fn reassembly_with_losses_never_delivers_wrong_bytes(
        payload in proptest::collection::vec(any::<u8>(), 200..3000),
        lose in any::<usize>(),
    ) {
        let pieces: Vec<&[u8]> = split(&payload, 100).collect();
        let lost = lose % pieces.len();
        let mut r = Reassembler::new(ReassemblyLimits {
            max_message: 1 << 20, max_bytes: 1 << 20, max_messages: 4, max_piece: 1024,
            timeout: Duration::from_millis(10),
        });
        let now = Instant::now();
        for (i, p) in pieces.iter().enumerate() {
            if i != lost {
                prop_assert!(r.push(1, i as u32, pieces.len() as u32, 0, p, now).unwrap().is_none());
            }
        }
        prop_assert!(r.held_bytes() > 0);
        prop_assert_eq!(r.expire(now + Duration::from_millis(20)), 1);
        prop_assert_eq!(r.held_bytes(), 0);
    }

    #[test]
    fn replay_window_matches_model(counters in proptest::collection::vec(0u64..6000, 1..400)) {
        let mut w = ReplayWindow::new();
        let mut seen = HashSet::new();
        let mut highest: Option<u64> = None;
        for c in counters {
            let too_old = highest.is_some_and(|h| h >= c && h - c >= WINDOW);
            let expected = !too_old && !seen.contains(&c);
            prop_assert_eq!(w.accept(c), expected, "counter {}", c);
            if expected {
                seen.insert(c);
                highest = Some(highest.map_or(c, |h| h.max(c)));
            }
        }
    }

    #[test]
    fn fold_is_order_independent_and_idempotent(
        updates in proptest::collection::vec((0u64..4, 0u64..3, 0u64..6, 0u8..4), 1..30),
        order in proptest::collection::vec(any::<u32>(), 0..60),
        dups in proptest::collection::vec(any::<usize>(), 0..20),
    ) {
        // The owner produces each (incarnation, version) once: content is a
        // function of the stamp.
        let summary = |node: u64, inc: u64, ver: u64| NodeSummary {
            node: NodeId(node),
            incarnation: inc,
            version: ver,
            produced_at_ms: inc * 1000 + ver,
            software: "t".into(),
            resources: Resources::default(),
            admin: Default::default(),
            migrations: Vec::new(),
            daemons: (0..(ver % 3)).map(|i| DaemonSummary {
                id: OriginHash(node * 100 + i),
                name: format!("d{i}#replica"),
                lifecycle: Lifecycle::Running,
                health: if ver % 2 == 0 { DaemonHealth::Healthy } else { DaemonHealth::Degraded { reason: format!("v{ver}") } },
                saturation_milli: (ver * 100) as u16,
                restarts: inc as u32,
                crash_looping: false,
                started_at_ms: inc,
                log_dropped: 0,
                migratable: false,
            }).collect(),
        };
        let list: Vec<NodeSummary> = updates.iter().map(|(n, i, v, _)| summary(*n, *i, *v)).collect();
        let mut reference = Fold::new();
        for u in &list { reference.apply(u.clone()); }

        let mut shuffled = list.clone();
        for (i, s) in order.iter().enumerate() {
            let n = shuffled.len();
            shuffled.swap(i % n, *s as usize % n);
        }
        for d in dups { shuffled.push(list[d % list.len()].clone()); }
        let mut other = Fold::new();
        for u in shuffled { other.apply(u); }
        prop_assert_eq!(&other, &reference);

        // Through the wire form as well.
        let bytes = FoldMessage::Summaries(list.clone()).encode();
        prop_assert_eq!(FoldMessage::decode(&bytes).unwrap(), FoldMessage::Summaries(list));
    }

    #[test]
    fn fold_messages_from_garbage_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = FoldMessage::decode(&bytes);
    }

    #[test]
    fn ring_is_bounded_and_ordered(cap in 1usize..50, pushes in 0usize..300, from in 0u64..400, limit in 0usize..80) {
        let mut ring: Ring<u64> = Ring::new(cap);
        for _ in 0..pushes { ring.push_with(|seq| seq); }
        prop_assert!(ring.len() <= cap);
        prop_assert_eq!(ring.next_seq(), pushes as u64);
        let page = ring.since(from, limit);
        prop_assert!(page.len() <= limit);
        prop_assert!(page.windows(2).all(|w| w[1] == w[0] + 1));
        if let Some(first) = page.first() {
            prop_assert!(*first >= from.max(ring.first_seq()));
        }
    }

    #[test]
    fn lineage_parsing_never_panics_and_round_trips(name in ".{0,40}", base in "[a-z_]{1,12}", seq in any::<u64>()) {
        let parsed = ParsedName::parse(&name);
        // Whatever it was, formatting gives back the name for the forms it accepts.
        if parsed.lineage != Lineage::Solo {
            prop_assert_eq!(parsed.to_string(), name.clone());
        }
        for (suffix, lineage) in [
            ("#replica".to_owned(), Lineage::Replica),
            ("#standby".to_owned(), Lineage::Standby),
            (format!("#fork@{seq}"), Lineage::Fork { parent_seq: seq }),
        ] {
            let full = format!("{base}{suffix}");
            let p = ParsedName::parse(&full);
            prop_assert_eq!(&p.group, &base);
            prop_assert_eq!(&p.lineage, &lineage);
            prop_assert_eq!(p.to_string(), full);
        }
    }
}
