//! Property tests: for random data and random message sequences (moves, sorts,
//! searches, filters, pauses, resizes, refreshes that add and remove rows) the
//! selection always points at an existing row (or none when there are none),
//! the window never leaves the rows, a selection survives refreshes that keep its
//! row, tails never exceed their capacity, and sorting is stable and total.

use std::cmp::Ordering;
use std::sync::Arc;

use deck_model::table::Key;
use deck_model::testkit;
use deck_model::{
    CallTail, DeckConfig, DeckData, Msg, RowId, SortDir, Tab, Tail, ViewState, update, views,
};
use mesh::{DaemonView, LogLevel, OriginHash};
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

#[derive(Clone, Debug)]
enum Op {
    Msg(Msg),
    AddDaemons(Vec<(u8, u16, u8)>),
    RemoveDaemons(u16),
    PushLogs(u8),
    AddBlobs(u8),
    RemoveBlobs(u16),
}

fn tab_strategy() -> impl Strategy<Value = Tab> {
    prop::sample::select(vec![
        Tab::Daemons,
        Tab::Logs,
        Tab::Blobs,
        Tab::Groups,
        Tab::Chains,
        Tab::Nodes,
        Tab::Nrpc,
    ])
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
        1 => prop::sample::select(vec!["", "a", "W", "node", "1", "zz", "fork"])
            .prop_map(|s| Msg::Search(s.to_owned())),
        1 => Just(Msg::ClearSearch),
        1 => Just(Msg::CycleLevel),
        1 => Just(Msg::ToggleFollow),
        1 => Just(Msg::TogglePause),
        1 => (1usize..25).prop_map(|rows| Msg::Resize { rows }),
        1 => tab_strategy().prop_map(Msg::Tab),
        1 => (0u64..60).prop_map(|d| Msg::Select(RowId::Daemon(OriginHash(d)))),
        1 => (0u64..60).prop_map(|d| Msg::OpenDaemon(OriginHash(d))),
        1 => Just(Msg::Open),
        1 => Just(Msg::Close),
    ]
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => msg_strategy().prop_map(Op::Msg),
        1 => prop::collection::vec((0u8..6, 0u16..60, 0u8..5), 0..6).prop_map(Op::AddDaemons),
        1 => any::<u16>().prop_map(Op::RemoveDaemons),
        1 => (0u8..40).prop_map(Op::PushLogs),
        1 => (0u8..20).prop_map(Op::AddBlobs),
        1 => any::<u16>().prop_map(Op::RemoveBlobs),
    ]
}

fn daemons_strategy() -> impl Strategy<Value = Vec<(u8, u16, u8)>> {
    prop::collection::vec((0u8..6, 0u16..60, 0u8..5), 0..30)
}

fn make_daemon((name, id, node): (u8, u16, u8)) -> DaemonView {
    testkit::daemon(NAMES[name as usize], u64::from(id), u64::from(node))
}

struct World {
    data: DeckData,
    next_log: u64,
    next_blob: u64,
}

impl World {
    fn new(daemons: Vec<(u8, u16, u8)>) -> World {
        let mut list: Vec<DaemonView> = Vec::new();
        for d in daemons {
            // Daemon ids are unique in a snapshot.
            if !list.iter().any(|x| x.id.0 == u64::from(d.1)) {
                list.push(make_daemon(d));
            }
        }
        let config = DeckConfig { log_tail: 64, call_tail: 16, ..DeckConfig::default() };
        let mut data = testkit::data(testkit::snapshot(5, list), &config);
        let echo: Arc<str> = "demo.echo".into();
        for n in 0..20 {
            data.calls.push(testkit::call(&echo, 1, 2, n, n % 4 != 0));
        }
        World { data, next_log: 0, next_blob: 0 }
    }

    fn apply(&mut self, op: &Op, state: &mut ViewState) {
        match op {
            Op::Msg(msg) => update(state, msg.clone()),
            Op::AddDaemons(list) => {
                let snap = Arc::make_mut(&mut self.data.snapshot);
                for d in list {
                    if !snap.daemons.iter().any(|x| x.id.0 == u64::from(d.1)) {
                        snap.daemons.push(make_daemon(*d));
                    }
                }
                snap.seq += 1;
            }
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
            Op::PushLogs(n) => {
                let levels = [LogLevel::Debug, LogLevel::Info, LogLevel::Warn, LogLevel::Error];
                for _ in 0..*n {
                    let k = self.next_log;
                    self.next_log += 1;
                    self.data.logs.push(testkit::log(
                        k % 3,
                        k,
                        levels[(k * 7 % 4) as usize],
                        &format!("line {k} {}", ["alpha", "warm", "node"][(k % 3) as usize]),
                    ));
                }
            }
            Op::AddBlobs(n) => {
                let a: Arc<str> = if self.next_blob % 2 == 0 { "a".into() } else { "b".into() };
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
    prop_assert!(data.logs.len() <= data.logs.capacity());
    prop_assert!(data.calls.len() <= data.calls.capacity());
    Ok(())
}

fn keys_ordered(a: &Key<'_>, b: &Key<'_>, dir: SortDir) -> bool {
    let o = a.total_cmp(b);
    match dir {
        SortDir::Asc => o != Ordering::Greater,
        SortDir::Desc => o != Ordering::Less,
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct("proptest-regressions/props.txt"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn selection_and_scroll_stay_in_range(
        daemons in daemons_strategy(),
        ops in prop::collection::vec(op_strategy(), 1..60),
    ) {
        let mut world = World::new(daemons);
        let mut state = ViewState::new();
        update(&mut state, Msg::Tab(Tab::Daemons));
        let view = views::build(&world.data, &state);
        state.observe(&view);
        for op in &ops {
            let before = views::build(&world.data, &state).table.selected_id();
            world.apply(op, &mut state);
            let view = views::build(&world.data, &state);
            check(&world.data, &state, &view)?;
            // A refresh that keeps the selected row keeps the selection.
            if matches!(op, Op::AddDaemons(_) | Op::AddBlobs(_))
                && !state.current().follow()
                && view.detail.is_none()
                && let Some(id) = before
                && views::build_full(&world.data, &state, view.tab).table.row(id).is_some()
            {
                prop_assert_eq!(view.table.selected_id(), Some(id));
            }
            state.observe(&view);
            prop_assert_eq!(state.current().selected(), view.table.selected_id());
        }
    }

    #[test]
    fn sorting_is_stable_and_total(
        daemons in daemons_strategy(),
        lines in 0u8..80,
        column in 0usize..10,
        desc in any::<bool>(),
        tab in prop::sample::select(vec![Tab::Daemons, Tab::Logs, Tab::Groups, Tab::Nodes, Tab::Chains]),
    ) {
        let mut world = World::new(daemons);
        let mut probe = ViewState::new();
        world.apply(&Op::PushLogs(lines), &mut probe);
        let natural = views::build_full(&world.data, &ViewState::new(), tab).table;
        let mut state = ViewState::new();
        update(&mut state, Msg::Tab(tab));
        update(&mut state, Msg::Sort(column));
        if desc {
            update(&mut state, Msg::Sort(column));
        }
        let sorted = views::build_full(&world.data, &state, tab).table;
        prop_assert_eq!(sorted.total, natural.total);
        if column >= natural.columns.len() {
            prop_assert_eq!(sorted.sort, None);
            return Ok(());
        }
        let dir = if desc { SortDir::Desc } else { SortDir::Asc };
        let pos = |id: RowId| natural.rows.iter().position(|r| r.id == id);
        let mut seen: Vec<RowId> = sorted.rows.iter().map(|r| r.id).collect();
        seen.sort();
        let mut want: Vec<RowId> = natural.rows.iter().map(|r| r.id).collect();
        want.sort();
        prop_assert_eq!(seen, want, "a permutation");
        for pair in sorted.rows.windows(2) {
            let (a, b) = (pair[0].cells[column].key(), pair[1].cells[column].key());
            prop_assert!(keys_ordered(&a, &b, dir), "{:?} then {:?}", a, b);
            if a.total_cmp(&b) == Ordering::Equal {
                prop_assert!(pos(pair[0].id) < pos(pair[1].id), "ties keep natural order");
            }
        }
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
