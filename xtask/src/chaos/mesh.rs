//! A running cluster of `meshd` processes: started, watched through their logs,
//! waited on, attached to by the deck, stopped.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::logs::{Kind, View, parse_id};
use super::priority::at_base_priority;
use super::{ATTACH_DEADLINE, Bins, CATCH_UP, DETECT_DEADLINE, POLL, PROGRESS, not_converged};
use crate::cluster::{self, Node};

/// A running cluster; stopped when dropped.
pub(super) struct Mesh {
    label: &'static str,
    dir: PathBuf,
    pub(super) nodes: Vec<Node>,
    pub(super) view: View,
}

impl Mesh {
    /// Makes a fresh cluster in `dir` and starts `n` nodes.
    pub(super) fn start(label: &'static str, bins: &Bins, dir: &Path, n: usize) -> Result<Mesh> {
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
    pub(super) fn poll(&mut self) -> Result<()> {
        self.check_alive()?;
        self.view.poll().map(|_| ())
    }

    /// After a deadline: reads what the logs already hold (up to [`CATCH_UP`]),
    /// so a task that fell behind an overloaded cluster's logs decides on
    /// everything written in time. Returns false if it was caught up already.
    pub(super) fn catch_up(&mut self) -> Result<bool> {
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
    pub(super) fn check_alive(&mut self) -> Result<()> {
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
    pub(super) fn wait_all_healthy(
        &mut self,
        since: u64,
        deadline: Duration,
    ) -> Result<Option<u64>> {
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
    pub(super) fn wait_others_see(
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
    pub(super) fn attach(
        &mut self,
        bins: &Bins,
        failures: &mut Vec<String>,
    ) -> Result<(u64, usize)> {
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
            .arg("--log-file")
            .arg(self.dir.join("deck-attach.log"))
            .env("DECK_LOG", "info,deck_model=debug,mesh=debug")
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
