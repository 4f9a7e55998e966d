//! Open and past incidents and drills; `r` resumes an interrupted one.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::text::Span;
use ratatui::widgets::{Block, Paragraph, Row, Table};

use super::super::app::App;
use super::super::strings;
use super::super::theme::Theme;
use super::{ViewState, duration_text};

pub fn render(app: &App, view: &mut ViewState, theme: Theme, f: &mut Frame, area: Rect) {
    let block = Block::bordered().title(Span::styled(" Incidents and drills ", theme.title()));
    let inner = block.inner(area);
    f.render_widget(block, area);
    if app.incidents.is_empty() {
        f.render_widget(
            Paragraph::new(Span::styled(
                format!(" {}", strings::NO_INCIDENTS),
                theme.muted(),
            )),
            inner,
        );
        return;
    }
    let height = inner.height.saturating_sub(1) as usize;
    if height == 0 {
        return;
    }
    if app.incident_selected < view.incidents_offset {
        view.incidents_offset = app.incident_selected;
    } else if app.incident_selected >= view.incidents_offset + height {
        view.incidents_offset = app.incident_selected + 1 - height;
    }
    let end = (view.incidents_offset + height).min(app.incidents.len());
    let rows = app.incidents[view.incidents_offset..end]
        .iter()
        .enumerate()
        .map(|(i, inc)| {
            let mut style = match inc.status.as_str() {
                "completed" => Style::new(),
                "open" | "failed" | "aborted" => theme.due_soon(),
                _ => theme.danger(),
            };
            if view.incidents_offset + i == app.incident_selected {
                style = style.patch(theme.selected());
            }
            Row::new(vec![
                inc.id.clone(),
                inc.kind.clone(),
                inc.opened.get(..19).unwrap_or("").replace('T', " "),
                inc.status.clone(),
                inc.total_ms.map_or("-".into(), duration_text),
                inc.keys.join(","),
            ])
            .style(style)
        });
    let widths = [
        Constraint::Length(26),
        Constraint::Length(9),
        Constraint::Length(20),
        Constraint::Length(10),
        Constraint::Length(8),
        Constraint::Fill(1),
    ];
    let header =
        Row::new(["ID", "TYPE", "OPENED (UTC)", "STATUS", "TOOK", "KEYS"]).style(theme.header());
    f.render_widget(
        Table::new(rows, widths).header(header).column_spacing(1),
        inner,
    );
}
