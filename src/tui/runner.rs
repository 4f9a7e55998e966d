//! The console's event loop: one inbound stream (keys, resizes, ticks, engine events), pure
//! updates, effects performed here, and a redraw only when something changed.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ratatui::Terminal;
use ratatui::backend::Backend;
use ratatui::crossterm::event::{KeyEvent, MouseEvent};
use tokio::sync::mpsc;

use super::action::{AppEvent, Effect, Reply};
use super::app::App;
use super::bridge::{ChannelGate, ChannelSink, FromEngine, Pending};
use super::keymap;
use super::theme::Theme;
use super::ui::{self, ViewState};
use crate::record::event::CustomerDataAnswer;
use crate::runbook::{Engine, Setup};

/// How long the console waits for the shared copy to catch up after a run (the headless
/// summary waits as long).
const SHARE_WAIT: std::time::Duration = std::time::Duration::from_secs(20);

/// What reaches the loop from the terminal side.
#[derive(Debug)]
pub enum Input {
    Key(KeyEvent),
    /// Where the terminal reports it: the wheel and clicks.
    Mouse(MouseEvent),
    Resize,
    Tick,
    /// SIGTERM, SIGHUP: leave now (the record is durable; the incident stays resumable).
    Quit,
}

/// Performs effects: starts and resumes incidents, delivers answers.
pub struct Runner {
    setup: Setup,
    data_dir: PathBuf,
    pending: HashMap<u64, Pending>,
    engine_tx: mpsc::UnboundedSender<FromEngine>,
    abort: Arc<AtomicBool>,
    /// The command line's `--customer-data`, for the incident it opened (the next engine
    /// spawned) only: an incident started later from the console asks.
    customer_data: Option<CustomerDataAnswer>,
}

impl Runner {
    pub fn new(setup: Setup, engine_tx: mpsc::UnboundedSender<FromEngine>) -> Self {
        let data_dir = setup.data_dir.clone();
        Self {
            setup,
            data_dir,
            pending: HashMap::new(),
            engine_tx,
            abort: Arc::new(AtomicBool::new(false)),
            customer_data: None,
        }
    }

    /// Answer the customer-data question of the next incident this runner opens or resumes.
    pub fn answer_customer_data(&mut self, answer: Option<CustomerDataAnswer>) {
        self.customer_data = answer;
    }

    fn spawn_engine(
        &mut self,
        open: impl FnOnce(Setup) -> Result<Engine, crate::runbook::EngineError> + Send + 'static,
    ) {
        self.abort.store(false, Ordering::SeqCst);
        let customer_data = self.customer_data.take();
        let setup = self.setup.clone();
        let tx = self.engine_tx.clone();
        let abort = self.abort.clone();
        tokio::spawn(async move {
            let mut engine = match open(setup) {
                Ok(e) => e,
                Err(e) => {
                    let _ = tx.send(FromEngine::Event(AppEvent::RunFailed(e.to_string())));
                    return;
                }
            };
            let mut gate = ChannelGate::new(tx.clone(), abort).with_customer_data(customer_data);
            let sink = ChannelSink::new(tx.clone());
            // A live incident tells the inventory's notifiers; a drill from the console does
            // not (the CLI's `drill --notify` does).
            let notify = !engine.dry_run();
            let run = crate::notify::drive_with_notifiers(&mut engine, &mut gate, sink, notify);
            if let Err(e) = run.await {
                let _ = tx.send(FromEngine::Event(AppEvent::RunFailed(e.to_string())));
            }
            // As the headless summary does: give the shared copy a moment to catch up, then
            // say how far it got (what is left stays queued in the incident folder).
            let share = tokio::task::spawn_blocking(move || engine.finish_sharing(SHARE_WAIT))
                .await
                .ok()
                .flatten();
            if let Some(status) = share {
                let _ = tx.send(FromEngine::Event(AppEvent::Shared(status)));
            }
            let _ = tx.send(FromEngine::Event(AppEvent::RunFinished));
        });
    }

    pub fn perform(&mut self, app: &mut App, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::Quit => app.quit = true,
                Effect::Open(params) => {
                    self.spawn_engine(move |setup| Engine::open(setup, *params));
                }
                Effect::ResumeRun { id } => {
                    self.spawn_engine(move |setup| Engine::resume(setup, &id))
                }
                Effect::Reply { prompt, reply } => match (self.pending.remove(&prompt), reply) {
                    (Some(Pending::Decision(tx)), Reply::Decision(d)) => {
                        let _ = tx.send(d);
                    }
                    (Some(Pending::Paste(tx)), Reply::Paste(s)) => {
                        let _ = tx.send(s);
                    }
                    (Some(Pending::Failure(tx)), Reply::Failure(f)) => {
                        let _ = tx.send(f);
                    }
                    (Some(Pending::CustomerData(tx)), Reply::CustomerData(a)) => {
                        let _ = tx.send(a);
                    }
                    // A mismatched or stale answer: dropping the sender declines in the gate.
                    _ => {}
                },
                Effect::RequestAbort => self.abort.store(true, Ordering::SeqCst),
                Effect::RefreshIncidents => {
                    app.set_incidents(crate::incidents::list(&self.data_dir))
                }
                Effect::LoadLeaks => app.leaks.set(crate::scan::saved::load(&self.data_dir)),
                Effect::ReloadInventory => self.reload_inventory(app),
            }
        }
    }

    /// Read the inventory files again, so the key table shows what a step just wrote and the
    /// next incident starts from it. A file that no longer loads (a person is editing it)
    /// keeps the inventory the console had, and says so.
    fn reload_inventory(&mut self, app: &mut App) {
        let files: Vec<PathBuf> = self
            .setup
            .inventory
            .files
            .iter()
            .map(|f| f.path.clone())
            .collect();
        if files.is_empty() {
            return;
        }
        match crate::inventory::load(&files) {
            Ok(inv) => {
                let inv = Arc::new(inv);
                self.setup.inventory = inv.clone();
                app.set_inventory(inv);
            }
            Err(e) => {
                app.notice = Some(format!(
                    "the inventory changed on disk and does not load; showing the version read before: {e}"
                ));
            }
        }
    }

    fn engine_event(&mut self, app: &mut App, ev: FromEngine) {
        let effects = match ev {
            FromEngine::Event(e) => app.on_event(e),
            FromEngine::Ask(prompt, pending) => {
                self.pending.insert(prompt.id, pending);
                app.on_event(AppEvent::Prompt(prompt))
            }
        };
        self.perform(app, effects);
    }
}

/// Keys a headless driver types in reaction to what the app shows (tests).
pub type Script<'a> = &'a mut dyn FnMut(&App) -> Vec<KeyEvent>;

/// Run until the operator quits. Generic over the backend, and optionally scripted, so tests
/// drive the real loop headless.
pub async fn run_loop<B: Backend>(
    terminal: &mut Terminal<B>,
    app: &mut App,
    inputs: &mut mpsc::UnboundedReceiver<Input>,
    engine_rx: &mut mpsc::UnboundedReceiver<FromEngine>,
    runner: &mut Runner,
    theme: Theme,
    mut script: Option<Script<'_>>,
) -> Result<(), B::Error> {
    let mut view = ViewState::default();
    terminal.draw(|f| ui::render(app, &mut view, theme, f))?;
    loop {
        if let Some(script) = script.as_mut() {
            for key in script(app) {
                handle_input(app, runner, &view, Input::Key(key));
            }
            if app.quit {
                break;
            }
            terminal.draw(|f| ui::render(app, &mut view, theme, f))?;
        }
        let mut dirty = false;
        tokio::select! {
            input = inputs.recv() => match input {
                None | Some(Input::Quit) => break,
                Some(i) => dirty |= handle_input(app, runner, &view, i),
            },
            ev = engine_rx.recv() => {
                if let Some(ev) = ev {
                    runner.engine_event(app, ev);
                    dirty = true;
                }
            }
        }
        // Drain whatever else is queued before drawing once.
        while let Ok(i) = inputs.try_recv() {
            if matches!(i, Input::Quit) {
                app.quit = true;
                break;
            }
            dirty |= handle_input(app, runner, &view, i);
        }
        while let Ok(ev) = engine_rx.try_recv() {
            runner.engine_event(app, ev);
            dirty = true;
        }
        if app.quit {
            break;
        }
        if dirty {
            terminal.draw(|f| ui::render(app, &mut view, theme, f))?;
        }
    }
    Ok(())
}

fn handle_input(app: &mut App, runner: &mut Runner, view: &ViewState, input: Input) -> bool {
    match input {
        Input::Mouse(m) => match ui::mouse_action(app, view, m) {
            Some(action) => {
                let effects = app.update(action);
                runner.perform(app, effects);
                true
            }
            None => false,
        },
        Input::Key(key) => {
            if let Some(action) = keymap::map(app.mode(), key) {
                let effects = app.update(action);
                runner.perform(app, effects);
            }
            true
        }
        Input::Resize => true,
        Input::Tick => {
            let effects = app.on_event(AppEvent::Tick(runner.setup.clock.now()));
            runner.perform(app, effects);
            // Timers only move while an incident runs.
            app.running()
        }
        Input::Quit => {
            app.quit = true;
            true
        }
    }
}
