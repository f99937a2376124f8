//! Signed admin commands on real clusters: acceptance, every rejection reason,
//! freeze, cordon, drain, the ledger file, and migration (state, cancel, death).

use std::sync::Arc;
use std::time::Duration;

use mesh::testing::Cluster;
use mesh::{
    AdminCommand, AdminOutcome, ClusterKey, Daemon, EntityKeypair, MeshConfig, MeshError, MeshNode,
    MeshSnapshot, MigrationError, MigrationPhase, NodeId, simulate,
};
use mesh_auth::{
    AdminVerifier, CommandClass, EnvelopeDraft, OperatorIdentity, OperatorRegistry, SignedEnvelope,
    VerifierConfig,
};
use parking_lot::Mutex;

const DEADLINE: Duration = Duration::from_secs(30);

fn operators(n: u8) -> Vec<OperatorIdentity> {
    (0..n)
        .map(|i| OperatorIdentity::from_keypair(EntityKeypair::from_seed(&[50 + i; 32])))
        .collect()
}

fn verifier(ops: &[OperatorIdentity], threshold: usize) -> Arc<AdminVerifier> {
    let mut reg = OperatorRegistry::new();
    for op in ops {
        reg.register_public(op.public());
    }
    Arc::new(AdminVerifier::with_config(
        Arc::new(reg),
        VerifierConfig {
            routine_threshold: threshold,
            ice_threshold: threshold,
            ice_cooldown: Duration::ZERO,
            ..VerifierConfig::default()
        },
    ))
}

fn config(verifier: Arc<AdminVerifier>) -> MeshConfig {
    let mut cfg = MeshConfig::new(ClusterKey::from_bytes([3; 32])).admin_verifier(verifier);
    cfg.timing.migration_stall = Duration::from_millis(1500);
    cfg
}

/// Signs `command` as an operator would from the deck: ICE commands carry the
/// blast-radius digest simulated on `snapshot`.
fn sign(
    signers: &[&OperatorIdentity],
    command: &AdminCommand,
    snapshot: &MeshSnapshot,
) -> SignedEnvelope {
    let mut draft = EnvelopeDraft::new(command.class(), command.target(), command.to_payload());
    if command.class() == CommandClass::Ice {
        draft = draft.blast_radius(simulate(snapshot, command).digest(command));
    }
    let mut envelope = signers[0].sign_command(draft);
    for s in &signers[1..] {
        s.cosign(&mut envelope);
    }
    envelope
}

async fn wait_until(mut condition: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while tokio::time::Instant::now() < deadline {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    condition()
}

fn code(outcome: &AdminOutcome) -> &str {
    outcome.code().unwrap_or("accepted")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_apply_and_every_bad_envelope_is_rejected_with_its_reason() {
    let ops = operators(2);
    let cluster =
        Cluster::start_with_deadline(3, config(verifier(&ops[..1], 1)), DEADLINE).await.unwrap();
    let (n0, n1) = (cluster.nth(0).unwrap(), cluster.nth(1).unwrap());
    let cordon = AdminCommand::Cordon { node: n1.node_id() };

    // Accepted on the target, recorded, and visible cluster-wide.
    let env = sign(&[&ops[0]], &cordon, &n1.snapshot());
    let outcome = n1.apply_admin(&env);
    assert!(outcome.is_accepted(), "{outcome}");
    assert!(n1.admin_state().cordoned);
    assert_eq!(n1.audit_since(0, 10).len(), 1);
    assert!(
        wait_until(|| n0.snapshot().peer(n1.node_id()).is_some_and(|p| p.admin.cordoned)).await
    );
    assert!(wait_until(|| n1.snapshot().audit_tail.len() == 1).await);

    // The same envelope again: replayed. Sent to the wrong node: not_target.
    assert_eq!(code(&n1.apply_admin(&env)), "replayed");
    assert_eq!(code(&n0.apply_admin(&sign(&[&ops[0]], &cordon, &n0.snapshot()))), "not_target");

    let uncordon = AdminCommand::Uncordon { node: n1.node_id() };
    // Unsigned.
    let unsigned = SignedEnvelope::unsigned(
        EnvelopeDraft::new(uncordon.class(), uncordon.target(), uncordon.to_payload()).finish(),
    );
    assert_eq!(code(&n1.apply_admin(&unsigned)), "not_authorized");
    // Forged: payload changed after signing.
    let mut forged = sign(&[&ops[0]], &uncordon, &n1.snapshot());
    forged.body.payload = AdminCommand::Drain { node: n1.node_id(), window_ms: 1 }.to_payload();
    assert_eq!(code(&n1.apply_admin(&forged)), "bad_signature");
    // Expired.
    let old = ops[0].sign_command(
        EnvelopeDraft::new(uncordon.class(), uncordon.target(), uncordon.to_payload())
            .issued_at(mesh_auth::unix_now_ms() - 10 * 60 * 1000),
    );
    assert_eq!(code(&n1.apply_admin(&old)), "expired");
    // Unknown operator.
    assert_eq!(
        code(&n1.apply_admin(&sign(&[&ops[1]], &uncordon, &n1.snapshot()))),
        "not_authorized"
    );
    // A target string that does not match the command.
    let mismatched = ops[0].sign_command(EnvelopeDraft::new(
        CommandClass::Routine,
        format!("node:{}", n0.node_id()),
        uncordon.to_payload(),
    ));
    assert_eq!(code(&n1.apply_admin(&mismatched)), "malformed");

    // None of that changed anything. What a registered operator validly signed
    // is in the ledger (accepted, replayed, expired, mismatched); what nobody
    // with an operator key stands behind (unsigned, forged, unknown operator)
    // is refused and counted, not recorded.
    assert!(n1.admin_state().cordoned);
    let ledger = n1.audit_since(0, 100);
    assert_eq!(ledger.len(), 4);
    assert_eq!(n1.metrics().refused.admin_unsigned, 3);
    assert_eq!(ledger.iter().filter(|e| e.record.outcome.is_accepted()).count(), 1);
    mesh_auth::verify_chain(&ledger).unwrap();

    // A node without a verifier refuses everything.
    let bare = MeshNode::start(MeshConfig::new(ClusterKey::from_bytes([3; 32]))).await.unwrap();
    let env = sign(&[&ops[0]], &AdminCommand::Cordon { node: bare.node_id() }, &bare.snapshot());
    assert_eq!(code(&bare.apply_admin(&env)), "no_verifier");
    // It cannot tell an operator's signature from anyone's, so it writes
    // nothing to its ledger (nobody can fill it) and counts the refusal.
    assert!(bare.audit_since(0, 10).is_empty());
    assert_eq!(bare.metrics().refused.admin_unsigned, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn threshold_two_needs_two_distinct_operators() {
    let ops = operators(3);
    let cluster =
        Cluster::start_with_deadline(3, config(verifier(&ops, 2)), DEADLINE).await.unwrap();
    let n2 = cluster.nth(2).unwrap();
    let cmd = AdminCommand::EnterMaintenance { node: n2.node_id(), window_ms: None };
    let one = sign(&[&ops[0]], &cmd, &n2.snapshot());
    assert_eq!(code(&n2.apply_admin(&one)), "insufficient_signatures");
    let same_twice = {
        let mut e = sign(&[&ops[0]], &cmd, &n2.snapshot());
        let dup = e.signatures[0].clone();
        e.signatures.push(dup);
        e
    };
    assert_eq!(code(&n2.apply_admin(&same_twice)), "insufficient_signatures");
    assert!(!n2.admin_state().in_maintenance(mesh_auth::unix_now_ms()));
    let two = sign(&[&ops[0], &ops[2]], &cmd, &n2.snapshot());
    assert!(n2.apply_admin(&two).is_accepted());
    assert!(n2.admin_state().in_maintenance(mesh_auth::unix_now_ms()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn freeze_blocks_routine_commands_until_thaw_or_ttl() {
    let ops = operators(1);
    let cluster =
        Cluster::start_with_deadline(3, config(verifier(&ops, 1)), DEADLINE).await.unwrap();
    let nodes: Vec<&MeshNode> = cluster.nodes().collect();
    let freeze = AdminCommand::Freeze { ttl_ms: 60_000 };

    // ICE without a matching simulation is refused.
    let bad_sim = ops[0].sign_command(
        EnvelopeDraft::new(freeze.class(), freeze.target(), freeze.to_payload())
            .blast_radius([1; 32]),
    );
    assert_eq!(code(&nodes[0].apply_admin(&bad_sim)), "simulation_mismatch");

    // Cluster-wide: the deck sends it to every node.
    for node in &nodes {
        let outcome =
            node.apply_admin(&sign(&ops.iter().collect::<Vec<_>>(), &freeze, &node.snapshot()));
        assert!(outcome.is_accepted(), "{outcome}");
    }
    assert!(wait_until(|| nodes.iter().all(|n| n.snapshot().frozen())).await);
    // Each node recorded the freeze in its own ledger.
    for node in &nodes {
        let ledger = node.audit_since(0, 100);
        assert!(
            ledger
                .iter()
                .any(|e| e.record.class == CommandClass::Ice && e.record.outcome.is_accepted()),
            "{:?}",
            node.node_id()
        );
    }
    // A forged cluster-wide command is refused by every node and counted; no
    // valid operator signature stands behind it, so no ledger grows.
    let mut forged = sign(&[&ops[0]], &AdminCommand::Thaw, &nodes[0].snapshot());
    forged.body.payload = freeze.to_payload();
    for node in &nodes {
        let before = node.audit_since(0, 100).len();
        let unsigned = node.metrics().refused.admin_unsigned;
        assert_eq!(code(&node.apply_admin(&forged)), "bad_signature");
        assert_eq!(node.audit_since(0, 100).len(), before);
        assert_eq!(node.metrics().refused.admin_unsigned, unsigned + 1);
        assert!(node.snapshot().frozen() || node.admin_state().frozen_until_ms.is_some());
    }
    let cordon = AdminCommand::Cordon { node: nodes[1].node_id() };
    assert_eq!(
        code(&nodes[1].apply_admin(&sign(&[&ops[0]], &cordon, &nodes[1].snapshot()))),
        "frozen"
    );

    for node in &nodes {
        assert!(
            node.apply_admin(&sign(&[&ops[0]], &AdminCommand::Thaw, &node.snapshot()))
                .is_accepted()
        );
    }
    assert!(nodes[1].apply_admin(&sign(&[&ops[0]], &cordon, &nodes[1].snapshot())).is_accepted());

    // A short freeze lifts by itself.
    let short = AdminCommand::Freeze { ttl_ms: 300 };
    assert!(nodes[2].apply_admin(&sign(&[&ops[0]], &short, &nodes[2].snapshot())).is_accepted());
    let cordon2 = AdminCommand::Cordon { node: nodes[2].node_id() };
    assert_eq!(
        code(&nodes[2].apply_admin(&sign(&[&ops[0]], &cordon2, &nodes[2].snapshot()))),
        "frozen"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(nodes[2].apply_admin(&sign(&[&ops[0]], &cordon2, &nodes[2].snapshot())).is_accepted());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_missed_a_freeze_or_thaw_follows_the_latest() {
    let ops = operators(1);
    let cluster =
        Cluster::start_with_deadline(3, config(verifier(&ops, 1)), DEADLINE).await.unwrap();
    let (n0, n1) = (cluster.nth(0).unwrap(), cluster.nth(1).unwrap());
    let id0 = n0.node_id();
    let cordon = AdminCommand::Cordon { node: n1.node_id() };

    // Only node 0 hears the freeze; node 1 learns it from node 0's summary.
    let freeze = AdminCommand::Freeze { ttl_ms: 60_000 };
    assert!(n0.apply_admin(&sign(&[&ops[0]], &freeze, &n0.snapshot())).is_accepted());
    assert!(
        wait_until(|| n1.snapshot().peer(id0).is_some_and(|p| p.admin.frozen_until_ms.is_some()))
            .await
    );
    // Node 1 checked the operators' signatures on the freeze node 0 carries,
    // and follows it in its own state.
    assert!(wait_until(|| n1.admin_state().frozen_until_ms.is_some()).await);
    assert!(n1.admin_state().freeze_proof.is_some());
    assert!(wait_until(|| n1.snapshot().frozen()).await);
    assert_eq!(code(&n1.apply_admin(&sign(&[&ops[0]], &cordon, &n1.snapshot()))), "frozen");
    assert!(!n1.admin_state().cordoned);

    // Only node 0 hears the thaw: node 1 follows it too.
    assert!(n0.apply_admin(&sign(&[&ops[0]], &AdminCommand::Thaw, &n0.snapshot())).is_accepted());
    assert!(
        wait_until(|| n1.snapshot().peer(id0).is_some_and(|p| p.admin.frozen_until_ms.is_none()))
            .await
    );
    assert!(wait_until(|| n1.admin_state().frozen_until_ms.is_none()).await);
    assert!(wait_until(|| !n1.snapshot().frozen()).await);
    let outcome = n1.apply_admin(&sign(&[&ops[0]], &cordon, &n1.snapshot()));
    assert!(outcome.is_accepted(), "{outcome}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ice_command_the_node_refuses_starts_no_cooldown() {
    let ops = operators(1);
    let mut reg = OperatorRegistry::new();
    reg.register_public(ops[0].public());
    // The default 30 s ICE cooldown.
    let verifier = Arc::new(AdminVerifier::new(Arc::new(reg), 1));
    let cluster = Cluster::start_with_deadline(2, config(verifier), DEADLINE).await.unwrap();
    let n0 = cluster.nth(0).unwrap();
    let freeze = AdminCommand::Freeze { ttl_ms: 60_000 };

    let stale = ops[0].sign_command(
        EnvelopeDraft::new(freeze.class(), freeze.target(), freeze.to_payload())
            .blast_radius([1; 32]),
    );
    assert_eq!(code(&n0.apply_admin(&stale)), "simulation_mismatch");
    // Simulated again and re-signed: accepted at once.
    let outcome = n0.apply_admin(&sign(&[&ops[0]], &freeze, &n0.snapshot()));
    assert!(outcome.is_accepted(), "{outcome}");
    // The accepted one started the cooldown for its target.
    let again = n0.apply_admin(&sign(&[&ops[0]], &freeze, &n0.snapshot()));
    assert_eq!(code(&again), "cooldown_active");
    // Every outcome is in the ledger.
    assert_eq!(n0.audit_since(0, 10).len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ledger_file_survives_restart_and_tampering_is_detected() {
    let ops = operators(1);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let key = EntityKeypair::generate();
    let cfg = config(verifier(&ops, 1)).identity(key.clone()).audit_path(&path);
    let node = MeshNode::start(cfg.clone()).await.unwrap();
    let mut accepted = Vec::new();
    for cmd in [
        AdminCommand::Cordon { node: node.node_id() },
        AdminCommand::Uncordon { node: node.node_id() },
    ] {
        let envelope = sign(&[&ops[0]], &cmd, &node.snapshot());
        assert!(node.apply_admin(&envelope).is_accepted());
        accepted.push(envelope);
    }
    node.shutdown().await;
    drop(node);

    // Restarted as a new process would be: a fresh verifier, the same ledger file.
    // The envelopes it accepted before are still replays.
    let cfg = config(verifier(&ops, 1)).identity(key.clone()).audit_path(&path);
    let node = MeshNode::start(cfg.clone()).await.unwrap();
    assert_eq!(node.audit_since(0, 10).len(), 2);
    for envelope in &accepted {
        assert_eq!(code(&node.apply_admin(envelope)), "replayed");
    }
    node.shutdown().await;
    drop(node);

    let mut raw = std::fs::read(&path).unwrap();
    let at = raw.len() - 20;
    raw[at] ^= 0x55;
    std::fs::write(&path, &raw).unwrap();
    let err = MeshNode::start(cfg).await.unwrap_err();
    assert!(matches!(err, MeshError::Audit(_)), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ice_cooldown_survives_a_restart() {
    let ops = operators(1);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let key = EntityKeypair::generate();
    let cooling = || {
        let mut reg = OperatorRegistry::new();
        reg.register_public(ops[0].public());
        let limits = VerifierConfig {
            routine_threshold: 1,
            ice_threshold: 1,
            ice_cooldown: Duration::from_secs(600),
            ..VerifierConfig::default()
        };
        config(Arc::new(AdminVerifier::with_config(Arc::new(reg), limits)))
            .identity(key.clone())
            .audit_path(&path)
    };
    let freeze = AdminCommand::Freeze { ttl_ms: 1_000 };
    let node = MeshNode::start(cooling()).await.unwrap();
    assert!(node.apply_admin(&sign(&[&ops[0]], &freeze, &node.snapshot())).is_accepted());
    let again = node.apply_admin(&sign(&[&ops[0]], &freeze, &node.snapshot()));
    assert_eq!(code(&again), "cooldown_active");
    node.shutdown().await;
    drop(node);

    // A restart (fresh verifier, same ledger file) does not reopen the target.
    let node = MeshNode::start(cooling()).await.unwrap();
    let after = node.apply_admin(&sign(&[&ops[0]], &freeze, &node.snapshot()));
    assert_eq!(code(&after), "cooldown_active", "{after:?}");
    // Other ICE targets are not affected.
    let thaw = node.apply_admin(&sign(&[&ops[0]], &AdminCommand::Thaw, &node.snapshot()));
    assert_ne!(code(&thaw), "cooldown_active", "{thaw:?}");
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_state_survives_a_restart_and_a_corrupt_file_is_refused() {
    let ops = operators(1);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("admin-state");
    let key = EntityKeypair::generate();
    let cfg = config(verifier(&ops, 1)).identity(key.clone()).admin_state_path(&path);
    let node = MeshNode::start(cfg.clone()).await.unwrap();
    assert!(!node.admin_state().cordoned, "a missing file is the default state");
    let maintenance = AdminCommand::EnterMaintenance { node: node.node_id(), window_ms: None };
    for cmd in [AdminCommand::Cordon { node: node.node_id() }, maintenance] {
        assert!(node.apply_admin(&sign(&[&ops[0]], &cmd, &node.snapshot())).is_accepted());
    }
    let before = node.admin_state();
    node.shutdown().await;
    drop(node);

    let node = MeshNode::start(cfg.clone()).await.unwrap();
    assert_eq!(node.admin_state(), before);
    assert!(node.admin_state().cordoned);
    assert!(wait_until(|| node.snapshot().this_node.admin.cordoned).await);
    node.shutdown().await;
    drop(node);

    std::fs::write(&path, b"mesh admin state v1\n\xff\xff\xff").unwrap();
    let err = MeshNode::start(cfg.clone()).await.unwrap_err();
    assert!(matches!(err, MeshError::AdminState { .. }), "{err}");
    assert!(err.to_string().contains("admin-state"), "{err}");
    std::fs::write(&path, b"something else").unwrap();
    assert!(matches!(MeshNode::start(cfg).await.unwrap_err(), MeshError::AdminState { .. }));
}

/// A migratable counter: its state is a blob of bytes that must survive a move.
struct Counter {
    state: Vec<u8>,
}

impl Daemon for Counter {
    fn name(&self) -> &str {
        "counter"
    }
    fn kind(&self) -> Option<&str> {
        Some("counter")
    }
    fn snapshot(&mut self) -> Result<Vec<u8>, String> {
        Ok(self.state.clone())
    }
}

fn register_factories(cluster: &Cluster, delay: Duration, seen: Arc<Mutex<Vec<u8>>>) {
    for node in cluster.nodes() {
        let seen = seen.clone();
        node.register_factory("counter", move |state| {
            if !delay.is_zero() {
                std::thread::sleep(delay);
            }
            *seen.lock() = state.to_vec();
            Ok(Box::new(Counter { state: state.to_vec() }) as Box<dyn Daemon>)
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migration_moves_state_and_identity_and_cordon_stops_placement() {
    let ops = operators(1);
    let cluster =
        Cluster::start_with_deadline(3, config(verifier(&ops, 1)), DEADLINE).await.unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    register_factories(&cluster, Duration::ZERO, seen.clone());
    let (n0, n1, n2) = (cluster.nth(0).unwrap(), cluster.nth(1).unwrap(), cluster.nth(2).unwrap());
    let state: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let key = EntityKeypair::generate();
    let handle =
        n0.register_daemon(Box::new(Counter { state: state.clone() }), key.clone()).unwrap();
    let id = handle.id();
    assert!(wait_until(|| n2.snapshot().daemon(id).is_some()).await);

    // Cordoned targets refuse placements.
    let cordon = AdminCommand::Cordon { node: n1.node_id() };
    assert!(n1.apply_admin(&sign(&[&ops[0]], &cordon, &n1.snapshot())).is_accepted());
    assert!(
        wait_until(|| n0.snapshot().peer(n1.node_id()).is_some_and(|p| p.admin.cordoned)).await
    );
    assert!(matches!(n0.migrate(id, n1.node_id()), Err(MigrationError::TargetRefuses { .. })));

    let migration = n0.migrate(id, n2.node_id()).unwrap();
    tokio::time::timeout(DEADLINE, migration.wait()).await.unwrap().unwrap();
    assert_eq!(migration.phase(), MigrationPhase::Complete);
    assert_eq!(*seen.lock(), state, "state must arrive intact");
    // Same id, now placed on n2, everywhere.
    assert!(
        wait_until(|| cluster
            .nodes()
            .all(|n| n.snapshot().daemon(id).is_some_and(|d| d.node == n2.node_id())))
        .await
    );
    assert!(
        wait_until(|| n1
            .snapshot()
            .migrations
            .iter()
            .any(|m| m.id == migration.id() && m.phase == MigrationPhase::Complete))
        .await
    );
    drop(handle); // The source's handle no longer owns it: the daemon stays on n2.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(n2.snapshot().daemon(id).is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_moves_migratable_daemons_off() {
    let ops = operators(1);
    let cluster =
        Cluster::start_with_deadline(3, config(verifier(&ops, 1)), DEADLINE).await.unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    register_factories(&cluster, Duration::ZERO, seen.clone());
    let n0 = cluster.nth(0).unwrap();
    let handle = n0
        .register_daemon(Box::new(Counter { state: vec![1, 2, 3] }), EntityKeypair::generate())
        .unwrap();
    let id = handle.id();
    assert!(wait_until(|| cluster.nodes().all(|n| n.snapshot().daemon(id).is_some())).await);
    let drain = AdminCommand::Drain { node: n0.node_id(), window_ms: 500 };
    let outcome = n0.apply_admin(&sign(&[&ops[0]], &drain, &n0.snapshot()));
    assert!(outcome.is_accepted(), "{outcome}");
    assert!(wait_until(|| n0.snapshot().daemon(id).is_some_and(|d| d.node != n0.node_id())).await);
    assert!(n0.admin_state().cordoned);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_migration_and_target_death_leave_the_daemon_on_the_source() {
    let ops = operators(1);
    let mut cluster =
        Cluster::start_with_deadline(3, config(verifier(&ops, 1)), DEADLINE).await.unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    // A slow restore keeps migrations in flight long enough to interfere.
    register_factories(&cluster, Duration::from_millis(800), seen.clone());
    let source = cluster.nth(0).unwrap();
    let target_id: NodeId = cluster.nth(1).unwrap().node_id();
    let handle = source
        .register_daemon(Box::new(Counter { state: vec![9; 10] }), EntityKeypair::generate())
        .unwrap();
    let id = handle.id();
    assert!(wait_until(|| cluster.nodes().all(|n| n.snapshot().daemon(id).is_some())).await);

    // KillMigration (ICE) while it is in flight.
    let migration = source.migrate(id, target_id).unwrap();
    assert!(
        wait_until(|| source.snapshot().migrations.iter().any(|m| m.id == migration.id())).await
    );
    let kill = AdminCommand::KillMigration { migration: migration.id(), node: source.node_id() };
    let outcome = source.apply_admin(&sign(&[&ops[0]], &kill, &source.snapshot()));
    assert!(outcome.is_accepted(), "{outcome}");
    assert_eq!(
        tokio::time::timeout(DEADLINE, migration.wait()).await.unwrap(),
        Err(MigrationError::Cancelled)
    );
    assert!(source.snapshot().daemon(id).is_some_and(|d| d.node == source.node_id()));
    assert!(
        wait_until(|| source
            .snapshot()
            .recent_failures
            .iter()
            .any(|f| f.kind == "migration_cancelled"))
        .await
    );

    // Kill the target mid-migration: fails cleanly, daemon stays on the source.
    let target2 = cluster.nth(2).unwrap().node_id();
    let migration = cluster.nth(0).unwrap().migrate(id, target2).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    cluster.kill(2).unwrap();
    let result = tokio::time::timeout(DEADLINE, migration.wait()).await.unwrap();
    assert!(matches!(result, Err(MigrationError::Failed(_))), "{result:?}");
    let source = cluster.nth(0).unwrap();
    assert!(
        wait_until(|| {
            source.snapshot().daemon(id).is_some_and(|d| {
                d.node == source.node_id() && d.lifecycle == mesh::Lifecycle::Running
            })
        })
        .await
    );
    assert!(source.snapshot().recent_failures.iter().any(|f| f.kind == "migration_failed"));
    drop(handle);
}

/// A daemon that records the controls it receives.
struct Recorder {
    controls: Arc<Mutex<Vec<String>>>,
}

impl Daemon for Recorder {
    fn name(&self) -> &str {
        "recorder"
    }
    fn on_control(&mut self, control: mesh::DaemonControl) {
        self.controls.lock().push(format!("{control:?}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_delivers_drain_start_then_drain_finish_to_daemons() {
    let ops = operators(1);
    let cluster =
        Cluster::start_with_deadline(2, config(verifier(&ops, 1)), DEADLINE).await.unwrap();
    let n0 = cluster.nth(0).unwrap();
    let controls = Arc::new(Mutex::new(Vec::new()));
    let _handle = n0
        .register_daemon(
            Box::new(Recorder { controls: controls.clone() }),
            EntityKeypair::generate(),
        )
        .unwrap();
    let drain = AdminCommand::Drain { node: n0.node_id(), window_ms: 300 };
    assert!(n0.apply_admin(&sign(&[&ops[0]], &drain, &n0.snapshot())).is_accepted());
    assert!(wait_until(|| controls.lock().iter().any(|c| c.starts_with("DrainFinish"))).await);
    let seen = controls.lock().clone();
    let start = seen.iter().position(|c| c.starts_with("DrainStart"));
    let finish = seen.iter().position(|c| c.starts_with("DrainFinish"));
    assert!(start.is_some() && start < finish, "{seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_and_a_failing_restore_leave_the_daemon_on_the_source() {
    let ops = operators(1);
    let cluster =
        Cluster::start_with_deadline(3, config(verifier(&ops, 1)), DEADLINE).await.unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    register_factories(&cluster, Duration::from_millis(800), seen);
    let source = cluster.nth(0).unwrap();
    let handle = source
        .register_daemon(Box::new(Counter { state: vec![4; 16] }), EntityKeypair::generate())
        .unwrap();
    let id = handle.id();
    assert!(wait_until(|| cluster.nodes().all(|n| n.snapshot().daemon(id).is_some())).await);

    // MigrationHandle::cancel while the slow restore runs.
    let migration = source.migrate(id, cluster.nth(1).unwrap().node_id()).unwrap();
    assert!(
        wait_until(|| source.snapshot().migrations.iter().any(|m| m.id == migration.id())).await
    );
    migration.cancel();
    assert_eq!(
        tokio::time::timeout(DEADLINE, migration.wait()).await.unwrap(),
        Err(MigrationError::Cancelled)
    );
    assert_eq!(migration.phase(), MigrationPhase::Cancelled);
    assert!(source.snapshot().daemon(id).is_some_and(|d| d.node == source.node_id()));

    // A target whose restore fails: the migration fails with its reason, the
    // daemon stays (running) on the source, and a failure is recorded.
    let target = cluster.nth(2).unwrap();
    target.register_factory("counter", |_| Err("restore exploded".to_owned()));
    let migration = source.migrate(id, target.node_id()).unwrap();
    let result = tokio::time::timeout(DEADLINE, migration.wait()).await.unwrap();
    assert!(matches!(&result, Err(e) if e.to_string().contains("restore exploded")), "{result:?}");
    assert!(
        wait_until(|| source.snapshot().daemon(id).is_some_and(|d| {
            d.node == source.node_id() && d.lifecycle == mesh::Lifecycle::Running
        }))
        .await
    );
    assert!(
        wait_until(|| source
            .snapshot()
            .recent_failures
            .iter()
            .any(|f| f.kind == "migration_failed"))
        .await
    );
    assert!(target.snapshot().daemon(id).is_none_or(|d| d.node == source.node_id()));
    drop(handle);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_lines_published_during_a_migration_are_not_lost() {
    let ops = operators(1);
    let cluster =
        Cluster::start_with_deadline(2, config(verifier(&ops, 1)), DEADLINE).await.unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    register_factories(&cluster, Duration::from_millis(300), seen);
    let (source, target) = (cluster.nth(0).unwrap(), cluster.nth(1).unwrap());
    let handle = source
        .register_daemon(Box::new(Counter { state: vec![1; 8] }), EntityKeypair::generate())
        .unwrap();
    let id = handle.id();
    assert!(wait_until(|| target.snapshot().daemon(id).is_some()).await);

    // A writer keeps publishing through the daemon's logger during the move.
    let logger = handle.logger();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut n = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                logger.publish_log(mesh::LogLevel::Info, format!("line {n}"));
                n += 1;
                std::thread::sleep(Duration::from_millis(1));
            }
            (n, logger.dropped())
        })
    };
    let migration = source.migrate(id, target.node_id()).unwrap();
    tokio::time::timeout(DEADLINE, migration.wait()).await.unwrap().unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (published, dropped) = writer.join().unwrap();
    assert!(published > 0);

    // Every line is on the source or the target (replayed), or counted dropped.
    let held = |node: &MeshNode| -> std::collections::HashSet<String> {
        node.logs_since(0, usize::MAX)
            .into_iter()
            .filter(|l| l.daemon == Some(id))
            .map(|l| l.message)
            .collect()
    };
    assert!(
        wait_until(|| {
            let all: std::collections::HashSet<String> =
                held(source).union(&held(target)).cloned().collect();
            (0..published).filter(|n| all.contains(&format!("line {n}"))).count() as u64 + dropped
                >= u64::from(published)
        })
        .await,
        "published {published}, dropped {dropped}"
    );
    assert!(!held(target).is_empty(), "lines from the move were replayed on the target");
}
