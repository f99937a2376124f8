//! `cargo xtask demo`: boots the 9-node demo cluster and opens the deck.

use anyhow::{Result, bail};

pub(crate) fn run(_args: &[String]) -> Result<()> {
    bail!(
        "the demo is not built yet: the mesh substrate, deck model and deck TUI are still \
         in progress (see ARCHITECTURE.md for what exists today)"
    )
}
