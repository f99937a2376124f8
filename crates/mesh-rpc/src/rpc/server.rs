//! The serving side: registering services, starting handlers on request,
//! deadlines, cancels, panics, and sending the response.
//!
//! A request is handled on the mesh receive task: find the service, decode the
//! body, create the handler's future and (by default) poll it once right there.
//! A handler that answers without waiting is done before the next datagram is
//! read: no task, no wake-up. One that waits moves to its own tokio task, bounded
//! by the caller's deadline and registered under (caller, request id) so a
//! Cancel can abort it.

use std::future::Future;
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use mesh::NodeId;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::task::AbortHandle;

use super::{Finished, Inner, Outgoing, Rpc};
use crate::error::RpcError;
use crate::inline::{CatchUnwind, Polled, panic_message, poll_once};
use crate::observer::{CallStatus, Side};
use crate::options::{HandlerStart, ServeOptions};
use crate::stats::{DropCounters, ServiceCounters};
use crate::status::{RpcStatus, StatusCode};
use crate::wire::{self, Header, Outcome};

/// What a handler learns about the call it serves.
#[derive(Clone, Debug)]
pub struct CallContext {
    caller: NodeId,
    request_id: u64,
    deadline: Instant,
    service: Arc<str>,
}

impl CallContext {
    /// The authenticated calling node.
    pub fn caller(&self) -> NodeId {
        self.caller
    }

    /// The caller's id for this request.
    pub fn request_id(&self) -> u64 {
        self.request_id
    }

    /// When the caller stops waiting (on this node's clock); the handler is
    /// stopped (its future dropped) at this instant.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Time left before the deadline.
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// The service called.
    pub fn service(&self) -> &str {
        &self.service
    }
}

/// Keeps a service registered; dropping it unregisters the service (new
/// requests get [`RpcError::NoSuchService`]; handlers already running finish).
#[must_use = "dropping the handle unregisters the service"]
pub struct ServeHandle {
    inner: Weak<Inner>,
    name: Arc<str>,
    slot_id: u64,
}

impl ServeHandle {
    /// The service name.
    pub fn service(&self) -> &str {
        &self.name
    }
}

impl std::fmt::Debug for ServeHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeHandle").field("service", &self.name).finish_non_exhaustive()
    }
}

impl Drop for ServeHandle {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.upgrade() {
            let mut services = inner.services.write();
            if services.get(&self.name).is_some_and(|slot| slot.id == self.slot_id) {
                services.remove(&self.name);
            }
        }
    }
}

/// A registered service.
pub(crate) struct ServiceSlot {
    id: u64,
    pub(crate) counters: ServiceCounters,
    handler: Box<dyn ErasedHandler>,
}

/// A typed handler behind a uniform interface.
trait ErasedHandler: Send + Sync {
    /// Decodes the request and starts the handler; an answer ready at once goes
    /// to `out`.
    fn start(&self, rpc: &Arc<Inner>, call: CallMeta, body: Bytes, out: &mut Outgoing);
}

/// What the server keeps about a call it is serving.
pub(crate) struct CallMeta {
    from: NodeId,
    id: u64,
    received: Instant,
    deadline: Instant,
    request_bytes: usize,
    slot: Arc<ServiceSlot>,
}

/// A handler running on its own task. Whoever removes the entry from
/// `Inner::running` (the task when it finishes, or a Cancel) owns the call's
/// ending: the response and the record.
pub(crate) struct Running {
    call: CallMeta,
    abort: Option<AbortHandle>,
}

impl Running {
    pub(crate) fn abort(&self) {
        if let Some(abort) = &self.abort {
            abort.abort();
        }
    }
}

/// How a served call ended.
enum Ending<Resp> {
    Handler(Result<Resp, RpcStatus>),
    BadRequest(String),
    Panicked(String),
    Timeout,
}

struct Typed<Req, Resp, F> {
    handler: F,
    start: HandlerStart,
    _types: PhantomData<fn(Req) -> Resp>,
}

impl<Req, Resp, F, Fut> ErasedHandler for Typed<Req, Resp, F>
where
    Req: DeserializeOwned + Send + 'static,
    Resp: Serialize + Send + 'static,
    F: Fn(Req, CallContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Resp, RpcStatus>> + Send + 'static,
{
    fn start(&self, rpc: &Arc<Inner>, call: CallMeta, body: Bytes, out: &mut Outgoing) {
        let request: Req = match postcard::from_bytes(&body) {
            Ok(request) => request,
            Err(e) => {
                DropCounters::bump(&rpc.drops.decode_failures);
                rpc.finish_server::<Resp>(&call, Ending::BadRequest(e.to_string()), Some(out));
                return;
            }
        };
        drop(body);
        let ctx = CallContext {
            caller: call.from,
            request_id: call.id,
            deadline: call.deadline,
            service: call.slot.counters.name.clone(),
        };
        let future = match catch_unwind(AssertUnwindSafe(|| (self.handler)(request, ctx))) {
            Ok(future) => future,
            Err(payload) => {
                let message = panic_message(payload.as_ref());
                rpc.finish_server::<Resp>(&call, Ending::Panicked(message), Some(out));
                return;
            }
        };
        let mut future = Box::pin(future);
        if self.start == HandlerStart::Inline {
            match poll_once(future.as_mut()) {
                Polled::Ready(result) => {
                    rpc.finish_server(&call, Ending::Handler(result), Some(out));
                    return;
                }
                Polled::Panicked(message) => {
                    rpc.finish_server::<Resp>(&call, Ending::Panicked(message), Some(out));
                    return;
                }
                Polled::Pending => {}
            }
        }
        rpc.spawn_handler(call, future);
    }
}

impl Rpc {
    /// Serves `service` with `handler`, an async function of the decoded request
    /// and a [`CallContext`]. Its error is sent to the caller as
    /// [`RpcError::Remote`]; if it panics the caller gets code `internal` and the
    /// service keeps serving. The handler is stopped (its future dropped) when the
    /// caller's deadline passes or the caller cancels.
    ///
    /// The handler's first poll runs on the mesh receive task (see
    /// [`HandlerStart::Inline`]); use [`Rpc::serve_with`] to change that.
    ///
    /// Fails with [`RpcError::AlreadyServing`] if the name is taken on this node.
    pub fn serve<Req, Resp, F, Fut>(
        &self,
        service: &str,
        handler: F,
    ) -> Result<ServeHandle, RpcError>
    where
        Req: DeserializeOwned + Send + 'static,
        Resp: Serialize + Send + 'static,
        F: Fn(Req, CallContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Resp, RpcStatus>> + Send + 'static,
    {
        self.serve_with(service, ServeOptions::default(), handler)
    }

    /// [`Rpc::serve`] with options.
    pub fn serve_with<Req, Resp, F, Fut>(
        &self,
        service: &str,
        options: ServeOptions,
        handler: F,
    ) -> Result<ServeHandle, RpcError>
    where
        Req: DeserializeOwned + Send + 'static,
        Resp: Serialize + Send + 'static,
        F: Fn(Req, CallContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Resp, RpcStatus>> + Send + 'static,
    {
        if let Err(reason) = wire::check_service_name(service) {
            return Err(RpcError::InvalidServiceName { name: service.to_owned(), reason });
        }
        if self.inner.mesh.is_closed() {
            return Err(RpcError::Shutdown);
        }
        let mut services = self.inner.services.write();
        if services.contains_key(service) {
            return Err(RpcError::AlreadyServing(service.to_owned()));
        }
        let name: Arc<str> = Arc::from(service);
        let slot_id = self.inner.next_slot_id.fetch_add(1, Relaxed);
        let handler = Typed { handler, start: options.start, _types: PhantomData };
        let slot = ServiceSlot {
            id: slot_id,
            counters: ServiceCounters::new(name.clone()),
            handler: Box::new(handler),
        };
        services.insert(name.clone(), Arc::new(slot));
        Ok(ServeHandle { inner: Arc::downgrade(&self.inner), name, slot_id })
    }
}

impl Inner {
    /// A request, on the receive task.
    #[allow(clippy::too_many_arguments)] // reason: the decoded header's fields.
    pub(super) fn on_request(
        self: &Arc<Self>,
        from: NodeId,
        id: u64,
        deadline_us: u64,
        service: &str,
        body: Bytes,
        size: usize,
        out: &mut Outgoing,
    ) {
        let received = Instant::now();
        let slot = self.services.read().get(service).cloned();
        let max = self.config.max_message;
        let slot = match slot {
            Some(slot) if size <= max => slot,
            slot => {
                let (outcome, status) = if size > max {
                    DropCounters::bump(&self.drops.too_large);
                    let outcome = Outcome::TooLarge { size: size as u64, max: max as u64 };
                    (outcome, CallStatus::TooLarge)
                } else {
                    (Outcome::NoSuchService, CallStatus::NoSuchService)
                };
                let sent = self.send_header(&Header::Response { id, outcome }, out);
                let call = Finished {
                    side: Side::Server,
                    caller: from,
                    callee: self.node_id,
                    started: received,
                    status,
                    request_bytes: size,
                    response_bytes: sent,
                    request_id: id,
                };
                match slot {
                    Some(slot) => self.finish_record(&slot.counters, call),
                    // Unknown names are not interned (a peer could send endless
                    // new ones); the observers still see the call.
                    None => self.notify(&Arc::from(service), &call, received.elapsed()),
                }
                return;
            }
        };
        if self.running.lock().contains_key(&(from, id)) {
            DropCounters::bump(&self.drops.duplicate_request_id);
            return;
        }
        let granted = Duration::from_micros(deadline_us).min(self.config.max_server_deadline);
        let deadline = received.checked_add(granted).unwrap_or(received);
        let call = CallMeta { from, id, received, deadline, request_bytes: size, slot };
        if granted.is_zero() {
            // Out of time on arrival: the caller has given up already.
            self.finish_server::<()>(&call, Ending::Timeout, Some(out));
            return;
        }
        let slot = call.slot.clone();
        slot.handler.start(self, call, body, out);
    }

    /// A cancel, on the receive task: stop the handler if it is still running.
    pub(super) fn on_cancel(self: &Arc<Self>, from: NodeId, id: u64) {
        let removed = self.running.lock().remove(&(from, id));
        match removed {
            Some(running) => {
                running.abort();
                let call = &running.call;
                self.record_served(call, CallStatus::Cancelled, 0);
            }
            None => DropCounters::bump(&self.drops.unmatched_cancels),
        }
    }

    /// Moves a handler that must wait onto its own task, bounded by the deadline
    /// and abortable by a Cancel.
    fn spawn_handler<Resp, Fut>(self: &Arc<Self>, call: CallMeta, future: Pin<Box<Fut>>)
    where
        Resp: Serialize + Send + 'static,
        Fut: Future<Output = Result<Resp, RpcStatus>> + Send + 'static,
    {
        let key = (call.from, call.id);
        let deadline = tokio::time::Instant::from_std(call.deadline);
        // Registered before the task exists, so the task always finds its entry
        // unless a Cancel took it.
        self.running.lock().insert(key, Running { call, abort: None });
        let weak = Arc::downgrade(self);
        let task = tokio::spawn(async move {
            let result = tokio::time::timeout_at(deadline, CatchUnwind(future)).await;
            let Some(inner) = weak.upgrade() else { return };
            let Some(running) = inner.running.lock().remove(&key) else { return };
            let ending = match result {
                Err(_elapsed) => Ending::Timeout,
                Ok(Err(message)) => Ending::Panicked(message),
                Ok(Ok(result)) => Ending::Handler(result),
            };
            inner.finish_server(&running.call, ending, None);
        });
        let mut running = self.running.lock();
        match running.get_mut(&key) {
            Some(entry) => entry.abort = Some(task.abort_handle()),
            // Cancelled before the handle was stored (or already finished, when
            // aborting does nothing).
            None => task.abort(),
        }
    }

    /// Counts a served call and tells the observers.
    fn record_served(&self, call: &CallMeta, status: CallStatus, response_bytes: usize) {
        let finished = Finished {
            side: Side::Server,
            caller: call.from,
            callee: self.node_id,
            started: call.received,
            status,
            request_bytes: call.request_bytes,
            response_bytes,
            request_id: call.id,
        };
        self.finish_record(&call.slot.counters, finished);
    }

    /// Sends the response for a served call (none after a timeout) and records it.
    /// On the receive task the response joins `out`; elsewhere it is sent alone.
    fn finish_server<Resp: Serialize>(
        self: &Arc<Self>,
        call: &CallMeta,
        ending: Ending<Resp>,
        out: Option<&mut Outgoing>,
    ) {
        let id = call.id;
        let failed = |code: StatusCode, message: &str| {
            let message = wire::clip_message(message);
            wire::encode_into::<()>(
                &Header::Response {
                    id,
                    outcome: Outcome::Failed { code: code.to_wire(), message },
                },
                None,
                Vec::with_capacity(32 + message.len()),
            )
        };
        let (status, encoded) = match ending {
            Ending::Timeout => {
                self.record_served(call, CallStatus::Timeout, 0);
                return;
            }
            Ending::Handler(Ok(response)) => {
                let header = Header::Response { id, outcome: Outcome::Ok };
                match wire::encode_into(&header, Some(&response), Vec::with_capacity(64)) {
                    Ok(encoded) => (CallStatus::Ok, Ok(encoded)),
                    Err(e) => (
                        CallStatus::Remote(StatusCode::Internal),
                        failed(StatusCode::Internal, &format!("the response {e}")),
                    ),
                }
            }
            Ending::Handler(Err(status)) => {
                (CallStatus::Remote(status.code), failed(status.code, &status.message))
            }
            Ending::BadRequest(reason) => (
                CallStatus::Decode,
                failed(
                    StatusCode::InvalidArgument,
                    &format!("the request does not decode as the service's type: {reason}"),
                ),
            ),
            Ending::Panicked(message) => {
                tracing::warn!(service = %call.slot.counters.name, %message, "rpc handler panicked");
                (
                    CallStatus::Remote(StatusCode::Internal),
                    failed(StatusCode::Internal, &format!("the handler panicked: {message}")),
                )
            }
        };
        let max = self.config.max_message;
        let (status, message) = match encoded {
            Ok(message) if message.len() <= max => (status, Some(message)),
            Ok(message) => {
                let outcome = Outcome::TooLarge { size: message.len() as u64, max: max as u64 };
                let header = Header::Response { id, outcome };
                (CallStatus::TooLarge, wire::encode_into::<()>(&header, None, Vec::new()).ok())
            }
            Err(_) => (CallStatus::Failed, None),
        };
        // Recorded before sending, so by the time the caller has its answer the
        // server's counters and observers have seen the call.
        self.record_served(call, status, message.as_ref().map_or(0, Vec::len));
        if let Some(message) = message {
            match out {
                Some(out) => out.push(self, message),
                None => self.send_detached(call.from, message),
            }
        }
    }

    /// Queues a message that is only a header; returns its size (0 if it could
    /// not be encoded, which a header never fails to be).
    fn send_header(self: &Arc<Self>, header: &Header<'_>, out: &mut Outgoing) -> usize {
        match wire::encode_into::<()>(header, None, Vec::with_capacity(32)) {
            Ok(message) => {
                let len = message.len();
                out.push(self, message);
                len
            }
            Err(_) => 0,
        }
    }
}
