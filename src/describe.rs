//! One line of plain text per record entry: what the headless CLI prints, what the report's
//! timeline shows and what the console's live log lists.

use serde_json::Value;

use crate::record::Entry;

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

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

pub fn describe(e: &Entry) -> String {
    let d = &e.data;
    let action = s(d, "action");
    match e.kind.as_str() {
        "incident_opened" => format!(
            "incident {} opened ({}, {}) for {}",
            s(d, "incident"),
            if d["dry_run"] == true {
                "DRILL: writes are shown, never sent"
            } else {
                "live"
            },
            s(d, "order"),
            d["keys"]
                .as_array()
                .map(|a| a
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", "))
                .unwrap_or_default()
        ),
        "incident_resumed" => "incident resumed: re-reading provider and store state".into(),
        "step_started" => format!("== {}", s(d, "title")),
        "plan" if d["manual"] == true => format!("{action}: manual step for the operator"),
        "plan" => format!(
            "{action}: plan {} ({})",
            d["plan"]["summary"].as_str().unwrap_or(""),
            d["plan"]["access"].as_str().unwrap_or("")
        ),
        "not_sent" if d["manual"] == true => format!(
            "{action}: DRILL, would ask the operator: {}",
            d["would_ask"]
                .as_array()
                .and_then(|a| a.iter().rev().find_map(Value::as_str))
                .unwrap_or("")
        ),
        "not_sent" => format!("{action}: DRILL, would send: {}", s(d, "summary")),
        "request_sent" => format!("{action}: sent {} {}", s(d, "method"), s(d, "url")),
        "response" if d["ok"] == true => format!("{action}: ok {}", compact(d)),
        "response" => format!(
            "{action}: FAILED{} {}",
            d.get("status")
                .and_then(Value::as_u64)
                .map(|s| format!(" (HTTP {s})"))
                .unwrap_or_default(),
            s(d, "error")
        ),
        "evidence" => {
            let text = s(d, "text");
            if text.is_empty() {
                format!("{action}: {}", compact(d))
            } else {
                format!("{action}: {text}")
            }
        }
        "operator_input" => {
            let via = s(d, "via");
            let reason = s(d, "reason");
            let mut line = format!("{action}: operator {}", s(d, "decision"));
            if !via.is_empty() {
                line.push_str(&format!(" (via {via})"));
            }
            if d["pasted"] == true {
                line.push_str(&format!("pasted a replacement {}", s(d, "hint")));
            }
            if !reason.is_empty() {
                line.push_str(&format!(": {reason}"));
            }
            line
        }
        "action_done" if d["status"] == "skipped" => {
            format!("{action}: skipped ({})", s(d, "reason"))
        }
        "action_done" => format!("{action}: done"),
        "step_finished" => format!(
            "== {} {} in {} ms",
            e.step.as_deref().unwrap_or(""),
            s(d, "status"),
            d["duration_ms"]
        ),
        "step_failed" => format!(
            "{action}: STEP FAILED{}: {}{}",
            d.get("status")
                .and_then(Value::as_u64)
                .map(|s| format!(" (HTTP {s})"))
                .unwrap_or_default(),
            s(d, "error"),
            if d["retryable"] == true {
                " [retryable]"
            } else {
                ""
            }
        ),
        "incident_closed" => format!(
            "incident closed: {} after {} ms",
            s(d, "outcome"),
            d["total_ms"]
        ),
        other => format!("{other}: {}", compact(d)),
    }
}
