//! `Cluster`: n nodes on 127.0.0.1 in one process, for tests and benchmarks.
//!
//! Enabled by the `testing` feature. Every node binds port 0; node 0 is the seed of
//! the others. Nodes are stopped when the cluster is dropped.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mesh_auth::{EntityKeypair, NodeId};

use crate::{MeshConfig, MeshError, MeshNode};

/// How long [`Cluster::start`] waits for convergence by default.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(30);

/// Why a cluster did not come up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// A node failed to start.
    #[error("node {index} failed to start: {source}")]
    Start {
        /// Which node.
        index: usize,
        /// Why.
        #[source]
        source: MeshError,
    },
    /// Some nodes did not see each other as Healthy within the deadline.
    #[error(
        "cluster did not converge within {deadline:?}; pairs (observer, peer) missing: {missing:?}"
    )]
    NotConverged {
        /// The deadline that passed.
        deadline: Duration,
        /// `(i, j)`: node `i` does not see node `j` as Healthy.
        missing: Vec<(usize, usize)>,
    },
    /// The index is out of range or the node is not running.
    #[error("node {0} does not exist or is not running")]
    NoSuchNode(usize),
}

struct Slot {
    node: Option<MeshNode>,
    identity: EntityKeypair,
    node_id: NodeId,
    addr: SocketAddr,
}

/// Adjusts node `i`'s configuration (for example its own admin verifier).
pub type Customize = Arc<dyn Fn(usize, MeshConfig) -> MeshConfig + Send + Sync>;

/// A set of in-process nodes on loopback.
pub struct Cluster {
    slots: Vec<Slot>,
    template: MeshConfig,
    customize: Option<Customize>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("nodes", &self.slots.len())
            .field("running", &self.slots.iter().filter(|s| s.node.is_some()).count())
            .finish()
    }
}

impl Cluster {
    /// Boots `n` nodes from `config` (its identity and seeds are replaced) and
    /// returns once every node has a live session with every other and sees n-1
    /// Healthy peers, or fails naming the pairs that did not converge within
    /// [`DEFAULT_DEADLINE`].
    pub async fn start(n: usize, config: MeshConfig) -> Result<Cluster, ClusterError> {
        Self::start_with_deadline(n, config, DEFAULT_DEADLINE).await
    }

    /// [`Cluster::start`] with an explicit deadline.
    pub async fn start_with_deadline(
        n: usize,
        config: MeshConfig,
        deadline: Duration,
    ) -> Result<Cluster, ClusterError> {
        let cluster = Self::boot(n, config).await?;
        cluster.wait_converged(deadline).await?;
        Ok(cluster)
    }

    /// [`Cluster::start_with_deadline`] where `customize` adjusts each node's
    /// configuration (also on [`Cluster::restart`]).
    pub async fn start_with_configs(
        n: usize,
        config: MeshConfig,
        deadline: Duration,
        customize: impl Fn(usize, MeshConfig) -> MeshConfig + Send + Sync + 'static,
    ) -> Result<Cluster, ClusterError> {
        let cluster = Self::boot_with(n, config, Some(Arc::new(customize))).await?;
        cluster.wait_converged(deadline).await?;
        Ok(cluster)
    }

    /// Starts `n` nodes without waiting for them to converge.
    pub async fn boot(n: usize, config: MeshConfig) -> Result<Cluster, ClusterError> {
        Self::boot_with(n, config, None).await
    }

    async fn boot_with(
        n: usize,
        mut config: MeshConfig,
        customize: Option<Customize>,
    ) -> Result<Cluster, ClusterError> {
        config.seeds.clear();
        config.identity = None;
        let mut slots = Vec::with_capacity(n);
        let mut seed: Option<SocketAddr> = None;
        for index in 0..n {
            let identity = EntityKeypair::generate();
            let mut cfg = config.clone().identity(identity.clone());
            if let Some(seed) = seed {
                cfg = cfg.seed(seed.to_string());
            }
            if let Some(customize) = &customize {
                cfg = customize(index, cfg);
            }
            let node = MeshNode::start(cfg)
                .await
                .map_err(|source| ClusterError::Start { index, source })?;
            let addr = node.local_addr();
            seed.get_or_insert(addr);
            slots.push(Slot { node: Some(node), node_id: identity.node_id(), identity, addr });
        }
        Ok(Cluster { slots, template: config, customize })
    }

    /// Number of slots (running or not).
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// True when the cluster has no nodes.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The running nodes.
    pub fn nodes(&self) -> impl Iterator<Item = &MeshNode> {
        self.slots.iter().filter_map(|s| s.node.as_ref())
    }

    /// Node `i`, if it is running.
    pub fn nth(&self, i: usize) -> Option<&MeshNode> {
        self.slots.get(i).and_then(|s| s.node.as_ref())
    }

    /// Node `i`'s identity (kept across [`Cluster::restart`], replaced by
    /// [`Cluster::restart_with_new_identity`]).
    pub fn identity(&self, i: usize) -> Option<&EntityKeypair> {
        self.slots.get(i).map(|s| &s.identity)
    }

    /// Stops node `i` abruptly, as a crash would (peers are not told).
    pub fn kill(&mut self, i: usize) -> Result<(), ClusterError> {
        let node =
            self.slots.get_mut(i).and_then(|s| s.node.take()).ok_or(ClusterError::NoSuchNode(i))?;
        node.crash();
        Ok(())
    }

    /// Starts node `i` again with the same identity on the same address, seeded by
    /// another running node. Does not wait for convergence.
    pub async fn restart(&mut self, i: usize) -> Result<(), ClusterError> {
        let identity = self.stopped_slot(i)?.identity.clone();
        self.start_slot(i, identity).await
    }

    /// Starts stopped node `i` again on the same address with a fresh identity
    /// (a new keypair, so a new [`NodeId`]), as a machine reinstalled with new
    /// keys would come back; seeded by another running node. Returns the new
    /// id. Does not wait for convergence.
    pub async fn restart_with_new_identity(&mut self, i: usize) -> Result<NodeId, ClusterError> {
        self.stopped_slot(i)?;
        let identity = EntityKeypair::generate();
        let node_id = identity.node_id();
        self.start_slot(i, identity).await?;
        Ok(node_id)
    }

    /// Slot `i`, if it exists and its node is stopped.
    fn stopped_slot(&self, i: usize) -> Result<&Slot, ClusterError> {
        match self.slots.get(i) {
            Some(slot) if slot.node.is_none() => Ok(slot),
            _ => Err(ClusterError::NoSuchNode(i)),
        }
    }

    /// Starts slot `i`'s node with `identity` on the slot's address; on success
    /// the slot takes the identity.
    async fn start_slot(&mut self, i: usize, identity: EntityKeypair) -> Result<(), ClusterError> {
        let addr = self.stopped_slot(i)?.addr;
        let seed = self
            .slots
            .iter()
            .enumerate()
            .find(|(j, s)| *j != i && s.node.is_some())
            .map(|(_, s)| s.addr);
        let mut cfg = self.template.clone().identity(identity.clone()).bind(addr);
        if let Some(seed) = seed {
            cfg = cfg.seed(seed.to_string());
        }
        if let Some(customize) = &self.customize {
            cfg = customize(i, cfg);
        }
        // The old socket is closed, but give the OS a moment if it still holds it.
        let mut attempts = 0;
        let node = loop {
            match MeshNode::start(cfg.clone()).await {
                Ok(node) => break node,
                Err(MeshError::Bind { .. }) if attempts < 50 => {
                    attempts += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(source) => return Err(ClusterError::Start { index: i, source }),
            }
        };
        let slot = &mut self.slots[i];
        slot.node_id = identity.node_id();
        slot.identity = identity;
        slot.node = Some(node);
        Ok(())
    }

    /// Pairs `(i, j)` of running nodes where `i` does not see `j` as Healthy.
    pub fn missing_pairs(&self) -> Vec<(usize, usize)> {
        (0..self.slots.len()).flat_map(|i| self.missing_for(i)).collect()
    }

    /// Pairs `(i, j)` where running node `i` does not see running node `j` as
    /// Healthy.
    fn missing_for(&self, i: usize) -> Vec<(usize, usize)> {
        let Some(node) = self.slots.get(i).and_then(|s| s.node.as_ref()) else {
            return Vec::new();
        };
        let healthy: HashSet<NodeId> =
            node.peers().into_iter().filter(|p| p.health.is_healthy()).map(|p| p.node_id).collect();
        self.slots
            .iter()
            .enumerate()
            .filter(|(j, b)| *j != i && b.node.is_some() && !healthy.contains(&b.node_id))
            .map(|(j, _)| (i, j))
            .collect()
    }

    /// Waits until every running node sees every other running node as Healthy.
    /// Returns how long it took.
    ///
    /// Cheap enough to time boots with: a node is re-examined only when its
    /// change counter moved (plus a full pass every 50 ms).
    pub async fn wait_converged(&self, deadline: Duration) -> Result<Duration, ClusterError> {
        let started = Instant::now();
        let mut watchers: Vec<_> =
            self.slots.iter().map(|s| s.node.as_ref().map(|n| n.changes())).collect();
        let mut pending: Vec<bool> = self.slots.iter().map(|s| s.node.is_some()).collect();
        let mut last_full = Instant::now();
        loop {
            let full = last_full.elapsed() > Duration::from_millis(50);
            if full {
                last_full = Instant::now();
            }
            for (i, watcher) in watchers.iter_mut().enumerate() {
                let Some(watcher) = watcher else { continue };
                let moved = watcher.has_changed().unwrap_or(false);
                if moved {
                    watcher.borrow_and_update();
                }
                if moved || full {
                    pending[i] = !self.missing_for(i).is_empty();
                }
            }
            if pending.iter().all(|p| !p) {
                // Confirm with one full pass (health may have moved since).
                let missing = self.missing_pairs();
                if missing.is_empty() {
                    return Ok(started.elapsed());
                }
            }
            if started.elapsed() > deadline {
                return Err(ClusterError::NotConverged { deadline, missing: self.missing_pairs() });
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Waits until `condition` holds (checked every millisecond) or the deadline
    /// passes; returns whether it held.
    pub async fn wait_for(
        &self,
        deadline: Duration,
        mut condition: impl FnMut(&Cluster) -> bool,
    ) -> bool {
        let started = Instant::now();
        loop {
            if condition(self) {
                return true;
            }
            if started.elapsed() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Shuts every running node down (they leave cleanly). Idempotent.
    pub async fn shutdown(&mut self) {
        for slot in &mut self.slots {
            if let Some(node) = slot.node.take() {
                node.shutdown().await;
            }
        }
    }
}

/// Waits until `condition` holds for `node`'s snapshot, woken by each new
/// snapshot rather than by polling, or until `deadline` has passed; returns
/// whether it held.
pub async fn wait_snapshot(
    node: &MeshNode,
    deadline: Duration,
    mut condition: impl FnMut(&crate::MeshSnapshot) -> bool,
) -> bool {
    let mut snapshots = node.subscribe();
    let until = tokio::time::Instant::now() + deadline;
    loop {
        if condition(&snapshots.borrow_and_update()) {
            return true;
        }
        if tokio::time::timeout_at(until, snapshots.changed()).await.is_err() {
            return condition(&node.snapshot());
        }
    }
}
