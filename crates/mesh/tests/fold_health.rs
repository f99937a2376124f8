//! The cluster-wide fold on real nodes under bad news: malformed, oversized and
//! hostile summaries from a peer are dropped and counted without touching the
//! fold, and a dead node's daemons leave every snapshot `forget_after` after its
//! summary last changed (and stay gone).
//!
//! Deadlines are generous; everything waits by polling snapshots.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mesh::fold::{
    DaemonSummary, FoldMessage, MAX_FOLD_MESSAGE, NodeSummary, Resources, SignedSummary,
};
use mesh::testing::Cluster;
use mesh::{
    ClusterKey, Daemon, DaemonHealth, EntityKeypair, MeshConfig, MeshNode, MeshSnapshot,
    MessageKind, NodeId, OriginHash,
};
use parking_lot::Mutex;

const DEADLINE: Duration = Duration::from_secs(30);
/// The kind the nodes' fold traffic travels under.
const FOLD_KIND: MessageKind = MessageKind::named("mesh/fold/v1");

fn config() -> MeshConfig {
    MeshConfig::new(ClusterKey::from_bytes([11; 32]))
}

struct Settable {
    name: &'static str,
    health: Arc<Mutex<DaemonHealth>>,
}

impl Daemon for Settable {
    fn name(&self) -> &str {
        self.name
    }
    fn health(&self) -> DaemonHealth {
        self.health.lock().clone()
    }
}

fn settable(name: &'static str) -> (Box<dyn Daemon>, Arc<Mutex<DaemonHealth>>) {
    let health = Arc::new(Mutex::new(DaemonHealth::Healthy));
    (Box::new(Settable { name, health: health.clone() }), health)
}

async fn wait_snapshot(node: &MeshNode, pred: impl FnMut(&MeshSnapshot) -> bool) -> bool {
    mesh::testing::wait_snapshot(node, DEADLINE, pred).await
}

fn daemon_summary(id: u64, name: &str, health: DaemonHealth) -> DaemonSummary {
    DaemonSummary::running(OriginHash(id), name, health)
}

fn forged(node: NodeId, daemons: Vec<DaemonSummary>) -> NodeSummary {
    NodeSummary {
        node,
        // Far above anything the real owner will produce: if this were merged, the
        // owner's own news would never be applied again.
        incarnation: u64::MAX,
        version: u64::MAX,
        produced_at_ms: 0,
        software: "0.1.0".into(),
        resources: Resources::default(),
        daemons,
        admin: Default::default(),
        migrations: Vec::new(),
    }
}

/// What a key holder who is not `summary.node` can put on the wire: the
/// summary signed with a key of its own.
fn forge(summary: &NodeSummary) -> SignedSummary {
    let key = EntityKeypair::generate();
    let body = postcard::to_stdvec(summary).unwrap();
    SignedSummary { owner: key.public(), signature: key.sign(&body), body }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversized_summaries_are_dropped_counted_and_harmless() {
    let cluster = Cluster::start_with_deadline(2, config(), DEADLINE).await.unwrap();
    let (a, b) = (cluster.nth(0).unwrap(), cluster.nth(1).unwrap());
    let (d, health) = settable("honest#replica");
    let handle = b.register_daemon(d, EntityKeypair::generate()).unwrap();
    let honest = handle.id();
    assert!(wait_snapshot(a, |s| s.daemon(honest).is_some_and(|d| d.node == b.node_id())).await);

    let evil = |reason: &str| DaemonHealth::Unhealthy { reason: reason.to_owned() };
    let bogus = [
        // A health reason that would move a terminal's cursor.
        forged(b.node_id(), vec![daemon_summary(1, "bogus-1", evil("\x1b[2J\x1b[Hpwned"))]),
        // A health reason far above the cap.
        forged(b.node_id(), vec![daemon_summary(2, "bogus-2", evil(&"x".repeat(100_000)))]),
        // A third node with a control character in a daemon name.
        forged(NodeId(0xdead), vec![daemon_summary(3, "bad\nname", DaemonHealth::Healthy)]),
    ];
    let mut messages: Vec<Vec<u8>> =
        bogus.iter().map(|s| FoldMessage::Summaries(vec![forge(s)]).encode()).collect();
    // A good summary riding along with a bad one does not get in either.
    let good_rider =
        forged(NodeId(0xbeef), vec![daemon_summary(4, "rider", DaemonHealth::Healthy)]);
    messages.push(FoldMessage::Summaries(vec![forge(&good_rider), forge(&bogus[0])]).encode());
    messages.push(vec![0xff; 100]); // does not parse
    messages.push(vec![1; MAX_FOLD_MESSAGE + 1]); // oversized (fragmented on the way)

    let before = a.metrics().dropped.malformed;
    for bytes in &messages {
        b.send(a.node_id(), FOLD_KIND, bytes).await.unwrap();
    }
    let want = before + messages.len() as u64;
    let counted = cluster.wait_for(DEADLINE, |_| a.metrics().dropped.malformed >= want).await;
    assert!(counted, "malformed {} < {want}: {:?}", a.metrics().dropped.malformed, a.metrics());

    // Nothing of them reached the fold.
    let snap = a.snapshot();
    for id in 1..=4 {
        assert!(snap.daemon(OriginHash(id)).is_none(), "bogus daemon {id} in the snapshot");
    }
    assert!(snap.daemons.iter().all(|d| d.node != NodeId(0xdead) && d.node != NodeId(0xbeef)));
    assert!(snap.daemon(honest).is_some_and(|d| d.health == DaemonHealth::Healthy));

    // And b's real news still gets through (its stamp was not hijacked).
    let degraded = DaemonHealth::Degraded { reason: "after the attack".into() };
    *health.lock() = degraded.clone();
    assert!(wait_snapshot(a, |s| s.daemon(honest).is_some_and(|d| d.health == degraded)).await);
    assert!(a.peers().iter().all(|p| p.health.is_healthy()));
    drop(handle);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_nodes_daemons_are_forgotten_everywhere_after_forget_after() {
    let forget_after = Duration::from_secs(2);
    let mut cfg = config();
    cfg.timing.forget_after = forget_after;
    let gossip = cfg.timing.gossip_interval;
    let mut cluster = Cluster::start_with_deadline(3, cfg, DEADLINE).await.unwrap();
    let (keeper, _) = settable("keeper");
    let keeper =
        cluster.nth(0).unwrap().register_daemon(keeper, EntityKeypair::generate()).unwrap();
    let (doomed, doomed_health) = settable("doomed#standby");
    let doomed =
        cluster.nth(2).unwrap().register_daemon(doomed, EntityKeypair::generate()).unwrap();
    let (keeper_id, doomed_id) = (keeper.id(), doomed.id());
    for i in [0, 1] {
        let node = cluster.nth(i).unwrap();
        assert!(
            wait_snapshot(node, |s| s.daemon(doomed_id).is_some() && s.daemon(keeper_id).is_some())
                .await
        );
    }

    // Fresh news from node 2 just before it dies: the forget clock runs from the
    // last change of a node's summary, so it starts no earlier than this.
    let last_news = Instant::now();
    let news = DaemonHealth::Degraded { reason: "last words".into() };
    *doomed_health.lock() = news.clone();
    for i in [0, 1] {
        let node = cluster.nth(i).unwrap();
        assert!(
            wait_snapshot(node, |s| s.daemon(doomed_id).is_some_and(|d| d.health == news)).await
        );
    }
    let dead = cluster.identity(2).unwrap().node_id();
    cluster.kill(2).unwrap();
    // First its daemons are shown with the node's health...
    for i in [0, 1] {
        let node = cluster.nth(i).unwrap();
        let shown = wait_snapshot(node, |s| {
            s.daemon(doomed_id).is_some_and(|d| d.node == dead && d.node_health.is_unreachable())
        })
        .await;
        assert!(shown, "node {i}: the dead node's daemon must show it Unreachable first");
    }
    // ...then, after forget_after, they are removed from every snapshot.
    for i in [0, 1] {
        let node = cluster.nth(i).unwrap();
        assert!(
            wait_snapshot(node, |s| s.daemon(doomed_id).is_none()).await,
            "node {i} still lists the dead node's daemon"
        );
    }
    assert!(last_news.elapsed() >= forget_after, "forgotten before forget_after");
    // They stay gone: a peer that forgot later must not hand the summary back.
    // Watch for two more forget windows and digest rounds.
    let watch_until = Instant::now() + 2 * (forget_after + gossip);
    let mut receivers: Vec<_> =
        [0, 1].iter().map(|&i| cluster.nth(i).unwrap().subscribe()).collect();
    while Instant::now() < watch_until {
        for (i, rx) in receivers.iter_mut().enumerate() {
            let snap = rx.borrow_and_update().clone();
            assert!(snap.daemon(doomed_id).is_none(), "node {i}: the dead node's daemon came back");
            assert!(snap.daemon(keeper_id).is_some(), "node {i}: a live daemon was dropped");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    drop((keeper, doomed));
    cluster.shutdown().await;
}
