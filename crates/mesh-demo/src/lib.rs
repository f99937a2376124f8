//! The demo cluster: nine real nodes on 127.0.0.1 with a workload that keeps
//! every part of the deck alive.
//!
//! [`spawn`] boots the cluster (real UDP sessions, real Noise handshakes), installs
//! an operator's [`AdminVerifier`] on every node so admin commands go through the
//! signed path, and starts the workload: a `node_agent` per node publishing
//! inference-fleet log lines, three lineage groups of three daemons spread across
//! nodes, a blob adapter per node with continuing writes (one with a small capacity
//! so eviction shows), a migratable compute daemon moved around the ring, and
//! `demo.echo` RPC chatter. Every figure is in [`DemoConfig`] and can be
//! overridden (tests use short periods).
//!
//! ```no_run
//! # async fn run() -> Result<(), mesh_demo::DemoError> {
//! let mut demo = mesh_demo::spawn(mesh_demo::DemoConfig::default()).await?;
//! let snapshot = demo.this_node().snapshot();
//! println!("{} peers, {} daemons", snapshot.peers.len(), snapshot.daemons.len());
//! demo.shutdown().await;
//! # Ok(()) }
//! ```

pub mod corpus;
pub mod daemons;
mod workload;

use std::sync::Arc;
use std::time::{Duration, Instant};

use deck_model::{DeckClient, DeckConfig};
use mesh::testing::{Cluster, ClusterError};
use mesh::{ClusterKey, DaemonHandle, MeshConfig, MeshNode, TimingProfile};
use mesh_auth::{AdminVerifier, EntityKeypair, OperatorIdentity, OperatorRegistry, VerifierConfig};
use mesh_blobs::MeshBlobAdapter;
use mesh_rpc::node_services::NodeServices;
use mesh_rpc::{Rpc, ServeHandle};
use tokio::task::JoinHandle;

/// Every figure of the demo, with the reference's defaults.
#[derive(Clone, Debug)]
pub struct DemoConfig {
    /// Nodes in the cluster (default 9; at least 2).
    pub nodes: usize,
    /// Cadence of each node agent's log lines (default 800 ms).
    pub log_interval: Duration,
    /// Jitter around it, derived from (tick, node) (default 150 ms).
    pub log_jitter: Duration,
    /// Cadence of each requester's `demo.echo` calls (default 250 ms).
    pub rpc_interval: Duration,
    /// Deadline of those calls (default 2 s).
    pub rpc_deadline: Duration,
    /// How often the compute daemon moves to the next node (default 30 s).
    pub migration_period: Duration,
    /// Working-set size of the compute daemon (default 256 KiB).
    pub migration_state_bytes: usize,
    /// Cadence of each adapter's small blob writes (default 3 s).
    pub blob_interval: Duration,
    /// Capacity of the one small adapter, so eviction shows (default 192 KiB).
    pub small_capacity: u64,
    /// Capacity of the NRPC call tail (default 1024).
    pub nrpc_capacity: usize,
    /// Distinct operators needed per admin command (default 1).
    pub threshold: usize,
    /// Probe and failure-detection timing (default: loopback).
    pub timing: TimingProfile,
    /// How long `spawn` waits for the cluster to converge (default 30 s).
    pub converge_deadline: Duration,
    /// The operator registered in every node's verifier and used by the deck
    /// (default: a fresh identity per run).
    pub operator: Option<OperatorIdentity>,
}

impl Default for DemoConfig {
    fn default() -> Self {
        Self {
            nodes: 9,
            log_interval: Duration::from_millis(800),
            log_jitter: Duration::from_millis(150),
            rpc_interval: Duration::from_millis(250),
            rpc_deadline: Duration::from_secs(2),
            migration_period: Duration::from_secs(30),
            migration_state_bytes: 256 * 1024,
            blob_interval: Duration::from_secs(3),
            small_capacity: 192 * 1024,
            nrpc_capacity: 1024,
            threshold: 1,
            timing: TimingProfile::loopback(),
            converge_deadline: Duration::from_secs(30),
            operator: None,
        }
    }
}

/// Why the demo did not come up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DemoError {
    /// The configuration is unusable.
    #[error("invalid demo configuration: {0}")]
    Config(String),
    /// The cluster did not start or converge.
    #[error("demo cluster: {0}")]
    Cluster(#[from] ClusterError),
    /// A workload piece failed to start.
    #[error("demo workload: {0}")]
    Workload(String),
}

/// The running demo. Dropping it stops everything; [`Demo::shutdown`] does so
/// cleanly (every node leaves the cluster) and can be called twice.
pub struct Demo {
    cluster: Cluster,
    operator: OperatorIdentity,
    daemons: Vec<DaemonHandle>,
    adapters: Vec<Arc<MeshBlobAdapter>>,
    rpcs: Vec<Rpc>,
    serves: Vec<ServeHandle>,
    node_services: Vec<NodeServices>,
    tasks: Vec<JoinHandle<()>>,
    deck: Option<DeckClient>,
    converged_in: Duration,
    stopped: bool,
}

impl std::fmt::Debug for Demo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Demo")
            .field("nodes", &self.cluster.len())
            .field("operator", &self.operator.operator_id())
            .field("converged_in", &self.converged_in)
            .finish_non_exhaustive()
    }
}

/// Boots the demo cluster and its workload; returns once every node sees every
/// other as Healthy.
pub async fn spawn(config: DemoConfig) -> Result<Demo, DemoError> {
    if config.nodes < 2 {
        return Err(DemoError::Config("the demo needs at least 2 nodes".into()));
    }
    let started = Instant::now();
    // 1. The operator, registered with every node's verifier. Each node gets a
    // verifier of its own (its own replay cache and cooldowns), as separate
    // processes would.
    let operator = config
        .operator
        .clone()
        .unwrap_or_else(|| OperatorIdentity::from_keypair(EntityKeypair::generate()));
    let mut registry = OperatorRegistry::new();
    registry.register_public(operator.public());
    let registry = Arc::new(registry);
    let verifier_config = VerifierConfig {
        routine_threshold: config.threshold,
        ice_threshold: config.threshold,
        ..VerifierConfig::default()
    };
    // 2. The cluster.
    let cluster_key =
        ClusterKey::generate().map_err(|e| DemoError::Workload(format!("cluster key: {e}")))?;
    let mesh_config = MeshConfig::new(cluster_key).timing(config.timing.clone());
    let registry_for_nodes = registry.clone();
    let cluster = Cluster::start_with_configs(
        config.nodes,
        mesh_config,
        config.converge_deadline,
        move |_, cfg| {
            cfg.admin_verifier(Arc::new(AdminVerifier::with_config(
                registry_for_nodes.clone(),
                verifier_config.clone(),
            )))
        },
    )
    .await?;
    let converged_in = started.elapsed();
    tracing::info!(
        nodes = config.nodes,
        ms = converged_in.as_millis() as u64,
        "demo cluster converged"
    );

    let mut demo = Demo {
        cluster,
        operator,
        daemons: Vec::new(),
        adapters: Vec::new(),
        rpcs: Vec::new(),
        serves: Vec::new(),
        node_services: Vec::new(),
        tasks: Vec::new(),
        deck: None,
        converged_in,
        stopped: false,
    };
    workload::start(&mut demo, &config)?;
    // 3. The operator's deck on node 0: every adapter, every node's calls.
    let deck_config = DeckConfig { call_tail: config.nrpc_capacity, ..DeckConfig::default() };
    let deck =
        DeckClient::from_node_with_config(demo.this_node(), demo.operator.clone(), deck_config)
            .map_err(|e| DemoError::Workload(format!("deck: {e}")))?
            .with_blob_adapters(demo.adapters.iter().map(|a| (**a).clone()));
    for rpc in &demo.rpcs {
        deck.observe_rpc(rpc);
    }
    demo.deck = Some(deck);
    Ok(demo)
}

impl Demo {
    /// Node 0, where the operator's deck attaches.
    pub fn this_node(&self) -> &MeshNode {
        // Node 0 is never killed by the demo itself.
        self.cluster.nth(0).unwrap_or_else(|| unreachable!("node 0 runs while the demo runs"))
    }

    /// All nodes.
    pub fn nodes(&self) -> impl Iterator<Item = &MeshNode> {
        self.cluster.nodes()
    }

    /// The cluster harness (kill and restart nodes to watch the deck react).
    pub fn cluster(&mut self) -> &mut Cluster {
        &mut self.cluster
    }

    /// The operator identity registered in every node's verifier.
    pub fn operator(&self) -> &OperatorIdentity {
        &self.operator
    }

    /// The blob adapters, one per node.
    pub fn blob_adapters(&self) -> &[Arc<MeshBlobAdapter>] {
        &self.adapters
    }

    /// Every node's RPC endpoint (node order).
    pub fn rpc_endpoints(&self) -> &[Rpc] {
        &self.rpcs
    }

    /// The operator's deck, attached to node 0.
    pub fn deck(&self) -> &DeckClient {
        // Set at the end of `spawn` and only taken by `shutdown`.
        self.deck.as_ref().unwrap_or_else(|| unreachable!("the deck lives as long as the demo"))
    }

    /// How long the cluster took to converge.
    pub fn converged_in(&self) -> Duration {
        self.converged_in
    }

    /// Stops the workload and shuts every node down cleanly. Idempotent.
    pub async fn shutdown(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        self.deck = None;
        for task in self.tasks.drain(..) {
            task.abort();
            let _ = task.await;
        }
        self.serves.clear();
        self.node_services.clear();
        self.daemons.clear();
        self.adapters.clear();
        self.rpcs.clear();
        self.cluster.shutdown().await;
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        for task in self.tasks.drain(..) {
            task.abort();
        }
    }
}
