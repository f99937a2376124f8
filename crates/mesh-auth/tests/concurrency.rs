//! One `AdminVerifier` shared by many threads at once: the replay check and the
//! nonce record must be atomic, and concurrent distinct envelopes must all pass.
//!
//! No timing assertions: every thread verifies at the same explicit `now_ms`, and a
//! barrier lines the submissions up so that races are likely, not guaranteed.

use std::sync::{Arc, Barrier};
use std::thread;

use mesh_auth::{
    AdminVerifier, CommandClass, EntityKeypair, EnvelopeDraft, OperatorIdentity, OperatorRegistry,
    RejectReason, Rejection, SignedEnvelope, Verified,
};

const NOW: u64 = 1_800_000_000_000;
const THREADS: usize = 8;
const ROUNDS: usize = 40;

fn setup() -> (OperatorIdentity, Arc<AdminVerifier>) {
    let op = OperatorIdentity::from_keypair(EntityKeypair::from_seed(&[7; 32]));
    let mut reg = OperatorRegistry::new();
    reg.register_public(op.public());
    (op, Arc::new(AdminVerifier::new(Arc::new(reg), 1)))
}

fn envelope(op: &OperatorIdentity, class: CommandClass, target: String) -> SignedEnvelope {
    op.sign_command(
        EnvelopeDraft::new(class, target, b"cordon".to_vec()).issued_at(NOW).blast_radius([3; 32]),
    )
}

/// Runs `THREADS` threads that wait on one barrier, then each verify
/// `envelopes[i]` against the shared verifier; returns the results in thread order.
fn submit_together(
    verifier: &Arc<AdminVerifier>,
    envelopes: &[SignedEnvelope],
) -> Vec<Result<Verified, Rejection>> {
    let barrier = Barrier::new(envelopes.len());
    thread::scope(|s| {
        let handles: Vec<_> = envelopes
            .iter()
            .map(|env| {
                let verifier = Arc::clone(verifier);
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    verifier.verify(env, NOW)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("verifier thread panicked")).collect()
    })
}

#[test]
fn same_envelope_from_many_threads_is_accepted_exactly_once() {
    for round in 0..ROUNDS {
        // Alternate classes: ICE also records a cooldown under the same lock.
        let class = if round % 2 == 0 { CommandClass::Routine } else { CommandClass::Ice };
        let (op, verifier) = setup();
        let env = envelope(&op, class, format!("node:{round}"));
        let results = submit_together(&verifier, &vec![env.clone(); THREADS]);

        let accepted = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(accepted, 1, "round {round}: {accepted} threads accepted one envelope");
        for result in &results {
            match result {
                Ok(ok) => assert_eq!(ok.operators, vec![op.operator_id()]),
                Err(e) => assert_eq!(e.reason, RejectReason::Replayed, "round {round}: {e}"),
            }
        }
        assert_eq!(verifier.remembered_nonces(), 1);
        // And it stays refused afterwards.
        assert_eq!(verifier.verify(&env, NOW).unwrap_err().reason, RejectReason::Replayed);
    }
}

#[test]
fn distinct_envelopes_from_many_threads_are_all_accepted() {
    let (op, verifier) = setup();
    for round in 0..ROUNDS {
        // Distinct nonces (random) and distinct targets, so ICE cooldowns on one
        // target cannot refuse another thread's envelope.
        let envelopes: Vec<_> = (0..THREADS)
            .map(|t| {
                let class = if t % 2 == 0 { CommandClass::Routine } else { CommandClass::Ice };
                envelope(&op, class, format!("node:{round}:{t}"))
            })
            .collect();
        let results = submit_together(&verifier, &envelopes);
        for (t, result) in results.iter().enumerate() {
            if let Err(e) = result {
                panic!("round {round}, thread {t}: fresh envelope refused: {e}");
            }
        }
        // One shared verifier across rounds: every nonce is remembered.
        assert_eq!(verifier.remembered_nonces(), (round + 1) * THREADS);
        // Each of them is now a replay.
        for env in &envelopes {
            assert_eq!(verifier.verify(env, NOW).unwrap_err().reason, RejectReason::Replayed);
        }
    }
}

#[test]
fn verifier_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<AdminVerifier>();
    assert_send_sync::<Arc<AdminVerifier>>();
}
