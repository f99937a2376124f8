//! The command line.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// The operator deck for the mesh.
#[derive(Clone, Debug, Default, Parser)]
#[command(name = "deck", version, about)]
pub struct Cli {
    /// A subcommand instead of the UI.
    #[command(subcommand)]
    pub command: Option<CliCommand>,
    /// Boot the 9-node demo cluster in-process and attach to node 0.
    #[arg(long, conflicts_with_all = ["attach", "bookmark"])]
    pub demo: bool,
    /// Attach to a running cluster through the node at ADDR (host:port): the deck
    /// joins as a light operator node (no daemons) and reads and commands the
    /// whole cluster through the mesh. Needs --cluster-key.
    #[arg(long, value_name = "ADDR", requires = "cluster_key", conflicts_with = "bookmark")]
    pub attach: Option<String>,
    /// How long --attach waits to hear from the cluster, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub attach_timeout: u64,
    /// The cluster's key file (64 hex digits), with --attach.
    #[arg(long, value_name = "PATH", requires = "attach")]
    pub cluster_key: Option<PathBuf>,
    /// Attach to a saved cluster (see `deck bookmark --help`); `:` in the deck
    /// switches between them.
    #[arg(long, value_name = "NAME")]
    pub bookmark: Option<String>,
    /// Headless: wait until the cluster is up, print its state and exit.
    #[arg(long)]
    pub once: bool,
    /// With --once: print the state as JSON (the only format so far).
    #[arg(long)]
    pub json: bool,
    /// Sign admin commands with this operator key (create one with
    /// `deck keygen PATH`). Without it the deck makes a throwaway identity,
    /// which clusters other than the demo will not trust.
    #[arg(long, value_name = "PATH")]
    pub operator_key: Option<PathBuf>,
    /// No colours (also when the NO_COLOR environment variable is set).
    #[arg(long)]
    pub no_color: bool,
    /// Write diagnostics here (the terminal belongs to the UI). The level comes
    /// from DECK_LOG (default `info`).
    #[arg(long, value_name = "PATH")]
    pub log_file: Option<PathBuf>,
}

/// Subcommands.
#[derive(Clone, Debug, Subcommand)]
pub enum CliCommand {
    /// Saved clusters (a TOML file in the user's config directory).
    Bookmark {
        /// What to do.
        #[command(subcommand)]
        action: BookmarkCommand,
    },
    /// Create an operator key file (mode 0600; never overwrites) and print its
    /// public key, for the cluster's operators file.
    Keygen {
        /// Where to write the key.
        path: PathBuf,
    },
}

/// `deck bookmark ...`.
#[derive(Clone, Debug, Subcommand)]
pub enum BookmarkCommand {
    /// Save (or replace) a cluster under NAME.
    Add {
        /// The bookmark's name.
        name: String,
        /// host:port of one of its nodes.
        address: String,
        /// Its cluster key file.
        #[arg(long, value_name = "PATH")]
        cluster_key: PathBuf,
        /// The operator key to sign with.
        #[arg(long, value_name = "PATH")]
        operator_key: Option<PathBuf>,
    },
    /// List saved clusters.
    List,
    /// Forget a saved cluster.
    Rm {
        /// The bookmark's name.
        name: String,
    },
}

impl Cli {
    /// Colours unless `--no-color` or a non-empty `NO_COLOR` (no-color.org).
    pub fn color(&self, no_color_env: Option<&std::ffi::OsStr>) -> bool {
        !self.no_color && no_color_env.is_none_or(|v| v.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse_and_no_color_follows_the_convention() {
        let cli = Cli::try_parse_from(["deck", "--demo", "--once", "--json"]).unwrap();
        assert!(cli.demo && cli.once && cli.json);
        assert!(cli.color(None));
        assert!(cli.color(Some("".as_ref())));
        assert!(!cli.color(Some("1".as_ref())));
        let cli = Cli::try_parse_from(["deck", "--no-color", "--log-file", "x.log"]).unwrap();
        assert!(!cli.color(None));
        assert_eq!(cli.log_file.as_deref(), Some(std::path::Path::new("x.log")));
    }

    #[test]
    fn attach_needs_a_cluster_key_and_excludes_the_demo() {
        let cli = Cli::try_parse_from(["deck", "--attach", "10.0.0.1:7000", "--cluster-key", "k"])
            .unwrap();
        assert_eq!(cli.attach.as_deref(), Some("10.0.0.1:7000"));
        assert!(Cli::try_parse_from(["deck", "--attach", "10.0.0.1:7000"]).is_err());
        assert!(Cli::try_parse_from(["deck", "--cluster-key", "k"]).is_err());
        assert!(
            Cli::try_parse_from(["deck", "--demo", "--attach", "a:1", "--cluster-key", "k"])
                .is_err()
        );
        assert!(Cli::try_parse_from(["deck", "--demo", "--bookmark", "lab"]).is_err());
        let cli = Cli::try_parse_from([
            "deck",
            "bookmark",
            "add",
            "lab",
            "127.0.0.1:7000",
            "--cluster-key",
            "k",
        ])
        .unwrap();
        assert!(matches!(
            cli.command,
            Some(CliCommand::Bookmark { action: BookmarkCommand::Add { .. } })
        ));
    }

    #[test]
    fn keygen_and_operator_key_parse() {
        let cli = Cli::try_parse_from(["deck", "keygen", "op.key"]).unwrap();
        assert!(
            matches!(cli.command, Some(CliCommand::Keygen { ref path }) if path.ends_with("op.key"))
        );
        let cli = Cli::try_parse_from(["deck", "--operator-key", "op.key"]).unwrap();
        assert_eq!(cli.operator_key.as_deref(), Some(std::path::Path::new("op.key")));
        assert!(Cli::try_parse_from(["deck", "keygen"]).is_err());
    }
}
