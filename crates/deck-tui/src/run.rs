//! Sessions and the event loop: boots what the command line asks for (the demo,
//! or one embedded node), then either prints the state once (headless) or runs
//! the terminal UI until the operator quits.

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use crossterm::event::{self, Event};
use deck_model::{
    Admin, CommitReport, DeckClient, DeckData, DeckError, DeckSource, Msg, REFRESH_INTERVAL, View,
    headless, summarize, update, views,
};
use mesh::{ClusterKey, MeshConfig, MeshNode};
use mesh_auth::{EntityKeypair, OperatorIdentity};
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior, interval, sleep, sleep_until, timeout_at};

use crate::app::{App, Effect, Settings};
use crate::bookmarks::{self, Bookmark, Bookmarks};
use crate::cli::{BookmarkCommand, Cli, CliCommand};
use crate::keys;
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

/// Where the deck looks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Place {
    /// One node of its own, in-process.
    Embedded,
    /// The 9-node demo cluster, in-process.
    Demo,
    /// A running cluster, through the node at `addr`.
    Attach {
        /// `host:port` of a node of the cluster.
        addr: String,
        /// The cluster key file.
        cluster_key: PathBuf,
        /// How long to wait to hear from the cluster.
        timeout: Duration,
    },
}

/// What the deck is attached to.
enum Session {
    Demo(Box<mesh_demo::Demo>),
    /// A node of the deck's own (embedded, or attached to a cluster).
    Node {
        deck: Option<DeckClient>,
        node: MeshNode,
        attached: bool,
    },
}

/// Starts a light operator node that joins the cluster through `addr`, and
/// waits up to `timeout` for a node of the cluster to answer.
pub async fn attach_node(
    addr: &str,
    cluster_key: &Path,
    timeout: Duration,
) -> anyhow::Result<MeshNode> {
    let key = ClusterKey::load(cluster_key).context("loading the cluster key")?;
    let target = tokio::net::lookup_host(addr)
        .await
        .with_context(|| format!("resolving {addr:?} (expected host:port)"))?
        .next()
        .ok_or_else(|| anyhow!("{addr:?} resolves to no address"))?;
    let (bind, timing) = if target.ip().is_loopback() {
        (std::net::SocketAddr::from(([127, 0, 0, 1], 0)), mesh::TimingProfile::loopback())
    } else if target.is_ipv4() {
        (std::net::SocketAddr::from(([0, 0, 0, 0], 0)), mesh::TimingProfile::lan())
    } else {
        (std::net::SocketAddr::from(([0u16; 8], 0)), mesh::TimingProfile::lan())
    };
    let config =
        MeshConfig::new(key).bind(bind).seed(target.to_string()).timing(timing).operator_node();
    let node = MeshNode::start(config).await.context("starting the deck's node")?;
    let joined = tokio::time::timeout(timeout, async {
        loop {
            if node.peers().iter().any(|p| !p.is_operator() && p.health.is_healthy()) {
                return;
            }
            sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    if joined.is_err() {
        node.shutdown().await;
        bail!(
            "no answer from {addr} within {:.1} s: is a node listening there, and is {} its cluster key?",
            timeout.as_secs_f64(),
            cluster_key.display()
        );
    }
    Ok(node)
}

impl Session {
    async fn start(
        place: &Place,
        operator: OperatorIdentity,
        deadline: Instant,
    ) -> anyhow::Result<Session> {
        let (node, attached) = match place {
            Place::Demo => {
                let config =
                    mesh_demo::DemoConfig { operator: Some(operator), ..Default::default() };
                let spawned = timeout_at(deadline, mesh_demo::spawn(config))
                    .await
                    .map_err(|_| anyhow!("the demo cluster did not come up within 30 s"))?
                    .context("starting the demo cluster")?;
                return Ok(Session::Demo(Box::new(spawned)));
            }
            Place::Embedded => {
                let key = ClusterKey::generate().context("generating a cluster key")?;
                let node =
                    MeshNode::start(MeshConfig::new(key)).await.context("starting the node")?;
                (node, false)
            }
            Place::Attach { addr, cluster_key, timeout } => {
                (attach_node(addr, cluster_key, *timeout).await?, true)
            }
        };
        // An attached deck holds no adapters: it reads every node's inventory.
        let config = deck_model::DeckConfig {
            remote_blobs: attached.then_some(Duration::from_secs(2)),
            ..Default::default()
        };
        let deck = DeckClient::from_node_with_config(&node, operator, config)
            .context("attaching the deck")?;
        Ok(Session::Node { deck: Some(deck), node, attached })
    }

    fn deck(&self) -> &DeckClient {
        match self {
            Session::Demo(demo) => demo.deck(),
            Session::Node { deck, .. } => {
                deck.as_ref().unwrap_or_else(|| unreachable!("taken only by shutdown"))
            }
        }
    }

    /// What `--once` waits for before printing.
    fn readiness(&self) -> Ready {
        match self {
            Session::Demo(demo) => Ready::Nodes(demo.nodes().count()),
            Session::Node { attached: false, .. } => Ready::Nodes(1),
            Session::Node { attached: true, .. } => Ready::Settled,
        }
    }

    async fn shutdown(self) {
        match self {
            Session::Demo(mut demo) => demo.shutdown().await,
            Session::Node { mut deck, node, .. } => {
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
    /// A JSON document (`--once --json`); print it with
    /// [`deck_model::headless::to_json_text`], which escapes C1 and bidi
    /// characters.
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

/// The bookmarks file, or an error saying why there is none.
fn bookmarks_path() -> anyhow::Result<PathBuf> {
    bookmarks::default_path_from_env()
        .ok_or_else(|| anyhow!("no config directory: set XDG_CONFIG_HOME or HOME"))
}

/// Loads the bookmarks; a corrupt file is moved aside and reported on stderr.
fn load_bookmarks() -> anyhow::Result<(Bookmarks, Option<String>)> {
    let outcome = Bookmarks::load(&bookmarks_path()?)?;
    let notice = outcome.notice();
    Ok((outcome.into_bookmarks(), notice))
}

fn bookmark_command(action: &BookmarkCommand) -> anyhow::Result<String> {
    let (mut marks, notice) = load_bookmarks()?;
    let mut out = notice.map(|n| format!("warning: {n}\n")).unwrap_or_default();
    match action {
        BookmarkCommand::Add { name, address, cluster_key, operator_key } => {
            let bookmark = Bookmark {
                name: name.clone(),
                address: address.clone(),
                cluster_key: absolute(cluster_key),
                operator_key: operator_key.as_deref().map(absolute),
            };
            bookmark.validate().map_err(|e| anyhow!("bookmark {name:?}: {e}"))?;
            marks.upsert(bookmark);
            marks.save()?;
            out.push_str(&format!("saved {name:?} in {}", marks.path.display()));
        }
        BookmarkCommand::List => {
            if marks.items.is_empty() {
                out.push_str(&format!("no bookmarks in {}", marks.path.display()));
            }
            for b in &marks.items {
                out.push_str(&format!(
                    "{:<16} {:<24} key {}{}\n",
                    b.name,
                    b.address,
                    b.cluster_key.display(),
                    b.operator_key
                        .as_ref()
                        .map(|k| format!("  operator {}", k.display()))
                        .unwrap_or_default()
                ));
            }
        }
        BookmarkCommand::Rm { name } => {
            if !marks.remove(name) {
                bail!("no bookmark named {name:?} in {}", marks.path.display());
            }
            marks.save()?;
            out.push_str(&format!("removed {name:?}"));
        }
    }
    Ok(out.trim_end().to_owned())
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

/// Where the command line points the deck, the operator key it names, and a
/// notice for the operator (a bookmarks file moved aside).
fn place(cli: &Cli) -> anyhow::Result<(Place, Option<PathBuf>, Option<String>)> {
    if let Some(name) = &cli.bookmark {
        let (marks, notice) = load_bookmarks()?;
        if let Some(n) = &notice {
            tracing::warn!("{n}");
        }
        let b = marks
            .find(name)
            .ok_or_else(|| anyhow!("no bookmark named {name:?} in {}", marks.path.display()))?;
        let key = cli.operator_key.clone().or_else(|| b.operator_key.clone());
        let place = Place::Attach {
            addr: b.address.clone(),
            cluster_key: b.cluster_key.clone(),
            timeout: Duration::from_secs(cli.attach_timeout),
        };
        return Ok((place, key, notice));
    }
    let place = match (&cli.attach, &cli.cluster_key) {
        (Some(addr), Some(key)) => Place::Attach {
            addr: addr.clone(),
            cluster_key: key.clone(),
            timeout: Duration::from_secs(cli.attach_timeout),
        },
        (Some(_), None) => bail!("--attach needs --cluster-key"),
        _ if cli.demo => Place::Demo,
        _ => Place::Embedded,
    };
    Ok((place, cli.operator_key.clone(), None))
}

fn hint(place: &Place) -> Option<String> {
    match place {
        Place::Embedded => Some(
            "one embedded node; `deck --demo` boots the 9-node demo, `deck --attach` joins a cluster"
                .to_owned(),
        ),
        Place::Demo => None,
        Place::Attach { addr, .. } => Some(format!("attached via {addr}; : switches cluster")),
    }
}

/// Runs the deck and returns what to print when it is done.
pub fn main(cli: Cli) -> anyhow::Result<Output> {
    match &cli.command {
        Some(CliCommand::Keygen { path }) => return keygen(path).map(Output::Text),
        Some(CliCommand::Bookmark { action }) => return bookmark_command(action).map(Output::Text),
        None => {}
    }
    if cli.once && !cli.json {
        bail!("--once needs --json (the only headless format so far)");
    }
    if let Some(path) = &cli.log_file {
        init_logging(path)?;
    }
    let (mut place, key, mut notice) = place(&cli)?;
    let mut operator = operator_identity(key.as_deref())?;
    tracing::info!(operator = %operator.operator_id(), ?place, "deck starting");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let color = cli.color(std::env::var_os("NO_COLOR").as_deref());
    runtime.block_on(async move {
        if cli.once {
            let deadline = Instant::now() + ONCE_DEADLINE;
            let session = Session::start(&place, operator, deadline).await?;
            let result = once(session.deck(), session.readiness(), deadline).await;
            session.shutdown().await;
            return result.map(Output::Json);
        }
        let mut screen = Screen::take()?;
        loop {
            let deadline = Instant::now() + ONCE_DEADLINE;
            let session = Session::start(&place, operator.clone(), deadline).await?;
            let settings = Settings { color, hint: notice.take().or_else(|| hint(&place)) };
            let exit = ui(&mut screen, session.deck(), settings).await;
            session.shutdown().await;
            match exit? {
                Exit::Quit => break,
                Exit::Switch(b) => {
                    tracing::info!(bookmark = %b.name, "switching cluster");
                    if let Some(key) = &b.operator_key {
                        operator = operator_identity(Some(key))?;
                    }
                    place = Place::Attach {
                        addr: b.address,
                        cluster_key: b.cluster_key,
                        timeout: Duration::from_secs(cli.attach_timeout),
                    };
                }
            }
        }
        drop(screen);
        tracing::info!("deck stopped");
        Ok(Output::Nothing)
    })
}

/// What `--once` waits for.
#[derive(Clone, Copy, Debug)]
enum Ready {
    /// This many nodes (this one included), and some logs and calls if more than one.
    Nodes(usize),
    /// Attached: every cluster node that is up read once, and the set of
    /// members that are up unchanged for [`SETTLE`] (the attach node's first
    /// push-pull brings the whole member list, dead and departed ones
    /// included, which are listed but not read).
    Settled,
}

/// How long an attached `--once` waits for the membership to stop changing.
pub const SETTLE: Duration = Duration::from_millis(2_500);

fn ready(
    data: &DeckData,
    want: Ready,
    last_members: &mut Option<(Vec<mesh::NodeId>, Instant)>,
) -> bool {
    match want {
        Ready::Nodes(nodes) => {
            let all_peers = data.snapshot.peers.len() + 1 >= nodes;
            all_peers && (nodes <= 1 || (!data.logs.is_empty() && !data.calls.is_empty()))
        }
        Ready::Settled => {
            // Members that are up (suspect ones included: they are shown as
            // such); unreachable and departed ones are listed, not read.
            let members: Vec<mesh::NodeId> = data
                .snapshot
                .cluster_nodes()
                .filter(|n| data.snapshot.peer(*n).is_none_or(|p| !p.info.health.is_unreachable()))
                .collect();
            let read =
                members.iter().all(|n| data.streams.get(n).is_some_and(|s| s.last_ok_ms.is_some()));
            let now = Instant::now();
            let since = match last_members {
                Some((m, since)) if *m == members => *since,
                _ => {
                    *last_members = Some((members.clone(), now));
                    now
                }
            };
            !members.is_empty() && read && now.duration_since(since) >= SETTLE
        }
    }
}

/// Waits until the deck sees the cluster (see [`Ready`]), then returns the state
/// as JSON.
async fn once(
    deck: &dyn DeckSource,
    want: Ready,
    deadline: Instant,
) -> anyhow::Result<serde_json::Value> {
    let mut last_members = None;
    loop {
        let _ = timeout_at(deadline, deck.refresh()).await;
        if ready(&deck.data(), want, &mut last_members) {
            return Ok(headless::snapshot_json(deck));
        }
        if Instant::now() >= deadline {
            let data = deck.data();
            bail!(
                "the cluster did not settle within {} s: {} nodes seen ({} healthy), {} log lines, {} calls",
                ONCE_DEADLINE.as_secs(),
                data.snapshot.peers.len() + 1,
                data.snapshot.peers.iter().filter(|p| p.info.health.is_healthy()).count() + 1,
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
async fn ui(
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
        Effect::OpenPicker => match load_bookmarks() {
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
