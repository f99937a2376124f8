//! Blob store throughput next to its floors, measured in the same run:
//! memory put/get of a 64 MiB blob against a plain single-threaded `blake3::hash`,
//! and a disk put (batched fsync, one final sync) against a plain sequential file
//! write plus one fsync.
//!
//! `cargo xtask bench blobs` reads `target/criterion/blobs/<id>/new/estimates.json`
//! for the ids below and derives the `blob_*` figures.

use std::fs::File;
use std::hint::black_box;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use criterion::{BatchSize, Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
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

criterion_group!(benches, bench);
criterion_main!(benches);
