//! Input mapping: one keymap table ([`KEYMAP`]) holds every key of every mode
//! with the action it performs and its words, and drives key handling, the help
//! overlay and the footer, so they cannot disagree. Mapping is pure: a key event
//! and the current mode in, an [`Action`] out.

use Action::{
    Confirm, Dismiss, HelpScroll, InputBackspace, InputCancel, InputDone, PickerMove, Quit,
};
use KeyCode::{Backspace, Down, Enter, Esc, Up};
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

impl Mode {
    /// Whether characters typed in this mode are text (the search, a duration,
    /// the picker's filter) rather than keys: any character without Control
    /// that no binding of the mode takes is [`Action::InputChar`].
    pub fn types_text(self) -> bool {
        matches!(self, Mode::Search | Mode::Prompt | Mode::Picker)
    }

    /// The keys this mode's footer names, by label, in order (their words come
    /// from the mode's first binding with that label).
    fn footer_labels(self) -> &'static [&'static str] {
        match self {
            Mode::Normal => &["/", "s", "p", "Enter", "Esc", "q"],
            Mode::Search | Mode::Prompt => &["Enter", "Esc"],
            Mode::Help => &["j/k", "Esc", "q"],
            Mode::Confirm => &["y", "n/Esc"],
            Mode::Sending => &["q"],
            Mode::Result => &["Enter/Esc", "q"],
            Mode::Picker => &["Enter", "Up/Down", "Esc"],
        }
    }
}

/// Where a binding applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Normal mode, every page.
    Global,
    /// Normal mode, one tab only.
    Tab(Tab),
    /// A mode other than [`Mode::Normal`] (a prompt, a dialog, an overlay).
    Mode(Mode),
}

/// Which key events a binding answers. Shift is part of the character (`G`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    /// This key with exactly these of Control and Alt held.
    With(KeyCode, KeyModifiers),
    /// This key, whatever is held.
    Any(KeyCode),
    /// This character with Control held (Alt may be too).
    Ctrl(char),
}

impl Key {
    /// Whether `ev` is this key.
    pub fn matches(self, ev: &KeyEvent) -> bool {
        let held = ev.modifiers & (KeyModifiers::CONTROL | KeyModifiers::ALT);
        match self {
            Key::With(code, mods) => ev.code == code && held == mods,
            Key::Any(code) => ev.code == code,
            Key::Ctrl(c) => ev.code == KeyCode::Char(c) && held.contains(KeyModifiers::CONTROL),
        }
    }

    /// The key to press for this binding.
    pub fn code(self) -> KeyCode {
        match self {
            Key::With(code, _) | Key::Any(code) => code,
            Key::Ctrl(c) => KeyCode::Char(c),
        }
    }

    /// The modifiers to hold while pressing it.
    pub fn modifiers(self) -> KeyModifiers {
        match self {
            Key::With(_, mods) => mods,
            Key::Any(_) => KeyModifiers::NONE,
            Key::Ctrl(_) => KeyModifiers::CONTROL,
        }
    }
}

/// One row of the keymap: a key, where it applies, what it does, and how the
/// help overlay and the footer write it.
#[derive(Clone, Debug)]
pub struct Binding {
    /// The key.
    pub key: Key,
    /// How help writes the key (keys that share a line of the footer share it:
    /// `j/k`).
    pub label: &'static str,
    /// What it does.
    pub action: Action,
    /// One line of help.
    pub help: &'static str,
    /// Where it applies.
    pub scope: Scope,
}

const fn key(code: KeyCode, label: &'static str, action: Action, help: &'static str) -> Binding {
    Binding { key: Key::With(code, KeyModifiers::NONE), label, action, help, scope: Scope::Global }
}

const fn on(
    tab: Tab,
    code: KeyCode,
    label: &'static str,
    action: Action,
    help: &'static str,
) -> Binding {
    Binding {
        key: Key::With(code, KeyModifiers::NONE),
        label,
        action,
        help,
        scope: Scope::Tab(tab),
    }
}

/// A binding of `mode`: the key, whatever else is held.
const fn in_mode(
    mode: Mode,
    code: KeyCode,
    label: &'static str,
    action: Action,
    help: &'static str,
) -> Binding {
    Binding { key: Key::Any(code), label, action, help, scope: Scope::Mode(mode) }
}

/// Ctrl-C in `mode`.
const fn ctrl_c(mode: Mode, action: Action, help: &'static str) -> Binding {
    Binding { key: Key::Ctrl('c'), label: "Ctrl-C", action, help, scope: Scope::Mode(mode) }
}

const fn ch(c: char) -> KeyCode {
    KeyCode::Char(c)
}

const fn msg(m: Msg) -> Action {
    Action::Msg(m)
}

const fn tab(t: Tab) -> Action {
    Action::Msg(Msg::Tab(t))
}

const fn admin(verb: AdminVerb) -> Action {
    Action::Admin(verb)
}

/// Every key of every mode: normal mode first, in help order, then the modes'.
pub static KEYMAP: &[Binding] = &[
    key(ch('q'), "q", Quit, "quit"),
    Binding {
        key: Key::With(ch('c'), KeyModifiers::CONTROL),
        label: "Ctrl-C",
        action: Quit,
        help: "quit",
        scope: Scope::Global,
    },
    key(ch('?'), "?", Action::Help, "this help"),
    key(KeyCode::Tab, "Tab", msg(Msg::NextTab), "next tab"),
    key(KeyCode::BackTab, "Shift-Tab", msg(Msg::PrevTab), "previous tab"),
    key(KeyCode::Right, "Right", msg(Msg::NextTab), "next tab"),
    key(KeyCode::Left, "Left", msg(Msg::PrevTab), "previous tab"),
    key(ch('1'), "1", tab(Tab::NetMap), "NET.MAP"),
    key(ch('2'), "2", tab(Tab::Nodes), "NODES"),
    key(ch('3'), "3", tab(Tab::Daemons), "DAEMONS"),
    key(ch('4'), "4", tab(Tab::Groups), "GROUPS"),
    key(ch('5'), "5", tab(Tab::Dataforts), "DATAFORTS"),
    key(ch('6'), "6", tab(Tab::Nrpc), "NRPC"),
    key(ch('7'), "7", tab(Tab::Blobs), "BLOBS"),
    key(ch('8'), "8", tab(Tab::Migrations), "MIGRATIONS"),
    key(ch('9'), "9", tab(Tab::Chains), "CHAINS"),
    key(ch('0'), "0", tab(Tab::Logs), "LOGS"),
    key(ch('a'), "a", tab(Tab::Audit), "AUDIT"),
    key(ch('F'), "F", tab(Tab::Failures), "FAILURES"),
    key(ch('k'), "k", msg(Msg::Up), "up"),
    key(Up, "Up", msg(Msg::Up), "up"),
    key(ch('j'), "j", msg(Msg::Down), "down"),
    key(Down, "Down", msg(Msg::Down), "down"),
    key(KeyCode::PageUp, "PgUp", msg(Msg::PageUp), "page up"),
    key(KeyCode::PageDown, "PgDn", msg(Msg::PageDown), "page down"),
    key(KeyCode::Home, "Home", msg(Msg::Home), "first row"),
    key(ch('g'), "g", msg(Msg::Home), "first row"),
    key(KeyCode::End, "End", msg(Msg::End), "last row, follow"),
    key(ch('G'), "G", msg(Msg::End), "last row, follow"),
    key(ch('/'), "/", Action::StartSearch, "search (Enter keeps, Esc drops)"),
    key(ch('s'), "s", msg(Msg::SortNext), "sort by next column"),
    key(ch('S'), "S", msg(Msg::SortReverse), "reverse sort"),
    key(ch('o'), "o", msg(Msg::ClearSort), "natural order"),
    key(ch('f'), "f", msg(Msg::ToggleFollow), "follow new rows"),
    key(ch('p'), "p", msg(Msg::TogglePause), "pause / resume tails"),
    key(ch('e'), "e", Action::Export, "export page to CSV"),
    key(ch(':'), ":", Action::OpenPicker, "switch cluster (bookmarks)"),
    key(Enter, "Enter", msg(Msg::Open), "open node / daemon"),
    key(Esc, "Esc", msg(Msg::Close), "back"),
    on(Tab::Logs, ch('v'), "v", msg(Msg::CycleLevel), "minimum log level"),
    on(Tab::Nodes, ch('c'), "c", admin(AdminVerb::Cordon), "cordon node"),
    on(Tab::Nodes, ch('u'), "u", admin(AdminVerb::Uncordon), "uncordon node"),
    on(Tab::Nodes, ch('d'), "d", admin(AdminVerb::Drain), "drain node (window)"),
    on(Tab::Nodes, ch('m'), "m", admin(AdminVerb::MaintenanceOn), "maintenance on"),
    on(Tab::Nodes, ch('M'), "M", admin(AdminVerb::MaintenanceOff), "maintenance off"),
    on(Tab::Nodes, ch('r'), "r", admin(AdminVerb::RestartDaemons), "restart daemons"),
    on(Tab::Nodes, ch('x'), "x", admin(AdminVerb::ClearAvoid), "clear avoid list"),
    on(Tab::Nodes, ch('Z'), "Z", admin(AdminVerb::Freeze), "ICE freeze cluster (TTL)"),
    on(Tab::Nodes, ch('T'), "T", admin(AdminVerb::Thaw), "ICE thaw cluster"),
    on(Tab::Nodes, ch('X'), "X", admin(AdminVerb::FlushAvoid), "ICE flush avoid lists"),
    on(Tab::Daemons, ch('R'), "R", admin(AdminVerb::ForceRestart), "ICE force-restart"),
    on(Tab::Migrations, ch('K'), "K", admin(AdminVerb::KillMigration), "ICE kill migration"),
    // Typing a search (characters are text).
    in_mode(Mode::Search, Enter, "Enter", InputDone, "keep search"),
    in_mode(Mode::Search, Esc, "Esc", InputCancel, "drop search"),
    in_mode(Mode::Search, Backspace, "Backspace", InputBackspace, "delete a character"),
    ctrl_c(Mode::Search, InputCancel, "drop search"),
    // Typing a duration (characters are text).
    in_mode(Mode::Prompt, Enter, "Enter", InputDone, "next"),
    in_mode(Mode::Prompt, Esc, "Esc", InputCancel, "cancel"),
    in_mode(Mode::Prompt, Backspace, "Backspace", InputBackspace, "delete a character"),
    ctrl_c(Mode::Prompt, InputCancel, "cancel"),
    // The help overlay.
    in_mode(Mode::Help, ch('q'), "q", Quit, "quit"),
    ctrl_c(Mode::Help, Quit, "quit"),
    in_mode(Mode::Help, Esc, "Esc", Dismiss, "close"),
    in_mode(Mode::Help, ch('?'), "?", Dismiss, "close"),
    in_mode(Mode::Help, Enter, "Enter", Dismiss, "close"),
    in_mode(Mode::Help, ch('j'), "j/k", HelpScroll(1), "scroll"),
    in_mode(Mode::Help, Down, "Down/Up", HelpScroll(1), "scroll"),
    in_mode(Mode::Help, ch('k'), "j/k", HelpScroll(-1), "scroll"),
    in_mode(Mode::Help, Up, "Down/Up", HelpScroll(-1), "scroll"),
    in_mode(Mode::Help, KeyCode::PageDown, "PgDn", HelpScroll(10), "page down"),
    in_mode(Mode::Help, ch(' '), "Space", HelpScroll(10), "page down"),
    in_mode(Mode::Help, KeyCode::PageUp, "PgUp", HelpScroll(-10), "page up"),
    in_mode(Mode::Help, KeyCode::Home, "Home", HelpScroll(isize::MIN), "top"),
    in_mode(Mode::Help, ch('g'), "g", HelpScroll(isize::MIN), "top"),
    in_mode(Mode::Help, KeyCode::End, "End", HelpScroll(isize::MAX), "bottom"),
    in_mode(Mode::Help, ch('G'), "G", HelpScroll(isize::MAX), "bottom"),
    // The confirm dialog.
    in_mode(Mode::Confirm, ch('y'), "y", Confirm, "confirm"),
    in_mode(Mode::Confirm, Enter, "Enter", Confirm, "confirm"),
    in_mode(Mode::Confirm, ch('n'), "n/Esc", Dismiss, "cancel"),
    in_mode(Mode::Confirm, Esc, "n/Esc", Dismiss, "cancel"),
    in_mode(Mode::Confirm, ch('q'), "q", Quit, "quit"),
    ctrl_c(Mode::Confirm, Quit, "quit"),
    // While a command is signed and sent.
    in_mode(Mode::Sending, ch('q'), "q", Quit, "quit"),
    ctrl_c(Mode::Sending, Quit, "quit"),
    // The result dialog.
    in_mode(Mode::Result, ch('q'), "q", Quit, "quit"),
    ctrl_c(Mode::Result, Quit, "quit"),
    in_mode(Mode::Result, Esc, "Enter/Esc", Dismiss, "close"),
    in_mode(Mode::Result, Enter, "Enter/Esc", Dismiss, "close"),
    in_mode(Mode::Result, ch('y'), "y", Dismiss, "close"),
    in_mode(Mode::Result, ch('n'), "n", Dismiss, "close"),
    in_mode(Mode::Result, ch(' '), "Space", Dismiss, "close"),
    // The cluster picker (characters filter it).
    in_mode(Mode::Picker, Enter, "Enter", InputDone, "attach"),
    in_mode(Mode::Picker, Esc, "Esc", InputCancel, "cancel"),
    in_mode(Mode::Picker, Backspace, "Backspace", InputBackspace, "delete a character"),
    in_mode(Mode::Picker, Up, "Up/Down", PickerMove(-1), "choose"),
    in_mode(Mode::Picker, Down, "Up/Down", PickerMove(1), "choose"),
    ctrl_c(Mode::Picker, InputCancel, "cancel"),
];

impl Scope {
    /// Whether a binding of this scope applies in `mode` on `tab`.
    pub fn applies(self, mode: Mode, tab: Tab) -> bool {
        match self {
            Scope::Global => mode == Mode::Normal,
            Scope::Tab(t) => mode == Mode::Normal && t == tab,
            Scope::Mode(m) => m == mode,
        }
    }
}

/// The binding for `ev` in `mode` on `tab`, if any (the first that matches).
pub fn binding(mode: Mode, tab: Tab, ev: &KeyEvent) -> Option<&'static Binding> {
    KEYMAP.iter().find(|b| b.scope.applies(mode, tab) && b.key.matches(ev))
}

/// The bindings of normal mode, in help order: what the help overlay lists.
pub fn help_bindings() -> impl Iterator<Item = &'static Binding> {
    KEYMAP.iter().filter(|b| matches!(b.scope, Scope::Global | Scope::Tab(_)))
}

/// Maps a key event to an action (pure): the mode's binding for it, else, in a
/// mode that types text, the character typed. Key releases are ignored.
pub fn map_key(mode: Mode, tab: Tab, ev: KeyEvent) -> Option<Action> {
    if ev.kind == KeyEventKind::Release {
        return None;
    }
    if let Some(b) = binding(mode, tab, &ev) {
        return Some(b.action.clone());
    }
    match ev.code {
        KeyCode::Char(c) if mode.types_text() && !ev.modifiers.contains(KeyModifiers::CONTROL) => {
            Some(Action::InputChar(c))
        }
        _ => None,
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

/// The bindings the footer shows in `mode` on `tab`. In normal mode: help
/// first (so it is never cut off), then the tab's own keys, then the common
/// ones; in the other modes, the mode's main keys.
pub fn footer(mode: Mode, tab: Tab) -> Vec<&'static Binding> {
    let scope = if mode == Mode::Normal { Scope::Global } else { Scope::Mode(mode) };
    let first = |label: &&str| KEYMAP.iter().find(|b| b.scope == scope && b.label == *label);
    let help = if mode == Mode::Normal { first(&"?") } else { None };
    let own = KEYMAP.iter().filter(|b| mode == Mode::Normal && b.scope == Scope::Tab(tab));
    let common = mode.footer_labels().iter().filter_map(first);
    help.into_iter().chain(own).chain(common).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn press(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    /// Where `b` applies: its mode, and a tab it applies on.
    fn place(b: &Binding) -> (Mode, Tab) {
        match b.scope {
            Scope::Global => (Mode::Normal, Tab::NetMap),
            Scope::Tab(t) => (Mode::Normal, t),
            Scope::Mode(m) => (m, Tab::NetMap),
        }
    }

    #[test]
    fn every_binding_maps_to_its_action_where_it_applies() {
        for b in KEYMAP {
            let (mode, tab) = place(b);
            let ev = KeyEvent::new(b.key.code(), b.key.modifiers());
            // The first binding of a key wins; every key appears once per scope.
            let found = binding(mode, tab, &ev).expect(b.label);
            assert!(
                std::ptr::eq(found, b),
                "{:?} {} is shadowed by {}",
                b.scope,
                b.label,
                found.label
            );
            assert_eq!(map_key(mode, tab, ev), Some(b.action.clone()), "{}", b.label);
        }
    }

    #[test]
    fn modes_have_their_own_keys_and_text_modes_leave_characters_to_typing() {
        for b in KEYMAP {
            assert_ne!(b.scope, Scope::Mode(Mode::Normal), "normal mode is Global or Tab");
            if let Scope::Mode(m) = b.scope
                && m.types_text()
            {
                let plain_char = matches!(b.key.code(), KeyCode::Char(_))
                    && !b.key.modifiers().contains(KeyModifiers::CONTROL);
                assert!(!plain_char, "{m:?} {} would swallow a typed character", b.label);
            }
        }
        // Keys of a mode do nothing elsewhere.
        assert_eq!(map_key(Mode::Normal, Tab::NetMap, press(ch('y'))), None);
        assert_eq!(map_key(Mode::Confirm, Tab::NetMap, press(ch('j'))), None);
    }

    #[test]
    fn every_footer_names_keys_of_its_mode() {
        let modes = [
            Mode::Normal,
            Mode::Search,
            Mode::Help,
            Mode::Prompt,
            Mode::Confirm,
            Mode::Sending,
            Mode::Result,
            Mode::Picker,
        ];
        for mode in modes {
            let shown = footer(mode, Tab::NetMap);
            let named = mode.footer_labels().len() + usize::from(mode == Mode::Normal);
            assert_eq!(shown.len(), named, "{mode:?}: a footer label has no binding");
            assert!(shown.iter().all(|b| b.scope.applies(mode, Tab::NetMap)), "{mode:?}");
        }
        let words = |mode| -> Vec<(&str, &str)> {
            footer(mode, Tab::NetMap).iter().map(|b| (b.label, b.help)).collect()
        };
        assert_eq!(words(Mode::Search), [("Enter", "keep search"), ("Esc", "drop search")]);
        assert_eq!(words(Mode::Prompt), [("Enter", "next"), ("Esc", "cancel")]);
        assert_eq!(words(Mode::Confirm), [("y", "confirm"), ("n/Esc", "cancel")]);
        assert_eq!(words(Mode::Sending), [("q", "quit")]);
        assert_eq!(words(Mode::Result), [("Enter/Esc", "close"), ("q", "quit")]);
        assert_eq!(words(Mode::Help), [("j/k", "scroll"), ("Esc", "close"), ("q", "quit")]);
        assert_eq!(
            words(Mode::Picker),
            [("Enter", "attach"), ("Up/Down", "choose"), ("Esc", "cancel")]
        );
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
                .find(|b| b.action == Action::Admin(verb))
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
        let f = footer(Mode::Normal, Tab::Nodes);
        assert_eq!((f[0].label, f[1].label), ("?", "c"));
        assert!(f.iter().any(|b| b.label == "q"));
        assert!(footer(Mode::Normal, Tab::NetMap).iter().all(|b| b.scope == Scope::Global));
    }
}
