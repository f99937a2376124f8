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

/// One step of a fault schedule.
#[derive(Clone, Debug)]
enum Step {
    /// Cut the live nodes into two groups by this bit mask.
    Partition(u16),
    /// End every partition.
    Heal,
    /// The i-th live node (modulo) crashes and leaves the network.
    Crash(usize),
    /// A new node joins through the i-th live node (modulo).
    Join(usize),
    /// Let virtual time pass.
    Wait(u64),
}

fn step() -> impl proptest::strategy::Strategy<Value = Step> {
    use proptest::prelude::*;
    prop_oneof![
        any::<u16>().prop_map(Step::Partition),
        Just(Step::Heal),
        (0usize..8).prop_map(Step::Crash),
        (0usize..8).prop_map(Step::Join),
        (100u64..8_000).prop_map(Step::Wait),
    ]
}

/// After healing, every live node sees every other live node healthy and no
/// crashed node healthy: the same member list everywhere.
async fn converges_after(schedule: Vec<Step>, seed: u64, loss: f64) -> Result<(), String> {
    let net = SimNet::new(seed, SimConfig { loss, ..SimConfig::default() });
    let mut live = boot(&net, 4, TimingProfile::loopback()).await;
    // The cluster forms before the faults start (a node whose only seed died
    // before answering never was a member).
    let ids: Vec<NodeId> = live.iter().map(|(n, _)| n.node_id()).collect();
    if wait(Duration::from_secs(30), || live.iter().all(|(n, _)| sees_healthy(n, &ids)))
        .await
        .is_none()
    {
        let views: Vec<_> = live
            .iter()
            .map(|(n, _)| {
                let peers: Vec<_> = n
                    .peers()
                    .iter()
                    .map(|p| (p.node_id, p.health.to_string(), p.sessions))
                    .collect();
                (n.node_id(), peers)
            })
            .collect();
        return Err(format!("the cluster did not form: {views:?}"));
    }
    let mut crashed: Vec<NodeId> = Vec::new();
    for s in schedule {
        match s {
            Step::Partition(mask) => {
                let (a, b): (Vec<_>, Vec<_>) =
                    live.iter().enumerate().partition(|(i, _)| mask & (1 << (i % 16)) != 0);
                let a: Vec<_> = a.iter().map(|(_, (_, s))| s.addr()).collect();
                let b: Vec<_> = b.iter().map(|(_, (_, s))| s.addr()).collect();
                net.partition(&[&a, &b]);
            }
            Step::Heal => net.heal(),
            Step::Crash(i) if live.len() > 2 => {
                let (node, socket) = live.remove(i % live.len());
                crashed.push(node.node_id());
                node.crash();
                net.remove(socket.addr());
            }
            Step::Crash(_) => {}
            Step::Join(i) if live.len() < 8 => {
                let seed = live[i % live.len()].1.addr();
                let socket = net.socket();
                let config = MeshConfig::new(ClusterKey::from_bytes(KEY))
                    .timing(TimingProfile::loopback())
                    .seed(seed.to_string());
                let node = MeshNode::start_with_transport(config, socket.clone()).await.unwrap();
                // A join is done when the newcomer has met its seed and the
                // members its seed reaches (it has the member list, and they
                // know it). Under a partition or loss that may take a while,
                // or never: then it was never a member and goes.
                let seed_node = &live[i % live.len()].0;
                let joined = wait(Duration::from_secs(10), || {
                    let mut reach: Vec<NodeId> = seed_node
                        .peers()
                        .iter()
                        .filter(|p| p.health.is_healthy() && p.node_id != node.node_id())
                        .map(|p| p.node_id)
                        .collect();
                    reach.push(seed_node.node_id());
                    sees_healthy(&node, &reach)
                })
                .await;
                if joined.is_some() {
                    live.push((node, socket));
                } else {
                    crashed.push(node.node_id());
                    node.crash();
                    net.remove(socket.addr());
                }
            }
            Step::Join(_) => {}
            Step::Wait(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
        }
    }
    net.heal();
    net.set_config(SimConfig::default());
    let ids: Vec<NodeId> = live.iter().map(|(n, _)| n.node_id()).collect();
    let agreed = wait(Duration::from_secs(120), || {
        live.iter().all(|(n, _)| {
            sees_healthy(n, &ids)
                && n.peers().iter().all(|p| !crashed.contains(&p.node_id) || !p.health.is_healthy())
        })
    })
    .await;
    match agreed {
        Some(_) => Ok(()),
        None => Err(format!(
            "no agreement after healing: {:?}",
            live.iter()
                .map(|(n, _)| (
                    n.node_id(),
                    n.peers()
                        .iter()
                        .map(|p| (p.node_id, p.health.label(), p.sessions))
                        .collect::<Vec<_>>()
                ))
                .collect::<Vec<_>>()
        )),
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig {
        cases: 16,
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::Direct("proptest-regressions/sim.txt"),
        )),
        ..proptest::prelude::ProptestConfig::default()
    })]

    /// Any schedule of joins, crashes, partitions and waits (with 10 % loss
    /// while it runs) converges, once healed, to one member list.
    #[test]
    fn any_fault_schedule_converges_after_healing(
        schedule in proptest::collection::vec(step(), 1..12),
        seed in proptest::prelude::any::<u64>(),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap();
        let result = rt.block_on(converges_after(schedule, seed, 0.1));
        proptest::prop_assert!(result.is_ok(), "{}", result.unwrap_err());
    }
}
