//! Verbs to commands, the target on a page, and durations as typed.

use mesh::{MigrationPhase, MigrationSummary};
use proptest::prelude::*;

use super::*;
use crate::state::{Msg, update};
use crate::{testkit, views};

/// Three nodes with the demo's daemons and one migration away from node 1.
fn snapshot() -> MeshSnapshot {
    let mut snap = testkit::snapshot(3, testkit::demo_daemons(3));
    snap.migrations.push(MigrationSummary {
        id: MigrationId(7),
        daemon: OriginHash(2000),
        name: "compute-7".into(),
        source: testkit::node_id(1),
        target: testkit::node_id(2),
        phase: MigrationPhase::Transfer,
        bytes_moved: 0,
        started_at_ms: testkit::NOW_MS,
        last_progress_ms: testkit::NOW_MS,
    });
    snap
}

/// A target of the kind `verb` acts on, known to [`snapshot`].
fn target_for(kind: TargetKind) -> Target {
    match kind {
        TargetKind::Node => Target::Node(testkit::node_id(2)),
        TargetKind::Cluster => Target::Cluster,
        TargetKind::Daemon => Target::Daemon(OriginHash(2000)),
        TargetKind::Migration => Target::Migration(MigrationId(7)),
    }
}

#[test]
fn every_verb_makes_its_command_for_its_target() {
    let snap = snapshot();
    let minute = Some(Duration::from_secs(60));
    for verb in AdminVerb::ALL {
        let target = target_for(verb.target());
        let command = verb.command(target, minute, &snap).unwrap();
        let node = match (verb.target(), command.node()) {
            (TargetKind::Cluster, None) => None,
            (TargetKind::Node, Some(n)) => Some(n),
            // Daemon and migration commands go where the snapshot places them.
            (TargetKind::Daemon, Some(n)) | (TargetKind::Migration, Some(n)) => Some(n),
            other => panic!("{verb:?}: {other:?}"),
        };
        let want = match verb.target() {
            TargetKind::Node => Some(testkit::node_id(2)),
            TargetKind::Cluster => None,
            TargetKind::Daemon => Some(snap.daemon(OriginHash(2000)).unwrap().node),
            TargetKind::Migration => Some(testkit::node_id(1)),
        };
        assert_eq!(node, want, "{verb:?}");
        // Verbs that ask for a duration carry it.
        let carries = matches!(
            command,
            AdminCommand::Drain { window_ms: 60_000, .. }
                | AdminCommand::EnterMaintenance { window_ms: Some(60_000), .. }
                | AdminCommand::Freeze { ttl_ms: 60_000 }
        );
        assert_eq!(carries, verb.prompt().is_some(), "{verb:?}");
    }
}

#[test]
fn missing_input_and_unknown_rows_are_errors() {
    let snap = snapshot();
    let node = Target::Node(testkit::node_id(0));
    assert!(matches!(
        AdminVerb::Drain.command(node, None, &snap),
        Err(DeckError::Incomplete("a duration"))
    ));
    assert!(matches!(
        AdminVerb::Freeze.command(Target::Cluster, None, &snap),
        Err(DeckError::Incomplete("a duration"))
    ));
    // An optional window may be left out.
    assert!(matches!(
        AdminVerb::MaintenanceOn.command(node, None, &snap),
        Ok(AdminCommand::EnterMaintenance { window_ms: None, .. })
    ));
    assert!(matches!(
        AdminVerb::ForceRestart.command(Target::Daemon(OriginHash(1)), None, &snap),
        Err(DeckError::UnknownDaemon(OriginHash(1)))
    ));
    assert!(matches!(
        AdminVerb::KillMigration.command(Target::Migration(MigrationId(8)), None, &snap),
        Err(DeckError::UnknownMigration(MigrationId(8)))
    ));
    let e = AdminVerb::Cordon.command(Target::Cluster, None, &snap).unwrap_err();
    assert_eq!(e.to_string(), "the command needs a node");
}

#[test]
fn the_page_decides_the_target() {
    let data = testkit::data(snapshot(), &Default::default());
    let mut state = ViewState::new();
    assert_eq!(TargetKind::Cluster.selected(&state), Some(Target::Cluster));
    for kind in [TargetKind::Node, TargetKind::Daemon, TargetKind::Migration] {
        assert_eq!(kind.selected(&state), None, "nothing selected on NET.MAP");
    }
    for (tab, kind) in [
        (Tab::Nodes, TargetKind::Node),
        (Tab::Daemons, TargetKind::Daemon),
        (Tab::Migrations, TargetKind::Migration),
    ] {
        update(&mut state, Msg::Tab(tab));
        state.observe(&views::build(&data, &state));
        let selected = kind.selected(&state);
        let row = state.current().selected();
        let same = match (selected, row) {
            (Some(Target::Node(n)), Some(RowId::Node(r))) => n == r,
            (Some(Target::Daemon(d)), Some(RowId::Daemon(r))) => d == r,
            (Some(Target::Migration(m)), Some(RowId::Migration(r))) => m == r,
            _ => false,
        };
        assert!(same, "{tab:?}: {selected:?} vs {row:?}");
        // Only on its own tab.
        let other = if kind == TargetKind::Node { TargetKind::Daemon } else { TargetKind::Node };
        assert_eq!(other.selected(&state), None, "{tab:?}");
    }
    // A daemon page targets its daemon, not a node.
    update(&mut state, Msg::Tab(Tab::Daemons));
    update(&mut state, Msg::Open);
    state.observe(&views::build(&data, &state));
    assert!(matches!(TargetKind::Daemon.selected(&state), Some(Target::Daemon(_))));
    assert_eq!(TargetKind::Node.selected(&state), None);
}

#[test]
fn durations_parse_like_operators_write_them() {
    let ok = |t: &str| parse_duration(t).unwrap();
    assert_eq!(ok("90"), Duration::from_secs(90));
    assert_eq!(ok("500ms"), Duration::from_millis(500));
    assert_eq!(ok(" 5m "), Duration::from_secs(300));
    assert_eq!(ok("1h30m"), Duration::from_secs(5400));
    assert_eq!(ok("2d"), Duration::from_secs(2 * 86_400));
    for bad in ["", "m", "0s", "5y", "-3s", "99999999999999999999999999999999999999999", "8d"] {
        assert!(parse_duration(bad).is_err(), "{bad:?}");
    }
    let optional = AdminVerb::MaintenanceOn.prompt().unwrap();
    assert_eq!(optional.answer("  ").unwrap(), None);
    assert_eq!(optional.answer("1m").unwrap(), Some(Duration::from_secs(60)));
    let required = AdminVerb::Drain.prompt().unwrap();
    assert!(required.answer("").is_err());
}

fn any_target() -> impl Strategy<Value = Target> {
    prop_oneof![
        (0u64..5).prop_map(|i| Target::Node(testkit::node_id(i))),
        Just(Target::Cluster),
        prop_oneof![Just(1999u64), Just(2000)].prop_map(|d| Target::Daemon(OriginHash(d))),
        (6u64..9).prop_map(|m| Target::Migration(MigrationId(m))),
    ]
}

proptest! {
    /// Any verb with any target and any duration: a command exactly when the
    /// target is of the verb's kind, a duration it needs is there, and the
    /// daemon or migration is known; never a panic.
    #[test]
    fn any_input_makes_a_command_or_an_error(
        verb in proptest::sample::select(AdminVerb::ALL.to_vec()),
        target in any_target(),
        duration in proptest::option::of(0u64..u64::MAX),
    ) {
        let snap = snapshot();
        let duration = duration.map(Duration::from_millis);
        let kind_fits = match (verb.target(), target) {
            (TargetKind::Node, Target::Node(_)) | (TargetKind::Cluster, _) => true,
            (TargetKind::Daemon, Target::Daemon(d)) => snap.daemon(d).is_some(),
            (TargetKind::Migration, Target::Migration(m)) => m == MigrationId(7),
            _ => false,
        };
        let needs_duration = verb.prompt().is_some_and(|p| !p.optional);
        let want_ok = kind_fits && (duration.is_some() || !needs_duration);
        let got = verb.command(target, duration, &snap);
        prop_assert_eq!(got.is_ok(), want_ok, "{:?} {:?} {:?}: {:?}", verb, target, duration, got);
    }

    /// Whatever is typed, parsing answers without panicking; a number of
    /// seconds within a week reads back as itself.
    #[test]
    fn durations_never_panic_and_seconds_read_back(text in "\\PC{0,12}", secs in 1u64..604_800) {
        let _ = parse_duration(&text);
        prop_assert_eq!(parse_duration(&format!("{secs}s")).unwrap(), Duration::from_secs(secs));
        let (h, m) = (secs / 3600, secs % 3600 / 60);
        if h > 0 && m > 0 {
            prop_assert_eq!(
                parse_duration(&format!("{h}h{m}m")).unwrap(),
                Duration::from_secs(h * 3600 + m * 60)
            );
        }
    }
}
