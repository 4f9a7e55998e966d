//! The frame around the screens: the training banner, the header, the footer, the help
//! overlay and the abort question; the top screen and any dialog draw themselves. Rendering
//! reads the app's state and never changes it (scroll offsets live in `ViewState`).

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use ratatui::crossterm::event::{MouseButton, MouseEvent, MouseEventKind};

use super::action::Action;
use super::app::{App, Screen};
use super::keymap::{Mode, bindings};
use super::strings;
use super::theme::Theme;
use super::widgets::popup;

/// What a mouse report does where the terminal sends one: the wheel moves the selection of
/// the list on screen (inventory, incidents), a left click selects the row under it. Reads
/// the layout `render` draws and the scroll offsets it left in `view`.
pub fn mouse_action(app: &App, view: &ViewState, m: MouseEvent) -> Option<Action> {
    let list = match app.mode() {
        Mode::Inventory => Some((
            // The header line, the filter line, the table's border and its header row.
            2 + 2,
            view.table_offset,
            app.inventory.visible.len(),
        )),
        Mode::Incidents => Some((1 + 2, view.incidents_offset, app.fleet.incidents.len())),
        _ => None,
    }?;
    let (rows_start, offset, len) = list;
    match m.kind {
        MouseEventKind::ScrollDown => Some(Action::Down),
        MouseEventKind::ScrollUp => Some(Action::Up),
        MouseEventKind::Down(MouseButton::Left) => {
            let first = u16::from(app.training) + rows_start;
            let at = offset + usize::from(m.row.checked_sub(first)?);
            (at < len).then_some(Action::SelectRow(at))
        }
        _ => None,
    }
}

/// Scroll positions that only rendering needs.
#[derive(Debug, Default)]
pub struct ViewState {
    pub table_offset: usize,
    pub incidents_offset: usize,
    pub leaks_offset: usize,
}

pub fn render(app: &App, view: &mut ViewState, theme: Theme, f: &mut Frame) {
    let area = f.area();
    let banner_h = u16::from(app.training);
    let [banner, header, body, footer] = Layout::vertical([
        Constraint::Length(banner_h),
        Constraint::Length(1),
        Constraint::Fill(1),
        Constraint::Length(1),
    ])
    .areas(area);
    if app.training {
        let width = usize::from(banner.width);
        let text = format!("{:^width$}", strings::TRAINING_BANNER.trim());
        f.render_widget(Paragraph::new(Span::styled(text, theme.banner())), banner);
    }
    render_header(app, theme, f, header);
    match &app.screen {
        Screen::Inventory => app.inventory.render(
            &app.fleet.last_drill,
            &mut view.table_offset,
            theme,
            f,
            body,
        ),
        Screen::Key(k) => k.render(&app.fleet, &app.inventory, theme, f, body),
        Screen::Incident => app
            .incident
            .render(app.prompt.as_ref(), app.now, theme, f, body),
        Screen::Incidents => app.incidents.render(
            &app.fleet.incidents,
            &mut view.incidents_offset,
            theme,
            f,
            body,
        ),
        Screen::Leaks => app
            .leaks
            .render(app.now, &mut view.leaks_offset, theme, f, body),
    }
    render_footer(app, theme, f, footer);
    if let Some(d) = &app.start {
        d.render(theme, f, area);
    }
    if app.abort_confirm {
        let (title, text) = if app.quit_after_run {
            (" Quit? ", strings::QUIT_CONFIRM)
        } else {
            (" Abort? ", strings::ABORT_CONFIRM)
        };
        popup(f, area, title, vec![Line::from(text)], 60, 5, theme);
    }
    if app.help {
        render_help(app, theme, f, area);
    }
}

fn render_header(app: &App, theme: Theme, f: &mut Frame, area: Rect) {
    let drill = app
        .fleet
        .days_since_last_drill(app.today)
        .map_or("no drill yet".to_string(), |d| {
            format!("last drill {d} d ago")
        });
    let mut spans = vec![
        Span::styled(format!(" {} ", strings::APP), theme.title()),
        Span::raw(format!("{} keys · ", app.inventory.rows.len())),
        Span::styled(
            format!("{} overdue", app.inventory.overdue_count()),
            if app.inventory.overdue_count() > 0 {
                theme.overdue()
            } else {
                Style::new()
            },
        ),
        Span::raw(format!(
            " · {} due soon · {} open incidents · {drill}",
            app.inventory.due_soon_count(),
            app.fleet.open_incidents
        )),
    ];
    if !app.fleet.drill_due_providers.is_empty() {
        spans.push(Span::styled(
            format!(
                " · {} providers due a drill",
                app.fleet.drill_due_providers.len()
            ),
            theme.due_soon(),
        ));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn render_footer(app: &App, theme: Theme, f: &mut Frame, area: Rect) {
    let line = match &app.notice {
        Some(n) => Line::from(Span::styled(format!(" {n}"), theme.due_soon())),
        None => {
            let hints: Vec<String> = bindings(app.mode())
                .iter()
                .take(7)
                .map(|(k, d, _)| format!("{k} {d}"))
                .collect();
            Line::from(Span::styled(
                format!(" {}", hints.join(" · ")),
                theme.muted(),
            ))
        }
    };
    f.render_widget(Paragraph::new(line), area);
}

fn render_help(app: &App, theme: Theme, f: &mut Frame, area: Rect) {
    let mode = app.mode();
    let mut lines: Vec<Line> = bindings(mode)
        .iter()
        .map(|(k, d, _)| {
            Line::from(vec![
                Span::styled(format!("{k:<14}"), theme.key_hint()),
                Span::raw(*d),
            ])
        })
        .collect();
    if matches!(
        mode,
        Mode::Inventory | Mode::Key | Mode::Incident | Mode::Incidents | Mode::Leaks
    ) {
        lines.push(Line::from(""));
        lines.push(Line::from(Span::styled(
            "Nothing destructive is one keystroke away: revocations need the key id typed.",
            theme.muted(),
        )));
    }
    let height = lines.len() as u16 + 2;
    popup(f, area, strings::HELP_TITLE, lines, 76, height, theme);
}
