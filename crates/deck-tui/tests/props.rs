//! Property tests: any terminal size and any key sequence, in any mode, render
//! without panicking, and the model's invariants hold after every key.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use deck_model::{DeckData, PendingAction, Target, testkit};
use deck_tui::app::{App, Effect, Settings};
use deck_tui::keys::{self, Action, Mode};
use deck_tui::{render, ui};
use proptest::prelude::*;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use std::sync::OnceLock;

fn data() -> &'static DeckData {
    static DATA: OnceLock<DeckData> = OnceLock::new();
    DATA.get_or_init(|| testkit::big(5, 20, 200, 30))
}

fn draw(app: &mut App, w: u16, h: u16) {
    let mut term = Terminal::new(TestBackend::new(w, h)).expect("backend");
    let (view, status) = ui::prepare(data(), app, w, h);
    term.draw(|f| render::draw(f, app, &view, &status)).expect("draw");
}

/// Keys worth pressing: every key of the keymap (of every mode), plus text,
/// dialog and navigation keys, with and without Ctrl.
fn key() -> impl Strategy<Value = KeyEvent> {
    let codes: Vec<KeyCode> = keys::KEYMAP
        .iter()
        .map(|b| b.key.code())
        .chain([
            KeyCode::Char('y'),
            KeyCode::Char('n'),
            KeyCode::Char('x'),
            KeyCode::Char('5'),
            KeyCode::Char('m'),
            KeyCode::Backspace,
            KeyCode::Enter,
            KeyCode::Esc,
            KeyCode::Up,
            KeyCode::Down,
        ])
        .collect();
    (proptest::sample::select(codes), any::<bool>()).prop_map(|(code, ctrl)| {
        KeyEvent::new(code, if ctrl { KeyModifiers::CONTROL } else { KeyModifiers::NONE })
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn any_size_and_any_keys_never_panic(
        sizes in proptest::collection::vec((0u16..240, 0u16..80), 1..4),
        presses in proptest::collection::vec(key(), 0..60),
    ) {
        let mut app = App::new(Settings { color: true, hint: Some("hint".into()) });
        for (i, ev) in presses.into_iter().enumerate() {
            let Some(action) = keys::map_key(app.mode, app.state.tab(), ev) else { continue };
            if action == Action::Quit {
                prop_assert!(app.mode != Mode::Search && app.mode != Mode::Prompt);
                continue;
            }
            match app.apply(action) {
                Some(Effect::Prepare(_, target, _)) => {
                    let command = match target {
                        Target::Node(node) => mesh::AdminCommand::Cordon { node },
                        _ => mesh::AdminCommand::Thaw,
                    };
                    app.ask(PendingAction::prepare(command, &data().snapshot));
                }
                Some(Effect::Commit) => app.committed(Err("not sent in tests".into())),
                Some(Effect::OpenPicker) => app.open_picker(Vec::new()),
                _ => {}
            }
            // A dialog is open exactly when its mode says so.
            prop_assert_eq!(app.prompt.is_some(), app.mode == Mode::Prompt);
            let (w, h) = sizes[i % sizes.len()];
            draw(&mut app, w, h);
        }
    }
}
