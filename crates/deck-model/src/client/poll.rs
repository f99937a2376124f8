//! One refresh: read every node's streams page by page, then merge.
//!
//! Each node and stream has a cursor: the sequence number and timestamp of the
//! last item read. A page is requested from that last item (an overlap of one),
//! which tells the deck what happened meanwhile without trusting anything:
//!
//! - the page starts with the same item: normal, it is skipped;
//! - the page starts later: the node's ring dropped items before the deck read
//!   them (counted as missed);
//! - the page is empty, or starts with a different item at that number: the node
//!   restarted and its numbers began again; the cursor restarts from 0.
//!
//! Audit pages are also checked link by link with `mesh_auth::verify_segment`
//! from each ledger's genesis, so every entry shown is marked verified or broken.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use mesh::{FailureRecord, LogEntry, NodeId};
use mesh_auth::{AuditEntry, GENESIS_HASH, verify_segment};
use mesh_rpc::node_services::{self, Page};
use mesh_rpc::{Rpc, RpcError};

use super::DeckClient;
use crate::data::{AuditItem, ChainMark, ChainStatus, NodeStreams};
use crate::source::RefreshReport;

#[derive(Clone, Copy, Debug, Default)]
struct StreamCursor {
    /// (sequence number, timestamp) of the last item read.
    last: Option<(u64, u64)>,
}

impl StreamCursor {
    fn next(&self) -> u64 {
        self.last.map_or(0, |(s, _)| s + 1)
    }
}

#[derive(Clone, Debug)]
struct AuditCursor {
    next: u64,
    head: [u8; 32],
    broken: Option<(u64, String)>,
}

impl Default for AuditCursor {
    fn default() -> Self {
        AuditCursor { next: 0, head: GENESIS_HASH, broken: None }
    }
}

#[derive(Clone, Debug, Default)]
struct NodeCursor {
    logs: StreamCursor,
    failures: StreamCursor,
    audit: AuditCursor,
    missed: u64,
    restarts: u32,
    read_once: bool,
}

/// Cursors of every node, and of the call tail.
#[derive(Debug, Default)]
pub(crate) struct PollState {
    nodes: HashMap<NodeId, NodeCursor>,
    calls_next: u64,
    /// Blob inventories read from each node (with `DeckConfig::remote_blobs`).
    remote_blobs: HashMap<NodeId, Vec<mesh_blobs::AdapterInventory>>,
    remote_blobs_at: Option<std::time::Instant>,
    /// Inventory reads in flight (they outlive a refresh: one node that does
    /// not answer must not make every refresh wait for its deadline), and the
    /// nodes they cover.
    blob_reads: Option<(tokio::task::JoinSet<InventoryRead>, Vec<NodeId>)>,
    /// Nodes a finished inventory round has asked. A round that asks a node
    /// for the first time is waited for (a deck's first picture of a node,
    /// `--once` above all, lists its blobs); later ones are taken in as they
    /// end.
    blobs_asked: std::collections::HashSet<NodeId>,
}

type InventoryRead = (NodeId, Result<Vec<mesh_blobs::AdapterInventory>, mesh_blobs::BlobError>);

/// Starts reading every listed node's blob inventories (in parallel, beside
/// the stream reads: a node that does not answer must not hold those up).
fn spawn_remote_blobs(
    client: &DeckClient,
    nodes: &[NodeId],
) -> tokio::task::JoinSet<InventoryRead> {
    let mut tasks = tokio::task::JoinSet::new();
    let options =
        // Four short attempts rather than one long one: at 20 % loss a lost
        // request or answer costs a quarter of the deadline, not all of it.
        mesh_rpc::CallOptions::default()
            .deadline(client.config.poll_deadline / 4)
            .idempotent(true)
            .retries(3);
    for node in nodes.iter().copied() {
        let rpc = client.rpc.clone();
        let options = options.clone();
        tasks
            .spawn(async move { (node, mesh_blobs::list_remote(&rpc, node, options, 4096).await) });
    }
    tasks
}

/// Takes in the inventories read so far (waiting for the whole round when
/// `wait`); once every read of the round has ended, nodes no longer listed are
/// dropped. A node that did not answer keeps its last inventory.
async fn collect_remote_blobs(poll: &mut PollState, wait: bool) {
    let Some((tasks, _)) = &mut poll.blob_reads else { return };
    loop {
        let joined = if wait { tasks.join_next().await } else { tasks.try_join_next() };
        let Some(joined) = joined else { break };
        match joined {
            Ok((node, Ok(inventories))) => {
                poll.remote_blobs.insert(node, inventories);
            }
            Ok((node, Err(e))) => tracing::debug!(%node, error = %e, "blob inventory not read"),
            Err(e) => tracing::error!(error = %e, "blob inventory task failed"),
        }
    }
    if tasks.is_empty()
        && let Some((_, nodes)) = poll.blob_reads.take()
    {
        poll.remote_blobs.retain(|n, _| nodes.contains(n));
        poll.blobs_asked.extend(nodes);
    }
}

#[derive(Clone, Copy, Debug)]
struct Limits {
    pages: usize,
    page: u32,
    deadline: Duration,
}

struct Pulled<T> {
    items: Vec<T>,
    missed: u64,
    restarted: bool,
    error: Option<String>,
}

async fn fetch_page<T, Fut>(deadline: Duration, fut: Fut) -> Result<Vec<T>, String>
where
    Fut: Future<Output = Result<Vec<T>, RpcError>>,
{
    match tokio::time::timeout(deadline, fut).await {
        Ok(Ok(items)) => Ok(items),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {deadline:?}")),
    }
}

enum Fetch {
    /// The node does not serve the combined call (an older build).
    NoService,
    Failed(String),
}

async fn fetch_page_of<T>(
    deadline: Duration,
    fut: impl Future<Output = Result<T, RpcError>>,
) -> Result<T, Fetch> {
    match tokio::time::timeout(deadline, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(RpcError::NoSuchService { .. })) => Err(Fetch::NoService),
        Ok(Err(e)) => Err(Fetch::Failed(e.to_string())),
        Err(_) => Err(Fetch::Failed(format!("no answer within {deadline:?}"))),
    }
}

async fn pull<T, F, Fut>(
    cursor: &mut StreamCursor,
    limits: Limits,
    mut first: Option<Vec<T>>,
    key: impl Fn(&T) -> (u64, u64),
    fetch: F,
) -> Pulled<T>
where
    F: Fn(Page) -> Fut,
    Fut: Future<Output = Result<Vec<T>, RpcError>>,
{
    let mut out = Pulled { items: Vec::new(), missed: 0, restarted: false, error: None };
    let mut pages = 0;
    while pages < limits.pages {
        pages += 1;
        let from = cursor.last.map_or(0, |(s, _)| s);
        let fetched = match first.take() {
            Some(page) => Ok(page),
            None => {
                fetch_page(limits.deadline, fetch(Page { from_seq: from, limit: limits.page }))
                    .await
            }
        };
        let page = match fetched {
            Ok(page) => page,
            Err(e) => {
                out.error = Some(e);
                break;
            }
        };
        let full = page.len() >= limits.page as usize;
        let mut items = page.into_iter().peekable();
        if let Some((last_seq, last_ts)) = cursor.last {
            match items.peek().map(&key) {
                Some((s, t)) if s == last_seq && t == last_ts => {
                    items.next();
                }
                Some((s, _)) if s > last_seq => out.missed += s - last_seq - 1,
                // Empty, or a different item under the same number: it restarted.
                _ => {
                    cursor.last = None;
                    out.restarted = true;
                    continue;
                }
            }
        }
        for item in items {
            let (s, t) = key(&item);
            if cursor.last.is_some_and(|(last, _)| s <= last) {
                // Out of order: a node must not do that; ignore the item.
                continue;
            }
            cursor.last = Some((s, t));
            out.items.push(item);
        }
        if !full {
            break;
        }
    }
    out
}

async fn pull_audit(
    rpc: &Rpc,
    node: NodeId,
    cursor: &mut AuditCursor,
    limits: Limits,
    mut first: Option<Vec<AuditEntry>>,
) -> Pulled<AuditItem> {
    let mut out = Pulled { items: Vec::new(), missed: 0, restarted: false, error: None };
    let mut pages = 0;
    while pages < limits.pages {
        pages += 1;
        let from = cursor.next.saturating_sub(1);
        let fetched = match first.take() {
            Some(page) => Ok(page),
            None => {
                let page = Page { from_seq: from, limit: limits.page };
                fetch_page(limits.deadline, node_services::audit_since(rpc, node, page)).await
            }
        };
        let page: Vec<AuditEntry> = match fetched {
            Ok(page) => page,
            Err(e) => {
                out.error = Some(e);
                break;
            }
        };
        let full = page.len() >= limits.page as usize;
        let mut entries = page.as_slice();
        if cursor.next > 0 {
            match entries.first() {
                Some(e) if e.seq == cursor.next - 1 && e.hash == cursor.head => {
                    entries = &entries[1..]
                }
                _ => {
                    *cursor = AuditCursor::default();
                    out.restarted = true;
                    continue;
                }
            }
        }
        let Some(last) = entries.last() else { break };
        let broken_from = match &cursor.broken {
            Some(_) => Some(0),
            None => match verify_segment(&cursor.head, cursor.next, entries) {
                Ok(()) => None,
                Err(b) => {
                    cursor.broken = Some((b.seq, b.problem.to_owned()));
                    Some(b.seq.saturating_sub(cursor.next) as usize)
                }
            },
        };
        let (next, head) = (last.seq + 1, last.hash);
        for (i, entry) in entries.iter().enumerate() {
            let chain = match broken_from {
                Some(b) if i >= b => ChainMark::Broken,
                _ => ChainMark::Verified,
            };
            out.items.push(AuditItem { node, entry: entry.clone(), chain });
        }
        cursor.next = next;
        cursor.head = head;
        if !full {
            break;
        }
    }
    out
}

/// Attempts of the first combined read within one poll deadline, and the
/// page sizes they ask for: a big answer is many datagrams, any of which may be
/// lost (at 20 % loss a 20-datagram answer arrives 1 time in 90), so after a
/// failure the deck asks for less and reads the rest on later refreshes.
const FIRST_ATTEMPTS: u32 = 4;

fn attempt_page(full: u32, attempt: u32) -> u32 {
    match attempt {
        0 => full,
        1 => (full / 8).max(8).min(full),
        _ => 8.min(full),
    }
}

/// The first page of all three streams in one round trip, retried with
/// smaller pages and a share of the deadline each.
async fn first_pages(
    rpc: &Rpc,
    node: NodeId,
    cursor: &NodeCursor,
    limits: Limits,
) -> Result<node_services::Streams, Fetch> {
    let each = limits.deadline / FIRST_ATTEMPTS;
    let mut last = Fetch::Failed(format!("no answer within {:?}", limits.deadline));
    for attempt in 0..FIRST_ATTEMPTS {
        let limit = attempt_page(limits.page, attempt);
        let page = |from_seq| Page { from_seq, limit };
        let request = node_services::StreamsPage {
            logs: page(cursor.logs.last.map_or(0, |(s, _)| s)),
            failures: page(cursor.failures.last.map_or(0, |(s, _)| s)),
            audit: page(cursor.audit.next.saturating_sub(1)),
        };
        match fetch_page_of(each, node_services::streams_since(rpc, node, request)).await {
            Ok(streams) => return Ok(streams),
            Err(Fetch::NoService) => return Err(Fetch::NoService),
            Err(e) => last = e,
        }
    }
    Err(last)
}

struct NodeRead {
    node: NodeId,
    cursor: NodeCursor,
    logs: Vec<LogEntry>,
    failures: Vec<FailureRecord>,
    audit: Vec<AuditItem>,
    error: Option<String>,
}

async fn read_node(rpc: Rpc, node: NodeId, mut cursor: NodeCursor, limits: Limits) -> NodeRead {
    // The first page of all three streams in one round trip; further pages (a
    // backlog, or a restart found) stream by stream. A node without the combined
    // service is read stream by stream.
    let (mut first_logs, mut first_failures, mut first_audit) = (None, None, None);
    match first_pages(&rpc, node, &cursor, limits).await {
        Ok(streams) => {
            first_logs = Some(streams.logs);
            first_failures = Some(streams.failures);
            first_audit = Some(streams.audit);
        }
        Err(Fetch::NoService) => {}
        Err(Fetch::Failed(e)) => {
            return NodeRead {
                node,
                cursor,
                logs: Vec::new(),
                failures: Vec::new(),
                audit: Vec::new(),
                error: Some(e),
            };
        }
    }
    let logs = pull(
        &mut cursor.logs,
        limits,
        first_logs,
        |e: &LogEntry| (e.seq, e.ts_ms),
        |page| node_services::logs_since(&rpc, node, page),
    )
    .await;
    let failures = pull(
        &mut cursor.failures,
        limits,
        first_failures,
        |f: &FailureRecord| (f.seq, f.ts_ms),
        |page| node_services::failures_since(&rpc, node, page),
    )
    .await;
    let audit = pull_audit(&rpc, node, &mut cursor.audit, limits, first_audit).await;
    cursor.missed += logs.missed + failures.missed;
    cursor.restarts += u32::from(logs.restarted || failures.restarted || audit.restarted);
    let error = logs.error.or(failures.error).or(audit.error);
    cursor.read_once |= error.is_none();
    NodeRead { node, cursor, logs: logs.items, failures: failures.items, audit: audit.items, error }
}

fn status(
    cursor: &NodeCursor,
    previous: Option<&NodeStreams>,
    error: Option<String>,
    now: u64,
) -> NodeStreams {
    NodeStreams {
        logs_next: cursor.logs.next(),
        failures_next: cursor.failures.next(),
        audit_next: cursor.audit.next,
        chain: match (&cursor.audit.broken, cursor.read_once) {
            (Some((seq, problem)), _) => {
                ChainStatus::Broken { seq: *seq, problem: problem.clone() }
            }
            (None, true) => ChainStatus::Verified { entries: cursor.audit.next },
            (None, false) => ChainStatus::Unread,
        },
        missed: cursor.missed,
        restarts: cursor.restarts,
        last_ok_ms: if error.is_none() { Some(now) } else { previous.and_then(|p| p.last_ok_ms) },
        last_error: error,
    }
}

/// One refresh (see the module docs and [`DeckClient`]).
pub(crate) async fn refresh(client: &DeckClient) -> RefreshReport {
    let mut poll = client.poll.lock().await;
    let snapshot = client.mesh.snapshot();
    let limits = Limits {
        pages: client.config.pages_per_refresh.max(1),
        page: client.config.page.clamp(1, node_services::MAX_PAGE),
        deadline: client.config.poll_deadline,
    };
    let mut report = RefreshReport::default();
    let mut unreachable = Vec::new();
    match client.config.remote_blobs {
        Some(every)
            if poll.blob_reads.is_none()
                && (poll.remote_blobs_at.is_none_or(|t| t.elapsed() >= every)
                    || snapshot.peers.iter().any(|p| {
                        !p.info.is_operator()
                            && !p.info.health.is_unreachable()
                            && !poll.blobs_asked.contains(&p.info.node_id)
                    })) =>
        {
            poll.remote_blobs_at = Some(std::time::Instant::now());
            let nodes: Vec<NodeId> = std::iter::once(&snapshot.this_node)
                .filter(|n| !n.is_operator())
                .map(|n| n.node_id)
                .chain(
                    snapshot
                        .peers
                        .iter()
                        .filter(|p| !p.info.is_operator() && !p.info.health.is_unreachable())
                        .map(|p| p.info.node_id),
                )
                .collect();
            poll.blob_reads = Some((spawn_remote_blobs(client, &nodes), nodes));
        }
        _ => {}
    }
    let mut tasks = tokio::task::JoinSet::new();
    let targets =
        std::iter::once((snapshot.this_node.node_id, None)).chain(snapshot.peers.iter().map(|p| {
            (p.info.node_id, p.info.health.is_unreachable().then(|| p.info.health.to_string()))
        }));
    for (node, down) in targets {
        if let Some(reason) = down {
            unreachable.push((node, reason));
            continue;
        }
        let cursor = poll.nodes.get(&node).cloned().unwrap_or_default();
        tasks.spawn(read_node(client.rpc.clone(), node, cursor, limits));
    }
    let mut reads = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(read) => reads.push(read),
            Err(e) => tracing::error!(error = %e, "deck read task failed"),
        }
    }
    reads.sort_by_key(|r| r.node);
    let calls = client.calls.since(poll.calls_next);
    if let Some((last, _)) = calls.last() {
        poll.calls_next = last + 1;
    }
    let sources = client.blobs.read().clone();
    let mut forts = Vec::with_capacity(sources.len());
    let mut blobs = Vec::new();
    for source in &sources {
        let (fort, entries) = source.read();
        forts.push(fort);
        blobs.extend(entries);
    }
    if client.config.remote_blobs.is_some() {
        let first = poll
            .blob_reads
            .as_ref()
            .is_some_and(|(_, nodes)| nodes.iter().any(|n| !poll.blobs_asked.contains(n)));
        collect_remote_blobs(&mut poll, first).await;
        for inventories in poll.remote_blobs.values() {
            for inventory in inventories {
                let (fort, entries) = crate::blobs::from_inventory(inventory.clone());
                forts.push(fort);
                blobs.extend(entries);
            }
        }
        forts.sort_by(|a, b| (a.node, &a.adapter).cmp(&(b.node, &b.adapter)));
    }

    let now = mesh_auth::unix_now_ms();
    let mut logs: Vec<LogEntry> = Vec::new();
    let mut failures: Vec<FailureRecord> = Vec::new();
    let mut audit: Vec<AuditItem> = Vec::new();
    let mut data = client.data.write();
    for read in reads {
        report.nodes += 1;
        if let Some(e) = &read.error {
            report.errors.push((read.node, e.clone()));
        }
        let streams = status(&read.cursor, data.streams.get(&read.node), read.error, now);
        data.streams.insert(read.node, streams);
        poll.nodes.insert(read.node, read.cursor);
        logs.extend(read.logs);
        failures.extend(read.failures);
        audit.extend(read.audit);
    }
    for (node, reason) in unreachable {
        let reason = format!("not read: {reason}");
        report.errors.push((node, reason.clone()));
        let cursor = poll.nodes.get(&node).cloned().unwrap_or_default();
        let streams = status(&cursor, data.streams.get(&node), Some(reason), now);
        data.streams.insert(node, streams);
    }
    // Interleave nodes by time, so the merged tails read in order.
    logs.sort_by_key(|e| (e.ts_ms, e.node, e.seq));
    failures.sort_by_key(|f| (f.ts_ms, f.node, f.seq));
    audit.sort_by_key(|a| (a.entry.record.ts_ms, a.node, a.entry.seq));
    report.logs = logs.len();
    report.failures = failures.len();
    report.audit = audit.len();
    report.calls = calls.len();
    for e in logs {
        data.logs.push(e);
    }
    for f in failures {
        data.failures.push(f);
    }
    for a in audit {
        data.audit.push(a);
    }
    for (_, c) in calls {
        data.calls.push(c);
    }
    let snapshot_changed =
        data.snapshot.seq != snapshot.seq || data.snapshot.epoch_ms != snapshot.epoch_ms;
    data.snapshot = snapshot;
    let blobs_changed = data.blobs != blobs || data.forts != forts;
    if blobs_changed {
        data.blobs = blobs;
        data.forts = forts;
    }
    data.now_ms = now;
    report.changed = snapshot_changed
        || blobs_changed
        || report.logs + report.failures + report.audit + report.calls > 0
        || !report.errors.is_empty();
    if report.changed {
        data.generation += 1;
        let generation = data.generation;
        drop(data);
        client.changes.send_replace(generation);
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retried_first_reads_ask_for_less_and_never_for_nothing() {
        for full in [1, 5, 8, 64, 256, node_services::MAX_PAGE] {
            let sizes: Vec<u32> = (0..FIRST_ATTEMPTS).map(|a| attempt_page(full, a)).collect();
            assert_eq!(sizes[0], full);
            assert!(sizes.windows(2).all(|w| w[1] <= w[0]), "{full}: {sizes:?}");
            assert!(sizes.iter().all(|&s| s >= 1 && s <= full), "{full}: {sizes:?}");
            if full >= 64 {
                assert!(sizes[FIRST_ATTEMPTS as usize - 1] <= 8, "{full}: {sizes:?}");
            }
        }
    }
}
