//! Replayed transport datagrams on the real receive path: a small UDP relay sits
//! between two nodes and sends every transport datagram from b to a twice (once
//! at once, once again later). The copies are dropped and counted under
//! `dropped.replay`; every message is delivered exactly once and the session
//! stays healthy.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use mesh::{ClusterKey, MeshConfig, MeshNode, MessageKind};
use tokio::net::UdpSocket;

const DEADLINE: Duration = Duration::from_secs(30);
const KIND: MessageKind = MessageKind::named("tests/replay/v1");
/// Wire version and packet type of a transport datagram (see `mesh::wire`).
const TRANSPORT: [u8; 2] = [mesh::wire::WIRE_VERSION, 4];

fn config() -> MeshConfig {
    MeshConfig::new(ClusterKey::from_bytes([5; 32]))
}

/// Forwards between `a` and whoever else writes to it (b); transport datagrams
/// towards `a` are sent twice. Returns its address and the number of copies sent.
async fn duplicating_relay(a: SocketAddr) -> (SocketAddr, Arc<AtomicU64>) {
    let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let addr = socket.local_addr().unwrap();
    let copies = Arc::new(AtomicU64::new(0));
    let counted = copies.clone();
    let (late_tx, mut late_rx) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
    // Late copies: replayed well after the original, behind newer packets.
    let late_socket = socket.clone();
    tokio::spawn(async move {
        while let Some(datagram) = late_rx.recv().await {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let _ = late_socket.send_to(&datagram, a).await;
        }
    });
    tokio::spawn(async move {
        let mut b: Option<SocketAddr> = None;
        let mut buf = vec![0u8; 65_536];
        let mut n_transport = 0u64;
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            let datagram = &buf[..n];
            if from == a {
                if let Some(b) = b {
                    let _ = socket.send_to(datagram, b).await;
                }
                continue;
            }
            b = Some(from);
            let _ = socket.send_to(datagram, a).await;
            if datagram.starts_with(&TRANSPORT) {
                n_transport += 1;
                // Every transport datagram again at once; every other one also later.
                let _ = socket.send_to(datagram, a).await;
                counted.fetch_add(1, Ordering::Relaxed);
                if n_transport % 2 == 0 && late_tx.send(datagram.to_vec()).is_ok() {
                    counted.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    });
    (addr, copies)
}

async fn wait_until(mut condition: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while tokio::time::Instant::now() < deadline {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    condition()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_transport_datagrams_are_dropped_and_counted() {
    let a = MeshNode::start(config()).await.unwrap();
    let (relay, copies) = duplicating_relay(a.local_addr()).await;
    let b = MeshNode::start(config().seed(relay.to_string())).await.unwrap();
    let (a_id, b_id) = (a.node_id(), b.node_id());
    let joined = wait_until(|| {
        a.peers().iter().any(|p| p.node_id == b_id && p.health.is_healthy())
            && b.peers().iter().any(|p| p.node_id == a_id && p.health.is_healthy())
    })
    .await;
    assert!(joined, "a {:?}, b {:?}", a.peers(), b.peers());
    // a has a session with b (through the relay: b dialled a there).
    assert!(a.peers().iter().any(|p| p.node_id == b_id && p.sessions > 0));

    let mut inbox = a.subscribe_messages(KIND).unwrap();
    const MESSAGES: u32 = 40;
    for i in 0..MESSAGES {
        b.send(a_id, KIND, &i.to_le_bytes()).await.unwrap();
    }
    // A fragmented one: each of its pieces is replayed too.
    b.send(a_id, KIND, &vec![7u8; 5000]).await.unwrap();

    let mut got = Vec::new();
    while got.len() < MESSAGES as usize + 1 {
        let m = tokio::time::timeout(DEADLINE, inbox.recv()).await.unwrap().unwrap();
        assert_eq!(m.from, b_id);
        got.push(m.payload);
    }
    // Every copy the relay sent is counted as a replay (loopback loses nothing),
    // and nothing was delivered twice.
    let all_counted =
        wait_until(|| a.metrics().dropped.replay >= copies.load(Ordering::Relaxed)).await;
    let metrics = a.metrics();
    assert!(
        all_counted,
        "replays {} < copies {}: {metrics:?}",
        metrics.dropped.replay,
        copies.load(Ordering::Relaxed)
    );
    assert!(metrics.dropped.replay >= u64::from(MESSAGES), "{metrics:?}");
    assert!(inbox.try_recv().is_none(), "a replayed message was delivered again");
    let mut small: Vec<u32> = got
        .iter()
        .filter(|p| p.len() == 4)
        .map(|p| u32::from_le_bytes([p[0], p[1], p[2], p[3]]))
        .collect();
    small.sort_unstable();
    assert_eq!(small, (0..MESSAGES).collect::<Vec<_>>(), "each message exactly once");
    assert!(got.iter().any(|p| p.len() == 5000 && p.iter().all(|&x| x == 7)));
    // Replays are not mistaken for forgeries, and the session is undisturbed.
    assert_eq!(metrics.dropped.not_authenticated, 0, "{metrics:?}");
    assert!(a.peers().iter().all(|p| p.health.is_healthy()));
    assert_eq!(b.metrics().dropped.replay, 0);
    a.shutdown().await;
    b.shutdown().await;
}
