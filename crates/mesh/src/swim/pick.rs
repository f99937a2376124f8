//! Choosing members: the randomised round-robin probe order, and random live
//! members (those with a session first) for gossip and indirect probes.

use mesh_auth::NodeId;

use super::{Member, Swim};

impl Swim {
    pub(super) fn random_live(
        &mut self,
        count: usize,
        except: &[NodeId],
        prefer: &dyn Fn(NodeId) -> bool,
    ) -> Vec<NodeId> {
        // Random draws from the probe order first, of members with a
        // session only: O(count) when most members are live and connected,
        // instead of a scan of the whole table for every gossip round.
        let mut out = Vec::with_capacity(count);
        if count < self.live && !self.order.is_empty() {
            for _ in 0..count * 32 {
                if out.len() >= count {
                    return out;
                }
                let node = self.order[self.rng.below(self.order.len())];
                if !out.contains(&node)
                    && !except.contains(&node)
                    && self.members.get(&node).is_some_and(Member::is_live)
                    && prefer(node)
                {
                    out.push(node);
                }
            }
            if out.len() >= count {
                return out;
            }
        }
        // Few members, few live or few connected ones: the whole table.
        let mut live: Vec<NodeId> = self
            .members
            .values()
            .filter(|m| {
                m.is_live()
                    && !except.contains(&m.alive.body.node)
                    && !out.contains(&m.alive.body.node)
            })
            .map(|m| m.alive.body.node)
            .collect();
        live.sort_unstable();
        // Members we already have a session with first: no handshake needed.
        let (mut near, mut far): (Vec<NodeId>, Vec<NodeId>) =
            live.into_iter().partition(|n| prefer(*n));
        for pool in [&mut near, &mut far] {
            while out.len() < count && !pool.is_empty() {
                let i = self.rng.below(pool.len());
                out.push(pool.swap_remove(i));
            }
        }
        out
    }

    pub(super) fn next_target(&mut self) -> Option<NodeId> {
        for _ in 0..=self.order.len() {
            if self.order_pos >= self.order.len() {
                self.order.retain(|n| self.members.contains_key(n));
                // Fisher-Yates: a fresh random order each pass.
                for i in (1..self.order.len()).rev() {
                    let j = self.rng.below(i + 1);
                    self.order.swap(i, j);
                }
                self.order_pos = 0;
                if self.order.is_empty() {
                    return None;
                }
            }
            let node = self.order[self.order_pos];
            self.order_pos += 1;
            if self.members.get(&node).is_some_and(Member::is_live) {
                return Some(node);
            }
        }
        None
    }
}
