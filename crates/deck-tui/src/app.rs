//! The deck's model: `deck-model`'s [`ViewState`] plus what only the terminal
//! front end has (input mode, search being typed, help scroll, confirm dialog,
//! toast, the `:` [`Picker`]). [`App::apply`] is the update function; it never
//! touches the cluster and returns an [`Effect`] when the loop has to.

use std::time::Duration;

use deck_model::{
    AdminVerb, Cell, CommitReport, Msg, PendingAction, PromptSpec, Style, Target, ViewState, update,
};

use crate::bookmarks::Bookmark;
use crate::keys::{Action, Mode};

mod picker;

pub use picker::Picker;

/// How many one-second ticks a toast stays up.
pub const TOAST_TICKS: u64 = 6;

/// Something the loop must do with the cluster or the file system.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Simulate an admin command (with the duration asked for, if any) and open
    /// its confirm dialog.
    Prepare(AdminVerb, Target, Option<Duration>),
    /// Sign and send the reviewed action in the dialog.
    Commit,
    /// Write the current page to a file.
    Export,
    /// Load the bookmarks and open the cluster picker.
    OpenPicker,
}

/// A message shown over the footer for a few seconds.
#[derive(Clone, Debug, PartialEq)]
pub struct Toast {
    /// What to show.
    pub cell: Cell,
    /// The tick it was shown at.
    pub since: u64,
}

/// A duration being typed for an admin command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prompt {
    /// The command it is for.
    pub verb: AdminVerb,
    /// Its target.
    pub target: Target,
    /// What is asked.
    pub spec: PromptSpec,
    /// What has been typed.
    pub input: String,
    /// Why the last answer was refused.
    pub error: Option<String>,
}

/// How the last command went, for the result dialog.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Sent; each node answered (or did not).
    Report(CommitReport),
    /// Not sent at all, and why.
    NotSent(String),
}

impl Outcome {
    /// The result dialog's lines: the summary, then one line per node. Everything
    /// a node said (effect, code, reason, delivery error) is escaped and capped
    /// by [`CommitReport::lines`]; so is a reason for not sending.
    pub fn lines(&self) -> Vec<Cell> {
        match self {
            Outcome::NotSent(e) => vec![not_sent(e)],
            Outcome::Report(r) => r.lines(),
        }
    }
}

/// `not sent: <why>`, escaped and capped (the reason may quote a node).
pub fn not_sent(why: &str) -> Cell {
    Cell::untrusted(&format!("not sent: {why}"), deck_model::text::MAX_MESSAGE).styled(Style::Err)
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
    /// The duration being typed for an admin command.
    pub prompt: Option<Prompt>,
    /// The action awaiting confirmation (or being sent).
    pub pending: Option<PendingAction>,
    /// How the last command went (shown until dismissed).
    pub outcome: Option<Outcome>,
    /// The cluster picker and the bookmarks it picks from.
    pub picker: Option<(Picker, Vec<Bookmark>)>,
    /// The cluster picked: the session ends and the deck attaches there.
    pub switch_to: Option<Bookmark>,
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
            prompt: None,
            pending: None,
            outcome: None,
            picker: None,
            switch_to: None,
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

    fn admin(&mut self, verb: AdminVerb) -> Option<Effect> {
        let kind = verb.target();
        let Some(target) = kind.selected(&self.state) else {
            self.toast(Cell::new(format!("select {} first", kind.what())).styled(Style::Warn));
            return None;
        };
        match verb.prompt() {
            Some(spec) => {
                self.prompt = Some(Prompt {
                    verb,
                    target,
                    spec,
                    input: spec.default.to_owned(),
                    error: None,
                });
                self.mode = Mode::Prompt;
                None
            }
            None => Some(Effect::Prepare(verb, target, None)),
        }
    }

    fn prompt_done(&mut self) -> Option<Effect> {
        let prompt = self.prompt.as_mut()?;
        match prompt.spec.answer(&prompt.input) {
            Ok(duration) => {
                let effect = Effect::Prepare(prompt.verb, prompt.target, duration);
                self.prompt = None;
                self.mode = Mode::Normal;
                Some(effect)
            }
            Err(e) => {
                prompt.error = Some(e.to_string());
                None
            }
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
            Action::Admin(verb) => return self.admin(verb),
            Action::OpenPicker => return Some(Effect::OpenPicker),
            Action::PickerMove(d) => {
                if let Some((p, items)) = &mut self.picker {
                    if d < 0 { p.up(items) } else { p.down(items) }
                }
            }
            Action::InputChar(c) if self.mode == Mode::Picker => {
                if let Some((p, _)) = &mut self.picker
                    && p.query.chars().count() < 64
                {
                    p.push(c);
                }
            }
            Action::InputBackspace if self.mode == Mode::Picker => {
                if let Some((p, _)) = &mut self.picker {
                    p.pop();
                }
            }
            Action::InputDone if self.mode == Mode::Picker => {
                if let Some((p, items)) = &self.picker
                    && let Some(b) = p.chosen(items)
                {
                    self.switch_to = Some(b.clone());
                    self.quit = true;
                }
                self.picker = None;
                self.mode = Mode::Normal;
            }
            Action::InputCancel if self.mode == Mode::Picker => {
                self.picker = None;
                self.mode = Mode::Normal;
            }
            Action::InputChar(c) if self.mode == Mode::Prompt => {
                if let Some(p) = &mut self.prompt
                    && p.input.chars().count() < 32
                {
                    p.input.push(c);
                    p.error = None;
                }
            }
            Action::InputBackspace if self.mode == Mode::Prompt => {
                if let Some(p) = &mut self.prompt {
                    p.input.pop();
                    p.error = None;
                }
            }
            Action::InputDone if self.mode == Mode::Prompt => return self.prompt_done(),
            Action::InputCancel if self.mode == Mode::Prompt => {
                self.prompt = None;
                self.mode = Mode::Normal;
            }
            Action::InputChar(c) => {
                self.query.push(c);
                update(&mut self.state, Msg::Search(self.query.clone()));
            }
            Action::InputBackspace => {
                self.query.pop();
                update(&mut self.state, Msg::Search(self.query.clone()));
            }
            Action::InputDone => self.mode = Mode::Normal,
            Action::InputCancel => {
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
                .min(crate::keys::help_bindings().count());
            }
            Action::Dismiss => {
                self.pending = None;
                self.outcome = None;
                self.mode = Mode::Normal;
            }
            Action::Confirm => {
                if self.pending.is_some() {
                    self.mode = Mode::Sending;
                    return Some(Effect::Commit);
                }
                self.mode = Mode::Normal;
            }
        }
        None
    }

    /// Opens the cluster picker over `items`.
    pub fn open_picker(&mut self, items: Vec<Bookmark>) {
        if items.is_empty() {
            self.toast(
                Cell::new("no bookmarks yet: deck bookmark add NAME HOST:PORT --cluster-key PATH")
                    .styled(Style::Warn),
            );
            return;
        }
        self.picker = Some((Picker::new(), items));
        self.mode = Mode::Picker;
    }

    /// Opens the confirm dialog for a prepared action.
    pub fn ask(&mut self, pending: PendingAction) {
        self.pending = Some(pending);
        self.mode = Mode::Confirm;
    }

    /// Shows how the commit went: a toast with the summary, and the per-node
    /// outcomes in the dialog until the operator dismisses it.
    pub fn committed(&mut self, result: Result<CommitReport, String>) {
        self.pending = None;
        match &result {
            Ok(report) => self.toast(report.summary_cell()),
            Err(e) => self.toast(not_sent(e)),
        }
        self.outcome = Some(match result {
            Ok(report) => Outcome::Report(report),
            Err(e) => Outcome::NotSent(e),
        });
        // Quitting while it was sent wins over showing the result.
        if !self.quit {
            self.mode = Mode::Result;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use deck_model::{Tab, TargetKind, testkit, views};

    #[test]
    fn search_typing_filters_live_and_esc_drops_it() {
        let mut app = App::new(Settings::default());
        app.apply(Action::StartSearch);
        assert_eq!(app.mode, Mode::Search);
        app.apply(Action::InputChar('a'));
        app.apply(Action::InputChar('b'));
        app.apply(Action::InputBackspace);
        assert_eq!(app.state.current().search(), "a");
        app.apply(Action::InputDone);
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
        let Some(Target::Node(node)) = TargetKind::Node.selected(&app.state) else {
            panic!("a node is selected")
        };
        assert_eq!(
            app.apply(Action::Admin(AdminVerb::Cordon)),
            Some(Effect::Prepare(AdminVerb::Cordon, Target::Node(node), None))
        );
        // Cluster-wide ICE needs no selection.
        assert_eq!(
            app.apply(Action::Admin(AdminVerb::Thaw)),
            Some(Effect::Prepare(AdminVerb::Thaw, Target::Cluster, None))
        );
    }

    #[test]
    fn drain_asks_for_a_window_and_refuses_nonsense() {
        let data = testkit::data(testkit::snapshot(3, Vec::new()), &Default::default());
        let mut app = App::new(Settings::default());
        app.apply(Action::Msg(Msg::Tab(Tab::Nodes)));
        let view = views::build(&data, &app.state);
        app.state.observe(&view);
        let Some(Target::Node(node)) = TargetKind::Node.selected(&app.state) else {
            panic!("a node is selected")
        };
        assert_eq!(app.apply(Action::Admin(AdminVerb::Drain)), None);
        assert_eq!(app.mode, Mode::Prompt);
        assert_eq!(app.prompt.as_ref().unwrap().input, "30s");
        for _ in 0..3 {
            app.apply(Action::InputBackspace);
        }
        for c in "2x".chars() {
            app.apply(Action::InputChar(c));
        }
        assert_eq!(app.apply(Action::InputDone), None);
        assert!(app.prompt.as_ref().unwrap().error.as_ref().unwrap().contains("unit"));
        app.apply(Action::InputBackspace);
        app.apply(Action::InputChar('m'));
        assert_eq!(
            app.apply(Action::InputDone),
            Some(Effect::Prepare(
                AdminVerb::Drain,
                Target::Node(node),
                Some(Duration::from_secs(120))
            ))
        );
        assert_eq!(app.mode, Mode::Normal);
        // An optional window may be left empty; Esc leaves the prompt.
        app.apply(Action::Admin(AdminVerb::MaintenanceOn));
        assert_eq!(
            app.apply(Action::InputDone),
            Some(Effect::Prepare(AdminVerb::MaintenanceOn, Target::Node(node), None))
        );
        app.apply(Action::Admin(AdminVerb::Freeze));
        app.apply(Action::InputCancel);
        assert_eq!((app.mode, app.prompt.is_none()), (Mode::Normal, true));
    }

    #[test]
    fn daemon_and_migration_verbs_need_their_rows() {
        let mut app = App::new(Settings::default());
        assert_eq!(app.apply(Action::Admin(AdminVerb::ForceRestart)), None);
        assert!(app.toast.as_ref().unwrap().cell.text.contains("daemon"));
        assert_eq!(app.apply(Action::Admin(AdminVerb::KillMigration)), None);
        assert!(app.toast.as_ref().unwrap().cell.text.contains("migration"));
    }

    #[test]
    fn help_scroll_saturates() {
        let mut app = App::new(Settings::default());
        app.apply(Action::Help);
        app.apply(Action::HelpScroll(-5));
        assert_eq!(app.help_scroll, 0);
        app.apply(Action::HelpScroll(isize::MAX));
        assert_eq!(app.help_scroll, crate::keys::help_bindings().count());
        app.apply(Action::Dismiss);
        assert_eq!(app.mode, Mode::Normal);
    }
}
