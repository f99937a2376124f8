//! Sessions and the event loop: boots what the command line asks for (the demo,
//! or one embedded node), then either prints the state once (headless) or runs
//! the terminal UI until the operator quits.

use std::future::Future;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use crossterm::event::{self, Event};
use deck_model::{
    Admin, CommitReport, DeckClient, DeckData, DeckError, DeckSource, Msg, PendingAction,
    REFRESH_INTERVAL, View, headless, summarize, update, views,
};
use mesh::{ClusterKey, MeshConfig, MeshNode};
use mesh_auth::{EntityKeypair, OperatorIdentity};
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior, interval, sleep, sleep_until, timeout_at};

use crate::app::{App, Effect, Settings, Target};
use crate::cli::{Cli, CliCommand};
use crate::keys::{self, AdminVerb};
use crate::render;
use crate::term::{self, Tui};

/// How long `--once` waits for the cluster to come up.
pub const ONCE_DEADLINE: Duration = Duration::from_secs(30);
/// At most ~30 frames per second (after input).
const FRAME: Duration = Duration::from_millis(33);
/// Frames prompted only by new data or the clock come at most this often: a
/// cluster that changes all the time (saturation, resources, logs) costs two
/// frames a second.
const DATA_FRAME: Duration = Duration::from_millis(500);

/// What the deck is attached to.
enum Session {
    Demo(Box<mesh_demo::Demo>),
    Embedded { deck: Option<DeckClient>, node: MeshNode },
}

impl Session {
    async fn start(
        demo: bool,
        operator: OperatorIdentity,
        deadline: Instant,
    ) -> anyhow::Result<Session> {
        if demo {
            let config = mesh_demo::DemoConfig { operator: Some(operator), ..Default::default() };
            let spawned = timeout_at(deadline, mesh_demo::spawn(config))
                .await
                .map_err(|_| anyhow!("the demo cluster did not come up within 30 s"))?
                .context("starting the demo cluster")?;
            return Ok(Session::Demo(Box::new(spawned)));
        }
        let key = ClusterKey::generate().context("generating a cluster key")?;
        let node = MeshNode::start(MeshConfig::new(key)).await.context("starting the node")?;
        let deck = DeckClient::from_node(&node, operator).context("attaching the deck")?;
        Ok(Session::Embedded { deck: Some(deck), node })
    }

    fn deck(&self) -> &DeckClient {
        match self {
            Session::Demo(demo) => demo.deck(),
            Session::Embedded { deck, .. } => {
                deck.as_ref().unwrap_or_else(|| unreachable!("taken only by shutdown"))
            }
        }
    }

    /// Nodes the deck should see before the state is worth printing.
    fn expected_nodes(&self) -> usize {
        match self {
            Session::Demo(demo) => demo.nodes().count(),
            Session::Embedded { .. } => 1,
        }
    }

    async fn shutdown(self) {
        match self {
            Session::Demo(mut demo) => demo.shutdown().await,
            Session::Embedded { mut deck, node } => {
                drop(deck.take());
                node.shutdown().await;
            }
        }
    }
}

/// What the binary prints when the deck is done.
#[derive(Debug)]
pub enum Output {
    /// Nothing (the UI ran).
    Nothing,
    /// A JSON document (`--once --json`).
    Json(serde_json::Value),
    /// Plain text (`deck keygen`).
    Text(String),
}

/// Creates an operator key file and describes it.
pub fn keygen(path: &Path) -> anyhow::Result<String> {
    let key = EntityKeypair::try_generate().context("generating a key")?;
    key.save(path).with_context(|| format!("writing the operator key {}", path.display()))?;
    let operator = OperatorIdentity::from_keypair(key);
    Ok(format!(
        "wrote operator key {}\noperator id {}\npublic key  {}\n(add the public key to the cluster's operators file)",
        path.display(),
        operator.operator_id(),
        operator.public().to_hex(),
    ))
}

/// Loads the operator key (`--operator-key`), or makes a throwaway identity.
pub fn operator_identity(path: Option<&Path>) -> anyhow::Result<OperatorIdentity> {
    match path {
        Some(path) => {
            let key = EntityKeypair::load(path).with_context(|| {
                format!(
                    "loading the operator key {} (create one with `deck keygen PATH`)",
                    path.display()
                )
            })?;
            Ok(OperatorIdentity::from_keypair(key))
        }
        None => Ok(OperatorIdentity::from_keypair(
            EntityKeypair::try_generate().context("generating an operator identity")?,
        )),
    }
}

/// Sends tracing output to `path` (appending); the terminal is the UI's.
fn init_logging(path: &Path) -> anyhow::Result<()> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening log file {}", path.display()))?;
    let filter = tracing_subscriber::EnvFilter::try_from_env("DECK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(file))
        .try_init()
        .map_err(|e| anyhow!("setting up logging: {e}"))?;
    Ok(())
}

/// Runs the deck and returns what to print when it is done.
pub fn main(cli: Cli) -> anyhow::Result<Output> {
    if let Some(CliCommand::Keygen { path }) = &cli.command {
        return keygen(path).map(Output::Text);
    }
    if cli.once && !cli.json {
        bail!("--once needs --json (the only headless format so far)");
    }
    if let Some(path) = &cli.log_file {
        init_logging(path)?;
    }
    let operator = operator_identity(cli.operator_key.as_deref())?;
    tracing::info!(operator = %operator.operator_id(), demo = cli.demo, "deck starting");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let settings = Settings {
        color: cli.color(std::env::var_os("NO_COLOR").as_deref()),
        hint: (!cli.demo)
            .then(|| "one embedded node; `deck --demo` boots the 9-node demo".to_owned()),
    };
    runtime.block_on(async move {
        let deadline = Instant::now() + ONCE_DEADLINE;
        let session = Session::start(cli.demo, operator, deadline).await?;
        let result = if cli.once {
            once(session.deck(), session.expected_nodes(), deadline).await.map(Output::Json)
        } else {
            ui(session.deck(), settings).await.map(|()| Output::Nothing)
        };
        session.shutdown().await;
        tracing::info!("deck stopped");
        result
    })
}

fn ready(data: &DeckData, nodes: usize) -> bool {
    let all_peers = data.snapshot.peers.len() + 1 >= nodes;
    all_peers && (nodes <= 1 || (!data.logs.is_empty() && !data.calls.is_empty()))
}

/// Waits until the deck sees every node and some logs and calls, then returns the
/// state as JSON.
async fn once(
    deck: &dyn DeckSource,
    nodes: usize,
    deadline: Instant,
) -> anyhow::Result<serde_json::Value> {
    loop {
        let _ = timeout_at(deadline, deck.refresh()).await;
        if ready(&deck.data(), nodes) {
            return Ok(headless::snapshot_json(deck));
        }
        if Instant::now() >= deadline {
            let data = deck.data();
            bail!(
                "the cluster did not come up within {} s: {} of {nodes} nodes seen, {} log lines, {} calls",
                ONCE_DEADLINE.as_secs(),
                data.snapshot.peers.len() + 1,
                data.logs.len(),
                data.calls.len()
            );
        }
        sleep(Duration::from_millis(250)).await;
    }
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

type Pending<'a, T> = Option<Pin<Box<dyn Future<Output = T> + Send + 'a>>>;

/// Awaits the future in `slot`, or never when there is none.
async fn in_flight<T>(slot: &mut Pending<'_, T>) -> T {
    match slot {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

/// The event loop. Refreshes and commits run beside input handling (never
/// awaited inline), so keys keep working while a node is slow to answer.
async fn ui(source: &dyn DeckSource, settings: Settings) -> anyhow::Result<()> {
    let mut guard = term::Guard::enter().context("taking the terminal")?;
    let mut app = App::new(settings);
    let (tx, mut rx) = mpsc::channel(64);
    std::thread::Builder::new()
        .name("deck-input".into())
        .spawn(move || read_input(tx))
        .context("starting the input reader")?;
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
    drop(guard);
    Ok(())
}

/// Prepares the pending action for `verb` on `target`.
pub fn prepare_admin(
    admin: Admin<'_>,
    verb: AdminVerb,
    target: Target,
    duration: Option<Duration>,
) -> Result<PendingAction, String> {
    let needs = |what: &str| format!("{verb:?} needs {what}");
    let node = match target {
        Target::Node(n) => Some(n),
        _ => None,
    };
    let node = || node.ok_or_else(|| needs("a node"));
    let duration = || duration.ok_or_else(|| needs("a duration"));
    Ok(match verb {
        AdminVerb::Cordon => admin.cordon(node()?),
        AdminVerb::Uncordon => admin.uncordon(node()?),
        AdminVerb::Drain => admin.drain(node()?, duration()?),
        AdminVerb::MaintenanceOn => admin.maintenance_on(node()?, duration().ok()),
        AdminVerb::MaintenanceOff => admin.maintenance_off(node()?),
        AdminVerb::RestartDaemons => admin.restart_daemons(node()?),
        AdminVerb::ClearAvoid => admin.clear_avoid_list(node()?),
        AdminVerb::Freeze => admin.freeze(duration()?),
        AdminVerb::Thaw => admin.thaw(),
        AdminVerb::FlushAvoid => admin.flush_avoid_lists(),
        AdminVerb::ForceRestart => match target {
            Target::Daemon(d) => admin.force_restart_daemon(d).map_err(|e| e.to_string())?,
            _ => return Err(needs("a daemon")),
        },
        AdminVerb::KillMigration => match target {
            Target::Migration(m) => admin.kill_migration(m).map_err(|e| e.to_string())?,
            _ => return Err(needs("a migration")),
        },
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
        Effect::Prepare(verb, target, duration) => {
            match prepare_admin(admin, verb, target, duration) {
                Ok(pending) => app.ask(pending),
                Err(e) => app.toast(deck_model::Cell::new(e).styled(deck_model::Style::Err)),
            }
        }
        Effect::Commit => {
            let pending = app.pending.clone()?;
            tracing::info!(command = ?pending.command, targets = pending.targets.len(), "sending");
            return Some(Box::pin(async move { admin.confirm(&pending).await }));
        }
        Effect::Export => {
            let tab = app.state.tab().title().to_ascii_lowercase().replace('.', "");
            let path = format!("deck-{tab}-{}.csv", mesh_auth::unix_now_ms());
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
