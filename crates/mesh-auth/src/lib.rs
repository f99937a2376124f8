//! Identities and operator authority for the mesh.
//!
//! This crate is the security root of the workspace. It knows nothing about
//! networking or async runtimes: everything here is plain data and pure checks, so
//! every node, the deck and outside tools can use it alike.
//!
//! - [`EntityKeypair`], [`PublicKey`], [`Signature`]: ed25519 identities. Secrets are
//!   zeroized on drop and never printed.
//! - [`NodeId`] and [`OriginHash`]: 64-bit ids derived from a public key with
//!   `blake3::derive_key` under two different contexts.
//! - [`OperatorIdentity`] and [`OperatorRegistry`]: who may sign admin commands.
//! - [`SignedEnvelope`]: an admin command, domain-separated and signed by one or
//!   more operators.
//! - [`AdminVerifier`]: m-of-n verification with freshness, replay protection and a
//!   break-glass ("ICE") cooldown; every rejection carries a typed [`RejectReason`].
//! - [`AuditLedger`]: an append-only, hash-chained record of every decision.
//!
//! ```
//! use std::sync::Arc;
//! use mesh_auth::{
//!     AdminVerifier, CommandClass, EntityKeypair, EnvelopeDraft, OperatorIdentity,
//!     OperatorRegistry,
//! };
//!
//! let alice = OperatorIdentity::from_keypair(EntityKeypair::generate());
//! let mut registry = OperatorRegistry::new();
//! registry.register_public(alice.public());
//! let verifier = AdminVerifier::new(Arc::new(registry), 1);
//!
//! let now_ms = 1_700_000_000_000;
//! let draft = EnvelopeDraft::new(CommandClass::Routine, "node:0x01", b"cordon".to_vec())
//!     .issued_at(now_ms);
//! let envelope = alice.sign_command(draft);
//! assert!(verifier.verify(&envelope, now_ms).is_ok());
//! // The same envelope a second time is a replay.
//! assert!(verifier.verify(&envelope, now_ms).is_err());
//! ```

mod envelope;
mod error;
mod ids;
mod keys;
mod ledger;
mod operator;
mod verifier;

pub use envelope::{
    CommandClass, DEFAULT_TTL_MS, ENVELOPE_DOMAIN_TAG, ENVELOPE_FORMAT_VERSION, EnvelopeBody,
    EnvelopeDraft, MAX_ENVELOPE_BYTES, MAX_PAYLOAD_BYTES, MAX_TARGET_BYTES, Nonce, SignedEnvelope,
    SignerEntry,
};
pub use error::AuthError;
pub use ids::{NodeId, OriginHash};
pub use keys::{EntityKeypair, KEY_FILE_HEADER, PublicKey, Signature};
pub use ledger::{
    AuditEntry, AuditLedger, AuditOutcome, AuditRecord, ChainBreak, GENESIS_HASH, verify_chain,
    verify_segment,
};
pub use operator::{OperatorId, OperatorIdentity, OperatorRegistry};
pub use verifier::{
    AdminVerifier, MAX_SIGNATURES, RejectReason, Rejection, Verified, VerifierConfig,
};

/// Milliseconds since the Unix epoch according to the local clock.
///
/// Returns 0 if the clock is set before 1970 rather than panicking.
pub fn unix_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
