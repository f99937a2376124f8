//! LOGS: the merged log lines of every node (node -> daemon -> line), newest last,
//! with a minimum level, node and daemon filters, search and follow mode.
//!
//! The tail can hold 100 000 lines, so this tab keeps a memo of the displayed
//! order (the deck sequence numbers of the lines that pass the filters, sorted as
//! asked) inside the data. While the filters and the sort stay the same, a build
//! only drops evicted lines from the front and filters, sorts and merges the lines
//! that arrived since the last build; a change of filter or sort recomputes it
//! once. Only the visible window is formatted. Search matches the message text
//! and the node's short id; filter by daemon with `Msg::LogDaemon`.

use mesh::{LogEntry, LogLevel, MeshSnapshot, NodeId, OriginHash};

use super::{Ctx, cells};
use crate::engine::{Source, compare, effective_sort, finish};
use crate::memo::{CacheKey, LogCache};
use crate::table::{Cell, Column, Key, Row, RowId, SortDir, SortSpec, Style, Table};
use crate::tail::Tail;
use crate::text;

pub(crate) const COLUMNS: [Column; 5] = [
    Column::left("TIME", 12),
    Column::left("NODE", 8),
    Column::left("DAEMON", 24),
    Column::left("LEVEL", 5),
    Column::left("MESSAGE", 80),
];

pub(crate) struct Logs<'a> {
    pub(crate) tail: &'a Tail<LogEntry>,
    pub(crate) first: u64,
    pub(crate) snapshot: &'a MeshSnapshot,
    pub(crate) deck: NodeId,
    pub(crate) level: Option<LogLevel>,
    pub(crate) node: Option<NodeId>,
    pub(crate) daemon: Option<OriginHash>,
}

impl Logs<'_> {
    fn entry(&self, i: usize) -> &LogEntry {
        // Indices come from the tail itself; a miss would be a bug, shown as empty.
        self.tail.at(i).unwrap_or(&EMPTY)
    }
}

static EMPTY: LogEntry = LogEntry {
    seq: 0,
    ts_ms: 0,
    node: NodeId(0),
    daemon: None,
    level: LogLevel::Trace,
    message: String::new(),
};

/// A log line's daemon column: its name when the snapshot knows it.
pub(crate) fn daemon_cell(snapshot: &MeshSnapshot, daemon: Option<OriginHash>) -> Cell {
    match daemon {
        None => Cell::int("(node)", -1).styled(Style::Dim),
        Some(id) => match snapshot.daemon(id) {
            Some(d) => Cell::int(text::name(&d.name), id.0),
            None => Cell::int(id.short(), id.0).styled(Style::Dim),
        },
    }
}

pub(crate) fn log_row(seq: u64, e: &LogEntry, snapshot: &MeshSnapshot, deck: NodeId) -> Row {
    let level = cells::level(e.level);
    let style = level.style;
    Row {
        id: RowId::Log(seq),
        cells: vec![
            cells::time(e.ts_ms),
            cells::node(e.node, deck),
            daemon_cell(snapshot, e.daemon),
            level,
            Cell::new(text::message(&e.message)).styled(match style {
                Style::Err | Style::Warn => style,
                _ => Style::Normal,
            }),
        ],
    }
}

impl Source for Logs<'_> {
    fn len(&self) -> usize {
        self.tail.len()
    }

    fn id(&self, i: usize) -> RowId {
        RowId::Log(self.first + i as u64)
    }

    fn key(&self, i: usize, column: usize) -> Key<'_> {
        let e = self.entry(i);
        match column {
            0 => Key::Int(i128::from(e.ts_ms)),
            1 => Key::Int(i128::from(e.node.0)),
            2 => Key::Int(e.daemon.map_or(-1, |d| i128::from(d.0))),
            3 => Key::Int(e.level as i128),
            4 => Key::Text(&e.message),
            _ => Key::Missing,
        }
    }

    fn matches(&self, i: usize, needle: &str) -> bool {
        let e = self.entry(i);
        text::contains_ci(&e.message, needle) || text::short_id_contains(e.node.0, needle)
    }

    fn row(&self, i: usize) -> Row {
        log_row(self.first + i as u64, self.entry(i), self.snapshot, self.deck)
    }

    fn include(&self, i: usize) -> bool {
        let e = self.entry(i);
        self.level.is_none_or(|l| e.level >= l)
            && self.node.is_none_or(|n| e.node == n)
            && self.daemon.is_none_or(|d| e.daemon == Some(d))
    }
}

/// Brings the memo up to date and returns the displayed order as tail indices.
pub(crate) fn ordered(
    cache: &mut LogCache,
    source: &Logs<'_>,
    needle: String,
    sort: Option<SortSpec>,
    cut: u64,
) -> Vec<usize> {
    let tail = source.tail;
    let first = tail.first_seq();
    let end = tail.next_seq().min(cut).max(first);
    let key =
        CacheKey { needle, level: source.level, node: source.node, daemon: source.daemon, sort };
    if cache.key.as_ref() != Some(&key) || cache.upto > end {
        // Typing more of a search only narrows it: filter what matched before
        // instead of scanning the whole tail again.
        let narrows = cache.upto <= end
            && cache.key.as_ref().is_some_and(|old| {
                !old.needle.is_empty()
                    && key.needle.contains(old.needle.as_str())
                    && (old.level, old.node, old.daemon, old.sort)
                        == (key.level, key.node, key.daemon, key.sort)
            });
        if narrows {
            let needle = key.needle.as_str();
            cache.order.retain(|&d| d >= first && source.matches((d - first) as usize, needle));
        } else {
            cache.order.clear();
            cache.upto = first;
        }
        cache.key = Some(key);
    }
    let needle = cache.key.as_ref().map(|k| k.needle.clone()).unwrap_or_default();
    // Forget evicted lines.
    match sort {
        None => {
            let evicted = cache.order.partition_point(|&d| d < first);
            cache.order.drain(..evicted);
        }
        Some(_) => cache.order.retain(|&d| d >= first),
    }
    let idx = |d: u64| (d - first) as usize;
    let fresh: Vec<u64> = (cache.upto.max(first)..end)
        .filter(|&d| {
            source.include(idx(d)) && (needle.is_empty() || source.matches(idx(d), &needle))
        })
        .collect();
    cache.upto = end;
    match sort {
        None => cache.order.extend(fresh),
        Some(sort) => {
            let fresh = sort_lines(source, sort, fresh, first);
            // Every fresh line is newer than every line held, so it goes after the
            // held lines that compare equal: the result equals a stable sort of
            // everything. Binary searches find the places (k log n comparisons);
            // the splice only copies.
            let old = std::mem::take(&mut cache.order);
            let mut merged = Vec::with_capacity(old.len() + fresh.len());
            let mut from = 0;
            for d in fresh {
                let at = from
                    + old[from..].partition_point(|&x| {
                        compare(source, sort, idx(x), idx(d)) != std::cmp::Ordering::Greater
                    });
                merged.extend_from_slice(&old[from..at]);
                merged.push(d);
                from = at;
            }
            merged.extend_from_slice(&old[from..]);
            cache.order = merged;
        }
    }
    cache.order.iter().map(|&d| idx(d)).collect()
}

/// Sorts tail sequence numbers `lines` (at or after `first`) by `sort`, equal keys
/// in sequence order in both directions. Each line's key is read once, not once
/// per comparison; with the sequence as the tie-break the order is total, so an
/// unstable sort gives exactly the stable result, faster and without a buffer.
/// Integer columns (all but the message) sort as plain integer pairs.
fn sort_lines(source: &Logs<'_>, sort: SortSpec, lines: Vec<u64>, first: u64) -> Vec<u64> {
    let key = |d: u64| source.key((d - first) as usize, sort.column);
    let ints: Option<Vec<(i128, u64)>> = lines
        .iter()
        .map(|&d| match key(d) {
            Key::Int(k) => Some((if sort.dir == SortDir::Desc { -k } else { k }, d)),
            _ => None,
        })
        .collect();
    if let Some(mut ints) = ints {
        ints.sort_unstable();
        return ints.into_iter().map(|(_, d)| d).collect();
    }
    let mut keyed: Vec<(Key<'_>, u64)> = lines.iter().map(|&d| (key(d), d)).collect();
    keyed.sort_unstable_by(|a, b| {
        match sort.dir {
            SortDir::Asc => a.0.total_cmp(&b.0),
            SortDir::Desc => b.0.total_cmp(&a.0),
        }
        .then(a.1.cmp(&b.1))
    });
    keyed.into_iter().map(|(_, d)| d).collect()
}

pub(crate) fn build(cx: &Ctx<'_>) -> Table {
    let data = cx.data;
    let source = Logs {
        tail: &data.logs,
        first: data.logs.first_seq(),
        snapshot: &data.snapshot,
        deck: data.deck_node,
        level: cx.state.level,
        node: cx.state.log_node,
        daemon: cx.state.log_daemon,
    };
    let columns = COLUMNS.to_vec();
    let sort = effective_sort(cx.table, columns.len());
    let order = {
        let mut cache = data.log_cache.lock();
        ordered(&mut cache, &source, text::needle(&cx.table.search), sort, cx.cut.logs)
    };
    finish(columns, &source, &order, cx.table, cx.window)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::order;
    use crate::state::TableState;
    use crate::table::SortDir;
    use crate::testkit;

    fn check(
        tail: &Tail<LogEntry>,
        cache: &mut LogCache,
        state: &TableState,
        level: Option<LogLevel>,
    ) {
        let snap = testkit::snapshot(2, Vec::new());
        let source = Logs {
            tail,
            first: tail.first_seq(),
            snapshot: &snap,
            deck: snap.this_node.node_id,
            level,
            node: None,
            daemon: None,
        };
        let sort = effective_sort(state, COLUMNS.len());
        let got = ordered(cache, &source, text::needle(&state.search), sort, u64::MAX);
        let want = order(&source, state, COLUMNS.len());
        assert_eq!(got, want);
    }

    #[test]
    fn the_memo_equals_a_full_recomputation() {
        let mut tail = Tail::new(50);
        let mut cache = LogCache::default();
        let states = [
            TableState::default(),
            TableState { search: "b".into(), ..TableState::default() },
            TableState {
                sort: Some(SortSpec { column: 3, dir: SortDir::Desc }),
                ..TableState::default()
            },
            TableState {
                sort: Some(SortSpec { column: 4, dir: SortDir::Asc }),
                search: "a".into(),
                ..TableState::default()
            },
        ];
        let mut n = 0u64;
        for round in 0..40 {
            for _ in 0..(round % 7) * 3 {
                let level = [LogLevel::Info, LogLevel::Warn, LogLevel::Error][(n % 3) as usize];
                tail.push(testkit::log(
                    n % 2,
                    n,
                    level,
                    &format!("{} line {n}", ["a", "b", "ab"][(n % 3) as usize]),
                ));
                n += 1;
            }
            let state = &states[(round / 5) % states.len()];
            let level = if round % 3 == 0 { Some(LogLevel::Warn) } else { None };
            check(&tail, &mut cache, state, level);
        }
    }
}
