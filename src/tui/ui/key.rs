//! One key: metadata, blast radius, rotation and incident history.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};

use super::super::app::App;
use super::super::theme::Theme;
use crate::inventory::view::blast_radius;
use crate::provider::capabilities_of;

pub fn render(app: &App, id: &str, theme: Theme, f: &mut Frame, area: Rect) {
    let inv = &app.inventory;
    let Some(key) = inv.key(id) else {
        f.render_widget(Paragraph::new(format!(" unknown key {id}")), area);
        return;
    };
    let row = app.rows.iter().find(|r| r.id == id);
    let provider = inv.provider_of(key);
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
            Span::raw(format!(
                "{} ({})",
                key.provider,
                provider.map_or("?", |p| p.kind.as_str())
            )),
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
    if let Some(r) = row {
        let due = r.due_on.map_or("unknown".to_string(), |d| {
            format!("{d} ({} days)", r.due_in_days.unwrap_or(0))
        });
        let style = match r.status {
            crate::inventory::view::KeyStatus::Overdue => theme.overdue(),
            crate::inventory::view::KeyStatus::DueSoon => theme.due_soon(),
            _ => theme.ok(),
        };
        meta.push(Line::from(vec![
            label("issued"),
            Span::raw(key.issued_on().map_or("unknown".into(), |d| d.to_string())),
        ]));
        meta.push(Line::from(vec![label("due"), Span::styled(due, style)]));
        meta.push(Line::from(vec![
            label("status"),
            Span::styled(r.status.as_str(), style),
        ]));
    }
    if let Some(p) = provider {
        let c = capabilities_of(p.kind);
        let names = [
            ("locate", c.locate),
            ("verify", c.verify),
            ("disable", c.disable),
            ("revoke", c.revoke),
            ("create", c.create),
            ("usage", c.usage),
        ];
        let by_api: Vec<&str> = names.iter().filter(|(_, v)| *v).map(|(n, _)| *n).collect();
        let text = if by_api.is_empty() {
            "nothing: every step is a manual checklist".to_string()
        } else {
            by_api.join(", ")
        };
        meta.push(Line::from(vec![label("by API"), Span::raw(text)]));
    }
    let provider_drill = inv
        .keys
        .iter()
        .filter(|k| k.provider == key.provider)
        .filter_map(|k| app.last_drill.get(&k.id))
        .max();
    let due = app.drill_due_providers.contains(&key.provider);
    meta.push(Line::from(vec![
        label("last drill"),
        Span::styled(
            format!(
                "{} (provider {}){}",
                app.last_drill
                    .get(&key.id)
                    .map_or("never".into(), |d| d.to_string()),
                provider_drill.map_or("never".into(), |d| d.to_string()),
                if due { ", due" } else { "" }
            ),
            if due {
                theme.due_soon()
            } else {
                ratatui::style::Style::new()
            },
        ),
    ]));
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

    let radius = blast_radius(inv, key);
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
    lines.push(Line::from(match (&radius.store, &radius.secret_path) {
        (Some(s), Some(p)) => format!("redeploy to {s}:{p}"),
        _ => "no store: the replacement is delivered by hand".into(),
    }));
    lines.push(Line::from(""));
    lines.push(Line::from(Span::styled("History", theme.header())));
    lines.push(Line::from(format!(
        "last rotated {}",
        key.last_rotated
            .map_or("never recorded".into(), |d| d.to_string())
    )));
    let history: Vec<_> = app
        .incidents
        .iter()
        .filter(|i| i.keys.iter().any(|k| k == id))
        .collect();
    if history.is_empty() {
        lines.push(Line::from(Span::styled(
            "no incidents or drills",
            theme.muted(),
        )));
    }
    for i in history.iter().take(12) {
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
