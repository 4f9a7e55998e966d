//! Every style the console uses, in one place. `NO_COLOR` turns colour off and leaves
//! emphasis (bold, reverse) so state stays readable on any terminal.

use ratatui::style::{Color, Modifier, Style};

#[derive(Debug, Clone, Copy)]
pub struct Theme {
    color: bool,
}

impl Theme {
    pub fn from_env() -> Self {
        Self {
            color: std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        }
    }

    #[cfg(feature = "testing")]
    pub fn plain() -> Self {
        Self { color: false }
    }

    /// Colours on, whatever the environment says (tests of the colours themselves).
    #[cfg(feature = "testing")]
    pub fn colored() -> Self {
        Self { color: true }
    }

    fn fg(&self, c: Color) -> Style {
        if self.color {
            Style::new().fg(c)
        } else {
            Style::new()
        }
    }

    pub fn title(&self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }
    pub fn header(&self) -> Style {
        Style::new().add_modifier(Modifier::BOLD)
    }
    pub fn selected(&self) -> Style {
        Style::new().add_modifier(Modifier::REVERSED)
    }
    pub fn overdue(&self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }
    pub fn due_soon(&self) -> Style {
        self.fg(Color::Yellow)
    }
    pub fn ok(&self) -> Style {
        self.fg(Color::Green)
    }
    pub fn muted(&self) -> Style {
        self.fg(Color::DarkGray)
    }
    pub fn danger(&self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }
    pub fn banner(&self) -> Style {
        if self.color {
            Style::new()
                .fg(Color::Black)
                .bg(Color::Yellow)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD)
        }
    }
    pub fn key_hint(&self) -> Style {
        self.fg(Color::Cyan)
    }
    /// A diff's added lines.
    pub fn diff_added(&self) -> Style {
        self.fg(Color::Green)
    }
    /// A diff's removed lines.
    pub fn diff_removed(&self) -> Style {
        self.fg(Color::Red)
    }
    /// A diff's hunk headers (`@@ -3,1 +3,2 @@`).
    pub fn diff_hunk(&self) -> Style {
        self.fg(Color::DarkGray).add_modifier(Modifier::DIM)
    }
}
