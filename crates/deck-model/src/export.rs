//! Export of the current view to a file, as JSON lines or CSV.
//!
//! Every row of the view is written (not only the visible window), filtered and
//! sorted as shown. The file is created new: an existing file is never
//! overwritten ([`DeckError::ExportExists`]), and an unwritable path is a clear
//! [`DeckError::Export`]. CSV cells that a spreadsheet would take for a formula
//! (starting with `=`, `+`, `-`, `@`) are prefixed with `'`. Cells are escaped
//! text already ([`crate::text::clean`]); JSON lines also escape any C1 or bidi
//! character as `\uXXXX` ([`crate::text::escape_json_text`]).

use std::fs::OpenOptions;
use std::io::{BufWriter, Write};
use std::path::Path;

use crate::data::DeckData;
use crate::error::DeckError;
use crate::state::{Tab, ViewState};
use crate::table::Table;
use crate::views;

/// File formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    /// One JSON object per row (`{"id": ..., "<COLUMN>": "<text>", ...}`).
    JsonLines,
    /// A header line, then one line per row (RFC 4180 quoting).
    Csv,
}

impl ExportFormat {
    /// By file extension: `.csv` is CSV, anything else JSON lines.
    pub fn for_path(path: &Path) -> ExportFormat {
        match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("csv") => ExportFormat::Csv,
            _ => ExportFormat::JsonLines,
        }
    }
}

fn csv_field(text: &str) -> String {
    let guarded = if text.starts_with(['=', '+', '-', '@']) && text != "-" {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    if guarded.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", guarded.replace('"', "\"\""))
    } else {
        guarded
    }
}

/// Writes `table` to a new file at `path`; returns the rows written.
pub fn export_table(table: &Table, path: &Path, format: ExportFormat) -> Result<usize, DeckError> {
    let err = |source: std::io::Error| {
        if source.kind() == std::io::ErrorKind::AlreadyExists {
            DeckError::ExportExists { path: path.to_owned() }
        } else {
            DeckError::Export { path: path.to_owned(), source }
        }
    };
    let file = OpenOptions::new().write(true).create_new(true).open(path).map_err(err)?;
    let mut out = BufWriter::new(file);
    match format {
        ExportFormat::Csv => {
            let header: Vec<String> = std::iter::once("ID".to_owned())
                .chain(table.columns.iter().map(|c| csv_field(c.name)))
                .collect();
            writeln!(out, "{}", header.join(",")).map_err(err)?;
            for row in &table.rows {
                let line: Vec<String> = std::iter::once(csv_field(&row.id.to_string()))
                    .chain(row.cells.iter().map(|c| csv_field(&c.text)))
                    .collect();
                writeln!(out, "{}", line.join(",")).map_err(err)?;
            }
        }
        ExportFormat::JsonLines => {
            for row in &table.rows {
                // Built by hand to keep the column order.
                let mut line = String::from("{\"id\":");
                line.push_str(&serde_json::Value::String(row.id.to_string()).to_string());
                for (column, cell) in table.columns.iter().zip(&row.cells) {
                    line.push(',');
                    line.push_str(&serde_json::Value::String(column.name.to_owned()).to_string());
                    line.push(':');
                    line.push_str(&serde_json::Value::String(cell.text.clone()).to_string());
                }
                line.push('}');
                let line = crate::text::escape_json_text(line);
                writeln!(out, "{line}").map_err(err)?;
            }
        }
    }
    out.flush().map_err(err)?;
    out.into_inner().map_err(|e| err(e.into_error()))?.sync_all().map_err(err)?;
    Ok(table.rows.len())
}

/// Exports every row of what the operator is looking at (the current tab, or the
/// open detail page) to a new file; the format follows the extension.
pub fn export_view(data: &DeckData, state: &ViewState, path: &Path) -> Result<usize, DeckError> {
    let view = views::build_current_full(data, state);
    export_table(&view.table, path, ExportFormat::for_path(path))
}

/// The file a front end exports `tab` to at `now_ms` (ms since the Unix
/// epoch): `deck-<tab>-<now_ms>.csv`, the tab's title in lower case without dots
/// (`deck-netmap-1800000000000.csv`).
pub fn file_name(tab: Tab, now_ms: u64) -> String {
    let tab = tab.title().to_ascii_lowercase().replace('.', "");
    format!("deck-{tab}-{now_ms}.csv")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_name_the_tab() {
        assert_eq!(file_name(Tab::NetMap, 7), "deck-netmap-7.csv");
        assert_eq!(ExportFormat::for_path(file_name(Tab::Logs, 1).as_ref()), ExportFormat::Csv);
    }

    #[test]
    fn csv_quoting_and_formula_guard() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=cmd()"), "'=cmd()");
        assert_eq!(csv_field("-"), "-");
        assert_eq!(ExportFormat::for_path(Path::new("x.CSV")), ExportFormat::Csv);
        assert_eq!(ExportFormat::for_path(Path::new("x.jsonl")), ExportFormat::JsonLines);
    }
}
