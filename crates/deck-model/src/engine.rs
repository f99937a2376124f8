//! Filtering, sorting, selection and windowing, shared by every tab.
//!
//! A tab describes its rows through [`Source`] (ids, sort keys, search matching and
//! how to format one row); [`tabulate`] does the rest: filter by the tab's own
//! criteria and the search text, sort stably by the chosen column, resolve the
//! selection by id (falling back to the old position when the row vanished), keep
//! it inside the visible window, and format only the rows of that window.

use std::cmp::Ordering;

use crate::state::TableState;
use crate::table::{Column, Key, Row, RowId, SortDir, SortSpec, Table};
use crate::text;

/// How many rows to materialize.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Window {
    /// A screen of this many rows around the selection.
    Rows(usize),
    /// Every row (export, headless).
    All,
}

/// A tab's rows, by natural index `0..len`.
pub(crate) trait Source {
    /// Rows before any filtering.
    fn len(&self) -> usize;
    /// Row `i`'s id.
    fn id(&self, i: usize) -> RowId;
    /// Row `i`'s sort key in `column`.
    fn key(&self, i: usize, column: usize) -> Key<'_>;
    /// Whether row `i` matches a (lower-case, non-empty) search needle.
    fn matches(&self, i: usize, needle: &str) -> bool;
    /// Row `i`, formatted.
    fn row(&self, i: usize) -> Row;
    /// The tab's own filters (level, node, pause).
    fn include(&self, _i: usize) -> bool {
        true
    }
}

/// A fully built list of rows (small tabs build every row; it is simpler and
/// cheap at their sizes).
impl Source for Vec<Row> {
    fn len(&self) -> usize {
        <[Row]>::len(self)
    }
    fn id(&self, i: usize) -> RowId {
        self[i].id
    }
    fn key(&self, i: usize, column: usize) -> Key<'_> {
        self[i].cells.get(column).map_or(Key::Missing, |c| c.key())
    }
    fn matches(&self, i: usize, needle: &str) -> bool {
        self[i].cells.iter().any(|c| text::contains_ci(&c.text, needle))
    }
    fn row(&self, i: usize) -> Row {
        self[i].clone()
    }
}

/// Rows described by cheap per-row items; cells are formatted only for the
/// visible window (and for search, which matches the formatted cells).
pub(crate) struct Lazy<'f, T> {
    pub(crate) items: Vec<T>,
    pub(crate) id: &'f dyn Fn(&T) -> RowId,
    pub(crate) key: &'f dyn for<'b> Fn(&'b T, usize) -> Key<'b>,
    pub(crate) row: &'f dyn Fn(&T) -> Row,
}

impl<T> Source for Lazy<'_, T> {
    fn len(&self) -> usize {
        self.items.len()
    }
    fn id(&self, i: usize) -> RowId {
        (self.id)(&self.items[i])
    }
    fn key(&self, i: usize, column: usize) -> Key<'_> {
        (self.key)(&self.items[i], column)
    }
    fn matches(&self, i: usize, needle: &str) -> bool {
        (self.row)(&self.items[i]).cells.iter().any(|c| text::contains_ci(&c.text, needle))
    }
    fn row(&self, i: usize) -> Row {
        (self.row)(&self.items[i])
    }
}

/// The effective sort: `None` when the column does not exist.
pub(crate) fn effective_sort(state: &TableState, columns: usize) -> Option<SortSpec> {
    state.sort.filter(|s| s.column < columns)
}

/// Compares two rows under `sort` (equal keys compare equal: callers sort stably).
pub(crate) fn compare<S: Source + ?Sized>(s: &S, sort: SortSpec, a: usize, b: usize) -> Ordering {
    let o = s.key(a, sort.column).total_cmp(&s.key(b, sort.column));
    match sort.dir {
        SortDir::Asc => o,
        SortDir::Desc => o.reverse(),
    }
}

/// The displayed order: natural indices that pass the filters, sorted stably.
pub(crate) fn order<S: Source + ?Sized>(s: &S, state: &TableState, columns: usize) -> Vec<usize> {
    let needle = text::needle(&state.search);
    let mut order: Vec<usize> = (0..s.len())
        .filter(|&i| s.include(i) && (needle.is_empty() || s.matches(i, &needle)))
        .collect();
    if let Some(sort) = effective_sort(state, columns) {
        order.sort_by(|&a, &b| compare(s, sort, a, b));
    }
    order
}

/// Builds the table of `s` as `state` wants it.
pub(crate) fn tabulate<S: Source + ?Sized>(
    columns: Vec<Column>,
    s: &S,
    state: &TableState,
    window: Window,
) -> Table {
    let order = order(s, state, columns.len());
    finish(columns, s, &order, state, window)
}

/// Selection, window and formatting for a given order.
pub(crate) fn finish<S: Source + ?Sized>(
    columns: Vec<Column>,
    s: &S,
    order: &[usize],
    state: &TableState,
    window: Window,
) -> Table {
    let total = order.len();
    let sort = effective_sort(state, columns.len());
    let selected = resolve(s, order, state);
    let (first, end) = match window {
        Window::All => (0, total),
        Window::Rows(height) => {
            let height = height.max(1);
            let mut first = state.offset.min(total.saturating_sub(height));
            if let Some(p) = selected {
                if p < first {
                    first = p;
                } else if p >= first + height {
                    first = p + 1 - height;
                }
            }
            (first, (first + height).min(total))
        }
    };
    let rows = order[first..end].iter().map(|&i| s.row(i)).collect();
    Table { columns, rows, first, total, unfiltered: s.len(), selected, sort, follow: state.follow }
}

fn resolve<S: Source + ?Sized>(s: &S, order: &[usize], state: &TableState) -> Option<usize> {
    let total = order.len();
    if total == 0 {
        return None;
    }
    let fallback = state.pos.min(total - 1);
    if state.follow {
        return Some(total - 1);
    }
    if state.by_position {
        return Some(fallback);
    }
    let Some(id) = state.selected else { return Some(fallback) };
    if state.pos < total && s.id(order[state.pos]) == id {
        return Some(state.pos);
    }
    Some(order.iter().position(|&i| s.id(i) == id).unwrap_or(fallback))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Msg, TableState, ViewState, update};
    use crate::table::Cell;

    fn rows(n: u64) -> Vec<Row> {
        (0..n)
            .map(|i| Row {
                id: RowId::Log(i),
                cells: vec![
                    Cell::int(format!("{}", i % 3), (i % 3) as i64),
                    Cell::new(format!("r{i}")),
                ],
            })
            .collect()
    }

    fn cols() -> Vec<Column> {
        vec![Column::right("MOD", 3), Column::left("NAME", 8)]
    }

    #[test]
    fn windows_follow_the_selection() {
        let data = rows(100);
        let mut st = TableState::default();
        let t = tabulate(cols(), &data, &st, Window::Rows(10));
        assert_eq!((t.first, t.rows.len(), t.selected), (0, 10, Some(0)));
        st.observe(&t);
        st.pos = 55;
        st.by_position = true;
        let t = tabulate(cols(), &data, &st, Window::Rows(10));
        assert_eq!((t.first, t.selected), (46, Some(55)));
        assert_eq!(t.selected_id(), Some(RowId::Log(55)));
    }

    #[test]
    fn sort_is_stable_in_both_directions() {
        let data = rows(9);
        let st = TableState {
            sort: Some(SortSpec { column: 0, dir: SortDir::Desc }),
            ..TableState::default()
        };
        let t = tabulate(cols(), &data, &st, Window::All);
        let ids: Vec<_> = t.rows.iter().map(|r| r.id).collect();
        let want: Vec<_> = [2, 5, 8, 1, 4, 7, 0, 3, 6].map(RowId::Log).to_vec();
        assert_eq!(ids, want);
    }

    #[test]
    fn a_vanished_selection_falls_back_to_its_position() {
        let mut vs = ViewState::new();
        let data = rows(10);
        let st = vs.tables[0].clone();
        let t = tabulate(cols(), &data, &st, Window::Rows(5));
        vs.tables[0].observe(&t);
        for _ in 0..3 {
            update(&mut vs, Msg::Down);
        }
        let t = tabulate(cols(), &data, &vs.tables[0], Window::Rows(5));
        assert_eq!(t.selected_id(), Some(RowId::Log(3)));
        vs.tables[0].observe(&t);
        let fewer: Vec<Row> = data.into_iter().filter(|r| r.id != RowId::Log(3)).collect();
        let t = tabulate(cols(), &fewer, &vs.tables[0], Window::Rows(5));
        assert_eq!(t.selected_id(), Some(RowId::Log(4)));
        let t = tabulate(cols(), &Vec::<Row>::new(), &vs.tables[0], Window::Rows(5));
        assert_eq!((t.selected, t.rows.len()), (None, 0));
    }
}
