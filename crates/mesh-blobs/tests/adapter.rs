//! Blob adapters on real nodes on 127.0.0.1: a blob put on one node is fetched on
//! another (one range and many, from a named peer and from whoever holds it), lying
//! peers are detected and nothing they sent is stored, several adapters share a
//! node's services, and inventories are listed page by page. Hostile callers: a
//! range is served from its covering chunks only, each caller gets a few calls in
//! flight and no more, and a peer announcing a huge blob does not make the
//! fetcher allocate it.
//!
//! Deadlines are generous and every wait is a wait-for-condition (the machine may
//! be loaded).

use std::io::Read;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use mesh::testing::Cluster;
use mesh::{ClusterKey, MeshConfig, NodeId};
use mesh_blobs::wire::{self, GetRequest, GetResponse, HasRequest, Holding, ListPage, ListRequest};
use mesh_blobs::{
    AdapterConfig, BlobError, BlobStore, CHUNK_SIZE, DiskLog, Hash, InventoryEntry, MemLog,
    MeshBlobAdapter, Metrics, StoreConfig,
};
use mesh_rpc::{CallOptions, Rpc, RpcError, RpcStatus, Side, StatusCode};

const DEADLINE: Duration = Duration::from_secs(30);

fn config() -> MeshConfig {
    MeshConfig::new(ClusterKey::from_bytes([23; 32]))
}

async fn cluster(n: usize) -> Cluster {
    Cluster::start_with_deadline(n, config(), DEADLINE).await.unwrap()
}

/// Generous deadlines, and a serve cache that outlives any pause between ranges
/// on a loaded machine.
fn patient() -> AdapterConfig {
    AdapterConfig::default()
        .with_call_deadline(DEADLINE)
        .with_locate_deadline(DEADLINE)
        .with_serve_cache(256 << 20, DEADLINE)
}

fn rpc(cluster: &Cluster, i: usize) -> Rpc {
    Rpc::new(cluster.nth(i).unwrap()).unwrap()
}

fn node_id(cluster: &Cluster, i: usize) -> NodeId {
    cluster.nth(i).unwrap().node_id()
}

fn adapter(
    cluster: &Cluster,
    i: usize,
    name: &str,
    store: Arc<dyn BlobStore>,
    config: AdapterConfig,
) -> MeshBlobAdapter {
    MeshBlobAdapter::with_config(name, &rpc(cluster, i), store, config).unwrap()
}

fn mem() -> Arc<dyn BlobStore> {
    Arc::new(MemLog::default())
}

/// `len` bytes of pseudo-random content from `seed`.
fn content(len: usize, seed: u64) -> Vec<u8> {
    let mut out = vec![0u8; len];
    blake3::Hasher::new().update(&seed.to_le_bytes()).finalize_xof().fill(&mut out);
    out
}

/// A store that serves altered bytes (or fails reads) for the blobs it holds,
/// as a buggy or malicious peer would.
#[derive(Debug)]
struct LyingStore {
    inner: MemLog,
    mode: AtomicU8,
}

const FLIP_A_BYTE: u8 = 0;
const FAIL_READS: u8 = 1;

impl LyingStore {
    fn new(mode: u8) -> Arc<LyingStore> {
        Arc::new(LyingStore { inner: MemLog::default(), mode: AtomicU8::new(mode) })
    }
}

impl BlobStore for LyingStore {
    fn put(&self, data: Bytes) -> Result<Hash, BlobError> {
        self.inner.put(data)
    }

    fn put_stream(&self, reader: &mut dyn Read) -> Result<Hash, BlobError> {
        self.inner.put_stream(reader)
    }

    fn get(&self, hash: &Hash) -> Result<Option<Bytes>, BlobError> {
        let Some(data) = self.inner.get(hash)? else { return Ok(None) };
        if self.mode.load(SeqCst) == FAIL_READS {
            return Err(BlobError::Integrity { hash: *hash, detail: "simulated damage".into() });
        }
        let mut bad = data.to_vec();
        if let Some(mid) = bad.get_mut(data.len() / 2) {
            *mid ^= 0x01;
        }
        Ok(Some(Bytes::from(bad)))
    }

    fn has(&self, hash: &Hash) -> bool {
        self.inner.has(hash)
    }

    fn delete(&self, hash: &Hash) -> Result<bool, BlobError> {
        self.inner.delete(hash)
    }

    fn pin(&self, hash: &Hash) -> Result<bool, BlobError> {
        self.inner.pin(hash)
    }

    fn unpin(&self, hash: &Hash) -> Result<bool, BlobError> {
        self.inner.unpin(hash)
    }

    fn list(&self) -> Vec<InventoryEntry> {
        self.inner.list()
    }

    fn entry(&self, hash: &Hash) -> Option<InventoryEntry> {
        self.inner.entry(hash)
    }

    fn metrics(&self) -> Metrics {
        self.inner.metrics()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blob_put_on_a_is_fetched_on_b() {
    let cluster = cluster(3).await;
    let dir = tempfile::tempdir().unwrap();
    let disk: Arc<dyn BlobStore> = Arc::new(DiskLog::open(dir.path(), Default::default()).unwrap());
    let a = adapter(&cluster, 0, "a", disk, patient());
    let b = adapter(&cluster, 1, "b", mem(), patient());
    // Node 2 has no RPC endpoint at all, so it never answers: fetches that find a
    // holder do not wait for it.
    let (id_a, id_b) = (node_id(&cluster, 0), node_id(&cluster, 1));
    assert_eq!((a.node_id(), b.node_id()), (id_a, id_b));

    // One range, from a named peer.
    let small = a.store().put_slice(b"hello mesh").unwrap();
    let fetched = b.fetch(small, Some(id_a)).await.unwrap();
    assert_eq!((fetched.hash, fetched.size, fetched.from), (small, 10, Some(id_a)));
    assert_eq!(fetched.adapter.as_deref(), Some("a"));
    assert_eq!(b.store().get(&small).unwrap().unwrap(), &b"hello mesh"[..]);

    // Larger than one RPC message (4 MiB): five 1 MiB ranges, from whoever has it.
    let data = content(4 * 1024 * 1024 + 512 * 1024, 1);
    let big = a.store().put_slice(&data).unwrap();
    let fetched = b.fetch(big, None).await.unwrap();
    assert_eq!((fetched.size, fetched.from), (data.len() as u64, Some(id_a)));
    assert!(b.store().get(&big).unwrap().unwrap() == data);

    // Already local: nothing is transferred.
    let again = b.fetch(big, None).await.unwrap();
    assert_eq!((again.from, again.adapter, again.size), (None, None, data.len() as u64));

    let mb = b.metrics();
    assert_eq!((mb.fetches, mb.fetch_failures, mb.integrity_failures), (2, 0, 0));
    assert_eq!(mb.bytes_fetched, 10 + data.len() as u64);
    assert_eq!((mb.store.blobs, mb.store.puts), (2, 2));
    let ma = a.metrics();
    assert_eq!((ma.serves, ma.bytes_served, ma.serve_errors), (6, 10 + data.len() as u64, 0));
    // Each range was read from disk as the one chunk it covers, once.
    assert_eq!((ma.store.gets, ma.store.range_gets, ma.store.chunks_verified), (6, 6, 6));
    assert_eq!(ma.refused, 0);

    // The deck's view of the local inventory.
    let inventory = b.list();
    assert_eq!((inventory.node, inventory.adapter.as_str()), (id_b, "b"));
    let mut expected = vec![small, big];
    expected.sort();
    assert_eq!(inventory.entries.iter().map(|e| e.hash).collect::<Vec<_>>(), expected);
    assert_eq!(inventory.metrics.fetches, 2);

    // Blobs nobody holds.
    let nowhere = Hash::of(b"held by nobody");
    let err = b.fetch(nowhere, Some(id_a)).await.unwrap_err();
    assert!(matches!(err, BlobError::NotFound { node: Some(n), .. } if n == id_a), "{err}");
    assert_eq!(b.metrics().fetch_failures, 1);
    // Without a named peer, the silent node holds the answer up only for the
    // locate deadline (this adapter's is short).
    let quick = adapter(
        &cluster,
        1,
        "quick",
        mem(),
        patient().with_locate_deadline(Duration::from_secs(1)),
    );
    let started = Instant::now();
    let err = quick.fetch(nowhere, None).await.unwrap_err();
    assert!(matches!(err, BlobError::NotFound { node: None, .. }), "{err}");
    assert!(started.elapsed() < DEADLINE / 2, "took {:?}", started.elapsed());
    assert_eq!(quick.metrics().fetch_failures, 1);
    assert!(!quick.store().has(&nowhere));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lying_peer_is_detected_and_nothing_is_stored() {
    let cluster = cluster(3).await;
    let liar_store = LyingStore::new(FLIP_A_BYTE);
    // Small ranges, so the lie spans several of them.
    let ranged = patient().with_range_size(64 * 1024);
    let liar = adapter(&cluster, 0, "liar", liar_store.clone(), ranged.clone());
    let b = adapter(&cluster, 1, "b", mem(), ranged.clone());
    let (id_liar, id_honest) = (node_id(&cluster, 0), node_id(&cluster, 2));
    // Node 2 runs an RPC endpoint but no adapter yet: it answers "no such service".
    let _endpoint = rpc(&cluster, 2);

    let data = content(200_000, 2);
    let hash = liar_store.inner.put_slice(&data).unwrap();

    let err = b.fetch(hash, Some(id_liar)).await.unwrap_err();
    assert!(err.is_integrity(), "{err}");
    assert!(err.to_string().contains(&id_liar.to_string()), "{err}");
    let m = b.metrics();
    assert_eq!((m.integrity_failures, m.fetch_failures, m.fetches), (1, 1, 0));
    assert_eq!(m.bytes_fetched, data.len() as u64);
    assert!(!b.store().has(&hash));
    assert_eq!((m.store.puts, m.store.blobs), (0, 0));

    // Asking everyone: the liar is the only holder, so the fetch fails the same way.
    let err = b.fetch(hash, None).await.unwrap_err();
    assert!(err.is_integrity(), "{err}");
    assert_eq!(b.metrics().integrity_failures, 2);
    assert!(!b.store().has(&hash));

    // Once an honest node holds it too, asking everyone gets the right bytes
    // (after the liar's, if it answered first).
    let honest = adapter(&cluster, 2, "honest", mem(), ranged);
    honest.store().put_slice(&data).unwrap();
    let fetched = b.fetch(hash, None).await.unwrap();
    assert_eq!(fetched.from, Some(id_honest));
    assert!(b.store().get(&hash).unwrap().unwrap() == data);
    let m = b.metrics();
    assert!((2..=3).contains(&m.integrity_failures), "{m:?}");
    assert_eq!((m.fetches, m.fetch_failures), (1, 2));
    assert_eq!(liar.metrics().serve_errors, 0);

    // A store that finds its own copy damaged answers data_loss, and counts it.
    let other = content(1000, 3);
    let damaged = liar_store.inner.put_slice(&other).unwrap();
    liar_store.mode.store(FAIL_READS, SeqCst);
    let err = b.fetch(damaged, Some(id_liar)).await.unwrap_err();
    assert!(
        matches!(
            &err,
            BlobError::Rpc { source: RpcError::Remote { code: StatusCode::DataLoss, .. }, .. }
        ),
        "{err}"
    );
    assert_eq!(liar.metrics().serve_errors, 1);
    assert!(!b.store().has(&damaged));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fake_server_whose_ranges_do_not_add_up_is_caught() {
    let cluster = cluster(2).await;
    let b = adapter(
        &cluster,
        1,
        "b",
        mem(),
        patient().with_range_size(64 * 1024).with_max_fetch_size(1 << 20),
    );
    let fake = node_id(&cluster, 0);
    // Node 0 serves `blobs.get` itself, with no adapter: one misbehaviour per
    // blob, and honest answers for the last one.
    let honest = content(150_000, 4);
    let (long, empty, shifting, huge, fine) = (
        Hash::of(b"long"),
        Hash::of(b"empty"),
        Hash::of(b"shifting"),
        Hash::of(b"huge"),
        Hash::of(&honest),
    );
    let served = honest.clone();
    // The endpoint lives only as long as a handle to it (the serve handle is weak).
    let fake_rpc = rpc(&cluster, 0);
    let _get = fake_rpc
        .serve(wire::GET, move |req: GetRequest, _ctx| {
            let honest = Bytes::from(served.clone());
            async move {
                let response = |total: u64, data: Bytes| {
                    Ok::<_, RpcStatus>(GetResponse { adapter: "fake".into(), total, data })
                };
                match req.hash {
                    h if h == long => response(5, Bytes::from(vec![0u8; 10])),
                    h if h == empty => response(10, Bytes::new()),
                    h if h == shifting => {
                        let total = if req.offset == 0 { 200_000 } else { 300_000 };
                        response(total, Bytes::from(vec![0u8; req.len as usize]))
                    }
                    h if h == huge => response(2 << 20, Bytes::from(vec![0u8; 10])),
                    h if h == fine => {
                        let start = req.offset as usize;
                        let end = (start + req.len as usize).min(honest.len());
                        response(honest.len() as u64, honest.slice(start..end))
                    }
                    _ => Err(RpcStatus::not_found("no such blob")),
                }
            }
        })
        .unwrap();

    for (n, hash) in [long, empty, shifting].into_iter().enumerate() {
        let err = b.fetch(hash, Some(fake)).await.unwrap_err();
        assert!(err.is_integrity(), "{err}");
        assert_eq!(b.metrics().integrity_failures, n as u64 + 1);
        assert!(!b.store().has(&hash));
    }
    // Too large to accept is a refusal, not a lie.
    let err = b.fetch(huge, Some(fake)).await.unwrap_err();
    assert!(matches!(err, BlobError::TooLarge { size, max } if size == 2 << 20 && max == 1 << 20));
    assert_eq!(b.metrics().integrity_failures, 3);
    // Any server speaking the protocol correctly can be fetched from.
    let fetched = b.fetch(fine, Some(fake)).await.unwrap();
    assert_eq!(fetched.adapter.as_deref(), Some("fake"));
    assert!(b.store().get(&fine).unwrap().unwrap() == honest);
    let m = b.metrics();
    assert_eq!((m.fetches, m.fetch_failures, m.store.blobs), (1, 4, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adapters_share_a_nodes_services_and_are_listed_page_by_page() {
    let cluster = cluster(2).await;
    let on_a = rpc(&cluster, 0);
    let alpha = adapter(&cluster, 0, "alpha", mem(), patient());
    let beta = adapter(&cluster, 0, "beta", mem(), patient());
    // Pages of three entries, so both inventories span several pages.
    let b = adapter(&cluster, 1, "b", mem(), patient().with_list_page(3));
    let id_a = node_id(&cluster, 0);
    assert_eq!(on_a.services(), vec![wire::GET, wire::HAS, wire::LIST]);

    let err = MeshBlobAdapter::with_config("alpha", &on_a, mem(), patient()).unwrap_err();
    let exists = matches!(&err, BlobError::AdapterExists { name, node } if name == "alpha");
    assert!(
        exists && matches!(err, BlobError::AdapterExists { node, .. } if node == id_a),
        "{err}"
    );
    for bad in ["", "tab\there"] {
        let err = MeshBlobAdapter::with_config(bad, &on_a, mem(), patient()).unwrap_err();
        assert!(matches!(err, BlobError::InvalidAdapterName { .. }), "{err}");
    }
    let err = MeshBlobAdapter::with_config("x", &on_a, mem(), patient().with_range_size(8 << 20))
        .unwrap_err();
    assert!(matches!(err, BlobError::InvalidConfig { .. }), "{err}");

    let shared = alpha.store().put_slice(b"in both").unwrap();
    beta.store().put_slice(b"in both").unwrap();
    for i in 0..7u64 {
        alpha.store().put_slice(&content(100, 100 + i)).unwrap();
    }
    let mut only_beta = Vec::new();
    for i in 0..5u64 {
        only_beta.push(beta.store().put_slice(&content(100, 200 + i)).unwrap());
    }

    let listed = b.remote_list(id_a).await.unwrap();
    assert_eq!(listed.len(), 2);
    for (inventory, local) in listed.iter().zip([&alpha, &beta]) {
        let expected = local.list();
        assert_eq!((inventory.node, &inventory.adapter), (id_a, &expected.adapter));
        assert_eq!(inventory.entries, expected.entries);
        assert_eq!(inventory.metrics.store.blobs, expected.entries.len() as u64);
    }
    assert_eq!((listed[0].entries.len(), listed[1].entries.len()), (8, 6));

    let holders = b.remote_has(id_a, shared).await.unwrap();
    let names: Vec<&str> = holders.iter().map(|h| h.adapter.as_str()).collect();
    assert_eq!(names, ["alpha", "beta"]);
    assert!(holders.iter().all(|h| h.size == 7));
    let fetched = b.fetch(only_beta[0], Some(id_a)).await.unwrap();
    assert_eq!(fetched.adapter.as_deref(), Some("beta"));
    assert_eq!(beta.metrics().serves, 1);
    assert_eq!(alpha.metrics().serves, 0);

    // The services stay while one adapter is left, and go with the last.
    drop(alpha);
    let listed = b.remote_list(id_a).await.unwrap();
    let names: Vec<&str> = listed.iter().map(|i| i.adapter.as_str()).collect();
    assert_eq!(names, ["beta"]);
    drop(beta);
    assert!(on_a.services().is_empty());
    let err = b.fetch(only_beta[1], Some(id_a)).await.unwrap_err();
    assert!(matches!(&err, BlobError::Rpc { source: RpcError::NoSuchService { .. }, .. }), "{err}");
    // The name is free again, and a new adapter serves at once.
    let again = adapter(&cluster, 0, "alpha", mem(), patient());
    let hash = again.store().put_slice(b"back").unwrap();
    assert_eq!(b.fetch(hash, Some(id_a)).await.unwrap().adapter.as_deref(), Some("alpha"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_store_refuses_before_downloading() {
    let cluster = cluster(2).await;
    let a = adapter(&cluster, 0, "a", mem(), patient());
    let tiny: Arc<dyn BlobStore> =
        Arc::new(MemLog::new(StoreConfig::default().with_capacity(1000)));
    let b = adapter(&cluster, 1, "b", tiny, patient().with_range_size(1024));
    let hash = a.store().put_slice(&content(50_000, 5)).unwrap();
    let err = b.fetch(hash, Some(node_id(&cluster, 0))).await.unwrap_err();
    assert!(matches!(err, BlobError::StoreFull { needed: 50_000, capacity: 1000, .. }), "{err}");
    // Only the first range was read.
    let m = b.metrics();
    assert_eq!((m.bytes_fetched, m.integrity_failures, m.fetch_failures), (1024, 0, 1));
}

/// Patient options for raw calls to the blob services.
fn call_options() -> CallOptions {
    CallOptions::default().deadline(DEADLINE)
}

/// Raw `blobs.get` of `len` bytes at `offset`.
async fn get_range(
    rpc: &Rpc,
    node: NodeId,
    hash: Hash,
    offset: u64,
    len: u32,
) -> Result<GetResponse, RpcError> {
    let request = GetRequest { adapter: None, hash, offset, len };
    rpc.call(node, wire::GET, &request, call_options()).await
}

/// Flips a byte inside `needle`, found in one of `files` (the content is random,
/// so it is found once).
fn flip_byte_of(files: &[std::path::PathBuf], needle: &[u8]) {
    for path in files {
        let mut bytes = std::fs::read(path).unwrap();
        if let Some(at) = bytes.windows(needle.len()).position(|w| w == needle) {
            bytes[at + needle.len() / 2] ^= 0x01;
            std::fs::write(path, bytes).unwrap();
            return;
        }
    }
    panic!("content not found in the segment files");
}

fn is_remote(result: &Result<impl std::fmt::Debug, RpcError>, want: StatusCode) -> bool {
    matches!(result, Err(RpcError::Remote { code, .. }) if *code == want)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_range_is_served_from_its_covering_chunks_only() {
    let cluster = cluster(2).await;
    let dir = tempfile::tempdir().unwrap();
    let disk = Arc::new(DiskLog::open(dir.path(), Default::default()).unwrap());
    let store: Arc<dyn BlobStore> = disk.clone();
    let a = adapter(&cluster, 0, "a", store, patient());
    let (id_a, caller) = (node_id(&cluster, 0), rpc(&cluster, 1));
    let c = CHUNK_SIZE as u64;
    let data = content(4 * CHUNK_SIZE + 1000, 7);
    let total = data.len() as u64;
    let hash = a.store().put_slice(&data).unwrap();
    let verified = || a.metrics().store.chunks_verified;
    let bytes = |offset: u64, len: u64| &data[offset as usize..(offset + len) as usize];

    // Inside chunk 2: that chunk alone is read and verified.
    let got = get_range(&caller, id_a, hash, 2 * c + 100, 5000).await.unwrap();
    assert_eq!((got.total, got.adapter.as_str()), (total, "a"));
    assert!(got.data == bytes(2 * c + 100, 5000));
    assert_eq!(verified(), 1);
    // Across the boundary of chunks 0 and 1: both.
    let got = get_range(&caller, id_a, hash, c - 10, 20).await.unwrap();
    assert!(got.data == bytes(c - 10, 20));
    assert_eq!(verified(), 3);
    // The range ended inside chunk 1: the next range there comes from the serve
    // cache, verified when it was read.
    let got = get_range(&caller, id_a, hash, c + 10, 1000).await.unwrap();
    assert!(got.data == bytes(c + 10, 1000));
    assert_eq!(verified(), 3);
    // A length above the message limit is cut to the largest range.
    let got = get_range(&caller, id_a, hash, 0, u32::MAX).await.unwrap();
    let max_range = (mesh_rpc::DEFAULT_MAX_MESSAGE - wire::RESPONSE_OVERHEAD) as u64;
    assert!(got.data == bytes(0, max_range));
    // Chunks 0 and 3 are read; 1 and 2 are still cached, as the earlier ranges
    // ended inside them.
    assert_eq!(verified(), 5);
    let m = a.metrics().store;
    assert_eq!((m.gets, m.range_gets), (4, 4), "one store read per run of chunks");

    // At the end: nothing; past it: out_of_range, typed, no panic.
    let got = get_range(&caller, id_a, hash, total, 10).await.unwrap();
    assert!(got.data.is_empty() && got.total == total);
    for offset in [total + 1, u64::MAX] {
        let past = get_range(&caller, id_a, hash, offset, 10).await;
        assert!(is_remote(&past, StatusCode::OutOfRange), "{past:?}");
    }
    assert_eq!(a.metrics().serve_errors, 0);

    // Damage the last chunk (4) on disk: ranges outside it are still served
    // (they never read it), ranges over it are data_loss, never bytes.
    flip_byte_of(&disk.segment_paths(), &data[4 * CHUNK_SIZE + 500..4 * CHUNK_SIZE + 564]);
    let got = get_range(&caller, id_a, hash, c / 2, 1000).await.unwrap();
    assert!(got.data == bytes(c / 2, 1000));
    let got = get_range(&caller, id_a, hash, 3 * c, c as u32).await.unwrap();
    assert!(got.data == bytes(3 * c, c));
    let damaged = get_range(&caller, id_a, hash, 4 * c + 100, 10).await;
    assert!(is_remote(&damaged, StatusCode::DataLoss), "{damaged:?}");
    let damaged = get_range(&caller, id_a, hash, 3 * c, c as u32 + 1).await;
    assert!(is_remote(&damaged, StatusCode::DataLoss), "{damaged:?}");
    assert_eq!(a.metrics().serve_errors, 2);
    // A whole fetch of it fails the same way and stores nothing.
    let b = adapter(&cluster, 1, "b", mem(), patient());
    let err = b.fetch(hash, Some(id_a)).await.unwrap_err();
    assert!(
        matches!(
            &err,
            BlobError::Rpc { source: RpcError::Remote { code: StatusCode::DataLoss, .. }, .. }
        ),
        "{err}"
    );
    assert!(!b.store().has(&hash));
}

/// A store whose range reads wait at a gate until it opens.
#[derive(Debug, Default)]
struct GatedStore {
    inner: MemLog,
    open: Mutex<bool>,
    opened: Condvar,
    waiting: AtomicUsize,
}

impl GatedStore {
    fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.opened.notify_all();
    }
}

/// Opens the gate when dropped, so a failing test does not leave blocking
/// reads (which the runtime waits for) stuck.
struct OpenOnDrop(Arc<GatedStore>);

impl Drop for OpenOnDrop {
    fn drop(&mut self) {
        self.0.open();
    }
}

impl BlobStore for GatedStore {
    fn put(&self, data: Bytes) -> Result<Hash, BlobError> {
        self.inner.put(data)
    }

    fn put_stream(&self, reader: &mut dyn Read) -> Result<Hash, BlobError> {
        self.inner.put_stream(reader)
    }

    fn get(&self, hash: &Hash) -> Result<Option<Bytes>, BlobError> {
        self.inner.get(hash)
    }

    fn get_range(&self, hash: &Hash, offset: u64, len: u64) -> Result<Option<Bytes>, BlobError> {
        self.waiting.fetch_add(1, SeqCst);
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.opened.wait(open).unwrap();
        }
        drop(open);
        self.waiting.fetch_sub(1, SeqCst);
        self.inner.get_range(hash, offset, len)
    }

    fn has(&self, hash: &Hash) -> bool {
        self.inner.has(hash)
    }

    fn delete(&self, hash: &Hash) -> Result<bool, BlobError> {
        self.inner.delete(hash)
    }

    fn pin(&self, hash: &Hash) -> Result<bool, BlobError> {
        self.inner.pin(hash)
    }

    fn unpin(&self, hash: &Hash) -> Result<bool, BlobError> {
        self.inner.unpin(hash)
    }

    fn list(&self) -> Vec<InventoryEntry> {
        self.inner.list()
    }

    fn entry(&self, hash: &Hash) -> Option<InventoryEntry> {
        self.inner.entry(hash)
    }

    fn metrics(&self) -> Metrics {
        self.inner.metrics()
    }
}

/// Waits (generously) until `done` holds.
async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < DEADLINE, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_caller_gets_a_few_calls_in_flight_and_no_more() {
    let cluster = cluster(3).await;
    let gated = Arc::new(GatedStore::default());
    let _open_at_end = OpenOnDrop(gated.clone());
    let store: Arc<dyn BlobStore> = gated.clone();
    let a = adapter(&cluster, 0, "a", store, patient());
    let data = content(1000, 8);
    let hash = a.store().put_slice(&data).unwrap();
    let (id_a, server, hostile, other) =
        (node_id(&cluster, 0), rpc(&cluster, 0), rpc(&cluster, 1), rpc(&cluster, 2));
    let cap = wire::MAX_IN_FLIGHT_PER_CALLER;

    // The caller fills its slots with reads that hang in the store, and gives
    // up on them after a short deadline.
    let short = Duration::from_secs(5);
    let mut stuck = tokio::task::JoinSet::new();
    for _ in 0..cap {
        let rpc = hostile.clone();
        let request = GetRequest { adapter: None, hash, offset: 0, len: 100 };
        let options = CallOptions::default().deadline(short);
        stuck.spawn(
            async move { rpc.call::<_, GetResponse>(id_a, wire::GET, &request, options).await },
        );
    }
    wait_for("the reads wait in the store", || gated.waiting.load(SeqCst) == cap).await;

    // One more call of any of the three services is refused at once.
    let get = get_range(&hostile, id_a, hash, 0, 100).await;
    assert!(is_remote(&get, StatusCode::ResourceExhausted), "{get:?}");
    let has_request = HasRequest { adapter: None, hash };
    let has: Result<Vec<Holding>, _> =
        hostile.call(id_a, wire::HAS, &has_request, call_options()).await;
    assert!(is_remote(&has, StatusCode::ResourceExhausted), "{has:?}");
    let list_request = ListRequest { adapter: None, after: None, limit: 10 };
    let list: Result<ListPage, _> =
        hostile.call(id_a, wire::LIST, &list_request, call_options()).await;
    assert!(is_remote(&list, StatusCode::ResourceExhausted), "{list:?}");
    assert_eq!(a.metrics().refused, 3);
    // Another caller is served meanwhile.
    let holdings: Vec<Holding> =
        other.call(id_a, wire::HAS, &has_request, call_options()).await.unwrap();
    assert_eq!(holdings, vec![Holding { adapter: "a".into(), size: 1000 }]);

    // The stuck calls run out of time (the server drops their handlers, at its
    // deadline or on the caller's cancel), but their reads still hold the
    // slots: a short deadline does not let a caller pile up work.
    let finished_gets = || {
        let stats = server.stats().services;
        let get = stats.iter().find(|s| s.side == Side::Server && s.service == wire::GET);
        get.map_or(0, |s| s.calls)
    };
    let before = finished_gets();
    while let Some(joined) = stuck.join_next().await {
        let result = joined.unwrap();
        assert!(matches!(result, Err(RpcError::Timeout { .. })), "{result:?}");
    }
    let all_ended = || finished_gets() == before + cap as u64;
    wait_for("the server dropped the stuck handlers", all_ended).await;
    assert_eq!(gated.waiting.load(SeqCst), cap, "the reads are still running");
    let has: Result<Vec<Holding>, _> =
        hostile.call(id_a, wire::HAS, &has_request, call_options()).await;
    assert!(is_remote(&has, StatusCode::ResourceExhausted), "{has:?}");
    assert_eq!(a.metrics().refused, 4);

    // Once the reads finish, the slots are free again.
    gated.open();
    wait_for("the reads finished", || gated.waiting.load(SeqCst) == 0).await;
    let started = Instant::now();
    let got = loop {
        match get_range(&hostile, id_a, hash, 0, 2000).await {
            Err(RpcError::Remote { code: StatusCode::ResourceExhausted, .. }) => {
                assert!(started.elapsed() < DEADLINE, "slots never freed");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            other => break other.unwrap(),
        }
    };
    assert!(got.data == data[..]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_announcing_a_huge_blob_costs_only_what_it_sends() {
    let cluster = cluster(2).await;
    let range = 64 * 1024u32;
    // No size limit of our own: only the buffer's growth stands between the
    // peer's claim and an allocation of that size.
    let b = adapter(
        &cluster,
        1,
        "b",
        mem(),
        patient().with_range_size(range).with_max_fetch_size(u64::MAX),
    );
    let fake = node_id(&cluster, 0);
    let (endless, vanishing) = (Hash::of(b"endless"), Hash::of(b"vanishing"));
    let fake_rpc = rpc(&cluster, 0);
    // Claims the largest possible blob (reserving it up front would fail with
    // "capacity overflow"), or a 1 TiB one, sends three ranges of it and then
    // an empty range or an error.
    let _get = fake_rpc
        .serve(wire::GET, move |req: GetRequest, _ctx| async move {
            let sent_enough = req.offset >= 3 * u64::from(range);
            let data =
                if sent_enough { Bytes::new() } else { Bytes::from(vec![0u8; req.len as usize]) };
            match req.hash {
                h if h == endless => {
                    Ok(GetResponse { adapter: "fake".into(), total: u64::MAX, data })
                }
                h if h == vanishing && !sent_enough => {
                    Ok(GetResponse { adapter: "fake".into(), total: 1 << 40, data })
                }
                h if h == vanishing => Err(RpcStatus::internal("gone")),
                _ => Err(RpcStatus::not_found("no such blob")),
            }
        })
        .unwrap();

    let err = b.fetch(endless, Some(fake)).await.unwrap_err();
    assert!(err.is_integrity(), "{err}");
    let m = b.metrics();
    assert_eq!(
        (m.bytes_fetched, m.integrity_failures, m.fetch_failures),
        (3 * u64::from(range), 1, 1)
    );
    let err = b.fetch(vanishing, Some(fake)).await.unwrap_err();
    assert!(
        matches!(
            &err,
            BlobError::Rpc { source: RpcError::Remote { code: StatusCode::Internal, .. }, .. }
        ),
        "{err}"
    );
    let m = b.metrics();
    assert_eq!(
        (m.bytes_fetched, m.integrity_failures, m.fetch_failures),
        (6 * u64::from(range), 1, 2)
    );
    assert_eq!((m.store.blobs, m.store.puts), (0, 0));
}
