//! An established Noise session with one peer.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use mesh_auth::NodeId;
use parking_lot::Mutex;
use snow::StatelessTransportState;

use crate::fragment::Reassembler;
use crate::replay::ReplayWindow;
use crate::wire::{TAG_LEN, TRANSPORT_HEADER, write_transport_header};

/// One direction-pair of keys with a peer, found by the local session index.
pub(crate) struct Session {
    pub(crate) local_idx: u32,
    pub(crate) remote_idx: u32,
    pub(crate) peer: NodeId,
    pub(crate) addr: SocketAddr,
    transport: StatelessTransportState,
    send_counter: AtomicU64,
    pub(crate) replay: Mutex<ReplayWindow>,
    pub(crate) reassembly: Mutex<Reassembler>,
    /// Node clock (µs) of the last authenticated packet on this session.
    pub(crate) last_recv_us: AtomicU64,
    pub(crate) initiator: bool,
    /// Initiator only: the responder has sent something, so it has the session.
    pub(crate) confirmed: AtomicBool,
    /// Initiator only: handshake message 3, resent until confirmed.
    pub(crate) final_datagram: Option<Vec<u8>>,
    pub(crate) final_sent_us: AtomicU64,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("local_idx", &self.local_idx)
            .field("remote_idx", &self.remote_idx)
            .field("peer", &self.peer)
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

pub(crate) struct SessionParams {
    pub(crate) local_idx: u32,
    pub(crate) remote_idx: u32,
    pub(crate) peer: NodeId,
    pub(crate) addr: SocketAddr,
    pub(crate) transport: StatelessTransportState,
    pub(crate) reassembler: Reassembler,
    pub(crate) now_us: u64,
    pub(crate) initiator: bool,
    pub(crate) final_datagram: Option<Vec<u8>>,
}

impl Session {
    pub(crate) fn new(p: SessionParams) -> Self {
        Self {
            local_idx: p.local_idx,
            remote_idx: p.remote_idx,
            peer: p.peer,
            addr: p.addr,
            transport: p.transport,
            send_counter: AtomicU64::new(0),
            replay: Mutex::new(ReplayWindow::new()),
            reassembly: Mutex::new(p.reassembler),
            last_recv_us: AtomicU64::new(p.now_us),
            initiator: p.initiator,
            confirmed: AtomicBool::new(!p.initiator),
            final_datagram: p.final_datagram,
            final_sent_us: AtomicU64::new(p.now_us),
        }
    }

    /// Encrypts `plaintext` into a complete transport datagram.
    pub(crate) fn seal(&self, plaintext: &[u8]) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        self.seal_into(plaintext, &mut out)?;
        Some(out)
    }

    /// Encrypts `plaintext` into `out` (replacing its contents), so a caller
    /// with a reusable buffer allocates nothing.
    pub(crate) fn seal_into(&self, plaintext: &[u8], out: &mut Vec<u8>) -> Option<()> {
        let counter = self.send_counter.fetch_add(1, Ordering::Relaxed);
        out.clear();
        out.resize(TRANSPORT_HEADER + plaintext.len() + TAG_LEN, 0);
        write_transport_header(out, self.remote_idx, counter);
        let n =
            self.transport.write_message(counter, plaintext, &mut out[TRANSPORT_HEADER..]).ok()?;
        out.truncate(TRANSPORT_HEADER + n);
        Some(())
    }

    /// Checks the replay window, decrypts into `out` and commits the counter.
    pub(crate) fn open(
        &self,
        counter: u64,
        ciphertext: &[u8],
        out: &mut [u8],
    ) -> Result<usize, OpenError> {
        if !self.replay.lock().check(counter) {
            return Err(OpenError::Replay);
        }
        let n = self
            .transport
            .read_message(counter, ciphertext, out)
            .map_err(|_| OpenError::NotAuthenticated)?;
        // Only one task receives, but check again under the lock to stay correct
        // if that ever changes.
        if !self.replay.lock().accept(counter) {
            return Err(OpenError::Replay);
        }
        Ok(n)
    }
}

pub(crate) enum OpenError {
    Replay,
    NotAuthenticated,
}
