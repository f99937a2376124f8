//! Daemon SDK and fold figures, release build: log publish throughput, time for a
//! daemon change to reach another node's snapshot, and snapshot rebuild cost.
//!
//! Prints `figure:` lines (collected by `cargo xtask bench mesh`). The publish
//! figure counts accepted lines only; dropped lines are a figure of their own.

#![allow(clippy::print_stdout, reason = "a benchmark reports on stdout")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use mesh::fold::{DaemonSummary, Fold, NodeSummary, Resources, VerifiedSummary};
use mesh::snapshot::{RingStats, SnapshotInput, ThisNode, build};
use mesh::testing::Cluster;
use mesh::{
    ClusterKey, Daemon, DaemonHealth, EntityKeypair, Lifecycle, LogLevel, MeshConfig, MeshMetrics,
    MeshNode, NodeId, OriginHash,
};
use parking_lot::Mutex;

struct Switch {
    health: Arc<Mutex<DaemonHealth>>,
}

impl Daemon for Switch {
    fn name(&self) -> &str {
        "bench#replica"
    }
    fn health(&self) -> DaemonHealth {
        self.health.lock().clone()
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// What one `publish_log` run measured.
struct LogRun {
    sent: u64,
    accepted: u64,
    dropped: u64,
    secs: f64,
}

/// `publish_log` into one node on a current-thread runtime (one core): the
/// publishing daemon and the node's log drain share the thread, so the time
/// covers both. The publisher yields between bursts, as a daemon on a shared
/// runtime does at its await points; lines that find the queue full are
/// dropped and counted. The clock stops once every accepted line is in the ring.
async fn log_throughput() -> LogRun {
    let node =
        MeshNode::start(MeshConfig::new(ClusterKey::from_bytes([1; 32]))).await.expect("node");
    let health = Arc::new(Mutex::new(DaemonHealth::Healthy));
    let handle = node
        .register_daemon(Box::new(Switch { health }), EntityKeypair::generate())
        .expect("register");
    const LINES: u64 = 2_000_000;
    const BURST: u64 = 1024;
    let first_seq = node.logs_since(0, usize::MAX).last().map_or(0, |l| l.seq + 1);
    let started = Instant::now();
    for i in 0..LINES {
        handle.publish_log(LogLevel::Info, "inference batch 4096 completed in 12.5 ms");
        if i % BURST == BURST - 1 {
            tokio::task::yield_now().await;
        }
    }
    let dropped = handle.logger().dropped();
    // Wait (yielding to the drain) until the last line that was not dropped is in
    // the ring; a line lost silently would leave this waiting until the deadline.
    if let Some(last) = (first_seq + LINES - dropped).checked_sub(1) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while node.logs_since(last, 1).is_empty() && Instant::now() < deadline {
            tokio::task::yield_now().await;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    // Lines stored: the ring's next sequence number, minus where it started.
    let next_seq = node.logs_since(0, usize::MAX).last().map_or(0, |l| l.seq + 1);
    let accepted = next_seq - first_seq;
    node.shutdown().await;
    LogRun { sent: LINES, accepted, dropped, secs }
}

async fn fold_visibility() -> Vec<f64> {
    let cluster = Cluster::start_with_deadline(
        9,
        MeshConfig::new(ClusterKey::from_bytes([2; 32])),
        Duration::from_secs(60),
    )
    .await
    .expect("cluster");
    let health = Arc::new(Mutex::new(DaemonHealth::Healthy));
    let owner = cluster.nth(5).expect("node 5");
    let handle = owner
        .register_daemon(Box::new(Switch { health: health.clone() }), EntityKeypair::generate())
        .expect("register");
    let id = handle.id();
    let observer = cluster.nth(0).expect("node 0");
    let mut rx = observer.subscribe();
    let mut samples = Vec::new();
    for round in 0..21 {
        let want = if round % 2 == 0 {
            DaemonHealth::Degraded { reason: format!("round {round}") }
        } else {
            DaemonHealth::Healthy
        };
        // Let things settle at a random-ish point of the tick cycle.
        tokio::time::sleep(Duration::from_millis(37 + (round * 13) % 50)).await;
        let started = Instant::now();
        *health.lock() = want.clone();
        loop {
            if rx.borrow_and_update().daemon(id).is_some_and(|d| d.health == want) {
                break;
            }
            let _ = tokio::time::timeout(Duration::from_secs(5), rx.changed()).await;
        }
        if round > 0 {
            samples.push(started.elapsed().as_secs_f64() * 1e3);
        }
    }
    drop(handle);
    samples
}

fn rebuild_1000() -> f64 {
    let mut fold = Fold::new();
    for n in 0..10u64 {
        let key = EntityKeypair::from_seed(&[n as u8 + 1; 32]);
        let summary = NodeSummary {
            node: key.node_id(),
            incarnation: 1,
            version: 1,
            produced_at_ms: 0,
            software: "0.1.0".into(),
            resources: Resources::default(),
            admin: Default::default(),
            migrations: Vec::new(),
            daemons: (0..100u64)
                .map(|i| DaemonSummary {
                    id: OriginHash(n * 1000 + i),
                    name: format!("worker-{i}#replica"),
                    lifecycle: Lifecycle::Running,
                    health: DaemonHealth::Healthy,
                    saturation_milli: 500,
                    restarts: 0,
                    crash_looping: false,
                    started_at_ms: 0,
                    log_dropped: 0,
                    migratable: false,
                })
                .collect(),
        };
        fold.apply(VerifiedSummary::sign(summary, &key).expect("own key"));
    }
    let this = ThisNode {
        node_id: NodeId(0),
        addr: ([127, 0, 0, 1], 1).into(),
        version: "0.1.0".into(),
        flags: 0,
        resources: Resources::default(),
        admin: Default::default(),
    };
    let iterations = 2_000;
    let started = Instant::now();
    for seq in 0..iterations {
        let snap = build(SnapshotInput {
            seq,
            epoch_ms: 0,
            now_ms: 1,
            this_node: this.clone(),
            peers: Vec::new(),
            fold: &fold,
            recent_logs: Arc::new(Vec::new()),
            logs: RingStats::default(),
            recent_failures: Arc::new(Vec::new()),
            failures: RingStats::default(),
            counters: MeshMetrics::default(),
            audit_tail: Arc::new(Vec::new()),
            audit_len: 0,
        });
        assert_eq!(snap.daemons.len(), 1000);
    }
    started.elapsed().as_secs_f64() * 1e6 / iterations as f64
}

fn main() {
    // publish_log on one core: a current-thread runtime.
    let one_core = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
    let log = one_core.block_on(log_throughput());
    drop(one_core);
    println!(
        "publish_log: {} lines sent, {} accepted, {} dropped (counted) in {:.3} s",
        log.sent, log.accepted, log.dropped, log.secs
    );
    assert_eq!(log.accepted + log.dropped, log.sent, "lines lost without being counted");
    let lines_per_s = log.accepted as f64 / log.secs;
    let dropped_pct = log.dropped as f64 * 100.0 / log.sent as f64;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("rt");
    rt.block_on(async {
        let vis = fold_visibility().await;
        println!("fold visibility samples (ms): {vis:.1?}");
        let rebuild = rebuild_1000();
        println!("figure: log_publish_lines_per_s = {lines_per_s:.0} lines/s");
        println!("figure: log_publish_dropped_pct = {dropped_pct:.2} %");
        println!("figure: fold_visibility_ms = {:.1} ms", median(vis));
        println!("figure: snapshot_rebuild_1000_daemons_us = {rebuild:.1} us");
    });
}
