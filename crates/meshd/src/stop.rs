//! [`StopSignals`]: what stops a running node.

use crate::error::MeshdError;

/// What stops a running node: SIGTERM, SIGINT, or (when asked) the end of
/// standard input. Installed before the node starts, so a signal sent as soon as
/// the ready line appears is never missed.
#[derive(Debug)]
pub struct StopSignals {
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    stdin_eof: Option<tokio::sync::oneshot::Receiver<()>>,
}

impl StopSignals {
    /// Installs the signal handlers (and the stdin watcher when `stdin_eof`).
    pub fn install(stdin_eof: bool) -> Result<StopSignals, MeshdError> {
        #[cfg(unix)]
        let (terminate, interrupt) = {
            use tokio::signal::unix::{SignalKind, signal};
            let install = |kind| signal(kind).map_err(|e| MeshdError::new("signal handler", e));
            (install(SignalKind::terminate())?, install(SignalKind::interrupt())?)
        };
        let stdin_eof = stdin_eof.then(|| {
            let (tx, rx) = tokio::sync::oneshot::channel();
            std::thread::Builder::new()
                .name("meshd-stdin".into())
                .spawn(move || {
                    use std::io::Read;
                    let mut stdin = std::io::stdin().lock();
                    let mut buf = [0u8; 256];
                    loop {
                        match stdin.read(&mut buf) {
                            Ok(0) => break,
                            Ok(_) => {}
                            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                            Err(_) => break,
                        }
                    }
                    let _ = tx.send(());
                })
                .map(|_| rx)
                .map_err(|e| MeshdError::new("stdin watcher", e))
        });
        let stdin_eof = stdin_eof.transpose()?;
        Ok(StopSignals {
            #[cfg(unix)]
            terminate,
            #[cfg(unix)]
            interrupt,
            stdin_eof,
        })
    }

    /// Waits for the first stop request; returns what it was.
    pub async fn wait(&mut self) -> &'static str {
        let eof = async {
            match self.stdin_eof.as_mut() {
                Some(rx) => {
                    let _ = rx.await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.terminate.recv() => "SIGTERM",
                _ = self.interrupt.recv() => "SIGINT",
                () = eof => "end of standard input",
            }
        }
        #[cfg(not(unix))]
        {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => "Ctrl-C",
                () = eof => "end of standard input",
            }
        }
    }
}
