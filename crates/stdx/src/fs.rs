//! Files: bounded reads, private files and directories, atomic replacement,
//! moving a bad file aside.
//!
//! Every file these helpers create is private to its owner on Unix
//! ([`PRIVATE_FILE_MODE`], [`PRIVATE_DIR_MODE`]); elsewhere permissions are left
//! to the platform.

use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::Error;

/// Mode of the files created here: read and write for the owner only.
pub const PRIVATE_FILE_MODE: u32 = 0o600;
/// Mode of the directories created here: the owner only.
pub const PRIVATE_DIR_MODE: u32 = 0o700;

/// What [`read_bounded`] accepts: a size cap and, on Unix, permission bits that
/// users other than the owner must not have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadLimits {
    max_bytes: u64,
    refused_mode: u32,
}

impl ReadLimits {
    /// Files of at most `max_bytes`, whatever their permissions.
    pub const fn new(max_bytes: u64) -> ReadLimits {
        ReadLimits { max_bytes, refused_mode: 0 }
    }

    /// A secret (a key file): refused when group or others have any access
    /// (any of mode `0o077`), since whoever can read it holds the key.
    pub const fn secret(max_bytes: u64) -> ReadLimits {
        ReadLimits { max_bytes, refused_mode: 0o077 }
    }

    /// A file that decides whom to trust (a list of operators): refused when
    /// group or others may write it (any of mode `0o022`).
    pub const fn trusted(max_bytes: u64) -> ReadLimits {
        ReadLimits { max_bytes, refused_mode: 0o022 }
    }

    /// The size cap in bytes.
    pub const fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// The permission bits that make a file refused (0: none).
    pub const fn refused_mode(&self) -> u32 {
        self.refused_mode
    }
}

/// Reads the regular file at `path` whole, if it is within `limits`.
///
/// The file is opened once and everything is checked on that open file, so it
/// cannot be swapped between the checks and the read: it must be a regular file
/// ([`Error::NotAFile`]; on Unix it is opened non-blocking, so a FIFO is refused
/// rather than waited on), its permissions must not include
/// [`ReadLimits::refused_mode`] ([`Error::Permissions`], Unix only), and it must
/// hold at most [`ReadLimits::max_bytes`] bytes, also if it grows while being
/// read ([`Error::TooLarge`]). The buffer is allocated once at the file's size,
/// so a caller holding a secret can wrap it in a zeroizing type without stray
/// copies left behind.
pub fn read_bounded(path: &Path, limits: ReadLimits) -> Result<Vec<u8>, Error> {
    let file = open_for_reading(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(Error::NotAFile);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o7777;
        if mode & limits.refused_mode != 0 {
            return Err(Error::Permissions { mode });
        }
    }
    let max = limits.max_bytes;
    if meta.len() > max {
        return Err(Error::TooLarge { size: meta.len(), max });
    }
    // One byte more than the size, so reading to the end needs no second buffer.
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0).saturating_add(1));
    file.take(max.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(Error::TooLarge { size: bytes.len() as u64, max });
    }
    Ok(bytes)
}

fn open_for_reading(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Non-blocking only matters for the open itself (a FIFO without a
        // writer); reads of a regular file ignore it.
        options.custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32);
    }
    options.open(path)
}

/// Creates a new file at `path` for writing, failing with
/// [`io::ErrorKind::AlreadyExists`] if anything is there; mode
/// [`PRIVATE_FILE_MODE`] on Unix.
pub fn create_new_private(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(PRIVATE_FILE_MODE);
    }
    options.open(path)
}

/// Writes `bytes` to a new private file at `path` ([`create_new_private`]) and
/// makes it durable: the file and its directory entry are synced before this
/// returns. Never overwrites (`AlreadyExists`); a file it created but could not
/// finish is removed.
pub fn write_new_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = create_new_private(path)?;
    let written = file.write_all(bytes).and_then(|()| file.sync_all());
    drop(file);
    if let Err(e) = written {
        let _ = fs::remove_file(path);
        return Err(e);
    }
    sync_dir(parent_dir(path))
}

/// Creates `dir` and its missing parents, each new one with mode
/// [`PRIVATE_DIR_MODE`] on Unix. Directories that exist are left as they are.
pub fn create_dir_private(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(PRIVATE_DIR_MODE);
    }
    builder.create(dir)
}

/// Makes the entries of `dir` (files created, renamed or removed in it)
/// durable. A no-op where directories cannot be opened (not Unix).
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// The directory holding `path` (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Replaces the file at `path` with `bytes` atomically: readers see the old
/// content or the new, never a mix, also after a crash.
///
/// The bytes go to a new private temporary file in the same directory, named
/// `.<name>.tmp-<pid>-<n>` ([`is_temp_of`] recognises leftovers), which is
/// synced, renamed over `path` and the directory synced. A symlink at `path` is
/// followed, so it keeps pointing at the file. The file ends up with mode
/// [`PRIVATE_FILE_MODE`] on Unix. On failure the temporary file is removed and
/// `path` is as it was (unless only the final directory sync failed).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let target = match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => {
            fs::canonicalize(path).unwrap_or_else(|_| path.to_owned())
        }
        _ => path.to_owned(),
    };
    let name = target.file_name().ok_or_else(|| no_file_name(path))?;
    let dir = parent_dir(&target);
    let (tmp, mut file) = create_temp(dir, name)?;
    let written = (|| {
        file.write_all(bytes)?;
        #[cfg(unix)]
        {
            // Whatever the umask took away, the owner can read and write it.
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(fs::Permissions::from_mode(PRIVATE_FILE_MODE))?;
        }
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, &target)
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    sync_dir(dir)
}

/// Whether `name` is a temporary file [`write_atomic`] made for a file named
/// `file_name` (one left behind by a crash, for instance).
pub fn is_temp_of(name: &OsStr, file_name: &OsStr) -> bool {
    let (Some(name), Some(file_name)) = (name.to_str(), file_name.to_str()) else {
        return false;
    };
    name.strip_prefix('.')
        .and_then(|rest| rest.strip_prefix(file_name))
        .is_some_and(|rest| rest.starts_with(".tmp-"))
}

/// Temporary names are unique within a process through this counter, and
/// across processes through the pid.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);
/// How many taken temporary names (leftovers of a process with the same pid)
/// are skipped before giving up.
const TEMP_ATTEMPTS: u32 = 1000;

/// A new private `.<name>.tmp-<pid>-<n>` in `dir`.
fn create_temp(dir: &Path, name: &OsStr) -> io::Result<(PathBuf, File)> {
    let pid = std::process::id();
    let mut attempts = 0;
    loop {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut temp = OsString::from(".");
        temp.push(name);
        temp.push(format!(".tmp-{pid}-{n}"));
        let path = dir.join(temp);
        match create_new_private(&path) {
            Ok(file) => return Ok((path, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempts < TEMP_ATTEMPTS => {
                attempts += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// How many `<name>.<suffix>-<n>` names [`move_aside`] tries.
const MOVE_ASIDE_ATTEMPTS: u32 = 1000;

/// Moves the file at `path` out of the way, to `<name>.<suffix>` in its
/// directory (then `<name>.<suffix>-1`, `-2`, ... when taken), never over an
/// existing file, and returns where it went.
///
/// For a file that cannot be used but must not be lost: a corrupt settings
/// file is moved aside (`suffix` = `corrupt-<time>`) and a fresh one started.
/// The move is a hard link and an unlink (atomic, and it fails rather than
/// replace anything); where hard links are not supported, a copy into a new
/// private file. On failure `path` is left as it was.
pub fn move_aside(path: &Path, suffix: &str) -> io::Result<PathBuf> {
    let name = path.file_name().ok_or_else(|| no_file_name(path))?;
    let dir = parent_dir(path);
    for n in 0..MOVE_ASIDE_ATTEMPTS {
        let mut aside = name.to_os_string();
        aside.push(format!(".{suffix}"));
        if n > 0 {
            aside.push(format!("-{n}"));
        }
        let to = dir.join(aside);
        match move_no_clobber(path, &to) {
            Ok(()) => return Ok(to),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!("{MOVE_ASIDE_ATTEMPTS} names for the moved file are all taken"),
    ))
}

/// Moves `from` to `to` unless `to` exists: a hard link (atomic, fails on an
/// existing `to`) and an unlink; where hard links are not supported, a copy to a
/// newly created `to`. On failure `from` is left as it was.
fn move_no_clobber(from: &Path, to: &Path) -> io::Result<()> {
    match fs::hard_link(from, to) {
        Ok(()) => {}
        Err(e) if matches!(e.kind(), io::ErrorKind::AlreadyExists | io::ErrorKind::NotFound) => {
            return Err(e);
        }
        Err(_) => copy_to_new(from, to)?,
    }
    if let Err(e) = fs::remove_file(from) {
        // `to` is ours (a new link or a new file): undo so there is one copy.
        let _ = fs::remove_file(to);
        return Err(e);
    }
    Ok(())
}

/// Copies `from` into a newly created private `to` and syncs it.
fn copy_to_new(from: &Path, to: &Path) -> io::Result<()> {
    let mut src = File::open(from)?;
    let mut dst = create_new_private(to)?;
    let copied = io::copy(&mut src, &mut dst).and_then(|_| dst.sync_all());
    if let Err(e) = copied {
        let _ = fs::remove_file(to);
        return Err(e);
    }
    Ok(())
}

fn no_file_name(path: &Path) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, format!("{} names no file", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[cfg(unix)]
    fn set_mode(path: &Path, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn bounded_reads_take_regular_files_within_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        fs::write(&path, b"1234").unwrap();
        assert_eq!(read_bounded(&path, ReadLimits::new(4)).unwrap(), b"1234");
        let err = read_bounded(&path, ReadLimits::new(3)).unwrap_err();
        assert!(matches!(err, Error::TooLarge { size: 4, max: 3 }), "{err}");
        fs::write(&path, b"").unwrap();
        assert_eq!(read_bounded(&path, ReadLimits::new(0)).unwrap(), b"");
        assert!(matches!(read_bounded(dir.path(), ReadLimits::new(9)), Err(Error::NotAFile)));
        let missing = read_bounded(&dir.path().join("missing"), ReadLimits::new(9)).unwrap_err();
        assert!(missing.is_not_found(), "{missing}");
    }

    #[cfg(unix)]
    #[test]
    fn bounded_reads_refuse_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        fs::write(&path, b"secret").unwrap();
        set_mode(&path, 0o644);
        assert!(matches!(
            read_bounded(&path, ReadLimits::secret(64)),
            Err(Error::Permissions { mode: 0o644 })
        ));
        assert_eq!(read_bounded(&path, ReadLimits::trusted(64)).unwrap(), b"secret");
        set_mode(&path, 0o664);
        assert!(matches!(
            read_bounded(&path, ReadLimits::trusted(64)),
            Err(Error::Permissions { mode: 0o664 })
        ));
        set_mode(&path, 0o600);
        assert_eq!(read_bounded(&path, ReadLimits::secret(64)).unwrap(), b"secret");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn bounded_reads_refuse_a_fifo_without_waiting_for_a_writer() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::Mode::RUSR | rustix::fs::Mode::WUSR,
        )
        .unwrap();
        assert!(matches!(read_bounded(&fifo, ReadLimits::new(64)), Err(Error::NotAFile)));
    }

    #[test]
    fn private_files_are_new_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new");
        write_new_private(&path, b"one").unwrap();
        let err = write_new_private(&path, b"two").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&path).unwrap(), b"one");
        #[cfg(unix)]
        assert_eq!(mode(&path), PRIVATE_FILE_MODE);

        let nested = dir.path().join("a/b/c");
        create_dir_private(&nested).unwrap();
        create_dir_private(&nested).unwrap();
        #[cfg(unix)]
        {
            assert_eq!(mode(&nested), PRIVATE_DIR_MODE);
            assert_eq!(mode(&dir.path().join("a")), PRIVATE_DIR_MODE);
        }
    }

    #[test]
    fn atomic_writes_replace_and_leave_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        write_atomic(&path, b"first").unwrap();
        write_atomic(&path, b"second").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second");
        let names: Vec<_> =
            fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, [OsString::from("state")]);
        #[cfg(unix)]
        assert_eq!(mode(&path), PRIVATE_FILE_MODE);
        // A missing directory is an error, not a write somewhere else.
        assert!(write_atomic(&dir.path().join("no/such/dir/f"), b"x").is_err());
    }

    #[cfg(unix)]
    #[test]
    fn atomic_writes_follow_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        fs::write(&real, b"old").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        write_atomic(&link, b"new").unwrap();
        assert!(fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        assert_eq!(fs::read(&real).unwrap(), b"new");
    }

    #[test]
    fn temporary_names_are_recognised() {
        let (dir, name) = (tempfile::tempdir().unwrap(), OsStr::new("marker"));
        let (tmp, _file) = create_temp(dir.path(), name).unwrap();
        assert!(is_temp_of(tmp.file_name().unwrap(), name));
        assert!(!is_temp_of(OsStr::new("marker"), name));
        assert!(!is_temp_of(OsStr::new(".marker.tmp"), name));
        assert!(!is_temp_of(OsStr::new(".other.tmp-1-2"), name));
    }

    #[test]
    fn moving_aside_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings");
        let taken = dir.path().join("settings.bad");
        fs::write(&taken, b"older").unwrap();
        fs::write(&path, b"newer").unwrap();
        let to = move_aside(&path, "bad").unwrap();
        assert_eq!(to, dir.path().join("settings.bad-1"));
        assert_eq!(
            (fs::read(&taken).unwrap(), fs::read(&to).unwrap()),
            (b"older".to_vec(), b"newer".to_vec())
        );
        assert!(!path.exists());
        assert_eq!(move_aside(&path, "bad").unwrap_err().kind(), io::ErrorKind::NotFound);
        assert_eq!(
            move_aside(Path::new("/"), "bad").unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
    }

    #[test]
    fn the_copy_fallback_keeps_the_bytes_and_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("from");
        let to = dir.path().join("to");
        fs::write(&from, b"\x00bytes\xff").unwrap();
        copy_to_new(&from, &to).unwrap();
        assert_eq!(fs::read(&to).unwrap(), b"\x00bytes\xff");
        fs::write(&from, b"other").unwrap();
        assert_eq!(copy_to_new(&from, &to).unwrap_err().kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&to).unwrap(), b"\x00bytes\xff");
    }
}
