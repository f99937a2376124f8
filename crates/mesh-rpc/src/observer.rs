//! Call observers: one [`CallRecord`] per finished call, on each side.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use mesh::NodeId;

use crate::error::RpcError;
use crate::status::StatusCode;

/// Receives a record of every call an endpoint makes or serves.
///
/// Observers run synchronously on the call path, often on the mesh node's
/// receive task, while other datagrams wait: they must be cheap and must never
/// block (count, sample, or push into a bounded queue and return). A panicking
/// observer is caught and logged, and the call is unaffected.
///
/// Any `Fn(&CallRecord) + Send + Sync` closure is an observer.
pub trait RpcObserver: Send + Sync + 'static {
    /// One call finished on this endpoint.
    fn on_call(&self, record: &CallRecord);
}

impl<F> RpcObserver for F
where
    F: Fn(&CallRecord) + Send + Sync + 'static,
{
    fn on_call(&self, record: &CallRecord) {
        self(record)
    }
}

/// Which end of a call a record comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// The node that called.
    Client,
    /// The node that served.
    Server,
}

/// How a call ended, as one side saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CallStatus {
    /// The handler returned a response and the caller decoded it.
    Ok,
    /// The handler returned a failure (or panicked: `Internal`).
    Remote(StatusCode),
    /// The callee serves no service of that name.
    NoSuchService,
    /// The deadline passed: the caller stopped waiting, or the server stopped the
    /// handler.
    Timeout,
    /// The caller dropped the call, or (server side) sent a cancel.
    Cancelled,
    /// The callee was Unreachable; nothing was sent.
    Unreachable,
    /// There was no session with the callee; nothing was sent.
    NoRoute,
    /// A message exceeded the size limit.
    TooLarge,
    /// A body did not decode (request on the server, response on the client).
    Decode,
    /// The local node is shut down.
    Shutdown,
    /// Another local failure (encoding, the socket).
    Failed,
}

impl CallStatus {
    /// True for [`CallStatus::Ok`].
    pub fn is_ok(self) -> bool {
        self == Self::Ok
    }

    /// A stable snake_case name for logs and tables.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Remote(code) => code.as_str(),
            Self::NoSuchService => "no_such_service",
            Self::Timeout => "timeout",
            Self::Cancelled => "cancelled",
            Self::Unreachable => "unreachable",
            Self::NoRoute => "no_route",
            Self::TooLarge => "too_large",
            Self::Decode => "decode",
            Self::Shutdown => "shutdown",
            Self::Failed => "failed",
        }
    }

    pub(crate) fn of(error: &RpcError) -> Self {
        match error {
            RpcError::NoRoute(_) => Self::NoRoute,
            RpcError::Unreachable(_) => Self::Unreachable,
            RpcError::NoSuchService { .. } => Self::NoSuchService,
            RpcError::Timeout { .. } => Self::Timeout,
            RpcError::Remote { code, .. } => Self::Remote(*code),
            RpcError::Decode { .. } => Self::Decode,
            RpcError::TooLarge { .. } => Self::TooLarge,
            RpcError::Shutdown => Self::Shutdown,
            _ => Self::Failed,
        }
    }
}

/// One finished call, as one side saw it.
///
/// Both sides count the same bytes: `request_bytes` is the size of the request
/// message (header and body) and `response_bytes` that of the response message
/// (0 when none was sent or received), so a client record and the matching
/// server record agree.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CallRecord {
    /// Wall-clock time the call started on this side (sent, or received).
    pub ts: SystemTime,
    /// The calling node.
    pub caller: NodeId,
    /// The serving node.
    pub callee: NodeId,
    /// The service (shared, not copied per call).
    pub service: Arc<str>,
    /// Which side recorded this.
    pub side: Side,
    /// From send to response (client), or from receipt until the response was
    /// ready to send (server).
    pub latency: Duration,
    /// How it ended.
    pub status: CallStatus,
    /// Size of the request message in bytes.
    pub request_bytes: u64,
    /// Size of the response message in bytes (0 if none).
    pub response_bytes: u64,
    /// The caller's request id (the same on both sides).
    pub request_id: u64,
}
