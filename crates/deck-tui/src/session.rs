//! Sessions: what the deck looks at (an embedded node, the demo, or a cluster
//! it attaches to as an operator node), the operator identity it signs with, and
//! the headless `--once` run that waits for the cluster before printing it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use deck_model::headless::{self, Readiness, Ready};
use deck_model::{DeckClient, DeckSource};
use mesh::{ClusterKey, MeshConfig, MeshNode};
use mesh_auth::{EntityKeypair, OperatorIdentity};
use tokio::time::{Instant, sleep, timeout_at};

use crate::bookmarks::{self, Bookmark, Bookmarks};
use crate::cli::Cli;

/// How long `--once` waits for the cluster to come up (and a session to start).
pub const ONCE_DEADLINE: Duration = Duration::from_secs(30);

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

impl Place {
    /// The cluster a bookmark names.
    pub fn bookmarked(bookmark: &Bookmark, timeout: Duration) -> Place {
        Place::Attach {
            addr: bookmark.address.clone(),
            cluster_key: bookmark.cluster_key.clone(),
            timeout,
        }
    }
}

/// What the deck is attached to.
pub(crate) enum Session {
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
    /// Starts what `place` names, signing as `operator`, within `deadline`.
    pub(crate) async fn start(
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

    /// The deck of this session.
    pub(crate) fn deck(&self) -> &DeckClient {
        match self {
            Session::Demo(demo) => demo.deck(),
            Session::Node { deck, .. } => {
                deck.as_ref().unwrap_or_else(|| unreachable!("taken only by shutdown"))
            }
        }
    }

    /// What `--once` waits for before printing.
    fn readiness(&self) -> Readiness {
        match self {
            Session::Demo(demo) => Readiness::new(Ready::Nodes(demo.nodes().count())),
            Session::Node { attached: false, .. } => Readiness::new(Ready::Nodes(1)),
            Session::Node { attached: true, .. } => Readiness::new(Ready::Settled),
        }
    }

    /// Stops the deck and what it started.
    pub(crate) async fn shutdown(self) {
        match self {
            Session::Demo(mut demo) => demo.shutdown().await,
            Session::Node { mut deck, node, .. } => {
                drop(deck.take());
                node.shutdown().await;
            }
        }
    }
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

/// The bookmarks file, or an error saying why there is none.
pub(crate) fn bookmarks_path() -> anyhow::Result<PathBuf> {
    bookmarks::default_path_from_env()
        .ok_or_else(|| anyhow!("no config directory: set XDG_CONFIG_HOME or HOME"))
}

/// Loads the bookmarks; a corrupt file is moved aside and reported on stderr.
pub(crate) fn load_bookmarks() -> anyhow::Result<(Bookmarks, Option<String>)> {
    let outcome = Bookmarks::load(&bookmarks_path()?)?;
    let notice = outcome.notice();
    Ok((outcome.into_bookmarks(), notice))
}

/// Where the command line points the deck, the operator key it names, and a
/// notice for the operator (a bookmarks file moved aside).
pub(crate) fn place(cli: &Cli) -> anyhow::Result<(Place, Option<PathBuf>, Option<String>)> {
    if let Some(name) = &cli.bookmark {
        let (marks, notice) = load_bookmarks()?;
        if let Some(n) = &notice {
            tracing::warn!("{n}");
        }
        let b = marks
            .find(name)
            .ok_or_else(|| anyhow!("no bookmark named {name:?} in {}", marks.path.display()))?;
        let key = cli.operator_key.clone().or_else(|| b.operator_key.clone());
        let place = Place::bookmarked(b, Duration::from_secs(cli.attach_timeout));
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

/// The footer hint for a session on `place`.
pub(crate) fn hint(place: &Place) -> Option<String> {
    match place {
        Place::Embedded => Some(
            "one embedded node; `deck --demo` boots the 9-node demo, `deck --attach` joins a cluster"
                .to_owned(),
        ),
        Place::Demo => None,
        Place::Attach { addr, .. } => Some(format!("attached via {addr}; : switches cluster")),
    }
}

/// `--once`: starts a session on `place`, waits until its deck sees the
/// cluster (see [`Ready`]), stops it and returns the state as JSON.
pub(crate) async fn once(
    place: &Place,
    operator: OperatorIdentity,
) -> anyhow::Result<serde_json::Value> {
    let deadline = Instant::now() + ONCE_DEADLINE;
    let session = Session::start(place, operator, deadline).await?;
    let result = wait_and_read(session.deck(), session.readiness(), deadline).await;
    session.shutdown().await;
    result
}

/// Waits until the deck sees the cluster (see [`Ready`]), then returns the state
/// as JSON.
async fn wait_and_read(
    deck: &dyn DeckSource,
    mut ready: Readiness,
    deadline: Instant,
) -> anyhow::Result<serde_json::Value> {
    loop {
        let _ = timeout_at(deadline, deck.refresh()).await;
        if ready.check(&deck.data(), std::time::Instant::now()) {
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
