//! What verification says: [`Verified`] on success, a [`Rejection`] with a typed
//! [`RejectReason`] otherwise.

use std::fmt;

use crate::envelope::CommandClass;
use crate::ids::OperatorId;

/// Why an envelope was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RejectReason {
    /// No signature came from a registered operator (or a registered id signed
    /// with a different key).
    NotAuthorized,
    /// A registered operator's signature does not verify: the envelope was altered.
    BadSignature {
        /// The operator whose signature failed.
        operator: OperatorId,
    },
    /// Valid, but fewer distinct operators than the threshold.
    InsufficientSignatures {
        /// Distinct registered operators with valid signatures.
        have: usize,
        /// The threshold for this command class.
        need: usize,
    },
    /// Past its expiry or older than the freshness window.
    Expired {
        /// How long ago it expired (ms).
        by_ms: u64,
    },
    /// Issued further in the future than the skew bound allows.
    FromFuture {
        /// How far ahead of this node's clock (ms).
        ahead_ms: u64,
    },
    /// This nonce was accepted before.
    Replayed,
    /// An ICE command without a (non-zero) blast-radius hash.
    SimulationRequired,
    /// An ICE command on a target still cooling down from the previous one.
    CooldownActive {
        /// Time left (ms).
        remaining_ms: u64,
    },
    /// Structurally invalid (unknown version, inverted window, too many signers ...).
    Malformed {
        /// What was wrong.
        detail: String,
    },
}

impl RejectReason {
    /// The stable snake_case code (`not_authorized`, `bad_signature`, ...), for
    /// ledgers, logs and machine-readable output.
    pub fn code(&self) -> &'static str {
        match self {
            RejectReason::NotAuthorized => "not_authorized",
            RejectReason::BadSignature { .. } => "bad_signature",
            RejectReason::InsufficientSignatures { .. } => "insufficient_signatures",
            RejectReason::Expired { .. } => "expired",
            RejectReason::FromFuture { .. } => "from_future",
            RejectReason::Replayed => "replayed",
            RejectReason::SimulationRequired => "simulation_required",
            RejectReason::CooldownActive { .. } => "cooldown_active",
            RejectReason::Malformed { .. } => "malformed",
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RejectReason::NotAuthorized => {
                f.write_str("not_authorized: no registered operator signed")
            }
            RejectReason::BadSignature { operator } => {
                write!(f, "bad_signature: signature of operator {operator} does not verify")
            }
            RejectReason::InsufficientSignatures { have, need } => {
                write!(f, "insufficient_signatures: {have} of {need} required operators signed")
            }
            RejectReason::Expired { by_ms } => write!(f, "expired: {by_ms} ms ago"),
            RejectReason::FromFuture { ahead_ms } => {
                write!(f, "from_future: issued {ahead_ms} ms ahead of this node's clock")
            }
            RejectReason::Replayed => f.write_str("replayed: this nonce was already used"),
            RejectReason::SimulationRequired => {
                f.write_str("simulation_required: ICE commands need a blast-radius hash")
            }
            RejectReason::CooldownActive { remaining_ms } => {
                write!(f, "cooldown_active: target cools down for {remaining_ms} ms more")
            }
            RejectReason::Malformed { detail } => write!(f, "malformed: {detail}"),
        }
    }
}

/// A refused envelope: the reason, plus signers the registry did not know.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// Why it was refused.
    pub reason: RejectReason,
    /// Signatures from keys that are not registered (ignored, but worth showing).
    pub unknown_signers: Vec<OperatorId>,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.reason)?;
        if !self.unknown_signers.is_empty() {
            write!(f, " ({} unknown signer(s) ignored)", self.unknown_signers.len())?;
        }
        Ok(())
    }
}

impl std::error::Error for Rejection {}

/// An accepted envelope: who vouched for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// Distinct registered operators with valid signatures, sorted.
    pub operators: Vec<OperatorId>,
    /// Signatures from keys that are not registered (ignored).
    pub unknown_signers: Vec<OperatorId>,
    /// The command class.
    pub class: CommandClass,
}
