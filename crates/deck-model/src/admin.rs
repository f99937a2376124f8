//! Signed admin actions: prepare, review the blast radius, confirm.
//!
//! The verbs a front end offers, what each acts on and asks for, and the command
//! each becomes are [`AdminVerb`]'s ([`Target`], [`TargetKind`], [`PromptSpec`]).
//! [`Admin`] builds an [`AdminCommand`] for each thing an operator can do, runs the
//! blast-radius simulation (`mesh::simulate`) on the current snapshot and returns a
//! [`PendingAction`] to show the operator. Nothing leaves the deck until the
//! operator confirms; then [`Admin::confirm`] checks that the simulation still
//! gives the same result (if the cluster changed, it refuses with the fresh action
//! to review), signs one envelope per target node with its operator identity and
//! any co-signers (ICE envelopes carry the blast-radius digest), sends it to every
//! targeted node (node-scoped commands to that node; cluster-wide ones to every
//! node, this one included) and reports each node's outcome ([`commit`]). There
//! is no way to send an unsigned command through the deck.
//!
//! One envelope per node (each with its own nonce) keeps a cluster-wide command
//! valid on nodes that share a verifier's replay cache, and means a node can never
//! be handed an envelope meant for another.

use std::time::Duration;

use mesh::{AdminCommand, MigrationId, NodeId, OriginHash};

use crate::error::DeckError;
use crate::pending::PendingAction;
use crate::report::CommitReport;
use crate::source::DeckSource;

mod commit;
mod verb;

pub use verb::{AdminVerb, MAX_DURATION, PromptSpec, Target, TargetKind, parse_duration};
use verb::{daemon_node, migration_source, ms};

/// Prepares admin actions on a deck (see the module docs).
#[derive(Clone, Copy)]
pub struct Admin<'a> {
    source: &'a dyn DeckSource,
}

impl std::fmt::Debug for Admin<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin").field("operator", &self.source.operator()).finish()
    }
}

impl<'a> Admin<'a> {
    /// Admin actions through `source`.
    pub fn new(source: &'a dyn DeckSource) -> Admin<'a> {
        Admin { source }
    }

    /// Simulates any command on the current snapshot.
    pub fn prepare(&self, command: AdminCommand) -> PendingAction {
        PendingAction::prepare(command, &self.source.current_snapshot())
    }

    /// No new placements on `node`.
    pub fn cordon(&self, node: NodeId) -> PendingAction {
        self.prepare(AdminCommand::Cordon { node })
    }

    /// Lift a cordon (and end a drain).
    pub fn uncordon(&self, node: NodeId) -> PendingAction {
        self.prepare(AdminCommand::Uncordon { node })
    }

    /// Cordon, drain daemons for `window`, move migratable ones elsewhere.
    pub fn drain(&self, node: NodeId, window: Duration) -> PendingAction {
        self.prepare(AdminCommand::Drain { node, window_ms: ms(window) })
    }

    /// Maintenance on, for `window` or until exited.
    pub fn maintenance_on(&self, node: NodeId, window: Option<Duration>) -> PendingAction {
        self.prepare(AdminCommand::EnterMaintenance { node, window_ms: window.map(ms) })
    }

    /// Maintenance off.
    pub fn maintenance_off(&self, node: NodeId) -> PendingAction {
        self.prepare(AdminCommand::ExitMaintenance { node })
    }

    /// Restart every daemon on `node`.
    pub fn restart_daemons(&self, node: NodeId) -> PendingAction {
        self.prepare(AdminCommand::RestartDaemons { node })
    }

    /// Forget `node`'s avoid list.
    pub fn clear_avoid_list(&self, node: NodeId) -> PendingAction {
        self.prepare(AdminCommand::ClearAvoidList { node })
    }

    /// ICE: refuse routine commands cluster-wide for `ttl`.
    pub fn freeze(&self, ttl: Duration) -> PendingAction {
        self.prepare(AdminCommand::Freeze { ttl_ms: ms(ttl) })
    }

    /// ICE: lift a freeze.
    pub fn thaw(&self) -> PendingAction {
        self.prepare(AdminCommand::Thaw)
    }

    /// ICE: restart one daemon now, on the node the snapshot places it.
    pub fn force_restart_daemon(&self, daemon: OriginHash) -> Result<PendingAction, DeckError> {
        let snapshot = self.source.current_snapshot();
        let node = daemon_node(&snapshot, daemon)?;
        Ok(PendingAction::prepare(AdminCommand::ForceRestartDaemon { daemon, node }, &snapshot))
    }

    /// ICE: cancel a migration in flight (sent to its source node).
    pub fn kill_migration(&self, migration: MigrationId) -> Result<PendingAction, DeckError> {
        let snapshot = self.source.current_snapshot();
        let node = migration_source(&snapshot, migration)?;
        Ok(PendingAction::prepare(AdminCommand::KillMigration { migration, node }, &snapshot))
    }

    /// ICE: forget every node's avoid list.
    pub fn flush_avoid_lists(&self) -> PendingAction {
        self.prepare(AdminCommand::FlushAvoidLists)
    }

    /// Prepares what an operator asked for: `verb` on `target`, with the
    /// duration asked for if the verb has a prompt ([`AdminVerb::command`] says
    /// what can be missing).
    pub fn prepare_verb(
        &self,
        verb: AdminVerb,
        target: Target,
        duration: Option<Duration>,
    ) -> Result<PendingAction, DeckError> {
        let snapshot = self.source.current_snapshot();
        let command = verb.command(target, duration, &snapshot)?;
        Ok(PendingAction::prepare(command, &snapshot))
    }

    /// Signs and sends a reviewed action; returns every target's outcome.
    ///
    /// Fails without sending anything if the blast radius changed since the action
    /// was prepared ([`DeckError::BlastRadiusChanged`] carries the fresh one).
    pub async fn confirm(&self, pending: &PendingAction) -> Result<CommitReport, DeckError> {
        commit::commit(self.source, pending).await
    }
}
