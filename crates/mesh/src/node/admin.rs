//! Applying signed admin commands: verify, record in the audit ledger, apply.

use mesh_auth::{AuditRecord, CommandClass, SignedEnvelope};

use super::*;
use crate::admin::{AdminCommand, AdminOutcome, AdminRefusal, simulate};
use crate::daemon::DaemonControl;

/// Refused envelopes without a valid operator signature a peer may send per
/// second (and in a burst) before its envelopes are refused unread.
const UNSIGNED_PER_SECOND: f64 = 5.0;
const UNSIGNED_BURST: f64 = 20.0;
/// Buckets for that budget (peers hash into them).
const UNSIGNED_BUDGET_SLOTS: usize = 256;

pub(super) fn unsigned_budget() -> crate::budget::HashedBudget {
    crate::budget::HashedBudget::new(UNSIGNED_BUDGET_SLOTS, UNSIGNED_PER_SECOND, UNSIGNED_BURST)
}

impl Inner {
    /// Verifies, records and applies one envelope.
    ///
    /// `from` is the node that delivered it (`None` for this process itself).
    /// Only an envelope that carries at least one valid signature of a
    /// registered operator reaches the audit ledger, accepted or refused; any
    /// other is refused and counted (`refused.admin_unsigned`) without a ledger
    /// entry, and a peer that sends more of those than its budget allows is
    /// refused before any signature is checked (`refused.admin_rate_limited`).
    /// This call may block on the ledger's fsync: run it off the async runtime.
    pub(crate) fn apply_admin(
        self: &Arc<Self>,
        from: Option<NodeId>,
        envelope: &SignedEnvelope,
    ) -> AdminOutcome {
        if let Some(peer) = from
            && !self.admin_budget.lock().has(peer, Instant::now())
        {
            Counters::bump(&self.counters.admin_rate_limited);
            return AdminRefusal::RateLimited
                .outcome("too many envelopes without a valid operator signature from this node");
        }
        let Some(verifier) = self.config.admin_verifier.clone() else {
            Counters::bump(&self.counters.admin_unsigned);
            return AdminRefusal::NoVerifier
                .outcome("this node has no admin verifier installed; it refuses every command");
        };
        if let Err(e) = envelope.body.check_sizes() {
            self.count_unsigned(from);
            return AdminRefusal::Malformed.outcome(e.to_string());
        }
        let now_ms = mesh_auth::unix_now_ms();
        // The node's own checks run inside verification, so an ICE command this
        // node refuses does not start the target's cooldown.
        let verified =
            verifier.verify_with(envelope, now_ms, |_| self.check_command(envelope, now_ms));
        let (outcome_record, decision) = match verified {
            Err(rejection) => {
                if !verifier.has_operator_signature(envelope) {
                    // Nobody with an operator key stands behind it: it is not
                    // worth a ledger entry (nor a disk write).
                    self.count_unsigned(from);
                    return AdminOutcome::Rejected {
                        code: rejection.reason.code().to_owned(),
                        reason: rejection.to_string(),
                        audit_seq: None,
                    };
                }
                (
                    AuditRecord::from_verification(envelope, Err(&rejection), now_ms),
                    Err((rejection.reason.code(), rejection.to_string())),
                )
            }
            Ok((v, checked)) => {
                let mut record = AuditRecord::from_verification(envelope, Ok(&v), now_ms);
                if let Err((refusal, reason)) = &checked {
                    record.outcome = mesh_auth::AuditOutcome::Rejected {
                        code: refusal.code().to_owned(),
                        detail: reason.clone(),
                    };
                }
                (record, checked.map_err(|(refusal, reason)| (refusal.code(), reason)))
            }
        };
        let audit_seq = match self.ledger.lock().append(outcome_record) {
            Ok(entry) => Some(entry.seq),
            Err(e) => {
                // Without a durable record the command must not take effect.
                tracing::error!(error = %e, "audit ledger append failed");
                return AdminRefusal::AuditFailed
                    .outcome(format!("audit ledger append failed: {e}"));
            }
        };
        self.dirty.store(true, Ordering::Release);
        match decision {
            Err((code, reason)) => {
                AdminOutcome::Rejected { code: code.to_owned(), reason, audit_seq }
            }
            Ok(command) => {
                let effect = self.apply_effect(&command, envelope, now_ms);
                self.persist_admin_state();
                self.push_now.store(true, Ordering::Release);
                AdminOutcome::Accepted { audit_seq: audit_seq.unwrap_or_default(), effect }
            }
        }
    }

    /// Counts an envelope no registered operator validly signed, against the
    /// budget of the peer that sent it.
    pub(super) fn count_unsigned(&self, from: Option<NodeId>) {
        Counters::bump(&self.counters.admin_unsigned);
        if let Some(peer) = from {
            self.admin_budget.lock().take(peer, Instant::now());
        }
    }

    /// Follows a freeze or thaw another node applied, if its summary carries
    /// operator signatures this node's verifier accepts and it is newer than
    /// the one in force here. Returns true if this node's state changed.
    pub(crate) fn adopt_freeze(&self, proof: &crate::admin::FreezeProof) -> bool {
        let Some(verifier) = &self.config.admin_verifier else { return false };
        let decision = match proof.check(verifier) {
            Ok(decision) => decision,
            Err(reason) => {
                tracing::debug!(%reason, "freeze proof in a peer's summary refused");
                return false;
            }
        };
        {
            let mut admin = self.admin.lock();
            if decision.set_at_ms <= admin.freeze_set_at_ms {
                return false;
            }
            admin.freeze_set_at_ms = decision.set_at_ms;
            admin.frozen_until_ms = decision.until_ms;
            admin.freeze_proof = Some(proof.clone());
        }
        tracing::info!(until = ?decision.until_ms, "following a freeze or thaw applied elsewhere in the cluster");
        self.persist_admin_state();
        self.push_now.store(true, Ordering::Release);
        true
    }

    /// Writes the admin state where the configuration says (if anywhere). A
    /// failure is logged: the command has taken effect, only its survival of a
    /// restart is lost.
    fn persist_admin_state(&self) {
        let Some(path) = &self.config.admin_state_path else { return };
        let state = self.admin.lock().clone();
        if let Err(e) = state.save(path) {
            tracing::error!(path = %path.display(), error = %e, "could not persist the admin state");
        }
    }

    /// When the freeze in force here ends, if the cluster is frozen. Only this
    /// node's own state counts: it holds the latest freeze or thaw whose
    /// operator signatures this node checked (applied here, or adopted from a
    /// peer's summary by [`Inner::adopt_freeze`]).
    fn cluster_frozen_until(&self, now_ms: u64) -> Option<u64> {
        self.admin.lock().frozen_until_ms.filter(|until| *until > now_ms)
    }

    /// Checks that a verified envelope is a command this node should apply now.
    fn check_command(
        &self,
        envelope: &SignedEnvelope,
        now_ms: u64,
    ) -> Result<AdminCommand, (AdminRefusal, String)> {
        let command = AdminCommand::from_payload(&envelope.body.payload)
            .map_err(|reason| (AdminRefusal::Malformed, reason))?;
        if command.class() != envelope.body.class {
            return Err((
                AdminRefusal::Malformed,
                format!(
                    "{} is a {} command, signed as {}",
                    command.verb(),
                    command.class(),
                    envelope.body.class
                ),
            ));
        }
        if command.target() != envelope.body.target {
            return Err((
                AdminRefusal::Malformed,
                format!(
                    "signed target {:?} does not match the command's {:?}",
                    envelope.body.target,
                    command.target()
                ),
            ));
        }
        if let Some(node) = command.node()
            && node != self.node_id
        {
            return Err((
                AdminRefusal::NotTarget,
                format!("command is for node {node}, this is {}", self.node_id),
            ));
        }
        if command.class() == CommandClass::Routine
            && let Some(until) = self.cluster_frozen_until(now_ms)
        {
            return Err((
                AdminRefusal::Frozen,
                format!(
                    "the cluster is frozen for {} ms more; routine commands are refused",
                    until.saturating_sub(now_ms)
                ),
            ));
        }
        if command.class() == CommandClass::Ice {
            let snapshot = self.fresh_snapshot();
            let expected = simulate(&snapshot, &command).digest(&command);
            if envelope.body.blast_radius != Some(expected) {
                return Err((
                    AdminRefusal::SimulationMismatch,
                    "the blast radius signed does not match this node's simulation (the cluster changed); simulate again and re-sign".into(),
                ));
            }
        }
        Ok(command)
    }

    fn apply_effect(
        self: &Arc<Self>,
        command: &AdminCommand,
        envelope: &SignedEnvelope,
        now_ms: u64,
    ) -> String {
        let mut admin = self.admin.lock();
        match command {
            AdminCommand::Cordon { .. } => {
                admin.cordoned = true;
                "cordoned: no new placements".into()
            }
            AdminCommand::Uncordon { .. } => {
                admin.cordoned = false;
                admin.draining_until_ms = None;
                "uncordoned".into()
            }
            AdminCommand::EnterMaintenance { window_ms, .. } => {
                admin.maintenance_until_ms =
                    Some(window_ms.map_or(u64::MAX, |w| now_ms.saturating_add(w)));
                match window_ms {
                    Some(w) => format!("in maintenance for {w} ms"),
                    None => "in maintenance until exited".into(),
                }
            }
            AdminCommand::ExitMaintenance { .. } => {
                admin.maintenance_until_ms = None;
                "maintenance ended".into()
            }
            AdminCommand::ClearAvoidList { .. } | AdminCommand::FlushAvoidLists => {
                let n = admin.avoid.len();
                admin.avoid.clear();
                format!("avoid list cleared ({n} entries)")
            }
            AdminCommand::Freeze { .. } | AdminCommand::Thaw => {
                // Timed from the envelope's issue, so every node that applies or
                // adopts it agrees on when it ends.
                let issued = envelope.body.issued_at_ms;
                let Some(decision) = crate::admin::FreezeDecision::of(command, issued) else {
                    return "nothing to do".into();
                };
                if decision.set_at_ms < admin.freeze_set_at_ms {
                    return "a later freeze or thaw is already in force; nothing changed".into();
                }
                admin.freeze_set_at_ms = decision.set_at_ms;
                admin.frozen_until_ms = decision.until_ms;
                admin.freeze_proof = Some(crate::admin::FreezeProof::new(envelope));
                match decision.until_ms {
                    Some(until) => {
                        format!("frozen for {} ms", until.saturating_sub(now_ms))
                    }
                    None => "thawed".into(),
                }
            }
            AdminCommand::Drain { window_ms, .. } => {
                admin.cordoned = true;
                admin.draining_until_ms = Some(now_ms.saturating_add(*window_ms));
                drop(admin);
                let moved = self.start_drain(Duration::from_millis(*window_ms));
                format!("draining for {window_ms} ms; moving {moved} migratable daemon(s)")
            }
            AdminCommand::RestartDaemons { .. } => {
                drop(admin);
                let slots: Vec<_> = self.daemons.read().values().cloned().collect();
                for slot in &slots {
                    slot.enqueue(DaemonControl::Restart);
                }
                format!("restarting {} daemon(s)", slots.len())
            }
            AdminCommand::ForceRestartDaemon { daemon, .. } => {
                drop(admin);
                match self.daemons.read().get(daemon) {
                    Some(slot) => {
                        slot.force_restart();
                        format!("daemon {daemon} restarted")
                    }
                    None => format!("daemon {daemon} is not on this node; nothing to restart"),
                }
            }
            AdminCommand::KillMigration { migration, .. } => {
                drop(admin);
                if self.cancel_migration(*migration) {
                    format!("migration {migration} cancelled")
                } else {
                    format!("migration {migration} is not in flight here; nothing to cancel")
                }
            }
        }
    }

    /// DrainStart to every daemon, moves migratable ones to other nodes, and
    /// DrainFinish when the window ends. Returns how many moves started.
    fn start_drain(self: &Arc<Self>, window: Duration) -> usize {
        let slots: Vec<_> = self.daemons.read().values().cloned().collect();
        for slot in &slots {
            slot.enqueue(DaemonControl::DrainStart);
        }
        let mut targets: Vec<NodeId> = self
            .live_peers()
            .into_iter()
            .filter(|t| self.placement_refusal(*t).is_none())
            .collect();
        targets.sort();
        let mut moved = 0;
        for (i, slot) in slots.iter().filter(|s| s.kind.is_some()).enumerate() {
            if targets.is_empty() {
                break;
            }
            let target = targets[i % targets.len()];
            match self.start_migration(slot.id, target) {
                Ok(_) => moved += 1,
                Err(e) => self.record_failure("drain_move_failed", &slot.name, &e.to_string()),
            }
        }
        let inner = Arc::downgrade(self);
        tokio::spawn(async move {
            tokio::time::sleep(window).await;
            if let Some(inner) = inner.upgrade() {
                for slot in inner.daemons.read().values() {
                    slot.enqueue(DaemonControl::DrainFinish);
                }
            }
        });
        moved
    }
}
