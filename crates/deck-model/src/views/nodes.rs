//! NODES: per node resources, the daemons placed on it, and its admin state.

use std::collections::HashMap;

use mesh::fold::Resources;
use mesh::{AdminState, DaemonHealth, Health, NodeId};

use super::netmap::admin_cell;
use super::{Ctx, cells};
use crate::engine::tabulate;
use crate::fmt;
use crate::table::{Cell, Column, Row, RowId, Style, Table};

pub(crate) const COLUMNS: [Column; 12] = [
    Column::left("NODE", 8),
    Column::left("HEALTH", 11),
    Column::left("STATE", 11),
    Column::right("CPU", 5),
    Column::right("MEM", 5),
    Column::right("RSS", 10),
    Column::right("DISK FREE", 10),
    Column::right("DAEMONS", 7),
    Column::left("CORDON", 6),
    Column::right("DRAIN", 7),
    Column::right("MAINT", 10),
    Column::right("AVOID", 5),
];

/// Daemons per node: (placed, not healthy).
pub(crate) fn daemon_counts(snapshot: &mesh::MeshSnapshot) -> HashMap<NodeId, (u64, u64)> {
    let mut counts: HashMap<NodeId, (u64, u64)> = HashMap::new();
    for d in &snapshot.daemons {
        let c = counts.entry(d.node).or_default();
        c.0 += 1;
        if d.health != DaemonHealth::Healthy {
            c.1 += 1;
        }
    }
    counts
}

pub(crate) fn cpu_cell(r: Option<&Resources>) -> Cell {
    match r.and_then(|r| r.cpu_load_milli) {
        Some(milli) => {
            let style = match milli {
                0..800 => Style::Normal,
                800..950 => Style::Warn,
                _ => Style::Err,
            };
            Cell::int(fmt::percent(f64::from(milli) / 1000.0), milli).styled(style)
        }
        None => Cell::missing(),
    }
}

pub(crate) fn mem_cell(r: Option<&Resources>) -> Cell {
    match r.and_then(|r| Some((r.mem_used?, r.mem_total?))) {
        Some((used, total)) if total > 0 => {
            let f = used as f64 / total as f64;
            let style = if f > 0.95 {
                Style::Err
            } else if f > 0.85 {
                Style::Warn
            } else {
                Style::Normal
            };
            Cell::float(fmt::percent(f), f).styled(style)
        }
        _ => Cell::missing(),
    }
}

fn opt_bytes(v: Option<u64>) -> Cell {
    v.map_or_else(Cell::missing, cells::bytes)
}

fn row(
    node: NodeId,
    deck: NodeId,
    health: &Health,
    admin: &AdminState,
    resources: Option<&Resources>,
    counts: (u64, u64),
    now: u64,
) -> Row {
    let daemons = if counts.1 > 0 {
        Cell::int(format!("{} ({} !)", counts.0, counts.1), counts.0).styled(Style::Warn)
    } else {
        cells::count(counts.0)
    };
    Row {
        id: RowId::Node(node),
        cells: vec![
            cells::node(node, deck),
            cells::health(health),
            admin_cell(admin, now),
            cpu_cell(resources),
            mem_cell(resources),
            opt_bytes(resources.and_then(|r| r.process_rss)),
            opt_bytes(resources.and_then(|r| r.disk_free)),
            daemons,
            if admin.cordoned {
                Cell::int("yes", 1).styled(Style::Warn)
            } else {
                Cell::int("no", 0).styled(Style::Dim)
            },
            cells::remaining(now, admin.draining_until_ms),
            cells::remaining(now, admin.maintenance_until_ms),
            if admin.avoid.is_empty() {
                Cell::int("0", 0).styled(Style::Dim)
            } else {
                cells::count(admin.avoid.len() as u64).styled(Style::Warn)
            },
        ],
    }
}

pub(crate) fn build(cx: &Ctx<'_>) -> Table {
    let snap = &cx.data.snapshot;
    let now = cx.now();
    let counts = daemon_counts(snap);
    let me = &snap.this_node;
    let deck = cx.data.deck_node;
    let mut rows = Vec::with_capacity(snap.peers.len() + 1);
    rows.push(row(
        me.node_id,
        deck,
        &Health::Healthy,
        &me.admin,
        Some(&me.resources),
        counts.get(&me.node_id).copied().unwrap_or_default(),
        now,
    ));
    for p in &snap.peers {
        let id = p.info.node_id;
        rows.push(row(
            id,
            deck,
            &p.info.health,
            &p.admin,
            p.resources.as_ref(),
            counts.get(&id).copied().unwrap_or_default(),
            now,
        ));
    }
    tabulate(COLUMNS.to_vec(), &rows, cx.table, cx.window)
}
