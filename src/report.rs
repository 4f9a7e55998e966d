//! The breach report (step 4 and `keyfire report`), built from the incident record alone:
//! summary, timeline, exposure window, suspicious use, findings with their sources, spend,
//! evidence of revocation and replacement, customer-data reach, the notification deadline and
//! the operator's sign-off. JSON schema: `assets/report.schema.json` (`keyfire.report/1`).

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::describe::describe;
use crate::record::{Entry, IncidentState, Proof};

pub const SCHEMA: &str = "keyfire.report/1";
pub const JSON_SCHEMA: &str = include_str!("../assets/report.schema.json");

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema: &'static str,
    /// Present only when the record failed verification and the report was forced: the
    /// first thing any reader of the JSON sees.
    #[serde(rename = "UNVERIFIED", skip_serializing_if = "Option::is_none")]
    pub unverified_banner: Option<String>,
    pub incident: IncidentPart,
    pub notification: Notification,
    pub keys: Vec<KeyPart>,
    pub timeline: Vec<TimelineItem>,
    pub record: RecordPart,
    pub sign_off: SignOff,
}

#[derive(Debug, Clone, Serialize)]
pub struct IncidentPart {
    pub id: String,
    pub kind: String,
    pub drill: bool,
    pub status: String,
    pub opened_at: String,
    pub closed_at: Option<String>,
    pub detected_at: String,
    pub reason: Option<String>,
    pub order: Option<String>,
    pub total_ms: Option<i64>,
    /// Until the last key's containment settled; `None` while any key is not contained.
    pub fleet_time_to_contain_ms: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Notification {
    pub deadline_hours: u64,
    /// Counted from detection (the incident's opening).
    pub deadline: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct KeyPart {
    pub key: String,
    pub provider: Option<String>,
    pub provider_kind: Option<String>,
    pub agents: Vec<String>,
    pub scopes: Vec<String>,
    pub exposure_window: Option<WindowPart>,
    pub first_suspicious_use: Option<String>,
    pub last_suspicious_use: Option<String>,
    pub findings: Vec<FindingPart>,
    pub spend_usd: Option<f64>,
    pub requests: Option<u64>,
    /// What each usage source covered and saw, in its own words: CloudTrail's coverage
    /// (event kinds, regions, how far back) and counts per region, OpenAI's usage endpoints
    /// with traffic, IAM's last use. A count is only as wide as the coverage beside it.
    pub usage_notes: Vec<String>,
    /// What the provider's own audit log says about the key, when it has one.
    pub provider_audit_log: Option<String>,
    /// Best-effort reads that failed; the runbook went on without them.
    pub evidence_unavailable: Vec<String>,
    pub evidence: Evidence,
    pub customer_data: CustomerData,
    pub timings: Timings,
}

#[derive(Debug, Clone, Serialize)]
pub struct WindowPart {
    pub start: String,
    pub end: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct FindingPart {
    pub rule: String,
    pub status: String,
    pub source: String,
    pub findings: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Evidence {
    pub revoked: bool,
    pub revoked_at: Option<String>,
    /// `Some(true)`: the provider rejected the old key after revocation.
    pub old_key_rejected: Option<bool>,
    pub old_key_status: Option<u64>,
    pub new_key_id: Option<String>,
    pub new_key_hint: Option<String>,
    pub new_key_verified: bool,
    /// A number (Vault, keyring, memory) or an id (AWS Secrets Manager's `VersionId`).
    pub store_version: Option<crate::store::StoreVersion>,
    pub previous_store_version: Option<crate::store::StoreVersion>,
    /// The stored replacement is the version agents read (promoted, or written live).
    pub promoted: bool,
    /// `proven`, `NOT proven: <reason>`, `not provable by API: <reason>`, `drill`, or
    /// `pending` (the proof was never reached).
    pub revocation: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct CustomerData {
    /// Whether the key's scopes could reach customer data.
    pub possible: bool,
    pub reaching_scopes: Vec<String>,
    pub operator_answer: Option<String>,
    pub note: String,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Timings {
    /// Open to the moment the revoke and its proof settled (proven or not).
    pub time_to_contain_ms: Option<i64>,
    pub time_to_revoke_ms: Option<i64>,
    pub time_to_restore_ms: Option<i64>,
    pub step_ms: serde_json::Map<String, Value>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TimelineItem {
    pub seq: u64,
    pub ts: String,
    pub step: Option<String>,
    pub kind: String,
    pub key: Option<String>,
    pub text: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RecordPart {
    pub entries: usize,
    pub last_hash: String,
    /// The hash of `incident_closed`: the anchor printed at close, outside the file.
    pub closing_hash: Option<String>,
    /// How the record's signed head verified when the report was rendered.
    pub signature: Option<crate::record::Signature>,
    /// Why the record failed verification, when the report was rendered with `--force`.
    pub unverified: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SignOff {
    pub operator: Option<String>,
    pub signed_at: Option<String>,
}

/// Scope words that can reach customer data (contacts, messages, files, databases, admin).
const DATA_WORDS: &[&str] = &[
    "read", "write", "contact", "customer", "crm", "file", "data", "db", "database", "mail",
    "message", "admin", "user", "*", "all", "full",
];

fn reaching_scopes(scopes: &[String]) -> Vec<String> {
    scopes
        .iter()
        .filter(|s| {
            let s = s.to_lowercase();
            DATA_WORDS.iter().any(|w| s.contains(w))
        })
        .cloned()
        .collect()
}

fn last<'a>(entries: &'a [Entry], key: &str, kind: &str, action: &str) -> Option<&'a Entry> {
    entries
        .iter()
        .rev()
        .find(|e| e.kind == kind && e.data["key"] == key && e.data["action"] == action)
}

fn s(v: &Value) -> Option<String> {
    v.as_str().map(str::to_string)
}

pub fn build(id: &str, entries: &[Entry]) -> Option<Report> {
    let first = entries.first()?;
    let o = &first.data;
    let close = entries.iter().rev().find(|e| e.kind == "incident_closed");
    let state = IncidentState::fold(entries);
    let status = state
        .as_ref()
        .map_or("open", |st| st.status.as_str())
        .to_string();
    let drill = o["dry_run"] == true;
    let kind = if o["purpose"] == "rotation" {
        "rotation"
    } else if drill {
        "drill"
    } else {
        "incident"
    };
    let opened: DateTime<Utc> = DateTime::parse_from_rfc3339(&first.ts)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default();
    let deadline_hours = o["report_deadline_hours"].as_u64().unwrap_or(72);
    let keys: Vec<String> = o["keys"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let key_parts = keys
        .iter()
        .map(|key| {
            let facts = &o["key_facts"][key.as_str()];
            let scopes: Vec<String> = serde_json::from_value(facts["scopes"].clone()).unwrap_or_default();
            let agents: Vec<String> = serde_json::from_value(facts["agents"].clone()).unwrap_or_default();
            let rules = last(entries, key, "evidence", "evaluate_rules");
            // The usage evidence, not the provider audit-log evidence recorded beside it.
            let usage = entries.iter().rev().find(|e| {
                e.kind == "evidence" && e.data["key"] == key.as_str() && e.data["action"] == "fetch_usage" && e.data.get("window").is_some()
            });
            let audit_log = entries
                .iter()
                .rev()
                .find(|e| e.kind == "evidence" && e.data["key"] == key.as_str() && e.data.get("audit_log").is_some())
                .and_then(|e| s(&e.data["text"]));
            let window = rules.map(|e| &e.data["window"]).or(usage.map(|e| &e.data["window"]));
            let findings = rules
                .and_then(|e| e.data["rules"].as_array())
                .into_iter()
                .flatten()
                .map(|r| FindingPart {
                    rule: r["rule"].as_str().unwrap_or("").into(),
                    status: r["status"].as_str().unwrap_or("").into(),
                    source: r["source"].as_str().unwrap_or("").into(),
                    findings: r["findings"].as_array().into_iter().flatten().filter_map(s).collect(),
                })
                .collect();
            let proof = last(entries, key, "evidence", "prove_revoked");
            let revoke_done = entries.iter().any(|e| {
                e.kind == "action_done" && e.data["key"] == key.as_str() && e.data["action"] == "revoke" && !drill
                    && (e.data["status"] == "done" || e.data["reason"].as_str().is_some_and(|r| r.contains("already revoked")))
            });
            let final_facts = entries.iter().rev().find(|e| e.data["key"] == key.as_str() && e.data.get("facts").is_some()).map(|e| &e.data["facts"]);
            let created = last(entries, key, "evidence", "create");
            let stored = last(entries, key, "evidence", "store_write");
            let verified = last(entries, key, "evidence", "verify_new").is_some_and(|e| e.data["new_key_works"] == true)
                || entries.iter().any(|e| e.kind == "operator_input" && e.data["key"] == key.as_str() && e.data["action"] == "verify_new" && e.data["decision"] == "confirmed");
            let timings = close
                .map(|c| &c.data["keys"][key.as_str()])
                .map(|t| Timings {
                    time_to_contain_ms: t["time_to_contain_ms"].as_i64(),
                    time_to_revoke_ms: t["time_to_revoke_ms"].as_i64(),
                    time_to_restore_ms: t["time_to_restore_ms"].as_i64(),
                    step_ms: t["step_ms"].as_object().cloned().unwrap_or_default(),
                })
                .unwrap_or_default();
            let reaching = reaching_scopes(&scopes);
            let progress = state.as_ref().and_then(|st| st.per_key.get(key.as_str()));
            let revocation = match progress.map(|p| &p.proof) {
                Some(Proof::Proven { .. }) => "proven".to_string(),
                Some(Proof::Inconclusive { reason }) => format!("NOT proven: {reason}"),
                Some(Proof::NotProvable { reason }) => format!("not provable by API: {reason}"),
                Some(Proof::Drill { .. }) => "drill".to_string(),
                Some(Proof::Pending) | None => "pending".to_string(),
            };
            let evidence_unavailable = progress
                .map(|p| {
                    p.evidence_unavailable
                        .iter()
                        .map(|u| format!("{}: {}", u.action, u.reason))
                        .collect()
                })
                .unwrap_or_default();
            KeyPart {
                key: key.clone(),
                provider: s(&facts["provider"]),
                provider_kind: s(&facts["provider_kind"]),
                agents,
                scopes,
                exposure_window: window.and_then(|w| Some(WindowPart { start: s(&w["start"])?, end: s(&w["end"])? })),
                first_suspicious_use: rules.and_then(|e| s(&e.data["first_suspicious"])),
                last_suspicious_use: rules.and_then(|e| s(&e.data["last_suspicious"])),
                findings,
                spend_usd: rules.and_then(|e| e.data["spend_in_window_usd"].as_f64()).or(usage.and_then(|e| e.data["cost_usd"].as_f64())),
                requests: rules.and_then(|e| e.data["requests_in_window"].as_u64()).or(usage.and_then(|e| e.data["requests"].as_u64())),
                usage_notes: usage
                    .and_then(|e| e.data["notes"].as_array())
                    .into_iter()
                    .flatten()
                    .filter_map(s)
                    .collect(),
                provider_audit_log: audit_log,
                evidence_unavailable,
                evidence: Evidence {
                    revoked: revoke_done,
                    revoked_at: final_facts.and_then(|f| s(&f["revoked_at"])),
                    old_key_rejected: proof.and_then(|p| p.data["old_key_rejected"].as_bool()),
                    old_key_status: proof.and_then(|p| p.data["status"].as_u64()),
                    new_key_id: created.and_then(|e| s(&e.data["new_key_id"])),
                    new_key_hint: created.and_then(|e| s(&e.data["hint"])).or_else(|| final_facts.and_then(|f| s(&f["new_key_hint"]))),
                    new_key_verified: verified,
                    store_version: stored.and_then(|e| serde_json::from_value(e.data["version"].clone()).ok()),
                    previous_store_version: stored.and_then(|e| serde_json::from_value(e.data["previous_version"].clone()).ok()),
                    promoted: last(entries, key, "evidence", "promote").is_some()
                        || stored.is_some_and(|e| e.data["pending"] != true),
                    revocation,
                },
                customer_data: CustomerData {
                    possible: !reaching.is_empty(),
                    note: if reaching.is_empty() {
                        "the key's scopes do not reach customer data directly; prompts sent with it may still contain some".into()
                    } else {
                        format!("scopes {} can reach customer data", reaching.join(", "))
                    },
                    reaching_scopes: reaching,
                    operator_answer: None,
                },
                timings,
            }
        })
        .collect();
    Some(Report {
        schema: SCHEMA,
        unverified_banner: None,
        incident: IncidentPart {
            id: id.to_string(),
            kind: kind.into(),
            drill,
            status,
            opened_at: first.ts.clone(),
            closed_at: close.map(|c| c.ts.clone()),
            detected_at: first.ts.clone(),
            reason: s(&o["reason"]),
            order: s(&o["order"]),
            total_ms: close.and_then(|c| c.data["total_ms"].as_i64()),
            fleet_time_to_contain_ms: state.as_ref().and_then(|st| st.fleet_time_to_contain_ms),
        },
        notification: Notification {
            deadline_hours,
            deadline: deadline(opened, deadline_hours),
        },
        keys: key_parts,
        timeline: entries
            .iter()
            .map(|e| TimelineItem {
                seq: e.seq,
                ts: e.ts.clone(),
                step: e.step.clone(),
                kind: e.kind.clone(),
                key: s(&e.data["key"]),
                text: describe(e),
            })
            .collect(),
        record: RecordPart {
            entries: entries.len(),
            last_hash: entries.last().map(|e| e.hash.clone()).unwrap_or_default(),
            closing_hash: close.map(|c| c.hash.clone()),
            signature: None,
            unverified: None,
        },
        sign_off: SignOff {
            operator: None,
            signed_at: None,
        },
    })
}

/// The notification deadline, or a statement that it is out of range: record values are
/// input, and no value in them may make a report panic.
fn deadline(opened: DateTime<Utc>, hours: u64) -> String {
    i64::try_from(hours)
        .ok()
        .and_then(Duration::try_hours)
        .and_then(|d| opened.checked_add_signed(d))
        .map_or_else(
            || format!("out of range ({hours} h after detection)"),
            |t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        )
}

const UNVERIFIED: &str =
    "UNVERIFIED: this record FAILED verification; its content may have been altered";

pub fn render_json(r: &Report) -> String {
    let mut r = r.clone();
    if let Some(why) = &r.record.unverified {
        r.unverified_banner = Some(format!("{UNVERIFIED} ({why})"));
    }
    serde_json::to_string_pretty(&r).unwrap_or_default()
}

pub fn render_markdown(r: &Report) -> String {
    let mut out = String::new();
    let i = &r.incident;
    let title = match i.kind.as_str() {
        "drill" => "Drill report",
        "rotation" => "Rotation record",
        _ => "Breach report",
    };
    let unverified = r.record.unverified.as_deref();
    if let Some(why) = unverified {
        out.push_str(&format!("> **{UNVERIFIED}** ({why}).\n\n"));
        out.push_str(&format!("# UNVERIFIED {title}: {}\n\n", i.id));
    } else {
        out.push_str(&format!("# {title}: {}\n\n", i.id));
    }
    if i.drill {
        out.push_str("> DRILL: every write below was shown and recorded, never sent.\n\n");
    }
    out.push_str("## Summary\n\n| | |\n|---|---|\n");
    out.push_str(&format!("| status | {} |\n", i.status));
    out.push_str(&format!("| detected (opened) | {} |\n", i.detected_at));
    if let Some(c) = &i.closed_at {
        out.push_str(&format!("| closed | {c} |\n"));
    }
    out.push_str(&format!(
        "| keys | {} |\n",
        r.keys
            .iter()
            .map(|k| k.key.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    out.push_str(&format!(
        "| reason | {} |\n",
        i.reason.as_deref().unwrap_or("(none given)")
    ));
    out.push_str(&format!(
        "| order | {} |\n",
        i.order.as_deref().unwrap_or("-")
    ));
    if r.keys.len() > 1 || i.fleet_time_to_contain_ms.is_some() {
        out.push_str(&format!(
            "| fleet time to contain | {} |\n",
            i.fleet_time_to_contain_ms
                .map_or("unknown: not every key was contained".into(), |m| format!(
                    "{m} ms"
                ))
        ));
    }
    let not_proven: Vec<&str> = r
        .keys
        .iter()
        .filter(|k| k.evidence.revocation.starts_with("NOT proven"))
        .map(|k| k.key.as_str())
        .collect();
    if !not_proven.is_empty() {
        out.push_str(&format!(
            "| revocation NOT proven | {} |\n",
            not_proven.join(", ")
        ));
    }
    out.push_str(&format!(
        "| notification deadline | {} ({} h from detection) |\n\n",
        r.notification.deadline, r.notification.deadline_hours
    ));
    for k in &r.keys {
        out.push_str(&format!("## Key `{}`\n\n", k.key));
        out.push_str(&format!(
            "- provider: {} ({}) · agents: {} · scopes: {}\n",
            k.provider.as_deref().unwrap_or("?"),
            k.provider_kind.as_deref().unwrap_or("?"),
            k.agents.join(", "),
            k.scopes.join(", ")
        ));
        out.push_str("\n### Exposure window\n\n");
        match &k.exposure_window {
            Some(w) => out.push_str(&format!("{} to {}\n", w.start, w.end)),
            None => out.push_str("not established (the audit step did not run)\n"),
        }
        out.push_str(&format!(
            "\nFirst suspicious use: {} · last suspicious use: {}\n",
            k.first_suspicious_use.as_deref().unwrap_or("none found"),
            k.last_suspicious_use.as_deref().unwrap_or("none found")
        ));
        out.push_str("\n### Findings\n\n| rule | result | source |\n|---|---|---|\n");
        if k.findings.is_empty() {
            out.push_str("| (none) | not evaluated | |\n");
        }
        for f in &k.findings {
            out.push_str(&format!(
                "| {} | {} | {} |\n",
                f.rule,
                f.status.replace('_', " "),
                f.source.replace('|', "\\|")
            ));
            for x in &f.findings {
                out.push_str(&format!("| | finding: {} | |\n", x.replace('|', "\\|")));
            }
        }
        out.push_str("\n### Spend\n\n");
        // Unknown is never $0: with no source that reports money, say so.
        match (k.spend_usd, k.requests) {
            (Some(s), Some(n)) => out.push_str(&format!(
                "${s:.2} over {n} requests in the exposure window\n"
            )),
            (Some(s), None) => out.push_str(&format!("${s:.2} in the exposure window\n")),
            (None, Some(n)) => out.push_str(&format!(
                "unknown: no source reports cost ({n} requests in the exposure window)\n"
            )),
            (None, None) => out.push_str("unknown: no usage source answered\n"),
        }
        if !k.usage_notes.is_empty() {
            out.push_str("\nWhat the usage sources covered and saw:\n\n");
            for n in &k.usage_notes {
                out.push_str(&format!("- {n}\n"));
            }
        }
        if let Some(a) = &k.provider_audit_log {
            out.push_str(&format!("\nProvider audit log: {a}\n"));
        }
        if !k.evidence_unavailable.is_empty() {
            out.push_str("\n### Evidence unavailable\n\n");
            for u in &k.evidence_unavailable {
                out.push_str(&format!("- {u}\n"));
            }
            out.push_str("\nThe runbook went on without it: what these sources would have shown is unknown, not clean.\n");
        }
        let e = &k.evidence;
        out.push_str("\n### Evidence\n\n");
        out.push_str(&format!(
            "- revoked: {}{}\n",
            if e.revoked { "yes" } else { "no" },
            e.revoked_at
                .as_ref()
                .map(|t| format!(" at {t}"))
                .unwrap_or_default()
        ));
        out.push_str(&match (e.old_key_rejected, e.old_key_status) {
            (Some(true), Some(st)) => format!("- old key rejected by the provider (HTTP {st})\n"),
            (Some(true), None) => "- old key rejected by the provider\n".into(),
            (Some(false), _) => "- old key still accepted when checked\n".into(),
            _ => "- old key rejection: not provable with this provider\n".into(),
        });
        if e.revocation.starts_with("NOT proven") {
            out.push_str(&format!(
                "- **revocation {}**: check at the provider that the key is dead\n",
                e.revocation
            ));
        }
        out.push_str(&format!(
            "- replacement: {}{}; verified: {}\n",
            e.new_key_id
                .as_deref()
                .unwrap_or("(created by the operator or not created)"),
            e.new_key_hint
                .as_ref()
                .map(|h| format!(" ({h})"))
                .unwrap_or_default(),
            if e.new_key_verified { "yes" } else { "no" }
        ));
        if let Some(v) = &e.store_version {
            out.push_str(&format!(
                "- store version {v} (was {}){}\n",
                e.previous_store_version
                    .as_ref()
                    .map_or("-".into(), |p| p.to_string()),
                if e.promoted {
                    ""
                } else {
                    ", still pending: not promoted"
                }
            ));
        }
        out.push_str("\n### Customer data\n\n");
        out.push_str(&format!(
            "{}: {}. Operator's answer: {}\n",
            if k.customer_data.possible {
                "Possibly reached"
            } else {
                "Not indicated"
            },
            k.customer_data.note,
            k.customer_data
                .operator_answer
                .as_deref()
                .unwrap_or("not given")
        ));
        out.push_str(&format!(
            "\nTime to contain: {} · time to revoke: {} · time to restore: {}\n\n",
            k.timings
                .time_to_contain_ms
                .map_or("-".into(), |m| format!("{m} ms")),
            k.timings
                .time_to_revoke_ms
                .map_or("-".into(), |m| format!("{m} ms")),
            k.timings
                .time_to_restore_ms
                .map_or("-".into(), |m| format!("{m} ms"))
        ));
    }
    out.push_str("## Timeline\n\n| time | step | event |\n|---|---|---|\n");
    for t in &r.timeline {
        out.push_str(&format!(
            "| {} | {} | {} |\n",
            t.ts,
            t.step.as_deref().unwrap_or(""),
            t.text.replace('|', "\\|")
        ));
    }
    out.push_str(&format!(
        "\nRecord: {} entries, last hash `{}`.\n",
        r.record.entries, r.record.last_hash
    ));
    if let Some(h) = &r.record.closing_hash {
        out.push_str(&format!("Closing hash: `{h}`.\n"));
    }
    match r.record.signature {
        Some(crate::record::Signature::Signed) => {
            out.push_str("Signature: the record's head is signed and verified.\n")
        }
        Some(crate::record::Signature::SignedUnanchored) => out.push_str(
            "Signature: the head verifies with the key the record declares (not anchored to a trusted key here).\n",
        ),
        Some(crate::record::Signature::Unsigned) => {
            out.push_str("Signature: unsigned (older keyfire); only the hash chain was checked.\n")
        }
        _ => {}
    }
    if let Some(why) = unverified {
        out.push_str(&format!("\n> **{UNVERIFIED}** ({why}).\n"));
    }
    out.push_str("\n## Sign-off\n\nOperator: ____________________  Date: ____________\n");
    out
}

#[cfg(test)]
mod deadline_tests {
    use super::*;

    fn opened(hours: Value) -> Vec<Entry> {
        vec![Entry {
            seq: 1,
            ts: "2026-11-27T10:00:00.000Z".into(),
            kind: "incident_opened".into(),
            step: None,
            data: serde_json::json!({ "keys": ["k"], "report_deadline_hours": hours }),
            prev: crate::record::GENESIS.into(),
            hash: "0".repeat(64),
        }]
    }

    #[test]
    fn a_crafted_deadline_does_not_panic_the_report() {
        for hours in [
            serde_json::json!(u64::MAX),
            serde_json::json!(i64::MAX as u64),
            serde_json::json!(9_223_372_036_854_775u64),
            serde_json::json!(2_562_047_788_015u64),
        ] {
            let r = build("inc-x", &opened(hours.clone())).unwrap();
            assert!(
                r.notification.deadline.starts_with("out of range"),
                "{hours}"
            );
            assert!(render_markdown(&r).contains("out of range"));
        }
        let r = build("inc-x", &opened(serde_json::json!(72))).unwrap();
        assert_eq!(r.notification.deadline, "2026-11-30T10:00:00.000Z");
    }
}
