//! One test (or more) per tab and detail page, on small hand-built snapshots; the
//! summary, export and headless output; hostile text; vanished ids.

use std::sync::Arc;

use deck_model::testkit::{self, NOW_MS, node_id};
use deck_model::{
    AuditItem, ChainMark, DeckConfig, DeckData, Detail, ExportFormat, Msg, RowId, SortDir,
    SortSpec, Style, Tab, Table, View, ViewState, export_table, export_view, headless, summarize,
    update, views,
};
use mesh::migrate::MigrationSummary;
use mesh::{
    AdminState, DaemonHealth, FailureRecord, Health, LogLevel, MigrationId, MigrationPhase,
    OriginHash,
};
use mesh_auth::{AuditLedger, AuditOutcome, AuditRecord, CommandClass, OperatorId};

fn data() -> DeckData {
    let mut snap = testkit::snapshot(4, testkit::demo_daemons(4));
    snap.peers[0].admin = AdminState { cordoned: true, ..AdminState::default() };
    snap.peers[1].info.health = Health::Degraded { reason: "slow".into() };
    snap.peers[2].info.health = Health::Unreachable { reason: "silent".into() };
    testkit::data(snap, &DeckConfig::default())
}

/// Builds the current view and records it, as a front end would.
fn show(data: &DeckData, state: &mut ViewState) -> View {
    let view = views::build(data, state);
    state.observe(&view);
    view
}

fn on(tab: Tab) -> ViewState {
    let mut s = ViewState::new();
    update(&mut s, Msg::Tab(tab));
    update(&mut s, Msg::Resize { rows: 100 });
    s
}

fn column(table: &Table, name: &str) -> Vec<String> {
    let i = table.column(name).unwrap_or_else(|| panic!("no column {name}"));
    table.rows.iter().map(|r| r.cells[i].text.clone()).collect()
}

fn style_of(table: &Table, id: RowId, name: &str) -> Style {
    let i = table.column(name).unwrap();
    table.row(id).unwrap().cells[i].style
}

#[test]
fn net_map_shows_every_node_with_health_and_links() {
    let d = data();
    let v = show(&d, &mut on(Tab::NetMap));
    assert_eq!(v.table.total, 4);
    assert_eq!(column(&v.table, "ROLE"), ["self", "peer", "peer", "peer"]);
    assert_eq!(column(&v.table, "HEALTH"), ["healthy", "healthy", "degraded", "unreachable"]);
    assert_eq!(style_of(&v.table, RowId::Node(node_id(3)), "LINK"), Style::Err);
    assert_eq!(style_of(&v.table, RowId::Node(node_id(2)), "HEALTH"), Style::Warn);
    assert_eq!(column(&v.table, "STATE")[1], "cordoned");
    assert!(column(&v.table, "RTT")[1].ends_with("ms"));
    assert!(v.title.starts_with("NET.MAP 4"));
}

#[test]
fn nodes_show_resources_placement_and_admin_state() {
    let d = data();
    let v = show(&d, &mut on(Tab::Nodes));
    assert_eq!(v.table.total, 4);
    let placed: u64 = column(&v.table, "DAEMONS")
        .iter()
        .map(|s| s.split_whitespace().next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(placed, 13, "4 node agents and 9 group members");
    assert_eq!(column(&v.table, "CORDON"), ["no", "yes", "no", "no"]);
    assert!(column(&v.table, "CPU").iter().all(|c| c.ends_with('%')));
    assert!(column(&v.table, "RSS")[0].ends_with("MiB"));
}

#[test]
fn daemons_come_in_lineage_order_with_roles() {
    let d = data();
    let v = show(&d, &mut on(Tab::Daemons));
    assert_eq!(v.table.total, 13);
    let names = column(&v.table, "NAME");
    let roles = column(&v.table, "ROLE");
    assert_eq!(&names[..3], ["inference_worker#replica"; 3]);
    assert_eq!(&names[3..7], ["node_agent"; 4]);
    assert_eq!(&names[7..10], ["rollout_forge#fork@7"; 3]);
    assert_eq!(&roles[7..10], ["fork@7"; 3]);
    assert_eq!(&roles[10..], ["active", "warm", "warm"]);
}

#[test]
fn groups_have_the_right_roles_and_active_standby() {
    let d = data();
    let v = show(&d, &mut on(Tab::Groups));
    assert_eq!(
        column(&v.table, "GROUP"),
        ["inference_worker", "node_agent", "rollout_forge", "trainer_canary"]
    );
    assert_eq!(column(&v.table, "KIND"), ["replica", "solo", "fork", "standby"]);
    assert_eq!(column(&v.table, "FORK@")[2], "7");
    assert_eq!(column(&v.table, "ROLES")[3], "1 active, 2 warm");
    // The lowest id of the standby set (2020) is the active one.
    assert!(column(&v.table, "ACTIVE")[3].starts_with(&OriginHash(2020).short()));
}

#[test]
fn chains_list_groups_and_their_holders() {
    let d = data();
    let v = show(&d, &mut on(Tab::Chains));
    assert_eq!(v.table.total, 4 + 13);
    let chain = column(&v.table, "CHAIN");
    let tree = column(&v.table, "TREE");
    assert_eq!(chain[0], "inference_worker");
    assert_eq!(chain[1], "inference_worker#replica");
    assert_eq!(&tree[..5], ["", "├─", "├─", "└─", ""]);
    let parents = column(&v.table, "PARENT");
    assert!(parents.iter().any(|p| p == "seq 7"));
    assert!(parents.iter().any(|p| p.starts_with("backs ")));
}

#[test]
fn dataforts_show_capacity_use_and_traffic() {
    let mut d = data();
    let name: Arc<str> = "cache".into();
    d.forts.push(testkit::fort(&name, 0, 10));
    d.forts.push(deck_model::FortStats { evictions: 4, ..testkit::fort(&name, 1, 5) });
    let v = show(&d, &mut on(Tab::Dataforts));
    assert_eq!(v.table.total, 2);
    assert!(column(&v.table, "USE")[0].ends_with("75%"));
    assert_eq!(column(&v.table, "USE")[1], "unbounded");
    assert_eq!(column(&v.table, "EVICTIONS"), ["0", "4"]);
}

#[test]
fn nrpc_shows_the_tail_and_per_service_rates_errors_and_quantiles() {
    let mut d = data();
    let echo: Arc<str> = "demo.echo".into();
    let get: Arc<str> = "blobs.get".into();
    for n in 0..100 {
        d.calls.push(testkit::call(&echo, 2, 0, n, n % 10 != 0));
    }
    for n in 0..10 {
        d.calls.push(testkit::call(&get, 1, 3, n, true));
    }
    let v = show(&d, &mut on(Tab::Nrpc));
    assert_eq!(v.table.total, 110);
    assert!(v.table.follow, "the call tail follows new calls");
    assert_eq!(v.table.selected, Some(109));
    let aside = v.aside.expect("per-service figures");
    assert_eq!(column(&aside.table, "SERVICE"), ["blobs.get", "demo.echo"]);
    assert_eq!(column(&aside.table, "CALLS"), ["10", "100"]);
    assert_eq!(column(&aside.table, "ERRORS"), ["0", "10"]);
    assert_eq!(column(&aside.table, "ERR%")[1], "10%");
    assert_eq!(column(&aside.table, "RATE/S")[1], "10.0", "100 calls in a 10 s window");
    assert!(column(&aside.table, "P99")[1].ends_with("ms"));
}

#[test]
fn blobs_merge_every_adapter_with_size_age_and_heat() {
    let mut d = data();
    let a: Arc<str> = "a".into();
    let b: Arc<str> = "b".into();
    for n in 0..30 {
        d.blobs.push(testkit::blob(if n % 2 == 0 { &a } else { &b }, n % 3, n));
    }
    let mut s = on(Tab::Blobs);
    let v = show(&d, &mut s);
    assert_eq!(v.table.total, 30);
    assert_eq!(column(&v.table, "HASH")[0].len(), 12);
    // Hottest first.
    let heat = v.table.column("HEAT").unwrap();
    update(&mut s, Msg::Sort(heat));
    update(&mut s, Msg::Sort(heat));
    let v = show(&d, &mut s);
    assert_eq!(v.table.sort, Some(SortSpec { column: heat, dir: SortDir::Desc }));
    let reads: Vec<u64> = column(&v.table, "READS").iter().map(|r| r.parse().unwrap()).collect();
    assert!(reads[0] >= reads[29]);
    update(&mut s, Msg::Search("b".into()));
    let v = show(&d, &mut s);
    assert!(v.table.total < 30 && v.table.total > 0);
}

#[test]
fn migrations_show_in_flight_first_and_stalled_ones() {
    let mut d = data();
    let m = |id: u64, phase: MigrationPhase, started: u64, progress: u64| MigrationSummary {
        id: MigrationId(id),
        daemon: OriginHash(id),
        name: format!("compute-{id}"),
        source: node_id(0),
        target: node_id(1),
        phase,
        bytes_moved: 4096 * id,
        started_at_ms: started,
        last_progress_ms: progress,
    };
    let snap = Arc::make_mut(&mut d.snapshot);
    snap.migrations = vec![
        m(1, MigrationPhase::Complete, NOW_MS - 60_000, NOW_MS - 50_000),
        m(2, MigrationPhase::Transfer, NOW_MS - 20_000, NOW_MS - 19_000),
        m(3, MigrationPhase::Restore, NOW_MS - 2_000, NOW_MS - 500),
        m(
            4,
            MigrationPhase::Failed { reason: "target\x1b[31m died".into() },
            NOW_MS - 9_000,
            NOW_MS - 8_000,
        ),
    ];
    let v = show(&d, &mut on(Tab::Migrations));
    assert_eq!(
        column(&v.table, "ID"),
        [MigrationId(2), MigrationId(3), MigrationId(4), MigrationId(1)].map(|m| m.to_string())
    );
    let state = column(&v.table, "STATE");
    assert_eq!(state[0], "stalled");
    assert_eq!(state[1], "in flight");
    assert!(state[2].starts_with("failed: target\\u{1b}[31m died"), "{}", state[2]);
    assert_eq!(state[3], "done");
    assert_eq!(column(&v.table, "BYTES")[0], "8.0 KiB");
}

fn logs(d: &mut DeckData, n: u64) {
    for i in 0..n {
        let level =
            [LogLevel::Debug, LogLevel::Info, LogLevel::Warn, LogLevel::Error][(i % 4) as usize];
        d.logs.push(testkit::log(
            i % 3,
            i,
            level,
            &format!("line {i} {}", if i % 5 == 0 { "prefill" } else { "decode" }),
        ));
    }
}

#[test]
fn logs_filter_by_level_node_daemon_and_search_and_follow() {
    let mut d = data();
    logs(&mut d, 200);
    let mut s = on(Tab::Logs);
    update(&mut s, Msg::Resize { rows: 10 });
    let v = show(&d, &mut s);
    assert_eq!((v.table.total, v.table.rows.len(), v.table.first), (200, 10, 190));
    assert_eq!(v.table.selected_id(), Some(RowId::Log(199)), "follows the newest line");
    update(&mut s, Msg::Level(Some(LogLevel::Warn)));
    let v = show(&d, &mut s);
    assert_eq!(v.table.total, 100);
    assert!(column(&v.table, "LEVEL").iter().all(|l| l == "WARN" || l == "ERROR"));
    update(&mut s, Msg::Search("PREFILL".into()));
    let v = show(&d, &mut s);
    assert_eq!(v.table.total, 20);
    update(&mut s, Msg::LogNode(Some(node_id(1))));
    let v = show(&d, &mut s);
    assert!(v.table.total > 0 && v.table.total < 20);
    update(&mut s, Msg::LogNode(None));
    update(&mut s, Msg::LogDaemon(Some(OriginHash(1))));
    let v = show(&d, &mut s);
    assert!(v.table.total > 0);
    assert!(v.table.rows.iter().all(|r| matches!(r.id, RowId::Log(i) if i % 7 == 0)));
    // New lines keep the view at the bottom while following.
    update(&mut s, Msg::LogDaemon(None));
    update(&mut s, Msg::Level(None));
    update(&mut s, Msg::ClearSearch);
    logs(&mut d, 10);
    let v = show(&d, &mut s);
    assert_eq!(v.table.selected_id(), Some(RowId::Log(209)));
    // Moving up stops following; new lines no longer move the selection.
    update(&mut s, Msg::Up);
    let v = show(&d, &mut s);
    assert_eq!(v.table.selected_id(), Some(RowId::Log(208)));
    logs(&mut d, 5);
    let v = show(&d, &mut s);
    assert_eq!(v.table.selected_id(), Some(RowId::Log(208)));
    assert!(!v.table.follow);
}

#[test]
fn logs_sort_by_level_and_pause_holds_new_lines() {
    let mut d = data();
    logs(&mut d, 40);
    let mut s = on(Tab::Logs);
    update(&mut s, Msg::Sort(3));
    update(&mut s, Msg::Sort(3));
    update(&mut s, Msg::Home);
    let v = show(&d, &mut s);
    assert_eq!(column(&v.table, "LEVEL")[0], "ERROR");
    assert_eq!(v.table.rows[0].id, RowId::Log(3), "equal levels keep arrival order");
    update(&mut s, Msg::ClearSort);
    update(&mut s, Msg::End);
    let v = show(&d, &mut s);
    assert_eq!(v.table.total, 40);
    update(&mut s, Msg::TogglePause);
    logs(&mut d, 5);
    let v = show(&d, &mut s);
    assert_eq!(v.table.total, 40, "paused");
    assert!(v.notice.is_some());
    update(&mut s, Msg::TogglePause);
    let v = show(&d, &mut s);
    assert_eq!(v.table.total, 45);
}

fn audit(d: &mut DeckData) {
    let mut ledger = AuditLedger::new();
    let record = |target: &str, outcome: AuditOutcome| AuditRecord {
        ts_ms: NOW_MS - 1000,
        operators: vec![OperatorId(0xabcdef)],
        class: CommandClass::Routine,
        target: target.into(),
        payload_digest: [1; 32],
        nonce: [2; 16],
        outcome,
    };
    let a = ledger.append(record("node:0x1", AuditOutcome::Accepted)).unwrap().clone();
    let b = ledger
        .append(record(
            "node:0x2",
            AuditOutcome::Rejected {
                code: "not_authorized".into(),
                detail: "no registered operator signed".into(),
            },
        ))
        .unwrap()
        .clone();
    d.audit.push(AuditItem { node: node_id(1), entry: a, chain: ChainMark::Verified });
    d.audit.push(AuditItem { node: node_id(1), entry: b, chain: ChainMark::Broken });
}

#[test]
fn audit_shows_outcome_reason_and_chain_marker() {
    let mut d = data();
    audit(&mut d);
    let v = show(&d, &mut on(Tab::Audit));
    assert_eq!(column(&v.table, "OUTCOME"), ["accepted", "rejected"]);
    assert_eq!(column(&v.table, "REASON")[1], "not_authorized: no registered operator signed");
    assert_eq!(column(&v.table, "CHAIN"), ["verified", "BROKEN"]);
    assert_eq!(style_of(&v.table, RowId::Audit(1), "CHAIN"), Style::Err);
    let mut s = on(Tab::Audit);
    update(&mut s, Msg::Search("not_auth".into()));
    assert_eq!(show(&d, &mut s).table.total, 1);
}

#[test]
fn failures_are_listed_and_searchable() {
    let mut d = data();
    for i in 0..5 {
        d.failures.push(FailureRecord {
            seq: i,
            ts_ms: NOW_MS - 100 + i,
            node: node_id(i % 2),
            kind: if i == 3 { "migration_failed".into() } else { "daemon_panic".into() },
            subject: format!("worker-{i}"),
            message: "boom\nagain".into(),
        });
    }
    let mut s = on(Tab::Failures);
    let v = show(&d, &mut s);
    assert_eq!(v.table.total, 5);
    assert_eq!(column(&v.table, "MESSAGE")[0], "boom\\nagain");
    update(&mut s, Msg::Search("migration".into()));
    assert_eq!(show(&d, &mut s).table.total, 1);
}

#[test]
fn detail_pages_for_a_node_and_a_daemon() {
    let mut d = data();
    logs(&mut d, 50);
    let mut s = on(Tab::Nodes);
    show(&d, &mut s);
    update(&mut s, Msg::Down);
    show(&d, &mut s);
    update(&mut s, Msg::Down);
    show(&d, &mut s);
    update(&mut s, Msg::Open);
    let v = show(&d, &mut s);
    assert_eq!(v.detail, Some(Detail::Node(node_id(2))));
    assert!(v.title.contains(&node_id(2).to_string()));
    let fields = column(&v.table, "FIELD");
    assert!(fields.contains(&"health reason".to_owned()));
    let aside = v.aside.unwrap();
    assert!(aside.title.starts_with("DAEMONS on"));
    assert!(aside.table.total >= 1);

    update(&mut s, Msg::OpenDaemon(OriginHash(1)));
    let snap = Arc::make_mut(&mut d.snapshot);
    snap.daemons.push(testkit::daemon("solo\x07worker", 1, 1));
    snap.daemons[0].health = DaemonHealth::Degraded { reason: "queue full".into() };
    let v = show(&d, &mut s);
    assert_eq!(v.detail, Some(Detail::Daemon(OriginHash(1))));
    assert!(v.title.contains("solo\\u{7}worker"), "{}", v.title);
    let aside = v.aside.unwrap();
    assert!(aside.table.total > 0, "its log lines");
    update(&mut s, Msg::Close);
    assert_eq!(show(&d, &mut s).detail, None);
}

#[test]
fn a_vanished_detail_target_is_dropped() {
    let d = data();
    let mut s = on(Tab::Daemons);
    update(&mut s, Msg::OpenDaemon(OriginHash(999_999)));
    let v = show(&d, &mut s);
    assert_eq!(v.detail, None);
    assert!(v.notice.unwrap().text.contains("no longer"));
    assert_eq!(s.detail(), None);
    assert_eq!(v.tab, Tab::Daemons);
}

#[test]
fn hostile_names_are_escaped_and_capped() {
    let mut daemons = testkit::demo_daemons(2);
    daemons.push(testkit::daemon(&format!("evil\x1b]0;pwned\x07{}", "x".repeat(5000)), 77, 1));
    let mut d = testkit::data(testkit::snapshot(2, daemons), &DeckConfig::default());
    d.logs.push(testkit::log(0, 0, LogLevel::Error, &format!("\x1b[2J{}", "y".repeat(100_000))));
    for tab in Tab::ALL {
        let v = views::build_full(&d, &ViewState::new(), tab);
        for row in &v.table.rows {
            for cell in &row.cells {
                assert!(!cell.text.chars().any(char::is_control), "{tab:?}: {:?}", cell.text);
                assert!(cell.text.chars().count() <= deck_model::text::MAX_MESSAGE, "{tab:?}");
            }
        }
    }
}

#[test]
fn summary_counts_nodes_daemons_calls_and_freeze() {
    let mut d = data();
    let snap = Arc::make_mut(&mut d.snapshot);
    snap.daemons[0].health = DaemonHealth::Unhealthy { reason: "x".into() };
    snap.daemons[1].crash_looping = true;
    snap.frozen_until_ms = Some(NOW_MS + 90_000);
    let echo: Arc<str> = "demo.echo".into();
    for n in 0..50 {
        d.calls.push(testkit::call(&echo, 2, 0, n, n != 7));
    }
    let s = summarize(&d);
    assert_eq!((s.nodes, s.nodes_healthy, s.nodes_degraded, s.nodes_unreachable), (4, 2, 1, 1));
    assert_eq!((s.daemons, s.daemons_unhealthy, s.crash_looping), (13, 1, 1));
    assert_eq!(s.frozen_for_ms, Some(90_000));
    assert!((s.calls_per_s - 5.0).abs() < 1e-9);
    assert_eq!(s.call_errors, 1);
    let cells = s.cells(&ViewState::new());
    assert!(cells.iter().any(|c| c.text == "FROZEN 1m30s" && c.style == Style::Err));
    assert!(cells.iter().any(|c| c.text.starts_with("op ")));
}

#[test]
fn export_writes_every_row_and_never_overwrites() {
    let mut d = data();
    logs(&mut d, 30);
    let dir = tempfile::tempdir().unwrap();
    let mut s = on(Tab::Logs);
    update(&mut s, Msg::Resize { rows: 5 });
    show(&d, &mut s);
    let jsonl = dir.path().join("logs.jsonl");
    assert_eq!(export_view(&d, &s, &jsonl).unwrap(), 30);
    let text = std::fs::read_to_string(&jsonl).unwrap();
    assert_eq!(text.lines().count(), 30);
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first["id"], "log:0");
    assert_eq!(first["LEVEL"], "DEBUG");
    let err = export_view(&d, &s, &jsonl).unwrap_err();
    assert!(matches!(err, deck_model::DeckError::ExportExists { .. }), "{err}");
    assert_eq!(std::fs::read_to_string(&jsonl).unwrap(), text, "not touched");

    let csv = dir.path().join("nodes.csv");
    let v = views::build_full(&d, &on(Tab::Nodes), Tab::Nodes);
    assert_eq!(export_table(&v.table, &csv, ExportFormat::Csv).unwrap(), 4);
    let text = std::fs::read_to_string(&csv).unwrap();
    assert!(text.starts_with("ID,NODE,HEALTH,"));
    assert_eq!(text.lines().count(), 5);

    let bad = dir.path().join("missing-dir").join("x.csv");
    let err = export_table(&v.table, &bad, ExportFormat::Csv).unwrap_err();
    assert!(matches!(err, deck_model::DeckError::Export { .. }));
    assert!(err.to_string().contains("missing-dir"), "{err}");
}

#[test]
fn headless_json_has_every_tab_and_the_summary() {
    let mut d = data();
    logs(&mut d, 3);
    audit(&mut d);
    let doc = headless::data_json(&d);
    for tab in Tab::ALL {
        assert!(doc["tabs"][tab.title()]["columns"].is_array(), "{tab:?}");
    }
    assert_eq!(doc["tabs"]["DAEMONS"]["rows"].as_array().unwrap().len(), 13);
    assert_eq!(doc["tabs"]["LOGS"]["total"], 3);
    assert_eq!(doc["summary"]["nodes"], 4);
    assert!(doc["tabs"]["NRPC"]["aside"]["table"]["columns"].is_array());
    assert_eq!(doc["operator"], OperatorId(0xdeca).to_hex());
}

/// C1 controls and bidi characters of every kind JSON leaves raw.
const DECEPTIVE: &str = "\u{85}\u{9b}31m\u{202e}\u{202a}\u{2066}\u{2069}\u{200e}\u{200f}\u{61c}";

fn assert_no_raw_deceptive(text: &str) {
    for c in text.chars() {
        assert!(
            !deck_model::text::is_deceptive(c) && (!c.is_control() || c == '\n'),
            "raw U+{:04X} in the JSON output",
            c as u32
        );
    }
}

#[test]
fn headless_json_escapes_c1_and_bidi_and_parses_back_to_the_same_values() {
    use deck_model::{CommitReport, NodeOutcome, NodeResult};
    let name = format!("evil{DECEPTIVE}worker\u{1b}[2J");
    let line = format!("gpu-0 {DECEPTIVE} exe.txt\u{202e}");
    let mut daemons = testkit::demo_daemons(2);
    daemons.push(testkit::daemon(&name, 77, 1));
    let mut d = testkit::data(testkit::snapshot(2, daemons), &DeckConfig::default());
    d.logs.push(testkit::log(0, 0, LogLevel::Error, &line));
    // What nodes and the RPC layer said, kept raw in the data.
    d.streams.insert(
        node_id(1),
        deck_model::NodeStreams { last_error: Some(line.clone()), ..Default::default() },
    );
    d.actions.push_back(CommitReport {
        verb: "cordon",
        target: "node:0x01".into(),
        payload_digest: [0; 32],
        signers: vec![],
        sent_at_ms: NOW_MS,
        outcomes: vec![NodeOutcome {
            node: node_id(1),
            result: NodeResult::Delivered(mesh::AdminOutcome::Rejected {
                code: name.clone(),
                reason: line.clone(),
                audit_seq: None,
            }),
        }],
    });

    let doc = headless::data_json(&d);
    let text = headless::to_json_text(&doc);
    assert_no_raw_deceptive(&text);
    for escape in ["\\u0085", "\\u009b", "\\u202e", "\\u2066", "\\u200f", "\\u061c"] {
        assert!(text.contains(escape), "{escape} in the output");
    }
    let back: serde_json::Value = serde_json::from_str(&text).expect("still JSON");
    assert_eq!(back, doc, "the same values once parsed");
    let outcome = &back["actions"][0]["outcomes"][0]["result"];
    assert_eq!(outcome["code"], name.as_str(), "the node's own words, unchanged");
    assert_eq!(outcome["reason"], line.as_str());
    assert_eq!(back["streams"][node_id(1).to_hex()]["last_error"], line.as_str());
    // Tab cells were escaped text already ([`text::clean`]).
    let logs = back["tabs"]["LOGS"]["rows"].to_string();
    assert!(logs.contains("\\\\u{202e}"), "{logs}");
    let daemons = back["tabs"]["DAEMONS"]["rows"].to_string();
    assert!(daemons.contains("evil\\\\u{85}\\\\u{9b}31m"), "{daemons}");
}

#[test]
fn json_lines_export_escapes_c1_and_bidi() {
    use deck_model::{Cell, Column, Row, RowId, Table};
    let raw = format!("line {DECEPTIVE} end");
    let table = Table {
        columns: vec![Column::left("MESSAGE", 40)],
        rows: vec![Row { id: RowId::Log(0), cells: vec![Cell::new(raw.clone())] }],
        total: 1,
        unfiltered: 1,
        ..Table::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.jsonl");
    assert_eq!(export_table(&table, &path, ExportFormat::JsonLines).unwrap(), 1);
    let text = std::fs::read_to_string(&path).unwrap();
    assert_no_raw_deceptive(&text);
    let row: serde_json::Value = serde_json::from_str(text.trim_end()).unwrap();
    assert_eq!(row["MESSAGE"], raw.as_str());
}
