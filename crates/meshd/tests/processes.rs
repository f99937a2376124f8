//! Process-level tests: real `meshd` processes on 127.0.0.1, watched and commanded
//! by an in-process observer node with a deck client (as an attached deck would).
//!
//! Every child is killed when its guard drops (also when a test panics), and runs
//! with `--exit-on-stdin-eof`, so it stops by itself even if this process is
//! killed. Deadlines are generous (the machine may be loaded); the measured times
//! are printed.

#![allow(clippy::print_stdout, clippy::print_stderr, reason = "tests report timings")]

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use deck_model::{DeckClient, DeckSource, NodeResult};
use mesh::{AdminOutcome, ClusterKey, MeshConfig, MeshNode, NodeId};
use mesh_auth::{EntityKeypair, OperatorIdentity};
use mesh_blobs::{Hash, MemLog, MeshBlobAdapter};
use mesh_rpc::node_services::{self, Page};
use meshd::StartupInfo;

/// How long a process may take to print its ready line.
const START_DEADLINE: Duration = Duration::from_secs(20);
/// How long a cluster may take to converge or a node to rejoin.
const CONVERGE_DEADLINE: Duration = Duration::from_secs(20);
/// How long a failure may take to be noticed (loopback profile: ~1 s unloaded).
const DETECT_DEADLINE: Duration = Duration::from_secs(10);

fn meshd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_meshd"))
}

/// Runs a short meshd command (a tool, or a start expected to fail) to its end.
fn run_to_end(cmd: &mut Command) -> (ExitStatus, String, String) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("RUST_LOG", "info")
        .spawn()
        .expect("meshd starts");
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(15) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("meshd {:?} did not exit within 15 s", cmd.get_args().collect::<Vec<_>>());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (status, out.join().unwrap(), err.join().unwrap())
}

/// A running meshd process. Killed (and reaped) on drop; its log is printed if
/// the test is failing.
struct Proc {
    name: String,
    child: Child,
    _stdin: Option<ChildStdin>,
    addr: SocketAddr,
    id: NodeId,
    args: Vec<String>,
    log: PathBuf,
}

impl Proc {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, as a crash would.
    fn sigkill(&mut self) {
        self.child.kill().expect("kill");
        self.child.wait().expect("reap");
    }

    #[cfg(unix)]
    fn signal(&self, signal: rustix::process::Signal) {
        let pid = rustix::process::Pid::from_child(&self.child);
        rustix::process::kill_process(pid, signal).expect("signal sent");
    }

    fn wait_exit(&mut self, deadline: Duration) -> ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(started.elapsed() < deadline, "{} did not exit within {deadline:?}", self.name);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = self.log_text();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("---- {} (pid {}) stderr, last lines ----", self.name, self.pid());
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

/// A temporary directory with a cluster key, an operator key and an operators
/// file registering it, all made with meshd's own tools.
struct Fixture {
    tmp: tempfile::TempDir,
    cluster_key: PathBuf,
    operators: PathBuf,
    operator: OperatorIdentity,
}

impl Fixture {
    fn new() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let cluster_key = tmp.path().join("cluster.key");
        let (status, _, err) = run_to_end(meshd().arg("keygen-cluster").arg(&cluster_key));
        assert!(status.success(), "keygen-cluster: {err}");
        let operator_key = tmp.path().join("alice.key");
        let (status, table, err) = run_to_end(meshd().arg("keygen-operator").arg(&operator_key));
        assert!(status.success(), "keygen-operator: {err}");
        let operators = tmp.path().join("operators.toml");
        std::fs::write(
            &operators,
            format!("routine_threshold = 1\nice_threshold = 1\nice_cooldown_secs = 0\n\n{table}"),
        )
        .unwrap();
        // meshd refuses an operators file others may write, whatever the umask.
        set_mode(&operators, 0o644);
        let operator = OperatorIdentity::from_keypair(EntityKeypair::load(&operator_key).unwrap());
        Fixture { tmp, cluster_key, operators, operator }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// Starts `name` (data dir `<tmp>/<name>`) listening on `listen`.
    fn start_at(&self, name: &str, listen: &str, seeds: &[SocketAddr], operators: bool) -> Proc {
        let mut args: Vec<String> = vec![
            "--listen".into(),
            listen.into(),
            "--cluster-key".into(),
            self.cluster_key.display().to_string(),
            "--data-dir".into(),
            self.path(name).display().to_string(),
            "--profile".into(),
            "loopback".into(),
            "--exit-on-stdin-eof".into(),
        ];
        for seed in seeds {
            args.extend(["--seed".into(), seed.to_string()]);
        }
        if operators {
            args.extend(["--operators".into(), self.operators.display().to_string()]);
        }
        spawn(name, args, self.path(&format!("{name}.log")))
    }

    /// Starts `name` on a free port.
    fn start(&self, name: &str, seeds: &[SocketAddr], operators: bool) -> Proc {
        self.start_at(name, "127.0.0.1:0", seeds, operators)
    }

    /// Starts a stopped process again: same arguments, same data dir, same address.
    fn restart(&self, old: &Proc) -> Proc {
        let mut args = old.args.clone();
        let i = args.iter().position(|a| a == "--listen").unwrap();
        args[i + 1] = old.addr.to_string();
        spawn(&old.name, args, old.log.clone())
    }

    /// An observer node in this process: same cluster key, joins through `seed`,
    /// announced as an operator node.
    async fn observer(&self, seed: SocketAddr) -> MeshNode {
        let key = ClusterKey::load(&self.cluster_key).unwrap();
        let mut config = MeshConfig::new(key).seed(seed.to_string());
        config.flags = 1;
        MeshNode::start(config).await.unwrap()
    }
}

/// Sets the permission bits of `path` (no-op off Unix).
fn set_mode(path: &std::path::Path, mode: u32) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
}

/// The permission bits of `path`.
#[cfg(unix)]
fn mode_of(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn spawn(name: &str, args: Vec<String>, log: PathBuf) -> Proc {
    let stderr =
        std::fs::OpenOptions::new().create(true).append(true).open(&log).expect("log file");
    let mut child = meshd()
        .args(&args)
        .env("RUST_LOG", "info")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(stderr))
        .spawn()
        .expect("meshd starts");
    let stdin = child.stdin.take();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        if let Some(Ok(line)) = lines.next() {
            let _ = tx.send(line);
        }
        for _ in lines {} // drain until the process exits
    });
    let started = Instant::now();
    let line = loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => break line,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                if let Some(status) = child.try_wait().unwrap() {
                    panic!(
                        "{name} exited ({status}) before listening:\n{}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    );
                }
                if started.elapsed() > START_DEADLINE {
                    let _ = child.kill();
                    panic!("{name} printed no ready line within {START_DEADLINE:?}");
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{name} closed stdout without a ready line:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
        }
    };
    let (addr, id) = StartupInfo::parse_ready_line(&line)
        .unwrap_or_else(|| panic!("{name}: unexpected ready line {line:?}"));
    Proc { name: name.to_owned(), child, _stdin: stdin, addr, id, args, log }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// Polls `probe` every 25 ms until it gives a value; panics after `deadline`.
async fn wait_until<T>(what: &str, deadline: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(started.elapsed() < deadline, "timed out after {deadline:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn healthy(node: &MeshNode, id: NodeId) -> bool {
    node.peers().iter().any(|p| p.node_id == id && p.health.is_healthy())
}

/// Unreachable, or gone from the peer list (a node that left).
fn down(node: &MeshNode, id: NodeId) -> bool {
    node.peers().iter().find(|p| p.node_id == id).is_none_or(|p| p.health.is_unreachable())
}

async fn audit_of(deck: &DeckClient, node: NodeId) -> Vec<mesh_auth::AuditEntry> {
    let started = Instant::now();
    loop {
        match node_services::audit_since(deck.rpc(), node, Page { from_seq: 0, limit: 1000 }).await
        {
            Ok(entries) => return entries,
            Err(e) => {
                assert!(started.elapsed() < CONVERGE_DEADLINE, "audit of {node}: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

fn payload() -> Vec<u8> {
    // 300 KB of deterministic, incompressible-looking bytes.
    (0..300_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect()
}

#[cfg(unix)]
#[test]
fn five_processes_crash_restart_and_rejoin_with_identity_ledger_and_blobs() {
    let fx = Fixture::new();
    // A blob in node-4's store before it first starts, stored with the offline tool.
    let file = fx.path("payload.bin");
    std::fs::write(&file, payload()).unwrap();
    let (status, out, err) =
        run_to_end(meshd().arg("put-blob").arg("--data-dir").arg(fx.path("node-4")).arg(&file));
    assert!(status.success(), "put-blob: {err}");
    let hash: Hash = out.split_whitespace().next().unwrap().parse().unwrap();
    assert_eq!(hash, Hash::of(&payload()));

    let boot = Instant::now();
    let mut nodes = vec![fx.start("node-0", &[], true)];
    let seed = nodes[0].addr;
    for i in 1..5 {
        nodes.push(fx.start(&format!("node-{i}"), &[seed], true));
    }
    let ids: Vec<NodeId> = nodes.iter().map(|n| n.id).collect();
    println!("5 meshd processes listening after {} ms", boot.elapsed().as_millis());

    runtime().block_on(async {
        let observer = fx.observer(seed).await;
        let deck = DeckClient::from_node(&observer, fx.operator.clone()).unwrap();
        let fetcher =
            MeshBlobAdapter::new("observer", &observer, Arc::new(MemLog::default())).unwrap();

        let attach = Instant::now();
        wait_until(
            "the deck's snapshot to show the 5 meshd nodes healthy",
            CONVERGE_DEADLINE,
            || {
                let snap = deck.current_snapshot();
                ids.iter()
                    .all(|id| snap.peer(*id).is_some_and(|p| p.info.health.is_healthy()))
                    .then_some(())
            },
        )
        .await;
        println!(
            "observer sees all 5 nodes healthy {} ms after attaching",
            attach.elapsed().as_millis()
        );

        // node-4 serves the blob put before it started.
        let victim = ids[4];
        let inventories = fetcher.remote_list(victim).await.unwrap();
        let disk = inventories.iter().find(|i| i.adapter == meshd::BLOB_ADAPTER).unwrap();
        assert!(disk.entries.iter().any(|e| e.hash == hash), "{inventories:?}");

        // A cordon from the deck, recorded in node-4's ledger.
        let report = deck.admin().confirm(&deck.admin().cordon(victim)).await.unwrap();
        assert!(report.all_accepted(), "{}", report.summary());
        let ledger_before = audit_of(&deck, victim).await;
        assert_eq!(ledger_before.len(), 1);
        assert!(ledger_before[0].record.outcome.is_accepted());

        // SIGKILL: the observer sees it go.
        nodes[4].sigkill();
        let killed = Instant::now();
        wait_until("node-4 to be reported unreachable", DETECT_DEADLINE, || {
            down(&observer, victim).then_some(())
        })
        .await;
        println!("SIGKILLed node-4 reported unreachable after {} ms", killed.elapsed().as_millis());
        wait_until("the deck's snapshot to show node-4 unreachable", DETECT_DEADLINE, || {
            deck.current_snapshot()
                .peer(victim)
                .is_none_or(|p| p.info.health.is_unreachable())
                .then_some(())
        })
        .await;

        // Restart on the same data dir and address: same identity, ledger, blobs.
        let restarted = Instant::now();
        nodes[4] = fx.restart(&nodes[4]);
        assert_eq!(nodes[4].id, victim, "the node keeps its id across restarts");
        wait_until("node-4 to rejoin", CONVERGE_DEADLINE, || {
            healthy(&observer, victim).then_some(())
        })
        .await;
        println!("restarted node-4 healthy again after {} ms", restarted.elapsed().as_millis());
        for (i, id) in ids.iter().enumerate() {
            assert!(healthy(&observer, *id), "node-{i} healthy after the restart");
        }
        // The journal of another node says what the deck showed: node-4 went
        // unreachable and came back, by id and address.
        let journal = nodes[0].log.clone();
        wait_until(
            "node-0's log to record node-4 leaving and rejoining",
            CONVERGE_DEADLINE,
            || {
                let text = std::fs::read_to_string(&journal).unwrap_or_default();
                let about = |what: &str| {
                    text.lines().any(|l| l.contains(what) && l.contains(&victim.to_string()))
                };
                (about("member unreachable") && about("member rejoined")).then_some(())
            },
        )
        .await;
        let ledger_after = audit_of(&deck, victim).await;
        assert_eq!(ledger_after, ledger_before, "the ledger survives the crash");
        let fetched = fetcher.fetch(hash, Some(victim)).await.unwrap();
        assert_eq!(fetched.from, Some(victim));
        assert_eq!(fetcher.store().get(&hash).unwrap().unwrap(), &payload()[..]);
        // The cordon survives the crash too (the admin state is persisted).
        wait_until("node-4 still cordoned after the restart", Duration::from_secs(30), || {
            observer.snapshot().peer(victim).filter(|p| p.admin.cordoned).map(|_| ())
        })
        .await;

        // The restarted node still verifies and records commands.
        let report = deck.admin().confirm(&deck.admin().uncordon(victim)).await.unwrap();
        assert!(report.all_accepted(), "{}", report.summary());
        assert_eq!(audit_of(&deck, victim).await.len(), 2);

        // SIGTERM: a clean exit, and the peers are told.
        let leaver = ids[3];
        nodes[3].signal(rustix::process::Signal::TERM);
        let stopping = Instant::now();
        let status = nodes[3].wait_exit(Duration::from_secs(15));
        assert_eq!(status.code(), Some(0), "SIGTERM exits 0");
        wait_until("node-3 to be seen leaving", DETECT_DEADLINE, || {
            down(&observer, leaver).then_some(())
        })
        .await;
        println!(
            "SIGTERMed node-3 exited and was seen leaving after {} ms",
            stopping.elapsed().as_millis()
        );
        assert!(nodes[3].log_text().contains("meshd stopped"));

        drop(fetcher);
        drop(deck);
        observer.shutdown().await;
    });
}

#[cfg(unix)]
#[test]
fn commands_from_a_registered_operator_are_recorded_and_a_stranger_is_refused() {
    let fx = Fixture::new();
    let mut guarded = fx.start("guarded", &[], true);
    let open = fx.start("open", &[guarded.addr], false);
    let (a, b) = (guarded.id, open.id);

    runtime().block_on(async {
        let observer = fx.observer(guarded.addr).await;
        let deck = DeckClient::from_node(&observer, fx.operator.clone()).unwrap();
        let stranger = OperatorIdentity::from_keypair(EntityKeypair::generate());
        let stranger_id = stranger.operator_id();
        let stranger = DeckClient::from_node(&observer, stranger).unwrap();
        wait_until("both nodes healthy", CONVERGE_DEADLINE, || {
            (healthy(&observer, a) && healthy(&observer, b)).then_some(())
        })
        .await;

        // The registered operator's cordon is verified, applied and recorded.
        let report = deck.admin().confirm(&deck.admin().cordon(a)).await.unwrap();
        assert!(report.all_accepted(), "{}", report.summary());
        let seq = match &report.outcomes[0].result {
            NodeResult::Delivered(AdminOutcome::Accepted { audit_seq, .. }) => *audit_seq,
            other => panic!("{other:?}"),
        };
        let operator = fx.operator.operator_id();
        let started = Instant::now();
        loop {
            deck.refresh().await;
            let seen = deck.data().audit.since(0).any(|(_, item)| {
                item.node == a
                    && item.entry.seq == seq
                    && item.entry.record.outcome.is_accepted()
                    && item.entry.record.operators == [operator]
                    && item.entry.record.target == format!("node:{a}")
            });
            if seen {
                break;
            }
            assert!(
                started.elapsed() < CONVERGE_DEADLINE,
                "the deck's AUDIT never showed the cordon"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        wait_until("the cordon to show in the snapshot", CONVERGE_DEADLINE, || {
            observer.snapshot().peer(a).is_some_and(|p| p.admin.cordoned).then_some(())
        })
        .await;

        // A stranger can watch ...
        let snap = stranger.current_snapshot();
        assert!(snap.peer(a).is_some() && snap.peer(b).is_some());
        // ... but every command it sends is refused as not_authorized.
        let admin = stranger.admin();
        let actions = [
            admin.cordon(a),
            admin.uncordon(a),
            admin.drain(a, Duration::from_secs(30)),
            admin.maintenance_on(a, Some(Duration::from_secs(60))),
            admin.maintenance_off(a),
            admin.restart_daemons(a),
            admin.clear_avoid_list(a),
            admin.freeze(Duration::from_secs(60)),
            admin.flush_avoid_lists(),
        ];
        let ledger_before = audit_of(&deck, a).await.len();
        for pending in &actions {
            let report = admin.confirm(pending).await.unwrap();
            let on_a = report.outcomes.iter().find(|o| o.node == a).expect("a is a target");
            match &on_a.result {
                NodeResult::Delivered(AdminOutcome::Rejected { code, audit_seq, .. }) => {
                    assert_eq!(code, "not_authorized", "{}", report.summary());
                    assert!(audit_seq.is_none(), "a stranger's envelope was recorded");
                }
                other => panic!("{} on the guarded node: {other:?}", pending.command.verb()),
            }
        }
        // Nobody with an operator key stands behind them: the ledger does not grow.
        let ledger = audit_of(&deck, a).await;
        assert_eq!(ledger.len(), ledger_before);
        assert!(ledger.iter().all(|e| !e.record.operators.contains(&stranger_id)));
        assert!(observer.snapshot().peer(a).is_some_and(|p| p.admin.cordoned), "still cordoned");

        // A node started without --operators refuses even a registered operator.
        let report = deck.admin().confirm(&deck.admin().cordon(b)).await.unwrap();
        match &report.outcomes[0].result {
            NodeResult::Delivered(AdminOutcome::Rejected { code, .. }) => {
                assert_eq!(code, "no_verifier")
            }
            other => panic!("{other:?}"),
        }

        drop(stranger);
        drop(deck);
        observer.shutdown().await;
    });

    // SIGINT is a clean stop too.
    guarded.signal(rustix::process::Signal::INT);
    assert_eq!(guarded.wait_exit(Duration::from_secs(15)).code(), Some(0), "SIGINT exits 0");
    assert!(guarded.log_text().contains("reason=\"SIGINT\""), "{}", guarded.log_text());
}

#[cfg(unix)]
#[test]
fn bad_configuration_is_one_clear_line_and_a_nonzero_exit() {
    let fx = Fixture::new();
    let key = fx.cluster_key.display().to_string();
    let dir = |name: &str| fx.path(name).display().to_string();
    // Private files, so each case fails for its own reason and not for its mode.
    let write = |name: &str, text: &str| {
        let path = fx.path(name);
        std::fs::write(&path, text).unwrap();
        set_mode(&path, 0o600);
        path.display().to_string()
    };

    let corrupt_key = write("corrupt.key", "not a key\n");
    let bad_key_ops = write(
        "bad-key-ops.toml",
        "routine_threshold = 1\n\n[[operator]]\nname = \"alice\"\npublic_key = \"abc123\"\n",
    );
    let typo_ops = write(
        "typo-ops.toml",
        &format!(
            "routine_threshold = 1\n[[operator]]\nname = \"alice\"\npublic_key = \"{}\"\nrole = \"admin\"\n",
            fx.operator.public().to_hex()
        ),
    );
    let threshold_ops = write(
        "threshold-ops.toml",
        &format!(
            "routine_threshold = 2\n[[operator]]\nname = \"alice\"\npublic_key = \"{}\"\n",
            fx.operator.public().to_hex()
        ),
    );
    let not_a_dir = write("plain-file", "x");
    // A good cluster key and a good operators file, but with modes that let other
    // users read the key or change who may command the node.
    let open_key = fx.path("open-cluster.key");
    ClusterKey::load(&fx.cluster_key).unwrap().save(&open_key).unwrap();
    set_mode(&open_key, 0o644);
    let open_key = open_key.display().to_string();
    let open_ops = fx.path("open-ops.toml");
    std::fs::copy(&fx.operators, &open_ops).unwrap();
    set_mode(&open_ops, 0o666);
    let open_ops = open_ops.display().to_string();
    let corrupt_identity = fx.path("corrupt-identity.key");
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&corrupt_identity)
            .unwrap();
        f.write_all(b"meshdeck-ed25519-key v1\npublic 00\n").unwrap();
    }
    let open_identity = fx.path("open-identity.key");
    EntityKeypair::generate().save(&open_identity).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&open_identity, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let busy = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let busy_addr = busy.local_addr().unwrap().to_string();
    let mut running = fx.start("running", &[], false);

    let base = |listen: &str, key: &str, data: &str| -> Vec<String> {
        ["--listen", listen, "--cluster-key", key, "--data-dir", data]
            .iter()
            .map(|s| s.to_string())
            .collect()
    };
    let with = |mut args: Vec<String>, extra: &[&str]| {
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    let missing_key = dir("missing.key");
    let corrupt_identity = corrupt_identity.display().to_string();
    let open_identity = open_identity.display().to_string();
    // (what, arguments, words the error line must hold, a data dir that must not
    // have been created because the error came first)
    type Case<'a> = (&'a str, Vec<String>, Vec<&'a str>, Option<PathBuf>);
    let cases: Vec<Case<'_>> = vec![
        (
            "missing cluster key",
            base("127.0.0.1:0", &missing_key, &dir("d-missing-key")),
            vec!["cluster key", "missing.key", "No such file"],
            Some(fx.path("d-missing-key")),
        ),
        (
            "corrupt cluster key",
            base("127.0.0.1:0", &corrupt_key, &dir("d-corrupt-key")),
            vec!["cluster key", "corrupt.key", "64 hex digits"],
            Some(fx.path("d-corrupt-key")),
        ),
        (
            "cluster key readable by others",
            base("127.0.0.1:0", &open_key, &dir("d-open-key")),
            vec!["cluster key", &open_key, "mode 0644", "lets other users read it", "chmod 600"],
            Some(fx.path("d-open-key")),
        ),
        (
            "address in use",
            base(&busy_addr, &key, &dir("d-busy")),
            vec!["--listen", &busy_addr, "in use"],
            None,
        ),
        (
            "bad --listen",
            base("no-port-here", &key, &dir("d-bad-listen")),
            vec!["--listen no-port-here", "host:port"],
            Some(fx.path("d-bad-listen")),
        ),
        (
            "operators file with a bad key",
            with(base("127.0.0.1:0", &key, &dir("d-bad-ops")), &["--operators", &bad_key_ops]),
            vec!["operators file", "bad-key-ops.toml", "line 5", "public_key", "alice"],
            Some(fx.path("d-bad-ops")),
        ),
        (
            "operators file with an unknown field",
            with(base("127.0.0.1:0", &key, &dir("d-typo-ops")), &["--operators", &typo_ops]),
            vec!["operators file", "typo-ops.toml", "line 5", "role"],
            Some(fx.path("d-typo-ops")),
        ),
        (
            "threshold above the operators",
            with(base("127.0.0.1:0", &key, &dir("d-thr")), &["--operators", &threshold_ops]),
            vec!["operators file", "line 1", "routine_threshold is 2"],
            Some(fx.path("d-thr")),
        ),
        (
            "operators file writable by others",
            with(base("127.0.0.1:0", &key, &dir("d-open-ops")), &["--operators", &open_ops]),
            vec!["operators file", &open_ops, "mode 0666", "chmod go-w"],
            Some(fx.path("d-open-ops")),
        ),
        (
            "missing operators file",
            with(base("127.0.0.1:0", &key, &dir("d-no-ops")), &["--operators", &dir("nope.toml")]),
            vec!["operators file", "nope.toml", "No such file"],
            Some(fx.path("d-no-ops")),
        ),
        (
            "data dir is a file",
            base("127.0.0.1:0", &key, &not_a_dir),
            vec!["data dir", "plain-file", "not a directory"],
            None,
        ),
        (
            "data dir in use",
            base("127.0.0.1:0", &key, &dir("running")),
            vec!["data dir", "running", "in use by another meshd process"],
            None,
        ),
        (
            "corrupt identity",
            with(base("127.0.0.1:0", &key, &dir("d-id")), &["--identity", &corrupt_identity]),
            vec!["identity", "corrupt-identity.key", "not a valid key file"],
            None,
        ),
        (
            "identity readable by others",
            with(base("127.0.0.1:0", &key, &dir("d-id2")), &["--identity", &open_identity]),
            vec!["identity", "open-identity.key", "chmod 600"],
            None,
        ),
    ];
    for (label, args, expected, not_created) in cases {
        let (status, out, err) = run_to_end(meshd().args(&args));
        assert_eq!(status.code(), Some(1), "{label}: bad configuration exits 1\n{err}");
        assert!(!err.contains("panicked"), "{label}: panicked\n{err}");
        assert!(!out.contains(meshd::READY_PREFIX), "{label}: it started\n{out}");
        let line = err
            .lines()
            .find(|l| l.starts_with("meshd: "))
            .unwrap_or_else(|| panic!("{label}: no `meshd: ` line in\n{err}"));
        for word in &expected {
            assert!(line.contains(word), "{label}: {line:?} should mention {word:?}");
        }
        if let Some(dir) = not_created {
            assert!(!dir.exists(), "{label}: created {} before failing", dir.display());
        }
        println!("{label}: {line}");
    }
    assert!(running.child.try_wait().unwrap().is_none(), "the running node is untouched");
    drop(busy);
}

#[cfg(unix)]
#[test]
fn the_data_dir_and_the_audit_ledger_are_private() {
    let fx = Fixture::new();
    let node = fx.start("private", &[], true);
    let data = fx.path("private");
    assert_eq!(mode_of(&data), 0o700, "data dir");
    assert_eq!(mode_of(&data.join(meshd::datadir::AUDIT_FILE)), 0o600, "audit ledger");
    assert_eq!(mode_of(&data.join(meshd::datadir::IDENTITY_FILE)), 0o600, "identity");
    assert_eq!(mode_of(&fx.cluster_key), 0o600, "keygen-cluster writes 0600");
    drop(node);

    // A data dir made by hand with the usual 0755 is made private on start; a
    // ledger others could read is made private too.
    let loose = fx.path("loose");
    std::fs::create_dir(&loose).unwrap();
    set_mode(&loose, 0o755);
    let mut node = fx.start("loose", &[], false);
    assert_eq!(mode_of(&loose), 0o700, "tightened");
    node.sigkill();
    let ledger = loose.join(meshd::datadir::AUDIT_FILE);
    set_mode(&ledger, 0o644);
    let node = fx.restart(&node);
    assert_eq!(mode_of(&ledger), 0o600, "tightened");
    assert!(node.log_text().contains("permissions tightened"), "{}", node.log_text());
}
