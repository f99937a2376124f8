//! Node configuration: identity, cluster key, seeds, timing profile and limits.

use std::collections::HashSet;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use std::path::PathBuf;
use std::sync::Arc;

use mesh_auth::{AdminVerifier, EntityKeypair, PublicKey};
use zeroize::Zeroize;

use crate::MeshError;

/// The 32-byte shared secret that keeps strangers out of the cluster.
///
/// It is the Noise pre-shared key: a node without it cannot complete (or even start)
/// a handshake. Zeroized on drop; `Debug` prints only a fingerprint.
#[derive(Clone, PartialEq, Eq)]
pub struct ClusterKey([u8; 32]);

impl ClusterKey {
    /// Wraps 32 secret bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// A fresh random key from the operating system.
    pub fn generate() -> Result<Self, MeshError> {
        let mut bytes = [0u8; 32];
        getrandom::getrandom(&mut bytes).map_err(|e| MeshError::Random(e.to_string()))?;
        Ok(Self(bytes))
    }

    /// The secret bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// A short, non-secret fingerprint (first 4 bytes of its blake3 hash, hex) to
    /// tell keys apart in logs.
    pub fn fingerprint(&self) -> String {
        stdx::hex::encode(&blake3_fingerprint(&self.0))
    }

    /// Reads a key file: 64 hex digits on the first non-comment line.
    ///
    /// Read as `mesh_auth` reads identity key files: opened once, a regular
    /// file only, with a size cap, and on Unix a file that other users can read
    /// or write (any of mode 0o077) is refused: a cluster key admits whoever
    /// holds it.
    pub fn load(path: &Path) -> Result<Self, MeshError> {
        let bad = |reason: &str| MeshError::ClusterKey {
            path: path.display().to_string(),
            reason: reason.to_owned(),
        };
        let raw = stdx::fs::read_bounded(path, CLUSTER_KEY_LIMITS).map_err(|e| match e {
            stdx::Error::Permissions { mode } => bad(&format!(
                "mode {mode:04o} lets other users read it; run `chmod 600 {}`",
                path.display()
            )),
            stdx::Error::TooLarge { .. } => bad("file too large to be a cluster key"),
            other => bad(&other.to_string()),
        })?;
        let raw = zeroize::Zeroizing::new(raw);
        let text = std::str::from_utf8(&raw).map_err(|_| bad("not UTF-8 text"))?;
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'))
            .ok_or_else(|| bad("empty file"))?;
        let bytes =
            stdx::hex::decode_array::<32>(line).map_err(|_| bad("expected 64 hex digits"))?;
        Ok(Self(bytes))
    }

    /// Writes the key to a new file at `path` (mode 0600 on Unix, the file and
    /// its directory entry synced), refusing to overwrite an existing file. The
    /// format is what [`ClusterKey::load`] reads: one comment line and 64 hex
    /// digits.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let hex = zeroize::Zeroizing::new(stdx::hex::encode(&self.0));
        let text = zeroize::Zeroizing::new(format!(
            "# mesh cluster key (fingerprint {}); keep it secret: it admits nodes to the cluster\n{}\n",
            self.fingerprint(),
            hex.as_str()
        ));
        stdx::fs::write_new_private(path, text.as_bytes())
    }
}

/// How cluster key files are read: small, and private as identity key files are.
const CLUSTER_KEY_LIMITS: stdx::fs::ReadLimits = stdx::fs::ReadLimits::secret(4096);

impl Drop for ClusterKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for ClusterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClusterKey(fingerprint {})", self.fingerprint())
    }
}

fn blake3_fingerprint(bytes: &[u8; 32]) -> [u8; 4] {
    // Hashed under its own context, so the fingerprint reveals nothing of the key.
    let full = blake3::derive_key("meshdeck 2026-11 cluster key fingerprint v1", bytes);
    [full[0], full[1], full[2], full[3]]
}

/// How often nodes probe each other and how quickly they give up on one.
///
/// Probing runs in rounds of `probe_interval`, counted by each node on its own
/// clock. A node pings a given peer every second round (odd rounds towards
/// larger ids, even rounds towards smaller ones, so the two sides of a pair
/// take alternate rounds) and answers every ping with a pong. Each side thus
/// sends half the pings of pinging every round, yet hears from the other at
/// least every two rounds, and every round when the two nodes' rounds
/// interleave (their round counters are not synchronized). A peer first seen
/// less than 3 s ago is pinged every round, so a joining cluster measures round
/// trips quickly. Health is judged from silence: the time since the last
/// authenticated datagram from the peer on any of its sessions.
///
/// `MeshNode::start` refuses a profile unless
/// `0 < probe_interval < unreachable_after` and `degraded_after <= unreachable_after`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimingProfile {
    /// Length of one probe round. A node pings a given peer every second round
    /// (every round while the peer is new) and pongs each of its pings, so the
    /// peer hears from it at least every two rounds. The maintenance tick runs
    /// every half round (at least 5 ms); daemons get one round as their
    /// shutdown grace.
    pub probe_interval: Duration,
    /// A peer silent for longer than this is Degraded ("missed probes").
    pub degraded_after: Duration,
    /// A peer silent for longer than this is Unreachable, and sends to it fail
    /// at once; older sessions of a peer idle this long are closed.
    pub unreachable_after: Duration,
    /// A peer is Degraded ("high RTT") while both its smoothed RTT and its
    /// latest RTT exceed this.
    pub degraded_rtt: Duration,
    /// How long an initiated handshake may take (a responder waits twice as
    /// long). The third handshake message is resent every half of this until
    /// the responder speaks, for at most four times this. A member learned by
    /// gossip is dialled again every twice this until it answers.
    pub handshake_timeout: Duration,
    /// For a member learned by gossip, the node with the smaller id dials at
    /// once; the larger waits this long before dialling itself (so a pair
    /// normally runs one handshake, not two).
    pub initiate_fallback: Duration,
    /// An Unreachable peer (not one that left) is redialled this often; the
    /// interval doubles with each failed attempt, up to 8x. Seeds without a
    /// live session are dialled at this interval too.
    pub redial_interval: Duration,
    /// Every this often a node pushes its full member list to every peer, and
    /// sends a fold digest to three peers (in turn) to heal missed summaries.
    pub gossip_interval: Duration,
    /// An Unreachable peer is forgotten after it has been Unreachable this long;
    /// the fold summary (and so the daemons) of a node without a live session
    /// is removed once it has not changed for this long (checked each gossip
    /// interval); members learned by gossip are dropped this long after being
    /// learned if no session came of them.
    pub forget_after: Duration,
    /// Incomplete fragmented messages are dropped after this long.
    pub reassembly_timeout: Duration,
    /// A migration that makes no progress for this long fails.
    pub migration_stall: Duration,
}

impl TimingProfile {
    /// For nodes on one machine: a probe round every 200 ms (the two sides of a
    /// pair ping in alternate rounds, so each pings the other every 400 ms and
    /// hears from it at least that often), Degraded after 600 ms and
    /// Unreachable after 800 ms of silence, so a dead node is seen within 1 s. Gossip and fold digests
    /// every second; a dead node's peer entry and daemons are forgotten after
    /// 60 s.
    pub fn loopback() -> Self {
        Self {
            probe_interval: Duration::from_millis(200),
            degraded_after: Duration::from_millis(600),
            unreachable_after: Duration::from_millis(800),
            degraded_rtt: Duration::from_millis(50),
            handshake_timeout: Duration::from_secs(1),
            initiate_fallback: Duration::from_secs(1),
            redial_interval: Duration::from_millis(500),
            gossip_interval: Duration::from_secs(1),
            forget_after: Duration::from_secs(60),
            reassembly_timeout: Duration::from_secs(5),
            migration_stall: Duration::from_secs(5),
        }
    }

    /// For nodes on a local network: a probe round every second (the two sides
    /// of a pair ping in alternate rounds, so each pings the other every 2 s and
    /// hears from it at least that often), Degraded after 2.5 s and Unreachable
    /// after 4.5 s of silence, so a dead node is seen within 5 s. Gossip and fold digests
    /// every 5 s; a dead node's peer entry and daemons are forgotten after
    /// 10 minutes.
    pub fn lan() -> Self {
        Self {
            probe_interval: Duration::from_secs(1),
            degraded_after: Duration::from_millis(2_500),
            unreachable_after: Duration::from_millis(4_500),
            degraded_rtt: Duration::from_millis(250),
            handshake_timeout: Duration::from_secs(1),
            initiate_fallback: Duration::from_secs(2),
            redial_interval: Duration::from_secs(2),
            gossip_interval: Duration::from_secs(5),
            forget_after: Duration::from_secs(600),
            reassembly_timeout: Duration::from_secs(15),
            migration_stall: Duration::from_secs(20),
        }
    }

    /// The profile by name (`loopback` or `lan`).
    pub fn by_name(name: &str) -> Option<Self> {
        match name {
            "loopback" => Some(Self::loopback()),
            "lan" => Some(Self::lan()),
            _ => None,
        }
    }
}

impl Default for TimingProfile {
    fn default() -> Self {
        Self::loopback()
    }
}

/// Size and memory limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest UDP payload this node sends (default 1200 bytes, safe for any
    /// path MTU). Larger messages are fragmented.
    pub datagram_budget: usize,
    /// Largest datagram accepted; anything bigger is dropped as too-large
    /// (default 16 KiB).
    pub max_datagram: usize,
    /// Largest message (before fragmentation) sent or reassembled (default 8 MiB).
    pub max_message: usize,
    /// Bytes of incomplete messages held per session (default 16 MiB).
    pub reassembly_bytes_per_session: usize,
    /// Incomplete messages held per session (default 64).
    pub reassembly_messages_per_session: usize,
    /// Responder-side handshakes in progress at once (default 1024).
    pub max_pending_handshakes: usize,
    /// Messages queued per subscriber before new ones are dropped (default 4096).
    pub subscriber_queue: usize,
    /// Kernel socket buffer size requested for send and receive (default 4 MiB;
    /// the kernel may grant less).
    pub socket_buffer: usize,
    /// Log lines queued between daemons and the ring (default 65 536); when
    /// full, lines are dropped, counted and the daemon gets backpressure.
    pub log_queue: usize,
    /// Log lines kept per node (default 4096).
    pub log_ring: usize,
    /// Failure records kept per node (default 1024).
    pub failure_ring: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            datagram_budget: 1200,
            max_datagram: 16 * 1024,
            max_message: 8 * 1024 * 1024,
            reassembly_bytes_per_session: 16 * 1024 * 1024,
            reassembly_messages_per_session: 64,
            max_pending_handshakes: 1024,
            subscriber_queue: 4096,
            socket_buffer: 4 * 1024 * 1024,
            log_queue: 65_536,
            log_ring: crate::logs::DEFAULT_LOG_RING,
            failure_ring: crate::logs::DEFAULT_FAILURE_RING,
        }
    }
}

/// Everything [`crate::MeshNode::start`] needs.
#[derive(Clone, Debug)]
pub struct MeshConfig {
    /// Address to bind (default `127.0.0.1:0`).
    pub bind: SocketAddr,
    /// The node's identity; a fresh one is generated when `None`.
    pub identity: Option<EntityKeypair>,
    /// The cluster's shared key.
    pub cluster_key: ClusterKey,
    /// Addresses (`host:port`) of nodes to join through.
    pub seeds: Vec<String>,
    /// Probe and failure-detection timings.
    pub timing: TimingProfile,
    /// When set, only nodes with one of these ed25519 keys get a session.
    pub allow_list: Option<HashSet<PublicKey>>,
    /// Size and memory limits.
    pub limits: Limits,
    /// Role flags announced in the handshake ([`NODE_FLAG_OPERATOR`]; other bits
    /// are free-form).
    pub flags: u32,
    /// Verifies admin commands; a node without one refuses every command.
    pub admin_verifier: Option<Arc<AdminVerifier>>,
    /// Where the audit ledger is persisted (in memory when `None`).
    pub audit_path: Option<PathBuf>,
    /// Where the node's admin state (cordon, drain, maintenance, freeze, avoid
    /// list) is persisted, so a restart keeps it (in memory only when `None`).
    pub admin_state_path: Option<PathBuf>,
}

/// Role flag of an operator's node (a deck attached to the cluster): it runs no
/// daemons, takes no placements and is left out of cluster-wide admin commands.
pub const NODE_FLAG_OPERATOR: u32 = 1;

impl MeshConfig {
    /// Announces this node as an operator's node ([`NODE_FLAG_OPERATOR`]).
    pub fn operator_node(mut self) -> Self {
        self.flags |= NODE_FLAG_OPERATOR;
        self
    }

    /// Defaults around `cluster_key`: bind `127.0.0.1:0`, loopback timing.
    pub fn new(cluster_key: ClusterKey) -> Self {
        Self {
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            identity: None,
            cluster_key,
            seeds: Vec::new(),
            timing: TimingProfile::loopback(),
            allow_list: None,
            limits: Limits::default(),
            flags: 0,
            admin_verifier: None,
            audit_path: None,
            admin_state_path: None,
        }
    }

    /// Sets the bind address.
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.bind = addr;
        self
    }

    /// Sets the node identity.
    pub fn identity(mut self, key: EntityKeypair) -> Self {
        self.identity = Some(key);
        self
    }

    /// Adds a seed address (`host:port`).
    pub fn seed(mut self, addr: impl Into<String>) -> Self {
        self.seeds.push(addr.into());
        self
    }

    /// Sets the timing profile.
    pub fn timing(mut self, timing: TimingProfile) -> Self {
        self.timing = timing;
        self
    }

    /// Restricts sessions to these node keys.
    pub fn allow_only(mut self, keys: impl IntoIterator<Item = PublicKey>) -> Self {
        self.allow_list = Some(keys.into_iter().collect());
        self
    }

    /// Installs the admin verifier.
    pub fn admin_verifier(mut self, verifier: Arc<AdminVerifier>) -> Self {
        self.admin_verifier = Some(verifier);
        self
    }

    /// Persists the audit ledger at `path` (created if missing, verified on open).
    pub fn audit_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.audit_path = Some(path.into());
        self
    }

    /// Persists the node's admin state at `path`: read at start (a missing file is
    /// the default state), rewritten atomically after every accepted command.
    pub fn admin_state_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.admin_state_path = Some(path.into());
        self
    }

    /// Sets the limits.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }
}
