//! Applying signed admin commands: verify, record in the audit ledger, apply.

use mesh_auth::{AuditRecord, CommandClass, SignedEnvelope};

use super::*;
use crate::admin::{AdminCommand, AdminOutcome, simulate};
use crate::daemon::DaemonControl;

impl Inner {
    /// Verifies, records and applies one envelope. Every outcome is recorded in
    /// the ledger, accepted or not (a node without a verifier records its refusal).
    pub(crate) fn apply_admin(self: &Arc<Self>, envelope: &SignedEnvelope) -> AdminOutcome {
        let Some(verifier) = self.config.admin_verifier.clone() else {
            let (code, reason) = (
                "no_verifier".to_owned(),
                "this node has no admin verifier installed; it refuses every command".to_owned(),
            );
            let record = AuditRecord {
                ts_ms: mesh_auth::unix_now_ms(),
                operators: Vec::new(),
                class: envelope.body.class,
                target: envelope.body.target.clone(),
                payload_digest: envelope.body.payload_digest(),
                nonce: envelope.body.nonce,
                outcome: mesh_auth::AuditOutcome::Rejected {
                    code: code.clone(),
                    detail: reason.clone(),
                },
            };
            let audit_seq = self.ledger.lock().append(record).ok().map(|entry| entry.seq);
            self.dirty.store(true, Ordering::Release);
            return AdminOutcome::Rejected { code, reason, audit_seq };
        };
        let now_ms = mesh_auth::unix_now_ms();
        // The node's own checks run inside verification, so an ICE command this
        // node refuses does not start the target's cooldown.
        let verified =
            verifier.verify_with(envelope, now_ms, |_| self.check_command(envelope, now_ms));
        let (outcome_record, decision) = match verified {
            Err(rejection) => (
                AuditRecord::from_verification(envelope, Err(&rejection), now_ms),
                Err((rejection.reason.code().to_owned(), rejection.to_string())),
            ),
            Ok((v, checked)) => {
                let mut record = AuditRecord::from_verification(envelope, Ok(&v), now_ms);
                if let Err((code, reason)) = &checked {
                    record.outcome = mesh_auth::AuditOutcome::Rejected {
                        code: code.clone(),
                        detail: reason.clone(),
                    };
                }
                (record, checked)
            }
        };
        let audit_seq = match self.ledger.lock().append(outcome_record) {
            Ok(entry) => Some(entry.seq),
            Err(e) => {
                // Without a durable record the command must not take effect.
                tracing::error!(error = %e, "audit ledger append failed");
                return AdminOutcome::Rejected {
                    code: "audit_failed".into(),
                    reason: format!("audit ledger append failed: {e}"),
                    audit_seq: None,
                };
            }
        };
        self.dirty.store(true, Ordering::Release);
        match decision {
            Err((code, reason)) => AdminOutcome::Rejected { code, reason, audit_seq },
            Ok(command) => {
                let effect = self.apply_effect(&command, now_ms);
                self.persist_admin_state();
                self.push_now.store(true, Ordering::Release);
                AdminOutcome::Accepted { audit_seq: audit_seq.unwrap_or_default(), effect }
            }
        }
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

    /// When the freeze in force ends, if the cluster is frozen: the latest freeze
    /// or thaw applied by this node or reported by any cluster node's summary.
    fn cluster_frozen_until(&self, now_ms: u64) -> Option<u64> {
        let own = self.admin.lock().clone();
        let snapshot = self.snapshot.borrow().clone();
        let peers = snapshot.peers.iter().filter(|p| !p.info.is_operator()).map(|p| &p.admin);
        crate::admin::cluster_frozen_until(std::iter::once(&own).chain(peers), now_ms)
    }

    /// Checks that a verified envelope is a command this node should apply now.
    fn check_command(
        &self,
        envelope: &SignedEnvelope,
        now_ms: u64,
    ) -> Result<AdminCommand, (String, String)> {
        let command = AdminCommand::from_payload(&envelope.body.payload)
            .map_err(|reason| ("malformed".to_owned(), reason))?;
        if command.class() != envelope.body.class {
            return Err((
                "malformed".into(),
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
                "malformed".into(),
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
                "not_target".into(),
                format!("command is for node {node}, this is {}", self.node_id),
            ));
        }
        if command.class() == CommandClass::Routine
            && let Some(until) = self.cluster_frozen_until(now_ms)
        {
            return Err((
                "frozen".into(),
                format!(
                    "the cluster is frozen for {} ms more; routine commands are refused",
                    until.saturating_sub(now_ms)
                ),
            ));
        }
        if command.class() == CommandClass::Ice {
            let snapshot = self.snapshot.borrow().clone();
            let expected = simulate(&snapshot, &command).digest(&command);
            if envelope.body.blast_radius != Some(expected) {
                return Err((
                    "simulation_mismatch".into(),
                    "the blast radius signed does not match this node's simulation (the cluster changed); simulate again and re-sign".into(),
                ));
            }
        }
        Ok(command)
    }

    fn apply_effect(self: &Arc<Self>, command: &AdminCommand, now_ms: u64) -> String {
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
            AdminCommand::Freeze { ttl_ms } => {
                admin.frozen_until_ms = Some(now_ms.saturating_add(*ttl_ms));
                admin.freeze_set_at_ms = now_ms;
                format!("frozen for {ttl_ms} ms")
            }
            AdminCommand::Thaw => {
                admin.frozen_until_ms = None;
                admin.freeze_set_at_ms = now_ms;
                "thawed".into()
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
