//! The node's two network tasks: the receive loop and the maintenance tick.

use super::*;

/// The node's stop signal as one task loop sees it: [`Stop::wait`] resolves
/// once the node is stopping, also for a stop sent before the task first ran
/// (which a bare `changed()` would miss). Cancel-safe, for `select!`.
pub(super) struct Stop(tokio::sync::watch::Receiver<bool>);

impl Stop {
    pub(super) fn of(inner: &Inner) -> Self {
        Self(inner.stop.subscribe())
    }

    pub(super) async fn wait(&mut self) {
        while !*self.0.borrow_and_update() {
            if self.0.changed().await.is_err() {
                return;
            }
        }
    }
}

pub(super) async fn recv_loop(inner: Arc<Inner>) {
    let mut stop = Stop::of(&inner);
    let mut buf = vec![0u8; 65_536];
    let mut scratch = vec![0u8; 65_536];
    // One stop future for the task's life (not one per datagram).
    let stopped = stop.wait();
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
    let mut stop = Stop::of(&inner);
    // Four ticks a probe round: indirect probes, round ends and handshake
    // retries land within a quarter round of when they are due.
    let period = (inner.config.timing.probe_interval / 4).max(Duration::from_millis(5));
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            () = stop.wait() => break,
            _ = interval.tick() => inner.tick(),
        }
    }
}
