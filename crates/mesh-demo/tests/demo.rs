//! The reference's assertions, on a real 9-node demo with short periods.

use std::collections::BTreeMap;
use std::time::Duration;

use deck_model::CallSide;
use mesh_demo::{DemoConfig, spawn};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_comes_up_with_every_workload_piece() {
    let config = DemoConfig {
        log_interval: Duration::from_millis(200),
        log_jitter: Duration::from_millis(40),
        rpc_interval: Duration::from_millis(100),
        migration_period: Duration::from_millis(500),
        migration_state_bytes: 32 * 1024,
        blob_interval: Duration::from_millis(300),
        ..DemoConfig::default()
    };
    let mut demo = spawn(config).await.unwrap();
    let node0 = demo.this_node().node_id();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut saw_migration = false;
    loop {
        let snap = demo.this_node().snapshot();
        saw_migration |= !snap.migrations.is_empty();
        let mut names: BTreeMap<&str, usize> = BTreeMap::new();
        for d in &snap.daemons {
            *names.entry(d.name.as_str()).or_default() += 1;
        }
        let tail = demo.deck().call_tail().since(0);
        let ok = snap.peers.len() == 8
            && names.get("node_agent") == Some(&9)
            && names.get("inference_worker#replica") == Some(&3)
            && names.get("rollout_forge#fork@7") == Some(&3)
            && names.get("trainer_canary#standby") == Some(&3)
            && snap
                .daemons
                .iter()
                .filter(|d| d.name == "node_agent")
                .map(|d| d.node)
                .collect::<std::collections::HashSet<_>>()
                .len()
                == 9
            && snap.recent_logs.len() >= 2
            && tail.iter().any(|(_, r)| r.side == CallSide::Client)
            && tail.iter().any(|(_, r)| r.side == CallSide::Server)
                        && saw_migration
            // A cross-node blob fetch happened (the writers' fourth round).
            && demo.blob_adapters().iter().map(|a| a.metrics().fetches).sum::<u64>() > 0;
        if ok {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "demo incomplete: peers {}, daemons {:?}, logs {}, tail {}, migration seen {saw_migration}",
            snap.peers.len(),
            names,
            snap.recent_logs.len(),
            tail.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(demo.blob_adapters().len(), 9);
    assert!(demo.blob_adapters().iter().all(|a| a.node_id() != node0 || a.name() == "datafort-0"));
    // Groups are spread: the nine group members sit on several nodes.
    let snap = demo.this_node().snapshot();
    let group_nodes: std::collections::HashSet<_> =
        snap.daemons.iter().filter(|d| d.name.contains('#')).map(|d| d.node).collect();
    assert!(group_nodes.len() >= 6);
    demo.shutdown().await;
    demo.shutdown().await;
}
