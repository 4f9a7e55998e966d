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
use super::super::widgets::{column_widths, fit};
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
    /// Each column's widest cell over every row (header included), so the columns keep
    /// their widths while the operator scrolls or filters.
    natural: [usize; COLUMNS],
}

const COLUMNS: usize = 8;
const HEADER: [&str; COLUMNS] = [
    "KEY",
    "AGENTS",
    "PROVIDER",
    "SCOPES",
    "AGE",
    "DUE",
    "STATUS",
    "LAST DRILL",
];
/// The text columns (key, agents, provider, scopes) may be cut down to their header; the
/// numbers, the status and the date never are.
const CUTTABLE: [bool; COLUMNS] = [true, true, true, true, false, false, false, false];
/// A date, or `never`.
const DRILL_WIDTH: usize = 10;

impl InventoryScreen {
    /// The table of `inv`'s keys; `open` holds the keys with an open incident.
    pub fn new(inv: &Inventory, today: NaiveDate, open: &HashSet<String>) -> Self {
        let mut screen = Self {
            rows: Vec::new(),
            haystacks: Vec::new(),
            order: Vec::new(),
            visible: Vec::new(),
            filter: String::new(),
            editing: false,
            sort: SortKey::Due,
            selected: 0,
            page: 20,
            natural: [0; COLUMNS],
        };
        screen.rebuild(inv, today, open);
        screen
    }

    /// Rebuild the rows from `inv` (reloaded after an edit) and the keys with an open
    /// incident; the filter, the sort and the selected key stay.
    pub fn rebuild(&mut self, inv: &Inventory, today: NaiveDate, open: &HashSet<String>) {
        let keep = self.selected_row().map(|r| r.id.clone());
        self.rows = inv
            .keys
            .iter()
            .map(|k| key_row(inv, k, today, open))
            .collect();
        self.haystacks = inv
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
        let mut natural = HEADER.map(|h| h.chars().count());
        natural[7] = natural[7].max(DRILL_WIDTH);
        for r in &self.rows {
            let cells = [
                r.id.chars().count(),
                r.agents.join(",").chars().count(),
                r.provider.chars().count(),
                r.scopes.join(",").chars().count(),
                num(r.age_days).len(),
                num(r.due_in_days).len(),
                r.status.as_str().len(),
            ];
            for (n, c) in natural.iter_mut().zip(cells) {
                *n = (*n).max(c);
            }
        }
        self.natural = natural;
        self.resort();
        if let Some(id) = keep
            && let Some(at) = self.visible.iter().position(|&i| self.rows[i].id == id)
        {
            self.selected = at;
        }
        self.selected = self.selected.min(self.visible.len().saturating_sub(1));
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
        let keep_id = self
            .visible
            .get(self.selected)
            .and_then(|&i| self.rows.get(i))
            .map(|r| r.id.clone());
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
                    " sort: {} (s) · filter: / · leaks: L · {} keys",
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
        let min = std::array::from_fn::<usize, COLUMNS, _>(|i| {
            if CUTTABLE[i] {
                HEADER[i].chars().count()
            } else {
                self.natural[i]
            }
        });
        let widths = column_widths(&self.natural, &min, usize::from(inner.width), 1);
        let cell = |i: usize, text: String| Cell::from(fit(&text, usize::from(widths[i])));
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
            let drill = last_drill
                .get(&r.id)
                .map_or("never".to_string(), |d| d.to_string());
            Row::new(vec![
                cell(0, r.id.clone()),
                cell(1, r.agents.join(",")),
                cell(2, r.provider.clone()),
                cell(3, r.scopes.join(",")),
                cell(4, num(r.age_days)),
                cell(5, num(r.due_in_days)),
                cell(6, r.status.as_str().to_string()),
                cell(7, drill),
            ])
            .style(style)
        });
        let header = Row::new(HEADER).style(theme.header());
        let widths = widths.iter().copied().map(Constraint::Length);
        let table = Table::new(rows, widths).header(header).column_spacing(1);
        f.render_widget(table, inner);
    }
}

/// A day count, or `-` when unknown.
fn num(v: Option<i64>) -> String {
    v.map_or("-".to_string(), |d| d.to_string())
}
