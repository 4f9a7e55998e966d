//! Notifications from a running incident: a [`Sink`] that turns record entries into events
//! as they become durable (opened, each key's revocation proof, failures, closed), and a
//! [`Gate`] that says when a step waits for the operator. Both only enqueue.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::dispatch::Notifier;
use super::event::{Detail, Event, ProofOutcome, blast};
use crate::inventory::Inventory;
use crate::record::{Entry, Event as RecordEvent, IncidentState, Proof};
use crate::runbook::{
    ApprovalRequest, Decision, FailureChoice, FailureView, Gate, ManualRequest, PasteRequest, Sink,
};
use crate::secret::Secret;

/// Who runs keyfire, as the operating system names them.
pub fn started_by() -> String {
    ["KEYFIRE_OPERATOR", "USER", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "an unknown operator".into())
}

/// Wraps the front-end's sink; every entry still reaches it first.
pub struct NotifySink<S: Sink> {
    inner: S,
    notifier: Notifier,
    inv: Arc<Inventory>,
    record_dir: PathBuf,
    state: IncidentState,
    /// Entries already folded when the sink was made (the opening line, or a resumed record).
    folded: u64,
    announced: bool,
}

impl<S: Sink> NotifySink<S> {
    /// `record_dir`: the incident's directory; what its record holds already is read so that
    /// a resumed incident knows its keys and what was proven before.
    pub fn new(inner: S, notifier: Notifier, inv: Arc<Inventory>, record_dir: &Path) -> Self {
        let entries = crate::record::read_entries(&record_dir.join(crate::record::RECORD_FILE))
            .unwrap_or_default();
        let state = IncidentState::fold(&entries).unwrap_or_default();
        Self {
            inner,
            notifier,
            inv,
            record_dir: record_dir.to_path_buf(),
            state,
            folded: entries.last().map_or(0, |e| e.seq),
            announced: entries.len() > 1,
        }
    }

    fn incident_id(&self) -> String {
        self.record_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    fn rotation(&self) -> bool {
        self.state.purpose == "rotation"
    }

    fn agents_of(&self, keys: &[String]) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for k in keys.iter().filter_map(|k| self.inv.key(k)) {
            for a in &k.agents {
                if !out.contains(a) {
                    out.push(a.clone());
                }
            }
        }
        out
    }

    fn event(&self, detail: Detail, keys: &[String], at: DateTime<Utc>) -> Event {
        Event::new(detail, at)
            .in_incident(&self.incident_id(), self.state.dry_run)
            .about_agents(self.agents_of(keys))
    }

    fn events(&mut self, e: &Entry) -> Vec<Event> {
        let at = DateTime::parse_from_rfc3339(&e.ts)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|_| Utc::now());
        let mut out = Vec::new();
        let record_event = RecordEvent::of(e);
        if let RecordEvent::IncidentOpened(opened) = &record_event {
            if !self.announced && !self.rotation() {
                self.announced = true;
                let keys = self.state.keys.clone();
                let detail = Detail::IncidentOpened {
                    keys: blast(&self.inv, &keys),
                    order: opened.order_name().unwrap_or("contain_first").to_string(),
                    started_by: started_by(),
                    reason: opened.reason.clone(),
                };
                out.push(self.event(detail, &keys, at));
            }
            return out;
        }
        if e.seq <= self.folded {
            return out;
        }
        let key = record_event.key().map(str::to_string);
        let before = key
            .as_ref()
            .and_then(|k| self.state.per_key.get(k))
            .map(|k| k.proof.clone());
        self.state.apply_event(e, &record_event);
        if self.rotation() {
            if matches!(record_event, RecordEvent::IncidentClosed(_))
                && self.state.status != crate::record::Status::Completed
                && !self.state.dry_run
            {
                for (k, p) in &self.state.per_key {
                    if p.finished {
                        continue;
                    }
                    let reason = p.failures.last().map_or_else(
                        || format!("the rotation ended {}", self.state.status.as_str()),
                        |f| format!("{} / {} failed: {}", f.step, f.action, f.error),
                    );
                    let detail = Detail::RotationFailed {
                        key: k.clone(),
                        reason,
                    };
                    out.push(self.event(detail, std::slice::from_ref(k), at));
                }
            }
            return out;
        }
        if let Some(k) = &key {
            let after = self.state.per_key.get(k).map(|p| p.proof.clone());
            if before != after
                && let Some(proof) = after
                && let Some((outcome, reason)) = proof_outcome(&proof)
            {
                let detail = Detail::KeyRevoked {
                    key: k.clone(),
                    proof: outcome,
                    reason,
                };
                out.push(self.event(detail, std::slice::from_ref(k), at));
            }
        }
        match (&record_event, &key) {
            (RecordEvent::StepFailed(f), Some(k)) => {
                let detail = Detail::StepFailed {
                    key: k.clone(),
                    step: e.step.clone().unwrap_or_default(),
                    action: f.action.clone().unwrap_or_default(),
                    error: f.error.clone().unwrap_or_default(),
                    status: f.status,
                };
                out.push(self.event(detail, std::slice::from_ref(k), at));
            }
            (RecordEvent::IncidentClosed(closed), _) => {
                let time_to_revoke_ms: BTreeMap<String, Option<i64>> = closed
                    .keys
                    .iter()
                    .map(|(k, v)| (k.clone(), v.time_to_revoke_ms))
                    .collect();
                // Rendered beside the record right after this entry.
                let report = Some(self.record_dir.join("report.md").display().to_string());
                let detail = Detail::IncidentClosed {
                    outcome: closed.outcome.clone().unwrap_or_default(),
                    time_to_revoke_ms,
                    fleet_time_to_contain_ms: closed.fleet_time_to_contain_ms,
                    not_proven: self.state.not_proven().map(str::to_string).collect(),
                    report,
                    closing_hash: e.hash.clone(),
                };
                let keys = self.state.keys.clone();
                out.push(self.event(detail, &keys, at));
            }
            _ => {}
        }
        out
    }
}

fn proof_outcome(proof: &Proof) -> Option<(ProofOutcome, Option<String>)> {
    match proof {
        Proof::Pending => None,
        Proof::Proven { status } => Some((
            ProofOutcome::Proven,
            status.map(|s| format!("the provider refused the old key (HTTP {s})")),
        )),
        Proof::Inconclusive { reason } => Some((ProofOutcome::Inconclusive, Some(reason.clone()))),
        Proof::NotProvable { reason } => {
            Some((ProofOutcome::ConfirmedByOperator, Some(reason.clone())))
        }
        Proof::Drill { .. } => Some((ProofOutcome::Rehearsed, None)),
    }
}

impl<S: Sink> Sink for NotifySink<S> {
    fn emit(&mut self, entry: &Entry) {
        self.inner.emit(entry);
        for event in self.events(entry) {
            self.notifier.notify(event);
        }
    }
}

/// Wraps the operator's gate: a manual step or a masked paste tells the channel that the
/// incident waits for a person, then asks as usual.
pub struct NotifyGate<'g, G: Gate> {
    inner: &'g mut G,
    notifier: Notifier,
    inv: Arc<Inventory>,
    drill: bool,
    rotation: bool,
}

impl<'g, G: Gate> NotifyGate<'g, G> {
    pub fn new(inner: &'g mut G, notifier: Notifier, inv: Arc<Inventory>, drill: bool) -> Self {
        Self {
            inner,
            notifier,
            inv,
            drill,
            rotation: false,
        }
    }

    /// A scheduled rotation's gate: a manual step goes to the `rotation` route.
    pub fn for_rotation(mut self, rotation: bool) -> Self {
        self.rotation = rotation;
        self
    }

    fn waiting(&self, incident: &str, key: &str, step: &str, what: String) {
        let agents = self
            .inv
            .key(key)
            .map(|k| k.agents.clone())
            .unwrap_or_default();
        let detail = Detail::OperatorNeeded {
            key: key.to_string(),
            step: step.to_string(),
            what,
        };
        let mut event = Event::new(detail, Utc::now())
            .in_incident(incident, self.drill)
            .about_agents(agents);
        event.rotation = self.rotation;
        self.notifier.notify(event);
    }
}

impl<G: Gate> Gate for NotifyGate<'_, G> {
    fn abort_requested(&self) -> bool {
        self.inner.abort_requested()
    }

    async fn approve(&mut self, req: &ApprovalRequest<'_>) -> Decision {
        self.inner.approve(req).await
    }

    async fn confirm_manual(&mut self, req: &ManualRequest<'_>) -> Decision {
        let what = format!(
            "Manual step {}: {}",
            req.action,
            crate::http::truncate(&req.instructions.join(" "), 400)
        );
        self.waiting(req.incident, req.key, req.step.as_str(), what);
        self.inner.confirm_manual(req).await
    }

    async fn paste_secret(&mut self, req: &PasteRequest<'_>) -> Option<Secret> {
        let what =
            "The replacement key must be created by hand and pasted into keyfire's masked prompt."
                .to_string();
        self.waiting(req.incident, req.key, "redeploy", what);
        self.inner.paste_secret(req).await
    }

    async fn on_failure(&mut self, failure: &FailureView<'_>) -> FailureChoice {
        self.inner.on_failure(failure).await
    }

    async fn customer_data(
        &mut self,
        req: &crate::runbook::CustomerDataRequest<'_>,
    ) -> crate::runbook::CustomerDataReply {
        self.inner.customer_data(req).await
    }
}
