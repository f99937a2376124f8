//! Real `meshd` processes for attach tests and benches: keys in a temporary
//! directory, nodes on 127.0.0.1 port 0 (each reports its address on stdout),
//! every child killed when its handle drops.

#![allow(dead_code, reason = "shared by tests and benches that use parts of it")]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The `meshd` binary next to this test's own (built by `cargo test --workspace`
/// or `cargo build -p meshd`).
pub(crate) fn meshd_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/<test> -> target/<profile>/meshd
    let bin = exe.parent().and_then(Path::parent).expect("target dir").join("meshd");
    assert!(
        bin.exists(),
        "{} is missing: build it first (`cargo build -p meshd`, or test the whole workspace)",
        bin.display()
    );
    bin
}

/// Keys for one cluster: a cluster key, a registered operator, a stranger.
pub(crate) struct Fixture {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) meshd: PathBuf,
    pub(crate) cluster_key: PathBuf,
    pub(crate) operator_key: PathBuf,
    pub(crate) stranger_key: PathBuf,
    pub(crate) operators: PathBuf,
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run");
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Fixture {
    pub(crate) fn new(meshd: PathBuf) -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = |n: &str| dir.path().join(n);
        let (cluster_key, operator_key, stranger_key, operators) =
            (p("cluster.key"), p("alice.key"), p("mallory.key"), p("operators.toml"));
        run(Command::new(&meshd).arg("keygen-cluster").arg(&cluster_key));
        let table = run(Command::new(&meshd).arg("keygen-operator").arg(&operator_key));
        run(Command::new(&meshd).arg("keygen-operator").arg(&stranger_key));
        std::fs::write(&operators, table).expect("operators file");
        // meshd refuses an operators file others may write, whatever the umask.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&operators, std::fs::Permissions::from_mode(0o600))
                .expect("operators file mode");
        }
        Fixture { dir, meshd, cluster_key, operator_key, stranger_key, operators }
    }

    /// Starts a node (seeded to `seed`, if any) and waits for its address.
    pub(crate) fn start(&self, name: &str, seed: Option<SocketAddr>) -> Node {
        let data = self.dir.path().join(name);
        let mut cmd = Command::new(&self.meshd);
        cmd.args(["--listen", "127.0.0.1:0", "--exit-on-stdin-eof", "--cluster-key"])
            .arg(&self.cluster_key)
            .arg("--operators")
            .arg(&self.operators)
            .arg("--data-dir")
            .arg(&data)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if let Some(seed) = seed {
            cmd.arg("--seed").arg(seed.to_string());
        }
        let mut child = cmd.spawn().expect("spawn meshd");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(30)).expect("meshd reports its address");
        let addr = line
            .split_whitespace()
            .find_map(|w| w.parse::<SocketAddr>().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        Node { child, addr }
    }

    /// `n` nodes, all seeded to the first.
    pub(crate) fn cluster(&self, n: usize) -> Vec<Node> {
        let first = self.start("node-0", None);
        let seed = first.addr;
        let mut nodes = vec![first];
        nodes.extend((1..n).map(|i| self.start(&format!("node-{i}"), Some(seed))));
        nodes
    }
}

/// A running `meshd`; killed on drop.
pub(crate) struct Node {
    pub(crate) child: Child,
    pub(crate) addr: SocketAddr,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
