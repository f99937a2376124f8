//! Scheduling priority: the observing thread runs 10 nice levels above the
//! nodes and the deck it starts.

use std::process::{Command, Stdio};

/// The nice value this task started with; set once the task's main thread
/// has raised its own priority.
static BASE_NICE: std::sync::OnceLock<i32> = std::sync::OnceLock::new();

/// Gives this (the main, observing) thread 10 nice levels more than it was
/// started with (at most -10), so that reading the logs of an overloaded
/// cluster does not fall minutes behind; every process it starts runs at the
/// original nice value ([`at_base_priority`]). Best effort.
pub(super) fn raise_observer_priority() {
    let Some(base) = thread_nice() else { return };
    let wanted = (base - 10).max(-10);
    if wanted < base && set_thread_nice(wanted) {
        let _ = BASE_NICE.set(base);
        eprintln!("xtask chaos: observing at nice {wanted}; meshd and deck run at nice {base}");
    }
}

/// Runs `f` (which starts processes) on a thread at the task's original nice
/// value, so the processes inherit that and not the observer's.
pub(super) fn at_base_priority<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    let Some(&base) = BASE_NICE.get() else { return f() };
    std::thread::scope(|scope| {
        let handle = scope.spawn(move || {
            if !set_thread_nice(base) {
                eprintln!("xtask chaos: warning: cannot reset a thread to nice {base}");
            }
            f()
        });
        match handle.join() {
            Ok(value) => value,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// The calling thread's id (from `/proc/thread-self`).
pub(super) fn thread_id() -> Option<u32> {
    let link = std::fs::read_link("/proc/thread-self").ok()?;
    link.file_name()?.to_str()?.parse().ok()
}

/// The calling thread's nice value (field 19 of its stat).
pub(super) fn thread_nice() -> Option<i32> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    stat.rsplit_once(')')?.1.split_whitespace().nth(19 - 3)?.parse().ok()
}

/// Sets the calling thread's nice value (`renice VALUE -p TID`; on Linux a
/// nice value belongs to one thread).
fn set_thread_nice(nice: i32) -> bool {
    let Some(tid) = thread_id() else { return false };
    Command::new("renice")
        .arg(nice.to_string())
        .arg("-p")
        .arg(tid.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
        && thread_nice() == Some(nice)
}
