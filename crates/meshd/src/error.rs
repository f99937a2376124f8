//! [`MeshdError`]: what went wrong, as `<what>: <why>`.

use std::fmt;

/// A failure `meshd` reports on one line as `meshd: <what>: <why>` before exiting
/// with a non-zero status.
///
/// `what` names the thing at fault as the user gave it (`cluster key
/// ./cluster.key`, `--listen 127.0.0.1:7000`, `operators file ops.toml: line 4`);
/// `why` says what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MeshdError {
    what: String,
    why: String,
}

impl MeshdError {
    /// An error about `what`, because `why`.
    pub fn new(what: impl Into<String>, why: impl fmt::Display) -> Self {
        Self { what: what.into(), why: why.to_string() }
    }

    /// The thing at fault.
    pub fn what(&self) -> &str {
        &self.what
    }

    /// What is wrong with it.
    pub fn why(&self) -> &str {
        &self.why
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
    }
}
