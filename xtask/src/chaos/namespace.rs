//! Outside the namespace: the checks (root, `unshare`, `ip`, `nft`), the release
//! build, and re-executing this task under `unshare --net`.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use super::INSIDE_ENV;
use crate::util::{cargo, run as sh};

pub(super) fn outside(raw: &[String]) -> Result<()> {
    let root = effective_uid() == Some(0);
    let mut missing = Vec::new();
    for tool in ["unshare", "ip"] {
        if find_tool(tool).is_none() {
            missing.push(format!("`{tool}` (package util-linux / iproute2)"));
        }
    }
    if find_tool("nft").is_none() {
        if root {
            eprintln!("xtask chaos: `nft` is missing; installing nftables ...");
            let installed = sh(Command::new("apt-get")
                .args(["install", "-y", "nftables"])
                .env("DEBIAN_FRONTEND", "noninteractive")
                .stdin(Stdio::null()));
            if let Err(e) = installed {
                missing.push(format!("`nft` (apt-get install -y nftables failed: {e:#})"));
            } else if find_tool("nft").is_none() {
                missing.push("`nft` (still missing after installing nftables)".to_owned());
            }
        } else {
            missing.push("`nft` (package nftables; as root this task installs it)".to_owned());
        }
    }
    if !root {
        missing.push("root (unshare --net and nftables need CAP_SYS_ADMIN / CAP_NET_ADMIN)".into());
    }
    if !missing.is_empty() {
        bail!("cargo xtask chaos cannot run; missing:\n  {}", missing.join("\n  "));
    }

    eprintln!("xtask chaos: building meshd and deck in release ...");
    sh(cargo().args([
        "build",
        "--release",
        "--locked",
        "-p",
        "meshd",
        "--bin",
        "meshd",
        "-p",
        "deck-tui",
        "--bin",
        "deck",
    ]))?;
    let exe = std::env::current_exe().context("finding the xtask binary")?;
    let unshare = find_tool("unshare").context("unshare")?;
    eprintln!("xtask chaos: entering a fresh network namespace (unshare --net)");
    let mut cmd = Command::new(unshare);
    // The membership lines the task reads are logged at info.
    cmd.arg("--net")
        .arg("--")
        .arg(&exe)
        .arg("chaos")
        .args(raw)
        .env(INSIDE_ENV, "1")
        .env("RUST_LOG", "info");
    let status = cmd.status().context("running unshare --net")?;
    if !status.success() {
        bail!("the chaos run inside the network namespace failed ({status}); see above");
    }
    Ok(())
}

/// The effective user id (from `/proc/self/status`).
fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("Uid:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A program on `PATH` (or in the sbin directories, which a non-login root
/// shell may lack).
pub(super) fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}
