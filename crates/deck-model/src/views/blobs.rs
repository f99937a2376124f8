//! BLOBS: the inventory of every blob adapter the deck was given, merged: which
//! adapter and node hold a blob, its hash, size, age and heat.
//!
//! Inventories can be large (10 000 blobs and more), so rows are described lazily
//! and only the visible window is formatted.

use mesh::NodeId;

use super::Ctx;
use super::dataforts::adapter_id;
use crate::data::BlobEntry;
use crate::engine::{Source, tabulate};
use crate::fmt;
use crate::table::{Cell, Column, Key, Row, RowId, Style, Table};
use crate::text;

pub(crate) const COLUMNS: [Column; 8] = [
    Column::left("ADAPTER", 16),
    Column::left("NODE", 8),
    Column::left("HASH", 12),
    Column::right("SIZE", 10),
    Column::right("AGE", 7),
    Column::left("HEAT", 6),
    Column::right("READS", 6),
    Column::left("PINNED", 6),
];

/// Reads per minute of quiet: many recent reads are hot, old unread blobs cold.
pub(crate) fn heat(e: &BlobEntry, now: u64) -> f64 {
    let last = e.last_read_ms.unwrap_or(e.stored_at_ms);
    let idle_min = now.saturating_sub(last) as f64 / 60_000.0;
    e.read_count as f64 / (1.0 + idle_min)
}

fn heat_cell(score: f64) -> Cell {
    let fraction = ((1.0 + score).ln() / 101f64.ln()).clamp(0.0, 1.0);
    let style = match score {
        s if s >= 20.0 => Style::Err,
        s if s >= 5.0 => Style::Warn,
        s if s > 0.0 => Style::Normal,
        _ => Style::Dim,
    };
    Cell::float(fmt::bar(fraction, 5), score).styled(style)
}

fn prefix(e: &BlobEntry) -> u64 {
    let b = e.hash.as_bytes();
    u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
}

/// Whether the hex form of `bytes` contains `needle` (lower case), without
/// allocating.
fn hex_contains(bytes: &[u8; 32], needle: &str) -> bool {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    if needle.is_empty() || needle.len() > 64 || !needle.bytes().all(|b| b.is_ascii_hexdigit()) {
        return needle.is_empty();
    }
    let mut hex = [0u8; 64];
    for (i, b) in bytes.iter().enumerate() {
        hex[2 * i] = DIGITS[(b >> 4) as usize];
        hex[2 * i + 1] = DIGITS[(b & 0x0f) as usize];
    }
    hex.windows(needle.len()).any(|w| w == needle.as_bytes())
}

struct Blobs<'a> {
    blobs: &'a [BlobEntry],
    now: u64,
    deck: NodeId,
}

impl Source for Blobs<'_> {
    fn len(&self) -> usize {
        self.blobs.len()
    }

    fn id(&self, i: usize) -> RowId {
        let e = &self.blobs[i];
        RowId::Blob(adapter_id(e.node, &e.adapter), prefix(e))
    }

    fn key(&self, i: usize, column: usize) -> Key<'_> {
        let e = &self.blobs[i];
        match column {
            0 => Key::Text(&e.adapter),
            1 => Key::Int(i128::from(e.node.0)),
            2 => Key::Int(i128::from(prefix(e))),
            3 => Key::Int(i128::from(e.size)),
            4 => Key::Int(i128::from(self.now.saturating_sub(e.stored_at_ms))),
            5 => Key::Float(heat(e, self.now)),
            6 => Key::Int(i128::from(e.read_count)),
            7 => Key::Int(i128::from(e.pinned)),
            _ => Key::Missing,
        }
    }

    fn matches(&self, i: usize, needle: &str) -> bool {
        let e = &self.blobs[i];
        text::contains_ci(&e.adapter, needle)
            || text::short_id_contains(e.node.0, needle)
            || hex_contains(e.hash.as_bytes(), needle)
    }

    fn row(&self, i: usize) -> Row {
        let e = &self.blobs[i];
        let age = self.now.saturating_sub(e.stored_at_ms);
        Row {
            id: self.id(i),
            cells: vec![
                Cell::new(text::name(&e.adapter)),
                super::cells::node(e.node, self.deck),
                Cell::int(e.hash.short(), prefix(e)),
                Cell::int(fmt::bytes(e.size), e.size),
                Cell::int(fmt::age_ms(age), age),
                heat_cell(heat(e, self.now)),
                super::cells::count(e.read_count),
                if e.pinned {
                    Cell::int("pinned", 1).styled(Style::Accent)
                } else {
                    Cell::int("-", 0).styled(Style::Dim)
                },
            ],
        }
    }
}

pub(crate) fn build(cx: &Ctx<'_>) -> Table {
    let source = Blobs { blobs: &cx.data.blobs, now: cx.now(), deck: cx.data.deck_node };
    tabulate(COLUMNS.to_vec(), &source, cx.table, cx.window)
}
