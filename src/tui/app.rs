//! The console's model: one component per screen and per dialog, and the routing between
//! them. `App::update` is pure: it hands the action to whatever has the keyboard, applies
//! what that component asks for (a screen change, a dialog, a notice) and returns effects;
//! the loop performs them. Rendering only reads this state.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};

use super::action::{Action, AppEvent, Effect, Opening, Prompt, PromptKind};
use super::dialogs::prompt::{PromptDialog, PromptOutcome};
use super::dialogs::start::{LeakStart, StartDialog, StartOutcome};
use super::fleet::{Fleet, open_keys};
use super::keymap::Mode;
use super::screens::Request;
use super::screens::incident::IncidentScreen;
use super::screens::incidents::IncidentsScreen;
use super::screens::inventory::InventoryScreen;
use super::screens::key::KeyScreen;
use super::screens::leaks::LeaksScreen;
use crate::incidents::IncidentSummary;
use crate::inventory::Inventory;
use crate::record::Event;
use crate::runbook::Order;

pub use super::screens::incident::RunView;
#[cfg(feature = "testing")]
pub use super::screens::incident::{StepStatus, StepView};
#[cfg(feature = "testing")]
pub use super::screens::inventory::SortKey;

/// Which screen is on top. The key screen's state (the key it shows) lives here, so the
/// back stack returns to the key that was on show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Screen {
    Inventory,
    Key(KeyScreen),
    Incident,
    Incidents,
    Leaks,
}

const ALREADY_RUNNING: &str = "an incident is already running";

pub struct App {
    /// The inventory and the incident list every screen reads.
    pub fleet: Fleet,
    pub inventory: InventoryScreen,
    pub incidents: IncidentsScreen,
    pub incident: IncidentScreen,
    pub leaks: LeaksScreen,
    pub screen: Screen,
    back: Vec<Screen>,
    pub help: bool,
    /// The engine's question waiting for the operator.
    pub prompt: Option<PromptDialog>,
    pub start: Option<StartDialog>,
    pub abort_confirm: bool,
    /// `q` during an incident: once the abort it asked for has stopped the run, quit.
    pub quit_after_run: bool,
    pub now: DateTime<Utc>,
    pub today: NaiveDate,
    pub notice: Option<String>,
    pub training: bool,
    pub quit: bool,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("screen", &self.screen)
            .field("rows", &self.inventory.rows.len())
            .finish()
    }
}

impl App {
    pub fn new(
        inventory: Arc<Inventory>,
        incidents: Vec<IncidentSummary>,
        now: DateTime<Utc>,
    ) -> Self {
        let today = now.date_naive();
        let open = open_keys(&incidents);
        Self {
            inventory: InventoryScreen::new(&inventory, today, &open),
            fleet: Fleet::new(inventory, incidents, today),
            incidents: IncidentsScreen::default(),
            incident: IncidentScreen::default(),
            leaks: LeaksScreen::default(),
            screen: Screen::Inventory,
            back: Vec::new(),
            help: false,
            prompt: None,
            start: None,
            abort_confirm: false,
            quit_after_run: false,
            now,
            today,
            notice: None,
            training: false,
            quit: false,
        }
    }

    /// An engine is driving an incident.
    pub fn running(&self) -> bool {
        self.incident.running
    }

    /// The run on the incident screen.
    pub fn run(&self) -> Option<&RunView> {
        self.incident.run.as_ref()
    }

    /// A text field has the keyboard: the inventory's filter or the question's answer.
    fn typing(&self) -> bool {
        self.inventory.editing
            || self.prompt.as_ref().is_some_and(PromptDialog::typing)
            || self.start.as_ref().is_some_and(StartDialog::typing)
    }

    pub fn mode(&self) -> Mode {
        if self.start.as_ref().is_some_and(StartDialog::typing) {
            return Mode::Form;
        }
        if self.typing() {
            return Mode::Text;
        }
        let prompt = self.prompt.as_ref();
        // Questions answered by typing take the keyboard at once.
        if prompt.is_some_and(PromptDialog::needs_typing) && !self.help && !self.abort_confirm {
            return Mode::Text;
        }
        if self.start.is_some() || self.abort_confirm {
            return Mode::Dialog;
        }
        match prompt.map(PromptDialog::kind) {
            Some(PromptKind::Approve {
                confirm_text: None, ..
            }) => return Mode::Dialog,
            Some(PromptKind::Failure { .. }) => return Mode::Failure,
            _ => {}
        }
        match self.screen {
            Screen::Inventory => Mode::Inventory,
            Screen::Key(_) => Mode::Key,
            Screen::Incident => Mode::Incident,
            Screen::Incidents => Mode::Incidents,
            Screen::Leaks => Mode::Leaks,
        }
    }

    /// Start in an incident (`keyfire incident start|resume` on a terminal).
    pub fn open_incident(&mut self, opening: Opening) -> Vec<Effect> {
        self.go(Screen::Incident);
        match opening {
            Opening::Start(params) => {
                self.incident
                    .start(params.keys.clone(), params.dry_run, params.order);
                vec![Effect::Open(params)]
            }
            Opening::Resume { id, keys, dry_run } => {
                self.incident.start(keys, dry_run, Order::ContainFirst);
                vec![Effect::ResumeRun { id }]
            }
        }
    }

    fn go(&mut self, screen: Screen) {
        let prev = std::mem::replace(&mut self.screen, screen);
        self.back.push(prev);
        self.help = false;
    }

    fn go_back(&mut self) {
        self.screen = self.back.pop().unwrap_or(Screen::Inventory);
    }

    /// Handle an operator action. Pure: returns what the loop must do.
    pub fn update(&mut self, action: Action) -> Vec<Effect> {
        if self.help && !matches!(action, Action::Interrupt) {
            if matches!(
                action,
                Action::Help | Action::Back | Action::Quit | Action::No
            ) {
                self.help = false;
            }
            return Vec::new();
        }
        if action == Action::Interrupt {
            return self.interrupt();
        }
        if action == Action::Help && !self.typing() {
            self.help = true;
            return Vec::new();
        }
        if self.inventory.editing {
            self.inventory.edit(&action);
            return Vec::new();
        }
        if self.prompt.as_ref().is_some_and(PromptDialog::typing) {
            return self.answer_prompt(&action).unwrap_or_default();
        }
        if self.abort_confirm {
            return self.confirm_abort(&action);
        }
        if let Some(dialog) = self.start.as_mut() {
            return match dialog.update(&action) {
                StartOutcome::Open => Vec::new(),
                StartOutcome::Cancelled => {
                    self.start = None;
                    Vec::new()
                }
                StartOutcome::Start(params) => {
                    self.start = None;
                    self.open_incident(Opening::Start(params))
                }
            };
        }
        if let Some(effects) = self.answer_prompt(&action) {
            return effects;
        }
        self.navigate(action)
    }

    /// Give the action to the open question. `None` when it has no question or does not use
    /// the key.
    fn answer_prompt(&mut self, action: &Action) -> Option<Vec<Effect>> {
        match self.prompt.as_mut()?.update(action) {
            PromptOutcome::Ignored => None,
            PromptOutcome::Kept { notice } => {
                if notice.is_some() {
                    self.notice = notice;
                }
                Some(Vec::new())
            }
            PromptOutcome::Answered { reply, notice } => {
                let prompt = self.prompt.take()?.id();
                if notice.is_some() {
                    self.notice = notice;
                }
                Some(vec![Effect::Reply { prompt, reply }])
            }
        }
    }

    /// The abort (or quit) question.
    fn confirm_abort(&mut self, action: &Action) -> Vec<Effect> {
        match action {
            Action::Yes => {
                self.abort_confirm = false;
                self.notice =
                    Some("abort requested: the incident stops after the current call".into());
                let mut effects = vec![Effect::RequestAbort];
                // A question on screen is answered "no" so the engine can stop now.
                if let Some(p) = self.prompt.take() {
                    effects.push(Effect::Reply {
                        prompt: p.id(),
                        reply: p.decline(),
                    });
                }
                effects
            }
            Action::No => {
                self.abort_confirm = false;
                self.quit_after_run = false;
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    fn interrupt(&mut self) -> Vec<Effect> {
        if self.running() {
            self.abort_confirm = true;
            self.inventory.editing = false;
            if let Some(p) = self.prompt.as_mut() {
                p.cancel_input();
            }
            if self.screen != Screen::Incident {
                self.go(Screen::Incident);
            }
            Vec::new()
        } else {
            self.quit = true;
            vec![Effect::Quit]
        }
    }

    /// Keys that no dialog took: the app's own, then the top screen's.
    fn navigate(&mut self, action: Action) -> Vec<Effect> {
        self.notice = None;
        match (&self.screen, &action) {
            (_, Action::Quit) => {
                if self.running() {
                    // Asks first: yes stops the incident at the next action boundary (it
                    // stays resumable), and the console closes once it has stopped.
                    self.quit_after_run = true;
                    return self.interrupt();
                }
                self.quit = true;
                vec![Effect::Quit]
            }
            (Screen::Inventory, Action::Back) => {
                self.inventory.update(&action);
                Vec::new()
            }
            (_, Action::Back) => {
                self.go_back();
                Vec::new()
            }
            (_, Action::ShowIncidents) => {
                self.go(Screen::Incidents);
                vec![Effect::RefreshIncidents]
            }
            (Screen::Inventory, Action::ShowLeaks) => {
                self.go(Screen::Leaks);
                vec![Effect::LoadLeaks]
            }
            (Screen::Leaks, Action::StartIncident | Action::StartDrill) => {
                self.start_from_leaks(action == Action::StartDrill);
                Vec::new()
            }
            (Screen::Leaks, _) => match self.leaks.update(&action) {
                Some(request) => self.request(request),
                None => Vec::new(),
            },
            (Screen::Inventory | Screen::Key(_), Action::StartIncident | Action::StartDrill) => {
                if self.running() {
                    self.notice = Some(ALREADY_RUNNING.into());
                    return Vec::new();
                }
                let key = match &self.screen {
                    Screen::Key(k) => Some(k.id.clone()),
                    _ => self.inventory.selected_row().map(|r| r.id.clone()),
                };
                if let Some(key) = key {
                    let issued = self.fleet.inventory.key(&key).and_then(|k| k.issued_on());
                    self.start = Some(
                        StartDialog::new(key, action == Action::StartDrill)
                            .with_default_since(issued),
                    );
                }
                Vec::new()
            }
            (Screen::Inventory, _) => {
                if let Some(id) = self.inventory.update(&action) {
                    self.go(Screen::Key(KeyScreen::new(id)));
                }
                Vec::new()
            }
            (Screen::Incident, _) => {
                self.incident.update(&action);
                Vec::new()
            }
            (Screen::Incidents, _) => match self.incidents.update(&action, &self.fleet.incidents) {
                Some(request) => self.request(request),
                None => Vec::new(),
            },
            (Screen::Key(_), _) => Vec::new(),
        }
    }

    /// The start dialog for the chosen findings, filled in as `keyfire scan --start-incident`
    /// fills it; or a notice saying why they cannot start one.
    fn start_from_leaks(&mut self, drill: bool) {
        if self.running() {
            self.notice = Some(ALREADY_RUNNING.into());
            return;
        }
        let chosen = self.leaks.chosen();
        if chosen.is_empty() {
            self.notice = Some(match self.leaks.scan() {
                None => "no scan to start from: run `keyfire scan` first".into(),
                Some(_) => "the last scan has no findings".into(),
            });
            return;
        }
        let left_out: Vec<String> = chosen
            .iter()
            .filter_map(|f| {
                crate::scan::summary::why_not_startable(f)
                    .map(|why| format!("{}: {why}", f.location.display()))
            })
            .collect();
        match crate::scan::incident_for(&self.fleet.inventory, &chosen) {
            Some(incident) => {
                self.start = Some(StartDialog::for_leak(
                    LeakStart { incident, left_out },
                    drill,
                ));
            }
            None => {
                self.notice = Some(match left_out.first() {
                    Some(why) if left_out.len() == 1 => format!("cannot start an incident: {why}"),
                    Some(why) => format!(
                        "no marked finding is a live inventory key ({} left out); first: {why}",
                        left_out.len()
                    ),
                    None => "the chosen findings' keys are no longer in the inventory".into(),
                });
            }
        }
    }

    /// Do what a screen asked for.
    fn request(&mut self, request: Request) -> Vec<Effect> {
        match request {
            Request::OpenKey(id) => {
                self.go(Screen::Key(KeyScreen::new(id)));
                Vec::new()
            }
            Request::OpenIncident { id, key } => {
                if self.run().and_then(|r| r.id.as_deref()) == Some(id.as_str()) {
                    self.go(Screen::Incident);
                } else if let Some(k) = key {
                    self.go(Screen::Key(KeyScreen::new(k)));
                }
                Vec::new()
            }
            Request::Resume { id, keys, drill } => {
                if self.running() {
                    self.notice = Some(ALREADY_RUNNING.into());
                    return Vec::new();
                }
                self.incident.start(keys, drill, Order::ContainFirst);
                self.go(Screen::Incident);
                vec![Effect::ResumeRun { id }]
            }
            Request::Notice(text) => {
                self.notice = Some(text);
                Vec::new()
            }
        }
    }

    /// Handle something that happened (engine entries, prompts, ticks).
    pub fn on_event(&mut self, event: AppEvent) -> Vec<Effect> {
        match event {
            AppEvent::Tick(now) => {
                self.now = now;
                self.today = now.date_naive();
            }
            AppEvent::Entry(entry) => {
                self.incident.on_entry(&entry);
                return after_entry(&entry);
            }
            AppEvent::Prompt(p) => self.ask(p),
            AppEvent::RunFailed(msg) => {
                self.incident.running = false;
                self.prompt = None;
                if self.quit_after_run {
                    self.quit = true;
                    return vec![Effect::Quit];
                }
                self.incident.failed(&msg);
                self.notice = Some(msg);
            }
            AppEvent::Shared(status) => self.incident.shared(status),
            AppEvent::RunFinished => {
                self.incident.running = false;
                self.prompt = None;
                self.abort_confirm = false;
                if self.quit_after_run {
                    self.quit = true;
                    return vec![Effect::Quit];
                }
                // The run may have edited the inventory (step 5, a rotation).
                return vec![Effect::RefreshIncidents, Effect::ReloadInventory];
            }
        }
        Vec::new()
    }

    fn ask(&mut self, prompt: Prompt) {
        self.prompt = Some(PromptDialog::new(prompt));
        if self.screen != Screen::Incident {
            self.go(Screen::Incident);
        }
    }

    /// The loop's refreshed incident list: the key table follows which keys have an open
    /// incident.
    pub fn set_incidents(&mut self, incidents: Vec<IncidentSummary>) {
        self.fleet.set_incidents(incidents, self.today);
        self.incidents.clamp(self.fleet.incidents.len());
        self.inventory
            .rebuild(&self.fleet.inventory, self.today, &self.fleet.open_keys());
    }

    /// The inventory as the loop reloaded it after an edit: ages, due dates and statuses
    /// are computed again; the filter, sort and selected key stay.
    pub fn set_inventory(&mut self, inventory: Arc<Inventory>) {
        self.fleet.set_inventory(inventory, self.today);
        self.inventory
            .rebuild(&self.fleet.inventory, self.today, &self.fleet.open_keys());
    }
}

/// What an engine entry asks of the loop: an incident that opened is listed (its keys show
/// it at once); a written inventory is read again.
fn after_entry(entry: &crate::record::Entry) -> Vec<Effect> {
    match Event::of(entry) {
        Event::IncidentOpened(_) => vec![Effect::RefreshIncidents],
        Event::Response(r)
            if r.ok
                && r.action.as_deref().and_then(crate::runbook::action::Action::parse)
                    == Some(crate::runbook::action::Action::UpdateInventory) =>
        {
            vec![Effect::ReloadInventory]
        }
        _ => Vec::new(),
    }
}
