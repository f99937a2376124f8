//! The whole deck as one JSON document, for scripts and tests.
//!
//! Print it with [`to_json_text`]: besides what JSON escapes anyway, C1 control
//! characters and bidi formatting characters in any string (a node's error, a
//! rejection reason, a daemon name) are written as `\uXXXX` escapes, so a
//! terminal showing the document cannot be tricked by them.

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
