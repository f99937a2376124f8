//! The deck on a real 9-node cluster: daemons registered on several nodes, seen in
//! the DAEMONS view (names, roles, placement) and counted in the NODES view;
//! signed admin actions through `DeckClient` (routine and ICE, accepted and
//! rejected), visible in the NODES and AUDIT views;
//! merged logs and failures from other nodes; the call tail; blob adapters.
//!
//! Every wait is a condition with a generous deadline: this must pass on a loaded
//! 2-core machine.

use std::sync::Arc;
use std::time::{Duration, Instant};

use deck_model::{
    DeckClient, DeckData, DeckSource, NodeResult, Tab, Table, ViewState, headless, summarize, views,
};
use mesh::testing::Cluster;
use mesh::{AdminOutcome, ClusterKey, EntityKeypair, LogLevel, MeshConfig, MeshEvent, NodeId};
use mesh_auth::{AdminVerifier, OperatorIdentity, OperatorRegistry, VerifierConfig};
use mesh_blobs::{BlobStore, MemLog, MeshBlobAdapter, StoreConfig};
use mesh_rpc::Rpc;
use mesh_rpc::node_services::serve_node_services;

const DEADLINE: Duration = Duration::from_secs(90);

fn operator(seed: u8) -> OperatorIdentity {
    OperatorIdentity::from_keypair(EntityKeypair::from_seed(&[seed; 32]))
}

/// Refreshes until `condition` holds on the deck's data.
async fn eventually(deck: &DeckClient, what: &str, mut condition: impl FnMut(&DeckData) -> bool) {
    let started = Instant::now();
    loop {
        deck.refresh().await;
        if condition(&deck.data()) {
            return;
        }
        assert!(started.elapsed() < DEADLINE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn full(data: &DeckData, tab: Tab) -> Table {
    views::build_full(data, &ViewState::new(), tab).table
}

fn cell<'a>(table: &'a Table, row: &'a deck_model::Row, column: &str) -> &'a str {
    table.cell_text(row, column).unwrap_or_else(|| panic!("no column {column}"))
}

fn node_row(table: &Table, node: NodeId) -> Option<&deck_model::Row> {
    table.row(deck_model::RowId::Node(node))
}

/// The number of daemons a NODES row says are placed on its node (`3` or
/// `3 (1 !)` when some are not healthy).
fn placed(table: &Table, row: &deck_model::Row) -> Option<u64> {
    cell(table, row, "DAEMONS").split_whitespace().next()?.parse().ok()
}

/// A daemon that only has a name.
struct Named(&'static str);

impl mesh::Daemon for Named {
    fn name(&self) -> &str {
        self.0
    }
}

/// The daemons of the 9-node test: (node index, name).
const PLACEMENT: [(usize, &str); 6] = [
    (0, "node_agent"),
    (2, "inference_worker#replica"),
    (3, "inference_worker#replica"),
    (4, "trainer_canary#standby"),
    (4, "rollout_forge#fork@7"),
    (6, "trainer_canary#standby"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_actions_through_the_deck_are_signed_verified_and_visible() {
    let op = operator(60);
    let mut registry = OperatorRegistry::new();
    registry.register_public(op.public());
    // No ICE cooldown: the nodes of this in-process cluster share one verifier,
    // and a cluster-wide freeze reaches all nine with the same target.
    let verifier = Arc::new(AdminVerifier::with_config(
        Arc::new(registry),
        VerifierConfig { ice_cooldown: Duration::ZERO, ..VerifierConfig::default() },
    ));
    let config = MeshConfig::new(ClusterKey::from_bytes([41; 32])).admin_verifier(verifier);
    let mut cluster = Cluster::start_with_deadline(9, config, DEADLINE).await.unwrap();
    // Keep the endpoints: an RPC endpoint lives as long as someone holds it.
    let mut services = Vec::new();
    for node in cluster.nodes() {
        let rpc = Rpc::new(node).unwrap();
        services.push((serve_node_services(&rpc).unwrap(), rpc));
    }
    let nodes: Vec<NodeId> = cluster.nodes().map(|n| n.node_id()).collect();
    // A few daemons on several nodes (keep the handles: dropping one ends it).
    let mut daemons = Vec::new();
    for (k, (i, name)) in PLACEMENT.iter().enumerate() {
        let key = EntityKeypair::from_seed(&[100 + k as u8; 32]);
        let handle = cluster.nth(*i).unwrap().register_daemon(Box::new(Named(name)), key).unwrap();
        daemons.push((handle, nodes[*i], *name));
    }
    let deck = DeckClient::from_node(cluster.nth(0).unwrap(), op.clone()).unwrap();
    assert_eq!(deck.operator(), op.operator_id());

    // The deck sees every node, and reads every node's streams.
    eventually(&deck, "all nine nodes in NET.MAP", |d| full(d, Tab::NetMap).total == 9).await;

    // Every daemon is in DAEMONS with its name, node and role; NODES counts them.
    let standbys: Vec<mesh::OriginHash> = daemons
        .iter()
        .filter(|(_, _, name)| name.ends_with("#standby"))
        .map(|(h, _, _)| h.id())
        .collect();
    let active = standbys.iter().min().copied();
    let role = |id: mesh::OriginHash, name: &str| match name {
        "node_agent" => "solo",
        "inference_worker#replica" => "replica",
        "rollout_forge#fork@7" => "fork@7",
        _ if Some(id) == active => "active",
        _ => "warm",
    };
    eventually(&deck, "six daemons in DAEMONS and their counts in NODES", |d| {
        let table = full(d, Tab::Daemons);
        let listed = table.total == PLACEMENT.len()
            && daemons.iter().all(|(h, node, name)| {
                table.row(deck_model::RowId::Daemon(h.id())).is_some_and(|r| {
                    cell(&table, r, "NAME") == *name
                        && cell(&table, r, "NODE") == node.short()
                        && cell(&table, r, "ROLE") == role(h.id(), name)
                        && cell(&table, r, "LIFECYCLE") == "running"
                })
            });
        let nodes_view = full(d, Tab::Nodes);
        let counted = nodes.iter().all(|node| {
            let want = daemons.iter().filter(|(_, n, _)| n == node).count() as u64;
            node_row(&nodes_view, *node).and_then(|r| placed(&nodes_view, r)) == Some(want)
        });
        listed && counted
    })
    .await;
    // DAEMONS is in lineage order: the two replicas are next to each other.
    let table = full(&deck.data(), Tab::Daemons);
    let replicas: Vec<usize> = table
        .rows
        .iter()
        .enumerate()
        .filter(|(_, r)| cell(&table, r, "NAME") == "inference_worker#replica")
        .map(|(i, _)| i)
        .collect();
    assert_eq!(replicas.len(), 2);
    assert_eq!(replicas[1], replicas[0] + 1, "group members are listed together");

    // A routine command: cordon node 4.
    let target = nodes[4];
    let pending = deck.admin().cordon(target);
    assert_eq!(pending.targets, vec![target]);
    assert!(pending.radius.nodes.contains(&target));
    assert!(!pending.is_ice());
    let report = deck.admin().confirm(&pending).await.unwrap();
    assert!(report.all_accepted(), "{}", report.summary());
    assert_eq!(report.outcomes.len(), 1);
    assert_eq!(report.outcomes[0].node, target);
    assert_eq!(report.signers, vec![op.operator_id()]);
    // Signed: the target's ledger names the operator whose signature counted.
    let ledger = cluster.nth(4).unwrap().audit_since(0, 16);
    assert_eq!(ledger.len(), 1);
    assert!(ledger[0].record.outcome.is_accepted());
    assert_eq!(ledger[0].record.operators, vec![op.operator_id()]);

    eventually(&deck, "the cordon in NODES and in AUDIT", |d| {
        let nodes_view = full(d, Tab::Nodes);
        // Cordoned, and its two daemons stay where they are.
        let cordoned = node_row(&nodes_view, target).is_some_and(|r| {
            cell(&nodes_view, r, "CORDON") == "yes"
                && cell(&nodes_view, r, "STATE") == "cordoned"
                && placed(&nodes_view, r) == Some(2)
        });
        let audit = full(d, Tab::Audit);
        let audited = audit.rows.iter().any(|r| {
            cell(&audit, r, "NODE") == target.short()
                && cell(&audit, r, "TARGET") == format!("node:{target}")
                && cell(&audit, r, "ACTION") == "cordon"
                && cell(&audit, r, "OUTCOME") == "accepted"
                && cell(&audit, r, "CHAIN") == "verified"
        });
        cordoned && audited
    })
    .await;

    // A command signed by an identity no node trusts is refused, with its reason.
    let stranger = DeckClient::from_node(cluster.nth(0).unwrap(), operator(61)).unwrap();
    let victim = nodes[5];
    let report = stranger.admin().confirm(&stranger.admin().cordon(victim)).await.unwrap();
    assert!(!report.all_accepted());
    match &report.outcomes[0].result {
        NodeResult::Delivered(AdminOutcome::Rejected { code, reason, audit_seq }) => {
            assert_eq!(code, "not_authorized");
            assert!(!reason.is_empty());
            // No registered operator signed it: refused and counted, but not
            // written to the victim's ledger (a stranger cannot fill it).
            assert!(audit_seq.is_none(), "a stranger's envelope reached the ledger");
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert!(report.summary().contains("not_authorized"), "{}", report.summary());
    assert!(!cluster.nth(5).unwrap().admin_state().cordoned);
    eventually(&deck, "the victim counted the refusal", |_| {
        cluster.nth(5).unwrap().metrics().refused.admin_unsigned >= 1
    })
    .await;

    // ICE, cluster-wide: freeze reaches all nine nodes, each verifies the digest.
    let freeze = deck.admin().freeze(Duration::from_secs(120));
    assert!(freeze.is_ice());
    assert_eq!(freeze.targets.len(), 9);
    let report = deck.admin().confirm(&freeze).await.unwrap();
    assert!(report.all_accepted(), "{}", report.summary());
    assert_eq!(report.outcomes.len(), 9);
    eventually(&deck, "the freeze in the summary", |d| summarize(d).frozen_for_ms.is_some()).await;
    // Routine commands are now refused, and the deck says why.
    let report = deck.admin().confirm(&deck.admin().uncordon(target)).await.unwrap();
    assert_eq!(
        match &report.outcomes[0].result {
            NodeResult::Delivered(AdminOutcome::Rejected { code, .. }) => code.as_str(),
            _ => "accepted",
        },
        "frozen"
    );
    let report = deck.admin().confirm(&deck.admin().thaw()).await.unwrap();
    assert!(report.all_accepted(), "{}", report.summary());
    eventually(&deck, "the thaw", |d| summarize(d).frozen_for_ms.is_none()).await;
    let report = deck.admin().confirm(&deck.admin().uncordon(target)).await.unwrap();
    assert!(report.all_accepted(), "{}", report.summary());

    // The call tail saw the deck's commits (its page reads are left out).
    eventually(&deck, "admin.commit calls in NRPC", |d| {
        let t = full(d, Tab::Nrpc);
        t.rows.iter().any(|r| cell(&t, r, "SERVICE") == "admin.commit")
            && !t.rows.iter().any(|r| cell(&t, r, "SERVICE") == "logs.since")
    })
    .await;
    // Every node's ledger chain checked out.
    assert!(deck.data().audit.iter().all(|(_, a)| a.chain == deck_model::ChainMark::Verified));

    drop(stranger);
    drop(deck);
    drop(daemons);
    drop(services);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_failures_and_blobs_of_every_node_are_merged() {
    let config = MeshConfig::new(ClusterKey::from_bytes([42; 32]));
    let mut cluster = Cluster::start_with_deadline(9, config, DEADLINE).await.unwrap();
    // Keep the endpoints: an RPC endpoint lives as long as someone holds it.
    let mut services = Vec::new();
    for node in cluster.nodes() {
        let rpc = Rpc::new(node).unwrap();
        services.push((serve_node_services(&rpc).unwrap(), rpc));
    }
    let mut adapters = Vec::new();
    for (i, node) in cluster.nodes().enumerate().take(3) {
        let store: Arc<dyn BlobStore> = Arc::new(MemLog::new(StoreConfig::default()));
        for k in 0..=i {
            store.put_slice(format!("blob {i} {k}").as_bytes()).unwrap();
        }
        adapters.push(MeshBlobAdapter::new("cache", node, store).unwrap());
    }
    let deck = DeckClient::from_node(cluster.nth(0).unwrap(), operator(62))
        .unwrap()
        .with_blob_adapters(adapters.clone());
    assert_eq!(deck.blob_sources(), 3);
    for (i, node) in cluster.nodes().enumerate() {
        node.handle()
            .publish(MeshEvent::LogLine {
                daemon: None,
                level: if i == 7 { LogLevel::Error } else { LogLevel::Info },
                message: format!("gpu-{i} :: hello from node {i}\x1b[2J"),
            })
            .unwrap();
    }
    cluster
        .nth(6)
        .unwrap()
        .handle()
        .publish(MeshEvent::Failure {
            kind: "daemon_panic".into(),
            subject: "worker".into(),
            message: "boom".into(),
        })
        .unwrap();

    eventually(&deck, "a line from every node in LOGS", |d| {
        let logs = full(d, Tab::Logs);
        (0..9).all(|i| {
            logs.rows
                .iter()
                .any(|r| cell(&logs, r, "MESSAGE").starts_with(&format!("gpu-{i} :: hello")))
        })
    })
    .await;
    let data = deck.data();
    let logs = full(&data, Tab::Logs);
    assert!(logs.rows.iter().all(|r| !cell(&logs, r, "MESSAGE").contains('\x1b')));
    drop(data);
    eventually(&deck, "the failure of node 6", |d| {
        let f = full(d, Tab::Failures);
        f.rows
            .iter()
            .any(|r| cell(&f, r, "KIND") == "daemon_panic" && cell(&f, r, "SUBJECT") == "worker")
    })
    .await;
    eventually(&deck, "three adapters and six blobs", |d| {
        full(d, Tab::Dataforts).total == 3 && full(d, Tab::Blobs).total == 6
    })
    .await;
    let doc = headless::snapshot_json(&deck);
    assert_eq!(doc["tabs"]["BLOBS"]["total"], 6);
    assert_eq!(doc["summary"]["nodes"], 9);
    assert!(deck.data().streams.values().all(|s| s.last_error.is_none()));

    drop(deck);
    drop(adapters);
    drop(services);
    cluster.shutdown().await;
}

struct Worker;

impl mesh::Daemon for Worker {
    fn name(&self) -> &str {
        "inference_worker#replica"
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn threshold_two_needs_a_cosigner_and_a_changed_blast_radius_sends_nothing() {
    let (alice, bob) = (operator(63), operator(64));
    let mut registry = OperatorRegistry::new();
    registry.register_public(alice.public());
    registry.register_public(bob.public());
    let verifier = Arc::new(AdminVerifier::new(Arc::new(registry), 2));
    let config = MeshConfig::new(ClusterKey::from_bytes([43; 32])).admin_verifier(verifier);
    let mut cluster = Cluster::start_with_deadline(3, config, DEADLINE).await.unwrap();
    let mut services = Vec::new();
    for node in cluster.nodes() {
        let rpc = Rpc::new(node).unwrap();
        services.push((serve_node_services(&rpc).unwrap(), rpc));
    }
    let target = cluster.nth(2).unwrap().node_id();
    let deck = DeckClient::from_node(cluster.nth(0).unwrap(), alice.clone()).unwrap();

    // One signature is not enough.
    let report = deck.admin().confirm(&deck.admin().cordon(target)).await.unwrap();
    assert!(
        report.outcomes[0].result.code() == Some("insufficient_signatures"),
        "{}",
        report.summary()
    );
    // Co-signed by a second operator, it is accepted.
    let pending = deck.admin().cordon(target).cosign(bob.clone());
    let report = deck.admin().confirm(&pending).await.unwrap();
    assert!(report.all_accepted(), "{}", report.summary());
    assert_eq!(report.signers, vec![alice.operator_id(), bob.operator_id()]);
    // Or the deck co-signs everything.
    let both = DeckClient::from_node(cluster.nth(0).unwrap(), alice.clone())
        .unwrap()
        .with_cosigner(bob.clone());
    let report = both.admin().confirm(&both.admin().uncordon(target)).await.unwrap();
    assert!(report.all_accepted(), "{}", report.summary());

    // The operator reviewed "restart the daemons on node 2" while it ran none; a
    // daemon arrives before the confirmation: nothing is sent.
    let pending = both.admin().restart_daemons(target);
    assert!(pending.radius.daemons.is_empty());
    let handle = cluster
        .nth(2)
        .unwrap()
        .register_daemon(Box::new(Worker), EntityKeypair::generate())
        .unwrap();
    let deck_node = cluster.nth(0).unwrap();
    let started = Instant::now();
    while deck_node.snapshot().daemon(handle.id()).is_none() {
        assert!(started.elapsed() < DEADLINE, "the daemon never reached node 0's snapshot");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ledger_before = cluster.nth(2).unwrap().audit_since(0, 100).len();
    match both.admin().confirm(&pending).await {
        Err(deck_model::DeckError::BlastRadiusChanged { fresh }) => {
            assert!(fresh.radius.daemons.contains(&handle.id()));
        }
        other => panic!("expected BlastRadiusChanged, got {other:?}"),
    }
    assert_eq!(
        cluster.nth(2).unwrap().audit_since(0, 100).len(),
        ledger_before,
        "nothing was sent"
    );

    drop(handle);
    drop((deck, both, services));
    cluster.shutdown().await;
}
