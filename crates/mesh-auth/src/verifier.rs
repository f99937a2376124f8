//! The m-of-n admin verifier.
//!
//! Checks run cheapest first, and nothing is remembered (nonce, cooldown) until an
//! envelope has passed every signature check, so unsigned garbage can never fill the
//! replay cache or start a cooldown:
//!
//! 1. shape: known format version, sane window, signer count, ICE simulation hash;
//! 2. freshness: not expired (window and `expires_at`), not from the future;
//! 3. signatures: `verify_strict` for every registered signer; unknown signers are
//!    ignored but reported; a bad signature from a registered key rejects;
//! 4. threshold: at least `threshold` distinct registered operators;
//! 5. replay and ICE cooldown, checked and recorded atomically under one lock.
//!
//! Layout: this file runs the checks; `outcome` holds what they say
//! ([`Verified`], [`Rejection`], [`RejectReason`]); `replay` what the verifier
//! remembers (nonces, ICE cooldowns).

mod outcome;
mod replay;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

pub use outcome::{RejectReason, Rejection, Verified};

use crate::envelope::{CommandClass, ENVELOPE_FORMAT_VERSION, Nonce, SignedEnvelope};
use crate::ids::OperatorId;
use crate::operator::OperatorRegistry;
use replay::ReplayState;

/// Most signatures an envelope may carry; more is malformed.
pub const MAX_SIGNATURES: usize = 32;

/// Tunables of an [`AdminVerifier`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifierConfig {
    /// Distinct operators needed for routine commands.
    pub routine_threshold: usize,
    /// Distinct operators needed for break-glass (ICE) commands.
    pub ice_threshold: usize,
    /// How long after issue an envelope is accepted (default 300 s).
    pub freshness: Duration,
    /// How far in the future `issued_at` may be, for clock skew (default 30 s).
    pub future_skew: Duration,
    /// Minimum time between two accepted ICE commands on the same target
    /// (default 30 s).
    pub ice_cooldown: Duration,
    /// Most nonces remembered at once (default 65 536). When full, the oldest are
    /// forgotten and anything issued at or before them is refused as expired, so a
    /// forgotten nonce can never be replayed.
    pub max_nonces: usize,
}

impl Default for VerifierConfig {
    fn default() -> Self {
        Self {
            routine_threshold: 1,
            ice_threshold: 1,
            freshness: Duration::from_secs(300),
            future_skew: Duration::from_secs(30),
            ice_cooldown: Duration::from_secs(30),
            max_nonces: 65_536,
        }
    }
}

/// Verifies admin envelopes against an operator registry. `Send + Sync`: share it
/// behind an `Arc` and call [`AdminVerifier::verify`] from any task.
pub struct AdminVerifier {
    registry: Arc<OperatorRegistry>,
    config: VerifierConfig,
    state: Mutex<ReplayState>,
}

impl fmt::Debug for AdminVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state.lock();
        f.debug_struct("AdminVerifier")
            .field("operators", &self.registry.len())
            .field("config", &self.config)
            .field("remembered_nonces", &state.nonces())
            .finish()
    }
}

impl AdminVerifier {
    /// A verifier requiring `threshold` distinct operators for every class, with
    /// default windows.
    pub fn new(registry: Arc<OperatorRegistry>, threshold: usize) -> Self {
        Self::with_config(
            registry,
            VerifierConfig {
                routine_threshold: threshold,
                ice_threshold: threshold,
                ..VerifierConfig::default()
            },
        )
    }

    /// A verifier with explicit tunables. Thresholds below 1 are raised to 1: an
    /// unsigned command is never accepted.
    pub fn with_config(registry: Arc<OperatorRegistry>, mut config: VerifierConfig) -> Self {
        config.routine_threshold = config.routine_threshold.max(1);
        config.ice_threshold = config.ice_threshold.max(1);
        config.max_nonces = config.max_nonces.max(1);
        Self { registry, config, state: Mutex::new(ReplayState::default()) }
    }

    /// The registry this verifier trusts.
    pub fn registry(&self) -> &Arc<OperatorRegistry> {
        &self.registry
    }

    /// The tunables in force.
    pub fn config(&self) -> &VerifierConfig {
        &self.config
    }

    /// Nonces currently remembered (bounded by `max_nonces`).
    pub fn remembered_nonces(&self) -> usize {
        self.state.lock().nonces()
    }

    /// Remembers nonces seen before this verifier existed, for instance those in a
    /// persisted audit ledger when a node restarts, so their envelopes are refused
    /// as `replayed` for as long as the freshness window could still admit them.
    /// Each item is a nonce and when it was seen (ms since the Unix epoch); an
    /// envelope is never issued later than that plus the future-skew bound, so
    /// that is taken as its issue time. Items too old to matter are skipped.
    /// Returns how many nonces were remembered.
    pub fn remember_seen(
        &self,
        seen: impl IntoIterator<Item = (Nonce, u64)>,
        now_ms: u64,
    ) -> usize {
        self.state.lock().remember_seen(seen, now_ms, &self.config)
    }

    /// Restores ICE cooldowns after a restart, so restarting a node does not
    /// reopen a target early. Each item is an ICE command's target and when it
    /// was accepted (ms since the Unix epoch), for example from the audit
    /// ledger's accepted ICE entries; the latest acceptance per target counts,
    /// an acceptance "in the future" (a clock that stepped back) counts as now,
    /// and targets whose cooldown is over are skipped. Returns how many targets
    /// are cooling down.
    pub fn remember_ice(
        &self,
        accepted: impl IntoIterator<Item = (String, u64)>,
        now_ms: u64,
    ) -> usize {
        self.state.lock().remember_ice(accepted, now_ms, &self.config)
    }

    /// Verifies `envelope` at the local time.
    pub fn verify_now(&self, envelope: &SignedEnvelope) -> Result<Verified, Rejection> {
        self.verify(envelope, crate::unix_now_ms())
    }

    /// Verifies `envelope` as of `now_ms`; on success remembers its nonce (and ICE
    /// target), so the same envelope is refused as `replayed` afterwards.
    pub fn verify(&self, envelope: &SignedEnvelope, now_ms: u64) -> Result<Verified, Rejection> {
        self.verify_with(envelope, now_ms, |_| Ok::<(), std::convert::Infallible>(()))
            .map(|(verified, _)| verified)
    }

    /// [`AdminVerifier::verify`], then the caller's own acceptance check, run
    /// while the replay state is locked. The nonce is remembered whatever the
    /// check says (the envelope was seen), but an ICE command's target cooldown
    /// starts only if the check accepts: a command the node refuses for its own
    /// reasons (a stale simulation, the wrong target) can be re-simulated,
    /// re-signed and sent again at once. Concurrent callers are serialized
    /// through the check, so two ICE commands for one target cannot both pass.
    ///
    /// Returns the verification and the check's result; the check does not run
    /// when verification fails.
    pub fn verify_with<T, E>(
        &self,
        envelope: &SignedEnvelope,
        now_ms: u64,
        check: impl FnOnce(&Verified) -> Result<T, E>,
    ) -> Result<(Verified, Result<T, E>), Rejection> {
        let mut unknown_signers = Vec::new();
        let reject = |reason, unknown: &Vec<OperatorId>| {
            Err(Rejection { reason, unknown_signers: unknown.clone() })
        };
        let body = &envelope.body;

        if let Err(reason) = self.check_shape(envelope) {
            return reject(reason, &unknown_signers);
        }
        if let Err(reason) = self.check_freshness(body.issued_at_ms, body.expires_at_ms, now_ms) {
            return reject(reason, &unknown_signers);
        }

        let operators = match self.check_signatures(envelope, &mut unknown_signers) {
            Ok(operators) => operators,
            Err(reason) => return reject(reason, &unknown_signers),
        };

        // Replay and cooldown: check and record under one lock so that two
        // concurrent submissions of one envelope cannot both pass.
        let mut state = self.state.lock();
        if let Err(reason) = state.admit(body, now_ms, &self.config) {
            return reject(reason, &unknown_signers);
        }
        state.remember(body.nonce, body.issued_at_ms, now_ms, &self.config);
        let verified = Verified { operators, unknown_signers, class: body.class };
        let checked = check(&verified);
        if checked.is_ok() && body.class == CommandClass::Ice {
            state.start_cooldown(&body.target, now_ms, &self.config);
        }
        drop(state);
        Ok((verified, checked))
    }

    /// The distinct registered operators whose signatures on `envelope` verify,
    /// checked against the class threshold. Unknown signers are collected in
    /// `unknown`.
    fn check_signatures(
        &self,
        envelope: &SignedEnvelope,
        unknown: &mut Vec<OperatorId>,
    ) -> Result<Vec<OperatorId>, RejectReason> {
        let body = &envelope.body;
        let operators = self.valid_signers(envelope, unknown)?;
        let need = match body.class {
            CommandClass::Routine => self.config.routine_threshold,
            CommandClass::Ice => self.config.ice_threshold,
        };
        if operators.is_empty() {
            return Err(RejectReason::NotAuthorized);
        }
        if operators.len() < need {
            return Err(RejectReason::InsufficientSignatures { have: operators.len(), need });
        }
        Ok(operators)
    }

    fn valid_signers(
        &self,
        envelope: &SignedEnvelope,
        unknown: &mut Vec<OperatorId>,
    ) -> Result<Vec<OperatorId>, RejectReason> {
        // Signing bytes are built once for all signers.
        let message = envelope.body.signing_bytes();
        let mut operators: Vec<OperatorId> = Vec::with_capacity(envelope.signatures.len());
        for entry in envelope.signatures.iter().take(MAX_SIGNATURES) {
            let id = entry.public.operator_id();
            match self.registry.get(id) {
                None => {
                    unknown.push(id);
                    continue;
                }
                // A registered id under a different key (a 64-bit collision) is
                // not that operator.
                Some(registered) if registered != &entry.public => continue,
                Some(_) => {}
            }
            if operators.contains(&id) {
                // A repeated signer counts once (and was verified already).
                continue;
            }
            if !entry.public.verify(&message, &entry.signature) {
                return Err(RejectReason::BadSignature { operator: id });
            }
            operators.push(id);
        }
        operators.sort_unstable();
        Ok(operators)
    }

    /// Whether at least one registered operator validly signed `envelope`
    /// (whatever else is wrong with it). A node records a refused envelope in
    /// its audit ledger only when this holds, so nobody without an operator key
    /// can write to a ledger. Reads no clock and remembers nothing.
    pub fn has_operator_signature(&self, envelope: &SignedEnvelope) -> bool {
        if envelope.signatures.len() > MAX_SIGNATURES {
            return false;
        }
        let message = envelope.body.signing_bytes();
        envelope.signatures.iter().any(|entry| {
            self.registry.get(entry.public.operator_id()) == Some(&entry.public)
                && entry.public.verify(&message, &entry.signature)
        })
    }

    /// Checks only the authority behind an envelope: its shape, and that enough
    /// distinct registered operators signed it for its class. No freshness, no
    /// replay cache, nothing remembered: this is for evidence of a decision
    /// already taken (a freeze another node applied, carried in its summary),
    /// not for taking one.
    pub fn check_authority(&self, envelope: &SignedEnvelope) -> Result<Verified, Rejection> {
        let mut unknown_signers = Vec::new();
        let result = self
            .check_shape(envelope)
            .and_then(|()| self.check_signatures(envelope, &mut unknown_signers));
        match result {
            Ok(operators) => {
                Ok(Verified { operators, unknown_signers, class: envelope.body.class })
            }
            Err(reason) => Err(Rejection { reason, unknown_signers }),
        }
    }

    fn check_shape(&self, envelope: &SignedEnvelope) -> Result<(), RejectReason> {
        let body = &envelope.body;
        let malformed = |detail: String| Err(RejectReason::Malformed { detail });
        if body.version != ENVELOPE_FORMAT_VERSION {
            return malformed(format!(
                "envelope format version {} (this node understands {ENVELOPE_FORMAT_VERSION})",
                body.version
            ));
        }
        if body.expires_at_ms <= body.issued_at_ms {
            return malformed("expires_at is not after issued_at".into());
        }
        if let Err(e) = body.check_sizes() {
            return malformed(e.to_string());
        }
        if envelope.signatures.len() > MAX_SIGNATURES {
            return malformed(format!(
                "{} signatures (at most {MAX_SIGNATURES})",
                envelope.signatures.len()
            ));
        }
        if envelope.signatures.is_empty() {
            return Err(RejectReason::NotAuthorized);
        }
        if body.class == CommandClass::Ice {
            match &body.blast_radius {
                Some(hash) if hash != &[0u8; 32] => {}
                _ => return Err(RejectReason::SimulationRequired),
            }
        }
        Ok(())
    }

    fn check_freshness(
        &self,
        issued_at_ms: u64,
        expires_at_ms: u64,
        now_ms: u64,
    ) -> Result<(), RejectReason> {
        let skew = duration_ms(self.config.future_skew);
        if issued_at_ms > now_ms.saturating_add(skew) {
            return Err(RejectReason::FromFuture { ahead_ms: issued_at_ms - now_ms });
        }
        // Valid until the earlier of its own expiry and the freshness window.
        let deadline =
            expires_at_ms.min(issued_at_ms.saturating_add(duration_ms(self.config.freshness)));
        if now_ms > deadline {
            return Err(RejectReason::Expired { by_ms: now_ms - deadline });
        }
        Ok(())
    }
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

// The verifier is shared across tasks; keep that a compile-time fact.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<AdminVerifier>();
};
