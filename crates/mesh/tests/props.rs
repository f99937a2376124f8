//! Property tests: wire encode/decode, hostile bytes, reassembly in any order
//! (duplicates anywhere, memory caps), the replay window against a simple model,
//! the fold, and peer text checks.
//!
//! Failing cases are recorded in `proptest-regressions/props.txt` (relative to
//! the crate, where `cargo test` runs) and replayed before new cases.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use mesh::fold::{
    DaemonSummary, Fold, FoldMessage, MAX_HEALTH_REASON, NodeSummary, Resources, SignedSummary,
    VerifiedSummary,
};
use mesh::fragment::{PIECE_OVERHEAD, Reassembler, ReassemblyDrop, ReassemblyLimits, split};
use mesh::lineage::{Lineage, ParsedName};
use mesh::logs::sanitize;
use mesh::replay::{ReplayWindow, WINDOW};
use mesh::wire::{Frame, Packet};
use mesh::{DaemonHealth, EntityKeypair, Lifecycle, OriginHash};
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
        1 => Packet::HandshakeInit { sender: a, timestamp_ms: c, noise: body },
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
        2 => Frame::Swim(body),
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

/// A node summary whose content is a function of its stamp, as an owner produces
/// each (incarnation, version) once.
/// The identity key of test node `node`.
fn key(node: u64) -> EntityKeypair {
    let mut seed = [9u8; 32];
    seed[..8].copy_from_slice(&node.to_le_bytes());
    EntityKeypair::from_seed(&seed)
}

/// Test node `node`'s summary, signed by its own key.
fn signed(node: u64, inc: u64, ver: u64) -> VerifiedSummary {
    VerifiedSummary::sign(summary(node, inc, ver), &key(node)).unwrap()
}

fn summary(node: u64, inc: u64, ver: u64) -> NodeSummary {
    NodeSummary {
        node: key(node).node_id(),
        incarnation: inc,
        version: ver,
        produced_at_ms: inc * 1000 + ver,
        software: "t".into(),
        resources: Resources::default(),
        admin: Default::default(),
        migrations: Vec::new(),
        daemons: (0..(ver % 3))
            .map(|i| DaemonSummary {
                id: OriginHash(node * 100 + i),
                name: format!("d{i}#replica"),
                lifecycle: Lifecycle::Running,
                health: if ver % 2 == 0 {
                    DaemonHealth::Healthy
                } else {
                    DaemonHealth::Degraded { reason: format!("v{ver}") }
                },
                saturation_milli: (ver * 100) as u16,
                restarts: inc as u32,
                crash_looping: false,
                started_at_ms: inc,
                log_dropped: 0,
                migratable: false,
            })
            .collect(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        // Relative to the crate root, where `cargo test` runs the tests.
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
        let n = pieces.len();
        let count = n as u32;
        let mut order: Vec<usize> = (0..n).collect();
        // Shuffle deterministically from the seed...
        for (i, s) in order_seed.iter().enumerate() {
            order.swap(i % n, *s as usize % n);
        }
        // ...then put duplicates anywhere: before a piece's first copy, between
        // pieces, or after the message is complete.
        for d in dups {
            let at = (d / n) % (order.len() + 1);
            order.insert(at, d % n);
        }
        // The step at which the last missing piece first arrives.
        let mut seen = HashSet::new();
        let completes = order.iter().position(|i| seen.insert(*i) && seen.len() == n);
        prop_assert!(completes.is_some());
        let mut r = Reassembler::new(ReassemblyLimits {
            max_message: 1 << 20, max_bytes: 1 << 20, max_messages: 4, max_piece: 1024,
            timeout: Duration::from_secs(5),
        });
        let now = Instant::now();
        let mut delivered = Vec::new();
        for (step, &i) in order.iter().enumerate() {
            let out = r.push(7, i as u32, count, 3, pieces[i], now).unwrap();
            prop_assert_eq!(out.is_some(), Some(step) == completes, "step {} piece {}", step, i);
            // Bytes held plus the fixed charge per piece, never more.
            prop_assert!(r.held_bytes() <= payload.len() + n * PIECE_OVERHEAD);
            delivered.extend(out);
        }
        prop_assert_eq!(delivered.len(), 1, "exactly one delivery");
        prop_assert_eq!(&delivered[0].payload, &payload);
        prop_assert_eq!(delivered[0].kind, 3);
        // Late duplicates of a completed message hold nothing.
        prop_assert_eq!(r.held_bytes(), 0);
        prop_assert_eq!(r.held_messages(), 0);
    }

    #[test]
    fn reassembly_over_the_memory_caps_drops_cleanly(
        sizes in proptest::collection::vec(1usize..3000, 1..6),
        max_bytes in 64usize..4000,
        max_messages in 1usize..4,
        order_seed in proptest::collection::vec(any::<u32>(), 0..200),
        dups in proptest::collection::vec(any::<usize>(), 0..40),
    ) {
        const PIECE: usize = 100;
        let payloads: Vec<Vec<u8>> = sizes
            .iter()
            .enumerate()
            .map(|(m, &len)| (0..len).map(|j| (m * 31 + j * 7) as u8).collect())
            .collect();
        let pieces: Vec<Vec<&[u8]>> = payloads.iter().map(|p| split(p, PIECE).collect()).collect();
        // Every piece of every message, interleaved, with duplicates anywhere.
        let mut order: Vec<(usize, usize)> = pieces
            .iter()
            .enumerate()
            .flat_map(|(m, ps)| (0..ps.len()).map(move |i| (m, i)))
            .collect();
        let n = order.len();
        for (i, s) in order_seed.iter().enumerate() {
            order.swap(i % n, *s as usize % n);
        }
        for d in dups {
            let at = (d / n) % (order.len() + 1);
            order.insert(at, order[d % n]);
        }
        let timeout = Duration::from_secs(5);
        let mut r = Reassembler::new(ReassemblyLimits {
            max_message: 1 << 20, max_bytes, max_messages, max_piece: PIECE, timeout,
        });
        let now = Instant::now();
        // A model of what must be held: pieces by message; dropped partials hold nothing.
        let mut held: HashMap<usize, HashSet<usize>> = HashMap::new();
        let mut delivered = vec![false; payloads.len()];
        let mut over_cap = vec![0usize; payloads.len()];
        for (m, i) in order {
            let piece = pieces[m][i];
            match r.push(m as u32, i as u32, pieces[m].len() as u32, 9, piece, now) {
                Ok(Some(done)) => {
                    prop_assert!(!delivered[m], "message {} delivered twice", m);
                    prop_assert_eq!(&done.payload, &payloads[m]);
                    prop_assert_eq!(done.kind, 9);
                    delivered[m] = true;
                    held.remove(&m);
                }
                Ok(None) => {
                    if !delivered[m] {
                        held.entry(m).or_default().insert(i);
                    }
                }
                Err(drop) => {
                    prop_assert_eq!(drop, ReassemblyDrop::OverCap);
                    over_cap[m] += 1;
                    held.remove(&m);
                }
            }
            let model_bytes: usize = held
                .iter()
                .flat_map(|(m, is)| is.iter().map(|i| pieces[*m][*i].len() + PIECE_OVERHEAD))
                .sum();
            prop_assert!(r.held_bytes() <= max_bytes);
            prop_assert!(r.held_messages() <= max_messages);
            prop_assert_eq!(r.held_bytes(), model_bytes);
            prop_assert_eq!(r.held_messages(), held.len());
        }
        for (m, p) in payloads.iter().enumerate() {
            if p.len() + pieces[m].len() * PIECE_OVERHEAD > max_bytes {
                prop_assert!(!delivered[m] && over_cap[m] > 0, "message {} above the cap", m);
            }
        }
        prop_assert_eq!(r.expire(now + timeout * 2), held.len());
        prop_assert_eq!(r.held_bytes(), 0);
        prop_assert_eq!(r.held_messages(), 0);
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
        let list: Vec<VerifiedSummary> =
            updates.iter().map(|(n, i, v, _)| signed(*n, *i, *v)).collect();
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

        // Through the wire form as well, and every copy still verifies.
        let wire: Vec<SignedSummary> = list.iter().map(|v| v.signed().clone()).collect();
        let bytes = FoldMessage::Summaries(wire.clone()).encode();
        prop_assert_eq!(FoldMessage::decode(&bytes).unwrap(), FoldMessage::Summaries(wire.clone()));
        for (w, v) in wire.into_iter().zip(&list) {
            prop_assert_eq!(&w.verify(u64::MAX / 2).unwrap(), v);
        }
    }

    /// Anti-entropy: whatever updates a node lost, one digest round (it sends
    /// its digest, the peer answers with everything newer) leaves it holding at
    /// least what the peer holds, and applying the answer twice changes nothing.
    #[test]
    fn one_digest_round_heals_lost_updates(
        updates in proptest::collection::vec((0u64..5, 0u64..3, 0u64..6), 1..30),
        lost in proptest::collection::vec(any::<bool>(), 30),
    ) {
        let mut peer = Fold::new();
        let mut behind = Fold::new();
        for (i, (n, inc, v)) in updates.iter().enumerate() {
            peer.apply(signed(*n, *inc, *v));
            if !lost[i] {
                behind.apply(signed(*n, *inc, *v));
            }
        }
        let answer = peer.newer_than(&behind.digest());
        // The answer travels as a fold message.
        let FoldMessage::Summaries(answer) =
            FoldMessage::decode(&FoldMessage::Summaries(answer).encode()).unwrap()
        else {
            unreachable!("encoded summaries decode as summaries")
        };
        // Relayed copies verify: the owner's signature travels with them.
        let answer: Vec<VerifiedSummary> =
            answer.into_iter().map(|s| s.verify(u64::MAX / 2).unwrap()).collect();
        for s in &answer { behind.apply(s.clone()); }
        prop_assert!(peer.newer_than(&behind.digest()).is_empty(), "nothing newer is left");
        let healed = behind.clone();
        for s in answer { behind.apply(s); }
        prop_assert_eq!(&behind, &healed);
    }

    /// Any change to a signed summary's wire bytes (a flipped bit anywhere, a
    /// cut) is refused when decoded or verified, never a panic; only the bytes
    /// as signed verify.
    #[test]
    fn tampered_signed_summaries_are_refused(
        node in 0u64..4,
        ver in 0u64..6,
        flip in proptest::option::of((any::<usize>(), 0u8..8)),
        cut in proptest::option::of(any::<usize>()),
    ) {
        let original = signed(node, 1, ver).signed().clone();
        let mut bytes = postcard::to_stdvec(&original).unwrap();
        if let Some((at, bit)) = flip {
            let at = at % bytes.len();
            bytes[at] ^= 1 << bit;
        }
        if let Some(cut) = cut {
            bytes.truncate(cut % bytes.len());
        }
        match postcard::from_bytes::<SignedSummary>(&bytes) {
            Err(_) => {}
            Ok(decoded) => {
                let same = decoded == original;
                let verified = decoded.verify(u64::MAX / 2);
                prop_assert_eq!(verified.is_ok(), same, "tampered bytes verified");
            }
        }
        // Inside a fold message too: decoding never panics.
        let mut message = FoldMessage::Summaries(vec![original]).encode();
        if let Some((at, bit)) = flip {
            let at = at % message.len();
            message[at] ^= 1 << bit;
        }
        let _ = FoldMessage::decode(&message);
    }

    #[test]
    fn fold_messages_from_garbage_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = FoldMessage::decode(&bytes);
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

    #[test]
    fn peer_health_reasons_are_accepted_only_when_clean_and_short(
        chars in proptest::collection::vec(any::<char>(), 0..1400),
        control in proptest::option::of((any::<usize>(), 0u32..0x20)),
        unhealthy in any::<bool>(),
    ) {
        let mut reason: String = chars.into_iter().collect();
        if let Some((at, c)) = control {
            let boundaries: Vec<usize> =
                reason.char_indices().map(|(i, _)| i).chain([reason.len()]).collect();
            let at = boundaries[at % boundaries.len()];
            reason.insert(at, char::from_u32(c).unwrap_or('\0'));
        }
        let with = |reason: String| {
            let health = if unhealthy {
                DaemonHealth::Unhealthy { reason }
            } else {
                DaemonHealth::Degraded { reason }
            };
            NodeSummary {
                node: key(1).node_id(),
                incarnation: 1,
                version: 1,
                produced_at_ms: 0,
                software: "t".into(),
                resources: Resources::default(),
                admin: Default::default(),
                migrations: Vec::new(),
                daemons: vec![DaemonSummary::running(OriginHash(1), "d", health)],
            }
        };
        let clean = reason.len() <= MAX_HEALTH_REASON && !reason.chars().any(char::is_control);
        let raw = with(reason.clone());
        prop_assert_eq!(raw.validate().is_ok(), clean);
        let body = postcard::to_stdvec(&raw).unwrap();
        let unsigned = SignedSummary {
            owner: key(1).public(),
            signature: key(1).sign(&body),
            body,
        };
        let bytes = FoldMessage::Summaries(vec![unsigned]).encode();
        prop_assert_eq!(FoldMessage::decode(&bytes).is_ok(), clean);
        // What honest nodes send always passes: a daemon's report (sanitized, at
        // most 256 characters) and a panic message.
        let reported: String = sanitize(&reason).chars().take(256).collect();
        prop_assert!(with(reported).validate().is_ok());
        let panicked = format!("panicked: {}", sanitize(&reason));
        prop_assert!(with(panicked).validate().is_ok());
    }
}
