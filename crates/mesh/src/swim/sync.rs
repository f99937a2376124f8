//! Push-pull: digests exchanged, then only the records that differ, in chunks
//! that fit one datagram.

use std::collections::HashMap;

use mesh_auth::NodeId;

use super::{DigestEntry, MemberState, Out, SYNC_CHUNK, Swim, SwimMsg, Update};

impl Swim {
    /// Sets `synced` once every member a peer listed in a push-pull is known
    /// here (whatever its state).
    pub(super) fn check_synced(&mut self) {
        if let Some(pending) = &mut self.sync_pending {
            let (me, members) = (self.me, &self.members);
            pending.retain(|n| *n != me && !members.contains_key(n));
            if pending.is_empty() {
                self.sync_pending = None;
                self.synced = true;
            }
        }
    }

    /// The records `theirs` lacks or holds older, then (when `with_digest`)
    /// this node's digest.
    pub(super) fn answer_digest(
        &mut self,
        to: NodeId,
        theirs: &[DigestEntry],
        with_digest: bool,
        out: &mut Out,
    ) {
        let known: HashMap<NodeId, (u64, u8)> =
            theirs.iter().map(|d| (d.node, (d.incarnation, d.rank))).collect();
        // They hold this node suspect or dead (a partition that healed): refute.
        if let Some(&(inc, rank)) = known.get(&self.me)
            && rank > 0
            && rank < MemberState::Left.rank()
        {
            self.refute(inc, &[]);
        }
        let mut records = Vec::new();
        let mine = std::iter::once((self.me, self.own.body.incarnation, 0u8));
        let others =
            self.members.values().map(|m| (m.alive.body.node, m.incarnation(), m.state.rank()));
        for (node, inc, rank) in mine.chain(others) {
            let stale = known.get(&node).is_none_or(|&(i, r)| (i, r) < (inc, rank));
            if stale {
                records.extend(self.full_record(node));
            }
        }
        let digest = if with_digest { self.digest() } else { Vec::new() };
        let mut chunks: Vec<Vec<Update>> =
            records.chunks(SYNC_CHUNK).map(<[Update]>::to_vec).collect();
        let last = chunks.pop().unwrap_or_default();
        for chunk in chunks {
            out.push((to, SwimMsg::Sync { stage: 2, digest: Vec::new(), updates: chunk }));
        }
        if with_digest || !last.is_empty() {
            let stage = if with_digest { 1 } else { 2 };
            out.push((to, SwimMsg::Sync { stage, digest, updates: last }));
        }
    }

    /// A member's record and, when not alive, the update that says so.
    pub(super) fn full_record(&self, node: NodeId) -> Vec<Update> {
        if node == self.me {
            return vec![Update::Alive(self.own.clone())];
        }
        let Some(m) = self.members.get(&node) else { return Vec::new() };
        let inc = m.incarnation();
        let mut out = vec![Update::Alive(m.alive.clone())];
        match m.state {
            MemberState::Alive => {}
            MemberState::Suspect => {
                let by = m.suspicion.as_ref().and_then(|s| s.confirmations.first().copied());
                out.push(Update::Suspect { node, incarnation: inc, by: by.unwrap_or(self.me) });
            }
            MemberState::Dead => out.push(Update::Dead { node, incarnation: inc }),
            MemberState::Left => out.extend(m.left.clone().map(Update::Left)),
        }
        out
    }

    pub(crate) fn digest(&self) -> Vec<DigestEntry> {
        std::iter::once(DigestEntry {
            node: self.me,
            incarnation: self.own.body.incarnation,
            rank: 0,
        })
        .chain(self.members.values().map(|m| DigestEntry {
            node: m.alive.body.node,
            incarnation: m.incarnation(),
            rank: m.state.rank(),
        }))
        .collect()
    }

    /// Starts a push-pull with `to` (a seed, or a member just met).
    pub(crate) fn sync_with(&mut self, to: NodeId, out: &mut Out) {
        out.push((
            to,
            SwimMsg::Sync {
                stage: 0,
                digest: self.digest(),
                updates: vec![Update::Alive(self.own.clone())],
            },
        ));
    }
}
