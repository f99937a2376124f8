#![doc = include_str!("../README.md")]
//!
//! ## What the crate guarantees
//!
//! - Many calls in flight per peer, matched by a 64-bit request id; a response is
//!   accepted only from the node that was called.
//! - Fast paths: every RPC message is handled inline on the mesh receive task (no
//!   queue); a handler that answers without waiting answers there (no task hop);
//!   under load, small requests and responses for one node are coalesced into one
//!   mesh datagram ([`RpcConfig::batch_bytes`]) while a lone call is never delayed.
//! - Calls waiting on a node the mesh marks Unreachable fail at once with
//!   [`RpcError::Unreachable`] instead of running into their deadline.
//! - Deadlines (default [`DEFAULT_DEADLINE`], 2 s): the request carries the time
//!   left, and the server drops the handler's future when it runs out. Dropping a
//!   call's future sends a best-effort cancel that does the same.
//! - Messages up to [`RpcConfig::max_message`] (default [`DEFAULT_MAX_MESSAGE`],
//!   4 MiB); larger ones are refused whole ([`RpcError::TooLarge`]), on the
//!   sending side and on the receiving side, never truncated.
//! - Bad input is typed, counted, and never panics: unknown services
//!   ([`RpcError::NoSuchService`]), undecodable bodies ([`RpcError::Decode`] on
//!   the caller, `invalid_argument` from the server), late or unknown responses
//!   and duplicate requests ([`DropCounts`]); a panicking handler gives the caller
//!   `internal` and the service keeps serving.
//! - No leaks: a pending call's entry is removed when it is answered, when it
//!   times out, and when its future is dropped.
//! - Observers ([`RpcObserver`]) get one [`CallRecord`] per call on each side;
//!   [`Rpc::stats`] gives per-service counters and latency quantiles.
//!
//! Layout: [`wire`] (the envelope format), `rpc` (the endpoint; `rpc/client.rs`
//! and `rpc/server.rs` are the two sides), `observer`, `stats`, `options`,
//! `status`, `error`, `inline` (poll-once and panic catching).

mod error;
mod inline;
pub mod node_services;
mod observer;
mod options;
mod rpc;
mod stats;
mod status;
pub mod wire;

pub use error::RpcError;
pub use observer::{CallRecord, CallStatus, RpcObserver, Side};
pub use options::{
    CallOptions, DEFAULT_BATCH_BYTES, DEFAULT_DEADLINE, DEFAULT_MAX_MESSAGE, HandlerStart,
    RpcConfig, ServeOptions,
};
pub use rpc::{CallContext, ObserverId, Rpc, ServeHandle};
pub use stats::{DropCounts, RpcStats, ServiceStats};
pub use status::{RpcStatus, StatusCode};
