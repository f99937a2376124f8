//! The status bar: one [`Summary`] of the whole deck.

use mesh::{DaemonHealth, Health};
use serde::Serialize;

use crate::data::DeckData;
use crate::fmt;
use crate::state::ViewState;
use crate::table::{Cell, Style};
use crate::views::migrations::stalled;
use crate::views::nrpc::call_rates;

/// Counts and states for the status bar.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Summary {
    /// The operator's id.
    pub operator: String,
    /// The deck's node (short id).
    pub deck_node: String,
    /// Nodes of the cluster known (this one included unless it is an operator's
    /// node; attached decks are counted in `operator_nodes` instead).
    pub nodes: usize,
    /// Operator nodes (attached decks, this one included) seen.
    pub operator_nodes: usize,
    /// Healthy nodes.
    pub nodes_healthy: usize,
    /// Degraded nodes.
    pub nodes_degraded: usize,
    /// Unreachable nodes.
    pub nodes_unreachable: usize,
    /// Daemons in the cluster.
    pub daemons: usize,
    /// Daemons reporting healthy.
    pub daemons_healthy: usize,
    /// Daemons reporting degraded.
    pub daemons_degraded: usize,
    /// Daemons reporting unhealthy.
    pub daemons_unhealthy: usize,
    /// Daemons crash-looping.
    pub crash_looping: usize,
    /// RPC calls per second over the rate window.
    pub calls_per_s: f64,
    /// Failed RPC calls in the rate window.
    pub call_errors: u64,
    /// ERROR log lines in the tail.
    pub error_lines: usize,
    /// Failure records in the tail.
    pub failures: usize,
    /// Migrations in flight.
    pub migrations: usize,
    /// Migrations stalled.
    pub migrations_stalled: usize,
    /// Time left of a cluster freeze (ms), if frozen.
    pub frozen_for_ms: Option<u64>,
    /// Nodes whose streams could not be read last time.
    pub unread_nodes: usize,
    /// The last admin action, in one line.
    pub last_action: Option<String>,
    /// Whether the last admin action was accepted everywhere.
    pub last_action_ok: bool,
}

/// Summarizes the data (pure).
pub fn summarize(data: &DeckData) -> Summary {
    let snap = &data.snapshot;
    let now = data.now_ms;
    let mut s = Summary {
        operator: data.operator.to_hex(),
        deck_node: data.deck_node.short(),
        nodes: usize::from(!snap.this_node.is_operator()),
        nodes_healthy: usize::from(!snap.this_node.is_operator()),
        operator_nodes: usize::from(snap.this_node.is_operator()),
        daemons: snap.daemons.len(),
        ..Summary::default()
    };
    for p in &snap.peers {
        if p.info.is_operator() {
            s.operator_nodes += 1;
            continue;
        }
        s.nodes += 1;
        match p.info.health {
            Health::Healthy => s.nodes_healthy += 1,
            Health::Degraded { .. } => s.nodes_degraded += 1,
            Health::Unreachable { .. } => s.nodes_unreachable += 1,
        }
    }
    for d in &snap.daemons {
        match d.health {
            DaemonHealth::Healthy => s.daemons_healthy += 1,
            DaemonHealth::Degraded { .. } => s.daemons_degraded += 1,
            DaemonHealth::Unhealthy { .. } => s.daemons_unhealthy += 1,
        }
        s.crash_looping += usize::from(d.crash_looping);
    }
    (s.calls_per_s, s.call_errors) = call_rates(data);
    s.error_lines = data.logs.marked();
    s.failures = data.failures.len();
    for m in snap.migrations.iter().filter(|m| !m.phase.is_terminal()) {
        s.migrations += 1;
        s.migrations_stalled += usize::from(stalled(m, now, data.stall_after_ms));
    }
    s.frozen_for_ms = snap.frozen_until_ms.filter(|t| *t > now).map(|t| t - now);
    s.unread_nodes = data.streams.values().filter(|n| n.last_error.is_some()).count();
    if let Some(last) = data.actions.back() {
        s.last_action = Some(last.summary());
        s.last_action_ok = last.all_accepted();
    }
    s
}

impl Summary {
    /// Status bar segments, styled (the renderer joins them with separators).
    pub fn cells(&self, state: &ViewState) -> Vec<Cell> {
        let mut out = Vec::new();
        let node_style = if self.nodes_unreachable > 0 {
            Style::Err
        } else if self.nodes_degraded > 0 {
            Style::Warn
        } else {
            Style::Ok
        };
        out.push(
            Cell::new(format!(
                "nodes {}/{} ok{}{}",
                self.nodes_healthy,
                self.nodes,
                if self.nodes_degraded > 0 {
                    format!(" {} degraded", self.nodes_degraded)
                } else {
                    String::new()
                },
                if self.nodes_unreachable > 0 {
                    format!(" {} down", self.nodes_unreachable)
                } else {
                    String::new()
                }
            ))
            .styled(node_style),
        );
        if self.operator_nodes > 0 {
            out.push(Cell::new(format!("decks {}", self.operator_nodes)).styled(Style::Dim));
        }
        let daemon_style = if self.daemons_unhealthy > 0 || self.crash_looping > 0 {
            Style::Err
        } else if self.daemons_degraded > 0 {
            Style::Warn
        } else {
            Style::Ok
        };
        out.push(
            Cell::new(format!(
                "daemons {}/{} ok{}{}",
                self.daemons_healthy,
                self.daemons,
                if self.daemons_degraded > 0 {
                    format!(" {} degraded", self.daemons_degraded)
                } else {
                    String::new()
                },
                if self.daemons_unhealthy > 0 {
                    format!(" {} unhealthy", self.daemons_unhealthy)
                } else {
                    String::new()
                }
            ))
            .styled(daemon_style),
        );
        out.push(
            Cell::new(format!("{:.1} calls/s, {} err", self.calls_per_s, self.call_errors))
                .styled(if self.call_errors > 0 { Style::Warn } else { Style::Normal }),
        );
        if self.migrations > 0 {
            out.push(
                Cell::new(format!(
                    "{} moving ({} stalled)",
                    self.migrations, self.migrations_stalled
                ))
                .styled(if self.migrations_stalled > 0 {
                    Style::Warn
                } else {
                    Style::Accent
                }),
            );
        }
        match self.frozen_for_ms {
            Some(ms) => {
                out.push(Cell::new(format!("FROZEN {}", fmt::age_ms(ms))).styled(Style::Err))
            }
            None => out.push(Cell::new("not frozen").styled(Style::Dim)),
        }
        if self.unread_nodes > 0 {
            out.push(
                Cell::new(format!("{} node(s) unread", self.unread_nodes)).styled(Style::Warn),
            );
        }
        if state.paused().is_some() {
            out.push(Cell::new("PAUSED").styled(Style::Warn));
        }
        out.push(Cell::new(format!("op {}", &self.operator)).styled(Style::Dim));
        out
    }
}
