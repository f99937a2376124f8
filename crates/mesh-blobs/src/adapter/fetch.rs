//! The calling side: fetching a blob range by range (checking every answer and
//! the whole blob's hash), finding who holds a blob, and reading a node's
//! inventories page by page.
//!
//! Everything a peer answers is untrusted: a range longer than asked for, an
//! empty one before the end, a total that changes between ranges or is above the
//! limits, and bytes that do not hash to the blob's hash all end the fetch from
//! that peer with [`BlobError::Integrity`] (counted), before anything is stored.
//! The announced total only bounds the download: the buffer grows with the
//! bytes that arrive (and pass those checks), so a peer announcing a huge blob
//! costs memory only for what it actually sends. Listings must move forward and
//! stay under [`MAX_REMOTE_LIST_ENTRIES`].

use bytes::Bytes;
use mesh::NodeId;
use mesh_rpc::{CallOptions, Rpc, RpcError, StatusCode};

use super::wire::{
    self, GetRequest, GetResponse, HasRequest, Holding, ListCursor, ListPage, ListRequest,
};
use super::{AdapterInner, AdapterInventory, Counters, Fetched};
use crate::{BlobError, Hash};

/// Most inventory entries [`super::MeshBlobAdapter::remote_list`] accepts from
/// one node (about 100 MiB of entries in memory).
pub const MAX_REMOTE_LIST_ENTRIES: usize = 1 << 20;

impl AdapterInner {
    /// [`super::MeshBlobAdapter::fetch`].
    pub(super) async fn fetch(
        &self,
        hash: Hash,
        from: Option<NodeId>,
    ) -> Result<Fetched, BlobError> {
        if let Some(entry) = self.store.entry(&hash) {
            return Ok(Fetched { hash, size: entry.size, from: None, adapter: None });
        }
        let result = match from {
            Some(node) => self.fetch_from(node, hash).await,
            None => self.fetch_any(hash).await,
        };
        match &result {
            Ok(fetched) => {
                Counters::add(&self.counters.fetches, 1);
                tracing::debug!(
                    adapter = %self.name,
                    blob = %hash.short(),
                    size = fetched.size,
                    from = ?fetched.from,
                    "fetched blob"
                );
            }
            Err(e) => {
                Counters::add(&self.counters.fetch_failures, 1);
                let blob = hash.short();
                tracing::debug!(adapter = %self.name, blob, error = %e, "fetch failed");
            }
        }
        result
    }

    /// Downloads the blob from `node`, verifies it and stores it.
    async fn fetch_from(&self, node: NodeId, hash: Hash) -> Result<Fetched, BlobError> {
        let (adapter, data) = self.download(node, hash).await?;
        let size = data.len() as u64;
        let store = self.store.clone();
        let stored = tokio::task::spawn_blocking(move || store.put(data))
            .await
            .map_err(|e| BlobError::Task(e.to_string()))??;
        if stored != hash {
            // Unreachable: the bytes hashed to `hash` before the put.
            return Err(BlobError::Integrity {
                hash,
                detail: format!("verified bytes were stored as {stored}"),
            });
        }
        Ok(Fetched { hash, size, from: Some(node), adapter: Some(adapter) })
    }

    /// Asks every reachable peer whether it holds the blob (each within the
    /// locate deadline), and fetches from the holders in the order they answer
    /// until one delivers it.
    async fn fetch_any(&self, hash: Hash) -> Result<Fetched, BlobError> {
        let budget = self.config.locate_deadline;
        let mut asks = tokio::task::JoinSet::new();
        for peer in self.rpc.mesh().peers() {
            if peer.health.is_unreachable() {
                continue;
            }
            let (rpc, node) = (self.rpc.clone(), peer.node_id);
            let options = self.call_options().deadline(budget);
            asks.spawn(async move {
                let ask = remote_has(&rpc, options, node, hash);
                let answer = tokio::time::timeout(budget, ask).await.unwrap_or_else(|_| {
                    let source = RpcError::Timeout { elapsed: budget };
                    Err(BlobError::Rpc { node, service: wire::HAS, source })
                });
                (node, answer)
            });
        }
        // An integrity failure is the error worth reporting when nobody delivered.
        let mut failure: Option<BlobError> = None;
        while let Some(joined) = asks.join_next().await {
            let Ok((node, answer)) = joined else { continue };
            match answer {
                Ok(holdings) if !holdings.is_empty() => match self.fetch_from(node, hash).await {
                    Ok(fetched) => return Ok(fetched),
                    // Local limits and failures would stop any other peer too.
                    Err(
                        e @ (BlobError::TooLarge { .. }
                        | BlobError::StoreFull { .. }
                        | BlobError::Io { .. }
                        | BlobError::Task(_)),
                    ) => return Err(e),
                    // It went between its answer and our read: not a holder after all.
                    Err(BlobError::NotFound { .. }) => {}
                    Err(e) => {
                        let blob = hash.short();
                        tracing::debug!(node = %node, blob, error = %e, "holder failed");
                        if failure.as_ref().is_none_or(|f| !f.is_integrity()) {
                            failure = Some(e);
                        }
                    }
                },
                Ok(_) => {}
                // No adapters there, or it went away: not a holder.
                Err(e) => tracing::trace!(node = %node, error = %e, "blobs.has failed"),
            }
        }
        Err(failure.unwrap_or(BlobError::NotFound { hash, node: None }))
    }

    /// Reads the whole blob from one adapter of `node`, range by range, and checks
    /// it. Returns the adapter's name and the bytes.
    async fn download(&self, node: NodeId, hash: Hash) -> Result<(String, Bytes), BlobError> {
        let options = self.call_options();
        let range = u64::from(self.config.range_size);
        let mut request =
            GetRequest { adapter: None, hash, offset: 0, len: self.config.range_size };
        let mut hasher = blake3::Hasher::new();
        let mut buf: Vec<u8> = Vec::new();
        let mut announced: Option<(u64, String)> = None;
        loop {
            let response: GetResponse = self
                .rpc
                .call(node, wire::GET, &request, options.clone())
                .await
                .map_err(|e| get_error(node, hash, e))?;
            let got = response.data.len() as u64;
            Counters::add(&self.counters.bytes_fetched, got);
            let total = match &announced {
                Some((total, _)) => *total,
                None => {
                    self.check_size(response.total)?;
                    // It must fit in memory at the end; nothing is reserved for it
                    // now (the peer may be lying).
                    if usize::try_from(response.total).is_err() {
                        let max = usize::MAX as u64;
                        return Err(BlobError::TooLarge { size: response.total, max });
                    }
                    // Every further range from the same store.
                    request.adapter = Some(response.adapter.clone());
                    announced = Some((response.total, response.adapter.clone()));
                    response.total
                }
            };
            if response.total != total {
                let detail = format!("announced {total} bytes, then {}", response.total);
                return Err(self.lied(node, hash, detail));
            }
            let left = total - request.offset;
            if got > left.min(range) || (got == 0 && left > 0) {
                let detail = format!(
                    "sent {got} bytes for a range of at most {} at offset {} of {total}",
                    left.min(range),
                    request.offset
                );
                return Err(self.lied(node, hash, detail));
            }
            hasher.update(&response.data);
            grow_for(&mut buf, response.data.len(), left);
            buf.extend_from_slice(&response.data);
            request.offset += got;
            if request.offset == total {
                break;
            }
        }
        let actual = Hash::from(hasher.finalize());
        if actual != hash {
            let detail = format!("sent {} bytes hashing to {actual}", buf.len());
            return Err(self.lied(node, hash, detail));
        }
        let adapter = announced.map(|(_, adapter)| adapter).unwrap_or_default();
        Ok((adapter, Bytes::from(buf)))
    }

    /// Refuses a blob that can never be stored here, before reading more of it.
    fn check_size(&self, size: u64) -> Result<(), BlobError> {
        let max = self.config.max_fetch_size;
        if size > max {
            return Err(BlobError::TooLarge { size, max });
        }
        let metrics = self.store.metrics();
        match metrics.capacity {
            Some(capacity) if size > capacity => {
                Err(BlobError::StoreFull { needed: size, used: metrics.used, capacity })
            }
            _ => Ok(()),
        }
    }

    /// Counts a peer's wrong answer and builds the integrity error for it.
    fn lied(&self, node: NodeId, hash: Hash, detail: String) -> BlobError {
        Counters::add(&self.counters.integrity_failures, 1);
        tracing::warn!(
            adapter = %self.name,
            node = %node,
            blob = %hash.short(),
            detail = %detail,
            "peer sent a blob that does not match its hash"
        );
        BlobError::Integrity { hash, detail: format!("from node {node}: {detail}") }
    }

    /// [`super::MeshBlobAdapter::remote_list`].
    pub(super) async fn remote_list(
        &self,
        node: NodeId,
    ) -> Result<Vec<AdapterInventory>, BlobError> {
        list_remote(&self.rpc, node, self.call_options(), self.config.list_page).await
    }
}

/// The inventories of every adapter on `node` (sorted by adapter name), read with
/// `blobs.list` pages of `page` entries; a peer that breaks the protocol (too
/// many entries, pages out of order or not moving forward) is an error. What
/// [`super::MeshBlobAdapter::remote_list`] does, for callers without an adapter
/// of their own (an attached deck).
pub async fn list_remote(
    rpc: &Rpc,
    node: NodeId,
    options: CallOptions,
    page: u32,
) -> Result<Vec<AdapterInventory>, BlobError> {
    let broke = |detail: String| BlobError::PeerProtocol { node, detail };
    let mut merged: Vec<AdapterInventory> = Vec::new();
    let mut entries = 0usize;
    let mut after: Option<ListCursor> = None;
    loop {
        let request = ListRequest { adapter: None, after: after.clone(), limit: page };
        let page: ListPage = rpc
            .call(node, wire::LIST, &request, options.clone())
            .await
            .map_err(|source| BlobError::Rpc { node, service: wire::LIST, source })?;
        let page_entries: usize = page.adapters.iter().map(|a| a.entries.len()).sum();
        entries = entries.saturating_add(page_entries);
        if entries > MAX_REMOTE_LIST_ENTRIES {
            return Err(broke(format!("listed more than {MAX_REMOTE_LIST_ENTRIES} blobs")));
        }
        for mut inventory in page.adapters {
            // The node is the one called, whatever the page says.
            inventory.node = node;
            match merged.last_mut() {
                Some(last) if last.adapter == inventory.adapter => {
                    last.entries.append(&mut inventory.entries);
                    last.metrics = inventory.metrics;
                }
                Some(last) if last.adapter > inventory.adapter => {
                    return Err(broke("listed adapters out of name order".into()));
                }
                _ => merged.push(inventory),
            }
        }
        match page.next {
            None => break,
            // A page that is not the last is full, so it holds entries.
            Some(_) if page_entries == 0 => {
                return Err(broke("sent an empty page that is not the last".into()));
            }
            Some(next) if after.as_ref().is_some_and(|prev| next <= *prev) => {
                return Err(broke("the listing did not move forward".into()));
            }
            Some(next) => after = Some(next),
        }
    }
    Ok(merged)
}

/// Which adapters on `node` hold the blob.
pub(super) async fn remote_has(
    rpc: &Rpc,
    options: CallOptions,
    node: NodeId,
    hash: Hash,
) -> Result<Vec<Holding>, BlobError> {
    let request = HasRequest { adapter: None, hash };
    rpc.call(node, wire::HAS, &request, options).await.map_err(|source| BlobError::Rpc {
        node,
        service: wire::HAS,
        source,
    })
}

/// Makes room in `buf` for `incoming` more bytes (already received and checked),
/// of `left` still to come (these included): doubling, as a `Vec` grows, but
/// never past what the announced total needs. So the buffer is at most about
/// twice what was received, and exactly the total for an honest peer.
fn grow_for(buf: &mut Vec<u8>, incoming: usize, left: u64) {
    if buf.capacity() - buf.len() >= incoming {
        return;
    }
    let left = usize::try_from(left).unwrap_or(usize::MAX);
    let more = buf.len().max(incoming).min(left).max(incoming);
    buf.reserve_exact(more);
}

/// A failed `blobs.get`: `not_found` from the peer is [`BlobError::NotFound`].
fn get_error(node: NodeId, hash: Hash, error: RpcError) -> BlobError {
    match error {
        RpcError::Remote { code: StatusCode::NotFound, .. } => {
            BlobError::NotFound { hash, node: Some(node) }
        }
        source => BlobError::Rpc { node, service: wire::GET, source },
    }
}
