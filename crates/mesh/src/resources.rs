//! Host resources from the operating system, where available (Linux `/proc`,
//! and `statvfs` of the root filesystem for disk figures).
//!
//! Every reader returns `None` when the file is missing or unreadable (or the
//! call fails), so other platforms simply report fewer figures.

use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::fold::Resources;

/// Samples younger than this are shared: every node in a process reads the same
/// host and process figures, so nine in-process nodes read `/proc` once.
const SHARED_FOR: Duration = Duration::from_millis(500);

/// What the OS offers, at most 500 ms old (`SHARED_FOR`): one sample is shared
/// by every node in the process.
pub fn sample() -> Resources {
    static LAST: Mutex<Option<(Instant, Resources)>> = Mutex::new(None);
    let now = Instant::now();
    if let Ok(last) = LAST.lock()
        && let Some((at, r)) = last.as_ref()
        && now.saturating_duration_since(*at) < SHARED_FOR
    {
        return r.clone();
    }
    let fresh = sample_now();
    if let Ok(mut last) = LAST.lock() {
        *last = Some((now, fresh.clone()));
    }
    fresh
}

/// Reads what the OS offers now.
pub fn sample_now() -> Resources {
    // Reading cgroup quotas on every call is not free; the answer does not move.
    static CPUS: OnceLock<u32> = OnceLock::new();
    let cpus = *CPUS
        .get_or_init(|| std::thread::available_parallelism().map(|n| n.get() as u32).unwrap_or(1));
    let cpu_load_milli = read_loadavg().map(|load| ((load / cpus as f64) * 1000.0).round() as u32);
    let (mem_total, mem_used) = read_meminfo().map_or((None, None), |(t, u)| (Some(t), Some(u)));
    let disk = read_disk(DISK_PATH);
    Resources {
        cpu_load_milli,
        cpus,
        mem_used,
        mem_total,
        process_rss: read_rss(),
        disk_free: disk.map(|d| d.free),
        disk_total: disk.map(|d| d.total),
    }
}

/// The filesystem whose space is reported: the root. `MeshConfig` has no data
/// directory, and every node in a process shares one sample.
const DISK_PATH: &str = "/";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Disk {
    /// Bytes an unprivileged process may still write (`f_bavail`, as `df` shows).
    free: u64,
    /// Size of the filesystem in bytes.
    total: u64,
}

fn read_disk(path: &str) -> Option<Disk> {
    let st = rustix::fs::statvfs(path).ok()?;
    // Block counts are in units of the fragment size (`f_frsize`).
    let unit = if st.f_frsize > 0 { st.f_frsize } else { st.f_bsize };
    let total = st.f_blocks.checked_mul(unit)?;
    let free = st.f_bavail.checked_mul(unit)?.min(total);
    Some(Disk { free, total })
}

fn read_loadavg() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// (total, used) in bytes.
fn read_meminfo() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = text.lines().find(|l| l.starts_with(name))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    };
    let total = field("MemTotal:")?;
    let available = field("MemAvailable:")?;
    Some((total, total.saturating_sub(available)))
}

fn read_rss() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = text.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

#[cfg(test)]
mod tests {
    #[test]
    fn disk_figures_on_linux() {
        let r = super::sample_now();
        if cfg!(target_os = "linux") {
            let (free, total) = (r.disk_free.unwrap(), r.disk_total.unwrap());
            assert!(total > 0 && free <= total, "free {free} total {total}");
        }
        assert_eq!(super::read_disk("/no/such/path/for/mesh/tests"), None);
    }

    #[test]
    fn sample_never_panics_and_reads_linux() {
        let r = super::sample();
        assert!(r.cpus >= 1);
        if cfg!(target_os = "linux") {
            assert!(r.mem_total.is_some() && r.process_rss.is_some());
        }
    }
}
