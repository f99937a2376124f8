//! The crate's error type.

use std::path::PathBuf;

use mesh::{MigrationId, OriginHash};
use mesh_rpc::RpcError;

use crate::pending::PendingAction;

/// What can go wrong in the deck model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeckError {
    /// The deck's node has no usable RPC endpoint (it is shut down).
    #[error("cannot use the RPC endpoint of the deck's node: {0}")]
    Rpc(#[from] RpcError),
    /// The cluster changed since the action was prepared: what it would touch is
    /// no longer what the operator reviewed. Nothing was sent; review `fresh`.
    #[error(
        "the blast radius of {} changed since it was reviewed; nothing was sent, review it again",
        fresh.command
    )]
    BlastRadiusChanged {
        /// The action prepared again on the current snapshot.
        fresh: Box<PendingAction>,
    },
    /// An admin verb was given no target of its kind, or no duration where it
    /// needs one (what it needs: `a node`, `a duration`, ...).
    #[error("the command needs {0}")]
    Incomplete(&'static str),
    /// A duration as typed could not be read.
    #[error("{reason}")]
    BadDuration {
        /// Why, in words (`unknown unit "y" (use ms, s, m, h or d)`).
        reason: String,
    },
    /// No daemon with this id is in the snapshot.
    #[error("daemon {0} is not in the current snapshot")]
    UnknownDaemon(OriginHash),
    /// No migration with this id is in the snapshot.
    #[error("migration {0} is not in the current snapshot")]
    UnknownMigration(MigrationId),
    /// The export file already exists; exports never overwrite.
    #[error("{} already exists; exports never overwrite a file", path.display())]
    ExportExists {
        /// The path asked for.
        path: PathBuf,
    },
    /// The export file could not be created or written.
    #[error("cannot write the export to {}: {source}", path.display())]
    Export {
        /// The path asked for.
        path: PathBuf,
        /// What the file system said.
        #[source]
        source: std::io::Error,
    },
}
