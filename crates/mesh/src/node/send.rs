//! The send path: routes, fragmentation, the synchronous one-datagram send,
//! and encrypting into per-thread buffers.

use super::*;

impl MeshHandle {
    /// Sends `payload` as a message of `kind` to `to`, best effort: no
    /// acknowledgement, no retransmission. Messages above the datagram budget are
    /// fragmented (and yield to the runtime between bursts). Without a session
    /// to a live member, one is opened first (waiting at most a few handshake
    /// timeouts). Fails fast when `to` is not a member, is Unreachable or left,
    /// or the message is too large.
    pub async fn send(
        &self,
        to: NodeId,
        kind: MessageKind,
        payload: &[u8],
    ) -> Result<(), SendError> {
        if payload.len() <= self.single_datagram_max() {
            return self.send_now(to, kind, payload);
        }
        let inner = &self.inner;
        let max = inner.config.limits.max_message;
        let session = match self.route(to, payload.len(), max) {
            Err(SendError::NoRoute(_)) if inner.wait_session(to).await => {
                self.route(to, payload.len(), max)?
            }
            other => other?,
        };
        let budget = inner.config.limits.datagram_budget - TRANSPORT_HEADER - TAG_LEN;
        let piece = budget - Frame::FRAGMENT_OVERHEAD;
        let count = payload.len().div_ceil(piece) as u32;
        let msg_id = inner.next_msg_id.fetch_add(1, Ordering::Relaxed);
        let mut plain = Vec::with_capacity(budget);
        for (index, chunk) in split(payload, piece).enumerate() {
            plain.clear();
            Frame::Fragment { msg_id, index: index as u32, count, kind: kind.0, payload: chunk }
                .encode_into(&mut plain);
            let datagram =
                session.seal(&plain).ok_or_else(|| SendError::Io("encryption failed".into()))?;
            inner.send_datagram_waiting(&datagram, session.addr, Carried::of_kind(kind.0)).await?;
            if (index + 1) % FRAGMENT_BURST == 0 {
                tokio::task::yield_now().await;
            }
        }
        Counters::bump(&inner.counters.messages_out);
        Ok(())
    }

    /// Sends without ever making the caller wait for a session to be opened:
    /// one datagram goes at once (or is queued behind the handshake), a
    /// bigger message is sent from its own task. For the node's own loops,
    /// which must not stall behind a handshake.
    pub(crate) fn send_soon(&self, to: NodeId, kind: MessageKind, payload: Vec<u8>) {
        if payload.len() <= self.single_datagram_max() {
            let _ = self.send_now(to, kind, &payload);
            return;
        }
        let handle = self.clone();
        tokio::spawn(async move {
            let _ = handle.send(to, kind, &payload).await;
        });
    }

    /// The largest payload [`send_now`](Self::send_now) takes: what fits in one
    /// datagram after the framing (from `MeshConfig::limits.datagram_budget`).
    pub fn single_datagram_max(&self) -> usize {
        let limits = &self.inner.config.limits;
        (limits.datagram_budget - TRANSPORT_HEADER - TAG_LEN - Frame::MESSAGE_OVERHEAD)
            .min(limits.max_message)
    }

    /// Sends a message that fits one datagram at once, without awaiting: for
    /// synchronous code such as an inline handler answering a request. The
    /// same best-effort delivery and fast failures as [`send`](Self::send); a
    /// payload above [`single_datagram_max`](Self::single_datagram_max) gives
    /// [`SendError::TooLarge`] with that limit (use `send`, which fragments).
    /// Without a session to a live member the message is queued and a session
    /// opened.
    pub fn send_now(&self, to: NodeId, kind: MessageKind, payload: &[u8]) -> Result<(), SendError> {
        let session = match self.route(to, payload.len(), self.single_datagram_max()) {
            Err(SendError::NoRoute(_)) => {
                let mut plain = Vec::with_capacity(payload.len() + Frame::MESSAGE_OVERHEAD);
                Frame::Message { kind: kind.0, payload }.encode_into(&mut plain);
                if self.inner.send_or_queue(to, plain) {
                    Counters::bump(&self.inner.counters.messages_out);
                    return Ok(());
                }
                return Err(SendError::NoRoute(to));
            }
            other => other?,
        };
        self.inner.send_frame_now(&session, &Frame::Message { kind: kind.0, payload })?;
        Counters::bump(&self.inner.counters.messages_out);
        Ok(())
    }

    /// The checks every send makes, then the session to send on.
    pub(super) fn route(
        &self,
        to: NodeId,
        size: usize,
        max: usize,
    ) -> Result<Arc<Session>, SendError> {
        let inner = &self.inner;
        if self.is_closed() {
            return Err(SendError::Shutdown);
        }
        if size > max {
            return Err(SendError::TooLarge { size, max });
        }
        let route = inner.routes.read().get(&to).cloned();
        if let Some(route) = route
            && !route.unreachable
        {
            return Ok(route.session);
        }
        // No session: a live member gets one on demand (the callers open it);
        // a dead or departed one is Unreachable; anyone else has no route.
        match inner.swim.lock().member(to) {
            Some(m) if m.is_live() => Err(SendError::NoRoute(to)),
            Some(_) => Err(SendError::Unreachable(to)),
            None => Err(SendError::NoRoute(to)),
        }
    }

    /// Encodes `value` with postcard and sends it (see [`MeshHandle::send`]).
    pub async fn send_typed<T: Serialize>(
        &self,
        to: NodeId,
        kind: MessageKind,
        value: &T,
    ) -> Result<(), SendError> {
        let payload = postcard::to_stdvec(value).map_err(|e| SendError::Io(e.to_string()))?;
        self.send(to, kind, &payload).await
    }
}

impl Inner {
    pub(super) fn send_datagram(
        &self,
        bytes: &[u8],
        to: SocketAddr,
        carried: Carried,
    ) -> Result<(), SendError> {
        match self.try_send_datagram(bytes, to, carried) {
            Ok(()) => Ok(()),
            Err(e) => {
                Counters::bump(&self.counters.send_failed);
                Err(SendError::Io(e.to_string()))
            }
        }
    }

    pub(super) fn try_send_datagram(
        &self,
        bytes: &[u8],
        to: SocketAddr,
        carried: Carried,
    ) -> std::io::Result<()> {
        self.net.try_send_to(bytes, to)?;
        Counters::bump(&self.counters.datagrams_out);
        let len = bytes.len() as u64;
        self.counters.bytes_out.fetch_add(len, Ordering::Relaxed);
        let split = match carried {
            Carried::Membership => &self.counters.sent_membership,
            Carried::Fold => &self.counters.sent_fold,
            Carried::Handshake => &self.counters.sent_handshake,
            Carried::Application => &self.counters.sent_application,
        };
        split.fetch_add(len, Ordering::Relaxed);
        Ok(())
    }

    /// Sends a datagram, waiting for socket space if the kernel buffer is full
    /// (bulk sends of fragments).
    pub(super) async fn send_datagram_waiting(
        &self,
        bytes: &[u8],
        to: SocketAddr,
        carried: Carried,
    ) -> Result<(), SendError> {
        for _ in 0..100 {
            match self.try_send_datagram(bytes, to, carried) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    tokio::time::sleep(Duration::from_micros(200)).await;
                }
                Err(e) => {
                    Counters::bump(&self.counters.send_failed);
                    return Err(SendError::Io(e.to_string()));
                }
            }
        }
        Counters::bump(&self.counters.send_failed);
        Err(SendError::Io("socket send buffer stayed full".into()))
    }

    pub(super) fn send_plain(
        &self,
        session: &Session,
        plain: &[u8],
        carried: Carried,
    ) -> Result<(), SendError> {
        let datagram =
            session.seal(plain).ok_or_else(|| SendError::Io("encryption failed".into()))?;
        self.send_datagram(&datagram, session.addr, carried)
    }

    /// Encodes, encrypts and sends a frame known to fit one datagram, in this
    /// thread's reusable buffers: the common send allocates nothing.
    pub(super) fn send_frame_now(
        &self,
        session: &Session,
        frame: &Frame<'_>,
    ) -> Result<(), SendError> {
        SEND_BUFFERS.with(|buffers| {
            let Ok(mut buffers) = buffers.try_borrow_mut() else {
                // Only if a send ever ran inside another on this thread.
                let mut plain = Vec::new();
                frame.encode_into(&mut plain);
                return self.send_plain(session, &plain, Carried::of(frame));
            };
            let SendBuffers { plain, sealed } = &mut *buffers;
            plain.clear();
            frame.encode_into(plain);
            session
                .seal_into(plain, sealed)
                .ok_or_else(|| SendError::Io("encryption failed".into()))?;
            let sent = self.send_datagram(sealed, session.addr, Carried::of(frame));
            // Keep memory bounded after an occasional large frame.
            if plain.capacity() > SEND_BUFFER_KEEP {
                *plain = Vec::new();
                *sealed = Vec::new();
            }
            sent
        })
    }

    pub(super) fn send_frame(&self, session: &Session, frame: &Frame<'_>) {
        let mut plain = Vec::with_capacity(64);
        frame.encode_into(&mut plain);
        if plain.len() + TRANSPORT_HEADER + TAG_LEN > self.config.limits.datagram_budget {
            // Membership frames (push-pull) that outgrow a datagram go as fragments.
            if let Frame::Swim(_) = frame {
                self.send_large_control(session, &plain);
            }
            return;
        }
        let _ = self.send_plain(session, &plain, Carried::of(frame));
    }

    /// Push-pull messages of big clusters exceed one datagram; wrap the encoded frame in
    /// an internal message kind and fragment it.
    pub(super) fn send_large_control(&self, session: &Session, encoded: &[u8]) {
        let budget = self.config.limits.datagram_budget - TRANSPORT_HEADER - TAG_LEN;
        let piece = budget - Frame::FRAGMENT_OVERHEAD;
        let count = encoded.len().div_ceil(piece) as u32;
        let msg_id = self.next_msg_id.fetch_add(1, Ordering::Relaxed);
        let mut plain = Vec::with_capacity(budget);
        for (index, chunk) in split(encoded, piece).enumerate() {
            plain.clear();
            Frame::Fragment {
                msg_id,
                index: index as u32,
                count,
                kind: CONTROL_KIND.0,
                payload: chunk,
            }
            .encode_into(&mut plain);
            let _ = self.send_plain(session, &plain, Carried::Membership);
        }
    }
}

/// What a sent datagram carried: the split of [`crate::TrafficSplit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Carried {
    Membership,
    Fold,
    Handshake,
    Application,
}

impl Carried {
    /// The class of a message (or fragment) of `kind`.
    pub(super) fn of_kind(kind: u32) -> Self {
        if kind == state::FOLD_KIND.0 {
            Self::Fold
        } else if kind == CONTROL_KIND.0 {
            Self::Membership
        } else {
            Self::Application
        }
    }

    /// The class of a frame.
    pub(super) fn of(frame: &Frame<'_>) -> Self {
        match frame {
            Frame::Message { kind, .. } | Frame::Fragment { kind, .. } => Self::of_kind(*kind),
            Frame::Ping { .. } | Frame::Pong { .. } | Frame::Swim(_) | Frame::Leave => {
                Self::Membership
            }
        }
    }

    /// The class of an encoded frame (one queued behind a handshake).
    pub(super) fn of_encoded(plain: &[u8]) -> Self {
        Frame::decode(plain).map_or(Self::Application, |frame| Self::of(&frame))
    }
}

/// Reusable per-thread buffers of [`Inner::send_frame_now`].
#[derive(Default)]
struct SendBuffers {
    plain: Vec<u8>,
    sealed: Vec<u8>,
}

/// Buffers that grew past this are dropped after use rather than kept.
const SEND_BUFFER_KEEP: usize = 64 * 1024;

thread_local! {
    static SEND_BUFFERS: std::cell::RefCell<SendBuffers> =
        std::cell::RefCell::new(SendBuffers::default());
}
