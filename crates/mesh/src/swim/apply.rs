//! Applying updates: signed records, suspicions, deaths and goodbyes, and
//! refuting suspicions of this node.

use mesh_auth::NodeId;
use tokio::time::Instant;

use super::{
    EXPECTED_CONFIRMATIONS, Event, MAX_MEMBERS, Member, MemberState, Refusal, SignedAlive,
    Suspicion, Swim, SwimMsg, Update, left_bytes,
};

impl Swim {
    /// Records a member this node met directly (a session whose peer proved its
    /// key): its record, if it is new here, must still come signed.
    pub(crate) fn has_current(&self, node: NodeId) -> bool {
        self.members.get(&node).is_some_and(|m| m.is_live())
    }

    /// Applies one update; true when it was news (and is passed on).
    pub(crate) fn apply(
        &mut self,
        from: NodeId,
        update: Update,
        now: Instant,
        now_ms: u64,
    ) -> bool {
        match update {
            Update::Alive(record) => self.apply_alive(record, now, now_ms),
            // Who suspects counts, not who passed it on (`from`).
            Update::Suspect { node, incarnation, by } => {
                if node == self.me {
                    self.refute(incarnation, &[by, from]);
                    return false;
                }
                self.apply_suspect(by, node, incarnation, now)
            }
            Update::Dead { node, incarnation } => {
                if node == self.me {
                    self.refute(incarnation, &[from]);
                    return false;
                }
                let Some(m) = self.members.get(&node) else { return false };
                if incarnation != m.incarnation() || !m.is_live() {
                    return false;
                }
                self.set_state(node, MemberState::Dead, now);
                self.enqueue(Update::Dead { node, incarnation }, true);
                true
            }
            Update::Left(left) => {
                if left.node == self.me {
                    return false;
                }
                let Some(m) = self.members.get(&left.node) else { return false };
                if left.incarnation < m.incarnation() || m.state == MemberState::Left {
                    return false;
                }
                if !m.alive.key.verify(&left_bytes(left.node, left.incarnation), &left.signature) {
                    self.refused.push(Refusal::BadSignature);
                    return false;
                }
                let node = left.node;
                if let Some(m) = self.members.get_mut(&node) {
                    m.left = Some(left.clone());
                }
                self.set_state(node, MemberState::Left, now);
                self.enqueue(Update::Left(left), true);
                true
            }
        }
    }

    pub(super) fn apply_alive(&mut self, record: SignedAlive, now: Instant, now_ms: u64) -> bool {
        let node = record.body.node;
        if node == self.me {
            // Someone holds an older record of ours: nothing to do, ours spreads.
            return false;
        }
        let newer = match self.members.get(&node) {
            None => true,
            Some(m) => record.body.incarnation > m.incarnation(),
        };
        if !newer {
            return false;
        }
        if !self.members.contains_key(&node) && self.members.len() >= MAX_MEMBERS {
            self.refused.push(Refusal::Full);
            return false;
        }
        if self.allow.as_ref().is_some_and(|a| !a.contains(&record.key)) {
            self.refused.push(Refusal::NotAllowed);
            return false;
        }
        if let Err(why) = record.check(now_ms) {
            self.refused.push(why);
            return false;
        }
        let joined = !self.members.contains_key(&node);
        match self.members.get_mut(&node) {
            None => {
                let addr = record.body.addr;
                self.live += 1;
                self.members.insert(
                    node,
                    Member {
                        alive: record.clone(),
                        state: MemberState::Alive,
                        since: now,
                        left: None,
                        suspicion: None,
                    },
                );
                // A new member goes into the probe order at a random place.
                let at = self.rng.below(self.order.len() + 1);
                self.order.insert(at, node);
                self.events.push(Event { node, addr, from: None, to: MemberState::Alive });
            }
            Some(m) => {
                m.alive = record.clone();
                m.left = None;
                self.set_state(node, MemberState::Alive, now);
            }
        }
        self.enqueue(Update::Alive(record), !joined);
        true
    }

    pub(super) fn apply_suspect(
        &mut self,
        from: NodeId,
        node: NodeId,
        incarnation: u64,
        now: Instant,
    ) -> bool {
        if node == self.me {
            self.refute(incarnation, &[from]);
            return false;
        }
        let Some(m) = self.members.get_mut(&node) else { return false };
        if incarnation != m.incarnation() {
            return false;
        }
        match m.state {
            MemberState::Alive => {
                m.suspicion = Some(Suspicion::new(now, from));
                self.set_state(node, MemberState::Suspect, now);
                self.enqueue(Update::Suspect { node, incarnation, by: from }, true);
                true
            }
            MemberState::Suspect => {
                let s = m.suspicion.get_or_insert(Suspicion::new(now, from));
                // The first suspector plus EXPECTED_CONFIRMATIONS others.
                if s.confirmations.contains(&from) || s.confirmations.len() > EXPECTED_CONFIRMATIONS
                {
                    return false;
                }
                s.confirmations.push(from);
                // A confirmation is news: it shortens everyone's timeout.
                self.enqueue(Update::Suspect { node, incarnation, by: from }, true);
                true
            }
            MemberState::Dead | MemberState::Left => false,
        }
    }

    /// Someone suspects this node (or says it is dead) at `incarnation`: sign a
    /// higher one, and tell `tell` (the suspector, which holds the earliest
    /// timer, and whoever passed it on) at once; the rest hear it by gossip. A
    /// suspicion of an incarnation already refuted is answered once per node.
    pub(super) fn refute(&mut self, incarnation: u64, tell: &[NodeId]) {
        if self.left {
            return;
        }
        if incarnation >= self.own.body.incarnation {
            let mut body = self.own.body.clone();
            body.incarnation = incarnation + 1;
            self.own = SignedAlive::sign(body, &self.identity);
            self.stats.refuted += 1;
            self.lhm_up();
            self.enqueue(Update::Alive(self.own.clone()), true);
            self.news = true;
            self.told.clear();
        }
        for &to in tell {
            if to != self.me && self.told.len() < 64 && self.told.insert(to) {
                let updates = vec![Update::Alive(self.own.clone())];
                self.outbox.push((to, SwimMsg::Gossip { updates }));
            }
        }
    }

    pub(super) fn apply_all(
        &mut self,
        from: NodeId,
        mut updates: Vec<Update>,
        now: Instant,
        now_ms: u64,
    ) {
        // Records first: a suspicion of an incarnation is applied after the
        // record of that incarnation that travels with it.
        updates.sort_by_key(|u| !matches!(u, Update::Alive(_)));
        for u in updates {
            if self.apply(from, u, now, now_ms) {
                self.news = true;
            }
        }
    }
}
