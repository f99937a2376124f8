//! ed25519 keypairs, public keys, signatures and the key-file format.
//!
//! # Key file format
//!
//! A key file is UTF-8 text, at most 4 KiB, created with mode 0600:
//!
//! ```text
//! meshdeck-ed25519-key v1
//! # any line starting with '#' is a comment
//! public 3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29
//! secret 9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60
//! ```
//!
//! The first line is [`KEY_FILE_HEADER`]. `secret` is the 32-byte ed25519 seed and
//! `public` its public key, both as 64 hex digits. `load` recomputes the public key
//! from the seed and refuses the file if they differ, so a flipped digit is caught.

use std::fmt;
use std::path::Path;

use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroizing;

use crate::AuthError;
use crate::ids::{NODE_ID_CONTEXT, NodeId, ORIGIN_HASH_CONTEXT, OriginHash, derive_u64};

/// First line of every key file; the trailing token is the format version.
pub const KEY_FILE_HEADER: &str = "meshdeck-ed25519-key v1";

/// Key files larger than this are refused without being parsed.
const MAX_KEY_FILE_BYTES: u64 = 4096;

/// How key files are read: at most [`MAX_KEY_FILE_BYTES`], refused when other
/// users have any access (whoever can read one holds the key).
const KEY_FILE_LIMITS: stdx::fs::ReadLimits = stdx::fs::ReadLimits::secret(MAX_KEY_FILE_BYTES);

/// An ed25519 keypair that identifies a node, a daemon or an operator.
///
/// The secret half is zeroized when the value is dropped and `Debug` prints only the
/// public half.
#[derive(Clone)]
pub struct EntityKeypair {
    signing: SigningKey,
}

impl EntityKeypair {
    /// A fresh keypair from the operating system's random number generator.
    ///
    /// # Panics
    ///
    /// Panics if the operating system cannot provide randomness, which leaves no
    /// safe way to go on. Use [`EntityKeypair::try_generate`] to handle that case.
    pub fn generate() -> Self {
        match Self::try_generate() {
            Ok(key) => key,
            Err(e) => panic!("cannot generate a keypair: {e}"),
        }
    }

    /// A fresh keypair, or an error if the system RNG fails.
    pub fn try_generate() -> Result<Self, AuthError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        getrandom::getrandom(seed.as_mut()).map_err(|e| AuthError::Random(e.to_string()))?;
        Ok(Self::from_seed(&seed))
    }

    /// The keypair for a 32-byte ed25519 seed (deterministic; for tests and key files).
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self { signing: SigningKey::from_bytes(seed) }
    }

    /// The public half.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.signing.verifying_key())
    }

    /// Signs `message`.
    pub fn sign(&self, message: &[u8]) -> Signature {
        use ed25519_dalek::Signer;
        Signature(self.signing.sign(message))
    }

    /// The node id for this key.
    pub fn node_id(&self) -> NodeId {
        self.public().node_id()
    }

    /// The origin hash (daemon id) for this key.
    pub fn origin_hash(&self) -> OriginHash {
        self.public().origin_hash()
    }

    /// The 32-byte secret seed, in a buffer that is zeroized on drop.
    pub fn secret_seed(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.signing.to_bytes())
    }

    /// Writes the keypair to a new file at `path` with mode 0600.
    ///
    /// Refuses to overwrite an existing file. The file is flushed to disk before
    /// this returns.
    pub fn save(&self, path: &Path) -> Result<(), AuthError> {
        let seed = self.secret_seed();
        let text = Zeroizing::new(format!(
            "{KEY_FILE_HEADER}\n# node id {}\npublic {}\nsecret {}\n",
            self.node_id(),
            stdx::hex::encode(self.public().as_bytes()),
            Zeroizing::new(stdx::hex::encode(seed.as_ref())).as_str(),
        ));
        stdx::fs::write_new_private(path, text.as_bytes()).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                AuthError::KeyFileExists { path: path.to_owned() }
            } else {
                AuthError::Io { path: path.to_owned(), source: e }
            }
        })
    }

    /// Reads a key file written by [`EntityKeypair::save`].
    ///
    /// Refuses a file that other users can read, and reports a truncated or corrupt
    /// file with a typed error naming the path.
    pub fn load(path: &Path) -> Result<Self, AuthError> {
        let raw = stdx::fs::read_bounded(path, KEY_FILE_LIMITS).map_err(|e| match e {
            stdx::Error::Permissions { mode } => {
                AuthError::KeyFilePermissions { path: path.to_owned(), mode: mode & 0o777 }
            }
            stdx::Error::TooLarge { size, .. } => AuthError::KeyFileMalformed {
                path: path.to_owned(),
                reason: format!("{size} bytes, larger than any key file"),
            },
            stdx::Error::NotAFile => AuthError::KeyFileMalformed {
                path: path.to_owned(),
                reason: "not a regular file".into(),
            },
            stdx::Error::Io(source) => AuthError::Io { path: path.to_owned(), source },
            other => AuthError::Io { path: path.to_owned(), source: std::io::Error::other(other) },
        })?;
        let raw = Zeroizing::new(raw);
        Self::parse_key_file(&raw).map_err(|e| match e {
            ParseFailure::Malformed(reason) => {
                AuthError::KeyFileMalformed { path: path.to_owned(), reason }
            }
            ParseFailure::Mismatch => AuthError::KeyFileMismatch { path: path.to_owned() },
        })
    }

    /// Parses the text of a key file. Never panics on any input.
    fn parse_key_file(raw: &[u8]) -> Result<Self, ParseFailure> {
        let malformed = |s: &str| ParseFailure::Malformed(s.to_owned());
        let text = std::str::from_utf8(raw).map_err(|_| malformed("not UTF-8 text"))?;
        let mut lines =
            text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#'));
        match lines.next() {
            Some(KEY_FILE_HEADER) => {}
            Some(other) if other.starts_with("meshdeck-ed25519-key ") => {
                return Err(ParseFailure::Malformed(format!(
                    "unsupported key file version {other:?} (this build reads {KEY_FILE_HEADER:?})"
                )));
            }
            Some(_) => return Err(malformed("missing header line; not a meshdeck key file")),
            None => return Err(malformed("empty file")),
        }
        let mut public = None;
        let mut secret: Option<Zeroizing<[u8; 32]>> = None;
        for line in lines {
            let (field, value) = line.split_once(' ').ok_or_else(|| malformed("bad line"))?;
            match field {
                "public" => {
                    public = Some(
                        stdx::hex::decode_array::<32>(value.trim())
                            .map_err(|_| malformed("public key is not 64 hex digits"))?,
                    );
                }
                "secret" => {
                    secret = Some(Zeroizing::new(
                        stdx::hex::decode_array::<32>(value.trim())
                            .map_err(|_| malformed("secret key is not 64 hex digits"))?,
                    ));
                }
                _ => return Err(malformed("unknown field")),
            }
        }
        let public = public.ok_or_else(|| malformed("no public line (truncated?)"))?;
        let secret = secret.ok_or_else(|| malformed("no secret line (truncated?)"))?;
        let key = Self::from_seed(&secret);
        if key.public().as_bytes() != &public {
            return Err(ParseFailure::Mismatch);
        }
        Ok(key)
    }

    /// Parses key-file text held in memory (for tests, and for fuzzing the parser).
    #[doc(hidden)]
    pub fn parse_key_file_bytes(raw: &[u8]) -> Result<Self, AuthError> {
        Self::parse_key_file(raw).map_err(|e| match e {
            ParseFailure::Malformed(reason) => {
                AuthError::KeyFileMalformed { path: "<memory>".into(), reason }
            }
            ParseFailure::Mismatch => AuthError::KeyFileMismatch { path: "<memory>".into() },
        })
    }
}

enum ParseFailure {
    Malformed(String),
    Mismatch,
}

impl fmt::Debug for EntityKeypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EntityKeypair")
            .field("public", &self.public())
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// A validated ed25519 public key.
///
/// Construction checks that the bytes are a valid curve point, and the point is kept
/// decompressed so verification does not pay for it again.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    /// Validates 32 bytes as an ed25519 public key.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, AuthError> {
        VerifyingKey::from_bytes(bytes).map(Self).map_err(|_| AuthError::InvalidPublicKey)
    }

    /// Parses 64 hex digits.
    pub fn from_hex(text: &str) -> Result<Self, AuthError> {
        let bytes = stdx::hex::decode_array::<32>(text.trim()).map_err(|_| AuthError::Decode {
            what: "public key",
            reason: "expected 64 hex digits".into(),
        })?;
        Self::from_bytes(&bytes)
    }

    /// The compressed 32-byte form.
    pub fn as_bytes(&self) -> &[u8; 32] {
        self.0.as_bytes()
    }

    /// Lower-case hex of the compressed form.
    pub fn to_hex(&self) -> String {
        stdx::hex::encode(self.as_bytes())
    }

    /// The node id for this key.
    pub fn node_id(&self) -> NodeId {
        NodeId(derive_u64(NODE_ID_CONTEXT, self.as_bytes()))
    }

    /// The origin hash (daemon id) for this key.
    pub fn origin_hash(&self) -> OriginHash {
        OriginHash(derive_u64(ORIGIN_HASH_CONTEXT, self.as_bytes()))
    }

    /// Strict ed25519 verification (`verify_strict`: rejects small-order keys and
    /// non-canonical signatures).
    pub fn verify(&self, message: &[u8], signature: &Signature) -> bool {
        self.0.verify_strict(message, &signature.0).is_ok()
    }
}

impl std::hash::Hash for PublicKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_hex())
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl Serialize for PublicKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.as_bytes().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let bytes = <[u8; 32]>::deserialize(deserializer)?;
        Self::from_bytes(&bytes).map_err(serde::de::Error::custom)
    }
}

/// An ed25519 signature (64 bytes).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(ed25519_dalek::Signature);

impl Signature {
    /// Wraps 64 raw bytes. Validity is only known when verified.
    pub fn from_bytes(bytes: &[u8; 64]) -> Self {
        Self(ed25519_dalek::Signature::from_bytes(bytes))
    }

    /// The 64 raw bytes.
    pub fn to_bytes(&self) -> [u8; 64] {
        self.0.to_bytes()
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({}..)", &stdx::hex::encode(&self.to_bytes())[..16])
    }
}

impl Serialize for Signature {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.to_bytes())
    }
}

impl<'de> Deserialize<'de> for Signature {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SigVisitor;
        impl<'de> serde::de::Visitor<'de> for SigVisitor {
            type Value = Signature;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("64 signature bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Signature, E> {
                let bytes: [u8; 64] =
                    v.try_into().map_err(|_| E::invalid_length(v.len(), &self))?;
                Ok(Signature::from_bytes(&bytes))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Signature, A::Error> {
                let mut bytes = [0u8; 64];
                for (i, slot) in bytes.iter_mut().enumerate() {
                    *slot = seq
                        .next_element()?
                        .ok_or_else(|| serde::de::Error::invalid_length(i, &self))?;
                }
                Ok(Signature::from_bytes(&bytes))
            }
        }
        deserializer.deserialize_bytes(SigVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_prints_the_secret() {
        let key = EntityKeypair::from_seed(&[7u8; 32]);
        let secret_hex = stdx::hex::encode(key.secret_seed().as_ref());
        let debug = format!("{key:?}");
        assert!(!debug.contains(&secret_hex));
        assert!(debug.contains("redacted"));
    }

    #[test]
    fn ids_differ_by_context_and_are_stable() {
        let key = EntityKeypair::from_seed(&[1u8; 32]);
        assert_ne!(key.node_id().0, key.origin_hash().0);
        assert_eq!(key.node_id(), EntityKeypair::from_seed(&[1u8; 32]).node_id());
    }

    #[test]
    fn sign_verify() {
        let key = EntityKeypair::generate();
        let sig = key.sign(b"hello");
        assert!(key.public().verify(b"hello", &sig));
        assert!(!key.public().verify(b"hellO", &sig));
    }

    #[test]
    fn key_file_round_trip_and_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("op.key");
        let key = EntityKeypair::generate();
        key.save(&path).unwrap();
        assert!(matches!(key.save(&path), Err(AuthError::KeyFileExists { .. })));
        let loaded = EntityKeypair::load(&path).unwrap();
        assert_eq!(loaded.public(), key.public());

        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let err = EntityKeypair::load(&path).unwrap_err();
            assert!(matches!(err, AuthError::KeyFilePermissions { mode: 0o644, .. }), "{err}");
            assert!(err.to_string().contains("op.key"));
        }
    }

    #[test]
    fn truncated_and_corrupt_files_are_typed_errors() {
        let dir = tempfile::tempdir().unwrap();
        let key = EntityKeypair::generate();
        let good = dir.path().join("good.key");
        key.save(&good).unwrap();
        let text = std::fs::read_to_string(&good).unwrap();

        let write = |name: &str, body: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, body).unwrap();
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
            }
            p
        };
        let truncated = write("trunc.key", &text[..text.len() - 40]);
        let err = EntityKeypair::load(&truncated).unwrap_err();
        assert!(matches!(err, AuthError::KeyFileMalformed { .. }), "{err}");
        assert!(err.to_string().contains("trunc.key"));

        // Flip one digit of the secret: the public key no longer matches.
        let secret_at = text.find("secret ").unwrap() + 7;
        let mut flipped = text.clone().into_bytes();
        flipped[secret_at] = if flipped[secret_at] == b'0' { b'1' } else { b'0' };
        let flipped = write("flip.key", std::str::from_utf8(&flipped).unwrap());
        assert!(matches!(EntityKeypair::load(&flipped), Err(AuthError::KeyFileMismatch { .. })));

        let empty = write("empty.key", "");
        assert!(matches!(EntityKeypair::load(&empty), Err(AuthError::KeyFileMalformed { .. })));
        let missing = dir.path().join("missing.key");
        assert!(matches!(EntityKeypair::load(&missing), Err(AuthError::Io { .. })));
    }
}
