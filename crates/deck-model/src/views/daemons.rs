//! DAEMONS: every daemon in the cluster, in lineage order (group by group, active
//! standby first, then warm ones, replicas, forks by parent sequence, solo).

use mesh::{DaemonView, Lifecycle};

use super::{Ctx, cells};
use crate::engine::{Lazy, tabulate};
use crate::fmt;
use crate::lineage::{self, Role};
use crate::table::{Cell, Column, Key, Row, RowId, Style, Table};
use crate::text;

pub(crate) const COLUMNS: [Column; 10] = [
    Column::left("NAME", 28),
    Column::left("ROLE", 8),
    Column::left("NODE", 8),
    Column::left("LIFECYCLE", 9),
    Column::left("HEALTH", 9),
    Column::right("SAT", 4),
    Column::right("RESTARTS", 8),
    Column::right("AGE", 7),
    Column::right("DROPPED", 7),
    Column::left("MIGRATE", 7),
];

pub(crate) fn role_cell(role: Role) -> Cell {
    let style = match role {
        Role::StandbyActive => Style::Accent,
        Role::StandbyWarm => Style::Dim,
        _ => Style::Normal,
    };
    let rank = match role {
        Role::StandbyActive => 0,
        Role::StandbyWarm => 1,
        Role::Replica => 2,
        Role::Fork { parent_seq } => 3 + i128::from(parent_seq),
        Role::Solo => i128::from(u64::MAX) + 4,
    };
    Cell::int(role.label(), rank).styled(style)
}

pub(crate) fn lifecycle_cell(d: &DaemonView) -> Cell {
    if d.node_health.is_unreachable() {
        return Cell::int("node lost", 9).styled(Style::Err);
    }
    let style = match d.lifecycle {
        Lifecycle::Running => Style::Ok,
        Lifecycle::Draining | Lifecycle::Migrating | Lifecycle::Stopping => Style::Warn,
        Lifecycle::Crashed => Style::Err,
    };
    Cell::int(d.lifecycle.label(), d.lifecycle as i64).styled(style)
}

pub(crate) fn saturation_cell(s: f32) -> Cell {
    let f = f64::from(s);
    let style = if f >= 0.9 {
        Style::Err
    } else if f >= 0.7 {
        Style::Warn
    } else {
        Style::Normal
    };
    Cell::float(fmt::percent(f), f).styled(style)
}

pub(crate) fn restarts_cell(d: &DaemonView) -> Cell {
    if d.crash_looping {
        Cell::int(format!("{} loop", d.restarts), d.restarts).styled(Style::Err)
    } else if d.restarts > 0 {
        cells::count(u64::from(d.restarts)).styled(Style::Warn)
    } else {
        cells::count(0).styled(Style::Dim)
    }
}

pub(crate) fn daemon_row(d: &DaemonView, role: Role, deck: mesh::NodeId) -> Row {
    Row {
        id: RowId::Daemon(d.id),
        cells: vec![
            Cell::new(text::name(&d.name)),
            role_cell(role),
            cells::node(d.node, deck),
            lifecycle_cell(d),
            cells::daemon_health(&d.health),
            saturation_cell(d.saturation),
            restarts_cell(d),
            Cell::int(fmt::age_ms(d.age_ms), d.age_ms),
            if d.log_dropped > 0 {
                cells::count(d.log_dropped).styled(Style::Warn)
            } else {
                cells::count(0).styled(Style::Dim)
            },
            if d.migratable { Cell::int("yes", 1) } else { Cell::int("no", 0).styled(Style::Dim) },
        ],
    }
}

/// The sort key of a daemon row, consistent with the cells of [`daemon_row`].
pub(crate) fn daemon_key<'b>(d: &'b DaemonView, role: Role, column: usize) -> Key<'b> {
    let cell_key = |c: Cell| match c.sort {
        crate::table::SortValue::Int(i) => Key::Int(i),
        crate::table::SortValue::Float(f) => Key::Float(f),
        crate::table::SortValue::Missing => Key::Missing,
        crate::table::SortValue::Text => Key::Missing,
    };
    match column {
        0 => Key::Text(&d.name),
        1 => cell_key(role_cell(role)),
        2 => Key::Int(i128::from(d.node.0)),
        3 => cell_key(lifecycle_cell(d)),
        4 => cell_key(cells::daemon_health(&d.health)),
        5 => Key::Float(f64::from(d.saturation)),
        6 => Key::Int(i128::from(d.restarts)),
        7 => Key::Int(i128::from(d.age_ms)),
        8 => Key::Int(i128::from(d.log_dropped)),
        9 => Key::Int(i128::from(d.migratable)),
        _ => Key::Missing,
    }
}

pub(crate) fn build(cx: &Ctx<'_>) -> Table {
    let snap = &cx.data.snapshot;
    let deck = cx.data.deck_node;
    let groups = lineage::groups(&snap.daemons);
    let items: Vec<(&DaemonView, Role)> = lineage::lineage_order(&groups)
        .into_iter()
        .map(|(i, role)| (&snap.daemons[i], role))
        .collect();
    let source = Lazy {
        items,
        id: &|(d, _)| RowId::Daemon(d.id),
        key: &|(d, role), column| daemon_key(d, *role, column),
        row: &|(d, role)| daemon_row(d, *role, deck),
    };
    tabulate(COLUMNS.to_vec(), &source, cx.table, cx.window)
}
