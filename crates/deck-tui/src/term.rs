//! Owning the terminal: raw mode and the alternate screen on the way in, and
//! restored on every way out (normal exit, error, panic).

use std::io::{self, Stdout};
use std::sync::atomic::{AtomicBool, Ordering};

use crossterm::cursor::Show;
use crossterm::event::{DisableMouseCapture, EnableMouseCapture};
use crossterm::execute;
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;

/// The deck's terminal.
pub type Tui = Terminal<CrosstermBackend<Stdout>>;

/// Whether the deck holds the terminal (so `restore` writes nothing otherwise,
/// keeping `--once --json` output clean).
static TAKEN: AtomicBool = AtomicBool::new(false);

/// Puts the terminal back as the shell expects it. Safe to call more than once,
/// and does nothing when the terminal was never taken.
pub fn restore() {
    if !TAKEN.swap(false, Ordering::SeqCst) {
        return;
    }
    let _ = disable_raw_mode();
    let _ = execute!(io::stdout(), DisableMouseCapture, LeaveAlternateScreen, Show);
}

/// Restores the terminal before the default panic message is printed, so the
/// message is readable and the shell usable.
pub fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore();
        previous(info);
    }));
}

/// Holds the terminal; dropping it restores the terminal.
#[derive(Debug)]
pub struct Guard {
    /// The ratatui terminal.
    pub terminal: Tui,
}

impl Guard {
    /// Enters raw mode and the alternate screen.
    pub fn enter() -> io::Result<Guard> {
        install_panic_hook();
        enable_raw_mode()?;
        TAKEN.store(true, Ordering::SeqCst);
        if let Err(e) = execute!(io::stdout(), EnterAlternateScreen, EnableMouseCapture) {
            restore();
            return Err(e);
        }
        match Terminal::new(CrosstermBackend::new(io::stdout())) {
            Ok(mut terminal) => {
                let _ = terminal.hide_cursor();
                Ok(Guard { terminal })
            }
            Err(e) => {
                restore();
                Err(e)
            }
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        restore();
    }
}
