//! [`MeshdError`]: what went wrong, as `<what>: <why>`.

use std::fmt;
use std::path::PathBuf;

/// A failure `meshd` reports on one line as `meshd: <what>: <why>` before exiting
/// with a non-zero status.
///
/// `what` names the thing at fault as the user gave it (`cluster key
/// ./cluster.key`, `--listen 127.0.0.1:7000`, `operators file ops.toml: line 4`);
/// `why` says what is wrong with it. [`MeshdError::kind`] tells failures a caller
/// may want to tell apart without reading the text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MeshdError {
    what: String,
    why: String,
    kind: ErrorKind,
}

/// What kind of failure a [`MeshdError`] is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Anything not singled out below.
    #[default]
    Other,
    /// A file meshd trusts (the operators file) can be changed by users other
    /// than its owner: group or others may write it.
    WritableByOthers {
        /// The file.
        path: PathBuf,
        /// Its permission bits (`mode & 0o7777`).
        mode: u32,
    },
}

impl MeshdError {
    /// An error about `what`, because `why`.
    pub fn new(what: impl Into<String>, why: impl fmt::Display) -> Self {
        Self { what: what.into(), why: why.to_string(), kind: ErrorKind::Other }
    }

    /// The same error, of another kind.
    pub fn with_kind(mut self, kind: ErrorKind) -> Self {
        self.kind = kind;
        self
    }

    /// The thing at fault.
    pub fn what(&self) -> &str {
        &self.what
    }

    /// What is wrong with it.
    pub fn why(&self) -> &str {
        &self.why
    }

    /// What kind of failure it is.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }
}

impl fmt::Display for MeshdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.what, self.why)
    }
}

impl std::error::Error for MeshdError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_what_then_why() {
        let e = MeshdError::new("cluster key k", "expected 64 hex digits");
        assert_eq!(e.to_string(), "cluster key k: expected 64 hex digits");
        assert_eq!(e.what(), "cluster key k");
        assert_eq!(e.why(), "expected 64 hex digits");
        assert_eq!(e.kind(), &ErrorKind::Other);
        let kind = ErrorKind::WritableByOthers { path: "ops.toml".into(), mode: 0o666 };
        assert_eq!(e.with_kind(kind.clone()).kind(), &kind);
    }
}
