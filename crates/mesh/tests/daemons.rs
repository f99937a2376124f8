//! Daemons and the cluster-wide snapshot on real nodes: placement everywhere,
//! unregistering, health propagation, dead nodes, controls, logs and bad input.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use mesh::testing::Cluster;
use mesh::{
    ClusterKey, Daemon, DaemonControl, DaemonError, DaemonHealth, EntityKeypair, Lineage, LogLevel,
    MeshConfig, MeshEvent, MeshNode, MeshSnapshot,
};
use parking_lot::Mutex;

const DEADLINE: Duration = Duration::from_secs(30);

fn config() -> MeshConfig {
    MeshConfig::new(ClusterKey::from_bytes([9; 32]))
}

/// A daemon whose health and observed controls the test controls.
#[derive(Clone, Default)]
struct Probe {
    health: Arc<Mutex<Option<DaemonHealth>>>,
    controls: Arc<Mutex<Vec<DaemonControl>>>,
    panic_on_health: Arc<AtomicBool>,
}

struct ProbeDaemon {
    name: String,
    probe: Probe,
}

impl Daemon for ProbeDaemon {
    fn name(&self) -> &str {
        &self.name
    }
    fn on_control(&mut self, control: DaemonControl) {
        self.probe.controls.lock().push(control);
    }
    fn health(&self) -> DaemonHealth {
        if self.probe.panic_on_health.load(Ordering::Relaxed) {
            panic!("probe told to panic");
        }
        self.probe.health.lock().clone().unwrap_or(DaemonHealth::Healthy)
    }
    fn saturation(&self) -> f32 {
        0.5
    }
}

fn daemon(name: &str) -> (Box<dyn Daemon>, Probe) {
    let probe = Probe::default();
    (Box::new(ProbeDaemon { name: name.to_owned(), probe: probe.clone() }), probe)
}

async fn wait_snapshot(node: &MeshNode, pred: impl FnMut(&MeshSnapshot) -> bool) -> bool {
    mesh::testing::wait_snapshot(node, DEADLINE, pred).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eighteen_daemons_everywhere_with_placement_health_and_removal() {
    let mut cluster = Cluster::start_with_deadline(9, config(), DEADLINE).await.unwrap();
    let mut handles = Vec::new();
    let mut probes = Vec::new();
    for (i, node) in cluster.nodes().enumerate() {
        for j in 0..2 {
            let name = if j == 0 { "worker#replica".to_owned() } else { format!("agent-{i}") };
            let (d, probe) = daemon(&name);
            let handle = node.register_daemon(d, EntityKeypair::generate()).unwrap();
            handles.push((node.node_id(), handle));
            probes.push(probe);
        }
    }
    // Every node lists all 18 with the right placement.
    for node in cluster.nodes() {
        let ok = wait_snapshot(node, |s| {
            s.daemons.len() == 18
                && handles
                    .iter()
                    .all(|(placed, h)| s.daemon(h.id()).is_some_and(|d| d.node == *placed))
        })
        .await;
        assert!(ok, "node {} does not see all 18 daemons placed correctly", node.node_id());
    }
    let snap = cluster.nth(3).unwrap().snapshot();
    let replicas = snap.daemons.iter().filter(|d| d.lineage == Lineage::Replica).count();
    assert_eq!(replicas, 9);
    assert!(snap.daemons.iter().all(|d| (d.saturation - 0.5).abs() < 1e-3));

    // A daemon reporting Degraded shows Degraded on every node.
    let degraded_id = handles[4].1.id();
    *probes[4].health.lock() = Some(DaemonHealth::Degraded { reason: "disk slow".into() });
    for node in cluster.nodes() {
        let ok = wait_snapshot(node, |s| {
            s.daemon(degraded_id)
                .is_some_and(|d| d.health == DaemonHealth::Degraded { reason: "disk slow".into() })
        })
        .await;
        assert!(ok);
    }

    // Dropping a handle unregisters the daemon everywhere.
    let (_, gone) = handles.remove(0);
    let gone_id = gone.id();
    drop(gone);
    for node in cluster.nodes() {
        assert!(
            wait_snapshot(node, |s| s.daemon(gone_id).is_none() && s.daemons.len() == 17).await
        );
    }

    // Kill node 8: its daemons stay listed, showing their node Unreachable.
    let dead = cluster.identity(8).unwrap().node_id();
    cluster.kill(8).unwrap();
    for node in cluster.nodes() {
        let ok = wait_snapshot(node, |s| {
            let on_dead: Vec<_> = s.daemons.iter().filter(|d| d.node == dead).collect();
            on_dead.len() == 2 && on_dead.iter().all(|d| d.node_health.is_unreachable())
        })
        .await;
        assert!(ok, "daemons of a dead node must show it Unreachable");
    }
    drop(handles);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controls_backpressure_panics_and_logs() {
    let mut cfg = config();
    cfg.limits.log_queue = 8;
    let node = MeshNode::start(cfg).await.unwrap();
    let (d, probe) = daemon("chatty");
    let key = EntityKeypair::generate();
    let handle = node.register_daemon(d, key.clone()).unwrap();

    // Same id twice is refused; bad names are refused.
    let (d2, _) = daemon("other");
    assert!(matches!(node.register_daemon(d2, key), Err(DaemonError::AlreadyRegistered(_))));
    for bad in ["", "bad\nname", &"x".repeat(200)] {
        let (d, _) = daemon(bad);
        let err = node.register_daemon(d, EntityKeypair::generate()).unwrap_err();
        assert!(matches!(err, DaemonError::InvalidName { .. }), "{bad:?}");
    }

    // Flood the tiny queue: lines are dropped, counted, and backpressure arrives.
    for i in 0..5_000 {
        handle.publish_log(LogLevel::Info, format!("line {i}"));
    }
    assert!(handle.logger().dropped() > 0);
    let ok = wait_snapshot(&node, |_| {
        probe.controls.lock().iter().any(|c| matches!(c, DaemonControl::BackpressureOn { .. }))
    })
    .await;
    assert!(ok, "BackpressureOn must reach the daemon");
    assert!(wait_snapshot(&node, |s| s.logs.dropped > 0 && s.daemons[0].log_dropped > 0).await);

    // Explicit controls are delivered.
    node.control_daemon(handle.id(), DaemonControl::DrainStart).unwrap();
    assert!(
        wait_snapshot(&node, |_| probe.controls.lock().contains(&DaemonControl::DrainStart)).await
    );

    // Log lines are sanitized and paged.
    handle.publish_log(LogLevel::Warn, "evil\x1b[2Jline\nnext");
    assert!(
        wait_snapshot(&node, |s| s
            .recent_logs
            .iter()
            .any(|l| l.message == "evil\\u{1b}[2Jline\\nnext"))
        .await
    );
    let page = node.logs_since(0, 3);
    assert!(page.len() <= 3 && page.windows(2).all(|w| w[0].seq < w[1].seq));

    // A panicking daemon is marked Unhealthy, counted, and the node keeps going.
    std::panic::set_hook(Box::new(|_| {}));
    probe.panic_on_health.store(true, Ordering::Relaxed);
    let ok = wait_snapshot(&node, |s| {
        s.daemon(handle.id()).is_some_and(|d| {
            d.restarts >= 1 && matches!(&d.health, DaemonHealth::Unhealthy { reason } if reason.contains("probe told to panic"))
        }) && s.recent_failures.iter().any(|f| f.kind == "daemon_panic")
    })
    .await;
    let _ = std::panic::take_hook();
    assert!(ok);
    probe.panic_on_health.store(false, Ordering::Relaxed);

    node.handle()
        .publish(MeshEvent::LogLine {
            daemon: None,
            level: LogLevel::Info,
            message: "node says hi".into(),
        })
        .unwrap();
    node.shutdown().await;
    assert!(probe.controls.lock().iter().any(|c| matches!(c, DaemonControl::Shutdown { .. })));
    assert!(
        node.handle()
            .publish(MeshEvent::LogLine {
                daemon: None,
                level: LogLevel::Info,
                message: "late".into()
            })
            .is_err()
    );
}
