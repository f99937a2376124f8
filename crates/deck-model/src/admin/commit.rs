//! The commit path of a reviewed action, in one function ([`commit`]): simulate
//! again, sign one envelope per target, send them all at once through the
//! source, gather every node's answer in target order, keep the report.
//!
//! Each step but the sending is a pure function of its own ([`recheck`],
//! [`signers`], [`envelopes`], [`assemble`]), tested without a cluster.

use mesh::{AdminCommand, MeshSnapshot, NodeId};
use mesh_auth::{CommandClass, EnvelopeDraft, OperatorIdentity, SignedEnvelope};

use crate::error::DeckError;
use crate::pending::PendingAction;
use crate::report::{CommitReport, NodeOutcome};
use crate::source::DeckSource;

/// Re-simulates, signs, sends to every target through `source` and reports
/// each node's outcome; the report is also handed to [`DeckSource::record`].
///
/// Fails without sending anything if the blast radius changed since `pending`
/// was prepared ([`DeckError::BlastRadiusChanged`] carries the fresh action).
pub(crate) async fn commit(
    source: &dyn DeckSource,
    pending: &PendingAction,
) -> Result<CommitReport, DeckError> {
    recheck(pending, &source.current_snapshot())?;
    let signers = signers(source.signers(), &pending.cosigners);
    let mut tasks = tokio::task::JoinSet::new();
    for (i, (node, envelope)) in envelopes(pending, &signers).into_iter().enumerate() {
        let delivery = source.deliver(node, envelope);
        tasks.spawn(async move { (i, NodeOutcome { node, result: delivery.await }) });
    }
    let mut answers = Vec::with_capacity(pending.targets.len());
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(answer) => answers.push(answer),
            Err(e) => tracing::error!(error = %e, "admin commit task failed"),
        }
    }
    let report = assemble(pending, &signers, mesh_auth::unix_now_ms(), answers);
    tracing::info!(summary = %report.summary(), "admin action");
    source.record(report.clone());
    Ok(report)
}

/// Simulates `pending`'s command again on `snapshot`: `Ok` when it touches what
/// the operator reviewed, else the fresh action to review (with the same
/// co-signers).
pub(crate) fn recheck(pending: &PendingAction, snapshot: &MeshSnapshot) -> Result<(), DeckError> {
    let mut fresh = PendingAction::prepare(pending.command.clone(), snapshot);
    if fresh.digest == pending.digest {
        return Ok(());
    }
    fresh.cosigners = pending.cosigners.clone();
    Err(DeckError::BlastRadiusChanged { fresh: Box::new(fresh) })
}

/// Who signs: the source's signers, then the action's co-signers, each
/// operator once, in that order.
pub(crate) fn signers<'a>(
    own: &'a [OperatorIdentity],
    cosigners: &'a [OperatorIdentity],
) -> Vec<&'a OperatorIdentity> {
    let mut all: Vec<&OperatorIdentity> = Vec::with_capacity(own.len() + cosigners.len());
    for s in own.iter().chain(cosigners) {
        if !all.iter().any(|a| a.public() == s.public()) {
            all.push(s);
        }
    }
    all
}

/// One envelope per target, in target order, each with its own nonce (so a
/// cluster-wide command stays valid on nodes that share a replay cache, and no
/// node is handed an envelope meant for another). None without a signer.
pub(crate) fn envelopes(
    pending: &PendingAction,
    signers: &[&OperatorIdentity],
) -> Vec<(NodeId, SignedEnvelope)> {
    pending
        .targets
        .iter()
        .filter_map(|&node| Some((node, sign(signers, &pending.command, pending.digest)?)))
        .collect()
}

/// Signs `command` once: the first signer signs, the others co-sign; ICE
/// envelopes carry the blast-radius digest. None without a signer.
pub(crate) fn sign(
    signers: &[&OperatorIdentity],
    command: &AdminCommand,
    digest: [u8; 32],
) -> Option<SignedEnvelope> {
    let (first, rest) = signers.split_first()?;
    let mut envelope = first.sign_command(draft(command, digest));
    for s in rest {
        s.cosign(&mut envelope);
    }
    Some(envelope)
}

fn draft(command: &AdminCommand, digest: [u8; 32]) -> EnvelopeDraft {
    let draft = EnvelopeDraft::new(command.class(), command.target(), command.to_payload());
    if command.class() == CommandClass::Ice { draft.blast_radius(digest) } else { draft }
}

/// The report of a sent action from the answers (`(target index, outcome)`, in
/// any order): outcomes in target order.
pub(crate) fn assemble(
    pending: &PendingAction,
    signers: &[&OperatorIdentity],
    sent_at_ms: u64,
    mut answers: Vec<(usize, NodeOutcome)>,
) -> CommitReport {
    answers.sort_by_key(|(i, _)| *i);
    let command = &pending.command;
    CommitReport {
        verb: command.verb(),
        target: command.target(),
        payload_digest: payload_digest(command),
        signers: signers.iter().map(|s| s.operator_id()).collect(),
        sent_at_ms,
        outcomes: answers.into_iter().map(|(_, o)| o).collect(),
    }
}

/// The payload digest audit records carry for `command`.
fn payload_digest(command: &AdminCommand) -> [u8; 32] {
    EnvelopeDraft::new(command.class(), command.target(), command.to_payload())
        .finish()
        .payload_digest()
}

#[cfg(test)]
mod tests;
