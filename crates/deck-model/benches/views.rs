//! View build cost, release build: every tab's visible view computed from a
//! snapshot of 100 nodes and 2,000 daemons, a 100,000-line log tail, 10,000 blobs
//! and a full 1,024-call tail.
//!
//! Prints one line per tab and scenario, and `figure: view_build_ms` = the slowest
//! tab's median build of its visible view (collected by `cargo xtask bench`).
//! LOGS is measured in steady state (100 new lines arrive before every frame, the
//! tail is full so as many are evicted) as well as cold (first build after a
//! filter or sort change).

#![allow(clippy::print_stdout, reason = "a benchmark reports on stdout")]

use std::time::Instant;

use deck_model::testkit;
use deck_model::{DeckData, Msg, Tab, ViewState, summarize, update, views};
use mesh::LogLevel;

const FRAMES: usize = 41;
const HEIGHT: usize = 50;

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
    let started = Instant::now();
    for _ in 0..FRAMES {
        std::hint::black_box(summarize(&data));
    }
    println!(
        "summary                          mean {:7.3} ms",
        started.elapsed().as_secs_f64() * 1000.0 / FRAMES as f64
    );
    println!("figure: view_build_ms = {worst:.3} ms");
}
