//! Open and past incidents and drills; `r` resumes an interrupted one.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::text::Span;
use ratatui::widgets::{Block, Paragraph, Row, Table};

use super::super::action::Action;
use super::super::strings;
use super::super::theme::Theme;
use super::super::widgets::duration_text;
use super::{Request, move_selection};
use crate::incidents::IncidentSummary;

/// The incident list's state: the selection (the list itself is the app's [`Fleet`]).
///
/// [`Fleet`]: super::super::fleet::Fleet
#[derive(Debug, Default)]
pub struct IncidentsScreen {
    pub selected: usize,
}

impl IncidentsScreen {
    /// Keep the selection inside a list that may have shrunk.
    pub fn clamp(&mut self, len: usize) {
        self.selected = self.selected.min(len.saturating_sub(1));
    }

    pub fn update(&mut self, action: &Action, list: &[IncidentSummary]) -> Option<Request> {
        match action {
            Action::Up
            | Action::Down
            | Action::Top
            | Action::Bottom
            | Action::PageUp
            | Action::PageDown => {
                let len = list.len();
                self.selected = match action {
                    Action::Up => move_selection(-1, len, self.selected),
                    Action::Down => move_selection(1, len, self.selected),
                    Action::PageUp => move_selection(-10, len, self.selected),
                    Action::PageDown => move_selection(10, len, self.selected),
                    Action::Top => 0,
                    _ => len.saturating_sub(1),
                };
                None
            }
            Action::SelectRow(i) if *i < list.len() => {
                self.selected = *i;
                None
            }
            Action::Resume => {
                let i = list.get(self.selected)?;
                if !i.is_open() {
                    return Some(Request::Notice(format!(
                        "{} is {}: nothing to resume",
                        i.id, i.status
                    )));
                }
                Some(Request::Resume {
                    id: i.id.clone(),
                    keys: i.keys.clone(),
                    drill: i.drill,
                })
            }
            Action::Open => list.get(self.selected).map(|i| Request::OpenIncident {
                id: i.id.clone(),
                key: i.keys.first().cloned(),
            }),
            _ => None,
        }
    }

    /// Draw the list; `offset` is its scroll position, kept between frames.
    pub fn render(
        &self,
        list: &[IncidentSummary],
        offset: &mut usize,
        theme: Theme,
        f: &mut Frame,
        area: Rect,
    ) {
        let block = Block::bordered().title(Span::styled(" Incidents and drills ", theme.title()));
        let inner = block.inner(area);
        f.render_widget(block, area);
        if list.is_empty() {
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
        if self.selected < *offset {
            *offset = self.selected;
        } else if self.selected >= *offset + height {
            *offset = self.selected + 1 - height;
        }
        let first = *offset;
        let end = (first + height).min(list.len());
        let rows = list[first..end].iter().enumerate().map(|(i, inc)| {
            let mut style = match inc.status.as_str() {
                "completed" => Style::new(),
                "open" | "failed" | "aborted" => theme.due_soon(),
                _ => theme.danger(),
            };
            if first + i == self.selected {
                style = style.patch(theme.selected());
            }
            Row::new(vec![
                inc.id.clone(),
                inc.kind.to_string(),
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
        let header = Row::new(["ID", "TYPE", "OPENED (UTC)", "STATUS", "TOOK", "KEYS"])
            .style(theme.header());
        f.render_widget(
            Table::new(rows, widths).header(header).column_spacing(1),
            inner,
        );
    }
}
