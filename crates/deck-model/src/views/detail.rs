//! Detail pages: one node, one daemon. A field/value table, and an aside with the
//! node's daemons or the daemon's latest log lines.

use mesh::{Health, NodeId, OriginHash};

use super::daemons::{daemon_row, lifecycle_cell, restarts_cell, role_cell, saturation_cell};
use super::logs::log_row;
use super::netmap::admin_cell;
use super::nodes::{cpu_cell, mem_cell};
use super::{Aside, View, cells};
use crate::data::{ChainStatus, DeckData};
use crate::engine::{Window, tabulate};
use crate::fmt;
use crate::lineage::{self, Role};
use crate::state::{Detail, TableState, ViewState};
use crate::table::{Cell, Column, Row, RowId, Style};
use crate::text;

const COLUMNS: [Column; 2] = [Column::left("FIELD", 18), Column::left("VALUE", 60)];
/// Log lines shown on a daemon's page.
const DAEMON_LOG_LINES: usize = 50;

struct Fields(Vec<Row>);

impl Fields {
    fn add(&mut self, name: &str, value: Cell) {
        let id = RowId::Field(self.0.len() as u32);
        self.0.push(Row { id, cells: vec![Cell::new(name).styled(Style::Dim), value] });
    }

    fn text(&mut self, name: &str, value: impl Into<String>) {
        self.add(name, Cell::new(value));
    }
}

pub(crate) fn build(
    data: &DeckData,
    state: &ViewState,
    detail: Detail,
    window: Window,
) -> Option<View> {
    let (title, fields, aside) = match detail {
        Detail::Node(node) => node_page(data, node)?,
        Detail::Daemon(daemon) => daemon_page(data, daemon)?,
    };
    let table = tabulate(COLUMNS.to_vec(), &fields.0, &state.detail_table, window);
    Some(View {
        tab: state.tab,
        detail: Some(detail),
        title,
        table,
        aside: Some(aside),
        notice: None,
        marks: data.marks(),
    })
}

fn node_page(data: &DeckData, node: NodeId) -> Option<(String, Fields, Aside)> {
    let snap = &data.snapshot;
    let now = data.now_ms;
    let mut f = Fields(Vec::new());
    let (addr, health, admin, resources, version) = if node == snap.this_node.node_id {
        let me = &snap.this_node;
        (me.addr, Health::Healthy, &me.admin, Some(&me.resources), &me.version)
    } else {
        let p = snap.peer(node)?;
        (p.info.addr, p.info.health.clone(), &p.admin, p.resources.as_ref(), &p.info.version)
    };
    f.text("id", node.to_hex());
    f.text("address", addr.to_string());
    f.add(
        "role",
        if node == snap.this_node.node_id {
            Cell::new("this node (the deck reads through it)").styled(Style::Accent)
        } else {
            Cell::new("peer")
        },
    );
    f.add("health", cells::health(&health));
    if let Some(reason) = health.reason() {
        f.add("health reason", Cell::untrusted(reason, text::MAX_MESSAGE).styled(Style::Warn));
    }
    if let Some(p) = snap.peer(node) {
        let i = &p.info;
        let lat = |d: Option<std::time::Duration>| d.map_or_else(|| "-".into(), fmt::latency);
        f.text("rtt (ewma)", lat(i.rtt));
        f.text("rtt (recent max)", lat(i.rtt_max_recent));
        f.text(
            "last heard",
            fmt::age_ms(i.last_heard.as_millis().min(u128::from(u64::MAX)) as u64),
        );
        f.text("sessions", i.sessions.to_string());
        f.text(
            "connected for",
            fmt::age_ms(i.connected_for.as_millis().min(u128::from(u64::MAX)) as u64),
        );
    }
    f.add("version", Cell::untrusted(version, 32));
    f.add("admin state", admin_cell(admin, now));
    f.add("cordoned", Cell::new(if admin.cordoned { "yes" } else { "no" }));
    f.add("draining for", cells::remaining(now, admin.draining_until_ms));
    f.add("maintenance for", cells::remaining(now, admin.maintenance_until_ms));
    f.add("frozen for", cells::remaining(now, admin.frozen_until_ms));
    f.text(
        "avoid list",
        if admin.avoid.is_empty() {
            "-".to_owned()
        } else {
            admin.avoid.iter().map(|n| n.short()).collect::<Vec<_>>().join(" ")
        },
    );
    f.add("cpu load", cpu_cell(resources));
    f.add("memory", mem_cell(resources));
    if let Some(r) = resources {
        f.text("cpus", r.cpus.to_string());
        f.text("process rss", r.process_rss.map_or_else(|| "-".into(), fmt::bytes));
        f.text(
            "disk free",
            match (r.disk_free, r.disk_total) {
                (Some(free), Some(total)) => {
                    format!("{} of {}", fmt::bytes(free), fmt::bytes(total))
                }
                (Some(free), None) => fmt::bytes(free),
                _ => "-".into(),
            },
        );
    }
    if let Some(s) = data.streams.get(&node) {
        f.text("log lines read", s.logs_next.to_string());
        f.text("failures read", s.failures_next.to_string());
        f.add(
            "audit chain",
            match &s.chain {
                ChainStatus::Unread => Cell::new("not read yet").styled(Style::Dim),
                ChainStatus::Verified { entries } => {
                    Cell::new(format!("verified ({entries} entries)")).styled(Style::Ok)
                }
                ChainStatus::Broken { seq, problem } => {
                    Cell::new(format!("BROKEN at {seq}: {problem}")).styled(Style::Err)
                }
            },
        );
        if s.missed > 0 {
            f.add("missed", cells::count(s.missed).styled(Style::Warn));
        }
        if s.restarts > 0 {
            f.add("streams restarted", cells::count(u64::from(s.restarts)).styled(Style::Warn));
        }
        if let Some(e) = &s.last_error {
            f.add("read error", Cell::untrusted(e, text::MAX_MESSAGE).styled(Style::Err));
        }
    }
    let groups = lineage::groups(&snap.daemons);
    let daemons: Vec<Row> = lineage::lineage_order(&groups)
        .into_iter()
        .filter(|(i, _)| snap.daemons[*i].node == node)
        .map(|(i, role)| daemon_row(&snap.daemons[i], role, data.deck_node))
        .collect();
    let aside = Aside {
        title: format!("DAEMONS on {} ({})", node.short(), daemons.len()),
        table: tabulate(
            super::daemons::COLUMNS.to_vec(),
            &daemons,
            &TableState::default(),
            Window::All,
        ),
    };
    Some((format!("NODE {node}"), f, aside))
}

fn daemon_page(data: &DeckData, daemon: OriginHash) -> Option<(String, Fields, Aside)> {
    let snap = &data.snapshot;
    let now = data.now_ms;
    let d = snap.daemon(daemon)?;
    let groups = lineage::groups(&snap.daemons);
    let role = groups
        .iter()
        .flat_map(|g| g.members.iter())
        .find(|m| m.daemon == daemon)
        .map_or(Role::Solo, |m| m.role);
    let mut f = Fields(Vec::new());
    f.text("id", daemon.to_hex());
    f.add("name", Cell::untrusted(&d.name, text::MAX_NAME));
    f.add("group", Cell::untrusted(&d.group, text::MAX_NAME));
    f.add("role", role_cell(role));
    f.add("node", cells::node(d.node, data.deck_node));
    f.add("node health", cells::health(&d.node_health));
    f.add("lifecycle", lifecycle_cell(d));
    f.add("health", cells::daemon_health(&d.health));
    if let Some(reason) = d.health.reason() {
        f.add("health reason", Cell::untrusted(reason, text::MAX_MESSAGE).styled(Style::Warn));
    }
    f.add("saturation", saturation_cell(d.saturation));
    f.add("restarts", restarts_cell(d));
    f.text("started", format!("{} ({} ago)", fmt::clock(d.started_at_ms), fmt::age_ms(d.age_ms)));
    f.add(
        "log lines dropped",
        cells::count(d.log_dropped).styled(if d.log_dropped > 0 {
            Style::Warn
        } else {
            Style::Dim
        }),
    );
    f.text("migratable", if d.migratable { "yes" } else { "no" });
    for m in snap.migrations.iter().filter(|m| m.daemon == daemon) {
        f.text(
            "migration",
            format!(
                "{} {} -> {} {} ({} moved, {} ago)",
                m.id,
                m.source.short(),
                m.target.short(),
                m.phase.label(),
                fmt::bytes(m.bytes_moved),
                fmt::age_ms(now.saturating_sub(m.started_at_ms))
            ),
        );
    }
    let mut lines: Vec<Row> = data
        .logs
        .iter()
        .rev()
        .filter(|(_, e)| e.daemon == Some(daemon))
        .take(DAEMON_LOG_LINES)
        .map(|(seq, e)| log_row(seq, e, snap, data.deck_node))
        .collect();
    lines.reverse();
    let aside = Aside {
        title: format!("LATEST LOG LINES ({})", lines.len()),
        table: tabulate(super::logs::COLUMNS.to_vec(), &lines, &TableState::default(), Window::All),
    };
    Some((format!("DAEMON {}", text::name(&d.name)), f, aside))
}
