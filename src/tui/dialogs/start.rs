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
