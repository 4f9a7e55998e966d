//! DESIGN section 12: the console's first frame with 10,000 keys (load + model + render; the
//! process start is measured separately) and one filter keystroke's update + redraw at
//! 100,000 keys. Prints medians.

#[path = "common.rs"]
mod common;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use keyfire::tui::action::Action;
use keyfire::tui::app::App;
use keyfire::tui::theme::Theme;
use keyfire::tui::ui::{ViewState, render};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let exec: Vec<Duration> = (0..9)
        .map(|_| {
            common::measure(
                Command::new(env!("CARGO_BIN_EXE_keyfire"))
                    .arg("--version")
                    .stdout(Stdio::null()),
            )
            .wall
        })
        .collect();
    println!(
        "console: process start (`keyfire --version`): {:.1} ms median",
        common::median(exec).as_secs_f64() * 1000.0
    );

    let path = dir.path().join("inv-10k.toml");
    common::write(&path, &common::inventory(10_000));
    let mut first = Vec::new();
    for _ in 0..9 {
        let t = Instant::now();
        let inv = keyfire::inventory::load(std::slice::from_ref(&path)).expect("inventory");
        let incidents = keyfire::incidents::list(dir.path());
        let app = App::new(Arc::new(inv), incidents, chrono::Utc::now());
        let mut terminal = Terminal::new(TestBackend::new(120, 40)).expect("terminal");
        let mut view = ViewState::default();
        terminal
            .draw(|f| render(&app, &mut view, Theme::plain(), f))
            .expect("draw");
        first.push(t.elapsed());
    }
    println!(
        "console: first frame, 10,000 keys (load, model, render 120x40): {:.1} ms median",
        common::median(first).as_secs_f64() * 1000.0
    );

    let text = common::inventory(100_000);
    let inv =
        keyfire::inventory::load_str(std::path::Path::new("inv.toml"), &text).expect("inventory");
    let mut app = App::new(Arc::new(inv), Vec::new(), chrono::Utc::now());
    let mut terminal = Terminal::new(TestBackend::new(120, 40)).expect("terminal");
    let mut view = ViewState::default();
    app.update(Action::FilterStart);
    let mut keystrokes = Vec::new();
    for (i, c) in "agent-12"
        .chars()
        .chain("\u{8}\u{8}\u{8}".chars())
        .enumerate()
    {
        let t = Instant::now();
        if c == '\u{8}' {
            app.update(Action::Backspace);
        } else {
            app.update(Action::Char(c));
        }
        terminal
            .draw(|f| render(&app, &mut view, Theme::plain(), f))
            .expect("draw");
        if i > 0 {
            keystrokes.push(t.elapsed());
        }
    }
    let worst = keystrokes.iter().max().copied().unwrap_or_default();
    println!(
        "console: filter keystroke at 100,000 keys (update + redraw): {:.2} ms median, {:.2} ms worst of {}",
        common::median(keystrokes.clone()).as_secs_f64() * 1000.0,
        worst.as_secs_f64() * 1000.0,
        keystrokes.len()
    );
}
