//! Blob store throughput next to its floors, measured in the same run:
//! memory put/get of a 64 MiB blob against a plain single-threaded `blake3::hash`,
//! and a disk put (batched fsync, one final sync) against a plain sequential file
//! write plus one fsync.
//!
//! `cargo xtask bench blobs` reads `target/criterion/blobs/<id>/new/estimates.json`
//! for the ids below and derives the `blob_*` figures.
//!
//! The three ratio figures come from a paired measurement printed first
//! (`figure:` lines): the floor and the store alternate, and each figure is the
//! median of the per-pair ratios, so the machine's speed drifting between two
//! criterion runs cannot skew them. Criterion then measures each alone (MB/s).
//!
//! The issue asks for these figures on one core, and the store hashes large blobs
//! on two threads: the whole bench is therefore pinned to one CPU before it starts
//! (threads inherit the affinity), so the floor and the store share one core.

#![allow(clippy::print_stdout, reason = "a benchmark reports on stdout")]

use std::fs::File;
use std::hint::black_box;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use criterion::{BatchSize, Criterion, SamplingMode, Throughput, criterion_group};
use mesh_blobs::{BlobStore, CHUNK_SIZE, DiskConfig, DiskLog, FsyncPolicy, MemLog};

const SIZE: usize = 64 << 20;

/// Pseudo-random content (incompressible, no repeated chunks).
fn content(len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    blake3::Hasher::new().update(b"mesh-blobs bench").finalize_xof().fill(&mut out);
    out
}

/// A copy of `template` with `n` written into every chunk, so no chunk of it was
/// stored before.
fn fresh(template: &[u8], n: u64) -> Bytes {
    let mut data = template.to_vec();
    for chunk in data.chunks_mut(CHUNK_SIZE) {
        chunk[..8].copy_from_slice(&n.to_le_bytes());
    }
    Bytes::from(data)
}

/// A file removed when dropped (outside the timed part).
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn bench(c: &mut Criterion) {
    let template = content(SIZE);
    let data = Bytes::from(template.clone());
    let scratch = tempfile::tempdir().expect("temporary directory");

    let mut group = c.benchmark_group("blobs");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Bytes(SIZE as u64));

    group.bench_function("blake3_floor_64mib", |b| b.iter(|| blake3::hash(black_box(&data))));
    // Not a figure: what the per-chunk content keys cost a put.
    group.bench_function("xxh3_chunks_64mib", |b| {
        b.iter(|| {
            data.chunks(CHUNK_SIZE)
                .map(|c| twox_hash::XxHash3_64::oneshot(black_box(c)))
                .fold(0u64, u64::wrapping_add)
        })
    });

    // A fresh store per iteration (created and dropped outside the timing), so
    // deduplication never makes a put free.
    group.bench_function("mem_put_64mib", |b| {
        b.iter_batched(
            MemLog::default,
            |store| {
                store.put(black_box(data.clone())).expect("put");
                store
            },
            BatchSize::PerIteration,
        )
    });

    let store = MemLog::default();
    let hash = store.put(data.clone()).expect("put");
    group.bench_function("mem_get_64mib", |b| {
        b.iter(|| store.get(black_box(&hash)).expect("get").expect("stored"))
    });
    drop(store);

    let mut n = 0u64;
    group.bench_function("file_write_floor_64mib", |b| {
        b.iter_batched(
            || {
                n += 1;
                scratch.path().join(format!("floor-{n}"))
            },
            |path| {
                let mut file = File::create(&path).expect("create");
                file.write_all(black_box(&data)).expect("write");
                file.sync_all().expect("fsync");
                TempFile(path)
            },
            BatchSize::PerIteration,
        )
    });

    let config = DiskConfig { fsync: FsyncPolicy::default(), ..DiskConfig::default() };
    let mut n = 0u64;
    group.bench_function("disk_put_64mib_batched", |b| {
        b.iter_batched(
            || {
                n += 1;
                let dir = tempfile::tempdir_in(scratch.path()).expect("store directory");
                let store = DiskLog::open(dir.path(), config.clone()).expect("open");
                (dir, store, fresh(&template, n))
            },
            |(dir, store, blob)| {
                store.put(blob).expect("put");
                store.sync().expect("sync");
                (store, dir)
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

/// Restricts this thread, and every thread it starts, to the first CPU it may
/// run on.
fn pin_to_one_core() {
    use rustix::thread::{CpuSet, sched_getaffinity, sched_setaffinity};
    let allowed = sched_getaffinity(None).unwrap_or_else(|_| CpuSet::new());
    let cpu = (0..CpuSet::MAX_CPU).find(|&c| allowed.is_set(c)).unwrap_or(0);
    let mut one = CpuSet::new();
    one.set(cpu);
    match sched_setaffinity(None, &one) {
        Ok(()) => println!("pinned to CPU {cpu}"),
        Err(e) => println!("could not pin to one CPU ({e}); figures may use two cores"),
    }
}

/// Seconds `f` takes.
fn timed<T>(f: impl FnOnce() -> T) -> f64 {
    let started = std::time::Instant::now();
    black_box(f());
    started.elapsed().as_secs_f64()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Paired ratios: floor time / store time, alternating, median of `PAIRS`.
fn paired_ratios() {
    const PAIRS: usize = 9;
    let template = content(SIZE);
    let data = Bytes::from(template.clone());
    let scratch = tempfile::tempdir().expect("temporary directory");
    let (mut put, mut get, mut disk) = (Vec::new(), Vec::new(), Vec::new());
    for pair in 0..PAIRS {
        let floor = timed(|| blake3::hash(&data));
        let store = MemLog::default();
        let put_s = timed(|| store.put(data.clone()).expect("put"));
        let hash = blake3::hash(&data).into();
        let get_s = timed(|| store.get(&hash).expect("get").expect("stored"));
        drop(store);
        let floor_after = timed(|| blake3::hash(&data));
        put.push(floor.min(floor_after) / put_s);
        get.push(floor.min(floor_after) / get_s);

        let path = scratch.path().join(format!("floor-{pair}"));
        let file_s = timed(|| {
            let mut file = File::create(&path).expect("create");
            file.write_all(&data).expect("write");
            file.sync_all().expect("fsync");
        });
        let _ = std::fs::remove_file(&path);
        let dir = tempfile::tempdir_in(scratch.path()).expect("store directory");
        let store = DiskLog::open(dir.path(), DiskConfig::default()).expect("open");
        let blob = fresh(&template, 1_000 + pair as u64);
        let disk_s = timed(|| {
            store.put(blob).expect("put");
            store.sync().expect("sync");
        });
        drop(store);
        disk.push(file_s / disk_s);
    }
    println!("figure: blob_put_vs_blake3_ratio = {:.2} x", median(put));
    println!("figure: blob_get_vs_blake3_ratio = {:.2} x", median(get));
    println!("figure: blob_disk_vs_file_ratio = {:.2} x", median(disk));
}

criterion_group!(benches, bench);

fn main() {
    pin_to_one_core();
    paired_ratios();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
