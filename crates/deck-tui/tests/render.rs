//! Screens drawn into ratatui's `TestBackend` from deterministic test data and
//! compared with insta snapshots; tiny sizes must not panic.

use deck_model::{DeckData, Msg, PendingAction, Tab, Target, TargetKind, testkit, update};
use deck_tui::app::{App, Settings};
use deck_tui::keys::{Action, Mode};
use deck_tui::render;
use deck_tui::ui::prepare;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

fn data() -> DeckData {
    testkit::big(6, 24, 300, 40)
}

fn app() -> App {
    App::new(Settings { color: true, hint: None })
}

fn screen(data: &DeckData, app: &mut App, w: u16, h: u16) -> Terminal<TestBackend> {
    let mut term = Terminal::new(TestBackend::new(w, h)).expect("test backend");
    let (view, status) = prepare(data, app, w, h);
    term.draw(|f| render::draw(f, app, &view, &status)).expect("draw");
    term
}

fn on(tab: Tab) -> App {
    let mut app = app();
    update(&mut app.state, Msg::Tab(tab));
    app
}

const SIZES: [(u16, u16); 2] = [(80, 24), (160, 48)];

#[test]
fn tabs() {
    let data = data();
    for tab in Tab::ALL {
        for (w, h) in SIZES {
            let mut app = on(tab);
            let term = screen(&data, &mut app, w, h);
            let name = format!("{}_{w}x{h}", tab.title().to_ascii_lowercase().replace('.', ""));
            insta::assert_snapshot!(name, term.backend());
        }
    }
}

#[test]
fn sorted_and_searched_daemons() {
    let data = data();
    let mut app = on(Tab::Daemons);
    screen(&data, &mut app, 80, 24);
    app.apply(Action::Msg(Msg::SortNext));
    app.apply(Action::Msg(Msg::SortNext));
    app.apply(Action::Msg(Msg::SortReverse));
    app.apply(Action::StartSearch);
    for c in "infer".chars() {
        app.apply(Action::InputChar(c));
    }
    app.apply(Action::Msg(Msg::Down));
    let term = screen(&data, &mut app, 80, 24);
    insta::assert_snapshot!("daemons_sorted_search_80x24", term.backend());
}

#[test]
fn node_detail() {
    let data = data();
    for (w, h) in SIZES {
        let mut app = on(Tab::Nodes);
        screen(&data, &mut app, w, h);
        app.apply(Action::Msg(Msg::Down));
        app.apply(Action::Msg(Msg::Open));
        let term = screen(&data, &mut app, w, h);
        insta::assert_snapshot!(format!("node_detail_{w}x{h}"), term.backend());
    }
}

#[test]
fn daemon_detail() {
    let data = data();
    for (w, h) in SIZES {
        let mut app = on(Tab::Daemons);
        screen(&data, &mut app, w, h);
        app.apply(Action::Msg(Msg::Down));
        app.apply(Action::Msg(Msg::Open));
        assert!(TargetKind::Daemon.selected(&app.state).is_some());
        let term = screen(&data, &mut app, w, h);
        insta::assert_snapshot!(format!("daemon_detail_{w}x{h}"), term.backend());
    }
}

/// A report as the nodes of `data` would answer a freeze: all but one accept.
fn report(data: &DeckData) -> deck_model::CommitReport {
    use deck_model::{NodeOutcome, NodeResult};
    use mesh::AdminOutcome;
    let nodes = std::iter::once(data.snapshot.this_node.node_id)
        .chain(data.snapshot.peers.iter().map(|p| p.info.node_id));
    let outcomes = nodes
        .enumerate()
        .map(|(i, node)| NodeOutcome {
            node,
            result: if i == 2 {
                NodeResult::Delivered(AdminOutcome::Rejected {
                    code: "cooldown_active".into(),
                    reason: "cooldown_active: target cools down for 2000 ms more".into(),
                    audit_seq: Some(7),
                })
            } else {
                NodeResult::Delivered(AdminOutcome::Accepted {
                    audit_seq: 7,
                    effect: "frozen for 300 s".into(),
                })
            },
        })
        .collect();
    deck_model::CommitReport {
        verb: "freeze",
        target: "cluster".into(),
        payload_digest: [0; 32],
        signers: Vec::new(),
        sent_at_ms: 0,
        outcomes,
    }
}

#[test]
fn prompt_sending_and_result_dialogs() {
    use deck_model::AdminVerb;
    let data = data();
    let mut app = on(Tab::Nodes);
    screen(&data, &mut app, 80, 24);
    assert_eq!(app.apply(Action::Admin(AdminVerb::Freeze)), None);
    app.apply(Action::InputChar('x'));
    app.apply(Action::InputDone);
    let term = screen(&data, &mut app, 80, 24);
    insta::assert_snapshot!("prompt_freeze_error_80x24", term.backend());

    app.apply(Action::InputCancel);
    app.ask(PendingAction::prepare(mesh::AdminCommand::Freeze { ttl_ms: 300_000 }, &data.snapshot));
    assert_eq!(app.apply(Action::Confirm), Some(deck_tui::app::Effect::Commit));
    assert_eq!(app.mode, Mode::Sending);
    let term = screen(&data, &mut app, 80, 24);
    insta::assert_snapshot!("sending_freeze_80x24", term.backend());

    app.committed(Ok(report(&data)));
    assert_eq!(app.mode, Mode::Result);
    for (w, h) in SIZES {
        let term = screen(&data, &mut app, w, h);
        insta::assert_snapshot!(format!("result_freeze_{w}x{h}"), term.backend());
    }
    // Small screens cut the list and say how many are left out.
    let term = screen(&data, &mut app, 60, 9);
    let text: String = term.backend().buffer().content().iter().map(|c| c.symbol()).collect();
    assert!(text.contains("more"), "{text}");
    app.apply(Action::Dismiss);
    assert_eq!((app.mode, app.outcome.is_none()), (Mode::Normal, true));
}

/// Every character on screen, row after row.
fn text_of(term: &Terminal<TestBackend>) -> String {
    term.backend().buffer().content().iter().map(|c| c.symbol()).collect()
}

#[test]
fn result_dialog_shows_what_nodes_said_escaped() {
    use deck_model::NodeResult;
    use deck_model::text::is_deceptive;
    use mesh::AdminOutcome;
    // A window title, a screen clear, a C1 CSI, a bidi override and an isolate.
    let hostile = "\u{1b}]0;pwned\u{7}\u{1b}[2J\u{9b}31m\u{202e}gnp.exe\u{2066}\r\nok";
    let shown = "\\u{1b}]0;pwned\\u{7}\\u{1b}[2J\\u{9b}31m";
    let data = data();
    let mut report = report(&data);
    report.outcomes[0].result =
        NodeResult::Delivered(AdminOutcome::Accepted { audit_seq: 1, effect: hostile.into() });
    report.outcomes[1].result = NodeResult::NotDelivered(hostile.into());
    report.outcomes[2].result = NodeResult::Delivered(AdminOutcome::Rejected {
        code: hostile.into(),
        reason: hostile.repeat(200),
        audit_seq: None,
    });
    let check = |term: &Terminal<TestBackend>, at: &str| {
        let text = text_of(term);
        let bad = text.chars().find(|c| c.is_control() || is_deceptive(*c));
        assert_eq!(bad, None, "{at}: a raw control or bidi character on screen");
        assert!(text.contains(shown), "{at}: the escaped text is shown:\n{text}");
    };
    let mut app = on(Tab::Nodes);
    app.committed(Ok(report.clone()));
    assert_eq!(app.mode, Mode::Result);
    for (w, h) in SIZES {
        check(&screen(&data, &mut app, w, h), &format!("report {w}x{h}"));
    }
    // The pure view says the same, on every line that quotes a node.
    let lines = render::result_lines(app.outcome.as_ref().unwrap());
    assert_eq!(lines.len(), 1 + report.outcomes.len());
    for line in &lines[1..4] {
        assert!(line.text.contains(shown), "{:?}", line.text);
        assert!(!line.text.chars().any(|c| c.is_control() || is_deceptive(c)));
        assert!(line.text.chars().count() < 1200, "capped");
    }

    app.apply(Action::Dismiss);
    app.committed(Err(format!("node said {hostile}")));
    for (w, h) in SIZES {
        check(&screen(&data, &mut app, w, h), &format!("not sent {w}x{h}"));
    }
    let toast = &app.toast.as_ref().expect("a toast").cell.text;
    assert!(toast.starts_with("not sent: node said ") && toast.contains(shown), "{toast}");
}

#[test]
fn help_overlay_scrolls_on_small_screens() {
    let data = data();
    for (w, h) in SIZES {
        let mut app = app();
        app.apply(Action::Help);
        app.apply(Action::HelpScroll(3));
        let term = screen(&data, &mut app, w, h);
        insta::assert_snapshot!(format!("help_{w}x{h}"), term.backend());
    }
}

#[test]
fn confirm_dialog() {
    let data = data();
    let mut app = on(Tab::Nodes);
    screen(&data, &mut app, 80, 24);
    let Some(Target::Node(node)) = TargetKind::Node.selected(&app.state) else {
        panic!("a node is selected")
    };
    let pending = PendingAction::prepare(mesh::AdminCommand::Cordon { node }, &data.snapshot);
    app.ask(pending);
    assert_eq!(app.mode, Mode::Confirm);
    let term = screen(&data, &mut app, 80, 24);
    insta::assert_snapshot!("confirm_cordon_80x24", term.backend());
}

#[test]
fn tiny_sizes_never_panic() {
    let data = data();
    let sizes = [(1, 1), (10, 3), (0, 0), (23, 6), (24, 7), (30, 8), (200, 2), (2, 200), (119, 10)];
    for (w, h) in sizes {
        for tab in Tab::ALL {
            for mode in 0..3 {
                let mut app = on(tab);
                match mode {
                    1 => {
                        app.apply(Action::Help);
                        app.apply(Action::HelpScroll(isize::MAX));
                    }
                    2 => {
                        let node = testkit::node_id(1);
                        app.ask(PendingAction::prepare(
                            mesh::AdminCommand::Cordon { node },
                            &data.snapshot,
                        ));
                    }
                    _ => {}
                }
                screen(&data, &mut app, w, h);
                app.apply(Action::Msg(Msg::Open));
                screen(&data, &mut app, w, h);
            }
        }
    }
    let mut app = app();
    let term = screen(&data, &mut app, 10, 3);
    insta::assert_snapshot!("too_small_10x3", term.backend());
}

#[test]
fn tab_clicks_hit_the_label_drawn() {
    for (w, h) in [(80u16, 24u16), (160, 48)] {
        let data = data();
        for tab in Tab::ALL {
            let mut app = on(tab);
            let term = screen(&data, &mut app, w, h);
            let buf = term.backend().buffer();
            let row: String = (0..w).map(|x| buf[(x, 1)].symbol().to_owned()).collect();
            // The current tab's own label is under the cursor where it is drawn.
            let label = format!(":{}", tab.title());
            let col = row.find(&label).expect("current tab visible");
            let x = u16::try_from(row[..col].chars().count()).unwrap();
            assert_eq!(render::tab_at(tab, w, x), Some(tab), "{w}x{h} {row}");
        }
    }
}

/// A cheap deterministic fuzz: random keys at random sizes never panic.
#[test]
fn random_keys_at_random_sizes_never_panic() {
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    let data = data();
    let mut app = app();
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let extra = [KeyCode::Char('x'), KeyCode::Char('y'), KeyCode::Char('n'), KeyCode::Backspace];
    // Normal mode's keys (the same sequence as when the keymap held only those).
    let normal: Vec<KeyCode> = deck_tui::keys::help_bindings().map(|b| b.key.code()).collect();
    for step in 0..1500 {
        let r = next();
        let code = if r % 5 == 0 {
            extra[(r / 5 % extra.len() as u64) as usize]
        } else {
            normal[(r / 5 % normal.len() as u64) as usize]
        };
        let ev = KeyEvent::new(code, KeyModifiers::NONE);
        if let Some(action) = deck_tui::keys::map_key(app.mode, app.state.tab(), ev) {
            if action == Action::Quit {
                continue;
            }
            match app.apply(action) {
                Some(deck_tui::app::Effect::Prepare(_, target, _)) => {
                    let command = match target {
                        Target::Node(node) => mesh::AdminCommand::Cordon { node },
                        _ => mesh::AdminCommand::Thaw,
                    };
                    app.ask(PendingAction::prepare(command, &data.snapshot));
                }
                Some(deck_tui::app::Effect::Commit) if step % 2 == 0 => {
                    app.committed(Ok(report(&data)));
                }
                Some(deck_tui::app::Effect::Commit) => app.committed(Err("test".into())),
                _ => {}
            }
        }
        if step % 7 == 0 {
            let (w, h) = ((next() % 220) as u16, (next() % 70) as u16);
            screen(&data, &mut app, w, h);
        }
    }
}
