//! Remote admin commits and tails through the node services.

use std::sync::Arc;
use std::time::Duration;

use mesh::testing::Cluster;
use mesh::{AdminCommand, ClusterKey, EntityKeypair, LogLevel, MeshConfig, MeshEvent};
use mesh_auth::{AdminVerifier, EnvelopeDraft, OperatorIdentity, OperatorRegistry};
use mesh_rpc::node_services::{self, Page, serve_node_services};
use mesh_rpc::{CallOptions, Rpc};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_on_one_node_commands_another_and_reads_its_tails() {
    let op = OperatorIdentity::from_keypair(EntityKeypair::generate());
    let mut reg = OperatorRegistry::new();
    reg.register_public(op.public());
    let verifier = Arc::new(AdminVerifier::new(Arc::new(reg), 1));
    let cfg = MeshConfig::new(ClusterKey::from_bytes([8; 32])).admin_verifier(verifier);
    let cluster = Cluster::start_with_deadline(3, cfg, Duration::from_secs(30)).await.unwrap();
    let mut services = Vec::new();
    let mut endpoints = Vec::new();
    for node in cluster.nodes() {
        let rpc = Rpc::new(node).unwrap();
        services.push(serve_node_services(&rpc).unwrap());
        endpoints.push(rpc);
    }
    let (deck, target) = (&endpoints[0], cluster.nth(2).unwrap());
    let cmd = AdminCommand::Cordon { node: target.node_id() };
    let env = op.sign_command(EnvelopeDraft::new(cmd.class(), cmd.target(), cmd.to_payload()));

    let outcome =
        node_services::commit(deck, target.node_id(), &env, CallOptions::default()).await.unwrap();
    assert!(outcome.is_accepted(), "{outcome}");
    assert!(target.admin_state().cordoned);
    // The rejection reason travels back too.
    let again =
        node_services::commit(deck, target.node_id(), &env, CallOptions::default()).await.unwrap();
    assert_eq!(again.code(), Some("replayed"));

    let audit = node_services::audit_since(deck, target.node_id(), Page { from_seq: 0, limit: 10 })
        .await
        .unwrap();
    assert_eq!(audit.len(), 2);
    mesh_auth::verify_chain(&audit).unwrap();

    target
        .handle()
        .publish(MeshEvent::LogLine {
            daemon: None,
            level: LogLevel::Warn,
            message: "remote hello".into(),
        })
        .unwrap();
    target
        .handle()
        .publish(MeshEvent::Failure {
            kind: "test".into(),
            subject: "x".into(),
            message: "boom".into(),
        })
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let logs =
            node_services::logs_since(deck, target.node_id(), Page { from_seq: 0, limit: 100 })
                .await
                .unwrap();
        if logs.iter().any(|l| l.message == "remote hello") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "log line never showed up remotely");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let failures = node_services::failures_since(
        deck,
        target.node_id(),
        Page { from_seq: 0, limit: u32::MAX },
    )
    .await
    .unwrap();
    assert!(failures.iter().any(|f| f.kind == "test" && f.message == "boom"));
    drop(services);
}

/// What a key holder without an operator key can do to `admin.commit`:
/// nothing that lasts. A 1.1 MB target is refused by the bounded decoder, a
/// flood of unsigned envelopes is counted and rate-limited, none of it reaches
/// the ledger file, and the node restarts on that file as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_admin_floods_never_reach_the_ledger() {
    use mesh_auth::{CommandClass, SignedEnvelope};
    use mesh_rpc::node_services::{ADMIN_COMMIT, EnvelopeBytes};

    let op = OperatorIdentity::from_keypair(EntityKeypair::generate());
    let mut reg = OperatorRegistry::new();
    reg.register_public(op.public());
    let verifier = Arc::new(AdminVerifier::new(Arc::new(reg), 1));
    let dir = tempfile::tempdir().unwrap();
    let ledger_path = dir.path().join("audit.ledger");
    let key = ClusterKey::from_bytes([9; 32]);
    let target_cfg =
        || MeshConfig::new(key.clone()).admin_verifier(verifier.clone()).audit_path(&ledger_path);
    let target = mesh::MeshNode::start(target_cfg()).await.unwrap();
    let target_rpc = Rpc::new(&target).unwrap();
    let _services = serve_node_services(&target_rpc).unwrap();
    let holder =
        mesh::MeshNode::start(MeshConfig::new(key.clone()).seed(target.local_addr().to_string()))
            .await
            .unwrap();
    let holder_rpc = Rpc::new(&holder).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !holder.peers().iter().any(|p| p.node_id == target.node_id() && p.health.is_healthy()) {
        assert!(tokio::time::Instant::now() < deadline, "no session");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // One operator-signed command first, so the ledger has an entry to keep.
    let cmd = AdminCommand::Cordon { node: target.node_id() };
    let env = op.sign_command(EnvelopeDraft::new(cmd.class(), cmd.target(), cmd.to_payload()));
    let outcome =
        node_services::commit(&holder_rpc, target.node_id(), &env, CallOptions::default())
            .await
            .unwrap();
    assert!(outcome.is_accepted(), "{outcome}");
    let ledger_bytes = std::fs::metadata(&ledger_path).unwrap().len();

    // A 1.1 MB target, unsigned: refused, not recorded.
    let huge = SignedEnvelope::unsigned(
        EnvelopeDraft::new(CommandClass::Routine, "x".repeat(1_100_000), cmd.to_payload()).finish(),
    );
    let refused: Result<mesh::AdminOutcome, _> = holder_rpc
        .call(target.node_id(), ADMIN_COMMIT, &EnvelopeBytes(huge.encode()), CallOptions::default())
        .await;
    assert!(
        refused.as_ref().map_or(true, |o| !o.is_accepted()),
        "a huge unsigned envelope was accepted: {refused:?}"
    );
    // A flood of small unsigned ones.
    const FLOOD: usize = 200;
    let before = target.metrics().refused;
    for i in 0..FLOOD {
        let uncordon = AdminCommand::Uncordon { node: target.node_id() };
        let mut body =
            EnvelopeDraft::new(uncordon.class(), uncordon.target(), uncordon.to_payload()).finish();
        body.target = format!("node:{}#{i}", target.node_id());
        let outcome: mesh::AdminOutcome = holder_rpc
            .call(
                target.node_id(),
                ADMIN_COMMIT,
                &EnvelopeBytes(SignedEnvelope::unsigned(body).encode()),
                CallOptions::default(),
            )
            .await
            .unwrap();
        assert!(!outcome.is_accepted());
    }
    let after = target.metrics().refused;
    let unsigned = after.admin_unsigned - before.admin_unsigned;
    let limited = after.admin_rate_limited - before.admin_rate_limited;
    assert_eq!(unsigned + limited, FLOOD as u64, "{after:?}");
    assert!(limited > FLOOD as u64 / 2, "the flood was not rate-limited: {after:?}");
    // Nothing of it is in the ledger, in memory or on disk.
    assert_eq!(target.audit_since(0, 100).len(), 1);
    assert_eq!(std::fs::metadata(&ledger_path).unwrap().len(), ledger_bytes);
    assert!(target.admin_state().cordoned);

    // The node restarts on that ledger file.
    drop((holder_rpc, holder, _services, target_rpc));
    target.shutdown().await;
    drop(target);
    let again = mesh::MeshNode::start(target_cfg()).await.unwrap();
    assert_eq!(again.audit_since(0, 100).len(), 1);
}
