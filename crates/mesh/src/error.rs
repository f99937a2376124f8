//! The crate's error types.

use std::net::SocketAddr;

use mesh_auth::NodeId;

/// Errors from starting or configuring a node.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MeshError {
    /// The bind address could not be bound (in use, not local, no permission).
    #[error("cannot bind UDP socket on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// A seed address that cannot be parsed or resolved.
    #[error("bad seed address {seed:?}: {reason}")]
    BadSeed {
        /// The seed as given.
        seed: String,
        /// Why it was refused.
        reason: String,
    },
    /// A configuration value out of range.
    #[error("invalid mesh configuration: {0}")]
    Config(String),
    /// The cluster key file could not be read.
    #[error("cluster key {path}: {reason}")]
    ClusterKey {
        /// The file.
        path: String,
        /// What was wrong.
        reason: String,
    },
    /// The operating system's random number generator failed.
    #[error("system random number generator failed: {0}")]
    Random(String),
    /// The Noise library refused its parameters (a build problem, not input).
    #[error("noise setup failed: {0}")]
    Noise(String),
    /// The audit ledger file could not be opened, or its chain does not verify.
    #[error("audit ledger: {0}")]
    Audit(mesh_auth::AuthError),
    /// The persisted admin state could not be read.
    #[error("admin state {path}: {reason}")]
    AdminState {
        /// The file.
        path: String,
        /// What was wrong.
        reason: String,
    },
    /// Another I/O failure while setting up.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// Why a message could not be sent.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The node has been shut down.
    #[error("the mesh node is shut down")]
    Shutdown,
    /// No session with that node (never joined, forgotten, or left).
    #[error("no route to node {0}")]
    NoRoute(NodeId),
    /// The node has a session but is currently Unreachable.
    #[error("node {0} is unreachable")]
    Unreachable(NodeId),
    /// The message exceeds the configured maximum.
    #[error("message of {size} bytes exceeds the maximum of {max}")]
    TooLarge {
        /// The message size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The socket refused the datagram.
    #[error("send failed: {0}")]
    Io(String),
}
