//! Layering rules checked against the real dependency graph (`cargo tree`).
//!
//! A lower crate never depends on a higher one, and some crates must stay free of
//! whole families of dependencies (see ARCHITECTURE.md, "Invariants").

use std::process::Command;

fn normal_deps(package: &str) -> String {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned();
    let out = Command::new(cargo)
        .current_dir(root)
        .args(["tree", "--locked", "--offline", "-e", "normal", "--prefix", "none", "-p", package])
        .output()
        .expect("cargo tree runs");
    assert!(out.status.success(), "cargo tree failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn assert_free_of(package: &str, forbidden: &[&str]) {
    let tree = normal_deps(package);
    for line in tree.lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        assert!(!forbidden.contains(&name), "{package} must not depend on {name}:\n{tree}");
    }
}

#[test]
fn mesh_auth_has_no_runtime_or_network_or_ui_dependency() {
    assert_free_of("mesh-auth", &["tokio", "snow", "mesh", "mesh-rpc", "ratatui", "crossterm"]);
}

#[test]
fn mesh_knows_nothing_of_higher_layers_or_terminals() {
    assert_free_of("mesh", &["mesh-rpc", "mesh-blobs", "deck-model", "ratatui", "crossterm"]);
}

#[test]
fn mesh_rpc_knows_nothing_of_blobs_or_the_deck() {
    assert_free_of("mesh-rpc", &["mesh-blobs", "deck-model", "ratatui", "crossterm"]);
}

#[test]
fn deck_model_knows_nothing_about_terminals() {
    assert_free_of("deck-model", &["ratatui", "crossterm", "termion"]);
}

/// Every package of the workspace. Each may depend on `stdx` (no rule here
/// forbids it), and `stdx` on none of them.
const WORKSPACE_CRATES: &[&str] = &[
    "mesh-auth",
    "mesh",
    "mesh-rpc",
    "mesh-blobs",
    "deck-model",
    "mesh-demo",
    "deck-tui",
    "meshd",
    "xtask",
];

#[test]
fn stdx_is_the_floor() {
    let mut forbidden = WORKSPACE_CRATES.to_vec();
    forbidden.extend(["tokio", "snow", "ratatui", "crossterm", "serde"]);
    assert_free_of("stdx", &forbidden);
}
