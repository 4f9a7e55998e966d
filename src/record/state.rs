//! One projection of a record: what the summary, `incident list|show`, the drill report, the
//! breach report and resume need to know about an incident, folded once from its entries
//! so that they cannot disagree (is it closed, was each key's revocation proven, which
//! evidence could not be had, how long containment took).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::Entry;
use super::event::{Closed, CustomerDataAnswer, Event, Evidence, Opened};
use crate::provider::{Identity, UsageBucket};

/// Where an incident stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Interrupted or in progress (also after a resume that has not closed yet).
    #[default]
    Open,
    /// Closed with every step of every key finished; only this status is closed for good.
    Completed,
    /// Closed with a failed step for at least one key (or an outcome this release does not
    /// know); resumable.
    Failed,
    /// Closed because the operator stopped it; resumable.
    Aborted,
}

impl Status {
    /// The status as the record and `--json` output spell it: `open`, `completed`, `failed`,
    /// `aborted`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Aborted => "aborted",
        }
    }
}

/// What an incident record is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentKind {
    /// A live response to a leaked key: writes are sent to providers and stores.
    Incident,
    /// A dry run: writes shown, never sent.
    Drill,
    /// A scheduled rotation (`keyfire rotate`).
    Rotation,
}

impl IncidentKind {
    /// The kind as `incident list` and `--json` output spell it: `incident`, `drill`,
    /// `rotation`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Incident => "incident",
            Self::Drill => "drill",
            Self::Rotation => "rotation",
        }
    }
}

impl std::fmt::Display for IncidentKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// What the record says about the proof that a key is dead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "proof", rename_all = "snake_case")]
pub enum Proof {
    /// The revoke step has not reached its proof.
    Pending,
    /// The provider answered the old value with its documented invalid-credential signal.
    Proven {
        /// The HTTP status of that answer (401 for most providers); `None` when the signal is
        /// not an HTTP status (an SDK or database error code) or the record did not keep it.
        status: Option<u16>,
    },
    /// The probe ran (or could not run) without that signal: the key may be alive.
    Inconclusive {
        /// Why the probe proves nothing (the answer it got, or why it could not run).
        reason: String,
    },
    /// The provider has no verify call in keyfire; the operator confirmed the revoke.
    NotProvable {
        /// Why the provider offers no proof, as the revoke step recorded it.
        reason: String,
    },
    /// A drill: nothing was revoked; the probe itself was exercised.
    Drill {
        /// Whether the old value still authenticated when probed (it should: nothing was
        /// revoked); `None` when the probe did not run or recorded no answer.
        old_key_authenticates: Option<bool>,
    },
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
pub(super) type RuleResult = super::event::RuleVerdict;

/// Where one runbook step of one key stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    #[default]
    Pending,
    Running,
    Done,
    Skipped,
    Failed,
}

/// One step of one key, as the record tells it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StepProgress {
    /// `open`, `revoke`, `redeploy`, `audit`, `report` or `reschedule`.
    pub name: String,
    pub state: StepState,
    pub started: Option<DateTime<Utc>>,
    pub duration_ms: Option<i64>,
}

/// What the audit step recorded about a key's use in the exposure window.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AuditSummary {
    /// The window the rules (or, without rules, the usage) looked at.
    pub window: Option<(String, String)>,
    pub first_suspicious: Option<String>,
    pub last_suspicious: Option<String>,
    /// Spend and requests in the window: the rules' figures, else the usage's.
    pub spend_usd: Option<f64>,
    pub requests: Option<u64>,
    pub usage_notes: Vec<String>,
    /// The sentence the provider audit-log read recorded.
    pub provider_audit_log: Option<String>,
}

/// What the record proves about the revoke and the replacement of a key.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Replacement {
    /// The revoke was done (or the provider no longer knew the key) in a live incident.
    pub revoked: bool,
    pub old_key_rejected: Option<bool>,
    pub old_key_status: Option<u64>,
    pub new_key_id: Option<String>,
    pub new_key_hint: Option<String>,
    pub verified: bool,
    pub store_version: Option<Value>,
    pub previous_store_version: Option<Value>,
    pub promoted: bool,
}

/// The operator's answer to the customer-data question, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CustomerDataGiven {
    pub answer: CustomerDataAnswer,
    pub note: Option<String>,
    /// Who or what answered (`console`, `terminal`, `--customer-data`, `--yes`).
    pub via: Option<String>,
}

/// One key's progress through the incident.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyProgress {
    /// Every step finished (as of the last close).
    pub finished: bool,
    pub time_to_revoke_ms: Option<i64>,
    pub time_to_restore_ms: Option<i64>,
    pub time_to_contain_ms: Option<i64>,
    /// Per-step durations, as the last close recorded them.
    pub step_ms: BTreeMap<String, i64>,
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
    /// Each runbook step the record mentions, in the order they started.
    pub steps: Vec<StepProgress>,
    /// Every step failure, in record order (`failures` keeps only the unresolved ones).
    pub failure_log: Vec<StepFailure>,
    /// In a drill: each write that was shown and not sent (its summary).
    pub would_send: Vec<String>,
    /// The revocation proof would use a stored value that is not the located key; what
    /// the two were compared by.
    pub identity_differs: Option<String>,
    /// The operator's last answer to "could customer data have been reached?" (records
    /// written before the report step asked it have none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_data: Option<CustomerDataGiven>,
    /// The latest evidence of each kind the audit and replacement summaries read.
    #[serde(skip)]
    seen: Seen,
}

/// The last `store_write` evidence.
#[derive(Debug, Clone, Default, PartialEq)]
struct Stored {
    version: Option<Value>,
    previous: Option<Value>,
    /// Written to a pending stage, not yet what agents read.
    pending: bool,
}

/// The last word of the record on each piece of evidence (the report shows the last).
#[derive(Debug, Clone, Default, PartialEq)]
struct Seen {
    rules: Option<Box<Evidence>>,
    usage: Option<Box<Evidence>>,
    audit_log_text: Option<String>,
    /// The last `create` evidence: the replacement's id and hint.
    created: Option<(Option<String>, Option<String>)>,
    stored: Option<Stored>,
    promoted: bool,
    new_key_works: bool,
    operator_verified: bool,
    revoked: bool,
    old_key_rejected: Option<bool>,
    old_key_status: Option<u64>,
    facts_hint: Option<String>,
}

impl Default for KeyProgress {
    fn default() -> Self {
        Self {
            finished: false,
            time_to_revoke_ms: None,
            time_to_restore_ms: None,
            time_to_contain_ms: None,
            step_ms: BTreeMap::new(),
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
            steps: Vec::new(),
            failure_log: Vec::new(),
            would_send: Vec::new(),
            identity_differs: None,
            customer_data: None,
            seen: Seen::default(),
        }
    }
}

/// The projection of one record. Built by [`IncidentState::fold`], or entry by entry with
/// [`IncidentState::apply`] by a front-end that watches an incident run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct IncidentState {
    /// The incident id the opening recorded.
    pub id: Option<String>,
    /// When the incident was opened: the `ts` of its first line (RFC 3339, UTC).
    pub opened: String,
    /// A dry run (drill): writes were shown and recorded, never sent.
    pub dry_run: bool,
    /// `incident` or `rotation`.
    pub purpose: String,
    /// Inventory ids of the incident's keys, in the order the opening named them.
    pub keys: Vec<String>,
    /// Why the incident was opened (`--reason`, or what opened it: the console, `audit
    /// --respond`); `None` when nothing said.
    pub reason: Option<String>,
    /// What the opening recorded: order, exposure, logs, key facts, deadline.
    #[serde(skip)]
    pub opening: Opened,
    /// Where the incident stands after the last line read.
    pub status: Status,
    /// When the incident was last closed (RFC 3339, UTC); `None` while it has never closed. A
    /// resume sets `status` back to open but keeps this.
    pub closed: Option<String>,
    /// The last close's outcome as recorded (`completed`, `failed`, `aborted`).
    pub outcome: Option<String>,
    /// Milliseconds from opening to the last close; `None` until it closes.
    pub total_ms: Option<i64>,
    /// Until the last key's containment settled; `None` while any key is not contained.
    pub fleet_time_to_contain_ms: Option<i64>,
    /// Each key's progress, by inventory id.
    pub per_key: BTreeMap<String, KeyProgress>,
    /// How many record lines were folded in.
    pub entries: usize,
    /// The hash of the last `incident_closed` entry (printed so it lives outside the file).
    pub closing_hash: Option<String>,
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

    /// What the record is about, from its opening: a rotation, else a drill when it was a dry
    /// run, else an incident.
    pub fn kind(&self) -> IncidentKind {
        if self.purpose == "rotation" {
            IncidentKind::Rotation
        } else if self.dry_run {
            IncidentKind::Drill
        } else {
            IncidentKind::Incident
        }
    }

    /// Take in the next entry of the record.
    pub fn apply(&mut self, e: &Entry) {
        self.apply_event(e, &Event::of(e));
    }

    /// Take in the next entry, already typed.
    pub fn apply_event(&mut self, e: &Entry, event: &Event) {
        self.entries += 1;
        match event {
            Event::IncidentOpened(o) => self.open(e, o),
            Event::IncidentClosed(c) => self.close(e, c),
            Event::IncidentResumed(_) => self.status = Status::Open,
            _ => {}
        }
        let Some(key) = event.key() else {
            return;
        };
        let dry_run = self.dry_run;
        let ts = DateTime::parse_from_rfc3339(&e.ts)
            .ok()
            .map(|t| t.with_timezone(&Utc));
        let k = self.per_key.entry(key.to_string()).or_default();
        if let Some(facts) = event.facts() {
            k.revoked_at = facts.times.revoked_at;
            k.restored_at = facts.times.restored_at;
            k.contained_at = facts.times.contained_at;
            k.seen.facts_hint = facts.times.new_key_hint.clone();
        }
        let action = event.action().unwrap_or_default().to_string();
        let step = e.step.clone().unwrap_or_default();
        match event {
            Event::Evidence(ev) => k.evidence(ev, &step, dry_run),
            Event::ActionDone(d) => {
                if let Some(s) = k.steps.iter_mut().find(|s| s.name == step)
                    && s.state == StepState::Failed
                {
                    s.state = StepState::Running;
                }
                if d.is_skipped() && action == "prove_revoked" {
                    let reason = d.reason.clone().unwrap_or_default();
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
                let done = !d.is_skipped()
                    || d.reason
                        .as_deref()
                        .is_some_and(|r| r.contains("already revoked"));
                if action == "revoke" && !dry_run && done {
                    k.seen.revoked = true;
                }
                k.failures.retain(|f| f.action != action);
            }
            Event::StepFailed(f) => {
                k.step_mut(&step).state = StepState::Failed;
                let failure = StepFailure {
                    step,
                    action,
                    error: f.error.clone().unwrap_or_default(),
                    status: f.status,
                };
                k.failures.retain(|f| f.action != failure.action);
                k.failures.push(failure.clone());
                k.failure_log.push(failure);
            }
            Event::StepStarted(_) => {
                let s = k.step_mut(&step);
                s.state = StepState::Running;
                s.started = ts;
            }
            Event::StepFinished(f) => {
                let s = k.step_mut(&step);
                s.state = if f.skipped() {
                    StepState::Skipped
                } else {
                    StepState::Done
                };
                s.duration_ms = f.duration_ms;
            }
            Event::NotSent(n) => k.would_send.push(
                n.summary
                    .clone()
                    .unwrap_or_else(|| format!("{action} (operator)")),
            ),
            Event::OperatorInput(i) if action == "verify_new" && i.is_confirmed() => {
                k.seen.operator_verified = true;
            }
            Event::OperatorInput(i) if i.customer_data.is_some() => {
                k.customer_data = i.customer_data.map(|answer| CustomerDataGiven {
                    answer,
                    note: i.note.clone(),
                    via: i.via.clone(),
                });
            }
            _ => {}
        }
    }

    fn open(&mut self, e: &Entry, o: &Opened) {
        self.id = o.incident.clone();
        self.opened = e.ts.clone();
        self.dry_run = o.dry_run;
        self.purpose = o.purpose.clone().unwrap_or_else(|| "incident".into());
        self.reason = o.reason.clone();
        for k in &o.keys {
            self.per_key.entry(k.clone()).or_default();
        }
        self.keys = o.keys.clone();
        self.opening = o.clone();
    }

    fn close(&mut self, e: &Entry, c: &Closed) {
        self.status = match c.outcome.as_deref() {
            Some("completed") => Status::Completed,
            Some("aborted") => Status::Aborted,
            _ => Status::Failed,
        };
        self.outcome = c.outcome.clone();
        self.closed = Some(e.ts.clone());
        self.closing_hash = Some(e.hash.clone());
        self.total_ms = c.total_ms;
        self.fleet_time_to_contain_ms = c.fleet_time_to_contain_ms;
        for (key, t) in &c.keys {
            let k = self.per_key.entry(key.clone()).or_default();
            k.finished = t.finished;
            k.time_to_revoke_ms = t.time_to_revoke_ms;
            k.time_to_restore_ms = t.time_to_restore_ms;
            k.time_to_contain_ms = t.time_to_contain_ms;
            k.step_ms = t.step_ms.clone();
        }
    }

    /// Keys whose revocation was attempted but not proven.
    pub fn not_proven(&self) -> impl Iterator<Item = &str> {
        self.per_key
            .iter()
            .filter(|(_, k)| k.proof.not_proven())
            .map(|(id, _)| id.as_str())
    }

    /// Whether the incident still needs work: true unless it completed (a failed or aborted
    /// incident is open and can be resumed).
    pub fn is_open(&self) -> bool {
        self.status != Status::Completed
    }

    /// When agents lost their key and got it back: from the first confirmed revocation
    /// until every revoked key's replacement was verified (`None` while one is not). The
    /// engine's times, the same the close turns into time to revoke and to restore.
    pub fn outage(&self) -> Option<(DateTime<Utc>, Option<DateTime<Utc>>)> {
        if self.dry_run {
            return None;
        }
        let revoked = || self.per_key.values().filter(|k| k.revoked_at.is_some());
        let start = revoked().filter_map(|k| k.revoked_at).min()?;
        let end = revoked()
            .map(|k| k.restored_at)
            .collect::<Option<Vec<_>>>()
            .and_then(|v| v.into_iter().max());
        Some((start, end))
    }
}

impl KeyProgress {
    /// A step by name (`None` if the record never mentions it).
    pub fn step(&self, name: &str) -> Option<&StepProgress> {
        self.steps.iter().find(|s| s.name == name)
    }

    fn step_mut(&mut self, name: &str) -> &mut StepProgress {
        let at = match self.steps.iter().position(|s| s.name == name) {
            Some(at) => at,
            None => {
                self.steps.push(StepProgress {
                    name: name.to_string(),
                    ..StepProgress::default()
                });
                self.steps.len() - 1
            }
        };
        &mut self.steps[at]
    }

    fn evidence(&mut self, ev: &Evidence, step: &str, dry_run: bool) {
        let action = ev.action.as_deref().unwrap_or_default();
        if let Some(reason) = &ev.unavailable {
            self.evidence_unavailable.push(Unavailable {
                step: step.to_string(),
                action: action.to_string(),
                reason: reason.clone(),
                status: ev.status.flatten(),
            });
            return;
        }
        if ev.audit_log.is_some() {
            self.seen.audit_log_text = ev.text.clone();
        }
        match action {
            "read_store" if ev.current_version == Some(None) => self.nothing_stored = true,
            "prove_revoked" => {
                self.proof = proof_of(ev, dry_run);
                self.seen.old_key_rejected = ev.old_key_rejected;
                self.seen.old_key_status = ev.status.flatten();
                if let Some(Identity::Differs { by }) = &ev.identity {
                    self.identity_differs = Some(by.clone());
                }
            }
            "fetch_usage" => {
                // The usage evidence, not the audit-log evidence recorded by the same action.
                if let Some(b) = &ev.buckets {
                    self.usage = b.clone();
                    self.window_start = ev.window_start();
                }
                if ev.is_usage() {
                    self.seen.usage = Some(Box::new(ev.clone()));
                }
            }
            "evaluate_rules" => {
                self.rules = ev.rules.clone().unwrap_or_default();
                self.seen.rules = Some(Box::new(ev.clone()));
            }
            "create" => {
                self.seen.created = Some((ev.new_key_id.clone(), ev.hint.clone().flatten()));
            }
            "store_write" => {
                self.seen.stored = Some(Stored {
                    version: ev.version.as_ref().and_then(recorded),
                    previous: ev
                        .previous_version
                        .as_ref()
                        .and_then(|v| v.as_ref())
                        .and_then(recorded),
                    pending: ev.pending == Some(true),
                });
            }
            "promote" => self.seen.promoted = true,
            "verify_new" => self.seen.new_key_works = ev.new_key_works == Some(true),
            _ => {}
        }
    }

    /// What the audit step recorded about the key's use in the exposure window.
    pub fn audit(&self) -> AuditSummary {
        let rules = self.seen.rules.as_deref();
        let usage = self.seen.usage.as_deref();
        let window = match rules {
            Some(r) => window_of(r),
            None => usage.and_then(window_of),
        };
        AuditSummary {
            window,
            first_suspicious: rules.and_then(|r| r.first_suspicious.clone().flatten()),
            last_suspicious: rules.and_then(|r| r.last_suspicious.clone().flatten()),
            spend_usd: rules
                .and_then(|r| r.spend_in_window_usd.flatten())
                .or(usage.and_then(|u| u.cost_usd)),
            requests: rules
                .and_then(|r| r.requests_in_window.flatten())
                .or(usage.and_then(|u| u.requests)),
            usage_notes: usage.and_then(|u| u.notes.clone()).unwrap_or_default(),
            provider_audit_log: self.seen.audit_log_text.clone(),
        }
    }

    /// What the record proves about the revoke and the replacement.
    pub fn replacement(&self) -> Replacement {
        let s = &self.seen;
        let (new_key_id, created_hint) = s.created.clone().unwrap_or_default();
        Replacement {
            revoked: s.revoked,
            old_key_rejected: s.old_key_rejected,
            old_key_status: s.old_key_status,
            new_key_id,
            new_key_hint: created_hint.or_else(|| s.facts_hint.clone()),
            verified: s.new_key_works || s.operator_verified,
            store_version: s.stored.as_ref().and_then(|x| x.version.clone()),
            previous_store_version: s.stored.as_ref().and_then(|x| x.previous.clone()),
            promoted: s.promoted || s.stored.as_ref().is_some_and(|x| !x.pending),
        }
    }
}

/// A store version as the projection hands it on (the report reads it back typed).
fn recorded(v: &crate::store::StoreVersion) -> Option<Value> {
    serde_json::to_value(v).ok()
}

fn window_of(ev: &Evidence) -> Option<(String, String)> {
    let w = ev.window.as_ref()?;
    Some((w.start.clone()?, w.end.clone()?))
}

fn proof_of(ev: &Evidence, dry_run: bool) -> Proof {
    if dry_run || ev.drill {
        return Proof::Drill {
            old_key_authenticates: ev.old_key_authenticates,
        };
    }
    let status = ev.status.flatten().and_then(|s| u16::try_from(s).ok());
    if ev.proof.as_deref() == Some("inconclusive") {
        return Proof::Inconclusive {
            reason: ev
                .reason
                .clone()
                .or_else(|| ev.text.clone())
                .unwrap_or_default(),
        };
    }
    if ev.old_key_rejected == Some(true) {
        return Proof::Proven { status };
    }
    Proof::Inconclusive {
        reason: ev
            .text
            .clone()
            .unwrap_or_else(|| "no proof recorded".into()),
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
