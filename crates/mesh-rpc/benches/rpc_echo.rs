//! RPC echo latency and throughput between two mesh nodes in one process, next to
//! the floor: plain tokio UDP ping-pong on the same runtime. Release build.
//!
//! Prints `figure:` lines (collected by `cargo xtask bench`). Latency: 31 pairs of
//! interleaved batches of 1,000 round trips each (UDP, RPC, raw mesh messages and
//! the design floor, order reversed every other pair); p50s are medians over
//! pairs and each ratio is the median of the per-pair ratios, so both sides of a
//! ratio see the same machine state. Throughput: the median of three rounds,
//! each measuring the floor and the RPC path back to back.
//!
//! Beside the figures it prints (as plain lines) two references that tell the
//! costs apart: raw mesh messages answered by inline handlers (encryption,
//! sessions, no RPC layer), and the "design floor" ([`DesignFloor`]: the UDP
//! ping-pong plus what any design with one encrypted socket per node must pay);
//! and the RPC throughput with coalescing turned off (`batch_bytes: 0`, on a
//! second pair of nodes), to show what batching contributes.
//!
//! For profiling, `RPC_ECHO_ONLY=latency` or `RPC_ECHO_ONLY=throughput` runs just
//! the RPC side of that phase (for about 10 s) and prints no figures;
//! `RPC_ECHO_ONLY=udp` and `RPC_ECHO_ONLY=mesh` run those latencies the same way,
//! and `RPC_ECHO_ONLY=paired` repeats the paired latency comparison.

#![allow(clippy::print_stdout, reason = "a benchmark reports on stdout")]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mesh::testing::Cluster;
use mesh::{ClusterKey, InlineHandler, MeshConfig, MeshHandle, MessageKind, NodeId};
use mesh_rpc::{CallOptions, Rpc, RpcConfig, RpcStatus};
use tokio::net::UdpSocket;

const PAYLOAD: usize = 32;
const WARMUP: usize = 2_000;
const SAMPLES: usize = 20_000;
const IN_FLIGHT: usize = 64;
const THROUGHPUT_FOR: Duration = Duration::from_secs(3);
const ROUNDS: usize = 3;

type Echo = [u8; PAYLOAD];

const MESH_PING: MessageKind = MessageKind::named("bench/mesh-ping/v1");
const MESH_PONG: MessageKind = MessageKind::named("bench/mesh-pong/v1");

/// One round of the throughput phase (with raw mesh messages, for reference).
struct Round {
    mesh_msgs_per_s: f64,
    udp_rt_per_s: f64,
    rpc_calls_per_s: f64,
    unbatched_calls_per_s: f64,
}

fn quantile(sorted: &[Duration], q: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i].as_secs_f64() * 1e6
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}

/// A socket that echoes every datagram back to its sender, on its own task.
async fn udp_echo_server() -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let addr = socket.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        let mut buf = [0u8; 2048];
        loop {
            let Ok((n, from)) = socket.recv_from(&mut buf).await else { continue };
            let _ = socket.send_to(&buf[..n], from).await;
        }
    });
    (addr, task)
}

/// p50 (us) of a 32-byte UDP round trip, one in flight.
async fn udp_latency() -> f64 {
    let (server, task) = udp_echo_server().await;
    let client = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    client.connect(server).await.expect("connect");
    let payload = [7u8; PAYLOAD];
    let mut buf = [0u8; 2048];
    let mut samples = Vec::with_capacity(SAMPLES);
    for i in 0..WARMUP + SAMPLES {
        let started = Instant::now();
        client.send(&payload).await.expect("send");
        client.recv(&mut buf).await.expect("recv");
        if i >= WARMUP {
            samples.push(started.elapsed());
        }
    }
    task.abort();
    samples.sort();
    quantile(&samples, 0.5)
}

/// Round trips per second with 64 datagrams outstanding.
async fn udp_throughput() -> f64 {
    let (server, task) = udp_echo_server().await;
    let client = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    client.connect(server).await.expect("connect");
    let payload = [7u8; PAYLOAD];
    let mut buf = [0u8; 2048];
    for _ in 0..IN_FLIGHT {
        client.send(&payload).await.expect("send");
    }
    let started = Instant::now();
    let mut done = 0u64;
    // A lost datagram would stall the loop; the timeout ends the run instead.
    while started.elapsed() < THROUGHPUT_FOR {
        match tokio::time::timeout(Duration::from_millis(100), client.recv(&mut buf)).await {
            Ok(Ok(_)) => {
                done += 1;
                client.send(&payload).await.expect("send");
            }
            _ => break,
        }
    }
    let rate = done as f64 / started.elapsed().as_secs_f64();
    task.abort();
    rate
}

/// Makes `b` answer every ping inline, from its receive task.
fn echo_pings(b: &MeshHandle) -> InlineHandler {
    let b2 = b.clone();
    b.on_message(MESH_PING, move |m| drop(b2.send_now(m.from, MESH_PONG, &m.payload)))
        .expect("inline handler")
}

/// Raw mesh messages, one in flight: `b` answers inline and the answer is
/// handed to the waiting task through a channel, as an RPC response is.
struct MeshPing {
    a: MeshHandle,
    to: NodeId,
    pongs: tokio::sync::mpsc::UnboundedReceiver<bytes::Bytes>,
    _handlers: [InlineHandler; 2],
}

impl MeshPing {
    fn new(a: MeshHandle, b: &MeshHandle) -> Self {
        let (tx, pongs) = tokio::sync::mpsc::unbounded_channel();
        let pong = a.on_message(MESH_PONG, move |m| drop(tx.send(m.payload))).expect("handler");
        Self { to: b.node_id(), pongs, _handlers: [echo_pings(b), pong], a }
    }

    async fn round_trip(&mut self, payload: &[u8]) {
        self.a.send(self.to, MESH_PING, payload).await.expect("send");
        self.pongs.recv().await.expect("pong");
    }
}

/// Raw mesh messages per second with 64 in flight: the reply handler sends the
/// next ping inline, so they bounce between the two receive tasks.
async fn mesh_throughput(a: MeshHandle, b: MeshHandle) -> f64 {
    let _echo = echo_pings(&b);
    let count = Arc::new(AtomicU64::new(0));
    let (a2, counter, stop) = (a.clone(), count.clone(), Arc::new(AtomicBool::new(false)));
    let stopped = stop.clone();
    let _bounce = a
        .on_message(MESH_PONG, move |m| {
            counter.fetch_add(1, Ordering::Relaxed);
            if !stopped.load(Ordering::Relaxed) {
                let _ = a2.send_now(m.from, MESH_PING, &m.payload);
            }
        })
        .expect("handler");
    let payload = [7u8; PAYLOAD];
    for _ in 0..IN_FLIGHT {
        a.send(b.node_id(), MESH_PING, &payload).await.expect("send");
    }
    let started = Instant::now();
    tokio::time::sleep(THROUGHPUT_FOR).await;
    let rate = count.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(50)).await;
    rate
}

/// p50 and p99 (us) of a 32-byte RPC echo, one in flight.
async fn rpc_latency(client: &Rpc, server: NodeId) -> (f64, f64) {
    let payload: Echo = [7u8; PAYLOAD];
    let mut samples = Vec::with_capacity(SAMPLES);
    for i in 0..WARMUP + SAMPLES {
        let started = Instant::now();
        let back: Echo =
            client.call(server, "echo", &payload, CallOptions::default()).await.expect("echo");
        if i >= WARMUP {
            samples.push(started.elapsed());
        }
        assert_eq!(back, payload);
    }
    samples.sort();
    (quantile(&samples, 0.5), quantile(&samples, 0.99))
}

/// Latency figures from interleaved batches: UDP floor and RPC echo alternate
/// (`PAIRS` batches of `PAIR_SAMPLES` each, order swapped every pair) on one
/// task, so both see the same machine at nearly the same moment.
struct Latency {
    udp_p50_us: f64,
    rpc_p50_us: f64,
    rpc_p99_us: f64,
    /// Median over pairs of (RPC p50 / UDP p50) within the pair.
    ratio: f64,
    /// The same for the design floor (see [`DesignFloor`]).
    design_ratio: f64,
    /// The same for raw mesh messages (see [`MeshPing`]).
    mesh_ratio: f64,
}

/// The least any design with one socket per node and encrypted datagrams pays,
/// as plain code with nothing else in it: the UDP ping-pong where every
/// datagram is sealed and opened with ChaCha20-Poly1305 (ring, the AEAD the
/// mesh uses through snow), the client socket is unconnected (a node's socket
/// serves every peer), and a receive task hands each answer to the waiting
/// caller through a oneshot (a node's socket is read by one task for all its
/// callers). Not a figure: it shows how much of the RPC ratio is the design's
/// floor and how much is ours.
struct DesignFloor {
    socket: Arc<UdpSocket>,
    server: std::net::SocketAddr,
    key: Arc<ring::aead::LessSafeKey>,
    counter: u64,
    waiting: Arc<parking_lot::Mutex<Option<tokio::sync::oneshot::Sender<usize>>>>,
    tasks: [tokio::task::JoinHandle<()>; 2],
}

fn aead_key() -> Arc<ring::aead::LessSafeKey> {
    let key = ring::aead::UnboundKey::new(&ring::aead::CHACHA20_POLY1305, &[7; 32]).expect("key");
    Arc::new(ring::aead::LessSafeKey::new(key))
}

/// Seals `plain` as `counter (8 bytes) || ciphertext || tag` into `out`.
fn aead_seal(key: &ring::aead::LessSafeKey, counter: u64, plain: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&counter.to_le_bytes());
    out.extend_from_slice(plain);
    let nonce = aead_nonce(counter);
    let tag = key
        .seal_in_place_separate_tag(nonce, ring::aead::Aad::empty(), &mut out[8..])
        .expect("seal");
    out.extend_from_slice(tag.as_ref());
}

/// Opens what [`aead_seal`] made, in place; returns the plaintext length.
fn aead_open(key: &ring::aead::LessSafeKey, datagram: &mut [u8]) -> usize {
    let (counter, sealed) = datagram.split_at_mut(8);
    let counter = u64::from_le_bytes(counter.try_into().expect("8 bytes"));
    let nonce = aead_nonce(counter);
    key.open_in_place(nonce, ring::aead::Aad::empty(), sealed).expect("open").len()
}

fn aead_nonce(counter: u64) -> ring::aead::Nonce {
    let mut nonce = [0u8; 12];
    nonce[4..].copy_from_slice(&counter.to_le_bytes());
    ring::aead::Nonce::assume_unique_for_key(nonce)
}

impl DesignFloor {
    async fn start() -> Self {
        let key = aead_key();
        let server_socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let server = server_socket.local_addr().expect("addr");
        let server_key = key.clone();
        let echo = tokio::spawn(async move {
            let (mut buf, mut out, mut counter) = ([0u8; 2048], Vec::new(), 1u64 << 62);
            loop {
                let Ok((n, from)) = server_socket.recv_from(&mut buf).await else { continue };
                let len = aead_open(&server_key, &mut buf[..n]);
                counter += 1;
                aead_seal(&server_key, counter, &buf[8..8 + len], &mut out);
                let _ = server_socket.send_to(&out, from).await;
            }
        });
        let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("bind"));
        let waiting =
            Arc::new(parking_lot::Mutex::new(None::<tokio::sync::oneshot::Sender<usize>>));
        let (receiver_socket, receiver_key, receiver_waiting) =
            (socket.clone(), key.clone(), waiting.clone());
        let receiver = tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            loop {
                let Ok((n, _)) = receiver_socket.recv_from(&mut buf).await else { continue };
                let len = aead_open(&receiver_key, &mut buf[..n]);
                if let Some(caller) = receiver_waiting.lock().take() {
                    let _ = caller.send(len);
                }
            }
        });
        Self { socket, server, key, counter: 0, waiting, tasks: [echo, receiver] }
    }

    async fn round_trip(&mut self, payload: &[u8], out: &mut Vec<u8>) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        *self.waiting.lock() = Some(tx);
        self.counter += 1;
        aead_seal(&self.key, self.counter, payload, out);
        self.socket.send_to(out, self.server).await.expect("send");
        assert_eq!(rx.await.expect("answer"), payload.len());
    }
}

impl Drop for DesignFloor {
    fn drop(&mut self) {
        self.tasks.iter().for_each(|task| task.abort());
    }
}

const PAIRS: usize = 31;
const PAIR_SAMPLES: usize = 1_000;

async fn paired_latency(client: Rpc, server: NodeId, server_mesh: MeshHandle) -> Latency {
    let (echo_addr, echo_task) = udp_echo_server().await;
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    socket.connect(echo_addr).await.expect("connect");
    let payload: Echo = [7u8; PAYLOAD];
    let mut buf = [0u8; 2048];
    let mut udp_batch = async |samples: &mut Vec<Duration>| {
        for _ in 0..PAIR_SAMPLES {
            let started = Instant::now();
            socket.send(&payload).await.expect("send");
            socket.recv(&mut buf).await.expect("recv");
            samples.push(started.elapsed());
        }
    };
    let rpc_batch = async |samples: &mut Vec<Duration>| {
        for _ in 0..PAIR_SAMPLES {
            let started = Instant::now();
            let back: Echo =
                client.call(server, "echo", &payload, CallOptions::default()).await.expect("echo");
            samples.push(started.elapsed());
            assert_eq!(back, payload);
        }
    };
    let mut mesh = MeshPing::new(client.mesh().clone(), &server_mesh);
    let mut mesh_batch = async |samples: &mut Vec<Duration>| {
        for _ in 0..PAIR_SAMPLES {
            let started = Instant::now();
            mesh.round_trip(&payload).await;
            samples.push(started.elapsed());
        }
    };
    let mut floor = DesignFloor::start().await;
    let mut sealed = Vec::new();
    let mut design_batch = async |samples: &mut Vec<Duration>| {
        for _ in 0..PAIR_SAMPLES {
            let started = Instant::now();
            floor.round_trip(&payload, &mut sealed).await;
            samples.push(started.elapsed());
        }
    };
    // Warm-up: sockets, sessions, allocator, the endpoint's tables.
    udp_batch(&mut Vec::new()).await;
    rpc_batch(&mut Vec::new()).await;
    design_batch(&mut Vec::new()).await;
    mesh_batch(&mut Vec::new()).await;
    let (mut udp_p50s, mut rpc_p50s, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    let (mut design_ratios, mut mesh_ratios) = (Vec::new(), Vec::new());
    let mut all_rpc = Vec::with_capacity(PAIRS * PAIR_SAMPLES);
    for pair in 0..PAIRS {
        let (mut udp, mut rpc, mut design, mut raw) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        if pair % 2 == 0 {
            udp_batch(&mut udp).await;
            rpc_batch(&mut rpc).await;
            design_batch(&mut design).await;
            mesh_batch(&mut raw).await;
        } else {
            mesh_batch(&mut raw).await;
            design_batch(&mut design).await;
            rpc_batch(&mut rpc).await;
            udp_batch(&mut udp).await;
        }
        udp.sort();
        rpc.sort();
        design.sort();
        raw.sort();
        let (u, r) = (quantile(&udp, 0.5), quantile(&rpc, 0.5));
        udp_p50s.push(u);
        rpc_p50s.push(r);
        ratios.push(r / u);
        design_ratios.push(quantile(&design, 0.5) / u);
        mesh_ratios.push(quantile(&raw, 0.5) / u);
        all_rpc.extend(rpc);
    }
    echo_task.abort();
    all_rpc.sort();
    Latency {
        udp_p50_us: median(udp_p50s),
        rpc_p50_us: median(rpc_p50s),
        rpc_p99_us: quantile(&all_rpc, 0.99),
        ratio: median(ratios),
        design_ratio: median(design_ratios),
        mesh_ratio: median(mesh_ratios),
    }
}

/// Calls per second with 64 calls in flight (64 tasks calling in a loop).
async fn rpc_throughput(client: &Rpc, server: NodeId) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..IN_FLIGHT {
        let (client, done, stop) = (client.clone(), done.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let payload: Echo = [7u8; PAYLOAD];
            while !stop.load(Ordering::Relaxed) {
                let reply: Result<Echo, _> =
                    client.call(server, "echo", &payload, CallOptions::default()).await;
                if reply.is_ok() {
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    let started = Instant::now();
    tokio::time::sleep(THROUGHPUT_FOR).await;
    let count = done.load(Ordering::Relaxed);
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.expect("caller task");
    }
    count as f64 / elapsed.as_secs_f64()
}

/// Runs `f` on a runtime worker (not the `block_on` thread), like real callers.
async fn on_worker<T: Send + 'static>(
    f: impl std::future::Future<Output = T> + Send + 'static,
) -> T {
    tokio::spawn(f).await.expect("bench task")
}

/// Boots two nodes with an echo service; returns the cluster, the client
/// endpoint, the serving endpoint and the serve handle.
async fn echo_pair(config: RpcConfig) -> (Cluster, Rpc, Rpc, mesh_rpc::ServeHandle) {
    let mesh_config = MeshConfig::new(ClusterKey::from_bytes([9; 32]));
    let cluster =
        Cluster::start_with_deadline(2, mesh_config, Duration::from_secs(60)).await.expect("boot");
    let node = |i| cluster.nth(i).expect("node").handle();
    let client = Rpc::with_config(node(0), config.clone()).expect("rpc");
    let server = Rpc::with_config(node(1), config).expect("rpc");
    let echo = server
        .serve("echo", |req: Echo, _ctx| async move { Ok::<_, RpcStatus>(req) })
        .expect("serve");
    (cluster, client, server, echo)
}

async fn round(
    client: &Rpc,
    server: NodeId,
    server_mesh: &MeshHandle,
    unbatched: (&Rpc, NodeId),
) -> Round {
    let (a, b) = (client.mesh().clone(), server_mesh.clone());
    let mesh_msgs_per_s = on_worker(mesh_throughput(a, b)).await;
    let udp_rt_per_s = on_worker(udp_throughput()).await;
    let c = client.clone();
    let rpc_calls_per_s = on_worker(async move { rpc_throughput(&c, server).await }).await;
    let (c, to) = (unbatched.0.clone(), unbatched.1);
    let unbatched_calls_per_s = on_worker(async move { rpc_throughput(&c, to).await }).await;
    Round { unbatched_calls_per_s, mesh_msgs_per_s, udp_rt_per_s, rpc_calls_per_s }
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let (mut cluster, client, server_rpc, _echo) = echo_pair(RpcConfig::default()).await;
        let server = server_rpc.node_id();

        if let Ok(phase) = std::env::var("RPC_ECHO_ONLY") {
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(10) {
                let c = client.clone();
                match phase.as_str() {
                    "udp" => println!("udp p50 {:.1} us", on_worker(udp_latency()).await),
                    "mesh" => {
                        let mut mesh = MeshPing::new(client.mesh().clone(), server_rpc.mesh());
                        let p50 = on_worker(async move {
                            let mut samples = Vec::with_capacity(SAMPLES);
                            for _ in 0..SAMPLES {
                                let started = Instant::now();
                                mesh.round_trip(&[7u8; PAYLOAD]).await;
                                samples.push(started.elapsed());
                            }
                            samples.sort();
                            quantile(&samples, 0.5)
                        })
                        .await;
                        println!("mesh p50 {p50:.1} us");
                    }
                    "paired" => {
                        let l = on_worker(paired_latency(c, server, server_rpc.mesh().clone())).await;
                        println!(
                            "paired: udp p50 {:.1} us, rpc p50 {:.1} us, design floor ratio {:.2}, \
                             mesh ratio {:.2}, ratio {:.2}",
                            l.udp_p50_us, l.rpc_p50_us, l.design_ratio, l.mesh_ratio, l.ratio
                        );
                    }
                    "latency" => {
                        let (p50, p99) =
                            on_worker(async move { rpc_latency(&c, server).await }).await;
                        println!("rpc p50 {p50:.1} us, p99 {p99:.1} us");
                    }
                    _ => {
                        let rate = on_worker(async move { rpc_throughput(&c, server).await }).await;
                        println!("rpc {rate:.0} calls/s");
                    }
                }
            }
            return;
        }
        let latency = on_worker(paired_latency(client.clone(), server, server_rpc.mesh().clone())).await;
        println!(
            "latency, {PAIRS} interleaved pairs of {PAIR_SAMPLES} calls: p50 udp {:.1} / rpc {:.1} us \
             (rpc p99 {:.1} us), median ratio {:.2}",
            latency.udp_p50_us, latency.rpc_p50_us, latency.rpc_p99_us, latency.ratio
        );
        println!(
            "not figures, p50 ratios to udp in the same pairs: design floor {:.2} (udp + \
             ChaCha20-Poly1305 on every datagram + a receive task handing answers to the caller), \
             raw mesh messages {:.2}, rpc {:.2}",
            latency.design_ratio, latency.mesh_ratio, latency.ratio
        );
        let mut rounds = Vec::new();
        for i in 0..ROUNDS {
            let (mut plain_cluster, plain_client, plain_server, _plain_echo) =
                echo_pair(RpcConfig { batch_bytes: 0, ..RpcConfig::default() }).await;
            let unbatched = (&plain_client, plain_server.node_id());
            let r = round(&client, server, server_rpc.mesh(), unbatched).await;
            plain_cluster.shutdown().await;
            println!(
                "round {i}: throughput udp {:.0} rt/s / mesh {:.0} rt/s / rpc {:.0} calls/s \
                 (unbatched {:.0})",
                r.udp_rt_per_s,
                r.mesh_msgs_per_s,
                r.rpc_calls_per_s,
                r.unbatched_calls_per_s
            );
            rounds.push(r);
        }
        let med = |f: fn(&Round) -> f64| median(rounds.iter().map(f).collect());
        let Latency { udp_p50_us: udp_p50, rpc_p50_us: rpc_p50, rpc_p99_us: rpc_p99, .. } =
            latency;
        let p50_ratio = latency.ratio;
        let udp_rt = med(|r| r.udp_rt_per_s);
        let rpc_cps = med(|r| r.rpc_calls_per_s);
        // Ratios per round, then the median, so each ratio compares one round's
        // measurements.
        let tput_ratio = med(|r| r.rpc_calls_per_s / r.udp_rt_per_s);
        println!(
            "raw mesh messages (not a figure): {:.0} roundtrips/s",
            med(|r| r.mesh_msgs_per_s)
        );
        println!(
            "rpc without batching (not a figure): {:.0} calls/s",
            med(|r| r.unbatched_calls_per_s)
        );
        let stats = client.stats();
        println!("client drops: {:?}", stats.drops);
        println!("figure: rpc_echo_p50_us = {rpc_p50:.1} us");
        println!("figure: rpc_echo_p99_us = {rpc_p99:.1} us");
        println!("figure: rpc_calls_per_s = {rpc_cps:.0} calls/s");
        println!("figure: udp_floor_p50_us = {udp_p50:.1} us");
        println!("figure: udp_floor_roundtrips_per_s = {udp_rt:.0} roundtrips/s");
        println!("figure: rpc_vs_udp_p50_ratio = {p50_ratio:.2} x");
        println!("figure: rpc_vs_udp_throughput_ratio = {tput_ratio:.2} x");
        cluster.shutdown().await;
    });
}
