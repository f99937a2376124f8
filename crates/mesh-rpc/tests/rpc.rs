//! Calls between real nodes on 127.0.0.1: round trips, concurrency, deadlines and
//! cancellation, unknown services, dead nodes, panicking handlers, observers,
//! registration, size limits and hostile messages.
//!
//! Deadlines are generous (the machine may be loaded); the speed figures live in
//! `cargo bench -p mesh-rpc --bench rpc_echo`, not here.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::SeqCst};
use std::time::{Duration, Instant};

use mesh::testing::Cluster;
use mesh::{ClusterKey, MeshConfig};
use mesh_rpc::wire::{self, Header, Outcome, RPC_KIND};
use mesh_rpc::{
    CallOptions, CallRecord, CallStatus, RpcConfig, RpcError, RpcStatus, ServeOptions, Side,
    StatusCode,
};
use mesh_rpc::{Rpc, RpcObserver};
use parking_lot::Mutex;

const DEADLINE: Duration = Duration::from_secs(30);

fn config() -> MeshConfig {
    MeshConfig::new(ClusterKey::from_bytes([17; 32]))
}

fn patient() -> CallOptions {
    CallOptions::default().deadline(DEADLINE)
}

async fn cluster(n: usize) -> Cluster {
    Cluster::start_with_deadline(n, config(), DEADLINE).await.unwrap()
}

fn endpoints(cluster: &Cluster) -> (Rpc, Rpc) {
    (Rpc::new(cluster.nth(0).unwrap()).unwrap(), Rpc::new(cluster.nth(1).unwrap()).unwrap())
}

/// Sets its flag when dropped: shows that a handler's future was dropped.
struct SetOnDrop(Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, SeqCst);
    }
}

/// Serves `name` with a handler that never finishes on its own.
fn serve_forever(rpc: &Rpc, name: &str, dropped: Arc<AtomicBool>) -> mesh_rpc::ServeHandle {
    rpc.serve(name, move |_: (), _ctx| {
        let guard = SetOnDrop(dropped.clone());
        async move {
            let _guard = guard;
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok::<(), RpcStatus>(())
        }
    })
    .unwrap()
}

fn serve_echo(rpc: &Rpc) -> mesh_rpc::ServeHandle {
    rpc.serve("echo", |req: Vec<u8>, _ctx| async move { Ok::<_, RpcStatus>(req) }).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_round_trip_with_caller_identity() {
    let cluster = cluster(2).await;
    let (a, b) = endpoints(&cluster);
    let _echo = serve_echo(&b);
    let _who = b
        .serve("whoami", |(): (), ctx| async move {
            Ok::<_, RpcStatus>((ctx.caller(), ctx.service().to_owned()))
        })
        .unwrap();
    assert_eq!(b.services(), vec!["echo".to_owned(), "whoami".to_owned()]);

    let reply: Vec<u8> = a.call(b.node_id(), "echo", &b"hello mesh"[..], patient()).await.unwrap();
    assert_eq!(reply, &b"hello mesh"[..]);
    let (caller, service): (mesh::NodeId, String) =
        a.call(b.node_id(), "whoami", &(), patient()).await.unwrap();
    assert_eq!(caller, a.node_id());
    assert_eq!(service, "whoami");

    // A payload that needs fragmentation, through a handler that waits first (so
    // it runs on its own task).
    let _slow = b
        .serve("slow-echo", |req: Vec<u8>, _ctx| async move {
            tokio::time::sleep(Duration::from_millis(5)).await;
            Ok::<_, RpcStatus>(req)
        })
        .unwrap();
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let reply: Vec<u8> = a.call(b.node_id(), "slow-echo", &big, patient()).await.unwrap();
    assert!(reply == big);

    let stats = a.stats();
    assert_eq!(stats.pending_calls, 0);
    let echo = stats.services.iter().find(|s| s.service == "echo" && s.side == Side::Client);
    let echo = echo.expect("client stats for echo");
    assert_eq!((echo.calls, echo.errors), (1, 0));
    assert!(echo.p50.is_some() && echo.p99 >= echo.p50);
}

/// 1,000 calls started at once, half to a handler that answers inline and half
/// to one on its own task; returns how many mesh messages the caller sent.
async fn thousand_concurrent_calls(config: RpcConfig) -> u64 {
    let cluster = cluster(2).await;
    let a = Rpc::with_config(cluster.nth(0).unwrap().handle(), config.clone()).unwrap();
    let b = Rpc::with_config(cluster.nth(1).unwrap().handle(), config).unwrap();
    let _double =
        b.serve("double", |x: u64, _ctx| async move { Ok::<_, RpcStatus>(x * 2) }).unwrap();
    let _spawned = b
        .serve_with("double-spawned", ServeOptions::spawned(), |x: u64, _ctx| async move {
            Ok::<_, RpcStatus>(x * 2)
        })
        .unwrap();
    let target = b.node_id();
    let sent_before = a.mesh().metrics().messages_out;
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..1000u64 {
        let a = a.clone();
        let service = if i % 2 == 0 { "double" } else { "double-spawned" };
        calls.spawn(async move { (i, a.call::<u64, u64>(target, service, &i, patient()).await) });
    }
    let mut answered = 0;
    while let Some(joined) = calls.join_next().await {
        let (i, result) = joined.unwrap();
        assert_eq!(result.unwrap(), i * 2);
        answered += 1;
    }
    assert_eq!(answered, 1000);
    assert_eq!(a.stats().pending_calls, 0);
    let served: u64 = b.stats().services.iter().map(|s| s.calls).sum();
    assert_eq!(served, 1000);
    let client: u64 = a.stats().services.iter().map(|s| s.calls).sum();
    assert_eq!(client, 1000);
    a.mesh().metrics().messages_out - sent_before
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_calls_are_all_answered_in_batches() {
    let sent = thousand_concurrent_calls(RpcConfig::default()).await;
    // Requests started while others wait are coalesced.
    assert!(sent < 900, "{sent} messages for 1000 calls");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_calls_are_all_answered_without_batching() {
    let sent =
        thousand_concurrent_calls(RpcConfig { batch_bytes: 0, ..RpcConfig::default() }).await;
    // One message per call (the mesh may send a few of its own).
    assert!(sent >= 1000, "{sent}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadline_expiry_times_out_and_stops_the_handler() {
    let cluster = cluster(2).await;
    let (a, b) = endpoints(&cluster);
    let dropped = Arc::new(AtomicBool::new(false));
    let _forever = serve_forever(&b, "forever", dropped.clone());

    let started = Instant::now();
    let opts = CallOptions::default().deadline(Duration::from_millis(300));
    let err = a.call::<(), ()>(b.node_id(), "forever", &(), opts).await.unwrap_err();
    assert!(
        matches!(err, RpcError::Timeout { elapsed } if elapsed >= Duration::from_millis(300)),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(a.stats().pending_calls, 0, "a timed-out call leaves no entry");
    assert!(cluster.wait_for(DEADLINE, |_| dropped.load(SeqCst)).await, "handler never dropped");
    assert!(cluster.wait_for(DEADLINE, |_| b.stats().running_handlers == 0).await);
    let client = a.stats().services.into_iter().find(|s| s.service == "forever").unwrap();
    assert_eq!((client.calls, client.errors, client.timeouts), (1, 1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_deadline_behind_a_long_one_still_times_out() {
    let cluster = cluster(2).await;
    let (a, b) = endpoints(&cluster);
    let _forever = serve_forever(&b, "forever", Arc::new(AtomicBool::new(false)));
    let to = b.node_id();
    // A patient call in flight: the endpoint's deadline sweeper sleeps towards
    // its deadline, 30 s away...
    let patient_caller = a.clone();
    let long =
        tokio::spawn(
            async move { patient_caller.call::<(), ()>(to, "forever", &(), patient()).await },
        );
    assert!(cluster.wait_for(DEADLINE, |_| a.stats().pending_calls == 1).await);
    // ...so each shorter call must wake it, and time out long before that.
    for ms in [300, 50, 500] {
        let opts = CallOptions::default().deadline(Duration::from_millis(ms));
        let call = a.call::<(), ()>(to, "forever", &(), opts);
        let err = tokio::time::timeout(Duration::from_secs(20), call)
            .await
            .unwrap_or_else(|_| panic!("the {ms} ms call waited for the 30 s one"))
            .unwrap_err();
        assert!(
            matches!(err, RpcError::Timeout { elapsed } if elapsed >= Duration::from_millis(ms)),
            "{err}"
        );
    }
    assert_eq!(a.stats().pending_calls, 1, "the patient call is still waiting");
    long.abort();
}

/// Deadlines hold for an endpoint made outside any runtime and called from
/// runtimes that come and go (the deadline sweeper lives on the caller's
/// runtime and is started again when that runtime is gone).
#[test]
fn deadlines_hold_across_runtimes() {
    let nodes =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let cluster = nodes.block_on(cluster(2));
    let (a, b) = endpoints(&cluster);
    let _forever = serve_forever(&b, "forever", Arc::new(AtomicBool::new(false)));
    let to = b.node_id();
    let short = || CallOptions::default().deadline(Duration::from_millis(200));
    for round in 0..3 {
        let caller = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        caller.block_on(async {
            // A patient call left waiting when this runtime goes away.
            let patient_caller = a.clone();
            let long = tokio::spawn(async move {
                patient_caller.call::<(), ()>(to, "forever", &(), patient()).await
            });
            tokio::task::yield_now().await;
            let call = a.call::<(), ()>(to, "forever", &(), short());
            let err = tokio::time::timeout(Duration::from_secs(20), call)
                .await
                .unwrap_or_else(|_| panic!("round {round}: the call outlived its deadline"))
                .unwrap_err();
            assert!(matches!(err, RpcError::Timeout { .. }), "round {round}: {err}");
            drop(long);
        });
        drop(caller);
    }
    nodes.block_on(async move {
        let mut cluster = cluster;
        cluster.shutdown().await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_call_cancels_the_handler() {
    let cluster = cluster(2).await;
    let (a, b) = endpoints(&cluster);
    let dropped = Arc::new(AtomicBool::new(false));
    let _forever = serve_forever(&b, "forever", dropped.clone());
    assert!(b.stats().running_handlers == 0);

    // The call itself would wait 30 s; the outer timeout drops it much earlier.
    let call = a.call::<(), ()>(b.node_id(), "forever", &(), patient());
    assert!(tokio::time::timeout(Duration::from_millis(300), call).await.is_err());
    assert_eq!(a.stats().pending_calls, 0, "a dropped call leaves no entry");
    assert!(cluster.wait_for(DEADLINE, |_| dropped.load(SeqCst)).await, "handler never dropped");
    assert!(cluster.wait_for(DEADLINE, |_| b.stats().running_handlers == 0).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_service_is_no_such_service() {
    let cluster = cluster(2).await;
    let (a, b) = endpoints(&cluster);
    let err = a.call::<_, ()>(b.node_id(), "nope", &1u8, patient()).await.unwrap_err();
    assert_eq!(err, RpcError::NoSuchService { node: b.node_id(), service: "nope".into() });
    let bad = a.call::<_, ()>(b.node_id(), "", &1u8, patient()).await.unwrap_err();
    assert!(matches!(bad, RpcError::InvalidServiceName { .. }), "{bad}");
    let unknown = a.call::<_, ()>(mesh::NodeId(42), "echo", &1u8, patient()).await.unwrap_err();
    assert_eq!(unknown, RpcError::NoRoute(mesh::NodeId(42)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_to_a_killed_node_fail_fast_with_unreachable() {
    let mut cluster = cluster(2).await;
    let (a, b) = endpoints(&cluster);
    let _echo = serve_echo(&b);
    let dropped = Arc::new(AtomicBool::new(false));
    let _forever = serve_forever(&b, "forever", dropped);
    let victim = b.node_id();
    let _: Vec<u8> = a.call(victim, "echo", &b"alive"[..], patient()).await.unwrap();

    // A call in flight when the node dies fails once the mesh marks it
    // Unreachable, long before its own deadline.
    let in_flight = {
        let a = a.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            (a.call::<(), ()>(victim, "forever", &(), patient()).await, started.elapsed())
        })
    };
    assert!(cluster.wait_for(DEADLINE, |_| a.stats().pending_calls == 1).await);
    cluster.kill(1).unwrap();
    let (result, waited) = in_flight.await.unwrap();
    assert_eq!(result, Err(RpcError::Unreachable(victim)));
    assert!(waited < DEADLINE / 2, "waited {waited:?}");

    // New calls fail at once, without sending, once the mesh's send path agrees
    // (its route flag can trail `peers()` by one maintenance tick).
    let probe = mesh::MessageKind::named("tests/unused/v1");
    let give_up = Instant::now() + DEADLINE;
    while !matches!(a.mesh().send(victim, probe, &[]).await, Err(mesh::SendError::Unreachable(_))) {
        assert!(Instant::now() < give_up, "the mesh never refused to send to the dead node");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let started = Instant::now();
    let err = a.call::<_, Vec<u8>>(victim, "echo", &b"dead?"[..], patient()).await.unwrap_err();
    assert_eq!(err, RpcError::Unreachable(victim));
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
    assert_eq!(a.stats().pending_calls, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_gives_internal_and_the_service_keeps_serving() {
    let cluster = cluster(2).await;
    let (a, b) = endpoints(&cluster);
    let _boom = b
        .serve("boom", |x: u32, _ctx| async move {
            match x {
                0 => panic!("boom before any await"),
                1 => {
                    tokio::task::yield_now().await;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    panic!("boom on the handler's own task")
                }
                _ => Ok::<_, RpcStatus>(x + 1),
            }
        })
        .unwrap();
    for x in [0u32, 1] {
        let err = a.call::<_, u32>(b.node_id(), "boom", &x, patient()).await.unwrap_err();
        match err {
            RpcError::Remote { code: StatusCode::Internal, message } => {
                assert!(message.contains("boom"), "{message}")
            }
            other => panic!("expected remote internal, got {other}"),
        }
        assert_eq!(a.call::<_, u32>(b.node_id(), "boom", &7u32, patient()).await.unwrap(), 8);
    }
    let served = b.stats().services.into_iter().find(|s| s.service == "boom").unwrap();
    assert_eq!((served.calls, served.errors), (4, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handler_errors_and_type_mismatches_are_typed() {
    let cluster = cluster(2).await;
    let (a, b) = endpoints(&cluster);
    let _picky = b
        .serve("picky", |x: (u64, u64, u64), _ctx| async move {
            if x.0 == 0 { Err(RpcStatus::not_found("nothing at zero")) } else { Ok(x) }
        })
        .unwrap();
    let err = a.call::<_, (u64, u64, u64)>(b.node_id(), "picky", &(0u64, 1u64, 2u64), patient());
    assert_eq!(
        err.await.unwrap_err(),
        RpcError::Remote { code: StatusCode::NotFound, message: "nothing at zero".into() }
    );
    // The server cannot decode an empty body as three integers.
    let err = a.call::<_, (u64, u64, u64)>(b.node_id(), "picky", &(), patient()).await;
    assert!(
        matches!(err, Err(RpcError::Remote { code: StatusCode::InvalidArgument, .. })),
        "{err:?}"
    );
    // The caller cannot decode three integers as a four-tuple of strings.
    let err = a.call::<_, (String, String, String, String)>(
        b.node_id(),
        "picky",
        &(1u64, 2u64, 3u64),
        patient(),
    );
    assert!(matches!(err.await, Err(RpcError::Decode { .. })));
    assert!(b.stats().drops.decode_failures >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observers_see_one_record_per_side_with_matching_sizes() {
    let cluster = cluster(2).await;
    let (a, b) = endpoints(&cluster);
    let _echo = serve_echo(&b);
    let records: Arc<Mutex<Vec<CallRecord>>> = Arc::default();
    let sink = records.clone();
    let observer: Arc<dyn RpcObserver> =
        Arc::new(move |r: &CallRecord| sink.lock().push(r.clone()));
    let id_a = a.add_observer(observer.clone());
    b.add_observer(observer);

    let sizes = [0usize, 1, 100, 5000];
    for n in sizes {
        let _: Vec<u8> = a.call(b.node_id(), "echo", &vec![7u8; n], patient()).await.unwrap();
    }
    let all = cluster.wait_for(DEADLINE, |_| records.lock().len() >= 2 * sizes.len()).await;
    assert!(all, "records: {:?}", records.lock());
    let records = records.lock().clone();
    assert_eq!(records.len(), 2 * sizes.len());
    let mut ids: Vec<u64> = records.iter().map(|r| r.request_id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), sizes.len());
    for id in ids {
        let client: Vec<_> =
            records.iter().filter(|r| r.request_id == id && r.side == Side::Client).collect();
        let server: Vec<_> =
            records.iter().filter(|r| r.request_id == id && r.side == Side::Server).collect();
        assert_eq!((client.len(), server.len()), (1, 1), "request {id}");
        let (c, s) = (client[0], server[0]);
        assert_eq!((c.caller, c.callee), (a.node_id(), b.node_id()));
        assert_eq!((s.caller, s.callee), (a.node_id(), b.node_id()));
        assert_eq!((c.status, s.status), (CallStatus::Ok, CallStatus::Ok));
        assert_eq!(&*c.service, "echo");
        assert_eq!(c.request_bytes, s.request_bytes);
        assert_eq!(c.response_bytes, s.response_bytes);
        assert!(c.request_bytes > 0 && c.response_bytes > 0);
        assert!(c.latency >= s.latency);
    }
    assert!(a.remove_observer(id_a));
    assert!(!a.remove_observer(id_a));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registering_twice_errors_and_dropping_the_handle_unregisters() {
    let cluster = cluster(2).await;
    let (a, b) = endpoints(&cluster);
    let echo = serve_echo(&b);
    let again = b.serve("echo", |x: u8, _ctx| async move { Ok::<_, RpcStatus>(x) });
    assert_eq!(again.unwrap_err(), RpcError::AlreadyServing("echo".into()));
    // A second `Rpc::new` on the node is the same endpoint.
    let same = Rpc::new(cluster.nth(1).unwrap()).unwrap();
    assert!(same.serve("echo", |x: u8, _ctx| async move { Ok::<_, RpcStatus>(x) }).is_err());
    assert!(matches!(
        Rpc::with_config(
            same.mesh().clone(),
            RpcConfig { max_message: 10, ..RpcConfig::default() }
        ),
        Err(RpcError::ConfigConflict)
    ));

    let _: Vec<u8> = a.call(b.node_id(), "echo", &b"x"[..], patient()).await.unwrap();
    assert_eq!(echo.service(), "echo");
    drop(echo);
    assert!(b.services().is_empty());
    let err = a.call::<_, Vec<u8>>(b.node_id(), "echo", &b"x"[..], patient()).await.unwrap_err();
    assert!(matches!(err, RpcError::NoSuchService { .. }), "{err}");
    // The name is free again.
    let _echo = serve_echo(&b);
    let _: Vec<u8> = a.call(b.node_id(), "echo", &b"x"[..], patient()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_messages_are_refused_whole() {
    let cluster = cluster(3).await;
    // Nodes 0 and 1 keep the default 4 MiB limit; node 2 allows only 64 KiB, so
    // the receiving side's refusal is tested without pushing megabytes through
    // best-effort datagrams on a loaded machine.
    let small = 64 * 1024;
    let a = Rpc::new(cluster.nth(0).unwrap()).unwrap();
    let b = Rpc::new(cluster.nth(1).unwrap()).unwrap();
    let c = Rpc::with_config(
        cluster.nth(2).unwrap().handle(),
        RpcConfig { max_message: small, ..RpcConfig::default() },
    )
    .unwrap();
    let inflate = |n: u32, _ctx| async move { Ok::<_, RpcStatus>(vec![1u8; n as usize]) };
    let (_echo_a, _echo_c) = (serve_echo(&a), serve_echo(&c));
    let (_inflate_b, _inflate_c) =
        (b.serve("inflate", inflate).unwrap(), c.serve("inflate", inflate).unwrap());
    let limit = mesh_rpc::DEFAULT_MAX_MESSAGE;
    // On a starved machine the mesh may briefly mark a peer Unreachable or lose
    // one of many fragments; these calls are idempotent, so they retry such
    // failures (TooLarge is never retried, so the assertions keep their meaning).
    let robust =
        CallOptions::default().deadline(Duration::from_secs(10)).idempotent(true).retries(3);

    // Refused by the sender: nothing goes out.
    let started = Instant::now();
    let err = b.call::<_, Vec<u8>>(a.node_id(), "echo", &vec![0u8; limit], patient()).await;
    assert!(matches!(err, Err(RpcError::TooLarge { max, .. }) if max == limit), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    // A response over the server's limit is replaced by TooLarge.
    let err =
        a.call::<_, Vec<u8>>(b.node_id(), "inflate", &(limit as u32 + 1), robust.clone()).await;
    assert!(matches!(err, Err(RpcError::TooLarge { max, .. }) if max == limit), "{err:?}");
    // Refused by the receiver: 80 KiB from a node that allows it.
    let err =
        a.call::<_, Vec<u8>>(c.node_id(), "echo", &vec![0u8; 80 * 1024], robust.clone()).await;
    assert!(matches!(err, Err(RpcError::TooLarge { max, .. }) if max == small), "{err:?}");
    assert!(c.stats().drops.too_large >= 1);
    // A response just under the limit passes.
    let ok: Vec<u8> = a.call(c.node_id(), "inflate", &(small as u32 - 64), robust).await.unwrap();
    assert_eq!(ok.len(), small - 64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_and_stray_messages_are_counted_and_harmless() {
    let cluster = cluster(2).await;
    let (a, b) = endpoints(&cluster);
    let (mesh_a, mesh_b) = (a.mesh().clone(), b.mesh().clone());
    let dropped = Arc::new(AtomicBool::new(false));
    let _forever = serve_forever(&b, "forever", dropped);
    let _echo = serve_echo(&b);

    // Garbage under the RPC kind.
    for junk in [&[][..], &[0xff; 3][..], &[9, 9, 9, 9][..]] {
        mesh_a.send(b.node_id(), RPC_KIND, junk).await.unwrap();
    }
    assert!(cluster.wait_for(DEADLINE, |_| b.stats().drops.decode_failures >= 3).await);

    // Batches: a nested batch and a bad length are refused, the good items
    // before them are served.
    let good = wire::encode_raw(&Header::Cancel { id: 1 }, &[]).unwrap();
    let mut nested = wire::batch_header();
    wire::push_batch_item(&mut nested, &good);
    let mut batch = wire::batch_header();
    wire::push_batch_item(&mut batch, &good);
    wire::push_batch_item(&mut batch, &nested);
    batch.extend_from_slice(&[0x85]);
    let (cancels, failures) = (b.stats().drops.unmatched_cancels, b.stats().drops.decode_failures);
    mesh_a.send(b.node_id(), RPC_KIND, &batch).await.unwrap();
    assert!(
        cluster
            .wait_for(DEADLINE, |_| {
                let d = b.stats().drops;
                d.unmatched_cancels == cancels + 1 && d.decode_failures == failures + 2
            })
            .await,
        "{:?}",
        b.stats().drops
    );

    // A response nobody asked for.
    let stray =
        wire::encode_raw(&Header::Response { id: 12345, outcome: Outcome::Ok }, &[0]).unwrap();
    mesh_b.send(a.node_id(), RPC_KIND, &stray).await.unwrap();
    assert!(cluster.wait_for(DEADLINE, |_| a.stats().drops.unknown_request_id >= 1).await);

    // The same request id twice while the first is still running.
    let request = wire::encode_raw(
        &Header::Request { id: 777, deadline_us: 30_000_000, service: "forever" },
        &[],
    )
    .unwrap();
    mesh_a.send(b.node_id(), RPC_KIND, &request).await.unwrap();
    assert!(cluster.wait_for(DEADLINE, |_| b.stats().running_handlers == 1).await);
    mesh_a.send(b.node_id(), RPC_KIND, &request).await.unwrap();
    assert!(cluster.wait_for(DEADLINE, |_| b.stats().drops.duplicate_request_id == 1).await);
    let cancel = wire::encode_raw(&Header::Cancel { id: 777 }, &[]).unwrap();
    mesh_a.send(b.node_id(), RPC_KIND, &cancel).await.unwrap();
    assert!(cluster.wait_for(DEADLINE, |_| b.stats().running_handlers == 0).await);

    // A response arriving after the caller gave up.
    let ids: Arc<Mutex<Vec<u64>>> = Arc::default();
    let sink = ids.clone();
    a.add_observer(Arc::new(move |r: &CallRecord| sink.lock().push(r.request_id)));
    let opts = CallOptions::default().deadline(Duration::from_millis(100));
    let err = a.call::<(), ()>(b.node_id(), "forever", &(), opts).await.unwrap_err();
    assert!(matches!(err, RpcError::Timeout { .. }));
    let id = ids.lock()[0];
    let late = wire::encode_raw(&Header::Response { id, outcome: Outcome::Ok }, &[]).unwrap();
    mesh_b.send(a.node_id(), RPC_KIND, &late).await.unwrap();
    assert!(cluster.wait_for(DEADLINE, |_| a.stats().drops.late_responses == 1).await);

    // Everything still works.
    let reply: Vec<u8> = a.call(b.node_id(), "echo", &b"ok"[..], patient()).await.unwrap();
    assert_eq!(reply, &b"ok"[..]);
    assert_eq!(a.stats().pending_calls, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_idempotent_calls_are_retried() {
    let cluster = cluster(2).await;
    let (a, b) = endpoints(&cluster);
    let attempts = Arc::new(AtomicU32::new(0));
    let seen = attempts.clone();
    let _flaky = b
        .serve("flaky", move |(): (), _ctx| {
            let n = seen.fetch_add(1, SeqCst);
            async move { if n < 3 { Err(RpcStatus::unavailable("try again")) } else { Ok(n) } }
        })
        .unwrap();
    let once = CallOptions::default().deadline(DEADLINE).retries(3);
    let err = a.call::<_, u32>(b.node_id(), "flaky", &(), once).await.unwrap_err();
    assert!(matches!(err, RpcError::Remote { code: StatusCode::Unavailable, .. }));
    assert_eq!(attempts.load(SeqCst), 1);

    let retried = CallOptions::default().deadline(DEADLINE).idempotent(true).retries(3);
    assert_eq!(a.call::<_, u32>(b.node_id(), "flaky", &(), retried).await.unwrap(), 3);
    assert_eq!(attempts.load(SeqCst), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shut_down_node_refuses_with_shutdown() {
    let cluster = cluster(2).await;
    let (a, b) = endpoints(&cluster);
    cluster.nth(0).unwrap().shutdown().await;
    let err = a.call::<_, ()>(b.node_id(), "echo", &(), patient()).await.unwrap_err();
    assert_eq!(err, RpcError::Shutdown);
    assert!(matches!(Rpc::new(cluster.nth(0).unwrap()), Err(RpcError::Shutdown)));
}
