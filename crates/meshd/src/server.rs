//! Starting, running and stopping the node: [`Meshd`].
//!
//! # Known limits
//!
//! - Admin state (cordon, drain, maintenance, freeze) lives in the node's memory:
//!   a restarted node comes back uncordoned. Its audit ledger keeps the record.
//! - The verifier's replay cache starts empty after a restart, so an envelope
//!   accepted before a crash could be accepted once more while it is still fresh
//!   (up to `freshness_secs`, default 300 s, after it was issued): `mesh-auth` has
//!   no way yet to seed the cache, or raise its floor, from the ledger's nonces.

use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mesh::{MeshConfig, MeshError, MeshNode, NodeId, TimingProfile};
use mesh_blobs::{AdapterConfig, BlobStore, DiskConfig, DiskLog, MeshBlobAdapter};
use mesh_rpc::Rpc;
use mesh_rpc::node_services::{NodeServices, serve_node_services};

use crate::datadir::DataDir;
use crate::error::MeshdError;
use crate::keys::{load_cluster_key, load_or_create_identity};
use crate::operators::Operators;
use crate::options::{NodeOptions, Profile};
use crate::stop::StopSignals;

/// Name of the blob adapter every meshd serves its store under.
pub const BLOB_ADAPTER: &str = "disk";
/// How the ready line on stdout starts ([`StartupInfo::ready_line`]).
pub const READY_PREFIX: &str = "meshd: listening on ";
/// Longest wait for the node to say goodbye to its peers on shutdown.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// What a started node reports about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StartupInfo {
    /// The node's id (from its identity key).
    pub node_id: NodeId,
    /// The bound UDP address.
    pub addr: SocketAddr,
    /// The cluster key's fingerprint.
    pub cluster_fingerprint: String,
    /// The data directory.
    pub data_dir: PathBuf,
    /// The timing profile's name.
    pub profile: &'static str,
    /// Whether the identity was created by this start.
    pub identity_created: bool,
    /// Operators in the verifier (0: every command is refused).
    pub operators: usize,
    /// Audit ledger entries found on disk.
    pub audit_entries: u64,
    /// Blobs found in the store.
    pub blobs: u64,
}

impl StartupInfo {
    /// The line printed on stdout once the node listens:
    /// `meshd: listening on ADDR node ID cluster FINGERPRINT data-dir DIR`.
    /// Tools read the address and node id from it (the address is the one really
    /// bound, also with port 0).
    pub fn ready_line(&self) -> String {
        format!(
            "{READY_PREFIX}{} node {} cluster {} data-dir {}",
            self.addr,
            self.node_id,
            self.cluster_fingerprint,
            self.data_dir.display()
        )
    }

    /// Reads the address and node id back from a ready line.
    pub fn parse_ready_line(line: &str) -> Option<(SocketAddr, NodeId)> {
        let rest = line.trim().strip_prefix(READY_PREFIX)?;
        let mut words = rest.split_whitespace();
        let addr = words.next()?.parse().ok()?;
        if words.next()? != "node" {
            return None;
        }
        let id = words.next()?;
        let id = u64::from_str_radix(id.strip_prefix("0x").unwrap_or(id), 16).ok()?;
        Some((addr, NodeId(id)))
    }
}

/// A running node with its services, store and data directory.
#[derive(Debug)]
pub struct Meshd {
    node: MeshNode,
    rpc: Rpc,
    services: NodeServices,
    blobs: MeshBlobAdapter,
    store: Arc<DiskLog>,
    info: StartupInfo,
    data_dir: DataDir,
}

impl Meshd {
    /// Checks the configuration, locks the data directory, opens the identity,
    /// ledger and blob store, starts the node and its services.
    ///
    /// Nothing is created or locked before the cluster key, the listen address and
    /// the operators file checked out.
    pub async fn start(opts: &NodeOptions) -> Result<Meshd, MeshdError> {
        let bind = resolve_listen(&opts.listen)?;
        // Refuses a key file other users can read (`ClusterKey::load` checks).
        let cluster_key = load_cluster_key(&opts.cluster_key)?;
        let operators = opts.operators.as_deref().map(Operators::load).transpose()?;
        let profile = opts.profile.unwrap_or_else(|| Profile::default_for(bind));
        let timing = TimingProfile::by_name(profile.name())
            .ok_or_else(|| MeshdError::new("--profile", "unknown timing profile"))?;

        let data_dir = DataDir::open(&opts.data_dir)?;
        let identity_path = opts.identity.clone().unwrap_or_else(|| data_dir.identity_path());
        let (identity, identity_created) = load_or_create_identity(&identity_path)?;
        if identity_created {
            tracing::info!(path = %identity_path.display(), node = %identity.node_id(), "created a new node identity");
        }
        let blobs_path = data_dir.blobs_path();
        let store = DiskLog::open(&blobs_path, DiskConfig::default())
            .map_err(|e| MeshdError::new(format!("blob store {}", blobs_path.display()), e))?;
        let store = Arc::new(store);

        // Created 0600 here: the ledger opens it without choosing a mode.
        let audit_path = data_dir.prepare_audit_file()?;
        let mut config = MeshConfig::new(cluster_key.clone())
            .bind(bind)
            .identity(identity)
            .timing(timing)
            .audit_path(audit_path)
            .admin_state_path(data_dir.admin_state_path());
        config.seeds = opts.seeds.clone();
        match &operators {
            Some(ops) => {
                config = config.admin_verifier(Arc::new(ops.verifier()));
                let names: Vec<&str> = ops.names().iter().map(|(n, _)| n.as_str()).collect();
                tracing::info!(
                    file = %ops.path().display(),
                    operators = ?names,
                    routine_threshold = ops.config().routine_threshold,
                    ice_threshold = ops.config().ice_threshold,
                    "admin commands are verified against the operators file"
                );
            }
            None => tracing::warn!(
                "no --operators file: this node refuses every admin command (no_verifier)"
            ),
        }
        let node = MeshNode::start(config).await.map_err(|e| start_error(e, opts, &data_dir))?;
        let rpc = Rpc::new(&node).map_err(|e| MeshdError::new("rpc endpoint", e))?;
        let services =
            serve_node_services(&rpc).map_err(|e| MeshdError::new("node services", e))?;
        let dyn_store: Arc<dyn BlobStore> = store.clone();
        let blobs =
            MeshBlobAdapter::with_config(BLOB_ADAPTER, &rpc, dyn_store, AdapterConfig::default())
                .map_err(|e| MeshdError::new("blob adapter", e))?;
        let audit_entries = node.audit_since(0, usize::MAX).len() as u64;
        let info = StartupInfo {
            node_id: node.node_id(),
            addr: node.local_addr(),
            cluster_fingerprint: cluster_key.fingerprint(),
            data_dir: data_dir.path().to_owned(),
            profile: profile.name(),
            identity_created,
            operators: operators.as_ref().map_or(0, |o| o.registry().len()),
            audit_entries,
            blobs: store.metrics().blobs,
        };
        Ok(Meshd { node, rpc, services, blobs, store, info, data_dir })
    }

    /// The node.
    pub fn node(&self) -> &MeshNode {
        &self.node
    }

    /// The node's RPC endpoint.
    pub fn rpc(&self) -> &Rpc {
        &self.rpc
    }

    /// The blob adapter serving the data directory's store.
    pub fn blobs(&self) -> &MeshBlobAdapter {
        &self.blobs
    }

    /// What the node reported at start.
    pub fn info(&self) -> &StartupInfo {
        &self.info
    }

    /// Leaves the cluster (peers are told; at most [`SHUTDOWN_GRACE`]), stops the
    /// services, flushes the blob store and releases the data directory.
    pub async fn shutdown(self) {
        let Meshd { node, rpc, services, blobs, store, info: _, data_dir } = self;
        if tokio::time::timeout(SHUTDOWN_GRACE, node.shutdown()).await.is_err() {
            tracing::warn!(
                grace_ms = SHUTDOWN_GRACE.as_millis() as u64,
                "the node did not stop within the grace period; exiting anyway"
            );
        }
        drop(blobs);
        drop(services);
        drop(rpc);
        if let Err(e) = store.sync() {
            tracing::error!(error = %e, "flushing the blob store failed");
        }
        drop(store);
        drop(node);
        drop(data_dir);
    }
}

/// Runs a node until SIGTERM or SIGINT (or end of stdin when asked), printing the
/// ready line on `out` once it listens. Returns after a clean shutdown.
pub async fn run(opts: NodeOptions, out: &mut dyn Write) -> Result<(), MeshdError> {
    let mut stop = StopSignals::install(opts.exit_on_stdin_eof)?;
    let meshd = Meshd::start(&opts).await?;
    let info = meshd.info().clone();
    tracing::info!(
        node = %info.node_id,
        addr = %info.addr,
        cluster = %info.cluster_fingerprint,
        data_dir = %info.data_dir.display(),
        profile = info.profile,
        operators = info.operators,
        audit_entries = info.audit_entries,
        blobs = info.blobs,
        "listening"
    );
    if let Err(e) = writeln!(out, "{}", info.ready_line()).and_then(|()| out.flush()) {
        tracing::warn!(error = %e, "cannot write the ready line on stdout");
    }
    let reason = stop.wait().await;
    tracing::info!(reason, "meshd stopping: leaving the cluster");
    meshd.shutdown().await;
    tracing::info!("meshd stopped");
    Ok(())
}

/// The socket address to bind for `--listen` (a name resolves to its first
/// address).
pub fn resolve_listen(listen: &str) -> Result<SocketAddr, MeshdError> {
    let what = || format!("--listen {listen}");
    if let Ok(addr) = listen.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if !listen.contains(':') {
        return Err(MeshdError::new(what(), "expected host:port (for example 127.0.0.1:7000)"));
    }
    let mut addrs = listen
        .to_socket_addrs()
        .map_err(|e| MeshdError::new(what(), format!("not an address: {e}")))?;
    addrs.next().ok_or_else(|| MeshdError::new(what(), "resolves to no address"))
}

fn start_error(e: MeshError, opts: &NodeOptions, data_dir: &DataDir) -> MeshdError {
    match e {
        MeshError::Bind { addr, source } => MeshdError::new(
            format!("--listen {}", opts.listen),
            format!("cannot bind UDP socket on {addr}: {source}"),
        ),
        MeshError::BadSeed { seed, reason } => MeshdError::new(format!("--seed {seed}"), reason),
        MeshError::Audit(e) => {
            MeshdError::new(format!("audit ledger {}", data_dir.audit_path().display()), e)
        }
        MeshError::AdminState { path, reason } => {
            MeshdError::new(format!("admin state {path}"), reason)
        }
        other => MeshdError::new("mesh node", other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_line_round_trips() {
        let info = StartupInfo {
            node_id: NodeId(0x0123_4567_89ab_cdef),
            addr: "127.0.0.1:4567".parse().unwrap(),
            cluster_fingerprint: "deadbeef".into(),
            data_dir: PathBuf::from("/tmp/a dir"),
            profile: "loopback",
            identity_created: false,
            operators: 1,
            audit_entries: 0,
            blobs: 0,
        };
        let line = info.ready_line();
        assert_eq!(
            line,
            "meshd: listening on 127.0.0.1:4567 node 0x0123456789abcdef cluster deadbeef data-dir /tmp/a dir"
        );
        assert_eq!(StartupInfo::parse_ready_line(&line), Some((info.addr, info.node_id)));
        assert_eq!(StartupInfo::parse_ready_line("meshd: something else"), None);
    }

    #[test]
    fn listen_addresses() {
        assert_eq!(resolve_listen("127.0.0.1:0").unwrap().port(), 0);
        assert!(resolve_listen("localhost:7000").is_ok());
        let err = resolve_listen("nonsense").unwrap_err().to_string();
        assert!(err.starts_with("--listen nonsense: expected host:port"), "{err}");
        assert!(resolve_listen("127.0.0.1:99999").is_err());
    }
}
