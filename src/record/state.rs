//! One projection of a record: what the summary, `incident list|show`, the drill report, the
//! breach report and resume need to know about an incident, folded once from its entries
//! so that they cannot disagree (is it closed, was each key's revocation proven, which
//! evidence could not be had, how long containment took).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::Entry;

/// Where an incident stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Interrupted or in progress (also after a resume that has not closed yet).
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
        }
    }
}

/// The projection of one record.
#[derive(Debug, Clone, PartialEq, Serialize)]
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
        let first = entries.first()?;
        let keys: Vec<String> = first
            .data
            .get("keys")
            .and_then(|k| serde_json::from_value(k.clone()).ok())
            .unwrap_or_default();
        let mut state = Self {
            opened: first.ts.clone(),
            dry_run: first.data.get("dry_run").and_then(Value::as_bool) == Some(true),
            purpose: str_of(&first.data, "purpose").unwrap_or_else(|| "incident".into()),
            per_key: keys
                .iter()
                .map(|k| (k.clone(), KeyProgress::default()))
                .collect(),
            keys,
            reason: str_of(&first.data, "reason"),
            status: Status::Open,
            closed: None,
            total_ms: None,
            fleet_time_to_contain_ms: None,
            entries: entries.len(),
        };
        for e in entries {
            state.apply(e);
        }
        Some(state)
    }

    fn apply(&mut self, e: &Entry) {
        match e.kind.as_str() {
            "incident_closed" => self.close(e),
            "incident_resumed" => self.status = Status::Open,
            _ => {}
        }
        let Some(key) = e.data.get("key").and_then(Value::as_str) else {
            return;
        };
        let dry_run = self.dry_run;
        let Some(k) = self.per_key.get_mut(key) else {
            return;
        };
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
