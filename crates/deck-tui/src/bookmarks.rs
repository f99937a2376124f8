//! Saved clusters for `deck --attach`: the bookmarks file.
//!
//! The file lives in the user's config directory ([`default_path`]):
//!
//! ```toml
//! [[cluster]]
//! name = "lab"
//! address = "127.0.0.1:7000"
//! cluster_key = "/path/cluster.key"
//! operator_key = "/path/alice.key"   # optional
//! ```
//!
//! A missing file is an empty list. A file that cannot be used (not TOML, wrong
//! types, an unknown field, a blank name, an address without a port, two bookmarks
//! with one name, more than [`MAX_BOOKMARKS_FILE`] bytes) is never silently
//! emptied: [`Bookmarks::load`] renames it aside to `<name>.corrupt-<unix-ms>` (never
//! over an existing file) and says where it went and why. A file that cannot be
//! read at all (permissions, a directory) is an error and stays where it is.
//! [`Bookmarks::save`] writes atomically (temporary file in the same directory,
//! fsync, rename), mode 0600 on unix.
//!
//! The `:` picker over these bookmarks is [`crate::app::Picker`].

use std::collections::HashMap;
use std::ffi::OsString;
use std::io;
use std::net::{Ipv6Addr, SocketAddr};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use stdx::text::LineCol;
use toml::Spanned;

/// Largest bookmarks file read (1 MiB); a larger file is treated as corrupt.
pub const MAX_BOOKMARKS_FILE: u64 = 1 << 20;

/// The directory under the config directory that holds the deck's files.
const APP_DIR: &str = "meshdeck";
/// The bookmarks file's name.
const FILE_NAME: &str = "bookmarks.toml";
/// Written at the top of a saved file (comments are not preserved otherwise).
const HEADER: &str = "# Saved clusters for `deck --attach`, written by the deck.\n\
                      # Each [[cluster]] has name, address (host:port), cluster_key and an optional operator_key.\n\n";

/// One saved cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bookmark {
    /// Unique, non-blank, printable name (the picker shows it).
    pub name: String,
    /// `host:port` of a node to attach to (`[v6]:port` for IPv6 literals).
    pub address: String,
    /// The cluster key file.
    pub cluster_key: PathBuf,
    /// The operator key file that signs admin commands (none: a throwaway identity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator_key: Option<PathBuf>,
}

impl Bookmark {
    /// Checks what [`Bookmarks::load`] checks for one bookmark: a non-blank name
    /// without control characters and a `host:port` address. The error is a
    /// sentence for the user.
    pub fn validate(&self) -> Result<(), String> {
        check_name(&self.name)?;
        check_address(&self.address)
    }
}

/// The bookmarks file: where it lives and what it holds (in file order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bookmarks {
    /// The file that [`Bookmarks::save`] writes.
    pub path: PathBuf,
    /// The bookmarks, in file order; names are unique.
    pub items: Vec<Bookmark>,
}

/// What [`Bookmarks::load`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoadOutcome {
    /// The file was read and every bookmark is valid.
    Loaded(Bookmarks),
    /// There is no file yet (none is created): an empty list.
    Missing(Bookmarks),
    /// The file could not be used and was renamed aside; the list is empty.
    Corrupt {
        /// An empty list at the original path (saving it writes a fresh file).
        bookmarks: Bookmarks,
        /// Where the unusable file now is (same directory, byte for byte).
        moved_to: PathBuf,
        /// Why it could not be used, with the line and column when known.
        error: String,
    },
}

impl LoadOutcome {
    /// The bookmarks, whatever the outcome.
    pub fn bookmarks(&self) -> &Bookmarks {
        match self {
            LoadOutcome::Loaded(b) | LoadOutcome::Missing(b) => b,
            LoadOutcome::Corrupt { bookmarks, .. } => bookmarks,
        }
    }

    /// The bookmarks, whatever the outcome.
    pub fn into_bookmarks(self) -> Bookmarks {
        match self {
            LoadOutcome::Loaded(b) | LoadOutcome::Missing(b) => b,
            LoadOutcome::Corrupt { bookmarks, .. } => bookmarks,
        }
    }

    /// A message for the user when the file was moved aside, `None` otherwise.
    pub fn notice(&self) -> Option<String> {
        match self {
            LoadOutcome::Loaded(_) | LoadOutcome::Missing(_) => None,
            LoadOutcome::Corrupt { bookmarks, moved_to, error } => Some(format!(
                "bookmarks file {} could not be used ({error}); it was moved to {} and the deck starts with no bookmarks",
                bookmarks.path.display(),
                moved_to.display()
            )),
        }
    }
}

/// Why the bookmarks file could not be read or written. Every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum BookmarkError {
    /// The file exists but cannot be read (permissions, I/O); it was left in place.
    #[error("bookmarks file {}: cannot read it: {source}", path.display())]
    Read {
        /// The bookmarks file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// Something other than a regular file is at the path; it was left in place.
    #[error("bookmarks file {}: not a regular file", path.display())]
    NotAFile {
        /// The bookmarks file.
        path: PathBuf,
    },
    /// The file is unusable but could not be renamed aside; it was left in place.
    #[error("bookmarks file {}: unusable ({reason}) and cannot be moved aside: {source}", path.display())]
    MoveAside {
        /// The bookmarks file.
        path: PathBuf,
        /// Why the file is unusable.
        reason: String,
        /// Why it could not be moved.
        source: io::Error,
    },
    /// The list breaks a rule of the file (see [`Bookmark::validate`], unique names);
    /// nothing was written.
    #[error("bookmarks file {}: not saved: {reason}", path.display())]
    Invalid {
        /// The bookmarks file.
        path: PathBuf,
        /// The rule broken.
        reason: String,
    },
    /// The list cannot be written as TOML (a path that is not UTF-8); nothing was written.
    #[error("bookmarks file {}: not saved: {source}", path.display())]
    Encode {
        /// The bookmarks file.
        path: PathBuf,
        /// The cause.
        source: toml::ser::Error,
    },
    /// Creating the directory or writing the file failed; the old file is unchanged.
    #[error("bookmarks file {}: cannot write it: {source}", path.display())]
    Write {
        /// The bookmarks file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
}

/// `$XDG_CONFIG_HOME/meshdeck/bookmarks.toml`, else `$HOME/.config/meshdeck/bookmarks.toml`,
/// else `None`. `env` looks up an environment variable (`|k| std::env::var_os(k)`);
/// empty and relative values are ignored, as the XDG base directory spec says.
pub fn default_path(env: impl Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    let absolute = |key: &str| env(key).map(PathBuf::from).filter(|p| p.is_absolute());
    let config =
        absolute("XDG_CONFIG_HOME").or_else(|| absolute("HOME").map(|h| h.join(".config")))?;
    Some(config.join(APP_DIR).join(FILE_NAME))
}

/// [`default_path`] over the process environment.
pub fn default_path_from_env() -> Option<PathBuf> {
    default_path(|key| std::env::var_os(key))
}

/// Checks a bookmark name: not blank, no control characters (it is drawn in the
/// terminal).
pub fn check_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        Err("a bookmark needs a non-blank name".to_owned())
    } else if name.chars().any(char::is_control) {
        Err(format!("bookmark name {name:?} contains control characters"))
    } else {
        Ok(())
    }
}

/// Checks an address: `host:port` with a host name or IPv4 address, or `[v6]:port`,
/// and a port from 1 to 65535. The host is not resolved.
pub fn check_address(address: &str) -> Result<(), String> {
    if let Ok(addr) = address.parse::<SocketAddr>() {
        return match addr.port() {
            0 => Err(format!("address {address:?}: port 0 cannot be attached to")),
            _ => Ok(()),
        };
    }
    let Some((host, port)) = address.rsplit_once(':') else {
        return Err(format!("address {address:?} has no port; write host:port"));
    };
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "address {address:?}: the port {port:?} is not a number; write host:port"
        ));
    }
    match port.parse::<u16>() {
        Ok(1..) => {}
        _ => return Err(format!("address {address:?}: the port must be 1 to 65535")),
    }
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return match inner.parse::<Ipv6Addr>() {
            Ok(_) => Ok(()),
            Err(_) => Err(format!("address {address:?}: {inner:?} is not an IPv6 address")),
        };
    }
    if host.is_empty() {
        return Err(format!("address {address:?} has no host; write host:port"));
    }
    if host.contains(':') {
        return Err(format!("address {address:?}: write an IPv6 address in brackets, [addr]:port"));
    }
    if !host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')) {
        return Err(format!("address {address:?}: {host:?} is not a host name or IP address"));
    }
    Ok(())
}

/// The file as read: spans for messages with a line and column.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    cluster: Vec<RawBookmark>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBookmark {
    name: Spanned<String>,
    address: Spanned<String>,
    cluster_key: PathBuf,
    #[serde(default)]
    operator_key: Option<PathBuf>,
}

/// The file as written.
#[derive(Serialize)]
struct FileOut<'a> {
    cluster: &'a [Bookmark],
}

impl Bookmarks {
    /// An empty list that [`Bookmarks::save`] writes to `path`.
    pub fn new(path: impl Into<PathBuf>) -> Bookmarks {
        Bookmarks { path: path.into(), items: Vec::new() }
    }

    /// Reads the file at `path`. Missing: an empty list (no file is created).
    /// Unusable: moved aside, an empty list and the reason. Unreadable: an error,
    /// and the file stays.
    pub fn load(path: &Path) -> Result<LoadOutcome, BookmarkError> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let reason = match read_checked(path)? {
                Found::Missing => return Ok(LoadOutcome::Missing(Bookmarks::new(path))),
                Found::Valid(items) => {
                    return Ok(LoadOutcome::Loaded(Bookmarks { path: path.to_owned(), items }));
                }
                Found::Corrupt(reason) => reason,
            };
            match move_aside(path, unix_ms()) {
                Ok(moved_to) => {
                    return Ok(LoadOutcome::Corrupt {
                        bookmarks: Bookmarks::new(path),
                        moved_to,
                        error: reason,
                    });
                }
                // Another deck moved it first: read again (now missing or new).
                Err(e) if e.kind() == io::ErrorKind::NotFound && attempts < 3 => continue,
                Err(source) => {
                    return Err(BookmarkError::MoveAside { path: path.to_owned(), reason, source });
                }
            }
        }
    }

    /// Writes the list: creates the directory (0700 on unix), writes a temporary
    /// file in it (0600 on unix), fsyncs it and renames it over the file (through a
    /// symlink at `path`, which stays). Refuses a list that [`Bookmarks::load`]
    /// would reject.
    pub fn save(&self) -> Result<(), BookmarkError> {
        let invalid = |reason: String| BookmarkError::Invalid { path: self.path.clone(), reason };
        let mut seen = HashMap::new();
        for b in &self.items {
            b.validate().map_err(invalid)?;
            if seen.insert(b.name.as_str(), ()).is_some() {
                return Err(invalid(format!("two bookmarks are named {:?}", b.name)));
            }
        }
        let body = toml::to_string(&FileOut { cluster: &self.items })
            .map_err(|source| BookmarkError::Encode { path: self.path.clone(), source })?;
        let text = format!("{HEADER}{body}");
        write_atomic(&self.path, text.as_bytes())
            .map_err(|source| BookmarkError::Write { path: self.path.clone(), source })
    }

    /// Adds `bookmark`, or replaces the one with its name in place.
    pub fn upsert(&mut self, bookmark: Bookmark) {
        match self.items.iter_mut().find(|b| b.name == bookmark.name) {
            Some(slot) => *slot = bookmark,
            None => self.items.push(bookmark),
        }
    }

    /// Removes the bookmark named `name`; whether there was one.
    pub fn remove(&mut self, name: &str) -> bool {
        let before = self.items.len();
        self.items.retain(|b| b.name != name);
        self.items.len() != before
    }

    /// The bookmark named `name` (exact match).
    pub fn find(&self, name: &str) -> Option<&Bookmark> {
        self.items.iter().find(|b| b.name == name)
    }
}

/// What [`read_checked`] found.
enum Found {
    Missing,
    Valid(Vec<Bookmark>),
    Corrupt(String),
}

/// Reads and checks the file; I/O problems other than "missing" are errors.
fn read_checked(path: &Path) -> Result<Found, BookmarkError> {
    let bytes = match stdx::fs::read_bounded(path, stdx::fs::ReadLimits::new(MAX_BOOKMARKS_FILE)) {
        Ok(bytes) => bytes,
        Err(e) if e.is_not_found() => return Ok(Found::Missing),
        Err(stdx::Error::NotAFile) => {
            return Err(BookmarkError::NotAFile { path: path.to_owned() });
        }
        Err(stdx::Error::TooLarge { size, .. }) => {
            return Ok(Found::Corrupt(format!(
                "{size} bytes; a bookmarks file is at most {MAX_BOOKMARKS_FILE} bytes"
            )));
        }
        Err(stdx::Error::Io(source)) => {
            return Err(BookmarkError::Read { path: path.to_owned(), source });
        }
        Err(other) => {
            let source = io::Error::other(other);
            return Err(BookmarkError::Read { path: path.to_owned(), source });
        }
    };
    Ok(match parse(&bytes) {
        Ok(items) => Found::Valid(items),
        Err(reason) => Found::Corrupt(reason),
    })
}

/// Parses and checks the file's bytes; the error says where and why.
fn parse(bytes: &[u8]) -> Result<Vec<Bookmark>, String> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            let valid = std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default();
            return Err(format!("{}: not UTF-8 text", LineCol::of(valid, valid.len())));
        }
    };
    let at = |span: Option<Range<usize>>, what: &str| match span {
        Some(span) => format!("{}: {what}", LineCol::of(text, span.start)),
        None => what.to_owned(),
    };
    let raw: RawFile =
        toml::from_str(text).map_err(|e| at(e.span(), &stdx::text::one_line(e.message())))?;
    let mut first_line: HashMap<String, usize> = HashMap::new();
    let mut items = Vec::with_capacity(raw.cluster.len());
    for b in raw.cluster {
        check_name(b.name.get_ref()).map_err(|r| at(Some(b.name.span()), &r))?;
        check_address(b.address.get_ref()).map_err(|r| at(Some(b.address.span()), &r))?;
        let line = LineCol::of(text, b.name.span().start).line;
        if let Some(first) = first_line.insert(b.name.get_ref().clone(), line) {
            let what = format!(
                "two bookmarks are named {:?} (the first at line {first})",
                b.name.get_ref()
            );
            return Err(at(Some(b.name.span()), &what));
        }
        items.push(Bookmark {
            name: b.name.into_inner(),
            address: b.address.into_inner(),
            cluster_key: b.cluster_key,
            operator_key: b.operator_key,
        });
    }
    Ok(items)
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
fn unix_ms() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis())
}

/// Renames `path` to `<name>.corrupt-<unix_ms>` (then `-1`, `-2`, ... when taken) in
/// its directory, never over an existing file; returns the new path.
fn move_aside(path: &Path, unix_ms: u128) -> io::Result<PathBuf> {
    stdx::fs::move_aside(path, &format!("corrupt-{unix_ms}"))
}

/// Writes `bytes` to `path` atomically ([`stdx::fs::write_atomic`]), creating its
/// directory and missing parents first (0700 on unix, as the XDG spec asks).
fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    stdx::fs::create_dir_private(stdx::fs::parent_dir(path))?;
    stdx::fs::write_atomic(path, bytes)
}

#[cfg(test)]
mod tests;
