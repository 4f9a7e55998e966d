//! Entering and always leaving the terminal's raw, alternate-screen mode: on normal exit, on
//! an error return (the guard's `Drop`), on panic (a hook that restores first) and on
//! SIGTERM/SIGHUP (the loop ends and the guard drops).

use std::io::{Stdout, stdout};
use std::sync::Once;

use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::cursor::{Hide, Show};
use ratatui::crossterm::event::{DisableMouseCapture, EnableMouseCapture};
use ratatui::crossterm::execute;
use ratatui::crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};

pub struct TerminalGuard;

/// Put the terminal back the way the shell expects it. Safe to call more than once.
pub fn restore() {
    let _ = disable_raw_mode();
    let _ = execute!(stdout(), DisableMouseCapture, LeaveAlternateScreen, Show);
}

fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
    });
}

impl TerminalGuard {
    pub fn enter() -> std::io::Result<(Self, Terminal<CrosstermBackend<Stdout>>)> {
        install_panic_hook();
        enable_raw_mode()?;
        let guard = Self;
        // Mouse reports: the wheel scrolls the list on screen and a click selects a row.
        execute!(stdout(), EnterAlternateScreen, EnableMouseCapture, Hide)?;
        let terminal = Terminal::new(CrosstermBackend::new(stdout()))?;
        Ok((guard, terminal))
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore();
    }
}
