//! Blob adapters on real nodes on 127.0.0.1: a blob put on one node is fetched on
//! another (one range and many, from a named peer and from whoever holds it), lying
//! peers are detected and nothing they sent is stored, several adapters share a
//! node's services, and inventories are listed page by page.
//!
//! Deadlines are generous and every wait is a wait-for-condition (the machine may
//! be loaded).

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering::SeqCst};
use std::time::{Duration, Instant};

use bytes::Bytes;
use mesh::testing::Cluster;
use mesh::{ClusterKey, MeshConfig, NodeId};
use mesh_blobs::wire::{self, GetRequest, GetResponse};
use mesh_blobs::{
    AdapterConfig, BlobError, BlobStore, DiskLog, Hash, InventoryEntry, MemLog, MeshBlobAdapter,
    Metrics, StoreConfig,
};
use mesh_rpc::{Rpc, RpcError, RpcStatus, StatusCode};

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
    // The big blob was read from disk once for its five ranges (the serve cache).
    assert_eq!(ma.store.gets, 2);

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
