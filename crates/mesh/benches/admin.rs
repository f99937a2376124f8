//! Admin commits per second on one node (verification, ledger append and effect
//! included) and the time to migrate a daemon with 1 MiB of state.
//!
//! Prints `figure:` lines (collected by `cargo xtask bench mesh`).

#![allow(clippy::print_stdout, reason = "a benchmark reports on stdout")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use mesh::testing::Cluster;
use mesh::{AdminCommand, ClusterKey, Daemon, EntityKeypair, MeshConfig, MeshNode};
use mesh_auth::{AdminVerifier, EnvelopeDraft, OperatorIdentity, OperatorRegistry, VerifierConfig};

struct Blob(Vec<u8>);

impl Daemon for Blob {
    fn name(&self) -> &str {
        "stateful#replica"
    }
    fn kind(&self) -> Option<&str> {
        Some("blob")
    }
    fn snapshot(&mut self) -> Result<Vec<u8>, String> {
        Ok(self.0.clone())
    }
}

fn verifier(op: &OperatorIdentity) -> Arc<AdminVerifier> {
    let mut reg = OperatorRegistry::new();
    reg.register_public(op.public());
    Arc::new(AdminVerifier::with_config(
        Arc::new(reg),
        VerifierConfig { max_nonces: 1 << 20, ..VerifierConfig::default() },
    ))
}

async fn commits_per_s(op: &OperatorIdentity, with_file: bool) -> f64 {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = MeshConfig::new(ClusterKey::from_bytes([4; 32])).admin_verifier(verifier(op));
    if with_file {
        cfg = cfg.audit_path(dir.path().join("audit.log"));
    }
    let node = MeshNode::start(cfg).await.expect("node");
    let n = if with_file { 2_000 } else { 20_000 };
    let envelopes: Vec<_> = (0..n)
        .map(|i| {
            let cmd = if i % 2 == 0 {
                AdminCommand::Cordon { node: node.node_id() }
            } else {
                AdminCommand::Uncordon { node: node.node_id() }
            };
            op.sign_command(EnvelopeDraft::new(cmd.class(), cmd.target(), cmd.to_payload()))
        })
        .collect();
    let started = Instant::now();
    for env in &envelopes {
        assert!(node.apply_admin(env).is_accepted());
    }
    let rate = n as f64 / started.elapsed().as_secs_f64();
    node.shutdown().await;
    rate
}

async fn migration_1mib_ms() -> Vec<f64> {
    let mut cfg = MeshConfig::new(ClusterKey::from_bytes([5; 32]));
    cfg.timing.migration_stall = Duration::from_secs(30);
    let cluster =
        Cluster::start_with_deadline(2, cfg, Duration::from_secs(60)).await.expect("cluster");
    for node in cluster.nodes() {
        node.register_factory(
            "blob",
            |state| Ok(Box::new(Blob(state.to_vec())) as Box<dyn Daemon>),
        );
    }
    let (a, b) = (cluster.nth(0).expect("a"), cluster.nth(1).expect("b"));
    let mut samples = Vec::new();
    let mut here = a;
    let mut there = b;
    let state: Vec<u8> = (0..1024 * 1024u32).map(|i| (i * 7 % 251) as u8).collect();
    let handle =
        a.register_daemon(Box::new(Blob(state)), EntityKeypair::generate()).expect("register");
    let id = handle.id();
    for _ in 0..7 {
        let started = Instant::now();
        here.migrate(id, there.node_id()).expect("start").wait().await.expect("complete");
        samples.push(started.elapsed().as_secs_f64() * 1e3);
        std::mem::swap(&mut here, &mut there);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    samples
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("rt");
    rt.block_on(async {
        let op = OperatorIdentity::from_keypair(EntityKeypair::generate());
        let mem = commits_per_s(&op, false).await;
        let file = commits_per_s(&op, true).await;
        let mut mig = migration_1mib_ms().await;
        println!("admin commits with a file-backed ledger (fsync per entry): {file:.0}/s");
        println!("migration 1 MiB samples (ms): {mig:.1?}");
        mig.sort_by(|a, b| a.total_cmp(b));
        println!("figure: admin_commits_per_s = {mem:.0} commits/s");
        println!("figure: admin_commits_fsync_per_s = {file:.0} commits/s");
        println!("figure: migration_1mib_ms = {:.1} ms", mig[mig.len() / 2]);
    });
}
