//! A node's state over RPC: admin commits, and the audit, log and failure tails.
//!
//! High-volume streams stay on the node that produced them; a deck on another
//! node reads them in `since(seq)` pages through these services, and sends signed
//! admin commands to the nodes they target. [`serve_node_services`] registers:
//!
//! | service          | request          | response              |
//! |------------------|------------------|-----------------------|
//! | `admin.commit`   | `SignedEnvelope` | `AdminOutcome`        |
//! | `audit.since`    | [`Page`]         | `Vec<AuditEntry>`     |
//! | `logs.since`     | [`Page`]         | `Vec<LogEntry>`       |
//! | `failures.since` | [`Page`]         | `Vec<FailureRecord>`  |
//! | `streams.since`  | [`StreamsPage`]  | [`Streams`]           |
//!
//! `streams.since` reads the first page of all three tails in one round trip (a
//! deck polling every node every half second sends a third of the calls).
//!
//! The envelope is verified by the receiving node's own verifier; the RPC
//! caller's identity grants nothing.

use mesh::{AdminOutcome, FailureRecord, LogEntry, NodeId};
use mesh_auth::{AuditEntry, SignedEnvelope};
use serde::{Deserialize, Serialize};

use crate::{CallOptions, Rpc, RpcError, RpcStatus, ServeHandle, ServeOptions, StatusCode};

/// Service name of remote admin commits.
pub const ADMIN_COMMIT: &str = "admin.commit";
/// Service name of audit ledger pages.
pub const AUDIT_SINCE: &str = "audit.since";
/// Service name of log pages.
pub const LOGS_SINCE: &str = "logs.since";
/// Service name of failure pages.
pub const FAILURES_SINCE: &str = "failures.since";
/// Service name of the three tails in one call.
pub const STREAMS_SINCE: &str = "streams.since";
/// Most entries one page returns, whatever the caller asks.
pub const MAX_PAGE: u32 = 1024;

/// A page request: entries with `seq >= from_seq`, at most `limit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page {
    /// First sequence number wanted.
    pub from_seq: u64,
    /// Most entries wanted (capped at [`MAX_PAGE`]).
    pub limit: u32,
}

/// One page of each tail, asked for at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamsPage {
    /// The log page.
    pub logs: Page,
    /// The failure page.
    pub failures: Page,
    /// The audit page.
    pub audit: Page,
}

/// The answer to a [`StreamsPage`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Streams {
    /// Log entries.
    pub logs: Vec<LogEntry>,
    /// Failure records.
    pub failures: Vec<FailureRecord>,
    /// Audit entries.
    pub audit: Vec<AuditEntry>,
}

fn read_streams(mesh: &mesh::MeshHandle, req: &StreamsPage) -> Streams {
    let n = |p: &Page| p.limit.min(MAX_PAGE) as usize;
    Streams {
        logs: mesh.logs_since(req.logs.from_seq, n(&req.logs)),
        failures: mesh.failures_since(req.failures.from_seq, n(&req.failures)),
        audit: mesh.audit_since(req.audit.from_seq, n(&req.audit)),
    }
}

/// Keeps the node services registered; dropping it unregisters them.
#[derive(Debug)]
pub struct NodeServices {
    _handles: Vec<ServeHandle>,
}

/// Serves this node's admin commit and tails on its RPC endpoint.
pub fn serve_node_services(rpc: &Rpc) -> Result<NodeServices, RpcError> {
    let mesh = rpc.mesh().clone();
    let mut handles = Vec::new();
    let m = mesh.clone();
    // The envelope arrives as bytes and is decoded with its bounded decoder
    // (size, target and payload caps). Verification and the fsync'd ledger
    // append run on the blocking pool, never on an async worker.
    handles.push(rpc.serve_with(
        ADMIN_COMMIT,
        ServeOptions::spawned(),
        move |env: EnvelopeBytes, ctx| {
            let m = m.clone();
            async move {
                let caller = ctx.caller();
                tokio::task::spawn_blocking(move || m.apply_admin_bytes(caller, &env.0))
                    .await
                    .map_err(|e| RpcStatus::internal(format!("admin commit failed: {e}")))
            }
        },
    )?);
    let m = mesh.clone();
    handles.push(rpc.serve(AUDIT_SINCE, move |page: Page, _ctx| {
        let entries = m.audit_since(page.from_seq, page.limit.min(MAX_PAGE) as usize);
        async move { Ok(entries) }
    })?);
    let m = mesh.clone();
    handles.push(rpc.serve(LOGS_SINCE, move |page: Page, _ctx| {
        let entries = m.logs_since(page.from_seq, page.limit.min(MAX_PAGE) as usize);
        async move { Ok(entries) }
    })?);
    let m = mesh.clone();
    handles.push(rpc.serve(STREAMS_SINCE, move |req: StreamsPage, _ctx| {
        let streams = read_streams(&m, &req);
        async move { Ok(streams) }
    })?);
    let m = mesh;
    handles.push(rpc.serve(FAILURES_SINCE, move |page: Page, _ctx| {
        let entries = m.failures_since(page.from_seq, page.limit.min(MAX_PAGE) as usize);
        async move { Ok(entries) }
    })?);
    Ok(NodeServices { _handles: handles })
}

/// Sends a signed command to `node` and returns its outcome there. A call to
/// this node itself is applied locally without the network.
pub async fn commit(
    rpc: &Rpc,
    node: NodeId,
    envelope: &SignedEnvelope,
    options: CallOptions,
) -> Result<AdminOutcome, RpcError> {
    if node == rpc.node_id() {
        let (mesh, envelope) = (rpc.mesh().clone(), envelope.clone());
        return tokio::task::spawn_blocking(move || mesh.apply_admin(&envelope))
            .await
            .map_err(|e| RpcError::Remote { code: StatusCode::Internal, message: e.to_string() });
    }
    rpc.call(node, ADMIN_COMMIT, &EnvelopeBytes(envelope.encode()), options).await
}

/// An envelope on the wire: its [`SignedEnvelope::encode`] bytes, as one byte
/// string, so the server decodes it with the envelope's own bounded decoder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvelopeBytes(pub Vec<u8>);

impl serde::Serialize for EnvelopeBytes {
    fn serialize<S: serde::Serializer>(&self, out: S) -> Result<S::Ok, S::Error> {
        out.serialize_bytes(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for EnvelopeBytes {
    fn deserialize<D: serde::Deserializer<'de>>(input: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = EnvelopeBytes;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("envelope bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<EnvelopeBytes, E> {
                if v.len() > mesh_auth::MAX_ENVELOPE_BYTES {
                    return Err(E::custom(format!(
                        "envelope of {} bytes is above the {} byte limit",
                        v.len(),
                        mesh_auth::MAX_ENVELOPE_BYTES
                    )));
                }
                Ok(EnvelopeBytes(v.to_vec()))
            }
        }
        input.deserialize_bytes(Visitor)
    }
}

/// A page of `node`'s audit ledger.
pub async fn audit_since(rpc: &Rpc, node: NodeId, page: Page) -> Result<Vec<AuditEntry>, RpcError> {
    if node == rpc.node_id() {
        return Ok(rpc.mesh().audit_since(page.from_seq, page.limit.min(MAX_PAGE) as usize));
    }
    rpc.call(node, AUDIT_SINCE, &page, CallOptions::default().idempotent(true).retries(1)).await
}

/// A page of `node`'s log ring.
pub async fn logs_since(rpc: &Rpc, node: NodeId, page: Page) -> Result<Vec<LogEntry>, RpcError> {
    if node == rpc.node_id() {
        return Ok(rpc.mesh().logs_since(page.from_seq, page.limit.min(MAX_PAGE) as usize));
    }
    rpc.call(node, LOGS_SINCE, &page, CallOptions::default().idempotent(true).retries(1)).await
}

/// A page of `node`'s failure ring.
pub async fn failures_since(
    rpc: &Rpc,
    node: NodeId,
    page: Page,
) -> Result<Vec<FailureRecord>, RpcError> {
    if node == rpc.node_id() {
        return Ok(rpc.mesh().failures_since(page.from_seq, page.limit.min(MAX_PAGE) as usize));
    }
    rpc.call(node, FAILURES_SINCE, &page, CallOptions::default().idempotent(true).retries(1)).await
}

/// The first page of each of `node`'s tails, in one round trip.
pub async fn streams_since(rpc: &Rpc, node: NodeId, req: StreamsPage) -> Result<Streams, RpcError> {
    if node == rpc.node_id() {
        return Ok(read_streams(rpc.mesh(), &req));
    }
    rpc.call(node, STREAMS_SINCE, &req, CallOptions::default().idempotent(true).retries(1)).await
}
