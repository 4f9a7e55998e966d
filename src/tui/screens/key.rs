//! One key: metadata, blast radius, rotation and incident history. Drawn from the same view
//! model as `keyfire inventory show` ([`KeyView`]).

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};

use super::super::fleet::Fleet;
use super::super::theme::Theme;
use super::inventory::InventoryScreen;
use crate::inventory::view::KeyStatus;
use crate::key_view::KeyView;

/// The key screen's state: which key it shows (it lives on the screen stack).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyScreen {
    pub id: String,
}

impl KeyScreen {
    pub fn new(id: String) -> Self {
        Self { id }
    }

    /// The view model of the key on show; `None` when the inventory has no such key.
    pub fn view<'a>(&self, fleet: &'a Fleet, table: &InventoryScreen) -> Option<KeyView<'a>> {
        let key = fleet.inventory.key(&self.id)?;
        let row = table.row(&self.id)?.clone();
        let drills = fleet.drill_facts(&key.id, &key.provider);
        Some(KeyView::new(&fleet.inventory, key, row, &fleet.incidents).with_drills(drills))
    }

    pub fn render(
        &self,
        fleet: &Fleet,
        table: &InventoryScreen,
        theme: Theme,
        f: &mut Frame,
        area: Rect,
    ) {
        match self.view(fleet, table) {
            Some(view) => render_view(&view, fleet.open_incident_of(&self.id), theme, f, area),
            None => f.render_widget(Paragraph::new(format!(" unknown key {}", self.id)), area),
        }
    }
}

fn render_view(
    view: &KeyView,
    open_incident: Option<&crate::incidents::IncidentSummary>,
    theme: Theme,
    f: &mut Frame,
    area: Rect,
) {
    let (key, row) = (view.key, &view.row);
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(area);

    let label = |l: &str| Span::styled(format!("{l:<13}"), theme.muted());
    let mut meta = vec![
        Line::from(vec![
            label("key"),
            Span::styled(key.id.clone(), theme.header()),
        ]),
        Line::from(vec![
            label("provider"),
            Span::raw(format!("{} ({})", key.provider, view.provider_kind())),
        ]),
        Line::from(vec![
            label("provider id"),
            Span::raw(key.provider_key_id.clone().unwrap_or_else(|| "-".into())),
        ]),
        Line::from(vec![
            label("hint"),
            Span::raw(key.hint.clone().unwrap_or_else(|| "-".into())),
        ]),
        Line::from(vec![label("scopes"), Span::raw(key.scopes.join(", "))]),
    ];
    if let Some(n) = &key.needs {
        meta.push(Line::from(vec![label("needs"), Span::raw(n.join(", "))]));
    }
    let due = row.due_on.map_or("unknown".to_string(), |d| {
        format!("{d} ({} days)", row.due_in_days.unwrap_or(0))
    });
    let style = match row.status {
        KeyStatus::Overdue => theme.overdue(),
        KeyStatus::DueSoon => theme.due_soon(),
        _ => theme.ok(),
    };
    meta.push(Line::from(vec![
        label("issued"),
        Span::raw(key.issued_on().map_or("unknown".into(), |d| d.to_string())),
    ]));
    meta.push(Line::from(vec![label("due"), Span::styled(due, style)]));
    meta.push(Line::from(vec![
        label("status"),
        Span::styled(row.status.as_str(), style),
    ]));
    if let Some(open) = open_incident {
        meta.push(Line::from(vec![
            label("incident"),
            Span::styled(
                format!(
                    "{} {} since {}",
                    open.id,
                    open.status,
                    open.opened
                        .get(..16)
                        .unwrap_or(&open.opened)
                        .replace('T', " ")
                ),
                theme.danger(),
            ),
        ]));
    }
    if let Some(by_api) = view.by_api() {
        let text = if by_api.is_empty() {
            "nothing: every step is a manual checklist".to_string()
        } else {
            by_api.join(", ")
        };
        meta.push(Line::from(vec![label("by API"), Span::raw(text)]));
    }
    if let Some(d) = view.drills {
        let date = |d: Option<chrono::NaiveDate>| d.map_or("never".into(), |d| d.to_string());
        meta.push(Line::from(vec![
            label("last drill"),
            Span::styled(
                format!(
                    "{} (provider {}){}",
                    date(d.key),
                    date(d.provider),
                    if d.provider_due { ", due" } else { "" }
                ),
                if d.provider_due {
                    theme.due_soon()
                } else {
                    Style::new()
                },
            ),
        ]));
    }
    meta.push(Line::from(""));
    meta.push(Line::from(Span::styled(
        "i start an incident · d start a drill · Esc back",
        theme.key_hint(),
    )));
    f.render_widget(
        Paragraph::new(meta)
            .wrap(Wrap { trim: false })
            .block(Block::bordered().title(Span::styled(" Key ", theme.title()))),
        left,
    );

    let radius = &view.radius;
    let mut lines = vec![Line::from(Span::styled("Blast radius", theme.header()))];
    for a in &radius.agents {
        lines.push(Line::from(format!(
            "agent {} · owner {} · on-call {}",
            a.id,
            a.owner.as_deref().unwrap_or("none"),
            a.oncall.as_deref().unwrap_or("none")
        )));
    }
    if radius.agents.is_empty() {
        lines.push(Line::from("no agent holds this key"));
    }
    for o in &radius.other_keys {
        lines.push(Line::from(format!(
            "also exposed: {} ({}) via {}",
            o.id,
            o.provider,
            o.held_by.join(", ")
        )));
    }
    lines.push(Line::from(match view.redeploy_target() {
        Some((s, p)) => format!("redeploy to {s}:{p}"),
        None => "no store: the replacement is delivered by hand".into(),
    }));
    lines.push(Line::from(""));
    lines.push(Line::from(Span::styled("History", theme.header())));
    lines.push(Line::from(format!(
        "last rotated {}",
        key.last_rotated
            .map_or("never recorded".into(), |d| d.to_string())
    )));
    if view.history.is_empty() {
        lines.push(Line::from(Span::styled(
            "no incidents or drills",
            theme.muted(),
        )));
    }
    for i in view.history.iter().take(12) {
        lines.push(Line::from(format!(
            "{} {} {} {}",
            i.opened.get(..10).unwrap_or(""),
            i.kind,
            i.status,
            i.id
        )));
    }
    f.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(
            Block::bordered().title(Span::styled(" Blast radius and history ", theme.title())),
        ),
        right,
    );
}
