//! [`DataDir`]: the node's data directory, locked for one process.
//!
//! ```text
//! <data-dir>/
//!   meshd.lock      lock file (flock, held while the process runs; holds its pid)
//!   identity.key    the node's ed25519 identity (default --identity)
//!   audit.log       the hash-chained audit ledger
//!   blobs/          the DiskLog blob store
//! ```
//!
//! The blob store and the ledger must never be opened by two processes at once
//! (neither enforces it), so the directory is locked with `flock(2)` on
//! [`LOCK_FILE`]; the kernel releases the lock when the process dies, however it
//! dies, so a SIGKILLed node restarts without manual clean-up.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::error::MeshdError;

/// Name of the lock file inside the data directory.
pub const LOCK_FILE: &str = "meshd.lock";
/// Name of the default identity file inside the data directory.
pub const IDENTITY_FILE: &str = "identity.key";
/// Name of the audit ledger file inside the data directory.
pub const AUDIT_FILE: &str = "audit.log";
/// Name of the persisted admin state (cordon, drain, maintenance, freeze).
pub const ADMIN_STATE_FILE: &str = "admin-state";
/// Name of the blob store directory inside the data directory.
pub const BLOBS_DIR: &str = "blobs";

/// A data directory, created if missing and locked for this process until
/// dropped.
#[derive(Debug)]
pub struct DataDir {
    path: PathBuf,
    /// Holds the lock; closing it releases the lock.
    _lock: File,
}

impl DataDir {
    /// Creates `path` (and its parents) when missing and takes its lock.
    ///
    /// Fails, naming the directory, when it cannot be created or written, or when
    /// another process holds the lock.
    pub fn open(path: &Path) -> Result<DataDir, MeshdError> {
        let what = || format!("data dir {}", path.display());
        if path.exists() && !path.is_dir() {
            return Err(MeshdError::new(what(), "exists and is not a directory"));
        }
        stdx::fs::create_dir_private(path)
            .map_err(|e| MeshdError::new(what(), format!("cannot create it: {e}")))?;
        let lock_path = path.join(LOCK_FILE);
        let lock = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(|e| {
                MeshdError::new(what(), format!("cannot open {}: {e}", lock_path.display()))
            })?;
        lock_exclusive(&lock).map_err(|e| match e {
            LockError::Held => {
                let holder = stdx::fs::read_bounded(&lock_path, LOCK_FILE_LIMITS)
                    .map(|raw| String::from_utf8_lossy(&raw).into_owned())
                    .unwrap_or_default();
                let holder = holder.trim();
                let by = if holder.is_empty() {
                    "another process".to_owned()
                } else {
                    format!("another meshd process (pid {holder})")
                };
                MeshdError::new(what(), format!("in use by {by}; it is locked"))
            }
            LockError::Io(e) => {
                MeshdError::new(what(), format!("cannot lock {}: {e}", lock_path.display()))
            }
        })?;
        write_pid(&lock).map_err(|e| {
            MeshdError::new(what(), format!("cannot write {}: {e}", lock_path.display()))
        })?;
        tighten(path, PRIVATE_DIR_MODE).map_err(|e| {
            MeshdError::new(
                what(),
                format!(
                    "other users have access to it and it cannot be made private (mode 0700): {e}"
                ),
            )
        })?;
        Ok(DataDir { path: path.to_owned(), _lock: lock })
    }

    /// Creates the audit ledger file empty with mode 0600 if it is missing (so
    /// the ledger never exists with looser permissions), or tightens an existing
    /// one other users can read to 0600. Returns its path.
    pub fn prepare_audit_file(&self) -> Result<PathBuf, MeshdError> {
        let path = self.audit_path();
        let what = || format!("audit ledger {}", path.display());
        match stdx::fs::write_new_private(&path, b"") {
            // The file and its directory entry are synced: a crash cannot lose it.
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                tighten(&path, PRIVATE_FILE_MODE).map_err(|e| {
                    MeshdError::new(what(), format!("cannot make it private (mode 0600): {e}"))
                })?;
            }
            Err(e) => return Err(MeshdError::new(what(), format!("cannot create it: {e}"))),
        }
        Ok(path)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `<dir>/identity.key`.
    pub fn identity_path(&self) -> PathBuf {
        self.path.join(IDENTITY_FILE)
    }

    /// `<dir>/audit.log`.
    pub fn audit_path(&self) -> PathBuf {
        self.path.join(AUDIT_FILE)
    }

    /// `<dir>/admin-state`.
    pub fn admin_state_path(&self) -> PathBuf {
        self.path.join(ADMIN_STATE_FILE)
    }

    /// `<dir>/blobs`.
    pub fn blobs_path(&self) -> PathBuf {
        self.path.join(BLOBS_DIR)
    }
}

/// Mode of the data directory (and of directories created above it).
const PRIVATE_DIR_MODE: u32 = stdx::fs::PRIVATE_DIR_MODE;
/// Mode of the audit ledger.
const PRIVATE_FILE_MODE: u32 = stdx::fs::PRIVATE_FILE_MODE;
/// The lock file holds a pid and a newline; more is not read.
const LOCK_FILE_LIMITS: stdx::fs::ReadLimits = stdx::fs::ReadLimits::new(64);

/// Sets `path` to `mode` when group or others have any permission on it.
#[cfg(unix)]
fn tighten(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let old = std::fs::metadata(path)?.permissions().mode() & 0o7777;
    if old & 0o077 == 0 {
        return Ok(());
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    tracing::warn!(
        path = %path.display(),
        old_mode = format!("{old:04o}"),
        new_mode = format!("{mode:04o}"),
        "other users had access; permissions tightened"
    );
    Ok(())
}

#[cfg(not(unix))]
fn tighten(_path: &Path, _mode: u32) -> std::io::Result<()> {
    Ok(())
}

enum LockError {
    Held,
    Io(std::io::Error),
}

#[cfg(unix)]
fn lock_exclusive(file: &File) -> Result<(), LockError> {
    use rustix::fs::{FlockOperation, flock};
    match flock(file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(()),
        Err(e) if e == rustix::io::Errno::WOULDBLOCK => Err(LockError::Held),
        Err(e) => Err(LockError::Io(e.into())),
    }
}

#[cfg(not(unix))]
fn lock_exclusive(_file: &File) -> Result<(), LockError> {
    // No advisory lock on this platform: one process per directory is up to the
    // operator.
    Ok(())
}

fn write_pid(mut file: &File) -> std::io::Result<()> {
    use std::io::{Seek, SeekFrom, Write};
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    writeln!(file, "{}", std::process::id())?;
    file.sync_data()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_and_locks() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b");
        let held = DataDir::open(&dir).unwrap();
        assert!(dir.join(LOCK_FILE).exists());
        assert_eq!(held.audit_path(), dir.join(AUDIT_FILE));
        #[cfg(unix)]
        {
            let err = DataDir::open(&dir).unwrap_err();
            assert!(err.to_string().contains("in use by another meshd process"), "{err}");
        }
        drop(held);
        DataDir::open(&dir).unwrap();
    }

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[cfg(unix)]
    #[test]
    fn the_directory_and_the_ledger_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("new/data");
        let held = DataDir::open(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&tmp.path().join("new")), 0o700, "created parents too");
        let ledger = held.prepare_audit_file().unwrap();
        assert_eq!(mode(&ledger), 0o600);
        assert_eq!(std::fs::metadata(&ledger).unwrap().len(), 0);
        // Again: an existing ledger is kept as it is.
        std::fs::write(&ledger, b"entries").unwrap();
        held.prepare_audit_file().unwrap();
        assert_eq!(std::fs::read(&ledger).unwrap(), b"entries");
        // Looser permissions are tightened.
        std::fs::set_permissions(&ledger, std::fs::Permissions::from_mode(0o644)).unwrap();
        held.prepare_audit_file().unwrap();
        assert_eq!(mode(&ledger), 0o600);
        drop(held);

        let loose = tmp.path().join("loose");
        std::fs::create_dir(&loose).unwrap();
        std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o755)).unwrap();
        let held = DataDir::open(&loose).unwrap();
        assert_eq!(mode(held.path()), 0o700);
    }

    #[test]
    fn a_file_is_not_a_data_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        let err = DataDir::open(&file).unwrap_err();
        assert!(err.to_string().contains("not a directory"), "{err}");
    }
}
