//! MIGRATIONS: migrations in flight (oldest first), then recently ended ones
//! (newest first): phase, bytes moved, and whether one has stalled.

use mesh::MigrationPhase;
use mesh::migrate::MigrationSummary;

use super::{Ctx, cells};
use crate::engine::tabulate;
use crate::fmt;
use crate::table::{Cell, Column, Row, RowId, Style, Table};
use crate::text;

pub(crate) const COLUMNS: [Column; 9] = [
    Column::left("ID", 10),
    Column::left("DAEMON", 20),
    Column::left("SOURCE", 8),
    Column::left("TARGET", 8),
    Column::left("PHASE", 9),
    Column::right("BYTES", 10),
    Column::right("AGE", 7),
    Column::right("IDLE", 7),
    Column::left("STATE", 30),
];

/// Whether a migration has sat without progress for longer than `stall_after_ms`.
pub(crate) fn stalled(m: &MigrationSummary, now: u64, stall_after_ms: u64) -> bool {
    !m.phase.is_terminal() && now.saturating_sub(m.last_progress_ms) > stall_after_ms
}

fn state_cell(m: &MigrationSummary, now: u64, stall_after_ms: u64) -> Cell {
    match &m.phase {
        MigrationPhase::Complete => Cell::int("done", 3).styled(Style::Ok),
        MigrationPhase::Cancelled => Cell::int("cancelled", 4).styled(Style::Dim),
        MigrationPhase::Failed { reason } => {
            Cell::int(format!("failed: {}", text::clean(reason, 64)), 5).styled(Style::Err)
        }
        _ if stalled(m, now, stall_after_ms) => Cell::int("stalled", 1).styled(Style::Warn),
        _ => Cell::int("in flight", 0).styled(Style::Accent),
    }
}

pub(crate) fn migration_row(
    m: &MigrationSummary,
    now: u64,
    stall_after_ms: u64,
    deck: mesh::NodeId,
) -> Row {
    let phase_rank = match m.phase {
        MigrationPhase::Snapshot => 0,
        MigrationPhase::Transfer => 1,
        MigrationPhase::Restore => 2,
        MigrationPhase::Replay => 3,
        MigrationPhase::Cutover => 4,
        MigrationPhase::Complete => 5,
        MigrationPhase::Failed { .. } => 6,
        MigrationPhase::Cancelled => 7,
    };
    let idle = now.saturating_sub(m.last_progress_ms);
    Row {
        id: RowId::Migration(m.id),
        cells: vec![
            Cell::new(m.id.to_string()),
            Cell::new(text::name(&m.name)),
            cells::node(m.source, deck),
            cells::node(m.target, deck),
            Cell::int(m.phase.label(), phase_rank),
            cells::bytes(m.bytes_moved),
            cells::age(now, m.started_at_ms),
            if m.phase.is_terminal() {
                Cell::missing()
            } else {
                Cell::int(fmt::age_ms(idle), idle)
            },
            state_cell(m, now, stall_after_ms),
        ],
    }
}

pub(crate) fn build(cx: &Ctx<'_>) -> Table {
    let now = cx.now();
    let stall = cx.data.stall_after_ms;
    let mut list: Vec<&MigrationSummary> = cx.data.snapshot.migrations.iter().collect();
    list.sort_by_key(|m| {
        let done = m.phase.is_terminal();
        // In flight: oldest first; ended: newest first.
        (done, if done { u64::MAX - m.last_progress_ms } else { m.started_at_ms }, m.id)
    });
    let rows: Vec<Row> =
        list.into_iter().map(|m| migration_row(m, now, stall, cx.data.deck_node)).collect();
    tabulate(COLUMNS.to_vec(), &rows, cx.table, cx.window)
}
