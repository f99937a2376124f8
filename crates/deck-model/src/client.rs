//! [`DeckSource`] (what views and admin actions need from a cluster) and
//! [`DeckClient`], the in-process source built on a [`MeshNode`].
//!
//! A deck reads the snapshot of the node it sits on (the cluster-wide fold) and,
//! on every [`DeckSource::refresh`], pulls new pages of every node's log, failure
//! and audit streams (`since(seq)` with a cursor per node and stream, locally or
//! through `mesh_rpc::node_services` on other nodes), the RPC calls its observers
//! saw, and the inventories of its blob adapters, into bounded merged tails.
//!
//! # How often to refresh
//!
//! Call `refresh()` about every 500 ms while the deck is shown (at most one in
//! flight) and right after an admin action; call the cheap, local
//! [`DeckSource::sync_snapshot`] whenever the snapshot watch
//! ([`DeckSource::snapshot_changes`]) fires. A refresh asks each reachable node
//! for the first page of all three streams in one RPC (`streams.since`; further
//! pages only when there is a backlog; nothing is fetched twice) and returns within the poll
//! deadline even when a node does not answer. Redraw when [`DeckSource::changes`]
//! moves. Remote nodes must serve `mesh_rpc::node_services` for their streams to
//! be read; a node that does not shows its read error on NODES and its detail
//! page.
//!
//! A remote deck (over mesh-rpc from another process) implements the same trait;
//! views and the admin flow take `&dyn DeckSource` and do not change.

use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use mesh::{MeshHandle, MeshNode, MeshSnapshot, NodeId};
use mesh_auth::{OperatorId, OperatorIdentity};
use mesh_rpc::{CallOptions, ObserverId, Rpc, RpcObserver};
use parking_lot::{Mutex, RwLock, RwLockReadGuard};
use serde::Serialize;
use tokio::sync::watch;

use crate::admin::{Admin, CommitReport, NodeOutcome, NodeResult, PendingAction, sign};
use crate::blobs::BlobSource;
use crate::calls::CallTail;
use crate::config::DeckConfig;
use crate::data::DeckData;
use crate::error::DeckError;

mod poll;

/// A boxed future, so [`DeckSource`] can be used as a trait object.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A read lock on a source's [`DeckData`]; hold it only while building views.
pub struct DataRef<'a>(RwLockReadGuard<'a, DeckData>);

impl DataRef<'_> {
    /// Wraps a read guard (for other [`DeckSource`] implementations).
    pub fn new(guard: RwLockReadGuard<'_, DeckData>) -> DataRef<'_> {
        DataRef(guard)
    }
}

impl Deref for DataRef<'_> {
    type Target = DeckData;
    fn deref(&self) -> &DeckData {
        &self.0
    }
}

impl std::fmt::Debug for DataRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataRef").field("generation", &self.0.generation).finish()
    }
}

/// What one refresh brought.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RefreshReport {
    /// New log lines.
    pub logs: usize,
    /// New failure records.
    pub failures: usize,
    /// New audit entries.
    pub audit: usize,
    /// New call records.
    pub calls: usize,
    /// Nodes read from.
    pub nodes: usize,
    /// Nodes that could not be read, with the reason.
    pub errors: Vec<(NodeId, String)>,
    /// Whether anything changed (the change counter moved).
    pub changed: bool,
}

/// Where a deck gets its data and sends its commands.
pub trait DeckSource: Send + Sync {
    /// The operator signing commands.
    fn operator(&self) -> OperatorId;
    /// The node the deck reads through.
    fn node_id(&self) -> NodeId;
    /// The data views are built from.
    fn data(&self) -> DataRef<'_>;
    /// The freshest snapshot (admin simulations run on it).
    fn current_snapshot(&self) -> Arc<MeshSnapshot>;
    /// A counter that moves whenever the data changed (redraw then).
    fn changes(&self) -> watch::Receiver<u64>;
    /// Fires when the cluster snapshot changes (refresh then).
    fn snapshot_changes(&self) -> watch::Receiver<Arc<MeshSnapshot>>;
    /// Pulls what is new (see the module docs for how often).
    fn refresh(&self) -> BoxFuture<'_, RefreshReport>;
    /// Takes the freshest snapshot into the data without reading any stream:
    /// cheap and local, for every snapshot change (streams are read by
    /// [`DeckSource::refresh`] on its own cadence). True when the data changed.
    fn sync_snapshot(&self) -> bool;
    /// Signs and sends a reviewed action (use [`Admin::confirm`]).
    fn commit<'a>(
        &'a self,
        pending: &'a PendingAction,
    ) -> BoxFuture<'a, Result<CommitReport, DeckError>>;
}

/// The in-process deck: reads and commands the cluster through one [`MeshNode`].
pub struct DeckClient {
    mesh: MeshHandle,
    rpc: Rpc,
    signers: Vec<OperatorIdentity>,
    config: DeckConfig,
    calls: Arc<CallTail>,
    observers: Mutex<Vec<(Rpc, ObserverId)>>,
    blobs: RwLock<Vec<Arc<dyn BlobSource>>>,
    data: RwLock<DeckData>,
    poll: tokio::sync::Mutex<poll::PollState>,
    changes: watch::Sender<u64>,
}

impl std::fmt::Debug for DeckClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeckClient")
            .field("node", &self.mesh.node_id())
            .field("operator", &self.operator())
            .field("blob_sources", &self.blobs.read().len())
            .finish_non_exhaustive()
    }
}

impl DeckClient {
    /// A deck on `node`, signing as `identity`, with the default [`DeckConfig`].
    ///
    /// Installs the call-tail observer on the node's RPC endpoint. Fails if the
    /// node is shut down.
    pub fn from_node(node: &MeshNode, identity: OperatorIdentity) -> Result<DeckClient, DeckError> {
        Self::from_handle(node.handle(), identity, DeckConfig::default())
    }

    /// A deck on `node` with an explicit configuration.
    pub fn from_node_with_config(
        node: &MeshNode,
        identity: OperatorIdentity,
        config: DeckConfig,
    ) -> Result<DeckClient, DeckError> {
        Self::from_handle(node.handle(), identity, config)
    }

    /// A deck on the node behind `mesh`.
    pub fn from_handle(
        mesh: MeshHandle,
        identity: OperatorIdentity,
        config: DeckConfig,
    ) -> Result<DeckClient, DeckError> {
        let rpc = Rpc::from_handle(mesh.clone())?;
        let mut calls = CallTail::new(config.call_tail);
        if config.hide_own_polling {
            calls = calls.hiding_polling_by(mesh.node_id());
        }
        let calls = Arc::new(calls);
        let observer = rpc.add_observer(calls.clone());
        let snapshot = mesh.snapshot();
        let data = DeckData::new(snapshot, identity.operator_id(), &config);
        Ok(DeckClient {
            mesh,
            observers: Mutex::new(vec![(rpc.clone(), observer)]),
            rpc,
            signers: vec![identity],
            calls,
            blobs: RwLock::new(Vec::new()),
            data: RwLock::new(data),
            poll: tokio::sync::Mutex::new(poll::PollState::default()),
            changes: watch::Sender::new(0),
            config,
        })
    }

    /// Adds blob adapters whose inventories the deck merges.
    pub fn with_blob_adapters<B: BlobSource + 'static>(
        self,
        adapters: impl IntoIterator<Item = B>,
    ) -> DeckClient {
        for a in adapters {
            self.add_blob_source(Arc::new(a));
        }
        self
    }

    /// Adds an operator who co-signs every command (for a threshold above 1).
    pub fn with_cosigner(mut self, identity: OperatorIdentity) -> DeckClient {
        if !self.signers.iter().any(|s| s.public() == identity.public()) {
            self.signers.push(identity);
        }
        self
    }

    /// Adds one blob adapter.
    pub fn add_blob_source(&self, source: Arc<dyn BlobSource>) {
        self.blobs.write().push(source);
    }

    /// Feeds the call tail from another node's RPC endpoint too (an in-process
    /// cluster can show every node's calls). Removed when the deck is dropped.
    pub fn observe_rpc(&self, rpc: &Rpc) -> ObserverId {
        let id = rpc.add_observer(self.calls.clone());
        self.observers.lock().push((rpc.clone(), id));
        id
    }

    /// The call-tail observer, to install elsewhere by hand.
    pub fn call_observer(&self) -> Arc<dyn RpcObserver> {
        self.calls.clone()
    }

    /// The raw call tail (capacity [`DeckConfig::call_tail`], default 1024).
    pub fn call_tail(&self) -> &Arc<CallTail> {
        &self.calls
    }

    /// The configuration in force.
    pub fn config(&self) -> &DeckConfig {
        &self.config
    }

    /// The node's RPC endpoint the deck uses.
    pub fn rpc(&self) -> &Rpc {
        &self.rpc
    }

    /// Admin actions signed by this deck's operator(s).
    pub fn admin(&self) -> Admin<'_> {
        Admin::new(self)
    }

    /// Blob adapters given to the deck.
    pub fn blob_sources(&self) -> usize {
        self.blobs.read().len()
    }

    fn bump(&self) -> u64 {
        let mut data = self.data.write();
        data.generation += 1;
        let g = data.generation;
        drop(data);
        self.changes.send_replace(g);
        g
    }

    async fn do_commit(&self, pending: &PendingAction) -> Result<CommitReport, DeckError> {
        let snapshot = self.mesh.snapshot();
        let fresh = PendingAction::prepare(pending.command.clone(), &snapshot);
        if fresh.digest != pending.digest {
            let mut fresh = fresh;
            fresh.cosigners = pending.cosigners.clone();
            return Err(DeckError::BlastRadiusChanged { fresh: Box::new(fresh) });
        }
        let mut signers: Vec<&OperatorIdentity> = self.signers.iter().collect();
        for c in &pending.cosigners {
            if !signers.iter().any(|s| s.public() == c.public()) {
                signers.push(c);
            }
        }
        let options = CallOptions::default().deadline(self.config.commit_deadline);
        let mut tasks = tokio::task::JoinSet::new();
        for (i, node) in pending.targets.iter().copied().enumerate() {
            // One envelope per node, each with its own nonce.
            let Some(envelope) = sign(&signers, &pending.command, pending.digest) else {
                continue;
            };
            let rpc = self.rpc.clone();
            let options = options.clone();
            tasks.spawn(async move {
                let result =
                    match mesh_rpc::node_services::commit(&rpc, node, &envelope, options).await {
                        Ok(outcome) => NodeResult::from(outcome),
                        Err(e) => NodeResult::NotDelivered { error: e.to_string() },
                    };
                (i, NodeOutcome { node, result })
            });
        }
        let mut outcomes: Vec<(usize, NodeOutcome)> = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(o) => outcomes.push(o),
                Err(e) => tracing::error!(error = %e, "admin commit task failed"),
            }
        }
        outcomes.sort_by_key(|(i, _)| *i);
        let report = CommitReport {
            verb: pending.command.verb(),
            target: pending.command.target(),
            payload_digest: payload_digest(&pending.command),
            signers: signers.iter().map(|s| s.operator_id()).collect(),
            sent_at_ms: mesh_auth::unix_now_ms(),
            outcomes: outcomes.into_iter().map(|(_, o)| o).collect(),
        };
        tracing::info!(summary = %report.summary(), "admin action");
        {
            let mut data = self.data.write();
            if data.actions.len() >= self.config.action_tail.max(1) {
                data.actions.pop_front();
            }
            data.actions.push_back(report.clone());
        }
        self.bump();
        Ok(report)
    }
}

/// The payload digest audit records carry for `command`.
fn payload_digest(command: &mesh::AdminCommand) -> [u8; 32] {
    mesh_auth::EnvelopeDraft::new(command.class(), command.target(), command.to_payload())
        .finish()
        .payload_digest()
}

impl Drop for DeckClient {
    fn drop(&mut self) {
        for (rpc, id) in self.observers.lock().drain(..) {
            rpc.remove_observer(id);
        }
    }
}

impl DeckSource for DeckClient {
    fn operator(&self) -> OperatorId {
        self.signers[0].operator_id()
    }

    fn node_id(&self) -> NodeId {
        self.mesh.node_id()
    }

    fn data(&self) -> DataRef<'_> {
        DataRef(self.data.read())
    }

    fn current_snapshot(&self) -> Arc<MeshSnapshot> {
        self.mesh.snapshot()
    }

    fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    fn snapshot_changes(&self) -> watch::Receiver<Arc<MeshSnapshot>> {
        self.mesh.subscribe()
    }

    fn refresh(&self) -> BoxFuture<'_, RefreshReport> {
        Box::pin(poll::refresh(self))
    }

    fn sync_snapshot(&self) -> bool {
        let snapshot = self.mesh.snapshot();
        let mut data = self.data.write();
        if data.snapshot.seq == snapshot.seq && data.snapshot.epoch_ms == snapshot.epoch_ms {
            return false;
        }
        data.snapshot = snapshot;
        data.now_ms = mesh_auth::unix_now_ms();
        data.generation += 1;
        let generation = data.generation;
        drop(data);
        self.changes.send_replace(generation);
        true
    }

    fn commit<'a>(
        &'a self,
        pending: &'a PendingAction,
    ) -> BoxFuture<'a, Result<CommitReport, DeckError>> {
        Box::pin(self.do_commit(pending))
    }
}

/// How long to wait between refreshes when nothing else prompts one.
pub const REFRESH_INTERVAL: Duration = Duration::from_millis(500);
