//! `cargo xtask ci`: what CI runs, in the order that fails fastest.

use anyhow::Result;

use crate::util::{cargo, run as sh};

pub(crate) fn run(_args: &[String]) -> Result<()> {
    sh(cargo().args(["fmt", "--all", "--", "--check"]))?;
    sh(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--locked",
        "--",
        "-D",
        "warnings",
    ]))?;
    // nextest when installed (faster, per-test timeouts), plain cargo test otherwise.
    if has_subcommand("nextest") {
        sh(cargo().args(["nextest", "run", "--workspace", "--locked", "--no-fail-fast"]))?;
        // nextest does not run doc tests.
        sh(cargo().args(["test", "--workspace", "--locked", "--doc"]))?;
    } else {
        sh(cargo().args(["test", "--workspace", "--locked", "--no-fail-fast"]))?;
    }
    // The deck as a user runs it (about 3 s once built); needs tmux.
    let tmux = std::process::Command::new("tmux").arg("-V").output();
    if tmux.is_ok_and(|o| o.status.success()) {
        crate::e2e::run(&[])?;
    } else {
        eprintln!("xtask ci: tmux not installed; skipping `cargo xtask e2e`");
    }
    // Dependency policy (deny.toml). On a developer's machine with only the Rust
    // toolchain it is skipped with a notice; under CI (`CI` set to anything but
    // `false`/`0`) a missing cargo-deny fails the run: `.ci/run` installs it.
    if has_subcommand("deny") {
        sh(cargo().args(["deny", "check", "bans", "licenses", "sources"]))?;
    } else if std::env::var("CI").is_ok_and(|v| !matches!(v.as_str(), "" | "0" | "false")) {
        anyhow::bail!(
            "cargo-deny is not installed, and CI is set: the dependency policy in deny.toml \
             must be checked (`cargo install cargo-deny --locked`)"
        );
    } else {
        eprintln!("xtask ci: cargo-deny not installed; skipping `cargo deny check`");
    }
    eprintln!("xtask ci: all checks passed");
    Ok(())
}

fn has_subcommand(name: &str) -> bool {
    cargo()
        .args([name, "--version"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
