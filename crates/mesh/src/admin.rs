//! Admin commands, their blast-radius simulation, and per-node admin state.
//!
//! An [`AdminCommand`] is the payload of a signed envelope (mesh-auth). Its class
//! (routine or break-glass "ICE") and its signed target string follow from the
//! command itself, so a node can check that what was signed is what it is asked
//! to do. [`simulate`] is a pure function of a snapshot: what a command would touch.
//! ICE envelopes carry [`BlastRadius::digest`], and the node refuses the command if
//! its own simulation differs (the cluster changed since the operator looked).

use std::collections::BTreeSet;
use std::fmt;

use mesh_auth::{AdminVerifier, CommandClass, NodeId, OriginHash, SignedEnvelope};
use serde::{Deserialize, Serialize};

use crate::snapshot::MeshSnapshot;

/// Identifies a migration cluster-wide (chosen at random by its source node).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MigrationId(pub u64);

impl fmt::Display for MigrationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "m-{:08x}", self.0 as u32)
    }
}

/// What an operator can ask of the mesh.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum AdminCommand {
    /// No new placements on the node.
    Cordon {
        /// The node.
        node: NodeId,
    },
    /// Lift a cordon (and end a drain).
    Uncordon {
        /// The node.
        node: NodeId,
    },
    /// Cordon, tell daemons to drain, move migratable daemons elsewhere; after the
    /// window, daemons get DrainFinish.
    Drain {
        /// The node.
        node: NodeId,
        /// How long daemons have to drain (ms).
        window_ms: u64,
    },
    /// Mark the node as under maintenance (optionally for a window).
    EnterMaintenance {
        /// The node.
        node: NodeId,
        /// Ends by itself after this long (ms), if set.
        window_ms: Option<u64>,
    },
    /// End maintenance.
    ExitMaintenance {
        /// The node.
        node: NodeId,
    },
    /// Restart every daemon on the node.
    RestartDaemons {
        /// The node.
        node: NodeId,
    },
    /// Forget the node's avoid list (targets it refuses after failed moves).
    ClearAvoidList {
        /// The node.
        node: NodeId,
    },
    /// ICE: refuse every routine command cluster-wide for a while.
    Freeze {
        /// How long (ms).
        ttl_ms: u64,
    },
    /// ICE: lift a freeze.
    Thaw,
    /// ICE: restart one daemon now, wherever it runs.
    ForceRestartDaemon {
        /// The daemon.
        daemon: OriginHash,
        /// The node it runs on.
        node: NodeId,
    },
    /// ICE: cancel a migration in flight.
    KillMigration {
        /// The migration.
        migration: MigrationId,
        /// Its source node.
        node: NodeId,
    },
    /// ICE: forget every node's avoid list.
    FlushAvoidLists,
}

impl AdminCommand {
    /// Routine or break-glass.
    pub fn class(&self) -> CommandClass {
        match self {
            AdminCommand::Freeze { .. }
            | AdminCommand::Thaw
            | AdminCommand::ForceRestartDaemon { .. }
            | AdminCommand::KillMigration { .. }
            | AdminCommand::FlushAvoidLists => CommandClass::Ice,
            _ => CommandClass::Routine,
        }
    }

    /// The node a node-scoped command acts on; `None` for cluster-wide commands.
    pub fn node(&self) -> Option<NodeId> {
        match self {
            AdminCommand::Cordon { node }
            | AdminCommand::Uncordon { node }
            | AdminCommand::Drain { node, .. }
            | AdminCommand::EnterMaintenance { node, .. }
            | AdminCommand::ExitMaintenance { node }
            | AdminCommand::RestartDaemons { node }
            | AdminCommand::ClearAvoidList { node }
            | AdminCommand::ForceRestartDaemon { node, .. }
            | AdminCommand::KillMigration { node, .. } => Some(*node),
            AdminCommand::Freeze { .. } | AdminCommand::Thaw | AdminCommand::FlushAvoidLists => {
                None
            }
        }
    }

    /// The signed target string (`node:0x...`, `daemon:0x...`, `migration:m-...` or
    /// `cluster/<verb>`); envelopes must carry
    /// exactly this. ICE cooldowns are per target.
    pub fn target(&self) -> String {
        match self {
            AdminCommand::ForceRestartDaemon { daemon, .. } => format!("daemon:{daemon}"),
            AdminCommand::KillMigration { migration, .. } => format!("migration:{migration}"),
            // Cluster-wide commands cool down per verb, so a thaw is never
            // blocked by the freeze it undoes.
            _ => match self.node() {
                Some(node) => format!("node:{node}"),
                None => format!("cluster/{}", self.verb()),
            },
        }
    }

    /// A short verb for tables and the ledger (`cordon`, `freeze`, ...).
    pub fn verb(&self) -> &'static str {
        match self {
            AdminCommand::Cordon { .. } => "cordon",
            AdminCommand::Uncordon { .. } => "uncordon",
            AdminCommand::Drain { .. } => "drain",
            AdminCommand::EnterMaintenance { .. } => "maintenance-on",
            AdminCommand::ExitMaintenance { .. } => "maintenance-off",
            AdminCommand::RestartDaemons { .. } => "restart-daemons",
            AdminCommand::ClearAvoidList { .. } => "clear-avoid",
            AdminCommand::Freeze { .. } => "freeze",
            AdminCommand::Thaw => "thaw",
            AdminCommand::ForceRestartDaemon { .. } => "force-restart",
            AdminCommand::KillMigration { .. } => "kill-migration",
            AdminCommand::FlushAvoidLists => "flush-avoid",
        }
    }

    /// The postcard payload for an envelope.
    pub fn to_payload(&self) -> Vec<u8> {
        postcard::to_stdvec(self).unwrap_or_default()
    }

    /// Decodes a payload. Bounded, never panics.
    pub fn from_payload(bytes: &[u8]) -> Result<Self, String> {
        if bytes.len() > 4096 {
            return Err(format!("command payload of {} bytes is too large", bytes.len()));
        }
        postcard::from_bytes(bytes).map_err(|e| format!("command payload does not decode: {e}"))
    }
}

impl fmt::Display for AdminCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.verb(), self.target())
    }
}

/// What a command would touch, computed from a snapshot.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlastRadius {
    /// Nodes the command changes.
    pub nodes: BTreeSet<NodeId>,
    /// Daemons it affects (restarts, drains, moves).
    pub daemons: BTreeSet<OriginHash>,
    /// Migrations it affects.
    pub migrations: BTreeSet<MigrationId>,
    /// Things the operator should know (not part of the digest).
    pub warnings: Vec<String>,
}

impl BlastRadius {
    /// blake3 over the command and the sorted affected sets (warnings excluded):
    /// what an ICE envelope carries.
    pub fn digest(&self, command: &AdminCommand) -> [u8; 32] {
        let mut hasher = blake3::Hasher::new();
        hasher.update(b"meshdeck blast radius v1");
        hasher.update(&command.to_payload());
        let sets = (&self.nodes, &self.daemons, &self.migrations);
        hasher.update(&postcard::to_stdvec(&sets).unwrap_or_default());
        *hasher.finalize().as_bytes()
    }
}

/// Simulates `command` against `snapshot`. Pure.
pub fn simulate(snapshot: &MeshSnapshot, command: &AdminCommand) -> BlastRadius {
    let mut radius = BlastRadius::default();
    // Operator nodes (attached decks) are not part of the cluster being commanded.
    let all_nodes: Vec<NodeId> = snapshot.cluster_nodes().collect();
    let known = |node: NodeId| all_nodes.contains(&node);
    let daemons_on =
        |node: NodeId| snapshot.daemons.iter().filter(move |d| d.node == node).map(|d| d.id);
    match command {
        AdminCommand::Cordon { node }
        | AdminCommand::Uncordon { node }
        | AdminCommand::EnterMaintenance { node, .. }
        | AdminCommand::ExitMaintenance { node }
        | AdminCommand::ClearAvoidList { node } => {
            radius.nodes.insert(*node);
        }
        AdminCommand::Drain { node, .. } | AdminCommand::RestartDaemons { node } => {
            radius.nodes.insert(*node);
            radius.daemons.extend(daemons_on(*node));
            if matches!(command, AdminCommand::Drain { .. }) {
                let pinned =
                    snapshot.daemons.iter().filter(|d| d.node == *node && !d.migratable).count();
                if pinned > 0 {
                    radius
                        .warnings
                        .push(format!("{pinned} daemon(s) cannot migrate and will only drain"));
                }
                let placeable = snapshot
                    .peers
                    .iter()
                    .filter(|p| {
                        p.info.node_id != *node
                            && !p.info.is_operator()
                            && p.info.health.is_healthy()
                            && !p.admin.refuses_placements(snapshot.taken_at_ms)
                    })
                    .count()
                    + usize::from(
                        snapshot.this_node.node_id != *node
                            && !snapshot.this_node.is_operator()
                            && !snapshot.this_node.admin.refuses_placements(snapshot.taken_at_ms),
                    );
                if placeable == 0 {
                    radius.warnings.push("no node can take migrated daemons".into());
                }
            }
        }
        AdminCommand::Freeze { .. } | AdminCommand::Thaw | AdminCommand::FlushAvoidLists => {
            radius.nodes.extend(all_nodes.iter().copied());
            if matches!(command, AdminCommand::Freeze { .. }) {
                radius
                    .warnings
                    .push("routine commands are refused cluster-wide until thaw or expiry".into());
            }
        }
        AdminCommand::ForceRestartDaemon { daemon, node } => {
            radius.nodes.insert(*node);
            radius.daemons.insert(*daemon);
            if snapshot.daemon(*daemon).is_none_or(|d| d.node != *node) {
                radius.warnings.push(format!("daemon {daemon} is not on node {node}"));
            }
        }
        AdminCommand::KillMigration { migration, node } => {
            radius.nodes.insert(*node);
            radius.migrations.insert(*migration);
            match snapshot.migrations.iter().find(|m| m.id == *migration) {
                Some(m) => {
                    radius.daemons.insert(m.daemon);
                }
                None => radius.warnings.push(format!("migration {migration} is not in flight")),
            }
        }
    }
    for node in &radius.nodes {
        if !known(*node) {
            radius.warnings.push(format!("node {node} is not a member"));
        }
    }
    radius
}

/// A node's admin state, published in its summary.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminState {
    /// No new placements.
    pub cordoned: bool,
    /// Draining until this instant (ms since the Unix epoch).
    pub draining_until_ms: Option<u64>,
    /// In maintenance; `Some(u64::MAX)` for no end.
    pub maintenance_until_ms: Option<u64>,
    /// The cluster is frozen until this instant (as this node knows it).
    pub frozen_until_ms: Option<u64>,
    /// When the operators issued the freeze or thaw now in force (ms since the
    /// Unix epoch; 0 if none): the envelope's `issued_at`, the same on every node.
    pub freeze_set_at_ms: u64,
    /// Nodes this node will not move daemons to.
    pub avoid: Vec<NodeId>,
    /// The signed operator envelope behind `frozen_until_ms` (the freeze or thaw
    /// this node applied or adopted), so that every other node can check it: a
    /// node's word alone never freezes or thaws anyone else.
    pub freeze_proof: Option<FreezeProof>,
}

/// The operators' signed freeze or thaw, carried in the summaries of the nodes
/// that follow it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FreezeProof {
    /// The encoded [`SignedEnvelope`].
    #[serde(with = "crate::wire::bytes_field")]
    pub envelope: Vec<u8>,
}

/// What a checked [`FreezeProof`] decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FreezeDecision {
    /// When the operators issued it (ms since the Unix epoch).
    pub set_at_ms: u64,
    /// Frozen until then; `None` for a thaw.
    pub until_ms: Option<u64>,
}

impl FreezeProof {
    /// Wraps the envelope of a freeze or thaw.
    pub fn new(envelope: &SignedEnvelope) -> Self {
        Self { envelope: envelope.encode() }
    }

    /// Checks the proof with this node's own verifier: a freeze or thaw command,
    /// signed by enough registered operators for an ICE command, its signed
    /// target matching. Freshness and replay do not apply (the decision was
    /// taken, possibly long ago, on another node); nothing is remembered.
    pub fn check(&self, verifier: &AdminVerifier) -> Result<FreezeDecision, String> {
        let envelope = SignedEnvelope::decode(&self.envelope).map_err(|e| e.to_string())?;
        verifier.check_authority(&envelope).map_err(|e| e.to_string())?;
        let command = AdminCommand::from_payload(&envelope.body.payload)?;
        if command.class() != envelope.body.class || command.target() != envelope.body.target {
            return Err("the signed class or target does not match the command".into());
        }
        FreezeDecision::of(&command, envelope.body.issued_at_ms)
            .ok_or_else(|| format!("{} is not a freeze or thaw", command.verb()))
    }
}

impl FreezeDecision {
    /// The decision `command` (a freeze or thaw) issued at `issued_at_ms` takes.
    pub fn of(command: &AdminCommand, issued_at_ms: u64) -> Option<Self> {
        match command {
            AdminCommand::Freeze { ttl_ms } => Some(Self {
                set_at_ms: issued_at_ms,
                until_ms: Some(issued_at_ms.saturating_add(*ttl_ms)),
            }),
            AdminCommand::Thaw => Some(Self { set_at_ms: issued_at_ms, until_ms: None }),
            _ => None,
        }
    }
}

/// An admin state as persisted before freeze proofs existed (file format v1).
#[derive(Deserialize)]
struct AdminStateV1 {
    cordoned: bool,
    draining_until_ms: Option<u64>,
    maintenance_until_ms: Option<u64>,
    frozen_until_ms: Option<u64>,
    freeze_set_at_ms: u64,
    avoid: Vec<NodeId>,
}

/// First bytes of a persisted admin state file (then a postcard [`AdminState`]).
const ADMIN_STATE_MAGIC: &[u8] = b"mesh admin state v2\n";
/// The header of files written before freeze proofs (read, never written).
const ADMIN_STATE_MAGIC_V1: &[u8] = b"mesh admin state v1\n";
/// A persisted admin state holds a few flags, an avoid list and one signed
/// envelope: far below this cap, which only keeps a wrong file from being read
/// into memory whole.
const ADMIN_STATE_LIMITS: stdx::fs::ReadLimits = stdx::fs::ReadLimits::new(16 << 20);

impl AdminState {
    /// Reads a persisted state; a missing file is the default state.
    pub(crate) fn load(path: &std::path::Path) -> Result<AdminState, String> {
        let bytes = match stdx::fs::read_bounded(path, ADMIN_STATE_LIMITS) {
            Ok(bytes) => bytes,
            Err(e) if e.is_not_found() => return Ok(AdminState::default()),
            Err(e) => return Err(format!("cannot read: {e}")),
        };
        let corrupt = |e: postcard::Error| {
            format!("corrupt ({e}); move it aside to start with no cordon or freeze")
        };
        if let Some(body) = bytes.strip_prefix(ADMIN_STATE_MAGIC_V1) {
            let old: AdminStateV1 = postcard::from_bytes(body).map_err(corrupt)?;
            return Ok(AdminState {
                cordoned: old.cordoned,
                draining_until_ms: old.draining_until_ms,
                maintenance_until_ms: old.maintenance_until_ms,
                frozen_until_ms: old.frozen_until_ms,
                freeze_set_at_ms: old.freeze_set_at_ms,
                avoid: old.avoid,
                freeze_proof: None,
            });
        }
        let body = bytes
            .strip_prefix(ADMIN_STATE_MAGIC)
            .ok_or("not an admin state file (wrong header); move it aside to start fresh")?;
        postcard::from_bytes(body).map_err(corrupt)
    }

    /// Writes the state atomically ([`stdx::fs::write_atomic`]: a uniquely
    /// named temporary file, synced, renamed over `path`, the directory synced).
    pub(crate) fn save(&self, path: &std::path::Path) -> std::io::Result<()> {
        let mut bytes = ADMIN_STATE_MAGIC.to_vec();
        bytes.extend(postcard::to_stdvec(self).map_err(std::io::Error::other)?);
        stdx::fs::write_atomic(path, &bytes)
    }
}

/// The freeze a deck should show for a cluster whose nodes report `states`
/// (one per cluster node, operator nodes left out) at `now_ms`: frozen when
/// more than half of the nodes say they are, until the median of their ends.
///
/// Every honest node follows only freezes whose operator signatures it checked
/// itself ([`FreezeProof::check`]), so a minority of compromised nodes cannot
/// make a cluster look frozen, nor thawed.
pub fn cluster_frozen_until<'a>(
    states: impl IntoIterator<Item = &'a AdminState>,
    now_ms: u64,
) -> Option<u64> {
    let mut total = 0usize;
    let mut ends: Vec<u64> = Vec::new();
    for state in states {
        total += 1;
        if let Some(until) = state.frozen_until_ms.filter(|until| *until > now_ms) {
            ends.push(until);
        }
    }
    if ends.len() * 2 <= total {
        return None;
    }
    ends.sort_unstable();
    Some(ends[(ends.len() - 1) / 2])
}

impl AdminState {
    /// Frozen at `now_ms`.
    pub fn frozen(&self, now_ms: u64) -> bool {
        self.frozen_until_ms.is_some_and(|t| now_ms < t)
    }

    /// In maintenance at `now_ms`.
    pub fn in_maintenance(&self, now_ms: u64) -> bool {
        self.maintenance_until_ms.is_some_and(|t| now_ms < t)
    }

    /// Draining at `now_ms`.
    pub fn draining(&self, now_ms: u64) -> bool {
        self.draining_until_ms.is_some_and(|t| now_ms < t)
    }

    /// Whether new daemons may be placed here at `now_ms`.
    pub fn refuses_placements(&self, now_ms: u64) -> bool {
        self.cordoned || self.in_maintenance(now_ms) || self.draining(now_ms)
    }

    /// A short label: `frozen`, `maintenance`, `draining`, `cordoned` or `ready`.
    pub fn label(&self, now_ms: u64) -> &'static str {
        if self.frozen(now_ms) {
            "frozen"
        } else if self.in_maintenance(now_ms) {
            "maintenance"
        } else if self.draining(now_ms) {
            "draining"
        } else if self.cordoned {
            "cordoned"
        } else {
            "ready"
        }
    }
}

/// What happened to a command on one node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AdminOutcome {
    /// Verified, recorded, applied.
    Accepted {
        /// The ledger entry.
        audit_seq: u64,
        /// What it did, in words.
        effect: String,
    },
    /// Refused (and recorded, when the node has a ledger).
    Rejected {
        /// Stable reason code (`not_authorized`, `frozen`, `simulation_mismatch`, ...).
        code: String,
        /// Human-readable reason.
        reason: String,
        /// The ledger entry, if recorded.
        audit_seq: Option<u64>,
    },
}

impl AdminOutcome {
    /// True for [`AdminOutcome::Accepted`].
    pub fn is_accepted(&self) -> bool {
        matches!(self, AdminOutcome::Accepted { .. })
    }

    /// The rejection code, if rejected.
    pub fn code(&self) -> Option<&str> {
        match self {
            AdminOutcome::Accepted { .. } => None,
            AdminOutcome::Rejected { code, .. } => Some(code),
        }
    }

    /// The node's own reason, if it refused the command on its own account
    /// (`None` when accepted, or refused by the verifier: see
    /// [`mesh_auth::RejectReason`]).
    pub fn refusal(&self) -> Option<AdminRefusal> {
        self.code().and_then(AdminRefusal::from_code)
    }
}

/// Why a node refused an admin command on its own account: before verifying it,
/// or for a verified command it must not apply. The verifier's reasons are
/// [`mesh_auth::RejectReason`]s; both reach the wire, the audit ledger and the
/// deck only as their stable [`AdminRefusal::code`] in
/// [`AdminOutcome::Rejected`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AdminRefusal {
    /// The node has no admin verifier installed: it refuses every command.
    NoVerifier,
    /// The peer that delivered it sent more envelopes without a valid operator
    /// signature than its budget allows.
    RateLimited,
    /// The envelope does not decode, or its command does not match what was
    /// signed (class or target).
    Malformed,
    /// The command is for another node.
    NotTarget,
    /// The cluster is frozen: routine commands are refused.
    Frozen,
    /// The blast radius signed for an ICE command differs from this node's own
    /// simulation (the cluster changed since the operator looked).
    SimulationMismatch,
    /// The audit ledger append failed, so the command must not take effect.
    AuditFailed,
    /// The node is shut down.
    Shutdown,
}

impl AdminRefusal {
    /// Every refusal, in declaration order.
    pub const ALL: [AdminRefusal; 8] = [
        AdminRefusal::NoVerifier,
        AdminRefusal::RateLimited,
        AdminRefusal::Malformed,
        AdminRefusal::NotTarget,
        AdminRefusal::Frozen,
        AdminRefusal::SimulationMismatch,
        AdminRefusal::AuditFailed,
        AdminRefusal::Shutdown,
    ];

    /// The stable snake_case code (`no_verifier`, `frozen`, ...) the wire, the
    /// ledger and machine-readable output carry.
    pub fn code(self) -> &'static str {
        match self {
            AdminRefusal::NoVerifier => "no_verifier",
            AdminRefusal::RateLimited => "rate_limited",
            AdminRefusal::Malformed => "malformed",
            AdminRefusal::NotTarget => "not_target",
            AdminRefusal::Frozen => "frozen",
            AdminRefusal::SimulationMismatch => "simulation_mismatch",
            AdminRefusal::AuditFailed => "audit_failed",
            AdminRefusal::Shutdown => "shutdown",
        }
    }

    /// The refusal with this code, if it is one.
    pub fn from_code(code: &str) -> Option<AdminRefusal> {
        AdminRefusal::ALL.into_iter().find(|r| r.code() == code)
    }

    /// An outcome refusing with this reason, recorded nowhere.
    pub fn outcome(self, reason: impl Into<String>) -> AdminOutcome {
        AdminOutcome::Rejected {
            code: self.code().to_owned(),
            reason: reason.into(),
            audit_seq: None,
        }
    }
}

impl fmt::Display for AdminRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl fmt::Display for AdminOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AdminOutcome::Accepted { effect, .. } => write!(f, "accepted: {effect}"),
            AdminOutcome::Rejected { code, reason, .. } => write!(f, "rejected ({code}): {reason}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_codes_are_the_ones_on_the_wire() {
        let codes: Vec<&str> = AdminRefusal::ALL.iter().map(|r| r.code()).collect();
        assert_eq!(
            codes,
            [
                "no_verifier",
                "rate_limited",
                "malformed",
                "not_target",
                "frozen",
                "simulation_mismatch",
                "audit_failed",
                "shutdown"
            ]
        );
        for refusal in AdminRefusal::ALL {
            assert_eq!(AdminRefusal::from_code(refusal.code()), Some(refusal));
            let outcome = refusal.outcome("why");
            assert_eq!((outcome.code(), outcome.refusal()), (Some(refusal.code()), Some(refusal)));
        }
        assert_eq!(AdminRefusal::from_code("replayed"), None);
        let accepted = AdminOutcome::Accepted { audit_seq: 1, effect: "done".into() };
        assert_eq!(accepted.refusal(), None);
    }
}
