//! Small drawing helpers every screen and dialog uses: a centred popup, text cut to a width,
//! durations as people read them.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};

use super::theme::Theme;

/// A centred box over the screen.
pub fn popup(
    f: &mut Frame,
    area: Rect,
    title: &str,
    lines: Vec<Line>,
    width: u16,
    height: u16,
    theme: Theme,
) {
    let w = width.min(area.width);
    let h = height.min(area.height);
    let rect = Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    };
    f.render_widget(Clear, rect);
    let block = Block::bordered().title(Span::styled(title.to_string(), theme.title()));
    f.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: false }),
        rect,
    );
}

/// Cut text to a width, marking the cut.
pub fn fit(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let mut s: String = text.chars().take(width.saturating_sub(1)).collect();
    s.push('…');
    s
}

pub fn duration_text(ms: i64) -> String {
    let secs = ms / 1000;
    if ms < 1000 {
        format!("{ms}ms")
    } else if secs < 60 {
        format!("{}.{}s", secs, (ms % 1000) / 100)
    } else {
        format!("{}m{:02}s", secs / 60, secs % 60)
    }
}

/// Column widths for a table `width` cells wide: every column as wide as its widest cell
/// (header included) when that fits; when it does not, the widest column gives up a cell,
/// then whichever is widest then, and so on, so short columns (agents, scopes) keep their
/// text while a long one is cut. No column goes below its `min` (a column whose `min` is
/// its natural width, such as a date, is never cut); cells are cut with [`fit`].
pub fn column_widths(natural: &[usize], min: &[usize], width: usize, spacing: usize) -> Vec<u16> {
    let mut w = natural.to_vec();
    let gaps = spacing * natural.len().saturating_sub(1);
    let mut total: usize = w.iter().sum::<usize>() + gaps;
    while total > width {
        let widest = (0..w.len())
            .filter(|&i| w[i] > min.get(i).copied().unwrap_or(0).min(natural[i]))
            .max_by_key(|&i| (w[i], std::cmp::Reverse(i)));
        let Some(i) = widest else { break };
        w[i] -= 1;
        total -= 1;
    }
    w.into_iter()
        .map(|x| u16::try_from(x).unwrap_or(u16::MAX))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_keep_their_width_when_they_fit() {
        assert_eq!(column_widths(&[5, 3, 10], &[3, 3, 3], 40, 1), [5, 3, 10]);
    }

    #[test]
    fn the_widest_column_is_cut_first_and_short_ones_stay_whole() {
        // 30 + 8 + 6 + 2 gaps = 46 in 30 cells: the first gives up 16.
        assert_eq!(column_widths(&[30, 8, 6], &[3, 3, 3], 30, 1), [14, 8, 6]);
        // Once it is down to the next one's width they shrink together.
        assert_eq!(column_widths(&[12, 10, 4], &[3, 3, 4], 20, 1), [7, 7, 4]);
        assert_eq!(fit("research,support-bot", 8), "researc…");
    }

    #[test]
    fn fixed_columns_are_never_cut() {
        assert_eq!(column_widths(&[10, 10], &[3, 10], 12, 1), [3, 10]);
        let w = column_widths(&[10, 10], &[10, 10], 5, 1);
        assert_eq!(w, [10, 10], "nothing can give: the table is clipped");
    }
}
