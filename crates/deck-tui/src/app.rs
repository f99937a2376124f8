//! The deck's model: `deck-model`'s [`ViewState`] plus what only the terminal
//! front end has (input mode, search being typed, help scroll, confirm dialog,
//! toast). [`App::apply`] is the update function; it never touches the cluster
//! and returns an [`Effect`] when the loop has to.

use deck_model::{
    Cell, CommitReport, Detail, Msg, PendingAction, RowId, Style, Tab, ViewState, update,
};

use mesh::NodeId;

use crate::keys::{Action, AdminVerb, Mode};

/// How many one-second ticks a toast stays up.
pub const TOAST_TICKS: u64 = 6;

/// Something the loop must do with the cluster or the file system.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Simulate an admin command and open its confirm dialog.
    Prepare(AdminVerb, NodeId),
    /// Sign and send the reviewed action in the dialog.
    Commit,
    /// Write the current page to a file.
    Export,
}

/// A message shown over the footer for a few seconds.
#[derive(Clone, Debug, PartialEq)]
pub struct Toast {
    /// What to show.
    pub cell: Cell,
    /// The tick it was shown at.
    pub since: u64,
}

/// Settings fixed for a session.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// Paint with colours.
    pub color: bool,
    /// A hint line (shown in the footer while no toast is up).
    pub hint: Option<String>,
}

/// The whole front-end model.
#[derive(Debug)]
pub struct App {
    /// What `deck-model` remembers about the page.
    pub state: ViewState,
    /// The input mode.
    pub mode: Mode,
    /// The search being typed.
    pub query: String,
    /// First line of the help overlay.
    pub help_scroll: usize,
    /// The action awaiting confirmation.
    pub pending: Option<PendingAction>,
    /// The current toast.
    pub toast: Option<Toast>,
    /// One-second ticks so far.
    pub ticks: u64,
    /// Session settings.
    pub settings: Settings,
    /// Set when the operator quits.
    pub quit: bool,
}

impl App {
    /// A fresh model on NET.MAP.
    pub fn new(settings: Settings) -> App {
        App {
            state: ViewState::new(),
            mode: Mode::Normal,
            query: String::new(),
            help_scroll: 0,
            pending: None,
            toast: None,
            ticks: 0,
            settings,
            quit: false,
        }
    }

    /// Shows `cell` as a toast.
    pub fn toast(&mut self, cell: Cell) {
        self.toast = Some(Toast { cell, since: self.ticks });
    }

    /// One second passed: expire the toast.
    pub fn tick(&mut self) {
        self.ticks += 1;
        if self.toast.as_ref().is_some_and(|t| self.ticks >= t.since + TOAST_TICKS) {
            self.toast = None;
        }
    }

    /// The node an admin key acts on: the open node page, else the NODES selection.
    pub fn target_node(&self) -> Option<NodeId> {
        match self.state.detail() {
            Some(Detail::Node(n)) => Some(n),
            Some(Detail::Daemon(_)) => None,
            None if self.state.tab() == Tab::Nodes => match self.state.current().selected() {
                Some(RowId::Node(n)) => Some(n),
                _ => None,
            },
            None => None,
        }
    }

    /// Applies an action (the update function).
    pub fn apply(&mut self, action: Action) -> Option<Effect> {
        match action {
            Action::Msg(Msg::Close) if self.state.detail().is_none() => {
                // Esc on a table page drops the search, if any.
                if !self.state.current().search().is_empty() {
                    update(&mut self.state, Msg::ClearSearch);
                }
            }
            Action::Msg(msg) => update(&mut self.state, msg),
            Action::Quit => self.quit = true,
            Action::Help => {
                self.mode = Mode::Help;
                self.help_scroll = 0;
            }
            Action::StartSearch => {
                self.mode = Mode::Search;
                self.query = self.state.current().search().to_owned();
            }
            Action::Export => return Some(Effect::Export),
            Action::Admin(verb) => match self.target_node() {
                Some(node) => return Some(Effect::Prepare(verb, node)),
                None => self.toast(Cell::new("select a node first").styled(Style::Warn)),
            },
            Action::SearchChar(c) => {
                self.query.push(c);
                update(&mut self.state, Msg::Search(self.query.clone()));
            }
            Action::SearchBackspace => {
                self.query.pop();
                update(&mut self.state, Msg::Search(self.query.clone()));
            }
            Action::SearchDone => self.mode = Mode::Normal,
            Action::SearchCancel => {
                self.query.clear();
                update(&mut self.state, Msg::ClearSearch);
                self.mode = Mode::Normal;
            }
            Action::HelpScroll(d) => {
                self.help_scroll = if d < 0 {
                    self.help_scroll.saturating_sub(d.unsigned_abs())
                } else {
                    self.help_scroll.saturating_add(d.unsigned_abs())
                }
                .min(crate::keys::KEYMAP.len());
            }
            Action::Dismiss => {
                self.pending = None;
                self.mode = Mode::Normal;
            }
            Action::Confirm => {
                if self.pending.is_some() {
                    return Some(Effect::Commit);
                }
                self.mode = Mode::Normal;
            }
        }
        None
    }

    /// Opens the confirm dialog for a prepared action.
    pub fn ask(&mut self, pending: PendingAction) {
        self.pending = Some(pending);
        self.mode = Mode::Confirm;
    }

    /// Closes the dialog and shows how the commit went.
    pub fn committed(&mut self, result: Result<CommitReport, String>) {
        self.pending = None;
        self.mode = Mode::Normal;
        match result {
            Ok(report) => self.toast(report.summary_cell()),
            Err(e) => self.toast(Cell::new(format!("not sent: {e}")).styled(Style::Err)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use deck_model::{testkit, views};

    #[test]
    fn search_typing_filters_live_and_esc_drops_it() {
        let mut app = App::new(Settings::default());
        app.apply(Action::StartSearch);
        assert_eq!(app.mode, Mode::Search);
        app.apply(Action::SearchChar('a'));
        app.apply(Action::SearchChar('b'));
        app.apply(Action::SearchBackspace);
        assert_eq!(app.state.current().search(), "a");
        app.apply(Action::SearchDone);
        assert_eq!((app.mode, app.state.current().search()), (Mode::Normal, "a"));
        app.apply(Action::Msg(Msg::Close));
        assert_eq!(app.state.current().search(), "");
    }

    #[test]
    fn cordon_needs_a_selected_node_and_toasts_expire() {
        let data = testkit::data(testkit::snapshot(3, Vec::new()), &Default::default());
        let mut app = App::new(Settings::default());
        assert_eq!(app.apply(Action::Admin(AdminVerb::Cordon)), None);
        assert!(app.toast.is_some());
        for _ in 0..TOAST_TICKS {
            app.tick();
        }
        assert!(app.toast.is_none());
        app.apply(Action::Msg(Msg::Tab(Tab::Nodes)));
        let view = views::build(&data, &app.state);
        app.state.observe(&view);
        let node = app.target_node().expect("a node is selected");
        assert_eq!(
            app.apply(Action::Admin(AdminVerb::Cordon)),
            Some(Effect::Prepare(AdminVerb::Cordon, node))
        );
    }

    #[test]
    fn help_scroll_saturates() {
        let mut app = App::new(Settings::default());
        app.apply(Action::Help);
        app.apply(Action::HelpScroll(-5));
        assert_eq!(app.help_scroll, 0);
        app.apply(Action::HelpScroll(isize::MAX));
        assert_eq!(app.help_scroll, crate::keys::KEYMAP.len());
        app.apply(Action::Dismiss);
        assert_eq!(app.mode, Mode::Normal);
    }
}
