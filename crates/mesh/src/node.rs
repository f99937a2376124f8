//! `MeshNode`: one node's socket, sessions, membership and probes.
//!
//! Two tasks run per node: the receive loop (every datagram is handled inline:
//! handshake step or decrypt-and-dispatch) and the maintenance tick (probes,
//! health, handshake retries, gossip, garbage collection). Sends happen on the
//! caller's task: look up the route, encrypt, `send_to`.
//!
//! Submodules split `Inner`'s methods by concern: [`handshake`], [`receive`],
//! [`maintain`].

mod admin;
mod handshake;
mod maintain;
mod migrate;
mod receive;
mod state;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::task::Poll;
use std::time::{Duration, Instant};

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
use crate::wire::{Frame, MemberEntry, Packet, TAG_LEN, TRANSPORT_HEADER};
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
    socket: UdpSocket,
    /// A duplicate of the socket's descriptor for synchronous sends: tokio's
    /// `try_send_to` refuses until the reactor has seen the socket writable,
    /// while the kernel would take the datagram at once.
    send_socket: std::net::UdpSocket,
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
    /// How many new members each peer may introduce through gossip.
    gossip_budget: Mutex<crate::budget::HashedBudget>,
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
    /// Members heard of through gossip that have no session yet.
    known: HashMap<NodeId, Known>,
    initiating: HashMap<u32, Initiating>,
    responding: HashMap<u32, Responding>,
    /// Initiator sessions waiting for the responder's first packet: the
    /// responder may still refuse us (allow-list), so the peer is not announced
    /// until it speaks on the session.
    unconfirmed: HashMap<u32, Unconfirmed>,
    seeds: Vec<SocketAddr>,
    next_seed_dial: Option<Instant>,
    next_probe: Option<Instant>,
    next_gossip: Option<Instant>,
    probe_seq: u64,
    /// Counts probe rounds; each peer is pinged every other round (see tick).
    probe_round: u64,
}

struct Peer {
    public: PublicKey,
    addr: SocketAddr,
    version: String,
    flags: u32,
    sessions: Vec<Arc<Session>>,
    rtt: RttStats,
    left: bool,
    first_seen: Instant,
    /// Last health reported through `changes`, to notice transitions.
    last_label: &'static str,
    next_redial: Instant,
    redial_backoff: u32,
    /// When it became Unreachable (forgotten `forget_after` later).
    down_since: Option<Instant>,
}

struct Known {
    addr: SocketAddr,
    learned: Instant,
    next_attempt: Instant,
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
    /// Binds the socket, starts the node's tasks on the current tokio runtime and
    /// dials the seeds. Returns as soon as the node is listening; use
    /// [`MeshNode::changes`] or [`MeshNode::peers`] to see the cluster form.
    pub async fn start(config: MeshConfig) -> Result<MeshNode, MeshError> {
        validate(&config)?;
        let seeds = resolve_seeds(&config.seeds).await?;
        let (socket, send_socket) = bind(&config)?;
        let local_addr = socket.local_addr()?;
        let identity = match &config.identity {
            Some(key) => key.clone(),
            None => EntityKeypair::try_generate().map_err(|e| MeshError::Random(e.to_string()))?,
        };
        let static_key = StaticKey::generate()?;
        let proof = IdentityProof::encode_for(&identity, &static_key.public, config.flags);
        let mut idx_seed = [0u8; 4];
        getrandom::getrandom(&mut idx_seed).map_err(|e| MeshError::Random(e.to_string()))?;
        let (stop, _) = watch::channel(false);
        let (changes, _) = watch::channel(0);
        let incarnation = mesh_auth::unix_now_ms();
        let (log_tx, log_rx) = mpsc::channel(config.limits.log_queue.max(1));
        let rings = state::Rings::new(config.limits.log_ring, config.limits.failure_ring);
        let mut torn_tail = None;
        let ledger = match &config.audit_path {
            None => AuditLedger::new(),
            Some(path) => {
                let (ledger, torn) = AuditLedger::open(path).map_err(MeshError::Audit)?;
                if torn > 0 {
                    tracing::warn!(path = %path.display(), bytes = torn, "audit ledger had a torn tail; truncated");
                    torn_tail = Some((path.display().to_string(), torn));
                }
                // Envelopes this node verified before a restart stay replays: the
                // verifier relearns their nonces (those whose signatures counted).
                // ICE targets accepted within the cooldown keep cooling down.
                if let Some(verifier) = &config.admin_verifier {
                    let entries = ledger.since(0, usize::MAX);
                    let now_ms = mesh_auth::unix_now_ms();
                    let seen = entries
                        .iter()
                        .filter(|e| !e.record.operators.is_empty())
                        .map(|e| (e.record.nonce, e.record.ts_ms));
                    let nonces = verifier.remember_seen(seen, now_ms);
                    let ice = entries
                        .iter()
                        .filter(|e| {
                            e.record.class == mesh_auth::CommandClass::Ice
                                && e.record.outcome == mesh_auth::AuditOutcome::Accepted
                        })
                        .map(|e| (e.record.target.clone(), e.record.ts_ms));
                    let cooling = verifier.remember_ice(ice, now_ms);
                    tracing::debug!(
                        nonces,
                        cooling,
                        "replay cache and ICE cooldowns restored from the audit ledger"
                    );
                }
                ledger
            }
        };
        let admin = match &config.admin_state_path {
            None => AdminState::default(),
            Some(path) => AdminState::load(path).map_err(|reason| MeshError::AdminState {
                path: path.display().to_string(),
                reason,
            })?,
        };
        let this_node = ThisNode {
            node_id: identity.node_id(),
            addr: local_addr,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            flags: config.flags,
            resources: Default::default(),
            admin: AdminState::default(),
        };
        let (snapshot, _) = watch::channel(Arc::new(MeshSnapshot::empty(this_node, incarnation)));
        let inner = Arc::new(Inner {
            socket,
            send_socket,
            local_addr,
            node_id: identity.node_id(),
            identity,
            static_key,
            proof,
            config,
            epoch: Instant::now(),
            state: Mutex::new(State { seeds, ..State::default() }),
            sessions: RwLock::new(FastMap::default()),
            routes: RwLock::new(FastMap::default()),
            subscribers: RwLock::new(FastMap::default()),
            next_sink_id: AtomicU64::new(1),
            counters: Counters::default(),
            closed: AtomicBool::new(false),
            stop,
            changes,
            next_msg_id: AtomicU32::new(0),
            idx_base: u32::from_le_bytes(idx_seed),
            idx_counter: AtomicU32::new(0),
            incarnation,
            daemons: RwLock::new(BTreeMap::new()),
            log_tx,
            logs_dropped: AtomicU64::new(0),
            rings: Mutex::new(rings),
            fold: Mutex::new(state::FoldState::new()),
            snapshot,
            dirty: AtomicBool::new(true),
            push_now: AtomicBool::new(true),
            admin: Mutex::new(admin),
            ledger: Mutex::new(ledger),
            admin_budget: Mutex::new(admin::unsigned_budget()),
            opener_guard: Mutex::new(handshake::OpenerGuard::new()),
            gossip_budget: Mutex::new(receive::gossip_budget()),
            migrations: Mutex::new(migrate::Migrations::default()),
        });
        if let Some((path, bytes)) = torn_tail {
            let message = format!("{bytes} bytes of a torn final entry were cut off at start");
            inner.record_failure("audit_torn_tail", &path, &message);
        }
        tracing::debug!(node = %inner.node_id, addr = %local_addr, "mesh node started");
        let recv = tokio::spawn(recv_loop(inner.clone()));
        let tick = tokio::spawn(tick_loop(inner.clone()));
        let handle = MeshHandle { inner: inner.clone() };
        let fold_rx = handle
            .subscribe_messages(state::FOLD_KIND)
            .map_err(|e| MeshError::Config(e.to_string()))?;
        let state_task = tokio::spawn(state::state_loop(inner.clone(), fold_rx));
        let log_task = tokio::spawn(state::log_loop(inner.clone(), log_rx));
        let migrate_rx = handle
            .subscribe_messages(migrate::MIGRATE_KIND)
            .map_err(|e| MeshError::Config(e.to_string()))?;
        let migrate_task = tokio::spawn(migrate::migrate_loop(inner.clone(), migrate_rx));
        inner.dial_seeds(Instant::now());
        Ok(MeshNode {
            handle,
            tasks: Mutex::new(vec![recv, tick, state_task, log_task, migrate_task]),
        })
    }

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

impl MeshHandle {
    /// The node's id.
    pub fn node_id(&self) -> NodeId {
        self.inner.node_id
    }

    /// The bound socket address.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    /// True once the node has been shut down.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }

    /// See [`MeshNode::peers`].
    pub fn peers(&self) -> Vec<PeerInfo> {
        self.inner.peers()
    }

    /// Counters.
    pub fn metrics(&self) -> MeshMetrics {
        self.inner.counters.snapshot()
    }

    /// See [`MeshNode::changes`].
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.inner.changes.subscribe()
    }

    /// Sends `payload` as a message of `kind` to `to`, best effort: no
    /// acknowledgement, no retransmission. Messages above the datagram budget are
    /// fragmented (and yield to the runtime between bursts). Fails fast when there
    /// is no session, the peer is Unreachable, or the message is too large.
    pub async fn send(
        &self,
        to: NodeId,
        kind: MessageKind,
        payload: &[u8],
    ) -> Result<(), SendError> {
        if payload.len() <= self.single_datagram_max() {
            return self.send_now(to, kind, payload);
        }
        let inner = &self.inner;
        let session = self.route(to, payload.len(), inner.config.limits.max_message)?;
        let budget = inner.config.limits.datagram_budget - TRANSPORT_HEADER - TAG_LEN;
        let piece = budget - Frame::FRAGMENT_OVERHEAD;
        let count = payload.len().div_ceil(piece) as u32;
        let msg_id = inner.next_msg_id.fetch_add(1, Ordering::Relaxed);
        let mut plain = Vec::with_capacity(budget);
        for (index, chunk) in split(payload, piece).enumerate() {
            plain.clear();
            Frame::Fragment { msg_id, index: index as u32, count, kind: kind.0, payload: chunk }
                .encode_into(&mut plain);
            let datagram =
                session.seal(&plain).ok_or_else(|| SendError::Io("encryption failed".into()))?;
            inner.send_datagram_waiting(&datagram, session.addr).await?;
            if (index + 1) % FRAGMENT_BURST == 0 {
                tokio::task::yield_now().await;
            }
        }
        Counters::bump(&inner.counters.messages_out);
        Ok(())
    }

    /// The largest payload [`send_now`](Self::send_now) takes: what fits in one
    /// datagram after the framing (from `MeshConfig::limits.datagram_budget`).
    pub fn single_datagram_max(&self) -> usize {
        let limits = &self.inner.config.limits;
        (limits.datagram_budget - TRANSPORT_HEADER - TAG_LEN - Frame::MESSAGE_OVERHEAD)
            .min(limits.max_message)
    }

    /// Sends a message that fits one datagram at once, without awaiting: for
    /// synchronous code such as an inline handler answering a request. The
    /// same best-effort delivery and fast failures as [`send`](Self::send); a
    /// payload above [`single_datagram_max`](Self::single_datagram_max) gives
    /// [`SendError::TooLarge`] with that limit (use `send`, which fragments).
    pub fn send_now(&self, to: NodeId, kind: MessageKind, payload: &[u8]) -> Result<(), SendError> {
        let session = self.route(to, payload.len(), self.single_datagram_max())?;
        self.inner.send_frame_now(&session, &Frame::Message { kind: kind.0, payload })?;
        Counters::bump(&self.inner.counters.messages_out);
        Ok(())
    }

    /// The checks every send makes, then the session to send on.
    fn route(&self, to: NodeId, size: usize, max: usize) -> Result<Arc<Session>, SendError> {
        let inner = &self.inner;
        if self.is_closed() {
            return Err(SendError::Shutdown);
        }
        if size > max {
            return Err(SendError::TooLarge { size, max });
        }
        let (session, unreachable) = {
            let routes = inner.routes.read();
            let route = routes.get(&to).ok_or(SendError::NoRoute(to))?;
            (route.session.clone(), route.unreachable)
        };
        // The same rule as `peers()`, evaluated now rather than at the last tick.
        let silent_us = inner.now_us().saturating_sub(session.last_recv_us.load(Ordering::Relaxed));
        if unreachable || silent_us > inner.config.timing.unreachable_after.as_micros() as u64 {
            return Err(SendError::Unreachable(to));
        }
        Ok(session)
    }

    /// Encodes `value` with postcard and sends it (see [`MeshHandle::send`]).
    pub async fn send_typed<T: Serialize>(
        &self,
        to: NodeId,
        kind: MessageKind,
        value: &T,
    ) -> Result<(), SendError> {
        let payload = postcard::to_stdvec(value).map_err(|e| SendError::Io(e.to_string()))?;
        self.send(to, kind, &payload).await
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<MeshSnapshot> {
        self.inner.snapshot.borrow().clone()
    }

    /// See [`MeshNode::subscribe`].
    pub fn subscribe(&self) -> watch::Receiver<Arc<MeshSnapshot>> {
        self.inner.snapshot.subscribe()
    }

    /// See [`MeshNode::logs_since`].
    pub fn logs_since(&self, from_seq: u64, limit: usize) -> Vec<LogEntry> {
        self.inner.rings.lock().logs.since(from_seq, limit)
    }

    /// See [`MeshNode::failures_since`].
    pub fn failures_since(&self, from_seq: u64, limit: usize) -> Vec<FailureRecord> {
        self.inner.rings.lock().failures.since(from_seq, limit)
    }

    /// Publishes an event on this node. Log lines never block (dropped and
    /// counted when the queue is full); fails only once the node is shut down.
    pub fn publish(&self, event: MeshEvent) -> Result<(), SendError> {
        if self.is_closed() {
            return Err(SendError::Shutdown);
        }
        match event {
            MeshEvent::LogLine { daemon, level, message } => {
                let line = PendingLine { ts_ms: mesh_auth::unix_now_ms(), daemon, level, message };
                if self.inner.log_tx.try_send(line).is_err() {
                    self.inner.logs_dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
            MeshEvent::Failure { kind, subject, message } => {
                self.inner.record_failure(&kind, &subject, &message);
            }
        }
        Ok(())
    }

    /// Verifies `envelope`, records the outcome in the audit ledger, applies the
    /// command. A node without a verifier refuses everything (`no_verifier`);
    /// routine commands are refused while frozen (`frozen`); a command for another
    /// node is refused (`not_target`); an ICE command whose blast-radius hash does
    /// not match this node's simulation is refused (`simulation_mismatch`).
    ///
    /// Only envelopes with at least one valid signature of a registered operator
    /// are recorded in the ledger; others are refused and counted in
    /// [`MeshMetrics::refused`]. The ledger append fsyncs: call this from a
    /// blocking context (`tokio::task::spawn_blocking`), not on an async worker.
    pub fn apply_admin(&self, envelope: &SignedEnvelope) -> AdminOutcome {
        self.apply_admin_inner(None, envelope)
    }

    /// Sends `peer` a member-list frame with whatever entries the caller
    /// likes, as a hostile key holder could: for tests of what gossip a node
    /// refuses (feature `testing`). Returns false without a session to `peer`.
    #[cfg(feature = "testing")]
    #[doc(hidden)]
    pub fn testing_send_members(&self, peer: NodeId, members: &[(NodeId, SocketAddr)]) -> bool {
        let route = self.inner.routes.read().get(&peer).cloned();
        let Some(route) = route else { return false };
        let list =
            members.iter().map(|(node_id, addr)| MemberEntry { node_id: *node_id, addr: *addr });
        self.inner.send_frame(&route.session, &Frame::Members(list.collect()));
        true
    }

    /// [`MeshHandle::apply_admin`] for an envelope delivered by node `from`:
    /// envelopes without a valid operator signature count against `from`'s
    /// budget, and over it they are refused unread (`rate_limited`).
    pub fn apply_admin_from(&self, from: NodeId, envelope: &SignedEnvelope) -> AdminOutcome {
        self.apply_admin_inner(Some(from), envelope)
    }

    /// [`MeshHandle::apply_admin_from`] for an envelope's wire bytes, decoded
    /// with the bounded decoder ([`SignedEnvelope::decode`]: size, target and
    /// payload caps). Bytes that do not decode are refused (`malformed`) and
    /// counted like an unsigned envelope.
    pub fn apply_admin_bytes(&self, from: NodeId, bytes: &[u8]) -> AdminOutcome {
        match SignedEnvelope::decode(bytes) {
            Ok(envelope) => self.apply_admin_inner(Some(from), &envelope),
            Err(e) => {
                if !self.inner.admin_budget.lock().take(from, Instant::now()) {
                    Counters::bump(&self.inner.counters.admin_rate_limited);
                } else {
                    Counters::bump(&self.inner.counters.admin_unsigned);
                }
                AdminOutcome::Rejected {
                    code: "malformed".into(),
                    reason: format!("the envelope does not decode: {e}"),
                    audit_seq: None,
                }
            }
        }
    }

    fn apply_admin_inner(&self, from: Option<NodeId>, envelope: &SignedEnvelope) -> AdminOutcome {
        if self.is_closed() {
            return AdminOutcome::Rejected {
                code: "shutdown".into(),
                reason: "the node is shut down".into(),
                audit_seq: None,
            };
        }
        self.inner.apply_admin(from, envelope)
    }

    /// See [`MeshNode::register_factory`].
    pub fn register_factory<F>(&self, kind: &str, factory: F)
    where
        F: Fn(&[u8]) -> Result<Box<dyn Daemon>, String> + Send + Sync + 'static,
    {
        self.inner.migrations.lock().factories.insert(kind.to_owned(), Arc::new(factory));
    }

    /// See [`MeshNode::migrate`].
    pub fn migrate(
        &self,
        daemon: OriginHash,
        target: NodeId,
    ) -> Result<MigrationHandle, MigrationError> {
        self.inner.start_migration(daemon, target)
    }

    /// See [`MeshNode::audit_since`].
    pub fn audit_since(&self, from_seq: u64, limit: usize) -> Vec<AuditEntry> {
        self.inner.ledger.lock().since(from_seq, limit).to_vec()
    }

    /// See [`MeshNode::admin_state`].
    pub fn admin_state(&self) -> AdminState {
        self.inner.admin.lock().clone()
    }

    /// See [`MeshNode::register_daemon`].
    pub fn register_daemon(
        &self,
        daemon: Box<dyn Daemon>,
        keypair: EntityKeypair,
    ) -> Result<DaemonHandle, DaemonError> {
        if self.is_closed() {
            return Err(DaemonError::Shutdown);
        }
        let name = daemon.name().to_owned();
        crate::daemon::validate_name(&name)
            .map_err(|reason| DaemonError::InvalidName { name: name.clone(), reason })?;
        let slot = Arc::new(DaemonSlot::new(keypair, daemon, name, mesh_auth::unix_now_ms()));
        self.inner.insert_daemon(slot.clone())?;
        let weak = Arc::downgrade(&self.inner);
        Ok(DaemonHandle {
            logger: DaemonLogger { slot: slot.clone(), tx: self.inner.log_tx.clone() },
            slot,
            unregister: Some(Box::new(move |slot| {
                if let Some(inner) = weak.upgrade() {
                    inner.remove_daemon_slot(slot);
                }
            })),
        })
    }

    /// See [`MeshNode::control_daemon`].
    pub fn control_daemon(
        &self,
        id: OriginHash,
        control: DaemonControl,
    ) -> Result<(), DaemonError> {
        let slot = self.inner.daemons.read().get(&id).cloned().ok_or(DaemonError::NotFound(id))?;
        slot.enqueue(control);
        Ok(())
    }

    /// Subscribes to messages of `kind`. Several subscriptions to one kind each
    /// get every message.
    pub fn subscribe_messages(&self, kind: MessageKind) -> Result<Subscription, SendError> {
        if self.is_closed() {
            return Err(SendError::Shutdown);
        }
        let (tx, rx) = mpsc::channel(self.inner.config.limits.subscriber_queue.max(1));
        self.inner.edit_sinks(kind, |list| {
            list.retain(|s| !matches!(s, Sink::Queue(q) if q.is_closed()));
            list.push(Sink::Queue(tx));
        });
        Ok(Subscription { kind, rx })
    }

    /// Registers `handler` to run inline on the node's receive task for every
    /// message of `kind`: no queue, no task wake-up, the lowest latency there is.
    ///
    /// The handler must be quick and must not block (hand real work to a task).
    /// It runs while other datagrams wait. Dropping the returned guard removes it.
    pub fn on_message<F>(&self, kind: MessageKind, handler: F) -> Result<InlineHandler, SendError>
    where
        F: Fn(Incoming) + Send + Sync + 'static,
    {
        if self.is_closed() {
            return Err(SendError::Shutdown);
        }
        let id = self.inner.next_sink_id.fetch_add(1, Ordering::Relaxed);
        self.inner.edit_sinks(kind, |list| list.push(Sink::Inline(id, Arc::new(handler))));
        Ok(InlineHandler { inner: Arc::downgrade(&self.inner), kind, id })
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

    fn send_datagram(&self, bytes: &[u8], to: SocketAddr) -> Result<(), SendError> {
        match self.try_send_datagram(bytes, to) {
            Ok(()) => Ok(()),
            Err(e) => {
                Counters::bump(&self.counters.send_failed);
                Err(SendError::Io(e.to_string()))
            }
        }
    }

    fn try_send_datagram(&self, bytes: &[u8], to: SocketAddr) -> std::io::Result<()> {
        self.send_socket.send_to(bytes, to)?;
        Counters::bump(&self.counters.datagrams_out);
        self.counters.bytes_out.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Sends a datagram, waiting for socket space if the kernel buffer is full
    /// (bulk sends of fragments).
    async fn send_datagram_waiting(&self, bytes: &[u8], to: SocketAddr) -> Result<(), SendError> {
        for _ in 0..100 {
            match self.try_send_datagram(bytes, to) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    tokio::time::sleep(Duration::from_micros(200)).await;
                }
                Err(e) => {
                    Counters::bump(&self.counters.send_failed);
                    return Err(SendError::Io(e.to_string()));
                }
            }
        }
        Counters::bump(&self.counters.send_failed);
        Err(SendError::Io("socket send buffer stayed full".into()))
    }

    fn send_plain(&self, session: &Session, plain: &[u8]) -> Result<(), SendError> {
        let datagram =
            session.seal(plain).ok_or_else(|| SendError::Io("encryption failed".into()))?;
        self.send_datagram(&datagram, session.addr)
    }

    /// Encodes, encrypts and sends a frame known to fit one datagram, in this
    /// thread's reusable buffers: the common send allocates nothing.
    fn send_frame_now(&self, session: &Session, frame: &Frame<'_>) -> Result<(), SendError> {
        SEND_BUFFERS.with(|buffers| {
            let Ok(mut buffers) = buffers.try_borrow_mut() else {
                // Only if a send ever ran inside another on this thread.
                let mut plain = Vec::new();
                frame.encode_into(&mut plain);
                return self.send_plain(session, &plain);
            };
            let SendBuffers { plain, sealed } = &mut *buffers;
            plain.clear();
            frame.encode_into(plain);
            session
                .seal_into(plain, sealed)
                .ok_or_else(|| SendError::Io("encryption failed".into()))?;
            let sent = self.send_datagram(sealed, session.addr);
            // Keep memory bounded after an occasional large frame.
            if plain.capacity() > SEND_BUFFER_KEEP {
                *plain = Vec::new();
                *sealed = Vec::new();
            }
            sent
        })
    }

    fn send_frame(&self, session: &Session, frame: &Frame<'_>) {
        let mut plain = Vec::with_capacity(64);
        frame.encode_into(&mut plain);
        if plain.len() + TRANSPORT_HEADER + TAG_LEN > self.config.limits.datagram_budget {
            // Control frames (member lists) that outgrow a datagram go as fragments.
            if let Frame::Members(_) = frame {
                self.send_large_control(session, &plain);
            }
            return;
        }
        let _ = self.send_plain(session, &plain);
    }

    /// Member lists of big clusters exceed one datagram; wrap the encoded frame in
    /// an internal message kind and fragment it.
    fn send_large_control(&self, session: &Session, encoded: &[u8]) {
        let budget = self.config.limits.datagram_budget - TRANSPORT_HEADER - TAG_LEN;
        let piece = budget - Frame::FRAGMENT_OVERHEAD;
        let count = encoded.len().div_ceil(piece) as u32;
        let msg_id = self.next_msg_id.fetch_add(1, Ordering::Relaxed);
        let mut plain = Vec::with_capacity(budget);
        for (index, chunk) in split(encoded, piece).enumerate() {
            plain.clear();
            Frame::Fragment {
                msg_id,
                index: index as u32,
                count,
                kind: CONTROL_KIND.0,
                payload: chunk,
            }
            .encode_into(&mut plain);
            let _ = self.send_plain(session, &plain);
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
        // Subscribers see the end of their streams.
        self.subscribers.write().clear();
        tracing::debug!(node = %self.node_id, "mesh node stopped");
    }
}

/// Reusable per-thread buffers of [`Inner::send_frame_now`].
#[derive(Default)]
struct SendBuffers {
    plain: Vec<u8>,
    sealed: Vec<u8>,
}

/// Buffers that grew past this are dropped after use rather than kept.
const SEND_BUFFER_KEEP: usize = 64 * 1024;

thread_local! {
    static SEND_BUFFERS: std::cell::RefCell<SendBuffers> =
        std::cell::RefCell::new(SendBuffers::default());
}

/// Message kind used internally for control frames too big for one datagram.
const CONTROL_KIND: MessageKind = MessageKind::named("mesh/control-fragmented/v1");

async fn recv_loop(inner: Arc<Inner>) {
    let mut stop = inner.stop.subscribe();
    let mut buf = vec![0u8; 65_536];
    let mut scratch = vec![0u8; 65_536];
    // One stop future for the task's life (not one per datagram); it also sees a
    // stop sent before this task first ran.
    let stopped = async move {
        while !*stop.borrow() {
            if stop.changed().await.is_err() {
                break;
            }
        }
    };
    tokio::pin!(stopped);
    loop {
        // The socket first: the stop future is polled only when no datagram is
        // waiting (at the latest when tokio's cooperative budget runs out, every
        // 128 datagrams), which keeps the per-datagram cost down.
        let received = std::future::poll_fn(|cx| {
            let mut read = tokio::io::ReadBuf::new(&mut buf);
            match inner.socket.poll_recv_from(cx, &mut read) {
                Poll::Ready(result) => {
                    Poll::Ready(Some(result.map(|from| (read.filled().len(), from))))
                }
                Poll::Pending => stopped.as_mut().poll(cx).map(|()| None),
            }
        })
        .await;
        match received {
            None => break,
            Some(Ok((n, from))) => inner.handle_datagram(&buf[..n], from, &mut scratch),
            Some(Err(e)) => {
                // ICMP errors surface here on some platforms; keep serving.
                tracing::trace!(error = %e, "recv_from failed");
            }
        }
    }
}

async fn tick_loop(inner: Arc<Inner>) {
    let mut stop = inner.stop.subscribe();
    let period = (inner.config.timing.probe_interval / 2).max(Duration::from_millis(5));
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // A stop sent before this task first ran is not a "change".
        if *stop.borrow() {
            break;
        }
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            _ = interval.tick() => inner.tick(),
        }
    }
}

fn validate(config: &MeshConfig) -> Result<(), MeshError> {
    let l = &config.limits;
    let min_budget =
        TRANSPORT_HEADER + TAG_LEN + Frame::FRAGMENT_OVERHEAD + crate::fragment::MIN_PIECE;
    if l.datagram_budget < min_budget
        || l.datagram_budget > l.max_datagram
        || l.max_datagram > 65_507
    {
        return Err(MeshError::Config(format!(
            "datagram_budget must be between {min_budget} and max_datagram ({}), and max_datagram at most 65507",
            l.max_datagram
        )));
    }
    let t = &config.timing;
    if t.probe_interval.is_zero()
        || t.unreachable_after <= t.probe_interval
        || t.degraded_after > t.unreachable_after
    {
        return Err(MeshError::Config(
            "timing: need 0 < probe_interval < unreachable_after and degraded_after <= unreachable_after".into(),
        ));
    }
    Ok(())
}

async fn resolve_seeds(seeds: &[String]) -> Result<Vec<SocketAddr>, MeshError> {
    let mut out = Vec::new();
    for seed in seeds {
        let bad = |reason: String| MeshError::BadSeed { seed: seed.clone(), reason };
        let addr = match seed.parse::<SocketAddr>() {
            Ok(addr) => addr,
            Err(_) => tokio::net::lookup_host(seed.as_str())
                .await
                .map_err(|e| bad(e.to_string()))?
                .next()
                .ok_or_else(|| bad("resolves to no address".into()))?,
        };
        if addr.port() == 0 {
            return Err(bad("port 0 is not a node address".into()));
        }
        if addr.ip().is_unspecified() || addr.ip().is_multicast() {
            return Err(bad("not a unicast host address".into()));
        }
        out.push(addr);
    }
    Ok(out)
}

fn bind(config: &MeshConfig) -> Result<(UdpSocket, std::net::UdpSocket), MeshError> {
    use socket2::{Domain, Protocol, Socket, Type};
    let addr = config.bind;
    let err = |source| MeshError::Bind { addr, source };
    let socket =
        Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP)).map_err(err)?;
    // Bigger kernel buffers absorb bursts of fragments; the kernel may cap them.
    let size = config.limits.socket_buffer;
    if let Err(e) = socket.set_recv_buffer_size(size) {
        tracing::debug!(error = %e, "cannot enlarge receive buffer");
    }
    if let Err(e) = socket.set_send_buffer_size(size) {
        tracing::debug!(error = %e, "cannot enlarge send buffer");
    }
    socket.set_nonblocking(true).map_err(err)?;
    socket.bind(&addr.into()).map_err(err)?;
    let std_socket: std::net::UdpSocket = socket.into();
    let send_socket = std_socket.try_clone().map_err(err)?;
    Ok((UdpSocket::from_std(std_socket).map_err(err)?, send_socket))
}
