//! [`MeshBlobAdapter`]: a named blob store on a mesh node that serves its blobs to
//! other nodes over mesh-rpc and fetches theirs by hash.
//!
//! # Services
//!
//! A node that runs adapters serves three mesh-rpc services, named in [`wire`]:
//! `blobs.get` (a byte range of a blob), `blobs.has` (which adapters hold a blob)
//! and `blobs.list` (inventories, page by page). They are registered once per node
//! and shared by every adapter on it: a per-node registry maps adapter names to
//! adapters, and each request names an adapter or none ("any adapter here that
//! holds the blob"). So several adapters can live on one node under fixed service
//! names, and a fetch needs to know only the hash, not what the holder calls its
//! store. The services are unregistered when the node's last adapter is dropped.
//!
//! # Fetching
//!
//! [`MeshBlobAdapter::fetch`] reads a blob in ranges of [`AdapterConfig::range_size`]
//! (1 MiB by default, well under mesh-rpc's 4 MiB message limit), all from the
//! same adapter of the same peer, hashes the bytes as they arrive and stores them
//! only if the whole blob hashes to the hash asked for. The buffer grows with the
//! bytes received, never to the size the peer announces (a peer announcing a huge
//! blob must send it to cost us memory). Bytes that do not match,
//! and answers whose lengths do not add up, are counted
//! ([`AdapterMetrics::integrity_failures`]) and fail the fetch with
//! [`BlobError::Integrity`]; nothing is stored. Without a named peer, the adapter
//! asks every reachable peer `blobs.has` at once and fetches from the holders in
//! the order they answer until one delivers the right bytes; a peer that does not
//! answer within [`AdapterConfig::locate_deadline`] counts as not holding it.
//!
//! # Serving
//!
//! Handlers run on their own tasks ([`mesh_rpc::ServeOptions::spawned`]) and read
//! the store on tokio's blocking pool. Each caller node may have at most
//! [`wire::MAX_IN_FLIGHT_PER_CALLER`] calls to a node's blob services in flight;
//! further calls are refused with `resource_exhausted` (counted in
//! [`AdapterMetrics::refused`]), not queued. A `blobs.get` reads and verifies only
//! the chunks covering its range ([`BlobStore::get_range`]), never the whole
//! blob. A range that ends inside a chunk leaves that verified chunk in a small
//! serve cache ([`AdapterConfig::serve_cache_bytes`],
//! [`AdapterConfig::serve_cache_ttl`]), so a fetch whose ranges do not line up
//! with chunks does not re-read a chunk for every range.
//!
//! Layout: [`wire`] (public: service names and messages), `serve` (the per-node
//! registry, the handlers and the serve cache), `fetch` (the calling side).

mod fetch;
mod serve;
pub mod wire;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use mesh::{MeshNode, NodeId};
use mesh_rpc::Rpc;
use serde::{Deserialize, Serialize};

use crate::store::{BlobStore, CHUNK_SIZE, InventoryEntry, Metrics};
use crate::{BlobError, DEFAULT_MAX_BLOB_SIZE, Hash};
use serve::{NodeServices, ServeCache};

pub use fetch::{MAX_REMOTE_LIST_ENTRIES, list_remote};

/// Longest adapter name, in bytes.
pub const MAX_ADAPTER_NAME: usize = 64;

/// How an adapter fetches, lists and serves.
///
/// ```
/// use std::time::Duration;
/// use mesh_blobs::AdapterConfig;
///
/// let config = AdapterConfig::default()
///     .with_call_deadline(Duration::from_secs(30))
///     .with_range_size(256 * 1024);
/// assert_eq!(config.retries, 3);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AdapterConfig {
    /// Bytes asked for per `blobs.get` call (default 1 MiB). Must leave room for
    /// the message header within the node's RPC message limit
    /// ([`mesh_rpc::RpcConfig::max_message`] minus [`wire::RESPONSE_OVERHEAD`]).
    pub range_size: u32,
    /// Deadline of each call to a peer (default 10 s).
    pub call_deadline: Duration,
    /// How long a fetch without a named peer waits for each peer's `blobs.has`
    /// answer, retries included (default 3 s). A peer silent for that long (it
    /// runs no RPC endpoint, or is overloaded) counts as not holding the blob, so
    /// such peers cannot hold up a fetch, and a blob nobody holds is reported
    /// [`BlobError::NotFound`] after at most this long.
    pub locate_deadline: Duration,
    /// Further attempts of a call that timed out or found its peer briefly
    /// unreachable (default 3; every blob call is idempotent).
    pub retries: u32,
    /// Largest blob a fetch accepts (default [`DEFAULT_MAX_BLOB_SIZE`]); a peer
    /// announcing a larger one is refused with [`BlobError::TooLarge`] before any
    /// more of it is read.
    pub max_fetch_size: u64,
    /// Inventory entries asked for per `blobs.list` call (default 4096; servers
    /// cap it at [`wire::MAX_LIST_PAGE`]).
    pub list_page: u32,
    /// Bytes of recently read chunks kept in memory while the rest of them is
    /// fetched, when a served range ends inside a chunk (default 64 MiB; the most
    /// recent chunk is kept even if it alone is larger).
    pub serve_cache_bytes: u64,
    /// How long a cached chunk stays after it was last served from (default 5 s).
    pub serve_cache_ttl: Duration,
}

impl Default for AdapterConfig {
    fn default() -> Self {
        AdapterConfig {
            range_size: CHUNK_SIZE as u32,
            call_deadline: Duration::from_secs(10),
            locate_deadline: Duration::from_secs(3),
            retries: 3,
            max_fetch_size: DEFAULT_MAX_BLOB_SIZE,
            list_page: 4096,
            serve_cache_bytes: 64 << 20,
            serve_cache_ttl: Duration::from_secs(5),
        }
    }
}

impl AdapterConfig {
    /// Sets [`AdapterConfig::range_size`].
    pub fn with_range_size(mut self, bytes: u32) -> Self {
        self.range_size = bytes;
        self
    }

    /// Sets [`AdapterConfig::call_deadline`].
    pub fn with_call_deadline(mut self, deadline: Duration) -> Self {
        self.call_deadline = deadline;
        self
    }

    /// Sets [`AdapterConfig::locate_deadline`].
    pub fn with_locate_deadline(mut self, deadline: Duration) -> Self {
        self.locate_deadline = deadline;
        self
    }

    /// Sets [`AdapterConfig::retries`].
    pub fn with_retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// Sets [`AdapterConfig::max_fetch_size`].
    pub fn with_max_fetch_size(mut self, bytes: u64) -> Self {
        self.max_fetch_size = bytes;
        self
    }

    /// Sets [`AdapterConfig::list_page`].
    pub fn with_list_page(mut self, entries: u32) -> Self {
        self.list_page = entries;
        self
    }

    /// Sets [`AdapterConfig::serve_cache_bytes`] and [`AdapterConfig::serve_cache_ttl`].
    pub fn with_serve_cache(mut self, bytes: u64, ttl: Duration) -> Self {
        self.serve_cache_bytes = bytes;
        self.serve_cache_ttl = ttl;
        self
    }

    /// Checks the values against each other and the RPC endpoint's limits.
    fn validate(&self, rpc: &Rpc) -> Result<(), BlobError> {
        let invalid = |reason: String| Err(BlobError::InvalidConfig { reason });
        let max_range = rpc.config().max_message.saturating_sub(wire::RESPONSE_OVERHEAD);
        if self.range_size == 0 || self.range_size as usize > max_range {
            return invalid(format!(
                "range_size {} must be between 1 and {max_range} bytes (the RPC message \
                 limit minus {} bytes of overhead)",
                self.range_size,
                wire::RESPONSE_OVERHEAD
            ));
        }
        if self.call_deadline.is_zero() || self.locate_deadline.is_zero() {
            return invalid("call_deadline and locate_deadline must be above zero".into());
        }
        if self.list_page == 0 {
            return invalid("list_page must be at least 1".into());
        }
        Ok(())
    }
}

/// An adapter's figures: its store's [`Metrics`] (blobs, bytes, puts, gets,
/// evictions, capacity and use) and its traffic with other nodes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AdapterMetrics {
    /// The store's counters and gauges.
    pub store: Metrics,
    /// Fetches that stored a blob from a peer (not counting blobs already held).
    pub fetches: u64,
    /// Fetches that failed, for any reason (one per failed `fetch` call).
    pub fetch_failures: u64,
    /// Blobs peers sent whose bytes did not match the hash (one per peer and
    /// fetch attempt); none of them was stored.
    pub integrity_failures: u64,
    /// Blob bytes received from peers by fetches, failed ones included.
    pub bytes_fetched: u64,
    /// `blobs.get` ranges served to other nodes.
    pub serves: u64,
    /// Blob bytes served to other nodes.
    pub bytes_served: u64,
    /// `blobs.get` calls this adapter could not answer because its store failed
    /// (an integrity error or an I/O error on read).
    pub serve_errors: u64,
    /// Calls to this node's blob services (`blobs.get`, `blobs.has`,
    /// `blobs.list`) refused because their caller already had
    /// [`wire::MAX_IN_FLIGHT_PER_CALLER`] in flight. Counted per node: every
    /// adapter on the node reports the same figure.
    pub refused: u64,
}

/// One adapter's inventory, as the deck shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AdapterInventory {
    /// The node the adapter runs on.
    pub node: NodeId,
    /// The adapter's name.
    pub adapter: String,
    /// Its figures when the inventory was taken.
    pub metrics: AdapterMetrics,
    /// Its blobs, sorted by hash (per-blob size, age and heat).
    pub entries: Vec<InventoryEntry>,
}

/// What a successful [`MeshBlobAdapter::fetch`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Fetched {
    /// The blob.
    pub hash: Hash,
    /// Its size in bytes.
    pub size: u64,
    /// The peer it came from; `None` if the local store already held it (nothing
    /// was transferred).
    pub from: Option<NodeId>,
    /// The peer's adapter that served it (`None` with `from`).
    pub adapter: Option<String>,
}

/// Counters of one adapter's traffic (the store keeps its own).
#[derive(Debug, Default)]
struct Counters {
    fetches: AtomicU64,
    fetch_failures: AtomicU64,
    integrity_failures: AtomicU64,
    bytes_fetched: AtomicU64,
    serves: AtomicU64,
    bytes_served: AtomicU64,
    serve_errors: AtomicU64,
}

impl Counters {
    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }
}

/// A named blob store on a mesh node, serving its blobs to the mesh and fetching
/// remote ones (see the module docs for the protocol).
///
/// Cheap to clone (one `Arc`). Dropping the last clone removes the adapter from
/// its node's registry; the node's blob services stop with its last adapter.
///
/// ```no_run
/// # async fn demo(a: &mesh::MeshNode, b: &mesh::MeshNode) -> Result<(), mesh_blobs::BlobError> {
/// use std::sync::Arc;
/// use mesh_blobs::{BlobStore, MemLog, MeshBlobAdapter};
///
/// let on_a = MeshBlobAdapter::new("cache", a, Arc::new(MemLog::default()))?;
/// let on_b = MeshBlobAdapter::new("cache", b, Arc::new(MemLog::default()))?;
/// let hash = on_a.store().put_slice(b"hello mesh")?;
/// let fetched = on_b.fetch(hash, Some(a.node_id())).await?;
/// assert_eq!(fetched.size, 10);
/// assert!(on_b.store().has(&hash));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct MeshBlobAdapter {
    inner: Arc<AdapterInner>,
}

/// The shared state of an adapter and its clones.
pub(crate) struct AdapterInner {
    name: String,
    /// Tells this adapter's registry entry from a later one of the same name.
    id: u64,
    node: NodeId,
    store: Arc<dyn BlobStore>,
    config: AdapterConfig,
    rpc: Rpc,
    /// The node's shared services; the registry entry is removed on drop.
    services: Arc<NodeServices>,
    counters: Counters,
    cache: ServeCache,
}

impl std::fmt::Debug for MeshBlobAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeshBlobAdapter")
            .field("name", &self.inner.name)
            .field("node", &self.inner.node)
            .field("store", &self.inner.store)
            .finish_non_exhaustive()
    }
}

impl Drop for AdapterInner {
    fn drop(&mut self) {
        serve::unregister(&self.services, &self.name, self.id);
    }
}

impl MeshBlobAdapter {
    /// An adapter named `name` over `store` on `node`, with the default
    /// [`AdapterConfig`], serving from now on.
    ///
    /// Fails with [`BlobError::InvalidAdapterName`] for an empty name, one longer
    /// than [`MAX_ADAPTER_NAME`] bytes or one with control characters, with
    /// [`BlobError::AdapterExists`] if a live adapter on the node has the name,
    /// and with [`BlobError::Rpc`] if the node is shut down or something else
    /// already serves the blob services there.
    pub fn new(
        name: &str,
        node: &MeshNode,
        store: Arc<dyn BlobStore>,
    ) -> Result<MeshBlobAdapter, BlobError> {
        let rpc = Rpc::new(node).map_err(|source| BlobError::Rpc {
            node: node.node_id(),
            service: "rpc",
            source,
        })?;
        Self::with_config(name, &rpc, store, AdapterConfig::default())
    }

    /// [`MeshBlobAdapter::new`] on a node's RPC endpoint (any node, however
    /// reached: [`Rpc::new`], [`Rpc::from_handle`], [`Rpc::with_config`]), with
    /// `config`. Fails with [`BlobError::InvalidConfig`] if `config` does not fit
    /// the endpoint's limits.
    pub fn with_config(
        name: &str,
        rpc: &Rpc,
        store: Arc<dyn BlobStore>,
        config: AdapterConfig,
    ) -> Result<MeshBlobAdapter, BlobError> {
        check_name(name)?;
        config.validate(rpc)?;
        let inner = serve::register(rpc, name, |services, id| AdapterInner {
            name: name.to_owned(),
            id,
            node: rpc.node_id(),
            store,
            cache: ServeCache::new(config.serve_cache_bytes, config.serve_cache_ttl),
            config,
            rpc: rpc.clone(),
            services,
            counters: Counters::default(),
        })?;
        tracing::debug!(node = %inner.node, adapter = %inner.name, "blob adapter started");
        Ok(MeshBlobAdapter { inner })
    }

    /// The adapter's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The node it runs on.
    pub fn node_id(&self) -> NodeId {
        self.inner.node
    }

    /// The local store (its calls block: see [`BlobStore`]).
    pub fn store(&self) -> &Arc<dyn BlobStore> {
        &self.inner.store
    }

    /// The adapter's settings.
    pub fn config(&self) -> &AdapterConfig {
        &self.inner.config
    }

    /// The store's metrics plus the adapter's fetch and serve counters.
    pub fn metrics(&self) -> AdapterMetrics {
        self.inner.metrics()
    }

    /// The local inventory, with the adapter's name, node and metrics.
    pub fn list(&self) -> AdapterInventory {
        let mut entries = self.inner.store.list();
        entries.sort_by_key(|e| e.hash);
        AdapterInventory {
            node: self.inner.node,
            adapter: self.inner.name.clone(),
            metrics: self.inner.metrics(),
            entries,
        }
    }

    /// Makes the blob `hash` local: pulls it from `from` (or, with `None`, from
    /// whichever reachable peer holds it), verifies the whole blob against `hash`
    /// and stores it. Returns at once, with [`Fetched::from`] = `None`, if the
    /// store already holds it.
    ///
    /// Fails with [`BlobError::Integrity`] if the peer's bytes do not match (with
    /// `None`: if no holder sent the right bytes and one sent wrong ones), with
    /// [`BlobError::NotFound`] if no peer asked holds it, [`BlobError::TooLarge`]
    /// if it is above [`AdapterConfig::max_fetch_size`], [`BlobError::StoreFull`]
    /// if it can never fit the store, and [`BlobError::Rpc`] if the peer cannot be
    /// reached or fails. A failed fetch stores nothing.
    pub async fn fetch(&self, hash: Hash, from: Option<NodeId>) -> Result<Fetched, BlobError> {
        self.inner.fetch(hash, from).await
    }

    /// Which adapters on `node` hold the blob, with its size there (empty if none
    /// does).
    pub async fn remote_has(
        &self,
        node: NodeId,
        hash: Hash,
    ) -> Result<Vec<wire::Holding>, BlobError> {
        fetch::remote_has(&self.inner.rpc, self.inner.call_options(), node, hash).await
    }

    /// The inventories of every adapter on `node` (sorted by adapter name), read
    /// with `blobs.list` page by page. Pages are read one after the other, so a
    /// blob stored or removed meanwhile may or may not appear.
    pub async fn remote_list(&self, node: NodeId) -> Result<Vec<AdapterInventory>, BlobError> {
        self.inner.remote_list(node).await
    }
}

impl AdapterInner {
    fn metrics(&self) -> AdapterMetrics {
        let c = &self.counters;
        AdapterMetrics {
            store: self.store.metrics(),
            fetches: c.fetches.load(Relaxed),
            fetch_failures: c.fetch_failures.load(Relaxed),
            integrity_failures: c.integrity_failures.load(Relaxed),
            bytes_fetched: c.bytes_fetched.load(Relaxed),
            serves: c.serves.load(Relaxed),
            bytes_served: c.bytes_served.load(Relaxed),
            serve_errors: c.serve_errors.load(Relaxed),
            refused: self.services.refused(),
        }
    }

    /// Options for every call to a peer: all blob calls are idempotent reads.
    fn call_options(&self) -> mesh_rpc::CallOptions {
        mesh_rpc::CallOptions::default()
            .deadline(self.config.call_deadline)
            .idempotent(true)
            .retries(self.config.retries)
    }

    /// This adapter's inventory with the entries given (a page of them).
    fn inventory(&self, entries: Vec<InventoryEntry>) -> AdapterInventory {
        AdapterInventory {
            node: self.node,
            adapter: self.name.clone(),
            metrics: self.metrics(),
            entries,
        }
    }
}

/// Refuses names that are empty, too long or hold control characters (they are
/// shown in the deck and in logs).
fn check_name(name: &str) -> Result<(), BlobError> {
    let reason = if name.is_empty() {
        "empty"
    } else if name.len() > MAX_ADAPTER_NAME {
        "longer than 64 bytes"
    } else if name.chars().any(char::is_control) {
        "holds control characters"
    } else {
        return Ok(());
    };
    Err(BlobError::InvalidAdapterName { name: name.to_owned(), reason })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(check_name("blobs").is_ok());
        assert!(check_name("node-3 cache #2").is_ok());
        assert!(check_name(&"x".repeat(MAX_ADAPTER_NAME)).is_ok());
        for bad in ["", "a\nb", "\u{7f}", &"x".repeat(MAX_ADAPTER_NAME + 1)] {
            assert!(
                matches!(check_name(bad), Err(BlobError::InvalidAdapterName { .. })),
                "{bad:?}"
            );
        }
    }
}
