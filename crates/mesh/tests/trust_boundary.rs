//! The trust boundary, attacked for real: what a key holder who is not an
//! operator (a plain `MeshNode` with the cluster key) and a sender with no key
//! at all (raw UDP) can try, and that each attempt changes nothing on any node
//! and is counted in `MeshMetrics`.
//!
//! Deadlines are generous; everything waits for conditions.

use std::sync::Arc;
use std::time::Duration;

use mesh::admin::{AdminState, FreezeProof};
use mesh::fold::{
    DaemonSummary, FoldMessage, NodeSummary, Resources, SignedSummary, VerifiedSummary,
};
use mesh::testing::Cluster;
use mesh::{
    AdminCommand, ClusterKey, DaemonHealth, EntityKeypair, MeshConfig, MeshNode, MessageKind,
    NodeId, OriginHash, simulate,
};
use mesh_auth::{
    AdminVerifier, CommandClass, EnvelopeDraft, OperatorIdentity, OperatorRegistry, VerifierConfig,
};

const DEADLINE: Duration = Duration::from_secs(30);
const FOLD_KIND: MessageKind = MessageKind::named("mesh/fold/v1");
const KEY: [u8; 32] = [21; 32];

fn operator() -> OperatorIdentity {
    OperatorIdentity::from_keypair(EntityKeypair::from_seed(&[77; 32]))
}

fn config() -> MeshConfig {
    let mut reg = OperatorRegistry::new();
    reg.register_public(operator().public());
    let verifier = AdminVerifier::with_config(
        Arc::new(reg),
        VerifierConfig { ice_cooldown: Duration::ZERO, ..VerifierConfig::default() },
    );
    MeshConfig::new(ClusterKey::from_bytes(KEY)).admin_verifier(Arc::new(verifier))
}

async fn wait_until(mut condition: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while tokio::time::Instant::now() < deadline {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    condition()
}

/// A summary that, if believed, would cordon and freeze `node` and give it a
/// daemon that does not exist, with a stamp nothing could beat.
fn hostile_summary(node: NodeId) -> NodeSummary {
    NodeSummary {
        node,
        incarnation: u64::MAX,
        version: u64::MAX,
        produced_at_ms: 0,
        software: "0.1.0".into(),
        resources: Resources::default(),
        daemons: vec![DaemonSummary::running(OriginHash(0xbad), "phantom", DaemonHealth::Healthy)],
        admin: AdminState {
            cordoned: true,
            frozen_until_ms: Some(u64::MAX),
            freeze_set_at_ms: u64::MAX,
            ..AdminState::default()
        },
        migrations: Vec::new(),
    }
}

fn sign_as(body_of: &NodeSummary, owner: mesh::PublicKey, with: &EntityKeypair) -> SignedSummary {
    let body = postcard::to_stdvec(body_of).unwrap();
    let mut domain = b"meshdeck node summary v1\0".to_vec();
    domain.extend_from_slice(&body);
    SignedSummary { owner, signature: with.sign(&domain), body }
}

/// A key holder joins and tries to speak for others: forged summaries of a
/// real node (its public key with another signature, another key claiming its
/// id), a summary of a node that is not a member, a stamp from the far future,
/// and a freeze it claims for itself without operator signatures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_holder_cannot_speak_for_other_nodes_or_freeze_the_cluster() {
    let cluster = Cluster::start_with_deadline(3, config(), DEADLINE).await.unwrap();
    let nodes: Vec<&MeshNode> = cluster.nodes().collect();
    let victim = nodes[1];
    let attacker_key = EntityKeypair::generate();
    let attacker = MeshNode::start(
        MeshConfig::new(ClusterKey::from_bytes(KEY))
            .identity(attacker_key.clone())
            .seed(nodes[0].local_addr().to_string()),
    )
    .await
    .unwrap();
    assert!(
        wait_until(|| nodes.iter().all(|n| n
            .peers()
            .iter()
            .any(|p| p.node_id == attacker.node_id() && p.health.is_healthy())))
        .await
    );

    let forged = hostile_summary(victim.node_id());
    // 1. The victim's public key, the attacker's signature: refused as a bad
    // signature with a plausible stamp, as implausible with u64::MAX.
    let mut plausible = forged.clone();
    plausible.incarnation = mesh_auth::unix_now_ms();
    let stolen_key = sign_as(&plausible, victim.public_key(), &attacker_key);
    let stolen_max = sign_as(&forged, victim.public_key(), &attacker_key);
    // 2. The attacker's own key, claiming the victim's id.
    let wrong_owner = sign_as(&forged, attacker_key.public(), &attacker_key);
    // 3. A node nobody has heard of, validly self-signed.
    let stranger = EntityKeypair::generate();
    let mut unknown = hostile_summary(stranger.node_id());
    unknown.incarnation = 1;
    let unknown = VerifiedSummary::sign(unknown, &stranger).unwrap().signed().clone();
    // 4. The attacker's own summary, from an incarnation far in the future.
    let mut future = hostile_summary(attacker.node_id());
    future.incarnation = mesh_auth::unix_now_ms() + 3_600_000;
    let future = VerifiedSummary::sign(future, &attacker_key).unwrap().signed().clone();

    let before: Vec<_> = nodes.iter().map(|n| n.metrics().refused).collect();
    for node in &nodes {
        for message in [
            FoldMessage::Summaries(vec![stolen_key.clone()]),
            FoldMessage::Summaries(vec![stolen_max.clone()]),
            FoldMessage::Summaries(vec![unknown.clone()]),
            FoldMessage::Summaries(vec![future.clone()]),
        ] {
            attacker.send(node.node_id(), FOLD_KIND, &message.encode()).await.unwrap();
        }
        let bytes = FoldMessage::Summaries(vec![wrong_owner.clone()]).encode();
        attacker.send(node.node_id(), FOLD_KIND, &bytes).await.unwrap();
    }
    for (i, node) in nodes.iter().enumerate() {
        if i == 1 {
            continue; // The victim ignores anything about itself anyway.
        }
        let b = &before[i];
        assert!(
            wait_until(|| {
                let r = node.metrics().refused;
                r.fold_bad_signature > b.fold_bad_signature
                    && r.fold_not_member > b.fold_not_member
                    && r.fold_implausible_stamp > b.fold_implausible_stamp
            })
            .await,
            "node {i}: {:?}",
            node.metrics().refused
        );
    }

    // 5. The attacker's real summary says it is frozen, with no proof and then
    // with a proof nobody registered signed: nobody follows.
    let impostor = OperatorIdentity::from_keypair(EntityKeypair::generate());
    let freeze = AdminCommand::Freeze { ttl_ms: 3_600_000 };
    let unsigned_freeze = impostor.sign_command(
        EnvelopeDraft::new(freeze.class(), freeze.target(), freeze.to_payload())
            .blast_radius(simulate(&nodes[0].snapshot(), &freeze).digest(&freeze)),
    );
    for proof in [None, Some(FreezeProof::new(&unsigned_freeze))] {
        let mut own = hostile_summary(attacker.node_id());
        own.incarnation = mesh_auth::unix_now_ms();
        own.version = if proof.is_some() { u64::MAX } else { u64::MAX - 1 };
        own.daemons.clear();
        own.admin.freeze_proof = proof;
        let signed = VerifiedSummary::sign(own, &attacker_key).unwrap().signed().clone();
        for node in &nodes {
            let bytes = FoldMessage::Summaries(vec![signed.clone()]).encode();
            attacker.send(node.node_id(), FOLD_KIND, &bytes).await.unwrap();
        }
    }
    assert!(
        wait_until(|| nodes.iter().all(|n| n
            .snapshot()
            .peer(attacker.node_id())
            .is_some_and(|p| p.admin.frozen_until_ms == Some(u64::MAX))))
        .await,
        "the attacker's own (signed) claim is shown as its own"
    );
    // Give a few state ticks for any (wrong) adoption to happen.
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Nothing of it took hold anywhere: no cordon, no freeze, no phantom daemon.
    for node in &nodes {
        let snap = node.snapshot();
        assert!(!snap.frozen(), "{} shows a freeze", node.node_id());
        assert!(node.admin_state().frozen_until_ms.is_none());
        assert!(snap.daemon(OriginHash(0xbad)).is_none());
        assert!(snap.daemons.iter().all(|d| d.node != stranger.node_id()));
        if let Some(p) = snap.peer(victim.node_id()) {
            assert!(!p.admin.cordoned, "victim shown cordoned on {}", node.node_id());
        }
    }
    // Routine commands still go through (no freeze), and the victim's real news
    // still reaches everyone (its stamp was not hijacked).
    let cordon = AdminCommand::Cordon { node: victim.node_id() };
    let env = operator().sign_command(EnvelopeDraft::new(
        CommandClass::Routine,
        cordon.target(),
        cordon.to_payload(),
    ));
    assert!(victim.apply_admin(&env).is_accepted());
    assert!(
        wait_until(|| nodes.iter().all(|n| n.node_id() == victim.node_id()
            || n.snapshot().peer(victim.node_id()).is_some_and(|p| p.admin.cordoned)))
        .await
    );
}

/// Openers captured from a real node, replayed from many source ports by
/// someone without the cluster key: each is refused before any DH work, the
/// node keeps its sessions, and a new node still joins through it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_and_stale_handshake_openers_are_refused_cheaply() {
    let cluster = Cluster::start_with_deadline(2, config(), DEADLINE).await.unwrap();
    let target = cluster.nth(0).unwrap();
    // Capture openers: a node whose only seed is our plain socket.
    let capture = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    capture.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let dialler = MeshNode::start(
        MeshConfig::new(ClusterKey::from_bytes(KEY))
            .seed(capture.local_addr().unwrap().to_string()),
    )
    .await
    .unwrap();
    let mut buf = [0u8; 2048];
    let opener = loop {
        let (n, _) = capture.recv_from(&mut buf).expect("an opener from the dialler");
        if n > 2 && buf[0] == mesh::wire::WIRE_VERSION && buf[1] == 1 {
            break buf[..n].to_vec();
        }
    };
    drop(dialler);

    let before = target.metrics();
    let flooders: Vec<_> =
        (0..16).map(|_| std::net::UdpSocket::bind("127.0.0.1:0").unwrap()).collect();
    const COPIES: usize = 2_000;
    for i in 0..COPIES {
        flooders[i % flooders.len()].send_to(&opener, target.local_addr()).unwrap();
        if i % 200 == 199 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    // The same opener with its timestamp moved into the past: stale.
    let mut stale = opener.clone();
    stale[6..14].copy_from_slice(&1u64.to_le_bytes());
    // And moved by one millisecond: it no longer matches the Noise prologue.
    let mut shifted = opener.clone();
    let ts = u64::from_le_bytes(opener[6..14].try_into().unwrap());
    shifted[6..14].copy_from_slice(&(ts + 1).to_le_bytes());
    shifted[14] ^= 0xff; // another ephemeral key, so it is not a replay
    for d in [&stale, &shifted] {
        flooders[0].send_to(d, target.local_addr()).unwrap();
    }
    assert!(
        wait_until(|| {
            let m = target.metrics();
            // The first copy is answered once (it is a valid opener the target
            // never saw); every later one is a replay.
            m.refused.handshake_replayed >= before.refused.handshake_replayed + COPIES as u64 / 2
                && m.refused.handshake_stale > before.refused.handshake_stale
                && m.dropped.not_authenticated > before.dropped.not_authenticated
        })
        .await,
        "{:?}",
        target.metrics()
    );
    let after = target.metrics();
    assert!(after.handshakes_ok - before.handshakes_ok <= 1, "a replay completed a handshake");
    // The existing session is undisturbed, and a newcomer joins through it.
    assert!(target.peers().iter().all(|p| p.health.is_healthy()));
    let newcomer = MeshNode::start(
        MeshConfig::new(ClusterKey::from_bytes(KEY)).seed(target.local_addr().to_string()),
    )
    .await
    .unwrap();
    assert!(
        wait_until(|| target
            .peers()
            .iter()
            .any(|p| p.node_id == newcomer.node_id() && p.health.is_healthy()))
        .await
    );
}

/// A key holder's gossip about members it made up (records for ids not its
/// keys', altered after signing, at addresses nobody can be reached at, far in
/// the future) and slander about a real member at an incarnation it never
/// signed: refused and counted, the member list unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_member_records_and_slander_are_refused() {
    let cluster = Cluster::start_with_deadline(3, config(), DEADLINE).await.unwrap();
    let (victim, attacker, bystander) =
        (cluster.nth(0).unwrap(), cluster.nth(1).unwrap(), cluster.nth(2).unwrap());
    let keys: Vec<EntityKeypair> = (0..50).map(|_| EntityKeypair::generate()).collect();
    let before = victim.metrics().refused;
    assert!(attacker.handle().testing_send_forged_members(
        victim.node_id(),
        bystander.node_id(),
        &keys
    ));
    assert!(
        wait_until(|| {
            let r = victim.metrics().refused;
            r.member_wrong_owner >= before.member_wrong_owner + 50
                && r.member_bad_signature >= before.member_bad_signature + 50
                && r.member_implausible >= before.member_implausible + 100
        })
        .await,
        "{:?}",
        victim.metrics().refused
    );
    // Nobody made up is a member, and the slandered member is still healthy.
    let peers = victim.peers();
    assert_eq!(peers.len(), 2, "{peers:?}");
    assert!(peers.iter().all(|p| p.health.is_healthy()), "{peers:?}");
}
