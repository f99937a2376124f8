//! Write-behind: a background thread that starts writeback of a segment while the
//! writer keeps appending, so the sync that ends a large put finds most of the data
//! already on disk instead of writing all of it then.
//!
//! The thread syncs through the segment's read-only handle: a separate open file
//! description, so a writeback error it sees is still reported to the writer's own
//! sync (Linux reports an error to every description open when it happened). Its
//! own result is ignored; only the writer's syncs count for durability.

use std::fs::File;
use std::sync::Arc;
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::thread::JoinHandle;

/// Bytes appended between two write-behind requests.
pub(crate) const WRITE_BEHIND_BYTES: u64 = 8 << 20;

/// The write-behind thread.
#[derive(Debug)]
pub(crate) struct Flusher {
    tx: Option<SyncSender<Arc<File>>>,
    thread: Option<JoinHandle<()>>,
}

impl Flusher {
    /// Starts the thread; `None` if the system refuses a thread (write-behind is
    /// an optimization, the store works without it).
    pub(crate) fn start() -> Option<Flusher> {
        // One request queued at most: a queued request covers everything written
        // before it runs, so further requests would add nothing.
        let (tx, rx) = mpsc::sync_channel::<Arc<File>>(1);
        let thread = std::thread::Builder::new()
            .name("mesh-blobs-flush".into())
            .spawn(move || {
                for file in rx {
                    let _ = file.sync_data();
                }
            })
            .map_err(|e| tracing::debug!(error = %e, "no write-behind thread"))
            .ok()?;
        Some(Flusher { tx: Some(tx), thread: Some(thread) })
    }

    /// Asks for writeback of `file` to start (never blocks).
    pub(crate) fn request(&self, file: Arc<File>) {
        if let Some(tx) = &self.tx {
            match tx.try_send(file) {
                Ok(()) | Err(TrySendError::Full(_)) => {}
                Err(TrySendError::Disconnected(_)) => {}
            }
        }
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
