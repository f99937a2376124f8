//! The crate's error type.

use std::path::PathBuf;

/// Errors from key handling, key files and decoding untrusted bytes.
///
/// Verification outcomes are not errors: they are [`crate::Rejection`]s.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// Reading or writing a key file failed at the operating-system level.
    #[error("key file {path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The key file can be read by users other than its owner.
    #[error("key file {path} is readable by other users (mode {mode:03o}); run `chmod 600 {path}`")]
    KeyFilePermissions {
        /// The file involved.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The key file is truncated, corrupt or not a key file at all.
    #[error("key file {path} is not a valid key file: {reason}")]
    KeyFileMalformed {
        /// The file involved.
        path: PathBuf,
        /// What was wrong with it.
        reason: String,
    },
    /// The key file's public key does not belong to its secret key.
    #[error("key file {path} is corrupt: its public key does not match its secret key")]
    KeyFileMismatch {
        /// The file involved.
        path: PathBuf,
    },
    /// `save` refuses to overwrite an existing key file.
    #[error("key file {path} already exists; refusing to overwrite it")]
    KeyFileExists {
        /// The file involved.
        path: PathBuf,
    },
    /// 32 bytes that are not a valid ed25519 public key.
    #[error("invalid ed25519 public key")]
    InvalidPublicKey,
    /// Untrusted bytes could not be decoded.
    #[error("malformed {what}: {reason}")]
    Decode {
        /// What was being decoded.
        what: &'static str,
        /// Why it failed.
        reason: String,
    },
    /// Input larger than the documented maximum.
    #[error("{what} is {size} bytes, above the maximum of {max}")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// Its size.
        size: usize,
        /// The maximum allowed.
        max: usize,
    },
    /// The operating system's random number generator failed.
    #[error("system random number generator failed: {0}")]
    Random(String),
}
