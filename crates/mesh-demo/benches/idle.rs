//! Demo figures, release: spawn-to-converged time, and CPU and RSS of the demo
//! process over 30 s with the workload running and no TUI.

#![allow(clippy::print_stdout, clippy::print_stderr, reason = "a benchmark reports on stdout")]

use std::time::Duration;

fn cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit(')').next()?.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

fn rss_mib() -> Option<f64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: f64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096.0 / (1024.0 * 1024.0))
}

fn main() {
    let secs: u64 = std::env::var("DEMO_IDLE_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(30);
    // One thread, as `deck --demo` runs it: no wake-ups handed between workers.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
    rt.block_on(async {
        let mut demo = mesh_demo::spawn(mesh_demo::DemoConfig::default()).await.expect("demo");
        let converge = demo.converged_in().as_secs_f64() * 1e3;
        eprintln!("spawned in {converge:.1} ms");
        tokio::time::sleep(Duration::from_secs(3)).await;
        let t0 = cpu_ticks().expect("/proc/self/stat");
        tokio::time::sleep(Duration::from_secs(secs)).await;
        let t1 = cpu_ticks().expect("/proc/self/stat");
        // Clock ticks are 1/100 s on Linux.
        let cpu_pct = (t1 - t0) as f64 / secs as f64;
        let rss = rss_mib().unwrap_or(f64::NAN);
        eprintln!("measured; shutting down");
        demo.shutdown().await;
        eprintln!("shut down");
        println!("figure: demo_converge_ms = {converge:.1} ms");
        println!("figure: demo_idle_cpu_pct = {cpu_pct:.2} %");
        println!("figure: demo_rss_mib = {rss:.1} MiB");
    });
}
