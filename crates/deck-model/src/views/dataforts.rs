//! DATAFORTS: one row per blob adapter: capacity, use and traffic.

use super::{Ctx, cells};
use crate::data::FortStats;
use crate::engine::tabulate;
use crate::fmt;
use crate::table::{Cell, Column, Row, RowId, Style, Table, name_hash};
use crate::text;

pub(crate) const COLUMNS: [Column; 13] = [
    Column::left("ADAPTER", 16),
    Column::left("NODE", 8),
    Column::right("BLOBS", 6),
    Column::right("BYTES", 10),
    Column::right("USED", 10),
    Column::right("CAPACITY", 10),
    Column::left("USE", 12),
    Column::right("PUTS", 6),
    Column::right("GETS", 6),
    Column::right("HITS", 6),
    Column::right("FETCHES", 7),
    Column::right("EVICTIONS", 9),
    Column::right("INTEGRITY", 9),
];

/// Row id of an adapter.
pub(crate) fn adapter_id(node: mesh::NodeId, adapter: &str) -> u64 {
    name_hash(&[adapter]) ^ node.0.wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

fn use_cell(f: &FortStats) -> Cell {
    match f.capacity {
        Some(cap) if cap > 0 => {
            let fraction = f.used as f64 / cap as f64;
            let style = if fraction > 0.95 {
                Style::Err
            } else if fraction > 0.8 {
                Style::Warn
            } else {
                Style::Ok
            };
            Cell::float(format!("{} {}", fmt::bar(fraction, 6), fmt::percent(fraction)), fraction)
                .styled(style)
        }
        _ => Cell::new("unbounded").styled(Style::Dim),
    }
}

pub(crate) fn build(cx: &Ctx<'_>) -> Table {
    let deck = cx.data.deck_node;
    let rows: Vec<Row> = cx
        .data
        .forts
        .iter()
        .map(|f| Row {
            id: RowId::Adapter(adapter_id(f.node, &f.adapter)),
            cells: vec![
                Cell::new(text::name(&f.adapter)),
                cells::node(f.node, deck),
                cells::count(f.blobs),
                cells::bytes(f.bytes),
                cells::bytes(f.used),
                f.capacity.map_or_else(Cell::missing, cells::bytes),
                use_cell(f),
                cells::count(f.puts),
                cells::count(f.gets),
                cells::count(f.hits),
                cells::count(f.fetches),
                if f.evictions > 0 {
                    cells::count(f.evictions).styled(Style::Warn)
                } else {
                    cells::count(0).styled(Style::Dim)
                },
                if f.integrity_failures > 0 {
                    cells::count(f.integrity_failures).styled(Style::Err)
                } else {
                    cells::count(0).styled(Style::Dim)
                },
            ],
        })
        .collect();
    tabulate(COLUMNS.to_vec(), &rows, cx.table, cx.window)
}
