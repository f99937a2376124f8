//! `Rpc`: a node's RPC endpoint, and the receive path shared by both sides.
//!
//! Every RPC message arrives through one inline mesh handler (run on the node's
//! receive task, no queue): responses complete the waiting call's oneshot there,
//! cancels abort running handlers there, and requests start their handler there
//! (see [`server`]). The caller's side lives in [`client`].
//!
//! One endpoint per node: the mesh delivers a message kind to every inline
//! handler registered for it, so two endpoints on one node would both answer
//! each request. [`Rpc::new`] therefore returns the node's existing endpoint when
//! there is one (a process-wide table of weak references, keyed by node id and
//! socket address).

mod client;
mod deadlines;
mod server;

use std::collections::{HashMap, HashSet, VecDeque};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use mesh::{InlineHandler, MeshHandle, MeshNode, NodeId};
use parking_lot::{Mutex, RwLock};
use tokio::sync::oneshot;

pub use server::{CallContext, ServeHandle};

use crate::error::RpcError;
use crate::inline::{Polled, poll_once};
use crate::observer::{CallRecord, CallStatus, RpcObserver, Side};
use crate::options::RpcConfig;
use crate::stats::{DropCounters, RpcStats, ServiceCounters};
use crate::status::StatusCode;
use crate::wire::{self, Coalescer, Header, Outcome, RPC_KIND};
use server::{Running, ServiceSlot};

/// How many timed-out or dropped call ids are remembered, to tell a late
/// response from an unknown one.
const ABANDONED_MEMORY: usize = 1024;
/// Client-side statistics are kept for at most this many service names.
const MAX_CLIENT_SERVICES: usize = 1024;

/// Maps touched on every call: foldhash (randomly seeded per map) is several
/// times cheaper than SipHash for these short keys.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Live endpoints, so a second `Rpc::new` on a node shares the first.
static ENDPOINTS: Mutex<Vec<Weak<Inner>>> = Mutex::new(Vec::new());

/// A node's RPC endpoint: serve typed services and call other nodes' services.
///
/// Cheap to clone (one `Arc`); every clone, and every `Rpc::new` on the same
/// node, is the same endpoint. Dropping the last clone unregisters it from the
/// node and stops its running handlers.
///
/// ```no_run
/// # async fn demo(a: &mesh::MeshNode, b: &mesh::MeshNode) -> Result<(), mesh_rpc::RpcError> {
/// use mesh_rpc::{CallOptions, Rpc, RpcStatus};
///
/// let server = Rpc::new(b)?;
/// let _serving = server.serve("greet", |name: String, ctx| async move {
///     Ok::<_, RpcStatus>(format!("hello {name}, from {}", ctx.caller()))
/// })?;
/// let client = Rpc::new(a)?;
/// let reply: String =
///     client.call(b.node_id(), "greet", "ada", CallOptions::default()).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Rpc {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Rpc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rpc")
            .field("node_id", &self.inner.node_id)
            .field("services", &self.services())
            .finish_non_exhaustive()
    }
}

/// Identifies an installed observer (see [`Rpc::add_observer`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ObserverId(u64);

pub(crate) struct Inner {
    mesh: MeshHandle,
    node_id: NodeId,
    config: RpcConfig,
    /// Request ids: a random start, so a restarted node does not reuse recent ids.
    next_id: AtomicU64,
    /// Our calls waiting for a response, by request id.
    pending: Mutex<FastMap<u64, Pending>>,
    /// Ids of calls that timed out or were dropped, most recent last.
    abandoned: Mutex<RecentIds>,
    services: RwLock<FastMap<Arc<str>, Arc<ServiceSlot>>>,
    next_slot_id: AtomicU64,
    /// Requests gathered for a node while other calls are in flight.
    outbox: Mutex<FastMap<NodeId, Outbox>>,
    /// Handlers running on their own task, by (caller, request id).
    running: Mutex<FastMap<(NodeId, u64), Running>>,
    /// Copy-on-write, so notifying holds no lock while observers run.
    observers: RwLock<ObserverList>,
    observer_count: AtomicUsize,
    next_observer_id: AtomicU64,
    client_stats: RwLock<FastMap<Arc<str>, Arc<ServiceCounters>>>,
    drops: DropCounters,
    /// Keeps the mesh handler registered; dropped with the endpoint.
    inline: Mutex<Option<InlineHandler>>,
    /// The task failing calls to peers that become Unreachable.
    watcher: Mutex<Option<tokio::task::AbortHandle>>,
    /// Fails calls whose deadline passed.
    deadlines: deadlines::Deadlines,
}

/// Installed observers with their ids.
type ObserverList = Arc<[(u64, Arc<dyn RpcObserver>)]>;

/// A call waiting for its response.
struct Pending {
    tx: oneshot::Sender<Reply>,
    /// Only this node may answer.
    callee: NodeId,
    /// When the call fails with Timeout (`None`: too far away to represent).
    deadline: Option<Instant>,
}

/// A response handed from the receive task to the waiting call.
struct Reply {
    outcome: ReplyOutcome,
    /// The encoded response (outcome `Ok` only); shares the received buffer.
    body: Bytes,
    /// Size of the whole response message.
    size: usize,
}

impl Reply {
    /// A reply made on this side (no response arrived): no body.
    fn local(outcome: ReplyOutcome) -> Self {
        Self { outcome, body: Bytes::new(), size: 0 }
    }
}

enum ReplyOutcome {
    Ok,
    Failed {
        code: StatusCode,
        message: String,
    },
    NoSuchService,
    TooLarge {
        size: usize,
        max: usize,
    },
    /// The mesh marked the callee Unreachable while the call waited.
    Unreachable,
    /// The deadline passed (the sweeper has already abandoned the call).
    TimedOut,
    /// Sending the batch that carried the request failed.
    Local(RpcError),
}

/// Requests gathered for one node, and their ids (to fail them together if the
/// batch cannot be sent).
pub(crate) struct Outbox {
    batch: Coalescer,
    ids: Vec<u64>,
}

impl Outbox {
    /// Adds a request (which fits a batch). Returns a full batch to send now.
    fn push(&mut self, id: u64, message: Vec<u8>) -> Option<(Vec<u8>, Vec<u64>)> {
        match self.batch.push(message) {
            None => {
                self.ids.push(id);
                None
            }
            Some(full) => Some((full, std::mem::replace(&mut self.ids, vec![id]))),
        }
    }
}

/// Messages for the node whose message is being handled, sent together.
pub(crate) struct Outgoing {
    to: NodeId,
    batch: Coalescer,
}

impl Outgoing {
    /// Queues `message`, sending at once whatever cannot wait.
    fn push(&mut self, rpc: &Arc<Inner>, message: Vec<u8>) {
        if let Some(now) = self.batch.push(message) {
            rpc.send_detached(self.to, now);
        }
    }
}

/// A bounded memory of recent ids (set plus insertion order).
#[derive(Default)]
struct RecentIds {
    order: VecDeque<u64>,
    set: HashSet<u64, foldhash::fast::RandomState>,
}

impl RecentIds {
    fn insert(&mut self, id: u64) {
        if self.set.insert(id) {
            self.order.push_back(id);
            if self.order.len() > ABANDONED_MEMORY {
                if let Some(old) = self.order.pop_front() {
                    self.set.remove(&old);
                }
            }
        }
    }

    fn contains(&self, id: u64) -> bool {
        self.set.contains(&id)
    }
}

impl Rpc {
    /// The endpoint of `node`, with the default [`RpcConfig`]: the existing one if
    /// the node has one, else a new one.
    pub fn new(node: &MeshNode) -> Result<Rpc, RpcError> {
        Self::open(node.handle(), None)
    }

    /// [`Rpc::new`] from a [`MeshHandle`].
    pub fn from_handle(mesh: MeshHandle) -> Result<Rpc, RpcError> {
        Self::open(mesh, None)
    }

    /// The node's endpoint with `config`. Fails with [`RpcError::ConfigConflict`]
    /// if the node already has an endpoint with a different configuration.
    pub fn with_config(mesh: MeshHandle, config: RpcConfig) -> Result<Rpc, RpcError> {
        Self::open(mesh, Some(config))
    }

    fn open(mesh: MeshHandle, config: Option<RpcConfig>) -> Result<Rpc, RpcError> {
        if mesh.is_closed() {
            return Err(RpcError::Shutdown);
        }
        let mut endpoints = ENDPOINTS.lock();
        endpoints.retain(|weak| weak.strong_count() > 0);
        let existing = endpoints.iter().filter_map(Weak::upgrade).find(|inner| {
            inner.node_id == mesh.node_id()
                && inner.mesh.local_addr() == mesh.local_addr()
                && !inner.mesh.is_closed()
        });
        if let Some(inner) = existing {
            if config.as_ref().is_some_and(|c| *c != inner.config) {
                return Err(RpcError::ConfigConflict);
            }
            return Ok(Rpc { inner });
        }
        let mut seed = [0u8; 8];
        // Without OS randomness, fall back to the clock: ids only need to differ
        // from a previous run's recent ones.
        if getrandom::getrandom(&mut seed).is_err() {
            let nanos = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            seed = nanos.to_le_bytes();
        }
        let inner = Arc::new(Inner {
            node_id: mesh.node_id(),
            mesh,
            config: config.unwrap_or_default(),
            next_id: AtomicU64::new(u64::from_le_bytes(seed) >> 1),
            pending: Mutex::new(FastMap::default()),
            abandoned: Mutex::new(RecentIds::default()),
            services: RwLock::new(FastMap::default()),
            next_slot_id: AtomicU64::new(1),
            outbox: Mutex::new(FastMap::default()),
            running: Mutex::new(FastMap::default()),
            observers: RwLock::new(Arc::new([])),
            observer_count: AtomicUsize::new(0),
            next_observer_id: AtomicU64::new(1),
            client_stats: RwLock::new(FastMap::default()),
            drops: DropCounters::default(),
            inline: Mutex::new(None),
            watcher: Mutex::new(None),
            deadlines: deadlines::Deadlines::new(),
        });
        let weak = Arc::downgrade(&inner);
        let guard = inner
            .mesh
            .on_message(RPC_KIND, move |message| {
                if let Some(inner) = weak.upgrade() {
                    inner.on_message(message);
                }
            })
            .map_err(|e| RpcError::from_send(e, inner.node_id))?;
        *inner.inline.lock() = Some(guard);
        // Outside a runtime there is no watcher: calls to a node that dies then
        // wait for their deadline instead of failing early.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let task = runtime.spawn(watch_peers(Arc::downgrade(&inner), inner.mesh.changes()));
            *inner.watcher.lock() = Some(task.abort_handle());
        }
        endpoints.push(Arc::downgrade(&inner));
        tracing::debug!(node = %inner.node_id, "rpc endpoint started");
        Ok(Rpc { inner })
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.inner.node_id
    }

    /// The mesh handle the endpoint sends through.
    pub fn mesh(&self) -> &MeshHandle {
        &self.inner.mesh
    }

    /// The endpoint's limits.
    pub fn config(&self) -> &RpcConfig {
        &self.inner.config
    }

    /// The names of the services this node serves, sorted.
    pub fn services(&self) -> Vec<String> {
        let mut names: Vec<String> =
            self.inner.services.read().keys().map(|k| k.to_string()).collect();
        names.sort();
        names
    }

    /// Counters: per served service, per called service, drops, and what is in
    /// flight right now.
    pub fn stats(&self) -> RpcStats {
        let inner = &self.inner;
        let mut services: Vec<_> =
            inner.services.read().values().map(|s| s.counters.snapshot(Side::Server)).collect();
        services.extend(inner.client_stats.read().values().map(|c| c.snapshot(Side::Client)));
        services.sort_by(|a, b| {
            (a.side == Side::Server, &a.service).cmp(&(b.side == Side::Server, &b.service))
        });
        RpcStats {
            services,
            drops: inner.drops.snapshot(),
            pending_calls: inner.pending.lock().len(),
            running_handlers: inner.running.lock().len(),
        }
    }

    /// Installs an observer; it sees every call that finishes from now on, on
    /// both sides. See [`RpcObserver`] for what it must not do.
    pub fn add_observer(&self, observer: Arc<dyn RpcObserver>) -> ObserverId {
        let id = self.inner.next_observer_id.fetch_add(1, Relaxed);
        let mut list = self.inner.observers.write();
        let mut next: Vec<_> = list.iter().cloned().collect();
        next.push((id, observer));
        self.inner.observer_count.store(next.len(), Relaxed);
        *list = next.into();
        ObserverId(id)
    }

    /// Removes an observer; returns whether it was installed.
    pub fn remove_observer(&self, id: ObserverId) -> bool {
        let mut list = self.inner.observers.write();
        let next: Vec<_> = list.iter().filter(|(i, _)| *i != id.0).cloned().collect();
        let found = next.len() != list.len();
        self.inner.observer_count.store(next.len(), Relaxed);
        *list = next.into();
        found
    }
}

impl Inner {
    /// Every RPC message of the node, on the mesh receive task. Responses the
    /// handlers produce meanwhile are gathered and sent together at the end.
    fn on_message(self: &Arc<Self>, message: mesh::Incoming) {
        let mut out = Outgoing { to: message.from, batch: Coalescer::new(self.config.batch_bytes) };
        self.on_one(message.from, &message.payload, &message.payload, &mut out, true);
        if let Some(rest) = out.batch.take() {
            self.send_detached(message.from, rest);
        }
    }

    /// One message (`bytes`, inside the received `payload`).
    fn on_one(
        self: &Arc<Self>,
        from: NodeId,
        payload: &Bytes,
        bytes: &[u8],
        out: &mut Outgoing,
        outermost: bool,
    ) {
        let (header, body) = match wire::decode(bytes) {
            Ok(decoded) => decoded,
            Err(e) => {
                DropCounters::bump(&self.drops.decode_failures);
                tracing::debug!(from = %from, error = %e, "undecodable rpc message");
                return;
            }
        };
        match header {
            Header::Request { id, deadline_us, service } => {
                let body = payload.slice_ref(body);
                self.on_request(from, id, deadline_us, service, body, bytes.len(), out)
            }
            Header::Response { id, outcome } => {
                self.on_response(from, id, outcome, payload.slice_ref(body), bytes.len())
            }
            Header::Cancel { id } => self.on_cancel(from, id),
            Header::Batch if outermost => {
                for item in wire::batch_items(body) {
                    match item {
                        Ok(item) => self.on_one(from, payload, item, out, false),
                        Err(_) => DropCounters::bump(&self.drops.decode_failures),
                    }
                }
            }
            Header::Batch => DropCounters::bump(&self.drops.decode_failures),
        }
    }

    /// A response: complete the matching call (only its callee may answer).
    fn on_response(&self, from: NodeId, id: u64, outcome: Outcome<'_>, body: Bytes, size: usize) {
        let pending = {
            let mut pending = self.pending.lock();
            match pending.get(&id) {
                Some(p) if p.callee == from => pending.remove(&id),
                _ => None,
            }
        };
        let Some(pending) = pending else {
            if self.abandoned.lock().contains(id) {
                DropCounters::bump(&self.drops.late_responses);
            } else {
                DropCounters::bump(&self.drops.unknown_request_id);
            }
            return;
        };
        let max = self.config.max_message;
        let (outcome, body) = if size > max {
            DropCounters::bump(&self.drops.too_large);
            (ReplyOutcome::TooLarge { size, max }, Bytes::new())
        } else {
            let outcome = match outcome {
                Outcome::Ok => ReplyOutcome::Ok,
                Outcome::Failed { code, message } => ReplyOutcome::Failed {
                    code: StatusCode::from_wire(code),
                    message: wire::clip_message(message).to_owned(),
                },
                Outcome::NoSuchService => ReplyOutcome::NoSuchService,
                Outcome::TooLarge { size, max } => ReplyOutcome::TooLarge {
                    size: usize::try_from(size).unwrap_or(usize::MAX),
                    max: usize::try_from(max).unwrap_or(usize::MAX),
                },
            };
            (outcome, body)
        };
        if pending.tx.send(Reply { outcome, body, size }).is_err() {
            // The call was dropped between our lookup and now.
            DropCounters::bump(&self.drops.late_responses);
        }
    }

    /// Sends `message` now if the mesh can take it without waiting (always, for
    /// messages that fit one datagram), otherwise on a task. Never blocks, so it
    /// is safe on the receive task and in `Drop`.
    fn send_detached(self: &Arc<Self>, to: NodeId, message: Vec<u8>) {
        if message.len() <= self.mesh.single_datagram_max() {
            if let Err(e) = self.mesh.send_now(to, RPC_KIND, &message) {
                DropCounters::bump(&self.drops.send_failures);
                tracing::trace!(to = %to, error = %e, "rpc send failed");
            }
            return;
        }
        let mesh = self.mesh.clone();
        let mut send = Box::pin(async move { mesh.send(to, RPC_KIND, &message).await });
        match poll_once(send.as_mut()) {
            Polled::Ready(Ok(())) => {}
            Polled::Ready(Err(e)) => {
                DropCounters::bump(&self.drops.send_failures);
                tracing::trace!(to = %to, error = %e, "rpc send failed");
            }
            Polled::Panicked(_) => DropCounters::bump(&self.drops.send_failures),
            Polled::Pending => match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    let weak = Arc::downgrade(self);
                    runtime.spawn(async move {
                        if send.await.is_err() {
                            if let Some(inner) = weak.upgrade() {
                                DropCounters::bump(&inner.drops.send_failures);
                            }
                        }
                    });
                }
                Err(_) => DropCounters::bump(&self.drops.send_failures),
            },
        }
    }

    /// Counts a finished call and tells the observers.
    fn finish_record(&self, counters: &ServiceCounters, call: Finished) {
        let latency = call.started.elapsed();
        counters.record(call.status, latency);
        self.notify(&counters.name, &call, latency);
    }

    /// Tells the observers about a finished call that took `latency`.
    fn notify(&self, service: &Arc<str>, call: &Finished, latency: Duration) {
        if self.observer_count.load(Relaxed) == 0 {
            return;
        }
        let observers = self.observers.read().clone();
        let now = SystemTime::now();
        let record = CallRecord {
            ts: now.checked_sub(latency).unwrap_or(now),
            caller: call.caller,
            callee: call.callee,
            service: service.clone(),
            side: call.side,
            latency,
            status: call.status,
            request_bytes: call.request_bytes as u64,
            response_bytes: call.response_bytes as u64,
            request_id: call.request_id,
        };
        for (_, observer) in observers.iter() {
            if catch_unwind(AssertUnwindSafe(|| observer.on_call(&record))).is_err() {
                DropCounters::bump(&self.drops.observer_panics);
                tracing::warn!(service = %record.service, "an rpc observer panicked");
            }
        }
    }
}

/// One call as one side saw it end: what [`Inner::finish_record`] counts and
/// the observers are told (as a [`CallRecord`]).
#[derive(Clone, Copy, Debug)]
struct Finished {
    side: Side,
    caller: NodeId,
    callee: NodeId,
    /// When this side sent (client) or received (server) the request.
    started: Instant,
    status: CallStatus,
    request_bytes: usize,
    response_bytes: usize,
    request_id: u64,
}

/// Fails waiting calls as soon as the mesh marks their callee Unreachable (or
/// the callee leaves), instead of letting them run into their deadline.
async fn watch_peers(endpoint: Weak<Inner>, mut changes: tokio::sync::watch::Receiver<u64>) {
    while changes.changed().await.is_ok() {
        let Some(inner) = endpoint.upgrade() else { return };
        inner.fail_calls_to_unreachable();
    }
}

impl Inner {
    fn fail_calls_to_unreachable(&self) {
        if self.pending.lock().is_empty() {
            return;
        }
        let down: HashSet<NodeId> = self
            .mesh
            .peers()
            .into_iter()
            .filter(|p| p.health.is_unreachable())
            .map(|p| p.node_id)
            .collect();
        if down.is_empty() {
            return;
        }
        let failed: Vec<Pending> = {
            let mut pending = self.pending.lock();
            let ids: Vec<u64> = pending
                .iter()
                .filter(|(_, p)| down.contains(&p.callee))
                .map(|(id, _)| *id)
                .collect();
            ids.iter().filter_map(|id| pending.remove(id)).collect()
        };
        for call in failed {
            let _ = call.tx.send(Reply::local(ReplyOutcome::Unreachable));
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(watcher) = self.watcher.get_mut().take() {
            watcher.abort();
        }
        self.deadlines.stop();
        for (_, running) in self.running.get_mut().drain() {
            running.abort();
        }
        tracing::debug!(node = %self.node_id, "rpc endpoint stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_ids_are_bounded() {
        let mut recent = RecentIds::default();
        for id in 0..(ABANDONED_MEMORY as u64 + 10) {
            recent.insert(id);
            recent.insert(id);
        }
        assert_eq!(recent.order.len(), ABANDONED_MEMORY);
        assert_eq!(recent.set.len(), ABANDONED_MEMORY);
        assert!(!recent.contains(0));
        assert!(recent.contains(ABANDONED_MEMORY as u64 + 9));
    }
}
