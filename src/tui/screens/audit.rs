//! The audit view, shown in place of the incident screen's detail with `a`: the usage chart
//! (baseline dim, exposure window bright) and the rules' verdicts and findings, read from the
//! run's record projection so the console and the report agree.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Bar, BarChart, BarGroup, Block, Paragraph, Wrap};

use super::super::theme::Theme;
use crate::record::{IncidentState, KeyProgress};

/// What the audit view draws: one key's usage and verdicts, and every key's unavailable
/// evidence.
#[derive(Debug, Clone, Copy)]
pub struct AuditView<'a> {
    /// The key whose audit is shown (the run's `audit_key`); `None` before any audit.
    pub key: Option<&'a KeyProgress>,
    pub state: &'a IncidentState,
}

impl AuditView<'_> {
    pub fn render(&self, theme: Theme, f: &mut Frame, area: Rect) {
        let [chart_area, findings_area] =
            Layout::vertical([Constraint::Percentage(55), Constraint::Fill(1)]).areas(area);
        let block = Block::bordered().title(Span::styled(
            " Usage per day: baseline (dim) and exposure window ",
            theme.title(),
        ));
        let audit = self.key;
        let usage = audit.map(|k| k.usage.as_slice()).unwrap_or_default();
        let window_start = audit.and_then(|k| k.window_start);
        if usage.is_empty() {
            f.render_widget(
                Paragraph::new(Span::styled(
                    " no usage fetched yet (the audit step fills this)",
                    theme.muted(),
                ))
                .block(block),
                chart_area,
            );
        } else {
            let inner_w = chart_area.width.saturating_sub(2) as usize;
            let shown = (inner_w / 4).max(1);
            let start = usage.len().saturating_sub(shown);
            let bars: Vec<Bar> = usage[start..]
                .iter()
                .map(|b| {
                    let in_window = window_start.is_none_or(|w| b.end > w);
                    let style = if in_window {
                        theme.danger()
                    } else {
                        theme.muted()
                    };
                    Bar::default()
                        .value(b.requests)
                        .label(Line::from(b.start.format("%d").to_string()))
                        .style(style)
                        .value_style(Style::new())
                })
                .collect();
            let chart = BarChart::default()
                .block(block)
                .data(BarGroup::default().bars(&bars))
                .bar_width(3)
                .bar_gap(1);
            f.render_widget(chart, chart_area);
        }
        let mut lines = Vec::new();
        let rules = audit.map(|k| k.rules.as_slice()).unwrap_or_default();
        if rules.is_empty() {
            lines.push(Line::from(Span::styled(
                "rules not evaluated yet",
                theme.muted(),
            )));
        }
        for r in rules {
            let style = match r.status.as_str() {
                "findings" => theme.danger(),
                "clean" => theme.ok(),
                _ => theme.muted(),
            };
            lines.push(Line::from(vec![
                Span::styled(format!("{:<14}", r.rule), style),
                Span::styled(format!("{:<14}", r.status.replace('_', " ")), style),
                Span::styled(r.source.clone(), theme.muted()),
            ]));
            for finding in &r.findings {
                lines.push(Line::from(format!("  • {finding}")));
            }
        }
        for u in self
            .state
            .per_key
            .values()
            .flat_map(|k| &k.evidence_unavailable)
        {
            lines.push(Line::from(Span::styled(
                format!("evidence unavailable ({}): {}", u.action, u.reason),
                theme.danger(),
            )));
        }
        f.render_widget(
            Paragraph::new(lines)
                .wrap(Wrap { trim: false })
                .block(Block::bordered().title(Span::styled(" Findings ", theme.title()))),
            findings_area,
        );
    }
}
