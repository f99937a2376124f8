//! The admin verbs a deck offers, what each acts on, what it asks for first,
//! and the command it becomes ([`AdminVerb::command`]).
//!
//! A front end maps a key to an [`AdminVerb`], finds its [`Target`] on the page
//! ([`TargetKind::selected`]), asks for a duration when the verb has a
//! [`PromptSpec`] ([`PromptSpec::answer`] reads what was typed), and hands all
//! three to [`crate::Admin::prepare_verb`] for the action to review.

use std::time::Duration;

use mesh::{AdminCommand, MeshSnapshot, MigrationId, NodeId, OriginHash};

use crate::error::DeckError;
use crate::state::{Detail, Tab, ViewState};
use crate::table::RowId;

/// Longest window or TTL the deck accepts (a week).
pub const MAX_DURATION: Duration = Duration::from_secs(7 * 24 * 3600);

/// The admin commands the deck offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AdminVerb {
    /// Stop placing daemons on the node.
    Cordon,
    /// Undo a cordon (and end a drain).
    Uncordon,
    /// Drain the node within a window (asks for it).
    Drain,
    /// Put the node under maintenance (asks for an optional window).
    MaintenanceOn,
    /// End the node's maintenance.
    MaintenanceOff,
    /// Restart every daemon on the node.
    RestartDaemons,
    /// Forget the node's avoid list.
    ClearAvoid,
    /// ICE: freeze the cluster for a TTL (asks for it).
    Freeze,
    /// ICE: lift a freeze.
    Thaw,
    /// ICE: forget every node's avoid list.
    FlushAvoid,
    /// ICE: restart one daemon now.
    ForceRestart,
    /// ICE: abort a migration.
    KillMigration,
}

/// What an admin verb acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TargetKind {
    /// The selected node (or the open node page).
    Node,
    /// The whole cluster.
    Cluster,
    /// The selected daemon (or the open daemon page).
    Daemon,
    /// The selected migration.
    Migration,
}

/// What an admin command is aimed at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// One node.
    Node(NodeId),
    /// Every node.
    Cluster,
    /// One daemon.
    Daemon(OriginHash),
    /// One migration.
    Migration(MigrationId),
}

/// A duration the operator is asked for before the dialog opens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PromptSpec {
    /// What is asked.
    pub label: &'static str,
    /// Pre-filled answer.
    pub default: &'static str,
    /// Whether an empty answer (no duration) is allowed.
    pub optional: bool,
}

impl AdminVerb {
    /// Every verb.
    pub const ALL: [AdminVerb; 12] = [
        AdminVerb::Cordon,
        AdminVerb::Uncordon,
        AdminVerb::Drain,
        AdminVerb::MaintenanceOn,
        AdminVerb::MaintenanceOff,
        AdminVerb::RestartDaemons,
        AdminVerb::ClearAvoid,
        AdminVerb::Freeze,
        AdminVerb::Thaw,
        AdminVerb::FlushAvoid,
        AdminVerb::ForceRestart,
        AdminVerb::KillMigration,
    ];

    /// What the verb acts on.
    pub fn target(self) -> TargetKind {
        match self {
            AdminVerb::Cordon
            | AdminVerb::Uncordon
            | AdminVerb::Drain
            | AdminVerb::MaintenanceOn
            | AdminVerb::MaintenanceOff
            | AdminVerb::RestartDaemons
            | AdminVerb::ClearAvoid => TargetKind::Node,
            AdminVerb::Freeze | AdminVerb::Thaw | AdminVerb::FlushAvoid => TargetKind::Cluster,
            AdminVerb::ForceRestart => TargetKind::Daemon,
            AdminVerb::KillMigration => TargetKind::Migration,
        }
    }

    /// The duration to ask for first, if any.
    pub fn prompt(self) -> Option<PromptSpec> {
        match self {
            AdminVerb::Drain => {
                Some(PromptSpec { label: "drain window", default: "30s", optional: false })
            }
            AdminVerb::MaintenanceOn => Some(PromptSpec {
                label: "maintenance window (empty: until ended)",
                default: "",
                optional: true,
            }),
            AdminVerb::Freeze => {
                Some(PromptSpec { label: "freeze for", default: "5m", optional: false })
            }
            _ => None,
        }
    }

    /// The command this verb makes for `target` (with the duration asked for,
    /// if any). Daemon and migration commands go to the node `snapshot` places
    /// them on.
    ///
    /// Fails when `target` is not of the verb's kind or a duration it needs is
    /// missing ([`DeckError::Incomplete`]), and when the daemon or migration is
    /// not in `snapshot`.
    pub fn command(
        self,
        target: Target,
        duration: Option<Duration>,
        snapshot: &MeshSnapshot,
    ) -> Result<AdminCommand, DeckError> {
        let wrong = || DeckError::Incomplete(self.target().what());
        let node = || match target {
            Target::Node(node) => Ok(node),
            _ => Err(wrong()),
        };
        let window = || duration.map(ms).ok_or(DeckError::Incomplete("a duration"));
        Ok(match self {
            AdminVerb::Cordon => AdminCommand::Cordon { node: node()? },
            AdminVerb::Uncordon => AdminCommand::Uncordon { node: node()? },
            AdminVerb::Drain => AdminCommand::Drain { node: node()?, window_ms: window()? },
            AdminVerb::MaintenanceOn => {
                AdminCommand::EnterMaintenance { node: node()?, window_ms: duration.map(ms) }
            }
            AdminVerb::MaintenanceOff => AdminCommand::ExitMaintenance { node: node()? },
            AdminVerb::RestartDaemons => AdminCommand::RestartDaemons { node: node()? },
            AdminVerb::ClearAvoid => AdminCommand::ClearAvoidList { node: node()? },
            AdminVerb::Freeze => AdminCommand::Freeze { ttl_ms: window()? },
            AdminVerb::Thaw => AdminCommand::Thaw,
            AdminVerb::FlushAvoid => AdminCommand::FlushAvoidLists,
            AdminVerb::ForceRestart => match target {
                Target::Daemon(daemon) => AdminCommand::ForceRestartDaemon {
                    daemon,
                    node: daemon_node(snapshot, daemon)?,
                },
                _ => return Err(wrong()),
            },
            AdminVerb::KillMigration => match target {
                Target::Migration(migration) => AdminCommand::KillMigration {
                    migration,
                    node: migration_source(snapshot, migration)?,
                },
                _ => return Err(wrong()),
            },
        })
    }
}

impl TargetKind {
    /// The target of this kind the page points at: for a node, the open node
    /// page, else the NODES selection; for a daemon, the open daemon page, else
    /// the DAEMONS selection; for a migration, the MIGRATIONS selection. The
    /// cluster is always there.
    pub fn selected(self, state: &ViewState) -> Option<Target> {
        let on = |tab: Tab| state.detail().is_none() && state.tab() == tab;
        let row = state.current().selected();
        match self {
            TargetKind::Cluster => Some(Target::Cluster),
            TargetKind::Node => match (state.detail(), row) {
                (Some(Detail::Node(n)), _) => Some(Target::Node(n)),
                (None, Some(RowId::Node(n))) if on(Tab::Nodes) => Some(Target::Node(n)),
                _ => None,
            },
            TargetKind::Daemon => match (state.detail(), row) {
                (Some(Detail::Daemon(d)), _) => Some(Target::Daemon(d)),
                (None, Some(RowId::Daemon(d))) if on(Tab::Daemons) => Some(Target::Daemon(d)),
                _ => None,
            },
            TargetKind::Migration => match row {
                Some(RowId::Migration(m)) if on(Tab::Migrations) => Some(Target::Migration(m)),
                _ => None,
            },
        }
    }

    /// What to select, in words (`a node`); the cluster needs a node page.
    pub fn what(self) -> &'static str {
        match self {
            TargetKind::Node | TargetKind::Cluster => "a node",
            TargetKind::Daemon => "a daemon",
            TargetKind::Migration => "a migration",
        }
    }
}

impl PromptSpec {
    /// Reads what the operator typed: a duration ([`parse_duration`]), or none
    /// when the answer is blank and may be.
    pub fn answer(&self, input: &str) -> Result<Option<Duration>, DeckError> {
        if self.optional && input.trim().is_empty() {
            return Ok(None);
        }
        parse_duration(input).map(Some)
    }
}

/// Parses a duration as operators write it: `90`, `90s`, `500ms`, `5m`, `2h`,
/// `1d`, or a sum such as `1h30m`. A bare number is seconds; zero and more than
/// [`MAX_DURATION`] are refused.
pub fn parse_duration(text: &str) -> Result<Duration, DeckError> {
    let bad = |reason: String| DeckError::BadDuration { reason };
    let text = text.trim();
    if text.is_empty() {
        return Err(bad("empty".into()));
    }
    let mut total: u128 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if digits == 0 {
            return Err(bad(format!("expected a number at {rest:?} (like 30s, 5m, 1h30m)")));
        }
        let n: u128 = rest[..digits].parse().map_err(|_| bad(format!("{text:?} is too large")))?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let unit_ms: u128 = match rest[..unit_len].trim() {
            "" | "s" | "sec" | "secs" => 1_000,
            "ms" => 1,
            "m" | "min" | "mins" => 60_000,
            "h" | "hr" | "hrs" => 3_600_000,
            "d" | "day" | "days" => 86_400_000,
            other => return Err(bad(format!("unknown unit {other:?} (use ms, s, m, h or d)"))),
        };
        rest = &rest[unit_len..];
        total = n.saturating_mul(unit_ms).saturating_add(total);
    }
    if total == 0 {
        return Err(bad("must be longer than zero".into()));
    }
    if total > MAX_DURATION.as_millis() {
        return Err(bad(format!("at most {} days", MAX_DURATION.as_secs() / 86_400)));
    }
    Ok(Duration::from_millis(u64::try_from(total).unwrap_or(u64::MAX)))
}

/// Milliseconds, as commands carry them.
pub(crate) fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The node `snapshot` places `daemon` on.
pub(crate) fn daemon_node(
    snapshot: &MeshSnapshot,
    daemon: OriginHash,
) -> Result<NodeId, DeckError> {
    Ok(snapshot.daemon(daemon).ok_or(DeckError::UnknownDaemon(daemon))?.node)
}

/// The node `migration` moves a daemon from (where it is cancelled).
pub(crate) fn migration_source(
    snapshot: &MeshSnapshot,
    migration: MigrationId,
) -> Result<NodeId, DeckError> {
    let found = snapshot.migrations.iter().find(|m| m.id == migration);
    Ok(found.ok_or(DeckError::UnknownMigration(migration))?.source)
}

#[cfg(test)]
mod tests;
