//! `meshd`: one mesh node per process.
//!
//! A `meshd` process runs one [`mesh::MeshNode`] with everything a node of a real
//! cluster needs, kept in its data directory:
//!
//! - its identity (`identity.key`, created on first start, reused afterwards so the
//!   node keeps its [`mesh::NodeId`] across restarts);
//! - an admin verifier built from an operators file ([`operators`]): without one
//!   the node refuses every admin command;
//! - its hash-chained audit ledger (`audit.log`);
//! - a [`mesh_blobs::DiskLog`] blob store (`blobs/`), served to the mesh by a
//!   [`mesh_blobs::MeshBlobAdapter`] named [`BLOB_ADAPTER`];
//! - the node services of [`mesh_rpc::node_services`] (admin commit, audit, log and
//!   failure tails), so a deck attached anywhere in the cluster reads and commands
//!   this node.
//!
//! The directory is locked ([`datadir`]) so two processes never share a store or a
//! ledger. The process logs with `tracing` to stderr, prints one machine-readable
//! line on stdout once it listens ([`StartupInfo::ready_line`]), and on SIGTERM or
//! SIGINT leaves the cluster (peers are told) and exits with status 0. Bad
//! configuration is one line on stderr, `meshd: <what>: <why>`, and a non-zero exit
//! status ([`MeshdError`]).
//!
//! Layout, from the top: [`cli`] (command line and subcommands), [`server`]
//! (starting, running and stopping the node), [`options`] (what a node is
//! started with), [`stop`] (the signals that stop it), [`operators`] (the
//! operators file), [`datadir`] (the locked data directory), [`keys`] (key
//! files), [`error`].

pub mod cli;
pub mod datadir;
pub mod error;
pub mod keys;
pub mod operators;
pub mod options;
pub mod server;
pub mod stop;

pub use cli::{Cli, Command, NodeArgs};
pub use datadir::DataDir;
pub use error::{ErrorKind, MeshdError};
pub use operators::Operators;
pub use options::{NodeOptions, Profile};
pub use server::{BLOB_ADAPTER, Meshd, READY_PREFIX, StartupInfo};
pub use stop::StopSignals;
