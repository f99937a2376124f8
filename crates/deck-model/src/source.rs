//! [`DeckSource`]: what views and the admin flow need from a cluster, whoever
//! provides it ([`crate::DeckClient`] in-process; a remote deck over mesh-rpc
//! would implement the same trait, and views and the admin flow would not change).
//!
//! # How often to refresh
//!
//! Call `refresh()` about every [`REFRESH_INTERVAL`] while the deck is shown (at
//! most one in flight) and right after an admin action; call the cheap, local
//! [`DeckSource::sync_snapshot`] whenever the snapshot watch
//! ([`DeckSource::snapshot_changes`]) fires. A refresh asks each reachable node
//! for the first page of all three streams in one RPC (`streams.since`; further
//! pages only when there is a backlog; nothing is fetched twice) and returns within
//! the poll deadline even when a node does not answer. Redraw when
//! [`DeckSource::changes`] moves. Remote nodes must serve
//! `mesh_rpc::node_services` for their streams to be read; a node that does not
//! shows its read error on NODES and its detail page.
//!
//! # Admin commands
//!
//! A source only lends its signers and carries envelopes
//! ([`DeckSource::deliver`]); the flow that re-simulates, signs, sends and
//! reports lives in [`crate::Admin::confirm`], once for every source. Only a
//! [`SignedEnvelope`] can be delivered, so nothing leaves a deck unsigned.

use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use mesh::{MeshSnapshot, NodeId};
use mesh_auth::{OperatorId, OperatorIdentity, SignedEnvelope};
use parking_lot::RwLockReadGuard;
use serde::Serialize;
use tokio::sync::watch;

use crate::data::DeckData;
use crate::report::{CommitReport, NodeResult};

/// How long to wait between refreshes when nothing else prompts one.
pub const REFRESH_INTERVAL: Duration = Duration::from_millis(500);

/// A boxed future, so [`DeckSource`] can be used as a trait object.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A read lock on a source's [`DeckData`]; hold it only while building views.
pub struct DataRef<'a>(RwLockReadGuard<'a, DeckData>);

impl DataRef<'_> {
    /// Wraps a read guard (for [`DeckSource`] implementations).
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
    /// Who signs every command sent through this source: the operator of
    /// [`DeckSource::operator`] first, then operators who co-sign everything.
    fn signers(&self) -> &[OperatorIdentity];
    /// Carries one signed envelope to `node` and says what became of it. Never
    /// fails: a node that cannot be reached, or whose answer does not come
    /// back, is [`NodeResult::NotDelivered`]. Send actions with
    /// [`crate::Admin::confirm`], which calls this once per target.
    fn deliver(&self, node: NodeId, envelope: SignedEnvelope) -> BoxFuture<'static, NodeResult>;
    /// Keeps the report of an action that was sent (the status bar, AUDIT and
    /// the headless JSON show recent ones).
    fn record(&self, report: CommitReport);
}
