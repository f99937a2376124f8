//! The cluster-wide fold: every node's versioned summary, merged by version.
//!
//! Each node owns one [`NodeSummary`] (its daemons and resources) stamped with
//! `(incarnation, version)`: the incarnation changes when the node restarts, the
//! version grows with every change. Merging keeps, per node, the summary with the
//! greatest stamp, so the fold is order-independent and idempotent: any permutation
//! of any multiset of updates gives the same state.
//!
//! Dissemination (in `node/state.rs`): a node pushes its own summary to every peer
//! when it changes, and every few hundred milliseconds sends each peer a digest of
//! the stamps it holds; the peer answers with whatever is newer. A lost datagram is
//! healed by the next digest round.
//!
//! Every summary travels as a [`SignedSummary`]: the postcard bytes of the
//! [`NodeSummary`] signed by its owner's ed25519 identity key, the key its
//! `NodeId` is derived from. Anyone may relay it, nobody can change it: a receiver
//! verifies the signature (also on a relayed copy) before the summary can reach
//! the fold, because [`Fold::apply`] takes only a [`VerifiedSummary`], and the
//! only ways to get one are [`SignedSummary::verify`] and [`VerifiedSummary::sign`].
//!
//! Summaries come from the network, so [`FoldMessage::decode`] refuses (and the
//! node counts as malformed) any message that is too large, does not parse, or
//! holds a summary failing [`NodeSummary::validate`]; nothing of such a message
//! reaches the fold. The fold holds at most [`MAX_FOLD_NODES`] nodes. When a dead node's summary is forgotten ([`Fold::remove`]),
//! its stamp is remembered so that copies peers still hold are not merged back.

use std::collections::VecDeque;

use std::collections::BTreeMap;

use mesh_auth::{EntityKeypair, NodeId, OriginHash, PublicKey, Signature};
use serde::{Deserialize, Serialize};

use crate::admin::AdminState;
use crate::daemon::{DaemonHealth, Lifecycle};
use crate::migrate::MigrationSummary;

/// Most daemons a summary may list (a larger one is refused as malformed).
pub const MAX_DAEMONS_PER_NODE: usize = 4096;
/// Largest encoded fold message accepted.
pub const MAX_FOLD_MESSAGE: usize = 2 * 1024 * 1024;
/// Longest daemon health reason accepted from a peer, in bytes. Nodes send
/// reasons sanitized by [`crate::logs::sanitize`] (at most 256 characters, or a
/// panic message of up to [`crate::logs::MAX_LOG_LINE`] bytes plus a prefix and
/// the truncation marker); anything longer is refused as malformed.
pub const MAX_HEALTH_REASON: usize = crate::logs::MAX_LOG_LINE + 128;
/// Longest software version string accepted from a peer, in bytes.
pub const MAX_SOFTWARE_VERSION: usize = 64;
/// Forgotten nodes whose stamps are remembered (the oldest is dropped first).
pub const MAX_FORGOTTEN: usize = 4096;
/// Most nodes the fold holds; a summary of one more node is refused.
pub const MAX_FOLD_NODES: usize = 4096;
/// Largest encoded summary body accepted (a summary at [`MAX_DAEMONS_PER_NODE`]
/// daemons with long names stays well below it).
pub const MAX_SUMMARY_BYTES: usize = 1024 * 1024;
/// How far in the future (by the receiver's clock) an incarnation may be: the
/// incarnation is the owner's start time in ms since the Unix epoch, so one
/// further ahead than clock skew explains is a stamp nobody could outbid.
pub const MAX_INCARNATION_SKEW_MS: u64 = 60_000;
/// Domain separation for summary signatures.
const SUMMARY_DOMAIN: &[u8] = b"meshdeck node summary v1\0";

/// Host resources as the owning node measured them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    /// One-minute load average per CPU, in thousandths (1000 = fully busy).
    pub cpu_load_milli: Option<u32>,
    /// Number of CPUs.
    pub cpus: u32,
    /// Memory in use on the host (bytes).
    pub mem_used: Option<u64>,
    /// Memory on the host (bytes).
    pub mem_total: Option<u64>,
    /// Resident memory of the node's process (bytes).
    pub process_rss: Option<u64>,
    /// Bytes an unprivileged process may still write on the host's root
    /// filesystem (`statvfs("/")`), where measured.
    pub disk_free: Option<u64>,
    /// Size of the host's root filesystem (bytes), where measured.
    pub disk_total: Option<u64>,
}

/// One daemon as its node reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonSummary {
    /// Daemon id (origin hash of its key).
    pub id: OriginHash,
    /// Its name (may carry a lineage suffix).
    pub name: String,
    /// Where it is in its life.
    pub lifecycle: Lifecycle,
    /// What it says about itself.
    pub health: DaemonHealth,
    /// Saturation in thousandths (0..=1000), quantized so equal states compare equal.
    pub saturation_milli: u16,
    /// Times it crashed and was resumed.
    pub restarts: u32,
    /// Crashing repeatedly (3 or more times within a minute).
    pub crash_looping: bool,
    /// When it was registered (ms since the Unix epoch).
    pub started_at_ms: u64,
    /// Log lines it published that were dropped (queue full).
    pub log_dropped: u64,
    /// Whether it can be migrated to another node.
    pub migratable: bool,
}

impl DaemonSummary {
    /// A running daemon with nothing else to report: no saturation, restarts,
    /// dropped lines or start time, not migratable. For building summaries by
    /// hand (tests, tools); set the other fields after.
    pub fn running(id: OriginHash, name: impl Into<String>, health: DaemonHealth) -> Self {
        Self {
            id,
            name: name.into(),
            lifecycle: Lifecycle::Running,
            health,
            saturation_milli: 0,
            restarts: 0,
            crash_looping: false,
            started_at_ms: 0,
            log_dropped: 0,
            migratable: false,
        }
    }
}

/// Everything one node says about itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeSummary {
    /// The owner.
    pub node: NodeId,
    /// Changes when the owner restarts (its start time in ms).
    pub incarnation: u64,
    /// Grows with every change within an incarnation.
    pub version: u64,
    /// When the owner produced this version (ms since the Unix epoch).
    pub produced_at_ms: u64,
    /// Its software version.
    pub software: String,
    /// Host resources.
    pub resources: Resources,
    /// Its daemons, sorted by id.
    pub daemons: Vec<DaemonSummary>,
    /// Cordon, drain, maintenance, freeze, avoid list.
    pub admin: AdminState,
    /// Migrations it is the source of (in flight and recently ended).
    pub migrations: Vec<MigrationSummary>,
}

impl NodeSummary {
    /// Whether `newer` differs from `self` only in figures that move all the time
    /// (daemon saturation and dropped-line counters, host resources): such news
    /// waits for the next periodic snapshot rebuild instead of forcing one.
    pub fn quiet_change(&self, newer: &NodeSummary) -> bool {
        let same_daemons = self.daemons.len() == newer.daemons.len()
            && self.daemons.iter().zip(&newer.daemons).all(|(a, b)| {
                a.id == b.id
                    && a.name == b.name
                    && a.lifecycle == b.lifecycle
                    && a.health == b.health
                    && a.restarts == b.restarts
                    && a.crash_looping == b.crash_looping
                    && a.started_at_ms == b.started_at_ms
                    && a.migratable == b.migratable
            });
        same_daemons
            && self.node == newer.node
            && self.incarnation == newer.incarnation
            && self.software == newer.software
            && self.admin == newer.admin
            && self.migrations == newer.migrations
    }
}

impl NodeSummary {
    /// The ordering stamp: later incarnations win, then higher versions.
    pub fn stamp(&self) -> (u64, u64) {
        (self.incarnation, self.version)
    }

    /// Structural checks for summaries from the network.
    ///
    /// Peer text is refused rather than repaired, as daemon names are: a health
    /// reason longer than [`MAX_HEALTH_REASON`] bytes or holding a control
    /// character (honest nodes escape them with [`crate::logs::sanitize`]) makes
    /// the whole summary malformed.
    pub fn validate(&self) -> Result<(), &'static str> {
        if self.daemons.len() > MAX_DAEMONS_PER_NODE {
            return Err("too many daemons");
        }
        if self.software.len() > MAX_SOFTWARE_VERSION {
            return Err("software version too long");
        }
        if self.software.chars().any(char::is_control) {
            return Err("control characters in software version");
        }
        if self.daemons.iter().any(|d| crate::daemon::validate_name(&d.name).is_err()) {
            return Err("invalid daemon name");
        }
        for reason in self.daemons.iter().filter_map(|d| d.health.reason()) {
            if reason.len() > MAX_HEALTH_REASON {
                return Err("health reason too long");
            }
            if reason.chars().any(char::is_control) {
                return Err("control characters in health reason");
            }
        }
        if self.daemons.iter().any(|d| d.saturation_milli > 1000) {
            return Err("saturation out of range");
        }
        if self.migrations.len() > 1024 || self.admin.avoid.len() > 1024 {
            return Err("too many migrations or avoid entries");
        }
        for m in &self.migrations {
            if crate::daemon::validate_name(&m.name).is_err() {
                return Err("invalid daemon name in a migration");
            }
            if let crate::migrate::MigrationPhase::Failed { reason } = &m.phase {
                if reason.len() > MAX_HEALTH_REASON || reason.chars().any(char::is_control) {
                    return Err("invalid migration failure reason");
                }
            }
        }
        Ok(())
    }
}

/// Why a summary from the network was refused. Each is counted by the node.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SummaryRefusal {
    /// The body does not decode or fails [`NodeSummary::validate`].
    #[error("malformed summary: {0}")]
    Malformed(String),
    /// The summary's node is not the id of the key that signed it.
    #[error("summary for {claimed} signed by the key of {signer}")]
    WrongOwner {
        /// The node the summary claims to describe.
        claimed: NodeId,
        /// The node whose key signed it.
        signer: NodeId,
    },
    /// The signature does not verify.
    #[error("summary signature does not verify")]
    BadSignature,
    /// The incarnation lies further in the future than clock skew explains.
    #[error("incarnation {incarnation} is more than the skew bound ahead of {now_ms}")]
    ImplausibleStamp {
        /// The claimed incarnation (ms since the Unix epoch).
        incarnation: u64,
        /// The receiver's clock.
        now_ms: u64,
    },
}

/// A [`NodeSummary`] as it travels: its postcard bytes, signed by its owner.
///
/// The signature covers a domain tag and the exact body bytes, so relays pass
/// the owner's bytes on untouched and every receiver checks the same bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedSummary {
    /// The owner's identity key (its `NodeId` must be the summary's node).
    pub owner: PublicKey,
    /// Postcard bytes of the [`NodeSummary`].
    #[serde(with = "crate::wire::bytes_field")]
    pub body: Vec<u8>,
    /// The owner's signature over the domain tag and `body`.
    pub signature: Signature,
}

fn summary_signing_bytes(body: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(SUMMARY_DOMAIN.len() + body.len());
    msg.extend_from_slice(SUMMARY_DOMAIN);
    msg.extend_from_slice(body);
    msg
}

impl SignedSummary {
    /// Decodes and checks the body's structure (no signature check yet: see
    /// [`SignedSummary::verify`]). Cheap enough to run on every copy received,
    /// so a node can skip verifying copies older than what it holds.
    pub fn open(&self) -> Result<NodeSummary, SummaryRefusal> {
        if self.body.len() > MAX_SUMMARY_BYTES {
            return Err(SummaryRefusal::Malformed(format!(
                "{} bytes is above the limit",
                self.body.len()
            )));
        }
        let summary: NodeSummary = postcard::from_bytes(&self.body)
            .map_err(|e| SummaryRefusal::Malformed(e.to_string()))?;
        summary.validate().map_err(|e| SummaryRefusal::Malformed(e.to_owned()))?;
        let signer = self.owner.node_id();
        if signer != summary.node {
            return Err(SummaryRefusal::WrongOwner { claimed: summary.node, signer });
        }
        Ok(summary)
    }

    /// Full check: [`SignedSummary::open`], the stamp's plausibility against the
    /// receiver's clock `now_ms`, and the owner's signature (strict ed25519).
    pub fn verify(self, now_ms: u64) -> Result<VerifiedSummary, SummaryRefusal> {
        let summary = self.open()?;
        self.verify_opened(summary, now_ms)
    }

    /// [`SignedSummary::verify`] for a body already opened with
    /// [`SignedSummary::open`] (it must be this summary's own body).
    pub fn verify_opened(
        self,
        summary: NodeSummary,
        now_ms: u64,
    ) -> Result<VerifiedSummary, SummaryRefusal> {
        if summary.incarnation > now_ms.saturating_add(MAX_INCARNATION_SKEW_MS) {
            return Err(SummaryRefusal::ImplausibleStamp {
                incarnation: summary.incarnation,
                now_ms,
            });
        }
        if !self.owner.verify(&summary_signing_bytes(&self.body), &self.signature) {
            return Err(SummaryRefusal::BadSignature);
        }
        Ok(VerifiedSummary { summary, signed: self })
    }
}

/// A summary whose owner's signature has been checked (or that this node
/// signed itself). The only thing [`Fold::apply`] accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedSummary {
    summary: NodeSummary,
    signed: SignedSummary,
}

impl VerifiedSummary {
    /// Signs `summary` with its owner's key.
    ///
    /// Fails if `identity` is not the key of `summary.node`: a node can only
    /// speak for itself.
    pub fn sign(summary: NodeSummary, identity: &EntityKeypair) -> Result<Self, SummaryRefusal> {
        let signer = identity.node_id();
        if signer != summary.node {
            return Err(SummaryRefusal::WrongOwner { claimed: summary.node, signer });
        }
        let body =
            postcard::to_stdvec(&summary).map_err(|e| SummaryRefusal::Malformed(e.to_string()))?;
        let signature = identity.sign(&summary_signing_bytes(&body));
        Ok(Self { summary, signed: SignedSummary { owner: identity.public(), body, signature } })
    }

    /// Wraps an opened summary *without* checking its signature: only for
    /// benchmarks that measure what the check costs (feature `testing`).
    #[cfg(feature = "testing")]
    #[doc(hidden)]
    pub fn unchecked_for_benchmarks(signed: SignedSummary, summary: NodeSummary) -> Self {
        Self { summary, signed }
    }

    /// The summary.
    pub fn summary(&self) -> &NodeSummary {
        &self.summary
    }

    /// The wire form, to send or relay.
    pub fn signed(&self) -> &SignedSummary {
        &self.signed
    }

    /// The ordering stamp.
    pub fn stamp(&self) -> (u64, u64) {
        self.summary.stamp()
    }
}

/// What fold peers say to each other (postcard on the wire).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FoldMessage {
    /// Signed summaries (the owner's own on change, or answers to a digest).
    Summaries(Vec<SignedSummary>),
    /// The stamps the sender holds, asking for anything newer.
    Digest(Vec<(NodeId, u64, u64)>),
    /// A hash of the sender's digest ([`Fold::root`]): a receiver whose own
    /// differs answers with its bucket hashes. Steady-state anti-entropy
    /// costs 32 bytes however big the cluster.
    Root([u8; 32]),
    /// The answer to a differing root: one short hash per bucket of node ids
    /// ([`Fold::bucket_hashes`], [`FOLD_BUCKETS`] of them). The receiver
    /// sends its stamps of the buckets that differ, so a cluster with a
    /// summary or two in flight exchanges a few dozen stamps, not all n.
    Buckets(Vec<[u8; 8]>),
    /// The stamps the sender holds in `buckets`, asking for anything newer
    /// there (summaries outside those buckets are not in question).
    Partial {
        /// Bucket numbers, each below [`FOLD_BUCKETS`].
        buckets: Vec<u8>,
        /// The sender's stamps of those buckets.
        stamps: Vec<(NodeId, u64, u64)>,
    },
}

/// How many buckets node ids are hashed in for anti-entropy
/// ([`FoldMessage::Buckets`]); a node's bucket is the top six bits of its
/// id (ids are hashes, so buckets fill evenly).
pub const FOLD_BUCKETS: usize = 64;

/// The anti-entropy bucket of `node` (see [`FOLD_BUCKETS`]).
pub fn bucket_of(node: NodeId) -> u8 {
    (node.0 >> 58) as u8
}

impl FoldMessage {
    /// Decodes a message from a peer and checks every summary's structure and
    /// owner ([`SignedSummary::open`]); signatures are checked by the receiver
    /// for the summaries it would apply. Never panics.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        Self::decode_opened(bytes).map(|(message, _)| message)
    }

    /// [`FoldMessage::decode`], also returning the opened summaries (in order)
    /// of a `Summaries` message, so they are not decoded twice.
    pub fn decode_opened(bytes: &[u8]) -> Result<(Self, Vec<NodeSummary>), String> {
        if bytes.len() > MAX_FOLD_MESSAGE {
            return Err(format!("{} bytes is above the limit", bytes.len()));
        }
        let message: FoldMessage = postcard::from_bytes(bytes).map_err(|e| e.to_string())?;
        let mut opened = Vec::new();
        if let FoldMessage::Summaries(list) = &message {
            if list.len() > MAX_FOLD_NODES {
                return Err(format!("{} summaries in one message", list.len()));
            }
            for signed in list {
                opened.push(signed.open().map_err(|e| e.to_string())?);
            }
        }
        if let FoldMessage::Digest(list) | FoldMessage::Partial { stamps: list, .. } = &message
            && list.len() > MAX_FOLD_NODES
        {
            return Err(format!("{} digest entries", list.len()));
        }
        if let FoldMessage::Buckets(hashes) = &message
            && hashes.len() != FOLD_BUCKETS
        {
            return Err(format!("{} bucket hashes, not {FOLD_BUCKETS}", hashes.len()));
        }
        if let FoldMessage::Partial { buckets, .. } = &message
            && (buckets.len() > FOLD_BUCKETS || buckets.iter().any(|b| *b as usize >= FOLD_BUCKETS))
        {
            return Err("bucket numbers out of range".into());
        }
        Ok((message, opened))
    }

    /// The wire form.
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_stdvec(self).unwrap_or_default()
    }
}

/// The merged view: the newest summary of every node heard of.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fold {
    summaries: BTreeMap<NodeId, VerifiedSummary>,
    /// Stamps of forgotten summaries: no summary at or below them is applied.
    forgotten: BTreeMap<NodeId, (u64, u64)>,
    /// `forgotten`'s keys, oldest first (bounds it at [`MAX_FORGOTTEN`]).
    forgotten_order: VecDeque<NodeId>,
}

impl Fold {
    /// An empty fold.
    pub fn new() -> Self {
        Self::default()
    }

    /// Merges one summary; returns true if it changed the fold.
    ///
    /// A summary no newer than what was forgotten of its node ([`Fold::remove`])
    /// is ignored; a newer one (the node came back) is applied. A summary of a
    /// node the fold does not hold yet is refused when it already holds
    /// [`MAX_FOLD_NODES`] nodes.
    pub fn apply(&mut self, summary: VerifiedSummary) -> bool {
        let node = summary.summary.node;
        if !self.would_apply(node, summary.stamp()) {
            return false;
        }
        if self.forgotten.remove(&node).is_some() {
            self.forgotten_order.retain(|n| *n != node);
        }
        self.summaries.insert(node, summary);
        true
    }

    /// Whether a summary of `node` stamped `stamp` would change the fold: newer
    /// than what it holds and than what it forgot, and within the node cap. A
    /// receiver checks this before paying for a signature check.
    pub fn would_apply(&self, node: NodeId, stamp: (u64, u64)) -> bool {
        if self.forgotten.get(&node).is_some_and(|gone| stamp <= *gone) {
            return false;
        }
        match self.summaries.get(&node) {
            Some(current) => current.stamp() < stamp,
            None => self.summaries.len() < MAX_FOLD_NODES,
        }
    }

    /// Whether the fold is full: a summary of a node it does not hold is refused.
    pub fn is_full(&self) -> bool {
        self.summaries.len() >= MAX_FOLD_NODES
    }

    /// The summary of `node`.
    pub fn get(&self, node: NodeId) -> Option<&NodeSummary> {
        self.summaries.get(&node).map(|v| &v.summary)
    }

    /// Every summary, by node id.
    pub fn iter(&self) -> impl Iterator<Item = &NodeSummary> {
        self.summaries.values().map(|v| &v.summary)
    }

    /// Number of nodes with a summary.
    pub fn len(&self) -> usize {
        self.summaries.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.summaries.is_empty()
    }

    /// The stamps held, for a digest.
    pub fn digest(&self) -> Vec<(NodeId, u64, u64)> {
        self.iter().map(|s| (s.node, s.incarnation, s.version)).collect()
    }

    /// A hash of [`Fold::digest`] (in node order): equal on two nodes that
    /// hold the same versions.
    pub fn root(&self) -> [u8; 32] {
        let mut hasher = blake3::Hasher::new();
        for s in self.iter() {
            hasher.update(&s.node.0.to_le_bytes());
            hasher.update(&s.incarnation.to_le_bytes());
            hasher.update(&s.version.to_le_bytes());
        }
        *hasher.finalize().as_bytes()
    }

    /// One 8-byte hash per bucket ([`FOLD_BUCKETS`]) of the stamps held
    /// there, in node order; all zeros for an empty bucket.
    pub fn bucket_hashes(&self) -> Vec<[u8; 8]> {
        let mut out = vec![[0u8; 8]; FOLD_BUCKETS];
        let mut current: Option<(u8, blake3::Hasher)> = None;
        // Summaries are in node order, and a bucket is a range of ids.
        for s in self.iter() {
            let bucket = bucket_of(s.node);
            if current.as_ref().is_none_or(|(b, _)| *b != bucket) {
                if let Some((b, h)) = current.take() {
                    out[b as usize].copy_from_slice(&h.finalize().as_bytes()[..8]);
                }
                current = Some((bucket, blake3::Hasher::new()));
            }
            if let Some((_, h)) = &mut current {
                h.update(&s.node.0.to_le_bytes());
                h.update(&s.incarnation.to_le_bytes());
                h.update(&s.version.to_le_bytes());
            }
        }
        if let Some((b, h)) = current {
            out[b as usize].copy_from_slice(&h.finalize().as_bytes()[..8]);
        }
        out
    }

    /// The buckets whose hashes differ between `theirs` and this fold's.
    pub fn differing_buckets(&self, theirs: &[[u8; 8]]) -> Vec<u8> {
        let mine = self.bucket_hashes();
        (0..FOLD_BUCKETS).filter(|b| theirs.get(*b) != Some(&mine[*b])).map(|b| b as u8).collect()
    }

    /// [`Fold::digest`] of the summaries in `buckets` only.
    pub fn partial_digest(&self, buckets: &[u8]) -> Vec<(NodeId, u64, u64)> {
        self.iter()
            .filter(|s| buckets.contains(&bucket_of(s.node)))
            .map(|s| (s.node, s.incarnation, s.version))
            .collect()
    }

    /// [`Fold::newer_than`] within `buckets`: summaries there that `digest`
    /// lacks or holds older.
    pub fn newer_in(&self, buckets: &[u8], digest: &[(NodeId, u64, u64)]) -> Vec<SignedSummary> {
        let theirs: BTreeMap<NodeId, (u64, u64)> =
            digest.iter().map(|(n, i, v)| (*n, (*i, *v))).collect();
        self.summaries
            .values()
            .filter(|s| buckets.contains(&bucket_of(s.summary.node)))
            .filter(|s| theirs.get(&s.summary.node).is_none_or(|stamp| s.stamp() > *stamp))
            .map(|s| s.signed.clone())
            .collect()
    }

    /// Summaries newer than what `digest` lists (or missing from it), signed
    /// as their owners signed them.
    pub fn newer_than(&self, digest: &[(NodeId, u64, u64)]) -> Vec<SignedSummary> {
        let theirs: BTreeMap<NodeId, (u64, u64)> =
            digest.iter().map(|(n, i, v)| (*n, (*i, *v))).collect();
        self.summaries
            .values()
            .filter(|s| theirs.get(&s.summary.node).is_none_or(|stamp| s.stamp() > *stamp))
            .map(|s| s.signed.clone())
            .collect()
    }

    /// Forgets a node's summary (after it has been gone long enough).
    ///
    /// Its stamp is remembered (for the last [`MAX_FORGOTTEN`] nodes forgotten),
    /// so the same summary offered back by a peer that has not forgotten it yet
    /// does not bring the dead node's daemons back; a newer summary does.
    pub fn remove(&mut self, node: NodeId) -> Option<NodeSummary> {
        let removed = self.summaries.remove(&node)?.summary;
        if self.forgotten.insert(node, removed.stamp()).is_none() {
            self.forgotten_order.push_back(node);
        }
        while self.forgotten_order.len() > MAX_FORGOTTEN {
            if let Some(oldest) = self.forgotten_order.pop_front() {
                self.forgotten.remove(&oldest);
            }
        }
        Some(removed)
    }

    /// The stamp a forgotten node had when it was removed, if it is remembered.
    pub fn forgotten(&self, node: NodeId) -> Option<(u64, u64)> {
        self.forgotten.get(&node).copied()
    }
}

#[cfg(test)]
mod tests;
