//! AUDIT: the merged audit ledgers of every node: who signed what, the outcome and
//! the reason, and whether the entry's place in its node's hash chain checked out
//! (`mesh_auth::verify_segment`, page by page, from each ledger's first entry).

use mesh_auth::{AuditOutcome, CommandClass};

use super::{Ctx, cells};
use crate::data::{AuditItem, ChainMark, DeckData};
use crate::engine::{Source, tabulate};
use crate::fmt;
use crate::table::{Cell, Column, Key, Row, RowId, Style, Table};
use crate::tail::Tail;
use crate::text;

pub(crate) const COLUMNS: [Column; 10] = [
    Column::left("TIME", 8),
    Column::left("NODE", 8),
    Column::right("SEQ", 5),
    Column::left("OPERATORS", 18),
    Column::left("CLASS", 7),
    Column::left("TARGET", 26),
    Column::left("ACTION", 15),
    Column::left("OUTCOME", 8),
    Column::left("REASON", 60),
    Column::left("CHAIN", 10),
];

struct Audit<'a> {
    tail: &'a Tail<AuditItem>,
    first: u64,
    data: &'a DeckData,
    cut: u64,
}

impl Audit<'_> {
    fn item(&self, i: usize) -> Option<&AuditItem> {
        self.tail.at(i)
    }

    /// The verb of a command this deck sent, recognised by its payload digest.
    fn action(&self, item: &AuditItem) -> Option<&str> {
        let digest = item.entry.record.payload_digest;
        self.data.actions.iter().rev().find(|a| a.payload_digest == digest).map(|a| a.verb)
    }
}

fn reason(outcome: &AuditOutcome) -> String {
    match outcome {
        AuditOutcome::Accepted => String::new(),
        AuditOutcome::Rejected { code, detail } => text::message(&format!("{code}: {detail}")),
    }
}

fn operators(item: &AuditItem) -> String {
    let ops = &item.entry.record.operators;
    match ops.len() {
        0 => "-".into(),
        1..=2 => ops.iter().map(|o| o.short()).collect::<Vec<_>>().join(","),
        n => format!("{},{} +{}", ops[0].short(), ops[1].short(), n - 2),
    }
}

impl Source for Audit<'_> {
    fn len(&self) -> usize {
        self.tail.len()
    }

    fn id(&self, i: usize) -> RowId {
        RowId::Audit(self.first + i as u64)
    }

    fn key(&self, i: usize, column: usize) -> Key<'_> {
        let Some(item) = self.item(i) else { return Key::Missing };
        let r = &item.entry.record;
        match column {
            0 => Key::Int(i128::from(r.ts_ms)),
            1 => Key::Int(i128::from(item.node.0)),
            2 => Key::Int(i128::from(item.entry.seq)),
            3 => r.operators.first().map_or(Key::Missing, |o| Key::Int(i128::from(o.0))),
            4 => Key::Int(i128::from(r.class == CommandClass::Ice)),
            5 => Key::Text(&r.target),
            6 => self.action(item).map_or(Key::Missing, Key::Text),
            7 => Key::Int(i128::from(!r.outcome.is_accepted())),
            8 => match &r.outcome {
                AuditOutcome::Accepted => Key::Missing,
                AuditOutcome::Rejected { code, .. } => Key::Text(code),
            },
            9 => Key::Int(item.chain as i128),
            _ => Key::Missing,
        }
    }

    fn matches(&self, i: usize, needle: &str) -> bool {
        let Some(item) = self.item(i) else { return false };
        let r = &item.entry.record;
        text::contains_ci(&r.target, needle)
            || text::short_id_contains(item.node.0, needle)
            || text::contains_ci(&reason(&r.outcome), needle)
            || text::contains_ci(&operators(item), needle)
            || self.action(item).is_some_and(|a| text::contains_ci(a, needle))
            || text::contains_ci(
                if r.outcome.is_accepted() { "accepted" } else { "rejected" },
                needle,
            )
    }

    fn row(&self, i: usize) -> Row {
        let id = self.id(i);
        let Some(item) = self.item(i) else { return Row { id, cells: Vec::new() } };
        let r = &item.entry.record;
        let deck = self.data.deck_node;
        Row {
            id,
            cells: vec![
                Cell::int(fmt::clock(r.ts_ms), r.ts_ms).styled(Style::Dim),
                cells::node(item.node, deck),
                cells::count(item.entry.seq),
                match r.operators.first() {
                    Some(first) => Cell::int(operators(item), first.0),
                    None => Cell::missing(),
                },
                match r.class {
                    CommandClass::Ice => Cell::int("ICE", 1).styled(Style::Warn),
                    CommandClass::Routine => Cell::int("routine", 0),
                },
                Cell::new(text::name(&r.target)),
                self.action(item).map_or_else(Cell::missing, Cell::new),
                if r.outcome.is_accepted() {
                    Cell::int("accepted", 0).styled(Style::Ok)
                } else {
                    Cell::int("rejected", 1).styled(Style::Err)
                },
                match &r.outcome {
                    AuditOutcome::Accepted => Cell::missing(),
                    AuditOutcome::Rejected { .. } => {
                        Cell::new(reason(&r.outcome)).styled(Style::Err)
                    }
                },
                match item.chain {
                    ChainMark::Verified => Cell::int("verified", 0).styled(Style::Ok),
                    ChainMark::Broken => Cell::int("BROKEN", 1).styled(Style::Err),
                    ChainMark::Unverified => Cell::int("unchecked", 2).styled(Style::Dim),
                },
            ],
        }
    }

    fn include(&self, i: usize) -> bool {
        self.first + (i as u64) < self.cut
    }
}

pub(crate) fn build(cx: &Ctx<'_>) -> Table {
    let source = Audit {
        tail: &cx.data.audit,
        first: cx.data.audit.first_seq(),
        data: cx.data,
        cut: cx.cut.audit,
    };
    tabulate(COLUMNS.to_vec(), &source, cx.table, cx.window)
}
