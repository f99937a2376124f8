//! GROUPS: lineage groups with their members, health, placement and roles.

use mesh::DaemonHealth;

use super::{Ctx, cells};
use crate::engine::tabulate;
use crate::lineage::{self, GroupKind, Role};
use crate::table::{Cell, Column, Row, RowId, Style, Table, name_hash};
use crate::text;

pub(crate) const COLUMNS: [Column; 8] = [
    Column::left("GROUP", 24),
    Column::left("KIND", 7),
    Column::right("MEMBERS", 7),
    Column::right("HEALTHY", 7),
    Column::right("NODES", 5),
    Column::left("ACTIVE", 16),
    Column::left("FORK@", 10),
    Column::left("ROLES", 24),
];

pub(crate) fn build(cx: &Ctx<'_>) -> Table {
    let snap = &cx.data.snapshot;
    let deck = cx.data.deck_node;
    let rows: Vec<Row> = lineage::groups(&snap.daemons)
        .iter()
        .map(|g| {
            let members = g.members.len() as u64;
            let healthy = g
                .members
                .iter()
                .filter(|m| {
                    let d = &snap.daemons[m.index];
                    d.health == DaemonHealth::Healthy && !d.node_health.is_unreachable()
                })
                .count() as u64;
            let healthy_cell = cells::count(healthy).styled(if healthy == members {
                Style::Ok
            } else if healthy == 0 {
                Style::Err
            } else {
                Style::Warn
            });
            let active = match g.active() {
                Some(m) => Cell::new(format!("{} @{}", m.daemon.short(), m.node.short()))
                    .styled(if m.node == deck { Style::Accent } else { Style::Normal }),
                None if g.kind == GroupKind::Standby => Cell::new("none").styled(Style::Err),
                None => Cell::missing(),
            };
            let mut forks: Vec<u64> = g
                .members
                .iter()
                .filter_map(|m| match m.role {
                    Role::Fork { parent_seq } => Some(parent_seq),
                    _ => None,
                })
                .collect();
            forks.sort_unstable();
            forks.dedup();
            let fork_cell = match forks.first() {
                Some(first) => Cell::int(
                    forks.iter().map(u64::to_string).collect::<Vec<_>>().join(","),
                    *first,
                ),
                None => Cell::missing(),
            };
            let mut roles: Vec<(&str, usize)> = Vec::new();
            for m in &g.members {
                let label = match m.role {
                    Role::StandbyActive => "active",
                    Role::StandbyWarm => "warm",
                    Role::Replica => "replica",
                    Role::Fork { .. } => "fork",
                    Role::Solo => "solo",
                };
                match roles.iter_mut().find(|(l, _)| *l == label) {
                    Some((_, n)) => *n += 1,
                    None => roles.push((label, 1)),
                }
            }
            let roles =
                roles.iter().map(|(l, n)| format!("{n} {l}")).collect::<Vec<_>>().join(", ");
            Row {
                id: RowId::Group(name_hash(&[&g.name])),
                cells: vec![
                    Cell::new(text::name(&g.name)),
                    Cell::new(g.kind.label()),
                    cells::count(members),
                    healthy_cell,
                    cells::count(g.nodes() as u64),
                    active,
                    fork_cell,
                    Cell::new(roles),
                ],
            }
        })
        .collect();
    tabulate(COLUMNS.to_vec(), &rows, cx.table, cx.window)
}
