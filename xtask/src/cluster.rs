//! `cargo xtask cluster [--nodes N] [--port PORT]`: a local cluster of real
//! `meshd` processes.
//!
//! Builds `meshd` in release, makes a fresh cluster under `target/cluster/`
//! (cluster key, operator key, an operators file registering it, one data dir and
//! one log file per node), starts N processes on 127.0.0.1 (node 0 on `--port`,
//! or any free port; the others join through node 0), prints the nodes and how to
//! attach a deck, and waits.
//!
//! Stopping: Enter stops every node (SIGTERM and end of stdin, so each leaves the
//! cluster; anything still running after a grace period is killed). Ctrl-C
//! reaches the nodes directly (the terminal signals the whole foreground process
//! group) and each leaves cleanly on SIGINT. The nodes run with
//! `--exit-on-stdin-eof`, so they also stop if this task dies some other way.
//!
//! `--demo-load` (running the demo workload against the processes) is not
//! implemented yet: the demo workload runs in-process only.

use std::io::{BufRead, BufReader, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::util::{cargo, run as sh, workspace_root};

const USAGE: &str = "usage: cargo xtask cluster [--nodes N] [--port PORT] [--demo-load]

  --nodes N      meshd processes to start (default 5, at most 64)
  --port PORT    node 0's UDP port on 127.0.0.1 (default: any free port)
  --demo-load    also run the demo workload against the nodes (not implemented yet)";

/// Most nodes the task starts (the machine has 2 cores).
const MAX_NODES: usize = 64;
/// How long a node may take to print its ready line.
const START_DEADLINE: Duration = Duration::from_secs(30);
/// How long nodes get to leave the cluster before they are killed.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// How `meshd` announces it listens (see `meshd::READY_PREFIX`).
const READY_PREFIX: &str = "meshd: listening on ";

/// The task's options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ClusterArgs {
    /// Processes to start.
    pub(crate) nodes: usize,
    /// Node 0's port (0: any free port).
    pub(crate) port: u16,
    /// Run the demo workload against the nodes.
    pub(crate) demo_load: bool,
}

impl Default for ClusterArgs {
    fn default() -> Self {
        Self { nodes: 5, port: 0, demo_load: false }
    }
}

impl ClusterArgs {
    /// Parses the task's arguments (after `cluster`).
    pub(crate) fn parse(args: &[String]) -> Result<ClusterArgs> {
        let mut out = ClusterArgs::default();
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
            match flag {
                "--nodes" | "-n" => {
                    let v = value("--nodes")?;
                    out.nodes = v
                        .parse()
                        .with_context(|| format!("--nodes {v:?}: not a number\n\n{USAGE}"))?;
                }
                "--port" => {
                    let v = value("--port")?;
                    out.port = v
                        .parse()
                        .with_context(|| format!("--port {v:?}: not a port number\n\n{USAGE}"))?;
                }
                "--demo-load" => out.demo_load = true,
                "-h" | "--help" => bail!("{USAGE}"),
                other => bail!("unknown argument {other:?}\n\n{USAGE}"),
            }
        }
        if out.nodes == 0 || out.nodes > MAX_NODES {
            bail!("--nodes must be between 1 and {MAX_NODES}, not {}", out.nodes);
        }
        Ok(out)
    }
}

/// `cargo xtask cluster ARGS...`.
pub(crate) fn run(args: &[String]) -> Result<()> {
    run_with(ClusterArgs::parse(args)?)
}

/// Builds meshd, starts the cluster, waits for Enter (or the nodes' end), stops it.
pub(crate) fn run_with(args: ClusterArgs) -> Result<()> {
    if args.demo_load {
        bail!(
            "--demo-load is not implemented yet: the demo workload (mesh-demo) runs its nodes \
             in-process and cannot drive meshd processes; run `cargo xtask cluster` without it"
        );
    }
    eprintln!("xtask cluster: building meshd in release ...");
    sh(cargo().args(["build", "--release", "--locked", "-p", "meshd", "--bin", "meshd"]))?;
    let target = target_dir();
    let bin = target.join("release").join(format!("meshd{}", std::env::consts::EXE_SUFFIX));
    if !bin.is_file() {
        bail!("{} is missing after the build", bin.display());
    }

    let dir = target.join("cluster");
    prepare_dir(&dir)?;
    let cluster_key = dir.join("cluster.key");
    let operator_key = dir.join("operator.key");
    let operators = dir.join("operators.toml");
    let key_line = tool_output(Command::new(&bin).arg("keygen-cluster").arg(&cluster_key))?;
    let table = tool_output(Command::new(&bin).arg("keygen-operator").arg(&operator_key))?;
    std::fs::write(
        &operators,
        format!(
            "# Written by `cargo xtask cluster`: the operator key next to this file may\n\
             # command every node.\nroutine_threshold = 1\nice_threshold = 1\n\n{table}"
        ),
    )
    .with_context(|| format!("writing {}", operators.display()))?;

    let mut nodes: Vec<Node> = Vec::with_capacity(args.nodes);
    let started = Instant::now();
    let result = (|| -> Result<()> {
        let first = Node::spawn(&bin, &dir, 0, &format!("127.0.0.1:{}", args.port), None)?;
        let seed = first.addr.clone();
        nodes.push(first);
        for i in 1..args.nodes {
            nodes.push(Node::spawn(&bin, &dir, i, "127.0.0.1:0", Some(&seed))?);
        }
        Ok(())
    })();
    if let Err(e) = result {
        stop_all(&mut nodes);
        return Err(e);
    }

    println!();
    println!(
        "xtask cluster: {} meshd node(s) on 127.0.0.1 in {} ms; {}",
        nodes.len(),
        started.elapsed().as_millis(),
        key_line.trim()
    );
    for node in &nodes {
        println!(
            "  node-{:<3} {:<22} {}  log {}",
            node.index,
            node.addr,
            node.id,
            node.log.display()
        );
    }
    println!();
    println!("Attach a deck (operator key registered on every node):");
    println!(
        "  cargo run --release -p deck-tui --bin deck -- --attach {} --cluster-key {} --operator-key {}",
        nodes[0].addr,
        cluster_key.display(),
        operator_key.display()
    );
    println!();

    let stop = stop_requests();
    if stop.is_some() {
        println!("Press Enter (or Ctrl-C) to stop the cluster.");
    } else {
        println!("Ctrl-C stops the cluster.");
    }
    supervise(&mut nodes, stop.as_ref());
    stop_all(&mut nodes);
    Ok(())
}

/// One meshd process.
pub(crate) struct Node {
    pub(crate) index: usize,
    pub(crate) child: Child,
    stdin: Option<ChildStdin>,
    pub(crate) addr: String,
    pub(crate) id: String,
    pub(crate) log: PathBuf,
    pub(crate) exited: Option<ExitStatus>,
}

impl Node {
    /// Starts node `index` and waits for its ready line.
    pub(crate) fn spawn(
        bin: &Path,
        dir: &Path,
        index: usize,
        listen: &str,
        seed: Option<&str>,
    ) -> Result<Node> {
        let data = dir.join(format!("node-{index}"));
        let log = dir.join(format!("node-{index}.log"));
        let log_file =
            std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let mut cmd = Command::new(bin);
        cmd.arg("--listen")
            .arg(listen)
            .arg("--cluster-key")
            .arg(dir.join("cluster.key"))
            .arg("--operators")
            .arg(dir.join("operators.toml"))
            .arg("--data-dir")
            .arg(&data)
            .arg("--exit-on-stdin-eof");
        if let Some(seed) = seed {
            cmd.arg("--seed").arg(seed);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().context("meshd stdout")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = tx.send(line);
            }
            for _ in lines {}
        });
        let mut node =
            Node { index, child, stdin, addr: String::new(), id: String::new(), log, exited: None };
        let started = Instant::now();
        let line = loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => break line,
                Err(mpsc::RecvTimeoutError::Timeout) if started.elapsed() < START_DEADLINE => {
                    if let Some(status) = node.child.try_wait()? {
                        node.exited = Some(status);
                        bail!("node-{index} exited ({status}):\n{}", node.log_tail());
                    }
                }
                Err(_) => {
                    let _ = node.child.kill();
                    node.exited = node.child.wait().ok();
                    bail!("node-{index} did not start:\n{}", node.log_tail());
                }
            }
        };
        let rest = line
            .strip_prefix(READY_PREFIX)
            .with_context(|| format!("node-{index}: unexpected first line {line:?}"))?;
        let words: Vec<&str> = rest.split_whitespace().collect();
        match words.as_slice() {
            [addr, "node", id, ..] => {
                node.addr = (*addr).to_owned();
                node.id = (*id).to_owned();
            }
            _ => bail!("node-{index}: unexpected ready line {line:?}"),
        }
        Ok(node)
    }

    /// The last lines of the node's log.
    pub(crate) fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

/// The cargo target directory.
pub(crate) fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => workspace_root().join(dir),
        None => workspace_root().join("target"),
    }
}

/// Empties `dir` (a previous run's cluster), refusing while one of its nodes
/// still runs.
pub(crate) fn prepare_dir(dir: &Path) -> Result<()> {
    if dir.exists() {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for entry in entries.flatten() {
                let lock = entry.path().join("meshd.lock");
                let Ok(pid) = std::fs::read_to_string(&lock) else { continue };
                let pid = pid.trim();
                let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
                if !pid.is_empty() && comm.trim() == "meshd" {
                    bail!(
                        "a node of a previous cluster still runs in {} (pid {pid}); stop it first",
                        entry.path().display()
                    );
                }
            }
        }
        std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
}

/// Runs a meshd tool and returns its stdout.
pub(crate) fn tool_output(cmd: &mut Command) -> Result<String> {
    let out = cmd.stdin(Stdio::null()).output().context("running meshd")?;
    if !out.status.success() {
        bail!("{:?} failed: {}", cmd, String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A channel that fires when the user presses Enter (or closes stdin), when
/// stdin is a terminal; `None` otherwise (then only Ctrl-C or the nodes' end
/// stop the task).
fn stop_requests() -> Option<mpsc::Receiver<()>> {
    if !std::io::stdin().is_terminal() {
        return None;
    }
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
        let _ = tx.send(());
    });
    Some(rx)
}

/// Waits until a stop is requested or every node has exited, reporting nodes
/// that exit on their own.
fn supervise(nodes: &mut [Node], stop: Option<&mpsc::Receiver<()>>) {
    loop {
        let requested = match stop {
            Some(rx) => rx.recv_timeout(Duration::from_millis(200)).is_ok(),
            None => {
                std::thread::sleep(Duration::from_millis(200));
                false
            }
        };
        if requested {
            eprintln!("xtask cluster: stopping ...");
            return;
        }
        for node in nodes.iter_mut().filter(|n| n.exited.is_none()) {
            if let Ok(Some(status)) = node.child.try_wait() {
                node.exited = Some(status);
                eprintln!(
                    "xtask cluster: node-{} exited ({status}); log {}",
                    node.index,
                    node.log.display()
                );
            }
        }
        if nodes.iter().all(|n| n.exited.is_some()) {
            eprintln!("xtask cluster: every node has exited");
            return;
        }
    }
}

/// Asks every running node to leave (SIGTERM and end of stdin), waits up to
/// [`STOP_GRACE`], then kills what still runs.
pub(crate) fn stop_all(nodes: &mut [Node]) {
    for node in nodes.iter_mut().filter(|n| n.exited.is_none()) {
        drop(node.stdin.take());
        // Best effort: end of stdin alone stops a node too.
        let _ = Command::new("kill")
            .args(["-TERM", &node.child.id().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    let deadline = Instant::now() + STOP_GRACE;
    while Instant::now() < deadline && nodes.iter().any(|n| n.exited.is_none()) {
        for node in nodes.iter_mut().filter(|n| n.exited.is_none()) {
            if let Ok(Some(status)) = node.child.try_wait() {
                node.exited = Some(status);
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    for node in nodes.iter_mut() {
        match node.exited {
            Some(status) if status.success() => {}
            Some(status) => eprintln!("xtask cluster: node-{} ended with {status}", node.index),
            None => {
                eprintln!(
                    "xtask cluster: node-{} did not stop within {} s; killing it",
                    node.index,
                    STOP_GRACE.as_secs()
                );
                let _ = node.child.kill();
                node.exited = node.child.wait().ok();
            }
        }
    }
    eprintln!("xtask cluster: stopped {} node(s)", nodes.len());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn arguments() {
        assert_eq!(ClusterArgs::parse(&[]).unwrap(), ClusterArgs::default());
        let a = ClusterArgs::parse(&args(&["--nodes", "9", "--port=7000", "--demo-load"])).unwrap();
        assert_eq!(a, ClusterArgs { nodes: 9, port: 7000, demo_load: true });
        assert!(ClusterArgs::parse(&args(&["--nodes", "0"])).is_err());
        assert!(ClusterArgs::parse(&args(&["--nodes"])).is_err());
        assert!(ClusterArgs::parse(&args(&["--nodes", "x"])).is_err());
        assert!(ClusterArgs::parse(&args(&["--port", "70000"])).is_err());
        assert!(ClusterArgs::parse(&args(&["--bogus"])).is_err());
    }
}
