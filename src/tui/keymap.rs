//! Keys to named actions, per screen and mode. The help overlay is generated from the same
//! table, so it always lists exactly what works.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::action::Action;

/// Which bindings apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Inventory,
    Key,
    Incident,
    Incidents,
    Leaks,
    /// A text field has focus (filter, typed confirmation, paste, skip reason).
    Text,
    /// A text field of the start dialog (exposure start, gateway logs, reason).
    Form,
    /// A yes/no question (start dialog, approval, abort confirmation).
    Dialog,
    /// A failed step waits for retry, skip, leave or abort.
    Failure,
}

/// (key label, what it does, action) for each mode, in help order.
pub fn bindings(mode: Mode) -> &'static [(&'static str, &'static str, Action)] {
    use Action::*;
    match mode {
        Mode::Inventory => &[
            ("↑/k ↓/j", "move", Down),
            ("PgUp PgDn g G", "page, top, bottom", PageDown),
            ("Enter", "open the key", Open),
            (
                "/",
                "filter by id, agent, provider, owner, scope",
                FilterStart,
            ),
            ("s", "cycle the sort", CycleSort),
            ("i", "start an incident on the selected key", StartIncident),
            ("d", "start a drill on the selected key", StartDrill),
            ("I", "incidents and drills", ShowIncidents),
            ("L", "leaks: the last scan's findings", ShowLeaks),
            ("?", "this help", Help),
            ("Esc", "clear the filter", Back),
            ("q", "quit (asks first while an incident runs)", Quit),
        ],
        Mode::Key => &[
            ("i", "start an incident on this key", StartIncident),
            ("d", "start a drill on this key", StartDrill),
            ("I", "incidents and drills", ShowIncidents),
            ("?", "this help", Help),
            ("Esc", "back", Back),
            ("q", "quit", Quit),
        ],
        Mode::Incident => &[
            ("a", "audit view: usage chart and findings", ToggleAudit),
            (
                "Ctrl-C",
                "abort after the current call (asks first)",
                Interrupt,
            ),
            ("?", "this help", Help),
            ("Esc", "back (the incident keeps running)", Back),
            ("q", "quit (asks first while the incident runs)", Quit),
        ],
        Mode::Incidents => &[
            ("↑/k ↓/j", "move", Down),
            ("Enter", "open", Open),
            ("r", "resume an interrupted incident", Resume),
            ("?", "this help", Help),
            ("Esc", "back", Back),
            ("q", "quit", Quit),
        ],
        Mode::Leaks => &[
            ("↑/k ↓/j", "move", Down),
            ("space", "mark the finding", ToggleMark),
            (
                "a",
                "mark every live inventory key (again: clear)",
                MarkLive,
            ),
            (
                "i",
                "start an incident on the marked (or this) finding",
                StartIncident,
            ),
            (
                "d",
                "start a drill on the marked (or this) finding",
                StartDrill,
            ),
            ("Enter", "open the matched key", Open),
            ("I", "incidents and drills", ShowIncidents),
            ("?", "this help", Help),
            ("Esc", "back", Back),
            ("q", "quit", Quit),
        ],
        Mode::Text => &[
            ("Enter", "submit", Submit),
            ("Backspace", "delete", Backspace),
            ("Esc", "cancel (declines a question)", Back),
        ],
        Mode::Form => &[
            ("Enter", "start", Submit),
            ("Tab S-Tab", "next / previous field", NextField),
            ("Backspace", "delete", Backspace),
            ("Esc", "back to the choices", Back),
        ],
        Mode::Dialog => &[
            ("y", "yes", Yes),
            ("n/Esc", "no", No),
            (
                "z",
                "toggle contain-first / zero-downtime (start dialog)",
                ToggleOrder,
            ),
            (
                "Tab",
                "exposure start, gateway logs, reason (start dialog)",
                NextField,
            ),
        ],
        Mode::Failure => &[
            ("r", "retry the action", Retry),
            ("s", "skip it (asks for a reason, recorded)", Skip),
            ("l", "leave this key failed (resume later)", LeaveFailed),
            ("a", "abort the incident (resumable)", Abort),
        ],
    }
}

pub fn map(mode: Mode, key: KeyEvent) -> Option<Action> {
    use Action::*;
    if key.modifiers.contains(KeyModifiers::CONTROL) {
        return match key.code {
            KeyCode::Char('c') => Some(Interrupt),
            _ => None,
        };
    }
    match mode {
        Mode::Text | Mode::Form => match key.code {
            KeyCode::Tab | KeyCode::BackTab if mode == Mode::Text => None,
            KeyCode::Tab => Some(NextField),
            KeyCode::BackTab => Some(PrevField),
            KeyCode::Enter => Some(Submit),
            KeyCode::Backspace => Some(Backspace),
            KeyCode::Esc => Some(Back),
            KeyCode::Char(c) => Some(Char(c)),
            KeyCode::Up => Some(Up),
            KeyCode::Down => Some(Down),
            _ => None,
        },
        Mode::Dialog => match key.code {
            KeyCode::Char('y') | KeyCode::Char('Y') => Some(Yes),
            KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc => Some(No),
            KeyCode::Char('z') => Some(ToggleOrder),
            KeyCode::Tab => Some(NextField),
            KeyCode::BackTab => Some(PrevField),
            KeyCode::Enter => Some(Submit),
            _ => None,
        },
        Mode::Failure => match key.code {
            KeyCode::Char('r') => Some(Retry),
            KeyCode::Char('s') => Some(Skip),
            KeyCode::Char('l') => Some(LeaveFailed),
            KeyCode::Char('a') => Some(Abort),
            KeyCode::Char('?') => Some(Help),
            _ => None,
        },
        _ => {
            let common = match key.code {
                // Esc only ever backs out (or clears the filter); q is the one way out.
                KeyCode::Esc => Some(Back),
                KeyCode::Char('q') => Some(Quit),
                KeyCode::Char('?') => Some(Help),
                KeyCode::Up | KeyCode::Char('k') => Some(Up),
                KeyCode::Down | KeyCode::Char('j') => Some(Down),
                KeyCode::PageUp => Some(PageUp),
                KeyCode::PageDown => Some(PageDown),
                KeyCode::Home | KeyCode::Char('g') => Some(Top),
                KeyCode::End | KeyCode::Char('G') => Some(Bottom),
                KeyCode::Enter => Some(Open),
                KeyCode::Char('I') => Some(ShowIncidents),
                _ => None,
            };
            if common.is_some() {
                return common;
            }
            match (mode, key.code) {
                (Mode::Inventory, KeyCode::Char('/')) => Some(FilterStart),
                (Mode::Inventory, KeyCode::Char('s')) => Some(CycleSort),
                (Mode::Inventory, KeyCode::Char('L')) => Some(ShowLeaks),
                (Mode::Inventory | Mode::Key | Mode::Leaks, KeyCode::Char('i')) => {
                    Some(StartIncident)
                }
                (Mode::Inventory | Mode::Key | Mode::Leaks, KeyCode::Char('d')) => Some(StartDrill),
                (Mode::Leaks, KeyCode::Char(' ')) => Some(ToggleMark),
                (Mode::Leaks, KeyCode::Char('a')) => Some(MarkLive),
                (Mode::Incident, KeyCode::Char('a')) => Some(ToggleAudit),
                (Mode::Incidents, KeyCode::Char('r')) => Some(Resume),
                _ => None,
            }
        }
    }
}
