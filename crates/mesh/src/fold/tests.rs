use super::*;
use crate::logs::sanitize;

fn daemon(id: u64, health: DaemonHealth) -> DaemonSummary {
    DaemonSummary::running(OriginHash(id), format!("d{id}"), health)
}

fn key(node: u64) -> EntityKeypair {
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&node.to_le_bytes());
    EntityKeypair::from_seed(&seed)
}

fn id(node: u64) -> NodeId {
    key(node).node_id()
}

/// A summary of test node `node` (its id is derived from its test key).
fn summary(node: u64, version: u64, daemons: Vec<DaemonSummary>) -> NodeSummary {
    NodeSummary {
        node: id(node),
        incarnation: 1,
        version,
        produced_at_ms: 0,
        software: "0.1.0".into(),
        resources: Resources::default(),
        daemons,
        admin: AdminState::default(),
        migrations: Vec::new(),
    }
}

fn with_reason(reason: &str) -> NodeSummary {
    let degraded = DaemonHealth::Degraded { reason: reason.to_owned() };
    let unhealthy = DaemonHealth::Unhealthy { reason: reason.to_owned() };
    summary(1, 1, vec![daemon(1, DaemonHealth::Healthy), daemon(2, degraded), daemon(3, unhealthy)])
}

#[test]
fn health_reasons_from_peers_are_checked() {
    assert_eq!(with_reason("disk slow").validate(), Ok(()));
    for evil in ["\x1b[2Jwiped", "two\nlines", "bell\x07", "nul\0", "c1\u{9b}31m"] {
        assert_eq!(
            with_reason(evil).validate(),
            Err("control characters in health reason"),
            "{evil:?}"
        );
    }
    let long = "x".repeat(MAX_HEALTH_REASON + 1);
    assert_eq!(with_reason(&long).validate(), Err("health reason too long"));
    assert_eq!(with_reason(&"x".repeat(MAX_HEALTH_REASON)).validate(), Ok(()));
    let mut s = summary(1, 1, Vec::new());
    s.software = "0.1.0\x1b[1m".into();
    assert!(s.validate().is_err());
}

#[test]
fn migration_text_from_peers_is_checked() {
    let migration = |name: &str, reason: &str| crate::migrate::MigrationSummary {
        id: crate::migrate::MigrationId(7),
        daemon: OriginHash(1),
        name: name.into(),
        source: NodeId(1),
        target: NodeId(2),
        phase: crate::migrate::MigrationPhase::Failed { reason: reason.into() },
        bytes_moved: 0,
        started_at_ms: 0,
        last_progress_ms: 0,
    };
    let with = |m| {
        let mut s = summary(1, 1, Vec::new());
        s.migrations = vec![m];
        s
    };
    assert_eq!(with(migration("worker", "restore failed: no disk")).validate(), Ok(()));
    assert!(with(migration("worker", "restore failed:\x1b[2J")).validate().is_err());
    assert!(with(migration("worker", "two\nlines")).validate().is_err());
    assert!(with(migration("wor\nker", "fine")).validate().is_err());
    let long = "x".repeat(MAX_HEALTH_REASON + 1);
    assert!(with(migration("worker", &long)).validate().is_err());
    // What a node sends is escaped first.
    assert!(with(migration("worker", &sanitize("two\nlines"))).validate().is_ok());
}

#[test]
fn reasons_an_honest_node_sends_are_accepted() {
    // The two ways a node fills a reason (daemon.rs): a daemon's own report,
    // sanitized and cut at 256 characters, and a panic message.
    let nasty: String = "é\x1b\n\u{85}x".repeat(2000);
    let reported: String = sanitize(&nasty).chars().take(256).collect();
    let panicked = format!("panicked: {}", sanitize(&nasty));
    for reason in [reported, panicked, sanitize(&"\u{7f}".repeat(5000))] {
        assert_eq!(with_reason(&reason).validate(), Ok(()), "{} bytes", reason.len());
    }
}

/// Signs a summary of test node `node`.
fn signed(node: u64, version: u64, daemons: Vec<DaemonSummary>) -> VerifiedSummary {
    sign(summary(node, version, daemons))
}

fn sign(s: NodeSummary) -> VerifiedSummary {
    let k = (0..16).map(key).find(|k| k.node_id() == s.node).expect("a test node");
    VerifiedSummary::sign(s, &k).unwrap()
}

/// Signs without the owner check (what a forger could put on the wire).
fn forge(s: &NodeSummary, with: &EntityKeypair) -> SignedSummary {
    let body = postcard::to_stdvec(s).unwrap();
    let signature = with.sign(&summary_signing_bytes(&body));
    SignedSummary { owner: with.public(), body, signature }
}

#[test]
fn only_the_owner_can_sign_and_receivers_check() {
    let s = summary(1, 1, vec![daemon(1, DaemonHealth::Healthy)]);
    // Signing for another node is refused at the source.
    assert!(matches!(
        VerifiedSummary::sign(s.clone(), &key(2)),
        Err(SummaryRefusal::WrongOwner { .. })
    ));
    let good = VerifiedSummary::sign(s.clone(), &key(1)).unwrap();
    let now = 1_000_000;
    assert_eq!(good.signed().clone().verify(now).unwrap(), good);
    // Another key claiming node 1: wrong owner.
    assert!(matches!(forge(&s, &key(2)).verify(now), Err(SummaryRefusal::WrongOwner { .. })));
    // Node 1's public key with someone else's signature.
    let mut stolen = forge(&s, &key(2));
    stolen.owner = key(1).public();
    assert_eq!(stolen.verify(now), Err(SummaryRefusal::BadSignature));
    // A changed body under the owner's signature.
    let mut changed = good.signed().clone();
    let mut inflated = s.clone();
    inflated.version = u64::MAX;
    changed.body = postcard::to_stdvec(&inflated).unwrap();
    assert_eq!(changed.verify(now), Err(SummaryRefusal::BadSignature));
    // An incarnation far ahead of the receiver's clock.
    let mut ahead = s.clone();
    ahead.incarnation = now + MAX_INCARNATION_SKEW_MS + 1;
    let ahead = VerifiedSummary::sign(ahead, &key(1)).unwrap();
    assert!(matches!(
        ahead.signed().clone().verify(now),
        Err(SummaryRefusal::ImplausibleStamp { .. })
    ));
}

#[test]
fn the_fold_is_capped() {
    let mut fold = Fold::new();
    let keys: Vec<EntityKeypair> = (0..MAX_FOLD_NODES as u64 + 1).map(key).collect();
    for k in &keys[..MAX_FOLD_NODES] {
        let mut s = summary(0, 1, Vec::new());
        s.node = k.node_id();
        assert!(fold.apply(VerifiedSummary::sign(s, k).unwrap()));
    }
    assert!(fold.is_full());
    let last = &keys[MAX_FOLD_NODES];
    let mut s = summary(0, 1, Vec::new());
    s.node = last.node_id();
    assert!(!fold.apply(VerifiedSummary::sign(s, last).unwrap()));
    assert_eq!(fold.len(), MAX_FOLD_NODES);
    // Nodes already held still take news.
    let mut s = summary(0, 2, Vec::new());
    s.node = keys[0].node_id();
    assert!(fold.apply(VerifiedSummary::sign(s, &keys[0]).unwrap()));
}

#[test]
fn bad_fold_messages_are_refused_whole_and_leave_the_fold_alone() {
    let mut fold = Fold::new();
    let good = signed(1, 1, vec![daemon(1, DaemonHealth::Healthy)]);
    assert!(fold.apply(good.clone()));
    let before = fold.clone();

    // A valid newer summary next to a bad one: the message is refused whole.
    let newer_good = signed(1, 2, Vec::new()).signed().clone();
    let bad = forge(
        &summary(2, 9, vec![daemon(7, DaemonHealth::Unhealthy { reason: "\x1b[2J".into() })]),
        &key(2),
    );
    let mut malformed = vec![FoldMessage::Summaries(vec![newer_good, bad]).encode()];
    // Invalid saturation, name, too many daemons.
    let mut sat = summary(1, 3, vec![daemon(1, DaemonHealth::Healthy)]);
    sat.daemons[0].saturation_milli = 1001;
    let mut name = summary(1, 3, vec![daemon(1, DaemonHealth::Healthy)]);
    name.daemons[0].name = "bad\nname".into();
    let many = summary(
        1,
        3,
        (0..=MAX_DAEMONS_PER_NODE as u64).map(|i| daemon(i, DaemonHealth::Healthy)).collect(),
    );
    for s in [sat, name, many] {
        malformed.push(FoldMessage::Summaries(vec![forge(&s, &key(1))]).encode());
    }
    // Truncated, garbage, and oversized bytes.
    let full = FoldMessage::Summaries(vec![good.signed().clone()]).encode();
    malformed.push(full[..full.len() / 2].to_vec());
    malformed.push(vec![0xff; 64]);
    malformed.push(vec![0; MAX_FOLD_MESSAGE + 1]);
    for bytes in &malformed {
        let decoded = FoldMessage::decode(bytes);
        assert!(decoded.is_err(), "{} bytes accepted", bytes.len());
        if let Ok(FoldMessage::Summaries(list)) = decoded {
            for s in list {
                if let Ok(v) = s.verify(u64::MAX / 2) {
                    fold.apply(v);
                }
            }
        }
    }
    assert_eq!(fold, before);
    // The fold still takes good news.
    let next = signed(1, 2, Vec::new());
    let Ok(FoldMessage::Summaries(list)) =
        FoldMessage::decode(&FoldMessage::Summaries(vec![next.signed().clone()]).encode())
    else {
        panic!("a valid message must decode");
    };
    assert!(list.into_iter().all(|s| fold.apply(s.verify(u64::MAX / 2).unwrap())));
    assert_eq!(fold.get(id(1)), Some(next.summary()));
}

#[test]
fn forgotten_summaries_stay_forgotten_until_the_node_is_back() {
    let mut fold = Fold::new();
    let old = signed(5, 3, vec![daemon(1, DaemonHealth::Healthy)]);
    fold.apply(old.clone());
    assert_eq!(fold.remove(id(5)).as_ref(), Some(old.summary()));
    assert_eq!(fold.forgotten(id(5)), Some((1, 3)));
    // A peer that still holds it offers it back (or an older one): ignored.
    assert!(!fold.apply(old.clone()));
    assert!(!fold.apply(signed(5, 1, Vec::new())));
    assert!(fold.get(id(5)).is_none());
    assert!(fold.digest().is_empty());
    // The node itself lives on (newer version) or restarted (new incarnation).
    let mut back = summary(5, 1, Vec::new());
    back.incarnation = 2;
    assert!(fold.apply(sign(back.clone())));
    assert_eq!(fold.forgotten(id(5)), None);
    assert_eq!(fold.get(id(5)), Some(&back));
    // Removing a node never heard of records nothing.
    assert_eq!(fold.remove(NodeId(77)), None);
    assert_eq!(fold.forgotten(NodeId(77)), None);
}

#[test]
fn forgotten_stamps_are_bounded() {
    let mut fold = Fold::new();
    for n in 0..(MAX_FORGOTTEN as u64 + 10) {
        let k = key(n);
        let mut s = summary(0, 1, Vec::new());
        s.node = k.node_id();
        fold.apply(VerifiedSummary::sign(s, &k).unwrap());
        fold.remove(k.node_id());
    }
    assert_eq!(fold.forgotten.len(), MAX_FORGOTTEN);
    assert_eq!(fold.forgotten_order.len(), MAX_FORGOTTEN);
    assert_eq!(fold.forgotten(id(0)), None);
    assert_eq!(fold.forgotten(id(MAX_FORGOTTEN as u64 + 9)), Some((1, 1)));
    assert!(fold.is_empty());
}

/// Anti-entropy by buckets: after Root, Buckets and Partial exchanges both
/// folds hold the newest of every summary, and the stamps exchanged cover
/// only the buckets that differed.
mod buckets {
    use super::*;
    use proptest::prelude::*;

    fn signed(node: u64, version: u64) -> VerifiedSummary {
        VerifiedSummary::sign(summary(node, version, Vec::new()), &key(node)).unwrap()
    }

    /// Root, Buckets, then a Partial each way, as two nodes run them;
    /// returns how many stamps were sent.
    fn exchange(a: &mut Fold, b: &mut Fold, pool: &[VerifiedSummary]) -> usize {
        let mut stamps_sent = 0;
        if a.root() == b.root() {
            return 0;
        }
        let buckets = a.differing_buckets(&b.bucket_hashes());
        let stamps = a.partial_digest(&buckets);
        stamps_sent += stamps.len();
        for s in b.newer_in(&buckets, &stamps) {
            let v = pool.iter().find(|v| v.signed() == &s).unwrap().clone();
            a.apply(v);
        }
        let stamps = b.partial_digest(&buckets);
        stamps_sent += stamps.len();
        for s in a.newer_in(&buckets, &stamps) {
            let v = pool.iter().find(|v| v.signed() == &s).unwrap().clone();
            b.apply(v);
        }
        stamps_sent
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn bucket_exchange_converges(
            a_has in proptest::collection::vec((0u64..40, 1u64..4), 0..40),
            b_has in proptest::collection::vec((0u64..40, 1u64..4), 0..40),
        ) {
            let mut pool = Vec::new();
            let (mut a, mut b) = (Fold::new(), Fold::new());
            for (fold, has) in [(&mut a, &a_has), (&mut b, &b_has)] {
                for &(node, version) in has {
                    let v = signed(node, version);
                    pool.push(v.clone());
                    fold.apply(v);
                }
            }
            exchange(&mut a, &mut b, &pool);
            prop_assert_eq!(a.root(), b.root());
            prop_assert_eq!(a.digest(), b.digest());
            prop_assert!(a.differing_buckets(&b.bucket_hashes()).is_empty());
        }
    }

    #[test]
    fn one_change_exchanges_one_bucket() {
        let all: Vec<VerifiedSummary> = (0..200).map(|n| signed(n, 1)).collect();
        let (mut a, mut b) = (Fold::new(), Fold::new());
        for v in &all {
            a.apply(v.clone());
            b.apply(v.clone());
        }
        let newer = signed(7, 2);
        a.apply(newer.clone());
        let mut pool = all.clone();
        pool.push(newer);
        assert_eq!(a.differing_buckets(&b.bucket_hashes()), vec![bucket_of(id(7))]);
        let sent = exchange(&mut a, &mut b, &pool);
        // Two partial digests of one bucket (about 200/64 entries each), not 200.
        assert!(sent < 30, "{sent} stamps exchanged");
        assert_eq!(a.root(), b.root());
    }

    #[test]
    fn malformed_bucket_messages_are_refused() {
        let short = FoldMessage::Buckets(vec![[0; 8]; 3]).encode();
        assert!(FoldMessage::decode(&short).is_err());
        let out_of_range = FoldMessage::Partial { buckets: vec![64], stamps: Vec::new() }.encode();
        assert!(FoldMessage::decode(&out_of_range).is_err());
        let fine = FoldMessage::Buckets(vec![[0; 8]; FOLD_BUCKETS]).encode();
        assert!(FoldMessage::decode(&fine).is_ok());
    }
}
