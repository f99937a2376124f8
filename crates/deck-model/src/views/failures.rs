//! FAILURES: the merged failure records of every node (daemon panics, lost peers,
//! failed and cancelled migrations ...), newest last.

use mesh::FailureRecord;

use super::{Ctx, cells};
use crate::engine::{Source, tabulate};
use crate::table::{Cell, Column, Key, Row, RowId, Style, Table};
use crate::tail::Tail;
use crate::text;

pub(crate) const COLUMNS: [Column; 5] = [
    Column::left("TIME", 12),
    Column::left("NODE", 8),
    Column::left("KIND", 20),
    Column::left("SUBJECT", 24),
    Column::left("MESSAGE", 60),
];

struct Failures<'a> {
    tail: &'a Tail<FailureRecord>,
    first: u64,
    deck: mesh::NodeId,
    cut: u64,
}

impl Source for Failures<'_> {
    fn len(&self) -> usize {
        self.tail.len()
    }

    fn id(&self, i: usize) -> RowId {
        RowId::Failure(self.first + i as u64)
    }

    fn key(&self, i: usize, column: usize) -> Key<'_> {
        let Some(f) = self.tail.at(i) else { return Key::Missing };
        match column {
            0 => Key::Int(i128::from(f.ts_ms)),
            1 => Key::Int(i128::from(f.node.0)),
            2 => Key::Text(&f.kind),
            3 => Key::Text(&f.subject),
            4 => Key::Text(&f.message),
            _ => Key::Missing,
        }
    }

    fn matches(&self, i: usize, needle: &str) -> bool {
        self.tail.at(i).is_some_and(|f| {
            [f.kind.as_str(), f.subject.as_str(), f.message.as_str()]
                .iter()
                .any(|s| text::contains_ci(s, needle))
                || text::short_id_contains(f.node.0, needle)
        })
    }

    fn row(&self, i: usize) -> Row {
        let id = self.id(i);
        let Some(f) = self.tail.at(i) else { return Row { id, cells: Vec::new() } };
        Row {
            id,
            cells: vec![
                cells::time(f.ts_ms),
                cells::node(f.node, self.deck),
                Cell::new(text::name(&f.kind)).styled(Style::Err),
                Cell::new(text::name(&f.subject)),
                Cell::new(text::message(&f.message)),
            ],
        }
    }

    fn include(&self, i: usize) -> bool {
        self.first + (i as u64) < self.cut
    }
}

pub(crate) fn build(cx: &Ctx<'_>) -> Table {
    let source = Failures {
        tail: &cx.data.failures,
        first: cx.data.failures.first_seq(),
        deck: cx.data.deck_node,
        cut: cx.cut.failures,
    };
    tabulate(COLUMNS.to_vec(), &source, cx.table, cx.window)
}
