//! The marker file that makes a directory a store: format version and store key.
//!
//! `mesh-blobs.store` holds three text lines:
//!
//! ```text
//! mesh-blobs store
//! format 2
//! key <64 hex digits>
//! ```
//!
//! The key checksums record headers (see [`super::record`]). The file is written
//! once, atomically ([`stdx::fs::write_atomic`]: temporary file, fsync, rename,
//! directory fsync).

use std::ffi::OsStr;
use std::fs;
use std::io::ErrorKind;
use std::path::Path;

use crate::{BlobError, Hash};

/// Name of the marker file inside the store directory.
pub(crate) const MARKER_FILE: &str = "mesh-blobs.store";
/// On-disk format this version reads and writes.
pub(crate) const FORMAT_VERSION: u32 = 2;
const FIRST_LINE: &str = "mesh-blobs store";
/// Marker files are tiny; anything larger is not ours.
const MAX_MARKER_LEN: u64 = 4096;
/// The temporary name markers were written under before (a crash while
/// creating a store could leave it).
const OLD_TEMP_NAME: &str = "mesh-blobs.store.tmp";

/// Opens the store in `dir` (creating it if allowed) and returns its key.
pub(crate) fn open_or_create(dir: &Path, create: bool) -> Result<[u8; 32], BlobError> {
    let not_a_store =
        |reason: &str| BlobError::NotAStore { path: dir.to_owned(), reason: reason.to_owned() };
    match fs::metadata(dir) {
        Err(e) if e.kind() == ErrorKind::NotFound => {
            if !create {
                return Err(not_a_store("the directory does not exist"));
            }
            fs::create_dir_all(dir).map_err(|e| BlobError::io("create directory", dir, e))?;
            return initialize(dir);
        }
        Err(e) => return Err(BlobError::io("inspect", dir, e)),
        Ok(meta) if !meta.is_dir() => return Err(not_a_store("it is not a directory")),
        Ok(_) => {}
    }
    let marker = dir.join(MARKER_FILE);
    match fs::symlink_metadata(&marker) {
        Ok(_) => read(&marker),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            // A leftover temporary marker (a crash while creating the store) does
            // not count as content.
            let leftover = |name: &OsStr| {
                name == OLD_TEMP_NAME || stdx::fs::is_temp_of(name, OsStr::new(MARKER_FILE))
            };
            let empty = fs::read_dir(dir)
                .map_err(|e| BlobError::io("list directory", dir, e))?
                .all(|entry| entry.is_ok_and(|e| leftover(&e.file_name())));
            if !empty {
                Err(not_a_store(&format!("no {MARKER_FILE} file and the directory is not empty")))
            } else if !create {
                Err(not_a_store(&format!("no {MARKER_FILE} file (empty directory)")))
            } else {
                initialize(dir)
            }
        }
        Err(e) => Err(BlobError::io("inspect", &marker, e)),
    }
}

fn read(marker: &Path) -> Result<[u8; 32], BlobError> {
    let not_a_store =
        |reason: &str| BlobError::NotAStore { path: marker.to_owned(), reason: reason.to_owned() };
    let raw =
        stdx::fs::read_bounded(marker, stdx::fs::ReadLimits::new(MAX_MARKER_LEN)).map_err(|e| {
            match e {
                stdx::Error::Io(e) => BlobError::io("read", marker, e),
                _ => not_a_store("the marker is not a small regular file"),
            }
        })?;
    let text = String::from_utf8(raw).map_err(|_| not_a_store("the marker is not text"))?;
    let mut lines = text.lines();
    if lines.next() != Some(FIRST_LINE) {
        return Err(not_a_store("the marker does not start with `mesh-blobs store`"));
    }
    let version = lines
        .next()
        .and_then(|l| l.strip_prefix("format "))
        .and_then(|v| v.trim().parse::<u32>().ok())
        .ok_or_else(|| not_a_store("the marker has no `format N` line"))?;
    if version != FORMAT_VERSION {
        return Err(BlobError::IncompatibleVersion {
            path: marker.to_owned(),
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    let key = lines
        .next()
        .and_then(|l| l.strip_prefix("key "))
        .and_then(|k| k.trim().parse::<Hash>().ok())
        .ok_or_else(|| not_a_store("the marker has no valid `key` line"))?;
    Ok(*key.as_bytes())
}

fn initialize(dir: &Path) -> Result<[u8; 32], BlobError> {
    let mut key = [0u8; 32];
    getrandom::getrandom(&mut key).map_err(|e| {
        BlobError::io("generate store key for", dir, std::io::Error::other(e.to_string()))
    })?;
    let text =
        format!("{FIRST_LINE}\nformat {FORMAT_VERSION}\nkey {}\n", Hash::from_bytes(key).to_hex());
    let marker = dir.join(MARKER_FILE);
    stdx::fs::write_atomic(&marker, text.as_bytes())
        .map_err(|e| BlobError::io("write", &marker, e))?;
    tracing::info!(dir = %dir.display(), "created blob store");
    Ok(key)
}

/// Makes a directory's entries durable (a no-op where directories cannot be opened).
pub(crate) fn sync_dir(dir: &Path) -> Result<(), BlobError> {
    stdx::fs::sync_dir(dir).map_err(|e| BlobError::io("fsync directory", dir, e))
}
