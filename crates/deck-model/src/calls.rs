//! [`CallTail`]: the RPC observer that feeds the NRPC tab.
//!
//! Installed on the deck's node (and on any other endpoint with
//! [`crate::DeckClient::observe_rpc`]), it turns each [`CallRecord`] into a
//! [`CallEntry`] and pushes it into a bounded ring. Observers run on the RPC
//! path, so `on_call` only takes a short lock and pushes; the deck copies new
//! entries out on refresh with [`CallTail::since`].

use mesh::NodeId;
use mesh_rpc::node_services::{AUDIT_SINCE, FAILURES_SINCE, LOGS_SINCE, STREAMS_SINCE};
use mesh_rpc::{CallRecord, RpcObserver};
use parking_lot::Mutex;

use crate::data::CallEntry;
use crate::tail::Tail;

/// A bounded ring of call records, fed by an RPC observer.
#[derive(Debug)]
pub struct CallTail {
    ring: Mutex<Tail<CallEntry>>,
    /// Calls this node makes to the node services the deck polls are left out.
    hide_polling_by: Option<NodeId>,
}

impl CallTail {
    /// An empty tail of `capacity` records (default 1024) that keeps every call.
    pub fn new(capacity: usize) -> CallTail {
        CallTail { ring: Mutex::new(Tail::new(capacity)), hide_polling_by: None }
    }

    /// Leaves out the page reads `deck_node` makes (`logs.since`, `audit.since`,
    /// `failures.since`): the deck's own polling would swamp the tail.
    pub fn hiding_polling_by(mut self, deck_node: NodeId) -> CallTail {
        self.hide_polling_by = Some(deck_node);
        self
    }

    /// Records with sequence number `>= from_seq`, oldest first.
    pub fn since(&self, from_seq: u64) -> Vec<(u64, CallEntry)> {
        self.ring.lock().since(from_seq).map(|(s, c)| (s, c.clone())).collect()
    }

    /// Sequence number the next record gets.
    pub fn next_seq(&self) -> u64 {
        self.ring.lock().next_seq()
    }

    /// Records held.
    pub fn len(&self) -> usize {
        self.ring.lock().len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.ring.lock().is_empty()
    }

    /// The bound.
    pub fn capacity(&self) -> usize {
        self.ring.lock().capacity()
    }

    /// Adds a record directly (what the observer does).
    pub fn push(&self, entry: CallEntry) -> u64 {
        self.ring.lock().push(entry)
    }
}

impl RpcObserver for CallTail {
    fn on_call(&self, record: &CallRecord) {
        if self.hide_polling_by == Some(record.caller)
            && matches!(
                &*record.service,
                LOGS_SINCE | AUDIT_SINCE | FAILURES_SINCE | STREAMS_SINCE | mesh_blobs::wire::LIST
            )
        {
            return;
        }
        self.push(CallEntry::from_record(record));
    }
}
