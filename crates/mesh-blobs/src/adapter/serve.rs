//! The serving side: the per-node registry of adapters, the three handlers, the
//! per-caller admission and the serve cache.
//!
//! # Registry
//!
//! A process-wide table holds one [`NodeServices`] per live RPC endpoint that
//! has adapters. It owns the node's `blobs.*` service registrations and maps
//! adapter names to (weak references to) adapters. Registering and unregistering
//! adapters, and the service registrations with them, happen under the table's
//! lock, so a node's last adapter going away cannot race a new one arriving.
//! Handlers hold only a weak reference to their `NodeServices`.
//!
//! Lock order: the table, then an adapter map. Handlers take only the adapter
//! map, and never drop an adapter while holding it (an adapter's drop takes the
//! table's lock).
//!
//! # Admission
//!
//! Every call to the three services first takes a slot of its caller (the
//! authenticated node id): at most [`wire::MAX_IN_FLIGHT_PER_CALLER`] per caller
//! across the three, on each node. A call over the cap is answered
//! `resource_exhausted` at once and counted ([`NodeServices::refused`]); nothing
//! is queued. A slot is held until the call's work is done: a store read or a
//! listing on the blocking pool keeps it even when the caller cancels or its
//! deadline passes (dropping the handler does not stop blocking work), so short
//! deadlines cannot pile up work beyond the cap.
//!
//! # Ranges
//!
//! `blobs.get` reads only the chunks covering the range, with
//! [`crate::BlobStore::get_range`] (which verifies them), cut to the range. A
//! range that ends inside a chunk leaves that chunk in the adapter's
//! [`ServeCache`], where the next range of a sequential fetch finds it.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use mesh::NodeId;
use mesh_rpc::{Rpc, RpcError, RpcStatus, ServeHandle, ServeOptions, StatusCode};
use parking_lot::{Mutex, RwLock};

use super::wire::{
    self, GetRequest, GetResponse, HasRequest, Holding, ListCursor, ListPage, ListRequest,
};
use super::{AdapterInner, Counters};
use crate::store::CHUNK_SIZE;
use crate::{BlobError, Hash};

/// Nodes with adapters, one entry per RPC endpoint.
static NODES: Mutex<Vec<Arc<NodeServices>>> = Mutex::new(Vec::new());

/// Registration ids, to tell an adapter from a later one of the same name.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// One node's blob services and the adapters they serve.
pub(crate) struct NodeServices {
    rpc: Rpc,
    /// By name: the order `blobs.list` walks and `blobs.get` picks in.
    adapters: RwLock<BTreeMap<String, Registered>>,
    /// The `blobs.*` registrations; dropped with the node's last adapter.
    handles: Mutex<Vec<ServeHandle>>,
    /// Calls in flight per caller.
    in_flight: Arc<InFlight>,
}

/// Calls in flight per caller node, across the node's three blob services.
#[derive(Debug, Default)]
struct InFlight {
    /// Callers with calls in flight (no entry: none).
    calls: Mutex<HashMap<NodeId, usize>>,
    /// Calls refused because their caller was at the cap.
    refused: AtomicU64,
}

/// One admitted call of `caller`: gives the slot back when dropped.
pub(super) struct Slot {
    in_flight: Arc<InFlight>,
    caller: NodeId,
}

impl InFlight {
    /// Takes a slot of `caller`, or refuses the call (`resource_exhausted`,
    /// counted) if it has [`wire::MAX_IN_FLIGHT_PER_CALLER`] in flight already.
    fn admit(self: &Arc<Self>, caller: NodeId, service: &str) -> Result<Slot, RpcStatus> {
        let mut calls = self.calls.lock();
        let n = calls.entry(caller).or_insert(0);
        if *n >= wire::MAX_IN_FLIGHT_PER_CALLER {
            drop(calls);
            self.refused.fetch_add(1, Relaxed);
            // Debug, not warn: a flooding peer must not flood the logs too.
            tracing::debug!(caller = %caller, service, "blob call refused: too many in flight");
            return Err(RpcStatus::new(
                StatusCode::ResourceExhausted,
                format!(
                    "node {caller} already has {} blob calls in flight here, the most allowed",
                    wire::MAX_IN_FLIGHT_PER_CALLER
                ),
            ));
        }
        *n += 1;
        Ok(Slot { in_flight: self.clone(), caller })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut calls = self.in_flight.calls.lock();
        if let Entry::Occupied(mut entry) = calls.entry(self.caller) {
            *entry.get_mut() -= 1;
            if *entry.get() == 0 {
                entry.remove();
            }
        }
    }
}

/// An adapter in the registry.
struct Registered {
    id: u64,
    adapter: Weak<AdapterInner>,
}

/// Whether two handles are the same live endpoint (as `Rpc::new` decides it).
fn same_endpoint(a: &Rpc, b: &Rpc) -> bool {
    a.node_id() == b.node_id()
        && a.mesh().local_addr() == b.mesh().local_addr()
        && !a.mesh().is_closed()
}

/// Builds the adapter with `make` (given the node's services and its id) and
/// registers it under `name`, serving the node's blob services if it is the
/// node's first adapter.
pub(super) fn register(
    rpc: &Rpc,
    name: &str,
    make: impl FnOnce(Arc<NodeServices>, u64) -> AdapterInner,
) -> Result<Arc<AdapterInner>, BlobError> {
    let mut nodes = NODES.lock();
    let existing = nodes.iter().find(|s| same_endpoint(&s.rpc, rpc)).cloned();
    let fresh = existing.is_none();
    let services = match existing {
        Some(services) => services,
        None => {
            let services = Arc::new(NodeServices {
                rpc: rpc.clone(),
                adapters: RwLock::new(BTreeMap::new()),
                handles: Mutex::new(Vec::new()),
                in_flight: Arc::default(),
            });
            let handles =
                serve_all(rpc, Arc::downgrade(&services)).map_err(|(service, source)| {
                    BlobError::Rpc { node: rpc.node_id(), service, source }
                })?;
            *services.handles.lock() = handles;
            services
        }
    };
    // A dead entry (its adapter is being dropped right now) does not hold the name.
    let taken = services.adapters.read().get(name).is_some_and(|r| r.adapter.strong_count() > 0);
    if taken {
        return Err(BlobError::AdapterExists { name: name.to_owned(), node: rpc.node_id() });
    }
    let id = NEXT_ID.fetch_add(1, Relaxed);
    let inner = Arc::new(make(services.clone(), id));
    let entry = Registered { id, adapter: Arc::downgrade(&inner) };
    services.adapters.write().insert(name.to_owned(), entry);
    if fresh {
        nodes.push(services);
    }
    Ok(inner)
}

/// Removes adapter `id` from the registry; stops the node's blob services when it
/// was the last one. Called from the adapter's drop.
pub(super) fn unregister(services: &Arc<NodeServices>, name: &str, id: u64) {
    let mut nodes = NODES.lock();
    let empty = {
        let mut adapters = services.adapters.write();
        if adapters.get(name).is_some_and(|r| r.id == id) {
            adapters.remove(name);
        }
        adapters.is_empty()
    };
    if empty {
        nodes.retain(|s| !Arc::ptr_eq(s, services));
        let handles = std::mem::take(&mut *services.handles.lock());
        drop(handles);
        tracing::debug!(node = %services.rpc.node_id(), "blob services stopped");
    }
}

/// What a handler answers once the node's last adapter is gone.
fn gone() -> RpcStatus {
    RpcStatus::unavailable("the blob adapters of this node are shutting down")
}

/// Serves `blobs.get`, `blobs.has` and `blobs.list`; on failure, names the
/// service that could not be registered (those registered are dropped again).
///
/// The handlers do all their work inside their futures, which run on their own
/// tasks: nothing but decoding happens on the mesh receive task. Each first takes
/// a slot of its caller (see the module docs).
fn serve_all(
    rpc: &Rpc,
    services: Weak<NodeServices>,
) -> Result<Vec<ServeHandle>, (&'static str, RpcError)> {
    let mut handles = Vec::with_capacity(3);
    let weak = services.clone();
    let get = rpc.serve_with(wire::GET, ServeOptions::spawned(), move |req: GetRequest, ctx| {
        let weak = weak.clone();
        async move {
            let Some(services) = weak.upgrade() else { return Err(gone()) };
            let slot = services.in_flight.admit(ctx.caller(), wire::GET)?;
            services.get(req, slot).await
        }
    });
    handles.push(get.map_err(|e| (wire::GET, e))?);
    let weak = services.clone();
    let has = rpc.serve_with(wire::HAS, ServeOptions::spawned(), move |req: HasRequest, ctx| {
        let weak = weak.clone();
        async move {
            let Some(services) = weak.upgrade() else { return Err(gone()) };
            let _slot = services.in_flight.admit(ctx.caller(), wire::HAS)?;
            services.has(&req)
        }
    });
    handles.push(has.map_err(|e| (wire::HAS, e))?);
    let list = rpc.serve_with(wire::LIST, ServeOptions::spawned(), move |req: ListRequest, ctx| {
        let weak = services.clone();
        async move {
            let Some(services) = weak.upgrade() else { return Err(gone()) };
            let slot = services.in_flight.admit(ctx.caller(), wire::LIST)?;
            // Listing sorts every entry of a store: keep it off the runtime's
            // workers. The slot is held until the listing is done.
            let list = move || {
                let _slot = slot;
                services.list_page(&req)
            };
            match tokio::task::spawn_blocking(list).await {
                Ok(page) => page,
                Err(e) => Err(RpcStatus::internal(format!("listing failed: {e}"))),
            }
        }
    });
    handles.push(list.map_err(|e| (wire::LIST, e))?);
    Ok(handles)
}

impl NodeServices {
    /// The live adapters, by name (all, or the one named). Collected under the
    /// lock and returned, so no adapter is dropped while the lock is held.
    fn live(&self, only: Option<&str>) -> Vec<Arc<AdapterInner>> {
        let adapters = self.adapters.read();
        match only {
            Some(name) => {
                adapters.get(name).and_then(|r| r.adapter.upgrade()).into_iter().collect()
            }
            None => adapters.values().filter_map(|r| r.adapter.upgrade()).collect(),
        }
    }

    /// [`NodeServices::live`], failing with `not_found` for a named adapter that
    /// does not exist.
    fn live_or_missing(&self, only: Option<&str>) -> Result<Vec<Arc<AdapterInner>>, RpcStatus> {
        let live = self.live(only);
        match only {
            Some(name) if live.is_empty() => {
                Err(RpcStatus::not_found(format!("no blob adapter named {name:?} here")))
            }
            _ => Ok(live),
        }
    }

    /// Calls to this node's blob services refused because their caller had
    /// [`wire::MAX_IN_FLIGHT_PER_CALLER`] in flight.
    pub(super) fn refused(&self) -> u64 {
        self.in_flight.refused.load(Relaxed)
    }

    /// `blobs.get`, holding the caller's `slot`.
    async fn get(self: Arc<Self>, req: GetRequest, slot: Slot) -> Result<GetResponse, RpcStatus> {
        let holder = self
            .live_or_missing(req.adapter.as_deref())?
            .into_iter()
            .find(|a| a.store.has(&req.hash))
            .ok_or_else(|| RpcStatus::not_found(format!("blob {} is not held here", req.hash)))?;
        holder.serve_range(self.rpc.config().max_message, &req, slot).await
    }

    /// `blobs.has`.
    fn has(&self, req: &HasRequest) -> Result<Vec<Holding>, RpcStatus> {
        let live = self.live_or_missing(req.adapter.as_deref())?;
        Ok(live
            .iter()
            .filter_map(|a| {
                a.store.entry(&req.hash).map(|e| Holding { adapter: a.name.clone(), size: e.size })
            })
            .collect())
    }

    /// `blobs.list`: adapters by name from the cursor, each one's entries by hash,
    /// until the page is full.
    fn list_page(&self, req: &ListRequest) -> Result<ListPage, RpcStatus> {
        let live = self.live_or_missing(req.adapter.as_deref())?;
        let mut budget = req.limit.clamp(1, wire::MAX_LIST_PAGE) as usize;
        let mut page = ListPage { adapters: Vec::new(), next: None };
        for adapter in live {
            if req.after.as_ref().is_some_and(|c| adapter.name < c.adapter) {
                continue;
            }
            if budget == 0 {
                page.next = Some(ListCursor { adapter: adapter.name.clone(), after: None });
                break;
            }
            let mut entries = adapter.store.list();
            entries.sort_by_key(|e| e.hash);
            if let Some(ListCursor { adapter: at, after: Some(last) }) = &req.after {
                if *at == adapter.name {
                    let seen = entries.partition_point(|e| e.hash <= *last);
                    entries.drain(..seen);
                }
            }
            if entries.len() > budget {
                entries.truncate(budget);
                let after = entries.last().map(|e| e.hash);
                page.next = Some(ListCursor { adapter: adapter.name.clone(), after });
                page.adapters.push(adapter.inventory(entries));
                break;
            }
            budget -= entries.len();
            page.adapters.push(adapter.inventory(entries));
        }
        Ok(page)
    }
}

impl AdapterInner {
    /// Answers one `blobs.get` for a blob this adapter holds, from the chunks
    /// covering the range. `slot` is the caller's admission; it is held until
    /// any store read for this call has finished.
    async fn serve_range(
        self: &Arc<Self>,
        max_message: usize,
        req: &GetRequest,
        slot: Slot,
    ) -> Result<GetResponse, RpcStatus> {
        let hash = req.hash;
        let Some(entry) = self.store.entry(&hash) else {
            return Err(RpcStatus::not_found(format!("blob {hash} is not held here")));
        };
        let total = entry.size;
        let Some(left) = total.checked_sub(req.offset) else {
            return Err(RpcStatus::new(
                StatusCode::OutOfRange,
                format!("offset {} is past the end of blob {hash} ({total} bytes)", req.offset),
            ));
        };
        let max_range = max_message.saturating_sub(wire::RESPONSE_OVERHEAD).max(1) as u64;
        let len = u64::from(req.len).min(max_range).min(left);
        let data = if len == 0 {
            Bytes::new()
        } else {
            self.read_range(hash, total, req.offset, len, slot).await?
        };
        Counters::add(&self.counters.serves, 1);
        Counters::add(&self.counters.bytes_served, len);
        Ok(GetResponse { adapter: self.name.clone(), total, data })
    }

    /// Bytes `offset..offset + len` (not empty, within the blob of `total`
    /// bytes), cut from the verified chunks that cover them: cached ones, and the
    /// others read (and so verified) by the store on the blocking pool. The
    /// chunk the range ends inside is cached: the next range starts there.
    async fn read_range(
        self: &Arc<Self>,
        hash: Hash,
        total: u64,
        offset: u64,
        len: u64,
        slot: Slot,
    ) -> Result<Bytes, RpcStatus> {
        let c = CHUNK_SIZE as u64;
        let end = offset + len;
        let (first, last) = (offset / c, (end - 1) / c);
        let mut chunks: Vec<(u64, Option<Bytes>)> =
            (first..=last).map(|i| (i, self.cache.get(&(hash, i)))).collect();
        // Runs of chunks not cached, each read with one store call.
        let mut runs: Vec<(u64, u64)> = Vec::new();
        for (i, _) in chunks.iter().filter(|(_, cached)| cached.is_none()) {
            match runs.last_mut() {
                Some((_, run_last)) if *run_last + 1 == *i => *run_last = *i,
                _ => runs.push((*i, *i)),
            }
        }
        if !runs.is_empty() {
            let store = self.store.clone();
            let read = tokio::task::spawn_blocking(move || {
                // The caller's slot stays taken while the store works, even if the
                // call is cancelled or runs out of time meanwhile.
                let _slot = slot;
                let mut read = Vec::with_capacity(runs.len());
                for (run_first, run_last) in runs {
                    let start = run_first * c;
                    let n = ((run_last + 1) * c).min(total) - start;
                    read.push((run_first, n, store.get_range(&hash, start, n)?));
                }
                Ok::<_, BlobError>(read)
            });
            let read = match read.await {
                Ok(Ok(read)) => read,
                Ok(Err(e)) => return self.read_failed(hash, e),
                Err(e) => {
                    let status = RpcStatus::internal(format!("store read did not complete: {e}"));
                    return self.serve_failed(hash, status);
                }
            };
            for (run_first, n, bytes) in read {
                let Some(bytes) = bytes else {
                    return Err(RpcStatus::not_found(format!("blob {hash} is not held here")));
                };
                if bytes.len() as u64 != n {
                    let status = RpcStatus::internal(format!(
                        "the store returned {} bytes of blob {hash} for a range of {n}",
                        bytes.len()
                    ));
                    return self.serve_failed(hash, status);
                }
                // Offsets within a range read fit in usize: it is in memory.
                for (i, part) in chunks.iter_mut().filter(|(i, _)| *i >= run_first) {
                    let from = (*i - run_first) * c;
                    if from < n {
                        let to = (from + c).min(n);
                        *part = Some(bytes.slice(from as usize..to as usize));
                    }
                }
            }
        }
        let chunks: Vec<(u64, Bytes)> =
            chunks.into_iter().filter_map(|(i, bytes)| Some((i, bytes?))).collect();
        if end % c != 0 && end < total {
            if let Some((i, bytes)) = chunks.last() {
                self.cache_for_more_ranges((hash, *i), bytes.clone());
            }
        }
        // Offsets within a chunk fit in usize.
        let cut = |i: u64, bytes: &Bytes| {
            let start = i * c;
            let to = (end - start).min(bytes.len() as u64);
            let from = offset.saturating_sub(start).min(to);
            bytes.slice(from as usize..to as usize)
        };
        Ok(match chunks.as_slice() {
            [(i, only)] => cut(*i, only),
            many => {
                let mut out = BytesMut::with_capacity(len as usize);
                for (i, bytes) in many {
                    out.extend_from_slice(&cut(*i, bytes));
                }
                out.freeze()
            }
        })
    }

    /// A store read for `blobs.get` failed: the status to answer (counted).
    fn read_failed(&self, hash: Hash, error: BlobError) -> Result<Bytes, RpcStatus> {
        let status = if error.is_integrity() {
            RpcStatus::new(StatusCode::DataLoss, error.to_string())
        } else {
            RpcStatus::internal(error.to_string())
        };
        self.serve_failed(hash, status)
    }

    /// Counts and logs a `blobs.get` this adapter cannot answer.
    fn serve_failed(&self, hash: Hash, status: RpcStatus) -> Result<Bytes, RpcStatus> {
        Counters::add(&self.counters.serve_errors, 1);
        let blob = hash.short();
        tracing::warn!(adapter = %self.name, blob, error = %status, "cannot serve blob");
        Err(status)
    }

    /// Keeps a verified chunk whose rest is likely to be asked for next, and
    /// makes sure a task drops it once it is idle.
    fn cache_for_more_ranges(self: &Arc<Self>, key: ChunkKey, data: Bytes) {
        // Outside a runtime nothing could prune the cache: do not fill it.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        if !self.cache.insert(key, data) {
            return;
        }
        let adapter = Arc::downgrade(self);
        let period = (self.cache.ttl / 2).max(Duration::from_millis(10));
        runtime.spawn(async move {
            loop {
                tokio::time::sleep(period).await;
                let Some(adapter) = adapter.upgrade() else { return };
                if !adapter.cache.prune() {
                    return;
                }
            }
        });
    }
}

/// A chunk of a blob: the blob's hash and the chunk's index.
type ChunkKey = (Hash, u64);

/// Most chunks a [`ServeCache`] holds, whatever their size (so lookups, which
/// scan it, stay cheap even when callers fill it with small chunks).
const MAX_CACHED_CHUNKS: usize = 256;

/// Recently read chunks whose ranges are not all served yet (a range that ends
/// inside a chunk), so the next range does not re-read (and re-hash) the chunk.
/// Every chunk in it was verified by the store when it was read. Bounded in
/// bytes (the newest chunk is always kept) and in chunks
/// ([`MAX_CACHED_CHUNKS`]), and emptied of idle chunks by a task that runs while
/// it is not empty.
pub(crate) struct ServeCache {
    state: Mutex<CacheState>,
    max_bytes: u64,
    ttl: Duration,
}

#[derive(Default)]
struct CacheState {
    entries: Vec<CacheEntry>,
    bytes: u64,
    /// A pruning task is running (set and cleared under this lock).
    pruning: bool,
}

struct CacheEntry {
    key: ChunkKey,
    data: Bytes,
    used: Instant,
}

impl ServeCache {
    /// A cache of about `max_bytes` (0: no cache) whose chunks leave after `ttl`
    /// without use.
    pub(super) fn new(max_bytes: u64, ttl: Duration) -> ServeCache {
        ServeCache { state: Mutex::new(CacheState::default()), max_bytes, ttl }
    }

    /// The cached chunk, marked as just used.
    fn get(&self, key: &ChunkKey) -> Option<Bytes> {
        let mut state = self.state.lock();
        let entry = state.entries.iter_mut().find(|e| e.key == *key)?;
        entry.used = Instant::now();
        Some(entry.data.clone())
    }

    /// Adds a chunk, evicting the least recently used others while over the byte
    /// or chunk bound. Returns true when the caller must start a pruning task.
    fn insert(&self, key: ChunkKey, data: Bytes) -> bool {
        if self.max_bytes == 0 || self.ttl.is_zero() {
            return false;
        }
        let mut state = self.state.lock();
        if let Some(entry) = state.entries.iter_mut().find(|e| e.key == key) {
            entry.used = Instant::now();
            return false;
        }
        state.bytes += data.len() as u64;
        state.entries.push(CacheEntry { key, data, used: Instant::now() });
        while (state.bytes > self.max_bytes || state.entries.len() > MAX_CACHED_CHUNKS)
            && state.entries.len() > 1
        {
            // The newest entry (last) is never the one evicted.
            let older = &state.entries[..state.entries.len() - 1];
            let Some((oldest, _)) = older.iter().enumerate().min_by_key(|(_, e)| e.used) else {
                break;
            };
            let evicted = state.entries.remove(oldest);
            state.bytes -= evicted.data.len() as u64;
        }
        let start = !state.pruning;
        state.pruning = true;
        start
    }

    /// Drops chunks idle for the ttl. Returns whether the pruning task must go on
    /// (the cache is not empty).
    fn prune(&self) -> bool {
        let mut state = self.state.lock();
        let ttl = self.ttl;
        state.entries.retain(|e| e.used.elapsed() < ttl);
        state.bytes = state.entries.iter().map(|e| e.data.len() as u64).sum();
        if state.entries.is_empty() {
            state.pruning = false;
        }
        state.pruning
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(n: usize, fill: u8) -> (ChunkKey, Bytes) {
        let data = vec![fill; n];
        ((Hash::of(&data), 0), Bytes::from(data))
    }

    #[test]
    fn cache_is_bounded_keeps_the_newest_and_prunes_idle_blobs() {
        let cache = ServeCache::new(100, Duration::from_millis(50));
        let (a, a_data) = blob(60, 1);
        let (b, b_data) = blob(60, 2);
        assert!(cache.insert(a, a_data), "the first insert starts the pruner");
        assert!(cache.get(&a).is_some());
        assert!(!cache.insert(b, b_data), "a pruner is already running");
        assert!(cache.get(&a).is_none(), "over the bound, the older blob left");
        assert!(cache.get(&b).is_some());
        let (c, c_data) = blob(500, 3);
        assert!(!cache.insert(c, c_data));
        assert!(cache.get(&c).is_some(), "the newest blob stays even over the bound");
        assert!(cache.get(&b).is_none());
        assert!(cache.prune(), "fresh entries stay");
        std::thread::sleep(Duration::from_millis(60));
        assert!(!cache.prune(), "idle entries left; the pruner stops");
        assert!(cache.get(&c).is_none());
        let (d, d_data) = blob(10, 4);
        assert!(cache.insert(d, d_data), "a new pruner is needed");
    }

    #[test]
    fn cache_holds_a_bounded_number_of_chunks() {
        let cache = ServeCache::new(1 << 30, Duration::from_secs(60));
        let data = Bytes::from_static(b"x");
        let key = |i: u64| (Hash::EMPTY, i);
        for i in 0..(MAX_CACHED_CHUNKS as u64 + 10) {
            cache.insert(key(i), data.clone());
        }
        assert_eq!(cache.state.lock().entries.len(), MAX_CACHED_CHUNKS);
        assert!(cache.get(&key(0)).is_none(), "the oldest left");
        assert!(cache.get(&key(MAX_CACHED_CHUNKS as u64 + 9)).is_some());
    }

    #[test]
    fn a_zero_sized_cache_keeps_nothing() {
        let cache = ServeCache::new(0, Duration::from_secs(1));
        let (a, a_data) = blob(10, 1);
        assert!(!cache.insert(a, a_data));
        assert!(cache.get(&a).is_none());
    }
}
