//! The console's model. `App::update` is pure: it changes state and returns effects; the loop
//! performs them. Rendering only reads this state.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;
use zeroize::Zeroizing;

use super::action::{Action, AppEvent, Effect, Prompt, PromptKind, Reply};
use super::keymap::Mode;
use crate::describe::describe;
use crate::incidents::IncidentSummary;
use crate::inventory::Inventory;
use crate::inventory::view::{KeyRow, KeyStatus, key_row};
use crate::record::{IncidentState, KeyProgress};
use crate::runbook::{Decision, FailureChoice, Order};
use crate::secret::Secret;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Screen {
    Inventory,
    Key(String),
    Incident,
    Incidents,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Due,
    Id,
    Provider,
    Age,
}

impl SortKey {
    pub fn label(self) -> &'static str {
        match self {
            Self::Due => "due",
            Self::Id => "id",
            Self::Provider => "provider",
            Self::Age => "age",
        }
    }
    fn next(self) -> Self {
        match self {
            Self::Due => Self::Id,
            Self::Id => Self::Provider,
            Self::Provider => Self::Age,
            Self::Age => Self::Due,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepStatus {
    Pending,
    Running,
    Done,
    Skipped,
    Failed,
}

#[derive(Debug, Clone)]
pub struct StepView {
    pub id: String,
    pub status: StepStatus,
    pub started: Option<DateTime<Utc>>,
    pub duration_ms: Option<i64>,
}

/// A running (or just finished) incident as the console shows it.
#[derive(Debug, Clone)]
pub struct RunView {
    pub id: Option<String>,
    pub dry_run: bool,
    pub order: Order,
    pub keys: Vec<String>,
    pub current_key: String,
    pub steps: BTreeMap<String, Vec<StepView>>,
    pub step_title: String,
    pub checklist: Vec<String>,
    pub note: Option<String>,
    pub plan: Option<String>,
    pub log: Vec<String>,
    pub opened_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub restored_at: Option<DateTime<Utc>>,
    /// The record's projection, fed the same entries: what the audit view, the proof and
    /// the unavailable evidence are read from, so the console and the report agree.
    pub state: IncidentState,
    pub outcome: Option<String>,
    pub error: Option<String>,
    pub show_audit: bool,
}

const LOG_LIMIT: usize = 400;

fn step_ids(order: Order) -> Vec<&'static str> {
    match order {
        Order::ContainFirst => vec![
            "open",
            "revoke",
            "redeploy",
            "audit",
            "report",
            "reschedule",
        ],
        Order::ZeroDowntime => vec![
            "open",
            "redeploy",
            "revoke",
            "audit",
            "report",
            "reschedule",
        ],
    }
}

impl RunView {
    pub fn new(keys: Vec<String>, dry_run: bool, order: Order) -> Self {
        let steps = keys
            .iter()
            .map(|k| {
                let v = step_ids(order)
                    .into_iter()
                    .map(|id| StepView {
                        id: id.into(),
                        status: StepStatus::Pending,
                        started: None,
                        duration_ms: None,
                    })
                    .collect();
                (k.clone(), v)
            })
            .collect();
        Self {
            id: None,
            dry_run,
            order,
            current_key: keys.first().cloned().unwrap_or_default(),
            keys,
            steps,
            step_title: String::new(),
            checklist: Vec::new(),
            note: None,
            plan: None,
            log: Vec::new(),
            opened_at: None,
            revoked_at: None,
            restored_at: None,
            state: IncidentState::default(),
            outcome: None,
            error: None,
            show_audit: false,
        }
    }

    /// Agents are down between revocation and restore in contain-first incidents.
    pub fn outage(&self, now: DateTime<Utc>) -> Option<chrono::Duration> {
        if self.order != Order::ContainFirst || self.dry_run {
            return None;
        }
        let start = self.revoked_at?;
        Some(self.restored_at.unwrap_or(now) - start)
    }

    /// The key whose audit the audit view shows: the current one once it has usage or
    /// verdicts, else the first key that has.
    pub fn audit_key(&self) -> Option<&KeyProgress> {
        let has = |k: &&KeyProgress| !k.usage.is_empty() || !k.rules.is_empty();
        self.state
            .per_key
            .get(&self.current_key)
            .filter(has)
            .or_else(|| self.state.per_key.values().find(has))
    }

    fn step_mut(&mut self, key: &str, step: &str) -> Option<&mut StepView> {
        self.steps.get_mut(key)?.iter_mut().find(|s| s.id == step)
    }

    fn apply(&mut self, e: &crate::record::Entry) {
        self.state.apply(e);
        let ts = DateTime::parse_from_rfc3339(&e.ts)
            .ok()
            .map(|t| t.with_timezone(&Utc));
        let key = e
            .data
            .get("key")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let step = e.step.clone().unwrap_or_default();
        if !key.is_empty() {
            self.current_key = key.clone();
        }
        let line = format!(
            "{} {:<10} {}",
            e.ts.get(11..19).unwrap_or(""),
            step,
            describe(e)
        );
        self.log.push(line);
        if self.log.len() > LOG_LIMIT {
            self.log.remove(0);
        }
        let s = |k: &str| e.data.get(k).and_then(Value::as_str).map(str::to_string);
        match e.kind.as_str() {
            "incident_opened" => {
                self.id = s("incident");
                self.opened_at = ts;
            }
            "step_started" => {
                if let Some(v) = self.step_mut(&key, &step) {
                    v.status = StepStatus::Running;
                    v.started = ts;
                }
                self.step_title = s("title").unwrap_or_default();
                self.checklist = e.data["checklist"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                self.note = s("note");
                self.plan = None;
            }
            "step_finished" => {
                let skipped = e.data["status"] == "skipped";
                if let Some(v) = self.step_mut(&key, &step) {
                    v.status = if skipped {
                        StepStatus::Skipped
                    } else {
                        StepStatus::Done
                    };
                    v.duration_ms = e.data["duration_ms"].as_i64();
                }
            }
            "step_failed" => {
                if let Some(v) = self.step_mut(&key, &step) {
                    v.status = StepStatus::Failed;
                }
            }
            "action_done" => {
                if let Some(v) = self.step_mut(&key, &step)
                    && v.status == StepStatus::Failed
                {
                    v.status = StepStatus::Running;
                }
                let done = e.data["status"] == "done" && !self.dry_run;
                match e.data["action"].as_str() {
                    Some("revoke") if done => self.revoked_at = self.revoked_at.or(ts),
                    Some("verify_new") if done => self.restored_at = self.restored_at.or(ts),
                    _ => {}
                }
            }
            "plan" => {
                self.plan = e
                    .data
                    .get("rendered")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .or_else(|| {
                        e.data["instructions"].as_array().map(|a| {
                            a.iter()
                                .filter_map(Value::as_str)
                                .collect::<Vec<_>>()
                                .join("\n")
                        })
                    });
            }
            "not_sent" => {
                self.plan = s("would_send").map(|w| format!("WOULD SEND (drill, not sent)\n{w}"));
            }
            "evidence" => match e.data["action"].as_str() {
                Some("prove_revoked") if e.data["old_key_rejected"] == true => self.revoked_at = ts,
                Some("revoke") => self.revoked_at = self.revoked_at.or(ts),
                Some("verify_new") => self.restored_at = ts,
                _ => {}
            },
            "response" if e.data["action"] == "revoke" && e.data["ok"] == true => {
                self.revoked_at = self.revoked_at.or(ts)
            }
            "operator_input"
                if e.data["action"] == "revoke"
                    && e.data["manual"] == true
                    && e.data["decision"] == "confirmed" =>
            {
                self.revoked_at = self.revoked_at.or(ts);
            }
            "incident_closed" => self.outcome = s("outcome"),
            _ => {}
        }
    }
}

/// A start dialog before an incident or drill opens.
#[derive(Debug, Clone)]
pub struct StartDialog {
    pub key: String,
    pub dry_run: bool,
    pub order: Order,
}

/// Text being typed for the active prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputPurpose {
    Filter,
    Confirm,
    Manual,
    Paste,
    SkipReason,
}

pub struct App {
    pub inventory: Arc<Inventory>,
    pub rows: Vec<KeyRow>,
    haystacks: Vec<String>,
    /// Row indices in sort order.
    order: Vec<usize>,
    /// Row indices shown (sort order, filtered).
    pub visible: Vec<usize>,
    pub filter: String,
    pub sort: SortKey,
    pub selected: usize,
    pub screen: Screen,
    back: Vec<Screen>,
    pub help: bool,
    pub incidents: Vec<IncidentSummary>,
    pub incident_selected: usize,
    pub run: Option<RunView>,
    pub running: bool,
    pub prompt: Option<Prompt>,
    pub input: Option<InputPurpose>,
    pub text: String,
    paste: Zeroizing<String>,
    pub start: Option<StartDialog>,
    pub abort_confirm: bool,
    /// `q` during an incident: once the abort it asked for has stopped the run, quit.
    pub quit_after_run: bool,
    pub now: DateTime<Utc>,
    pub today: NaiveDate,
    pub notice: Option<String>,
    pub training: bool,
    pub last_drill: HashMap<String, NaiveDate>,
    pub open_incidents: usize,
    /// Providers with keys but no drill within `policy.drill_every_days`.
    pub drill_due_providers: Vec<String>,
    pub quit: bool,
    pub page: usize,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("screen", &self.screen)
            .field("rows", &self.rows.len())
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
        let open: HashSet<String> = incidents
            .iter()
            .filter(|i| i.kind == "incident" && i.is_open())
            .flat_map(|i| i.keys.clone())
            .collect();
        let rows: Vec<KeyRow> = inventory
            .keys
            .iter()
            .map(|k| key_row(&inventory, k, today, &open))
            .collect();
        let haystacks = inventory
            .keys
            .iter()
            .map(|k| {
                let owners: Vec<&str> = k
                    .agents
                    .iter()
                    .filter_map(|a| inventory.agent(a))
                    .filter_map(|a| a.owner.as_deref())
                    .collect();
                format!(
                    "{} {} {} {} {}",
                    k.id,
                    k.agents.join(" "),
                    k.provider,
                    owners.join(" "),
                    k.scopes.join(" ")
                )
                .to_lowercase()
            })
            .collect();
        let mut last_drill: HashMap<String, NaiveDate> = HashMap::new();
        for i in incidents.iter().filter(|i| i.drill) {
            if let Ok(t) = DateTime::parse_from_rfc3339(&i.opened) {
                for k in &i.keys {
                    let d = t.date_naive();
                    let e = last_drill.entry(k.clone()).or_insert(d);
                    if d > *e {
                        *e = d;
                    }
                }
            }
        }
        let open_incidents = incidents
            .iter()
            .filter(|i| i.kind == "incident" && i.is_open())
            .count();
        let mut app = Self {
            inventory,
            rows,
            haystacks,
            order: Vec::new(),
            visible: Vec::new(),
            filter: String::new(),
            sort: SortKey::Due,
            selected: 0,
            screen: Screen::Inventory,
            back: Vec::new(),
            help: false,
            incidents,
            incident_selected: 0,
            run: None,
            running: false,
            prompt: None,
            input: None,
            text: String::new(),
            paste: Zeroizing::new(String::new()),
            start: None,
            abort_confirm: false,
            quit_after_run: false,
            now,
            today,
            notice: None,
            training: false,
            last_drill,
            open_incidents,
            drill_due_providers: Vec::new(),
            quit: false,
            page: 20,
        };
        app.compute_drill_due();
        app.resort();
        app
    }

    pub fn mode(&self) -> Mode {
        if self.input.is_some() {
            return Mode::Text;
        }
        // Questions answered by typing take the keyboard at once.
        if matches!(
            &self.prompt,
            Some(Prompt {
                kind: PromptKind::Approve {
                    confirm_text: Some(_),
                    ..
                } | PromptKind::Manual { .. }
                    | PromptKind::Paste { .. },
                ..
            })
        ) && !self.help
            && !self.abort_confirm
        {
            return Mode::Text;
        }
        if self.start.is_some() || self.abort_confirm {
            return Mode::Dialog;
        }
        match &self.prompt {
            Some(Prompt {
                kind:
                    PromptKind::Approve {
                        confirm_text: None, ..
                    },
                ..
            }) => return Mode::Dialog,
            Some(Prompt {
                kind: PromptKind::Failure { .. },
                ..
            }) => return Mode::Failure,
            _ => {}
        }
        match self.screen {
            Screen::Inventory => Mode::Inventory,
            Screen::Key(_) => Mode::Key,
            Screen::Incident => Mode::Incident,
            Screen::Incidents => Mode::Incidents,
        }
    }

    /// The masked input's length (the value itself is never rendered).
    pub fn paste_len(&self) -> usize {
        self.paste.chars().count()
    }

    pub fn overdue_count(&self) -> usize {
        self.rows
            .iter()
            .filter(|r| r.status == KeyStatus::Overdue)
            .count()
    }

    pub fn due_soon_count(&self) -> usize {
        self.rows
            .iter()
            .filter(|r| r.status == KeyStatus::DueSoon)
            .count()
    }

    fn compute_drill_due(&mut self) {
        let mut last: HashMap<&str, NaiveDate> = HashMap::new();
        let mut used: Vec<&str> = Vec::new();
        for k in &self.inventory.keys {
            if !used.contains(&k.provider.as_str()) {
                used.push(&k.provider);
            }
            if let Some(d) = self.last_drill.get(&k.id) {
                let e = last.entry(&k.provider).or_insert(*d);
                if d > e {
                    *e = *d;
                }
            }
        }
        let every = i64::from(self.inventory.policy.drill_every_days);
        self.drill_due_providers = used
            .into_iter()
            .filter(|p| {
                last.get(p)
                    .is_none_or(|d| (self.today - *d).num_days() > every)
            })
            .map(str::to_string)
            .collect();
    }

    pub fn days_since_last_drill(&self) -> Option<i64> {
        self.last_drill
            .values()
            .max()
            .map(|d| (self.today - *d).num_days())
    }

    pub fn selected_row(&self) -> Option<&KeyRow> {
        self.visible.get(self.selected).map(|&i| &self.rows[i])
    }

    fn resort(&mut self) {
        let rows = &self.rows;
        let mut order: Vec<usize> = (0..rows.len()).collect();
        match self.sort {
            SortKey::Due => order.sort_by_key(|&i| (rows[i].due_in_days.unwrap_or(i64::MAX), i)),
            SortKey::Id => order.sort_by(|&a, &b| rows[a].id.cmp(&rows[b].id)),
            SortKey::Provider => order.sort_by(|&a, &b| {
                rows[a]
                    .provider
                    .cmp(&rows[b].provider)
                    .then(rows[a].id.cmp(&rows[b].id))
            }),
            SortKey::Age => {
                order.sort_by_key(|&i| (std::cmp::Reverse(rows[i].age_days.unwrap_or(-1)), i))
            }
        }
        self.order = order;
        self.refilter();
    }

    fn refilter(&mut self) {
        let needle = self.filter.to_lowercase();
        let keep_id = self.selected_row().map(|r| r.id.clone());
        self.visible = if needle.is_empty() {
            self.order.clone()
        } else {
            self.order
                .iter()
                .copied()
                .filter(|&i| self.haystacks[i].contains(&needle))
                .collect()
        };
        self.selected = keep_id
            .and_then(|id| self.visible.iter().position(|&i| self.rows[i].id == id))
            .unwrap_or(0);
    }

    /// Start in an incident (`keyfire incident start|resume` on a terminal).
    pub fn open_incident(&mut self, opening: super::Opening) -> Vec<Effect> {
        self.running = true;
        self.go(Screen::Incident);
        match opening {
            super::Opening::Start(params) => {
                self.run = Some(RunView::new(
                    params.keys.clone(),
                    params.dry_run,
                    params.order,
                ));
                vec![Effect::Open(params)]
            }
            super::Opening::Resume { id, keys, dry_run } => {
                self.run = Some(RunView::new(keys, dry_run, Order::ContainFirst));
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

    fn move_selection(&mut self, delta: i64, len: usize, current: usize) -> usize {
        if len == 0 {
            return 0;
        }
        (current as i64 + delta).clamp(0, len as i64 - 1) as usize
    }

    fn current_key(&self) -> Option<String> {
        match &self.screen {
            Screen::Key(k) => Some(k.clone()),
            Screen::Inventory => self.selected_row().map(|r| r.id.clone()),
            _ => None,
        }
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
        if action == Action::Help && self.input.is_none() {
            self.help = true;
            return Vec::new();
        }
        if let Some(purpose) = self.input {
            return self.text_input(purpose, action);
        }
        if self.abort_confirm {
            return match action {
                Action::Yes => {
                    self.abort_confirm = false;
                    self.notice =
                        Some("abort requested: the incident stops after the current call".into());
                    let mut effects = vec![Effect::RequestAbort];
                    // A question on screen is answered "no" so the engine can stop now.
                    if let Some(p) = self.prompt.take() {
                        effects.push(Effect::Reply {
                            prompt: p.id,
                            reply: decline_reply(&p.kind),
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
            };
        }
        if let Some(dialog) = self.start.clone() {
            return match action {
                Action::Yes => {
                    self.start = None;
                    self.run = Some(RunView::new(
                        vec![dialog.key.clone()],
                        dialog.dry_run,
                        dialog.order,
                    ));
                    self.running = true;
                    self.go(Screen::Incident);
                    vec![Effect::StartRun {
                        keys: vec![dialog.key],
                        dry_run: dialog.dry_run,
                        order: dialog.order,
                    }]
                }
                Action::ToggleOrder => {
                    if let Some(d) = self.start.as_mut() {
                        d.order = match d.order {
                            Order::ContainFirst => Order::ZeroDowntime,
                            Order::ZeroDowntime => Order::ContainFirst,
                        };
                    }
                    Vec::new()
                }
                Action::No | Action::Back => {
                    self.start = None;
                    Vec::new()
                }
                _ => Vec::new(),
            };
        }
        if let Some(prompt) = self.prompt.clone() {
            if let Some(effects) = self.answer_prompt(&prompt, &action) {
                return effects;
            }
            if action == Action::Back && self.mode() == Mode::Text {
                self.prompt = None;
                self.notice = Some("declined: the incident stops here and stays resumable".into());
                return vec![Effect::Reply {
                    prompt: prompt.id,
                    reply: decline_reply(&prompt.kind),
                }];
            }
        }
        self.navigate(action)
    }

    fn interrupt(&mut self) -> Vec<Effect> {
        if self.running {
            self.abort_confirm = true;
            self.input = None;
            self.text.clear();
            self.paste = Zeroizing::new(String::new());
            if self.screen != Screen::Incident {
                self.go(Screen::Incident);
            }
            Vec::new()
        } else {
            self.quit = true;
            vec![Effect::Quit]
        }
    }

    fn answer_prompt(&mut self, prompt: &Prompt, action: &Action) -> Option<Vec<Effect>> {
        let reply = |p: &Prompt, r: Reply| {
            vec![Effect::Reply {
                prompt: p.id,
                reply: r,
            }]
        };
        match (&prompt.kind, action) {
            (
                PromptKind::Approve {
                    confirm_text: None, ..
                },
                Action::Yes,
            ) => {
                self.prompt = None;
                Some(reply(
                    prompt,
                    Reply::Decision(Decision::Approve {
                        via: "console".into(),
                    }),
                ))
            }
            (PromptKind::Approve { .. }, Action::No) => {
                self.prompt = None;
                Some(reply(
                    prompt,
                    Reply::Decision(Decision::Decline {
                        via: "console".into(),
                    }),
                ))
            }
            (
                PromptKind::Approve {
                    confirm_text: Some(_),
                    ..
                },
                Action::Open | Action::Submit | Action::Char(_),
            ) => {
                self.input = Some(InputPurpose::Confirm);
                self.text.clear();
                if let Action::Char(c) = action {
                    self.text.push(*c);
                }
                Some(Vec::new())
            }
            (PromptKind::Manual { .. }, Action::Open | Action::Submit | Action::Char(_)) => {
                self.input = Some(InputPurpose::Manual);
                self.text.clear();
                if let Action::Char(c) = action {
                    self.text.push(*c);
                }
                Some(Vec::new())
            }
            (PromptKind::Paste { .. }, Action::Open | Action::Submit | Action::Char(_)) => {
                self.input = Some(InputPurpose::Paste);
                self.paste = Zeroizing::new(String::new());
                if let Action::Char(c) = action {
                    self.paste.push(*c);
                }
                Some(Vec::new())
            }
            (PromptKind::Failure { .. }, Action::Retry) => {
                self.prompt = None;
                Some(reply(prompt, Reply::Failure(FailureChoice::Retry)))
            }
            (PromptKind::Failure { .. }, Action::Skip) => {
                self.input = Some(InputPurpose::SkipReason);
                self.text.clear();
                Some(Vec::new())
            }
            (PromptKind::Failure { .. }, Action::LeaveFailed) => {
                self.prompt = None;
                Some(reply(prompt, Reply::Failure(FailureChoice::LeaveFailed)))
            }
            (PromptKind::Failure { .. }, Action::Abort) => {
                self.prompt = None;
                Some(reply(prompt, Reply::Failure(FailureChoice::Abort)))
            }
            _ => None,
        }
    }

    fn text_input(&mut self, purpose: InputPurpose, action: Action) -> Vec<Effect> {
        let paste = purpose == InputPurpose::Paste;
        match action {
            Action::Char(c) => {
                if paste {
                    self.paste.push(c);
                } else {
                    self.text.push(c);
                }
                if purpose == InputPurpose::Filter {
                    self.filter = self.text.clone();
                    self.refilter();
                }
                Vec::new()
            }
            Action::Backspace => {
                if paste {
                    self.paste.pop();
                } else {
                    self.text.pop();
                }
                if purpose == InputPurpose::Filter {
                    self.filter = self.text.clone();
                    self.refilter();
                }
                Vec::new()
            }
            Action::Back => {
                self.input = None;
                self.paste = Zeroizing::new(String::new());
                if purpose == InputPurpose::Filter {
                    self.text.clear();
                    self.filter.clear();
                    self.refilter();
                    return Vec::new();
                }
                self.text.clear();
                // Esc on a typed confirmation, a manual step or a paste declines it.
                match (purpose, self.prompt.take()) {
                    (
                        InputPurpose::Confirm | InputPurpose::Manual | InputPurpose::Paste,
                        Some(p),
                    ) => {
                        self.notice =
                            Some("declined: the incident stops here and stays resumable".into());
                        vec![Effect::Reply {
                            prompt: p.id,
                            reply: decline_reply(&p.kind),
                        }]
                    }
                    (_, p) => {
                        self.prompt = p;
                        Vec::new()
                    }
                }
            }
            Action::Up | Action::Down if purpose == InputPurpose::Filter => {
                let len = self.visible.len();
                let delta = if action == Action::Up { -1 } else { 1 };
                self.selected = self.move_selection(delta, len, self.selected);
                Vec::new()
            }
            Action::Submit => self.submit(purpose),
            _ => Vec::new(),
        }
    }

    fn submit(&mut self, purpose: InputPurpose) -> Vec<Effect> {
        match purpose {
            InputPurpose::Filter => {
                self.input = None;
                Vec::new()
            }
            InputPurpose::Confirm => {
                let Some(p) = self.prompt.clone() else {
                    self.input = None;
                    return Vec::new();
                };
                let PromptKind::Approve {
                    confirm_text: Some(expected),
                    ..
                } = &p.kind
                else {
                    return Vec::new();
                };
                if self.text.trim() == expected {
                    self.input = None;
                    self.text.clear();
                    self.prompt = None;
                    vec![Effect::Reply {
                        prompt: p.id,
                        reply: Reply::Decision(Decision::Approve {
                            via: "console (typed key id)".into(),
                        }),
                    }]
                } else {
                    self.notice = Some(format!(
                        "typed text does not match `{expected}`: nothing was sent"
                    ));
                    self.text.clear();
                    Vec::new()
                }
            }
            InputPurpose::Manual => {
                let Some(p) = self.prompt.clone() else {
                    return Vec::new();
                };
                if self.text.trim() == "done" {
                    self.input = None;
                    self.text.clear();
                    self.prompt = None;
                    vec![Effect::Reply {
                        prompt: p.id,
                        reply: Reply::Decision(Decision::Approve {
                            via: "console".into(),
                        }),
                    }]
                } else {
                    self.notice =
                        Some("type `done` once the step is done in the provider's console".into());
                    self.text.clear();
                    Vec::new()
                }
            }
            InputPurpose::Paste => {
                let Some(p) = self.prompt.take() else {
                    return Vec::new();
                };
                self.input = None;
                let value = std::mem::replace(&mut self.paste, Zeroizing::new(String::new()));
                let secret =
                    (!value.trim().is_empty()).then(|| Secret::new(value.trim().to_string()));
                vec![Effect::Reply {
                    prompt: p.id,
                    reply: Reply::Paste(secret),
                }]
            }
            InputPurpose::SkipReason => {
                let Some(p) = self.prompt.clone() else {
                    return Vec::new();
                };
                if self.text.trim().is_empty() {
                    self.notice = Some("a skip needs a reason; it goes into the record".into());
                    return Vec::new();
                }
                self.input = None;
                self.prompt = None;
                let reason = std::mem::take(&mut self.text);
                vec![Effect::Reply {
                    prompt: p.id,
                    reply: Reply::Failure(FailureChoice::Skip { reason }),
                }]
            }
        }
    }

    fn navigate(&mut self, action: Action) -> Vec<Effect> {
        self.notice = None;
        match (&self.screen, action) {
            (_, Action::Quit) => {
                if self.running {
                    // Asks first: yes stops the incident at the next action boundary (it
                    // stays resumable), and the console closes once it has stopped.
                    self.quit_after_run = true;
                    return self.interrupt();
                }
                self.quit = true;
                vec![Effect::Quit]
            }
            (Screen::Inventory, Action::Back) => {
                if !self.filter.is_empty() {
                    self.filter.clear();
                    self.refilter();
                }
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
            (Screen::Inventory, Action::FilterStart) => {
                self.input = Some(InputPurpose::Filter);
                self.text = self.filter.clone();
                Vec::new()
            }
            (Screen::Inventory, Action::CycleSort) => {
                self.sort = self.sort.next();
                self.resort();
                Vec::new()
            }
            (
                Screen::Inventory,
                a @ (Action::Up
                | Action::Down
                | Action::PageUp
                | Action::PageDown
                | Action::Top
                | Action::Bottom),
            ) => {
                let len = self.visible.len();
                let page = self.page.max(1) as i64;
                self.selected = match a {
                    Action::Up => self.move_selection(-1, len, self.selected),
                    Action::Down => self.move_selection(1, len, self.selected),
                    Action::PageUp => self.move_selection(-page, len, self.selected),
                    Action::PageDown => self.move_selection(page, len, self.selected),
                    Action::Top => 0,
                    _ => len.saturating_sub(1),
                };
                Vec::new()
            }
            (Screen::Inventory, Action::Open) => {
                if let Some(id) = self.selected_row().map(|r| r.id.clone()) {
                    self.go(Screen::Key(id));
                }
                Vec::new()
            }
            (
                Screen::Inventory | Screen::Key(_),
                a @ (Action::StartIncident | Action::StartDrill),
            ) => {
                if self.running {
                    self.notice = Some("an incident is already running".into());
                    return Vec::new();
                }
                if let Some(key) = self.current_key() {
                    self.start = Some(StartDialog {
                        key,
                        dry_run: a == Action::StartDrill,
                        order: Order::ContainFirst,
                    });
                }
                Vec::new()
            }
            (Screen::Incident, Action::ToggleAudit) => {
                if let Some(r) = self.run.as_mut() {
                    r.show_audit = !r.show_audit;
                }
                Vec::new()
            }
            (Screen::Incident, Action::Open) => {
                // Enter opens the text field of a prompt that needs typing.
                Vec::new()
            }
            (
                Screen::Incidents,
                a @ (Action::Up
                | Action::Down
                | Action::Top
                | Action::Bottom
                | Action::PageUp
                | Action::PageDown),
            ) => {
                let len = self.incidents.len();
                self.incident_selected = match a {
                    Action::Up => self.move_selection(-1, len, self.incident_selected),
                    Action::Down => self.move_selection(1, len, self.incident_selected),
                    Action::PageUp => self.move_selection(-10, len, self.incident_selected),
                    Action::PageDown => self.move_selection(10, len, self.incident_selected),
                    Action::Top => 0,
                    _ => len.saturating_sub(1),
                };
                Vec::new()
            }
            (Screen::Incidents, Action::Resume) => {
                let Some(i) = self.incidents.get(self.incident_selected) else {
                    return Vec::new();
                };
                if !i.is_open() {
                    self.notice = Some(format!("{} is {}: nothing to resume", i.id, i.status));
                    return Vec::new();
                }
                if self.running {
                    self.notice = Some("an incident is already running".into());
                    return Vec::new();
                }
                let id = i.id.clone();
                self.run = Some(RunView::new(i.keys.clone(), i.drill, Order::ContainFirst));
                self.running = true;
                self.go(Screen::Incident);
                vec![Effect::ResumeRun { id }]
            }
            (Screen::Incidents, Action::Open) => {
                let selected = self
                    .incidents
                    .get(self.incident_selected)
                    .map(|i| i.id.clone());
                if selected.is_some() && self.run.as_ref().and_then(|r| r.id.clone()) == selected {
                    self.go(Screen::Incident);
                    return Vec::new();
                }
                if let Some(i) = self.incidents.get(self.incident_selected)
                    && let Some(k) = i.keys.first()
                {
                    self.go(Screen::Key(k.clone()));
                }
                Vec::new()
            }
            _ => Vec::new(),
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
                if let Some(run) = self.run.as_mut() {
                    if entry.kind == "incident_opened" {
                        if let Ok(order) =
                            serde_json::from_value::<Order>(entry.data["order"].clone())
                            && order != run.order
                        {
                            *run = RunView::new(run.keys.clone(), run.dry_run, order);
                        }
                        run.dry_run = entry.data["dry_run"] == true;
                    }
                    run.apply(&entry);
                }
            }
            AppEvent::Prompt(p) => {
                self.prompt = Some(p);
                if self.screen != Screen::Incident {
                    self.go(Screen::Incident);
                }
            }
            AppEvent::RunFailed(msg) => {
                self.running = false;
                self.prompt = None;
                if self.quit_after_run {
                    self.quit = true;
                    return vec![Effect::Quit];
                }
                if let Some(r) = self.run.as_mut() {
                    r.error = Some(msg.clone());
                }
                self.notice = Some(msg);
            }
            AppEvent::RunFinished => {
                self.running = false;
                self.prompt = None;
                self.abort_confirm = false;
                if self.quit_after_run {
                    self.quit = true;
                    return vec![Effect::Quit];
                }
                return vec![Effect::RefreshIncidents];
            }
            AppEvent::Resize => {}
        }
        Vec::new()
    }

    /// The loop's refreshed incident list.
    pub fn set_incidents(&mut self, incidents: Vec<IncidentSummary>) {
        for i in incidents.iter().filter(|i| i.drill) {
            if let Ok(t) = DateTime::parse_from_rfc3339(&i.opened) {
                for k in &i.keys {
                    let d = t.date_naive();
                    let e = self.last_drill.entry(k.clone()).or_insert(d);
                    if d > *e {
                        *e = d;
                    }
                }
            }
        }
        self.compute_drill_due();
        self.open_incidents = incidents
            .iter()
            .filter(|i| i.kind == "incident" && i.is_open())
            .count();
        self.incidents = incidents;
        self.incident_selected = self
            .incident_selected
            .min(self.incidents.len().saturating_sub(1));
    }
}

fn decline_reply(kind: &PromptKind) -> Reply {
    match kind {
        PromptKind::Paste { .. } => Reply::Paste(None),
        PromptKind::Failure { .. } => Reply::Failure(FailureChoice::Abort),
        _ => Reply::Decision(Decision::Decline {
            via: "console".into(),
        }),
    }
}
