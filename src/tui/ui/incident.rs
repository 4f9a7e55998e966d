//! A running incident: steps with status and timers on the left; the current step's
//! checklist, the request plan, the question waiting for the operator and the live log on
//! the right. `a` switches the right side to the audit view.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Bar, BarChart, BarGroup, Block, Paragraph, Wrap};

use super::super::action::PromptKind;
use super::super::app::{App, InputPurpose, RunView, StepStatus};
use super::super::strings;
use super::super::theme::Theme;
use super::{duration_text, fit};

pub fn render(app: &App, theme: Theme, f: &mut Frame, area: Rect) {
    let Some(run) = &app.run else {
        f.render_widget(
            Paragraph::new(Span::styled(
                " No incident is running. Select a key and press i (incident) or d (drill).",
                theme.muted(),
            )),
            area,
        );
        return;
    };
    let mut top = vec![];
    if run.dry_run {
        top.push(Line::from(Span::styled(
            strings::DRY_RUN_BANNER,
            theme.banner(),
        )));
    }
    let id = run.id.clone().unwrap_or_else(|| "opening…".into());
    let mut status = vec![
        Span::styled(
            format!(" {} {id} ", if run.dry_run { "Drill" } else { "Incident" }),
            theme.title(),
        ),
        Span::raw(format!("· {} · {}", run.current_key, run.order.as_str())),
    ];
    if let Some(o) = &run.outcome {
        status.push(Span::styled(
            format!("  {}", o.to_uppercase()),
            if o == "completed" {
                theme.ok()
            } else {
                theme.danger()
            },
        ));
    }
    let not_proven: Vec<&str> = run.state.not_proven().collect();
    if !run.dry_run && !not_proven.is_empty() {
        status.push(Span::styled(
            format!("  REVOCATION NOT PROVEN ({})", not_proven.join(", ")),
            theme.danger(),
        ));
    }
    if let Some(outage) = run.outage(app.now) {
        let text = format!(
            "  OUTAGE {} {}",
            duration_text(outage.num_milliseconds().max(0)),
            if run.restored_at.is_some() {
                "(restored)"
            } else {
                "(agents down until restored)"
            }
        );
        status.push(Span::styled(
            text,
            if run.restored_at.is_some() {
                theme.ok()
            } else {
                theme.danger()
            },
        ));
    }
    top.push(Line::from(status));
    let [head, body] =
        Layout::vertical([Constraint::Length(top.len() as u16), Constraint::Fill(1)]).areas(area);
    f.render_widget(Paragraph::new(top), head);

    let [left, right] =
        Layout::horizontal([Constraint::Length(28), Constraint::Fill(1)]).areas(body);
    render_steps(app, run, theme, f, left);
    if run.show_audit {
        render_audit(run, theme, f, right);
    } else {
        render_detail(app, run, theme, f, right);
    }
}

fn render_steps(app: &App, run: &RunView, theme: Theme, f: &mut Frame, area: Rect) {
    let mut lines = Vec::new();
    for key in &run.keys {
        if run.keys.len() > 1 {
            lines.push(Line::from(Span::styled(fit(key, 26), theme.header())));
        }
        for s in run.steps.get(key).into_iter().flatten() {
            let (symbol, style) = match s.status {
                StepStatus::Pending => ("○", theme.muted()),
                StepStatus::Running => ("▶", theme.key_hint()),
                StepStatus::Done => ("✔", theme.ok()),
                StepStatus::Skipped => ("–", theme.muted()),
                StepStatus::Failed => ("✘", theme.danger()),
            };
            let time = match (s.status, s.duration_ms, s.started) {
                (_, Some(ms), _) => duration_text(ms),
                (StepStatus::Running | StepStatus::Failed, None, Some(t)) => {
                    duration_text((app.now - t).num_milliseconds().max(0))
                }
                _ => String::new(),
            };
            lines.push(Line::from(vec![
                Span::styled(format!(" {symbol} "), style),
                Span::styled(format!("{:<11}", s.id), style),
                Span::styled(format!("{time:>8}"), theme.muted()),
            ]));
        }
        if let Some(k) = run.state.per_key.get(key) {
            if k.proof.not_proven() && !run.dry_run {
                lines.push(Line::from(Span::styled(
                    " ! revocation NOT proven",
                    theme.danger(),
                )));
            }
            if !k.evidence_unavailable.is_empty() {
                lines.push(Line::from(Span::styled(
                    format!(" ! {} evidence unavailable", k.evidence_unavailable.len()),
                    theme.danger(),
                )));
            }
        }
    }
    if let Some(e) = &run.error {
        lines.push(Line::from(""));
        lines.push(Line::from(Span::styled(e.clone(), theme.danger())));
    }
    lines.push(Line::from(""));
    lines.push(Line::from(Span::styled(" a audit · ? keys", theme.muted())));
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::bordered().title(Span::styled(" Steps ", theme.title()))),
        area,
    );
}

fn prompt_lines(app: &App, theme: Theme) -> Vec<Line<'static>> {
    let Some(p) = &app.prompt else {
        return Vec::new();
    };
    let typing = |purpose: InputPurpose| app.input == Some(purpose);
    let mut out = Vec::new();
    match &p.kind {
        PromptKind::Approve {
            key,
            step,
            action,
            summary,
            rendered,
            confirm_text,
        } => {
            let destructive = confirm_text.is_some();
            out.push(Line::from(Span::styled(
                format!("APPROVAL NEEDED · {key} · {step} · {action}"),
                if destructive {
                    theme.danger()
                } else {
                    theme.header()
                },
            )));
            out.push(Line::from(summary.clone()));
            // The answer line comes before the plan's details, so it stays on screen when the
            // box is too small for everything.
            match confirm_text {
                Some(expected) => {
                    out.push(Line::from(Span::styled(
                        strings::TYPE_TO_CONFIRM,
                        theme.danger(),
                    )));
                    let typed = if typing(InputPurpose::Confirm) {
                        app.text.clone()
                    } else {
                        String::new()
                    };
                    out.push(Line::from(vec![
                        Span::raw(format!("  ({expected}) > ")),
                        Span::styled(format!("{typed}▏"), theme.key_hint()),
                    ]));
                }
                None => out.push(Line::from(Span::styled(
                    strings::APPROVE_HINT,
                    theme.key_hint(),
                ))),
            }
            for l in rendered.lines() {
                out.push(Line::from(Span::styled(format!("  {l}"), theme.muted())));
            }
        }
        PromptKind::Manual {
            key,
            step,
            action,
            instructions,
        } => {
            out.push(Line::from(Span::styled(
                format!("MANUAL STEP · {key} · {step} · {action}"),
                theme.header(),
            )));
            out.push(Line::from(Span::styled(
                strings::MANUAL_HINT,
                theme.key_hint(),
            )));
            out.push(Line::from(Span::styled(
                format!("  > {}▏", app.text),
                theme.key_hint(),
            )));
            for i in instructions {
                out.push(Line::from(format!("• {i}")));
            }
        }
        PromptKind::Paste { key, instructions } => {
            out.push(Line::from(Span::styled(
                format!("REPLACEMENT KEY · {key}"),
                theme.header(),
            )));
            out.push(Line::from(Span::styled(
                strings::PASTE_HINT,
                theme.key_hint(),
            )));
            // The value is never drawn: only that something was typed.
            let n = app.paste_len();
            let shown = if n == 0 {
                String::new()
            } else {
                format!("{} ({n} characters, hidden)", "•".repeat(n.min(12)))
            };
            out.push(Line::from(Span::styled(
                format!("  > {shown}▏"),
                theme.key_hint(),
            )));
            for i in instructions {
                out.push(Line::from(format!("• {i}")));
            }
        }
        PromptKind::Failure {
            key,
            step,
            action,
            error,
            status,
        } => {
            let status = status.map_or(String::new(), |s| format!(" · HTTP {s}"));
            out.push(Line::from(Span::styled(
                format!("STEP FAILED · {key} · {step} · {action}{status}"),
                theme.danger(),
            )));
            out.push(Line::from(error.clone()));
            if typing(InputPurpose::SkipReason) {
                out.push(Line::from(Span::styled(
                    strings::SKIP_REASON,
                    theme.key_hint(),
                )));
                out.push(Line::from(Span::styled(
                    format!("  > {}▏", app.text),
                    theme.key_hint(),
                )));
            } else {
                out.push(Line::from(Span::styled(
                    strings::FAILED_HINT,
                    theme.key_hint(),
                )));
            }
        }
    }
    out
}

fn render_detail(app: &App, run: &RunView, theme: Theme, f: &mut Frame, area: Rect) {
    let prompt = prompt_lines(app, theme);
    let mut guide = vec![Line::from(Span::styled(
        run.step_title.clone(),
        theme.header(),
    ))];
    for c in &run.checklist {
        guide.push(Line::from(format!("☐ {c}")));
    }
    if let Some(n) = &run.note {
        guide.push(Line::from(Span::styled(
            format!("note: {n}"),
            theme.muted(),
        )));
    }
    if prompt.is_empty()
        && let Some(plan) = &run.plan
    {
        guide.push(Line::from(Span::styled("request plan", theme.header())));
        for l in plan.lines().take(6) {
            guide.push(Line::from(Span::styled(format!("  {l}"), theme.muted())));
        }
    }
    // The question gets the room it needs first; the checklist the rest; the log what is left.
    let width = area.width.saturating_sub(2).max(1) as usize;
    let prompt_h = if prompt.is_empty() {
        0
    } else {
        (wrapped_height(&prompt, width) + 2).min(area.height.saturating_sub(4))
    };
    let guide_h = (wrapped_height(&guide, width) + 2)
        .min(area.height.saturating_sub(prompt_h + 3))
        .max(3);
    let [g, p, log] = Layout::vertical([
        Constraint::Length(guide_h),
        Constraint::Length(prompt_h),
        Constraint::Fill(1),
    ])
    .areas(area);
    f.render_widget(
        Paragraph::new(guide)
            .wrap(Wrap { trim: false })
            .block(Block::bordered().title(Span::styled(" Step ", theme.title()))),
        g,
    );
    if !prompt.is_empty() {
        f.render_widget(
            Paragraph::new(prompt).wrap(Wrap { trim: false }).block(
                Block::bordered()
                    .border_style(theme.danger())
                    .title(Span::styled(" Waiting for you ", theme.danger())),
            ),
            p,
        );
    }
    let inner_h = log.height.saturating_sub(2) as usize;
    let width = log.width.saturating_sub(2) as usize;
    let start = run.log.len().saturating_sub(inner_h);
    let lines: Vec<Line> = run.log[start..]
        .iter()
        .map(|l| Line::from(fit(l, width)))
        .collect();
    f.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(Span::styled(" Log ", theme.title()))),
        log,
    );
}

/// Rows a paragraph takes when wrapped to `width` (character count; close enough for layout).
fn wrapped_height(lines: &[Line], width: usize) -> u16 {
    let rows: usize = lines.iter().map(|l| l.width().max(1).div_ceil(width)).sum();
    u16::try_from(rows).unwrap_or(u16::MAX)
}

fn render_audit(run: &RunView, theme: Theme, f: &mut Frame, area: Rect) {
    let [chart_area, findings_area] =
        Layout::vertical([Constraint::Percentage(55), Constraint::Fill(1)]).areas(area);
    let block = Block::bordered().title(Span::styled(
        " Usage per day: baseline (dim) and exposure window ",
        theme.title(),
    ));
    let audit = run.audit_key();
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
    for u in run
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
