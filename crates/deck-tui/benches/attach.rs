//! Attach figures, release build, against nine real `meshd` processes on
//! loopback (`cargo xtask bench attach` builds meshd first):
//!
//! - `attach_first_frame_ms`: from starting the deck's operator node to the first
//!   frame (200x50) that shows every node of the cluster with its streams read;
//! - `attach_change_visible_ms`: from sending a cordon to the cordon showing in
//!   the attached deck's snapshot (the change travels node -> fold -> deck);
//! - `attach_idle_bytes_per_s`: bytes in and out of the deck's node while it
//!   refreshes as the UI does (every 500 ms, snapshot changes synced locally).

#![allow(clippy::print_stdout, reason = "a benchmark reports on stdout")]

#[path = "../tests/support/meshd.rs"]
mod meshd;

use std::time::{Duration, Instant};

use deck_model::{DeckClient, DeckSource};
use deck_tui::app::{App, Settings};
use deck_tui::{render, session, ui};
use mesh_auth::{EntityKeypair, OperatorIdentity};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

const NODES: usize = 9;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn sees_everyone(deck: &DeckClient) -> bool {
    let data = deck.data();
    let cluster: Vec<_> = data.snapshot.peers.iter().filter(|p| !p.info.is_operator()).collect();
    cluster.len() == NODES
        && cluster.iter().all(|p| p.info.health.is_healthy())
        && cluster
            .iter()
            .all(|p| data.streams.get(&p.info.node_id).is_some_and(|s| s.last_ok_ms.is_some()))
}

fn main() {
    let fx = meshd::Fixture::new(meshd::meshd_bin());
    let nodes = fx.cluster(NODES);
    let addr = nodes[NODES / 2].addr.to_string();
    let operator =
        OperatorIdentity::from_keypair(EntityKeypair::load(&fx.operator_key).expect("key"));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
    rt.block_on(async {
        // Let the nine converge before timing anything.
        tokio::time::sleep(Duration::from_secs(3)).await;

        let mut first_frames = Vec::new();
        for _ in 0..5 {
            let started = Instant::now();
            let node = session::attach_node(&addr, &fx.cluster_key, Duration::from_secs(10))
                .await
                .expect("attach");
            let deck = DeckClient::from_node(&node, operator.clone()).expect("deck");
            loop {
                deck.refresh().await;
                if sees_everyone(&deck) {
                    break;
                }
                assert!(started.elapsed() < Duration::from_secs(20), "never saw all nodes");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let mut app = App::new(Settings { color: true, hint: None });
            let mut term = Terminal::new(TestBackend::new(200, 50)).expect("backend");
            let (view, status) = ui::prepare(&deck.data(), &mut app, 200, 50);
            term.draw(|f| render::draw(f, &app, &view, &status)).expect("draw");
            first_frames.push(started.elapsed().as_secs_f64() * 1e3);
            drop(deck);
            node.shutdown().await;
        }
        println!("attach first frame samples (ms): {first_frames:.1?}");

        let node = session::attach_node(&addr, &fx.cluster_key, Duration::from_secs(10))
            .await
            .expect("attach");
        let deck = DeckClient::from_node(&node, operator.clone()).expect("deck");
        while !sees_everyone(&deck) {
            deck.refresh().await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let targets: Vec<_> = deck
            .current_snapshot()
            .peers
            .iter()
            .filter(|p| !p.info.is_operator())
            .map(|p| p.info.node_id)
            .collect();
        let mut visible = Vec::new();
        for (i, target) in targets.iter().cycle().take(2 * NODES).enumerate() {
            let cordon = i < NODES;
            let pending =
                if cordon { deck.admin().cordon(*target) } else { deck.admin().uncordon(*target) };
            let started = Instant::now();
            let report = deck.admin().confirm(&pending).await.expect("sent");
            assert!(report.all_accepted(), "{}", report.summary());
            loop {
                deck.sync_snapshot();
                let shown = deck
                    .current_snapshot()
                    .peers
                    .iter()
                    .any(|p| p.info.node_id == *target && p.admin.cordoned == cordon);
                if shown {
                    break;
                }
                assert!(started.elapsed() < Duration::from_secs(10), "change never shown");
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            visible.push(started.elapsed().as_secs_f64() * 1e3);
        }
        println!("change visible samples (ms): {visible:.1?}");

        // Idle: refresh every 500 ms, sync on snapshot changes, as the UI does.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let before = node.metrics();
        let started = Instant::now();
        let mut snapshots = deck.snapshot_changes();
        let mut tick = tokio::time::interval(deck_model::REFRESH_INTERVAL);
        let window = Duration::from_secs(10);
        while started.elapsed() < window {
            tokio::select! {
                _ = tick.tick() => { deck.refresh().await; }
                _ = snapshots.changed() => { deck.sync_snapshot(); }
                _ = tokio::time::sleep(window.saturating_sub(started.elapsed())) => {}
            }
        }
        let after = node.metrics();
        let secs = started.elapsed().as_secs_f64();
        let bytes = (after.bytes_in + after.bytes_out) - (before.bytes_in + before.bytes_out);
        let datagrams = (after.datagrams_in + after.datagrams_out)
            - (before.datagrams_in + before.datagrams_out);
        println!("idle: {bytes} bytes, {datagrams} datagrams in {secs:.1} s");
        drop(deck);
        node.shutdown().await;

        println!("figure: attach_first_frame_ms = {:.1} ms", median(first_frames));
        println!("figure: attach_change_visible_ms = {:.1} ms", median(visible));
        println!("figure: attach_idle_bytes_per_s = {:.0} B/s", bytes as f64 / secs);
    });
}
