//! An in-memory network for scale and fault tests (feature `testing`).
//!
//! [`SimNet`] hands out [`SimSocket`]s (each a [`Transport`] a node can start
//! on with [`crate::MeshNode::start_with_transport`]) at made-up addresses
//! `10.x.y.z:7000`, and carries datagrams between them with seeded loss,
//! duplication, latency with jitter (which reorders), partitions and a
//! per-socket bandwidth cap. Delivery runs on tokio timers, so a test on a
//! paused runtime (`start_paused = true`) simulates minutes of many nodes in
//! seconds; everything the nodes time is on tokio's clock too.
//!
//! Real UDP stays the only production transport: this module exists only
//! with the `testing` feature.

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::transport::Transport;

/// How the simulated network behaves. Probabilities are in `0.0..=1.0`.
#[derive(Clone, Debug, PartialEq)]
pub struct SimConfig {
    /// Chance that a datagram is lost.
    pub loss: f64,
    /// Chance that a delivered datagram arrives twice.
    pub duplicate: f64,
    /// One-way delay of every datagram.
    pub latency: Duration,
    /// Extra delay, uniform in `0..jitter`: datagrams overtake each other.
    pub jitter: Duration,
    /// Bytes per second each socket may send (`None`: unlimited); above it,
    /// datagrams queue behind each other on the sender's link.
    pub bandwidth: Option<u64>,
}

impl Default for SimConfig {
    /// A quiet LAN: no loss, 200 µs latency with 100 µs jitter, no cap.
    fn default() -> Self {
        Self {
            loss: 0.0,
            duplicate: 0.0,
            latency: Duration::from_micros(200),
            jitter: Duration::from_micros(100),
            bandwidth: None,
        }
    }
}

/// What the network carried.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Datagrams handed to the network.
    pub sent: u64,
    /// Bytes handed to the network.
    pub sent_bytes: u64,
    /// Datagrams delivered (duplicates counted).
    pub delivered: u64,
    /// Datagrams lost at random.
    pub lost: u64,
    /// Datagrams dropped by a partition.
    pub partitioned: u64,
    /// Datagrams to an address nobody holds (or a closed socket).
    pub unroutable: u64,
}

struct Endpoint {
    tx: mpsc::UnboundedSender<(Vec<u8>, SocketAddr)>,
    /// Partition group; datagrams cross only within one group.
    group: u32,
    /// When the sender's link is free again (bandwidth cap).
    link_free: Instant,
}

struct State {
    config: SimConfig,
    rng: u64,
    endpoints: HashMap<SocketAddr, Endpoint>,
    next_host: u32,
    stats: SimStats,
}

impl State {
    /// splitmix64: small, seeded, good enough for fault injection.
    fn next_u64(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }

    fn delay(&mut self) -> Duration {
        let jitter = self.config.jitter.as_nanos() as u64;
        let extra = if jitter == 0 { 0 } else { self.next_u64() % jitter };
        self.config.latency + Duration::from_nanos(extra)
    }
}

/// The simulated network. Cheap to clone (shared state).
#[derive(Clone)]
pub struct SimNet {
    state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for SimNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.state.lock();
        f.debug_struct("SimNet")
            .field("config", &state.config)
            .field("sockets", &state.endpoints.len())
            .field("stats", &state.stats)
            .finish()
    }
}

impl SimNet {
    /// A network with `config`, its randomness seeded with `seed`.
    pub fn new(seed: u64, config: SimConfig) -> Self {
        let state = State {
            config,
            rng: seed,
            endpoints: HashMap::new(),
            next_host: 1,
            stats: SimStats::default(),
        };
        Self { state: Arc::new(Mutex::new(state)) }
    }

    /// A new socket at the next free address.
    pub fn socket(&self) -> Arc<SimSocket> {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut state = self.state.lock();
        let host = state.next_host;
        state.next_host += 1;
        let ip = Ipv4Addr::new(10, (host >> 16) as u8, (host >> 8) as u8, host as u8);
        let addr = SocketAddr::from((ip, 7000));
        state.endpoints.insert(addr, Endpoint { tx, group: 0, link_free: Instant::now() });
        Arc::new(SimSocket { addr, net: self.clone(), rx: Mutex::new(rx) })
    }

    /// Changes how the network behaves from now on.
    pub fn set_config(&self, config: SimConfig) {
        self.state.lock().config = config;
    }

    /// Cuts the network into the given groups: datagrams cross only within a
    /// group. Addresses in no group form one more group of their own.
    pub fn partition(&self, groups: &[&[SocketAddr]]) {
        let mut state = self.state.lock();
        for endpoint in state.endpoints.values_mut() {
            endpoint.group = u32::MAX;
        }
        for (i, group) in groups.iter().enumerate() {
            for addr in *group {
                if let Some(endpoint) = state.endpoints.get_mut(addr) {
                    endpoint.group = i as u32;
                }
            }
        }
    }

    /// Ends every partition.
    pub fn heal(&self) {
        for endpoint in self.state.lock().endpoints.values_mut() {
            endpoint.group = 0;
        }
    }

    /// Takes `addr` off the network (a crashed host): datagrams to it vanish.
    pub fn remove(&self, addr: SocketAddr) {
        self.state.lock().endpoints.remove(&addr);
    }

    /// What the network carried so far.
    pub fn stats(&self) -> SimStats {
        self.state.lock().stats
    }

    fn send(&self, from: SocketAddr, bytes: &[u8], to: SocketAddr) -> io::Result<()> {
        let mut state = self.state.lock();
        state.stats.sent += 1;
        state.stats.sent_bytes += bytes.len() as u64;
        let now = Instant::now();
        // The sender's link: a bandwidth cap delays what queues behind.
        let mut depart = now;
        if let Some(rate) = state.config.bandwidth.filter(|r| *r > 0)
            && let Some(sender) = state.endpoints.get_mut(&from)
        {
            let start = sender.link_free.max(now);
            let busy = Duration::from_nanos(bytes.len() as u64 * 1_000_000_000 / rate);
            sender.link_free = start + busy;
            depart = start + busy;
        }
        let from_group = state.endpoints.get(&from).map_or(0, |e| e.group);
        let Some(target) = state.endpoints.get(&to) else {
            state.stats.unroutable += 1;
            return Ok(());
        };
        if target.group != from_group {
            state.stats.partitioned += 1;
            return Ok(());
        }
        let tx = target.tx.clone();
        let loss = state.config.loss;
        if state.chance(loss) {
            state.stats.lost += 1;
            return Ok(());
        }
        let duplicate = state.config.duplicate;
        let copies = if state.chance(duplicate) { 2 } else { 1 };
        for _ in 0..copies {
            let due = depart + state.delay();
            state.stats.delivered += 1;
            let (tx, datagram) = (tx.clone(), bytes.to_vec());
            if due <= now {
                let _ = tx.send((datagram, from));
            } else {
                tokio::spawn(async move {
                    tokio::time::sleep_until(due).await;
                    let _ = tx.send((datagram, from));
                });
            }
        }
        Ok(())
    }
}

/// One host's socket on a [`SimNet`].
pub struct SimSocket {
    addr: SocketAddr,
    net: SimNet,
    rx: Mutex<mpsc::UnboundedReceiver<(Vec<u8>, SocketAddr)>>,
}

impl std::fmt::Debug for SimSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimSocket").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl SimSocket {
    /// This socket's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Transport for SimSocket {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.addr)
    }

    fn try_send_to(&self, bytes: &[u8], to: SocketAddr) -> io::Result<()> {
        self.net.send(self.addr, bytes, to)
    }

    fn poll_recv_from(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<(usize, SocketAddr)>> {
        match self.rx.lock().poll_recv(cx) {
            Poll::Ready(Some((datagram, from))) => {
                let n = datagram.len().min(buf.len());
                buf[..n].copy_from_slice(&datagram[..n]);
                Poll::Ready(Ok((n, from)))
            }
            // Taken off the network (a crashed host): it hears nothing more.
            Poll::Ready(None) | Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for SimSocket {
    fn drop(&mut self) {
        self.net.remove(self.addr);
    }
}
