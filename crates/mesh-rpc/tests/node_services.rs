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
