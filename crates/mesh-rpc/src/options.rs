//! Per-call options, per-service options and the endpoint's configuration.

use std::time::Duration;

/// The deadline of a call when none is given: 2 s.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(2);

/// The default largest RPC message (header plus encoded body): 4 MiB.
///
/// Larger requests are refused by the caller with [`crate::RpcError::TooLarge`]
/// before anything is sent, larger responses are replaced by a `TooLarge` answer
/// on the server, and a receiver refuses larger messages from peers configured
/// differently. Nothing is ever truncated. The mesh below carries up to 8 MiB.
pub const DEFAULT_MAX_MESSAGE: usize = 4 * 1024 * 1024;

/// How one call behaves.
///
/// ```
/// use std::time::Duration;
/// use mesh_rpc::CallOptions;
///
/// let opts =
///     CallOptions::default().deadline(Duration::from_millis(500)).idempotent(true).retries(3);
/// assert_eq!(opts.retries, 3);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallOptions {
    /// How long each attempt waits for its response (default 2 s). The server
    /// receives the remaining time and stops the handler when it runs out.
    pub deadline: Duration,
    /// Further attempts after a retryable failure (see
    /// [`crate::RpcError::is_retryable`]); honoured only when `idempotent` is
    /// set, because a timed-out call may have run. Default 0.
    pub retries: u32,
    /// The call may safely run more than once.
    pub idempotent: bool,
    /// Pause before the first retry; doubled before each further one (default
    /// 20 ms).
    pub retry_backoff: Duration,
}

impl Default for CallOptions {
    fn default() -> Self {
        Self {
            deadline: DEFAULT_DEADLINE,
            retries: 0,
            idempotent: false,
            retry_backoff: Duration::from_millis(20),
        }
    }
}

impl CallOptions {
    /// Sets the per-attempt deadline.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// Marks the call as safe to run more than once (retries are honoured).
    pub fn idempotent(mut self, idempotent: bool) -> Self {
        self.idempotent = idempotent;
        self
    }

    /// Allows `retries` further attempts (honoured only for idempotent calls).
    pub fn retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// Sets the pause before the first retry.
    pub fn retry_backoff(mut self, backoff: Duration) -> Self {
        self.retry_backoff = backoff;
        self
    }
}

/// Where a handler's first poll runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandlerStart {
    /// Poll the handler once right on the mesh receive task; if it is not done
    /// after that poll it moves to its own tokio task. The fastest path for
    /// handlers that answer without waiting, but the work before the handler's
    /// first `.await` delays every other datagram of the node, so it must be short.
    #[default]
    Inline,
    /// Always run the handler on its own tokio task (one more task hop per call).
    Spawn,
}

/// How a service is served.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServeOptions {
    /// Where the handler's first poll runs.
    pub start: HandlerStart,
}

impl ServeOptions {
    /// Runs every handler invocation on its own task.
    pub fn spawned() -> Self {
        Self { start: HandlerStart::Spawn }
    }
}

/// The endpoint's limits (one endpoint per mesh node).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RpcConfig {
    /// Largest RPC message in bytes, sent or accepted (default
    /// [`DEFAULT_MAX_MESSAGE`]).
    pub max_message: usize,
    /// Longest deadline a server grants a caller, however long the caller asks
    /// for (default 10 minutes).
    pub max_server_deadline: Duration,
    /// Largest batch of coalesced small messages, in bytes (default
    /// [`DEFAULT_BATCH_BYTES`]; 0 turns coalescing off).
    ///
    /// Under load (a call starts while others to any node are waiting), small
    /// requests to one node are gathered until the calling worker thread has run
    /// everything else it can, then sent as one mesh message; a server sends the
    /// responses its handlers produce while reading one message as one message
    /// too. A lone call is never delayed.
    pub batch_bytes: usize,
}

/// Default [`RpcConfig::batch_bytes`]: what fits in one mesh datagram with the
/// mesh's default 1200-byte budget.
pub const DEFAULT_BATCH_BYTES: usize = 1100;

impl Default for RpcConfig {
    fn default() -> Self {
        Self {
            max_message: DEFAULT_MAX_MESSAGE,
            max_server_deadline: Duration::from_secs(600),
            batch_bytes: DEFAULT_BATCH_BYTES,
        }
    }
}
