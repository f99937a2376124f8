//! Boot-to-converged and failure-detection times on 127.0.0.1, release build.
//!
//! Prints `figure:` lines (collected by `cargo xtask bench mesh`). Each figure is
//! the median of several fresh trials, loopback timing profile.

#![allow(clippy::print_stdout, reason = "a benchmark reports on stdout")]

use std::time::{Duration, Instant};

use mesh::testing::Cluster;
use mesh::{ClusterKey, MeshConfig};

const DEADLINE: Duration = Duration::from_secs(60);

fn config() -> MeshConfig {
    MeshConfig::new(ClusterKey::from_bytes([5; 32]))
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(|a, b| a.total_cmp(b));
    samples[samples.len() / 2]
}

async fn boot_ms(n: usize) -> f64 {
    let started = Instant::now();
    let mut cluster = Cluster::boot(n, config()).await.expect("boot");
    cluster.wait_converged(DEADLINE).await.expect("converged");
    let ms = started.elapsed().as_secs_f64() * 1e3;
    cluster.shutdown().await;
    ms
}

async fn failure_detect_ms() -> f64 {
    let mut cluster = Cluster::start_with_deadline(9, config(), DEADLINE).await.expect("boot");
    // Let probes settle so the kill lands at a random point of the probe cycle.
    tokio::time::sleep(Duration::from_millis(350)).await;
    let victim = cluster.identity(8).expect("node").node_id();
    let started = Instant::now();
    cluster.kill(8).expect("kill");
    let seen = cluster
        .wait_for(DEADLINE, |c| {
            c.nodes()
                .all(|n| n.peers().iter().any(|p| p.node_id == victim && p.health.is_unreachable()))
        })
        .await;
    assert!(seen);
    let ms = started.elapsed().as_secs_f64() * 1e3;
    cluster.shutdown().await;
    ms
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut boot9 = Vec::new();
        for _ in 0..7 {
            boot9.push(boot_ms(9).await);
        }
        let mut boot32 = Vec::new();
        for _ in 0..5 {
            boot32.push(boot_ms(32).await);
        }
        let mut detect = Vec::new();
        for _ in 0..5 {
            detect.push(failure_detect_ms().await);
        }
        println!("boot 9 samples (ms): {boot9:.1?}");
        println!("boot 32 samples (ms): {boot32:.1?}");
        println!("failure detect samples (ms): {detect:.1?}");
        println!("figure: boot_9_ms = {:.1} ms", median(boot9));
        println!("figure: boot_32_ms = {:.1} ms", median(boot32));
        println!("figure: failure_detect_ms = {:.1} ms", median(detect));
    });
}
