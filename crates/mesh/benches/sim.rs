//! Scale and loss figures from the simulated network (`mesh::sim`), virtual
//! time on tokio's paused clock, lan timing profile, real nodes (Noise, fold,
//! probes) on an in-memory network.
//!
//! Prints, for each cluster size n:
//! - `sim_<n>_join_all_s`: a new node listed healthy by every member;
//! - `sim_<n>_bytes_per_node_per_s`, `sim_<n>_datagrams_per_node_per_s`: an
//!   idle cluster's traffic;
//! - `sim_<n>_detect_p99_s`: a crashed node seen Unreachable, p99 over the
//!   members (every member, at the end);
//! - `sim_<n>_false_positives_per_hour_loss20`: members wrongly seen
//!   Unreachable at 20 % loss, per cluster-hour of virtual time.
//!
//! Today's membership is a full mesh (every node probes every node), so the
//! sizes stop at 128: at 512 and 1,000 it is O(n^2) work for the host running
//! the simulation too. The SWIM-style protocol of issue #18 is measured here
//! at 512 and 1,000 when it lands.

#![allow(clippy::print_stdout, reason = "benchmarks report figures")]

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use mesh::sim::{SimConfig, SimNet, SimSocket};
use mesh::{ClusterKey, MeshConfig, MeshNode, NodeId, TimingProfile};
use tokio::time::Instant;

const KEY: [u8; 32] = [5; 32];

struct Member {
    node: MeshNode,
    socket: Arc<SimSocket>,
}

async fn start(net: &SimNet, seed: Option<std::net::SocketAddr>) -> Member {
    let socket = net.socket();
    let mut config = MeshConfig::new(ClusterKey::from_bytes(KEY)).timing(TimingProfile::lan());
    if let Some(seed) = seed {
        config = config.seed(seed.to_string());
    }
    let node = MeshNode::start_with_transport(config, socket.clone()).await.expect("starts");
    Member { node, socket }
}

fn healthy_view(m: &Member, ids: &[NodeId]) -> bool {
    let peers = m.node.peers();
    ids.iter().all(|id| {
        *id == m.node.node_id() || peers.iter().any(|p| p.node_id == *id && p.health.is_healthy())
    })
}

async fn wait(deadline: Duration, mut condition: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < deadline {
        if condition() {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    condition().then(|| start.elapsed())
}

async fn run(n: usize) {
    let net = SimNet::new(n as u64, SimConfig::default());
    let mut members: Vec<Member> = Vec::new();
    for i in 0..n {
        let seed = (i > 0).then(|| members[0].socket.addr());
        members.push(start(&net, seed).await);
    }
    let ids: Vec<NodeId> = members.iter().map(|m| m.node.node_id()).collect();
    let booted = wait(Duration::from_secs(600), || members.iter().all(|m| healthy_view(m, &ids)))
        .await
        .expect("the cluster converges");
    println!("n = {n}: booted in {:.2} s virtual", booted.as_secs_f64());
    // Settle, then the idle traffic.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let before = net.stats();
    let idle = Duration::from_secs(30);
    tokio::time::sleep(idle).await;
    let after = net.stats();
    let per_node = |v: u64| v as f64 / n as f64 / idle.as_secs_f64();
    let bytes = per_node(after.sent_bytes - before.sent_bytes);
    let datagrams = per_node(after.sent - before.sent);

    // A newcomer, known to every member.
    let newcomer = start(&net, Some(members[n / 2].socket.addr())).await;
    let new_id = newcomer.node.node_id();
    let join = wait(Duration::from_secs(600), || {
        members
            .iter()
            .all(|m| m.node.peers().iter().any(|p| p.node_id == new_id && p.health.is_healthy()))
    })
    .await
    .expect("the newcomer is known everywhere");
    members.push(newcomer);

    // A crash: the newcomer's host leaves without a word.
    let crashed = members.pop().expect("the newcomer");
    crashed.node.crash();
    net.remove(crashed.socket.addr());
    let crash_at = Instant::now();
    let mut seen_at: Vec<Option<Duration>> = vec![None; members.len()];
    while seen_at.iter().any(Option::is_none) && crash_at.elapsed() < Duration::from_secs(600) {
        for (i, m) in members.iter().enumerate() {
            if seen_at[i].is_none()
                && m.node.peers().iter().any(|p| p.node_id == new_id && p.health.is_unreachable())
            {
                seen_at[i] = Some(crash_at.elapsed());
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut detect: Vec<f64> =
        seen_at.iter().map(|d| d.map_or(f64::INFINITY, |d| d.as_secs_f64())).collect();
    detect.sort_by(f64::total_cmp);
    let p99 = detect[((detect.len() as f64 * 0.99).ceil() as usize).saturating_sub(1)];
    drop(crashed);

    // 20 % loss: members wrongly seen Unreachable (each healthy -> unreachable
    // transition of an (observer, member) pair counts once).
    net.set_config(SimConfig { loss: 0.2, ..SimConfig::default() });
    let window = Duration::from_secs(60);
    let start_loss = Instant::now();
    let mut down: HashSet<(usize, NodeId)> = HashSet::new();
    let mut false_positives = 0u64;
    while start_loss.elapsed() < window {
        for (i, m) in members.iter().enumerate() {
            for p in m.node.peers() {
                if p.node_id == new_id {
                    continue;
                }
                let key = (i, p.node_id);
                if p.health.is_unreachable() {
                    if down.insert(key) {
                        false_positives += 1;
                    }
                } else {
                    down.remove(&key);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let per_hour = false_positives as f64 * 3600.0 / window.as_secs_f64();
    println!(
        "n = {n}: idle {bytes:.0} B/s and {datagrams:.1} datagrams/s per node; join seen by all in {:.2} s; crash seen by all in {:.2} s; {false_positives} false unreachable in {} s at 20 % loss",
        join.as_secs_f64(),
        detect.last().copied().unwrap_or(f64::INFINITY),
        window.as_secs()
    );
    println!("figure: sim_{n}_join_all_s = {:.2} s", join.as_secs_f64());
    println!("figure: sim_{n}_bytes_per_node_per_s = {bytes:.0} B/s");
    println!("figure: sim_{n}_datagrams_per_node_per_s = {datagrams:.1} datagrams/s");
    println!("figure: sim_{n}_detect_p99_s = {p99:.2} s");
    println!("figure: sim_{n}_false_positives_per_hour_loss20 = {per_hour:.0} per cluster-hour");
}

fn main() {
    for n in [32, 128] {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .expect("runtime");
        let real = std::time::Instant::now();
        rt.block_on(run(n));
        println!("n = {n}: simulated in {:.1} s of real time", real.elapsed().as_secs_f64());
    }
}
