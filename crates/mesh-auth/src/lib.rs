#![doc = include_str!("../README.md")]

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

/// The workspace README, whose example of this crate is compiled and run as a
/// doctest with the crate's own.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct WorkspaceReadme;

/// Milliseconds since the Unix epoch according to the local clock.
///
/// Returns 0 if the clock is set before 1970 rather than panicking.
pub fn unix_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
