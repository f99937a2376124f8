//! The commit path without a cluster: the pure steps under proptest, and the
//! whole function against a source that answers out of order.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use mesh::{AdminCommand, AdminOutcome, MeshSnapshot, NodeId};
use mesh_auth::{EntityKeypair, OperatorId, OperatorIdentity, SignedEnvelope};
use parking_lot::{Mutex, RwLock};
use proptest::prelude::*;
use tokio::sync::watch;

use super::*;
use crate::data::DeckData;
use crate::report::NodeResult;
use crate::source::{BoxFuture, DataRef, RefreshReport};
use crate::testkit;

fn operator(seed: u8) -> OperatorIdentity {
    OperatorIdentity::from_keypair(EntityKeypair::from_seed(&[seed; 32]))
}

/// A cluster of `nodes` nodes running the demo's daemons.
fn cluster(nodes: u64) -> MeshSnapshot {
    testkit::snapshot(nodes, testkit::demo_daemons(nodes))
}

/// Any command on a node of `nodes`, or cluster-wide.
fn command(nodes: u64) -> impl Strategy<Value = AdminCommand> {
    let node = (0..nodes).prop_map(testkit::node_id);
    let ms = 1u64..10_000_000;
    prop_oneof![
        node.clone().prop_map(|node| AdminCommand::Cordon { node }),
        node.clone().prop_map(|node| AdminCommand::Uncordon { node }),
        (node.clone(), ms.clone())
            .prop_map(|(node, window_ms)| AdminCommand::Drain { node, window_ms }),
        (node.clone(), proptest::option::of(ms.clone()))
            .prop_map(|(node, window_ms)| AdminCommand::EnterMaintenance { node, window_ms }),
        node.clone().prop_map(|node| AdminCommand::RestartDaemons { node }),
        node.prop_map(|node| AdminCommand::ClearAvoidList { node }),
        ms.prop_map(|ttl_ms| AdminCommand::Freeze { ttl_ms }),
        Just(AdminCommand::Thaw),
        Just(AdminCommand::FlushAvoidLists),
    ]
}

/// Every signature on `envelope` verifies, one per signer, in signing order.
fn signed_by(envelope: &SignedEnvelope, signers: &[&OperatorIdentity]) -> bool {
    let bytes = envelope.body.signing_bytes();
    envelope.signatures.len() == signers.len()
        && envelope.signatures.iter().zip(signers).all(|(entry, signer)| {
            entry.public == signer.public() && entry.public.verify(&bytes, &entry.signature)
        })
}

#[test]
fn never_unsigned_and_ice_carries_the_digest() {
    let snap = cluster(3);
    let (a, b) = (operator(1), operator(2));
    let freeze = PendingAction::prepare(AdminCommand::Freeze { ttl_ms: 1000 }, &snap);
    assert!(sign(&[], &freeze.command, freeze.digest).is_none(), "never unsigned");
    assert!(envelopes(&freeze, &[]).is_empty());
    let env = sign(&[&a, &b], &freeze.command, freeze.digest).unwrap();
    assert!(signed_by(&env, &[&a, &b]));
    assert_eq!(env.body.blast_radius, Some(freeze.digest));
    assert_eq!(env.body.target, "cluster/freeze");
    let me = snap.this_node.node_id;
    let cordon = PendingAction::prepare(AdminCommand::Cordon { node: me }, &snap);
    let env = sign(&[&a], &cordon.command, cordon.digest).unwrap();
    assert_eq!(env.body.blast_radius, None);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// An action checks out against the snapshot it was prepared on, and against
    /// another one exactly when the simulation there gives the same digest; the
    /// fresh action keeps the co-signers.
    #[test]
    fn recheck_refuses_exactly_when_the_radius_moved(
        nodes in 2u64..6,
        command in command(6),
        daemons in 0u64..4,
        cosign in any::<bool>(),
    ) {
        let before = cluster(nodes);
        let mut pending = PendingAction::prepare(command.clone(), &before);
        if cosign {
            pending = pending.cosign(operator(9));
        }
        prop_assert!(recheck(&pending, &before).is_ok());
        // The cluster changed: daemons left or arrived on node 1.
        let mut after = testkit::snapshot(nodes, testkit::demo_daemons(nodes));
        after.daemons.truncate(after.daemons.len().saturating_sub(daemons as usize));
        after.daemons.push(testkit::daemon("late_arrival", 9000 + daemons, 1));
        let moved = PendingAction::prepare(command, &after).digest != pending.digest;
        match recheck(&pending, &after) {
            Ok(()) => prop_assert!(!moved),
            Err(DeckError::BlastRadiusChanged { fresh }) => {
                prop_assert!(moved);
                prop_assert_eq!(fresh.digest, fresh.radius.digest(&fresh.command));
                prop_assert_eq!(fresh.cosigners(), pending.cosigners());
            }
            Err(other) => return Err(TestCaseError::fail(format!("unexpected {other}"))),
        }
    }

    /// Signers: the source's first, then the co-signers, every operator once.
    #[test]
    fn signers_keep_order_and_drop_repeats(
        own in proptest::collection::vec(1u8..6, 0..4),
        extra in proptest::collection::vec(1u8..6, 0..4),
    ) {
        let own: Vec<OperatorIdentity> = own.into_iter().map(operator).collect();
        let extra: Vec<OperatorIdentity> = extra.into_iter().map(operator).collect();
        let got: Vec<OperatorId> = signers(&own, &extra).iter().map(|s| s.operator_id()).collect();
        let mut want: Vec<OperatorId> = Vec::new();
        for s in own.iter().chain(&extra) {
            if !want.contains(&s.operator_id()) {
                want.push(s.operator_id());
            }
        }
        prop_assert_eq!(got, want);
    }

    /// One envelope per target, in target order, each with its own nonce, signed
    /// by every signer, carrying the command (and the digest when ICE).
    #[test]
    fn one_signed_envelope_per_target(
        nodes in 1u64..8,
        command in command(8),
        seeds in proptest::collection::vec(1u8..6, 1..4),
    ) {
        let snap = cluster(nodes);
        let pending = PendingAction::prepare(command.clone(), &snap);
        let identities: Vec<OperatorIdentity> = seeds.into_iter().map(operator).collect();
        let signers = signers(&identities, &[]);
        let sent = envelopes(&pending, &signers);
        let to: Vec<NodeId> = sent.iter().map(|(n, _)| *n).collect();
        prop_assert_eq!(&to, &pending.targets);
        let nonces: HashSet<[u8; 16]> = sent.iter().map(|(_, e)| e.body.nonce).collect();
        prop_assert_eq!(nonces.len(), sent.len(), "a nonce was used twice");
        for (_, envelope) in &sent {
            prop_assert!(signed_by(envelope, &signers));
            prop_assert_eq!(&envelope.body.target, &command.target());
            prop_assert_eq!(&envelope.body.payload, &command.to_payload());
            let ice = pending.is_ice();
            prop_assert_eq!(envelope.body.blast_radius, ice.then_some(pending.digest));
        }
    }

    /// However the answers arrive, the report lists them in target order, for
    /// the command that was signed, with who signed it.
    #[test]
    fn reports_list_answers_in_target_order(
        nodes in 1u64..8,
        shuffle in any::<u64>(),
        sent_at in any::<u64>(),
    ) {
        let snap = cluster(nodes);
        let pending = PendingAction::prepare(AdminCommand::Thaw, &snap);
        let mut answers: Vec<(usize, NodeOutcome)> = pending
            .targets
            .iter()
            .enumerate()
            .map(|(i, &node)| (i, NodeOutcome { node, result: accepted(i as u64) }))
            .collect();
        // A deterministic shuffle.
        let len = answers.len();
        for i in 0..len {
            let j = (shuffle.rotate_left(i as u32) as usize) % len;
            answers.swap(i, j);
        }
        let (a, b) = (operator(1), operator(2));
        let report = assemble(&pending, &[&a, &b], sent_at, answers);
        let order: Vec<NodeId> = report.outcomes.iter().map(|o| o.node).collect();
        prop_assert_eq!(order, pending.targets.clone());
        prop_assert_eq!(report.verb, "thaw");
        prop_assert_eq!(&report.target, &AdminCommand::Thaw.target());
        prop_assert_eq!(&report.signers, &vec![a.operator_id(), b.operator_id()]);
        prop_assert_eq!(report.sent_at_ms, sent_at);
        prop_assert!(report.all_accepted());
    }
}

fn accepted(audit_seq: u64) -> NodeResult {
    NodeResult::Delivered(AdminOutcome::Accepted { audit_seq, effect: "thawed".into() })
}

/// A source whose nodes answer in reverse order of their targets, and that
/// remembers what it carried and kept.
struct Fake {
    snapshot: Mutex<Arc<MeshSnapshot>>,
    data: RwLock<DeckData>,
    signers: Vec<OperatorIdentity>,
    sent: Arc<Mutex<Vec<(NodeId, SignedEnvelope)>>>,
    recorded: Mutex<Vec<CommitReport>>,
    changes: watch::Sender<u64>,
    snapshots: watch::Sender<Arc<MeshSnapshot>>,
}

impl Fake {
    fn new(snapshot: MeshSnapshot, signers: Vec<OperatorIdentity>) -> Fake {
        let snapshot = Arc::new(snapshot);
        let data = DeckData::new(snapshot.clone(), signers[0].operator_id(), &Default::default());
        Fake {
            data: RwLock::new(data),
            snapshots: watch::Sender::new(snapshot.clone()),
            snapshot: Mutex::new(snapshot),
            signers,
            sent: Arc::default(),
            recorded: Mutex::default(),
            changes: watch::Sender::new(0),
        }
    }
}

impl DeckSource for Fake {
    fn operator(&self) -> OperatorId {
        self.signers[0].operator_id()
    }
    fn node_id(&self) -> NodeId {
        self.snapshot.lock().this_node.node_id
    }
    fn data(&self) -> DataRef<'_> {
        DataRef::new(self.data.read())
    }
    fn current_snapshot(&self) -> Arc<MeshSnapshot> {
        self.snapshot.lock().clone()
    }
    fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }
    fn snapshot_changes(&self) -> watch::Receiver<Arc<MeshSnapshot>> {
        self.snapshots.subscribe()
    }
    fn refresh(&self) -> BoxFuture<'_, RefreshReport> {
        Box::pin(async { RefreshReport::default() })
    }
    fn sync_snapshot(&self) -> bool {
        false
    }
    fn signers(&self) -> &[OperatorIdentity] {
        &self.signers
    }
    fn deliver(&self, node: NodeId, envelope: SignedEnvelope) -> BoxFuture<'static, NodeResult> {
        let k = {
            let mut sent = self.sent.lock();
            sent.push((node, envelope));
            sent.len() as u64
        };
        Box::pin(async move {
            // Later targets answer sooner; node 2 is not reached at all.
            tokio::time::sleep(Duration::from_millis(50u64.saturating_sub(10 * k))).await;
            if node == testkit::node_id(2) {
                NodeResult::NotDelivered("no route".into())
            } else {
                accepted(k)
            }
        })
    }
    fn record(&self, report: CommitReport) {
        self.recorded.lock().push(report);
    }
}

#[tokio::test]
async fn commit_sends_once_per_target_and_reports_in_target_order() {
    let (a, b) = (operator(1), operator(2));
    let source = Fake::new(cluster(4), vec![a.clone()]);
    let pending = PendingAction::prepare(AdminCommand::FlushAvoidLists, &source.current_snapshot())
        .cosign(b.clone())
        .cosign(a.clone());
    let report = commit(&source, &pending).await.unwrap();
    let order: Vec<NodeId> = report.outcomes.iter().map(|o| o.node).collect();
    assert_eq!(order, pending.targets);
    assert_eq!(report.signers, vec![a.operator_id(), b.operator_id()]);
    assert_eq!(report.accepted(), 3);
    assert!(!report.outcomes[2].result.is_accepted(), "node 2 was not reached");
    let sent = source.sent.lock();
    assert_eq!(sent.len(), pending.targets.len(), "one envelope per target");
    assert!(sent.iter().all(|(_, e)| signed_by(e, &[&a, &b])));
    assert_eq!(*source.recorded.lock(), vec![report], "the report is kept");
}

#[tokio::test]
async fn commit_sends_nothing_when_the_radius_moved() {
    let source = Fake::new(cluster(3), vec![operator(1)]);
    let node = testkit::node_id(1);
    let pending = PendingAction::prepare(AdminCommand::RestartDaemons { node }, &cluster(3));
    let mut moved = cluster(3);
    moved.daemons.push(testkit::daemon("late_arrival", 9000, 1));
    *source.snapshot.lock() = Arc::new(moved);
    match commit(&source, &pending).await {
        Err(DeckError::BlastRadiusChanged { fresh }) => {
            assert_eq!(fresh.radius.daemons.len(), pending.radius.daemons.len() + 1);
        }
        other => panic!("expected BlastRadiusChanged, got {other:?}"),
    }
    assert!(source.sent.lock().is_empty(), "nothing was sent");
    assert!(source.recorded.lock().is_empty(), "nothing was kept");
}
