//! The node's log ring and failure ring.
//!
//! Both are bounded rings with monotonically increasing sequence numbers, read in
//! pages with `since(seq, limit)`. Log lines are sanitized on the way in: capped in
//! length (with a marker) and control characters escaped, so nothing a daemon
//! writes can move a terminal's cursor.

use std::collections::VecDeque;
use std::fmt;

use mesh_auth::{NodeId, OriginHash};
use serde::{Deserialize, Serialize};

/// Longest log message kept, in bytes (longer ones are cut with a marker).
pub const MAX_LOG_LINE: usize = 1024;
/// Default capacity of the log ring.
pub const DEFAULT_LOG_RING: usize = 4096;
/// Default capacity of the failure ring.
pub const DEFAULT_FAILURE_RING: usize = 1024;
const TRUNCATION_MARKER: &str = "…[truncated]";

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

/// Caps `message` at [`MAX_LOG_LINE`] bytes (on a character boundary, with a
/// marker) and escapes control characters (`\n` becomes `\\n`, others `\u{..}`).
pub fn sanitize(message: &str) -> String {
    let clean = |c: char| !c.is_control();
    if message.len() <= MAX_LOG_LINE && message.chars().all(clean) {
        return message.to_owned();
    }
    let mut out = String::with_capacity(message.len().min(MAX_LOG_LINE + 16));
    for c in message.chars() {
        if out.len() >= MAX_LOG_LINE {
            out.push_str(TRUNCATION_MARKER);
            return out;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// A bounded ring with sequence numbers.
#[derive(Clone, Debug)]
pub struct Ring<T> {
    items: VecDeque<T>,
    capacity: usize,
    next_seq: u64,
}

impl<T: Clone> Ring<T> {
    /// An empty ring holding at most `capacity` items (at least 1).
    pub fn new(capacity: usize) -> Self {
        Self { items: VecDeque::new(), capacity: capacity.max(1), next_seq: 0 }
    }

    /// Appends an item built from its sequence number; evicts the oldest when full.
    pub fn push_with(&mut self, make: impl FnOnce(u64) -> T) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        if self.items.len() == self.capacity {
            self.items.pop_front();
        }
        self.items.push_back(make(seq));
        seq
    }

    /// Up to `limit` items with sequence `>= from_seq`, oldest first.
    pub fn since(&self, from_seq: u64, limit: usize) -> Vec<T> {
        let first = self.first_seq();
        let skip = usize::try_from(from_seq.saturating_sub(first)).unwrap_or(usize::MAX);
        self.items.iter().skip(skip).take(limit).cloned().collect()
    }

    /// The last `n` items, oldest first.
    pub fn tail(&self, n: usize) -> Vec<T> {
        let skip = self.items.len().saturating_sub(n);
        self.items.iter().skip(skip).cloned().collect()
    }

    /// Sequence number of the oldest item still held (equals `next_seq` if empty).
    pub fn first_seq(&self) -> u64 {
        self.next_seq - self.items.len() as u64
    }

    /// The sequence number the next item will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Items held.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The bound.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_escapes_and_truncates() {
        assert_eq!(sanitize("plain"), "plain");
        assert_eq!(sanitize("a\nb\x1b[2J"), "a\\nb\\u{1b}[2J");
        let long = "é".repeat(MAX_LOG_LINE);
        let cut = sanitize(&long);
        assert!(cut.ends_with(TRUNCATION_MARKER));
        assert!(cut.len() <= MAX_LOG_LINE + TRUNCATION_MARKER.len() + 4);
    }

    #[test]
    fn ring_pages() {
        let mut r: Ring<u64> = Ring::new(3);
        for _ in 0..5 {
            r.push_with(|s| s);
        }
        assert_eq!(r.first_seq(), 2);
        assert_eq!(r.since(0, 10), vec![2, 3, 4]);
        assert_eq!(r.since(3, 1), vec![3]);
        assert_eq!(r.since(9, 10), Vec::<u64>::new());
        assert_eq!(r.tail(2), vec![3, 4]);
    }
}
