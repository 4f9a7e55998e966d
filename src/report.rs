//! The incident summary in Markdown, rendered from the record alone (first form of step 4).

use serde_json::Value;

use crate::describe::describe;
use crate::inventory::Inventory;
use crate::record::Entry;

fn find<'a>(entries: &'a [Entry], key: &str, kind: &str, action: &str) -> Option<&'a Entry> {
    entries
        .iter()
        .rev()
        .find(|e| e.kind == kind && e.data["key"] == key && e.data["action"] == action)
}

pub fn render_markdown(id: &str, entries: &[Entry], inv: &Inventory) -> String {
    let mut out = String::new();
    let Some(first) = entries.first() else {
        return format!("# Incident {id}\n\n(empty record)\n");
    };
    let o = &first.data;
    let drill = o["dry_run"] == true;
    out.push_str(&format!(
        "# {} {id}\n\n",
        if drill { "Drill" } else { "Incident" }
    ));
    if drill {
        out.push_str("> DRILL: every write below was shown and recorded, never sent.\n\n");
    }
    let keys: Vec<&str> = o["keys"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    out.push_str("| | |\n|---|---|\n");
    out.push_str(&format!("| opened | {} |\n", first.ts));
    out.push_str(&format!("| keys | {} |\n", keys.join(", ")));
    out.push_str(&format!(
        "| order | {} |\n",
        o["order"].as_str().unwrap_or("")
    ));
    out.push_str(&format!(
        "| reason | {} |\n",
        o["reason"].as_str().unwrap_or("(none given)")
    ));
    out.push_str(&format!(
        "| exposed since | {} |\n",
        o["exposed_since"].as_str().unwrap_or("last rotation")
    ));
    let deadline = chrono::DateTime::parse_from_rfc3339(&first.ts)
        .ok()
        .map(|t| t + chrono::Duration::hours(i64::from(inv.policy.report_deadline_hours)));
    if let Some(d) = deadline {
        out.push_str(&format!(
            "| notification deadline | {} ({} h from detection) |\n",
            d.to_rfc3339(),
            inv.policy.report_deadline_hours
        ));
    }
    let status = entries
        .iter()
        .rev()
        .find(|e| e.kind == "incident_closed")
        .map_or("in progress", |e| e.data["outcome"].as_str().unwrap_or("?"));
    out.push_str(&format!(
        "| status | {status} |\n| record | {} entries, last hash {} |\n\n",
        entries.len(),
        entries.last().map_or("", |e| e.hash.as_str())
    ));

    for key in &keys {
        out.push_str(&format!("## Key `{key}`\n\n"));
        if let Some(k) = inv.key(key) {
            out.push_str(&format!(
                "- provider: {} · agents: {} · scopes: {}\n",
                k.provider,
                k.agents.join(", "),
                k.scopes.join(", ")
            ));
        }
        if let Some(e) = find(entries, key, "evidence", "locate") {
            out.push_str(&format!(
                "- located at the provider: {}\n",
                e.data["found"]["id"].as_str().unwrap_or("gone")
            ));
        }
        match find(entries, key, "evidence", "prove_revoked") {
            Some(e) => out.push_str(&format!(
                "- revocation evidence: {}\n",
                e.data["text"].as_str().unwrap_or("")
            )),
            None => out.push_str("- revocation evidence: none recorded\n"),
        }
        if let Some(e) = find(entries, key, "evidence", "create") {
            out.push_str(&format!(
                "- replacement: {} ({})\n",
                e.data["new_key_id"].as_str().unwrap_or("?"),
                e.data["hint"].as_str().unwrap_or("")
            ));
        }
        if let Some(e) = find(entries, key, "evidence", "store_write") {
            out.push_str(&format!(
                "- stored as version {} (was {}){}\n",
                plain(&e.data["version"]),
                plain(&e.data["previous_version"]),
                if e.data["pending"] == true {
                    ", pending until verified"
                } else {
                    ""
                }
            ));
        }
        if let Some(e) = find(entries, key, "evidence", "promote") {
            out.push_str(&format!(
                "- promoted: {}\n",
                e.data["text"].as_str().unwrap_or("")
            ));
        }
        if let Some(e) = find(entries, key, "evidence", "verify_new") {
            out.push_str(&format!(
                "- replacement verified: {}\n",
                e.data["text"].as_str().unwrap_or("")
            ));
        }
        if let Some(e) = find(entries, key, "evidence", "fetch_usage") {
            out.push_str(&format!(
                "- usage in the exposure window ({} to {}): {} requests, {} tokens, ${:.2}\n",
                e.data["window"]["start"].as_str().unwrap_or("?"),
                e.data["window"]["end"].as_str().unwrap_or("?"),
                e.data["requests"],
                e.data["tokens"],
                e.data["cost_usd"].as_f64().unwrap_or(0.0)
            ));
        }
        if let Some(e) = find(entries, key, "evidence", "evaluate_rules") {
            out.push_str("\n| rule | result | source |\n|---|---|---|\n");
            for r in e.data["rules"].as_array().into_iter().flatten() {
                out.push_str(&format!(
                    "| {} | {} | {} |\n",
                    r["rule"].as_str().unwrap_or(""),
                    r["status"].as_str().unwrap_or(""),
                    r["source"].as_str().unwrap_or("")
                ));
                for f in r["findings"].as_array().into_iter().flatten() {
                    out.push_str(&format!("| | finding: {} | |\n", f.as_str().unwrap_or("")));
                }
            }
        }
        if let Some(e) = entries.iter().rev().find(|e| e.kind == "incident_closed") {
            let t = &e.data["keys"][*key];
            out.push_str(&format!(
                "\n- time to revoke: {} ms · time to restore: {} ms\n",
                t["time_to_revoke_ms"], t["time_to_restore_ms"]
            ));
        }
        out.push('\n');
    }

    out.push_str("## Timeline\n\n| time | step | event |\n|---|---|---|\n");
    for e in entries {
        let line = describe(e).replace('|', "\\|");
        out.push_str(&format!(
            "| {} | {} | {} |\n",
            e.ts,
            e.step.as_deref().unwrap_or(""),
            line
        ));
    }
    out.push_str("\n## Sign-off\n\nOperator: ____________________  Date: ____________\n");
    out
}

/// A JSON scalar as text: version numbers as numbers, version ids without quotes.
fn plain(v: &serde_json::Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_string)
}
