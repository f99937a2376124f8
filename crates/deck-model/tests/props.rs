//! Property tests: for random data and random message sequences (moves, sorts,
//! searches, filters, pauses, resizes, tab switches over every tab, detail pages,
//! and refreshes that add and remove nodes, daemons, blobs, adapters, migrations
//! and tail items) the selection always points at an existing row (or none when
//! there are none), the window never leaves the rows, a selection survives
//! refreshes that keep its row, and tails never exceed their capacity.
//!
//! Sorting is checked against an independent oracle: the expected order is
//! computed from the underlying data (not from the cells' sort keys), and ties
//! must keep the natural order in both directions.

use std::cmp::Ordering;
use std::sync::Arc;

use deck_model::testkit::{self, NOW_MS, node_id};
use deck_model::{
    AuditItem, CallTail, ChainMark, DeckConfig, DeckData, Msg, Row, RowId, SortDir, SortSpec, Tab,
    Tail, ViewState, update, views,
};
use mesh::migrate::MigrationSummary;
use mesh::{
    DaemonHealth, DaemonView, FailureRecord, Health, Lifecycle, LogLevel, MigrationId,
    MigrationPhase, OriginHash,
};
use mesh_auth::{AuditLedger, AuditOutcome, AuditRecord, CommandClass, OperatorId};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

const NAMES: [&str; 6] = [
    "node_agent",
    "inference_worker#replica",
    "rollout_forge#fork@7",
    "rollout_forge#fork@3",
    "trainer_canary#standby",
    "kv\u{1b}cache",
];

/// Test-node indices handed out to added nodes: ids are never reused.
const MAX_NODES: u64 = 64;

/// Tail capacities small enough for a few refreshes to fill them.
const LOG_TAIL: usize = 64;
const CALL_TAIL: usize = 16;
const FAILURE_TAIL: usize = 12;
const AUDIT_TAIL: usize = 12;

/// A daemon to add: (name index, id, node seed: picks one of the present nodes).
type DaemonSpec = (u8, u16, u8);

#[derive(Clone, Debug)]
enum Op {
    Msg(Msg),
    AddDaemons(Vec<DaemonSpec>),
    RemoveDaemons(u16),
    /// Adds this many nodes (with healths from the seed).
    AddNodes(u8, u8),
    /// Removes up to this many peers (picked by the seed) and their daemons.
    RemoveNodes(u16, u8),
    PushLogs(u8),
    AddBlobs(u8),
    RemoveBlobs(u16),
    /// Replaces the adapters by the subset of (adapter, node) pairs in the mask.
    Forts(u16),
    PushFailures(u8),
    PushAudit(u8),
    /// Adds a migration (even seed) or removes one (odd seed).
    Migration(u16),
}

fn msg_strategy() -> impl Strategy<Value = Msg> {
    prop_oneof![
        4 => Just(Msg::Down),
        3 => Just(Msg::Up),
        1 => Just(Msg::PageDown),
        1 => Just(Msg::PageUp),
        1 => Just(Msg::Home),
        1 => Just(Msg::End),
        1 => (-40isize..40).prop_map(Msg::Move),
        1 => (0usize..12).prop_map(Msg::Sort),
        1 => Just(Msg::SortNext),
        1 => Just(Msg::SortReverse),
        1 => Just(Msg::ClearSort),
        1 => prop::sample::select(vec!["", "a", "W", "node", "1", "zz", "fork", "boom", "cut"])
            .prop_map(|s| Msg::Search(s.to_owned())),
        1 => Just(Msg::ClearSearch),
        1 => Just(Msg::CycleLevel),
        1 => prop::option::of(0u64..8).prop_map(|n| Msg::LogNode(n.map(node_id))),
        1 => Just(Msg::ToggleFollow),
        1 => Just(Msg::TogglePause),
        1 => (1usize..25).prop_map(|rows| Msg::Resize { rows }),
        3 => prop::sample::select(Tab::ALL.to_vec()).prop_map(Msg::Tab),
        1 => Just(Msg::NextTab),
        1 => Just(Msg::PrevTab),
        1 => (0u64..60).prop_map(|d| Msg::Select(RowId::Daemon(OriginHash(d)))),
        1 => (0u64..16).prop_map(|n| Msg::Select(RowId::Node(node_id(n)))),
        1 => (0u64..60).prop_map(|d| Msg::OpenDaemon(OriginHash(d))),
        1 => (0u64..16).prop_map(|n| Msg::OpenNode(node_id(n))),
        1 => Just(Msg::Open),
        1 => Just(Msg::Close),
    ]
}

fn daemon_spec() -> impl Strategy<Value = DaemonSpec> {
    (0u8..6, 0u16..60, any::<u8>())
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => msg_strategy().prop_map(Op::Msg),
        2 => prop::collection::vec(daemon_spec(), 0..6).prop_map(Op::AddDaemons),
        1 => any::<u16>().prop_map(Op::RemoveDaemons),
        2 => (1u8..4, any::<u8>()).prop_map(|(n, h)| Op::AddNodes(n, h)),
        2 => (any::<u16>(), 1u8..4).prop_map(|(s, n)| Op::RemoveNodes(s, n)),
        2 => (0u8..40).prop_map(Op::PushLogs),
        1 => (0u8..20).prop_map(Op::AddBlobs),
        1 => any::<u16>().prop_map(Op::RemoveBlobs),
        1 => any::<u16>().prop_map(Op::Forts),
        1 => (0u8..8).prop_map(Op::PushFailures),
        1 => (0u8..8).prop_map(Op::PushAudit),
        1 => any::<u16>().prop_map(Op::Migration),
    ]
}

fn daemons_strategy() -> impl Strategy<Value = Vec<DaemonSpec>> {
    prop::collection::vec(daemon_spec(), 0..30)
}

fn health(seed: u64) -> Health {
    match seed % 4 {
        0 | 1 => Health::Healthy,
        2 => Health::Degraded { reason: "slow".into() },
        _ => Health::Unreachable { reason: "silent".into() },
    }
}

/// A daemon with fields that vary with its id (with many ties).
fn make_daemon(name: u8, id: u64, node: u64) -> DaemonView {
    let mut d = testkit::daemon(NAMES[usize::from(name) % NAMES.len()], id, node);
    d.restarts = (id % 3) as u32;
    d.saturation = (id % 4) as f32 / 4.0;
    d.log_dropped = (id % 2) * 5;
    d.health = match id % 5 {
        3 => DaemonHealth::Degraded { reason: "busy".into() },
        4 => DaemonHealth::Unhealthy { reason: "stuck".into() },
        _ => DaemonHealth::Healthy,
    };
    d.lifecycle = match id % 7 {
        5 => Lifecycle::Draining,
        6 => Lifecycle::Crashed,
        _ => Lifecycle::Running,
    };
    d
}

struct World {
    data: DeckData,
    /// Test-node indices in the snapshot (0, the deck's node, always first).
    nodes: Vec<u64>,
    next_node: u64,
    next_log: u64,
    next_blob: u64,
    next_failure: u64,
    next_migration: u64,
    ledger: AuditLedger,
}

impl World {
    fn new(nodes: u64, daemons: Vec<DaemonSpec>) -> World {
        let nodes = nodes.clamp(1, MAX_NODES);
        let config = DeckConfig {
            log_tail: LOG_TAIL,
            call_tail: CALL_TAIL,
            failure_tail: FAILURE_TAIL,
            audit_tail: AUDIT_TAIL,
            ..DeckConfig::default()
        };
        let mut snap = testkit::snapshot(nodes, Vec::new());
        for (i, p) in (1..).zip(&mut snap.peers) {
            // Peer `i` (id `node_id(i)`): its health varies with `i`.
            p.info.health = health(i);
        }
        let mut world = World {
            data: testkit::data(snap, &config),
            nodes: (0..nodes).collect(),
            next_node: nodes,
            next_log: 0,
            next_blob: 0,
            next_failure: 0,
            next_migration: 0,
            ledger: AuditLedger::new(),
        };
        world.add_daemons(&daemons);
        let echo: Arc<str> = "demo.echo".into();
        for n in 0..20 {
            world.data.calls.push(testkit::call(&echo, 1, 2, n, n % 4 != 0));
        }
        world
    }

    fn node_for(&self, seed: u8) -> u64 {
        self.nodes[usize::from(seed) % self.nodes.len()]
    }

    fn add_daemons(&mut self, list: &[DaemonSpec]) {
        let placed: Vec<DaemonView> = list
            .iter()
            .map(|&(name, id, node)| make_daemon(name, u64::from(id), self.node_for(node)))
            .collect();
        let snap = Arc::make_mut(&mut self.data.snapshot);
        for d in placed {
            // Daemon ids are unique in a snapshot.
            if !snap.daemons.iter().any(|x| x.id == d.id) {
                snap.daemons.push(d);
            }
        }
        snap.seq += 1;
    }

    fn apply(&mut self, op: &Op, state: &mut ViewState) {
        match op {
            Op::Msg(msg) => update(state, msg.clone()),
            Op::AddDaemons(list) => self.add_daemons(list),
            Op::RemoveDaemons(seed) => {
                let snap = Arc::make_mut(&mut self.data.snapshot);
                if !snap.daemons.is_empty() {
                    let i = usize::from(*seed) % snap.daemons.len();
                    snap.daemons.remove(i);
                    if seed % 3 == 0 && !snap.daemons.is_empty() {
                        let j = usize::from(*seed / 3) % snap.daemons.len();
                        snap.daemons.remove(j);
                    }
                }
                snap.seq += 1;
            }
            Op::AddNodes(n, seed) => {
                let snap = Arc::make_mut(&mut self.data.snapshot);
                for k in 0..u64::from(*n) {
                    if self.next_node >= MAX_NODES {
                        break;
                    }
                    let i = self.next_node;
                    self.next_node += 1;
                    // New peers go anywhere in the list, not only at the end.
                    let at = (usize::from(*seed) + k as usize) % (snap.peers.len() + 1);
                    let rtt = 1 + (u64::from(*seed) + k) % 9;
                    snap.peers.insert(at, testkit::peer(i, health(u64::from(*seed) + k), rtt));
                    self.nodes.push(i);
                }
                snap.seq += 1;
            }
            Op::RemoveNodes(seed, n) => {
                let snap = Arc::make_mut(&mut self.data.snapshot);
                for k in 0..usize::from(*n) {
                    if snap.peers.is_empty() {
                        break;
                    }
                    let gone = snap.peers.remove((usize::from(*seed) + 7 * k) % snap.peers.len());
                    let id = gone.info.node_id;
                    // A node that leaves takes its daemons with it.
                    snap.daemons.retain(|d| d.node != id);
                    self.nodes.retain(|&i| node_id(i) != id);
                }
                snap.seq += 1;
            }
            Op::PushLogs(n) => {
                let levels = [LogLevel::Debug, LogLevel::Info, LogLevel::Warn, LogLevel::Error];
                for _ in 0..*n {
                    let k = self.next_log;
                    self.next_log += 1;
                    let node = self.nodes[(k as usize) % self.nodes.len()];
                    self.data.logs.push(testkit::log(
                        node,
                        k,
                        levels[(k * 7 % 4) as usize],
                        &format!(
                            "line {k} {}",
                            ["alpha", "warm", "node", "Alpha"][(k % 4) as usize]
                        ),
                    ));
                }
            }
            Op::AddBlobs(n) => {
                let a: Arc<str> = if self.next_blob % 2 == 0 { "a".into() } else { "B".into() };
                for _ in 0..*n {
                    let k = self.next_blob;
                    self.next_blob += 1;
                    self.data.blobs.push(testkit::blob(&a, k % 3, k));
                }
            }
            Op::RemoveBlobs(seed) => {
                if !self.data.blobs.is_empty() {
                    let i = usize::from(*seed) % self.data.blobs.len();
                    self.data.blobs.remove(i);
                }
            }
            Op::Forts(mask) => {
                let names: [Arc<str>; 3] = ["cache".into(), "models".into(), "ckpt".into()];
                self.data.forts.clear();
                for (bit, (name, node)) in
                    names.iter().flat_map(|a| (0..4u64).map(move |n| (a, n))).enumerate()
                {
                    if mask & (1 << bit) != 0 {
                        self.data.forts.push(testkit::fort(name, node, 1 + bit as u64));
                    }
                }
            }
            Op::PushFailures(n) => {
                for _ in 0..*n {
                    let k = self.next_failure;
                    self.next_failure += 1;
                    self.data.failures.push(FailureRecord {
                        seq: k,
                        ts_ms: NOW_MS - 1000 + k,
                        node: node_id(self.nodes[(k as usize) % self.nodes.len()]),
                        kind: ["daemon_panic", "peer_unreachable"][(k % 2) as usize].into(),
                        subject: format!("worker-{}", k % 5),
                        message: "boom\nagain".into(),
                    });
                }
            }
            Op::PushAudit(n) => {
                for _ in 0..*n {
                    let k = self.ledger.len() as u64;
                    let outcome = if k % 3 == 2 {
                        AuditOutcome::Rejected {
                            code: "not_authorized".into(),
                            detail: "no registered operator signed".into(),
                        }
                    } else {
                        AuditOutcome::Accepted
                    };
                    let record = AuditRecord {
                        ts_ms: NOW_MS - 2000 + k,
                        operators: vec![OperatorId(0xabc)],
                        class: CommandClass::Routine,
                        target: format!("node:{}", node_id(k % 4)),
                        payload_digest: [k as u8; 32],
                        nonce: [3; 16],
                        outcome,
                    };
                    let entry = self.ledger.append(record).unwrap().clone();
                    let chain = if k % 5 == 4 { ChainMark::Broken } else { ChainMark::Verified };
                    self.data.audit.push(AuditItem { node: node_id(k % 4), entry, chain });
                }
            }
            Op::Migration(seed) => {
                let snap = Arc::make_mut(&mut self.data.snapshot);
                if seed % 2 == 1 {
                    if !snap.migrations.is_empty() {
                        let i = usize::from(*seed / 2) % snap.migrations.len();
                        snap.migrations.remove(i);
                    }
                } else {
                    let k = self.next_migration;
                    self.next_migration += 1;
                    let phase = match seed / 2 % 5 {
                        0 => MigrationPhase::Transfer,
                        1 => MigrationPhase::Restore,
                        2 => MigrationPhase::Complete,
                        3 => MigrationPhase::Failed { reason: "target\x1b died".into() },
                        _ => MigrationPhase::Cancelled,
                    };
                    let started = NOW_MS - 30_000 + 1000 * (u64::from(*seed) % 20);
                    snap.migrations.push(MigrationSummary {
                        id: MigrationId(k),
                        daemon: OriginHash(k),
                        name: format!("compute-{k}"),
                        source: node_id(self.nodes[usize::from(*seed) % self.nodes.len()]),
                        target: node_id(0),
                        phase,
                        bytes_moved: 4096 * k,
                        started_at_ms: started,
                        last_progress_ms: started + 500 * (k % 30),
                    });
                }
                snap.seq += 1;
            }
        }
    }
}

/// Checks one built view against the full table computed with the same state.
fn check(data: &DeckData, state: &ViewState, view: &deck_model::View) -> Result<(), TestCaseError> {
    let t = &view.table;
    let height = state.height();
    prop_assert!(t.rows.len() <= height.max(1));
    prop_assert!(t.first + t.rows.len() <= t.total);
    prop_assert!(
        t.first <= t.total.saturating_sub(height.max(1)),
        "first {} total {}",
        t.first,
        t.total
    );
    if view.detail.is_none() {
        prop_assert_eq!(view.tab, state.tab());
    }
    match t.selected {
        None => prop_assert_eq!(t.total, 0),
        Some(p) => {
            prop_assert!(p < t.total);
            prop_assert!(
                p >= t.first && p < t.first + t.rows.len(),
                "selection outside the window"
            );
            if view.detail.is_none() {
                // The selected row exists in the full table, at that position.
                let full = views::build_full(data, state, view.tab);
                prop_assert_eq!(full.table.total, t.total);
                prop_assert_eq!(full.table.rows[p].id, t.rows[p - t.first].id);
                for (i, row) in t.rows.iter().enumerate() {
                    prop_assert_eq!(row.id, full.table.rows[t.first + i].id);
                }
            }
        }
    }
    prop_assert!(data.logs.len() <= LOG_TAIL && data.logs.capacity() == LOG_TAIL);
    prop_assert!(data.calls.len() <= CALL_TAIL && data.calls.capacity() == CALL_TAIL);
    prop_assert!(data.failures.len() <= FAILURE_TAIL && data.failures.capacity() == FAILURE_TAIL);
    prop_assert!(data.audit.len() <= AUDIT_TAIL && data.audit.capacity() == AUDIT_TAIL);
    Ok(())
}

/// A column value computed from the data, independently of the views' cells
/// and sort keys.
#[derive(Clone, Debug, PartialEq)]
enum Want {
    Int(i128),
    Float(f64),
    Text(String),
    Missing,
}

/// The documented order: numbers by value, text case-insensitively then by
/// bytes, missing values last.
fn want_cmp(a: &Want, b: &Want) -> Ordering {
    match (a, b) {
        (Want::Int(x), Want::Int(y)) => x.cmp(y),
        (Want::Float(x), Want::Float(y)) => x.partial_cmp(y).expect("no NaN in the test data"),
        (Want::Text(x), Want::Text(y)) => (x.to_lowercase(), x).cmp(&(y.to_lowercase(), y)),
        (Want::Missing, Want::Missing) => Ordering::Equal,
        (Want::Missing, _) => Ordering::Greater,
        (_, Want::Missing) => Ordering::Less,
        (x, y) => panic!("one column mixes {x:?} and {y:?}"),
    }
}

/// The columns [`expected`] knows, per tab.
fn oracle_columns() -> Vec<(Tab, usize)> {
    let mut v: Vec<(Tab, usize)> = (0..10).map(|c| (Tab::Daemons, c)).collect();
    v.extend((0..5).map(|c| (Tab::Logs, c)));
    v.extend([0, 1, 3, 4, 5, 6, 7, 8, 9, 10, 11].map(|c| (Tab::Nodes, c)));
    v.extend([0, 1, 2, 3, 4, 6, 7].map(|c| (Tab::Blobs, c)));
    v
}

fn int(v: impl Into<i128>) -> Want {
    Want::Int(v.into())
}

fn opt(v: Option<u64>) -> Want {
    v.map_or(Want::Missing, int)
}

/// The value of `row` (a row of `tab`'s natural table) in `column`, from the data.
fn expected(data: &DeckData, tab: Tab, row: &Row, column: usize) -> Want {
    let snap = &data.snapshot;
    let now = data.now_ms;
    match (tab, row.id) {
        (Tab::Daemons, RowId::Daemon(id)) => {
            let d = snap.daemons.iter().find(|d| d.id == id).expect("a daemon row has a daemon");
            match column {
                0 => Want::Text(d.name.clone()),
                // The role as displayed: standby active, warm, replicas, forks
                // by parent sequence, solo.
                1 => {
                    let role = row.cells[1].text.as_str();
                    int(match role {
                        "active" => 0,
                        "warm" => 1,
                        "replica" => 2,
                        "solo" => i128::MAX,
                        fork => 3 + fork["fork@".len()..].parse::<i128>().expect("fork@N"),
                    })
                }
                2 => int(d.node.0),
                3 => int(d.lifecycle as u8),
                4 => int(match d.health {
                    DaemonHealth::Healthy => 0,
                    DaemonHealth::Degraded { .. } => 1,
                    DaemonHealth::Unhealthy { .. } => 2,
                }),
                5 => Want::Float(f64::from(d.saturation)),
                6 => int(d.restarts),
                7 => int(d.age_ms),
                8 => int(d.log_dropped),
                _ => int(u8::from(d.migratable)),
            }
        }
        (Tab::Logs, RowId::Log(seq)) => {
            let e = data.logs.get(seq).expect("a log row has a line");
            match column {
                0 => int(e.ts_ms),
                1 => int(e.node.0),
                2 => e.daemon.map_or(int(-1), |d| int(d.0)),
                3 => int(e.level as u8),
                _ => Want::Text(e.message.clone()),
            }
        }
        (Tab::Nodes, RowId::Node(id)) => {
            let (health, admin, resources) = if id == snap.this_node.node_id {
                (Health::Healthy, &snap.this_node.admin, Some(&snap.this_node.resources))
            } else {
                let p = snap.peers.iter().find(|p| p.info.node_id == id).expect("a peer");
                (p.info.health.clone(), &p.admin, p.resources.as_ref())
            };
            match column {
                0 => int(id.0),
                1 => int(match health {
                    Health::Healthy => 0,
                    Health::Degraded { .. } => 1,
                    Health::Unreachable { .. } => 2,
                }),
                3 => opt(resources.and_then(|r| r.cpu_load_milli).map(u64::from)),
                4 => resources
                    .and_then(|r| Some((r.mem_used?, r.mem_total?)))
                    .map_or(Want::Missing, |(u, t)| Want::Float(u as f64 / t as f64)),
                5 => opt(resources.and_then(|r| r.process_rss)),
                6 => opt(resources.and_then(|r| r.disk_free)),
                7 => int(snap.daemons.iter().filter(|d| d.node == id).count() as u64),
                8 => int(u8::from(admin.cordoned)),
                9 => opt(admin.draining_until_ms.filter(|t| *t > now).map(|t| t - now)),
                10 => opt(admin.maintenance_until_ms.filter(|t| *t > now).map(|t| t - now)),
                _ => int(admin.avoid.len() as u64),
            }
        }
        (Tab::Blobs, RowId::Blob(_, prefix)) => {
            let e = data
                .blobs
                .iter()
                .find(|e| e.hash.as_bytes()[..8] == prefix.to_be_bytes())
                .expect("a blob row has a blob");
            match column {
                0 => Want::Text(e.adapter.to_string()),
                1 => int(e.node.0),
                2 => int(prefix),
                3 => int(e.size),
                4 => int(now - e.stored_at_ms),
                6 => int(e.read_count),
                _ => int(u8::from(e.pinned)),
            }
        }
        (tab, id) => panic!("no oracle for {id:?} on {tab:?}"),
    }
}

/// The ids of `tab`'s table sorted by `column` in `dir`, and the ids the
/// oracle expects: the natural order stably sorted by the data's values (ties
/// keep the natural order in both directions).
fn sorted_and_expected(
    data: &DeckData,
    tab: Tab,
    column: usize,
    dir: SortDir,
) -> Result<(Vec<RowId>, Vec<RowId>), TestCaseError> {
    let natural = views::build_full(data, &ViewState::new(), tab).table;
    prop_assert_eq!(natural.sort, None);
    let mut state = ViewState::new();
    update(&mut state, Msg::Tab(tab));
    update(&mut state, Msg::Sort(column));
    if dir == SortDir::Desc {
        update(&mut state, Msg::Sort(column));
    }
    let sorted = views::build_full(data, &state, tab).table;
    prop_assert_eq!(sorted.sort, Some(SortSpec { column, dir }));
    prop_assert_eq!(sorted.total, natural.total);
    let keyed: Vec<(usize, Want)> =
        natural.rows.iter().enumerate().map(|(i, r)| (i, expected(data, tab, r, column))).collect();
    let mut want = keyed;
    want.sort_unstable_by(|(i, a), (j, b)| {
        let o = want_cmp(a, b);
        let o = if dir == SortDir::Desc { o.reverse() } else { o };
        o.then(i.cmp(j))
    });
    let want: Vec<RowId> = want.into_iter().map(|(i, _)| natural.rows[i].id).collect();
    let got: Vec<RowId> = sorted.rows.iter().map(|r| r.id).collect();
    Ok((got, want))
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct("proptest-regressions/props.txt"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn selection_and_scroll_stay_in_range(
        nodes in 1u64..9,
        daemons in daemons_strategy(),
        start in prop::sample::select(Tab::ALL.to_vec()),
        ops in prop::collection::vec(op_strategy(), 1..60),
    ) {
        let mut world = World::new(nodes, daemons);
        let mut state = ViewState::new();
        update(&mut state, Msg::Tab(start));
        let view = views::build(&world.data, &state);
        state.observe(&view);
        for op in &ops {
            let before = views::build(&world.data, &state).table.selected_id();
            world.apply(op, &mut state);
            let view = views::build(&world.data, &state);
            check(&world.data, &state, &view)?;
            // A refresh that keeps the selected row keeps the selection.
            if !matches!(op, Op::Msg(_))
                && !state.current().follow()
                && view.detail.is_none()
                && let Some(id) = before
                && views::build_full(&world.data, &state, view.tab).table.row(id).is_some()
            {
                prop_assert_eq!(view.table.selected_id(), Some(id), "after {:?}", op);
            }
            state.observe(&view);
            prop_assert_eq!(state.current().selected(), view.table.selected_id());
            // The snapshot holds the nodes the world says, and NODES shows them all.
            prop_assert_eq!(world.data.nodes().count(), world.nodes.len());
        }
        // Every tab can be shown from the final state.
        for tab in Tab::ALL {
            update(&mut state, Msg::Tab(tab));
            let view = views::build(&world.data, &state);
            check(&world.data, &state, &view)?;
            state.observe(&view);
        }
    }

    #[test]
    fn sorting_matches_an_independent_stable_sort(
        nodes in 1u64..12,
        daemons in daemons_strategy(),
        lines in 0u8..80,
        blobs in 0u8..40,
        (tab, column) in prop::sample::select(oracle_columns()),
        desc in any::<bool>(),
    ) {
        let mut world = World::new(nodes, daemons);
        let mut probe = ViewState::new();
        world.apply(&Op::PushLogs(lines), &mut probe);
        world.apply(&Op::AddBlobs(blobs / 2), &mut probe);
        world.apply(&Op::AddBlobs(blobs - blobs / 2), &mut probe);
        let dir = if desc { SortDir::Desc } else { SortDir::Asc };
        let (got, want) = sorted_and_expected(&world.data, tab, column, dir)?;
        prop_assert_eq!(got, want);
    }

    #[test]
    fn tails_never_exceed_capacity(capacity in 0usize..50, pushes in 0usize..200) {
        let mut tail = Tail::new(capacity);
        let calls = CallTail::new(capacity);
        let echo: Arc<str> = "x".into();
        for i in 0..pushes {
            prop_assert_eq!(tail.push(i), i as u64);
            calls.push(testkit::call(&echo, 0, 1, i as u64, true));
            prop_assert!(tail.len() <= capacity.max(1));
            prop_assert!(calls.len() <= calls.capacity());
        }
        prop_assert_eq!(tail.len(), pushes.min(capacity.max(1)));
        prop_assert_eq!(tail.next_seq(), pushes as u64);
        let since: Vec<u64> = tail.since(0).map(|(s, _)| s).collect();
        let want: Vec<u64> = (tail.first_seq()..tail.next_seq()).collect();
        prop_assert_eq!(since, want);
        prop_assert!(calls.since(0).len() <= calls.capacity());
    }

    #[test]
    fn a_marked_count_matches_the_items_held(
        capacity in 0usize..40,
        items in proptest::collection::vec(0u8..6, 0..150),
        clear_at in proptest::option::of(0usize..150),
    ) {
        let mut tail = Tail::with_marker(capacity, |v: &u8| *v == 0);
        for (i, v) in items.iter().enumerate() {
            if clear_at == Some(i) {
                tail.clear();
            }
            tail.push(*v);
            let held = tail.iter().filter(|(_, v)| **v == 0).count();
            prop_assert_eq!(tail.marked(), held);
        }
    }
}

/// Rows whose every column is equal keep their natural order under every sort,
/// in both directions.
#[test]
fn equal_keys_keep_the_natural_order() {
    let mut world = World::new(3, Vec::new());
    let snap = Arc::make_mut(&mut world.data.snapshot);
    for id in [40u64, 3, 17, 8, 25, 1, 33] {
        let mut d = testkit::daemon("inference_worker#replica", id, 1);
        d.saturation = 0.5;
        d.age_ms = 60_000;
        d.started_at_ms = NOW_MS - 60_000;
        d.migratable = true;
        snap.daemons.push(d);
    }
    for seq in 0..9 {
        let mut line = testkit::log(2, seq, LogLevel::Warn, "same line");
        line.ts_ms = NOW_MS - 5;
        line.daemon = Some(OriginHash(99));
        world.data.logs.push(line);
    }
    for (tab, columns) in [(Tab::Daemons, 10), (Tab::Logs, 5)] {
        let natural: Vec<RowId> = views::build_full(&world.data, &ViewState::new(), tab)
            .table
            .rows
            .iter()
            .map(|r| r.id)
            .collect();
        assert!(natural.len() >= 7, "{tab:?}");
        for column in 0..columns {
            for dir in [SortDir::Asc, SortDir::Desc] {
                let (got, want) = sorted_and_expected(&world.data, tab, column, dir).unwrap();
                assert_eq!(want, natural, "the oracle keeps ties in order");
                assert_eq!(got, natural, "{tab:?} column {column} {dir:?}");
            }
        }
    }
}

/// The oracle can tell a wrong order from a right one (it is not vacuous).
#[test]
fn the_oracle_sees_a_reversed_order() {
    let mut world = World::new(4, (0..12).map(|i| (i % 6, u16::from(i) * 5, i)).collect());
    world.apply(&Op::PushLogs(30), &mut ViewState::new());
    let (got, want) = sorted_and_expected(&world.data, Tab::Logs, 0, SortDir::Asc).unwrap();
    assert_eq!(got, want);
    let (desc, _) = sorted_and_expected(&world.data, Tab::Logs, 0, SortDir::Desc).unwrap();
    assert_ne!(desc, want, "distinct times: descending is another order");
    let (names, _) = sorted_and_expected(&world.data, Tab::Daemons, 0, SortDir::Asc).unwrap();
    let (_, by_node) = sorted_and_expected(&world.data, Tab::Daemons, 2, SortDir::Asc).unwrap();
    assert_ne!(names, by_node);
}
