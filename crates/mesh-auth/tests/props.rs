//! Property tests for envelopes, the verifier, the ledger and key files.

use std::sync::Arc;

use mesh_auth::{
    AdminVerifier, AuditLedger, AuditOutcome, AuditRecord, CommandClass, EntityKeypair,
    EnvelopeDraft, OperatorIdentity, OperatorRegistry, RejectReason, SignedEnvelope,
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
    fn any_bit_flip_in_signed_fields_is_rejected(
        payload in proptest::collection::vec(any::<u8>(), 1..256),
        field in 0usize..5,
        bit in any::<u64>(),
    ) {
        let ops = ops(1);
        let v = verifier_for(&ops, 1);
        let mut env = signed(&ops[0], CommandClass::Routine, payload, [3; 16]);
        match field {
            0 => { let n = env.body.payload.len() * 8; let b = (bit as usize) % n; env.body.payload[b / 8] ^= 1 << (b % 8); }
            1 => {
                let mut sig = env.signatures[0].signature.to_bytes();
                let b = (bit as usize) % 512;
                sig[b / 8] ^= 1 << (b % 8);
                env.signatures[0].signature = mesh_auth::Signature::from_bytes(&sig);
            }
            2 => { let b = (bit as usize) % 128; env.body.nonce[b / 8] ^= 1 << (b % 8); }
            3 => env.body.issued_at_ms ^= 1 << (bit % 16),
            _ => env.body.expires_at_ms ^= 1 << (bit % 16),
        }
        prop_assert!(v.verify(&env, NOW).is_err());
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
