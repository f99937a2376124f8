//! Migration on both ends: the source drives phases in a task of its own; the
//! target answers offers, holds the restored daemon inactive, and activates it at
//! cutover. Every message is idempotent by migration id, and the source resends
//! until the stall timeout, so a lost datagram only delays a move.

use std::collections::HashMap;

use tokio::sync::Notify;
use zeroize::Zeroizing;

use super::*;
use crate::daemon::{DaemonSlot, Lifecycle};
use crate::migrate::{
    DaemonFactory, MAX_MIGRATION_STATE, MigrateMessage, MigrationError, MigrationHandle,
    MigrationId, MigrationPhase, MigrationSummary, ReplayLine,
};

/// Message kind of migration traffic.
pub(super) const MIGRATE_KIND: MessageKind = MessageKind::named("mesh/migrate/v1");
/// How often the source resends an unanswered step.
const RESEND: Duration = Duration::from_millis(300);
/// Finished migrations stay visible in snapshots this long.
const KEEP_FINISHED: Duration = Duration::from_secs(15);

/// The source side of one migration.
pub(crate) struct Outgoing {
    pub(crate) summary: MigrationSummary,
    phase_tx: watch::Sender<MigrationPhase>,
    replies: mpsc::UnboundedSender<MigrateMessage>,
    cancel: Arc<Notify>,
    finished_at: Option<Instant>,
}

/// The target side of one migration.
pub(crate) struct IncomingMove {
    slot: Arc<DaemonSlot>,
    source: NodeId,
    received: Instant,
    done: bool,
}

/// Migration bookkeeping of a node.
#[derive(Default)]
pub(crate) struct Migrations {
    pub(crate) outgoing: HashMap<MigrationId, Outgoing>,
    incoming: HashMap<MigrationId, IncomingMove>,
    pub(crate) factories: HashMap<String, DaemonFactory>,
}

impl Migrations {
    /// Summaries of this node's outgoing migrations (in flight and recently ended).
    pub(crate) fn summaries(&self) -> Vec<MigrationSummary> {
        let mut list: Vec<_> = self.outgoing.values().map(|o| o.summary.clone()).collect();
        list.sort_by_key(|m| m.started_at_ms);
        list
    }
}

impl Inner {
    /// Starts moving `daemon` to `target`.
    pub(crate) fn start_migration(
        self: &Arc<Self>,
        daemon: OriginHash,
        target: NodeId,
    ) -> Result<MigrationHandle, MigrationError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(MigrationError::Shutdown);
        }
        let slot = self
            .daemons
            .read()
            .get(&daemon)
            .cloned()
            .ok_or(MigrationError::NoSuchDaemon(daemon))?;
        let kind = slot.kind.clone().ok_or(MigrationError::NotMigratable(daemon))?;
        if target == self.node_id || !self.live_peers().contains(&target) {
            return Err(MigrationError::TargetUnreachable(target));
        }
        if let Some(reason) = self.placement_refusal(target) {
            return Err(MigrationError::TargetRefuses { target, reason });
        }
        let mut id_bytes = [0u8; 8];
        getrandom::getrandom(&mut id_bytes).map_err(|e| MigrationError::Failed(e.to_string()))?;
        let id = MigrationId(u64::from_le_bytes(id_bytes));
        let now_ms = mesh_auth::unix_now_ms();
        let (phase_tx, phase_rx) = watch::channel(MigrationPhase::Snapshot);
        let (replies_tx, replies_rx) = mpsc::unbounded_channel();
        let cancel = Arc::new(Notify::new());
        {
            let mut st = slot.state.lock();
            if st.lifecycle == Lifecycle::Migrating {
                return Err(MigrationError::AlreadyMigrating(daemon));
            }
            st.lifecycle = Lifecycle::Migrating;
        }
        self.migrations.lock().outgoing.insert(
            id,
            Outgoing {
                summary: MigrationSummary {
                    id,
                    daemon,
                    name: slot.name.clone(),
                    source: self.node_id,
                    target,
                    phase: MigrationPhase::Snapshot,
                    bytes_moved: 0,
                    started_at_ms: now_ms,
                    last_progress_ms: now_ms,
                },
                phase_tx,
                replies: replies_tx,
                cancel: cancel.clone(),
                finished_at: None,
            },
        );
        self.push_now.store(true, Ordering::Release);
        let inner = self.clone();
        let cancel_task = cancel.clone();
        tokio::spawn(async move {
            let result = inner
                .drive_migration(id, slot.clone(), kind, target, replies_rx, cancel_task)
                .await;
            inner.finish_migration(id, &slot, result);
        });
        Ok(MigrationHandle { id, phase: phase_rx, cancel })
    }

    /// Why `target` would refuse a placement now, as far as the fold knows.
    pub(crate) fn placement_refusal(&self, target: NodeId) -> Option<String> {
        let now_ms = mesh_auth::unix_now_ms();
        if self.admin.lock().avoid.contains(&target) {
            return Some("on this node's avoid list".into());
        }
        let fs = self.fold.lock();
        let summary = fs.fold.get(target)?;
        if summary.admin.refuses_placements(now_ms) {
            return Some(format!("node is {}", summary.admin.label(now_ms)));
        }
        None
    }

    fn set_phase(&self, id: MigrationId, phase: MigrationPhase, bytes: Option<u64>) {
        let mut migrations = self.migrations.lock();
        if let Some(m) = migrations.outgoing.get_mut(&id) {
            m.summary.phase = phase.clone();
            m.summary.last_progress_ms = mesh_auth::unix_now_ms();
            if let Some(b) = bytes {
                m.summary.bytes_moved = b;
            }
            m.phase_tx.send_replace(phase);
        }
        drop(migrations);
        self.push_now.store(true, Ordering::Release);
    }

    async fn drive_migration(
        self: &Arc<Self>,
        id: MigrationId,
        slot: Arc<DaemonSlot>,
        kind: String,
        target: NodeId,
        mut replies: mpsc::UnboundedReceiver<MigrateMessage>,
        cancel: Arc<Notify>,
    ) -> Result<(), MigrationError> {
        let stall = self.config.timing.migration_stall;
        let handle = MeshHandle { inner: self.clone() };
        // Snapshot.
        let log_start = self.rings.lock().logs.next_seq();
        let state = match crate::daemon::guard(|| slot.daemon.lock().snapshot()) {
            crate::daemon::Guarded::Ok(Ok(state)) => state,
            crate::daemon::Guarded::Ok(Err(e)) => {
                return Err(MigrationError::Failed(format!("snapshot: {e}")));
            }
            crate::daemon::Guarded::Panicked(p) => {
                return Err(MigrationError::Failed(format!("snapshot panicked: {p}")));
            }
        };
        if state.len() > MAX_MIGRATION_STATE {
            return Err(MigrationError::Failed(format!(
                "state of {} bytes exceeds {MAX_MIGRATION_STATE}",
                state.len()
            )));
        }
        // Transfer, then wait for Restore.
        self.set_phase(id, MigrationPhase::Transfer, None);
        let offer = Zeroizing::new(
            MigrateMessage::Offer {
                id,
                name: slot.name.clone(),
                kind,
                key_seed: *slot.keypair.secret_seed(),
                state: state.clone(),
                started_at_ms: slot.started_at_ms,
            }
            .encode(),
        );
        let bytes = state.len() as u64;
        let restored = self
            .exchange(
                &handle,
                target,
                &offer,
                &mut replies,
                &cancel,
                stall,
                |m| match m {
                    MigrateMessage::Restored { id: r } if *r == id => Some(Ok(())),
                    MigrateMessage::Refused { id: r, reason } if *r == id => {
                        Some(Err(reason.clone()))
                    }
                    _ => None,
                },
                || self.set_phase(id, MigrationPhase::Restore, Some(bytes)),
            )
            .await;
        match restored {
            Step::Done(Ok(())) => {}
            Step::Done(Err(reason)) => {
                return Err(MigrationError::TargetRefuses { target, reason });
            }
            Step::Cancelled => {
                let _ =
                    handle.send(target, MIGRATE_KIND, &MigrateMessage::Abort { id }.encode()).await;
                return Err(MigrationError::Cancelled);
            }
            Step::Stalled(what) => {
                let _ =
                    handle.send(target, MIGRATE_KIND, &MigrateMessage::Abort { id }.encode()).await;
                return Err(MigrationError::Failed(what));
            }
        }
        // Replay: lines this daemon published since the snapshot.
        self.set_phase(id, MigrationPhase::Replay, Some(bytes));
        let replay: Vec<ReplayLine> = self
            .rings
            .lock()
            .logs
            .since(log_start, usize::MAX)
            .into_iter()
            .filter(|l| l.daemon == Some(slot.id))
            .map(|l| ReplayLine { ts_ms: l.ts_ms, level: l.level, message: l.message })
            .collect();
        // Cutover: past this point cancellation is no longer honoured.
        self.set_phase(id, MigrationPhase::Cutover, Some(bytes));
        let cutover = MigrateMessage::Cutover { id, replay }.encode();
        let never = Arc::new(Notify::new());
        let done = self
            .exchange(
                &handle,
                target,
                &cutover,
                &mut replies,
                &never,
                stall,
                |m| match m {
                    MigrateMessage::Done { id: r } if *r == id => Some(Ok::<(), String>(())),
                    _ => None,
                },
                || {},
            )
            .await;
        match done {
            Step::Done(_) => {
                // The target runs it now; let go here (only this exact slot).
                self.remove_daemon_slot(&slot);
                Ok(())
            }
            Step::Cancelled => Err(MigrationError::Cancelled),
            Step::Stalled(what) => {
                let _ =
                    handle.send(target, MIGRATE_KIND, &MigrateMessage::Abort { id }.encode()).await;
                Err(MigrationError::Failed(what))
            }
        }
    }

    /// Sends `message` until a reply matches, the stall timeout passes, or the
    /// migration is cancelled.
    #[allow(clippy::too_many_arguments, reason = "one private step of the migration driver")]
    async fn exchange<T>(
        &self,
        handle: &MeshHandle,
        target: NodeId,
        message: &[u8],
        replies: &mut mpsc::UnboundedReceiver<MigrateMessage>,
        cancel: &Notify,
        stall: Duration,
        matches: impl Fn(&MigrateMessage) -> Option<T>,
        sent: impl Fn(),
    ) -> Step<T> {
        let deadline = tokio::time::Instant::now() + stall;
        loop {
            if let Err(e) = handle.send(target, MIGRATE_KIND, message).await {
                if tokio::time::Instant::now() >= deadline {
                    return Step::Stalled(format!("target unreachable: {e}"));
                }
            } else {
                sent();
            }
            let resend_at = (tokio::time::Instant::now() + RESEND).min(deadline);
            loop {
                tokio::select! {
                    _ = cancel.notified() => return Step::Cancelled,
                    reply = replies.recv() => match reply {
                        Some(reply) => {
                            if let Some(result) = matches(&reply) {
                                return Step::Done(result);
                            }
                        }
                        None => return Step::Stalled("node shutting down".into()),
                    },
                    _ = tokio::time::sleep_until(resend_at) => break,
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Step::Stalled(format!("no progress for {} ms", stall.as_millis()));
            }
        }
    }

    fn finish_migration(
        &self,
        id: MigrationId,
        slot: &Arc<DaemonSlot>,
        result: Result<(), MigrationError>,
    ) {
        let phase = match &result {
            Ok(()) => MigrationPhase::Complete,
            Err(MigrationError::Cancelled) => MigrationPhase::Cancelled,
            // The reason may carry a factory's or a peer's text: escape it before
            // it reaches the summary peers will check.
            Err(e) => MigrationPhase::Failed { reason: crate::logs::sanitize(&e.to_string()) },
        };
        if result.is_err() {
            // The daemon stays here and goes back to work.
            let mut st = slot.state.lock();
            if st.lifecycle == Lifecycle::Migrating {
                st.lifecycle = Lifecycle::Running;
            }
        }
        let target = self.migrations.lock().outgoing.get(&id).map(|m| m.summary.target);
        match &result {
            Ok(()) => tracing::info!(migration = %id, daemon = %slot.name, "migration complete"),
            Err(MigrationError::Cancelled) => {
                self.record_failure(
                    "migration_cancelled",
                    &slot.name,
                    &format!("{id} cancelled by operator"),
                );
            }
            Err(e) => {
                self.record_failure("migration_failed", &slot.name, &format!("{id}: {e}"));
                if let (Some(target), Err(MigrationError::Failed(_))) = (target, &result) {
                    let mut admin = self.admin.lock();
                    if !admin.avoid.contains(&target) {
                        admin.avoid.push(target);
                    }
                }
            }
        }
        self.set_phase(id, phase, None);
        if let Some(m) = self.migrations.lock().outgoing.get_mut(&id) {
            m.finished_at = Some(Instant::now());
        }
    }

    /// Cancels an outgoing migration by id (KillMigration). False if unknown.
    pub(crate) fn cancel_migration(&self, id: MigrationId) -> bool {
        let migrations = self.migrations.lock();
        match migrations.outgoing.get(&id) {
            Some(m) if !m.summary.phase.is_terminal() => {
                m.cancel.notify_one();
                true
            }
            _ => false,
        }
    }

    /// Drops finished migrations and stale incoming moves.
    pub(crate) fn gc_migrations(&self, now: Instant) {
        let stall = self.config.timing.migration_stall;
        let mut m = self.migrations.lock();
        m.outgoing.retain(|_, o| {
            o.finished_at.is_none_or(|t| now.saturating_duration_since(t) < KEEP_FINISHED)
        });
        m.incoming.retain(|_, i| i.done || now.saturating_duration_since(i.received) < stall * 2);
        m.incoming
            .retain(|_, i| !i.done || now.saturating_duration_since(i.received) < KEEP_FINISHED);
    }

    /// Handles migration traffic from a peer.
    pub(crate) async fn on_migrate_message(self: &Arc<Self>, message: Incoming) {
        let decoded = match MigrateMessage::decode(&message.payload) {
            Ok(m) => m,
            Err(_) => {
                Counters::bump(&self.counters.malformed);
                return;
            }
        };
        let handle = MeshHandle { inner: self.clone() };
        let from = message.from;
        match decoded {
            MigrateMessage::Offer { id, name, kind, key_seed, state, started_at_ms } => {
                let key_seed = Zeroizing::new(key_seed);
                // The factory is the daemon author's code and may take its
                // time: it runs on the blocking pool, not on an async worker.
                let inner = self.clone();
                let restore = tokio::task::spawn_blocking(move || {
                    inner.accept_offer(id, from, &name, &kind, &key_seed, &state, started_at_ms)
                });
                let reply = match restore.await {
                    Ok(reply) => reply,
                    Err(e) => {
                        MigrateMessage::Refused { id, reason: format!("restore task failed: {e}") }
                    }
                };
                let _ = handle.send(from, MIGRATE_KIND, &reply.encode()).await;
            }
            MigrateMessage::Cutover { id, replay } => {
                if self.activate_incoming(id, from, replay) {
                    let _ = handle
                        .send(from, MIGRATE_KIND, &MigrateMessage::Done { id }.encode())
                        .await;
                }
            }
            MigrateMessage::Abort { id } => {
                let mut m = self.migrations.lock();
                if m.incoming.get(&id).is_some_and(|i| i.source == from && !i.done) {
                    m.incoming.remove(&id);
                }
            }
            reply @ (MigrateMessage::Restored { id }
            | MigrateMessage::Refused { id, .. }
            | MigrateMessage::Done { id }) => {
                let m = self.migrations.lock();
                if let Some(o) = m.outgoing.get(&id).filter(|o| o.summary.target == from) {
                    let _ = o.replies.send(reply);
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments, reason = "the fields of one offer")]
    fn accept_offer(
        &self,
        id: MigrationId,
        from: NodeId,
        name: &str,
        kind: &str,
        key_seed: &[u8; 32],
        state: &[u8],
        started_at_ms: u64,
    ) -> MigrateMessage {
        let refuse = |reason: String| MigrateMessage::Refused { id, reason };
        if self.migrations.lock().incoming.contains_key(&id) {
            return MigrateMessage::Restored { id }; // A resent offer.
        }
        if self.config.flags & crate::config::NODE_FLAG_OPERATOR != 0 {
            return refuse("operator nodes run no daemons".into());
        }
        let now_ms = mesh_auth::unix_now_ms();
        let admin = self.admin.lock().clone();
        if admin.refuses_placements(now_ms) {
            return refuse(format!("node is {}", admin.label(now_ms)));
        }
        if crate::daemon::validate_name(name).is_err() || state.len() > MAX_MIGRATION_STATE {
            return refuse("malformed offer".into());
        }
        let Some(factory) = self.migrations.lock().factories.get(kind).cloned() else {
            return refuse(format!("no factory for kind {kind:?}"));
        };
        let keypair = EntityKeypair::from_seed(key_seed);
        if self.daemons.read().contains_key(&keypair.origin_hash()) {
            return refuse("daemon already runs here".into());
        }
        let daemon = match crate::daemon::guard(|| factory(state)) {
            crate::daemon::Guarded::Ok(Ok(d)) => d,
            crate::daemon::Guarded::Ok(Err(e)) => return refuse(format!("restore failed: {e}")),
            crate::daemon::Guarded::Panicked(p) => return refuse(format!("restore panicked: {p}")),
        };
        let slot = Arc::new(DaemonSlot::new(keypair, daemon, name.to_owned(), started_at_ms));
        self.migrations
            .lock()
            .incoming
            .insert(id, IncomingMove { slot, source: from, received: Instant::now(), done: false });
        MigrateMessage::Restored { id }
    }

    /// Activates a restored daemon; true when it is (or already was) active.
    fn activate_incoming(&self, id: MigrationId, from: NodeId, replay: Vec<ReplayLine>) -> bool {
        let slot = {
            let mut m = self.migrations.lock();
            let Some(incoming) = m.incoming.get_mut(&id).filter(|i| i.source == from) else {
                return false;
            };
            if incoming.done {
                return true;
            }
            incoming.done = true;
            incoming.received = Instant::now();
            incoming.slot.clone()
        };
        let mut lines: Vec<crate::daemon::PendingLine> = replay
            .into_iter()
            .map(|l| crate::daemon::PendingLine {
                ts_ms: l.ts_ms,
                daemon: Some(slot.id),
                level: l.level,
                message: l.message,
            })
            .collect();
        self.store_lines(&mut lines);
        if self.insert_daemon(slot).is_err() {
            tracing::warn!(migration = %id, "migrated daemon already registered here");
        }
        true
    }
}

enum Step<T> {
    Done(T),
    Cancelled,
    Stalled(String),
}

pub(super) async fn migrate_loop(inner: Arc<Inner>, mut rx: Subscription) {
    let mut stop = super::tasks::Stop::of(&inner);
    loop {
        tokio::select! {
            biased;
            () = stop.wait() => break,
            message = rx.recv() => match message {
                Some(message) => inner.on_migrate_message(message).await,
                None => break,
            },
        }
    }
}
