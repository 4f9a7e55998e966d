//! Home: the key table, its sort and its filter. Only the visible rows are built when
//! drawing, so 100,000 keys cost what 30 do.

use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table};

use super::super::action::Action;
use super::super::strings;
use super::super::theme::Theme;
use super::move_selection;
use crate::inventory::Inventory;
use crate::inventory::view::{KeyRow, KeyStatus, key_row};

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

#[derive(Debug)]
pub struct InventoryScreen {
    pub rows: Vec<KeyRow>,
    /// Lower-cased text the filter searches, per row.
    haystacks: Vec<String>,
    /// Row indices in sort order.
    order: Vec<usize>,
    /// Row indices shown (sort order, filtered).
    pub visible: Vec<usize>,
    pub filter: String,
    /// The filter field has the keyboard.
    pub editing: bool,
    pub sort: SortKey,
    /// Index into `visible`.
    pub selected: usize,
    /// Rows PgUp/PgDn move.
    pub page: usize,
}

impl InventoryScreen {
    /// The table of `inv`'s keys; `open` holds the keys with an open incident.
    pub fn new(inv: &Inventory, today: NaiveDate, open: &HashSet<String>) -> Self {
        let rows: Vec<KeyRow> = inv
            .keys
            .iter()
            .map(|k| key_row(inv, k, today, open))
            .collect();
        let haystacks = inv
            .keys
            .iter()
            .map(|k| {
                let owners: Vec<&str> = k
                    .agents
                    .iter()
                    .filter_map(|a| inv.agent(a))
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
        let mut screen = Self {
            rows,
            haystacks,
            order: Vec::new(),
            visible: Vec::new(),
            filter: String::new(),
            editing: false,
            sort: SortKey::Due,
            selected: 0,
            page: 20,
        };
        screen.resort();
        screen
    }

    pub fn selected_row(&self) -> Option<&KeyRow> {
        self.visible.get(self.selected).map(|&i| &self.rows[i])
    }

    pub fn row(&self, id: &str) -> Option<&KeyRow> {
        self.rows.iter().find(|r| r.id == id)
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

    /// The table's keys. Returns the key to open on Enter.
    pub fn update(&mut self, action: &Action) -> Option<String> {
        match action {
            Action::Back if !self.filter.is_empty() => {
                self.filter.clear();
                self.refilter();
            }
            Action::FilterStart => self.editing = true,
            Action::CycleSort => {
                self.sort = self.sort.next();
                self.resort();
            }
            Action::Up
            | Action::Down
            | Action::PageUp
            | Action::PageDown
            | Action::Top
            | Action::Bottom => {
                let len = self.visible.len();
                let page = self.page.max(1) as i64;
                self.selected = match action {
                    Action::Up => move_selection(-1, len, self.selected),
                    Action::Down => move_selection(1, len, self.selected),
                    Action::PageUp => move_selection(-page, len, self.selected),
                    Action::PageDown => move_selection(page, len, self.selected),
                    Action::Top => 0,
                    _ => len.saturating_sub(1),
                };
            }
            Action::Open => return self.selected_row().map(|r| r.id.clone()),
            Action::SelectRow(i) if *i < self.visible.len() => self.selected = *i,
            _ => {}
        }
        None
    }

    /// Keys while the filter field has the keyboard: the table follows every keystroke.
    pub fn edit(&mut self, action: &Action) {
        match action {
            Action::Char(c) => {
                self.filter.push(*c);
                self.refilter();
            }
            Action::Backspace => {
                self.filter.pop();
                self.refilter();
            }
            Action::Back => {
                self.editing = false;
                self.filter.clear();
                self.refilter();
            }
            Action::Up | Action::Down => {
                let delta = if *action == Action::Up { -1 } else { 1 };
                self.selected = move_selection(delta, self.visible.len(), self.selected);
            }
            Action::Submit => self.editing = false,
            _ => {}
        }
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

    /// Draw the table; `offset` is its scroll position, kept between frames.
    pub fn render(
        &self,
        last_drill: &HashMap<String, NaiveDate>,
        offset: &mut usize,
        theme: Theme,
        f: &mut Frame,
        area: Rect,
    ) {
        let [filter_area, table_area] =
            Layout::vertical([Constraint::Length(1), Constraint::Fill(1)]).areas(area);
        let filtering = self.editing;
        let filter_line = if filtering || !self.filter.is_empty() {
            Line::from(vec![
                Span::styled(" / ", theme.key_hint()),
                Span::raw(self.filter.clone()),
                Span::styled(if filtering { "▏" } else { "" }, theme.key_hint()),
                Span::styled(
                    format!(
                        "   {} of {} keys · sort: {}",
                        self.visible.len(),
                        self.rows.len(),
                        self.sort.label()
                    ),
                    theme.muted(),
                ),
            ])
        } else {
            Line::from(Span::styled(
                format!(
                    " sort: {} (s) · filter: / · {} keys",
                    self.sort.label(),
                    self.rows.len()
                ),
                theme.muted(),
            ))
        };
        f.render_widget(Paragraph::new(filter_line), filter_area);

        let block = Block::bordered().title(Span::styled(" Inventory ", theme.title()));
        let inner = block.inner(table_area);
        f.render_widget(block, table_area);
        if self.rows.is_empty() || self.visible.is_empty() {
            let msg = if self.rows.is_empty() {
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
        if self.selected < *offset {
            *offset = self.selected;
        } else if self.selected >= *offset + height {
            *offset = self.selected + 1 - height;
        }
        *offset = (*offset).min(self.visible.len().saturating_sub(height));
        let end = (*offset + height).min(self.visible.len());
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
        let first = *offset;
        let rows = self.visible[first..end].iter().enumerate().map(|(i, &ri)| {
            let r = &self.rows[ri];
            let style = match r.status {
                KeyStatus::Overdue => theme.overdue(),
                KeyStatus::DueSoon => theme.due_soon(),
                KeyStatus::IncidentOpen => theme.danger(),
                _ => Style::new(),
            };
            let style = if first + i == self.selected {
                style.patch(theme.selected())
            } else {
                style
            };
            let num = |v: Option<i64>| v.map_or("-".to_string(), |d| d.to_string());
            let drill = last_drill
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
}
