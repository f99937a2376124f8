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

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::envelope::{CommandClass, ENVELOPE_FORMAT_VERSION, Nonce, SignedEnvelope};
use crate::ids::OperatorId;
use crate::operator::OperatorRegistry;

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
            .field("remembered_nonces", &state.nonces.len())
            .finish()
    }
}

#[derive(Default)]
struct ReplayState {
    /// Accepted nonces.
    nonces: HashSet<Nonce>,
    /// The same nonces ordered by issue time, for eviction.
    by_issue: BTreeSet<(u64, Nonce)>,
    /// Envelopes issued at or before this instant are refused (their nonces may
    /// have been forgotten).
    floor_ms: Option<u64>,
    /// Last accepted ICE command per target.
    ice_last: HashMap<String, u64>,
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
        self.state.lock().nonces.len()
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
        let skew = duration_ms(self.config.future_skew);
        let horizon = now_ms.saturating_sub(duration_ms(self.config.freshness));
        let mut state = self.state.lock();
        let mut remembered = 0;
        for (nonce, seen_at_ms) in seen {
            let issued_at_ms = seen_at_ms.saturating_add(skew);
            if issued_at_ms < horizon || state.nonces.contains(&nonce) {
                continue;
            }
            self.remember(&mut state, nonce, issued_at_ms, now_ms);
            remembered += 1;
        }
        remembered
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
        let cooldown_ms = duration_ms(self.config.ice_cooldown);
        if cooldown_ms == 0 {
            return 0;
        }
        let mut state = self.state.lock();
        for (target, accepted_at_ms) in accepted {
            let at = accepted_at_ms.min(now_ms);
            if now_ms - at >= cooldown_ms {
                continue;
            }
            let last = state.ice_last.entry(target).or_insert(at);
            *last = (*last).max(at);
        }
        state.ice_last.retain(|_, last| now_ms.saturating_sub(*last) < cooldown_ms);
        state.ice_last.len()
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
        if let Some(floor) = state.floor_ms
            && body.issued_at_ms <= floor
        {
            return reject(
                RejectReason::Expired { by_ms: now_ms.saturating_sub(body.expires_at_ms) },
                &unknown_signers,
            );
        }
        if state.nonces.contains(&body.nonce) {
            return reject(RejectReason::Replayed, &unknown_signers);
        }
        let cooldown_ms = duration_ms(self.config.ice_cooldown);
        // A zero cooldown means none: the check is skipped outright, because
        // `now_ms` is read before the lock and two callers sharing one verifier
        // can present clocks a few milliseconds apart.
        if body.class == CommandClass::Ice
            && cooldown_ms > 0
            && let Some(&last) = state.ice_last.get(&body.target)
        {
            let ready_at = last.saturating_add(cooldown_ms);
            if now_ms < ready_at {
                return reject(
                    RejectReason::CooldownActive { remaining_ms: ready_at - now_ms },
                    &unknown_signers,
                );
            }
        }
        self.remember(&mut state, body.nonce, body.issued_at_ms, now_ms);
        let verified = Verified { operators, unknown_signers, class: body.class };
        let checked = check(&verified);
        if checked.is_ok() && body.class == CommandClass::Ice && cooldown_ms > 0 {
            // Drop targets whose cooldown is over so the map stays small.
            state.ice_last.retain(|_, last| now_ms.saturating_sub(*last) < cooldown_ms);
            state.ice_last.insert(body.target.clone(), now_ms);
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

    fn remember(&self, state: &mut ReplayState, nonce: Nonce, issued_at_ms: u64, now_ms: u64) {
        // Forget nonces that the freshness check alone now refuses.
        let horizon = now_ms.saturating_sub(duration_ms(self.config.freshness));
        while let Some(&(issued, old)) = state.by_issue.first() {
            if issued >= horizon {
                break;
            }
            state.by_issue.pop_first();
            state.nonces.remove(&old);
        }
        // Stay within the memory bound; raise the floor past what is forgotten.
        while state.nonces.len() >= self.config.max_nonces {
            let Some((issued, old)) = state.by_issue.pop_first() else { break };
            state.nonces.remove(&old);
            state.floor_ms = Some(state.floor_ms.map_or(issued, |f| f.max(issued)));
        }
        state.nonces.insert(nonce);
        state.by_issue.insert((issued_at_ms, nonce));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EntityKeypair, EnvelopeDraft, OperatorIdentity};

    const NOW: u64 = 1_800_000_000_000;

    fn setup(n: usize, threshold: usize) -> (Vec<OperatorIdentity>, AdminVerifier) {
        let ops: Vec<_> = (0..n)
            .map(|i| OperatorIdentity::from_keypair(EntityKeypair::from_seed(&[i as u8 + 1; 32])))
            .collect();
        let mut reg = OperatorRegistry::new();
        for op in &ops {
            reg.register_public(op.public());
        }
        (ops, AdminVerifier::new(Arc::new(reg), threshold))
    }

    fn draft(class: CommandClass) -> EnvelopeDraft {
        EnvelopeDraft::new(class, "node:0x01", b"cmd".to_vec()).issued_at(NOW)
    }

    #[test]
    fn authority_checks_read_no_clock_and_remember_nothing() {
        let (ops, v) = setup(2, 2);
        let mut env = ops[0].sign_command(draft(CommandClass::Routine));
        // One registered signer: it has an operator signature, not the authority.
        assert!(v.has_operator_signature(&env));
        assert_eq!(
            v.check_authority(&env).unwrap_err().reason,
            RejectReason::InsufficientSignatures { have: 1, need: 2 }
        );
        ops[1].cosign(&mut env);
        // Long expired by any clock: still the operators' decision.
        assert_eq!(v.check_authority(&env).unwrap().operators.len(), 2);
        assert_eq!(v.check_authority(&env).unwrap().operators.len(), 2);
        assert_eq!(v.remembered_nonces(), 0);
        // Tampered after signing, unsigned, or signed by a stranger: neither.
        let mut tampered = env.clone();
        tampered.body.payload = b"other".to_vec();
        assert!(!v.has_operator_signature(&tampered));
        assert!(v.check_authority(&tampered).is_err());
        let unsigned = SignedEnvelope::unsigned(draft(CommandClass::Routine).finish());
        assert!(!v.has_operator_signature(&unsigned));
        let stranger = OperatorIdentity::from_keypair(EntityKeypair::from_seed(&[99; 32]));
        assert!(!v.has_operator_signature(&stranger.sign_command(draft(CommandClass::Routine))));
        // Oversized targets are malformed before any signature is checked.
        let big = ops[0].sign_command(EnvelopeDraft::new(
            CommandClass::Routine,
            "x".repeat(crate::envelope::MAX_TARGET_BYTES + 1),
            b"cmd".to_vec(),
        ));
        assert!(matches!(
            v.check_authority(&big).unwrap_err().reason,
            RejectReason::Malformed { .. }
        ));
        assert!(SignedEnvelope::decode(&big.encode()).is_err());
    }

    #[test]
    fn reasons_are_typed() {
        let (ops, v) = setup(2, 2);
        let env = ops[0].sign_command(draft(CommandClass::Routine));
        let err = v.verify(&env, NOW).unwrap_err();
        assert_eq!(err.reason, RejectReason::InsufficientSignatures { have: 1, need: 2 });

        let stranger = OperatorIdentity::from_keypair(EntityKeypair::from_seed(&[99; 32]));
        let env = stranger.sign_command(draft(CommandClass::Routine));
        let err = v.verify(&env, NOW).unwrap_err();
        assert_eq!(err.reason, RejectReason::NotAuthorized);
        assert_eq!(err.unknown_signers, vec![stranger.operator_id()]);

        let env = ops[0].sign_command(draft(CommandClass::Ice));
        assert_eq!(v.verify(&env, NOW).unwrap_err().reason, RejectReason::SimulationRequired);
        let env = ops[0].sign_command(draft(CommandClass::Ice).blast_radius([0; 32]));
        assert_eq!(v.verify(&env, NOW).unwrap_err().reason, RejectReason::SimulationRequired);

        let env = ops[0].sign_command(draft(CommandClass::Routine));
        assert_eq!(v.verify(&env, NOW + 61_000).unwrap_err().reason.code(), "expired");
        assert_eq!(v.verify(&env, NOW - 31_000).unwrap_err().reason.code(), "from_future");
        assert!(v.verify(&env, NOW - 29_000).unwrap_err().reason.code() != "from_future");
    }

    #[test]
    fn ice_cooldown_per_target() {
        let (ops, v) = setup(1, 1);
        let ice = |target: &str| {
            ops[0].sign_command(
                EnvelopeDraft::new(CommandClass::Ice, target, b"freeze".to_vec())
                    .issued_at(NOW)
                    .blast_radius([7; 32]),
            )
        };
        assert!(v.verify(&ice("cluster"), NOW).is_ok());
        let err = v.verify(&ice("cluster"), NOW + 1_000).unwrap_err();
        assert_eq!(err.reason, RejectReason::CooldownActive { remaining_ms: 29_000 });
        assert!(v.verify(&ice("node:0x02"), NOW + 1_000).is_ok());
        assert!(v.verify(&ice("cluster"), NOW + 30_000).is_ok());
    }

    #[test]
    fn a_command_the_caller_refuses_starts_no_cooldown() {
        let (ops, v) = setup(1, 1);
        let ice = || {
            ops[0].sign_command(
                EnvelopeDraft::new(CommandClass::Ice, "cluster", b"freeze".to_vec())
                    .issued_at(NOW)
                    .blast_radius([7; 32]),
            )
        };
        let refused = ice();
        let (_, checked) =
            v.verify_with(&refused, NOW, |_| Err::<(), _>("stale simulation")).unwrap();
        assert_eq!(checked, Err("stale simulation"));
        // The refused envelope was still seen: it cannot be replayed.
        assert_eq!(v.verify(&refused, NOW + 1).unwrap_err().reason, RejectReason::Replayed);
        // A fresh one for the same target passes at once, and starts the cooldown.
        let (_, checked) = v.verify_with(&ice(), NOW + 2, |_| Ok::<_, ()>(())).unwrap();
        assert_eq!(checked, Ok(()));
        let err = v.verify(&ice(), NOW + 1_002).unwrap_err();
        assert_eq!(err.reason, RejectReason::CooldownActive { remaining_ms: 29_000 });
    }

    #[test]
    fn nonces_seen_before_a_restart_are_refused_as_replayed() {
        let (ops, v) = setup(1, 1);
        let env = ops[0].sign_command(draft(CommandClass::Routine).ttl(Duration::from_secs(600)));
        assert!(v.verify(&env, NOW).is_ok());
        // A new verifier (the node restarted) told what the ledger saw.
        let (_, fresh) = setup(1, 1);
        let old_nonce = ([9u8; 16], NOW - 10 * 60 * 1000);
        assert_eq!(fresh.remember_seen([(env.body.nonce, NOW), old_nonce], NOW + 1_000), 1);
        assert_eq!(fresh.verify(&env, NOW + 2_000).unwrap_err().reason, RejectReason::Replayed);
        assert_eq!(fresh.remembered_nonces(), 1);
    }

    #[test]
    fn ice_cooldowns_seen_before_a_restart_still_hold() {
        let (ops, v) = setup(1, 1);
        let ice = |target: &str, at: u64| {
            ops[0].sign_command(
                EnvelopeDraft::new(CommandClass::Ice, target, b"freeze".to_vec())
                    .issued_at(at)
                    .blast_radius([7; 32]),
            )
        };
        // Acceptances read back from a ledger: "cluster" twice (the later one
        // counts), one target long cooled down, one stamped in the future.
        let accepted = [
            ("cluster".to_owned(), NOW - 20_000),
            ("cluster".to_owned(), NOW - 10_000),
            ("node:0x02".to_owned(), NOW - 40_000),
            ("node:0x03".to_owned(), NOW + 5_000),
        ];
        assert_eq!(v.remember_ice(accepted, NOW), 2);
        let err = v.verify(&ice("cluster", NOW), NOW).unwrap_err();
        assert_eq!(err.reason, RejectReason::CooldownActive { remaining_ms: 20_000 });
        assert!(v.verify(&ice("node:0x02", NOW), NOW).is_ok());
        let err = v.verify(&ice("node:0x03", NOW), NOW).unwrap_err();
        assert_eq!(err.reason, RejectReason::CooldownActive { remaining_ms: 30_000 });
        assert!(v.verify(&ice("cluster", NOW + 20_000), NOW + 20_000).is_ok());
        // With no cooldown configured nothing is remembered.
        let (_, plain) = setup(1, 1);
        let none = AdminVerifier::with_config(
            plain.registry.clone(),
            VerifierConfig { ice_cooldown: Duration::ZERO, ..VerifierConfig::default() },
        );
        assert_eq!(none.remember_ice([("cluster".to_owned(), NOW)], NOW), 0);
    }

    #[test]
    fn zero_cooldown_ignores_clocks_read_out_of_order() {
        let (ops, _) = setup(1, 1);
        let mut reg = OperatorRegistry::new();
        reg.register_public(ops[0].public());
        let v = AdminVerifier::with_config(
            Arc::new(reg),
            VerifierConfig { ice_cooldown: Duration::ZERO, ..VerifierConfig::default() },
        );
        let ice = || {
            ops[0].sign_command(
                EnvelopeDraft::new(CommandClass::Ice, "cluster", b"freeze".to_vec())
                    .issued_at(NOW)
                    .blast_radius([7; 32]),
            )
        };
        // A caller whose clock was read a little earlier than the last one's.
        assert!(v.verify(&ice(), NOW + 5).is_ok());
        assert!(v.verify(&ice(), NOW + 2).is_ok());
    }

    #[test]
    fn nonce_cache_stays_bounded_and_never_readmits() {
        let (ops, _) = setup(1, 1);
        let reg = {
            let mut r = OperatorRegistry::new();
            r.register_public(ops[0].public());
            Arc::new(r)
        };
        let v = AdminVerifier::with_config(
            reg,
            VerifierConfig { max_nonces: 8, ..VerifierConfig::default() },
        );
        let mut envs = Vec::new();
        for i in 0..20u64 {
            let env = ops[0].sign_command(draft(CommandClass::Routine).issued_at(NOW + i));
            assert!(v.verify(&env, NOW + i).is_ok());
            envs.push(env);
        }
        assert!(v.remembered_nonces() <= 8);
        for env in &envs {
            assert!(v.verify(env, NOW + 20).is_err(), "a replay was readmitted");
        }
    }

    #[test]
    fn wrong_key_under_registered_id_is_not_authorized() {
        let (ops, v) = setup(1, 1);
        let mut env = ops[0].sign_command(draft(CommandClass::Routine));
        // Swap in a signature by another key, but keep claiming the registered key.
        let other = EntityKeypair::from_seed(&[42; 32]);
        env.signatures[0].signature = other.sign(&env.body.signing_bytes());
        assert_eq!(
            v.verify(&env, NOW).unwrap_err().reason,
            RejectReason::BadSignature { operator: ops[0].operator_id() }
        );
    }
}
