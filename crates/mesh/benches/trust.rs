//! Trust-boundary figures, release build: a node joining through a peer that is
//! flooded with replayed handshake openers (join time with and without the
//! flood, the flooded node's CPU), and what owner signatures cost the fold.
//!
//! Prints `figure:` lines (collected by `cargo xtask bench mesh`).
//!
//! The flood replays real openers: a throwaway node of the cluster dials a plain
//! socket that never answers and keeps retrying; its openers are captured and
//! sent to node A at 50,000 datagrams/s from 64 source ports. A runs alone on
//! its own OS thread (a current-thread runtime), so that thread's CPU time is
//! A's CPU time.

#![allow(clippy::print_stdout, reason = "a benchmark reports on stdout")]

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mesh::fold::{
    DaemonSummary, Fold, FoldMessage, NodeSummary, Resources, SignedSummary, VerifiedSummary,
};
use mesh::snapshot::{RingStats, SnapshotInput, ThisNode, build};
use mesh::wire::{INIT_HEADER, WIRE_VERSION};
use mesh::{
    ClusterKey, DaemonHealth, EntityKeypair, Health, MeshConfig, MeshHandle, MeshMetrics, MeshNode,
    OriginHash, PeerInfo,
};
use mesh_auth::{Signature, unix_now_ms};

/// Datagrams per second the flood aims at, in all.
const FLOOD_RATE: u64 = 50_000;
/// Datagrams sent back to back, then a pause (500 every 10 ms).
const FLOOD_BATCH: u64 = 500;
/// Source ports the flood comes from.
const FLOOD_SOCKETS: usize = 64;
/// Distinct openers replayed.
const OPENERS: usize = 4;
/// Joins measured, with and without the flood.
const JOINS: usize = 5;
const JOIN_DEADLINE: Duration = Duration::from_secs(30);
/// A's CPU is measured over this much flood (no joins), and over an idle window.
const CPU_WINDOW: Duration = Duration::from_secs(5);
const IDLE_WINDOW: Duration = Duration::from_secs(2);

fn config() -> MeshConfig {
    MeshConfig::new(ClusterKey::from_bytes([9; 32]))
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(|a, b| a.total_cmp(b));
    samples[samples.len() / 2]
}

// ----- node A on its own thread -----

/// This thread's CPU time (user + system), in clock ticks.
fn thread_cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").expect("/proc/thread-self/stat");
    // The command name (field 2) is in parentheses and may hold spaces; field 3
    // comes right after the last ')', so utime (14) and stime (15) are 11 and 12.
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let field = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).expect("stat field");
    field(11) + field(12)
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on Linux when it cannot be read).
fn ticks_per_s() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

enum Command {
    /// Measure the thread's CPU over a window; answer (ticks, seconds).
    Cpu {
        window: Duration,
        reply: tokio::sync::oneshot::Sender<(u64, f64)>,
    },
    Stop,
}

struct NodeA {
    handle: MeshHandle,
    commands: tokio::sync::mpsc::UnboundedSender<Command>,
    thread: std::thread::JoinHandle<()>,
}

impl NodeA {
    fn spawn() -> NodeA {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (commands, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let thread = std::thread::Builder::new()
            .name("node-a".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime of A");
                rt.block_on(async move {
                    let node = MeshNode::start(config()).await.expect("node A");
                    ready_tx.send(node.handle()).expect("main thread waits for A");
                    while let Some(command) = rx.recv().await {
                        match command {
                            Command::Cpu { window, reply } => {
                                let before = thread_cpu_ticks();
                                let started = Instant::now();
                                tokio::time::sleep(window).await;
                                let ticks = thread_cpu_ticks() - before;
                                let _ = reply.send((ticks, started.elapsed().as_secs_f64()));
                            }
                            Command::Stop => break,
                        }
                    }
                    node.shutdown().await;
                });
            })
            .expect("thread of A");
        let handle = ready_rx.recv().expect("A started");
        NodeA { handle, commands, thread }
    }

    /// A's CPU over `window`, as percent of one core.
    async fn cpu_pct(&self, window: Duration, ticks_per_s: f64) -> f64 {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.commands.send(Command::Cpu { window, reply }).expect("A running");
        let (ticks, secs) = answer.await.expect("A answers");
        ticks as f64 / ticks_per_s / secs * 100.0
    }

    fn stop(self) {
        let _ = self.commands.send(Command::Stop);
        self.thread.join().expect("A's thread");
    }
}

// ----- openers and the flood -----

/// Real openers of the cluster: a throwaway node dials a socket that never
/// answers and retries with a fresh opener each time.
async fn capture_openers() -> (Vec<Vec<u8>>, f64) {
    let capture = UdpSocket::bind("127.0.0.1:0").expect("capture socket");
    capture.set_read_timeout(Some(Duration::from_millis(50))).expect("read timeout");
    let target = capture.local_addr().expect("capture address").to_string();
    let started = Instant::now();
    let dialer = MeshNode::start(config().seed(target)).await.expect("dialer C");
    let reader = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut openers: Vec<Vec<u8>> = Vec::new();
        let mut buf = [0u8; 2048];
        while openers.len() < OPENERS && Instant::now() < deadline {
            let Ok((n, _)) = capture.recv_from(&mut buf) else { continue };
            let datagram = &buf[..n];
            let is_opener =
                n >= INIT_HEADER + 32 && datagram[0] == WIRE_VERSION && datagram[1] == 1;
            // Distinct by ephemeral key (what the responder's replay check keys on).
            let ephemeral = |d: &[u8]| d[INIT_HEADER..INIT_HEADER + 32].to_vec();
            if is_opener && openers.iter().all(|o| ephemeral(o) != ephemeral(datagram)) {
                openers.push(datagram.to_vec());
            }
        }
        openers
    });
    let openers = reader.await.expect("capture thread");
    let secs = started.elapsed().as_secs_f64();
    dialer.shutdown().await;
    assert!(!openers.is_empty(), "the dialer sent no opener");
    (openers, secs)
}

struct Flood {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    thread: std::thread::JoinHandle<FloodReport>,
}

struct FloodReport {
    sent: u64,
    errors: u64,
    secs: f64,
}

impl Flood {
    /// Replays `openers` to `target` from 64 sockets, paced at [`FLOOD_RATE`].
    fn start(target: SocketAddr, openers: Vec<Vec<u8>>) -> Flood {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let (flag, counter) = (stop.clone(), sent.clone());
        let thread = std::thread::Builder::new()
            .name("flood".into())
            .spawn(move || {
                let sockets: Vec<UdpSocket> = (0..FLOOD_SOCKETS)
                    .map(|_| UdpSocket::bind("127.0.0.1:0").expect("flood socket"))
                    .collect();
                let period = Duration::from_secs_f64(FLOOD_BATCH as f64 / FLOOD_RATE as f64);
                let started = Instant::now();
                let mut next = started;
                let (mut i, mut errors) = (0usize, 0u64);
                while !flag.load(Ordering::Relaxed) {
                    let mut ok = 0;
                    for _ in 0..FLOOD_BATCH {
                        // Every source port replays every opener in turn.
                        let socket = &sockets[i % FLOOD_SOCKETS];
                        let opener = &openers[(i / FLOOD_SOCKETS) % openers.len()];
                        match socket.send_to(opener, target) {
                            Ok(_) => ok += 1,
                            Err(_) => errors += 1,
                        }
                        i += 1;
                    }
                    counter.fetch_add(ok, Ordering::Relaxed);
                    next += period;
                    let now = Instant::now();
                    if next > now {
                        std::thread::sleep(next - now);
                    } else if now - next > period * 10 {
                        // Far behind (descheduled): no burst to catch up.
                        next = now;
                    }
                }
                FloodReport {
                    sent: counter.load(Ordering::Relaxed),
                    errors,
                    secs: started.elapsed().as_secs_f64(),
                }
            })
            .expect("flood thread");
        Flood { stop, sent, thread }
    }

    fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    fn stop(self) -> FloodReport {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("flood thread")
    }
}

/// Time from starting a new node seeded with A until it lists A as healthy and
/// A lists it; `None` past the deadline.
async fn join_ms(a: &MeshHandle) -> Option<f64> {
    let started = Instant::now();
    let joiner = MeshNode::start(config().seed(a.local_addr().to_string())).await.expect("joiner");
    let (a_id, j_id) = (a.node_id(), joiner.node_id());
    let joined = loop {
        let j_sees_a = joiner.peers().iter().any(|p| p.node_id == a_id && p.health.is_healthy());
        if j_sees_a && a.peers().iter().any(|p| p.node_id == j_id) {
            break true;
        }
        if started.elapsed() > JOIN_DEADLINE {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    let ms = started.elapsed().as_secs_f64() * 1e3;
    joiner.shutdown().await;
    joined.then_some(ms)
}

async fn joins(a: &MeshHandle) -> (Vec<f64>, usize) {
    let mut samples = Vec::new();
    let mut failed = 0;
    for _ in 0..JOINS {
        match join_ms(a).await {
            Some(ms) => samples.push(ms),
            None => failed += 1,
        }
    }
    (samples, failed)
}

/// The median, or the deadline when every join failed.
fn join_figure(samples: &[f64]) -> f64 {
    if samples.is_empty() { JOIN_DEADLINE.as_secs_f64() * 1e3 } else { median(samples.to_vec()) }
}

struct FloodFigures {
    join_no_flood: f64,
    join_flood: f64,
    cpu_pct: f64,
}

fn handshake_flood() -> FloodFigures {
    let ticks = ticks_per_s();
    let a = NodeA::spawn();
    let handle = a.handle.clone();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let figures = rt.block_on(async {
        let (openers, capture_s) = capture_openers().await;
        println!(
            "captured {} distinct openers ({} bytes) in {:.2} s",
            openers.len(),
            openers[0].len(),
            capture_s
        );
        let (quiet, quiet_failed) = joins(&handle).await;
        println!("join without flood samples (ms): {quiet:.1?}, {quiet_failed} failed");
        let idle_pct = a.cpu_pct(IDLE_WINDOW, ticks).await;
        println!("A idle CPU over {:.0} s: {idle_pct:.1} % of one core", IDLE_WINDOW.as_secs_f64());

        let before = handle.metrics();
        let flood = Flood::start(handle.local_addr(), openers);
        tokio::time::sleep(Duration::from_millis(500)).await;
        let sent_before = flood.sent();
        let window = Instant::now();
        let cpu_pct = a.cpu_pct(CPU_WINDOW, ticks).await;
        let window_rate = (flood.sent() - sent_before) as f64 / window.elapsed().as_secs_f64();
        println!(
            "A CPU over {:.0} s of flood: {cpu_pct:.1} % of one core ({window_rate:.0} datagrams/s in that window)",
            CPU_WINDOW.as_secs_f64()
        );
        let (flooded, flooded_failed) = joins(&handle).await;
        println!("join under flood samples (ms): {flooded:.1?}, {flooded_failed} failed");
        let report = flood.stop();
        // Let A drain what is still queued before reading its counters.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let after = handle.metrics();
        println!(
            "flood: {} datagrams sent in {:.2} s = {:.0} datagrams/s ({} send errors), target {FLOOD_RATE}/s from {FLOOD_SOCKETS} ports",
            report.sent,
            report.secs,
            report.sent as f64 / report.secs,
            report.errors
        );
        let delta = |f: fn(&MeshMetrics) -> u64| f(&after) - f(&before);
        println!(
            "A during the flood: datagrams_in {}, refused.handshake_replayed {}, handshake_stale {}, handshake_over_budget {}, dropped.not_authenticated {}, handshakes_ok {}",
            delta(|m| m.datagrams_in),
            delta(|m| m.refused.handshake_replayed),
            delta(|m| m.refused.handshake_stale),
            delta(|m| m.refused.handshake_over_budget),
            delta(|m| m.dropped.not_authenticated),
            delta(|m| m.handshakes_ok),
        );
        FloodFigures {
            join_no_flood: join_figure(&quiet),
            join_flood: join_figure(&flooded),
            cpu_pct,
        }
    });
    drop(rt);
    a.stop();
    figures
}

// ----- fold: signed vs unsigned -----

const FOLD_NODES: usize = 32;
const DAEMONS_PER_NODE: u64 = 20;
const UPDATES: usize = 3_000;
const ROUNDS: usize = 5;

struct Producer {
    key: EntityKeypair,
    summary: NodeSummary,
}

struct Receiver {
    fold: Fold,
    this: ThisNode,
    peers: Vec<PeerInfo>,
    seq: u64,
}

fn fold_setup() -> (Vec<Producer>, Receiver) {
    let producers: Vec<Producer> = (0..FOLD_NODES as u64)
        .map(|n| {
            let key = EntityKeypair::from_seed(&[n as u8 + 1; 32]);
            let summary = NodeSummary {
                node: key.node_id(),
                incarnation: 1,
                version: 1,
                produced_at_ms: 0,
                software: "0.1.0".into(),
                resources: Resources::default(),
                admin: Default::default(),
                migrations: Vec::new(),
                daemons: (0..DAEMONS_PER_NODE)
                    .map(|i| DaemonSummary {
                        saturation_milli: 500,
                        ..DaemonSummary::running(
                            OriginHash(n * 1000 + i),
                            format!("worker-{i}#replica"),
                            DaemonHealth::Healthy,
                        )
                    })
                    .collect(),
            };
            Producer { key, summary }
        })
        .collect();
    let mut fold = Fold::new();
    for p in &producers {
        fold.apply(VerifiedSummary::sign(p.summary.clone(), &p.key).expect("own key"));
    }
    let me = EntityKeypair::from_seed(&[200; 32]);
    let peers = producers
        .iter()
        .enumerate()
        .map(|(i, p)| PeerInfo {
            node_id: p.key.node_id(),
            public_key: p.key.public(),
            addr: SocketAddr::from(([127, 0, 0, 1], 10_000 + i as u16)),
            version: "0.1.0".into(),
            flags: 0,
            health: Health::Healthy,
            rtt: Some(Duration::from_micros(80)),
            rtt_max_recent: Some(Duration::from_micros(200)),
            last_heard: Duration::from_millis(50),
            sessions: 1,
            connected_for: Duration::from_secs(60),
        })
        .collect();
    let this = ThisNode {
        node_id: me.node_id(),
        addr: ([127, 0, 0, 1], 9_999).into(),
        version: "0.1.0".into(),
        flags: 0,
        resources: Resources::default(),
        admin: Default::default(),
    };
    (producers, Receiver { fold, this, peers, seq: 0 })
}

/// The owner's side of one update: a change that is news (not only
/// saturation, so it is pushed and shown at once), (signed,) encoded as the
/// fold message it pushes. Done by the owner once per version, on its node.
fn produce(p: &mut Producer, signed: bool) -> Vec<u8> {
    p.summary.version += 1;
    p.summary.produced_at_ms = unix_now_ms();
    let k = (p.summary.version % DAEMONS_PER_NODE) as usize;
    p.summary.daemons[k].restarts += 1;
    let own = if signed {
        VerifiedSummary::sign(p.summary.clone(), &p.key).expect("own key")
    } else {
        let summary = p.summary.clone();
        let body = postcard::to_stdvec(&summary).expect("encodes");
        let unsigned = SignedSummary {
            owner: p.key.public(),
            body,
            signature: Signature::from_bytes(&[0; 64]),
        };
        VerifiedSummary::unchecked_for_benchmarks(unsigned, summary)
    };
    FoldMessage::Summaries(vec![own.signed().clone()]).encode()
}

/// The receiver's side, what its fold does with one update: decode,
/// staleness check, (signature check,) merge, and, when `rebuild`, the
/// snapshot rebuild it triggers.
fn receive(bytes: &[u8], rx: &mut Receiver, signed: bool, rebuild: bool) {
    let (message, opened) = FoldMessage::decode_opened(bytes).expect("decodes");
    let FoldMessage::Summaries(list) = message else { panic!("summaries expected") };
    let now_ms = unix_now_ms();
    for (wire, summary) in list.into_iter().zip(opened) {
        let node = summary.node;
        assert!(rx.fold.would_apply(node, summary.stamp()), "every update is news");
        let verified = if signed {
            wire.verify_opened(summary, now_ms).expect("owner signature verifies")
        } else {
            VerifiedSummary::unchecked_for_benchmarks(wire, summary)
        };
        let quiet = rx.fold.get(node).is_some_and(|old| old.quiet_change(verified.summary()));
        assert!(!quiet && rx.fold.apply(verified));
    }
    if rebuild {
        rx.seq += 1;
        let snapshot = build(SnapshotInput {
            seq: rx.seq,
            epoch_ms: 1,
            now_ms,
            this_node: rx.this.clone(),
            peers: rx.peers.clone(),
            fold: &rx.fold,
            recent_logs: Arc::new(Vec::new()),
            logs: RingStats::default(),
            recent_failures: Arc::new(Vec::new()),
            failures: RingStats::default(),
            counters: MeshMetrics::default(),
            audit_tail: Arc::new(Vec::new()),
            audit_len: 0,
        });
        assert_eq!(snapshot.daemons.len(), FOLD_NODES * DAEMONS_PER_NODE as usize);
    }
}

/// Updates per second a receiving node folds, over `updates` updates
/// round-robin over the owners. The owners' messages are made first (each
/// owner signs its own version once, on its own node) and are not timed.
fn batch(
    producers: &mut [Producer],
    rx: &mut Receiver,
    next: &mut usize,
    updates: usize,
    signed: bool,
    rebuild: bool,
) -> f64 {
    let n = producers.len();
    let messages: Vec<Vec<u8>> =
        (0..updates).map(|i| produce(&mut producers[(*next + i) % n], signed)).collect();
    *next += updates;
    let started = Instant::now();
    for bytes in &messages {
        receive(bytes, rx, signed, rebuild);
    }
    updates as f64 / started.elapsed().as_secs_f64()
}

/// Median (signed, unsigned) throughput over A/B/B/A... rounds.
fn fold_rates(rebuild: bool) -> (f64, f64, Vec<f64>, Vec<f64>) {
    let (mut producers, mut rx) = fold_setup();
    let mut next = 0;
    // Warm-up, not counted.
    batch(&mut producers, &mut rx, &mut next, UPDATES / 10, true, rebuild);
    batch(&mut producers, &mut rx, &mut next, UPDATES / 10, false, rebuild);
    let (mut signed, mut unsigned) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        // Alternate which variant goes first, so drift hits both alike.
        for signed_first in [round % 2 == 0, round % 2 == 1] {
            let rate = batch(&mut producers, &mut rx, &mut next, UPDATES, signed_first, rebuild);
            if signed_first { signed.push(rate) } else { unsigned.push(rate) }
        }
    }
    (median(signed.clone()), median(unsigned.clone()), signed, unsigned)
}

/// Microseconds per call of the two signature steps alone, for context: the
/// owner's `VerifiedSummary::sign` (encode + sign) and a receiver's
/// `verify_opened`, beside the plain encode the unsigned run does instead.
fn signature_steps_us() -> (f64, f64, f64) {
    const CALLS: u32 = 2_000;
    let (producers, _) = fold_setup();
    let p = &producers[0];
    let started = Instant::now();
    for _ in 0..CALLS {
        std::hint::black_box(postcard::to_stdvec(&p.summary).expect("encodes"));
    }
    let encode = started.elapsed().as_secs_f64() * 1e6 / f64::from(CALLS);
    let started = Instant::now();
    let mut last = None;
    for _ in 0..CALLS {
        last = Some(VerifiedSummary::sign(p.summary.clone(), &p.key).expect("own key"));
    }
    let sign = started.elapsed().as_secs_f64() * 1e6 / f64::from(CALLS);
    let wire = last.expect("signed").signed().clone();
    let opened = wire.open().expect("opens");
    let now_ms = unix_now_ms();
    let started = Instant::now();
    for _ in 0..CALLS {
        let copy = (wire.clone(), opened.clone());
        std::hint::black_box(copy.0.verify_opened(copy.1, now_ms).expect("verifies"));
    }
    let verify = started.elapsed().as_secs_f64() * 1e6 / f64::from(CALLS);
    (encode, sign, verify)
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let flood = handshake_flood();

    let (signed_rb, unsigned_rb, s_rb, u_rb) = fold_rates(true);
    println!(
        "fold with snapshot rebuild ({FOLD_NODES} nodes x {DAEMONS_PER_NODE} daemons, {UPDATES} updates x {ROUNDS}): signed {signed_rb:.0} updates/s {s_rb:.0?}, unsigned {unsigned_rb:.0} updates/s {u_rb:.0?}"
    );
    let (signed, unsigned, s, u) = fold_rates(false);
    println!(
        "fold without rebuild: signed {signed:.0} updates/s {s:.0?}, unsigned {unsigned:.0} updates/s {u:.0?}"
    );
    let us = |rate: f64| 1e6 / rate;
    println!(
        "per update: with rebuild signed {:.1} us, unsigned {:.1} us; without rebuild signed {:.1} us, unsigned {:.1} us",
        us(signed_rb),
        us(unsigned_rb),
        us(signed),
        us(unsigned)
    );
    let (encode_us, sign_us, verify_us) = signature_steps_us();
    println!(
        "alone: encode body {encode_us:.1} us, sign (clone + encode + sign) {sign_us:.1} us, verify_opened (incl. a clone) {verify_us:.1} us; each update above pays one verify at the receiver; the owner's sign is paid once per version on the owner's node"
    );

    println!("figure: handshake_join_no_flood_ms = {:.1} ms", flood.join_no_flood);
    println!("figure: handshake_flood_join_ms = {:.1} ms", flood.join_flood);
    println!("figure: handshake_flood_cpu_pct = {:.1} %", flood.cpu_pct);
    println!("figure: fold_signed_overhead_pct = {:.1} %", (unsigned_rb / signed_rb - 1.0) * 100.0);
    println!(
        "figure: fold_signed_overhead_no_rebuild_pct = {:.1} %",
        (unsigned / signed - 1.0) * 100.0
    );
}
