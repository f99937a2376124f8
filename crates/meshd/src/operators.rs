//! The operators file: who may command this node, and how many must agree.
//!
//! ```toml
//! # Distinct operators whose signatures a command needs.
//! routine_threshold = 1        # cordon, drain, maintenance ... (default 1)
//! ice_threshold = 1            # break-glass: freeze, force restart ... (default 1)
//! ice_cooldown_secs = 30       # between two ICE commands on one target (default 30; 0: none)
//! freshness_secs = 300         # how long a signed command stays valid (default 300)
//!
//! [[operator]]
//! name = "alice"
//! public_key = "<64 hex digits>"   # `meshd keygen-operator alice.key` prints this table
//! ```
//!
//! Every problem is reported with the file and the line at fault: a syntax error,
//! an unknown field, a key that is not an ed25519 public key, a duplicate operator,
//! a threshold of 0 or above the number of operators (no command could ever pass).

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use mesh_auth::{AdminVerifier, OperatorId, OperatorRegistry, PublicKey, VerifierConfig};
use serde::Deserialize;
use toml::Spanned;

use crate::error::{ErrorKind, MeshdError};

/// Largest operators file read (it is a short list of keys).
pub const MAX_OPERATORS_FILE: u64 = 1 << 20;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    routine_threshold: Option<Spanned<usize>>,
    ice_threshold: Option<Spanned<usize>>,
    ice_cooldown_secs: Option<Spanned<u64>>,
    freshness_secs: Option<Spanned<u64>>,
    #[serde(default, rename = "operator")]
    operators: Vec<Spanned<RawOperator>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOperator {
    name: Spanned<String>,
    public_key: Spanned<String>,
}

/// A parsed, checked operators file.
#[derive(Clone, Debug)]
pub struct Operators {
    path: PathBuf,
    registry: OperatorRegistry,
    names: Vec<(String, OperatorId)>,
    config: VerifierConfig,
}

impl Operators {
    /// Reads and checks the file at `path`.
    ///
    /// The file is opened once and read with a size cap ([`MAX_OPERATORS_FILE`]).
    /// It decides who may command the node, so on Unix a file that group or
    /// others may write (any of mode 0o022) is refused with
    /// [`ErrorKind::WritableByOthers`], naming the file and its mode.
    pub fn load(path: &Path) -> Result<Operators, MeshdError> {
        let what = || format!("operators file {}", path.display());
        let limits = stdx::fs::ReadLimits::trusted(MAX_OPERATORS_FILE);
        let raw = stdx::fs::read_bounded(path, limits).map_err(|e| match e {
            stdx::Error::Permissions { mode } => MeshdError::new(
                what(),
                format!(
                    "mode {mode:04o} lets other users change who may command this node; run `chmod go-w {}`",
                    path.display()
                ),
            )
            .with_kind(ErrorKind::WritableByOthers { path: path.to_owned(), mode }),
            stdx::Error::TooLarge { .. } => MeshdError::new(
                what(),
                format!(
                    "larger than {MAX_OPERATORS_FILE} bytes; an operators file is at most that"
                ),
            ),
            other => MeshdError::new(what(), other),
        })?;
        let text = String::from_utf8(raw)
            .map_err(|e| MeshdError::new(what(), format!("not UTF-8 text: {e}")))?;
        Self::parse(&text, path)
    }

    /// Parses and checks `text`; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Operators, MeshdError> {
        let at = |span: Option<Range<usize>>| match span {
            Some(span) => format!(
                "operators file {}: {}",
                path.display(),
                stdx::text::LineCol::of(text, span.start)
            ),
            None => format!("operators file {}", path.display()),
        };
        let raw: RawFile = toml::from_str(text)
            .map_err(|e| MeshdError::new(at(e.span()), stdx::text::one_line(e.message())))?;

        let mut registry = OperatorRegistry::new();
        let mut names: Vec<(String, OperatorId)> = Vec::new();
        for op in &raw.operators {
            let name = op.get_ref().name.get_ref().trim();
            if name.is_empty() || name.chars().any(char::is_control) {
                return Err(MeshdError::new(
                    at(Some(op.get_ref().name.span())),
                    "operator name must be non-empty printable text",
                ));
            }
            let key_field = &op.get_ref().public_key;
            let public = PublicKey::from_hex(key_field.get_ref().trim()).map_err(|e| {
                MeshdError::new(
                    at(Some(key_field.span())),
                    format!("public_key of operator {name:?}: {e}"),
                )
            })?;
            if names.iter().any(|(n, _)| n == name) {
                return Err(MeshdError::new(
                    at(Some(op.get_ref().name.span())),
                    format!("operator {name:?} is listed twice"),
                ));
            }
            if registry.contains(&public) {
                return Err(MeshdError::new(
                    at(Some(key_field.span())),
                    format!("operator {name:?} has the same public_key as an operator above"),
                ));
            }
            let id = registry.register_public(public);
            names.push((name.to_owned(), id));
        }
        if registry.is_empty() {
            return Err(MeshdError::new(
                at(None),
                "no [[operator]] entries; list at least one operator (or run without --operators to refuse every command)",
            ));
        }

        let defaults = VerifierConfig::default();
        let threshold = |field: &Option<Spanned<usize>>, name: &str| match field {
            None => Ok(1),
            Some(v) if *v.get_ref() == 0 => {
                Err(MeshdError::new(at(Some(v.span())), format!("{name} must be at least 1")))
            }
            Some(v) if *v.get_ref() > registry.len() => Err(MeshdError::new(
                at(Some(v.span())),
                format!(
                    "{name} is {} but only {} operator(s) are listed: no command could ever be accepted",
                    v.get_ref(),
                    registry.len()
                ),
            )),
            Some(v) => Ok(*v.get_ref()),
        };
        let routine_threshold = threshold(&raw.routine_threshold, "routine_threshold")?;
        let ice_threshold = threshold(&raw.ice_threshold, "ice_threshold")?;
        let ice_cooldown = raw
            .ice_cooldown_secs
            .as_ref()
            .map_or(defaults.ice_cooldown, |v| Duration::from_secs(*v.get_ref()));
        let freshness = match &raw.freshness_secs {
            None => defaults.freshness,
            Some(v) if *v.get_ref() == 0 || *v.get_ref() > 24 * 3600 => {
                return Err(MeshdError::new(
                    at(Some(v.span())),
                    "freshness_secs must be between 1 and 86400",
                ));
            }
            Some(v) => Duration::from_secs(*v.get_ref()),
        };
        let config = VerifierConfig {
            routine_threshold,
            ice_threshold,
            ice_cooldown,
            freshness,
            ..defaults
        };
        Ok(Operators { path: path.to_owned(), registry, names, config })
    }

    /// The file it was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The registered operators.
    pub fn registry(&self) -> &OperatorRegistry {
        &self.registry
    }

    /// Operator names with their ids, in file order.
    pub fn names(&self) -> &[(String, OperatorId)] {
        &self.names
    }

    /// Thresholds and windows.
    pub fn config(&self) -> &VerifierConfig {
        &self.config
    }

    /// A fresh verifier trusting these operators.
    pub fn verifier(&self) -> AdminVerifier {
        AdminVerifier::with_config(Arc::new(self.registry.clone()), self.config.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesh_auth::EntityKeypair;

    fn key_hex(seed: u8) -> String {
        EntityKeypair::from_seed(&[seed; 32]).public().to_hex()
    }

    fn parse(text: &str) -> Result<Operators, MeshdError> {
        Operators::parse(text, Path::new("ops.toml"))
    }

    #[test]
    fn a_good_file() {
        let text = format!(
            "routine_threshold = 2\nice_threshold = 1\nice_cooldown_secs = 0\n\n\
             [[operator]]\nname = \"alice\"\npublic_key = \"{}\"\n\n\
             [[operator]]\nname = \"bob\"\npublic_key = \"{}\"\n",
            key_hex(1),
            key_hex(2)
        );
        let ops = parse(&text).unwrap();
        assert_eq!(ops.registry().len(), 2);
        assert_eq!(ops.config().routine_threshold, 2);
        assert_eq!(ops.config().ice_threshold, 1);
        assert_eq!(ops.config().ice_cooldown, Duration::ZERO);
        assert_eq!(ops.names()[1].0, "bob");
    }

    #[test]
    fn errors_name_the_line_and_field() {
        let cases = [
            (
                "[[operator]]\nname = \"a\"\npublic_key = \"abcd\"\n".to_owned(),
                "line 3",
                "public_key",
            ),
            (
                format!(
                    "[[operator]]\nname = \"a\"\npublic_key = \"{}\"\ncolour = 1\n",
                    key_hex(1)
                ),
                "line 4",
                "colour",
            ),
            ("routine_threshold = \"x\"\n".to_owned(), "line 1", "invalid type"),
            ("routine_threshold = 1\nthis is not toml\n".to_owned(), "line 2", ""),
            ("routine_threshold = 1\n".to_owned(), "ops.toml", "no [[operator]]"),
            (
                format!(
                    "routine_threshold = 0\n[[operator]]\nname = \"a\"\npublic_key = \"{}\"\n",
                    key_hex(1)
                ),
                "line 1",
                "at least 1",
            ),
            (
                format!(
                    "ice_threshold = 3\n[[operator]]\nname = \"a\"\npublic_key = \"{}\"\n",
                    key_hex(1)
                ),
                "line 1",
                "only 1 operator",
            ),
            (
                format!(
                    "[[operator]]\nname = \"a\"\npublic_key = \"{k}\"\n[[operator]]\nname = \"b\"\npublic_key = \"{k}\"\n",
                    k = key_hex(1)
                ),
                "line 6",
                "same public_key",
            ),
            (
                format!(
                    "[[operator]]\nname = \"a\"\npublic_key = \"{}\"\n[[operator]]\nname = \"a\"\npublic_key = \"{}\"\n",
                    key_hex(1),
                    key_hex(2)
                ),
                "line 5",
                "listed twice",
            ),
        ];
        for (text, place, reason) in cases {
            let err = parse(&text).unwrap_err().to_string();
            assert!(err.starts_with("operators file ops.toml"), "{err}");
            assert!(err.contains(place), "{err:?} should name {place:?}");
            assert!(err.contains(reason), "{err:?} should say {reason:?}");
            assert!(!err.contains('\n'), "one line: {err:?}");
        }
    }

    #[test]
    fn load_reads_a_private_file_and_caps_its_size() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("ops.toml");
        let text = format!("[[operator]]\nname = \"alice\"\npublic_key = \"{}\"\n", key_hex(1));
        std::fs::write(&path, &text).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        assert_eq!(Operators::load(&path).unwrap().registry().len(), 1);

        let big = tmp.path().join("big.toml");
        let file = std::fs::File::create(&big).unwrap();
        file.set_len(MAX_OPERATORS_FILE + 1).unwrap();
        let err = Operators::load(&big).unwrap_err().to_string();
        assert!(err.contains("at most"), "{err}");

        let err = Operators::load(tmp.path()).unwrap_err().to_string();
        assert!(err.starts_with("operators file "), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn a_file_others_can_write_is_refused_with_its_mode() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("ops.toml");
        let text = format!("[[operator]]\nname = \"alice\"\npublic_key = \"{}\"\n", key_hex(1));
        std::fs::write(&path, text).unwrap();
        for mode in [0o666, 0o620, 0o602] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let err = Operators::load(&path).unwrap_err();
            assert_eq!(err.kind(), &ErrorKind::WritableByOthers { path: path.clone(), mode });
            let line = err.to_string();
            assert!(line.contains(&path.display().to_string()), "{line}");
            assert!(line.contains(&format!("mode {mode:04o}")), "{line}");
        }
    }
}
