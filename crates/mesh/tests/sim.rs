//! Real nodes (real Noise, real fold) on the in-memory network of
//! `mesh::sim`, on tokio's paused clock: minutes of cluster life in seconds of
//! test time. Boot, a partition and its healing, and a crash.

use std::sync::Arc;
use std::time::Duration;

use mesh::sim::{SimConfig, SimNet, SimSocket};
use mesh::{ClusterKey, MeshConfig, MeshNode, NodeId, TimingProfile};
use tokio::time::Instant;

const KEY: [u8; 32] = [42; 32];

async fn boot(net: &SimNet, n: usize, timing: TimingProfile) -> Vec<(MeshNode, Arc<SimSocket>)> {
    let mut nodes: Vec<(MeshNode, Arc<SimSocket>)> = Vec::new();
    for i in 0..n {
        let socket = net.socket();
        let mut config = MeshConfig::new(ClusterKey::from_bytes(KEY)).timing(timing.clone());
        if i > 0 {
            config = config.seed(nodes[0].1.addr().to_string());
        }
        let node = MeshNode::start_with_transport(config, socket.clone()).await.unwrap();
        nodes.push((node, socket));
    }
    nodes
}

/// Waits in virtual time; returns how long it took, or None past `deadline`.
async fn wait(deadline: Duration, mut condition: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < deadline {
        if condition() {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    condition().then(|| start.elapsed())
}

fn sees_healthy(node: &MeshNode, others: &[NodeId]) -> bool {
    let peers = node.peers();
    others.iter().all(|id| {
        *id == node.node_id() || peers.iter().any(|p| p.node_id == *id && p.health.is_healthy())
    })
}

fn sees_unreachable(node: &MeshNode, others: &[NodeId]) -> bool {
    let peers = node.peers();
    others.iter().all(|id| peers.iter().any(|p| p.node_id == *id && p.health.is_unreachable()))
}

#[tokio::test(start_paused = true)]
async fn a_simulated_cluster_boots_splits_heals_and_sees_a_crash() {
    let net = SimNet::new(1, SimConfig::default());
    let mut nodes = boot(&net, 12, TimingProfile::loopback()).await;
    let ids: Vec<NodeId> = nodes.iter().map(|(n, _)| n.node_id()).collect();
    let booted = wait(Duration::from_secs(30), || nodes.iter().all(|(n, _)| sees_healthy(n, &ids)))
        .await
        .expect("12 nodes converge");
    println!("12 simulated nodes converged in {booted:?} of virtual time");

    // Split 6 / 6: each side sees the other go, and keeps its own.
    let (left, right): (Vec<_>, Vec<_>) = nodes.iter().enumerate().partition(|(i, _)| *i < 6);
    let left_addrs: Vec<_> = left.iter().map(|(_, (_, s))| s.addr()).collect();
    let right_addrs: Vec<_> = right.iter().map(|(_, (_, s))| s.addr()).collect();
    let (left_ids, right_ids) = (ids[..6].to_vec(), ids[6..].to_vec());
    net.partition(&[&left_addrs, &right_addrs]);
    let seen = wait(Duration::from_secs(30), || {
        nodes[..6]
            .iter()
            .all(|(n, _)| sees_unreachable(n, &right_ids) && sees_healthy(n, &left_ids))
            && nodes[6..]
                .iter()
                .all(|(n, _)| sees_unreachable(n, &left_ids) && sees_healthy(n, &right_ids))
    })
    .await
    .expect("both sides see the partition");
    println!("partition seen on both sides after {seen:?}");
    assert!(net.stats().partitioned > 0);

    // Heal: everyone healthy again.
    net.heal();
    let healed = wait(Duration::from_secs(60), || nodes.iter().all(|(n, _)| sees_healthy(n, &ids)))
        .await
        .expect("the cluster heals");
    println!("healed after {healed:?}");

    // A crash: the host leaves the network without a word.
    let (crashed, socket) = nodes.pop().unwrap();
    let gone = crashed.node_id();
    crashed.crash();
    net.remove(socket.addr());
    let detected =
        wait(Duration::from_secs(30), || nodes.iter().all(|(n, _)| sees_unreachable(n, &[gone])))
            .await
            .expect("the crash is seen everywhere");
    println!("crash seen everywhere after {detected:?}");
    assert!(detected < Duration::from_secs(5), "{detected:?}");
}
