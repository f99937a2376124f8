//! `deck`: parses the command line and hands over to the library (a thin binary).

#![allow(clippy::print_stderr, reason = "the binary reports its own failure on stderr")]

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = deck_tui::cli::Cli::parse();
    match deck_tui::run::main(cli) {
        Ok(Some(json)) => {
            use std::io::Write;
            // A closed pipe (`deck --once --json | head`) is not an error.
            let mut out = std::io::stdout().lock();
            match writeln!(out, "{json:#}").and_then(|()| out.flush()) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                    eprintln!("deck: writing the JSON: {e}");
                    std::process::ExitCode::FAILURE
                }
                _ => std::process::ExitCode::SUCCESS,
            }
        }
        Ok(None) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            deck_tui::term::restore();
            eprintln!("deck: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
