//! The deck's commands: `deck keygen`, `deck bookmark ...`, and the deck itself
//! (headless with `--once --json`, or the terminal UI), with its logging.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use mesh_auth::{EntityKeypair, OperatorIdentity};

use crate::bookmarks::Bookmark;
use crate::cli::{BookmarkCommand, Cli, CliCommand};
use crate::session::{self, load_bookmarks};
use crate::ui;

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

/// Runs the deck and returns what to print when it is done.
pub fn run(cli: Cli) -> anyhow::Result<Output> {
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
    let (place, key, notice) = session::place(&cli)?;
    let operator = session::operator_identity(key.as_deref())?;
    tracing::info!(operator = %operator.operator_id(), ?place, "deck starting");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        if cli.once {
            return session::once(&place, operator).await.map(Output::Json);
        }
        let options = ui::Options {
            color: cli.color(std::env::var_os("NO_COLOR").as_deref()),
            notice,
            attach_timeout: Duration::from_secs(cli.attach_timeout),
        };
        ui::run(place, operator, options).await?;
        tracing::info!("deck stopped");
        Ok(Output::Nothing)
    })
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
