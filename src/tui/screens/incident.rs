//! The incident screen: a running (or just finished) incident's steps with status and
//! timers on the left; the current step's checklist, the request plan, the question waiting
//! for the operator and the live log on the right. `a` switches the right side to the audit
//! view. Its model, [`RunView`], is fed the record entries the engine writes.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};
use serde_json::Value;

use super::super::action::Action;
use super::super::dialogs::prompt::PromptDialog;
use super::super::plan_view::{has_diff, plan_lines};
use super::super::strings;
use super::super::theme::Theme;
use super::super::widgets::{duration_text, fit};
use super::audit::AuditView;
use crate::describe::describe_event;
use crate::record::shared::ShareStatus;
use crate::record::{Event, IncidentState, KeyProgress};
use crate::runbook::Order;

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
    /// How far the team's shared copy of the record got, once the run is over (records
    /// shared to a location only).
    pub share: Option<ShareStatus>,
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
            share: None,
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
        let event = Event::of(e);
        self.state.apply_event(e, &event);
        let ts = DateTime::parse_from_rfc3339(&e.ts)
            .ok()
            .map(|t| t.with_timezone(&Utc));
        let key = event.key().unwrap_or("").to_string();
        let step = e.step.clone().unwrap_or_default();
        if !key.is_empty() {
            self.current_key = key.clone();
        }
        let line = format!(
            "{} {:<10} {}",
            e.ts.get(11..19).unwrap_or(""),
            step,
            describe_event(e, &event)
        );
        self.log.push(line);
        if self.log.len() > LOG_LIMIT {
            self.log.remove(0);
        }
        // Revocation and restore times are the engine's, as every report shows them.
        (self.revoked_at, self.restored_at) = match self.state.outage() {
            Some((from, to)) => (Some(from), to),
            None => (None, None),
        };
        self.outcome = self.state.closed.as_ref().and(self.state.outcome.clone());
        match &event {
            Event::IncidentOpened(o) => {
                self.id = o.incident.clone();
                self.opened_at = ts;
            }
            Event::StepStarted(started) => {
                if let Some(v) = self.step_mut(&key, &step) {
                    v.status = StepStatus::Running;
                    v.started = ts;
                }
                self.step_title = started.title.clone().unwrap_or_default();
                self.checklist = started.checklist.clone();
                self.note = started.note.clone();
                self.plan = None;
            }
            Event::StepFinished(finished) => {
                if let Some(v) = self.step_mut(&key, &step) {
                    v.status = if finished.skipped() {
                        StepStatus::Skipped
                    } else {
                        StepStatus::Done
                    };
                    v.duration_ms = finished.duration_ms;
                }
            }
            Event::StepFailed(_) => {
                if let Some(v) = self.step_mut(&key, &step) {
                    v.status = StepStatus::Failed;
                }
            }
            Event::ActionDone(_) => {
                if let Some(v) = self.step_mut(&key, &step)
                    && v.status == StepStatus::Failed
                {
                    v.status = StepStatus::Running;
                }
            }
            Event::Plan(plan) => {
                self.plan = plan.rendered.clone().or_else(|| {
                    (!plan.instructions.is_empty()).then(|| plan.instructions.join("\n"))
                });
            }
            Event::NotSent(n) => {
                self.plan = n
                    .would_send
                    .as_ref()
                    .map(|w| format!("WOULD SEND (drill, not sent)\n{w}"));
            }
            _ => {}
        }
    }
}

/// The incident screen's state: the run on show, and whether the engine is still driving it.
#[derive(Debug, Default)]
pub struct IncidentScreen {
    pub run: Option<RunView>,
    /// An engine is driving the run (the console allows one at a time).
    pub running: bool,
}

impl IncidentScreen {
    /// A run the loop is about to start or resume.
    pub fn start(&mut self, keys: Vec<String>, dry_run: bool, order: Order) {
        self.run = Some(RunView::new(keys, dry_run, order));
        self.running = true;
    }

    /// The incident screen's own keys.
    pub fn update(&mut self, action: &Action) {
        match action {
            Action::ToggleAudit => {
                if let Some(r) = self.run.as_mut() {
                    r.show_audit = !r.show_audit;
                }
            }
            // Enter opens the text field of a prompt that needs typing (the prompt dialog's).
            Action::Open => {}
            _ => {}
        }
    }

    /// A record entry the engine wrote.
    pub fn on_entry(&mut self, entry: &crate::record::Entry) {
        if let Some(run) = self.run.as_mut() {
            if let Event::IncidentOpened(opened) = Event::of(entry) {
                if let Some(order) = opened
                    .order
                    .and_then(|o| serde_json::from_value::<Order>(Value::String(o)).ok())
                    && order != run.order
                {
                    *run = RunView::new(run.keys.clone(), run.dry_run, order);
                }
                run.dry_run = opened.dry_run;
            }
            run.apply(entry);
        }
    }

    /// The engine stopped with an error.
    /// The shared copy's state after the run: shown until the next run.
    pub fn shared(&mut self, status: ShareStatus) {
        if let Some(r) = self.run.as_mut() {
            r.share = Some(status);
        }
    }

    pub fn failed(&mut self, msg: &str) {
        self.running = false;
        if let Some(r) = self.run.as_mut() {
            r.error = Some(msg.to_string());
        }
    }

    pub fn render(
        &self,
        prompt: Option<&PromptDialog>,
        now: DateTime<Utc>,
        theme: Theme,
        f: &mut Frame,
        area: Rect,
    ) {
        let Some(run) = &self.run else {
            f.render_widget(
                Paragraph::new(Span::styled(
                    " No incident is running. Select a key and press i (incident) or d (drill).",
                    theme.muted(),
                )),
                area,
            );
            return;
        };
        let mut top = vec![];
        if run.dry_run {
            top.push(Line::from(Span::styled(
                strings::DRY_RUN_BANNER,
                theme.banner(),
            )));
        }
        let id = run.id.clone().unwrap_or_else(|| "opening…".into());
        let mut status = vec![
            Span::styled(
                format!(" {} {id} ", if run.dry_run { "Drill" } else { "Incident" }),
                theme.title(),
            ),
            Span::raw(format!("· {} · {}", run.current_key, run.order.as_str())),
        ];
        if let Some(o) = &run.outcome {
            status.push(Span::styled(
                format!("  {}", o.to_uppercase()),
                if o == "completed" {
                    theme.ok()
                } else {
                    theme.danger()
                },
            ));
        }
        let not_proven: Vec<&str> = run.state.not_proven().collect();
        if !run.dry_run && !not_proven.is_empty() {
            status.push(Span::styled(
                format!("  REVOCATION NOT PROVEN ({})", not_proven.join(", ")),
                theme.danger(),
            ));
        }
        if let Some(outage) = run.outage(now) {
            let text = format!(
                "  OUTAGE {} {}",
                duration_text(outage.num_milliseconds().max(0)),
                if run.restored_at.is_some() {
                    "(restored)"
                } else {
                    "(agents down until restored)"
                }
            );
            status.push(Span::styled(
                text,
                if run.restored_at.is_some() {
                    theme.ok()
                } else {
                    theme.danger()
                },
            ));
        }
        if let Some(share) = &run.share {
            status.push(share_span(share, theme));
        }
        top.push(Line::from(status));
        let [head, body] =
            Layout::vertical([Constraint::Length(top.len() as u16), Constraint::Fill(1)])
                .areas(area);
        f.render_widget(Paragraph::new(top), head);

        let [left, right] =
            Layout::horizontal([Constraint::Length(28), Constraint::Fill(1)]).areas(body);
        render_steps(run, now, theme, f, left);
        if run.show_audit {
            AuditView {
                key: run.audit_key(),
                state: &run.state,
            }
            .render(theme, f, right);
        } else {
            render_detail(run, prompt, theme, f, right);
        }
    }
}

/// The shared copy in one span: quiet when every entry is there, loud when some are not.
fn share_span(share: &ShareStatus, theme: Theme) -> Span<'static> {
    match (&share.stopped, share.pending()) {
        (Some(_), _) => Span::styled("  SHARED COPY STOPPED (see the log)", theme.danger()),
        (None, 0) => Span::styled(
            format!("  shared: {} entries", share.shared),
            theme.muted(),
        ),
        (None, n) => Span::styled(
            format!(
                "  NOT YET SHARED: {n} entries ({}; `keyfire records flush` sends them)",
                share.last_error.as_deref().unwrap_or("store unreachable")
            ),
            theme.danger(),
        ),
    }
}

fn render_steps(run: &RunView, now: DateTime<Utc>, theme: Theme, f: &mut Frame, area: Rect) {
    let mut lines = Vec::new();
    for key in &run.keys {
        if run.keys.len() > 1 {
            lines.push(Line::from(Span::styled(fit(key, 26), theme.header())));
        }
        for s in run.steps.get(key).into_iter().flatten() {
            let (symbol, style) = match s.status {
                StepStatus::Pending => ("○", theme.muted()),
                StepStatus::Running => ("▶", theme.key_hint()),
                StepStatus::Done => ("✔", theme.ok()),
                StepStatus::Skipped => ("–", theme.muted()),
                StepStatus::Failed => ("✘", theme.danger()),
            };
            let time = match (s.status, s.duration_ms, s.started) {
                (_, Some(ms), _) => duration_text(ms),
                (StepStatus::Running | StepStatus::Failed, None, Some(t)) => {
                    duration_text((now - t).num_milliseconds().max(0))
                }
                _ => String::new(),
            };
            lines.push(Line::from(vec![
                Span::styled(format!(" {symbol} "), style),
                Span::styled(format!("{:<11}", s.id), style),
                Span::styled(format!("{time:>8}"), theme.muted()),
            ]));
        }
        if let Some(k) = run.state.per_key.get(key) {
            if k.proof.not_proven() && !run.dry_run {
                lines.push(Line::from(Span::styled(
                    " ! revocation NOT proven",
                    theme.danger(),
                )));
            }
            if !k.evidence_unavailable.is_empty() {
                lines.push(Line::from(Span::styled(
                    format!(" ! {} evidence unavailable", k.evidence_unavailable.len()),
                    theme.danger(),
                )));
            }
        }
    }
    if let Some(e) = &run.error {
        lines.push(Line::from(""));
        lines.push(Line::from(Span::styled(e.clone(), theme.danger())));
    }
    lines.push(Line::from(""));
    lines.push(Line::from(Span::styled(" a audit · ? keys", theme.muted())));
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::bordered().title(Span::styled(" Steps ", theme.title()))),
        area,
    );
}

fn render_detail(
    run: &RunView,
    prompt: Option<&PromptDialog>,
    theme: Theme,
    f: &mut Frame,
    area: Rect,
) {
    let prompt = prompt.map(|p| p.lines(theme)).unwrap_or_default();
    let mut guide = vec![Line::from(Span::styled(
        run.step_title.clone(),
        theme.header(),
    ))];
    for c in &run.checklist {
        guide.push(Line::from(format!("☐ {c}")));
    }
    if let Some(n) = &run.note {
        guide.push(Line::from(Span::styled(
            format!("note: {n}"),
            theme.muted(),
        )));
    }
    if prompt.is_empty()
        && let Some(plan) = &run.plan
    {
        guide.push(Line::from(Span::styled("request plan", theme.header())));
        // An inventory edit shows its whole diff; other plans their first lines.
        let room = if has_diff(plan) { 16 } else { 6 };
        guide.extend(plan_lines(plan, theme).into_iter().take(room));
    }
    // The question gets the room it needs first; the checklist the rest; the log what is left.
    let width = area.width.saturating_sub(2).max(1) as usize;
    let prompt_h = if prompt.is_empty() {
        0
    } else {
        (wrapped_height(&prompt, width) + 2).min(area.height.saturating_sub(4))
    };
    let guide_h = (wrapped_height(&guide, width) + 2)
        .min(area.height.saturating_sub(prompt_h + 3))
        .max(3);
    let [g, p, log] = Layout::vertical([
        Constraint::Length(guide_h),
        Constraint::Length(prompt_h),
        Constraint::Fill(1),
    ])
    .areas(area);
    f.render_widget(
        Paragraph::new(guide)
            .wrap(Wrap { trim: false })
            .block(Block::bordered().title(Span::styled(" Step ", theme.title()))),
        g,
    );
    if !prompt.is_empty() {
        f.render_widget(
            Paragraph::new(prompt).wrap(Wrap { trim: false }).block(
                Block::bordered()
                    .border_style(theme.danger())
                    .title(Span::styled(" Waiting for you ", theme.danger())),
            ),
            p,
        );
    }
    let inner_h = log.height.saturating_sub(2) as usize;
    let width = log.width.saturating_sub(2) as usize;
    let start = run.log.len().saturating_sub(inner_h);
    let lines: Vec<Line> = run.log[start..]
        .iter()
        .map(|l| Line::from(fit(l, width)))
        .collect();
    f.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(Span::styled(" Log ", theme.title()))),
        log,
    );
}

/// Rows a paragraph takes when wrapped to `width` (character count; close enough for layout).
fn wrapped_height(lines: &[Line], width: usize) -> u16 {
    let rows: usize = lines.iter().map(|l| l.width().max(1).div_ceil(width)).sum();
    u16::try_from(rows).unwrap_or(u16::MAX)
}
