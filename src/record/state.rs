//! One projection of a record: what the summary, `incident list|show`, the drill report, the
//! breach report and resume need to know about an incident, folded once from its entries
//! so that they cannot disagree (is it closed, was each key's revocation proven, which
//! evidence could not be had, how long containment took).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::Entry;
use crate::provider::UsageBucket;

/// Where an incident stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Interrupted or in progress (also after a resume that has not closed yet).
    #[default]
    Open,
    Completed,
    Failed,
    Aborted,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Aborted => "aborted",
        }
    }
}

/// What the record says about the proof that a key is dead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "proof", rename_all = "snake_case")]
pub enum Proof {
    /// The revoke step has not reached its proof.
    Pending,
    /// The provider answered the old value with its documented invalid-credential signal.
    Proven { status: Option<u16> },
    /// The probe ran (or could not run) without that signal: the key may be alive.
    Inconclusive { reason: String },
    /// The provider has no verify call in keyfire; the operator confirmed the revoke.
    NotProvable { reason: String },
    /// A drill: nothing was revoked; the probe itself was exercised.
    Drill { old_key_authenticates: Option<bool> },
}

impl Proof {
    /// Whether the summary, report and exit code must say "revocation NOT proven".
    pub fn not_proven(&self) -> bool {
        matches!(self, Self::Inconclusive { .. })
    }
}

/// A best-effort read that failed; the runbook went on without it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unavailable {
    pub step: String,
    pub action: String,
    pub reason: String,
    pub status: Option<u64>,
}

/// A step that failed (the last failure of each action is kept).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepFailure {
    pub step: String,
    pub action: String,
    pub error: String,
    pub status: Option<u64>,
}

/// One anomaly rule's verdict from the audit step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleResult {
    pub rule: String,
    /// `findings`, `clean` or `not_evaluable`.
    pub status: String,
    pub source: String,
    pub findings: Vec<String>,
}

/// One key's progress through the incident.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyProgress {
    /// Every step finished (as of the last close).
    pub finished: bool,
    pub time_to_revoke_ms: Option<i64>,
    pub time_to_restore_ms: Option<i64>,
    pub time_to_contain_ms: Option<i64>,
    pub proof: Proof,
    pub evidence_unavailable: Vec<Unavailable>,
    pub failures: Vec<StepFailure>,
    /// The store held nothing at the key's secret path when the incident read it.
    pub nothing_stored: bool,
    /// From the engine's last facts snapshot: when the provider confirmed the revocation
    /// (then the proof), when the replacement was verified, when containment settled.
    pub revoked_at: Option<DateTime<Utc>>,
    pub restored_at: Option<DateTime<Utc>>,
    pub contained_at: Option<DateTime<Utc>>,
    /// The provider's usage as the audit step fetched it (baseline and window, per bucket).
    pub usage: Vec<UsageBucket>,
    pub window_start: Option<DateTime<Utc>>,
    pub rules: Vec<RuleResult>,
}

impl Default for KeyProgress {
    fn default() -> Self {
        Self {
            finished: false,
            time_to_revoke_ms: None,
            time_to_restore_ms: None,
            time_to_contain_ms: None,
            proof: Proof::Pending,
            evidence_unavailable: Vec::new(),
            failures: Vec::new(),
            nothing_stored: false,
            revoked_at: None,
            restored_at: None,
            contained_at: None,
            usage: Vec::new(),
            window_start: None,
            rules: Vec::new(),
        }
    }
}

/// The projection of one record. Built by [`IncidentState::fold`], or entry by entry with
/// [`IncidentState::apply`] by a front-end that watches an incident run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct IncidentState {
    pub opened: String,
    pub dry_run: bool,
    /// `incident` or `rotation`.
    pub purpose: String,
    pub keys: Vec<String>,
    pub reason: Option<String>,
    pub status: Status,
    pub closed: Option<String>,
    pub total_ms: Option<i64>,
    /// Until the last key's containment settled; `None` while any key is not contained.
    pub fleet_time_to_contain_ms: Option<i64>,
    pub per_key: BTreeMap<String, KeyProgress>,
    pub entries: usize,
}

fn str_of(v: &Value, field: &str) -> Option<String> {
    v.get(field).and_then(Value::as_str).map(str::to_string)
}

impl IncidentState {
    /// Fold a record's entries. `None` for an empty record.
    pub fn fold(entries: &[Entry]) -> Option<Self> {
        entries.first()?;
        let mut state = Self::default();
        for e in entries {
            state.apply(e);
        }
        Some(state)
    }

    /// Take in the next entry of the record.
    pub fn apply(&mut self, e: &Entry) {
        self.entries += 1;
        match e.kind.as_str() {
            "incident_opened" => self.open(e),
            "incident_closed" => self.close(e),
            "incident_resumed" => self.status = Status::Open,
            _ => {}
        }
        let Some(key) = e.data.get("key").and_then(Value::as_str) else {
            return;
        };
        let dry_run = self.dry_run;
        let k = self.per_key.entry(key.to_string()).or_default();
        if let Some(facts) = e.data.get("facts") {
            let at = |field: &str| {
                facts
                    .get(field)
                    .and_then(Value::as_str)
                    .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| t.with_timezone(&Utc))
            };
            k.revoked_at = at("revoked_at");
            k.restored_at = at("restored_at");
            k.contained_at = at("contained_at");
        }
        let action = str_of(&e.data, "action").unwrap_or_default();
        let step = e.step.clone().unwrap_or_default();
        let status = e.data.get("status").and_then(Value::as_u64);
        match (e.kind.as_str(), action.as_str()) {
            ("evidence", _) if e.data.get("unavailable").is_some() => {
                let reason = str_of(&e.data, "unavailable").unwrap_or_default();
                k.evidence_unavailable.push(Unavailable {
                    step,
                    action: action.clone(),
                    reason,
                    status,
                });
            }
            ("evidence", "read_store") if e.data.get("current_version") == Some(&Value::Null) => {
                k.nothing_stored = true;
            }
            ("evidence", "prove_revoked") => k.proof = proof_of(&e.data, dry_run),
            // The usage evidence, not the audit-log evidence recorded by the same action.
            ("evidence", "fetch_usage") if e.data.get("buckets").is_some() => {
                k.usage = serde_json::from_value(e.data["buckets"].clone()).unwrap_or_default();
                k.window_start = e
                    .data
                    .pointer("/window/start")
                    .and_then(Value::as_str)
                    .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| t.with_timezone(&Utc));
            }
            ("evidence", "evaluate_rules") => k.rules = rules_of(&e.data),
            ("action_done", "prove_revoked")
                if e.data.get("status").and_then(Value::as_str) == Some("skipped") =>
            {
                let reason = str_of(&e.data, "reason").unwrap_or_default();
                k.proof = if reason.starts_with("not provable") {
                    Proof::NotProvable { reason }
                } else if dry_run {
                    Proof::Drill {
                        old_key_authenticates: None,
                    }
                } else {
                    Proof::Inconclusive { reason }
                };
            }
            ("step_failed", _) => {
                let failure = StepFailure {
                    step,
                    action,
                    error: str_of(&e.data, "error").unwrap_or_default(),
                    status,
                };
                k.failures.retain(|f| f.action != failure.action);
                k.failures.push(failure);
            }
            ("action_done", _) => k.failures.retain(|f| f.action != action),
            _ => {}
        }
    }

    fn open(&mut self, e: &Entry) {
        let keys: Vec<String> = e
            .data
            .get("keys")
            .and_then(|k| serde_json::from_value(k.clone()).ok())
            .unwrap_or_default();
        self.opened = e.ts.clone();
        self.dry_run = e.data.get("dry_run").and_then(Value::as_bool) == Some(true);
        self.purpose = str_of(&e.data, "purpose").unwrap_or_else(|| "incident".into());
        self.reason = str_of(&e.data, "reason");
        for k in &keys {
            self.per_key.entry(k.clone()).or_default();
        }
        self.keys = keys;
    }

    fn close(&mut self, e: &Entry) {
        self.status = match e.data.get("outcome").and_then(Value::as_str) {
            Some("completed") => Status::Completed,
            Some("aborted") => Status::Aborted,
            _ => Status::Failed,
        };
        self.closed = Some(e.ts.clone());
        self.total_ms = e.data.get("total_ms").and_then(Value::as_i64);
        self.fleet_time_to_contain_ms = e
            .data
            .get("fleet_time_to_contain_ms")
            .and_then(Value::as_i64);
        let Some(keys) = e.data.get("keys").and_then(Value::as_object) else {
            return;
        };
        for (key, t) in keys {
            let k = self.per_key.entry(key.clone()).or_default();
            k.finished = t.get("finished").and_then(Value::as_bool) == Some(true);
            k.time_to_revoke_ms = t.get("time_to_revoke_ms").and_then(Value::as_i64);
            k.time_to_restore_ms = t.get("time_to_restore_ms").and_then(Value::as_i64);
            k.time_to_contain_ms = t.get("time_to_contain_ms").and_then(Value::as_i64);
        }
    }

    /// Keys whose revocation was attempted but not proven.
    pub fn not_proven(&self) -> impl Iterator<Item = &str> {
        self.per_key
            .iter()
            .filter(|(_, k)| k.proof.not_proven())
            .map(|(id, _)| id.as_str())
    }

    pub fn is_open(&self) -> bool {
        self.status != Status::Completed
    }
}

fn rules_of(data: &Value) -> Vec<RuleResult> {
    let text = |v: &Value, f: &str| v.get(f).and_then(Value::as_str).unwrap_or("").to_string();
    data.get("rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|r| RuleResult {
            rule: text(r, "rule"),
            status: text(r, "status"),
            source: text(r, "source"),
            findings: r
                .get("findings")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|f| f.as_str().map(str::to_string))
                .collect(),
        })
        .collect()
}

fn proof_of(data: &Value, dry_run: bool) -> Proof {
    if dry_run || data.get("drill").and_then(Value::as_bool) == Some(true) {
        return Proof::Drill {
            old_key_authenticates: data.get("old_key_authenticates").and_then(Value::as_bool),
        };
    }
    let status = data
        .get("status")
        .and_then(Value::as_u64)
        .and_then(|s| u16::try_from(s).ok());
    if data.get("proof").and_then(Value::as_str) == Some("inconclusive") {
        return Proof::Inconclusive {
            reason: str_of(data, "reason")
                .or_else(|| str_of(data, "text"))
                .unwrap_or_default(),
        };
    }
    if data.get("old_key_rejected").and_then(Value::as_bool) == Some(true) {
        return Proof::Proven { status };
    }
    Proof::Inconclusive {
        reason: str_of(data, "text").unwrap_or_else(|| "no proof recorded".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(seq: u64, kind: &str, step: Option<&str>, data: Value) -> Entry {
        Entry {
            seq,
            ts: format!("2026-11-27T03:00:{seq:02}Z"),
            kind: kind.into(),
            step: step.map(str::to_string),
            data,
            prev: String::new(),
            hash: String::new(),
        }
    }

    fn opened(keys: &[&str], dry_run: bool) -> Entry {
        entry(
            1,
            "incident_opened",
            None,
            json!({ "keys": keys, "dry_run": dry_run, "purpose": "incident" }),
        )
    }

    #[test]
    fn an_interrupted_incident_is_open_and_a_resumed_close_reopens() {
        let mut es = vec![opened(&["k"], false)];
        assert_eq!(IncidentState::fold(&es).unwrap().status, Status::Open);
        es.push(entry(
            2,
            "incident_closed",
            None,
            json!({ "outcome": "failed", "keys": {} }),
        ));
        assert_eq!(IncidentState::fold(&es).unwrap().status, Status::Failed);
        es.push(entry(3, "incident_resumed", None, json!({})));
        assert_eq!(IncidentState::fold(&es).unwrap().status, Status::Open);
        es.push(entry(
            4,
            "incident_closed",
            None,
            json!({ "outcome": "completed", "fleet_time_to_contain_ms": 250, "keys": { "k": { "finished": true, "time_to_revoke_ms": 200, "time_to_contain_ms": 250 } } }),
        ));
        let s = IncidentState::fold(&es).unwrap();
        assert_eq!(s.status, Status::Completed);
        assert_eq!(s.fleet_time_to_contain_ms, Some(250));
        assert_eq!(s.per_key["k"].time_to_revoke_ms, Some(200));
        assert!(s.per_key["k"].finished);
    }

    #[test]
    fn only_a_rejection_is_proof_and_a_skipped_probe_is_inconclusive() {
        let base = vec![opened(&["a", "b", "c"], false)];
        let mut es = base.clone();
        es.push(entry(2, "evidence", Some("revoke"), json!({ "key": "a", "action": "prove_revoked", "old_key_rejected": true, "status": 401 })));
        es.push(entry(3, "action_done", Some("revoke"), json!({ "key": "b", "action": "prove_revoked", "status": "skipped", "reason": "inconclusive: old value unavailable" })));
        es.push(entry(4, "action_done", Some("revoke"), json!({ "key": "c", "action": "prove_revoked", "status": "skipped", "reason": "not provable: manual has no verify call in keyfire" })));
        let s = IncidentState::fold(&es).unwrap();
        assert_eq!(s.per_key["a"].proof, Proof::Proven { status: Some(401) });
        assert!(s.per_key["b"].proof.not_proven());
        assert!(matches!(s.per_key["c"].proof, Proof::NotProvable { .. }));
        assert_eq!(s.not_proven().collect::<Vec<_>>(), vec!["b"]);
    }

    #[test]
    fn unavailable_evidence_and_failures_are_kept_per_key() {
        let mut es = vec![opened(&["k"], true)];
        es.push(entry(2, "evidence", Some("revoke"), json!({ "key": "k", "action": "snapshot_usage", "unavailable": "cloudtrail:LookupEvents answered HTTP 500", "status": 500 })));
        es.push(entry(
            3,
            "step_failed",
            Some("redeploy"),
            json!({ "key": "k", "action": "create", "error": "boom", "status": 500 }),
        ));
        es.push(entry(
            4,
            "evidence",
            Some("open"),
            json!({ "key": "k", "action": "read_store", "current_version": null }),
        ));
        let s = IncidentState::fold(&es).unwrap();
        let k = &s.per_key["k"];
        assert_eq!(k.evidence_unavailable.len(), 1);
        assert_eq!(k.evidence_unavailable[0].action, "snapshot_usage");
        assert_eq!(k.failures.len(), 1);
        assert!(k.nothing_stored);
        es.push(entry(
            5,
            "action_done",
            Some("redeploy"),
            json!({ "key": "k", "action": "create", "status": "done" }),
        ));
        assert!(
            IncidentState::fold(&es).unwrap().per_key["k"]
                .failures
                .is_empty()
        );
    }
}

#[cfg(test)]
mod audit_tests {
    use super::*;
    use serde_json::json;

    fn entry(seq: u64, kind: &str, data: Value) -> Entry {
        Entry {
            seq,
            ts: format!("2026-11-27T03:00:{seq:02}Z"),
            kind: kind.into(),
            step: Some("audit".into()),
            data,
            prev: String::new(),
            hash: String::new(),
        }
    }

    /// The audit-log evidence the same action records after the usage must not erase it
    /// (the console's audit view stayed empty in live OpenAI incidents).
    #[test]
    fn usage_survives_the_audit_log_evidence_recorded_after_it() {
        let bucket = json!({ "start": "2026-11-26T00:00:00Z", "end": "2026-11-27T00:00:00Z", "requests": 9000, "input_tokens": 1, "output_tokens": 1, "cost_usd": 90.0 });
        let es = vec![
            entry(
                1,
                "incident_opened",
                json!({ "keys": ["k"], "dry_run": false }),
            ),
            entry(
                2,
                "evidence",
                json!({ "key": "k", "action": "fetch_usage", "buckets": [bucket], "window": { "start": "2026-11-20T00:00:00Z" } }),
            ),
            entry(
                3,
                "evidence",
                json!({ "key": "k", "action": "fetch_usage", "audit_log": { "events": [], "pages": 1 } }),
            ),
            entry(
                4,
                "evidence",
                json!({ "key": "k", "action": "evaluate_rules", "rules": [{ "rule": "volume", "status": "findings", "source": "provider usage", "findings": ["9000 requests"] }] }),
            ),
            entry(
                5,
                "action_done",
                json!({ "key": "k", "action": "evaluate_rules", "status": "done", "facts": { "revoked_at": "2026-11-27T03:00:01Z", "restored_at": null } }),
            ),
        ];
        let s = IncidentState::fold(&es).unwrap();
        let k = &s.per_key["k"];
        assert_eq!(k.usage.len(), 1);
        assert_eq!(k.usage[0].requests, 9000);
        assert!(k.window_start.is_some());
        assert_eq!(k.rules.len(), 1);
        assert_eq!(k.rules[0].findings, ["9000 requests"]);
        assert!(k.revoked_at.is_some());
        assert!(k.restored_at.is_none());
        assert_eq!(s.entries, 5);
    }
}
