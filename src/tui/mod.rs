//! The console (DESIGN section 9): inventory browser and incident runbook over the same
//! engine and `drive` loop as the headless CLI. Only this module imports ratatui/crossterm.

pub mod action;
pub mod app;
pub mod bridge;
pub mod dialogs;
pub mod fleet;
pub mod keymap;
pub mod plan_view;
pub mod runner;
pub mod screens;
pub mod strings;
pub mod terminal;
pub mod theme;
pub mod ui;
pub mod widgets;

use std::time::Duration;

use ratatui::crossterm::event::{self, Event, KeyEventKind};
use tokio::sync::mpsc;

use crate::runbook::Setup;
pub use action::Opening;
use app::App;
use runner::{Input, Runner, run_loop};

/// Options of one console session.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConsoleOptions {
    /// Show the TRAINING banner (the demo environment).
    pub training: bool,
}

/// The console, straight into an incident (`keyfire incident start|resume` on a terminal).
/// `customer_data` is the command line's `--customer-data` answer: that incident's question
/// is then answered with it instead of asked.
pub fn run_incident(
    setup: Setup,
    opening: Opening,
    customer_data: Option<crate::record::event::CustomerDataAnswer>,
) -> std::io::Result<()> {
    run_with(
        setup,
        ConsoleOptions::default(),
        Some((opening, customer_data)),
    )
}

/// Open the console until the operator quits. The terminal is restored on every way out.
pub fn run(setup: Setup, opts: ConsoleOptions) -> std::io::Result<()> {
    run_with(setup, opts, None)
}

fn run_with(
    setup: Setup,
    opts: ConsoleOptions,
    opening: Option<(Opening, Option<crate::record::event::CustomerDataAnswer>)>,
) -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let incidents = crate::incidents::list(&setup.data_dir);
        let mut app = App::new(setup.inventory.clone(), incidents, setup.clock.now());
        app.training = opts.training;
        let theme = theme::Theme::from_env();
        let (input_tx, mut input_rx) = mpsc::unbounded_channel();
        let (engine_tx, mut engine_rx) = mpsc::unbounded_channel();
        let mut runner = Runner::new(setup, engine_tx);
        if let Some((opening, customer_data)) = opening {
            runner.answer_customer_data(customer_data);
            let effects = app.open_incident(opening);
            runner.perform(&mut app, effects);
        }

        let (guard, mut terminal) = terminal::TerminalGuard::enter()?;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        spawn_input_thread(input_tx.clone(), stop.clone());
        spawn_ticks(input_tx.clone());
        spawn_signals(input_tx);
        let result = run_loop(
            &mut terminal,
            &mut app,
            &mut input_rx,
            &mut engine_rx,
            &mut runner,
            theme,
            None,
        )
        .await;
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        drop(guard);
        result
    })
}

fn spawn_input_thread(
    tx: mpsc::UnboundedSender<Input>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) {
    std::thread::spawn(move || {
        while !stop.load(std::sync::atomic::Ordering::SeqCst) {
            match event::poll(Duration::from_millis(100)) {
                Ok(true) => {}
                Ok(false) => continue,
                Err(_) => break,
            }
            let input = match event::read() {
                Ok(Event::Key(k)) if k.kind == KeyEventKind::Press => Input::Key(k),
                Ok(Event::Resize(..)) => Input::Resize,
                Ok(Event::Mouse(m)) => Input::Mouse(m),
                Ok(Event::Paste(text)) => {
                    // Bracketed paste arrives as one event: feed it as typed characters.
                    for c in text.chars() {
                        let key = event::KeyEvent::new(
                            event::KeyCode::Char(c),
                            event::KeyModifiers::NONE,
                        );
                        if tx.send(Input::Key(key)).is_err() {
                            return;
                        }
                    }
                    continue;
                }
                Ok(_) => continue,
                Err(_) => break,
            };
            if tx.send(input).is_err() {
                break;
            }
        }
    });
}

fn spawn_ticks(tx: mpsc::UnboundedSender<Input>) {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(Duration::from_millis(250));
        loop {
            interval.tick().await;
            if tx.send(Input::Tick).is_err() {
                break;
            }
        }
    });
}

#[cfg(unix)]
fn spawn_signals(tx: mpsc::UnboundedSender<Input>) {
    use tokio::signal::unix::{SignalKind, signal};
    tokio::spawn(async move {
        let (Ok(mut term), Ok(mut hup)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        ) else {
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = hup.recv() => {}
        }
        let _ = tx.send(Input::Quit);
    });
}

#[cfg(not(unix))]
fn spawn_signals(_tx: mpsc::UnboundedSender<Input>) {}
