//! The command line.

use std::path::PathBuf;

use clap::Parser;

/// The operator deck for the mesh.
#[derive(Clone, Debug, Default, Parser)]
#[command(name = "deck", version, about)]
pub struct Cli {
    /// Boot the 9-node demo cluster in-process and attach to node 0.
    #[arg(long)]
    pub demo: bool,
    /// Headless: wait until the cluster is up, print its state and exit.
    #[arg(long)]
    pub once: bool,
    /// With --once: print the state as JSON (the only format so far).
    #[arg(long)]
    pub json: bool,
    /// No colours (also when the NO_COLOR environment variable is set).
    #[arg(long)]
    pub no_color: bool,
    /// Write diagnostics here (the terminal belongs to the UI).
    #[arg(long, value_name = "PATH")]
    pub log_file: Option<PathBuf>,
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
}
