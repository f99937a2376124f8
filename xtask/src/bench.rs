//! `cargo xtask bench [GROUP]`: runs the release benchmarks and prints every figure
//! as `figure: <name> = <value> <unit>`.
//!
//! Criterion benches write their estimates under `target/criterion`; this task runs
//! them, reads the mean time per iteration back, and derives the figures (ratios are
//! always between two measurements of the same run).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};

use crate::util::{cargo, run as sh, workspace_root};

/// One figure: name, value, unit.
type Figure = (String, String, String);

/// Benchmark groups: (name, what it measures).
const GROUPS: &[(&str, &str)] = &[
    ("auth", "envelope verification vs raw ed25519 (mesh-auth)"),
    ("mesh", "boot, failure detection, log throughput, fold visibility, snapshot rebuild (mesh)"),
    ("rpc", "32-byte echo latency and throughput vs a plain UDP floor (mesh-rpc)"),
    ("deck", "deck views from a 100-node, 2,000-daemon, 100k-line, 10k-blob state (deck-model)"),
    ("demo", "demo spawn-to-converged, idle CPU and RSS over 30 s (mesh-demo)"),
    ("attach", "deck attached to 9 meshd processes: first frame, change visible, idle bytes/s"),
    ("tui", "frame build+draw at 200x50; `deck --demo` idle CPU and RSS in a tmux pane (deck-tui)"),
    ("blobs", "blob store put/get vs plain blake3, disk log vs plain file write (mesh-blobs)"),
    (
        "sim",
        "membership at scale on the simulated network, virtual time: 32, 128, 512 nodes \
         (SIM_SIZES=32,128,512,1000 adds 1,000; 512 takes about 20 min on 2 cores)",
    ),
];

pub(crate) fn run(args: &[String]) -> Result<()> {
    let selected: Vec<&str> = match args.first().map(String::as_str) {
        None | Some("all") => GROUPS.iter().map(|(name, _)| *name).collect(),
        Some(name) if GROUPS.iter().any(|(g, _)| *g == name) => vec![name],
        Some(other) => {
            let known: Vec<_> = GROUPS.iter().map(|(g, what)| format!("  {g:8} {what}")).collect();
            bail!("unknown bench group {other:?}; groups:\n{}", known.join("\n"))
        }
    };
    let mut figures = Vec::new();
    for group in selected {
        match group {
            "auth" => figures.extend(auth()?),
            "mesh" => {
                figures.extend(figure_lines(&["-p", "mesh", "--bench", "cluster"])?);
                figures.extend(figure_lines(&["-p", "mesh", "--bench", "state"])?);
                figures.extend(figure_lines(&["-p", "mesh", "--bench", "admin"])?);
                figures.extend(figure_lines(&["-p", "mesh", "--bench", "trust"])?);
            }
            "sim" => figures.extend(figure_lines(&["-p", "mesh", "--bench", "sim"])?),
            "blobs" => figures.extend(blobs()?),
            "rpc" => figures.extend(figure_lines(&["-p", "mesh-rpc", "--bench", "rpc_echo"])?),
            "deck" => figures.extend(figure_lines(&["-p", "deck-model", "--bench", "views"])?),
            "demo" => figures.extend(figure_lines(&["-p", "mesh-demo", "--bench", "idle"])?),
            "attach" => {
                sh(cargo().args(["build", "--locked", "--release", "-p", "meshd"]))?;
                figures.extend(figure_lines(&["-p", "deck-tui", "--bench", "attach"])?);
            }
            "tui" => {
                figures.extend(figure_lines(&["-p", "deck-tui", "--bench", "frame"])?);
                figures.extend(deck_idle()?);
            }
            _ => unreachable!("group list and match agree"),
        }
    }
    println!();
    for (name, value, unit) in figures {
        println!("figure: {name} = {value} {unit}");
    }
    Ok(())
}

fn auth() -> Result<Vec<Figure>> {
    // The bench prints the paired ratios itself; criterion's means give the rates.
    let mut figures = figure_lines(&["-p", "mesh-auth", "--bench", "verify"])?;
    let raw1 = mean_ns("verify", "raw_ed25519_x1")?;
    let env1 = mean_ns("verify", "envelope_1_signer")?;
    let env3 = mean_ns("verify", "envelope_3_signers")?;
    let per_s = |ns: f64| format!("{:.0}", 1e9 / ns);
    figures.extend([
        ("verify_raw_ed25519_per_s".into(), per_s(raw1), "verifications/s".into()),
        ("verify_envelope_1_signer_per_s".into(), per_s(env1), "envelopes/s".into()),
        ("verify_envelope_3_signers_per_s".into(), per_s(env3), "envelopes/s".into()),
    ]);
    Ok(figures)
}

fn blobs() -> Result<Vec<Figure>> {
    // The bench prints the paired ratios itself; criterion's means give the rates.
    let mut figures = figure_lines(&["-p", "mesh-blobs", "--bench", "store"])?;
    const BYTES: f64 = 64.0 * 1024.0 * 1024.0;
    let floor = mean_ns("blobs", "blake3_floor_64mib")?;
    let put = mean_ns("blobs", "mem_put_64mib")?;
    let get = mean_ns("blobs", "mem_get_64mib")?;
    let mb_s = |ns: f64| format!("{:.0}", BYTES / 1e6 / (ns / 1e9));
    figures.extend([
        ("blake3_floor_mb_per_s".into(), mb_s(floor), "MB/s".into()),
        ("blob_put_mem_mb_per_s".into(), mb_s(put), "MB/s".into()),
        ("blob_get_mem_mb_per_s".into(), mb_s(get), "MB/s".into()),
    ]);
    Ok(figures)
}

/// Runs a bench binary that prints its own `figure:` lines; echoes its output
/// and returns the figures.
fn figure_lines(args: &[&str]) -> Result<Vec<Figure>> {
    let mut cmd = cargo();
    cmd.args(["bench", "--locked"]).args(args);
    eprintln!("$ cargo bench --locked {}", args.join(" "));
    let out = cmd.stderr(std::process::Stdio::inherit()).output().context("running cargo bench")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    print!("{stdout}");
    if !out.status.success() {
        bail!("cargo bench {} failed ({})", args.join(" "), out.status);
    }
    let mut figures = Vec::new();
    for line in stdout.lines() {
        let Some(rest) = line.strip_prefix("figure: ") else { continue };
        let Some((name, value)) = rest.split_once(" = ") else { continue };
        let (value, unit) = value.split_once(' ').unwrap_or((value, ""));
        figures.push((name.to_owned(), value.to_owned(), unit.to_owned()));
    }
    Ok(figures)
}

/// Mean time per iteration (ns) of a criterion benchmark from its estimates file.
fn mean_ns(group: &str, id: &str) -> Result<f64> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    let path = target.join("criterion").join(group).join(id).join("new").join("estimates.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading criterion estimates {}", path.display()))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    json["mean"]["point_estimate"]
        .as_f64()
        .with_context(|| format!("no mean.point_estimate in {}", path.display()))
}

/// `deck --demo` (release) in a 200x50 tmux pane, left alone: CPU share of one
/// core over `DECK_IDLE_SECS` (default 30) after the cluster is up, and RSS.
fn deck_idle() -> Result<Vec<Figure>> {
    let secs: u64 = std::env::var("DECK_IDLE_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(30);
    sh(cargo().args(["build", "--locked", "--release", "-p", "deck-tui", "--bin", "deck"]))?;
    let deck = workspace_root().join("target").join("release").join("deck");
    let command = format!("exec '{}' --demo", deck.display().to_string().replace('\'', r"'\''"));
    let tmux = crate::e2e::Tmux::start_sized(&command, 200, 50)?;
    tmux.wait("the demo in the deck", |s| {
        s.lines().next().is_some_and(|l| l.contains("nodes 9/9"))
    })?;
    let pid: u32 = tmux.query("#{pane_pid}")?.parse().context("tmux pane pid")?;
    std::thread::sleep(std::time::Duration::from_secs(3));
    let t0 = cpu_ticks(pid)?;
    let started = std::time::Instant::now();
    std::thread::sleep(std::time::Duration::from_secs(secs));
    let t1 = cpu_ticks(pid)?;
    let elapsed = started.elapsed().as_secs_f64();
    let rss = rss_mib(pid)?;
    tmux.keys(&["q"])?;
    // Clock ticks are 1/100 s on Linux.
    let cpu_pct = (t1 - t0) as f64 / elapsed;
    println!("deck --demo idle over {elapsed:.1} s: {cpu_pct:.2} % of one core, RSS {rss:.1} MiB");
    Ok(vec![
        ("deck_idle_cpu_pct".into(), format!("{cpu_pct:.2}"), "%".into()),
        ("deck_rss_mib".into(), format!("{rss:.1}"), "MiB".into()),
    ])
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> Result<u64> {
    let stat =
        std::fs::read_to_string(format!("/proc/{pid}/stat")).context("reading /proc/PID/stat")?;
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let field = |i: usize| -> Result<u64> {
        fields.get(i).and_then(|f| f.parse().ok()).context("parsing /proc/PID/stat")
    };
    Ok(field(11)? + field(12)?)
}

/// Resident set size of a process (VmRSS), MiB.
fn rss_mib(pid: u32) -> Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .context("reading /proc/PID/status")?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("no VmRSS in /proc/PID/status")?;
    Ok(kib / 1024.0)
}
