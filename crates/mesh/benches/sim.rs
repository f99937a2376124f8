//! Scale and loss figures from the simulated network (`mesh::sim`), virtual
//! time on tokio's paused clock, lan timing profile, real nodes (Noise, fold,
//! probes) on an in-memory network.
//!
//! Prints, for each cluster size n:
//! - `sim_<n>_boot_drain_s`: after the boot converged, how long until no node
//!   has membership news left to pass on (the idle figures are taken after);
//! - `sim_<n>_join_all_s`: a new node listed healthy by every member;
//! - `sim_<n>_bytes_per_node_per_s`, `sim_<n>_datagrams_per_node_per_s`: an
//!   idle cluster's traffic;
//! - `sim_<n>_detect_p99_s`: a crashed node seen Unreachable, p99 over the
//!   members (every member, at the end);
//! - `sim_<n>_false_positives_per_hour_loss20`: live members declared dead
//!   at 20 % loss, per cluster-hour of virtual time (window: 120 s, or
//!   `SIM_LOSS_WINDOW_S`), and `sim_<n>_suspicions_per_hour_loss20`: the
//!   suspicions that were refuted in time.
//!
//! Sizes: 32, 128 and 512 (`SIM_SIZES=32,128,512,1000` picks others; 512
//! takes about 20 minutes of real time on 2 cores, 1,000 several times that,
//! since every node runs real Noise handshakes and ed25519 checks). Every
//! check reads one member's state (`MeshNode::member_state`) or the
//! membership counters, so the host's work stays O(n) per check.

#![allow(clippy::print_stdout, reason = "benchmarks report figures")]

use std::sync::Arc;
use std::time::Duration;

use mesh::sim::{SimConfig, SimNet, SimSocket};
use mesh::{ClusterKey, MemberState, MeshConfig, MeshNode, NodeId, TimingProfile};
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

fn knows_all(m: &Member, n: usize) -> bool {
    let stats = m.node.metrics().membership;
    stats.alive as usize == n - 1
}

fn is(m: &Member, id: NodeId, state: MemberState) -> bool {
    m.node.member_state(id) == Some(state)
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
    let booted = wait(Duration::from_secs(600), || members.iter().all(|m| knows_all(m, n)))
        .await
        .expect("the cluster converges");
    println!("n = {n}: booted in {:.2} s virtual", booted.as_secs_f64());
    // Settle: the boot's news runs out of retransmissions (every node passes
    // each join on λ·log2 n times), then the idle traffic.
    let drained = {
        let start = Instant::now();
        loop {
            let backlog: u64 = members.iter().map(|m| m.node.metrics().membership.backlog).sum();
            if backlog == 0 || start.elapsed() > Duration::from_secs(900) {
                break start.elapsed();
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    };
    println!(
        "n = {n}: the boot's gossip backlog drained {:.0} s after convergence",
        drained.as_secs_f64()
    );
    println!("figure: sim_{n}_boot_drain_s = {:.0} s", drained.as_secs_f64());
    tokio::time::sleep(Duration::from_secs(10)).await;
    let split = |members: &[Member]| -> [u64; 4] {
        members.iter().fold([0; 4], |[m, f, h, a], member| {
            let sent = member.node.metrics().sent;
            [m + sent.membership, f + sent.fold, h + sent.handshake, a + sent.application]
        })
    };
    let before = net.stats();
    let split_before = split(&members);
    let idle = Duration::from_secs(30);
    tokio::time::sleep(idle).await;
    let after = net.stats();
    let split_after = split(&members);
    let per_node = |v: u64| v as f64 / n as f64 / idle.as_secs_f64();
    let bytes = per_node(after.sent_bytes - before.sent_bytes);
    let datagrams = per_node(after.sent - before.sent);
    let [m, f, h, a] =
        std::array::from_fn(|i| per_node(split_after[i].saturating_sub(split_before[i])));
    println!(
        "n = {n}: idle bytes per node per second: membership {m:.0}, fold {f:.0}, handshakes {h:.0}, application {a:.0}"
    );

    // A newcomer, known to every member.
    let newcomer = start(&net, Some(members[n / 2].socket.addr())).await;
    let new_id = newcomer.node.node_id();
    let join = wait(Duration::from_secs(600), || {
        members.iter().all(|m| is(m, new_id, MemberState::Alive))
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
            if seen_at[i].is_none() && is(m, new_id, MemberState::Dead) {
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

    // 20 % loss: live members wrongly declared dead. Each node counts the
    // members it declared dead itself (its own suspicion timed out); the sum
    // over nodes bounds the number of distinct false deaths from above.
    // Suspicions (refuted in time, shown as Degraded) are reported apart.
    net.set_config(SimConfig { loss: 0.2, ..SimConfig::default() });
    let window = Duration::from_secs(
        std::env::var("SIM_LOSS_WINDOW_S").ok().and_then(|v| v.parse().ok()).unwrap_or(120),
    );
    let sum = |members: &[Member]| -> (u64, u64) {
        members.iter().fold((0, 0), |(d, s), m| {
            let stats = m.node.metrics().membership;
            (d + stats.declared_dead, s + stats.suspected)
        })
    };
    let refuted = |members: &[Member]| -> (u64, u32) {
        members.iter().fold((0, 0), |(r, l), m| {
            let stats = m.node.metrics().membership;
            (r + stats.refuted, l.max(stats.local_health))
        })
    };
    let (refuted_before, _) = refuted(&members);
    let (dead_before, suspected_before) = sum(&members);
    let loss_before = net.stats();
    let loss_split_before = split(&members);
    let mut backlog_max = 0;
    let mut backlog_sum = 0;
    let mut samples = 0;
    let loss_start = Instant::now();
    while loss_start.elapsed() < window {
        tokio::time::sleep(Duration::from_secs(5)).await;
        for m in &members {
            let b = m.node.metrics().membership.backlog;
            backlog_max = backlog_max.max(b);
            backlog_sum += b;
            samples += 1;
        }
    }
    let loss_after = net.stats();
    let loss_split_after = split(&members);
    let [m, f, h, a] = std::array::from_fn(|i| {
        loss_split_after[i].saturating_sub(loss_split_before[i]) as f64
            / members.len() as f64
            / window.as_secs_f64()
    });
    println!(
        "n = {n}: at 20 % loss, bytes per node per second: membership {m:.0}, fold {f:.0}, handshakes {h:.0}, application {a:.0}"
    );
    println!(
        "n = {n}: at 20 % loss: {:.1} datagrams/s and {:.0} B/s per node, gossip backlog mean {:.1}, max {backlog_max}",
        (loss_after.sent - loss_before.sent) as f64 / n as f64 / window.as_secs_f64(),
        (loss_after.sent_bytes - loss_before.sent_bytes) as f64 / n as f64 / window.as_secs_f64(),
        backlog_sum as f64 / samples.max(1) as f64,
    );
    let (dead_after, suspected_after) = sum(&members);
    let false_positives = dead_after - dead_before;
    let (refuted_after, lhm_max) = refuted(&members);
    println!(
        "n = {n}: at 20 % loss: {} suspicions, {} refutations, {false_positives} declared dead, local health up to {lhm_max}",
        suspected_after - suspected_before,
        refuted_after - refuted_before
    );
    let suspicions = suspected_after - suspected_before;
    let suspicions_per_hour = suspicions as f64 * 3600.0 / window.as_secs_f64();
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
    println!(
        "figure: sim_{n}_suspicions_per_hour_loss20 = {suspicions_per_hour:.0} per cluster-hour"
    );
}

fn main() {
    let sizes: Vec<usize> = match std::env::var("SIM_SIZES") {
        Ok(list) => list.split(',').filter_map(|s| s.trim().parse().ok()).collect(),
        Err(_) => vec![32, 128, 512],
    };
    for n in sizes {
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
