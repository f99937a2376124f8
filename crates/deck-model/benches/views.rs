//! View build cost, release build: every tab's visible view computed from a
//! snapshot of 100 nodes and 2,000 daemons, a 100,000-line log tail, 10,000 blobs
//! and a full 1,024-call tail.
//!
//! Prints one line per tab and scenario, and two figures (collected by `cargo
//! xtask bench`):
//!
//! - `figure: view_build_ms` = the slowest tab's median build of its visible view
//!   in steady state (frames 2-41; for LOGS 100 new lines arrive before every
//!   frame, the tail is full so as many are evicted);
//! - `figure: view_build_first_ms` = the slowest cold build: the first frame after
//!   a tab switch (every tab, visited in turn while lines keep arriving) or after
//!   a filter or sort change (a sort and a search on every tab; LOGS also by
//!   level, node, level sort and message sort, and back to all lines, which
//!   recomputes the order of the whole 100,000-line tail). Each cold build is
//!   repeated [`COLD_REPS`] times; the figure is the largest per-scenario median
//!   (the per-scenario maximum is printed beside it).

#![allow(clippy::print_stdout, reason = "a benchmark reports on stdout")]

use std::time::Instant;

use deck_model::testkit;
use deck_model::{DeckData, Msg, Tab, ViewState, summarize, update, views};
use mesh::LogLevel;

const FRAMES: usize = 41;
const HEIGHT: usize = 50;
/// Repetitions of every cold build.
const COLD_REPS: usize = 7;
/// Frames spent on a tab per visit in the tab-switch walk (the first is cold).
const VISIT: usize = 4;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Median ms of building the visible view, with `between` run before each frame.
fn time_frames(
    data: &mut DeckData,
    state: &mut ViewState,
    mut between: impl FnMut(&mut DeckData),
) -> (f64, f64) {
    let mut samples = Vec::with_capacity(FRAMES);
    let mut first = 0.0;
    for i in 0..FRAMES {
        between(data);
        let started = Instant::now();
        let view = views::build(data, state);
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        state.observe(&view);
        std::hint::black_box(&view);
        if i == 0 {
            first = ms;
        } else {
            samples.push(ms);
        }
    }
    (first, median(samples))
}

/// Builds the visible view once, records it, returns the ms it took.
fn timed_build(data: &DeckData, state: &mut ViewState) -> f64 {
    let started = Instant::now();
    let view = views::build(data, state);
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    state.observe(&view);
    std::hint::black_box(&view);
    ms
}

/// (median, max) of cold samples.
fn cold_stats(samples: &[f64]) -> (f64, f64) {
    let max = samples.iter().copied().fold(0.0, f64::max);
    (median(samples.to_vec()), max)
}

/// The first frame after a tab switch: one state walks through every tab in
/// turn, [`VISIT`] frames per tab, [`COLD_REPS`] rounds, 100 log lines arriving
/// before every frame (the deck refreshes whatever tab is shown, so LOGS has to
/// catch up with the lines that arrived while it was hidden). Returns the worst
/// per-tab median.
fn cold_tab_switches(data: &mut DeckData, next: &mut u64) -> f64 {
    let mut state = state_on(Tab::Failures);
    let mut cold: Vec<Vec<f64>> = vec![Vec::new(); Tab::ALL.len()];
    for _ in 0..COLD_REPS {
        for tab in Tab::ALL {
            update(&mut state, Msg::Tab(tab));
            for frame in 0..VISIT {
                testkit::push_logs(data, 100, next);
                let ms = timed_build(data, &mut state);
                if frame == 0 {
                    cold[tab.index()].push(ms);
                }
            }
        }
    }
    let mut worst: f64 = 0.0;
    for tab in Tab::ALL {
        let (med, max) = cold_stats(&cold[tab.index()]);
        worst = worst.max(med);
        println!(
            "view_build_first {:<10} tab switch        median {med:7.3} ms  max {max:7.3} ms",
            tab.title()
        );
    }
    worst
}

/// The first frame after a filter or sort change on `tab`: `change` is applied
/// and the next frame timed, then `reset` and the next frame timed (both are
/// cold: the LOGS memo is recomputed over the whole tail each time), with 100
/// lines arriving before every frame. Returns the larger of the two medians.
fn cold_change(
    data: &mut DeckData,
    next: &mut u64,
    tab: Tab,
    name: &str,
    change: &[Msg],
    reset: &[Msg],
) -> f64 {
    let mut state = state_on(tab);
    // Warm up: the tab has been shown before the operator changes anything.
    testkit::push_logs(data, 100, next);
    timed_build(data, &mut state);
    let mut samples = [Vec::with_capacity(COLD_REPS), Vec::with_capacity(COLD_REPS)];
    for _ in 0..COLD_REPS {
        for (msgs, out) in [change, reset].into_iter().zip(samples.iter_mut()) {
            for m in msgs {
                update(&mut state, m.clone());
            }
            testkit::push_logs(data, 100, next);
            out.push(timed_build(data, &mut state));
            // A steady frame between changes.
            testkit::push_logs(data, 100, next);
            timed_build(data, &mut state);
        }
    }
    let (on, on_max) = cold_stats(&samples[0]);
    let (off, off_max) = cold_stats(&samples[1]);
    println!(
        "view_build_first {:<10} {name:<17} median {on:7.3} ms  max {on_max:7.3} ms  \
         (undone: median {off:7.3} ms  max {off_max:7.3} ms)",
        tab.title()
    );
    on.max(off)
}

fn state_on(tab: Tab) -> ViewState {
    let mut s = ViewState::new();
    update(&mut s, Msg::Tab(tab));
    update(&mut s, Msg::Resize { rows: HEIGHT });
    s
}

fn main() {
    let started = Instant::now();
    let mut data = testkit::big(100, 2_000, 100_000, 10_000);
    println!(
        "data: {} nodes, {} daemons, {} log lines, {} blobs, {} calls (built in {:.0} ms)",
        data.snapshot.peers.len() + 1,
        data.snapshot.daemons.len(),
        data.logs.len(),
        data.blobs.len(),
        data.calls.len(),
        started.elapsed().as_secs_f64() * 1000.0
    );
    let mut next = 100_000u64;
    let mut worst: f64 = 0.0;
    for tab in Tab::ALL {
        let mut state = state_on(tab);
        let (first, steady) = if tab == Tab::Logs {
            time_frames(&mut data, &mut state, |d| testkit::push_logs(d, 100, &mut next))
        } else {
            time_frames(&mut data, &mut state, |_| {})
        };
        worst = worst.max(steady);
        println!("view_build {:<10} first {first:7.3} ms  median {steady:7.3} ms", tab.title());
    }

    // LOGS with filters and sorts: the first frame pays for the change, later
    // frames only for the lines that arrived.
    let scenarios: [(&str, Vec<Msg>); 4] = [
        ("search", vec![Msg::Search("prefill 9".into())]),
        ("level>=warn", vec![Msg::Level(Some(LogLevel::Warn))]),
        ("sort level", vec![Msg::Sort(3), Msg::Sort(3)]),
        ("sort message", vec![Msg::Sort(4)]),
    ];
    for (name, msgs) in scenarios {
        let mut state = state_on(Tab::Logs);
        for m in msgs {
            update(&mut state, m);
        }
        let (first, steady) =
            time_frames(&mut data, &mut state, |d| testkit::push_logs(d, 100, &mut next));
        worst = worst.max(steady);
        println!("view_build LOGS {name:<13} first {first:7.3} ms  median {steady:7.3} ms");
    }
    let mut state = state_on(Tab::Blobs);
    update(&mut state, Msg::Sort(5));
    update(&mut state, Msg::Search("fort-3".into()));
    let (first, steady) = time_frames(&mut data, &mut state, |_| {});
    println!("view_build BLOBS sort+search first {first:7.3} ms  median {steady:7.3} ms");
    worst = worst.max(steady);
    let mut state = state_on(Tab::Nodes);
    update(&mut state, Msg::OpenNode(testkit::node_id(3)));
    let (_, detail) = time_frames(&mut data, &mut state, |_| {});
    println!("view_build NODE detail          median {detail:7.3} ms");
    worst = worst.max(detail);

    // Cold builds: the first frame after a tab switch or a filter/sort change.
    let mut worst_first = cold_tab_switches(&mut data, &mut next);
    let mut changes: Vec<(Tab, &str, Vec<Msg>, Vec<Msg>)> = Vec::new();
    for tab in Tab::ALL {
        changes.push((
            tab,
            "sort col 2 desc",
            vec![Msg::Sort(1), Msg::Sort(1)],
            vec![Msg::ClearSort],
        ));
        changes.push((tab, "search \"7\"", vec![Msg::Search("7".into())], vec![Msg::ClearSearch]));
    }
    changes.extend([
        (
            Tab::Logs,
            "search prefill 9",
            vec![Msg::Search("prefill 9".into())],
            vec![Msg::ClearSearch],
        ),
        (Tab::Logs, "level>=warn", vec![Msg::Level(Some(LogLevel::Warn))], vec![Msg::Level(None)]),
        (
            Tab::Logs,
            "node filter",
            vec![Msg::LogNode(Some(testkit::node_id(7)))],
            vec![Msg::LogNode(None)],
        ),
        (Tab::Logs, "sort level desc", vec![Msg::Sort(3), Msg::Sort(3)], vec![Msg::ClearSort]),
        (Tab::Logs, "sort message", vec![Msg::Sort(4)], vec![Msg::ClearSort]),
        (
            Tab::Blobs,
            "sort+search",
            vec![Msg::Sort(5), Msg::Search("fort-3".into())],
            vec![Msg::ClearSort, Msg::ClearSearch],
        ),
    ]);
    for (tab, name, change, reset) in &changes {
        worst_first = worst_first.max(cold_change(&mut data, &mut next, *tab, name, change, reset));
    }

    let started = Instant::now();
    for _ in 0..FRAMES {
        std::hint::black_box(summarize(&data));
    }
    println!(
        "summary                          mean {:7.3} ms",
        started.elapsed().as_secs_f64() * 1000.0 / FRAMES as f64
    );
    println!("figure: view_build_ms = {worst:.3} ms");
    println!("figure: view_build_first_ms = {worst_first:.3} ms");
}
