//! `MeshNode`: one node's socket, sessions, membership and probes.
//!
//! Two tasks run per node: the receive loop (every datagram is handled inline:
//! handshake step or decrypt-and-dispatch) and the maintenance tick (probes,
//! health, handshake retries, gossip, garbage collection). Sends happen on the
//! caller's task: look up the route, encrypt, `send_to`.
//!
//! This file holds the types and `MeshNode`'s API; submodules split the work by
//! concern: [`handle`] (`MeshHandle`'s API), [`start`] (configuration checks,
//! binding, restoring state, spawning tasks), [`send`] (routes, fragmentation,
//! the synchronous send path), [`tasks`] (the receive loop and the maintenance
//! tick), [`handshake`], [`receive`], [`maintain`], [`state`] (fold and
//! snapshot), [`admin`], [`migrate`].

mod admin;
mod handle;
mod handshake;
mod maintain;
mod migrate;
mod receive;
mod send;
mod start;
mod state;
mod tasks;

pub(crate) use receive::dialable;
use send::Carried;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::task::Poll;
use std::time::Duration;

use tokio::time::Instant;

use bytes::Bytes;
use mesh_auth::{EntityKeypair, NodeId, OriginHash, PublicKey};
use parking_lot::{Mutex, RwLock};
use serde::Serialize;
use snow::HandshakeState;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::admin::{AdminOutcome, AdminState};
use crate::config::MeshConfig;
use crate::daemon::{
    Daemon, DaemonControl, DaemonError, DaemonHandle, DaemonLogger, DaemonSlot, PendingLine,
};
use crate::error::{MeshError, SendError};
use crate::fragment::{Reassembler, ReassemblyDrop, ReassemblyLimits, split};
use crate::logs::{FailureRecord, LogEntry, LogLevel};
use crate::message::{Incoming, MessageKind, Subscription};
use crate::metrics::{Counters, MeshMetrics};
use crate::migrate::{MigrationError, MigrationHandle};
use crate::noise::{IdentityProof, MAX_HANDSHAKE_MSG, StaticKey};
use crate::peer::{Health, PeerInfo, RttStats};
use crate::session::{OpenError, Session, SessionParams};
use crate::snapshot::{MeshSnapshot, ThisNode};
use crate::swim::{Swim, SwimMsg};
use crate::wire::{Frame, Packet, TAG_LEN, TRANSPORT_HEADER};
use mesh_auth::{AuditEntry, AuditLedger, SignedEnvelope};

/// At most this many sessions are kept per peer (oldest dropped first).
const MAX_SESSIONS_PER_PEER: usize = 3;
/// Fragments sent before yielding to the runtime, so receivers keep up.
const FRAGMENT_BURST: usize = 64;

/// A running mesh node. Dropping it stops the node (peers are told it left).
#[derive(Debug)]
pub struct MeshNode {
    handle: MeshHandle,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

/// A cheap, cloneable reference to a node for sending and subscribing from any
/// task. Operations fail with [`SendError::Shutdown`] once the node is stopped.
#[derive(Clone, Debug)]
pub struct MeshHandle {
    inner: Arc<Inner>,
}

/// Maps looked up for every datagram: foldhash (randomly seeded per map), as
/// SipHash costs more than the lookup itself. Keys are our own values (session
/// indices, node ids of authenticated peers, message kinds).
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

pub(crate) struct Inner {
    /// The UDP socket (or, in tests, another transport).
    net: crate::transport::Net,
    local_addr: SocketAddr,
    identity: EntityKeypair,
    node_id: NodeId,
    static_key: StaticKey,
    proof: Vec<u8>,
    config: MeshConfig,
    epoch: Instant,
    state: Mutex<State>,
    sessions: RwLock<FastMap<u32, Arc<Session>>>,
    routes: RwLock<FastMap<NodeId, Route>>,
    /// Copy-on-write lists, so dispatch holds no lock while handlers run.
    subscribers: RwLock<FastMap<MessageKind, Arc<Vec<Sink>>>>,
    next_sink_id: AtomicU64,
    counters: Counters,
    closed: AtomicBool,
    stop: watch::Sender<bool>,
    changes: watch::Sender<u64>,
    next_msg_id: AtomicU32,
    idx_base: u32,
    idx_counter: AtomicU32,
    /// This node's start time (ms since the Unix epoch): its fold incarnation.
    incarnation: u64,
    daemons: RwLock<BTreeMap<OriginHash, Arc<DaemonSlot>>>,
    log_tx: mpsc::Sender<PendingLine>,
    /// Node-level lines dropped (daemon lines count on their daemon).
    logs_dropped: AtomicU64,
    rings: Mutex<state::Rings>,
    fold: Mutex<state::FoldState>,
    snapshot: watch::Sender<Arc<MeshSnapshot>>,
    /// Something the snapshot shows has changed since the last rebuild.
    dirty: AtomicBool,
    /// This node's summary must be pushed at the next tick (daemon set changed).
    push_now: AtomicBool,
    admin: Mutex<AdminState>,
    ledger: Mutex<AuditLedger>,
    /// Per-peer budget for admin envelopes without a valid operator signature.
    admin_budget: Mutex<crate::budget::HashedBudget>,
    /// Replay and budget checks for handshake openers.
    opener_guard: Mutex<handshake::OpenerGuard>,
    /// Membership (SWIM): who is in the cluster and in what state.
    swim: Mutex<Swim>,
    migrations: Mutex<migrate::Migrations>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeshNode")
            .field("node_id", &self.node_id)
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

#[derive(Clone)]
struct Route {
    session: Arc<Session>,
    unreachable: bool,
}

#[derive(Default)]
struct State {
    peers: HashMap<NodeId, Peer>,
    /// Members being dialled because something is waiting to be sent to them.
    dialing: HashMap<NodeId, Dialing>,
    initiating: HashMap<u32, Initiating>,
    responding: HashMap<u32, Responding>,
    /// Initiator sessions waiting for the responder's first packet: the
    /// responder may still refuse us (allow-list), so the peer is not announced
    /// until it speaks on the session.
    unconfirmed: HashMap<u32, Unconfirmed>,
    seeds: Vec<SocketAddr>,
    next_seed_dial: Option<Instant>,
    /// Seed dials since this node last had a peer: the first few come a
    /// quarter handshake timeout apart (a lost opener costs a joiner that
    /// much, not a whole redial interval), then every redial interval.
    seed_dials: u32,
    probe_seq: u64,
    /// When the next sweep over every peer runs (idle sessions, the session
    /// cap, peers without sessions, stale fragments): once a second rather
    /// than every tick, since it costs O(n).
    next_sweep: Option<Instant>,
}

/// A member this node has (or recently had) a session with.
struct Peer {
    public: PublicKey,
    addr: SocketAddr,
    version: String,
    flags: u32,
    sessions: Vec<Arc<Session>>,
    rtt: RttStats,
    first_seen: Instant,
}

/// Frames waiting for a session to a member (sessions are opened on demand).
struct Dialing {
    addr: SocketAddr,
    started: Instant,
    /// Encoded frames, sent once the session is up.
    queued: Vec<Vec<u8>>,
    queued_bytes: usize,
    /// Senders waiting for the session (true: it is up).
    waiters: Vec<tokio::sync::oneshot::Sender<bool>>,
}

struct Initiating {
    hs: HandshakeState,
    addr: SocketAddr,
    started: Instant,
}

struct Unconfirmed {
    session: Arc<Session>,
    proof: IdentityProof,
    started: Instant,
}

struct Responding {
    hs: HandshakeState,
    addr: SocketAddr,
    remote_idx: u32,
    started: Instant,
}

impl MeshNode {
    /// A cloneable handle for sending and subscribing from other tasks.
    pub fn handle(&self) -> MeshHandle {
        self.handle.clone()
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.handle.node_id()
    }

    /// This node's identity key.
    pub fn public_key(&self) -> PublicKey {
        self.handle.inner.identity.public()
    }

    /// The bound socket address.
    pub fn local_addr(&self) -> SocketAddr {
        self.handle.local_addr()
    }

    /// Every peer with a session (including Unreachable ones not yet forgotten),
    /// sorted by node id.
    pub fn peers(&self) -> Vec<PeerInfo> {
        self.handle.peers()
    }

    /// Counters.
    pub fn metrics(&self) -> MeshMetrics {
        self.handle.metrics()
    }

    /// See [`MeshHandle::member_state`].
    pub fn member_state(&self, id: NodeId) -> Option<crate::MemberState> {
        self.handle.member_state(id)
    }

    /// A receiver that changes whenever a peer joins, leaves or changes health.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.handle.changes()
    }

    /// Sends a message to a peer (best effort). See [`MeshHandle::send`].
    pub async fn send(
        &self,
        to: NodeId,
        kind: MessageKind,
        payload: &[u8],
    ) -> Result<(), SendError> {
        self.handle.send(to, kind, payload).await
    }

    /// Subscribes to messages of one kind. See [`MeshHandle::subscribe_messages`].
    pub fn subscribe_messages(&self, kind: MessageKind) -> Result<Subscription, SendError> {
        self.handle.subscribe_messages(kind)
    }

    /// The current snapshot of the cluster's state.
    pub fn snapshot(&self) -> Arc<MeshSnapshot> {
        self.handle.snapshot()
    }

    /// A receiver that always holds the newest snapshot (rebuilt at most once per
    /// 50 ms, and only when something changed, or every second for ages and RTTs).
    pub fn subscribe(&self) -> watch::Receiver<Arc<MeshSnapshot>> {
        self.handle.subscribe()
    }

    /// Registers a daemon; its id is `keypair.origin_hash()`. Dropping the handle
    /// unregisters it (everywhere, through the fold).
    pub fn register_daemon(
        &self,
        daemon: Box<dyn Daemon>,
        keypair: EntityKeypair,
    ) -> Result<DaemonHandle, DaemonError> {
        self.handle.register_daemon(daemon, keypair)
    }

    /// Queues a control message for a daemon on this node.
    pub fn control_daemon(
        &self,
        id: OriginHash,
        control: DaemonControl,
    ) -> Result<(), DaemonError> {
        self.handle.control_daemon(id, control)
    }

    /// Up to `limit` log lines with `seq >= from_seq`, oldest first.
    pub fn logs_since(&self, from_seq: u64, limit: usize) -> Vec<LogEntry> {
        self.handle.logs_since(from_seq, limit)
    }

    /// Up to `limit` failure records with `seq >= from_seq`, oldest first.
    pub fn failures_since(&self, from_seq: u64, limit: usize) -> Vec<FailureRecord> {
        self.handle.failures_since(from_seq, limit)
    }

    /// Verifies a signed admin command with this node's verifier, records the
    /// outcome in the audit ledger, and applies it. See [`MeshHandle::apply_admin`].
    pub fn apply_admin(&self, envelope: &SignedEnvelope) -> AdminOutcome {
        self.handle.apply_admin(envelope)
    }

    /// Registers a factory that rebuilds daemons of `kind` from migrated state.
    pub fn register_factory<F>(&self, kind: &str, factory: F)
    where
        F: Fn(&[u8]) -> Result<Box<dyn Daemon>, String> + Send + Sync + 'static,
    {
        self.handle.register_factory(kind, factory);
    }

    /// Moves a migratable daemon of this node to `target`.
    pub fn migrate(
        &self,
        daemon: OriginHash,
        target: NodeId,
    ) -> Result<MigrationHandle, MigrationError> {
        self.handle.migrate(daemon, target)
    }

    /// Up to `limit` audit entries with `seq >= from_seq`.
    pub fn audit_since(&self, from_seq: u64, limit: usize) -> Vec<AuditEntry> {
        self.handle.audit_since(from_seq, limit)
    }

    /// This node's admin state (cordon, drain, maintenance, freeze, avoid list).
    pub fn admin_state(&self) -> AdminState {
        self.handle.admin_state()
    }

    /// Leaves the cluster (peers are told) and stops the node's tasks.
    /// Idempotent.
    pub async fn shutdown(&self) {
        self.handle.inner.stop_daemons();
        self.handle.inner.close(true);
        let tasks = std::mem::take(&mut *self.tasks.lock());
        for task in tasks {
            let _ = task.await;
        }
    }

    /// Stops abruptly, as a crash would: no goodbye to peers. For tests of failure
    /// detection.
    #[cfg(feature = "testing")]
    pub fn crash(&self) {
        self.handle.inner.close(false);
        for task in self.tasks.lock().drain(..) {
            task.abort();
        }
    }
}

impl Drop for MeshNode {
    fn drop(&mut self) {
        self.handle.inner.close(true);
        for task in self.tasks.lock().drain(..) {
            task.abort();
        }
    }
}

/// Events any task can publish on a node through [`MeshHandle::publish`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MeshEvent {
    /// A log line (node-level when `daemon` is `None`).
    LogLine {
        /// The daemon it concerns, if any.
        daemon: Option<OriginHash>,
        /// Severity.
        level: LogLevel,
        /// The message (sanitized and capped on the way in).
        message: String,
    },
    /// A failure worth keeping apart from the log.
    Failure {
        /// A stable kind, e.g. `migration_failed`.
        kind: String,
        /// What it concerns.
        subject: String,
        /// Details.
        message: String,
    },
}

/// Where messages of one kind go.
#[derive(Clone)]
pub(crate) enum Sink {
    /// A bounded queue read by a [`Subscription`].
    Queue(mpsc::Sender<Incoming>),
    /// A callback run on the receive task ([`MeshHandle::on_message`]).
    Inline(u64, Arc<dyn Fn(Incoming) + Send + Sync>),
}

/// Keeps an inline message handler registered; dropping it unregisters.
#[must_use = "dropping the guard unregisters the handler"]
pub struct InlineHandler {
    inner: std::sync::Weak<Inner>,
    kind: MessageKind,
    id: u64,
}

impl std::fmt::Debug for InlineHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InlineHandler").field("kind", &self.kind).finish_non_exhaustive()
    }
}

impl Drop for InlineHandler {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.upgrade() {
            inner.edit_sinks(self.kind, |list| {
                list.retain(|s| !matches!(s, Sink::Inline(id, _) if *id == self.id));
            });
        }
    }
}

impl Inner {
    /// Tells every daemon to shut down (grace: one probe interval) and delivers it.
    fn stop_daemons(&self) {
        let grace = self.config.timing.probe_interval;
        for slot in self.daemons.read().values() {
            let _ = slot.deliver_now(DaemonControl::Shutdown { grace });
        }
    }

    /// Replaces the sink list of `kind` with an edited copy.
    fn edit_sinks(&self, kind: MessageKind, edit: impl FnOnce(&mut Vec<Sink>)) {
        let mut subs = self.subscribers.write();
        let mut list: Vec<Sink> = subs.get(&kind).map(|l| l.as_ref().clone()).unwrap_or_default();
        edit(&mut list);
        if list.is_empty() {
            subs.remove(&kind);
        } else {
            subs.insert(kind, Arc::new(list));
        }
    }

    fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }

    fn bump_changes(&self) {
        self.changes.send_modify(|v| *v = v.wrapping_add(1));
    }

    fn new_index(&self) -> u32 {
        // A per-node random base plus a counter, skipping indices in use.
        loop {
            let idx = self.idx_base.wrapping_add(
                self.idx_counter.fetch_add(1, Ordering::Relaxed).wrapping_mul(0x9E37_79B9),
            );
            let state = self.state.lock();
            if !self.sessions.read().contains_key(&idx)
                && !state.initiating.contains_key(&idx)
                && !state.responding.contains_key(&idx)
                && !state.unconfirmed.contains_key(&idx)
            {
                return idx;
            }
        }
    }

    fn reassembly_limits(&self) -> ReassemblyLimits {
        let limits = &self.config.limits;
        ReassemblyLimits {
            max_message: limits.max_message,
            max_bytes: limits.reassembly_bytes_per_session,
            max_messages: limits.reassembly_messages_per_session,
            max_piece: limits.max_datagram,
            timeout: self.config.timing.reassembly_timeout,
        }
    }

    // ----- closing -----

    fn close(&self, say_goodbye: bool) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        if say_goodbye {
            // The signed goodbye to a few members (it spreads from them), and
            // a plain one on every open session.
            let mut out = Vec::new();
            self.swim.lock().leave(&mut out);
            self.send_swim_now(out);
            let sessions: Vec<Arc<Session>> =
                self.routes.read().values().map(|r| r.session.clone()).collect();
            for session in sessions {
                self.send_frame(&session, &Frame::Leave);
            }
        }
        // send_replace, not send: `send` drops the value when no task has
        // subscribed yet (a node shut down right after start), and tasks that
        // start later would then wait for a stop that never comes.
        self.stop.send_replace(true);
        // Senders waiting for a session give up now.
        let dialing = std::mem::take(&mut self.state.lock().dialing);
        for (_, d) in dialing {
            for w in d.waiters {
                let _ = w.send(false);
            }
        }
        // Subscribers see the end of their streams.
        self.subscribers.write().clear();
        tracing::debug!(node = %self.node_id, "mesh node stopped");
    }
}

/// Message kind used internally for control frames too big for one datagram.
const CONTROL_KIND: MessageKind = MessageKind::named("mesh/control-fragmented/v1");
