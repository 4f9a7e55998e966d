//! Leaks: the last `keyfire scan`'s findings (read from the data directory, never a value),
//! live inventory keys first. The operator marks findings and starts the incident the scan's
//! `--start-incident` would open for them; unmanaged and other unstartable findings say why.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, Wrap};

use super::super::action::Action;
use super::super::strings;
use super::super::theme::Theme;
use super::super::widgets::{column_widths, fit};
use super::{Request, move_selection};
use crate::scan::saved::{SavedScan, SavedScanError};
use crate::scan::summary::{label, why_not_startable};
use crate::scan::{Finding, KeyState};

/// What the screen knows of the last scan.
#[derive(Debug, Default)]
pub enum LastScan {
    /// Not read yet (the loop reads it when the screen opens).
    #[default]
    Unread,
    /// No scan has run with this data directory.
    None,
    /// The file is there but cannot be shown (unreadable, broken, from a newer keyfire).
    Error(String),
    Loaded(Box<SavedScan>),
}

#[derive(Debug, Default)]
pub struct LeaksScreen {
    pub last: LastScan,
    /// Finding indices in display order: live inventory keys first.
    order: Vec<usize>,
    /// Index into `order`.
    pub selected: usize,
    /// Marked findings (indices into the scan's findings).
    pub marked: BTreeSet<usize>,
    natural: [usize; COLUMNS],
}

/// The hint and the whole location are in the detail box under the table.
const COLUMNS: usize = 7;
const HEADER: [&str; COLUMNS] = ["", "STATUS", "KEY", "WHERE", "FOUND", "SINCE", "AGENTS"];
/// Key, place, format and agents may be cut; the mark, the status and the date never.
const CUTTABLE: [bool; COLUMNS] = [false, false, true, true, true, false, true];
const DATE_WIDTH: usize = 10;

/// Live inventory keys first, then what needs a person (unmanaged, ambiguous, withheld),
/// then values already rotated.
fn rank(f: &Finding) -> u8 {
    if f.verdict.is_live() {
        return 0;
    }
    match f.verdict.status {
        KeyState::Unmanaged => 1,
        KeyState::Ambiguous => 2,
        KeyState::Withheld => 3,
        _ => 4,
    }
}

impl LeaksScreen {
    /// The loop's read of the saved scan.
    pub fn set(&mut self, read: Result<Option<SavedScan>, SavedScanError>) {
        self.marked.clear();
        self.selected = 0;
        self.last = match read {
            Ok(None) => LastScan::None,
            Ok(Some(scan)) => LastScan::Loaded(Box::new(scan)),
            Err(e) => LastScan::Error(e.to_string()),
        };
        let findings = self.findings();
        let mut order: Vec<usize> = (0..findings.len()).collect();
        order.sort_by_key(|&i| (rank(&findings[i]), i));
        let mut natural = HEADER.map(|h| h.chars().count());
        natural[0] = 1;
        natural[5] = natural[5].max(DATE_WIDTH);
        if let LastScan::Loaded(scan) = &self.last {
            for f in &scan.findings {
                let cells = [
                    1,
                    label(f).len(),
                    key_text(f).chars().count(),
                    place(f).chars().count(),
                    f.what.chars().count(),
                    DATE_WIDTH,
                    agents_text(scan, f).chars().count(),
                ];
                for (n, c) in natural.iter_mut().zip(cells) {
                    *n = (*n).max(c);
                }
            }
        }
        self.order = order;
        self.natural = natural;
    }

    pub fn scan(&self) -> Option<&SavedScan> {
        match &self.last {
            LastScan::Loaded(s) => Some(s),
            _ => None,
        }
    }

    fn findings(&self) -> &[Finding] {
        self.scan().map_or(&[], |s| s.findings.as_slice())
    }

    /// The finding under the cursor.
    pub fn current(&self) -> Option<&Finding> {
        let i = *self.order.get(self.selected)?;
        self.findings().get(i)
    }

    /// What the start key acts on: the marked findings, else the one under the cursor.
    pub fn chosen(&self) -> Vec<Finding> {
        let all = self.findings();
        if self.marked.is_empty() {
            return self.current().cloned().into_iter().collect();
        }
        self.marked
            .iter()
            .filter_map(|&i| all.get(i))
            .cloned()
            .collect()
    }

    pub fn update(&mut self, action: &Action) -> Option<Request> {
        let len = self.order.len();
        match action {
            Action::Up => self.selected = move_selection(-1, len, self.selected),
            Action::Down => self.selected = move_selection(1, len, self.selected),
            Action::PageUp => self.selected = move_selection(-20, len, self.selected),
            Action::PageDown => self.selected = move_selection(20, len, self.selected),
            Action::Top => self.selected = 0,
            Action::Bottom => self.selected = len.saturating_sub(1),
            Action::ToggleMark => {
                let i = *self.order.get(self.selected)?;
                if !self.marked.remove(&i) {
                    self.marked.insert(i);
                }
                self.selected = move_selection(1, len, self.selected);
            }
            Action::MarkLive => {
                let live: BTreeSet<usize> = (0..self.findings().len())
                    .filter(|&i| self.findings()[i].verdict.is_live())
                    .collect();
                if live.is_empty() {
                    return Some(Request::Notice(strings::LEAKS_NONE_LIVE.into()));
                }
                self.marked = if self.marked == live {
                    BTreeSet::new()
                } else {
                    live
                };
            }
            Action::Open => {
                let f = self.current()?;
                return match &f.verdict.key {
                    Some(k) => Some(Request::OpenKey(k.clone())),
                    None => why_not_startable(f).map(Request::Notice),
                };
            }
            _ => {}
        }
        None
    }

    pub fn render(
        &self,
        now: DateTime<Utc>,
        offset: &mut usize,
        theme: Theme,
        f: &mut Frame,
        area: Rect,
    ) {
        let scan = match &self.last {
            LastScan::Loaded(s) => s,
            LastScan::Unread => {
                message(f, area, " Reading the last scan…", theme.muted(), theme);
                return;
            }
            LastScan::None => {
                message(f, area, strings::NO_SCAN, theme.muted(), theme);
                return;
            }
            LastScan::Error(e) => {
                let text = format!(" The last scan cannot be shown: {e}");
                message(f, area, &text, theme.danger(), theme);
                return;
            }
        };
        let [summary, table_area, detail_area] = Layout::vertical([
            Constraint::Length(2),
            Constraint::Fill(1),
            Constraint::Length(5),
        ])
        .areas(area);
        let t = &scan.totals;
        let c = &scan.coverage;
        let lines = vec![
            Line::from(Span::styled(
                format!(
                    " Last scan {} ({}) over {}",
                    scan.ran_at.format("%Y-%m-%d %H:%M UTC"),
                    ago(now, scan.ran_at),
                    scan.scope()
                ),
                theme.muted(),
            )),
            Line::from(vec![
                Span::styled(
                    format!(" {} live inventory key(s)", t.live_keys),
                    if t.live_keys > 0 {
                        theme.danger()
                    } else {
                        theme.ok()
                    },
                ),
                Span::raw(counts(t, c)),
            ]),
        ];
        f.render_widget(Paragraph::new(lines), summary);

        let title = if self.marked.is_empty() {
            format!(" Leaks · {} findings ", scan.findings.len())
        } else {
            format!(
                " Leaks · {} findings · {} marked ",
                scan.findings.len(),
                self.marked.len()
            )
        };
        let block = Block::bordered().title(Span::styled(title, theme.title()));
        let inner = block.inner(table_area);
        f.render_widget(block, table_area);
        if scan.findings.is_empty() {
            f.render_widget(
                Paragraph::new(Span::styled(
                    " The last scan found nothing it could match or that looked like a secret.",
                    theme.ok(),
                )),
                inner,
            );
        } else {
            self.render_table(scan, offset, theme, f, inner);
        }
        self.render_detail(scan, theme, f, detail_area);
    }

    fn render_table(
        &self,
        scan: &SavedScan,
        offset: &mut usize,
        theme: Theme,
        f: &mut Frame,
        inner: Rect,
    ) {
        let height = usize::from(inner.height.saturating_sub(1));
        if height == 0 {
            return;
        }
        if self.selected < *offset {
            *offset = self.selected;
        } else if self.selected >= *offset + height {
            *offset = self.selected + 1 - height;
        }
        *offset = (*offset).min(self.order.len().saturating_sub(height));
        let end = (*offset + height).min(self.order.len());
        let min = std::array::from_fn::<usize, COLUMNS, _>(|i| {
            if CUTTABLE[i] {
                HEADER[i].chars().count().max(4)
            } else {
                self.natural[i]
            }
        });
        let widths = column_widths(&self.natural, &min, usize::from(inner.width), 1);
        let cell = |i: usize, text: String| Cell::from(fit(&text, usize::from(widths[i])));
        let first = *offset;
        let rows = self.order[first..end].iter().enumerate().map(|(n, &i)| {
            let fd = &scan.findings[i];
            let style = match rank(fd) {
                0 => theme.danger(),
                1..=3 => theme.due_soon(),
                _ => theme.muted(),
            };
            let style = if first + n == self.selected {
                style.patch(theme.selected())
            } else {
                style
            };
            let since = fd
                .location
                .earliest()
                .map_or("-".to_string(), |d| d.format("%Y-%m-%d").to_string());
            Row::new(vec![
                cell(0, if self.marked.contains(&i) { "✓" } else { " " }.into()),
                cell(1, label(fd).into()),
                cell(2, key_text(fd)),
                cell(3, place(fd)),
                cell(4, fd.what.clone()),
                cell(5, since),
                cell(6, agents_text(scan, fd)),
            ])
            .style(style)
        });
        let header = Row::new(HEADER).style(theme.header());
        let table = Table::new(rows, widths.iter().copied().map(Constraint::Length))
            .header(header)
            .column_spacing(1);
        f.render_widget(table, inner);
    }

    /// The finding under the cursor: its key's blast radius, or why it cannot start one.
    fn render_detail(&self, scan: &SavedScan, theme: Theme, f: &mut Frame, area: Rect) {
        let mut lines = Vec::new();
        if let Some(fd) = self.current() {
            lines.push(Line::from(format!(
                "{} · {} · {}",
                fd.location.display(),
                fd.what,
                fd.hint
            )));
            match why_not_startable(fd) {
                None => {
                    if let Some(k) = scan
                        .keys
                        .iter()
                        .find(|k| Some(&k.id) == fd.verdict.key.as_ref())
                    {
                        let agents: Vec<String> = k
                            .blast_radius
                            .agents
                            .iter()
                            .map(|a| {
                                format!(
                                    "{} (owner {}, on-call {})",
                                    a.id,
                                    a.owner.as_deref().unwrap_or("unknown"),
                                    a.oncall.as_deref().unwrap_or("unknown")
                                )
                            })
                            .collect();
                        lines.push(Line::from(format!(
                            "{}: {}; held by {}",
                            k.id,
                            k.status.as_str(),
                            if agents.is_empty() {
                                "no agent".to_string()
                            } else {
                                agents.join(", ")
                            }
                        )));
                    }
                }
                Some(why) => lines.push(Line::from(Span::styled(why, theme.due_soon()))),
            }
            if let Some(n) = &fd.verdict.note {
                lines.push(Line::from(Span::styled(n.clone(), theme.muted())));
            }
        }
        lines.push(Line::from(Span::styled(
            strings::LEAKS_HINT,
            theme.key_hint(),
        )));
        f.render_widget(
            Paragraph::new(lines)
                .wrap(Wrap { trim: false })
                .block(Block::bordered().title(Span::styled(" Finding ", theme.title()))),
            area,
        );
    }
}

fn message(f: &mut Frame, area: Rect, text: &str, style: Style, theme: Theme) {
    let block = Block::bordered().title(Span::styled(" Leaks ", theme.title()));
    f.render_widget(
        Paragraph::new(Span::styled(text.to_string(), style))
            .wrap(Wrap { trim: false })
            .block(block),
        area,
    );
}

/// `path:line`, and the commit's short id for a value found in history.
fn place(f: &Finding) -> String {
    let l = &f.location;
    let mut s = l.path.clone();
    if let Some(n) = l.line {
        s.push_str(&format!(":{n}"));
    }
    if let Some(c) = &l.commit {
        s.push_str(&format!(" @{}", c.get(..7).unwrap_or(c)));
    }
    s
}

/// The matched key, the candidates of an ambiguous hint, or `unmanaged`.
fn key_text(f: &Finding) -> String {
    match (&f.verdict.key, f.verdict.status) {
        (Some(k), _) => k.clone(),
        (None, KeyState::Ambiguous) => format!("one of {}", f.verdict.candidates.join(", ")),
        (None, KeyState::Withheld) => "?".into(),
        (None, _) => "unmanaged".into(),
    }
}

/// The agents holding the matched key (its blast radius as the scan saw it).
fn agents_text(scan: &SavedScan, f: &Finding) -> String {
    let Some(k) = &f.verdict.key else {
        return "-".into();
    };
    scan.keys
        .iter()
        .find(|s| &s.id == k)
        .map_or("-".into(), |s| {
            s.blast_radius
                .agents
                .iter()
                .map(|a| a.id.as_str())
                .collect::<Vec<_>>()
                .join(",")
        })
}

/// The other verdicts that occurred, and what was read (zero counts left out).
fn counts(t: &crate::scan::summary::Totals, c: &crate::scan::Coverage) -> String {
    let mut parts = Vec::new();
    for (n, what) in [
        (t.unmanaged, "unmanaged"),
        (t.ambiguous, "ambiguous"),
        (t.withheld, "withheld"),
        (t.rotated, "already rotated"),
    ] {
        if n > 0 {
            parts.push(format!("{n} {what}"));
        }
    }
    let mut read = vec![format!("{} files", c.files)];
    if c.commits > 0 {
        read.push(format!("{} commits", c.commits));
    }
    if c.report_entries > 0 {
        read.push(format!("{} report entries", c.report_entries));
    }
    parts.push(format!("read {}", read.join(", ")));
    if !c.unreadable.is_empty() {
        parts.push(format!(
            "{} UNREADABLE: the scan is incomplete",
            c.unreadable.len()
        ));
    }
    format!(" · {}", parts.join(" · "))
}

fn ago(now: DateTime<Utc>, then: DateTime<Utc>) -> String {
    let mins = (now - then).num_minutes().max(0);
    match mins {
        0 => "just now".into(),
        1..60 => format!("{mins} min ago"),
        60..2880 => format!("{} h ago", mins / 60),
        _ => format!("{} days ago", mins / 1440),
    }
}
