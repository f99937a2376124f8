//! Starting a node: check the configuration, resolve seeds, bind the socket,
//! restore the ledger and admin state, and spawn the node's tasks.

use super::tasks::{recv_loop, tick_loop};
use super::*;

impl MeshNode {
    /// Binds the socket, starts the node's tasks on the current tokio runtime and
    /// dials the seeds. Returns as soon as the node is listening; use
    /// [`MeshNode::changes`] or [`MeshNode::peers`] to see the cluster form.
    pub async fn start(config: MeshConfig) -> Result<MeshNode, MeshError> {
        validate(&config)?;
        let (socket, send) = bind(&config)?;
        Self::start_on(config, crate::transport::Net::Udp { socket, send }).await
    }

    /// Starts a node on another [`crate::transport::Transport`] than UDP, such
    /// as [`crate::sim::SimNet`]'s in-memory network (feature `testing`): the
    /// configuration's bind address is ignored.
    #[cfg(feature = "testing")]
    pub async fn start_with_transport(
        config: MeshConfig,
        transport: Arc<dyn crate::transport::Transport>,
    ) -> Result<MeshNode, MeshError> {
        Self::start_on(config, crate::transport::Net::Other(transport)).await
    }

    async fn start_on(
        config: MeshConfig,
        net: crate::transport::Net,
    ) -> Result<MeshNode, MeshError> {
        let seeds = resolve_seeds(&config.seeds).await?;
        let local_addr = net.local_addr()?;
        let identity = match &config.identity {
            Some(key) => key.clone(),
            None => EntityKeypair::try_generate().map_err(|e| MeshError::Random(e.to_string()))?,
        };
        let static_key = StaticKey::generate()?;
        let proof = IdentityProof::encode_for(&identity, &static_key.public, config.flags);
        let mut idx_seed = [0u8; 4];
        getrandom::getrandom(&mut idx_seed).map_err(|e| MeshError::Random(e.to_string()))?;
        let (stop, _) = watch::channel(false);
        let (changes, _) = watch::channel(0);
        let incarnation = mesh_auth::unix_now_ms();
        let (log_tx, log_rx) = mpsc::channel(config.limits.log_queue.max(1));
        let rings = state::Rings::new(config.limits.log_ring, config.limits.failure_ring);
        let mut torn_tail = None;
        let ledger = match &config.audit_path {
            None => AuditLedger::new(),
            Some(path) => {
                let (ledger, torn) = AuditLedger::open(path).map_err(MeshError::Audit)?;
                if torn > 0 {
                    tracing::warn!(path = %path.display(), bytes = torn, "audit ledger had a torn tail; truncated");
                    torn_tail = Some((path.display().to_string(), torn));
                }
                // Envelopes this node verified before a restart stay replays: the
                // verifier relearns their nonces (those whose signatures counted).
                // ICE targets accepted within the cooldown keep cooling down.
                if let Some(verifier) = &config.admin_verifier {
                    let entries = ledger.since(0, usize::MAX);
                    let now_ms = mesh_auth::unix_now_ms();
                    let seen = entries
                        .iter()
                        .filter(|e| !e.record.operators.is_empty())
                        .map(|e| (e.record.nonce, e.record.ts_ms));
                    let nonces = verifier.remember_seen(seen, now_ms);
                    let ice = entries
                        .iter()
                        .filter(|e| {
                            e.record.class == mesh_auth::CommandClass::Ice
                                && e.record.outcome == mesh_auth::AuditOutcome::Accepted
                        })
                        .map(|e| (e.record.target.clone(), e.record.ts_ms));
                    let cooling = verifier.remember_ice(ice, now_ms);
                    tracing::debug!(
                        nonces,
                        cooling,
                        "replay cache and ICE cooldowns restored from the audit ledger"
                    );
                }
                ledger
            }
        };
        let admin = match &config.admin_state_path {
            None => AdminState::default(),
            Some(path) => AdminState::load(path).map_err(|reason| MeshError::AdminState {
                path: path.display().to_string(),
                reason,
            })?,
        };
        let this_node = ThisNode {
            node_id: identity.node_id(),
            addr: local_addr,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            flags: config.flags,
            resources: Default::default(),
            admin: AdminState::default(),
        };
        let (snapshot, _) = watch::channel(Arc::new(MeshSnapshot::empty(this_node, incarnation)));
        let mut swim_seed = [0u8; 8];
        getrandom::getrandom(&mut swim_seed).map_err(|e| MeshError::Random(e.to_string()))?;
        let own = crate::swim::AliveBody {
            node: identity.node_id(),
            addr: local_addr,
            incarnation,
            flags: config.flags,
            version: env!("CARGO_PKG_VERSION").to_owned(),
        };
        let swim = crate::swim::Swim::new(
            identity.clone(),
            own,
            crate::swim::SwimTiming::from_profile(&config.timing),
            u64::from_le_bytes(swim_seed),
            config.allow_list.clone(),
        );
        let inner = Arc::new(Inner {
            net,
            local_addr,
            node_id: identity.node_id(),
            identity,
            static_key,
            proof,
            config,
            epoch: Instant::now(),
            state: Mutex::new(State { seeds, ..State::default() }),
            sessions: RwLock::new(FastMap::default()),
            routes: RwLock::new(FastMap::default()),
            subscribers: RwLock::new(FastMap::default()),
            next_sink_id: AtomicU64::new(1),
            counters: Counters::default(),
            closed: AtomicBool::new(false),
            stop,
            changes,
            next_msg_id: AtomicU32::new(0),
            idx_base: u32::from_le_bytes(idx_seed),
            idx_counter: AtomicU32::new(0),
            incarnation,
            daemons: RwLock::new(BTreeMap::new()),
            log_tx,
            logs_dropped: AtomicU64::new(0),
            rings: Mutex::new(rings),
            fold: Mutex::new(state::FoldState::new()),
            snapshot,
            dirty: AtomicBool::new(true),
            push_now: AtomicBool::new(true),
            admin: Mutex::new(admin),
            ledger: Mutex::new(ledger),
            admin_budget: Mutex::new(admin::unsigned_budget()),
            opener_guard: Mutex::new(handshake::OpenerGuard::new()),
            swim: Mutex::new(swim),
            migrations: Mutex::new(migrate::Migrations::default()),
        });
        if let Some((path, bytes)) = torn_tail {
            let message = format!("{bytes} bytes of a torn final entry were cut off at start");
            inner.record_failure("audit_torn_tail", &path, &message);
        }
        tracing::debug!(node = %inner.node_id, addr = %local_addr, "mesh node started");
        let recv = tokio::spawn(recv_loop(inner.clone()));
        let tick = tokio::spawn(tick_loop(inner.clone()));
        let handle = MeshHandle { inner: inner.clone() };
        let fold_rx = handle
            .subscribe_messages(state::FOLD_KIND)
            .map_err(|e| MeshError::Config(e.to_string()))?;
        let state_task = tokio::spawn(state::state_loop(inner.clone(), fold_rx));
        let log_task = tokio::spawn(state::log_loop(inner.clone(), log_rx));
        let migrate_rx = handle
            .subscribe_messages(migrate::MIGRATE_KIND)
            .map_err(|e| MeshError::Config(e.to_string()))?;
        let migrate_task = tokio::spawn(migrate::migrate_loop(inner.clone(), migrate_rx));
        inner.dial_seeds(Instant::now());
        Ok(MeshNode {
            handle,
            tasks: Mutex::new(vec![recv, tick, state_task, log_task, migrate_task]),
        })
    }
}

pub(super) fn validate(config: &MeshConfig) -> Result<(), MeshError> {
    let l = &config.limits;
    let min_budget =
        TRANSPORT_HEADER + TAG_LEN + Frame::FRAGMENT_OVERHEAD + crate::fragment::MIN_PIECE;
    if l.datagram_budget < min_budget
        || l.datagram_budget > l.max_datagram
        || l.max_datagram > 65_507
    {
        return Err(MeshError::Config(format!(
            "datagram_budget must be between {min_budget} and max_datagram ({}), and max_datagram at most 65507",
            l.max_datagram
        )));
    }
    let t = &config.timing;
    if t.probe_interval.is_zero()
        || t.unreachable_after <= t.probe_interval
        || t.degraded_after > t.unreachable_after
    {
        return Err(MeshError::Config(
            "timing: need 0 < probe_interval < unreachable_after and degraded_after <= unreachable_after".into(),
        ));
    }
    Ok(())
}

pub(super) async fn resolve_seeds(seeds: &[String]) -> Result<Vec<SocketAddr>, MeshError> {
    let mut out = Vec::new();
    for seed in seeds {
        let bad = |reason: String| MeshError::BadSeed { seed: seed.clone(), reason };
        let addr = match seed.parse::<SocketAddr>() {
            Ok(addr) => addr,
            Err(_) => tokio::net::lookup_host(seed.as_str())
                .await
                .map_err(|e| bad(e.to_string()))?
                .next()
                .ok_or_else(|| bad("resolves to no address".into()))?,
        };
        if addr.port() == 0 {
            return Err(bad("port 0 is not a node address".into()));
        }
        if addr.ip().is_unspecified() || addr.ip().is_multicast() {
            return Err(bad("not a unicast host address".into()));
        }
        out.push(addr);
    }
    Ok(out)
}

pub(super) fn bind(config: &MeshConfig) -> Result<(UdpSocket, std::net::UdpSocket), MeshError> {
    use socket2::{Domain, Protocol, Socket, Type};
    let addr = config.bind;
    let err = |source| MeshError::Bind { addr, source };
    let socket =
        Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP)).map_err(err)?;
    // Bigger kernel buffers absorb bursts of fragments; the kernel may cap them.
    let size = config.limits.socket_buffer;
    if let Err(e) = socket.set_recv_buffer_size(size) {
        tracing::debug!(error = %e, "cannot enlarge receive buffer");
    }
    if let Err(e) = socket.set_send_buffer_size(size) {
        tracing::debug!(error = %e, "cannot enlarge send buffer");
    }
    socket.set_nonblocking(true).map_err(err)?;
    socket.bind(&addr.into()).map_err(err)?;
    let std_socket: std::net::UdpSocket = socket.into();
    let send_socket = std_socket.try_clone().map_err(err)?;
    Ok((UdpSocket::from_std(std_socket).map_err(err)?, send_socket))
}
