//! Views: one plain struct per tab and per detail page, computed by pure functions
//! of the data ([`DeckData`]) and the view state ([`ViewState`]).
//!
//! [`build`] computes what the operator sees now (the current tab or detail page,
//! windowed to the visible rows); [`build_full`] computes every row of a tab (for
//! export and headless output). Each tab lives in its own module and describes
//! its rows to the shared engine (filter, sort, selection, window).
//!
//! The only state a build touches is a memo inside the log tail (the filtered and
//! sorted order of the log lines, extended incrementally as lines arrive), so the
//! LOGS tab never re-sorts or re-scans 100 000 lines per frame; the result is the
//! same as a full recomputation.

use crate::data::DeckData;
use crate::engine::Window;
pub use crate::state::{Aside, View};
use crate::state::{Detail, Tab, TableState, ViewState, Watermarks};
use crate::table::{Cell, Style};

mod audit;
mod blobs;
mod chains;
mod daemons;
mod dataforts;
mod detail;
mod failures;
mod groups;
pub(crate) mod logs;
pub(crate) mod migrations;
mod netmap;
mod nodes;
pub(crate) mod nrpc;

/// What a tab builder needs.
pub(crate) struct Ctx<'a> {
    pub(crate) data: &'a DeckData,
    pub(crate) state: &'a ViewState,
    pub(crate) table: &'a TableState,
    pub(crate) window: Window,
    /// Tails are cut here when paused.
    pub(crate) cut: Watermarks,
}

impl Ctx<'_> {
    pub(crate) fn now(&self) -> u64 {
        self.data.now_ms
    }
}

/// The view the operator sees now: the current tab, or the open detail page,
/// windowed to the visible rows.
pub fn build(data: &DeckData, state: &ViewState) -> View {
    if let Some(detail) = state.detail {
        if let Some(view) = detail::build(data, state, detail, Window::Rows(state.height)) {
            return view;
        }
        let mut view = build_tab(data, state, state.tab, Window::Rows(state.height));
        view.notice = Some(
            Cell::new(match detail {
                Detail::Node(n) => format!("node {n} is no longer in the snapshot"),
                Detail::Daemon(d) => format!("daemon {d} is no longer in the snapshot"),
            })
            .styled(Style::Warn),
        );
        return view;
    }
    build_tab(data, state, state.tab, Window::Rows(state.height))
}

/// Every row of `tab` (filtered and sorted as the state says), for export and
/// headless output.
pub fn build_full(data: &DeckData, state: &ViewState, tab: Tab) -> View {
    build_tab(data, state, tab, Window::All)
}

/// Every row of the current page (the detail page when one is open).
pub fn build_current_full(data: &DeckData, state: &ViewState) -> View {
    if let Some(detail) = state.detail
        && let Some(view) = detail::build(data, state, detail, Window::All)
    {
        return view;
    }
    build_full(data, state, state.tab)
}

fn build_tab(data: &DeckData, state: &ViewState, tab: Tab, window: Window) -> View {
    let marks = data.marks();
    let cx =
        Ctx { data, state, table: state.table(tab), window, cut: state.paused.unwrap_or(marks) };
    let (table, aside) = match tab {
        Tab::NetMap => (netmap::build(&cx), None),
        Tab::Nodes => (nodes::build(&cx), None),
        Tab::Daemons => (daemons::build(&cx), None),
        Tab::Groups => (groups::build(&cx), None),
        Tab::Dataforts => (dataforts::build(&cx), None),
        Tab::Nrpc => nrpc::build(&cx),
        Tab::Blobs => (blobs::build(&cx), None),
        Tab::Migrations => (migrations::build(&cx), None),
        Tab::Chains => (chains::build(&cx), None),
        Tab::Logs => (logs::build(&cx), None),
        Tab::Audit => (audit::build(&cx), None),
        Tab::Failures => (failures::build(&cx), None),
    };
    let title = if table.total == table.unfiltered {
        format!("{} {}", tab.title(), table.total)
    } else {
        format!("{} {}/{}", tab.title(), table.total, table.unfiltered)
    };
    let notice = notice(data, state, tab);
    View { tab, detail: None, title, table, aside, notice, marks }
}

fn notice(data: &DeckData, state: &ViewState, tab: Tab) -> Option<Cell> {
    if state.paused.is_some() {
        return Some(Cell::new("paused: new lines are held back").styled(Style::Warn));
    }
    let streamed = matches!(tab, Tab::Logs | Tab::Audit | Tab::Failures);
    let failing: Vec<String> = data
        .streams
        .iter()
        .filter(|(_, s)| s.last_error.is_some())
        .map(|(n, _)| n.short())
        .collect();
    if streamed && !failing.is_empty() {
        return Some(
            Cell::new(format!("cannot read from {}: {}", failing.len(), failing.join(" ")))
                .styled(Style::Warn),
        );
    }
    if tab == Tab::Audit
        && let Some(last) = data.actions.back()
    {
        return Some(last.summary_cell());
    }
    None
}

/// Cells shared by several tabs.
pub(crate) mod cells {
    use mesh::{DaemonHealth, Health, LogLevel, NodeId};

    use crate::fmt;
    use crate::table::{Cell, Style};

    /// A node's short id, accented for the deck's own node.
    pub(crate) fn node(node: NodeId, deck: NodeId) -> Cell {
        let cell = Cell::int(node.short(), node.0);
        if node == deck { cell.styled(Style::Accent) } else { cell }
    }

    /// A peer's health.
    pub(crate) fn health(h: &Health) -> Cell {
        let (rank, style) = match h {
            Health::Healthy => (0, Style::Ok),
            Health::Degraded { .. } => (1, Style::Warn),
            Health::Unreachable { .. } => (2, Style::Err),
        };
        Cell::int(h.label(), rank).styled(style)
    }

    /// A daemon's health.
    pub(crate) fn daemon_health(h: &DaemonHealth) -> Cell {
        let (rank, style) = match h {
            DaemonHealth::Healthy => (0, Style::Ok),
            DaemonHealth::Degraded { .. } => (1, Style::Warn),
            DaemonHealth::Unhealthy { .. } => (2, Style::Err),
        };
        Cell::int(h.label(), rank).styled(style)
    }

    /// A log level.
    pub(crate) fn level(level: LogLevel) -> Cell {
        let style = match level {
            LogLevel::Trace | LogLevel::Debug => Style::Dim,
            LogLevel::Info => Style::Normal,
            LogLevel::Warn => Style::Warn,
            LogLevel::Error => Style::Err,
        };
        Cell::int(level.as_str(), level as i64).styled(style)
    }

    /// A wall-clock time with milliseconds, sorting by time.
    pub(crate) fn time(ts_ms: u64) -> Cell {
        Cell::int(fmt::clock_ms(ts_ms), ts_ms).styled(Style::Dim)
    }

    /// An age since `then`, sorting by age.
    pub(crate) fn age(now: u64, then: u64) -> Cell {
        let age = now.saturating_sub(then);
        Cell::int(fmt::age_ms(age), age)
    }

    /// A byte count, sorting by value.
    pub(crate) fn bytes(n: u64) -> Cell {
        Cell::int(fmt::bytes(n), n)
    }

    /// A count, sorting by value.
    pub(crate) fn count(n: u64) -> Cell {
        Cell::int(n.to_string(), n)
    }

    /// The remaining time until `until`, or a dash.
    pub(crate) fn remaining(now: u64, until: Option<u64>) -> Cell {
        match until {
            Some(u64::MAX) => Cell::int("until exit", i128::from(u64::MAX)).styled(Style::Warn),
            Some(t) if t > now => Cell::int(fmt::age_ms(t - now), t - now).styled(Style::Warn),
            _ => Cell::missing(),
        }
    }
}
