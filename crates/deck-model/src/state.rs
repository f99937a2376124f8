//! View state and its update function (the Elm architecture's model and update).
//!
//! The terminal turns key events into [`Msg`]s and calls [`update`]; it then builds
//! the visible [`View`] with [`crate::views::build`] (a pure function of the
//! data and this state) and hands the view back with [`ViewState::observe`], which
//! records what the operator now sees: the selected row's id, its position, the
//! scroll offset and the ids of the visible window. Keeping the selection as a
//! [`RowId`] (not an index) is what lets it survive refreshes, re-sorting and
//! filtering; when the selected row vanishes, the row now at its old position is
//! selected instead.
//!
//! Per tab the state keeps its own selection, scroll offset, follow mode, sort and
//! search text. The log filters (minimum level, node, daemon) and pause are global.

use mesh::{LogLevel, NodeId, OriginHash};
use serde::Serialize;

use crate::table::{Cell, RowId, SortDir, SortSpec, Table};
use crate::text;

/// The deck's tabs, in display order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Tab {
    /// Nodes, health, round trips and links.
    NetMap,
    /// Per-node resources, daemons placed and admin state.
    Nodes,
    /// Every daemon, in lineage order.
    Daemons,
    /// Lineage groups and roles.
    Groups,
    /// Blob adapters: capacity, use and traffic.
    Dataforts,
    /// RPC calls: tail and per-service figures.
    Nrpc,
    /// The merged blob inventory.
    Blobs,
    /// Migrations in flight and recently ended.
    Migrations,
    /// Lineage chains: groups and who holds each member.
    Chains,
    /// Merged logs of every node.
    Logs,
    /// Merged audit ledgers, chain-verified per node.
    Audit,
    /// Merged failure records.
    Failures,
}

impl Tab {
    /// Every tab in display order.
    pub const ALL: [Tab; 12] = [
        Tab::NetMap,
        Tab::Nodes,
        Tab::Daemons,
        Tab::Groups,
        Tab::Dataforts,
        Tab::Nrpc,
        Tab::Blobs,
        Tab::Migrations,
        Tab::Chains,
        Tab::Logs,
        Tab::Audit,
        Tab::Failures,
    ];

    /// The tab's title (`NET.MAP`, `NODES`, ...).
    pub fn title(self) -> &'static str {
        match self {
            Tab::NetMap => "NET.MAP",
            Tab::Nodes => "NODES",
            Tab::Daemons => "DAEMONS",
            Tab::Groups => "GROUPS",
            Tab::Dataforts => "DATAFORTS",
            Tab::Nrpc => "NRPC",
            Tab::Blobs => "BLOBS",
            Tab::Migrations => "MIGRATIONS",
            Tab::Chains => "CHAINS",
            Tab::Logs => "LOGS",
            Tab::Audit => "AUDIT",
            Tab::Failures => "FAILURES",
        }
    }

    /// Position in [`Tab::ALL`].
    pub fn index(self) -> usize {
        Tab::ALL.iter().position(|t| *t == self).unwrap_or(0)
    }

    /// The tab by title (case-insensitive), for command lines and tests.
    pub fn from_title(title: &str) -> Option<Tab> {
        Tab::ALL.into_iter().find(|t| t.title().eq_ignore_ascii_case(title.trim()))
    }

    /// Streams (newest last) follow by default; the others do not.
    pub fn follows_by_default(self) -> bool {
        matches!(self, Tab::Logs | Tab::Audit | Tab::Failures | Tab::Nrpc)
    }
}

/// A detail page.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Detail {
    /// One node.
    Node(NodeId),
    /// One daemon.
    Daemon(OriginHash),
}

/// How far each tail had got when the operator last looked (next deck sequence
/// numbers); a paused view shows nothing newer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Watermarks {
    /// Next log sequence number.
    pub logs: u64,
    /// Next failure sequence number.
    pub failures: u64,
    /// Next audit sequence number.
    pub audit: u64,
    /// Next call sequence number.
    pub calls: u64,
}

/// One table's selection, scroll, follow mode, sort and search.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TableState {
    pub(crate) selected: Option<RowId>,
    pub(crate) pos: usize,
    pub(crate) len: usize,
    pub(crate) offset: usize,
    pub(crate) follow: bool,
    pub(crate) sort: Option<SortSpec>,
    pub(crate) search: String,
    pub(crate) columns: usize,
    pub(crate) window: Vec<RowId>,
    pub(crate) window_start: usize,
    /// The selection was moved to `pos` by a key; resolve it by position.
    pub(crate) by_position: bool,
}

impl TableState {
    /// A state that follows new rows (for streams) or not.
    pub fn new(follow: bool) -> TableState {
        TableState { follow, ..TableState::default() }
    }

    /// The selected row's id as last observed.
    pub fn selected(&self) -> Option<RowId> {
        self.selected
    }

    /// The selected row's position as last observed.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Rows as last observed.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the table was empty when last observed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// First visible row.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Whether the selection sticks to the last row.
    pub fn follow(&self) -> bool {
        self.follow
    }

    /// The sort in force.
    pub fn sort(&self) -> Option<SortSpec> {
        self.sort
    }

    /// The search text (empty: no search).
    pub fn search(&self) -> &str {
        &self.search
    }

    /// Records what a built table shows (see [`ViewState::observe`]).
    pub fn observe(&mut self, table: &Table) {
        self.len = table.total;
        self.columns = table.columns.len();
        self.offset = table.first;
        self.window_start = table.first;
        self.window.clear();
        self.window.extend(table.rows.iter().map(|r| r.id));
        self.by_position = false;
        match table.selected_id() {
            Some(id) => {
                self.selected = Some(id);
                self.pos = table.selected.unwrap_or(0);
            }
            None => {
                self.selected = None;
                self.pos = 0;
            }
        }
        if self.sort.is_some_and(|s| s.column >= self.columns) {
            self.sort = None;
        }
    }

    fn move_to(&mut self, target: usize, height: usize) {
        if self.len == 0 {
            return;
        }
        let target = target.min(self.len - 1);
        self.pos = target;
        match target.checked_sub(self.window_start).and_then(|i| self.window.get(i)) {
            Some(id) => {
                self.selected = Some(*id);
                self.by_position = false;
            }
            None => self.by_position = true,
        }
        let height = height.max(1);
        if target < self.offset {
            self.offset = target;
        } else if target >= self.offset + height {
            self.offset = target + 1 - height;
        }
    }

    fn move_by(&mut self, delta: isize, height: usize) {
        self.follow = false;
        let target = if delta < 0 {
            self.pos.saturating_sub(delta.unsigned_abs())
        } else {
            self.pos.saturating_add(delta.unsigned_abs())
        };
        self.move_to(target, height);
    }

    fn sort_by(&mut self, column: usize) {
        self.sort = match self.sort {
            Some(SortSpec { column: c, dir: SortDir::Asc }) if c == column => {
                Some(SortSpec { column, dir: SortDir::Desc })
            }
            _ => Some(SortSpec { column, dir: SortDir::Asc }),
        };
        self.keep_selection();
    }

    /// After a change of order the selection is found again by id.
    fn keep_selection(&mut self) {
        self.by_position = false;
        if !self.follow {
            // The window ids are stale in the new order.
            self.window.clear();
        }
    }
}

/// A message: something the operator did, or the terminal changed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Msg {
    /// Next tab (wraps).
    NextTab,
    /// Previous tab (wraps).
    PrevTab,
    /// Go to a tab.
    Tab(Tab),
    /// Selection up one row.
    Up,
    /// Selection down one row.
    Down,
    /// Up one page.
    PageUp,
    /// Down one page.
    PageDown,
    /// First row.
    Home,
    /// Last row, and follow new rows.
    End,
    /// Move the selection by this many rows.
    Move(isize),
    /// Select a row by id (a click, a jump from another page).
    Select(RowId),
    /// The table area now shows this many rows.
    Resize {
        /// Visible body rows.
        rows: usize,
    },
    /// Sort by a column; again on the same column reverses the direction.
    Sort(usize),
    /// Sort by the next column (after the last: natural order).
    SortNext,
    /// Reverse the current sort (or sort the first column descending).
    SortReverse,
    /// Back to the tab's natural order.
    ClearSort,
    /// Set the search text of the current table (escaped and capped).
    Search(String),
    /// Clear the search.
    ClearSearch,
    /// Show log lines at or above this level (`None`: all).
    Level(Option<LogLevel>),
    /// Cycle the minimum log level: all, DEBUG, INFO, WARN, ERROR, all ...
    CycleLevel,
    /// Show logs of one node only (`None`: all nodes).
    LogNode(Option<NodeId>),
    /// Show logs of one daemon only (`None`: all daemons).
    LogDaemon(Option<OriginHash>),
    /// Toggle follow mode of the current table.
    ToggleFollow,
    /// Freeze (or resume) the tails shown: nothing newer than now appears.
    TogglePause,
    /// Open the detail page of the selected row (nodes and daemons).
    Open,
    /// Open a node's page.
    OpenNode(NodeId),
    /// Open a daemon's page.
    OpenDaemon(OriginHash),
    /// Close the detail page.
    Close,
}

/// Everything the deck remembers about what the operator is looking at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ViewState {
    pub(crate) tab: Tab,
    pub(crate) tables: Vec<TableState>,
    pub(crate) detail: Option<Detail>,
    pub(crate) detail_table: TableState,
    pub(crate) height: usize,
    pub(crate) level: Option<LogLevel>,
    pub(crate) log_node: Option<NodeId>,
    pub(crate) log_daemon: Option<OriginHash>,
    pub(crate) paused: Option<Watermarks>,
    pub(crate) marks: Watermarks,
}

impl Default for ViewState {
    fn default() -> Self {
        ViewState {
            tab: Tab::NetMap,
            tables: Tab::ALL.iter().map(|t| TableState::new(t.follows_by_default())).collect(),
            detail: None,
            detail_table: TableState::default(),
            height: 20,
            level: None,
            log_node: None,
            log_daemon: None,
            paused: None,
            marks: Watermarks::default(),
        }
    }
}

impl ViewState {
    /// The initial state: NET.MAP, nothing selected, 20 visible rows.
    pub fn new() -> ViewState {
        ViewState::default()
    }

    /// The current tab.
    pub fn tab(&self) -> Tab {
        self.tab
    }

    /// The open detail page, if any.
    pub fn detail(&self) -> Option<Detail> {
        self.detail
    }

    /// Visible body rows.
    pub fn height(&self) -> usize {
        self.height
    }

    /// A tab's table state.
    pub fn table(&self, tab: Tab) -> &TableState {
        &self.tables[tab.index()]
    }

    /// The detail page's table state.
    pub fn detail_table(&self) -> &TableState {
        &self.detail_table
    }

    /// The table state messages act on now (the detail page's when open).
    pub fn current(&self) -> &TableState {
        match self.detail {
            Some(_) => &self.detail_table,
            None => &self.tables[self.tab.index()],
        }
    }

    fn current_mut(&mut self) -> &mut TableState {
        match self.detail {
            Some(_) => &mut self.detail_table,
            None => &mut self.tables[self.tab.index()],
        }
    }

    /// Minimum log level shown.
    pub fn level(&self) -> Option<LogLevel> {
        self.level
    }

    /// The node the logs are filtered to.
    pub fn log_node(&self) -> Option<NodeId> {
        self.log_node
    }

    /// The daemon the logs are filtered to.
    pub fn log_daemon(&self) -> Option<OriginHash> {
        self.log_daemon
    }

    /// The tails' positions when paused (`None`: live).
    pub fn paused(&self) -> Option<Watermarks> {
        self.paused
    }

    /// Records what the operator now sees: call it with every view built from
    /// this state, before the next [`update`].
    ///
    /// A detail page whose node or daemon vanished is closed here (the view
    /// built for it showed the tab instead).
    pub fn observe(&mut self, view: &View) {
        self.marks = view.marks;
        if view.detail.is_some() {
            self.detail_table.observe(&view.table);
        } else {
            self.detail = None;
            self.tables[view.tab.index()].observe(&view.table);
        }
    }
}

/// A second, smaller table shown beside the main one (per-service figures on
/// NRPC, a node's daemons or a daemon's log lines on detail pages).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Aside {
    /// Its title.
    pub title: String,
    /// Its rows (all of them; asides are small).
    pub table: Table,
}

/// What one tab or detail page shows.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct View {
    /// The tab (for a detail page: the tab it was opened from).
    pub tab: Tab,
    /// The detail page shown, if any.
    pub detail: Option<Detail>,
    /// A title line (`DAEMONS 18/18`, `NODE 0x...`).
    pub title: String,
    /// The main table.
    pub table: Table,
    /// A second table, if the page has one.
    pub aside: Option<Aside>,
    /// Something the operator should know about this page (paused, gone, errors).
    pub notice: Option<Cell>,
    /// How far every tail had got (a pause freezes these).
    pub marks: Watermarks,
}

/// Applies one message to the state.
pub fn update(state: &mut ViewState, msg: Msg) {
    let height = state.height.max(1);
    match msg {
        Msg::NextTab => switch_tab(state, Tab::ALL[(state.tab.index() + 1) % Tab::ALL.len()]),
        Msg::PrevTab => {
            switch_tab(state, Tab::ALL[(state.tab.index() + Tab::ALL.len() - 1) % Tab::ALL.len()])
        }
        Msg::Tab(tab) => switch_tab(state, tab),
        Msg::Up => state.current_mut().move_by(-1, height),
        Msg::Down => state.current_mut().move_by(1, height),
        Msg::PageUp => state.current_mut().move_by(-(height as isize), height),
        Msg::PageDown => state.current_mut().move_by(height as isize, height),
        Msg::Move(delta) => state.current_mut().move_by(delta, height),
        Msg::Home => {
            let t = state.current_mut();
            t.follow = false;
            t.move_to(0, height);
        }
        Msg::End => {
            let t = state.current_mut();
            t.follow = true;
            let last = t.len.saturating_sub(1);
            t.move_to(last, height);
        }
        Msg::Select(id) => {
            let t = state.current_mut();
            t.follow = false;
            t.selected = Some(id);
            t.by_position = false;
            t.window.clear();
        }
        Msg::Resize { rows } => state.height = rows.max(1),
        Msg::Sort(column) => state.current_mut().sort_by(column),
        Msg::SortNext => {
            let t = state.current_mut();
            let columns = t.columns.max(1);
            t.sort = match t.sort {
                None => Some(SortSpec { column: 0, dir: SortDir::Asc }),
                Some(s) if s.column + 1 < columns => {
                    Some(SortSpec { column: s.column + 1, dir: SortDir::Asc })
                }
                Some(_) => None,
            };
            t.keep_selection();
        }
        Msg::SortReverse => {
            let t = state.current_mut();
            t.sort = Some(match t.sort {
                None => SortSpec { column: 0, dir: SortDir::Desc },
                Some(s) => SortSpec {
                    column: s.column,
                    dir: if s.dir == SortDir::Asc { SortDir::Desc } else { SortDir::Asc },
                },
            });
            t.keep_selection();
        }
        Msg::ClearSort => {
            let t = state.current_mut();
            t.sort = None;
            t.keep_selection();
        }
        Msg::Search(search) => {
            let t = state.current_mut();
            t.search = text::clean(&search, text::MAX_SEARCH);
            t.keep_selection();
        }
        Msg::ClearSearch => {
            let t = state.current_mut();
            t.search.clear();
            t.keep_selection();
        }
        Msg::Level(level) => {
            state.level = level;
            state.tables[Tab::Logs.index()].keep_selection();
        }
        Msg::CycleLevel => {
            state.level = match state.level {
                None | Some(LogLevel::Trace) => Some(LogLevel::Debug),
                Some(LogLevel::Debug) => Some(LogLevel::Info),
                Some(LogLevel::Info) => Some(LogLevel::Warn),
                Some(LogLevel::Warn) => Some(LogLevel::Error),
                Some(LogLevel::Error) => None,
            };
            state.tables[Tab::Logs.index()].keep_selection();
        }
        Msg::LogNode(node) => {
            state.log_node = node;
            state.tables[Tab::Logs.index()].keep_selection();
        }
        Msg::LogDaemon(daemon) => {
            state.log_daemon = daemon;
            state.tables[Tab::Logs.index()].keep_selection();
        }
        Msg::ToggleFollow => {
            let t = state.current_mut();
            t.follow = !t.follow;
            if t.follow {
                let last = t.len.saturating_sub(1);
                t.move_to(last, height);
            }
        }
        Msg::TogglePause => {
            state.paused = match state.paused {
                Some(_) => None,
                None => Some(state.marks),
            };
        }
        Msg::Open => {
            if state.detail.is_none() {
                match state.tables[state.tab.index()].selected {
                    Some(RowId::Node(n)) => open(state, Detail::Node(n)),
                    Some(RowId::Daemon(d)) => open(state, Detail::Daemon(d)),
                    _ => {}
                }
            }
        }
        Msg::OpenNode(n) => open(state, Detail::Node(n)),
        Msg::OpenDaemon(d) => open(state, Detail::Daemon(d)),
        Msg::Close => state.detail = None,
    }
}

fn switch_tab(state: &mut ViewState, tab: Tab) {
    state.tab = tab;
    state.detail = None;
}

fn open(state: &mut ViewState, detail: Detail) {
    if state.detail != Some(detail) {
        state.detail_table = TableState::default();
    }
    state.detail = Some(detail);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tabs_wrap_and_have_titles() {
        let mut s = ViewState::new();
        update(&mut s, Msg::PrevTab);
        assert_eq!(s.tab(), Tab::Failures);
        update(&mut s, Msg::NextTab);
        assert_eq!(s.tab(), Tab::NetMap);
        assert_eq!(Tab::from_title("net.map"), Some(Tab::NetMap));
        for t in Tab::ALL {
            assert_eq!(Tab::ALL[t.index()], t);
        }
    }

    #[test]
    fn sort_toggles_and_cycles() {
        let mut s = ViewState::new();
        s.tables[0].columns = 2;
        update(&mut s, Msg::Sort(1));
        assert_eq!(s.current().sort(), Some(SortSpec { column: 1, dir: SortDir::Asc }));
        update(&mut s, Msg::Sort(1));
        assert_eq!(s.current().sort(), Some(SortSpec { column: 1, dir: SortDir::Desc }));
        update(&mut s, Msg::SortNext);
        assert_eq!(s.current().sort(), None);
        update(&mut s, Msg::SortNext);
        assert_eq!(s.current().sort(), Some(SortSpec { column: 0, dir: SortDir::Asc }));
        update(&mut s, Msg::SortReverse);
        assert_eq!(s.current().sort(), Some(SortSpec { column: 0, dir: SortDir::Desc }));
        update(&mut s, Msg::ClearSort);
        assert_eq!(s.current().sort(), None);
    }

    #[test]
    fn search_is_escaped_and_capped() {
        let mut s = ViewState::new();
        update(&mut s, Msg::Search(format!("a\x1b{}", "x".repeat(1000))));
        assert!(s.current().search().starts_with("a\\u{1b}"));
        assert!(s.current().search().chars().count() <= text::MAX_SEARCH);
        update(&mut s, Msg::ClearSearch);
        assert_eq!(s.current().search(), "");
    }

    #[test]
    fn level_cycles_back_to_all() {
        let mut s = ViewState::new();
        let mut seen = Vec::new();
        for _ in 0..5 {
            update(&mut s, Msg::CycleLevel);
            seen.push(s.level());
        }
        assert_eq!(seen.last(), Some(&None));
        assert_eq!(seen[0], Some(LogLevel::Debug));
    }
}
