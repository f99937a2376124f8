//! [`BlobSource`]: what the deck reads from a blob adapter.
//!
//! The deck merges the inventories and figures of every source it is given
//! ([`crate::DeckClient::with_blob_adapters`]). [`mesh_blobs::MeshBlobAdapter`]
//! is a source; so is any [`BlobStore`] given a name and a node ([`StoreSource`]).

use std::sync::Arc;

use mesh::NodeId;
use mesh_blobs::{BlobStore, InventoryEntry, MeshBlobAdapter, Metrics};

use crate::data::{BlobEntry, FortStats};

/// One blob adapter as the deck sees it.
pub trait BlobSource: Send + Sync + std::fmt::Debug {
    /// The adapter's name.
    fn adapter_name(&self) -> String;
    /// The node it runs on.
    fn node(&self) -> NodeId;
    /// Its figures and its inventory, taken together.
    fn read(&self) -> (FortStats, Vec<BlobEntry>);
}

impl<T: BlobSource + ?Sized> BlobSource for Arc<T> {
    fn adapter_name(&self) -> String {
        (**self).adapter_name()
    }
    fn node(&self) -> NodeId {
        (**self).node()
    }
    fn read(&self) -> (FortStats, Vec<BlobEntry>) {
        (**self).read()
    }
}

fn entries(adapter: &Arc<str>, node: NodeId, list: Vec<InventoryEntry>) -> Vec<BlobEntry> {
    list.into_iter()
        .map(|e| BlobEntry {
            adapter: adapter.clone(),
            node,
            hash: e.hash,
            size: e.size,
            chunks: e.chunks,
            stored_at_ms: e.stored_at_ms,
            last_read_ms: e.last_read_ms,
            read_count: e.read_count,
            pinned: e.pinned,
        })
        .collect()
}

fn stats(adapter: Arc<str>, node: NodeId, m: &Metrics) -> FortStats {
    FortStats {
        adapter,
        node,
        blobs: m.blobs,
        bytes: m.bytes,
        used: m.used,
        capacity: m.capacity,
        puts: m.puts,
        gets: m.gets,
        hits: m.hits,
        fetches: 0,
        fetch_failures: 0,
        evictions: m.evictions,
        integrity_failures: m.integrity_failures,
        serves: 0,
    }
}

impl BlobSource for MeshBlobAdapter {
    fn adapter_name(&self) -> String {
        self.name().to_owned()
    }

    fn node(&self) -> NodeId {
        self.node_id()
    }

    fn read(&self) -> (FortStats, Vec<BlobEntry>) {
        from_inventory(self.list())
    }
}

/// An adapter's inventory (local, or read from another node) as the deck shows it.
pub(crate) fn from_inventory(
    inventory: mesh_blobs::AdapterInventory,
) -> (FortStats, Vec<BlobEntry>) {
    let name: Arc<str> = inventory.adapter.as_str().into();
    let m = &inventory.metrics;
    let mut fort = stats(name.clone(), inventory.node, &m.store);
    fort.fetches = m.fetches;
    fort.fetch_failures = m.fetch_failures;
    fort.integrity_failures += m.integrity_failures;
    fort.serves = m.serves;
    (fort, entries(&name, inventory.node, inventory.entries))
}

/// A plain store shown as an adapter (no mesh traffic figures).
#[derive(Debug, Clone)]
pub struct StoreSource {
    name: Arc<str>,
    node: NodeId,
    store: Arc<dyn BlobStore>,
}

impl StoreSource {
    /// `store`, shown as adapter `name` on `node`.
    pub fn new(name: &str, node: NodeId, store: Arc<dyn BlobStore>) -> StoreSource {
        StoreSource { name: name.into(), node, store }
    }
}

impl BlobSource for StoreSource {
    fn adapter_name(&self) -> String {
        self.name.to_string()
    }

    fn node(&self) -> NodeId {
        self.node
    }

    fn read(&self) -> (FortStats, Vec<BlobEntry>) {
        let metrics = self.store.metrics();
        let mut list = self.store.list();
        list.sort_by_key(|e| e.hash);
        (stats(self.name.clone(), self.node, &metrics), entries(&self.name, self.node, list))
    }
}
