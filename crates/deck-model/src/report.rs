//! What became of a sent admin action: [`NodeResult`] per node, gathered in a
//! [`CommitReport`].
//!
//! Everything a node (or the RPC layer) said is kept raw here, for the audit
//! trail and the headless JSON; the methods that make lines for a terminal escape
//! and cap it ([`text`]).

use mesh::{AdminOutcome, NodeId};
use mesh_auth::OperatorId;
use serde::Serialize;

use crate::table::{Cell, Style};
use crate::text;

/// What happened on one node: the node answered, or the command did not get
/// there.
///
/// The node's answer is kept as it came over the wire (`mesh::AdminOutcome`):
/// refusal codes are strings (`not_authorized`, `no_verifier`, `frozen`, ...),
/// so a node newer than the deck can send codes the deck does not know yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeResult {
    /// The node answered: accepted (verified, recorded, applied) or refused
    /// (and recorded in its ledger when a registered operator signed).
    Delivered(AdminOutcome),
    /// The command did not reach the node, or its answer did not come back:
    /// what the RPC layer said.
    NotDelivered(String),
}

impl NodeResult {
    /// True when the node accepted.
    pub fn is_accepted(&self) -> bool {
        self.outcome().is_some_and(AdminOutcome::is_accepted)
    }

    /// The node's answer, if it came.
    pub fn outcome(&self) -> Option<&AdminOutcome> {
        match self {
            NodeResult::Delivered(outcome) => Some(outcome),
            NodeResult::NotDelivered(_) => None,
        }
    }

    /// The refusal code, when the node refused (`not_authorized`, `frozen`, ...).
    pub fn code(&self) -> Option<&str> {
        self.outcome().and_then(AdminOutcome::code)
    }

    /// The node's audit ledger entry for the command, if it recorded one.
    pub fn audit_seq(&self) -> Option<u64> {
        match self.outcome()? {
            AdminOutcome::Accepted { audit_seq, .. } => Some(*audit_seq),
            AdminOutcome::Rejected { audit_seq, .. } => *audit_seq,
        }
    }

    /// What happened, in words for a dialog line (`accepted  audit #3  cordoned`,
    /// `rejected  not_authorized: ...`, `not reached  ...`). Every string the node
    /// (or the RPC layer) sent is escaped and capped ([`text::clean`]).
    pub fn describe(&self) -> String {
        match self {
            NodeResult::Delivered(AdminOutcome::Accepted { audit_seq, effect }) => {
                format!("accepted  audit #{audit_seq}  {}", text::message(effect))
            }
            NodeResult::Delivered(AdminOutcome::Rejected { code, reason, .. }) => {
                let (code, reason) = (text::name(code), text::message(reason));
                // Reasons usually start with their code already.
                if reason.starts_with(code.as_str()) {
                    format!("rejected  {reason}")
                } else {
                    format!("rejected  {code}: {reason}")
                }
            }
            NodeResult::NotDelivered(error) => format!("not reached  {}", text::message(error)),
        }
    }
}

impl From<AdminOutcome> for NodeResult {
    fn from(outcome: AdminOutcome) -> Self {
        NodeResult::Delivered(outcome)
    }
}

/// How a [`NodeResult`] reads in JSON (the headless output and exports):
/// `{"result": "accepted" | "rejected" | "not_delivered", ...}` with the
/// node's fields beside it, raw.
#[derive(Serialize)]
#[serde(rename_all = "snake_case", tag = "result")]
enum Shown<'a> {
    Accepted { audit_seq: u64, effect: &'a str },
    Rejected { code: &'a str, reason: &'a str, audit_seq: Option<u64> },
    NotDelivered { error: &'a str },
}

impl Serialize for NodeResult {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            NodeResult::Delivered(AdminOutcome::Accepted { audit_seq, effect }) => {
                Shown::Accepted { audit_seq: *audit_seq, effect }
            }
            NodeResult::Delivered(AdminOutcome::Rejected { code, reason, audit_seq }) => {
                Shown::Rejected { code, reason, audit_seq: *audit_seq }
            }
            NodeResult::NotDelivered(error) => Shown::NotDelivered { error },
        }
        .serialize(serializer)
    }
}

/// One node's outcome.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NodeOutcome {
    /// The node.
    pub node: NodeId,
    /// What happened there.
    pub result: NodeResult,
}

/// The result of a confirmed action.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CommitReport {
    /// The command's verb (`cordon`, `freeze`, ...).
    pub verb: &'static str,
    /// The signed target.
    pub target: String,
    /// blake3 of the command payload (what audit entries record).
    pub payload_digest: [u8; 32],
    /// Operators who signed.
    pub signers: Vec<OperatorId>,
    /// When it was sent (ms since the Unix epoch).
    pub sent_at_ms: u64,
    /// Per node, in target order.
    pub outcomes: Vec<NodeOutcome>,
}

impl CommitReport {
    /// True when every target accepted.
    pub fn all_accepted(&self) -> bool {
        !self.outcomes.is_empty() && self.outcomes.iter().all(|o| o.result.is_accepted())
    }

    /// Targets that accepted.
    pub fn accepted(&self) -> usize {
        self.outcomes.iter().filter(|o| o.result.is_accepted()).count()
    }

    /// One line for the status bar: what was done and how it went, with the
    /// first rejection reason.
    pub fn summary(&self) -> String {
        let n = self.outcomes.len();
        let ok = self.accepted();
        let mut line = format!("{} {}: accepted by {ok}/{n}", self.verb, self.target);
        if let Some(o) = self.outcomes.iter().find(|o| !o.result.is_accepted()) {
            match &o.result {
                NodeResult::Delivered(AdminOutcome::Rejected { code, reason, .. }) => {
                    line.push_str(&format!("; {} rejected ({code}): {reason}", o.node.short()));
                }
                NodeResult::NotDelivered(error) => {
                    line.push_str(&format!("; {} not reached: {error}", o.node.short()));
                }
                NodeResult::Delivered(AdminOutcome::Accepted { .. }) => {}
            }
        }
        text::message(&line)
    }

    /// The result dialog's lines: a headline (`freeze cluster/freeze: accepted by
    /// 2/3`), then one line per node. Every string from the nodes is escaped
    /// and capped, so a hostile node cannot write to the operator's terminal.
    pub fn lines(&self) -> Vec<Cell> {
        let ok = if self.all_accepted() { Style::Ok } else { Style::Err };
        let headline = format!(
            "{} {}: accepted by {}/{}",
            self.verb,
            text::name(&self.target),
            self.accepted(),
            self.outcomes.len()
        );
        let mut lines = vec![Cell::new(headline).styled(ok)];
        lines.extend(self.outcomes.iter().map(|o| {
            let style = if o.result.is_accepted() { Style::Ok } else { Style::Err };
            Cell::new(format!("{}  {}", o.node.short(), o.result.describe())).styled(style)
        }));
        lines
    }

    /// [`CommitReport::summary`] as a styled cell.
    pub fn summary_cell(&self) -> Cell {
        Cell::new(self.summary()).styled(if self.all_accepted() { Style::Ok } else { Style::Err })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A report of `verb` on `target` with one outcome per result, on nodes 1, 2, ...
    fn report(verb: &'static str, target: String, results: Vec<NodeResult>) -> CommitReport {
        let outcomes = (1..)
            .zip(results)
            .map(|(node, result)| NodeOutcome { node: NodeId(node), result })
            .collect();
        CommitReport {
            verb,
            target,
            payload_digest: [0; 32],
            signers: vec![],
            sent_at_ms: 0,
            outcomes,
        }
    }

    #[test]
    fn report_summaries_name_the_first_rejection() {
        let report = report(
            "cordon",
            "node:0x01".into(),
            vec![
                NodeResult::Delivered(AdminOutcome::Accepted {
                    audit_seq: 0,
                    effect: "cordoned".into(),
                }),
                NodeResult::Delivered(AdminOutcome::Rejected {
                    code: "not_authorized".into(),
                    reason: "no registered operator signed".into(),
                    audit_seq: Some(3),
                }),
            ],
        );
        assert!(!report.all_accepted());
        let lines: Vec<String> = report.lines().into_iter().map(|c| c.text).collect();
        assert_eq!(lines[0], "cordon node:0x01: accepted by 1/2");
        assert!(lines[1].ends_with("  accepted  audit #0  cordoned"), "{lines:?}");
        assert!(lines[2].ends_with("  rejected  not_authorized: no registered operator signed"));
        let s = report.summary();
        assert!(s.contains("accepted by 1/2") && s.contains("not_authorized"), "{s}");
        assert_eq!(report.summary_cell().style, Style::Err);
    }

    #[test]
    fn report_lines_escape_what_nodes_said() {
        let hostile = "\u{1b}]0;pwned\u{7}\u{1b}[2J\u{9b}31m\u{202e}txt.exe\u{2066}\n\rok";
        let long = "x".repeat(10_000);
        let report = report(
            "freeze",
            format!("cluster/{hostile}"),
            vec![
                NodeResult::Delivered(AdminOutcome::Accepted {
                    audit_seq: 1,
                    effect: hostile.into(),
                }),
                NodeResult::Delivered(AdminOutcome::Rejected {
                    code: hostile.into(),
                    reason: format!("{hostile}{long}"),
                    audit_seq: None,
                }),
                NodeResult::NotDelivered(hostile.into()),
            ],
        );
        let mut shown: Vec<String> = report.lines().into_iter().map(|c| c.text).collect();
        shown.push(report.summary());
        for line in &shown {
            assert!(!line.chars().any(|c| c.is_control() || text::is_deceptive(c)), "{line:?}");
            assert!(
                line.contains("\\u{1b}]0;pwned\\u{7}\\u{1b}[2J\\u{9b}31m\\u{202e}"),
                "{line:?}"
            );
            assert!(line.chars().count() <= 2 * text::MAX_MESSAGE, "capped: {}", line.len());
        }
        assert!(shown[2].contains(text::ELLIPSIS), "the long reason is cut");
    }

    #[test]
    fn json_keeps_its_shape() {
        let json = |r: NodeResult| serde_json::to_value(r).unwrap();
        let accepted = AdminOutcome::Accepted { audit_seq: 4, effect: "cordoned".into() };
        assert_eq!(
            json(NodeResult::Delivered(accepted)),
            serde_json::json!({"result": "accepted", "audit_seq": 4, "effect": "cordoned"})
        );
        let refused = AdminOutcome::Rejected {
            code: "frozen".into(),
            reason: "frozen: the cluster is frozen".into(),
            audit_seq: None,
        };
        let result = NodeResult::Delivered(refused);
        assert_eq!((result.code(), result.audit_seq()), (Some("frozen"), None));
        assert_eq!(
            json(result),
            serde_json::json!({
                "result": "rejected",
                "code": "frozen",
                "reason": "frozen: the cluster is frozen",
                "audit_seq": null
            })
        );
        let lost = NodeResult::NotDelivered("no answer within 5s".into());
        assert_eq!((lost.code(), lost.audit_seq(), lost.is_accepted()), (None, None, false));
        assert_eq!(
            json(lost),
            serde_json::json!({"result": "not_delivered", "error": "no answer within 5s"})
        );
    }
}
