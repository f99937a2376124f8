//! Envelope verification cost next to raw ed25519 `verify_strict`, same run.
//!
//! `cargo xtask bench auth` turns these into the `verify_envelope_ratio` figures.

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, black_box, criterion_group, criterion_main};
use ed25519_dalek::{Signer, SigningKey};
use mesh_auth::{
    AdminVerifier, CommandClass, EntityKeypair, EnvelopeDraft, OperatorIdentity, OperatorRegistry,
    SignedEnvelope, VerifierConfig,
};

const NOW: u64 = 1_800_000_000_000;

fn operators(n: usize) -> Vec<OperatorIdentity> {
    (0..n)
        .map(|i| OperatorIdentity::from_keypair(EntityKeypair::from_seed(&[i as u8 + 1; 32])))
        .collect()
}

fn verifier(ops: &[OperatorIdentity], threshold: usize) -> AdminVerifier {
    let mut reg = OperatorRegistry::new();
    for op in ops {
        reg.register_public(op.public());
    }
    // A large nonce cache so eviction never dominates.
    AdminVerifier::with_config(
        Arc::new(reg),
        VerifierConfig {
            routine_threshold: threshold,
            max_nonces: 1 << 22,
            freshness: Duration::from_secs(3600 * 24),
            ..VerifierConfig::default()
        },
    )
}

/// Fresh envelopes (distinct nonces) signed by `ops`, so every verification is a
/// real acceptance and not a replay rejection.
fn envelopes(ops: &[OperatorIdentity], count: usize) -> Vec<SignedEnvelope> {
    (0..count)
        .map(|i| {
            let draft =
                EnvelopeDraft::new(CommandClass::Routine, "node:0x0123456789abcdef", vec![7u8; 64])
                    .issued_at(NOW)
                    .nonce((i as u128).to_le_bytes());
            let mut env = ops[0].sign_command(draft);
            for op in &ops[1..] {
                op.cosign(&mut env);
            }
            env
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("verify");
    group.warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(4));

    for signers in [1usize, 3] {
        let ops = operators(signers);
        let envs = envelopes(&ops, 50_000);
        let message = envs[0].body.signing_bytes();

        // Raw floor: `signers` strict verifications of a message of the same length.
        let keys: Vec<(ed25519_dalek::VerifyingKey, ed25519_dalek::Signature)> = (0..signers)
            .map(|i| {
                let sk = SigningKey::from_bytes(&[i as u8 + 1; 32]);
                (sk.verifying_key(), sk.sign(&message))
            })
            .collect();
        group.bench_function(format!("raw_ed25519_x{signers}"), |b| {
            b.iter(|| {
                for (vk, sig) in &keys {
                    assert!(vk.verify_strict(black_box(&message), black_box(sig)).is_ok());
                }
            })
        });

        let mut v = verifier(&ops, signers);
        let mut next = 0usize;
        let id = if signers == 1 {
            "envelope_1_signer".to_owned()
        } else {
            format!("envelope_{signers}_signers")
        };
        group.bench_function(id, |b| {
            b.iter(|| {
                // Once every envelope was used, further rounds would be replays:
                // keep measuring acceptances with a fresh verifier (rare, cheap).
                if next == envs.len() {
                    next = 0;
                    v = verifier(&ops, signers);
                }
                let env = &envs[next];
                next += 1;
                assert!(v.verify(black_box(env), NOW).is_ok());
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
