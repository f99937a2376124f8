//! The node's two network tasks: the receive loop and the maintenance tick.

use super::*;

pub(super) async fn recv_loop(inner: Arc<Inner>) {
    let mut stop = inner.stop.subscribe();
    let mut buf = vec![0u8; 65_536];
    let mut scratch = vec![0u8; 65_536];
    // One stop future for the task's life (not one per datagram); it also sees a
    // stop sent before this task first ran.
    let stopped = async move {
        while !*stop.borrow() {
            if stop.changed().await.is_err() {
                break;
            }
        }
    };
    tokio::pin!(stopped);
    loop {
        // The socket first: the stop future is polled only when no datagram is
        // waiting (at the latest when tokio's cooperative budget runs out, every
        // 128 datagrams), which keeps the per-datagram cost down.
        let received = std::future::poll_fn(|cx| match inner.net.poll_recv_from(cx, &mut buf) {
            Poll::Ready(result) => Poll::Ready(Some(result)),
            Poll::Pending => stopped.as_mut().poll(cx).map(|()| None),
        })
        .await;
        match received {
            None => break,
            Some(Ok((n, from))) => inner.handle_datagram(&buf[..n], from, &mut scratch),
            Some(Err(e)) => {
                // ICMP errors surface here on some platforms; keep serving.
                tracing::trace!(error = %e, "recv_from failed");
            }
        }
    }
}

pub(super) async fn tick_loop(inner: Arc<Inner>) {
    let mut stop = inner.stop.subscribe();
    // Four ticks a probe round: indirect probes, round ends and handshake
    // retries land within a quarter round of when they are due.
    let period = (inner.config.timing.probe_interval / 4).max(Duration::from_millis(5));
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // A stop sent before this task first ran is not a "change".
        if *stop.borrow() {
            break;
        }
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            _ = interval.tick() => inner.tick(),
        }
    }
}
