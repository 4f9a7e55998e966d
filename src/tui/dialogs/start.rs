//! The dialog before an incident or drill opens on one key: live or drill, the order
//! (contain-first or zero-downtime), and what `incident start` takes as flags: the exposure
//! start (`--exposed-since`), gateway log files (`--logs`) and a reason (`--reason`). It
//! builds the same [`IncidentParams`] the command line does, checked the same way. Opened
//! from the Leaks view it starts the campaign `keyfire scan --start-incident` would, with
//! its reason and exposure start filled in and still editable.

use std::path::PathBuf;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

use super::super::action::Action;
use super::super::strings;
use super::super::theme::Theme;
use super::super::widgets::popup;
use crate::runbook::{IncidentParams, Order};

/// The reason recorded when the operator gives none.
pub const DEFAULT_REASON: &str = "opened from the console";

/// What has the keyboard in the dialog: the choices row, or one of the text fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartField {
    /// `y` starts, `z` changes the order, `n`/`Esc` cancels.
    Choices,
    ExposedSince,
    Logs,
    Reason,
}

impl StartField {
    const ALL: [Self; 4] = [Self::Choices, Self::ExposedSince, Self::Logs, Self::Reason];

    fn step(self, by: isize) -> Self {
        let at = Self::ALL.iter().position(|f| *f == self).unwrap_or(0) as isize;
        let n = Self::ALL.len() as isize;
        Self::ALL[(at + by).rem_euclid(n) as usize]
    }
}

#[derive(Debug, Clone)]
pub struct StartDialog {
    pub key: String,
    pub dry_run: bool,
    pub order: Order,
    pub focus: StartField,
    /// As typed: RFC 3339 or a date, like `--exposed-since`; empty takes the default.
    pub exposed_since: String,
    /// Comma-separated paths, like repeated `--logs`.
    pub logs: String,
    /// Free text, like `--reason` (the record scrubs it like every entry).
    pub reason: String,
    /// Where the exposure window starts when the field is left empty (the engine's default).
    pub default_since: String,
    /// The last check that failed: the field it is about, and why.
    pub error: Option<(StartField, String)>,
    /// Opened from the Leaks view: the campaign the scan's findings call for.
    pub leak: Option<LeakStart>,
}

/// What the Leaks view fills in: the keys, the reason and the exposure start that
/// `keyfire scan --start-incident` would give ([`crate::scan::incident_for`]).
#[derive(Debug, Clone)]
pub struct LeakStart {
    pub incident: crate::scan::summary::LeakIncident,
    /// Chosen findings left out of the campaign, each with why.
    pub left_out: Vec<String>,
}

/// What the dialog did with an action.
#[derive(Debug, Clone)]
pub enum StartOutcome {
    /// Still open (every other key is swallowed while it is).
    Open,
    Cancelled,
    /// Start the incident or drill with these parameters (the ones `incident start` builds).
    Start(Box<IncidentParams>),
}

impl StartDialog {
    pub fn new(key: String, dry_run: bool) -> Self {
        Self {
            key,
            dry_run,
            order: Order::ContainFirst,
            focus: StartField::Choices,
            exposed_since: String::new(),
            logs: String::new(),
            reason: String::new(),
            default_since: "the key's last rotation, else 30 days before the revoke".into(),
            error: None,
            leak: None,
        }
    }

    /// The dialog pre-filled from the last scan's findings: their keys, and the reason and
    /// exposure start the scan gives, which the operator may still change.
    pub fn for_leak(leak: LeakStart, dry_run: bool) -> Self {
        let key = leak.incident.keys.first().cloned().unwrap_or_default();
        let mut dialog = Self::new(key, dry_run);
        dialog.reason = leak.incident.reason.clone();
        dialog.exposed_since = leak
            .incident
            .exposed_since
            .map(|t| t.to_rfc3339())
            .unwrap_or_default();
        dialog.leak = Some(leak);
        dialog
    }

    /// Show where the window starts by default for this key (its last rotation or creation,
    /// as the audit step takes it).
    pub fn with_default_since(mut self, issued: Option<chrono::NaiveDate>) -> Self {
        self.default_since = match issued {
            Some(d) => format!("{d} (last rotation)"),
            None => "30 days before the revoke".into(),
        };
        self
    }

    /// A text field has the keyboard.
    pub fn typing(&self) -> bool {
        self.focus != StartField::Choices
    }

    fn field_mut(&mut self) -> Option<&mut String> {
        match self.focus {
            StartField::Choices => None,
            StartField::ExposedSince => Some(&mut self.exposed_since),
            StartField::Logs => Some(&mut self.logs),
            StartField::Reason => Some(&mut self.reason),
        }
    }

    pub fn update(&mut self, action: &Action) -> StartOutcome {
        match (action, self.typing()) {
            (Action::NextField, _) | (Action::Down, true) => self.focus = self.focus.step(1),
            (Action::PrevField, _) | (Action::Up, true) => self.focus = self.focus.step(-1),
            (Action::Submit, _) | (Action::Yes, false) => return self.start(),
            (Action::Char(c), true) => self.edit(|f| f.push(*c)),
            (Action::Backspace, true) => self.edit(|f| {
                f.pop();
            }),
            // Esc in a field backs out to the choices; on the choices it cancels.
            (Action::Back, true) => self.focus = StartField::Choices,
            (Action::ToggleOrder, false) => {
                self.order = match self.order {
                    Order::ContainFirst => Order::ZeroDowntime,
                    Order::ZeroDowntime => Order::ContainFirst,
                };
            }
            (Action::No | Action::Back, false) => return StartOutcome::Cancelled,
            _ => {}
        }
        StartOutcome::Open
    }

    /// Change the focused field; its error goes once it is edited.
    fn edit(&mut self, change: impl FnOnce(&mut String)) {
        if self.error.as_ref().is_some_and(|(f, _)| *f == self.focus) {
            self.error = None;
        }
        if let Some(f) = self.field_mut() {
            change(f);
        }
    }

    /// Check the fields as `incident start` checks its flags; on a bad one the dialog stays
    /// open with the error beside it.
    fn start(&mut self) -> StartOutcome {
        match self.params() {
            Ok(params) => StartOutcome::Start(Box::new(params)),
            Err((field, error)) => {
                self.focus = field;
                self.error = Some((field, error));
                StartOutcome::Open
            }
        }
    }

    /// The parameters the fields give, or the field that is wrong and why.
    pub fn params(&self) -> Result<IncidentParams, (StartField, String)> {
        let exposed_since = match self.exposed_since.trim() {
            "" => None,
            text => {
                Some(
                    crate::clock::parse_start(text, chrono::Utc::now())
                        .map_err(|e| (StartField::ExposedSince, e))?,
                )
            }
        };
        let logs: Vec<PathBuf> = self
            .logs
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .collect();
        if let Some(missing) = logs.iter().find(|l| !l.is_file()) {
            return Err((
                StartField::Logs,
                format!("{}: no such file", missing.display()),
            ));
        }
        let reason = match self.reason.trim() {
            "" => DEFAULT_REASON.to_string(),
            text => text.to_string(),
        };
        let keys = match &self.leak {
            Some(leak) => leak.incident.keys.clone(),
            None => vec![self.key.clone()],
        };
        Ok(IncidentParams {
            keys,
            dry_run: self.dry_run,
            order: self.order,
            exposed_since,
            reason: Some(reason),
            logs,
            ..Default::default()
        })
    }

    pub fn render(&self, theme: Theme, f: &mut Frame, area: Rect) {
        let what = if self.dry_run {
            "drill (dry run: writes are shown, never sent)"
        } else {
            "LIVE incident (writes need your approval)"
        };
        let order = match self.order {
            Order::ContainFirst => "contain-first: revoke, then redeploy (agents down in between)",
            Order::ZeroDowntime => "zero-downtime: create, store, verify, then revoke",
        };
        let marker = |field: StartField| {
            if self.focus == field {
                Span::styled("▸ ", theme.key_hint())
            } else {
                Span::raw("  ")
            }
        };
        let on = match &self.leak {
            Some(leak) => format!(
                "on {} found by keyfire scan: {}?",
                plural(leak.incident.keys.len()),
                leak.incident.keys.join(", ")
            ),
            None => format!("on key {}?", self.key),
        };
        let mut lines = vec![Line::from(format!("Start a {what}")), Line::from(on)];
        for l in self.leak.iter().flat_map(|leak| &leak.left_out) {
            lines.push(Line::from(Span::styled(
                format!("left out: {l}"),
                theme.due_soon(),
            )));
        }
        lines.extend([
            Line::from(""),
            Line::from(vec![
                marker(StartField::Choices),
                Span::raw(format!("order: {order}")),
            ]),
        ]);
        // A key-shaped token typed into the reason is never drawn (the record scrubs it too).
        let reason = crate::secret::scrub_formats(&self.reason);
        let fields = [
            (
                StartField::ExposedSince,
                "exposed since",
                self.exposed_since.as_str(),
                format!("default: {}", self.default_since),
            ),
            (
                StartField::Logs,
                "gateway logs",
                self.logs.as_str(),
                "comma-separated files; default: none".to_string(),
            ),
            (
                StartField::Reason,
                "reason",
                reason.as_str(),
                format!("default: {DEFAULT_REASON}"),
            ),
        ];
        for (field, label, value, default) in fields {
            let mut spans = vec![marker(field), Span::raw(format!("{label:<14} "))];
            if self.focus == field {
                spans.push(Span::styled(format!("{value}▏"), theme.key_hint()));
            } else if value.is_empty() {
                spans.push(Span::styled(default.clone(), theme.muted()));
            } else {
                spans.push(Span::raw(value.to_string()));
            }
            lines.push(Line::from(spans));
            if self.focus == field && !value.is_empty() {
                lines.push(Line::from(Span::styled(
                    format!("  {:<14} {default}", ""),
                    theme.muted(),
                )));
            }
        }
        lines.push(Line::from(""));
        if let Some((_, error)) = &self.error {
            lines.push(Line::from(Span::styled(error.clone(), theme.danger())));
        }
        lines.push(Line::from(Span::styled(
            if self.typing() {
                strings::START_FIELD_HINT
            } else {
                strings::START_HINT
            },
            theme.key_hint(),
        )));
        // Room for every line as the popup wraps it (76 wide, minus the border).
        let rows: usize = lines.iter().map(|l| l.width().max(1).div_ceil(74)).sum();
        let height = u16::try_from(rows + 2).unwrap_or(u16::MAX);
        popup(f, area, strings::START_TITLE, lines, 76, height, theme);
    }
}

fn plural(n: usize) -> String {
    if n == 1 {
        "1 key".into()
    } else {
        format!("{n} keys")
    }
}
