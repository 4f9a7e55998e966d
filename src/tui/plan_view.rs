//! A request plan as the console draws it: one muted line per line of the plan, except an
//! inventory edit's body (`{"diff": "--- ...", ...}`), whose diff is drawn as a unified diff
//! (added lines green, removed red, hunk headers dim) instead of an escaped JSON string.

use ratatui::text::{Line, Span};
use serde_json::Value;

use super::theme::Theme;

/// Lines of a plan's text, indented by two spaces.
pub fn plan_lines(text: &str, theme: Theme) -> Vec<Line<'static>> {
    let mut out = Vec::new();
    for line in text.lines() {
        match edit_body(line) {
            Some((fields, diff)) => {
                if !fields.is_empty() {
                    out.push(Line::from(Span::styled(
                        format!("  {fields}"),
                        theme.muted(),
                    )));
                }
                out.extend(diff_lines(&diff, theme));
            }
            None => out.push(Line::from(Span::styled(format!("  {line}"), theme.muted()))),
        }
    }
    out
}

/// Whether a plan's text holds a diff (it then needs more room than a plain plan).
pub fn has_diff(text: &str) -> bool {
    text.lines().any(|l| edit_body(l).is_some())
}

/// A JSON body line that carries a `diff`: its other fields (`name: value`, joined) and the
/// diff text.
fn edit_body(line: &str) -> Option<(String, String)> {
    let line = line.trim();
    if !line.starts_with('{') {
        return None;
    }
    let Ok(Value::Object(body)) = serde_json::from_str::<Value>(line) else {
        return None;
    };
    let diff = body.get("diff")?.as_str()?.to_string();
    let fields = body
        .iter()
        .filter(|(k, _)| k.as_str() != "diff")
        .map(|(k, v)| match v {
            Value::String(s) => format!("{k}: {s}"),
            other => format!("{k}: {other}"),
        })
        .collect::<Vec<_>>()
        .join(" · ");
    Some((fields, diff))
}

/// A unified diff, one styled line per line.
pub fn diff_lines(diff: &str, theme: Theme) -> Vec<Line<'static>> {
    diff.lines()
        .map(|l| {
            let style = if l.starts_with("+++") || l.starts_with("---") {
                theme.header()
            } else if l.starts_with("@@") {
                theme.diff_hunk()
            } else if l.starts_with('+') {
                theme.diff_added()
            } else if l.starts_with('-') {
                theme.diff_removed()
            } else {
                theme.muted()
            };
            Line::from(Span::styled(format!("  {l}"), style))
        })
        .collect()
}
