//! Key files: the cluster key, node identities and operator keys.
//!
//! - The cluster key file is one comment line and 64 hex digits, mode 0600,
//!   written by [`mesh::ClusterKey::save`] and read by [`mesh::ClusterKey::load`]
//!   (which refuses a file other users can read).
//! - Node identities and operator keys are [`mesh_auth::EntityKeypair`] key files
//!   (mode 0600; loading refuses files other users can read).

use std::io::Write;
use std::path::Path;

use mesh::ClusterKey;
use mesh_auth::{AuthError, EntityKeypair};

use crate::error::MeshdError;

/// Writes `key` to a new file at `path` (mode 0600, through
/// [`ClusterKey::save`]), refusing to overwrite one.
pub fn write_cluster_key(path: &Path, key: &ClusterKey) -> Result<(), MeshdError> {
    let what = || format!("cluster key {}", path.display());
    key.save(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            MeshdError::new(what(), "already exists; refusing to overwrite it")
        } else {
            MeshdError::new(what(), e)
        }
    })
}

/// Loads the cluster key at `path`, with an error naming the file.
///
/// [`ClusterKey::load`] refuses (on Unix) a file other users may read or write
/// (any of mode 0o077); its reason names the mode and the `chmod` that fixes it.
pub fn load_cluster_key(path: &Path) -> Result<ClusterKey, MeshdError> {
    ClusterKey::load(path).map_err(|e| match e {
        mesh::MeshError::ClusterKey { reason, .. } => {
            MeshdError::new(format!("cluster key {}", path.display()), reason)
        }
        other => MeshdError::new(format!("cluster key {}", path.display()), other),
    })
}

/// Loads the node identity at `path`, or creates one there if the file does not
/// exist. Returns the key and whether it was created.
pub fn load_or_create_identity(path: &Path) -> Result<(EntityKeypair, bool), MeshdError> {
    let what = || format!("identity {}", path.display());
    if path.exists() {
        return EntityKeypair::load(path)
            .map(|k| (k, false))
            .map_err(|e| MeshdError::new(what(), e));
    }
    let key = EntityKeypair::try_generate().map_err(|e| MeshdError::new(what(), e))?;
    key.save(path).map_err(|e| MeshdError::new(what(), e))?;
    Ok((key, true))
}

/// A key file error about `what` (which already names the file), without
/// repeating the path.
fn key_file_error(what: String, e: AuthError) -> MeshdError {
    match e {
        AuthError::Io { source, .. } => MeshdError::new(what, source),
        AuthError::KeyFileMalformed { reason, .. } => {
            MeshdError::new(what, format!("not a valid key file: {reason}"))
        }
        AuthError::KeyFileMismatch { .. } => {
            MeshdError::new(what, "corrupt: its public key does not match its secret key")
        }
        AuthError::KeyFilePermissions { path, mode } => MeshdError::new(
            what,
            format!(
                "readable by other users (mode {mode:03o}); run `chmod 600 {}`",
                path.display()
            ),
        ),
        AuthError::KeyFileExists { .. } => {
            MeshdError::new(what, "already exists; refusing to overwrite it")
        }
        other => MeshdError::new(what, other),
    }
}

/// `meshd keygen-cluster PATH`: writes a fresh cluster key and reports its
/// fingerprint on `out`.
pub fn keygen_cluster(path: &Path, out: &mut dyn Write) -> Result<(), MeshdError> {
    let key = ClusterKey::generate()
        .map_err(|e| MeshdError::new(format!("cluster key {}", path.display()), e))?;
    write_cluster_key(path, &key)?;
    writeln!(out, "cluster key {} fingerprint {}", path.display(), key.fingerprint())
        .map_err(|e| MeshdError::new("stdout", e))
}

/// `meshd keygen-operator PATH`: writes a fresh operator key file and prints an
/// `[[operator]]` table for the operators file (name from the file stem).
pub fn keygen_operator(path: &Path, out: &mut dyn Write) -> Result<(), MeshdError> {
    let what = format!("operator key {}", path.display());
    let key = EntityKeypair::try_generate().map_err(|e| key_file_error(what.clone(), e))?;
    key.save(path).map_err(|e| key_file_error(what, e))?;
    writeln!(out, "{}", operator_table(path, &key)).map_err(|e| MeshdError::new("stdout", e))
}

/// The `[[operator]]` table registering `key`, named after the file stem of `path`.
pub fn operator_table(path: &Path, key: &EntityKeypair) -> String {
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let name: String = stem
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect();
    let name = if name.is_empty() { "operator".to_owned() } else { name };
    let public = key.public();
    format!(
        "# operator {} (key file {})\n[[operator]]\nname = \"{name}\"\npublic_key = \"{}\"",
        public.operator_id(),
        path.display(),
        public.to_hex()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_key_round_trips_and_is_private() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("cluster.key");
        let mut out = Vec::new();
        keygen_cluster(&path, &mut out).unwrap();
        let key = load_cluster_key(&path).unwrap();
        let line = String::from_utf8(out).unwrap();
        assert!(line.contains(&key.fingerprint()), "{line}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let err = keygen_cluster(&path, &mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("already exists"), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn a_cluster_key_other_users_can_read_is_refused_naming_the_file() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("open.key");
        write_cluster_key(&path, &ClusterKey::from_bytes([7; 32])).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = load_cluster_key(&path).unwrap_err();
        assert_eq!(err.what(), format!("cluster key {}", path.display()));
        assert!(err.why().contains("lets other users read it"), "{err}");
        assert!(err.why().contains("0644") && err.why().contains("chmod 600"), "{err}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(load_cluster_key(&path).unwrap().as_bytes(), &[7; 32]);
    }

    #[test]
    fn identity_is_created_once_then_reused() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("identity.key");
        let (a, created) = load_or_create_identity(&path).unwrap();
        assert!(created);
        let (b, created) = load_or_create_identity(&path).unwrap();
        assert!(!created);
        assert_eq!(a.node_id(), b.node_id());
    }

    #[test]
    fn operator_table_parses_as_an_operators_file() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("alice.key");
        let mut out = Vec::new();
        keygen_operator(&path, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let ops = crate::operators::Operators::parse(&text, Path::new("ops.toml")).unwrap();
        let key = EntityKeypair::load(&path).unwrap();
        assert!(ops.registry().contains(&key.public()));
        assert_eq!(ops.names()[0].0, "alice");
    }
}
