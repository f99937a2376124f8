//! Lineage groups and roles, from the daemon names in a snapshot.
//!
//! Daemons whose names share a group (the name without its `#replica`, `#standby`
//! or `#fork@SEQ` suffix) form a lineage group. In a standby set the member with
//! the lowest daemon id is the active one and the others are warm; forks carry
//! their parent's sequence number; solo daemons of the same name (one
//! `node_agent` per node) form a group of their own. Groups are ordered by name,
//! and members by role (active, warm, replicas, forks by parent sequence, solo),
//! then node, then id: that is the DAEMONS tab's "lineage order".

use std::collections::BTreeMap;

use mesh::{DaemonView, Lineage, NodeId, OriginHash};
use serde::Serialize;

/// A daemon's role in its group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The active member of a standby set (lowest daemon id).
    StandbyActive,
    /// A warm member of a standby set.
    StandbyWarm,
    /// One of equal replicas.
    Replica,
    /// A fork taken at the parent's sequence number.
    Fork {
        /// The parent's sequence number at the fork.
        parent_seq: u64,
    },
    /// Not part of a lineage.
    Solo,
}

impl Role {
    /// `active`, `warm`, `replica`, `fork@7` or `solo`.
    pub fn label(&self) -> String {
        match self {
            Role::StandbyActive => "active".into(),
            Role::StandbyWarm => "warm".into(),
            Role::Replica => "replica".into(),
            Role::Fork { parent_seq } => format!("fork@{parent_seq}"),
            Role::Solo => "solo".into(),
        }
    }
}

/// What kind of group it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupKind {
    /// Solo daemons sharing a name.
    Solo,
    /// Replicas.
    Replica,
    /// A standby set.
    Standby,
    /// Forks of one parent.
    Fork,
    /// Members of different kinds.
    Mixed,
}

impl GroupKind {
    /// Lower-case label.
    pub fn label(self) -> &'static str {
        match self {
            GroupKind::Solo => "solo",
            GroupKind::Replica => "replica",
            GroupKind::Standby => "standby",
            GroupKind::Fork => "fork",
            GroupKind::Mixed => "mixed",
        }
    }
}

/// One member of a group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Member {
    /// The daemon.
    pub daemon: OriginHash,
    /// Its node.
    pub node: NodeId,
    /// Its role.
    pub role: Role,
    /// Its position in `MeshSnapshot::daemons`.
    pub index: usize,
}

/// A lineage group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Group {
    /// The group name (daemon name without suffix; raw, escape before showing).
    pub name: String,
    /// Its kind.
    pub kind: GroupKind,
    /// Members in lineage order.
    pub members: Vec<Member>,
}

impl Group {
    /// The active member of a standby set.
    pub fn active(&self) -> Option<&Member> {
        self.members.iter().find(|m| m.role == Role::StandbyActive)
    }

    /// Distinct nodes holding members.
    pub fn nodes(&self) -> usize {
        let mut nodes: Vec<NodeId> = self.members.iter().map(|m| m.node).collect();
        nodes.sort_unstable();
        nodes.dedup();
        nodes.len()
    }
}

fn kind_of(lineage: &Lineage) -> GroupKind {
    match lineage {
        Lineage::Solo => GroupKind::Solo,
        Lineage::Replica => GroupKind::Replica,
        Lineage::Standby => GroupKind::Standby,
        Lineage::Fork { .. } => GroupKind::Fork,
    }
}

/// The lineage groups of `daemons`, by name.
pub fn groups(daemons: &[DaemonView]) -> Vec<Group> {
    let mut by_name: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, d) in daemons.iter().enumerate() {
        by_name.entry(d.group.as_str()).or_default().push(i);
    }
    by_name
        .into_iter()
        .map(|(name, indices)| {
            let first_kind = kind_of(&daemons[indices[0]].lineage);
            let kind = if indices.iter().all(|&i| kind_of(&daemons[i].lineage) == first_kind) {
                first_kind
            } else {
                GroupKind::Mixed
            };
            let active = indices
                .iter()
                .filter(|&&i| daemons[i].lineage == Lineage::Standby)
                .map(|&i| daemons[i].id)
                .min();
            let mut members: Vec<Member> = indices
                .iter()
                .map(|&i| {
                    let d = &daemons[i];
                    let role = match d.lineage {
                        Lineage::Solo => Role::Solo,
                        Lineage::Replica => Role::Replica,
                        Lineage::Standby if Some(d.id) == active => Role::StandbyActive,
                        Lineage::Standby => Role::StandbyWarm,
                        Lineage::Fork { parent_seq } => Role::Fork { parent_seq },
                    };
                    Member { daemon: d.id, node: d.node, role, index: i }
                })
                .collect();
            members.sort_by_key(|m| (m.role, m.node, m.daemon, m.index));
            Group { name: name.to_owned(), kind, members }
        })
        .collect()
}

/// Every daemon in lineage order: `(index in daemons, role)`.
pub fn lineage_order(groups: &[Group]) -> Vec<(usize, Role)> {
    groups.iter().flat_map(|g| g.members.iter().map(|m| (m.index, m.role))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit;

    #[test]
    fn the_demo_names_give_four_groups_with_their_roles() {
        let names = [
            "node_agent",
            "inference_worker#replica",
            "rollout_forge#fork@7",
            "trainer_canary#standby",
        ];
        let mut daemons = Vec::new();
        for (k, name) in names.iter().enumerate() {
            for i in 0..3u64 {
                daemons.push(testkit::daemon(name, 100 - 10 * i - k as u64, 1 + i));
            }
        }
        let groups = groups(&daemons);
        let summary: Vec<(&str, GroupKind, usize)> =
            groups.iter().map(|g| (g.name.as_str(), g.kind, g.members.len())).collect();
        assert_eq!(
            summary,
            [
                ("inference_worker", GroupKind::Replica, 3),
                ("node_agent", GroupKind::Solo, 3),
                ("rollout_forge", GroupKind::Fork, 3),
                ("trainer_canary", GroupKind::Standby, 3),
            ]
        );
        let standby = &groups[3];
        let active = standby.active().unwrap();
        assert_eq!(active.daemon, standby.members.iter().map(|m| m.daemon).min().unwrap());
        assert_eq!(
            standby.members.iter().filter(|m| m.role == Role::StandbyWarm).count(),
            2,
            "the other two are warm"
        );
        assert!(groups[2].members.iter().all(|m| m.role == Role::Fork { parent_seq: 7 }));
        assert!(groups[0].members.iter().all(|m| m.role == Role::Replica));
        assert!(groups[1].members.iter().all(|m| m.role == Role::Solo));
        assert_eq!(groups[1].nodes(), 3);
        assert_eq!(lineage_order(&groups).len(), 12);
    }

    #[test]
    fn mixed_groups_are_marked() {
        let daemons = vec![testkit::daemon("x", 1, 1), testkit::daemon("x#replica", 2, 1)];
        let groups = groups(&daemons);
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].kind, GroupKind::Mixed);
        assert_eq!(groups[0].members[0].role, Role::Replica);
    }
}
