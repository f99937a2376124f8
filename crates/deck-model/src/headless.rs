//! The whole deck as one JSON document, for scripts and tests, and when a
//! headless run has seen enough of the cluster to print it ([`Readiness`]).
//!
//! Print it with [`to_json_text`]: besides what JSON escapes anyway, C1 control
//! characters and bidi formatting characters in any string (a node's error, a
//! rejection reason, a daemon name) are written as `\uXXXX` escapes, so a
//! terminal showing the document cannot be tricked by them.

use std::time::{Duration, Instant};

use mesh::NodeId;
use serde_json::{Value, json};

use crate::data::DeckData;
use crate::source::DeckSource;
use crate::state::{Tab, ViewState};
use crate::summary::summarize;
use crate::table::Table;
use crate::{text, views};

fn table_json(table: &Table) -> Value {
    json!({
        "columns": table.columns.iter().map(|c| c.name).collect::<Vec<_>>(),
        "rows": table.rows.iter().map(|r| {
            json!({
                "id": r.id.to_string(),
                "cells": r.cells.iter().map(|c| c.text.as_str()).collect::<Vec<_>>(),
                "styles": r.cells.iter().map(|c| c.style).collect::<Vec<_>>(),
            })
        }).collect::<Vec<_>>(),
        "total": table.total,
    })
}

/// Every tab (all rows, natural order), the summary and the recent admin results.
pub fn data_json(data: &DeckData) -> Value {
    let state = ViewState::new();
    let mut tabs = serde_json::Map::new();
    for tab in Tab::ALL {
        let view = views::build_full(data, &state, tab);
        let mut t = table_json(&view.table);
        if let Some(aside) = &view.aside {
            t["aside"] = json!({ "title": aside.title, "table": table_json(&aside.table) });
        }
        tabs.insert(tab.title().to_owned(), t);
    }
    json!({
        "taken_at_ms": data.now_ms,
        "snapshot_seq": data.snapshot.seq,
        "operator": data.operator.to_hex(),
        "deck_node": data.deck_node.to_hex(),
        "summary": summarize(data),
        "streams": data.streams.iter().map(|(n, s)| (n.to_hex(), s)).collect::<std::collections::BTreeMap<_, _>>(),
        "actions": data.actions,
        "tabs": tabs,
    })
}

/// The current state of `source` as one JSON document (see [`data_json`]).
pub fn snapshot_json(source: &dyn DeckSource) -> Value {
    data_json(&source.data())
}

/// `value` as pretty-printed JSON text, every C1 control and bidi formatting
/// character escaped (see [`text::escape_json_text`]); it parses back to `value`.
pub fn to_json_text(value: &Value) -> String {
    text::escape_json_text(format!("{value:#}"))
}

/// How long an attached headless run waits for the membership to stop changing.
pub const SETTLE: Duration = Duration::from_millis(2_500);

/// The same once the deck's node reports its member list complete (a
/// push-pull brought a peer's whole list: `MembershipStats::synced`): later
/// changes are live events, not the list still arriving.
pub const SETTLE_SYNCED: Duration = Duration::from_millis(500);

/// What a headless run waits for before printing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ready {
    /// This many nodes (this one included), and some logs and calls if more than one.
    Nodes(usize),
    /// Attached: every cluster node that is up read once, and the set of
    /// members that are up unchanged for [`SETTLE`] (the attach node's first
    /// push-pull brings the whole member list, dead and departed ones
    /// included, which are listed but not read).
    Settled,
}

/// Whether the data shows what a headless run waits for ([`Ready`]); it
/// remembers since when the membership has been the same.
#[derive(Clone, Debug)]
pub struct Readiness {
    want: Ready,
    members: Option<(Vec<NodeId>, Instant)>,
}

impl Readiness {
    /// Waiting for `want`.
    pub fn new(want: Ready) -> Readiness {
        Readiness { want, members: None }
    }

    /// True when `data`, seen at `now`, is ready to print.
    pub fn check(&mut self, data: &DeckData, now: Instant) -> bool {
        match self.want {
            Ready::Nodes(nodes) => {
                let all_peers = data.snapshot.peers.len() + 1 >= nodes;
                all_peers && (nodes <= 1 || (!data.logs.is_empty() && !data.calls.is_empty()))
            }
            Ready::Settled => {
                // Members that are up (suspect ones included: they are shown as
                // such); unreachable and departed ones are listed, not read.
                let snapshot = &data.snapshot;
                let members: Vec<NodeId> = snapshot
                    .cluster_nodes()
                    .filter(|n| snapshot.peer(*n).is_none_or(|p| !p.info.health.is_unreachable()))
                    .collect();
                let read = members
                    .iter()
                    .all(|n| data.streams.get(n).is_some_and(|s| s.last_ok_ms.is_some()));
                let since = match &self.members {
                    Some((m, since)) if *m == members => *since,
                    _ => {
                        self.members = Some((members.clone(), now));
                        now
                    }
                };
                let settle =
                    if snapshot.counters.membership.synced { SETTLE_SYNCED } else { SETTLE };
                !members.is_empty() && read && now.saturating_duration_since(since) >= settle
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::NodeStreams;
    use crate::testkit;

    #[test]
    fn one_node_is_ready_at_once_and_more_need_logs_and_calls() {
        let now = Instant::now();
        let data = testkit::data(testkit::snapshot(3, Vec::new()), &Default::default());
        assert!(Readiness::new(Ready::Nodes(1)).check(&data, now));
        assert!(!Readiness::new(Ready::Nodes(4)).check(&data, now), "a node is missing");
        assert!(!Readiness::new(Ready::Nodes(3)).check(&data, now), "no logs or calls yet");
        let big = testkit::big(3, 6, 20, 0);
        assert!(Readiness::new(Ready::Nodes(3)).check(&big, now));
    }

    #[test]
    fn attached_runs_wait_until_every_member_is_read_and_the_set_settles() {
        let start = Instant::now();
        let mut data = testkit::data(testkit::snapshot(3, Vec::new()), &Default::default());
        let mut ready = Readiness::new(Ready::Settled);
        assert!(!ready.check(&data, start + SETTLE), "nothing read yet");
        let nodes: Vec<NodeId> = data.snapshot.cluster_nodes().collect();
        for n in &nodes {
            data.streams.insert(*n, NodeStreams { last_ok_ms: Some(1), ..Default::default() });
        }
        assert!(!ready.check(&data, start + SETTLE), "the set was first seen whole just now");
        assert!(ready.check(&data, start + SETTLE * 2), "unchanged for SETTLE");
        // A member that leaves starts the wait again.
        data.snapshot = std::sync::Arc::new(testkit::snapshot(2, Vec::new()));
        assert!(!ready.check(&data, start + SETTLE * 2));
        assert!(ready.check(&data, start + SETTLE * 3));
    }

    #[test]
    fn a_complete_member_list_shortens_the_settle() {
        let start = Instant::now();
        let mut snapshot = testkit::snapshot(3, Vec::new());
        snapshot.counters.membership.synced = true;
        let mut data = testkit::data(snapshot, &Default::default());
        let nodes: Vec<NodeId> = data.snapshot.cluster_nodes().collect();
        for n in &nodes {
            data.streams.insert(*n, NodeStreams { last_ok_ms: Some(1), ..Default::default() });
        }
        let mut ready = Readiness::new(Ready::Settled);
        assert!(!ready.check(&data, start));
        assert!(!ready.check(&data, start + SETTLE_SYNCED / 2));
        assert!(ready.check(&data, start + SETTLE_SYNCED), "synced: {SETTLE_SYNCED:?} is enough");
    }
}
