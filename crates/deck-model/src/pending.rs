//! [`PendingAction`]: an admin command simulated on a snapshot, waiting for the
//! operator's review.
//!
//! What the command would touch (its blast radius, `mesh::simulate`) and the
//! nodes it goes to are fixed here, on the snapshot the operator sees; the commit
//! path ([`crate::Admin::confirm`]) simulates again before signing and refuses if
//! the result moved.

use mesh::{AdminCommand, BlastRadius, MeshSnapshot, NodeId};
use mesh_auth::{CommandClass, OperatorId, OperatorIdentity};

use crate::table::{Cell, Style};

/// An action prepared and simulated, waiting for the operator's confirmation.
#[derive(Clone, Debug)]
pub struct PendingAction {
    /// The command.
    pub command: AdminCommand,
    /// What it would touch, simulated on the snapshot below.
    pub radius: BlastRadius,
    /// `radius.digest(&command)`: what ICE envelopes carry.
    pub digest: [u8; 32],
    /// The nodes it will be sent to.
    pub targets: Vec<NodeId>,
    /// The snapshot sequence number simulated on.
    pub snapshot_seq: u64,
    /// Extra operators who sign too (for thresholds above 1).
    pub(crate) cosigners: Vec<OperatorIdentity>,
}

impl PendingAction {
    /// Simulates `command` on `snapshot`.
    pub fn prepare(command: AdminCommand, snapshot: &MeshSnapshot) -> PendingAction {
        let radius = mesh::simulate(snapshot, &command);
        let digest = radius.digest(&command);
        let targets = match command.node() {
            Some(node) => vec![node],
            // Every node of the cluster; attached decks (operator nodes) are not.
            None => snapshot.cluster_nodes().collect(),
        };
        PendingAction {
            command,
            radius,
            digest,
            targets,
            snapshot_seq: snapshot.seq,
            cosigners: Vec::new(),
        }
    }

    /// Break-glass (ICE) command: needs the ICE threshold and carries the digest.
    pub fn is_ice(&self) -> bool {
        self.command.class() == CommandClass::Ice
    }

    /// Adds an operator who signs too (for a threshold above 1).
    pub fn cosign(mut self, identity: OperatorIdentity) -> PendingAction {
        if !self.cosigners.iter().any(|c| c.public() == identity.public()) {
            self.cosigners.push(identity);
        }
        self
    }

    /// Operators added with [`PendingAction::cosign`].
    pub fn cosigners(&self) -> Vec<OperatorId> {
        self.cosigners.iter().map(OperatorIdentity::operator_id).collect()
    }

    /// Lines for a confirmation dialog: the command, what it touches, warnings.
    pub fn describe(&self) -> Vec<Cell> {
        let mut lines = vec![
            Cell::new(format!(
                "{} {}{}",
                self.command.verb(),
                self.command.target(),
                if self.is_ice() { "  [ICE: break-glass]" } else { "" }
            ))
            .styled(if self.is_ice() { Style::Err } else { Style::Accent }),
            Cell::new(format!(
                "touches {} node(s), {} daemon(s), {} migration(s); sent to {} node(s)",
                self.radius.nodes.len(),
                self.radius.daemons.len(),
                self.radius.migrations.len(),
                self.targets.len()
            )),
        ];
        for w in &self.radius.warnings {
            lines.push(Cell::untrusted(&format!("warning: {w}"), 200).styled(Style::Warn));
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit;
    use mesh_auth::EntityKeypair;

    #[test]
    fn targets_ice_and_cosigners() {
        let snap = testkit::snapshot(3, Vec::new());
        let me = snap.this_node.node_id;
        let cordon = PendingAction::prepare(AdminCommand::Cordon { node: me }, &snap);
        assert_eq!(cordon.targets, vec![me]);
        assert!(!cordon.is_ice());
        let freeze = PendingAction::prepare(AdminCommand::Freeze { ttl_ms: 1000 }, &snap);
        assert_eq!(freeze.targets.len(), 3);
        assert!(freeze.is_ice());
        assert!(freeze.describe().iter().any(|c| c.text.starts_with("warning:")));
        let b = OperatorIdentity::from_keypair(EntityKeypair::from_seed(&[2; 32]));
        let twice = freeze.cosign(b.clone()).cosign(b);
        assert_eq!(twice.cosigners().len(), 1);
    }
}
