//! The state task: daemons, logs, the fold and the snapshot.
//!
//! One task per node runs a 50 ms tick: it polls daemons (guarded), delivers
//! controls and backpressure, keeps this node's summary and pushes it to peers when
//! it changes, answers and sends fold digests, and rebuilds the snapshot when
//! something changed (at most once per tick). A second small task drains the log
//! queue into the ring in batches.

use std::collections::HashMap;

use super::*;
use crate::daemon::{DaemonControl, DaemonSlot, PendingLine};
use crate::fold::{
    DaemonSummary, Fold, FoldMessage, NodeSummary, Resources, SignedSummary, SummaryRefusal,
    VerifiedSummary,
};
use crate::logs::{FailureRecord, LogEntry, Ring, sanitize};
use crate::snapshot::{MeshSnapshot, RingStats, SnapshotInput, ThisNode};

/// The state task's tick.
pub(super) const STATE_TICK: Duration = Duration::from_millis(50);
/// Saturation and resource figures alone (they move all the time) are pushed to
/// peers at most this often; anything else is pushed at once.
const QUIET_PUSH_INTERVAL: Duration = Duration::from_millis(500);
/// Members sent a fold digest each gossip interval (chosen at random, those
/// with an open session first).
const DIGEST_FANOUT: usize = 1;
/// Members a new summary is pushed to, by its owner and by every node it is
/// news to.
const FOLD_FANOUT: usize = 3;
/// How often host resources are sampled.
const RESOURCE_INTERVAL: Duration = Duration::from_secs(1);
/// Log lines and failures carried in each snapshot.
const SNAPSHOT_TAIL: usize = 256;
/// Message kind of fold traffic.
pub(super) const FOLD_KIND: MessageKind = MessageKind::named("mesh/fold/v1");

/// Fold bookkeeping owned by the node.
pub(crate) struct FoldState {
    pub(crate) fold: Fold,
    own_version: u64,
    own_daemons: Vec<DaemonSummary>,
    resources: Resources,
    next_resources: Option<Instant>,
    /// When each node's summary last changed here (for forgetting dead nodes).
    applied_at: HashMap<NodeId, Instant>,
    /// When each node in the fold was first seen without a live session.
    down_since: HashMap<NodeId, Instant>,
    snapshot_seq: u64,
    next_digest: Option<Instant>,
    digest_round: usize,
    next_saturation_push: Option<Instant>,
    next_forced_rebuild: Option<Instant>,
    last_rebuild: Option<Instant>,
    /// Freeze proofs from peers' summaries this node checked and refused (or
    /// that were not newer), so they are not checked again every tick.
    refused_proofs: std::collections::HashSet<blake3::Hash>,
}

impl FoldState {
    pub(crate) fn new() -> Self {
        Self {
            fold: Fold::new(),
            own_version: 0,
            own_daemons: Vec::new(),
            resources: Resources::default(),
            next_resources: None,
            applied_at: HashMap::new(),
            down_since: HashMap::new(),
            snapshot_seq: 0,
            next_digest: None,
            digest_round: 0,
            next_saturation_push: None,
            next_forced_rebuild: None,
            last_rebuild: None,
            refused_proofs: std::collections::HashSet::new(),
        }
    }
}

/// Host figures rounded so that noise is no news: load to 5 % of a CPU,
/// memory and disk to 1 % of their totals, RSS to 1 MiB.
fn rounded(mut r: Resources) -> Resources {
    let to = |v: u64, step: u64| match (v + step / 2).checked_div(step) {
        Some(q) => q * step,
        None => v,
    };
    r.cpu_load_milli = r.cpu_load_milli.map(|v| to(u64::from(v), 50) as u32);
    if let Some(total) = r.mem_total {
        r.mem_used = r.mem_used.map(|v| to(v, total / 100));
    }
    if let Some(total) = r.disk_total {
        r.disk_free = r.disk_free.map(|v| to(v, total / 100));
    }
    r.process_rss = r.process_rss.map(|v| to(v, 1 << 20));
    r
}

/// Rings behind the snapshot.
pub(crate) struct Rings {
    pub(crate) logs: Ring<LogEntry>,
    pub(crate) failures: Ring<FailureRecord>,
    pub(crate) logs_changed: bool,
    pub(crate) recent_logs: Arc<Vec<LogEntry>>,
    pub(crate) recent_failures: Arc<Vec<FailureRecord>>,
}

impl Rings {
    pub(crate) fn new(log_capacity: usize, failure_capacity: usize) -> Self {
        Self {
            logs: Ring::new(log_capacity),
            failures: Ring::new(failure_capacity),
            logs_changed: false,
            recent_logs: Arc::new(Vec::new()),
            recent_failures: Arc::new(Vec::new()),
        }
    }
}

impl Inner {
    /// Records a failure in the ring (sanitized) and marks the snapshot dirty.
    pub(crate) fn record_failure(&self, kind: &str, subject: &str, message: &str) {
        let node = self.node_id;
        let mut rings = self.rings.lock();
        rings.failures.push_with(|seq| FailureRecord {
            seq,
            ts_ms: mesh_auth::unix_now_ms(),
            node,
            kind: kind.to_owned(),
            subject: sanitize(subject),
            message: sanitize(message),
        });
        rings.recent_failures = Arc::new(rings.failures.tail(SNAPSHOT_TAIL));
        drop(rings);
        self.dirty.store(true, Ordering::Release);
    }

    /// Moves queued log lines into the ring.
    pub(crate) fn store_lines(&self, lines: &mut Vec<PendingLine>) {
        let node = self.node_id;
        let mut rings = self.rings.lock();
        for line in lines.drain(..) {
            rings.logs.push_with(|seq| LogEntry {
                seq,
                ts_ms: line.ts_ms,
                node,
                daemon: line.daemon,
                level: line.level,
                message: sanitize(&line.message),
            });
        }
        rings.logs_changed = true;
    }

    /// How often figures that move all the time (saturation, resources) are
    /// pushed: every summary reaches every member, so the interval grows with
    /// the cluster (about one such push a second cluster-wide) and per-node
    /// traffic does not.
    fn quiet_push_interval(&self) -> Duration {
        let members = self.swim.lock().live_count() as u32 + 1;
        QUIET_PUSH_INTERVAL.max(Duration::from_secs(1) * members)
    }

    fn own_summary(&self, fs: &FoldState) -> NodeSummary {
        NodeSummary {
            node: self.node_id,
            incarnation: self.incarnation,
            version: fs.own_version,
            produced_at_ms: mesh_auth::unix_now_ms(),
            software: env!("CARGO_PKG_VERSION").to_owned(),
            resources: fs.resources.clone(),
            daemons: fs.own_daemons.clone(),
            admin: self.admin.lock().clone(),
            migrations: self.migrations.lock().summaries(),
        }
    }

    /// Polls daemons and refreshes this node's summary. Returns the summary
    /// (signed) to push when it changed in a way peers should hear about now.
    fn refresh_own(&self, now: Instant, force: bool) -> Option<SignedSummary> {
        // Before the fold lock: the lock order is swim, then fold.
        let quiet_interval = self.quiet_push_interval();
        let slots: Vec<Arc<DaemonSlot>> = self.daemons.read().values().cloned().collect();
        for slot in &slots {
            if let Some(reason) = slot.poll(now) {
                tracing::warn!(daemon = %slot.name, %reason, "daemon crashed");
                self.record_failure("daemon_panic", &slot.name, &reason);
            }
        }
        let daemons: Vec<DaemonSummary> = slots
            .iter()
            .map(|slot| {
                let st = slot.state.lock();
                DaemonSummary {
                    id: slot.id,
                    name: slot.name.clone(),
                    lifecycle: st.lifecycle,
                    health: st.health.clone(),
                    saturation_milli: st.saturation_milli,
                    restarts: st.restarts,
                    crash_looping: st.crash_looping(),
                    started_at_ms: slot.started_at_ms,
                    log_dropped: slot.log_dropped.load(Ordering::Relaxed),
                    migratable: slot.kind.is_some(),
                }
            })
            .collect();
        let mut fs = self.fold.lock();
        let mut resources_changed = false;
        if fs.next_resources.is_none_or(|t| now >= t) {
            fs.next_resources = Some(now + RESOURCE_INTERVAL);
            let sampled = rounded(crate::resources::sample());
            resources_changed = sampled != fs.resources;
            fs.resources = sampled;
        }
        // Saturation and resources alone move constantly; they are pushed at most
        // once per quiet_push_interval(). Everything else is pushed at once.
        let strip = |d: &[DaemonSummary]| -> Vec<DaemonSummary> {
            d.iter()
                .cloned()
                .map(|mut d| {
                    d.saturation_milli = 0;
                    d.log_dropped = 0;
                    d
                })
                .collect()
        };
        let significant = strip(&daemons) != strip(&fs.own_daemons);
        let any_change = daemons != fs.own_daemons || resources_changed;
        let saturation_due = fs.next_saturation_push.is_none_or(|t| now >= t);
        if !(force || significant || (any_change && saturation_due)) {
            return None;
        }
        fs.next_saturation_push = Some(now + quiet_interval);
        fs.own_daemons = daemons;
        fs.own_version += 1;
        let summary = self.own_summary(&fs);
        drop(fs);
        // Signed outside the fold lock (an ed25519 signature is tens of µs).
        let signed = match VerifiedSummary::sign(summary, &self.identity) {
            Ok(signed) => signed,
            Err(e) => {
                tracing::error!(error = %e, "could not sign this node's summary");
                return None;
            }
        };
        let wire = signed.signed().clone();
        let mut fs = self.fold.lock();
        fs.fold.apply(signed);
        fs.applied_at.insert(self.node_id, now);
        drop(fs);
        if force || significant || resources_changed {
            self.dirty.store(true, Ordering::Release);
        }
        Some(wire)
    }

    /// Follows a newer freeze or thaw carried in peers' summaries, if its
    /// operator signatures check out here (see [`Inner::adopt_freeze`]).
    fn follow_cluster_freeze(&self) {
        if self.config.admin_verifier.is_none() {
            return;
        }
        let own_set_at = self.admin.lock().freeze_set_at_ms;
        let candidates: Vec<crate::admin::FreezeProof> = {
            let mut fs = self.fold.lock();
            let FoldState { fold, refused_proofs, .. } = &mut *fs;
            let mut newest: Vec<_> = fold
                .iter()
                .filter(|s| s.node != self.node_id && s.admin.freeze_set_at_ms > own_set_at)
                .filter_map(|s| s.admin.freeze_proof.clone())
                .filter(|p| !refused_proofs.contains(&blake3::hash(&p.envelope)))
                .collect();
            newest.dedup();
            newest
        };
        for proof in candidates {
            if !self.adopt_freeze(&proof) {
                let mut fs = self.fold.lock();
                if fs.refused_proofs.len() >= 256 {
                    fs.refused_proofs.clear();
                }
                fs.refused_proofs.insert(blake3::hash(&proof.envelope));
            }
        }
    }

    async fn state_tick(self: &Arc<Self>, force_push: bool) {
        let now = Instant::now();
        let handle = MeshHandle { inner: self.clone() };
        self.deliver_backpressure();
        self.gc_migrations(now);
        self.follow_cluster_freeze();
        if let Some(summary) = self.refresh_own(now, force_push) {
            // To a few members; each passes news on (see on_fold), so it
            // spreads like an epidemic instead of one send per member.
            let bytes = FoldMessage::Summaries(vec![summary]).encode();
            for peer in self.some_live_peers(FOLD_FANOUT, self.node_id) {
                handle.send_soon(peer, FOLD_KIND, bytes.clone());
            }
        }
        let digest_round = {
            let mut fs = self.fold.lock();
            let due = fs.next_digest.is_none_or(|t| now >= t);
            if due {
                fs.next_digest = Some(now + self.config.timing.gossip_interval.max(STATE_TICK));
                fs.digest_round = fs.digest_round.wrapping_add(1);
            }
            due.then_some(fs.digest_round)
        };
        if let Some(round) = digest_round {
            self.forget_dead_summaries(now);
            let bytes = FoldMessage::Root(self.fold.lock().fold.root()).encode();
            // Anti-entropy only (news is pushed as it happens): a few peers per
            // round, in turn, so every peer is compared within a few rounds
            // without a digest to every peer every second.
            let _ = round;
            for peer in self.some_live_peers(DIGEST_FANOUT, self.node_id) {
                handle.send_soon(peer, FOLD_KIND, bytes.clone());
            }
        }
        self.maybe_rebuild(now);
    }

    /// Summaries of nodes that are gone (no live session) are removed once the
    /// node has been down and silent for `forget_after`, so their daemons leave
    /// the snapshot. The clock starts at the later of the node's last summary and
    /// the moment it was first seen down: a node whose summary had been quiet for
    /// a long time still shows its daemons (as unreachable) for `forget_after`.
    fn forget_dead_summaries(&self, now: Instant) {
        let live: std::collections::HashSet<NodeId> = self.live_peers().into_iter().collect();
        let forget_after = self.config.timing.forget_after;
        let mut fs = self.fold.lock();
        let FoldState { fold, applied_at, down_since, .. } = &mut *fs;
        down_since.retain(|n, _| !live.contains(n));
        let stale: Vec<NodeId> = fold
            .iter()
            .map(|s| s.node)
            .filter(|n| *n != self.node_id && !live.contains(n))
            .filter(|n| {
                let down = *down_since.entry(*n).or_insert(now);
                let quiet_since = applied_at.get(n).map_or(down, |t| (*t).max(down));
                now.saturating_duration_since(quiet_since) > forget_after
            })
            .collect();
        for node in stale {
            fold.remove(node);
            applied_at.remove(&node);
            down_since.remove(&node);
            self.dirty.store(true, Ordering::Release);
        }
    }

    fn deliver_backpressure(&self) {
        let max = self.log_tx.max_capacity().max(1);
        let fill = 1.0 - self.log_tx.capacity() as f32 / max as f32;
        for slot in self.daemons.read().values() {
            let pressured = slot.pressured.swap(false, Ordering::Relaxed);
            let mut st = slot.state.lock();
            if pressured && !st.backpressure_on {
                st.backpressure_on = true;
                st.controls.push_back(DaemonControl::BackpressureOn { level: fill.max(0.75) });
            } else if !pressured && st.backpressure_on && fill < 0.25 {
                st.backpressure_on = false;
                st.controls.push_back(DaemonControl::BackpressureOff);
            }
        }
    }

    /// Whether anyone holds a receiver of the snapshot channel: only then is
    /// the snapshot rebuilt as things change. Otherwise it is rebuilt when
    /// read ([`Inner::fresh_snapshot`]): a node nobody watches does not pay
    /// an O(n) rebuild for every summary that arrives.
    fn watched(&self) -> bool {
        self.snapshot.receiver_count() > 0
    }

    /// The snapshot, rebuilt first when nobody keeps it current and it is
    /// stale (something changed, or it is older than a second).
    pub(crate) fn fresh_snapshot(&self) -> Arc<MeshSnapshot> {
        if !self.watched() {
            let old =
                self.fold.lock().last_rebuild.is_none_or(|t| t.elapsed() >= Duration::from_secs(1));
            let logs_moved = std::mem::take(&mut self.rings.lock().logs_changed);
            if self.dirty.swap(false, Ordering::AcqRel) || logs_moved || old {
                self.rebuild_snapshot();
            }
        }
        self.snapshot.borrow().clone()
    }

    fn maybe_rebuild(&self, now: Instant) {
        if !self.watched() {
            return;
        }
        let peers_moved = {
            let mut fs = self.fold.lock();
            let forced = fs.next_forced_rebuild.is_none_or(|t| now >= t);
            if forced {
                // Ages and last-heard times move even when nothing else does.
                fs.next_forced_rebuild = Some(now + Duration::from_secs(1));
            }
            forced
        };
        let logs_moved = std::mem::take(&mut self.rings.lock().logs_changed);
        let dirty = self.dirty.swap(false, Ordering::AcqRel);
        if !(dirty || logs_moved || peers_moved) {
            return;
        }
        self.rebuild_snapshot();
    }

    /// Rebuilds and publishes the snapshot now.
    pub(crate) fn rebuild_snapshot(&self) {
        let peers = self.peers();
        let (recent_logs, logs, recent_failures, failures) = {
            let mut rings = self.rings.lock();
            if rings.recent_logs.last().map(|l| l.seq + 1).unwrap_or(0) != rings.logs.next_seq() {
                rings.recent_logs = Arc::new(rings.logs.tail(SNAPSHOT_TAIL));
            }
            let dropped: u64 = self.logs_dropped.load(Ordering::Relaxed)
                + self
                    .daemons
                    .read()
                    .values()
                    .map(|s| s.log_dropped.load(Ordering::Relaxed))
                    .sum::<u64>();
            (
                rings.recent_logs.clone(),
                RingStats {
                    first_seq: rings.logs.first_seq(),
                    next_seq: rings.logs.next_seq(),
                    dropped,
                },
                rings.recent_failures.clone(),
                RingStats {
                    first_seq: rings.failures.first_seq(),
                    next_seq: rings.failures.next_seq(),
                    dropped: 0,
                },
            )
        };
        // Before the fold lock (lock order: swim, then fold).
        let mut counters = self.counters.snapshot();
        counters.membership = self.swim.lock().stats();
        let mut fs = self.fold.lock();
        fs.last_rebuild = Some(Instant::now());
        let seq = fs.snapshot_seq + 1;
        let this_node = ThisNode {
            node_id: self.node_id,
            addr: self.local_addr,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            flags: self.config.flags,
            resources: fs.resources.clone(),
            admin: self.admin.lock().clone(),
        };
        let (audit_tail, audit_len) = {
            let ledger = self.ledger.lock();
            let len = ledger.len() as u64;
            (Arc::new(ledger.since(len.saturating_sub(64), 64).to_vec()), len)
        };
        let snapshot = crate::snapshot::build(SnapshotInput {
            seq,
            epoch_ms: self.incarnation,
            now_ms: mesh_auth::unix_now_ms(),
            this_node,
            peers,
            fold: &fs.fold,
            recent_logs,
            logs,
            recent_failures,
            failures,
            counters,
            audit_tail,
            audit_len,
        });
        drop(fs);
        self.fold.lock().snapshot_seq = seq;
        self.snapshot.send_replace(Arc::new(snapshot));
    }

    async fn on_fold_message(self: &Arc<Self>, message: Incoming) {
        let (decoded, opened) = match FoldMessage::decode_opened(&message.payload) {
            Ok(m) => m,
            Err(reason) => {
                Counters::bump(&self.counters.malformed);
                tracing::debug!(from = %message.from, %reason, "fold message dropped");
                return;
            }
        };
        match decoded {
            FoldMessage::Summaries(list) => {
                let now = Instant::now();
                let now_ms = mesh_auth::unix_now_ms();
                // Only copies that would change the fold are worth a signature
                // check: duplicates and older copies are dropped unverified.
                let candidates: Vec<(SignedSummary, NodeSummary)> = {
                    let fs = self.fold.lock();
                    list.into_iter()
                        .zip(opened)
                        .filter(|(_, s)| {
                            // Nobody speaks for this node but this node.
                            s.node != self.node_id
                        })
                        .filter(|(_, s)| {
                            if fs.fold.would_apply(s.node, s.stamp()) {
                                return true;
                            }
                            if fs.fold.get(s.node).is_none() && fs.fold.is_full() {
                                Counters::bump(&self.counters.fold_full);
                            }
                            false
                        })
                        .collect()
                };
                let mut verified = Vec::with_capacity(candidates.len());
                for (signed, summary) in candidates {
                    if !self.is_member(summary.node) {
                        Counters::bump(&self.counters.fold_not_member);
                        continue;
                    }
                    match signed.verify_opened(summary, now_ms) {
                        Ok(v) => verified.push(v),
                        Err(refusal) => {
                            let counter = match &refusal {
                                SummaryRefusal::BadSignature => &self.counters.fold_bad_signature,
                                SummaryRefusal::WrongOwner { .. } => {
                                    &self.counters.fold_wrong_owner
                                }
                                SummaryRefusal::ImplausibleStamp { .. } => {
                                    &self.counters.fold_implausible_stamp
                                }
                                _ => &self.counters.malformed,
                            };
                            Counters::bump(counter);
                            tracing::debug!(from = %message.from, %refusal, "fold summary refused");
                        }
                    }
                }
                // News pushed to us is passed on (pushes are small; answers
                // to a digest are not forwarded).
                let forward = verified.len() <= 4;
                let mut news = Vec::new();
                let recent = {
                    let mut fs = self.fold.lock();
                    for summary in verified {
                        let node = summary.summary().node;
                        let quiet = fs
                            .fold
                            .get(node)
                            .is_some_and(|old| old.quiet_change(summary.summary()));
                        let wire = forward.then(|| summary.signed().clone());
                        if fs.fold.apply(summary) {
                            news.extend(wire);
                            fs.applied_at.insert(node, now);
                            // Saturation and resource figures alone wait for the
                            // periodic rebuild (at most a second).
                            if !quiet {
                                self.dirty.store(true, Ordering::Release);
                            }
                        }
                    }
                    // News from a peer is shown at once unless a rebuild just ran
                    // (bursts still coalesce to one rebuild per 10 ms).
                    fs.last_rebuild.is_some_and(|t| {
                        now.saturating_duration_since(t) < Duration::from_millis(10)
                    })
                };
                if !recent && self.watched() && self.dirty.swap(false, Ordering::AcqRel) {
                    self.rebuild_snapshot();
                }
                if !news.is_empty() {
                    let bytes = FoldMessage::Summaries(news).encode();
                    let handle = MeshHandle { inner: self.clone() };
                    for peer in self.some_live_peers(FOLD_FANOUT, message.from) {
                        handle.send_soon(peer, FOLD_KIND, bytes.clone());
                    }
                }
            }
            FoldMessage::Root(theirs) => {
                let buckets = {
                    let fs = self.fold.lock();
                    (fs.fold.root() != theirs).then(|| fs.fold.bucket_hashes())
                };
                if let Some(buckets) = buckets {
                    let bytes = FoldMessage::Buckets(buckets).encode();
                    let handle = MeshHandle { inner: self.clone() };
                    handle.send_soon(message.from, FOLD_KIND, bytes);
                }
            }
            FoldMessage::Buckets(theirs) => {
                let partial = {
                    let fs = self.fold.lock();
                    let buckets = fs.fold.differing_buckets(&theirs);
                    (!buckets.is_empty()).then(|| {
                        let stamps = fs.fold.partial_digest(&buckets);
                        FoldMessage::Partial { buckets, stamps }
                    })
                };
                if let Some(partial) = partial {
                    let handle = MeshHandle { inner: self.clone() };
                    handle.send_soon(message.from, FOLD_KIND, partial.encode());
                }
            }
            FoldMessage::Partial { buckets, stamps: theirs } => {
                let (newer, they_have_newer) = {
                    let fs = self.fold.lock();
                    let newer = fs.fold.newer_in(&buckets, &theirs);
                    (newer, self.has_older(&fs.fold, &theirs))
                };
                let handle = MeshHandle { inner: self.clone() };
                if !newer.is_empty() {
                    handle.send_soon(
                        message.from,
                        FOLD_KIND,
                        FoldMessage::Summaries(newer).encode(),
                    );
                }
                if they_have_newer {
                    // Pull: our stamps of those buckets make them send what we lack.
                    let stamps = self.fold.lock().fold.partial_digest(&buckets);
                    let bytes = FoldMessage::Partial { buckets, stamps }.encode();
                    handle.send_soon(message.from, FOLD_KIND, bytes);
                }
            }
            FoldMessage::Digest(theirs) => {
                let (newer, they_have_newer) = {
                    let fs = self.fold.lock();
                    let newer = fs.fold.newer_than(&theirs);
                    (newer, self.has_older(&fs.fold, &theirs))
                };
                let handle = MeshHandle { inner: self.clone() };
                if !newer.is_empty() {
                    let bytes = FoldMessage::Summaries(newer).encode();
                    handle.send_soon(message.from, FOLD_KIND, bytes.clone());
                }
                if they_have_newer {
                    // Pull: our digest makes them send what we lack.
                    let bytes = FoldMessage::Digest(self.fold.lock().fold.digest()).encode();
                    handle.send_soon(message.from, FOLD_KIND, bytes.clone());
                }
            }
        }
    }

    /// Whether a peer's stamps list a summary newer than this fold's copy
    /// (or one it lacks), other than this node's own.
    fn has_older(&self, fold: &crate::fold::Fold, theirs: &[(NodeId, u64, u64)]) -> bool {
        theirs.iter().any(|(n, i, v)| {
            *n != self.node_id && fold.get(*n).is_none_or(|s| (*i, *v) > s.stamp())
        })
    }

    /// Registers a daemon slot; errors on a duplicate id.
    pub(crate) fn insert_daemon(&self, slot: Arc<DaemonSlot>) -> Result<(), crate::DaemonError> {
        let mut daemons = self.daemons.write();
        if daemons.contains_key(&slot.id) {
            return Err(crate::DaemonError::AlreadyRegistered(slot.id));
        }
        daemons.insert(slot.id, slot);
        self.push_now.store(true, Ordering::Release);
        Ok(())
    }

    /// Unregisters exactly this slot (a daemon that migrated away and came back
    /// under the same id is a different slot and stays).
    pub(crate) fn remove_daemon_slot(&self, slot: &Arc<DaemonSlot>) {
        let mut daemons = self.daemons.write();
        if daemons.get(&slot.id).is_some_and(|s| Arc::ptr_eq(s, slot)) {
            daemons.remove(&slot.id);
            self.push_now.store(true, Ordering::Release);
        }
    }
}

pub(super) async fn state_loop(inner: Arc<Inner>, mut fold_rx: Subscription) {
    let mut stop = super::tasks::Stop::of(&inner);
    let mut tick = tokio::time::interval(STATE_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut changes = inner.changes.subscribe();
    loop {
        tokio::select! {
            biased;
            () = stop.wait() => break,
            Some(message) = fold_rx.recv() => inner.on_fold_message(message).await,
            _ = tick.tick() => {
                if changes.has_changed().unwrap_or(false) {
                    changes.borrow_and_update();
                    inner.dirty.store(true, Ordering::Release);
                }
                let force = inner.push_now.swap(false, Ordering::AcqRel);
                inner.state_tick(force).await;
            }
        }
    }
}

pub(super) async fn log_loop(inner: Arc<Inner>, mut rx: mpsc::Receiver<PendingLine>) {
    let mut stop = super::tasks::Stop::of(&inner);
    let mut batch = Vec::with_capacity(1024);
    loop {
        tokio::select! {
            biased;
            () = stop.wait() => break,
            n = rx.recv_many(&mut batch, 1024) => {
                if n == 0 {
                    break;
                }
                inner.store_lines(&mut batch);
            }
        }
    }
}
