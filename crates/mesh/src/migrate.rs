//! Daemon migration: types shared by the source and target sides.
//!
//! A migratable daemon (one with a [`crate::Daemon::kind`]) moves between nodes in
//! phases: Snapshot (its state is serialized) -> Transfer (state and identity key
//! travel in the encrypted session) -> Restore (the target rebuilds it with its
//! factory, not yet active) -> Replay (log lines published during the move follow
//! it) -> Cutover (the target activates it, the source lets go) -> Complete. Until
//! cutover the daemon stays on the source; any failure, timeout or cancel leaves it
//! there and writes a failure record.

use std::fmt;
use std::sync::Arc;

use mesh_auth::{NodeId, OriginHash};
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, watch};

pub use crate::admin::MigrationId;
use crate::logs::LogLevel;

/// Most bytes of daemon state a migration carries (a larger snapshot fails).
pub const MAX_MIGRATION_STATE: usize = 6 * 1024 * 1024;

/// Builds a daemon of one kind from migrated state.
pub type DaemonFactory = Arc<dyn Fn(&[u8]) -> Result<Box<dyn crate::Daemon>, String> + Send + Sync>;

/// Where a migration is.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MigrationPhase {
    /// Serializing the daemon's state.
    Snapshot,
    /// Sending state and identity to the target.
    Transfer,
    /// The target is rebuilding the daemon.
    Restore,
    /// Forwarding log lines published during the move.
    Replay,
    /// The target activates the daemon; the source lets go.
    Cutover,
    /// Done: the daemon runs on the target.
    Complete,
    /// Failed; the daemon stays on the source.
    Failed {
        /// Why.
        reason: String,
    },
    /// Cancelled by an operator; the daemon stays on the source.
    Cancelled,
}

impl MigrationPhase {
    /// Lower-case label.
    pub fn label(&self) -> &'static str {
        match self {
            MigrationPhase::Snapshot => "snapshot",
            MigrationPhase::Transfer => "transfer",
            MigrationPhase::Restore => "restore",
            MigrationPhase::Replay => "replay",
            MigrationPhase::Cutover => "cutover",
            MigrationPhase::Complete => "complete",
            MigrationPhase::Failed { .. } => "failed",
            MigrationPhase::Cancelled => "cancelled",
        }
    }

    /// Complete, Failed or Cancelled.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            MigrationPhase::Complete | MigrationPhase::Failed { .. } | MigrationPhase::Cancelled
        )
    }
}

impl fmt::Display for MigrationPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MigrationPhase::Failed { reason } => write!(f, "failed ({reason})"),
            other => f.write_str(other.label()),
        }
    }
}

/// A migration as its source node reports it (in its summary, so every node sees it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrationSummary {
    /// Migration id.
    pub id: MigrationId,
    /// The daemon moving.
    pub daemon: OriginHash,
    /// Its name.
    pub name: String,
    /// Where it comes from.
    pub source: NodeId,
    /// Where it goes.
    pub target: NodeId,
    /// Where it is.
    pub phase: MigrationPhase,
    /// State bytes moved so far.
    pub bytes_moved: u64,
    /// When it started (ms since the Unix epoch).
    pub started_at_ms: u64,
    /// Last progress (ms since the Unix epoch).
    pub last_progress_ms: u64,
}

/// Why a migration could not start or did not finish.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MigrationError {
    /// No such daemon on this node.
    #[error("no daemon {0} on this node")]
    NoSuchDaemon(OriginHash),
    /// The daemon has no kind, so no node could rebuild it.
    #[error("daemon {0} is not migratable")]
    NotMigratable(OriginHash),
    /// It is already moving.
    #[error("daemon {0} is already migrating")]
    AlreadyMigrating(OriginHash),
    /// The target is not a live peer.
    #[error("target {0} is not a reachable peer")]
    TargetUnreachable(NodeId),
    /// The target refuses (cordoned, draining, maintenance, no factory, avoided).
    #[error("target {target} refuses: {reason}")]
    TargetRefuses {
        /// The target.
        target: NodeId,
        /// Why.
        reason: String,
    },
    /// It failed on the way; the daemon stays on the source.
    #[error("migration failed: {0}")]
    Failed(String),
    /// An operator cancelled it; the daemon stays on the source.
    #[error("migration cancelled")]
    Cancelled,
    /// The node is shut down.
    #[error("the mesh node is shut down")]
    Shutdown,
}

/// A running migration, from the side that started it.
#[derive(Clone, Debug)]
pub struct MigrationHandle {
    pub(crate) id: MigrationId,
    pub(crate) phase: watch::Receiver<MigrationPhase>,
    pub(crate) cancel: Arc<Notify>,
}

impl MigrationHandle {
    /// The migration's id.
    pub fn id(&self) -> MigrationId {
        self.id
    }

    /// The current phase.
    pub fn phase(&self) -> MigrationPhase {
        self.phase.borrow().clone()
    }

    /// Waits for the end: `Ok` when complete.
    pub async fn wait(&self) -> Result<(), MigrationError> {
        let mut rx = self.phase.clone();
        loop {
            let phase = rx.borrow_and_update().clone();
            match phase {
                MigrationPhase::Complete => return Ok(()),
                MigrationPhase::Failed { reason } => return Err(MigrationError::Failed(reason)),
                MigrationPhase::Cancelled => return Err(MigrationError::Cancelled),
                _ => {}
            }
            if rx.changed().await.is_err() {
                return Err(MigrationError::Shutdown);
            }
        }
    }

    /// Asks for cancellation; effective until cutover starts.
    pub fn cancel(&self) {
        self.cancel.notify_one();
    }
}

/// A log line carried to the target during Replay.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ReplayLine {
    pub(crate) ts_ms: u64,
    pub(crate) level: LogLevel,
    pub(crate) message: String,
}

/// Migration traffic between source and target (postcard).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum MigrateMessage {
    Offer {
        id: MigrationId,
        name: String,
        kind: String,
        key_seed: [u8; 32],
        #[serde(with = "crate::wire::bytes_field")]
        state: Vec<u8>,
        started_at_ms: u64,
    },
    Restored {
        id: MigrationId,
    },
    Refused {
        id: MigrationId,
        reason: String,
    },
    Cutover {
        id: MigrationId,
        replay: Vec<ReplayLine>,
    },
    Done {
        id: MigrationId,
    },
    Abort {
        id: MigrationId,
    },
}

impl MigrateMessage {
    pub(crate) fn encode(&self) -> Vec<u8> {
        postcard::to_stdvec(self).unwrap_or_default()
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, String> {
        if bytes.len() > MAX_MIGRATION_STATE + 1024 * 1024 {
            return Err("migration message too large".into());
        }
        postcard::from_bytes(bytes).map_err(|e| e.to_string())
    }
}
