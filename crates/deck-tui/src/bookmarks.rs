//! Saved clusters for `deck --attach`: the bookmarks file and the `:` picker model.
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
//! [`Picker`] is the pure model of the picker; drawing it is the renderer's job.

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

/// The picker behind the deck's `:` key: a query and a highlighted row among the
/// bookmarks that match it. Pure; the renderer draws it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Picker {
    /// What the operator typed; matches names and addresses, case-insensitively.
    pub query: String,
    /// The highlighted row among [`Picker::filtered`] (clamped when read).
    pub selected: usize,
}

impl Picker {
    /// An empty query with the first row highlighted.
    pub fn new() -> Picker {
        Picker::default()
    }

    /// The bookmarks whose name or address contains the query, ignoring case, in
    /// file order (all of them for an empty query).
    pub fn filtered<'a>(&self, items: &'a [Bookmark]) -> Vec<&'a Bookmark> {
        let query = self.query.to_lowercase();
        items
            .iter()
            .filter(|b| {
                b.name.to_lowercase().contains(&query) || b.address.to_lowercase().contains(&query)
            })
            .collect()
    }

    /// The highlighted row within [`Picker::filtered`]; `None` when nothing matches.
    pub fn selected_index(&self, items: &[Bookmark]) -> Option<usize> {
        let len = self.filtered(items).len();
        (len > 0).then(|| self.selected.min(len - 1))
    }

    /// The highlighted bookmark; `None` when nothing matches.
    pub fn chosen<'a>(&self, items: &'a [Bookmark]) -> Option<&'a Bookmark> {
        let index = self.selected_index(items)?;
        self.filtered(items).get(index).copied()
    }

    /// Highlights the row above (stays on the first).
    pub fn up(&mut self, items: &[Bookmark]) {
        self.selected = self.selected_index(items).unwrap_or(0).saturating_sub(1);
    }

    /// Highlights the row below (stays on the last).
    pub fn down(&mut self, items: &[Bookmark]) {
        let len = self.filtered(items).len();
        self.selected = match self.selected_index(items) {
            Some(i) => (i + 1).min(len - 1),
            None => 0,
        };
    }

    /// Appends `c` to the query and highlights the first match.
    pub fn push(&mut self, c: char) {
        self.query.push(c);
        self.selected = 0;
    }

    /// Deletes the query's last character and highlights the first match.
    pub fn pop(&mut self) {
        self.query.pop();
        self.selected = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::fs::{self, File};

    fn bm(name: &str, address: &str) -> Bookmark {
        Bookmark {
            name: name.to_owned(),
            address: address.to_owned(),
            cluster_key: PathBuf::from(format!("/keys/{name}.cluster")),
            operator_key: None,
        }
    }

    fn file_in(dir: &tempfile::TempDir) -> PathBuf {
        dir.path().join("meshdeck").join(FILE_NAME)
    }

    /// Writes `bytes` at `path` (creating the directory), loads, and checks the
    /// file was moved aside intact; returns the reason and where it went.
    fn assert_moved_aside(path: &Path, bytes: &[u8]) -> (String, PathBuf) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, bytes).unwrap();
        match Bookmarks::load(path).unwrap() {
            LoadOutcome::Corrupt { bookmarks, moved_to, error } => {
                assert!(bookmarks.items.is_empty());
                assert_eq!(bookmarks.path, path);
                assert!(!path.exists(), "the original path still exists");
                assert_eq!(fs::read(&moved_to).unwrap(), bytes, "moved bytes differ");
                assert_eq!(moved_to.parent(), path.parent());
                let name = moved_to.file_name().unwrap().to_str().unwrap();
                assert!(name.starts_with("bookmarks.toml.corrupt-"), "{name}");
                (error, moved_to)
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }

    #[test]
    fn save_then_load_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = file_in(&dir);
        let mut marks = Bookmarks::new(&path);
        marks.upsert(bm("lab", "127.0.0.1:7000"));
        marks.upsert(Bookmark {
            operator_key: Some(PathBuf::from("/keys/alice \"quoted\" \\ key")),
            ..bm("prod \u{e9}ast", "[::1]:7001")
        });
        marks.upsert(bm("edge", "node-3.example.internal:65535"));
        marks.save().unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.contains("[[cluster]]"), "{text}");
        assert_eq!(Bookmarks::load(&path).unwrap(), LoadOutcome::Loaded(marks.clone()));
        // Saving again over an existing file works and leaves no temporary files.
        marks.remove("edge");
        marks.save().unwrap();
        assert_eq!(Bookmarks::load(&path).unwrap(), LoadOutcome::Loaded(marks));
        let names: Vec<_> =
            fs::read_dir(path.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![OsString::from(FILE_NAME)]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }

    #[test]
    fn an_empty_list_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = file_in(&dir);
        Bookmarks::new(&path).save().unwrap();
        assert_eq!(Bookmarks::load(&path).unwrap(), LoadOutcome::Loaded(Bookmarks::new(&path)));
    }

    #[test]
    fn the_documented_format_loads() {
        let dir = tempfile::tempdir().unwrap();
        let path = file_in(&dir);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        let text = "[[cluster]]\nname = \"lab\"\naddress = \"127.0.0.1:7000\"\n\
                    cluster_key = \"/path/cluster.key\"\noperator_key = \"/path/alice.key\"   # optional\n\n\
                    [[cluster]]\nname = \"b\"\naddress = \"b.local:9\"\ncluster_key = \"c.key\"\n";
        fs::write(&path, text).unwrap();
        let loaded = Bookmarks::load(&path).unwrap().into_bookmarks();
        assert_eq!(
            loaded.items,
            vec![
                Bookmark {
                    operator_key: Some(PathBuf::from("/path/alice.key")),
                    cluster_key: PathBuf::from("/path/cluster.key"),
                    ..bm("lab", "127.0.0.1:7000")
                },
                Bookmark { cluster_key: PathBuf::from("c.key"), ..bm("b", "b.local:9") },
            ]
        );
        // A byte order mark (some editors add one) is fine.
        fs::write(&path, format!("\u{feff}{text}")).unwrap();
        assert_eq!(Bookmarks::load(&path).unwrap().into_bookmarks(), loaded);
    }

    #[test]
    fn upsert_replaces_by_name_and_remove_and_find() {
        let mut marks = Bookmarks::new("/x/bookmarks.toml");
        marks.upsert(bm("a", "a:1"));
        marks.upsert(bm("b", "b:2"));
        marks.upsert(bm("a", "a2:3"));
        assert_eq!(marks.items, vec![bm("a", "a2:3"), bm("b", "b:2")]);
        assert_eq!(marks.find("a"), Some(&bm("a", "a2:3")));
        assert_eq!(marks.find("A"), None);
        assert!(marks.remove("a"));
        assert!(!marks.remove("a"));
        assert_eq!(marks.items, vec![bm("b", "b:2")]);
        assert_eq!(marks.find("a"), None);
    }

    #[test]
    fn missing_file_is_empty_and_nothing_is_created() {
        let dir = tempfile::tempdir().unwrap();
        let path = file_in(&dir);
        let outcome = Bookmarks::load(&path).unwrap();
        assert_eq!(outcome, LoadOutcome::Missing(Bookmarks::new(&path)));
        assert_eq!(outcome.notice(), None);
        assert!(!path.exists());
        assert!(!path.parent().unwrap().exists(), "load created the directory");
    }

    #[test]
    fn corrupt_files_are_moved_aside_with_a_reason() {
        let good =
            "[[cluster]]\nname = \"lab\"\naddress = \"127.0.0.1:7000\"\ncluster_key = \"/k\"\n";
        let cases: &[(&[u8], &[&str])] = &[
            (b"\x00\xffgarbage\n[[[", &["line 1, column 2", "UTF-8"]),
            (b"this is = = not toml\n", &["line 1"]),
            (b"[[cluster]]\nname = 5\naddress = \"h:1\"\ncluster_key = \"/k\"\n", &["line 2"]),
            (b"cluster = \"lab\"\n", &["line 1"]),
            (b"[[cluster]]\nname = \"  \"\naddress = \"h:1\"\ncluster_key = \"/k\"\n", &["line 2, column 8", "non-blank name"]),
            (b"[[cluster]]\nname = \"lab\"\naddress = \"127.0.0.1\"\ncluster_key = \"/k\"\n", &["line 3, column 11", "no port"]),
            (b"[[cluster]]\nname = \"lab\"\naddress = \"host:\"\ncluster_key = \"/k\"\n", &["line 3", "not a number"]),
            (b"[[cluster]]\nname = \"lab\"\naddress = \"h:1\"\n", &["cluster_key"]),
            (b"[[cluster]]\nname = \"lab\"\naddress = \"h:1\"\ncluster_key = \"/k\"\noperator-key = \"/o\"\n", &["line 5", "operator-key"]),
        ];
        for (bytes, needles) in cases {
            let dir = tempfile::tempdir().unwrap();
            let (error, _) = assert_moved_aside(&file_in(&dir), bytes);
            for needle in *needles {
                assert!(
                    error.contains(needle),
                    "{error:?} lacks {needle:?} for {:?}",
                    String::from_utf8_lossy(bytes)
                );
            }
        }
        // Duplicate names: the second is at fault, the first is named.
        let dir = tempfile::tempdir().unwrap();
        let path = file_in(&dir);
        let (error, moved_to) = assert_moved_aside(&path, format!("{good}\n{good}").as_bytes());
        assert!(error.contains("line 7, column 8") && error.contains("first at line 2"), "{error}");
        assert!(moved_to.exists());
        // The notice for the user names both files.
        fs::write(&path, "x").unwrap();
        let notice = Bookmarks::load(&path).unwrap().notice().unwrap();
        assert!(
            notice.contains(&path.display().to_string()) && notice.contains(".corrupt-"),
            "{notice}"
        );
    }

    #[test]
    fn a_file_over_one_mib_is_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = b"# padding\n".repeat((MAX_BOOKMARKS_FILE as usize) / 10 + 1);
        bytes.truncate(MAX_BOOKMARKS_FILE as usize + 1);
        let (error, _) = assert_moved_aside(&file_in(&dir), &bytes);
        assert!(error.contains("1048577 bytes"), "{error}");
        // Exactly 1 MiB is still read.
        let path = file_in(&dir);
        bytes.truncate(MAX_BOOKMARKS_FILE as usize);
        fs::write(&path, &bytes).unwrap();
        assert!(
            matches!(Bookmarks::load(&path).unwrap(), LoadOutcome::Loaded(b) if b.items.is_empty())
        );
    }

    #[test]
    fn a_second_corrupt_file_does_not_overwrite_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = file_in(&dir);
        let (_, first) = assert_moved_aside(&path, b"first [");
        let (_, second) = assert_moved_aside(&path, b"second [");
        assert_ne!(first, second);
        assert_eq!(fs::read(&first).unwrap(), b"first [");
        assert_eq!(fs::read(&second).unwrap(), b"second [");
        // The same millisecond: the next free suffix.
        for (i, bytes) in [b"third", b"forth", b"fifth"].iter().enumerate() {
            fs::write(&path, bytes).unwrap();
            let to = move_aside(&path, 42).unwrap();
            let suffix = if i == 0 { String::new() } else { format!("-{i}") };
            assert_eq!(to, path.with_file_name(format!("bookmarks.toml.corrupt-42{suffix}")));
            assert_eq!(fs::read(&to).unwrap(), *bytes);
            assert!(!path.exists());
        }
        assert_eq!(fs::read(path.with_file_name("bookmarks.toml.corrupt-42")).unwrap(), b"third");
    }

    #[test]
    fn a_directory_at_the_path_is_an_error_and_stays() {
        let dir = tempfile::tempdir().unwrap();
        let path = file_in(&dir);
        fs::create_dir_all(&path).unwrap();
        let err = Bookmarks::load(&path).unwrap_err();
        assert!(err.to_string().contains(&path.display().to_string()), "{err}");
        assert!(path.is_dir());
    }

    #[cfg(unix)]
    #[test]
    fn an_unreadable_file_is_an_error_and_stays() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = file_in(&dir);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, "not [ toml").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o000)).unwrap();
        if File::open(&path).is_ok() {
            return; // Running as root: permissions do not stop reads.
        }
        let err = Bookmarks::load(&path).unwrap_err();
        assert!(matches!(err, BookmarkError::Read { .. }), "{err:?}");
        assert!(err.to_string().contains(&path.display().to_string()), "{err}");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"not [ toml");
        assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn save_keeps_a_symlink_and_writes_its_target() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("dotfiles").join("bookmarks.toml");
        fs::create_dir_all(real.parent().unwrap()).unwrap();
        fs::write(&real, "").unwrap();
        let path = file_in(&dir);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(&real, &path).unwrap();
        let mut marks = Bookmarks::load(&path).unwrap().into_bookmarks();
        marks.upsert(bm("lab", "h:1"));
        marks.save().unwrap();
        assert!(fs::symlink_metadata(&path).unwrap().file_type().is_symlink());
        assert!(fs::read_to_string(&real).unwrap().contains("\"lab\""));
        assert_eq!(Bookmarks::load(&path).unwrap().into_bookmarks(), marks);
    }

    #[test]
    fn save_refuses_what_load_would_reject() {
        let dir = tempfile::tempdir().unwrap();
        let path = file_in(&dir);
        for items in [
            vec![bm("", "h:1")],
            vec![bm("a\nb", "h:1")],
            vec![bm("a", "h")],
            vec![bm("a", "h:0")],
            vec![bm("a", "h:1"), bm("a", "h:2")],
        ] {
            let err = Bookmarks { path: path.clone(), items }.save().unwrap_err();
            assert!(matches!(err, BookmarkError::Invalid { .. }), "{err:?}");
            assert!(err.to_string().contains(&path.display().to_string()), "{err}");
        }
        assert!(!path.exists());
    }

    #[test]
    fn addresses() {
        for ok in [
            "127.0.0.1:7000",
            "[::1]:7000",
            "[fe80::1%2]:1",
            "localhost:1",
            "node-3.lab_x.example:65535",
        ] {
            assert_eq!(check_address(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "host",
            "host:",
            ":7000",
            "host:0",
            "host:65536",
            "host:+80",
            "host: 80",
            "::1:7000",
            "[::1]",
            "[nope]:1",
            "[::1]:",
            "ho st:1",
            "h/x:1",
            "127.0.0.1:0",
        ] {
            assert!(check_address(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn default_path_prefers_xdg_then_home() {
        let base = tempfile::tempdir().unwrap();
        let xdg = base.path().join("xdg");
        let home = base.path().join("home");
        let env = |vars: Vec<(&'static str, OsString)>| {
            move |key: &str| vars.iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone())
        };
        let both =
            env(vec![("XDG_CONFIG_HOME", xdg.clone().into()), ("HOME", home.clone().into())]);
        assert_eq!(default_path(both), Some(xdg.join("meshdeck").join("bookmarks.toml")));
        let only_home = env(vec![("HOME", home.clone().into())]);
        assert_eq!(
            default_path(only_home),
            Some(home.join(".config").join("meshdeck").join("bookmarks.toml"))
        );
        // Empty or relative XDG_CONFIG_HOME is ignored (XDG base directory spec).
        for bad in ["", "relative/dir"] {
            let ignored = env(vec![("XDG_CONFIG_HOME", bad.into()), ("HOME", home.clone().into())]);
            assert_eq!(default_path(ignored), Some(home.join(".config/meshdeck/bookmarks.toml")));
        }
        assert_eq!(default_path(env(vec![])), None);
        assert_eq!(default_path(env(vec![("HOME", "".into())])), None);
    }

    #[test]
    fn picker_filters_case_insensitively_on_name_and_address() {
        let items = vec![
            bm("Lab", "127.0.0.1:7000"),
            bm("prod", "PROD-1.example:7000"),
            bm("edge", "10.0.0.9:7100"),
        ];
        let names =
            |p: &Picker| p.filtered(&items).iter().map(|b| b.name.clone()).collect::<Vec<_>>();
        let mut p = Picker::new();
        assert_eq!(names(&p), ["Lab", "prod", "edge"]);
        p.query = "LAB".into();
        assert_eq!(names(&p), ["Lab"]);
        p.query = "7000".into();
        assert_eq!(names(&p), ["Lab", "prod"]);
        p.query = "prod-1".into();
        assert_eq!(names(&p), ["prod"]);
        p.query = "nothing".into();
        assert!(names(&p).is_empty());
        assert_eq!(p.chosen(&items), None);
        assert_eq!(p.selected_index(&items), None);
    }

    #[test]
    fn picker_selection_stays_in_range() {
        let items = vec![bm("a1", "h:1"), bm("a2", "h:2"), bm("b", "h:3")];
        let mut p = Picker::new();
        p.up(&items);
        assert_eq!((p.selected, p.chosen(&items).map(|b| b.name.as_str())), (0, Some("a1")));
        for _ in 0..5 {
            p.down(&items);
        }
        assert_eq!((p.selected, p.chosen(&items).map(|b| b.name.as_str())), (2, Some("b")));
        // Narrowing the query clamps a stale selection when read and when moving.
        p.query = "a".into();
        assert_eq!(p.chosen(&items).map(|b| b.name.as_str()), Some("a2"));
        p.up(&items);
        assert_eq!((p.selected, p.chosen(&items).map(|b| b.name.as_str())), (0, Some("a1")));
        p.down(&items);
        p.push('1');
        assert_eq!((p.selected, p.chosen(&items).map(|b| b.name.as_str())), (0, Some("a1")));
        p.pop();
        p.pop();
        assert_eq!(p.query, "");
        p.down(&[]);
        p.up(&[]);
        assert_eq!((p.selected, p.chosen(&[])), (0, None));
    }

    fn arb_bookmark() -> impl Strategy<Value = Bookmark> {
        (
            "\\PC{1,12}".prop_filter("non-blank", |n| !n.trim().is_empty()),
            prop_oneof![
                "[a-z0-9][a-z0-9.-]{0,20}",
                "[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}"
            ],
            1u16..,
            "\\PC{1,30}",
            proptest::option::of("\\PC{1,30}"),
        )
            .prop_map(|(name, host, port, cluster_key, operator_key)| Bookmark {
                name,
                address: format!("{host}:{port}"),
                cluster_key: cluster_key.into(),
                operator_key: operator_key.map(PathBuf::from),
            })
    }

    /// Files worth loading: valid ones, valid ones with one byte changed or cut
    /// short, and arbitrary bytes.
    fn arb_file() -> impl Strategy<Value = Vec<u8>> {
        let valid = proptest::collection::vec(arb_bookmark(), 0..4)
            .prop_map(|items| {
                let body = toml::to_string(&FileOut { cluster: &items }).unwrap();
                format!("{HEADER}{body}").into_bytes()
            })
            .boxed();
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..256),
            valid.clone(),
            (valid.clone(), any::<proptest::sample::Index>(), any::<u8>()).prop_map(
                |(mut v, i, b)| {
                    if !v.is_empty() {
                        let i = i.index(v.len());
                        v[i] = b;
                    }
                    v
                }
            ),
            (valid, any::<proptest::sample::Index>()).prop_map(|(mut v, i)| {
                v.truncate(i.index(v.len() + 1));
                v
            }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn load_never_loses_a_file(bytes in arb_file()) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join(FILE_NAME);
            fs::write(&path, &bytes).unwrap();
            match Bookmarks::load(&path).unwrap() {
                LoadOutcome::Loaded(marks) => {
                    prop_assert_eq!(fs::read(&path).unwrap(), bytes);
                    // What loads saves and loads back the same.
                    marks.save().unwrap();
                    prop_assert_eq!(Bookmarks::load(&path).unwrap(), LoadOutcome::Loaded(marks));
                }
                LoadOutcome::Corrupt { bookmarks, moved_to, error } => {
                    prop_assert!(bookmarks.items.is_empty());
                    prop_assert!(!error.is_empty());
                    prop_assert!(!path.exists());
                    prop_assert_eq!(fs::read(&moved_to).unwrap(), bytes);
                }
                LoadOutcome::Missing(_) => prop_assert!(false, "an existing file loaded as missing"),
            }
        }

        #[test]
        fn valid_bookmarks_round_trip(items in proptest::collection::vec(arb_bookmark(), 0..6)) {
            let dir = tempfile::tempdir().unwrap();
            let mut marks = Bookmarks::new(dir.path().join(FILE_NAME));
            for b in items {
                marks.upsert(b);
            }
            marks.save().unwrap();
            prop_assert_eq!(Bookmarks::load(&marks.path).unwrap(), LoadOutcome::Loaded(marks));
        }
    }
}
