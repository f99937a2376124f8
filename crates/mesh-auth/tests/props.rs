//! Property tests for envelopes, the verifier, the ledger and key files.

use std::sync::Arc;
use std::time::Duration;

use mesh_auth::{
    AdminVerifier, AuditLedger, AuditOutcome, AuditRecord, CommandClass, EntityKeypair,
    EnvelopeDraft, OperatorId, OperatorIdentity, OperatorRegistry, RejectReason, SignedEnvelope,
    VerifierConfig, verify_chain,
};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

const NOW: u64 = 1_800_000_000_000;

fn ops(n: usize) -> Vec<OperatorIdentity> {
    (0..n)
        .map(|i| OperatorIdentity::from_keypair(EntityKeypair::from_seed(&[i as u8 + 1; 32])))
        .collect()
}

fn verifier_for(ops: &[OperatorIdentity], threshold: usize) -> AdminVerifier {
    let mut reg = OperatorRegistry::new();
    for op in ops {
        reg.register_public(op.public());
    }
    AdminVerifier::new(Arc::new(reg), threshold)
}

fn class_strategy() -> impl Strategy<Value = CommandClass> {
    prop_oneof![Just(CommandClass::Routine), Just(CommandClass::Ice)]
}

fn signed(
    op: &OperatorIdentity,
    class: CommandClass,
    payload: Vec<u8>,
    nonce: [u8; 16],
) -> SignedEnvelope {
    op.sign_command(
        EnvelopeDraft::new(class, "node:0x0000000000000001", payload)
            .issued_at(NOW)
            .nonce(nonce)
            .blast_radius([9; 32]),
    )
}

/// Which signed field a bit flip lands in.
#[derive(Clone, Copy, Debug)]
enum Field {
    Payload,
    Signature,
    Nonce,
    IssuedAt,
    ExpiresAt,
}

fn field_strategy() -> impl Strategy<Value = Field> {
    prop_oneof![
        Just(Field::Payload),
        Just(Field::Signature),
        Just(Field::Nonce),
        Just(Field::IssuedAt),
        Just(Field::ExpiresAt),
    ]
}

/// The reason the default verifier must give for an envelope whose timestamps are
/// `issued`/`expires` (and whose signature no longer matches), checked at `now`.
/// Mirrors the verifier's order: shape (window not inverted), then freshness (from
/// the future, then expired by own expiry or the 300 s window), then signatures.
fn expected_reason(issued: u64, expires: u64, now: u64, signer: OperatorId) -> RejectReason {
    let config = VerifierConfig::default();
    let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap();
    if expires <= issued {
        return RejectReason::Malformed { detail: String::new() };
    }
    if issued > now.saturating_add(ms(config.future_skew)) {
        return RejectReason::FromFuture { ahead_ms: issued - now };
    }
    let deadline = expires.min(issued.saturating_add(ms(config.freshness)));
    if now > deadline {
        return RejectReason::Expired { by_ms: now - deadline };
    }
    RejectReason::BadSignature { operator: signer }
}

/// `Malformed` details are prose; every other reason must match exactly.
fn same_reason(got: &RejectReason, want: &RejectReason) -> bool {
    match (got, want) {
        (RejectReason::Malformed { .. }, RejectReason::Malformed { .. }) => true,
        _ => got == want,
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct("proptest-regressions/props.txt"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn sign_verify_round_trip(
        payload in proptest::collection::vec(any::<u8>(), 0..2048),
        nonce in any::<[u8; 16]>(),
        class in class_strategy(),
    ) {
        let ops = ops(1);
        let v = verifier_for(&ops, 1);
        let env = signed(&ops[0], class, payload, nonce);
        // Through the wire form, too.
        let decoded = SignedEnvelope::decode(&env.encode()).unwrap();
        prop_assert_eq!(&decoded, &env);
        let ok = v.verify(&decoded, NOW).unwrap();
        prop_assert_eq!(ok.operators, vec![ops[0].operator_id()]);
        // The same envelope twice: replayed.
        prop_assert_eq!(v.verify(&decoded, NOW).unwrap_err().reason, RejectReason::Replayed);
    }

    #[test]
    fn freshness_bounds(offset_s in 0u64..1_000, class in class_strategy()) {
        let ops = ops(1);
        let v = verifier_for(&ops, 1);
        let env = signed(&ops[0], class, b"x".to_vec(), [1; 16]);
        // Default TTL is 60 s: accepted up to then, expired after.
        let late = v.verify(&env, NOW + 60_001 + offset_s * 1000);
        prop_assert_eq!(late.unwrap_err().reason.code(), "expired");
        // Issued more than the 30 s skew in the future.
        let early = v.verify(&env, NOW - 30_001 - offset_s * 1000);
        prop_assert_eq!(early.unwrap_err().reason.code(), "from_future");
    }

    #[test]
    fn threshold_counts_distinct_registered_signers(
        n in 1usize..5,
        threshold in 1usize..5,
        signers in proptest::collection::vec(0usize..5, 1..8),
        strangers in 0usize..3,
    ) {
        let all = ops(5);
        let registered = &all[..n];
        let v = AdminVerifier::with_config(
            {
                let mut reg = OperatorRegistry::new();
                for op in registered { reg.register_public(op.public()); }
                Arc::new(reg)
            },
            VerifierConfig { routine_threshold: threshold, ..VerifierConfig::default() },
        );
        let draft = EnvelopeDraft::new(CommandClass::Routine, "t", b"p".to_vec()).issued_at(NOW);
        let mut env = SignedEnvelope::unsigned(draft.finish());
        for &i in &signers {
            all[i].cosign(&mut env);
            // Duplicate raw entries must not inflate the count either.
            let dup = env.signatures.last().unwrap().clone();
            env.signatures.push(dup);
        }
        for s in 0..strangers {
            OperatorIdentity::from_keypair(EntityKeypair::from_seed(&[200 + s as u8; 32])).cosign(&mut env);
        }
        let distinct_registered = {
            let mut ids: Vec<usize> = signers.iter().copied().filter(|&i| i < n).collect();
            ids.sort_unstable();
            ids.dedup();
            ids.len()
        };
        let result = v.verify(&env, NOW);
        if distinct_registered >= threshold {
            prop_assert_eq!(result.unwrap().operators.len(), distinct_registered);
        } else {
            let reason = result.unwrap_err().reason;
            if distinct_registered == 0 {
                prop_assert_eq!(reason, RejectReason::NotAuthorized);
            } else {
                prop_assert_eq!(reason, RejectReason::InsufficientSignatures { have: distinct_registered, need: threshold });
            }
        }
    }

    #[test]
    fn ledger_tamper_detected_at_that_entry(
        count in 1usize..30,
        victim_seed in any::<usize>(),
        what in 0usize..5,
    ) {
        let mut ledger = AuditLedger::new();
        for i in 0..count {
            ledger.append(AuditRecord {
                ts_ms: NOW + i as u64,
                operators: vec![],
                class: CommandClass::Routine,
                target: format!("node:{i}"),
                payload_digest: [i as u8; 32],
                nonce: [i as u8; 16],
                outcome: AuditOutcome::Accepted,
            }).unwrap();
        }
        let mut entries = ledger.entries().to_vec();
        let victim = victim_seed % count;
        let e = &mut entries[victim];
        match what {
            0 => e.record.ts_ms += 1,
            1 => e.record.target.push('!'),
            2 => e.record.outcome = AuditOutcome::Rejected { code: "x".into(), detail: String::new() },
            3 => e.prev_hash[0] ^= 1,
            _ => e.hash[31] ^= 1,
        }
        let brk = verify_chain(&entries).unwrap_err();
        prop_assert_eq!(brk.seq, victim as u64);
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = SignedEnvelope::decode(&bytes);
        let _ = EntityKeypair::parse_key_file_bytes(&bytes);
    }

    #[test]
    fn decoding_mutated_envelopes_never_panics(
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        cut in any::<usize>(),
    ) {
        let ops = ops(2);
        let v = verifier_for(&ops, 1);
        let mut env = signed(&ops[0], CommandClass::Ice, b"freeze".to_vec(), [5; 16]);
        ops[1].cosign(&mut env);
        let mut bytes = env.encode();
        for (at, x) in flips { let n = bytes.len(); bytes[at % n] ^= x; }
        bytes.truncate(cut % (bytes.len() + 1));
        if let Ok(decoded) = SignedEnvelope::decode(&bytes) {
            let _ = v.verify(&decoded, NOW);
        }
    }

    #[test]
    fn mutated_key_files_never_panic(
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..4),
        cut in any::<usize>(),
    ) {
        let key = EntityKeypair::from_seed(&[4; 32]);
        let text = format!(
            "{}\npublic {}\nsecret {}\n",
            mesh_auth::KEY_FILE_HEADER,
            key.public().to_hex(),
            key.public().to_hex(), // wrong on purpose half of the time below
        );
        let mut bytes = text.into_bytes();
        for (at, x) in flips { let n = bytes.len(); bytes[at % n] ^= x; }
        bytes.truncate(cut % (bytes.len() + 1));
        let _ = EntityKeypair::parse_key_file_bytes(&bytes);
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct("proptest-regressions/props.txt"))),
        ..ProptestConfig::default()
    })]

    /// Flipping any single bit of the payload, the signature, the nonce or either
    /// timestamp (all 64 bits) is rejected, with the precise typed reason: content
    /// changes are `bad_signature`; a timestamp change is caught by the shape or
    /// freshness checks first when it breaks them, else by the signature check.
    #[test]
    fn any_bit_flip_in_signed_fields_is_rejected(
        payload in proptest::collection::vec(any::<u8>(), 1..256),
        nonce in any::<[u8; 16]>(),
        class in class_strategy(),
        field in field_strategy(),
        bit in any::<u64>(),
        // Any instant at which the unaltered envelope is valid (60 s TTL, 30 s skew).
        now in (NOW - 30_000)..=(NOW + 60_000),
    ) {
        let ops = ops(1);
        let signer = ops[0].operator_id();
        let v = verifier_for(&ops, 1);
        let original = signed(&ops[0], class, payload, nonce);
        let mut env = original.clone();
        match field {
            Field::Payload => {
                let b = (bit % (env.body.payload.len() as u64 * 8)) as usize;
                env.body.payload[b / 8] ^= 1 << (b % 8);
            }
            Field::Signature => {
                let mut sig = env.signatures[0].signature.to_bytes();
                let b = (bit % 512) as usize;
                sig[b / 8] ^= 1 << (b % 8);
                env.signatures[0].signature = mesh_auth::Signature::from_bytes(&sig);
            }
            Field::Nonce => {
                let b = (bit % 128) as usize;
                env.body.nonce[b / 8] ^= 1 << (b % 8);
            }
            Field::IssuedAt => env.body.issued_at_ms ^= 1u64 << (bit % 64),
            Field::ExpiresAt => env.body.expires_at_ms ^= 1u64 << (bit % 64),
        }
        prop_assert_ne!(&env, &original);

        let got = v.verify(&env, now).unwrap_err().reason;
        let allowed: &[&str] = match field {
            Field::Payload | Field::Signature | Field::Nonce => &["bad_signature"],
            // The issue time moves either way: too far back is expired, forward
            // past the skew is from_future, past expires_at is malformed.
            Field::IssuedAt => &["bad_signature", "expired", "from_future", "malformed"],
            // issued_at is untouched and valid at `now`, so never from_future.
            Field::ExpiresAt => &["bad_signature", "expired", "malformed"],
        };
        prop_assert!(allowed.contains(&got.code()), "{:?} flip gave {}", field, got);
        let want = expected_reason(env.body.issued_at_ms, env.body.expires_at_ms, now, signer);
        prop_assert!(same_reason(&got, &want), "{:?} flip: got {:?}, want {:?}", field, got, want);

        // The rejection remembered nothing: the genuine envelope still passes once.
        prop_assert!(v.verify(&original, now).is_ok());
        prop_assert_eq!(v.verify(&original, now).unwrap_err().reason, RejectReason::Replayed);
    }
}

fn registry_of(ops: &[OperatorIdentity]) -> Arc<OperatorRegistry> {
    let mut reg = OperatorRegistry::new();
    for op in ops {
        reg.register_public(op.public());
    }
    Arc::new(reg)
}

/// A long-lived envelope issued at `NOW`: its own expiry is an hour away, so only
/// the verifier's freshness window can make it stale.
fn long_lived(op: &OperatorIdentity, nonce: u8) -> SignedEnvelope {
    op.sign_command(
        EnvelopeDraft::new(CommandClass::Routine, "node:0x01", b"cordon".to_vec())
            .issued_at(NOW)
            .ttl(Duration::from_secs(3_600))
            .nonce([nonce; 16]),
    )
}

#[test]
fn default_freshness_window_and_future_skew_bound() {
    let ops = ops(1);
    let config = VerifierConfig::default();
    assert_eq!(config.freshness, Duration::from_secs(300));
    assert_eq!(config.future_skew, Duration::from_secs(30));
    let env = long_lived(&ops[0], 1);
    assert_eq!(env.body.expires_at_ms, NOW + 3_600_000);
    // A fresh verifier per check, so an acceptance cannot turn the next into a replay.
    let check = |now_ms: u64| {
        AdminVerifier::with_config(registry_of(&ops), VerifierConfig::default())
            .verify(&env, now_ms)
            .map(|ok| ok.operators)
            .map_err(|e| e.reason)
    };
    let accepted = Ok(vec![ops[0].operator_id()]);

    // The 300 s window, well before the envelope's own expiry.
    assert_eq!(check(NOW + 299_000), accepted);
    assert_eq!(check(NOW + 301_000), Err(RejectReason::Expired { by_ms: 1_000 }));
    // `AdminVerifier::new` uses the same defaults.
    let v = AdminVerifier::new(registry_of(&ops), 1);
    assert_eq!(
        v.verify(&env, NOW + 301_000).unwrap_err().reason,
        RejectReason::Expired { by_ms: 1_000 }
    );
    assert!(v.verify(&env, NOW + 299_000).is_ok());

    // The 30 s future-skew bound: the local clock is behind the issuer's.
    assert_eq!(check(NOW - 29_000), accepted);
    assert_eq!(check(NOW - 31_000), Err(RejectReason::FromFuture { ahead_ms: 31_000 }));
}

#[test]
fn configured_freshness_window_and_future_skew_bound() {
    let ops = ops(1);
    let config = VerifierConfig {
        freshness: Duration::from_secs(10),
        future_skew: Duration::from_secs(2),
        ..VerifierConfig::default()
    };
    let env = long_lived(&ops[0], 2);
    let check = |now_ms: u64| {
        AdminVerifier::with_config(registry_of(&ops), config.clone())
            .verify(&env, now_ms)
            .map(|_| ())
            .map_err(|e| e.reason)
    };
    assert_eq!(check(NOW + 9_000), Ok(()));
    assert_eq!(check(NOW + 11_000), Err(RejectReason::Expired { by_ms: 1_000 }));
    assert_eq!(check(NOW - 1_000), Ok(()));
    assert_eq!(check(NOW - 3_000), Err(RejectReason::FromFuture { ahead_ms: 3_000 }));
}

/// Every one of the 128 timestamp bits, flipped one at a time at `NOW`, against the
/// model, plus hand-derived spot checks that do not rely on the model.
#[test]
fn every_timestamp_bit_flip_gets_the_expected_reason() {
    let ops = ops(1);
    let signer = ops[0].operator_id();
    let v = verifier_for(&ops, 1);
    let original = signed(&ops[0], CommandClass::Routine, b"drain".to_vec(), [6; 16]);
    let flip = |issued: bool, bit: u32| {
        let mut env = original.clone();
        if issued {
            env.body.issued_at_ms ^= 1u64 << bit;
        } else {
            env.body.expires_at_ms ^= 1u64 << bit;
        }
        (v.verify(&env, NOW).unwrap_err().reason, env)
    };
    let mut issued_codes = std::collections::BTreeSet::new();
    let mut expires_codes = std::collections::BTreeSet::new();
    for bit in 0..64 {
        for (issued, codes) in [(true, &mut issued_codes), (false, &mut expires_codes)] {
            let (got, env) = flip(issued, bit);
            let want = expected_reason(env.body.issued_at_ms, env.body.expires_at_ms, NOW, signer);
            assert!(same_reason(&got, &want), "issued={issued} bit {bit}: {got:?} != {want:?}");
            codes.insert(got.code());
        }
    }
    // NOW = 1_800_000_000_000 has bits 12, 14, 18-20, 22, 27, 28, 32, 33, 37, 39, 40 set.
    // issued_at: +32 768 ms is beyond the 30 s skew; +65 536 ms passes expires_at
    // (60 s TTL); -524 288 ms is 224 288 ms past the 300 s window.
    assert_eq!(flip(true, 15).0, RejectReason::FromFuture { ahead_ms: 32_768 });
    assert_eq!(flip(true, 16).0.code(), "malformed");
    assert_eq!(flip(true, 63).0.code(), "malformed");
    assert_eq!(flip(true, 19).0, RejectReason::Expired { by_ms: 224_288 });
    assert_eq!(flip(true, 18).0, RejectReason::BadSignature { operator: signer });
    assert_eq!(flip(true, 0).0, RejectReason::BadSignature { operator: signer });
    // expires_at = NOW + 60 000 has bits 16 and 18 set, 17 clear: -65 536 ms or
    // -262 144 ms land before issued_at; +131 072 ms or +2^63 ms only lengthen its
    // own lifetime, so the signature check catches it.
    assert_eq!(flip(false, 16).0.code(), "malformed");
    assert_eq!(flip(false, 18).0.code(), "malformed");
    assert_eq!(flip(false, 17).0, RejectReason::BadSignature { operator: signer });
    assert_eq!(flip(false, 63).0, RejectReason::BadSignature { operator: signer });
    assert_eq!(
        issued_codes.into_iter().collect::<Vec<_>>(),
        ["bad_signature", "expired", "from_future", "malformed"]
    );
    assert_eq!(expires_codes.into_iter().collect::<Vec<_>>(), ["bad_signature", "malformed"]);
    // Nothing was remembered along the way.
    assert_eq!(v.remembered_nonces(), 0);
    assert!(v.verify(&original, NOW).is_ok());
}
