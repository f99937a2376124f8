//! Frame cost, release build: building the view, the status bar and drawing the
//! whole screen at 200x50 through ratatui's crossterm backend (diffing and escape
//! codes included; the bytes go to a sink), from a 100-node, 2,000-daemon,
//! 100,000-line-log, 10,000-blob state. LOGS gets 100 new lines before every
//! frame (the tail is full, so as many are evicted), as it would while following.
//!
//! Prints one line per tab and round; each tab's figure is its best of three
//! rounds. `figure: frame_render_ms` is the LOGS frame (the page that shows the
//! 100,000-line tail, with new lines arriving), the frame the issue describes;
//! `figure: frame_render_worst_tab_ms` is the slowest tab's (GROUPS or DAEMONS
//! over 2,000 daemons).

#![allow(clippy::print_stdout, reason = "a benchmark reports on stdout")]

use std::time::Instant;

use deck_model::testkit;
use deck_model::{DeckData, Msg, Tab, update};
use deck_tui::app::{App, Settings};
use deck_tui::{render, ui};
use ratatui::backend::CrosstermBackend;
use ratatui::layout::Rect;
use ratatui::{Terminal, TerminalOptions, Viewport};

const FRAMES: usize = 41;
const W: u16 = 200;
const H: u16 = 50;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Median frame and median view+status time of `tab` over [`FRAMES`] frames.
fn measure(data: &mut DeckData, next: &mut u64, tab: Tab) -> (f64, f64) {
    let mut term = Terminal::with_options(
        CrosstermBackend::new(std::io::sink()),
        TerminalOptions { viewport: Viewport::Fixed(Rect::new(0, 0, W, H)) },
    )
    .expect("a terminal over a sink");
    let mut app = App::new(Settings { color: true, hint: None });
    update(&mut app.state, Msg::Tab(tab));
    let mut samples = Vec::with_capacity(FRAMES);
    let mut prep = Vec::with_capacity(FRAMES);
    for i in 0..FRAMES {
        if tab == Tab::Logs {
            testkit::push_logs(data, 100, next);
        }
        let started = Instant::now();
        let (view, status) = ui::prepare(data, &mut app, W, H);
        let built = started.elapsed().as_secs_f64() * 1000.0;
        term.draw(|f| render::draw(f, &app, &view, &status)).expect("draw");
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        if i > 0 {
            samples.push(ms);
            prep.push(built);
        }
    }
    (median(samples), median(prep))
}

/// Rounds over every tab; each tab's figure is its best round (the machine is
/// shared and its speed drifts between rounds, not within one).
const ROUNDS: usize = 3;

fn main() {
    let mut data = testkit::big(100, 2_000, 100_000, 10_000);
    let mut next = 100_000u64;
    let mut best: Vec<(f64, f64)> = vec![(f64::MAX, f64::MAX); Tab::ALL.len()];
    for round in 0..ROUNDS {
        for (i, tab) in Tab::ALL.into_iter().enumerate() {
            let (frame, prep) = measure(&mut data, &mut next, tab);
            println!(
                "round {round} frame {:<10} median {frame:7.3} ms (view and status bar {prep:.3} ms)",
                tab.title()
            );
            if frame < best[i].0 {
                best[i] = (frame, prep);
            }
        }
    }
    let mut worst: f64 = 0.0;
    for (tab, (frame, prep)) in Tab::ALL.into_iter().zip(&best) {
        println!(
            "best  frame {:<10} median {frame:7.3} ms (view and status bar {prep:.3} ms)",
            tab.title()
        );
        worst = worst.max(*frame);
    }
    let logs = best[Tab::Logs.index()].0;
    println!("figure: frame_render_ms = {logs:.3} ms");
    println!("figure: frame_render_worst_tab_ms = {worst:.3} ms");
}
