//! What a verifier remembers: the nonces it accepted (bounded, oldest forgotten
//! first behind a floor) and when each ICE target last accepted a command.
//!
//! Only [`super::AdminVerifier`] changes it, under its lock, and only for
//! envelopes that passed every signature check.

use std::collections::{BTreeSet, HashMap, HashSet};

use super::{RejectReason, VerifierConfig, duration_ms};
use crate::envelope::{CommandClass, EnvelopeBody, Nonce};

#[derive(Debug, Default)]
pub(super) struct ReplayState {
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

impl ReplayState {
    /// Nonces remembered.
    pub(super) fn nonces(&self) -> usize {
        self.nonces.len()
    }

    /// Refuses an envelope issued at or before the floor (`expired`), a nonce
    /// seen before (`replayed`) and an ICE command on a target still cooling
    /// down. Remembers nothing.
    pub(super) fn admit(
        &self,
        body: &EnvelopeBody,
        now_ms: u64,
        config: &VerifierConfig,
    ) -> Result<(), RejectReason> {
        if let Some(floor) = self.floor_ms
            && body.issued_at_ms <= floor
        {
            return Err(RejectReason::Expired { by_ms: now_ms.saturating_sub(body.expires_at_ms) });
        }
        if self.nonces.contains(&body.nonce) {
            return Err(RejectReason::Replayed);
        }
        let cooldown_ms = duration_ms(config.ice_cooldown);
        // A zero cooldown means none: the check is skipped outright, because
        // `now_ms` is read before the lock and two callers sharing one verifier
        // can present clocks a few milliseconds apart.
        if body.class == CommandClass::Ice
            && cooldown_ms > 0
            && let Some(&last) = self.ice_last.get(&body.target)
        {
            let ready_at = last.saturating_add(cooldown_ms);
            if now_ms < ready_at {
                return Err(RejectReason::CooldownActive { remaining_ms: ready_at - now_ms });
            }
        }
        Ok(())
    }

    /// Starts the cooldown of an ICE command's target (nothing without a
    /// cooldown).
    pub(super) fn start_cooldown(&mut self, target: &str, now_ms: u64, config: &VerifierConfig) {
        let cooldown_ms = duration_ms(config.ice_cooldown);
        if cooldown_ms == 0 {
            return;
        }
        // Drop targets whose cooldown is over so the map stays small.
        self.ice_last.retain(|_, last| now_ms.saturating_sub(*last) < cooldown_ms);
        self.ice_last.insert(target.to_owned(), now_ms);
    }

    /// Remembers a nonce issued at `issued_at_ms`, forgetting those the
    /// freshness window refuses anyway and, past `max_nonces`, the oldest
    /// (raising the floor past them, so none can be replayed).
    pub(super) fn remember(
        &mut self,
        nonce: Nonce,
        issued_at_ms: u64,
        now_ms: u64,
        config: &VerifierConfig,
    ) {
        // Forget nonces that the freshness check alone now refuses.
        let horizon = now_ms.saturating_sub(duration_ms(config.freshness));
        while let Some(&(issued, old)) = self.by_issue.first() {
            if issued >= horizon {
                break;
            }
            self.by_issue.pop_first();
            self.nonces.remove(&old);
        }
        // Stay within the memory bound; raise the floor past what is forgotten.
        while self.nonces.len() >= config.max_nonces {
            let Some((issued, old)) = self.by_issue.pop_first() else { break };
            self.nonces.remove(&old);
            self.floor_ms = Some(self.floor_ms.map_or(issued, |f| f.max(issued)));
        }
        self.nonces.insert(nonce);
        self.by_issue.insert((issued_at_ms, nonce));
    }

    /// See [`super::AdminVerifier::remember_seen`].
    pub(super) fn remember_seen(
        &mut self,
        seen: impl IntoIterator<Item = (Nonce, u64)>,
        now_ms: u64,
        config: &VerifierConfig,
    ) -> usize {
        let skew = duration_ms(config.future_skew);
        let horizon = now_ms.saturating_sub(duration_ms(config.freshness));
        let mut remembered = 0;
        for (nonce, seen_at_ms) in seen {
            let issued_at_ms = seen_at_ms.saturating_add(skew);
            if issued_at_ms < horizon || self.nonces.contains(&nonce) {
                continue;
            }
            self.remember(nonce, issued_at_ms, now_ms, config);
            remembered += 1;
        }
        remembered
    }

    /// See [`super::AdminVerifier::remember_ice`].
    pub(super) fn remember_ice(
        &mut self,
        accepted: impl IntoIterator<Item = (String, u64)>,
        now_ms: u64,
        config: &VerifierConfig,
    ) -> usize {
        let cooldown_ms = duration_ms(config.ice_cooldown);
        if cooldown_ms == 0 {
            return 0;
        }
        for (target, accepted_at_ms) in accepted {
            let at = accepted_at_ms.min(now_ms);
            if now_ms - at >= cooldown_ms {
                continue;
            }
            let last = self.ice_last.entry(target).or_insert(at);
            *last = (*last).max(at);
        }
        self.ice_last.retain(|_, last| now_ms.saturating_sub(*last) < cooldown_ms);
        self.ice_last.len()
    }
}
