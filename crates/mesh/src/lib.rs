#![doc = include_str!("../README.md")]
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
pub use metrics::{DropCounts, MembershipStats, MeshMetrics, Refusals, TrafficSplit};
pub use migrate::{MigrationError, MigrationHandle, MigrationPhase, MigrationSummary};
pub use node::{InlineHandler, MeshEvent, MeshHandle, MeshNode};
pub use noise::{IdentityProof, NOISE_PARAMS};
pub use peer::{Health, PeerInfo, RttStats};
pub use snapshot::{DaemonView, MeshSnapshot, PeerView};
pub use swim::MemberState;
