//! [`DeckClient`], the in-process [`DeckSource`] built on a [`MeshNode`].
//!
//! A deck reads the snapshot of the node it sits on (the cluster-wide fold) and,
//! on every [`DeckSource::refresh`], pulls new pages of every node's log, failure
//! and audit streams (`since(seq)` with a cursor per node and stream, locally or
//! through `mesh_rpc::node_services` on other nodes), the RPC calls its observers
//! saw, and the inventories of its blob adapters, into bounded merged tails
//! (see [`crate::source`] for how often to refresh). Admin envelopes go to their
//! node with `admin.commit` (`mesh_rpc::node_services::commit`).

use std::sync::Arc;

use mesh::{MeshHandle, MeshNode, MeshSnapshot, NodeId};
use mesh_auth::{OperatorId, OperatorIdentity, SignedEnvelope};
use mesh_rpc::{CallOptions, ObserverId, Rpc, RpcObserver};
use parking_lot::{Mutex, RwLock};
use tokio::sync::watch;

use crate::admin::Admin;
use crate::blobs::BlobSource;
use crate::calls::CallTail;
use crate::config::DeckConfig;
use crate::data::DeckData;
use crate::error::DeckError;
use crate::report::{CommitReport, NodeResult};
use crate::source::{BoxFuture, DataRef, DeckSource, RefreshReport};

mod poll;

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

    fn bump(&self) {
        let mut data = self.data.write();
        data.generation += 1;
        let g = data.generation;
        drop(data);
        self.changes.send_replace(g);
    }
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
        DataRef::new(self.data.read())
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

    fn signers(&self) -> &[OperatorIdentity] {
        &self.signers
    }

    fn deliver(&self, node: NodeId, envelope: SignedEnvelope) -> BoxFuture<'static, NodeResult> {
        let rpc = self.rpc.clone();
        let options = CallOptions::default().deadline(self.config.commit_deadline);
        Box::pin(async move {
            match mesh_rpc::node_services::commit(&rpc, node, &envelope, options).await {
                Ok(outcome) => NodeResult::Delivered(outcome),
                Err(e) => NodeResult::NotDelivered(e.to_string()),
            }
        })
    }

    fn record(&self, report: CommitReport) {
        {
            let mut data = self.data.write();
            if data.actions.len() >= self.config.action_tail.max(1) {
                data.actions.pop_front();
            }
            data.actions.push_back(report);
        }
        self.bump();
    }
}
