//! `cargo xtask <task>`: the project's developer tasks, one module per task.
//!
//! Run `cargo xtask help` for the list. Tasks shell out to `cargo` and print what
//! they run, so every step can be repeated by hand.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "xtask is a CLI that reports to the terminal"
)]

mod bench;
mod chaos;
mod ci;
mod cluster;
mod demo;
mod e2e;
mod util;

use anyhow::Result;

const HELP: &str = "\
cargo xtask <task>

Tasks:
  ci              format check, clippy (warnings denied, all targets), whole test suite
  demo            boot the 9-node demo cluster and open the deck
  cluster [--nodes N] [--port PORT]
                  N meshd processes on 127.0.0.1 (keys and data under target/cluster);
                  prints how to attach a deck; Enter or Ctrl-C stops them
  chaos [--nodes N] [--soak SECS] [--idle N] [--only loss|partition|attach|idle]
                  (root) meshd processes in a fresh network namespace under nftables
                  loss and partitions; prints `figure:` lines (convergence, false
                  failures, partition seen/healed, deck attach, idle CPU)
  e2e [--release] drive `deck --demo` through tmux: every tab, a cordon, a clean exit
  bench [GROUP]   release-build benchmarks; prints `figure: <name> = <value> <unit>` lines
                  groups: auth, mesh, rpc, blobs, deck, demo, attach, tui
  help            this text
";

fn main() {
    if let Err(e) = run() {
        eprintln!("xtask: error: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let task = args.next();
    let rest: Vec<String> = args.collect();
    match task.as_deref() {
        Some("ci") => ci::run(&rest),
        Some("demo") => demo::run(&rest),
        Some("cluster") => cluster::run(&rest),
        Some("bench") => bench::run(&rest),
        Some("chaos") => chaos::run(&rest),
        Some("e2e") => e2e::run(&rest),
        None | Some("help" | "-h" | "--help") => {
            print!("{HELP}");
            Ok(())
        }
        Some(other) => anyhow::bail!("unknown task {other:?}\n\n{HELP}"),
    }
}
