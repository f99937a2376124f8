//! `mesh-demo`: runs the demo cluster headless and prints a status line every
//! second until Ctrl-C (the deck TUI attaches to the same workload once it lands).

#![allow(clippy::print_stdout, clippy::print_stderr, reason = "a CLI reporting to the terminal")]

use std::time::{Duration, Instant};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let started = Instant::now();
    eprintln!("mesh-demo: booting 9 nodes on 127.0.0.1 ...");
    let mut demo = match mesh_demo::spawn(mesh_demo::DemoConfig::default()).await {
        Ok(demo) => demo,
        Err(e) => {
            eprintln!("mesh-demo: {e}");
            std::process::exit(1);
        }
    };
    eprintln!(
        "mesh-demo: converged in {} ms; operator {}; Ctrl-C to stop",
        demo.converged_in().as_millis(),
        demo.operator().operator_id()
    );
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = ticker.tick() => {
                let s = demo.this_node().snapshot();
                let healthy = s.peers.iter().filter(|p| p.info.health.is_healthy()).count();
                let degraded = s.daemons.iter().filter(|d| d.health.label() != "healthy").count();
                let blobs: u64 = demo.blob_adapters().iter().map(|a| a.metrics().store.blobs).sum();
                let moving = s.migrations.iter().filter(|m| !m.phase.is_terminal()).count();
                println!(
                    "t={:>4}s  peers {healthy}/{} healthy  daemons {} ({degraded} not healthy)  logs {}  calls {}  blobs {blobs}  migrations {moving} in flight",
                    started.elapsed().as_secs(),
                    s.peers.len(),
                    s.daemons.len(),
                    s.logs.next_seq,
                    demo.deck().call_tail().len(),
                );
            }
        }
    }
    eprintln!("mesh-demo: shutting down");
    demo.shutdown().await;
}
