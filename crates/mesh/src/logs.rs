//! The node's log ring and failure ring.
//!
//! Both are [`Ring`]s (bounded, with monotonically increasing sequence numbers,
//! read in pages with `since(seq, limit)`). Log lines are sanitized on the way in:
//! capped in length (with a marker), control characters and bidirectional
//! overrides escaped, so nothing a daemon writes can move a terminal's cursor or
//! reorder what an operator reads.

use std::fmt;

use mesh_auth::{NodeId, OriginHash};
use serde::{Deserialize, Serialize};
use stdx::escape::Cap;

/// Longest log message kept, in bytes (longer ones are cut with a marker).
pub const MAX_LOG_LINE: usize = 1024;
/// Default capacity of the log ring.
pub const DEFAULT_LOG_RING: usize = 4096;
/// Default capacity of the failure ring.
pub const DEFAULT_FAILURE_RING: usize = 1024;
const TRUNCATION_MARKER: &str = "…[truncated]";

/// The bounded ring both are kept in (one type for the node's rings and the
/// deck's tails).
pub use stdx::Ring;

/// Severity of a log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum LogLevel {
    /// Fine-grained detail.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal operation.
    Info,
    /// Something unexpected but handled.
    Warn,
    /// Something failed.
    Error,
}

impl LogLevel {
    /// Upper-case short name (`INFO`, `WARN`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "TRACE",
            LogLevel::Debug => "DEBUG",
            LogLevel::Info => "INFO",
            LogLevel::Warn => "WARN",
            LogLevel::Error => "ERROR",
        }
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One stored log line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    /// Position in this node's log (from 0, never reused).
    pub seq: u64,
    /// When it was published (ms since the Unix epoch).
    pub ts_ms: u64,
    /// The node that holds it.
    pub node: NodeId,
    /// The daemon that published it (`None` for node-level events).
    pub daemon: Option<OriginHash>,
    /// Severity.
    pub level: LogLevel,
    /// The sanitized message.
    pub message: String,
}

/// Something that went wrong, kept apart from the log so it is not scrolled away.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureRecord {
    /// Position in this node's failure ring.
    pub seq: u64,
    /// When (ms since the Unix epoch).
    pub ts_ms: u64,
    /// The node that recorded it.
    pub node: NodeId,
    /// A stable kind (`daemon_panic`, `peer_unreachable`, `peer_left`, ...).
    pub kind: String,
    /// What it concerns (a daemon name, a node id, ...).
    pub subject: String,
    /// Details (sanitized).
    pub message: String,
}

/// `message` made safe to store and show: control characters and bidirectional
/// formatting characters escaped (`\n` becomes `\\n`, others `\u{..}`), and
/// capped at [`MAX_LOG_LINE`] bytes, a marker included when cut
/// ([`stdx::escape::escape_untrusted`]).
pub fn sanitize(message: &str) -> String {
    const CAP: Cap = Cap::bytes(MAX_LOG_LINE, TRUNCATION_MARKER);
    stdx::escape::escape_untrusted(message, CAP)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_escapes_and_truncates() {
        assert_eq!(sanitize("plain"), "plain");
        assert_eq!(sanitize("a\nb\x1b[2J"), "a\\nb\\u{1b}[2J");
        assert_eq!(sanitize("file\u{202e}txt.exe"), "file\\u{202e}txt.exe");
        let long = "é".repeat(MAX_LOG_LINE);
        let cut = sanitize(&long);
        assert!(cut.ends_with(TRUNCATION_MARKER));
        assert!(cut.len() <= MAX_LOG_LINE);
        assert_eq!(sanitize(&"x".repeat(MAX_LOG_LINE)), "x".repeat(MAX_LOG_LINE));
    }
}
