//! Crash safety of the disk log: a writer process is killed with SIGKILL at random
//! moments, many times over the same store; after each kill the store must open,
//! hold every blob the writer reported as stored, and serve nothing corrupt.
//!
//! The writer is this test binary itself, re-executed with
//! `--exact crash_writer_child --nocapture` and an environment variable naming the
//! store directory, which works the same under `cargo test` and `cargo nextest`.
//! It prints `PUT <hash> <index>` after each put returns, and `DELETING <hash>`
//! before and `DEL <hash>` after each delete (fsync policy `EveryPut`, so puts and
//! deletes are durable when reported done).

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mesh_blobs::{BlobStore, CHUNK_SIZE, DiskConfig, DiskLog, FsyncPolicy, Hash};

const DIR_ENV: &str = "MESH_BLOBS_CRASH_WRITER_DIR";
const ROUND_ENV: &str = "MESH_BLOBS_CRASH_WRITER_ROUND";
const CHILD_TEST: &str = "crash_writer_child";
const ROUNDS: u64 = 20;
/// A writer left alone stops by itself after this long.
const CHILD_LIFETIME: Duration = Duration::from_secs(20);

/// Blob `i` of round `round`: sizes cycle through small, sub-chunk and multi-chunk.
fn blob(round: u64, i: u64) -> Vec<u8> {
    let sizes = [40, 10_000, 700_000, CHUNK_SIZE + 7, 2 * CHUNK_SIZE + 13];
    let len = sizes[(i % sizes.len() as u64) as usize];
    let mut out = vec![0u8; len];
    let mut seed = blake3::Hasher::new();
    seed.update(&round.to_le_bytes()).update(&i.to_le_bytes());
    seed.finalize_xof().fill(&mut out);
    out
}

/// The writer's configuration in `round`. Even rounds sync every put: what the
/// writer reports is then on disk. Most of such a writer's time goes to fsync, so
/// kills rarely land inside a write; odd rounds therefore never sync, which makes
/// torn records common (a killed process loses nothing already written, so the
/// reported blobs must survive those rounds too).
fn config(round: u64) -> DiskConfig {
    // Small segments so kills also land while segments roll.
    DiskConfig {
        fsync: if round % 2 == 0 { FsyncPolicy::EveryPut } else { FsyncPolicy::Never },
        segment_size: 4 * CHUNK_SIZE as u64,
        ..DiskConfig::default()
    }
}

/// The writer. Does nothing unless started by `crash_safety_under_sigkill`.
#[test]
fn crash_writer_child() {
    let Some(dir) = std::env::var_os(DIR_ENV) else { return };
    let round: u64 = std::env::var(ROUND_ENV).ok().and_then(|r| r.parse().ok()).unwrap_or(0);
    let store = DiskLog::open(Path::new(&dir), config(round)).unwrap();
    println!("READY");
    let started = Instant::now();
    let mut hashes = Vec::new();
    for i in 0.. {
        if started.elapsed() > CHILD_LIFETIME {
            break;
        }
        let hash = store.put(Bytes::from(blob(round, i))).unwrap();
        println!("PUT {hash} {i}");
        hashes.push(hash);
        if i % 4 == 3 {
            let victim = hashes[hashes.len() - 3];
            println!("DELETING {victim}");
            store.delete(&victim).unwrap();
            println!("DEL {victim}");
        }
    }
}

fn random_u64() -> u64 {
    let mut buf = [0u8; 8];
    getrandom::getrandom(&mut buf).unwrap();
    u64::from_le_bytes(buf)
}

#[test]
fn crash_safety_under_sigkill() {
    if std::env::var_os(DIR_ENV).is_some() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    // Every blob reported stored and not reported deleted: hash -> (round, index).
    let mut alive: HashMap<Hash, (u64, u64)> = HashMap::new();
    let mut deleted: HashSet<Hash> = HashSet::new();
    // Being deleted when the writer was killed: either gone or intact.
    let mut doomed: HashMap<Hash, (u64, u64)> = HashMap::new();
    let mut truncations = 0;
    let started = Instant::now();
    for round in 0..ROUNDS {
        let mut child = Command::new(&exe)
            .args(["--exact", CHILD_TEST, "--nocapture"])
            .env(DIR_ENV, dir.path())
            .env(ROUND_ENV, round.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (ready_tx, ready_rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut lines = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // libtest may print `test crash_writer_child ... ` on the same line
                // before the writer's first output: keep what follows the marker.
                let Some(at) = ["READY", "PUT ", "DEL ", "DELETING "]
                    .iter()
                    .filter_map(|m| line.find(m))
                    .min()
                else {
                    continue;
                };
                let line = line[at..].to_owned();
                if line == "READY" {
                    let _ = ready_tx.send(());
                }
                lines.push(line);
            }
            lines
        });
        ready_rx.recv_timeout(Duration::from_secs(20)).expect("writer did not start");
        std::thread::sleep(Duration::from_millis(5 + random_u64() % 120));
        child.kill().unwrap();
        child.wait().unwrap();
        let lines = reader.join().unwrap();

        let mut this_round = Vec::new();
        for line in &lines {
            let mut words = line.split_whitespace();
            match (words.next(), words.next(), words.next()) {
                (Some("PUT"), Some(hash), Some(i)) => {
                    let hash: Hash = hash.parse().unwrap();
                    alive.insert(hash, (round, i.parse().unwrap()));
                    this_round.push(hash);
                }
                (Some("DELETING"), Some(hash), None) => {
                    let hash: Hash = hash.parse().unwrap();
                    if let Some(origin) = alive.remove(&hash) {
                        doomed.insert(hash, origin);
                    }
                }
                (Some("DEL"), Some(hash), None) => {
                    let hash: Hash = hash.parse().unwrap();
                    doomed.remove(&hash);
                    deleted.insert(hash);
                }
                _ => {}
            }
        }

        let store = DiskLog::open(dir.path(), config(0)).unwrap();
        let report = store.recovery_report();
        assert!(report.corrupt_regions.is_empty(), "round {round}: {report:?}");
        assert!(report.lost_blobs.is_empty(), "round {round}: {report:?}");
        truncations += report.truncations.len();
        for hash in &this_round {
            if let Some(&(r, i)) = alive.get(hash) {
                let bytes = store
                    .get(hash)
                    .unwrap()
                    .unwrap_or_else(|| panic!("round {round}: {hash} lost"));
                assert!(bytes == blob(r, i), "round {round}: {hash} has other content");
            }
        }
        for hash in &deleted {
            assert!(!store.has(hash), "round {round}: deleted {hash} is back");
        }
        for (hash, (r, i)) in doomed.drain() {
            match store.get(&hash).unwrap() {
                Some(bytes) => {
                    assert!(bytes == blob(r, i), "round {round}: {hash} has other content");
                    alive.insert(hash, (r, i));
                }
                None => {
                    deleted.insert(hash);
                }
            }
        }
    }

    // Everything still there and intact at the end; nothing listed fails its check.
    let store = DiskLog::open(dir.path(), config(0)).unwrap();
    for (hash, &(r, i)) in &alive {
        assert!(store.get(hash).unwrap().unwrap() == blob(r, i));
    }
    for entry in store.list() {
        let bytes = store.get(&entry.hash).unwrap().expect("listed blob is readable");
        assert_eq!(Hash::of(&bytes), entry.hash);
    }
    assert!(!alive.is_empty());
    eprintln!(
        "crash test: {ROUNDS} kills, {} blobs alive, {} deleted, {truncations} torn tails cut, {:?}",
        alive.len(),
        deleted.len(),
        started.elapsed()
    );
}
