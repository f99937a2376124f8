//! Envelope verification cost next to raw ed25519 `verify_strict`, same run.
//!
//! Criterion measures verifications per second for each; `cargo xtask bench auth`
//! reads those back. The ratio figures come from a paired measurement printed
//! first (`figure:` lines): batches of raw and envelope verifications alternate,
//! and the figure is the median of the per-pair ratios, so a machine whose speed
//! drifts between two criterion runs cannot skew the comparison.

#![allow(clippy::print_stdout, reason = "a benchmark reports on stdout")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, black_box, criterion_group};
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
        let keys = raw_keys(signers, &message);
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

/// Raw keys and signatures over `message`, one per signer (the floor).
fn raw_keys(
    signers: usize,
    message: &[u8],
) -> Vec<(ed25519_dalek::VerifyingKey, ed25519_dalek::Signature)> {
    (0..signers)
        .map(|i| {
            let sk = SigningKey::from_bytes(&[i as u8 + 1; 32]);
            (sk.verifying_key(), sk.sign(message))
        })
        .collect()
}

/// Median over `PAIRS` of (envelope batch time / raw batch time), the two
/// batches of each pair run back to back in alternating order.
fn paired_ratio(signers: usize) -> f64 {
    const PAIRS: usize = 41;
    const BATCH: usize = 150;
    let ops = operators(signers);
    let envs = envelopes(&ops, PAIRS * BATCH);
    let message = envs[0].body.signing_bytes();
    let keys = raw_keys(signers, &message);
    let v = verifier(&ops, signers);
    let raw_batch = || {
        let started = Instant::now();
        for _ in 0..BATCH {
            for (vk, sig) in &keys {
                assert!(vk.verify_strict(black_box(&message), black_box(sig)).is_ok());
            }
        }
        started.elapsed().as_secs_f64()
    };
    let mut next = envs.iter();
    let mut env_batch = || {
        let started = Instant::now();
        for env in next.by_ref().take(BATCH) {
            assert!(v.verify(black_box(env), NOW).is_ok());
        }
        started.elapsed().as_secs_f64()
    };
    // Warm caches and the nonce table's first growth steps.
    raw_batch();
    let mut ratios: Vec<f64> = (0..PAIRS)
        .map(|i| {
            if i % 2 == 0 {
                let raw = raw_batch();
                env_batch() / raw
            } else {
                let env = env_batch();
                env / raw_batch()
            }
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    ratios[PAIRS / 2]
}

criterion_group!(benches, bench);

fn main() {
    println!("figure: verify_envelope_ratio = {:.3} x", paired_ratio(1));
    println!("figure: verify_envelope_ratio_3_signers = {:.3} x", paired_ratio(3));
    benches();
    Criterion::default().configure_from_args().final_summary();
}
