//! What a node is started with: [`NodeOptions`] (the command line, parsed, or
//! built by a test) and the timing [`Profile`].

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::ValueEnum;

/// Default `--data-dir`.
pub const DEFAULT_DATA_DIR: &str = "meshd-data";

/// What a node needs to start (the command line, parsed).
#[derive(Clone, Debug)]
pub struct NodeOptions {
    /// `host:port` to listen on (port 0: any free port).
    pub listen: String,
    /// The cluster key file.
    pub cluster_key: PathBuf,
    /// Nodes to join through (`host:port`).
    pub seeds: Vec<String>,
    /// The identity key file (default `<data_dir>/identity.key`).
    pub identity: Option<PathBuf>,
    /// The data directory (created if missing).
    pub data_dir: PathBuf,
    /// The operators file; without one the node refuses every admin command.
    pub operators: Option<PathBuf>,
    /// Timing profile (default: loopback for a loopback address, lan otherwise).
    pub profile: Option<Profile>,
    /// Stop when standard input reaches end of file (for supervisors).
    pub exit_on_stdin_eof: bool,
}

impl NodeOptions {
    /// Options with defaults around the two required values.
    pub fn new(listen: impl Into<String>, cluster_key: impl Into<PathBuf>) -> Self {
        Self {
            listen: listen.into(),
            cluster_key: cluster_key.into(),
            seeds: Vec::new(),
            identity: None,
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            operators: None,
            profile: None,
            exit_on_stdin_eof: false,
        }
    }
}

/// Timing profiles (see [`mesh::TimingProfile`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Profile {
    /// Nodes on one machine: a dead node is seen within 1 s.
    Loopback,
    /// Nodes on a local network: a dead node is seen within 5 s.
    Lan,
}

impl Profile {
    /// The profile's name (`loopback`, `lan`).
    pub fn name(self) -> &'static str {
        match self {
            Profile::Loopback => "loopback",
            Profile::Lan => "lan",
        }
    }

    /// `loopback` for a loopback address, `lan` otherwise.
    pub fn default_for(addr: SocketAddr) -> Profile {
        if addr.ip().is_loopback() { Profile::Loopback } else { Profile::Lan }
    }
}
