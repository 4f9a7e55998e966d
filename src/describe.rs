//! One line of plain text per record entry: what the headless CLI prints, what the report's
//! timeline shows and what the console's live log lists.

use serde_json::Value;

use crate::record::{Entry, Event};

fn compact(v: &Value) -> String {
    match v {
        Value::Object(m) => m
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "key" | "action" | "ok" | "facts" | "buckets"))
            .map(|(k, v)| match v {
                Value::String(s) => format!("{k}={s}"),
                other => format!("{k}={other}"),
            })
            .collect::<Vec<_>>()
            .join(" "),
        other => other.to_string(),
    }
}

fn or_empty(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("")
}

fn ms(v: Option<i64>) -> String {
    v.map_or_else(|| "null".to_string(), |n| n.to_string())
}

/// The line for an entry the caller has already typed (`Event::of`), so it is parsed once.
pub(crate) fn describe_event(e: &Entry, event: &Event) -> String {
    let action = event.action().unwrap_or("");
    match event {
        Event::IncidentOpened(o) => format!(
            "incident {} opened ({}, {}) for {}",
            or_empty(&o.incident),
            if o.dry_run {
                "DRILL: writes are shown, never sent"
            } else {
                "live"
            },
            o.order_name().unwrap_or(""),
            o.keys.join(", ")
        ),
        Event::IncidentResumed(_) => "incident resumed: re-reading provider and store state".into(),
        Event::StepStarted(s) => format!("== {}", or_empty(&s.title)),
        Event::Plan(p) if p.manual => format!("{action}: manual step for the operator"),
        Event::Plan(p) => {
            let plan = p.plan.clone().unwrap_or_default();
            format!(
                "{action}: plan {} ({})",
                or_empty(&plan.summary),
                or_empty(&plan.access)
            )
        }
        Event::NotSent(n) if n.manual => format!(
            "{action}: DRILL, would ask the operator: {}",
            n.would_ask.last().map_or("", String::as_str)
        ),
        Event::NotSent(n) => format!("{action}: DRILL, would send: {}", or_empty(&n.summary)),
        Event::RequestSent(r) => format!(
            "{action}: sent {} {}",
            or_empty(&r.method),
            or_empty(&r.url)
        ),
        Event::Response(r) if r.ok => format!("{action}: ok {}", compact(&e.data)),
        Event::Response(r) => format!(
            "{action}: FAILED{} {}",
            r.status
                .flatten()
                .map(|s| format!(" (HTTP {s})"))
                .unwrap_or_default(),
            or_empty(&r.error)
        ),
        Event::Evidence(ev) => match ev.text.as_deref() {
            Some(text) if !text.is_empty() => format!("{action}: {text}"),
            _ => format!("{action}: {}", compact(&e.data)),
        },
        Event::OperatorInput(i) if i.customer_data.is_some() => {
            let mut line = format!(
                "{action}: could customer data have been reached? operator: {}",
                i.customer_data.map_or("", |a| a.as_str())
            );
            if let Some(via) = i.via.as_deref().filter(|v| !v.is_empty()) {
                line.push_str(&format!(" (via {via})"));
            }
            if let Some(note) = i.note.as_deref().filter(|n| !n.is_empty()) {
                line.push_str(&format!(": {note}"));
            }
            line
        }
        Event::OperatorInput(i) => {
            let mut line = format!("{action}: operator {}", or_empty(&i.decision));
            if let Some(via) = i.via.as_deref().filter(|v| !v.is_empty()) {
                line.push_str(&format!(" (via {via})"));
            }
            if i.pasted {
                line.push_str(&format!("pasted a replacement {}", or_empty(&i.hint)));
            }
            if let Some(reason) = i.reason.as_deref().filter(|r| !r.is_empty()) {
                line.push_str(&format!(": {reason}"));
            }
            line
        }
        Event::ActionDone(d) if d.is_skipped() => {
            format!("{action}: skipped ({})", or_empty(&d.reason))
        }
        Event::ActionDone(_) => format!("{action}: done"),
        Event::StepFinished(f) => format!(
            "== {} {} in {} ms",
            e.step.as_deref().unwrap_or(""),
            or_empty(&f.status),
            ms(f.duration_ms)
        ),
        Event::StepFailed(f) => format!(
            "{action}: STEP FAILED{}: {}{}",
            f.status.map(|s| format!(" (HTTP {s})")).unwrap_or_default(),
            or_empty(&f.error),
            if f.retryable { " [retryable]" } else { "" }
        ),
        Event::IncidentClosed(c) => format!(
            "incident closed: {} after {} ms",
            or_empty(&c.outcome),
            ms(c.total_ms)
        ),
        Event::Notification(_) | Event::Unknown { .. } => {
            format!("{}: {}", e.kind, compact(&e.data))
        }
    }
}
