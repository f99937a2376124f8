//! Helpers shared by the deck's process-level tests.

pub(crate) mod meshd;
