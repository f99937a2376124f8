//! The mesh substrate: encrypted UDP sessions between nodes, membership, probes
//! and failure detection.
//!
//! A [`MeshNode`] binds one UDP socket, authenticates every peer with a Noise
//! handshake keyed by the cluster's [`ClusterKey`] (strangers get nothing) and
//! bound to the peer's ed25519 identity (so a [`NodeId`] is never taken on trust),
//! learns the member list from its seeds, connects to every member, and probes them
//! to measure round trips and notice failures.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use mesh::{ClusterKey, MeshConfig, MeshNode, MessageKind};
//!
//! const HELLO: MessageKind = MessageKind::named("example/hello/v1");
//! let key = ClusterKey::generate()?;
//! let a = MeshNode::start(MeshConfig::new(key.clone())).await?;
//! let b = MeshNode::start(MeshConfig::new(key).seed(a.local_addr().to_string())).await?;
//! let mut inbox = a.subscribe_messages(HELLO)?;
//! // ... once b sees a as a peer:
//! b.send(a.node_id(), HELLO, b"hi").await?;
//! let msg = inbox.recv().await.expect("node running");
//! assert_eq!(msg.from, b.node_id());
//! # Ok(()) }
//! ```
//!
//! Layout: [`wire`] (datagram and frame formats), [`replay`] (the nonce window),
//! [`fragment`] (split and reassemble), `noise` (handshake and identity proof),
//! `node` (the runtime), `testing` (behind the `testing` feature).

pub mod admin;
mod budget;
mod config;
pub mod daemon;
mod error;
pub mod fold;
pub mod fragment;
pub mod lineage;
pub mod logs;
mod message;
mod metrics;
pub mod migrate;
mod node;
mod noise;
mod peer;
pub mod replay;
pub mod resources;
mod session;
#[cfg(feature = "testing")]
pub mod sim;
pub mod snapshot;
mod swim;
#[cfg(feature = "testing")]
pub mod testing;
pub mod transport;
pub mod wire;

pub use admin::{
    AdminCommand, AdminOutcome, AdminRefusal, AdminState, BlastRadius, MigrationId, simulate,
};
pub use config::{ClusterKey, Limits, MeshConfig, NODE_FLAG_OPERATOR, TimingProfile};
pub use daemon::{
    Daemon, DaemonControl, DaemonError, DaemonHandle, DaemonHealth, DaemonLogger, Lifecycle,
};
pub use error::{MeshError, SendError};
pub use lineage::{Lineage, ParsedName};
pub use logs::{FailureRecord, LogEntry, LogLevel};
pub use mesh_auth::{EntityKeypair, NodeId, OriginHash, PublicKey};
pub use message::{Incoming, MessageKind, Subscription};
pub use metrics::{DropCounts, MembershipStats, MeshMetrics, Refusals};
pub use migrate::{MigrationError, MigrationHandle, MigrationPhase, MigrationSummary};
pub use node::{InlineHandler, MeshEvent, MeshHandle, MeshNode};
pub use noise::{IdentityProof, NOISE_PARAMS};
pub use peer::{Health, PeerInfo, RttStats};
pub use snapshot::{DaemonView, MeshSnapshot, PeerView};
pub use swim::MemberState;
