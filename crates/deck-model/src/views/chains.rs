//! CHAINS: each lineage group as a chain of members and the nodes holding them
//! (fork parent sequence, the active standby a warm one backs).

use super::daemons::{lifecycle_cell, role_cell};
use super::{Ctx, cells};
use crate::engine::{Lazy, tabulate};
use crate::lineage::{self, Group, Role};
use crate::table::{Cell, Column, Key, Row, RowId, SortValue, Style, Table, name_hash};
use crate::text;

pub(crate) const COLUMNS: [Column; 8] = [
    Column::left("TREE", 4),
    Column::left("CHAIN", 32),
    Column::left("ROLE", 8),
    Column::left("DAEMON", 16),
    Column::left("HOLDER", 8),
    Column::left("PARENT", 16),
    Column::left("LIFECYCLE", 9),
    Column::left("HEALTH", 9),
];

#[derive(Clone, Copy)]
enum Entry<'a> {
    Head(&'a Group),
    Member(&'a Group, usize),
}

/// The tree glyph of member `i`.
fn branch(g: &Group, i: usize) -> &'static str {
    if i + 1 == g.members.len() { "└─" } else { "├─" }
}

fn int_of(c: Cell) -> Key<'static> {
    match c.sort {
        SortValue::Int(i) => Key::Int(i),
        _ => Key::Missing,
    }
}

pub(crate) fn build(cx: &Ctx<'_>) -> Table {
    let snap = &cx.data.snapshot;
    let deck = cx.data.deck_node;
    let groups = lineage::groups(&snap.daemons);
    let mut items = Vec::with_capacity(groups.len() + snap.daemons.len());
    for g in &groups {
        items.push(Entry::Head(g));
        items.extend((0..g.members.len()).map(|i| Entry::Member(g, i)));
    }
    let source = Lazy {
        items,
        id: &|e| match e {
            Entry::Head(g) => RowId::Group(name_hash(&[&g.name])),
            Entry::Member(g, i) => RowId::Daemon(g.members[*i].daemon),
        },
        key: &|e, column| match *e {
            Entry::Head(g) => match column {
                0 => Key::Text(""),
                1 => Key::Text(&g.name),
                2 => Key::Text(g.kind.label()),
                3 => Key::Int(g.members.len() as i128),
                4 => Key::Int(g.nodes() as i128),
                _ => Key::Missing,
            },
            Entry::Member(g, i) => {
                let m = &g.members[i];
                let d = &snap.daemons[m.index];
                match column {
                    0 => Key::Text(branch(g, i)),
                    1 => Key::Text(&d.name),
                    2 => int_of(role_cell(m.role)),
                    3 => Key::Int(i128::from(d.id.0)),
                    4 => Key::Int(i128::from(d.node.0)),
                    5 => match m.role {
                        Role::Fork { parent_seq } => Key::Int(i128::from(parent_seq)),
                        Role::StandbyWarm => {
                            g.active().map_or(Key::Missing, |a| Key::Int(i128::from(a.daemon.0)))
                        }
                        _ => Key::Missing,
                    },
                    6 => int_of(lifecycle_cell(d)),
                    7 => int_of(cells::daemon_health(&d.health)),
                    _ => Key::Missing,
                }
            }
        },
        row: &|e| match *e {
            Entry::Head(g) => Row {
                id: RowId::Group(name_hash(&[&g.name])),
                cells: vec![
                    Cell::new(""),
                    Cell::new(text::name(&g.name)).styled(Style::Accent),
                    Cell::new(g.kind.label()).styled(Style::Dim),
                    Cell::int(format!("{} members", g.members.len()), g.members.len() as i64)
                        .styled(Style::Dim),
                    Cell::int(format!("{} nodes", g.nodes()), g.nodes() as i64).styled(Style::Dim),
                    Cell::missing(),
                    Cell::missing(),
                    Cell::missing(),
                ],
            },
            Entry::Member(g, i) => {
                let m = &g.members[i];
                let d = &snap.daemons[m.index];
                let parent = match m.role {
                    Role::Fork { parent_seq } => Cell::int(format!("seq {parent_seq}"), parent_seq),
                    Role::StandbyWarm => match g.active() {
                        Some(a) => Cell::int(format!("backs {}", a.daemon.short()), a.daemon.0)
                            .styled(Style::Dim),
                        None => Cell::missing(),
                    },
                    _ => Cell::missing(),
                };
                Row {
                    id: RowId::Daemon(d.id),
                    cells: vec![
                        Cell::new(branch(g, i)).styled(Style::Dim),
                        Cell::new(text::name(&d.name)),
                        role_cell(m.role),
                        Cell::int(d.id.short(), d.id.0),
                        cells::node(d.node, deck),
                        parent,
                        lifecycle_cell(d),
                        cells::daemon_health(&d.health),
                    ],
                }
            }
        },
    };
    tabulate(COLUMNS.to_vec(), &source, cx.table, cx.window)
}
