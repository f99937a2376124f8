//! The deck attached to real `meshd` processes: headless JSON through the
//! binary, and signed commands from registered and unregistered operators.

mod support;

use std::process::Command;
use std::time::Duration;

use deck_model::{DeckClient, DeckSource, NodeResult};
use mesh::AdminOutcome;
use mesh_auth::{EntityKeypair, OperatorIdentity};
use support::meshd::{Fixture, meshd_bin};

fn deck() -> Command {
    Command::new(env!("CARGO_BIN_EXE_deck"))
}

#[test]
fn deck_attach_once_json_sees_every_process_and_itself_as_a_deck() {
    let fx = Fixture::new(meshd_bin());
    // A blob stored on node 1 before it starts shows in the attached deck's BLOBS.
    let file = fx.dir.path().join("hello.txt");
    std::fs::write(&file, b"hello from node 1").unwrap();
    let stored = Command::new(&fx.meshd)
        .arg("put-blob")
        .arg("--data-dir")
        .arg(fx.dir.path().join("node-1"))
        .arg(&file)
        .output()
        .unwrap();
    assert!(stored.status.success(), "{}", String::from_utf8_lossy(&stored.stderr));
    let nodes = fx.cluster(5);
    let out = deck()
        .args(["--attach", &nodes[2].addr.to_string(), "--once", "--json"])
        .arg("--cluster-key")
        .arg(&fx.cluster_key)
        .arg("--operator-key")
        .arg(&fx.operator_key)
        .output()
        .expect("run deck");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let summary = &json["summary"];
    assert_eq!(summary["nodes"], 5, "{summary}");
    assert_eq!(summary["nodes_healthy"], 5, "{summary}");
    assert_eq!(summary["operator_nodes"], 1, "{summary}");
    assert_eq!(summary["unread_nodes"], 0, "{summary}");
    let blobs = &json["tabs"]["BLOBS"];
    let rows = blobs["rows"].as_array().expect("BLOBS rows");
    assert!(
        rows.iter().any(|r| r["cells"][0] == "disk" && r["cells"][3] == "17 B"),
        "the blob stored on node 1 is listed: {blobs}"
    );

    // A wrong cluster key is a clear error, not a hang.
    let other = fx.dir.path().join("other.key");
    mesh::ClusterKey::from_bytes([0xab; 32]).save(&other).unwrap();
    let out = deck()
        .args(["--attach", &nodes[0].addr.to_string(), "--once", "--json"])
        .args(["--attach-timeout", "2", "--cluster-key"])
        .arg(&other)
        .output()
        .expect("run deck");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no answer from") && err.contains("cluster key"), "{err}");
}

/// A cluster key file other users can read is refused before anything starts,
/// with a message naming the file, its mode and the fix.
#[cfg(unix)]
#[test]
fn deck_refuses_a_cluster_key_other_users_can_read() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("open-cluster.key");
    mesh::ClusterKey::from_bytes([0xcd; 32]).save(&key).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = deck()
        .args(["--attach", "127.0.0.1:9", "--once", "--json", "--attach-timeout", "2"])
        .arg("--cluster-key")
        .arg(&key)
        .output()
        .expect("run deck");
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "{}", String::from_utf8_lossy(&out.stdout));
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err.lines().find(|l| l.starts_with("deck: ")).unwrap_or_else(|| panic!("{err}"));
    for word in [
        "cluster key",
        &key.display().to_string(),
        "mode 0644",
        "lets other users read it",
        "chmod 600",
    ] {
        assert!(line.contains(word), "{line:?} should mention {word:?}");
    }
    assert!(!line.contains("no answer from"), "refused before attaching: {line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attached_commands_are_verified_by_the_target_process() {
    let fx = Fixture::new(meshd_bin());
    let nodes = fx.cluster(3);
    let addr = nodes[0].addr.to_string();
    let node = deck_tui::session::attach_node(&addr, &fx.cluster_key, Duration::from_secs(20))
        .await
        .expect("attach");
    let load =
        |p: &std::path::Path| OperatorIdentity::from_keypair(EntityKeypair::load(p).unwrap());
    let deck = DeckClient::from_node(&node, load(&fx.operator_key)).unwrap();
    let stranger = DeckClient::from_node(&node, load(&fx.stranger_key)).unwrap();

    // Wait until the deck sees the three processes.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let target = loop {
        deck.sync_snapshot();
        let peers: Vec<_> = deck
            .current_snapshot()
            .peers
            .iter()
            .filter(|p| !p.info.is_operator() && p.info.health.is_healthy())
            .map(|p| p.info.node_id)
            .collect();
        if peers.len() == 3 {
            break peers[1];
        }
        assert!(tokio::time::Instant::now() < deadline, "saw {} of 3 nodes", peers.len());
        tokio::time::sleep(Duration::from_millis(20)).await;
    };

    // The stranger may watch, but every command is refused with the reason.
    let report = stranger.admin().confirm(&stranger.admin().cordon(target)).await.unwrap();
    match &report.outcomes[0].result {
        NodeResult::Delivered(AdminOutcome::Rejected { code, audit_seq, .. }) => {
            assert_eq!(code, "not_authorized");
            // Not recorded: no registered operator signed it.
            assert!(audit_seq.is_none(), "a stranger's envelope reached the target's ledger");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // A cluster-wide command goes to the three processes, not to the deck.
    let freeze = stranger.admin().freeze(Duration::from_secs(60));
    assert_eq!(freeze.targets.len(), 3);
    assert!(!freeze.targets.contains(&node.node_id()));

    // The registered operator's cordon is verified and recorded there.
    let report = deck.admin().confirm(&deck.admin().cordon(target)).await.unwrap();
    assert!(report.all_accepted(), "{}", report.summary());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        deck.refresh().await;
        let data = deck.data();
        let audited = data.audit.iter().any(|(_, a)| {
            a.node == target && a.entry.record.outcome.is_accepted() && a.entry.seq == 0
        });
        let cordoned =
            data.snapshot.peers.iter().any(|p| p.info.node_id == target && p.admin.cordoned);
        if audited && cordoned {
            break;
        }
        drop(data);
        assert!(tokio::time::Instant::now() < deadline, "cordon not visible");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop((deck, stranger));
    node.shutdown().await;
}
