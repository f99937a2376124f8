//! Property tests: wire encode/decode, hostile bytes, reassembly in any order,
//! and the replay window against a simple model.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use mesh::NodeId;
use mesh::fragment::{Reassembler, ReassemblyLimits, split};
use mesh::replay::{ReplayWindow, WINDOW};
use mesh::wire::{Frame, MemberEntry, Packet};
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
}
