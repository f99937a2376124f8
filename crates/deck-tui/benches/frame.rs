//! Frame cost, release build: building the view, the status bar and drawing the
//! whole screen at 200x50 through ratatui's crossterm backend (diffing and escape
//! codes included; the bytes go to a sink), from a 100-node, 2,000-daemon,
//! 100,000-line-log, 10,000-blob state. LOGS gets 100 new lines before every
//! frame (the tail is full, so as many are evicted), as it would while following.
//!
//! Prints one line per tab and `figure: frame_render_ms` = the slowest tab's
//! median frame.

#![allow(clippy::print_stdout, reason = "a benchmark reports on stdout")]

use std::time::Instant;

use deck_model::testkit::{self, NOW_MS};
use deck_model::{DeckData, Msg, Tab, update};
use deck_tui::app::{App, Settings};
use deck_tui::{render, run};
use mesh::LogLevel;
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

fn push_lines(data: &mut DeckData, n: u64, next: &mut u64) {
    for _ in 0..n {
        let k = *next;
        *next += 1;
        let level =
            [LogLevel::Info, LogLevel::Debug, LogLevel::Warn, LogLevel::Error][(k % 4) as usize];
        let mut line =
            testkit::log(k % 100, k, level, &format!("gpu-{} :: prefill {k} tokens/s", k % 100));
        line.ts_ms = NOW_MS + k;
        data.logs.push(line);
    }
}

fn main() {
    let mut data = testkit::big(100, 2_000, 100_000, 10_000);
    let mut next = 100_000u64;
    let mut worst: f64 = 0.0;
    for tab in Tab::ALL {
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
                push_lines(&mut data, 100, &mut next);
            }
            let started = Instant::now();
            let (view, status) = run::prepare(&data, &mut app, W, H);
            let built = started.elapsed().as_secs_f64() * 1000.0;
            term.draw(|f| render::draw(f, &app, &view, &status)).expect("draw");
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            if i > 0 {
                samples.push(ms);
                prep.push(built);
            }
        }
        let m = median(samples);
        worst = worst.max(m);
        println!(
            "frame {:<10} median {m:7.3} ms (view and status bar {:.3} ms)",
            tab.title(),
            median(prep)
        );
    }
    println!("figure: frame_render_ms = {worst:.3} ms");
}
