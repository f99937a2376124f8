//! The command line: running a node, and the key and store tools.
//!
//! ```text
//! meshd --listen ADDR --cluster-key PATH [--seed ADDR]... [--identity PATH]
//!       [--data-dir DIR] [--operators PATH] [--profile loopback|lan]
//! meshd keygen-cluster PATH       a fresh cluster key file
//! meshd keygen-operator PATH      a fresh operator key; prints its [[operator]] table
//! meshd put-blob [--data-dir DIR] FILE...   store files in a stopped node's blob store
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};
use mesh_blobs::{BlobStore, DiskConfig, DiskLog};

use crate::datadir::DataDir;
use crate::error::MeshdError;
use crate::options::{DEFAULT_DATA_DIR, NodeOptions, Profile};

/// One mesh node per process.
#[derive(Debug, Parser)]
#[command(
    name = "meshd",
    version,
    about = "Runs one mesh node: identity, admin verifier, audit ledger and blob store in its data dir",
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Cli {
    /// A tool instead of running a node.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Running a node.
    #[command(flatten)]
    pub node: NodeArgs,
}

/// The options of a running node.
#[derive(Clone, Debug, Default, Args)]
pub struct NodeArgs {
    /// UDP address to listen on, host:port (port 0 picks a free port; the bound
    /// address is printed on stdout).
    #[arg(long, value_name = "ADDR", required = true)]
    pub listen: Option<String>,
    /// The cluster key file (64 hex digits; `meshd keygen-cluster` writes one).
    #[arg(long, value_name = "PATH", required = true)]
    pub cluster_key: Option<PathBuf>,
    /// A node to join the cluster through, host:port (repeat for more).
    #[arg(long = "seed", value_name = "ADDR")]
    pub seeds: Vec<String>,
    /// The node's identity key file, created if missing [default: DIR/identity.key].
    #[arg(long, value_name = "PATH")]
    pub identity: Option<PathBuf>,
    /// Where the identity, audit ledger and blob store live (created if missing).
    #[arg(long, value_name = "DIR", default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// Operators allowed to sign admin commands, and thresholds (TOML). Without
    /// it the node refuses every admin command.
    #[arg(long, value_name = "PATH")]
    pub operators: Option<PathBuf>,
    /// Probe and failure-detection timing [default: loopback for a loopback
    /// address, lan otherwise].
    #[arg(long, value_enum)]
    pub profile: Option<Profile>,
    /// Leave the cluster and exit when standard input is closed (for a
    /// supervisor: the node stops with it, however it dies).
    #[arg(long)]
    pub exit_on_stdin_eof: bool,
}

impl NodeArgs {
    /// The options, once the required ones are known to be present.
    pub fn into_options(self) -> Result<NodeOptions, MeshdError> {
        let listen = self.listen.ok_or_else(|| MeshdError::new("--listen", "required"))?;
        let cluster_key =
            self.cluster_key.ok_or_else(|| MeshdError::new("--cluster-key", "required"))?;
        Ok(NodeOptions {
            listen,
            cluster_key,
            seeds: self.seeds,
            identity: self.identity,
            data_dir: self.data_dir,
            operators: self.operators,
            profile: self.profile,
            exit_on_stdin_eof: self.exit_on_stdin_eof,
        })
    }
}

/// Tools.
#[derive(Clone, Debug, Subcommand)]
pub enum Command {
    /// Write a fresh cluster key to PATH (mode 0600; never overwrites).
    KeygenCluster {
        /// Where to write it.
        path: PathBuf,
    },
    /// Write a fresh operator key to PATH (mode 0600) and print the
    /// `[[operator]]` table that registers it in an operators file.
    KeygenOperator {
        /// Where to write it.
        path: PathBuf,
    },
    /// Store files in the blob store of a node that is not running; prints
    /// `HASH SIZE FILE` per file.
    PutBlob {
        /// The node's data directory.
        #[arg(long, value_name = "DIR", default_value = DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
        /// Files to store.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

/// Runs what the command line asks; machine-readable output goes to `out`,
/// logs to stderr.
pub fn execute(cli: Cli, out: &mut dyn Write) -> Result<(), MeshdError> {
    match cli.command {
        Some(Command::KeygenCluster { path }) => crate::keys::keygen_cluster(&path, out),
        Some(Command::KeygenOperator { path }) => crate::keys::keygen_operator(&path, out),
        Some(Command::PutBlob { data_dir, files }) => put_blobs(&data_dir, &files, out),
        None => {
            init_logging();
            let options = cli.node.into_options()?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("meshd")
                .enable_all()
                .build()
                .map_err(|e| MeshdError::new("tokio runtime", e))?;
            let result = runtime.block_on(crate::server::run(options, out));
            // Tasks still running (a stuck handler) must not hold the exit up.
            runtime.shutdown_timeout(std::time::Duration::from_secs(1));
            result
        }
    }
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`).
pub fn init_logging() {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let (filter, bad) = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => match EnvFilter::try_new(&spec) {
            Ok(filter) => (filter, None),
            Err(e) => (EnvFilter::new("info"), Some(format!("{spec:?}: {e}"))),
        },
        _ => (EnvFilter::new("info"), None),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
    if let Some(bad) = bad {
        tracing::warn!("ignoring RUST_LOG {bad}; logging at info");
    }
}

/// `meshd put-blob`: stores `files` in the store of the (stopped) node at
/// `data_dir`, holding its lock meanwhile.
pub fn put_blobs(
    data_dir: &Path,
    files: &[PathBuf],
    out: &mut dyn Write,
) -> Result<(), MeshdError> {
    let dir = DataDir::open(data_dir)?;
    let blobs_path = dir.blobs_path();
    let store = DiskLog::open(&blobs_path, DiskConfig::default())
        .map_err(|e| MeshdError::new(format!("blob store {}", blobs_path.display()), e))?;
    for file in files {
        let what = || format!("file {}", file.display());
        let mut reader = std::fs::File::open(file).map_err(|e| MeshdError::new(what(), e))?;
        let hash = store.put_stream(&mut reader).map_err(|e| MeshdError::new(what(), e))?;
        let size = store.list().iter().find(|e| e.hash == hash).map_or(0, |e| e.size);
        writeln!(out, "{hash} {size} {}", file.display())
            .map_err(|e| MeshdError::new("stdout", e))?;
    }
    store.sync().map_err(|e| MeshdError::new(format!("blob store {}", blobs_path.display()), e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_flags_and_subcommands_parse() {
        let cli = Cli::try_parse_from([
            "meshd",
            "--listen",
            "127.0.0.1:0",
            "--cluster-key",
            "k",
            "--seed",
            "a:1",
            "--seed",
            "b:2",
            "--profile",
            "lan",
        ])
        .unwrap();
        assert!(cli.command.is_none());
        let opts = cli.node.into_options().unwrap();
        assert_eq!(opts.seeds, ["a:1", "b:2"]);
        assert_eq!(opts.profile, Some(Profile::Lan));
        assert_eq!(opts.data_dir, PathBuf::from(DEFAULT_DATA_DIR));

        let cli = Cli::try_parse_from(["meshd", "keygen-cluster", "x.key"]).unwrap();
        assert!(matches!(cli.command, Some(Command::KeygenCluster { .. })));
        let cli =
            Cli::try_parse_from(["meshd", "put-blob", "--data-dir", "d", "f1", "f2"]).unwrap();
        assert!(
            matches!(cli.command, Some(Command::PutBlob { ref files, .. }) if files.len() == 2)
        );

        assert!(Cli::try_parse_from(["meshd", "--cluster-key", "k"]).is_err(), "--listen required");
        assert!(
            Cli::try_parse_from(["meshd", "--listen", "a:1"]).is_err(),
            "--cluster-key required"
        );
        assert!(
            Cli::try_parse_from([
                "meshd",
                "--listen",
                "a:1",
                "--cluster-key",
                "k",
                "--profile",
                "wan"
            ])
            .is_err()
        );
    }

    #[test]
    fn profile_follows_the_address() {
        assert_eq!(Profile::default_for("127.0.0.1:1".parse().unwrap()), Profile::Loopback);
        assert_eq!(Profile::default_for("[::1]:1".parse().unwrap()), Profile::Loopback);
        assert_eq!(Profile::default_for("10.1.2.3:1".parse().unwrap()), Profile::Lan);
    }

    #[test]
    fn put_blob_then_reopen() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("payload");
        std::fs::write(&file, b"hello blobs").unwrap();
        let mut out = Vec::new();
        put_blobs(&tmp.path().join("data"), std::slice::from_ref(&file), &mut out).unwrap();
        let line = String::from_utf8(out).unwrap();
        let hash: mesh_blobs::Hash = line.split_whitespace().next().unwrap().parse().unwrap();
        assert_eq!(hash, mesh_blobs::Hash::of(b"hello blobs"));
        assert!(line.contains(" 11 "), "{line}");
        let store = DiskLog::open(tmp.path().join("data/blobs"), DiskConfig::default()).unwrap();
        assert_eq!(store.get(&hash).unwrap().unwrap(), &b"hello blobs"[..]);
    }
}
