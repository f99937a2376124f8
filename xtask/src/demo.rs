//! `cargo xtask demo`: builds the deck in release and runs `deck --demo`: a
//! 9-node cluster on 127.0.0.1 with the demo workload, and the deck attached to
//! node 0. Without a terminal (piped output), it runs the headless status
//! printer instead.

use std::io::IsTerminal;

use anyhow::Result;

use crate::util::{cargo, run as sh};

pub(crate) fn run(_args: &[String]) -> Result<()> {
    eprintln!("xtask demo: building in release (the first build takes a few minutes) ...");
    sh(cargo().args(["build", "--release", "--locked", "-p", "deck-tui", "-p", "mesh-demo"]))?;
    if std::io::stdout().is_terminal() {
        eprintln!("xtask demo: starting 9 nodes on 127.0.0.1 and the deck (q quits)");
        sh(cargo().args([
            "run",
            "--release",
            "--locked",
            "--quiet",
            "-p",
            "deck-tui",
            "--bin",
            "deck",
            "--",
            "--demo",
        ]))
    } else {
        eprintln!("xtask demo: no terminal; running the demo headless (Ctrl-C stops it)");
        sh(cargo().args([
            "run",
            "--release",
            "--locked",
            "--quiet",
            "-p",
            "mesh-demo",
            "--bin",
            "mesh-demo",
        ]))
    }
}
