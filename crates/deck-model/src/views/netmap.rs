//! NET.MAP: every node as this deck's node sees it: health, round trips, the link
//! to it, and its admin state.

use mesh::Health;

use super::{Ctx, cells};
use crate::engine::tabulate;
use crate::fmt;
use crate::table::{Cell, Column, Row, RowId, Style, Table};

pub(crate) const COLUMNS: [Column; 10] = [
    Column::left("NODE", 8),
    Column::left("ROLE", 5),
    Column::left("ADDR", 21),
    Column::left("HEALTH", 11),
    Column::right("RTT", 8),
    Column::right("RTT MAX", 8),
    Column::left("LINK", 5),
    Column::right("HEARD", 7),
    Column::left("STATE", 11),
    Column::left("VERSION", 10),
];

/// The admin state label of a node, styled.
pub(crate) fn admin_cell(admin: &mesh::AdminState, now: u64) -> Cell {
    let label = admin.label(now);
    let (rank, style) = match label {
        "ready" => (0, Style::Ok),
        "cordoned" => (1, Style::Warn),
        "draining" => (2, Style::Warn),
        "maintenance" => (3, Style::Accent),
        _ => (4, Style::Err),
    };
    Cell::int(label, rank).styled(style)
}

fn link(health: &Health) -> Cell {
    match health {
        Health::Healthy => Cell::int("━━━━━", 0).styled(Style::Ok),
        Health::Degraded { .. } => Cell::int("━ ━ ━", 1).styled(Style::Warn),
        Health::Unreachable { .. } => Cell::int("  ╳  ", 2).styled(Style::Err),
    }
}

fn latency(d: Option<std::time::Duration>) -> Cell {
    match d {
        Some(d) => Cell::int(fmt::latency(d), d.as_micros().min(u128::from(u64::MAX)) as u64),
        None => Cell::missing(),
    }
}

pub(crate) fn build(cx: &Ctx<'_>) -> Table {
    let snap = &cx.data.snapshot;
    let now = cx.now();
    let me = &snap.this_node;
    let mut rows = Vec::with_capacity(snap.peers.len() + 1);
    rows.push(Row {
        id: RowId::Node(me.node_id),
        cells: vec![
            Cell::new(me.node_id.short()).styled(Style::Accent),
            Cell::new(if me.is_operator() { "deck" } else { "self" }).styled(Style::Accent),
            Cell::new(me.addr.to_string()),
            cells::health(&Health::Healthy),
            Cell::missing(),
            Cell::missing(),
            Cell::int("self", -1).styled(Style::Accent),
            Cell::missing(),
            admin_cell(&me.admin, now),
            Cell::untrusted(&me.version, 16),
        ],
    });
    for p in &snap.peers {
        let info = &p.info;
        let heard = info.last_heard.as_millis().min(u128::from(u64::MAX)) as u64;
        rows.push(Row {
            id: RowId::Node(info.node_id),
            cells: vec![
                Cell::new(info.node_id.short()),
                if info.is_operator() {
                    Cell::new("deck").styled(Style::Dim)
                } else {
                    Cell::new("peer")
                },
                Cell::new(info.addr.to_string()),
                cells::health(&info.health),
                latency(info.rtt),
                latency(info.rtt_max_recent),
                link(&info.health),
                Cell::int(fmt::age_ms(heard), heard).styled(if info.health.is_healthy() {
                    Style::Dim
                } else {
                    Style::Warn
                }),
                admin_cell(&p.admin, now),
                Cell::untrusted(&info.version, 16),
            ],
        });
    }
    tabulate(COLUMNS.to_vec(), &rows, cx.table, cx.window)
}
