//! Lineage groups encoded in daemon names.
//!
//! A daemon's name may end in a suffix that places it in a group:
//!
//! - `name#replica`: one of several equal replicas of `name`;
//! - `name#standby`: a standby set; the member with the lowest daemon id is active;
//! - `name#fork@SEQ`: a fork of `name` taken at sequence number `SEQ`;
//! - anything else (including malformed suffixes) is a solo daemon.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Where a daemon sits in its lineage group.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Lineage {
    /// Not part of a group.
    Solo,
    /// One of several equal replicas.
    Replica,
    /// One of a standby set (lowest id active).
    Standby,
    /// A fork taken at a parent sequence number.
    Fork {
        /// The parent's sequence number at the fork.
        parent_seq: u64,
    },
}

/// A daemon name split into its group and lineage.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ParsedName {
    /// The group (the name without its suffix; the whole name for solo daemons).
    pub group: String,
    /// The lineage.
    pub lineage: Lineage,
}

impl ParsedName {
    /// Parses a daemon name. Never fails: anything unrecognised is solo.
    pub fn parse(name: &str) -> Self {
        let solo = || ParsedName { group: name.to_owned(), lineage: Lineage::Solo };
        let Some((base, suffix)) = name.rsplit_once('#') else { return solo() };
        if base.is_empty() {
            return solo();
        }
        let lineage = match suffix {
            "replica" => Lineage::Replica,
            "standby" => Lineage::Standby,
            _ => match suffix.strip_prefix("fork@").map(str::parse::<u64>) {
                Some(Ok(parent_seq)) => Lineage::Fork { parent_seq },
                _ => return solo(),
            },
        };
        ParsedName { group: base.to_owned(), lineage }
    }
}

impl fmt::Display for ParsedName {
    /// Formats back to the name it was parsed from (for well-formed names).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.lineage {
            Lineage::Solo => f.write_str(&self.group),
            Lineage::Replica => write!(f, "{}#replica", self.group),
            Lineage::Standby => write!(f, "{}#standby", self.group),
            Lineage::Fork { parent_seq } => write!(f, "{}#fork@{parent_seq}", self.group),
        }
    }
}

impl Lineage {
    /// `solo`, `replica`, `standby` or `fork`.
    pub fn label(&self) -> &'static str {
        match self {
            Lineage::Solo => "solo",
            Lineage::Replica => "replica",
            Lineage::Standby => "standby",
            Lineage::Fork { .. } => "fork",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_suffixes_and_solo() {
        let p = ParsedName::parse("inference_worker#replica");
        assert_eq!((p.group.as_str(), &p.lineage), ("inference_worker", &Lineage::Replica));
        assert_eq!(ParsedName::parse("t#standby").lineage, Lineage::Standby);
        assert_eq!(ParsedName::parse("forge#fork@7").lineage, Lineage::Fork { parent_seq: 7 });
        for solo in ["plain", "#replica", "x#fork@", "x#fork@-1", "x#other", "a#b#c"] {
            assert_eq!(ParsedName::parse(solo).lineage, Lineage::Solo, "{solo}");
            assert_eq!(ParsedName::parse(solo).to_string(), solo);
        }
        assert_eq!(ParsedName::parse("a#b#replica").group, "a#b");
    }
}
