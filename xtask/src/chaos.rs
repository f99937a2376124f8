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
//! - `idle`: start `--idle` nodes, wait for convergence, settle 5 s, then sum
//!   each process's utime+stime from `/proc/PID/stat` over 30 s
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

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};

use crate::cluster::{self, Node};
use crate::util::{cargo, run as sh};

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
const IDLE_SETTLE: Duration = Duration::from_secs(5);
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

// ----- outside the namespace: checks, build, re-exec -----

fn outside(raw: &[String]) -> Result<()> {
    let root = effective_uid() == Some(0);
    let mut missing = Vec::new();
    for tool in ["unshare", "ip"] {
        if find_tool(tool).is_none() {
            missing.push(format!("`{tool}` (package util-linux / iproute2)"));
        }
    }
    if find_tool("nft").is_none() {
        if root {
            eprintln!("xtask chaos: `nft` is missing; installing nftables ...");
            let installed = sh(Command::new("apt-get")
                .args(["install", "-y", "nftables"])
                .env("DEBIAN_FRONTEND", "noninteractive")
                .stdin(Stdio::null()));
            if let Err(e) = installed {
                missing.push(format!("`nft` (apt-get install -y nftables failed: {e:#})"));
            } else if find_tool("nft").is_none() {
                missing.push("`nft` (still missing after installing nftables)".to_owned());
            }
        } else {
            missing.push("`nft` (package nftables; as root this task installs it)".to_owned());
        }
    }
    if !root {
        missing.push("root (unshare --net and nftables need CAP_SYS_ADMIN / CAP_NET_ADMIN)".into());
    }
    if !missing.is_empty() {
        bail!("cargo xtask chaos cannot run; missing:\n  {}", missing.join("\n  "));
    }

    eprintln!("xtask chaos: building meshd and deck in release ...");
    sh(cargo().args([
        "build",
        "--release",
        "--locked",
        "-p",
        "meshd",
        "--bin",
        "meshd",
        "-p",
        "deck-tui",
        "--bin",
        "deck",
    ]))?;
    let exe = std::env::current_exe().context("finding the xtask binary")?;
    let unshare = find_tool("unshare").context("unshare")?;
    eprintln!("xtask chaos: entering a fresh network namespace (unshare --net)");
    let mut cmd = Command::new(unshare);
    // The membership lines the task reads are logged at info.
    cmd.arg("--net")
        .arg("--")
        .arg(&exe)
        .arg("chaos")
        .args(raw)
        .env(INSIDE_ENV, "1")
        .env("RUST_LOG", "info");
    let status = cmd.status().context("running unshare --net")?;
    if !status.success() {
        bail!("the chaos run inside the network namespace failed ({status}); see above");
    }
    Ok(())
}

/// The effective user id (from `/proc/self/status`).
fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("Uid:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A program on `PATH` (or in the sbin directories, which a non-login root
/// shell may lack).
fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
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

fn loss_and_attach(
    args: &ChaosArgs,
    bins: &Bins,
    nft: &Nft,
    dir: &Path,
    failures: &mut Vec<String>,
) -> Result<()> {
    let report_loss = args.wants(Scenario::Loss);
    nft.clear()?;
    nft.rule(LOSS_RULE)?;
    let t0 = now_us();
    let mut mesh = Mesh::start("loss", bins, dir, args.nodes)?;
    let converged = mesh.wait_all_healthy(t0, CONVERGE_DEADLINE)?;
    let converge_s = match converged {
        Some(t) => {
            let s = (t - t0) as f64 / 1e6;
            eprintln!(
                "xtask chaos: loss: {} nodes converged {s:.2} s after the first started",
                args.nodes
            );
            s
        }
        None => {
            if report_loss {
                not_converged(
                    failures,
                    format!(
                        "loss: {} nodes at 20 % loss never all healthy at once within {} s ({})",
                        args.nodes,
                        CONVERGE_DEADLINE.as_secs(),
                        mesh.view.progress()
                    ),
                );
            }
            CONVERGE_DEADLINE.as_secs_f64()
        }
    };
    if report_loss {
        figure("chaos_loss20_converge_s", format!("{converge_s:.2}"), "s");

        let soak = Duration::from_secs(args.soak);
        eprintln!(
            "xtask chaos: loss: soaking {} s at 20 % loss, every node alive ...",
            soak.as_secs()
        );
        let start = now_us();
        let began = Instant::now();
        let mut last_report = Instant::now();
        while began.elapsed() < soak {
            std::thread::sleep(
                Duration::from_millis(250).min(soak.saturating_sub(began.elapsed())),
            );
            mesh.poll()?;
            if last_report.elapsed() >= PROGRESS {
                last_report = Instant::now();
                let (u, s) = mesh.view.false_failures(start, now_us());
                eprintln!(
                    "xtask chaos: loss: soak {} s left; {u} unreachable, {s} suspect so far",
                    soak.saturating_sub(began.elapsed()).as_secs()
                );
            }
        }
        let end = now_us();
        // Lines written just before the end may still be on their way to the files.
        std::thread::sleep(Duration::from_millis(200));
        mesh.poll()?;
        mesh.view.catch_up(CATCH_UP)?;
        let (unreachable, suspect) = mesh.view.false_failures(start, end);
        figure("chaos_loss20_false_unreachable", unreachable, "count");
        figure("chaos_loss20_false_suspect", suspect, "count");
    }

    if args.wants(Scenario::Attach) {
        let (ms, read) = mesh.attach(bins, failures)?;
        figure("chaos_attach_loss20_ms", ms, "ms");
        figure("chaos_attach_loss20_nodes_read", read, "count");
    }
    drop(mesh);
    nft.clear()
}

fn partition(
    args: &ChaosArgs,
    bins: &Bins,
    nft: &Nft,
    dir: &Path,
    failures: &mut Vec<String>,
) -> Result<()> {
    nft.clear()?;
    let t0 = now_us();
    let mut mesh = Mesh::start("partition", bins, dir, args.nodes)?;
    let converged = mesh.wait_all_healthy(t0, CONVERGE_DEADLINE)?;
    if let Some(t) = converged {
        eprintln!(
            "xtask chaos: partition: {} nodes converged {:.2} s after the first started",
            args.nodes,
            (t - t0) as f64 / 1e6
        );
    } else {
        not_converged(
            failures,
            format!(
                "partition: {} nodes without loss never all healthy within {} s ({}); \
                 no partition measured",
                args.nodes,
                CONVERGE_DEADLINE.as_secs(),
                mesh.view.progress()
            ),
        );
        let ms = DETECT_DEADLINE.as_millis();
        figure("chaos_partition_seen_ms", ms, "ms");
        figure("chaos_heal_ms", ms, "ms");
        return Ok(());
    }
    // A calm moment: everyone healthy for a little while.
    let calm = Instant::now();
    while calm.elapsed() < PRE_PARTITION_CALM {
        std::thread::sleep(POLL);
        mesh.poll()?;
    }
    if !mesh.view.all_healthy() {
        mesh.wait_all_healthy(now_us(), CONVERGE_DEADLINE)?;
    }

    let target = args.nodes - 1;
    let port = mesh.nodes[target]
        .addr
        .parse::<SocketAddr>()
        .with_context(|| format!("node-{target} address {:?}", mesh.nodes[target].addr))?
        .port();
    eprintln!(
        "xtask chaos: partition: cutting node-{target} ({}, {}) off",
        mesh.nodes[target].addr, mesh.nodes[target].id
    );
    let cut = now_us();
    nft.rule(&format!("udp dport {port} drop"))?;
    nft.rule(&format!("udp sport {port} drop"))?;
    let seen = mesh.wait_others_see(target, cut, &[Kind::Unreachable], "see it unreachable")?;
    let seen_ms = match seen {
        Some(t) => (t - cut) / 1000,
        None => {
            not_converged(
                failures,
                format!(
                    "partition: not every node saw node-{target} unreachable within {} s",
                    DETECT_DEADLINE.as_secs()
                ),
            );
            DETECT_DEADLINE.as_millis() as u64
        }
    };
    figure("chaos_partition_seen_ms", seen_ms, "ms");

    eprintln!("xtask chaos: partition: healing (rules removed)");
    let heal = now_us();
    nft.clear()?;
    let healed = mesh.wait_others_see(
        target,
        heal,
        &[Kind::Healthy, Kind::Joined, Kind::Rejoined],
        "see it healthy",
    )?;
    let heal_ms = match healed {
        Some(t) => (t - heal) / 1000,
        None => {
            not_converged(
                failures,
                format!(
                    "partition: not every node saw node-{target} healthy again within {} s",
                    DETECT_DEADLINE.as_secs()
                ),
            );
            DETECT_DEADLINE.as_millis() as u64
        }
    };
    figure("chaos_heal_ms", heal_ms, "ms");
    Ok(())
}

fn idle(args: &ChaosArgs, bins: &Bins, dir: &Path, failures: &mut Vec<String>) -> Result<()> {
    let n = args.idle;
    let t0 = now_us();
    let mut mesh = Mesh::start("idle", bins, dir, n)?;
    match mesh.wait_all_healthy(t0, CONVERGE_DEADLINE)? {
        Some(t) => {
            eprintln!(
                "xtask chaos: idle: {n} nodes converged {:.2} s after the first started",
                (t - t0) as f64 / 1e6
            )
        }
        None => not_converged(
            failures,
            format!(
                "idle: {n} nodes never all healthy within {} s ({}); CPU measured anyway",
                CONVERGE_DEADLINE.as_secs(),
                mesh.view.progress()
            ),
        ),
    }
    eprintln!(
        "xtask chaos: idle: settling {} s, then measuring CPU over {} s ...",
        IDLE_SETTLE.as_secs(),
        IDLE_WINDOW.as_secs()
    );
    std::thread::sleep(IDLE_SETTLE);
    let pids: Vec<u32> = mesh.nodes.iter().map(|n| n.child.id()).collect();
    let before = pids.iter().map(|&p| cpu_ticks(p)).collect::<Result<Vec<_>>>()?;
    let began = Instant::now();
    while began.elapsed() < IDLE_WINDOW {
        std::thread::sleep(PROGRESS.min(IDLE_WINDOW.saturating_sub(began.elapsed())));
        eprintln!(
            "xtask chaos: idle: {} s left",
            IDLE_WINDOW.saturating_sub(began.elapsed()).as_secs()
        );
    }
    let after = pids.iter().map(|&p| cpu_ticks(p)).collect::<Result<Vec<_>>>()?;
    let elapsed = began.elapsed().as_secs_f64();
    mesh.check_alive()?;
    let ticks: u64 = after.iter().zip(&before).map(|(a, b)| a.saturating_sub(*b)).sum();
    let per_s = clock_ticks_per_s();
    let pct = ticks as f64 / per_s / elapsed / n as f64 * 100.0;
    let max = after
        .iter()
        .zip(&before)
        .map(|(a, b)| a.saturating_sub(*b) as f64 / per_s / elapsed * 100.0)
        .fold(0.0, f64::max);
    eprintln!(
        "xtask chaos: idle: {n} nodes used {:.2} s of CPU in {elapsed:.1} s ({:.1} % of one core \
         in all; busiest node {max:.2} %)",
        ticks as f64 / per_s,
        pct * n as f64
    );
    figure(&format!("meshd_idle_cpu_pct_per_node_{n}"), format!("{pct:.3}"), "%");
    Ok(())
}

// ----- scheduling priority -----

/// The nice value this task started with; set once the task's main thread
/// has raised its own priority.
static BASE_NICE: std::sync::OnceLock<i32> = std::sync::OnceLock::new();

/// Gives this (the main, observing) thread 10 nice levels more than it was
/// started with (at most -10), so that reading the logs of an overloaded
/// cluster does not fall minutes behind; every process it starts runs at the
/// original nice value ([`at_base_priority`]). Best effort.
fn raise_observer_priority() {
    let Some(base) = thread_nice() else { return };
    let wanted = (base - 10).max(-10);
    if wanted < base && set_thread_nice(wanted) {
        let _ = BASE_NICE.set(base);
        eprintln!("xtask chaos: observing at nice {wanted}; meshd and deck run at nice {base}");
    }
}

/// Runs `f` (which starts processes) on a thread at the task's original nice
/// value, so the processes inherit that and not the observer's.
fn at_base_priority<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    let Some(&base) = BASE_NICE.get() else { return f() };
    std::thread::scope(|scope| {
        let handle = scope.spawn(move || {
            if !set_thread_nice(base) {
                eprintln!("xtask chaos: warning: cannot reset a thread to nice {base}");
            }
            f()
        });
        match handle.join() {
            Ok(value) => value,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// The calling thread's id (from `/proc/thread-self`).
fn thread_id() -> Option<u32> {
    let link = std::fs::read_link("/proc/thread-self").ok()?;
    link.file_name()?.to_str()?.parse().ok()
}

/// The calling thread's nice value (field 19 of its stat).
fn thread_nice() -> Option<i32> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    stat.rsplit_once(')')?.1.split_whitespace().nth(19 - 3)?.parse().ok()
}

/// Sets the calling thread's nice value (`renice VALUE -p TID`; on Linux a
/// nice value belongs to one thread).
fn set_thread_nice(nice: i32) -> bool {
    let Some(tid) = thread_id() else { return false };
    Command::new("renice")
        .arg(nice.to_string())
        .arg("-p")
        .arg(tid.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
        && thread_nice() == Some(nice)
}

// ----- nftables -----

/// The `inet chaos` table with its input chain; deleted when dropped.
struct Nft {
    bin: PathBuf,
}

impl Nft {
    /// Creates the table (replacing a leftover one) and its input chain.
    fn create(bin: PathBuf) -> Result<Nft> {
        let nft = Nft { bin };
        // `add` first so the `delete` never fails on a missing table.
        nft.script(
            "add table inet chaos\n\
             delete table inet chaos\n\
             add table inet chaos\n\
             add chain inet chaos input { type filter hook input priority 0; policy accept; }\n",
        )
        .context("creating the nftables table inet chaos (is nf_tables available?)")?;
        Ok(nft)
    }

    /// Appends `rule` to the input chain.
    fn rule(&self, rule: &str) -> Result<()> {
        self.script(&format!("add rule inet chaos input {rule}\n"))
    }

    /// Removes every rule from the input chain.
    fn clear(&self) -> Result<()> {
        self.script("flush chain inet chaos input\n")
    }

    fn script(&self, text: &str) -> Result<()> {
        for line in text.lines() {
            eprintln!("$ nft {line}");
        }
        let mut child = Command::new(&self.bin)
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", self.bin.display()))?;
        child.stdin.take().context("nft stdin")?.write_all(text.as_bytes())?;
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!("nft failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(())
    }
}

impl Drop for Nft {
    fn drop(&mut self) {
        let _ = self.script("delete table inet chaos\n");
    }
}

// ----- a cluster and what its logs say -----

/// A running cluster; stopped when dropped.
struct Mesh {
    label: &'static str,
    dir: PathBuf,
    nodes: Vec<Node>,
    view: View,
}

impl Mesh {
    /// Makes a fresh cluster in `dir` and starts `n` nodes.
    fn start(label: &'static str, bins: &Bins, dir: &Path, n: usize) -> Result<Mesh> {
        cluster::prepare_dir(dir)?;
        let meshd = &bins.meshd;
        cluster::tool_output(
            Command::new(meshd).arg("keygen-cluster").arg(dir.join("cluster.key")),
        )?;
        let table = cluster::tool_output(
            Command::new(meshd).arg("keygen-operator").arg(dir.join("operator.key")),
        )?;
        let operators = dir.join("operators.toml");
        std::fs::write(
            &operators,
            format!(
                "# Written by `cargo xtask chaos`.\nroutine_threshold = 1\nice_threshold = 1\n\n{table}"
            ),
        )
        .with_context(|| format!("writing {}", operators.display()))?;

        eprintln!("xtask chaos: {label}: starting {n} meshd node(s) in {}", dir.display());
        let mut mesh = Mesh {
            label,
            dir: dir.to_owned(),
            nodes: Vec::with_capacity(n),
            view: View::default(),
        };
        let started = Instant::now();
        let first = at_base_priority(|| Node::spawn(meshd, dir, 0, "127.0.0.1:0", None))?;
        let seed = first.addr.clone();
        mesh.nodes.push(first);
        for i in 1..n {
            let node = at_base_priority(|| Node::spawn(meshd, dir, i, "127.0.0.1:0", Some(&seed)))?;
            mesh.nodes.push(node);
            if (i + 1) % 16 == 0 && i + 1 < n {
                eprintln!("xtask chaos: {label}: {} of {n} nodes started", i + 1);
            }
        }
        eprintln!(
            "xtask chaos: {label}: {n} node(s) listening after {} ms (node 0 on {seed})",
            started.elapsed().as_millis()
        );
        let ids = mesh
            .nodes
            .iter()
            .map(|node| parse_id(&node.id).with_context(|| format!("node id {:?}", node.id)))
            .collect::<Result<Vec<_>>>()?;
        mesh.view = View::new(&ids, mesh.nodes.iter().map(|node| node.log.clone()).collect());
        Ok(mesh)
    }

    /// Reads what the nodes logged since the last poll.
    fn poll(&mut self) -> Result<()> {
        self.check_alive()?;
        self.view.poll().map(|_| ())
    }

    /// After a deadline: reads what the logs already hold (up to [`CATCH_UP`]),
    /// so a task that fell behind an overloaded cluster's logs decides on
    /// everything written in time. Returns false if it was caught up already.
    fn catch_up(&mut self) -> Result<bool> {
        if self.view.caught_up {
            return Ok(false);
        }
        eprintln!(
            "xtask chaos: {}: deadline reached; reading the {} MiB of log still unread ...",
            self.label,
            self.view.backlog() / (1024 * 1024)
        );
        self.view.catch_up(CATCH_UP)?;
        Ok(true)
    }

    /// Fails if a node has exited.
    fn check_alive(&mut self) -> Result<()> {
        for node in &mut self.nodes {
            if node.exited.is_none() {
                if let Some(status) = node.child.try_wait()? {
                    node.exited = Some(status);
                    bail!(
                        "{}: node-{} exited ({status}):\n{}",
                        self.label,
                        node.index,
                        node.log_tail()
                    );
                }
            }
        }
        Ok(())
    }

    /// Waits until every node sees every other one healthy at one moment at or
    /// after `since` (µs since the epoch); returns that moment, or `None` after
    /// `deadline`.
    fn wait_all_healthy(&mut self, since: u64, deadline: Duration) -> Result<Option<u64>> {
        let began = Instant::now();
        let mut last_report = Instant::now();
        loop {
            self.poll()?;
            if let Some(t) = self.view.first_all_healthy(since) {
                return Ok(Some(t));
            }
            if began.elapsed() >= deadline {
                if self.catch_up()? {
                    continue;
                }
                return Ok(None);
            }
            if last_report.elapsed() >= PROGRESS {
                last_report = Instant::now();
                eprintln!(
                    "xtask chaos: {}: waiting for convergence: {}; {} s left{}",
                    self.label,
                    self.view.progress(),
                    deadline.saturating_sub(began.elapsed()).as_secs(),
                    self.view.lag_note()
                );
            }
            std::thread::sleep(POLL);
        }
    }

    /// Waits until every node but `target` has logged one of `kinds` about it at
    /// or after `since`; returns the moment the last of them did, or `None`
    /// after [`DETECT_DEADLINE`].
    fn wait_others_see(
        &mut self,
        target: usize,
        since: u64,
        kinds: &[Kind],
        what: &str,
    ) -> Result<Option<u64>> {
        let began = Instant::now();
        let mut last_report = Instant::now();
        loop {
            self.poll()?;
            let firsts = self.view.first_about(target, since, kinds);
            let seen = firsts.iter().flatten().count();
            if seen == firsts.len() {
                let times: Vec<u64> = firsts.into_iter().flatten().collect();
                let ms = |t: Option<&u64>| t.map_or(0, |t| (t - since) / 1000);
                eprintln!(
                    "xtask chaos: {}: all {} other nodes {what}: first after {} ms, last after {} ms",
                    self.label,
                    times.len(),
                    ms(times.iter().min()),
                    ms(times.iter().max())
                );
                return Ok(times.into_iter().max().or(Some(since)));
            }
            if began.elapsed() >= DETECT_DEADLINE {
                if self.catch_up()? {
                    continue;
                }
                return Ok(None);
            }
            if last_report.elapsed() >= PROGRESS {
                last_report = Instant::now();
                eprintln!(
                    "xtask chaos: {}: {seen} of {} other nodes {what}; {} s left{}",
                    self.label,
                    firsts.len(),
                    DETECT_DEADLINE.saturating_sub(began.elapsed()).as_secs(),
                    self.view.lag_note()
                );
            }
            std::thread::sleep(POLL);
        }
    }

    /// Runs `deck --attach NODE0 --once --json`; returns its wall time (ms) and
    /// how many of the cluster's nodes it read.
    fn attach(&mut self, bins: &Bins, failures: &mut Vec<String>) -> Result<(u64, usize)> {
        let json_path = self.dir.join("deck-attach.json");
        let err_path = self.dir.join("deck-attach.err");
        let mut cmd = Command::new(&bins.deck);
        cmd.arg("--attach")
            .arg(&self.nodes[0].addr)
            .arg("--cluster-key")
            .arg(self.dir.join("cluster.key"))
            .arg("--operator-key")
            .arg(self.dir.join("operator.key"))
            .args(["--once", "--json", "--no-color"])
            .stdin(Stdio::null())
            .stdout(Stdio::from(std::fs::File::create(&json_path)?))
            .stderr(Stdio::from(std::fs::File::create(&err_path)?));
        eprintln!(
            "xtask chaos: {}: $ deck --attach {} --cluster-key {} --operator-key {} --once --json",
            self.label,
            self.nodes[0].addr,
            self.dir.join("cluster.key").display(),
            self.dir.join("operator.key").display()
        );
        let began = Instant::now();
        let mut child = at_base_priority(|| cmd.spawn())
            .with_context(|| format!("starting {}", bins.deck.display()))?;
        let mut last_report = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break Some(status);
            }
            if began.elapsed() >= ATTACH_DEADLINE {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            if last_report.elapsed() >= PROGRESS {
                last_report = Instant::now();
                eprintln!(
                    "xtask chaos: {}: deck attaching ({} s left)",
                    self.label,
                    ATTACH_DEADLINE.saturating_sub(began.elapsed()).as_secs()
                );
            }
            // Keep reading the logs so later scenarios do not parse a backlog.
            self.view.poll()?;
            std::thread::sleep(Duration::from_millis(10));
        };
        let ms = began.elapsed().as_millis() as u64;
        let err = std::fs::read_to_string(&err_path).unwrap_or_default();
        match status {
            Some(s) if s.success() => {}
            Some(s) => {
                not_converged(
                    failures,
                    format!("attach: deck --once failed after {ms} ms ({s}): {}", err.trim()),
                );
                return Ok((ms, 0));
            }
            None => {
                not_converged(
                    failures,
                    format!(
                        "attach: deck --once still running after {} s; killed",
                        ATTACH_DEADLINE.as_secs()
                    ),
                );
                return Ok((ATTACH_DEADLINE.as_millis() as u64, 0));
            }
        }
        let text = std::fs::read_to_string(&json_path)
            .with_context(|| format!("reading {}", json_path.display()))?;
        let json: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("deck output {} is not JSON", json_path.display()))?;
        let read = nodes_read(&json, &self.view.ids);
        let summary = &json["summary"];
        eprintln!(
            "xtask chaos: {}: deck settled in {ms} ms: read {read} of {} nodes; summary nodes {} \
             healthy {} degraded {} unreachable {} unread {}",
            self.label,
            self.nodes.len(),
            summary["nodes"],
            summary["nodes_healthy"],
            summary["nodes_degraded"],
            summary["nodes_unreachable"],
            summary["unread_nodes"]
        );
        Ok((ms, read))
    }
}

impl Drop for Mesh {
    fn drop(&mut self) {
        eprintln!("xtask chaos: {}: stopping {} node(s)", self.label, self.nodes.len());
        cluster::stop_all(&mut self.nodes);
    }
}

/// Nodes of the cluster (`ids`) the deck read: entries of the JSON's `streams`
/// (keyed by node id) with a successful read (`last_ok_ms`) and no error since.
fn nodes_read(json: &serde_json::Value, ids: &HashMap<u64, usize>) -> usize {
    let Some(streams) = json["streams"].as_object() else { return 0 };
    streams
        .iter()
        .filter(|(id, _)| parse_id(id).is_some_and(|id| ids.contains_key(&id)))
        .filter(|(_, s)| !s["last_ok_ms"].is_null() && s["last_error"].is_null())
        .count()
}

/// What a log line says about a member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// `member joined`: a new peer's session (its first label is not logged).
    Joined,
    /// `member rejoined`: a new session with a peer that was down or gone.
    Rejoined,
    /// `member healthy again`.
    Healthy,
    /// `member suspect (degraded)`.
    Suspect,
    /// `member unreachable`.
    Unreachable,
    /// `member left the cluster`.
    Left,
}

impl Kind {
    /// Messages, in the order they are looked for.
    const MESSAGES: [(&'static str, Kind); 6] = [
        ("member rejoined", Kind::Rejoined),
        ("member joined", Kind::Joined),
        ("member healthy again", Kind::Healthy),
        ("member suspect", Kind::Suspect),
        ("member unreachable", Kind::Unreachable),
        ("member left the cluster", Kind::Left),
    ];

    fn is_healthy(self) -> bool {
        matches!(self, Kind::Joined | Kind::Rejoined | Kind::Healthy)
    }
}

/// One membership line: at `ts` (µs since the epoch) node `observer` logged
/// `kind` about node `peer` (indices into the cluster's nodes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Event {
    ts: u64,
    observer: usize,
    peer: usize,
    kind: Kind,
}

/// Parses a membership line: (timestamp, member id, kind). The timestamp is
/// the line's leading RFC 3339 one, or `fallback_ts` when it has none.
///
/// Plain byte loops: xtask is built without optimizations, and an overloaded
/// cluster logs tens of megabytes a minute.
fn parse_line(line: &[u8], fallback_ts: u64) -> Option<(u64, u64, Kind)> {
    let mut from = 0;
    let (kind, after) = loop {
        let at = from + find_bytes(&line[from..], b"member ")?;
        let rest = &line[at..];
        if let Some((msg, kind)) =
            Kind::MESSAGES.iter().find(|(m, _)| rest.starts_with(m.as_bytes()))
        {
            break (*kind, at + msg.len());
        }
        from = at + 1;
    };
    // The member is a field after the message (`node=` or `peer=`).
    let rest = &line[after..];
    let field = find_bytes(rest, b" node=").or_else(|| find_bytes(rest, b" peer="))? + 6;
    let mut end = field;
    while end < rest.len() && rest[end].is_ascii_alphanumeric() {
        end += 1;
    }
    let id = parse_id(std::str::from_utf8(&rest[field..end]).ok()?)?;
    let mut first_space = 0;
    while first_space < line.len() && line[first_space] != b' ' {
        first_space += 1;
    }
    let ts = std::str::from_utf8(&line[..first_space])
        .ok()
        .and_then(parse_rfc3339_us)
        .unwrap_or(fallback_ts);
    Some((ts, id, kind))
}

/// Where `needle` (not empty) first occurs in `hay`.
fn find_bytes(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let first = needle[0];
    let last = hay.len().checked_sub(needle.len())?;
    let mut i = 0;
    while i <= last {
        if hay[i] == first && &hay[i..i + needle.len()] == needle {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// `0x` and up to 16 hex digits.
fn parse_id(s: &str) -> Option<u64> {
    let digits = s.strip_prefix("0x").unwrap_or(s);
    if digits.is_empty() || digits.len() > 16 {
        return None;
    }
    u64::from_str_radix(digits, 16).ok()
}

/// `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)` as µs since the Unix epoch.
fn parse_rfc3339_us(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut micros = 0i64;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let mut scaled: String = frac[..digits].chars().take(6).collect();
        while scaled.len() < 6 {
            scaled.push('0');
        }
        micros = scaled.parse().ok()?;
        rest = &frac[digits..];
    }
    let offset_s = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            if rest.len() != 6 || rest.as_bytes()[3] != b':' {
                return None;
            }
            let oh: i64 = rest[1..3].parse().ok()?;
            let om: i64 = rest[4..6].parse().ok()?;
            sign * (oh * 3600 + om * 60)
        }
    };
    let days = days_from_civil(y, mo as u32, d as u32);
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset_s;
    u64::try_from(secs * 1_000_000 + micros).ok()
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    // Years start in March, so the leap day is the last day of the year.
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let year_of_era = y - era * 400;
    let month_from_march = i64::from((m + 9) % 12);
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(d) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Microseconds since the Unix epoch (the clock the nodes stamp their logs with).
fn now_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

/// The tail of one log file, read as it grows.
#[derive(Debug)]
struct LogTail {
    path: PathBuf,
    offset: u64,
    partial: Vec<u8>,
}

impl LogTail {
    /// The complete lines written since the last call (at most about
    /// `budget` bytes of them), and whether the file was read to its end.
    fn read_lines(&mut self, budget: u64) -> Result<(Vec<u8>, bool)> {
        let mut file = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), true)),
            Err(e) => return Err(e).with_context(|| format!("opening {}", self.path.display())),
        };
        file.seek(SeekFrom::Start(self.offset))?;
        let mut buf = Vec::new();
        (&mut file)
            .take(budget)
            .read_to_end(&mut buf)
            .with_context(|| format!("reading {}", self.path.display()))?;
        let at_end = (buf.len() as u64) < budget;
        self.offset += buf.len() as u64;
        self.partial.extend_from_slice(&buf);
        let mut cut = self.partial.len();
        while cut > 0 && self.partial[cut - 1] != b'\n' {
            cut -= 1;
        }
        let rest = self.partial.split_off(cut);
        Ok((std::mem::replace(&mut self.partial, rest), at_end))
    }
}

/// What every node thinks of every other one, from their logs.
#[derive(Debug, Default)]
struct View {
    /// Node id -> index.
    ids: HashMap<u64, usize>,
    tails: Vec<LogTail>,
    /// `state[observer][peer]`: the last line about the pair, and its time.
    state: Vec<Vec<Option<(Kind, u64)>>>,
    /// Pairs (observer != peer) whose last line is a healthy one.
    healthy_pairs: usize,
    /// Every membership line about a cluster node, in timestamp order per poll.
    events: Vec<Event>,
    /// Moments (µs) at which the last unhealthy pair became healthy.
    all_healthy_at: Vec<u64>,
    /// Whether the last poll read every log to its end.
    caught_up: bool,
}

impl View {
    fn new(ids: &[u64], logs: Vec<PathBuf>) -> View {
        let n = ids.len();
        View {
            ids: ids.iter().enumerate().map(|(i, id)| (*id, i)).collect(),
            tails: logs
                .into_iter()
                .map(|path| LogTail { path, offset: 0, partial: Vec::new() })
                .collect(),
            state: vec![vec![None; n]; n],
            healthy_pairs: 0,
            events: Vec::new(),
            all_healthy_at: Vec::new(),
            caught_up: true,
        }
    }

    fn pairs(&self) -> usize {
        let n = self.state.len();
        n * n.saturating_sub(1)
    }

    /// Reads new lines from every log (at most [`POLL_BUDGET`] bytes of each)
    /// and applies them in timestamp order. Returns whether every log was read
    /// to its end.
    fn poll(&mut self) -> Result<bool> {
        let now = now_us();
        let mut new = Vec::new();
        let mut caught_up = true;
        for (observer, tail) in self.tails.iter_mut().enumerate() {
            let (chunk, at_end) = tail.read_lines(POLL_BUDGET)?;
            caught_up &= at_end;
            let mut start = 0;
            while start < chunk.len() {
                let mut end = start;
                while end < chunk.len() && chunk[end] != b'\n' {
                    end += 1;
                }
                let line = &chunk[start..end];
                start = end + 1;
                let Some((ts, id, kind)) = parse_line(line, now) else { continue };
                let Some(&peer) = self.ids.get(&id) else { continue };
                if peer != observer {
                    new.push(Event { ts, observer, peer, kind });
                }
            }
        }
        new.sort_by_key(|e| e.ts);
        for event in new {
            self.apply(event);
        }
        self.caught_up = caught_up;
        Ok(caught_up)
    }

    /// Bytes written to the logs and not read yet.
    fn backlog(&self) -> u64 {
        self.tails
            .iter()
            .map(|t| {
                let len = std::fs::metadata(&t.path).map_or(0, |m| m.len());
                len.saturating_sub(t.offset)
            })
            .sum()
    }

    /// "" when the last poll read every log to its end, else how far behind.
    fn lag_note(&self) -> String {
        if self.caught_up {
            String::new()
        } else {
            format!(" (log reading behind by {} KiB)", self.backlog() / 1024)
        }
    }

    /// Reads the logs to their ends (for at most `limit`).
    fn catch_up(&mut self, limit: Duration) -> Result<()> {
        let began = Instant::now();
        while !self.poll()? && began.elapsed() < limit {}
        Ok(())
    }

    fn apply(&mut self, e: Event) {
        let slot = &mut self.state[e.observer][e.peer];
        let before = *slot;
        let was = before.is_some_and(|(k, _)| k.is_healthy());
        *slot = Some((e.kind, e.ts));
        if let (Some((Kind::Joined, joined)), Kind::Healthy) = (before, e.kind) {
            // `healthy again` right after `joined`: the unlogged first label was
            // not healthy, so the pair was not healthy since it joined.
            self.all_healthy_at.retain(|&t| t < joined);
            if self.all_healthy() {
                self.all_healthy_at.push(e.ts);
            }
        }
        match (was, e.kind.is_healthy()) {
            (false, true) => {
                self.healthy_pairs += 1;
                if self.healthy_pairs == self.pairs() {
                    self.all_healthy_at.push(e.ts);
                }
            }
            (true, false) => self.healthy_pairs -= 1,
            _ => {}
        }
        self.events.push(e);
    }

    fn all_healthy(&self) -> bool {
        self.healthy_pairs == self.pairs()
    }

    /// The first moment at or after `since` at which every pair was healthy.
    fn first_all_healthy(&self, since: u64) -> Option<u64> {
        if self.pairs() == 0 {
            return Some(since);
        }
        self.all_healthy_at.iter().copied().find(|&t| t >= since)
    }

    /// Per other node: the first moment at or after `since` it logged one of
    /// `kinds` about `target`.
    fn first_about(&self, target: usize, since: u64, kinds: &[Kind]) -> Vec<Option<u64>> {
        let mut firsts: Vec<Option<u64>> = vec![None; self.state.len()];
        for e in &self.events {
            if e.peer == target && e.ts >= since && kinds.contains(&e.kind) {
                let slot = &mut firsts[e.observer];
                *slot = Some(slot.map_or(e.ts, |t| t.min(e.ts)));
            }
        }
        firsts.remove(target);
        firsts
    }

    /// `member unreachable` and `member suspect` lines about cluster nodes
    /// logged in `[from, to]`.
    fn false_failures(&self, from: u64, to: u64) -> (usize, usize) {
        let window = self.events.iter().filter(|e| e.ts >= from && e.ts <= to);
        let count = |kind| window.clone().filter(|e| e.kind == kind).count();
        (count(Kind::Unreachable), count(Kind::Suspect))
    }

    /// One line: healthy pairs, and nodes that see everyone healthy.
    fn progress(&self) -> String {
        let n = self.state.len();
        let complete = (0..n)
            .filter(|&o| {
                (0..n).all(|p| p == o || self.state[o][p].is_some_and(|(k, _)| k.is_healthy()))
            })
            .count();
        format!(
            "{}/{} member views healthy, {complete}/{n} nodes see every other one healthy",
            self.healthy_pairs,
            self.pairs()
        )
    }
}

// ----- CPU -----

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    // Fields after the command name (which may hold spaces and parentheses).
    let fields: Vec<&str> =
        stat.rsplit_once(')').map_or("", |(_, r)| r).split_whitespace().collect();
    let field = |i: usize| -> Result<u64> {
        fields.get(i).and_then(|f| f.parse().ok()).with_context(|| format!("parsing {path}"))
    };
    // utime and stime are fields 14 and 15 of stat(5); 3 is the first after ')'.
    Ok(field(14 - 3)? + field(15 - 3)?)
}

/// Clock ticks per second (`getconf CLK_TCK`, else 100).
fn clock_ticks_per_s() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn arguments() {
        assert_eq!(ChaosArgs::parse(&[]).unwrap(), ChaosArgs::default());
        let a = ChaosArgs::parse(&args(&["--nodes", "5", "--soak=20", "--idle", "16"])).unwrap();
        assert_eq!((a.nodes, a.soak, a.idle), (5, 20, 16));
        assert!(a.wants(Scenario::Idle) && a.wants(Scenario::Loss));
        let a = ChaosArgs::parse(&args(&["--only", "loss,idle", "--only=idle"])).unwrap();
        assert_eq!(a.only, [Scenario::Loss, Scenario::Idle]);
        assert!(!a.wants(Scenario::Partition));
        assert!(ChaosArgs::parse(&args(&["--only", "flood"])).is_err());
        assert!(ChaosArgs::parse(&args(&["--nodes", "1"])).is_err());
        assert!(ChaosArgs::parse(&args(&["--idle", "0"])).is_err());
        assert!(ChaosArgs::parse(&args(&["--soak"])).is_err());
        assert!(ChaosArgs::parse(&args(&["--bogus"])).is_err());
    }

    #[test]
    fn timestamps() {
        assert_eq!(parse_rfc3339_us("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339_us("1970-01-01T00:00:01.5Z"), Some(1_500_000));
        assert_eq!(parse_rfc3339_us("2000-03-01T00:00:00.000001Z"), Some(951_868_800_000_001));
        assert_eq!(parse_rfc3339_us("2024-02-29T12:00:00+01:00"), Some(1_709_204_400_000_000));
        assert_eq!(parse_rfc3339_us("2026-12-04T22:51:45.538404Z"), Some(1_796_424_705_538_404));
        assert_eq!(parse_rfc3339_us("meshd:"), None);
        assert_eq!(parse_rfc3339_us("2026-12-04T22:51:45.Z"), None);
    }

    #[test]
    fn membership_lines() {
        let joined = "2026-12-04T22:51:46.046279Z  INFO mesh::node::handshake: member joined \
                      peer=0x0d87fb9df4857319 addr=127.0.0.1:55709";
        assert_eq!(
            parse_line(joined.as_bytes(), 7),
            Some((1_796_424_706_046_279, 0x0d87_fb9d_f485_7319, Kind::Joined))
        );
        let left = "2026-12-04T22:51:50.841483Z  INFO mesh::node::maintain: member left the \
                    cluster node=0x7bf04d03b7c27759 addr=127.0.0.1:37943";
        assert_eq!(parse_line(left.as_bytes(), 7).map(|l| l.2), Some(Kind::Left));
        let suspect = "T  WARN mesh::node::maintain: member suspect (degraded) node=0x1 \
                       addr=127.0.0.1:1 reason=missed probes: silent for 612 ms was=\"healthy\"";
        assert_eq!(parse_line(suspect.as_bytes(), 7), Some((7, 1, Kind::Suspect)));
        let rejoined = "x member rejoined peer=0x2 addr=127.0.0.1:2";
        assert_eq!(parse_line(rejoined.as_bytes(), 7), Some((7, 2, Kind::Rejoined)));
        assert_eq!(
            parse_line("x member unreachable node=0x3 reason=no reply".as_bytes(), 7).unwrap().2,
            Kind::Unreachable
        );
        assert_eq!(
            parse_line(b"x member healthy again node=0x4 was=\"degraded\"", 7).unwrap().2,
            Kind::Healthy
        );
        assert_eq!(parse_line("x listening node=0x5 addr=127.0.0.1:3".as_bytes(), 7), None);
    }

    #[test]
    fn views_converge_at_the_last_healthy_pair() {
        let mut view = View::new(&[10, 11, 12], Vec::new());
        let ev = |ts, observer, peer, kind| Event { ts, observer, peer, kind };
        for (i, (o, p)) in [(0, 1), (0, 2), (1, 0), (1, 2), (2, 0)].into_iter().enumerate() {
            view.apply(ev(i as u64, o, p, Kind::Joined));
        }
        assert_eq!(view.first_all_healthy(0), None);
        view.apply(ev(10, 2, 1, Kind::Suspect));
        view.apply(ev(20, 2, 1, Kind::Healthy));
        assert_eq!(view.first_all_healthy(0), Some(20));
        view.apply(ev(30, 0, 2, Kind::Unreachable));
        view.apply(ev(31, 1, 2, Kind::Unreachable));
        assert!(!view.all_healthy());
        assert_eq!(view.first_about(2, 25, &[Kind::Unreachable]), [Some(30), Some(31)]);
        view.apply(ev(40, 0, 2, Kind::Rejoined));
        assert!(!view.all_healthy());
        view.apply(ev(41, 0, 2, Kind::Healthy));
        view.apply(ev(42, 1, 2, Kind::Healthy));
        assert_eq!(view.first_all_healthy(25), Some(42));
        assert_eq!(view.false_failures(0, 35), (2, 1));
        assert_eq!(view.false_failures(15, 35), (2, 0));
    }

    #[test]
    fn healthy_again_right_after_joined_means_the_first_label_was_not_healthy() {
        let mut view = View::new(&[10, 11], Vec::new());
        let ev = |ts, observer, peer, kind| Event { ts, observer, peer, kind };
        view.apply(ev(1, 0, 1, Kind::Joined));
        view.apply(ev(2, 1, 0, Kind::Joined));
        assert_eq!(view.first_all_healthy(0), Some(2));
        view.apply(ev(9, 1, 0, Kind::Healthy));
        assert_eq!(view.first_all_healthy(0), Some(9));
    }

    #[test]
    fn stat_fields() {
        let me = std::process::id();
        assert!(cpu_ticks(me).is_ok());
        assert!(thread_nice().is_some_and(|n| (-20..=19).contains(&n)));
        assert!(thread_id().is_some());
    }
}
