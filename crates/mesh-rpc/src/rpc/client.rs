//! The calling side: encode, register the pending call (with its deadline, which
//! the endpoint's sweeper enforces, see [`super::deadlines`]), send, wait,
//! decode; retries for idempotent calls; cancel on drop.
//!
//! Each attempt is a [`ClientCall`] guard: whichever way the attempt ends
//! (answered, timed out, failed to send, or its future dropped) the guard removes
//! the pending entry, tells the server to stop if it may still be working, and
//! records the call exactly once.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use mesh::NodeId;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::oneshot;

use super::{Finished, Inner, MAX_CLIENT_SERVICES, Outbox, Pending, Reply, ReplyOutcome, Rpc};
use crate::error::RpcError;
use crate::observer::{CallStatus, Side};
use crate::options::CallOptions;
use crate::stats::{DropCounters, ServiceCounters};
use crate::wire::{self, Coalescer, Header, RPC_KIND};

impl Rpc {
    /// Calls `service` on node `to` with `request` and waits for the response.
    ///
    /// Fails fast with [`RpcError::NoRoute`] or [`RpcError::Unreachable`] when the
    /// mesh cannot reach the node, with [`RpcError::TooLarge`] when the encoded
    /// request exceeds the limit (nothing is sent), and with
    /// [`RpcError::Timeout`] when no response comes within
    /// [`CallOptions::deadline`]. Dropping the returned future cancels the call:
    /// the server is told to stop the handler (best effort).
    ///
    /// Retryable failures are retried up to [`CallOptions::retries`] times, with
    /// a fresh request id each time, only when [`CallOptions::idempotent`] is set.
    pub async fn call<Req, Resp>(
        &self,
        to: NodeId,
        service: &str,
        request: &Req,
        options: CallOptions,
    ) -> Result<Resp, RpcError>
    where
        Req: Serialize + ?Sized,
        Resp: DeserializeOwned,
    {
        let inner = &self.inner;
        if let Err(reason) = wire::check_service_name(service) {
            return Err(RpcError::InvalidServiceName { name: service.to_owned(), reason });
        }
        if inner.mesh.is_closed() {
            return Err(RpcError::Shutdown);
        }
        let counters = inner.client_counters(service);
        let attempts = if options.idempotent { options.retries.saturating_add(1) } else { 1 };
        let deadline_us = u64::try_from(options.deadline.as_micros()).unwrap_or(u64::MAX);
        // One attempt: header and body go straight into one buffer. Several: the
        // body is encoded once and copied behind each attempt's header.
        let body = if attempts > 1 {
            Some(
                postcard::to_stdvec(request)
                    .map_err(|e| RpcError::Encode { what: "request", reason: e.to_string() })?,
            )
        } else {
            None
        };
        let mut backoff = options.retry_backoff;
        let mut attempt = 1;
        loop {
            let id = inner.next_id.fetch_add(1, Relaxed);
            let header = Header::Request { id, deadline_us, service };
            let message = match &body {
                Some(body) => wire::encode_raw(&header, body)?,
                None => wire::encode_into(&header, Some(request), Vec::with_capacity(64))?,
            };
            match inner.attempt(to, id, &message, options.deadline, &counters).await {
                Err(e) if attempt < attempts && e.is_retryable() => {
                    tracing::debug!(to = %to, service, error = %e, attempt, "retrying rpc");
                    tokio::time::sleep(backoff).await;
                    backoff = backoff.saturating_mul(2);
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
}

impl Inner {
    /// Forgets call `id` to `to` (remembering it was ours, so a late answer is
    /// told from a stray one) and tells the server to stop working on it.
    pub(super) fn abandon(self: &Arc<Self>, to: NodeId, id: u64) {
        self.abandoned.lock().insert(id);
        if let Ok(cancel) = wire::encode_raw(&Header::Cancel { id }, &[]) {
            self.send_detached(to, cancel);
        }
    }

    /// The client-side counters of `service` (interned on first use).
    fn client_counters(&self, service: &str) -> Arc<ServiceCounters> {
        if let Some(counters) = self.client_stats.read().get(service) {
            return counters.clone();
        }
        let mut stats = self.client_stats.write();
        if stats.len() >= MAX_CLIENT_SERVICES && !stats.contains_key(service) {
            // Past the cap the call still works; its counters are not kept.
            return Arc::new(ServiceCounters::new(Arc::from(service)));
        }
        stats
            .entry(Arc::from(service))
            .or_insert_with_key(|name| Arc::new(ServiceCounters::new(name.clone())))
            .clone()
    }

    /// One request/response exchange.
    async fn attempt<Resp: DeserializeOwned>(
        self: &Arc<Self>,
        to: NodeId,
        id: u64,
        message: &[u8],
        deadline: Duration,
        counters: &ServiceCounters,
    ) -> Result<Resp, RpcError> {
        let mut call = ClientCall {
            inner: self,
            to,
            id,
            counters,
            started: Instant::now(),
            request_bytes: message.len(),
            done: false,
        };
        let max = self.config.max_message;
        if message.len() > max {
            let error = RpcError::TooLarge { size: message.len(), max };
            call.finish(CallStatus::TooLarge, 0, false);
            return Err(error);
        }
        let (tx, rx) = oneshot::channel();
        let due = call.started.checked_add(deadline);
        let (busy, swept) = {
            let mut pending = self.pending.lock();
            pending.insert(id, Pending { tx, callee: to, deadline: due });
            let swept = self.deadlines.arm(Arc::downgrade(self), call.started, due);
            (pending.len() > 1, swept)
        };
        if busy && wire::batchable(message.len(), self.config.batch_bytes) {
            // Other calls are waiting: join a batch. A failure to send it comes
            // back through `rx` like a response.
            self.send_batched(to, id, message).await;
        } else if let Err(e) = self.mesh.send(to, RPC_KIND, message).await {
            let error = RpcError::from_send(e, to);
            call.finish(CallStatus::of(&error), 0, false);
            return Err(error);
        }
        // The sweeper enforces the deadline (see `deadlines`); only where it
        // cannot run does the call keep a timer of its own.
        let reply = if swept {
            rx.await
        } else {
            tokio::time::timeout(deadline, rx)
                .await
                .unwrap_or_else(|_| Ok(Reply::local(ReplyOutcome::TimedOut)))
        };
        let (result, response_bytes) = match reply {
            Ok(reply) => {
                let size = reply.size;
                (self.decode_reply(reply, to, &counters.name, call.started), size)
            }
            // The endpoint dropped our entry: it is going away.
            Err(_) => (Err(RpcError::Shutdown), 0),
        };
        let status = match &result {
            Ok(_) => CallStatus::Ok,
            Err(e) => CallStatus::of(e),
        };
        call.finish(status, response_bytes, true);
        result
    }

    fn decode_reply<Resp: DeserializeOwned>(
        &self,
        reply: Reply,
        to: NodeId,
        service: &str,
        started: Instant,
    ) -> Result<Resp, RpcError> {
        match reply.outcome {
            ReplyOutcome::Ok => postcard::from_bytes(&reply.body).map_err(|e| {
                DropCounters::bump(&self.drops.decode_failures);
                RpcError::Decode { what: "response body", reason: e.to_string() }
            }),
            ReplyOutcome::Failed { code, message } => Err(RpcError::Remote { code, message }),
            ReplyOutcome::NoSuchService => {
                Err(RpcError::NoSuchService { node: to, service: service.to_owned() })
            }
            ReplyOutcome::TooLarge { size, max } => Err(RpcError::TooLarge { size, max }),
            ReplyOutcome::Unreachable => Err(RpcError::Unreachable(to)),
            ReplyOutcome::TimedOut => Err(RpcError::Timeout { elapsed: started.elapsed() }),
            ReplyOutcome::Local(error) => Err(error),
        }
    }

    /// Adds a request to the node's outbox. The request that opens a batch
    /// flushes it, after yielding: tokio resumes a yielded task only once its
    /// worker has run every other task it can, so the requests those tasks make
    /// in the meantime ride along in the same datagram.
    async fn send_batched(self: &Arc<Self>, to: NodeId, id: u64, message: &[u8]) {
        let (full, opener) = {
            let mut outboxes = self.outbox.lock();
            let outbox = outboxes.entry(to).or_insert_with(|| Outbox {
                batch: Coalescer::new(self.config.batch_bytes),
                ids: Vec::new(),
            });
            let full = outbox.push(id, message.to_vec());
            (full, outbox.ids.len() == 1)
        };
        if let Some((batch, ids)) = full {
            self.send_batch(to, &batch, &ids).await;
        }
        if opener {
            let mut flush_on_drop = FlushOnDrop { inner: self, to, armed: true };
            tokio::task::yield_now().await;
            flush_on_drop.armed = false;
            if let Some((batch, ids)) = self.take_outbox(to) {
                self.send_batch(to, &batch, &ids).await;
            }
        }
    }

    fn take_outbox(&self, to: NodeId) -> Option<(Vec<u8>, Vec<u64>)> {
        let mut outbox = self.outbox.lock().remove(&to)?;
        Some((outbox.batch.take()?, outbox.ids))
    }

    /// Sends gathered requests; if that fails, their calls fail with the reason.
    async fn send_batch(&self, to: NodeId, batch: &[u8], ids: &[u64]) {
        if let Err(e) = self.mesh.send(to, RPC_KIND, batch).await {
            let error = RpcError::from_send(e, to);
            let failed: Vec<Pending> = {
                let mut pending = self.pending.lock();
                ids.iter().filter_map(|id| pending.remove(id)).collect()
            };
            for call in failed {
                let outcome = ReplyOutcome::Local(error.clone());
                let _ = call.tx.send(Reply::local(outcome));
            }
        }
    }
}

/// Flushes a node's outbox if the request that was to flush it is dropped while
/// it waits for its turn, so the other gathered requests still go out.
struct FlushOnDrop<'a> {
    inner: &'a Arc<Inner>,
    to: NodeId,
    armed: bool,
}

impl Drop for FlushOnDrop<'_> {
    fn drop(&mut self) {
        if self.armed {
            if let Some((batch, _)) = self.inner.take_outbox(self.to) {
                self.inner.send_detached(self.to, batch);
            }
        }
    }
}

/// One attempt in flight; see the module docs.
struct ClientCall<'a> {
    inner: &'a Arc<Inner>,
    to: NodeId,
    id: u64,
    counters: &'a ServiceCounters,
    started: Instant,
    request_bytes: usize,
    done: bool,
}

impl ClientCall<'_> {
    /// Ends the attempt: if the request went out and no response came, forget
    /// the id (remembering it was ours) and send a Cancel; then record.
    fn finish(&mut self, status: CallStatus, response_bytes: usize, sent: bool) {
        self.done = true;
        let unanswered = self.inner.pending.lock().remove(&self.id).is_some();
        if unanswered && sent {
            self.abandon();
        }
        self.record(status, response_bytes);
    }

    fn abandon(&self) {
        self.inner.abandon(self.to, self.id);
    }

    /// Counts the attempt and tells the observers.
    fn record(&self, status: CallStatus, response_bytes: usize) {
        let call = Finished {
            side: Side::Client,
            caller: self.inner.node_id,
            callee: self.to,
            started: self.started,
            status,
            request_bytes: self.request_bytes,
            response_bytes,
            request_id: self.id,
        };
        self.inner.finish_record(self.counters, call);
    }
}

impl Drop for ClientCall<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        // The caller dropped the call future mid-flight.
        if self.inner.pending.lock().remove(&self.id).is_some() {
            self.abandon();
        }
        self.record(CallStatus::Cancelled, 0);
    }
}
