//! The breach report (step 4 and `keyfire report`), built from the incident record alone:
//! summary, timeline, exposure window, suspicious use, findings with their sources, spend,
//! evidence of revocation and replacement, customer-data reach, the notification deadline and
//! the operator's sign-off. JSON schema: `assets/report.schema.json` (`keyfire.report/1`).

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::describe::describe_event;
use crate::record::{Entry, Event, IncidentKind, IncidentState, Proof};

pub const SCHEMA: &str = "keyfire.report/1";
#[cfg(feature = "testing")]
pub const JSON_SCHEMA: &str = include_str!("../assets/report.schema.json");

/// The breach report of one incident, built from its record alone; serializes to the JSON
/// of `assets/report.schema.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The report format's version, `keyfire.report/1`.
    pub schema: &'static str,
    /// Present only when the record failed verification and the report was forced: the
    /// first thing any reader of the JSON sees.
    #[serde(rename = "UNVERIFIED", skip_serializing_if = "Option::is_none")]
    pub unverified_banner: Option<String>,
    /// Id, kind, status, opening and closing times, reason and total duration.
    pub incident: IncidentPart,
    /// The notification deadline: the policy's hours after detection (72 when the record
    /// names none) and the time they run out.
    pub notification: Notification,
    /// One part per key, in the incident's order: exposure window, suspicious use, findings,
    /// spend, revocation and replacement evidence, customer-data reach, timings.
    pub keys: Vec<KeyPart>,
    /// Every record line, in order, with its one-line description.
    pub timeline: Vec<TimelineItem>,
    /// How to check the report against its record: line count, last and closing hashes, and
    /// how the signed head verified.
    pub record: RecordPart,
    /// The operator's sign-off; empty as keyfire builds it, for the operator to fill in.
    pub sign_off: SignOff,
}

#[derive(Debug, Clone, Serialize)]
pub struct IncidentPart {
    pub id: String,
    pub kind: IncidentKind,
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
    /// The operator's answer in the report step: `yes`, `no` or `unknown`; `None` in
    /// records written before the question was asked.
    pub operator_answer: Option<String>,
    /// The note the operator gave with the answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operator_note: Option<String>,
    pub note: String,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Timings {
    /// Open to the moment the revoke and its proof settled (proven or not).
    pub time_to_contain_ms: Option<i64>,
    pub time_to_revoke_ms: Option<i64>,
    pub time_to_restore_ms: Option<i64>,
    pub step_ms: std::collections::BTreeMap<String, i64>,
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

pub(crate) fn reaching_scopes(scopes: &[String]) -> Vec<String> {
    scopes
        .iter()
        .filter(|s| {
            let s = s.to_lowercase();
            DATA_WORDS.iter().any(|w| s.contains(w))
        })
        .cloned()
        .collect()
}

pub fn build(id: &str, entries: &[Entry]) -> Option<Report> {
    let first = entries.first()?;
    let state = IncidentState::fold(entries)?;
    let o = &state.opening;
    let drill = state.dry_run;
    let opened: DateTime<Utc> = DateTime::parse_from_rfc3339(&first.ts)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default();
    let deadline_hours = o.report_deadline_hours.unwrap_or(72);
    let no_facts = crate::record::event::KeyFacts::default();
    let no_progress = crate::record::KeyProgress::default();
    let key_parts = state
        .keys
        .iter()
        .map(|key| {
            let facts = o.key_facts.get(key).unwrap_or(&no_facts);
            let progress = state.per_key.get(key).unwrap_or(&no_progress);
            let audit = progress.audit();
            let replaced = progress.replacement();
            let findings = progress
                .rules
                .iter()
                .map(|r| FindingPart {
                    rule: r.rule.clone(),
                    status: r.status.clone(),
                    source: r.source.clone(),
                    findings: r.findings.clone(),
                })
                .collect();
            // Only what the last close recorded: an interrupted incident has no timings.
            let timings = if state.closed.is_some() {
                Timings {
                    time_to_contain_ms: progress.time_to_contain_ms,
                    time_to_revoke_ms: progress.time_to_revoke_ms,
                    time_to_restore_ms: progress.time_to_restore_ms,
                    step_ms: progress.step_ms.clone(),
                }
            } else {
                Timings::default()
            };
            let reaching = reaching_scopes(&facts.scopes);
            let revocation = match &progress.proof {
                Proof::Proven { .. } => "proven".to_string(),
                Proof::Inconclusive { reason } => format!("NOT proven: {reason}"),
                Proof::NotProvable { reason } => format!("not provable by API: {reason}"),
                Proof::Drill { .. } => "drill".to_string(),
                Proof::Pending => "pending".to_string(),
            };
            let version = |v: &Option<Value>| {
                v.clone()
                    .and_then(|v| serde_json::from_value::<crate::store::StoreVersion>(v).ok())
            };
            KeyPart {
                key: key.clone(),
                provider: facts.provider.clone(),
                provider_kind: facts.provider_kind.clone(),
                agents: facts.agents.clone(),
                scopes: facts.scopes.clone(),
                exposure_window: audit
                    .window
                    .map(|(start, end)| WindowPart { start, end }),
                first_suspicious_use: audit.first_suspicious,
                last_suspicious_use: audit.last_suspicious,
                findings,
                spend_usd: audit.spend_usd,
                requests: audit.requests,
                usage_notes: audit.usage_notes,
                provider_audit_log: audit.provider_audit_log,
                evidence_unavailable: progress
                    .evidence_unavailable
                    .iter()
                    .map(|u| format!("{}: {}", u.action, u.reason))
                    .collect(),
                evidence: Evidence {
                    revoked: replaced.revoked,
                    revoked_at: progress
                        .revoked_at
                        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
                    old_key_rejected: replaced.old_key_rejected,
                    old_key_status: replaced.old_key_status,
                    new_key_id: replaced.new_key_id,
                    new_key_hint: replaced.new_key_hint,
                    new_key_verified: replaced.verified,
                    store_version: version(&replaced.store_version),
                    previous_store_version: version(&replaced.previous_store_version),
                    promoted: replaced.promoted,
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
                    operator_answer: progress
                        .customer_data
                        .as_ref()
                        .map(|c| c.answer.as_str().to_string()),
                    operator_note: progress
                        .customer_data
                        .as_ref()
                        .and_then(|c| c.note.clone()),
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
            kind: state.kind(),
            drill,
            status: state.status.as_str().to_string(),
            opened_at: first.ts.clone(),
            closed_at: state.closed.clone(),
            detected_at: first.ts.clone(),
            reason: state.reason.clone(),
            order: o.order_name().map(str::to_string),
            total_ms: state.total_ms,
            fleet_time_to_contain_ms: state.fleet_time_to_contain_ms,
        },
        notification: Notification {
            deadline_hours,
            deadline: deadline(opened, deadline_hours),
        },
        keys: key_parts,
        timeline: entries
            .iter()
            .map(|e| {
                let event = Event::of(e);
                TimelineItem {
                    seq: e.seq,
                    ts: e.ts.clone(),
                    step: e.step.clone(),
                    kind: e.kind.clone(),
                    key: event.key().map(str::to_string),
                    text: describe_event(e, &event),
                }
            })
            .collect(),
        record: RecordPart {
            entries: entries.len(),
            last_hash: entries.last().map(|e| e.hash.clone()).unwrap_or_default(),
            closing_hash: state.closing_hash.clone(),
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
    let title = match i.kind {
        IncidentKind::Drill => "Drill report",
        IncidentKind::Rotation => "Rotation record",
        IncidentKind::Incident => "Breach report",
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
        if let Some(n) = &k.customer_data.operator_note {
            out.push_str(&format!("\nOperator's note: {n}\n"));
        }
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
