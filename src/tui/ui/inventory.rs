//! Home: the key table. Only the visible rows are built, so 100,000 keys cost what 30 do.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table};

use super::super::app::{App, InputPurpose};
use super::super::strings;
use super::super::theme::Theme;
use super::ViewState;
use crate::inventory::view::KeyStatus;

pub fn render(app: &App, view: &mut ViewState, theme: Theme, f: &mut Frame, area: Rect) {
    let [filter_area, table_area] =
        Layout::vertical([Constraint::Length(1), Constraint::Fill(1)]).areas(area);
    let filtering = app.input == Some(InputPurpose::Filter);
    let filter_line = if filtering || !app.filter.is_empty() {
        Line::from(vec![
            Span::styled(" / ", theme.key_hint()),
            Span::raw(app.filter.clone()),
            Span::styled(if filtering { "▏" } else { "" }, theme.key_hint()),
            Span::styled(
                format!(
                    "   {} of {} keys · sort: {}",
                    app.visible.len(),
                    app.rows.len(),
                    app.sort.label()
                ),
                theme.muted(),
            ),
        ])
    } else {
        Line::from(Span::styled(
            format!(
                " sort: {} (s) · filter: / · {} keys",
                app.sort.label(),
                app.rows.len()
            ),
            theme.muted(),
        ))
    };
    f.render_widget(Paragraph::new(filter_line), filter_area);

    let block = Block::bordered().title(Span::styled(" Inventory ", theme.title()));
    let inner = block.inner(table_area);
    f.render_widget(block, table_area);
    if app.rows.is_empty() || app.visible.is_empty() {
        let msg = if app.rows.is_empty() {
            strings::NO_KEYS
        } else {
            strings::NO_MATCH
        };
        f.render_widget(
            Paragraph::new(Span::styled(format!(" {msg}"), theme.muted())),
            inner,
        );
        return;
    }
    let height = inner.height.saturating_sub(1) as usize; // minus the header row
    if height == 0 {
        return;
    }
    // Keep the selection on screen with the least scrolling.
    if app.selected < view.table_offset {
        view.table_offset = app.selected;
    } else if app.selected >= view.table_offset + height {
        view.table_offset = app.selected + 1 - height;
    }
    view.table_offset = view
        .table_offset
        .min(app.visible.len().saturating_sub(height));
    let end = (view.table_offset + height).min(app.visible.len());
    let widths = [
        Constraint::Fill(3),
        Constraint::Fill(2),
        Constraint::Fill(2),
        Constraint::Fill(2),
        Constraint::Length(5),
        Constraint::Length(6),
        Constraint::Length(13),
        Constraint::Length(10),
    ];
    let rows = app.visible[view.table_offset..end]
        .iter()
        .enumerate()
        .map(|(i, &ri)| {
            let r = &app.rows[ri];
            let style = match r.status {
                KeyStatus::Overdue => theme.overdue(),
                KeyStatus::DueSoon => theme.due_soon(),
                KeyStatus::IncidentOpen => theme.danger(),
                _ => Style::new(),
            };
            let style = if view.table_offset + i == app.selected {
                style.patch(theme.selected())
            } else {
                style
            };
            let num = |v: Option<i64>| v.map_or("-".to_string(), |d| d.to_string());
            let drill = app
                .last_drill
                .get(&r.id)
                .map_or("never".to_string(), |d| d.to_string());
            Row::new(vec![
                Cell::from(r.id.clone()),
                Cell::from(r.agents.join(",")),
                Cell::from(r.provider.clone()),
                Cell::from(r.scopes.join(",")),
                Cell::from(num(r.age_days)),
                Cell::from(num(r.due_in_days)),
                Cell::from(r.status.as_str()),
                Cell::from(drill),
            ])
            .style(style)
        });
    let header = Row::new([
        "KEY",
        "AGENTS",
        "PROVIDER",
        "SCOPES",
        "AGE",
        "DUE",
        "STATUS",
        "LAST DRILL",
    ])
    .style(theme.header());
    let table = Table::new(rows, widths).header(header).column_spacing(1);
    f.render_widget(table, inner);
}
