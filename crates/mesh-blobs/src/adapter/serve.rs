//! The serving side: the per-node registry of adapters, the three handlers and
//! the serve cache.
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

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use mesh_rpc::{Rpc, RpcError, RpcStatus, ServeHandle, ServeOptions, StatusCode};
use parking_lot::{Mutex, RwLock};

use super::wire::{
    self, GetRequest, GetResponse, HasRequest, Holding, ListCursor, ListPage, ListRequest,
};
use super::{AdapterInner, Counters};
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
/// tasks: nothing but decoding happens on the mesh receive task.
fn serve_all(
    rpc: &Rpc,
    services: Weak<NodeServices>,
) -> Result<Vec<ServeHandle>, (&'static str, RpcError)> {
    let mut handles = Vec::with_capacity(3);
    let weak = services.clone();
    let get = rpc.serve_with(wire::GET, ServeOptions::spawned(), move |req: GetRequest, _ctx| {
        let weak = weak.clone();
        async move {
            let Some(services) = weak.upgrade() else { return Err(gone()) };
            services.get(req).await
        }
    });
    handles.push(get.map_err(|e| (wire::GET, e))?);
    let weak = services.clone();
    let has = rpc.serve_with(wire::HAS, ServeOptions::spawned(), move |req: HasRequest, _ctx| {
        let weak = weak.clone();
        async move {
            let Some(services) = weak.upgrade() else { return Err(gone()) };
            services.has(&req)
        }
    });
    handles.push(has.map_err(|e| (wire::HAS, e))?);
    let list =
        rpc.serve_with(wire::LIST, ServeOptions::spawned(), move |req: ListRequest, _ctx| {
            let weak = services.clone();
            async move {
                let Some(services) = weak.upgrade() else { return Err(gone()) };
                // Listing sorts every entry of a store: keep it off the runtime's workers.
                match tokio::task::spawn_blocking(move || services.list_page(&req)).await {
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

    /// `blobs.get`.
    async fn get(self: Arc<Self>, req: GetRequest) -> Result<GetResponse, RpcStatus> {
        let holder = self
            .live_or_missing(req.adapter.as_deref())?
            .into_iter()
            .find(|a| a.store.has(&req.hash))
            .ok_or_else(|| RpcStatus::not_found(format!("blob {} is not held here", req.hash)))?;
        holder.serve_range(self.rpc.config().max_message, &req).await
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
    /// Answers one `blobs.get` for a blob this adapter holds.
    async fn serve_range(
        self: &Arc<Self>,
        max_message: usize,
        req: &GetRequest,
    ) -> Result<GetResponse, RpcStatus> {
        let data = match self.cache.get(&req.hash) {
            Some(data) => data,
            None => self.read_blob(req.hash).await?,
        };
        let total = data.len() as u64;
        let Some(left) = total.checked_sub(req.offset) else {
            return Err(RpcStatus::new(
                StatusCode::OutOfRange,
                format!(
                    "offset {} is past the end of blob {} ({total} bytes)",
                    req.offset, req.hash
                ),
            ));
        };
        let max_range = max_message.saturating_sub(wire::RESPONSE_OVERHEAD).max(1) as u64;
        let len = u64::from(req.len).min(max_range).min(left);
        // Both fit in usize: they are at most `data.len()`.
        let (start, end) = (req.offset as usize, (req.offset + len) as usize);
        if (end as u64) < total {
            self.cache_for_more_ranges(req.hash, data.clone());
        }
        Counters::add(&self.counters.serves, 1);
        Counters::add(&self.counters.bytes_served, len);
        Ok(GetResponse { adapter: self.name.clone(), total, data: data.slice(start..end) })
    }

    /// Reads (and so verifies) a whole blob on the blocking pool.
    async fn read_blob(&self, hash: Hash) -> Result<Bytes, RpcStatus> {
        let store = self.store.clone();
        let failed = |status: RpcStatus| {
            Counters::add(&self.counters.serve_errors, 1);
            let blob = hash.short();
            tracing::warn!(adapter = %self.name, blob, error = %status, "cannot serve blob");
            Err(status)
        };
        match tokio::task::spawn_blocking(move || store.get(&hash)).await {
            Ok(Ok(Some(data))) => Ok(data),
            Ok(Ok(None)) => Err(RpcStatus::not_found(format!("blob {hash} is not held here"))),
            Ok(Err(e)) if e.is_integrity() => {
                failed(RpcStatus::new(StatusCode::DataLoss, e.to_string()))
            }
            Ok(Err(e)) => failed(RpcStatus::internal(e.to_string())),
            Err(e) => failed(RpcStatus::internal(format!("store read did not complete: {e}"))),
        }
    }

    /// Keeps a blob whose further ranges are likely to be asked for next, and
    /// makes sure a task drops it once it is idle.
    fn cache_for_more_ranges(self: &Arc<Self>, hash: Hash, data: Bytes) {
        // Outside a runtime nothing could prune the cache: do not fill it.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        if !self.cache.insert(hash, data) {
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

/// Recently served blobs that take several ranges, so each range does not re-read
/// (and re-hash) the whole blob. Bounded in bytes (the newest blob is always
/// kept) and emptied of idle blobs by a task that runs while it is not empty.
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
    hash: Hash,
    data: Bytes,
    used: Instant,
}

impl ServeCache {
    /// A cache of about `max_bytes` (0: no cache) whose blobs leave after `ttl`
    /// without use.
    pub(super) fn new(max_bytes: u64, ttl: Duration) -> ServeCache {
        ServeCache { state: Mutex::new(CacheState::default()), max_bytes, ttl }
    }

    /// The cached blob, marked as just used.
    fn get(&self, hash: &Hash) -> Option<Bytes> {
        let mut state = self.state.lock();
        let entry = state.entries.iter_mut().find(|e| e.hash == *hash)?;
        entry.used = Instant::now();
        Some(entry.data.clone())
    }

    /// Adds a blob, evicting the least recently used others while over the byte
    /// bound. Returns true when the caller must start a pruning task.
    fn insert(&self, hash: Hash, data: Bytes) -> bool {
        if self.max_bytes == 0 || self.ttl.is_zero() {
            return false;
        }
        let mut state = self.state.lock();
        if let Some(entry) = state.entries.iter_mut().find(|e| e.hash == hash) {
            entry.used = Instant::now();
            return false;
        }
        state.bytes += data.len() as u64;
        state.entries.push(CacheEntry { hash, data, used: Instant::now() });
        while state.bytes > self.max_bytes && state.entries.len() > 1 {
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

    /// Drops blobs idle for the ttl. Returns whether the pruning task must go on
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

    fn blob(n: usize, fill: u8) -> (Hash, Bytes) {
        let data = vec![fill; n];
        (Hash::of(&data), Bytes::from(data))
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
    fn a_zero_sized_cache_keeps_nothing() {
        let cache = ServeCache::new(0, Duration::from_secs(1));
        let (a, a_data) = blob(10, 1);
        assert!(!cache.insert(a, a_data));
        assert!(cache.get(&a).is_none());
    }
}
