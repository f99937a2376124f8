//! Input mapping: one keymap table drives both key handling and the help overlay,
//! so they cannot disagree. Mapping is pure: a key event and the current mode in,
//! an [`Action`] out.

use crossterm::event::{
    KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use deck_model::{AdminVerb, Msg, Tab};

/// What a key asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// A `deck-model` message.
    Msg(Msg),
    /// Leave the deck.
    Quit,
    /// Open the help overlay.
    Help,
    /// Start typing a search.
    StartSearch,
    /// Export the current page to a file.
    Export,
    /// Prepare an admin command on the selected node.
    Admin(AdminVerb),
    /// A character typed (into the search or a prompt).
    InputChar(char),
    /// Delete the last character typed.
    InputBackspace,
    /// Keep what was typed and stop typing (Enter).
    InputDone,
    /// Drop what was typed and stop typing (Esc).
    InputCancel,
    /// Scroll the help overlay.
    HelpScroll(isize),
    /// Open the cluster picker (bookmarks).
    OpenPicker,
    /// Move the picker's highlight.
    PickerMove(isize),
    /// Close the overlay or dialog.
    Dismiss,
    /// Confirm the dialog.
    Confirm,
}

/// The deck's input modes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Browsing tables.
    Normal,
    /// Typing a search.
    Search,
    /// Reading the help overlay.
    Help,
    /// Typing a duration for an admin command.
    Prompt,
    /// A confirm dialog is open.
    Confirm,
    /// A confirmed command is being signed and sent.
    Sending,
    /// The per-node outcome of a command is shown.
    Result,
    /// Picking a saved cluster to switch to.
    Picker,
}

/// Where a binding applies (for the footer and the help overlay).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every page.
    Global,
    /// One tab only.
    Tab(Tab),
}

/// What a binding does, in a form the table can hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// See [`Action::Quit`].
    Quit,
    /// See [`Action::Help`].
    Help,
    /// See [`Action::StartSearch`].
    Search,
    /// See [`Action::Export`].
    Export,
    /// See [`Action::OpenPicker`].
    Bookmarks,
    /// See [`Action::Admin`].
    Admin(AdminVerb),
    /// Go to the tab at this position of [`Tab::ALL`].
    GoTab(usize),
    /// Next tab.
    NextTab,
    /// Previous tab.
    PrevTab,
    /// Selection up.
    Up,
    /// Selection down.
    Down,
    /// Page up.
    PageUp,
    /// Page down.
    PageDown,
    /// First row.
    Home,
    /// Last row.
    End,
    /// Sort by the next column.
    SortNext,
    /// Reverse the sort.
    SortReverse,
    /// Natural order.
    ClearSort,
    /// Toggle follow.
    Follow,
    /// Toggle pause.
    Pause,
    /// Cycle the minimum log level.
    Level,
    /// Open the detail page.
    Open,
    /// Close the detail page (or clear the search).
    Close,
}

impl Command {
    /// The action this command performs.
    pub fn action(self) -> Action {
        let msg = match self {
            Command::Quit => return Action::Quit,
            Command::Help => return Action::Help,
            Command::Search => return Action::StartSearch,
            Command::Export => return Action::Export,
            Command::Bookmarks => return Action::OpenPicker,
            Command::Admin(v) => return Action::Admin(v),
            Command::GoTab(i) => Msg::Tab(Tab::ALL[i.min(Tab::ALL.len() - 1)]),
            Command::NextTab => Msg::NextTab,
            Command::PrevTab => Msg::PrevTab,
            Command::Up => Msg::Up,
            Command::Down => Msg::Down,
            Command::PageUp => Msg::PageUp,
            Command::PageDown => Msg::PageDown,
            Command::Home => Msg::Home,
            Command::End => Msg::End,
            Command::SortNext => Msg::SortNext,
            Command::SortReverse => Msg::SortReverse,
            Command::ClearSort => Msg::ClearSort,
            Command::Follow => Msg::ToggleFollow,
            Command::Pause => Msg::TogglePause,
            Command::Level => Msg::CycleLevel,
            Command::Open => Msg::Open,
            Command::Close => Msg::Close,
        };
        Action::Msg(msg)
    }
}

/// One row of the keymap.
#[derive(Clone, Copy, Debug)]
pub struct Binding {
    /// The key.
    pub code: KeyCode,
    /// Control or Alt, if needed (Shift is part of the character).
    pub mods: KeyModifiers,
    /// How the help overlay writes the key.
    pub label: &'static str,
    /// What it does.
    pub command: Command,
    /// One line of help.
    pub help: &'static str,
    /// Where it applies.
    pub scope: Scope,
}

const NONE: KeyModifiers = KeyModifiers::NONE;
const CTRL: KeyModifiers = KeyModifiers::CONTROL;

const fn key(code: KeyCode, label: &'static str, command: Command, help: &'static str) -> Binding {
    Binding { code, mods: NONE, label, command, help, scope: Scope::Global }
}

const fn on(
    tab: Tab,
    code: KeyCode,
    label: &'static str,
    command: Command,
    help: &'static str,
) -> Binding {
    Binding { code, mods: NONE, label, command, help, scope: Scope::Tab(tab) }
}

const fn ch(c: char) -> KeyCode {
    KeyCode::Char(c)
}

/// The keymap of normal mode, in help order.
pub const KEYMAP: &[Binding] = &[
    key(ch('q'), "q", Command::Quit, "quit"),
    Binding {
        code: ch('c'),
        mods: CTRL,
        label: "Ctrl-C",
        command: Command::Quit,
        help: "quit",
        scope: Scope::Global,
    },
    key(ch('?'), "?", Command::Help, "this help"),
    key(KeyCode::Tab, "Tab", Command::NextTab, "next tab"),
    key(KeyCode::BackTab, "Shift-Tab", Command::PrevTab, "previous tab"),
    key(KeyCode::Right, "Right", Command::NextTab, "next tab"),
    key(KeyCode::Left, "Left", Command::PrevTab, "previous tab"),
    key(ch('1'), "1", Command::GoTab(0), "NET.MAP"),
    key(ch('2'), "2", Command::GoTab(1), "NODES"),
    key(ch('3'), "3", Command::GoTab(2), "DAEMONS"),
    key(ch('4'), "4", Command::GoTab(3), "GROUPS"),
    key(ch('5'), "5", Command::GoTab(4), "DATAFORTS"),
    key(ch('6'), "6", Command::GoTab(5), "NRPC"),
    key(ch('7'), "7", Command::GoTab(6), "BLOBS"),
    key(ch('8'), "8", Command::GoTab(7), "MIGRATIONS"),
    key(ch('9'), "9", Command::GoTab(8), "CHAINS"),
    key(ch('0'), "0", Command::GoTab(9), "LOGS"),
    key(ch('a'), "a", Command::GoTab(10), "AUDIT"),
    key(ch('F'), "F", Command::GoTab(11), "FAILURES"),
    key(ch('k'), "k", Command::Up, "up"),
    key(KeyCode::Up, "Up", Command::Up, "up"),
    key(ch('j'), "j", Command::Down, "down"),
    key(KeyCode::Down, "Down", Command::Down, "down"),
    key(KeyCode::PageUp, "PgUp", Command::PageUp, "page up"),
    key(KeyCode::PageDown, "PgDn", Command::PageDown, "page down"),
    key(KeyCode::Home, "Home", Command::Home, "first row"),
    key(ch('g'), "g", Command::Home, "first row"),
    key(KeyCode::End, "End", Command::End, "last row, follow"),
    key(ch('G'), "G", Command::End, "last row, follow"),
    key(ch('/'), "/", Command::Search, "search (Enter keeps, Esc drops)"),
    key(ch('s'), "s", Command::SortNext, "sort by next column"),
    key(ch('S'), "S", Command::SortReverse, "reverse sort"),
    key(ch('o'), "o", Command::ClearSort, "natural order"),
    key(ch('f'), "f", Command::Follow, "follow new rows"),
    key(ch('p'), "p", Command::Pause, "pause / resume tails"),
    key(ch('e'), "e", Command::Export, "export page to CSV"),
    key(ch(':'), ":", Command::Bookmarks, "switch cluster (bookmarks)"),
    key(KeyCode::Enter, "Enter", Command::Open, "open node / daemon"),
    key(KeyCode::Esc, "Esc", Command::Close, "back"),
    on(Tab::Logs, ch('v'), "v", Command::Level, "minimum log level"),
    on(Tab::Nodes, ch('c'), "c", Command::Admin(AdminVerb::Cordon), "cordon node"),
    on(Tab::Nodes, ch('u'), "u", Command::Admin(AdminVerb::Uncordon), "uncordon node"),
    on(Tab::Nodes, ch('d'), "d", Command::Admin(AdminVerb::Drain), "drain node (window)"),
    on(Tab::Nodes, ch('m'), "m", Command::Admin(AdminVerb::MaintenanceOn), "maintenance on"),
    on(Tab::Nodes, ch('M'), "M", Command::Admin(AdminVerb::MaintenanceOff), "maintenance off"),
    on(Tab::Nodes, ch('r'), "r", Command::Admin(AdminVerb::RestartDaemons), "restart daemons"),
    on(Tab::Nodes, ch('x'), "x", Command::Admin(AdminVerb::ClearAvoid), "clear avoid list"),
    on(Tab::Nodes, ch('Z'), "Z", Command::Admin(AdminVerb::Freeze), "ICE freeze cluster (TTL)"),
    on(Tab::Nodes, ch('T'), "T", Command::Admin(AdminVerb::Thaw), "ICE thaw cluster"),
    on(Tab::Nodes, ch('X'), "X", Command::Admin(AdminVerb::FlushAvoid), "ICE flush avoid lists"),
    on(Tab::Daemons, ch('R'), "R", Command::Admin(AdminVerb::ForceRestart), "ICE force-restart"),
    on(
        Tab::Migrations,
        ch('K'),
        "K",
        Command::Admin(AdminVerb::KillMigration),
        "ICE kill migration",
    ),
];

fn matches(b: &Binding, ev: &KeyEvent) -> bool {
    let mods = ev.modifiers & (KeyModifiers::CONTROL | KeyModifiers::ALT);
    b.code == ev.code && b.mods == mods
}

/// The binding for `ev` in normal mode on `tab`, if any.
pub fn binding(tab: Tab, ev: &KeyEvent) -> Option<&'static Binding> {
    KEYMAP.iter().find(|b| {
        matches(b, ev)
            && match b.scope {
                Scope::Global => true,
                Scope::Tab(t) => t == tab,
            }
    })
}

/// Maps a key event to an action (pure). Key releases and repeats of nothing are
/// ignored.
pub fn map_key(mode: Mode, tab: Tab, ev: KeyEvent) -> Option<Action> {
    if ev.kind == KeyEventKind::Release {
        return None;
    }
    let ctrl = ev.modifiers.contains(KeyModifiers::CONTROL);
    match mode {
        Mode::Normal => binding(tab, &ev).map(|b| b.command.action()),
        Mode::Search | Mode::Prompt => match ev.code {
            KeyCode::Enter => Some(Action::InputDone),
            KeyCode::Esc => Some(Action::InputCancel),
            KeyCode::Backspace => Some(Action::InputBackspace),
            KeyCode::Char('c') if ctrl => Some(Action::InputCancel),
            KeyCode::Char(c) if !ctrl => Some(Action::InputChar(c)),
            _ => None,
        },
        Mode::Help => match ev.code {
            KeyCode::Char('q') => Some(Action::Quit),
            KeyCode::Char('c') if ctrl => Some(Action::Quit),
            KeyCode::Esc | KeyCode::Char('?') | KeyCode::Enter => Some(Action::Dismiss),
            KeyCode::Char('j') | KeyCode::Down => Some(Action::HelpScroll(1)),
            KeyCode::Char('k') | KeyCode::Up => Some(Action::HelpScroll(-1)),
            KeyCode::PageDown | KeyCode::Char(' ') => Some(Action::HelpScroll(10)),
            KeyCode::PageUp => Some(Action::HelpScroll(-10)),
            KeyCode::Home | KeyCode::Char('g') => Some(Action::HelpScroll(isize::MIN)),
            KeyCode::End | KeyCode::Char('G') => Some(Action::HelpScroll(isize::MAX)),
            _ => None,
        },
        Mode::Confirm => match ev.code {
            KeyCode::Char('y') | KeyCode::Enter => Some(Action::Confirm),
            KeyCode::Char('n') | KeyCode::Esc => Some(Action::Dismiss),
            KeyCode::Char('q') => Some(Action::Quit),
            KeyCode::Char('c') if ctrl => Some(Action::Quit),
            _ => None,
        },
        Mode::Picker => match ev.code {
            KeyCode::Enter => Some(Action::InputDone),
            KeyCode::Esc => Some(Action::InputCancel),
            KeyCode::Backspace => Some(Action::InputBackspace),
            KeyCode::Up => Some(Action::PickerMove(-1)),
            KeyCode::Down => Some(Action::PickerMove(1)),
            KeyCode::Char('c') if ctrl => Some(Action::InputCancel),
            KeyCode::Char(c) if !ctrl => Some(Action::InputChar(c)),
            _ => None,
        },
        Mode::Sending => match ev.code {
            KeyCode::Char('q') => Some(Action::Quit),
            KeyCode::Char('c') if ctrl => Some(Action::Quit),
            _ => None,
        },
        Mode::Result => match ev.code {
            KeyCode::Char('q') => Some(Action::Quit),
            KeyCode::Char('c') if ctrl => Some(Action::Quit),
            KeyCode::Esc | KeyCode::Enter | KeyCode::Char('y' | 'n' | ' ') => Some(Action::Dismiss),
            _ => None,
        },
    }
}

/// Rows the mouse wheel moves per notch.
pub const WHEEL_ROWS: isize = 3;

/// Maps a mouse event (pure): the wheel scrolls the table or the help overlay, a
/// click on the tab bar (row 1) switches tabs; `tab_at` finds the tab under a
/// column.
pub fn map_mouse(
    mode: Mode,
    ev: MouseEvent,
    tab_at: impl Fn(u16) -> Option<Tab>,
) -> Option<Action> {
    match (mode, ev.kind) {
        (Mode::Help, MouseEventKind::ScrollDown) => Some(Action::HelpScroll(WHEEL_ROWS)),
        (Mode::Help, MouseEventKind::ScrollUp) => Some(Action::HelpScroll(-WHEEL_ROWS)),
        (Mode::Normal, MouseEventKind::ScrollDown) => Some(Action::Msg(Msg::Move(WHEEL_ROWS))),
        (Mode::Normal, MouseEventKind::ScrollUp) => Some(Action::Msg(Msg::Move(-WHEEL_ROWS))),
        (Mode::Normal, MouseEventKind::Down(MouseButton::Left)) if ev.row == 1 => {
            tab_at(ev.column).map(|t| Action::Msg(Msg::Tab(t)))
        }
        _ => None,
    }
}

/// The bindings to show in the footer for `tab`: help first (so it is never cut
/// off), then the tab's own keys, then the common ones.
pub fn footer(tab: Tab) -> Vec<&'static Binding> {
    let global = |l: &&str| KEYMAP.iter().find(|b| b.label == *l && b.scope == Scope::Global);
    let help = ["?"].iter().filter_map(global);
    let own = KEYMAP.iter().filter(|b| b.scope == Scope::Tab(tab));
    let common = ["/", "s", "p", "Enter", "Esc", "q"].iter().filter_map(global);
    help.chain(own).chain(common).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn press(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn every_binding_maps_to_its_action_where_it_applies() {
        for b in KEYMAP {
            let tab = match b.scope {
                Scope::Global => Tab::NetMap,
                Scope::Tab(t) => t,
            };
            let ev = KeyEvent::new(b.code, b.mods);
            // The first binding of a key wins; every key appears once per scope.
            assert_eq!(binding(tab, &ev).map(|f| f.label), Some(b.label), "{}", b.label);
            assert_eq!(map_key(Mode::Normal, tab, ev), Some(b.command.action()), "{}", b.label);
        }
    }

    #[test]
    fn direct_tab_keys_and_shifted_letters() {
        assert_eq!(
            map_key(Mode::Normal, Tab::Nodes, press(ch('1'))),
            Some(Action::Msg(Msg::Tab(Tab::NetMap)))
        );
        assert_eq!(
            map_key(Mode::Normal, Tab::Nodes, press(ch('0'))),
            Some(Action::Msg(Msg::Tab(Tab::Logs)))
        );
        // Terminals report Shift with upper-case letters; the letter decides.
        let shifted = KeyEvent::new(ch('G'), KeyModifiers::SHIFT);
        assert_eq!(map_key(Mode::Normal, Tab::Logs, shifted), Some(Action::Msg(Msg::End)));
        let backtab = KeyEvent::new(KeyCode::BackTab, KeyModifiers::SHIFT);
        assert_eq!(map_key(Mode::Normal, Tab::Logs, backtab), Some(Action::Msg(Msg::PrevTab)));
    }

    #[test]
    fn admin_keys_only_on_nodes_and_ctrl_c_quits() {
        assert_eq!(
            map_key(Mode::Normal, Tab::Nodes, press(ch('c'))),
            Some(Action::Admin(AdminVerb::Cordon))
        );
        assert_eq!(map_key(Mode::Normal, Tab::Logs, press(ch('c'))), None);
        let ctrl_c = KeyEvent::new(ch('c'), KeyModifiers::CONTROL);
        for mode in [Mode::Normal, Mode::Help, Mode::Confirm, Mode::Sending, Mode::Result] {
            assert_eq!(map_key(mode, Tab::Nodes, ctrl_c), Some(Action::Quit), "{mode:?}");
            assert_eq!(map_key(mode, Tab::Nodes, press(ch('q'))), Some(Action::Quit), "{mode:?}");
        }
    }

    #[test]
    fn text_input_modes_type_and_esc_leaves_first() {
        for mode in [Mode::Search, Mode::Prompt] {
            assert_eq!(map_key(mode, Tab::Logs, press(ch('q'))), Some(Action::InputChar('q')));
            assert_eq!(map_key(mode, Tab::Logs, press(KeyCode::Esc)), Some(Action::InputCancel));
            assert_eq!(map_key(mode, Tab::Logs, press(KeyCode::Enter)), Some(Action::InputDone));
            let ctrl_c = KeyEvent::new(ch('c'), KeyModifiers::CONTROL);
            assert_eq!(map_key(mode, Tab::Logs, ctrl_c), Some(Action::InputCancel));
            let release = KeyEvent { kind: KeyEventKind::Release, ..press(ch('x')) };
            assert_eq!(map_key(mode, Tab::Logs, release), None);
        }
    }

    #[test]
    fn every_admin_verb_has_a_key_on_the_tab_of_its_target() {
        use AdminVerb::*;
        use deck_model::TargetKind;
        for verb in AdminVerb::ALL {
            let b = KEYMAP
                .iter()
                .find(|b| b.command == Command::Admin(verb))
                .unwrap_or_else(|| panic!("{verb:?} has no key"));
            let tab = match verb.target() {
                TargetKind::Node | TargetKind::Cluster => Tab::Nodes,
                TargetKind::Daemon => Tab::Daemons,
                TargetKind::Migration => Tab::Migrations,
            };
            assert_eq!(b.scope, Scope::Tab(tab), "{verb:?}");
            // ICE verbs say so in their help line.
            let ice = matches!(verb, Freeze | Thaw | FlushAvoid | ForceRestart | KillMigration);
            assert_eq!(b.help.starts_with("ICE"), ice, "{verb:?}");
        }
    }

    #[test]
    fn q_quits_from_detail_pages_and_every_mode_but_search() {
        for tab in Tab::ALL {
            assert_eq!(map_key(Mode::Normal, tab, press(ch('q'))), Some(Action::Quit));
        }
        assert_eq!(
            map_key(Mode::Normal, Tab::Nodes, press(KeyCode::Esc)),
            Some(Action::Msg(Msg::Close))
        );
    }

    #[test]
    fn wheel_scrolls_and_clicks_pick_tabs() {
        let at =
            |kind, column, row| MouseEvent { kind, column, row, modifiers: KeyModifiers::NONE };
        let none = |_| None;
        assert_eq!(
            map_mouse(Mode::Normal, at(MouseEventKind::ScrollDown, 5, 9), none),
            Some(Action::Msg(Msg::Move(WHEEL_ROWS)))
        );
        assert_eq!(
            map_mouse(Mode::Help, at(MouseEventKind::ScrollUp, 5, 9), none),
            Some(Action::HelpScroll(-WHEEL_ROWS))
        );
        let click = at(MouseEventKind::Down(MouseButton::Left), 12, 1);
        assert_eq!(
            map_mouse(Mode::Normal, click, |x| (x == 12).then_some(Tab::Nodes)),
            Some(Action::Msg(Msg::Tab(Tab::Nodes)))
        );
        assert_eq!(map_mouse(Mode::Confirm, click, |_| Some(Tab::Nodes)), None);
    }

    #[test]
    fn footer_lists_help_then_tab_keys() {
        let f = footer(Tab::Nodes);
        assert_eq!((f[0].label, f[1].label), ("?", "c"));
        assert!(f.iter().any(|b| b.label == "q"));
        assert!(footer(Tab::NetMap).iter().all(|b| b.scope == Scope::Global));
    }
}
