#![doc = include_str!("../README.md")]
//! The operator deck's model: everything the terminal deck shows and does, as plain
//! data and pure functions, with no terminal code.
//!
//! - [`DeckClient`] (behind the [`DeckSource`] trait) reads a cluster through one
//!   node: its snapshot, and on [`DeckSource::refresh`] new pages of every node's
//!   logs, failures and audit ledger, the RPC calls its observer saw, and the
//!   inventories of the blob adapters it was given, into bounded merged tails
//!   ([`DeckData`]).
//! - [`Admin`] prepares every admin command with its blast radius
//!   ([`PendingAction`]); on confirmation it is signed (co-signed for thresholds
//!   above 1, ICE envelopes carrying the blast-radius digest), sent to every
//!   target node and each node's outcome reported ([`CommitReport`]).
//! - [`views::build`] computes the visible [`View`] of a tab or detail page from
//!   the data and the [`ViewState`]; every tab is a [`Table`] of styled cells.
//! - [`update`] applies a [`Msg`] to the view state (selection by row id, scroll,
//!   follow, sort, search, level filter, pause); [`ViewState::observe`] records
//!   what a built view shows.
//! - [`summarize`] gives the status bar, [`export`] writes a view to a file,
//!   [`headless::snapshot_json`] the whole state as JSON.
//!
//! A terminal front end loops: key -> [`Msg`] -> [`update`]; on a tick or a change,
//! [`DeckSource::refresh`]; then `let view = views::build(&deck.data(), &state);
//! state.observe(&view);` and draw `view`.
//!
//! Text from the cluster (names, log lines, reasons) is escaped and capped before
//! it reaches a cell ([`text`]).

mod admin;
mod blobs;
mod calls;
mod client;
mod config;
mod data;
mod engine;
mod error;
pub mod export;
pub mod fmt;
pub mod headless;
pub mod lineage;
mod memo;
mod pending;
mod report;
mod source;
mod state;
mod summary;
pub mod table;
mod tail;
pub mod testkit;
pub mod text;
pub mod views;

pub use admin::{Admin, AdminVerb, MAX_DURATION, PromptSpec, Target, TargetKind, parse_duration};
pub use blobs::{BlobSource, StoreSource};
pub use calls::CallTail;
pub use client::DeckClient;
pub use config::{
    DEFAULT_ACTION_TAIL, DEFAULT_AUDIT_TAIL, DEFAULT_CALL_TAIL, DEFAULT_FAILURE_TAIL,
    DEFAULT_LOG_TAIL, DeckConfig,
};
pub use data::{
    AuditItem, BlobEntry, CallEntry, CallSide, ChainMark, ChainStatus, DeckData, FortStats,
    NodeStreams,
};
pub use error::DeckError;
pub use export::{ExportFormat, export_table, export_view};
pub use pending::PendingAction;
pub use report::{CommitReport, NodeOutcome, NodeResult};
pub use source::{BoxFuture, DataRef, DeckSource, REFRESH_INTERVAL, RefreshReport};
pub use state::{Detail, Msg, Tab, TableState, ViewState, Watermarks, update};
pub use summary::{Summary, summarize};
pub use table::{Align, Cell, Column, Row, RowId, SortDir, SortSpec, SortValue, Style, Table};
pub use tail::Tail;
pub use views::{Aside, View};
