//! The verifier's unit tests: reasons, thresholds, replay and cooldowns, restarts.

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
    assert!(matches!(v.check_authority(&big).unwrap_err().reason, RejectReason::Malformed { .. }));
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
    let (_, checked) = v.verify_with(&refused, NOW, |_| Err::<(), _>("stale simulation")).unwrap();
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
