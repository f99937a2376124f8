//! The terminal UI: one screen for the whole run, a session per cluster (the
//! operator may switch with `:`), and the event loop that turns input, refreshes
//! and commits into frames; effects the model asks for are run here.

use std::io;
use std::time::Duration;

use anyhow::Context;
use crossterm::event::{self, Event};
use deck_model::{
    Admin, BoxFuture, CommitReport, DeckData, DeckError, DeckSource, Msg, REFRESH_INTERVAL, View,
    summarize, update, views,
};
use mesh_auth::OperatorIdentity;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior, interval, sleep_until};

use crate::app::{App, Effect, Settings};
use crate::bookmarks::Bookmark;
use crate::keys;
use crate::render;
use crate::session::{self, ONCE_DEADLINE, Place, Session};
use crate::term::{self, Tui};

/// At most ~30 frames per second (after input).
const FRAME: Duration = Duration::from_millis(33);
/// Frames prompted only by new data or the clock come at most this often: a
/// cluster that changes all the time (saturation, resources, logs) costs two
/// frames a second.
const DATA_FRAME: Duration = Duration::from_millis(500);

/// How the UI runs, for the whole run.
#[derive(Clone, Debug)]
pub struct Options {
    /// Paint with colours.
    pub color: bool,
    /// Shown in the first session's footer instead of the hint (a bookmarks
    /// file moved aside).
    pub notice: Option<String>,
    /// How long attaching to a picked cluster may take.
    pub attach_timeout: Duration,
}

/// Takes the terminal and runs sessions until the operator quits: the first
/// on `place`, then one on each cluster picked with `:`.
pub async fn run(
    mut place: Place,
    mut operator: OperatorIdentity,
    options: Options,
) -> anyhow::Result<()> {
    let Options { color, mut notice, attach_timeout } = options;
    let mut screen = Screen::take()?;
    loop {
        let deadline = Instant::now() + ONCE_DEADLINE;
        let session = Session::start(&place, operator.clone(), deadline).await?;
        let settings = Settings { color, hint: notice.take().or_else(|| session::hint(&place)) };
        let exit = event_loop(&mut screen, session.deck(), settings).await;
        session.shutdown().await;
        match exit? {
            Exit::Quit => break,
            Exit::Switch(b) => {
                tracing::info!(bookmark = %b.name, "switching cluster");
                if let Some(key) = &b.operator_key {
                    operator = session::operator_identity(Some(key))?;
                }
                place = Place::bookmarked(&b, attach_timeout);
            }
        }
    }
    Ok(())
}

/// Builds what one frame shows: sizes the view state to the terminal, builds the
/// view, records what it shows, and computes the status bar.
pub fn prepare(
    data: &DeckData,
    app: &mut App,
    width: u16,
    height: u16,
) -> (View, Vec<deck_model::Cell>) {
    let mut view = views::build(data, &app.state);
    let rows = render::body_rows(width, height, view.aside.is_some());
    if rows != app.state.height() {
        update(&mut app.state, Msg::Resize { rows });
        view = views::build(data, &app.state);
    }
    app.state.observe(&view);
    let status = summarize(data).cells(&app.state);
    (view, status)
}

fn draw(terminal: &mut Tui, app: &mut App, source: &dyn DeckSource) -> io::Result<()> {
    let size = terminal.size()?;
    let (view, status) = prepare(&source.data(), app, size.width, size.height);
    terminal.draw(|f| render::draw(f, app, &view, &status))?;
    Ok(())
}

/// Reads terminal events on a thread of its own (crossterm's reader blocks).
fn read_input(tx: mpsc::Sender<Event>) {
    while let Ok(ev) = event::read() {
        if tx.blocking_send(ev).is_err() {
            break;
        }
    }
}

/// A refresh or a commit in flight, if any.
type Pending<'a, T> = Option<BoxFuture<'a, T>>;

/// Awaits the future in `slot`, or never when there is none.
async fn in_flight<T>(slot: &mut Pending<'_, T>) -> T {
    match slot {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

/// The terminal and its input, taken once for the whole run (sessions come and
/// go when the operator switches cluster).
struct Screen {
    guard: term::Guard,
    input: mpsc::Receiver<Event>,
}

impl Screen {
    fn take() -> anyhow::Result<Screen> {
        let guard = term::Guard::enter().context("taking the terminal")?;
        let (tx, input) = mpsc::channel(64);
        std::thread::Builder::new()
            .name("deck-input".into())
            .spawn(move || read_input(tx))
            .context("starting the input reader")?;
        Ok(Screen { guard, input })
    }
}

/// How a UI session ended.
enum Exit {
    Quit,
    /// The operator picked another cluster.
    Switch(Bookmark),
}

/// The event loop. Refreshes and commits run beside input handling (never
/// awaited inline), so keys keep working while a node is slow to answer.
async fn event_loop(
    screen: &mut Screen,
    source: &dyn DeckSource,
    settings: Settings,
) -> anyhow::Result<Exit> {
    let Screen { guard, input: rx } = screen;
    let mut app = App::new(settings);
    let mut changes = source.changes();
    let mut snapshots = source.snapshot_changes();
    let (mut changes_open, mut snapshots_open) = (true, true);
    let mut refresh = interval(REFRESH_INTERVAL);
    refresh.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut tick = interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    #[cfg(unix)]
    let (mut sigterm, mut sighup) = {
        use tokio::signal::unix::{SignalKind, signal};
        (signal(SignalKind::terminate())?, signal(SignalKind::hangup())?)
    };
    let mut dirty = true;
    // Whether the pending redraw answers input (drawn within a frame) or only
    // new data (paced by DATA_FRAME).
    let mut urgent = true;
    let mut last_draw: Option<Instant> = None;
    let mut refreshing: Pending<'_, deck_model::RefreshReport> = None;
    let mut sending: Pending<'_, Result<CommitReport, DeckError>> = None;
    loop {
        if app.quit {
            break;
        }
        let gap = if urgent { FRAME } else { DATA_FRAME };
        let next_frame = last_draw.map_or_else(Instant::now, |t| t + gap);
        if dirty && Instant::now() >= next_frame {
            draw(&mut guard.terminal, &mut app, source)?;
            dirty = false;
            urgent = false;
            last_draw = Some(Instant::now());
        }
        #[cfg(unix)]
        let stop = async {
            tokio::select! {
                _ = sigterm.recv() => {}
                _ = sighup.recv() => {}
            }
        };
        #[cfg(not(unix))]
        let stop = std::future::pending::<()>();
        tokio::select! {
            ev = rx.recv() => {
                let Some(ev) = ev else { break };
                let action = match ev {
                    Event::Key(key) => keys::map_key(app.mode, app.state.tab(), key),
                    Event::Mouse(mouse) => {
                        let (tab, width) = (app.state.tab(), guard.terminal.size()?.width);
                        keys::map_mouse(app.mode, mouse, |x| render::tab_at(tab, width, x))
                    }
                    _ => None,
                };
                if let Some(action) = action
                    && let Some(effect) = app.apply(action)
                {
                    if let Some(commit) = run_effect(&mut app, source, effect) {
                        sending = Some(commit);
                    }
                }
                dirty = true;
                urgent = true;
            }
            result = in_flight(&mut sending) => {
                sending = None;
                app.committed(result.map_err(|e| e.to_string()));
                // Show the outcome in AUDIT soon.
                if refreshing.is_none() {
                    refreshing = Some(source.refresh());
                }
                dirty = true;
                urgent = true;
            }
            _ = in_flight(&mut refreshing) => {
                refreshing = None;
            }
            _ = refresh.tick() => {
                if refreshing.is_none() {
                    refreshing = Some(source.refresh());
                }
            }
            r = snapshots.changed(), if snapshots_open => {
                if r.is_err() {
                    snapshots_open = false;
                } else {
                    // Local and cheap; `changes` fires if it moved.
                    source.sync_snapshot();
                }
            }
            r = changes.changed(), if changes_open => {
                changes_open = r.is_ok();
                dirty = true;
            }
            _ = tick.tick() => {
                app.tick();
                dirty = true;
            }
            _ = sleep_until(next_frame), if dirty => {}
            _ = stop => break,
        }
    }
    Ok(match app.switch_to.take() {
        Some(b) => Exit::Switch(b),
        None => Exit::Quit,
    })
}

/// Runs an effect; a commit comes back as a future for the loop to drive.
fn run_effect<'a>(
    app: &mut App,
    source: &'a dyn DeckSource,
    effect: Effect,
) -> Pending<'a, Result<CommitReport, DeckError>> {
    let admin = Admin::new(source);
    match effect {
        Effect::Prepare(verb, target, duration) => match admin.prepare_verb(verb, target, duration)
        {
            Ok(pending) => app.ask(pending),
            Err(e) => {
                app.toast(deck_model::Cell::new(e.to_string()).styled(deck_model::Style::Err))
            }
        },
        Effect::Commit => {
            let pending = app.pending.clone()?;
            tracing::info!(command = ?pending.command, targets = pending.targets.len(), "sending");
            return Some(Box::pin(async move { admin.confirm(&pending).await }));
        }
        Effect::OpenPicker => match session::load_bookmarks() {
            Ok((marks, notice)) => {
                if let Some(n) = notice {
                    app.toast(
                        deck_model::Cell::untrusted(&n, deck_model::text::MAX_MESSAGE)
                            .styled(deck_model::Style::Warn),
                    );
                }
                app.open_picker(marks.items);
            }
            // The error may quote the file.
            Err(e) => app.toast(
                deck_model::Cell::untrusted(
                    &format!("bookmarks: {e:#}"),
                    deck_model::text::MAX_MESSAGE,
                )
                .styled(deck_model::Style::Err),
            ),
        },
        Effect::Export => {
            let path = deck_model::export::file_name(app.state.tab(), mesh_auth::unix_now_ms());
            let result = deck_model::export_view(&source.data(), &app.state, path.as_ref());
            app.toast(match result {
                Ok(n) => deck_model::Cell::new(format!("exported {n} rows to {path}"))
                    .styled(deck_model::Style::Ok),
                Err(e) => deck_model::Cell::new(format!("export failed: {e}"))
                    .styled(deck_model::Style::Err),
            });
        }
    }
    None
}
