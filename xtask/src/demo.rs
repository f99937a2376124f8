//! `cargo xtask demo`: builds the demo in release and runs it.
//!
//! Until the deck TUI lands, the demo runs headless and prints one status line per
//! second (peers, daemons, logs, calls, blobs, migrations); Ctrl-C stops it cleanly.

use anyhow::Result;

use crate::util::{cargo, run as sh};

pub(crate) fn run(_args: &[String]) -> Result<()> {
    eprintln!("xtask demo: building the demo in release (the first build takes a few minutes) ...");
    sh(cargo().args(["build", "--release", "--locked", "-p", "mesh-demo", "--bin", "mesh-demo"]))?;
    eprintln!("xtask demo: starting 9 nodes on 127.0.0.1 (Ctrl-C to stop)");
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
