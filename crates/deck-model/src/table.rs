//! The generic table every tab is built on.
//!
//! A [`Table`] is what a renderer draws: column headers, and the rows of the visible
//! window as cells of plain text with a semantic [`Style`] the renderer maps to
//! colours. Rows carry a stable [`RowId`], so a selection survives refreshes and
//! re-sorting. Sorting compares typed keys ([`SortValue`]), never formatted text,
//! and is stable and total: rows with equal keys keep their natural order in both
//! directions.
//!
//! Only the visible window is materialized (`first..first + rows.len()` of
//! `total` rows): a 100 000-line log tail costs the cells of one screen per frame.

use std::cmp::Ordering;
use std::fmt;

use mesh::{MigrationId, NodeId, OriginHash};
use serde::Serialize;

/// What a cell means, for colouring. The renderer picks the colours.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Style {
    /// Ordinary text.
    #[default]
    Normal,
    /// Good news: healthy, accepted, verified.
    Ok,
    /// Needs attention: degraded, draining, slow, stalled.
    Warn,
    /// Bad news: unreachable, unhealthy, rejected, broken chain, errors.
    Err,
    /// Secondary information: ids, idle rows, absent values.
    Dim,
    /// Stands out without being good or bad: this node, the active standby.
    Accent,
}

/// How a column sorts its cells when they carry no explicit [`SortValue`].
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub enum SortValue {
    /// By the cell's text, case-insensitively (ties broken by exact bytes).
    #[default]
    Text,
    /// By an integer.
    Int(i128),
    /// By a float (total order; NaN sorts after every number).
    Float(f64),
    /// No value: sorts after every value in ascending order.
    Missing,
}

/// One cell: display text (already escaped and capped), a style, a sort value.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Cell {
    /// What to show.
    pub text: String,
    /// How it should look.
    pub style: Style,
    /// How it sorts.
    #[serde(skip)]
    pub sort: SortValue,
}

impl Cell {
    /// A text cell in the normal style (`text` must already be safe; see
    /// [`crate::text::clean`]).
    pub fn new(text: impl Into<String>) -> Cell {
        Cell { text: text.into(), style: Style::Normal, sort: SortValue::Text }
    }

    /// Text from the cluster: escaped and capped at `max_chars`.
    pub fn untrusted(text: &str, max_chars: usize) -> Cell {
        Cell::new(crate::text::clean(text, max_chars))
    }

    /// A cell that sorts by an integer.
    pub fn int(text: impl Into<String>, value: impl Into<i128>) -> Cell {
        Cell { text: text.into(), style: Style::Normal, sort: SortValue::Int(value.into()) }
    }

    /// A cell that sorts by a float.
    pub fn float(text: impl Into<String>, value: f64) -> Cell {
        Cell { text: text.into(), style: Style::Normal, sort: SortValue::Float(value) }
    }

    /// An empty cell (`-`, dim) that sorts last.
    pub fn missing() -> Cell {
        Cell { text: "-".into(), style: Style::Dim, sort: SortValue::Missing }
    }

    /// The same cell in another style.
    pub fn styled(mut self, style: Style) -> Cell {
        self.style = style;
        self
    }

    /// The key this cell sorts by.
    pub fn key(&self) -> Key<'_> {
        match &self.sort {
            SortValue::Text => Key::Text(&self.text),
            SortValue::Int(i) => Key::Int(*i),
            SortValue::Float(f) => Key::Float(*f),
            SortValue::Missing => Key::Missing,
        }
    }
}

/// Horizontal alignment of a column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Align {
    /// Text columns.
    Left,
    /// Numbers.
    Right,
}

/// A column header.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Column {
    /// Header text (upper case by convention).
    pub name: &'static str,
    /// Alignment.
    pub align: Align,
    /// A width the renderer should try to give (characters); the last text column
    /// usually takes the rest.
    pub width: u16,
}

impl Column {
    /// A left-aligned column.
    pub const fn left(name: &'static str, width: u16) -> Column {
        Column { name, align: Align::Left, width }
    }

    /// A right-aligned (numeric) column.
    pub const fn right(name: &'static str, width: u16) -> Column {
        Column { name, align: Align::Right, width }
    }
}

/// A row's identity, stable across refreshes (selection follows it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RowId {
    /// A node.
    Node(NodeId),
    /// A daemon.
    Daemon(OriginHash),
    /// A lineage group (hash of its name).
    Group(u64),
    /// A blob adapter (hash of node and name).
    Adapter(u64),
    /// A blob in one adapter (adapter hash, first 8 bytes of the blob hash).
    Blob(u64, u64),
    /// A migration.
    Migration(MigrationId),
    /// An RPC service (hash of its name).
    Service(u64),
    /// A log line, by the deck's own sequence number.
    Log(u64),
    /// A failure record, by the deck's sequence number.
    Failure(u64),
    /// An audit entry, by the deck's sequence number.
    Audit(u64),
    /// An RPC call record, by the deck's sequence number.
    Call(u64),
    /// A line of a detail page.
    Field(u32),
}

impl fmt::Display for RowId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RowId::Node(n) => write!(f, "node:{n}"),
            RowId::Daemon(d) => write!(f, "daemon:{d}"),
            RowId::Group(h) => write!(f, "group:{h:016x}"),
            RowId::Adapter(h) => write!(f, "adapter:{h:016x}"),
            RowId::Blob(a, h) => write!(f, "blob:{a:016x}/{h:016x}"),
            RowId::Migration(m) => write!(f, "migration:{m}"),
            RowId::Service(h) => write!(f, "service:{h:016x}"),
            RowId::Log(s) => write!(f, "log:{s}"),
            RowId::Failure(s) => write!(f, "failure:{s}"),
            RowId::Audit(s) => write!(f, "audit:{s}"),
            RowId::Call(s) => write!(f, "call:{s}"),
            RowId::Field(i) => write!(f, "field:{i}"),
        }
    }
}

/// A stable 64-bit hash of a string (FNV-1a), for row ids of named things.
pub fn name_hash(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.bytes().chain(std::iter::once(0xff)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// One row: its id and one cell per column.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Row {
    /// Stable identity.
    pub id: RowId,
    /// One cell per column.
    pub cells: Vec<Cell>,
}

/// Sort direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SortDir {
    /// Smallest first.
    #[default]
    Asc,
    /// Largest first.
    Desc,
}

/// Sort by one column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct SortSpec {
    /// Column index.
    pub column: usize,
    /// Direction.
    pub dir: SortDir,
}

/// A view's table: headers and the visible window of rows.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Table {
    /// Column headers.
    pub columns: Vec<Column>,
    /// The rows of the window, in display order.
    pub rows: Vec<Row>,
    /// Position of `rows[0]` among all `total` rows.
    pub first: usize,
    /// Rows after filtering (search, level ...).
    pub total: usize,
    /// Rows before filtering.
    pub unfiltered: usize,
    /// Position of the selected row among all `total` rows (always inside the
    /// window when set); `None` only when there are no rows.
    pub selected: Option<usize>,
    /// The sort in force (`None`: the tab's natural order).
    pub sort: Option<SortSpec>,
    /// The selection sticks to the last row as rows arrive.
    pub follow: bool,
}

impl Table {
    /// The selected row, if any.
    pub fn selected_row(&self) -> Option<&Row> {
        self.selected.and_then(|p| self.rows.get(p.checked_sub(self.first)?))
    }

    /// The selected row's id, if any.
    pub fn selected_id(&self) -> Option<RowId> {
        self.selected_row().map(|r| r.id)
    }

    /// Index into [`Table::rows`] of the selected row (what a renderer highlights).
    pub fn selected_in_window(&self) -> Option<usize> {
        self.selected.and_then(|p| p.checked_sub(self.first)).filter(|i| *i < self.rows.len())
    }

    /// Column index by header name.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// The text of `row`'s cell under the column named `column`.
    pub fn cell_text<'a>(&'a self, row: &'a Row, column: &str) -> Option<&'a str> {
        self.column(column).and_then(|i| row.cells.get(i)).map(|c| c.text.as_str())
    }

    /// The row with this id in the window.
    pub fn row(&self, id: RowId) -> Option<&Row> {
        self.rows.iter().find(|r| r.id == id)
    }
}

/// A borrowed sort key.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Key<'a> {
    /// An integer.
    Int(i128),
    /// A float.
    Float(f64),
    /// Text (compared case-insensitively, then by bytes).
    Text(&'a str),
    /// No value.
    Missing,
}

impl Key<'_> {
    fn rank(&self) -> u8 {
        match self {
            Key::Int(_) => 0,
            Key::Float(_) => 1,
            Key::Text(_) => 2,
            Key::Missing => 3,
        }
    }

    /// A total order: numbers by value, text case-insensitively then by bytes,
    /// different kinds by kind, missing last.
    pub fn total_cmp(&self, other: &Key<'_>) -> Ordering {
        match (self, other) {
            (Key::Int(a), Key::Int(b)) => a.cmp(b),
            (Key::Float(a), Key::Float(b)) => a.total_cmp(b),
            (Key::Text(a), Key::Text(b)) => cmp_text(a, b),
            (Key::Missing, Key::Missing) => Ordering::Equal,
            (a, b) => a.rank().cmp(&b.rank()),
        }
    }
}

/// Case-insensitive comparison (ASCII fast path), ties broken by bytes so the
/// order is total.
pub(crate) fn cmp_text(a: &str, b: &str) -> Ordering {
    let (x, y) = (a.as_bytes(), b.as_bytes());
    // Bytes equal as they stand are equal folded too: skip the common prefix
    // eight bytes at a time (log lines often share long prefixes). It ends where
    // the strings differ, so at a character boundary of any ASCII byte there; a
    // non-ASCII byte there takes the fully folded path below.
    let start = common_prefix(x, y);
    let mut folded = None;
    for (p, q) in x[start..].iter().zip(&y[start..]) {
        if *p >= 0x80 || *q >= 0x80 {
            // Non-ASCII: compare the lower-cased characters from here on.
            folded = Some(
                a.chars().flat_map(char::to_lowercase).cmp(b.chars().flat_map(char::to_lowercase)),
            );
            break;
        }
        let (p, q) = (p.to_ascii_lowercase(), q.to_ascii_lowercase());
        if p != q {
            folded = Some(p.cmp(&q));
            break;
        }
    }
    folded.unwrap_or_else(|| x.len().cmp(&y.len())).then_with(|| a.cmp(b))
}

/// Length of the longest common prefix of `x` and `y`.
fn common_prefix(x: &[u8], y: &[u8]) -> usize {
    let n = x.len().min(y.len());
    let word = |s: &[u8], i: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&s[i..i + 8]);
        u64::from_le_bytes(w)
    };
    let mut i = 0;
    while i + 8 <= n {
        let diff = word(x, i) ^ word(y, i);
        if diff != 0 {
            return i + (diff.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < n && x[i] == y[i] {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_prefixes() {
        assert_eq!(common_prefix(b"", b"abc"), 0);
        assert_eq!(common_prefix(b"abcdefghijk", b"abcdefghijk"), 11);
        assert_eq!(common_prefix(b"abcdefghXjk", b"abcdefghijk"), 8);
        assert_eq!(common_prefix(b"abcXefghijk", b"abcdefghijk"), 3);
        assert_eq!(common_prefix(b"abcdefghij", b"abcdefghijklm"), 10);
    }

    #[test]
    fn text_order_folds_case_after_a_shared_prefix() {
        let sorted = ["prefill 9 Alpha", "prefill 9 beta", "Prefill 9 Gamma", "ÉCOLE", "école x"];
        for w in sorted.windows(2) {
            assert_eq!(cmp_text(w[0], w[1]), Ordering::Less, "{w:?}");
            assert_eq!(cmp_text(w[1], w[0]), Ordering::Greater, "{w:?}");
        }
        assert_eq!(cmp_text("prefill 9 a", "prefill 9 A"), "prefill 9 a".cmp("prefill 9 A"));
        assert_eq!(cmp_text("été café", "été café"), Ordering::Equal);
    }

    #[test]
    fn keys_order_totally() {
        let keys = [
            Key::Missing,
            Key::Text("b"),
            Key::Text("B"),
            Key::Text("a"),
            Key::Float(f64::NAN),
            Key::Float(-1.0),
            Key::Int(5),
            Key::Int(-5),
        ];
        for a in &keys {
            assert_eq!(a.total_cmp(a), Ordering::Equal);
            for b in &keys {
                assert_eq!(a.total_cmp(b), b.total_cmp(a).reverse(), "{a:?} {b:?}");
            }
        }
        assert_eq!(Key::Text("a").total_cmp(&Key::Text("B")), Ordering::Less);
        assert_eq!(Key::Text("B").total_cmp(&Key::Text("b")), Ordering::Less);
        assert_eq!(Key::Int(3).total_cmp(&Key::Missing), Ordering::Less);
    }

    #[test]
    fn name_hash_is_stable_and_separates_parts() {
        assert_eq!(name_hash(&["a", "b"]), name_hash(&["a", "b"]));
        assert_ne!(name_hash(&["ab", ""]), name_hash(&["a", "b"]));
        assert_eq!(RowId::Log(3).to_string(), "log:3");
    }
}
