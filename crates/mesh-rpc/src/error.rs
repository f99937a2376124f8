//! The crate's error type.

use std::time::Duration;

use mesh::{NodeId, SendError};

use crate::status::StatusCode;

/// Why a call (or registering a service) failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RpcError {
    /// The mesh has no session with that node (never joined, forgotten, or left).
    #[error("no route to node {0}")]
    NoRoute(NodeId),
    /// The node has a session but the mesh has marked it Unreachable.
    #[error("node {0} is unreachable")]
    Unreachable(NodeId),
    /// The node answered that it serves no service of that name.
    #[error("node {node} serves no service named {service:?}")]
    NoSuchService {
        /// The node asked.
        node: NodeId,
        /// The service asked for.
        service: String,
    },
    /// No response came before the deadline (the server was told to stop).
    #[error("no response within {elapsed:?}")]
    Timeout {
        /// How long the attempt waited.
        elapsed: Duration,
    },
    /// The handler failed, or panicked (`code` = internal), or the request did not
    /// decode on the server (`code` = invalid_argument).
    #[error("remote error ({code}): {message}")]
    Remote {
        /// What kind of failure.
        code: StatusCode,
        /// The server's detail.
        message: String,
    },
    /// Bytes from the peer did not decode as the expected type.
    #[error("cannot decode {what}: {reason}")]
    Decode {
        /// What was being decoded.
        what: &'static str,
        /// Why it failed.
        reason: String,
    },
    /// A value could not be serialized (a type postcard cannot encode).
    #[error("cannot encode {what}: {reason}")]
    Encode {
        /// What was being encoded.
        what: &'static str,
        /// Why it failed.
        reason: String,
    },
    /// A request or response larger than the message limit; refused whole, never
    /// truncated (on the sending side, or by the receiver).
    #[error("message of {size} bytes exceeds the maximum of {max}")]
    TooLarge {
        /// The message size in bytes.
        size: usize,
        /// The limit in bytes.
        max: usize,
    },
    /// The local mesh node is shut down.
    #[error("the mesh node is shut down")]
    Shutdown,
    /// The service name is already served by this node.
    #[error("service {0:?} is already served on this node")]
    AlreadyServing(String),
    /// The service name is empty or too long.
    #[error("invalid service name {name:?}: {reason}")]
    InvalidServiceName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// [`crate::Rpc::with_config`] found an endpoint with a different configuration
    /// already running on this node (one endpoint per node).
    #[error("this node already has an RPC endpoint with a different configuration")]
    ConfigConflict,
    /// The socket refused the datagram.
    #[error("send failed: {0}")]
    Send(String),
}

impl RpcError {
    /// Whether another attempt could succeed: timeouts, unreachable or unknown
    /// peers (they may be joining) and `unavailable` statuses. Only calls marked
    /// idempotent are retried.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Timeout { .. } | Self::Unreachable(_) | Self::NoRoute(_) => true,
            Self::Remote { code, .. } => *code == StatusCode::Unavailable,
            _ => false,
        }
    }

    pub(crate) fn from_send(error: SendError, to: NodeId) -> Self {
        match error {
            SendError::Shutdown => Self::Shutdown,
            SendError::NoRoute(node) => Self::NoRoute(node),
            SendError::Unreachable(node) => Self::Unreachable(node),
            SendError::TooLarge { size, max } => Self::TooLarge { size, max },
            SendError::Io(reason) => Self::Send(reason),
            other => Self::Send(format!("to {to}: {other}")),
        }
    }
}
