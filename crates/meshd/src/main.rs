//! `meshd`: parses the command line and hands over to the library (a thin binary).

#![allow(clippy::print_stderr, reason = "the binary reports its own failure on stderr")]

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = meshd::Cli::parse();
    let mut stdout = std::io::stdout();
    match meshd::cli::execute(cli, &mut stdout) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("meshd: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
