//! Hand-built data for tests and benchmarks: snapshots, daemons, log lines,
//! blobs and calls, without a running cluster.
//!
//! Node `i` has id [`node_id`]`(i)`; node 0 is the deck's own node. Times are
//! fixed ([`NOW_MS`]) so views built from this data are reproducible.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use mesh::fold::Resources;
use mesh::snapshot::{DaemonView, MeshSnapshot, PeerView, ThisNode};
use mesh::{
    AdminState, DaemonHealth, EntityKeypair, Health, Lifecycle, LogEntry, LogLevel, NodeId,
    OriginHash, ParsedName, PeerInfo,
};
use mesh_auth::OperatorId;
use mesh_blobs::Hash;

use crate::config::DeckConfig;
use crate::data::{BlobEntry, CallEntry, CallSide, DeckData, FortStats};

/// The fixed "now" of test data (ms since the Unix epoch).
pub const NOW_MS: u64 = 1_800_000_000_000;

/// The id of test node `i` (spread out, so short forms differ).
pub fn node_id(i: u64) -> NodeId {
    NodeId((i + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

fn addr(i: u64) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 9000 + (i % 50_000) as u16))
}

fn resources(i: u64) -> Resources {
    Resources {
        cpu_load_milli: Some((i * 137 % 1000) as u32),
        cpus: 8,
        mem_used: Some((i % 16 + 1) << 30),
        mem_total: Some(32 << 30),
        process_rss: Some(((i % 7 + 1) * 40) << 20),
        disk_free: Some((i % 90 + 10) << 30),
        disk_total: Some(500 << 30),
    }
}

/// Peer `i` with a health and a round trip.
pub fn peer(i: u64, health: Health, rtt_ms: u64) -> PeerView {
    // One deterministic key for every test peer: ids come from `node_id`.
    static KEY: std::sync::OnceLock<mesh::PublicKey> = std::sync::OnceLock::new();
    let public_key = *KEY.get_or_init(|| EntityKeypair::from_seed(&[7; 32]).public());
    PeerView {
        info: PeerInfo {
            node_id: node_id(i),
            public_key,
            addr: addr(i),
            version: "0.1.0".into(),
            flags: 0,
            health,
            rtt: Some(Duration::from_micros(rtt_ms * 1000 + 250)),
            rtt_max_recent: Some(Duration::from_micros(rtt_ms * 1500 + 400)),
            last_heard: Duration::from_millis(40),
            sessions: 1,
            connected_for: Duration::from_secs(600),
        },
        resources: Some(resources(i)),
        daemons: 0,
        admin: AdminState::default(),
    }
}

/// A daemon named `name` with id `id` on node `node` (an index for [`node_id`]).
pub fn daemon(name: &str, id: u64, node: u64) -> DaemonView {
    let parsed = ParsedName::parse(name);
    DaemonView {
        id: OriginHash(id),
        name: name.to_owned(),
        group: parsed.group,
        lineage: parsed.lineage,
        node: node_id(node),
        local: node == 0,
        node_health: Health::Healthy,
        lifecycle: Lifecycle::Running,
        health: DaemonHealth::Healthy,
        saturation: (id % 100) as f32 / 100.0,
        restarts: 0,
        crash_looping: false,
        started_at_ms: NOW_MS - 60_000 * (id % 50 + 1),
        age_ms: 60_000 * (id % 50 + 1),
        log_dropped: 0,
        migratable: id % 2 == 0,
    }
}

/// A snapshot of `nodes` nodes (node 0 is this one, all peers healthy) holding
/// `daemons`.
pub fn snapshot(nodes: u64, daemons: Vec<DaemonView>) -> MeshSnapshot {
    let this_node = ThisNode {
        node_id: node_id(0),
        addr: addr(0),
        version: "0.1.0".into(),
        flags: 0,
        resources: resources(0),
        admin: AdminState::default(),
    };
    let mut snap = MeshSnapshot::empty(this_node, NOW_MS - 3_600_000);
    snap.seq = 1;
    snap.taken_at_ms = NOW_MS;
    snap.peers = (1..nodes.max(1)).map(|i| peer(i, Health::Healthy, 1 + i % 5)).collect();
    snap.daemons = daemons;
    snap
}

/// A log line of node `node`.
pub fn log(node: u64, seq: u64, level: LogLevel, message: &str) -> LogEntry {
    LogEntry {
        seq,
        ts_ms: NOW_MS - 100_000 + seq,
        node: node_id(node),
        daemon: Some(OriginHash(seq % 7 + 1)),
        level,
        message: message.to_owned(),
    }
}

/// Blob `n` in `adapter` on `node`.
pub fn blob(adapter: &Arc<str>, node: u64, n: u64) -> BlobEntry {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&n.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_be_bytes());
    bytes[8..16].copy_from_slice(&node.to_be_bytes());
    BlobEntry {
        adapter: adapter.clone(),
        node: node_id(node),
        hash: Hash::from_bytes(bytes),
        size: 1024 + n * 37 % 100_000,
        chunks: 1,
        stored_at_ms: NOW_MS - 1000 * (n % 3600),
        last_read_ms: (n % 3 == 0).then_some(NOW_MS - 500 * (n % 100)),
        read_count: n % 11,
        pinned: n % 17 == 0,
    }
}

/// An adapter's figures.
pub fn fort(adapter: &Arc<str>, node: u64, blobs: u64) -> FortStats {
    FortStats {
        adapter: adapter.clone(),
        node: node_id(node),
        blobs,
        bytes: blobs * 50_000,
        used: blobs * 45_000,
        capacity: (node % 2 == 0).then_some(blobs * 60_000),
        puts: blobs + 10,
        gets: blobs * 3,
        hits: blobs * 2,
        fetches: node,
        evictions: node % 3,
        ..FortStats::default()
    }
}

/// A call from `caller` to `callee` on `service`.
pub fn call(service: &Arc<str>, caller: u64, callee: u64, n: u64, ok: bool) -> CallEntry {
    CallEntry {
        ts_ms: NOW_MS - 5_000 + n * 10,
        caller: node_id(caller),
        callee: node_id(callee),
        service: service.clone(),
        side: CallSide::Client,
        latency_us: 200 + n * 13 % 5000,
        status: if ok { "ok" } else { "timeout" },
        ok,
        request_bytes: 64,
        response_bytes: if ok { 96 } else { 0 },
        request_id: n,
    }
}

/// Deck data around `snapshot`, with empty tails and `config`'s capacities.
pub fn data(snapshot: MeshSnapshot, config: &DeckConfig) -> DeckData {
    let mut data = DeckData::new(Arc::new(snapshot), OperatorId(0xdeca), config);
    data.now_ms = NOW_MS;
    data
}

/// The demo's daemon set on `nodes` nodes: one `node_agent` per node and three of
/// each lineage group.
pub fn demo_daemons(nodes: u64) -> Vec<DaemonView> {
    let mut daemons: Vec<DaemonView> =
        (0..nodes).map(|i| daemon("node_agent", 1000 + i, i)).collect();
    for (k, name) in ["inference_worker#replica", "rollout_forge#fork@7", "trainer_canary#standby"]
        .iter()
        .enumerate()
    {
        for j in 0..3 {
            let id = 2000 + 10 * k as u64 + j;
            daemons.push(daemon(name, id, (k as u64 * 3 + j) % nodes.max(1)));
        }
    }
    daemons
}

/// A large data set: `nodes` nodes, `daemons` daemons, `lines` log lines and
/// `blobs` blobs over ten adapters (for benchmarks).
pub fn big(nodes: u64, daemons: u64, lines: u64, blobs: u64) -> DeckData {
    let names = [
        "node_agent",
        "inference_worker#replica",
        "rollout_forge#fork@7",
        "trainer_canary#standby",
        "kv_cache",
    ];
    let list: Vec<DaemonView> = (0..daemons)
        .map(|i| {
            daemon(
                &format!(
                    "{}{}",
                    names[(i % 5) as usize],
                    if i % 5 == 4 { format!("_{i}") } else { String::new() }
                ),
                10_000 + i,
                i % nodes.max(1),
            )
        })
        .collect();
    let config = DeckConfig { log_tail: lines.max(1) as usize, ..DeckConfig::default() };
    let mut data = data(snapshot(nodes, list), &config);
    let levels = [LogLevel::Info, LogLevel::Info, LogLevel::Debug, LogLevel::Warn, LogLevel::Error];
    for n in 0..lines {
        data.logs.push(log(
            n % nodes.max(1),
            n,
            levels[(n % 5) as usize],
            &format!(
                "gpu-{} :: decode step {n} ttft {} ms, kv-cache hit rate {}%",
                n % nodes.max(1),
                n % 97,
                n % 100
            ),
        ));
    }
    let adapters: Vec<Arc<str>> = (0..10).map(|i| Arc::from(format!("fort-{i}"))).collect();
    for (i, a) in adapters.iter().enumerate() {
        data.forts.push(fort(a, i as u64, blobs / 10));
    }
    for n in 0..blobs {
        data.blobs.push(blob(&adapters[(n % 10) as usize], n % 10, n));
    }
    let services: Vec<Arc<str>> =
        ["demo.echo", "blobs.get", "admin.commit"].iter().map(|s| Arc::from(*s)).collect();
    for n in 0..1024 {
        data.calls.push(call(&services[(n % 3) as usize], 2 + n % 7, n % 2, n, n % 50 != 0));
    }
    data
}

/// Appends `n` log lines of the benches' steady stream to `data` (levels in
/// turn, 100 nodes' worth of gpu messages); `next` numbers them across calls.
pub fn push_logs(data: &mut DeckData, n: u64, next: &mut u64) {
    for _ in 0..n {
        let k = *next;
        *next += 1;
        let level =
            [LogLevel::Info, LogLevel::Debug, LogLevel::Warn, LogLevel::Error][(k % 4) as usize];
        let mut line = log(k % 100, k, level, &format!("gpu-{} :: prefill {k} tokens/s", k % 100));
        line.ts_ms = NOW_MS + k;
        data.logs.push(line);
    }
}
