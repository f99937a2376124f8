//! `cargo xtask e2e`: the deck as a user runs it, driven through tmux.
//!
//! Starts `deck --demo` in a 120x40 tmux pane on a private tmux server, visits
//! every tab and checks that each shows live data, cordons a node through the
//! confirm dialog and checks the per-node result and the AUDIT row, quits with
//! `q`, and checks that the terminal is back to normal (main screen, canonical
//! mode and echo on). Every wait polls the screen with a generous deadline; on a
//! failure the last screen is printed.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::util::{cargo, run as sh, workspace_root};

/// How long any one expected screen may take to appear.
const WAIT: Duration = Duration::from_secs(30);

pub(crate) fn run(args: &[String]) -> Result<()> {
    let release = args.iter().any(|a| a == "--release");
    if let Some(bad) = args.iter().find(|a| *a != "--release") {
        bail!("unknown argument {bad:?} (usage: cargo xtask e2e [--release])");
    }
    if Command::new("tmux").arg("-V").output().map(|o| !o.status.success()).unwrap_or(true) {
        bail!("tmux is not installed; the end-to-end check drives the deck through it");
    }
    let mut build = cargo();
    build.args(["build", "--locked", "-p", "deck-tui", "--bin", "deck"]);
    if release {
        build.arg("--release");
    }
    sh(&mut build)?;
    let root = workspace_root();
    let deck = root.join("target").join(if release { "release" } else { "debug" }).join("deck");
    let dir = root.join("target").join("e2e");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let started = Instant::now();
    check(&deck, &dir)?;
    eprintln!("xtask e2e: passed in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// A private tmux server with one session; killed on drop.
pub(crate) struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(command: &str) -> Result<Tmux> {
        Tmux::start_sized(command, 120, 40)
    }

    /// Starts `command` in a `width` x `height` pane.
    pub(crate) fn start_sized(command: &str, width: u16, height: u16) -> Result<Tmux> {
        let tmux = Tmux { socket: format!("deck-e2e-{}", std::process::id()) };
        let (w, h) = (width.to_string(), height.to_string());
        let out = tmux
            .cmd()
            .args(["new-session", "-d", "-s", "e2e", "-x", &w, "-y", &h, command])
            .output()
            .context("starting tmux")?;
        if !out.status.success() {
            bail!("tmux new-session failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(tmux)
    }

    fn cmd(&self) -> Command {
        let mut cmd = Command::new("tmux");
        cmd.args(["-L", &self.socket, "-f", "/dev/null"]);
        cmd
    }

    fn output(&self, args: &[&str]) -> Result<Output> {
        let out = self.cmd().args(args).output().with_context(|| format!("tmux {args:?}"))?;
        if !out.status.success() {
            bail!("tmux {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(out)
    }

    /// Sends keys (tmux key names: `j`, `Enter`, `Escape`, ...).
    pub(crate) fn keys(&self, keys: &[&str]) -> Result<()> {
        let mut args = vec!["send-keys", "-t", "e2e"];
        args.extend_from_slice(keys);
        self.output(&args).map(drop)
    }

    fn screen(&self) -> Result<String> {
        let out = self.output(&["capture-pane", "-p", "-t", "e2e"])?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    pub(crate) fn query(&self, format: &str) -> Result<String> {
        let out = self.output(&["display-message", "-p", "-t", "e2e", format])?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// Polls the screen until `ok` holds; fails with the last screen.
    pub(crate) fn wait(&self, what: &str, ok: impl Fn(&str) -> bool) -> Result<String> {
        let deadline = Instant::now() + WAIT;
        loop {
            let screen = self.screen()?;
            if ok(&screen) {
                return Ok(screen);
            }
            if Instant::now() >= deadline {
                bail!(
                    "timed out after {} s waiting for {what}; the screen:\n{screen}",
                    WAIT.as_secs()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd().arg("kill-server").output();
    }
}

fn line(screen: &str, n: usize) -> &str {
    screen.lines().nth(n).unwrap_or("")
}

/// The title line (third row) starts with the page title.
fn on_page(screen: &str, title: &str) -> bool {
    line(screen, 2).starts_with(title)
}

/// The main table has at least one row (header on row 4, first row on row 5).
fn has_rows(screen: &str) -> bool {
    let first = line(screen, 4);
    !first.trim().is_empty() && !first.contains("nothing yet") && !first.contains("no rows match")
}

fn shell_quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', r"'\''"))
}

fn check(deck: &Path, dir: &Path) -> Result<()> {
    let log = dir.join("deck.log");
    let command = format!(
        "cd {dir} && {deck} --demo --log-file {log}; echo \"DECK-EXITED $?\"; stty -a; sleep 600",
        dir = shell_quote(dir),
        deck = shell_quote(deck),
        log = shell_quote(&log),
    );
    let tmux = Tmux::start(&command)?;
    tmux.wait("the 9-node demo in the status bar", |s| line(s, 0).contains("nodes 9/9"))?;
    eprintln!("xtask e2e: deck up, 9 nodes");

    // Every tab, by its key; each must show live rows (FAILURES may be empty in a
    // healthy cluster, MIGRATIONS before the first move).
    let tabs = [
        ("1", "NET.MAP", true),
        ("2", "NODES", true),
        ("3", "DAEMONS", true),
        ("4", "GROUPS", true),
        ("5", "DATAFORTS", true),
        ("6", "NRPC", true),
        ("7", "BLOBS", true),
        ("8", "MIGRATIONS", false),
        ("9", "CHAINS", true),
        ("0", "LOGS", true),
        ("a", "AUDIT", false),
        ("F", "FAILURES", false),
    ];
    for (key, title, rows) in tabs {
        tmux.keys(&[key])?;
        let screen = tmux
            .wait(&format!("{title} with rows"), |s| on_page(s, title) && (!rows || has_rows(s)))?;
        eprintln!("xtask e2e: {title:<10} {}", line(&screen, 4).trim_end());
    }

    // A cordon through the confirm dialog, accepted, and recorded in AUDIT.
    tmux.keys(&["2"])?;
    tmux.wait("NODES", |s| on_page(s, "NODES") && has_rows(s))?;
    tmux.keys(&["j", "c"])?;
    tmux.wait("the confirm dialog", |s| s.contains("confirm") && s.contains("sign and send"))?;
    tmux.keys(&["y"])?;
    let screen = tmux.wait("the cordon's result", |s| s.contains("accepted by 1/1"))?;
    let node = screen
        .lines()
        .find_map(|l| {
            let (before, _) = l.split_once("  accepted  audit #")?;
            before.split_whitespace().last().map(|n| n.trim_start_matches('│'))
        })
        .map(str::to_owned)
        .context("the result dialog names the node")?;
    eprintln!("xtask e2e: cordon accepted by {node}");
    tmux.keys(&["Escape"])?;
    tmux.wait("the result dialog to close", |s| !s.contains(" result "))?;
    tmux.keys(&["a"])?;
    tmux.wait("the cordon in AUDIT", |s| {
        on_page(s, "AUDIT")
            && s.lines()
                .any(|l| l.contains(&node) && l.contains("cordon") && l.contains("accepted"))
    })?;
    eprintln!("xtask e2e: cordon in AUDIT");

    // q quits; the terminal is back to the main screen, cooked and echoing.
    tmux.keys(&["q"])?;
    let screen = tmux.wait("the deck to exit", |s| s.contains("DECK-EXITED"))?;
    if !screen.contains("DECK-EXITED 0") {
        bail!("the deck exited with an error; the screen:\n{screen}");
    }
    let alternate = tmux.query("#{alternate_on}")?;
    if alternate != "0" {
        bail!("the terminal was left on the alternate screen");
    }
    let screen = tmux.wait("stty's report", |s| s.contains("icanon"))?;
    let words: Vec<&str> = screen.split_whitespace().collect();
    for flag in ["icanon", "echo"] {
        if !words.contains(&flag) {
            bail!("the terminal was left without {flag}; stty says:\n{screen}");
        }
    }
    if tmux.query("#{cursor_flag}")? != "1" {
        bail!("the cursor was left hidden");
    }
    eprintln!("xtask e2e: terminal restored (main screen, icanon, echo, cursor)");
    Ok(())
}
