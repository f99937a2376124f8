//! `cargo xtask chaos`: fault injection against real `meshd` processes, measured.
//!
//! ```text
//! cargo xtask chaos [--nodes N] [--soak SECS] [--idle N] [--only SCENARIO]
//!
//!   --nodes N        meshd processes for the loss, attach and partition scenarios (default 9)
//!   --soak SECS      how long the lossy cluster is watched for false failures (default 300)
//!   --idle N         meshd processes for the idle CPU figure (default 96)
//!   --only SCENARIO  loss, partition, attach or idle (repeat or comma-separate; default all)
//! ```
//!
//! Needs root, `unshare`, `ip` and `nft` (when `nft` is missing and the task
//! runs as root it runs `apt-get install -y nftables`; otherwise it says what is
//! missing and fails). It builds `meshd` and `deck` in release, then re-executes
//! itself under `unshare --net` (the `XTASK_CHAOS_INSIDE` environment variable
//! marks the inner run), so everything runs in a network namespace of its own:
//! `lo` is brought up there, every node binds 127.0.0.1, and the nftables table
//! `inet chaos` (chain `input`, hook input, priority 0) affects only that
//! namespace. The nodes log at info (`RUST_LOG=info` for the inner run).
//!
//! Clusters are made as `cargo xtask cluster` makes them (cluster key, operator
//! key, operators file, one data dir and one log per node, nodes joining
//! through node 0), under `target/chaos/<scenario>/`, with the release binaries.
//!
//! Scenarios; each prints `figure: <name> = <value> <unit>` lines on stdout:
//!
//! - `loss`: with 20 % of UDP dropped on input (`meta l4proto udp numgen random
//!   mod 10 < 2 drop`), start `--nodes` nodes and time from the first start until
//!   every node sees every other one healthy at the same moment
//!   (`chaos_loss20_converge_s`); then, for `--soak` seconds, count the `member
//!   unreachable` and `member suspect` lines all nodes log about each other
//!   (`chaos_loss20_false_unreachable`, `chaos_loss20_false_suspect`).
//! - `attach`: on that lossy cluster, time `deck --attach NODE0 --once --json`
//!   (`chaos_attach_loss20_ms`) and count the meshd nodes it read
//!   (`chaos_attach_loss20_nodes_read`: entries of the JSON's `streams` object,
//!   keyed by node id, with `last_ok_ms` set and `last_error` null; the deck's
//!   own node is not counted).
//! - `partition`: on a fresh cluster without loss, drop all UDP to and from the
//!   last node's port (`udp dport P drop`, `udp sport P drop`) and time until
//!   every other node has logged it unreachable (`chaos_partition_seen_ms`);
//!   then flush the rules and time until every other node has logged it healthy
//!   again (`chaos_heal_ms`).
//! - `idle`: start `--idle` nodes, wait for convergence, settle 30 s (the boot's
//!   gossip backlog drains), then sum each process's utime+stime from
//!   `/proc/PID/stat` over 30 s
//!   (`meshd_idle_cpu_pct_per_node_<N>`: mean % of one core per node, clock
//!   ticks from `getconf CLK_TCK`).
//!
//! How membership is observed: from the nodes' own logs, which say what each
//! node thinks of every other one (the deck could only show its own view).
//! Lines are read with their timestamps, so times are when a node logged the
//! change, not when this task noticed. Per (observer, member) pair the last
//! line decides: `member joined`, `member rejoined` (a dead or departed member
//! alive again, at a higher incarnation) and `member healthy again` (a refuted
//! suspicion) are healthy; `member suspect`, `member unreachable` and `member
//! left the cluster` are not.
//! Lines about other nodes (attached decks) are ignored. Logs are read at most
//! 64 KiB per file per poll so deadlines and progress lines hold even when an
//! overloaded cluster floods them; at a deadline the backlog is read (up to
//! 30 s) before deciding. The observing thread runs 10 nice levels above what
//! the task was started with; the nodes and the deck run at the original level.
//!
//! A wait that misses its deadline (60 s for convergence and for detection)
//! prints its figure with the deadline's value and a `chaos: did not converge:`
//! line, and the task exits non-zero at the end. Progress goes to stderr.
//!
//! Cleaning up: nodes are stopped after each scenario (SIGTERM, killed after a
//! grace period) and the nftables table is deleted on the way out; the
//! namespace dies with the task. On Ctrl-C every process of the foreground
//! group gets SIGINT (the nodes leave the cluster and exit), and nodes run with
//! `--exit-on-stdin-eof`, so they stop with the task however it dies.

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::cluster;
use crate::util::run as sh;

mod cpu;
mod logs;
mod mesh;
mod namespace;
mod nft;
mod priority;
mod scenarios;

use namespace::{find_tool, outside};
use nft::Nft;
use priority::raise_observer_priority;
use scenarios::{idle, loss_and_attach, partition};

const USAGE: &str =
    "usage: cargo xtask chaos [--nodes N] [--soak SECS] [--idle N] [--only SCENARIO]

  --nodes N        meshd processes for the loss, attach and partition scenarios (default 9)
  --soak SECS      how long the lossy cluster is watched for false failures (default 300)
  --idle N         meshd processes for the idle CPU figure (default 96)
  --only SCENARIO  run one scenario: loss, partition, attach or idle (repeat or
                   comma-separate for several; default all)

Runs as root: it re-executes itself under `unshare --net` and injects loss and
partitions with nftables (installed with apt-get when `nft` is missing).";

/// Marks the re-executed process that runs inside the network namespace.
const INSIDE_ENV: &str = "XTASK_CHAOS_INSIDE";
/// Most nodes one scenario starts.
const MAX_NODES: usize = 256;
/// How long a cluster may take to converge.
const CONVERGE_DEADLINE: Duration = Duration::from_secs(60);
/// How long every node may take to see a partition, or its end.
const DETECT_DEADLINE: Duration = Duration::from_secs(60);
/// How long the attaching deck may take (its own `--once` deadline is 30 s).
const ATTACH_DEADLINE: Duration = Duration::from_secs(60);
/// The idle scenario's settle time after convergence, and its measurement window.
const IDLE_SETTLE: Duration = Duration::from_secs(30);
const IDLE_WINDOW: Duration = Duration::from_secs(30);
/// How long the partition scenario's cluster stays converged before the cut.
const PRE_PARTITION_CALM: Duration = Duration::from_secs(2);
/// Log polling interval.
const POLL: Duration = Duration::from_millis(50);
/// Most bytes of one log read per poll (so an overloaded cluster's flood of
/// lines never holds up deadlines and progress lines).
const POLL_BUDGET: u64 = 64 * 1024;
/// After a deadline, how long the task may go on reading what the logs
/// already hold before deciding.
const CATCH_UP: Duration = Duration::from_secs(30);
/// Progress lines at most this often.
const PROGRESS: Duration = Duration::from_secs(5);
/// The loss rule (20 % of UDP datagrams dropped on input).
const LOSS_RULE: &str = "meta l4proto udp numgen random mod 10 < 2 drop";

/// A scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scenario {
    Loss,
    Partition,
    Attach,
    Idle,
}

impl Scenario {
    fn parse(name: &str) -> Result<Scenario> {
        Ok(match name {
            "loss" => Scenario::Loss,
            "partition" => Scenario::Partition,
            "attach" => Scenario::Attach,
            "idle" => Scenario::Idle,
            other => bail!("unknown scenario {other:?}\n\n{USAGE}"),
        })
    }
}

/// The task's options.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ChaosArgs {
    nodes: usize,
    soak: u64,
    idle: usize,
    /// Empty: every scenario.
    only: Vec<Scenario>,
}

impl Default for ChaosArgs {
    fn default() -> Self {
        Self { nodes: 9, soak: 300, idle: 96, only: Vec::new() }
    }
}

impl ChaosArgs {
    fn parse(args: &[String]) -> Result<ChaosArgs> {
        let mut out = ChaosArgs::default();
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((flag, value)) => (flag, Some(value.to_owned())),
                None => (arg.as_str(), None),
            };
            let mut value = |name: &str| -> Result<String> {
                match &inline {
                    Some(v) => Ok(v.clone()),
                    None => it
                        .next()
                        .cloned()
                        .with_context(|| format!("{name} needs a value\n\n{USAGE}")),
                }
            };
            let number = |name: &str, v: String| -> Result<u64> {
                v.parse().with_context(|| format!("{name} {v:?}: not a number\n\n{USAGE}"))
            };
            match flag {
                "--nodes" | "-n" => out.nodes = number("--nodes", value("--nodes")?)? as usize,
                "--soak" => out.soak = number("--soak", value("--soak")?)?,
                "--idle" => out.idle = number("--idle", value("--idle")?)? as usize,
                "--only" => {
                    for name in value("--only")?.split(',').filter(|s| !s.is_empty()) {
                        let s = Scenario::parse(name)?;
                        if !out.only.contains(&s) {
                            out.only.push(s);
                        }
                    }
                }
                "-h" | "--help" => bail!("{USAGE}"),
                other => bail!("unknown argument {other:?}\n\n{USAGE}"),
            }
        }
        if out.nodes < 2 || out.nodes > MAX_NODES {
            bail!("--nodes must be between 2 and {MAX_NODES}, not {}", out.nodes);
        }
        if out.idle == 0 || out.idle > MAX_NODES {
            bail!("--idle must be between 1 and {MAX_NODES}, not {}", out.idle);
        }
        Ok(out)
    }

    fn wants(&self, s: Scenario) -> bool {
        self.only.is_empty() || self.only.contains(&s)
    }
}

/// `cargo xtask chaos ARGS...`.
pub(crate) fn run(args: &[String]) -> Result<()> {
    let parsed = ChaosArgs::parse(args)?;
    if std::env::var_os(INSIDE_ENV).is_some() { inside(&parsed) } else { outside(args) }
}

// ----- inside the namespace -----

/// The release binaries.
struct Bins {
    meshd: PathBuf,
    deck: PathBuf,
}

fn inside(args: &ChaosArgs) -> Result<()> {
    let release = cluster::target_dir().join("release");
    let bins = Bins { meshd: release.join("meshd"), deck: release.join("deck") };
    for bin in [&bins.meshd, &bins.deck] {
        if !bin.is_file() {
            bail!(
                "{} is missing (the build outside the namespace should have made it)",
                bin.display()
            );
        }
    }
    let ip = find_tool("ip").context("`ip` is missing")?;
    sh(Command::new(ip).args(["link", "set", "lo", "up"]))?;
    let nft = Nft::create(find_tool("nft").context("`nft` is missing")?)?;
    let root = cluster::target_dir().join("chaos");
    std::fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;

    raise_observer_priority();
    let mut failures: Vec<String> = Vec::new();
    let started = Instant::now();
    eprintln!("xtask chaos: plan (each wait is cut off at its deadline): {}", plan(args));
    if args.wants(Scenario::Loss) || args.wants(Scenario::Attach) {
        loss_and_attach(args, &bins, &nft, &root.join("loss"), &mut failures)?;
    }
    if args.wants(Scenario::Partition) {
        partition(args, &bins, &nft, &root.join("partition"), &mut failures)?;
    }
    if args.wants(Scenario::Idle) {
        idle(args, &bins, &root.join("idle"), &mut failures)?;
    }
    drop(nft);
    eprintln!(
        "xtask chaos: done in {:.0} s; logs under {}",
        started.elapsed().as_secs_f64(),
        root.display()
    );
    if !failures.is_empty() {
        bail!("{} problem(s):\n  {}", failures.len(), failures.join("\n  "));
    }
    Ok(())
}

/// The scenarios to run and their worst-case durations, in one line.
fn plan(args: &ChaosArgs) -> String {
    let converge = CONVERGE_DEADLINE.as_secs();
    let detect = DETECT_DEADLINE.as_secs();
    let mut parts = Vec::new();
    if args.wants(Scenario::Loss) || args.wants(Scenario::Attach) {
        parts.push(format!("{} nodes at 20 % loss: converge <= {converge} s", args.nodes));
    }
    if args.wants(Scenario::Loss) {
        parts.push(format!("soak {} s", args.soak));
    }
    if args.wants(Scenario::Attach) {
        parts.push(format!("deck attach <= {} s", ATTACH_DEADLINE.as_secs()));
    }
    if args.wants(Scenario::Partition) {
        parts.push(format!(
            "partition of 1 of {} nodes: converge <= {converge} s, seen <= {detect} s, heal <= {detect} s",
            args.nodes
        ));
    }
    if args.wants(Scenario::Idle) {
        parts.push(format!(
            "{} idle nodes: converge <= {converge} s, settle {} s, measure {} s",
            args.idle,
            IDLE_SETTLE.as_secs(),
            IDLE_WINDOW.as_secs()
        ));
    }
    parts.join("; ")
}

/// Prints one figure on stdout.
fn figure(name: &str, value: impl std::fmt::Display, unit: &str) {
    println!("figure: {name} = {value} {unit}");
    let _ = std::io::stdout().flush();
}

/// Reports (stdout and the final error) that something did not converge.
fn not_converged(failures: &mut Vec<String>, what: String) {
    println!("chaos: did not converge: {what}");
    let _ = std::io::stdout().flush();
    failures.push(format!("did not converge: {what}"));
}

#[cfg(test)]
mod tests;
