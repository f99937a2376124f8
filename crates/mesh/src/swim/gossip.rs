//! Dissemination: the queue of updates, piggybacked on probes and acks within
//! a byte budget, each retransmitted λ·log2 n times, and eager gossip of news.

use mesh_auth::NodeId;
use tokio::time::Instant;

use super::{GOSSIP_FANOUT, Out, PIGGYBACK_BYTES, Pending, RETRANSMIT_MULT, Swim, SwimMsg, Update};

impl Swim {
    /// Retransmissions of each update at the current size: λ·⌈log2(n + 1)⌉
    /// (24 at 32 members, 40 at 1,000). Every node that learns an update
    /// passes it on this often to random members, so a given node misses it
    /// with probability about e^(-k) (e^(-0.8 k) at 20 % loss); k must stay
    /// well above ln(n · updates) for no node to miss any (λ·log10 n did
    /// not: 1 boot of 32 nodes in 10 left a node without a record until the
    /// next push-pull). A boot storm of n joins costs O(n log n) per node,
    /// once.
    pub(super) fn retransmit_limit(&self) -> u32 {
        let n = self.n() as f64;
        RETRANSMIT_MULT * ((n + 1.0).log2().ceil() as u32).max(1)
    }

    /// Queues an update for gossip; `urgent` marks an Alive record that
    /// refutes (other kinds are always urgent).
    pub(super) fn enqueue(&mut self, update: Update, urgent: bool) {
        let node = update.node();
        if !self.spreading && node != self.me {
            return;
        }
        // One update per member in flight, except that suspicions by distinct
        // nodes travel side by side (each is a confirmation), and that a
        // suspicion or death never displaces the signed record of the same
        // incarnation: a node that holds an older record can apply neither
        // without it (that once cost a refuted node its membership).
        self.queue.retain(|p| {
            if p.update.node() != node {
                return true;
            }
            match (&update, &p.update) {
                (
                    Update::Suspect { incarnation, .. } | Update::Dead { incarnation, .. },
                    Update::Alive(old),
                ) => old.body.incarnation >= *incarnation,
                (
                    Update::Suspect { incarnation: i, by: a, .. },
                    Update::Suspect { incarnation: j, by: b, .. },
                ) => a != b && i == j,
                _ => false,
            }
        });
        let size = postcard::to_stdvec(&update).map_or(PIGGYBACK_BYTES, |b| b.len());
        let urgent = !matches!(update, Update::Alive(_)) || urgent;
        self.queue.push(Pending { update, size, sent: 0, urgent });
    }

    /// Updates to piggyback within the byte budget: urgent ones first (a
    /// boot's backlog of joins must not hold back a suspicion or its
    /// refutation: at 512 members it took minutes to drain, and refutations
    /// queued behind it cost 21 false deaths a minute at 20 % loss), then
    /// fewest-sent first.
    pub(super) fn piggyback(&mut self, budget: usize) -> Vec<Update> {
        if self.queue.is_empty() {
            return Vec::new();
        }
        let limit = self.retransmit_limit();
        self.queue.sort_by_key(|p| (!p.urgent, p.sent));
        let mut used = 0;
        let mut out = Vec::new();
        for p in &mut self.queue {
            if used + p.size > budget {
                continue;
            }
            used += p.size;
            p.sent += 1;
            out.push(p.update.clone());
        }
        self.queue.retain(|p| p.sent < limit);
        out
    }

    /// News just arrived: pass it on at once rather than at the next gossip
    /// round (at most every quarter gossip interval, so a burst of news is
    /// paced, not echoed per message).
    pub(crate) fn eager_gossip(
        &mut self,
        now: Instant,
        connected: &dyn Fn(NodeId) -> bool,
        out: &mut Out,
    ) {
        if !std::mem::take(&mut self.news) || self.left {
            return;
        }
        if self
            .last_eager
            .is_some_and(|t| now.saturating_duration_since(t) < self.timing.gossip_interval / 4)
        {
            self.news = true;
            return;
        }
        self.last_eager = Some(now);
        for t in self.random_live(GOSSIP_FANOUT, &[], connected) {
            let updates = self.piggyback(PIGGYBACK_BYTES);
            if updates.is_empty() {
                break;
            }
            out.push((t, SwimMsg::Gossip { updates }));
        }
    }
}
