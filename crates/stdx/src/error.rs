//! The crate's error type.

/// What a helper of this crate refused, or the operating system's error.
///
/// Messages name no path: the caller knows which file it asked for and says so
/// in its own error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The operating system refused or failed (a missing file is
    /// [`std::io::ErrorKind::NotFound`], see [`Error::is_not_found`]).
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The path names a directory, a device, a FIFO or anything else that is not
    /// a regular file.
    #[error("not a regular file")]
    NotAFile,
    /// The file holds more bytes than the caller allows.
    #[error("{size} bytes, more than the {max} allowed")]
    TooLarge {
        /// Its size in bytes (at least `max + 1` when it grew while being read).
        size: u64,
        /// The cap.
        max: u64,
    },
    /// Users other than the owner have access the caller does not allow.
    #[error("mode {mode:04o} gives other users access they must not have")]
    Permissions {
        /// The file's permission bits (`mode & 0o7777`).
        mode: u32,
    },
    /// Hex text of the wrong length.
    #[error("expected {expected} hex digits, found {found} characters")]
    HexLength {
        /// Digits expected (twice the bytes).
        expected: usize,
        /// Bytes of text given.
        found: usize,
    },
    /// A character that is not a hex digit.
    #[error("not a hex digit at byte {at}")]
    HexDigit {
        /// Byte offset of the first bad character.
        at: usize,
    },
}

impl Error {
    /// True for an I/O error saying the file does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Io(e) if e.kind() == std::io::ErrorKind::NotFound)
    }
}
