//! `MeshHandle`'s methods: the node's public API as any task sees it (state,
//! publishing, admin, daemons, messages).

use super::*;

impl MeshHandle {
    /// The node's id.
    pub fn node_id(&self) -> NodeId {
        self.inner.node_id
    }

    /// The bound socket address.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    /// True once the node has been shut down.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }

    /// See [`MeshNode::peers`].
    pub fn peers(&self) -> Vec<PeerInfo> {
        self.inner.peers()
    }

    /// Counters.
    pub fn metrics(&self) -> MeshMetrics {
        let mut metrics = self.inner.counters.snapshot();
        metrics.membership = self.inner.swim.lock().stats();
        metrics
    }

    /// A member's state in this node's table (`None`: not a member here).
    /// Cheaper than [`MeshHandle::peers`] when one member is of interest.
    pub fn member_state(&self, id: NodeId) -> Option<crate::MemberState> {
        self.inner.swim.lock().member(id).map(|m| m.state)
    }

    /// See [`MeshNode::changes`].
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.inner.changes.subscribe()
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<MeshSnapshot> {
        self.inner.fresh_snapshot()
    }

    /// See [`MeshNode::subscribe`].
    pub fn subscribe(&self) -> watch::Receiver<Arc<MeshSnapshot>> {
        self.inner.snapshot.subscribe()
    }

    /// See [`MeshNode::logs_since`].
    pub fn logs_since(&self, from_seq: u64, limit: usize) -> Vec<LogEntry> {
        self.inner.rings.lock().logs.since(from_seq, limit)
    }

    /// See [`MeshNode::failures_since`].
    pub fn failures_since(&self, from_seq: u64, limit: usize) -> Vec<FailureRecord> {
        self.inner.rings.lock().failures.since(from_seq, limit)
    }

    /// Publishes an event on this node. Log lines never block (dropped and
    /// counted when the queue is full); fails only once the node is shut down.
    pub fn publish(&self, event: MeshEvent) -> Result<(), SendError> {
        if self.is_closed() {
            return Err(SendError::Shutdown);
        }
        match event {
            MeshEvent::LogLine { daemon, level, message } => {
                let line = PendingLine { ts_ms: mesh_auth::unix_now_ms(), daemon, level, message };
                if self.inner.log_tx.try_send(line).is_err() {
                    self.inner.logs_dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
            MeshEvent::Failure { kind, subject, message } => {
                self.inner.record_failure(&kind, &subject, &message);
            }
        }
        Ok(())
    }

    /// Verifies `envelope`, records the outcome in the audit ledger, applies the
    /// command. A node without a verifier refuses everything (`no_verifier`);
    /// routine commands are refused while frozen (`frozen`); a command for another
    /// node is refused (`not_target`); an ICE command whose blast-radius hash does
    /// not match this node's simulation is refused (`simulation_mismatch`).
    ///
    /// Only envelopes with at least one valid signature of a registered operator
    /// are recorded in the ledger; others are refused and counted in
    /// [`MeshMetrics::refused`]. The ledger append fsyncs: call this from a
    /// blocking context (`tokio::task::spawn_blocking`), not on an async worker.
    pub fn apply_admin(&self, envelope: &SignedEnvelope) -> AdminOutcome {
        self.apply_admin_inner(None, envelope)
    }

    /// Sends `peer` raw membership bytes (an encoded SWIM message, or
    /// anything else) as a hostile key holder could: for tests of what a node
    /// refuses (feature `testing`). Returns false without a session to `peer`.
    #[cfg(feature = "testing")]
    #[doc(hidden)]
    pub fn testing_send_swim(&self, peer: NodeId, bytes: &[u8]) -> bool {
        let route = self.inner.routes.read().get(&peer).cloned();
        let Some(route) = route else { return false };
        self.inner.send_frame(&route.session, &Frame::Swim(bytes));
        true
    }

    /// Sends `peer` gossip a hostile key holder could make up, for tests of
    /// what membership refuses (feature `testing`): for each key, a record
    /// for another node's id (wrong owner), one altered after signing (bad
    /// signature), one at a multicast address and one far in the future
    /// (implausible); then Suspect and Dead claims about `slander` at an
    /// incarnation it never signed. False without a session to `peer`.
    #[cfg(feature = "testing")]
    #[doc(hidden)]
    pub fn testing_send_forged_members(
        &self,
        peer: NodeId,
        slander: NodeId,
        keys: &[EntityKeypair],
    ) -> bool {
        let updates = crate::swim::testing_forgeries(slander, keys, mesh_auth::unix_now_ms());
        let mut ok = true;
        for chunk in updates.chunks(4) {
            let msg = SwimMsg::Gossip { updates: chunk.to_vec() };
            let bytes = postcard::to_stdvec(&msg).unwrap_or_default();
            ok &= self.testing_send_swim(peer, &bytes);
        }
        ok
    }

    /// [`MeshHandle::apply_admin`] for an envelope delivered by node `from`:
    /// envelopes without a valid operator signature count against `from`'s
    /// budget, and over it they are refused unread (`rate_limited`).
    pub fn apply_admin_from(&self, from: NodeId, envelope: &SignedEnvelope) -> AdminOutcome {
        self.apply_admin_inner(Some(from), envelope)
    }

    /// [`MeshHandle::apply_admin_from`] for an envelope's wire bytes, decoded
    /// with the bounded decoder ([`SignedEnvelope::decode`]: size, target and
    /// payload caps). Bytes that do not decode are refused (`malformed`) and
    /// counted like an unsigned envelope.
    pub fn apply_admin_bytes(&self, from: NodeId, bytes: &[u8]) -> AdminOutcome {
        match SignedEnvelope::decode(bytes) {
            Ok(envelope) => self.apply_admin_inner(Some(from), &envelope),
            Err(e) => {
                if self.inner.admin_budget.lock().has(from, Instant::now()) {
                    self.inner.count_unsigned(Some(from));
                } else {
                    Counters::bump(&self.inner.counters.admin_rate_limited);
                }
                AdminOutcome::Rejected {
                    code: crate::admin::AdminRefusal::Malformed.code().into(),
                    reason: format!("the envelope does not decode: {e}"),
                    audit_seq: None,
                }
            }
        }
    }

    fn apply_admin_inner(&self, from: Option<NodeId>, envelope: &SignedEnvelope) -> AdminOutcome {
        if self.is_closed() {
            return AdminOutcome::Rejected {
                code: crate::admin::AdminRefusal::Shutdown.code().into(),
                reason: "the node is shut down".into(),
                audit_seq: None,
            };
        }
        self.inner.apply_admin(from, envelope)
    }

    /// See [`MeshNode::register_factory`].
    pub fn register_factory<F>(&self, kind: &str, factory: F)
    where
        F: Fn(&[u8]) -> Result<Box<dyn Daemon>, String> + Send + Sync + 'static,
    {
        self.inner.migrations.lock().factories.insert(kind.to_owned(), Arc::new(factory));
    }

    /// See [`MeshNode::migrate`].
    pub fn migrate(
        &self,
        daemon: OriginHash,
        target: NodeId,
    ) -> Result<MigrationHandle, MigrationError> {
        self.inner.start_migration(daemon, target)
    }

    /// See [`MeshNode::audit_since`].
    pub fn audit_since(&self, from_seq: u64, limit: usize) -> Vec<AuditEntry> {
        self.inner.ledger.lock().since(from_seq, limit).to_vec()
    }

    /// See [`MeshNode::admin_state`].
    pub fn admin_state(&self) -> AdminState {
        self.inner.admin.lock().clone()
    }

    /// See [`MeshNode::register_daemon`].
    pub fn register_daemon(
        &self,
        daemon: Box<dyn Daemon>,
        keypair: EntityKeypair,
    ) -> Result<DaemonHandle, DaemonError> {
        if self.is_closed() {
            return Err(DaemonError::Shutdown);
        }
        let name = daemon.name().to_owned();
        crate::daemon::validate_name(&name)
            .map_err(|reason| DaemonError::InvalidName { name: name.clone(), reason })?;
        let slot = Arc::new(DaemonSlot::new(keypair, daemon, name, mesh_auth::unix_now_ms()));
        self.inner.insert_daemon(slot.clone())?;
        let weak = Arc::downgrade(&self.inner);
        Ok(DaemonHandle {
            logger: DaemonLogger { slot: slot.clone(), tx: self.inner.log_tx.clone() },
            slot,
            unregister: Some(Box::new(move |slot| {
                if let Some(inner) = weak.upgrade() {
                    inner.remove_daemon_slot(slot);
                }
            })),
        })
    }

    /// See [`MeshNode::control_daemon`].
    pub fn control_daemon(
        &self,
        id: OriginHash,
        control: DaemonControl,
    ) -> Result<(), DaemonError> {
        let slot = self.inner.daemons.read().get(&id).cloned().ok_or(DaemonError::NotFound(id))?;
        slot.enqueue(control);
        Ok(())
    }

    /// Subscribes to messages of `kind`. Several subscriptions to one kind each
    /// get every message.
    pub fn subscribe_messages(&self, kind: MessageKind) -> Result<Subscription, SendError> {
        if self.is_closed() {
            return Err(SendError::Shutdown);
        }
        let (tx, rx) = mpsc::channel(self.inner.config.limits.subscriber_queue.max(1));
        self.inner.edit_sinks(kind, |list| {
            list.retain(|s| !matches!(s, Sink::Queue(q) if q.is_closed()));
            list.push(Sink::Queue(tx));
        });
        Ok(Subscription { kind, rx })
    }

    /// Registers `handler` to run inline on the node's receive task for every
    /// message of `kind`: no queue, no task wake-up, the lowest latency there is.
    ///
    /// The handler must be quick and must not block (hand real work to a task).
    /// It runs while other datagrams wait. Dropping the returned guard removes it.
    pub fn on_message<F>(&self, kind: MessageKind, handler: F) -> Result<InlineHandler, SendError>
    where
        F: Fn(Incoming) + Send + Sync + 'static,
    {
        if self.is_closed() {
            return Err(SendError::Shutdown);
        }
        let id = self.inner.next_sink_id.fetch_add(1, Ordering::Relaxed);
        self.inner.edit_sinks(kind, |list| list.push(Sink::Inline(id, Arc::new(handler))));
        Ok(InlineHandler { inner: Arc::downgrade(&self.inner), kind, id })
    }
}
