//! The dialog before an incident or drill opens on one key: live or drill, and the order
//! (contain-first or zero-downtime).

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

use super::super::action::Action;
use super::super::strings;
use super::super::theme::Theme;
use super::super::widgets::popup;
use crate::runbook::Order;

#[derive(Debug, Clone)]
pub struct StartDialog {
    pub key: String,
    pub dry_run: bool,
    pub order: Order,
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartOutcome {
    /// Still open (every other key is swallowed while it is).
    Open,
    Cancelled,
    /// `y`: start the incident or drill as chosen.
    Start,
}

impl StartDialog {
    pub fn new(key: String, dry_run: bool) -> Self {
        Self {
            key,
            dry_run,
            order: Order::ContainFirst,
            leak: None,
        }
    }

    /// The dialog pre-filled from the last scan's findings.
    pub fn for_leak(leak: LeakStart, dry_run: bool) -> Self {
        let key = leak.incident.keys.first().cloned().unwrap_or_default();
        Self {
            leak: Some(leak),
            ..Self::new(key, dry_run)
        }
    }

    pub fn update(&mut self, action: &Action) -> StartOutcome {
        match action {
            Action::Yes => StartOutcome::Start,
            Action::ToggleOrder => {
                self.order = match self.order {
                    Order::ContainFirst => Order::ZeroDowntime,
                    Order::ZeroDowntime => Order::ContainFirst,
                };
                StartOutcome::Open
            }
            Action::No | Action::Back => StartOutcome::Cancelled,
            _ => StartOutcome::Open,
        }
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
        if let Some(leak) = &self.leak {
            return render_leak(leak, what, order, theme, f, area);
        }
        let lines = vec![
            Line::from(format!("Start a {what}")),
            Line::from(format!("on key {}?", self.key)),
            Line::from(""),
            Line::from(format!("order: {order}")),
            Line::from(""),
            Line::from(Span::styled(
                "y start · z change order · n/Esc cancel",
                theme.key_hint(),
            )),
        ];
        popup(f, area, strings::START_TITLE, lines, 64, 10, theme);
    }
}

fn render_leak(leak: &LeakStart, what: &str, order: &str, theme: Theme, f: &mut Frame, area: Rect) {
    let i = &leak.incident;
    let exposed = i.exposed_since.map_or(
        "each key's last rotation (no commit date among the findings)".to_string(),
        |t| t.format("%Y-%m-%d %H:%M UTC").to_string(),
    );
    let mut lines = vec![
        Line::from(format!("Start a {what}")),
        Line::from(format!(
            "on {} found by keyfire scan: {}?",
            plural(i.keys.len()),
            i.keys.join(", ")
        )),
        Line::from(""),
        Line::from(format!("reason: {}", i.reason)),
        Line::from(format!("exposed since: {exposed}")),
    ];
    for l in &leak.left_out {
        lines.push(Line::from(Span::styled(
            format!("left out: {l}"),
            theme.due_soon(),
        )));
    }
    lines.extend([
        Line::from(format!("order: {order}")),
        Line::from(""),
        Line::from(Span::styled(
            "y start · z change order · n/Esc cancel",
            theme.key_hint(),
        )),
    ]);
    // Room for every line as the popup wraps it (76 wide, minus the border).
    let rows: usize = lines.iter().map(|l| l.width().max(1).div_ceil(74)).sum();
    let height = u16::try_from(rows + 2).unwrap_or(u16::MAX);
    popup(f, area, strings::START_TITLE, lines, 76, height, theme);
}

fn plural(n: usize) -> String {
    if n == 1 {
        "1 key".into()
    } else {
        format!("{n} keys")
    }
}
