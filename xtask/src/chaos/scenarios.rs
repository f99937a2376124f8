//! The scenarios: loss and attach, partition, idle; each prints its figures.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::cpu::{clock_ticks_per_s, cpu_ticks};
use super::logs::{Kind, now_us};
use super::mesh::Mesh;
use super::nft::Nft;
use super::{
    Bins, CATCH_UP, CONVERGE_DEADLINE, ChaosArgs, DETECT_DEADLINE, IDLE_SETTLE, IDLE_WINDOW,
    LOSS_RULE, POLL, PRE_PARTITION_CALM, PROGRESS, Scenario, figure, not_converged,
};

pub(super) fn loss_and_attach(
    args: &ChaosArgs,
    bins: &Bins,
    nft: &Nft,
    dir: &Path,
    failures: &mut Vec<String>,
) -> Result<()> {
    let report_loss = args.wants(Scenario::Loss);
    nft.clear()?;
    nft.rule(LOSS_RULE)?;
    let t0 = now_us();
    let mut mesh = Mesh::start("loss", bins, dir, args.nodes)?;
    let converged = mesh.wait_all_healthy(t0, CONVERGE_DEADLINE)?;
    let converge_s = match converged {
        Some(t) => {
            let s = (t - t0) as f64 / 1e6;
            eprintln!(
                "xtask chaos: loss: {} nodes converged {s:.2} s after the first started",
                args.nodes
            );
            s
        }
        None => {
            if report_loss {
                not_converged(
                    failures,
                    format!(
                        "loss: {} nodes at 20 % loss never all healthy at once within {} s ({})",
                        args.nodes,
                        CONVERGE_DEADLINE.as_secs(),
                        mesh.view.progress()
                    ),
                );
            }
            CONVERGE_DEADLINE.as_secs_f64()
        }
    };
    if report_loss {
        figure("chaos_loss20_converge_s", format!("{converge_s:.2}"), "s");

        let soak = Duration::from_secs(args.soak);
        eprintln!(
            "xtask chaos: loss: soaking {} s at 20 % loss, every node alive ...",
            soak.as_secs()
        );
        let start = now_us();
        let began = Instant::now();
        let mut last_report = Instant::now();
        while began.elapsed() < soak {
            std::thread::sleep(
                Duration::from_millis(250).min(soak.saturating_sub(began.elapsed())),
            );
            mesh.poll()?;
            if last_report.elapsed() >= PROGRESS {
                last_report = Instant::now();
                let (u, s) = mesh.view.false_failures(start, now_us());
                eprintln!(
                    "xtask chaos: loss: soak {} s left; {u} unreachable, {s} suspect so far",
                    soak.saturating_sub(began.elapsed()).as_secs()
                );
            }
        }
        let end = now_us();
        // Lines written just before the end may still be on their way to the files.
        std::thread::sleep(Duration::from_millis(200));
        mesh.poll()?;
        mesh.view.catch_up(CATCH_UP)?;
        let (unreachable, suspect) = mesh.view.false_failures(start, end);
        figure("chaos_loss20_false_unreachable", unreachable, "count");
        figure("chaos_loss20_false_suspect", suspect, "count");
    }

    if args.wants(Scenario::Attach) {
        let (ms, read) = mesh.attach(bins, failures)?;
        figure("chaos_attach_loss20_ms", ms, "ms");
        figure("chaos_attach_loss20_nodes_read", read, "count");
    }
    drop(mesh);
    nft.clear()
}

pub(super) fn partition(
    args: &ChaosArgs,
    bins: &Bins,
    nft: &Nft,
    dir: &Path,
    failures: &mut Vec<String>,
) -> Result<()> {
    nft.clear()?;
    let t0 = now_us();
    let mut mesh = Mesh::start("partition", bins, dir, args.nodes)?;
    let converged = mesh.wait_all_healthy(t0, CONVERGE_DEADLINE)?;
    if let Some(t) = converged {
        eprintln!(
            "xtask chaos: partition: {} nodes converged {:.2} s after the first started",
            args.nodes,
            (t - t0) as f64 / 1e6
        );
    } else {
        not_converged(
            failures,
            format!(
                "partition: {} nodes without loss never all healthy within {} s ({}); \
                 no partition measured",
                args.nodes,
                CONVERGE_DEADLINE.as_secs(),
                mesh.view.progress()
            ),
        );
        let ms = DETECT_DEADLINE.as_millis();
        figure("chaos_partition_seen_ms", ms, "ms");
        figure("chaos_heal_ms", ms, "ms");
        return Ok(());
    }
    // A calm moment: everyone healthy for a little while.
    let calm = Instant::now();
    while calm.elapsed() < PRE_PARTITION_CALM {
        std::thread::sleep(POLL);
        mesh.poll()?;
    }
    if !mesh.view.all_healthy() {
        mesh.wait_all_healthy(now_us(), CONVERGE_DEADLINE)?;
    }

    let target = args.nodes - 1;
    let port = mesh.nodes[target]
        .addr
        .parse::<SocketAddr>()
        .with_context(|| format!("node-{target} address {:?}", mesh.nodes[target].addr))?
        .port();
    eprintln!(
        "xtask chaos: partition: cutting node-{target} ({}, {}) off",
        mesh.nodes[target].addr, mesh.nodes[target].id
    );
    let cut = now_us();
    nft.rule(&format!("udp dport {port} drop"))?;
    nft.rule(&format!("udp sport {port} drop"))?;
    let seen = mesh.wait_others_see(target, cut, &[Kind::Unreachable], "see it unreachable")?;
    let seen_ms = match seen {
        Some(t) => (t - cut) / 1000,
        None => {
            not_converged(
                failures,
                format!(
                    "partition: not every node saw node-{target} unreachable within {} s",
                    DETECT_DEADLINE.as_secs()
                ),
            );
            DETECT_DEADLINE.as_millis() as u64
        }
    };
    figure("chaos_partition_seen_ms", seen_ms, "ms");

    eprintln!("xtask chaos: partition: healing (rules removed)");
    let heal = now_us();
    nft.clear()?;
    let healed = mesh.wait_others_see(
        target,
        heal,
        &[Kind::Healthy, Kind::Joined, Kind::Rejoined],
        "see it healthy",
    )?;
    let heal_ms = match healed {
        Some(t) => (t - heal) / 1000,
        None => {
            not_converged(
                failures,
                format!(
                    "partition: not every node saw node-{target} healthy again within {} s",
                    DETECT_DEADLINE.as_secs()
                ),
            );
            DETECT_DEADLINE.as_millis() as u64
        }
    };
    figure("chaos_heal_ms", heal_ms, "ms");
    Ok(())
}

pub(super) fn idle(
    args: &ChaosArgs,
    bins: &Bins,
    dir: &Path,
    failures: &mut Vec<String>,
) -> Result<()> {
    let n = args.idle;
    let t0 = now_us();
    let mut mesh = Mesh::start("idle", bins, dir, n)?;
    match mesh.wait_all_healthy(t0, CONVERGE_DEADLINE)? {
        Some(t) => {
            eprintln!(
                "xtask chaos: idle: {n} nodes converged {:.2} s after the first started",
                (t - t0) as f64 / 1e6
            )
        }
        None => not_converged(
            failures,
            format!(
                "idle: {n} nodes never all healthy within {} s ({}); CPU measured anyway",
                CONVERGE_DEADLINE.as_secs(),
                mesh.view.progress()
            ),
        ),
    }
    eprintln!(
        "xtask chaos: idle: settling {} s, then measuring CPU over {} s ...",
        IDLE_SETTLE.as_secs(),
        IDLE_WINDOW.as_secs()
    );
    std::thread::sleep(IDLE_SETTLE);
    let pids: Vec<u32> = mesh.nodes.iter().map(|n| n.child.id()).collect();
    let before = pids.iter().map(|&p| cpu_ticks(p)).collect::<Result<Vec<_>>>()?;
    let began = Instant::now();
    while began.elapsed() < IDLE_WINDOW {
        std::thread::sleep(PROGRESS.min(IDLE_WINDOW.saturating_sub(began.elapsed())));
        eprintln!(
            "xtask chaos: idle: {} s left",
            IDLE_WINDOW.saturating_sub(began.elapsed()).as_secs()
        );
    }
    let after = pids.iter().map(|&p| cpu_ticks(p)).collect::<Result<Vec<_>>>()?;
    let elapsed = began.elapsed().as_secs_f64();
    mesh.check_alive()?;
    let ticks: u64 = after.iter().zip(&before).map(|(a, b)| a.saturating_sub(*b)).sum();
    let per_s = clock_ticks_per_s();
    let pct = ticks as f64 / per_s / elapsed / n as f64 * 100.0;
    let max = after
        .iter()
        .zip(&before)
        .map(|(a, b)| a.saturating_sub(*b) as f64 / per_s / elapsed * 100.0)
        .fold(0.0, f64::max);
    eprintln!(
        "xtask chaos: idle: {n} nodes used {:.2} s of CPU in {elapsed:.1} s ({:.1} % of one core \
         in all; busiest node {max:.2} %)",
        ticks as f64 / per_s,
        pct * n as f64
    );
    figure(&format!("meshd_idle_cpu_pct_per_node_{n}"), format!("{pct:.3}"), "%");
    Ok(())
}
