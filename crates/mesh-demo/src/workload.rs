//! Starts the demo's workload on a converged cluster.

use std::sync::Arc;
use std::time::Duration;

use mesh::{MeshHandle, NodeId};
use mesh_auth::EntityKeypair;
use mesh_blobs::{BlobStore, Hash, MemLog, MeshBlobAdapter, StoreConfig};
use mesh_rpc::{CallOptions, Rpc};
use parking_lot::Mutex;

use crate::daemons::{COMPUTE_KIND, Compute, FleetDaemon};
use crate::{Demo, DemoConfig, DemoError, corpus};

/// The three lineage groups and the node offsets their members sit on.
const GROUPS: [(&str, [usize; 3]); 3] = [
    ("inference_worker#replica", [1, 2, 3]),
    ("rollout_forge#fork@7", [4, 5, 6]),
    ("trainer_canary#standby", [7, 8, 0]),
];

/// Service name of the echo chatter.
pub(crate) const ECHO: &str = "demo.echo";

pub(crate) fn start(demo: &mut Demo, config: &DemoConfig) -> Result<(), DemoError> {
    let err = |what: &str, e: &dyn std::fmt::Display| DemoError::Workload(format!("{what}: {e}"));
    let n = demo.cluster.len();
    let nodes: Vec<(NodeId, MeshHandle)> =
        demo.cluster.nodes().map(|node| (node.node_id(), node.handle())).collect();

    for (i, node) in demo.cluster.nodes().enumerate() {
        // RPC endpoint, the NRPC tail observer, and the node services.
        let rpc = Rpc::new(node).map_err(|e| err("rpc", &e))?;
        demo.node_services.push(
            mesh_rpc::node_services::serve_node_services(&rpc)
                .map_err(|e| err("node services", &e))?,
        );

        // The node agent and its log loop.
        let agent = node
            .register_daemon(
                Box::new(FleetDaemon::new("node_agent", i as u64 * 7919)),
                EntityKeypair::generate(),
            )
            .map_err(|e| err("node_agent", &e))?;
        let logger = agent.logger();
        let (interval, spread) = (config.log_interval, config.log_jitter.as_millis() as u64);
        demo.tasks.push(tokio::spawn(async move {
            for tick in 0u64.. {
                let wait = interval.as_millis() as i64 + corpus::jitter_ms(i, tick, spread);
                tokio::time::sleep(Duration::from_millis(wait.max(1) as u64)).await;
                let (level, line) = corpus::line(i, tick);
                logger.publish_log(level, line);
            }
        }));
        demo.daemons.push(agent);

        // Migratable compute daemons can be rebuilt on every node.
        node.register_factory(COMPUTE_KIND, |state| {
            Compute::restore(state).map(|c| Box::new(c) as Box<dyn mesh::Daemon>)
        });

        // A blob adapter per node; one with a small capacity so eviction shows.
        let capacity = if i == n / 2 { Some(config.small_capacity) } else { None };
        let mut store_config = StoreConfig::default();
        if let Some(c) = capacity {
            store_config = store_config.with_capacity(c);
        }
        let store: Arc<dyn BlobStore> = Arc::new(MemLog::new(store_config));
        let adapter = MeshBlobAdapter::new(&format!("datafort-{i}"), node, store)
            .map_err(|e| err("blob adapter", &e))?;
        demo.adapters.push(Arc::new(adapter));
        demo.rpcs.push(rpc);
    }

    // Lineage groups spread across nodes.
    for (g, (name, offsets)) in GROUPS.iter().enumerate() {
        for (k, offset) in offsets.iter().enumerate() {
            let node = demo.cluster.nth(offset % n).ok_or_else(|| err("group", &"missing node"))?;
            let seed = (g * 3 + k) as u64 * 104_729;
            let handle = node
                .register_daemon(Box::new(FleetDaemon::new(name, seed)), EntityKeypair::generate())
                .map_err(|e| err(name, &e))?;
            demo.daemons.push(handle);
        }
    }

    // Small blob writes on every adapter; every fourth round also fetches the
    // neighbour's latest blob across the mesh.
    let latest: Arc<Mutex<Vec<Option<Hash>>>> = Arc::new(Mutex::new(vec![None; n]));
    for (i, adapter) in demo.adapters.iter().enumerate() {
        let adapter = adapter.clone();
        let latest = latest.clone();
        let neighbour = nodes[(i + 1) % n].0;
        let interval = config.blob_interval;
        demo.tasks.push(tokio::spawn(async move {
            // Stagger the writers so puts do not all land in the same instant.
            tokio::time::sleep(interval / n as u32 * i as u32).await;
            for round in 0u64.. {
                let size = 2048 + ((round * 7919 + i as u64 * 104_729) % 22_000) as usize;
                let body: Vec<u8> =
                    (0..size).map(|b| (b as u64 * 31 + round * 17 + i as u64) as u8).collect();
                if let Ok(hash) = adapter.store().put_slice(&body) {
                    latest.lock()[i] = Some(hash);
                }
                if round % 4 == 3 {
                    let wanted = {
                        let latest = latest.lock();
                        latest[(i + 1) % latest.len()]
                    };
                    if let Some(hash) = wanted {
                        let _ = adapter.fetch(hash, Some(neighbour)).await;
                    }
                }
                tokio::time::sleep(interval).await;
            }
        }));
    }

    // The compute daemon moving around the ring.
    let first = demo.cluster.nth(0).ok_or_else(|| err("migration", &"no node 0"))?;
    let compute = first
        .register_daemon(
            Box::new(Compute::new("compute", config.migration_state_bytes)),
            EntityKeypair::generate(),
        )
        .map_err(|e| err("compute", &e))?;
    let compute_id = compute.id();
    demo.daemons.push(compute);
    let ring = nodes.clone();
    let period = config.migration_period;
    demo.tasks.push(tokio::spawn(async move {
        loop {
            tokio::time::sleep(period).await;
            // Wherever it is now, move it to the next node in ring order.
            let Some(at) = ring
                .iter()
                .position(|(_, h)| h.snapshot().daemon(compute_id).is_some_and(|d| d.local))
            else {
                continue;
            };
            let next = ring[(at + 1) % ring.len()].0;
            match ring[at].1.migrate(compute_id, next) {
                Ok(migration) => {
                    let _ = migration.wait().await;
                }
                Err(e) => tracing::debug!(error = %e, "demo migration not started"),
            }
        }
    }));

    // demo.echo on nodes 0 and 1; requesters on the others.
    for responder in demo.rpcs.iter().take(2) {
        let serve = responder
            .serve(ECHO, |text: String, _ctx| async move { Ok(text) })
            .map_err(|e| err("demo.echo", &e))?;
        demo.serves.push(serve);
    }
    for (i, rpc) in demo.rpcs.iter().enumerate().skip(2) {
        let rpc = rpc.clone();
        let targets = [nodes[0].0, nodes[1].0];
        let (interval, deadline) = (config.rpc_interval, config.rpc_deadline);
        demo.tasks.push(tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            for tick in 0u64.. {
                ticker.tick().await;
                let to = targets[(tick as usize + i) % 2];
                let text = format!("ping {tick} from gpu-{i}");
                let _: Result<String, _> =
                    rpc.call(to, ECHO, &text, CallOptions::default().deadline(deadline)).await;
            }
        }));
    }
    Ok(())
}
