//! Where a node's datagrams go.
//!
//! In production that is one UDP socket, and only that: [`Net::Udp`] is matched
//! statically on the hot path. Tests and scale simulations (feature `testing`)
//! can plug anything implementing [`Transport`], such as the in-memory network
//! of [`crate::sim`], and run many nodes on tokio's paused clock.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

/// A datagram transport: what a node needs of a socket.
///
/// Sends never wait (a full buffer is `WouldBlock`); receives are polled by
/// the node's receive task.
pub trait Transport: Send + Sync + 'static {
    /// The address peers reach this transport at.
    fn local_addr(&self) -> io::Result<SocketAddr>;
    /// Sends one datagram now, or fails (`WouldBlock` when the buffer is full).
    fn try_send_to(&self, bytes: &[u8], to: SocketAddr) -> io::Result<()>;
    /// Polls for the next datagram: its length (copied into `buf`, cut at
    /// `buf.len()`) and its source.
    fn poll_recv_from(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<(usize, SocketAddr)>>;
}

/// The node's transport.
pub(crate) enum Net {
    /// The UDP socket, and a duplicate of its descriptor for synchronous sends:
    /// tokio's `try_send_to` refuses until the reactor has seen the socket
    /// writable, while the kernel would take the datagram at once.
    Udp { socket: tokio::net::UdpSocket, send: std::net::UdpSocket },
    /// Anything else (tests and simulations only).
    #[cfg_attr(not(feature = "testing"), allow(dead_code, reason = "built by tests only"))]
    Other(Arc<dyn Transport>),
}

impl Net {
    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        match self {
            Net::Udp { socket, .. } => socket.local_addr(),
            Net::Other(t) => t.local_addr(),
        }
    }

    #[inline]
    pub(crate) fn try_send_to(&self, bytes: &[u8], to: SocketAddr) -> io::Result<()> {
        match self {
            Net::Udp { send, .. } => send.send_to(bytes, to).map(|_| ()),
            Net::Other(t) => t.try_send_to(bytes, to),
        }
    }

    #[inline]
    pub(crate) fn poll_recv_from(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<(usize, SocketAddr)>> {
        match self {
            Net::Udp { socket, .. } => {
                let mut read = tokio::io::ReadBuf::new(buf);
                match socket.poll_recv_from(cx, &mut read) {
                    Poll::Ready(Ok(from)) => Poll::Ready(Ok((read.filled().len(), from))),
                    Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                    Poll::Pending => Poll::Pending,
                }
            }
            Net::Other(t) => t.poll_recv_from(cx, buf),
        }
    }
}
