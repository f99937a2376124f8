//! Signed admin envelopes.
//!
//! An envelope wraps an admin command's payload (postcard bytes the caller defines)
//! with everything a verifier needs to decide whether to obey it: the command class,
//! a validity window, a random nonce, the target (for the break-glass cooldown), and
//! for break-glass commands the blake3 hash of the blast-radius simulation the
//! operator looked at before signing.
//!
//! # Signing bytes
//!
//! Every signer signs the same canonical byte string, built field by field (not by a
//! serializer, so that it can never drift with a library upgrade):
//!
//! ```text
//! ENVELOPE_DOMAIN_TAG            23 bytes  "meshdeck/admin-envelope"
//! format version                  1 byte   ENVELOPE_FORMAT_VERSION
//! command class                   1 byte   0 = routine, 1 = ICE
//! issued_at_ms                    8 bytes  little-endian
//! expires_at_ms                   8 bytes  little-endian
//! nonce                          16 bytes
//! blast-radius flag + hash    1 + 32 bytes flag 0 and zeros when absent
//! target length + target      4 + n bytes  little-endian length, UTF-8
//! payload length + payload    4 + n bytes  little-endian length
//! ```

use serde::{Deserialize, Serialize};

use crate::AuthError;
use crate::keys::{PublicKey, Signature};

/// Domain-separation tag at the start of the signing bytes.
pub const ENVELOPE_DOMAIN_TAG: &[u8; 23] = b"meshdeck/admin-envelope";
/// Version of the envelope format (signing bytes and wire encoding).
pub const ENVELOPE_FORMAT_VERSION: u8 = 1;
/// Largest encoded envelope [`SignedEnvelope::decode`] accepts (64 KiB).
pub const MAX_ENVELOPE_BYTES: usize = 64 * 1024;
/// Longest signed target string accepted (`node:0x...`, `cluster/freeze`, ...).
pub const MAX_TARGET_BYTES: usize = 256;
/// Largest command payload accepted.
pub const MAX_PAYLOAD_BYTES: usize = 8 * 1024;
/// Default validity of an envelope when the draft does not set one (60 s).
pub const DEFAULT_TTL_MS: u64 = 60_000;

/// A 128-bit random nonce; no two envelopes share one.
pub type Nonce = [u8; 16];

/// How dangerous a command is; decides the threshold and extra checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum CommandClass {
    /// Everyday operations (cordon, drain, maintenance, ...).
    Routine,
    /// Break-glass operations (freeze, force restart, kill migration, ...). They
    /// must carry the hash of a blast-radius simulation and are rate limited per
    /// target.
    Ice,
}

impl CommandClass {
    fn wire_byte(self) -> u8 {
        match self {
            CommandClass::Routine => 0,
            CommandClass::Ice => 1,
        }
    }

    /// Lower-case name (`routine` / `ice`).
    pub fn as_str(self) -> &'static str {
        match self {
            CommandClass::Routine => "routine",
            CommandClass::Ice => "ice",
        }
    }
}

impl std::fmt::Display for CommandClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The signed part of an envelope.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvelopeBody {
    /// Format version; verifiers refuse versions they do not know.
    pub version: u8,
    /// Command class.
    pub class: CommandClass,
    /// When the operator signed it (ms since the Unix epoch).
    pub issued_at_ms: u64,
    /// After this instant the envelope is expired.
    pub expires_at_ms: u64,
    /// Random nonce for replay protection.
    pub nonce: Nonce,
    /// blake3 hash of the blast-radius simulation (required for ICE).
    pub blast_radius: Option<[u8; 32]>,
    /// What the command acts on (for example `node:0x...`); ICE cooldowns are per
    /// target.
    pub target: String,
    /// The command itself, as canonical postcard bytes.
    pub payload: Vec<u8>,
}

impl EnvelopeBody {
    /// The exact bytes every signer signs (see the module docs).
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            ENVELOPE_DOMAIN_TAG.len() + 83 + self.target.len() + self.payload.len(),
        );
        out.extend_from_slice(ENVELOPE_DOMAIN_TAG);
        out.push(self.version);
        out.push(self.class.wire_byte());
        out.extend_from_slice(&self.issued_at_ms.to_le_bytes());
        out.extend_from_slice(&self.expires_at_ms.to_le_bytes());
        out.extend_from_slice(&self.nonce);
        match &self.blast_radius {
            Some(hash) => {
                out.push(1);
                out.extend_from_slice(hash);
            }
            None => {
                out.push(0);
                out.extend_from_slice(&[0u8; 32]);
            }
        }
        // Lengths are bounded by MAX_ENVELOPE_BYTES on decode; saturate rather than
        // wrap for bodies built in memory.
        let target_len = u32::try_from(self.target.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&target_len.to_le_bytes());
        out.extend_from_slice(self.target.as_bytes());
        let payload_len = u32::try_from(self.payload.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&payload_len.to_le_bytes());
        out.extend_from_slice(&self.payload);
        out
    }

    /// Refuses a target longer than [`MAX_TARGET_BYTES`] or a payload larger
    /// than [`MAX_PAYLOAD_BYTES`] (what gets into an audit ledger stays small).
    pub fn check_sizes(&self) -> Result<(), AuthError> {
        if self.target.len() > MAX_TARGET_BYTES {
            return Err(AuthError::TooLarge {
                what: "envelope target",
                size: self.target.len(),
                max: MAX_TARGET_BYTES,
            });
        }
        if self.payload.len() > MAX_PAYLOAD_BYTES {
            return Err(AuthError::TooLarge {
                what: "envelope payload",
                size: self.payload.len(),
                max: MAX_PAYLOAD_BYTES,
            });
        }
        Ok(())
    }

    /// blake3 of the payload (what the audit ledger records).
    pub fn payload_digest(&self) -> [u8; 32] {
        *blake3::hash(&self.payload).as_bytes()
    }
}

/// One operator's signature over an envelope's signing bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignerEntry {
    /// The signer's public key.
    pub public: PublicKey,
    /// The signature over [`EnvelopeBody::signing_bytes`].
    pub signature: Signature,
}

/// An admin command signed by one or more operators.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedEnvelope {
    /// What was signed.
    pub body: EnvelopeBody,
    /// Who signed it.
    pub signatures: Vec<SignerEntry>,
}

impl SignedEnvelope {
    /// An envelope with no signatures yet (operators add theirs with
    /// [`crate::OperatorIdentity::cosign`]). No verifier accepts it as is.
    pub fn unsigned(body: EnvelopeBody) -> Self {
        Self { body, signatures: Vec::new() }
    }

    /// Adds (or replaces) the signature of `public`.
    pub fn add_signature(&mut self, public: PublicKey, signature: Signature) {
        self.signatures.retain(|s| s.public != public);
        self.signatures.push(SignerEntry { public, signature });
    }

    /// The wire form (postcard).
    pub fn encode(&self) -> Vec<u8> {
        // Serializing plain data into a Vec cannot fail.
        postcard::to_stdvec(self).unwrap_or_default()
    }

    /// Decodes the wire form. Bounded, never panics; trailing bytes are refused.
    pub fn decode(bytes: &[u8]) -> Result<Self, AuthError> {
        if bytes.len() > MAX_ENVELOPE_BYTES {
            return Err(AuthError::TooLarge {
                what: "envelope",
                size: bytes.len(),
                max: MAX_ENVELOPE_BYTES,
            });
        }
        let (envelope, rest) = postcard::take_from_bytes::<Self>(bytes)
            .map_err(|e| AuthError::Decode { what: "envelope", reason: e.to_string() })?;
        if !rest.is_empty() {
            return Err(AuthError::Decode {
                what: "envelope",
                reason: format!("{} trailing bytes", rest.len()),
            });
        }
        envelope.body.check_sizes()?;
        Ok(envelope)
    }
}

/// Builder for an envelope body: what the operator wants, before it is signed.
#[derive(Clone, Debug)]
pub struct EnvelopeDraft {
    class: CommandClass,
    target: String,
    payload: Vec<u8>,
    issued_at_ms: Option<u64>,
    ttl_ms: u64,
    nonce: Option<Nonce>,
    blast_radius: Option<[u8; 32]>,
}

impl EnvelopeDraft {
    /// A draft with raw payload bytes, issued now, valid for 60 s.
    pub fn new(class: CommandClass, target: impl Into<String>, payload: Vec<u8>) -> Self {
        Self {
            class,
            target: target.into(),
            payload,
            issued_at_ms: None,
            ttl_ms: DEFAULT_TTL_MS,
            nonce: None,
            blast_radius: None,
        }
    }

    /// A draft whose payload is `command` encoded with postcard.
    pub fn with_command<T: Serialize>(
        class: CommandClass,
        target: impl Into<String>,
        command: &T,
    ) -> Result<Self, AuthError> {
        let payload = postcard::to_stdvec(command)
            .map_err(|e| AuthError::Decode { what: "command payload", reason: e.to_string() })?;
        Ok(Self::new(class, target, payload))
    }

    /// Sets the issue time (defaults to now when sealed).
    pub fn issued_at(mut self, ms: u64) -> Self {
        self.issued_at_ms = Some(ms);
        self
    }

    /// Sets how long the envelope stays valid after issue.
    pub fn ttl(mut self, ttl: std::time::Duration) -> Self {
        self.ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        self
    }

    /// Sets the nonce (defaults to 16 random bytes). Only for tests and replays of
    /// recorded traffic: reusing a nonce makes the envelope a replay.
    pub fn nonce(mut self, nonce: Nonce) -> Self {
        self.nonce = Some(nonce);
        self
    }

    /// Attaches the blake3 hash of the blast-radius simulation (required for ICE).
    pub fn blast_radius(mut self, hash: [u8; 32]) -> Self {
        self.blast_radius = Some(hash);
        self
    }

    /// Fills in the defaults and returns the body to sign.
    pub fn finish(self) -> EnvelopeBody {
        let issued_at_ms = self.issued_at_ms.unwrap_or_else(crate::unix_now_ms);
        EnvelopeBody {
            version: ENVELOPE_FORMAT_VERSION,
            class: self.class,
            issued_at_ms,
            expires_at_ms: issued_at_ms.saturating_add(self.ttl_ms),
            nonce: self.nonce.unwrap_or_else(random_nonce),
            blast_radius: self.blast_radius,
            target: self.target,
            payload: self.payload,
        }
    }
}

/// 16 random bytes from the OS. If the OS generator fails, falls back to a unique
/// (not secret) value: replay protection needs uniqueness, not unpredictability.
fn random_nonce() -> Nonce {
    let mut nonce = [0u8; 16];
    if getrandom::getrandom(&mut nonce).is_err() {
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let mut hasher = blake3::Hasher::new();
        hasher.update(b"meshdeck nonce fallback");
        hasher.update(&COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        hasher.update(&now.to_le_bytes());
        hasher.update(&std::process::id().to_le_bytes());
        nonce.copy_from_slice(&hasher.finalize().as_bytes()[..16]);
    }
    nonce
}
