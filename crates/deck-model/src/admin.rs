//! Signed admin actions: prepare, review the blast radius, confirm.
//!
//! [`Admin`] builds an [`AdminCommand`] for each thing an operator can do, runs the
//! blast-radius simulation (`mesh::simulate`) on the current snapshot and returns a
//! [`PendingAction`] to show the operator. Nothing leaves the deck until the
//! operator confirms; then the deck checks that the simulation still gives the
//! same result (if the cluster changed, it refuses with the fresh action to
//! review), signs one envelope per target node with its operator identity and any
//! co-signers (ICE envelopes carry the blast-radius digest), sends it to every
//! targeted node (node-scoped commands to that node; cluster-wide ones to every
//! node, this one included) and reports each node's outcome. There is no way to
//! send an unsigned command through the deck.
//!
//! One envelope per node (each with its own nonce) keeps a cluster-wide command
//! valid on nodes that share a verifier's replay cache, and means a node can never
//! be handed an envelope meant for another.

use std::time::Duration;

use mesh::{
    AdminCommand, AdminOutcome, BlastRadius, MeshSnapshot, MigrationId, NodeId, OriginHash,
};
use mesh_auth::{CommandClass, EnvelopeDraft, OperatorId, OperatorIdentity, SignedEnvelope};
use serde::Serialize;

use crate::client::DeckSource;
use crate::error::DeckError;
use crate::table::{Cell, Style};
use crate::text;

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

/// What happened on one node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "result")]
pub enum NodeResult {
    /// Verified, recorded, applied.
    Accepted {
        /// Its audit ledger entry.
        audit_seq: u64,
        /// What it did.
        effect: String,
    },
    /// Refused by the node (and recorded in its ledger when it has one).
    Rejected {
        /// Stable reason code (`not_authorized`, `frozen`, ...).
        code: String,
        /// Why, in words.
        reason: String,
        /// Its audit ledger entry, if recorded.
        audit_seq: Option<u64>,
    },
    /// The command did not reach the node (or its answer did not come back).
    NotDelivered {
        /// What the RPC layer said.
        error: String,
    },
}

impl NodeResult {
    /// True when accepted.
    pub fn is_accepted(&self) -> bool {
        matches!(self, NodeResult::Accepted { .. })
    }

    /// What happened, in words for a dialog line (`accepted  audit #3  cordoned`,
    /// `rejected  not_authorized: ...`, `not reached  ...`). Every string the node
    /// (or the RPC layer) sent is escaped and capped ([`text::clean`]).
    pub fn describe(&self) -> String {
        match self {
            NodeResult::Accepted { audit_seq, effect } => {
                format!("accepted  audit #{audit_seq}  {}", text::message(effect))
            }
            NodeResult::Rejected { code, reason, .. } => {
                let (code, reason) = (text::name(code), text::message(reason));
                // Reasons usually start with their code already.
                if reason.starts_with(code.as_str()) {
                    format!("rejected  {reason}")
                } else {
                    format!("rejected  {code}: {reason}")
                }
            }
            NodeResult::NotDelivered { error } => format!("not reached  {}", text::message(error)),
        }
    }
}

impl From<AdminOutcome> for NodeResult {
    fn from(o: AdminOutcome) -> Self {
        match o {
            AdminOutcome::Accepted { audit_seq, effect } => {
                NodeResult::Accepted { audit_seq, effect }
            }
            AdminOutcome::Rejected { code, reason, audit_seq } => {
                NodeResult::Rejected { code, reason, audit_seq }
            }
        }
    }
}

/// One node's outcome.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NodeOutcome {
    /// The node.
    pub node: NodeId,
    /// What happened there.
    pub result: NodeResult,
}

/// The result of a confirmed action.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CommitReport {
    /// The command's verb (`cordon`, `freeze`, ...).
    pub verb: &'static str,
    /// The signed target.
    pub target: String,
    /// blake3 of the command payload (what audit entries record).
    pub payload_digest: [u8; 32],
    /// Operators who signed.
    pub signers: Vec<OperatorId>,
    /// When it was sent (ms since the Unix epoch).
    pub sent_at_ms: u64,
    /// Per node, in target order.
    pub outcomes: Vec<NodeOutcome>,
}

impl CommitReport {
    /// True when every target accepted.
    pub fn all_accepted(&self) -> bool {
        !self.outcomes.is_empty() && self.outcomes.iter().all(|o| o.result.is_accepted())
    }

    /// Targets that accepted.
    pub fn accepted(&self) -> usize {
        self.outcomes.iter().filter(|o| o.result.is_accepted()).count()
    }

    /// One line for the status bar: what was done and how it went, with the
    /// first rejection reason.
    pub fn summary(&self) -> String {
        let n = self.outcomes.len();
        let ok = self.accepted();
        let mut line = format!("{} {}: accepted by {ok}/{n}", self.verb, self.target);
        if let Some(o) = self.outcomes.iter().find(|o| !o.result.is_accepted()) {
            match &o.result {
                NodeResult::Rejected { code, reason, .. } => {
                    line.push_str(&format!("; {} rejected ({code}): {reason}", o.node.short()));
                }
                NodeResult::NotDelivered { error } => {
                    line.push_str(&format!("; {} not reached: {error}", o.node.short()));
                }
                NodeResult::Accepted { .. } => {}
            }
        }
        text::message(&line)
    }

    /// The result dialog's lines: a headline (`freeze cluster/freeze: accepted by
    /// 2/3`), then one line per node. Every string from the nodes is escaped
    /// and capped, so a hostile node cannot write to the operator's terminal.
    pub fn lines(&self) -> Vec<Cell> {
        let ok = if self.all_accepted() { Style::Ok } else { Style::Err };
        let headline = format!(
            "{} {}: accepted by {}/{}",
            self.verb,
            text::name(&self.target),
            self.accepted(),
            self.outcomes.len()
        );
        let mut lines = vec![Cell::new(headline).styled(ok)];
        lines.extend(self.outcomes.iter().map(|o| {
            let style = if o.result.is_accepted() { Style::Ok } else { Style::Err };
            Cell::new(format!("{}  {}", o.node.short(), o.result.describe())).styled(style)
        }));
        lines
    }

    /// [`CommitReport::summary`] as a styled cell.
    pub fn summary_cell(&self) -> Cell {
        Cell::new(self.summary()).styled(if self.all_accepted() { Style::Ok } else { Style::Err })
    }
}

/// Signs `command` for one node: the deck's operator first, then co-signers.
pub(crate) fn sign(
    signers: &[&OperatorIdentity],
    command: &AdminCommand,
    digest: [u8; 32],
) -> Option<SignedEnvelope> {
    let (first, rest) = signers.split_first()?;
    let mut draft = EnvelopeDraft::new(command.class(), command.target(), command.to_payload());
    if command.class() == CommandClass::Ice {
        draft = draft.blast_radius(digest);
    }
    let mut envelope = first.sign_command(draft);
    for s in rest {
        s.cosign(&mut envelope);
    }
    Some(envelope)
}

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

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
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
        let node = snapshot.daemon(daemon).ok_or(DeckError::UnknownDaemon(daemon))?.node;
        Ok(PendingAction::prepare(AdminCommand::ForceRestartDaemon { daemon, node }, &snapshot))
    }

    /// ICE: cancel a migration in flight (sent to its source node).
    pub fn kill_migration(&self, migration: MigrationId) -> Result<PendingAction, DeckError> {
        let snapshot = self.source.current_snapshot();
        let node = snapshot
            .migrations
            .iter()
            .find(|m| m.id == migration)
            .ok_or(DeckError::UnknownMigration(migration))?
            .source;
        Ok(PendingAction::prepare(AdminCommand::KillMigration { migration, node }, &snapshot))
    }

    /// ICE: forget every node's avoid list.
    pub fn flush_avoid_lists(&self) -> PendingAction {
        self.prepare(AdminCommand::FlushAvoidLists)
    }

    /// Signs and sends a reviewed action; returns every target's outcome.
    ///
    /// Fails without sending anything if the blast radius changed since the action
    /// was prepared ([`DeckError::BlastRadiusChanged`] carries the fresh one).
    pub async fn confirm(&self, pending: &PendingAction) -> Result<CommitReport, DeckError> {
        self.source.commit(pending).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit;
    use mesh_auth::EntityKeypair;

    #[test]
    fn targets_and_signing() {
        let snap = testkit::snapshot(3, Vec::new());
        let me = snap.this_node.node_id;
        let cordon = PendingAction::prepare(AdminCommand::Cordon { node: me }, &snap);
        assert_eq!(cordon.targets, vec![me]);
        assert!(!cordon.is_ice());
        let freeze = PendingAction::prepare(AdminCommand::Freeze { ttl_ms: 1000 }, &snap);
        assert_eq!(freeze.targets.len(), 3);
        assert!(freeze.is_ice());
        assert!(freeze.describe().iter().any(|c| c.text.starts_with("warning:")));

        let a = OperatorIdentity::from_keypair(EntityKeypair::from_seed(&[1; 32]));
        let b = OperatorIdentity::from_keypair(EntityKeypair::from_seed(&[2; 32]));
        assert!(sign(&[], &freeze.command, freeze.digest).is_none(), "never unsigned");
        let env = sign(&[&a, &b], &freeze.command, freeze.digest).unwrap();
        assert_eq!(env.signatures.len(), 2);
        assert_eq!(env.body.blast_radius, Some(freeze.digest));
        assert_eq!(env.body.target, "cluster/freeze");
        let env = sign(&[&a], &cordon.command, cordon.digest).unwrap();
        assert_eq!(env.body.blast_radius, None);
        let twice = freeze.clone().cosign(b.clone()).cosign(b);
        assert_eq!(twice.cosigners().len(), 1);
    }

    #[test]
    fn report_summaries_name_the_first_rejection() {
        let report = CommitReport {
            verb: "cordon",
            target: "node:0x01".into(),
            payload_digest: [0; 32],
            signers: vec![],
            sent_at_ms: 0,
            outcomes: vec![
                NodeOutcome {
                    node: NodeId(1),
                    result: NodeResult::Accepted { audit_seq: 0, effect: "cordoned".into() },
                },
                NodeOutcome {
                    node: NodeId(2),
                    result: NodeResult::Rejected {
                        code: "not_authorized".into(),
                        reason: "no registered operator signed".into(),
                        audit_seq: Some(3),
                    },
                },
            ],
        };
        assert!(!report.all_accepted());
        let lines: Vec<String> = report.lines().into_iter().map(|c| c.text).collect();
        assert_eq!(lines[0], "cordon node:0x01: accepted by 1/2");
        assert!(lines[1].ends_with("  accepted  audit #0  cordoned"), "{lines:?}");
        assert!(lines[2].ends_with("  rejected  not_authorized: no registered operator signed"));
        let s = report.summary();
        assert!(s.contains("accepted by 1/2") && s.contains("not_authorized"), "{s}");
        assert_eq!(report.summary_cell().style, Style::Err);
    }

    #[test]
    fn report_lines_escape_what_nodes_said() {
        let hostile = "\u{1b}]0;pwned\u{7}\u{1b}[2J\u{9b}31m\u{202e}txt.exe\u{2066}\n\rok";
        let long = "x".repeat(10_000);
        let report = CommitReport {
            verb: "freeze",
            target: format!("cluster/{hostile}"),
            payload_digest: [0; 32],
            signers: vec![],
            sent_at_ms: 0,
            outcomes: vec![
                NodeOutcome {
                    node: NodeId(1),
                    result: NodeResult::Accepted { audit_seq: 1, effect: hostile.into() },
                },
                NodeOutcome {
                    node: NodeId(2),
                    result: NodeResult::Rejected {
                        code: hostile.into(),
                        reason: format!("{hostile}{long}"),
                        audit_seq: None,
                    },
                },
                NodeOutcome {
                    node: NodeId(3),
                    result: NodeResult::NotDelivered { error: hostile.into() },
                },
            ],
        };
        let mut shown: Vec<String> = report.lines().into_iter().map(|c| c.text).collect();
        shown.push(report.summary());
        for line in &shown {
            assert!(!line.chars().any(|c| c.is_control() || text::is_deceptive(c)), "{line:?}");
            assert!(
                line.contains("\\u{1b}]0;pwned\\u{7}\\u{1b}[2J\\u{9b}31m\\u{202e}"),
                "{line:?}"
            );
            assert!(line.chars().count() <= 2 * text::MAX_MESSAGE, "capped: {}", line.len());
        }
        assert!(shown[2].contains(text::ELLIPSIS), "the long reason is cut");
    }
}
