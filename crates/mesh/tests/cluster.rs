//! Multi-node behaviour on 127.0.0.1: convergence, failure detection, restart,
//! cluster-key isolation, fragmentation and hostile datagrams.
//!
//! Deadlines are generous (the machine may be loaded); the speed figures live in
//! `cargo xtask bench mesh`, not here.

use std::time::Duration;

use mesh::testing::Cluster;
use mesh::{ClusterKey, EntityKeypair, MeshConfig, MeshError, MeshNode, MessageKind};

const DEADLINE: Duration = Duration::from_secs(30);
const KIND: MessageKind = MessageKind::named("tests/bulk/v1");

fn config() -> MeshConfig {
    MeshConfig::new(ClusterKey::from_bytes([42; 32]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nine_nodes_converge_detect_failure_and_heal() {
    let mut cluster = Cluster::start_with_deadline(9, config(), DEADLINE).await.unwrap();
    for node in cluster.nodes() {
        let peers = node.peers();
        assert_eq!(peers.len(), 8);
        assert!(peers.iter().all(|p| p.health.is_healthy()), "{peers:?}");
    }
    // Real round trips get measured.
    assert!(
        cluster
            .wait_for(DEADLINE, |c| c.nodes().all(|n| n.peers().iter().all(|p| p.rtt.is_some())))
            .await
    );

    // Kill node 4: every other node marks it Unreachable.
    let victim = cluster.identity(4).unwrap().node_id();
    cluster.kill(4).unwrap();
    let seen = cluster
        .wait_for(DEADLINE, |c| {
            c.nodes()
                .all(|n| n.peers().iter().any(|p| p.node_id == victim && p.health.is_unreachable()))
        })
        .await;
    assert!(seen, "not every node marked the dead node Unreachable");
    for node in cluster.nodes() {
        let p = node.peers().into_iter().find(|p| p.node_id == victim).unwrap();
        assert!(p.health.reason().unwrap().contains("no answer"), "{:?}", p.health);
    }

    // Restart it (same identity, same address): Healthy again everywhere.
    cluster.restart(4).await.unwrap();
    cluster.wait_converged(DEADLINE).await.unwrap();
    cluster.shutdown().await;
    cluster.shutdown().await; // idempotent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_leave_is_seen_at_once() {
    let cluster = Cluster::start_with_deadline(3, config(), DEADLINE).await.unwrap();
    let leaving = cluster.identity(2).unwrap().node_id();
    cluster.nth(2).unwrap().shutdown().await;
    let seen =
        cluster
            .wait_for(Duration::from_millis(700), |c| {
                [0, 1].iter().all(|&i| {
                    c.nth(i).unwrap().peers().iter().any(|p| {
                        p.node_id == leaving && p.health.reason() == Some("left the cluster")
                    })
                })
            })
            .await;
    assert!(seen, "a clean leave should be visible before the failure detector fires");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_cluster_key_never_joins() {
    let cluster = Cluster::start_with_deadline(3, config(), DEADLINE).await.unwrap();
    let seed = cluster.nth(0).unwrap().local_addr().to_string();
    let stranger =
        MeshNode::start(MeshConfig::new(ClusterKey::from_bytes([7; 32])).seed(seed)).await.unwrap();
    // Give it ample time to try (it redials its seed repeatedly).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for node in cluster.nodes() {
        assert!(node.peers().iter().all(|p| p.node_id != stranger.node_id()));
        assert_eq!(node.peers().len(), 2);
    }
    assert!(stranger.peers().is_empty());
    let refused = cluster.nth(0).unwrap().metrics().dropped.not_authenticated;
    assert!(refused > 0, "the seed should count the stranger's handshakes as not authenticated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_list_refuses_other_keys() {
    let key_a = EntityKeypair::generate();
    let key_b = EntityKeypair::generate();
    let a = MeshNode::start(config().identity(key_a.clone()).allow_only([key_a.public()]))
        .await
        .unwrap();
    let b =
        MeshNode::start(config().identity(key_b).seed(a.local_addr().to_string())).await.unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(a.peers().is_empty());
    assert!(b.peers().is_empty(), "b must not keep a session a refused");
    assert!(a.metrics().handshakes_failed > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_mebibyte_message_through_fragmentation() {
    let cluster = Cluster::start_with_deadline(2, config(), DEADLINE).await.unwrap();
    let (a, b) = (cluster.nth(0).unwrap(), cluster.nth(1).unwrap());
    let mut inbox = b.subscribe_messages(KIND).unwrap();
    let payload: Vec<u8> = (0..1024 * 1024u32).map(|i| (i * 31 % 251) as u8).collect();
    a.send(b.node_id(), KIND, &payload).await.unwrap();
    let got = tokio::time::timeout(DEADLINE, inbox.recv()).await.unwrap().unwrap();
    assert_eq!(got.from, a.node_id());
    assert_eq!(got.payload.len(), payload.len());
    assert!(got.payload == payload);
    // And a small one both ways.
    let mut inbox_a = a.subscribe_messages(KIND).unwrap();
    b.send(a.node_id(), KIND, b"pong").await.unwrap();
    let got = tokio::time::timeout(DEADLINE, inbox_a.recv()).await.unwrap().unwrap();
    assert_eq!(&got.payload[..], b"pong");
    assert_eq!(a.metrics().dropped.replay, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_datagrams_are_counted_and_harmless() {
    let cluster = Cluster::start_with_deadline(2, config(), DEADLINE).await.unwrap();
    let (a, b) = (cluster.nth(0).unwrap(), cluster.nth(1).unwrap());
    let target = a.local_addr();
    let attacker = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();

    let v = mesh::wire::WIRE_VERSION;
    let mut hostile: Vec<Vec<u8>> =
        vec![vec![], vec![v], vec![9, 9, 9], vec![v, 4, 0, 0, 0, 0], vec![0xff; 40_000]];
    // Transport packets for made-up sessions, and garbage handshakes: fresh
    // timestamps but no cluster key (refused by the AEAD check, or by the
    // per-source budget first), and openers smaller than an answer would be.
    let now_ms = mesh_auth::unix_now_ms();
    for i in 0..50u32 {
        let mut t = vec![v, 4];
        t.extend_from_slice(&i.to_le_bytes());
        t.extend_from_slice(&(i as u64).to_le_bytes());
        t.extend_from_slice(&[0xab; 40]);
        hostile.push(t);
        let mut h = vec![v, 1];
        h.extend_from_slice(&i.to_le_bytes());
        h.extend_from_slice(&now_ms.to_le_bytes());
        let mut small = h.clone();
        h.extend_from_slice(&[i as u8; 300]);
        hostile.push(h);
        small.extend_from_slice(&[i as u8; 80]);
        hostile.push(small);
    }
    for d in &hostile {
        attacker.send_to(d, target).await.unwrap();
    }
    let counted = cluster
        .wait_for(DEADLINE, |_| {
            let m = a.metrics();
            let d = &m.dropped;
            d.malformed >= 4
                && d.too_large >= 1
                && d.unknown_session >= 50
                && d.not_authenticated >= 1
                && d.not_authenticated + m.refused.handshake_over_budget >= 50
                && m.refused.handshake_undersized >= 50
        })
        .await;
    assert!(counted, "{:?}", a.metrics());

    // The session between a and b is undisturbed.
    let mut inbox = a.subscribe_messages(KIND).unwrap();
    b.send(a.node_id(), KIND, b"still fine").await.unwrap();
    let got = tokio::time::timeout(DEADLINE, inbox.recv()).await.unwrap().unwrap();
    assert_eq!(&got.payload[..], b"still fine");
    assert!(a.peers().iter().all(|p| p.health.is_healthy()));
}

#[tokio::test]
async fn bad_configuration_is_a_clear_error() {
    let a = MeshNode::start(config()).await.unwrap();
    let err = MeshNode::start(config().bind(a.local_addr())).await.unwrap_err();
    assert!(matches!(err, MeshError::Bind { .. }), "{err}");
    assert!(err.to_string().contains(&a.local_addr().to_string()));

    for bad in ["not an address", "127.0.0.1:0", "0.0.0.0:9000", "127.0.0.1"] {
        let err = MeshNode::start(config().seed(bad)).await.unwrap_err();
        assert!(matches!(err, MeshError::BadSeed { .. }), "{bad}: {err}");
    }
    let mut tiny = config();
    tiny.limits.datagram_budget = 10;
    assert!(matches!(MeshNode::start(tiny).await.unwrap_err(), MeshError::Config(_)));
    a.shutdown().await;
    a.shutdown().await;
    assert!(a.subscribe_messages(KIND).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_with_a_new_identity_rejoins() {
    let mut cluster = Cluster::start_with_deadline(4, config(), DEADLINE).await.unwrap();
    let old_id = cluster.identity(2).unwrap().node_id();
    let addr = cluster.nth(2).unwrap().local_addr();

    // Node 2 dies and comes back at once on the same address with new keys.
    cluster.kill(2).unwrap();
    let new_id = cluster.restart_with_new_identity(2).await.unwrap();
    assert_ne!(new_id, old_id);
    assert_eq!(cluster.identity(2).unwrap().node_id(), new_id);
    let reborn = cluster.nth(2).unwrap();
    assert_eq!(reborn.node_id(), new_id);
    assert_eq!(reborn.local_addr(), addr);

    // Every other node sees the new id Healthy, and the old id gone or
    // Unreachable (it is never confused with the new one).
    let others = [0usize, 1, 3];
    let settled = cluster
        .wait_for(DEADLINE, |c| {
            others.iter().all(|&i| {
                let peers = c.nth(i).unwrap().peers();
                let new_ok = peers.iter().any(|p| p.node_id == new_id && p.health.is_healthy());
                let old_ok = peers.iter().all(|p| p.node_id != old_id || p.health.is_unreachable());
                new_ok && old_ok
            })
        })
        .await;
    let seen: Vec<_> = others
        .iter()
        .map(|&i| {
            let peers = cluster.nth(i).unwrap().peers();
            peers.into_iter().map(|p| (p.node_id, p.health.label())).collect::<Vec<_>>()
        })
        .collect();
    assert!(settled, "old {old_id}, new {new_id}, seen: {seen:?}");
    // The newcomer sees everyone, and the cluster is whole under the new id.
    cluster.wait_converged(DEADLINE).await.unwrap();
    let reborn = cluster.nth(2).unwrap();
    // The old identity may still be listed (as left or unreachable, until it
    // is forgotten), never as healthy.
    assert!(reborn.peers().iter().all(|p| p.node_id != old_id || p.health.is_unreachable()));
    for &i in &others {
        let addr_of_new = cluster
            .nth(i)
            .unwrap()
            .peers()
            .into_iter()
            .find(|p| p.node_id == new_id)
            .map(|p| p.addr);
        assert_eq!(addr_of_new, Some(addr));
    }
    // Restarting a running node, or one that does not exist, is refused.
    assert!(cluster.restart_with_new_identity(2).await.is_err());
    assert!(cluster.restart_with_new_identity(9).await.is_err());
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inline_handlers_run_on_receive_and_unregister_on_drop() {
    let cluster = Cluster::start_with_deadline(2, config(), DEADLINE).await.unwrap();
    let (a, b) = (cluster.nth(0).unwrap(), cluster.nth(1).unwrap());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let guard = a
        .handle()
        .on_message(KIND, move |m| {
            let _ = tx.send(m.payload.len());
        })
        .unwrap();
    b.send(a.node_id(), KIND, &[0u8; 3000]).await.unwrap();
    assert_eq!(tokio::time::timeout(DEADLINE, rx.recv()).await.unwrap(), Some(3000));
    drop(guard);
    let before = a.metrics().dropped.no_subscriber;
    b.send(a.node_id(), KIND, b"x").await.unwrap();
    assert!(cluster.wait_for(DEADLINE, |_| a.metrics().dropped.no_subscriber > before).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_now_answers_from_an_inline_handler_and_refuses_what_needs_fragments() {
    let cluster = Cluster::start_with_deadline(2, config(), DEADLINE).await.unwrap();
    let (a, b) = (cluster.nth(0).unwrap(), cluster.nth(1).unwrap());
    const PING: MessageKind = MessageKind::named("tests/ping/v1");
    const PONG: MessageKind = MessageKind::named("tests/pong/v1");
    // b answers every ping from inside its inline handler, without a task.
    let b_handle = b.handle();
    let _echo = b
        .handle()
        .on_message(PING, move |m| b_handle.send_now(m.from, PONG, &m.payload).unwrap())
        .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let _pongs = a
        .handle()
        .on_message(PONG, move |m| {
            let _ = tx.send(m.payload);
        })
        .unwrap();
    let max = a.handle().single_datagram_max();
    assert!(max > 1000 && max < 1500, "{max}");
    for size in [0, 1, 32, max] {
        let payload: Vec<u8> = (0..size).map(|i| i as u8).collect();
        a.handle().send_now(b.node_id(), PING, &payload).unwrap();
        let back = tokio::time::timeout(DEADLINE, rx.recv()).await.unwrap().unwrap();
        assert_eq!(&back[..], &payload[..], "size {size}");
    }
    // One byte more would need fragments: refused with the single-datagram limit.
    let err = a.handle().send_now(b.node_id(), PING, &vec![0; max + 1]).unwrap_err();
    assert_eq!(err, mesh::SendError::TooLarge { size: max + 1, max });
    // Unknown nodes fail as with `send`.
    let stranger = EntityKeypair::generate().node_id();
    assert_eq!(
        a.handle().send_now(stranger, PING, b"x").unwrap_err(),
        mesh::SendError::NoRoute(stranger)
    );
}
