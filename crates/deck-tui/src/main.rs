//! `deck`: parses the command line and hands over to the library (a thin binary).

#![allow(clippy::print_stderr, reason = "the binary reports its own failure on stderr")]

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = deck_tui::cli::Cli::parse();
    match deck_tui::commands::run(cli) {
        Ok(deck_tui::commands::Output::Json(json)) => {
            print(&deck_model::headless::to_json_text(&json))
        }
        Ok(deck_tui::commands::Output::Text(text)) => print(&text),
        Ok(deck_tui::commands::Output::Nothing) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            deck_tui::term::restore();
            eprintln!("deck: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn print(text: &str) -> std::process::ExitCode {
    use std::io::Write;
    // A closed pipe (`deck --once --json | head`) is not an error.
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            eprintln!("deck: writing the output: {e}");
            std::process::ExitCode::FAILURE
        }
        _ => std::process::ExitCode::SUCCESS,
    }
}
