//! NRPC: the tail of RPC calls seen by the deck's observers, and per-service
//! figures over that tail (rate over the rate window, error rate, p50 and p99).
//!
//! A call observed on both of its ends appears twice in the tail (client and
//! server records). Per-service figures count the client records of a service,
//! or its server records when no caller side was observed.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{Aside, Ctx, cells};
use crate::data::{CallEntry, CallSide, DeckData};
use crate::engine::{Lazy, Window, tabulate};
use crate::fmt;
use crate::state::TableState;
use crate::table::{Cell, Column, Key, Row, RowId, Style, Table, name_hash};
use crate::text;

pub(crate) const COLUMNS: [Column; 9] = [
    Column::left("TIME", 12),
    Column::left("SIDE", 6),
    Column::left("CALLER", 8),
    Column::left("CALLEE", 8),
    Column::left("SERVICE", 20),
    Column::left("STATUS", 12),
    Column::right("LATENCY", 9),
    Column::right("REQ", 9),
    Column::right("RESP", 9),
];

pub(crate) const SERVICE_COLUMNS: [Column; 8] = [
    Column::left("SERVICE", 20),
    Column::left("SIDE", 6),
    Column::right("CALLS", 6),
    Column::right("RATE/S", 7),
    Column::right("ERRORS", 6),
    Column::right("ERR%", 5),
    Column::right("P50", 9),
    Column::right("P99", 9),
];

/// One service's figures over the call tail.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ServiceFigures {
    pub(crate) service: Arc<str>,
    pub(crate) side: CallSide,
    pub(crate) calls: u64,
    pub(crate) errors: u64,
    pub(crate) recent_calls: u64,
    pub(crate) recent_errors: u64,
    pub(crate) rate: f64,
    pub(crate) p50_us: Option<u64>,
    pub(crate) p99_us: Option<u64>,
}

fn quantile(sorted: &[u64], q: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

/// Per-service figures over the calls before `cut`.
pub(crate) fn service_figures(data: &DeckData, cut: u64) -> Vec<ServiceFigures> {
    let window = data.rate_window_ms;
    let since = data.now_ms.saturating_sub(window);
    let has_client: std::collections::HashSet<&str> = data
        .calls
        .iter()
        .filter(|(s, c)| *s < cut && c.side == CallSide::Client)
        .map(|(_, c)| &*c.service)
        .collect();
    let mut by: BTreeMap<&str, (ServiceFigures, Vec<u64>)> = BTreeMap::new();
    for (_, c) in data.calls.iter().filter(|(s, _)| *s < cut) {
        let wanted =
            if has_client.contains(&*c.service) { CallSide::Client } else { CallSide::Server };
        if c.side != wanted {
            continue;
        }
        let (f, latencies) = by.entry(&c.service).or_insert_with(|| {
            (
                ServiceFigures {
                    service: c.service.clone(),
                    side: wanted,
                    calls: 0,
                    errors: 0,
                    recent_calls: 0,
                    recent_errors: 0,
                    rate: 0.0,
                    p50_us: None,
                    p99_us: None,
                },
                Vec::new(),
            )
        });
        f.calls += 1;
        f.errors += u64::from(!c.ok);
        if c.ts_ms >= since {
            f.recent_calls += 1;
            f.recent_errors += u64::from(!c.ok);
        }
        if c.ok {
            latencies.push(c.latency_us);
        }
    }
    by.into_values()
        .map(|(mut f, mut latencies)| {
            latencies.sort_unstable();
            f.p50_us = quantile(&latencies, 0.5);
            f.p99_us = quantile(&latencies, 0.99);
            f.rate = f.recent_calls as f64 * 1000.0 / window as f64;
            f
        })
        .collect()
}

/// Calls per second and failed calls in the rate window, summed over services
/// the way [`service_figures`] counts them (a service's client side when it has
/// one, its server side otherwise), without the per-service quantiles: the
/// status bar needs only these and computes them every frame.
pub(crate) fn call_rates(data: &DeckData) -> (f64, u64) {
    let since = data.now_ms.saturating_sub(data.rate_window_ms);
    /// Recent (calls, errors) of one side.
    type Recent = (u64, u64);
    // service -> (has a client record, recent client side, recent server side)
    let mut by: std::collections::HashMap<&str, (bool, Recent, Recent)> =
        std::collections::HashMap::new();
    for (_, c) in data.calls.iter() {
        let e = by.entry(&c.service).or_default();
        let client = c.side == CallSide::Client;
        e.0 |= client;
        if c.ts_ms >= since {
            let side = if client { &mut e.1 } else { &mut e.2 };
            side.0 += 1;
            side.1 += u64::from(!c.ok);
        }
    }
    let (mut calls, mut errors) = (0u64, 0u64);
    for (has_client, client, server) in by.into_values() {
        let (c, e) = if has_client { client } else { server };
        calls += c;
        errors += e;
    }
    (calls as f64 * 1000.0 / data.rate_window_ms.max(1) as f64, errors)
}

fn call_row(seq: u64, c: &CallEntry, deck: mesh::NodeId) -> Row {
    Row {
        id: RowId::Call(seq),
        cells: vec![
            cells::time(c.ts_ms),
            match c.side {
                CallSide::Client => Cell::int("client", 0),
                CallSide::Server => Cell::int("server", 1).styled(Style::Dim),
            },
            cells::node(c.caller, deck),
            cells::node(c.callee, deck),
            Cell::new(text::name(&c.service)),
            Cell::new(c.status).styled(if c.ok { Style::Ok } else { Style::Err }),
            Cell::int(fmt::latency_us(c.latency_us), c.latency_us),
            cells::bytes(c.request_bytes),
            cells::bytes(c.response_bytes),
        ],
    }
}

fn service_row(f: &ServiceFigures) -> Row {
    let err_rate = if f.calls == 0 { 0.0 } else { f.errors as f64 / f.calls as f64 };
    let us = |v: Option<u64>| match v {
        Some(us) => Cell::int(fmt::latency_us(us), us),
        None => Cell::missing(),
    };
    Row {
        id: RowId::Service(name_hash(&[&f.service])),
        cells: vec![
            Cell::new(text::name(&f.service)),
            Cell::new(match f.side {
                CallSide::Client => "client",
                CallSide::Server => "server",
            })
            .styled(Style::Dim),
            cells::count(f.calls),
            Cell::float(format!("{:.1}", f.rate), f.rate),
            cells::count(f.errors).styled(if f.errors > 0 { Style::Err } else { Style::Dim }),
            Cell::float(fmt::percent(err_rate), err_rate).styled(if err_rate > 0.05 {
                Style::Err
            } else if err_rate > 0.0 {
                Style::Warn
            } else {
                Style::Dim
            }),
            us(f.p50_us),
            us(f.p99_us),
        ],
    }
}

pub(crate) fn build(cx: &Ctx<'_>) -> (Table, Option<Aside>) {
    let deck = cx.data.deck_node;
    let cut = cx.cut.calls;
    let items: Vec<(u64, &CallEntry)> = cx.data.calls.iter().filter(|(s, _)| *s < cut).collect();
    let shown = items.len();
    let source = Lazy {
        items,
        id: &|(s, _)| RowId::Call(*s),
        key: &|(_, c), column| match column {
            0 => Key::Int(i128::from(c.ts_ms)),
            1 => Key::Int(i128::from(c.side == CallSide::Server)),
            2 => Key::Int(i128::from(c.caller.0)),
            3 => Key::Int(i128::from(c.callee.0)),
            4 => Key::Text(&c.service),
            5 => Key::Text(c.status),
            6 => Key::Int(i128::from(c.latency_us)),
            7 => Key::Int(i128::from(c.request_bytes)),
            8 => Key::Int(i128::from(c.response_bytes)),
            _ => Key::Missing,
        },
        row: &|(s, c)| call_row(*s, c, deck),
    };
    let table = tabulate(COLUMNS.to_vec(), &source, cx.table, cx.window);
    let services: Vec<Row> = service_figures(cx.data, cut).iter().map(service_row).collect();
    let aside = Aside {
        title: format!("SERVICES over the last {shown} calls"),
        table: tabulate(SERVICE_COLUMNS.to_vec(), &services, &TableState::default(), Window::All),
    };
    (table, Some(aside))
}

#[cfg(test)]
mod rate_tests {
    use super::*;

    #[test]
    fn the_status_bar_rates_equal_the_per_service_sums() {
        for (nodes, daemons, blobs) in [(1, 0, 0), (6, 24, 40), (30, 200, 1024)] {
            let data = crate::testkit::big(nodes, daemons, 50, blobs);
            let figures = service_figures(&data, u64::MAX);
            let rate: f64 = figures.iter().map(|f| f.rate).sum();
            let errors: u64 = figures.iter().map(|f| f.recent_errors).sum();
            let (fast_rate, fast_errors) = call_rates(&data);
            assert!((rate - fast_rate).abs() < 1e-9, "{rate} vs {fast_rate}");
            assert_eq!(errors, fast_errors);
        }
    }
}
